/* `cae reproduce --jobs N`: worker processes that fill the run cache before
 * the tables and figures read it.
 *
 * Why processes: at the paper's batch of 20 a training step is too small
 * for two OpenMP threads to pay (a 784-1000 step ran about as fast on two
 * sleeping-when-idle threads as on one here), while two runs on one thread each
 * do twice the work.
 *
 * What runs when. A run is queued as soon as the choices it depends on are
 * made, and no sooner:
 *   - at once, every 1-layer run at the first fine-tuning rate (Table 1's
 *     grids, the CAE-1 grid of each Table 2 set) and Fig. 3's first layer
 *     (pretraining only);
 *   - a 1-layer grid is searched as rp_grid_rates_winner does, in stages
 *     (grid_search): when the first rate's grid is complete, the other
 *     rates on its winner; when those have ended, every value at a rate
 *     that beat the first on the winner; when those have ended, the row;
 *   - Table 2: CAE-2's second-layer grid on CAE-1's row (on a grid of one
 *     value, as soon as that value's first rate has ended), and when that
 *     grid is complete the other rates on its winner;
 *   - Fig. 3's layer k + 1 when the run that trains its layer k has ended;
 *   - the test error of each row the tables will choose, when its search
 *     is over (CAE-2's: when every rate on its winner has ended,
 *     rp_best_rate): the test set is still read once per chosen row, and
 *     the tables find it cached.
 * A free worker takes the queued run at the head of the longest chain of
 * runs still to come (its own estimated time plus that of the runs that
 * wait for it: Table 2's CAE-1 runs start early, as CAE-2 waits for them),
 * but never one whose directory another worker is training (unless both
 * only fine-tune a finished encoder, at different rates). No worker waits
 * for a whole stage to end while there is a run it could train.
 *
 * The parent hands each worker one job at a time, a run or a test, over the
 * worker's own pipe (the rp_spec by value: its strings are the budget's
 * constants or buffers filled before the fork, so the pointers mean the
 * same in the child) and reads the result from another; an end of file
 * there means the worker died. Each run is deterministic for a given
 * --threads and reads only runs that are complete, so the tables come out
 * the same as without workers. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli_common.h"
#include "reproduce.h"

enum { MAX_WORKERS = 64 };
enum { T_QUEUED, T_RUNNING, T_DONE, T_FAILED };

typedef struct task {
    rp_spec s;
    double prio;    /* estimated seconds of its chain: the order of dispatch */
    int pretrained; /* its encoder was complete when it was queued */
    int test;       /* the test error of a chosen row (rp_test), not a run */
    int state;
    double t0;      /* when it was handed to a worker */
} task;

typedef struct sched {
    const rp_ctx *c;
    rp_ctx quiet; /* for looking up finished runs */
    task *t;
    int n, cap;
    int failed;
    double busy; /* seconds of the workers spent on jobs */
} sched;

static int same_dir(const rp_spec *a, const rp_spec *b)
{
    char na[256], nb[256];
    rp_run_name(a, na, sizeof na);
    rp_run_name(b, nb, sizeof nb);
    return !strcmp(na, nb) && !strcmp(a->data_dir, b->data_dir);
}

/* Whether task o covers s: the same run, fine-tuned at the same rate, or
 * at all when s is pretraining only (Fig. 3's stacks on rot are also
 * Table 2's). */
static int covers(const rp_spec *o, const rp_spec *s)
{
    return same_dir(o, s) && (s->finetune ? o->finetune && o->ft_lr == s->ft_lr : 1);
}

/* Table 1's data (MNIST, Fashion-MNIST), not a variation of Table 2. */
static int is_table1(const rp_spec *s) { return !strcmp(s->data, "mnist") || !strcmp(s->data, "fashion"); }

/* Seconds a run is expected to take on one worker: only its order among
 * the queued runs depends on it. `pretrained`: its encoder is complete
 * already (another fine-tuning rate on a winner). The rates are a
 * 784-1000 layer's at batch 20 (16 000 examples/s pretraining, 30 000
 * fine-tuning); a quick run at 4ed54c3 measured the stacks against it: on
 * rot, layer 2's pretraining 2.1x layer 1's, layer 3's 2.6x (taken as
 * 1 + 0.8 per layer above the first), a 2-layer fine-tuning 3.6x a 1-layer
 * one per epoch. A first layer of other units (--hidden2) scales it all,
 * the layer above reading its codes. */
