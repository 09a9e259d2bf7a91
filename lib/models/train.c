/* Minibatch SGD with momentum, per-epoch evaluation, early stopping and a
 * NaN/Inf guard folded into the update pass. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <omp.h>

#include "cae/train.h"

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

/* Update one tensor; returns the sum of its squared gradient (NaN/Inf if
 * the gradient is not finite). v may be NULL (no momentum). */
static double update(cae_tensor *t, cae_real *v, cae_real lr, cae_real mom)
{
    const int64_t n = t->size;
    cae_real *w = t->data;
    const cae_real *g = t->grad;
    double ss = 0;
    if (v) {
#pragma omp parallel for simd reduction(+ : ss) schedule(static) if (n >= 65536)
        for (int64_t i = 0; i < n; i++) {
            ss += (double)g[i] * (double)g[i];
            v[i] = mom * v[i] - lr * g[i];
            w[i] += v[i];
        }
    } else {
#pragma omp parallel for simd reduction(+ : ss) schedule(static) if (n >= 65536)
        for (int64_t i = 0; i < n; i++) {
            ss += (double)g[i] * (double)g[i];
            w[i] -= lr * g[i];
        }
    }
    return ss;
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

/* Snapshot / restore of the task's tensors (early stopping). */
static void copy_params(cae_task *t, cae_real *buf, int save)
{
    size_t off = 0;
    for (int i = 0; i < cae_task_n_params(t); i++) {
        cae_tensor *p = cae_task_param(t, i);
        if (save)
            memcpy(buf + off, p->data, (size_t)p->size * sizeof(cae_real));
        else
            memcpy(p->data, buf + off, (size_t)p->size * sizeof(cae_real));
        off += (size_t)p->size;
    }
}

int cae_train(cae_task *t, const cae_dataset *train, const cae_dataset *valid,
              const cae_train_config *cfg, const cae_train_hooks *hooks, cae_train_result *res,
              char *err, size_t errlen)
{
    memset(res, 0, sizeof *res);
    const char *bad = check_config(cfg);
    if (bad) {
        snprintf(err, errlen, "train: %s", bad);
        return -1;
    }
    const int64_t dim = cae_task_inputs(t), B = cae_task_batch(t);
    if (train->dim != dim || (valid && valid->dim != dim)) {
        snprintf(err, errlen, "train: the data has %lld inputs per example, the model expects %lld",
                 (long long)(train->dim != dim ? train->dim : valid->dim), (long long)dim);
        return -1;
    }
    const int64_t n = cfg->limit && cfg->limit < train->n ? cfg->limit : train->n;
    if (n < 1) {
        snprintf(err, errlen, "train: no training examples");
        return -1;
    }
    cae_dataset *view = cae_dataset_view(train, 0, n);
    cae_batcher *bt = view ? cae_batcher_new(view, B, cfg->seed, 0) : NULL;
    size_t total = 0;
    for (int i = 0; i < cae_task_n_params(t); i++) total += (size_t)cae_task_param(t, i)->size;
    cae_real *xb = cae_alloc_reals((size_t)(B * dim));
    int32_t *yb = calloc((size_t)B, sizeof *yb);
    cae_real *vel = cfg->momentum > 0 ? cae_alloc_reals(total) : NULL;
    const int stopping = valid && cfg->patience > 0;
    cae_real *best = stopping ? cae_alloc_reals(total) : NULL;
    int rc = -1;
    if (!view || !bt || !xb || !yb || (cfg->momentum > 0 && !vel) || (stopping && !best)) {
        snprintf(err, errlen, "train: out of memory");
        goto done;
    }
    double best_metric = INFINITY;
    int since_best = 0;
    for (int e = cfg->first_epoch; e < cfg->epochs; e++) {
        const double t0 = now();
        const cae_real lr = (cae_real)(cfg->lr / (1 + cfg->lr_decay * e));
        cae_batcher_epoch(bt, (uint64_t)e);
        double sum = 0;
        int64_t done_rows = 0, step = 0, rows;
        while ((rows = cae_batcher_next(bt, xb, yb)) > 0) {
            const double obj = cae_task_step(t, xb, yb, rows);
            if (!isfinite(obj)) {
                if (cae_task_error(t))
                    snprintf(err, errlen, "train: %s", cae_task_error(t));
                else {
                    double v;
                    const cae_tensor *who = blame(t, &v);
                    snprintf(err, errlen,
                             "train: the objective is %g at epoch %d, step %lld (%s %g in '%s'): "
                             "stopped (lower the learning rate?)",
                             obj, e + 1, (long long)step + 1,
                             isfinite(v) ? "largest parameter magnitude" : "parameter value", v,
                             who ? who->name : "?");
                }
                goto done;
            }
            size_t off = 0;
            for (int i = 0; i < cae_task_n_params(t); i++) {
                cae_tensor *p = cae_task_param(t, i);
                const double ss = update(p, vel ? vel + off : NULL, lr, (cae_real)cfg->momentum);
                if (!isfinite(ss)) {
                    snprintf(err, errlen,
                             "train: the gradient of '%s' is not finite at epoch %d, step %lld: "
                             "stopped (lower the learning rate?)",
                             p->name, e + 1, (long long)step + 1);
                    goto done;
                }
                off += (size_t)p->size;
            }
            sum += obj * (double)rows;
            done_rows += rows;
            step++;
            if (hooks && hooks->on_batch) hooks->on_batch(e + 1, done_rows, n, hooks->ctx);
        }
        cae_epoch_report r = {.epoch = e + 1, .epochs = cfg->epochs, .lr = lr,
                              .examples = done_rows, .valid_loss = NAN, .valid_metric = NAN};
        r.objective = sum / (double)done_rows;
        r.seconds = now() - t0;
        if (valid && valid->n > 0) {
            if (cae_task_evaluate(t, valid, &r.valid_loss, &r.valid_metric)) {
                snprintf(err, errlen, "train: %s", cae_task_error(t));
                goto done;
            }
            if (r.valid_metric < best_metric) {
                best_metric = r.valid_metric;
                res->best_epoch = e + 1;
                res->best_valid_metric = best_metric;
                r.is_best = 1;
                since_best = 0;
                if (stopping) copy_params(t, best, 1);
            } else {
                since_best++;
            }
        }
        res->epochs_run = e + 1;
        res->last_objective = r.objective;
        if (hooks && hooks->on_epoch && hooks->on_epoch(&r, hooks->ctx)) break;
        if (stopping && since_best >= cfg->patience) break;
    }
    if (stopping && res->best_epoch > 0) copy_params(t, best, 0);
    rc = 0;
done:
    cae_batcher_free(bt);
    cae_dataset_free(view);
    cae_free(xb);
    free(yb);
    cae_free(vel);
    cae_free(best);
    return rc;
}

int cae_classify_error(cae_task *t, const cae_dataset *d, double *error, double *interval)
{
    double loss;
    if (cae_task_evaluate(t, d, &loss, error)) return -1;
    *interval = d->n ? 1.96 * sqrt(*error * (1 - *error) / (double)d->n) : 0;
    return 0;
}
