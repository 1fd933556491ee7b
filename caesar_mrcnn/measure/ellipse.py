"""Ellipses from 2×2 covariance matrices: axes and position angle, in pixels or on the sky."""

from __future__ import annotations

import numpy as np


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
