import numpy as np
import pytest
import tensorflow as tf

from ssl_backbones.augment import (
    apply_stretches,
    multi_crop_views,
    normalize_minmax,
    preprocess,
    radio_view,
    stretch_stack,
    two_snr_views,
    two_views,
)
from ssl_backbones.config import STRETCHES, AugmentConfig


@pytest.fixture
def batch():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 40, 40, 1)).astype(np.float32) * 3e-3
    x[1, :10] = np.nan  # a blanked strip, as at mosaic edges
    return x


def test_two_views_shape_range_and_determinism(batch):
    cfg = AugmentConfig()
    a1, b1 = two_views(batch, tf.constant([7, 3]), cfg, 32, 3)
    a2, b2 = two_views(batch, tf.constant([7, 3]), cfg, 32, 3)
    a3, _ = two_views(batch, tf.constant([7, 4]), cfg, 32, 3)
    assert a1.shape == b1.shape == (4, 32, 32, 3)
    for v in (a1, b1):
        arr = v.numpy()
        assert np.isfinite(arr).all()
        assert arr.min() >= 0.0 and arr.max() <= 1.0
    np.testing.assert_array_equal(a1.numpy(), a2.numpy())
    np.testing.assert_array_equal(b1.numpy(), b2.numpy())
    assert np.abs(a1.numpy() - b1.numpy()).mean() > 1e-3
    assert np.abs(a1.numpy() - a3.numpy()).mean() > 1e-3


def test_view_in_tf_function_matches_eager(batch):
    cfg = AugmentConfig()
    graph = tf.function(lambda x, s: radio_view(x, s, cfg, 24, 2))
    np.testing.assert_allclose(graph(batch, tf.constant([1, 2])).numpy(),
                               radio_view(batch, tf.constant([1, 2]), cfg, 24, 2).numpy(),
                               atol=1e-5)


def test_identity_config_only_normalises(batch):
    cfg = AugmentConfig(crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), flip_prob=0.0, rot90=False,
                        max_rotation_deg=0.0, contrast_prob=0.0, stretch_scheme="linear",
                        blur_prob=0.0, noise_prob=0.0)
    view = radio_view(batch[0:1], tf.constant([0, 0]), cfg, 40, 1).numpy()
    x = batch[0, ..., 0]
    expected = (x - x.min()) / (x.max() - x.min())
    np.testing.assert_allclose(view[0, ..., 0], expected, atol=1e-5)


def test_mixed_scheme_uses_different_stretches_per_channel(batch):
    cfg = AugmentConfig(flip_prob=0.0, rot90=False, max_rotation_deg=0.0, contrast_prob=0.0,
                        blur_prob=0.0, noise_prob=0.0)
    view = radio_view(np.repeat(batch, 4, axis=0), tf.constant([5, 5]), cfg, 32, 6).numpy()
    differing = [not np.allclose(v[..., 0], v[..., c]) for v in view for c in range(1, 6)]
    assert any(differing)


def test_normalize_handles_nan_and_all_nan():
    x = np.array([[[1.0], [np.nan]], [[3.0], [5.0]]], np.float32)[None]
    y = normalize_minmax(x).numpy()[0, ..., 0]
    np.testing.assert_allclose(y, [[0.0, 0.0], [0.5, 1.0]])
    assert np.all(normalize_minmax(np.full((1, 3, 3, 1), np.nan, np.float32)).numpy() == 0)


def test_stretches_monotonic_unit_interval():
    u = tf.linspace(0.0, 1.0, 101)
    s = stretch_stack(u).numpy()
    assert s.shape == (101, len(STRETCHES))
    np.testing.assert_allclose(s[0], 0.0, atol=1e-6)
    np.testing.assert_allclose(s[-1], 1.0, atol=1e-6)
    assert np.all(np.diff(s, axis=0) >= -1e-7)
    np.testing.assert_allclose(s[:, STRETCHES.index("sqrt")], np.sqrt(np.linspace(0, 1, 101)),
                               atol=1e-6)
    out = apply_stretches(tf.reshape(u, [1, 1, 101, 1]), ["squared", "linear"], 3).numpy()
    np.testing.assert_allclose(out[0, 0, :, 2], np.linspace(0, 1, 101) ** 2, atol=1e-6)


def test_preprocess_is_deterministic_and_sized(batch):
    a = preprocess(batch[..., 0], 32, ["linear", "sqrt", "asinh"], 3).numpy()
    assert a.shape == (4, 32, 32, 3)
    np.testing.assert_array_equal(a, preprocess(batch, 32, ["linear", "sqrt", "asinh"], 3))
    assert a.min() >= 0 and a.max() <= 1


@pytest.mark.parametrize("snr", [False, True])
def test_multi_crop_keeps_the_global_views_and_adds_small_ones(batch, snr):
    cfg = AugmentConfig(local_crops=3, local_size=16)
    seed = tf.constant([7, 3])
    v1, v2, local = multi_crop_views(batch, seed, cfg, 32, 3, snr=snr)
    g1, g2 = two_snr_views(batch, seed, cfg, 32) if snr else two_views(batch, seed, cfg, 32, 3)
    np.testing.assert_array_equal(v1.numpy(), g1.numpy())
    np.testing.assert_array_equal(v2.numpy(), g2.numpy())
    assert local.shape == (3 * 4, 16, 16, 3)
    assert np.all(np.isfinite(local.numpy()))
    crops = local.numpy().reshape(3, 4, 16, 16, 3)
    assert not np.allclose(crops[0], crops[1])  # each local crop draws its own view
    again = multi_crop_views(batch, seed, cfg, 32, 3, snr=snr)[2]
    np.testing.assert_array_equal(local.numpy(), again.numpy())
