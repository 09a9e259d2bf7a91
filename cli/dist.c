/* The ranks of a `cae pretrain` / `cae finetune` run (see cli/dist.h). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */
#endif
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <omp.h>

#include "cae/checkpoint.h"
#include "dist.h"
#ifdef CAE_WITH_MPI
#include "cae/mpi.h"
#endif

struct cli_dist {
    const char *who;
    int rank, size;
    int mpi;        /* MPI initialised here: finalize (or abort) at the end */
    cae_comm *comm; /* more than one rank */
    int real_err;   /* ranks > 0: the original stderr (-1: not captured) */
    FILE *cap;      /* what this rank wrote to stderr */
    long shown;     /* how much of it has been shown */
};

/* ---------------------------------------------------------- the launcher */

static long env_long(const char *const *names, long fallback)
{
    for (int i = 0; names[i]; i++) {
        const char *v = getenv(names[i]);
        if (v && *v) return strtol(v, NULL, 10);
    }
    return fallback;
}
static const char *const size_vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MV2_COMM_WORLD_SIZE", NULL};
static const char *const rank_vars[] = {"OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK",
                                        "MV2_COMM_WORLD_RANK", NULL};

/* The size the launcher announces: 0 without a launcher, -1 with one that
 * does not say (PMIx alone). */
static long launched_size(void)
{
    const long n = env_long(size_vars, 0);
    if (n > 0) return n;
    return getenv("PMIX_RANK") ? -1 : 0;
}

int cli_dist_refuse(const char *who)
{
    const long n = launched_size();
    if (n == 0 || n == 1) return 0;
    if (env_long(rank_vars, 0) == 0)
        fprintf(stderr, "%s runs as one process: only cae pretrain and cae finetune run as MPI "
                "ranks (started as %ld)\n", who, n);
    return 2;
}

/* ------------------------------------------------------ SIGTERM, rank 0 */

static volatile sig_atomic_t sig_epoch, sig_saved;
static volatile long sig_done;
static char sig_who[64], sig_path[2][1024], sig_tmp[2][1100];

#ifdef CAE_WITH_MPI
static volatile sig_atomic_t sig_rank = 1;

static void put(const char *s) { (void)!write(STDERR_FILENO, s, strlen(s)); }
static void put_long(long v)
{
    char b[24];
    int i = (int)sizeof b - 1;
    b[i] = '\0';
    do b[--i] = (char)('0' + v % 10); while ((v /= 10) > 0 && i > 0);
    put(b + i);
}

static void on_term(int sig)
{
    for (int i = 0; i < 2; i++)
        if (sig_tmp[i][0]) unlink(sig_tmp[i]); /* a save cut short */
    if (sig_rank == 0) {
        put(sig_who);
        put(": stopped by signal ");
        put_long(sig);
        if (sig_epoch > 0 && sig_saved >= sig_epoch) {
            put(" after epoch "); /* between a save and the next epoch's first step */
            put_long(sig_epoch);
        } else if (sig_epoch > 0) {
            put(" in epoch ");
            put_long(sig_epoch);
            put(" (");
            put_long(sig_done);
            put(" examples done)");
        }
        put(": the MPI launcher ends every rank when one fails or is interrupted; ");
        if (sig_saved > 0 && sig_path[0][0]) {
            put(sig_path[0]);
            put(" holds epoch ");
            put_long(sig_saved);
            put(" (--resume continues from it)\n");
        } else {
            put("no checkpoint was written yet\n");
        }
    }
    _exit(128 + sig);
}
#endif

void cli_dist_watch(cli_dist *d, const char *path1, const char *path2)
{
    const char *p[2] = {path1, path2};
    for (int i = 0; i < 2; i++) {
        sig_path[i][0] = sig_tmp[i][0] = '\0';
        if (d->rank != 0 || !p[i] || strlen(p[i]) >= sizeof sig_path[i]) continue;
        snprintf(sig_path[i], sizeof sig_path[i], "%s", p[i]);
        snprintf(sig_tmp[i], sizeof sig_tmp[i], "%s.tmp.%ld", p[i], (long)getpid());
    }
}

