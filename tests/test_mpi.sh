#!/usr/bin/env bash
# Data-parallel `cae pretrain` / `cae finetune` under mpirun (2 ranks).
#
#   usage: tests/test_mpi.sh PATH/TO/cae PATH/TO/ckpt_compare WITH_MPI DOUBLE
#          (CAE_DATA_DIR: fetched MNIST; WITH_MPI, DOUBLE: ON or OFF, as built)
#
# - 2 ranks with global batch B against 1 process with batch B, 6 steps over
#   2 epochs (reshuffled), with unequal slices (B = 21: 10 + 11), a last
#   batch of 5 rows (2 + 3), momentum, and for fine-tuning weight decay:
#   within 1e-12 in the double build, within the summation-order bound of
#   tests/test_dist.c in float (ckpt_compare --order); a last batch of one
#   row (rank 0's slice empty) too; mpirun -np 1 gives the one-process file;
# - the ranks' states are identical after every epoch (CAE_RANK_CHECKPOINTS:
#   each rank writes its own; the files are compared byte for byte);
# - kill rank 1 (SIGKILL) in the middle of an epoch: every rank stops within
#   30 s, rank 0 says where and which epoch the checkpoint holds, the
#   checkpoint loads, no temporary file is left, and --resume with 2 ranks
#   finishes the run with the file of an uninterrupted 2-rank run; the same
#   with mpirun --enable-recovery, where no launcher ends the others and
#   their collectives' timeout (--mpi-timeout 10) does;
# - --resume with another number of ranks is refused, naming it;
# - a rank that cannot read the data says so and every rank exits non-zero;
# - a rank started with another --lr is caught before the first step;
# - commands other than pretrain and finetune refuse to run as ranks;
# - examples/data_parallel (the library used by a program of ours) runs.
#
# Prints one line per check and "N passed, M failed"; exits 1 on any
# failure, 77 (CTest: skipped) without MPI, mpirun or MNIST.
set -u
CAE=${1:?usage: test_mpi.sh PATH/TO/cae PATH/TO/ckpt_compare WITH_MPI}
CMP=${2:?}
WITH_MPI=${3:-OFF}
REAL=float
case "${4:-OFF}" in ON | on | 1 | TRUE | true) REAL=double ;; esac
case "$WITH_MPI" in ON | on | 1 | TRUE | true) ;; *)
    echo "skipped: cae was built without MPI (CAE_WITH_MPI=OFF)"
    exit 77
    ;;
esac
if ! command -v mpirun >/dev/null; then
    echo "skipped: no mpirun (scripts/install-deps.sh installs Open MPI)"
    exit 77
fi
DATA=${CAE_DATA_DIR:-data}
if [ ! -f "$DATA/mnist/train-images-idx3-ubyte" ] && [ ! -f "$DATA/mnist/train-images-idx3-ubyte.gz" ]; then
    echo "skipped: no MNIST in $DATA (scripts/fetch-data.sh)"
    exit 77
fi
export CAE_DATA_DIR=$DATA
T=$(mktemp -d "${TMPDIR:-/tmp}/cae-mpi.XXXXXX")
trap 'rm -rf "$T"' EXIT
MPIRUN=(mpirun --oversubscribe --bind-to none)
if [ -n "${ASAN_OPTIONS:-}" ]; then
    # Under ASan (scripts/test.sh): full stacks, and Open MPI's components kept
    # loaded until exit, so its leaks name its libraries (tests/lsan.supp).
    export ASAN_OPTIONS="$ASAN_OPTIONS:fast_unwind_on_malloc=0"
    export LSAN_OPTIONS="${LSAN_OPTIONS:-}${LSAN_OPTIONS:+:}print_suppressions=0"
    export OMPI_MCA_mca_base_component_disable_dlclose=1 PMIX_MCA_mca_base_component_disable_dlclose=1
fi
[ "$(id -u)" -eq 0 ] && MPIRUN+=(--allow-run-as-root)
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok    $1"; }
bad() {
    fail=$((fail + 1))
    echo "FAIL  $1"
    shift
    for f in "$@"; do [ -s "$f" ] && sed 's/^/      | /' "$f" | head -25; done
}

# compare NAME A B STEPS LR MOMENTUM BATCH LIMIT: within the bound (float) or 1e-12 (double).
compare() {
    local name=$1 a=$2 b=$3
    local line
    if [ "$REAL" = double ]; then
        line=$("$CMP" "$a" "$b" --tol 1e-12 2>&1)
    else
        line=$("$CMP" "$a" "$b" --order "$4" "$5" "$6" "$7" mnist "$8" 2>&1)
    fi
    if [ $? -eq 0 ]; then ok "$name: $line"; else bad "$name: $line"; fi
}

