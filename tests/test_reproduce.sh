#!/usr/bin/env bash
# `cae reproduce all --budget smoke`: runs end to end, writes well-formed
# tables, data files and charts; a second run resumes from the cache, and
# only from a cache made by the same budget, seed and protocol.
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
check "Fig. 3 names its stack's widths" \
    grep -q 'figure 3 (a stack of 3 CAEs pretrained on rot, 784-100-100-100)' "$out/log1"

# The protocol. Pretraining counts examples: the smoke budget's 3 000 are 3
# epochs of the 1 000 MNIST examples (one row per epoch in the log).
check "pretraining ran 3 epochs of 1000 examples" \
    test "$(grep -v '^#' "$out/runs/mnist-ae/pretrain-L1.dat" | tail -n +2 | wc -l)" -eq 3
# Fine-tuning: each model's grid at lr 0.1, then lr 0.01 on the winner's
# encoder: 12 models x 2 rates in Table 1; in Table 2, per set, CAE-1 at 2
# rates and CAE-2's two second-layer lambdas at lr 0.1 plus lr 0.01 on the
# winner; each fine-tuning keeps its classifier.
check "34 fine-tunings" test "$(find "$out/runs" -path '*/ft-lr*/result.txt' ! -path '*/refit/*' | wc -l)" -eq 34
check "every fine-tuning kept its classifier" \
    test "$(find "$out/runs" -path '*/ft-lr*/mlp.ckpt' ! -path '*/refit/*' | wc -l)" -eq 34
check "both rates fine-tuned the MNIST CAE" test -s "$out/runs/mnist-cae-0.1/ft-lr0.01/finetune.dat"
check "the two rates trained differently" \
    test "$(cmp -s "$out/runs/mnist-cae-0.1/ft-lr0.1/finetune.dat" "$out/runs/mnist-cae-0.1/ft-lr0.01/finetune.dat"; echo $?)" = 1
# The test set is read once per chosen model: 12 in Table 1, 4 in Table 2.
check "16 test errors, one per chosen model" test "$(find "$out/runs" -name test.txt | wc -l)" -eq 16
check "the table's chosen rate is a fine-tuned one" \
    test "$(awk -F'\t' 'NR > 1 && $3 !~ /lr=0.1$|lr=0.01$/' "$out/table1.tsv" | wc -l)" -eq 0
# CAE-2 trains only its second layer, on CAE-1's cached first.
check "CAE-2 pretrained layer 1 once" test "$(grep -c 'basic-cae-0.1[-L0-9]*  *pretrain layer 1' "$out/log1")" -eq 1
check "CAE-2 pretrained layer 2" test "$(grep -c 'basic-cae-0.1-L2  *pretrain layer 2' "$out/log1")" -eq 1
check "CAE-2's run has no layer-1 log of its own" test ! -e "$out/runs/basic-cae-0.1-L2/pretrain-L1.dat"
# CAE-2's second layer has a lambda of its own, searched on CAE-1's layer 1.
check "CAE-2 pretrained layer 2 at lambda 0.03" \
    test "$(grep -c 'basic-cae-0.1-L2-0.03  *pretrain layer 2' "$out/log1")" -eq 1
check "CAE-2 at lambda 0.03 has no layer-1 log of its own" test ! -e "$out/runs/basic-cae-0.1-L2-0.03/pretrain-L1.dat"
"$cae" export --model "$out/runs/basic-cae-0.1-L2/pretrain.ckpt" --npy "$out/npy-a" >/dev/null 2>&1
"$cae" export --model "$out/runs/basic-cae-0.1-L2-0.03/pretrain.ckpt" --npy "$out/npy-b" >/dev/null 2>&1
check "both CAE-2 runs share CAE-1's layer 1" cmp -s "$out/npy-a/L1.W.npy" "$out/npy-b/L1.W.npy"
check "the second layer's lambda changed the second layer" \
    test "$(cmp -s "$out/npy-a/L2.W.npy" "$out/npy-b/L2.W.npy"; echo $?)" = 1
check "table2.tsv rows have 12 tab-separated fields" \
    test "$(awk -F'\t' 'NF != 12' "$out/table2.tsv" | wc -l)" -eq 0
check "table2.tsv names CAE-2's chosen second-layer lambda" \
    test "$(awk -F'\t' 'NR > 1 && $12 != "0.1" && $12 != "0.03"' "$out/table2.tsv" | wc -l)" -eq 0
