/*
 * cae/gradcheck.h — checking gradients. Three checkers, none of which prints:
 * each fills a report and the caller (or cae/testing.h's Check macros)
 * decides.
 *
 *   cae_gradcheck    backward against central differences, element by
 *                    element (2 forwards per element: small tensors).
 *   cae_gradcompare  one graph's gradients against another's: a hand-derived
 *                    (fused) op against the same expression composed from
 *                    primitives, on the same parameters and inputs. Both in
 *                    the same precision, so they differ by rounding only and
 *                    the tolerance can be tight.
 *   cae_dircheck     backward against central differences along K random
 *                    directions through every parameter and input at once
 *                    (2K forwards whatever the size: a 784 x 1000 W).
 *
 * Noise ops are frozen during a check (the graph's RNG state is restored
 * before every forward), so a noisy graph is checked as the deterministic
 * function of one draw.
 *
 *   cae_error e;                    // each returns a cae_status, reason in e
 *   cae_gradcompare_report r;
 *   if (cae_gradcompare(g_fused, g_composed, NULL, &r, &e)) fail(e.msg);
 *   if (!(r.max_rel_diff <= 1e-4)) ...  // r.diff[r.worst] names where
 *   cae_gradcheck_report c;         // W: cae_param(g, W) made before compile
 *   if (cae_gradcheck(g, W, 1e-5, 0, 1, 0, &c, &e)) fail(e.msg);
 *   if (!(c.max_rel_err <= 1e-5)) ...   // c.worst_index, worst_analytic/_numeric
 */
#ifndef CAE_GRADCHECK_H
#define CAE_GRADCHECK_H

#include "cae/graph.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------- element-wise differences */

typedef struct cae_gradcheck_report {
    double max_abs_err;    /* max |analytic - numeric| */
    double max_rel_err;    /* max |a - n| / max(|a|, |n|, floor) */
    int64_t worst_index;   /* flat index of the worst relative error */
    double worst_analytic; /* the two values there */
    double worst_numeric;
    int64_t n_checked;
} cae_gradcheck_report;

/* Check d(loss)/d(wrt) for a compiled graph with a scalar loss. wrt is a
 * parameter node or an input marked with cae_input_requires_grad. eps (> 0)
 * is the finite-difference step; when the tensor has more than max_checks
 * elements, max_checks distinct indices are drawn with `seed` (max_checks
 * <= 0: all). floor is the relative-error denominator's floor (0 picks
 * 1e-7). Leaves the node's values as it found them. The verdict is the
 * caller's, from rep (worst index, both values there). Errors: CAE_ERR_ARG
 * (NULL wrt or report, a bad eps), CAE_ERR_COMPILE, CAE_ERR_MISMATCH (a
 * non-scalar loss), CAE_ERR_TAPE, CAE_ERR_NOGRAD (wrt keeps no gradient),
 * CAE_ERR_NOMEM; err's message names the node. */
cae_status cae_gradcheck(cae_graph *g, cae_node *wrt, double eps, int64_t max_checks,
                         uint64_t seed, double floor, cae_gradcheck_report *rep,
                         cae_error *err);

/* ------------------------------------------------- one graph vs another */

typedef enum cae_check_inputs {
    CAE_INPUTS_RANDOM = 0, /* every input drawn from U(lo, hi) with seed,
                              a stream per input name */
    CAE_INPUTS_CALLER      /* the analytic graph's inputs, as the caller
                              filled or bound them, given to both */
} cae_check_inputs;

/* Options of cae_gradcompare; NULL or all zero gives the defaults. */
typedef struct cae_gradcompare_opts {
    cae_check_inputs inputs;
    uint64_t seed;
    double lo, hi;  /* CAE_INPUTS_RANDOM's range; lo == hi: U(0, 1), like
                       pixels and cross-entropy targets */
    double floor;   /* relative-difference floor, as a fraction of the
                       tensor's largest |value| (scale); <= 0: 1e-2 */
} cae_gradcompare_opts;

typedef enum cae_diff_kind { CAE_DIFF_LOSS = 0, CAE_DIFF_PARAM, CAE_DIFF_INPUT } cae_diff_kind;

/* One compared tensor: the loss, or the gradient of the loss with respect
 * to a parameter or an input. For every element, with a the analytic and
 * r the reference value:
 *   abs = |a - r|,   rel = abs / max(|a|, |r|, floor * scale)   (0 if 0/0)
 * where scale is the tensor's largest |a| or |r|: elements far below the
 * tensor's scale (cancellation residues) are compared absolutely. A NaN
 * anywhere makes max_abs_diff and max_rel_diff NaN and is the worst. */
