import numpy as np
import pytest

from ssl_backbones.errors import PretrainConfigError
from ssl_backbones.evaluate import cross_validate, knn_cv_accuracy
from ssl_backbones.probes import (
    LogisticRegression,
    knn_scores,
    softmax_loss_and_grad,
    stratified_kfold,
    topk_accuracy,
)


def _clusters(n_per=30, dim=16, classes=4, sep=4.0, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(classes, dim)) * sep
    y = np.repeat(np.arange(classes), n_per)
    return centres[y] + rng.normal(size=(len(y), dim)), y


def test_stratified_kfold_partitions_and_balances():
    y = np.array([0] * 10 + [1] * 20 + [2] * 5)
    splits = stratified_kfold(y, 5, seed=3)
    tests = np.concatenate([te for _, te in splits])
    assert sorted(tests.tolist()) == list(range(len(y)))
    for train, test in splits:
        assert not set(train) & set(test)
        assert np.bincount(y[test], minlength=3).tolist() == [2, 4, 1]
    with pytest.raises(PretrainConfigError):
        stratified_kfold(y, 1)


def test_topk_accuracy_by_hand():
    scores = np.array([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2], [0.2, 0.3, 0.5]])
    y = np.array([2, 0, 1])
    assert topk_accuracy(scores, y, 1) == pytest.approx(1 / 3)
    assert topk_accuracy(scores, y, 2) == pytest.approx(1.0)


def test_knn_weighted_votes_by_hand():
    train = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
    votes = knn_scores(train, np.array([0, 0, 1]), np.array([[1.0, 0.05]]), 2, k=2,
                       temperature=1.0)
    q = np.array([1.0, 0.05]) / np.linalg.norm([1.0, 0.05])
    sims = train[:2] @ q / np.linalg.norm(train[:2], axis=1)
    np.testing.assert_allclose(votes, [[np.exp(sims).sum(), 0.0]])


def test_probe_and_knn_on_separable_features():
    x, y = _clusters()
    res = cross_validate(x, y, 4, folds=5, seed=0, k=10)
    for name in ("linear_probe", "knn"):
        assert res[name]["top1"]["mean"] >= 0.95
        assert len(res[name]["top1"]["folds"]) == 5
        assert res[name]["top2"]["mean"] >= res[name]["top1"]["mean"]
    assert knn_cv_accuracy(x, y, 4) >= 0.95


def test_probe_at_chance_on_random_labels():
    x, _ = _clusters(seed=1)
    y = np.random.default_rng(5).integers(0, 4, len(x))
    res = cross_validate(x, y, 4, folds=4, seed=0)
    assert res["linear_probe"]["top1"]["mean"] < 0.5


def test_logistic_regression_gradient_is_exact():
    from scipy.optimize import check_grad

    rng = np.random.default_rng(2)
    x, onehot = rng.normal(size=(12, 3)), np.eye(4)[rng.integers(0, 4, 12)]
    theta = rng.normal(size=3 * 4 + 4)
    loss = softmax_loss_and_grad(theta, x, onehot, 0.3)[0]
    err = check_grad(lambda t: softmax_loss_and_grad(t, x, onehot, 0.3)[0],
                     lambda t: softmax_loss_and_grad(t, x, onehot, 0.3)[1], theta)
    assert err < 1e-5 * max(1.0, loss)
    # At zero weights the loss is log(K) plus nothing from the penalty.
    zero = softmax_loss_and_grad(np.zeros_like(theta), x, onehot, 0.3)[0]
    assert zero == pytest.approx(np.log(4))


def test_logistic_regression_fits_separable_data():
    x, y = _clusters(n_per=5, dim=3, classes=3)
    model = LogisticRegression(l2=1e-3).fit(x, y, 3)
    assert topk_accuracy(model.decision_function(x), y, 1) == 1.0