static double est_cost(const rp_budget *b, const rp_spec *s, int pretrained)
{
    const double n = rp_train_size(b, s->data), above = s->n_layers - 1;
    const int ft_ep = rp_ft_epochs_typical(b);
    const double pre = pretrained ? 0 : (1 + 0.8 * above) * rp_pre_epochs(b, (int64_t)n) * n / 16e3;
    const double ft = s->finetune ? (1 + 2.6 * above) * ft_ep * n / 30e3 : 0;
    return rp_layer1_scale(b, s->data) * (pre + ft);
}

/* The estimated seconds of s and of the longest chain of runs that will
 * wait for it: the other rates on its encoder; for a Table 2 set's CAE-1
 * run, whose other rates CAE-2 waits for too, those and CAE-2 on it. */
static double chain_cost(const rp_budget *b, const rp_spec *s, int pretrained)
{
    const double own = est_cost(b, s, pretrained);
    if (!s->finetune) return own;
    const double rates = pretrained || b->n_ft_lrs < 2 ? 0 : est_cost(b, s, 1);
    if (is_table1(s) || s->n_layers > 1) return own + rates;
    rp_spec up = *s;
    up.n_layers = 2;
    return own + rates + chain_cost(b, &up, 0);
}

/* Seconds the test error of a chosen row takes (its refit when the budget
 * refits, then its test set classified). */
static double test_cost(const rp_budget *b, const rp_spec *s)
{
    const double n = is_table1(s) ? 10000 : b->small_variations ? 200 : 50000;
    return rp_layer1_scale(b, s->data) * (1 + 2.6 * (s->n_layers - 1)) *
           (n / 100e3 + rp_refit_examples(b, s->data) / 30e3);
}

/* Queue s (test: its test error) unless a task covers it already. 0, or 1
 * when out of memory. */
static int push_task(sched *S, const rp_spec *s, int pretrained, int test)
{
    for (int i = 0; i < S->n; i++)
        if (S->t[i].test == test &&
            (test ? same_dir(&S->t[i].s, s) && S->t[i].s.ft_lr == s->ft_lr : covers(&S->t[i].s, s)))
            return 0;
    if (S->n == S->cap) {
        int cap = S->cap ? 2 * S->cap : 64;
        task *t = realloc(S->t, (size_t)cap * sizeof *t);
        if (!t) {
            fprintf(stderr, "%s: out of memory\n", S->c->who);
            return 1;
        }
        S->t = t;
        S->cap = cap;
    }
    const double prio = test ? test_cost(S->c->b, s) : chain_cost(S->c->b, s, pretrained);
    S->t[S->n++] = (task){*s, prio, pretrained, test, T_QUEUED, 0};
    return 0;
}

static int push(sched *S, const rp_spec *s, int pretrained) { return push_task(S, s, pretrained, 0); }

/* Whether a task that covers s has ended. */
static int done(const sched *S, const rp_spec *s)
{
    for (int i = 0; i < S->n; i++)
        if (S->t[i].state == T_DONE && !S->t[i].test && covers(&S->t[i].s, s)) return 1;
    return 0;
}

/* ---------------------------------------------------------------- the plan */

enum { MAX_SETS = 32 };

typedef struct plan {
    const char *data_dir, *var_root;
    int n1, do2, dof;
    int t1[2][RP_N_MODELS];         /* Table 1: the stage of each grid_search */
    int t1_test[2][RP_N_MODELS];    /* ... its chosen row's test queued */
    rp_spec t1w[2][RP_N_MODELS];    /* ... the search's winner */
    rp_result t1r[2][RP_N_MODELS];  /* ... its result */
    int t2s[MAX_SETS];        /* Table 2: the stage of CAE-1's grid_search */
    int t2[MAX_SETS];         /* ... 0 CAE-1 searched, 1 CAE-2's grid queued, 2 all queued */
    int t2_test[MAX_SETS];    /* ... CAE-2's test queued (CAE-1's with its grid) */
    rp_spec w1[MAX_SETS], w2[MAX_SETS];   /* ... CAE-1's and CAE-2's winners */
    rp_result r1[MAX_SETS], r2[MAX_SETS]; /* ... their results */
    int fig;                /* Fig. 3: the layers of the rot stack queued */
} plan;