void cli_dist_progress(cli_dist *d, int epoch, long long done)
{
    (void)d;
    sig_epoch = epoch;
    sig_done = (long)done;
}

void cli_dist_saved(cli_dist *d, int epoch)
{
    (void)d;
    sig_saved = epoch;
}

/* -------------------------------------------------------------- stderr */

/* Show what this rank wrote to stderr since the last time, each line
 * prefixed with its rank, on the real stderr. */
static void show(cli_dist *d)
{
    if (!d->cap || d->real_err < 0) return;
    fflush(stderr);
    FILE *f = d->cap;
    if (fseek(f, d->shown, SEEK_SET)) return;
    char line[1024];
    int bol = 1;
    while (fgets(line, sizeof line, f)) {
        if (bol) dprintf(d->real_err, "[rank %d] ", d->rank);
        dprintf(d->real_err, "%s", line);
        bol = line[strlen(line) - 1] == '\n';
    }
    d->shown = ftell(f);
    fseek(f, 0, SEEK_END);
}

#ifdef CAE_WITH_MPI
/* Ranks > 0: stdout to /dev/null, stderr into a file of this rank's. */
static void quiet(cli_dist *d)
{
    fflush(stdout);
    (void)!freopen("/dev/null", "w", stdout); /* failing, it leaves stdout closed: silent too */
    const char *keep = getenv("CAE_RANK_STDERR");
    if (keep && *keep && strcmp(keep, "0")) return;
    FILE *cap = tmpfile();
    const int real = dup(STDERR_FILENO);
    if (!cap || real < 0 || dup2(fileno(cap), STDERR_FILENO) < 0) {
        if (cap) fclose(cap);
        if (real >= 0) close(real);
        return;
    }
    d->cap = cap;
    d->real_err = real;
}
#endif

/* ---------------------------------------------------------- the ranks */

static cli_dist fallback; /* when even this allocation fails */

int cli_dist_start(const char *who, cli_dist **out)
{
    cli_dist *d = calloc(1, sizeof *d);
    if (!d) d = &fallback;
    d->who = who;
    d->size = 1;
    d->real_err = -1;
    *out = d;
    snprintf(sig_who, sizeof sig_who, "%s", who);
    const long n = launched_size();
    if (n == 0) return 0;
#ifndef CAE_WITH_MPI
    if (n == 1) return 0;
    if (env_long(rank_vars, 0) == 0)
        fprintf(stderr, "%s: started as %ld MPI ranks, but this cae was built without MPI "
                "(CAE_WITH_MPI: install libopenmpi-dev and rebuild); run it as one process\n",
                who, n);
    return 2;
#else
    int provided = 0, rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
    if (rc != MPI_SUCCESS) {
        fprintf(stderr, "%s: MPI_Init failed (error %d)\n", who, rc);
        return 1;
    }
    d->mpi = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &d->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &d->size);
    sig_rank = d->rank;
    if (d->size == 1) return 0;
    cae_error err;
    if (!(d->comm = cae_mpi_comm_new(MPI_COMM_WORLD, 20.0, &err))) {
        fprintf(stderr, "%s: rank %d: %s\n", who, d->rank, err.msg);
        return 1;
    }
    if (d->rank > 0) quiet(d);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_term;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    return 0;
#endif
}

void cli_dist_set_timeout(cli_dist *d, double s)
{
#ifdef CAE_WITH_MPI
    if (d->comm) cae_mpi_comm_set_timeout(d->comm, s);
#else
    (void)d;
    (void)s;
#endif
}

const cae_comm *cli_dist_comm(const cli_dist *d) { return d->comm; }
int cli_dist_rank(const cli_dist *d) { return d->rank; }
int cli_dist_size(const cli_dist *d) { return d->size; }

