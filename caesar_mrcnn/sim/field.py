"""Assemble one simulated field: sources, artefacts, noise, blanked border, and ground truth.

Order of work: draw every object and render it in its own stamp; measure its footprint
(mask = pixels where that object's noiseless model exceeds ``mask_threshold_sigma`` × rms, and
not blank) and its island count; add the stamps into the sky model; add beam-correlated noise
(and an optional smooth background); blank the border. Objects whose mask is empty are dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from scipy import ndimage

from caesar_mrcnn.data.dataset import Annotation, Sample
from caesar_mrcnn.sim import beam as gb
from caesar_mrcnn.sim import families, population
from caesar_mrcnn.sim.config import SimConfig
from caesar_mrcnn.sim.geometry import celestial_wcs, make_header, nan_border_mask, pixel_to_sky
from caesar_mrcnn.sim.noise import correlated_noise, smooth_background
from caesar_mrcnn.sim.real_noise import RealNoiseBank
from caesar_mrcnn.sim.stamps import ComponentList, Stamp, render

ISLAND_STRUCTURE = np.ones((3, 3), dtype=bool)
"""Pixels touching by an edge or a corner belong to the same island (8-connectivity)."""

FLOOR_FRACTION = 0.01
"""Stamps extend until each component falls below this fraction of the noise rms."""


@dataclass
class SimField:
    """One simulated image with its ground truth.

    Attributes
    ----------
    image : numpy.ndarray of float32, shape (ny, nx)
        Sky model + noise (+ background), Jy/beam; NaN outside the valid area.
    header : astropy.io.fits.Header
        FITS header (2 or 4 axes).
    annotations : list of Annotation
        Ground truth, one per object (see :mod:`caesar_mrcnn.data.dataset`).
    meta : dict
        Image metadata (``rms``, ``bkg`` in Jy/beam; ``bmaj``, ``bmin``, ``dx``, ``dy`` in arcsec;
        ``bpa`` in deg; ``telescope``, ``image_id``, ...).
    model : numpy.ndarray or None
        Noiseless sky model (only with ``keep_model=True``).
    object_models : list of Stamp or None
        Noiseless model of each annotated object, in the same order (only with
        ``keep_model=True``).
    valid : numpy.ndarray of bool or None
        False on blanked pixels (None when nothing is blanked).
    """

    image: np.ndarray
    header: fits.Header
    annotations: list[Annotation]
    meta: dict[str, Any]
    model: np.ndarray | None = None
    valid: np.ndarray | None = None
    object_models: list[Stamp] | None = None

    @property
    def shape(self) -> tuple[int, int]:
        """``(ny, nx)``."""
        return self.image.shape  # type: ignore[return-value]

    def fits_data(self) -> np.ndarray:
        """The image with as many axes as the header says (degenerate FREQ/STOKES first)."""
        if self.header["NAXIS"] == 4:
            return self.image[None, None, :, :]
        return self.image

    def to_sample(self, image_path: str | Path) -> Sample:
        """Ground truth as a :class:`Sample` pointing at ``image_path``."""
        return Sample(Path(image_path), self.shape, list(self.annotations), dict(self.meta))


@dataclass
class _Object:
    category: str
    family: str
    stamp: Stamp
    x: float
    y: float
    flux: float | None = None
    peak: float | None = None
    shape_px: tuple[float, float, float] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    mask: np.ndarray | None = None
    nislands: int = 0


def _footprint(stamp: Stamp, level: float, valid: np.ndarray | None) -> tuple[np.ndarray, int]:
    mask = stamp.data > level
    if valid is not None:
        mask &= valid[stamp.slices]
    n = int(ndimage.label(mask, structure=ISLAND_STRUCTURE)[1]) if mask.any() else 0
    return mask, n


def _moment_shape(data: np.ndarray, mask: np.ndarray) -> tuple[float, float, float]:
    """FWHM major, minor (pixels), PA (deg) of the equivalent Gaussian of the masked model."""
    w = np.where(mask, np.clip(data, 0.0, None), 0.0).astype(np.float64)
    tot = w.sum()
    if tot <= 0:
        return 0.0, 0.0, 0.0
    yy, xx = np.indices(w.shape, dtype=np.float64)
    mx, my = (w * xx).sum() / tot, (w * yy).sum() / tot
    dx, dy = xx - mx, yy - my
    cov = np.array([[(w * dx * dx).sum(), (w * dx * dy).sum()],
                    [(w * dx * dy).sum(), (w * dy * dy).sum()]]) / tot
    return gb.shape_of(cov)


def _draw_compact(cfg: SimConfig, rng: np.random.Generator, shape: tuple[int, int],
                  valid: np.ndarray | None, beam_cov: np.ndarray, rms: float,
                  bmaj_px: float) -> list[_Object]:
    c = cfg.compact
    n = population.count(rng, c.n, c.poisson)
    n_host = min(cfg.spurious.n, n)
    snr = population.power_law(rng, n, c.snr_min, c.snr_max, c.slope)
    snr[:n_host] = population.power_law(rng, n_host, cfg.spurious.host_snr_min,
                                         cfg.spurious.host_snr_max, c.slope)
    x, y = population.positions(rng, n, shape, valid)
    major, minor, pa = population.compact_sizes(rng, n, c.resolved_fraction,
                                                c.max_size_beam * bmaj_px)
    floor = FLOOR_FRACTION * rms
    out = []
    for i in range(n):
        cl = ComponentList(beam_cov)
        families.compact(cl, x[i], y[i], snr[i] * rms, major[i], minor[i], pa[i])
        comps = cl.freeze()
        stamp = render(comps, shape, floor)
        if stamp is None:
            continue
        intrinsic = gb.shape_of(gb.covariance(major[i], minor[i], pa[i]))
        out.append(_Object("compact", "point" if major[i] == 0 else "gaussian", stamp, x[i],
                           y[i], comps.total_flux, snr[i] * rms, gb.shape_of(comps.cov[0]),
                           {"intrinsic_px": intrinsic, "host": i < n_host}))
    return out


def _draw_extended(cfg: SimConfig, rng: np.random.Generator, shape: tuple[int, int],
                   valid: np.ndarray | None, beam_cov: np.ndarray, rms: float, bmaj_px: float,
                   level: float) -> list[_Object]:
    e = cfg.extended
    floor = FLOOR_FRACTION * rms
    out = []
    for target in ("extended", "extended-multisland"):
        n = population.count(rng, e.n if target == "extended" else e.n_multisland, e.poisson)
        xs, ys = population.positions(rng, n, shape, valid, margin=e.size_min_beam * bmaj_px)
        for x, y in zip(xs, ys):
            best = None
            for _ in range(e.max_tries):
                fam = population.choose(rng, e.families)
                las = float(population.log_uniform(rng, e.size_min_beam, e.size_max_beam)) * bmaj_px
                pa = float(rng.uniform(0.0, 180.0))
                peak = float(population.power_law(rng, 1, e.snr_min, e.snr_max, e.slope)[0]) * rms
                cl = ComponentList(beam_cov)
                families.BUILDERS[fam](cl, rng, x, y, las, pa, peak, bmaj_px, level,
                                       target == "extended")
                comps = cl.freeze()
                stamp = render(comps, shape, floor)
                if stamp is None:
                    continue
                mask, nis = _footprint(stamp, level, valid)
                if nis == 0:
                    continue
                category = "extended" if nis == 1 else "extended-multisland"
                best = _Object(category, fam, stamp, x, y, comps.total_flux,
                               extra={"las_px": las, "n_components": len(comps.x)},
                               mask=mask, nislands=nis)
                if category == target:
                    break
            if best is not None:
                out.append(best)
    return out


def _draw_spurious(cfg: SimConfig, rng: np.random.Generator, shape: tuple[int, int],
                   hosts: list[_Object], beam_cov: np.ndarray, bmaj_px: float,
                   level: float) -> list[_Object]:
    s = cfg.spurious
    sig = (float(np.sqrt(beam_cov[1, 1])), float(np.sqrt(beam_cov[0, 0])))
    out = []
    for host in hosts:
        frac = rng.uniform(s.amplitude_min, s.amplitude_max)
        # An artefact below the mask threshold would be invisible and unlabelled.
        amp = max(frac * host.peak, 1.2 * level)
        extent = rng.uniform(s.extent_min_beam, s.extent_max_beam) * bmaj_px
        pattern = population.choose(rng, s.patterns)
        stamp = families.artefact(rng, host.x, host.y, amp, extent, bmaj_px, sig, pattern,
                                  shape)
        if stamp is None:
            continue
        out.append(_Object("spurious", pattern, stamp, host.x, host.y,
                           extra={"amplitude_fraction": amp / host.peak,
                                  "host_obj": host}))
    return out


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def realise(cfg: SimConfig, rng: np.random.Generator, backgrounds: RealNoiseBank | None = None
            ) -> tuple[SimConfig, np.ndarray | None, str]:
    """The configuration of one field, with its own beam and rms where ranges are configured,
    and a window of real noise (unit rms) when the field takes one.

    Returns
    -------
    cfg : SimConfig
        Fixed beam and rms for this field.
    real_noise : numpy.ndarray or None
    noise_origin : str
        ``simulated`` or the real image's file name.
    """
    pix = cfg.field.pixel_arcsec
    beam, noise = cfg.beam, cfg.noise
    real, origin = None, "simulated"
    if backgrounds is not None and noise.real_prob > 0 and rng.random() < noise.real_prob:
        real, (bmaj, bmin, bpa), origin = backgrounds.draw(rng, (cfg.field.ny, cfg.field.nx))
        beam = replace(beam, bmaj_arcsec=bmaj * pix, bmin_arcsec=bmin * pix, bpa_deg=bpa)
    elif beam.sampling_pix:
        bmaj = _log_uniform(rng, *beam.sampling_pix)
        bmin = bmaj / rng.uniform(1.0, beam.max_axis_ratio)
        beam = replace(beam, bmaj_arcsec=bmaj * pix, bmin_arcsec=bmin * pix,
                       bpa_deg=float(rng.uniform(0.0, 180.0)))
    if noise.rms_range_ujy:
        noise = replace(noise, rms_ujy=_log_uniform(rng, *noise.rms_range_ujy))
    return replace(cfg, beam=beam, noise=noise), real, origin


def simulate_field(cfg: SimConfig, rng: np.random.Generator, *, image_id: str = "field",
                   keep_model: bool = False, backgrounds: RealNoiseBank | None = None
                   ) -> SimField:
    """Simulate one field and its ground truth.

    Parameters
    ----------
    cfg : SimConfig
        What to simulate.
    rng : numpy.random.Generator
        The only source of randomness (same state -> identical field).
    image_id : str
        Used in object names and ``meta["image_id"]``.
    keep_model : bool
        Also return the noiseless sky model.
    backgrounds : RealNoiseBank, optional
        Real noise for ``noise.real_prob`` of the fields (loaded once per dataset).

    Returns
    -------
    SimField
    """
    cfg, real_noise, noise_origin = realise(cfg, rng, backgrounds)
    shape = (cfg.field.ny, cfg.field.nx)
    pix = cfg.field.pixel_arcsec
    bmaj_px, bmin_px = cfg.beam.bmaj_arcsec / pix, cfg.beam.bmin_arcsec / pix
    beam_cov = gb.covariance(bmaj_px, bmin_px, cfg.beam.bpa_deg)
    beam_area = gb.area(beam_cov)
    rms = cfg.noise.rms_ujy * 1e-6
    level = cfg.mask_threshold_sigma * rms
    header = make_header(cfg.field, cfg.beam, shape=shape)
    wcs = celestial_wcs(header)
    valid = nan_border_mask(shape, cfg.nan_border, rng) if cfg.nan_border.enabled else None

    compact = _draw_compact(cfg, rng, shape, valid, beam_cov, rms, bmaj_px)
    extended = _draw_extended(cfg, rng, shape, valid, beam_cov, rms, bmaj_px, level)
    hosts = [o for o in compact if o.extra["host"]]
    spurious = _draw_spurious(cfg, rng, shape, hosts, beam_cov, bmaj_px, level)
    objects = compact + extended + spurious

    model = np.zeros(shape, dtype=np.float32)
    for obj in objects:
        obj.stamp.add_into(model)
        if obj.mask is None:
            obj.mask, obj.nislands = _footprint(obj.stamp, level, valid)
    objects = [o for o in objects if o.nislands > 0]

    if real_noise is not None:
        image = real_noise * np.float32(rms)
    else:
        image = correlated_noise(shape, beam_cov, rms, rng, tail_df=cfg.noise.tail_df)
    if cfg.noise.stripes_prob > 0 and rng.random() < cfg.noise.stripes_prob:
        amp = rng.uniform(*cfg.noise.stripes_rms) * rms
        image += smooth_background(shape, amp, 2.0 * bmaj_px, rng, n_modes=int(rng.integers(1, 4)))
    bkg = 0.0
    if cfg.noise.background_ujy > 0:
        background = smooth_background(shape, cfg.noise.background_ujy * 1e-6,
                                       cfg.noise.background_scale_arcsec / pix, rng)
        bkg = float(background.mean())
        image += background
    image += model
    if valid is not None:
        image[~valid] = np.nan

    spur_union = None
    if any(o.category == "spurious" for o in objects):
        spur_union = np.zeros(shape, dtype=bool)
        for o in objects:
            if o.category == "spurious":
                spur_union[o.stamp.slices] |= o.mask
    ra, dec = pixel_to_sky(wcs, np.array([o.x for o in objects]),
                           np.array([o.y for o in objects]))
    index = {id(o): k for k, o in enumerate(objects)}
    annotations = []
    for k, obj in enumerate(objects):
        ann = _annotate(obj, k, image_id, float(ra[k]), float(dec[k]), shape, valid,
                        spur_union, rms, beam_area, pix, cfg)
        host = obj.extra.get("host_obj")
        if host is not None and id(host) in index:
            ann.attrs["host"] = f"{image_id}_{index[id(host)]:05d}"
        annotations.append(ann)
    meta = {
        "image_id": image_id, "telescope": cfg.field.telescope, "rms": rms, "bkg": bkg,
        "bmaj": cfg.beam.bmaj_arcsec, "bmin": cfg.beam.bmin_arcsec, "bpa": cfg.beam.bpa_deg,
        "dx": pix, "dy": pix, "nx": shape[1], "ny": shape[0], "freq_hz": cfg.field.freq_hz,
        "ra_deg": cfg.field.ra_deg, "dec_deg": cfg.field.dec_deg,
        "mask_threshold_sigma": cfg.mask_threshold_sigma, "noise_origin": noise_origin,
    }
    if not keep_model:
        return SimField(image, header, annotations, meta, valid=valid)
    return SimField(image, header, annotations, meta, model, valid, [o.stamp for o in objects])


def _annotate(obj: _Object, k: int, image_id: str, ra: float, dec: float,
              shape: tuple[int, int], valid: np.ndarray | None, spur_union: np.ndarray | None,
              rms: float, beam_area: float, pix: float, cfg: SimConfig) -> Annotation:
    """Turn a rendered object into an Annotation with its ground-truth properties."""
    data, mask = obj.stamp.data, obj.mask
    peak = obj.peak if obj.peak is not None else float(data.max())
    flux = obj.flux if obj.flux is not None else float(data.sum()) / beam_area
    major, minor, pa = obj.shape_px if obj.shape_px is not None else _moment_shape(data, mask)
    ys = np.flatnonzero(mask.any(axis=1))
    xs = np.flatnonzero(mask.any(axis=0))
    ly0, ly1, lx0, lx1 = ys[0], ys[-1] + 1, xs[0], xs[-1] + 1
    y0, x0 = obj.stamp.y0 + ly0, obj.stamp.x0 + lx0
    bbox = (y0, x0, obj.stamp.y0 + ly1, obj.stamp.x0 + lx1)
    cropped = mask[ly0:ly1, lx0:lx1]
    border = bool(bbox[0] == 0 or bbox[1] == 0 or bbox[2] == shape[0] or bbox[3] == shape[1])
    if valid is not None and not border:
        blank = ~valid[obj.stamp.slices]
        if blank.any():
            grown = ndimage.binary_dilation(mask, structure=ISLAND_STRUCTURE)
            border = bool((grown & blank).any())
    mixed = False
    if spur_union is not None and obj.category != "spurious":
        mixed = bool((spur_union[obj.stamp.slices] & mask).any())
    attrs: dict[str, Any] = {
        "name": f"{image_id}_{k:05d}", "family": obj.family,
        "x": float(obj.x), "y": float(obj.y), "ra": ra, "dec": dec,
        "peak_jyb": float(peak), "flux_jy": float(flux), "snr": float(peak / rms),
        "major_arcsec": major * pix, "minor_arcsec": minor * pix, "pa_deg": pa,
        "nislands": int(obj.nislands), "border": border, "sidelobe_mixed": mixed,
        "maxsize_beam": major * pix / cfg.beam.bmaj_arcsec,
        "minsize_beam": minor * pix / cfg.beam.bmaj_arcsec,
    }
    if "intrinsic_px" in obj.extra:
        imaj, imin, ipa = obj.extra["intrinsic_px"]
        attrs.update(intrinsic_major_arcsec=imaj * pix, intrinsic_minor_arcsec=imin * pix,
                     intrinsic_pa_deg=ipa)
    if "las_px" in obj.extra:
        attrs["las_arcsec"] = obj.extra["las_px"] * pix
    if "amplitude_fraction" in obj.extra:
        attrs["amplitude_fraction"] = float(obj.extra["amplitude_fraction"])
    return Annotation(obj.category, bbox, cropped, attrs)
