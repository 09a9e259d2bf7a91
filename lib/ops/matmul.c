/* matmul: C = op(A) op(B) with a transpose flag on either operand.
 *
 *   A: M x K (or K x M with trans_a)   B: K x N (or N x K with trans_b)
 *   C: M x N
 * Backward, with G = dL/dC (M x N):
 *   dA += G op(B)^T          (stored as A: transposed when trans_a)
 *   dB += op(A)^T G          (stored as B: transposed when trans_b)
 * Each of the three products is planned once at compile (cae_gemm_plan
 * dispatches the libxsmm kernels); the transposes a product needs go
 * through the node's scratch. A gradient this node may write first in a
 * pass (lib/shared.h) gets a second plan that stores instead of adding.
 *
 * affine: C = A op(B) + v, v a row vector of N values, as one node. The
 * bias is added to each output tile right after its kernel wrote it (in
 * the transpose back, when the product is swapped), and its gradient is the
 * column sums of G: the pass that bias_add makes over C, and the copy of G
 * it makes in backward, are gone. Bit for bit the values and gradients of
 * bias_add(matmul(A, B, 0, trans_b), v). */
#include "cae/gemm.h"
#include "cae/ops.h"
#include "shared.h"
#include "ops/ewise.h"

/* Weight gradients keep their tiles in scratch in training steps (the
 * gradient is not written out) over at most C_SCRATCH_K rows, or over any
 * number on one thread. At K = 2, 1 and 2 threads, the finished product
 * took 10-25% less time; at K = 20 and 40 on one thread 5-15% less (the
 * MLP's first layer with momentum, the CAE's merged product: bench/profile,
 * interleaved, best of 6). On 2 threads at K = 40 it took as long or
 * longer (once 1.4x, for reasons not found). */
enum { MAX_STACK = CAE_GEMM_MAX_STACK, C_SCRATCH_K = 16 };
static int tiles_in_scratch(const cae_node *n, int64_t k)
{
    return k <= C_SCRATCH_K || cae_node_threads(n) == 1;
}

typedef struct matmul_plan {
    cae_gemm fwd, da, db, da_store, db_store;
    int has_da, has_db;
    /* Training steps: the product over B's transpose the graph keeps
     * (trans_b), and the merged weight gradient this node runs (exec). */
    cae_gemm fwd_t, merged, merged_store;
    int has_fwd_t, has_merged;
} matmul_plan;

/* When dB is a parameter's gradient (cols wide), its product may carry
 * the parameter's finish: tiles of the finish's row blocks, as wide as
 * half the row (two threads take one half each; the finish reads the
 * parameter's rows, which wide tiles let the hardware prefetch: the finish
 * of a 784 x 1000 W ran 2x faster with 32 x 512 tiles than with 32 x 48,
 * measured at B = 1 and 20). Else the defaults (0). */
static void db_tiles(const cae_node *n, int64_t cols, int64_t *tr, int64_t *tc)
{
    *tr = *tc = 0;
    if (!cae_node_param(n->in[1])) return;
    *tr = CAE_GEMM_EPILOGUE_ROWS;
    *tc = cols <= 64 ? cols : ((cols + 1) / 2 + 15) / 16 * 16;
    if (*tc > 512) *tc = 512;
}

static int matmul_infer(cae_node *n)
{
    const cae_tensor *a = &n->in[0]->out, *b = &n->in[1]->out;
    char sa[64], sb[64];
    if (a->rank != 2 || b->rank != 2)
        return cae_node_fail(n, "needs two matrices, got %s and %s",
                             cae_shape_str(a, sa, sizeof sa), cae_shape_str(b, sb, sizeof sb));
    const int ta = (int)n->iattr[0], tb = (int)n->iattr[1];
    const int64_t m = ta ? a->shape[1] : a->shape[0], ka = ta ? a->shape[0] : a->shape[1];
    const int64_t kb = tb ? b->shape[1] : b->shape[0], nn = tb ? b->shape[0] : b->shape[1];
    if (ka != kb)
        return cae_node_fail(n, "inner dimensions differ: %s%s times %s%s (%lld vs %lld)",
                             cae_shape_str(a, sa, sizeof sa), ta ? "^T" : "",
                             cae_shape_str(b, sb, sizeof sb), tb ? "^T" : "", (long long)ka,
                             (long long)kb);
    if (m <= 0 || nn <= 0 || ka <= 0)
        return cae_node_fail(n, "empty operand: %s and %s", cae_shape_str(a, sa, sizeof sa),
                             cae_shape_str(b, sb, sizeof sb));
    n->out.rank = 2;
    n->out.shape[0] = m;
    n->out.shape[1] = nn;
    n->iattr[2] = ka;
    return 0;
}

