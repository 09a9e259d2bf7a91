#!/usr/bin/env bash
# Kill-and-resume and run-to-run determinism of `cae pretrain` / `cae finetune`.
#
#   usage: tests/test_resume.sh PATH/TO/cae     (CAE_DATA_DIR: fetched MNIST)
#
# For each case: run A to the end; run B with the same options, SIGKILL it in
# the middle of an epoch (after its k-th checkpoint: each atomic save is a new
# file, so the k-th change of the file's inode/mtime marks the end of epoch k;
# then sleep a quarter of the last epoch's duration), resume B with --resume, and
# compare A and B byte for byte (a checkpoint is a pure function of the
# description, the tensors, the optimizer state and the RNG, so identical
# files mean bit-identical parameters, velocities and RNG). Cases: cae with
# momentum; dae-b (its masks come from the task RNG: only a restored RNG
# gives the same file); rbm with PCD (the persistent chain); fine-tuning with
# momentum and patience, killed after a non-best epoch (the early-stopping
# state must survive). Then: resume option mismatches are one-line usage
# errors, and two identical runs give identical checkpoints with 1 thread and
# with 2 (and 1 thread vs 2 is reported: see docs/DETERMINISM.md).
#
# Prints one line per check and "N passed, M failed"; exits 1 on any failure,
# 77 (CTest: skipped) when MNIST is not there.
set -u
CAE=${1:?usage: test_resume.sh PATH/TO/cae}
DATA=${CAE_DATA_DIR:-data}
if [ ! -f "$DATA/mnist/train-images-idx3-ubyte" ] && [ ! -f "$DATA/mnist/train-images-idx3-ubyte.gz" ]; then
    echo "skipped: no MNIST in $DATA (scripts/fetch-data.sh)"
    exit 77
fi
export CAE_DATA_DIR=$DATA
T=$(mktemp -d "${TMPDIR:-/tmp}/cae-resume.XXXXXX")
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

now() { date +%s.%N; }

# wait_saves FILE K PID: until FILE has been (re)written K times while PID
# runs; prints the seconds between the last two saves. Status 1 if PID ended.
wait_saves() {
    local f=$1 k=$2 pid=$3 n=0 last="" cur t_prev t_now
    t_prev=$(now)
    while [ "$n" -lt "$k" ]; do
        kill -0 "$pid" 2>/dev/null || return 1
        cur=$(stat -c '%i %y' "$f" 2>/dev/null || true)
        if [ -n "$cur" ] && [ "$cur" != "$last" ]; then
            last=$cur
            n=$((n + 1))
            t_now=$(now)
            [ "$n" -lt "$k" ] && t_prev=$t_now
        fi
        sleep 0.01
    done
    awk -v a="$t_prev" -v b="$t_now" 'BEGIN { printf "%.3f\n", b - a }'
}

# kill_resume NAME CMD WATCH K -- OPTIONS...: A uninterrupted; B killed in
# epoch K+1 (WATCH: the file saved every epoch, relative to --out; "" = the
# output itself); B resumed; A and B compared byte for byte.
kill_resume() {
    local name=$1 cmd=$2 watch=$3 k=$4
    shift 5
    local A=$T/$name.A B=$T/$name.B
    if ! "$CAE" "$cmd" "$@" --out "$A" >"$A.log" 2>&1; then
        bad "$name: the uninterrupted run failed" "$A.log"
        return
    fi
    # Kill a quarter of an epoch after checkpoint k; should the machine speed
    # up so much that B finishes first, try again with shorter sleeps.
    local try epoch st=0
    for try in 4 16 0; do
        rm -f "$B" "$B$watch"
        "$CAE" "$cmd" "$@" --out "$B" >"$B.log" 2>&1 &
        local pid=$!
        if ! epoch=$(wait_saves "$B$watch" "$k" "$pid"); then
            wait "$pid"
            st=$?
            continue
        fi
        [ "$try" -gt 0 ] && sleep "$(awk -v e="$epoch" -v d="$try" 'BEGIN { printf "%.3f\n", e / d }')"
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
        st=$?
        [ "$st" -eq 137 ] && break
    done
    if [ "$st" -ne 137 ]; then
        bad "$name: B was never killed before it ended (status $st): epochs too short" "$B.log"
        return
    fi
    if ! "$CAE" "$cmd" "$@" --out "$B" --resume >"$B.resume.log" 2>&1; then
        bad "$name: the resumed run failed" "$B.resume.log"
        return
    fi
    local at
    at=$(sed -n 's/^resuming .* after epoch \([0-9]*\)$/\1/p' "$B.resume.log")
    if [ -z "$at" ]; then
        bad "$name: the resumed run did not resume" "$B.resume.log"
        return
    fi
    if [ -n "$watch" ] && [ -e "$B$watch" ]; then
        bad "$name: $watch left behind after the resumed run ended"
        return
    fi
    if cmp -s "$A" "$B"; then
        ok "$name: killed ${epoch}s/${try} after epoch $k's checkpoint, resumed after epoch $at: identical to the uninterrupted run"
    else
        bad "$name: killed after epoch $k, resumed after epoch $at: the checkpoints differ" \
            "$A.log" "$B.resume.log"
    fi
}

