#!/usr/bin/env bash
# Build Horovod (the version pinned in requirements/horovod.txt) against the TensorFlow installed
# in the active Python environment, with the build tools pinned in requirements/lock.txt.
#
# Horovod's last release predates TF 2.19, which moved xla_builder.h; this script patches that
# one include in the unpacked source archive, builds a wheel, and keeps it in a cache keyed by
# the TensorFlow version and CPU/GPU flavour so later runs install in seconds.
#
# Usage: scripts/install_horovod.sh [PYTHON]      (default: python in PATH)
# Env:   HOROVOD_GPU_OPERATIONS=NCCL for GPU nodes; CAESAR_WHEEL_CACHE to move the cache.
set -euo pipefail

PY="${1:-python}"
# The build runs in another folder: make the interpreter path absolute.
PY="$(cd "$(dirname "$(command -v "$PY")")" && pwd)/$(basename "$PY")"
REQ="$(cd "$(dirname "$0")/../requirements" && pwd)"
LOCK="$REQ/lock.txt"
HVD_VERSION=$(sed -n 's/^horovod==\([0-9.]*\).*/\1/p' "$REQ/horovod.txt")
[ -n "$HVD_VERSION" ] || { echo "error: no horovod==VERSION line in $REQ/horovod.txt" >&2; exit 1; }

if HVD_VERSION="$HVD_VERSION" "$PY" - <<'PYEOF' 2>/dev/null
import os, horovod.tensorflow as hvd, horovod
assert horovod.__version__ == os.environ["HVD_VERSION"]
# A CPU build already installed does not satisfy a request for an NCCL (GPU) build.
assert os.environ.get("HOROVOD_GPU_OPERATIONS", "").upper() != "NCCL" or hvd.nccl_built()
hvd.init()
PYEOF
then
    echo "horovod: $HVD_VERSION already installed and working"
    exit 0
fi

TF_VERSION=$("$PY" -c "import tensorflow as tf; print(tf.__version__)")
FLAVOUR="cpu"
[ -n "${HOROVOD_GPU_OPERATIONS:-}" ] && FLAVOUR="gpu-${HOROVOD_GPU_OPERATIONS,,}"
CACHE="${CAESAR_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/caesar-mrcnn/wheels}/horovod-${HVD_VERSION}-tf${TF_VERSION}-${FLAVOUR}"
mkdir -p "$CACHE"

if ! ls "$CACHE"/horovod-*.whl >/dev/null 2>&1; then
    echo "horovod: building $HVD_VERSION against TensorFlow $TF_VERSION ($FLAVOUR), about 5 min on 2 cores"
    WORK=$(mktemp -d)
    trap 'rm -rf "$WORK"' EXIT
    "$PY" -m pip download -q --no-deps --no-binary=:all: "horovod==$HVD_VERSION" -d "$WORK"
    tar -xzf "$WORK/horovod-$HVD_VERSION.tar.gz" -C "$WORK"
    SRC="$WORK/horovod-$HVD_VERSION"
    # TF >= 2.19 keeps the XLA builder header under hlo/builder/.
    sed -i 's#tensorflow/compiler/xla/client/xla_builder.h#tensorflow/compiler/xla/hlo/builder/xla_builder.h#' \
        "$SRC/horovod/tensorflow/xla_mpi_ops.cc"
    grep -q "hlo/builder/xla_builder.h" "$SRC/horovod/tensorflow/xla_mpi_ops.cc"
    # Horovod's build needs these in the build env since we build without isolation.
    "$PY" -m pip install -q -c "$LOCK" cmake packaging cloudpickle psutil pyyaml wheel setuptools
    (
        cd "$SRC"
        export HOROVOD_WITH_TENSORFLOW=1 HOROVOD_WITHOUT_PYTORCH=1 HOROVOD_WITHOUT_MXNET=1
        export HOROVOD_WITH_GLOO=1 HOROVOD_WITH_MPI=1
        MAKEFLAGS="-j$(nproc)"
        export MAKEFLAGS
        "$PY" -m pip wheel -q --no-build-isolation --no-deps -w "$CACHE" .
    )
fi

"$PY" -m pip install -q --no-deps --force-reinstall "$CACHE"/horovod-*.whl
"$PY" -m pip install -q -c "$LOCK" cloudpickle psutil packaging pyyaml
"$PY" -c "import horovod.tensorflow as hvd; hvd.init(); print('horovod: ok, size', hvd.size())"