static int affine_infer(cae_node *n)
{
    if (matmul_infer(n)) return -1;
    const cae_tensor *v = &n->in[2]->out;
    if (v->rank != 1 || v->shape[0] != n->out.shape[1]) {
        char sv[64], sc[64];
        return cae_node_fail(n, "bias %s does not fit the %s product: it needs %lld values",
                             cae_shape_str(v, sv, sizeof sv), cae_shape_str(&n->out, sc, sizeof sc),
                             (long long)n->out.shape[1]);
    }
    return 0;
}

static size_t max_sz(size_t a, size_t b) { return a > b ? a : b; }

int64_t cae_node_owner_rows(const cae_node *n, int i)
{
    const cae_tensor *w = cae_node_param(n->in[i]);
    if (!w || w->rank != 2 || w->size < 65536) return 0;
    return cae_gemm_owner_split(w->shape[0]);
}

int cae_plan_over_transpose(cae_gemm *p, int64_t m, int64_t n, int64_t k, int trans_a,
                            int64_t own)
{
    if (cae_gemm_plan(p, m, n, k, trans_a, 0, 0)) return -1;
    if (!own || !cae_gemm_own(p, 1, own)) return 0;
    if (cae_gemm_plan_tiles(p, m, n, k, trans_a, 0, 0, 0, 32)) return -1;
    return cae_gemm_own(p, 1, own);
}

/* cae_gemm_own for a plan whose kernels' rows are W's rows (a weight
 * gradient, or a product swapped to run over W): a plan that cannot take
 * it (the split off its tile grid) keeps the static schedule. */
static void own_rows(cae_gemm *q, int64_t at)
{
    if (at) (void)cae_gemm_own(q, 0, at);
}

