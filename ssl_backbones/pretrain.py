"""Self-supervised pretraining loop: data, method, optimiser, logging, checkpoints, export.

One process or many Horovod ranks run the same code: each rank takes its shard of the cutouts,
gradients are averaged through the distributed context, and only rank 0 logs (tqdm,
TensorBoard), writes checkpoints and exports the backbone into the registry.

Layout of the output folder::

    OUT/config.yaml               the configuration used
    OUT/tensorboard/              loss, lr, embedding_std, knn_top1 and the method's own
                                  (target_decay; DINO's teacher_temp, teacher_entropy)
    OUT/checkpoints/state.json    last completed epoch and its checkpoint file
    OUT/checkpoints/epoch_NNNN.npz  every model and optimiser variable, in a fixed order
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ssl_backbones.atomic import atomic_target
from ssl_backbones.config import PretrainConfig, load_pretrain_config, to_dict
from ssl_backbones.errors import PretrainConfigError

log = logging.getLogger(__name__)

ARCH_SHORT = {"resnet18": "r18", "resnet50": "r50"}
_KEPT_CHECKPOINTS = 2


def default_name(method: str, arch: str) -> str:
    """Registry name of a run: ``ssl_<method>_<r18|r50>``."""
    return f"ssl_{method}_{ARCH_SHORT.get(arch, arch)}"


def eval_stretches(cfg: PretrainConfig) -> list[str]:
    """Per-channel stretches of the deterministic preprocessing, one per input channel."""
    names = cfg.data.eval_stretches
    return [names[c % len(names)] for c in range(cfg.data.channels)]


def build_method(cfg: PretrainConfig, ctx: Any, total_steps: int):
    """The configured :class:`SSLMethod` with freshly initialised networks, variables built."""
    from ssl_backbones.methods.base import method_class
    from ssl_backbones.resnet import build_resnet

    m = cfg.method
    cls = method_class(m.name)

    def backbone(name=None):
        return build_resnet(m.arch, cfg.data.channels, m.small_stem, m.norm, name=name)

    if cfg.augment.local_crops and not cls.multi_crop:
        raise PretrainConfigError(
            f"augment.local_crops: {m.name} takes no local views; set it to 0 or use dino")
    extra = ({"target_backbone": backbone(f"target_{m.arch}")}
             if cls.needs_target_backbone else {})
    method = cls(backbone(), m, ctx, total_steps=total_steps, **extra)
    method.build_for(cfg.data.input_size, cfg.data.channels)
    return method


def build_optimizer(cfg: PretrainConfig, global_batch: int, steps_per_epoch: int,
                    total_steps: int, variables: Sequence):
    """LARS or AdamW with the scaled peak rate, warm-up and cosine decay."""
    from ssl_backbones.lars import make_optimizer
    from ssl_backbones.schedules import WarmupCosine, lr_for_global_batch

    o = cfg.optim
    peak = lr_for_global_batch(o.base_lr, global_batch, o.scaling)
    schedule = WarmupCosine(peak, int(round(o.warmup_epochs * steps_per_epoch)), total_steps,
                            final_lr=peak * o.final_lr_ratio)
    return make_optimizer(o.name, schedule, o.weight_decay, o.momentum, o.eta, variables)


# -- checkpoints ---------------------------------------------------------------------------------

def _save_checkpoint(ckpt_dir: Path, method, epoch: int, step: int) -> None:
    path = ckpt_dir / f"epoch_{epoch:04d}.npz"
    arrays = {f"v{i:05d}": np.asarray(v.numpy()) for i, v in enumerate(method.state_variables())}
    with atomic_target(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
    with atomic_target(ckpt_dir / "state.json") as tmp:
        tmp.write_text(json.dumps({"epoch": epoch, "step": step, "file": path.name}) + "\n")
    for old in sorted(ckpt_dir.glob("epoch_*.npz"))[:-_KEPT_CHECKPOINTS]:
        old.unlink(missing_ok=True)


def _load_checkpoint(ckpt_dir: Path, method) -> tuple[int, int]:
    """Restore the last checkpoint; returns (completed epochs, steps)."""
    state_path = ckpt_dir / "state.json"
    try:
        state = json.loads(state_path.read_text())
        with np.load(ckpt_dir / state["file"], allow_pickle=False) as npz:
            arrays = [npz[k] for k in sorted(npz.files)]
    except Exception as exc:  # any unreadable piece makes the checkpoint unusable
        raise PretrainConfigError(
            f"{state_path}: cannot resume from this checkpoint ({type(exc).__name__}); "
            "start again without --resume in a new --out folder") from None
    variables = method.state_variables()
    if len(arrays) != len(variables) or any(
            tuple(a.shape) != tuple(v.shape) for a, v in zip(arrays, variables)):
        raise PretrainConfigError(
            f"{ckpt_dir}: checkpoint does not match this method/architecture/config; resume "
            "with the same configuration or use a new --out folder")
    for a, v in zip(arrays, variables):
        v.assign(a)
    return int(state["epoch"]), int(state["step"])


def _check_resume_config(out: Path, cfg: PretrainConfig) -> None:
    saved_path = out / "config.yaml"
    if not saved_path.is_file():
        return
    saved = yaml.safe_load(saved_path.read_text()) or {}
    now = to_dict(cfg)
    for section, key in (("method", "name"), ("method", "arch"), ("method", "small_stem"),
                         ("data", "channels"), ("data", "input_size"),
                         ("train", "batch_size")):
        if saved.get(section, {}).get(key) != now[section][key]:
            raise PretrainConfigError(
                f"--resume: {section}.{key} was {saved.get(section, {}).get(key)!r} in "
                f"{saved_path}, now {now[section][key]!r}; resume with the same setting")


# -- TensorBoard --------------------------------------------------------------------------------

def _scalar(tag: str, value, step: int) -> None:
    """Write a scalar summary TensorBoard's scalar dashboard shows, with TensorFlow alone (the
    ``tensorboard`` package, which ``tf.summary.scalar`` needs, is not a dependency)."""
    import tensorflow as tf
    from tensorflow.core.framework import summary_pb2

    meta = summary_pb2.SummaryMetadata()
    meta.plugin_data.plugin_name = "scalars"
    tf.summary.write(tag, tf.cast(value, tf.float32), step=step, metadata=meta)


# -- main loop -----------------------------------------------------------------------------------

def pretrain(cfg: PretrainConfig, data: Sequence[str | Path], out: str | Path,
             name: str | None = None, resume: bool = False,
             probe_data: str | Path | None = None, registry: str | Path | None = None,
             progress: bool = True, ctx: Any = None) -> dict[str, Any]:
    """Pretrain a backbone without labels and export it into the registry.

    Parameters
    ----------
    cfg : PretrainConfig
        Validated configuration (``train.batch_size`` is per rank).
    data : sequence of path
        Folders of cutouts and/or large FITS images to sample cutouts from.
    out : path
        Run folder (config, TensorBoard logs, checkpoints).
    name : str, optional
        Registry name (default ``ssl_<method>_<r18|r50>``).
    resume : bool
        Continue from the last checkpoint in ``out`` (fresh start if there is none).
    probe_data : path, optional
        Labelled morphology folder; kNN top-1 accuracy on it is logged every epoch.
    registry : path, optional
        Registry folder (default :func:`ssl_backbones.registry.registry_dir`).
    progress : bool
        Show a tqdm progress bar (rank 0 only).
    ctx : distributed context, optional
        Default ``ssl_backbones.distributed.init()``.

    Returns
    -------
    dict
        ``name``, ``weights`` (exported .npz, rank 0 only), ``epochs``, ``steps``,
        ``losses`` (per step, this run), ``epoch_losses``, ``embedding_std`` (last).
    """
    import keras
    import tensorflow as tf
    from tqdm import tqdm

    from ssl_backbones import distributed
    from ssl_backbones.data import data_digest, load_pretrain_data, view_dataset
    from ssl_backbones.registry import check_export_target, export_backbone

    cfg.validate()
    ctx = ctx if ctx is not None else distributed.init()
    out = Path(out)
    ckpt_dir = out / "checkpoints"
    name = name or default_name(cfg.method.name, cfg.method.arch)
    if out.exists() and not out.is_dir():
        raise PretrainConfigError(f"--out {out}: is a file, not a folder; choose another --out")
    check_export_target(name, registry)
    if (ckpt_dir / "state.json").is_file() and not resume:
        raise PretrainConfigError(
            f"{out}: holds checkpoints of an earlier run; pass --resume or choose another --out")
    if resume:
        _check_resume_config(out, cfg)

    d, t = cfg.data, cfg.train
    snr_input = d.input == "snr3-v1"
    mix_summary = None
    if snr_input:
        from ssl_backbones.sources import auto_sources, load_mix

        specs = d.sources if d.sources and not data else auto_sources(data)
        if not specs:
            raise PretrainConfigError("--data: give MiraBest batches, real images or cutout "
                                      "folders, or list them under data.sources")
        images, files, mix_summary = load_mix(specs, d.cutout_size, t.seed,
                                              d.cutouts_per_image, d.mix_size)
    else:
        if not data:
            raise PretrainConfigError("--data: give a folder of cutouts or FITS images")
        images, files = load_pretrain_data(data, d.cutout_size, d.cutouts_per_image, t.seed,
                                           d.max_nan_fraction)
    # Every rank runs the same number of steps (collectives must pair up): use the smallest
    # shard, which holds at least floor(N / size) cutouts.
    steps_per_epoch = (len(images) // ctx.size) // t.batch_size
    if steps_per_epoch < 1:
        raise PretrainConfigError(
            f"--data: {len(images)} cutouts for {ctx.size} rank(s) cannot fill one batch of "
            f"--batch-size {t.batch_size}; lower the batch size or add cutouts")
    local = images[ctx.shard(len(images))]
    total_steps = t.epochs * steps_per_epoch
    global_batch = t.batch_size * ctx.size

    # Seeded weight initialisation: the same config gives the same run (ranks start equal
    # anyway, after the broadcast below).
    keras.utils.set_random_seed(t.seed)
    method = build_method(cfg, ctx, total_steps)
    method.set_optimizer(build_optimizer(cfg, global_batch, steps_per_epoch, total_steps,
                                         method.online_variables()))
    start_epoch, step = 0, 0
    if resume and (ckpt_dir / "state.json").is_file():
        start_epoch, step = _load_checkpoint(ckpt_dir, method)
        log.info("resuming %s after epoch %d (step %d)", out, start_epoch, step)
    method.broadcast_state()

    probe = _load_probe(probe_data) if probe_data else None
    writer = None
    if ctx.is_root:
        out.mkdir(parents=True, exist_ok=True)
        with atomic_target(out / "config.yaml") as tmp:
            tmp.write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))
        writer = tf.summary.create_file_writer(str(out / "tensorboard"))

    # autograph=False: the step has no tensor-dependent Python control flow, and converting
    # the Keras call graph costs many seconds of tracing.
    train_step = tf.function(method.train_step, reduce_retracing=True, autograph=False)
    data_seed = ctx.seed_for(t.seed)
    losses: list[float] = []
    epoch_losses: list[float] = []
    last_std = float("nan")
    bar = tqdm(total=total_steps, initial=step, unit="step", dynamic_ncols=True,
               disable=not (progress and ctx.is_root), desc=f"pretrain {name}")
    try:
        for epoch in range(start_epoch, t.epochs):
            ds = view_dataset(local, t.batch_size, data_seed, epoch, cfg.augment,
                              d.input_size, d.channels, snr=snr_input).take(steps_per_epoch)
            epoch_sum = 0.0
            for views in ds:  # (view1, view2) or, with local crops, (view1, view2, local)
                metrics = train_step(views[0], views[1], tf.constant(step, tf.int64),
                                     *views[2:])
                loss = float(metrics["loss"])
                if not math.isfinite(loss):
                    raise PretrainConfigError(
                        f"loss became {loss} at step {step}; lower optim.base_lr or check the "
                        "cutouts")
                losses.append(loss)
                epoch_sum += loss
                last_std = float(metrics["embedding_std"])
                if writer is not None and (step % t.log_every == 0):
                    lr = float(np.asarray(method.ssl_optimizer.learning_rate))
                    with writer.as_default():
                        for key, value in metrics.items():
                            _scalar(f"train/{key}", value, step)
                        _scalar("train/lr", lr, step)
                    bar.set_postfix(loss=f"{loss:.3f}", std=f"{last_std:.2f}", lr=f"{lr:.2g}")
                step += 1
                bar.update(1)
            epoch_losses.append(ctx.average(epoch_sum / steps_per_epoch))
            if writer is not None:
                with writer.as_default():
                    _scalar("epoch/loss", epoch_losses[-1], step)
                    if probe is not None:
                        _scalar("epoch/knn_top1", _probe_accuracy(method, probe, cfg), step)
                writer.flush()
            done = epoch + 1
            if ctx.is_root and (done % t.checkpoint_every == 0 or done == t.epochs):
                _save_checkpoint(ckpt_dir, method, done, step)
    finally:
        bar.close()
        if writer is not None:
            writer.close()

    result: dict[str, Any] = {"name": name, "epochs": t.epochs, "steps": step,
                              "losses": losses, "epoch_losses": epoch_losses,
                              "embedding_std": last_std, "weights": None}
    if ctx.is_root:
        extra = _input_meta(cfg, mix_summary) if snr_input else {}
        meta = {
            "method": cfg.method.name, "arch": cfg.method.arch,
            "in_channels": d.channels, "input_size": d.input_size,
            "small_stem": cfg.method.small_stem, "norm": cfg.method.norm,
            "feature_dim": int(method.exported_backbone().output["pooled"].shape[-1]),
            "preprocessing": {"normalize": "minmax over finite pixels", "nan_value": 0.0,
                              "input_size": d.input_size, "resize": "bilinear",
                              "stretches": eval_stretches(cfg),
                              "train_stretch_scheme": cfg.augment.stretch_scheme},
            "epochs": t.epochs, "steps": step, "global_batch": global_batch,
            "ranks": ctx.size, "n_cutouts": int(len(images)),
            "data_digest": data_digest(files), "final_loss": epoch_losses[-1] if epoch_losses
            else None, "config": to_dict(cfg), **extra,
        }
        result["weights"] = str(export_backbone(method.exported_backbone(), name, meta,
                                                registry))
    ctx.barrier()
    return result


def _input_meta(cfg: PretrainConfig, mix_summary) -> dict[str, Any]:
    """Metadata of an ``snr3-v1`` backbone: the input definition the detector checks, and how
    the deterministic input is made."""
    from ssl_backbones.radio_input import INPUT_NAME, REFERENCE_BEAM_PIX

    return {"input_name": INPUT_NAME, "reference_beam_pix": REFERENCE_BEAM_PIX,
            "sources": mix_summary,
            "preprocessing": {"input_name": INPUT_NAME, "units": "snr (image - background) / rms",
                              "reference_beam_pix": REFERENCE_BEAM_PIX, "nan_value": 0.0,
                              "input_size": eval_size(cfg), "crop": "centre",
                              "stretches": "radio_input.snr_channels"}}


def eval_size(cfg: PretrainConfig) -> int:
    """Side of the deterministic network input outside training (pixels)."""
    return cfg.data.eval_size or cfg.data.input_size


def _load_probe(path):
    """A labelled folder, or MiraBest (its confident training images)."""
    from ssl_backbones.data import load_labelled
    from ssl_backbones.mirabest import is_mirabest, load_subset

    if is_mirabest(path):
        images, labels, _ = load_subset(path, "confident", "train")
        return images[..., None], labels, ["FRI", "FRII"]
    return load_labelled(path)


def _probe_accuracy(method, probe, cfg: PretrainConfig) -> float:
    from ssl_backbones.evaluate import extract_features, extract_snr_features, knn_cv_accuracy

    images, labels, classes = probe
    if cfg.data.input == "snr3-v1":
        feats = extract_snr_features(method.exported_backbone(), images[..., 0], eval_size(cfg))
    else:
        feats = extract_features(method.exported_backbone(), images, cfg.data.input_size,
                                 eval_stretches(cfg), cfg.data.channels)
    return knn_cv_accuracy(feats, labels, len(classes), seed=cfg.train.seed)


def run_pretrain(method: str | None, arch: str | None, data: Sequence[str],
                 epochs: int | None = None,
                 batch_size: int | None = None, config: str | None = None,
                 overrides: Sequence[str] = (), out: str | None = None, name: str | None = None,
                 resume: bool = False, probe_data: str | None = None,
                 registry: str | None = None, progress: bool = True) -> dict[str, Any]:
    """Command-line entry: config file, then overrides, then the explicit options (those not
    None); run :func:`pretrain` and print where the backbone went.

    ``out`` defaults to ``runs/pretrain/<name>``.
    """
    items = list(overrides)
    if method is not None:
        items.append(f"method.name={method}")
    if arch is not None:
        items.append(f"method.arch={arch}")
    if epochs is not None:
        items.append(f"train.epochs={int(epochs)}")
    if batch_size is not None:
        items.append(f"train.batch_size={int(batch_size)}")
    cfg = load_pretrain_config(config, items)
    name = name or default_name(cfg.method.name, cfg.method.arch)
    out_dir = Path(out) if out else Path("runs") / "pretrain" / name
    result = pretrain(cfg, data, out_dir, name=name, resume=resume, probe_data=probe_data,
                      registry=registry, progress=progress)
    if result["weights"]:
        last = result["epoch_losses"][-1] if result["epoch_losses"] else float("nan")
        print(f"exported backbone {name} -> {result['weights']} (final loss {last:.4f}, "
              f"embedding std {result['embedding_std']:.3f})")
    return result
