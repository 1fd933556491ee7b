"""Suite-wide rule: under ``CI=true`` a test skipped for a missing real client fails instead.

Tests of the interfaces to SAOImage DS9, STILTS, Horovod (and its launchers), Aegean and PyBDSF
skip on a machine without those programs, so that the suite runs anywhere; on CI, where they
are installed on purpose, such a skip would hide a broken installation, so it is turned into a
failure naming the missing client. Any skip reason that names one of the clients counts, whether
it came from ``pytest.skip``, ``skipif`` or ``importorskip``.
"""

from __future__ import annotations

import os
import re

import pytest

REAL_CLIENTS = re.compile(r"\b(ds9|saoimage|xpa\w*|stilts|horovod\w*|mpirun|aegean|bane|"
                          r"pybdsf|bdsf)\b", re.IGNORECASE)
"""Skip reasons that mean a real client is missing."""


def on_ci() -> bool:
    """True when the suite runs on continuous integration (``CI=true``)."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2])
    return str(longrepr)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if not (report.skipped and on_ci()) or hasattr(report, "wasxfail"):
        return
    reason = _skip_reason(report)
    if REAL_CLIENTS.search(reason):
        report.outcome = "failed"
        report.longrepr = (f"CI=true and a real client is missing, so this test may not skip: "
                           f"{reason.removeprefix('Skipped: ')}")
