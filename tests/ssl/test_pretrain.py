import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.util import event_pb2

from caesar_mrcnn.cli import main
from ssl_backbones.config import load_pretrain_config
from ssl_backbones.errors import PretrainConfigError
from ssl_backbones.pretrain import pretrain
from ssl_backbones.registry import load_backbone

TINY = Path(__file__).resolve().parents[2] / "configs" / "pretrain" / "tiny.yaml"


def _tensorboard_tags(folder: Path) -> set[str]:
    tags = set()
    for path in folder.glob("events.out.tfevents.*"):
        for record in tf.data.TFRecordDataset(str(path)):
            event = event_pb2.Event.FromString(record.numpy())
            tags |= {v.tag for v in event.summary.value}
    return tags


def test_simclr_pretraining_lowers_loss_and_exports(tmp_path, make_cutouts):
    data = make_cutouts(tmp_path / "cutouts", 40, size=40)
    probe = make_cutouts(tmp_path / "morpho", 15, size=40, seed=1, labels=True)
    cfg = load_pretrain_config(TINY, ["method.name=simclr", "train.epochs=4"])
    reg = tmp_path / "registry"
    res = pretrain(cfg, [data], tmp_path / "run", name="tiny_simclr", probe_data=probe,
                   registry=reg, progress=False)
    assert res["steps"] == 4 * 5 and len(res["losses"]) == 20
    assert res["epoch_losses"][-1] < res["epoch_losses"][0]
    assert res["embedding_std"] > 0.2  # not collapsed (0 would be)
    tags = _tensorboard_tags(tmp_path / "run" / "tensorboard")
    assert {"train/loss", "train/lr", "train/embedding_std", "epoch/knn_top1"} <= tags
    model, meta = load_backbone("tiny_simclr", registry=reg)
    assert (meta["method"], meta["arch"], meta["in_channels"], meta["epochs"]) == (
        "simclr", "resnet18", 3, 4)
    assert len(meta["data_digest"]) == 64 and meta["preprocessing"]["input_size"] == 32
    ckpt = json.loads((tmp_path / "run" / "checkpoints" / "state.json").read_text())
    assert ckpt == {"epoch": 4, "step": 20, "file": "epoch_0004.npz"}
    x = np.random.default_rng(0).uniform(size=(2, 32, 32, 3)).astype(np.float32)
    assert model(x)["pooled"].shape == (2, 512)


def test_cli_byol_resume_list_and_evaluate(tmp_path, make_cutouts, capsys):
    data = make_cutouts(tmp_path / "cutouts", 8, size=40)
    morpho = make_cutouts(tmp_path / "morpho", 12, size=40, seed=2, labels=True)
    reg, out = tmp_path / "registry", tmp_path / "run"
    args = ["pretrain", "--method", "byol", "--data", str(data), "--batch-size", "4",
            "--config", str(TINY), "--out", str(out), "--registry", str(reg), "--no-progress"]
    assert main([*args, "--epochs", "1"]) == 0
    assert (reg / "ssl_byol_r18.npz").is_file()
    assert "ssl_byol_r18" in capsys.readouterr().out
    # A second run into the same folder must be an explicit resume.
    assert main([*args, "--epochs", "2"]) == 2
    assert "--resume" in capsys.readouterr().err
    assert main([*args, "--epochs", "2", "--resume"]) == 0
    state = json.loads((out / "checkpoints" / "state.json").read_text())
    assert (state["epoch"], state["step"]) == (2, 4)
    assert "train/target_decay" in _tensorboard_tags(out / "tensorboard")
    assert json.loads((reg / "ssl_byol_r18.json").read_text())["epochs"] == 2

    capsys.readouterr()
    assert main(["backbones", "--registry", str(reg)]) == 0
    listing = capsys.readouterr().out
    assert "ssl_byol_r18" in listing and "byol" in listing and "resnet18" in listing

    result_json = tmp_path / "eval.json"
    assert main(["ssl-eval", "--backbone", "ssl_byol_r18", "--data", str(morpho), "--folds", "3",
                 "--k", "5", "--registry", str(reg), "--out", str(result_json)]) == 0
    table = capsys.readouterr().out
    assert "linear_probe" in table and "knn" in table and "±" in table
    result = json.loads(result_json.read_text())
    assert result["n_classes"] == 3 and result["folds"] == 3
    for variant in ("pretrained", "random_init"):
        for clf in ("linear_probe", "knn"):
            assert 0.0 <= result["results"][variant][clf]["top1"]["mean"] <= 1.0

    assert main(["ssl-eval", "--backbone", "ssl_nope", "--data", str(morpho),
                 "--registry", str(reg)]) == 2
    assert "ssl_byol_r18" in capsys.readouterr().err


def test_bad_inputs_leave_no_output(tmp_path, make_cutouts, capsys):
    out = tmp_path / "run"
    assert main(["pretrain", "--data", str(tmp_path / "missing"), "--out", str(out),
                 "--config", str(TINY), "--registry", str(tmp_path / "reg")]) == 2
    err = capsys.readouterr().err
    assert "missing" in err and len(err.strip().splitlines()) == 1
    assert not out.exists() and not (tmp_path / "reg").exists()
    data = make_cutouts(tmp_path / "few", 3, size=40)
    cfg = load_pretrain_config(TINY)
    with pytest.raises(PretrainConfigError, match="batch"):
        pretrain(cfg, [data], out, registry=tmp_path / "reg", progress=False)
    assert not out.exists()


def test_cli_dino_multi_crop_exports_and_resumes(tmp_path, make_cutouts, capsys):
    data = make_cutouts(tmp_path / "cutouts", 8, size=40)
    reg, out = tmp_path / "registry", tmp_path / "run"
    args = ["pretrain", "--method", "dino", "--data", str(data), "--batch-size", "4",
            "--config", str(TINY), "--out", str(out), "--registry", str(reg), "--no-progress",
            "--set", "augment.local_crops=2", "--set", "augment.local_size=16",
            "--set", "method.out_dim=64"]
    assert main([*args, "--epochs", "1"]) == 0
    assert "ssl_dino_r18" in capsys.readouterr().out
    first = dict(np.load(reg / "ssl_dino_r18.npz"))
    assert main([*args, "--epochs", "2", "--resume"]) == 0
    state = json.loads((out / "checkpoints" / "state.json").read_text())
    assert (state["epoch"], state["step"]) == (2, 4)
    assert {"train/teacher_entropy", "train/teacher_temp", "train/target_decay"} <= \
        _tensorboard_tags(out / "tensorboard")
    model, meta = load_backbone("ssl_dino_r18", registry=reg)
    assert (meta["method"], meta["epochs"], meta["config"]["augment"]["local_crops"]) == (
        "dino", 2, 2)
    second = dict(np.load(reg / "ssl_dino_r18.npz"))
    assert first.keys() == second.keys()
    assert any(not np.array_equal(first[k], second[k]) for k in first)  # it went on training
    x = np.random.default_rng(0).uniform(size=(2, 32, 32, 3)).astype(np.float32)
    assert np.all(np.isfinite(model(x)["pooled"]))


def test_local_crops_refused_by_methods_without_them(tmp_path, make_cutouts):
    data = make_cutouts(tmp_path / "cutouts", 8, size=40)
    cfg = load_pretrain_config(TINY, ["method.name=byol", "augment.local_crops=2"])
    with pytest.raises(PretrainConfigError, match="local"):
        pretrain(cfg, [data], tmp_path / "run", registry=tmp_path / "reg", progress=False)
