#!/usr/bin/env bash
# Set up a fresh machine and run the main job: install dependencies, build,
# fetch the data, then run the default job (see README).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
bash scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "${CAE_JOBS:-2}"
if [ -x scripts/fetch-data.sh ]; then
  bash scripts/fetch-data.sh "${CAE_DATA_DIR:-$root/data}"
fi
# The main job at this stage: the graph-library example (gradient check,
# training of a small network with a user-defined op).
./build/examples/two_layer
