"""Turn a radio image (Jy/beam, NaN where blank) into network input channels in [0, 1].

Two kinds of preprocessing exist (:attr:`PreprocessConfig.kind`):

``snr`` (the default, and what the shipped models use)
    The image in units of the local noise, ``(image - background) / rms``, with background and
    rms maps computed once per image (:mod:`caesar_mrcnn.measure.background`, the same maps
    the measurements use), through the fixed stretches of :mod:`ssl_backbones.radio_input`.
    Nothing depends on the statistics of the pixels in front of the network, so a tile of pure
    noise looks like noise. The image is also brought to the beam sampling the network was
    trained for (:attr:`PreprocessConfig.beam_pix`, see :mod:`caesar_mrcnn.data.resample`).
``steps``
    A configured chain of per-image steps, described below. Steps such as zscale, min-max or
    histogram equalisation stretch whatever they are given to full contrast, noise included;
    they are kept for experiments and for detectors trained with them.

Each step is a small vectorised function ``step(data, **params) -> data`` on a 2D float array
that keeps NaN where the input is NaN and computes its statistics over valid (finite) pixels
only. A :class:`Preprocessor` chains steps in the order a :class:`PreprocessConfig` lists them
(usually from ``configs/preprocess/*.yaml``)::

    steps:
      - name: subtract_background
      - name: sigma_clip
        low: 5.0
        high: 30.0
      - name: zscale
        contrast: 0.25
      - name: minmax

The special step ``channels`` splits the image into several channels, each made by its own list
of steps, e.g. the three-channel preprocessing of the original caesar-mrcnn
(``configs/preprocess/caesar3ch.yaml``)::

      - name: channels
        channels:
          - [{name: zscale, contrast: 0.25}, {name: minmax}]
          - [{name: zscale, contrast: 0.05}, {name: minmax}]
          - [{name: histeq}]

Steps after ``channels`` apply to every channel. Blank pixels become 0 only at the very end,
after normalisation, and :meth:`Preprocessor.apply` returns the valid-pixel mask with the
channels so callers can tell a blank pixel from a faint one.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from caesar_mrcnn.errors import ConfigError
from ssl_backbones import radio_input

KINDS = ("snr", "steps")

# --- steps ----------------------------------------------------------------------------------


def _clipped_stats(values: np.ndarray, sigma: float, maxiters: int) -> tuple[float, float]:
    """Sigma-clipped median and standard deviation of finite ``values``."""
    from astropy.stats import sigma_clipped_stats

    _, median, std = sigma_clipped_stats(values, sigma=sigma, maxiters=maxiters)
    return float(median), float(std)


def _valid_values(data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    valid = np.isfinite(data)
    return valid, data[valid]


def subtract_background(data: np.ndarray, sigma: float = 3.0, maxiters: int = 5) -> np.ndarray:
    """Subtract the sigma-clipped median of the valid pixels (a constant background level).

    Parameters
    ----------
    data : numpy.ndarray, shape ``(H, W)``
        Image (any unit), NaN where blank.
    sigma : float
        Clipping threshold (standard deviations) for the median estimate.
    maxiters : int
        Maximum clipping iterations.
    """
    valid, values = _valid_values(data)
    if values.size == 0:
        return _blank_invalid(data.astype(np.float32), valid)
    median, _ = _clipped_stats(values, sigma, maxiters)
    return _blank_invalid((data - np.float32(median)).astype(np.float32), valid)


def sigma_clip(data: np.ndarray, low: float = 5.0, high: float = 30.0, sigma: float = 3.0,
               maxiters: int = 5) -> np.ndarray:
    """Clip values to ``[median - low * std, median + high * std]``.

    ``median`` and ``std`` are sigma-clipped statistics of the valid pixels (``sigma``,
    ``maxiters``), i.e. the noise level of a radio image; values beyond the bounds are set to
    the bounds. The asymmetric defaults cut deep negative artefacts and saturate only the very
    brightest cores.
    """
    valid, values = _valid_values(data)
    if values.size == 0:
        return _blank_invalid(data.astype(np.float32), valid)
    median, std = _clipped_stats(values, sigma, maxiters)
    out = np.clip(data, median - low * std, median + high * std).astype(np.float32)
    return _blank_invalid(out, valid)


def _blank_invalid(out: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """``out`` with NaN wherever the step's input was NaN or infinite."""
    out[~valid] = np.nan
    return out


