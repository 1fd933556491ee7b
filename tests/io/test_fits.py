"""FITS reading, writing and lazy windows on real files written with astropy."""

from __future__ import annotations

import bz2
import gzip
import logging
import math
import os
import tempfile
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning

from caesar_mrcnn.errors import (
    AllNaNError,
    ConfigError,
    EmptyImageError,
    ImageShapeError,
    InputImageError,
    NoImageHDUError,
    NotFitsError,
    TruncatedFitsError,
)
from caesar_mrcnn.io.fits import (
    Beam,
    open_image,
    parse_beam,
    pixel_scale_deg,
    read_image,
    write_image,
)
from caesar_mrcnn.io.inspect import describe_image

PIX_DEG = 2.0 / 3600.0


def radio_header(naxis: int = 2, nfreq: int = 1) -> fits.Header:
    """Header of a SIN-projected image (optionally FREQ and STOKES axes) with a beam."""
    w = WCS(naxis=naxis)
    w.wcs.ctype = ["RA---SIN", "DEC--SIN", "FREQ", "STOKES"][:naxis]
    w.wcs.crval = [210.5, -45.25, 1.4e9, 1.0][:naxis]
    w.wcs.crpix = [20.0, 16.0, 1.0, 1.0][:naxis]
    w.wcs.cdelt = [-PIX_DEG, PIX_DEG, 1e6, 1.0][:naxis]
    w.wcs.cunit = ["deg", "deg", "Hz", ""][:naxis]
    hdr = w.to_header()
    hdr["BMAJ"] = 12.0 / 3600.0
    hdr["BMIN"] = 8.0 / 3600.0
    hdr["BPA"] = 35.0
    hdr["BUNIT"] = "JY/BEAM"
    return hdr


