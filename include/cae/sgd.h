/*
 * cae/sgd.h — a whole training step in one pass: forward, backward and the
 * SGD update of the parameters, each parameter updated by the node that
 * writes the last term of its gradient, while the tiles are in cache.
 *
 *   v <- momentum v - lr g;  w <- w + v     (momentum > 0)
 *   w <- w - lr g                           (momentum 0)
 *
 * The update of a parameter runs after every node that reads it in the
 * backward pass has run. A built-in product applies it to each output tile
 * right after its kernel (cae/op.h, cae_node_finish); any other last writer
 * (a user's op among them) has it applied by the graph in one pass over the
 * gradient right after its backward. The same pass keeps copies the next
 * step's forward reads (a transposed weight matrix, the contractive
 * penalty's column norms), so they cost no pass of their own.
 *
 * Afterwards the store's gradients of the updated tensors are undefined: a
 * product that finishes a tensor's gradient tile by tile keeps the tiles in
 * scratch and never writes them out (cae_graph_backward gives gradients).
 * The result does not depend on `continues`; it only lets the step reuse
 * those copies (set it when, since the previous step on this graph,
 * nothing but these steps wrote the tensors' values).
 *
 *   cae_sgd s = {.lr = 0.01, .n = 3, .tensors = (cae_tensor *[]){W, b, c}};
 *   for (...) { bind x; cae_graph_step_sgd(g, &s); s.continues = 1; }
 */
#ifndef CAE_SGD_H
#define CAE_SGD_H

#include "cae/graph.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cae_sgd {
    double lr;                    /* > 0 */
    double momentum;              /* 0 <= momentum < 1 */
    int n;                        /* the tensors to update ... */
    cae_tensor *const *tensors;   /* ... (store tensors; NULL in a task: its own) */
    cae_real *const *velocity;    /* per tensor, its size of reals, or NULL (momentum 0) */
    double *grad_check;           /* out (may be NULL): per tensor, 0 when every element of
                                     its gradient is finite, else NaN (also 0 when this
                                     graph gives it no gradient; it is then not updated) */
    int continues;                /* see above */
} cae_sgd;

/* Forward, backward from the loss and the update of s's tensors. When the
 * loss comes out NaN or infinite, nothing is differentiated or updated and
 * 1 is returned; else 0. Like forward and backward, it never allocates. */
int cae_graph_step_sgd(cae_graph *g, const cae_sgd *s);

#ifdef __cplusplus
}
#endif
#endif
