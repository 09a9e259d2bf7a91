#!/usr/bin/env bash
# Regenerate the seed corpora fuzz/corpus/{idx,checkpoint,cli,npy} with
# fuzz/make_seeds.c (built in build-fuzz/, as scripts/fuzz.sh does). The
# seeds are committed; run this after a format or option change.
set -euo pipefail
cd "$(dirname "$0")/.."
CC=clang cmake -S . -B build-fuzz -DCAE_FUZZ=ON -DCAE_BUILD_TESTS=OFF -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-fuzz -j "${CAE_JOBS:-2}" --target fuzz_make_seeds >/dev/null
rm -rf fuzz/corpus/idx fuzz/corpus/checkpoint fuzz/corpus/cli fuzz/corpus/npy
ASAN_OPTIONS=detect_leaks=1 build-fuzz/fuzz/fuzz_make_seeds fuzz/corpus
big=$(find fuzz/corpus -type f -size +4k)
if [ -n "$big" ]; then
  echo "make-corpus: seeds over 4 KB: $big" >&2
  exit 1
fi
for d in fuzz/corpus/*/; do
  echo "make-corpus: $d $(ls "$d" | wc -l) files, $(du -sb "$d" | cut -f1) bytes"
done
