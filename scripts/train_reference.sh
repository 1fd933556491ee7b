#!/usr/bin/env bash
# Rebuild the shipped reference models (caesar_mrcnn/weights/) with the project's own pipeline,
# then score them on held-out fields. Every dataset, seed and setting comes from configs/:
#   configs/sim/reference.yaml             training fields (seed 1) and held-out fields (seed
#                                          2027): 2.5-10 px beams, half with real noise
#   configs/sim/cutouts.yaml               simulated pretraining cutouts (1000 source-centred,
#                                          seed 1, and 1000 at random positions, seed 2)
#   configs/pretrain/snr_byol_r18.yaml     BYOL ResNet18 on noise-unit views of the MiraBest
#                                          training batches, real fields and the cutouts
#   configs/detect/reference_r18.yaml      Mask R-CNN on the frozen BYOL backbone, then
#                                          fine-tuned from itself on 1200 fresh fields (seed 3)
# The real images are read from $CAESAR_MRCNN_REAL (default ../shared/real); the simulator
# and the pretraining data refuse the evaluation images among them.
# Usage: scripts/train_reference.sh [OUT] [--install]
#   OUT        work folder (default runs/reference); each stage is skipped when its output exists
#   --install  copy the packed models into caesar_mrcnn/weights/ at the end
# Environment: CAESAR_MRCNN (command, default caesar-mrcnn), PYTHON (default python3),
#   CAESAR_MRCNN_REAL (folder of the real images, default ../shared/real),
#   DETECT_STOP_AT (stop the detector's schedule after that step), FINETUNE_STOP_AT (the same
#   for the fine-tuning), SKIP_COMPARE=1 (no Aegean/PyBDSF).
# Provenance: every model file records the git commit (and whether the checkout had
# uncommitted changes), its command line, the digest of its data, the software versions, and
# this script's own command line (CAESAR_MRCNN_DRIVER); `caesar-mrcnn info FILE` prints them.
# Commit first, and keep OUT a relative path: the command lines are stored as given.
set -euo pipefail

OUT=runs/reference
INSTALL=0
for arg in "$@"; do
    case "$arg" in
        --install) INSTALL=1 ;;
        *) OUT=$arg ;;
    esac
done
CM=${CAESAR_MRCNN:-caesar-mrcnn}
PY=${PYTHON:-python3}
HERE=$(cd "$(dirname "$0")/.." && pwd)
# Configs by a path relative to the working folder (run this from the repository root): the
# command lines stored in the models then name no machine's folders.
CONFIGS=$(realpath --relative-to="$PWD" "$HERE/configs")
SIM=$CONFIGS/sim/reference.yaml
export CAESAR_MRCNN_REAL=${CAESAR_MRCNN_REAL:-../shared/real}
REAL=$CAESAR_MRCNN_REAL
mkdir -p "$OUT"
stamp() { echo "[$(date -u +%H:%M:%S)] $*"; }

# Recorded in every model file this run writes, beside the command that wrote it.
export CAESAR_MRCNN_DRIVER="scripts/train_reference.sh $*${DETECT_STOP_AT:+ (DETECT_STOP_AT=$DETECT_STOP_AT)}${FINETUNE_STOP_AT:+ (FINETUNE_STOP_AT=$FINETUNE_STOP_AT)}"
if [ -n "$(git -C "$HERE" status --porcelain 2>/dev/null)" ]; then
    stamp "warning: uncommitted changes in $HERE; the models will record a dirty checkout"
fi

