/* Data-parallel cae_train (cae/comm.h) over a communicator of threads: N
 * ranks with a global batch B end where one process with batch B does (in
 * double within 1e-12; in float within the bound summation order explains,
 * below), with unequal slices, empty slices of a short last batch,
 * reshuffling, momentum, weight decay and early stopping; every rank holds
 * the same bits; a diverged rank, a different run on one rank, a non-finite
 * objective on one rank and a failed step on one rank stop every rank with
 * the same message naming the rank and the step; the number of ranks is in
 * the optimizer store ("train:ranks", only with more than one) and a resume
 * with another number is refused; a task with buffers (PCD) is refused;
 * parts draw their own noise.
 *
 * The float bound. A gradient element is a mean over the m rows of a batch
 * of per-example terms t_i. One process sums them in one order, N ranks in
 * N partial sums scaled by rows_r / m and added: two roundings of the same
 * sum in different orders differ by at most about (m + 2) u sum|t_i| / m <=
 * (m + 2) u T, T = max |t_i| (u = the unit roundoff). An SGD step moves w by
 * lr g, so the parameters part by at most lr (m + 2) u T per step (and one
 * rounding of w itself, 2 u |w|, since the two runs round different values),
 * times 1 / (1 - momentum) when velocities carry it on. Over S steps, with
 * a factor 2 for the differences feeding back through later gradients
 * (small for a small lr):
 *     |w_N - w_1| <= 2 S (lr (m + 2) u T / (1 - momentum) + 2 u max|w|).
 * T is measured: the largest per-example gradient over the training rows at
 * the initial parameters (a task of batch 1). In double the same bound is
 * ~1e-14 and the test also holds the 1e-12 the issue asks for. */
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cae/comm.h"
#include "cae/model.h"
#include "cae/train.h"
#include "testutil.h"

#ifdef CAE_REAL_DOUBLE
#define UNIT_ROUNDOFF (DBL_EPSILON / 2)
#else
#define UNIT_ROUNDOFF (FLT_EPSILON / 2)
#endif

enum { MAX_RANKS = 4 };

/* ------------------------------------------- a communicator of threads */

typedef struct world {
    int size;
    pthread_barrier_t bar;
    void *buf[MAX_RANKS];
    void *sum;
} world;

typedef struct rank_ctx {
    world *w;
    int rank;
} rank_ctx;

/* Rank 0 sums every rank's buffer in rank order into one result that every
 * rank copies: the same bits everywhere, as cae_comm asks. */
static cae_status w_allreduce(void *buf, int64_t n, cae_comm_type type, void *ctx, cae_error *err)
{
    rank_ctx *r = ctx;
    world *w = r->w;
    const size_t es = type == CAE_COMM_REAL ? sizeof(cae_real) : sizeof(double);
    w->buf[r->rank] = buf;
    pthread_barrier_wait(&w->bar);
    if (r->rank == 0) {
        w->sum = malloc((size_t)n * es + 1);
        for (int64_t i = 0; i < n; i++) {
            if (type == CAE_COMM_REAL) {
                cae_real s = ((cae_real *)w->buf[0])[i];
                for (int k = 1; k < w->size; k++) s += ((cae_real *)w->buf[k])[i];
                ((cae_real *)w->sum)[i] = s;
            } else {
                double s = ((double *)w->buf[0])[i];
                for (int k = 1; k < w->size; k++) s += ((double *)w->buf[k])[i];
                ((double *)w->sum)[i] = s;
            }
        }
    }
    pthread_barrier_wait(&w->bar);
    memcpy(buf, w->sum, (size_t)n * es);
    pthread_barrier_wait(&w->bar);
    if (r->rank == 0) free(w->sum);
    (void)err;
    return CAE_OK;
}

