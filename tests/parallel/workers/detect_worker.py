"""One detection-training step on every rank; rank 0 also runs the one-process reference.

Usage: python detect_worker.py OUT_DIR

Each rank trains a tiny Mask R-CNN for one step on its own B images with the training step of
``caesar_mrcnn.training.loop``; rank 0 then repeats the step in one process on the 2B images of all
ranks. Sampling of anchors and ROIs takes every candidate
(sample budgets above the candidate counts), so the step is deterministic and the two runs
differ only in how the batch was split. Saves OUT_DIR/rank<r>.npz.
"""

from __future__ import annotations

import os
import sys

import numpy as np

SIZE = 64  # px
PER_RANK = 1  # images per rank
N_OBJECTS = 2  # per image
MAX_GT = 4


def image_batch(rank: int, n: int = PER_RANK):
    """Images with N_OBJECTS Gaussian sources each, their boxes, classes and full masks."""
    rng = np.random.default_rng(50 + rank)
    yy, xx = np.mgrid[:SIZE, :SIZE]
    images = rng.normal(0.0, 0.05, size=(n, SIZE, SIZE, 1)).astype(np.float32)
    boxes = np.zeros((n, MAX_GT, 4), np.float32)
    classes = np.zeros((n, MAX_GT), np.int32)
    masks = np.zeros((n, MAX_GT, SIZE, SIZE), np.float32)
    for i in range(n):
        for k in range(N_OBJECTS):
            cy, cx = rng.uniform(14, SIZE - 14, size=2)
            sigma = rng.uniform(2.0, 4.0)
            blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * sigma**2))
            images[i, :, :, 0] += blob.astype(np.float32)
            mask = blob > 0.1
            ys, xs = np.nonzero(mask)
            boxes[i, k] = (ys.min(), xs.min(), ys.max() + 1, xs.max() + 1)
            classes[i, k] = 1 + k % 2
            masks[i, k] = mask
    return images, boxes, classes, masks


def model_config():
    from caesar_mrcnn.modeling.config import ModelConfig

    # Tiny heads; frozen batch norm (the usual choice for detection, and no batch statistics
    # that would depend on how the batch is split); sample budgets above the candidate counts.
    return ModelConfig(
        arch="resnet18", image_size=SIZE, norm="frozen_batch", fpn_channels=16,
        rpn_head_channels=16, box_head_dims=(32, 32), mask_head_convs=1, mask_head_channels=16,
        rpn_pre_nms_topk_train=64, rpn_post_nms_topk_train=16, rpn_samples_per_image=2048,
        roi_samples_per_image=64, roi_positive_fraction=1.0, max_gt=MAX_GT,
    )


def one_step(model, ctx, batch):
    import keras
    import tensorflow as tf

    from caesar_mrcnn.training.loop import make_train_step

    optimizer = keras.optimizers.SGD(learning_rate=0.05)
    variables = list(model.trainable_variables)
    optimizer.build(variables)
    counter = tf.Variable(0, dtype=tf.int64)
    step = make_train_step(model, optimizer, variables, ctx, False, counter)
    losses, _ = step(*(tf.constant(a) for a in batch))
    return {k: float(v) for k, v in losses.items()}


def main(argv: list[str]) -> int:
    out_dir = argv[0]
    import keras
    import tensorflow as tf

    tf.config.threading.set_inter_op_parallelism_threads(1)
    tf.config.threading.set_intra_op_parallelism_threads(1)

    from caesar_mrcnn.modeling.maskrcnn import MaskRCNN
    from ssl_backbones import distributed

    ctx = distributed.init()
    keras.utils.set_random_seed(ctx.seed_for(3))  # ranks start different; broadcast fixes it
    model = MaskRCNN(model_config(), seed=1)
    ctx.broadcast_variables(model.variables)
    initial = model.get_weights()
    losses = one_step(model, ctx, image_batch(ctx.rank))
    out = {f"w{i}": w for i, w in enumerate(model.get_weights())}
    out["initial_w0"] = initial[0]
    out["loss"] = np.array(losses["total"])

    if ctx.is_root:
        single = distributed.SingleContext()
        batches = [image_batch(r) for r in range(ctx.size)]
        full = tuple(np.concatenate([b[j] for b in batches]) for j in range(4))
        ref = MaskRCNN(model_config(), seed=1)
        ref.set_weights(initial)
        out["ref_loss"] = np.array(one_step(ref, single, full)["total"])
        out.update({f"ref_w{i}": w for i, w in enumerate(ref.get_weights())})
    np.savez(os.path.join(out_dir, f"rank{ctx.rank}.npz"), **out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
