"""Atomic file output: write to a temporary file in the target folder, then rename.

An interrupted run (exception, Ctrl-C, kill) never leaves a half-written output behind, and an
existing file is replaced only once the new one is complete. The mechanism is
:func:`ssl_backbones.atomic.atomic_target`; here output folders must already exist and problems
raise :class:`OutputError`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from caesar_mrcnn.errors import OutputError
from ssl_backbones.atomic import atomic_target


def make_output_folder(path: str | os.PathLike, option: str = "--out") -> Path:
    """Create an output folder (and its parents) if needed.

    Raises
    ------
    OutputError
        One line naming the option and the folder when it cannot be created.
    """
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{option} {path}: cannot create the output folder "
                          f"({exc.strerror}); choose another {option}") from None
    return path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` if the block succeeds.

    The temporary name keeps the suffix of ``path`` so writers that choose a format by
    extension (astropy, matplotlib) behave as for the final name.

    Raises
    ------
    OutputError
        If the folder of ``path`` does not exist or is not writable.
    """
    with atomic_target(path, make_parents=False, error=OutputError) as tmp:
        yield tmp


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", **kwargs) -> Iterator:
    """Open a file object whose content appears at ``path`` only once it is closed cleanly."""
    with atomic_path(path) as tmp, open(tmp, mode, **kwargs) as fh:
        yield fh