static int matmul_plan_fn(cae_node *n)
{
    matmul_plan *p = cae_node_state(n, sizeof *p);
    if (!p) return -1;
    const int ta = (int)n->iattr[0], tb = (int)n->iattr[1];
    const int64_t m = n->out.shape[0], nn = n->out.shape[1], k = n->iattr[2];
    /* A weight matrix B's rows split between 2 threads (cae_node_owner_rows): x W
     * cut along K there; h W^T, swapped, over W's rows (below: over the
     * copy W^T in training steps, by its columns). */
    const int64_t own = cae_node_owner_rows(n, 1);
    if (own && !ta && !tb ? cae_gemm_plan_ksplit(&p->fwd, m, nn, k, own, 0)
                          : cae_gemm_plan(&p->fwd, m, nn, k, ta, tb, 0))
        return cae_node_fail(n, "libxsmm dispatch failed for %lldx%lldx%lld", (long long)m,
                             (long long)nn, (long long)k);
    if (tb && p->fwd.swap) own_rows(&p->fwd, own);
    size_t scratch = p->fwd.scratch_reals;
    if (cae_needs_grad(n)) {
        p->has_da = cae_needs_grad(n->in[0]);
        p->has_db = cae_needs_grad(n->in[1]);
    }
    /* dA: not trans_a: dA (M x K) += G (M x N) op(B)^T (N x K), where
     *     op(B)^T is B^T (a transpose) or, with trans_b, B itself.
     *     trans_a: dA (K x M) += op(B) (K x N) G^T (N x M): G^T needs the
     *     scratch transpose; op(B) is B, or B^T read with trans_a. */
    for (int acc = 1; p->has_da && acc >= !cae_node_may_store(n, 0); acc--) {
        cae_gemm *q = acc ? &p->da : &p->da_store;
        /* dz W over a weight matrix W (tb: G W, K = W's rows) cut at its
         * owner split; G W^T swapped over W's rows */
        int rc = ta             ? cae_gemm_plan(q, k, m, nn, tb, 1, acc)
                 : own && tb    ? cae_gemm_plan_ksplit(q, m, k, nn, own, acc)
                                : cae_gemm_plan(q, m, k, nn, 0, !tb, acc);
        if (rc) return cae_node_fail(n, "libxsmm dispatch failed (dA)");
        if (!ta && !tb && q->swap) own_rows(q, own);
        scratch = max_sz(scratch, q->scratch_reals);
    }
    /* dB: not trans_b: dB (K x N) += op(A)^T (K x M) G (M x N).
     *     trans_b: dB (N x K) += G^T (N x M) op(A) (M x K). */
    for (int acc = 1; p->has_db && acc >= !cae_node_may_store(n, 1); acc--) {
        cae_gemm *q = acc ? &p->db : &p->db_store;
        int64_t tr, tc;
        db_tiles(n, tb ? k : nn, &tr, &tc);
        int rc = tb ? cae_gemm_plan_tiles(q, nn, k, m, 1, ta, acc, tr, tc)
                    : cae_gemm_plan_tiles(q, k, nn, m, !ta, 0, acc, tr, tc);
        if (rc) return cae_node_fail(n, "libxsmm dispatch failed (dB)");
        if (!q->swap) own_rows(q, own); /* the finish updates W by these rows */
        if (!acc && tr && tiles_in_scratch(n, m) &&
            cae_gemm_plan_c_scratch(q, cae_node_threads(n)))
            return cae_node_fail(n, "libxsmm dispatch failed (dB, tiles in scratch)");
        scratch = max_sz(scratch, q->scratch_reals);
    }
    /* The weight gradients of one parameter from several nodes, as one
     * product over all their rows: X^T Y stacked along K (lib/shared.h). */
    int exec = 0;
    int64_t kt = 0;
    if (p->has_db && cae_node_merge(n, 1, &exec, &kt) && exec) {
        const int64_t R = tb ? nn : k, S = tb ? k : nn;
        for (int acc = 1; acc >= !cae_node_may_store(n, 1); acc--) {
            cae_gemm *q = acc ? &p->merged : &p->merged_store;
            int64_t tr, tc;
            db_tiles(n, S, &tr, &tc);
            if (cae_gemm_plan_tiles(q, R, S, kt, 1, 0, acc, tr, tc))
                return cae_node_fail(n, "libxsmm dispatch failed (merged dB, K = %lld)",
                                     (long long)kt);
            own_rows(q, own);
            if (!acc && tiles_in_scratch(n, kt) && cae_gemm_plan_c_scratch(q, cae_node_threads(n)))
                return cae_node_fail(n, "libxsmm dispatch failed (merged dB, tiles in scratch)");
            scratch = max_sz(scratch, cae_gemm_stacked_scratch(q));
        }
        p->has_merged = 1;
    }
    /* In training steps, h W^T over the graph's copy of W^T: a direct
     * product (the swapped one vectorizes along the batch; 1.5-2.5x slower
     * at B = 2..20 on one thread, measured). */
    if (tb && m >= 2 && !cae_node_want_transpose(n, 1)) {
        /* the finish writes W^T's columns by W's rows: split there */
        if (cae_plan_over_transpose(&p->fwd_t, m, nn, k, ta, own))
            return cae_node_fail(n, "libxsmm dispatch failed (over B^T)");
        scratch = max_sz(scratch, p->fwd_t.scratch_reals);
        p->has_fwd_t = 1;
    }
    n->scratch_bytes = scratch * sizeof(cae_real);
    return 0;
}

