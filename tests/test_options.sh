#!/usr/bin/env bash
# Every option moves what it says it moves. For each option of the model
# commands that the other tests only pass along or validate, two runs that
# differ in that option alone, and a check of the difference its --help
# documents: other weights (or the same where it says so: lambda 0 is an AE),
# a smaller norm, a lower ||J||, fewer epochs, another data directory's
# files, another split, more threads.
#
#   usage: tests/test_options.sh PATH/TO/cae    (CAE_DATA_DIR: MNIST, Fashion-MNIST)
#
# Prints one line per check and "N passed, M failed"; exits 1 on any failure,
# 77 (CTest: skipped) without the data.
set -u
CAE=${1:?usage: test_options.sh PATH/TO/cae}
DATA=${CAE_DATA_DIR:-data}
if ! command -v python3 >/dev/null; then
    echo "skipped: no python3 (it reads the .npy files)"
    exit 77
fi
for f in mnist/train-images-idx3-ubyte fashion-mnist/train-images-idx3-ubyte.gz; do
    if [ ! -f "$DATA/$f" ]; then
        echo "skipped: no $DATA/$f (scripts/fetch-data.sh)"
        exit 77
    fi
done
export CAE_DATA_DIR=$DATA
T=$(mktemp -d "${TMPDIR:-/tmp}/cae-options.XXXXXX")
trap 'rm -rf "$T"' EXIT
pass=0
fail=0

check() { # check NAME COMMAND...
    local name=$1
    shift
    if "$@"; then
        pass=$((pass + 1))
        echo "ok    $name"
    else
        fail=$((fail + 1))
        echo "FAIL  $name"
        [ -s "$T/err" ] && sed 's/^/      | /' "$T/err" | head -5
    fi
}
# cae ARGS...: run, stdout in $T/out, stderr in $T/err; a failure is reported.
cae() {
    "$CAE" "$@" >"$T/out" 2>"$T/err" && return 0
    local rc=$?
    fail=$((fail + 1))
    echo "FAIL  cae $* exited $rc"
    sed 's/^/      | /' "$T/err" | head -5
    return 1
}
# model NAME COMMAND ARGS...: train into $T/NAME.ckpt and export its tensors
# to $T/NAME/ (L1.W.npy, ...).
model() {
    local name=$1
    shift
    cae "$@" --out "$T/$name.ckpt" && cp "$T/out" "$T/$name.log" &&
        cae export --model "$T/$name.ckpt" --npy "$T/$name"
}
W() { echo "$T/$1/${2:-L1.W}.npy"; }
same() { cmp -s "$1" "$2"; }
differ() { ! cmp -s "$1" "$2"; }
lt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a != "" && b != "" && a + 0 < b + 0) }'; }
# npy FUNC FILE [FILE]: a figure of .npy arrays (little-endian <f4 or <f8).
npy() {
    python3 - "$@" <<'EOF'
import struct, sys
def load(path):
    b = open(path, "rb").read(); hl = b[8] | b[9] << 8; h = b[10:10 + hl].decode()
    fmt = "d" if "<f8" in h else "f"; n = (len(b) - 10 - hl) // struct.calcsize(fmt)
    return struct.unpack("<%d%s" % (n, fmt), b[10 + hl:])
f, a = sys.argv[1], load(sys.argv[2])
if f == "norm":
    print(sum(v * v for v in a))
else:  # maxdiff
    print(max(abs(x - y) for x, y in zip(a, load(sys.argv[3]))))
EOF
}
json_field() { sed -n "s/.*\"$1\":\([-0-9.eE+]*\).*/\1/p" "$T/out"; }
# threads_max COMMAND...: the most threads the process ran at once.
. "$(dirname "$0")/threads.sh"
# threads_used NAME COMMAND...: --threads 2 runs two threads at once, 1 one.
threads_used() {
    local name=$1
    shift
    local one two
    one=$(threads_max "$CAE" "$@" --threads 1)
    two=$(threads_max "$CAE" "$@" --threads 2)
    check "$name --threads: 2 threads at once ($two), 1 with --threads 1 ($one)" \
        test "$two" -ge 2 -a "$two" -gt "$one"
}

