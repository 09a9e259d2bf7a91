/*
 * cae/op.h — writing an op. Built-in ops and a user's own op are the same
 * kind of thing: a const cae_op descriptor plus a constructor that calls
 * cae_node_new. Nothing else is registered anywhere.
 *
 *   infer(n)     set n->out.rank/shape from n->in[i]->out; on a mismatch call
 *                cae_node_fail(n, "...") and return non-zero.
 *   plan(n)      (may be NULL) runs once at compile, after infer, with the
 *                inputs' shapes known: set n->scratch_bytes, keep plan
 *                results (dispatched kernels, sizes) in cae_node_state(n, ..),
 *                return non-zero (after cae_node_fail) if a kernel cannot be
 *                had.
 *   forward(n)   compute n->out.data from the inputs. n->scratch is ready.
 *   backward(n)  given n->out.grad, ADD (+=) d(loss)/d(input i) into
 *                n->in[i]->out.grad for every input whose gradient is kept
 *                (cae_needs_grad(n->in[i])). That is the whole rule: the
 *                graph zeroes what needs zeroing, and fan-in (one tensor
 *                used by several ops) needs nothing special.
 *                A NULL backward means "no gradient flows through this op"
 *                (step, stop_grad): everything upstream of it gets no
 *                gradient from this path. An op that merely lacks its
 *                backward must not be used in training.
 *   tangent(g, n, t)  (may be NULL: forward mode then refuses the op, naming
 *                it) the op's Jacobian-vector product, as a BUILDER: given
 *                t[i], the tangent of input i (NULL when it is zero; never
 *                all NULL), add nodes computing the tangent of n's output
 *                and return the last one, or NULL for a tangent that is
 *                zero (or on an error, recorded on g). Built from ordinary
 *                differentiable ops, a tangent is differentiated by the
 *                reverse pass like anything else (cae/jvp.h). A tangent
 *                may carry K directions: K times the primal's first
 *                dimension, direction-major (cae_tangent_dirs); combine
 *                terms with cae_tangent_sum and lift primal values to K
 *                directions with cae_tangent_lift.
 *
 * forward/backward must not allocate, fail or print. The tape calls them
 * from the caller's thread; they may open OpenMP regions with
 * cae_node_threads(n) threads.
 *
 * Finishing a parameter's gradient (optional, for speed). In a training
 * step (cae/sgd.h) the graph updates each parameter after the node that
 * writes the last term of its gradient, in one more pass over it. That node
 * may do it in its own pass instead: cae_node_finish(n, i), asked in
 * backward for parameter input i, returns the work as a GEMM epilogue
 * (cae/gemm.h) when this node is that last writer and there is work, else
 * NULL. Having asked, the node must write the gradient and then call
 * e->tile on every element once (cae_gemm_run_epilogue does that per output
 * tile), and hand the sum of the acc values (the run's return) to
 * cae_node_finish_end. Reads of the parameter's values in this backward
 * come first: the epilogue changes them. With e->c_discard set, nothing
 * reads the gradient after e->tile (a product may keep its tiles apart).
 *
 *   static int sq_infer(cae_node *n) { return cae_node_same_shape(n, 0); }
 *   static void sq_fwd(cae_node *n) {
 *       for (int64_t i = 0; i < n->out.size; i++)
 *           n->out.data[i] = n->in[0]->out.data[i] * n->in[0]->out.data[i];
 *   }
 *   static void sq_bwd(cae_node *n) {
 *       cae_tensor *x = &n->in[0]->out;
 *       if (!cae_needs_grad(n->in[0])) return;
 *       for (int64_t i = 0; i < n->out.size; i++)
 *           x->grad[i] += 2 * x->data[i] * n->out.grad[i];
 *   }
 *   static const cae_op my_square = {.name = "my_square", .n_in = 1,
 *       .infer = sq_infer, .forward = sq_fwd, .backward = sq_bwd};
 *   cae_node *y = cae_node_new(g, &my_square, (cae_node *[]){x}, NULL);
 */
#ifndef CAE_OP_H
#define CAE_OP_H

