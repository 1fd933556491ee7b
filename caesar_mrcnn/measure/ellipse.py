"""Ellipses from 2×2 covariance matrices: axes and position angle, in pixels or on the sky.

The one place where a covariance becomes axes and an angle: the catalogue's moment ellipses,
the Gaussian fits and the simulator's source shapes all go through
:func:`ellipse_from_covariance`.

Conventions: pixel coordinates ``(x, y)`` with x along columns (east to the left) and y along
rows (north up); a position angle is measured from north through east.
"""

from __future__ import annotations

import math

import numpy as np

FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))
"""Full width at half maximum of a Gaussian, in units of its sigma (about 2.3548)."""


def ellipse_from_covariance(cov_pix: np.ndarray, jac: np.ndarray | None
                            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Major/minor sigma and position angle of covariance matrices.

    Parameters
    ----------
    cov_pix : numpy.ndarray, shape ``(N, 2, 2)``
        Covariance in pixel coordinates ordered ``(x, y)``.
    jac : numpy.ndarray, shape ``(N, 2, 2)``, optional
        :func:`sky_jacobian`; without it the result stays in pixels and the angle is measured
        from +y towards -x (north up, east left as in a standard image).

    Returns
    -------
    major, minor : numpy.ndarray
        Standard deviations along the axes (deg, or pixels without ``jac``).
    pa : numpy.ndarray
        Position angle of the major axis, east of north, in [0, 180) deg.
    """
    if jac is None:
        jac = np.broadcast_to(np.array([[-1.0, 0.0], [0.0, 1.0]]), cov_pix.shape)
    cov = jac @ cov_pix @ np.swapaxes(jac, -1, -2)
    evals, evecs = np.linalg.eigh(cov)  # ascending
    major = np.sqrt(np.clip(evals[:, 1], 0, None))
    minor = np.sqrt(np.clip(evals[:, 0], 0, None))
    east, north = evecs[:, 0, 1], evecs[:, 1, 1]
    pa = np.mod(np.degrees(np.arctan2(east, north)), 180.0)
    return major, minor, pa


def fwhm_ellipse(cov_pix: np.ndarray) -> tuple[float, float, float]:
    """FWHM axes and position angle of one Gaussian given by its pixel covariance.

    Parameters
    ----------
    cov_pix : numpy.ndarray, shape ``(2, 2)``
        Covariance in pixel² ordered ``(x, y)``.

    Returns
    -------
    major, minor : float
        Full widths at half maximum along the axes (pixels).
    pa : float
        Position angle of the major axis, degrees east of north in the image (north up, east
        left), in [0, 180).
    """
    major, minor, pa = ellipse_from_covariance(np.asarray(cov_pix, dtype=float)[None], None)
    return (float(major[0] * FWHM_PER_SIGMA), float(minor[0] * FWHM_PER_SIGMA), float(pa[0]))
