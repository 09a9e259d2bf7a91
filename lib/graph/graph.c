/* Graph build -> compile -> forward/backward.
 *
 * Nodes are appended in creation order; since a node's inputs must exist
 * before it, that order is topological and compile only has to select the
 * nodes the loss (and any extra outputs) depend on. Compile then decides
 * which nodes need gradients, allocates one block for op outputs, one for
 * the gradients of non-parameter nodes and one for op scratch, and runs
 * every op's plan (where libxsmm kernels are dispatched). */
#include <stdarg.h>
#include <string.h>

#include <omp.h>

#include "cae/profile.h"
#include "graph/internal.h"

void cae_graph_fail(cae_graph *g, const char *fmt, ...)
{
    if (!g || g->err[0]) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g->err, sizeof g->err, fmt, ap);
    va_end(ap);
}

int cae_node_fail(cae_node *n, const char *fmt, ...)
{
    cae_graph *g = n->graph;
    if (!g->err[0]) {
        char msg[CAE_ERR_LEN];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        snprintf(g->err, sizeof g->err, "op '%s'%s%s%s: %.400s",
                 n->op ? n->op->name : "leaf", n->name[0] ? " (" : "", n->name,
                 n->name[0] ? ")" : "", msg);
    }
    return -1;
}

cae_graph *cae_graph_new(cae_params *p, int64_t batch)
{
    cae_graph *g = calloc(1, sizeof *g);
    if (!g) return NULL;
    g->params = p;
    g->batch = batch;
    cae_rng_seed(&g->rng, 0, 0);
    return g;
}

static void graph_release_blocks(cae_graph *g)
{
    cae_free(g->act);
    cae_free(g->act_grad);
    cae_free(g->scratch);
    free(g->tape);
    for (int i = 0; i < g->n_nodes; i++) {
        cae_node *n = g->nodes[i];
        free(n->state);
        n->state = NULL;
        n->scratch = NULL;
        /* No pointer into the freed blocks survives. */
        if (node_of(n)->kind == NODE_OP) n->out.data = NULL;
        if (node_of(n)->kind != NODE_PARAM) n->out.grad = NULL;
    }
    g->act = g->act_grad = NULL;
    g->scratch = NULL;
    cae_finish_release(g);
    g->tape = NULL;
    g->n_tape = 0;
    g->compiled = 0;
    g->time_fwd = g->time_bwd = NULL; /* sized for the old tape (cae/profile.h) */
}

void cae_graph_free(cae_graph *g)
{
    if (!g) return;
    graph_release_blocks(g);
    for (int i = 0; i < g->n_nodes; i++) {
        cae_free(node_of(g->nodes[i])->own);
        free(node_of(g->nodes[i]));
    }
    free(g->nodes);
    free(g);
}

