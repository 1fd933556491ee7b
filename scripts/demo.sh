#!/usr/bin/env bash
# End-to-end demo with the shipped reference detector (no training, no download):
# simulate a 4096 x 4096 survey mosaic (configs/sim/demo.yaml), find its sources with
# `caesar-mrcnn infer` (DS9 regions, catalogue, JSON with masks, overlay plot), score those
# detections against the field's ground truth with `caesar-mrcnn evaluate --detections` (the
# detector runs once), and print where everything is.
# Usage: scripts/demo.sh [OUT]   (default demo_out; CAESAR_MRCNN and PYTHON pick the commands)
set -euo pipefail

OUT=${1:-demo_out}
CM=${CAESAR_MRCNN:-caesar-mrcnn}
PY=${PYTHON:-python3}
HERE=$(cd "$(dirname "$0")/.." && pwd)
IMAGE=$OUT/field/images/mosaic_00000.fits
stamp() { echo "[$(date -u +%H:%M:%S)] $*"; }
START=$(date +%s)

WEIGHTS=$($PY -c "from caesar_mrcnn.zoo.lookup import shipped_detector; print(shipped_detector())")
rm -rf "$OUT/field" "$OUT/evaluation"
mkdir -p "$OUT"

stamp "1/3 simulate a 4096x4096 mosaic (configs/sim/demo.yaml)"
$CM simulate --config "$HERE/configs/sim/demo.yaml" --out "$OUT/field" --no-progress

stamp "2/3 find sources with the shipped detector ($(basename "$WEIGHTS"))"
$CM infer "$IMAGE" --regions "$OUT/mosaic.reg" --catalog "$OUT/mosaic_catalog.fits" \
    --json "$OUT/mosaic.json" --plot "$OUT/mosaic.png"

stamp "3/3 score these detections against the ground truth"
$CM evaluate --data "$OUT/field" --detections "$OUT/mosaic.json" --out "$OUT/evaluation"

$PY - "$OUT" "$(( $(date +%s) - START ))" <<'PYEOF'
import csv
import json
import sys
from pathlib import Path

out, seconds = Path(sys.argv[1]), int(sys.argv[2])
r = json.loads((out / "evaluation" / "report.json").read_text())


def pct(row):
    return f"{100 * row['k'] / row['n']:.1f} % ({row['k']}/{row['n']})" if row["n"] else "-"


def above(name, cls, snr):
    """k and n of a class summed over the SNR bins from ``snr`` up."""
    with open(out / "evaluation" / f"{name}.csv") as fh:
        rows = [x for x in csv.DictReader(fh)
                if x["class"] == cls and x["snr_lo"] and float(x["snr_lo"]) >= snr]
    return {"k": sum(int(x["k"]) for x in rows), "n": sum(int(x["n"]) for x in rows)}


print(f"\ndemo finished in {seconds // 60} min {seconds % 60} s")
print(f"  image          {out / 'field/images/mosaic_00000.fits'}")
print(f"  ground truth   {out / 'field/sources.ecsv'}")
print(f"  DS9 regions    {out / 'mosaic.reg'}")
print(f"  catalogue      {out / 'mosaic_catalog.fits'} (and {out / 'mosaic.json'} with masks)")
print(f"  overlay plot   {out / 'mosaic.png'}")
print(f"  evaluation     {out / 'evaluation'} (report.json, CSV tables, PNG plots)")
c = r["counts"]
print(f"  {c['truth']} true sources, {c['detections']} detections, {c['matched']} matched "
      f"(mask IoU >= {r['settings']['iou_threshold']})")
print(f"  completeness   {pct(r['completeness'])}")
print(f"  reliability    {pct(r['reliability'])}")
for name, row in r["completeness_per_class"].items():
    rel = r["reliability_per_class"].get(name)
    if row["n"] or (rel and rel["n"]):
        print(f"    {name:20s} completeness {pct(row)}"
              + (f", reliability {pct(rel)}" if rel else ""))
print(f"  compact sources at SNR >= 5: completeness {pct(above('completeness', 'compact', 5))}, "
      f"reliability {pct(above('reliability', 'compact', 5))}")
print(f"  classification accuracy of matched sources {100 * r['classification_accuracy']:.1f} %")
with open(out / "evaluation" / "matches.csv") as fh:
    ratios = sorted(float(x["flux_ratio"]) for x in csv.DictReader(fh)
                    if x["truth_class"] == "compact" and x["flux_ratio"] not in ("", "nan"))
if ratios:
    print(f"  flux density of matched compact sources: median measured / true "
          f"{ratios[len(ratios) // 2]:.3f} ({len(ratios)} sources)")
PYEOF