def _rescale(data: np.ndarray, vmin: float, vmax: float) -> np.ndarray:
    """``(data - vmin) / (vmax - vmin)`` clipped to [0, 1]; 0 where the range is empty."""
    valid = np.isfinite(data)
    if not np.isfinite(vmax - vmin) or vmax <= vmin:
        return _blank_invalid(np.zeros(data.shape, dtype=np.float32), valid)
    out = (data.astype(np.float64) - vmin) / (vmax - vmin)
    return _blank_invalid(np.clip(out, 0.0, 1.0).astype(np.float32), valid)


def zscale(data: np.ndarray, contrast: float = 0.25, n_samples: int = 1000,
           krej: float = 2.5, max_iterations: int = 5) -> np.ndarray:
    """IRAF/DS9 zscale stretch to [0, 1].

    The limits are those of :class:`astropy.visualization.ZScaleInterval` computed over the
    valid pixels (row-major order); values outside them saturate at 0 or 1. A smaller
    ``contrast`` gives wider limits (fewer saturated sources).
    """
    from astropy.visualization import ZScaleInterval

    valid, values = _valid_values(data)
    if values.size == 0:
        return _blank_invalid(data.astype(np.float32), valid)
    interval = ZScaleInterval(contrast=contrast, n_samples=n_samples, krej=krej,
                              max_iterations=max_iterations)
    vmin, vmax = interval.get_limits(values)
    return _rescale(data, float(vmin), float(vmax))


def minmax(data: np.ndarray) -> np.ndarray:
    """Normalise to [0, 1] with the minimum and maximum of the valid pixels."""
    valid, values = _valid_values(data)
    if values.size == 0:
        return _blank_invalid(data.astype(np.float32), valid)
    return _rescale(data, float(values.min()), float(values.max()))


def histeq(data: np.ndarray, nbins: int = 256) -> np.ndarray:
    """Histogram equalisation to [0, 1] (:func:`skimage.exposure.equalize_hist`).

    The cumulative histogram is built from the valid pixels only, so blank regions do not
    skew it.
    """
    from skimage.exposure import equalize_hist

    valid, values = _valid_values(data)
    out = np.full(data.shape, np.nan, dtype=np.float32)
    if values.size == 0:
        return out
    if values.min() == values.max():
        out[valid] = 0.0
        return out
    filled = np.where(valid, data, values.min())
    out[valid] = equalize_hist(filled, nbins=nbins, mask=valid)[valid]
    return out


STEPS: dict[str, Callable[..., np.ndarray]] = {
    "subtract_background": subtract_background,
    "sigma_clip": sigma_clip,
    "zscale": zscale,
    "minmax": minmax,
    "histeq": histeq,
}
"""Registered 2D steps by configuration name (plus the special ``channels`` step)."""


# --- configuration ---------------------------------------------------------------------------


def _default_steps() -> list[dict[str, Any]]:
    return [{"name": "subtract_background"}, {"name": "sigma_clip"}, {"name": "zscale"},
            {"name": "minmax"}]