# ... the one with the lower validation error at lr 0.1 (the first on a tie).
va=$(awk '$1 == "valid_error" {print $2}' "$out/runs/basic-cae-0.1-L2/ft-lr0.1/result.txt")
vb=$(awk '$1 == "valid_error" {print $2}' "$out/runs/basic-cae-0.1-L2-0.03/ft-lr0.1/result.txt")
want=$(awk -v a="$va" -v b="$vb" 'BEGIN {print (b < a) ? "0.03" : "0.1"}')
check "basic's CAE-2 chose lambda 2 = $want on validation ($va vs $vb)" \
    test "$(awk -F'\t' '$1 == "basic" {print $12}' "$out/table2.tsv")" = "$want"
# Table 2's CAE-1 is the (lambda, rate) with the lowest validation error of
# its grid at every rate (the smoke grid has one lambda; the first rate on a
# tie), and its test was read for that row only.
for set in basic rect; do
    v1=$(awk '$1 == "valid_error" {print $2}' "$out/runs/$set-cae-0.1/ft-lr0.1/result.txt")
    v2=$(awk '$1 == "valid_error" {print $2}' "$out/runs/$set-cae-0.1/ft-lr0.01/result.txt")
    want=$(awk -v a="$v1" -v b="$v2" 'BEGIN {print (b < a) ? "0.01" : "0.1"}')
    check "$set's CAE-1 chose rate $want on validation ($v1 vs $v2)" \
        test "$(awk -F'\t' -v s="$set" '$1 == s {print $5}' "$out/table2.tsv")" = "$want"
    check "$set's CAE-1 test read at rate $want only" \
        test -s "$out/runs/$set-cae-0.1/ft-lr$want/refit/test.txt" -a \
        "$(find "$out/runs/$set-cae-0.1" -name test.txt | wc -l)" -eq 1
done
check "the plan is printed first" test "$(head -1 "$out/log1" | grep -c '^budget smoke: [0-9]* pretrainings')" -eq 1
# --plan prints the same plan and stops: nothing trained, read or written,
# not even the sweep of a killed run's temporary files or the claims file.
printf x >"$out/aged.tmp.2147483646"
touch -d '-2 minutes' "$out/aged.tmp.2147483646"
touch "$out/marker"
"$cae" reproduce all --budget smoke --plan --out "$out" >"$out/planlog" 2>&1
check "--plan exits 0" test $? -eq 0
check "--plan prints the run's plan" test "$(head -3 "$out/planlog")" = "$(head -3 "$out/log1")"
check "--plan says nothing more" test "$(wc -l <"$out/planlog")" -eq 3
check "--plan touches nothing in --out" test -e "$out/aged.tmp.2147483646" -a \
    "$(find "$out" -newer "$out/marker" ! -path "$out" ! -name planlog | wc -l)" -eq 0
rm -f "$out/aged.tmp.2147483646" "$out/marker"
"$cae" reproduce all --budget smoke --plan --out "$out/planned" >/dev/null 2>&1
check "--plan creates no --out" test ! -e "$out/planned"
tflop() { "$cae" reproduce "$@" --plan | awk '/^their products/ {print $3}'; }
check "--plan counts the products' operations" awk -v t="$(tflop all --budget smoke)" 'BEGIN { exit !(t > 0) }'
check "--plan needs no --out" "$cae" reproduce table2 --budget full --plan >/dev/null 2>&1
"$cae" reproduce table2 --budget full >/dev/null 2>"$out/err"
check "without --plan, --out is required" test $? -eq 2
check "--plan: --hidden2 1000 plans fewer operations than full's 2000" \
    awk -v a="$(tflop table2 --budget full --hidden2 1000)" -v b="$(tflop table2 --budget full)" \
    'BEGIN { exit !(a > 0 && a < b) }'
# --refit on the quick budget, which does not refit: 26 more fine-tunings
# (6 models x 2 sets, CAE-1 and CAE-2 on 7 sets), and more operations.
plan_ft() { head -1 "$1" | sed 's/.* pretrainings ([^)]*), \([0-9]*\) fine-tunings.*/\1/'; }
"$cae" reproduce all --budget quick --plan >"$out/plan-q" 2>&1
"$cae" reproduce all --budget quick --plan --refit >"$out/plan-qr" 2>&1
check "--refit: the quick budget's plan has 26 more fine-tunings" \
    test "$(plan_ft "$out/plan-qr")" -eq $(($(plan_ft "$out/plan-q") + 26))
check "--refit: ... and more operations" awk -v a="$(awk '/^their/ {print $3}' "$out/plan-q")" \
    -v b="$(awk '/^their/ {print $3}' "$out/plan-qr")" 'BEGIN { exit !(a > 0 && a < b) }'
