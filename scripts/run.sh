#!/usr/bin/env bash
# Set up a fresh Debian 12 machine and run the main job: install the
# dependencies, build, fetch the data, then reproduce the paper's Table 1,
# Table 2 and Figures 1-3 at the quick budget (its plan and expected time are
# printed first).
# Results go to $CAE_OUT (default out/): table1.md, table2.md, claims-all.md,
# figures/*.png. Runs are cached there: a second run only redraws.
#   scripts/run.sh                      # the quick budget
#   CAE_BUDGET=full scripts/run.sh      # the paper's scale
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
bash scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "${CAE_JOBS:-2}"
data=${CAE_DATA_DIR:-$root/data}
bash scripts/fetch-data.sh "$data"
out=${CAE_OUT:-$root/out}
./build/cae reproduce all --budget "${CAE_BUDGET:-quick}" --jobs 2 --threads 1 --data-dir "$data" --out "$out"
echo "results: $out/table1.md $out/table2.md $out/claims-all.md $out/figures/"
