/* Private structures of lib/graph, shared by its files (not installed). */
#ifndef CAE_GRAPH_INTERNAL_H
#define CAE_GRAPH_INTERNAL_H

#include <stdio.h>
#include <stdlib.h>

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


struct cae_params {
    int n, cap;
    cae_tensor **t;    /* views; data/grad point into the blocks */
    char **names;
    size_t *offset;    /* element offset of each tensor in the blocks */
    size_t total;      /* elements in each block (padded per tensor) */
    cae_real *values;
    cae_real *grads;
    uint64_t generation;
    char err[CAE_ERR_LEN];
};

struct cae_graph {
    cae_params *params;
    int64_t batch;
    int n_nodes, cap_nodes;
    cae_node **nodes;  /* creation order = a topological order */
    /* The tape, filled by compile. */
    int n_tape;
    cae_node **tape;
    cae_node *loss;
    int compiled;
    uint64_t params_generation;
    /* Blocks allocated at compile. */
    cae_real *act;      /* activations (inputs, consts, op outputs) */
    cae_real *act_grad; /* gradients of non-parameter nodes */
    size_t act_grad_len;
    unsigned char *scratch;
    cae_rng rng;
    int threads;
    char err[CAE_ERR_LEN];
};

/* Record the first error on g (later ones are dropped). */
void cae_graph_fail(cae_graph *g, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
size_t cae_round_up(size_t n, size_t to);

#endif
