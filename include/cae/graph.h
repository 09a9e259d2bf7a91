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
 * blocks (one node per tensor in a graph). Backward zeroes the gradients of
 * the parameters this graph uses and of its activations, seeds
 * d(loss)/d(loss) = 1, and walks the tape in reverse; every op accumulates
 * (+=) into its inputs' gradients.
 *
 * Errors: see "errors" below.
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

#include "cae/abi.h" /* the link-time check of the real type */
#include "cae/rng.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The real type: float, or double with -DCAE_DOUBLE=ON (tight tests). */
#ifdef CAE_REAL_DOUBLE
typedef double cae_real;
#else
typedef float cae_real;
#endif

/* ---------------------------------------------------------------- errors
 *
 * One convention for every fallible function of the library. It returns a
 * cae_status (CAE_OK = 0) or, when it makes something, a pointer (NULL on
 * failure); it never returns NaN or a static string to mean failure, never
 * prints and never exits. The reason, one line naming what is wrong and
 * where, is kept where the caller will look:
 *  - on the object the function works on, as a sticky error (the first one
 *    wins and stays): cae_graph_error(g), cae_params_error(p),
 *    cae_task_error(t). A constructor given a NULL input returns NULL and
 *    leaves the earlier error standing, so a model checks once, at compile;
 *  - otherwise (no such object yet: loading a file, creating a task) in
 *    the caller's cae_error, the last argument (may be NULL): its status and
 *    its message.
 * Library bugs (broken invariants) hit an always-on assert naming file:line. */
typedef enum cae_status {
    CAE_OK = 0,
    CAE_ERR_ARG,       /* a bad argument, option or configuration */
    CAE_ERR_NOMEM,     /* allocation failed, or a size beyond what fits */
    CAE_ERR_IO,        /* open, read, write or rename failed */
    CAE_ERR_EMPTY,     /* a file with no bytes at all */
    CAE_ERR_TRUNCATED, /* shorter than its header says */
    CAE_ERR_MAGIC,     /* not the kind of file expected */
    CAE_ERR_VERSION,   /* a format version this build cannot read */
    CAE_ERR_CRC,       /* the payload does not match its checksum */
    CAE_ERR_FORMAT,    /* a field out of range, a bad name */
    CAE_ERR_TYPE,      /* an element type not usable here */
    CAE_ERR_RANK,      /* a rank not usable here */
    CAE_ERR_DIMS,      /* zero, overflowing or inconsistent dimensions */
    CAE_ERR_SHAPE,     /* shapes that do not fit together */
    CAE_ERR_MISMATCH,  /* two things that must agree do not (labels, a resume) */
    CAE_ERR_GZIP,      /* a corrupt gzip stream, or one that ends early */
    CAE_ERR_IMAGE,     /* an image that cannot be decoded */
    CAE_ERR_COMPILE,   /* a graph not compiled, or whose parameters moved */
    CAE_ERR_TAPE,      /* a node not on the graph's tape */
    CAE_ERR_NOGRAD,    /* a node that keeps no gradient */
    CAE_ERR_KERNEL,    /* no JIT kernel could be had */
    CAE_ERR_NUMERIC,   /* a NaN or an infinity where a number was needed */
    CAE_ERR_UNSUPPORTED, /* an op without the rule asked for */
    CAE_ERR_COMM,      /* a collective of data-parallel training failed or timed out */
    CAE_ERR_COUNT
} cae_status;

#define CAE_ERR_LEN 512

typedef struct cae_error {
    cae_status status;
    char msg[CAE_ERR_LEN];
} cae_error;

/* Short constant name of a status ("truncated", ...; never NULL). */
const char *cae_status_name(cae_status s);
/* Record status s and a formatted message in e (when e is non-NULL);
 * returns s. For library code and for users' own functions alike. */
cae_status cae_error_set(cae_error *e, cae_status s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

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
/* Record a sticky error on g (the first one wins): for builders and
 * constructors of a user's own, as for the library's. */
void cae_graph_fail(cae_graph *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
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
/* The node viewing parameter t of the graph's store: made on the first
 * call, the same node on every later one (one node per tensor). */
cae_node *cae_param(cae_graph *g, cae_tensor *t);
/* A constant filled with `value` (use cae_node_value()->data to set more). */
cae_node *cae_const(cae_graph *g, const char *name, int rank,
                    const int64_t *shape, cae_real value);

/* Keep n in the tape even if the loss does not depend on it (metrics). */
void cae_graph_output(cae_graph *g, cae_node *n);
/* 0 on success; non-zero with cae_graph_error set otherwise. A NULL loss
 * (a failed constructor) fails with the first recorded error. */
int cae_graph_compile(cae_graph *g, cae_node *loss);
/* 1 when g is compiled and can run: its parameters have not moved since
 * (cae_params_add after compile moves them: recompile). */
int cae_graph_compiled(const cae_graph *g);
void cae_graph_forward(cae_graph *g);
/* Requires a scalar loss. Afterwards every kept gradient (parameters'
 * included) holds d(loss)/d(node) for this pass alone, whatever the buffers
 * held before: every op adds into buffers the graph zeroed (a built-in op
 * that writes a buffer first may store into it instead: lib/shared.h), and
 * gradients nothing writes are zeroed. */
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
/* The loss node of a compiled graph (NULL before compile). */
cae_node *cae_graph_loss(const cae_graph *g);
/* The store tensor a parameter node views; NULL for any other node. */
cae_tensor *cae_node_param(const cae_node *n);
/* 1 for an input node (cae_input), else 0. */
int cae_node_is_input(const cae_node *n);
/* 1 when n is on its graph's compiled tape, else 0. */
int cae_node_on_tape(const cae_node *n);
/* 1 when backward from the loss writes something into n's gradient (a
 * parameter used only behind cae_stop_grad does not get any), else 0. */
int cae_node_receives_grad(const cae_node *n);

/* Thread count for every op (0 = OpenMP default). Not global: per graph. */
void cae_graph_set_threads(cae_graph *g, int n);
/* on = 1: compile keeps no gradient at all, parameters' included (a graph
 * that only evaluates: no gradient buffers, backward does nothing; the
 * store's gradients are never touched). Set before compile. */
void cae_graph_set_no_grad(cae_graph *g, int on);
int cae_graph_threads(const cae_graph *g);

#ifdef __cplusplus
}
#endif
#endif
