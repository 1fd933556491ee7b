"""Writing comparisons: Markdown tables, CSV/ECSV tables and plots, each file atomically.

Two kinds of comparison are written here, both produced elsewhere:

- simulated fields against their ground truth (:mod:`caesar_mrcnn.evaluation.compare`):
  summary and finder x class x SNR-bin tables;
- real images against a reference catalogue or known radio galaxies
  (:mod:`caesar_mrcnn.evaluation.compare_real`): per finder and image.

Every Markdown table is followed by the rules that produced it, caesar-mrcnn's two rows
(all entries; spurious left out) included.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from astropy.table import Table

from caesar_mrcnn.evaluation.catalog_match import REAL_CLASSES
from caesar_mrcnn.evaluation.finders import SYMMETRY_RULE
from caesar_mrcnn.evaluation.reference import CENTRAL_RULE, RULE

SIMULATED_RULE = ("Matching: a compact truth source is matched by an entry within the match "
                  "radius (beam FWHM units) of it; an extended or multi-island one by an entry "
                  "whose position falls inside its mask or whose ellipse overlaps it; one-to-one. "
                  "Truth artefacts are not sources to find: an entry on one counts as false.")
"""The simulated-field matching rule in words (:mod:`catalog_match`)."""


def _fmt(v, digits: int = 3) -> str:
    if isinstance(v, (float, np.floating)):
        return "–" if not math.isfinite(v) else f"{v:.{digits}f}"
    return str(v)


def _interval(row, key: str) -> str:
    v = row[key]
    if not math.isfinite(v):
        return "–"
    return f"{v:.2f} [{row[key + '_lo']:.2f}, {row[key + '_hi']:.2f}]"


def markdown(summary: Table, bins: Table, command: str | None = None) -> str:
    """The side-by-side comparison as Markdown tables."""
    lines = []
    if command:
        lines += ["Made with:", "", "```", command, "```", ""]
    lines += ["| finder | status | fields | wall time (s) | truth | detections | fragments "
              "| completeness | reliability | flux ratio (median) "
              "| position error (median, arcsec) |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in summary:
        lines.append(f"| {r['finder']} | {r['status']} | {r['fields']} | {_fmt(r['wall_s'], 1)} "
                     f"| {r['n_truth'] if r['n_truth'] >= 0 else '–'} "
                     f"| {r['n_det'] if r['n_det'] >= 0 else '–'} "
                     f"| {r['n_fragments'] if r['n_fragments'] >= 0 else '–'} "
                     f"| {_interval(r, 'completeness')} | {_interval(r, 'reliability')} "
                     f"| {_fmt(r['flux_ratio_median'])} | {_fmt(r['pos_err_median_arcsec'], 2)} |")
    lines += ["", "fragments: unmatched catalogue entries lying inside a true source's mask "
              "(pieces of a source; counted as false detections in the reliability).", "",
              SIMULATED_RULE, "", SYMMETRY_RULE]
    ran = [r["finder"] for r in summary if r["status"] == "ok"]
    if ran and len(bins):
        lines += ["", "Completeness C (true SNR) and reliability R (measured SNR), all classes; "
                  "brackets: 95 % Wilson interval; n: truth sources / detections in the bin.", "",
                  "| SNR | " + " | ".join(f"{f} C | {f} R" for f in ran) + " |",
                  "|---|" + "---|---|" * len(ran)]
        allrows = bins[(bins["class"] == "all") & np.isfinite(bins["snr_lo"])]
        for lo, hi in sorted({(float(r["snr_lo"]), float(r["snr_hi"])) for r in allrows}):
            cells = []
            for f in ran:
                r = allrows[(allrows["finder"] == f) & (allrows["snr_lo"] == lo)][0]
                cells.append(f"{_interval(r, 'completeness')} (n={r['n_truth']})")
                cells.append(f"{_interval(r, 'reliability')} (n={r['n_det']})")
            lines.append(f"| {lo:g}–{hi:g} | " + " | ".join(cells) + " |")
        lines += ["", "Completeness per true class (all SNRs):", "",
                  "| class | " + " | ".join(ran) + " |", "|---|" + "---|" * len(ran)]
        for cls in REAL_CLASSES:
            cells = []
            for f in ran:
                r = bins[(bins["finder"] == f) & (bins["class"] == cls)
                         & ~np.isfinite(bins["snr_lo"])][0]
                cells.append(f"{_interval(r, 'completeness')} (n={r['n_truth']})")
            lines.append(f"| {cls} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(summary: Table, bins: Table):
    """Completeness, reliability, flux ratio and position error vs SNR, one line per finder.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 8), layout="constrained")
    axes = fig.subplots(2, 2).ravel()
    panels = (("completeness", "Completeness (true SNR)"),
              ("reliability", "Reliability (measured SNR)"),
              ("flux_ratio_median", "Median S_measured / S_true (true SNR)"),
              ("pos_err_median_arcsec", "Median position error, arcsec (true SNR)"))
    ran = [r["finder"] for r in summary if r["status"] == "ok"]
    for k, finder in enumerate(ran):
        sel = bins[(bins["finder"] == finder) & (bins["class"] == "all")
                   & np.isfinite(bins["snr_lo"])]
        x = np.sqrt(np.asarray(sel["snr_lo"]) * np.asarray(sel["snr_hi"])) * (1 + 0.04 * k)
        for ax, (key, _) in zip(axes, panels):
            y = np.asarray(sel[key], float)
            err = None
            if key in ("completeness", "reliability"):
                # Wilson bounds contain the value; clip rounding noise (-1e-17) for errorbar.
                err = [np.maximum(y - np.asarray(sel[key + "_lo"], float), 0.0),
                       np.maximum(np.asarray(sel[key + "_hi"], float) - y, 0.0)]
            ok = np.isfinite(y)
            if ok.any():
                ax.errorbar(x[ok], y[ok], yerr=None if err is None else [e[ok] for e in err],
                            marker="o", ms=4, capsize=2, label=finder)
    for ax, (key, title) in zip(axes, panels):
        ax.set_xscale("log")
        ax.set_xlabel("SNR")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        if key in ("completeness", "reliability"):
            ax.set_ylim(-0.03, 1.05)
        if key == "flux_ratio_median":
            ax.axhline(1.0, color="grey", lw=0.8)
        if ran:
            ax.legend(fontsize=8)
    not_run = [f"{r['finder']}: {r['status']}" for r in summary if r["status"] != "ok"]
    if not_run:
        fig.suptitle("; ".join(not_run), fontsize=8)
    return fig


