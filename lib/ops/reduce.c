/* Reductions: sum, mean and sum of squares of every element (to a scalar),
 * sum_rows and sum_cols of a B x N matrix. Sums never depend on the thread
 * count: sum, mean and sum_squares add fixed chunks of CAEK_CHUNK elements in double into scratch,
 * then add the chunks in order; each row or column sum is one thread's. */
#include "cae/kernels.h"
#include "cae/op.h"
#include "cae/ops.h"
#include "ops/ewise.h"

/* ------------------------------------------------------------ kernels */

int64_t caek_sum_parts(int64_t n)
{
    return n <= CAEK_CHUNK ? 1 : (n + CAEK_CHUNK - 1) / CAEK_CHUNK;
}

/* out[0] = the sum of x_i (square 0) or of x_i^2 (square 1): each fixed
 * chunk summed in double by one thread, then the chunks in order. */
static void sum_chunks(cae_real *out, const cae_real *x, int64_t n, double *part, int nt, int square)
{   /* out: 1; x: n; part: caek_sum_parts(n) */
    const int64_t np = caek_sum_parts(n);
    CAEK_FOR_ROWS(np, CAEK_CHUNK, nt, {
        const int64_t i0 = b * CAEK_CHUNK;
        const int64_t i1 = i0 + CAEK_CHUNK < n ? i0 + CAEK_CHUNK : n;
        double s = 0;
        if (square) {
            _Pragma("omp simd reduction(+ : s)")
            for (int64_t i = i0; i < i1; i++) s += (double)x[i] * x[i];
        } else {
            _Pragma("omp simd reduction(+ : s)")
            for (int64_t i = i0; i < i1; i++) s += x[i];
        }
        part[b] = s;
    });
    double s = 0;
    for (int64_t p = 0; p < np; p++) s += part[p];
    out[0] = (cae_real)s;
}

void caek_sum_forward(cae_real *out, const cae_real *x, int64_t n,
                      double *part, int nt)
{
    sum_chunks(out, x, n, part, nt, 0);
}

/* dx (+)= g; store: = (lib/shared.h). */
static void sum_grad(cae_real *dx, cae_real g, int64_t n, int nt, int store)
{   /* dx: n */
    CAEK_PUT(n, nt, store, dx, g);
}

void caek_sum_backward(cae_real *dx, cae_real g, int64_t n, int nt) { sum_grad(dx, g, n, nt, 0); }

void caek_sum_squares_forward(cae_real *out, const cae_real *x, int64_t n,
                              double *part, int nt)
{
    sum_chunks(out, x, n, part, nt, 1);
}

static void sumsq_grad(cae_real *dx, const cae_real *x, cae_real g, int64_t n, int nt, int store)
{   /* dx, x: n */
    const cae_real g2 = 2 * g;
    CAEK_PUT(n, nt, store, dx, g2 * x[i]);
}

void caek_sum_squares_backward(cae_real *dx, const cae_real *x, cae_real g,
                               int64_t n, int nt)
{   /* dx, x: n */
    sumsq_grad(dx, x, g, n, nt, 0);
}

void caek_sum_rows_forward(cae_real *out, const cae_real *x, int64_t B,
                           int64_t N, int nt)
{   /* out: B; x: B x N */
    CAEK_FOR_ROWS(B, N, nt, {
        const cae_real *xr = x + b * N;
        double s = 0;
        _Pragma("omp simd reduction(+ : s)")
        for (int64_t j = 0; j < N; j++) s += xr[j];
        out[b] = (cae_real)s;
    });
}

void caek_sum_rows_backward(cae_real *dx, const cae_real *dout, int64_t B,
                            int64_t N, int nt)
{   /* dx: B x N; dout: B */
    CAEK_FOR_ROWS(B, N, nt, {
        cae_real *d = dx + b * N;
        const cae_real g = dout[b];
        _Pragma("omp simd")
        for (int64_t j = 0; j < N; j++) d[j] += g;
    });
}

void caek_sum_cols_forward(cae_real *out, const cae_real *x, int64_t B,
                           int64_t N, int nt)
{   /* out: N; x: B x N */
    cae_ops_col_acc(out, x, NULL, B, N, nt, 1);
}

void caek_sum_cols_backward(cae_real *dx, const cae_real *dout, int64_t B,
                            int64_t N, int nt)
{   /* dx: B x N; dout: N */
    CAEK_FOR_ROWS(B, N, nt, {
        cae_real *d = dx + b * N;
        _Pragma("omp simd")
        for (int64_t j = 0; j < N; j++) d[j] += dout[j];
    });
}

