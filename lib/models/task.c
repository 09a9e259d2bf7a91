/* Tasks: one trainable objective with its compiled graphs.
 *
 * Graphs have a fixed batch size, so a task keeps a graph for the training
 * batch and, compiled on first use, one for a different (last, partial)
 * batch; evaluation graphs are noise-free and built the same way. Inputs
 * are bound to the caller's rows (no copy). Noise draws and Gibbs samples
 * come from the task's RNG: the graph RNG is reseeded from it before every
 * step, so the task RNG alone is the random state of training.
 *
 * RBM: before each step, k Gibbs steps (v -> h sample -> v sample) start at
 * the data (CD-k) or continue a persistent chain (PCD, full batches only),
 * using GEMM plans made at creation; the sample is bound as the constant
 * input vk of the free-energy graph. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <omp.h>

#include "cae/gemm.h"
#include "cae/model.h"
#include "cae/op.h"
#include "cae/ops.h"
#include "models/encoder_internal.h"
#include "ops/vmath.h"

enum { EVAL_BATCH = 500, MAX_PARAMS = 2 * CAE_MAX_LAYERS + 4 };

typedef struct task_graph {
    cae_graph *g;
    int64_t rows;
    cae_node *x, *y, *loss, *metric; /* metric: recon (pretrain) or logits */
    cae_node *vk;
    cae_real *ybuf;                  /* labels as reals (finetune) */
    cae_gemm up, down;               /* rbm Gibbs products at this row count */
} task_graph;

struct cae_task {
    int finetune;
    cae_params *p;
    int layer;
    cae_layer_config lc;
    cae_mlp_config mc;
    int64_t batch, n_in;
    int threads;
    cae_rng rng;
    task_graph train[2], eval[2];
    cae_tensor *params[MAX_PARAMS];
    int n_params;
    /* rbm */
    cae_real *gh, *gv, *chain, *gscratch;
    int chain_ready;
    cae_real *xbuf; /* EVAL_BATCH rows of a byte set, made by the first evaluate */
    char err[256];
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
static int graph_build(cae_task *t, task_graph *tg, int64_t rows, int noise_off)
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
    tg->x = cae_input(g, "x", 2, (int64_t[]){rows, t->n_in});
    if (t->finetune) {
        tg->y = cae_input(g, "y", 1, (int64_t[]){rows});
        cae_node *logits = cae_mlp_logits(g, t->p, &t->mc, tg->x, NULL);
        cae_node *loss = cae_softmax_xent(g, logits, tg->y);
        if (t->mc.wd > 0) {
            for (int k = 1; k <= t->mc.n_layers; k++) {
                cae_node *W = cae_param(g, cae_layer_tensor(t->p, k, "W"));
                loss = cae_add(g, loss, cae_weight_decay(g, W, t->mc.wd));
            }
            cae_node *V = cae_param(g, cae_params_get(t->p, "out.V"));
            loss = cae_add(g, loss, cae_weight_decay(g, V, t->mc.wd));
        }
        tg->loss = loss;
        tg->metric = logits;
        cae_graph_output(g, logits);
    } else {
        cae_layer_nodes ln;
        cae_layer_build(g, t->p, t->layer, &t->lc, tg->x, noise_off, &ln);
        tg->loss = ln.loss;
        tg->vk = ln.vk;
        if (t->lc.kind == CAE_MODEL_RBM) {
            /* Report the reconstruction cross-entropy of the mean-field
             * reconstruction sigmoid(h W^T + c) for monitoring. */
            cae_node *W = cae_param(g, cae_layer_tensor(t->p, t->layer, "W"));
            cae_node *c = cae_param(g, cae_layer_tensor(t->p, t->layer, "c"));
            tg->metric = cae_bce_logits(g, cae_affine(g, ln.h, W, c, 1), tg->x);
            /* Only evaluation computes it: training graphs leave it off the tape. */
            if (noise_off) cae_graph_output(g, tg->metric);
        } else {
            tg->metric = ln.recon;
        }
    }
    if (cae_graph_compile(g, tg->loss)) {
        task_fail(t, "building the %s graph for %lld rows: %s",
                  t->finetune ? "mlp" : cae_model_kind_name(t->lc.kind), (long long)rows,
                  cae_graph_error(g));
        return -1;
    }
    if (t->finetune && !(tg->ybuf = cae_alloc_reals((size_t)rows))) {
        task_fail(t, "out of memory");
        return -1;
    }
    if (t->finetune) cae_input_bind(tg->y, tg->ybuf);
    if (!t->finetune && t->lc.kind == CAE_MODEL_RBM) {
        const int64_t D = t->lc.n_in, H = t->lc.n_hidden;
        if (cae_gemm_plan(&tg->up, rows, H, D, 0, 0, 0) ||
            cae_gemm_plan(&tg->down, rows, D, H, 0, 1, 0)) {
            task_fail(t, "rbm: no GEMM kernel for %lld rows", (long long)rows);
            return -1;
        }
    }
    return 0;
}