def write_comparison(summary: Table, bins: Table, out: str | Path,
                     command: str | None = None) -> list[Path]:
    """Write summary/bins tables (ECSV + CSV), compare.md and compare.png into ``out``."""
    fig = plot(summary, bins)  # before any file, so a plotting error leaves nothing behind
    text = markdown(summary, bins, command)
    return _write(out, {"compare_summary": summary, "compare_bins": bins},
                  {"compare.md": text}, {"compare.png": fig})


def _write(out: str | Path, tables: dict, texts: dict, figures: dict) -> list[Path]:
    """Tables as ECSV + CSV, texts and PNG figures into folder ``out``, each atomically."""
    from caesar_mrcnn.evaluation.report import save_figure
    from caesar_mrcnn.io.atomic import atomic_open, atomic_path, make_output_folder

    out = make_output_folder(out)
    written = []
    for name, table in tables.items():
        for ext, fmt in (("ecsv", "ascii.ecsv"), ("csv", "ascii.csv")):
            with atomic_path(out / f"{name}.{ext}") as tmp:
                table.write(tmp, format=fmt)
            written.append(out / f"{name}.{ext}")
    for name, text in texts.items():
        with atomic_open(out / name, "w") as fh:
            fh.write(text)
        written.append(out / name)
    for name, fig in figures.items():
        save_figure(fig, out / name)
        written.append(out / name)
    return written




def _count(v) -> str:
    return "–" if int(v) < 0 else str(int(v))


def _ratio(k, n) -> str:
    return "–" if int(k) < 0 else f"{int(k)}/{int(n)}"


def _notes_lines(notes: Sequence[str]) -> list[str]:
    unique = list(dict.fromkeys(notes))
    return ["", "Notes:", "", *[f"- {n}" for n in unique]] if unique else []


def reference_markdown(table: Table, notes: Sequence[str] = (), reference: str | None = None,
                       command: str | None = None) -> str:
    """Real images against a reference catalogue as a Markdown table, with its rules and notes.

    Parameters
    ----------
    table : astropy.table.Table
        From :func:`caesar_mrcnn.evaluation.compare_real.score_reference`.
    notes : sequence of str
        Workarounds and failures.
    reference : str, optional
        Name of the reference catalogue, for the header.
    command : str, optional
        Command line quoted at the top.
    """
    lines = []
    if command:
        lines += ["Made with:", "", "```", command, "```", ""]
    ref_name = f" ({reference})" if reference else ""
    lines += [f"| image | finder | reference sources found{ref_name} | entries matching / entries "
              "| fragmented sources | wall (s) | status |", "|---|---|---|---|---|---|---|"]
    last = None
    for r in table:
        image = r["image"] if r["image"] != last else ""
        last = r["image"]
        lines.append(f"| {image} | {r['finder']} | {_ratio(r['n_found'], r['n_reference'])} "
                     f"| {_ratio(r['n_matching'], r['n_entries'])} | {_count(r['n_fragmented'])} "
                     f"| {_fmt(r['wall_s'], 1)} | {r['status']} |")
    lines += ["", RULE, "", SYMMETRY_RULE]
    return "\n".join(lines + _notes_lines(notes)) + "\n"


