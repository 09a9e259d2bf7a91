#!/usr/bin/env bash
# Install the Debian packages that only the peer benchmark (bench/peers/)
# needs: PyTorch and NumPy for Debian's own Python (/usr/bin/python3). The
# library, its tests and CI do not need them (scripts/install-deps.sh).
# Idempotent: a second run installs nothing and exits 0.
set -euo pipefail

pkgs=(
  python3-torch        # bench/peers/torch_steps.py (Debian's CPU build)
  python3-numpy        # bench/peers/numpy_steps.py (over Debian's BLAS)
)

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-bench-deps: all ${#pkgs[@]} packages present"
  exit 0
fi

echo "install-bench-deps: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
