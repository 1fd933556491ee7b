"""Input pipeline: preparation and cache, windows, static shapes, determinism, resume, shards."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from caesar_mrcnn.classes import class_id  # noqa: E402
from caesar_mrcnn.data.augment import AugmentConfig  # noqa: E402
from caesar_mrcnn.data.dataset import Annotation, Sample  # noqa: E402
from caesar_mrcnn.data.pipeline import (  # noqa: E402
    PipelineConfig,
    PreparedSample,
    TrainStream,
    eval_dataset,
    eval_windows,
    grid_windows,
    prepare_samples,
    random_window,
    render_window,
    train_dataset,
)
from caesar_mrcnn.errors import DatasetError  # noqa: E402
from caesar_mrcnn.io.fits import write_image  # noqa: E402

SIZE = (32, 32)
MAX_GT = 6


def _sample(ny: int, nx: int, n: int, seed: int, name: str = "img") -> tuple[Sample, np.ndarray]:
    rng = np.random.default_rng(seed)
    image = rng.normal(0, 1e-4, (ny, nx)).astype(np.float32)
    anns = []
    for _ in range(n):
        y, x = rng.integers(0, ny - 6), rng.integers(0, nx - 6)
        full = np.zeros((ny, nx), bool)
        full[y:y + rng.integers(2, 7), x:x + rng.integers(2, 7)] = True
        image[full] += 1e-2
        anns.append(Annotation.from_full_mask(rng.choice(["compact", "extended"]), full))
    return Sample(f"{name}.fits", (ny, nx), anns, {"image_id": name}), image


def _prepared(ny=80, nx=70, n=12, seed=0, name="img"):
    sample, image = _sample(ny, nx, n, seed, name)
    return PreparedSample.from_sample(sample, image[:, :, None] * 100.0)


def _take(ds, n):
    return [{k: v.numpy() for k, v in b.items()} for b in ds.take(n)]


def test_prepare_reads_fits_preprocesses_and_caches(tmp_path):
    samples = []
    for i in range(2):
        sample, image = _sample(40, 50, 3, i, f"f{i}")
        image[0, 0] = np.nan
        sample.image_path = tmp_path / f"f{i}.fits"
        write_image(sample.image_path, image)
        samples.append(sample)
    calls = []

    def preprocess(data):
        calls.append(data.shape)
        return np.stack([np.nan_to_num(data), np.isnan(data)], axis=-1) * 2.0

    cache = tmp_path / "cache"
    first = prepare_samples(samples, preprocess, cache_dir=cache, cache_tag="v1")
    assert len(calls) == 2 and len(list(cache.glob("*.npz"))) == 2
    assert first[0].image.shape == (40, 50, 2) and first[0].image.dtype == np.float32
    assert first[0].image[0, 0, 1] == 2.0
    again = prepare_samples(samples, preprocess, cache_dir=cache, cache_tag="v1")
    assert len(calls) == 2  # served from the cache
    np.testing.assert_array_equal(again[1].image, first[1].image)
    prepare_samples(samples, preprocess, cache_dir=cache, cache_tag="v2")
    assert len(calls) == 4  # other settings, other cache entries
    np.testing.assert_array_equal(first[0].classes,
                                  [class_id(a.category) for a in samples[0].annotations])


def test_prepare_rejects_shape_mismatch_and_empty(tmp_path):
    sample, image = _sample(40, 50, 1, 0)
    sample.image_path = tmp_path / "a.fits"
    write_image(sample.image_path, image)
    sample.shape = (50, 40)
    with pytest.raises(DatasetError, match="a.fits"):
        prepare_samples([sample], lambda d: d[:, :, None])
    with pytest.raises(DatasetError):
        prepare_samples([], lambda d: d[:, :, None])


def test_render_window_pastes_masks_and_pads():
    ps = _prepared(30, 20, 5, 1)
    img, masks, classes = render_window(ps, -4, 10, SIZE, MAX_GT)
    assert img.shape == (32, 32, 1) and masks.shape == (32, 32, MAX_GT)
    np.testing.assert_array_equal(img[4:34, :10, 0], ps.image[:28, 10:20, 0])
    assert not img[:4].any() and not img[:, 10:].any()
    # The masks in the window are the full-image masks shifted by the window origin.
    expected = []
    for i in range(len(ps.classes)):
        m = np.zeros((30, 20), bool)
        y0, x0, y1, x1 = ps.boxes[i]
        m[y0:y1, x0:x1] = ps.masks[i]
        win = np.zeros(SIZE, bool)
        win[4:34, :10] = m[:28, 10:20]
        if win.any():
            expected.append((int(ps.classes[i]), win))
    n = len(expected)
    assert n > 0 and (classes[:n] > 0).all() and not classes[n:].any()
    got = sorted((int(c), masks[:, :, k].tobytes()) for k, c in enumerate(classes[:n]))
    assert got == sorted((c, w.astype(np.uint8).tobytes()) for c, w in expected)


def test_render_window_keeps_largest_when_over_max_gt():
    ps = _prepared(32, 32, 20, 2)
    _, masks, classes = render_window(ps, 0, 0, SIZE, 3)
    areas = sorted((m.sum() for m in ps.masks), reverse=True)
    kept = sorted((masks[:, :, k].sum() for k in range(3)), reverse=True)
    assert kept == areas[:3] and (classes > 0).all()


def test_source_aware_crop_contains_the_source():
    ps = _prepared(300, 300, 1, 3)
    box = ps.boxes[0]
    for s in range(20):
        y0, x0 = random_window(ps, SIZE, np.random.default_rng(s), 1.0)
        assert 0 <= y0 <= 300 - 32 and 0 <= x0 <= 300 - 32
        assert y0 <= box[0] and box[2] <= y0 + 32 and x0 <= box[1] and box[3] <= x0 + 32
    uniform = [random_window(ps, SIZE, np.random.default_rng(s), 0.0) for s in range(20)]
    assert any(not (y <= box[0] and box[2] <= y + 32) for y, _ in uniform)


def test_grid_windows_cover_the_image():
    assert grid_windows((70, 64), (32, 32)) == [(y, x) for y in (0, 32, 38) for x in (0, 32)]
    assert grid_windows((10, 10), (32, 32)) == [(0, 0)]


def test_train_dataset_static_shapes_and_consistency(numpy_boxes):
    cfg = PipelineConfig(augment=AugmentConfig(rotate_deg=20.0, affine_prob=0.5))
    ds = train_dataset([_prepared(), _prepared(20, 24, 3, 5, "small")], SIZE, 3, MAX_GT, cfg,
                       seed=3)
    spec = ds.element_spec
    assert spec["image"].shape == (3, 32, 32, 1)
    assert spec["masks"].shape == (3, MAX_GT, 32, 32) and spec["masks"].dtype == tf.uint8
    assert spec["boxes"].shape == (3, MAX_GT, 4) and spec["classes"].shape == (3, MAX_GT)
    for batch in _take(ds, 4):
        for b in range(3):
            masks = batch["masks"][b]
            np.testing.assert_array_equal(batch["boxes"][b], numpy_boxes(masks))
            valid = batch["classes"][b] > 0
            np.testing.assert_array_equal(valid, masks.any(axis=(1, 2)))
            assert (masks.reshape(MAX_GT, -1).sum(axis=1)[valid] >= cfg.min_mask_pixels).all()
            assert np.all(np.diff(valid.astype(int)) <= 0)  # valid instances first


def test_train_dataset_is_deterministic_and_resumes_exactly():
    samples = [_prepared(seed=s, name=f"s{s}") for s in range(3)]
    cfg = PipelineConfig()
    full = _take(train_dataset(samples, SIZE, 2, MAX_GT, cfg, seed=7), 5)
    again = _take(train_dataset(samples, SIZE, 2, MAX_GT, cfg, seed=7), 5)
    resumed = _take(train_dataset(samples, SIZE, 2, MAX_GT, cfg, seed=7, start_step=3), 2)
    other = _take(train_dataset(samples, SIZE, 2, MAX_GT, cfg, seed=8), 5)
    for key in full[0]:
        for a, b in zip(full, again):
            np.testing.assert_array_equal(a[key], b[key])
        for a, b in zip(full[3:], resumed):
            np.testing.assert_array_equal(a[key], b[key])
    assert any(not np.array_equal(a["image"], b["image"]) for a, b in zip(full, other))


def test_ranks_take_disjoint_interleaved_shares_of_each_epoch():
    samples = [_prepared(seed=s, name=f"s{s}") for s in range(5)]
    cfg = PipelineConfig()
    idx = [np.concatenate([b["index"] for b in _take(
        train_dataset(samples, SIZE, 1, MAX_GT, cfg, seed=1, rank=r, world=2), 5)])
        for r in range(2)]
    np.testing.assert_array_equal(idx[0], [0, 2, 4, 6, 8])
    np.testing.assert_array_equal(idx[1], [1, 3, 5, 7, 9])
    streams = [TrainStream(samples, SIZE, MAX_GT, cfg, 1, r, 2) for r in range(2)]
    for epoch in range(2):
        seen = sorted(streams[g % 2].sample_of(g) for g in range(5 * epoch, 5 * epoch + 5))
        assert seen == [0, 1, 2, 3, 4]  # every sample once per epoch over both ranks


def test_eval_dataset_covers_every_window_in_order():
    samples = [_prepared(70, 64, 8, 1, "a"), _prepared(20, 20, 2, 2, "b")]
    windows = eval_windows(samples, SIZE)
    assert len(windows) == 7
    batches = _take(eval_dataset(samples, SIZE, 4, MAX_GT, PipelineConfig()), 10)
    assert [len(b["index"]) for b in batches] == [4, 4]  # full batches only
    idx = np.concatenate([b["index"] for b in batches])
    np.testing.assert_array_equal(idx, [0, 1, 2, 3, 4, 5, 6, -1])  # topped up, marked -1
    i, y0, x0 = windows[5]
    img, _, _ = render_window(samples[i], y0, x0, SIZE, MAX_GT)
    np.testing.assert_array_equal(batches[1]["image"][1], img)
    np.testing.assert_array_equal(batches[1]["image"][3], batches[0]["image"][0])
