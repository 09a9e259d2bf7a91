/* Tasks: a parameter store and a builder, with the builder's graphs compiled.
 *
 * Graphs have a fixed batch size, so a task keeps a graph for the training
 * batch and, compiled on first use, one for a different (last, partial)
 * batch; evaluation graphs (the builder called with eval = 1) are made the
 * same way for EVAL_BATCH rows. Inputs are bound to the caller's rows (no
 * copy). Before every training step the graph RNG is reseeded from the task
 * RNG, so the task RNG (with the buffers) is the random state of training.
 * Evaluation reseeds its graph from its own stream, the same at every call:
 * a pure function of the parameters that never touches the training stream.
 *
 * The built-in builders are at the end: layer pretraining (cae_layer_build)
 * and the MLP (cae_mlp_logits + softmax cross-entropy + weight decay). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cae/comm.h"
#include "cae/task.h"
#include "cae/ops.h"
#include "cae/sgd.h"
#include "models/encoder_internal.h"
#include "models/train_internal.h"

enum { EVAL_BATCH = 500, MAX_PARAMS = 64 };

/* The RNG streams of a task: training noise, and evaluation's own. */
enum { STREAM_TASK = 0x7461736b /* "task" */, STREAM_EVAL = 0x6576616c /* "eval" */ };

typedef struct task_graph {
    cae_graph *g;
    int64_t rows;
    cae_task_io io;
    cae_real *ybuf; /* labels as reals (supervised) */
} task_graph;

struct cae_task {
    cae_params *p, *buffers;
    cae_task_spec spec;
    void *ctx_copy;
    int64_t batch;
    int64_t full;     /* rows of the training graph of a full batch: batch, or the part's */
    int part, parts;  /* data-parallel: this task's part of every batch (cae_task_set_part) */
    uint64_t seed;
    int threads;
    cae_rng rng;
    task_graph train[2], eval[2];
    cae_tensor *params[MAX_PARAMS];
    int n_params;
    cae_real *xbuf; /* EVAL_BATCH rows of a byte set, made by the first evaluate */
    cae_real *auxbuf; /* the side input of the training graphs */
    cae_graph *last_sgd; /* the graph of the last cae_task_step_sgd */
    char name[32];
    char err[CAE_ERR_LEN];
};

static void task_fail(cae_task *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void task_fail(cae_task *t, const char *fmt, ...)
{
    if (t->err[0]) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->err, sizeof t->err, fmt, ap);
    va_end(ap);
}

static void graph_release(task_graph *tg)
{
    cae_graph_free(tg->g);
    cae_free(tg->ybuf);
    memset(tg, 0, sizeof *tg);
}

/* Build and compile the task's graph for `rows` examples. */
static int graph_build(cae_task *t, task_graph *tg, int64_t rows, int eval)
{
    graph_release(tg);
    cae_graph *g = cae_graph_new(t->p, rows);
    if (!g) {
        task_fail(t, "out of memory");
        return -1;
    }
    cae_graph_set_threads(g, t->threads);
    tg->g = g;
    tg->rows = rows;
    cae_task_io *io = &tg->io;
    *io = (cae_task_io){.params = t->p, .buffers = t->buffers, .rows = rows, .batch = t->batch,
                        .eval = eval};
    io->x = cae_input(g, "x", 2, (int64_t[]){rows, t->spec.n_in});
    if (t->spec.n_classes > 0) io->y = cae_input(g, "y", 1, (int64_t[]){rows});
    if (t->spec.aux_rows > 0)
        io->aux = cae_input(g, "aux", 2, (int64_t[]){t->spec.aux_rows * rows, t->spec.aux_cols});
    const int rc = t->spec.build(g, io, t->spec.ctx);
    if (!rc && t->spec.n_classes > 0 && !io->logits)
        cae_graph_fail(g, "the builder of a supervised task gave no logits");
    if (!rc && io->logits) cae_graph_output(g, io->logits);
    if (!rc && io->metric && eval) cae_graph_output(g, io->metric);
    if (rc || cae_graph_compile(g, io->loss)) {
        task_fail(t, "building the %s graph for %lld rows: %s", t->name, (long long)rows,
                  cae_graph_error(g) ? cae_graph_error(g) : "the builder failed");
        return -1;
    }
    if (cae_node_value(io->loss)->size != 1) {
        task_fail(t, "the %s objective has %lld values, not one", t->name,
                  (long long)cae_node_value(io->loss)->size);
        return -1;
    }
    if (io->y) {
        if (!(tg->ybuf = cae_alloc_reals((size_t)rows))) {
            task_fail(t, "out of memory");
            return -1;
        }
        cae_input_bind(io->y, tg->ybuf);
    }
    if (io->aux && !eval) cae_input_bind(io->aux, t->auxbuf); /* evaluation: its zeros */
    return 0;
}

