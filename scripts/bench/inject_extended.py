#!/usr/bin/env python
"""Extended sources injected into real images: the "Extended sources injected into real
images" table of docs/benchmarks.md.

Radio galaxies and diffuse sources of the simulator's families (FR I, FR II, diffuse, wide-angle
tail, head-tail, double-double: :mod:`caesar_mrcnn.sim.families`, rendered by
:func:`caesar_mrcnn.sim.stamps.render` from a :class:`~caesar_mrcnn.sim.stamps.ComponentList`
with the image's own beam) are injected into every real image whose header gives a restoring
beam, where the sky is clear; caesar-mrcnn, Aegean and PyBDSF then run on the injected copies
(prepared for every finder alike by :func:`caesar_mrcnn.evaluation.compare_real.prepare_image`)
and each finder's catalogue is scored by the footprints of the injected sources. Real noise,
real sidelobes, real beams: the grouping of a radio galaxy into one catalogue entry and the
flux density of extended emission, against an exact truth.

What is injected, per image (``--per-image`` at most, fewer where the clear sky is small):

* the families in turn, in an order drawn per image, with a largest angular size (LAS, the
  family's size parameter) log-uniform from 3 beam FWHM to what the clear sky can still hold,
  any position angle, and the simulator's connected or split variant (one island at 3 rms, or
  several) with even odds;
* the brightness chosen so that the model's peak after convolution is 10 to 300 times the local
  rms (log-uniform; the rms of :func:`caesar_mrcnn.measure.background.background_grid`); the
  integrated flux density is then the sum of the model's Gaussian components, exact;
* placed at random where no pixel of the footprint (the model above 3 local rms) grown by 3
  beam FWHM is 3 rms above the background, blank or outside the image, nor within 3 beam FWHM
  of another injection's footprint, and where at least 99 % of the flux density lands on the
  image's finite pixels (the faint wings of a large source reach well past its footprint).

Per finder, per family, per number of islands of the footprint and per bin of peak SNR:

* **found**: some entry's position lies on the source's footprint grown by one beam FWHM;
* **one entry**: exactly one entry lies on it (a radio galaxy as one catalogue entry); for
  caesar-mrcnn also the fraction whose one entry has an extended class (``extended`` or
  ``extended-multisland``);
* **flux**: the sum of the integrated flux densities of every entry lying on it over the true
  integrated flux density, median and scatter (1.4826 MAD of log10, dex) over the found sources;
  beside them the same for the noiseless model's flux above 3 local rms, what a sum of the
  pixels down to 3 rms would give without noise (a large source's faint wings lie below it).

Aegean's entries are its components, PyBDSF's its sources (``srl``). caesar-mrcnn is scored by
its catalogue entries and, for found and the flux, once more by its components (the component
table: each entry's fitted Gaussians or mask islands), which counts an entry's parts that lie
on the source when the entry's own position does not.

    python scripts/bench/inject_extended.py --seed 1 [--per-image 5] [--out DIR] [--cores 1]

``--seed 1,2,3`` injects one independent set per seed into its own copy of each image and pools
them. ``--reuse FINDERS`` reads the catalogues that a previous run wrote under ``--out`` for the
very same injected images (same seed, same pixels) instead of running those finders again.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import tempfile
import zlib
from pathlib import Path

import numpy as np
from astropy.table import Table, vstack
from scipy import ndimage

from caesar_mrcnn.evaluation import compare_real as cr
from caesar_mrcnn.evaluation.finders import CAESAR_ALL, CAESAR_COMPONENTS, entries_of
from caesar_mrcnn.evaluation.injection import (
    add_injection_arguments,
    busy_pixels,
    caesar_config,
    chosen_images,
    footprint_labels,
    run_finders_cached,
    score_footprints,
    sources_of_entries,
    summarise_footprints,
    write_injected,
)
from caesar_mrcnn.io.atomic import atomic_open, make_output_folder
from caesar_mrcnn.measure.deconvolve import beam_cov_pix
from caesar_mrcnn.measure.ellipse import FWHM_PER_SIGMA
from caesar_mrcnn.sim import families
from caesar_mrcnn.sim.stamps import ComponentList, Stamp, render

SNR_RANGE = (10.0, 300.0)
"""Peak brightness after convolution, in local rms (log-uniform)."""
SNR_BINS = (("10–30", 0.0, 30.0), ("30–100", 30.0, 100.0), ("100–300", 100.0, math.inf))
LAS_MIN_BEAMS = 3.0
"""Smallest largest angular size drawn (beam FWHM): smaller ones are nearly compact."""
FOOTPRINT_NSIGMA = 3.0
"""The footprint: the model above this many local rms (the simulator's mask threshold)."""
MARGIN_BEAMS = 3.0
"""Clear sky required around a footprint, and between footprints (beam FWHM)."""
GROW_BEAMS = 1.0
"""An entry lies on a source within this many beam FWHM of its footprint."""
FLOOR_FRACTION = 0.01
"""Stamps are rendered down to this fraction of the local rms (as the simulator does)."""
IN_IMAGE = 0.99
"""Fraction of a source's flux density that must land on finite pixels of the image."""
DRAWS, POSITIONS = 20, 5
"""Shapes tried per injection, and positions tried per shape, before the image is full."""


def _extent_px(mask: np.ndarray) -> float:
    """Largest distance between two pixels of ``mask`` (pixel centres), plus one pixel."""
    edge = mask & ~ndimage.binary_erosion(mask)
    pts = np.argwhere(edge).astype(float)
    if len(pts) > 2000:  # a long boundary: every pair would be slow, a sample is close enough
        pts = pts[:: int(math.ceil(len(pts) / 2000))]
    d = np.sqrt(((pts[:, None, :] - pts[None, :, :]) ** 2).sum(-1))
    return float(d.max()) + 1.0


def _build(family: str, seed: int, x: float, y: float, las: float, pa: float, peak: float,
           beam_px: float, level: float, connected: bool, bcov: np.ndarray,
           shape: tuple[int, int], floor: float):
    """One source of ``family`` rendered on the image grid: its components and its stamp.
    The same ``seed`` gives the same shape whatever ``peak``: the builders draw the same
    numbers in the same order."""
    cl = ComponentList(bcov)
    families.BUILDERS[family](cl, np.random.default_rng(seed), x, y, las, pa, peak, beam_px,
                              level, connected)
    comps = cl.freeze()
    return comps, render(comps, shape, floor)


def plan_extended(path: Path, seed: int, per_image: int):
    """What to inject into one image, where.

    The draws of each image depend on the seed and the image's name only, so that the
    injections into one image do not change with the set of images.

    Returns
    -------
    plan : astropy.table.Table
        One row per source (pixels, Jy/beam, Jy, arcsec; ``snr`` the model's peak over the
        local rms there).
    stamps : list of Stamp
        Each source's noiseless model.
    footprints : list of (y0, x0, mask)
        Each source's footprint (model above :data:`FOOTPRINT_NSIGMA` local rms).
    """
    from caesar_mrcnn.io.fits import read_image

    rng = np.random.default_rng([seed, zlib.crc32(path.name.encode())])
    img = read_image(path)
    data = img.data.astype(np.float64)
    shape = data.shape
    area = img.beam_area_pix
    busy, _, rms = busy_pixels(data)
    finite = np.isfinite(data)
    bcov0 = beam_cov_pix(img.beam, img.wcs, shape[1] / 2, shape[0] / 2, area)
    fwhm = float(math.sqrt(np.linalg.eigvalsh(bcov0)[1]) * FWHM_PER_SIGMA)
    margin = MARGIN_BEAMS * fwhm
    pix_arcsec = math.sqrt(img.pixel_scale_deg[0] * img.pixel_scale_deg[1]) * 3600

    def clearance(blocked: np.ndarray) -> np.ndarray:
        # distance to the nearest busy pixel, the image's edge counting as busy
        padded = np.pad(~blocked, 1, constant_values=False)
        return ndimage.distance_transform_edt(padded)[1:-1, 1:-1]

    blocked = busy.copy()
    dist = clearance(blocked)
    order = [str(f) for f in rng.permutation(families.FAMILIES)]
    rows, stamps, footprints = [], [], []
    for slot in range(per_image):
        family = order[slot % len(order)]
        placed = None
        for _ in range(DRAWS):
            # the footprint reaches about a beam past the components; LAS is what is left
            las_hi = 2.0 * (float(dist.max()) - margin - fwhm)
            if las_hi < LAS_MIN_BEAMS * fwhm:
                break
            las = math.exp(rng.uniform(math.log(LAS_MIN_BEAMS * fwhm), math.log(las_hi)))
            pa = float(rng.uniform(0.0, 180.0))
            connected = bool(rng.random() < 0.5)
            snr = math.exp(rng.uniform(*np.log(SNR_RANGE)))
            shape_seed = int(rng.integers(2**63))
            cand = np.argwhere(dist > las / 2 + margin)
            for _ in range(POSITIONS if len(cand) else 0):
                r, c = cand[int(rng.integers(len(cand)))]
                x, y = c + rng.uniform(-0.5, 0.5), r + rng.uniform(-0.5, 0.5)
                local = float(rms[r, c])
                bcov = beam_cov_pix(img.beam, img.wcs, x, y, area)
                peak = snr * local
                for _ in range(4):
                    # components overlap: scale the nominal peak until the model's is the target
                    comps, stamp = _build(family, shape_seed, x, y, las, pa, peak, fwhm,
                                          FOOTPRINT_NSIGMA * local, connected, bcov, shape,
                                          FLOOR_FRACTION * local)
                    if stamp is None:
                        break
                    top = float(stamp.data.max())
                    if abs(top / (snr * local) - 1) < 0.02:
                        break
                    peak *= snr * local / top
                if stamp is None:
                    continue
                foot = stamp.data > FOOTPRINT_NSIGMA * rms[stamp.slices]
                if not foot.any() or dist[stamp.slices][foot].min() <= margin:
                    continue
                # the faint wings of a large source may reach past the edge or onto blank
                # pixels, where its flux would be lost to every finder: keep it all
                if stamp.data[finite[stamp.slices]].sum() / area < IN_IMAGE * comps.total_flux:
                    continue
                placed = (x, y, las, pa, connected, comps, stamp, foot)
                break
            if placed is not None:
                break
        if placed is None:
            break
        x, y, las, pa, connected, comps, stamp, foot = placed
        blocked[stamp.slices] |= foot
        dist = clearance(blocked)
        iy, ix = np.unravel_index(int(np.argmax(stamp.data)), stamp.data.shape)
        top = float(stamp.data[iy, ix])
        rms_peak = float(rms[stamp.y0 + iy, stamp.x0 + ix])
        ra, dec = img.wcs.pixel_to_world_values(x, y)
        extent = _extent_px(foot)
        rows.append(dict(image=path.name, seed=seed, family=family, connected=connected,
                         x=float(x), y=float(y), ra=float(ra), dec=float(dec),
                         las_beams=las / fwhm, extent_beams=extent / fwhm,
                         extent_arcsec=extent * pix_arcsec, pa=pa,
                         n_islands=int(ndimage.label(foot, structure=np.ones((3, 3)))[1]),
                         n_gauss=len(comps.x), foot_pix=int(foot.sum()),
                         snr=top / rms_peak, peak=top, rms=rms_peak, flux=comps.total_flux,
                         flux_3rms=float(stamp.data[foot].sum()) / area,
                         beam_px=fwhm, beam_arcsec=fwhm * pix_arcsec))
        stamps.append(stamp)
        footprints.append((stamp.y0, stamp.x0, foot))
    return (Table(rows=rows) if rows else Table()), stamps, footprints


def inject(path: Path, stamps: list[Stamp], out: Path) -> Path:
    """A copy of ``path`` with the planned models added to its pixels."""
    def add(img: np.ndarray) -> None:
        for stamp in stamps:
            img[stamp.slices] += stamp.data

    return write_injected(path, out, add)


def score_image(plan: Table, footprints, im: cr.ImageInput, finder: str,
                catalog: Table) -> list[Table]:
    """The per-source scores of one finder's catalogue of one injected image: one table per
    finder row (caesar-mrcnn: its entries, and its components)."""
    beam_px = float(plan["beam_px"][0])
    labels = footprint_labels(im.valid.shape, footprints, GROW_BEAMS * beam_px)
    rows = [(finder, catalog, False)]
    if finder == "caesar-mrcnn":
        comps = catalog[np.asarray(catalog["level"], str) == "component"]
        rows = [(CAESAR_ALL, entries_of(catalog), True), (CAESAR_COMPONENTS, comps, True)]
    out = []
    for label, cat, classes in rows:
        if len(cat):
            x, y = im.wcs.world_to_pixel_values(np.asarray(cat["ra"], float),
                                                np.asarray(cat["dec"], float))
        else:
            x = y = np.zeros(0)
        on = sources_of_entries(labels, x, y)
        t = score_footprints(len(plan), on, np.asarray(cat["flux_jy"], float),
                             np.asarray(cat["class"], str) if classes else None)
        scored = plan.copy()
        scored.add_column(label, name="finder", index=0)
        for name in t.colnames:
            scored[name] = t[name]
        with np.errstate(invalid="ignore", divide="ignore"):
            scored["ratio"] = np.where(t["found"], t["flux_sum"] / plan["flux"], np.nan)
        out.append(scored)
    return out


def samples_of(per_source: Table) -> list[tuple[str, np.ndarray]]:
    """The selections the summary reports: all, each family, one island or several, each
    bin of peak SNR."""
    fam = np.asarray(per_source["family"], str)
    isl = np.asarray(per_source["n_islands"], int)
    snr = np.asarray(per_source["snr"], float)
    out = [("all", np.ones(len(per_source), bool))]
    out += [(f, fam == f) for f in families.FAMILIES if (fam == f).any()]
    out += [("1 island", isl == 1), ("2+ islands", isl >= 2)]
    out += [(f"SNR {name}", (snr >= lo) & (snr < hi)) for name, lo, hi in SNR_BINS]
    return out


MODEL = "model above 3 rms"
"""Summary row of the noiseless model's flux density above 3 local rms (what a sum of the
pixels down to 3 rms would give without noise), over the true flux density."""

SHORT = {CAESAR_ALL: "c", CAESAR_COMPONENTS: "k", "aegean": "A", "pybdsf": "P", MODEL: "m"}
LEGEND = ("c: caesar-mrcnn's catalogue entries (in brackets: the fraction whose one entry has "
          "an extended class), k: its components, A: Aegean's components, P: PyBDSF's sources, "
          "m: the noiseless model above 3 local rms (what a sum of the pixels down to 3 rms would "
          "give without noise)")


def with_model(per_source: Table) -> Table:
    """``per_source`` with one :data:`MODEL` row per source, its flux above 3 rms."""
    first = per_source["finder"] == per_source["finder"][0]
    model = per_source[first].copy()
    model["finder"] = MODEL
    model["n_on"], model["found"], model["one_entry"] = 1, True, True
    model["one_class"] = ""
    model["flux_sum"] = model["flux_3rms"]
    return vstack([per_source, model])


def markdown(summary: Table) -> str:
    """One row per sample of sources; each cell gives every finder row's value, in the order
    of the column's heading (:data:`SHORT`, :data:`LEGEND`)."""
    labels = list(dict.fromkeys(np.asarray(summary["finder"], str)))
    get = {(str(r["sample"]), str(r["finder"])): r for r in summary}
    grouping = [f for f in labels if f not in (CAESAR_COMPONENTS, MODEL)]
    cols = [("found", "found", ".2f", [f for f in labels if f != MODEL]),
            ("one entry", "one_entry", ".2f", grouping),
            ("entries per found source", "entries_mean", ".1f", grouping),
            ("S_sum/S_true median", "flux_median", ".3f", labels),
            ("scatter (dex)", "flux_scatter_dex", ".3f", labels)]

    def num(v: float, fmt: str) -> str:
        return "–" if not np.isfinite(v) else format(v, fmt)

    def cell(sample: str, key: str, fmt: str, members: list[str]) -> str:
        parts = []
        for f in members:
            r = get[(sample, f)]
            text = num(r[key], fmt)
            if key == "one_entry" and np.isfinite(r["one_extended"]):
                text += f" ({num(r['one_extended'], fmt)})"
            parts.append(text)
        return " / ".join(parts)

    head = "| sources | n | " + " | ".join(
        f"{title} ({' / '.join(SHORT.get(f, f) for f in members)})"
        for title, _, _, members in cols) + " |"
    lines = [head, "|" + "---|" * (len(cols) + 2)]
    for sample in dict.fromkeys(np.asarray(summary["sample"], str)):
        n = get[(sample, labels[0])]["n"]
        lines.append(f"| {sample} | {n} | "
                     + " | ".join(cell(sample, k, fmt, m) for _, k, fmt, m in cols) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_injection_arguments(p, what="families, shapes, positions, fluxes", per_image=5,
                            out="inject_extended")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    paths, skipped = chosen_images(args, p)
    finders = args.finders.split(",")
    reuse = set(args.reuse.split(",")) - {""}
    seeds = [int(v) for v in str(args.seed).split(",")]
    tag = "ext"
    out = make_output_folder(args.out)
    cfg = caesar_config(args, p)
    with tempfile.TemporaryDirectory(prefix="caesar-inject-ext-") as tmp:
        plans, feet, inputs = [], [], []
        for seed, path in ((s, q) for s in seeds for q in paths):
            plan, stamps, footprints = plan_extended(path, seed, args.per_image)
            if not len(plan):
                print(f"{path.name}: no clear sky for an extended source, skipped",
                      file=sys.stderr)
                continue
            # the file name carries the injected pixels' checksum: a cached catalogue is
            # reused only for the very same injections
            digest = zlib.crc32(b"".join(st.data.tobytes() + np.int64([st.y0, st.x0]).tobytes()
                                         for st in stamps))
            injected = inject(path, stamps, Path(tmp) / f"inj_s{seed}_{digest:08x}_{path.name}")
            plans.append(plan)
            feet.append(footprints)
            inputs.append(cr.prepare_image(injected, None, tmp))
            print(f"{path.name}: {len(plan)} injected (seed {seed}: "
                  f"{', '.join(plan['family'])})", file=sys.stderr, flush=True)
        runs = run_finders_cached(inputs, finders, out, tag, reuse, args.weights, cfg,
                                  args.cores)
    # every finder is scored on the same injections: the images where all of them ran
    failed = {run.image for run in runs if not run.ran}
    for run in runs:
        if not run.ran:
            print(f"{run.finder} on {run.image.name}: {run.status}", file=sys.stderr)
    scored: list[Table] = []
    for run in runs:
        if run.image in failed:
            continue
        k = [im.path for im in inputs].index(run.image)
        scored += score_image(plans[k], feet[k], inputs[k], run.finder, run.catalog)
    per_source = vstack(scored)
    per_source.write(out / "sources.ecsv", overwrite=True)
    scored_model = with_model(per_source)
    summary = summarise_footprints(scored_model, samples_of(scored_model),
                                   classifying=(CAESAR_ALL,),
                                   flux_only=(CAESAR_COMPONENTS, MODEL))
    summary.write(out / "summary.ecsv", overwrite=True)
    used = [pl for pl, im in zip(plans, inputs) if im.path not in failed]
    truth = vstack(used)
    n_images = len({im.path.name.split("_", 3)[3] for im in inputs if im.path not in failed})
    left_out = [*sorted({f"{im.path.name.split('_', 3)[3]} (a finder failed)"
                         for im in inputs if im.path in failed}),
                *(f"{n} (galactic WCS)" for n in skipped)]
    ext = np.asarray(truth["extent_beams"], float)
    text = (f"{len(truth)} extended sources injected into {n_images} images, seed "
            f"{','.join(map(str, seeds))}; footprint LAS {ext.min():.1f}–{ext.max():.1f} beams "
            f"(median {np.median(ext):.1f}), {int((truth['n_islands'] > 1).sum())} of several "
            f"islands at 3 rms"
            + (f" (left out: {', '.join(left_out)})" if left_out else "")
            + "\n\n" + markdown(summary) + "\n\n" + LEGEND + ".")
    with atomic_open(out / "inject_extended.md", "w") as fh:
        fh.write(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
