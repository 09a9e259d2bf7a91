/* Losses to a scalar, summed over the features and averaged over the B
 * rows: bce_logits (binary cross-entropy of sigmoid(z) against targets),
 * sq_error and softmax_xent (labels are class indices stored in reals).
 * Forward sums each row in double into scratch (one thread per row), then
 * adds the rows in order, so the loss never depends on the thread count.
 *
 * bce_logits, per element, for y = sigmoid(z):
 *   -t log y - (1-t) log(1-y) = max(z,0) - z t + log1p(e^-|z|)
 * (finite for any z); d/dz = sigmoid(z) - t and d/dt = -z. */
#include <tgmath.h>

#include "cae/kernels.h"
#include "cae/op.h"
#include "cae/ops.h"
#include "ops/ewise.h"
#include "ops/vmath.h"

/* ------------------------------------------------------------ kernels */


/* One element of the cross-entropy, max(z,0) - z t + log1p(e), given
 * e = e^-|z|: one expression for both loops below, so the loss has the same
 * bits whether or not the forward also keeps p. */
static inline cae_real bce_from_e(cae_real z, cae_real t, cae_real e)
{
    return (z > 0 ? z : 0) - z * t + cae_vlog1p01(e);
}

static inline cae_real bce_term(cae_real z, cae_real t)
{
    return bce_from_e(z, t, cae_vexp(-fabs(z)));
}

/* The same, and p = sigmoid(z) - t from the same e^-|z| (bit for bit
 * cae_vsigmoid(z) - t). */
static inline cae_real bce_term_p(cae_real z, cae_real t, cae_real *p)
{
    const cae_real e = cae_vexp(-fabs(z));
    *p = cae_vsigmoid_e(z, e) - t;
    return bce_from_e(z, t, e);
}

/* out[0] = (1/B) sum_b part[b], adding the rows in order. */
static void mean_rows(cae_real *out, const double *part, int64_t B)
{
    double s = 0;
    for (int64_t b = 0; b < B; b++) s += part[b];
    out[0] = (cae_real)(B > 0 ? s / (double)B : 0);
}

/* The forward, and p = sigmoid(z) - t (B x N) unless p is NULL: the node
 * keeps p for its backward, which then is one scaled copy. */
static void bce_forward(cae_real *out, const cae_real *z, const cae_real *t, int64_t B,
                        int64_t N, double *part, cae_real *p, int nt)
{   /* out: 1; z, t: B x N; part: B */
    CAEK_FOR_ROWS(B, N, nt, {
        const cae_real *zr = z + b * N, *tr = t + b * N;
        cae_real *pr = p ? p + b * N : NULL;
        /* 16 lane sums in the real type (vectorizes; each lane adds N/16
         * terms), then added in double. */
        cae_real acc[16] = {0};
        int64_t j = 0;
        if (pr) {
            for (; j + 16 <= N; j += 16) {
                _Pragma("omp simd")
                for (int k = 0; k < 16; k++)
                    acc[k] += bce_term_p(zr[j + k], tr[j + k], &pr[j + k]);
            }
        } else {
            for (; j + 16 <= N; j += 16) {
                _Pragma("omp simd")
                for (int k = 0; k < 16; k++)
                    acc[k] += bce_term(zr[j + k], tr[j + k]);
            }
        }
        double s = 0;
        for (int k = 0; k < 16; k++) s += acc[k];
        for (; j < N; j++) s += pr ? bce_term_p(zr[j], tr[j], &pr[j]) : bce_term(zr[j], tr[j]);
        part[b] = s;
    });
    mean_rows(out, part, B);
}

void caek_bce_logits_forward(cae_real *out, const cae_real *z,
                             const cae_real *t, int64_t B, int64_t N,
                             double *part, int nt)
{
    bce_forward(out, z, t, B, N, part, NULL, nt);
}

