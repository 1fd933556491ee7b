"""Source populations: how many, how bright, where, how big.

Brightness follows a truncated power law ``dN/dS ∝ S^-alpha`` (Euclidean-like source counts
have alpha ≈ 1.6–2 at these flux densities), drawn here in units of the noise rms so that the
same configuration gives the same SNR range whatever the noise level.
"""

from __future__ import annotations

import numpy as np


def power_law(rng: np.random.Generator, n: int, lo: float, hi: float,
              alpha: float) -> np.ndarray:
    """``n`` samples of ``dN/dS ∝ S^-alpha`` truncated to ``[lo, hi]`` (inverse-CDF method).

    Parameters
    ----------
    rng : numpy.random.Generator
    n : int
    lo, hi : float
        Bounds, ``0 < lo <= hi``.
    alpha : float
        Power-law index (> 1).

    Returns
    -------
    numpy.ndarray, shape (n,)
    """
    u = rng.random(n)
    if hi <= lo:
        return np.full(n, float(lo))
    g = 1.0 - alpha
    return (lo**g + u * (hi**g - lo**g)) ** (1.0 / g)


def count(rng: np.random.Generator, n: int, poisson: bool) -> int:
    """``n`` itself, or a Poisson draw of mean ``n``."""
    return int(rng.poisson(n)) if poisson else int(n)


def positions(rng: np.random.Generator, n: int, shape: tuple[int, int],
              valid: np.ndarray | None = None, margin: float = 0.0,
              max_rounds: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """Uniform random pixel positions ``(x, y)``, redrawn where ``valid`` is False.

    Parameters
    ----------
    margin : float
        Keep centres at least this many pixels from the edges (clipped to a quarter of the
        image size).
    """
    ny, nx = shape
    mx = min(margin, nx / 4.0)
    my = min(margin, ny / 4.0)
    x = rng.uniform(mx, nx - 1 - mx, n)
    y = rng.uniform(my, ny - 1 - my, n)
    if valid is None or n == 0:
        return x, y
    for _ in range(max_rounds):
        bad = ~valid[np.clip(np.rint(y).astype(int), 0, ny - 1),
                     np.clip(np.rint(x).astype(int), 0, nx - 1)]
        if not bad.any():
            break
        k = int(bad.sum())
        x[bad] = rng.uniform(mx, nx - 1 - mx, k)
        y[bad] = rng.uniform(my, ny - 1 - my, k)
    return x, y


def compact_sizes(rng: np.random.Generator, n: int, resolved_fraction: float,
                  max_major: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Intrinsic FWHM major, minor (same unit as ``max_major``) and PA (deg) of compact sources.

    A fraction ``1 - resolved_fraction`` are points (size 0); the others have a major axis
    uniform in ``[0.1, 1] * max_major`` and an axis ratio uniform in ``[0.4, 1]``.
    """
    resolved = rng.random(n) < resolved_fraction
    major = np.where(resolved, rng.uniform(0.1, 1.0, n) * max_major, 0.0)
    minor = major * rng.uniform(0.4, 1.0, n)
    pa = rng.uniform(0.0, 180.0, n)
    return major, minor, pa


def log_uniform(rng: np.random.Generator, lo: float, hi: float, n: int | None = None):
    """Samples uniform in ``log`` between ``lo`` and ``hi``."""
    return np.exp(rng.uniform(np.log(lo), np.log(hi), n))


def choose(rng: np.random.Generator, weights: dict[str, float], n: int | None = None):
    """Pick key(s) of ``weights`` with probability proportional to the values."""
    keys = list(weights)
    p = np.array([weights[k] for k in keys], dtype=float)
    idx = rng.choice(len(keys), size=n, p=p / p.sum())
    return keys[int(idx)] if n is None else [keys[int(i)] for i in idx]
