"""ResNet backbones: output shapes and strides, stable names, weights round trip."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from ssl_backbones.errors import BackboneError, BackboneWeightsError  # noqa: E402
from ssl_backbones.resnet import (  # noqa: E402
    backbone_weights,
    build_resnet,
    feature_channels,
    feature_strides,
    load_backbone_weights,
)


@pytest.fixture(scope="module")
def r18():
    return build_resnet("resnet18", in_channels=1)


@pytest.mark.parametrize(
    "arch,small_stem,size",
    [("resnet18", False, 64), ("resnet18", True, 32), ("resnet50", False, 64)],
)
def test_output_shapes_and_strides(arch, small_stem, size):
    model = build_resnet(arch, in_channels=2, small_stem=small_stem)
    out = model(np.zeros((2, size, size, 2), np.float32))
    strides = feature_strides(small_stem)
    chans = feature_channels(arch)
    assert set(out) == {"C2", "C3", "C4", "C5", "pooled"}
    for key, stride in strides.items():
        assert tuple(out[key].shape) == (2, size // stride, size // stride, chans[key])
    assert tuple(out["pooled"].shape) == (2, chans["pooled"])
    np.testing.assert_allclose(
        out["pooled"].numpy(), out["C5"].numpy().mean(axis=(1, 2)), rtol=1e-5, atol=1e-6
    )


def test_variable_input_size(r18):
    out = r18(np.zeros((1, 96, 64, 1), np.float32))
    assert tuple(out["C5"].shape) == (1, 3, 2, 512)


def test_names_are_stable_across_builds(r18):
    again = build_resnet("resnet18", in_channels=1)
    assert [layer.name for layer in again.layers] == [layer.name for layer in r18.layers]
    assert list(backbone_weights(again)) == list(backbone_weights(r18))
    assert "stem_conv/kernel" in backbone_weights(r18)
    assert "res2_block1_conv1/kernel" in backbone_weights(r18)


def test_weights_round_trip(r18):
    x = np.random.default_rng(0).normal(size=(1, 32, 32, 1)).astype(np.float32)
    weights = backbone_weights(r18)
    # Non-default statistics make the check meaningful for BN moving averages too.
    weights = {k: v + 0.01 * (i % 7) for i, (k, v) in enumerate(weights.items())}
    other = build_resnet("resnet18", in_channels=1)
    load_backbone_weights(other, weights)
    got = backbone_weights(other)
    for key, value in weights.items():
        np.testing.assert_array_equal(got[key], value.astype(np.float32))
    load_backbone_weights(r18, weights)
    np.testing.assert_allclose(
        other(x, training=False)["C5"].numpy(), r18(x, training=False)["C5"].numpy(), atol=1e-5
    )


def test_channel_mismatch_is_reported(r18):
    rgb = build_resnet("resnet18", in_channels=3)
    with pytest.raises(BackboneWeightsError, match="stem_conv/kernel.*7, 7, 3, 64"):
        load_backbone_weights(r18, backbone_weights(rgb))


def test_arch_mismatch_is_reported(r18):
    r50 = build_resnet("resnet50", in_channels=1)
    with pytest.raises(BackboneWeightsError, match="look like resnet50, the model is resnet18"):
        load_backbone_weights(r18, backbone_weights(r50))


def test_non_strict_ignores_missing_keys(r18):
    weights = backbone_weights(r18)
    before = weights["res5_block2_conv2/kernel"].copy()
    weights.pop("res5_block2_conv2/kernel")
    weights = {k: v * 0 for k, v in weights.items()}
    weights["extra/kernel"] = np.zeros(3)
    with pytest.raises(BackboneWeightsError):
        load_backbone_weights(r18, weights, strict=True)
    load_backbone_weights(r18, weights, strict=False)
    after = backbone_weights(r18)
    np.testing.assert_array_equal(after["res5_block2_conv2/kernel"], before)
    assert not after["stem_conv/kernel"].any()


def test_bad_options():
    with pytest.raises(BackboneError, match="arch"):
        build_resnet("resnet34")
    with pytest.raises(BackboneError, match="norm"):
        build_resnet(norm="layer")


@pytest.mark.parametrize("norm", ["group", "frozen_batch"])
def test_norm_variants(norm):
    model = build_resnet("resnet18", norm=norm)
    out = model(np.ones((1, 32, 32, 1), np.float32), training=True)
    assert np.isfinite(out["pooled"].numpy()).all()
    if norm == "frozen_batch":
        assert not model.get_layer("stem_norm").trainable
