"""BYOL (Grill et al. 2020): online network predicts an EMA target network's projections."""

from __future__ import annotations

import tensorflow as tf

from ssl_backbones.losses import byol_regression_loss
from ssl_backbones.methods.base import SSLMethod, copy_weights, ema_update, mlp
from ssl_backbones.schedules import target_decay


class BYOL(SSLMethod):
    """Online backbone + projector + predictor; target backbone + projector updated as
    ``target = tau * target + (1 - tau) * online`` after every step, with ``tau`` rising from
    ``cfg.tau_base`` to 1 on a cosine over the run (:func:`target_decay`).

    Parameters
    ----------
    target_backbone : keras.Model
        A second backbone of the same architecture (its weights are overwritten with the
        online ones by :meth:`init_target`).
    """

    method_name = "byol"
    needs_target_backbone = True

    def __init__(self, backbone, cfg, ctx, total_steps: int = 1, target_backbone=None):
        super().__init__(backbone, cfg, ctx, total_steps)
        if target_backbone is None:
            raise ValueError("BYOL needs a target_backbone of the same architecture")
        self.predictor = mlp(cfg.pred_hidden, cfg.proj_dim, "predictor")
        self.target_backbone = target_backbone
        self.target_projector = mlp(cfg.proj_hidden, cfg.proj_dim, "target_projector")

    def online_variables(self) -> list:
        return (list(self.backbone.trainable_variables)
                + list(self.projector.trainable_variables)
                + list(self.predictor.trainable_variables))

    def _ema_pairs(self):
        online = list(self.backbone.trainable_variables) + list(
            self.projector.trainable_variables)
        target = list(self.target_backbone.trainable_variables) + list(
            self.target_projector.trainable_variables)
        return list(zip(target, online))

    def build_for(self, input_size: int, channels: int) -> None:
        super().build_for(input_size, channels)
        self.init_target()

    def init_target(self) -> None:
        """Copy the online weights into the target networks."""
        copy_weights(self._ema_pairs())

    def forward(self, view1, view2, step):
        b = tf.shape(view1)[0]
        both = tf.concat([view1, view2], axis=0)
        _, z = self.embed(both, training=True)
        p = self.predictor(z, training=True)
        th = self.target_backbone(both, training=True)["pooled"]
        tz = tf.stop_gradient(self.target_projector(th, training=True))
        loss = (byol_regression_loss(p[:b], tz[b:]) + byol_regression_loss(p[b:], tz[:b]))
        return loss, {"embedding_std": self.collapse_metric(z[:b])}

    def after_step(self, step):
        tau = tf.cast(target_decay(step, self.total_steps, self.cfg.tau_base), tf.float32)
        ema_update(self._ema_pairs(), tau)
        return {"target_decay": tau}


METHOD = BYOL
