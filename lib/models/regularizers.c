/* The contractive penalty composed from public primitive ops — and the
 * template to copy when writing a new regularizer: build the value from ops
 * that already have a backward, and the tape differentiates it.
 *
 *   ||J_f(x)||_F^2 = sum_j phi'(a_j)^2 n_j,   n_j = sum_i W_ij^2
 *
 * per example, averaged over the batch (see cae/penalty.h). Each line below
 * is one node; nothing here knows about gradients. */
#include <string.h>

#include "cae/ops.h"
#include "cae/jvp.h"
#include "cae/penalty.h"

static const char *const act_names[] = {"sigmoid", "tanh", "relu", "softplus", "linear"};

const char *cae_act_name(cae_act act)
{
    return (act >= CAE_ACT_SIGMOID && act <= CAE_ACT_LINEAR) ? act_names[act] : "unknown";
}

int cae_act_parse(const char *name)
{
    for (int i = 0; name && i <= CAE_ACT_LINEAR; i++)
        if (!strcmp(name, act_names[i])) return i;
    return -1;
}

cae_node *cae_activation(cae_graph *g, cae_node *a, cae_act act)
{
    switch (act) {
    case CAE_ACT_SIGMOID: return cae_sigmoid(g, a);
    case CAE_ACT_TANH: return cae_tanh(g, a);
    case CAE_ACT_RELU: return cae_relu(g, a);
    case CAE_ACT_SOFTPLUS: return cae_softplus(g, a);
    case CAE_ACT_LINEAR: return cae_scale(g, a, 1);
    }
    return NULL;
}

/* phi'(a) as a node, from h = phi(a) where that is cheaper. */
static cae_node *activation_derivative(cae_graph *g, cae_node *a, cae_node *h, cae_act act)
{
    switch (act) {
    case CAE_ACT_SIGMOID: /* h (1 - h) */
        return cae_mul(g, h, cae_add_scalar(g, cae_scale(g, h, -1), 1));
    case CAE_ACT_TANH: /* 1 - h^2 */
        return cae_add_scalar(g, cae_scale(g, cae_square(g, h), -1), 1);
    case CAE_ACT_RELU: /* [a > 0]: no gradient flows through a step */
        return cae_step(g, a);
    case CAE_ACT_SOFTPLUS: /* sigmoid(a) */
        return cae_sigmoid(g, a);
    case CAE_ACT_LINEAR: /* 1 */
        return cae_add_scalar(g, cae_scale(g, a, 0), 1);
    }
    return NULL;
}

cae_node *cae_contractive_penalty_composed(cae_graph *g, cae_node *a, cae_node *h, cae_node *W,
                                           cae_act act, cae_wlayout layout)
{
    if (!g || !a || !h || !W) return NULL;
    /* n_j: squared norm of unit j's weights (a vector of H values). */
    cae_node *w2 = cae_square(g, W);
    cae_node *norms = layout == CAE_W_IN_UNITS ? cae_sum_cols(g, w2)  /* D x H -> H */
                                               : cae_sum_rows(g, w2); /* H x D -> H */
    /* phi'(a)^2, B x H, weighted by n_j along each row. */
    cae_node *d2 = cae_square(g, activation_derivative(g, a, h, act));
    cae_node *per_example = cae_sum_rows(g, cae_mul_row(g, d2, norms)); /* B values */
    return cae_mean(g, per_example);
}

/* ---------------------------------------------- by forward mode (cae/jvp.h) */

/* ||J(x) v||^2 over K probes v per example, (1/K) of it averaged over the
 * batch: E_v ||J v||^2 = ||J||_F^2 for E[v v^T] = I, so an unbiased
 * estimate of the mean per-example penalty. The K probes go through the
 * encoder's products as one GEMM with K times the rows. */
cae_node *cae_jacobian_penalty_probes(cae_graph *g, cae_node *x, cae_node *h, int64_t K,
                                      cae_probe_kind kind)
{
    if (!g || !x || !h) return NULL;
    if (K < 1) {
        cae_graph_fail(g, "jacobian penalty: %lld probes, needs >= 1", (long long)K);
        return NULL;
    }
    cae_node *v = cae_probes(g, x, K, kind), *t = NULL;
    if (cae_jvp(g, 1, &h, 1, &x, &v, &t)) return NULL;
    const int64_t B = cae_node_value(x)->shape[0];
    return cae_scale(g, cae_sum(g, cae_square(g, t)), (cae_real)(1.0 / ((double)K * (double)B)));
}

/* Each of K blocks of B rows (t: (K B) x N) repeated C times in place:
 * (K C B) x N, the layout of C copies of a batch of B with K directions. */
static cae_node *blocks_repeat(cae_graph *g, cae_node *t, int64_t K, int64_t C)
{
    const cae_tensor *v = cae_node_value(t);
    if (!v) return NULL;
    const int64_t rows = v->shape[0], N = v->shape[1], per = (rows / K) * N;
    cae_node *r = cae_repeat_rows(g, cae_reshape(g, t, 2, (int64_t[]){K, per}), C);
    return cae_reshape(g, r, 2, (int64_t[]){rows * C, N});
}

cae_node *cae_jacobian_difference_probes(cae_graph *g, cae_node *x, cae_node *h, cae_node *xt,
                                         cae_node *ht, int64_t K, cae_probe_kind kind)
{
    if (!g || !x || !h || !xt || !ht) return NULL;
    const cae_tensor *xv = cae_node_value(x), *xtv = cae_node_value(xt);
    const int64_t B = xv->shape[0];
    if (K < 1 || xv->rank != 2 || xtv->rank != 2 || xtv->shape[1] != xv->shape[1] ||
        xtv->shape[0] % B) {
        char a[64], b[64];
        cae_graph_fail(g, "jacobian difference: x %s and its copies %s (C copies of x's rows), "
                          "%lld probes", cae_shape_str(xv, a, sizeof a),
                       cae_shape_str(xtv, b, sizeof b), (long long)K);
        return NULL;
    }
    const int64_t C = xtv->shape[0] / B;
    cae_node *v = cae_probes(g, x, K, kind), *t = NULL, *tt = NULL;
    cae_node *vt = blocks_repeat(g, v, K, C); /* the same probe for every copy */
    if (cae_jvp(g, 1, &h, 1, &x, &v, &t) || cae_jvp(g, 1, &ht, 1, &xt, &vt, &tt)) return NULL;
    cae_node *d = cae_sub(g, blocks_repeat(g, t, K, C), tt);
    return cae_scale(g, cae_sum(g, cae_square(g, d)),
                     (cae_real)(1.0 / ((double)K * (double)C * (double)B)));
}
