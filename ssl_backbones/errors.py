"""Errors users can cause in self-supervised pretraining and backbone loading.

``ssl_backbones`` does not import ``caesar_mrcnn``; the command line catches these alongside
``caesar_mrcnn.errors.CaesarError`` and prints the one-line message.
"""

from __future__ import annotations


class BackboneError(Exception):
    """Base class: a one-line message naming the file or option and the fix."""

    exit_code = 2


class BackboneWeightsError(BackboneError):
    """Backbone weights are missing, corrupt, or do not match the architecture or channels."""


class RegistryError(BackboneError):
    """A registry name is unknown or its entry is incomplete."""


class PretrainConfigError(BackboneError):
    """A pretraining option or data folder is invalid."""


class DistributedSetupError(BackboneError):
    """Horovod was requested but is missing, not built with TensorFlow, or not launched."""
