/* Private to lib/models: an encoder stack run batched through compiled
 * graphs, and the per-example Jacobian of the whole stack. Shared by the
 * metrics (cae/metrics.h) and the analysis tools (cae/analysis.h). */
#ifndef CAE_ENCODER_INTERNAL_H
#define CAE_ENCODER_INTERNAL_H

#include "cae/gemm.h"
#include "cae/model.h"

/* One compiled encoder graph for `rows` examples: every layer's
 * pre-activation a[l] and code h[l] stay on the tape; recon (when asked
 * for) is layer 1's reconstruction cross-entropy. */
typedef struct cae_enc_graph {
    cae_graph *g;
    int64_t rows;
    cae_node *x, *a[CAE_MAX_LAYERS], *h[CAE_MAX_LAYERS], *recon;
} cae_enc_graph;

/* Layers 1..depth of p (tensors Lk.W, Lk.b) with activations act[]. recon:
 * -1 none, 0 tied (W^T), 1 untied (L1.Wd) decoder for layer 1's
 * reconstruction. Graphs are compiled on first use, one for `batch` rows
 * and one for a different (last) row count. */
typedef struct cae_enc {
    cae_params *p;
    int depth;
    cae_act act[CAE_MAX_LAYERS];
    int64_t n_in, batch;
    int recon, threads;
    cae_enc_graph full, last;
} cae_enc;

void cae_enc_init(cae_enc *en, cae_params *p, int depth, const cae_act *act, int64_t n_in,
                  int recon, int64_t batch, int threads);
/* Compile the graph for `rows` examples now (it is otherwise compiled on
 * first use). */
cae_status cae_enc_prepare(cae_enc *en, int64_t rows, cae_error *err);
/* Forward rows (1..batch) examples x (rows x n_in, bound, not copied);
 * NULL (err set) if the graph cannot be compiled. */
cae_enc_graph *cae_enc_run(cae_enc *en, const cae_real *x, int64_t rows, cae_error *err);
void cae_enc_free(cae_enc *en);

/* J = D_k W_k^T ... D_1 W_1^T (d_k x d_0) for one example, D_l = diag(phi'(a_l)),
 * formed left to right: W_l^T transposed once at init, one planned GEMM per
 * layer after the first, no allocation per example. */
typedef struct cae_deep_jac {
    int depth;
    int64_t d0, dmax;
    int64_t dims[CAE_MAX_LAYERS + 1];
    cae_act act[CAE_MAX_LAYERS];
    cae_real *wt[CAE_MAX_LAYERS]; /* W_l^T: d_l x d_(l-1) */
    cae_gemm plan[CAE_MAX_LAYERS];
    cae_real *m0, *m1;            /* dmax x d0 each */
    int threads;
} cae_deep_jac;

/* Sizes from the tensors Lk.W of p. */
cae_status cae_deep_jac_init(cae_deep_jac *j, const cae_params *p, int depth, const cae_act *act,
                      int threads, cae_error *err);
void cae_deep_jac_free(cae_deep_jac *j);
/* J for the example whose layer-l pre-activations are a[l][0..d_(l+1)):
 * a d_depth x d_0 buffer owned by j, valid (and free to overwrite) until
 * the next call. */
cae_real *cae_deep_jac_compute(cae_deep_jac *j, const cae_real *const *a);
/* ||J||_F^2 of that example, accumulated in double. */
double cae_deep_jac_sqnorm(cae_deep_jac *j, const cae_real *const *a);

/* Rows [s, s+rows) of d as reals: in place when d holds reals, else
 * converted from its bytes into buf (rows x dim, or more). */
static inline const cae_real *cae_chunk_rows(const cae_dataset *d, int64_t s, int64_t rows,
                                             cae_real *buf)
{
    if (d->x) return d->x + s * d->dim;
    cae_dataset_copy_rows(d, s, rows, buf);
    return buf;
}

#endif
