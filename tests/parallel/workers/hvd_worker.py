"""One Horovod rank of the multi-rank tests; run under horovodrun or mpirun.

Usage: python hvd_worker.py OUT_DIR SCENARIO[,SCENARIO...] [--use-horovod auto|yes]

Each rank runs the scenarios in order and saves what it computed to OUT_DIR/rank<r>.npz; the
tests compare those arrays with NumPy references and with the other ranks'. Input data comes
from the numpy-only functions below, which the tests import to build their references.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

N_FEATURES = 4
N_OUT = 3
IMAGE = 6  # px, side of the tiny images of the conv model
LOCAL_BATCH = 4


def gather_rows(rank: int) -> np.ndarray:
    """Rank r contributes r + 1 rows of 3 values (uneven first dimension on purpose)."""
    return (np.arange((rank + 1) * 3, dtype=np.float32).reshape(rank + 1, 3) + 10.0 * rank)


def gather_weights(rank: int, total_rows: int) -> np.ndarray:
    """Weights that rank r's loss puts on the gathered tensor: loss_r = sum(w_r * gathered)."""
    return np.linspace(-1.0, 1.0, total_rows * 3, dtype=np.float32).reshape(total_rows, 3) * (
        rank + 1
    )


def bn_batch(rank: int) -> np.ndarray:
    """Activations for batch-norm statistics: rank r holds r + 2 samples."""
    rng = np.random.default_rng(100 + rank)
    return rng.normal(loc=rank, scale=1.0 + rank, size=(rank + 2, 3, 3, 5)).astype(np.float32)


def image_batch(rank: int, batch: int = LOCAL_BATCH) -> tuple[np.ndarray, np.ndarray]:
    """Images and regression targets of rank r's batch (different on every rank)."""
    rng = np.random.default_rng(1000 + rank)
    x = rng.normal(size=(batch, IMAGE, IMAGE, 1)).astype(np.float32)
    y = rng.normal(size=(batch, N_OUT)).astype(np.float32)
    return x, y


# --- everything below runs inside a rank ---------------------------------------------------------


def _build_model(keras, bn_layer):
    inputs = keras.Input((IMAGE, IMAGE, 1))
    h = keras.layers.Conv2D(4, 3, padding="same")(inputs)
    h = bn_layer()(h)
    h = keras.layers.ReLU()(h)
    h = keras.layers.GlobalAveragePooling2D()(h)
    outputs = keras.layers.Dense(N_OUT)(h)
    return keras.Model(inputs, outputs)


def _make_step(tf, model, optimizer, ctx, compression="none"):
    @tf.function
    def step(x, y):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(model(x, training=True) - y))
        grads = tape.gradient(loss, model.trainable_variables)
        grads = ctx.allreduce_gradients(grads, compression=compression)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    return step


def scenario_collectives(ctx, tf, out):
    out["rank"] = np.array(ctx.rank)
    out["size"] = np.array(ctx.size)
    out["local_rank"] = np.array(ctx.local_rank)
    out["local_size"] = np.array(ctx.local_size)
    obj = ctx.broadcast_object({"from": ctx.rank, "list": [ctx.rank] * 3})
    out["broadcast_from"] = np.array(obj["from"])
    gathered_objs = ctx.allgather_object(("rank", ctx.rank))
    out["allgather_object_ranks"] = np.array([g[1] for g in gathered_objs])
    out["average"] = np.array(ctx.average(float(ctx.rank + 1)))
    out["sum"] = np.array(ctx.sum(float(ctx.rank + 1)))
    shard = ctx.shard(11)
    out["shard"] = np.array([shard.start, shard.stop])
    out["seed"] = np.array(ctx.seed_for(1234))
    out["lr_linear"] = np.array(ctx.lr_for_ranks(0.1, "linear"))
    ctx.barrier()

    # allgather forward (uneven rows) and backward (gradient summed over ranks).
    x = tf.Variable(gather_rows(ctx.rank))
    with tf.GradientTape() as tape:
        gathered = ctx.allgather(x)
        weights = tf.constant(gather_weights(ctx.rank, int(gathered.shape[0])))
        loss = tf.reduce_sum(weights * gathered)
    out["gathered"] = gathered.numpy()
    out["gather_grad"] = tape.gradient(loss, x).numpy()

    @tf.function  # the same inside a graph, where the row counts are unknown when tracing
    def gather_grad_graph():
        with tf.GradientTape() as tape:
            gathered = ctx.allgather(x)
            weights = tf.constant(gather_weights(ctx.rank, int(out["gathered"].shape[0])))
            loss = tf.reduce_sum(weights * gathered)
        return gathered, tape.gradient(loss, x)

    gathered_g, grad_g = gather_grad_graph()
    out["gathered_graph"] = gathered_g.numpy()
    out["gather_grad_graph"] = grad_g.numpy()

    # allreduce_gradients: None kept, dense average, fp16 compression close to the average.
    g = [tf.fill([2, 2], float(ctx.rank + 1)), None, tf.constant([1.0, 3.0]) * (ctx.rank + 1)]
    averaged = ctx.allreduce_gradients(g)
    out["avg_grad_none_kept"] = np.array(averaged[1] is None)
    out["avg_grad_0"] = averaged[0].numpy()
    out["avg_grad_2"] = averaged[2].numpy()
    compressed = ctx.allreduce_gradients(g, compression="fp16")
    out["avg_grad_fp16_0"] = compressed[0].numpy()
    out["avg_grad_fp16_dtype"] = np.array(compressed[0].dtype.name)

    # Cross-rank batch-norm statistics, uneven batches.
    from ssl_backbones.distributed import sync_moments

    mean, var = ctx.sync_batch_norm_stats(tf.constant(bn_batch(ctx.rank)), [0, 1, 2])
    out["bn_mean"] = mean.numpy()
    out["bn_var"] = var.numpy()
    mean_k, _ = sync_moments(tf.constant(bn_batch(ctx.rank)), [0, 1, 2], keepdims=True)
    out["bn_mean_keepdims_shape"] = np.array(mean_k.shape)