def noise_image(shape=(32, 40), seed=1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(1e-3, 1e-4, size=shape).astype(np.float32)


@pytest.fixture
def image_2d(tmp_path):
    data = noise_image()
    data[3, 5] = np.nan
    data[7, 9] = np.inf
    path = tmp_path / "img.fits"
    fits.PrimaryHDU(data, radio_header()).writeto(path)
    return path, data


def test_read_2d_keeps_nan_and_metadata(image_2d):
    path, data = image_2d
    img = read_image(path)
    assert img.data.dtype == np.float32 and img.shape == data.shape
    assert np.isnan(img.data[3, 5]) and np.isnan(img.data[7, 9])
    assert img.valid.sum() == data.size - 2
    np.testing.assert_array_equal(img.data[img.valid], data[np.isfinite(data)])
    assert img.bunit == "JY/BEAM"
    assert isinstance(img.beam, Beam)
    np.testing.assert_allclose([img.beam.bmaj_deg * 3600, img.beam.bmin_deg * 3600,
                                img.beam.bpa_deg], [12.0, 8.0, 35.0], rtol=1e-12)
    np.testing.assert_allclose(img.pixel_scale_deg, (PIX_DEG, PIX_DEG), rtol=1e-9)
    assert img.path == path


def test_beam_area_matches_hand_computation(image_2d):
    img = read_image(image_2d[0])
    # Gaussian solid angle pi/(4 ln 2) * FWHM_maj * FWHM_min, in 2"x2" pixels
    expected = math.pi / (4 * math.log(2)) * 12.0 * 8.0 / (2.0 * 2.0)
    assert img.beam_area_pix == pytest.approx(expected, rel=1e-9)


def test_wcs_round_trip(image_2d):
    img = read_image(image_2d[0])
    x = np.array([0.0, 19.0, 39.0, 12.5])
    y = np.array([0.0, 15.0, 31.0, 7.25])
    ra, dec = img.wcs.all_pix2world(x, y, 0)
    assert ra[1] == pytest.approx(210.5) and dec[1] == pytest.approx(-45.25)
    xb, yb = img.wcs.all_world2pix(ra, dec, 0)
    np.testing.assert_allclose(xb, x, atol=1e-8)
    np.testing.assert_allclose(yb, y, atol=1e-8)
    np.testing.assert_allclose(pixel_scale_deg(img.wcs), (PIX_DEG, PIX_DEG), rtol=1e-9)


@pytest.mark.parametrize("naxis", [3, 4])
def test_degenerate_cube_is_squeezed(tmp_path, naxis):
    data = noise_image()
    path = tmp_path / f"cube{naxis}.fits"
    fits.PrimaryHDU(data.reshape((1,) * (naxis - 2) + data.shape),
                    radio_header(naxis)).writeto(path)
    img = read_image(path)
    np.testing.assert_array_equal(img.data, data)
    assert img.wcs.naxis == 2 and img.header["NAXIS"] == 2
    assert "CTYPE3" not in img.header
    ra, dec = img.wcs.all_pix2world([19.0], [15.0], 0)
    assert ra[0] == pytest.approx(210.5) and dec[0] == pytest.approx(-45.25)


def test_non_degenerate_cube_needs_plane(tmp_path):
    planes = np.stack([noise_image(seed=s) for s in range(3)])
    path = tmp_path / "cube.fits"
    fits.PrimaryHDU(planes[None], radio_header(4)).writeto(path)
    with pytest.raises(ImageShapeError, match=r"axis 3 \(FREQ\).*plane"):
        read_image(path)
    np.testing.assert_array_equal(read_image(path, plane=2).data, planes[2])
    with pytest.raises(ImageShapeError, match="out of range"):
        read_image(path, plane=3)


def test_big_endian_and_scaled_integers(tmp_path):
    data = noise_image().astype(">f8")
    path = tmp_path / "be.fits"
    fits.PrimaryHDU(data, radio_header()).writeto(path)
    img = read_image(path)
    assert img.data.dtype == np.dtype(np.float32) and img.data.dtype.isnative
    np.testing.assert_allclose(img.data, data.astype(np.float32))

    counts = np.arange(12, dtype=">i2").reshape(3, 4)
    hdu = fits.PrimaryHDU(counts, radio_header())
    hdu.header["BSCALE"] = 0.5
    hdu.header["BZERO"] = 10.0
    path = tmp_path / "scaled.fits"
    hdu.writeto(path, output_verify="silentfix")
    raw = fits.getdata(path, do_not_scale_image_data=True)
    np.testing.assert_allclose(read_image(path).data, raw * 0.5 + 10.0)


def test_lazy_window_equals_full_read_slice(tmp_path):
    data = noise_image((3, 50, 60))
    path = tmp_path / "cube.fits"
    fits.PrimaryHDU(data, radio_header(3)).writeto(path)
    full = read_image(path, plane=1).data
    with open_image(path, plane=1) as img:
        assert img.shape == (50, 60)
        np.testing.assert_array_equal(img.read_window(5, 17, 11, 40), full[5:17, 11:40])
        # windows are clipped to the image
        np.testing.assert_array_equal(img.read_window(-4, 3, 55, 70), full[0:3, 55:60])
        assert img.read_window(60, 70, 0, 5).shape == (0, 5)


def test_lazy_window_does_not_read_a_16k_image_whole(tmp_path):
    n = 16384
    hdr = fits.Header([("SIMPLE", True), ("BITPIX", -32), ("NAXIS", 2), ("NAXIS1", n),
                       ("NAXIS2", n)])
    path = tmp_path / "mosaic.fits"
    with open(path, "wb") as fh:  # sparse file: 1 GiB long, almost nothing on disk
        fh.write(hdr.tostring().encode("ascii"))
        start = fh.tell()
        fh.truncate(start + n * n * 4)
        fh.seek(start + (9000 * n + 12000) * 4)
        fh.write(np.array([7.5], dtype=">f4").tobytes())
    tracemalloc.start()
    with open_image(path) as img:
        window = img.read_window(8990, 9010, 11990, 12010)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert window[10, 10] == 7.5 and window.sum() == 7.5
    assert peak < 16 * 2**20  # the whole plane would need 1 GiB


def test_write_image_round_trip(image_2d, tmp_path):
    img = read_image(image_2d[0])
    out = tmp_path / "copy.fits"
    write_image(out, img.data.astype(np.float64), img.header)
    back = read_image(out)
    assert back.data.dtype == np.float32
    np.testing.assert_array_equal(back.data, img.data)
    assert back.beam == img.beam
    np.testing.assert_allclose(back.wcs.wcs.crval, img.wcs.wcs.crval)
    # written atomically: no temporary file left beside it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copy.fits", "img.fits"]


def test_missing_wcs_and_beam_only_warn(tmp_path, caplog):
    path = tmp_path / "bare.fits"
    fits.PrimaryHDU(noise_image()).writeto(path)
    img = read_image(path)
    assert img.wcs is None and img.beam is None and img.beam_area_pix is None
    assert "no celestial WCS" in caplog.text and "no restoring beam" in caplog.text


def test_describe_image_reports_beam_and_noise(image_2d):
    text = describe_image(image_2d[0])
    assert "icrs" in text and "SIN" in text
    assert "12 x 8 arcsec" in text and "2 x 2 arcsec" in text
    assert f"{math.pi / (4 * math.log(2)) * 24.0:.4g} pixels" in text
    assert "99.84 %" in text  # 2 of 1280 pixels invalid


# --- bad inputs: the library raises the right class --------------------------------------------


def make_bad_file(kind: str, folder) -> tuple:
    """Write one kind of unusable file; return (path, expected exception class)."""
    path = folder / f"{kind}.fits"
    good = noise_image()
    if kind == "text":
        path.write_text("this is not an image\n")
        return path, NotFitsError
    if kind == "truncated":
        fits.PrimaryHDU(noise_image((64, 64)), radio_header()).writeto(path)
        raw = path.read_bytes()
        path.write_bytes(raw[:-6000])
        return path, TruncatedFitsError
    if kind == "truncated_header":
        fits.PrimaryHDU(good, radio_header()).writeto(path)
        path.write_bytes(path.read_bytes()[:1000])
        return path, TruncatedFitsError
    if kind == "table":
        col = fits.Column(name="flux", format="E", array=np.arange(4.0))
        fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns([col])]).writeto(path)
        return path, NoImageHDUError
    if kind == "header_only":
        fits.PrimaryHDU(header=radio_header()).writeto(path)
        return path, EmptyImageError
    if kind == "all_nan":
        fits.PrimaryHDU(np.full((8, 8), np.nan, np.float32), radio_header()).writeto(path)
        return path, AllNaNError
    if kind == "cube":
        fits.PrimaryHDU(np.stack([good, good]), radio_header(3)).writeto(path)
        return path, ImageShapeError
    if kind == "empty":
        fits.PrimaryHDU(np.zeros((0, 8), np.float32)).writeto(path)
        return path, EmptyImageError
    if kind == "missing":
        return path, InputImageError
    raise AssertionError(kind)


