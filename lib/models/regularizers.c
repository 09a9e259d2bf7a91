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
