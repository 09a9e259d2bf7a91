#!/usr/bin/env bash
# End-to-end test of `cae analyze`: contraction curves (two models; one
# stacked checkpoint through depths 1 and 2) and Jacobian spectra, with
# --plot, then the .dat format (comment lines, header, row and column
# counts) and the error paths (exit status and message checked for each).
#
#   usage: tests/test_analyze.sh PATH/TO/cae     (CAE_DATA_DIR: fetched MNIST)
#
# Prints one line per check and "N passed, M failed"; exits 1 on any failure,
# 77 (CTest: skipped) when MNIST is not there. Without gnuplot the chart
# checks are skipped (the tables are still checked).
set -u
CAE=${1:?usage: test_analyze.sh PATH/TO/cae}
DATA=${CAE_DATA_DIR:-data}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
if [ ! -f "$DATA/mnist/train-images-idx3-ubyte" ] && [ ! -f "$DATA/mnist/train-images-idx3-ubyte.gz" ]; then
    echo "skipped: no MNIST in $DATA (scripts/fetch-data.sh)"
    exit 77
fi
export CAE_DATA_DIR=$DATA
T=$(mktemp -d "${TMPDIR:-/tmp}/cae-analyze.XXXXXX")
trap 'rm -rf "$T"' EXIT
pass=0
fail=0
PLOT=--plot
command -v gnuplot >/dev/null || { PLOT=; echo "note: no gnuplot: chart checks skipped"; }

ok() { pass=$((pass + 1)); echo "ok    $1"; }
bad() {
    fail=$((fail + 1))
    echo "FAIL  $1"
    shift
    for f in "$@"; do [ -s "$f" ] && sed 's/^/      | /' "$f" | head -15; done
}

# run NAME WANT_RC OUT_SUBSTR ERR_SUBSTR -- ARGS...: run cae, check the exit
# status, that stdout / stderr contain the substrings ("" = no check) and
# that a failure gives a one-line reason.
run() {
    local name=$1 want=$2 opat=$3 epat=$4
    shift 5
    "$CAE" "$@" >"$T/out" 2>"$T/err"
    local rc=$?
    if [ "$rc" -ne "$want" ]; then
        bad "$name: exit status $rc, expected $want" "$T/out" "$T/err"
        return 1
    fi
    if [ -n "$opat" ] && ! grep -qF -- "$opat" "$T/out"; then
        bad "$name: stdout lacks '$opat'" "$T/out" "$T/err"
        return 1
    fi
    if [ -n "$epat" ] && ! grep -qF -- "$epat" "$T/err"; then
        bad "$name: stderr lacks '$epat'" "$T/out" "$T/err"
        return 1
    fi
    if [ "$want" -ne 0 ] && [ "$(wc -l <"$T/err")" -ne 1 ]; then
        bad "$name: expected a one-line reason on stderr" "$T/err"
        return 1
    fi
    ok "$name"
}

# table NAME FILE HEADER ROWS: the .dat format — '#' comments first, then
# exactly HEADER, then ROWS rows with as many fields as the header.
table() {
    local name=$1 f=$2 header=$3 rows=$4
    if [ ! -s "$f" ]; then
        bad "$name: $f missing or empty"
        return 1
    fi
    local got
    got=$(grep -v '^#' "$f" | head -1)
    if [ "$got" != "$header" ]; then
        bad "$name: header '$got', expected '$header'" "$f"
        return 1
    fi
    if grep -v '^#' "$f" | tail -n +2 | grep -q '^#'; then
        bad "$name: a comment after the header" "$f"
        return 1
    fi
    local n nf want_nf
    n=$(grep -v '^#' "$f" | tail -n +2 | wc -l)
    want_nf=$(echo "$header" | wc -w)
    nf=$(grep -v '^#' "$f" | tail -n +2 | awk -v w="$want_nf" 'NF != w' | wc -l)
    if [ "$n" -ne "$rows" ] || [ "$nf" -ne 0 ]; then
        bad "$name: $n rows ($nf with the wrong field count), expected $rows rows of $want_nf" "$f"
        return 1
    fi
    ok "$name"
}

