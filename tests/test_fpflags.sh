#!/usr/bin/env bash
# bench/fpflags (the LD_PRELOAD shim behind the README's FTZ/DAZ figure):
# preloaded into a program, it reports at exit whether a result underflowed
# (UE) or a denormal was read (DE), and with CAE_FPFLAGS_FLUSH=1 it sets
# flush-to-zero and denormals-are-zero. The programs here are awk one-liners.
# Usage: test_fpflags.sh LIBFPFLAGS_SO
set -u
shim=${1:?usage: test_fpflags.sh LIBFPFLAGS_SO}
pass=0 fail=0
check() { # check DESCRIPTION COMMAND...
    local what=$1
    shift
    if "$@"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $what"; fi
}
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
run() { # run [ENV=VALUE...] AWK_PROGRAM: awk's output, then the shim's report
    local res
    res=$(env "${@:1:$#-1}" LD_PRELOAD="$shim" awk "BEGIN { ${*: -1} }" 2>"$tmp")
    printf '%s\n' "$res"
    cat "$tmp"
}

# 1e-300 * 1e-10 underflows into a denormal; multiplying it again reads one.
out=$(run 'x = 1e-300; y = x * 1e-10; z = y * 3; printf "%g\n", z')
check "the denormal is computed ($(head -1 <<<"$out"))" test "$(head -1 <<<"$out")" = "3e-310"
check "an underflow and a denormal read are reported" \
    grep -q '^fpflags: thread 0: denormal read YES, underflow YES (flush off)$' <<<"$out"
check "every thread reports" test "$(grep -c '^fpflags: thread [0-9]*:' <<<"$out")" -ge 1

out=$(run 'x = 2.5; y = x * 3; printf "%g\n", y')
check "a program without tiny numbers reports none" \
    grep -q '^fpflags: thread 0: denormal read no, underflow no (flush off)$' <<<"$out"

out=$(run CAE_FPFLAGS_FLUSH=1 'x = 1e-300; y = x * 1e-10; z = y * 3; printf "%g\n", z')
check "flush to zero: the tiny result is 0 ($(head -1 <<<"$out"))" test "$(head -1 <<<"$out")" = "0"
check "... and the flush bits are reported set" grep -q '^fpflags: thread 0: .*(flush on)$' <<<"$out"

out=$(run CAE_FPFLAGS_FLUSH=0 'x = 1e-300; y = x * 1e-10; printf "%g\n", y')
check "CAE_FPFLAGS_FLUSH=0 leaves the flush bits off" test "$(head -1 <<<"$out")" = "1e-310"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
