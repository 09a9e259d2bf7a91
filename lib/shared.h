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

#endif
