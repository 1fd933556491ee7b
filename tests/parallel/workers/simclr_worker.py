"""One SimCLR step with global negatives on every rank; rank 0 also runs the one-process
reference on the concatenated batch, and the step on its own batch only.

Usage: python simclr_worker.py OUT_DIR

The method is ``ssl_backbones.methods.simclr.SimCLR`` (projections gathered from all ranks
with ``ctx.allgather``) on a group-norm ResNet18. Its projector's batch norm is the
cross-rank :class:`SyncBatchNormalization` in the job and plain batch norm in the reference:
SimCLR's "global BN", without which the split of the batch would change the statistics.
Saves OUT_DIR/rank<r>.npz.
"""

from __future__ import annotations

import os
import sys

import numpy as np

SIZE = 16  # px
PAIRS = 2  # per rank


def views(rank: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(70 + rank)
    v1 = rng.uniform(size=(PAIRS, SIZE, SIZE, 1)).astype(np.float32)
    v2 = np.clip(v1 + rng.normal(0.0, 0.1, size=v1.shape), 0.0, 1.0).astype(np.float32)
    return v1, v2


def build(ctx, bn_layer):
    import keras

    from ssl_backbones.config import MethodConfig
    from ssl_backbones.methods.simclr import SimCLR
    from ssl_backbones.resnet import build_resnet

    cfg = MethodConfig(name="simclr", arch="resnet18", small_stem=True, norm="group",
                       proj_hidden=32, proj_dim=16, temperature=0.5)
    method = SimCLR(build_resnet("resnet18", 1, True, "group"), cfg, ctx, total_steps=1)
    method.projector = keras.Sequential(
        [keras.layers.Dense(32, use_bias=False, name="projector_dense1"),
         bn_layer(name="projector_bn1"), keras.layers.ReLU(name="projector_relu1"),
         keras.layers.Dense(16, name="projector_out")], name="projector")
    method.build_for(SIZE, 1)
    method.set_optimizer(keras.optimizers.SGD(learning_rate=0.5))
    return method


def step(method, v1, v2, graph: bool = True):
    """One train_step; compiled like pretraining does, or eagerly (cheaper to run once)."""
    import tensorflow as tf

    fn = tf.function(method.train_step) if graph else method.train_step
    return float(fn(tf.constant(v1), tf.constant(v2), tf.constant(0, tf.int64))["loss"])


def main(argv: list[str]) -> int:
    out_dir = argv[0]
    import keras
    import tensorflow as tf

    tf.config.threading.set_inter_op_parallelism_threads(1)
    tf.config.threading.set_intra_op_parallelism_threads(1)
    from ssl_backbones import distributed

    ctx = distributed.init()
    keras.utils.set_random_seed(ctx.seed_for(5))
    method = build(ctx, distributed.SyncBatchNormalization)
    method.broadcast_state()
    initial = [w.copy() for w in method.get_weights()]
    out = {"loss": np.array(step(method, *views(ctx.rank)))}
    out.update({f"w{i}": w for i, w in enumerate(method.get_weights())})
    out["initial_w0"] = initial[0]

    if ctx.is_root:
        single = distributed.SingleContext()
        all_views = [views(r) for r in range(ctx.size)]
        full = tuple(np.concatenate([v[j] for v in all_views]) for j in range(2))
        for name, batch in (("ref", full), ("local", all_views[0])):
            ref = build(single, keras.layers.BatchNormalization)
            ref.set_weights(initial)
            out[f"{name}_loss"] = np.array(step(ref, *batch, graph=False))
            out.update({f"{name}_w{i}": w for i, w in enumerate(ref.get_weights())})
    np.savez(os.path.join(out_dir, f"rank{ctx.rank}.npz"), **out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
