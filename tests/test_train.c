/* The training loop (cae/train.h) mechanics: the last partial batch is
 * trained on, shuffling is a function of the seed, 1 and 2 threads agree,
 * early stopping leaves the best epoch's parameters, the NaN/Inf guard stops
 * with a message that says where, and bad configurations and data are
 * refused with messages that say what is wrong, and a run stopped after any
 * epoch and resumed from copies of its stores and RNG ends bit for bit
 * where the uninterrupted run does.
 *
 * The threads and early-stopping cases use real MNIST ($CAE_DATA_DIR or
 * CAE_SOURCE_DIR/data; they fail saying so when it is missing); the others
 * run on small synthetic data sets. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cae/model.h"
#include "cae/train.h"
#include "testutil.h"

/* tu_data_dir, tu_mnist, tu_head: tests/testutil.h */

/* A synthetic set: n examples of dim values in [0,1] (seeded), labels
 * i % classes. Release with free_synth. */
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
    for (int64_t i = 0; i < n; i++) d->y[i] = (int32_t)(i % classes);
    return d;
}

static void free_synth(cae_dataset *d)
{
    if (!d) return;
    cae_free(d->x);
    free(d->y);
    free(d);
}

/* Layer 1 of kind in a fresh store (init seed) and its pretraining task. */
static cae_task *pretrain_task(cae_params *p, cae_model_kind kind, int64_t n_in, int64_t n_hidden,
                               int64_t batch, uint64_t seed, int threads)
{
    cae_error err;
    cae_layer_config c;
    cae_layer_config_default(&c, kind, n_in, n_hidden);
    ck_assert_msg(!cae_layer_params(p, 1, &c, seed, &err), "%s: %s",
                  cae_model_kind_name(kind), err.msg);
    cae_task *t = cae_task_pretrain(p, 1, &c, batch, seed, threads, &err);
    ck_assert_msg(t != NULL, "%s: %s", cae_model_kind_name(kind), err.msg);
    return t;
}

static cae_train_config config(int epochs, double lr, uint64_t seed)
{
    cae_train_config c;
    cae_train_config_default(&c);
    c.epochs = epochs;
    c.lr = lr;
    c.seed = seed;
    return c;
}

static size_t total_size(const cae_task *t)
{
    size_t n = 0;
    for (int i = 0; i < cae_task_n_params(t); i++) n += (size_t)cae_task_param(t, i)->size;
    return n;
}

/* Every value of every tensor the task trains, concatenated (malloc'd). */
static cae_real *snapshot(const cae_task *t, size_t *n_out)
{
    const size_t n = total_size(t);
    cae_real *s = malloc(n * sizeof *s), *q = s;
    for (int i = 0; i < cae_task_n_params(t); i++) {
        const cae_tensor *p = cae_task_param(t, i);
        memcpy(q, p->data, (size_t)p->size * sizeof *q);
        q += p->size;
    }
    if (n_out) *n_out = n;
    return s;
}

#define MAX_EPOCHS 64
typedef struct epochs_seen {
    int n;
    cae_epoch_report r[MAX_EPOCHS];
} epochs_seen;

static int record_epoch(const cae_epoch_report *r, void *ctx)
{
    epochs_seen *h = ctx;
    if (h->n < MAX_EPOCHS) h->r[h->n++] = *r;
    return 0;
}

/* ------------------------------------------------------ last partial batch */

#define MAX_BATCHES 16
typedef struct batches_seen {
    const cae_task *t;
    int n;
    int epoch[MAX_BATCHES];
    int64_t done[MAX_BATCHES], total[MAX_BATCHES];
    cae_real *after[MAX_BATCHES]; /* parameters after each batch */
} batches_seen;

static void record_batch(int epoch, int64_t done, int64_t total, void *ctx)
{
    batches_seen *b = ctx;
    if (b->n >= MAX_BATCHES) return;
    b->epoch[b->n] = epoch;
    b->done[b->n] = done;
    b->total[b->n] = total;
    b->after[b->n] = snapshot(b->t, NULL);
    b->n++;
}

/* 50 examples, batch 20, 2 epochs: the hook sees 20, 40, 50 of 50 in each
 * epoch, the third (10-row) batch changes the parameters, and the epoch
 * report counts 50 examples. With limit 45: 20, 40, 45 of 45. */
