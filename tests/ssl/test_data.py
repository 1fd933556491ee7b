import numpy as np
import pytest
from astropy.io import fits

from ssl_backbones.config import AugmentConfig
from ssl_backbones.data import (
    data_digest,
    load_cutout_folder,
    load_labelled,
    load_pretrain_data,
    sample_cutouts,
    view_dataset,
)
from ssl_backbones.errors import PretrainConfigError


def test_folder_skips_mostly_nan_and_keeps_order(tmp_path, make_cutouts):
    folder = make_cutouts(tmp_path / "c", 5, size=24)
    blank = np.full((24, 24), np.nan, np.float32)
    blank[:2] = 1.0
    fits.writeto(folder / "zz_blank.fits", blank)
    images, files = load_cutout_folder(folder, max_nan_fraction=0.5)
    assert images.shape == (5, 24, 24, 1) and images.dtype == np.float32
    assert len(files) == 6
    np.testing.assert_array_equal(images[0, ..., 0], fits.getdata(folder / "cut_0000.fits"))


def test_size_mismatch_and_empty_folder(tmp_path, make_cutouts):
    folder = make_cutouts(tmp_path / "c", 2, size=24)
    fits.writeto(folder / "odd.fits", np.zeros((20, 24), np.float32))
    with pytest.raises(PretrainConfigError, match="odd.fits"):
        load_cutout_folder(folder)
    (tmp_path / "empty").mkdir()
    with pytest.raises(PretrainConfigError, match="no FITS"):
        load_cutout_folder(tmp_path / "empty")
    (tmp_path / "empty" / "bad.fits").write_text("not fits")
    with pytest.raises(PretrainConfigError, match="bad.fits"):
        load_cutout_folder(tmp_path / "empty")


def test_sample_from_large_image_avoids_nan_region(tmp_path):
    data = np.random.default_rng(0).normal(size=(1, 1, 128, 128)).astype(np.float32)
    data[..., :, :64] = np.nan  # degenerate axes and a blank half, as in survey mosaics
    fits.writeto(tmp_path / "big.fits", data)
    cuts = sample_cutouts([tmp_path / "big.fits"], 32, 20, seed=1, max_nan_fraction=0.3)
    assert cuts.shape[1:] == (32, 32, 1) and 0 < len(cuts) <= 20
    assert all(np.mean(np.isnan(c)) <= 0.3 for c in cuts)
    again = sample_cutouts([tmp_path / "big.fits"], 32, 20, seed=1, max_nan_fraction=0.3)
    np.testing.assert_array_equal(np.nan_to_num(cuts), np.nan_to_num(again))
    with pytest.raises(PretrainConfigError, match="smaller"):
        sample_cutouts([tmp_path / "big.fits"], 256, 2, seed=0)


def test_mixed_sources_and_digest(tmp_path, make_cutouts):
    folder = make_cutouts(tmp_path / "c", 3, size=32)
    fits.writeto(tmp_path / "big.fits", np.ones((64, 64), np.float32))
    images, files = load_pretrain_data([folder, tmp_path / "big.fits"], 32, 4, seed=0)
    assert images.shape == (7, 32, 32, 1) and len(files) == 4
    digest = data_digest(files)
    assert len(digest) == 64 and digest == data_digest(list(reversed(files)))
    (folder / "cut_0000.fits").write_bytes((folder / "cut_0000.fits").read_bytes() + b" " * 2880)
    assert data_digest(files) != digest
    with pytest.raises(PretrainConfigError, match="no such"):
        load_pretrain_data([tmp_path / "missing"], 32, 4, seed=0)


def test_labelled_set(tmp_path, make_cutouts):
    folder = make_cutouts(tmp_path / "m", 6, size=24, labels=True)
    images, labels, classes = load_labelled(folder)
    assert images.shape == (6, 24, 24, 1)
    assert classes == sorted(["compact", "FR-I", "FR-II"])
    assert [classes[i] for i in labels[:3]] == ["compact", "FR-I", "FR-II"]
    (folder / "labels.csv").write_text("file,label\nmissing.fits,compact\n")
    with pytest.raises(PretrainConfigError, match="missing.fits"):
        load_labelled(folder)


def test_view_dataset_batches(tmp_path, make_cutouts):
    images, _ = load_cutout_folder(make_cutouts(tmp_path / "c", 5, size=24))
    batches = list(view_dataset(images, 2, seed=0, epoch=0, augment_cfg=AugmentConfig(),
                                size=16, channels=3))
    assert len(batches) == 2  # the partial batch is dropped
    v1, v2 = batches[0]
    assert v1.shape == v2.shape == (2, 16, 16, 3)
    again = list(view_dataset(images, 2, 0, 0, AugmentConfig(), 16, 3))
    np.testing.assert_array_equal(again[1][1].numpy(), batches[1][1].numpy())