static int collect_params(cae_task *t)
{
    cae_graph *g = t->train[0].g;
    for (int i = 0; i < cae_graph_tape_length(g); i++) {
        cae_node *n = cae_graph_tape_at(g, i);
        cae_tensor *ten = cae_node_param(n);
        if (!ten) continue;
        int seen = 0;
        for (int k = 0; k < t->n_params; k++) seen |= t->params[k] == ten;
        if (seen) continue;
        if (t->n_params == MAX_PARAMS) return -1;
        t->params[t->n_params++] = ten;
    }
    return 0;
}

static cae_task *task_common(cae_task *t, char *err, size_t errlen)
{
    if (graph_build(t, &t->train[0], t->batch, 0) || collect_params(t)) {
        snprintf(err, errlen, "%s", t->err[0] ? t->err : "too many parameters");
        cae_task_free(t);
        return NULL;
    }
    return t;
}

cae_task *cae_task_pretrain(cae_params *p, int layer, const cae_layer_config *c, int64_t batch,
                            uint64_t seed, int threads, char *err, size_t errlen)
{
    const char *bad = cae_layer_config_check(c);
    if (bad || batch < 1 || batch > (1 << 20)) {
        snprintf(err, errlen, "pretrain: %s", bad ? bad : "batch size must be in 1..1048576");
        return NULL;
    }
    cae_task *t = calloc(1, sizeof *t);
    if (!t) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    t->p = p;
    t->layer = layer;
    t->lc = *c;
    t->batch = batch;
    t->n_in = c->n_in;
    t->threads = threads;
    cae_rng_seed(&t->rng, seed, 0x7461736b);
    if (c->kind == CAE_MODEL_RBM) {
        /* Gibbs buffers serve training batches and evaluation batches. */
        const int64_t rows = batch > EVAL_BATCH ? batch : EVAL_BATCH;
        const size_t bd = (size_t)(rows * c->n_in), bh = (size_t)(rows * c->n_hidden);
        t->gh = cae_alloc_reals(bh);
        t->gv = cae_alloc_reals(bd);
        t->chain = cae_alloc_reals((size_t)(batch * c->n_in));
        /* Enough for the v W and h W^T products of any row count up to rows. */
        t->gscratch = cae_alloc_reals(cae_gemm_scratch_bound(rows, c->n_in, c->n_hidden, 0, 1));
        if (!t->gh || !t->gv || !t->chain || !t->gscratch) {
            snprintf(err, errlen, "rbm: out of memory for the Gibbs chain");
            cae_task_free(t);
            return NULL;
        }
    }
    return task_common(t, err, errlen);
}