START_TEST(last_partial_batch_is_used)
{
    enum { N = 50, DIM = 12, HID = 5 };
    cae_dataset *d = synth(N, DIM, 2, 1);
    for (int lim = 0; lim < 2; lim++) {
        const int64_t n = lim ? 45 : N;
        cae_params *p = cae_params_new();
        cae_task *t = pretrain_task(p, CAE_MODEL_AE, DIM, HID, 20, 3, 1);
        cae_train_config c = config(2, 0.05, 3);
        c.limit = lim ? 45 : 0;
        batches_seen b = {.t = t};
        cae_train_hooks hk = {NULL, record_batch, &b};
        cae_train_result res;
        cae_error err;
        ck_assert_msg(!cae_train(t, d, NULL, &c, &hk, &res, &err), "%s", err.msg);
        const int64_t want[3] = {20, 40, n};
        ck_assert_msg(b.n == 6, "limit %lld: %d batches seen over 2 epochs, want 6", (long long)c.limit,
                      b.n);
        const size_t np = total_size(t);
        for (int i = 0; i < 6; i++) {
            ck_assert_msg(b.epoch[i] == 1 + i / 3 && b.done[i] == want[i % 3] && b.total[i] == n,
                          "limit %lld: batch %d: epoch %d, %lld of %lld done; want epoch %d, %lld "
                          "of %lld",
                          (long long)c.limit, i, b.epoch[i], (long long)b.done[i],
                          (long long)b.total[i], 1 + i / 3, (long long)want[i % 3], (long long)n);
            if (i % 3 == 2)
                ck_assert_msg(memcmp(b.after[i], b.after[i - 1], np * sizeof(cae_real)) != 0,
                              "limit %lld: epoch %d: the last partial batch (%lld rows) did not "
                              "change the parameters",
                              (long long)c.limit, b.epoch[i], (long long)(n - 40));
        }
        for (int i = 0; i < b.n; i++) free(b.after[i]);
        cae_task_free(t);
        cae_params_free(p);
    }
    /* The epoch report counts every example, the partial batch included. */
    cae_params *p = cae_params_new();
    cae_task *t = pretrain_task(p, CAE_MODEL_AE, DIM, HID, 20, 3, 1);
    cae_train_config c = config(2, 0.05, 3);
    epochs_seen h = {0};
    cae_train_hooks hk = {record_epoch, NULL, &h};
    cae_train_result res;
    cae_error err;
    ck_assert_msg(!cae_train(t, d, NULL, &c, &hk, &res, &err), "%s", err.msg);
    ck_assert_int_eq(h.n, 2);
    for (int e = 0; e < 2; e++)
        ck_assert_msg(h.r[e].examples == N, "epoch %d reports %lld examples, want %d", e + 1,
                      (long long)h.r[e].examples, N);
    cae_task_free(t);
    cae_params_free(p);
    free_synth(d);
}
END_TEST

/* ------------------------------------------------------------- shuffling */

/* Train an ae (no noise: only the order of examples can differ) on d with
 * shuffle seed `seed`; returns the final parameters and the objectives. */
static cae_real *train_ae(const cae_dataset *d, uint64_t seed, double obj[3], size_t *n)
{
    cae_params *p = cae_params_new();
    cae_task *t = pretrain_task(p, CAE_MODEL_AE, d->dim, 8, 10, 5, 1);
    cae_train_config c = config(3, 0.05, seed);
    epochs_seen h = {0};
    cae_train_hooks hk = {record_epoch, NULL, &h};
    cae_train_result res;
    cae_error err;
    ck_assert_msg(!cae_train(t, d, NULL, &c, &hk, &res, &err), "%s", err.msg);
    for (int e = 0; e < 3; e++) obj[e] = h.r[e].objective;
    cae_real *s = snapshot(t, n);
    cae_task_free(t);
    cae_params_free(p);
    return s;
}

/* Same init, same task seed, three runs: shuffle seed 1 twice gives
 * identical objectives and bit-identical parameters; seed 2 gives others. */
START_TEST(shuffle_is_a_function_of_the_seed)
{
    cae_dataset *d = synth(100, 30, 2, 2);
    double o1[3], o1b[3], o2[3];
    size_t n;
    cae_real *p1 = train_ae(d, 1, o1, &n), *p1b = train_ae(d, 1, o1b, &n), *p2 = train_ae(d, 2, o2, &n);
    for (int e = 0; e < 3; e++)
        ck_assert_msg(o1[e] == o1b[e], "seed 1 twice: epoch %d objective %.17g vs %.17g", e + 1,
                      o1[e], o1b[e]);
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(p1[i] == p1b[i], "seed 1 twice: parameter %zu %.17g vs %.17g", i,
                      (double)p1[i], (double)p1b[i]);
    ck_assert_msg(o1[0] != o2[0] && memcmp(p1, p2, n * sizeof *p1) != 0,
                  "seeds 1 and 2 trained identically: epoch 1 objective %.17g vs %.17g", o1[0],
                  o2[0]);
    free(p1);
    free(p1b);
    free(p2);
    free_synth(d);
}
END_TEST