static int collect_params(cae_task *t)
{
    cae_graph *g = t->train[0].g;
    for (int i = 0; i < cae_graph_tape_length(g); i++) {
        cae_node *n = cae_graph_tape_at(g, i);
        cae_tensor *ten = cae_node_param(n);
        if (!ten || !cae_node_receives_grad(n)) continue; /* frozen: not trained */
        if (t->n_params == MAX_PARAMS) return -1;
        t->params[t->n_params++] = ten; /* one node per tensor: no repeats */
    }
    return 0;
}

cae_task *cae_task_new(cae_params *p, const cae_task_spec *spec, int64_t batch, uint64_t seed,
                       int threads, cae_error *err)
{
    const char *name = spec && spec->name ? spec->name : "task";
    if (!p || !spec || !spec->build) {
        cae_error_set(err, CAE_ERR_ARG, "%s: needs a parameter store and a builder", name);
        return NULL;
    }
    if (batch < 1 || batch > (1 << 20) || spec->n_in < 1 || spec->n_classes < 0 ||
        spec->aux_rows < 0 || (spec->aux_rows > 0 && spec->aux_cols < 1)) {
        cae_error_set(err, CAE_ERR_ARG, "%s: batch %lld, %lld inputs, %d classes: the batch must "
                      "be in 1..1048576 and the inputs > 0", name, (long long)batch,
                      (long long)spec->n_in, spec->n_classes);
        return NULL;
    }
    cae_task *t = calloc(1, sizeof *t);
    if (!t || !(t->buffers = cae_params_new())) {
        free(t);
        cae_error_set(err, CAE_ERR_NOMEM, "%s: out of memory", name);
        return NULL;
    }
    t->p = p;
    t->spec = *spec;
    snprintf(t->name, sizeof t->name, "%s", name);
    t->spec.name = t->name;
    if (spec->ctx_size) {
        if (!(t->ctx_copy = malloc(spec->ctx_size))) {
            cae_error_set(err, CAE_ERR_NOMEM, "%s: out of memory", name);
            cae_task_free(t);
            return NULL;
        }
        memcpy(t->ctx_copy, spec->ctx, spec->ctx_size);
        t->spec.ctx = t->ctx_copy;
    }
    t->batch = batch;
    t->full = batch;
    t->parts = 1;
    t->seed = seed;
    t->threads = threads;
    cae_rng_seed(&t->rng, seed, STREAM_TASK);
    if (spec->aux_rows > 0 &&
        !(t->auxbuf = cae_alloc_reals((size_t)(spec->aux_rows * batch * spec->aux_cols)))) {
        cae_error_set(err, CAE_ERR_NOMEM, "%s: out of memory for the side input", name);
        cae_task_free(t);
        return NULL;
    }
    if (graph_build(t, &t->train[0], t->batch, 0) || collect_params(t)) {
        cae_error_set(err, CAE_ERR_ARG, "%s", t->err[0] ? t->err : "too many parameters");
        cae_task_free(t);
        return NULL;
    }
    return t;
}

void cae_task_free(cae_task *t)
{
    if (!t) return;
    for (int i = 0; i < 2; i++) {
        graph_release(&t->train[i]);
        graph_release(&t->eval[i]);
    }
    cae_params_free(t->buffers);
    cae_free(t->xbuf);
    cae_free(t->auxbuf);
    free(t->ctx_copy);
    free(t);
}

