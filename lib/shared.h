/* lib/shared.h — the one private header shared by the library's folders
 * (graph, ops, models, data). Not installed. Everything else private stays
 * in its own folder (graph/internal.h, ops/ewise.h, ...).
 *
 * It holds the always-on assertion and the store-instead-of-add mechanism
 * of the built-in ops. That mechanism is a speed trick behind the public
 * op contract (a backward adds, cae/op.h): the graph decides, per gradient
 * buffer, which node writes it first in a backward pass from the loss; when
 * that node's op declared it can store that input's gradient, the buffer is
 * not zeroed and the node writes all of it with = (a 784 x 1000 weight
 * gradient is then written once instead of zeroed, read and written again).
 * A user's op never sees any of this: its nodes always add, into buffers
 * the graph zeroed. */
#ifndef CAE_LIB_SHARED_H
#define CAE_LIB_SHARED_H

#include <stddef.h>

#include "cae/gemm.h"
#include "cae/graph.h"
#include "cae/op.h"

/* Always-on assertion for library invariants: prints file:line and the
 * condition to stderr, then aborts. Never compiled out. */
#define CAE_ASSERT(cond, ...)                                                \
    do {                                                                     \
        if (!(cond)) cae_assert_fail(__FILE__, __LINE__, #cond, __VA_ARGS__); \
    } while (0)
_Noreturn void cae_assert_fail(const char *file, int line, const char *cond,
                               const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* n rounded up to a multiple of `to`. */
size_t cae_round_up(size_t n, size_t to);

/* A built-in op's node: cae_node_new_attr, plus what its backward may do
 * beyond adding. stores, bit i: the backward honours cae_node_stores(n, i)
 * for input i. no_grad, bit i: the backward never writes input i's gradient
 * (the fused penalty's h, folded into a's), so the graph looks past this
 * node for that buffer's first writer. */
cae_node *cae_node_new_builtin(cae_graph *g, const cae_op *op, cae_node *const *in,
                               const cae_attr *attr, const char *name, unsigned stores,
                               unsigned no_grad);
/* In backward: 1 when this node is the first writer of input i's gradient
 * buffer in this pass and must store (=) all of it, 0 when it adds. */
int cae_node_stores(const cae_node *n, int i);
/* In plan: 1 when cae_node_stores(n, i) may be 1 in some pass (a plan can
 * then prepare the storing variant, e.g. a GEMM with beta = 0). */
int cae_node_may_store(const cae_node *n, int i);

/* ---- More of the same kind: per-parameter gradient work the graph moves
 * to the node that finishes the gradient (graph/finish.c). Only for
 * parameter inputs; the graph decides at compile, per buffer, and an op
 * that is told no does the plain thing.
 *
 * merges, bit i: input i's gradient is sum_r X[r]^T Y[r] over the node's
 * out.shape[0] rows, X rows x (input rows), Y rows x (input cols), so that
 * several such nodes writing one parameter make one product over all their
 * rows (a tied layer's two weight gradients, K = 2B). cae_node_merge tells
 * a node its group; every member but the last to run hands its X, Y over
 * with cae_node_merge_put and does nothing else for that input; the last
 * (exec) takes them with cae_node_merge_take and runs the product.
 * defers, bit i: the node's gradient for input i is scale col[j] P[..][j]
 * (P the parameter's values: a column-scaled copy, like the penalty's
 * direct term); when cae_node_defers(n, i), it hands (col, scale) over with
 * cae_node_defer instead, and the finish adds it while P is in cache. */
void cae_node_builtin_bits(cae_node *n, unsigned merges, unsigned defers);
/* The number of members of input i's merge group (0: none); *exec = 1 for
 * the member that runs the product, *k_total its K. */
int cae_node_merge(const cae_node *n, int i, int *exec, int64_t *k_total);
void cae_node_merge_put(cae_node *n, int i, const cae_real *x, const cae_real *y);
/* The other members' operands handed over in this pass, in group order
 * (x[q], y[q], k[q], node[q]); returns how many (count - 1 when all ran). */
int cae_node_merge_take(const cae_node *n, int i, const cae_real **x, const cae_real **y,
                        int64_t *k, cae_node **node);
int cae_node_defers(const cae_node *n, int i);
void cae_node_defer(cae_node *n, int i, const cae_real *col, cae_real scale);

/* Where 2 threads split the rows of input i of n in a training step, when
 * it is a weight matrix (a 2-D parameter of at least 65 536 values, with 2
 * tiles of rows or more: cae_gemm_owner_split), else 0. Every product over
 * it is planned to read each thread's rows only (lib/ops/matmul.c). */
int64_t cae_node_owner_rows(const cae_node *n, int i);
/* Plan C (m x n) = op(A) W^T over the step's copy W^T (k x n, n = W's
 * rows), its tiles split at column `own` (cae_node_owner_rows; 0: not
 * split), in column tiles of 32 when the default tiles do not end there.
 * 0, or -1 when a kernel cannot be dispatched. */
int cae_plan_over_transpose(cae_gemm *p, int64_t m, int64_t n, int64_t k, int trans_a,
                            int64_t own);

/* Copies the graph keeps of a parameter input's values for training steps
 * (cae_graph_step_sgd), refreshed by the finish of its update: in plan,
 * ask for them (0 when granted); in forward, they are non-NULL during a
 * training step only. The transpose is cols x rows; the partial column
 * norms are one row of sums of squares per CAE_NORM_ROWS rows of values. */
#define CAE_NORM_ROWS CAE_GEMM_EPILOGUE_ROWS
int cae_node_want_transpose(cae_node *n, int i);
int cae_node_want_norms(cae_node *n, int i);
const cae_real *cae_node_param_transpose(const cae_node *n, int i);
const cae_real *cae_node_param_norms(const cae_node *n, int i);
/* Partial column norms of X (rows x cols): part[q][j] = sum of X[r][j]^2
 * over the rows of block q in order, blocks of CAE_NORM_ROWS rows; the
 * finish computes them the same way (bit for bit). */
void cae_colnorm_partials(const cae_real *x, int64_t rows, int64_t cols, cae_real *part,
                          int threads);

/* out (cols x rows, row stride ldo) = in (rows x cols, row stride ldi)^T,
 * by the calling thread alone (AVX-512 register blocks where it can). */
void cae_transpose_tile(cae_real *out, int64_t ldo, const cae_real *in, int64_t ldi,
                        int64_t rows, int64_t cols);

#ifdef CAE_REAL_DOUBLE
#define CAE_FMA(a, b, c) __builtin_fma((a), (b), (c))
#else
#define CAE_FMA(a, b, c) __builtin_fmaf((a), (b), (c))
#endif

#endif
