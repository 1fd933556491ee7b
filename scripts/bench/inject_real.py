#!/usr/bin/env python
"""Injection–recovery on real images: the "Injected sources" table of docs/benchmarks.md.

Sources of known flux density are injected into every real image whose header gives a
restoring beam, where no emission is; caesar-mrcnn, Aegean and PyBDSF then run on the injected
images (prepared for every finder alike by
:func:`caesar_mrcnn.evaluation.compare_real.prepare_image`), and each finder's catalogue is
matched to the injections. Real noise, real sidelobes, real beams: truth where no catalogue
gives it.

What is injected, per image (``--per-image`` at most, fewer where the clear sky is small):

* positions drawn at random on pixels farther than 4 beam FWHM from any pixel 3 rms above the
  background and from the blank pixels and edges, at least 6 beam FWHM from one another;
* half point sources, half elliptical Gaussians with an intrinsic major-axis FWHM of 0.5 to 3
  beam FWHM (log-uniform), axis ratio 0.5 to 1 and any position angle, convolved with the beam;
* peak brightness (after convolution) of 3 to 300 times the local rms (log-uniform), the rms of
  :func:`caesar_mrcnn.measure.background.background_grid`.

Per bin of injected peak SNR and finder: completeness (matched within one beam FWHM, or half the
source's major axis when larger), measured over true integrated flux density (median, and its
scatter as 1.4826 MAD of log10, in dex), the position offset in units of the error Condon (1997)
expects for the true source (``sqrt((dM/sM)^2 + (dm/sm)^2)`` along the source's axes: its median
is 1.18 for errors that match), and measured over true major-axis FWHM (convolved).
caesar-mrcnn is scored twice: by its catalogue entries, and by its entries together with their
components (the component table: each entry's fitted Gaussians or mask islands), which is what
Aegean's catalogue lists; a source the detector groups with a neighbour into one entry is then
found, placed and measured by its own component.

    python scripts/bench/inject_real.py --seed 1 [--per-image 30] [--out DIR] [--cores 1]

``--seed 1,2,3`` injects one independent set per seed into its own copy of each image and pools
them: with 30 positions per image at most, one seed gives ~50 sources per SNR bin, whose median
flux ratio has a sampling error of a few per cent at SNR 5–10.

Beside the injections (``--no-published`` skips it), every finder runs on the two LoTSS-DR1
cutouts as they are, and its fluxes of the published single-Gaussian sources are compared with
the published total flux densities; a source within ``EDGE_BEAMS`` beam FWHM of a cutout's
edge is left out (the published value is measured on the full mosaic, part of the source lies
outside the cutout).
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
from caesar_mrcnn.evaluation.finders import CAESAR_COMPONENTS
from caesar_mrcnn.evaluation.injection import (
    add_injection_arguments,
    busy_pixels,
    caesar_config,
    chosen_images,
    default_real_dir,
    robust_dex,
    run_finders_cached,
    write_injected,
)
from caesar_mrcnn.io.atomic import atomic_open, make_output_folder
from caesar_mrcnn.measure.deconvolve import beam_cov_pix
from caesar_mrcnn.measure.ellipse import FWHM_PER_SIGMA, ellipse_from_covariance
from caesar_mrcnn.measure.gaussfit import condon_shape_errors
from caesar_mrcnn.measure.sky import sky_jacobian

SNR_BINS = (3.0, 5.0, 10.0, 20.0, 50.0, 100.0, 300.0)


def _gaussian_into(img: np.ndarray, x0: float, y0: float, amp: float, cov: np.ndarray) -> None:
    """Add ``amp exp(-d^T cov^-1 d / 2)`` to ``img`` over a box of 6 sigma around ``(x0, y0)``."""
    half = int(math.ceil(6.0 * math.sqrt(np.linalg.eigvalsh(cov)[1])))
    ny, nx = img.shape
    ya, yb = max(int(y0) - half, 0), min(int(y0) + half + 1, ny)
    xa, xb = max(int(x0) - half, 0), min(int(x0) + half + 1, nx)
    yy, xx = np.mgrid[ya:yb, xa:xb]
    dx, dy = xx - x0, yy - y0
    inv = np.linalg.inv(cov)
    q = inv[0, 0] * dx * dx + 2 * inv[0, 1] * dx * dy + inv[1, 1] * dy * dy
    img[ya:yb, xa:xb] += (amp * np.exp(-0.5 * q)).astype(img.dtype)


def plan_injections(path: Path, seed: int, per_image: int) -> Table:
    """Where and what to inject into one image (pixels, Jy/beam, Jy, arcsec).

    The draws of each image depend on the seed and the image's name only, so that the
    injections into one image do not change with the set of images.
    """
    from caesar_mrcnn.io.fits import read_image

    rng = np.random.default_rng([seed, zlib.crc32(path.name.encode())])

    img = read_image(path)
    data = img.data.astype(np.float64)
    shape = data.shape
    area = img.beam_area_pix
    bcov = beam_cov_pix(img.beam, img.wcs, shape[1] / 2, shape[0] / 2, area)
    fwhm = float(math.sqrt(np.linalg.eigvalsh(bcov)[1]) * FWHM_PER_SIGMA)
    busy, _, rms = busy_pixels(data)
    border = np.zeros(shape, bool)
    b = int(math.ceil(4 * fwhm))
    border[:b], border[-b:], border[:, :b], border[:, -b:] = True, True, True, True
    clear = (ndimage.distance_transform_edt(~busy) > 4 * fwhm) & ~border
    cand = np.argwhere(clear)
    rng.shuffle(cand)
    chosen: list[tuple[int, int]] = []
    for r, c in cand:
        if all((r - r0) ** 2 + (c - c0) ** 2 >= (6 * fwhm) ** 2 for r0, c0 in chosen):
            chosen.append((int(r), int(c)))
            if len(chosen) == per_image:
                break
    rows = []
    for r, c in chosen:
        x, y = c + rng.uniform(-0.5, 0.5), r + rng.uniform(-0.5, 0.5)
        point = rng.uniform() < 0.5
        if point:
            intr = np.zeros((2, 2))
        else:
            maj = fwhm * math.exp(rng.uniform(math.log(0.5), math.log(3.0))) / FWHM_PER_SIGMA
            mn = maj * rng.uniform(0.5, 1.0)
            th = rng.uniform(0, math.pi)
            rot = np.array([[math.cos(th), -math.sin(th)], [math.sin(th), math.cos(th)]])
            intr = rot @ np.diag([maj * maj, mn * mn]) @ rot.T
        cov = intr + beam_cov_pix(img.beam, img.wcs, x, y, area)
        local_rms = float(rms[r, c])
        snr = math.exp(rng.uniform(math.log(3.0), math.log(300.0)))
        peak = snr * local_rms
        flux = peak * 2 * math.pi * math.sqrt(np.linalg.det(cov)) / area
        jac = sky_jacobian(img.wcs, np.array([x]), np.array([y]))
        smaj, smin, pa = ellipse_from_covariance(cov[None], jac)
        ra, dec = img.wcs.pixel_to_world_values(x, y)
        rows.append(dict(image=path.name, x=x, y=y, ra=float(ra), dec=float(dec),
                         point=point, snr=snr, peak=peak, flux=flux, rms=local_rms,
                         maj=float(smaj[0]) * 3600 * FWHM_PER_SIGMA,
                         min=float(smin[0]) * 3600 * FWHM_PER_SIGMA, pa=float(pa[0]),
                         beam=math.sqrt(img.beam.bmaj_deg * img.beam.bmin_deg) * 3600,
                         cxx=cov[0, 0], cxy=cov[0, 1], cyy=cov[1, 1]))
    return Table(rows=rows) if rows else Table()


def inject(path: Path, plan: Table, out: Path) -> Path:
    """A copy of ``path`` with the planned Gaussians added to its pixels."""
    def add(img: np.ndarray) -> None:
        for row in plan:
            cov = np.array([[row["cxx"], row["cxy"]], [row["cxy"], row["cyy"]]])
            _gaussian_into(img, row["x"], row["y"], row["peak"], cov)

    return write_injected(path, out, add)


def match(plan: Table, catalog: Table) -> Table:
    """The nearest catalogue entry of each injection within max(beam, major / 2)."""
    n = len(plan)
    found = np.zeros(n, bool)
    klass = np.full(n, "", dtype="U24")
    cols = {k: np.full(n, np.nan) for k in ("m_flux", "m_maj", "d_east", "d_north")}
    if len(catalog):
        cra, cdec = np.asarray(catalog["ra"], float), np.asarray(catalog["dec"], float)
        for i, row in enumerate(plan):
            cosd = math.cos(math.radians(row["dec"]))
            de = ((cra - row["ra"] + 180) % 360 - 180) * cosd * 3600
            dn = (cdec - row["dec"]) * 3600
            d = np.hypot(de, dn)
            d[~np.isfinite(d)] = np.inf
            j = int(np.argmin(d))
            if d[j] <= max(row["beam"], row["maj"] / 2):
                found[i] = True
                cols["m_flux"][i] = catalog["flux_jy"][j]
                cols["m_maj"][i] = catalog["maj_arcsec"][j]
                cols["d_east"][i], cols["d_north"][i] = de[j], dn[j]
                klass[i] = str(catalog["class"][j])
    out = plan.copy()
    out["found"] = found
    out["m_class"] = klass
    for k, v in cols.items():
        out[k] = v
    return out


def normalised_offset(t: Table) -> np.ndarray:
    """Offset over Condon's expected error along the true source's axes (dimensionless)."""
    pos_maj, pos_min, _, _, _ = condon_shape_errors(
        np.asarray(t["snr"]), np.asarray(t["maj"]), np.asarray(t["min"]), np.asarray(t["beam"]))
    pa = np.radians(np.asarray(t["pa"], float))
    de, dn = np.asarray(t["d_east"]), np.asarray(t["d_north"])
    along = de * np.sin(pa) + dn * np.cos(pa)
    across = de * np.cos(pa) - dn * np.sin(pa)
    return np.hypot(along / pos_maj, across / pos_min)


def summarise(matched: dict[str, Table]) -> Table:
    """One row per finder and SNR bin."""
    rows = []
    for finder, t in matched.items():
        for lo, hi in zip(SNR_BINS[:-1], SNR_BINS[1:]):
            b = t[(t["snr"] >= lo) & (t["snr"] < hi)]
            f = b[b["found"]]
            ratio = np.asarray(f["m_flux"] / f["flux"], float)
            ok = np.isfinite(ratio)
            size = np.asarray(f["m_maj"] / f["maj"], float)
            off = normalised_offset(f) if len(f) else np.zeros(0)
            rows.append(dict(finder=finder, snr=f"{lo:g}–{hi:g}", n=len(b),
                             completeness=len(f) / len(b) if len(b) else math.nan,
                             flux_median=float(np.median(ratio[ok])) if ok.any() else math.nan,
                             flux_scatter_dex=robust_dex(ratio[ok]),
                             offset_median=(float(np.nanmedian(off)) if np.isfinite(off).any()
                                            else math.nan),
                             size_median=(float(np.nanmedian(size)) if np.isfinite(size).any()
                                          else math.nan)))
    return Table(rows=rows)


def markdown(summary: Table) -> str:
    head = ("| finder | injected SNR | n | completeness | S_meas/S_true median | scatter (dex) "
            "| offset / Condon σ (median) | major axis meas/true |")
    lines = [head, "|" + "---|" * 8]
    for r in summary:
        lines.append(f"| {r['finder']} | {r['snr']} | {r['n']} | {r['completeness']:.2f} "
                     f"| {r['flux_median']:.3f} | {r['flux_scatter_dex']:.3f} "
                     f"| {r['offset_median']:.2f} | {r['size_median']:.2f} |")
    return "\n".join(lines)


LOTSS_IMAGES = ("fields/lotss_dr1_P205+55_cutout400.fits",
                "fields/lotss_dr1_P218+55_cutout200.fits")
LOTSS_CATALOG = "fields/lotss_dr1_P205+55_P218+55.srl.fits"


EDGE_BEAMS = 2.0
"""A published source whose centre lies within this many beam FWHM of a cutout's edge is left
out of the comparison: part of it lies outside the cutout, where no finder can measure it."""


def clear_of_edge(ref: Table, wcs, valid: np.ndarray, margin_pix: float) -> np.ndarray:
    """Rows of ``ref`` farther than ``margin_pix`` pixels from the image's edge and blanks."""
    from scipy import ndimage

    from caesar_mrcnn.evaluation.reference import pixel_indices

    if not len(ref):
        return np.zeros(0, bool)
    ix, iy, ok = pixel_indices(ref, wcs, valid.shape)
    depth = ndimage.distance_transform_edt(np.pad(valid, 1))[1:-1, 1:-1]
    ok[ok] = depth[iy[ok], ix[ok]] > margin_pix
    return ok