# ------------------------------------------------ 2 ranks = 1 process
P="--model cae --data mnist --hidden 100 --lr 0.1 --momentum 0.5 --batch 21 --epochs 2 --threads 1"
"$CAE" pretrain $P --limit 47 --out "$T/one.ckpt" >"$T/one.log" 2>&1 || bad "one process failed" "$T/one.log"
mkdir -p "$T/ranks"
if CAE_RANK_CHECKPOINTS=$T/ranks "${MPIRUN[@]}" -np 2 "$CAE" pretrain $P --limit 47 --check-every 1 \
    --out "$T/two.ckpt" >"$T/two.log" 2>&1; then
    compare "pretrain: 2 ranks vs 1 process, B 21 (10 + 11), last batch 5 (2 + 3), 6 steps" \
        "$T/one.ckpt" "$T/two.ckpt" 6 0.1 0.5 21 47
    if cmp -s "$T/ranks/rank0.ckpt" "$T/ranks/rank1.ckpt"; then
        ok "pretrain: rank 0's and rank 1's states are identical after the last epoch"
    else
        bad "pretrain: the ranks' states differ" "$T/two.log"
    fi
    grep -q "data-parallel: 2 ranks x 1 thread, global batch 21 (10 to 11 per rank)" "$T/two.log" &&
        ok "pretrain: rank 0 describes the ranks" || bad "pretrain: no data-parallel line" "$T/two.log"
    [ "$(grep -c '^epoch' "$T/two.log")" -eq 2 ] && ok "pretrain: only rank 0 prints" ||
        bad "pretrain: epoch lines from more than one rank" "$T/two.log"
else
    bad "pretrain: 2 ranks failed" "$T/two.log"
fi
"$CAE" pretrain $P --limit 43 --out "$T/one43.ckpt" >/dev/null 2>&1
if "${MPIRUN[@]}" -np 2 "$CAE" pretrain $P --limit 43 --out "$T/two43.ckpt" >"$T/two43.log" 2>&1; then
    compare "pretrain: a last batch of one row (rank 0's slice empty)" "$T/one43.ckpt" "$T/two43.ckpt" 6 0.1 0.5 21 43
else
    bad "pretrain: 2 ranks, limit 43 failed" "$T/two43.log"
fi
if "${MPIRUN[@]}" -np 1 "$CAE" pretrain $P --limit 47 --out "$T/np1.ckpt" >"$T/np1.log" 2>&1 &&
    cmp -s "$T/one.ckpt" "$T/np1.ckpt"; then
    ok "pretrain: mpirun -np 1 writes the one-process checkpoint byte for byte"
else
    bad "pretrain: mpirun -np 1 differs from one process" "$T/np1.log"
