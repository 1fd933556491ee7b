"""Optimiser of detector training: SGD or AdamW, warm-up + cosine schedule, clipping, and weight
decay that skips biases and normalisation parameters."""

from __future__ import annotations

from collections.abc import Sequence

from caesar_mrcnn.training.config import OptimConfig


def learning_rate_schedule(cfg: OptimConfig, peak_lr: float, total_steps: int):
    """Linear warm-up to ``peak_lr`` over ``cfg.warmup_steps``, then cosine decay.

    Parameters
    ----------
    cfg : OptimConfig
    peak_lr : float
        Learning rate after warm-up (already scaled for the number of ranks).
    total_steps : int
        Length of the run in steps; the cosine reaches ``final_lr_fraction * peak_lr`` there.

    Returns
    -------
    keras.optimizers.schedules.LearningRateSchedule
        A pure function of the optimiser's step counter, so a resumed run continues it exactly.
    """
    from ssl_backbones.schedules import WarmupCosine

    warmup = min(int(cfg.warmup_steps), max(int(total_steps) - 1, 0))
    return WarmupCosine(peak_lr, warmup, int(total_steps),
                        final_lr=peak_lr * cfg.final_lr_fraction)


def decayed(variable) -> bool:
    """Whether weight decay applies: kernels yes; biases and norm scales/offsets (1-D) no."""
    return len(variable.shape) > 1


def build_optimizer(cfg: OptimConfig, schedule, variables: Sequence, loss_scaling: bool = False):
    """Create and build the optimiser for every variable that may ever train.

    Building it on the full list (including a backbone that starts frozen) creates all slot
    variables up front, so checkpoints always hold the same variables, ranks can broadcast
    them once, and stages released later just start updating their own slots.

    Parameters
    ----------
    cfg : OptimConfig
    schedule : LearningRateSchedule
    variables : sequence of keras.Variable
        Every variable that trains at some point of the run.
    loss_scaling : bool
        Wrap in a dynamic loss-scale optimiser (float16 mixed precision).

    Returns
    -------
    keras.optimizers.Optimizer
    """
    import keras

    clip = float(cfg.clip_norm) if cfg.clip_norm > 0 else None
    wd = float(cfg.weight_decay) if cfg.weight_decay > 0 else None
    if cfg.name == "sgd":
        opt = keras.optimizers.SGD(learning_rate=schedule, momentum=cfg.momentum,
                                   weight_decay=wd, global_clipnorm=clip)
    else:
        opt = keras.optimizers.AdamW(learning_rate=schedule, beta_1=cfg.momentum,
                                     weight_decay=wd or 0.0, global_clipnorm=clip)
    variables = list(variables)
    if wd:
        opt.exclude_from_weight_decay(var_list=[v for v in variables if not decayed(v)])
    if loss_scaling:
        opt = keras.optimizers.LossScaleOptimizer(opt)
    opt.build(variables)
    return opt


def current_lr(optimizer) -> float:
    """The learning rate the next step will use."""
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    lr = inner.learning_rate
    return float(lr.numpy() if hasattr(lr, "numpy") else lr)