# A data directory whose mnist/ holds Fashion-MNIST's files: a command that
# reads --data mnist there must do what it does with --data fashion.
FK=$T/fashion-as-mnist
mkdir -p "$FK/mnist"
for f in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
    gzip -dc "$DATA/fashion-mnist/$f.gz" >"$FK/mnist/$f"
done

# ---------------------------------------------------------------- pretrain
P=(pretrain --data mnist --limit 300 --epochs 1 --hidden 12 --seed 1 --threads 1)
model ae "${P[@]}" --model ae
model cae "${P[@]}" --model cae --lambda 0.5
model cae-tiny "${P[@]}" --model cae --lambda 0.01
model cae-big "${P[@]}" --model cae --lambda 3
model cae-0 "${P[@]}" --model cae --lambda 0
check "--lambda 0: the CAE is the AE, bit for bit" same "$(W cae-0)" "$(W ae)"
check "--lambda 0.5: other weights than the AE's" differ "$(W cae)" "$(W ae)"
cae eval --model "$T/cae-tiny.ckpt" --json
j_tiny=$(json_field jac_norm)
cae eval --model "$T/cae-big.ckpt" --json
j_big=$(json_field jac_norm)
check "--lambda 3 contracts more than 0.01 (||J|| $j_big < $j_tiny)" lt "$j_big" "$j_tiny"
model cae-comp "${P[@]}" --model cae --lambda 0.5 --composed
d=$(npy maxdiff "$(W cae)" "$(W cae-comp)")
check "--composed: the fused penalty's weights to rounding (max diff $d)" lt "$d" 1e-5
model cae-comp-big "${P[@]}" --model cae --lambda 3 --composed
check "--composed follows --lambda" differ "$(W cae-comp)" "$(W cae-comp-big)"
check "--composed: said so" grep -q "^penalty: lambda 0.5 x ||J||_F^2, exact, composed from primitive ops$" \
    "$T/cae-comp.log"
check "without it: the fused op" grep -q "^penalty: lambda 0.5 x ||J||_F^2, exact, one fused op$" "$T/cae.log"
model untied "${P[@]}" --model cae --lambda 0.5 --untied
check "--untied: a decoder of its own, 12 x 784" grep -qa "'shape': (12, 784)" "$(W untied L1.Wd)"
check "tied: no decoder tensor" test ! -e "$(W cae L1.Wd)"
check "--untied: other weights" differ "$(W cae)" "$(W untied)"
model probes1 "${P[@]}" --model cae --lambda 0.5 --probes 1
model probes8 "${P[@]}" --model cae --lambda 0.5 --probes 8
model probes8r "${P[@]}" --model cae --lambda 0.5 --probes 8 --probe-kind rademacher
check "--probes 1 vs 8: other weights" differ "$(W probes1)" "$(W probes8)"
check "--probe-kind rademacher: other weights than gaussian" differ "$(W probes8)" "$(W probes8r)"
check "--probes 8 --probe-kind rademacher: said so" grep -q "estimated from 8 rademacher probes per example" \
    "$T/probes8r.log"
H=(--model cae-h --lambda 0.5 --gamma 0.5 --probes 2)
model h1 "${P[@]}" "${H[@]}" --sigma 0.05 --corruptions 2
model h2 "${P[@]}" "${H[@]}" --sigma 0.5 --corruptions 2
model h3 "${P[@]}" "${H[@]}" --sigma 0.05 --corruptions 1
check "cae-h --sigma 0.05 vs 0.5: other weights" differ "$(W h1)" "$(W h2)"
check "cae-h --corruptions 2 vs 1: other weights" differ "$(W h1)" "$(W h3)"
check "cae-h: its options said" grep -q "gamma 0.5 x E||J(x) - J(x~)||_F^2, x~ = x + N(0, 0.05^2), 1 corruption$" \
    "$T/h3.log"
for kind in dae-g dae-b; do
    model $kind-0 "${P[@]}" --model $kind --noise 0
    model $kind-a "${P[@]}" --model $kind --noise 0.1
    model $kind-b "${P[@]}" --model $kind --noise 0.5
    check "$kind --noise 0: the AE, bit for bit" same "$(W $kind-0)" "$(W ae)"
    check "$kind --noise 0.1 vs 0.5: other weights" differ "$(W $kind-a)" "$(W $kind-b)"