static cae_status w_broadcast(void *buf, size_t bytes, int root, void *ctx, cae_error *err)
{
    rank_ctx *r = ctx;
    world *w = r->w;
    w->buf[r->rank] = buf;
    pthread_barrier_wait(&w->bar);
    if (r->rank != root) memcpy(buf, w->buf[root], bytes);
    pthread_barrier_wait(&w->bar);
    (void)err;
    return CAE_OK;
}

/* ------------------------------------------------------------- the runs */

static cae_dataset *synth(int64_t n, int64_t dim, int classes, uint64_t seed)
{
    cae_dataset *d = calloc(1, sizeof *d);
    d->n = n;
    d->dim = dim;
    d->rows = (int)dim;
    d->cols = 1;
    d->n_classes = classes;
    d->x = cae_alloc_reals((size_t)(n * dim));
    d->y = calloc((size_t)n, sizeof *d->y);
    tu_fill_uniform(d->x, n * dim, 0, 1, seed);
    for (int64_t i = 0; i < n; i++) d->y[i] = (int32_t)((i * 7 + i / 3) % classes);
    return d;
}

static void free_synth(cae_dataset *d)
{
    if (!d) return;
    cae_free(d->x);
    free(d->y);
    free(d);
}

enum { D = 13, H = 9, C = 3 };

typedef struct scenario {
    cae_model_kind kind;        /* a layer kind, or CAE_MODEL_MLP */
    int64_t batch;
    int epochs, patience, check_every;
    double lr, momentum;
    const cae_dataset *train, *valid;
    int fail_rows;              /* > 0: the builder fails for graphs of that many rows on rank 1 */
    void (*on_batch)(int epoch, int64_t done, int64_t total, void *ctx); /* on rank 1 */
    double lr_rank1;            /* > 0: rank 1 runs with this lr */
} scenario;

typedef struct run_out {
    cae_real *params;           /* the trained tensors' values, concatenated */
    size_t n;
    cae_status rc;
    char msg[CAE_ERR_LEN];
    cae_train_result res;
    double objective[8];
    cae_params *opt;
    cae_params *p;
    cae_task *t;
} run_out;

typedef struct fail_ctx {
    cae_layer_task lt;
    int rows;
} fail_ctx;

static int failing_build(cae_graph *g, cae_task_io *io, const void *ctx)
{
    const fail_ctx *f = ctx;
    if (io->rows == f->rows && !io->eval) {
        cae_graph_fail(g, "no graph of %d rows here", f->rows);
        return -1;
    }
    return cae_layer_task_build(g, io, &f->lt);
}

static cae_task *make_task(const scenario *s, cae_params *p, int rank, int64_t batch)
{
    cae_error err;
    cae_task *t;
    if (s->kind == CAE_MODEL_MLP) {
        cae_mlp_config m = {.n_layers = 1, .sizes = {D, H}, .act = {CAE_ACT_SIGMOID},
                            .n_classes = C, .wd = 1e-3};
        ck_assert_msg(!cae_mlp_params(p, &m, 11, &err), "%s", err.msg);
        t = cae_task_finetune(p, &m, batch, 5, 1, &err);
    } else {
        cae_layer_config c;
        cae_layer_config_default(&c, s->kind, D, H);
        if (s->kind == CAE_MODEL_AE_WD) c.wd = 1e-2;
        if (s->kind == CAE_MODEL_RBM) c.persistent = 1;
        ck_assert_msg(!cae_layer_params(p, 1, &c, 11, &err), "%s", err.msg);
        if (s->fail_rows && rank == 1) {
            fail_ctx f = {.lt = {.layer = 1, .config = c}, .rows = s->fail_rows};
            cae_task_spec spec = {.name = "failing", .n_in = D, .build = failing_build,
                                  .ctx = &f, .ctx_size = sizeof f};
            t = cae_task_new(p, &spec, batch, 5, 1, &err);
        } else {
            t = cae_task_pretrain(p, 1, &c, batch, 5, 1, &err);
        }
    }
    ck_assert_msg(t != NULL, "%s", err.msg);
    return t;
}

