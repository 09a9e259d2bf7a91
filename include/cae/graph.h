/*
 * cae/graph.h — tensors, the parameter store, and the compile-once graph.
 *
 * A graph is built by op constructors (cae/ops.h), each adding one node
 * whose inputs already exist, so creation order is a topological order.
 * cae_graph_compile(g, loss) turns the nodes the loss depends on (plus any
 * marked with cae_graph_output) into the tape: it infers and checks every
 * shape, decides which nodes need gradients, allocates one block for
 * activations, one for activation gradients and one for op scratch, and
 * lets each op plan (dispatch its libxsmm kernels). After that,
 * cae_graph_forward and cae_graph_backward only run: they never allocate
 * and never fail.
 *
 * Ownership: the graph owns its nodes and their buffers. Parameters live in
 * a cae_params store that outlives graphs; several graphs may share it, and
 * a parameter node's value and gradient are views into the store's flat
 * blocks. Backward zeroes the gradients of the parameters this graph uses
 * and of its activations, seeds d(loss)/d(loss) = 1, and walks the tape in
 * reverse; every op accumulates (+=) into its inputs' gradients.
 *
 * Errors are sticky: a constructor that fails returns NULL and records the
 * first message (naming the op and the shapes); a constructor given a NULL
 * input returns NULL silently; compile then fails and cae_graph_error()
 * says why. Library invariants are guarded by always-on asserts (abort).
 *
 *   cae_params *p = cae_params_new();
 *   cae_tensor *W = cae_params_add(p, "W", 2, (int64_t[]){1000, 784});
 *   cae_graph *g = cae_graph_new(p, 20);               // batch size 20
 *   cae_node *x = cae_input(g, "x", 2, (int64_t[]){20, 784});
 *   cae_node *h = cae_sigmoid(g, cae_matmul(g, x, cae_param(g, W), 0, 1));
 *   ...                                                 // loss from h
 *   if (cae_graph_compile(g, loss)) fail(cae_graph_error(g));
 *   memcpy(cae_node_value(x)->data, batch, ...);
 *   cae_graph_forward(g); cae_graph_backward(g);       // grads in p
 */
#ifndef CAE_GRAPH_H
#define CAE_GRAPH_H

#include <stddef.h>
#include <stdint.h>

#include "cae/rng.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The real type. The float build is the product; -DCAE_DOUBLE=ON builds the
 * whole library in double (for tight finite-difference tests). */
#ifdef CAE_REAL_DOUBLE
typedef double cae_real;
#else
typedef float cae_real;
#endif

#define CAE_MAX_RANK 4
#define CAE_MAX_IN 4
#define CAE_ALIGN 64

/* A row-major view: data (and grad, when the tensor has one) are
 * CAE_ALIGN-byte aligned and hold `size` elements. Rank 0 is a scalar. */
typedef struct cae_tensor {
    int rank;
    int64_t shape[CAE_MAX_RANK];
    int64_t size;
    cae_real *data;
    cae_real *grad; /* NULL when no gradient is kept */
    const char *name;
} cae_tensor;

/* Number of elements of a shape; -1 on a negative dimension or overflow. */
int64_t cae_shape_size(int rank, const int64_t *shape);
/* Write "3x5x7" (or "scalar") into buf; returns buf. */
char *cae_shape_str(const cae_tensor *t, char *buf, size_t len);
/* 64-byte aligned, zero-filled allocation of n reals (NULL on failure);
 * release with cae_free. */
cae_real *cae_alloc_reals(size_t n);
void cae_free(void *p);
/* Bytes this process can reasonably hold: physical memory, lowered by the
 * soft RLIMIT_AS / RLIMIT_DATA when set. Sizes read from files or options
 * are checked against it before allocating (with overcommit, a larger
 * allocation may succeed and the process die when the pages are touched). */
int64_t cae_memory_budget(void);

/* ---------------------------------------------------------------- params */

typedef struct cae_params cae_params;

cae_params *cae_params_new(void);
void cae_params_free(cae_params *p);
/* Add a named tensor (values zero). Returns a view owned by the store, or
 * NULL (duplicate name, bad shape, out of memory: see cae_params_error).
 * Adding after graphs were compiled moves the blocks: recompile them. */