cae_params *cae_graph_params(const cae_graph *g) { return g->params; }
int64_t cae_graph_batch(const cae_graph *g) { return g->batch; }
const char *cae_graph_error(const cae_graph *g) { return (g && g->err[0]) ? g->err : NULL; }
void cae_graph_seed(cae_graph *g, uint64_t seed) { cae_rng_seed(&g->rng, seed, 0x6e6f697365ull); }
cae_rng *cae_graph_rng(cae_graph *g) { return &g->rng; }
void cae_graph_set_threads(cae_graph *g, int n) { g->threads = n > 0 ? n : 0; }
void cae_graph_set_no_grad(cae_graph *g, int on)
{
    if (!g || g->no_grad == !!on) return;
    g->no_grad = !!on;
    if (g->compiled) graph_release_blocks(g); /* recompile */
}
int cae_graph_threads(const cae_graph *g) { return g->threads; }
int cae_node_threads(const cae_node *n)
{
    return n->graph->threads > 0 ? n->graph->threads : omp_get_max_threads();
}
int cae_graph_compiled(const cae_graph *g)
{
    return g && g->compiled && g->params_generation == cae_params_generation(g->params);
}
cae_tensor *cae_node_value(cae_node *n) { return n ? &n->out : NULL; }
const char *cae_node_name(const cae_node *n) { return n->name; }
const char *cae_node_op_name(const cae_node *n)
{
    static const char *leaf[] = {"op", "input", "param", "const"};
    return n->op ? n->op->name : leaf[node_of(n)->kind];
}
int cae_graph_tape_length(const cae_graph *g) { return g->n_tape; }
cae_node *cae_graph_loss(const cae_graph *g) { return g && g->compiled ? g->loss : NULL; }
cae_tensor *cae_node_param(const cae_node *n)
{
    return n && node_of(n)->kind == NODE_PARAM ? node_of(n)->param : NULL;
}
int cae_node_is_input(const cae_node *n) { return n && node_of(n)->kind == NODE_INPUT; }
int cae_node_receives_grad(const cae_node *n)
{
    return cae_node_on_tape(n) && n->out.grad && node_of(n)->written;
}
int cae_node_on_tape(const cae_node *n)
{
    return n && n->graph->compiled && node_of(n)->on_tape;
}
int cae_node_stores(const cae_node *n, int i) { return node_of(n)->store_now[i]; }
int cae_node_may_store(const cae_node *n, int i) { return node_of(n)->store_first[i]; }
int cae_graph_grad_zeroed(const cae_node *n) { return node_of(n)->grad_zero; }
cae_node *cae_graph_tape_at(const cae_graph *g, int i)
{
    return (i >= 0 && i < g->n_tape) ? g->tape[i] : NULL;
}

static cae_node *node_alloc(cae_graph *g, int kind, const char *name)
{
    if (g->n_nodes == g->cap_nodes) {
        int cap = g->cap_nodes ? 2 * g->cap_nodes : 32;
        cae_node **nn = realloc(g->nodes, (size_t)cap * sizeof *nn);
        if (!nn) {
            cae_graph_fail(g, "out of memory adding a node");
            return NULL;
        }
        g->nodes = nn;
        g->cap_nodes = cap;
    }
    node_priv *p = calloc(1, sizeof *p);
    if (!p) {
        cae_graph_fail(g, "out of memory adding a node");
        return NULL;
    }
    cae_node *n = &p->pub;
    n->graph = g;
    p->kind = kind;
    p->id = g->n_nodes;
    if (name) snprintf(n->name, sizeof n->name, "%s", name);
    return n;
}

static void node_commit(cae_graph *g, cae_node *n)
{
    g->nodes[g->n_nodes++] = n;
    if (g->compiled) graph_release_blocks(g); /* a new node: recompile */
}

cae_node *cae_node_new(cae_graph *g, const cae_op *op, cae_node *const *in,
                       const char *name)
{
    return cae_node_new_attr(g, op, in, NULL, name);
}

cae_node *cae_node_new_attr(cae_graph *g, const cae_op *op, cae_node *const *in,
                            const cae_attr *attr, const char *name)
{
    return cae_node_new_builtin(g, op, in, attr, name, 0, 0);
}

