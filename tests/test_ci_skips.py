"""Under CI=true a skip for a missing real client fails; other skips stay skips."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

CONFTEST = Path(__file__).resolve().parent / "conftest.py"

SAMPLE = '''
import pytest

def test_needs_stilts():
    pytest.skip("STILTS not installed")

@pytest.mark.skipif(True, reason="Horovod with TensorFlow support is not installed")
def test_needs_horovod():
    pass

def test_needs_a_gpu():
    pytest.skip("no GPU on this machine")

def test_plain():
    assert True
'''


def _run(folder: Path, ci: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci is not None:
        env["CI"] = ci
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider",
                           str(folder)], capture_output=True, text=True, env=env, timeout=120)
    return proc.stdout


@pytest.fixture
def suite(tmp_path) -> Path:
    (tmp_path / "conftest.py").write_text(CONFTEST.read_text())
    (tmp_path / "test_sample.py").write_text(SAMPLE)
    return tmp_path


def test_client_skips_fail_on_ci(suite):
    out = _run(suite, "true")
    # a skipif marker acts at set-up, so its test errors rather than fails: CI goes red either way
    assert "1 failed, 1 passed, 1 skipped, 1 error" in out, out
    assert "FAILED" in out and "test_needs_stilts" in out and "test_needs_horovod" in out
    assert "a real client is missing" in out


def test_client_skips_are_skips_elsewhere(suite):
    out = _run(suite, None)
    assert "1 passed, 3 skipped" in out, out
