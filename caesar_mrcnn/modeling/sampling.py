"""Balanced random sampling of positive and negative boxes with static shapes."""

from __future__ import annotations

import keras
from keras import ops


def _sample_counts(labels, num_samples: int, positive_fraction: float):
    pos = labels == 1
    neg = labels == 0
    max_pos = int(num_samples * positive_fraction)
    num_pos = ops.minimum(ops.sum(ops.cast(pos, "int32"), axis=1), max_pos)
    num_neg = ops.minimum(ops.sum(ops.cast(neg, "int32"), axis=1), num_samples - num_pos)
    return pos, neg, num_pos, num_neg


def _keep_random(mask, count, noise, max_count: int):
    """Keep ``count[b]`` random True entries of ``mask[b]`` (count <= max_count)."""
    score = ops.where(mask, noise, -1.0)
    k = min(max_count, score.shape[1])
    top = ops.top_k(score, k)[0]
    idx = ops.clip(count - 1, 0, k - 1)[:, None]
    threshold = ops.take_along_axis(top, idx, axis=1)
    return mask & (score >= threshold) & (count[:, None] > 0)


def sample_mask(labels, num_samples: int, positive_fraction: float, seed=None):
    """Choose up to ``num_samples`` boxes per image, at most ``positive_fraction`` positive.

    Positives are drawn first; negatives fill the remaining slots.

    Parameters
    ----------
    labels : int ``[B, N]``
        1 positive, 0 negative, -1 ignored.
    num_samples : int
        Boxes per image.
    positive_fraction : float
        Largest fraction of positives.
    seed : int or keras.random.SeedGenerator, optional

    Returns
    -------
    positive, negative : bool ``[B, N]``
        The sampled positives and negatives.
    """
    pos, neg, num_pos, num_neg = _sample_counts(labels, num_samples, positive_fraction)
    noise = keras.random.uniform(ops.shape(labels), seed=seed)
    keep_pos = _keep_random(pos, num_pos, noise, num_samples)
    keep_neg = _keep_random(neg, num_neg, noise, num_samples)
    return keep_pos, keep_neg


def sample_indices(labels, num_samples: int, positive_fraction: float, seed=None):
    """Indices of a balanced sample, positives first, padded to ``num_samples``.

    Returns
    -------
    indices : int32 ``[B, num_samples]``
        Sampled positions in N (sampled positives come first, then negatives, then padding
        that repeats index 0). Positives only ever occupy the first
        ``int(num_samples * positive_fraction)`` slots.
    is_positive, valid : bool ``[B, num_samples]``
    """
    keep_pos, keep_neg = sample_mask(labels, num_samples, positive_fraction, seed)
    noise = keras.random.uniform(ops.shape(labels), seed=seed)
    priority = ops.where(keep_pos, 2.0 + noise, ops.where(keep_neg, 1.0 + noise, -1.0))
    n = priority.shape[1]
    if n < num_samples:
        priority = ops.pad(priority, [[0, 0], [0, num_samples - n]], constant_values=-1.0)
    values, indices = ops.top_k(priority, num_samples)
    valid = values >= 0.0
    return ops.where(valid, ops.cast(indices, "int32"), 0), values >= 2.0, valid
