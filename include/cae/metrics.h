/*
 * cae/metrics.h — the measurements the paper reports, for a trained encoder
 * of any depth, and the codes of a data set through that encoder.
 *
 * The encoder is layers 1..depth of a parameter store (cae/model.h names:
 * "Lk.W" is n_in x n_hidden, a = x W + b, h = phi(a)), each with the
 * activation of its cae_layer_config. Over the examples of a dataset:
 *
 *   Jacobian   J_f(x) = dh_depth/dx (d_out x d_in). Depth 1: the closed form
 *              ||J||_F^2 = sum_j phi'(a_j)^2 n_j. Depth k > 1: the product
 *              J = J_k ... J_1 of the closed-form layer Jacobians
 *              J_l = diag(phi'(a_l)) W_l^T, formed per example with cae_gemm
 *              (O(d_1 d_0 + sum_l d_l d_(l-1) d_0) per example: cap it with
 *              max_examples). This is the end-to-end Jacobian of the stack,
 *              not the per-layer penalty each layer was trained with.
 *              Reported: mean ||J||_F, mean ||J||_F^2 and the per-entry mean
 *              ||J||_F^2 / (d_in d_out), all averaged over examples.
 *   SAT        the fraction of units with h < 0.05 or h > 0.95 (meaningful
 *              for sigmoid codes), averaged over examples: the top layer's,
 *              and every layer's.
 *   recon      layer 1's reconstruction cross-entropy (summed over the
 *              inputs, mean over examples; tied W^T or untied "L1.Wd" per
 *              layer 1's config), noise-free: the value a pretraining task
 *              reports. NaN when the store has no decoder for layer 1.
 *
 * The encoder runs batched through compiled graphs (one per batch size, at
 * most two: full batches and the remainder), bound to the dataset's rows; no
 * per-example allocation. The store's gradients are not touched. Nothing
 * prints; errors come back as a status with a message in err (graph.h).
 *
 *   cae_metrics m;
 *   cae_metrics_config mc;
 *   cae_metrics_config_default(&mc);
 *   mc.max_examples = 1000;                        // deep Jacobians are costly
 *   cae_error e;
 *   if (cae_metrics_compute(p, info.n_layers, info.layer, splits->valid, &mc, &m, &e))
 *       report(e.msg);
 */
#ifndef CAE_METRICS_H
#define CAE_METRICS_H

#include "cae/data.h"
#include "cae/model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cae_metrics_config {
    int64_t limit;        /* use the first `limit` examples (0 = all) */
    int64_t max_examples; /* Jacobian figures on the first N of those (0 = all) */
    int64_t batch;        /* forward batch size (default 500) */
    int threads;          /* per graph and GEMM (0 = OpenMP default) */
} cae_metrics_config;

void cae_metrics_config_default(cae_metrics_config *c);

typedef struct cae_metrics {
    int depth;                        /* encoder layers measured */
    int64_t d_in, d_out;              /* input width, top code width */
    int64_t n_examples;               /* examples behind SAT and recon */
    int64_t n_jacobian;               /* examples behind the Jacobian figures */
    double jac_norm;                  /* mean ||J_f(x)||_F */
    double jac_sqnorm;                /* mean ||J_f(x)||_F^2 */
    double jac_per_entry;             /* jac_sqnorm / (d_in d_out) */
    double sat;                       /* top layer's saturation (0..1) */
    double sat_layer[CAE_MAX_LAYERS]; /* layer k+1's saturation */
    double recon;                     /* layer 1 reconstruction (NaN if none) */
} cae_metrics;

/* Measure layers 1..depth of p (configs layers[0..depth-1]) on d (d->dim
 * must be layers[0].n_in; each layer's n_in the previous n_hidden; the
 * store's tensors of those shapes). */
cae_status cae_metrics_compute(cae_params *p, int depth, const cae_layer_config *layers,
                        const cae_dataset *d, const cae_metrics_config *cfg, cae_metrics *out,
                        cae_error *err);

/* The codes h_depth of the first n examples of d (n = limit, or all when
 * limit is 0 or larger): a new owned dataset (n x d_out, d's labels copied,
 * rows = d_out, cols = 1), freed with cae_dataset_free. Batched like the
 * metrics. On failure *out is NULL. */
cae_status cae_encode_dataset(cae_params *p, int depth, const cae_layer_config *layers,
                       const cae_dataset *d, int64_t limit, int threads, cae_dataset **out,
                       cae_error *err);

#ifdef __cplusplus
}
#endif
#endif
