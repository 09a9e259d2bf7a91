/* The paper's measurements for an encoder of any depth (cae/metrics.h):
 * Jacobian norms, saturation, reconstruction; and the codes of a data set.
 *
 * One pass over the data in batches. Each batch runs a compiled encoder
 * graph (input bound to the dataset's rows) that keeps every layer's
 * pre-activation a_l and code h_l on the tape and, when the store has a
 * decoder for layer 1, the reconstruction cross-entropy of layer 1 as the
 * graph's target. Graphs are compiled once per batch size (full batches and
 * one remainder), so nothing is allocated per example.
 *
 * Jacobians, with D_l = diag(phi'(a_l)) and W_l stored n_in x n_hidden:
 *   depth 1: ||J||^2 = sum_j phi'(a_j)^2 n_j   (cae_jacobian_sqnorms_pre)
 *   depth k: J = D_k W_k^T ... D_1 W_1^T, formed left to right per example:
 *            M <- D_1 W_1^T (rows of a pre-transposed W_1^T scaled), then
 *            M <- D_l (W_l^T M) by a planned GEMM (W_l^T transposed once),
 *            and ||J||^2 = sum M^2, accumulated in double. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cae/gemm.h"
#include "cae/jacobian.h"
#include "cae/metrics.h"
#include "cae/ops.h"

enum { DEFAULT_BATCH = 500 };

void cae_metrics_config_default(cae_metrics_config *c)
{
    memset(c, 0, sizeof *c);
    c->batch = DEFAULT_BATCH;
}

static void fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* --------------------------------------------------------------- checks */

static int shape_is(const cae_tensor *t, int rank, int64_t d0, int64_t d1)
{
    return t && t->rank == rank && t->shape[0] == d0 && (rank == 1 || t->shape[1] == d1);
}

/* The encoder layers exist in p with consistent shapes, and d fits them. */
static int check_stack(const cae_params *p, int depth, const cae_layer_config *L,
                       const cae_dataset *d, char *err, size_t errlen)
{
    if (!p || !L || !d || depth < 1 || depth > CAE_MAX_LAYERS) {
        fail(err, errlen, "metrics: need a store, 1..%d layer configs and a dataset", CAE_MAX_LAYERS);
        return -1;
    }
    if (d->dim != L[0].n_in) {
        fail(err, errlen, "the data has %lld inputs per example, layer 1 of the model expects %lld",
             (long long)d->dim, (long long)L[0].n_in);
        return -1;
    }
    for (int l = 1; l <= depth; l++) {
        const cae_layer_config *c = &L[l - 1];
        if (c->n_in < 1 || c->n_hidden < 1 || c->act < CAE_ACT_SIGMOID || c->act > CAE_ACT_LINEAR) {
            fail(err, errlen, "layer %d: bad configuration (sizes %lld x %lld, activation %d)", l,
                 (long long)c->n_in, (long long)c->n_hidden, (int)c->act);
            return -1;
        }
        if (l > 1 && c->n_in != L[l - 2].n_hidden) {
            fail(err, errlen, "layer %d has %lld inputs but layer %d has %lld units", l,
                 (long long)c->n_in, l - 1, (long long)L[l - 2].n_hidden);
            return -1;
        }
        const cae_tensor *W = cae_layer_tensor(p, l, "W"), *b = cae_layer_tensor(p, l, "b");
        if (!shape_is(W, 2, c->n_in, c->n_hidden) || !shape_is(b, 1, c->n_hidden, 0)) {
            fail(err, errlen, "layer %d: the store has no L%d.W (%lld x %lld) and L%d.b (%lld)", l, l,
                 (long long)c->n_in, (long long)c->n_hidden, l, (long long)c->n_hidden);
            return -1;
        }
    }
    return 0;
}

/* Layer 1 has a usable decoder in p. */
static int has_decoder(const cae_params *p, const cae_layer_config *c)
{
    if (!shape_is(cae_layer_tensor(p, 1, "c"), 1, c->n_in, 0)) return 0;
    return !c->untied || shape_is(cae_layer_tensor(p, 1, "Wd"), 2, c->n_hidden, c->n_in);
}

/* -------------------------------------------------------- encoder graphs */

typedef struct enc_graph {
    cae_graph *g;
    int64_t rows;
    cae_node *x, *a[CAE_MAX_LAYERS], *h[CAE_MAX_LAYERS], *recon;
} enc_graph;