void caek_bce_logits_backward(cae_real *dz, cae_real *dt, cae_real g,
                              const cae_real *z, const cae_real *t,
                              int64_t B, int64_t N, int nt)
{   /* dz, dt (either may be NULL), z, t: B x N */
    const cae_real c = B > 0 ? g / (cae_real)B : 0;
    if (dz) CAEK_FOR(B * N, nt, dz[i] += c * (cae_vsigmoid(z[i]) - t[i]));
    if (dt) CAEK_FOR(B * N, nt, dt[i] -= c * z[i]);
}

void caek_sq_error_forward(cae_real *out, const cae_real *y,
                           const cae_real *t, int64_t B, int64_t N,
                           double *part, int nt)
{   /* out: 1; y, t: B x N; part: B */
    CAEK_FOR_ROWS(B, N, nt, {
        const cae_real *yr = y + b * N, *tr = t + b * N;
        double s = 0;
        _Pragma("omp simd reduction(+ : s)")
        for (int64_t j = 0; j < N; j++) {
            const double d = (double)yr[j] - (double)tr[j];
            s += d * d;
        }
        part[b] = s;
    });
    mean_rows(out, part, B);
}

void caek_sq_error_backward(cae_real *dy, cae_real *dt, cae_real g,
                            const cae_real *y, const cae_real *t, int64_t B,
                            int64_t N, int nt)
{   /* dy, dt (either may be NULL), y, t: B x N */
    const cae_real c = B > 0 ? 2 * g / (cae_real)B : 0;
    if (dy) CAEK_FOR(B * N, nt, dy[i] += c * (y[i] - t[i]));
    if (dt) CAEK_FOR(B * N, nt, dt[i] -= c * (y[i] - t[i]));
}

/* Class index of row b; anything but an integer in 0..C-1 is a caller bug. */
static inline int64_t label_at(const cae_real *labels, int64_t b, int64_t C)
{
    const cae_real l = labels[b];
    CAE_ASSERT(l >= 0 && l < (cae_real)C && l == floor(l),
               "softmax_xent: label %g of row %lld is not a class in 0..%lld",
               (double)l, (long long)b, (long long)(C - 1));
    return (int64_t)l;
}

void caek_softmax_xent_forward(cae_real *out, cae_real *lse,
                               const cae_real *z, const cae_real *labels,
                               int64_t B, int64_t C, int nt)
{   /* out: 1; lse: B; z: B x C; labels: B */
    CAEK_FOR_ROWS(B, C, nt, {
        const cae_real *zr = z + b * C;
        cae_real m = zr[0];
        for (int64_t c = 1; c < C; c++) m = zr[c] > m ? zr[c] : m;
        double s = 0;
        for (int64_t c = 0; c < C; c++) s += exp((double)(zr[c] - m));
        lse[b] = m + (cae_real)log(s);
    });
    double s = 0;
    for (int64_t b = 0; b < B; b++)
        s += (double)lse[b] - (double)z[b * C + label_at(labels, b, C)];
    out[0] = (cae_real)(B > 0 ? s / (double)B : 0);
}

void caek_softmax_xent_backward(cae_real *dz, cae_real g, const cae_real *z,
                                const cae_real *labels, const cae_real *lse,
                                int64_t B, int64_t C, int nt)
{   /* dz, z: B x C; labels, lse: B */
    const cae_real c0 = B > 0 ? g / (cae_real)B : 0;
    CAEK_FOR_ROWS(B, C, nt, {
        cae_real *d = dz + b * C;
        const cae_real *zr = z + b * C;
        for (int64_t c = 0; c < C; c++) d[c] += c0 * exp(zr[c] - lse[b]);
        d[label_at(labels, b, C)] -= c0;
    });
}

/* -------------------------------------------------------------- nodes */

#define IN(n, i) (&(n)->in[i]->out)
#define NT(n) cae_node_threads(n)

/* bce_logits and sq_error: two B x N inputs of one shape; scratch holds B
 * row sums, then (bce_logits, when z gets a gradient) p = sigmoid(z) - t:
 * the forward's snapshot, which the backward scales (so dz is that of the
 * targets the forward saw). A graph that only evaluates but whose z could
 * get a gradient (parameters upstream) pays for writing p: one B x N pass. */
