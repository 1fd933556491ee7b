"""COCO JSON writer/reader, checked with pycocotools itself."""

from __future__ import annotations

import json

import numpy as np
import pytest
from astropy.io import fits
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from caesar_mrcnn.classes import CLASS_NAMES
from caesar_mrcnn.data.dataset import Annotation, Sample
from caesar_mrcnn.errors import DatasetError
from caesar_mrcnn.io.coco import encode_rle, read_coco, rle_counts, write_coco

# pycocotools' compiled decoder (annToMask) predates NumPy 2's __array__(copy=) protocol
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def _disk(shape, cy, cx, r):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


def make_samples(folder, n_images=2):
    """Samples with real FITS images in ``folder/images`` and varied masks and attributes."""
    (folder / "images").mkdir()
    rng = np.random.default_rng(5)
    samples = []
    for i in range(n_images):
        shape = (40, 56)
        path = folder / "images" / f"field{i}.fits"
        fits.PrimaryHDU(rng.normal(0, 1e-4, shape).astype(np.float32)).writeto(path)
        two_islands = _disk(shape, 10, 10, 3) | _disk(shape, 16, 22, 2)
        ragged = rng.random(shape) < 0.5
        ragged[:, 30:] = False
        ragged[:20] = False
        anns = [
            Annotation.from_full_mask("compact", _disk(shape, 30, 45, 4), name=f"f{i}_0",
                                      snr=np.float32(12.5), flux_jy=1.5e-3, nislands=1),
            Annotation.from_full_mask("extended-multisland", two_islands, name=f"f{i}_1",
                                      nislands=np.int64(2), sidelobe_mixed=True),
            Annotation.from_full_mask(CLASS_NAMES[i % len(CLASS_NAMES)], ragged,
                                      name=f"f{i}_2", area=-1),  # attr named like a COCO key
            # touching the image corner, to exercise the first and last RLE runs
            Annotation("spurious", (38, 54, 40, 56), np.ones((2, 2), bool), {"snr": 3.0}),
        ]
        meta = {"image_id": f"field{i}", "rms": 1e-4, "bkg": 0.0, "bmaj": 10.0, "bmin": 8.0,
                "bpa": 15.0, "dx": 2.0, "dy": 2.0, "telescope": "ASKAP"}
        samples.append(Sample(path, shape, anns, meta))
    return samples


def test_rle_of_cropped_masks_matches_pycocotools_including_clipped_ones():
    shape = (80, 96)
    anns = [Annotation("compact", (-2, 90, 5, 100), np.ones((7, 10), bool)),  # off the edge
            Annotation.from_full_mask("extended", _disk(shape, 40, 50, 6)),
            Annotation.from_full_mask("compact", _disk(shape, 0, 0, 3)),  # first run is ones
            Annotation.from_full_mask("compact", _disk(shape, 79, 95, 3))]  # last run is ones
    for ann in anns:
        full = ann.full_mask(shape)
        expected = mask_utils.encode(np.asfortranarray(full.astype(np.uint8)))
        assert mask_utils.frPyObjects({"size": list(shape), "counts": rle_counts(ann, shape)},
                                      *shape)["counts"] == expected["counts"]
        rle = encode_rle(ann, shape)
        assert rle["size"] == list(shape)
        np.testing.assert_array_equal(mask_utils.decode(rle).astype(bool), full)


def assert_same_samples(got, expected):
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        assert g.image_path.resolve() == e.image_path.resolve()
        assert tuple(g.shape) == tuple(e.shape)
        assert g.meta == pytest.approx(e.meta)
        assert len(g.annotations) == len(e.annotations)
        for ga, ea in zip(g.annotations, e.annotations):
            assert ga.category == ea.category and ga.bbox == ea.bbox
            np.testing.assert_array_equal(ga.mask, ea.mask)
            expected_attrs = {k: (int(v) if isinstance(v, bool) else v)
                              for k, v in ea.attrs.items()}
            assert {k: (int(v) if isinstance(v, bool) else v) for k, v in ga.attrs.items()} \
                == pytest.approx(expected_attrs)


def test_round_trip(tmp_path):
    samples = make_samples(tmp_path)
    out = tmp_path / "coco.json"
    write_coco(samples, out)
    assert_same_samples(read_coco(out), samples)


