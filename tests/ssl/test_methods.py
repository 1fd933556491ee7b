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
    assert {"simclr", "byol", "dino"} <= set(available_methods())
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


def _dino(total_steps=10, **kw):
    cfg = MethodConfig(name="dino", out_dim=12, tau_base=0.9, center_momentum=0.8,
                       **{**CFG, **kw})
    dino = method_class("dino")(build_resnet("resnet18", 1, small_stem=True), cfg,
                                SingleContext(), total_steps=total_steps,
                                target_backbone=build_resnet("resnet18", 1, small_stem=True,
                                                             name="target"))
    dino.build_for(16, 1)
    return dino


def test_dino_teacher_ema_centre_and_local_views():
    keras.utils.set_random_seed(2)
    dino = _dino()
    pairs = dino._ema_pairs()
    assert all(np.array_equal(t.numpy(), o.numpy()) for t, o in pairs)  # teacher = student
    assert not np.any(dino.center.numpy())  # the build's dummy batch left no trace
    dino.set_optimizer(keras.optimizers.SGD(0.1))
    v1, v2 = _views(3)
    local = tf.constant(np.random.default_rng(4).uniform(size=(2 * 4, 8, 8, 1)), tf.float32)
    # The teacher's logits of this step (training mode: batch statistics, as in the step).
    glob = tf.concat([v1, v2], axis=0)
    teacher = dino.target_prototypes(dino.target_projector(
        dino.target_backbone(glob, training=True)["pooled"], training=True)).numpy()
    before_t = [t.numpy().copy() for t, _ in pairs]
    step = 3
    metrics = tf.function(dino.train_step)(v1, v2, tf.constant(step, tf.int64), local)
    assert np.isfinite(float(metrics["loss"]))
    assert 0 < float(metrics["teacher_entropy"]) <= np.log(12) + 1e-6
    assert float(metrics["teacher_temp"]) == pytest.approx(0.04)
    np.testing.assert_allclose(dino.center.numpy(), 0.2 * teacher.mean(axis=0), rtol=1e-4,
                               atol=1e-6)
    tau = 1 - (1 - 0.9) * (np.cos(np.pi * step / 10) + 1) / 2
    assert float(metrics["target_decay"]) == pytest.approx(tau, rel=1e-6)
    for (t, o), t0 in zip(pairs, before_t):
        np.testing.assert_allclose(t.numpy(), tau * t0 + (1 - tau) * o.numpy(), rtol=1e-5,
                                   atol=1e-7)
    online_ids = {id(v) for v in dino.online_variables()}
    assert not any(id(t) in online_ids for t, _ in pairs)
    # The centre is state (checkpointed, broadcast) but never optimised; the teacher's
    # backbone is the one exported.
    assert id(dino.center) not in online_ids
    assert any(v is dino.center for v in dino.state_variables())
    assert dino.exported_backbone() is dino.target_backbone


def test_dino_teacher_temperature_warms_up():
    dino = _dino(total_steps=100, teacher_temp_start=0.02, teacher_temp=0.06,
                 teacher_temp_warmup=0.5)
    dino.set_optimizer(keras.optimizers.SGD(0.0))
    temps = [float(dino.train_step(*_views(), tf.constant(s, tf.int64))["teacher_temp"])
             for s in (0, 25, 80)]
    assert temps == pytest.approx([0.02, 0.04, 0.06])


def test_local_views_only_for_multi_crop_methods():
    assert method_class("dino").multi_crop and method_class("dino").needs_target_backbone
    assert not method_class("simclr").multi_crop and not method_class("byol").multi_crop
