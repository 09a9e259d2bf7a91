/*
 * cae/jvp.h — forward mode: Jacobian-vector products of any graph, as more
 * graph.
 *
 * cae_jvp adds to g the nodes computing the tangents of some outputs with
 * respect to some inputs moved along given tangents: tangent_out = J t, the
 * directional derivative, for every output at once. Each op contributes its
 * own tangent rule (cae_op.tangent, cae/op.h), a builder that emits
 * ordinary differentiable nodes; so a tangent is a value like any other,
 * and the reverse pass differentiates it (reverse over forward): a penalty
 * on J t trains with cae_graph_backward, with no second-order code in any
 * op. Build the tangents before compiling, like any other nodes.
 *
 * Batched directions. A tangent may carry K directions at once: K copies'
 * worth of values stacked along the first dimension, direction-major — for
 * an input x of B x D, a (K B) x D node whose rows k B .. k B + B - 1 are
 * direction k for the B rows. Every output's tangent then carries K
 * directions the same way (a scalar's: K values), and the K directions go
 * through each product as one GEMM with K times the rows. Tangents of
 * inputs with one direction (a parameter's, say) combine with those of K
 * by broadcasting. cae_probes draws such K-direction tangents at random.
 *
 * Inputs may be any nodes (inputs, parameters, intermediate nodes: the
 * tangent then starts there). Ops the outputs depend on must all have a
 * tangent rule; one that has none is refused with an error naming it (the
 * fused contractive penalty has none: forward-mode regularizers use the
 * primitive ops). Errors are recorded on g, as for constructors.
 *
 *   cae_node *h = cae_sigmoid(g, cae_affine(g, x, W, b, 0));
 *   cae_node *e = cae_probes(g, x, 4, CAE_PROBE_GAUSSIAN);    // (4 B) x D
 *   cae_node *Je;
 *   if (cae_jvp(g, 1, &h, 1, &x, &e, &Je)) fail(cae_graph_error(g));
 *   cae_node *pen = cae_scale(g, cae_sum(g, cae_square(g, Je)), 1.0 / (4 * B));
 */
#ifndef CAE_JVP_H
#define CAE_JVP_H

#include "cae/graph.h"
#include "cae/op.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Tangents of outputs[0..n_out) when inputs[i] moves along tangents[i]
 * (each K stacked copies of its input's shape; K may differ only between 1
 * and one other value), into tangents_out[0..n_out): nodes of g (a zero
 * constant for an output that does not depend on the inputs). CAE_OK, or a
 * status with g's error set (a shape that does not fit, an op without a
 * tangent rule: UNSUPPORTED). */
cae_status cae_jvp(cae_graph *g, int n_out, cae_node *const *outputs, int n_in,
                   cae_node *const *inputs, cae_node *const *tangents, cae_node **tangents_out);

#ifdef __cplusplus
}
#endif
#endif
