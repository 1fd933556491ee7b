"""Joint least-squares fit of several elliptical Gaussians to the pixels of one island.

Blended compact components share their pixels: fitting them one at a time gives each the other's
wings. They are fitted together, each either with a free shape (amplitude, centre, two axes,
angle: 6 parameters) or with its shape held at the beam's (amplitude and centre: 3 parameters),
the model of a point source, whose amplitude is then its flux density.

Conventions as in :mod:`caesar_mrcnn.measure.gaussfit`: pixel coordinates ``(x, y)``,
covariances in pixels² ordered ``(x, y)``, amplitudes in the image unit (Jy/beam).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import optimize

from caesar_mrcnn.measure.gaussfit import rotated_gaussian


@dataclass(frozen=True)
class Component:
    """One fitted Gaussian.

    Attributes
    ----------
    peak : float
        Amplitude (image unit, Jy/beam).
    x, y : float
        Centre (pixels of the image).
    cov : numpy.ndarray, shape ``(2, 2)``
        Covariance (pixels², ``(x, y)``).
    free : bool
        The shape was fitted (False: held at the beam's).
    """

    peak: float
    x: float
    y: float
    cov: np.ndarray
    free: bool
    pcov: np.ndarray | None = None
    """Covariance of the fitted parameters ``(peak, x, y[, sigma_a, sigma_b, theta])`` in
    the noise of the image (:func:`parameter_covariance`), or None when not computed."""

    @property
    def volume(self) -> float:
        """Integral over the plane (image unit times pixels)."""
        return 2.0 * math.pi * self.peak * math.sqrt(max(np.linalg.det(self.cov), 0.0))


def cov_to_params(cov: np.ndarray) -> tuple[float, float, float]:
    """Major and minor sigma (pixels) and the major axis angle (radians, from +x towards +y)
    of a Gaussian's 2x2 pixel covariance."""
    evals, evecs = np.linalg.eigh(np.asarray(cov, float))
    sa, sb = math.sqrt(max(evals[1], 1e-12)), math.sqrt(max(evals[0], 1e-12))
    theta = math.atan2(evecs[1, 1], evecs[0, 1])
    return sa, sb, theta


def _params_to_cov(sa: float, sb: float, theta: float) -> np.ndarray:
    c, s = math.cos(theta), math.sin(theta)
    rot = np.array([[c, -s], [s, c]])
    return rot @ np.diag([sa * sa, sb * sb]) @ rot.T


def gaussian_model(amp, x0, y0, inv, xs, ys):
    """An elliptical Gaussian of peak ``amp`` at ``(x0, y0)`` with inverse covariance ``inv``
    (pixels), evaluated at pixel coordinates ``xs, ys``."""
    dx, dy = xs - x0, ys - y0
    q = inv[0, 0] * dx * dx + 2.0 * inv[0, 1] * dx * dy + inv[1, 1] * dy * dy
    return amp * np.exp(-0.5 * q)


def parameter_covariance(jac: np.ndarray, xs: np.ndarray, ys: np.ndarray, rms: float,
                         beam_cov: np.ndarray) -> np.ndarray:
    """Covariance of least-squares parameters in noise correlated like the beam.

    The fit minimises the plain sum of squared residuals; in an image the noise of two pixels
    ``d`` apart correlates as the beam, ``rms^2 exp(-d^T B^-1 d / 2)``. Linear propagation
    (the "sandwich") gives ``(J^T J)^-1 J^T N J (J^T J)^-1`` for the Jacobian ``J`` of the model
    at the solution and the noise covariance ``N``; ``N J`` is a convolution of each column of
    ``J``, laid on the pixel grid, with the beam. This is the quantity Condon (1997) writes
    analytically for a Gaussian fitted over the whole plane; here it holds for the pixels and
    components actually fitted.

    Parameters
    ----------
    jac : numpy.ndarray, shape ``(npix, nparam)``
        Derivatives of the model at the fitted pixels.
    xs, ys : numpy.ndarray
        Integer pixel coordinates of those pixels.
    rms : float
        Noise rms (image unit).
    beam_cov : numpy.ndarray, shape ``(2, 2)``
        Beam covariance (pixels²): the shape of the noise autocorrelation.

    Returns
    -------
    numpy.ndarray, shape ``(nparam, nparam)``
    """
    from scipy.signal import fftconvolve

    ix = np.rint(xs - xs.min()).astype(int)
    iy = np.rint(ys - ys.min()).astype(int)
    half = int(math.ceil(4.0 * math.sqrt(np.linalg.eigvalsh(beam_cov)[1])))
    ky, kx = np.mgrid[-half:half + 1, -half:half + 1]
    inv = np.linalg.inv(beam_cov)
    kernel = np.exp(-0.5 * (inv[0, 0] * kx * kx + 2 * inv[0, 1] * kx * ky + inv[1, 1] * ky * ky))
    grid = np.zeros((jac.shape[1], iy.max() + 1, ix.max() + 1))
    grid[:, iy, ix] = jac.T
    smooth = fftconvolve(grid, kernel[None], mode="same", axes=(1, 2))
    nj = smooth[:, iy, ix].T
    bread = np.linalg.pinv(jac.T @ jac)
    return rms * rms * bread @ (jac.T @ nj) @ bread


def fit_components(values: np.ndarray, xs: np.ndarray, ys: np.ndarray,
                   starts: Sequence[tuple[float, float, float, np.ndarray]],
                   free: Sequence[bool], beam_cov: np.ndarray,
                   min_sigma: float, max_sigma: float, rms: float | None = None
                   ) -> list[Component] | None:
    """Fit Gaussians jointly to background-subtracted pixels.

    Parameters
    ----------
    values : numpy.ndarray
        Background-subtracted pixel values (finite), image unit.
    xs, ys : numpy.ndarray
        Their pixel coordinates.
    starts : sequence of (peak, x, y, cov)
        Starting amplitude, centre and covariance of each component.
    free : sequence of bool
        Per component: fit its shape (True) or hold it at ``beam_cov`` (False).
    beam_cov : numpy.ndarray, shape ``(2, 2)``
        Beam covariance (pixels²).
    min_sigma, max_sigma : float
        Bounds of the fitted axis sigmas (pixels).
    rms : float, optional
        Noise rms: with it each component carries the covariance of its parameters
        (:func:`parameter_covariance`).

    Returns
    -------
    list of Component or None
        None when there are fewer pixels than parameters, the optimiser fails, an amplitude is
        not positive, or a centre ends on the edge of the fitted pixels (a component the island
        does not hold).
    """
    values = np.asarray(values, float)
    xs, ys = np.asarray(xs, float), np.asarray(ys, float)
    nfree = sum(6 if f else 3 for f in free)
    if values.size < nfree + 1 or not np.isfinite(values).all() or values.max() <= 0:
        return None
    xlo, xhi, ylo, yhi = xs.min() - 0.5, xs.max() + 0.5, ys.min() - 0.5, ys.max() + 0.5
    beam_inv = np.linalg.inv(beam_cov)
    p0, lo, hi = [], [], []
    for (amp, x0, y0, cov), f in zip(starts, free):
        x0 = float(np.clip(x0, xlo + 1e-3, xhi - 1e-3))
        y0 = float(np.clip(y0, ylo + 1e-3, yhi - 1e-3))
        amp = max(float(amp), 1e-12 * float(values.max()))
        p0 += [amp, x0, y0]
        lo += [0.0, xlo, ylo]
        hi += [np.inf, xhi, yhi]
        if f:
            sa, sb, th = cov_to_params(cov)
            p0 += [float(np.clip(sa, min_sigma * 1.01, max_sigma * 0.99)),
                   float(np.clip(sb, min_sigma * 1.01, max_sigma * 0.99)), th]
            lo += [min_sigma, min_sigma, -np.inf]
            hi += [max_sigma, max_sigma, np.inf]

    def jacobian(p):
        cols, k = [], 0
        for f in free:
            if f:
                amp, x0, y0, sa, sb, th = p[k:k + 6]
                c, s_ = math.cos(th), math.sin(th)
                dx, dy = xs - x0, ys - y0
                u = (c * dx + s_ * dy) / sa
                v = (-s_ * dx + c * dy) / sb
                g = np.exp(-0.5 * (u * u + v * v))
                ga = amp * g
                cols += [g, ga * (u * c / sa - v * s_ / sb), ga * (u * s_ / sa + v * c / sb),
                         ga * u * u / sa, ga * v * v / sb, ga * u * v * (sa / sb - sb / sa)]
                k += 6
            else:
                amp, x0, y0 = p[k:k + 3]
                dx, dy = xs - x0, ys - y0
                mx = beam_inv[0, 0] * dx + beam_inv[0, 1] * dy
                my = beam_inv[0, 1] * dx + beam_inv[1, 1] * dy
                g = np.exp(-0.5 * (mx * dx + my * dy))
                cols += [g, amp * g * mx, amp * g * my]
                k += 3
        return np.stack(cols, axis=1)

    def model(p):
        out, k = np.zeros_like(values), 0
        for f in free:
            if f:
                out += rotated_gaussian(p[k:k + 6], xs, ys)
                k += 6
            else:
                out += gaussian_model(p[k], p[k + 1], p[k + 2], beam_inv, xs, ys)
                k += 3
        return out

    try:
        res = optimize.least_squares(lambda p: model(p) - values, np.array(p0), jac=jacobian,
                                     bounds=(lo, hi), x_scale="jac", max_nfev=100 * len(p0))
    except (ValueError, np.linalg.LinAlgError):
        return None
    if not res.success:
        return None
    pcov = None
    if rms is not None and rms > 0:
        pcov = parameter_covariance(res.jac, xs, ys, rms, beam_cov)
    out, k = [], 0
    for f in free:
        amp, x, y = res.x[k:k + 3]
        size = 6 if f else 3
        block = None if pcov is None else pcov[k:k + size, k:k + size].copy()
        if block is not None and f and res.x[k + 3] < res.x[k + 4]:
            # report the axes' errors major first, as the covariance's eigenvalues are
            order = [0, 1, 2, 4, 3, 5]
            block = block[np.ix_(order, order)]
        on_edge = (min(x - xlo, xhi - x) < 1e-3) or (min(y - ylo, yhi - y) < 1e-3)
        if amp <= 0 or on_edge:
            return None
        if f:
            cov = _params_to_cov(*res.x[k + 3:k + 6])
            k += 6
        else:
            cov = np.array(beam_cov, float)
            k += 3
        out.append(Component(float(amp), float(x), float(y), cov, bool(f), block))
    return out
