"""One DINO step with multi-crop on every rank: the teacher centre must come out the same on
every rank, the mean of the teacher logits over *all* ranks' batches.

Usage: python dino_worker.py OUT_DIR

Each rank saves the mean teacher logit of its own batch (taken before the step, with the same
weights the step uses), the centre after the step, the loss and every weight to
OUT_DIR/rank<r>.npz.
"""

from __future__ import annotations

import os
import sys

import numpy as np

SIZE = 16  # px, global views
LOCAL = 8  # px, local views
PAIRS = 2  # images per rank
MOMENTUM = 0.8


def views(rank: int):
    rng = np.random.default_rng(90 + rank)
    v1 = rng.uniform(size=(PAIRS, SIZE, SIZE, 1)).astype(np.float32)
    v2 = np.clip(v1 + rng.normal(0.0, 0.1, size=v1.shape), 0.0, 1.0).astype(np.float32)
    local = rng.uniform(size=(2 * PAIRS, LOCAL, LOCAL, 1)).astype(np.float32)
    return v1, v2, local


def main(argv: list[str]) -> int:
    out_dir = argv[0]
    import keras
    import tensorflow as tf

    tf.config.threading.set_inter_op_parallelism_threads(1)
    tf.config.threading.set_intra_op_parallelism_threads(1)
    from ssl_backbones import distributed
    from ssl_backbones.config import MethodConfig
    from ssl_backbones.methods.dino import DINO
    from ssl_backbones.resnet import build_resnet

    ctx = distributed.init()
    keras.utils.set_random_seed(ctx.seed_for(7))
    cfg = MethodConfig(name="dino", arch="resnet18", small_stem=True, norm="group",
                       proj_hidden=32, proj_dim=16, out_dim=24, center_momentum=MOMENTUM)
    method = DINO(build_resnet("resnet18", 1, True, "group"), cfg, ctx, total_steps=4,
                  target_backbone=build_resnet("resnet18", 1, True, "group", name="target"))
    method.build_for(SIZE, 1)
    method.set_optimizer(keras.optimizers.SGD(learning_rate=0.1))
    method.broadcast_state()
    v1, v2, local = (tf.constant(v) for v in views(ctx.rank))
    glob = tf.concat([v1, v2], axis=0)
    teacher = method.target_prototypes(method.target_projector(
        method.target_backbone(glob, training=True)["pooled"], training=True))
    step = tf.function(method.train_step, reduce_retracing=True, autograph=False)
    metrics = step(v1, v2, tf.constant(0, tf.int64), local)
    out = {"loss": np.array(float(metrics["loss"])), "center": method.center.numpy(),
           "local_mean": np.asarray(tf.reduce_mean(teacher, axis=0))}
    out.update({f"w{i}": w for i, w in enumerate(method.get_weights())})
    np.savez(os.path.join(out_dir, f"rank{ctx.rank}.npz"), **out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
