"""Classifiers on frozen features: stratified folds, cosine kNN, L2 logistic regression.

The pieces that every evaluation protocol shares (the k-fold protocol in
:mod:`ssl_backbones.evaluate`, the official MiraBest split in :mod:`ssl_backbones.mirabest_eval`),
kept apart so that both import them and neither imports the other's protocol. Pure NumPy and
SciPy: no model code.
"""

from __future__ import annotations

import numpy as np

from ssl_backbones.errors import PretrainConfigError


def stratified_kfold(labels: np.ndarray, folds: int, seed: int = 0
                     ) -> list[tuple[np.ndarray, np.ndarray]]:
    """Split sample indices into ``folds`` (train, test) pairs with class proportions kept.

    Each class's samples are shuffled and dealt round-robin to the folds.
    """
    labels = np.asarray(labels)
    if folds < 2:
        raise PretrainConfigError(f"--folds {folds}: need at least 2 folds")
    if folds > len(labels):
        raise PretrainConfigError(f"--folds {folds}: more folds than the {len(labels)} samples")
    rng = np.random.default_rng(seed)
    fold_of = np.empty(len(labels), dtype=np.int64)
    offset = 0
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        # Continue the deal where the previous class stopped, so folds stay balanced in size.
        fold_of[idx] = (np.arange(len(idx)) + offset) % folds
        offset += len(idx)
    return [(np.flatnonzero(fold_of != f), np.flatnonzero(fold_of == f)) for f in range(folds)]


def topk_accuracy(scores: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Fraction of rows whose true label is among the ``k`` highest scores."""
    k = min(k, scores.shape[1])
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return float(np.mean(np.any(top == np.asarray(labels)[:, None], axis=1)))


def knn_scores(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, n_classes: int,
               k: int = 20, temperature: float = 0.07) -> np.ndarray:
    """Class votes ``[n_test, n_classes]`` of a cosine-similarity, exp-weighted kNN."""
    a = train_x / np.maximum(np.linalg.norm(train_x, axis=1, keepdims=True), 1e-12)
    b = test_x / np.maximum(np.linalg.norm(test_x, axis=1, keepdims=True), 1e-12)
    sim = b @ a.T
    k = min(k, len(train_x))
    nn = np.argpartition(-sim, k - 1, axis=1)[:, :k]
    w = np.exp(np.take_along_axis(sim, nn, axis=1) / temperature)
    votes = np.zeros((len(test_x), n_classes))
    np.add.at(votes, (np.arange(len(test_x))[:, None], np.asarray(train_y)[nn]), w)
    return votes


def softmax_loss_and_grad(theta: np.ndarray, x: np.ndarray, onehot: np.ndarray, l2: float
                          ) -> tuple[float, np.ndarray]:
    """Mean multinomial cross entropy plus ``l2 * ||W||^2 / 2``, and its gradient.

    ``theta`` packs the ``[D, K]`` weights (row-major) followed by the ``K`` biases.
    """
    n, d = x.shape
    k = onehot.shape[1]
    w = theta[: d * k].reshape(d, k)
    logits = x @ w + theta[d * k:]
    logits = logits - logits.max(axis=1, keepdims=True)
    logp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    loss = -np.sum(onehot * logp) / n + 0.5 * l2 * np.sum(w * w)
    diff = (np.exp(logp) - onehot) / n
    grad_w = x.T @ diff + l2 * w
    return float(loss), np.concatenate([grad_w.ravel(), diff.sum(axis=0)])


class LogisticRegression:
    """Multinomial logistic regression with L2 penalty ``l2 * ||W||^2 / 2`` (biases not penalised).

    Features are standardised with the training mean and std; fitted with L-BFGS.
    """

    def __init__(self, l2: float = 1e-2, max_iter: int = 500):
        self.l2 = float(l2)
        self.max_iter = int(max_iter)

    def fit(self, x: np.ndarray, y: np.ndarray, n_classes: int) -> LogisticRegression:
        from scipy.optimize import minimize

        x = np.asarray(x, dtype=np.float64)
        self.mean_ = x.mean(axis=0)
        self.scale_ = np.maximum(x.std(axis=0), 1e-8)
        xs = (x - self.mean_) / self.scale_
        d = xs.shape[1]
        onehot = np.eye(n_classes)[np.asarray(y)]
        theta0 = np.zeros(d * n_classes + n_classes)
        res = minimize(softmax_loss_and_grad, theta0, args=(xs, onehot, self.l2), jac=True,
                       method="L-BFGS-B", options={"maxiter": self.max_iter})
        self.coef_ = res.x[: d * n_classes].reshape(d, n_classes)
        self.intercept_ = res.x[d * n_classes:]
        return self

    def decision_function(self, x: np.ndarray) -> np.ndarray:
        return ((np.asarray(x, dtype=np.float64) - self.mean_) / self.scale_) @ self.coef_ + \
            self.intercept_