static const char *const t1_data[2] = {"mnist", "fashion"};

static rp_spec fig_spec(const plan *P, int layers)
{
    const double *cae_vals;
    rp_grid(CAE_MODEL_CAE, &cae_vals);
    return (rp_spec){"rot", P->var_root, CAE_MODEL_CAE, cae_vals[0], layers, 0, 0, 0};
}

/* Queue (queue = 1) or test for completion (queue = 0) the first `grid`
 * values of a kind's grid at the first fine-tuning rate. 0 or 1. */
static int grid_runs(sched *S, const char *data, const char *dir, cae_model_kind kind, int grid,
                     int queue)
{
    const double *v;
    const int g = rp_grid(kind, &v);
    for (int i = 0; i < g && i < grid; i++) {
        const rp_spec s = rp_grid_spec(data, dir, kind, v[i], S->c->b->ft_lrs[0]);
        if (queue ? push(S, &s, 0) : !done(S, &s)) return 1;
    }
    return 0;
}

/* CAE-2's second-layer grid on w1: queued, or tested as grid_runs. */
static int upper_runs(sched *S, const rp_spec *w1, int queue)
{
    const double *up;
    const int n_up = rp_grid_upper(&up);
    for (int i = 0; i < S->c->b->grid_up && i < n_up; i++) {
        const rp_spec s = rp_upper_spec(S->c, w1, up[i]);
        if (queue ? push(S, &s, 0) : !done(S, &s)) return 1;
    }
    return 0;
}

/* The budget's other fine-tuning rates on a winner's encoder. 0 or 1. */
static int rate_runs(sched *S, rp_spec w)
{
    for (int j = 1; j < S->c->b->n_ft_lrs; j++) {
        w.ft_lr = S->c->b->ft_lrs[j];
        if (push(S, &w, 1)) return 1;
    }
    return 0;
}

/* rp_grid_rates_winner's search, staged: *stage 0, the first rate's grid
 * (queued by plan_start) is awaited; 1, the other rates on its winner *w
 * (queued then); 2, every value at each rate that did better than the
 * first on *w, queued and awaited; 3, *w and *wr are the search's choice.
 * Returns 0 at stage 3, -1 while runs are awaited, 1 on failure. */
static int grid_search(sched *S, const char *data, const char *dir, cae_model_kind kind, int grid,
                       int *stage, rp_spec *w, rp_result *wr)
{
    const rp_budget *b = S->c->b;
    if (*stage == 0) {
        if (grid_runs(S, data, dir, kind, grid, 0)) return -1;
        if (rp_grid_winner(&S->quiet, data, dir, kind, grid, w, wr) || rate_runs(S, *w)) return 1;
        *stage = 1;
    }
    if (*stage == 1) {
        for (int j = 1; j < b->n_ft_lrs; j++) {
            rp_spec s = *w;
            s.ft_lr = b->ft_lrs[j];
            if (!done(S, &s)) return -1;
        }
        *stage = 2;
    }
    if (*stage == 2) {
        const double *v;
        const int g = rp_grid(kind, &v);
        int pending = 0;
        for (int j = 1; j < b->n_ft_lrs; j++) {
            int wanted;
            if (rp_rate_wanted(&S->quiet, w, wr, j, &wanted)) return 1;
            for (int i = 0; wanted && i < g && i < grid; i++) {
                const rp_spec s = rp_grid_spec(data, dir, kind, v[i], b->ft_lrs[j]);
                if (push(S, &s, 1)) return 1;
                pending |= !done(S, &s);
            }
        }
        if (pending) return -1;
        if (rp_grid_rates_winner(&S->quiet, data, dir, kind, grid, w, wr)) return 1;
        *stage = 3;
    }
    return 0;
}