int cli_dist_agree(cli_dist *d, int rc)
{
    if (!d->comm) return rc;
    double v[256], *all = d->size <= 256 ? v : calloc((size_t)d->size, sizeof *all);
    if (!all) return rc ? rc : 1;
    memset(all, 0, (size_t)d->size * sizeof *all);
    all[d->rank] = rc;
    cae_error err;
    if (d->comm->allreduce(all, d->size, CAE_COMM_DOUBLE, d->comm->ctx, &err)) {
        fprintf(stderr, "%s: %s\n", d->who, err.msg);
        show(d);
        if (all != v) free(all);
        return rc ? rc : 1;
    }
    int worst = 0, first = -1, failed = 0;
    for (int r = 0; r < d->size; r++)
        if (all[r] != 0) {
            if ((int)all[r] > worst) worst = (int)all[r];
            if (first < 0) first = r;
            failed++;
        }
    if (worst && rc && d->rank > 0 && all[0] == 0) show(d); /* nobody else says it */
    if (worst && !rc && d->rank == 0)
        fprintf(stderr, "%s: rank %d%s failed (see the [rank %d] lines): every rank stops\n",
                d->who, first, failed > 1 ? " and others" : "", first);
    if (all != v) free(all);
    return worst;
}

int cli_dist_end(cli_dist *d, int rc)
{
    if (!d) return rc;
    int status = rc;
#ifdef CAE_WITH_MPI
    if (d->comm && cae_mpi_comm_broken(d->comm)) { /* a peer is gone: MPI_Finalize could hang */
        show(d);
        MPI_Abort(MPI_COMM_WORLD, rc ? rc : 1);
    }
    if (d->comm) {
        status = cli_dist_agree(d, rc);
        if (cae_mpi_comm_broken(d->comm)) {
            show(d);
            MPI_Abort(MPI_COMM_WORLD, status ? status : 1);
        }
        cae_mpi_comm_free(d->comm);
    }
    if (d->mpi) MPI_Finalize();
#endif
    if (d->cap) fclose(d->cap);
    if (d->real_err >= 0) close(d->real_err);
    if (d != &fallback) free(d);
    return status;
}

void cli_dist_describe(const cli_dist *d, long long threads, long long batch)
{
    if (d->size < 2 || d->rank != 0) return;
    int64_t b;
    if (threads <= 0) threads = omp_get_max_threads();
    printf("data-parallel: %d ranks x %lld thread%s, global batch %lld (%lld to %lld per rank)\n",
           d->size, threads, threads == 1 ? "" : "s", batch,
           (long long)cae_comm_slice(batch, 0, d->size, &b),
           (long long)cae_comm_slice(batch, d->size - 1, d->size, &b));
    cpu_set_t set;
    if (threads > 1 && !sched_getaffinity(0, sizeof set, &set) && CPU_COUNT(&set) < threads)
        printf("warning: rank 0 may use %d CPU%s (its affinity) for %lld threads: start mpirun "
               "with --bind-to none or --map-by slot:PE=%lld\n", CPU_COUNT(&set),
               CPU_COUNT(&set) == 1 ? "" : "s", threads, threads);
    fflush(stdout);
}

int cli_dist_rank_checkpoint(const cli_dist *d, const char *who, const cae_model_info *info,
                             cae_task *t, const cae_params *opt)
{
    const char *dir = getenv("CAE_RANK_CHECKPOINTS");
    if (!dir || !*dir) return 0;
    char path[4200];
    snprintf(path, sizeof path, "%s/rank%d.ckpt", dir, d->rank);
    cae_error err;
    if (!cae_checkpoint_save_run(path, info, t, opt, &err)) return 0;
    fprintf(stderr, "%s: CAE_RANK_CHECKPOINTS: %s\n", who, err.msg);
    return 1;
}
