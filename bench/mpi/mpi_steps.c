/* bench/mpi/mpi_steps — data-parallel CAE pretraining steps under mpirun:
 * samples/s of cae_train at a global batch B over the ranks it is started
 * with, and the share of each step spent in the gradient allreduce.
 *
 * The step is the README's: CAE 784 -> 1000, tied, sigmoid, cross-entropy,
 * the fused penalty (lambda 0.1), plain SGD; the data U(0,1), the same on
 * every rank; no validation set, --check-every 0 (one hash per epoch). Each
 * B trains 1 + E epochs of S steps; the first is a warm-up, and the figures
 * are the median over the E others (rank 0's clock; the allreduce time is
 * the largest over the ranks): samples/s = B S / epoch time, and
 *   comm ms   time per step inside cae_train's collectives (the gradient
 *             sum, with the epoch's hash and objective spread over the steps)
 *   share     comm ms / step ms
 * and, outside training, the gradient block's sum alone: median time of one
 * MPI_Iallreduce polled to completion (what cae_mpi does) and of one
 * blocking MPI_Allreduce, 20 of each. With one rank the run is one process
 * (no communicator), the baseline of strong scaling.
 *
 * usage: mpi_steps [--batches 20,100,256] [--threads T] [--steps S]
 *                  [--epochs E] [--blocking] [--quick] [--header]
 *   --blocking  cae_mpi with timeout 0 (blocking MPI_Allreduce) in training
 *   --quick     S = 20, E = 2, batches 20,100
 * One line per B, "@ np thr B samples/s step_ms comm_ms share ar_ms ar_blk_ms"
 * after a "#" header with --header; bench/mpi/run.sh makes the table. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mpi.h>

#include "../bench.h"
#include "cae/model.h"
#include "cae/mpi.h"
#include "cae/train.h"

typedef struct epoch_log {
    const cae_comm *comm;
    double seconds[64], comm_s[64];
    int n;
} epoch_log;

static int on_epoch(const cae_epoch_report *r, void *ctx)
{
    epoch_log *l = ctx;
    if (l->n < 64) {
        l->seconds[l->n] = r->seconds;
        l->comm_s[l->n] = l->comm ? cae_mpi_comm_seconds(l->comm, NULL) : 0;
        l->n++;
    }
    if (l->comm) cae_mpi_comm_reset_time((cae_comm *)l->comm);
    return 0;
}

/* Median ms of one sum of n reals: non-blocking polled, or blocking. */
static double allreduce_ms(cae_real *buf, int64_t n, int blocking)
{
    double t[20];
    const MPI_Datatype dt = sizeof(cae_real) == 8 ? MPI_DOUBLE : MPI_FLOAT;
    for (int r = -3; r < 20; r++) {
        MPI_Barrier(MPI_COMM_WORLD);
        const double t0 = bench_now();
        if (blocking) {
            MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, dt, MPI_SUM, MPI_COMM_WORLD);
        } else {
            MPI_Request q;
            int done = 0;
            MPI_Iallreduce(MPI_IN_PLACE, buf, (int)n, dt, MPI_SUM, MPI_COMM_WORLD, &q);
            while (!done) MPI_Test(&q, &done, MPI_STATUS_IGNORE);
        }
        double el = bench_now() - t0;
        MPI_Allreduce(MPI_IN_PLACE, &el, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
        if (r >= 0) t[r] = el;
    }
    return 1e3 * bench_median(t, 20);
}

static int parse_list(const char *s, long long *out, int max)
{
    int n = 0;
    while (*s && n < max) {
        char *end;
        out[n++] = strtoll(s, &end, 10);
        s = *end == ',' ? end + 1 : end;
        if (end == s && *s) return -1;
    }
    return n;
}

