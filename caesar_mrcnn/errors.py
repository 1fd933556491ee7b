"""Exception types users can cause and see.

Every error a user can provoke with a bad file, option, configuration or weights file is a
:class:`CaesarError`. Its message is one line that names the file or option and says how to fix
it; the command-line interface prints it and exits non-zero without a traceback.
"""

from __future__ import annotations


class CaesarError(Exception):
    """Base class of all user-facing errors (one-line message, no traceback at the CLI)."""

    exit_code = 2


# --- input images -------------------------------------------------------------------------------


class InputImageError(CaesarError):
    """A FITS image that cannot be used."""


class NotFitsError(InputImageError):
    """The file is not a FITS file."""


class TruncatedFitsError(InputImageError):
    """The FITS file ends before its header says it should."""


class NoImageHDUError(InputImageError):
    """No HDU holds image data."""


class EmptyImageError(InputImageError):
    """The image HDU has no data, or a zero-sized axis."""


class AllNaNError(InputImageError):
    """Every pixel is NaN or infinite."""


class ImageShapeError(InputImageError):
    """The image is not 2D after dropping degenerate axes, or a cube plane was not chosen."""


# --- configuration, datasets, models, outputs ---------------------------------------------------


class ConfigError(CaesarError):
    """A configuration file or command-line override is invalid."""


class DatasetError(CaesarError):
    """A dataset (COCO JSON, caesar JSON list, cutout folder) is malformed or inconsistent."""


class WeightsError(CaesarError):
    """Model weights are missing, corrupt, or do not match the model they are loaded into."""


class CheckpointError(CaesarError):
    """A training checkpoint is missing or corrupt."""


class OutputError(CaesarError):
    """An output file cannot be written."""


class DistributedError(CaesarError):
    """A distributed (Horovod) run is misconfigured."""