# The smoke budget (as the full one) tests each chosen row's refit: its
# fine-tuning redone on the training and validation examples together (the
# smoke budget's 1 000 + 1 000) for the epochs it kept (its best of 3: the
# first with the lowest validation error), and not the chosen run itself.
lr1=$(awk -F'\t' '$1 == "mnist" && $2 == "cae" {sub(/.*lr=/, "", $3); print $3}' "$out/table1.tsv")
ft1="$out/runs/mnist-cae-0.1/ft-lr$lr1"
check "the MNIST CAE's refit kept a classifier, its log and its test error" \
    test -s "$ft1/refit/mlp.ckpt" -a -s "$ft1/refit/finetune.dat" -a -s "$ft1/refit/test.txt"
check "the refit trained on the 1000 training and 1000 validation examples" \
    grep -q "mnist-cae-0.1 .*refit.* on 2000 training + validation examples" "$out/log1"
kept() { # the first epoch with the lowest validation error of a finetune.dat
    awk '$1 ~ /^[0-9]+$/ && (best == "" || $3 < best) {best = $3; e = $1} END {print e}' "$1"
}
bad=0 short=0 refits=0
for r in $(find "$out/runs" -type d -name refit); do
    refits=$((refits + 1))
    k=$(kept "$r/../finetune.dat")
    [ "$(grep -c '^[0-9]' "$r/finetune.dat")" = "$k" ] || bad=$((bad + 1))
    [ "$k" -lt 3 ] && short=$((short + 1))
done
check "every refit ($refits) ran the epochs its fine-tuning kept ($short of them fewer than 3)" \
    test "$refits" -eq 16 -a "$bad" -eq 0
check "refit results record those epochs" \
    test "$(awk '$1 == "epochs" {print $2}' "$ft1/refit/result.txt")" = "$(kept "$ft1/finetune.dat")"
check "the refit is another classifier than the chosen run's" \
    test "$(cmp -s "$ft1/mlp.ckpt" "$ft1/refit/mlp.ckpt"; echo $?)" = 1
check "the chosen run's own test error was not read" test ! -e "$ft1/test.txt"
check "table1 shows the refit's test error" test "$(awk -F'\t' '$1 == "mnist" && $2 == "cae" {print $5}' \
    "$out/table1.tsv")" = "$(awk '$1 == "test_error" {printf "%.4f", 100 * $2}' "$ft1/refit/test.txt")"
check "table1.md says the test errors are the refits'" grep -q 'refit: fine-tuned again' "$out/table1.md"

# A second run trains nothing: every run is cached. It removes the temporary
# files a killed run left (of a process that is gone), not a live one's.
# Only in the directories it writes, only of a minute or more ago.
touch -d '2 minutes ago' "$out/claims-all.md.tmp.2147483646" "$out/runs/mnist-ae/result.txt.tmp.2147483646" \
    "$out/table1.md.tmp.$$" "$out/figures/x.tmp.2147483646" "$ft1/refit/mlp.ckpt.tmp.2147483646"
mkdir -p "$out/mine"
touch -d '2 minutes ago' "$out/mine/notes.tmp.2147483646"
touch "$out/table2.md.tmp.2147483646"
"$cae" reproduce table1 --budget smoke --out "$out" >"$out/log2" 2>&1
check "rerun exits 0" test $? -eq 0
check "a dead run's temporary files are removed" \
    test ! -e "$out/claims-all.md.tmp.2147483646" -a ! -e "$out/runs/mnist-ae/result.txt.tmp.2147483646" \
    -a ! -e "$out/figures/x.tmp.2147483646" -a ! -e "$ft1/refit/mlp.ckpt.tmp.2147483646"
check "... and said so" grep -q "removed 4 temporary file(s) an interrupted run left in" "$out/log2"
check "a live process's temporary file is kept" test -e "$out/table1.md.tmp.$$"
check "a file in a directory reproduce does not write is kept" test -e "$out/mine/notes.tmp.2147483646"
check "a file of less than a minute ago is kept" test -e "$out/table2.md.tmp.2147483646"
rm -rf "$out/table1.md.tmp.$$" "$out/mine" "$out/table2.md.tmp.2147483646"
check "rerun uses the cache" test "$(grep -c cached "$out/log2")" -eq 24
check "rerun trains nothing" test "$(grep -c -E 'pretrain layer|fine-tune at|refit at' "$out/log2")" -eq 0
# A refit whose result is missing is redone, nothing else, to the same classifier.
cp "$ft1/refit/mlp.ckpt" "$out/refit-before.ckpt"
rm "$ft1/refit/result.txt"
"$cae" reproduce table1 --budget smoke --out "$out" >"$out/log2b" 2>&1
check "a missing refit's rerun exits 0" test $? -eq 0
check "a missing refit is redone, nothing else" \
    test "$(grep -c -E 'pretrain layer|fine-tune at|refit at' "$out/log2b")" -eq 1 -a \
    "$(grep -c 'mnist-cae-0.1 .*refit at' "$out/log2b")" -eq 1