done
model wd "${P[@]}" --model ae --wd 0.5
check "--wd 0.5: smaller weights than the AE's" lt "$(npy norm "$(W wd)")" "$(npy norm "$(W ae)")"
model rbm "${P[@]}" --model rbm
model rbm-k3 "${P[@]}" --model rbm --cd-k 3
model rbm-pcd "${P[@]}" --model rbm --pcd
check "rbm --cd-k 3: other weights than CD-1's" differ "$(W rbm)" "$(W rbm-k3)"
check "rbm --pcd: other weights than CD-1's" differ "$(W rbm)" "$(W rbm-pcd)"
# From one initialisation (the seed), a ten times larger rate goes farther.
model lr-tiny "${P[@]}" --model ae --lr 1e-9
model lr-big "${P[@]}" --model ae --lr 0.1
check "--lr 0.1 moves the weights farther than 0.01" \
    lt "$(npy maxdiff "$(W ae)" "$(W lr-tiny)")" "$(npy maxdiff "$(W lr-big)" "$(W lr-tiny)")"
model mom "${P[@]}" --model ae --momentum 0.9
check "--momentum 0.9: other weights" differ "$(W mom)" "$(W ae)"
model b10 "${P[@]}" --model ae --batch 10
check "--batch 10: other weights" differ "$(W b10)" "$(W ae)"
check "--batch 10: said so" grep -q "300 examples, batch 10," "$T/b10.log"
model s2 "${P[@]}" --model ae --seed 2
check "--seed 2: other weights" differ "$(W s2)" "$(W ae)"
model lim "${P[@]}" --model ae --limit 200
check "--limit 200: other weights" differ "$(W lim)" "$(W ae)"
check "--limit 200: said so" grep -q "on mnist: 200 examples" "$T/lim.log"
model ae-fk "${P[@]}" --model ae --data-dir "$FK"
model ae-f pretrain --data fashion --limit 300 --epochs 1 --hidden 12 --seed 1 --threads 1 --model ae
check "--data-dir: mnist read from the directory given (Fashion-MNIST's files there)" \
    same "$(W ae-fk)" "$(W ae-f)"
check "--data-dir: other weights than the real MNIST's" differ "$(W ae-fk)" "$(W ae)"
threads_used "pretrain" pretrain --model cae --data mnist --limit 2000 --epochs 1 --hidden 300 --out "$T/th.ckpt"

