/* Encoder stacks run batched through compiled graphs, and the Jacobian of a
 * whole stack per example (see encoder_internal.h). */
#include <stdio.h>
#include <string.h>

#include "cae/jacobian.h"
#include "cae/ops.h"
#include "models/encoder_internal.h"

void cae_enc_init(cae_enc *en, cae_params *p, int depth, const cae_act *act, int64_t n_in,
                  int recon, int64_t batch, int threads)
{
    memset(en, 0, sizeof *en);
    en->p = p;
    en->depth = depth;
    memcpy(en->act, act, (size_t)depth * sizeof *act);
    en->n_in = n_in;
    en->recon = recon;
    en->batch = batch;
    en->threads = threads;
}

static void enc_graph_free(cae_enc_graph *e)
{
    cae_graph_free(e->g);
    memset(e, 0, sizeof *e);
}

static cae_status enc_graph_build(cae_enc *en, cae_enc_graph *e, int64_t rows, cae_error *err)
{
    enc_graph_free(e);
    cae_graph *g = cae_graph_new(en->p, rows);
    if (!g) {
        return cae_error_set(err, CAE_ERR_NOMEM, "encoder: out of memory for the encoder graph");
    }
    cae_graph_set_threads(g, en->threads);
    e->g = g;
    e->rows = rows;
    e->x = cae_input(g, "x", 2, (int64_t[]){rows, en->n_in});
    cae_node *h = e->x;
    for (int l = 1; l <= en->depth; l++) {
        h = cae_encoder(g, en->p, l, en->act[l - 1], h, &e->a[l - 1]);
        e->h[l - 1] = h;
        cae_graph_output(g, e->a[l - 1]);
        cae_graph_output(g, h);
    }
    cae_node *target = h;
    if (en->recon >= 0) {
        cae_node *W = cae_param(g, cae_layer_tensor(en->p, 1, en->recon ? "Wd" : "W"));
        cae_node *c = cae_param(g, cae_layer_tensor(en->p, 1, "c"));
        e->recon = cae_bce_logits(g, cae_affine(g, e->h[0], W, c, !en->recon), e->x);
        target = e->recon;
    }
    if (cae_graph_compile(g, target)) {
        const cae_status st = cae_error_set(
            err, CAE_ERR_COMPILE, "encoder: compiling the %d-layer encoder for %lld rows: %s",
            en->depth, (long long)rows, cae_graph_error(g));
        enc_graph_free(e);
        return st;
    }
    return CAE_OK;
}

/* The graph for `rows`, compiled if it is not yet; NULL on failure. */
static cae_enc_graph *graph_for(cae_enc *en, int64_t rows, cae_error *err)
{
    cae_enc_graph *e = rows == en->batch ? &en->full : &en->last;
    if (!e->g || e->rows != rows)
        if (enc_graph_build(en, e, rows, err)) return NULL;
    return e;
}

cae_status cae_enc_prepare(cae_enc *en, int64_t rows, cae_error *err)
{
    cae_enc_graph *e = rows == en->batch ? &en->full : &en->last;
    return e->g && e->rows == rows ? CAE_OK : enc_graph_build(en, e, rows, err);
}

cae_enc_graph *cae_enc_run(cae_enc *en, const cae_real *x, int64_t rows, cae_error *err)
{
    cae_enc_graph *e = graph_for(en, rows, err);
    if (!e) return NULL;
    cae_input_bind(e->x, x);
    cae_graph_forward(e->g);
    return e;
}

void cae_enc_free(cae_enc *en)
{
    enc_graph_free(&en->full);
    enc_graph_free(&en->last);
}

/* ------------------------------------------------------- deep Jacobians */

void cae_deep_jac_free(cae_deep_jac *j)
{
    for (int l = 0; l < CAE_MAX_LAYERS; l++) cae_free(j->wt[l]);
    cae_free(j->m0);
    cae_free(j->m1);
    memset(j, 0, sizeof *j);
}

cae_status cae_deep_jac_init(cae_deep_jac *j, const cae_params *p, int depth, const cae_act *act,
                      int threads, cae_error *err)
{
    memset(j, 0, sizeof *j);
    j->depth = depth;
    j->threads = threads;
    for (int l = 1; l <= depth; l++) {
        const cae_tensor *W = cae_layer_tensor(p, l, "W");
        if (!W || W->rank != 2 || (l > 1 && W->shape[0] != j->dims[l - 1])) {
            return cae_error_set(err, CAE_ERR_SHAPE, "jacobian: layer %d of the store is missing or does not chain", l);
        }
        if (l == 1) j->dims[0] = j->d0 = W->shape[0];
        j->dims[l] = W->shape[1];
        j->act[l - 1] = act[l - 1];
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
        cae_deep_jac_free(j);
        return cae_error_set(err, CAE_ERR_NOMEM,
                             "jacobian: out of memory for the %d-layer Jacobian (%lld x %lld)",
                             depth, (long long)j->dmax, (long long)j->d0);
    }
    for (int l = 2; l <= depth; l++)
        if (cae_gemm_plan(&j->plan[l - 1], j->dims[l], j->d0, j->dims[l - 1], 0, 0, 0)) {
            cae_deep_jac_free(j);
            return cae_error_set(err, CAE_ERR_KERNEL,
                                 "jacobian: no GEMM kernel for the layer-%d Jacobian product", l);
        }
    return CAE_OK;
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

cae_real *cae_deep_jac_compute(cae_deep_jac *j, const cae_real *const *a)
{
    const int64_t d0 = j->d0;
    memcpy(j->m0, j->wt[0], (size_t)(j->dims[1] * d0) * sizeof(cae_real));
    scale_rows(j->m0, a[0], j->act[0], j->dims[1], d0);
    cae_real *cur = j->m0, *nxt = j->m1;
    for (int l = 2; l <= j->depth; l++) {
        cae_gemm_run(&j->plan[l - 1], j->wt[l - 1], cur, nxt, NULL, j->threads);
        scale_rows(nxt, a[l - 1], j->act[l - 1], j->dims[l], d0);
        cae_real *t = cur;
        cur = nxt;
        nxt = t;
    }
    return cur;
}

double cae_deep_jac_sqnorm(cae_deep_jac *j, const cae_real *const *a)
{
    const cae_real *J = cae_deep_jac_compute(j, a);
    const int64_t n = j->dims[j->depth] * j->d0;
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (double)J[i] * (double)J[i];
    return s;
}
