"""ResNet18 / ResNet50 backbones (Keras 3) with multi-scale features and a pooled embedding.

The same backbone is pretrained without labels (SimCLR, BYOL) and then used by the detector, so
its layer names are fixed by the architecture alone (``stem_conv``, ``res2_block1_conv1``, ...)
and never depend on how many models were built before in the process. Weights are exchanged as
a flat ``{"layer_name/var_name": array}`` dictionary that loads by name.

Feature strides
---------------
With the standard stem (7x7 stride-2 convolution + 3x3 stride-2 max pool) the outputs
``C2, C3, C4, C5`` have strides 4, 8, 16, 32 pixels. With ``small_stem=True`` (a 3x3 stride-1
convolution and no pool, for 32-64 px cutouts) the strides are 1, 2, 4, 8 pixels.
"""

from __future__ import annotations

import numpy as np

from ssl_backbones.errors import BackboneError, BackboneWeightsError

ARCHS: dict[str, tuple[str, tuple[int, ...]]] = {
    "resnet18": ("basic", (2, 2, 2, 2)),
    "resnet50": ("bottleneck", (3, 4, 6, 3)),
}
"""Block type and number of blocks per stage (res2..res5) of each architecture."""

NORMS = ("batch", "group", "frozen_batch")
STAGE_WIDTHS = (64, 128, 256, 512)
BOTTLENECK_EXPANSION = 4


def feature_strides(small_stem: bool = False) -> dict[str, int]:
    """Stride in input pixels of each output feature map ``C2..C5``."""
    base = 1 if small_stem else 4
    return {f"C{i}": base * 2 ** (i - 2) for i in range(2, 6)}


def feature_channels(arch: str = "resnet18") -> dict[str, int]:
    """Number of channels of ``C2..C5`` and of ``pooled`` for an architecture."""
    block, _ = _arch_spec(arch)
    mult = BOTTLENECK_EXPANSION if block == "bottleneck" else 1
    out = {f"C{i + 2}": w * mult for i, w in enumerate(STAGE_WIDTHS)}
    out["pooled"] = out["C5"]
    return out


def _arch_spec(arch: str) -> tuple[str, tuple[int, ...]]:
    if arch not in ARCHS:
        raise BackboneError(f"arch: unknown backbone {arch!r}; use one of {', '.join(ARCHS)}")
    return ARCHS[arch]


def _norm(norm: str, channels: int, name: str, last_in_branch: bool = False):
    """Normalisation layer of the chosen kind.

    The last norm of each residual branch starts with a zero scale (each block starts as the
    identity), which keeps activations from growing with depth and eases training from
    scratch. A frozen norm keeps scale 1: a zero frozen scale would switch the branch off.
    """
    import keras

    gamma = "zeros" if (last_in_branch and norm != "frozen_batch") else "ones"
    if norm == "group":
        return keras.layers.GroupNormalization(
            groups=min(32, channels), epsilon=1e-5, gamma_initializer=gamma, name=name
        )
    layer = keras.layers.BatchNormalization(
        momentum=0.9, epsilon=1e-5, gamma_initializer=gamma, name=name
    )
    if norm == "frozen_batch":
        # A non-trainable BatchNormalization in Keras 3 always uses its moving statistics.
        layer.trainable = False
    return layer


def _conv(filters: int, size: int, stride: int, name: str):
    import keras

    return keras.layers.Conv2D(
        filters, size, strides=stride, padding="same", use_bias=False,
        kernel_initializer="he_normal", name=name,
    )


def _add_shortcut(x, y, out_ch: int, stride: int, prefix: str, norm: str):
    """The end of a residual block: ``relu(y + shortcut(x))``, the shortcut a strided 1x1
    projection when the block changes resolution or width, else the identity."""
    import keras

    shortcut = x
    if stride != 1 or x.shape[-1] != out_ch:
        shortcut = _conv(out_ch, 1, stride, f"{prefix}_shortcut_conv")(x)
        shortcut = _norm(norm, out_ch, f"{prefix}_shortcut_norm")(shortcut)
    y = keras.layers.Add(name=f"{prefix}_add")([y, shortcut])
    return keras.layers.ReLU(name=f"{prefix}_out")(y)


