/* Arithmetic ops: add, sub, mul, scale, add_scalar, square (element-wise,
 * any rank) and bias_add, mul_row (a length-N vector broadcast over the
 * rows of a B x N matrix). Raw kernels first, then the node adapters,
 * descriptors and constructors. */
#include "cae/kernels.h"
#include "cae/op.h"
#include "cae/ops.h"
#include "ops/ewise.h"

/* ------------------------------------------------------------ kernels */

void caek_add_forward(cae_real *out, const cae_real *a, const cae_real *b,
                      int64_t n, int nt)
{   /* out, a, b: n */
    CAEK_FOR(n, nt, out[i] = a[i] + b[i]);
}

void caek_add_backward(cae_real *da, cae_real *db, const cae_real *dout,
                       int64_t n, int nt)
{   /* da, db (either may be NULL), dout: n */
    if (da) CAEK_FOR(n, nt, da[i] += dout[i]);
    if (db) CAEK_FOR(n, nt, db[i] += dout[i]);
}

void caek_sub_forward(cae_real *out, const cae_real *a, const cae_real *b,
                      int64_t n, int nt)
{   /* out, a, b: n */
    CAEK_FOR(n, nt, out[i] = a[i] - b[i]);
}

void caek_sub_backward(cae_real *da, cae_real *db, const cae_real *dout,
                       int64_t n, int nt)
{   /* da, db (either may be NULL), dout: n */
    if (da) CAEK_FOR(n, nt, da[i] += dout[i]);
    if (db) CAEK_FOR(n, nt, db[i] -= dout[i]);
}

void caek_mul_forward(cae_real *out, const cae_real *a, const cae_real *b,
                      int64_t n, int nt)
{   /* out, a, b: n */
    CAEK_FOR(n, nt, out[i] = a[i] * b[i]);
}

void caek_mul_backward(cae_real *da, cae_real *db, const cae_real *dout,
                       const cae_real *a, const cae_real *b, int64_t n,
                       int nt)
{   /* da, db (either may be NULL; may alias when a == b), dout, a, b: n */
    if (da) CAEK_FOR(n, nt, da[i] += dout[i] * b[i]);
    if (db) CAEK_FOR(n, nt, db[i] += dout[i] * a[i]);
}

void caek_scale_forward(cae_real *out, const cae_real *x, cae_real c,
                        int64_t n, int nt)
{   /* out, x: n */
    CAEK_FOR(n, nt, out[i] = c * x[i]);
}

void caek_scale_backward(cae_real *dx, const cae_real *dout, cae_real c,
                         int64_t n, int nt)
{   /* dx, dout: n */
    CAEK_FOR(n, nt, dx[i] += c * dout[i]);
}

void caek_add_scalar_forward(cae_real *out, const cae_real *x, cae_real c,
                             int64_t n, int nt)
{   /* out, x: n */
    CAEK_FOR(n, nt, out[i] = x[i] + c);
}

void caek_add_scalar_backward(cae_real *dx, const cae_real *dout, int64_t n,
                              int nt)
{   /* dx, dout: n */
    CAEK_FOR(n, nt, dx[i] += dout[i]);
}

void caek_square_forward(cae_real *out, const cae_real *x, int64_t n, int nt)
{   /* out, x: n */
    CAEK_FOR(n, nt, out[i] = x[i] * x[i]);
}

void caek_square_backward(cae_real *dx, const cae_real *dout,
                          const cae_real *x, int64_t n, int nt)
{   /* dx, dout, x: n */
    CAEK_FOR(n, nt, dx[i] += 2 * x[i] * dout[i]);
}

void caek_bias_add_forward(cae_real *out, const cae_real *x,
                           const cae_real *v, int64_t B, int64_t N, int nt)
{   /* out, x: B x N; v: N */
    CAEK_FOR_ROWS(B, N, nt, {
        cae_real *o = out + b * N;
        const cae_real *xr = x + b * N;
        _Pragma("omp simd")
        for (int64_t j = 0; j < N; j++) o[j] = xr[j] + v[j];
    });
}

/* dx (+)= dout, dv (+)= column sums of dout; store_dx / store_dv: =
 * (lib/shared.h). */
static void bias_add_grad(cae_real *dx, cae_real *dv, const cae_real *dout, int64_t B,
                          int64_t N, int nt, int store_dx, int store_dv)
{   /* dx (or NULL), dout: B x N; dv (or NULL): N */
    if (dx) CAEK_PUT(B * N, nt, store_dx, dx, dout[i]);
    if (dv) cae_ops_col_acc(dv, dout, NULL, B, N, nt, store_dv);
}