/* ---------------------------------------------------------------- threads */

/* 500 MNIST digits, 100 hidden units, batch 20, 2 epochs, the same seeds:
 * with 1 and with 2 threads, every epoch's mean objective and validation
 * loss agree within 1e-5 relative (cae: the fused penalty kernel; dae-b:
 * the noise draws must not depend on the thread count either). */
START_TEST(threads_agree)
{
    static const cae_model_kind kinds[2] = {CAE_MODEL_CAE, CAE_MODEL_DAE_B};
    cae_splits *s = tu_mnist();
    cae_dataset *train = tu_head(s->train, 500), *valid = tu_head(s->valid, 500);
    for (int k = 0; k < 2; k++) {
        epochs_seen h[2] = {{0}};
        for (int th = 0; th < 2; th++) {
            cae_params *p = cae_params_new();
            cae_task *t = pretrain_task(p, kinds[k], 784, 100, 20, 13, th + 1);
            cae_train_config c = config(2, 0.01, 13);
            cae_train_hooks hk = {record_epoch, NULL, &h[th]};
            cae_train_result res;
            cae_error err;
            ck_assert_msg(!cae_train(t, train, valid, &c, &hk, &res, &err), "%s", err.msg);
            cae_task_free(t);
            cae_params_free(p);
        }
        for (int e = 0; e < 2; e++) {
            const double a[2] = {h[0].r[e].objective, h[0].r[e].valid_loss};
            const double b[2] = {h[1].r[e].objective, h[1].r[e].valid_loss};
            const char *what[2] = {"mean objective", "validation loss"};
            for (int q = 0; q < 2; q++)
                ck_assert_msg(fabs(a[q] - b[q]) <= 1e-5 * fabs(a[q]),
                              "%s epoch %d %s: 1 thread %.10g, 2 threads %.10g",
                              cae_model_kind_name(kinds[k]), e + 1, what[q], a[q], b[q]);
        }
    }
    cae_dataset_free(train);
    cae_dataset_free(valid);
    cae_splits_free(s);
}
END_TEST

/* --------------------------------------------------------- early stopping */

typedef struct stop_watch {
    const cae_task *t;
    int n;
    double metric[MAX_EPOCHS];
    int is_best[MAX_EPOCHS];
    cae_real *best, *last;
    int best_epoch;
} stop_watch;

static int watch_epoch(const cae_epoch_report *r, void *ctx)
{
    stop_watch *w = ctx;
    if (w->n >= MAX_EPOCHS) return 0;
    w->metric[w->n] = r->valid_metric;
    w->is_best[w->n] = r->is_best;
    w->n++;
    free(w->last);
    w->last = snapshot(w->t, NULL);
    if (r->is_best) {
        free(w->best);
        w->best = snapshot(w->t, NULL);
        w->best_epoch = r->epoch;
    }
    return 0;
}

/* Fine-tune an MLP (784-50-10) on 500 digits with patience 1 and a
 * learning rate (2.0, momentum 0.5) large enough for the validation error
 * to go up: training stops right after the first epoch that does not
 * improve, and the store then holds exactly the parameters the on_epoch
 * hook saw at the best epoch (not the last epoch's), whose validation
 * error is the reported best. */