cae_node *cae_node_new_builtin(cae_graph *g, const cae_op *op, cae_node *const *in,
                               const cae_attr *attr, const char *name, unsigned stores,
                               unsigned no_grad)
{
    if (!g) return NULL;
    CAE_ASSERT(op && op->infer && op->forward, "op descriptor incomplete");
    CAE_ASSERT(op->n_in >= 0 && op->n_in <= CAE_MAX_IN, "op '%s' has %d inputs", op->name,
               op->n_in);
    for (int i = 0; i < op->n_in; i++) {
        if (!in[i]) return NULL; /* the earlier error stands */
        if (in[i]->graph != g) {
            cae_graph_fail(g, "op '%s': input %d belongs to another graph", op->name, i);
            return NULL;
        }
    }
    cae_node *n = node_alloc(g, NODE_OP, name);
    if (!n) return NULL;
    n->op = op;
    node_of(n)->stores = stores;
    node_of(n)->no_grad = no_grad;
    n->n_in = op->n_in;
    for (int i = 0; i < op->n_in; i++) n->in[i] = in[i];
    if (attr) {
        for (int i = 0; i < 4; i++) {
            n->iattr[i] = attr->i[i];
            n->fattr[i] = attr->f[i];
        }
        n->pattr = attr->p;
    }
    n->out.name = n->name;
    if (op->infer(n)) {
        if (!g->err[0]) cae_node_fail(n, "shape inference failed");
        free(node_of(n));
        return NULL;
    }
    n->out.size = cae_shape_size(n->out.rank, n->out.shape);
    if (n->out.size < 0) {
        cae_node_fail(n, "bad output shape");
        free(node_of(n));
        return NULL;
    }
    node_commit(g, n);
    return n;
}

static cae_node *leaf_new(cae_graph *g, int kind, const char *name, int rank,
                          const int64_t *shape, int own_buffer)
{
    if (!g) return NULL;
    int64_t size = cae_shape_size(rank, shape);
    if (size < 0 || (rank > 0 && !shape)) {
        cae_graph_fail(g, "%s '%s': bad shape (rank %d)", kind == NODE_CONST ? "const" : "input",
                       name ? name : "", rank);
        return NULL;
    }
    cae_node *n = node_alloc(g, kind, name);
    if (!n) return NULL;
    n->out.rank = rank;
    for (int i = 0; i < rank; i++) n->out.shape[i] = shape[i];
    n->out.size = size;
    n->out.name = n->name;
    if (own_buffer) {
        node_of(n)->own = cae_alloc_reals((size_t)size);
        if (!node_of(n)->own) {
            cae_graph_fail(g, "'%s': out of memory (%lld values)", n->name, (long long)size);
            free(node_of(n));
            return NULL;
        }
        n->out.data = node_of(n)->own;
    }
    node_commit(g, n);
    return n;
}

cae_node *cae_input(cae_graph *g, const char *name, int rank, const int64_t *shape)
{
    return leaf_new(g, NODE_INPUT, name, rank, shape, 1);
}

void cae_input_requires_grad(cae_node *n)
{
    if (!n) return;
    CAE_ASSERT(node_of(n)->kind == NODE_INPUT, "'%s' is not an input", n->name);
    node_of(n)->wants_grad = 1;
    if (n->graph->compiled) graph_release_blocks(n->graph);
}

void cae_input_bind(cae_node *n, const cae_real *data)
{
    CAE_ASSERT(n && node_of(n)->kind == NODE_INPUT, "bind needs an input node");
    n->out.data = data ? (cae_real *)data : node_of(n)->own;
}

cae_node *cae_param(cae_graph *g, cae_tensor *t)
{
    if (!g) return NULL;
    if (!t) {
        cae_graph_fail(g, "param: NULL tensor");
        return NULL;
    }
    int found = 0;
    for (int i = 0; g->params && i < g->params->n; i++) found |= g->params->t[i] == t;
    if (!found) {
        cae_graph_fail(g, "param '%s': not in this graph's parameter store",
                       t->name ? t->name : "");
        return NULL;
    }
    /* One node per tensor: asking again returns the node already made. */
    for (int i = 0; i < g->n_nodes; i++)
        if (node_of(g->nodes[i])->param == t) return g->nodes[i];
    cae_node *n = leaf_new(g, NODE_PARAM, t->name, t->rank, t->shape, 0);
    if (n) node_of(n)->param = t;
    return n;
}

cae_node *cae_const(cae_graph *g, const char *name, int rank, const int64_t *shape,
                    cae_real value)
{
    cae_node *n = leaf_new(g, NODE_CONST, name, rank, shape, 1);
    if (n)
        for (int64_t i = 0; i < n->out.size; i++) n->out.data[i] = value;
    return n;
}