static task_graph *graph_for(cae_task *t, task_graph pair[2], int64_t rows, int eval)
{
    const int64_t full = eval ? EVAL_BATCH : t->full;
    task_graph *tg = rows == full ? &pair[0] : &pair[1];
    if (tg->g && tg->rows == rows && cae_graph_compiled(tg->g)) return tg;
    if (graph_build(t, tg, rows, eval)) return NULL;
    return tg;
}

static void bind_labels(task_graph *tg, const int32_t *y, int64_t rows)
{
    if (tg->ybuf)
        for (int64_t i = 0; i < rows; i++) tg->ybuf[i] = (cae_real)y[i];
}

cae_status cae_task_set_part(cae_task *t, int part, int parts)
{
    if (parts < 1 || part < 0 || part >= parts || parts > t->batch) {
        task_fail(t, "part %d of %d: needs 0 <= part < parts <= the batch (%lld)", part, parts,
                  (long long)t->batch);
        return CAE_ERR_ARG;
    }
    int64_t begin;
    t->part = part;
    t->parts = parts;
    t->full = cae_comm_slice(t->batch, part, parts, &begin);
    graph_release(&t->train[1]);
    if (t->train[0].rows == t->full && cae_graph_compiled(t->train[0].g)) return CAE_OK;
    return graph_build(t, &t->train[0], t->full, 0) ? CAE_ERR_COMPILE : CAE_OK;
}

/* The key the graph's RNG is seeded with before a step: the task RNG's
 * next value, made a part's own when a batch is split. */
static uint64_t step_key(cae_task *t)
{
    const uint64_t k = cae_rng_next(&t->rng);
    return t->parts > 1 ? cae_rng_mix64(k ^ (0x9E3779B97F4A7C15ull * (uint64_t)(t->part + 1))) : k;
}

/* A training step's graph for `rows` rows, its inputs bound and its RNG
 * seeded (*tg), or why not. */
static cae_status step_graph(cae_task *t, const cae_real *x, const int32_t *y, int64_t rows,
                             task_graph **tg)
{
    if (rows < 1 || rows > t->batch) {
        task_fail(t, "step: %lld rows, the batch is %lld", (long long)rows, (long long)t->batch);
        return CAE_ERR_ARG;
    }
    if (t->spec.n_classes > 0 && !y) {
        task_fail(t, "step: the %s task needs labels", t->name);
        return CAE_ERR_ARG;
    }
    if (!(*tg = graph_for(t, t->train, rows, 0))) return CAE_ERR_COMPILE;
    cae_input_bind((*tg)->io.x, x);
    bind_labels(*tg, y, rows);
    cae_graph_seed((*tg)->g, step_key(t));
    return CAE_OK;
}

cae_status cae_task_step(cae_task *t, const cae_real *x, const int32_t *y, int64_t rows,
                         double *objective)
{
    *objective = NAN;
    if (rows == 0 && t->parts > 1) { /* an empty part of a short batch */
        (void)step_key(t);
        for (int i = 0; i < t->n_params; i++)
            memset(t->params[i]->grad, 0, (size_t)t->params[i]->size * sizeof(cae_real));
        *objective = 0;
        return CAE_OK;
    }
    task_graph *tg;
    const cae_status rc = step_graph(t, x, y, rows, &tg);
    if (rc) return rc;
    cae_graph_forward(tg->g);
    cae_graph_backward(tg->g);
    *objective = (double)cae_node_value(tg->io.loss)->data[0];
    return CAE_OK;
}