# 1. data: labelled training fields, held-out fields, unlabelled cutouts
[ -d "$OUT/train" ] || { stamp "simulate training fields"; $CM simulate --config "$SIM" --out "$OUT/train" --no-progress; }
[ -d "$OUT/test" ] || { stamp "simulate held-out fields"; $CM simulate --config "$SIM" --seed 2027 --n-images 40 --out "$OUT/test" --no-progress; }
if [ ! -d "$OUT/cutouts" ]; then
    stamp "simulated pretraining cutouts"
    $CM make-cutouts --sim-config "$CONFIGS/sim/cutouts.yaml" --out "$OUT/sim_c" --n 1000 \
        --size 96 --seed 1 --centred --no-progress
    $CM make-cutouts --sim-config "$CONFIGS/sim/cutouts.yaml" --out "$OUT/sim_r" --n 1000 \
        --size 96 --seed 2 --no-progress
    mkdir -p "$OUT/cutouts"
    for f in "$OUT"/sim_c/*.fits; do ln -s "$(realpath "$f")" "$OUT/cutouts/c_$(basename "$f")"; done
    for f in "$OUT"/sim_r/*.fits; do ln -s "$(realpath "$f")" "$OUT/cutouts/r_$(basename "$f")"; done
fi

# 2. self-supervised backbone (BYOL, ResNet18), then its float16 shipping copy in OUT/models
if [ ! -f "$OUT/models/ssl_byol_r18.json" ]; then
    stamp "pretrain BYOL ResNet18"
    $CM pretrain --config "$CONFIGS/pretrain/snr_byol_r18.yaml" \
        --set data.sources.0.path="$REAL/mirabest/MiraBest_F_batches.tar.gz" \
        --set data.sources.1.path="$REAL" --set data.sources.2.path="$OUT/cutouts" \
        --epochs 8 --out "$OUT/pretrain" --name ssl_byol_r18 --registry "$OUT/backbones" \
        --no-progress
    $PY -m caesar_mrcnn.zoo.pack backbone "$OUT/backbones/ssl_byol_r18.npz" "$OUT/models"
fi

# 3. detector on the frozen float16 backbone (found by name: OUT/models is the registry here)
# DETECT_STOP_AT=N stops the run after step N of its schedule (as the shipped run was, for
# time) and takes the detector from that checkpoint.
export CAESAR_MRCNN_BACKBONES=$OUT/models
if [ ! -f "$OUT/detect/detector.npz" ]; then
    stamp "train the detector"
    if [ -n "${DETECT_STOP_AT:-}" ]; then
        $CM train --config "$CONFIGS/detect/reference_r18.yaml" --data "$OUT/train" \
            --backbone ssl_byol_r18 --out "$OUT/detect" --resume --stop-at "$DETECT_STOP_AT"
        $PY -m caesar_mrcnn.zoo.pack from-checkpoint "$OUT/detect" "$OUT/detect/detector.npz" \
            --step "$DETECT_STOP_AT"
    else
        $CM train --config "$CONFIGS/detect/reference_r18.yaml" --data "$OUT/train" \
            --backbone ssl_byol_r18 --out "$OUT/detect" --resume
    fi
fi
$PY -m caesar_mrcnn.zoo.pack detector "$OUT/detect/detector.npz" "$OUT/models/detect_r18.npz" \
    --backbone "$OUT/models/ssl_byol_r18.npz"

# 4. fine-tuning: the detector again, from its packed (float16) weights, on 1200 fresh fields
# (seed 3) at a third of the learning rate (docs/models.md). FINETUNE_STOP_AT=N stops it after
# step N.
[ -d "$OUT/train_ft" ] || { stamp "simulate fine-tuning fields"; $CM simulate --config "$SIM" --seed 3 --n-images 1200 --out "$OUT/train_ft" --no-progress; }
if [ ! -f "$OUT/finetune/detector.npz" ]; then
    stamp "fine-tune the detector"
    FT_STEPS=4000
    $CM train --config "$CONFIGS/detect/reference_r18.yaml" --data "$OUT/train_ft" \
        --backbone ssl_byol_r18 --init "$OUT/models/detect_r18.npz" --out "$OUT/finetune" \
        --steps $FT_STEPS --set optim.lr=3e-4 --set optim.warmup_steps=50 --set seed=1 \
        --set checkpoint_every=100 --resume ${FINETUNE_STOP_AT:+--stop-at "$FINETUNE_STOP_AT"}
    if [ -n "${FINETUNE_STOP_AT:-}" ] && [ "$FINETUNE_STOP_AT" -lt $FT_STEPS ]; then
        $PY -m caesar_mrcnn.zoo.pack from-checkpoint "$OUT/finetune" "$OUT/finetune/detector.npz" \
            --step "$FINETUNE_STOP_AT"
    fi
fi
$PY -m caesar_mrcnn.zoo.pack detector "$OUT/finetune/detector.npz" "$OUT/models/reference_r18.npz" \
    --backbone "$OUT/models/ssl_byol_r18.npz"
$PY -m caesar_mrcnn.zoo.pack sizes "$OUT/models"

# 5. scores on the held-out fields (docs/models.md)
stamp "evaluate on held-out fields"
rm -rf "$OUT/eval"
$CM evaluate --data "$OUT/test" --weights "$OUT/models/reference_r18.npz" --out "$OUT/eval"
if [ "${SKIP_COMPARE:-0}" != 1 ]; then
    stamp "compare with Aegean and PyBDSF"
    rm -rf "$OUT/compare"
    $CM compare --data "$OUT/test" --weights "$OUT/models/reference_r18.npz" --out "$OUT/compare"
fi

if [ "$INSTALL" = 1 ]; then
    cp "$OUT/models/ssl_byol_r18.npz" "$OUT/models/ssl_byol_r18.json" \
       "$OUT/models/reference_r18.npz" "$HERE/caesar_mrcnn/weights/"
    stamp "installed into caesar_mrcnn/weights/"
fi
stamp "done: models in $OUT/models, report in $OUT/eval"
