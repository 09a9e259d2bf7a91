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

void cae_jac_graph_free(cae_jac_graph *j)
{
    cae_graph_free(j->g);
    memset(j, 0, sizeof *j);
}

int64_t cae_jac_graph_rows(int64_t d0, int64_t dmax)
{   /* about 64 MB per tangent node */
    const int64_t r = ((int64_t)16 << 20) / (d0 * dmax > 0 ? d0 * dmax : 1);
    return r < 1 ? 1 : r > 64 ? 64 : r;
}

cae_status cae_jac_graph_init(cae_jac_graph *j, cae_params *p, int depth, const cae_act *act,
                              int64_t rows, int threads, cae_error *err)
{
    memset(j, 0, sizeof *j);
    const cae_tensor *W1 = cae_layer_tensor(p, 1, "W");
    if (depth < 1 || depth > CAE_MAX_LAYERS || !W1 || W1->rank != 2 || rows < 1)
        return cae_error_set(err, CAE_ERR_ARG, "jacobian: no layer 1 in the store, or %d layers",
                             depth);
    const int64_t d0 = W1->shape[0];
    cae_graph *g = j->g = cae_graph_new(p, rows);
    if (!g) return cae_error_set(err, CAE_ERR_NOMEM, "jacobian: out of memory");
    cae_graph_set_threads(g, threads);
    cae_graph_set_no_grad(g, 1);
    j->rows = rows;
    j->d0 = d0;
    j->x = cae_input(g, "x", 2, (int64_t[]){rows, d0});
    /* The tangent of a_1 = x W_1 + b_1 along input direction e_k is row k
     * of W_1, the same for every example: W_1's rows, each repeated for the
     * `rows` examples, are all d0 directions at once, direction-major. */
    cae_node *W = cae_param(g, cae_layer_tensor(p, 1, "W"));
    cae_node *a1 = cae_affine(g, j->x, W, cae_param(g, cae_layer_tensor(p, 1, "b")), 0);
    cae_node *h = cae_activation(g, a1, act[0]);
    for (int l = 2; l <= depth; l++) h = cae_encoder(g, p, l, act[l - 1], h, NULL);
    cae_node *t1 = cae_repeat_rows(g, W, rows), *t = NULL;
    if (cae_jvp(g, 1, &h, 1, &a1, &t1, &t) == CAE_OK) {
        j->tan = t;
        const int64_t dout = cae_node_value(h)->shape[1];
        j->dout = dout;
        /* ||J_b||_F^2: the squares of example b's d0 rows, one per direction */
        cae_node *per_dir = cae_sum_rows(g, cae_square(g, t)); /* (d0 rows) values */
        j->sq = cae_sum_cols(g, cae_reshape(g, per_dir, 2, (int64_t[]){d0, rows}));
        cae_graph_output(g, t);
    }
    if (cae_graph_compile(g, j->sq)) {
        const cae_status st =
            cae_error_set(err, CAE_ERR_COMPILE, "jacobian: the %d-layer Jacobian for %lld rows: %s",
                          depth, (long long)rows, cae_graph_error(g));
        cae_jac_graph_free(j);
        return st;
    }
    return CAE_OK;
}

void cae_jac_graph_run(cae_jac_graph *j, const cae_real *x)
{
    cae_input_bind(j->x, x);
    cae_graph_forward(j->g);
}
