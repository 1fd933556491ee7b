"""DINO (Caron et al. 2021): a student matches an EMA teacher's centred, sharpened output
distributions, across global and local crops."""

from __future__ import annotations

import keras
import tensorflow as tf

from ssl_backbones.losses import dino_loss, ema_center
from ssl_backbones.methods.base import SSLMethod, copy_weights, ema_update, mlp
from ssl_backbones.schedules import target_decay, teacher_temperature

N_GLOBAL = 2


@keras.saving.register_keras_serializable(package="ssl_backbones")
class Prototypes(keras.layers.Layer):
    """Last layer of the DINO head: cosine similarity of the input to ``units`` learned
    prototype vectors.

    This is DINO's weight-normalised linear layer with its gain fixed at 1: with both sides
    L2-normalised the logits stay in [-1, 1] before the temperature, which keeps the early
    steps stable whatever the width of the head.
    """

    def __init__(self, units: int, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(int(input_shape[-1]), self.units),
                                      initializer="glorot_uniform", name="kernel")

    def call(self, x):
        x = tf.math.l2_normalize(x, axis=-1)
        return tf.matmul(x, tf.math.l2_normalize(self.kernel, axis=0))

    def get_config(self) -> dict:
        return {**super().get_config(), "units": self.units}


class DINO(SSLMethod):
    """Student: backbone + projector + prototypes, trained by gradient; teacher: the same
    networks updated as ``teacher = tau * teacher + (1 - tau) * student`` after every step
    (``tau`` from ``cfg.tau_base`` to 1 on a cosine, as BYOL's target).

    The teacher sees the two global views; the student sees them and the local views
    (multi-crop), and each student crop predicts the teacher's distribution of every other
    global crop (:func:`ssl_backbones.losses.dino_loss`). The teacher's logits are centred by a
    running mean (``center``, a non-trainable weight: checkpointed and broadcast with the
    rest) and sharpened by a low temperature; the mean of each step is taken over every
    rank's batch (``ctx.average_tensor``), so all ranks keep one centre.

    Parameters
    ----------
    target_backbone : keras.Model
        The teacher's backbone, same architecture (overwritten with the student's weights by
        :meth:`init_target`).
    """

    method_name = "dino"
    needs_target_backbone = True
    multi_crop = True

    def __init__(self, backbone, cfg, ctx, total_steps: int = 1, target_backbone=None):
        super().__init__(backbone, cfg, ctx, total_steps)
        if target_backbone is None:
            raise ValueError("DINO needs a target_backbone (the teacher) of the same architecture")
        self.prototypes = Prototypes(cfg.out_dim, name="prototypes")
        self.target_backbone = target_backbone
        self.target_projector = mlp(cfg.proj_hidden, cfg.proj_dim, "target_projector")
        self.target_prototypes = Prototypes(cfg.out_dim, name="target_prototypes")
        self.center = self.add_weight(shape=(cfg.out_dim,), initializer="zeros",
                                      trainable=False, name="center")

    def _student(self):
        return (self.backbone, self.projector, self.prototypes)

    def _teacher(self):
        return (self.target_backbone, self.target_projector, self.target_prototypes)

    def online_variables(self) -> list:
        return [v for net in self._student() for v in net.trainable_variables]

    def _ema_pairs(self):
        target = [v for net in self._teacher() for v in net.trainable_variables]
        return list(zip(target, self.online_variables()))

    def exported_backbone(self):
        """The teacher's backbone: a running average of the student, which DINO evaluates
        because it is the better of the two."""
        return self.target_backbone

    def build_for(self, input_size: int, channels: int) -> None:
        super().build_for(input_size, channels)
        self.init_target()

    def init_target(self) -> None:
        """Teacher = student, and an empty centre (the dummy batch that built the networks
        must not count)."""
        copy_weights(self._ema_pairs())
        self.center.assign(tf.zeros_like(self.center))

    def forward(self, view1, view2, step, local_views=None):
        b = tf.shape(view1)[0]
        glob = tf.concat([view1, view2], axis=0)
        _, z = self.embed(glob, training=True)
        student = [self.prototypes(z)]
        if local_views is not None:
            # Local views go through apart: they are smaller, and one batch needs one size.
            _, z_local = self.embed(local_views, training=True)
            student.append(self.prototypes(z_local))
        th = self.target_backbone(glob, training=True)["pooled"]
        teacher = tf.stop_gradient(
            self.target_prototypes(self.target_projector(th, training=True)))
        cfg = self.cfg
        temp = tf.cast(teacher_temperature(step, self.total_steps, cfg.teacher_temp_start,
                                           cfg.teacher_temp, cfg.teacher_temp_warmup),
                       tf.float32)
        center = tf.convert_to_tensor(self.center)  # the centre before this step's update
        loss = dino_loss(tf.concat(student, axis=0), teacher, center, N_GLOBAL,
                         cfg.student_temp, temp)
        batch_mean = self.ctx.average_tensor(tf.reduce_mean(teacher, axis=0))
        self.center.assign(ema_center(center, batch_mean, cfg.center_momentum))
        # Entropy of the teacher's targets: near log(out_dim) is collapse to uniform outputs,
        # near 0 collapse to one prototype.
        q = tf.nn.softmax((teacher - center) / temp, axis=-1)
        entropy = -tf.reduce_mean(tf.reduce_sum(q * tf.math.log(q + 1e-12), axis=-1))
        return loss, {"embedding_std": self.collapse_metric(z[:b]), "teacher_temp": temp,
                      "teacher_entropy": entropy}

    def after_step(self, step):
        tau = tf.cast(target_decay(step, self.total_steps, self.cfg.tau_base), tf.float32)
        ema_update(self._ema_pairs(), tau)
        return {"target_decay": tau}


METHOD = DINO