@dataclass
class PreprocessConfig:
    """Preprocessing steps, applied in the order listed.

    Attributes
    ----------
    steps : list of dict
        Each ``{"name": <step>, <param>: <value>, ...}`` with ``<step>`` one of :data:`STEPS`
        or ``channels`` (``{"name": "channels", "channels": [[step, ...], ...]}``).
    """

    kind: str = "snr"
    """``snr``: fixed stretches of the SNR map (:mod:`ssl_backbones.radio_input`); ``steps``:
    the chain in :attr:`steps`."""
    bkg_box: int = 64
    """Cell side (native pixels) of the background and rms maps of ``snr``."""
    beam_pix: float = radio_input.REFERENCE_BEAM_PIX
    """Beam sampling (pixels per FWHM) images are resampled to before the network; 0: never
    resample."""
    steps: list[dict[str, Any]] = field(default_factory=_default_steps)

    def validate(self) -> None:
        """Raise ConfigError naming the first bad step or parameter."""
        if self.kind not in KINDS:
            raise ConfigError(f"kind: unknown preprocessing {self.kind!r} (known: "
                              f"{', '.join(KINDS)})")
        if self.bkg_box < 8:
            raise ConfigError(f"bkg_box: {self.bkg_box} is too small; use at least 8 pixels")
        if self.beam_pix < 0 or (0 < self.beam_pix < 1.5):
            raise ConfigError(f"beam_pix: {self.beam_pix} must be 0 (no resampling) or at "
                              "least 1.5 pixels per beam FWHM")
        _build(self.steps)

    @property
    def input_name(self) -> str:
        """Name of the network input this preprocessing makes (stored in model metadata)."""
        return radio_input.INPUT_NAME if self.kind == "snr" else "steps"


def stored_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """A preprocessing stored in a model file, read by this version: files written before
    noise-aware input stored only their chain of steps (``kind`` absent means ``steps``)."""
    return spec if "kind" in spec else {**spec, "kind": "steps"}


# A compiled pipeline: each op is ("step", function, params) or ("channels", [pipelines]).
_Op = tuple


def _compile(steps: Any, where: str, allow_channels: bool) -> list[_Op]:
    if not isinstance(steps, Sequence) or isinstance(steps, str):
        raise ConfigError(f"{where}: expected a list of steps, got {steps!r}")
    ops: list[_Op] = []
    for i, step in enumerate(steps):
        here = f"{where}[{i}]"
        if not isinstance(step, dict) or "name" not in step:
            raise ConfigError(f"{here}: expected a mapping with a 'name', got {step!r}")
        name, params = step["name"], {k: v for k, v in step.items() if k != "name"}
        if name == "channels":
            if not allow_channels:
                raise ConfigError(f"{here}: 'channels' cannot be nested inside 'channels'")
            chans = params.pop("channels", None)
            if params:
                raise ConfigError(f"{here}.{next(iter(params))}: unknown parameter of channels "
                                  "(known: channels)")
            if not isinstance(chans, list) or not chans:
                raise ConfigError(f"{here}.channels: expected a non-empty list of step lists")
            ops.append(("channels", [_compile(c, f"{here}.channels[{j}]", False)
                                     for j, c in enumerate(chans)]))
            continue
        fn = STEPS.get(name)
        if fn is None:
            known = ", ".join([*STEPS, "channels"])
            raise ConfigError(f"{here}.name: unknown step {name!r} (known: {known})")
        accepted = list(inspect.signature(fn).parameters)[1:]
        for key, value in params.items():
            if key not in accepted:
                raise ConfigError(f"{here}.{key}: unknown parameter of {name} "
                                  f"(known: {', '.join(accepted) or 'none'})")
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(f"{here}.{key}: expected a number, got {value!r}")
        ops.append(("step", fn, params))
    return ops


def _run(ops: list[_Op], channels: list[np.ndarray]) -> list[np.ndarray]:
    for op in ops:
        if op[0] == "channels":
            (base,) = channels  # _build allows a single split, so there is one image here
            channels = [_run(sub, [base])[0] for sub in op[1]]
        else:
            _, fn, params = op
            channels = [fn(ch, **params) for ch in channels]
    return channels


def _build(steps: Any) -> tuple[list[_Op], int]:
    """Compiled pipeline and its number of output channels."""
    ops = _compile(steps, "steps", allow_channels=True)
    splits = [len(op[1]) for op in ops if op[0] == "channels"]
    if len(splits) > 1:
        raise ConfigError("steps: only one 'channels' step is allowed")
    return ops, (splits[0] if splits else 1)


