#!/usr/bin/env python
"""Markdown tables of a `caesar-mrcnn evaluate` report, as shown in docs/models.md.

Reads REPORT/report.json, completeness.csv and reliability.csv and prints: completeness per
class and true-SNR bin, reliability per class and measured-SNR bin, the SNR >= 5 aggregates of
the quality targets, COCO AP, classification accuracy, why unmatched objects are unmatched, the
flux ratio and position error of matched compact sources, and the confusion matrix.

    python scripts/report_tables.py REPORT_DIR
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

CLASSES = ("compact", "extended", "extended-multisland", "spurious", "all")


def _cell(row: dict) -> str:
    if row["n"] == "0":
        return "–"
    return f"{100 * float(row['value']):.0f} % ({row['k']}/{row['n']})"


def _bin_label(lo: str, hi: str) -> str:
    return f"{float(lo):g}–{float(hi):g}"


def rate_table(rows: list[dict], title: str) -> str:
    bins = [(r["snr_lo"], r["snr_hi"]) for r in rows if r["class"] == "all" and r["snr_lo"]]
    lines = [f"{title}:", "", "| class | all SNR | "
             + " | ".join(_bin_label(*b) for b in bins) + " |", "|---" * (len(bins) + 2) + "|"]
    for name in CLASSES:
        by_bin = {(r["snr_lo"], r["snr_hi"]): r for r in rows if r["class"] == name}
        if not by_bin:
            continue
        cells = [_cell(by_bin[b]) if b in by_bin else "–" for b in [("", "")] + bins]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def above_snr(rows: list[dict], name: str, snr_min: float) -> tuple[int, int]:
    """Matched and total counts of one class over the bins at or above ``snr_min``."""
    k = n = 0
    for r in rows:
        if r["class"] == name and r["snr_lo"] and float(r["snr_lo"]) >= snr_min:
            k, n = k + int(r["k"]), n + int(r["n"])
    return k, n


def compact_accuracy_table(matches: Path, edges: list[float]) -> str:
    """Medians of flux ratio and position error of matched compact sources per true-SNR bin."""
    import statistics

    rows = [r for r in csv.DictReader(matches.open()) if r["truth_class"] == "compact"]
    bins = list(zip(edges[:-1], edges[1:]))
    groups = [[r for r in rows if lo <= float(r["truth_snr"]) < hi] for lo, hi in bins]

    def medians(key: str) -> list[str]:
        out = []
        for group in groups:
            values = [float(r[key]) for r in group if r[key] not in ("", "nan")]
            out.append(f"{statistics.median(values):.2f}" if values else "–")
        return out

    lines = ["| true SNR | " + " | ".join(f"{lo:g}–{hi:g}" for lo, hi in bins) + " |",
             "|---" * (len(bins) + 1) + "|",
             "| n | " + " | ".join(str(len(g)) for g in groups) + " |",
             "| `int_flux` / true flux | " + " | ".join(medians("flux_ratio")) + " |",
             "| position error (″) | " + " | ".join(medians("pos_err_arcsec")) + " |"]
    return "Matched compact sources:\n\n" + "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path, help="folder written by caesar-mrcnn evaluate")
    args = parser.parse_args()
    report = json.loads((args.report / "report.json").read_text())
    rows = {name: list(csv.DictReader((args.report / f"{name}.csv").open()))
            for name in ("completeness", "reliability")}
    print(rate_table(rows["completeness"], "Completeness per class and true SNR bin"))
    print()
    print(rate_table(rows["reliability"], "Reliability per class and measured SNR bin"))
    print()
    for name in ("compact", "extended", "extended-multisland", "all"):
        for kind in ("completeness", "reliability"):
            k, n = above_snr(rows[kind], name, 5.0)
            print(f"{name}, SNR >= 5, {kind}: {100 * k / max(n, 1):.1f} % ({k}/{n})")
    coco = report["coco"]
    print(f"\nCOCO mask AP {coco['segm']['AP']:.3f} (AP50 {coco['segm']['AP50']:.3f}); "
          f"box AP {coco['bbox']['AP']:.3f} (AP50 {coco['bbox']['AP50']:.3f}); class-agnostic "
          f"mask AP {coco['segm']['AP_agnostic']:.3f} (AP50 {coco['segm']['AP50_agnostic']:.3f})")
    print(f"classification accuracy of matched sources: "
          f"{100 * report['classification_accuracy']:.1f} %")
    errors = report.get("errors", {})
    for key, title in (("false_detections", "unmatched detections (predicted class)"),
                       ("missed", "missed sources (true class)")):
        parts = [f"{name}: " + ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items()))
                 for name, kinds in sorted(errors.get(key, {}).items())]
        print(f"{title}: " + ("; ".join(parts) or "none"))
    print()
    print(compact_accuracy_table(args.report / "matches.csv", report["settings"]["snr_bins"]))
    confusion = report["confusion"]
    names = confusion["classes"][:4]
    print("\n| true \\ predicted | " + " | ".join(names) + " |")
    print("|---" * (len(names) + 1) + "|")
    for name, row in zip(names, confusion["matrix"]):
        print(f"| {name} | " + " | ".join(str(v) for v in row[:4]) + " |")


if __name__ == "__main__":
    main()
