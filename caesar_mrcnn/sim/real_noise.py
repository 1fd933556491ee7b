"""Noise cut from real radio images, for simulated fields that look like the sky.

Simulated thermal noise is Gaussian and stationary. Real images add what the simulator does
not make: deconvolution residuals, stripes, sidelobes of sources outside the field, non-Gaussian
tails. :class:`RealNoiseBank` loads real images once, expresses them in units of their own
local rms (background and rms maps of :mod:`caesar_mrcnn.measure.background`), masks their
sources (pixels above ``mask_sigma`` grown by one beam) and fills the holes with simulated
beam-correlated noise, so the result is real noise without real sources. A simulated field then
scales a random window of it to its own rms and adds its sources on top; since the noise's
correlation length is the real beam, the field takes that image's beam in pixels too.

Evaluation images (those with a reference catalogue and the MiraBest cutouts) are refused, by
the same list that keeps them out of pretraining (:data:`ssl_backbones.fields.EXCLUDED`): their
noise must not reach a model that is then scored on them.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from caesar_mrcnn.errors import ConfigError
from caesar_mrcnn.sim import beam as gb
from caesar_mrcnn.sim.noise import correlated_noise
from ssl_backbones.fields import is_excluded


def expand_path(path: str | Path) -> Path:
    """A configured path with ``~`` and environment variables (e.g. ``$CAESAR_MRCNN_REAL``,
    the folder of real images) expanded.

    Raises
    ------
    ConfigError
        A variable that is not set.
    """
    text = os.path.expandvars(os.path.expanduser(str(path)))
    if "$" in text:
        raise ConfigError(f"real_backgrounds: {path}: environment variable not set; export it "
                          "(e.g. CAESAR_MRCNN_REAL=folder of the real images)")
    return Path(text)


@dataclass(frozen=True)
class NoiseImage:
    """Source-free noise of one real image, in units of its local rms.

    Attributes
    ----------
    noise : numpy.ndarray of float32
        Unit-rms noise, NaN where the image is blank.
    beam_px : tuple of float
        Beam major and minor FWHM (pixels) and position angle (deg).
    name : str
        The image's file name.
    """

    noise: np.ndarray
    beam_px: tuple[float, float, float]
    name: str


def load_noise_image(path: str | Path, mask_sigma: float = 4.0, box: int = 48,
                     rng: np.random.Generator | None = None) -> NoiseImage:
    """Read a real image and turn it into source-free, unit-rms noise.

    Raises
    ------
    ConfigError
        An evaluation image, or an image without beam or pixel scale.
    """
    from caesar_mrcnn.io.fits import read_image
    from caesar_mrcnn.measure.background import background_grid

    if is_excluded(path):
        raise ConfigError(f"real_backgrounds: {path} is an evaluation image; its noise must not "
                          "be trained on — remove it from the list")
    img = read_image(path)
    if img.beam is None or img.pixel_scale_deg is None:
        raise ConfigError(f"real_backgrounds: {path} has no beam or pixel scale in its header; "
                          "choose an image with BMAJ/BMIN")
    dx, dy = img.pixel_scale_deg
    pix = math.sqrt(dx * dy)
    bmaj, bmin = img.beam.bmaj_deg / pix, img.beam.bmin_deg / pix
    grid = background_grid(img.data, img.shape, box=box)
    bkg, rms = grid.window(0, img.shape[0], 0, img.shape[1])
    snr = (img.data - bkg) / rms
    sources = np.abs(np.nan_to_num(snr)) > mask_sigma
    sources = ndimage.binary_dilation(sources, iterations=max(1, int(round(bmaj))))
    cov = gb.covariance(bmaj, bmin, img.beam.bpa_deg)
    rng = rng or np.random.default_rng(0)
    fill = correlated_noise(img.shape, cov, 1.0, rng, workers=1)
    noise = np.where(sources, fill, snr).astype(np.float32)
    return NoiseImage(noise, (float(bmaj), float(bmin), float(img.beam.bpa_deg)), Path(path).name)


class RealNoiseBank:
    """Real noise images, loaded once, and random windows of them.

    Parameters
    ----------
    paths : sequence of path-like
        Real FITS images (see :func:`load_noise_image`).
    """

    def __init__(self, paths: Sequence[str | Path]) -> None:
        if not paths:
            raise ConfigError("real_backgrounds: the list is empty")
        self.images = [load_noise_image(expand_path(p), rng=np.random.default_rng(i))
                       for i, p in enumerate(paths)]

    def draw(self, rng: np.random.Generator, shape: tuple[int, int]
             ) -> tuple[np.ndarray, tuple[float, float, float], str]:
        """A random window of ``shape`` from a random image (mirrored where the image is
        smaller), randomly flipped and transposed; NaN replaced by 0.

        Returns
        -------
        noise : numpy.ndarray of float32
            Unit-rms noise.
        beam_px : tuple of float
            That image's beam (major, minor FWHM in pixels, PA in deg).
        name : str
            The image it came from.
        """
        img = self.images[int(rng.integers(len(self.images)))]
        data = img.noise
        ny, nx = shape
        reps = (max(1, math.ceil(ny / data.shape[0]) + 1),
                max(1, math.ceil(nx / data.shape[1]) + 1))
        if reps != (1, 1):
            data = np.pad(data, ((0, data.shape[0] * (reps[0] - 1)),
                                 (0, data.shape[1] * (reps[1] - 1))), mode="symmetric")
        y0 = int(rng.integers(0, data.shape[0] - ny + 1))
        x0 = int(rng.integers(0, data.shape[1] - nx + 1))
        out = np.nan_to_num(data[y0:y0 + ny, x0:x0 + nx], nan=0.0)
        bmaj, bmin, bpa = img.beam_px
        flips = 0
        if rng.random() < 0.5:
            out, flips = out[::-1], flips + 1
        if rng.random() < 0.5:
            out, flips = out[:, ::-1], flips + 1
        if flips == 1:  # a mirror image mirrors the beam's position angle
            bpa = (180.0 - bpa) % 180.0
        return np.ascontiguousarray(out, dtype=np.float32), (bmaj, bmin, bpa), img.name