void caek_bias_add_backward(cae_real *dx, cae_real *dv, const cae_real *dout,
                            int64_t B, int64_t N, int nt)
{   /* dx (or NULL), dout: B x N; dv (or NULL): N */
    bias_add_grad(dx, dv, dout, B, N, nt, 0, 0);
}

void caek_mul_row_forward(cae_real *out, const cae_real *x,
                          const cae_real *v, int64_t B, int64_t N, int nt)
{   /* out, x: B x N; v: N */
    CAEK_FOR_ROWS(B, N, nt, {
        cae_real *o = out + b * N;
        const cae_real *xr = x + b * N;
        _Pragma("omp simd")
        for (int64_t j = 0; j < N; j++) o[j] = xr[j] * v[j];
    });
}

void caek_mul_row_backward(cae_real *dx, cae_real *dv, const cae_real *dout,
                           const cae_real *x, const cae_real *v, int64_t B,
                           int64_t N, int nt)
{   /* dx (or NULL), dout, x: B x N; dv (or NULL), v: N */
    if (dx)
        CAEK_FOR_ROWS(B, N, nt, {
            cae_real *d = dx + b * N;
            const cae_real *g = dout + b * N;
            _Pragma("omp simd")
            for (int64_t j = 0; j < N; j++) d[j] += g[j] * v[j];
        });
    if (dv) cae_ops_col_acc(dv, dout, x, B, N, nt, 0);
}

/* out[b,j] = x[b,j] c[b] */
static void mul_col_fwd_k(cae_real *out, const cae_real *x, const cae_real *c, int64_t B,
                          int64_t N, int nt)
{   /* out, x: B x N; c: B */
    CAEK_FOR_ROWS(B, N, nt, {
        cae_real *o = out + b * N;
        const cae_real *xr = x + b * N, cb = c[b];
        _Pragma("omp simd")
        for (int64_t j = 0; j < N; j++) o[j] = xr[j] * cb;
    });
}

/* -------------------------------------------------------------- nodes */

#define IN(n, i) (&(n)->in[i]->out)
#define NT(n) cae_node_threads(n)

static void add_fwd(cae_node *n)
{
    caek_add_forward(n->out.data, IN(n, 0)->data, IN(n, 1)->data, n->out.size, NT(n));
}
static void add_bwd(cae_node *n)
{
    caek_add_backward(IN(n, 0)->grad, IN(n, 1)->grad, n->out.grad, n->out.size, NT(n));
}
static void sub_fwd(cae_node *n)
{
    caek_sub_forward(n->out.data, IN(n, 0)->data, IN(n, 1)->data, n->out.size, NT(n));
}
static void sub_bwd(cae_node *n)
{
    caek_sub_backward(IN(n, 0)->grad, IN(n, 1)->grad, n->out.grad, n->out.size, NT(n));
}
static void mul_fwd(cae_node *n)
{
    caek_mul_forward(n->out.data, IN(n, 0)->data, IN(n, 1)->data, n->out.size, NT(n));
}
static void mul_bwd(cae_node *n)
{
    caek_mul_backward(IN(n, 0)->grad, IN(n, 1)->grad, n->out.grad, IN(n, 0)->data,
                      IN(n, 1)->data, n->out.size, NT(n));
}

/* scale and add_scalar keep their constant in fattr[0]. */
static int unary_infer(cae_node *n) { return cae_node_same_shape(n, 0); }
static void scale_fwd(cae_node *n)
{
    caek_scale_forward(n->out.data, IN(n, 0)->data, (cae_real)n->fattr[0], n->out.size, NT(n));
}
static void scale_bwd(cae_node *n)
{
    if (cae_needs_grad(n->in[0]))
        caek_scale_backward(IN(n, 0)->grad, n->out.grad, (cae_real)n->fattr[0], n->out.size, NT(n));
}
static void add_scalar_fwd(cae_node *n)
{
    caek_add_scalar_forward(n->out.data, IN(n, 0)->data, (cae_real)n->fattr[0], n->out.size, NT(n));
}
static void add_scalar_bwd(cae_node *n)
{
    if (cae_needs_grad(n->in[0]))
        caek_add_scalar_backward(IN(n, 0)->grad, n->out.grad, n->out.size, NT(n));
}
static void square_fwd(cae_node *n)
{
    caek_square_forward(n->out.data, IN(n, 0)->data, n->out.size, NT(n));
}
static void square_bwd(cae_node *n)
{
    if (cae_needs_grad(n->in[0]))
        caek_square_backward(IN(n, 0)->grad, n->out.grad, IN(n, 0)->data, n->out.size, NT(n));
}