typedef struct encoder {
    cae_params *p;
    int depth;
    const cae_layer_config *L;
    int with_recon, threads;
    int64_t batch;
    enc_graph full, last;
} encoder;

static void enc_graph_free(enc_graph *e)
{
    cae_graph_free(e->g);
    memset(e, 0, sizeof *e);
}

static int enc_graph_build(encoder *en, enc_graph *e, int64_t rows, char *err, size_t errlen)
{
    enc_graph_free(e);
    cae_graph *g = cae_graph_new(en->p, rows);
    if (!g) {
        fail(err, errlen, "metrics: out of memory for the encoder graph");
        return -1;
    }
    cae_graph_set_threads(g, en->threads);
    e->g = g;
    e->rows = rows;
    e->x = cae_input(g, "x", 2, (int64_t[]){rows, en->L[0].n_in});
    cae_node *h = e->x;
    for (int l = 1; l <= en->depth; l++) {
        h = cae_encoder(g, en->p, l, en->L[l - 1].act, h, &e->a[l - 1]);
        e->h[l - 1] = h;
        cae_graph_output(g, e->a[l - 1]);
        cae_graph_output(g, h);
    }
    cae_node *target = h;
    if (en->with_recon) {
        const cae_layer_config *c = &en->L[0];
        cae_node *h1 = e->h[0];
        cae_node *dec = c->untied
                            ? cae_matmul(g, h1, cae_param(g, cae_layer_tensor(en->p, 1, "Wd")), 0, 0)
                            : cae_matmul(g, h1, cae_param(g, cae_layer_tensor(en->p, 1, "W")), 0, 1);
        e->recon = cae_bce_logits(g, cae_bias_add(g, dec, cae_param(g, cae_layer_tensor(en->p, 1, "c"))),
                                  e->x);
        target = e->recon;
    }
    if (cae_graph_compile(g, target)) {
        fail(err, errlen, "metrics: compiling the %d-layer encoder for %lld rows: %s", en->depth,
             (long long)rows, cae_graph_error(g));
        enc_graph_free(e);
        return -1;
    }
    return 0;
}

/* Run the encoder on rows x (rows <= batch); NULL on failure. */
static enc_graph *enc_run(encoder *en, const cae_real *x, int64_t rows, char *err, size_t errlen)
{
    enc_graph *e = rows == en->batch ? &en->full : &en->last;
    if (!e->g || e->rows != rows)
        if (enc_graph_build(en, e, rows, err, errlen)) return NULL;
    cae_input_bind(e->x, x);
    cae_graph_forward(e->g);
    return e;
}

static void encoder_free(encoder *en)
{
    enc_graph_free(&en->full);
    enc_graph_free(&en->last);
}

/* ------------------------------------------------------- deep Jacobians */

typedef struct deep_jac {
    int depth;
    int64_t d0, dmax;
    int64_t dims[CAE_MAX_LAYERS + 1];
    const cae_act *acts;
    cae_real *wt[CAE_MAX_LAYERS]; /* W_l^T: d_l x d_(l-1) */
    cae_gemm plan[CAE_MAX_LAYERS];
    cae_real *m0, *m1;            /* dmax x d0 each */
    int threads;
} deep_jac;

static void deep_free(deep_jac *j)
{
    for (int l = 0; l < CAE_MAX_LAYERS; l++) cae_free(j->wt[l]);
    cae_free(j->m0);
    cae_free(j->m1);
    memset(j, 0, sizeof *j);
}

static int deep_init(deep_jac *j, const cae_params *p, int depth, const cae_layer_config *L,
                     cae_act *acts, int threads, char *err, size_t errlen)
{
    memset(j, 0, sizeof *j);
    j->depth = depth;
    j->threads = threads;
    j->acts = acts;
    j->d0 = L[0].n_in;
    j->dims[0] = j->d0;
    for (int l = 1; l <= depth; l++) {
        j->dims[l] = L[l - 1].n_hidden;
        acts[l - 1] = L[l - 1].act;
        if (j->dims[l] > j->dmax) j->dmax = j->dims[l];
    }
    j->m0 = cae_alloc_reals((size_t)(j->dmax * j->d0));
    j->m1 = cae_alloc_reals((size_t)(j->dmax * j->d0));
    int ok = j->m0 && j->m1;
    for (int l = 1; ok && l <= depth; l++) {
        const cae_tensor *W = cae_layer_tensor(p, l, "W");
        ok = (j->wt[l - 1] = cae_alloc_reals((size_t)W->size)) != NULL;
        if (ok) cae_transpose(j->wt[l - 1], W->data, j->dims[l - 1], j->dims[l], threads);
    }
    if (!ok) {
        fail(err, errlen, "metrics: out of memory for the %d-layer Jacobian (%lld x %lld)", depth,
             (long long)j->dmax, (long long)j->d0);
        deep_free(j);
        return -1;
    }
    for (int l = 2; l <= depth; l++)
        if (cae_gemm_plan(&j->plan[l - 1], j->dims[l], j->d0, j->dims[l - 1], 0, 0, 0)) {
            fail(err, errlen, "metrics: no GEMM kernel for the layer-%d Jacobian product", l);
            deep_free(j);
            return -1;
        }
    return 0;
}