typedef struct cae_gradcompare_diff {
    const char *name;      /* "loss", the parameter's or the input's name
                              (owned by the store or the analytic graph) */
    cae_diff_kind kind;
    int rank;
    int64_t shape[CAE_MAX_RANK];
    int64_t size;
    double max_abs_diff;
    double max_rel_diff;
    int64_t worst_index;   /* flat index of the largest rel */
    double worst_analytic; /* the two values there */
    double worst_reference;
    double scale;
} cae_gradcompare_diff;

#define CAE_GRADCOMPARE_MAX 32

typedef struct cae_gradcompare_report {
    int n;             /* entries of diff[]: the loss, then parameters, then
                          inputs marked for gradients */
    cae_gradcompare_diff diff[CAE_GRADCOMPARE_MAX];
    int worst;         /* index in diff[] of the largest max_rel_diff */
    double max_rel_diff;
    double max_abs_diff;
} cae_gradcompare_report;

/* Compare two compiled graphs with scalar losses over the same parameter
 * store: `analytic` (e.g. a user's fused op) and `reference` (the same
 * expression from primitives); they may be the same graph. Inputs are
 * matched by name and must agree in shape and in whether they keep a
 * gradient. Both graphs get the same inputs (opts->inputs), run forward and
 * backward once each, and rep gets the loss and the gradient of every
 * parameter either graph uses (a parameter one graph does not use counts as
 * a zero gradient there) and of every input marked for gradients.
 * Leaves the store's values and gradients bit for bit as it found them,
 * every input bound as it was (CAE_INPUTS_CALLER only reads the analytic
 * graph's), and both graphs' RNG states; the graphs' activations and other
 * gradients (inputs' included) hold this comparison's passes.
 * Errors: CAE_ERR_ARG (NULL graph or report, more than CAE_GRADCOMPARE_MAX
 * tensors), CAE_ERR_COMPILE, CAE_ERR_MISMATCH (different stores, inputs
 * that do not match, a non-scalar loss), CAE_ERR_NOMEM. */
cae_status cae_gradcompare(cae_graph *analytic, cae_graph *reference,
                           const cae_gradcompare_opts *opts,
                           cae_gradcompare_report *rep, cae_error *err);

/* ------------------------------------------------ random directions */

/* What the directional check compares along each random direction u:
 *   CAE_DIRCHECK_CENTRAL  (f(θ + εu) - f(θ - εu)) / 2ε   against  <∇f, u>
 *     (f is the loss, or <v, n> for a node n and a random v: see `of`);
 *   CAE_DIRCHECK_ADJOINT  <v, J u> (forward mode) against <J^T v, u>
 *     (reverse mode): tangent rules against backwards (below). */
typedef enum cae_dircheck_mode { CAE_DIRCHECK_CENTRAL = 0, CAE_DIRCHECK_ADJOINT } cae_dircheck_mode;

/* Options of cae_dircheck; NULL or all zero gives the defaults. */
typedef struct cae_dircheck_opts {
    cae_dircheck_mode mode;
    int directions;  /* K, at most CAE_DIRCHECK_MAX; 0: 4 */
    double eps;      /* step length along the unit direction; 0: chosen (below) */
    uint64_t seed;   /* directions (and v) are drawn from it */
    cae_node *wrt;   /* NULL: every parameter and every input with a
                        gradient; else only this parameter or input */
    cae_node *of;    /* NULL: f is the loss; else a tape node n (any shape),
                        f = <v, n> for v of random signs, reverse side from
                        cae_graph_backward_from(n, v) */
    double floor;    /* relative-difference floor, as a fraction of scale;
                        <= 0: 0.1 */
    cae_node *tangent_in;  /* ADJOINT: an input, the tangent of wrt given to cae_jvp */
    cae_node *tangent_out; /* ADJOINT: cae_jvp's tangent of `of`, on the tape */
    double tol;      /* > 0: max_rel_diff over tol (or NaN) returns CAE_ERR_MISMATCH,
                        rep filled; 0: none (CENTRAL), 1e-4 float, 1e-10
                        double (ADJOINT); < 0: none */
} cae_dircheck_opts;

