"""The measurement layer against synthetic images of exact truth, in noise correlated like an
image's (autocorrelation = the beam): point, resolved, blended pair, extended.

Tolerances come from the noise: each measured quantity is compared with its truth in units of
the error the catalogue itself reports (Condon 1997), over many noise realisations, so that a
biased measurement or a wrong error fails, and a single lucky draw cannot pass."""

from __future__ import annotations

import math

import numpy as np
import pytest
from astropy.wcs import WCS
from scipy import ndimage

from caesar_mrcnn.data.dataset import Annotation
from caesar_mrcnn.io.beam_shape import Beam
from caesar_mrcnn.measure.background import BackgroundGrid
from caesar_mrcnn.measure.deconvolve import beam_cov_pix, deconvolve
from caesar_mrcnn.measure.ellipse import FWHM_PER_SIGMA, ellipse_from_covariance
from caesar_mrcnn.measure.sky import sky_jacobian
from caesar_mrcnn.measure.sources import measure_catalogs

PIX_ARCSEC = 1.5
BEAM_SIGMA = 1.7  # pixels: a 6" beam sampled by 4 pixels, as LoTSS
BEAM_FWHM = BEAM_SIGMA * FWHM_PER_SIGMA
BEAM_AREA = 2 * math.pi * BEAM_SIGMA ** 2
RMS = 1e-4


def make_wcs(shape):
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---SIN", "DEC--SIN"]
    w.wcs.crval = [205.0, 55.0]
    w.wcs.crpix = [shape[1] / 2, shape[0] / 2]
    w.wcs.cdelt = [-PIX_ARCSEC / 3600, PIX_ARCSEC / 3600]
    return w


def gauss(shape, x0, y0, amp, cov):
    yy, xx = np.mgrid[:shape[0], :shape[1]].astype(float)
    inv = np.linalg.inv(cov)
    dx, dy = xx - x0, yy - y0
    return amp * np.exp(-0.5 * (inv[0, 0] * dx * dx + 2 * inv[0, 1] * dx * dy
                                + inv[1, 1] * dy * dy))


def noise(rng, shape, sigma=BEAM_SIGMA):
    """White noise convolved to an autocorrelation of the beam's (kernel sigma / sqrt 2)."""
    field = ndimage.gaussian_filter(rng.normal(size=shape), sigma / math.sqrt(2), mode="wrap")
    return field * (RMS / field.std())


def cov_of(maj_sigma, min_sigma, theta):
    c, s = math.cos(theta), math.sin(theta)
    rot = np.array([[c, -s], [s, c]])
    return rot @ np.diag([maj_sigma ** 2, min_sigma ** 2]) @ rot.T


BEAM_COV = np.eye(2) * BEAM_SIGMA ** 2
SHAPE = (72, 72)


def run(model, masks, rng, n, classes=None, wcs=None):
    """Measure ``n`` noise realisations of ``model`` with fixed masks."""
    classes = classes or ["compact"] * len(masks)
    anns = [Annotation.from_full_mask(c, m) for c, m in zip(classes, masks)]
    out = []
    for _ in range(n):
        img = (model + noise(rng, model.shape)).astype(np.float32)
        out.append(measure_catalogs(anns, img, model.shape, wcs=wcs, beam_area_pix=BEAM_AREA))
    return out


def robust_std(v):
    v = np.asarray(v, float)
    return 1.4826 * np.median(np.abs(v - np.median(v)))


def pull_checks(measured, truth, errors, what=""):
    """Pulls (measured - truth) / error: centred on 0 and of unit spread, within the
    sampling uncertainty of n draws: 3 times the standard error of a median (1.25 / sqrt n) and
    of the MAD spread (1.17 / sqrt n), i.e. a 0.5-sigma bias or a 50 % wrong error fails at
    n = 60."""
    pulls = (np.asarray(measured) - truth) / np.asarray(errors)
    n = pulls.size
    assert abs(np.median(pulls)) < 3 * 1.25 / math.sqrt(n), (what, np.median(pulls))
    assert abs(robust_std(pulls) - 1) < 3 * 1.17 / math.sqrt(n), (what, robust_std(pulls))


