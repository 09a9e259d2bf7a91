#!/usr/bin/env bash
# Build the libFuzzer targets (clang, build-fuzz/), replay the regression
# inputs (tests/regress/<target>/) and the seeds (fuzz/corpus/<target>/),
# then fuzz each target for SECONDS (default 60), CAE_FUZZ_JOBS at a time
# (default 2). Prints each target's runs and seconds; exits non-zero on any
# crash, leak, timeout or out-of-memory, naming the input that caused it.
#
# Usage: scripts/fuzz.sh [SECONDS]        (CAE_JOBS=N: build parallelism)
# A finding: add its input as tests/regress/<target>/<name> (the replay test
# fuzz_<target>_regress runs it from then on), fix, rerun.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
jobs=${CAE_JOBS:-2}
par=${CAE_FUZZ_JOBS:-2}
out=build-fuzz

echo "== fuzz: configure and build $out (clang, libFuzzer + ASan + UBSan)"
CC=clang cmake -S . -B "$out" -DCAE_FUZZ=ON -DCAE_BUILD_TESTS=OFF -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$out" -j "$jobs" --target cae_fuzz_targets >/dev/null

echo "== fuzz: replay tests/regress and the seed corpora"
ctest --test-dir "$out" -L fuzz --output-on-failure

targets=()
for f in "$out"/fuzz/fuzz_*; do
  n=$(basename "$f")
  [ "$n" = fuzz_make_seeds ] || targets+=("$n")
done
mkdir -p "$out/logs"

# run_one TARGET: fuzz for $secs seconds; the exit status goes to logs/TARGET.rc.
run_one() {
  local t=$1 short=${1#fuzz_}
  local work="$out/corpus/$short" art="$out/artifacts/$short/"
  mkdir -p "$work" "$art"
  local extra=()
  [ "$t" = fuzz_cli ] && extra+=(-close_fd_mask=3) # the parsers' usage messages
  set +e
  ASAN_OPTIONS=detect_leaks=1:halt_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    "$out/fuzz/$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=4096 \
    -print_final_stats=1 -artifact_prefix="$art" "${extra[@]}" \
    "$work" "fuzz/corpus/$short" >"$out/logs/$t.log" 2>&1
  echo $? >"$out/logs/$t.rc"
  set -e
}

echo "== fuzz: ${#targets[@]} targets x ${secs} s, $par at a time"
start=$(date +%s)
for t in "${targets[@]}"; do
  rm -f "$out/logs/$t.rc"
  run_one "$t" &
  while [ "$(jobs -rp | wc -l)" -ge "$par" ]; do wait -n || true; done
done
wait

status=0
for t in "${targets[@]}"; do
  log="$out/logs/$t.log"
  rc=$(cat "$out/logs/$t.rc" 2>/dev/null || echo 99)
  done_line=$(grep -E '^Done [0-9]+ runs in [0-9]+ second' "$log" | tail -1 || true)
  if [ "$rc" = 0 ] && [ -n "$done_line" ]; then
    runs=$(sed -E 's/^Done ([0-9]+) runs in ([0-9]+) second.*/\1/' <<<"$done_line")
    s=$(sed -E 's/^Done ([0-9]+) runs in ([0-9]+) second.*/\2/' <<<"$done_line")
    cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+/[0-9]+[a-zA-Z]*' "$log" | tail -1 || true)
    printf '%-16s %10s execs in %3s s (%6s exec/s)  %s\n' "$t" "$runs" "$s" "$((runs / (s > 0 ? s : 1)))" "$cov"
  else
    status=1
    echo "$t: FAILED (exit status $rc); the end of $log:"
    grep -E 'ERROR|SUMMARY|fuzz_[a-z]+:|Test unit written|artifact_prefix|#[0-9]+ +in ' "$log" | head -40 | sed 's/^/  /'
    for a in "$out/artifacts/${t#fuzz_}"/*; do
      [ -e "$a" ] && echo "  input: $a  (keep it: cp $a tests/regress/${t#fuzz_}/)"
    done
  fi
done
echo "== fuzz: $(( $(date +%s) - start )) s of fuzzing"
exit $status