/* The adjoint mode, J the Jacobian of `of` w.r.t. `wrt` (an input with
 * cae_input_requires_grad, a parameter or any node keeping a gradient):
 *   cae_node *t = cae_input(g, "t", 2, (int64_t[]){B, D}), *Jt; // x's shape
 *   cae_jvp(g, 1, &h, 1, &x, &t, &Jt);     // before compile; one direction
 *   cae_graph_output(g, Jt); cae_graph_compile(g, cae_sum(g, h));
 *   cae_dircheck_opts o = {.mode = CAE_DIRCHECK_ADJOINT, .wrt = x, .of = h,
 *                          .tangent_in = t, .tangent_out = Jt};
 * Along direction k, u (wrt's shape) and v (of's) are drawn U(-1, 1);
 * forward[k] = <v, Jt> after a forward with t bound to u, reverse[k] =
 * <∇wrt, u> after cae_graph_backward_from(of, v); rel as below, with scale
 * the larger of sqrt(sum_i (v_i Jt_i)^2) and its reverse twin. One forward
 * and one backward a direction, no step: the two sides differ by rounding
 * only, so the default tol catches a 1% error in any term that carries 1%
 * of the product. The mismatch message names of's op and both values. */
#define CAE_DIRCHECK_MAX 32

/* Directions: every checked tensor (T of them, tensor t with n_t elements)
 * gets an equal share of the unit length: each element moves by
 * ±ε / sqrt(T n_t), random signs. So a wrong gradient in a 1000-element bias
 * is as visible as one in a 784 000-element W. Along direction k:
 *   forward[k] = (f(θ+) - f(θ-)) / 2ε,  reverse[k] = <∇f, θ+ - θ-> / 2ε
 * with θ± the perturbed values as actually stored (rounding included), and
 *   rel = |forward - reverse| / max(|forward|, |reverse|, floor * scale)
 * where scale = sqrt(sum_t |∇_t f|^2 / (T n_t)) is the typical size of
 * <∇f, u> over random directions. A NaN is the worst.
 * The step: f is computed in cae_real, so f(θ±) carry rounding noise of
 * about |f| u (u the unit roundoff, 2^-24 in float, 2^-53 in double) and
 * the difference quotient an error of |f| u / ε, against a truncation error
 * growing like ε^2. By default ε starts at 0.2 u^(1/3) |f| / scale (|f|
 * summed over of's elements), the textbook balance in the function's own
 * length |f| / scale; a pilot along the first direction (2 more forwards)
 * compares the differences at ε and ε/4 and shortens ε where truncation
 * would exceed 1e-3 (float) or 1e-7 (double). Measured on CAE-like graphs
 * from 5 x 7 to 784 x 1000 and on examples/verify_fused.c: max rel up to
 * 4e-3 in float and 3e-7 in double (1e-9 on cross-entropy layers) for a
 * right backward.
 * Random directions see an error spread over many elements (a factor, a
 * sign, a transpose, a row, a bias term); one wrong element among n is
 * diluted by 1/sqrt(n): cae_gradcompare or cae_gradcheck find those. */
typedef struct cae_dircheck_report {
    int n_dirs;
    int n_tensors;
    int64_t n_elements;
    double scale;
    double eps[CAE_DIRCHECK_MAX];     /* the step taken along each direction */
    double forward[CAE_DIRCHECK_MAX];
    double reverse[CAE_DIRCHECK_MAX];
    double max_abs_diff;
    double max_rel_diff;
    int worst;        /* the direction of max_rel_diff */
} cae_dircheck_report;

/* Run the directional check on a compiled graph (scalar loss unless `of`
 * is given) at its inputs as they are (bind a batch of real data: at x = 0
 * a sigmoid layer sits at a = b, where some terms vanish, and so do their
 * mistakes): one forward and backward at θ, 2 forwards per direction (and
 * the pilot's 2 or 4 when eps is chosen).
 * Leaves the store's values and gradients bit for bit as it found them,
 * every input bound as it was (inputs are perturbed in a private copy) and
 * the RNG state (ADJOINT: tangent_in bound as it was too); activations
 * and other gradients hold perturbed passes (ADJOINT: the last direction's).
 * Errors: CAE_ERR_ARG (bad options, nothing to check, more than 128
 * tensors), CAE_ERR_COMPILE, CAE_ERR_TAPE (a node not on the tape),
 * CAE_ERR_NOGRAD (wrt, or ADJOINT's of, keeps no gradient), CAE_ERR_SHAPE
 * (ADJOINT: a tangent of K > 1 directions), CAE_ERR_MISMATCH (a non-scalar
 * loss; over tol), CAE_ERR_NOMEM. */
cae_status cae_dircheck(cae_graph *g, const cae_dircheck_opts *opts,
                        cae_dircheck_report *rep, cae_error *err);

#ifdef __cplusplus
}
#endif
#endif