START_TEST(early_stopping_restores_best)
{
    cae_error err;
    cae_splits *s = tu_mnist();
    cae_dataset *train = tu_head(s->train, 500), *valid = tu_head(s->valid, 500);
    cae_mlp_config m = {.n_layers = 1, .sizes = {784, 50}, .act = {CAE_ACT_SIGMOID}, .n_classes = 10};
    cae_params *p = cae_params_new();
    cae_rng init;
    cae_rng_seed(&init, 17, 1);
    ck_assert_msg(!cae_mlp_params(p, &m, 17, &err), "%s", err.msg);
    cae_task *t = cae_task_finetune(p, &m, 20, 17, 1, &err);
    ck_assert_msg(t != NULL, "%s", err.msg);
    cae_train_config c = config(40, 2.0, 17);
    c.momentum = 0.5;
    c.patience = 1;
    stop_watch w = {.t = t};
    cae_train_hooks hk = {watch_epoch, NULL, &w};
    cae_train_result res;
    ck_assert_msg(!cae_train(t, train, valid, &c, &hk, &res, &err), "%s", err.msg);
    ck_assert_msg(res.epochs_run == w.n && w.n < c.epochs,
                  "did not stop early: %d epochs run of %d (hook saw %d)", res.epochs_run, c.epochs,
                  w.n);
    ck_assert_msg(res.best_epoch == w.best_epoch && res.epochs_run == res.best_epoch + 1,
                  "best epoch %d (hook: %d), stopped after %d: patience 1 stops one epoch after "
                  "the best", res.best_epoch, w.best_epoch, res.epochs_run);
    ck_assert_msg(w.metric[w.n - 1] >= res.best_valid_metric,
                  "last epoch's validation error %.4f is below the best %.4f", w.metric[w.n - 1],
                  res.best_valid_metric);
    size_t n;
    cae_real *now = snapshot(t, &n);
    ck_assert_msg(memcmp(w.last, w.best, n * sizeof *now) != 0,
                  "the last epoch's parameters equal the best's: the case does not test restoring");
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(now[i] == w.best[i],
                      "after early stopping, parameter %zu is %.10g, at the best epoch %d it was "
                      "%.10g (last epoch %d: %.10g)",
                      i, (double)now[i], res.best_epoch, (double)w.best[i], res.epochs_run,
                      (double)w.last[i]);
    double error, ci;
    ck_assert(!cae_classify_error(t, valid, &error, &ci));
    ck_assert_msg(error == res.best_valid_metric,
                  "restored parameters give validation error %.4f, the best epoch had %.4f", error,
                  res.best_valid_metric);
    free(now);
    free(w.best);
    free(w.last);
    cae_task_free(t);
    cae_params_free(p);
    cae_dataset_free(train);
    cae_dataset_free(valid);
    cae_splits_free(s);
}
END_TEST

/* --------------------------------------------------------------- NaN guard */

/* A learning rate of 1e30 blows the weights up until values overflow:
 * cae_train returns -1 with a message naming the epoch, the step and one
 * of the task's tensors, and reports it through no hook as a finished
 * epoch. The encoder is relu: with the paper's sigmoid AE, 1e30 alone
 * overflows nothing (the code saturates, the stable cross-entropy of
 * logits ~1e31 is finite and the gradients stay O(1)), so training goes
 * on with finite, useless weights; an unbounded code makes every step
 * square the scale (1e30 -> 1e60 -> ...), an overflow within a few steps in
 * either precision. */
START_TEST(nan_guard_names_where)
{
    cae_error err;
    cae_dataset *d = synth(100, 30, 2, 4);
    cae_params *p = cae_params_new();
    cae_layer_config lc;
    cae_layer_config_default(&lc, CAE_MODEL_AE, 30, 8);
    lc.act = CAE_ACT_LINEAR;
    cae_rng init;
    cae_rng_seed(&init, 6, 1);
    ck_assert_msg(!cae_layer_params(p, 1, &lc, 6, &err), "%s", err.msg);
    cae_task *t = cae_task_pretrain(p, 1, &lc, 10, 6, 1, &err);
    ck_assert_msg(t != NULL, "%s", err.msg);
    cae_train_config c = config(3, 1e30, 6);
    epochs_seen h = {0};
    cae_train_hooks hk = {record_epoch, NULL, &h};
    cae_train_result res;
    ck_assert_msg(cae_train(t, d, NULL, &c, &hk, &res, &err) == CAE_ERR_NUMERIC,
                  "training with lr 1e30 did not fail (message '%s')", err.msg);
    ck_assert_msg(h.n == 0, "the failed epoch was reported to on_epoch (%d reports)", h.n);
    ck_assert_msg(strstr(err.msg, "epoch 1") != NULL, "message does not name epoch 1: '%s'", err.msg);
    ck_assert_msg(strstr(err.msg, "step ") != NULL, "message does not name the step: '%s'", err.msg);
    int named = 0;
    for (int i = 0; i < cae_task_n_params(t); i++) {
        char quoted[64];
        snprintf(quoted, sizeof quoted, "'%s'", cae_task_param(t, i)->name);
        named |= strstr(err.msg, quoted) != NULL;
    }
    ck_assert_msg(named, "message names none of the task's tensors: '%s'", err.msg);
    cae_task_free(t);
    cae_params_free(p);
    free_synth(d);
}
END_TEST

/* ---------------------------------------------------------- bad configs */

