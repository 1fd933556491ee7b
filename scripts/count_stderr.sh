#!/usr/bin/env bash
# How much a normal `caesar-mrcnn infer` run says on stderr, image by image.
# Runs `caesar-mrcnn infer IMAGE --regions --catalog` (shipped detector, default options) on
# every FITS image under a folder of real images (catalogue tables skipped) and prints, per
# image, the number of stderr lines, the exit status, whether the catalogue has integrated
# fluxes and where the beam came from; then the largest line count. With -v the stderr lines
# themselves follow each count.
# Usage: scripts/count_stderr.sh [-v] [REAL_DIR]   (default $CAESAR_MRCNN_REAL; CAESAR_MRCNN
#        and PYTHON pick the commands)
set -uo pipefail

SHOW=0
if [[ ${1:-} == -v ]]; then SHOW=1; shift; fi
REAL=${1:-${CAESAR_MRCNN_REAL:?give the folder of real images or set CAESAR_MRCNN_REAL}}
CM=${CAESAR_MRCNN:-caesar-mrcnn}
PY=${PYTHON:-python3}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

max=0
printf '%-6s %-4s %-9s %-22s %s\n' lines exit int_flux beam image
while IFS= read -r image; do
    rm -f "$TMP"/out.*
    "$CM" infer "$image" --regions "$TMP/out.reg" --catalog "$TMP/out.fits" \
        >/dev/null 2>"$TMP/err"
    status=$?
    lines=$(wc -l <"$TMP/err")
    facts="-        -"
    if [[ -f $TMP/out.fits ]]; then
        facts=$("$PY" - "$TMP/out.fits" <<'EOF'
import sys
import numpy as np
from astropy.table import Table
t = Table.read(sys.argv[1], hdu=1)
flux = "yes" if len(t) and np.isfinite(np.asarray(t["int_flux"], float)).any() else \
    ("no" if len(t) else "(none)")
print(f"{flux:9s} {str(t.meta.get('BEAMSRC', '?')).replace(' ', '_')}")
EOF
)
    fi
    printf '%-6s %-4s %-32s %s\n' "$lines" "$status" "$facts" "${image#"$REAL"/}"
    if (( SHOW )); then sed 's/^/    | /' "$TMP/err"; fi
    (( lines > max )) && max=$lines
done < <(find "$REAL" -name '*.fits' ! -name '*srl*' ! -name '*gaul*' ! -name '*_comp.fits' \
         | sort)
echo "most stderr lines of one run: $max"