/* -------------------------------------------------------------- nodes */

#define IN(n, i) (&(n)->in[i]->out)
#define NT(n) cae_node_threads(n)

/* sum and mean: scalar out; scratch holds the chunk sums. */
static int sum_infer(cae_node *n) { return cae_node_scalar(n); }
static int sum_plan(cae_node *n)
{
    n->scratch_bytes = (size_t)caek_sum_parts(IN(n, 0)->size) * sizeof(double);
    return 0;
}
static void sum_fwd(cae_node *n)
{
    caek_sum_forward(n->out.data, IN(n, 0)->data, IN(n, 0)->size, n->scratch, NT(n));
}
static void sum_bwd(cae_node *n)
{
    if (cae_needs_grad(n->in[0]))
        sum_grad(IN(n, 0)->grad, n->out.grad[0], IN(n, 0)->size, NT(n), cae_node_stores(n, 0));
}
static void mean_fwd(cae_node *n)
{
    const int64_t size = IN(n, 0)->size;
    caek_sum_forward(n->out.data, IN(n, 0)->data, size, n->scratch, NT(n));
    if (size > 0) n->out.data[0] /= (cae_real)size;
}
static void mean_bwd(cae_node *n)
{
    const int64_t size = IN(n, 0)->size;
    if (cae_needs_grad(n->in[0]) && size > 0)
        sum_grad(IN(n, 0)->grad, n->out.grad[0] / (cae_real)size, size, NT(n), cae_node_stores(n, 0));
}

static void sumsq_fwd(cae_node *n)
{
    caek_sum_squares_forward(n->out.data, IN(n, 0)->data, IN(n, 0)->size, n->scratch, NT(n));
}
static void sumsq_bwd(cae_node *n)
{
    if (cae_needs_grad(n->in[0]))
        sumsq_grad(IN(n, 0)->grad, IN(n, 0)->data, n->out.grad[0], IN(n, 0)->size, NT(n),
                   cae_node_stores(n, 0));
}

/* sum_rows: B x N -> B; sum_cols: B x N -> N. */
static int sum_rows_infer(cae_node *n)
{
    return cae_ops_rank(n, 0, 2) ? -1 : cae_ops_vector(n, IN(n, 0)->shape[0]);
}
static int sum_cols_infer(cae_node *n)
{
    return cae_ops_rank(n, 0, 2) ? -1 : cae_ops_vector(n, IN(n, 0)->shape[1]);
}
static void sum_rows_fwd(cae_node *n)
{
    caek_sum_rows_forward(n->out.data, IN(n, 0)->data, IN(n, 0)->shape[0],
                          IN(n, 0)->shape[1], NT(n));
}
static void sum_rows_bwd(cae_node *n)
{
    if (cae_needs_grad(n->in[0]))
        caek_sum_rows_backward(IN(n, 0)->grad, n->out.grad, IN(n, 0)->shape[0],
                               IN(n, 0)->shape[1], NT(n));
}
static void sum_cols_fwd(cae_node *n)
{
    caek_sum_cols_forward(n->out.data, IN(n, 0)->data, IN(n, 0)->shape[0],
                          IN(n, 0)->shape[1], NT(n));
}
static void sum_cols_bwd(cae_node *n)
{
    if (cae_needs_grad(n->in[0]))
        caek_sum_cols_backward(IN(n, 0)->grad, n->out.grad, IN(n, 0)->shape[0],
                               IN(n, 0)->shape[1], NT(n));
}

/* block_sum_cols: t ((K B) x N, K blocks of B rows) -> K x N, row k = the
 * column sums of block k: sum_cols of each of K directions at once. */
static int block_infer(cae_node *n)
{
    if (cae_ops_rank(n, 0, 2)) return -1;
    const int64_t K = n->iattr[0];
    if (K < 1 || IN(n, 0)->shape[0] % K)
        return cae_node_fail(n, "%lld rows are not %lld blocks", (long long)IN(n, 0)->shape[0],
                             (long long)K);
    n->out.rank = 2;
    n->out.shape[0] = K;
    n->out.shape[1] = IN(n, 0)->shape[1];
    return 0;
}
static void block_fwd(cae_node *n)
{
    const int64_t K = n->iattr[0], B = IN(n, 0)->shape[0] / K, N = IN(n, 0)->shape[1];
    for (int64_t k = 0; k < K; k++)
        caek_sum_cols_forward(n->out.data + k * N, IN(n, 0)->data + k * B * N, B, N, NT(n));
}
static void block_bwd(cae_node *n)
{
    if (!cae_needs_grad(n->in[0])) return;
    const int64_t K = n->iattr[0], B = IN(n, 0)->shape[0] / K, N = IN(n, 0)->shape[1];
    for (int64_t k = 0; k < K; k++)
        caek_sum_cols_backward(IN(n, 0)->grad + k * B * N, n->out.grad + k * N, B, N, NT(n));
}
static const cae_op block_op = {.name = "block_sum_cols", .n_in = 1, .infer = block_infer,
                                .forward = block_fwd, .backward = block_bwd};