fi
F="--init $T/one.ckpt --data mnist --lr 0.1 --momentum 0.5 --batch 21 --epochs 2 --patience 0 --wd 0.001 --threads 1 --limit 47"
"$CAE" finetune $F --out "$T/ft1.ckpt" >"$T/ft1.log" 2>&1 || bad "finetune: one process failed" "$T/ft1.log"
rm -f "$T"/ranks/*
if CAE_RANK_CHECKPOINTS=$T/ranks "${MPIRUN[@]}" -np 2 "$CAE" finetune $F --out "$T/ft2.ckpt" >"$T/ft2.log" 2>&1; then
    compare "finetune (wd, momentum): 2 ranks vs 1 process, 6 steps" "$T/ft1.ckpt" "$T/ft2.ckpt" 6 0.1 0.5 21 47
    cmp -s "$T/ranks/rank0.ckpt" "$T/ranks/rank1.ckpt" && ok "finetune: the ranks' states are identical" ||
        bad "finetune: the ranks' states differ"
    [ -e "$T/ft2.ckpt.resume" ] && bad "finetune: OUT.resume left behind" || ok "finetune: OUT.resume removed at the end"
    grep -q "^test error" "$T/ft2.log" && ok "finetune: rank 0 reports the test error" || bad "finetune: no test error" "$T/ft2.log"
else
    bad "finetune: 2 ranks failed" "$T/ft2.log"
fi

# ------------------------------------------------------------ faults
# rank_pid MPIRUN_PID R: the pid of rank R among mpirun's children.
rank_pid() {
    local p
    for p in $(pgrep -P "$1"); do
        if tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$2"; then
            echo "$p"
            return 0
        fi
    done
    return 1
}
K="--model cae --data mnist --hidden 200 --momentum 0.5 --threads 1 --limit 10000 --epochs 8 --check-every 50"
"${MPIRUN[@]}" -np 2 "$CAE" pretrain $K --out "$T/k.A" >"$T/k.A.log" 2>&1 || bad "kill: the uninterrupted 2-rank run failed" "$T/k.A.log"

# kill_rank NAME STATUS EXTRA_MPIRUN_OPTS... : run B, SIGKILL rank 1 a quarter of
# an epoch after its 2nd checkpoint; mpirun must end within 30 s, with a
# non-zero status when STATUS is "nonzero" (under --enable-recovery Open MPI
# 4 exits 0 even after MPI_Abort: "any").
kill_rank() {
    local name=$1 want=$2
    shift 2
    local B=$T/k.$name
    rm -f "$B" "$B".tmp.*
    "${MPIRUN[@]}" "$@" -np 2 "$CAE" pretrain $K --mpi-timeout 10 --out "$B" >"$B.log" 2>&1 &
    local mp=$! n=0 last="" cur t0 t1=0 t2=0
    while [ "$n" -lt 2 ]; do
        kill -0 "$mp" 2>/dev/null || break
        cur=$(stat -c '%i %y' "$B" 2>/dev/null || true)
        if [ -n "$cur" ] && [ "$cur" != "$last" ]; then
            last=$cur
            n=$((n + 1))
            t1=$t2
            t2=$(date +%s.%N)
        fi
        sleep 0.01
    done
    local r1
    if [ "$n" -lt 2 ] || ! r1=$(rank_pid "$mp" 1); then
        wait "$mp"
        bad "kill ($name): the run ended or rank 1 was not found before its second checkpoint" "$B.log"
        return 1
    fi
    sleep "$(awk -v a="$t1" -v b="$t2" 'BEGIN { printf "%.3f\n", (b - a) / 4 }')"
    kill -KILL "$r1"
    t0=$(date +%s)
    local waited=0
    while kill -0 "$mp" 2>/dev/null && [ "$waited" -lt 60 ]; do sleep 0.2; waited=$(( $(date +%s) - t0 )); done
    if kill -0 "$mp" 2>/dev/null; then
        kill -KILL "$mp" 2>/dev/null
        pkill -KILL -P "$mp" 2>/dev/null
        bad "kill ($name): the other rank still runs 60 s after rank 1 died" "$B.log"
        return 1
    fi
    wait "$mp"
    local st=$?
    { [ "$st" -ne 0 ] || [ "$want" = any ]; } && [ "$waited" -le 30 ] && ok "kill ($name): every rank stopped ${waited}s after rank 1 died (mpirun status $st)" ||
        bad "kill ($name): status $st after ${waited}s" "$B.log"
    return 0
}

if kill_rank launcher nonzero; then
    B=$T/k.launcher
    # Rank 1 dies a quarter-epoch after the 2nd checkpoint, in epoch 3 unless the
    # machine is loaded enough to delay the kill past an epoch's end (or lands it
    # between a save and the next step: "after epoch N"): the epoch the message
    # names is read from it, and must be after the 2nd and before the last.
    held=$(sed -n "s/.*; .* holds epoch \([0-9]*\) (--resume continues from it)$/\1/p" "$B.log" | tail -n 1)
    if [ -n "$held" ] && [ "$held" -ge 2 ] && [ "$held" -lt 8 ] &&
        grep -q -E "cae pretrain: stopped by signal 15 (in epoch $((held + 1)) \(.* examples done\)|after epoch $held): the MPI launcher ends every rank when one fails or is interrupted; $B holds epoch $held \(--resume continues from it\)" "$B.log"; then
        ok "kill (launcher): rank 0 says where it stood and that $B holds epoch $held"
    else
        bad "kill (launcher): no message from rank 0" "$B.log"
        held=2
    fi
    compgen -G "$B.tmp.*" >/dev/null && bad "kill (launcher): a temporary checkpoint is left" || ok "kill (launcher): no temporary checkpoint left"
    if "$CMP" "$B" "$B" --same >/dev/null 2>&1; then ok "kill (launcher): the checkpoint loads"; else bad "kill (launcher): the checkpoint does not load"; fi
    if "${MPIRUN[@]}" -np 2 "$CAE" pretrain $K --mpi-timeout 10 --out "$B" --resume >"$B.resume.log" 2>&1 &&
        grep -q "^resuming .* after epoch $held" "$B.resume.log" && cmp -s "$T/k.A" "$B"; then
        ok "kill (launcher): --resume with 2 ranks ends with the uninterrupted run's file"
    else
        bad "kill (launcher): the resumed run failed or differs" "$B.resume.log"
    fi
fi
if kill_rank recovery any --enable-recovery; then
    B=$T/k.recovery
    grep -q "no answer within 10 s: a rank has died or hangs" "$B.log" &&
        ok "kill (--enable-recovery): the survivor's collective timed out and said so" ||
        bad "kill (--enable-recovery): no timeout message" "$B.log"
    if "$CMP" "$B" "$B" --same >/dev/null 2>&1 &&
        "${MPIRUN[@]}" -np 2 "$CAE" pretrain $K --out "$B" --resume >"$B.resume.log" 2>&1 && cmp -s "$T/k.A" "$B"; then
        ok "kill (--enable-recovery): the checkpoint loads and --resume ends with the uninterrupted run's file"
    else
        bad "kill (--enable-recovery): the checkpoint or its resume is wrong" "$B.resume.log"
    fi
fi

# ------------------------------------------------------------ refusals
cp "$T/k.A" "$T/r.ckpt"
"$CAE" pretrain $K --out "$T/r.ckpt" --resume >"$T/r.log" 2>"$T/r.err"
st=$?
[ "$st" -eq 2 ] && grep -q "the number of ranks (mpirun -np) is 1, the checkpoint has 2" "$T/r.err" &&
    ok "resume: one process refuses a 2-rank checkpoint, naming the ranks" ||
    bad "resume: one process on a 2-rank checkpoint: status $st" "$T/r.err"
cp "$T/one.ckpt" "$T/r1.ckpt"
"${MPIRUN[@]}" -np 2 "$CAE" pretrain $P --limit 47 --out "$T/r1.ckpt" --resume >"$T/r1.log" 2>&1
st=$?
[ "$st" -ne 0 ] && grep -q "the number of ranks (mpirun -np) is 2, the checkpoint has 1" "$T/r1.log" &&
    [ "$(grep -c 'the number of ranks' "$T/r1.log")" -eq 1 ] &&
    ok "resume: 2 ranks refuse a one-process checkpoint (said once)" ||
    bad "resume: 2 ranks on a one-process checkpoint: status $st" "$T/r1.log"
cmp -s "$T/one.ckpt" "$T/r1.ckpt" && ok "resume: the refused checkpoint is left alone" || bad "resume: the refused checkpoint changed"

"${MPIRUN[@]}" -np 1 "$CAE" pretrain $P --limit 47 --out "$T/d.ckpt" --data-dir "$DATA" : \
    -np 1 "$CAE" pretrain $P --limit 47 --out "$T/d.ckpt" --data-dir "$T/nowhere" >"$T/d.log" 2>&1
st=$?
[ "$st" -ne 0 ] && grep -q "^\[rank 1\] cae pretrain: --data mnist: .*nowhere" "$T/d.log" &&
    grep -q "cae pretrain: rank 1 failed" "$T/d.log" && [ ! -e "$T/d.ckpt" ] &&
    ok "data: rank 1 cannot read the data, says so, and every rank exits non-zero (status $st)" ||
    bad "data: status $st" "$T/d.log"

"${MPIRUN[@]}" -np 1 "$CAE" pretrain $P --limit 47 --out "$T/lr.ckpt" : \
    -np 1 "$CAE" pretrain $P --limit 47 --out "$T/lr.ckpt" --lr 0.2 >"$T/lr.log" 2>&1
st=$?
[ "$st" -ne 0 ] && grep -q "the parameters or the run of rank 1 differ from rank 0's at the start of epoch 1" "$T/lr.log" &&
    ok "diverged: a rank with another --lr is caught before the first step" || bad "diverged: status $st" "$T/lr.log"

"${MPIRUN[@]}" -np 2 "$CAE" eval --model "$T/one.ckpt" >"$T/e.log" 2>&1
st=$?
[ "$st" -ne 0 ] && [ "$(grep -c 'cae eval runs as one process' "$T/e.log")" -eq 1 ] &&
    ok "eval: refuses to run as 2 ranks (said once)" || bad "eval under mpirun: status $st" "$T/e.log"

# The library's own use (examples/mpi/data_parallel.c) under 2 ranks.
EX=$(dirname "$CAE")/examples/data_parallel
if [ -x "$EX" ]; then
    if "${MPIRUN[@]}" -np 2 "$EX" --epochs 2 >"$T/ex.log" 2>&1 && grep -q "^2 ranks, 2 epochs" "$T/ex.log"; then
        ok "examples/data_parallel: a program of ours trains as 2 ranks"
    else
        bad "examples/data_parallel failed" "$T/ex.log"
    fi
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
