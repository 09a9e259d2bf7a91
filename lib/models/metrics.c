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
 *   depth k: J = D_k W_k^T ... D_1 W_1^T per example (cae_deep_jac in
 *            encoder.c, shared with the spectra of cae/analysis.h),
 *            ||J||^2 = sum J^2 accumulated in double. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cae/jacobian.h"
#include "cae/metrics.h"
#include "cae/ops.h"
#include "models/encoder_internal.h"

enum { DEFAULT_BATCH = 500 };

void cae_metrics_config_default(cae_metrics_config *c)
{
    memset(c, 0, sizeof *c);
    c->batch = DEFAULT_BATCH;
}

/* --------------------------------------------------------------- checks */

static int shape_is(const cae_tensor *t, int rank, int64_t d0, int64_t d1)
{
    return t && t->rank == rank && t->shape[0] == d0 && (rank == 1 || t->shape[1] == d1);
}

/* The encoder layers exist in p with consistent shapes, and d fits them. */
static cae_status check_stack(const cae_params *p, int depth, const cae_layer_config *L,
                       const cae_dataset *d, cae_error *err)
{
    if (!p || !L || !d || depth < 1 || depth > CAE_MAX_LAYERS) {
        return cae_error_set(err, CAE_ERR_ARG, "metrics: need a store, 1..%d layer configs and a dataset", CAE_MAX_LAYERS);
    }
    if (d->dim != L[0].n_in) {
        return cae_error_set(err, CAE_ERR_SHAPE, "the data has %lld inputs per example, layer 1 of the model expects %lld",
             (long long)d->dim, (long long)L[0].n_in);
    }
    for (int l = 1; l <= depth; l++) {
        const cae_layer_config *c = &L[l - 1];
        if (c->n_in < 1 || c->n_hidden < 1 || c->act < CAE_ACT_SIGMOID || c->act > CAE_ACT_LINEAR) {
            return cae_error_set(err, CAE_ERR_ARG, "layer %d: bad configuration (sizes %lld x %lld, activation %d)", l,
                 (long long)c->n_in, (long long)c->n_hidden, (int)c->act);
        }
        if (l > 1 && c->n_in != L[l - 2].n_hidden) {
            return cae_error_set(err, CAE_ERR_SHAPE, "layer %d has %lld inputs but layer %d has %lld units", l,
                 (long long)c->n_in, l - 1, (long long)L[l - 2].n_hidden);
        }
        const cae_tensor *W = cae_layer_tensor(p, l, "W"), *b = cae_layer_tensor(p, l, "b");
        if (!shape_is(W, 2, c->n_in, c->n_hidden) || !shape_is(b, 1, c->n_hidden, 0)) {
            return cae_error_set(err, CAE_ERR_ARG, "layer %d: the store has no L%d.W (%lld x %lld) and L%d.b (%lld)", l, l,
                 (long long)c->n_in, (long long)c->n_hidden, l, (long long)c->n_hidden);
        }
    }
    return CAE_OK;
}