void cae_graph_output(cae_graph *g, cae_node *n)
{
    if (!g || !n) return;
    node_of(n)->keep = 1;
    if (g->compiled) graph_release_blocks(g);
}

void *cae_node_state(cae_node *n, size_t bytes)
{
    free(n->state);
    n->state = calloc(1, bytes ? bytes : 1);
    if (!n->state) cae_node_fail(n, "out of memory (%zu bytes of plan state)", bytes);
    return n->state;
}

int cae_node_same_shape(cae_node *n, int i)
{
    n->out.rank = n->in[i]->out.rank;
    memcpy(n->out.shape, n->in[i]->out.shape, sizeof n->out.shape);
    return 0;
}

int cae_node_same_shapes(cae_node *n)
{
    const cae_tensor *a = &n->in[0]->out;
    for (int i = 1; i < n->n_in; i++) {
        const cae_tensor *b = &n->in[i]->out;
        int same = a->rank == b->rank;
        for (int d = 0; same && d < a->rank; d++) same = a->shape[d] == b->shape[d];
        if (!same) {
            char sa[64], sb[64];
            return cae_node_fail(n, "shapes %s and %s differ", cae_shape_str(a, sa, sizeof sa),
                                 cae_shape_str(b, sb, sizeof sb));
        }
    }
    return cae_node_same_shape(n, 0);
}

int cae_node_scalar(cae_node *n)
{
    n->out.rank = 0;
    return 0;
}

static int needs_grad_rule(const cae_node *n)
{
    if (n->graph->no_grad) return 0;
    switch (node_of(n)->kind) {
    case NODE_PARAM: return 1;
    case NODE_INPUT: return node_of(n)->wants_grad;
    case NODE_CONST: return 0;
    default:
        if (!n->op->backward) return 0;
        for (int i = 0; i < n->n_in; i++)
            if (n->in[i]->out.grad) return 1;
        return 0;
    }
}