static int pair_infer(cae_node *n)
{
    if (cae_ops_same2(n) || cae_ops_rank(n, 0, 2)) return -1;
    return cae_node_scalar(n);
}
static int rows_plan(cae_node *n)
{
    n->scratch_bytes = (size_t)IN(n, 0)->shape[0] * sizeof(double);
    return 0;
}
static int bce_plan(cae_node *n) { return cae_ops_plan_kept(n, 0); }
/* p, when the plan made room for it. */
static cae_real *bce_p(const cae_node *n) { return cae_ops_kept(n); }
static void bce_fwd(cae_node *n)
{
    cae_real *p = bce_p(n);
    bce_forward(n->out.data, IN(n, 0)->data, IN(n, 1)->data, IN(n, 0)->shape[0],
                IN(n, 0)->shape[1], n->scratch, p, NT(n));
}
static void bce_bwd(cae_node *n)
{
    cae_real *dz = IN(n, 0)->grad;
    const int64_t B = IN(n, 0)->shape[0], N = IN(n, 0)->shape[1];
    const cae_real *p = bce_p(n);
    CAE_ASSERT(p || !dz, "bce_logits: z has a gradient but the plan kept no sigmoid(z) - t");
    if (dz) { /* dz (+)= g/B p, p = sigmoid(z) - t from the forward */
        const cae_real c = B > 0 ? n->out.grad[0] / (cae_real)B : 0;
        CAEK_PUT(B * N, NT(n), cae_node_stores(n, 0), dz, c * p[i]);
        dz = NULL;
    }
    caek_bce_logits_backward(dz, IN(n, 1)->grad, n->out.grad[0], IN(n, 0)->data,
                             IN(n, 1)->data, B, N, NT(n));
}
static void sq_fwd(cae_node *n)
{
    caek_sq_error_forward(n->out.data, IN(n, 0)->data, IN(n, 1)->data, IN(n, 0)->shape[0],
                          IN(n, 0)->shape[1], n->scratch, NT(n));
}
static void sq_bwd(cae_node *n)
{
    caek_sq_error_backward(IN(n, 0)->grad, IN(n, 1)->grad, n->out.grad[0], IN(n, 0)->data,
                           IN(n, 1)->data, IN(n, 0)->shape[0], IN(n, 0)->shape[1], NT(n));
}

/* softmax_xent: logits B x C, labels a vector of B; scratch holds lse. */
static int xent_infer(cae_node *n)
{
    if (cae_ops_rank(n, 0, 2) || cae_ops_rank(n, 1, 1)) return -1;
    if (IN(n, 0)->shape[1] < 1) {
        char sz[64];
        cae_node_fail(n, "logits %s have no class",
                      cae_shape_str(IN(n, 0), sz, sizeof sz));
        return -1;
    }
    if (IN(n, 1)->shape[0] != IN(n, 0)->shape[0]) {
        char sz[64], sl[64];
        cae_node_fail(n, "labels %s do not match the rows of logits %s",
                      cae_shape_str(IN(n, 1), sl, sizeof sl),
                      cae_shape_str(IN(n, 0), sz, sizeof sz));
        return -1;
    }
    return cae_node_scalar(n);
}
static int xent_plan(cae_node *n)
{
    n->scratch_bytes = (size_t)IN(n, 0)->shape[0] * sizeof(cae_real);
    return 0;
}
static void xent_fwd(cae_node *n)
{
    caek_softmax_xent_forward(n->out.data, n->scratch, IN(n, 0)->data, IN(n, 1)->data,
                              IN(n, 0)->shape[0], IN(n, 0)->shape[1], NT(n));
}
static void xent_bwd(cae_node *n)
{   /* labels never receive a gradient */
    if (cae_needs_grad(n->in[0]))
        caek_softmax_xent_backward(IN(n, 0)->grad, n->out.grad[0], IN(n, 0)->data,
                                   IN(n, 1)->data, n->scratch, IN(n, 0)->shape[0],
                                   IN(n, 0)->shape[1], NT(n));
}