static int record_epoch(const cae_epoch_report *r, void *ctx)
{
    run_out *o = ctx;
    if (r->epoch <= 8) o->objective[r->epoch - 1] = r->objective;
    return 0;
}

/* One rank's (or the one process's: comm NULL) whole run; keeps the task. */
static void run_one(const scenario *s, const cae_comm *comm, run_out *o)
{
    memset(o, 0, sizeof *o);
    const int rank = comm ? comm->rank : 0;
    o->p = cae_params_new();
    o->opt = cae_params_new();
    o->t = make_task(s, o->p, rank, s->batch);
    cae_train_config c;
    cae_train_config_default(&c);
    c.epochs = s->epochs;
    c.lr = s->lr_rank1 > 0 && rank == 1 ? s->lr_rank1 : s->lr;
    c.momentum = s->momentum;
    c.seed = 3;
    c.patience = s->patience;
    c.opt = o->opt;
    c.comm = comm;
    c.check_every = s->check_every;
    cae_train_hooks hk = {record_epoch, rank == 1 ? s->on_batch : NULL, o};
    cae_error err = {0};
    o->rc = cae_train(o->t, s->train, s->valid, &c, &hk, &o->res, &err);
    if (o->rc) snprintf(o->msg, sizeof o->msg, "%s", err.msg);
    for (int i = 0; i < cae_task_n_params(o->t); i++) o->n += (size_t)cae_task_param(o->t, i)->size;
    o->params = malloc(o->n * sizeof *o->params);
    size_t k = 0;
    for (int i = 0; i < cae_task_n_params(o->t); i++) {
        const cae_tensor *p = cae_task_param(o->t, i);
        memcpy(o->params + k, p->data, (size_t)p->size * sizeof(cae_real));
        k += (size_t)p->size;
    }
}

static void out_free(run_out *o)
{
    free(o->params);
    cae_task_free(o->t);
    cae_params_free(o->p);
    cae_params_free(o->opt);
}

typedef struct thread_arg {
    const scenario *s;
    cae_comm comm;
    rank_ctx rc;
    run_out out;
} thread_arg;

static void *rank_main(void *v)
{
    thread_arg *a = v;
    run_one(a->s, &a->comm, &a->out);
    return NULL;
}

/* Every rank of an n-rank run, in out[0..n-1]. */
static void run_ranks(const scenario *s, int n, thread_arg *a)
{
    world w = {.size = n};
    pthread_barrier_init(&w.bar, NULL, (unsigned)n);
    pthread_t th[MAX_RANKS];
    for (int r = 0; r < n; r++) {
        a[r].s = s;
        a[r].rc = (rank_ctx){&w, r};
        a[r].comm = (cae_comm){.rank = r, .size = n, .allreduce = w_allreduce,
                               .broadcast = w_broadcast, .ctx = &a[r].rc};
        pthread_create(&th[r], NULL, rank_main, &a[r]);
    }
    for (int r = 0; r < n; r++) pthread_join(th[r], NULL);
    pthread_barrier_destroy(&w.bar);
}

/* T: the largest per-example gradient element over the training rows at
 * the initial parameters (a fresh task of batch 1). */
static double max_example_grad(const scenario *s)
{
    cae_params *p = cae_params_new();
    cae_task *t = make_task(s, p, 0, 1);
    double T = 0, obj;
    for (int64_t i = 0; i < s->train->n; i++) {
        ck_assert_int_eq(cae_task_step(t, s->train->x + i * D, s->train->y + i, 1, &obj), CAE_OK);
        for (int k = 0; k < cae_task_n_params(t); k++) {
            const cae_tensor *x = cae_task_param(t, k);
            for (int64_t j = 0; j < x->size; j++) T = fmax(T, fabs((double)x->grad[j]));
        }
    }
    cae_task_free(t);
    cae_params_free(p);
    return T;
}

/* ------------------------------------------------------------ the tests */