def test_pycocotools_reads_masks_and_areas(tmp_path):
    samples = make_samples(tmp_path)
    out = tmp_path / "coco.json"
    write_coco(samples, out)
    coco = COCO(str(out))
    assert {c["id"]: c["name"] for c in coco.loadCats(coco.getCatIds())} == \
        {i + 1: n for i, n in enumerate(CLASS_NAMES)}
    for img_id, sample in zip(sorted(coco.getImgIds()), samples):
        info = coco.loadImgs(img_id)[0]
        assert info["file_name"] == f"images/{sample.image_path.name}"
        assert (info["height"], info["width"]) == sample.shape
        assert info["telescope"] == "ASKAP" and info["rms"] == 1e-4 and info["dx"] == 2.0
        anns = coco.loadAnns(coco.getAnnIds(imgIds=img_id))
        assert len(anns) == len(sample.annotations)
        for ann, ours in zip(anns, sample.annotations):
            full = ours.full_mask(sample.shape)
            np.testing.assert_array_equal(coco.annToMask(ann).astype(bool), full)
            # the FITS mask (as the caesar writer stores it) has the same area
            assert ann["area"] == full.sum() == ours.area
            assert mask_utils.area(ann["segmentation"]) == full.sum()
            y0, x0, y1, x1 = ours.bbox
            assert ann["bbox"] == [x0, y0, x1 - x0, y1 - y0]
            assert list(mask_utils.toBbox(ann["segmentation"])) == ann["bbox"]
            assert coco.loadCats(ann["category_id"])[0]["name"] == ours.category
        assert "snr" in anns[0] and anns[0]["name"] == sample.annotations[0].attrs["name"]


def test_image_root_and_relative_paths(tmp_path):
    samples = make_samples(tmp_path)
    (tmp_path / "meta").mkdir()
    out = tmp_path / "meta" / "coco.json"
    write_coco(samples, out, image_root=tmp_path / "images")
    data = json.loads(out.read_text())
    assert data["info"]["image_root"] == "../images"
    assert data["images"][0]["file_name"] == "field0.fits"
    assert_same_samples(read_coco(out), samples)


def test_polygon_segmentation_is_read(tmp_path):
    (tmp_path / "img.fits").write_bytes(b"")
    square = [[2.0, 3.0, 9.0, 3.0, 9.0, 8.0, 2.0, 8.0]]  # x, y corners
    data = {"images": [{"id": 7, "file_name": "img.fits", "height": 12, "width": 14}],
            "annotations": [{"id": 1, "image_id": 7, "category_id": 3, "iscrowd": 0,
                             "segmentation": square, "bbox": [2, 3, 7, 5], "area": 35.0}],
            "categories": [{"id": 3, "name": "extended"}]}
    path = tmp_path / "poly.json"
    path.write_text(json.dumps(data))
    (sample,) = read_coco(path)
    (ann,) = sample.annotations
    expected = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(square, 12, 14)))
    np.testing.assert_array_equal(ann.full_mask((12, 14)), expected.astype(bool))
    assert ann.category == "extended" and sample.meta["image_id"] == 7


@pytest.mark.parametrize("change, match", [
    (lambda d: d["categories"].append({"id": 9, "name": "galaxy"}), "galaxy"),
    (lambda d: d["annotations"][0].update(category_id=42), "category_id"),
    (lambda d: d["images"][0].update(file_name="nowhere.fits"), "nowhere.fits"),
    (lambda d: d.pop("images"), "COCO"),
])
def test_bad_coco_raises_dataset_error(tmp_path, change, match):
    samples = make_samples(tmp_path, n_images=1)
    out = tmp_path / "coco.json"
    write_coco(samples, out)
    data = json.loads(out.read_text())
    change(data)
    out.write_text(json.dumps(data))
    with pytest.raises(DatasetError, match=match) as info:
        read_coco(out)
    assert str(out) in str(info.value)


def test_not_json_names_file(tmp_path):
    bad = tmp_path / "broken.json"
    bad.write_text("{ not json")
    with pytest.raises(DatasetError, match="broken.json"):
        read_coco(bad)