/* ------------------------------------------------------ tangent rules */

#define DIRS(i) cae_tangent_dirs(n->in[i], t[i])

static cae_node *sum_tan(cae_graph *g, cae_node *n, cae_node *const *t)
{
    return cae_ops_dir_sum(g, t[0], DIRS(0));
}
static cae_node *mean_tan(cae_graph *g, cae_node *n, cae_node *const *t)
{
    const int64_t size = IN(n, 0)->size;
    return cae_scale(g, cae_ops_dir_sum(g, t[0], DIRS(0)), (cae_real)(size > 0 ? 1.0 / (double)size : 0));
}
static cae_node *sumsq_tan(cae_graph *g, cae_node *n, cae_node *const *t)
{   /* each direction's sum of 2 x x' */
    const int64_t K = DIRS(0);
    return cae_ops_dir_sum(g, cae_mul(g, cae_tangent_lift(g, cae_scale(g, n->in[0], 2), K), t[0]), K);
}
static cae_node *sum_rows_tan(cae_graph *g, cae_node *n, cae_node *const *t)
{   /* K blocks of B rows -> K blocks of B values */
    (void)n;
    return cae_sum_rows(g, t[0]);
}
static cae_node *sum_cols_tan(cae_graph *g, cae_node *n, cae_node *const *t)
{
    const int64_t K = DIRS(0);
    if (K <= 1) return cae_sum_cols(g, t[0]);
    const cae_attr at = {.i = {K}};
    cae_node *b = cae_node_new_attr(g, &block_op, (cae_node *[]){t[0]}, &at, NULL);
    return cae_reshape(g, b, 1, (int64_t[]){K * IN(n, 0)->shape[1]});
}

static const cae_op sum_op = {.name = "sum", .n_in = 1, .infer = sum_infer, .plan = sum_plan,
                              .forward = sum_fwd, .backward = sum_bwd, .tangent = sum_tan};
static const cae_op mean_op = {.name = "mean", .n_in = 1, .infer = sum_infer, .plan = sum_plan,
                               .forward = mean_fwd, .backward = mean_bwd, .tangent = mean_tan};
static const cae_op sumsq_op = {.name = "sum_squares", .n_in = 1, .infer = sum_infer, .plan = sum_plan,
                                .forward = sumsq_fwd, .backward = sumsq_bwd, .tangent = sumsq_tan};
static const cae_op sum_rows_op = {.name = "sum_rows", .n_in = 1, .infer = sum_rows_infer,
                                   .forward = sum_rows_fwd, .backward = sum_rows_bwd,
                                   .tangent = sum_rows_tan};
static const cae_op sum_cols_op = {.name = "sum_cols", .n_in = 1, .infer = sum_cols_infer,
                                   .forward = sum_cols_fwd, .backward = sum_cols_bwd,
                                   .tangent = sum_cols_tan};

/* ------------------------------------------------------- constructors */

static cae_node *unary(cae_graph *g, const cae_op *op, cae_node *x)
{
    return cae_node_new(g, op, (cae_node *[]){x}, NULL);
}

/* Their backwards write the whole input gradient: they may store (the
 * first writer of its buffer, lib/shared.h), so it is not zeroed first. */
static cae_node *storing(cae_graph *g, const cae_op *op, cae_node *x)
{
    return cae_node_new_builtin(g, op, (cae_node *[]){x}, NULL, NULL, 1u, 0);
}

cae_node *cae_sum(cae_graph *g, cae_node *x) { return storing(g, &sum_op, x); }
cae_node *cae_mean(cae_graph *g, cae_node *x) { return storing(g, &mean_op, x); }
cae_node *cae_sum_squares(cae_graph *g, cae_node *x) { return storing(g, &sumsq_op, x); }
cae_node *cae_sum_rows(cae_graph *g, cae_node *x) { return unary(g, &sum_rows_op, x); }
cae_node *cae_sum_cols(cae_graph *g, cae_node *x) { return unary(g, &sum_cols_op, x); }
