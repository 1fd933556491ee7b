"""Detector training: overfit two simulated fields, exact resume, CLI errors, and the pieces
(learning-rate schedule, weight decay, staged unfreezing, checkpoints, pretrained backbones)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from caesar_mrcnn import cli  # noqa: E402
from caesar_mrcnn.config import load_config  # noqa: E402
from caesar_mrcnn.errors import CheckpointError, ConfigError, WeightsError  # noqa: E402
from caesar_mrcnn.training.backbone import (  # noqa: E402
    BackboneFreezer,
    frozen_stages,
    load_pretrained,
    model_config_for,
    resolve_backbone_spec,
)
from caesar_mrcnn.training.checkpoint import (  # noqa: E402
    list_checkpoints,
    read_checkpoint,
    restore_checkpoint,
    save_checkpoint,
)
from caesar_mrcnn.training.config import BackboneConfig, OptimConfig  # noqa: E402
from caesar_mrcnn.training.loop import load_train_config, train  # noqa: E402
from caesar_mrcnn.training.optim import build_optimizer, learning_rate_schedule  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "configs" / "detect" / "tiny.yaml"


@pytest.fixture(scope="module")
def sim_dir(tmp_path_factory):
    """Two simulated 128 x 128 fields with their ground truth (configs/sim/tiny.yaml)."""
    from caesar_mrcnn.sim.config import SimConfig
    from caesar_mrcnn.sim.writer import simulate_dataset

    out = tmp_path_factory.mktemp("sim") / "tiny"
    simulate_dataset(load_config(SimConfig, ROOT / "configs" / "sim" / "tiny.yaml"), out)
    return out


def _cfg(sim_dir, out, *overrides):
    return load_train_config(TINY, [f"data.train={sim_dir}", f"out={out}", "progress=false",
                                    "log_every=1", *overrides])


def _event_tags(folder: Path) -> dict[str, str]:
    """TensorBoard tags written in ``folder`` and the plugin that shows each."""
    from tensorflow.core.util import event_pb2

    tags = {}
    for file in folder.glob("events.out.tfevents.*"):
        for record in tf.data.TFRecordDataset(str(file)):
            for value in event_pb2.Event.FromString(record.numpy()).summary.value:
                tags[value.tag] = value.metadata.plugin_data.plugin_name
    return tags


def _mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


# --- end to end -----------------------------------------------------------------------------


def test_overfit_two_fields_then_detect_every_bright_source(sim_dir, tmp_path):
    from caesar_mrcnn.data.preprocess import Preprocessor
    from caesar_mrcnn.data.readers import load_dataset
    from caesar_mrcnn.detection.detector_file import load_full_model as load_detector
    from caesar_mrcnn.io.fits import read_image

    out = tmp_path / "run"
    steps = 120
    cfg = _cfg(sim_dir, out, f"steps={steps}", "data.pipeline.augment.enabled=false",
               "optim.lr=0.002", "optim.warmup_steps=10", f"data.val={sim_dir}",
               f"validate_every={steps}", f"image_every={steps}", "checkpoint_every=0")
    result = train(cfg)

    totals = np.array([h["total"] for h in result.history])
    assert len(totals) == steps and np.all(np.isfinite(totals))
    assert totals[-10:].mean() < 0.4 * totals[:10].mean()
    assert result.validation and result.validation[-1]["step"] == steps
    assert result.validation[-1]["mask_AP50"] > 0.8
    for name in ("train_config.yaml", "metrics.json", "detector.npz",
                 f"checkpoints/ckpt-{steps:08d}.npz"):
        assert (out / name).is_file(), name
    tags = _event_tags(out / "tensorboard")
    for tag in ("loss/total", "loss/mask", "train/lr", "train/grad_norm", "val/mask_AP",
                "val/loss/total"):
        assert tags.get(tag) == "scalars", tag
    assert tags.get("train/predictions") == "images"
    assert not list(out.rglob("*.part*"))  # atomic writes left no temporary files

    model, meta = load_detector(result.detector)
    pre = Preprocessor(meta["preprocess_config"])
    checked = 0
    for sample in load_dataset(sim_dir):
        image = pre(read_image(sample.image_path).data)[None]
        det = {k: np.asarray(v) for k, v in model(image).items()}
        keep = det["valid"][0] & (det["scores"][0] >= 0.5)
        masks = [det["masks"][0, d] > 0.5 for d in np.flatnonzero(keep)]
        for ann in sample.annotations:
            if ann.attrs["snr"] < 20:
                continue
            truth = ann.full_mask(sample.shape)
            best = max((_mask_iou(truth, m) for m in masks), default=0.0)
            assert best >= 0.7, (sample.image_path.name, ann.category, ann.attrs["snr"], best)
            checked += 1
    assert checked >= 4


def test_interrupted_run_resumes_to_the_same_weights(sim_dir, tmp_path):
    """N steps in one go == k steps, stop, resume (through the CLI) to N; with augmentation
    and a backbone frozen for the first two steps.

    ``deterministic=true``: without it the last bits of multithreaded CPU sums vary from
    process to process, and top-k proposals and sampling can grow them into different losses.
    With it, the resumed run must match bit for bit."""
    from caesar_mrcnn.data.preprocess import Preprocessor
    from caesar_mrcnn.modeling.maskrcnn import MaskRCNN

    opts = ["steps=4", "checkpoint_every=2", "keep_checkpoints=5", "optim.warmup_steps=2",
            "image_every=0", "data.pipeline.augment.affine_prob=0.5", "backbone.freeze=staged",
            "backbone.unfreeze_steps=[2]", "optim.name=sgd", "optim.lr=0.01", "deterministic=true"]
    cfg = _cfg(sim_dir, tmp_path / "whole", *opts)
    whole = train(cfg)
    assert [s for s, _ in list_checkpoints(tmp_path / "whole" / "checkpoints")] == [2, 4]
    from tensorflow.python.framework import config as tf_config

    assert not tf_config.is_op_determinism_enabled()  # scoped to the run

    # Frozen for steps 1-2 (weights still those of the seeded initialisation), then trained.
    keras.utils.set_random_seed(cfg.seed)
    channels = Preprocessor(cfg.preprocess).num_channels  # the run sets in_channels from it
    fresh = MaskRCNN(dataclasses.replace(cfg.model, in_channels=channels), seed=cfg.seed)
    in_backbone = {id(v) for v in fresh.backbone.weights}
    idx = [i for i, v in enumerate(fresh.variables) if id(v) in in_backbone]
    _, at2, _ = read_checkpoint(tmp_path / "whole" / "checkpoints" / "ckpt-00000002.npz")
    _, at4, _ = read_checkpoint(tmp_path / "whole" / "checkpoints" / "ckpt-00000004.npz")
    for i in idx:
        np.testing.assert_array_equal(at2[i], fresh.variables[i].numpy())
    assert any(not np.array_equal(at2[i], at4[i]) for i in idx)
    head = [i for i in range(len(at2)) if i not in set(idx) and at2[i].dtype.kind == "f"]
    assert any(not np.array_equal(at2[i], fresh.variables[i].numpy()) for i in head)

    part = train(_cfg(sim_dir, tmp_path / "part", *opts), stop_at=2)
    assert part.step == 2 and part.detector is None
    assert [s for s, _ in list_checkpoints(tmp_path / "part" / "checkpoints")] == [2]
    assert [h["total"] for h in part.history] == [h["total"] for h in whole.history[:2]]

    argv = ["train", "--config", str(TINY), "--data", str(sim_dir), "--out",
            str(tmp_path / "part"), "--resume", "--set", "progress=false"]
    argv += [a for o in opts for a in ("--set", o)]
    assert cli.main(argv) == 0

    _, model_a, optim_a = read_checkpoint(tmp_path / "whole" / "checkpoints" / "ckpt-00000004.npz")
    _, model_b, optim_b = read_checkpoint(tmp_path / "part" / "checkpoints" / "ckpt-00000004.npz")
    for a, b in zip(model_a + optim_a, model_b + optim_b, strict=True):
        np.testing.assert_array_equal(a, b)
    last_a = json.loads((tmp_path / "whole" / "metrics.json").read_text())["last"]
    last_b = json.loads((tmp_path / "part" / "metrics.json").read_text())["last"]
    assert last_a["step"] == last_b["step"] == 4
    for key in ("total", "rpn_cls", "cls", "mask", "lr"):
        assert last_a[key] == last_b[key], key
    assert (tmp_path / "part" / "detector.npz").is_file()
    # The detector says where it came from, including the run it resumed.
    from caesar_mrcnn.detection.detector_file import read_detector

    record = read_detector(tmp_path / "part" / "detector.npz")[0]["provenance"]
    assert record["data"] == [str(sim_dir)] and record["data_digest"]
    assert record["resumed_from"]["data_digest"] == record["data_digest"]
    # The detector of an earlier checkpoint records the run that wrote that checkpoint.
    from caesar_mrcnn.zoo.pack import detector_from_checkpoint

    early = detector_from_checkpoint(tmp_path / "part", tmp_path / "early.npz", step=2)
    assert read_detector(early)[0]["provenance"] == record["resumed_from"]


def test_sigterm_stops_the_command_with_a_checkpoint(sim_dir, tmp_path):
    """A batch scheduler's SIGTERM: exit 130, a readable checkpoint, no detector file."""
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "caesar_mrcnn.cli", "train", "--config", str(TINY), "--data",
           str(sim_dir), "--out", str(out), "--steps", "1000", "--set", "checkpoint_every=3",
           "--set", "progress=false", "--set", "image_every=0"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 300
        while not (out / "checkpoints" / "ckpt-00000003.npz").exists():
            assert proc.poll() is None, proc.stdout.read().decode()[-2000:]
            assert time.monotonic() < deadline, "no checkpoint after 300 s"
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert rc == 130
    steps = [s for s, _ in list_checkpoints(out / "checkpoints")]
    assert steps and steps[-1] >= 3
    info, _, _ = read_checkpoint(out / "checkpoints" / f"ckpt-{steps[-1]:08d}.npz")
    assert info["step"] == steps[-1]
    assert not (out / "detector.npz").exists() and not list(out.rglob("*.part*"))


