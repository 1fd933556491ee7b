"""A backbone measured on MiraBest FR I / FR II, official split, beside its random-init twin.

Protocols (all train on the official training batches of a subset and report on the test
batch; the test images are never used to choose anything):

* ``linear``: frozen pooled features, L2-regularised logistic regression; the penalty is
  chosen by 5-fold cross-validation on the training features;
* ``knn``: frozen features, cosine-similarity kNN (``k`` neighbours, exp-weighted votes);
* ``finetune``: the whole backbone plus a linear head trained with cross entropy (AdamW,
  cosine decay) on augmented views (small shifts and zooms, flips, 90 degree turns, SNR
  scaling), optionally on a class-stratified subset of the training labels.

Each protocol is run for the backbone and for a *random-init twin*: the same network and
input, weights drawn by the Keras initialisers (seeded) and never trained. Accuracy comes with
a Wilson 95 % binomial interval; F1 is the mean over the two classes (macro F1).

Inputs follow the backbone's metadata: ``snr3-v1`` backbones get the reference-sampled SNR
maps (:mod:`ssl_backbones.mirabest`) through ``radio_input.snr_channels``; older (min-max)
backbones get the 8-bit images under their own preprocessing.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from ssl_backbones.errors import PretrainConfigError
from ssl_backbones.probes import LogisticRegression, knn_scores, stratified_kfold

PROTOCOLS = ("linear", "knn", "finetune")


def wilson_interval(correct: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (fractions in [0, 1]; NaN when
    ``n == 0``), from ``astropy.stats.binom_conf_interval``."""
    from astropy.stats import binom_conf_interval

    if n <= 0:
        return float("nan"), float("nan")
    lo, hi = binom_conf_interval(correct, n, confidence_level=confidence, interval="wilson")
    return float(lo), float(hi)


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int = 2) -> float:
    """Mean over classes of the per-class F1 (a class never predicted nor present counts 0)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    f1s = []
    for c in range(n_classes):
        tp = np.sum((y_pred == c) & (y_true == c))
        fp = np.sum((y_pred == c) & (y_true != c))
        fn = np.sum((y_pred != c) & (y_true == c))
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0)
    return float(np.mean(f1s))


def scores(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, Any]:
    """Accuracy with its Wilson interval, macro F1 and counts."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    n, k = int(len(y_true)), int(np.sum(y_true == y_pred))
    lo, hi = wilson_interval(k, n)
    return {"accuracy": k / n if n else float("nan"), "ci95": [lo, hi],
            "f1_macro": macro_f1(y_true, y_pred), "correct": k, "n": n}