int cae_graph_compile(cae_graph *g, cae_node *loss)
{
    if (!g) return -1;
    if (g->err[0]) return -1;
    if (!loss) {
        cae_graph_fail(g, "compile: the loss node is NULL (a constructor failed)");
        return -1;
    }
    if (loss->graph != g) {
        cae_graph_fail(g, "compile: the loss node belongs to another graph");
        return -1;
    }
    graph_release_blocks(g);
    /* Select: reverse sweep over the creation order. */
    for (int i = 0; i < g->n_nodes; i++) node_of(g->nodes[i])->on_tape = node_of(g->nodes[i])->keep;
    node_of(loss)->on_tape = 1;
    for (int i = g->n_nodes - 1; i >= 0; i--) {
        cae_node *n = g->nodes[i];
        if (!node_of(n)->on_tape) continue;
        for (int k = 0; k < n->n_in; k++) node_of(n->in[k])->on_tape = 1;
    }
    g->tape = malloc((size_t)g->n_nodes * sizeof *g->tape);
    if (!g->tape) {
        cae_graph_fail(g, "compile: out of memory");
        return -1;
    }
    size_t act_len = 0, grad_len = 0;
    const size_t line = CAE_ALIGN / sizeof(cae_real);
    for (int i = 0; i < g->n_nodes; i++) {
        cae_node *n = g->nodes[i];
        n->out.grad = NULL;
        if (!node_of(n)->on_tape) continue;
        g->tape[g->n_tape++] = n;
        if (node_of(n)->kind == NODE_PARAM) {
            cae_tensor *t = node_of(n)->param;
            n->out.data = t->data;
            n->out.grad = g->no_grad ? NULL : t->grad;
            continue;
        }
        if (node_of(n)->kind == NODE_OP) act_len += cae_round_up((size_t)n->out.size, line);
        /* Provisional non-NULL marker; real pointers below. */
        if (needs_grad_rule(n)) {
            n->out.grad = (cae_real *)&g->act_grad;
            grad_len += cae_round_up((size_t)n->out.size, line);
        }
    }
    /* Refuse before allocating what the machine cannot hold (the blocks are
     * zero-filled, so every page would be touched). */
    const double need = ((double)act_len + (double)grad_len) * (double)sizeof(cae_real);
    if (need > (double)cae_memory_budget()) {
        cae_graph_fail(g, "compile: the graph needs %.3g GB of activations and gradients, more "
                          "than this machine can hold (%.3g GB)",
                       need / 1e9, (double)cae_memory_budget() / 1e9);
        graph_release_blocks(g);
        return -1;
    }
    g->act = cae_alloc_reals(act_len);
    g->act_grad = cae_alloc_reals(grad_len);
    if (!g->act || !g->act_grad) {
        cae_graph_fail(g, "compile: out of memory (%zu activations, %zu gradients)", act_len,
                       grad_len);
        graph_release_blocks(g);
        return -1;
    }
    g->act_grad_len = grad_len;
    size_t ao = 0, go = 0;
    for (int i = 0; i < g->n_tape; i++) {
        cae_node *n = g->tape[i];
        if (node_of(n)->kind == NODE_PARAM) continue;
        if (node_of(n)->kind == NODE_OP) {
            n->out.data = g->act + ao;
            ao += cae_round_up((size_t)n->out.size, line);
        }
        if (n->out.grad) {
            n->out.grad = g->act_grad + go;
            go += cae_round_up((size_t)n->out.size, line);
        }
    }
    if (cae_finish_analyze(g, loss)) {
        cae_graph_fail(g, "compile: out of memory");
        graph_release_blocks(g);
        return -1;
    }
    /* Plan: kernels and scratch sizes, now that gradient needs are known. */
    size_t scratch_len = 0;
    for (int i = 0; i < g->n_tape; i++) {
        cae_node *n = g->tape[i];
        if (node_of(n)->kind != NODE_OP) continue;
        n->scratch_bytes = 0;
        n->scratch = NULL;
        if (n->op->plan && n->op->plan(n)) {
            if (!g->err[0]) cae_node_fail(n, "plan failed");
            graph_release_blocks(g);
            return -1;
        }
        scratch_len += cae_round_up(n->scratch_bytes, CAE_ALIGN);
    }
    if ((double)scratch_len > (double)cae_memory_budget() - need) {
        cae_graph_fail(g, "compile: %.3g GB of op scratch on top of %.3g GB of activations is "
                          "more than this machine can hold", (double)scratch_len / 1e9, need / 1e9);
        graph_release_blocks(g);
        return -1;
    }
    if (scratch_len) {
        void *s = NULL;
        if (posix_memalign(&s, CAE_ALIGN, scratch_len)) {
            cae_graph_fail(g, "compile: out of memory (%zu scratch bytes)", scratch_len);
            graph_release_blocks(g);
            return -1;
        }
        memset(s, 0, scratch_len);
        g->scratch = s;
        size_t so = 0;
        for (int i = 0; i < g->n_tape; i++) {
            cae_node *n = g->tape[i];
            if (node_of(n)->kind != NODE_OP || !n->scratch_bytes) continue;
            n->scratch = g->scratch + so;
            so += cae_round_up(n->scratch_bytes, CAE_ALIGN);
        }
    }
    if (cae_finish_alloc(g)) {
        cae_graph_fail(g, "compile: out of memory (copies of parameters)");
        graph_release_blocks(g);
        return -1;
    }
    g->loss = loss;
    g->params_generation = cae_params_generation(g->params);
    g->compiled = 1;
    return 0;
}

static void check_runnable(const cae_graph *g)
{
    CAE_ASSERT(g && g->compiled, "graph used before a successful cae_graph_compile");
    CAE_ASSERT(g->params_generation == cae_params_generation(g->params),
               "parameters were added after compile: recompile the graph");
}

