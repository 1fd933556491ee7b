"""What a command prints on stderr: one line per distinct problem, at the verbosity asked for.

A run on a real survey image meets the same oddity many times: astropy verifies a header at
every use, the same file is opened by several stages, libraries repeat their notices. The user
needs to read each problem once. :func:`configure_logging` sets up the root logger so that

- each distinct message is printed once per process (:class:`OncePerMessage`);
- Python warnings (astropy's included) become one log line each, ``Category: message``,
  instead of astropy's own copy plus the logging copy, or Python's two-line source excerpt;
- by default warnings and errors are shown, and progress messages (INFO) only for commands
  whose progress is their report (training, evaluation); ``quiet`` keeps errors only,
  ``verbose`` shows everything down to debug messages.
"""

from __future__ import annotations

import logging
import sys
import warnings

FORMAT = "%(levelname)s: %(message)s"
_WARNINGS_LOGGER = "py.warnings"


class OncePerMessage(logging.Filter):
    """Let each distinct (level, message) through once; later copies are dropped."""

    def __init__(self) -> None:
        super().__init__()
        self._seen: set[tuple[int, str]] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.levelno, record.getMessage())
        if key in self._seen:
            return False
        self._seen.add(key)
        return True


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """``warnings.showwarning`` replacement: one log line, ``Category: message``."""
    text = " ".join(str(message).split())
    logging.getLogger(_WARNINGS_LOGGER).warning("%s: %s", category.__name__, text)


def _quiet_astropy_logger() -> None:
    """Route astropy's log through the root logger instead of its own stream handler.

    astropy prints its warnings with its own handler and then propagates them to the root
    logger, so every astropy warning appeared twice.
    """
    try:
        from astropy import log as astropy_log
    except ImportError:  # astropy is a dependency; without it there is nothing to quiet
        return
    try:
        astropy_log.disable_warnings_logging()
    except Exception:  # astropy refuses when someone else replaced showwarning: keep theirs
        pass
    for handler in list(astropy_log.handlers):
        astropy_log.removeHandler(handler)
    astropy_log.setLevel(logging.NOTSET)
    astropy_log.propagate = True


def configure_logging(verbose: bool = False, quiet: bool = False, progress: bool = True,
                      stream=None) -> logging.Handler:
    """Set up the root logger for a command-line run.

    Parameters
    ----------
    verbose : bool
        Debug messages too.
    quiet : bool
        Errors only (``verbose`` wins when both are given).
    progress : bool
        Show INFO messages (progress reports) when neither verbose nor quiet.
    stream : file object, optional
        Where to write (default ``sys.stderr``).

    Returns
    -------
    logging.Handler
        The handler installed (replacing any earlier one this function installed).
    """
    level = (logging.DEBUG if verbose else logging.ERROR if quiet
             else logging.INFO if progress else logging.WARNING)
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_caesar_mrcnn", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler._caesar_mrcnn = True
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(OncePerMessage())
    root.addHandler(handler)
    root.setLevel(level)
    _quiet_astropy_logger()
    warnings.showwarning = _show_warning
    return handler


class HeldWarnings:
    """Hold back what the root logger's handlers would print until the run is known to go on.

    The first steps of a run (opening an image, checking its header, its beam, its pixels) warn
    about oddities that matter for the results, but not when the same steps then find that the
    run cannot go on: a failed run prints its one error line only. Records logged while held are
    printed by :meth:`release` and dropped by :meth:`discard`; leaving a ``with`` block releases
    them when it ends normally and discards them on an exception.
    """

    def __init__(self) -> None:
        self._records: list[tuple[logging.Handler, logging.LogRecord]] = []
        self._handlers: list[logging.Handler] = []

    def __enter__(self) -> HeldWarnings:
        for handler in logging.getLogger().handlers:
            holder = _Holder(self, handler)
            # first in line: a held record must not count as printed for OncePerMessage
            handler.filters.insert(0, holder)
            self._handlers.append(holder)
        return self

    def _stop(self) -> None:
        for holder in self._handlers:
            holder.handler.removeFilter(holder)
        self._handlers = []

    def release(self) -> None:
        """Stop holding and print what was held."""
        self._stop()
        records, self._records = self._records, []
        for handler, record in records:
            handler.handle(record)

    def discard(self) -> None:
        """Stop holding and drop what was held."""
        self._stop()
        self._records = []

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.release()
        else:
            self.discard()


class _Holder(logging.Filter):
    """The filter :class:`HeldWarnings` puts on one handler: keeps each record for later."""

    def __init__(self, owner: HeldWarnings, handler: logging.Handler) -> None:
        super().__init__()
        self.owner = owner
        self.handler = handler

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR:
            return True
        self.owner._records.append((self.handler, record))
        return False
