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