def test_point_source_flux_position_and_errors():
    rng = np.random.default_rng(11)
    x0, y0, snr = 36.3, 35.6, 15.0
    model = gauss(SHAPE, x0, y0, snr * RMS, BEAM_COV)
    wcs = make_wcs(SHAPE)
    res = run(model, [model > 3 * RMS], rng, 60, wcs=wcs)
    t = [r[0][0] for r in res]
    assert all(r["fitted"] for r in t)
    assert np.mean([r["unresolved"] for r in t]) > 0.9
    pull_checks([r["int_flux"] for r in t], snr * RMS, [r["err_int_flux"] for r in t], "flux")
    # a plain least-squares amplitude in noise correlated as the beam: sqrt(4/3) rms (the
    # optimal, noise-weighted estimate would reach the rms itself)
    assert np.median([r["err_int_flux"] for r in t]) == pytest.approx(
        math.sqrt(4 / 3) * RMS, rel=0.1)
    ra0, dec0 = wcs.pixel_to_world_values(x0, y0)
    d_ra = [(r["ra"] - ra0) * math.cos(math.radians(dec0)) * 3600 for r in t]
    d_dec = [(r["dec"] - dec0) * 3600 for r in t]
    pull_checks(d_ra, 0.0, [r["err_ra"] for r in t], "ra")
    pull_checks(d_dec, 0.0, [r["err_dec"] for r in t], "dec")
    # deconvolved: a point; fitted shape: the beam
    unres = [r for r in t if r["unresolved"]]
    assert all(r["dc_maj_fwhm"] == 0 and r["dc_min_fwhm"] == 0 for r in unres)
    assert unres[0]["maj_fwhm"] == pytest.approx(BEAM_FWHM * PIX_ARCSEC, rel=1e-6)


def test_resolved_source_flux_and_deconvolved_size():
    rng = np.random.default_rng(5)
    intrinsic = cov_of(1.5 * BEAM_SIGMA, 1.0 * BEAM_SIGMA, math.radians(120.0))
    cov = intrinsic + BEAM_COV
    snr = 40.0
    model = gauss(SHAPE, 35.8, 36.4, snr * RMS, cov)
    true_flux = snr * RMS * math.sqrt(np.linalg.det(cov)) / BEAM_SIGMA ** 2
    wcs = make_wcs(SHAPE)
    t = [r[0][0] for r in run(model, [model > 3 * RMS], rng, 60, wcs=wcs)]
    assert all(r["fitted"] for r in t) and not any(r["unresolved"] for r in t)
    pull_checks([r["int_flux"] for r in t], true_flux, [r["err_int_flux"] for r in t], "flux")
    maj, mn, pa = ellipse_from_covariance(intrinsic[None], sky_jacobian(wcs, [35.8], [36.4]))
    dc_maj, dc_min = maj[0] * 3600 * FWHM_PER_SIGMA, mn[0] * 3600 * FWHM_PER_SIGMA
    # deconvolution amplifies the fitted axes' errors by theta / theta_dc
    fit_maj, fit_min, _ = ellipse_from_covariance(cov[None], sky_jacobian(wcs, [35.8], [36.4]))
    amp_maj = fit_maj[0] / maj[0]
    amp_min = fit_min[0] / mn[0]
    pull_checks([r["dc_maj_fwhm"] for r in t], dc_maj,
                [r["err_maj_fwhm"] * amp_maj for r in t], "dc_maj")
    pull_checks([r["dc_min_fwhm"] for r in t], dc_min,
                [r["err_min_fwhm"] * amp_min for r in t], "dc_min")
    dpa = [((r["dc_pa"] - pa[0] + 90) % 180) - 90 for r in t]
    assert abs(np.median(dpa)) < 3 * np.median([r["err_pa"] for r in t]) / math.sqrt(len(t))


