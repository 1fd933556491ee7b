"""Learning-rate and target-decay schedules of self-supervised pretraining."""

from __future__ import annotations

import math

import keras
from keras import ops


def lr_for_global_batch(base_lr: float, global_batch: int, rule: str = "linear") -> float:
    """Peak learning rate of pretraining from the global batch, all ranks together.

    ``base_lr`` is the rate of the recipe's reference batch, whatever the number of ranks:
    ``linear`` gives ``base_lr * B / 256`` (Goyal et al. 2017: ``base_lr`` is the rate per 256
    samples); ``sqrt`` gives ``base_lr * sqrt(B)`` (SimCLR's LARS recipe); ``none`` keeps
    ``base_lr``. Detector training instead scales one rank's rate by the number of ranks
    (:func:`ssl_backbones.distributed.lr_for_ranks`).
    """
    if rule == "linear":
        return base_lr * global_batch / 256.0
    if rule == "sqrt":
        return base_lr * math.sqrt(global_batch)
    if rule == "none":
        return base_lr
    raise ValueError(f"unknown learning-rate scaling rule {rule!r}")


@keras.saving.register_keras_serializable(package="ssl_backbones")
class WarmupCosine(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from 0 to ``peak_lr`` over ``warmup_steps``, then cosine decay to
    ``final_lr`` at ``total_steps`` (constant afterwards)."""

    def __init__(self, peak_lr: float, warmup_steps: int, total_steps: int,
                 final_lr: float = 0.0):
        self.peak_lr = float(peak_lr)
        self.warmup_steps = int(warmup_steps)
        self.total_steps = max(int(total_steps), 1)
        self.final_lr = float(final_lr)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        warm = float(max(self.warmup_steps, 1))
        warm_lr = self.peak_lr * (step + 1.0) / warm
        span = float(max(self.total_steps - self.warmup_steps, 1))
        progress = ops.clip((step - self.warmup_steps) / span, 0.0, 1.0)
        cos_lr = self.final_lr + 0.5 * (self.peak_lr - self.final_lr) * (
            1.0 + ops.cos(math.pi * progress))
        return ops.where(step < self.warmup_steps, warm_lr, cos_lr)

    def get_config(self) -> dict:
        return {"peak_lr": self.peak_lr, "warmup_steps": self.warmup_steps,
                "total_steps": self.total_steps, "final_lr": self.final_lr}


def target_decay(step, total_steps: int, tau_base: float = 0.99):
    """BYOL target-network decay ``tau = 1 - (1 - tau_base) * (cos(pi k / K) + 1) / 2``.

    Parameters
    ----------
    step : int or tensor
        Optimisation step ``k`` (0-based).
    total_steps : int
        ``K``, the number of steps of the whole run; ``tau`` reaches 1 there.
    tau_base : float
        Decay at step 0.
    """
    k = ops.minimum(ops.cast(step, "float32"), float(max(total_steps, 1)))
    return 1.0 - (1.0 - tau_base) * (ops.cos(math.pi * k / float(max(total_steps, 1))) + 1.0) / 2.0


def teacher_temperature(step, total_steps: int, start: float, end: float,
                        warmup: float = 0.0):
    """DINO teacher temperature: linear from ``start`` to ``end`` over the first ``warmup``
    fraction of ``total_steps``, then ``end``.

    Parameters
    ----------
    step : int or tensor
        Optimisation step (0-based).
    total_steps : int
        Steps of the whole run.
    start, end : float
        Temperatures at step 0 and after the warm-up.
    warmup : float
        Fraction of the run in [0, 1]; 0 gives ``end`` from the first step.
    """
    n = float(warmup) * float(max(total_steps, 1))
    if n <= 0:
        return ops.convert_to_tensor(float(end), "float32")
    frac = ops.clip(ops.cast(step, "float32") / n, 0.0, 1.0)
    return start + (end - start) * frac
