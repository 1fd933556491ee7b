"""Measure gradient-allreduce time and training-step time on this machine, per rank count.

Run once alone (1 rank) and once under a launcher (N ranks); rank 0 prints a JSON record and
appends it to ``--json``::

    python scripts/bench/bench_allreduce.py --horovod --json bench.jsonl
    horovodrun -np 2 -H localhost:2 --gloo \
        python scripts/bench/bench_allreduce.py --json bench.jsonl
    mpirun -np 2 --bind-to none python scripts/bench/bench_allreduce.py --json bench.jsonl

What is timed (median of ``--repeats`` after ``--warmup`` untimed runs):

* allreduce: one grouped allreduce (``ctx.allreduce_gradients``, Average) of tensors shaped like
  the trainable variables of the real models (Mask R-CNN ResNet18-FPN, SimCLR ResNet18), in
  float32 and with fp16 compression;
* step: one SimCLR ResNet18 training step (forward, backward, gradient allreduce with the
  projections gathered from every rank, LARS update) on ``--batch`` pairs of ``--size`` px
  random views per rank; the global batch grows with the ranks (weak scaling).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _median_seconds(fn, warmup: int, repeats: int, ctx) -> float:
    import numpy as np

    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        ctx.barrier()  # start together: time the collective, not the wait for a late rank
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    # The slowest rank's time is the job's time.
    return float(max(ctx.allgather_object(float(np.median(times)))))


def gradient_shapes(model_name: str) -> list[tuple[int, ...]]:
    """Shapes of the trainable variables of one of the project's models."""
    if model_name == "maskrcnn_resnet18":
        from caesar_mrcnn.modeling.config import ModelConfig
        from caesar_mrcnn.modeling.maskrcnn import MaskRCNN

        variables = MaskRCNN(ModelConfig(arch="resnet18")).trainable_variables
    elif model_name == "simclr_resnet18":
        from ssl_backbones.config import MethodConfig, PretrainConfig
        from ssl_backbones.distributed import SingleContext
        from ssl_backbones.pretrain import build_method

        cfg = PretrainConfig(method=MethodConfig(name="simclr", arch="resnet18"))
        variables = build_method(cfg, SingleContext(), 1).online_variables()
    else:
        raise ValueError(model_name)
    return [tuple(int(d) for d in v.shape) for v in variables]


def bench_allreduce(ctx, model_name: str, warmup: int, repeats: int) -> dict:
    import numpy as np
    import tensorflow as tf

    shapes = gradient_shapes(model_name)
    grads = [tf.random.normal(s, seed=i) for i, s in enumerate(shapes)]
    n_params = int(sum(np.prod(s) for s in shapes))
    out = {"model": model_name, "params": n_params, "tensors": len(shapes)}
    for compression in ("none", "fp16"):
        def run(c=compression):
            reduced = ctx.allreduce_gradients(grads, compression=c)
            reduced[-1].numpy()  # eager ops may return before the data arrive

        t = _median_seconds(run, warmup, repeats, ctx)
        wire = n_params * (2 if compression == "fp16" else 4)
        out[f"allreduce_{compression}_s"] = t
        out[f"allreduce_{compression}_bytes"] = wire
        # Bus bandwidth, the figure NCCL reports: 2 (N-1)/N * bytes / time.
        out[f"busbw_{compression}_GBps"] = (2 * (ctx.size - 1) / ctx.size * wire / t / 1e9
                                            if ctx.size > 1 else None)
    return out


def bench_simclr_step(ctx, size: int, batch: int, warmup: int, repeats: int) -> dict:
    import tensorflow as tf

    from ssl_backbones.config import MethodConfig, PretrainConfig, PretrainDataConfig
    from ssl_backbones.pretrain import build_method, build_optimizer

    cfg = PretrainConfig(data=PretrainDataConfig(input_size=size, channels=1),
                         method=MethodConfig(name="simclr", arch="resnet18", small_stem=True))
    method = build_method(cfg, ctx, total_steps=100)
    method.set_optimizer(build_optimizer(cfg, batch * ctx.size, 10, 100,
                                         method.online_variables()))
    method.broadcast_state()
    step = tf.function(method.train_step, reduce_retracing=True)
    rng = tf.random.Generator.from_seed(ctx.seed_for(0))
    v1 = rng.uniform([batch, size, size, 1])
    v2 = rng.uniform([batch, size, size, 1])
    counter = tf.Variable(0, dtype=tf.int64)

    def run():
        float(step(v1, v2, counter)["loss"])

    t = _median_seconds(run, warmup, repeats, ctx)
    return {"step": "simclr_resnet18", "input_px": size, "pairs_per_rank": batch,
            "global_pairs": batch * ctx.size, "step_s": t,
            "pairs_per_s": batch * ctx.size / t}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="maskrcnn_resnet18,simclr_resnet18")
    parser.add_argument("--size", type=int, default=32, help="SimCLR view size (px)")
    parser.add_argument("--batch", type=int, default=16, help="SimCLR pairs per rank")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0,
                        help="TensorFlow threads per rank (0: TensorFlow's default)")
    parser.add_argument("--skip-step", action="store_true")
    parser.add_argument("--horovod", action="store_true",
                        help="use Horovod even without a launcher (a 1-rank job), so that the "
                             "1-rank figures include Horovod's own overhead")
    parser.add_argument("--json", help="append rank 0's record to this JSON-lines file")
    args = parser.parse_args(argv)

    import tensorflow as tf

    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    from ssl_backbones import distributed

    ctx = distributed.init(use_horovod=True if args.horovod else None)
    record = {
        "date": datetime.date.today().isoformat(),
        "host": platform.node(), "cpus": os.cpu_count(), "ranks": ctx.size,
        "controller": getattr(ctx, "controller", "none"),
        "load_avg_1min": os.getloadavg()[0], "threads": args.threads or "default",
        "command": " ".join(sys.argv),
        "allreduce": [bench_allreduce(ctx, m, args.warmup, args.repeats)
                      for m in args.models.split(",") if m],
    }
    if not args.skip_step:
        record["step"] = bench_simclr_step(ctx, args.size, args.batch, args.warmup, args.repeats)
    if ctx.is_root:
        print(json.dumps(record, indent=1))
        if args.json:
            with open(args.json, "a") as fh:
                fh.write(json.dumps(record) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
