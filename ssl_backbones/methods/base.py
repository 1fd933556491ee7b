"""Base class of self-supervised methods, and the lookup of methods by name.

A method is a ``keras.Model`` that owns a backbone, a projector MLP and whatever else it needs
(predictor, target networks). Subclasses implement :meth:`SSLMethod.forward`; the base class
runs the optimisation step (gradients averaged over ranks through the distributed context) and
calls :meth:`SSLMethod.after_step`, a no-op hook that EMA methods override (with
:func:`ema_update` on their (target, online) variable pairs).

Class attributes tell the pretraining loop what a method needs: ``needs_target_backbone``
(a second backbone, the EMA target or teacher) and ``multi_crop`` (it takes local views
besides the two global ones).

Each method lives in its own module ``ssl_backbones/methods/<name>.py`` that defines
``METHOD = <class>``; adding one (VICReg, ...) is adding that file.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

import keras
import tensorflow as tf

from ssl_backbones.config import MethodConfig
from ssl_backbones.errors import PretrainConfigError
from ssl_backbones.losses import embedding_std


def mlp(hidden: int, out: int, name: str, depth: int = 2) -> keras.Sequential:
    """Projector/predictor head: ``depth - 1`` blocks of Dense + BatchNorm + ReLU, then Dense.

    The batch norm spans every rank's batch in a Horovod job (plain batch norm otherwise): with
    per-rank statistics, contrastive methods can tell positives apart by their local batch
    statistics instead of their content.
    """
    from ssl_backbones.distributed import SyncBatchNormalization

    layers: list = []
    for i in range(depth - 1):
        layers += [keras.layers.Dense(hidden, use_bias=False, name=f"{name}_dense{i + 1}"),
                   SyncBatchNormalization(name=f"{name}_bn{i + 1}"),
                   keras.layers.ReLU(name=f"{name}_relu{i + 1}")]
    layers.append(keras.layers.Dense(out, name=f"{name}_out"))
    return keras.Sequential(layers, name=name)


class SSLMethod(keras.Model):
    """Backbone + projector with a distributed training step.

    Parameters
    ----------
    backbone : keras.Model
        From ``build_resnet``; its ``"pooled"`` output feeds the projector.
    cfg : MethodConfig
    ctx : distributed context
        From ``ssl_backbones.distributed.init()``; gradients are averaged with
        ``ctx.allreduce_gradients`` and methods may gather tensors with ``ctx.allgather``.
    total_steps : int
        Optimisation steps of the whole run (for schedules such as BYOL's target decay).
    """

    method_name = "base"
    needs_target_backbone = False
    multi_crop = False

    def __init__(self, backbone: keras.Model, cfg: MethodConfig, ctx: Any,
                 total_steps: int = 1, **kwargs):
        super().__init__(name=f"{self.method_name}_{cfg.arch}", **kwargs)
        self.cfg = cfg
        self.ctx = ctx
        self.total_steps = int(total_steps)
        self.backbone = backbone
        self.projector = mlp(cfg.proj_hidden, cfg.proj_dim, "projector")
        self.ssl_optimizer = None

    # -- to implement --------------------------------------------------------------------------

    def forward(self, view1, view2, step) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
        """Loss and monitored metrics of a batch of view pairs, in training mode.

        Methods with ``multi_crop`` take a fourth argument, ``local_views``: ``[L*B, s, s, C]``
        small crops, crop-major (crop ``l`` of image ``i`` at row ``l*B + i``), or None.
        """
        raise NotImplementedError

    def after_step(self, step) -> dict[str, tf.Tensor]:
        """Called after each optimiser update with the 0-based step; returns extra metrics."""
        return {}

    def online_variables(self) -> list:
        """Variables the optimiser updates (default: all trainable ones)."""
        return list(self.trainable_variables)

    def exported_backbone(self) -> keras.Model:
        """The backbone the registry receives at the end of pretraining (default: the
        online one)."""
        return self.backbone

    # -- shared machinery ----------------------------------------------------------------------

    def call(self, images, training: bool = False):
        """Pooled backbone embedding ``[B, 512|2048]``."""
        return self.backbone(images, training=training)["pooled"]

    def embed(self, views, training: bool = True):
        """Backbone then projector; returns (pooled, projection)."""
        h = self.backbone(views, training=training)["pooled"]
        return h, self.projector(h, training=training)

    def build_for(self, input_size: int, channels: int) -> None:
        """Create every variable by running the networks once on a dummy batch."""
        dummy = tf.zeros([2, input_size, input_size, channels])
        self.forward(dummy, dummy, tf.constant(0, tf.int64))

    def set_optimizer(self, optimizer: keras.optimizers.Optimizer) -> None:
        """Attach and build the optimiser (its slots exist before any checkpoint restore or
        cross-rank broadcast)."""
        self.ssl_optimizer = optimizer
        optimizer.build(self.online_variables())

    def state_variables(self) -> list:
        """Everything a checkpoint must hold, in a fixed order: model then optimiser state."""
        return list(self.weights) + list(self.ssl_optimizer.variables)

    def broadcast_state(self) -> None:
        """Copy rank 0's weights and optimiser state to every rank."""
        self.ctx.broadcast_variables(self.state_variables(), root_rank=0)

    def train_step(self, view1, view2, step, local_views=None):  # noqa: D401 - overrides Keras
        """One optimisation step on a batch of view pairs (and, for ``multi_crop`` methods,
        local views; see :meth:`forward`); returns a dict of scalar metrics."""
        variables = self.online_variables()
        with tf.GradientTape() as tape:
            if local_views is None:
                loss, metrics = self.forward(view1, view2, step)
            else:
                loss, metrics = self.forward(view1, view2, step, local_views)
        grads = tape.gradient(loss, variables)
        grads = self.ctx.allreduce_gradients(grads)
        self.ssl_optimizer.apply_gradients(zip(grads, variables))
        metrics = dict(metrics)
        metrics.update(self.after_step(step))
        metrics["loss"] = loss
        return metrics

    @staticmethod
    def collapse_metric(z) -> tf.Tensor:
        """See :func:`ssl_backbones.losses.embedding_std`."""
        return embedding_std(z)


def copy_weights(pairs) -> None:
    """``target.assign(online)`` for every ``(target, online)`` variable pair."""
    for t, o in pairs:
        t.assign(o)


def ema_update(pairs, tau) -> None:
    """``target = tau * target + (1 - tau) * online`` for every ``(target, online)`` pair."""
    for t, o in pairs:
        t.assign(tau * t + (1.0 - tau) * o)


def available_methods() -> list[str]:
    """Names of the method modules in this package."""
    import ssl_backbones.methods as pkg

    return sorted(m.name for m in pkgutil.iter_modules(pkg.__path__) if m.name != "base")


def method_class(name: str) -> type[SSLMethod]:
    """The :class:`SSLMethod` subclass registered as ``name``.

    Raises
    ------
    PretrainConfigError
        Unknown method name.
    """
    known = available_methods()
    if name not in known:
        raise PretrainConfigError(f"method: unknown method {name!r}; known: {', '.join(known)}")
    return importlib.import_module(f"ssl_backbones.methods.{name}").METHOD