static void expect_refused(cae_task *t, const cae_dataset *train, const cae_dataset *valid,
                           const cae_train_config *c, const char *case_name, const char *words[],
                           const cae_real *before, size_t n)
{
    cae_error err;
    cae_train_result res;
    const cae_status st = cae_train(t, train, valid, c, NULL, &res, &err);
    ck_assert_msg(st != CAE_OK, "%s: accepted", case_name);
    ck_assert_msg(st == err.status, "%s: returned %s, the error says %s", case_name,
                  cae_status_name(st), cae_status_name(err.status));
    for (int i = 0; words[i]; i++)
        ck_assert_msg(strstr(err.msg, words[i]) != NULL, "%s: message '%s' does not mention '%s'",
                      case_name, err.msg, words[i]);
    cae_real *after = snapshot(t, NULL);
    ck_assert_msg(memcmp(before, after, n * sizeof *after) == 0,
                  "%s: refused, yet the parameters changed", case_name);
    free(after);
}

/* epochs 0, lr 0, lr < 0, lr NaN, momentum 1, momentum < 0, training or
 * validation data of the wrong width: -1, a message saying what, and the
 * parameters untouched. */
START_TEST(bad_configs_refused)
{
    cae_dataset *d = synth(30, 12, 2, 5), *narrow = synth(30, 10, 2, 6);
    cae_params *p = cae_params_new();
    cae_task *t = pretrain_task(p, CAE_MODEL_AE, 12, 4, 10, 7, 1);
    size_t n;
    cae_real *before = snapshot(t, &n);
    cae_train_config c;

    c = config(0, 0.1, 1);
    expect_refused(t, d, NULL, &c, "epochs 0", (const char *[]){"epochs", NULL}, before, n);
    c = config(2, 0, 1);
    expect_refused(t, d, NULL, &c, "lr 0", (const char *[]){"learning rate", NULL}, before, n);
    c = config(2, -0.1, 1);
    expect_refused(t, d, NULL, &c, "lr -0.1", (const char *[]){"learning rate", NULL}, before, n);
    c = config(2, NAN, 1);
    expect_refused(t, d, NULL, &c, "lr NaN", (const char *[]){"learning rate", NULL}, before, n);
    c = config(2, 0.1, 1);
    c.momentum = 1;
    expect_refused(t, d, NULL, &c, "momentum 1", (const char *[]){"momentum", NULL}, before, n);
    c.momentum = -0.5;
    expect_refused(t, d, NULL, &c, "momentum -0.5", (const char *[]){"momentum", NULL}, before, n);
    c = config(2, 0.1, 1);
    expect_refused(t, narrow, NULL, &c, "training data 10 wide for 12 inputs",
                   (const char *[]){"10", "12", "inputs", NULL}, before, n);
    expect_refused(t, d, narrow, &c, "validation data 10 wide for 12 inputs",
                   (const char *[]){"10", "12", "inputs", NULL}, before, n);
    /* And a good config on the same task then trains. */
    cae_train_result res;
    cae_error err;
    ck_assert_msg(!cae_train(t, d, NULL, &c, NULL, &res, &err), "good config: %s", err.msg);
    ck_assert_int_eq(res.epochs_run, 2);
    free(before);
    cae_task_free(t);
    cae_params_free(p);
    free_synth(d);
    free_synth(narrow);
}
END_TEST

/* ------------------------------------------------------------------ resume */

/* A new store with the same tensors (names, shapes, values, order). */
static cae_params *clone_store(const cae_params *src)
{
    cae_params *p = cae_params_new();
    for (int i = 0; i < cae_params_count(src); i++) {
        const cae_tensor *a = cae_params_at(src, i);
        cae_tensor *b = cae_params_add(p, a->name, a->rank, a->shape);
        ck_assert_msg(b != NULL, "clone '%s'", a->name);
        memcpy(b->data, a->data, (size_t)a->size * sizeof(cae_real));
    }
    return p;
}

/* What a checkpoint written by the on_epoch hook holds at epoch `at`. */
typedef struct saved_run {
    int at;
    cae_task *t;
    cae_params *p, *opt; /* the live stores */
    cae_params *p_saved, *opt_saved;
    cae_rng rng;
} saved_run;

static int save_and_stop(const cae_epoch_report *r, void *ctx)
{
    saved_run *sv = ctx;
    if (r->epoch != sv->at) return 0;
    sv->p_saved = clone_store(sv->p);
    sv->opt_saved = clone_store(sv->opt);
    sv->rng = *cae_task_rng(sv->t);
    return 1; /* the process dies here */
}