check "the redone refit is the same classifier" cmp -s "$out/refit-before.ckpt" "$ft1/refit/mlp.ckpt"
# The epochs it runs are the kept epoch's: the first with the lowest validation
# error. A log edited so that epochs 1 and 2 tie below epoch 3 asks for one
# epoch, and the refit, whose recipe names its epochs, is redone with one.
cp "$ft1/finetune.dat" "$out/ft-kept.dat"
awk '$1 ~ /^[0-9]+$/ {$3 = ($1 <= 2) ? 0.01 : 0.5} {print}' "$out/ft-kept.dat" >"$ft1/finetune.dat"
"$cae" reproduce table1 --budget smoke --out "$out" >"$out/log2c" 2>&1
check "a refit of another epoch count exits 0" test $? -eq 0
check "... is redone" test "$(grep -c 'mnist-cae-0.1 .*refit at' "$out/log2c")" -eq 1
check "... for the first of the tied epochs" test "$(grep -c '^[0-9]' "$ft1/refit/finetune.dat")" -eq 1 -a \
    "$(awk '$1 == "epochs" {print $2}' "$ft1/refit/result.txt")" = 1
check "... and its test error is read again" grep -q 'mnist-cae-0.1 .*refit (1 epochs): test' "$out/log2c"
mv "$out/ft-kept.dat" "$ft1/finetune.dat" # the next run refits it as it was
# An interrupted fine-tuning (its result missing) is redone, nothing else,
# to the same validation error.
ft="$out/runs/mnist-cae-0.1/ft-lr0.01"
grep valid_error "$ft/result.txt" >"$out/valid-before"
rm "$ft/result.txt"
"$cae" reproduce table1 --budget smoke --out "$out" >"$out/log3" 2>&1
check "resume exits 0" test $? -eq 0
check "resume redoes the one fine-tuning" test "$(grep -c -E 'pretrain layer|fine-tune at' "$out/log3")" -eq 1
check "resume redoes it at lr 0.01" grep -q 'mnist-cae-0.1 .*fine-tune at lr 0.01' "$out/log3"
check "the redone fine-tuning has the same validation error" \
    test "$(grep valid_error "$ft/result.txt")" = "$(cat "$out/valid-before")"
# A redone pretraining redoes what was built on it: both fine-tunings.
rm "$out/runs/mnist-ae/pretrain.txt"
"$cae" reproduce table1 --budget smoke --out "$out" >"$out/log5" 2>&1
check "a redone pretraining exits 0" test $? -eq 0
check "a redone pretraining redoes its fine-tunings" \
    test "$(grep -c -E 'mnist-ae  *(pretrain layer|fine-tune at)' "$out/log5")" -eq 3
# --no-refit tests the chosen runs themselves, as the quick budget does: no
# refit trained or read, each chosen run's own test error in the table, its
# test set read once; the refits stay cached for the runs that use them.
cp "$out/table1.md" "$out/table1-refit.md"
"$cae" reproduce table1 --budget smoke --no-refit --out "$out" >"$out/lognr" 2>&1
check "--no-refit exits 0" test $? -eq 0
check "--no-refit: the plan counts the 12 refits fewer" \
    test "$(plan_ft "$out/log5")" -eq $(($(plan_ft "$out/lognr") + 12))
check "--no-refit trains nothing" test "$(grep -c -E 'pretrain layer|fine-tune at|refit at' "$out/lognr")" -eq 0
check "--no-refit reads the test set of the 12 chosen runs" \
    test "$(grep -c 'chosen on validation: test' "$out/lognr")" -eq 12 -a \
    "$(grep -c 'refit (' "$out/lognr")" -eq 0
check "--no-refit: table1 shows the chosen run's own test error" \
    test "$(awk -F'\t' '$1 == "mnist" && $2 == "cae" {print $5}' "$out/table1.tsv")" = \
    "$(awk '$1 == "test_error" {printf "%.4f", 100 * $2}' "$ft1/test.txt")"
