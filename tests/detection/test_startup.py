"""What a run does before its first tile: a bad input or ``--help`` never waits for
TensorFlow, and the model is traced once per tile shape whatever the batch size."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

_PROBE = """
import sys
from caesar_mrcnn.cli import main
try:
    status = main(sys.argv[1:])
except SystemExit as exc:  # --help
    status = exc.code
print("TF" if "tensorflow" in sys.modules else "noTF", status)
"""


@pytest.mark.parametrize("argv", [
    ["--help"],
    ["infer", "--help"],
    ["infer", "{tmp}/missing.fits", "--regions", "{tmp}/out.reg"],
    ["infer", "{tmp}/image.fits", "--regions", "{tmp}/no/such/folder/out.reg"],
    ["infer", "{tmp}/image.fits", "--regions", "{tmp}/out.reg", "--set", "min_snr=-1"],
])
def test_bad_input_and_help_do_not_import_tensorflow(tmp_path, argv):
    from caesar_mrcnn.io.fits import write_image

    write_image(tmp_path / "image.fits", np.zeros((32, 32), np.float32))
    args = [a.format(tmp=tmp_path) for a in argv]
    out = subprocess.run([sys.executable, "-c", _PROBE, *args], capture_output=True,
                         text=True, timeout=120)
    kind, status = out.stdout.split()[-2:]
    assert kind == "noTF", out.stderr
    assert status != "None" or argv[-1] == "--help"
    assert not (tmp_path / "out.reg").exists()


def test_model_is_traced_once_per_tile_shape():
    tf = pytest.importorskip("tensorflow")
    from caesar_mrcnn.detection.detector import ModelPredictor

    traces = []

    def model(x, training=False):
        traces.append(tuple(x.shape[1:]))  # runs once per trace, not per call
        n = tf.shape(x)[0]
        return {"scores": tf.zeros((n, 1)), "masks": tf.zeros((n, 1, 4, 4))}

    predict = ModelPredictor(model)
    for n in (4, 4, 1, 3):
        out = predict(np.zeros((n, 64, 64, 1), np.float32), np.zeros((n, 4)))
        assert out["scores"].shape == (n, 1)
    predict(np.zeros((2, 128, 128, 1), np.float32), np.zeros((2, 4)))
    predict(np.zeros((1, 64, 64, 1), np.float32), np.zeros((1, 4)))
    assert traces == [(64, 64, 1), (128, 128, 1)]