cae_status cae_task_step_sgd(cae_task *t, const cae_real *x, const int32_t *y, int64_t rows,
                             const cae_sgd *s, double *objective)
{
    *objective = NAN;
    if (t->parts > 1) {
        task_fail(t, "step: part %d of %d of a batch: the parts' gradients must be reduced "
                     "before the update (cae_task_step)", t->part, t->parts);
        return CAE_ERR_ARG;
    }
    if (!(s->lr > 0) || !(s->momentum >= 0 && s->momentum < 1) ||
        (s->momentum > 0 && !s->velocity) || (s->tensors && s->n < 0)) {
        task_fail(t, "step: a bad update (lr %g, momentum %g%s)", s->lr, s->momentum,
                  s->momentum > 0 && !s->velocity ? " without velocities" : "");
        return CAE_ERR_ARG;
    }
    task_graph *tg;
    const cae_status rc = step_graph(t, x, y, rows, &tg);
    if (rc) return rc;
    cae_sgd u = *s;
    if (!u.tensors) {
        u.n = t->n_params;
        u.tensors = t->params;
    }
    u.continues = s->continues && t->last_sgd == tg->g;
    t->last_sgd = tg->g;
    cae_graph_step_sgd(tg->g, &u);
    *objective = (double)cae_node_value(tg->io.loss)->data[0];
    return CAE_OK;
}

cae_status cae_task_evaluate_sums(cae_task *t, const cae_dataset *d, int part, int parts,
                                  double sums[2])
{
    sums[0] = sums[1] = 0;
    if (d->dim != t->spec.n_in) {
        task_fail(t, "evaluate: the data has %lld inputs, the model %lld", (long long)d->dim,
                  (long long)t->spec.n_in);
        return CAE_ERR_SHAPE;
    }
    if (t->spec.n_classes > 0 && !d->y) {
        task_fail(t, "evaluate: the %s task needs labels, the data has none", t->name);
        return CAE_ERR_ARG;
    }
    if (!d->x && !t->xbuf && !(t->xbuf = cae_alloc_reals((size_t)(EVAL_BATCH * d->dim)))) {
        task_fail(t, "evaluate: out of memory");
        return CAE_ERR_NOMEM;
    }
    cae_rng evr;
    cae_rng_seed(&evr, t->seed, STREAM_EVAL);
    double sum_loss = 0, sum_metric = 0;
    int64_t errors = 0;
    for (int64_t s = 0, chunk = 0; s < d->n; s += EVAL_BATCH, chunk++) {
        const int64_t rows = d->n - s < EVAL_BATCH ? d->n - s : EVAL_BATCH;
        const uint64_t key = cae_rng_next(&evr); /* every chunk's, so parts draw what one does */
        if (chunk % parts != part) continue;
        task_graph *tg = graph_for(t, t->eval, rows, 1);
        if (!tg) return CAE_ERR_COMPILE;
        cae_input_bind(tg->io.x, cae_chunk_rows(d, s, rows, t->xbuf));
        if (d->y) bind_labels(tg, d->y + s, rows);
        cae_graph_seed(tg->g, key);
        cae_graph_forward(tg->g);
        sum_loss += (double)cae_node_value(tg->io.loss)->data[0] * (double)rows;
        if (tg->io.logits) {
            const cae_tensor *m = cae_node_value(tg->io.logits);
            const int64_t C = m->shape[1];
            for (int64_t i = 0; i < rows; i++) {
                const cae_real *z = m->data + i * C;
                int64_t best = 0;
                for (int64_t k = 1; k < C; k++)
                    if (z[k] > z[best]) best = k;
                errors += best != d->y[s + i];
            }
        } else {
            const cae_node *mn = tg->io.metric ? tg->io.metric : tg->io.loss;
            sum_metric += (double)cae_node_value((cae_node *)mn)->data[0] * (double)rows;
        }
    }
    sums[0] = sum_loss;
    sums[1] = t->spec.n_classes > 0 ? (double)errors : sum_metric;
    return CAE_OK;
}

cae_status cae_task_evaluate(cae_task *t, const cae_dataset *d, double *loss, double *metric)
{
    double sums[2];
    const cae_status rc = cae_task_evaluate_sums(t, d, 0, 1, sums);
    if (rc) return rc;
    *loss = d->n ? sums[0] / (double)d->n : 0;
    *metric = d->n ? sums[1] / (double)d->n : 0;
    return CAE_OK;
}