def reference_plot(table: Table):
    """Fraction of reference sources found and of entries matching, per finder and image.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure

    images = list(dict.fromkeys(table["image"]))
    labels = list(dict.fromkeys(table["finder"]))
    fig = Figure(figsize=(max(6.0, 1.6 * len(images) + 3), 6.5), layout="constrained")
    axes = fig.subplots(2, 1, sharex=True)
    width = 0.8 / max(len(labels), 1)
    x = np.arange(len(images))
    for k, label in enumerate(labels):
        for ax, (num, den) in zip(axes, (("n_found", "n_reference"),
                                         ("n_matching", "n_entries"))):
            vals = []
            for im in images:
                sel = table[(table["finder"] == label) & (table["image"] == im)]
                ok = len(sel) and sel[0]["status"].startswith("ok") and sel[0][den] > 0
                vals.append(sel[0][num] / sel[0][den] if ok else np.nan)
            ax.bar(x + (k - (len(labels) - 1) / 2) * width, vals, width, label=label)
    axes[0].set_ylabel("reference sources found")
    axes[1].set_ylabel("entries matching")
    for ax in axes:
        ax.set_ylim(0, 1.05)
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=8, ncols=min(len(labels), 4))
    axes[1].set_xticks(x, [im[:28] for im in images], rotation=20, ha="right", fontsize=8)
    return fig


def write_reference_comparison(table: Table, notes: Sequence[str], out: str | Path,
                               reference: str | None = None, command: str | None = None
                               ) -> list[Path]:
    """Write reference.{ecsv,csv}, reference.md and reference.png into ``out``, atomically."""
    fig = reference_plot(table)  # before any file, so a plotting error leaves nothing behind
    text = reference_markdown(table, notes, reference, command)
    return _write(out, {"reference": table}, {"reference.md": text}, {"reference.png": fig})


def galaxies_markdown(summary: Table, notes: Sequence[str] = (), beam: str | None = None,
                      command: str | None = None) -> str:
    """Radio galaxies at known positions (the central-galaxy rule) as a Markdown table.

    Parameters
    ----------
    summary : astropy.table.Table
        From :func:`caesar_mrcnn.evaluation.compare_real.score_galaxies`.
    notes, command :
        As :func:`reference_markdown`.
    beam : str, optional
        How the beam was set, printed under the table.
    """
    lines = []
    if command:
        lines += ["Made with:", "", "```", command, "```", ""]
    lines += ["| finder | galaxy as ONE entry | …of class extended / extended-multisland "
              "| split into 2+ | missed | entries elsewhere | wall (s) | status |",
              "|---|---|---|---|---|---|---|---|"]
    for r in summary:
        n = r["galaxies"]
        ext = ("(no classes)" if r["one_entry_extended"] < 0 and r["one_entry"] >= 0
               else _ratio(r["one_entry_extended"], n))
        lines.append(f"| {r['finder']} | {_ratio(r['one_entry'], n)} | {ext} "
                     f"| {_ratio(r['split'], n)} | {_ratio(r['missed'], n)} "
                     f"| {_count(r['elsewhere'])} | {_fmt(r['wall_s'], 1)} | {r['status']} |")
    lines += ["", CENTRAL_RULE, "", SYMMETRY_RULE]
    if beam:
        lines += ["", beam]
    return "\n".join(lines + _notes_lines(notes)) + "\n"


def galaxies_plot(summary: Table):
    """Galaxies as one entry / split / missed, and entries elsewhere, per finder row.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4), layout="constrained")
    left, right = fig.subplots(1, 2)
    labels = list(summary["finder"])
    y = np.arange(len(labels))
    start = np.zeros(len(labels))
    for key, colour in (("one_entry", "tab:green"), ("split", "tab:orange"),
                        ("missed", "tab:grey")):
        vals = np.maximum(np.asarray(summary[key], float), 0)
        left.barh(y, vals, left=start, color=colour, label=key.replace("_", " "))
        start += vals
    left.set_yticks(y, labels, fontsize=8)
    left.set_xlabel("galaxies")
    left.legend(fontsize=8)
    right.barh(y, np.maximum(np.asarray(summary["elsewhere"], float), 0), color="tab:red")
    right.set_yticks(y, labels, fontsize=8)
    right.set_xlabel("entries elsewhere")
    return fig


def write_galaxies_comparison(summary: Table, per_image: Table, notes: Sequence[str],
                              out: str | Path, beam: str | None = None,
                              command: str | None = None) -> list[Path]:
    """Write galaxies{,_per_image}.{ecsv,csv}, galaxies.md and galaxies.png into ``out``."""
    fig = galaxies_plot(summary)
    text = galaxies_markdown(summary, notes, beam, command)
    return _write(out, {"galaxies": summary, "galaxies_per_image": per_image},
                  {"galaxies.md": text}, {"galaxies.png": fig})
