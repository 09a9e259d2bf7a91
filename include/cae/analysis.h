/*
 * cae/analysis.h — the geometry of a trained encoder (the paper's figures).
 *
 * An encoder net is layers 1..k of a parameter store (cae/model.h names),
 * run batched through compiled graphs. On it:
 *
 *   contraction curve  for points x0 of a data set and x1 drawn uniformly
 *                      on the sphere of radius r around x0, the mean (and
 *                      standard deviation) over points of
 *                      ||f(x0) - f(x1)|| / r, for each r of a grid (Fig. 1;
 *                      through 1, 2, 3 stacked layers: Fig. 3);
 *   distance stats     min / median / max Euclidean distance between pairs
 *                      of examples of a data set (marked on Fig. 1);
 *   Jacobian spectrum  singular values of J_f(x) (LAPACK gesdd) at each of n
 *                      examples, sorted in decreasing order, averaged index
 *                      by index, with their standard deviation (Fig. 2).
 *
 * Nothing prints; every function returns CAE_OK or a status with a message
 * in err (graph.h).
 * Results go to caller-owned arrays.
 */
#ifndef CAE_ANALYSIS_H
#define CAE_ANALYSIS_H

#include "cae/data.h"
#include "cae/model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cae_encoder_net cae_encoder_net;

/* Layers 1..n_layers of p with activations act[0..n_layers-1] (sizes come
 * from the tensors L<k>.W). batch: rows per compiled forward (>= 1). */
cae_encoder_net *cae_encoder_net_new(cae_params *p, int n_layers, const cae_act *act,
                                     int64_t batch, int threads, cae_error *err);
void cae_encoder_net_free(cae_encoder_net *e);
int64_t cae_encoder_net_inputs(const cae_encoder_net *e);
int64_t cae_encoder_net_outputs(const cae_encoder_net *e);
/* h (n x outputs) = f(x) for n rows of x (n x inputs), any n >= 1. */
cae_status cae_encoder_net_run(cae_encoder_net *e, const cae_real *x, int64_t n, cae_real *h,
                        cae_error *err);

/* Contraction curve at n_radii radii (> 0) over the first n_points
 * examples of d; the directions are drawn with seed. mean, sd: n_radii. */
cae_status cae_contraction_curve(cae_encoder_net *e, const cae_dataset *d, int64_t n_points,
                          const double *radii, int n_radii, uint64_t seed, double *mean,
                          double *sd, cae_error *err);

/* Distances over all pairs of `sample` examples drawn from d with seed, on
 * OpenMP's thread count (the result does not depend on it). */
cae_status cae_distance_stats(const cae_dataset *d, int64_t sample, uint64_t seed, double *min,
                       double *median, double *max, cae_error *err);

/* Singular values of the Jacobian of layers 1..n_layers at the first
 * n_examples examples of d: mean and sd (each min(inputs, outputs) values,
 * the count written to *n_values). Runs on OpenMP's thread count
 * (omp_set_num_threads, OMP_NUM_THREADS), LAPACK's SVD included when
 * LAPACKE is OpenBLAS's. */
cae_status cae_jacobian_spectrum(cae_params *p, int n_layers, const cae_act *act, const cae_dataset *d,
                          int64_t n_examples, double *mean, double *sd, int64_t *n_values,
                          cae_error *err);

/* Write a whitespace-separated table for gnuplot and other tools: a header
 * line of column names (no '#', for gnuplot's columnhead), then nrows rows
 * of ncols values (data row-major, nrows x ncols; NaN written as "nan").
 * Lines starting with '#' may precede it: `comment` (may be NULL, may hold
 * several '\n'-separated lines, each written as "# line"). Written to
 * PATH.tmp.<pid>, then renamed. */
cae_status cae_table_write(const char *path, const char *comment, int ncols, const char *const *names,
                    int64_t nrows, const double *data, cae_error *err);

#ifdef __cplusplus
}
#endif
#endif
