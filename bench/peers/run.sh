#!/usr/bin/env bash
# bench/peers/run.sh — CAE training side by side: our steps (bench/steps),
# PyTorch (torch_steps.py) and NumPy (numpy_steps.py), in one session.
#
#   1. correctness first: one batch + W dumped by bench/steps --dump; our loss
#      and gradients vs torch autograd (float32 and float64), numpy's
#      hand-derived gradients vs finite differences, torch and ours. Any
#      failure stops the run before timing.
#   2. GEMM rates through cae_gemm (the roofline), at the start and the end.
#   3. blocks of (threads, B): ours, then torch, then numpy, each a separate
#      process (OpenBLAS's and OpenMP's thread pools keep spinning after
#      calls: never two libraries' pools in one process or at once). The
#      grid is timed ROUNDS times (default 5), even rounds in the reverse
#      block order; each program's cell is its best round. This
#      2-core VM has slow spells lasting minutes (every program's rate drops
#      10-40%): a spell then costs a cell only if it hits the same cell in
#      every round, and it hits ours and the peers alike.
#   4. the whole epoch of CAE pretraining on MNIST (B = 20), ours vs torch,
#      per thread count, each its own process (its peak RSS is the epoch's),
#      ROUNDS times as well; the table keeps each program's fastest.
#   5. one table (report.py), the raw '@' lines kept beside it.
#
# Peers run with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset (this
# environment pins them to Haswell for the library's tests): OpenBLAS then
# picks its own kernel for this CPU, printed below. Threads: OMP_NUM_THREADS
# and OPENBLAS_NUM_THREADS per process, torch.set_num_threads in torch.
#
# Usage: bench/peers/run.sh [--quick] [--out DIR]
#   --quick   tiny repeat counts, epoch on 2000 examples: checks that it runs
#   --out     where raw.txt, table.txt and the dump go (default: a temp dir)
#   BUILD=dir to use or make another build directory (default build-bench)
#   BATCHES="1 10 20 100 256" THREADS="1 2" to narrow the grid, ROUNDS=1 for one pass
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
here=$root/bench/peers
build=${BUILD:-$root/build-bench}
quick=()
out=""
while [ $# -gt 0 ]; do
  case $1 in
    --quick) quick=(--quick) ;;
    --out) out=$2; shift ;;
    -h|--help) sed -n '2,32p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
read -r -a batches <<< "${BATCHES:-1 10 20 100 256}"
read -r -a threads <<< "${THREADS:-1 2}"
rounds=${ROUNDS:-5}
blist=$(IFS=,; echo "${batches[*]}")
tlist=$(IFS=,; echo "${threads[*]}")

export CAE_DATA_DIR=${CAE_DATA_DIR:-$root/data}   # MNIST for the epoch
PY=/usr/bin/python3   # Debian's Python: python3-torch / python3-numpy live there
if ! "$PY" -c 'import torch, numpy' 2>/dev/null; then
  echo "run.sh: $PY lacks torch or numpy: run scripts/install-bench-deps.sh" >&2
  exit 1
fi

# Always through the build (a no-op when bench/steps and libcae are current).
[ -f "$build/CMakeCache.txt" ] || cmake -S "$root" -B "$build" -DCAE_BUILD_TESTS=OFF > /dev/null
echo "run.sh: building bench/steps in $build" >&2
cmake --build "$build" --target bench_steps -j 2 > /dev/null
steps=$build/bench/steps

[ -n "$out" ] || out=$(mktemp -d /tmp/cae-peers.XXXXXX)
mkdir -p "$out"
raw=$out/raw.txt
: > "$raw"

# PyTorch tuned as its users tune it on a shared or small machine: OpenMP
# threads that sleep when idle instead of spinning (its default spins, and
# its 2-thread runs are then slower than its 1-thread ones here), and glibc's
# malloc keeping freed memory (no trim, no mmap below 32 MiB) instead of
# returning it every step. Reported as "torch*" beside the default "torch";
# ratios are against the faster of the two.
torch_tuned() {
  local t=$1; shift
  CAE_PEER_LABEL=torch-tuned OMP_WAIT_POLICY=PASSIVE MALLOC_TRIM_THRESHOLD_=4294967295 \
    MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TOP_PAD_=67108864 peer "$t" torch_steps.py "$@"
}

# A peer process with t threads and OpenBLAS free to pick its kernel.
peer() {
  local t=$1; shift
  (cd "$here" && env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OMP_NUM_THREADS="$t" \
     OPENBLAS_NUM_THREADS="$t" MKL_NUM_THREADS="$t" PYTHONDONTWRITEBYTECODE=1 "$PY" "$@")
}

echo "== cae vs PyTorch vs NumPy: CAE training steps (784 -> 1000, tied)"
echo "# $(date -u +%FT%TZ) on $(nproc) cores, load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# ours: $steps (libxsmm JIT kernels, OpenMP); ${quick[*]:-full repeats}"
echo "# peers: $(peer 1 -c 'import torch, numpy, common; print("torch", torch.__version__, "numpy", numpy.__version__ + ";", common.blas_info())')"

echo
echo "== correctness (before timing)"
"$steps" --dump "$out/dump" > /dev/null
peer 1 torch_steps.py --check "$out/dump"
peer 1 numpy_steps.py --check "$out/dump"

echo
echo "== timing (progress on stderr)"
gemm() {
  echo -e "@block\tgemm" >> "$raw"
  "$steps" --gemm --machine --threads "$tlist" --batches "$blist" "${quick[@]}" >> "$raw"
}
echo "  gemm rates" >&2
gemm
blocks=()
for t in "${threads[@]}"; do
  for b in "${batches[@]}"; do blocks+=("$t $b"); done
done
for ((r = 1; r <= rounds; r++)); do
  order=("${blocks[@]}")
  if ((r % 2 == 0)); then  # even rounds: the blocks in reverse order
    order=(); for ((i = ${#blocks[@]} - 1; i >= 0; i--)); do order+=("${blocks[i]}"); done
  fi
  for tb in "${order[@]}"; do
    read -r t b <<< "$tb"
    echo "  round $r/$rounds, block threads=$t B=$b: ours, torch, torch tuned, numpy" >&2
    echo -e "@block\tsteps\t$t\t$b\t$r" >> "$raw"
    OMP_NUM_THREADS=$t "$steps" --steps --machine --threads "$t" --batches "$b" "${quick[@]}" >> "$raw"
    peer "$t" torch_steps.py --steps --machine --threads "$t" --batches "$b" "${quick[@]}" >> "$raw"
    torch_tuned "$t" --steps --machine --threads "$t" --batches "$b" "${quick[@]}" >> "$raw"
    peer "$t" numpy_steps.py --steps --machine --threads "$t" --batches "$b" "${quick[@]}" >> "$raw"
  done
done
echo "  gemm rates again" >&2
gemm
for ((r = 1; r <= rounds; r++)); do
  for t in "${threads[@]}"; do
    echo "  round $r/$rounds, epoch threads=$t: ours, torch, torch tuned" >&2
    echo -e "@block\tepoch\t$t\t$r" >> "$raw"
    OMP_NUM_THREADS=$t "$steps" --epoch --machine --threads "$t" "${quick[@]}" >> "$raw"
    peer "$t" torch_steps.py --epoch --machine --threads "$t" "${quick[@]}" >> "$raw"
    torch_tuned "$t" --epoch --machine --threads "$t" "${quick[@]}" >> "$raw"
  done
done

echo
"$PY" "$here/report.py" "$raw" | tee "$out/table.txt"
echo
echo "# raw lines: $raw; table: $out/table.txt"