/* kinds x (ranks, batch, examples): B = 21 over 2 ranks is 10 + 11 and the
 * last batch of 43 (1 row) leaves rank 0 empty; B = 20 over 3 ranks is
 * 6 + 7 + 7 and 41's last row leaves ranks 0 and 1 empty. 3 epochs of 3
 * steps, reshuffled each epoch. */
START_TEST(matches_one_process)
{
    static const cae_model_kind kinds[] = {CAE_MODEL_CAE, CAE_MODEL_AE_WD, CAE_MODEL_MLP};
    static const struct { int ranks; int64_t batch, n; } shapes[] = {{2, 21, 43}, {3, 20, 41}};
    cae_dataset *valid = synth(30, D, C, 9);
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        cae_dataset *train = synth(shapes[si].n, D, C, 8);
        for (size_t ki = 0; ki < sizeof kinds / sizeof kinds[0]; ki++) {
            const cae_model_kind kind = kinds[ki];
            const int mlp = kind == CAE_MODEL_MLP;
            scenario s = {.kind = kind, .batch = shapes[si].batch, .epochs = 3, .lr = 0.1,
                          .momentum = 0.5, .train = train, .valid = mlp ? valid : NULL,
                          .patience = mlp ? 2 : 0, .check_every = 2};
            const int n = shapes[si].ranks;
            run_out one;
            run_one(&s, NULL, &one);
            ck_assert_msg(one.rc == CAE_OK, "%s", one.msg);
            thread_arg a[MAX_RANKS];
            run_ranks(&s, n, a);
            const double T = max_example_grad(&s);
            double wmax = 0, diff = 0;
            size_t worst = 0;
            for (size_t k = 0; k < one.n; k++) {
                wmax = fmax(wmax, fabs((double)one.params[k]));
                const double dk = fabs((double)a[0].out.params[k] - (double)one.params[k]);
                if (dk > diff) {
                    diff = dk;
                    worst = k;
                }
            }
            const double steps = 3.0 * (double)s.epochs, u = UNIT_ROUNDOFF;
            const double bound = 2 * steps *
                                 (s.lr * (double)(s.batch + 2) * u * T / (1 - s.momentum) + 2 * u * wmax);
            const char *name = cae_model_kind_name(kind);
            for (int r = 0; r < n; r++) {
                ck_assert_msg(a[r].out.rc == CAE_OK, "%s, %d ranks: rank %d: %s", name, n, r,
                              a[r].out.msg);
                ck_assert_msg(a[r].out.n == one.n && !memcmp(a[r].out.params, a[0].out.params,
                                                            one.n * sizeof(cae_real)),
                              "%s, %d ranks: rank %d's parameters differ from rank 0's", name, n, r);
                ck_assert_int_eq(a[r].out.res.epochs_run, one.res.epochs_run);
                ck_assert_int_eq(a[r].out.res.best_epoch, one.res.best_epoch);
            }
            ck_assert_msg(diff <= bound, "%s, %d ranks, B %lld: |w_N - w_1| = %g at %zu (%.17g vs "
                          "%.17g) beyond the summation-order bound %g (T %g, max|w| %g)",
                          name, n, (long long)s.batch, diff, worst, (double)a[0].out.params[worst],
                          (double)one.params[worst], bound, T, wmax);
#ifdef CAE_REAL_DOUBLE
            ck_assert_msg(diff <= 1e-12, "%s, %d ranks: |w_N - w_1| = %g > 1e-12", name, n, diff);
#endif
            for (int e = 0; e < one.res.epochs_run; e++)
                ck_assert_msg(fabs(a[0].out.objective[e] - one.objective[e]) <=
                                  1e-5 * (1 + fabs(one.objective[e])),
                              "%s, %d ranks: epoch %d objective %.9g, one process %.9g", name, n,
                              e + 1, a[0].out.objective[e], one.objective[e]);
            fprintf(stderr, "%-6s %d ranks B %2lld: max |w_N - w_1| %.3g, bound %.3g (T %.3g)\n",
                    name, n, (long long)s.batch, diff, bound, T);
            /* The ranks are in the optimizer store; one process's is as always. */
            const cae_tensor *rk = cae_params_get(a[0].out.opt, "train:ranks");
            ck_assert_msg(rk && rk->size == 1 && rk->data[0] == (cae_real)n,
                          "%s: no train:ranks = %d in the optimizer store", name, n);
            ck_assert_ptr_null(cae_params_get(one.opt, "train:ranks"));
            cae_train_state st;
            ck_assert_int_eq(cae_train_state_get(a[0].out.opt, &st), 0);
            ck_assert_int_eq(st.ranks, n);
            ck_assert_int_eq(cae_train_state_get(one.opt, &st), 0);
            ck_assert_int_eq(st.ranks, 1);
            for (int r = 0; r < n; r++) out_free(&a[r].out);
            out_free(&one);
        }
        free_synth(train);
    }
    free_synth(valid);
}
END_TEST

