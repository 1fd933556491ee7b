"""Cutout sets: unlabelled cutouts for self-supervised pretraining, and a labelled morphology set.

Both are folders of square float32 FITS files of the same size (NaN allowed, each with its own
celestial WCS and beam keywords) plus a CSV:

- unlabelled (:func:`make_unlabelled_cutouts`): random or source-centred windows of simulated
  fields or of the user's FITS images; cutouts with more than ``max_nan_fraction`` blank pixels
  are skipped. ``index.csv``: ``file, source, x0, y0, ra, dec, nan_fraction``.
- morphology (:func:`make_morphology_set`): one simulated object per cutout, balanced over
  :data:`MORPHOLOGY_LABELS`. ``labels.csv``: ``file, label, label_id, family, snr, nislands,
  las_arcsec``.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS
from scipy import ndimage

from caesar_mrcnn.errors import ConfigError, DatasetError
from caesar_mrcnn.io.atomic import atomic_open
from caesar_mrcnn.sim import beam as gb
from caesar_mrcnn.sim import families, population
from caesar_mrcnn.sim.config import SimConfig
from caesar_mrcnn.sim.field import ISLAND_STRUCTURE, simulate_field
from caesar_mrcnn.sim.geometry import make_header
from caesar_mrcnn.sim.noise import correlated_noise
from caesar_mrcnn.sim.stamps import ComponentList, render
from caesar_mrcnn.sim.writer import fresh_output_dir, image_rngs

MORPHOLOGY_LABELS: tuple[str, ...] = ("compact", "FR-I", "FR-II", "diffuse", "multi-island",
                                      "artefact")
"""Labels of the morphology set; ``label_id`` is the index in this tuple."""


@dataclass
class CutoutSummary:
    """What a cutout maker wrote."""

    out_dir: Path
    n_written: int
    size: int
    csv_path: Path
    label_counts: dict[str, int] = field(default_factory=dict)

    def line(self) -> str:
        """One-line human summary."""
        extra = ""
        if self.label_counts:
            extra = " (" + ", ".join(f"{k}={v}" for k, v in self.label_counts.items()) + ")"
        return f"{self.n_written} cutouts of {self.size}x{self.size}{extra} -> {self.out_dir}"


def _cutout_header(wcs: WCS | None, extra: fits.Header, y0: int, x0: int,
                   size: int) -> fits.Header:
    """2-D header of a cutout at ``(y0, x0)``: shifted celestial WCS plus beam/unit keywords."""
    hdr = fits.Header()
    if wcs is not None:
        hdr.update(wcs.slice((slice(y0, y0 + size), slice(x0, x0 + size))).to_header())
    for key in ("BUNIT", "BMAJ", "BMIN", "BPA", "TELESCOP"):
        if key in extra:
            hdr[key] = extra[key]
    return hdr


def _write_fits(path: Path, data: np.ndarray, header: fits.Header) -> None:
    from caesar_mrcnn.io.fits import write_image

    write_image(path, data.astype(np.float32, copy=False), header)


def _write_csv(path: Path, header: Sequence[str], rows: list[Sequence]) -> None:
    with atomic_open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)


def _progress_bar(enabled: bool, total: int, desc: str):
    """A tqdm bar as a context manager (closed before an error is reported), or None."""
    if not enabled:
        return contextlib.nullcontext(None)
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="cutout")


def _check_size(size: int, n: int) -> None:
    if size < 8:
        raise ConfigError(f"--size: cutouts must be at least 8 pixels, got {size}")
    if n < 1:
        raise ConfigError(f"--n: need at least one cutout, got {n}")


def _centre_window(cx: float, cy: float, size: int, shape: tuple[int, int]) -> tuple[int, int]:
    """Corner ``(y0, x0)`` of a ``size`` window centred on ``(cx, cy)``, kept inside ``shape``."""
    x0 = int(np.clip(np.rint(cx - size / 2), 0, shape[1] - size))
    y0 = int(np.clip(np.rint(cy - size / 2), 0, shape[0] - size))
    return y0, x0


def make_unlabelled_cutouts(out_dir: str | Path, n: int, size: int = 64, *,
                            sim_config: SimConfig | None = None,
                            fits_paths: Sequence[str | Path] | None = None,
                            centred: bool = False, seed: int = 0,
                            max_nan_fraction: float = 0.2,
                            progress: bool = False) -> CutoutSummary:
    """Write ``n`` unlabelled ``size``×``size`` cutouts from simulated fields or FITS images.

    Parameters
    ----------
    out_dir : path-like
        New or empty folder; receives ``cutout_000000.fits``... and ``index.csv``.
    n, size : int
        Number and side (pixels) of the cutouts.
    sim_config : SimConfig, optional
        Simulate fields with this configuration (exclusive with ``fits_paths``).
    fits_paths : sequence of path-like, optional
        Cut the user's images instead (read lazily, window by window).
    centred : bool
        Centre on sources (simulated objects, or the brightest > 5 sigma pixel of a random
        region of a FITS image) instead of uniformly random positions.
    seed : int
        Seed of every random choice.
    max_nan_fraction : float
        Skip cutouts with a larger fraction of blank pixels.
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    CutoutSummary
    """
    _check_size(size, n)
    if (sim_config is None) == (not fits_paths):
        raise ConfigError("make-cutouts: give exactly one of --sim-config or --from-fits")
    rng = np.random.default_rng(seed)
    with fresh_output_dir(out_dir) as out, _progress_bar(progress, n, "cutouts") as bar:
        rows: list[list] = []

        def emit(data: np.ndarray, header: fits.Header, source: str, y0: int, x0: int,
                 wcs: WCS | None) -> None:
            name = f"cutout_{len(rows):06d}.fits"
            _write_fits(out / name, data, header)
            ra = dec = float("nan")
            if wcs is not None:
                ra, dec = (float(v) for v in wcs.wcs_pix2world(x0 + size / 2 - 0.5,
                                                               y0 + size / 2 - 0.5, 0))
            rows.append([name, source, x0, y0, f"{ra:.6f}", f"{dec:.6f}",
                         f"{float(np.mean(~np.isfinite(data))):.4f}"])
            if bar is not None:
                bar.update(1)

        if sim_config is not None:
            _cutouts_from_sim(sim_config, n, size, centred, rng, max_nan_fraction, emit,
                              lambda: len(rows))
        else:
            _cutouts_from_fits([Path(p) for p in fits_paths], n, size, centred, rng,
                               max_nan_fraction, emit, lambda: len(rows))
        if bar is not None:
            bar.close()
        if not rows:
            raise DatasetError("make-cutouts: no cutout passed the checks (too many blank "
                               "pixels or no sources); use larger images or --size smaller")
        csv_path = out / "index.csv"
        _write_csv(csv_path, ["file", "source", "x0", "y0", "ra", "dec", "nan_fraction"], rows)
    return CutoutSummary(Path(out_dir), len(rows), size, csv_path)


def _cutouts_from_sim(cfg: SimConfig, n: int, size: int, centred: bool,
                      rng: np.random.Generator, max_nan: float, emit, written) -> None:
    shape = (cfg.field.ny, cfg.field.nx)
    if size > min(shape):
        raise ConfigError(f"--size: {size} is larger than the simulated field {shape[1]}x"
                          f"{shape[0]}; raise field.nx/field.ny or lower --size")
    per_field = max(1, int(2 * shape[0] * shape[1] / size**2))
    field_seed = int(rng.integers(2**31))
    i = 0
    while written() < n:
        sim = simulate_field(cfg, image_rngs(field_seed + i, 1)[0], image_id=f"field{i:05d}")
        i += 1
        wcs = WCS(sim.header).celestial
        if centred:
            centres = [(a.attrs["x"], a.attrs["y"]) for a in sim.annotations]
            rng.shuffle(centres)
            jitter = rng.uniform(-size / 8, size / 8, (len(centres), 2))
            corners = [_centre_window(cx + jx, cy + jy, size, shape)
                       for (cx, cy), (jx, jy) in zip(centres, jitter)]
        else:
            corners = list(zip(rng.integers(0, shape[0] - size + 1, per_field),
                               rng.integers(0, shape[1] - size + 1, per_field)))
        if i > 1000 and written() == 0:
            return
        for y0, x0 in corners[:per_field]:
            if written() >= n:
                return
            data = sim.image[y0:y0 + size, x0:x0 + size]
            if np.mean(~np.isfinite(data)) > max_nan:
                continue
            emit(data, _cutout_header(wcs, sim.header, y0, x0, size), sim.meta["image_id"],
                 int(y0), int(x0), wcs)


def _cutouts_from_fits(paths: list[Path], n: int, size: int, centred: bool,
                       rng: np.random.Generator, max_nan: float, emit, written) -> None:
    from caesar_mrcnn.io.fits import open_image

    images = [open_image(p) for p in paths]
    try:
        usable = [img for img in images if min(img.shape) >= size]
        if not usable:
            raise ConfigError(f"--size: {size} is larger than every input image; use a smaller "
                              "--size")
        areas = np.array([img.shape[0] * img.shape[1] for img in usable], dtype=float)
        attempts = 0
        while written() < n and attempts < 20 * n:
            attempts += 1
            img = usable[int(rng.choice(len(usable), p=areas / areas.sum()))]
            ny, nx = img.shape
            y0, x0 = int(rng.integers(0, ny - size + 1)), int(rng.integers(0, nx - size + 1))
            if centred:
                # Look for the brightest significant pixel in a larger region around the window.
                ry0, rx0 = max(y0 - size, 0), max(x0 - size, 0)
                region = img.read_window(ry0, y0 + 2 * size, rx0, x0 + 2 * size)
                finite = region[np.isfinite(region)]
                if finite.size < size * size // 4:
                    continue
                med = float(np.median(finite))
                sigma = 1.4826 * float(np.median(np.abs(finite - med)))
                peak = np.nanargmax(region)
                py, px = np.unravel_index(peak, region.shape)
                if not sigma > 0 or region[py, px] - med < 5.0 * sigma:
                    continue
                y0, x0 = _centre_window(rx0 + px, ry0 + py, size, (ny, nx))
            data = img.read_window(y0, y0 + size, x0, x0 + size)
            if np.mean(~np.isfinite(data)) > max_nan:
                continue
            extra = fits.Header()
            extra["BUNIT"] = img.bunit or "JY/BEAM"
            if img.beam is not None:
                extra["BMAJ"], extra["BMIN"], extra["BPA"] = (img.beam.bmaj_deg,
                                                              img.beam.bmin_deg,
                                                              img.beam.bpa_deg)
            emit(data, _cutout_header(img.wcs, extra, y0, x0, size), img.path.name, y0, x0,
                 img.wcs)
    finally:
        for img in images:
            img.close()


# --- labelled morphology set -------------------------------------------------------------------


def _morphology_object(label: str, cfg: SimConfig, rng: np.random.Generator, size: int,
                       beam_cov: np.ndarray, bmaj_px: float, rms: float, level: float):
    """Noiseless stamp of one object of ``label`` near the cutout centre, or None to redraw.

    Returns ``(stamp, family, peak, nislands, las_px)``.
    """
    shape = (size, size)
    cx, cy = (size - 1) / 2 + rng.uniform(-2, 2, 2)
    e = cfg.extended
    cl = ComponentList(beam_cov)
    las = 0.0
    max_las = 0.8 * size
    if label == "compact":
        c = cfg.compact
        peak = float(population.power_law(rng, 1, max(c.snr_min, 5.0), c.snr_max, c.slope)[0])
        major, minor, pa = population.compact_sizes(rng, 1, c.resolved_fraction,
                                                    c.max_size_beam * bmaj_px)
        families.compact(cl, cx, cy, peak * rms, major[0], minor[0], pa[0])
        family = "point" if major[0] == 0 else "gaussian"
    elif label == "artefact":
        s = cfg.spurious
        host = float(population.log_uniform(rng, s.host_snr_min, s.host_snr_max)) * rms
        families.compact(cl, cx, cy, host)
        family = population.choose(rng, s.patterns)
        extent = min(rng.uniform(s.extent_min_beam, s.extent_max_beam) * bmaj_px, 0.45 * size)
        amp = max(rng.uniform(s.amplitude_min, s.amplitude_max) * host, 2.0 * level)
        sig = (float(np.sqrt(beam_cov[1, 1])), float(np.sqrt(beam_cov[0, 0])))
        art = families.artefact(rng, cx, cy, amp, extent, bmaj_px, sig, family, shape)
        host_stamp = render(cl.freeze(), shape, 0.01 * rms)
        if art is None or host_stamp is None:
            return None
        data = np.zeros(shape, np.float32)
        art.add_into(data)
        mask = art.data > level
        nis = int(ndimage.label(mask, structure=ISLAND_STRUCTURE)[1])
        host_stamp.add_into(data)
        return data, family, amp, nis, 2 * extent
    else:
        family = {"FR-I": "fr1", "FR-II": "fr2", "diffuse": "diffuse"}.get(label)
        if family is None:
            family = population.choose(rng, e.families)
        lo = e.size_min_beam * bmaj_px
        las = float(population.log_uniform(rng, min(lo, max_las), min(e.size_max_beam * bmaj_px,
                                                                      max_las)))
        peak = float(population.power_law(rng, 1, e.snr_min, e.snr_max, e.slope)[0]) * rms
        families.BUILDERS[family](cl, rng, cx, cy, las, float(rng.uniform(0, 180)), peak,
                                  bmaj_px, level, label != "multi-island")
    stamp = render(cl.freeze(), shape, 0.01 * rms)
    if stamp is None:
        return None
    data = np.zeros(shape, np.float32)
    stamp.add_into(data)
    mask = data > level
    nis = int(ndimage.label(mask, structure=ISLAND_STRUCTURE)[1])
    wanted = nis >= 2 if label == "multi-island" else nis == 1
    if not wanted or mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any():
        return None  # wrong island count, or the object does not fit in the cutout
    return data, family, float(data.max()), nis, las


def make_morphology_set(out_dir: str | Path, n: int, size: int = 64, *,
                        sim_config: SimConfig | None = None, seed: int = 0,
                        progress: bool = False) -> CutoutSummary:
    """Write a labelled, class-balanced set of single-object cutouts.

    Each cutout holds one simulated object of a label in :data:`MORPHOLOGY_LABELS` near its
    centre, over beam-correlated noise, using the beam, pixel size, noise and population
    ranges of ``sim_config`` (defaults otherwise). Extended families must form exactly one
    island above the mask threshold, ``multi-island`` two or more, and every object must fit
    inside the cutout (otherwise it is redrawn).

    Parameters
    ----------
    out_dir : path-like
        New or empty folder; receives ``morph_000000.fits``... and ``labels.csv``.
    n : int
        Total number of cutouts, rounded down to a multiple of the number of labels (at least
        one per label).
    size : int
        Side of the cutouts (pixels).

    Returns
    -------
    CutoutSummary
        With ``label_counts``.
    """
    _check_size(size, n)
    cfg = sim_config if sim_config is not None else SimConfig()
    field_cfg = dataclasses.replace(cfg.field, nx=size, ny=size, four_axes=False)
    pix = cfg.field.pixel_arcsec
    bmaj_px, bmin_px = cfg.beam.bmaj_arcsec / pix, cfg.beam.bmin_arcsec / pix
    if 3 * bmaj_px > size:
        raise ConfigError(f"--size: {size} pixels hold less than 3 beams of {bmaj_px:.1f} "
                          "pixels; use a larger --size or a smaller beam")
    beam_cov = gb.covariance(bmaj_px, bmin_px, cfg.beam.bpa_deg)
    rms = cfg.noise.rms_ujy * 1e-6
    level = cfg.mask_threshold_sigma * rms
    per_label = max(1, n // len(MORPHOLOGY_LABELS))
    rng = np.random.default_rng(seed)
    header = make_header(field_cfg, cfg.beam)
    rows: list[list] = []
    counts = dict.fromkeys(MORPHOLOGY_LABELS, 0)
    total = per_label * len(MORPHOLOGY_LABELS)
    with (fresh_output_dir(out_dir) as out,
          _progress_bar(progress, total, "morphology") as bar):
        for _ in range(per_label):
            for label_id, label in enumerate(MORPHOLOGY_LABELS):
                for _try in range(200):
                    obj = _morphology_object(label, cfg, rng, size, beam_cov, bmaj_px, rms,
                                             level)
                    if obj is not None:
                        break
                else:
                    raise ConfigError(f"make-cutouts: cannot fit a {label} object in {size}"
                                      "-pixel cutouts; use a larger --size or smaller "
                                      "extended.size_*_beam")
                data, family, peak, nis, las = obj
                data = data + correlated_noise((size, size), beam_cov, rms, rng, workers=1)
                name = f"morph_{len(rows):06d}.fits"
                _write_fits(out / name, data, header)
                rows.append([name, label, label_id, family, f"{peak / rms:.2f}", nis,
                             f"{las * pix:.1f}"])
                counts[label] += 1
                if bar is not None:
                    bar.update(1)
        if bar is not None:
            bar.close()
        csv_path = out / "labels.csv"
        _write_csv(csv_path, ["file", "label", "label_id", "family", "snr", "nislands",
                              "las_arcsec"], rows)
    return CutoutSummary(Path(out_dir), len(rows), size, csv_path, counts)


def make_cutouts(out_dir: str | Path, n: int, size: int = 64, *,
                 sim_config: SimConfig | None = None,
                 fits_paths: Sequence[str | Path] | None = None, centred: bool = False,
                 morphology: bool = False, seed: int = 0,
                 progress: bool = False) -> CutoutSummary:
    """Entry point of ``caesar-mrcnn make-cutouts``: the morphology set or unlabelled cutouts."""
    if morphology:
        if fits_paths:
            raise ConfigError("make-cutouts: --morphology simulates its objects; use "
                              "--sim-config, not --from-fits")
        return make_morphology_set(out_dir, n, size, sim_config=sim_config, seed=seed,
                                   progress=progress)
    return make_unlabelled_cutouts(out_dir, n, size, sim_config=sim_config,
                                   fits_paths=fits_paths, centred=centred, seed=seed,
                                   progress=progress)


def make_cutouts_command(out_dir: str | Path, n: int, size: int, *,
                         sim_config: str | Path | None = None,
                         overrides: Sequence[str] = (),
                         fits_paths: Sequence[str | Path] | None = None,
                         centred: bool = False, morphology: bool = False,
                         seed: int | None = None, progress: bool = True) -> CutoutSummary:
    """``caesar-mrcnn make-cutouts``: load the simulator configuration, then make cutouts."""
    from caesar_mrcnn.config import load_config

    cfg = None
    if sim_config is not None or (morphology and not fits_paths):
        cfg = load_config(SimConfig, sim_config, list(overrides))
    seed = (cfg.seed if cfg is not None else 0) if seed is None else seed
    return make_cutouts(out_dir, n, size, sim_config=cfg, fits_paths=fits_paths,
                        centred=centred, morphology=morphology, seed=seed, progress=progress)
