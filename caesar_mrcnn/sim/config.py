"""Configuration of the radio-sky simulator (a dataclass tree loaded from ``configs/sim/*.yaml``).

Load it with :func:`caesar_mrcnn.config.load_config`::

    cfg = load_config(SimConfig, "configs/sim/train.yaml", ["field.nx=512", "noise.rms_ujy=20"])

Units are in the option names: ``_arcsec``, ``_deg``, ``_ujy`` (µJy/beam), ``_hz``, ``_beam``
(multiples of the restoring beam's major FWHM), ``snr`` (peak / noise rms).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from dataclasses import field as _field
from typing import Literal

from caesar_mrcnn.errors import ConfigError


def _check_range(name: str, lo: float, hi: float, minimum: float = 0.0) -> None:
    if not (minimum <= lo <= hi):
        raise ConfigError(f"{name}: need {minimum} <= min <= max, got [{lo}, {hi}]")


@dataclass
class FieldConfig:
    """Image geometry and FITS header of one simulated field."""

    nx: int = 256
    ny: int = 256
    pixel_arcsec: float = 2.0
    ra_deg: float = 150.0
    dec_deg: float = -30.0
    radesys: Literal["ICRS", "FK5"] = "ICRS"
    equinox: float = 2000.0
    freq_hz: float = 887.5e6
    bandwidth_hz: float = 288.0e6
    four_axes: bool = False
    """Write degenerate FREQ and STOKES axes (NAXIS=4), as radio imagers do."""
    telescope: str = "SIMULATED"

    def validate(self) -> None:
        if self.nx < 16 or self.ny < 16:
            raise ConfigError(f"nx/ny: image must be at least 16x16 pixels, got "
                              f"{self.nx}x{self.ny}")
        if self.pixel_arcsec <= 0:
            raise ConfigError(f"pixel_arcsec: must be > 0, got {self.pixel_arcsec}")
        if not -90.0 <= self.dec_deg <= 90.0:
            raise ConfigError(f"dec_deg: must be within [-90, 90], got {self.dec_deg}")
        if self.freq_hz <= 0 or self.bandwidth_hz <= 0:
            raise ConfigError("freq_hz/bandwidth_hz: must be > 0")


@dataclass
class BeamConfig:
    """Restoring beam (elliptical Gaussian), PA east of north."""

    bmaj_arcsec: float = 12.0
    bmin_arcsec: float = 10.0
    bpa_deg: float = 30.0
    sampling_pix: list[float] = _field(default_factory=list)
    """``[lo, hi]``: each field draws its own beam, major FWHM log-uniform between ``lo`` and
    ``hi`` pixels, axis ratio up to ``max_axis_ratio``, random position angle (the fixed beam
    above is then ignored); empty: the fixed beam. Real surveys sample the beam with 2.5
    (FIRST, NVSS, VLASS) to 6 or more pixels."""
    max_axis_ratio: float = 1.3

    def validate(self) -> None:
        if not 0 < self.bmin_arcsec <= self.bmaj_arcsec:
            raise ConfigError("bmin_arcsec: need 0 < bmin_arcsec <= bmaj_arcsec, got "
                              f"{self.bmin_arcsec} and {self.bmaj_arcsec}")
        if self.sampling_pix:
            if len(self.sampling_pix) != 2:
                raise ConfigError(f"sampling_pix: need [lo, hi] pixels, got {self.sampling_pix}")
            _check_range("sampling_pix", self.sampling_pix[0], self.sampling_pix[1], 1.5)
        if self.max_axis_ratio < 1.0:
            raise ConfigError(f"max_axis_ratio: must be >= 1, got {self.max_axis_ratio}")


@dataclass
class NoiseConfig:
    """Thermal-like noise (white, convolved with the beam) and an optional smooth background."""

    rms_ujy: float = 30.0
    """Target rms of the noise image, µJy/beam."""
    background_ujy: float = 0.0
    """Rms of a smooth large-scale background added to the noise (0 = none), µJy/beam."""
    background_scale_arcsec: float = 600.0
    """Shortest wavelength of the smooth background, arcsec."""
    rms_range_ujy: list[float] = _field(default_factory=list)
    """``[lo, hi]``: each field draws its rms log-uniform in this range (µJy/beam) instead of
    ``rms_ujy``."""
    stripes_prob: float = 0.0
    """Probability that a field carries stripes (calibration ripples): plane waves with
    wavelengths of 2 to 8 beams."""
    stripes_rms: list[float] = _field(default_factory=lambda: [0.2, 0.8])
    """Range of the stripes' rms, in units of the noise rms."""
    tail_df: float = 0.0
    """Degrees of freedom of Student-t white noise before the beam (heavier tails than a
    Gaussian); 0: Gaussian."""
    real_backgrounds: list[str] = _field(default_factory=list)
    """Real radio images (FITS) whose source-free noise is cut into fields (sources above 4
    sigma masked and filled with simulated noise); a field that takes one takes that image's
    beam sampling too. Evaluation fields are refused."""
    real_prob: float = 0.0
    """Probability that a field takes its noise from ``real_backgrounds``."""

    def validate(self) -> None:
        if self.rms_ujy <= 0:
            raise ConfigError(f"rms_ujy: must be > 0, got {self.rms_ujy}")
        if self.rms_range_ujy:
            if len(self.rms_range_ujy) != 2:
                raise ConfigError(f"rms_range_ujy: need [lo, hi], got {self.rms_range_ujy}")
            _check_range("rms_range_ujy", self.rms_range_ujy[0], self.rms_range_ujy[1], 1e-6)
        for key in ("stripes_prob", "real_prob"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise ConfigError(f"{key}: must be within [0, 1], got {getattr(self, key)}")
        if len(self.stripes_rms) != 2:
            raise ConfigError(f"stripes_rms: need [lo, hi], got {self.stripes_rms}")
        _check_range("stripes_rms", self.stripes_rms[0], self.stripes_rms[1])
        if self.tail_df and self.tail_df <= 2.0:
            raise ConfigError(f"tail_df: must be 0 (Gaussian) or > 2, got {self.tail_df}")
        if self.real_prob > 0 and not self.real_backgrounds:
            raise ConfigError("real_prob: > 0 needs real_backgrounds (a list of FITS images)")
        if self.background_ujy < 0 or self.background_scale_arcsec <= 0:
            raise ConfigError("background_ujy must be >= 0 and background_scale_arcsec > 0")


@dataclass
class NanBorderConfig:
    """Blank (NaN) pixels outside an irregular rotated ellipse, like the edge of a mosaic."""

    enabled: bool = False
    fill: float = 0.9
    """Semi-axes of the valid ellipse as a fraction of the half image size."""
    irregularity: float = 0.06
    """Relative amplitude of the wobbles of the edge."""

    def validate(self) -> None:
        if not 0.1 <= self.fill <= 1.5:
            raise ConfigError(f"fill: must be within [0.1, 1.5], got {self.fill}")
        if not 0.0 <= self.irregularity <= 0.3:
            raise ConfigError(f"irregularity: must be within [0, 0.3], got {self.irregularity}")


@dataclass
class CompactConfig:
    """Point-like or slightly resolved Gaussian sources (class ``compact``)."""

    n: int = 20
    """Sources per field (exact, or the mean when ``poisson`` is true)."""
    poisson: bool = False
    snr_min: float = 4.0
    snr_max: float = 1000.0
    slope: float = 1.8
    """Power-law index alpha of dN/dS ∝ S^-alpha for the (point-source) peak flux."""
    resolved_fraction: float = 0.3
    """Fraction of sources with a non-zero intrinsic size."""
    max_size_beam: float = 0.8
    """Largest intrinsic FWHM of a resolved compact source, in beam major FWHM."""

    def validate(self) -> None:
        if self.n < 0:
            raise ConfigError(f"n: must be >= 0, got {self.n}")
        _check_range("snr_min/snr_max", self.snr_min, self.snr_max, minimum=1e-3)
        if not 1.0 < self.slope < 4.0:
            raise ConfigError(f"slope: must be within (1, 4), got {self.slope}")
        if not 0.0 <= self.resolved_fraction <= 1.0:
            raise ConfigError("resolved_fraction: must be within [0, 1]")
        if not 0.0 <= self.max_size_beam <= 2.0:
            raise ConfigError("max_size_beam: must be within [0, 2]")


@dataclass
class ExtendedConfig:
    """Resolved radio galaxies and diffuse sources (``extended`` and ``extended-multisland``)."""

    n: int = 2
    """Single-island extended sources per field."""
    n_multisland: int = 1
    """Extended sources made of two or more islands per field."""
    poisson: bool = False
    families: dict[str, float] = _field(
        default_factory=lambda: {"fr1": 1.0, "fr2": 1.0, "diffuse": 1.0})
    """Relative frequency of each morphological family (fr1, fr2, diffuse, wat, head_tail,
    double_double)."""
    snr_min: float = 10.0
    snr_max: float = 300.0
    slope: float = 1.8
    size_min_beam: float = 3.0
    """Smallest largest-angular-size, in beam major FWHM."""
    size_max_beam: float = 12.0
    max_tries: int = 12
    """Redraws of an object whose island count does not match its class; afterwards the class
    follows the measured island count."""

    def validate(self) -> None:
        if self.n < 0 or self.n_multisland < 0:
            raise ConfigError("n/n_multisland: must be >= 0")
        known = ("fr1", "fr2", "diffuse", "wat", "head_tail", "double_double")
        unknown = set(self.families) - set(known)
        if unknown:
            raise ConfigError(f"families: unknown family {sorted(unknown)[0]!r} "
                              f"(known: {', '.join(known)})")
        if any(w < 0 for w in self.families.values()) or sum(self.families.values()) <= 0:
            raise ConfigError("families: weights must be >= 0 with a positive sum")
        _check_range("snr_min/snr_max", self.snr_min, self.snr_max, minimum=1e-3)
        _check_range("size_min_beam/size_max_beam", self.size_min_beam, self.size_max_beam,
                     minimum=1.0)
        if not 1.0 < self.slope < 4.0:
            raise ConfigError(f"slope: must be within (1, 4), got {self.slope}")
        if self.max_tries < 1:
            raise ConfigError("max_tries: must be >= 1")


@dataclass
class SpuriousConfig:
    """Sidelobe artefacts (rings, radial spokes) around bright compact sources (``spurious``).

    Each artefact's host is one of the field's compact sources, redrawn bright.
    """

    n: int = 1
    host_snr_min: float = 400.0
    host_snr_max: float = 3000.0
    amplitude_min: float = 0.01
    """Smallest artefact amplitude as a fraction of the host peak."""
    amplitude_max: float = 0.05
    extent_min_beam: float = 5.0
    """Smallest outer radius of the pattern, in beam major FWHM."""
    extent_max_beam: float = 10.0
    patterns: dict[str, float] = _field(
        default_factory=lambda: {"rings": 1.0, "spokes": 1.0})

    def validate(self) -> None:
        if self.n < 0:
            raise ConfigError(f"n: must be >= 0, got {self.n}")
        _check_range("host_snr_min/host_snr_max", self.host_snr_min, self.host_snr_max, 1.0)
        _check_range("amplitude_min/amplitude_max", self.amplitude_min, self.amplitude_max)
        if self.amplitude_max > 0.5:
            raise ConfigError("amplitude_max: artefacts are a small fraction of the host, "
                              f"use <= 0.5, got {self.amplitude_max}")
        _check_range("extent_min_beam/extent_max_beam", self.extent_min_beam,
                     self.extent_max_beam, minimum=2.0)
        unknown = set(self.patterns) - {"rings", "spokes"}
        if unknown:
            raise ConfigError(f"patterns: unknown pattern {sorted(unknown)[0]!r} "
                              "(known: rings, spokes)")
        if any(w < 0 for w in self.patterns.values()) or sum(self.patterns.values()) <= 0:
            raise ConfigError("patterns: weights must be >= 0 with a positive sum")


@dataclass
class SimConfig:
    """Everything that defines a simulated dataset."""

    seed: int = 0
    n_images: int = 10
    mask_threshold_sigma: float = 3.0
    """An object's mask: pixels where its own noiseless model exceeds this many noise rms."""
    name_prefix: str = "sim"
    caesar_json: bool = True
    """Also write the caesar JSON list. It stores one full-size mask FITS per object (the
    original format), so turn it off for big mosaics with thousands of objects."""
    field: FieldConfig = _field(default_factory=FieldConfig)
    beam: BeamConfig = _field(default_factory=BeamConfig)
    noise: NoiseConfig = _field(default_factory=NoiseConfig)
    nan_border: NanBorderConfig = _field(default_factory=NanBorderConfig)
    compact: CompactConfig = _field(default_factory=CompactConfig)
    extended: ExtendedConfig = _field(default_factory=ExtendedConfig)
    spurious: SpuriousConfig = _field(default_factory=SpuriousConfig)

    def validate(self) -> None:
        if self.n_images < 1:
            raise ConfigError(f"n_images: must be >= 1, got {self.n_images}")
        if not 0.5 <= self.mask_threshold_sigma <= 100:
            raise ConfigError("mask_threshold_sigma: must be within [0.5, 100], got "
                              f"{self.mask_threshold_sigma}")
        if self.spurious.n > self.compact.n:
            raise ConfigError(f"spurious.n: each artefact needs a compact host; raise compact.n "
                              f"to >= {self.spurious.n} or lower spurious.n")
        if self.compact.snr_min < self.mask_threshold_sigma:
            raise ConfigError(f"compact.snr_min: {self.compact.snr_min} is below "
                              f"mask_threshold_sigma={self.mask_threshold_sigma}; such sources "
                              "would have empty masks")
        if not re.fullmatch(r"[A-Za-z0-9_.+-]+", self.name_prefix):
            raise ConfigError(f"name_prefix: {self.name_prefix!r} must be a file-name prefix of "
                              "letters, digits and _ . + -")


def resized(cfg: SimConfig, size: int) -> SimConfig:
    """The same sky on a ``size`` × ``size`` field: object counts scaled by area.

    Artefacts stay at most as many as compact sources (each needs a host).
    """
    scale = size * size / (cfg.field.nx * cfg.field.ny)
    n = lambda v: max(int(round(v * scale)), 0)  # noqa: E731
    compact_n = n(cfg.compact.n)
    out = replace(
        cfg, field=replace(cfg.field, nx=size, ny=size),
        compact=replace(cfg.compact, n=compact_n),
        extended=replace(cfg.extended, n=n(cfg.extended.n),
                         n_multisland=n(cfg.extended.n_multisland)),
        spurious=replace(cfg.spurious, n=min(n(cfg.spurious.n), compact_n)))
    out.validate()
    return out
