#!/usr/bin/env bash
# `cae reproduce all --budget smoke`: runs end to end, writes well-formed
# tables, data files and charts, and a second run resumes from the cache.
# Usage: test_reproduce.sh CAE_BINARY    (CAE_DATA_DIR must hold the data)
set -u
cae=${1:?usage: test_reproduce.sh CAE_BINARY}
out=$(mktemp -d "${TMPDIR:-/tmp}/cae-reproduce-XXXXXX")
trap 'rm -rf "$out"' EXIT
pass=0 fail=0
check() { # check DESCRIPTION COMMAND...
    local what=$1
    shift
    if "$@"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $what"; fi
}

"$cae" reproduce all --budget smoke --out "$out" >"$out/log1" 2>&1
rc=$?
check "smoke run exits 0 (rc $rc)" test $rc -eq 0
[ $rc -eq 0 ] || tail -20 "$out/log1"

# Table 1: a header and 12 rows (6 models x MNIST, Fashion-MNIST), 12 columns each.
check "table1.tsv has 13 lines" test "$(wc -l <"$out/table1.tsv")" -eq 13
check "table1.tsv rows have 12 tab-separated fields" \
    test "$(awk -F'\t' 'NF != 12' "$out/table1.tsv" | wc -l)" -eq 0
for m in cae dae-g rbm dae-b ae-wd ae; do
    check "table1.tsv has mnist $m" grep -q "^mnist	$m	" "$out/table1.tsv"
    check "table1.tsv has fashion $m" grep -q "^fashion	$m	" "$out/table1.tsv"
done
check "test errors are percentages in [0, 100]" \
    test "$(awk -F'\t' 'NR > 1 && !($5 >= 0 && $5 <= 100)' "$out/table1.tsv" | wc -l)" -eq 0
check "table1.md has the paper's CAE number" grep -q '1.14' "$out/table1.md"
check "table2.md lists basic" grep -q '^| basic |' "$out/table2.md"
check "claims were checked" grep -q -E 'PASS|FAIL' "$out/claims-all.md"

# Data files: a header line then numeric rows; charts: non-empty PNG and SVG.
for f in fig1-contraction fig2-spectrum fig3-depth; do
    dat="$out/figures/$f.dat"
    check "$f.dat exists" test -s "$dat"
    check "$f.dat header names the columns" \
        test "$(grep -v '^#' "$dat" | head -1 | awk '{print ($1 == "radius" || $1 == "index")}')" = 1
    check "$f.dat rows are numeric" \
        test "$(grep -v '^#' "$dat" | tail -n +2 | awk '{for (i = 1; i <= NF; i++) if ($i !~ /^-?[0-9.e+-]+$/) bad = 1} END {print bad + 0}')" = 0
    check "$f.png is a PNG" test "$(head -c 4 "$out/figures/$f.png" | tail -c 3)" = "PNG"
    check "$f.svg exists" test -s "$out/figures/$f.svg"
done
check "fig1 has the six models" \
    test "$(grep -v '^#' "$out/figures/fig1-contraction.dat" | head -1 | wc -w)" -eq 13
check "training curves drawn" test -s "$out/figures/training-pretrain.png"

# A second run trains nothing: every run is cached.
"$cae" reproduce table1 --budget smoke --out "$out" >"$out/log2" 2>&1
check "rerun exits 0" test $? -eq 0
check "rerun uses the cache" test "$(grep -c cached "$out/log2")" -eq 12

# Usage errors.
"$cae" reproduce table9 --budget smoke --out "$out" 2>"$out/err"
check "unknown target is a usage error" test $? -eq 2
check "unknown target is named" grep -q "table9" "$out/err"
"$cae" reproduce table1 --budget huge --out "$out" 2>"$out/err"
check "bad budget is a usage error" test $? -eq 2
check "bad budget is named" grep -q "huge" "$out/err"
"$cae" reproduce table1 --out "$out" 2>"$out/err"
check "missing budget is a usage error" test $? -eq 2

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
