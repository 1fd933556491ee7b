import keras
import numpy as np
import pytest
import tensorflow as tf

from ssl_backbones.config import MethodConfig
from ssl_backbones.distributed import SingleContext
from ssl_backbones.errors import PretrainConfigError
from ssl_backbones.lars import LARS
from ssl_backbones.methods.base import available_methods, method_class
from ssl_backbones.resnet import build_resnet

CFG = dict(arch="resnet18", small_stem=True, proj_hidden=16, proj_dim=8, pred_hidden=16)


def _views(seed=0, b=4):
    rng = np.random.default_rng(seed)
    return (tf.constant(rng.uniform(size=(b, 16, 16, 1)), tf.float32),
            tf.constant(rng.uniform(size=(b, 16, 16, 1)), tf.float32))


def test_registry_of_methods():
    assert {"simclr", "byol"} <= set(available_methods())
    assert method_class("byol").method_name == "byol"
    with pytest.raises(PretrainConfigError, match="simclr"):
        method_class("vicreg_not_here")


def test_byol_target_follows_ema_formula():
    keras.utils.set_random_seed(0)
    cfg = MethodConfig(name="byol", tau_base=0.9, **CFG)
    byol = method_class("byol")(build_resnet("resnet18", 1, small_stem=True), cfg,
                                SingleContext(), total_steps=10,
                                target_backbone=build_resnet("resnet18", 1, small_stem=True,
                                                             name="target"))
    byol.build_for(16, 1)
    pairs = byol._ema_pairs()
    assert all(np.array_equal(t.numpy(), o.numpy()) for t, o in pairs)  # target = online
    byol.set_optimizer(LARS(0.5, weight_decay=1e-4, eta=0.02))
    before_t = [t.numpy().copy() for t, _ in pairs]
    step = 3
    metrics = byol.train_step(*_views(), tf.constant(step, tf.int64))
    tau = 1 - (1 - 0.9) * (np.cos(np.pi * step / 10) + 1) / 2
    assert float(metrics["target_decay"]) == pytest.approx(tau, rel=1e-6)
    changed = 0
    for (t, o), t0 in zip(pairs, before_t):
        np.testing.assert_allclose(t.numpy(), tau * t0 + (1 - tau) * o.numpy(), rtol=1e-5,
                                   atol=1e-7)
        changed += not np.allclose(t.numpy(), t0)
    assert changed > 0
    # The target networks are not in the optimised set.
    online_ids = {id(v) for v in byol.online_variables()}
    assert not any(id(t) in online_ids for t, _ in pairs)
    assert any("predictor" in v.path for v in byol.online_variables())


def test_simclr_step_updates_backbone_and_reports_metrics():
    keras.utils.set_random_seed(1)
    cfg = MethodConfig(name="simclr", temperature=0.5, **CFG)
    simclr = method_class("simclr")(build_resnet("resnet18", 1, small_stem=True), cfg,
                                    SingleContext())
    simclr.build_for(16, 1)
    simclr.set_optimizer(keras.optimizers.SGD(0.1))
    k0 = simclr.backbone.get_layer("stem_conv").kernel.numpy().copy()
    metrics = tf.function(simclr.train_step)(*_views(), tf.constant(0, tf.int64))
    assert np.isfinite(float(metrics["loss"])) and float(metrics["embedding_std"]) > 0
    assert not np.allclose(simclr.backbone.get_layer("stem_conv").kernel.numpy(), k0)
