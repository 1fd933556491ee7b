#!/usr/bin/env bash
# The whole pipeline in miniature, each step tiny so it runs in a few minutes on a laptop CPU:
# simulate -> make-cutouts -> pretrain (BYOL) -> train (Mask R-CNN on that backbone) -> infer
# -> evaluate. It shows the commands and their outputs; a detector trained for a few dozen steps
# finds little, so the scores printed at the end are not meaningful (see docs/models.md for the
# reference models and scripts/train_reference.sh for their full-size run).
# Usage: scripts/demo_train.sh [OUT]   (default demo_out/train; CAESAR_MRCNN picks the command)
set -euo pipefail

OUT=${1:-demo_out/train}
CM=${CAESAR_MRCNN:-caesar-mrcnn}
PY=${PYTHON:-python3}
HERE=$(cd "$(dirname "$0")/.." && pwd)
stamp() { echo "[$(date -u +%H:%M:%S)] $*"; }
START=$(date +%s)
rm -rf "$OUT"
mkdir -p "$OUT"
# The backbone goes into a registry inside OUT, not the user's.
export CAESAR_MRCNN_BACKBONES=$OUT/backbones

stamp "1/6 simulate 8 training fields and 1 test field of 128x128 (configs/sim/tiny.yaml)"
$CM simulate --config "$HERE/configs/sim/tiny.yaml" --n-images 8 --out "$OUT/sim" --no-progress
$CM simulate --config "$HERE/configs/sim/tiny.yaml" --n-images 1 --seed 99 --out "$OUT/test" \
    --no-progress

stamp "2/6 unlabelled cutouts for pretraining"
$CM make-cutouts --sim-config "$HERE/configs/sim/tiny.yaml" --n 128 --size 40 \
    --out "$OUT/cutouts" --no-progress

stamp "3/6 pretrain a ResNet18 with BYOL (1 epoch, configs/pretrain/tiny.yaml)"
# One channel and the standard stem: what configs/detect/tiny.yaml's detector expects.
$CM pretrain --method byol --config "$HERE/configs/pretrain/tiny.yaml" --data "$OUT/cutouts" \
    --epochs 1 --set data.channels=1 --set method.small_stem=false --name demo_byol_r18 \
    --out "$OUT/pretrain" --no-progress
$CM backbones

stamp "4/6 train the detector on that backbone (30 steps, configs/detect/tiny.yaml)"
$CM train --config "$HERE/configs/detect/tiny.yaml" --data "$OUT/sim" \
    --backbone demo_byol_r18 --steps 30 --out "$OUT/detect" --set progress=false

IMAGE=$(ls "$OUT"/test/images/*.fits | head -n 1)
stamp "5/6 infer on $(basename "$IMAGE")"
# A barely trained detector scores low: keep its weak detections to have something to show.
$CM infer "$IMAGE" --weights "$OUT/detect/detector.npz" --score-thr 0.1 \
    --regions "$OUT/test.reg" --catalog "$OUT/test_catalog.ecsv" --plot "$OUT/test.png"

stamp "6/6 evaluate on the test field"
$CM evaluate --data "$OUT/test" --weights "$OUT/detect/detector.npz" --out "$OUT/eval" \
    --set score_thr=0.1

$PY - "$OUT" "$(( $(date +%s) - START ))" <<'PYEOF'
import json
import sys
from pathlib import Path

out, seconds = Path(sys.argv[1]), int(sys.argv[2])
r = json.loads((out / "eval" / "report.json").read_text())
print(f"\ndemo-train finished in {seconds // 60} min {seconds % 60} s; outputs in {out}:")
for what, path in (("fields", "sim"), ("cutouts", "cutouts"), ("pretraining run", "pretrain"),
                   ("backbone registry", "backbones"), ("detector", "detect/detector.npz"),
                   ("regions", "test.reg"), ("catalogue", "test_catalog.ecsv"),
                   ("plot", "test.png"), ("evaluation", "eval")):
    print(f"  {what:18s} {out / path}")
c, rel = r["completeness"], r["reliability"]
print(f"  completeness {c['k']}/{c['n']}, reliability {rel['k']}/{rel['n']} "
      "(a few dozen training steps: expect little; this run shows the pipeline, not a model)")
PYEOF