#include "cae/gemm.h"
#include "cae/graph.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cae_op {
    const char *name;
    int n_in;
    int (*infer)(cae_node *n);
    int (*plan)(cae_node *n);
    void (*forward)(cae_node *n);
    void (*backward)(cae_node *n);
    cae_node *(*tangent)(cae_graph *g, cae_node *n, cae_node *const *t);
} cae_op;

/* A node as an op sees it. The graph keeps its own bookkeeping elsewhere;
 * leaves (inputs, parameters, constants) have op == NULL. */
struct cae_node {
    const cae_op *op;
    int n_in;
    cae_node *in[CAE_MAX_IN];
    cae_tensor out;     /* value; out.grad non-NULL iff a gradient is kept */
    /* Attributes an op's constructor may set (read by infer/plan/run). */
    int64_t iattr[4];
    double fattr[4];
    void *pattr;        /* caller-owned data (e.g. labels), not freed */
    /* Filled by plan. */
    size_t scratch_bytes;
    void *scratch;      /* CAE_ALIGN-aligned, scratch_bytes long */
    void *state;        /* from cae_node_state, freed with the graph */
    cae_graph *graph;
    char name[48];
};

/* Add a node running `op` on inputs in[0..op->n_in-1]. Returns NULL if any
 * input is NULL (the earlier error stands) or on out of memory. Shape checks
 * happen in infer, at compile, and also immediately here so a mismatch is
 * reported by the constructor that caused it. */
cae_node *cae_node_new(cae_graph *g, const cae_op *op, cae_node *const *in,
                       const char *name);
/* Attributes an op's infer needs (e.g. transpose flags) are set before
 * infer runs: pass them here (attr may be NULL). */
typedef struct cae_attr {
    int64_t i[4];
    double f[4];
    void *p;
} cae_attr;
cae_node *cae_node_new_attr(cae_graph *g, const cae_op *op, cae_node *const *in,
                            const cae_attr *attr, const char *name);
/* Record "op 'name': <formatted message>" as g's error (first one wins). */
int cae_node_fail(cae_node *n, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* infer helper: out takes input i's shape. Returns 0. */
int cae_node_same_shape(cae_node *n, int i);
/* infer helper: all inputs must have identical shapes; out takes them. */
int cae_node_same_shapes(cae_node *n);
/* Set out to a scalar (rank 0). Returns 0. */
int cae_node_scalar(cae_node *n);
/* True if backward must produce this node's gradient. */
static inline int cae_needs_grad(const cae_node *n) { return n->out.grad != 0; }
/* Zeroed memory for plan results (kernel plans, sizes) owned by the node:
 * call it from plan; it lives until the graph is recompiled or freed.
 * Returns NULL (and records an error) when out of memory. */
void *cae_node_state(cae_node *n, size_t bytes);
/* Threads an op may use: the graph's setting, or omp_get_max_threads()
 * when that is 0. Always >= 1. */
int cae_node_threads(const cae_node *n);

/* Finishing a parameter's gradient in this node's own pass (see above). */
const cae_gemm_epilogue *cae_node_finish(cae_node *n, int i);
void cae_node_finish_end(cae_node *n, int i, double acc);

/* ---- for tangent rules (forward mode, cae/jvp.h) */
/* The number of directions K tangent t carries for primal node n (t holds
 * K times n's values); 0 when t is NULL. */
int64_t cae_tangent_dirs(const cae_node *n, const cae_node *t);
/* A primal value x for K directions: x itself when K <= 1, else K copies
 * of x stacked along its first dimension (cae_tile; a scalar becomes K
 * values). */
cae_node *cae_tangent_lift(cae_graph *g, cae_node *x, int64_t K);
/* a + b for two tangents of primal n, either NULL (zero): the one with one
 * direction is lifted to the other's K. NULL when both are. */
cae_node *cae_tangent_sum(cae_graph *g, const cae_node *n, cae_node *a, cae_node *b);
/* A zero tangent of n as a node (K directions). */
cae_node *cae_tangent_zero(cae_graph *g, const cae_node *n, int64_t K);

#ifdef __cplusplus
}
#endif
#endif