int cae_task_n_params(const cae_task *t) { return t->n_params; }
cae_tensor *cae_task_param(const cae_task *t, int i)
{
    return (i >= 0 && i < t->n_params) ? t->params[i] : NULL;
}
cae_params *cae_task_params(const cae_task *t) { return t->p; }
cae_params *cae_task_buffers(const cae_task *t) { return t->buffers; }
cae_real *cae_task_aux(cae_task *t) { return t->auxbuf; }
int64_t cae_task_batch(const cae_task *t) { return t->batch; }
int cae_task_threads(const cae_task *t) { return t->threads; }
int64_t cae_task_inputs(const cae_task *t) { return t->spec.n_in; }
int cae_task_classes(const cae_task *t) { return t->spec.n_classes; }
const char *cae_task_name(const cae_task *t) { return t->name; }
const char *cae_task_error(const cae_task *t) { return t->err[0] ? t->err : NULL; }
cae_rng *cae_task_rng(cae_task *t) { return &t->rng; }

cae_status cae_task_resume(cae_task *t, const cae_model_info *info, cae_error *err)
{
    if (!info->has_rng)
        return cae_error_set(err, CAE_ERR_MISMATCH, "%s: the saved run has no RNG state to "
                             "resume from", t->name);
    t->rng = info->rng;
    return CAE_OK;
}

/* ------------------------------------------------- the built-in builders */

/* A buffer of the task: got, or created (zero) with the given shape. */
static cae_tensor *buffer(cae_graph *g, cae_params *b, const char *name, int rank,
                          const int64_t *shape)
{
    cae_tensor *x = cae_params_get(b, name);
    if (!x) x = cae_params_add(b, name, rank, shape);
    if (!x) cae_graph_fail(g, "buffer '%s': %s", name, cae_params_error(b));
    return x;
}

int cae_layer_task_build(cae_graph *g, cae_task_io *io, const void *ctx)
{
    const cae_layer_task *lt = ctx;
    const cae_layer_config *c = &lt->config;
    cae_tensor *chain = NULL, *steps = NULL;
    cae_node *x = io->x;
    const int e2e = c->end_to_end && lt->layer > 1;
    if (e2e) /* the layers below, frozen: their codes are this layer's input */
        for (int l = 1; l < lt->layer; l++) {
            cae_node *W = cae_stop_grad(g, cae_param(g, cae_layer_tensor(io->params, l, "W")));
            cae_node *b = cae_stop_grad(g, cae_param(g, cae_layer_tensor(io->params, l, "b")));
            x = cae_activation(g, cae_affine(g, x, W, b, 0), lt->below[l - 1]);
        }
    /* PCD: the training graph of full batches samples from a chain kept in
     * the task's buffers; partial batches and evaluation sample from the data. */
    if (c->kind == CAE_MODEL_RBM && c->persistent && !io->eval && io->rows == io->batch) {
        chain = buffer(g, io->buffers, "pcd:chain", 2, (int64_t[]){io->batch, c->n_in});
        steps = buffer(g, io->buffers, "pcd:steps", 1, (int64_t[]){1});
        if (!chain || !steps) return -1;
    }
    cae_layer_nodes ln;
    if (cae_layer_build(g, io->params, lt->layer, c, x, io->eval, chain, steps, &ln)) return -1;
    io->loss = ln.loss;
    io->metric = ln.recon;
    if (e2e) { /* lambda ||d h_k / d x||^2 of the whole encoder */
        cae_node *pen = cae_jacobian_penalty_probes(g, io->x, ln.h, c->probes,
                                                    (cae_probe_kind)c->probe_kind);
        io->loss = cae_add(g, io->loss, cae_scale(g, pen, (cae_real)c->lambda));
    }
    if (c->kind == CAE_MODEL_RBM && io->eval) {
        /* Report the cross-entropy of the mean-field reconstruction
         * sigmoid(h W^T + c) (evaluation graphs only). */
        cae_node *W = cae_param(g, cae_layer_tensor(io->params, lt->layer, "W"));
        cae_node *cb = cae_param(g, cae_layer_tensor(io->params, lt->layer, "c"));
        io->metric = cae_bce_logits(g, cae_affine(g, ln.h, W, cb, 1), io->x);
    }
    return io->metric ? 0 : -1;
}

