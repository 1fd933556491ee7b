"""Where a model file came from: code version, command line, data and software.

Every model file the project writes (a backbone registry entry, a detector file, its compact
form, a training checkpoint) carries one :func:`collect` record under the key ``provenance``::

    {"git": {"commit": "3f2c...", "dirty": false},   # None outside a git checkout
     "command": ["caesar-mrcnn", "train", "--config", ...],
     "driver": "scripts/train_reference.sh runs/reference",   # only when set, see below
     "data": ["runs/reference/train"], "data_digest": "9a1e...",
     "versions": {"python": "3.11.2", "numpy": "2.1.3", "tensorflow": "2.21.0", ...},
     "recorded": "2026-11-30T10:02:11+00:00"}

Reading the state of the code never fails a run: without git, outside a checkout, or when git
takes longer than :data:`GIT_TIMEOUT_S`, ``git`` is None. ``dirty`` is true when ``git status
--porcelain`` lists anything (modified, staged or untracked files), so the commit alone does
not reproduce the code.

A script that runs several commands (``scripts/train_reference.sh``) exports
:data:`DRIVER_ENV` with its own command line; every model file made under it records that too.

This module imports nothing of ``caesar_mrcnn`` (which uses it), nor TensorFlow: versions are
read from the installed distributions.
"""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

GIT_TIMEOUT_S = 5.0
"""Longest wait for one git command (seconds); on a slow or hung file system git is skipped."""

DRIVER_ENV = "CAESAR_MRCNN_DRIVER"
"""Environment variable naming the script (with its arguments) that drives a run."""

NOT_RECORDED = "not recorded"
"""What :func:`describe` prints for files written before provenance was recorded."""

# Distribution names, in order of preference, for each version reported.
_DISTRIBUTIONS = {
    "numpy": ("numpy",),
    "tensorflow": ("tensorflow", "tensorflow-cpu", "tensorflow-gpu", "tf-nightly"),
    "keras": ("keras",),
    "horovod": ("horovod",),
    "caesar-mrcnn": ("caesar-mrcnn",),
}


def _git(args: Sequence[str], cwd: Path) -> str | None:
    """Output of ``git -C cwd ARGS`` (stripped), or None if git fails, is missing or hangs."""
    try:
        res = subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, text=True,
                             timeout=GIT_TIMEOUT_S, check=False,
                             env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"})
    except (OSError, subprocess.SubprocessError):
        return None
    return res.stdout.strip() if res.returncode == 0 else None


def git_state(path: str | Path | None = None) -> dict[str, Any] | None:
    """Commit and dirty flag of the git checkout that holds the code at ``path``.

    Parameters
    ----------
    path : path-like, optional
        A file of the code (default: this module). Its checkout is used only when git tracks
        that file: a package installed into a virtual environment that happens to lie inside
        some other repository gets None, not that repository's commit.

    Returns
    -------
    dict or None
        ``{"commit": str, "dirty": bool}``; None when the code is not in a git checkout or git
        cannot tell in time.
    """
    path = Path(path) if path is not None else Path(__file__)
    folder = path.resolve().parent
    if _git(["ls-files", "--error-unmatch", path.name], folder) is None:
        return None
    commit = _git(["rev-parse", "HEAD"], folder)
    status = _git(["status", "--porcelain"], folder)
    if not commit or status is None:
        return None
    return {"commit": commit, "dirty": bool(status)}


def software_versions() -> dict[str, str]:
    """Versions of Python and of the packages a model depends on (those installed).

    Returns
    -------
    dict
        ``python`` and, when installed, ``numpy``, ``tensorflow``, ``keras``, ``horovod`` and
        ``caesar-mrcnn``.
    """
    found = {"python": platform.python_version()}
    for key, names in _DISTRIBUTIONS.items():
        for name in names:
            try:
                found[key] = metadata.version(name)
                break
            except metadata.PackageNotFoundError:
                continue
    return found


def path_digest(paths: Iterable[str | Path]) -> str:
    """SHA-256 (hex) of what a dataset is made of, cheap enough for thousands of files.

    A file contributes its name and its bytes (an annotation file lists every image and
    label); a folder contributes the relative name and size of every file below it.

    Parameters
    ----------
    paths : iterable of path-like
        Dataset files and folders, in the order given.
    """
    h = hashlib.sha256()
    for p in map(Path, paths):
        if p.is_dir():
            h.update(f"dir {p.name}\n".encode())
            for f in sorted(q for q in p.rglob("*") if q.is_file()):
                h.update(f"{f.relative_to(p).as_posix()}\t{f.stat().st_size}\n".encode())
        elif p.is_file():
            h.update(f"file {p.name}\n".encode())
            with open(p, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
        else:
            h.update(f"missing {p.name}\n".encode())
    return h.hexdigest()


def collect(data: Sequence[str | Path] = (), data_digest: str | None = None,
            argv: Sequence[str] | None = None) -> dict[str, Any]:
    """The provenance record of a model file written now.

    Parameters
    ----------
    data : sequence of path-like
        The training data as given on the command line or in the configuration.
    data_digest : str, optional
        Digest of that data (default: :func:`path_digest` of ``data``; None without data).
    argv : sequence of str, optional
        Command line (default: ``sys.argv``, with the program reduced to its name).

    Returns
    -------
    dict
        JSON-serialisable; see the module docstring.
    """
    argv = list(sys.argv if argv is None else argv)
    if argv and os.sep in argv[0]:
        argv[0] = Path(argv[0]).name
    data = [str(d) for d in data]
    if data_digest is None and data:
        data_digest = path_digest(data)
    record = {"git": git_state(), "command": argv}
    driver = os.environ.get(DRIVER_ENV)
    if driver:
        record["driver"] = driver
    record.update(data=data, data_digest=data_digest, versions=software_versions(),
                  recorded=datetime.now(timezone.utc).isoformat(timespec="seconds"))
    return record


def describe(record: Mapping[str, Any] | None) -> list[str]:
    """Human-readable lines of a provenance record (``not recorded`` for older files)."""
    if not record:
        return [f"provenance: {NOT_RECORDED}"]
    git = record.get("git")
    if git:
        code = f"{git.get('commit')}{' (with uncommitted changes)' if git.get('dirty') else ''}"
    else:
        code = "not a git checkout"
    versions = record.get("versions") or {}
    lines = [f"git commit:   {code}",
             f"command:      {_shell_join(record.get('command') or []) or NOT_RECORDED}"]
    if record.get("driver"):
        lines.append(f"driven by:    {record['driver']}")
    lines += [f"data:         {', '.join(record.get('data') or []) or NOT_RECORDED}",
              f"data digest:  {record.get('data_digest') or NOT_RECORDED}",
              "versions:     " + (", ".join(f"{k} {v}" for k, v in versions.items())
                                  or NOT_RECORDED),
              f"recorded:     {record.get('recorded', NOT_RECORDED)}"]
    return lines


def _shell_join(argv: Sequence[str]) -> str:
    import shlex

    return " ".join(shlex.quote(str(a)) for a in argv)