check "--no-refit: table1.md does not speak of a refit" test "$(grep -c 'refit' "$out/table1.md")" -eq 0
"$cae" reproduce table1 --budget smoke --no-refit --out "$out" >"$out/lognrb" 2>&1
check "--no-refit again exits 0" test $? -eq 0
check "... and writes table1" grep -q 'wrote .*table1.tsv' "$out/lognrb"
check "--no-refit again: no test set read" test "$(grep -c 'chosen on validation' "$out/lognrb")" -eq 0
"$cae" reproduce table1 --budget smoke --refit --out "$out" >"$out/lognrc" 2>&1
check "--refit: back to the refits, nothing trained, no test set read" \
    test "$(grep -c -E 'pretrain layer|fine-tune at|refit at|chosen on validation' "$out/lognrc")" -eq 0
check "... and the same table1.md as before --no-refit" cmp -s "$out/table1-refit.md" "$out/table1.md"
"$cae" reproduce table1 --budget smoke --refit --no-refit --out "$out" >"$out/lognrd" 2>"$out/err"
check "--refit with --no-refit exits 2" test $? -eq 2
check "... saying they contradict" grep -q -- '--refit and --no-refit contradict each other' "$out/err"

# Variations generated in part (a manifest, but not every set Table 2 needs)
# are completed, not trusted.
out2="$out/partial"
mkdir -p "$out2/small-data"
"$cae" data make-variations --small --only basic --out "$out2/small-data/variations" >/dev/null 2>&1
check "a partial generation left a manifest" test -s "$out2/small-data/variations/MANIFEST.txt"
check "a partial generation has no rect" test ! -e "$out2/small-data/variations/rect"
"$cae" reproduce table2 --budget smoke --verbose --out "$out2" >"$out/log4" 2>&1
check "table2 over a partial generation exits 0" test $? -eq 0
check "the missing sets were generated" test -s "$out2/small-data/variations/rect/test-labels-idx1-ubyte"
check "--verbose prints every epoch of every run" \
    test "$(grep -c '^    .* epoch  *[0-9]*/[0-9]*  objective' "$out/log4")" -gt "$(grep -c 'fine-tune at' "$out/log4")"
check "without --verbose, no epoch lines" test "$(grep -c ' epoch  *[0-9]*/[0-9]*  objective' "$out/log1")" -eq 0
# A set the manifest says an older recipe of the generator made is made
# again (cae_variation_recipe), with a message naming it.
man="$out2/small-data/variations/MANIFEST.txt"
check "the manifest records each set's recipe" grep -q '^recipe basic 1$' "$man"
sed -i 's/^recipe basic 1$/recipe basic 0/' "$man"
"$cae" reproduce table2 --budget smoke --out "$out2" >"$out/log4b" 2>&1
check "table2 over an outdated set exits 0" test $? -eq 0
check "the outdated set is named" grep -q 'basic was made by recipe 0 of the generator, this cae.s is 1' \
    "$out/log4b"
check "the outdated set was made again" grep -q '^recipe basic 1$' "$man"
check "runs on unchanged bytes stay cached" \
    test "$(grep -c -E 'pretrain layer|fine-tune at' "$out/log4b")" -eq 0 -a \
    "$(grep -c ' cached$' "$out/log4b")" -eq "$(grep -c 'fine-tune at' "$out/log4")"

# Worker processes fill the same cache: the same tables and checkpoints,
# bit for bit (same thread count), and a plan that names them.
out3="$out/jobs"
"$cae" reproduce all --budget smoke --jobs 2 --out "$out3" >"$out/log6" 2>&1
check "--jobs 2 exits 0" test $? -eq 0
check "--jobs 2 used workers" grep -q '^2 worker processes: ' "$out/log6"
check "--jobs 2: the workers trained everything the tables and figures use" \
    test "$(awk '/^table1 on /{t = 1} t && /pretrain layer|fine-tune at|refit at/' "$out/log6" | wc -l)" -eq 0
check "--jobs 2: the workers took every test error the tables show" \
    test "$(awk '/^table1 on /{t = 1} t && /chosen on validation.*: test/' "$out/log6" | wc -l)" -eq 0
check "--jobs 2: the workers took the 16 test errors, one per chosen model" \
    test "$(grep -c 'chosen on validation, refit ([0-9]* epochs): test' "$out/log6")" -eq 16
