/*
 * cae/ops.h — the built-in ops. Each constructor adds one node to g and
 * returns it, or returns NULL: silently when an input is NULL (the earlier
 * error stands), with a recorded error naming the op and the shapes when
 * the shapes do not fit (cae_graph_error). Shapes are row-major; "B x N"
 * means B rows (examples) of N features.
 *
 * Loss conventions (those of the paper reproduced here): reconstruction
 * losses are summed over features and averaged over the batch.
 */
#ifndef CAE_OPS_H
#define CAE_OPS_H

#include "cae/graph.h"
#include "cae/penalty.h" /* cae_probe_kind */

#ifdef __cplusplus
extern "C" {
#endif

/* C = op(A) op(B), op(X) = X or X^T by the flags. A, B rank 2. JIT libxsmm
 * microkernels dispatched at compile, OpenMP over output tiles. */
cae_node *cae_matmul(cae_graph *g, cae_node *a, cae_node *b, int trans_a,
                     int trans_b);
/* x op(W) + v: x B x K, op(W) K x N, v N values (rank 1) added to every
 * row. One node: the bias is added to each output tile while it is in
 * cache, and its gradient is the column sums of the output's. Values and
 * gradients equal, bit for bit, those of
 * cae_bias_add(g, cae_matmul(g, x, W, 0, trans_w), v). */
cae_node *cae_affine(cae_graph *g, cae_node *x, cae_node *W, cae_node *v,
                     int trans_w);

/* ---- element-wise, same shapes (any rank) */
cae_node *cae_add(cae_graph *g, cae_node *a, cae_node *b);
cae_node *cae_sub(cae_graph *g, cae_node *a, cae_node *b);
cae_node *cae_mul(cae_graph *g, cae_node *a, cae_node *b);
cae_node *cae_scale(cae_graph *g, cae_node *x, cae_real c);      /* c x   */
cae_node *cae_add_scalar(cae_graph *g, cae_node *x, cae_real c); /* x + c */
cae_node *cae_square(cae_graph *g, cae_node *x);

/* ---- row broadcast: x is B x N, v has N elements (rank 1) */
cae_node *cae_bias_add(cae_graph *g, cae_node *x, cae_node *v); /* x + v */
cae_node *cae_mul_row(cae_graph *g, cae_node *x, cae_node *v);  /* x * v */
/* ---- column broadcast: x is B x N, c has B elements (rank 1) */
cae_node *cae_mul_col(cae_graph *g, cae_node *x, cae_node *c);  /* row b times c[b] */

/* ---- reductions */
cae_node *cae_sum(cae_graph *g, cae_node *x);  /* all elements -> scalar */
cae_node *cae_mean(cae_graph *g, cae_node *x); /* all elements -> scalar */
/* sum of x_i^2 -> scalar, in one pass each way (weight decay: what
 * cae_sum(cae_square(x)) computes, without the squared copy). */
cae_node *cae_sum_squares(cae_graph *g, cae_node *x);
/* x rank 2, B x N. sum_rows: each row summed -> B values (rank 1).
 * sum_cols: each column summed -> N values (rank 1). */
cae_node *cae_sum_rows(cae_graph *g, cae_node *x);
cae_node *cae_sum_cols(cae_graph *g, cae_node *x);

/* ---- activations (element-wise) */
cae_node *cae_sigmoid(cae_graph *g, cae_node *x);
cae_node *cae_tanh(cae_graph *g, cae_node *x);
cae_node *cae_relu(cae_graph *g, cae_node *x);
cae_node *cae_softplus(cae_graph *g, cae_node *x); /* log(1 + e^x), stable */
cae_node *cae_exp(cae_graph *g, cae_node *x);
cae_node *cae_log(cae_graph *g, cae_node *x);
/* Heaviside step (x > 0): the derivative of relu; zero gradient. */
cae_node *cae_step(cae_graph *g, cae_node *x);

/* ---- losses -> scalar */
/* Binary cross-entropy between sigmoid(logits) and targets in [0,1]
 * (B x N): -sum_i [t log y + (1-t) log(1-y)], summed over features,
 * averaged over the B rows; stable for any logit. */
cae_node *cae_bce_logits(cae_graph *g, cae_node *logits, cae_node *target);
/* Softmax cross-entropy: logits B x C, labels B reals holding class
 * indices 0..C-1 (an input node; no gradient flows to it). Mean over B. */
cae_node *cae_softmax_xent(cae_graph *g, cae_node *logits, cae_node *labels);
/* sum_i (y - t)^2 over features, averaged over the B rows. */
cae_node *cae_sq_error(cae_graph *g, cae_node *y, cae_node *target);
/* The softmax of each row of z (B x C): probabilities. */
cae_node *cae_softmax(cae_graph *g, cae_node *z);

/* ---- shapes */
/* K copies of x stacked along its first dimension (a scalar becomes a
 * vector of K): out is (K d0) x d1 ...; the gradient sums the copies. */
cae_node *cae_tile(cae_graph *g, cae_node *x, int64_t K);
/* Each row of x (R x N) repeated B times in a row: out (R B) x N, row
 * r B + b = row r of x; the gradient sums the repeats. */
cae_node *cae_repeat_rows(cae_graph *g, cae_node *x, int64_t B);
/* The same values with another shape of the same size (a copy). */
cae_node *cae_reshape(cae_graph *g, cae_node *x, int rank, const int64_t *shape);

/* ---- noise (a fresh draw on every forward from the graph's RNG) */
/* x + N(0, sigma^2); gradient passes through unchanged. */
cae_node *cae_gaussian_noise(cae_graph *g, cae_node *x, cae_real sigma);
/* Each element set to 0 with probability nu, else kept (not rescaled);
 * the gradient passes through the same mask. */
cae_node *cae_mask_noise(cae_graph *g, cae_node *x, cae_real nu);
/* Identity forward, no gradient to x. */
cae_node *cae_stop_grad(cae_graph *g, cae_node *x);
/* A sample: 1 with probability p (each element of p in [0, 1]), else 0.
 * No gradient flows through it. */
cae_node *cae_bernoulli(cae_graph *g, cae_node *p);
/* Random probe directions for forward mode: K per row of x (B x D), a
 * (K B) x D node, direction-major (row k B + b is probe k of row b), drawn
 * afresh on every forward: N(0, 1) entries (CAE_PROBE_GAUSSIAN) or +-1
 * (CAE_PROBE_RADEMACHER). E[e e^T] = I either way. x only gives the shape:
 * no gradient flows to it. */
cae_node *cae_probes(cae_graph *g, cae_node *x, int64_t K, cae_probe_kind kind);
/* k steps of block Gibbs sampling in a binary RBM from v (B x D): h ~
 * Bernoulli(sigmoid(v W + b)), v ~ Bernoulli(sigmoid(h W^T + c)); W D x H,
 * b H values, c D values. No gradient flows through it (a sample, held
 * constant). chain, steps (both or neither; may be NULL): persistent
 * sampling (PCD) from chain (B x D, a tensor that outlives the graph),
 * started from v while steps->data[0] is 0; each forward writes the sample
 * back into chain and adds 1 to steps->data[0]. */
cae_node *cae_gibbs(cae_graph *g, cae_node *v, cae_node *W, cae_node *b, cae_node *c, int k,
                    cae_tensor *chain, cae_tensor *steps);
/* The same given a = v W + b (B x H, e.g. the model's affine node) instead
 * of v: the first hidden sample comes from a (bit for bit cae_gibbs's), one
 * product fewer. */
cae_node *cae_gibbs_pre(cae_graph *g, cae_node *a, cae_node *W, cae_node *b, cae_node *c, int k,
                        cae_tensor *chain, cae_tensor *steps);
/* A binary RBM's free energy summed over the batch, a scalar:
 * sum_b F(v_b) = -sum_b v_b . c - sum_{b,j} softplus(a_bj), from v (B x D),
 * its hidden pre-activation a = v W + b (B x H) and the visible bias c (D
 * values). One node for the six of its composition (mul_row, sum,
 * softplus, sum, add, scale), with the same gradients bit for bit:
 * d/da = -sigmoid(a), d/dv = -c, d/dc = -sum_b v_b (times the output's). */
cae_node *cae_free_energy(cae_graph *g, cae_node *v, cae_node *a, cae_node *c);

#ifdef __cplusplus
}
#endif
#endif
