"""Two real Horovod ranks (horovodrun --gloo, CPU): collectives, training sync, 2xB == 1x2B."""

from __future__ import annotations

import numpy as np
import pytest
from hvdjob import check_collectives, check_ok, load_ranks, load_worker, requires_horovod, run_job

pytestmark = [pytest.mark.parallel, requires_horovod]

N = 2
SCENARIOS = "collectives,train,equiv,root_writes"


@pytest.fixture(scope="module")
def gloo_job(tmp_path_factory):
    out = tmp_path_factory.mktemp("gloo")
    result = run_job("gloo", "hvd_worker.py", [str(out), SCENARIOS], n_ranks=N, timeout=150)
    check_ok(result)
    return out, load_ranks(out, N)


@pytest.fixture(scope="module")
def worker():
    return load_worker("hvd_worker.py")


def test_collectives_match_numpy(gloo_job, worker):
    _, ranks = gloo_job
    check_collectives(ranks, worker, N)


def test_object_collectives_and_metrics(gloo_job):
    _, ranks = gloo_job
    for r in ranks:
        assert int(r["broadcast_from"]) == 0
        np.testing.assert_array_equal(r["allgather_object_ranks"], np.arange(N))
        assert float(r["average"]) == pytest.approx(np.mean(np.arange(1, N + 1)))
        assert float(r["sum"]) == pytest.approx(np.sum(np.arange(1, N + 1)))
        assert float(r["lr_linear"]) == pytest.approx(0.1 * N)
    shards = [range(11)[slice(*r["shard"])] for r in ranks]
    assert [i for s in shards for i in s] == list(range(11))
    assert len({int(r["seed"]) for r in ranks}) == N


def test_sync_batch_norm_stats_match_concatenated_batch(gloo_job, worker):
    _, ranks = gloo_job
    pooled = np.concatenate([worker.bn_batch(r) for r in range(N)]).astype(np.float64)
    for r in ranks:
        np.testing.assert_allclose(r["bn_mean"], pooled.mean(axis=(0, 1, 2)), rtol=1e-5)
        np.testing.assert_allclose(r["bn_var"], pooled.var(axis=(0, 1, 2)), rtol=1e-5)
        np.testing.assert_array_equal(r["bn_mean_keepdims_shape"], [1, 1, 1, 5])


def test_weights_identical_on_every_rank_after_training(gloo_job):
    _, ranks = gloo_job
    # Each rank initialised differently and trained on different data; broadcasting rank 0's
    # weights and averaging gradients keeps them equal bit for bit.
    assert not np.array_equal(ranks[0]["train_initial_local"], ranks[1]["train_initial_local"])
    np.testing.assert_array_equal(ranks[1]["train_initial"], ranks[0]["train_initial_local"])
    names = sorted(k for k in ranks[0] if k.startswith("train_w"))
    assert len(names) == 8  # conv (2), batch norm (gamma, beta, moving mean/var), dense (2)
    for name in names:
        np.testing.assert_array_equal(ranks[0][name], ranks[1][name], err_msg=name)
    assert not np.allclose(ranks[0]["train_w0"], ranks[0]["train_initial"])


def test_two_ranks_batch_b_equal_one_rank_batch_2b(gloo_job):
    _, ranks = gloo_job
    root = ranks[0]
    names = sorted(k for k in root if k.startswith("equiv_w"))
    assert names
    for name in names:
        suffix = name.removeprefix("equiv_")
        np.testing.assert_allclose(root[name], root[f"equiv_ref_{suffix}"], atol=2e-6, err_msg=name)
        np.testing.assert_array_equal(root[name], ranks[1][name], err_msg=name)
    # The same step on rank 0's batch alone lands elsewhere: the comparison above can fail.
    worst = max(np.abs(root[n] - root[f"equiv_local_{n[6:]}"]).max() for n in names)
    assert worst > 1e-3


def test_only_root_writes_outputs(gloo_job):
    out, ranks = gloo_job
    files = list((out / "outputs").iterdir())
    assert [f.name for f in files] == ["catalogue.txt"]
    assert files[0].read_text() == "written by rank 0\n"
    assert [bool(r["root_writes_returned"]) for r in ranks] == [True, False]
