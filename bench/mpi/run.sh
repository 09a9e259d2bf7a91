#!/usr/bin/env bash
# Strong scaling of data-parallel CAE pretraining on this machine: the same
# global batch B on 1 rank x 1 thread, 2 ranks x 1 thread and 1 rank x 2
# threads (bench/mpi/mpi_steps.c says what a step is and how it is timed),
# the share of each step in the gradient allreduce, and the allreduce of
# the gradient block alone (non-blocking polled, as cae_mpi does, and
# blocking). Needs a build with MPI (CAE_WITH_MPI) and a quiet machine: the
# figures mean nothing while other processes run.
#
#   usage: bench/mpi/run.sh [BUILD_DIR] [--quick] [--blocking] [mpi_steps options...]
#          (default BUILD_DIR: build; --quick: 20 steps x 2 epochs at B = 20, 100)
set -euo pipefail
cd "$(dirname "$0")/../.."
build=build
if [ $# -gt 0 ] && [ -d "$1" ]; then
    build=$1
    shift
fi
bin=$build/bench/mpi_steps
if [ ! -x "$bin" ]; then
    echo "bench/mpi: no $bin (configure with MPI: CAE_WITH_MPI=ON, then cmake --build $build)" >&2
    exit 2
fi
mpirun=(mpirun --oversubscribe)
[ "$(id -u)" -eq 0 ] && mpirun+=(--allow-run-as-root)
out=$(mktemp)
trap 'rm -f "$out"' EXIT
echo "# cae bench/mpi: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
"${mpirun[@]}" --bind-to none -np 1 "$bin" --threads 1 --header "$@" | tee -a "$out"
"${mpirun[@]}" --bind-to core -np 2 "$bin" --threads 1 "$@" | tee -a "$out"
"${mpirun[@]}" --bind-to none -np 1 "$bin" --threads 2 "$@" | tee -a "$out"
echo
awk '
/^@/ { np = $2; thr = $3; B = $4; key = np "x" thr
       rate[key, B] = $5; step[key, B] = $6; comm[key, B] = $7; share[key, B] = $8
       ar[B] = ar[B] ? ar[B] : (np > 1 ? $9 : 0); arb[B] = arb[B] ? arb[B] : (np > 1 ? $10 : 0)
       if (!(B in seen)) { seen[B] = 1; order[++nb] = B } }
END {
  printf "%5s | %10s %10s %10s | %7s %6s %8s | %7s %8s | %7s %7s\n", "B", "1x1 /s", "2x1 /s", "1x2 /s",
         "2x1/1x1", "eff", "2x1/1x2", "comm ms", "share", "ar ms", "ar blk"
  for (i = 1; i <= nb; i++) {
    B = order[i]; a = rate["1x1", B]; b = rate["2x1", B]; c = rate["1x2", B]
    printf "%5d | %10.0f %10.0f %10.0f | %7.2f %5.0f%% %8.2f | %7.3f %8s | %7.3f %7.3f\n", B, a, b, c,
           a ? b / a : 0, a ? 50 * b / a : 0, c ? b / c : 0, comm["2x1", B], share["2x1", B], ar[B], arb[B]
  }
  print "# NxT: N ranks x T threads; eff = (2x1 / 1x1) / 2, the strong-scaling efficiency;"
  print "# comm ms, share: per step of the 2x1 run inside the collectives; ar ms / ar blk: one"
  print "# sum of the 3.1 MB gradient block alone, non-blocking polled / blocking (median of 20)."
}' "$out"