/* softmax: rows of z (B x C) -> probabilities. Backward:
 * dz += p (G - sum_c G p); tangent: p z' - p sum_c (p z'). */
static void softmax_fwd(cae_node *n)
{
    const int64_t B = n->out.shape[0], C = n->out.shape[1];
    const cae_real *z = IN(n, 0)->data;
    cae_real *p = n->out.data;
    CAEK_FOR_ROWS(B, C, NT(n), {
        const cae_real *zr = z + b * C;
        cae_real *pr = p + b * C;
        cae_real m = zr[0];
        for (int64_t c = 1; c < C; c++) m = zr[c] > m ? zr[c] : m;
        double s = 0;
        for (int64_t c = 0; c < C; c++) s += (double)(pr[c] = cae_vexp(zr[c] - m));
        const cae_real inv = (cae_real)(1 / s);
        for (int64_t c = 0; c < C; c++) pr[c] *= inv;
    });
}
static void softmax_bwd(cae_node *n)
{
    if (!cae_needs_grad(n->in[0])) return;
    const int64_t B = n->out.shape[0], C = n->out.shape[1];
    const cae_real *p = n->out.data, *G = n->out.grad;
    cae_real *dz = IN(n, 0)->grad;
    CAEK_FOR_ROWS(B, C, NT(n), {
        const cae_real *pr = p + b * C, *gr = G + b * C;
        double s = 0;
        for (int64_t c = 0; c < C; c++) s += (double)gr[c] * pr[c];
        for (int64_t c = 0; c < C; c++) dz[b * C + c] += pr[c] * (gr[c] - (cae_real)s);
    });
}
static int softmax_infer(cae_node *n)
{
    return cae_ops_rank(n, 0, 2) ? -1 : cae_node_same_shape(n, 0);
}
static cae_node *softmax_tan(cae_graph *g, cae_node *n, cae_node *const *t)
{
    cae_node *p = cae_tangent_lift(g, n, cae_tangent_dirs(n->in[0], t[0]));
    cae_node *q = cae_mul(g, p, t[0]);
    return cae_sub(g, q, cae_mul_col(g, p, cae_sum_rows(g, q)));
}

static const cae_op onehot_op;

/* onehot: labels (B class indices as reals) -> B x C of 0 and 1; iattr[0]
 * = C. A constant of the labels: no gradient, a zero tangent. */
static int onehot_infer(cae_node *n)
{
    if (cae_ops_rank(n, 0, 1)) return -1;
    if (n->iattr[0] < 1) return cae_node_fail(n, "%lld classes", (long long)n->iattr[0]);
    n->out.rank = 2;
    n->out.shape[0] = IN(n, 0)->shape[0];
    n->out.shape[1] = n->iattr[0];
    return 0;
}
static void onehot_fwd(cae_node *n)
{
    const int64_t B = n->out.shape[0], C = n->out.shape[1];
    memset(n->out.data, 0, (size_t)(B * C) * sizeof(cae_real));
    for (int64_t b = 0; b < B; b++) n->out.data[b * C + label_at(IN(n, 0)->data, b, C)] = 1;
}

/* ------------------------------------------------------ tangent rules */
/* The tangent of a loss (a mean over rows of per-row sums) is the total of
 * each direction's block of  dloss/dinput * input' : K values for K
 * directions (cae/jvp.h). */

#define DIRS(i) cae_tangent_dirs(n->in[i], t[i])
#define LIFT(x, K) cae_tangent_lift(g, (x), (K))

