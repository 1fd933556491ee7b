"""Tiled inference of a simulated mosaic on every rank of a job (or one process without one).

Usage: python infer_worker.py SIM_DIR OUT_DIR TILE OVERLAP

The detector is :class:`caesar_mrcnn.detection.detector.TruthPredictor` (the true masks),
so the catalogue
depends only on tiling, sharding, gathering and merging. Rank 0 writes OUT_DIR/catalogue.ecsv
and OUT_DIR/sources.reg; every rank writes OUT_DIR/returned_rank<r>.txt saying whether
infer_image returned a result to it (test instrumentation only).
"""

from __future__ import annotations

import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    sim_dir, out_dir, tile, overlap = Path(argv[0]), Path(argv[1]), int(argv[2]), int(argv[3])

    from caesar_mrcnn.detection.detector import TruthPredictor
    from caesar_mrcnn.detection.infer import InferConfig, infer_image
    from caesar_mrcnn.evaluation.evaluate import load_truth
    from ssl_backbones import distributed

    ctx = distributed.init()
    sample = load_truth(sim_dir)[0]
    cfg = InferConfig(tile=tile, overlap=overlap, batch_size=2, bkg_box=32, min_snr=0.0,
                      dedup_overlap=1.0)
    result = infer_image(
        sample.image_path,
        predictor=TruthPredictor(sample.annotations, tile),
        config=cfg,
        catalog=out_dir / "catalogue.ecsv",
        regions=out_dir / "sources.reg",
        ctx=ctx,
    )
    (out_dir / f"returned_rank{ctx.rank}.txt").write_text(
        f"{type(ctx).__name__} {ctx.size} {result is not None}\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