/* Resuming a 2-rank run's state in one process (or 3 ranks) is refused,
 * naming the ranks. */
START_TEST(resume_with_other_ranks_refused)
{
    cae_dataset *train = synth(43, D, C, 8);
    scenario s = {.kind = CAE_MODEL_CAE, .batch = 21, .epochs = 1, .lr = 0.1, .train = train};
    thread_arg a[MAX_RANKS];
    run_ranks(&s, 2, a);
    ck_assert_msg(a[0].out.rc == CAE_OK, "%s", a[0].out.msg);
    cae_train_state st;
    ck_assert_int_eq(cae_train_state_get(a[0].out.opt, &st), 0);
    cae_train_config c;
    cae_train_config_default(&c);
    c.epochs = 2;
    c.lr = 0.1;
    c.seed = 3;
    c.first_epoch = 1;
    cae_mismatch m;
    ck_assert_int_eq(cae_train_state_diff(&c, &st, 43, 21, &m), 1);
    ck_assert_str_eq(m.field, "ranks");
    ck_assert_str_eq(m.want, "1");
    ck_assert_str_eq(m.saved, "2");
    /* cae_train itself refuses it. */
    c.opt = a[0].out.opt;
    cae_train_result res;
    cae_error err;
    ck_assert_int_eq(cae_train(a[0].out.t, train, NULL, &c, NULL, &res, &err), CAE_ERR_MISMATCH);
    ck_assert_msg(strstr(err.msg, "ranks is 1, the saved state's 2"), "%s", err.msg);
    for (int r = 0; r < 2; r++) out_free(&a[r].out);
    free_synth(train);
}
END_TEST

static void perturb(int epoch, int64_t done, int64_t total, void *ctx)
{
    run_out *o = ctx;
    if (epoch == 1 && done == 21) cae_task_param(o->t, 0)->data[3] += (cae_real)1e-3;
    (void)total;
}

static void poison(int epoch, int64_t done, int64_t total, void *ctx)
{
    run_out *o = ctx;
    if (epoch == 1 && done == 21) cae_task_param(o->t, 0)->data[0] = (cae_real)NAN;
    (void)total;
}

/* Every rank stops with the same status and message, containing `want`. */
static void expect_all(thread_arg *a, int n, cae_status st, const char *want)
{
    for (int r = 0; r < n; r++) {
        ck_assert_msg(a[r].out.rc == st, "rank %d: status %s, want %s (%s)", r,
                      cae_status_name(a[r].out.rc), cae_status_name(st), a[r].out.msg);
        ck_assert_msg(strstr(a[r].out.msg, want), "rank %d: '%s' lacks '%s'", r, a[r].out.msg, want);
        ck_assert_str_eq(a[r].out.msg, a[0].out.msg);
    }
    fprintf(stderr, "every rank: %s\n", a[0].out.msg);
}

