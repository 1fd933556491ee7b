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

    @property
    def volume(self) -> float:
        """Integral over the plane (image unit times pixels)."""
        return 2.0 * math.pi * self.peak * math.sqrt(max(np.linalg.det(self.cov), 0.0))


def _cov_to_params(cov: np.ndarray) -> tuple[float, float, float]:
    evals, evecs = np.linalg.eigh(np.asarray(cov, float))
    sa, sb = math.sqrt(max(evals[1], 1e-12)), math.sqrt(max(evals[0], 1e-12))
    theta = math.atan2(evecs[1, 1], evecs[0, 1])
    return sa, sb, theta


def _params_to_cov(sa: float, sb: float, theta: float) -> np.ndarray:
    c, s = math.cos(theta), math.sin(theta)
    rot = np.array([[c, -s], [s, c]])
    return rot @ np.diag([sa * sa, sb * sb]) @ rot.T


def _gauss(amp, x0, y0, inv, xs, ys):
    dx, dy = xs - x0, ys - y0
    q = inv[0, 0] * dx * dx + 2.0 * inv[0, 1] * dx * dy + inv[1, 1] * dy * dy
    return amp * np.exp(-0.5 * q)


def _rotated(p, xs, ys):
    amp, x0, y0, sa, sb, theta = p
    c, s = math.cos(theta), math.sin(theta)
    dx, dy = xs - x0, ys - y0
    u = (c * dx + s * dy) / sa
    v = (-s * dx + c * dy) / sb
    return amp * np.exp(-0.5 * (u * u + v * v))


def fit_components(values: np.ndarray, xs: np.ndarray, ys: np.ndarray,
                   starts: Sequence[tuple[float, float, float, np.ndarray]],
                   free: Sequence[bool], beam_cov: np.ndarray,
                   min_sigma: float, max_sigma: float) -> list[Component] | None:
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
            sa, sb, th = _cov_to_params(cov)
            p0 += [float(np.clip(sa, min_sigma * 1.01, max_sigma * 0.99)),
                   float(np.clip(sb, min_sigma * 1.01, max_sigma * 0.99)), th]
            lo += [min_sigma, min_sigma, -np.inf]
            hi += [max_sigma, max_sigma, np.inf]

    def model(p):
        out, k = np.zeros_like(values), 0
        for f in free:
            if f:
                out += _rotated(p[k:k + 6], xs, ys)
                k += 6
            else:
                out += _gauss(p[k], p[k + 1], p[k + 2], beam_inv, xs, ys)
                k += 3
        return out

    try:
        res = optimize.least_squares(lambda p: model(p) - values, np.array(p0),
                                     bounds=(lo, hi), x_scale="jac", max_nfev=100 * len(p0))
    except (ValueError, np.linalg.LinAlgError):
        return None
    if not res.success:
        return None
    out, k = [], 0
    for f in free:
        amp, x, y = res.x[k:k + 3]
        on_edge = (min(x - xlo, xhi - x) < 1e-3) or (min(y - ylo, yhi - y) < 1e-3)
        if amp <= 0 or on_edge:
            return None
        if f:
            cov = _params_to_cov(*res.x[k + 3:k + 6])
            k += 6
        else:
            cov = np.array(beam_cov, float)
            k += 3
        out.append(Component(float(amp), float(x), float(y), cov, bool(f)))
    return out