# charts NAME PREFIX: PREFIX.png (a PNG) and PREFIX.svg (when gnuplot is there).
charts() {
    [ -z "$PLOT" ] && return 0
    if [ -s "$2.png" ] && head -c 8 "$2.png" | grep -q PNG && [ -s "$2.svg" ] && grep -q '<svg' "$2.svg"; then
        ok "$1: $2.png and $2.svg"
    else
        bad "$1: no chart at $2.png / $2.svg"
    fi
}

# ------------------------------------------------------------- the models
run "pretrain ae" 0 "wrote" "" -- pretrain --model ae --data mnist --limit 500 --epochs 1 --hidden 50 --out "$T/ae.ckpt"
run "pretrain cae" 0 "wrote" "" -- pretrain --model cae --data mnist --limit 500 --epochs 1 --hidden 50 --out "$T/cae.ckpt"
run "pretrain cae layer 2" 0 "wrote" "" -- pretrain --model cae --data mnist --limit 500 --epochs 1 --hidden 40 \
    --on "$T/cae.ckpt" --out "$T/cae2.ckpt"

# ------------------------------------------------------------ contraction
run "contraction: two models" 0 "wrote $T/c.dat (12 rows, 2 curves)" "" -- analyze contraction \
    --model "$T/ae.ckpt" --model "$T/cae.ckpt" --name AE --name CAE --data mnist --radii 0.5:6:0.5 \
    --points 50 --distances 100 --seed 3 --out "$T/c" $PLOT
table "contraction table" "$T/c.dat" "radius AE AE_sd CAE CAE_sd" 12
charts "contraction chart" "$T/c"
if grep -q '^# distances between 100 mnist train examples: min [0-9.]* median [0-9.]* max [0-9.]*$' "$T/c.dat" &&
    grep -q "^# AE: $T/ae.ckpt (ae 784-50 sigmoid" "$T/c.dat" && grep -q "^# CAE: $T/cae.ckpt" "$T/c.dat" &&
    grep -q '^# .*over 50 examples.*(seed 3)$' "$T/c.dat"; then
    ok "contraction comments: distances, models, points, seed"
else
    bad "contraction comments" "$T/c.dat"
fi
if awk '!/^#/ && NR > 1 && $1 != "radius" { if ($2 <= 0 || $4 <= 0 || $3 < 0) bad = 1 } END { exit bad }' "$T/c.dat" &&
    awk '!/^#/ && $1 == "0.5" { f = 1 } END { exit !f }' "$T/c.dat"; then
    ok "contraction values: positive ratios, first radius 0.5"
else
    bad "contraction values" "$T/c.dat"
fi
run "contraction: depths 1,2 of a stack, default names" 0 "2-layers" "" -- analyze contraction \
    --model "$T/cae2.ckpt" --depths 1,2 --radii 1:3:1 --points 20 --distances 0 --out "$T/d.dat"
table "depths table (trailing .dat dropped)" "$T/d.dat" "radius 1-layer 1-layer_sd 2-layers 2-layers_sd" 3
run "contraction: --layers 1, name from the file" 0 "wrote" "" -- analyze contraction \
    --model "$T/cae2.ckpt" --layers 1 --radii 1:2:1 --points 10 --distances 0 --out "$T/l"
table "--layers table" "$T/l.dat" "radius cae2 cae2_sd" 2

# --------------------------------------------------------------- spectrum
run "spectrum: two models" 0 "wrote $T/s.dat (50 rows, 2 curves)" "" -- analyze spectrum \
    --model "$T/ae.ckpt" --model "$T/cae2.ckpt" --name AE --name CAE-2 --examples 10 --out "$T/s" $PLOT
table "spectrum table" "$T/s.dat" "index AE AE_sd CAE-2 CAE-2_sd" 50
charts "spectrum chart" "$T/s"
if awk '!/^#/ && $1 == "40" && $4 != "nan" { a = 1 } !/^#/ && $1 == "41" && $4 == "nan" && $2 != "nan" { b = 1 }
        END { exit !(a && b) }' "$T/s.dat"; then
    ok "spectrum: the 40-unit stack ends in nan after index 40"
else
    bad "spectrum nan padding" "$T/s.dat"
