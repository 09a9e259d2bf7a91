/* Exact encoder Jacobians: the closed form for one layer and reverse mode
 * over any compiled encoder graph (see cae/jacobian.h).
 *
 * Closed form. With a_j = sum_i x_i W_ij + b_j and h_j = phi(a_j),
 * dh_j/dx_i = phi'(a_j) W_ij: row j of J is unit j's weight vector scaled by
 * phi'(a_j). Everything here is computed in double from a (not from h), so
 * it shares no code and no rounding shortcut with the penalty ops it is
 * used to check.
 *
 * Reverse mode. backward_from(h, seed) with seed_bj' = [j' == j] gives
 * x.grad_bi = sum_b' sum_j' seed_b'j' dh_b'j'/dx_bi = dh_bj/dx_bi when
 * examples do not interact (dh_b'j'/dx_bi = 0 for b' != b). Not a hot path:
 * the seed buffer is allocated per call. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cae/jacobian.h"
#include "cae/op.h"
#include "shared.h"

static const char *jac_reason(int status)
{
    switch (status) {
    case CAE_ERR_ARG:
        return "invalid argument (NULL pointer, size < 1, or unknown activation or layout)";
    case CAE_ERR_COMPILE:
        return "graph not compiled, or its parameter store moved since compile: recompile it";
    case CAE_ERR_TAPE:
        return "x or h is not on this graph's tape: compile with h as the target or mark it "
               "with cae_graph_output";
    case CAE_ERR_NOGRAD:
        return "x keeps no gradient: call cae_input_requires_grad(x) before compiling";
    case CAE_ERR_SHAPE:
        return "h must be B x H and x's first dimension must be the same B";
    case CAE_ERR_NOMEM: return "out of memory";
    }
    return "unknown status";
}

/* The status of a public function, with its sentence in err. */
static cae_status report(cae_error *err, int status)
{
    return status ? cae_error_set(err, (cae_status)status, "jacobian: %s", jac_reason(status))
                  : CAE_OK;
}

static int act_ok(cae_act act) { return act >= CAE_ACT_SIGMOID && act <= CAE_ACT_LINEAR; }
static int layout_ok(cae_wlayout l) { return l == CAE_W_IN_UNITS || l == CAE_W_UNITS_IN; }

double cae_act_derivative(cae_act act, double a)
{
    switch (act) {
    case CAE_ACT_SIGMOID: {
        const double s = 1 / (1 + exp(-a));
        return s * (1 - s);
    }
    case CAE_ACT_TANH: {
        const double t = tanh(a);
        return 1 - t * t;
    }
    case CAE_ACT_RELU: return a > 0 ? 1 : 0;
    case CAE_ACT_SOFTPLUS: return 1 / (1 + exp(-a));
    case CAE_ACT_LINEAR: return 1;
    }
    return NAN;
}

/* W_ij, i.e. input i's weight into unit j, in either layout. */
static inline double w_at(const cae_real *W, int64_t D, int64_t H, cae_wlayout layout,
                          int64_t i, int64_t j)
{
    return layout == CAE_W_IN_UNITS ? (double)W[i * H + j] : (double)W[j * D + i];
}

/* a_j = sum_i x_i W_ij + b_j for one example, in double. */
static double pre_activation(const cae_real *x, const cae_real *W, const cae_real *bias,
                             int64_t D, int64_t H, cae_wlayout layout, int64_t j)
{
    double s = bias ? (double)bias[j] : 0;
    for (int64_t i = 0; i < D; i++) s += (double)x[i] * w_at(W, D, H, layout, i, j);
    return s;
}

static void fill_row(const cae_real *W, int64_t D, int64_t H, cae_wlayout layout, int64_t j,
                     double d, cae_real *row)
{
    for (int64_t i = 0; i < D; i++) row[i] = (cae_real)(d * w_at(W, D, H, layout, i, j));
}

static int cae_jacobian_layer_pre_impl(const cae_real *a, const cae_real *W, int64_t D, int64_t H,
                           cae_act act, cae_wlayout layout, cae_real *J)
{
    if (!a || !W || !J || D < 1 || H < 1 || !act_ok(act) || !layout_ok(layout))
        return CAE_ERR_ARG;
    for (int64_t j = 0; j < H; j++)
        fill_row(W, D, H, layout, j, cae_act_derivative(act, (double)a[j]), J + j * D);
    return CAE_OK;
}

