"""Gradient bytes per step of the real models, and a projected data-parallel scaling efficiency.

Counts the trainable parameters whose gradients Horovod averages each step (built from the
project's own model code with its default configurations), converts them to bytes on the wire
(4 bytes per parameter in float32, 2 with ``compression="fp16"``) and projects the ring-allreduce
time ``2 (N - 1) / N * bytes / bandwidth`` for N = 8, 32, 128 GPUs over common interconnects,
against an assumed compute time per step. The projection is arithmetic, not a measurement.

Usage::

    python scripts/bench/scaling_projection.py [--json out.json] [--markdown out.md]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

GPUS = (8, 32, 128)
GPUS_PER_NODE = 4  # as in scripts/slurm/*.sbatch

#: name -> (nominal line rate per direction in Gbit/s, fraction of it a large NCCL allreduce
#: reaches, per-hop latency in s, notes). Fractions and latencies are typical orders of
#: magnitude (assumptions): TCP loses more than RDMA (RoCE, InfiniBand) and waits longer per hop.
INTERCONNECTS = {
    "25 GbE": (25.0, 0.7, 30e-6, "TCP Ethernet, the network of the Horovod paper"),
    "100 GbE": (100.0, 0.8, 10e-6, "Ethernet with RoCE"),
    "200 GbE": (200.0, 0.8, 10e-6, "Ethernet with RoCE"),
    "IB HDR 200 Gb/s": (200.0, 0.9, 3e-6, "InfiniBand HDR, one HCA per node"),
    "NVLink (one node)": (2400.0, 0.8, 3e-6, "NVLink 3 (A100): 300 GB/s per direction"),
}

#: Assumed compute time (forward + backward, no communication) of one step on one modern GPU
#: (A100 class, mixed precision). Stated assumptions, not measurements; see docs/scaling.md.
ASSUMED_COMPUTE_S = {
    "Mask R-CNN ResNet18-FPN": (0.060, "4 images of 256x256 px per GPU"),
    "Mask R-CNN ResNet50-FPN": (0.100, "4 images of 256x256 px per GPU"),
    "SimCLR ResNet18": (0.100, "256 pairs of 64x64 px views per GPU, small stem"),
    "SimCLR ResNet50": (0.300, "256 pairs of 64x64 px views per GPU, small stem"),
    "BYOL ResNet18": (0.120, "256 pairs, online + target forward"),
    "BYOL ResNet50": (0.360, "256 pairs, online + target forward"),
    "ResNet-101 (Horovod paper)": (0.430, "64 images of 224x224 px per Pascal GPU, fp32"),
}


@dataclass
class ModelCount:
    name: str
    params: int
    note: str

    @property
    def bytes_fp32(self) -> int:
        return 4 * self.params

    @property
    def bytes_fp16(self) -> int:
        return 2 * self.params


def _trainable(variables) -> int:
    import numpy as np

    return int(sum(np.prod(v.shape) for v in variables))


def count_models() -> list[ModelCount]:
    """Trainable parameters whose gradients are allreduced, per model (default configs)."""
    from caesar_mrcnn.modeling.config import ModelConfig
    from caesar_mrcnn.modeling.maskrcnn import MaskRCNN
    from ssl_backbones.config import MethodConfig, PretrainConfig
    from ssl_backbones.distributed import SingleContext
    from ssl_backbones.pretrain import build_method

    counts = []
    for arch in ("resnet18", "resnet50"):
        label = "ResNet18" if arch == "resnet18" else "ResNet50"
        model = MaskRCNN(ModelConfig(arch=arch))
        counts.append(ModelCount(f"Mask R-CNN {label}-FPN", _trainable(model.trainable_variables),
                                 "backbone + FPN + RPN + box and mask heads, 1 channel"))
        for method in ("simclr", "byol"):
            cfg = PretrainConfig(method=MethodConfig(name=method, arch=arch))
            m = build_method(cfg, SingleContext(), total_steps=1)
            what = "backbone + projector" + (" + predictor (online network)"
                                             if method == "byol" else "")
            counts.append(ModelCount(f"{method.upper() if method == 'byol' else 'SimCLR'} "
                                     f"{label}", _trainable(m.online_variables()),
                                     f"{what}, {cfg.data.channels} channels"))
    counts.append(ModelCount("ResNet-101 (Horovod paper)", 44_549_160,
                             "ImageNet classifier, for calibration against the paper"))
    return counts


def allreduce_seconds(n_bytes: float, n_gpus: int, interconnect: str) -> float:
    """Ring-allreduce time: 2 (N-1)/N * bytes / bandwidth, plus 2 (N-1) hops of latency."""
    rate, fraction, alpha, _ = INTERCONNECTS[interconnect]
    bandwidth = fraction * rate * 1e9 / 8  # bytes/s
    return 2 * (n_gpus - 1) / n_gpus * n_bytes / bandwidth + 2 * (n_gpus - 1) * alpha


def link_for(n_gpus: int, name: str) -> float | None:
    """Bottleneck line rate for ``n_gpus`` over interconnect ``name`` (None: not applicable).

    With GPUS_PER_NODE GPUs per node, 8 or more GPUs span several nodes and the ring's slowest
    hop is the inter-node link; NVLink applies only to the 8 GPUs of one NVLink node.
    """
    rate = INTERCONNECTS[name][0]
    if name.startswith("NVLink"):
        return rate if n_gpus <= 8 else None
    return rate


def project(counts: list[ModelCount]) -> list[dict]:
    rows = []
    for c in counts:
        compute, _ = ASSUMED_COMPUTE_S[c.name]
        for name in INTERCONNECTS:
            for n in GPUS:
                rate = link_for(n, name)
                if rate is None:
                    continue
                for precision, nbytes in (("fp32", c.bytes_fp32), ("fp16", c.bytes_fp16)):
                    t = allreduce_seconds(nbytes, n, name)
                    rows.append({
                        "model": c.name, "interconnect": name, "gpus": n,
                        "precision": precision, "bytes": nbytes, "allreduce_s": t,
                        "compute_s": compute,
                        # No overlap: communication after the backward pass (pessimistic).
                        "efficiency_serial": compute / (compute + t),
                        # Full overlap of allreduce with backward (Horovod's tensor fusion
                        # starts reducing early layers' gradients while later ones compute).
                        "efficiency_overlap": min(1.0, compute / max(t, 1e-12)),
                        # Compute time per step needed for 90 % without overlap.
                        "compute_for_90pct_s": 9.0 * t,
                    })
    return rows


def gather_rows(pairs_per_gpu: int = 256, proj_dim: int | None = None) -> list[dict]:
    """SimCLR's extra traffic: gathering both views' projections from every rank (forward),
    and the allreduce of their gradient (backward), in float32."""
    from ssl_backbones.config import MethodConfig

    dim = proj_dim or MethodConfig().proj_dim
    rows = []
    for n in GPUS:
        gathered = 2 * n * pairs_per_gpu * dim * 4  # bytes of [2 N B, D] float32
        rows.append({"gpus": n, "pairs_per_gpu": pairs_per_gpu, "proj_dim": dim,
                     "gathered_bytes": gathered,
                     "ib_hdr_ms": 1e3 * (allreduce_seconds(gathered, n, "IB HDR 200 Gb/s")
                                         + allreduce_seconds(gathered, n, "IB HDR 200 Gb/s") / 2),
                     "gbe25_ms": 1e3 * (allreduce_seconds(gathered, n, "25 GbE")
                                        + allreduce_seconds(gathered, n, "25 GbE") / 2)})
    return rows


def markdown(counts: list[ModelCount], rows: list[dict]) -> str:
    """Parameter table, then one projection row per model, interconnect and precision with
    "allreduce ms / efficiency without overlap / with full overlap" for each GPU count."""
    out = ["| model | trainable parameters | fp32 MB/step | fp16 MB/step | what |",
           "|---|---:|---:|---:|---|"]
    for c in counts:
        out.append(f"| {c.name} | {c.params:,} | {c.bytes_fp32 / 1e6:.1f} | "
                   f"{c.bytes_fp16 / 1e6:.1f} | {c.note} |")
    head = " | ".join(f"{n} GPUs" for n in GPUS)
    out += ["", f"| model (assumed compute/step) | interconnect | grads | {head} |",
            "|---|---|---|" + "---:|" * len(GPUS)]
    cells: dict[tuple, dict[int, str]] = {}
    for r in rows:
        key = (r["model"], r["compute_s"], r["interconnect"], r["precision"])
        cells.setdefault(key, {})[r["gpus"]] = (
            f"{1e3 * r['allreduce_s']:.0f} ms / {100 * r['efficiency_serial']:.0f} % / "
            f"{100 * r['efficiency_overlap']:.0f} %")
    for (model, compute, net, precision), by_n in cells.items():
        values = " | ".join(by_n.get(n, "—") for n in GPUS)
        out.append(f"| {model} ({1e3 * compute:.0f} ms) | {net} | {precision} | {values} |")
    out += ["", "| GPUs | SimCLR gathered projections (MB, fp32) | gather + gradient allreduce, "
            "IB HDR (ms) | same, 25 GbE (ms) |", "|---:|---:|---:|---:|"]
    for g in gather_rows():
        out.append(f"| {g['gpus']} | {g['gathered_bytes'] / 1e6:.1f} | {g['ib_hdr_ms']:.1f} | "
                   f"{g['gbe25_ms']:.1f} |")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="write counts and projection rows here")
    parser.add_argument("--markdown", help="write the markdown tables here")
    args = parser.parse_args(argv)
    counts = count_models()
    rows = project(counts)
    text = markdown(counts, rows)
    print(text)
    if args.markdown:
        with open(args.markdown, "w") as fh:
            fh.write(text)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"counts": [c.__dict__ for c in counts], "rows": rows,
                       "simclr_gather": gather_rows(),
                       "assumptions": {"gpus_per_node": GPUS_PER_NODE,
                                       "compute_s": ASSUMED_COMPUTE_S,
                                       "interconnects": INTERCONNECTS}}, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