int cae_mlp_task_build(cae_graph *g, cae_task_io *io, const void *ctx)
{
    const cae_mlp_config *m = ctx;
    io->logits = cae_mlp_logits(g, io->params, m, io->x, NULL);
    cae_node *loss = cae_softmax_xent(g, io->logits, io->y);
    if (m->wd > 0) {
        for (int k = 1; k <= m->n_layers; k++) {
            cae_node *W = cae_param(g, cae_layer_tensor(io->params, k, "W"));
            loss = cae_add(g, loss, cae_weight_decay(g, W, m->wd));
        }
        cae_node *V = cae_param(g, cae_params_get(io->params, "out.V"));
        loss = cae_add(g, loss, cae_weight_decay(g, V, m->wd));
    }
    io->loss = loss;
    return loss ? 0 : -1;
}

cae_task *cae_task_pretrain(cae_params *p, int layer, const cae_layer_config *c, int64_t batch,
                            uint64_t seed, int threads, cae_error *err)
{
    if (cae_layer_config_check(c, err)) {
        if (err) {
            char why[CAE_ERR_LEN];
            snprintf(why, sizeof why, "%s", err->msg);
            cae_error_set(err, CAE_ERR_ARG, "pretrain: %s", why);
        }
        return NULL;
    }
    if (c->end_to_end && layer > 1) {
        cae_error_set(err, CAE_ERR_ARG, "pretrain: an end-to-end penalty needs the stack below "
                      "layer %d: use cae_task_pretrain_stack", layer);
        return NULL;
    }
    const cae_layer_task lt = {.layer = layer, .config = *c};
    const cae_task_spec spec = {.name = cae_model_kind_name(c->kind), .n_in = c->n_in,
                                .build = cae_layer_task_build, .ctx = &lt, .ctx_size = sizeof lt};
    return cae_task_new(p, &spec, batch, seed, threads, err);
}

cae_task *cae_task_pretrain_stack(cae_params *p, const cae_model_info *info, int64_t batch,
                                  uint64_t seed, int threads, cae_error *err)
{
    const int k = info->n_layers;
    if (k < 1 || k > CAE_MAX_LAYERS) {
        cae_error_set(err, CAE_ERR_ARG, "pretrain: a stack of %d layers", k);
        return NULL;
    }
    const cae_layer_config *c = &info->layer[k - 1];
    if (!(c->end_to_end && k > 1)) return cae_task_pretrain(p, k, c, batch, seed, threads, err);
    if (cae_layer_config_check(c, err)) return NULL;
    cae_layer_task lt = {.layer = k, .config = *c};
    for (int l = 0; l < k - 1; l++) lt.below[l] = info->layer[l].act;
    const cae_task_spec spec = {.name = "cae end-to-end", .n_in = info->layer[0].n_in,
                                .build = cae_layer_task_build, .ctx = &lt, .ctx_size = sizeof lt};
    return cae_task_new(p, &spec, batch, seed, threads, err);
}

cae_task *cae_task_finetune(cae_params *p, const cae_mlp_config *m, int64_t batch, uint64_t seed,
                            int threads, cae_error *err)
{
    if (m->n_layers < 1 || m->n_layers > CAE_MAX_LAYERS || m->n_classes < 2) {
        cae_error_set(err, CAE_ERR_ARG, "finetune: %d hidden layers and %d classes: needs "
                      "1..%d layers and >= 2 classes", m->n_layers, m->n_classes, CAE_MAX_LAYERS);
        return NULL;
    }
    const cae_task_spec spec = {.name = "mlp", .n_in = m->sizes[0], .n_classes = m->n_classes,
                                .build = cae_mlp_task_build, .ctx = m, .ctx_size = sizeof *m};
    return cae_task_new(p, &spec, batch, seed, threads, err);
}