cae_status cae_jacobian_layer_pre(const cae_real *a, const cae_real *W, int64_t D, int64_t H,
                           cae_act act, cae_wlayout layout, cae_real *J,
                                  cae_error *err)
{
    return report(err, cae_jacobian_layer_pre_impl(a, W, D, H, act, layout, J));
}

static int cae_jacobian_layer_impl(const cae_real *x, const cae_real *W, const cae_real *bias, int64_t D,
                       int64_t H, cae_act act, cae_wlayout layout, cae_real *J)
{
    if (!x || !W || !J || D < 1 || H < 1 || !act_ok(act) || !layout_ok(layout))
        return CAE_ERR_ARG;
    for (int64_t j = 0; j < H; j++) {
        const double a = pre_activation(x, W, bias, D, H, layout, j);
        fill_row(W, D, H, layout, j, cae_act_derivative(act, a), J + j * D);
    }
    return CAE_OK;
}

cae_status cae_jacobian_layer(const cae_real *x, const cae_real *W, const cae_real *bias, int64_t D,
                       int64_t H, cae_act act, cae_wlayout layout, cae_real *J,
                              cae_error *err)
{
    return report(err, cae_jacobian_layer_impl(x, W, bias, D, H, act, layout, J));
}

/* n_j = sum_i W_ij^2 (H doubles, malloc'd; NULL when out of memory). */
static double *unit_norms(const cae_real *W, int64_t D, int64_t H, cae_wlayout layout)
{
    double *n = calloc((size_t)H, sizeof *n);
    if (!n) return NULL;
    for (int64_t i = 0; i < D; i++)
        for (int64_t j = 0; j < H; j++) {
            const double w = w_at(W, D, H, layout, i, j);
            n[j] += w * w;
        }
    return n;
}

static int cae_jacobian_sqnorms_pre_impl(const cae_real *a, const cae_real *W, int64_t B, int64_t D,
                             int64_t H, cae_act act, cae_wlayout layout, double *out)
{
    if (!a || !W || !out || B < 1 || D < 1 || H < 1 || !act_ok(act) || !layout_ok(layout))
        return CAE_ERR_ARG;
    double *n = unit_norms(W, D, H, layout);
    if (!n) return CAE_ERR_NOMEM;
    for (int64_t b = 0; b < B; b++) {
        double s = 0;
        for (int64_t j = 0; j < H; j++) {
            const double d = cae_act_derivative(act, (double)a[b * H + j]);
            s += d * d * n[j];
        }
        out[b] = s;
    }
    free(n);
    return CAE_OK;
}

cae_status cae_jacobian_sqnorms_pre(const cae_real *a, const cae_real *W, int64_t B, int64_t D,
                             int64_t H, cae_act act, cae_wlayout layout, double *out,
                                    cae_error *err)
{
    return report(err, cae_jacobian_sqnorms_pre_impl(a, W, B, D, H, act, layout, out));
}

static int cae_jacobian_sqnorms_impl(const cae_real *x, const cae_real *W, const cae_real *bias, int64_t B,
                         int64_t D, int64_t H, cae_act act, cae_wlayout layout, double *out)
{
    if (!x || !W || !out || B < 1 || D < 1 || H < 1 || !act_ok(act) || !layout_ok(layout))
        return CAE_ERR_ARG;
    double *n = unit_norms(W, D, H, layout);
    if (!n) return CAE_ERR_NOMEM;
    for (int64_t b = 0; b < B; b++) {
        double s = 0;
        for (int64_t j = 0; j < H; j++) {
            const double d =
                cae_act_derivative(act, pre_activation(x + b * D, W, bias, D, H, layout, j));
            s += d * d * n[j];
        }
        out[b] = s;
    }
    free(n);
    return CAE_OK;
}

