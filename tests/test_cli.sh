#!/usr/bin/env bash
# End-to-end test of the model commands of `cae`: pretrain, eval (text and
# JSON), finetune, eval of the classifier, export, stacking with --on, and
# the error paths (exit status and message checked for each).
#
#   usage: tests/test_cli.sh PATH/TO/cae        (CAE_DATA_DIR: fetched MNIST)
#
# Prints one line per check and "N passed, M failed"; exits 1 on any failure,
# 77 (CTest: skipped) when MNIST is not there.
set -u
CAE=${1:?usage: test_cli.sh PATH/TO/cae}
DATA=${CAE_DATA_DIR:-data}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
if [ ! -f "$DATA/mnist/train-images-idx3-ubyte" ] && [ ! -f "$DATA/mnist/train-images-idx3-ubyte.gz" ]; then
    echo "skipped: no MNIST in $DATA (scripts/fetch-data.sh)"
    exit 77
fi
export CAE_DATA_DIR=$DATA
T=$(mktemp -d "${TMPDIR:-/tmp}/cae-cli.XXXXXX")
trap 'rm -rf "$T"' EXIT
pass=0
fail=0

ok() { pass=$((pass + 1)); echo "ok    $1"; }
bad() {
    fail=$((fail + 1))
    echo "FAIL  $1"
    shift
    for f in "$@"; do [ -s "$f" ] && sed 's/^/      | /' "$f" | head -15; done
}

# run NAME WANT_RC OUT_SUBSTR ERR_SUBSTR -- ARGS...: run cae, check the exit
# status and that stdout / stderr contain the substrings ("" = no check).
# stdout and stderr stay in $T/out and $T/err for further checks.
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

# check NAME CONDITION...: one assertion on values extracted by the script.
check() {
    local name=$1
    shift
    if "$@"; then ok "$name"; else bad "$name ($*)" "$T/out" "$T/err"; fi
}

# A JSON number field of the one-line object in $T/out.
json_field() { sed -n "s/.*\"$1\":\([-0-9.eE+]*\).*/\1/p" "$T/out"; }
# |a - b| <= tol
near() { awk -v a="$1" -v b="$2" -v t="$3" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(a != "" && b != "" && d <= t) }'; }
differ() { ! cmp -s "$1" "$2"; }
lacks() { ! grep -q "$1" "$2"; }
positive() { awk -v a="$1" 'BEGIN { exit !(a != "" && a + 0 > 0) }'; }

# ------------------------------------------------------------ happy path

run "pretrain cae" 0 "epoch   1/1" "" -- pretrain --model cae --data mnist --limit 500 --epochs 1 \
    --hidden 50 --seed 3 --out "$T/cae.ckpt"
valid_recon=$(sed -n 's/.*valid recon *\([0-9.]*\).*/\1/p' "$T/out")
check "pretrain wrote the checkpoint" test -s "$T/cae.ckpt"
check "pretrain reports the validation reconstruction" positive "$valid_recon"
check "pretrain prints nothing on stderr off a terminal" test ! -s "$T/err"

run "eval (text)" 0 "||J||_F:" "" -- eval --model "$T/cae.ckpt"
check "eval (text) reports SAT and recon" grep -q "^SAT: .*%" "$T/out"
check "eval (text) uses the validation split of the training set" grep -q "mnist valid, 10000 examples" "$T/out"

run "eval --json" 0 '"jac_norm":' "" -- eval --model "$T/cae.ckpt" --json
check "eval --json is one line" test "$(wc -l <"$T/out")" -eq 1
jn=$(json_field jac_norm)
jsq=$(json_field jac_sqnorm)
jpe=$(json_field jac_per_entry)
check "eval --json: jac_norm > 0" positive "$jn"
check "eval --json: jac_norm^2 <= jac_sqnorm" awk -v a="$jn" -v b="$jsq" 'BEGIN { exit !(a * a <= b * (1 + 1e-6)) }'
check "eval --json: per entry = sqnorm / (784 x 50)" near "$jpe" "$(awk -v b="$jsq" 'BEGIN { printf "%.9g", b / 39200 }')" 1e-9
check "eval --json: recon = pretrain's validation recon" near "$(json_field recon)" "$valid_recon" 0.001
if command -v python3 >/dev/null; then
    check "eval --json parses as JSON" python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["depth"] == 1 and len(d["sat_layers"]) == 1' "$T/out"
