"""Original caesar-mrcnn JSON list format: write, read, paths relative to each JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest
from astropy.io import fits

from caesar_mrcnn.data.dataset import Annotation, Sample
from caesar_mrcnn.errors import DatasetError
from caesar_mrcnn.io.caesar_json import read_caesar_list, write_caesar_dataset


def make_samples(folder):
    """Two labelled images with FITS files in ``folder/images``."""
    (folder / "images").mkdir()
    samples = []
    for i in range(2):
        shape = (24, 30)
        path = folder / "images" / f"img{i}.fits"
        fits.PrimaryHDU(np.full(shape, float(i), np.float32)).writeto(path)
        yy, xx = np.mgrid[:24, :30]
        blob = (yy - 8) ** 2 + (xx - 10 - i) ** 2 <= 9
        pair = ((yy - 18) ** 2 + (xx - 5) ** 2 <= 2) | ((yy - 18) ** 2 + (xx - 12) ** 2 <= 2)
        anns = [
            Annotation.from_full_mask("compact", blob, name=f"S{i}a", snr=15.0, nislands=1,
                                      border=False, sidelobe_mixed=False, maxsize_beam=1.2,
                                      minsize_beam=0.9),
            Annotation.from_full_mask("extended-multisland", pair, name=f"S{i}b", snr=6.5,
                                      nislands=2, border=True, sidelobe_mixed=True),
        ]
        meta = {"image_id": f"img{i}", "telescope": "MeerKAT", "bkg": 1e-6, "rms": 2e-5,
                "bmaj": 8.0, "bmin": 7.0, "dx": 1.5, "dy": 1.5}
        samples.append(Sample(path, shape, anns, meta))
    return samples


def test_round_trip(tmp_path):
    samples = make_samples(tmp_path)
    out = tmp_path / "caesar"
    out.mkdir()
    list_path = write_caesar_dataset(samples, out)
    assert list_path == out / "datalist.txt"
    back = read_caesar_list(list_path)
    assert len(back) == 2
    for got, exp in zip(back, samples):
        assert got.image_path.resolve() == exp.image_path.resolve()
        assert got.shape == exp.shape and got.meta == exp.meta
        for ga, ea in zip(got.annotations, exp.annotations):
            assert ga.category == ea.category and ga.bbox == ea.bbox
            np.testing.assert_array_equal(ga.mask, ea.mask)
            assert ga.attrs == {k: (int(v) if isinstance(v, bool) else v)
                                for k, v in ea.attrs.items()}


def test_files_follow_the_original_layout(tmp_path):
    samples = make_samples(tmp_path)
    out = tmp_path / "caesar"
    out.mkdir()
    list_path = write_caesar_dataset(samples, out, list_name="train.txt")
    assert list_path.read_text().split() == ["img0.json", "img1.json"]
    record = json.loads((out / "img1.json").read_text())
    assert record["img"] == "../images/img1.fits"  # relative to the JSON's folder
    assert (record["nx"], record["ny"]) == (30, 24)
    for key in ("telescope", "bkg", "rms", "bmaj", "bmin", "dx", "dy"):
        assert record[key] == samples[1].meta[key]
    obj = record["objs"][1]
    assert obj["class"] == "extended-multisland" and obj["nislands"] == 2
    assert obj["sidelobe-mixed"] == 1 and obj["border"] == 1 and obj["name"] == "S1b"
    mask = fits.getdata(out / obj["mask"])
    assert mask.shape == (24, 30)
    np.testing.assert_array_equal(mask != 0, samples[1].annotations[1].full_mask((24, 30)))
    assert (mask != 0).sum() == samples[1].annotations[1].area


def test_single_json_and_moved_folders(tmp_path):
    samples = make_samples(tmp_path)
    out = tmp_path / "caesar"
    out.mkdir()
    write_caesar_dataset(samples, out)
    # paths are relative to each JSON, so moving image and dataset folders together is safe
    moved = tmp_path / "moved"
    moved.mkdir()
    (tmp_path / "images").rename(moved / "images")
    out.rename(moved / "caesar")
    (sample,) = read_caesar_list(moved / "caesar" / "img0.json")
    assert sample.image_path.resolve() == (moved / "images" / "img0.fits").resolve()
    assert [a.area for a in sample.annotations] == [a.area for a in samples[0].annotations]


def test_hand_written_json_without_optional_keys(tmp_path):
    fits.PrimaryHDU(np.zeros((6, 8), np.float32)).writeto(tmp_path / "im.fits")
    mask = np.zeros((6, 8), np.int16)
    mask[1:3, 2:5] = 7  # any non-zero value is inside
    fits.PrimaryHDU(mask).writeto(tmp_path / "m.fits")
    rec = {"img": "im.fits", "objs": [{"mask": "m.fits", "class": "Compact"}]}
    (tmp_path / "one.json").write_text(json.dumps(rec))
    (tmp_path / "list.txt").write_text("# a comment\n\none.json\n")
    (sample,) = read_caesar_list(tmp_path / "list.txt")
    assert sample.shape == (6, 8) and sample.meta == {"image_id": "one"}
    (ann,) = sample.annotations
    assert ann.category == "compact" and ann.bbox == (1, 2, 3, 5) and ann.area == 6


@pytest.mark.parametrize("edit, match", [
    (lambda r: r["objs"][0].update({"class": "galaxy"}), "galaxy"),
    (lambda r: r["objs"][0].update(mask="masks/none.fits"), "none.fits"),
    (lambda r: r.update(img="lost.fits"), "lost.fits"),
    (lambda r: r["objs"][0].pop("class"), "class"),
])
def test_bad_records_raise_dataset_error(tmp_path, edit, match):
    samples = make_samples(tmp_path)
    out = tmp_path / "caesar"
    out.mkdir()
    list_path = write_caesar_dataset(samples, out)
    record = json.loads((out / "img0.json").read_text())
    edit(record)
    (out / "img0.json").write_text(json.dumps(record))
    with pytest.raises(DatasetError, match=match) as info:
        read_caesar_list(list_path)
    assert "img0.json" in str(info.value)


def test_missing_list_entry_names_list(tmp_path):
    (tmp_path / "list.txt").write_text("absent.json\n")
    with pytest.raises(DatasetError, match=r"list\.txt.*absent\.json"):
        read_caesar_list(tmp_path / "list.txt")


def test_failed_write_leaves_nothing(tmp_path):
    samples = make_samples(tmp_path)
    samples[1].meta["rms"] = object()  # not JSON-serialisable: fails on the second image
    out = tmp_path / "caesar"
    out.mkdir()
    with pytest.raises(TypeError):
        write_caesar_dataset(samples, out)
    assert list(out.iterdir()) == []
