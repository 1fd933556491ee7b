"""The shipped detector sees significance, not contrast: pure noise gives no detections."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from caesar_mrcnn.detection.detector import load_detector  # noqa: E402
from caesar_mrcnn.detection.infer import InferConfig, infer_image  # noqa: E402
from caesar_mrcnn.io.fits import write_image  # noqa: E402
from caesar_mrcnn.sim.beam import covariance  # noqa: E402
from caesar_mrcnn.sim.noise import correlated_noise  # noqa: E402


@pytest.fixture(scope="module")
def detector():
    return load_detector()


def _header(beam_arcsec: float, pix_arcsec: float) -> dict:
    return {"CTYPE1": "RA---SIN", "CTYPE2": "DEC--SIN", "CRVAL1": 150.0, "CRVAL2": 2.0,
            "CRPIX1": 100.0, "CRPIX2": 100.0, "CDELT1": -pix_arcsec / 3600,
            "CDELT2": pix_arcsec / 3600, "RADESYS": "ICRS", "BMAJ": beam_arcsec / 3600,
            "BMIN": beam_arcsec / 3600, "BPA": 0.0, "BUNIT": "JY/BEAM"}


@pytest.mark.parametrize("beam_pix, rms", [(3.0, 1e-4), (6.0, 2e-3)])
def test_noise_only_tiles_give_no_detections(detector, tmp_path, beam_pix, rms):
    from astropy.io import fits

    rng = np.random.default_rng(int(beam_pix * 10))
    noise = correlated_noise((300, 300), covariance(beam_pix, beam_pix, 0.0), rms, rng,
                             workers=1)
    path = tmp_path / "noise.fits"
    write_image(path, noise, fits.Header(_header(beam_pix * 2.0, 2.0)))
    # no significance cut: whatever comes out is the network's own doing
    result = infer_image(path, detector=detector, config=InferConfig(min_snr=0.0))
    assert result.ntiles > 0
    assert len(result.objects) == 0, [(o.category, o.attrs.get("score")) for o in result.objects]