typedef struct resume_case {
    const char *name;
    cae_model_kind kind; /* CAE_MODEL_MLP: fine-tuning with early stopping */
    int persistent;
} resume_case;

/* The task of a case over p (p fresh: initialised from the seed). */
static cae_task *case_task(const resume_case *rc, cae_params *p, int fresh)
{
    cae_error err;
    cae_rng init;
    cae_rng_seed(&init, 5, 1);
    cae_task *t;
    if (rc->kind == CAE_MODEL_MLP) {
        cae_mlp_config m = {.n_layers = 1, .sizes = {784, 50}, .act = {CAE_ACT_SIGMOID},
                            .n_classes = 10};
        ck_assert_msg(!fresh || !cae_mlp_params(p, &m, 5, &err), "%s", err.msg);
        t = cae_task_finetune(p, &m, 20, 5, 1, &err);
    } else {
        cae_layer_config c;
        cae_layer_config_default(&c, rc->kind, 30, 12);
        c.persistent = rc->persistent;
        ck_assert_msg(!fresh || !cae_layer_params(p, 1, &c, 5, &err), "%s", err.msg);
        t = cae_task_pretrain(p, 1, &c, 16, 5, 1, &err);
    }
    ck_assert_msg(t != NULL, "%s: %s", rc->name, err.msg);
    return t;
}

/* Stopping after every epoch k (the hook saving the stores and the RNG, as
 * the CLI does) and resuming from those copies in a new task gives the
 * parameters, best epoch and epochs of the uninterrupted run, bit for bit.
 * dae-b draws its masks from the task RNG, rbm with PCD carries a chain,
 * fine-tuning carries velocities and the early-stopping state. */
START_TEST(resume_is_exact)
{
    static const resume_case cases[] = {
        {"cae", CAE_MODEL_CAE, 0},
        {"dae-b", CAE_MODEL_DAE_B, 0},
        {"rbm pcd", CAE_MODEL_RBM, 1},
        {"finetune", CAE_MODEL_MLP, 0},
    };
    const resume_case *rc = &cases[_i];
    cae_error err;
    const int ft = rc->kind == CAE_MODEL_MLP;
    cae_splits *s = ft ? tu_mnist() : NULL;
    cae_dataset *train = ft ? tu_head(s->train, 500) : synth(200, 30, 2, 8);
    cae_dataset *valid = ft ? tu_head(s->valid, 500) : NULL;
    cae_train_config c = config(ft ? 30 : 4, ft ? 2.0 : 0.05, 9);
    c.momentum = 0.5;
    c.patience = ft ? 2 : 0;

    cae_params *p = cae_params_new(), *opt = cae_params_new();
    cae_task *t = case_task(rc, p, 1);
    c.opt = opt;
    cae_train_result ref;
    ck_assert_msg(!cae_train(t, train, valid, &c, NULL, &ref, &err), "%s: %s", rc->name,
                  err.msg);
    size_t n;
    cae_real *want = snapshot(t, &n);
    ck_assert_msg(!ft || (ref.epochs_run < c.epochs && ref.best_epoch < ref.epochs_run),
                  "%s: no early stop (%d epochs, best %d): the case does not test it", rc->name,
                  ref.epochs_run, ref.best_epoch);
    cae_task_free(t);
    cae_params_free(p);
    cae_params_free(opt);

    for (int k = 1; k < ref.epochs_run; k++) {
        saved_run sv = {.at = k, .p = cae_params_new(), .opt = cae_params_new()};
        sv.t = case_task(rc, sv.p, 1);
        cae_train_config c1 = c;
        c1.opt = sv.opt;
        cae_train_hooks hk = {save_and_stop, NULL, &sv};
        cae_train_result res;
        ck_assert_msg(!cae_train(sv.t, train, valid, &c1, &hk, &res, &err), "%s", err.msg);
        ck_assert_msg(sv.p_saved != NULL, "%s: the hook did not see epoch %d", rc->name, k);
        cae_task_free(sv.t);
        cae_params_free(sv.p);
        cae_params_free(sv.opt);

        /* A new process: the loaded stores, the RNG, first_epoch. */
        cae_task *t2 = case_task(rc, sv.p_saved, 0);
        *cae_task_rng(t2) = sv.rng;
        cae_train_state st;
        ck_assert_msg(!cae_train_state_get(sv.opt_saved, &st) && st.epochs_done == k,
                      "%s: no training state after epoch %d", rc->name, k);
        cae_train_config c2 = c;
        c2.first_epoch = k;
        c2.opt = sv.opt_saved;
        c2.lr = c.lr * 2; /* a different run: refused, nothing changed */
        ck_assert_msg(cae_train(t2, train, valid, &c2, NULL, &res, &err) &&
                          strstr(err.msg, "cannot resume: lr is"),
                      "%s: resuming with another lr: '%s'", rc->name, err.msg);
        c2.lr = c.lr;
        ck_assert_msg(!cae_train(t2, train, valid, &c2, NULL, &res, &err), "%s: %s",
                      rc->name, err.msg);
        ck_assert_msg(res.epochs_run == ref.epochs_run && res.best_epoch == ref.best_epoch &&
                          res.best_valid_metric == ref.best_valid_metric,
                      "%s: resumed after epoch %d: %d epochs, best %d (%.17g); uninterrupted: %d, "
                      "%d (%.17g)", rc->name, k, res.epochs_run, res.best_epoch,
                      res.best_valid_metric, ref.epochs_run, ref.best_epoch, ref.best_valid_metric);
        cae_real *got = snapshot(t2, NULL);
        for (size_t i = 0; i < n; i++)
            ck_assert_msg(got[i] == want[i],
                          "%s: resumed after epoch %d: parameter %zu is %.10g, uninterrupted %.10g",
                          rc->name, k, i, (double)got[i], (double)want[i]);
        free(got);
        cae_task_free(t2);
        cae_params_free(sv.p_saved);
        cae_params_free(sv.opt_saved);
    }
    free(want);
    if (ft) {
        cae_dataset_free(train);
        cae_dataset_free(valid);
        cae_splits_free(s);
    } else {
        free_synth(train);
    }
}
END_TEST