# --- the preprocessor ------------------------------------------------------------------------


class Preprocessor:
    """Apply a configured chain of steps to a 2D radio image.

    Parameters
    ----------
    config : PreprocessConfig, optional
        Steps; default one channel: background subtraction, sigma clipping, zscale, min-max.
    """

    def __init__(self, config: PreprocessConfig | None = None) -> None:
        self.config = config if config is not None else PreprocessConfig()
        self.config.validate()
        self._ops, self.num_channels = _build(self.config.steps)
        if self.config.kind == "snr":
            self.num_channels = radio_input.CHANNELS

    @property
    def is_snr(self) -> bool:
        return self.config.kind == "snr"

    def to_snr(self, data: np.ndarray, noise: tuple[np.ndarray, np.ndarray] | None = None
               ) -> np.ndarray:
        """The image in units of the local noise, NaN where blank.

        Parameters
        ----------
        data : numpy.ndarray, shape ``(H, W)``
            Image (Jy/beam), NaN where blank.
        noise : tuple of numpy.ndarray, optional
            Background and rms maps of the same shape (Jy/beam), e.g. windows of the whole
            image's maps; default: computed from ``data`` with cells of ``bkg_box`` pixels.
        """
        data = np.asarray(data, np.float32)
        if noise is None:
            from caesar_mrcnn.measure.background import background_grid

            grid = background_grid(data, data.shape, box=self.config.bkg_box)
            noise = grid.window(0, data.shape[0], 0, data.shape[1])
        bkg, rms = noise
        with np.errstate(invalid="ignore", divide="ignore"):
            snr = (data - bkg) / rms
        snr[~np.isfinite(rms) | (rms <= 0)] = np.nan
        return snr.astype(np.float32)

    def stretch(self, snr: np.ndarray) -> np.ndarray:
        """The fixed channels ``(H, W, 3)`` of an SNR map (0 at blank pixels)."""
        return np.asarray(radio_input.snr_channels(snr), np.float32)

    @classmethod
    def from_yaml(cls, path: str | Path | None, overrides: Sequence[str] = ()) -> Preprocessor:
        """Build from a YAML file such as ``configs/preprocess/caesar3ch.yaml``."""
        from caesar_mrcnn.config import load_config

        return cls(load_config(PreprocessConfig, path, overrides))

    def apply(self, data: np.ndarray, noise: tuple[np.ndarray, np.ndarray] | None = None
              ) -> tuple[np.ndarray, np.ndarray]:
        """Preprocess at the native sampling and also return the valid-pixel mask.

        Parameters
        ----------
        data : numpy.ndarray, shape ``(H, W)``
            Image, NaN (or inf) where blank.
        noise : tuple of numpy.ndarray, optional
            Background and rms maps for ``snr`` (see :meth:`to_snr`).

        Returns
        -------
        channels : numpy.ndarray of float32, shape ``(H, W, num_channels)``
            Values in [0, 1] for the standard steps; 0 at blank pixels.
        valid : numpy.ndarray of bool, shape ``(H, W)``
            True where the input pixel was finite.
        """
        data = np.asarray(data)
        if data.ndim != 2:
            raise ValueError(f"expected a 2D image, got shape {data.shape}")
        valid = np.isfinite(data)
        image = np.where(valid, data, np.nan).astype(np.float32)
        if self.is_snr:
            return self.stretch(self.to_snr(image, noise)), valid
        out = np.stack(_run(self._ops, [image]), axis=-1)
        out[~valid] = 0.0
        # a step may leave NaN at valid pixels only for degenerate input (e.g. no spread)
        np.nan_to_num(out, copy=False, nan=0.0, posinf=1.0, neginf=0.0)
        return out, valid

    def __call__(self, data: np.ndarray,
                 noise: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
        """Preprocessed channels ``(H, W, num_channels)`` float32; see :meth:`apply`."""
        return self.apply(data, noise)[0]
