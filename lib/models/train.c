/* Minibatch SGD with momentum, per-epoch evaluation, early stopping and a
 * NaN/Inf guard folded into the update pass. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <omp.h>

#include "cae/train.h"
#include "models/train_internal.h"
#include "shared.h" /* CAE_FMA: the update's rounding, as cae/sgd.h's */

void cae_train_config_default(cae_train_config *c)
{
    memset(c, 0, sizeof *c);
    c->epochs = 10;
    c->lr = 0.01;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The update of cae/sgd.h over one tensor (data-parallel runs, whose
 * gradients are summed across the ranks before it): returns 0, or NaN when
 * an element of the gradient is not finite. v may be NULL (no momentum). */
static double update(cae_tensor *t, cae_real *v, cae_real lr, cae_real mom, int threads)
{
    if (threads <= 0) threads = omp_get_max_threads();
    const int64_t n = t->size;
    cae_real *w = t->data;
    const cae_real *g = t->grad;
    cae_real bad = 0; /* g * 0: NaN for an infinite or NaN gradient, else 0 */
    if (v) {
#pragma omp parallel for simd reduction(+ : bad) schedule(static) num_threads(threads) if (n >= 65536)
        for (int64_t i = 0; i < n; i++) {
            bad += g[i] * 0;
            v[i] = CAE_FMA(mom, v[i], -(lr * g[i]));
            w[i] += v[i];
        }
    } else {
#pragma omp parallel for simd reduction(+ : bad) schedule(static) num_threads(threads) if (n >= 65536)
        for (int64_t i = 0; i < n; i++) {
            bad += g[i] * 0;
            w[i] = CAE_FMA(-lr, g[i], w[i]);
        }
    }
    return (double)bad;
}

static const char *check_config(const cae_train_config *c)
{
    if (c->epochs < 1) return "epochs must be >= 1";
    if (!(c->lr > 0) || !isfinite(c->lr)) return "the learning rate must be > 0";
    if (!isfinite((cae_real)c->lr)) return "the learning rate overflows the real type";
    if (!(c->momentum >= 0 && c->momentum < 1)) return "momentum must be in [0, 1)";
    if (!(c->lr_decay >= 0)) return "the learning-rate decay must be >= 0";
    if (c->limit < 0) return "limit must be >= 0";
    if (c->patience < 0) return "patience must be >= 0";
    if (c->first_epoch < 0 || c->first_epoch > c->epochs) return "first epoch out of range";
    return NULL;
}

/* The tensor to name when the objective is not finite: the first one
 * holding a non-finite value, else the one with the largest magnitude
 * (the forward overflowed from finite but huge weights). */
static const cae_tensor *blame(cae_task *t, double *value)
{
    const cae_tensor *who = NULL;
    double big = -1;
    for (int i = 0; i < cae_task_n_params(t); i++) {
        const cae_tensor *p = cae_task_param(t, i);
        for (int64_t k = 0; k < p->size; k++) {
            const double v = fabs((double)p->data[k]);
            if (!isfinite(v)) {
                *value = (double)p->data[k];
                return p;
            }
            if (v > big) {
                big = v;
                who = p;
            }
        }
    }
    *value = big;
    return who;
}

/* ------------------------------------------------- the optimizer store */

#define STATE_NAME "train:state"
#define RANKS_NAME "train:ranks"
#define STATE_MAGIC 0x3174617473746163ull /* "catstat1" */

/* "train:state": S_COUNT 64-bit fields, each as four 16-bit integers
 * (least significant first), exact in float and double alike. */
enum { S_MAGIC, S_EPOCHS_DONE, S_EXAMPLES, S_BATCH, S_SEED, S_LIMIT, S_LR, S_MOMENTUM,
       S_LR_DECAY, S_PATIENCE, S_BEST_EPOCH, S_SINCE_BEST, S_BEST_METRIC, S_COUNT };

static uint64_t bits_of(double x)
{
    uint64_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}
static double double_of(uint64_t u)
{
    double x;
    memcpy(&x, &u, sizeof x);
    return x;
}

static void state_put(cae_real *s, int f, uint64_t v)
{
    for (int k = 0; k < 4; k++) s[4 * f + k] = (cae_real)((v >> (16 * k)) & 0xffff);
}

int cae_train_state_get(const cae_params *opt, cae_train_state *st)
{
    const cae_tensor *t = opt ? cae_params_get(opt, STATE_NAME) : NULL;
    if (!t || t->rank != 1 || t->size != 4 * S_COUNT) return -1;
    uint64_t f[S_COUNT];
    for (int i = 0; i < S_COUNT; i++) {
        f[i] = 0;
        for (int k = 0; k < 4; k++) {
            const cae_real c = t->data[4 * i + k];
            if (!(c >= 0 && c <= 65535) || c != (cae_real)(int)c) return -1;
            f[i] |= (uint64_t)(int)c << (16 * k);
        }
    }
    if (f[S_MAGIC] != STATE_MAGIC || f[S_EPOCHS_DONE] > INT32_MAX || f[S_PATIENCE] > INT32_MAX ||
        f[S_BEST_EPOCH] > INT32_MAX || f[S_SINCE_BEST] > INT32_MAX || f[S_EXAMPLES] > INT64_MAX ||
        f[S_BATCH] > INT64_MAX || f[S_LIMIT] > INT64_MAX)
        return -1;
    memset(st, 0, sizeof *st);
    st->cfg.seed = f[S_SEED];
    st->cfg.limit = (int64_t)f[S_LIMIT];
    st->cfg.lr = double_of(f[S_LR]);
    st->cfg.momentum = double_of(f[S_MOMENTUM]);
    st->cfg.lr_decay = double_of(f[S_LR_DECAY]);
    st->cfg.patience = (int)f[S_PATIENCE];
    st->epochs_done = (int)f[S_EPOCHS_DONE];
    st->cfg.first_epoch = st->epochs_done;
    st->examples = (int64_t)f[S_EXAMPLES];
    st->batch = (int64_t)f[S_BATCH];
    st->best_epoch = (int)f[S_BEST_EPOCH];
    st->since_best = (int)f[S_SINCE_BEST];
    st->best_metric = double_of(f[S_BEST_METRIC]);
    const cae_tensor *rk = cae_params_get(opt, RANKS_NAME);
    st->ranks = 1;
    if (rk) {
        if (rk->size != 1 || !(rk->data[0] >= 2 && rk->data[0] <= 1 << 20) ||
            rk->data[0] != (cae_real)(int)rk->data[0])
            return -1;
        st->ranks = (int)rk->data[0];
    }
    return 0;
}

static void state_write(cae_tensor *t, const cae_train_config *c, const cae_train_state *s)
{
    cae_real *d = t->data;
    state_put(d, S_MAGIC, STATE_MAGIC);
    state_put(d, S_EPOCHS_DONE, (uint64_t)s->epochs_done);
    state_put(d, S_EXAMPLES, (uint64_t)s->examples);
    state_put(d, S_BATCH, (uint64_t)s->batch);
    state_put(d, S_SEED, c->seed);
    state_put(d, S_LIMIT, (uint64_t)c->limit);
    state_put(d, S_LR, bits_of(c->lr));
    state_put(d, S_MOMENTUM, bits_of(c->momentum));
    state_put(d, S_LR_DECAY, bits_of(c->lr_decay));
    state_put(d, S_PATIENCE, (uint64_t)c->patience);
    state_put(d, S_BEST_EPOCH, (uint64_t)s->best_epoch);
    state_put(d, S_SINCE_BEST, (uint64_t)s->since_best);
    state_put(d, S_BEST_METRIC, bits_of(s->best_metric));
}

static int differ(cae_mismatch *m, const char *field, const char *want, const char *saved)
{
    snprintf(m->field, sizeof m->field, "%s", field);
    snprintf(m->want, sizeof m->want, "%s", want);
    snprintf(m->saved, sizeof m->saved, "%s", saved);
    return 1;
}
static int differ_int(cae_mismatch *m, const char *field, long long want, long long saved)
{
    char a[32], b[32];
    snprintf(a, sizeof a, "%lld", want);
    snprintf(b, sizeof b, "%lld", saved);
    return want != saved && differ(m, field, a, b);
}
static int differ_real(cae_mismatch *m, const char *field, double want, double saved)
{
    char a[40], b[40];
    snprintf(a, sizeof a, "%.17g", want);
    snprintf(b, sizeof b, "%.17g", saved);
    return want != saved && differ(m, field, a, b);
}

int cae_train_state_diff(const cae_train_config *c, const cae_train_state *s, int64_t examples,
                         int64_t batch, cae_mismatch *m)
{
    memset(m, 0, sizeof *m);
    char a[32], b[32];
    snprintf(a, sizeof a, "%llu", (unsigned long long)c->seed);
    snprintf(b, sizeof b, "%llu", (unsigned long long)s->cfg.seed);
    return differ_int(m, "epochs done", c->first_epoch, s->epochs_done) ||
           (c->seed != s->cfg.seed && differ(m, "seed", a, b)) ||
           differ_int(m, "limit", c->limit, s->cfg.limit) ||
           differ_int(m, "examples", examples, s->examples) ||
           differ_int(m, "batch", batch, s->batch) || differ_real(m, "lr", c->lr, s->cfg.lr) ||
           differ_real(m, "momentum", c->momentum, s->cfg.momentum) ||
           differ_real(m, "lr-decay", c->lr_decay, s->cfg.lr_decay) ||
           differ_int(m, "patience", c->patience, s->cfg.patience) ||
           differ_int(m, "ranks", c->comm ? c->comm->size : 1, s->ranks);
}

/* opt's tensor prefix + like's name, created (zero) when missing; NULL
 * with err set when it cannot be, or exists with another shape. */
static cae_tensor *opt_tensor(cae_params *opt, const char *prefix, const char *name, int rank,
                              const int64_t *shape, cae_error *err)
{
    char full[96];
    snprintf(full, sizeof full, "%s%s", prefix, name);
    cae_tensor *x = cae_params_get(opt, full);
    int same = x && x->rank == rank;
    for (int r = 0; same && r < rank; r++) same = x->shape[r] == shape[r];
    if (x && !same) {
        char have[64];
        cae_error_set(err, CAE_ERR_SHAPE,
                      "train: the optimizer store's '%s' is %s, expected the shape of '%s'", full,
                      cae_shape_str(x, have, sizeof have), name);
        return NULL;
    }
    if (!x && !(x = cae_params_add(opt, full, rank, shape)))
        cae_error_set(err, CAE_ERR_NOMEM, "train: optimizer store: %s",
                      cae_params_error(opt) ? cae_params_error(opt) : "out of memory");
    return x;
}

/* Best-epoch snapshot: task tensors -> best:* (save) or back. */
static void copy_best(cae_task *t, cae_tensor **best, int save)
{
    for (int i = 0; i < cae_task_n_params(t); i++) {
        cae_tensor *p = cae_task_param(t, i);
        const size_t bytes = (size_t)p->size * sizeof(cae_real);
        if (save)
            memcpy(best[i]->data, p->data, bytes);
        else
            memcpy(p->data, best[i]->data, bytes);
    }
}

/* The task's buffers (an rbm's persistent chain, ...) into opt under their
 * own names (save), or back from opt where it holds them (restore). */
static cae_status buffers_sync(cae_task *t, cae_params *opt, int save, cae_error *err)
{
    cae_params *b = cae_task_buffers(t);
    for (int i = 0; i < cae_params_count(b); i++) {
        cae_tensor *x = cae_params_at(b, i);
        cae_tensor *o = save ? opt_tensor(opt, "", x->name, x->rank, x->shape, err)
                             : cae_params_get(opt, x->name);
        if (save && !o) return err ? err->status : CAE_ERR_NOMEM;
        if (!o) continue;
        if (o->size != x->size)
            return cae_error_set(err, CAE_ERR_MISMATCH, "train: cannot resume: the optimizer "
                                 "store's '%s' has %lld values, the task's buffer %lld",
                                 x->name, (long long)o->size, (long long)x->size);
        const size_t bytes = (size_t)x->size * sizeof(cae_real);
        if (save) memcpy(o->data, x->data, bytes);
        else memcpy(x->data, o->data, bytes);
    }
    return CAE_OK;
}

cae_status cae_train(cae_task *t, const cae_dataset *train, const cae_dataset *valid,
                     const cae_train_config *cfg, const cae_train_hooks *hooks,
                     cae_train_result *res, cae_error *err)
{
    memset(res, 0, sizeof *res);
    const char *bad = check_config(cfg);
    if (bad) return cae_error_set(err, CAE_ERR_ARG, "train: %s", bad);
    const int64_t dim = cae_task_inputs(t), B = cae_task_batch(t);
    if (train->dim != dim || (valid && valid->dim != dim))
        return cae_error_set(err, CAE_ERR_SHAPE,
                             "train: the data has %lld inputs per example, the model expects %lld",
                             (long long)(train->dim != dim ? train->dim : valid->dim),
                             (long long)dim);
    if (cae_task_aux(t) && !cfg->aux)
        return cae_error_set(err, CAE_ERR_ARG, "train: the %s task has a side input: set the "
                             "configuration's aux", cae_task_name(t));
    if (cae_task_classes(t) > 0 && (!train->y || (valid && valid->n > 0 && !valid->y)))
        return cae_error_set(err, CAE_ERR_ARG, "train: the %s task needs labels, the data has none",
                             cae_task_name(t));
    const int64_t n = cfg->limit && cfg->limit < train->n ? cfg->limit : train->n;
    if (n < 1) return cae_error_set(err, CAE_ERR_ARG, "train: no training examples");
    const int np = cae_task_n_params(t);
    const int stopping = valid && cfg->patience > 0;
    const int resume = cfg->first_epoch > 0;
    cae_params *own = cfg->opt ? NULL : cae_params_new();
    cae_params *opt = cfg->opt ? cfg->opt : own;
    cae_dataset *view = cae_dataset_view(train, 0, n);
    cae_batcher *bt = view ? cae_batcher_new(view, B, cfg->seed, 0) : NULL;
    cae_real *xb = cae_alloc_reals((size_t)(B * dim));
    int32_t *yb = calloc((size_t)B, sizeof *yb);
    cae_tensor **vel = calloc((size_t)np + 1, sizeof *vel), **best = calloc((size_t)np + 1, sizeof *best);
    cae_real **vdata = calloc((size_t)np + 1, sizeof *vdata);
    double *grad_check = calloc((size_t)np + 1, sizeof *grad_check);
    cae_tensor *state = NULL, *ranks = NULL;
    cae_status rc = CAE_ERR_NOMEM;
    train_dist dist;
    memset(&dist, 0, sizeof dist);
    if (!opt || !view || !bt || !xb || !yb || !vel || !best || !vdata || !grad_check) {
        cae_error_set(err, CAE_ERR_NOMEM, "train: out of memory");
        goto done;
    }
    if ((rc = train_dist_init(&dist, cfg, t, err))) goto done;
    const int part = dist.c ? dist.rank : 0, parts = dist.c ? dist.size : 1;
    for (int i = 0; i < np; i++)
        if (cae_params_get(opt, cae_task_param(t, i)->name) == cae_task_param(t, i)) {
            rc = cae_error_set(err, CAE_ERR_ARG, "train: the optimizer store is the task's "
                               "parameter store: pass a separate one");
            goto done;
        }

    /* Where training stands: fresh, or the saved state checked. */
    cae_train_state st = {.epochs_done = cfg->first_epoch, .examples = n, .batch = B,
                          .best_metric = INFINITY};
    cae_train_state saved;
    const int has_saved = resume && !cae_train_state_get(opt, &saved);
    if (has_saved) {
        cae_mismatch mm;
        if (cae_train_state_diff(cfg, &saved, n, B, &mm)) {
            rc = cae_error_set(err, CAE_ERR_MISMATCH, "train: cannot resume: %s is %s, the saved "
                               "state's %s", mm.field, mm.want, mm.saved);
            goto done;
        }
        st.best_epoch = saved.best_epoch;
        st.since_best = saved.since_best;
        st.best_metric = saved.best_metric;
        for (int i = 0; stopping && st.best_epoch > 0 && i < np; i++) {
            char full[96];
            snprintf(full, sizeof full, "best:%s", cae_task_param(t, i)->name);
            if (!cae_params_get(opt, full)) {
                rc = cae_error_set(err, CAE_ERR_MISMATCH, "train: cannot resume: the saved "
                                   "state's best epoch is %d but the optimizer store has no '%s'",
                                   st.best_epoch, full);
                goto done;
            }
        }
        if ((rc = buffers_sync(t, opt, 0, err))) goto done;
    }
    /* Every tensor is created before any data pointer is used (adding moves
     * the store's blocks; the views stay valid). */
    for (int i = 0; i < np; i++) {
        const cae_tensor *p = cae_task_param(t, i);
        if ((cfg->momentum > 0 &&
             !(vel[i] = opt_tensor(opt, "v:", p->name, p->rank, p->shape, err))) ||
            (stopping &&
             !(best[i] = opt_tensor(opt, "best:", p->name, p->rank, p->shape, err)))) {
            rc = err ? err->status : CAE_ERR_NOMEM;
            goto done;
        }
    }
    if (!(state = opt_tensor(opt, "", STATE_NAME, 1, (int64_t[]){4 * S_COUNT}, err)) ||
        (dist.c && !(ranks = opt_tensor(opt, "", RANKS_NAME, 1, (int64_t[]){1}, err)))) {
        rc = err ? err->status : CAE_ERR_NOMEM;
        goto done;
    }
    if (ranks) ranks->data[0] = (cae_real)dist.size;
    if (!resume)
        for (int i = 0; i < np; i++)
            if (vel[i]) memset(vel[i]->data, 0, (size_t)vel[i]->size * sizeof(cae_real));
    state_write(state, cfg, &st);
    res->epochs_run = cfg->first_epoch;
    res->best_epoch = st.best_epoch;
    res->best_valid_metric = st.best_epoch ? st.best_metric : 0;

    /* Data-parallel: the ranks start from the same parameters and the same
     * run (a hash of the configuration goes with the parameters'). */
    if (dist.c) {
        char when[64];
        snprintf(when, sizeof when, "at the start of epoch %d", cfg->first_epoch + 1);
        const uint64_t run[] = {(uint64_t)n, (uint64_t)B, (uint64_t)dim, cfg->seed,
                                bits_of(cfg->lr), bits_of(cfg->momentum), bits_of(cfg->lr_decay),
                                (uint64_t)cfg->epochs, (uint64_t)cfg->first_epoch,
                                (uint64_t)cfg->patience, (uint64_t)cfg->check_every,
                                (uint64_t)(valid ? valid->n : -1)};
        if ((rc = train_dist_check(&dist, t, run, sizeof run / sizeof run[0], NULL, 0, when, err)))
            goto done;
    }
    const int64_t per_epoch = cae_batcher_batches_per_epoch(bt);

    for (int e = cfg->first_epoch; e < cfg->epochs; e++) {
        if (stopping && st.since_best >= cfg->patience) break;
        const double t0 = now();
        const cae_real lr = (cae_real)(cfg->lr / (1 + cfg->lr_decay * e));
        cae_batcher_epoch(bt, (uint64_t)e);
        double sum = 0;
        int64_t done_rows = 0, step = 0, rows, m;
        /* One process: one pass per step, forward, backward and the update
         * (cae/sgd.h). Copies the step keeps (a transposed W, column norms)
         * are rebuilt at the start of every epoch: the hooks may have written
         * the tensors in between (on_batch must not). Data-parallel: the
         * ranks' gradients are summed between backward and the update, so
         * the step is cae_task_step and the update a pass of its own. */
        for (int i = 0; i < np; i++) /* (the store's blocks move as it grows) */
            vdata[i] = vel[i] ? vel[i]->data : NULL;
        cae_sgd sgd = {.lr = lr, .momentum = cfg->momentum,
                       .velocity = cfg->momentum > 0 ? vdata : NULL, .grad_check = grad_check};
        while ((m = cae_batcher_next_part(bt, part, parts, xb, yb, &rows)) > 0) {
            double obj = NAN;
            /* The side input of this part's rows; a failure stops the step
             * like a failed step (on every rank). */
            cae_status src = CAE_OK;
            cae_error aux_err = {0};
            if (cae_task_aux(t))
                src = cfg->aux(cfg->aux_ctx, e, cae_batcher_indices(bt), rows, cae_task_aux(t), &aux_err);
            const int aux_failed = src != CAE_OK;
            const char *msg = aux_failed ? aux_err.msg : NULL;
            if (!src && (src = dist.c ? cae_task_step(t, xb, yb, rows, &obj)
                                      : cae_task_step_sgd(t, xb, yb, rows, &sgd, &obj)))
                msg = cae_task_error(t);
            sgd.continues = 1;
            const int code = src ? 2 : !isfinite(obj);
            if (dist.c) { /* a failure travels with the gradients (train_dist_fail) */
                if ((rc = train_dist_grads(&dist, t, rows, m, code, err))) goto done;
            } else if (aux_failed) { /* the callback's own message */
                rc = src;
                if (err) *err = aux_err;
                goto done;
            } else if (src) {
                rc = cae_error_set(err, src, "train: %s", msg);
                goto done;
            } else if (code) { /* nothing was updated */
                double v;
                const cae_tensor *who = blame(t, &v);
                rc = cae_error_set(err, CAE_ERR_NUMERIC,
                                   "train: the objective is %g at epoch %d, step %lld (%s %g in "
                                   "'%s'): stopped (lower the learning rate?)",
                                   obj, e + 1, (long long)step + 1,
                                   isfinite(v) ? "largest parameter magnitude" : "parameter value",
                                   v, who ? who->name : "?");
                goto done;
            }
            for (int i = 0; i < np; i++) {
                cae_tensor *p = cae_task_param(t, i);
                const double check =
                    dist.c ? update(p, vel[i] ? vel[i]->data : NULL, lr, (cae_real)cfg->momentum,
                                    cae_task_threads(t))
                           : grad_check[i];
                if (!isfinite(check) && dist.c) {
                    rc = train_dist_fail(&dist, code, src, msg, p->name, e + 1,
                                         (long long)step + 1, err);
                    goto done;
                }
                if (!isfinite(check)) {
                    rc = cae_error_set(err, CAE_ERR_NUMERIC,
                                       "train: the gradient of '%s' is not finite at epoch %d, "
                                       "step %lld: stopped (lower the learning rate?)",
                                       cae_task_param(t, i)->name, e + 1, (long long)step + 1);
                    goto done;
                }
            }
            sum += obj * (double)rows;
            done_rows += m;
            step++;
            if (dist.c && cfg->check_every > 0 && (e * per_epoch + step) % cfg->check_every == 0) {
                char when[64];
                snprintf(when, sizeof when, "after epoch %d, step %lld", e + 1, (long long)step);
                if ((rc = train_dist_check(&dist, t, NULL, 0, NULL, 0, when, err))) goto done;
            }
            if (hooks && hooks->on_batch) hooks->on_batch(e + 1, done_rows, n, hooks->ctx);
        }
        cae_epoch_report r = {.epoch = e + 1, .epochs = cfg->epochs, .lr = lr,
                              .examples = done_rows, .valid_loss = NAN, .valid_metric = NAN};
        if (dist.c) { /* the same parameters everywhere, and the objective's sum */
            char when[64];
            snprintf(when, sizeof when, "after epoch %d", e + 1);
            if ((rc = train_dist_check(&dist, t, NULL, 0, &sum, 1, when, err))) goto done;
        }
        r.objective = sum / (double)done_rows;
        r.seconds = now() - t0;
        if (valid && valid->n > 0) {
            cae_error ev;
            if ((rc = cae_task_evaluate_comm(t, valid, dist.c, &r.valid_loss, &r.valid_metric, &ev))) {
                cae_error_set(err, rc, "train: %s", ev.msg);
                goto done;
            }
            if (r.valid_metric < st.best_metric) {
                st.best_metric = r.valid_metric;
                st.best_epoch = e + 1;
                res->best_epoch = e + 1;
                res->best_valid_metric = st.best_metric;
                r.is_best = 1;
                st.since_best = 0;
                if (stopping) copy_best(t, best, 1);
            } else {
                st.since_best++;
            }
        }
        /* The store now describes the end of this epoch (for the hook). */
        if ((rc = buffers_sync(t, opt, 1, err))) goto done;
        st.epochs_done = e + 1;
        state_write(state, cfg, &st);
        res->epochs_run = e + 1;
        res->last_objective = r.objective;
        int32_t stop = hooks && hooks->on_epoch && hooks->on_epoch(&r, hooks->ctx);
        if (dist.c && (rc = train_dist_bcast(&dist, &stop, sizeof stop, err))) goto done;
        if (stop) break;
    }
    if (stopping && st.best_epoch > 0) copy_best(t, best, 0);
    rc = CAE_OK;
done:
    train_dist_free(&dist);
    cae_batcher_free(bt);
    cae_dataset_free(view);
    cae_free(xb);
    free(yb);
    free(vel);
    free(vdata);
    free(grad_check);
    free(best);
    cae_params_free(own);
    return rc;
}

cae_status cae_classify_error(cae_task *t, const cae_dataset *d, double *error, double *interval)
{
    double loss;
    cae_status st = cae_task_evaluate(t, d, &loss, error);
    if (st) return st;
    *interval = d->n ? 1.96 * sqrt(*error * (1 - *error) / (double)d->n) : 0;
    return CAE_OK;
}