cae_tensor *cae_params_add(cae_params *p, const char *name, int rank,
                           const int64_t *shape);
cae_tensor *cae_params_get(const cae_params *p, const char *name);
int cae_params_count(const cae_params *p);
cae_tensor *cae_params_at(const cae_params *p, int i);
/* The flat blocks (n reals each): every parameter's values, then grads. */
cae_real *cae_params_values(const cae_params *p);
cae_real *cae_params_grads(const cae_params *p);
size_t cae_params_total(const cae_params *p);
/* Bumped each time the blocks move (compiled graphs check it). */
uint64_t cae_params_generation(const cae_params *p);
const char *cae_params_error(const cae_params *p);
void cae_params_zero_grad(cae_params *p);
/* Fill with U(-a, a) from rng (a > 0). */
void cae_tensor_uniform(cae_tensor *t, cae_real a, cae_rng *rng);

/* ----------------------------------------------------------------- graph */

typedef struct cae_graph cae_graph;
typedef struct cae_node cae_node;

/* A graph over store p (may be NULL for a graph without parameters).
 * batch is informational (models use it to size inputs). */
cae_graph *cae_graph_new(cae_params *p, int64_t batch);
void cae_graph_free(cae_graph *g);
cae_params *cae_graph_params(const cae_graph *g);
int64_t cae_graph_batch(const cae_graph *g);
/* The first error recorded on g, or NULL. */
const char *cae_graph_error(const cae_graph *g);
/* Seed the graph's RNG (noise ops draw from it). Default seed 0. */
void cae_graph_seed(cae_graph *g, uint64_t seed);
cae_rng *cae_graph_rng(cae_graph *g);

/* Leaves. An input's buffer is allocated at compile (write into
 * cae_node_value(n)->data before forward) unless bound with cae_input_bind.
 * cae_input_requires_grad makes backward compute d(loss)/d(input). */
cae_node *cae_input(cae_graph *g, const char *name, int rank,
                    const int64_t *shape);
void cae_input_requires_grad(cae_node *n);
/* Point an input at caller-owned memory (e.g. a minibatch inside a data
 * set) instead of its own buffer; may be called again between forwards.
 * The memory must stay valid and hold the input's size. */
void cae_input_bind(cae_node *n, const cae_real *data);
/* A node viewing parameter t of the graph's store. */
cae_node *cae_param(cae_graph *g, cae_tensor *t);
/* A constant filled with `value` (use cae_node_value()->data to set more). */
cae_node *cae_const(cae_graph *g, const char *name, int rank,
                    const int64_t *shape, cae_real value);

/* Keep n in the tape even if the loss does not depend on it (metrics). */
void cae_graph_output(cae_graph *g, cae_node *n);
/* 0 on success; non-zero with cae_graph_error set otherwise. A NULL loss
 * (a failed constructor) fails with the first recorded error. */
int cae_graph_compile(cae_graph *g, cae_node *loss);
int cae_graph_compiled(const cae_graph *g);
void cae_graph_forward(cae_graph *g);
/* Requires a scalar loss. Afterwards every kept gradient (parameters'
 * included) holds d(loss)/d(node) for this pass alone, whatever the buffers
 * held before: the first op to write a gradient stores it, the others add,
 * and gradients nothing writes are zeroed. */
void cae_graph_backward(cae_graph *g);
/* Backward from any tape node with upstream gradient `seed` (size of the
 * node's value): used for Jacobians, one output unit at a time. */
void cae_graph_backward_from(cae_graph *g, cae_node *n, const cae_real *seed);

/* Value (and gradient, if kept) of a node; valid after compile. */
cae_tensor *cae_node_value(cae_node *n);
const char *cae_node_name(const cae_node *n);
const char *cae_node_op_name(const cae_node *n);
int cae_graph_tape_length(const cae_graph *g);
cae_node *cae_graph_tape_at(const cae_graph *g, int i);

/* Thread count for every op (0 = OpenMP default). Not global: per graph. */
void cae_graph_set_threads(cae_graph *g, int n);
int cae_graph_threads(const cae_graph *g);

#ifdef __cplusplus
}
#endif
#endif