static cae_node *per_row_mean(cae_graph *g, cae_node *n, cae_node *x, int64_t K)
{   /* x: K blocks of the B x N per-element terms */
    const int64_t B = IN(n, 0)->shape[0];
    return cae_scale(g, cae_ops_dir_sum(g, x, K), (cae_real)(B > 0 ? 1.0 / (double)B : 0));
}
static cae_node *bce_tan(cae_graph *g, cae_node *n, cae_node *const *t)
{   /* d/dz = sigmoid(z) - t, d/dt = -z */
    cae_node *z = n->in[0], *tg = n->in[1];
    cae_node *a = t[0] ? cae_mul(g, LIFT(cae_sub(g, cae_sigmoid(g, z), tg), DIRS(0)), t[0]) : NULL;
    cae_node *b = t[1] ? cae_mul(g, LIFT(cae_scale(g, z, -1), DIRS(1)), t[1]) : NULL;
    cae_node *s = cae_tangent_sum(g, z, a, b);
    return per_row_mean(g, n, s, cae_tangent_dirs(z, s));
}
static cae_node *sq_tan(cae_graph *g, cae_node *n, cae_node *const *t)
{   /* 2 (y - t)(y' - t') */
    cae_node *d = cae_tangent_sum(g, n->in[0], t[0], t[1] ? cae_scale(g, t[1], -1) : NULL);
    const int64_t K = cae_tangent_dirs(n->in[0], d);
    cae_node *r = cae_scale(g, cae_sub(g, n->in[0], n->in[1]), 2);
    return per_row_mean(g, n, cae_mul(g, LIFT(r, K), d), K);
}
static cae_node *xent_tan(cae_graph *g, cae_node *n, cae_node *const *t)
{   /* (softmax(z) - onehot(labels)) z'; labels have no derivative */
    if (!t[0]) return NULL;
    cae_node *z = n->in[0];
    const cae_attr at = {.i = {IN(n, 0)->shape[1]}};
    cae_node *onehot = cae_node_new_attr(g, &onehot_op, (cae_node *[]){n->in[1]}, &at, "onehot");
    cae_node *d = cae_sub(g, cae_softmax(g, z), onehot);
    return per_row_mean(g, n, cae_mul(g, LIFT(d, DIRS(0)), t[0]), DIRS(0));
}

static const cae_op bce_op = {.name = "bce_logits", .n_in = 2, .infer = pair_infer,
                              .plan = bce_plan, .forward = bce_fwd, .backward = bce_bwd,
                              .tangent = bce_tan};
static const cae_op sq_op = {.name = "sq_error", .n_in = 2, .infer = pair_infer,
                             .plan = rows_plan, .forward = sq_fwd, .backward = sq_bwd,
                             .tangent = sq_tan};
static const cae_op xent_op = {.name = "softmax_xent", .n_in = 2, .infer = xent_infer,
                               .plan = xent_plan, .forward = xent_fwd, .backward = xent_bwd,
                               .tangent = xent_tan};
static const cae_op softmax_op = {.name = "softmax", .n_in = 1, .infer = softmax_infer,
                                  .forward = softmax_fwd, .backward = softmax_bwd,
                                  .tangent = softmax_tan};
static const cae_op onehot_op = {.name = "onehot", .n_in = 1, .infer = onehot_infer,
                                 .forward = onehot_fwd};

/* ------------------------------------------------------- constructors */

static cae_node *binary(cae_graph *g, const cae_op *op, cae_node *a, cae_node *b)
{
    return cae_node_new(g, op, (cae_node *[]){a, b}, NULL);
}

cae_node *cae_bce_logits(cae_graph *g, cae_node *logits, cae_node *target)
{   /* may store z's gradient */
    return cae_node_new_builtin(g, &bce_op, (cae_node *[]){logits, target}, NULL, NULL, 1u, 0);
}
cae_node *cae_softmax_xent(cae_graph *g, cae_node *logits, cae_node *labels)
{
    return binary(g, &xent_op, logits, labels);
}
cae_node *cae_sq_error(cae_graph *g, cae_node *y, cae_node *target)
{
    return binary(g, &sq_op, y, target);
}
cae_node *cae_softmax(cae_graph *g, cae_node *z)
{
    return cae_node_new(g, &softmax_op, (cae_node *[]){z}, NULL);
}
