"""End-to-end comparison with Aegean and PyBDSF on a small simulated field."""

import importlib.util
import math

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from caesar_mrcnn.data.dataset import Annotation, Sample
from caesar_mrcnn.errors import ConfigError, DatasetError
from caesar_mrcnn.evaluation import finders
from caesar_mrcnn.evaluation.compare import compare_samples
from caesar_mrcnn.evaluation.compare_report import write_comparison
from caesar_mrcnn.evaluation.finders import CAESAR_ALL, CAESAR_NO_SPURIOUS, SYMMETRY_RULE
from caesar_mrcnn.io.fits import write_image

PIX_ARCSEC = 2.0
BEAM_ARCSEC = 10.0
RMS = 1e-4


def make_field(path, n=256, seed=0):
    """A 256x256 field: 5 compact sources of known SNR, one extended ellipse, Gaussian noise."""
    h = fits.Header()
    h.update(CTYPE1="RA---SIN", CTYPE2="DEC--SIN", CRVAL1=150.0, CRVAL2=-30.0,
             CRPIX1=n / 2, CRPIX2=n / 2, CDELT1=-PIX_ARCSEC / 3600, CDELT2=PIX_ARCSEC / 3600,
             CUNIT1="deg", CUNIT2="deg", BMAJ=BEAM_ARCSEC / 3600, BMIN=BEAM_ARCSEC / 3600,
             BPA=0.0, BUNIT="JY/BEAM", RESTFRQ=1.4e9)
    wcs = WCS(h)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:n, :n].astype(float)
    sig = BEAM_ARCSEC / PIX_ARCSEC / (2 * math.sqrt(2 * math.log(2)))
    beam_pix = 2 * math.pi * sig * sig
    image = rng.normal(0.0, RMS, (n, n))
    truth = []
    for x, y, snr in [(40.3, 50.2, 60), (200.6, 60.1, 25), (60.2, 200.4, 12),
                      (130.1, 40.7, 100), (210.4, 210.2, 40)]:
        model = snr * RMS * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sig * sig))
        image += model
        ra, dec = wcs.pixel_to_world_values(x, y)
        truth.append(Annotation.from_full_mask(
            "compact", model > 2 * RMS, snr=snr, flux_jy=snr * RMS, peak_jyb=snr * RMS,
            x=x, y=y, ra=float(ra), dec=float(dec)))
    # Extended source: an elongated Gaussian (sigma 12 x 4 px), peak SNR 30.
    sx, sy, x, y = 12.0, 4.0, 128.0, 140.0
    model = 30 * RMS * np.exp(-((xx - x) ** 2 / (2 * sx * sx) + (yy - y) ** 2 / (2 * sy * sy)))
    image += model
    ra, dec = wcs.pixel_to_world_values(x, y)
    truth.append(Annotation.from_full_mask(
        "extended", model > 2 * RMS, snr=30, flux_jy=float(model.sum() / beam_pix),
        x=x, y=y, ra=float(ra), dec=float(dec)))
    # A spurious artefact in the truth: not a source any finder should be credited for.
    # Bright enough (SNR 20) to pass any significance cut: the finders see it like a source.
    spur = np.zeros((n, n), bool)
    spur[20:24, 120:124] = True
    image[spur] += 20 * RMS
    truth.append(Annotation.from_full_mask("spurious", spur, snr=20.0))
    write_image(path, image.astype(np.float32), h)
    meta = {"dx": PIX_ARCSEC, "dy": PIX_ARCSEC, "rms": RMS}
    return Sample(path, (n, n), truth, meta)


@pytest.mark.skipif(importlib.util.find_spec("bdsf") is None or not finders.available("aegean"),
                    reason="Aegean and PyBDSF are not installed")
def test_compare_end_to_end(tmp_path):
    sample = make_field(tmp_path / "field.fits")
    summary, bins = compare_samples([sample], snr_bins=(5, 20, 50, 200))
    by = {r["finder"]: r for r in summary}
    for label in (CAESAR_ALL, CAESAR_NO_SPURIOUS):
        assert by[label]["status"].startswith("not run")
        assert math.isnan(by[label]["completeness"])
        assert not len(bins[bins["finder"] == label])
    for name in ("aegean", "pybdsf"):
        r = by[name]
        assert r["status"] == "ok" and r["wall_s"] > 0
        assert r["n_truth"] == 6  # the spurious truth object is not a source to find
        assert 0 <= r["n_fragments"] <= r["n_det"] - r["n_truth"] * r["completeness"]
        comp = bins[(bins["finder"] == name) & (bins["class"] == "compact")
                    & ~np.isfinite(bins["snr_lo"])][0]
        # Bright (SNR >= 12), isolated point sources: most are found, fluxes are right.
        assert comp["n_truth"] == 5 and comp["n_found"] >= 3
        assert 0.7 < r["flux_ratio_median"] < 1.3
        assert r["pos_err_median_arcsec"] < PIX_ARCSEC
        assert r["reliability"] > 0
    # PyBDSF groups Gaussians into sources: the extended ellipse is one source, and found.
    ext = bins[(bins["finder"] == "pybdsf") & (bins["class"] == "extended")
               & ~np.isfinite(bins["snr_lo"])][0]
    assert (ext["n_truth"], ext["n_found"]) == (1, 1)
    out = tmp_path / "cmp"
    written = write_comparison(summary, bins, out, command="caesar-mrcnn compare ...")
    assert {p.name for p in written} == {
        "compare_summary.ecsv", "compare_summary.csv", "compare_bins.ecsv", "compare_bins.csv",
        "compare.md", "compare.png"}
    md = (out / "compare.md").read_text()
    assert "| aegean | ok |" in md and "| pybdsf | ok |" in md and "not run" in md
    assert SYMMETRY_RULE in md
    assert (out / "compare.png").read_bytes()[:4] == b"\x89PNG"


