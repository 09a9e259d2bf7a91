#!/usr/bin/env bash
# Install what is missing, fetch the data the tests need, build the float
# (product) and double (gradient-test) configurations, and run every test.
# Usage: scripts/test.sh            (CAE_JOBS=N to change build parallelism)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
jobs=${CAE_JOBS:-2}

bash scripts/install-deps.sh
if [ -x scripts/fetch-data.sh ]; then
  bash scripts/fetch-data.sh "${CAE_DATA_DIR:-$root/data}"
fi
export CAE_DATA_DIR=${CAE_DATA_DIR:-$root/data}

status=0
for cfg in "build:-DCAE_DOUBLE=OFF" "build-double:-DCAE_DOUBLE=ON"; do
  dir=${cfg%%:*}
  opt=${cfg#*:}
  echo "== configure $dir ($opt)"
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release "$opt" >/dev/null
  echo "== build $dir"
  cmake --build "$dir" -j "$jobs"
  echo "== test $dir"
  if ! ctest --test-dir "$dir" --output-on-failure; then
    status=1
  fi
done
exit $status