def test_blended_pair_is_fitted_together_and_reported_per_component():
    rng = np.random.default_rng(3)
    sep = 1.6 * BEAM_FWHM
    (xa, ya), (xb, yb) = (30.0, 36.2), (30.0 + sep, 36.2 + 0.5)
    sa, sb = 40.0 * RMS, 20.0 * RMS
    model = gauss(SHAPE, xa, ya, sa, BEAM_COV) + gauss(SHAPE, xb, yb, sb, BEAM_COV)
    wcs = make_wcs(SHAPE)
    res = run(model, [model > 3 * RMS], rng, 60, wcs=wcs)
    assert all(src["n_components"][0] == 2 for src, _ in res)
    comps = [c for _, c in res]
    assert all(list(c["source_index"]) == [0, 0] and list(c["component"]) == [1, 2]
               for c in comps)
    assert all(c["source"][0] == src["name"][0] for (src, _), c in zip(res, comps))
    for k, (truth, x, y) in enumerate(((sa, xa, ya), (sb, xb, yb))):
        pull_checks([c["int_flux"][k] for c in comps], truth,
                    [c["err_int_flux"][k] for c in comps], f"flux {k + 1}")
        ra0, dec0 = wcs.pixel_to_world_values(x, y)
        pull_checks([(c["ra"][k] - ra0) * math.cos(math.radians(dec0)) * 3600 for c in comps],
                    0.0, [c["err_ra"][k] for c in comps], f"ra {k + 1}")
        pull_checks([(c["dec"][k] - dec0) * 3600 for c in comps], 0.0,
                    [c["err_dec"][k] for c in comps], f"dec {k + 1}")
    # the entry holds the sum of its components
    pull_checks([src["int_flux"][0] for src, _ in res], sa + sb,
                [src["err_int_flux"][0] for src, _ in res], "entry flux")


def test_extended_sources_sum_the_mask_and_each_island():
    rng = np.random.default_rng(8)
    # a two-lobed source (an FR II in miniature) and a lone lobe, classed as extended
    lobe1 = gauss(SHAPE, 22.0, 30.0, 12 * RMS, cov_of(5.0, 2.5, 0.3))
    lobe2 = gauss(SHAPE, 50.0, 42.0, 8 * RMS, cov_of(4.0, 3.0, 1.0))
    model = lobe1 + lobe2
    mask = model > 2 * RMS
    labels, n = ndimage.label(mask)
    assert n == 2
    res = run(model, [mask], rng, 60, classes=["extended-multisland"])
    src = [r[0][0] for r in res]
    assert not any(s["fitted"] for s in src)
    pull_checks([s["int_flux"] for s in src], model[mask].sum() / BEAM_AREA,
                [s["err_int_flux"] for s in src], "extended flux")
    # error of a sum of npix beam-correlated pixels
    assert src[0]["err_int_flux"] == pytest.approx(
        src[0]["local_rms"] * math.sqrt(mask.sum() / BEAM_AREA))
    assert src[0]["local_rms"] == pytest.approx(RMS, rel=0.15)
    comps = [r[1] for r in res]
    assert all(len(c) == 2 and set(c["kind"]) == {"island"} for c in comps)
    # islands brightest first: lobe 1's island, then lobe 2's
    for k, lobe in enumerate((labels == labels[30, 22], labels == labels[42, 50])):
        pull_checks([c["int_flux"][k] for c in comps], model[lobe].sum() / BEAM_AREA,
                    [c["err_int_flux"][k] for c in comps], f"island {k + 1}")
    assert all(c["int_flux"].sum() == pytest.approx(s["int_flux"]) for c, s in zip(comps, src))


