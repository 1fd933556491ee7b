"""Frozen-feature evaluation of a backbone: linear probe and weighted kNN, stratified k-fold,
and the ``ssl-eval`` entry point (which hands MiraBest's official split to
:mod:`ssl_backbones.mirabest_eval`).

The linear probe is multinomial logistic regression (L2-regularised, L-BFGS from SciPy) on
standardised features; the kNN classifier votes with the ``k`` most cosine-similar training
samples, each weighted by ``exp(similarity / T)`` (both in :mod:`ssl_backbones.probes`).
Accuracies are reported as mean and standard deviation over the folds.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from ssl_backbones.errors import PretrainConfigError
from ssl_backbones.probes import LogisticRegression, knn_scores, stratified_kfold, topk_accuracy


def cross_validate(features: np.ndarray, labels: np.ndarray, n_classes: int, folds: int = 5,
                   seed: int = 0, k: int = 20, l2: float = 1e-2) -> dict[str, Any]:
    """Linear-probe and kNN top-1/top-2 accuracy over stratified folds.

    Returns
    -------
    dict
        ``{"linear_probe": {"top1": {"mean", "std", "folds"}, "top2": ...}, "knn": ...}``;
        accuracies are fractions in [0, 1].
    """
    per: dict[str, dict[str, list[float]]] = {
        "linear_probe": {"top1": [], "top2": []}, "knn": {"top1": [], "top2": []}}
    for train, test in stratified_kfold(labels, folds, seed):
        probe = LogisticRegression(l2=l2).fit(features[train], labels[train], n_classes)
        scores = {"linear_probe": probe.decision_function(features[test]),
                  "knn": knn_scores(features[train], labels[train], features[test],
                                    n_classes, k=k)}
        for name, s in scores.items():
            per[name]["top1"].append(topk_accuracy(s, labels[test], 1))
            per[name]["top2"].append(topk_accuracy(s, labels[test], 2))
    return {name: {metric: {"mean": float(np.mean(v)), "std": float(np.std(v)), "folds": v}
                   for metric, v in res.items()} for name, res in per.items()}


def extract_features(model, images: np.ndarray, input_size: int, stretches: Sequence[str],
                     channels: int, batch_size: int = 64) -> np.ndarray:
    """Frozen pooled features ``[N, D]`` of raw cutouts ``[N, H, W, 1]`` (deterministic
    preprocessing: min-max, NaN -> 0, resize, fixed stretches)."""
    from ssl_backbones.augment import preprocess

    out = []
    for start in range(0, len(images), batch_size):
        x = preprocess(images[start:start + batch_size], input_size, stretches, channels)
        out.append(np.asarray(model(x, training=False)["pooled"]))
    return np.concatenate(out)


def extract_snr_features(model, snr: np.ndarray, size: int, batch_size: int = 64
                         ) -> np.ndarray:
    """Frozen pooled features ``[N, D]`` of reference-sampled SNR maps ``[N, H, W]`` (centred
    ``size x size``, fixed stretches of ``radio_input.snr_channels``)."""
    from ssl_backbones.augment import snr_preprocess

    out = []
    for start in range(0, len(snr), batch_size):
        x = snr_preprocess(snr[start:start + batch_size], size)
        out.append(np.asarray(model(x, training=False)["pooled"]))
    return np.concatenate(out)


def knn_cv_accuracy(features: np.ndarray, labels: np.ndarray, n_classes: int,
                    folds: int = 5, seed: int = 0, k: int = 20) -> float:
    """Mean top-1 kNN accuracy over stratified folds (a cheap monitor during pretraining)."""
    folds = max(2, min(folds, int(np.bincount(labels).max()), len(labels)))
    accs = [topk_accuracy(knn_scores(features[tr], labels[tr], features[te], n_classes, k),
                          labels[te], 1)
            for tr, te in stratified_kfold(labels, folds, seed)]
    return float(np.mean(accs))


def format_table(result: dict[str, Any]) -> str:
    """Text table of a k-fold :func:`ssl_eval` result (accuracies in per cent), the backbone
    beside its random-init twin."""
    lines = [f"backbone {result['backbone']} on {result['data']} "
             f"({result['n_samples']} cutouts, {result['n_classes']} classes, "
             f"{result['folds']}-fold)",
             f"{'classifier':<26}{'top-1 (%)':>16}{'top-2 (%)':>16}"]
    for variant, res in result["results"].items():
        for name in ("linear_probe", "knn"):
            r = res[name]
            cells = [f"{100 * r[m]['mean']:.1f} ± {100 * r[m]['std']:.1f}"
                     for m in ("top1", "top2")]
            lines.append(f"{variant + ' ' + name:<26}{cells[0]:>16}{cells[1]:>16}")
    return "\n".join(lines)


def ssl_eval(backbone: str, data: str | Path, folds: int = 5, seed: int = 0, k: int = 20,
             out: str | Path | None = None, search_dirs: Sequence[str | Path] = (),
             registry: str | Path | None = None, stream: TextIO | None = None,
             subset: str = "confident", protocol: str | None = None,
             protocols: Sequence[str] = ("linear", "knn"), size: int | None = None,
             finetune_epochs: int = 15, finetune_labels: Sequence[int] = (),
             twin: bool = True, finetune_subset_epochs: int | None = None
             ) -> dict[str, Any]:
    """Evaluate a registered (or ``.npz``) backbone on labelled radio galaxies.

    ``data`` is a labelled morphology folder (stratified k-fold), or MiraBest as distributed
    (the ``F_batches`` folder or the tarball): by default the official split with the
    ``protocols`` of :mod:`ssl_backbones.mirabest_eval`; ``protocol="kfold"`` runs the k-fold
    on the subset's training images only. Every figure is given for the backbone and for its
    random-init twin (``twin=False`` skips the twin).

    Prints a table to ``stream`` (default stdout) and writes the result as JSON to ``out``
    (default ``ssl_eval_<backbone name>.json`` in the current folder) atomically.

    Returns
    -------
    dict
        Backbone name, data, sample and class counts, and the results under ``"results"``
        (``{"pretrained": ..., "random_init": ...}``).
    """
    from ssl_backbones.atomic import atomic_target
    from ssl_backbones.mirabest import is_mirabest
    from ssl_backbones.registry import load_backbone

    if folds < 2:
        raise PretrainConfigError(f"--folds {folds}: need at least 2 folds")
    if k < 1:
        raise PretrainConfigError(f"--k {k}: the kNN classifier needs at least 1 neighbour")
    if out is not None and Path(out).is_dir():
        raise PretrainConfigError(f"--out {out}: is a folder; give a file name such as "
                                  "ssl_eval.json")
    mirabest = is_mirabest(data)
    protocol = protocol or ("official" if mirabest else "kfold")
    if protocol not in ("official", "kfold"):
        raise PretrainConfigError(f"--protocol {protocol}: use official or kfold")
    if protocol == "official" and not mirabest:
        raise PretrainConfigError(f"--protocol official: {data} is not MiraBest; give the "
                                  "F_batches folder or MiraBest_F_batches.tar.gz, or use kfold")
    model, meta = load_backbone(backbone, search_dirs, registry)
    t0 = time.time()
    say = (lambda msg: print(msg, file=stream or sys.stderr))
    if protocol == "official":
        from ssl_backbones.mirabest_eval import evaluate_official, format_official

        result = evaluate_official(lambda: load_backbone(backbone, search_dirs, registry)[0],
                                   meta, data, subset, protocols, size, k, seed,
                                   finetune_epochs, finetune_labels, twin, log=say,
                                   finetune_subset_epochs=finetune_subset_epochs)
        table = format_official
    else:
        result = _kfold(model, meta, data, subset if mirabest else None, folds, seed, k, size,
                        twin)
        table = format_table
    result = {"backbone": meta.get("name", str(backbone)), "backbone_path": meta.get("path"),
              "backbone_input": meta.get("input_name", "minmax"), "data": str(data),
              "protocol": protocol, **result, "wall_s": round(time.time() - t0, 1)}
    out_path = Path(out) if out else Path(f"ssl_eval_{result['backbone']}.json")
    with atomic_target(out_path, error=PretrainConfigError) as tmp:
        tmp.write_text(json.dumps(result, indent=2) + "\n")
    result["json"] = str(out_path)
    print(table(result), file=stream or sys.stdout)
    print(f"wrote {out_path}", file=stream or sys.stdout)
    return result


def _kfold(model, meta: dict[str, Any], data, subset: str | None, folds: int, seed: int,
           k: int, size: int | None, twin: bool) -> dict[str, Any]:
    """Stratified k-fold linear probe and kNN, for the backbone and its random-init twin, on a
    labelled folder or on MiraBest's training images of ``subset``."""
    from ssl_backbones.mirabest_eval import Inputs, random_twin

    inputs = Inputs(meta, size)
    if subset is not None:
        images, labels = inputs.load(data, subset, "train")
        classes = ["FRI", "FRII"]
    else:
        from ssl_backbones.data import load_labelled

        images, labels, classes = load_labelled(data)
        if inputs.snr:
            images = _folder_snr(images)
        else:
            images = images[..., 0]
    models = [("pretrained", model)] + ([("random_init", random_twin(meta, seed))]
                                        if twin else [])
    results = {name: cross_validate(inputs.features(m, images), labels, len(classes), folds,
                                    seed, k) for name, m in models}
    return {"n_samples": int(len(labels)), "n_classes": len(classes), "classes": classes,
            "subset": subset,
            "class_counts": np.bincount(labels, minlength=len(classes)).tolist(),
            "folds": int(folds), "seed": int(seed), "knn_k": int(k), "input_size": inputs.size,
            "results": results}


def _folder_snr(images: np.ndarray) -> np.ndarray:
    """Labelled cutouts ``[N, H, W, 1]`` (image units) as SNR maps ``[N, H, W]``, each scaled
    by its own sigma-clipped median and rms (no resampling: no beam is known here)."""
    from ssl_backbones.fields import robust_stats

    out = []
    for im in images[..., 0]:
        med, rms = robust_stats(im)
        rms = rms if np.isfinite(rms) and rms > 0 else 1.0
        out.append(np.where(np.isfinite(im), (im - med) / rms, 0.0))
    return np.asarray(out, dtype=np.float32)