/* The optimizer store must not be the task's own store. */
/* ------------------------------------------------ weight decay, exactly */

/* One SGD step of fine-tuning with weight decay, by hand: the gradient of
 * the cross-entropy alone (G, from a graph without the decay) plus 2 wd W,
 * so W1 = W0 - lr (G + 2 wd W0) for every W and V, and biases as without
 * decay. The step cae_train takes must be exactly that. */
START_TEST(finetune_weight_decay_step)
{
    enum { D = 9, H = 6, C = 3, N = 8 };
    const double lr = 0.5, wd = 0.04;
    cae_dataset *d = synth(N, D, C, 31);
    cae_mlp_config m = {.n_layers = 1, .sizes = {D, H}, .act = {CAE_ACT_SIGMOID}, .n_classes = C};
    cae_error err;
    cae_params *p = cae_params_new();
    ck_assert_msg(!cae_mlp_params(p, &m, 32, &err), "%s", err.msg);
    const char *names[4] = {"L1.W", "L1.b", "out.V", "out.c"};
    const int decayed[4] = {1, 0, 1, 0};
    cae_real *w0[4], *grad[4];
    /* G at W0: one backward of the plain objective on the whole set. */
    cae_task *plain = cae_task_finetune(p, &m, N, 1, 1, &err);
    ck_assert_msg(plain != NULL, "%s", err.msg);
    double obj;
    ck_assert_int_eq(cae_task_step(plain, d->x, d->y, N, &obj), CAE_OK);
    for (int i = 0; i < 4; i++) {
        const cae_tensor *t = cae_params_get(p, names[i]);
        w0[i] = malloc((size_t)t->size * sizeof(cae_real));
        grad[i] = malloc((size_t)t->size * sizeof(cae_real));
        memcpy(w0[i], t->data, (size_t)t->size * sizeof(cae_real));
        memcpy(grad[i], t->grad, (size_t)t->size * sizeof(cae_real));
    }
    cae_task_free(plain);
    /* The step cae_train takes with wd (one batch of all N, one epoch). */
    m.wd = wd;
    cae_task *t = cae_task_finetune(p, &m, N, 1, 1, &err);
    ck_assert_msg(t != NULL, "%s", err.msg);
    cae_train_config c = config(1, lr, 3);
    cae_train_result res;
    ck_assert_msg(!cae_train(t, d, NULL, &c, NULL, &res, &err), "%s", err.msg);
    for (int i = 0; i < 4; i++) {
        const cae_tensor *x = cae_params_get(p, names[i]);
        for (int64_t k = 0; k < x->size; k++) {
            const double g = (double)grad[i][k] + (decayed[i] ? 2 * wd * w0[i][k] : 0);
            const double want = (double)w0[i][k] - lr * g;
            ck_assert_msg(fabs((double)x->data[k] - want) <= 1e-5 * (1 + fabs(want)),
                          "%s[%lld] = %.9g after the step, by hand %.9g (W0 %.9g, G %.9g)",
                          names[i], (long long)k, (double)x->data[k], want, (double)w0[i][k],
                          (double)grad[i][k]);
        }
        free(w0[i]);
        free(grad[i]);
    }
    cae_task_free(t);
    cae_params_free(p);
    free_synth(d);
}
END_TEST

