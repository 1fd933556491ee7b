"""FITS reading, writing and lazy windows on real files written with astropy."""

from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from caesar_mrcnn.errors import (
    AllNaNError,
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
