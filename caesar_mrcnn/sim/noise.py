"""Image noise: white Gaussian noise convolved with the restoring beam, and a smooth background.

In a restored radio image the thermal noise is correlated on the scale of the beam. It is
made here by filtering white noise with the beam's transfer function (FFT), then scaling it so
that its expected rms equals the target exactly: for unit white noise the variance after
filtering is the mean of ``|H|²`` over the full discrete spectrum (Parseval), which is computed
on the same grid as the filter.
"""

from __future__ import annotations

import numpy as np
import scipy.fft

from caesar_mrcnn.sim.beam import rfft_weights, transfer_function


def correlated_noise(shape: tuple[int, int], beam_cov: np.ndarray, rms: float,
                     rng: np.random.Generator, *, workers: int = -1,
                     tail_df: float = 0.0) -> np.ndarray:
    """Gaussian noise correlated by the beam, with expected rms ``rms``.

    Parameters
    ----------
    shape : tuple of int
        ``(ny, nx)`` pixels.
    beam_cov : numpy.ndarray, shape (2, 2)
        Beam covariance, pixel² (see :func:`caesar_mrcnn.sim.beam.covariance`).
    rms : float
        Target rms, in the image unit (Jy/beam).
    rng : numpy.random.Generator
        Source of randomness.
    workers : int
        Threads of the FFT (-1: all cores).
    tail_df : float
        Degrees of freedom (> 2) of Student-t white noise, scaled to unit variance, for tails
        heavier than a Gaussian's; 0: Gaussian.

    Returns
    -------
    numpy.ndarray of float32, shape ``shape``
    """
    ny, nx = shape
    if tail_df:
        white = (rng.standard_t(tail_df, (ny, nx)) * np.sqrt((tail_df - 2.0) / tail_df)
                 ).astype(np.float32)
    else:
        white = rng.standard_normal((ny, nx), dtype=np.float32)
    spec = scipy.fft.rfft2(white, workers=workers)
    h = transfer_function(shape, beam_cov)
    # Expected variance of the filtered unit noise = mean of |H|^2 over the full spectrum.
    power = float((h.astype(np.float64) ** 2 * rfft_weights(nx)[None, :]).sum()) / (ny * nx)
    h *= np.float32(rms / np.sqrt(power))
    spec *= h
    return scipy.fft.irfft2(spec, s=shape, workers=workers).astype(np.float32, copy=False)


def smooth_background(shape: tuple[int, int], rms: float, scale_px: float,
                      rng: np.random.Generator, n_modes: int = 6) -> np.ndarray:
    """A smooth random background of expected rms ``rms`` varying on scales >= ``scale_px``.

    A sum of ``n_modes`` plane waves of random direction and phase with wavelengths between
    ``scale_px`` and ``4 * scale_px``. Since ``cos(a + b) = cos a cos b - sin a sin b``, the
    whole sum is one matrix product of a (ny, 2 n_modes) by a (2 n_modes, nx) matrix.

    Returns
    -------
    numpy.ndarray of float32, shape ``shape``
    """
    ny, nx = shape
    if rms <= 0 or n_modes < 1:
        return np.zeros(shape, dtype=np.float32)
    y = np.arange(ny, dtype=np.float64)[:, None]
    x = np.arange(nx, dtype=np.float64)[None, :]
    wavelength = scale_px * rng.uniform(1.0, 4.0, n_modes)
    ang = rng.uniform(0.0, 2.0 * np.pi, n_modes)
    phase = rng.uniform(0.0, 2.0 * np.pi, n_modes)
    kx = 2 * np.pi / wavelength * np.cos(ang)
    ky = 2 * np.pi / wavelength * np.sin(ang)
    amp = rms * np.sqrt(2.0 / n_modes)  # each cosine has variance amp^2 / 2
    ay = ky[None, :] * y  # (ny, M)
    ax = kx[:, None] * x + phase[:, None]  # (M, nx)
    rows = np.concatenate([np.cos(ay), -np.sin(ay)], axis=1).astype(np.float32)
    cols = np.concatenate([np.cos(ax), np.sin(ax)], axis=0).astype(np.float32) * np.float32(amp)
    return rows @ cols