/* The runs every stage starts with. 0 or 1. */
static int plan_start(sched *S, plan *P)
{
    const rp_budget *b = S->c->b;
    for (int d = 0; d < P->n1; d++)
        for (int m = 0; m < RP_N_MODELS; m++)
            if (grid_runs(S, t1_data[d], P->data_dir, rp_paper1[m].kind, b->grid, 1)) return 1;
    for (int t = 0; P->do2 && b->table2_sets[t]; t++)
        if (grid_runs(S, b->table2_sets[t], P->var_root, CAE_MODEL_CAE, b->grid2, 1)) return 1;
    if (P->dof) {
        const rp_spec s = fig_spec(P, 1);
        if (push(S, &s, 0)) return 1;
        P->fig = 1;
    }
    return 0;
}

/* When every rate on a grid winner w (result wr) has ended: the test of
 * the (hyper-parameter, rate) the tables will choose (rp_best_rate, as
 * rp_rates_and_test), queued once (*queued). 0 or 1. */
static int test_when_rated(sched *S, rp_spec w, rp_result wr, int *queued)
{
    if (*queued) return 0;
    for (int j = 1; j < S->c->b->n_ft_lrs; j++) {
        rp_spec s = w;
        s.ft_lr = S->c->b->ft_lrs[j];
        if (!done(S, &s)) return 0;
    }
    *queued = 1;
    return rp_best_rate(&S->quiet, &w, &wr) || push_task(S, &w, 1, 1);
}

/* Queue what the runs ended so far make possible. 0 or 1. */
static int plan_expand(sched *S, plan *P)
{
    const rp_budget *b = S->c->b;
    for (int d = 0; d < P->n1; d++)
        for (int m = 0; m < RP_N_MODELS; m++) {
            const int r = grid_search(S, t1_data[d], P->data_dir, rp_paper1[m].kind, b->grid, &P->t1[d][m],
                                      &P->t1w[d][m], &P->t1r[d][m]);
            if (r > 0) return 1;
            /* the test of the chosen row, once: every run it was chosen among has ended */
            if (!r && !P->t1_test[d][m]) {
                if (push_task(S, &P->t1w[d][m], 1, 1)) return 1;
                P->t1_test[d][m] = 1;
            }
        }
    for (int t = 0; P->do2 && b->table2_sets[t]; t++) {
        const char *set = b->table2_sets[t];
        const int r = grid_search(S, set, P->var_root, CAE_MODEL_CAE, b->grid2, &P->t2s[t], &P->w1[t], &P->r1[t]);
        if (r > 0) return 1;
        if (r < 0 && b->grid2 == 1) {
            /* One lambda: CAE-2 builds on its encoder whichever rate wins. */
            const double *v;
            rp_grid(CAE_MODEL_CAE, &v);
            const rp_spec l1 = rp_grid_spec(set, P->var_root, CAE_MODEL_CAE, v[0], b->ft_lrs[0]);
            if (done(S, &l1) && upper_runs(S, &l1, 1)) return 1;
        }
        if (!r && P->t2[t] == 0) {
            if (upper_runs(S, &P->w1[t], 1) || push_task(S, &P->w1[t], 1, 1)) return 1;
            P->t2[t] = 1;
        }
        if (P->t2[t] == 1 && !upper_runs(S, &P->w1[t], 0)) {
            if (rp_upper_winner(&S->quiet, &P->w1[t], b->grid_up, &P->w2[t], &P->r2[t]) ||
                rate_runs(S, P->w2[t]))
                return 1;
            P->t2[t] = 2;
        }
        if (P->t2[t] == 2 && test_when_rated(S, P->w2[t], P->r2[t], &P->t2_test[t]))
            return 1;
    }
    while (P->dof && P->fig < 3) {
        const rp_spec below = fig_spec(P, P->fig), s = fig_spec(P, P->fig + 1);
        if (!done(S, &below)) break;
        if (push(S, &s, 0)) return 1;
        P->fig++;
    }
    return 0;
}

