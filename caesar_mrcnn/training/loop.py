"""``caesar-mrcnn train``: train the Mask R-CNN detector on labelled radio images.

One run: load and preprocess the labelled images, build the detector around a random or
self-supervised backbone, then a custom training step (GradientTape; gradients averaged over
Horovod ranks before the update) over the endless, seeded input stream, with checkpoints every
``checkpoint_every`` steps, TensorBoard scalars and prediction images, validation losses and
COCO mask mAP, and finally the detector file ``<out>/detector.npz``.

Every rank runs the same code; rank 0 alone reads checkpoints, writes files and shows progress.
A run resumes exactly (same weights, optimiser state, data and augmentations as if it had not
stopped) from its latest checkpoint with ``resume=True`` (``--resume``).

Outputs in ``out``: ``train_config.yaml``, ``checkpoints/ckpt-<step>.npz``, ``tensorboard/``,
``metrics.json`` (validation results and last losses) and ``detector.npz``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from caesar_mrcnn.config import load_config, to_dict
from caesar_mrcnn.errors import ConfigError, DatasetError, OutputError
from caesar_mrcnn.signals import sigterm_as_interrupt
from caesar_mrcnn.training.config import TrainConfig

log = logging.getLogger(__name__)

DETECTOR_FILE = "detector.npz"
PREVIEW_IMAGES = 2


@dataclass
class TrainResult:
    """What a training call did.

    Attributes
    ----------
    out : pathlib.Path
        Output folder.
    step : int
        Training steps completed so far (including those before a resume).
    total_steps : int
        Length of the whole run.
    detector : pathlib.Path or None
        The detector file, written once the run is complete (None if it stopped early).
    history : list of dict
        Every ``log_every`` steps of this call, and its last step: ``step``, ``lr``,
        ``grad_norm`` and every loss.
    validation : list of dict
        Per validation of this call: ``step``, mean ``loss/<name>``, ``mask_AP``, ...
    """

    out: Path
    step: int
    total_steps: int
    detector: Path | None = None
    history: list[dict[str, float]] = field(default_factory=list)
    validation: list[dict[str, float]] = field(default_factory=list)


def load_train_config(path: str | Path | None, overrides: Sequence[str] = ()) -> TrainConfig:
    """A :class:`TrainConfig` from YAML (e.g. ``configs/detect/r18.yaml``) plus overrides."""
    return load_config(TrainConfig, path, overrides)


def _load_samples(path: str, option: str):
    from caesar_mrcnn.data.readers import load_dataset

    if not Path(path).exists():
        raise DatasetError(f"{option} {path}: no such file or folder; give a COCO JSON, a "
                           "caesar JSON list or a simulated-field folder")
    samples = list(load_dataset(path))
    if not samples:
        raise DatasetError(f"{option} {path}: the dataset holds no image")
    return samples


@contextlib.contextmanager
def _op_determinism():
    """TensorFlow's deterministic kernels inside the block, the previous setting after it."""
    from tensorflow.python.framework import config as tf_config

    before = tf_config.is_op_determinism_enabled()
    tf_config.enable_op_determinism()
    try:
        yield
    finally:
        if not before:
            tf_config.disable_op_determinism()


def make_train_step(model, optimizer, variables: list, ctx, jit_compile: bool, counter):
    """A compiled step: losses, gradients (averaged over ranks), clipped update.

    ``counter`` (a ``tf.Variable``) counts completed steps inside the same compiled call as
    the update, so it is exact even if the run is interrupted right after a step.
    """
    import tensorflow as tf

    scale = getattr(optimizer, "dynamic_scale", None)

    @tf.function(jit_compile=jit_compile, reduce_retracing=True)
    def step(images, boxes, classes, masks):
        with tf.GradientTape() as tape:
            losses = model.compute_losses(images, boxes, classes, masks, training=True)
            scaled = optimizer.scale_loss(losses["total"])
        # Gradients of the raw tf.Variables: what Horovod's allreduce understands (Keras 3
        # variables wrap them).
        grads = tape.gradient(scaled, [v.value for v in variables])
        grads = ctx.allreduce_gradients(grads)
        grads = [tf.zeros_like(v.value) if g is None else g for g, v in zip(grads, variables)]
        norm = tf.linalg.global_norm(grads)
        if scale is not None:
            norm = norm / tf.cast(scale, norm.dtype)
        optimizer.apply_gradients(zip(grads, variables))
        counter.assign_add(1)
        return losses, norm

    return step