BAD_KINDS = ["text", "truncated", "truncated_header", "table", "header_only", "all_nan", "cube",
             "empty", "missing"]


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_bad_input_raises_named_error(tmp_path, kind):
    path, exc_type = make_bad_file(kind, tmp_path)
    with pytest.raises(exc_type) as info:
        read_image(path)
    message = str(info.value)
    assert str(path) in message and "\n" not in message


def test_aips_history_beam_and_gzip(tmp_path):
    hdr = radio_header()
    for key in ("BMAJ", "BMIN", "BPA"):
        del hdr[key]
    hdr.add_history("AIPS   CLEAN BMAJ=  3.3333D-03 BMIN=  2.2222E-03 BPA=  12.50")
    data = noise_image()
    path = tmp_path / "aips.fits.gz"  # astropy compresses by extension
    fits.PrimaryHDU(data, hdr).writeto(path)
    img = read_image(path)
    np.testing.assert_array_equal(img.data, data)
    assert (img.beam.bmaj_deg, img.beam.bmin_deg, img.beam.bpa_deg) == (3.3333e-3, 2.2222e-3,
                                                                        12.5)


# --- files as archives hand them out ---------------------------------------------------------

REAL = Path(os.environ.get("CAESAR_MRCNN_REAL")
            or Path(__file__).resolve().parents[2] / ".." / "shared" / "real")
needs_real = pytest.mark.skipif(not REAL.is_dir(), reason="real images folder not present")


@pytest.mark.parametrize("suffix, limit", [(".fits.gz", 1 << 30), (".fits.gz", 0),
                                           (".fits.bz2", 1 << 30)])