/* ------------------------------------------------------------- the workers */

/* Whether a queued task must wait: another worker trains its directory
 * (two fine-tunings of one finished encoder may run side by side). */
static int blocked(const sched *S, int i)
{
    /* A test reads a fine-tuning whose rates have all ended: nothing queued
     * later writes that directory (a covered run is not queued again; Fig.
     * 3's pretraining-only layers find their pretraining cached). */
    if (S->t[i].test) return 0;
    for (int j = 0; j < S->n; j++)
        if (S->t[j].state == T_RUNNING && !S->t[j].test && same_dir(&S->t[j].s, &S->t[i].s) &&
            !(S->t[j].pretrained && S->t[i].pretrained))
            return 1;
    return 0;
}

/* The queued task a free worker takes: the longest chain not blocked. */
static int pick(const sched *S)
{
    int best = -1;
    for (int i = 0; i < S->n; i++)
        if (S->t[i].state == T_QUEUED && !blocked(S, i) && (best < 0 || S->t[i].prio > S->t[best].prio))
            best = i;
    return best;
}

static int read_full(int fd, void *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        const ssize_t k = read(fd, (char *)buf + got, len - got);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return -1;
        got += (size_t)k;
    }
    return 0;
}

/* What the parent sends a worker: a run, or the test error of a chosen row. */
typedef struct job {
    rp_spec s;
    int test;
} job;

/* A worker: each job read from `cmd` done, its status (0 or 1) written to
 * `res`, until `cmd` ends. */
static void worker(const rp_ctx *c, int cmd, int res)
{
    job j;
    while (!read_full(cmd, &j, sizeof j)) {
        rp_result r;
        const int st = j.test ? rp_test(c, &j.s, &r) : rp_run(c, &j.s, &r);
        fflush(stdout);
        fflush(stderr);
        if (write(res, &st, sizeof st) != (ssize_t)sizeof st) break;
    }
    _exit(0); /* each job's status went through the pipe */
}