fi

run "finetune" 0 "test error" "" -- finetune --init "$T/cae.ckpt" --data mnist --limit 500 --epochs 2 \
    --out "$T/mlp.ckpt"
ft_err=$(sed -n 's/^test error \([0-9.]*\)% +- \([0-9.]*\)%.*/\1/p' "$T/out")
check "finetune prints the test error with its interval" positive "$ft_err"
check "finetune learned something (test error < 80%)" awk -v e="$ft_err" 'BEGIN { exit !(e < 80) }'

run "eval classifier" 0 "95% interval" "" -- eval --model "$T/mlp.ckpt"
check "eval classifier: same test error as finetune" grep -q "^error: *$ft_err% +-" "$T/out"
run "eval classifier --json" 0 '"error":' "" -- eval --model "$T/mlp.ckpt" --json --split valid --limit 2000
check "eval classifier --json: 2000 examples" grep -q '"examples":2000' "$T/out"
check "eval classifier --json: error in (0, 1)" awk -v e="$(json_field error)" 'BEGIN { exit !(e > 0 && e < 1) }'

run "export --npy" 0 "wrote 5 tensors" "" -- export --model "$T/mlp.ckpt" --npy "$T/npy"
for t in L1.W L1.b L1.c out.V out.c; do
    check "export: $t.npy is a NumPy file" test "$(head -c 6 "$T/npy/$t.npy" | tail -c 5)" = "NUMPY"
done
check "export: L1.W.npy is 784 x 50" grep -qa "'shape': (784, 50)" "$T/npy/L1.W.npy"

# --wd reaches the weights: the same fine-tuning with and without it gives
# other, smaller weights.
for wd in 0 0.5; do
    run "finetune --wd $wd" 0 "test error" "" -- finetune --init "$T/cae.ckpt" --data mnist --limit 200 \
        --epochs 1 --wd $wd --out "$T/mlp-wd$wd.ckpt"
    run "export --wd $wd" 0 "wrote 5 tensors" "" -- export --model "$T/mlp-wd$wd.ckpt" --npy "$T/npy-wd$wd"
done
# --lr-decay slows the later epochs: other weights after two epochs (the
# first epoch's rate is lr either way); --no-test leaves the test set unread.
run "finetune --lr-decay 1 --no-test" 0 "best epoch" "" -- finetune --init "$T/cae.ckpt" --data mnist --limit 200 \
    --epochs 2 --lr-decay 1 --no-test --out "$T/mlp-decay.ckpt"
check "finetune --no-test prints no test error" lacks "test error" "$T/out"
run "finetune --lr-decay 0" 0 "test error" "" -- finetune --init "$T/cae.ckpt" --data mnist --limit 200 \
    --epochs 2 --out "$T/mlp-nodecay.ckpt"
run "pretrain --lr-decay 1" 0 "valid recon" "" -- pretrain --model cae --data mnist --limit 200 --epochs 2 \
    --hidden 20 --lr-decay 1 --out "$T/cae-decay.ckpt"
run "pretrain --lr-decay 0" 0 "valid recon" "" -- pretrain --model cae --data mnist --limit 200 --epochs 2 \
    --hidden 20 --out "$T/cae-nodecay.ckpt"
for m in mlp-decay mlp-nodecay cae-decay cae-nodecay; do
    run "export $m" 0 "wrote" "" -- export --model "$T/$m.ckpt" --npy "$T/npy-$m"
done
check "finetune --lr-decay moves the weights" differ "$T/npy-mlp-decay/L1.W.npy" "$T/npy-mlp-nodecay/L1.W.npy"
check "pretrain --lr-decay moves the weights" differ "$T/npy-cae-decay/L1.W.npy" "$T/npy-cae-nodecay/L1.W.npy"
check "finetune --wd changes L1.W" differ "$T/npy-wd0/L1.W.npy" "$T/npy-wd0.5/L1.W.npy"
check "finetune --wd changes out.V" differ "$T/npy-wd0/out.V.npy" "$T/npy-wd0.5/out.V.npy"
check "finetune --wd shrinks the weights" python3 -c '
import sys
def norm(path):  # sum of squares of a little-endian <f4/<f8 .npy (no numpy needed)
    import struct
    b = open(path, "rb").read(); hl = b[8] | b[9] << 8; h = b[10:10 + hl].decode()
    fmt = "d" if "<f8" in h else "f"; n = (len(b) - 10 - hl) // struct.calcsize(fmt)
    return sum(v * v for v in struct.unpack("<%d%s" % (n, fmt), b[10 + hl:]))
