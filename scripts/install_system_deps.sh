#!/usr/bin/env bash
# Install the Debian packages caesar-mrcnn needs, only those that are missing.
#   build of Horovod: Open MPI, the highwayhash and farmhash headers TensorFlow's
#   pip headers include but do not ship, cmake, g++
#   real-client tests: SAOImage DS9 (+ XPA tools, Xvfb) and STILTS
set -euo pipefail

PKGS=(openmpi-bin libopenmpi-dev libhighwayhash-dev libfarmhash-dev cmake g++
      saods9 xpa-tools xvfb xauth stilts)

missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
    echo "system packages: all present"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "error: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
    SUDO="sudo"
fi
echo "system packages: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
