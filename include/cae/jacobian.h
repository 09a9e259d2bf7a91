/*
 * cae/jacobian.h — exact encoder Jacobians, two independent ways.
 *
 * 1. Closed form, one layer. For h = phi(a), a = x W + b (W is d_x x d_h,
 *    CAE_W_IN_UNITS) or a = x W^T + b (W is d_h x d_x, CAE_W_UNITS_IN), one
 *    example's Jacobian is
 *
 *        J = dh/dx = diag(phi'(a)) W_units         (d_h x d_x, J_ji = phi'(a_j) W_ij)
 *
 *    and ||J||_F^2 = sum_j phi'(a_j)^2 n_j with n_j = sum_i W_ij^2, in
 *    O(d_x d_h). Metrics use the per-example squared norm: the raw norm is
 *    its square root, the per-entry mean is it divided by d_x d_h.
 *
 * 2. Reverse mode, any encoder graph. For a compiled graph with an input x
 *    (B x d_x, marked with cae_input_requires_grad before compile) and an
 *    output h (B x d_h) on the tape (compile with h as the target, or mark
 *    it with cae_graph_output), one cae_graph_backward_from(h, e_j) per
 *    output unit j — seed 1 at column j of every row — gives row j of every
 *    example's Jacobian at once: row b of x's gradient is row j of J(x_b).
 *    This assumes the B rows are independent examples: no op may couple
 *    rows (no batch statistics, no batch means inside the encoder). It costs
 *    d_h backward passes and is meant for tests, small models and checks,
 *    not for training.
 *
 * The two must agree element by element (tests/test_jacobian.c); the closed
 * form's squared norm is also the per-example value of the contractive
 * penalty (cae/penalty.h).
 *
 * Conventions. All buffers are caller-owned and row-major; these functions
 * never keep a pointer. A few allocate small temporaries (stated below) and
 * free them before returning. Nothing prints or exits: every function
 * returns CAE_OK or a status (ARG, COMPILE, TAPE, NOGRAD, SHAPE, NOMEM)
 * with a sentence in err (may be NULL), as graph.h says.
 *
 *   double sq[20];                                      // B = 20
 *   if (cae_jacobian_sqnorms_pre(a, W, 20, 784, 1000, CAE_ACT_SIGMOID,
 *                                CAE_W_IN_UNITS, sq, NULL)) ...
 *
 *   cae_real *J = malloc(B * H * D * sizeof *J);        // any encoder
 *   cae_error e;
 *   if (cae_jacobian_graph(g, x, h, J, &e)) fprintf(stderr, "%s\n", e.msg);
 */
#ifndef CAE_JACOBIAN_H
#define CAE_JACOBIAN_H

#include "cae/graph.h"
#include "cae/penalty.h"

#ifdef __cplusplus
extern "C" {
#endif

/* phi'(a) for one pre-activation, computed from a in double (sigmoid:
 * s(1-s); tanh: 1-tanh^2; relu: [a > 0]; softplus: sigmoid(a); linear: 1).
 * Returns NaN for an unknown activation. */
double cae_act_derivative(cae_act act, double a);

/* ------------------------------------------------- closed form, one layer */

/* One example's Jacobian from its pre-activations a (H values): J (H x D,
 * caller-owned, overwritten) = diag(phi'(a)) W_units. W is D x H or H x D
 * by layout. No allocation. */
cae_status cae_jacobian_layer_pre(const cae_real *a, const cae_real *W, int64_t D, int64_t H,
                           cae_act act, cae_wlayout layout, cae_real *J,
    cae_error *err);

/* The same from the example's input x (D values): a = x W (+ bias) is
 * computed here in double. bias (H values) may be NULL (zeros). No
 * allocation. */
cae_status cae_jacobian_layer(const cae_real *x, const cae_real *W, const cae_real *bias, int64_t D,
                       int64_t H, cae_act act, cae_wlayout layout, cae_real *J,
    cae_error *err);

/* ||J_f(x_b)||_F^2 for each of B examples (out: B doubles, caller-owned)
 * from pre-activations a (B x H): sum_j phi'(a_bj)^2 n_j. Allocates H
 * doubles for the column norms n_j. */
cae_status cae_jacobian_sqnorms_pre(const cae_real *a, const cae_real *W, int64_t B, int64_t D,
                             int64_t H, cae_act act, cae_wlayout layout, double *out,
    cae_error *err);

/* The same from inputs x (B x D): a = x W (+ bias) per example, in double
 * (O(B D H), single-threaded). bias may be NULL. Allocates H doubles. */
cae_status cae_jacobian_sqnorms(const cae_real *x, const cae_real *W, const cae_real *bias, int64_t B,
                         int64_t D, int64_t H, cae_act act, cae_wlayout layout, double *out,
    cae_error *err);

/* ------------------------------------------- reverse mode, any encoder */

/* The B Jacobians of h (B x H) w.r.t. x (B x D: its first dimension is the
 * batch, the rest is flattened) of compiled graph g: J (B x H x D,
 * caller-owned) with J[(b H + j) D + i] = dh_bj / dx_bi. x is usually an
 * input marked with cae_input_requires_grad; any tape node that keeps a
 * gradient works (e.g. a layer-1 code, for one layer of a stack).
 * Runs cae_graph_forward once with x's current value (a noise op draws
 * once; the H backward passes see that draw), then H backward passes.
 * Side effect: every gradient of g, parameters included, is overwritten
 * (the parameters' gradients end as those of the last pass): compute
 * training gradients afterwards. Allocates B x H reals for the seed.
 * Assumes no op couples the rows of the batch (see the overview). */
cae_status cae_jacobian_graph(cae_graph *g, cae_node *x, cae_node *h, cae_real *J,
    cae_error *err);

/* ||J_f(x_b)||_F^2 per example (out: B doubles) by the same H backward
 * passes, without storing J. Same requirements and side effects. */
cae_status cae_jacobian_graph_sqnorms(cae_graph *g, cae_node *x, cae_node *h, double *out,
    cae_error *err);

#ifdef __cplusplus
}
#endif
#endif