sys.exit(not norm(sys.argv[2]) < norm(sys.argv[1]))' "$T/npy-wd0/L1.W.npy" "$T/npy-wd0.5/L1.W.npy"

run "pretrain --on (stack layer 2)" 0 "layer 2" "" -- pretrain --model cae --data mnist --on "$T/cae.ckpt" \
    --limit 500 --epochs 1 --hidden 20 --out "$T/cae2.ckpt"
check "stacked: codes of 500 training examples" grep -q "codes of layers 1..1: 500 training" "$T/out"
run "eval stacked --json" 0 '"depth":2' "" -- eval --model "$T/cae2.ckpt" --json --max-jacobian 50
check "eval stacked: two SAT figures" grep -q '"sat_layers":\[[0-9.e-]*,[0-9.e-]*\]' "$T/out"
check "eval stacked: Jacobian on 50 examples" grep -q '"jacobian_examples":50,' "$T/out"
check "eval stacked: layer 1 recon unchanged by stacking" near "$(json_field recon)" "$valid_recon" 0.001
run "finetune the stack" 0 "784-50-20" "" -- finetune --init "$T/cae2.ckpt" --data mnist --limit 200 \
    --epochs 1 --out "$T/mlp2.ckpt"

for c in pretrain finetune eval export; do
    run "$c --help" 0 "usage: cae $c" "" -- "$c" --help
done

# ------------------------------------------------------------ error paths

# Forward mode: the probe penalty, CAE+H, the end-to-end penalty of a
# stack; each option moves the result, and what a run is goes into the
# checkpoint (version 2) and is checked on --resume.
P1="--data mnist --limit 300 --epochs 1 --hidden 30 --seed 3"
run "pretrain --penalty probes" 0 "valid recon" "" -- pretrain --model cae $P1 --penalty probes --probes 3 --out "$T/probes.ckpt"
run "pretrain exact (same seed)" 0 "valid recon" "" -- pretrain --model cae $P1 --out "$T/exact.ckpt"
run "export probes" 0 "wrote" "" -- export --model "$T/probes.ckpt" --npy "$T/npy-probes"
run "export exact" 0 "wrote" "" -- export --model "$T/exact.ckpt" --npy "$T/npy-exact"
check "--penalty probes trains other weights than the exact penalty" differ "$T/npy-probes/L1.W.npy" "$T/npy-exact/L1.W.npy"
check "a probes checkpoint is format version 2" test "$(od -An -tu4 -j8 -N4 "$T/probes.ckpt" | tr -d ' ')" = 2
check "an exact checkpoint stays version 1" test "$(od -An -tu4 -j8 -N4 "$T/exact.ckpt" | tr -d ' ')" = 1
run "resume with other --probes" 2 "" "--probes is 5, the checkpoint has 3" -- pretrain --model cae $P1 \
    --penalty probes --probes 5 --out "$T/probes.ckpt" --resume
run "pretrain --model cae-h" 0 "valid recon" "" -- pretrain --model cae-h $P1 --gamma 0.5 --sigma 0.2 --corruptions 2 --probes 2 --out "$T/caeh.ckpt"
run "pretrain cae-h, another gamma" 0 "valid recon" "" -- pretrain --model cae-h $P1 --gamma 0.05 --sigma 0.2 --corruptions 2 --probes 2 --out "$T/caeh2.ckpt"
run "export cae-h" 0 "wrote" "" -- export --model "$T/caeh.ckpt" --npy "$T/npy-caeh"
run "export cae-h 2" 0 "wrote" "" -- export --model "$T/caeh2.ckpt" --npy "$T/npy-caeh2"
check "--gamma moves the weights" differ "$T/npy-caeh/L1.W.npy" "$T/npy-caeh2/L1.W.npy"
run "pretrain --end-to-end" 0 "layer 2" "" -- pretrain --model cae $P1 --hidden 20 --on "$T/exact.ckpt" \
    --end-to-end --probes 2 --out "$T/e2e.ckpt"
check "--end-to-end trains on the data, not on codes" lacks "codes of layers" "$T/out"
run "pretrain greedy layer 2" 0 "codes of layers" "" -- pretrain --model cae $P1 --hidden 20 --on "$T/exact.ckpt" \
    --penalty probes --probes 2 --out "$T/greedy2.ckpt"