cae_status cae_jacobian_sqnorms(const cae_real *x, const cae_real *W, const cae_real *bias, int64_t B,
                         int64_t D, int64_t H, cae_act act, cae_wlayout layout, double *out,
                                cae_error *err)
{
    return report(err, cae_jacobian_sqnorms_impl(x, W, bias, B, D, H, act, layout, out));
}

/* ------------------------------------------------------------ reverse mode */

/* Validate (g, x, h); on success set B, H, D. */
static int graph_check(cae_graph *g, cae_node *x, cae_node *h, int64_t *B, int64_t *H,
                       int64_t *D)
{
    if (!g || !x || !h) return CAE_ERR_ARG;
    if (!cae_graph_compiled(g)) return CAE_ERR_COMPILE;
    if (x->graph != g || h->graph != g || !cae_node_on_tape(x) || !cae_node_on_tape(h)) return CAE_ERR_TAPE;
    if (!x->out.grad) return CAE_ERR_NOGRAD;
    if (h->out.rank != 2 || x->out.rank < 1 || x->out.shape[0] != h->out.shape[0] ||
        h->out.size < 1 || x->out.size < 1)
        return CAE_ERR_SHAPE;
    *B = h->out.shape[0];
    *H = h->out.shape[1];
    *D = x->out.size / *B;
    return CAE_OK;
}

/* Forward once, then one backward per unit j; `sink` consumes x's gradient
 * (B x D) for unit j. */
typedef void (*unit_sink)(const cae_real *xg, int64_t B, int64_t H, int64_t D, int64_t j,
                          void *ctx);

static int graph_sweep(cae_graph *g, cae_node *x, cae_node *h, unit_sink sink, void *ctx)
{
    int64_t B, H, D;
    int rc = graph_check(g, x, h, &B, &H, &D);
    if (rc) return rc;
    cae_real *seed = cae_alloc_reals((size_t)(B * H)); /* zero-filled */
    if (!seed) return CAE_ERR_NOMEM;
    cae_graph_forward(g);
    for (int64_t j = 0; j < H; j++) {
        for (int64_t b = 0; b < B; b++) seed[b * H + j] = 1;
        cae_graph_backward_from(g, h, seed);
        for (int64_t b = 0; b < B; b++) seed[b * H + j] = 0;
        /* backward_from zeroes every gradient first, so when h keeps none
         * (it does not depend on x) x's gradient reads as zeros: J = 0. */
        sink(x->out.grad, B, H, D, j, ctx);
    }
    cae_free(seed);
    return CAE_OK;
}

static void store_rows(const cae_real *xg, int64_t B, int64_t H, int64_t D, int64_t j, void *ctx)
{
    cae_real *J = ctx;
    for (int64_t b = 0; b < B; b++)
        memcpy(J + (b * H + j) * D, xg + b * D, (size_t)D * sizeof *J);
}

static void add_squares(const cae_real *xg, int64_t B, int64_t H, int64_t D, int64_t j,
                        void *ctx)
{
    double *out = ctx;
    (void)H;
    for (int64_t b = 0; b < B; b++) {
        double s = 0;
        for (int64_t i = 0; i < D; i++) s += (double)xg[b * D + i] * (double)xg[b * D + i];
        if (j == 0) out[b] = 0;
        out[b] += s;
    }
}

static int cae_jacobian_graph_impl(cae_graph *g, cae_node *x, cae_node *h, cae_real *J)
{
    if (!J) return CAE_ERR_ARG;
    return graph_sweep(g, x, h, store_rows, J);
}

cae_status cae_jacobian_graph(cae_graph *g, cae_node *x, cae_node *h, cae_real *J,
                              cae_error *err)
{
    return report(err, cae_jacobian_graph_impl(g, x, h, J));
}

static int cae_jacobian_graph_sqnorms_impl(cae_graph *g, cae_node *x, cae_node *h, double *out)
{
    if (!out) return CAE_ERR_ARG;
    return graph_sweep(g, x, h, add_squares, out);
}

cae_status cae_jacobian_graph_sqnorms(cae_graph *g, cae_node *x, cae_node *h, double *out,
                                      cae_error *err)
{
    return report(err, cae_jacobian_graph_sqnorms_impl(g, x, h, out));
}
