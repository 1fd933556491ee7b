"""Write an evaluation to disk: report.json, CSV tables and PNG plots, each atomically.

Plots use matplotlib's object API (``Figure`` + Agg canvas), so no pyplot state is touched and no
display is needed.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from caesar_mrcnn.classes import CLASS_COLOURS, CLASS_NAMES
from caesar_mrcnn.errors import OutputError
from caesar_mrcnn.evaluation.scoring import EvaluationResult
from caesar_mrcnn.io.atomic import atomic_open, atomic_path, make_output_folder

# matplotlib's "yellow"/"cyan" vanish on white; plots use darker twins of the DS9 colours.
_PLOT_COLOURS = {**CLASS_COLOURS, "flagged": "goldenrod", "extended": "darkcyan", "all": "black"}


def json_ready(obj):
    """``obj`` with NaN/inf floats as ``None`` and numpy scalars/arrays as Python objects."""
    if isinstance(obj, dict):
        return {str(k): json_ready(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_ready(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return json_ready(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def write_json(path: Path, obj) -> None:
    """Write strict JSON (NaN as null) atomically."""
    with atomic_open(path, "w") as fh:
        json.dump(json_ready(obj), fh, indent=2, allow_nan=False)
        fh.write("\n")


def write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` (e.g. a rendered PNG) atomically."""
    with atomic_open(path, "wb") as fh:
        fh.write(data)


def write_csv(path: Path, rows: Sequence[dict], columns: Sequence[str] | None = None) -> None:
    """Write rows of dicts as a plain CSV (header line, no comments) atomically."""
    columns = list(columns or (rows[0].keys() if rows else []))
    with atomic_open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if isinstance(v, float) and math.isnan(v) else v)
                             for k, v in row.items()})


