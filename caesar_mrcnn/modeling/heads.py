"""Second-stage heads: box head (class logits + class-specific deltas) and mask head."""

from __future__ import annotations

from collections.abc import Sequence


def build_box_head(roi_size: int, in_channels: int, fc_dims: Sequence[int], num_classes: int,
                   name: str = "box_head"):
    """Fully connected box head on ``roi_size x roi_size`` ROI features.

    Returns
    -------
    keras.Model
        ``[R, roi_size, roi_size, in_channels]`` -> ``{"logits": [R, K], "deltas": [R, K * 4]}``
        (float32; K includes the background class 0).
    """
    import keras

    x = inputs = keras.Input((roi_size, roi_size, in_channels), name="roi_features")
    x = keras.layers.Flatten(name="box_flatten")(x)
    for i, dim in enumerate(fc_dims):
        x = keras.layers.Dense(dim, activation="relu", name=f"box_fc{i + 1}")(x)
    logits = keras.layers.Dense(
        num_classes, kernel_initializer=keras.initializers.RandomNormal(stddev=0.01),
        dtype="float32", name="box_class_logits",
    )(x)
    deltas = keras.layers.Dense(
        num_classes * 4, kernel_initializer=keras.initializers.RandomNormal(stddev=0.001),
        dtype="float32", name="box_deltas",
    )(x)
    return keras.Model(inputs, {"logits": logits, "deltas": deltas}, name=name)


def build_mask_head(roi_size: int, in_channels: int, num_convs: int, channels: int,
                    num_classes: int, name: str = "mask_head"):
    """Convolutional mask head: ``num_convs`` 3x3 convs, a 2x deconvolution, per-class logits.

    Returns
    -------
    keras.Model
        ``[R, roi_size, roi_size, in_channels]`` -> ``[R, 2*roi_size, 2*roi_size, K]`` float32
        mask logits, one channel per class.
    """
    import keras

    x = inputs = keras.Input((roi_size, roi_size, in_channels), name="roi_features")
    for i in range(num_convs):
        x = keras.layers.Conv2D(channels, 3, padding="same", activation="relu",
                                kernel_initializer="he_normal", name=f"mask_conv{i + 1}")(x)
    x = keras.layers.Conv2DTranspose(channels, 2, strides=2, activation="relu",
                                     kernel_initializer="he_normal", name="mask_deconv")(x)
    logits = keras.layers.Conv2D(
        num_classes, 1, kernel_initializer=keras.initializers.RandomNormal(stddev=0.001),
        dtype="float32", name="mask_logits",
    )(x)
    return keras.Model(inputs, logits, name=name)