/* Evaluating never draws from the training stream: an rbm (CD-1 and PCD)
 * trained for three epochs with a validation set evaluated after each ends
 * with the same parameters, bit for bit, as one trained without. */
START_TEST(rbm_stream_ignores_evaluation)
{
    enum { D = 12, H = 7 };
    cae_dataset *train = synth(50, D, 2, 41), *valid = synth(20, D, 2, 42);
    for (int pcd = 0; pcd < 2; pcd++) {
        cae_real *end[2];
        size_t n = 0;
        for (int with_valid = 0; with_valid < 2; with_valid++) {
            cae_error err;
            cae_layer_config lc;
            cae_layer_config_default(&lc, CAE_MODEL_RBM, D, H);
            lc.persistent = pcd;
            cae_params *p = cae_params_new();
            ck_assert_msg(!cae_layer_params(p, 1, &lc, 43, &err), "%s", err.msg);
            cae_task *t = cae_task_pretrain(p, 1, &lc, 10, 44, 1, &err);
            ck_assert_msg(t != NULL, "%s", err.msg);
            cae_train_config c = config(3, 0.05, 45);
            epochs_seen h = {0};
            cae_train_hooks hk = {record_epoch, NULL, &h};
            cae_train_result res;
            ck_assert_msg(!cae_train(t, train, with_valid ? valid : NULL, &c, &hk, &res, &err), "%s",
                          err.msg);
            if (with_valid) ck_assert_msg(isfinite(h.r[2].valid_loss), "no evaluation happened");
            end[with_valid] = snapshot(t, &n);
            cae_task_free(t);
            cae_params_free(p);
        }
        ck_assert_msg(!memcmp(end[0], end[1], n * sizeof(cae_real)),
                      "rbm%s: evaluating between epochs changed the training", pcd ? " PCD" : "");
        free(end[0]);
        free(end[1]);
    }
    free_synth(train);
    free_synth(valid);
}
END_TEST

START_TEST(opt_store_is_separate)
{
    cae_error err;
    cae_dataset *d = synth(40, 10, 2, 3);
    cae_params *p = cae_params_new();
    cae_task *t = pretrain_task(p, CAE_MODEL_AE, 10, 4, 8, 1, 1);
    cae_train_config c = config(1, 0.1, 1);
    c.momentum = 0.5;
    c.opt = p;
    cae_train_result res;
    ck_assert_msg(cae_train(t, d, NULL, &c, NULL, &res, &err) &&
                      strstr(err.msg, "the task's parameter store"),
                  "opt = the task's store: '%s'", err.msg);
    cae_task_free(t);
    cae_params_free(p);
    free_synth(d);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("train");
    TCase *t;

    t = tcase_create("batches");
    tcase_set_timeout(t, 20);
    tcase_add_test(t, last_partial_batch_is_used);
    suite_add_tcase(s, t);

    t = tcase_create("shuffle_seed");
    tcase_set_timeout(t, 20);
    tcase_add_test(t, shuffle_is_a_function_of_the_seed);
    suite_add_tcase(s, t);

    t = tcase_create("threads");
    tcase_set_timeout(t, 60);
    tcase_add_test(t, threads_agree);
    suite_add_tcase(s, t);

    t = tcase_create("early_stopping");
    tcase_set_timeout(t, 60);
    tcase_add_test(t, early_stopping_restores_best);
    suite_add_tcase(s, t);

    t = tcase_create("resume");
    tcase_set_timeout(t, 120);
    tcase_add_loop_test(t, resume_is_exact, 0, 4);
    tcase_add_test(t, opt_store_is_separate);
    tcase_add_test(t, finetune_weight_decay_step);
    tcase_add_test(t, rbm_stream_ignores_evaluation);
    suite_add_tcase(s, t);

    t = tcase_create("nan_guard");
    tcase_set_timeout(t, 20);
    tcase_add_test(t, nan_guard_names_where);
    suite_add_tcase(s, t);

    t = tcase_create("config_checks");
    tcase_set_timeout(t, 20);
    tcase_add_test(t, bad_configs_refused);
    suite_add_tcase(s, t);

    return tu_run(s);
}
