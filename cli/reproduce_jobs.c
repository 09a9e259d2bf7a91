/* `cae reproduce --jobs N`: worker processes that fill the run cache before
 * the tables and figures read it.
 *
 * Why processes: at the paper's batch of 20 a training step is too small
 * for two OpenMP threads to pay (a 784-1000 step ran about as fast on two
 * sleeping-when-idle threads as on one here), while two runs on one thread each
 * do twice the work. The runs of a reproduction are independent until a
 * choice is made on their validation errors, so they are trained in waves:
 *   1. every 1-layer run at the first fine-tuning rate (Table 1's grids, the
 *      CAE-1 grid of each Table 2 set, Fig. 3's first layer);
 *   2. every 2-layer run on those (CAE-2's second-layer grid on each CAE-1
 *      grid winner, and Fig. 3's second layer);
 *   3. the other fine-tuning rates on each winner's encoder, and Fig. 3's
 *      third layer.
 * Workers take runs from a queue (a pipe of indices, largest first) and
 * write them to OUT/runs as a sequential run would; each run is
 * deterministic for a given --threads, so the tables come out the same. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "reproduce.h"

enum { MAX_WORKERS = 64 };

typedef struct queue {
    rp_spec *s;
    int n, cap;
} queue;

/* Queue s unless a run it is part of is queued already (the same run,
 * fine-tuned at the same rate, or fine-tuned at all when s is pretraining
 * only: Fig. 3's stacks on rot are also Table 2's): two workers must not
 * train one directory at once. */
static int push(queue *q, const rp_spec *s)
{
    char name[256], other[256];
    rp_run_name(s, name, sizeof name);
    for (int i = 0; i < q->n; i++) {
        const rp_spec *o = &q->s[i];
        rp_run_name(o, other, sizeof other);
        if (!strcmp(name, other) && !strcmp(o->data_dir, s->data_dir) &&
            (s->finetune ? o->finetune && o->ft_lr == s->ft_lr : 1))
            return 0;
    }
    if (q->n == q->cap) {
        int cap = q->cap ? 2 * q->cap : 64;
        rp_spec *t = realloc(q->s, (size_t)cap * sizeof *t);
        if (!t) return 1;
        q->s = t;
        q->cap = cap;
    }
    q->s[q->n++] = *s;
    return 0;
}

/* Run every spec of q with c->jobs workers. 0, or 1 if any run failed. */
static int run_wave(const rp_ctx *c, const queue *q, const char *what)
{
    if (!q->n) return 0;
    printf("%d worker processes: %d runs (%s)\n", c->jobs, q->n, what);
    fflush(stdout);
    fflush(stderr);
    int fd[2];
    if (pipe(fd)) {
        fprintf(stderr, "%s: pipe: %s\n", c->who, strerror(errno));
        return 1;
    }
    /* The queue: indices 0..n-1 in order (the callers put the long runs
     * first). A 4-byte read from a pipe is atomic, so each index goes to
     * exactly one worker; the pipe holds 64 KiB, far more than needed. */
    for (int i = 0; i < q->n; i++)
        if (write(fd[1], &i, sizeof i) != (ssize_t)sizeof i) {
            fprintf(stderr, "%s: queue: %s\n", c->who, strerror(errno));
            close(fd[0]);
            close(fd[1]);
            return 1;
        }
    close(fd[1]);
    pid_t pid[MAX_WORKERS];
    int started = 0, rc = 0;
    for (int w = 0; w < c->jobs && w < q->n; w++) {
        pid[w] = fork();
        if (pid[w] < 0) {
            fprintf(stderr, "%s: fork: %s\n", c->who, strerror(errno));
            rc = 1;
            break;
        }
        if (pid[w] == 0) {
            int i, bad = 0;
            while (!bad && read(fd[0], &i, sizeof i) == (ssize_t)sizeof i) {
                rp_result r;
                bad = rp_run(c, &q->s[i], &r);
            }
            fflush(stdout);
            fflush(stderr);
            _exit(bad);
        }
        started++;
    }
    close(fd[0]);
    for (int w = 0; w < started; w++) {
        int st;
        while (waitpid(pid[w], &st, 0) < 0 && errno == EINTR) {}
        if (!WIFEXITED(st) || WEXITSTATUS(st)) {
            if (WIFSIGNALED(st))
                fprintf(stderr, "%s: worker %d ended by signal %d\n", c->who, w + 1, WTERMSIG(st));
            rc = 1;
        }
    }
    return rc;
}

