"""Self-supervised losses: NT-Xent (SimCLR) with cross-rank negatives, BYOL regression, DINO
cross entropy with its centre."""

from __future__ import annotations

import tensorflow as tf


def nt_xent_loss(z1, z2, z1_all, z2_all, rank, temperature: float):
    """Normalised-temperature cross entropy of one rank's local batch against the global batch.

    Every rank holds ``B`` pairs ``(z1[i], z2[i])``; ``z1_all``/``z2_all`` are all ranks'
    ``[N*B, D]`` embeddings gathered in rank order, so this rank's pair ``i`` sits at global
    index ``g = rank*B + i``. Anchor ``z1[i]`` is scored against the ``2*N*B - 1`` other
    embeddings ``[z1_all; z2_all]`` minus itself; its positive is ``z2_all[g]`` (and
    symmetrically for ``z2[i]``). The mean over ranks of this loss equals the single-process
    NT-Xent of the whole global batch.

    Parameters
    ----------
    z1, z2 : tf.Tensor
        ``[B, D]`` local projections of the two views (any scale; L2-normalised here).
    z1_all, z2_all : tf.Tensor
        ``[N*B, D]`` gathered projections (gradients may flow through the gather).
    rank : int or tf.Tensor
        This rank's index.
    temperature : float

    Returns
    -------
    tf.Tensor
        Scalar mean loss over the ``2*B`` local anchors (nats).
    """
    z1 = tf.math.l2_normalize(z1, axis=1)
    z2 = tf.math.l2_normalize(z2, axis=1)
    candidates = tf.math.l2_normalize(tf.concat([z1_all, z2_all], axis=0), axis=1)
    b = tf.shape(z1)[0]
    nb = tf.shape(z1_all)[0]
    anchors = tf.concat([z1, z2], axis=0)  # [2B, D]
    logits = tf.matmul(anchors, candidates, transpose_b=True) / temperature  # [2B, 2NB]
    g = tf.cast(rank, tf.int32) * b + tf.range(b)
    self_idx = tf.concat([g, g + nb], axis=0)
    pos_idx = tf.concat([g + nb, g], axis=0)
    self_mask = tf.one_hot(self_idx, 2 * nb, dtype=logits.dtype)
    logits = logits - 1e9 * self_mask
    losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=pos_idx, logits=logits)
    return tf.reduce_mean(losses)


def byol_regression_loss(p, t):
    """``2 - 2 cos(p, t)`` per sample, averaged; ``t`` is treated as a constant target.

    Parameters
    ----------
    p : tf.Tensor
        ``[B, D]`` online predictions.
    t : tf.Tensor
        ``[B, D]`` target projections (stop-gradient applied here).
    """
    p = tf.math.l2_normalize(p, axis=1)
    t = tf.math.l2_normalize(tf.stop_gradient(t), axis=1)
    return tf.reduce_mean(2.0 - 2.0 * tf.reduce_sum(p * t, axis=1))


def embedding_std(z):
    """Collapse monitor: mean over dimensions of the batch std of L2-normalised ``z``, times
    ``sqrt(D)``; about 1 for well-spread embeddings, 0 for collapsed ones."""
    z = tf.math.l2_normalize(z, axis=1)
    d = tf.cast(tf.shape(z)[1], z.dtype)
    return tf.reduce_mean(tf.math.reduce_std(z, axis=0)) * tf.sqrt(d)


def dino_loss(student, teacher, center, n_global: int, student_temp: float,
              teacher_temp):
    """DINO cross entropy between a centred, sharpened teacher and the student, over crops.

    The batch of ``B`` images is seen as ``V`` crops, the first ``n_global`` of them global;
    rows are crop-major (crop ``v`` of image ``i`` is row ``v*B + i``). The teacher sees the
    global crops only. For every teacher crop ``t`` and every *other* student crop ``v``, the
    loss is ``-sum_k q_t[k] log p_v[k]`` with ``q_t = softmax((teacher_t - center) /
    teacher_temp)`` (no gradient) and ``p_v = softmax(student_v / student_temp)``; it is
    averaged over images and over the ``n_global * V - n_global`` (teacher, student) pairs.

    Parameters
    ----------
    student : tf.Tensor
        ``[V*B, K]`` student logits of every crop.
    teacher : tf.Tensor
        ``[n_global*B, K]`` teacher logits of the global crops (stop-gradient applied here).
    center : tf.Tensor
        ``[K]`` running mean of the teacher logits, subtracted before sharpening.
    n_global : int
        Global crops per image (2 in DINO).
    student_temp : float
    teacher_temp : float or tf.Tensor
        Lower than ``student_temp``: sharpening the teacher and centring it pull in opposite
        directions (towards one-hot, towards uniform), which is what keeps DINO from
        collapsing to either.

    Returns
    -------
    tf.Tensor
        Scalar mean loss (nats).
    """
    teacher = tf.stop_gradient(tf.convert_to_tensor(teacher))
    student = tf.convert_to_tensor(student, teacher.dtype)
    center = tf.cast(center, teacher.dtype)
    teacher_temp = tf.cast(teacher_temp, teacher.dtype)
    n_crops = tf.shape(student)[0] // (tf.shape(teacher)[0] // n_global)
    k = tf.shape(student)[1]
    q = tf.nn.softmax((teacher - center) / teacher_temp, axis=-1)
    q = tf.reshape(q, [n_global, -1, k])                           # [G, B, K]
    log_p = tf.nn.log_softmax(student / student_temp, axis=-1)
    log_p = tf.reshape(log_p, [n_crops, -1, k])                    # [V, B, K]
    cross = -tf.einsum("tbk,vbk->tvb", q, log_p)                  # [G, V, B]
    # A crop is never its own target: drop the (t, t) pairs.
    keep = 1.0 - tf.eye(n_global, num_columns=n_crops, dtype=cross.dtype)
    pairs = tf.reduce_sum(keep)
    return tf.reduce_sum(tf.reduce_mean(cross, axis=2) * keep) / pairs


def ema_center(center, batch_mean, momentum: float):
    """DINO's centre update ``momentum * center + (1 - momentum) * batch_mean``.

    ``batch_mean`` is the mean teacher logit over the whole global batch (every rank's, see
    ``Context.average_tensor``), so that all ranks keep one centre.
    """
    return momentum * center + (1.0 - momentum) * tf.stop_gradient(batch_mean)