START_TEST(failures_stop_every_rank)
{
    cae_dataset *train = synth(43, D, C, 8);
    thread_arg a[MAX_RANKS];
    /* A rank whose parameters drift is caught at the next check. */
    scenario s = {.kind = CAE_MODEL_CAE, .batch = 21, .epochs = 2, .lr = 0.1, .train = train,
                  .check_every = 2, .on_batch = perturb};
    run_ranks(&s, 2, a);
    expect_all(a, 2, CAE_ERR_MISMATCH, "parameters of rank 1 differ from rank 0's after epoch 1, step 2");
    for (int r = 0; r < 2; r++) out_free(&a[r].out);
    /* A rank configured differently is caught before the first step. */
    s = (scenario){.kind = CAE_MODEL_CAE, .batch = 21, .epochs = 2, .lr = 0.1, .train = train,
                   .lr_rank1 = 0.2};
    run_ranks(&s, 3, a);
    expect_all(a, 3, CAE_ERR_MISMATCH, "or the run of rank 1 differ from rank 0's at the start of epoch 1");
    for (int r = 0; r < 3; r++) out_free(&a[r].out);
    /* A non-finite objective on one rank. */
    s = (scenario){.kind = CAE_MODEL_CAE, .batch = 21, .epochs = 2, .lr = 0.1, .train = train,
                   .on_batch = poison};
    run_ranks(&s, 2, a);
    expect_all(a, 2, CAE_ERR_NUMERIC, "objective is not finite on rank 1 at epoch 1, step 2");
    for (int r = 0; r < 2; r++) out_free(&a[r].out);
    /* A step that fails on one rank (its graph for the last batch's one row
     * does not build): its message reaches every rank. */
    s = (scenario){.kind = CAE_MODEL_CAE, .batch = 21, .epochs = 2, .lr = 0.1, .train = train,
                   .fail_rows = 1};
    run_ranks(&s, 2, a);
    expect_all(a, 2, CAE_ERR_COMPILE, "at epoch 1, step 3, rank 1: building the failing graph for 1 rows");
    ck_assert_msg(strstr(a[0].out.msg, "no graph of 1 rows here"), "%s", a[0].out.msg);
    for (int r = 0; r < 2; r++) out_free(&a[r].out);
    free_synth(train);
}
END_TEST

START_TEST(refused_setups)
{
    cae_dataset *train = synth(43, D, C, 8);
    thread_arg a[MAX_RANKS];
    scenario s = {.kind = CAE_MODEL_RBM, .batch = 21, .epochs = 1, .lr = 0.1, .train = train};
    run_ranks(&s, 2, a);
    for (int r = 0; r < 2; r++) {
        ck_assert_int_eq(a[r].out.rc, CAE_ERR_ARG);
        ck_assert_msg(strstr(a[r].out.msg, "'pcd:chain'"), "%s", a[r].out.msg);
        out_free(&a[r].out);
    }
    s = (scenario){.kind = CAE_MODEL_CAE, .batch = 2, .epochs = 1, .lr = 0.1, .train = train};
    run_ranks(&s, 3, a);
    for (int r = 0; r < 3; r++) {
        ck_assert_int_eq(a[r].out.rc, CAE_ERR_ARG);
        ck_assert_msg(strstr(a[r].out.msg, "batch of 2 is smaller than the 3 ranks"), "%s",
                      a[r].out.msg);
        out_free(&a[r].out);
    }
    free_synth(train);
}
END_TEST

/* ------------------------------------------------ evaluation shared */

typedef struct eval_arg {
    cae_model_kind kind;
    const cae_dataset *d;
    int fail_rank;          /* this rank's evaluation graph does not build (-1: none) */
    cae_comm comm;
    rank_ctx rc;
    double loss, metric;
    cae_status st;
    char msg[CAE_ERR_LEN];
} eval_arg;

static int eval_failing_build(cae_graph *g, cae_task_io *io, const void *ctx)
{
    if (io->eval) {
        cae_graph_fail(g, "no evaluation here");
        return -1;
    }
    return cae_layer_task_build(g, io, ctx);
}