def test_compare_rejects_bad_inputs(tmp_path):
    sample = make_field(tmp_path / "field.fits")
    with pytest.raises(ConfigError):
        compare_samples([sample], finders=("sextractor",))
    plain = tmp_path / "nowcs.fits"
    write_image(plain, np.ones((32, 32), np.float32))
    with pytest.raises(DatasetError):
        compare_samples([Sample(plain, (32, 32), [], {})], finders=("aegean",))


def test_compare_scores_caesar_catalogue_with_a_perfect_predictor(tmp_path):
    from caesar_mrcnn.detection.command import infer_config
    from caesar_mrcnn.detection.detector import TruthPredictor

    sample = make_field(tmp_path / "field.fits")
    cfg = infer_config(None, ["tile=256", "overlap=16"])
    summary, bins = compare_samples(
        [sample], finders=("caesar-mrcnn",), config=cfg,
        predictor_factory=lambda s: TruthPredictor(s.annotations, cfg.tile))
    by = {r["finder"]: r for r in summary}
    assert list(by) == [CAESAR_ALL, CAESAR_NO_SPURIOUS]
    for r in summary:
        assert r["status"] == "ok" and r["n_truth"] == 6 and r["completeness"] == 1.0
        assert r["pos_err_median_arcsec"] < PIX_ARCSEC
    # With every entry, the artefact the predictor reports (as spurious) counts as false, as it
    # would for Aegean or PyBDSF; with spurious entries left out, it is gone.
    assert by[CAESAR_ALL]["n_det"] == 7 and by[CAESAR_ALL]["reliability"] == 6 / 7
    assert by[CAESAR_NO_SPURIOUS]["n_det"] == 6 and by[CAESAR_NO_SPURIOUS]["reliability"] == 1.0


def test_caesar_common_catalogue_carries_entries_and_their_components(tmp_path):
    """The common form of caesar-mrcnn's catalogue: its entries (what every table scores),
    then one row per component with its entry's class; a component of a grouped entry sits on
    its own source."""
    from caesar_mrcnn.detection.command import infer_config
    from caesar_mrcnn.detection.detector import TruthPredictor
    from caesar_mrcnn.detection.infer import infer_image

    sample = make_field(tmp_path / "field.fits")
    # two compact sources given to the catalogue as one extended-multisland entry
    a, b = sample.annotations[0], sample.annotations[4]
    pair = Annotation.from_full_mask("extended-multisland", a.full_mask(sample.shape)
                                     | b.full_mask(sample.shape))
    truth = [pair, *sample.annotations[1:4], sample.annotations[5]]
    cfg = infer_config(None, ["tile=256", "overlap=16"])
    predictor = TruthPredictor(truth, cfg.tile)
    cat, _ = finders.run_caesar_mrcnn(sample.image_path, config=cfg, predictor=predictor)
    result = infer_image(sample.image_path, config=cfg, predictor=predictor)
    level = np.asarray(cat["level"], str)
    entries = finders.entries_of(cat)
    assert len(entries) == len(result.table) and (level == "entry").sum() == len(entries)
    assert (level == "component").sum() == len(result.components) == int(
        np.sum(result.table["n_components"]))
    assert [lab for lab, _ in finders.finder_rows("caesar-mrcnn", cat)] == [CAESAR_ALL,
                                                                         CAESAR_NO_SPURIOUS]
    assert len(finders.finder_rows("caesar-mrcnn", cat)[0][1]) == len(entries)
    comps = cat[level == "component"]
    parent = np.asarray(result.components["source_index"], int)
    assert list(comps["class"]) == list(np.asarray(result.table["class"], str)[parent])
    # the grouped pair: one entry between the two sources, a component on each of them
    def dist(rows, src):
        cosd = math.cos(math.radians(src.attrs["dec"]))
        return np.hypot((np.asarray(rows["ra"]) - src.attrs["ra"]) * cosd,
                        np.asarray(rows["dec"]) - src.attrs["dec"]) * 3600

    for src in (a, b):
        assert np.nanmin(dist(entries, src)) > BEAM_ARCSEC
        assert np.nanmin(dist(comps, src)) < PIX_ARCSEC
