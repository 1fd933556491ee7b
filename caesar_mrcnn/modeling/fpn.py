"""Feature pyramid network: P2..P5 from C2..C5 by lateral 1x1 + top-down sum, P6 by pooling."""

from __future__ import annotations


def build_fpn(in_channels: dict[str, int], channels: int = 256, name: str = "fpn"):
    """Build the FPN as a functional Keras model.

    Parameters
    ----------
    in_channels : dict
        Channels of the backbone maps ``{"C2": c2, ..., "C5": c5}``.
    channels : int
        Channels of every pyramid level.
    name : str
        Model name.

    Returns
    -------
    keras.Model
        Input dict ``C2..C5`` (``[B, H/s, W/s, c]``, each twice the size of the next);
        output dict ``P2..P6`` with ``channels`` channels each. P6 is a stride-2 subsampling
        of P5 (max pool with a 1x1 window), used only by the RPN.
    """
    import keras

    inputs = {k: keras.Input((None, None, in_channels[k]), name=k) for k in ("C2", "C3", "C4",
                                                                          "C5")}
    laterals = {
        lv: keras.layers.Conv2D(channels, 1, name=f"fpn_lateral{lv}")(inputs[f"C{lv}"])
        for lv in (2, 3, 4, 5)
    }
    merged = {5: laterals[5]}
    for lv in (4, 3, 2):
        up = keras.layers.UpSampling2D(2, interpolation="nearest",
                                       name=f"fpn_upsample{lv + 1}")(merged[lv + 1])
        merged[lv] = keras.layers.Add(name=f"fpn_sum{lv}")([laterals[lv], up])
    outputs = {
        f"P{lv}": keras.layers.Conv2D(channels, 3, padding="same", name=f"fpn_output{lv}")(
            merged[lv]
        )
        for lv in (2, 3, 4, 5)
    }
    outputs["P6"] = keras.layers.MaxPooling2D(1, strides=2, padding="same", name="fpn_p6")(
        outputs["P5"]
    )
    return keras.Model(inputs, outputs, name=name)
