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

#define OP(id, nin, inf, fwd, bwd)                                               \
    static const cae_op id##_op = {.name = #id, .n_in = nin, .infer = inf, .forward = fwd, \
                                   .backward = bwd}
OP(add, 2, cae_ops_same2, add_fwd, add_bwd);
OP(sub, 2, cae_ops_same2, sub_fwd, sub_bwd);
OP(mul, 2, cae_ops_same2, mul_fwd, mul_bwd);
OP(scale, 1, unary_infer, scale_fwd, scale_bwd);
OP(add_scalar, 1, unary_infer, add_scalar_fwd, add_scalar_bwd);
OP(square, 1, unary_infer, square_fwd, square_bwd);
OP(bias_add, 2, row_infer, bias_add_fwd, bias_add_bwd); /* may store both gradients */
OP(mul_row, 2, row_infer, mul_row_fwd, mul_row_bwd);

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
