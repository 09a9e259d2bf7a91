/*
 * cae/profile.h — where a graph's time goes, node by node, inside the passes
 * as they really run (a training step's updates included: each is charged
 * to the node after which it runs). What runs between the nodes is not
 * charged to any: zeroing gradients, and a step's refresh of its copies
 * when it does not continue the previous step (cae/sgd.h `continues`).
 *
 *   int n = cae_graph_tape_length(g);
 *   double *f = calloc(n, sizeof *f), *b = calloc(n, sizeof *b);
 *   cae_graph_time_nodes(g, f, b);
 *   for (...) cae_graph_step_sgd(g, &s);     // or forward / backward
 *   cae_graph_time_nodes(g, NULL, NULL);
 *   // f[i], b[i]: seconds spent in tape node i, summed over the passes
 *
 * bench/profile prints them beside each node run on its own.
 */
#ifndef CAE_PROFILE_H
#define CAE_PROFILE_H

#include "cae/graph.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Call after cae_graph_compile; a recompile (the graph grew, or its
 * parameters moved) stops the timing, since the tape changed.
 * From now on, every forward pass adds each tape node's seconds to fwd[i]
 * and every backward pass (cae_graph_backward, _backward_from, the backward
 * of cae_graph_step_sgd) to bwd[i], i the node's tape position: arrays of
 * cae_graph_tape_length(g) doubles the caller owns and zeroes. A node's
 * backward time includes the finish the graph runs after it (cae/sgd.h:
 * the update of the parameters whose gradient it completes). Leaves get
 * nothing. fwd or bwd NULL: that pass is not timed; both NULL: timing
 * stops. The clock is omp_get_wtime, read twice a node: tens of ns a read;
 * its resolution is the OpenMP runtime's (1 ns with GCC's libgomp, 1 us
 * with LLVM's libomp, which reads gettimeofday). */
void cae_graph_time_nodes(cae_graph *g, double *fwd, double *bwd);

#ifdef __cplusplus
}
#endif
#endif
