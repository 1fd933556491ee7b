"""The locked dependency set: it satisfies setup.cfg, and it is what this environment runs.

``make setup`` installs ``requirements/lock.txt`` exactly; these tests catch a lock that no
longer satisfies setup.cfg (a requirement changed without ``make lock``) and an environment
that drifted from the lock (a package upgraded by hand), either of which would make the test
suite's verdict say nothing about a fresh machine.
"""

import configparser
import importlib.metadata as md
import re
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements" / "lock.txt"
EXTRAS = ("dev", "compare", "horovod")


def lock_pins() -> dict[str, str]:
    """``{name: version}`` of the lock's lines whose markers hold for this interpreter."""
    pins = {}
    for line in LOCK.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        req = Requirement(line)
        spec = [s for s in req.specifier]
        assert len(spec) == 1 and spec[0].operator == "==", f"{line}: not an exact pin"
        if req.marker is None or req.marker.evaluate():
            name = canonicalize_name(req.name)
            assert name not in pins, f"{name}: pinned twice for this interpreter"
            pins[name] = spec[0].version
    return pins


def setup_requirements() -> list[Requirement]:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    lines = cfg["options"]["install_requires"].splitlines()
    for extra in EXTRAS:
        lines += cfg["options.extras_require"][extra].splitlines()
    return [Requirement(ln.strip()) for ln in lines if ln.strip()]


def test_the_lock_satisfies_every_requirement_of_setup_cfg():
    pins = lock_pins()
    for req in setup_requirements():
        if req.marker is not None and not req.marker.evaluate():
            continue
        name = canonicalize_name(req.name)
        assert name in pins, f"{req}: not in {LOCK.name}; run make lock"
        assert req.specifier.contains(pins[name], prereleases=True), \
            f"{req}: the lock pins {pins[name]}; run make lock"


def test_this_environment_runs_the_locked_versions():
    drifted = []
    for name, version in lock_pins().items():
        try:
            installed = md.version(name)
        except md.PackageNotFoundError:
            # Build tools (cmake) are installed only when Horovod is built, not from the cache.
            continue
        if installed != version:
            drifted.append(f"{name} {installed} (lock: {version})")
    assert not drifted, "installed versions differ from the lock; run make setup: " + \
        ", ".join(drifted)


def test_horovod_is_the_pinned_build():
    pin = re.search(r"^horovod==([\d.]+)", (ROOT / "requirements" / "horovod.txt").read_text(),
                    re.M)
    assert pin, "requirements/horovod.txt has no horovod==VERSION line"
    try:
        installed = md.version("horovod")
    except md.PackageNotFoundError:
        pytest.skip("Horovod is not installed")
    assert installed == pin.group(1)