/* M (rows x d0) <- diag(phi'(a)) M, in place. */
static void scale_rows(cae_real *M, const cae_real *a, cae_act act, int64_t rows, int64_t d0)
{
    for (int64_t r = 0; r < rows; r++) {
        const cae_real s = (cae_real)cae_act_derivative(act, (double)a[r]);
        cae_real *row = M + r * d0;
        for (int64_t i = 0; i < d0; i++) row[i] *= s;
    }
}

/* ||J||_F^2 of one example whose layer-l pre-activations are a[l][0..d_l). */
static double deep_sqnorm(deep_jac *j, const cae_real *const *a)
{
    const int64_t d0 = j->d0;
    memcpy(j->m0, j->wt[0], (size_t)(j->dims[1] * d0) * sizeof(cae_real));
    scale_rows(j->m0, a[0], j->acts[0], j->dims[1], d0);
    cae_real *cur = j->m0, *nxt = j->m1;
    for (int l = 2; l <= j->depth; l++) {
        cae_gemm_run(&j->plan[l - 1], j->wt[l - 1], cur, nxt, NULL, j->threads);
        scale_rows(nxt, a[l - 1], j->acts[l - 1], j->dims[l], d0);
        cae_real *t = cur;
        cur = nxt;
        nxt = t;
    }
    const int64_t n = j->dims[j->depth] * d0;
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (double)cur[i] * (double)cur[i];
    return s;
}

/* --------------------------------------------------------------- metrics */

static void saturation(const cae_real *h, int64_t rows, int64_t units, double *sum)
{
    for (int64_t r = 0; r < rows; r++) {
        int64_t sat = 0;
        const cae_real *v = h + r * units;
        for (int64_t j = 0; j < units; j++) sat += v[j] < (cae_real)0.05 || v[j] > (cae_real)0.95;
        *sum += (double)sat / (double)units;
    }
}

