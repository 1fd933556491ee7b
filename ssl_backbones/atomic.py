"""Atomic file writes: a temporary file beside the target, renamed over it on success.

An interrupted run (exception, Ctrl-C, kill) never leaves a half-written output behind, and an
existing file is replaced only once the new one is complete. ``caesar_mrcnn.io.atomic`` is a
thin layer over :func:`atomic_target`.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_target(path: str | os.PathLike, *, make_parents: bool = True,
                  error: type[Exception] = OSError) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` if the block succeeds,
    delete it if the block raises (so no partial file is ever visible).

    The temporary file does not exist yet when the block starts (writers such as astropy refuse
    to overwrite without being told), and its name keeps the suffix of ``path`` so writers that
    choose a format by extension behave as for the final name.

    Parameters
    ----------
    path : str or path-like
        Final location of the file.
    make_parents : bool
        Create the folder of ``path`` (and its parents) when missing; if False, a missing
        folder is an error.
    error : exception class
        Raised, with a one-line message naming ``path`` and its folder, when the folder is
        missing (``make_parents=False``), cannot be created, or is not writable.
    """
    path = Path(path)
    if path.is_dir():
        raise error(f"{path}: is a folder; give a file name")
    folder = path.parent if str(path.parent) else Path(".")
    if make_parents:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise error(f"{path}: cannot create output folder {folder} ({exc.strerror})") from exc
    elif not folder.is_dir():
        raise error(f"{path}: output folder {folder} does not exist; create it first")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".part{path.suffix}",
                                   dir=folder)
    except OSError as exc:
        raise error(f"{path}: cannot write in {folder} ({exc.strerror})") from exc
    os.close(fd)
    tmp_path = Path(tmp)
    tmp_path.unlink()
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
