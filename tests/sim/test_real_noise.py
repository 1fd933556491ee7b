"""Real-noise backgrounds: evaluation images refused, sources masked, unit rms."""

import numpy as np
import pytest
from astropy.io import fits

from caesar_mrcnn.errors import ConfigError
from caesar_mrcnn.io.fits import write_image
from caesar_mrcnn.sim.beam import covariance
from caesar_mrcnn.sim.noise import correlated_noise
from caesar_mrcnn.sim.real_noise import RealNoiseBank, load_noise_image


def _header(beam_pix: float) -> fits.Header:
    return fits.Header({"CTYPE1": "RA---SIN", "CTYPE2": "DEC--SIN", "CRVAL1": 10.0,
                        "CRVAL2": -20.0, "CRPIX1": 64.0, "CRPIX2": 64.0,
                        "CDELT1": -2 / 3600, "CDELT2": 2 / 3600, "BMAJ": beam_pix * 2 / 3600,
                        "BMIN": beam_pix * 2 / 3600, "BPA": 0.0, "BUNIT": "JY/BEAM"})


@pytest.mark.parametrize("name", ["lotss_dr1_P205+55_cutout400.fits",
                                  "mirabest_first/100_122.fits",
                                  "mirabest_test/200_146.161+064.196.fits"])
def test_evaluation_images_are_refused_before_reading(tmp_path, name):
    path = tmp_path / name
    path.parent.mkdir(exist_ok=True)
    path.write_text("not even read")
    with pytest.raises(ConfigError, match="evaluation image"):
        load_noise_image(path)


def test_sources_are_masked_and_the_noise_has_unit_rms(tmp_path):
    rng = np.random.default_rng(1)
    data = correlated_noise((256, 256), covariance(4.0, 4.0, 0.0), 2e-4, rng, workers=1)
    data[100:110, 100:110] += 0.05  # a 250-sigma source
    path = tmp_path / "field.fits"
    write_image(path, data, _header(4.0))
    noise = load_noise_image(path)
    assert noise.beam_px[0] == pytest.approx(4.0)
    assert np.abs(noise.noise).max() < 7.0  # the source is gone
    assert np.std(noise.noise) == pytest.approx(1.0, rel=0.1)
    window, beam, origin = RealNoiseBank([path]).draw(np.random.default_rng(0), (300, 200))
    assert window.shape == (300, 200) and origin == "field.fits" and beam[0] == pytest.approx(4.0)