# ---------------------------------------------------------------- finetune
F=(finetune --init "$T/cae.ckpt" --data mnist --limit 300 --epochs 2 --seed 1 --threads 1)
model ft "${F[@]}"
check "finetune: 2 epochs" test "$(grep -c '^epoch ' "$T/ft.log")" -eq 2
model ft-e3 "${F[@]}" --epochs 3
check "finetune --epochs 3: 3 epochs" test "$(grep -c '^epoch ' "$T/ft-e3.log")" -eq 3
for o in "--lr 0.01" "--momentum 0.9" "--batch 10" "--seed 2" "--limit 200"; do
    n=ft-${o// /}
    model "$n" "${F[@]}" $o
    check "finetune $o: another classifier" differ "$(W "$n")" "$(W ft)"
done
check "finetune --limit 200: said so" grep -q "on mnist: 200 examples" "$T/ft---limit200.log"
# An unstable rate never improves on its first epochs: patience 1 stops the
# run early, patience 0 runs every epoch.
U=(finetune --init "$T/ae.ckpt" --data mnist --limit 200 --epochs 12 --lr 1 --momentum 0.9 --threads 1 --no-test)
cae "${U[@]}" --patience 1 --out "$T/p1.ckpt"
e1=$(grep -c '^epoch ' "$T/out")
cae "${U[@]}" --patience 0 --out "$T/p0.ckpt"
e0=$(grep -c '^epoch ' "$T/out")
check "finetune --patience 1 stops early ($e1 epochs of 12; --patience 0: $e0)" test "$e1" -lt 12 -a "$e0" -eq 12
model ft-fk "${F[@]}" --data-dir "$FK"
model ft-f finetune --init "$T/cae.ckpt" --data fashion --limit 300 --epochs 2 --seed 1 --threads 1
check "finetune --data-dir: mnist read from the directory given" same "$(W ft-fk)" "$(W ft-f)"
check "finetune --data-dir: another classifier than on MNIST" differ "$(W ft-fk)" "$(W ft)"
TP=("${F[@]}" --tangent-prop 2 --beta 0.5)
model tp0 "${TP[@]}"
model tp1 "${TP[@]}" --tangents-every 1
check "finetune --tangents-every 1: the second epoch's tangents are the fine-tuned encoder's" \
    differ "$(W tp1)" "$(W tp0)"
threads_used "finetune" finetune --init "$T/th.ckpt" --data mnist --limit 2000 --epochs 1 --no-test \
    --out "$T/th-ft.ckpt"

# -------------------------------------------------------------------- eval
cae eval --model "$T/ft.ckpt" --split valid --json
ev=$(json_field jac_norm)
check "eval --split valid: said so" grep -q '"split":"valid","examples":10000' "$T/out"
cae eval --model "$T/ft.ckpt" --split test --json
et=$(json_field jac_norm)
check "eval --split test: said so" grep -q '"split":"test","examples":10000' "$T/out"
check "eval --split: other figures on the two splits (||J|| $ev, $et)" test -n "$ev" -a "$ev" != "$et"
cae eval --model "$T/cae.ckpt" --split test
check "eval --split test: said so" grep -q "mnist test, 10000 examples" "$T/out"
threads_used "eval" eval --model "$T/th.ckpt"

# ----------------------------------------------------------------- analyze
model cae2 pretrain --data mnist --limit 300 --epochs 1 --hidden 10 --seed 1 --threads 1 --model cae --on "$T/cae.ckpt"
A=(analyze contraction --model "$T/cae2.ckpt" --radii 1:3:1 --points 20 --distances 0 --threads 1)
rows() { grep -v '^#' "$1" | tail -n +2; }
cae "${A[@]}" --out "$T/a-l1" --layers 1
cae "${A[@]}" --out "$T/a-l2" --layers 2
cae "${A[@]}" --out "$T/a-d1" --depths 1
check "analyze --layers 1 vs 2: other curves" test "$(rows "$T/a-l1.dat")" != "$(rows "$T/a-l2.dat")"
check "analyze --depths 1 = --layers 1" test "$(rows "$T/a-d1.dat")" = "$(rows "$T/a-l1.dat")"
cae "${A[@]}" --out "$T/a-test" --split test
check "analyze --split test: other curves" test "$(rows "$T/a-test.dat")" != "$(rows "$T/a-l2.dat")"
cae "${A[@]}" --out "$T/a-s2" --seed 2
check "analyze --seed 2: other curves" test "$(rows "$T/a-s2.dat")" != "$(rows "$T/a-l2.dat")"
cae "${A[@]}" --out "$T/a-f" --data fashion
cae "${A[@]}" --out "$T/a-fk" --data mnist --data-dir "$FK"
check "analyze --data fashion: other curves" test "$(rows "$T/a-f.dat")" != "$(rows "$T/a-l2.dat")"
check "analyze --data-dir: mnist read from the directory given" test "$(rows "$T/a-fk.dat")" = "$(rows "$T/a-f.dat")"
S=(analyze spectrum --model "$T/cae.ckpt" --threads 1)
cae "${S[@]}" --examples 5 --out "$T/s5"
cae "${S[@]}" --examples 9 --out "$T/s9"
check "analyze spectrum --examples 5 vs 9: other spectra" test "$(rows "$T/s5.dat")" != "$(rows "$T/s9.dat")"
threads_used "analyze contraction" analyze contraction --model "$T/th.ckpt" --points 300 --out "$T/th-c"
# The spectrum's Jacobians (OpenMP). Its SVDs run on OpenBLAS's pool, whose
# threads exist from the moment LAPACKE loads (cores - 1 of them, whatever
# openblas_set_num_threads says later): they add the same count to both.
threads_used "analyze spectrum" analyze spectrum --model "$T/th.ckpt" --examples 100 --out "$T/th-s"
if command -v gnuplot >/dev/null; then
    cae "${A[@]}" --out "$T/a-plot" --plot --title "Options under test"
    check "analyze --title: the chart's title" grep -q "Options under test" "$T/a-plot.svg"
    cae "${A[@]}" --out "$T/a-logy" --plot --title "Options under test" --logy
    check "analyze --logy: another chart" differ "$T/a-plot.svg" "$T/a-logy.svg"
else
    echo "skip  analyze --title, --logy: no gnuplot"
fi

# ------------------------------------------------------ sample and parzen
M=(sample --model "$T/cae.ckpt" --chains 4 --steps 10 --every 5 --threads 1)
cae "${M[@]}" --out "$T/m"
cae "${M[@]}" --out "$T/m-s2" --seed 2
check "sample --seed 2: other chains" differ "$T/m/samples.npy" "$T/m-s2/samples.npy"
cae "${M[@]}" --out "$T/m-f" --data fashion
check "sample --data fashion: other starts" differ "$T/m/start.npy" "$T/m-f/start.npy"
cae "${M[@]}" --out "$T/m-fk" --data mnist --data-dir "$FK"
check "sample --data-dir: mnist read from the directory given" same "$T/m-fk/start.npy" "$T/m-f/start.npy"
threads_used "sample" sample --model "$T/th.ckpt" --chains 200 --steps 50 --every 50 --out "$T/th-m"
if command -v gnuplot >/dev/null; then
    cae "${M[@]}" --out "$T/m-plot" --plot
    check "sample --plot: the grid's chart" test -s "$T/m-plot/chains.png" -a -s "$T/m-plot/chains.svg"
    check "no chart without --plot" test ! -e "$T/m/chains.png"
else
    echo "skip  sample --plot: no gnuplot"
fi
Z=(parzen --samples "$T/m/samples.npy" --limit 300 --sigma 0.3 --threads 1)
cae "${Z[@]}" --data fashion
lf=$(sed -n 's/^test log-likelihood \([-0-9.]*\).*/\1/p' "$T/out")
cae "${Z[@]}" --data mnist --data-dir "$FK"
lk=$(sed -n 's/^test log-likelihood \([-0-9.]*\).*/\1/p' "$T/out")
cae "${Z[@]}" --data mnist
lm=$(sed -n 's/^test log-likelihood \([-0-9.]*\).*/\1/p' "$T/out")
check "parzen --data-dir: mnist read from the directory given ($lk = $lf, not $lm)" \
    test -n "$lk" -a "$lk" = "$lf" -a "$lk" != "$lm"
threads_used "parzen" parzen --samples "$T/th-m/samples.npy" --data mnist --sigma 0.3

# ------------------------------------------------------------ import, data
cae import --npy "$T/cae" --model cae --data fashion --out "$T/imp.ckpt"
cae eval --model "$T/imp.ckpt"
check "import --data fashion: eval reads Fashion-MNIST by default" grep -q "fashion valid" "$T/out"
V=(data make-variations --only basic --small)
cae "${V[@]}" --out "$T/v1"
cae "${V[@]}" --out "$T/v2" --seed 2
cae "${V[@]}" --out "$T/vf" --data "$FK"
b=basic/train-images-idx3-ubyte
check "make-variations --small: 200 training images (1/50)" \
    test "$(od -An -tu1 -j4 -N4 "$T/v1/$b" | awk '{print $1 * 16777216 + $2 * 65536 + $3 * 256 + $4}')" -eq 200
check "make-variations --seed 2: other images" differ "$T/v1/$b" "$T/v2/$b"
check "make-variations --data: the digits of the directory given" differ "$T/v1/$b" "$T/vf/$b"
# fetch runs scripts/fetch-data.sh ($CAE_FETCH_SCRIPT) with --dir and --only.
printf '#!/bin/sh\necho "$@" >"%s/fetch-args"\n' "$T" >"$T/fetch.sh"
chmod +x "$T/fetch.sh"
CAE_FETCH_SCRIPT=$T/fetch.sh "$CAE" data fetch --dir "$T/d" --only fashion >"$T/out" 2>"$T/err"
check "data fetch --dir --only: handed to the fetch script" grep -q -- "--dir $T/d --only fashion" "$T/fetch-args"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
