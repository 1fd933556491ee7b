"""Source morphologies: compact Gaussians, FR-I and FR-II radio galaxies, wide-angle and
head-tail galaxies, double-double radio galaxies, diffuse blobs, and sidelobe artefacts.

Every real source is a sum of Gaussian components whose intrinsic sizes are convolved with the
beam analytically (covariances add), so fluxes and peaks stay exact. Amplitudes are given as
convolved peaks in Jy/beam; ``level`` is the mask threshold (Jy/beam), used to decide whether
faint connecting emission (jets, bridges) stays above it (one island) or not (several).

Geometry: pixel units; a position angle ``pa`` (deg, east of north) points along
``(-sin pa, cos pa)`` in ``(x, y)``.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from caesar_mrcnn.sim.beam import FWHM_TO_SIGMA, covariance
from caesar_mrcnn.sim.stamps import ComponentList, Stamp, window

FAMILIES = ("fr1", "fr2", "diffuse", "wat", "head_tail", "double_double")
"""Extended families, as named in configurations and ground truth."""


def _unit(pa_deg: float) -> np.ndarray:
    t = np.deg2rad(pa_deg)
    return np.array([-np.sin(t), np.cos(t)])


def _ridge_peak(level: float, step: float, cl: ComponentList, major: float, minor: float,
                pa: float) -> float:
    """Peak per component so that a chain with spacing ``step`` has a ridge at ``level``.

    Overlapping components add up: along a chain the sum is about
    ``peak * sqrt(2 pi) * sigma_along / step`` when the spacing is below the convolved width.
    """
    cov = covariance(major, minor, pa) + cl.beam_cov
    u = _unit(pa)
    sigma_along = float(np.sqrt(u @ cov @ u))
    return level / max(np.sqrt(2 * np.pi) * sigma_along / step, 1.0)


def _threshold_radius(peak: float, level: float, beam_px: float) -> float:
    """Radius (pixels) out to which a point source of ``peak`` stays above ``level``."""
    sigma = beam_px * FWHM_TO_SIGMA
    return float(sigma * np.sqrt(2.0 * np.log(max(peak / level, 1.0 + 1e-9))))


def compact(cl: ComponentList, x: float, y: float, peak: float, major_px: float = 0.0,
            minor_px: float = 0.0, pa: float = 0.0) -> None:
    """A point (size 0) or slightly resolved Gaussian source."""
    cl.add(x, y, peak, major_px, minor_px, pa)


def fr1(cl: ComponentList, rng: np.random.Generator, x: float, y: float, las: float,
        pa: float, peak: float, beam_px: float, level: float, connected: bool,
        bends: tuple[float, float] | None = None, sides: tuple[int, ...] = (0, 1)) -> None:
    """FR-I radio galaxy: bright core, two-sided jets that widen and fade outwards, end plumes.

    ``connected=False`` leaves a gap between the core and each jet (core + two jet islands).
    ``bends`` (radians at the jet end, one per side; default small random bends) and ``sides``
    (which jets exist) make the bent-tail variants.
    """
    half = las / 2.0
    cl.add(x, y, peak, 0.2 * beam_px, 0.2 * beam_px, 0.0)
    r_core = _threshold_radius(peak, level, beam_px)
    for side in sides:
        boost = 1.0 if side == 0 else rng.uniform(0.3, 1.0)  # Doppler-dimmed counter-jet
        start = 0.4 * beam_px if connected else r_core + rng.uniform(1.0, 1.6) * beam_px
        length = max(half, start / 0.6)
        w0 = 0.3 * beam_px
        w1 = max(rng.uniform(0.15, 0.3) * las, 0.6 * beam_px)
        p0 = max(rng.uniform(0.15, 0.5) * peak, 3.0 * level) * boost
        bend = rng.uniform(-0.6, 0.6) if bends is None else bends[side]
        base = pa + 180.0 * side
        pos = np.array([x, y], dtype=float) + _unit(base) * start
        t = start
        while t <= length:
            w = w0 + (w1 - w0) * t / length
            step = max(0.4 * w, 0.3 * beam_px)
            ang = base + np.rad2deg(bend * (t / length) ** 2)
            lvl = p0 * (1.0 + t / (0.25 * length)) ** -1.0
            cl.add(pos[0], pos[1], _ridge_peak(lvl, step, cl, w, 0.7 * w, ang), w, 0.7 * w, ang)
            pos = pos + _unit(ang) * step
            t += step
        plume = 1.5 * w1
        cl.add(pos[0], pos[1], max(lvl, 1.5 * level * boost), plume,
               plume * rng.uniform(0.6, 1.0), ang + rng.uniform(-30, 30))


def fr2(cl: ComponentList, rng: np.random.Generator, x: float, y: float, las: float,
        pa: float, peak: float, beam_px: float, level: float, connected: bool) -> None:
    """FR-II radio galaxy: two lobes with compact hotspots at their outer edges, a faint core,
    and (``connected=True``) a faint bridge above the threshold joining lobes and core."""
    half = las / 2.0
    lobe_w = max(rng.uniform(0.15, 0.35) * half + 0.3 * beam_px, 0.5 * beam_px)
    if connected:
        cl.add(x, y, max(rng.uniform(0.05, 0.3) * peak, 2.5 * level))
    elif rng.random() < 0.5:
        cl.add(x, y, rng.uniform(0.5, 2.0) * level)
    for side in (0, 1):
        arm = half if side == 0 else half * rng.uniform(0.7, 1.0)
        ang = pa + 180.0 * side + (rng.uniform(-10, 10) if side else 0.0)
        u = _unit(ang)
        hot_peak = peak if side == 0 else peak * rng.uniform(0.4, 1.0)
        hot_size = rng.uniform(0.2, 0.6) * beam_px
        hx, hy = np.array([x, y]) + u * arm
        cl.add(hx, hy, hot_peak, hot_size, hot_size * rng.uniform(0.6, 1.0), ang)
        lobe_len = rng.uniform(0.3, 0.6 if connected else 0.45) * arm
        lobe_lvl = max(rng.uniform(0.05, 0.3) * hot_peak, 2.0 * level)
        step = 0.4 * lobe_w
        for t in np.arange(arm - 0.3 * lobe_w, arm - lobe_len, -step):
            px, py = np.array([x, y]) + u * t
            cl.add(px, py, _ridge_peak(lobe_lvl, step, cl, lobe_w, 0.8 * lobe_w, ang),
                   lobe_w, 0.8 * lobe_w, ang)
        if connected:
            bw = 0.6 * lobe_w
            bstep = 0.4 * bw
            blvl = rng.uniform(1.6, 2.5) * level
            for t in np.arange(0.0, arm - lobe_len + bstep, bstep):
                px, py = np.array([x, y]) + u * t
                cl.add(px, py, _ridge_peak(blvl, bstep, cl, bw, 0.8 * bw, ang),
                       bw, 0.8 * bw, ang)


def diffuse(cl: ComponentList, rng: np.random.Generator, x: float, y: float, las: float,
            pa: float, peak: float, beam_px: float, level: float, connected: bool) -> None:
    """Diffuse emission: an elliptical/irregular sum of broad Gaussians (``connected=True``) or
    two to three separate clumps along an axis (``connected=False``)."""
    u = _unit(pa)
    v = np.array([u[1], -u[0]])
    if connected:
        for i in range(int(rng.integers(2, 6))):
            major = max(rng.uniform(0.3, 0.6) * las, 1.0 * beam_px)
            off = u * rng.uniform(-0.25, 0.25) * las + v * rng.uniform(-0.1, 0.1) * las
            p = peak if i == 0 else rng.uniform(0.4, 1.0) * peak
            cl.add(x + off[0], y + off[1], p, major, major * rng.uniform(0.4, 1.0),
                   pa + rng.normal(0.0, 25.0))
        return
    n_clumps = int(rng.integers(2, 4))
    centres = np.linspace(-0.5, 0.5, n_clumps) * las
    for i, c in enumerate(centres):
        size = max(rng.uniform(0.1, 0.25) * las, 0.5 * beam_px)
        p = peak if i == 0 else rng.uniform(0.3, 1.0) * peak
        for j in range(int(rng.integers(1, 3))):
            off = u * (c + rng.uniform(-0.2, 0.2) * size) + v * rng.uniform(-0.3, 0.3) * size
            cl.add(x + off[0], y + off[1], p if j == 0 else rng.uniform(0.3, 0.8) * p,
                   size, size * rng.uniform(0.5, 1.0), rng.uniform(0.0, 180.0))


def wat(cl: ComponentList, rng: np.random.Generator, x: float, y: float, las: float,
        pa: float, peak: float, beam_px: float, level: float, connected: bool) -> None:
    """Wide-angle tail: an FR-I whose two jets bend the same way (swept back by the host's
    motion through the cluster gas), opening angle between about 60 and 150 degrees."""
    b = rng.uniform(0.5, 1.3)
    fr1(cl, rng, x, y, las, pa, peak, beam_px, level, connected, bends=(b, -b))


def head_tail(cl: ComponentList, rng: np.random.Generator, x: float, y: float, las: float,
              pa: float, peak: float, beam_px: float, level: float, connected: bool) -> None:
    """Head-tail galaxy: a bright head (the core) and one tail, both jets swept into it."""
    fr1(cl, rng, x, y, las * 2.0, pa, peak, beam_px, level, connected,
        bends=(rng.uniform(-0.8, 0.8), 0.0), sides=(0,))


def double_double(cl: ComponentList, rng: np.random.Generator, x: float, y: float, las: float,
                  pa: float, peak: float, beam_px: float, level: float,
                  connected: bool) -> None:
    """Double-double radio galaxy: an inner pair of lobes from a restarted jet inside an outer
    pair on the same axis (Schoenmakers et al. 2000)."""
    fr2(cl, rng, x, y, las, pa, peak * rng.uniform(0.3, 0.8), beam_px, level, connected)
    inner = las * rng.uniform(0.25, 0.5)
    fr2(cl, rng, x, y, max(inner, 2.0 * beam_px), pa + rng.uniform(-8, 8), peak, beam_px,
        level, False)


BUILDERS = {"fr1": fr1, "fr2": fr2, "diffuse": diffuse, "wat": wat, "head_tail": head_tail,
            "double_double": double_double}


def artefact(rng: np.random.Generator, x: float, y: float, amplitude: float, extent_px: float,
             beam_px: float, beam_sigma_yx: tuple[float, float], pattern: str,
             shape: tuple[int, int]) -> Stamp | None:
    """Sidelobe artefact around a bright source at ``(x, y)``: ring ripples or radial spokes.

    The pattern is zero inside about 1.5 beams (where the host source is), alternates between
    positive and negative, fades outwards to ``extent_px`` and is smoothed by the beam; its
    largest positive value is ``amplitude`` (Jy/beam).

    Returns
    -------
    Stamp or None
        None if the pattern lies outside the image.
    """
    box = window(x, y, extent_px + beam_px, extent_px + beam_px, shape)
    if box is None:
        return None
    y0, x0, y1, x1 = box
    dy = np.arange(y0, y1, dtype=np.float64)[:, None] - y
    dx = np.arange(x0, x1, dtype=np.float64)[None, :] - x
    r = np.hypot(dx, dy)
    r_in = 1.5 * beam_px
    taper = (0.5 * (1.0 + np.tanh((r - r_in) / (0.3 * beam_px)))
             * 0.5 * (1.0 - np.tanh((r - extent_px) / (0.5 * beam_px))))
    radial = r_in / np.maximum(r, r_in)
    if pattern == "rings":
        wavelength = rng.uniform(1.5, 3.0) * beam_px
        ang = np.ones_like(r) * np.cos(2 * np.pi * (r - r_in) / wavelength
                                       + rng.uniform(0, 2 * np.pi))
        # Rings are rarely complete: modulate them gently with azimuth.
        theta = np.arctan2(dy, dx)
        ang *= 1.0 + 0.4 * np.cos(theta - rng.uniform(0, 2 * np.pi))
    elif pattern == "spokes":
        arms = int(rng.choice([3, 4, 6]))
        kappa = rng.uniform(10.0, 30.0)
        theta = np.arctan2(dy, dx)
        # Narrow positive spokes interleaved with narrow negative ones (zero mean in azimuth).
        phi = arms * (theta - rng.uniform(0, np.pi))
        ang = np.exp(kappa * (np.cos(phi) - 1.0)) - np.exp(kappa * (-np.cos(phi) - 1.0))
        ang *= np.sqrt(np.maximum(r, r_in) / r_in)  # spokes fade more slowly than rings
        ang *= 1.0 + 0.3 * np.cos(2 * np.pi * r / (rng.uniform(2.0, 4.0) * beam_px))
    else:
        raise ValueError(f"unknown artefact pattern {pattern!r}")
    data = ndimage.gaussian_filter(ang * radial * taper, sigma=beam_sigma_yx, mode="constant")
    top = float(data.max())
    if top <= 0:
        return None
    return Stamp(y0, x0, (data * (amplitude / top)).astype(np.float32))
