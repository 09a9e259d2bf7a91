/* Forward mode: cae_jvp adds the tangent subgraph of chosen outputs with
 * respect to chosen inputs, one op's tangent rule at a time (cae_op.tangent,
 * a builder of ordinary nodes), in creation order, which is a topological
 * order. Only the nodes the outputs depend on are visited, so an op
 * without a tangent rule elsewhere in the graph does not matter; one on the
 * path is refused by name. The helpers below are for the rules. */
#include <string.h>

#include "cae/jvp.h"
#include "cae/ops.h"
#include "graph/internal.h"

int64_t cae_tangent_dirs(const cae_node *n, const cae_node *t)
{
    if (!t || !n || n->out.size < 1) return 0;
    return t->out.size / n->out.size;
}

cae_node *cae_tangent_lift(cae_graph *g, cae_node *x, int64_t K)
{
    return K <= 1 ? x : cae_tile(g, x, K);
}

cae_node *cae_tangent_zero(cae_graph *g, const cae_node *n, int64_t K)
{
    int64_t shape[CAE_MAX_RANK];
    int rank = n->out.rank;
    for (int d = 0; d < rank; d++) shape[d] = n->out.shape[d];
    if (K > 1) {
        if (rank == 0) shape[rank++] = K;
        else shape[0] *= K;
    }
    return cae_const(g, "zero tangent", rank, shape, 0);
}

cae_node *cae_tangent_sum(cae_graph *g, const cae_node *n, cae_node *a, cae_node *b)
{
    if (!a) return b;
    if (!b) return a;
    const int64_t Ka = cae_tangent_dirs(n, a), Kb = cae_tangent_dirs(n, b);
    if (Ka != Kb) {
        if (Ka != 1 && Kb != 1) {
            cae_graph_fail(g, "forward mode: tangents of '%s' with %lld and %lld directions",
                           cae_node_op_name(n), (long long)Ka, (long long)Kb);
            return NULL;
        }
        if (Ka == 1) a = cae_tile(g, a, Kb);
        else b = cae_tile(g, b, Ka);
    }
    return cae_add(g, a, b);
}

/* t may stand for inputs with K directions: K times its values, the same
 * trailing dimensions (a scalar's tangent: K values, or a scalar). */
static int tangent_fits(const cae_node *x, const cae_node *t)
{
    const cae_tensor *a = &x->out, *b = &t->out;
    if (a->size < 1 || b->size < 1 || b->size % a->size) return 0;
    const int64_t K = b->size / a->size;
    if (a->rank == 0) return b->rank == 0 ? K == 1 : b->rank == 1;
    if (a->rank != b->rank || b->shape[0] != K * a->shape[0]) return 0;
    for (int d = 1; d < a->rank; d++)
        if (a->shape[d] != b->shape[d]) return 0;
    return 1;
}

cae_status cae_jvp(cae_graph *g, int n_out, cae_node *const *outputs, int n_in,
                   cae_node *const *inputs, cae_node *const *tangents, cae_node **tangents_out)
{
    if (!g) return CAE_ERR_ARG;
    if (g->err[0]) return CAE_ERR_ARG;
    for (int k = 0; k < n_out; k++) tangents_out[k] = NULL;
    if (n_out < 1 || n_in < 1) {
        cae_graph_fail(g, "forward mode: %d outputs and %d inputs", n_out, n_in);
        return CAE_ERR_ARG;
    }
    for (int k = 0; k < n_out; k++)
        if (!outputs[k] || outputs[k]->graph != g) {
            if (outputs[k]) cae_graph_fail(g, "forward mode: output %d belongs to another graph", k);
            return CAE_ERR_ARG; /* NULL: the earlier error stands */
        }
    for (int i = 0; i < n_in; i++) {
        if (!inputs[i] || !tangents[i]) return CAE_ERR_ARG;
        if (inputs[i]->graph != g || tangents[i]->graph != g) {
            cae_graph_fail(g, "forward mode: input %d or its tangent belongs to another graph", i);
            return CAE_ERR_ARG;
        }
        if (!tangent_fits(inputs[i], tangents[i])) {
            char sx[64], st[64];
            cae_graph_fail(g, "forward mode: the tangent of '%s' is %s, not K stacked copies of "
                           "its shape %s", cae_node_name(inputs[i]),
                           cae_shape_str(&tangents[i]->out, st, sizeof st),
                           cae_shape_str(&inputs[i]->out, sx, sizeof sx));
            return CAE_ERR_SHAPE;
        }
    }
    const int n0 = g->n_nodes;
    unsigned char *need = calloc((size_t)n0, 1);
    cae_node **tan = calloc((size_t)n0, sizeof *tan);
    if (!need || !tan) {
        free(need);
        free(tan);
        cae_graph_fail(g, "forward mode: out of memory");
        return CAE_ERR_NOMEM;
    }
    /* The outputs' ancestors. */
    for (int k = 0; k < n_out; k++) need[node_of(outputs[k])->id] = 1;
    for (int i = n0 - 1; i >= 0; i--) {
        cae_node *n = g->nodes[i];
        if (need[i])
            for (int k = 0; k < n->n_in; k++) need[node_of(n->in[k])->id] = 1;
    }
    int64_t kmax = 1;
    for (int i = 0; i < n_in; i++) {
        tan[node_of(inputs[i])->id] = tangents[i];
        const int64_t K = cae_tangent_dirs(inputs[i], tangents[i]);
        kmax = K > kmax ? K : kmax;
    }
    cae_status rc = CAE_OK;
    for (int i = 0; i < n0 && !rc; i++) {
        cae_node *n = g->nodes[i];
        if (!need[i] || tan[i] || node_of(n)->kind != NODE_OP) continue;
        cae_node *tin[CAE_MAX_IN] = {0};
        int any = 0;
        for (int k = 0; k < n->n_in; k++) any |= (tin[k] = tan[node_of(n->in[k])->id]) != NULL;
        if (!any) continue; /* zero */
        if (!n->op->tangent) {
            cae_graph_fail(g, "forward mode: op '%s'%s%s%s has no tangent rule", n->op->name,
                           n->name[0] ? " (" : "", n->name, n->name[0] ? ")" : "");
            rc = CAE_ERR_UNSUPPORTED;
            break;
        }
        tan[i] = n->op->tangent(g, n, tin);
        if (g->err[0]) rc = CAE_ERR_ARG;
    }
    for (int k = 0; k < n_out && !rc; k++) {
        cae_node *t = tan[node_of(outputs[k])->id];
        tangents_out[k] = t ? t : cae_tangent_zero(g, outputs[k], kmax);
        if (!tangents_out[k]) rc = CAE_ERR_NOMEM;
    }
    free(need);
    free(tan);
    return rc;
}