def test_one_mask_over_two_sources_lists_each_island_of_the_image():
    """A mask drawn over two point sources 9 beams apart (as when the detector groups a
    neighbour in): one component each, at its source, with its flux; noise islands without
    a 5-sigma seed join the nearest source's part; the parts sum to the entry."""
    rng = np.random.default_rng(11)
    a = gauss(SHAPE, 18.0, 36.0, 40 * RMS, BEAM_COV)
    b = gauss(SHAPE, 54.0, 36.0, 15 * RMS, BEAM_COV)
    mask = np.zeros(SHAPE, bool)
    mask[26:47, 10:63] = True  # one connected region holding both
    res = run(a + b, [mask], rng, 20, classes=["extended-multisland"])
    core = [(np.hypot(*np.subtract(np.mgrid[:72, :72], [[[36]], [[x]]])) < 2 * BEAM_SIGMA)
            for x in (18, 54)]
    for src, comps in res:
        assert len(comps) == 2 and set(comps["kind"]) == {"island"}
        np.testing.assert_allclose(comps["x"], [18.0, 54.0], atol=1.5)
        np.testing.assert_allclose(comps["y"], [36.0, 36.0], atol=1.5)
        assert comps["int_flux"].sum() == pytest.approx(src["int_flux"][0])
        assert comps["peak_flux"][0] == pytest.approx(40 * RMS, rel=0.15)
        assert comps["peak_flux"][1] == pytest.approx(15 * RMS, rel=0.3)
    # the flux near each source lands in its own part
    assert np.median([c["int_flux"][1] for _, c in res]) > 0.5 * (b[core[1]].sum() / BEAM_AREA)


def test_island_parts_split_a_region_only_between_seeded_islands():
    from caesar_mrcnn.measure.sources import island_parts

    snr = np.zeros((5, 12))
    snr[2, 1:3] = [6.0, 4.0]        # a seeded island
    snr[2, 5] = 3.5                 # an island without a seed
    snr[2, 9:12] = [3.2, 5.5, 3.1]  # another seeded island
    mask = np.zeros(snr.shape, bool)
    mask[1:4, :] = True
    labels, n = island_parts(mask, snr)
    assert n == 2
    assert (labels[~mask] == 0).all() and (labels[mask] > 0).all()
    assert labels[2, 1] != labels[2, 10]
    assert labels[2, 5] == labels[2, 1]  # 3 pixels from the first island, 4 from the second
    assert labels[2, 0] == labels[2, 1] and labels[1, 8] == labels[2, 10]
    # a region of the mask without a seeded island is a part of its own
    mask[:, 4] = mask[:, 6] = False
    labels, n = island_parts(mask, snr)
    assert n == 3 and len({labels[2, 1], labels[2, 5], labels[2, 10]}) == 3
    # a region with one seeded island stays whole
    labels, n = island_parts(np.ones((5, 8), bool), snr[:, :8])
    assert n == 1


def test_island_parts_cut_an_island_between_its_separate_peaks():
    from caesar_mrcnn.measure.sources import island_parts

    yy, xx = np.mgrid[:20, :40].astype(float)
    # a broad plateau at 4 sigma, a bump of 12 sigma on it and a brighter core 20 pixels off:
    # one island at 3 sigma, two peaks with a deep dip between them
    snr = (4.0 * np.exp(-0.5 * ((xx - 20) / 12.0) ** 2)
           + 12.0 * np.exp(-0.5 * ((xx - 30) ** 2 + (yy - 10) ** 2) / 2.0 ** 2)
           + 20.0 * np.exp(-0.5 * ((xx - 10) ** 2 + (yy - 10) ** 2) / 2.0 ** 2))
    mask = np.zeros(snr.shape, bool)
    mask[4:16, 2:38] = True
    assert island_parts(mask, snr)[1] == 1  # without a beam nothing is cut
    labels, n = island_parts(mask, snr, beam_fwhm=4.0)
    assert n == 2 and labels[10, 10] != labels[10, 30]
    assert (labels[mask] > 0).all() and (labels[~mask] == 0).all()
    # peaks closer than a beam, or without a dip of 3 sigma between them, stay one part
    assert island_parts(mask, snr, beam_fwhm=25.0)[1] == 1
    shallow = (4.0 * np.exp(-0.5 * ((xx - 20) / 12.0) ** 2)
               + 6.0 * np.exp(-0.5 * ((xx - 16) ** 2 + (yy - 10) ** 2) / 3.0 ** 2)
               + 6.0 * np.exp(-0.5 * ((xx - 24) ** 2 + (yy - 10) ** 2) / 3.0 ** 2))
    assert island_parts(mask, shallow, beam_fwhm=4.0)[1] == 1


