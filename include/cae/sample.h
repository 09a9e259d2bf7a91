/*
 * cae/sample.h — what a trained model generates: Markov chains of samples,
 * and the Parzen-window log-likelihood by which the literature compares
 * generators.
 *
 * A contractive encoder's Jacobian spans the directions along which the
 * data vary (its tangent plane). The chain of Rifai, Bengio, Dauphin and
 * Vincent (ICML 2012) moves along them: from x,
 *
 *     h = f(x),   h~ = h + J J^T e,  e ~ N(0, sigma^2 I)   (hidden space)
 *     x <- g(h~)  (the decoder's mean, or a Bernoulli draw from it)
 *
 * with J = dh/dx of the whole encoder (a stack is sampled in its top code
 * and decoded down, layer by layer, through each layer's own decoder: tied
 * W^T or untied Wd, sigmoid). J J^T e is computed as a pair, a
 * vector-Jacobian product u = J^T e (the reverse chain through the layers)
 * and a Jacobian-vector product J u (forward mode, cae/jvp.h), never
 * forming J nor J J^T: 2 d_x d_h per sample for one layer, against d_h^2
 * per sample plus d_h^2 d_x once for the closed form diag(s) W^T W diag(s)
 * of a sigmoid layer, which exists for one layer only. The chains run
 * together, C rows of every product.
 *
 * An RBM's chain is block Gibbs sampling (h ~ p(h|v), v ~ p(v|h)); the
 * recorded state is p(v|h).
 *
 * Nothing prints; errors follow graph.h.
 */
#ifndef CAE_SAMPLE_H
#define CAE_SAMPLE_H

#include "cae/data.h"
#include "cae/model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cae_sample_config {
    int64_t chains;  /* C chains, run as the C rows of one graph */
    int steps;       /* steps of every chain */
    int every;       /* record every `every`-th step (1..steps) */
    double sigma;    /* the hidden-space noise's standard deviation (not rbm) */
    int bernoulli;   /* 1: the next state is a Bernoulli draw from the decoder's
                        mean (an rbm's visible units always are); 0: the mean */
    uint64_t seed;
    int threads;     /* 0: OpenMP's default */
} cae_sample_config;

void cae_sample_config_default(cae_sample_config *c); /* 10 chains, 100 steps, every 10, sigma 0.1 */

/* The number of states recorded: steps / every. */
int cae_sample_records(const cae_sample_config *c);

/* Run the chains of the pretrained stack info describes (layers of store
 * p; not a classifier) from start (chains x n_in values in [0, 1]): out
 * receives cae_sample_records(c) states of chains x n_in, record-major,
 * each the decoder's mean (rbm: p(v|h)) after the recorded step. */
cae_status cae_sample(cae_params *p, const cae_model_info *info, const cae_real *start,
                      const cae_sample_config *c, cae_real *out, cae_error *err);

/* One step of the contractive chain as nodes of g: from x (C x n_in) and
 * the hidden-space noise e (C x the top code's width), the decoder's mean
 * of h~ = f(x) + J J^T e decoded down the stack; *jjte (may be NULL)
 * receives the node of J J^T e. cae_sample runs it with e = sigma N(0, I). */
cae_node *cae_sample_step(cae_graph *g, cae_params *p, const cae_model_info *info, cae_node *x,
                          cae_node *e, cae_node **jjte);

/* ------------------------------------------------------ Parzen windows */

/* A Gaussian Parzen window on n samples (n x D): for each example x of d
 * (its first `limit`, 0 = all),
 *   log p(x) = log (1/n) sum_i N(x; s_i, sigma^2 I)
 *            = logsumexp_i(-||x - s_i||^2 / (2 sigma^2)) - log n - D/2 log(2 pi sigma^2),
 * for every sigma of sigmas[0..n_sigma): the mean over the examples in
 * mean[k] and its standard error in se[k]. The distances come from one GEMM
 * per block of examples (||x||^2 + ||s||^2 - 2 x s^T), shared by all widths. */
cae_status cae_parzen(const cae_real *samples, int64_t n, const cae_dataset *d, int64_t limit,
                      const double *sigmas, int n_sigma, int threads, double *mean, double *se,
                      cae_error *err);

#ifdef __cplusplus
}
#endif
#endif
