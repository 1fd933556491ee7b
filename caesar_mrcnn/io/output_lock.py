"""One writer at a time for a set of output files.

Each output is written atomically (:mod:`caesar_mrcnn.io.atomic`), so no file is ever half
written. Two runs that write the *same* set of paths (a region file, a catalogue, a JSON file)
could still interleave and leave the regions of one run beside the catalogue of the other.
:func:`output_lock` makes the writing of a whole set exclusive: it holds an advisory lock
(``flock``) on every folder the set writes into, taken in a fixed order so that two runs cannot
deadlock. The lock is on the folder itself, so no lock file is left behind.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: atomic files only
    fcntl = None


@contextlib.contextmanager
def output_lock(paths: Iterable[str | os.PathLike | None]) -> Iterator[None]:
    """Hold an exclusive lock on the folders of ``paths`` (None entries are ignored).

    Blocks until every other holder of a lock on one of these folders is done.
    """
    folders = sorted({str(Path(p).resolve().parent) for p in paths if p is not None})
    fds: list[int] = []
    try:
        if fcntl is not None:
            for folder in folders:
                try:
                    fd = os.open(folder, os.O_RDONLY)
                except OSError:
                    continue  # a folder that cannot be opened fails at the write, named there
                fds.append(fd)
                fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        for fd in reversed(fds):
            os.close(fd)  # closing the descriptor releases its lock