def scenario_train(ctx, tf, out, steps=4):
    """Several momentum-SGD steps with per-rank data; weights must agree on every rank."""
    import keras

    from ssl_backbones.distributed import SyncBatchNormalization

    keras.utils.set_random_seed(ctx.seed_for(7))  # different initial weights per rank
    model = _build_model(keras, SyncBatchNormalization)
    optimizer = keras.optimizers.SGD(learning_rate=0.05, momentum=0.9)
    optimizer.build(model.trainable_variables)
    out["train_initial_local"] = model.get_weights()[0]
    ctx.broadcast_variables(model.variables)
    ctx.broadcast_variables(optimizer.variables)
    out["train_initial"] = model.get_weights()[0]
    step = _make_step(tf, model, optimizer, ctx)
    x, y = image_batch(ctx.rank)
    for i in range(steps):
        step(tf.constant(x + 0.1 * i), tf.constant(y))
    for i, w in enumerate(model.get_weights()):
        out[f"train_w{i}"] = w


def scenario_equiv(ctx, tf, out):
    """One step on 2 ranks x batch B == one step on 1 rank x batch 2B (computed on rank 0)."""
    import keras

    from ssl_backbones.distributed import SingleContext, SyncBatchNormalization

    keras.utils.set_random_seed(11)
    model = _build_model(keras, SyncBatchNormalization)
    ctx.broadcast_variables(model.variables)
    initial = model.get_weights()
    optimizer = keras.optimizers.SGD(learning_rate=0.5)
    x, y = image_batch(ctx.rank)
    _make_step(tf, model, optimizer, ctx)(tf.constant(x), tf.constant(y))
    for i, w in enumerate(model.get_weights()):
        out[f"equiv_w{i}"] = w
    if not ctx.is_root:
        return
    # Reference: one process, the concatenated batch, plain batch norm; and the same step with
    # rank 0's batch only, which the distributed result must NOT match.
    single = SingleContext()
    batches = [image_batch(r) for r in range(ctx.size)]
    full_x = np.concatenate([b[0] for b in batches])
    full_y = np.concatenate([b[1] for b in batches])
    for name, (bx, by) in {"ref": (full_x, full_y), "local": (x, y)}.items():
        ref = _build_model(keras, keras.layers.BatchNormalization)
        ref.set_weights(initial)
        ref_opt = keras.optimizers.SGD(learning_rate=0.5)
        _make_step(tf, ref, ref_opt, single)(tf.constant(bx), tf.constant(by))
        for i, w in enumerate(ref.get_weights()):
            out[f"equiv_{name}_w{i}"] = w


def scenario_root_writes(ctx, tf, out, out_dir):
    """Every rank calls the writer; only rank 0's call may create the file."""
    target = os.path.join(out_dir, "outputs", "catalogue.txt")

    @ctx.root_only
    def write(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "a") as fh:
            fh.write(f"written by rank {ctx.rank}\n")
        return path

    out["root_writes_returned"] = np.array(write(target) is not None)
    ctx.barrier()


def scenario_fail(ctx, tf, out):
    """Rank 1 raises while rank 0 waits in a collective: the job must end, not hang."""
    if ctx.rank == 1:
        raise RuntimeError("deliberate failure on rank 1")
    ctx.allreduce_gradients([tf.ones([3])])
    ctx.barrier()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("out_dir")
    parser.add_argument("scenarios")
    parser.add_argument("--use-horovod", choices=("auto", "yes"), default="auto")
    args = parser.parse_args(argv)

    import tensorflow as tf

    # Two ranks share two cores here: one thread each avoids oversubscription.
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)

    from ssl_backbones import distributed

    ctx = distributed.init(use_horovod=None if args.use_horovod == "auto" else True)
    again = distributed.init(use_horovod=None if args.use_horovod == "auto" else True)
    assert (again.rank, again.size) == (ctx.rank, ctx.size)
    out: dict[str, np.ndarray] = {"context": np.array(type(ctx).__name__)}
    for name in args.scenarios.split(","):
        if name == "root_writes":
            scenario_root_writes(ctx, tf, out, args.out_dir)
        else:
            globals()[f"scenario_{name}"](ctx, tf, out)
    np.savez(os.path.join(args.out_dir, f"rank{ctx.rank}.npz"), **out)
    print(f"worker rank {ctx.rank}/{ctx.size} done: {args.scenarios}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
