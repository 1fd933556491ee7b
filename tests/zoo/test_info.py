"""``caesar-mrcnn info``: the kind and provenance of every model file, "not recorded" for
files written before provenance was kept; provenance recorded by each writer."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from caesar_mrcnn.errors import WeightsError  # noqa: E402
from caesar_mrcnn.training.checkpoint import FORMAT, save_checkpoint  # noqa: E402
from caesar_mrcnn.zoo.info import format_info, model_info  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "caesar_mrcnn" / "weights"


def test_checkpoint_records_provenance_and_info_prints_it(tmp_path):
    a = keras.Variable(np.ones((2, 2), np.float32))
    step = keras.Variable(np.int64(3))
    path = save_checkpoint(tmp_path, 3, [a], [step], {"world_size": 1})
    info = model_info(path)
    assert info["kind"] == "checkpoint" and info["facts"]["step"] == "3"
    record = info["provenance"]
    assert record["versions"]["numpy"] == np.__version__ and record["command"]
    text = "\n".join(format_info(info))
    assert "git commit:" in text and "versions:" in text and "numpy" in text


def test_old_files_say_not_recorded_through_the_installed_command(tmp_path, cli):
    old_ckpt = tmp_path / "ckpt-00000005.npz"
    np.savez(old_ckpt, **{"__info__": np.array(json.dumps(
        {"format": FORMAT, "step": 5, "n_model": 0, "n_optim": 0, "meta": {}}))})
    entry = json.loads((SHIPPED / "ssl_byol_r18.json").read_text())
    entry.pop("provenance", None)
    (tmp_path / "old_r18.json").write_text(json.dumps(entry))
    shutil.copy(SHIPPED / "ssl_byol_r18.npz", tmp_path / "old_r18.npz")
    env = {**os.environ, "CAESAR_MRCNN_BACKBONES": str(tmp_path)}
    for target, kind in ((old_ckpt, "checkpoint"), ("old_r18", "backbone")):
        res = cli("info", target, env=env, timeout=120)
        assert res.returncode == 0, res.stderr
        assert f"kind:         {kind}" in res.stdout
        assert "provenance: not recorded" in res.stdout
    res = cli("info", tmp_path / "nothing.npz", env=env, timeout=120)
    assert "nothing.npz" in cli.error_line(res) and res.stdout == ""


@pytest.mark.parametrize("content", [None, b"hello"])
def test_not_a_model_file(tmp_path, content):
    path = tmp_path / "other.npz"
    if content is None:
        np.savez(path, x=np.zeros(3))  # a NumPy archive, but no caesar-mrcnn metadata
    else:
        path.write_bytes(content)
    with pytest.raises(WeightsError, match=r"other\.npz: not a"):
        model_info(path)