def _basic_block(x, width: int, stride: int, prefix: str, norm: str):
    import keras

    y = _conv(width, 3, stride, f"{prefix}_conv1")(x)
    y = _norm(norm, width, f"{prefix}_norm1")(y)
    y = keras.layers.ReLU(name=f"{prefix}_relu1")(y)
    y = _conv(width, 3, 1, f"{prefix}_conv2")(y)
    y = _norm(norm, width, f"{prefix}_norm2", last_in_branch=True)(y)
    return _add_shortcut(x, y, width, stride, prefix, norm)


def _bottleneck_block(x, width: int, stride: int, prefix: str, norm: str):
    import keras

    out_ch = width * BOTTLENECK_EXPANSION
    y = _conv(width, 1, 1, f"{prefix}_conv1")(x)
    y = _norm(norm, width, f"{prefix}_norm1")(y)
    y = keras.layers.ReLU(name=f"{prefix}_relu1")(y)
    # Stride on the 3x3 convolution ("ResNet v1.5"): better accuracy than striding the 1x1.
    y = _conv(width, 3, stride, f"{prefix}_conv2")(y)
    y = _norm(norm, width, f"{prefix}_norm2")(y)
    y = keras.layers.ReLU(name=f"{prefix}_relu2")(y)
    y = _conv(out_ch, 1, 1, f"{prefix}_conv3")(y)
    y = _norm(norm, out_ch, f"{prefix}_norm3", last_in_branch=True)(y)
    return _add_shortcut(x, y, out_ch, stride, prefix, norm)


def build_resnet(
    arch: str = "resnet18",
    in_channels: int = 1,
    small_stem: bool = False,
    norm: str = "batch",
    name: str | None = None,
):
    """Build a ResNet backbone as a functional Keras model.

    Parameters
    ----------
    arch : {"resnet18", "resnet50"}
        ResNet18 (basic blocks, [2, 2, 2, 2]) or ResNet50 (bottlenecks, [3, 4, 6, 3]).
    in_channels : int
        Number of image channels (1 for a single radio continuum map).
    small_stem : bool
        3x3 stride-1 stem without max pool, for tiny cutouts; feature strides become
        1, 2, 4, 8 px instead of 4, 8, 16, 32 px.
    norm : {"batch", "group", "frozen_batch"}
        Normalisation: batch norm, group norm (32 groups), or batch norm frozen to its
        moving statistics (for small detection batches).
    name : str, optional
        Model name (default: ``arch``).

    Returns
    -------
    keras.Model
        Input ``(H, W, in_channels)`` (H, W may be None); output dict with ``C2..C5``
        (``[B, H/s, W/s, C]``) and ``pooled`` (``[B, 512]`` or ``[B, 2048]``, the global
        average of C5).
    """
    import keras

    block_type, depths = _arch_spec(arch)
    if norm not in NORMS:
        raise BackboneError(f"norm: unknown normalisation {norm!r}; use one of {', '.join(NORMS)}")
    if int(in_channels) < 1:
        raise BackboneError(f"in_channels: must be >= 1, got {in_channels}")
    block = _basic_block if block_type == "basic" else _bottleneck_block

    inputs = keras.Input((None, None, int(in_channels)), name="image")
    if small_stem:
        x = _conv(64, 3, 1, "stem_conv")(inputs)
    else:
        x = _conv(64, 7, 2, "stem_conv")(inputs)
    x = _norm(norm, 64, "stem_norm")(x)
    x = keras.layers.ReLU(name="stem_relu")(x)
    if not small_stem:
        x = keras.layers.MaxPooling2D(3, strides=2, padding="same", name="stem_pool")(x)

    outputs = {}
    for stage, (width, depth) in enumerate(zip(STAGE_WIDTHS, depths)):
        level = stage + 2
        for b in range(depth):
            stride = 2 if (b == 0 and stage > 0) else 1
            x = block(x, width, stride, f"res{level}_block{b + 1}", norm)
        outputs[f"C{level}"] = x
    outputs["pooled"] = keras.layers.GlobalAveragePooling2D(name="pooled")(x)
    return keras.Model(inputs, outputs, name=name or arch)