def save_figure(fig, path: Path) -> None:
    """Render a matplotlib Figure to PNG atomically."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")


def render_png(fig) -> bytes:
    """A matplotlib Figure rendered to PNG bytes (drawing errors surface here, not mid-write)."""
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, dpi=110, format="png")
    return buf.getvalue()


def _binned(rows: Sequence[dict], name: str) -> tuple[np.ndarray, ...]:
    sel = [r for r in rows if r["class"] == name and not math.isnan(r["snr_lo"])]
    lo = np.array([r["snr_lo"] for r in sel])
    hi = np.array([r["snr_hi"] for r in sel])
    val = np.array([r["value"] for r in sel])
    elo = np.array([r["lo"] for r in sel])
    ehi = np.array([r["hi"] for r in sel])
    # Wilson bounds contain the value; clip rounding noise (-1e-17) that errorbar rejects.
    return np.sqrt(lo * hi), val, np.maximum(val - elo, 0.0), np.maximum(ehi - val, 0.0)


def plot_fraction_vs_snr(ax, rows: Sequence[dict], title: str,
                         names: Sequence[str] = ("all", *CLASS_NAMES),
                         labels: dict | None = None) -> None:
    """Draw binned proportions (with Wilson error bars) against SNR, one line per group."""
    for k, name in enumerate(names):
        x, v, elo, ehi = _binned(rows, name)
        ok = np.isfinite(v)
        if not ok.any():
            continue
        shift = 1.0 + 0.03 * (k - len(names) / 2)  # keep error bars of groups apart
        ax.errorbar(x[ok] * shift, v[ok], yerr=[elo[ok], ehi[ok]], marker="o", ms=4,
                    capsize=2, label=(labels or {}).get(name, name),
                    color=_PLOT_COLOURS.get(name))
    ax.set_xscale("log")
    ax.set_ylim(-0.03, 1.05)
    ax.set_xlabel("SNR")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:  # no finite point: no legend (and no warning)
        ax.legend(fontsize=7)


def figures(result: EvaluationResult) -> dict:
    """The report's plots as ``{file name: matplotlib Figure}``."""
    from matplotlib.figure import Figure

    figs = {}
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    plot_fraction_vs_snr(ax1, result.completeness, "Completeness (true SNR, true class)")
    plot_fraction_vs_snr(ax2, result.reliability, "Reliability (measured SNR, predicted class)")
    figs["completeness_reliability.png"] = fig

    fig = Figure(figsize=(6, 5), layout="constrained")
    ax = fig.subplots()
    cm = result.confusion
    im = ax.imshow(cm, cmap="Blues")
    for (i, j), v in np.ndenumerate(cm):
        ax.text(j, i, str(v), ha="center", va="center",
                color="white" if v > cm.max() / 2 else "black", fontsize=8)
    ax.set_xticks(range(len(CLASS_NAMES)), CLASS_NAMES, rotation=30, ha="right")
    ax.set_yticks(range(len(CLASS_NAMES)), CLASS_NAMES)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title("Confusion matrix (matched pairs)")
    fig.colorbar(im, ax=ax)
    figs["confusion.png"] = fig

    fig = Figure(figsize=(11, 4.2), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    snr = np.array([r["truth_snr"] for r in result.matches], dtype=float)
    for ax, key, stats, label in ((ax1, "flux_ratio", result.photometry, "S_measured / S_true"),
                                  (ax2, "pos_err_arcsec", result.astrometry,
                                   "position error (arcsec)")):
        val = np.array([r[key] for r in result.matches], dtype=float)
        ax.scatter(snr, val, s=4, alpha=0.4, color="grey", label="matched sources")
        x = np.sqrt([r["snr_lo"] * r["snr_hi"] for r in stats])
        med = np.array([r["median"] for r in stats])
        ax.errorbar(x, med, yerr=[np.maximum(med - np.array([r["p16"] for r in stats]), 0),
                                  np.maximum(np.array([r["p84"] for r in stats]) - med, 0)],
                    marker="o", color="black", capsize=2, label="median, 16-84%")
        if key == "flux_ratio":
            ax.axhline(1.0, color="red", lw=0.8)
        if np.any(np.isfinite(snr) & (snr > 0)):  # a log axis needs positive data to draw
            ax.set_xscale("log")
        ax.set_xlabel("true SNR")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    figs["flux_ratio_vs_snr.png"] = fig
    return figs


def check_output_folder(out: str | Path) -> None:
    """Fail before any work when report folder ``out`` cannot be created or written.

    Raises
    ------
    OutputError
        If ``out`` (or the nearest existing folder above it) is a file or not writable.
    """
    out = Path(out)
    existing = next((p for p in (out, *out.parents) if p.exists()), Path("."))
    if not existing.is_dir():
        raise OutputError(f"--out {out}: {existing} is a file, not a folder; choose another "
                          "--out")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputError(f"--out {out}: {existing} is not writable; choose another --out")


def write_report(result: EvaluationResult, out: str | Path) -> list[Path]:
    """Write report.json, CSV tables and PNG plots of an evaluation into folder ``out``.

    Returns
    -------
    list of pathlib.Path
        Files written.
    """
    # Render before any file is written, so a plotting error leaves nothing behind.
    pngs = {name: render_png(fig) for name, fig in figures(result).items()}
    out = make_output_folder(out)
    written = []

    def put(name: str, writer, *args) -> None:
        writer(out / name, *args)
        written.append(out / name)

    put("report.json", write_json, result.summary)
    put("completeness.csv", write_csv, result.completeness)
    put("reliability.csv", write_csv, result.reliability)
    put("classification.csv", write_csv, result.classification)
    put("confusion.csv", write_csv,
        [{"true_class": n, **{p: int(v) for p, v in zip(CLASS_NAMES, row)}}
         for n, row in zip(CLASS_NAMES, result.confusion)], ["true_class", *CLASS_NAMES])
    put("matches.csv", write_csv, result.matches,
        ["image", "truth_index", "det_index", "truth_class", "pred_class", "iou", "score",
         "truth_snr", "det_snr", "truth_flux_jy", "det_flux_jy", "flux_ratio", "pos_err_arcsec"])
    put("astrometry.csv", write_csv, result.astrometry)
    put("flux_ratio.csv", write_csv, result.photometry)
    coco_rows = [{"iou_type": t, **v} for t, v in result.summary["coco"].items()]
    put("coco.csv", write_csv, coco_rows)

    for name, png in pngs.items():
        put(name, write_bytes, png)
    return written
