import keras
import numpy as np
import pytest

from ssl_backbones.lars import LARS, make_optimizer


def _hand_lars(w, g, v, lr, wd, eta, m, adapt):
    if adapt:
        wn, gn = np.linalg.norm(w), np.linalg.norm(g)
        trust = eta * wn / (gn + wd * wn)
        g = (g + wd * w) * trust
    v = m * v + lr * g
    return w - v, v


def test_lars_two_steps_match_hand_computation():
    rng = np.random.default_rng(0)
    w0, b0 = rng.normal(size=(3, 4)), rng.normal(size=(4,))
    kernel = keras.Variable(w0, dtype="float32", name="kernel")
    bias = keras.Variable(b0, dtype="float32", name="bias")
    lr, wd, eta, m = 0.5, 0.01, 0.02, 0.9
    opt = LARS(learning_rate=lr, momentum=m, weight_decay=wd, eta=eta)
    w, vb, b, vw = w0.copy(), np.zeros(4), b0.copy(), np.zeros((3, 4))
    for _ in range(2):
        gw, gb = rng.normal(size=(3, 4)), rng.normal(size=(4,))
        opt.apply_gradients([(gw.astype("f4"), kernel), (gb.astype("f4"), bias)])
        w, vw = _hand_lars(w, gw, vw, lr, wd, eta, m, adapt=True)
        b, vb = _hand_lars(b, gb, vb, lr, wd, eta, m, adapt=False)
    np.testing.assert_allclose(kernel.numpy(), w, rtol=1e-5, atol=1e-6)
    # The bias gets plain momentum SGD: no trust ratio, no weight decay.
    np.testing.assert_allclose(bias.numpy(), b, rtol=1e-5, atol=1e-6)


def test_lars_zero_gradient_keeps_weights():
    kernel = keras.Variable(np.ones((2, 2)), dtype="float32")
    LARS(learning_rate=1.0, weight_decay=0.0).apply_gradients([(np.zeros((2, 2), "f4"), kernel)])
    np.testing.assert_array_equal(kernel.numpy(), np.ones((2, 2)))


def test_adamw_excludes_biases_from_decay():
    kernel = keras.Variable(np.ones((2, 2)), dtype="float32")
    bias = keras.Variable(np.ones(2), dtype="float32")
    opt = make_optimizer("adamw", 0.1, weight_decay=0.5, variables=[kernel, bias])
    opt.apply_gradients([(np.zeros((2, 2), "f4"), kernel), (np.zeros(2, "f4"), bias)])
    np.testing.assert_allclose(kernel.numpy(), np.full((2, 2), 1 - 0.1 * 0.5), rtol=1e-6)
    np.testing.assert_array_equal(bias.numpy(), np.ones(2))
    with pytest.raises(ValueError):
        make_optimizer("sgd", 0.1, 0.0)