int main(int argc, char **argv)
{
    int provided;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    long long batches[16] = {20, 100, 256};
    int nb = 3, threads = 1, steps = 100, epochs = 3, blocking = 0, header = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--batches") && i + 1 < argc) nb = parse_list(argv[++i], batches, 16);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--steps") && i + 1 < argc) steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--epochs") && i + 1 < argc) epochs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--blocking")) blocking = 1;
        else if (!strcmp(argv[i], "--header")) header = 1;
        else if (!strcmp(argv[i], "--quick")) {
            steps = 20;
            epochs = 2;
            nb = parse_list("20,100", batches, 16);
        } else {
            if (!rank) fprintf(stderr, "mpi_steps: unknown option '%s' (see the file's header)\n", argv[i]);
            MPI_Finalize();
            return 2;
        }
    }
    if (nb < 1 || threads < 1 || steps < 1 || epochs < 1 || epochs > 60) {
        if (!rank) fprintf(stderr, "mpi_steps: bad options\n");
        MPI_Finalize();
        return 2;
    }
    cae_error err;
    cae_comm *comm = size > 1 ? cae_mpi_comm_new(MPI_COMM_WORLD, blocking ? 0 : 60, &err) : NULL;
    if (size > 1 && !comm) {
        fprintf(stderr, "mpi_steps: %s\n", err.msg);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    if (!rank && header)
        printf("#  np thr     B  samples/s  step_ms  comm_ms   share  ar_ms ar_blk_ms   (%s, %d steps x %d epochs)\n",
               blocking ? "blocking" : "non-blocking polled", steps, epochs);
    for (int bi = 0; bi < nb; bi++) {
        const int64_t B = batches[bi], n = B * steps;
        if (B < size) continue;
        cae_params *p = cae_params_new();
        cae_layer_config c;
        cae_layer_config_default(&c, CAE_MODEL_CAE, 784, 1000);
        cae_task *t = NULL;
        if (cae_layer_params(p, 1, &c, 1, &err) ||
            !(t = cae_task_pretrain(p, 1, &c, B, 1, threads, &err))) {
            fprintf(stderr, "mpi_steps: %s\n", err.msg);
            MPI_Abort(MPI_COMM_WORLD, 1);
        }
        cae_dataset d = {.n = n, .dim = 784, .rows = 28, .cols = 28, .n_classes = 1};
        d.x = cae_alloc_reals((size_t)(n * 784));
        cae_rng rng;
        cae_rng_seed(&rng, 7, 0);
        for (int64_t k = 0; k < n * 784; k++) d.x[k] = (cae_real)cae_rng_uniform(&rng);
        cae_train_config cfg;
        cae_train_config_default(&cfg);
        cfg.epochs = 1 + epochs;
        cfg.lr = 1e-4;
        cfg.seed = 3;
        cfg.comm = comm;
        epoch_log log = {.comm = comm};
        cae_train_hooks hk = {on_epoch, NULL, &log};
        cae_train_result res;
        if (cae_train(t, &d, NULL, &cfg, &hk, &res, &err)) {
            fprintf(stderr, "mpi_steps: rank %d: %s\n", rank, err.msg);
            MPI_Abort(MPI_COMM_WORLD, 1);
        }
        /* The largest allreduce time over the ranks, per epoch. */
        MPI_Allreduce(MPI_IN_PLACE, log.comm_s, log.n, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
        double sec[64], cs[64];
        for (int e = 1; e < log.n; e++) {
            sec[e - 1] = log.seconds[e];
            cs[e - 1] = log.comm_s[e];
        }
        const double s = bench_median(sec, log.n - 1), cm = bench_median(cs, log.n - 1);
        const int64_t nr = (int64_t)cae_params_total(p);
        const double ar = size > 1 ? allreduce_ms(cae_params_grads(p), nr, 0) : 0;
        const double arb = size > 1 ? allreduce_ms(cae_params_grads(p), nr, 1) : 0;
        if (!rank)
            printf("@ %3d %3d %5lld %10.0f %8.3f %8.3f %6.1f%% %6.3f %6.3f\n", size, threads,
                   (long long)B, (double)n / s, 1e3 * s / steps, 1e3 * cm / steps,
                   100 * cm / s, ar, arb);
        fflush(stdout);
        cae_free(d.x);
        cae_task_free(t);
        cae_params_free(p);
    }
    cae_mpi_comm_free(comm);
    MPI_Finalize();
    return 0;
}