run "export e2e" 0 "wrote" "" -- export --model "$T/e2e.ckpt" --npy "$T/npy-e2e"
run "export greedy" 0 "wrote" "" -- export --model "$T/greedy2.ckpt" --npy "$T/npy-greedy"
check "--end-to-end moves layer 2" differ "$T/npy-e2e/L2.W.npy" "$T/npy-greedy/L2.W.npy"
check "--end-to-end leaves layer 1 as it was" cmp -s "$T/npy-e2e/L1.W.npy" "$T/npy-exact/L1.W.npy"
run "eval a cae-h" 0 '"jac_norm":' "" -- eval --model "$T/caeh.ckpt" --json
run "bad --penalty" 2 "" "bad value for --penalty: 'approx'" -- pretrain --model cae --data mnist --penalty approx --out "$T/x"
run "bad --probe-kind" 2 "" "bad value for --probe-kind" -- pretrain --model cae --data mnist --probe-kind sobol --out "$T/x"
run "--gamma without cae-h" 2 "" "--gamma applies to --model cae-h only" -- pretrain --model cae --data mnist --gamma 1 --out "$T/x"
run "--probes on a dae" 2 "" "--probes applies to --model cae" -- pretrain --model dae-b --data mnist --probes 2 --out "$T/x"
run "--end-to-end without --on" 2 "" "--end-to-end penalizes the stack's Jacobian: it needs --on" -- pretrain --model cae --data mnist --end-to-end --out "$T/x"
run "--probes with --penalty exact" 2 "" "the exact penalty has no probes" -- pretrain --model cae --data mnist --penalty exact --probes 2 --out "$T/x"
run "--composed with probes" 2 "" "choose one" -- pretrain --model cae --data mnist --composed --probes 2 --out "$T/x"

# The Manifold Tangent Classifier: --beta 0 is plain fine-tuning, bit for
# bit; a positive beta moves the weights; options check on --resume.
F1="--init $T/exact.ckpt --data mnist --limit 200 --epochs 1 --seed 4"
run "finetune plain" 0 "test error" "" -- finetune $F1 --out "$T/ft-plain.ckpt"
run "finetune --tangent-prop 3 --beta 0" 0 "test error" "" -- finetune $F1 --tangent-prop 3 --beta 0 --out "$T/ft-b0.ckpt"
check "--beta 0 is plain fine-tuning, bit for bit" cmp -s "$T/ft-plain.ckpt" "$T/ft-b0.ckpt"
run "finetune --tangent-prop 3 --beta 1" 0 "tangents:" "" -- finetune $F1 --tangent-prop 3 --beta 1 --out "$T/ft-mtc.ckpt"
check "--beta 1 trains other weights" differ "$T/ft-plain.ckpt" "$T/ft-mtc.ckpt"
run "--beta without --tangent-prop" 2 "" "options of --tangent-prop" -- finetune $F1 --beta 1 --out "$T/x"

run "unknown option" 2 "" "unknown option '--bogus'" -- pretrain --model cae --data mnist --bogus --out "$T/x"
run "bad value" 2 "" "bad value for --hidden: 'abc'" -- pretrain --model cae --data mnist --hidden abc --out "$T/x"
run "bad model" 2 "" "bad value for --model: 'xyz'" -- pretrain --model xyz --data mnist --out "$T/x"
run "bad real" 2 "" "bad value for --lr" -- pretrain --model cae --data mnist --lr nan --out "$T/x"
run "option without value" 2 "" "option --epochs needs a value" -- pretrain --model cae --data mnist --out "$T/x" --epochs
run "option of another model" 2 "" "--lambda applies to --model cae only" -- pretrain --model ae --lambda 1 --data mnist --out "$T/x"
run "missing --out" 2 "" "missing required option --out" -- pretrain --model cae --data mnist
run "missing --init" 2 "" "missing required option --init" -- finetune --data mnist --out "$T/x"
run "missing --npy" 2 "" "missing required option --npy" -- export --model "$T/cae.ckpt"
run "bad --split" 2 "" "bad value for --split: 'train'" -- eval --model "$T/cae.ckpt" --split train
run "unknown data set" 2 "" "unknown data set 'nosuch'" -- pretrain --model cae --data nosuch --out "$T/x"
run "missing data directory" 1 "" "cannot open" -- eval --model "$T/cae.ckpt" --data-dir "$T/nowhere"
run "nonexistent checkpoint" 1 "" "none.ckpt: cannot open" -- eval --model "$T/none.ckpt"
head -c 200 "$T/cae.ckpt" >"$T/trunc.ckpt"
run "truncated checkpoint" 1 "" "truncated" -- eval --model "$T/trunc.ckpt"
run "truncated checkpoint (finetune)" 1 "" "--init" -- finetune --init "$T/trunc.ckpt" --data mnist --out "$T/x"
echo "not a checkpoint" >"$T/junk.ckpt"
run "not a checkpoint" 1 "" "not a cae checkpoint" -- export --model "$T/junk.ckpt" --npy "$T/npy2"
run "stack on a classifier" 2 "" "is a fine-tuned classifier" -- pretrain --model cae --data mnist --on "$T/mlp.ckpt" --out "$T/x"
run "unwritable --out" 1 "" "does not exist" -- pretrain --model cae --data mnist --out "$T/no/such/dir/x.ckpt"
run "export into a file" 1 "" "--npy" -- export --model "$T/cae.ckpt" --npy "$T/cae.ckpt/sub"
check "failed commands left no --out behind" test ! -e "$T/x"

