/* Private structures of lib/graph, shared by its files (not installed). */
#ifndef CAE_GRAPH_INTERNAL_H
#define CAE_GRAPH_INTERNAL_H

#include <stdio.h>
#include <stdlib.h>

#include "cae/graph.h"
#include "cae/op.h"
#include "shared.h"

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

/* Node kinds (leaves have op == NULL). */
enum { NODE_OP = 0, NODE_INPUT, NODE_PARAM, NODE_CONST };

/* The graph's view of a node: the public part first, then the bookkeeping
 * ops never see. Every node is allocated as one of these. */
typedef struct node_priv {
    cae_node pub;
    int kind;
    int id;             /* position in creation order */
    int wants_grad;     /* an input marked with cae_input_requires_grad */
    int keep;           /* cae_graph_output: on the tape even if unused */
    int on_tape;
    cae_tensor *param;  /* the store tensor of a parameter node */
    cae_real *own;      /* a leaf's own buffer (inputs, constants) */
    /* Built-in ops only (lib/shared.h). */
    unsigned stores, no_grad;
    unsigned char store_now[CAE_MAX_IN];   /* this pass: store input i's grad */
    unsigned char store_first[CAE_MAX_IN]; /* from the loss: first writer of it */
    int grad_zero;      /* this node's grad is zeroed before a pass from the loss */
    int written;        /* some op writes this node's gradient in a pass from the loss */
} node_priv;

static inline node_priv *node_of(const cae_node *n) { return (node_priv *)n; }

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
    int no_grad;        /* cae_graph_set_no_grad: compile keeps no gradient */
    char err[CAE_ERR_LEN];
};

/* Whether node n's gradient is zeroed before a backward pass from the loss
 * (0 when its first writer stores). For tests of the analysis. */
int cae_graph_grad_zeroed(const cae_node *n);

/* cae_dircheck's adjoint mode (adjcheck.c), for a ready graph and options
 * with their defaults filled in. */
struct cae_dircheck_opts;
struct cae_dircheck_report;
cae_status dircheck_adjoint(cae_graph *g, const struct cae_dircheck_opts *o,
                            struct cae_dircheck_report *rep, cae_error *err);
/* Record direction k's forward and reverse sides in rep and update its
 * maxima (rel's denominator at least floor; a NaN is the worst). */
void dircheck_record(struct cae_dircheck_report *rep, int k, double fw, double rv, double floor);

#endif
