"""SIGTERM handled like Ctrl-C, in one place.

Batch schedulers end a job at its time limit, and preemption ends it early, with SIGTERM; by
default that kills Python at once, leaving temporary files and no checkpoint. Raised as
:class:`KeyboardInterrupt` instead, it unwinds through the same ``finally`` blocks as Ctrl-C:
atomic writers remove their temporary files and the train loop saves a checkpoint.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator


def _raise_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`KeyboardInterrupt`; the previous handler comes
    back on leaving it. Outside the main thread (where Python allows no signal handler) the
    block runs unchanged."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