# A data set of the wrong width: a tiny 10x10 'rect' variation, written here.
be32() { printf '\\x%02x\\x%02x\\x%02x\\x%02x' $(($1 >> 24 & 255)) $(($1 >> 16 & 255)) $(($1 >> 8 & 255)) $(($1 & 255)); }
mkdir -p "$T/data/variations/rect"
for part in train:30 valid:10 test:10; do
    name=${part%%:*}
    n=${part##*:}
    { printf '\x00\x00\x08\x03'; printf "$(be32 "$n")$(be32 10)$(be32 10)"; head -c $((n * 100)) /dev/urandom; } \
        >"$T/data/variations/rect/$name-images-idx3-ubyte"
    { printf '\x00\x00\x08\x01'; printf "$(be32 "$n")"; for ((i = 0; i < n; i++)); do printf "\\x0$((i % 2))"; done; } \
        >"$T/data/variations/rect/$name-labels-idx1-ubyte"
done
run "the 10x10 set is valid IDX" 0 "dims:   30 x 10 x 10" "" -- data inspect "$T/data/variations/rect/train-images-idx3-ubyte"
run "wrong width (--on)" 2 "" "has 100 inputs per example, but --on" -- pretrain --model cae --data rect \
    --data-dir "$T/data" --on "$T/cae.ckpt" --out "$T/x"
run "wrong width (eval)" 2 "" "has 100 inputs per example, but --model" -- eval --model "$T/cae.ckpt" --data rect \
    --data-dir "$T/data"
run "wrong width (finetune)" 2 "" "expects 784" -- finetune --init "$T/cae.ckpt" --data rect --data-dir "$T/data" \
    --out "$T/x"
run "pretrain rbm on the 10x10 set" 0 "free-energy gap" "" -- pretrain --model rbm --data rect --data-dir "$T/data" \
    --hidden 7 --epochs 2 --batch 8 --out "$T/rbm.ckpt"
run "eval the rbm" 0 '"d_in":100' "" -- eval --model "$T/rbm.ckpt" --data-dir "$T/data" --json

run "pretrain rbm --pcd --cd-k 2" 0 "free-energy gap" "" -- pretrain --model rbm --pcd --cd-k 2 --data rect \
    --data-dir "$T/data" --hidden 7 --epochs 1 --batch 8 --out "$T/pcd.ckpt"
for m in ae ae-wd dae-g dae-b; do
    run "pretrain $m (10x10)" 0 "valid recon" "" -- pretrain --model "$m" --data rect --data-dir "$T/data" \
        --hidden 6 --epochs 1 --batch 7 --out "$T/$m.ckpt"
done
run "pretrain cae --untied --composed --act tanh" 0 "valid recon" "" -- pretrain --model cae --untied --composed \
    --act tanh --lambda 0.5 --data rect --data-dir "$T/data" --hidden 6 --epochs 2 --batch 7 --out "$T/cu.ckpt"
u_recon=$(sed -n 's/^epoch *2\/2 .*valid recon *\([0-9.]*\).*/\1/p' "$T/out")
run "eval untied tanh cae" 0 '"recon":' "" -- eval --model "$T/cu.ckpt" --data-dir "$T/data" --json
check "eval recon = pretrain recon (untied decoder)" near "$(json_field recon)" "$u_recon" 0.001

# ------------------------------------------------------ sample and parzen

run "sample" 0 "wrote $T/smp/samples.npy (4 x 4 x 784)" "" -- sample --model "$T/cae.ckpt" --chains 4 --steps 20 \
    --every 5 --out "$T/smp"
check "sample wrote the chains' starts" grep -qa "'shape': (4, 784)" "$T/smp/start.npy"
run "sample --sigma 0.5" 0 "wrote" "" -- sample --model "$T/cae.ckpt" --chains 4 --steps 20 --every 5 --sigma 0.5 \
    --out "$T/smp-s"
check "sample --sigma moves the chains" differ "$T/smp/samples.npy" "$T/smp-s/samples.npy"
run "sample --bernoulli" 0 "wrote" "" -- sample --model "$T/cae.ckpt" --chains 4 --steps 20 --every 5 --bernoulli \
    --out "$T/smp-b"
check "sample --bernoulli moves the chains" differ "$T/smp/samples.npy" "$T/smp-b/samples.npy"
run "sample again" 0 "wrote" "" -- sample --model "$T/cae.ckpt" --chains 4 --steps 20 --every 5 --out "$T/smp-again"
check "sample is deterministic" cmp -s "$T/smp/samples.npy" "$T/smp-again/samples.npy"
run "sample: --every beyond --steps" 2 "" "nothing would be recorded" -- sample --model "$T/cae.ckpt" --steps 5 \
    --every 10 --out "$T/x"
run "sample from a classifier" 2 "" "is a fine-tuned classifier" -- sample --model "$T/mlp.ckpt" --out "$T/x"

run "parzen" 0 "chosen width" "" -- parzen --samples "$T/smp/samples.npy" --data mnist --limit 300 \
    --sigmas 0.15,0.3,0.6
check "parzen: 16 samples" grep -q "^16 samples of 784 inputs" "$T/out"
check "parzen: a line per width" test "$(grep -c '^0\.[136]' "$T/out")" -eq 3
check "parzen: a test log-likelihood" grep -q "^test log-likelihood -[0-9.]* +- [0-9.]* (300 examples" "$T/out"
w=$(sed -n 's/^chosen width \([0-9.]*\).*/\1/p' "$T/out")
vl=$(sed -n "s/^chosen width .*(valid log-likelihood \([-0-9.]*\) .*/\1/p" "$T/out")
run "parzen --split valid --sigma (the chosen width)" 0 "valid log-likelihood" "" -- parzen --samples \
    "$T/smp/samples.npy" --data mnist --limit 300 --split valid --sigma "$w"
check "parzen: --sigma on valid = the chosen width's validation figure" \
    grep -q "^valid log-likelihood $vl +- " "$T/out"
check "parzen --sigma skips the validation pass" lacks "chosen width" "$T/out"
run "parzen --burn-in 1" 0 "12 samples of 784" "" -- parzen --samples "$T/smp/samples.npy" --data mnist --limit 300 \
    --sigma "$w" --burn-in 1
run "parzen: --burn-in of all records" 2 "" "drops all 4 records" -- parzen --samples "$T/smp/samples.npy" \
    --data mnist --burn-in 4
run "parzen: --burn-in of a 2-d file" 2 "" "needs records x chains x D" -- parzen --samples "$T/smp/start.npy" \
    --data mnist --burn-in 1
run "parzen: --sigma with --sigmas" 2 "" "exclude each other" -- parzen --samples "$T/smp/samples.npy" --data mnist \
    --sigma 0.2 --sigmas 0.1,0.2
run "parzen: bad --sigmas" 2 "" "bad value for --sigmas: '0.1,-1'" -- parzen --samples "$T/smp/samples.npy" \
    --data mnist --sigmas 0.1,-1
run "parzen: missing --data" 2 "" "missing required option --data" -- parzen --samples "$T/smp/samples.npy"
head -c 300 "$T/smp/samples.npy" >"$T/trunc.npy"
run "parzen: truncated samples" 1 "" "--samples:" -- parzen --samples "$T/trunc.npy" --data mnist
run "parzen: samples of the wrong width" 2 "" "but --data rect has 100 inputs" -- parzen --samples \
    "$T/smp/samples.npy" --data rect --data-dir "$T/data"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