def test_init_starts_from_a_detector_and_records_it(sim_dir, tmp_path, capsys):
    """``init``: the run's first weights are the file's (a run with another seed, trained one
    step), not the seeded initialisation; the detector says what it started from; a file of
    another model is a one-line error naming the option."""
    from caesar_mrcnn.detection.detector_file import read_detector

    quiet = ["steps=1", "image_every=0", "backbone.freeze=frozen"]
    first = train(_cfg(sim_dir, tmp_path / "first", *quiet, "seed=1")).detector
    _, want = read_detector(first)
    # An update of ~1e-12 leaves the starting weights; they must be the file's.
    tuned = train(_cfg(sim_dir, tmp_path / "tuned", *quiet, "optim.lr=1e-12",
                       "optim.warmup_steps=0", f"init={first}")).detector
    meta, got = read_detector(tuned)
    for a, b in zip(want, got, strict=True):
        np.testing.assert_allclose(b, a, atol=1e-8)
    fresh = train(_cfg(sim_dir, tmp_path / "fresh", *quiet, "optim.lr=1e-12",
                       "optim.warmup_steps=0")).detector
    assert any(not np.allclose(a, b, atol=1e-6)
               for a, b in zip(want, read_detector(fresh)[1], strict=True))
    assert meta["train"]["init"]["file"] == str(first)
    assert meta["train"]["init"]["train"]["seed"] == 1
    assert meta["provenance"]["init"]["file"] == str(first)
    from caesar_mrcnn.zoo.info import model_info

    assert model_info(tuned)["facts"]["started from"] == f"{first} (1 steps on {sim_dir})"

    code = cli.main(["train", "--config", str(TINY), "--data", str(sim_dir), "--out",
                     str(tmp_path / "wide"), "--steps", "1", "--init", str(first),
                     "--set", "model.fpn_channels=32", "--set", "progress=false"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert err.count("init:") == 1 and str(first) in err and "shape" in err
    assert not (tmp_path / "wide").exists()
    assert _cli(tmp_path, sim_dir, "--init", str(tmp_path / "missing.npz")) == 2
    assert "init:" in capsys.readouterr().err and not (tmp_path / "out").exists()


# --- command-line errors --------------------------------------------------------------------


def _cli(tmp_path, sim_dir, *extra):
    return cli.main(["train", "--config", str(TINY), "--data", str(sim_dir), "--out",
                     str(tmp_path / "out"), "--steps", "1", "--set", "progress=false", *extra])


def test_cli_unknown_backbone_is_a_clear_error(tmp_path, sim_dir, capsys):
    assert _cli(tmp_path, sim_dir, "--backbone", "ssl_nonexistent_r18") == 2
    err = capsys.readouterr().err.strip()
    assert "ssl_nonexistent_r18" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_cli_refuses_to_overwrite_a_run_without_resume(tmp_path, sim_dir, capsys):
    (tmp_path / "out" / "checkpoints").mkdir(parents=True)
    (tmp_path / "out" / "checkpoints" / "ckpt-00000002.npz").write_bytes(b"")
    assert _cli(tmp_path, sim_dir) == 2
    assert "--resume" in capsys.readouterr().err


def test_cli_missing_dataset(tmp_path, capsys):
    assert _cli(tmp_path, tmp_path / "nowhere") == 2
    assert "nowhere" in capsys.readouterr().err


def test_cli_resume_from_corrupt_checkpoint(tmp_path, sim_dir, capsys):
    folder = tmp_path / "out" / "checkpoints"
    folder.mkdir(parents=True)
    (folder / "ckpt-00000002.npz").write_bytes(b"PK\x03\x04 truncated")
    assert _cli(tmp_path, sim_dir, "--resume") == 2
    assert "corrupt" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["tiny", "r18", "r50"])
def test_shipped_configs_load(name):
    cfg = load_train_config(ROOT / "configs" / "detect" / f"{name}.yaml")
    assert cfg.model.arch == cfg.backbone.name
    assert cfg.data.pipeline.augment.scale_range[0] <= cfg.data.pipeline.augment.scale_range[1]


def test_bad_config_values_are_rejected(tmp_path):
    with pytest.raises(ConfigError, match="optim.name"):
        load_train_config(TINY, ["optim.name=rmsprop"])
    with pytest.raises(ConfigError, match="unfreeze_steps"):
        load_train_config(TINY, ["backbone.freeze=staged"])
    with pytest.raises(ConfigError, match="batch_size"):
        load_train_config(TINY, ["batch_size=0"])


# --- pieces ---------------------------------------------------------------------------------


def test_warmup_cosine_schedule_matches_formula():
    cfg = OptimConfig(warmup_steps=10, final_lr_fraction=0.1)
    sched = learning_rate_schedule(cfg, 0.02, 110)
    got = np.array([float(sched(s)) for s in (0, 4, 9, 10, 60, 110, 200)])
    progress = np.array([0.0, 0.5, 1.0, 1.0])
    cos = 0.002 + 0.5 * (0.02 - 0.002) * (1 + np.cos(np.pi * progress))
    want = np.r_[0.02 * np.array([1, 5, 10]) / 10, cos]
    np.testing.assert_allclose(got, want, rtol=1e-5)


@pytest.mark.parametrize("name", ["sgd", "adamw"])
def test_weight_decay_skips_biases_and_norms_and_clipping_applies(name):
    inputs = keras.Input((4,))
    x = keras.layers.Dense(3, name="dense")(inputs)
    x = keras.layers.LayerNormalization(name="norm")(x)
    model = keras.Model(inputs, x)
    cfg = OptimConfig(name=name, lr=0.1, weight_decay=0.5, warmup_steps=0, momentum=0.0,
                      clip_norm=1e-3)
    variables = model.trainable_variables
    opt = build_optimizer(cfg, learning_rate_schedule(cfg, 0.1, 100), variables)
    before = [v.numpy().copy() for v in variables]
    opt.apply_gradients(zip([tf.zeros_like(v) for v in variables], variables))
    for v, b in zip(variables, before):
        if len(v.shape) > 1:
            np.testing.assert_allclose(v.numpy(), b * (1 - 0.1 * 0.5), rtol=1e-5)
        else:
            np.testing.assert_array_equal(v.numpy(), b)
    # A huge gradient moves the weights by at most lr * clip_norm (SGD) per step.
    if name == "sgd":
        before = [v.numpy().copy() for v in variables]
        opt.apply_gradients(zip([tf.fill(v.shape, 1e6) for v in variables], variables))
        bias = [v for v in variables if v.path.endswith("dense/bias")][0]
        b0 = before[[v.path for v in variables].index(bias.path)]
        assert np.abs(bias.numpy() - b0).max() <= 0.1 * 1e-3 * 1.0001


def test_staged_unfreezing_releases_deepest_stages_first():
    cfg = BackboneConfig(freeze="staged", unfreeze_steps=[10, 20, 30])
    assert frozen_stages(cfg, 0) == ("res5", "res4", "res3", "res2", "stem")
    assert frozen_stages(cfg, 10) == ("res4", "res3", "res2", "stem")
    assert frozen_stages(cfg, 25) == ("res3", "res2", "stem")
    assert frozen_stages(cfg, 30) == ()
    assert frozen_stages(BackboneConfig(freeze="frozen"), 10**6) == frozen_stages(cfg, 0)
    assert frozen_stages(BackboneConfig(), 0) == ()

    from ssl_backbones.resnet import build_resnet

    backbone = build_resnet("resnet18", 1, norm="batch")
    freezer = BackboneFreezer(backbone, cfg)
    every = freezer.all_trainable(backbone)
    assert freezer.update(0) and not backbone.trainable_variables
    assert not freezer.update(5)
    assert freezer.update(10)
    names = {v.path.split("/")[0] for v in backbone.trainable_variables}
    assert names and all(n.startswith("res5_") for n in names)
    freezer.update(30)
    assert len(backbone.trainable_variables) == len(every)


def test_frozen_batch_norm_stays_frozen_when_stages_are_released():
    from ssl_backbones.resnet import build_resnet

    backbone = build_resnet("resnet18", 1, norm="frozen_batch")
    n = len(backbone.trainable_variables)
    freezer = BackboneFreezer(backbone, BackboneConfig(freeze="staged", unfreeze_steps=[1]))
    freezer.update(0)
    freezer.update(1)
    assert len(backbone.trainable_variables) == n
    assert not any("norm" in v.path for v in backbone.trainable_variables)


def test_checkpoint_round_trip_and_corruption(tmp_path):
    a = keras.Variable(np.arange(6, dtype=np.float32).reshape(2, 3))
    b = keras.Variable(np.float32(3.5))
    step = keras.Variable(np.int64(7))
    for s in (2, 4, 6):
        path = save_checkpoint(tmp_path, s, [a, b], [step], {"note": s}, keep=2)
    assert [s for s, _ in list_checkpoints(tmp_path)] == [4, 6]
    a.assign(np.zeros((2, 3), np.float32))
    step.assign(0)
    info = restore_checkpoint(path, [a, b], [step])
    assert info["step"] == 6 and info["meta"]["note"] == 6
    assert info["meta"]["provenance"]["versions"]["numpy"] == np.__version__
    np.testing.assert_array_equal(a.numpy(), np.arange(6).reshape(2, 3))
    assert int(step.numpy()) == 7
    with pytest.raises(CheckpointError, match="shape"):
        restore_checkpoint(path, [keras.Variable(np.zeros(3, np.float32)), b], [step])
    with pytest.raises(CheckpointError, match="holds 2 model"):
        restore_checkpoint(path, [a], [step])
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt"):
        read_checkpoint(path)
    with pytest.raises(CheckpointError, match="not found"):
        read_checkpoint(tmp_path / "ckpt-00000099.npz")


def test_pretrained_backbone_loads_and_mismatch_is_a_clear_error(tmp_path):
    from caesar_mrcnn.modeling.maskrcnn import MaskRCNN
    from ssl_backbones.registry import export_backbone
    from ssl_backbones.resnet import backbone_weights, build_resnet

    donor = build_resnet("resnet18", 1)
    path = export_backbone(donor, "unit_r18", {"arch": "resnet18", "in_channels": 1,
                                               "small_stem": False}, registry=tmp_path)
    weights, meta = resolve_backbone_spec(str(path))
    model_cfg = model_config_for(load_train_config(TINY).model, meta, channels=1)
    model = MaskRCNN(model_cfg)
    load_pretrained(model.backbone, weights, "unit_r18")
    got = backbone_weights(model.backbone)
    for key, value in backbone_weights(donor).items():
        np.testing.assert_array_equal(got[key], value)

    with pytest.raises(WeightsError, match="3 channel"):
        model_config_for(model_cfg, meta, channels=3)
    with pytest.raises(WeightsError, match="small_stem"):
        model_config_for(model_cfg, {**meta, "small_stem": True}, channels=1)
    with pytest.raises(WeightsError, match="model.norm=group"):
        model_config_for(model_cfg, {**meta, "norm": "group"}, channels=1)
    assert model_config_for(model_cfg, {**meta, "norm": "batch"}, channels=1) == model_cfg
    other = build_resnet("resnet50", 1)
    with pytest.raises(WeightsError, match="unit_r50"):
        load_pretrained(model.backbone, backbone_weights(other), "unit_r50")
    with pytest.raises(WeightsError, match="no_such_backbone"):
        resolve_backbone_spec("no_such_backbone")
    r50_cfg = model_config_for(model_cfg, {"name": "resnet50", "arch": "resnet50"}, 1)
    assert r50_cfg.arch == "resnet50"