fi
if awk '!/^#/ && $1 ~ /^[0-9]+$/ { if (prev != "" && $2 > prev + 1e-6) bad = 1; prev = $2 } END { exit bad }' "$T/s.dat"; then
    ok "spectrum: singular values decrease"
else
    bad "spectrum order" "$T/s.dat"
fi

# ------------------------------------------------------------ error paths
# A data set 100 pixels wide (10x10), for the width check.
be32() { printf "\\x$(printf %02x $(($1 >> 24 & 255)))\\x$(printf %02x $(($1 >> 16 & 255)))\\x$(printf %02x $(($1 >> 8 & 255)))\\x$(printf %02x $(($1 & 255)))"; }
mkdir -p "$T/small/variations/basic"
for part in train valid test; do
    { printf '\x00\x00\x08\x03'; be32 5; be32 10; be32 10; head -c 500 /dev/zero; } >"$T/small/variations/basic/$part-images-idx3-ubyte"
    { printf '\x00\x00\x08\x01'; be32 5; head -c 5 /dev/zero; } >"$T/small/variations/basic/$part-labels-idx1-ubyte"
done
echo garbage >"$T/bad.ckpt"
C=(analyze contraction --model "$T/ae.ckpt" --points 10 --distances 0 --radii 1:2:1)
run "help" 0 "--radii A:B:STEP" "" -- analyze contraction --help
run "spectrum help" 0 "--examples N" "" -- analyze spectrum --help
run "no subcommand" 2 "" "missing subcommand" -- analyze
run "unknown subcommand" 2 "" "unknown subcommand 'bogus'" -- analyze bogus
run "missing checkpoint" 1 "" "nope.ckpt: cannot open" -- analyze contraction --model "$T/nope.ckpt" --out "$T/x"
run "not a checkpoint" 1 "" "not a cae checkpoint" -- analyze spectrum --model "$T/bad.ckpt" --out "$T/x"
run "wrong width" 2 "" "has 100 inputs per example, but --model" -- "${C[@]}" --data basic --data-dir "$T/small" --out "$T/x"
run "spectrum wrong width" 2 "" "expects 784" -- analyze spectrum --model "$T/ae.ckpt" --data basic --data-dir "$T/small" --out "$T/x"
run "radius 0" 2 "" "bad value for --radii: '0:10:1'" -- "${C[@]}" --radii 0:10:1 --out "$T/x"
run "radii reversed" 2 "" "bad value for --radii: '5:1:1'" -- "${C[@]}" --radii 5:1:1 --out "$T/x"
run "radii not numbers" 2 "" "expected A:B:STEP" -- "${C[@]}" --radii a:b --out "$T/x"
run "too many radii" 2 "" "at most" -- "${C[@]}" --radii 1:1e9:1 --out "$T/x"
run "depth beyond the stack" 2 "" "has 1 layer: no curve through 2" -- "${C[@]}" --depths 1,2 --out "$T/x"
run "repeated depth" 2 "" "bad value for --depths" -- "${C[@]}" --depths 1,1 --out "$T/x"
run "depths and layers" 2 "" "not both" -- "${C[@]}" --depths 1 --layers 1 --out "$T/x"
run "names do not match models" 2 "" "1 --name for 2 --model" -- "${C[@]}" --model "$T/cae.ckpt" --name a --out "$T/x"
run "missing --model" 2 "" "missing required option --model" -- analyze spectrum --out "$T/x"
run "missing --out" 2 "" "missing required option --out" -- "${C[@]}"
run "contraction option on spectrum" 2 "" "unknown option '--radii'" -- analyze spectrum --model "$T/ae.ckpt" --radii 1:2:1 --out "$T/x"
run "bad split" 2 "" "bad value for --split" -- "${C[@]}" --split train --out "$T/x"
run "unknown data set" 2 "" "unknown data set 'nosuch'" -- "${C[@]}" --data nosuch --out "$T/x"
run "output directory missing" 1 "" "does not exist" -- "${C[@]}" --out "$T/no/such/dir/x"
run "quote in a plotted path" 2 "" "quotes in the path" -- "${C[@]}" --out "$T/it's" --plot
if [ -e "$T/x.dat" ]; then bad "a failed run left $T/x.dat"; else ok "failed runs write nothing"; fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
