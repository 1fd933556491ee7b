"""MiraBest reader, noise-unit mapping and the official-split evaluation on real images."""

import json
import os
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest

from ssl_backbones import mirabest as mb
from ssl_backbones.errors import PretrainConfigError
from ssl_backbones.mirabest_eval import macro_f1, stratified_subset, wilson_interval

REAL = Path(os.environ.get("CAESAR_REAL_DATA",
                           Path(__file__).resolve().parents[2] / ".." / "shared" / "real"))
TARBALL = REAL / "mirabest" / "MiraBest_F_batches.tar.gz"
needs_mirabest = pytest.mark.skipif(not TARBALL.exists(), reason="MiraBest batches absent")


def _batch(images, labels, names):
    return {"data": np.asarray(images, np.uint8).reshape(len(images), -1),
            "labels": list(labels), "filenames": [f"./x/{n}.png" for n in names],
            "batch_label": "b"}


def _write_batches(folder: Path, per_batch: dict[str, tuple]) -> Path:
    folder.mkdir(parents=True)
    for name, (x, y, n) in per_batch.items():
        with open(folder / name, "wb") as fh:
            pickle.dump(_batch(x, y, n), fh)
    return folder


@needs_mirabest
def test_reader_matches_the_published_counts_from_the_tarball():
    train, test = mb.read_split(TARBALL, "train"), mb.read_split(TARBALL, "test")
    assert train.images.shape == (1099, 150, 150) and test.images.shape == (157, 150, 150)
    assert train.images.dtype == np.uint8
    assert np.bincount(test.labels).tolist() == [42, 6, 1, 24, 1, 54, 1, 24, 2, 2]
    assert not set(train.filenames) & set(test.filenames)
    for subset, n_train, n_test in (("confident", (348, 381), (49, 55)),
                                    ("full", (517, 552), (74, 79))):
        assert tuple(np.bincount(mb.binary_subset(train, subset)[1])) == n_train
        assert tuple(np.bincount(mb.binary_subset(test, subset)[1])) == n_test


@needs_mirabest
def test_folder_and_tarball_give_the_same_images(tmp_path):
    with tarfile.open(TARBALL) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith("test_batch"))
        raw = tar.extractfile(member).read()
    folder = tmp_path / "F_batches"
    folder.mkdir()
    (folder / "test_batch").write_bytes(raw)
    a, b = mb.read_split(tmp_path, "test"), mb.read_split(TARBALL, "test")
    assert np.array_equal(a.images, b.images) and a.filenames == b.filenames


def test_snr_mapping_puts_the_faintest_kept_pixel_near_three_sigma():
    img = np.zeros((1, 150, 150), np.uint8)
    img[0, 70:80, 70:80] = 9          # faintest kept level
    img[0, 75, 75] = 255
    snr = mb.to_snr(img)[0]
    assert snr[70, 70] == pytest.approx(3 * 9 / 9.5)
    assert snr[75, 75] == pytest.approx(3 * 255 / 9.5)
    assert snr[0, 0] == 0.0
    assert mb.to_snr(np.zeros((1, 4, 4), np.uint8)).max() == 0.0


def test_resampling_brings_first_to_the_reference_sampling():
    from ssl_backbones.radio_input import REFERENCE_BEAM_PIX

    out = mb.to_reference(np.full((2, 150, 150), 7, np.uint8))
    side = round(150 * REFERENCE_BEAM_PIX / mb.FIRST_BEAM_PIX)
    assert out.shape == (2, side, side)


def test_reader_refuses_foreign_pickles_and_missing_batches(tmp_path):
    folder = tmp_path / "F_batches"
    folder.mkdir()
    (folder / "test_batch").write_bytes(pickle.dumps({"data": Path("x"), "labels": []}))
    with pytest.raises(PretrainConfigError, match="not a MiraBest batch"):
        mb.read_split(folder, "test")
    with pytest.raises(PretrainConfigError, match="data_batch_1"):
        mb.read_split(folder, "train")
    with pytest.raises(PretrainConfigError, match="no such file"):
        mb.read_split(tmp_path / "nope", "test")
    with pytest.raises(PretrainConfigError, match="--subset"):
        mb.binary_subset(mb.MiraBestSplit(np.zeros((0, 150, 150), np.uint8),
                                          np.zeros(0, int), []), "hybrid")


def test_wilson_interval_and_f1_known_values():
    lo, hi = wilson_interval(90, 100)
    assert (round(lo, 4), round(hi, 4)) == (0.8256, 0.9448)
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(10, 10)[1] == 1.0
    assert macro_f1([0, 0, 1, 1], [0, 1, 1, 1]) == pytest.approx((2 / 3 + 0.8) / 2)
    idx = stratified_subset(np.array([0] * 60 + [1] * 40), 10, seed=0)
    assert len(idx) == 10 and (np.array([0] * 60 + [1] * 40)[idx] == 0).sum() == 6


@needs_mirabest
def test_ssl_eval_end_to_end_on_a_few_real_images(tmp_path, capsys):
    """A few real images per batch, an untrained snr3-v1 backbone: the whole command runs and
    reports the backbone beside its twin on the official split."""
    import keras

    from caesar_mrcnn.cli import main
    from ssl_backbones.radio_input import INPUT_NAME
    from ssl_backbones.registry import export_backbone
    from ssl_backbones.resnet import build_resnet

    rng = np.random.default_rng(0)
    batches = {}
    splits = {"train": mb.read_split(TARBALL, "train"), "test": mb.read_split(TARBALL, "test")}
    for name in (*mb.TRAIN_BATCHES, mb.TEST_BATCH):
        split = splits["test" if name == mb.TEST_BATCH else "train"]
        keep = np.concatenate([rng.choice(np.flatnonzero(split.labels == c), 2, replace=False)
                               for c in (0, 5)])
        batches[name] = (split.images[keep], split.labels[keep],
                         [split.filenames[i] for i in keep])
    folder = _write_batches(tmp_path / "F_batches", batches)
    keras.utils.set_random_seed(1)
    meta = {"arch": "resnet18", "in_channels": 3, "small_stem": False, "norm": "batch",
            "input_name": INPUT_NAME,
            "preprocessing": {"input_name": INPUT_NAME, "input_size": 32}}
    export_backbone(build_resnet("resnet18", 3, False, "batch"), "tiny_snr", meta,
                    tmp_path / "reg")
    out = tmp_path / "eval.json"
    assert main(["ssl-eval", "--backbone", "tiny_snr", "--registry", str(tmp_path / "reg"),
                 "--data", str(folder), "--k", "3", "--out", str(out),
                 "--protocols", "linear,knn,finetune", "--finetune-epochs", "1",
                 "--finetune-labels", "10", "--finetune-subset-epochs", "2"]) == 0
    table = capsys.readouterr().out
    assert "pretrained" in table and "random_init" in table and "F1" in table
    result = json.loads(out.read_text())
    assert (result["n_train"], result["n_test"]) == (28, 4)
    for variant in ("pretrained", "random_init"):
        for protocol in ("linear", "knn", "finetune", "finetune_10"):
            r = result["results"][variant][protocol]
            assert r["n"] == 4 and 0 <= r["correct"] <= 4
            assert r["ci95"][0] <= r["accuracy"] <= r["ci95"][1]
        ft = result["results"][variant]
        assert (ft["finetune"]["n_labels"], ft["finetune"]["steps"]) == (28, 1)
        assert (ft["finetune_10"]["n_labels"], ft["finetune_10"]["epochs"]) == (10, 2)