P="--data mnist --hidden 100 --momentum 0.5 --threads 1"
kill_resume cae pretrain "" 2 -- --model cae $P --limit 20000 --epochs 4
kill_resume dae-b pretrain "" 2 -- --model dae-b $P --limit 20000 --epochs 4
kill_resume rbm-pcd pretrain "" 2 -- --model rbm --pcd $P --limit 10000 --epochs 4 --lr 0.05

# Fine-tuning from cae.A: epochs 1-3 improve the validation error, epoch 4
# does not (seed 1): the kill lands in epoch 5, after a non-best epoch.
if [ -f "$T/cae.A" ]; then
    kill_resume finetune finetune .resume 4 -- --init "$T/cae.A" --data mnist --limit 10000 \
        --epochs 7 --lr 0.1 --momentum 0.5 --patience 2 --threads 1
    if grep -q "epoch   4/7" "$T/finetune.A.log" && ! grep -q "epoch   4/7.*(best)" "$T/finetune.A.log"; then
        ok "finetune: epoch 4 was not a best epoch (the early-stopping state was in flight)"
    else
        echo "note  finetune: epoch 4 was a best epoch on this build: the kill did not test since_best > 0"
    fi
fi

# run NAME WANT_RC ERR_SUBSTR -- ARGS...: status and a one-line reason.
run() {
    local name=$1 want=$2 epat=$3
    shift 4
    "$CAE" "$@" >"$T/out" 2>"$T/err"
    local rc=$?
    if [ "$rc" -ne "$want" ]; then
        bad "$name: exit status $rc, expected $want" "$T/out" "$T/err"
    elif [ -n "$epat" ] && ! grep -qF -- "$epat" "$T/err"; then
        bad "$name: stderr lacks '$epat'" "$T/err"
    elif [ "$want" -ne 0 ] && [ "$(wc -l <"$T/err")" -ne 1 ]; then
        bad "$name: expected a one-line reason on stderr" "$T/err"
    else
        ok "$name"
    fi
}

# Option mismatches on --resume (the checkpoint is left as it was).
if [ -f "$T/cae.A" ]; then
    cp "$T/cae.A" "$T/m.ckpt"
    M="--model cae $P --limit 20000 --epochs 4 --out $T/m.ckpt --resume"
    run "resume: --lr differs" 2 "--lr is 0.02" -- pretrain $M --lr 0.02
    run "resume: --seed differs" 2 "--seed is 7" -- pretrain $M --seed 7
    run "resume: --limit differs" 2 "--limit is 9000" -- pretrain $M --limit 9000
    run "resume: --hidden differs" 2 "--hidden is 50" -- pretrain $M --hidden 50
    run "resume: --model differs" 2 "--model is dae-b" -- pretrain --model dae-b $P --limit 20000 --epochs 4 --out "$T/m.ckpt" --resume
    run "resume: --epochs below the epochs done" 2 "4 epochs are done" -- pretrain $M --epochs 3
    cmp -s "$T/cae.A" "$T/m.ckpt" && ok "resume: a refused resume leaves the checkpoint alone" ||
        bad "resume: a refused resume changed the checkpoint"
    run "resume: a finished run resumes to itself" 0 "" -- pretrain $M
    cmp -s "$T/cae.A" "$T/m.ckpt" && ok "resume: resuming a finished run changes nothing" ||
        bad "resume: resuming a finished run changed the checkpoint"
    run "resume: no checkpoint yet starts at epoch 1" 0 "" -- pretrain --model cae $P --limit 500 --epochs 1 --out "$T/new.ckpt" --resume
    grep -qF "starting at epoch 1" "$T/out" && ok "resume: says it starts at epoch 1" || bad "resume: no 'starting at epoch 1'" "$T/out"
fi
if [ -f "$T/finetune.A" ]; then
    run "resume: finetune after the run ended" 2 "has ended" -- finetune --init "$T/cae.A" --data mnist \
        --limit 10000 --epochs 7 --lr 0.1 --momentum 0.5 --patience 2 --threads 1 --out "$T/finetune.A" --resume
fi

# Determinism: identical runs give identical checkpoints (1 and 2 threads).
D="--model cae --data mnist --limit 2000 --hidden 1000 --batch 50 --epochs 2 --momentum 0.5"
for t in 1 2; do
    "$CAE" pretrain $D --threads $t --out "$T/det$t.a" >/dev/null 2>&1 &&
        "$CAE" pretrain $D --threads $t --out "$T/det$t.b" >/dev/null 2>&1
    if cmp -s "$T/det$t.a" "$T/det$t.b"; then
        ok "determinism: two runs with --threads $t give identical checkpoints"
    else
        bad "determinism: two runs with --threads $t differ"
    fi
done
if cmp -s "$T/det1.a" "$T/det2.a"; then
    echo "note  determinism: --threads 1 and --threads 2 give identical checkpoints"
else
    echo "note  determinism: --threads 1 and --threads 2 differ (see docs/DETERMINISM.md)"
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