/* x is B x N, v a vector of N. */
static int row_infer(cae_node *n)
{
    if (cae_ops_rank(n, 0, 2) || cae_ops_rank(n, 1, 1)) return -1;
    if (IN(n, 1)->shape[0] != IN(n, 0)->shape[1]) {
        char sx[64], sv[64];
        cae_node_fail(n, "row vector %s does not fit the columns of %s",
                      cae_shape_str(IN(n, 1), sv, sizeof sv),
                      cae_shape_str(IN(n, 0), sx, sizeof sx));
        return -1;
    }
    return cae_node_same_shape(n, 0);
}
static void bias_add_fwd(cae_node *n)
{
    caek_bias_add_forward(n->out.data, IN(n, 0)->data, IN(n, 1)->data,
                          n->out.shape[0], n->out.shape[1], NT(n));
}
static void bias_add_bwd(cae_node *n)
{
    bias_add_grad(IN(n, 0)->grad, IN(n, 1)->grad, n->out.grad, n->out.shape[0],
                  n->out.shape[1], NT(n), cae_node_stores(n, 0), cae_node_stores(n, 1));
}
static void mul_row_fwd(cae_node *n)
{
    caek_mul_row_forward(n->out.data, IN(n, 0)->data, IN(n, 1)->data,
                         n->out.shape[0], n->out.shape[1], NT(n));
}
static void mul_row_bwd(cae_node *n)
{
    caek_mul_row_backward(IN(n, 0)->grad, IN(n, 1)->grad, n->out.grad, IN(n, 0)->data,
                          IN(n, 1)->data, n->out.shape[0], n->out.shape[1], NT(n));
}

static void mul_col_fwd(cae_node *n)
{
    mul_col_fwd_k(n->out.data, IN(n, 0)->data, IN(n, 1)->data, n->out.shape[0], n->out.shape[1],
                  NT(n));
}
static void mul_col_bwd(cae_node *n)
{   /* dx += dout c (by rows), dc[b] += sum_j dout[b,j] x[b,j] */
    const int64_t B = n->out.shape[0], N = n->out.shape[1];
    const cae_real *G = n->out.grad, *x = IN(n, 0)->data, *c = IN(n, 1)->data;
    cae_real *dx = IN(n, 0)->grad, *dc = IN(n, 1)->grad;
    if (dx)
        CAEK_FOR_ROWS(B, N, NT(n), {
            cae_real *d = dx + b * N;
            const cae_real *gr = G + b * N, cb = c[b];
            _Pragma("omp simd")
            for (int64_t j = 0; j < N; j++) d[j] += gr[j] * cb;
        });
    if (dc)
        CAEK_FOR_ROWS(B, N, NT(n), {
            const cae_real *gr = G + b * N, *xr = x + b * N;
            double s = 0;
            _Pragma("omp simd reduction(+ : s)")
            for (int64_t j = 0; j < N; j++) s += gr[j] * xr[j];
            dc[b] += (cae_real)s;
        });
}
/* x is B x N, c a vector of B. */
static int col_infer(cae_node *n)
{
    if (cae_ops_rank(n, 0, 2) || cae_ops_rank(n, 1, 1)) return -1;
    if (IN(n, 1)->shape[0] != IN(n, 0)->shape[0]) {
        char sx[64], sc[64];
        return cae_node_fail(n, "column vector %s does not fit the rows of %s",
                             cae_shape_str(IN(n, 1), sc, sizeof sc),
                             cae_shape_str(IN(n, 0), sx, sizeof sx));
    }
    return cae_node_same_shape(n, 0);
}

/* ------------------------------------------------------ tangent rules */
/* Each returns the tangent of n's output from its inputs' tangents t[i]
 * (NULL = zero), as nodes of these same ops (cae/op.h, cae/jvp.h). */

#define DIRS(i) cae_tangent_dirs(n->in[i], t[i])
#define LIFT(x, K) cae_tangent_lift(g, (x), (K))

static cae_node *add_tan(cae_graph *g, cae_node *n, cae_node *const *t)
{
    return cae_tangent_sum(g, n, t[0], t[1]);
}
static cae_node *sub_tan(cae_graph *g, cae_node *n, cae_node *const *t)
{
    return cae_tangent_sum(g, n, t[0], t[1] ? cae_scale(g, t[1], -1) : NULL);
}
static cae_node *mul_tan(cae_graph *g, cae_node *n, cae_node *const *t)
{   /* (a b)' = a' b + a b' */
    cae_node *x = t[0] ? cae_mul(g, t[0], LIFT(n->in[1], DIRS(0))) : NULL;
    cae_node *y = t[1] ? cae_mul(g, LIFT(n->in[0], DIRS(1)), t[1]) : NULL;
    return cae_tangent_sum(g, n, x, y);
}
static cae_node *scale_tan(cae_graph *g, cae_node *n, cae_node *const *t)
{
    return cae_scale(g, t[0], (cae_real)n->fattr[0]);
}
static cae_node *add_scalar_tan(cae_graph *g, cae_node *n, cae_node *const *t)
{
    (void)g;
    (void)n;
    return t[0];
}
static cae_node *square_tan(cae_graph *g, cae_node *n, cae_node *const *t)
{   /* 2 x x' */
    return cae_mul(g, LIFT(cae_scale(g, n->in[0], 2), DIRS(0)), t[0]);
}
/* The tangent of input i, a vector broadcast over rows, must have one
 * direction: rows are where directions stack. */