def _provenance(cfg: TrainConfig) -> dict[str, Any]:
    """The provenance record of a training run (its data: ``data.train``)."""
    from ssl_backbones.provenance import collect

    return collect(data=[cfg.data.train] if cfg.data.train else [])


class _Run:
    """State of one training call (kept together so the loop reads simply)."""

    def __init__(self, cfg: TrainConfig, ctx, resume: bool) -> None:
        self.cfg = cfg
        self.ctx = ctx
        self.resume = resume
        self.out = Path(cfg.out)
        self.ckpt_dir = self.out / "checkpoints"
        self.predict_fn = None
        self.val_losses_fn = None
        self.started_from = None
        self.counter = None
        # Where this run's weights come from: stored in every checkpoint and the detector file.
        self.provenance = _provenance(cfg) if ctx.is_root else None

    # -- set-up ----------------------------------------------------------------------------

    def prepare_data(self, preprocessor) -> None:
        from caesar_mrcnn.data.pipeline import prepare_samples

        cfg = self.cfg
        if not cfg.data.train:
            raise ConfigError("data.train: give a training dataset (--data)")
        tag = json.dumps(to_dict(cfg.preprocess), sort_keys=True)
        cache = cfg.data.pipeline.cache_dir
        self.train_samples = prepare_samples(_load_samples(cfg.data.train, "--data"),
                                             preprocessor, cache, tag)
        self.val_samples = None
        if cfg.data.val:
            self.val_samples = prepare_samples(_load_samples(cfg.data.val, "--val-data"),
                                               preprocessor, cache, tag)
        per_step = cfg.batch_size * self.ctx.size
        n = len(self.train_samples) * cfg.data.crops_per_image
        self.steps_per_epoch = max(1, math.ceil(n / per_step))
        self.total = cfg.steps or cfg.epochs * self.steps_per_epoch
        self.val_every = cfg.validate_every or self.steps_per_epoch

    def build(self, weights, backbone_meta: dict[str, Any],
              initial: tuple[list, dict[str, Any]] | None = None) -> None:
        import keras

        from caesar_mrcnn.modeling.maskrcnn import MaskRCNN
        from caesar_mrcnn.training.backbone import BackboneFreezer, load_pretrained
        from caesar_mrcnn.training.init_weights import assign_initial_weights
        from caesar_mrcnn.training.optim import build_optimizer, learning_rate_schedule

        cfg = self.cfg
        keras.utils.set_random_seed(cfg.seed)
        self.model = MaskRCNN(cfg.model, seed=cfg.seed)
        if weights is not None:
            load_pretrained(self.model.backbone, weights, cfg.backbone.name)
        if initial is not None:
            # After the backbone: the file's own backbone weights are the ones it was
            # trained with, and they replace the pretrained ones.
            assign_initial_weights(self.model, initial[0], cfg.init)
            self.started_from = initial[1]
            if self.provenance is not None:
                self.provenance["init"] = self.started_from
        self.freezer = BackboneFreezer(self.model.backbone, cfg.backbone)
        everything = self.freezer.all_trainable(self.model)
        peak = self.ctx.lr_for_ranks(cfg.optim.lr, cfg.optim.lr_scaling)
        schedule = learning_rate_schedule(cfg.optim, peak, self.total)
        self.optimizer = build_optimizer(cfg.optim, schedule, everything,
                                         loss_scaling=cfg.precision == "mixed_float16")
        self.backbone_meta = {k: v for k, v in backbone_meta.items() if k != "path"}

    def check_out(self) -> None:
        """Refuse to overwrite an earlier run's checkpoints unless resuming it."""
        from caesar_mrcnn.training.checkpoint import latest_checkpoint

        def check():
            if self.out.exists() and not self.out.is_dir():
                raise OutputError(f"--out {self.out}: is a file, not a folder; choose another "
                                  "--out")
            if not self.resume and latest_checkpoint(self.ckpt_dir) is not None:
                raise ConfigError(f"--out {self.out}: holds checkpoints of an earlier run; "
                                  "add --resume to continue it, or choose another --out")

        _on_root(self.ctx, check)

    def restore_or_start(self) -> int:
        """Load the latest checkpoint on rank 0 (if resuming) and share the state."""
        import tensorflow as tf

        from caesar_mrcnn.training.checkpoint import latest_checkpoint, restore_checkpoint

        ctx = self.ctx

        def restore() -> int:
            latest = latest_checkpoint(self.ckpt_dir) if self.resume else None
            if latest is None:
                if self.resume:
                    log.info("--resume: no checkpoint in %s; starting a new run", self.ckpt_dir)
                return 0
            info = restore_checkpoint(latest, self.model.variables, self.optimizer.variables)
            self.provenance["resumed_from"] = info.get("meta", {}).get("provenance")
            old_world = info.get("meta", {}).get("world_size", ctx.size)
            if old_world != ctx.size:
                log.warning("resuming a %d-rank run on %d ranks: the data order changes",
                            old_world, ctx.size)
            log.info("resumed from %s at step %d", latest, int(info["step"]))
            return int(info["step"])

        start = int(_on_root(ctx, restore))
        ctx.broadcast_variables(self.model.variables)
        ctx.broadcast_variables(self.optimizer.variables)
        self.counter = tf.Variable(start, dtype=tf.int64, trainable=False)
        return start

    # -- outputs (rank 0) --------------------------------------------------------------------

    def save_checkpoint(self, step: int) -> None:
        from caesar_mrcnn.training.checkpoint import list_checkpoints, save_checkpoint

        if not self.ctx.is_root or any(s == step for s, _ in list_checkpoints(self.ckpt_dir)):
            return
        save_checkpoint(self.ckpt_dir, step, self.model.variables, self.optimizer.variables,
                        {"world_size": self.ctx.size, "config": to_dict(self.cfg),
                         "provenance": self.provenance},
                        keep=self.cfg.keep_checkpoints)

    def predict(self, images):
        import tensorflow as tf

        if self.predict_fn is None:
            self.predict_fn = tf.function(lambda x: self.model(x, training=False))
        return {k: v.numpy() for k, v in self.predict_fn(images).items()}

    def preview(self, batch, step: int, summaries) -> None:
        from caesar_mrcnn.training.summaries import render_predictions

        output = self.predict(batch["image"])
        n = min(PREVIEW_IMAGES, int(batch["image"].shape[0]))
        images = batch["image"].numpy()
        masks = batch["masks"].numpy()
        pictures = np.stack([render_predictions(images[i], output, i, masks[i])
                             for i in range(n)])
        summaries.images("train/predictions", pictures, step)

    def validate(self, step: int) -> dict[str, float]:
        import tensorflow as tf

        from caesar_mrcnn.data.pipeline import eval_dataset, eval_windows
        from caesar_mrcnn.training.validation import validate, window_truth

        cfg, size = self.cfg, (self.cfg.model.image_size,) * 2
        if self.val_losses_fn is None:
            model = self.model
            self.val_losses_fn = tf.function(lambda b: model.compute_losses(
                b["image"], b["boxes"], b["classes"], b["masks"], training=False))
            self.val_windows = eval_windows(self.val_samples, size)
            self.val_truth = window_truth(self.val_samples, self.val_windows, size,
                                          cfg.data.pipeline.min_mask_pixels)
        ds = eval_dataset(self.val_samples, size, cfg.batch_size, cfg.model.max_gt,
                          cfg.data.pipeline, self.val_windows)
        result = validate(ds, self.val_losses_fn, lambda x: self.predict(x), self.val_truth,
                          size)
        return {"step": step, **result}

    def write_metrics(self, result: TrainResult) -> None:
        from caesar_mrcnn.io.atomic import atomic_open

        last = result.history[-1] if result.history else {}
        record = {"step": result.step, "total_steps": result.total_steps, "last": last,
                  "validation": result.validation}
        with atomic_open(self.out / "metrics.json") as fh:
            json.dump(record, fh, indent=2, default=float)