def backbone_weights(model) -> dict[str, np.ndarray]:
    """All variables of a backbone (trainable and statistics) keyed ``"layer_name/var_name"``.

    Parameters
    ----------
    model : keras.Model
        A model returned by :func:`build_resnet`.

    Returns
    -------
    dict of str to numpy.ndarray
        E.g. ``{"stem_conv/kernel": (7, 7, 1, 64) array, "stem_norm/moving_mean": ...}``.
    """
    out: dict[str, np.ndarray] = {}
    for layer in model.layers:
        for var in layer.weights:
            out[f"{layer.name}/{_var_name(var)}"] = np.asarray(var.numpy())
    return out


def _var_name(var) -> str:
    # Keras 3 variables carry their own short name ("kernel", "gamma", "moving_mean").
    return var.name.split("/")[-1].split(":")[0]


def _arch_hint(keys) -> str:
    """Guess the architecture a set of weight keys came from, for error messages."""
    keys = set(keys)
    if any(k.startswith("res2_block1_conv3/") for k in keys):
        n5 = len({k.split("_")[1] for k in keys if k.startswith("res4_")})
        return "resnet50" if n5 == 6 else "a bottleneck ResNet"
    if any(k.startswith("res2_block1_conv2/") for k in keys):
        return "resnet18"
    return "an unknown network"


def load_backbone_weights(model, weights: dict, strict: bool = True) -> None:
    """Load a ``{"layer_name/var_name": array}`` dictionary into a backbone by name.

    Parameters
    ----------
    model : keras.Model
        A model returned by :func:`build_resnet` (built with the same arch and channels).
    weights : dict of str to array-like
        As returned by :func:`backbone_weights`.
    strict : bool
        If True, every model variable must be present and no extra keys allowed. If False,
        variables missing from ``weights`` keep their values and extra keys are ignored.
        Shape mismatches are always an error.

    Raises
    ------
    BackboneWeightsError
        One-line message listing the first missing/unexpected keys and shape mismatches.
    """
    targets = {}
    for layer in model.layers:
        for var in layer.weights:
            targets[f"{layer.name}/{_var_name(var)}"] = var
    missing = [k for k in targets if k not in weights]
    unexpected = [k for k in weights if k not in targets]
    mismatched = [
        f"{k}: weights {tuple(np.shape(weights[k]))} vs model {tuple(targets[k].shape)}"
        for k in targets
        if k in weights and tuple(np.shape(weights[k])) != tuple(targets[k].shape)
    ]
    problems = []
    if mismatched:
        problems.append(f"{len(mismatched)} shape mismatch(es) ({'; '.join(mismatched[:3])})")
    if strict and missing:
        problems.append(f"{len(missing)} missing key(s) ({', '.join(missing[:3])})")
    if strict and unexpected:
        problems.append(f"{len(unexpected)} unexpected key(s) ({', '.join(unexpected[:3])})")
    if problems:
        raise BackboneWeightsError(
            f"backbone weights do not fit model {model.name!r}: {'; '.join(problems)}; "
            f"the weights look like {_arch_hint(weights)}, the model is {_arch_hint(targets)}; "
            "build the backbone with the same "
            "arch, in_channels and small_stem as in pretraining"
        )
    for key, var in targets.items():
        if key in weights:
            var.assign(np.asarray(weights[key], dtype=var.dtype))
