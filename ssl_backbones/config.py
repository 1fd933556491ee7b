"""Pretraining configuration: nested dataclasses filled from YAML and ``key.sub=value`` overrides.

Filled by :mod:`ssl_backbones.dataclass_config` (also behind ``caesar_mrcnn.config``); mistakes
raise :class:`PretrainConfigError` naming the file and the dotted key::

    cfg = load_pretrain_config("configs/pretrain/byol_r18.yaml", ["train.epochs=5"])
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from ssl_backbones import dataclass_config
from ssl_backbones.errors import PretrainConfigError

T = TypeVar("T")

STRETCHES = ("linear", "log", "sqrt", "asinh", "sinh", "squared")


@dataclass
class PretrainDataConfig:
    """Where cutouts come from and how big the network input is.

    Attributes
    ----------
    input_size : int
        Side of the square views fed to the network (pixels).
    channels : int
        Network input channels; each is the same cutout under its own intensity stretch.
    cutouts_per_image : int
        Cutouts sampled at random from each large FITS image given instead of a folder.
    cutout_size : int
        Side of those sampled cutouts (pixels).
    max_nan_fraction : float
        Cutouts with a larger fraction of NaN pixels are skipped.
    eval_stretches : list of str
        Fixed per-channel stretches used outside training (feature extraction, detector);
        cycled when shorter than ``channels``.
    input : str
        ``minmax``: each cutout min-max scaled, random stretches (the first backbones);
        ``snr3-v1``: cutouts in noise units at the reference beam sampling, the fixed stretches
        of ``ssl_backbones.radio_input`` (needs ``channels: 3``).
    sources : list of dict
        Weighted mix (``snr3-v1`` only), each ``{kind, path, weight}`` with ``kind`` one of
        ``mirabest`` (training batches, labels ignored), ``fields`` (real FITS images, cut at
        random and on sources) or ``folder`` (FITS cutouts, e.g. from ``make-cutouts``); see
        ``ssl_backbones.sources``. Used when no ``--data`` is given.
    mix_size : int
        Cutouts per epoch drawn from ``sources`` by weight (0: the total of all sources).
    eval_size : int
        Side of the centred crop fed to the network outside training, at the reference sampling
        (0: ``input_size``).
    """

    input_size: int = 64
    channels: int = 3
    cutouts_per_image: int = 256
    cutout_size: int = 96
    max_nan_fraction: float = 0.5
    eval_stretches: list[str] = field(default_factory=lambda: ["linear", "sqrt", "asinh"])
    input: str = "minmax"
    sources: list[dict] = field(default_factory=list)
    mix_size: int = 0
    eval_size: int = 0

    def validate(self) -> None:
        if self.input not in ("minmax", "snr3-v1"):
            raise PretrainConfigError("data.input: use minmax or snr3-v1")
        if self.input == "snr3-v1" and self.channels != 3:
            raise PretrainConfigError("data.channels: snr3-v1 views have 3 channels; set 3")
        if self.sources and self.input != "snr3-v1":
            raise PretrainConfigError("data.sources: needs data.input: snr3-v1")
        if self.mix_size < 0 or self.eval_size < 0:
            raise PretrainConfigError("data.mix_size, data.eval_size: must be >= 0")
        if self.input_size < 16:
            raise PretrainConfigError("data.input_size: must be at least 16 pixels")
        if self.channels < 1:
            raise PretrainConfigError("data.channels: must be at least 1")
        if not 0.0 <= self.max_nan_fraction <= 1.0:
            raise PretrainConfigError("data.max_nan_fraction: must lie in [0, 1]")
        bad = [s for s in self.eval_stretches if s not in STRETCHES]
        if bad or not self.eval_stretches:
            raise PretrainConfigError(
                f"data.eval_stretches: {bad or 'empty'}; choose from {', '.join(STRETCHES)}")


@dataclass
class AugmentConfig:
    """Radio views: ranges and probabilities of each random transform (see ``augment.py``).

    With ``data.input: snr3-v1`` the crop keeps the beam sampling within ``zoom_range``
    (output/input pixel scale), ``snr_scale`` multiplies the SNR map, ``snr_noise`` is the
    range of the std (in rms) of the Gaussian noise added with ``noise_prob``; the contrast
    and stretch options do not apply (the stretches are fixed).

    Multi-crop (DINO): besides the two global views of ``data.input_size`` pixels, each image
    gives ``local_crops`` small views of ``local_size`` pixels. With ``snr3-v1`` they are
    windows of ``local_size`` pixels at the same beam sampling (a smaller part of the sky, the
    same beam); with ``minmax`` they are random resized crops of ``local_crop_scale`` of the
    cutout's area. Methods that do not use local views refuse ``local_crops > 0``.
    """

    crop_scale: tuple[float, float] = (0.35, 1.0)
    crop_ratio: tuple[float, float] = (0.75, 1.3333)
    flip_prob: float = 0.5
    rot90: bool = True
    max_rotation_deg: float = 15.0
    contrast_prob: float = 0.5
    contrast_sigma_low: tuple[float, float] = (1.0, 5.0)
    contrast_sigma_high: tuple[float, float] = (5.0, 50.0)
    stretch_scheme: str = "mixed"
    stretches: list[str] = field(default_factory=lambda: list(STRETCHES))
    blur_prob: float = 0.5
    blur_sigma: tuple[float, float] = (0.1, 1.5)
    noise_prob: float = 0.5
    noise_std: tuple[float, float] = (0.0, 0.05)
    zoom_range: tuple[float, float] = (0.8, 1.25)
    snr_scale: tuple[float, float] = (0.7, 1.4)
    snr_noise: tuple[float, float] = (0.0, 1.0)
    local_crops: int = 0
    local_size: int = 32
    local_crop_scale: tuple[float, float] = (0.05, 0.35)

    def validate(self) -> None:
        lo, hi = self.crop_scale
        if not 0.0 < lo <= hi <= 1.0:
            raise PretrainConfigError("augment.crop_scale: need 0 < low <= high <= 1")
        if self.stretch_scheme not in ("mixed", "same", *STRETCHES):
            raise PretrainConfigError(
                "augment.stretch_scheme: use mixed, same, or one of " + ", ".join(STRETCHES))
        bad = [s for s in self.stretches if s not in STRETCHES]
        if bad or not self.stretches:
            raise PretrainConfigError(
                f"augment.stretches: {bad or 'empty'}; choose from {', '.join(STRETCHES)}")
        for key in ("flip_prob", "contrast_prob", "blur_prob", "noise_prob"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise PretrainConfigError(f"augment.{key}: must lie in [0, 1]")
        if not 0.0 < self.zoom_range[0] <= self.zoom_range[1]:
            raise PretrainConfigError("augment.zoom_range: need 0 < low <= high")
        if not 0.0 < self.snr_scale[0] <= self.snr_scale[1]:
            raise PretrainConfigError("augment.snr_scale: need 0 < low <= high")
        if self.blur_sigma[1] > 4.0:
            raise PretrainConfigError("augment.blur_sigma: at most 4 pixels")
        if self.local_crops < 0:
            raise PretrainConfigError("augment.local_crops: must be >= 0")
        if self.local_crops and self.local_size < 16:
            raise PretrainConfigError("augment.local_size: must be at least 16 pixels")
        lo, hi = self.local_crop_scale
        if not 0.0 < lo <= hi <= 1.0:
            raise PretrainConfigError("augment.local_crop_scale: need 0 < low <= high <= 1")


@dataclass
class MethodConfig:
    """Self-supervised method and its heads.

    Attributes
    ----------
    name : str
        Registered method name (``simclr``, ``byol``, ``dino``).
    arch : str
        ``resnet18`` or ``resnet50``.
    small_stem : bool
        3x3 stride-1 stem without max-pool, for small cutouts.
    norm : str
        Normalisation layer of the backbone (passed to ``build_resnet``).
    proj_hidden, proj_dim, pred_hidden : int
        Widths of the projector MLP and (BYOL) predictor MLP.
    temperature : float
        SimCLR NT-Xent temperature.
    tau_base : float
        BYOL and DINO initial target (teacher) decay; it rises to 1 on a cosine over all steps.
    out_dim : int
        DINO: number of prototypes, the width of the distributions compared.
    student_temp : float
        DINO: student softmax temperature.
    teacher_temp, teacher_temp_start, teacher_temp_warmup : float
        DINO: the teacher temperature rises linearly from ``teacher_temp_start`` to
        ``teacher_temp`` over the first ``teacher_temp_warmup`` fraction of the steps
        (a sharp teacher early on keeps the start from collapsing to uniform outputs).
    center_momentum : float
        DINO: momentum of the teacher centre (mean teacher logit over the global batch).
    """

    name: str = "byol"
    arch: str = "resnet18"
    small_stem: bool = True
    norm: str = "batch"
    proj_hidden: int = 2048
    proj_dim: int = 256
    pred_hidden: int = 2048
    temperature: float = 0.2
    tau_base: float = 0.99
    out_dim: int = 4096
    student_temp: float = 0.1
    teacher_temp: float = 0.04
    teacher_temp_start: float = 0.04
    teacher_temp_warmup: float = 0.0
    center_momentum: float = 0.9

    def validate(self) -> None:
        if self.arch not in ("resnet18", "resnet50"):
            raise PretrainConfigError("method.arch: use resnet18 or resnet50")
        for key in ("temperature", "student_temp", "teacher_temp", "teacher_temp_start"):
            if getattr(self, key) <= 0:
                raise PretrainConfigError(f"method.{key}: must be positive")
        if not 0.0 <= self.tau_base < 1.0:
            raise PretrainConfigError("method.tau_base: must lie in [0, 1)")
        if not 0.0 <= self.center_momentum < 1.0:
            raise PretrainConfigError("method.center_momentum: must lie in [0, 1)")
        if not 0.0 <= self.teacher_temp_warmup <= 1.0:
            raise PretrainConfigError("method.teacher_temp_warmup: a fraction of the run, "
                                      "in [0, 1]")
        if self.out_dim < 2:
            raise PretrainConfigError("method.out_dim: must be at least 2")


@dataclass
class PretrainOptimConfig:
    """Optimiser and learning-rate schedule.

    ``lr = base_lr * B / 256`` (``scaling: linear``) or ``base_lr * sqrt(B)`` (``sqrt``), with
    ``B`` the global batch (all ranks; :func:`ssl_backbones.schedules.lr_for_global_batch`);
    linear warm-up then cosine decay to ``final_lr_ratio``.
    """

    name: str = "lars"
    base_lr: float = 0.3
    scaling: str = "linear"
    weight_decay: float = 1.5e-6
    momentum: float = 0.9
    eta: float = 0.001
    warmup_epochs: float = 1.0
    final_lr_ratio: float = 0.0

    def validate(self) -> None:
        if self.name not in ("lars", "adamw"):
            raise PretrainConfigError("optim.name: use lars or adamw")
        if self.scaling not in ("linear", "sqrt", "none"):
            raise PretrainConfigError("optim.scaling: use linear, sqrt or none")
        if self.base_lr <= 0:
            raise PretrainConfigError("optim.base_lr: must be positive")


@dataclass
class PretrainRunConfig:
    """Length of the run and bookkeeping."""

    epochs: int = 100
    batch_size: int = 256
    seed: int = 0
    log_every: int = 10
    checkpoint_every: int = 1

    def validate(self) -> None:
        if self.epochs < 1:
            raise PretrainConfigError("train.epochs: must be at least 1")
        if self.batch_size < 2:
            raise PretrainConfigError("train.batch_size: must be at least 2")


@dataclass
class PretrainConfig:
    """Everything a pretraining run needs besides the data paths."""

    data: PretrainDataConfig = field(default_factory=PretrainDataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    method: MethodConfig = field(default_factory=MethodConfig)
    optim: PretrainOptimConfig = field(default_factory=PretrainOptimConfig)
    train: PretrainRunConfig = field(default_factory=PretrainRunConfig)

    def validate(self) -> None:
        for f in dataclasses.fields(self):
            getattr(self, f.name).validate()


def from_dict(cls: type[T], data: Mapping[str, Any], where: str = "") -> T:
    """Build dataclass ``cls`` from a nested mapping; unknown keys are an error.

    ``where`` is the dotted key of ``cls`` in an enclosing configuration, put in front of the
    keys named by errors. No ``validate()`` runs here (:func:`load_pretrain_config` does that).
    """
    return dataclass_config.build(cls, data, error=PretrainConfigError, where=where)


def to_dict(cfg: Any) -> dict[str, Any]:
    """Nested plain-Python dict of a config (tuples become lists, for YAML and JSON)."""
    return dataclass_config.to_dict(cfg)


def load_pretrain_config(path: str | Path | None = None,
                         overrides: Sequence[str] = ()) -> PretrainConfig:
    """Defaults, then the YAML file (if any), then ``section.key=value`` overrides; validated.

    Raises
    ------
    PretrainConfigError
        Missing or malformed file, unknown key, wrong type, or a value out of range.
    """
    data = dataclass_config.read_yaml(path, error=PretrainConfigError) if path is not None else {}
    data = dataclass_config.apply_overrides(data, overrides, error=PretrainConfigError)
    where = str(path) if path is not None else "config"
    try:
        cfg = from_dict(PretrainConfig, data)
        # Section validate() messages already name their section, so the whole configuration
        # validates itself instead of going through validate_tree (which would prefix it again).
        cfg.validate()
    except PretrainConfigError as exc:
        if overrides:
            load_pretrain_config(path)  # a bad file is reported as such
            where = f"--set {' '.join(overrides)}"
        raise PretrainConfigError(f"{where}: {exc}") from None
    return cfg
