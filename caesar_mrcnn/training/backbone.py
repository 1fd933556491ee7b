"""The detector's starting backbone (random or pretrained) and which of its stages train."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import numpy as np

from caesar_mrcnn.errors import ConfigError, WeightsError
from caesar_mrcnn.modeling.config import ModelConfig
from caesar_mrcnn.training.config import BACKBONE_STAGES, BackboneConfig

log = logging.getLogger(__name__)

RANDOM_INIT = ("resnet18", "resnet50")
"""Backbone names that mean "this architecture, randomly initialised"."""


def resolve_backbone_spec(name: str) -> tuple[dict[str, np.ndarray] | None, dict[str, Any]]:
    """Weights and metadata of ``--backbone NAME|PATH``.

    Parameters
    ----------
    name : str
        ``resnet18``/``resnet50`` (random initialisation), a registry name (``ssl_byol_r18``)
        or the path of an exported backbone (``.npz`` with its ``.json`` beside it).

    Returns
    -------
    weights : dict or None
        ``{"layer/var": array}``; None for random initialisation.
    meta : dict
        At least ``name`` and ``arch``; pretrained backbones add ``in_channels``,
        ``small_stem``, ``method``, ...

    Raises
    ------
    WeightsError
        Unknown name, missing or corrupt files.
    """
    if name in RANDOM_INIT:
        return None, {"name": name, "arch": name}
    from caesar_mrcnn.zoo.lookup import backbone_search_dirs
    from ssl_backbones.errors import BackboneError
    from ssl_backbones.registry import resolve_backbone

    try:
        weights, meta = resolve_backbone(name, search_dirs=backbone_search_dirs())
    except BackboneError as exc:
        raise WeightsError(f"--backbone {name}: {exc}") from None
    if "arch" not in meta:
        raise WeightsError(f"--backbone {name}: its metadata does not say its architecture "
                           "(arch); re-export the backbone")
    return weights, meta


def model_config_for(model: ModelConfig, meta: dict[str, Any], channels: int,
                     input_name: str | None = None) -> ModelConfig:
    """The model configuration that fits a backbone and a preprocessing.

    The architecture follows the backbone; the number of input channels follows the
    preprocessing. A pretrained backbone must have seen the same number of channels and stem,
    and the same input (``input_name``, e.g. ``snr3-v1``): a backbone pretrained on other
    views has learned the statistics of other images, and its frozen batch-norm statistics
    would be wrong.

    Raises
    ------
    WeightsError
        The pretrained backbone was made for other channels, another stem or another input.
    """
    name = meta.get("name", "?")
    pretrained_on = meta.get("input_name")
    if input_name is not None and meta.get("name") not in RANDOM_INIT:
        if pretrained_on is None:
            log.warning("backbone %s records no input definition: it was pretrained on other "
                        "views than the detector's %s input", name, input_name)
        elif pretrained_on != input_name:
            raise WeightsError(
                f"--backbone {name}: pretrained on {pretrained_on!r} views but the detector's "
                f"preprocessing makes {input_name!r}; pretrain a backbone on the same input or "
                "set preprocess.kind to match")
    arch = str(meta["arch"])
    if arch not in RANDOM_INIT:
        raise WeightsError(f"--backbone {name}: architecture {arch!r} is not one of "
                           f"{', '.join(RANDOM_INIT)}")
    if arch != model.arch:
        log.info("backbone %s is a %s: model.arch set to %s", name, arch, arch)
    if "in_channels" in meta and int(meta["in_channels"]) != int(channels):
        raise WeightsError(
            f"--backbone {name}: pretrained on {meta['in_channels']}-channel images but the "
            f"preprocessing makes {channels} channel(s); use the pretraining's preprocessing "
            "(see the backbone's .json) or another backbone")
    if "small_stem" in meta and bool(meta["small_stem"]) != bool(model.small_stem):
        raise WeightsError(
            f"--backbone {name}: pretrained with small_stem={bool(meta['small_stem'])} but "
            f"model.small_stem is {bool(model.small_stem)}; set --set "
            f"model.small_stem={str(bool(meta['small_stem'])).lower()}")
    # Batch norm and frozen batch norm share their weights; group norm has other ones.
    if "norm" in meta and (meta["norm"] == "group") != (model.norm == "group"):
        raise WeightsError(
            f"--backbone {name}: pretrained with {meta['norm']} normalisation but model.norm is "
            f"{model.norm}; set --set model.norm="
            f"{'group' if meta['norm'] == 'group' else 'frozen_batch'}")
    if meta.get("name") in RANDOM_INIT and model.norm == "frozen_batch":
        # The last norm of every residual branch starts at zero; frozen, it stays there.
        log.warning("model.norm=frozen_batch with a randomly initialised %s: the residual "
                    "branches never train; use model.norm=batch or group, or a pretrained "
                    "backbone", arch)
    out = dataclasses.replace(model, arch=arch, in_channels=int(channels))
    try:
        out.validate()
    except ConfigError as exc:
        raise ConfigError(f"model.{exc}") from None
    return out


def load_pretrained(backbone, weights: dict[str, np.ndarray], name: str) -> None:
    """Load pretrained weights into the detector's backbone (all keys must match).

    Raises
    ------
    WeightsError
        Missing, unexpected or differently shaped variables.
    """
    from ssl_backbones.errors import BackboneError
    from ssl_backbones.resnet import load_backbone_weights

    try:
        load_backbone_weights(backbone, weights, strict=True)
    except BackboneError as exc:
        raise WeightsError(f"--backbone {name}: {exc}") from None


def stage_of(layer_name: str) -> str | None:
    """Backbone stage of a layer (``stem``, ``res2`` .. ``res5``), None if it has no weights."""
    head = layer_name.split("_", 1)[0]
    return head if head in BACKBONE_STAGES else None


def frozen_stages(cfg: BackboneConfig, step: int) -> tuple[str, ...]:
    """Backbone stages that do not train at ``step``."""
    if cfg.freeze == "none":
        return ()
    if cfg.freeze == "frozen":
        return BACKBONE_STAGES
    released = sum(1 for s in cfg.unfreeze_steps if s <= step)
    if released >= len(cfg.unfreeze_steps):
        return ()
    return BACKBONE_STAGES[released:]


class BackboneFreezer:
    """Switch backbone stages between training and frozen as the run goes on.

    A frozen layer is non-trainable, so it gets no gradient and its batch normalisation uses
    its moving statistics. Layers that the model itself made non-trainable (frozen batch
    norm) stay so.

    Parameters
    ----------
    backbone : keras.Model
        The detector's backbone (from ``build_resnet``).
    cfg : BackboneConfig
    """

    def __init__(self, backbone, cfg: BackboneConfig) -> None:
        self.backbone = backbone
        self.cfg = cfg
        self._own = {layer.name: bool(layer.trainable) for layer in backbone.layers}
        self.frozen: tuple[str, ...] | None = None

    def _set(self, frozen: tuple[str, ...]) -> None:
        for layer in self.backbone.layers:
            stage = stage_of(layer.name)
            layer.trainable = self._own[layer.name] and stage not in frozen
        self.frozen = frozen

    def update(self, step: int) -> bool:
        """Apply the policy for ``step``; True when the set of trainable layers changed."""
        frozen = frozen_stages(self.cfg, step)
        if frozen == self.frozen:
            return False
        self._set(frozen)
        return True

    def all_trainable(self, model) -> list:
        """Every variable of ``model`` that trains at some step (backbone fully released)."""
        current = self.frozen
        self._set(())
        try:
            return list(model.trainable_variables)
        finally:
            self._set(current or ())
