/*
 * cae/penalty.h — the contractive penalty, twice, with one signature.
 *
 * For an encoder layer h = phi(a), a = x W + b (W is d_x x d_h, CAE_W_IN_UNITS)
 * or a = x W^T + b (W is d_h x d_x, CAE_W_UNITS_IN), the Jacobian of one
 * example is J = diag(phi'(a)) W_units (d_h x d_x), and
 *
 *     ||J||_F^2 = sum_j phi'(a_j)^2 n_j,      n_j = sum_i W_ij^2
 *
 * (n_j is the squared norm of unit j's weights). Both functions return the
 * mean over the batch of that per-example sum (a scalar node) — the same
 * convention as the reconstruction losses (summed over features, averaged
 * over examples); multiply by lambda with cae_scale.
 *
 *   cae_contractive_penalty_composed  built from public primitive ops, so
 *       the tape differentiates it; it is also the template to copy when
 *       writing a new regularizer (see lib/models/regularizers.c).
 *   cae_contractive_penalty           one fused op: column norms computed
 *       once, the penalty in a single pass, and a hand-derived backward into
 *       a (hence b, x and W through the tape) and directly into W.
 *
 * The penalty involves the encoder only: tied or untied decoders do not
 * change it. Arguments: a, the pre-activation node (B x d_h); h, the
 * encoder's output node, which must be cae_activation(g, a, act) — both
 * forms read phi' from h where that is cheaper (sigmoid: h(1-h); tanh:
 * 1-h^2) and from a otherwise; W, the encoder weights in the given layout.
 * The fused op treats h as a cache and sends its whole gradient through a;
 * the composed one sends it through h and a as the primitives dictate. The
 * gradients reaching every parameter and input are the same.
 */
#ifndef CAE_PENALTY_H
#define CAE_PENALTY_H

#include "cae/graph.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum cae_act {
    CAE_ACT_SIGMOID = 0,
    CAE_ACT_TANH,
    CAE_ACT_RELU,
    CAE_ACT_SOFTPLUS,
    CAE_ACT_LINEAR /* phi(a) = a: the penalty is sum W^2 (weight decay) */
} cae_act;

/* Random probe directions (cae_probes, cae/ops.h): N(0, 1) or +-1 entries. */
typedef enum cae_probe_kind { CAE_PROBE_GAUSSIAN = 0, CAE_PROBE_RADEMACHER = 1 } cae_probe_kind;

typedef enum cae_wlayout {
    CAE_W_IN_UNITS = 0, /* W is d_x x d_h: a = x W     (column j = unit j) */
    CAE_W_UNITS_IN = 1  /* W is d_h x d_x: a = x W^T   (row j = unit j)    */
} cae_wlayout;

/* Name ("sigmoid", ...) and parse (-1 when unknown). */
const char *cae_act_name(cae_act act);
int cae_act_parse(const char *name);
/* phi(a) as a graph node (sigmoid, tanh, relu, softplus or identity). */
cae_node *cae_activation(cae_graph *g, cae_node *a, cae_act act);

cae_node *cae_contractive_penalty(cae_graph *g, cae_node *a, cae_node *h,
                                  cae_node *W, cae_act act, cae_wlayout layout);
cae_node *cae_contractive_penalty_composed(cae_graph *g, cae_node *a,
                                           cae_node *h, cae_node *W,
                                           cae_act act, cae_wlayout layout);

/* ---- by forward mode (cae/jvp.h): any encoder, any depth, any activation */

/* The penalty estimated from K random probes per example: x (B x D) any
 * node, h any node computed from x row by row (an encoder of any depth,
 * tied or not); (1/K) sum_k ||J_h(x_b) v_bk||^2 averaged over the batch,
 * v ~ N(0, I) or +-1 (kind), drawn afresh at every forward from the graph's
 * RNG. Unbiased: its expectation is the mean ||J_h(x_b)||_F^2 that the
 * exact forms compute for one layer. Differentiable (reverse over forward). */
cae_node *cae_jacobian_penalty_probes(cae_graph *g, cae_node *x, cae_node *h, int64_t K,
                                      cae_probe_kind kind);
/* CAE+H's second term, estimated with probes shared between x and its
 * corrupted copies: xt is C copies of x's rows, copy-major ((C B) x D, row
 * c B + b a corruption of x_b), ht = f(xt) through the same encoder as
 * h = f(x). Returns the mean over the batch, the copies and the K probes
 * v of ||J(x_b) v - J(xt_cb) v||^2: an unbiased estimate of
 * E_xt ||J(x) - J(xt)||_F^2 summed over the Jacobian's entries (not
 * averaged over them, as some implementations do: a gamma from those is
 * this gamma times d_h d_x). */
cae_node *cae_jacobian_difference_probes(cae_graph *g, cae_node *x, cae_node *h, cae_node *xt,
                                         cae_node *ht, int64_t K, cae_probe_kind kind);

/* Raw kernels of the fused op (no graph), for benchmarks and tests.
 * a, h: B x H (h = phi(a)); W: D x H or H x D by layout; norms: H (written);
 * colsum: H (written: mean over the batch of phi'(a)^2);
 * q: B x H (written: d penalty / d a, for upstream gradient 1).
 * Returns the penalty. */
double caek_contractive_forward(const cae_real *a, const cae_real *h,
                                const cae_real *W,
                                int64_t B, int64_t H, int64_t D, cae_act act,
                                cae_wlayout layout, cae_real *norms,
                                cae_real *colsum, cae_real *q, int threads);
/* da += g q (when da != NULL); dW += 2 g colsum_j W (when dW != NULL). */
void caek_contractive_backward(const cae_real *q, const cae_real *colsum,
                               const cae_real *W, int64_t B, int64_t H,
                               int64_t D, cae_wlayout layout, cae_real g,
                               cae_real *da, cae_real *dW, int threads);

#ifdef __cplusplus
}
#endif
#endif
