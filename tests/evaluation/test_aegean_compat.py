"""The NumPy 2 shim for AegeanTools (``aegean_compat``), driven on AegeanTools' own error path.

A component whose amplitude is held at exactly zero has a Jacobian of zeros for its free
parameters (position, size and angle: each derivative is a multiple of the amplitude), so its
covariance matrix is the zero matrix, singular on every machine: ``covar_errors`` must reach
its ``except`` clause, the one that names ``numpy.linalg.linalg``.
"""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from caesar_mrcnn.evaluation import aegean_compat, finders

fitting = pytest.importorskip("AegeanTools.fitting")
lmfit = pytest.importorskip("lmfit")

NUMPY_LACKS_ALIAS = not hasattr(np.linalg, "linalg")


FREE = ("xo", "yo", "sx", "sy", "theta")


def one_component(amp: float):
    """Aegean's parameters of one elliptical Gaussian (pixels, radians); amplitude fixed."""
    params = lmfit.Parameters()
    params.add("components", value=1, vary=False)
    params.add("c0_amp", value=amp, vary=False)
    for name, value in zip(FREE, (5.0, 5.0, 2.0, 1.5, 0.3)):
        params.add(f"c0_{name}", value=value, vary=True)
    return params


DATA = np.ones((11, 11))


@pytest.mark.skipif(not NUMPY_LACKS_ALIAS, reason="this NumPy still has numpy.linalg.linalg")
def test_without_the_alias_aegean_dies_on_a_singular_covariance():
    with pytest.raises(AttributeError, match="linalg"):
        fitting.covar_errors(one_component(0.0), DATA, errs=None, B=None)


def test_the_alias_lets_the_error_path_finish_and_counts_it():
    with aegean_compat.linalg_alias() as alias:
        params = fitting.covar_errors(one_component(0.0), DATA, errs=None, B=None)
    # Aegean's fallback: every free parameter gets the error -2.
    assert [params[f"c0_{p}"].stderr for p in FREE] == [-2] * len(FREE)
    if NUMPY_LACKS_ALIAS:
        assert alias.uses == 1
        assert not hasattr(np.linalg, "linalg")  # restored on leaving the block
    else:
        assert alias is None


def test_a_regular_fit_does_not_touch_the_alias():
    with aegean_compat.linalg_alias() as alias:
        params = fitting.covar_errors(one_component(3.0), DATA, errs=None, B=None)
    assert np.isfinite(params["c0_xo"].stderr) and params["c0_xo"].stderr > 0
    if alias is not None:
        assert alias.uses == 0


@pytest.mark.skipif(not NUMPY_LACKS_ALIAS, reason="this NumPy still has numpy.linalg.linalg")
@pytest.mark.skipif(not finders.available("aegean"), reason="Aegean is not installed")
def test_the_script_reports_its_count_in_the_line_finders_read():
    script = Path(aegean_compat.__file__)
    proc = subprocess.run([sys.executable, str(script), "--version"], capture_output=True,
                          text=True, timeout=120)
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("caesar-mrcnn-compat: ")]
    assert lines == ["caesar-mrcnn-compat: 0"]