static void matmul_forward(cae_node *n)
{
    const matmul_plan *p = n->state;
    const cae_real *bias = n->n_in == 3 ? n->in[2]->out.data : NULL;
    const cae_real *bt = p->has_fwd_t ? cae_node_param_transpose(n, 1) : NULL;
    cae_gemm_run_bias(bt ? &p->fwd_t : &p->fwd, n->in[0]->out.data, bt ? bt : n->in[1]->out.data,
                      n->out.data, bias, n->scratch, cae_node_threads(n));
}

/* The epilogue over all of C (rows x cols), in its row blocks: after a
 * product that could not take it tile by tile. */
static double epilogue_all(const cae_gemm_epilogue *e, cae_real *c, int64_t rows, int64_t cols,
                           int th)
{
    const int64_t R = CAE_GEMM_EPILOGUE_ROWS, blocks = (rows + R - 1) / R;
    double acc = 0;
#pragma omp parallel for schedule(static) num_threads(th) reduction(+ : acc) \
    if (th > 1 && rows * cols >= 65536)
    for (int64_t q = 0; q < blocks; q++) {
        const int64_t i0 = q * R, nr = i0 + R < rows ? R : rows - i0;
        e->tile(e->ctx, c + i0 * cols, cols, i0, 0, nr, cols, &acc);
    }
    return acc;
}

/* dB (+)= X^T Y, the node's own weight gradient (X = op(A), Y = G, or with
 * trans_b X = G, Y = op(A)): alone, or handed to the member of its merge
 * group that runs last, or run by it for the group; and the parameter's
 * finish in the same tiles when this node writes its last term. */
static void matmul_db(cae_node *n, const matmul_plan *p, const cae_real *G, int th)
{
    const int tb = (int)n->iattr[1];
    cae_tensor *a = &n->in[0]->out, *b = &n->in[1]->out;
    const int store = cae_node_stores(n, 1);
    int exec = 0;
    int64_t kt = 0;
    const int count = cae_node_merge(n, 1, &exec, &kt);
    const cae_real *x = tb ? G : a->data, *y = tb ? a->data : G;
    if (count && !exec) {
        cae_node_merge_put(n, 1, x, y);
        return;
    }
    const cae_gemm_epilogue *e = cae_node_finish(n, 1);
    double acc = 0;
    if (count) {
        const cae_real *xs[MAX_STACK], *ys[MAX_STACK];
        int64_t ks[MAX_STACK];
        cae_node *who[MAX_STACK];
        const int got = cae_node_merge_take(n, 1, xs + 1, ys + 1, ks + 1, who + 1);
        xs[0] = x;
        ys[0] = y;
        ks[0] = n->out.shape[0];
        if (got == count - 1) {
            acc = cae_gemm_run_stacked(store ? &p->merged_store : &p->merged, count, xs, ys, ks,
                                       b->grad, n->scratch, th, e);
        } else { /* not every member ran (a pass from another node) */
            cae_gemm_run(store ? &p->db_store : &p->db, x, y, b->grad, n->scratch, th);
            for (int q = 1; q <= got; q++) /* each member's own plan, in its scratch */
                cae_gemm_run(&((const matmul_plan *)who[q]->state)->db, xs[q], ys[q], b->grad,
                             who[q]->scratch, th);
            if (e) acc = epilogue_all(e, b->grad, b->rank == 2 ? b->shape[0] : 1,
                                      b->size / (b->rank == 2 ? b->shape[0] : 1), th);
        }
    } else {
        const cae_gemm *q = store ? &p->db_store : &p->db;
        if (tb) /* dB = G^T op(A) */
            acc = cae_gemm_run_epilogue(q, G, a->data, b->grad, n->scratch, th, e);
        else /* dB = op(A)^T G */
            acc = cae_gemm_run_epilogue(q, a->data, G, b->grad, n->scratch, th, e);
    }
    if (e) cae_node_finish_end(n, 1, acc);
}