/* Layer 1 has a usable decoder in p. */
static int has_decoder(const cae_params *p, const cae_layer_config *c)
{
    if (!shape_is(cae_layer_tensor(p, 1, "c"), 1, c->n_in, 0)) return 0;
    return !c->untied || shape_is(cae_layer_tensor(p, 1, "Wd"), 2, c->n_hidden, c->n_in);
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

cae_status cae_metrics_compute(cae_params *p, int depth, const cae_layer_config *layers,
                        const cae_dataset *d, const cae_metrics_config *cfg, cae_metrics *out,
                        cae_error *err)
{
    if (!out) return cae_error_set(err, CAE_ERR_ARG, "metrics: out is NULL");
    cae_status rc = check_stack(p, depth, layers, d, err);
    if (rc) return rc;
    cae_metrics_config c;
    if (cfg)
        c = *cfg;
    else
        cae_metrics_config_default(&c);
    if (c.batch <= 0) c.batch = DEFAULT_BATCH;
    if (c.limit < 0 || c.max_examples < 0) {
        return cae_error_set(err, CAE_ERR_ARG, "metrics: limit and max_examples must be >= 0");
    }
    const int64_t n = c.limit && c.limit < d->n ? c.limit : d->n;
    const int64_t nj = c.max_examples && c.max_examples < n ? c.max_examples : n;
    if (n < 1) {
        return cae_error_set(err, CAE_ERR_ARG, "metrics: the data set has no examples");
    }
    memset(out, 0, sizeof *out);
    out->depth = depth;
    out->d_in = layers[0].n_in;
    out->d_out = layers[depth - 1].n_hidden;
    const int64_t B = c.batch < n ? c.batch : n;
    cae_act acts[CAE_MAX_LAYERS];
    for (int l = 0; l < depth; l++) acts[l] = layers[l].act;
    const int with_recon = has_decoder(p, &layers[0]);
    cae_enc en;
    cae_enc_init(&en, p, depth, acts, layers[0].n_in, with_recon ? layers[0].untied : -1, B, c.threads);
    cae_deep_jac dj;
    memset(&dj, 0, sizeof dj);
    double *sq = malloc((size_t)B * sizeof *sq);
    cae_real *xbuf = d->x ? NULL : cae_alloc_reals((size_t)(B * d->dim)); /* a byte set's rows */
    if (!sq || (!d->x && !xbuf)) {
        rc = cae_error_set(err, CAE_ERR_NOMEM, "metrics: out of memory");
        goto done;
    }
    if (depth > 1 && (rc = cae_deep_jac_init(&dj, p, depth, acts, c.threads, err))) goto done;
    const cae_tensor *W1 = cae_layer_tensor(p, 1, "W");
    double sum_norm = 0, sum_sq = 0, sum_recon = 0, sat_sum[CAE_MAX_LAYERS] = {0};
    for (int64_t s = 0; s < n; s += B) {
        const int64_t rows = n - s < B ? n - s : B;
        cae_enc_graph *e = cae_enc_run(&en, cae_chunk_rows(d, s, rows, xbuf), rows, err);
        if (!e) {
            rc = err ? err->status : CAE_ERR_COMPILE;
            goto done;
        }
        if (with_recon) sum_recon += (double)cae_node_value(e->recon)->data[0] * (double)rows;
        for (int l = 0; l < depth; l++)
            saturation(cae_node_value(e->h[l])->data, rows, layers[l].n_hidden, &sat_sum[l]);
        const int64_t jr = s >= nj ? 0 : (nj - s < rows ? nj - s : rows);
        if (jr == 0) continue;
        if (depth == 1) {
            if ((rc = cae_jacobian_sqnorms_pre(cae_node_value(e->a[0])->data, W1->data, jr,
                                               layers[0].n_in, layers[0].n_hidden, layers[0].act,
                                               CAE_W_IN_UNITS, sq, err)))
                goto done;
        } else {
            for (int64_t r = 0; r < jr; r++) {
                const cae_real *a[CAE_MAX_LAYERS];
                for (int l = 0; l < depth; l++)
                    a[l] = cae_node_value(e->a[l])->data + r * layers[l].n_hidden;
                sq[r] = cae_deep_jac_sqnorm(&dj, a);
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
    out->recon = with_recon ? sum_recon / (double)n : NAN;
    rc = CAE_OK;
done:
    free(sq);
    cae_free(xbuf);
    cae_deep_jac_free(&dj);
    cae_enc_free(&en);
    return rc;
}

/* ----------------------------------------------------------------- codes */

cae_status cae_encode_dataset(cae_params *p, int depth, const cae_layer_config *layers,
                       const cae_dataset *d, int64_t limit, int threads, cae_dataset **out,
                       cae_error *err)
{
    if (!out) {
        return cae_error_set(err, CAE_ERR_ARG, "encode: out is NULL");
    }
    *out = NULL;
    cae_status st = check_stack(p, depth, layers, d, err);
    if (st) return st;
    const int64_t n = limit > 0 && limit < d->n ? limit : d->n;
    const int64_t H = layers[depth - 1].n_hidden;
    if (n < 1) {
        return cae_error_set(err, CAE_ERR_ARG, "encode: the data set has no examples");
    }
    const int64_t B = n < DEFAULT_BATCH ? n : DEFAULT_BATCH;
    cae_dataset *cd = calloc(1, sizeof *cd);
    void *xs = NULL;
    cae_real *xbuf = d->x ? NULL : cae_alloc_reals((size_t)(B * d->dim)); /* a byte set's rows */
    if (!cd || posix_memalign(&xs, CAE_ALIGN, (size_t)(n * H) * sizeof(cae_real)) ||
        !(cd->y = malloc((size_t)n * sizeof *cd->y)) || (!d->x && !xbuf)) {
        if (cd) free(cd->y);
        free(cd);
        free(xs);
        cae_free(xbuf);
        return cae_error_set(err, CAE_ERR_NOMEM, "encode: out of memory for %lld x %lld codes",
                             (long long)n, (long long)H);
    }
    cd->x = xs;
    cd->owns = 1;
    cd->n = n;
    cd->dim = H;
    cd->rows = (int)H;
    cd->cols = 1;
    cd->n_classes = d->n_classes;
    memcpy(cd->y, d->y, (size_t)n * sizeof *cd->y);
    cae_act acts[CAE_MAX_LAYERS];
    for (int l = 0; l < depth; l++) acts[l] = layers[l].act;
    cae_enc en;
    cae_enc_init(&en, p, depth, acts, layers[0].n_in, -1, B, threads);
    for (int64_t s = 0; s < n; s += B) {
        const int64_t rows = n - s < B ? n - s : B;
        cae_enc_graph *e = cae_enc_run(&en, cae_chunk_rows(d, s, rows, xbuf), rows, err);
        if (!e) {
            cae_enc_free(&en);
            cae_dataset_free(cd);
            cae_free(xbuf);
            return err ? err->status : CAE_ERR_COMPILE;
        }
        memcpy(cd->x + s * H, cae_node_value(e->h[depth - 1])->data,
               (size_t)(rows * H) * sizeof(cae_real));
    }
    cae_enc_free(&en);
    cae_free(xbuf);
    *out = cd;
    return CAE_OK;
}
