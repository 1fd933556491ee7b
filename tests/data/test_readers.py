"""load_dataset: format detection by content and clear errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from astropy.io import fits

from caesar_mrcnn.data.dataset import Annotation, Sample
from caesar_mrcnn.data.readers import load_dataset
from caesar_mrcnn.errors import DatasetError
from caesar_mrcnn.io.caesar_json import write_caesar_dataset
from caesar_mrcnn.io.coco import write_coco


@pytest.fixture
def samples(tmp_path):
    shape = (20, 26)
    path = tmp_path / "img.fits"
    fits.PrimaryHDU(np.zeros(shape, np.float32)).writeto(path)
    mask = np.zeros(shape, bool)
    mask[4:9, 6:12] = True
    mask[5, 6] = False
    ann = Annotation.from_full_mask("extended", mask, name="A", snr=9.0)
    return [Sample(path, shape, [ann], {"image_id": "img", "rms": 1e-4})]


def _check(loaded, samples):
    (got,), (exp,) = loaded, samples
    assert got.image_path.resolve() == exp.image_path.resolve() and got.shape == exp.shape
    (ga,), (ea,) = got.annotations, exp.annotations
    assert ga.category == ea.category and ga.bbox == ea.bbox
    np.testing.assert_array_equal(ga.mask, ea.mask)
    assert ga.attrs["snr"] == 9.0 and got.meta["rms"] == 1e-4


def test_dispatch_coco_and_caesar(tmp_path, samples):
    coco = write_coco(samples, tmp_path / "labels.dat")  # content decides, not the suffix
    _check(load_dataset(coco), samples)
    out = tmp_path / "caesar"
    out.mkdir()
    listing = write_caesar_dataset(samples, out, list_name="list.json.txt")
    _check(load_dataset(listing), samples)
    _check(load_dataset(out / "img.json"), samples)


def test_folder_of_a_simulated_dataset(tmp_path, samples):
    (tmp_path / "caesar").mkdir()
    write_caesar_dataset(samples, tmp_path / "caesar")
    _check(load_dataset(tmp_path), samples)  # finds caesar/datalist.txt
    write_coco(samples, tmp_path / "coco.json")
    _check(load_dataset(tmp_path), samples)  # coco.json first


def test_unrecognised_inputs(tmp_path, samples):
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"hello": 1}))
    with pytest.raises(DatasetError, match="other.json.*neither COCO"):
        load_dataset(other)
    with pytest.raises(DatasetError, match="img.fits.*FITS image"):
        load_dataset(samples[0].image_path)
    with pytest.raises(DatasetError, match="nothing.txt.*not found"):
        load_dataset(tmp_path / "nothing.txt")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetError, match="empty.*holds no dataset"):
        load_dataset(empty)


def test_missing_image_and_mask_are_named(tmp_path, samples):
    coco = write_coco(samples, tmp_path / "coco.json")
    out = tmp_path / "caesar"
    out.mkdir()
    listing = write_caesar_dataset(samples, out)
    mask_file = next((out / "masks").iterdir())
    mask_file.unlink()
    with pytest.raises(DatasetError, match=mask_file.name):
        load_dataset(listing)
    samples[0].image_path.unlink()
    with pytest.raises(DatasetError, match=r"coco\.json.*img\.fits"):
        load_dataset(coco)
    assert len(load_dataset(coco, check_files=False)) == 1
