"""The import graph read from the code: no cycle, no edge against the dependency direction."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "import_graph.py"


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def _run(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), "--root", str(root)],
                          capture_output=True, text=True, timeout=120)


def test_the_project_graph_is_clean():
    res = _run(REPO)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "no cycle, no forbidden edge, no private import" in res.stdout


def test_a_cycle_hidden_in_a_function_is_found(tmp_path):
    _write(tmp_path, {
        "caesar_mrcnn/__init__.py": "",
        "caesar_mrcnn/zoo/__init__.py": "",
        "caesar_mrcnn/zoo/lookup.py": "from caesar_mrcnn.training.backbone import build\n",
        "caesar_mrcnn/training/__init__.py": "",
        "caesar_mrcnn/training/backbone.py":
            "def build():\n    from caesar_mrcnn.zoo import lookup\n    return lookup\n",
        "ssl_backbones/__init__.py": "",
    })
    res = _run(tmp_path)
    assert res.returncode == 1
    assert ("cycle: caesar_mrcnn.training.backbone -> caesar_mrcnn.zoo.lookup -> "
            "caesar_mrcnn.training.backbone") in res.stdout


def test_a_cycle_in_ssl_backbones_is_found(tmp_path):
    _write(tmp_path, {
        "caesar_mrcnn/__init__.py": "",
        "ssl_backbones/__init__.py": "",
        "ssl_backbones/evaluate.py": "def run():\n    from ssl_backbones import mirabest_eval\n",
        "ssl_backbones/mirabest_eval.py": "def probe():\n    from ssl_backbones import evaluate\n",
    })
    res = _run(tmp_path)
    assert res.returncode == 1
    assert "cycle: ssl_backbones." in res.stdout


def test_forbidden_directions_are_named(tmp_path):
    _write(tmp_path, {
        "caesar_mrcnn/__init__.py": "",
        "caesar_mrcnn/training/__init__.py": "",
        "caesar_mrcnn/training/loop.py": "X = 1\n",
        "caesar_mrcnn/zoo/__init__.py": "",
        "caesar_mrcnn/zoo/pack.py": "from caesar_mrcnn.training import loop\n",
        "caesar_mrcnn/detection/__init__.py": "",
        "caesar_mrcnn/detection/infer.py":
            "def run():\n    from ..training.loop import X\n    from ..zoo import pack\n",
        "caesar_mrcnn/measure/__init__.py": "",
        "caesar_mrcnn/measure/sources.py": "import caesar_mrcnn.zoo.pack\n",
        "ssl_backbones/__init__.py": "",
        "ssl_backbones/pretrain.py": "import caesar_mrcnn.training.loop\n",
        "ssl_backbones/data.py": "def _stats():\n    pass\n\n\ndef _own():\n    _stats()\n",
        "ssl_backbones/evaluate.py": "from ssl_backbones.data import _stats\n",
    })
    res = _run(tmp_path)
    assert res.returncode == 1
    lines = set(res.stdout.splitlines())
    named = {line.split(" (")[0] for line in lines}
    assert named == {
        "forbidden: caesar_mrcnn.detection.infer -> caesar_mrcnn.training.loop",
        "forbidden: caesar_mrcnn.detection.infer -> caesar_mrcnn.zoo.pack",
        # through a chain, not only directly
        "forbidden: caesar_mrcnn.measure.sources -> caesar_mrcnn.zoo.pack -> "
        "caesar_mrcnn.training.loop",
        "forbidden: ssl_backbones.pretrain -> caesar_mrcnn.training.loop",
        "private: ssl_backbones.evaluate imports _stats from ssl_backbones.data",
    }