static int one_dir(cae_node *n, cae_node *const *t, int i)
{
    if (!t[i] || DIRS(i) == 1) return 1;
    cae_node_fail(n, "forward mode: the tangent of its vector (input %d) has %lld directions; "
                     "a broadcast vector's tangent has one", i, (long long)DIRS(i));
    return 0;
}
static cae_node *bias_add_tan(cae_graph *g, cae_node *n, cae_node *const *t)
{   /* x' + v' on every row */
    if (!one_dir(n, t, 1)) return NULL;
    if (!t[1]) return t[0];
    return cae_bias_add(g, t[0] ? t[0] : cae_tangent_zero(g, n->in[0], 1), t[1]);
}
static cae_node *mul_row_tan(cae_graph *g, cae_node *n, cae_node *const *t)
{   /* x' v + x v' */
    if (!one_dir(n, t, 1)) return NULL;
    cae_node *x = t[0] ? cae_mul_row(g, t[0], n->in[1]) : NULL;
    cae_node *y = t[1] ? cae_mul_row(g, n->in[0], t[1]) : NULL;
    return cae_tangent_sum(g, n, x, y);
}
static cae_node *mul_col_tan(cae_graph *g, cae_node *n, cae_node *const *t)
{   /* x' c + x c', both by rows, so K directions stack in both */
    cae_node *x = t[0] ? cae_mul_col(g, t[0], LIFT(n->in[1], DIRS(0))) : NULL;
    cae_node *y = t[1] ? cae_mul_col(g, LIFT(n->in[0], DIRS(1)), t[1]) : NULL;
    return cae_tangent_sum(g, n, x, y);
}

#define OP(id, nin, inf)                                                         \
    static const cae_op id##_op = {.name = #id, .n_in = nin, .infer = inf, .forward = id##_fwd, \
                                   .backward = id##_bwd, .tangent = id##_tan}
OP(add, 2, cae_ops_same2);
OP(sub, 2, cae_ops_same2);
OP(mul, 2, cae_ops_same2);
OP(scale, 1, unary_infer);
OP(add_scalar, 1, unary_infer);
OP(square, 1, unary_infer);
OP(bias_add, 2, row_infer); /* may store both gradients */
OP(mul_row, 2, row_infer);
OP(mul_col, 2, col_infer);

/* ------------------------------------------------------- constructors */

static cae_node *binary(cae_graph *g, const cae_op *op, cae_node *a, cae_node *b)
{
    return cae_node_new(g, op, (cae_node *[]){a, b}, NULL);
}
static cae_node *with_const(cae_graph *g, const cae_op *op, cae_node *x, cae_real c)
{
    const cae_attr attr = {.f = {c}};
    return cae_node_new_attr(g, op, (cae_node *[]){x}, &attr, NULL);
}

cae_node *cae_add(cae_graph *g, cae_node *a, cae_node *b) { return binary(g, &add_op, a, b); }
cae_node *cae_sub(cae_graph *g, cae_node *a, cae_node *b) { return binary(g, &sub_op, a, b); }
cae_node *cae_mul(cae_graph *g, cae_node *a, cae_node *b) { return binary(g, &mul_op, a, b); }
cae_node *cae_scale(cae_graph *g, cae_node *x, cae_real c)
{
    return with_const(g, &scale_op, x, c);
}
cae_node *cae_add_scalar(cae_graph *g, cae_node *x, cae_real c)
{
    return with_const(g, &add_scalar_op, x, c);
}
cae_node *cae_square(cae_graph *g, cae_node *x)
{
    return cae_node_new(g, &square_op, (cae_node *[]){x}, NULL);
}
cae_node *cae_bias_add(cae_graph *g, cae_node *x, cae_node *v)
{
    return cae_node_new_builtin(g, &bias_add_op, (cae_node *[]){x, v}, NULL, NULL, 3u, 0);
}
cae_node *cae_mul_row(cae_graph *g, cae_node *x, cae_node *v)
{
    return binary(g, &mul_row_op, x, v);
}
cae_node *cae_mul_col(cae_graph *g, cae_node *x, cae_node *c)
{
    return binary(g, &mul_col_op, x, c);
}