cae_task *cae_task_finetune(cae_params *p, const cae_mlp_config *m, int64_t batch, uint64_t seed,
                            int threads, char *err, size_t errlen)
{
    if (m->n_layers < 1 || m->n_layers > CAE_MAX_LAYERS || m->n_classes < 2 || batch < 1 ||
        batch > (1 << 20)) {
        snprintf(err, errlen, "finetune: bad mlp configuration or batch size");
        return NULL;
    }
    cae_task *t = calloc(1, sizeof *t);
    if (!t) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    t->finetune = 1;
    t->p = p;
    t->mc = *m;
    t->batch = batch;
    t->n_in = m->sizes[0];
    t->threads = threads;
    cae_rng_seed(&t->rng, seed, 0x7461736b);
    return task_common(t, err, errlen);
}

void cae_task_free(cae_task *t)
{
    if (!t) return;
    for (int i = 0; i < 2; i++) {
        graph_release(&t->train[i]);
        graph_release(&t->eval[i]);
    }
    cae_free(t->gh);
    cae_free(t->gv);
    cae_free(t->chain);
    cae_free(t->gscratch);
    cae_free(t->xbuf);
    free(t);
}

/* z (rows x cols) <- Bernoulli(sigmoid(z + bias)) samples, element i drawn
 * with the counter-based hash of (key, i): vectorizes, and the result does
 * not depend on the thread count. */
static void sample_layer(cae_real *z, const cae_real *bias, int64_t rows, int64_t cols,
                         uint64_t key, int threads)
{
    if (threads <= 0) threads = omp_get_max_threads();
#pragma omp parallel for schedule(static) num_threads(threads) if (rows * cols >= 32768)
    for (int64_t r = 0; r < rows; r++) {
        cae_real *zr = z + r * cols;
        const uint64_t base = (uint64_t)(r * cols);
#pragma omp simd
        for (int64_t j = 0; j < cols; j++) {
            const cae_real pr = 1 / (1 + cae_vexp(-(zr[j] + bias[j])));
            zr[j] = cae_rng_hash_uniform(key, base + (uint64_t)j) < (double)pr ? 1 : 0;
        }
    }
}

/* k Gibbs steps from v (rows x D) into t->gv. */
static void gibbs(cae_task *t, task_graph *tg, const cae_real *v0, int64_t rows)
{
    const int64_t D = t->lc.n_in, H = t->lc.n_hidden;
    const cae_real *W = cae_layer_tensor(t->p, t->layer, "W")->data;
    const cae_real *b = cae_layer_tensor(t->p, t->layer, "b")->data;
    const cae_real *c = cae_layer_tensor(t->p, t->layer, "c")->data;
    const cae_real *v = v0;
    for (int s = 0; s < t->lc.cd_k; s++) {
        cae_gemm_run(&tg->up, v, W, t->gh, t->gscratch, t->threads);
        sample_layer(t->gh, b, rows, H, cae_rng_next(&t->rng), t->threads);
        cae_gemm_run(&tg->down, t->gh, W, t->gv, t->gscratch, t->threads);
        sample_layer(t->gv, c, rows, D, cae_rng_next(&t->rng), t->threads);
        v = t->gv;
    }
}

static task_graph *graph_for(cae_task *t, task_graph pair[2], int64_t rows, int eval)
{
    const int64_t full = eval ? EVAL_BATCH : t->batch;
    task_graph *tg = rows == full ? &pair[0] : &pair[1];
    if (tg->g && tg->rows == rows) return tg;
    if (graph_build(t, tg, rows, eval)) return NULL;
    return tg;
}

double cae_task_step(cae_task *t, const cae_real *x, const int32_t *y, int64_t rows)
{
    if (rows < 1 || rows > t->batch) {
        task_fail(t, "step: %lld rows, the batch is %lld", (long long)rows, (long long)t->batch);
        return NAN;
    }
    task_graph *tg = graph_for(t, t->train, rows, 0);
    if (!tg) return NAN;
    cae_input_bind(tg->x, x);
    if (t->finetune) {
        for (int64_t i = 0; i < rows; i++) tg->ybuf[i] = (cae_real)y[i];
    }
    if (tg->vk) {
        if (t->lc.persistent && rows == t->batch) {
            if (!t->chain_ready) {
                memcpy(t->chain, x, (size_t)(rows * t->n_in) * sizeof(cae_real));
                t->chain_ready = 1;
            }
            gibbs(t, tg, t->chain, rows);
            memcpy(t->chain, t->gv, (size_t)(rows * t->n_in) * sizeof(cae_real));
        } else {
            gibbs(t, tg, x, rows);
        }
        cae_input_bind(tg->vk, t->gv);
    }
    cae_graph_seed(tg->g, cae_rng_next(&t->rng));
    cae_graph_forward(tg->g);
    cae_graph_backward(tg->g);
    return (double)cae_node_value(tg->loss)->data[0];
}

