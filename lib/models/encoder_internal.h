/* Private to lib/models: an encoder stack run batched through compiled
 * graphs, and the per-example Jacobian of the whole stack. Shared by the
 * metrics (cae/metrics.h) and the analysis tools (cae/analysis.h). */
#ifndef CAE_ENCODER_INTERNAL_H
#define CAE_ENCODER_INTERNAL_H

#include "cae/gemm.h"
#include "cae/jvp.h"
#include "cae/ops.h"
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

/* The Jacobians of layers 1..depth for `rows` examples at once, by forward
 * mode: all d0 input directions as one batch of tangents (cae/jvp.h), so
 * each layer's product is one GEMM with d0 x rows rows. An evaluation-only
 * graph (no gradients). After cae_jac_graph_run: tan (d0 rows) x dout, row
 * k rows + b = column k of example b's Jacobian (dh_depth / dx_k); sq:
 * rows values, ||J_b||_F^2. */
typedef struct cae_jac_graph {
    cae_graph *g;
    int64_t rows, d0, dout;
    cae_node *x, *tan, *sq;
} cae_jac_graph;

/* Examples per graph for these sizes (about 64 MB per tangent node). */
int64_t cae_jac_graph_rows(int64_t d0, int64_t dmax);
cae_status cae_jac_graph_init(cae_jac_graph *j, cae_params *p, int depth, const cae_act *act,
                              int64_t rows, int threads, cae_error *err);
/* x: rows x d0 (bound, not copied). */
void cae_jac_graph_run(cae_jac_graph *j, const cae_real *x);
void cae_jac_graph_free(cae_jac_graph *j);

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