int cae_metrics_compute(cae_params *p, int depth, const cae_layer_config *layers,
                        const cae_dataset *d, const cae_metrics_config *cfg, cae_metrics *out,
                        char *err, size_t errlen)
{
    if (!out || check_stack(p, depth, layers, d, err, errlen)) return -1;
    cae_metrics_config c;
    if (cfg)
        c = *cfg;
    else
        cae_metrics_config_default(&c);
    if (c.batch <= 0) c.batch = DEFAULT_BATCH;
    if (c.limit < 0 || c.max_examples < 0) {
        fail(err, errlen, "metrics: limit and max_examples must be >= 0");
        return -1;
    }
    const int64_t n = c.limit && c.limit < d->n ? c.limit : d->n;
    const int64_t nj = c.max_examples && c.max_examples < n ? c.max_examples : n;
    if (n < 1) {
        fail(err, errlen, "metrics: the data set has no examples");
        return -1;
    }
    memset(out, 0, sizeof *out);
    out->depth = depth;
    out->d_in = layers[0].n_in;
    out->d_out = layers[depth - 1].n_hidden;
    const int64_t B = c.batch < n ? c.batch : n;
    encoder en = {.p = p, .depth = depth, .L = layers, .threads = c.threads, .batch = B,
                  .with_recon = has_decoder(p, &layers[0])};
    deep_jac dj;
    memset(&dj, 0, sizeof dj);
    cae_act acts[CAE_MAX_LAYERS];
    double *sq = malloc((size_t)B * sizeof *sq);
    int rc = -1;
    if (!sq) {
        fail(err, errlen, "metrics: out of memory");
        goto done;
    }
    if (depth > 1 && deep_init(&dj, p, depth, layers, acts, c.threads, err, errlen)) goto done;
    const cae_tensor *W1 = cae_layer_tensor(p, 1, "W");
    double sum_norm = 0, sum_sq = 0, sum_recon = 0, sat_sum[CAE_MAX_LAYERS] = {0};
    for (int64_t s = 0; s < n; s += B) {
        const int64_t rows = n - s < B ? n - s : B;
        enc_graph *e = enc_run(&en, d->x + s * d->dim, rows, err, errlen);
        if (!e) goto done;
        if (en.with_recon) sum_recon += (double)cae_node_value(e->recon)->data[0] * (double)rows;
        for (int l = 0; l < depth; l++)
            saturation(cae_node_value(e->h[l])->data, rows, layers[l].n_hidden, &sat_sum[l]);
        const int64_t jr = s >= nj ? 0 : (nj - s < rows ? nj - s : rows);
        if (jr == 0) continue;
        if (depth == 1) {
            const int st = cae_jacobian_sqnorms_pre(cae_node_value(e->a[0])->data, W1->data, jr,
                                                    layers[0].n_in, layers[0].n_hidden,
                                                    layers[0].act, CAE_W_IN_UNITS, sq);
            if (st) {
                fail(err, errlen, "metrics: closed-form Jacobian: %s", cae_jacobian_strerror(st));
                goto done;
            }
        } else {
            for (int64_t r = 0; r < jr; r++) {
                const cae_real *a[CAE_MAX_LAYERS];
                for (int l = 0; l < depth; l++)
                    a[l] = cae_node_value(e->a[l])->data + r * layers[l].n_hidden;
                sq[r] = deep_sqnorm(&dj, a);
            }
        }
        for (int64_t r = 0; r < jr; r++) {
            sum_sq += sq[r];
            sum_norm += sqrt(sq[r]);
        }
    }
    out->n_examples = n;
    out->n_jacobian = nj;
    out->jac_norm = sum_norm / (double)nj;
    out->jac_sqnorm = sum_sq / (double)nj;
    out->jac_per_entry = out->jac_sqnorm / ((double)out->d_in * (double)out->d_out);
    for (int l = 0; l < depth; l++) out->sat_layer[l] = sat_sum[l] / (double)n;
    out->sat = out->sat_layer[depth - 1];
    out->recon = en.with_recon ? sum_recon / (double)n : NAN;
    rc = 0;
done:
    free(sq);
    deep_free(&dj);
    encoder_free(&en);
    return rc;
}

/* ----------------------------------------------------------------- codes */

int cae_encode_dataset(cae_params *p, int depth, const cae_layer_config *layers,
                       const cae_dataset *d, int64_t limit, int threads, cae_dataset **out,
                       char *err, size_t errlen)
{
    if (!out) {
        fail(err, errlen, "encode: out is NULL");
        return -1;
    }
    *out = NULL;
    if (check_stack(p, depth, layers, d, err, errlen)) return -1;
    const int64_t n = limit > 0 && limit < d->n ? limit : d->n;
    const int64_t H = layers[depth - 1].n_hidden;
    if (n < 1) {
        fail(err, errlen, "encode: the data set has no examples");
        return -1;
    }
    const int64_t B = n < DEFAULT_BATCH ? n : DEFAULT_BATCH;
    cae_dataset *cd = calloc(1, sizeof *cd);
    void *xs = NULL;
    if (!cd || posix_memalign(&xs, CAE_ALIGN, (size_t)(n * H) * sizeof(cae_real)) ||
        !(cd->y = malloc((size_t)n * sizeof *cd->y))) {
        fail(err, errlen, "encode: out of memory for %lld x %lld codes", (long long)n, (long long)H);
        if (cd) free(cd->y);
        free(cd);
        free(xs);
        return -1;
    }
    cd->x = xs;
    cd->owns = 1;
    cd->n = n;
    cd->dim = H;
    cd->rows = (int)H;
    cd->cols = 1;
    cd->n_classes = d->n_classes;
    memcpy(cd->y, d->y, (size_t)n * sizeof *cd->y);
    encoder en = {.p = p, .depth = depth, .L = layers, .threads = threads, .batch = B};
    for (int64_t s = 0; s < n; s += B) {
        const int64_t rows = n - s < B ? n - s : B;
        enc_graph *e = enc_run(&en, d->x + s * d->dim, rows, err, errlen);
        if (!e) {
            encoder_free(&en);
            cae_dataset_free(cd);
            return -1;
        }
        memcpy(cd->x + s * H, cae_node_value(e->h[depth - 1])->data,
               (size_t)(rows * H) * sizeof(cae_real));
    }
    encoder_free(&en);
    *out = cd;
    return 0;
}
