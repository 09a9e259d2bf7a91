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
    unsigned stores, no_grad, merges, defers;
    unsigned char store_now[CAE_MAX_IN];   /* this pass: store input i's grad */
    unsigned char store_first[CAE_MAX_IN]; /* from the loss: first writer of it */
    int grad_zero;      /* this node's grad is zeroed before a pass from the loss */
    int written;        /* some op writes this node's gradient in a pass from the loss */
    /* Finishing parameters' gradients (graph/finish.c). */
    int fin;            /* a parameter node: its record in g->fins, else -1 */
    int finishes[CAE_MAX_IN]; /* input i's parameter is finished after this node: record, or -1 */
    int group[CAE_MAX_IN];    /* input i's gradient is in merge group g->groups[...], or -1 */
    int defer_ok[CAE_MAX_IN]; /* input i's column-scaled term goes to the finish */
    int asked[CAE_MAX_IN];    /* this pass: the node took on finishing input i */
} node_priv;

/* Deferred terms per parameter, merged products per group. */
enum { MAX_TERMS = 4, MAX_GROUP = 4 };

/* One parameter's gradient: who finishes it, what its finish does. */
typedef struct param_fin {
    cae_node *param;
    cae_node *finisher;     /* the last node in a backward pass that reads or writes it */
    int input;              /* which input of finisher it is */
    int n_terms;            /* nodes that defer a column-scaled term to the finish */
    int store_terms;        /* from the loss: no node writes it, the finish stores the terms */
    int want_norms, want_t; /* derived data some node reads in a training step */
    cae_real *norm_part;    /* ceil(rows / CAE_NORM_ROWS) x cols partial column norms */
    cae_real *wt;           /* cols x rows: the transpose */
    /* this pass */
    const cae_real *col[MAX_TERMS];
    cae_real scale[MAX_TERMS];
    int got;                /* terms handed over */
    int upd;                /* entry of the update, -1 none */
    int done;               /* finished */
    double check;           /* 0, or NaN when the gradient is not finite (the guard) */
    int store_now;          /* this pass: the finish stores */
    cae_gemm_epilogue epi;  /* handed to the finisher (cae_node_finish) */
} param_fin;

/* Nodes whose gradients of one parameter are products X^T Y over their
 * rows: one product over the stacked rows, run by the last of them to run
 * in backward (exec). */
typedef struct merge_group {
    int count;
    cae_node *member[MAX_GROUP]; /* by tape position: member[0] runs last */
    int input[MAX_GROUP];
    int64_t k[MAX_GROUP];        /* rows of each */
    /* this pass: what the members handed over */
    const cae_real *x[MAX_GROUP], *y[MAX_GROUP];
    int got;
} merge_group;

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
    /* Finishing gradients and training steps (graph/finish.c). */
    int n_fins, n_groups;
    param_fin *fins;
    merge_group *groups;
    cae_real *derived;  /* the derived copies of parameters (norms, transposes) */
    int derived_ok;     /* they hold the parameters' values as they are */
    const struct cae_sgd *sgd; /* the update of this pass (a training step), else NULL */
    double *time_fwd, *time_bwd; /* cae/profile.h: per tape node, seconds added, or NULL */
    int from_loss;      /* this backward pass started at the loss */
    char err[CAE_ERR_LEN];
};

/* Whether node n's gradient is zeroed before a backward pass from the loss
 * (0 when its first writer stores). For tests of the analysis. */
int cae_graph_grad_zeroed(const cae_node *n);

/* graph/finish.c: the analysis compile runs once the gradients are known
 * (first writers, merge groups, finishers); the derived block after the
 * plans; the per-pass reset and the finishes backward runs. */
int cae_finish_analyze(cae_graph *g, cae_node *loss);
int cae_finish_alloc(cae_graph *g);
void cae_finish_release(cae_graph *g);
void cae_finish_pass_begin(cae_graph *g, int from_loss);
void cae_finish_after(cae_graph *g, cae_node *n);
void cae_finish_pass_end(cae_graph *g);
/* For tests: the merge group node n's input i belongs to (its members'
 * count), 0 when none; the node that finishes parameter node p. */
int cae_graph_merge_count(const cae_node *n, int i);
const cae_node *cae_graph_finisher(const cae_node *p);
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
