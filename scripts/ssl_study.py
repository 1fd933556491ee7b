#!/usr/bin/env python3
"""The self-supervision study of docs/models.md: pretrain, measure on MiraBest, print the table.

Stages (each skipped when its output exists, so a second call only prints the table):

1. simulated cutouts (``make-cutouts``, 1000 source-centred + 1000 random, 96 px);
2. pretraining runs of :data:`RUNS` (``pretrain`` with ``configs/pretrain/snr_byol_r18.yaml``
   and the run's method and sources), one after the other;
3. ``ssl-eval`` on MiraBest Confident, official split: linear probe and kNN for every backbone
   (and the shipped ``ssl_byol_r18``), each beside its random-init twin; fine-tuning (all
   labels and 145 labels) for the backbones named in :data:`FINETUNE`;
4. the Markdown table of docs/models.md, printed to stdout.

Usage::

    python scripts/ssl_study.py [--real ../shared/real] [--out runs/ssl_study]
                                [--only-eval | --table] [--runs NAME ...]

``--only-eval`` skips pretraining: the backbones must already be in ``OUT/backbones`` (e.g.
copied there from a release); ``--table`` only prints the table of the results present.
On two shared CPU cores each pretraining run takes 20-50 min, each linear/kNN evaluation
4-5 min and each fine-tuning evaluation 30-60 min.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLI = os.environ.get("CAESAR_MRCNN", str(ROOT / ".venv" / "bin" / "caesar-mrcnn"))
CONFIG = "configs/pretrain/snr_byol_r18.yaml"
EPOCHS = 8


def _mix(mb: float, fields: float, sim: float) -> list[dict]:
    out = []
    for kind, key, w in (("mirabest", "MB", mb), ("fields", "REAL", fields),
                         ("folder", "SIM", sim)):
        if w > 0:
            out.append({"kind": kind, "path": key, "weight": w})
    return out


RUNS: dict[str, tuple[str, list[dict]]] = {
    "snr_byol_r18_mix3": ("byol", _mix(0.4, 0.3, 0.3)),
    "snr_byol_r18_mb": ("byol", _mix(1.0, 0.0, 0.0)),
    "snr_simclr_r18_mix3": ("simclr", _mix(0.4, 0.3, 0.3)),
    "snr_byol_r18_mbfields": ("byol", _mix(0.5, 0.5, 0.0)),
}
"""Registry name -> (method, sources); paths MB/REAL/SIM are filled in at run time."""

FINETUNE = {"snr_byol_r18_mix3": True, "snr_byol_r18_mb": False}
"""Backbones that are also fine-tuned -> whether their twin is fine-tuned too (the twin is
seeded, so every snr3-v1 ResNet18 has the same one: once is enough)."""
FINETUNE_EPOCHS = 4
FINETUNE_SUBSET_EPOCHS = 10
SHIPPED = "ssl_byol_r18"


def run(cmd: list[str], log: Path) -> float:
    """Run a command with its output in ``log``; returns the wall time in seconds."""
    print("$", shlex.join(cmd), flush=True)
    t0 = time.time()
    with open(log, "w") as fh:
        done = subprocess.run(["nice", "-n", "10", *cmd], stdout=fh, stderr=subprocess.STDOUT,
                              cwd=ROOT)
    if done.returncode:
        sys.exit(f"failed ({done.returncode}); see {log}")
    return time.time() - t0


def make_sim(out: Path) -> Path:
    """1000 centred + 1000 random simulated cutouts, linked into one folder."""
    both = out / "sim_cutouts"
    if both.is_dir() and any(both.iterdir()):
        return both
    for tag, extra, seed in (("c", ["--centred"], 1), ("r", [], 2)):
        folder = out / f"sim_{tag}"
        if not folder.is_dir():
            run([CLI, "make-cutouts", "--sim-config", "configs/sim/cutouts.yaml", "--out",
                 str(folder), "--n", "1000", "--size", "96", "--seed", str(seed),
                 "--no-progress", *extra], out / f"sim_{tag}.log")
    both.mkdir(parents=True, exist_ok=True)
    for tag in ("c", "r"):
        for f in sorted((out / f"sim_{tag}").glob("*.fits")):
            (both / f"{tag}_{f.name}").symlink_to(f.resolve())
    return both


def pretrain(name: str, paths: dict[str, str], out: Path) -> None:
    reg = out / "backbones"
    if (reg / f"{name}.json").is_file():
        return
    method, sources = RUNS[name]
    spec = ", ".join(f"{{kind: {s['kind']}, path: {paths[s['path']]}, weight: {s['weight']}}}"
                     for s in sources)
    wall = run([CLI, "pretrain", "--config", CONFIG, "--method", method,
                "--set", f"data.sources=[{spec}]", "--epochs", str(EPOCHS),
                "--out", str(out / "pretrain" / name), "--registry", str(reg),
                "--name", name, "--no-progress"], out / f"pretrain_{name}.log")
    (out / f"pretrain_{name}.wall").write_text(f"{wall:.0f}\n")


def evaluate(name: str, mb: str, out: Path, finetune: bool, finetune_twin: bool = True) -> None:
    """Linear probe and kNN into ``eval/NAME.json``; fine-tuning (all labels, 145 labels) into
    ``eval/NAME_finetune.json``."""
    (out / "eval").mkdir(parents=True, exist_ok=True)
    backbone = str(out / "backbones" / f"{name}.npz") if name != SHIPPED else SHIPPED
    jobs = [(name, ["--protocols", "linear,knn"])]
    if finetune:
        jobs.append((f"{name}_finetune", ["--protocols", "finetune", "--finetune-epochs",
                                          str(FINETUNE_EPOCHS), "--finetune-labels", "145",
                                          "--finetune-subset-epochs",
                                          str(FINETUNE_SUBSET_EPOCHS),
                                          *([] if finetune_twin else ["--no-twin"])]))
    for stem, extra in jobs:
        dest = out / "eval" / f"{stem}.json"
        if not dest.is_file():
            run([CLI, "ssl-eval", "--backbone", backbone, "--data", mb, "--subset", "confident",
                 "--out", str(dest), *extra], out / "eval" / f"{stem}.log")


def _cell(res: dict, key: str) -> str:
    """``acc % [CI], F1 f (random init acc %)`` of one protocol, or ``-``."""
    p, r = res["pretrained"].get(key), res.get("random_init", {}).get(key)
    if p is None:
        return "-"
    lo, hi = p["ci95"]
    text = f"{100 * p['accuracy']:.1f} % [{100 * lo:.0f}-{100 * hi:.0f}], F1 {p['f1_macro']:.2f}"
    if r is not None:
        text += f" (random init {100 * r['accuracy']:.1f} %)"
    return text


def _describe(name: str) -> str:
    if name not in RUNS:
        return "BYOL, simulated cutouts only (min-max input)"
    method, sources = RUNS[name]
    label = {"mirabest": "MiraBest-train", "fields": "real fields", "folder": "simulated"}
    return f"{method.upper() if method == 'byol' else 'SimCLR'}, " + ", ".join(
        f"{label[s['kind']]} {s['weight']:g}" for s in sources)


def table(out: Path, names: list[str]) -> str:
    """Markdown rows: backbone, wall time, then accuracy [95 % CI] / F1 per protocol, with the
    random-init twin in brackets."""
    head = ("| backbone | method, data (weights) | pretraining (CPU wall) | linear probe "
            "| kNN (k=20) | fine-tuned | fine-tuned, 145 labels |\n|---|---|---|---|---|---|---|")
    rows = [head]
    # The seeded twin of every snr3-v1 ResNet18 is one network: a protocol run for the twin of
    # one backbone stands for all of them.
    shared_twin: dict = {}
    for name in names:
        for stem in (name, f"{name}_finetune"):
            path = out / "eval" / f"{stem}.json"
            if path.is_file() and json.loads(path.read_text()).get("backbone_input") == "snr3-v1":
                for key, r in json.loads(path.read_text())["results"].get("random_init",
                                                                           {}).items():
                    shared_twin.setdefault(key, r)
    for name in names:
        res: dict = {"pretrained": {}, "random_init": {}}
        for stem in (name, f"{name}_finetune"):
            path = out / "eval" / f"{stem}.json"
            if path.is_file():
                for variant, r in json.loads(path.read_text())["results"].items():
                    res[variant].update(r)
        if not res["pretrained"]:
            continue
        if name in RUNS:
            res["random_init"] = {**shared_twin, **res["random_init"]}
        wall_file = out / f"pretrain_{name}.wall"
        wall = f"{int(wall_file.read_text()) / 60:.0f} min" if wall_file.is_file() else "-"

        ft145 = next((k for k in res["pretrained"] if k.startswith("finetune_")), "")
        cells = " | ".join(_cell(res, key) for key in ("linear", "knn", "finetune", ft145))
        rows.append(f"| {name} | {_describe(name)} | {wall} | {cells} |")
    return "\n".join(rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--real", default=str(ROOT / ".." / "shared" / "real"),
                    help="folder of the real data (mirabest/ inside)")
    ap.add_argument("--out", default="runs/ssl_study")
    ap.add_argument("--only-eval", action="store_true", help="no pretraining")
    ap.add_argument("--table", action="store_true", help="only print the table of what exists")
    ap.add_argument("--runs", nargs="+", default=list(RUNS), choices=list(RUNS))
    args = ap.parse_args(argv)
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    real = Path(args.real).resolve()
    mb = str(real / "mirabest" / "MiraBest_F_batches.tar.gz")
    if not Path(mb).is_file():
        sys.exit(f"{mb}: MiraBest batches not found; pass --real")
    if not (args.only_eval or args.table):
        sim = make_sim(out)
        paths = {"MB": mb, "REAL": str(real), "SIM": str(sim)}
        for name in args.runs:
            pretrain(name, paths, out)
    names = [n for n in args.runs if (out / "backbones" / f"{n}.json").is_file()]
    if not args.table:
        for name in names:
            evaluate(name, mb, out, finetune=name in FINETUNE,
                     finetune_twin=FINETUNE.get(name, True))
        evaluate(SHIPPED, mb, out, finetune=False)
    print(table(out, [*names, SHIPPED]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
