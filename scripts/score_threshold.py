"""Choose the objectness threshold ``score_thr`` on held-out simulated fields.

For each candidate threshold the detector runs on every held-out field exactly as ``infer``
runs (merge, de-duplication and ``min_snr`` included), and its catalogue is matched to the
truth one-to-one, class-agnostically: by mask IoU >= 0.5, and with ``--match iou,position``
also by position (an entry within the larger of the beam FWHM and half the true source's
major axis: the rule of the real-image comparisons and of the radio literature's
completeness and reliability, e.g. Hopkins et al. 2015, PASA 32, e037). The table gives,
per threshold and rule, the reliability of all entries at measured SNR >= 5, why the others
match nothing (a fragment of a true source, on a true sidelobe pattern, or off every true
object: only the last are detections of noise; and how many of each the island floor added),
and the completeness of the true compact sources per true-SNR bin. The chosen value is the lowest
threshold whose reliability at SNR >= 5 reaches the target (95 %), so that completeness is
as high as that reliability allows.

Usage::

    caesar-mrcnn simulate --config configs/sim/reference.yaml --seed 2027 --n-images 40 \\
        --out ref/test
    python scripts/score_threshold.py --data ref/test [--weights DETECTOR] \\
        [--thresholds 0.2,0.3,0.4,0.5,0.6,0.7,0.8] [--target 0.95] [--match iou,position]
        [--set KEY=VALUE ...] [--out table.md]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

from caesar_mrcnn.detection.command import add_infer_overrides, infer_config_of
from caesar_mrcnn.detection.infer import InferConfig
from caesar_mrcnn.evaluation.evaluate import detect, load_truth
from caesar_mrcnn.evaluation.scoring import score_detections

SNR_BINS = (3, 5, 7, 10, 20, 50, 100, 1000)
"""True and measured SNR bin edges, as the model card's tables."""

UNMATCHED_KINDS = ("fragment", "on an artefact", "off source")
"""Why an entry matches no true object
(:func:`caesar_mrcnn.evaluation.matching.error_kinds`)."""


def _pooled(rows: list[dict], name: str, lo: float) -> tuple[int, int]:
    """Successes and trials of group ``name`` over every bin starting at or above ``lo``."""
    sel = [r for r in rows if r["class"] == name and np.isfinite(r["snr_lo"])
           and r["snr_lo"] >= lo]
    return sum(r["k"] for r in sel), sum(r["n"] for r in sel)


def _unmatched_kinds(rows: list[dict], lo: float, origin: str | None = None) -> dict[str, int]:
    """Unmatched entries of measured SNR ``lo`` or more (of ``origin`` only, when given),
    counted by kind (fragment of a true source, on a true artefact, off every true object)."""
    kinds = dict.fromkeys(UNMATCHED_KINDS, 0)
    for r in rows:
        if np.isfinite(r["snr"]) and r["snr"] >= lo and origin in (None, r["origin"]):
            kinds[r["kind"]] += 1
    return kinds


def sweep(data: str | Path, weights: str | Path | None, thresholds: list[float],
          matches: tuple[str, ...] = ("iou",), config: InferConfig | None = None) -> list[dict]:
    """One row per threshold and matching rule: reliability at SNR >= 5 and compact
    completeness per bin (the detector runs once per threshold, with ``config``, default
    ``infer``'s, at each ``score_thr``)."""
    samples = load_truth(data)
    rows = []
    for thr in thresholds:
        t0 = time.perf_counter()
        cfg = dataclasses.replace(config or InferConfig(), score_thr=thr)
        dets = detect(samples, weights, config=cfg)
        wall = time.perf_counter() - t0
        for match in matches:
            result = score_detections(samples, dets, snr_bins=SNR_BINS, match=match)
            k, n = _pooled(result.reliability, "all", 5)
            rows.append({"score_thr": thr, "match": match, "rel_k": k, "rel_n": n,
                         "completeness": {(r["snr_lo"], r["snr_hi"]): (r["k"], r["n"])
                                          for r in result.completeness
                                          if r["class"] == "compact"
                                          and np.isfinite(r["snr_lo"])},
                         "compact_ge5": _pooled(result.completeness, "compact", 5),
                         "unmatched_ge5": _unmatched_kinds(result.unmatched, 5),
                         "unmatched_islands_ge5": _unmatched_kinds(result.unmatched, 5,
                                                                   "island"),
                         "wall_s": wall})
            print(f"score_thr {thr:.2f}, {match}: reliability(SNR>=5) {k}/{n}, "
                  f"{wall:.0f} s", file=sys.stderr)
    return rows


MATCH_TITLES = {"iou": "Matched by mask IoU ≥ 0.5",
                "position": "Matched by position, within max(beam FWHM, half the true major "
                            "axis)"}


def _pct(k: int, n: int) -> str:
    return f"{100 * k / n:.1f} % ({k}/{n})" if n else "–"


def table_markdown(rows: list[dict], target: float) -> str:
    lines = []
    for match in dict.fromkeys(r["match"] for r in rows):
        mine = [r for r in rows if r["match"] == match]
        bins = list(mine[0]["completeness"])
        head = ["score_thr", "reliability, SNR ≥ 5",
                "unmatched, SNR ≥ 5: fragments / on artefacts / off source",
                "of which island-floor entries",
                "compact completeness, SNR ≥ 5", *[f"compact {lo:g}–{hi:g}" for lo, hi in bins]]
        lines += [f"{MATCH_TITLES[match]}:", "", "| " + " | ".join(head) + " |",
                  "|" + "---|" * len(head)]
        for r in mine:
            cells = [f"{r['score_thr']:.2f}", _pct(r["rel_k"], r["rel_n"]),
                     " / ".join(str(r["unmatched_ge5"][k]) for k in UNMATCHED_KINDS),
                     " / ".join(str(r["unmatched_islands_ge5"][k]) for k in UNMATCHED_KINDS),
                     _pct(*r["compact_ge5"]), *[_pct(*r["completeness"][b]) for b in bins]]
            lines.append("| " + " | ".join(cells) + " |")
        chosen = choose(mine, target)
        lines += ["", f"Lowest threshold with reliability ≥ {100 * target:g} % at SNR ≥ 5: "
                  + (f"**{chosen:.2f}**" if chosen is not None else "none of those tried"), ""]
    return "\n".join(lines)


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
    p.add_argument("--match", default="iou",
                   help="comma-separated matching rules: iou (mask IoU >= 0.5), position "
                        "(within max(beam FWHM, half the true major axis)); default iou")
    add_infer_overrides(p)
    p.add_argument("--out", default=None, help="also write the Markdown table here")
    args = p.parse_args(argv)
    config = infer_config_of(p, args)
    thresholds = sorted(float(t) for t in args.thresholds.split(","))
    matches = tuple(m.strip() for m in args.match.split(","))
    bad = [m for m in matches if m not in MATCH_TITLES]
    if bad:
        p.error(f"--match: unknown rule {bad[0]!r}; use iou, position or both")
    md = table_markdown(sweep(args.data, args.weights, thresholds, matches, config),
                        args.target)
    print(md)
    if args.out:
        Path(args.out).write_text(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
