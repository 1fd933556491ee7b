"""LARS (You, Gitman and Ginsburg 2017) as a Keras 3 optimizer, and the AdamW alternative."""

from __future__ import annotations

import re
from collections.abc import Sequence

import keras
from keras import ops


def excluded_from_adaptation(variable, patterns: Sequence[str] = ()) -> bool:
    """True for biases and normalisation parameters (rank <= 1) or names matching ``patterns``."""
    if len(variable.shape) <= 1:
        return True
    path = getattr(variable, "path", variable.name)
    return any(re.search(p, path) for p in patterns)


@keras.saving.register_keras_serializable(package="ssl_backbones")
class LARS(keras.optimizers.Optimizer):
    """Layer-wise adaptive rate scaling with momentum and decoupled-from-bias weight decay.

    For each adapted variable ``w`` with gradient ``g``::

        g' = g + wd * w
        trust = eta * ||w|| / (||g|| + wd * ||w||)     (1 when ||w|| or ||g|| is 0)
        v = momentum * v + lr * trust * g'
        w = w - v

    Biases and normalisation parameters (rank <= 1, or names matching ``exclude``) get
    neither weight decay nor trust scaling: ``v = momentum * v + lr * g; w = w - v``.

    Parameters
    ----------
    learning_rate : float or LearningRateSchedule
    momentum : float
    weight_decay : float
        L2 coefficient added to the gradient of adapted variables (not Keras's built-in
        decoupled decay, which is disabled here).
    eta : float
        Trust coefficient.
    exclude : sequence of str
        Extra regular expressions on variable paths to exclude from adaptation and decay.
    """

    def __init__(self, learning_rate=0.1, momentum: float = 0.9, weight_decay: float = 0.0,
                 eta: float = 0.001, exclude: Sequence[str] = (), name: str = "lars",
                 **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.momentum = float(momentum)
        self.lars_weight_decay = float(weight_decay)
        self.eta = float(eta)
        self.exclude = tuple(exclude)

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self.momentums = self.add_optimizer_variables(variables, "momentum")
        self._excluded = [excluded_from_adaptation(v, self.exclude) for v in variables]

    def update_step(self, gradient, variable, learning_rate):
        index = self._get_variable_index(variable)
        lr = ops.cast(learning_rate, variable.dtype)
        g = ops.cast(gradient, variable.dtype)
        if not self._excluded[index]:
            wd = ops.cast(self.lars_weight_decay, variable.dtype)
            w_norm = ops.sqrt(ops.sum(ops.square(variable)))
            g_norm = ops.sqrt(ops.sum(ops.square(g)))
            denom = g_norm + wd * w_norm
            trust = ops.where((w_norm > 0) & (g_norm > 0),
                              self.eta * w_norm / ops.maximum(denom, 1e-12), 1.0)
            g = (g + wd * variable) * trust
        m = self.momentums[index]
        self.assign(m, ops.add(ops.multiply(m, self.momentum), ops.multiply(g, lr)))
        self.assign_sub(variable, m)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update({"momentum": self.momentum, "weight_decay": self.lars_weight_decay,
                       "eta": self.eta, "exclude": list(self.exclude)})
        return config


def make_optimizer(name: str, learning_rate, weight_decay: float, momentum: float = 0.9,
                   eta: float = 0.001, variables: Sequence | None = None):
    """``lars`` or ``adamw``; AdamW excludes rank <= 1 variables from decay.

    Parameters
    ----------
    variables : sequence of Variable, optional
        Trainable variables; needed for AdamW so that biases and norm parameters are excluded
        before the optimizer is built.
    """
    if name == "lars":
        return LARS(learning_rate, momentum=momentum, weight_decay=weight_decay, eta=eta)
    if name == "adamw":
        opt = keras.optimizers.AdamW(learning_rate=learning_rate, weight_decay=weight_decay)
        if variables is not None:
            opt.exclude_from_weight_decay(
                var_list=[v for v in variables if len(v.shape) <= 1])
        return opt
    raise ValueError(f"unknown optimizer {name!r}; use lars or adamw")