def test_island_cut_reaches_pixels_joined_by_a_corner_only():
    """An island is 8-connected: a pixel that touches it by a corner only is cut with it,
    not given to another island's part (which once left a cut part without its core)."""
    from caesar_mrcnn.measure.sources import _parts

    yy, xx = np.mgrid[:20, :60].astype(float)
    # island A, labelled first (its top row is higher)
    snr = 20.0 * np.exp(-0.5 * ((xx - 5) ** 2 + (yy - 6) ** 2) / 1.5 ** 2)
    for x0 in (28.0, 48.0):  # island B: two peaks, a saddle of 6 sigma between them
        snr += 12.0 * np.exp(-0.5 * (((xx - x0) / 6.0) ** 2 + ((yy - 10) / 2.5) ** 2))
    mask = np.zeros(snr.shape, bool)
    mask[2:18, :] = True
    mask[:, 12:16] = False  # A and B in regions of their own
    island_b = (snr >= 3.0) & mask
    island_b[:, :15] = False
    ys, xs = np.nonzero(island_b)
    corner = (ys.min() - 1, xs[ys == ys.min()].min() - 1)  # touches B by a corner only
    assert mask[corner] and not island_b[corner]
    snr[corner] = 4.0
    labels, n, cores, cut = _parts(mask, snr, beam_fwhm=4.0)
    assert n == 3 and cut.tolist() == [False, False, True, True]
    assert labels[corner] in (2, 3) and labels[6, 5] == 1
    for k in (2, 3):  # each cut part holds its core, in region B
        assert (cores == k).any() and ((cores == k) <= (xx > 15)).all()


def test_a_point_source_on_diffuse_emission_is_a_component_of_its_own():
    """A 12-sigma point source on the flank of a 12-sigma diffuse source (6 by 3 beams), one
    island at 3 sigma, drawn as one extended mask (as the detector drew an injected source
    into real diffuse emission in the ATCA Scorpio field). Whether the two are fitted as two
    Gaussians or the entry is measured by its mask (one Gaussian leaves a residual of the
    point source's height), the point source is a component at its own position, and the
    components sum to the entry."""
    rng = np.random.default_rng(5)
    diffuse = gauss(SHAPE, 28.0, 36.0, 12 * RMS, np.diag([10.0 ** 2, 5.0 ** 2]))
    point = gauss(SHAPE, 46.0, 36.0, 12 * RMS, BEAM_COV)
    model = diffuse + point
    mask = model > 2 * RMS
    assert ndimage.label(model > 3 * RMS)[1] == 1
    res = run(model, [mask], rng, 30, classes=["extended"])
    near = [np.hypot(c["x"] - 46.0, c["y"] - 36.0).min() for _, c in res]
    assert np.mean(np.asarray(near) < BEAM_FWHM / 2) >= 0.9, near
    for src, comps in res:
        assert len(comps) >= 2
        assert comps["int_flux"].sum() == pytest.approx(src["int_flux"][0])


