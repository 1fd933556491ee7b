import numpy as np
import pytest
import tensorflow as tf

from ssl_backbones.losses import (
    byol_regression_loss,
    dino_loss,
    ema_center,
    embedding_std,
    nt_xent_loss,
)


def _nt_xent_reference(z1: np.ndarray, z2: np.ndarray, t: float) -> float:
    """Textbook SimCLR loss of one global batch of pairs (z1[i], z2[i])."""
    z = np.concatenate([z1, z2])
    z = z / np.linalg.norm(z, axis=1, keepdims=True)
    n = len(z1)
    total = 0.0
    for a in range(2 * n):
        pos = a + n if a < n else a - n
        sims = np.array([z[a] @ z[j] / t for j in range(2 * n) if j != a])
        others = [j for j in range(2 * n) if j != a]
        total += -(z[a] @ z[pos] / t) + np.log(np.sum(np.exp(sims)))
        assert pos in others
    return total / (2 * n)


@pytest.mark.parametrize("t", [0.1, 0.5])
def test_nt_xent_single_rank_equals_numpy(t):
    rng = np.random.default_rng(1)
    z1, z2 = rng.normal(size=(6, 5)), rng.normal(size=(6, 5))
    got = nt_xent_loss(tf.constant(z1), tf.constant(z2), tf.constant(z1), tf.constant(z2), 0, t)
    assert float(got) == pytest.approx(_nt_xent_reference(z1, z2, t), rel=1e-6)


def test_nt_xent_cross_rank_layout_equals_global_batch():
    rng = np.random.default_rng(2)
    ranks, b, t = 2, 4, 0.2
    z1_all, z2_all = rng.normal(size=(ranks * b, 8)), rng.normal(size=(ranks * b, 8))
    per_rank = [
        float(nt_xent_loss(z1_all[r * b:(r + 1) * b], z2_all[r * b:(r + 1) * b],
                           z1_all, z2_all, r, t))
        for r in range(ranks)
    ]
    assert np.mean(per_rank) == pytest.approx(_nt_xent_reference(z1_all, z2_all, t), rel=1e-6)
    # Each rank's slice scores a different set of anchors.
    assert per_rank[0] != pytest.approx(per_rank[1])


def test_nt_xent_perfect_pairs_small_loss():
    eye = np.eye(4) * 10.0
    loss = float(nt_xent_loss(eye, eye, eye, eye, 0, 0.05))
    assert loss < 1e-3


def test_byol_loss_and_stop_gradient():
    rng = np.random.default_rng(3)
    p, t = tf.Variable(rng.normal(size=(5, 4))), tf.Variable(rng.normal(size=(5, 4)))
    with tf.GradientTape(persistent=True) as tape:
        loss = byol_regression_loss(p, t)
    pn = p.numpy() / np.linalg.norm(p.numpy(), axis=1, keepdims=True)
    tn = t.numpy() / np.linalg.norm(t.numpy(), axis=1, keepdims=True)
    assert float(loss) == pytest.approx(np.mean(2 - 2 * np.sum(pn * tn, axis=1)), rel=1e-6)
    assert tape.gradient(loss, t) is None
    assert tape.gradient(loss, p) is not None


def test_embedding_std_detects_collapse():
    rng = np.random.default_rng(4)
    spread = float(embedding_std(rng.normal(size=(256, 32))))
    collapsed = float(embedding_std(np.ones((256, 32)) + 1e-4 * rng.normal(size=(256, 32))))
    assert 0.8 < spread < 1.1
    assert collapsed < 0.01


def _softmax(x):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _dino_reference(student, teacher, center, n_global, ts, tt):
    """DINO's loss written out pair by pair: every teacher crop against every other crop."""
    b = len(teacher) // n_global
    n_crops = len(student) // b
    total, pairs = 0.0, 0
    for t in range(n_global):
        q = _softmax((teacher[t * b:(t + 1) * b] - center) / tt)
        for v in range(n_crops):
            if v == t:
                continue
            log_p = np.log(_softmax(student[v * b:(v + 1) * b] / ts))
            total += np.mean(-np.sum(q * log_p, axis=1))
            pairs += 1
    return total / pairs


@pytest.mark.parametrize("n_local,tt", [(0, 0.04), (3, 0.07)])
def test_dino_loss_equals_numpy(n_local, tt):
    rng = np.random.default_rng(5)
    b, k = 4, 10
    student = rng.normal(size=((2 + n_local) * b, k))
    teacher = rng.normal(size=(2 * b, k))
    center = rng.normal(size=k) * 0.3
    got = dino_loss(tf.constant(student), tf.constant(teacher), tf.constant(center), 2, 0.1, tt)
    want = _dino_reference(student, teacher, center, 2, 0.1, tt)
    assert float(got) == pytest.approx(want, rel=1e-6)


def test_dino_loss_gradient_reaches_the_student_only():
    rng = np.random.default_rng(6)
    s, t = tf.Variable(rng.normal(size=(8, 6))), tf.Variable(rng.normal(size=(4, 6)))
    with tf.GradientTape(persistent=True) as tape:
        loss = dino_loss(s, t, tf.zeros(6, tf.float64), 2, 0.1, 0.04)
    assert tape.gradient(loss, t) is None
    assert np.abs(tape.gradient(loss, s).numpy()).max() > 0


def test_dino_centring_and_sharpening():
    # A teacher that says the same thing for every image, once centred, is uniform whatever
    # its temperature: the loss is then the cross entropy against a uniform target.
    rng = np.random.default_rng(7)
    row = rng.normal(size=5)
    teacher = np.tile(row, (6, 1))
    student = rng.normal(size=(6, 5))
    uniform = float(np.mean(-np.log(_softmax(student / 0.1)).mean(axis=1)))
    got = dino_loss(student, teacher, row, 2, 0.1, 0.01)
    assert float(got) == pytest.approx(uniform, rel=1e-6)
    # Without the centre, a low temperature sharpens the same teacher to its top prototype.
    one_hot = float(np.mean(-np.log(_softmax(student / 0.1))[:, np.argmax(row)]))
    got = dino_loss(student, teacher, np.zeros(5), 2, 0.1, 1e-3)
    assert float(got) == pytest.approx(one_hot, rel=1e-4)


def test_ema_center_update():
    rng = np.random.default_rng(8)
    c, m = rng.normal(size=7), rng.normal(size=7)
    got = ema_center(tf.constant(c), tf.constant(m), 0.9).numpy()
    np.testing.assert_allclose(got, 0.9 * c + 0.1 * m, rtol=1e-12)