/* The task of a kind (fresh parameters, seed 11), evaluating on a->d. */
static void *eval_main(void *v)
{
    eval_arg *a = v;
    cae_params *p = cae_params_new();
    scenario s = {.kind = a->kind};
    cae_task *t;
    if (a->comm.rank == a->fail_rank) {
        cae_error err;
        cae_layer_config c;
        cae_layer_config_default(&c, CAE_MODEL_CAE, D, H);
        ck_assert(!cae_layer_params(p, 1, &c, 11, &err));
        cae_layer_task lt = {.layer = 1, .config = c};
        cae_task_spec spec = {.name = "no-eval", .n_in = D, .build = eval_failing_build,
                              .ctx = &lt, .ctx_size = sizeof lt};
        t = cae_task_new(p, &spec, 4, 5, 1, &err);
    } else {
        t = make_task(&s, p, 0, 4);
    }
    cae_error err = {0};
    a->st = cae_task_evaluate_comm(t, a->d, a->comm.size > 1 ? &a->comm : NULL, &a->loss,
                                   &a->metric, &err);
    snprintf(a->msg, sizeof a->msg, "%s", a->st ? err.msg : "");
    cae_task_free(t);
    cae_params_free(p);
    return NULL;
}

static void eval_ranks(eval_arg *a, int n)
{
    world w = {.size = n};
    pthread_barrier_init(&w.bar, NULL, (unsigned)n);
    pthread_t th[MAX_RANKS];
    for (int r = 0; r < n; r++) {
        a[r].rc = (rank_ctx){&w, r};
        a[r].comm = (cae_comm){.rank = r, .size = n, .allreduce = w_allreduce,
                               .broadcast = w_broadcast, .ctx = &a[r].rc};
        pthread_create(&th[r], NULL, eval_main, &a[r]);
    }
    for (int r = 0; r < n; r++) pthread_join(th[r], NULL);
    pthread_barrier_destroy(&w.bar);
}

/* 1234 examples (chunks of 500, 500, 234) shared by 2 and 3 ranks: the
 * figures of one process (an error rate exactly; the rbm's, which draws
 * Gibbs samples per chunk, too), on every rank; a rank whose evaluation
 * fails stops them all with its message. */
START_TEST(evaluation_shared)
{
    cae_dataset *d = synth(1234, D, C, 21);
    static const cae_model_kind kinds[] = {CAE_MODEL_MLP, CAE_MODEL_CAE, CAE_MODEL_RBM};
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        eval_arg one = {.kind = kinds[k], .d = d, .fail_rank = -1, .comm = {.size = 1}};
        eval_main(&one);
        ck_assert_msg(one.st == CAE_OK, "%s", one.msg);
        for (int n = 2; n <= 3; n++) {
            eval_arg a[MAX_RANKS];
            for (int r = 0; r < n; r++) a[r] = (eval_arg){.kind = kinds[k], .d = d, .fail_rank = -1};
            eval_ranks(a, n);
            for (int r = 0; r < n; r++) {
                ck_assert_msg(a[r].st == CAE_OK, "%s", a[r].msg);
                ck_assert(a[r].loss == a[0].loss && a[r].metric == a[0].metric);
            }
            const char *name = cae_model_kind_name(kinds[k]);
            ck_assert_msg(fabs(a[0].loss - one.loss) <= 1e-12 * fabs(one.loss), "%s, %d ranks: "
                          "loss %.17g, one process %.17g", name, n, a[0].loss, one.loss);
            if (kinds[k] == CAE_MODEL_MLP)
                ck_assert_msg(a[0].metric == one.metric, "%d ranks: error %.17g, one process "
                              "%.17g", n, a[0].metric, one.metric);
            else
                ck_assert_msg(fabs(a[0].metric - one.metric) <= 1e-12 * fabs(one.metric),
                              "%s, %d ranks: metric %.17g, one process %.17g", name, n,
                              a[0].metric, one.metric);
        }
    }
    eval_arg a[MAX_RANKS];
    for (int r = 0; r < 3; r++) a[r] = (eval_arg){.kind = CAE_MODEL_CAE, .d = d, .fail_rank = 2};
    eval_ranks(a, 3);
    for (int r = 0; r < 3; r++) {
        ck_assert_int_eq(a[r].st, CAE_ERR_COMPILE);
        ck_assert_msg(strstr(a[r].msg, "rank 2: building the no-eval graph for 234 rows: no "
                                       "evaluation here"), "%s", a[r].msg);
    }
    free_synth(d);
}
END_TEST

