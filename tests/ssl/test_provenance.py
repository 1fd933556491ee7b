"""Provenance records: the git state of a real checkout, the command line, data digests,
versions; and the text printed for files with and without a record."""

from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pytest

from ssl_backbones import provenance

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def _git(repo, *args):
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True).stdout.strip()


@needs_git
def test_git_state_of_a_checkout_clean_dirty_and_outside(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    code = repo / "pkg" / "mod.py"
    code.parent.mkdir()
    code.write_text("X = 1\n")
    _git(repo, "add", "pkg/mod.py")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-qm", "one")
    head = _git(repo, "rev-parse", "HEAD")
    assert provenance.git_state(code) == {"commit": head, "dirty": False}
    (repo / "pkg" / "new.py").write_text("Y = 2\n")  # untracked code also changes the run
    assert provenance.git_state(code) == {"commit": head, "dirty": True}
    (repo / "pkg" / "new.py").unlink()
    code.write_text("X = 3\n")
    assert provenance.git_state(code) == {"commit": head, "dirty": True}
    # A file git does not track (e.g. a package installed into a venv inside a checkout).
    assert provenance.git_state(repo / "pkg" / "untracked.py") is None
    outside = tmp_path / "elsewhere" / "mod.py"
    outside.parent.mkdir()
    outside.write_text("")
    assert provenance.git_state(outside) is None


def test_collect_records_command_data_and_versions(tmp_path):
    ann = tmp_path / "coco.json"
    ann.write_text('{"images": []}')
    record = provenance.collect(data=[ann], argv=["/opt/bin/caesar-mrcnn", "train", "--data",
                                                  str(ann)])
    assert record["command"] == ["caesar-mrcnn", "train", "--data", str(ann)]
    assert record["data"] == [str(ann)]
    assert record["data_digest"] == provenance.path_digest([ann])
    versions = record["versions"]
    assert versions["numpy"] == np.__version__
    assert versions["python"] == ".".join(map(str, sys.version_info[:3]))
    assert set(record) >= {"git", "recorded", "versions"}
    # Without data there is no digest; a digest given by the caller wins.
    assert provenance.collect(argv=["x"])["data_digest"] is None
    assert provenance.collect(data=[ann], data_digest="abc", argv=["x"])["data_digest"] == "abc"


def test_driver_script_is_recorded(tmp_path, monkeypatch):
    monkeypatch.setenv(provenance.DRIVER_ENV, "scripts/train_reference.sh runs/reference")
    assert provenance.collect(argv=["x"])["driver"] == "scripts/train_reference.sh runs/reference"
    monkeypatch.delenv(provenance.DRIVER_ENV)
    assert "driver" not in provenance.collect(argv=["x"])


def test_path_digest_follows_content_of_files_and_listing_of_folders(tmp_path):
    ann = tmp_path / "coco.json"
    ann.write_text("[1]")
    first = provenance.path_digest([ann])
    ann.write_text("[2]")
    assert provenance.path_digest([ann]) != first
    folder = tmp_path / "fields"
    (folder / "a").mkdir(parents=True)
    (folder / "a" / "f1.fits").write_bytes(b"x" * 10)
    listing = provenance.path_digest([folder])
    (folder / "a" / "f2.fits").write_bytes(b"y")
    assert provenance.path_digest([folder]) != listing
    assert provenance.path_digest([tmp_path / "gone"]) != provenance.path_digest([folder])


def test_describe_old_and_new_records():
    assert provenance.describe(None) == ["provenance: not recorded"]
    lines = provenance.describe({"git": {"commit": "abc123", "dirty": True},
                                 "command": ["caesar-mrcnn", "train", "--data", "my data"],
                                 "data": ["my data"], "data_digest": "ff00",
                                 "versions": {"python": "3.11.7", "numpy": "2.1.0"},
                                 "recorded": "2026-11-30T10:00:00+00:00"})
    text = "\n".join(lines)
    assert "abc123 (with uncommitted changes)" in text
    assert "caesar-mrcnn train --data 'my data'" in text
    assert "data digest:  ff00" in text and "numpy 2.1.0" in text
    assert "not a git checkout" in "\n".join(provenance.describe({"git": None, "command": []}))