def test_compressed_file_is_decompressed_once(tmp_path, monkeypatch, suffix, limit):
    import caesar_mrcnn.io.compressed as compressed

    monkeypatch.setattr(compressed, "MEMORY_LIMIT_BYTES", limit)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    data = noise_image((70, 90))
    plain = tmp_path / "img.fits"
    fits.PrimaryHDU(data, radio_header()).writeto(plain)
    packed = tmp_path / f"img{suffix}"
    opener = gzip.open if suffix.endswith("gz") else bz2.open
    with opener(packed, "wb") as out:
        out.write(plain.read_bytes())
    with open_image(packed) as img:
        # the open file is the decompressed content, not the compressed stream
        assert img._hdul._file.compression is None
        assert list((tmp_path / "tmp").iterdir()) == []  # a spilled copy is unlinked at once
        np.testing.assert_array_equal(img.read_window(10, 40, 5, 60), data[10:40, 5:60])
        assert img.beam.bmaj_deg == pytest.approx(12.0 / 3600.0)


def test_truncated_gzip_is_a_one_line_error(tmp_path):
    plain = tmp_path / "img.fits"
    fits.PrimaryHDU(noise_image((64, 64)), radio_header()).writeto(plain)
    blob = gzip.compress(plain.read_bytes())
    path = tmp_path / "cut.fits.gz"
    path.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(TruncatedFitsError, match="truncated") as info:
        read_image(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_tile_compressed_image_in_a_later_extension(tmp_path):
    data = noise_image((100, 120))
    table = fits.BinTableHDU.from_columns([fits.Column("a", "E", array=np.arange(3.0))])
    comp = fits.CompImageHDU(data, radio_header(), compression_type="GZIP_2",
                             quantize_level=0, tile_shape=(16, 16))
    path = tmp_path / "fpack.fits"
    fits.HDUList([fits.PrimaryHDU(), table, comp]).writeto(path)
    with open_image(path) as img:
        assert img.hdu_index == 2 and img.shape == (100, 120)
        np.testing.assert_allclose(img.read_window(30, 47, 50, 99), data[30:47, 50:99],
                                   rtol=0, atol=0)
        assert img.wcs is not None and img.beam is not None


def test_scaled_integers_with_blank_become_nan_masked_float(tmp_path):
    raw = np.arange(-6, 6, dtype=">i2").reshape(3, 4)
    hdr = radio_header()
    hdr["BSCALE"], hdr["BZERO"], hdr["BLANK"] = 0.25, 3.0, -5
    path = tmp_path / "blank.fits"
    # the bytes an archive writes: stored integers and scaling cards, no rescaling by astropy
    head = fits.Header([("SIMPLE", True), ("BITPIX", 16), ("NAXIS", 2), ("NAXIS1", 4),
                        ("NAXIS2", 3)])
    head.extend(hdr, strip=False)
    body = raw.tobytes()
    path.write_bytes(head.tostring().encode() + body + bytes(-len(body) % 2880))
    with fits.open(path, do_not_scale_image_data=True) as hdul:
        assert hdul[0].header["BLANK"] == -5 and hdul[0].data.dtype.kind == "i"
        stored = hdul[0].data.astype(float)
    expected = np.where(stored == -5, np.nan, stored * 0.25 + 3.0)
    img = read_image(path)
    assert img.data.dtype == np.float32
    np.testing.assert_array_equal(np.isnan(img.data), np.isnan(expected))
    np.testing.assert_allclose(img.data, expected.astype(np.float32))


def test_casa_beams_table_gives_the_beam_of_the_plane_in_use(tmp_path):
    hdr = radio_header(naxis=3)
    for key in ("BMAJ", "BMIN", "BPA"):
        del hdr[key]
    hdr["CASAMBM"] = True
    data = noise_image((3, 20, 24))
    cols = [fits.Column("BMAJ", "E", unit="arcsec", array=[10.0, 11.0, 12.0]),
            fits.Column("BMIN", "E", unit="arcsec", array=[5.0, 6.0, 7.0]),
            fits.Column("BPA", "E", unit="deg", array=[10.0, 20.0, 30.0]),
            fits.Column("CHAN", "J", array=[0, 1, 2]),
            fits.Column("POL", "J", array=[0, 0, 0])]
    beams = fits.BinTableHDU.from_columns(cols, name="BEAMS")
    path = tmp_path / "casa.fits"
    fits.HDUList([fits.PrimaryHDU(data, hdr), beams]).writeto(path)
    with open_image(path, plane=1) as img:
        assert img.beam_source == "CASA beam table"
        np.testing.assert_allclose([img.beam.bmaj_deg * 3600, img.beam.bmin_deg * 3600,
                                    img.beam.bpa_deg], [11.0, 6.0, 20.0], rtol=1e-6)


def test_beam_precedence_option_header_history(tmp_path):
    hdr = radio_header()
    hdr.add_history("AIPS   CLEAN BMAJ=  3.0E-03 BMIN=  2.0E-03 BPA=   0.00")
    hdr["SURVEY"] = "NVSS"
    path = tmp_path / "img.fits"
    fits.PrimaryHDU(noise_image(), hdr).writeto(path)
    with open_image(path, beam=parse_beam("7,3,45")) as img:
        assert img.beam_source == "option"
        assert img.beam.bmaj_deg == pytest.approx(7 / 3600) and img.beam.bpa_deg == 45
    with open_image(path) as img:
        assert img.beam_source == "header" and img.beam.bmaj_deg == pytest.approx(12 / 3600)
    del hdr["BMAJ"], hdr["BMIN"], hdr["BPA"]
    fits.PrimaryHDU(noise_image(), hdr).writeto(path, overwrite=True)
    with open_image(path) as img:
        assert img.beam_source == "AIPS history" and img.beam.bmaj_deg == 3e-3


@pytest.mark.parametrize("text", ["", "a", "5,,3", "1,2,3,4", "-5", "0,0", "nan", "inf"])
def test_parse_beam_rejects_with_one_line_naming_the_option(text):
    with pytest.raises(ConfigError, match="--beam") as info:
        parse_beam(text)
    assert "\n" not in str(info.value)


def test_parse_beam_defaults_and_order():
    assert parse_beam("5.4") == Beam(5.4 / 3600, 5.4 / 3600, 0.0)
    b = parse_beam("3, 6")  # the larger axis is the major one
    assert (b.bmaj_deg, b.bmin_deg, b.bpa_deg) == (6 / 3600, 3 / 3600, 90.0)


def test_odd_header_cards_are_dropped_and_counted_once(tmp_path, caplog):
    path = tmp_path / "odd.fits"
    fits.PrimaryHDU(noise_image(), radio_header()).writeto(path)
    raw = bytearray(path.read_bytes())
    cards = [raw[i:i + 80] for i in range(0, 2880, 80)]
    end = next(i for i, c in enumerate(cards) if c.startswith(b"END "))
    extra = [b"COMMENT tab\there".ljust(80), b"COMMENT caf\xe9".ljust(80),
             b"BUNIT   = 'MJY/BEAM'".ljust(80), b"GARBAGE = 12x3 / no number".ljust(80)]
    assert end + len(extra) < 36
    cards[end:end] = extra
    path.write_bytes(b"".join(cards[:36]) + bytes(raw[2880:]))
    with caplog.at_level(logging.WARNING):
        img = read_image(path)
    lines = [r.getMessage() for r in caplog.records if "header card" in r.getMessage()]
    # the tab, the repeated BUNIT and the unparsable value (astropy itself replaces the
    # non-ASCII byte on reading, so that card is usable)
    assert len(lines) == 1 and "3 non-standard header cards ignored" in lines[0]
    assert img.bunit == "JY/BEAM" and img.wcs is not None  # the first BUNIT, as astropy reads


def test_absurd_axis_claims_fail_without_allocating(tmp_path):
    path = tmp_path / "huge.fits"
    hdr = fits.Header([("SIMPLE", True), ("BITPIX", -64), ("NAXIS", 2),
                       ("NAXIS1", 2_000_000_000), ("NAXIS2", 2_000_000_000)])
    path.write_bytes(hdr.tostring().encode() + bytes(2880))
    tracemalloc.start()
    with pytest.raises(TruncatedFitsError, match="truncated"):
        open_image(path)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 50e6


def _rotated_copy(src, dst, angle_deg):
    """The same pixels with the celestial axes rotated by ``angle_deg`` (PC matrix)."""
    with fits.open(src) as hdul:
        data = np.squeeze(hdul[0].data).astype(np.float32)
        w = WCS(hdul[0].header).celestial
    hdr = w.to_header()
    t = np.radians(angle_deg)
    rot = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    cdelt = np.asarray(w.wcs.get_cdelt()[:2])
    pc = rot @ w.wcs.get_pc()[:2, :2]
    for i in range(2):
        for j in range(2):
            hdr[f"PC{i + 1}_{j + 1}"] = pc[i, j]
        hdr[f"CDELT{i + 1}"] = cdelt[i]
    hdr["BMAJ"] = hdr["BMIN"] = 6.0 / 3600.0
    hdr["BUNIT"] = "JY/BEAM"
    fits.PrimaryHDU(data, hdr).writeto(dst)
    return data


@needs_real
def test_rotated_wcs_rotates_position_angles_of_a_real_image(tmp_path):
    from scipy import ndimage

    from caesar_mrcnn.data.dataset import Annotation
    from caesar_mrcnn.measure.sources import measure_sources

    src = REAL / "fields" / "lotss_dr1_P205+55_cutout400.fits"
    data = _rotated_copy(src, tmp_path / "r0.fits", 0.0)
    _rotated_copy(src, tmp_path / "r30.fits", 30.0)
    rms = np.nanstd(data[np.abs(data) < 5 * np.nanstd(data)])
    labels, n = ndimage.label(data > 8 * rms)
    objects = [Annotation.from_full_mask("compact", labels == k) for k in range(1, n + 1)
               if (labels == k).sum() >= 20]
    assert len(objects) >= 2
    tables = []
    for name in ("r0.fits", "r30.fits"):
        img = read_image(tmp_path / name)
        tables.append(measure_sources(objects, img.data, img.shape, wcs=img.wcs,
                                      beam_area_pix=img.beam_area_pix, fit_compact=False))
    t0, t30 = tables
    elongated = (t0["maj_fwhm"] > 1.3 * t0["min_fwhm"])
    assert elongated.any()
    turn = (np.asarray(t30["pa"] - t0["pa"])[elongated]) % 180.0
    np.testing.assert_allclose(np.minimum(turn, 180 - turn), 30.0, atol=0.5)
    # positions: each source's RA/Dec equals the rotated WCS at its pixel position
    w30 = read_image(tmp_path / "r30.fits").wcs
    ra, dec = w30.all_pix2world(np.asarray(t30["x_w"]), np.asarray(t30["y_w"]), 0)
    np.testing.assert_allclose(np.asarray(t30["ra"]), ra, atol=1e-9)
    np.testing.assert_allclose(np.asarray(t30["dec"]), dec, atol=1e-9)


def test_skewed_cd_matrix_of_a_cube_keeps_positions(tmp_path):
    hdr = radio_header(naxis=4)
    for key in ("CDELT1", "CDELT2", "PC1_1", "PC1_2", "PC2_1", "PC2_2"):
        hdr.remove(key, ignore_missing=True)
    # rotated by 20 deg and skewed: x and y axes not perpendicular on the sky
    cd = np.array([[-PIX_DEG * 0.94, PIX_DEG * 0.40], [PIX_DEG * 0.30, PIX_DEG * 0.95]])
    for i in range(2):
        for j in range(2):
            hdr[f"CD{i + 1}_{j + 1}"] = cd[i, j]
    path = tmp_path / "skew.fits"
    fits.PrimaryHDU(noise_image((1, 1, 32, 40)), hdr).writeto(path)
    img = read_image(path)
    x, y = np.array([0.0, 13.5, 39.0]), np.array([0.0, 7.0, 31.0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)  # CD on a 4-axis header: fixed
        expected = WCS(hdr).celestial.all_pix2world(x, y, 0)
    np.testing.assert_allclose(img.wcs.all_pix2world(x, y, 0), expected, atol=1e-10)
    # the 2D header written back keeps them too
    write_image(tmp_path / "plane.fits", img.data, img.header)
    back = read_image(tmp_path / "plane.fits")
    np.testing.assert_allclose(back.wcs.all_pix2world(x, y, 0), expected, atol=1e-10)
    # pixel area from the determinant, not from the diagonal alone
    area = abs(np.linalg.det(cd))
    assert img.pixel_scale_deg[0] * img.pixel_scale_deg[1] == pytest.approx(area, rel=0.1)