int rp_prefetch(const rp_ctx *c, const char *data_dir, int do1, int do2, int dof)
{
    const rp_budget *b = c->b;
    char var_root[4200];
    rp_variations_root(c, data_dir, var_root, sizeof var_root);
    if ((do2 || dof) && rp_ensure_variations(c, data_dir, var_root)) return 1;
    int n_sets = 0;
    while (do2 && b->table2_sets[n_sets]) n_sets++;
    if (n_sets > MAX_SETS) {
        fprintf(stderr, "%s: more than %d Table 2 sets\n", c->who, MAX_SETS);
        return 1;
    }
    sched S = {.c = c, .quiet = *c};
    S.quiet.quiet = 1;
    plan P = {.data_dir = data_dir, .var_root = var_root, .do2 = do2, .dof = dof};
    P.n1 = do1 ? 2 : dof ? 1 : 0; /* Table 1's data sets; the figures use MNIST's */
    const int bad_start = plan_start(&S, &P);
    if (bad_start || !S.n) {
        free(S.t);
        return bad_start;
    }
    int jobs = c->jobs < MAX_WORKERS ? c->jobs : MAX_WORKERS;
    if (jobs > S.n) jobs = S.n;
    printf("%d worker processes: %d runs to start with, the rest queued as the choices they wait for "
           "are made\n",
           jobs, S.n);
    fflush(stdout);
    fflush(stderr);
    int cmd[MAX_WORKERS], res[MAX_WORKERS], cur[MAX_WORKERS], nw = 0;
    pid_t pid[MAX_WORKERS];
    void (*old_pipe)(int) = signal(SIGPIPE, SIG_IGN); /* a dead worker is seen on its result pipe */
    for (; nw < jobs; nw++) {
        int a[2], r[2];
        if (pipe(a)) {
            fprintf(stderr, "%s: pipe: %s\n", c->who, strerror(errno));
            S.failed = 1;
            break;
        }
        if (pipe(r)) {
            fprintf(stderr, "%s: pipe: %s\n", c->who, strerror(errno));
            close(a[0]);
            close(a[1]);
            S.failed = 1;
            break;
        }
        pid[nw] = fork();
        if (pid[nw] < 0) {
            fprintf(stderr, "%s: fork: %s\n", c->who, strerror(errno));
            close(a[0]), close(a[1]), close(r[0]), close(r[1]);
            S.failed = 1;
            break;
        }
        if (pid[nw] == 0) { /* the parent's ends of every pipe closed: EOF works both ways */
            for (int k = 0; k < nw; k++) close(cmd[k]), close(res[k]);
            close(a[1]);
            close(r[0]);
            signal(SIGPIPE, old_pipe);
            worker(c, a[0], r[1]);
        }
        close(a[0]);
        close(r[1]);
        cmd[nw] = a[1];
        res[nw] = r[0];
        cur[nw] = -1;
    }
    const double t_start = cli_now();
    for (;;) {
        for (int w = 0; w < nw && !S.failed; w++) {
            if (cur[w] != -1) continue;
            const int i = pick(&S);
            if (i < 0) break;
            const job j = {S.t[i].s, S.t[i].test};
            if (write(cmd[w], &j, sizeof j) != (ssize_t)sizeof j) {
                fprintf(stderr, "%s: worker %d: %s\n", c->who, w + 1, strerror(errno));
                cur[w] = -2;
                S.failed = 1;
                break;
            }
            S.t[i].state = T_RUNNING;
            S.t[i].t0 = cli_now();
            cur[w] = i;
        }
        struct pollfd pf[MAX_WORKERS];
        int wk[MAX_WORKERS], np = 0;
        for (int w = 0; w < nw; w++)
            if (cur[w] >= 0) pf[np] = (struct pollfd){res[w], POLLIN, 0}, wk[np++] = w;
        if (!np) break;
        if (poll(pf, (nfds_t)np, -1) < 0) {
            if (errno == EINTR) continue;
            fprintf(stderr, "%s: poll: %s\n", c->who, strerror(errno));
            for (int w = 0; w < nw; w++) /* their runs cannot be waited for */
                if (cur[w] >= 0) kill(pid[w], SIGTERM);
            S.failed = 1;
            break;
        }
        for (int k = 0; k < np; k++) {
            if (!pf[k].revents) continue;
            const int w = wk[k], i = cur[w];
            int st;
            if (read_full(res[w], &st, sizeof st)) { /* it died: its run is not complete */
                fprintf(stderr, "%s: worker %d ended during a run\n", c->who, w + 1);
                cur[w] = -2;
                S.failed = 1;
                continue;
            }
            S.t[i].state = st ? T_FAILED : T_DONE;
            S.busy += cli_now() - S.t[i].t0;
            cur[w] = -1;
            if (st) S.failed = 1;
        }
        if (!S.failed && plan_expand(&S, &P)) S.failed = 1;
    }
    const double wall = cli_now() - t_start;
    for (int w = 0; w < nw; w++) close(cmd[w]), close(res[w]);
    for (int w = 0; w < nw; w++) {
        int st = 0;
        while (waitpid(pid[w], &st, 0) < 0 && errno == EINTR) {}
        if (WIFSIGNALED(st)) {
            fprintf(stderr, "%s: worker %d ended by signal %d\n", c->who, w + 1, WTERMSIG(st));
            S.failed = 1;
        }
    }
    signal(SIGPIPE, old_pipe);
    int ran = 0, tested = 0;
    for (int i = 0; i < S.n; i++) {
        ran += S.t[i].state == T_DONE && !S.t[i].test;
        tested += S.t[i].state == T_DONE && S.t[i].test;
    }
    if (S.failed)
        fprintf(stderr, "%s: the workers stopped (above: why); the %d runs that ended are kept in %s/runs\n",
                c->who, ran, c->out);
    else if (nw)
        printf("%d worker processes: %d runs and %d test errors in %.1f min, the workers busy %.0f%% "
               "of it\n",
               nw, ran, tested, wall / 60, wall > 0 ? 100 * S.busy / (nw * wall) : 100);
    fflush(stdout);
    free(S.t);
    return S.failed;
}