int rp_prefetch(const rp_ctx *c, const char *data_dir, int do1, int do2, int dof)
{
    static const char *const datas[2] = {"mnist", "fashion"};
    const rp_budget *b = c->b;
    char var_root[4200];
    rp_variations_root(c, data_dir, var_root, sizeof var_root);
    if ((do2 || dof) && rp_ensure_variations(c, data_dir, var_root)) return 1;
    const double *cae_vals;
    rp_grid(CAE_MODEL_CAE, &cae_vals);
    const int n1 = do1 ? 2 : dof ? 1 : 0; /* Table 1's data sets; the figures use MNIST's */
    queue q = {0};
    int rc = 1;
    rp_ctx quiet = *c;
    quiet.quiet = 1;
    /* Wave 1: the 1-layer runs, Table 1's (50 000 examples) first. */
    for (int d = 0; d < n1; d++)
        for (int m = 0; m < RP_N_MODELS; m++) {
            const double *v;
            int g = rp_grid(rp_paper1[m].kind, &v);
            for (int i = 0; i < g && i < b->grid; i++) {
                rp_spec s = {datas[d], data_dir, rp_paper1[m].kind, v[i], 1, 1, b->ft_lrs[0], 0};
                if (push(&q, &s)) goto oom;
            }
        }
    for (int t = 0; do2 && b->table2_sets[t]; t++)
        for (int i = 0; i < b->grid2; i++) {
            rp_spec s = {b->table2_sets[t], var_root, CAE_MODEL_CAE, cae_vals[i], 1, 1, b->ft_lrs[0], 0};
            if (push(&q, &s)) goto oom;
        }
    if (dof) { /* Fig. 3's first layer (no fine-tuning) */
        rp_spec s = {"rot", var_root, CAE_MODEL_CAE, cae_vals[0], 1, 0, 0, 0};
        if (push(&q, &s)) goto oom;
    }
    if (run_wave(c, &q, "1-layer runs at the first fine-tuning rate")) goto done;
    /* Wave 2: the 2-layer runs on the cached first layers. */
    q.n = 0;
    const double *up;
    const int n_up = rp_grid_upper(&up);
    for (int t = 0; do2 && b->table2_sets[t]; t++) {
        rp_spec w;
        rp_result wr;
        if (rp_grid_winner(&quiet, b->table2_sets[t], var_root, CAE_MODEL_CAE, 1, b->grid2, &w, &wr)) goto done;
        for (int i = 0; i < b->grid_up && i < n_up; i++) {
            const rp_spec s = rp_upper_spec(c, &w, up[i]);
            if (push(&q, &s)) goto oom;
        }
    }
    if (dof) {
        rp_spec s = {"rot", var_root, CAE_MODEL_CAE, cae_vals[0], 2, 0, 0, 0};
        if (push(&q, &s)) goto oom;
    }
    if (run_wave(c, &q, "2-layer runs")) goto done;
    /* Wave 3: the other fine-tuning rates on each winner's encoder. */
    q.n = 0;
    for (int d = 0; d < n1; d++)
        for (int m = 0; m < RP_N_MODELS; m++) {
            rp_spec w;
            rp_result wr;
            if (rp_grid_winner(&quiet, datas[d], data_dir, rp_paper1[m].kind, 1, b->grid, &w, &wr)) goto done;
            for (int j = 1; j < b->n_ft_lrs; j++) {
                w.ft_lr = b->ft_lrs[j];
                if (push(&q, &w)) goto oom;
            }
        }
    for (int t = 0; do2 && b->table2_sets[t]; t++) {
        rp_spec w1, w2;
        rp_result wr1, wr2;
        if (rp_grid_winner(&quiet, b->table2_sets[t], var_root, CAE_MODEL_CAE, 1, b->grid2, &w1, &wr1) ||
            rp_upper_winner(&quiet, &w1, b->grid_up, &w2, &wr2))
            goto done;
        for (int j = 1; j < b->n_ft_lrs; j++) {
            w1.ft_lr = w2.ft_lr = b->ft_lrs[j];
            if (push(&q, &w1) || push(&q, &w2)) goto oom;
        }
    }
    if (dof) {
        rp_spec s = {"rot", var_root, CAE_MODEL_CAE, cae_vals[0], 3, 0, 0, 0};
        if (push(&q, &s)) goto oom;
    }
    if (run_wave(c, &q, "the other fine-tuning rates on each winner, Fig. 3's third layer")) goto done;
    rc = 0;
    goto done;
oom:
    fprintf(stderr, "%s: out of memory\n", c->who);
done:
    free(q.s);
    return rc;
}