int cae_task_evaluate(cae_task *t, const cae_dataset *d, double *loss, double *metric)
{
    if (d->dim != t->n_in) {
        task_fail(t, "evaluate: the data has %lld inputs, the model %lld", (long long)d->dim,
                  (long long)t->n_in);
        return -1;
    }
    if (!d->x && !t->xbuf && !(t->xbuf = cae_alloc_reals((size_t)(EVAL_BATCH * d->dim)))) {
        task_fail(t, "evaluate: out of memory");
        return -1;
    }
    double sum_loss = 0, sum_metric = 0;
    int64_t errors = 0;
    for (int64_t s = 0; s < d->n; s += EVAL_BATCH) {
        const int64_t rows = d->n - s < EVAL_BATCH ? d->n - s : EVAL_BATCH;
        task_graph *tg = graph_for(t, t->eval, rows, 1);
        if (!tg) return -1;
        const cae_real *x = cae_chunk_rows(d, s, rows, t->xbuf);
        cae_input_bind(tg->x, x);
        if (t->finetune)
            for (int64_t i = 0; i < rows; i++) tg->ybuf[i] = (cae_real)d->y[s + i];
        if (tg->vk) { /* rbm: the free-energy gap against one Gibbs step */
            cae_layer_config keep = t->lc;
            t->lc.cd_k = 1;
            gibbs(t, tg, x, rows);
            t->lc = keep;
            cae_input_bind(tg->vk, t->gv);
        }
        cae_graph_forward(tg->g);
        sum_loss += (double)cae_node_value(tg->loss)->data[0] * (double)rows;
        const cae_tensor *m = cae_node_value(tg->metric);
        if (t->finetune) {
            const int64_t C = m->shape[1];
            for (int64_t i = 0; i < rows; i++) {
                const cae_real *z = m->data + i * C;
                int64_t best = 0;
                for (int64_t k = 1; k < C; k++)
                    if (z[k] > z[best]) best = k;
                errors += best != d->y[s + i];
            }
        } else {
            sum_metric += (double)m->data[0] * (double)rows;
        }
    }
    *loss = d->n ? sum_loss / (double)d->n : 0;
    *metric = d->n ? (t->finetune ? (double)errors : sum_metric) / (double)d->n : 0;
    return 0;
}

int cae_task_n_params(const cae_task *t) { return t->n_params; }
cae_tensor *cae_task_param(const cae_task *t, int i)
{
    return (i >= 0 && i < t->n_params) ? t->params[i] : NULL;
}
int64_t cae_task_batch(const cae_task *t) { return t->batch; }
int cae_task_threads(const cae_task *t) { return t->threads; }
int64_t cae_task_inputs(const cae_task *t) { return t->n_in; }
const char *cae_task_error(const cae_task *t) { return t->err[0] ? t->err : NULL; }
cae_rng *cae_task_rng(cae_task *t) { return &t->rng; }

static int has_chain(const cae_task *t)
{
    return !t->finetune && t->lc.kind == CAE_MODEL_RBM && t->lc.persistent;
}

const cae_real *cae_task_chain(const cae_task *t)
{
    return has_chain(t) && t->chain_ready ? t->chain : NULL;
}

int cae_task_set_chain(cae_task *t, const cae_real *x)
{
    if (!has_chain(t)) return -1;
    memcpy(t->chain, x, (size_t)(t->batch * t->n_in) * sizeof(cae_real));
    t->chain_ready = 1;
    return 0;
}