def _on_root(ctx, fn):
    """Run ``fn`` on rank 0 and give its result, or its user error, to every rank.

    Without this, a bad checkpoint seen by rank 0 alone would leave the other ranks waiting.
    """
    from caesar_mrcnn.errors import CaesarError

    value, error = None, None
    if ctx.is_root:
        try:
            value = fn()
        except CaesarError as exc:
            error = exc
    value, error = ctx.broadcast_object((value, error))
    if error is not None:
        raise error
    return value


def _finite(values: dict[str, float]) -> bool:
    return all(math.isfinite(v) for v in values.values())


def train(cfg: TrainConfig, resume: bool = False, stop_at: int | None = None) -> TrainResult:
    """Train a detector.

    Parameters
    ----------
    cfg : TrainConfig
        Validated configuration (see :func:`load_train_config`).
    resume : bool
        Continue from the latest checkpoint in ``cfg.out`` (a new run if there is none).
        Without it, an output folder that already holds checkpoints is an error.
    stop_at : int, optional
        Stop after this step with a checkpoint, as if interrupted (e.g. to fit a batch-queue
        time limit); a later call with ``resume=True`` continues the same run.

    Returns
    -------
    TrainResult

    Notes
    -----
    Seeds Keras' global random generators with ``cfg.seed`` (model initialisation), and sets
    the Keras dtype policy to ``cfg.precision`` (and TensorFlow's deterministic kernels with
    ``cfg.deterministic``) for the duration of the call.

    Raises
    ------
    ConfigError, DatasetError, WeightsError, CheckpointError, InputImageError
        Bad configuration, data, backbone or checkpoint (one-line messages).
    """
    import keras
    from tqdm import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    from caesar_mrcnn.config import dump_config
    from caesar_mrcnn.data.pipeline import train_dataset
    from caesar_mrcnn.data.preprocess import Preprocessor
    from caesar_mrcnn.io.atomic import make_output_folder
    from caesar_mrcnn.training.backbone import model_config_for, resolve_backbone_spec
    from caesar_mrcnn.training.optim import current_lr
    from caesar_mrcnn.training.summaries import Summaries
    from ssl_backbones import distributed

    if cfg.jit_compile and cfg.model.roi_align_impl != "gather":
        raise ConfigError("jit_compile: XLA needs model.roi_align_impl=gather "
                          "(crop_and_resize has no XLA kernel)")
    ctx = distributed.init()
    preprocessor = Preprocessor(cfg.preprocess)
    weights, backbone_meta = resolve_backbone_spec(cfg.backbone.name)
    cfg = dataclasses.replace(
        cfg, model=model_config_for(cfg.model, backbone_meta, preprocessor.num_channels,
                                    preprocessor.config.input_name))
    run = _Run(cfg, ctx, resume)
    run.check_out()
    run.prepare_data(preprocessor)
    initial = None
    if cfg.init:
        from caesar_mrcnn.training.init_weights import read_initial_weights

        initial = read_initial_weights(cfg.init, cfg.preprocess)

    if cfg.model.mixed_precision and cfg.precision == "float32":
        cfg = dataclasses.replace(cfg, precision="mixed_float16")
    previous_policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy(cfg.precision)
    summaries = bar = None
    result = TrainResult(run.out, 0, run.total)
    stack = contextlib.ExitStack()
    try:
        stack.enter_context(sigterm_as_interrupt())
        if cfg.deterministic:
            stack.enter_context(_op_determinism())
        run.build(weights, backbone_meta, initial)
        if ctx.is_root:
            # Only once the model is built: a starting file that does not fit writes nothing.
            make_output_folder(run.out)
        start = run.restore_or_start()
        result.step = start
        if ctx.is_root:
            dump_config(cfg, run.out / "train_config.yaml")
        end = run.total if stop_at is None else min(run.total, max(int(stop_at), start))
        size = (cfg.model.image_size,) * 2
        batches = iter(train_dataset(run.train_samples, size, cfg.batch_size, cfg.model.max_gt,
                                     cfg.data.pipeline, cfg.seed, ctx.rank, ctx.size, start))
        summaries = Summaries(run.out / "tensorboard" if ctx.is_root else None)
        bar = tqdm(total=run.total, initial=start, desc="train", unit="step", dynamic_ncols=True,
                   disable=not (ctx.is_root and cfg.progress))
        if not bar.disable:
            # Log lines go through the bar, so they do not break it apart.
            stack.enter_context(logging_redirect_tqdm())
        step_fn = None
        for step in range(start, end):
            if run.freezer.update(step) or step_fn is None:
                step_fn = make_train_step(run.model, run.optimizer,
                                           list(run.model.trainable_variables), ctx,
                                           cfg.jit_compile, run.counter)
            lr = current_lr(run.optimizer)
            batch = next(batches)
            losses, norm = step_fn(batch["image"], batch["boxes"], batch["classes"],
                                   batch["masks"])
            done = step + 1
            values = {k: float(v) for k, v in losses.items()}
            if not _finite(values):
                raise ConfigError(f"optim.lr: training diverged (loss {values['total']} at "
                                  f"step {done}); lower the learning rate or lengthen warm-up")
            record = {"step": done, "lr": lr, "grad_norm": float(norm), **values}
            result.step = done
            bar.update(1)
            bar.set_postfix(loss=f"{values['total']:.3f}", lr=f"{lr:.2e}", refresh=False)
            if done % cfg.log_every == 0 or done in (run.total, end):
                result.history.append(record)
                summaries.scalars(values, done, "loss/")
                summaries.scalars({"lr": lr, "grad_norm": record["grad_norm"]}, done, "train/")
            if ctx.is_root and cfg.image_every and done % cfg.image_every == 0:
                run.preview(batch, done, summaries)
            if run.val_samples is not None and (done % run.val_every == 0 or done == run.total):
                if ctx.is_root:
                    val = run.validate(done)
                    result.validation.append(val)
                    summaries.scalars({k: v for k, v in val.items() if k != "step"}, done,
                                      "val/")
                    log.info("step %d: validation mask AP %.3f (AP50 %.3f), loss %.4f", done,
                             val["mask_AP"], val["mask_AP50"], val.get("loss/total", math.nan))
                ctx.barrier()
            if (cfg.checkpoint_every and done % cfg.checkpoint_every == 0) or done == end:
                run.save_checkpoint(done)
    except KeyboardInterrupt:
        # Ctrl-C or SIGTERM. The step counter moves with the update itself: exact even if the
        # interrupt came between the update and the bookkeeping above.
        if run.counter is not None and int(run.counter.numpy()) > 0:
            run.save_checkpoint(int(run.counter.numpy()))
        raise
    finally:
        stack.close()
        if bar is not None:
            bar.close()
        if summaries is not None:
            summaries.close()
        keras.config.set_dtype_policy(previous_policy)
    if ctx.is_root:
        if result.step >= run.total:
            from caesar_mrcnn.detection.detector_file import save_detector

            extra = {"train": {"steps": result.step, "data": cfg.data.train,
                               "seed": cfg.seed, "world_size": ctx.size,
                               **({"init": run.started_from} if run.started_from else {})}}
            result.detector = save_detector(run.model, cfg, run.out / DETECTOR_FILE,
                                            backbone={"name": cfg.backbone.name,
                                                      **run.backbone_meta},
                                            extra=extra, provenance=run.provenance)
            log.info("detector written to %s", result.detector)
        run.write_metrics(result)
    ctx.barrier()
    return result


