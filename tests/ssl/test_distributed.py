"""Single-process behaviour of ssl_backbones.distributed (multi-rank tests: tests/parallel/)."""

from __future__ import annotations

import math
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from ssl_backbones import distributed
from ssl_backbones.distributed import (
    LAUNCHER_RANK_VARS,
    SingleContext,
    SyncBatchNormalization,
    lr_for_ranks,
    rank_seed,
    shard_range,
    sync_moments,
)
from ssl_backbones.errors import BackboneError, DistributedSetupError

LAUNCH_VARS = LAUNCHER_RANK_VARS + (
    "HOROVOD_SIZE",
    "OMPI_COMM_WORLD_SIZE",
    "PMI_SIZE",
    "MV2_COMM_WORLD_SIZE",
    "SLURM_NTASKS",
)


@pytest.fixture
def no_launcher(monkeypatch):
    for name in LAUNCH_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def no_horovod(monkeypatch):
    # A None entry in sys.modules makes the import fail, as on a machine without Horovod.
    monkeypatch.setitem(sys.modules, "horovod", None)
    monkeypatch.setitem(sys.modules, "horovod.tensorflow", None)


# --- choosing a context -------------------------------------------------------------------------


def test_init_without_launcher_is_single_process(no_launcher):
    ctx = distributed.init()
    assert isinstance(ctx, SingleContext)
    assert (ctx.rank, ctx.size, ctx.local_rank, ctx.local_size) == (0, 1, 0, 1)
    assert ctx.is_root and not ctx.is_distributed
    again = distributed.init()
    assert (again.rank, again.size) == (ctx.rank, ctx.size)


def test_init_false_ignores_launcher(monkeypatch):
    monkeypatch.setenv("HOROVOD_RANK", "1")
    monkeypatch.setenv("HOROVOD_SIZE", "4")
    assert isinstance(distributed.init(use_horovod=False), SingleContext)


def test_required_horovod_missing_is_a_clear_error(no_launcher, no_horovod):
    with pytest.raises(DistributedSetupError, match="install_horovod.sh") as info:
        distributed.init(use_horovod=True)
    assert isinstance(info.value, BackboneError)
    assert "\n" not in str(info.value)


def test_launched_ranks_without_horovod_refuse_to_run_alone(monkeypatch, no_launcher, no_horovod):
    # Two launched processes each training alone would both write outputs: refuse.
    monkeypatch.setenv("OMPI_COMM_WORLD_RANK", "0")
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "2")
    with pytest.raises(DistributedSetupError, match="2 processes were launched"):
        distributed.init()


def test_one_launched_process_without_horovod_runs_alone(monkeypatch, no_launcher, no_horovod):
    monkeypatch.setenv("PMI_RANK", "0")
    monkeypatch.setenv("PMI_SIZE", "1")
    assert isinstance(distributed.init(), SingleContext)


@pytest.mark.parametrize(
    ("environ", "launched", "size"),
    [
        ({}, False, None),
        ({"SLURM_NTASKS": "8"}, False, None),  # a SLURM job alone is not a launched rank
        ({"HOROVOD_RANK": "0", "HOROVOD_SIZE": "3"}, True, 3),
        ({"OMPI_COMM_WORLD_RANK": "1", "OMPI_COMM_WORLD_SIZE": "2"}, True, 2),
        ({"PMIX_RANK": "0", "SLURM_NTASKS": "4"}, True, 4),
        ({"PMIX_RANK": "0"}, True, None),
    ],
)
def test_launcher_detection(environ, launched, size):
    assert distributed.launched_by_mpi_or_horovodrun(environ) is launched
    assert distributed.launcher_size(environ) == size


# --- pure helpers -------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [1, 2, 3, 5, 8])
@pytest.mark.parametrize("n_items", [0, 1, 7, 13, 64])
def test_shards_cover_every_item_once_and_balance(n_items, size):
    shards = [shard_range(n_items, r, size) for r in range(size)]
    covered = np.concatenate([np.arange(n_items)[s] for s in shards])
    np.testing.assert_array_equal(covered, np.arange(n_items))
    lengths = [s.stop - s.start for s in shards]
    assert max(lengths) - min(lengths) <= 1


def test_shard_rejects_bad_arguments():
    with pytest.raises(ValueError, match="n_items"):
        shard_range(-1, 0, 2)
    with pytest.raises(ValueError, match="rank"):
        shard_range(4, 2, 2)