def test_one_gaussian_that_leaves_a_source_out_is_refused(monkeypatch):
    """The Gaussians of an extended entry must describe its whole island: a 10-sigma point
    source 26 pixels from the centre of a broad 14-sigma source, fitted with the broad one's
    Gaussian alone (as when a fit of two does not converge), leaves a residual of its own
    height. The mean squared residual over the large island stays under
    ``gaussian_chi2``, so that test alone would accept the fit; the entry is measured by its
    mask instead."""
    from caesar_mrcnn.measure import components

    find_peaks = components.find_peaks
    monkeypatch.setattr(components, "find_peaks", lambda *a, **k: find_peaks(*a, **k)[:1])
    shape = (96, 96)
    rng = np.random.default_rng(9)
    model = (gauss(shape, 40.0, 48.0, 14 * RMS, np.eye(2) * 15.0 ** 2)
             + gauss(shape, 66.0, 48.0, 10 * RMS, BEAM_COV))
    mask = model > 3 * RMS
    # the true background and rms: a box of this small image is mostly source, and the rms
    # read from it would hide the residual
    known = BackgroundGrid(np.zeros((2, 2)), np.full((2, 2), RMS), 48)
    ann = Annotation.from_full_mask("extended", mask)

    def fitted(m):
        return [measure_catalogs([ann], (m + noise(rng, shape)).astype(np.float32), shape,
                                 beam_area_pix=BEAM_AREA, background=known)[0][0]
                for _ in range(10)]

    src = fitted(model)
    assert not any(s["fitted"] for s in src)
    assert all(s["int_flux"] == s["island_flux"] for s in src)
    # without the point source the same fit is accepted
    src = fitted(gauss(shape, 40.0, 48.0, 14 * RMS, np.eye(2) * 15.0 ** 2))
    assert np.mean([s["fitted"] for s in src]) >= 0.9


def test_components_are_judged_on_the_local_rms():
    """One mask over a faint source where the noise is low and a bright one where it is four
    times higher: the faint source is 8 sigma where it lies but under 5 sigma of the rms at
    the centre of the entry's box; it is a component of its own."""
    shape = (48, 96)
    known = BackgroundGrid(np.zeros((1, 2)), np.array([[RMS, 4 * RMS]]), 48)
    rms = known.window(0, shape[0], 0, shape[1])[1]
    model = (gauss(shape, 12.0, 24.0, 8 * RMS, BEAM_COV)
             + gauss(shape, 80.0, 24.0, 30 * 4 * RMS, BEAM_COV))
    ann = Annotation.from_full_mask("extended-multisland", np.ones(shape, bool))
    rng = np.random.default_rng(13)
    for _ in range(10):
        img = model + noise(rng, shape) / RMS * rms
        src, comps = measure_catalogs([ann], img.astype(np.float32), shape,
                                      beam_area_pix=BEAM_AREA, background=known)
        assert len(comps) == 2
        np.testing.assert_allclose(np.sort(comps["x"]), [12.0, 80.0], atol=1.5)
        assert comps["int_flux"].sum() == pytest.approx(src["int_flux"][0])


def test_mask_sums_subtract_the_background_under_each_pixel():
    """A large source on a background that varies across it (higher at its centre, as a
    background box inside extended emission reads): the sum over the mask subtracts the
    background map pixel by pixel, not its value at the centre of the box, so the flux
    density and the components' are unbiased."""
    shape = (96, 96)
    cells = np.zeros((3, 3))
    cells[1, 1] = 2 * RMS
    known = BackgroundGrid(cells, np.full((3, 3), RMS), 32)
    bkg = known.window(0, shape[0], 0, shape[1])[0]
    lobes = (gauss(shape, 30.0, 48.0, 10 * RMS, cov_of(6.0, 3.0, 0.0))
             + gauss(shape, 66.0, 48.0, 10 * RMS, cov_of(6.0, 3.0, 0.0)))
    mask = lobes > 2 * RMS
    ann = Annotation.from_full_mask("extended-multisland", mask)
    truth = lobes[mask].sum() / BEAM_AREA
    rng = np.random.default_rng(17)
    res = [measure_catalogs([ann], (lobes + bkg + noise(rng, shape)).astype(np.float32), shape,
                            beam_area_pix=BEAM_AREA, background=known) for _ in range(20)]
    src = [r[0][0] for r in res]
    assert not any(s["fitted"] for s in src)
    pull_checks([s["int_flux"] for s in src], truth, [s["err_int_flux"] for s in src],
                "flux on a varying background")
    for (s, comps) in res:
        assert len(comps) == 2
        assert comps["int_flux"].sum() == pytest.approx(s["int_flux"])


