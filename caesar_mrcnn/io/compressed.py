"""gzip- and bzip2-compressed FITS files, decompressed once.

astropy opens a ``.fits.gz`` file but cannot seek in it: every read of a window decompresses the
stream again from the start (seconds per window on a survey image). :func:`decompress_once`
decompresses the file a single time, into memory when the result is small and into an anonymous
temporary file when it is large; windows are then read from it as from any FITS file.
The temporary file is unlinked as soon as astropy has opened it, so nothing is left behind
however the run ends afterwards.
"""

from __future__ import annotations

import bz2
import gzip
import io
import os
import tempfile
import zlib
from pathlib import Path
from typing import BinaryIO

from caesar_mrcnn.errors import TruncatedFitsError

MEMORY_LIMIT_BYTES = 64 * 1024 * 1024
"""Decompressed files up to this size stay in memory; larger ones go to a temporary file."""

_CHUNK = 4 * 1024 * 1024
_GZIP, _BZIP2 = b"\x1f\x8b", b"BZh"


def compression_of(head: bytes) -> str | None:
    """``"gzip"``, ``"bzip2"`` or None from the first bytes of a file."""
    if head.startswith(_GZIP):
        return "gzip"
    if head.startswith(_BZIP2):
        return "bzip2"
    return None


def decompress_once(path: Path, memory_limit: int = MEMORY_LIMIT_BYTES
                    ) -> tuple[BinaryIO | str, int]:
    """Decompress ``path`` into a readable, seekable binary file object.

    Parameters
    ----------
    path : pathlib.Path
        A gzip or bzip2 file.
    memory_limit : int
        Size (bytes) above which the content goes to a temporary file instead of memory.

    Returns
    -------
    source : io.BytesIO or str
        The content in memory (positioned at 0), or the name of a temporary file holding it:
        open it, then remove it with :func:`release` (memory maps stay valid).
    size : int
        Decompressed size (bytes).

    Raises
    ------
    TruncatedFitsError
        When the compressed stream is cut short or corrupt.
    """
    with open(path, "rb") as fh:
        kind = compression_of(fh.read(3))
    opener = gzip.open if kind == "gzip" else bz2.open
    buffer: BinaryIO = io.BytesIO()
    size = 0
    name = None
    try:
        with opener(path, "rb") as stream:
            while chunk := stream.read(_CHUNK):
                size += len(chunk)
                if name is None and size > memory_limit:
                    buffer, name = _spill(path, buffer)
                buffer.write(chunk)
    except (EOFError, OSError, zlib.error, ValueError) as exc:
        buffer.close()
        release(name)
        raise TruncatedFitsError(f"{path}: compressed FITS file is truncated or corrupt "
                                 f"({exc}); copy it again") from None
    except BaseException:
        buffer.close()
        release(name)
        raise
    if name is not None:
        buffer.close()
        return name, size
    buffer.seek(0)
    return buffer, size


def release(name: str | None) -> None:
    """Remove a temporary file made by :func:`decompress_once` (None: nothing to do)."""
    if name is not None:
        try:
            os.unlink(name)
        except OSError:
            pass


def _spill(path: Path, buffer: io.BytesIO) -> tuple[BinaryIO, str]:
    """Move what was decompressed so far into a new temporary file."""
    fd, name = tempfile.mkstemp(prefix="caesar-mrcnn-", suffix=".fits")
    out = os.fdopen(fd, "w+b")
    out.write(buffer.getvalue())
    buffer.close()
    return out, name
