"""Choose the objectness threshold ``score_thr`` on held-out simulated fields.

For each candidate threshold the detector runs on every held-out field exactly as ``infer``
runs (merge, de-duplication and ``min_snr`` included), and its catalogue is matched to the
truth by mask IoU, class-agnostically. The table gives, per threshold, the reliability of all
entries at measured SNR >= 5, the completeness of the true compact sources per true-SNR bin,
and how many entries are kept. The chosen value is the lowest threshold whose reliability at
SNR >= 5 reaches the target (95 %), so that completeness is as high as that reliability allows.

Usage::

    caesar-mrcnn simulate --config configs/sim/reference.yaml --seed 2027 --n-images 40 \\
        --out ref/test
    python scripts/score_threshold.py --data ref/test [--weights DETECTOR] \\
        [--thresholds 0.2,0.3,0.4,0.5,0.6,0.7,0.8] [--target 0.95] [--out table.md]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

from caesar_mrcnn.detection.infer import InferConfig
from caesar_mrcnn.evaluation.evaluate import detect, load_truth
from caesar_mrcnn.evaluation.scoring import score_detections

SNR_BINS = (3, 5, 7, 10, 20, 50, 100, 1000)
"""True and measured SNR bin edges, as the model card's tables."""


def _pooled(rows: list[dict], name: str, lo: float) -> tuple[int, int]:
    """Successes and trials of group ``name`` over every bin starting at or above ``lo``."""
    sel = [r for r in rows if r["class"] == name and np.isfinite(r["snr_lo"])
           and r["snr_lo"] >= lo]
    return sum(r["k"] for r in sel), sum(r["n"] for r in sel)


def sweep(data: str | Path, weights: str | Path | None, thresholds: list[float]) -> list[dict]:
    """One row per threshold: reliability at SNR >= 5 and compact completeness per bin."""
    samples = load_truth(data)
    rows = []
    for thr in thresholds:
        t0 = time.perf_counter()
        cfg = dataclasses.replace(InferConfig(), score_thr=thr)
        result = score_detections(samples, detect(samples, weights, config=cfg),
                                  snr_bins=SNR_BINS)
        k, n = _pooled(result.reliability, "all", 5)
        row = {"score_thr": thr, "rel_k": k, "rel_n": n,
               "completeness": {(r["snr_lo"], r["snr_hi"]): (r["k"], r["n"])
                                for r in result.completeness
                                if r["class"] == "compact" and np.isfinite(r["snr_lo"])},
               "compact_ge5": _pooled(result.completeness, "compact", 5),
               "wall_s": time.perf_counter() - t0}
        rows.append(row)
        print(f"score_thr {thr:.2f}: reliability(SNR>=5) {k}/{n}, "
              f"{row['wall_s']:.0f} s", file=sys.stderr)
    return rows


def _pct(k: int, n: int) -> str:
    return f"{100 * k / n:.1f} % ({k}/{n})" if n else "–"


def table_markdown(rows: list[dict], target: float) -> str:
    bins = list(rows[0]["completeness"])
    head = ["score_thr", "reliability, SNR ≥ 5", "compact completeness, SNR ≥ 5",
            *[f"compact {lo:g}–{hi:g}" for lo, hi in bins]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [f"{r['score_thr']:.2f}", _pct(r["rel_k"], r["rel_n"]), _pct(*r["compact_ge5"]),
                 *[_pct(*r["completeness"][b]) for b in bins]]
        lines.append("| " + " | ".join(cells) + " |")
    chosen = choose(rows, target)
    lines.append("")
    lines.append(f"Lowest threshold with reliability ≥ {100 * target:g} % at SNR ≥ 5: "
                 + (f"**{chosen:.2f}**" if chosen is not None else "none of those tried"))
    return "\n".join(lines) + "\n"


def choose(rows: list[dict], target: float) -> float | None:
    """The lowest threshold whose reliability at SNR >= 5 reaches ``target``."""
    ok = [r["score_thr"] for r in rows if r["rel_n"] and r["rel_k"] / r["rel_n"] >= target]
    return min(ok) if ok else None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="held-out simulated fields (simulate --out)")
    p.add_argument("--weights", default=None, help="detector (default: the shipped one)")
    p.add_argument("--thresholds", default="0.2,0.3,0.4,0.5,0.6,0.7,0.8",
                   help="comma-separated objectness thresholds to try")
    p.add_argument("--target", type=float, default=0.95,
                   help="reliability to hold at SNR >= 5 (default 0.95)")
    p.add_argument("--out", default=None, help="also write the Markdown table here")
    args = p.parse_args(argv)
    thresholds = sorted(float(t) for t in args.thresholds.split(","))
    md = table_markdown(sweep(args.data, args.weights, thresholds), args.target)
    print(md)
    if args.out:
        Path(args.out).write_text(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
