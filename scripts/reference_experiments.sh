#!/usr/bin/env bash
# The validation experiments of docs/models.md ("Where it falls short"), on fields that are
# neither training nor held-out ones (configs/sim/reference.yaml, seed 2028):
#   1. the shipped detector at score thresholds 0.3, 0.4, 0.5 and 0.6;
#   2. the reference run of scripts/train_reference.sh resumed from its 4400 steps to 8800
#      (a warm restart of the cosine schedule at half the peak rate), packed and scored the same
#      way. Needs OUT/detect (its checkpoints) and OUT/models from that script.
# Usage: scripts/reference_experiments.sh OUT
# Environment: CAESAR_MRCNN (command, default caesar-mrcnn), PYTHON (default python3).
set -euo pipefail

OUT=${1:?usage: scripts/reference_experiments.sh OUT (the folder of scripts/train_reference.sh)}
CM=${CAESAR_MRCNN:-caesar-mrcnn}
PY=${PYTHON:-python3}
HERE=$(cd "$(dirname "$0")/.." && pwd)
SHIPPED=$HERE/caesar_mrcnn/weights/reference_r18.npz
stamp() { echo "[$(date -u +%H:%M:%S)] $*"; }
summary() { $PY "$HERE/scripts/report_tables.py" "$1" | grep "SNR >= 5\|COCO"; }

[ -d "$OUT/val" ] || $CM simulate --config "$HERE/configs/sim/reference.yaml" --seed 2028 \
    --n-images 40 --out "$OUT/val" --no-progress

for thr in 0.3 0.4 0.5 0.6; do
    stamp "shipped detector, score >= $thr"
    rm -rf "$OUT/val_eval_$thr"
    $CM evaluate --data "$OUT/val" --weights "$SHIPPED" --out "$OUT/val_eval_$thr" \
        --set score_thr=$thr
    summary "$OUT/val_eval_$thr"
done

stamp "resume the reference detector to 8800 steps"
export CAESAR_MRCNN_BACKBONES=$OUT/models
if [ ! -f "$OUT/detect_8800/detector.npz" ]; then
    mkdir -p "$OUT/detect_8800"
    cp -r "$OUT/detect/checkpoints" "$OUT/detect/train_config.yaml" "$OUT/detect_8800/"
    $CM train --config "$HERE/configs/detect/reference_r18.yaml" --data "$OUT/train" \
        --backbone ssl_byol_r18 --out "$OUT/detect_8800" --resume \
        --set steps=8800 --set optim.lr=0.0005 --set progress=false
fi
$PY -m caesar_mrcnn.zoo.pack detector "$OUT/detect_8800/detector.npz" \
    "$OUT/models/reference_r18_8800.npz" --backbone "$OUT/models/ssl_byol_r18.npz"
rm -rf "$OUT/val_eval_8800"
$CM evaluate --data "$OUT/val" --weights "$OUT/models/reference_r18_8800.npz" \
    --out "$OUT/val_eval_8800"
summary "$OUT/val_eval_8800"
stamp done