/* Parts of a batch draw their own noise; one part is one process. */
START_TEST(parts_draw_their_own_noise)
{
    cae_dataset *d = synth(8, D, C, 8);
    cae_real *g[3];
    for (int k = 0; k < 3; k++) {
        cae_params *p = cae_params_new();
        cae_error err;
        cae_layer_config c;
        cae_layer_config_default(&c, CAE_MODEL_DAE_B, D, H);
        ck_assert(!cae_layer_params(p, 1, &c, 11, &err));
        cae_task *t = cae_task_pretrain(p, 1, &c, 8, 5, 1, &err);
        ck_assert_int_eq(cae_task_set_part(t, k == 2 ? 0 : k, k == 2 ? 1 : 2), CAE_OK);
        double obj;
        ck_assert_int_eq(cae_task_step(t, d->x, NULL, 4, &obj), CAE_OK);
        const cae_tensor *W = cae_layer_tensor(p, 1, "W");
        g[k] = malloc((size_t)W->size * sizeof(cae_real));
        memcpy(g[k], W->grad, (size_t)W->size * sizeof(cae_real));
        cae_task_free(t);
        cae_params_free(p);
    }
    const size_t bytes = (size_t)(D * H) * sizeof(cae_real);
    ck_assert_msg(memcmp(g[0], g[1], bytes), "parts 0 and 1 of 2 drew the same masks");
    /* One part of one is the task as made: the step of a fresh task. */
    cae_params *p = cae_params_new();
    cae_error err;
    cae_layer_config c;
    cae_layer_config_default(&c, CAE_MODEL_DAE_B, D, H);
    ck_assert(!cae_layer_params(p, 1, &c, 11, &err));
    cae_task *t = cae_task_pretrain(p, 1, &c, 8, 5, 1, &err);
    double obj;
    ck_assert_int_eq(cae_task_step(t, d->x, NULL, 4, &obj), CAE_OK);
    ck_assert(!memcmp(g[2], cae_layer_tensor(p, 1, "W")->grad, bytes));
    ck_assert_int_eq(cae_task_set_part(t, 2, 2), CAE_ERR_ARG);
    ck_assert_int_eq(cae_task_step(t, d->x, NULL, 0, &obj), CAE_ERR_ARG); /* no empty steps alone */
    cae_task_free(t);
    cae_params_free(p);
    for (int k = 0; k < 3; k++) free(g[k]);
    free_synth(d);
    int64_t b;
    ck_assert_int_eq(cae_comm_slice(21, 0, 2, &b), 10);
    ck_assert_int_eq(b, 0);
    ck_assert_int_eq(cae_comm_slice(21, 1, 2, &b), 11);
    ck_assert_int_eq(b, 10);
    ck_assert_int_eq(cae_comm_slice(1, 0, 3, &b), 0);
    ck_assert_int_eq(cae_comm_slice(1, 2, 3, &b), 1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("dist");
    TCase *tc = tcase_create("dist");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, matches_one_process);
    tcase_add_test(tc, resume_with_other_ranks_refused);
    tcase_add_test(tc, failures_stop_every_rank);
    tcase_add_test(tc, refused_setups);
    tcase_add_test(tc, parts_draw_their_own_noise);
    tcase_add_test(tc, evaluation_shared);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