def stratified_subset(labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Indices of ``n`` samples with the class proportions of ``labels`` (seeded)."""
    labels = np.asarray(labels)
    if n >= len(labels):
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    want = np.floor(counts / counts.sum() * n).astype(int)
    for i in np.argsort(-(counts / counts.sum() * n - want))[: n - want.sum()]:
        want[i] += 1
    idx = [rng.choice(np.flatnonzero(labels == c), w, replace=False)
           for c, w in zip(classes, want)]
    return np.sort(np.concatenate(idx))


def linear_probe(train_x, train_y, test_x, seed: int = 0,
                 l2_grid: Sequence[float] = (1e-3, 1e-2, 1e-1, 1.0, 10.0)
                 ) -> tuple[np.ndarray, float]:
    """Logistic-regression predictions on ``test_x``; the penalty chosen by 5-fold CV on the
    training set. Returns (predictions, chosen l2)."""
    folds = stratified_kfold(train_y, 5, seed)
    best, best_acc = l2_grid[0], -1.0
    for l2 in l2_grid:
        acc = np.mean([np.mean(LogisticRegression(l2).fit(train_x[tr], train_y[tr], 2)
                               .decision_function(train_x[te]).argmax(1) == train_y[te])
                       for tr, te in folds])
        if acc > best_acc + 1e-9:
            best, best_acc = l2, acc
    probe = LogisticRegression(best).fit(train_x, train_y, 2)
    return probe.decision_function(test_x).argmax(1), float(best)


def knn_predict(train_x, train_y, test_x, k: int = 20) -> np.ndarray:
    """Cosine kNN predictions (see :func:`ssl_backbones.probes.knn_scores`)."""
    return knn_scores(train_x, train_y, test_x, 2, k=k).argmax(1)


class Inputs:
    """Network input of a backbone for MiraBest images, as its metadata defines it."""

    def __init__(self, meta: dict[str, Any], size: int | None = None):
        from ssl_backbones.radio_input import INPUT_NAME

        self.snr = meta.get("input_name") == INPUT_NAME
        prep = meta.get("preprocessing", {})
        self.size = int(size or prep.get("input_size", meta.get("input_size", 64)))
        self.stretches = prep.get("stretches", ["linear"])
        self.channels = int(meta["in_channels"])

    def load(self, data, subset: str, split: str) -> tuple[np.ndarray, np.ndarray]:
        """Images in the form :meth:`batch` takes, and FR labels."""
        from ssl_backbones.mirabest import binary_subset, load_subset, read_split

        if self.snr:
            x, y, _ = load_subset(data, subset, split)
            return x, y
        x, y, _ = binary_subset(read_split(data, split), subset)
        return x.astype(np.float32), y

    def batch(self, x):
        """Deterministic network input of a batch."""
        if self.snr:
            from ssl_backbones.augment import snr_preprocess

            return snr_preprocess(x, self.size)
        from ssl_backbones.augment import preprocess

        return preprocess(x, self.size, self.stretches, self.channels)

    def features(self, model, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
        out = [np.asarray(model(self.batch(images[i:i + batch_size]), training=False)["pooled"])
               for i in range(0, len(images), batch_size)]
        return np.concatenate(out)


def _finetune_views(x, seed, size: int):
    """Augmented training batch of SNR maps for fine-tuning: a near-centre crop (shift up to
    ~10 % of the side, zoom 0.9-1.1), flips, 90 degree turns, SNR scaling 0.8-1.25."""
    import tensorflow as tf

    from ssl_backbones.augment import snr_view
    from ssl_backbones.config import AugmentConfig

    cfg = AugmentConfig(zoom_range=(0.9, 1.1), max_rotation_deg=0.0, blur_prob=0.0,
                        noise_prob=0.0, snr_scale=(0.8, 1.25))
    x = tf.convert_to_tensor(x, tf.float32)[..., None]
    side = int(round(size * 1.2))
    x = tf.image.resize_with_crop_or_pad(tf.where(tf.math.is_finite(x), x, 0.0), side, side)
    return snr_view(x, seed, cfg, size)


def finetune(model, inputs: Inputs, train_x, train_y, test_x, epochs: int, seed: int,
             lr: float = 3e-4, batch_size: int = 32) -> tuple[np.ndarray, dict[str, Any]]:
    """Train ``model`` (all layers) plus a linear head; predictions on ``test_x``.

    Returns
    -------
    predictions : numpy.ndarray
    info : dict
        ``epochs``, ``steps``, ``final_loss``, ``wall_s``.
    """
    import keras
    import tensorflow as tf

    if not inputs.snr:
        raise PretrainConfigError("--protocols finetune: needs an snr3-v1 backbone (older "
                                  "min-max backbones are measured with linear and knn only)")
    keras.utils.set_random_seed(seed)
    head = keras.layers.Dense(2, name="fr_head")
    feat_dim = int(model.output["pooled"].shape[-1])
    head.build((None, feat_dim))
    steps_per_epoch = max(1, int(math.ceil(len(train_x) / batch_size)))
    total = epochs * steps_per_epoch
    schedule = keras.optimizers.schedules.CosineDecay(lr, total, alpha=0.01)
    opt = keras.optimizers.AdamW(schedule, weight_decay=1e-4)
    variables = model.trainable_variables + head.trainable_variables
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    @tf.function(reduce_retracing=True, autograph=False)
    def step(x, y):
        with tf.GradientTape() as tape:
            logits = head(model(x, training=True)["pooled"])
            loss = loss_fn(y, logits)
        opt.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    rng = np.random.default_rng(seed)
    t0 = time.time()
    loss = float("nan")
    n_step = 0
    for epoch in range(epochs):
        order = rng.permutation(len(train_x))
        for b in range(steps_per_epoch):
            idx = order[b * batch_size:(b + 1) * batch_size]
            if len(idx) < 2:
                continue
            s = tf.constant([seed, epoch * 100003 + b], tf.int64)
            x = _finetune_views(train_x[idx], s, inputs.size)
            loss = float(step(x, tf.constant(train_y[idx])))
            n_step += 1
    preds = []
    for i in range(0, len(test_x), 64):
        feats = model(inputs.batch(test_x[i:i + 64]), training=False)["pooled"]
        preds.append(np.asarray(head(feats)).argmax(1))
    return np.concatenate(preds), {"epochs": epochs, "steps": n_step, "final_loss": loss,
                                   "wall_s": round(time.time() - t0, 1)}


def random_twin(meta: dict[str, Any], seed: int):
    """The backbone's architecture with seeded random weights (never trained)."""
    import keras

    from ssl_backbones.resnet import build_resnet

    keras.utils.set_random_seed(seed)
    return build_resnet(meta["arch"], int(meta["in_channels"]),
                        bool(meta.get("small_stem", False)), meta.get("norm", "batch"))


def evaluate_official(backbone_loader, meta: dict[str, Any], data, subset: str = "confident",
                      protocols: Sequence[str] = ("linear", "knn"), size: int | None = None,
                      k: int = 20, seed: int = 0, finetune_epochs: int = 15,
                      finetune_labels: Sequence[int] = (), twin: bool = True,
                      log=None, finetune_subset_epochs: int | None = None) -> dict[str, Any]:
    """Every protocol for the backbone and its random-init twin on the official split.

    Parameters
    ----------
    backbone_loader : callable
        Returns a fresh copy of the pretrained backbone (fine-tuning changes the weights).
    finetune_labels : sequence of int
        Extra fine-tuning runs on stratified subsets of this many training labels (e.g. 145).
    finetune_subset_epochs : int, optional
        Epochs of those runs (default ``finetune_epochs``; a small subset needs more epochs
        for the same number of optimiser steps).

    Returns
    -------
    dict
        ``{"pretrained": {protocol: scores}, "random_init": {...}}`` plus counts and settings.
    """
    bad = [p for p in protocols if p not in PROTOCOLS]
    if bad:
        raise PretrainConfigError(f"--protocols {','.join(bad)}: use {', '.join(PROTOCOLS)}")
    inputs = Inputs(meta, size)
    train_x, train_y = inputs.load(data, subset, "train")
    test_x, test_y = inputs.load(data, subset, "test")
    say = log or (lambda msg: None)
    result: dict[str, Any] = {
        "subset": subset, "split": "official (data_batch_1-7 / test_batch)",
        "n_train": int(len(train_y)), "n_test": int(len(test_y)),
        "train_counts": np.bincount(train_y, minlength=2).tolist(),
        "test_counts": np.bincount(test_y, minlength=2).tolist(),
        "input": "snr3-v1" if inputs.snr else "minmax (backbone's own)",
        "input_size": inputs.size, "knn_k": k, "seed": seed, "results": {}}
    variants = [("pretrained", backbone_loader)]
    if twin:
        variants.append(("random_init", lambda: random_twin(meta, seed)))
    for variant, make in variants:
        res: dict[str, Any] = {}
        if {"linear", "knn"} & set(protocols):
            t0 = time.time()
            model = make()
            ftr, fte = inputs.features(model, train_x), inputs.features(model, test_x)
            say(f"{variant}: features in {time.time() - t0:.0f} s")
            if "linear" in protocols:
                pred, l2 = linear_probe(ftr, train_y, fte, seed)
                res["linear"] = {**scores(test_y, pred), "l2": l2}
            if "knn" in protocols:
                res["knn"] = scores(test_y, knn_predict(ftr, train_y, fte, k))
        if "finetune" in protocols:
            for n_lab in (None, *finetune_labels):
                idx = (np.arange(len(train_y)) if n_lab is None
                       else stratified_subset(train_y, n_lab, seed))
                key = "finetune" if n_lab is None else f"finetune_{len(idx)}"
                epochs = (finetune_epochs if n_lab is None
                          else finetune_subset_epochs or finetune_epochs)
                pred, info = finetune(make(), inputs, train_x[idx], train_y[idx], test_x,
                                      epochs, seed)
                res[key] = {**scores(test_y, pred), **info, "n_labels": int(len(idx))}
                say(f"{variant}: {key} {100 * res[key]['accuracy']:.1f} % "
                    f"({info['wall_s']:.0f} s)")
        result["results"][variant] = res
    return result


def format_official(result: dict[str, Any]) -> str:
    """Text table: accuracy (Wilson 95 % interval) and macro F1, backbone beside its twin."""
    r = result["results"]
    rows = sorted({p for v in r.values() for p in v}, key=lambda p: (
        PROTOCOLS.index(p.split("_")[0]) if p.split("_")[0] in PROTOCOLS else 9, p))
    head = (f"MiraBest {result['subset']}: train {result['n_train']} "
            f"{tuple(result['train_counts'])}, test {result['n_test']} "
            f"{tuple(result['test_counts'])}; input {result['input']}, {result['input_size']} px")
    lines = [head, f"{'protocol':<16}" + "".join(f"{v:>34}" for v in r)]

    def cell(s):
        if s is None:
            return "-"
        lo, hi = s["ci95"]
        return (f"{100 * s['accuracy']:.1f} % [{100 * lo:.1f}, {100 * hi:.1f}] "
                f"F1 {s['f1_macro']:.2f}")

    for p in rows:
        lines.append(f"{p:<16}" + "".join(f"{cell(v.get(p)):>34}" for v in r.values()))
    return "\n".join(lines)
