"""The configuration tree of detector training (``configs/detect/*.yaml``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from caesar_mrcnn.data.pipeline import PipelineConfig
from caesar_mrcnn.data.preprocess import PreprocessConfig
from caesar_mrcnn.errors import ConfigError
from caesar_mrcnn.modeling.config import ModelConfig

FREEZE_POLICIES = ("none", "frozen", "staged")
OPTIMIZERS = ("sgd", "adamw")
LR_SCALING = ("linear", "sqrt", "none")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
BACKBONE_STAGES = ("res5", "res4", "res3", "res2", "stem")
"""Backbone stages in the order staged unfreezing releases them (deepest first)."""


@dataclass
class DataConfig:
    """Where the labelled images are and how they become batches.

    Attributes
    ----------
    train : str
        Training dataset: COCO JSON, caesar JSON list, or simulated-field folder.
    val : str or None
        Validation dataset (same formats); None skips validation.
    crops_per_image : int
        Training windows drawn per image per epoch (sets the epoch length).
    pipeline : PipelineConfig
    """

    train: str = ""
    val: str | None = None
    crops_per_image: int = 1
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)

    def validate(self) -> None:
        if self.crops_per_image < 1:
            raise ConfigError(f"crops_per_image: {self.crops_per_image} must be >= 1")


@dataclass
class BackboneConfig:
    """Which backbone to start from, and which of its stages train.

    Attributes
    ----------
    name : str
        ``resnet18`` or ``resnet50`` (random initialisation), a registry name such as
        ``ssl_byol_r18``, or the path of a backbone weights file.
    freeze : {"none", "frozen", "staged"}
        ``none``: everything trains; ``frozen``: the backbone never trains; ``staged``: the
        backbone starts frozen and its stages are released one by one, deepest first
        (res5, res4, res3, res2, stem), at the steps of ``unfreeze_steps``; the last listed step
        releases every stage still frozen.
    unfreeze_steps : list of int
        Steps of staged unfreezing (increasing).
    """

    name: str = "resnet18"
    freeze: str = "none"
    unfreeze_steps: list[int] = field(default_factory=list)

    def validate(self) -> None:
        if not self.name:
            raise ConfigError("name: give a backbone (resnet18, resnet50, a registry name "
                              "or a weights file)")
        if self.freeze not in FREEZE_POLICIES:
            raise ConfigError(f"freeze: {self.freeze!r} is not one of "
                              f"{', '.join(FREEZE_POLICIES)}")
        steps = list(self.unfreeze_steps)
        if self.freeze == "staged" and not steps:
            raise ConfigError("unfreeze_steps: staged unfreezing needs at least one step")
        if any(s < 0 for s in steps) or steps != sorted(steps):
            raise ConfigError(f"unfreeze_steps: {steps} must be increasing steps >= 0")


@dataclass
class OptimConfig:
    """Optimiser and learning-rate schedule.

    Attributes
    ----------
    name : {"sgd", "adamw"}
        SGD with momentum, or AdamW.
    lr : float
        Peak learning rate for one rank; scaled by the number of ranks with ``lr_scaling``.
    lr_scaling : {"linear", "sqrt", "none"}
        ``lr`` times the number of ranks, times its square root, or unchanged
        (:func:`ssl_backbones.distributed.lr_for_ranks`). Not the pretraining rule, which
        scales by the global batch over 256.
    momentum : float
        SGD momentum (AdamW uses it as ``beta_1``).
    weight_decay : float
        Decoupled weight decay; never applied to biases and normalisation parameters.
    warmup_steps : int
        Linear warm-up from 0 to the peak learning rate.
    final_lr_fraction : float
        The cosine decay ends at ``final_lr_fraction * peak``.
    clip_norm : float
        Clip gradients to this global norm (0: no clipping).
    """

    name: str = "sgd"
    lr: float = 0.01
    lr_scaling: str = "linear"
    momentum: float = 0.9
    weight_decay: float = 1e-4
    warmup_steps: int = 100
    final_lr_fraction: float = 0.0
    clip_norm: float = 10.0

    def validate(self) -> None:
        if self.name not in OPTIMIZERS:
            raise ConfigError(f"name: {self.name!r} is not one of {', '.join(OPTIMIZERS)}")
        if self.lr_scaling not in LR_SCALING:
            raise ConfigError(f"lr_scaling: {self.lr_scaling!r} is not one of "
                              f"{', '.join(LR_SCALING)}")
        if not self.lr > 0:
            raise ConfigError(f"lr: {self.lr} must be > 0")
        if not 0.0 <= self.momentum < 1.0:
            raise ConfigError(f"momentum: {self.momentum} must be in [0, 1)")
        if self.weight_decay < 0 or self.clip_norm < 0 or self.warmup_steps < 0:
            raise ConfigError("weight_decay, clip_norm and warmup_steps must be >= 0")
        if not 0.0 <= self.final_lr_fraction <= 1.0:
            raise ConfigError(f"final_lr_fraction: {self.final_lr_fraction} must be in [0, 1]")


@dataclass
class TrainConfig:
    """Everything one detector training run needs.

    Attributes
    ----------
    data : DataConfig
    model : ModelConfig
    preprocess : PreprocessConfig
        Turns each FITS image into network channels; saved with the detector so inference
        repeats it exactly. Its channel count must equal ``model.in_channels``.
    backbone : BackboneConfig
    optim : OptimConfig
    init : str
        A detector file (full or compact) whose weights start the run instead of the
        initialisation, to fine-tune it on other fields or for more steps; its model must have
        the same layers and shapes and its input the same preprocessing. The optimiser, the
        schedule and the data order start anew (``--resume`` continues a run instead).
    out : str
        Output folder: checkpoints, TensorBoard logs, the final detector.
    steps : int
        Training steps; 0 means ``epochs`` epochs.
    epochs : int
        Epochs when ``steps`` is 0; an epoch is ``crops_per_image`` windows per image.
    batch_size : int
        Windows per step on each rank.
    checkpoint_every : int
        Steps between checkpoints (0: only at the end).
    keep_checkpoints : int
        Most recent checkpoints kept.
    log_every : int
        Steps between TensorBoard scalars.
    image_every : int
        Steps between TensorBoard prediction images (0: never).
    validate_every : int
        Steps between validations; 0 means once per epoch.
    seed : int
        Seed of initialisation, data order, crops and augmentation.
    jit_compile : bool
        XLA-compile the train step.
    deterministic : bool
        Use TensorFlow's deterministic kernels for the duration of the run, so that a run
        repeated (or interrupted and resumed) with the same seed and world size gives the same
        weights bit for bit. Without it, the order of floating-point sums in multithreaded
        kernels can change the last bits, and the discrete steps of a detector (top-k
        proposals, sampling, NMS) can grow those into visibly different runs. Costs some speed.
    precision : {"float32", "mixed_float16", "mixed_bfloat16"}
        Compute precision (``mixed_float16`` adds dynamic loss scaling);
        ``model.mixed_precision: true`` means ``mixed_float16``.
    progress : bool
        Show a progress bar on rank 0.
    """

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    init: str = ""
    out: str = "runs/detect"
    steps: int = 0
    epochs: int = 12
    batch_size: int = 2
    checkpoint_every: int = 500
    keep_checkpoints: int = 3
    log_every: int = 10
    image_every: int = 500
    validate_every: int = 0
    seed: int = 0
    jit_compile: bool = False
    deterministic: bool = False
    precision: str = "float32"
    progress: bool = True

    def validate(self) -> None:
        for key in ("steps", "checkpoint_every", "log_every", "image_every", "validate_every"):
            if getattr(self, key) < 0:
                raise ConfigError(f"{key}: {getattr(self, key)} must be >= 0")
        for key in ("epochs", "batch_size", "keep_checkpoints"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key}: {getattr(self, key)} must be >= 1")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"precision: {self.precision!r} is not one of "
                              f"{', '.join(PRECISIONS)}")
        if not self.out:
            raise ConfigError("out: give an output folder")