PUBLISHED_SNR_SPLIT = 10.0
"""Published peak SNR (``Peak_flux / Isl_rms``) that splits the within-20 % fraction in two:
under it the published fluxes carry PyBDSF's own bias (see the injections)."""


def published_fluxes(real: Path, runs_of, tmp: str) -> Table:
    """Every finder on the LoTSS-DR1 cutouts (no injection) against the published total flux
    densities of the single-Gaussian (``S_Code == "S"``) sources, matched within one beam;
    sources within ``EDGE_BEAMS`` beams of a cutout's edge are left out."""
    from astropy import units as u

    from caesar_mrcnn.evaluation.reference import inside_image

    cat = Table.read(real / LOTSS_CATALOG)
    cat = cat[np.asarray(cat["S_Code"], str) == "S"]
    ref = Table({"ra": np.asarray(cat["RA"], float), "dec": np.asarray(cat["DEC"], float),
                 "flux": cat["Total_flux"].quantity.to_value(u.Jy),
                 "snr": np.asarray(cat["Peak_flux"] / cat["Isl_rms"], float)})
    inputs = [cr.prepare_image(real / im, None, tmp) for im in LOTSS_IMAGES]
    ratios: dict[str, list[float]] = {}
    counts: dict[str, list[int]] = {}
    snrs: dict[str, list[float]] = {}
    for run in runs_of(inputs):
        if not run.ran:
            continue
        im = next(i for i in inputs if i.path == run.image)
        inside = ref[inside_image(ref, im.wcs, im.valid)
                     & clear_of_edge(ref, im.wcs, im.valid,
                                     EDGE_BEAMS * im.beam_arcsec / im.pixel_arcsec)]
        plan = Table({"ra": inside["ra"], "dec": inside["dec"], "flux": inside["flux"],
                      "beam": np.full(len(inside), im.beam_arcsec),
                      "maj": np.zeros(len(inside))})
        m = match(plan, cr.finder_rows(run.finder, run.catalog)[0][1])
        label = cr.finder_rows(run.finder, run.catalog)[0][0]
        ratios.setdefault(label, []).extend(np.asarray(m["m_flux"] / m["flux"])[m["found"]])
        snrs.setdefault(label, []).extend(np.asarray(inside["snr"])[m["found"]])
        c = counts.setdefault(label, [0, 0])
        c[0] += len(m)
        c[1] += int(m["found"].sum())
    rows = []
    for label, r in ratios.items():
        r = np.asarray(r, float)
        bright = np.asarray(snrs[label], float) >= PUBLISHED_SNR_SPLIT

        def within(sel, r=r):
            return float(np.mean(np.abs(r[sel] - 1) <= 0.2)) if sel.any() else math.nan

        rows.append(dict(finder=label, n_reference=counts[label][0], n_matched=counts[label][1],
                         ratio_median=float(np.median(r)) if r.size else math.nan,
                         scatter_dex=robust_dex(r), within_20=within(np.ones(r.size, bool)),
                         n_bright=int(bright.sum()), within_20_bright=within(bright),
                         n_faint=int((~bright).sum()), within_20_faint=within(~bright)))
    return Table(rows=rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_injection_arguments(p, what="positions, shapes, fluxes", per_image=30, out="inject_real")
    p.add_argument("--no-published", action="store_true",
                   help="skip the LoTSS-DR1 published-flux comparison")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    paths, skipped = chosen_images(args, p)
    real = args.real or default_real_dir()
    finders = args.finders.split(",")
    reuse = set(args.reuse.split(",")) - {""}
    seeds = [int(v) for v in str(args.seed).split(",")]
    tag = f"n{args.per_image}"
    out = make_output_folder(args.out)
    cfg = caesar_config(args, p)
    with tempfile.TemporaryDirectory(prefix="caesar-inject-") as tmp:
        plans, inputs = [], []
        for seed, path in ((s, q) for s in seeds for q in paths):
            plan = plan_injections(path, seed, args.per_image)
            if not len(plan):
                print(f"{path.name}: no clear sky, skipped", file=sys.stderr)
                continue
            injected = inject(path, plan, Path(tmp) / f"inj_s{seed}_{path.name}")
            plans.append(plan)
            inputs.append(cr.prepare_image(injected, None, tmp))
            print(f"{path.name}: {len(plan)} injected (seed {seed})", file=sys.stderr,
                  flush=True)

        def runs_of(images):
            return run_finders_cached(images, finders, out, tag, reuse, args.weights, cfg,
                                      args.cores)

        runs = runs_of(inputs)
        published = published_fluxes(real, runs_of, tmp) if not args.no_published else None
    # every finder is scored on the same injections: the images where all of them ran
    failed = {run.image for run in runs if not run.ran}
    for run in runs:
        if not run.ran:
            print(f"{run.finder} on {run.image.name}: {run.status}", file=sys.stderr)
    matched: dict[str, list[Table]] = {}
    for run in runs:
        k = [im.path for im in inputs].index(run.image)
        if run.image in failed:
            continue
        rows = cr.finder_rows(run.finder, run.catalog)[:1]
        if run.finder == "caesar-mrcnn" and "level" in run.catalog.colnames:
            rows.append((CAESAR_COMPONENTS, run.catalog))
        for label, cat in rows:
            matched.setdefault(label, []).append(match(plans[k], cat))
    tables = {f: vstack(ts) for f, ts in matched.items()}
    for f, t in tables.items():
        t.write(out / f"matched_{f.replace(' ', '_').replace('(', '').replace(')', '')}.ecsv",
                overwrite=True)
    summary = summarise(tables)
    summary.write(out / "summary.ecsv", overwrite=True)
    used = [pl for pl, im in zip(plans, inputs) if im.path not in failed]
    n_inj = sum(len(pl) for pl in used)
    n_images = len({im.path.name.split("_", 2)[2] for im in inputs if im.path not in failed})
    text = (f"{n_inj} sources injected into {n_images} images, seed "
            f"{','.join(map(str, seeds))} (left out: "
            + ", ".join([*sorted({f"{im.path.name.split('_', 2)[2]} (a finder failed)"
                                  for im in inputs if im.path in failed}),
                         *(f"{n} (galactic WCS)" for n in skipped)])
            + ")\n\n" + markdown(summary))
    if published is not None:
        published.write(out / "published.ecsv", overwrite=True)
        text += ("\n\nLoTSS-DR1 single-Gaussian sources (S_Code S) in the two cutouts, "
                 f"farther than {EDGE_BEAMS:g} beam FWHM from their edges, measured over "
                 "published Total_flux:\n\n"
                 "| finder | in cutouts | matched | median ratio | scatter (dex) "
                 f"| within 20 % | published SNR ≥ {PUBLISHED_SNR_SPLIT:g}: n, within 20 % "
                 "| under it: n, within 20 % |\n"
                 "|---|---|---|---|---|---|---|---|\n"
                 + "\n".join(f"| {r['finder']} | {r['n_reference']} | {r['n_matched']} "
                             f"| {r['ratio_median']:.3f} | {r['scatter_dex']:.3f} "
                             f"| {r['within_20']:.2f} | {r['n_bright']}, "
                             f"{r['within_20_bright']:.2f} | {r['n_faint']}, "
                             f"{r['within_20_faint']:.2f} |"
                             for r in published))
    with atomic_open(out / "inject_real.md", "w") as fh:
        fh.write(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
