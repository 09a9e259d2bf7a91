#!/usr/bin/env bash
# Install what is missing, fetch the data the tests need, build the float
# (product) and double (gradient-test) configurations, and run every test;
# then the whole suite again under AddressSanitizer + UndefinedBehaviorSanitizer
# (build-asan, Debug), then every fuzz target for 60 s (scripts/fuzz.sh).
# Usage: scripts/test.sh            (CAE_JOBS=N to change build parallelism;
#                                    CAE_TEST_STAGES="float double asan fuzz"
#                                    to run only some stages)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
jobs=${CAE_JOBS:-2}
stages=" ${CAE_TEST_STAGES:-float double asan fuzz} "

bash scripts/install-deps.sh
if [ -x scripts/fetch-data.sh ]; then
  bash scripts/fetch-data.sh "${CAE_DATA_DIR:-$root/data}"
fi
export CAE_DATA_DIR=${CAE_DATA_DIR:-$root/data}

status=0
for cfg in "float:build:-DCAE_DOUBLE=OFF" "double:build-double:-DCAE_DOUBLE=ON"; do
  stage=${cfg%%:*}
  cfg=${cfg#*:}
  dir=${cfg%%:*}
  opt=${cfg#*:}
  [[ $stages == *" $stage "* ]] || continue
  echo "== configure $dir ($opt)"
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release "$opt" >/dev/null
  echo "== build $dir"
  cmake --build "$dir" -j "$jobs"
  echo "== test $dir"
  if ! ctest --test-dir "$dir" --output-on-failure; then
    status=1
  fi
done

# Sanitizers: every test again in a Debug build with ASan + UBSan. Any report
# fails the stage: each process stops at its first finding (halt_on_error;
# -fno-sanitize-recover for UBSan) with exit status 86; ASan and LeakSanitizer
# also write their report under build-asan/sanitizer/ and UBSan's (GCC's
# runtime ignores log_path) lands in the CTest log, and the stage fails if
# either holds one, so a finding in a child whose exit status a test ignores
# still counts. abort_on_error stays 0: the tests that expect SIGABRT from our
# always-on asserts would otherwise pass on a sanitizer abort. LeakSanitizer
# runs in every forked Check child and every program.
if [[ $stages == *" asan "* ]]; then
  t0=$(date +%s)
  echo "== configure build-asan (Debug, -DCAE_SANITIZE=ON)"
  # float-cast-overflow: not in GCC's -fsanitize=undefined (a NaN or huge real cast to int).
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DCAE_SANITIZE=ON \
    -DCMAKE_C_FLAGS="-fsanitize=float-cast-overflow -fno-sanitize-recover=float-cast-overflow" >/dev/null
  echo "== build build-asan"
  cmake --build build-asan -j "$jobs"
  echo "== test build-asan (ASan+UBSan)"
  reports=$root/build-asan/sanitizer
  rm -rf "$reports"
  mkdir -p "$reports"
  supp=""
  [ -f tests/lsan.supp ] && supp=":suppressions=$root/tests/lsan.supp"
  if ! ASAN_OPTIONS="halt_on_error=1:abort_on_error=0:exitcode=86:detect_leaks=1:detect_stack_use_after_return=1:strict_string_checks=1:log_path=$reports/asan" \
       UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:exitcode=86" \
       LSAN_OPTIONS="exitcode=86$supp" \
       ctest --test-dir build-asan --output-on-failure; then
    status=1
  fi
  if grep -q -E 'runtime error:|ERROR: (Address|Leak)Sanitizer' build-asan/Testing/Temporary/LastTest.log; then
    echo "== build-asan: sanitizer reports in the test output:"
    grep -n -E -A12 'runtime error:|ERROR: (Address|Leak)Sanitizer' build-asan/Testing/Temporary/LastTest.log | head -200
    status=1
  fi
  if compgen -G "$reports/*" >/dev/null; then
    echo "== build-asan: sanitizer reports:"
    for r in "$reports"/*; do
      echo "---- $r"
      cat "$r"
    done
    status=1
  fi
  echo "== build-asan (ASan+UBSan): $(( $(date +%s) - t0 )) s"
fi

# Fuzzing: every libFuzzer target for 60 s, two at a time (scripts/fuzz.sh).
if [[ $stages == *" fuzz "* ]]; then
  t0=$(date +%s)
  echo "== fuzz (libFuzzer, 60 s per target)"
  if ! CAE_FUZZ_JOBS=2 bash scripts/fuzz.sh 60; then
    status=1
  fi
  echo "== fuzz: $(( $(date +%s) - t0 )) s"
fi
exit $status
