"""One real training step on 2 ranks x B images equals one step on 1 process x 2B images:
Mask R-CNN detection training and SimCLR pretraining with negatives from every rank; DINO
keeps one teacher centre, the mean over every rank."""

from __future__ import annotations

import numpy as np
import pytest
from hvdjob import check_ok, load_ranks, requires_horovod, run_job

pytestmark = [pytest.mark.parallel, requires_horovod]


def check_step_equivalence(ranks, atol: float) -> list[str]:
    """Weights equal on every rank and equal to the one-process step; returns weight names."""
    root = ranks[0]
    names = sorted((k for k in root if k[0] == "w" and k[1:].isdigit()), key=lambda k: int(k[1:]))
    assert names
    for name in names:
        np.testing.assert_array_equal(root[name], ranks[1][name], err_msg=name)
        np.testing.assert_allclose(root[name], root[f"ref_{name}"], atol=atol, err_msg=name)
    # The ranks saw different images, and the mean of their losses is the whole batch's loss.
    losses = [float(r["loss"]) for r in ranks]
    assert not np.isclose(losses[0], losses[1], rtol=1e-3)
    assert np.mean(losses) == pytest.approx(float(root["ref_loss"]), rel=1e-5)
    return names


def test_detection_step_two_ranks_equal_one_process(tmp_path):
    check_ok(run_job("mpirun", "detect_worker.py", [str(tmp_path)], timeout=240))
    ranks = load_ranks(tmp_path, 2)
    assert not np.array_equal(ranks[0]["w0"], ranks[0]["initial_w0"])
    check_step_equivalence(ranks, atol=1e-5)


def test_simclr_step_with_global_negatives_two_ranks_equal_one_process(tmp_path):
    check_ok(run_job("mpirun", "simclr_worker.py", [str(tmp_path)], timeout=240))
    ranks = load_ranks(tmp_path, 2)
    root = ranks[0]
    assert not np.array_equal(root["w0"], root["initial_w0"])
    names = check_step_equivalence(ranks, atol=1e-5)
    # The same step on rank 0's pairs alone (local negatives only) lands elsewhere.
    worst = max(np.abs(root[f"ref_{n}"] - root[f"local_{n}"]).max() for n in names)
    assert worst > 1e-3
    assert not np.isclose(float(root["local_loss"]), float(root["ref_loss"]), rtol=1e-4)


def test_dino_centre_is_the_mean_over_every_rank(tmp_path):
    check_ok(run_job("mpirun", "dino_worker.py", [str(tmp_path)], timeout=240))
    ranks = load_ranks(tmp_path, 2)
    np.testing.assert_array_equal(ranks[0]["center"], ranks[1]["center"])
    global_mean = np.mean([r["local_mean"] for r in ranks], axis=0)
    np.testing.assert_allclose(ranks[0]["center"], (1 - 0.8) * global_mean, rtol=1e-5,
                               atol=1e-7)
    # The ranks' own means differ: a per-rank centre would not be this one.
    assert not np.allclose(ranks[0]["local_mean"], ranks[1]["local_mean"], atol=1e-4)
    names = [k for k in ranks[0] if k[0] == "w" and k[1:].isdigit()]
    for name in names:  # one model on every rank after the step
        np.testing.assert_array_equal(ranks[0][name], ranks[1][name], err_msg=name)