def test_elliptical_beam_through_the_wcs():
    """A point source observed with a 2:1 beam at PA 40 deg: the beam's own shape is fitted,
    the source is unresolved and deconvolves to a point."""
    wcs = make_wcs(SHAPE)
    beam = Beam(8.0 / 3600, 4.0 / 3600, 40.0)
    area = math.pi * 8.0 * 4.0 / (4 * math.log(2)) / PIX_ARCSEC ** 2
    bcov = beam_cov_pix(beam, wcs, 36.0, 36.0, area)
    maj, mn, pa = ellipse_from_covariance(bcov[None], sky_jacobian(wcs, [36.0], [36.0]))
    assert (maj[0] * 3600 * FWHM_PER_SIGMA, mn[0] * 3600 * FWHM_PER_SIGMA, pa[0]) == \
        pytest.approx((8.0, 4.0, 40.0), rel=1e-3)
    model = gauss(SHAPE, 36.2, 35.9, 1e-2, bcov)
    ann = Annotation.from_full_mask("compact", model > 1e-4)
    src, comps = measure_catalogs([ann], model.astype(np.float32), SHAPE, wcs=wcs,
                                  beam_area_pix=area, beam=beam)
    row = src[0]
    assert row["fitted"] and row["int_flux"] == pytest.approx(1e-2, rel=1e-3)
    assert (row["maj_fwhm"], row["min_fwhm"], row["pa"]) == pytest.approx((8.0, 4.0, 40.0),
                                                                           rel=1e-3)
    assert row["dc_maj_fwhm"] == pytest.approx(0.0, abs=0.05)


def test_deconvolution_is_the_difference_of_covariances():
    beam = cov_of(2.0, 1.5, 0.4)
    intrinsic = cov_of(3.0, 1.0, 1.2)
    assert deconvolve(intrinsic + beam, beam) == pytest.approx(intrinsic)
    # narrower than the beam along one axis: zero width there, never negative
    out = deconvolve(cov_of(2.5, 1.2, 0.4), beam)
    assert np.linalg.eigvalsh(out).min() == pytest.approx(0.0, abs=1e-12)


def test_extended_entry_is_fitted_only_when_its_island_is_gaussian():
    """The detector may call a resolved Gaussian extended: its one island is measured by the
    fit (the mask sum would miss the wings); a ring is not a Gaussian and keeps its sum."""
    rng = np.random.default_rng(21)
    cov = cov_of(2.0 * BEAM_SIGMA, 1.5 * BEAM_SIGMA, 0.7) + BEAM_COV
    blob = gauss(SHAPE, 36.0, 35.5, 20 * RMS, cov)
    true_flux = 20 * RMS * math.sqrt(np.linalg.det(cov)) / BEAM_SIGMA ** 2
    res = run(blob, [blob > 3 * RMS], rng, 30, classes=["extended"])
    src = [r[0][0] for r in res]
    assert np.mean([s["fitted"] for s in src]) > 0.9
    fitted = [s for s in src if s["fitted"]]
    pull_checks([s["int_flux"] for s in fitted], true_flux, [s["err_int_flux"] for s in fitted],
                "gaussian extended")
    yy, xx = np.mgrid[:SHAPE[0], :SHAPE[1]]
    ring = 20 * RMS * np.exp(-0.5 * ((np.hypot(xx - 36, yy - 36) - 14) / 2.0) ** 2)
    res = run(ring, [ring > 3 * RMS], rng, 10, classes=["extended"])
    assert not any(r[0]["fitted"][0] for r in res)
    assert all(r[0]["int_flux"][0] == r[0]["island_flux"][0] for r in res)