static void matmul_backward(cae_node *n)
{
    const matmul_plan *p = n->state;
    const int ta = (int)n->iattr[0], th = cae_node_threads(n);
    cae_tensor *a = &n->in[0]->out, *b = &n->in[1]->out;
    const cae_real *G = n->out.grad;
    if (n->n_in == 3 && n->in[2]->out.grad) /* affine: dv (+)= column sums of G */
        cae_ops_col_acc(n->in[2]->out.grad, G, NULL, n->out.shape[0], n->out.shape[1], th,
                        cae_node_stores(n, 2));
    if (p->has_da) {
        const cae_gemm *q = cae_node_stores(n, 0) ? &p->da_store : &p->da;
        if (ta) /* dA = op(B) G^T: first operand op(B), second G^T (scratch) */
            cae_gemm_run(q, b->data, G, a->grad, n->scratch, th);
        else /* dA = G op(B)^T */
            cae_gemm_run(q, G, b->data, a->grad, n->scratch, th);
    }
    if (p->has_db) matmul_db(n, p, G, th);
}

/* Tangent: C' = op(A') op(B) + op(A) op(B') (+ v' on every row for
 * affine). Directions stack along A's rows, so A' may carry K of them (one
 * GEMM with K times the rows) unless A is transposed; B' and v', being
 * shared by the rows, carry one. */
static cae_node *matmul_tan(cae_graph *g, cae_node *n, cae_node *const *t)
{
    const int ta = (int)n->iattr[0], tb = (int)n->iattr[1];
    const int64_t KA = cae_tangent_dirs(n->in[0], t[0]);
    const int64_t KB = cae_tangent_dirs(n->in[1], t[1]);
    const int64_t KV = n->n_in == 3 ? cae_tangent_dirs(n->in[2], t[2]) : 0;
    if ((KA > 1 && ta) || KB > 1 || KV > 1) {
        cae_node_fail(n, "forward mode: tangents with several directions go along the rows of "
                         "the first operand (untransposed), not along %s",
                      KA > 1 ? "a transposed first operand" : KB > 1 ? "the second operand" : "the bias");
        return NULL;
    }
    cae_node *dv = n->n_in == 3 ? t[2] : NULL;
    cae_node *x = NULL;
    if (t[0]) {
        x = dv ? cae_affine(g, t[0], n->in[1], dv, tb) : cae_matmul(g, t[0], n->in[1], ta, tb);
        dv = NULL; /* added to every row, of every direction */
    }
    cae_node *y = t[1] ? cae_matmul(g, n->in[0], t[1], ta, tb) : NULL;
    if (dv) y = cae_bias_add(g, y ? y : cae_tangent_zero(g, n, 1), dv);
    return cae_tangent_sum(g, n, x, y);
}

static const cae_op matmul_op = {.name = "matmul", .n_in = 2, .infer = matmul_infer,
                                 .plan = matmul_plan_fn, .forward = matmul_forward,
                                 .backward = matmul_backward, .tangent = matmul_tan};

static const cae_op affine_op = {.name = "affine", .n_in = 3, .infer = affine_infer,
                                 .plan = matmul_plan_fn, .forward = matmul_forward,
                                 .backward = matmul_backward, .tangent = matmul_tan};

cae_node *cae_matmul(cae_graph *g, cae_node *a, cae_node *b, int trans_a, int trans_b)
{
    cae_node *in[2] = {a, b};
    cae_attr at = {.i = {!!trans_a, !!trans_b}};
    cae_node *n = cae_node_new_builtin(g, &matmul_op, in, &at, NULL, 3u, 0); /* may store dA, dB */
    /* dB is X^T Y over the rows when A is not transposed (and is not a
     * parameter, whose values an update could change before the merged
     * product runs): it may join its parameter's merge group. */
    if (n && !trans_a && !cae_node_param(a)) cae_node_builtin_bits(n, 2u, 0);
    return n;
}

cae_node *cae_affine(cae_graph *g, cae_node *x, cae_node *w, cae_node *v, int trans_w)
{
    cae_node *in[3] = {x, w, v};
    cae_attr at = {.i = {0, !!trans_w}};
    cae_node *n = cae_node_new_builtin(g, &affine_op, in, &at, NULL, 7u, 0); /* and dv */
    if (n && !cae_node_param(x)) cae_node_builtin_bits(n, 2u, 0);
    return n;
}