void cae_graph_time_nodes(cae_graph *g, double *fwd, double *bwd)
{
    if (!g) return;
    g->time_fwd = fwd;
    g->time_bwd = bwd;
}

void cae_graph_forward(cae_graph *g)
{
    check_runnable(g);
    double *t = g->time_fwd;
    for (int i = 0; i < g->n_tape; i++) {
        cae_node *n = g->tape[i];
        if (node_of(n)->kind != NODE_OP) continue;
        const double t0 = t ? omp_get_wtime() : 0;
        n->op->forward(n);
        if (t) t[i] += omp_get_wtime() - t0;
    }
}

/* Zero n reals, in page-sized chunks over the graph's threads when large
 * (one thread's memset of a 784 x 1000 gradient took ~2% of a B = 100 step). */
static void zero_reals(cae_real *p, size_t n, int threads)
{
    enum { CHUNK = 4096 };
    if (n < 16 * CHUNK || threads == 1) {
        memset(p, 0, n * sizeof *p);
        return;
    }
    const int64_t chunks = (int64_t)((n + CHUNK - 1) / CHUNK);
#pragma omp parallel for schedule(static) num_threads(threads > 0 ? threads : omp_get_max_threads())
    for (int64_t c = 0; c < chunks; c++) {
        const size_t lo = (size_t)c * CHUNK, len = lo + CHUNK < n ? CHUNK : n - lo;
        memset(p + lo, 0, len * sizeof *p);
    }
}

/* Before a pass: from the loss (from_loss), the first writers store and
 * only the other gradients are zeroed; from any other node, every gradient
 * is zeroed and accumulated into. */
static void zero_grads(cae_graph *g, int from_loss)
{
    for (int i = 0; i < g->n_tape; i++) {
        cae_node *n = g->tape[i];
        node_priv *p = node_of(n);
        for (int k = 0; k < n->n_in; k++) p->store_now[k] = from_loss && p->store_first[k];
        if (n->out.grad && (!from_loss || p->grad_zero))
            zero_reals(n->out.grad, (size_t)n->out.size, g->threads);
    }
}

static void run_backward(cae_graph *g, cae_node *from)
{
    int start = -1;
    for (int i = g->n_tape - 1; i >= 0; i--)
        if (g->tape[i] == from) {
            start = i;
            break;
        }
    CAE_ASSERT(start >= 0, "backward: node '%s' is not on the tape", from->name);
    for (int i = start; i >= 0; i--) {
        cae_node *n = g->tape[i];
        if (node_of(n)->kind == NODE_OP && n->out.grad && n->op->backward) {
            const double t0 = g->time_bwd ? omp_get_wtime() : 0;
            n->op->backward(n);
            if (g->n_fins) cae_finish_after(g, n);
            if (g->time_bwd) g->time_bwd[i] += omp_get_wtime() - t0;
        }
    }
}

void cae_graph_backward(cae_graph *g)
{
    check_runnable(g);
    CAE_ASSERT(g->loss->out.size == 1, "backward needs a scalar loss ('%s' has %lld values)",
               g->loss->name, (long long)g->loss->out.size);
    zero_grads(g, 1);
    cae_finish_pass_begin(g, 1);
    if (g->loss->out.grad) { /* else nothing to differentiate */
        g->loss->out.grad[0] = 1;
        run_backward(g, g->loss);
    }
    cae_finish_pass_end(g);
}

void cae_graph_backward_from(cae_graph *g, cae_node *n, const cae_real *seed)
{
    check_runnable(g);
    CAE_ASSERT(n && n->graph == g && node_of(n)->on_tape, "backward_from: node not on this graph's tape");
    zero_grads(g, 0);
    cae_finish_pass_begin(g, 0);
    if (n->out.grad) {
        memcpy(n->out.grad, seed, (size_t)n->out.size * sizeof(cae_real));
        run_backward(g, n);
    }
    cae_finish_pass_end(g);
}
