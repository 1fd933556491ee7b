"""Each loss on hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from caesar_mrcnn.modeling.losses import (
    box_regression_loss,
    classification_loss,
    mask_loss,
    rpn_losses,
    sigmoid_bce,
    smooth_l1,
)


def test_smooth_l1_and_bce():
    x = np.array([-2.0, -0.05, 0.0, 0.05, 3.0], np.float32)
    np.testing.assert_allclose(smooth_l1(x, 0.1).numpy(),
                               [1.95, 0.0125, 0.0, 0.0125, 2.95], rtol=1e-5)
    np.testing.assert_allclose(smooth_l1(x, 0.0).numpy(), np.abs(x))
    got = sigmoid_bce(np.array([0.0, 2.0, -50.0]), np.array([1.0, 0.0, 0.0])).numpy()
    np.testing.assert_allclose(got, [math.log(2), 2 + math.log1p(math.exp(-2)), 0.0],
                               rtol=1e-6, atol=1e-12)


def test_rpn_losses():
    logits = np.array([[0.0, 2.0, 5.0, 1.0]], np.float32)
    labels = np.array([[1, 0, -1, 1]], np.int32)
    deltas = np.array([[[0.5, 0, 0, 0], [9, 9, 9, 9], [9, 9, 9, 9], [0, 0, 0, 2.0]]],
                      np.float32)
    target = np.zeros_like(deltas)
    cls, box = rpn_losses(logits, deltas, labels, target, beta=1.0)
    bce = [math.log(2), 2 + math.log1p(math.exp(-2)), math.log1p(math.exp(-1))]
    assert float(cls) == pytest.approx(sum(bce) / 3, rel=1e-6)
    # positives only: 0.5*0.5^2 + (2 - 0.5), over the 3 sampled anchors
    assert float(box) == pytest.approx((0.125 + 1.5) / 3, rel=1e-6)
    assert cls.dtype == "float32"


def test_classification_loss_ignores_padding():
    logits = np.array([[[0.0, 0.0, 0.0], [2.0, 0.0, 0.0], [9.0, -9, 0]]], np.float32)
    classes = np.array([[1, 0, 2]], np.int32)
    valid = np.array([[True, True, False]])
    expect = (math.log(3) + math.log(math.exp(2) + 2) - 2) / 2
    assert float(classification_loss(logits, classes, valid)) == pytest.approx(expect, rel=1e-6)


def test_box_regression_loss_class_specific():
    deltas = np.zeros((1, 2, 3, 4), np.float32)
    deltas[0, 0, 2] = [1.0, 0, 0, 0]  # the GT class of ROI 0
    deltas[0, 0, 1] = [7.0, 7, 7, 7]  # another class: ignored
    targets = np.zeros((1, 2, 4), np.float32)
    classes = np.array([[2, 0]], np.int32)
    loss = box_regression_loss(deltas, classes, targets, np.array([[True, False]]),
                               np.array([[True, True]]), beta=0.0)
    assert float(loss) == pytest.approx(1.0 / 2)


def test_mask_loss_uses_gt_class_channel_of_positives():
    logits = np.zeros((1, 2, 2, 2, 3), np.float32)
    logits[0, 0, :, :, 1] = 3.0  # ROI 0 has class 1
    logits[0, 0, :, :, 2] = -40.0
    targets = np.array([[[[1, 0], [1, 1]], [[1, 1], [1, 1]]]], np.float32)
    loss = mask_loss(logits, np.array([[1, 0]]), targets, np.array([[True, False]]))
    expect = (3 * math.log1p(math.exp(-3)) + 3 + math.log1p(math.exp(-3))) / 4
    assert float(loss) == pytest.approx(expect, rel=1e-6)


def test_losses_are_zero_not_nan_without_samples():
    none = np.zeros((1, 2), bool)
    assert float(mask_loss(np.zeros((1, 2, 2, 2, 3)), np.zeros((1, 2)), np.zeros((1, 2, 2, 2)),
                           none)) == 0.0
    assert float(classification_loss(np.zeros((1, 2, 3)), np.zeros((1, 2)), none)) == 0.0