def train_command(config: str | Path | None, overrides: Sequence[str] = (),
                  data: str | None = None, val_data: str | None = None,
                  backbone: str | None = None, init: str | None = None,
                  out: str | None = None, epochs: int | None = None, steps: int | None = None,
                  batch_size: int | None = None, resume: bool = False,
                  stop_at: int | None = None) -> TrainResult:
    """The ``caesar-mrcnn train`` command: options become overrides of the configuration.

    Explicit options win over ``--set`` overrides, which win over the YAML file. ``stop_at``
    is :func:`train`'s.
    """
    extra = list(overrides)
    for key, value in (("data.train", data), ("data.val", val_data),
                       ("backbone.name", backbone), ("init", init), ("out", out),
                       ("epochs", epochs),
                       ("batch_size", batch_size)):
        if value is not None:
            extra.append(f"{key}={json.dumps(value) if isinstance(value, str) else value}")
    if steps is not None and steps < 1:
        raise ConfigError(f"--steps {steps}: must be >= 1 (leave it out to train --epochs)")
    if steps is not None:
        extra.append(f"steps={steps}")
    elif epochs is not None:
        extra.append("steps=0")
    if stop_at is not None and stop_at < 1:
        raise ConfigError(f"--stop-at {stop_at}: must be >= 1")
    return train(load_train_config(config, extra), resume=resume, stop_at=stop_at)
