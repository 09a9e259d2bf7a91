#!/usr/bin/env bash
# Install the Debian packages cae needs, only those that are missing.
# Idempotent: a second run installs nothing and exits 0.
set -euo pipefail

pkgs=(
  build-essential cmake pkg-config
  libxsmm-dev          # JIT GEMM microkernels (1.17)
  check                # unit-test framework
  zlib1g-dev           # gzip IDX files
  liblapacke-dev       # SVD of Jacobians (analysis)
  libopenblas-dev      # LAPACK backend; sgemm peer in bench/matmul only
  gnuplot-nox          # charts
  libstb-dev           # image decoding for background photographs
  clang                # fuzz targets (scripts/fuzz.sh): Debian 12's clang 14
  libclang-rt-14-dev   # libFuzzer and clang's ASan/UBSan runtimes
  libomp-dev           # OpenMP for the clang build of the library
  python3-numpy        # tests/test_import.sh runs docs/CHECKPOINT.md's numpy.save example
  libopenmpi-dev       # data-parallel training (CAE_WITH_MPI: cae_mpi, mpirun -np N cae ...)
  openmpi-bin          # mpirun, for it and for its tests
)

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#pkgs[@]} packages present"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