def test_rank_seeds_are_distinct_reproducible_and_in_range():
    seeds = [rank_seed(42, r) for r in range(256)]
    assert len(set(seeds)) == len(seeds)
    assert seeds == [rank_seed(42, r) for r in range(256)]
    assert all(0 <= s < 2**31 for s in seeds)
    assert rank_seed(43, 0) != rank_seed(42, 0)
    assert SingleContext().seed_for(42) == rank_seed(42, 0)
    np.random.default_rng(seeds[0])
    tf.random.stateless_uniform([1], seed=[seeds[-1], 0])


def test_learning_rate_scaling_rules():
    assert lr_for_ranks(0.1, 8, "linear") == pytest.approx(0.8)
    assert lr_for_ranks(0.1, 8, "sqrt") == pytest.approx(0.1 * math.sqrt(8))
    assert lr_for_ranks(0.1, 8, "none") == pytest.approx(0.1)
    assert SingleContext().lr_for_ranks(0.3) == pytest.approx(0.3)
    with pytest.raises(DistributedSetupError, match="cubic"):
        lr_for_ranks(0.1, 8, "cubic")


# --- single-process collectives -----------------------------------------------------------------


def test_single_context_collectives_are_identities():
    ctx = SingleContext()
    grads = [tf.constant([1.0, 2.0]), None, tf.IndexedSlices(tf.ones([1, 2]), tf.constant([0]))]
    out = ctx.allreduce_gradients(grads, compression="fp16")
    assert out[0] is grads[0] and out[1] is None and out[2] is grads[2]
    with pytest.raises(DistributedSetupError, match="compression"):
        ctx.allreduce_gradients(grads, compression="int8")
    payload = {"tiles": [1, 2]}
    assert ctx.broadcast_object(payload) is payload
    assert ctx.allgather_object(payload) == [payload]
    assert ctx.average(np.float32(2.5)) == 2.5
    assert ctx.sum(3) == 3.0
    ctx.barrier()
    var = keras.Variable(np.array([1.0, 2.0], np.float32))
    ctx.broadcast_variables([var])
    np.testing.assert_array_equal(var.numpy(), [1.0, 2.0])


def test_single_allgather_passes_gradients_through():
    ctx = SingleContext()
    x = tf.Variable(np.arange(6, dtype=np.float32).reshape(2, 3))
    w = tf.constant(np.linspace(0.0, 1.0, 6, dtype=np.float32).reshape(2, 3))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(w * ctx.allgather(x))
    np.testing.assert_allclose(tape.gradient(loss, x).numpy(), w.numpy())


def test_root_only_runs_on_the_single_rank(tmp_path):
    ctx = SingleContext()
    target = tmp_path / "out.txt"
    write = ctx.root_only(lambda path: path.write_text("x") and path)
    assert write(target) == target
    assert target.read_text() == "x"


# --- batch-norm statistics ----------------------------------------------------------------------


@pytest.mark.parametrize("keepdims", [False, True])
def test_sync_moments_without_job_match_numpy(keepdims):
    x = np.random.default_rng(0).normal(2.0, 3.0, size=(5, 4, 4, 3)).astype(np.float32)
    mean, var = sync_moments(x, [0, 1, 2], keepdims=keepdims)
    np.testing.assert_allclose(mean, x.mean(axis=(0, 1, 2), keepdims=keepdims), rtol=1e-5)
    np.testing.assert_allclose(var, x.var(axis=(0, 1, 2), keepdims=keepdims), rtol=1e-5)
    m2, _ = SingleContext().sync_batch_norm_stats(x, [0, 1, 2])
    np.testing.assert_allclose(m2, x.mean(axis=(0, 1, 2)), rtol=1e-5)


def _bn_model(layer_cls):
    inputs = keras.Input((4, 4, 3))
    return keras.Model(inputs, layer_cls(momentum=0.5)(inputs))


def test_sync_batch_norm_alone_equals_batch_norm(tmp_path):
    x = np.random.default_rng(1).normal(1.0, 2.0, size=(6, 4, 4, 3)).astype(np.float32)
    sync, plain = _bn_model(SyncBatchNormalization), _bn_model(keras.layers.BatchNormalization)
    plain.set_weights(sync.get_weights())
    np.testing.assert_allclose(sync(x, training=True), plain(x, training=True), atol=1e-5)
    for a, b in zip(sync.get_weights(), plain.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-6)  # moving statistics updated alike
    np.testing.assert_allclose(sync(x, training=False), plain(x, training=False), atol=1e-5)

    path = tmp_path / "sync_bn.keras"
    sync.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded.layers[-1], SyncBatchNormalization)
    np.testing.assert_allclose(loaded(x, training=False), sync(x, training=False), atol=1e-6)