check "--jobs 2: 16 test files, as without workers" test "$(find "$out3/runs" -name test.txt | wc -l)" -eq 16
check "--jobs 2: the same table1.md" cmp -s "$out/table1.md" "$out3/table1.md"
check "--jobs 2: the same table2.md" cmp -s "$out/table2.md" "$out3/table2.md"
ndiff=0
for f in $(cd "$out3" && find runs -name '*.ckpt'); do cmp -s "$out3/$f" "$out/$f" || ndiff=$((ndiff + 1)); done
check "--jobs 2: every checkpoint identical ($ndiff differ)" test "$ndiff" -eq 0
check "--jobs 2: as many checkpoints" \
    test "$(cd "$out3" && find runs -name '*.ckpt' | wc -l)" -eq "$(cd "$out" && find runs -name '*.ckpt' | wc -l)"
# --grid 2: two lambdas for Table 2's CAE-1, searched as rp_grid_rates_winner
# does: both at rate 0.1, rate 0.01 on the winner, and both at 0.01 when
# that beat 0.1 on the winner; the row is the lowest validation error of
# these (the first on a tie: rate 0.1's, then rate 0.01's, lambdas in grid
# order), the workers choose the same, and the test set is read once.
out5="$out/grid2"
"$cae" reproduce table2 --budget smoke --grid 2 --out "$out5" >"$out/log8" 2>&1
check "--grid 2 exits 0" test $? -eq 0
vof() { awk '$1 == "valid_error" {print $2}' "$out5/runs/$1/ft-lr$2/result.txt" 2>/dev/null; }
lt() { awk -v a="$1" -v b="$2" 'BEGIN {exit !(a < b)}'; }
for set in basic rect; do
    check "--grid 2 pretrained $set's second lambda" test -s "$out5/runs/$set-cae-0.3/pretrain.txt"
    w=0.1
    lt "$(vof $set-cae-0.3 0.1)" "$(vof $set-cae-0.1 0.1)" && w=0.3
    best="$w 0.1" bv=$(vof $set-cae-$w 0.1)
    check "--grid 2: $set's winner at 0.1 also fine-tuned at 0.01" test -n "$(vof $set-cae-$w 0.01)"
    if lt "$(vof $set-cae-$w 0.01)" "$bv"; then
        for l in 0.1 0.3; do
            v=$(vof $set-cae-$l 0.01)
            check "--grid 2: $set's lambda $l fine-tuned at 0.01, which beat 0.1" test -n "$v"
            if lt "$v" "$bv"; then best="$l 0.01" bv=$v; fi
        done
    else
        o=0.1
        [ $w = 0.1 ] && o=0.3
        check "--grid 2: $set's lambda $o not fine-tuned at 0.01, which lost" test -z "$(vof $set-cae-$o 0.01)"
    fi
    check "--grid 2: $set's CAE-1 row is ($best), its lowest validation error" \
        test "$(awk -F'\t' -v s="$set" '$1 == s {print $4, $5}' "$out5/table2.tsv")" = "$best"
    check "--grid 2: $set's CAE-1 test read once, for that row" \
        test "$(find "$out5/runs" -path "*/$set-cae-0.[13]/*" -name test.txt | wc -l)" -eq 1 -a \
        -s "$out5/runs/$set-cae-${best% *}/ft-lr${best#* }/refit/test.txt"
done
"$cae" reproduce table2 --budget smoke --grid 2 --jobs 2 --out "$out5-jobs" >"$out/log9" 2>&1
check "--grid 2 --jobs 2 exits 0" test $? -eq 0
check "--grid 2 --jobs 2: the same table2.md and .tsv" \
    test "$(cmp -s "$out5/table2.md" "$out5-jobs/table2.md"; echo $?)$(cmp -s "$out5/table2.tsv" "$out5-jobs/table2.tsv"; echo $?)" = 00
check "--grid 2 --jobs 2: the tables trained nothing after the workers" \
    test "$(sed -n '/worker processes: .* in /,$p' "$out/log9" | grep -c -E 'pretrain layer|fine-tune at')" -eq 0
# Table 1's searches on two values: the workers choose the rows the tables do.
"$cae" reproduce table1 --budget smoke --grid 2 --out "$out5" >"$out/log10" 2>&1
check "table1 --grid 2 exits 0" test $? -eq 0
"$cae" reproduce table1 --budget smoke --grid 2 --jobs 2 --out "$out5-jobs" >"$out/log11" 2>&1
check "table1 --grid 2 --jobs 2 exits 0" test $? -eq 0
check "table1 --grid 2 --jobs 2: the same table1.tsv" cmp -s "$out5/table1.tsv" "$out5-jobs/table1.tsv"
check "table1 --grid 2 --jobs 2: the tables trained nothing after the workers" \
    test "$(sed -n '/worker processes: .* in /,$p' "$out/log11" | grep -c -E 'pretrain layer|fine-tune at')" -eq 0
check "table1 --grid 2: the grid is named" grep -q 'grid of 2 value' "$out5/table1.md"
"$cae" reproduce table2 --budget smoke --grid 5 --out "$out5" 2>"$out/err"
check "--grid 5 is a usage error" test $? -eq 2

# --hidden2: the first layer on the variations gets its own units, the
# second keeps the budget's (smoke: 100); a cached run of the budget's width
# is redone, saying why, and the numbers move.
out6="$out/hidden2"
mkdir -p "$out6" && cp -r "$out/runs" "$out6/runs"
"$cae" reproduce table2 --budget smoke --hidden2 60 --out "$out6" >"$out/log12" 2>&1
check "--hidden2 60 exits 0" test $? -eq 0
"$cae" export --model "$out6/runs/basic-cae-0.1-L2/pretrain.ckpt" --npy "$out/npy-h" >/dev/null 2>&1
check "--hidden2 60: CAE-2's first layer has 60 units" grep -a -q "'shape': (784, 60)" "$out/npy-h/L1.W.npy"
check "--hidden2 60: its second layer keeps the budget's 100" grep -a -q "'shape': (60, 100)" "$out/npy-h/L2.W.npy"
check "--hidden2 60: every Table 2 pretraining redone (3 layers on each of 2 sets)" \
    test "$(grep -c 'pretrain layer' "$out/log12")" -eq 6
check "--hidden2 60: no fine-tuning taken from the cache" test "$(grep -c 'lr 0.*cached' "$out/log12")" -eq 0
check "--hidden2 60: says why, for each first layer" \
    test "$(grep -c -E 'runs/(basic|rect)-cae-0.1/pretrain.txt: made by another budget' "$out/log12")" -eq 2
check "--hidden2 60: table2.md names the units" grep -q 'first layers of 60 units (the second of 100)' "$out6/table2.md"
check "--hidden2 60 moved Table 2's numbers" test "$(cmp -s "$out/table2.tsv" "$out6/table2.tsv"; echo $?)" = 1
"$cae" reproduce table2 --budget smoke --hidden2 60 --out "$out6" >"$out/log13" 2>&1
check "--hidden2 60 again trains nothing" \
    test "$(grep -c -E 'pretrain layer|fine-tune at' "$out/log13")" -eq 0 -a "$(grep -c cached "$out/log13")" -gt 0
out7="$out/hidden2-same"
mkdir -p "$out7" && cp -r "$out/runs" "$out7/runs"
"$cae" reproduce table2 --budget smoke --hidden2 100 --out "$out7" >"$out/log14" 2>&1
check "--hidden2 100, the smoke budget's own width, keeps the cache" \
    test "$(grep -c -E 'pretrain layer|fine-tune at' "$out/log14")" -eq 0 -a "$(grep -c cached "$out/log14")" -gt 0
"$cae" reproduce table2 --budget smoke --hidden2 0 --out "$out6" 2>"$out/err"
check "--hidden2 0 is a usage error" test $? -eq 2
# The full budget's own first layers on the variations are 2000 units wide:
# its plan (printed before anything loads; an empty data directory ends the
# run there) is --hidden2 2000's, not --hidden2 1000's.
mkdir -p "$out/empty"
for h in "" 2000 1000; do
    "$cae" reproduce table2 --budget full ${h:+--hidden2 $h} --data-dir "$out/empty" --out "$out/full$h" \
        >"$out/plan$h" 2>&1
done
check "--data-dir: the data is looked for where it says" grep -qF "$out/empty" "$out/plan"
check "the full budget's plan is its 2000-unit one" cmp -s <(head -1 "$out/plan") <(head -1 "$out/plan2000")
check "--hidden2 1000 changes the full budget's plan" \
    test "$(head -1 "$out/plan" | cmp -s - <(head -1 "$out/plan1000"); echo $?)" = 1

# A run that fails in a worker stops the others from taking new runs and the
# reproduction with a message naming it, a non-zero exit and no table;
# nothing hangs.
out4="$out/jobs-fail"
mkdir -p "$out4/runs"
: >"$out4/runs/mnist-rbm" # a file where the run's directory must go
timeout 600 "$cae" reproduce table1 --budget smoke --jobs 2 --out "$out4" >"$out/log7" 2>&1
rc=$?
check "--jobs 2 with a failing run exits 1 (rc $rc)" test $rc -eq 1
check "--jobs 2: the failing run is named" grep -q 'runs/mnist-rbm' "$out/log7"
check "--jobs 2: no table after a failed run" test ! -e "$out4/table1.md"
check "--jobs 2: no claims file after a failed run" test ! -e "$out4/claims-table1.md"
check "--jobs 2: no temporary file left" test -z "$(find "$out4" -maxdepth 1 -name '*.tmp.*')"
check "--jobs 2: no worker is left behind" \
    test "$(pgrep -f -- "--out $out4" | wc -l)" -eq 0
"$cae" reproduce table1 --budget smoke --jobs 0 --out "$out3" 2>"$out/err"
check "--jobs 0 is a usage error" test $? -eq 2

# Usage errors.
"$cae" reproduce table9 --budget smoke --out "$out" 2>"$out/err"
check "unknown target is a usage error" test $? -eq 2
check "unknown target is named" grep -q "table9" "$out/err"
"$cae" reproduce table1 --budget huge --out "$out" 2>"$out/err"
check "bad budget is a usage error" test $? -eq 2
check "bad budget is named" grep -q "huge" "$out/err"
"$cae" reproduce table1 --out "$out" 2>"$out/err"
check "missing budget is a usage error" test $? -eq 2

# --threads: the figures (cached runs, curves, spectra and their SVDs) run
# on the threads given.
T=$out
. "$(dirname "$0")/threads.sh"
one=$(threads_max "$cae" reproduce figures --budget smoke --out "$out" --threads 1)
two=$(threads_max "$cae" reproduce figures --budget smoke --out "$out" --threads 2)
check "--threads 2: the figures run more threads at once ($two) than with --threads 1 ($one)" \
    test "$two" -ge 2 -a "$two" -gt "$one"

# A directory made with another seed (or budget) is not reused: every step
# is redone, with a line naming why, and the numbers follow the new seed.
cp -r "$out/runs/mnist-ae" "$out/mnist-ae-seed1"
"$cae" reproduce table1 --budget smoke --seed 2 --out "$out" >"$out/log7" 2>&1
check "another seed exits 0" test $? -eq 0
check "another seed uses no cached step" test "$(grep -c cached "$out/log7")" -eq 0
check "another seed redoes the 12 pretrainings" test "$(grep -c 'pretrain layer' "$out/log7")" -eq 12
check "another seed redoes the 24 fine-tunings" test "$(grep -c 'fine-tune at' "$out/log7")" -eq 24
check "another seed says why" \
    test "$(grep -c 'runs/mnist-ae/pretrain.txt: made by another budget, seed, --hidden2 or protocol' "$out/log7")" -eq 1
check "another seed trained another encoder (its |J| moved)" \
    test "$(grep jac_norm "$out/runs/mnist-ae/pretrain.txt")" != "$(grep jac_norm "$out/mnist-ae-seed1/pretrain.txt")"
# A fine-tuning whose recipe was changed (as by another patience) is redone
# alone, on the cached encoder; a file without a recipe is not trusted.
ft="$out/runs/mnist-ae/ft-lr0.1"
sed -i 's/^recipe .*/recipe 12345/' "$ft/result.txt"
sed -i '/^recipe /d' "$out/runs/mnist-rbm/pretrain.txt"
sed -i '/^recipe /d' "$out/runs/mnist-cae-0.1/ft-lr0.01/result.txt"
"$cae" reproduce table1 --budget smoke --seed 2 --out "$out" >"$out/log8" 2>&1
check "a changed recipe exits 0" test $? -eq 0
check "a changed recipe redoes that fine-tuning, the recipe-less pretraining with its 2 and fine-tuning" \
    test "$(grep -c -E 'pretrain layer|fine-tune at' "$out/log8")" -eq 5
check "the redone fine-tuning is mnist-ae's at lr 0.1" grep -q 'mnist-ae .*fine-tune at lr 0.1' "$out/log8"
check "a file without a recipe is named" grep -q 'runs/mnist-rbm/pretrain.txt: has no recipe' "$out/log8"
check "a result without a recipe is named" grep -q 'mnist-cae-0.1/ft-lr0.01/result.txt: has no recipe' "$out/log8"
check "every redone step has this run's recipe again" \
    test "$(grep -h '^recipe ' "$out"/runs/mnist-*/pretrain.txt | sort -u | wc -l)" -eq 1

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
