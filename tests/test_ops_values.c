/* Forward values of the ops against direct scalar references in long double
 * (including the extreme logits where naive formulas overflow), the raw
 * caek_ kernels without a graph (backward accumulates, NULL gradients are
 * skipped, results identical with 1 and 2 threads on the parallel path),
 * and the noise ops (mask fraction, gradient through exactly the mask,
 * same seed same draw, fresh draws, thread-count independence, and the
 * distribution of the Gaussian draws). */
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "cae/kernels.h"
#include "cae/ops.h"
#include "ops/vmath.h"
#include "ops/vnormal.h"
#include "testutil.h"
/* after check.h (testutil.h) */
#include "cae/testing.h"

#ifdef CAE_REAL_DOUBLE
#define REL 1e-13
#else
#define REL 1e-6
#endif

static void expect_close(const char *what, int64_t i, double got, long double want, double rel)
{
    ck_assert_msg(isfinite(got), "%s[%lld] = %g is not finite", what, (long long)i, got);
    double w = (double)want;
    ck_assert_msg(fabs(got - w) <= rel * fabs(w) + 1e-300,
                  "%s[%lld] = %.17g, want %.17g (rel err %g)", what, (long long)i, got, w,
                  fabs(got - w) / fabs(w));
}

/* ---------------------------------------------------- element-wise values */

static long double sp(long double x) { return log1pl(expl(x)); }

typedef struct {
    const char *name;
    cae_node *(*make)(cae_graph *, cae_node *);
    long double (*ref)(long double);
    int positive; /* inputs must be > 0 */
} unary_case;

static cae_node *mk_scale(cae_graph *g, cae_node *x) { return cae_scale(g, x, (cae_real)-1.5); }
static cae_node *mk_add_scalar(cae_graph *g, cae_node *x) { return cae_add_scalar(g, x, 2); }
static long double r_sigmoid(long double x) { return 1 / (1 + expl(-x)); }
static long double r_tanh(long double x) { return tanhl(x); }
static long double r_relu(long double x) { return x > 0 ? x : 0; }
static long double r_softplus(long double x) { return sp(x); }
static long double r_exp(long double x) { return expl(x); }
static long double r_log(long double x) { return logl(x); }
static long double r_step(long double x) { return x > 0 ? 1 : 0; }
static long double r_square(long double x) { return x * x; }
static long double r_scale(long double x) { return -1.5L * x; }
static long double r_add_scalar(long double x) { return x + 2; }

static const unary_case unary[] = {
    {"sigmoid", cae_sigmoid, r_sigmoid, 0}, {"tanh", cae_tanh, r_tanh, 0},
    {"relu", cae_relu, r_relu, 0},          {"softplus", cae_softplus, r_softplus, 0},
    {"exp", cae_exp, r_exp, 0},             {"log", cae_log, r_log, 1},
    {"step", cae_step, r_step, 0},          {"square", cae_square, r_square, 0},
    {"scale", mk_scale, r_scale, 0},        {"add_scalar", mk_add_scalar, r_add_scalar, 0},
};

/* The vectorizable exp / log / log1p of lib/ops/vmath.h against libm in
 * long double over dense sweeps of their ranges (float build: Cody-Waite
 * and Cephes polynomials, a few 1e-7 relative; double build: libm). */
static double worst_rel(long double (*ref)(long double), cae_real (*f)(cae_real), double lo,
                        double hi, int logscale, double *at)
{
    double worst = 0;
    const int n = 200000;
    for (int i = 0; i <= n; i++) {
        const double u = (double)i / n;
        const cae_real x = (cae_real)(logscale ? lo * pow(hi / lo, u) : lo + (hi - lo) * u);
        const long double w = ref((long double)x);
        const double e = (double)(fabsl((long double)f(x) - w) / fabsl(w));
        if (!(e <= worst)) { /* a NaN result counts as infinitely wrong */
            worst = isnan(e) ? INFINITY : e;
            *at = (double)x;
        }
    }
    return worst;
}
static cae_real f_exp(cae_real x) { return cae_vexp(x); }
static cae_real f_log(cae_real x) { return cae_vlog(x); }
static cae_real f_log1p(cae_real x) { return cae_vlog1p(x); }
static cae_real f_log1p01(cae_real x) { return cae_vlog1p01(x); }

START_TEST(vmath_accuracy)
{
    const double tol = sizeof(cae_real) == sizeof(float) ? 2.5e-7 : 1e-15;
    struct {
        const char *name;
        long double (*ref)(long double);
        cae_real (*f)(cae_real);
        double lo, hi;
        int logscale;
    } c[] = {{"exp", expl, f_exp, -87, 88, 0},          {"log", logl, f_log, 1e-37, 3e38, 1},
             {"log1p", log1pl, f_log1p, 1e-30, 1e30, 1}, {"log1p01", log1pl, f_log1p01, 1e-30, 1, 1},
             {"log1p01", log1pl, f_log1p01, 1e-3, 1, 0}};
    for (size_t k = 0; k < sizeof c / sizeof c[0]; k++) {
        double at = 0;
        const double e = worst_rel(c[k].ref, c[k].f, c[k].lo, c[k].hi, c[k].logscale, &at);
        ck_assert_msg(e < tol, "%s: relative error %.3g at %.9g (tolerance %g)", c[k].name, e, at, tol);
    }
    ck_assert_msg(isnan((double)cae_vlog1p01((cae_real)NAN)), "log1p01(NaN) is not NaN");
    ck_assert_msg(cae_vlog1p01(0) == 0, "log1p01(0) = %g", (double)cae_vlog1p01(0));
    ck_assert_msg(isnan((double)cae_vexp((cae_real)NAN)), "exp(NaN) is not NaN");
}
END_TEST

START_TEST(unary_values)
{
    const unary_case *c = &unary[_i];
    static const double ext[] = {-50, -20, -5, -1, -0.3, 0.2, 1, 5, 20, 50};
    const int64_t n = 64;
    cae_graph *g = cae_graph_new(NULL, 1);
    cae_node *x = cae_input(g, "x", 1, &n);
    cae_node *y = c->make(g, x);
    ck_assert_int_eq(cae_graph_compile(g, y), 0);
    cae_real *xv = cae_node_value(x)->data;
    tu_fill_uniform(xv, n, -3, 3, 17);
    for (int i = 0; i < 10; i++) xv[i] = (cae_real)ext[i];
    if (c->positive)
        for (int64_t i = 0; i < n; i++) xv[i] = fabs(xv[i]) + (cae_real)0.01;
    cae_graph_forward(g);
    for (int64_t i = 0; i < n; i++)
        expect_close(c->name, i, cae_node_value(y)->data[i], c->ref(xv[i]), 4 * REL);
    cae_graph_free(g);
}
END_TEST

/* add, sub, mul, bias_add, mul_row and the reductions (sum_squares too) on 5 x 7. */
START_TEST(binary_and_reduce_values)
{
    enum { B = 5, N = 7 };
    cae_graph *g = cae_graph_new(NULL, B);
    cae_node *a = cae_input(g, "a", 2, (int64_t[]){B, N});
    cae_node *b = cae_input(g, "b", 2, (int64_t[]){B, N});
    cae_node *v = cae_input(g, "v", 1, (int64_t[]){N});
    cae_node *out[10] = {cae_add(g, a, b),       cae_sub(g, a, b),      cae_mul(g, a, b),
                         cae_bias_add(g, a, v),  cae_mul_row(g, a, v),  cae_sum(g, a),
                         cae_mean(g, a),         cae_sum_rows(g, a),    cae_sum_cols(g, a),
                         cae_sum_squares(g, a)};
    for (int k = 0; k < 10; k++) cae_graph_output(g, out[k]);
    ck_assert_int_eq(cae_graph_compile(g, out[5]), 0);
    cae_real *av = cae_node_value(a)->data, *bv = cae_node_value(b)->data;
    cae_real *vv = cae_node_value(v)->data;
    tu_fill_uniform(av, B * N, -2, 2, 1);
    tu_fill_uniform(bv, B * N, -2, 2, 2);
    tu_fill_uniform(vv, N, -2, 2, 3);
    cae_graph_forward(g);
    long double total = 0, total2 = 0, rows[B] = {0}, cols[N] = {0};
    for (int i = 0; i < B; i++)
        for (int j = 0; j < N; j++) {
            const int k = i * N + j;
            expect_close("add", k, cae_node_value(out[0])->data[k], (long double)av[k] + bv[k], REL);
            expect_close("sub", k, cae_node_value(out[1])->data[k], (long double)av[k] - bv[k], REL);
            expect_close("mul", k, cae_node_value(out[2])->data[k], (long double)av[k] * bv[k], REL);
            expect_close("bias_add", k, cae_node_value(out[3])->data[k], (long double)av[k] + vv[j], REL);
            expect_close("mul_row", k, cae_node_value(out[4])->data[k], (long double)av[k] * vv[j], REL);
            total += av[k], rows[i] += av[k], cols[j] += av[k];
            total2 += (long double)av[k] * av[k];
        }
    expect_close("sum", 0, cae_node_value(out[5])->data[0], total, REL);
    expect_close("mean", 0, cae_node_value(out[6])->data[0], total / (B * N), REL);
    expect_close("sum_squares", 0, cae_node_value(out[9])->data[0], total2, REL);
    for (int i = 0; i < B; i++) expect_close("sum_rows", i, cae_node_value(out[7])->data[i], rows[i], 8 * REL);
    for (int j = 0; j < N; j++) expect_close("sum_cols", j, cae_node_value(out[8])->data[j], cols[j], 8 * REL);
    cae_graph_free(g);
}
END_TEST

/* ------------------------------------------------------------ loss values */

/* bce at logits up to +-1000 (naive log(sigmoid) is -inf there), against
 * t softplus(-z) + (1 - t) softplus(z) in long double, summed over the
 * features and averaged over the rows; sq_error likewise. */
START_TEST(loss_values)
{
    enum { B = 3, N = 6 };
    static const double z[B * N] = {50, -50, 50, -50, 0.5, -2,   1000, -1000, 30, -30, 0, 3,
                                    -7, 7,   88,  -88, 17,  -0.1};
    static const double t[B * N] = {0, 1, 1, 0, 0.3, 0.7, 0, 1, 0.5, 0.5, 1, 0,
                                    0.2, 0.9, 1, 0, 0.5, 0.5};
    cae_graph *g = cae_graph_new(NULL, B);
    cae_node *zn = cae_input(g, "z", 2, (int64_t[]){B, N});
    cae_node *tn = cae_input(g, "t", 2, (int64_t[]){B, N});
    cae_node *bce = cae_bce_logits(g, zn, tn), *sq = cae_sq_error(g, zn, tn);
    cae_graph_output(g, sq);
    ck_assert_int_eq(cae_graph_compile(g, bce), 0);
    long double want_bce = 0, want_sq = 0;
    for (int i = 0; i < B * N; i++) {
        cae_node_value(zn)->data[i] = (cae_real)z[i];
        cae_node_value(tn)->data[i] = (cae_real)t[i];
        long double zi = (cae_real)z[i], ti = (cae_real)t[i];
        want_bce += ti * sp(-zi) + (1 - ti) * sp(zi);
        want_sq += (zi - ti) * (zi - ti);
    }
    cae_graph_forward(g);
    expect_close("bce_logits", 0, cae_node_value(bce)->data[0], want_bce / B, 4 * REL);
    expect_close("sq_error", 0, cae_node_value(sq)->data[0], want_sq / B, 4 * REL);
    cae_graph_free(g);
}
END_TEST

/* bce_logits keeps sigmoid(z) - t from its forward when z gets a gradient:
 * the loss has the same bits either way, and dz those of the raw kernel
 * (which recomputes the sigmoid). */
START_TEST(bce_kept_p_same_bits)
{
    enum { B = 37, N = 100 };
    cae_real z[B * N], t[B * N], loss[2], dz_ref[B * N];
    tu_fill_uniform(z, B * N, -9, 9, 5);
    tu_fill_uniform(t, B * N, 0, 1, 6);
    for (int grad = 0; grad < 2; grad++) {
        cae_graph *g = cae_graph_new(NULL, B);
        cae_node *zn = cae_input(g, "z", 2, (int64_t[]){B, N});
        cae_node *tn = cae_input(g, "t", 2, (int64_t[]){B, N});
        if (grad) cae_input_requires_grad(zn);
        cae_node *bce = cae_bce_logits(g, zn, tn);
        ck_assert_int_eq(cae_graph_compile(g, bce), 0);
        memcpy(cae_node_value(zn)->data, z, sizeof z);
        memcpy(cae_node_value(tn)->data, t, sizeof t);
        cae_graph_forward(g);
        loss[grad] = cae_node_value(bce)->data[0];
        if (grad) {
            cae_graph_backward(g);
            memset(dz_ref, 0, sizeof dz_ref);
            caek_bce_logits_backward(dz_ref, NULL, 1, z, t, B, N, 1);
            ck_assert_msg(!memcmp(dz_ref, cae_node_value(zn)->grad, sizeof dz_ref),
                          "dz from the kept sigmoid(z) - t differs from the raw kernel's");
        }
        cae_graph_free(g);
    }
    ck_assert_msg(!memcmp(&loss[0], &loss[1], sizeof loss[0]),
                  "bce loss %.9g without a gradient, %.9g with one", (double)loss[0], (double)loss[1]);
}
END_TEST

/* bce_logits (one op, hand-written backward) against its definition
 * composed from primitives, (1/B) sum t softplus(-z) + (1 - t) softplus(z),
 * on the same z and t (cae_gradcompare with the caller's inputs): the loss
 * and both gradients, dz = (sigmoid(z) - t) / B and dt = -z / B. */
START_TEST(bce_equals_composed)
{
    enum { B = 37, N = 100 };
    cae_graph *g[2];
    for (int f = 0; f < 2; f++) {
        g[f] = cae_graph_new(NULL, B);
        cae_node *z = cae_input(g[f], "z", 2, (int64_t[]){B, N});
        cae_node *t = cae_input(g[f], "t", 2, (int64_t[]){B, N});
        cae_input_requires_grad(z);
        cae_input_requires_grad(t);
        cae_node *loss;
        if (f) {
            loss = cae_bce_logits(g[f], z, t);
        } else {
            cae_node *pos = cae_mul(g[f], t, cae_softplus(g[f], cae_scale(g[f], z, -1)));
            cae_node *one_minus_t = cae_add_scalar(g[f], cae_scale(g[f], t, -1), 1);
            cae_node *neg = cae_mul(g[f], one_minus_t, cae_softplus(g[f], z));
            loss = cae_scale(g[f], cae_sum(g[f], cae_add(g[f], pos, neg)), (cae_real)(1.0 / B));
        }
        ck_assert_msg(!cae_graph_compile(g[f], loss), "%s", cae_graph_error(g[f]));
    }
    tu_fill_uniform(cae_node_value(cae_graph_tape_at(g[1], 0))->data, B * N, -9, 9, 5);
    tu_fill_uniform(cae_node_value(cae_graph_tape_at(g[1], 1))->data, B * N, 0, 1, 6);
    cae_ck_gradcompare_opts(g[1], g[0], &(cae_gradcompare_opts){.inputs = CAE_INPUTS_CALLER},
                            CAE_CK_TOL_COMPARE);
    cae_graph_free(g[0]);
    cae_graph_free(g[1]);
}
END_TEST

/* free_energy (one op, hand-written backward) against the six nodes it
 * replaces, inside an RBM's CD gap (1/B)(F(v0) - F(v1)) with c shared by
 * both: the loss to rounding, and every gradient (v0, v1, a0, a1, c) with
 * the same bits, at 1 and 2 threads (the RBM's checkpoints depend on it).
 * Then the same through cae_gradcompare. */
static cae_node *fe_composed(cae_graph *g, cae_node *v, cae_node *a, cae_node *c)
{
    cae_node *visible = cae_sum(g, cae_mul_row(g, v, c));
    cae_node *hidden = cae_sum(g, cae_softplus(g, a));
    return cae_scale(g, cae_add(g, visible, hidden), -1);
}
START_TEST(free_energy_equals_composed)
{
    enum { B = 23, D = 41, H = 67 };
    for (int threads = 1; threads <= 2; threads++) {
        cae_graph *g[2];
        cae_node *in[2][5], *fe0[2];
        for (int f = 0; f < 2; f++) {
            g[f] = cae_graph_new(NULL, B);
            cae_graph_set_threads(g[f], threads);
            cae_node **x = in[f];
            x[0] = cae_input(g[f], "v0", 2, (int64_t[]){B, D});
            x[1] = cae_input(g[f], "v1", 2, (int64_t[]){B, D});
            x[2] = cae_input(g[f], "a0", 2, (int64_t[]){B, H});
            x[3] = cae_input(g[f], "a1", 2, (int64_t[]){B, H});
            x[4] = cae_input(g[f], "c", 1, (int64_t[]){D});
            for (int k = 0; k < 5; k++) cae_input_requires_grad(x[k]);
            cae_node *(*fe)(cae_graph *, cae_node *, cae_node *, cae_node *) =
                f ? cae_free_energy : fe_composed;
            fe0[f] = fe(g[f], x[0], x[2], x[4]);
            cae_node *gap = cae_sub(g[f], fe0[f], fe(g[f], x[1], x[3], x[4]));
            ck_assert_msg(!cae_graph_compile(g[f], cae_scale(g[f], gap, (cae_real)(1.0 / B))), "%s",
                          cae_graph_error(g[f]));
        }
        for (int k = 0; k < 5; k++) {
            cae_tensor *t = cae_node_value(in[1][k]);
            if (k < 2) tu_fill_uniform(t->data, t->size, 0, 1, 20 + (uint64_t)k);
            else tu_fill_uniform(t->data, t->size, k < 4 ? -30 : -1, k < 4 ? 30 : 1, 20 + (uint64_t)k);
            if (k < 2) /* binary visible units, as an RBM's */
                for (int64_t i = 0; i < t->size; i++) t->data[i] = t->data[i] < 0.5 ? 0 : 1;
            memcpy(cae_node_value(in[0][k])->data, t->data, (size_t)t->size * sizeof *t->data);
        }
        cae_real loss[2];
        for (int f = 0; f < 2; f++) {
            cae_graph_forward(g[f]);
            cae_graph_backward(g[f]);
            loss[f] = cae_node_value(cae_graph_loss(g[f]))->data[0];
        }
        ck_assert_msg(fabs((double)loss[1] - (double)loss[0]) <= 1e-5 * fabs((double)loss[0]),
                      "free energy gap %.9g fused, %.9g composed", (double)loss[1], (double)loss[0]);
        const double F[2] = {cae_node_value(fe0[0])->data[0], cae_node_value(fe0[1])->data[0]};
        ck_assert_msg(fabs(F[1] - F[0]) <= 1e-6 * fabs(F[0]), "F(v0) %.9g fused, %.9g composed", F[1], F[0]);
        static const char *const names[5] = {"v0", "v1", "a0", "a1", "c"};
        for (int k = 0; k < 5; k++) {
            const cae_tensor *t0 = cae_node_value(in[0][k]), *t1 = cae_node_value(in[1][k]);
            for (int64_t i = 0; i < t0->size; i++)
                ck_assert_msg(!memcmp(&t0->grad[i], &t1->grad[i], sizeof t0->grad[i]),
                              "%d thread(s): d/d%s[%lld] %.9g fused, %.9g composed", threads,
                              names[k], (long long)i, (double)t1->grad[i], (double)t0->grad[i]);
        }
        cae_ck_gradcompare_opts(g[1], g[0], &(cae_gradcompare_opts){.inputs = CAE_INPUTS_CALLER},
                                CAE_CK_TOL_COMPARE);
        cae_graph_free(g[0]);
        cae_graph_free(g[1]);
    }
}
END_TEST

/* softmax_xent with logits of +-1000 (exp overflows without the shift). */
START_TEST(softmax_values)
{
    enum { B = 3, C = 4 };
    static const double z[B * C] = {1000, -1000, 0, 999, -1000, -1000, -1001, -999, 1, 2, 3, 4};
    static const double lab[B] = {3, 2, 0};
    cae_graph *g = cae_graph_new(NULL, B);
    cae_node *zn = cae_input(g, "z", 2, (int64_t[]){B, C});
    cae_node *ln = cae_input(g, "labels", 1, (int64_t[]){B});
    cae_node *loss = cae_softmax_xent(g, zn, ln);
    ck_assert_int_eq(cae_graph_compile(g, loss), 0);
    long double want = 0;
    for (int b = 0; b < B; b++) {
        long double m = -INFINITY, s = 0;
        for (int c = 0; c < C; c++) m = fmaxl(m, z[b * C + c]);
        for (int c = 0; c < C; c++) s += expl(z[b * C + c] - m);
        want += m + logl(s) - z[b * C + (int)lab[b]];
        cae_node_value(ln)->data[b] = (cae_real)lab[b];
        for (int c = 0; c < C; c++) cae_node_value(zn)->data[b * C + c] = (cae_real)z[b * C + c];
    }
    cae_graph_forward(g);
    expect_close("softmax_xent", 0, cae_node_value(loss)->data[0], want / B, 4 * REL);
    cae_graph_free(g);
}
END_TEST

/* A label outside 0..C-1 is a caller bug: an always-on assert aborts. */
START_TEST(softmax_bad_label_aborts)
{
    cae_graph *g = cae_graph_new(NULL, 2);
    cae_node *zn = cae_input(g, "z", 2, (int64_t[]){2, 3});
    cae_node *ln = cae_input(g, "labels", 1, (int64_t[]){2});
    ck_assert_int_eq(cae_graph_compile(g, cae_softmax_xent(g, zn, ln)), 0);
    cae_node_value(ln)->data[1] = 3;
    cae_graph_forward(g); /* aborts */
}
END_TEST

/* ------------------------------------------------------------ raw kernels */

/* Backward accumulates into what is there, and skips NULL gradients. */
START_TEST(kernels_accumulate)
{
    enum { B = 3, N = 5, n = B * N };
    cae_real x[n], y[n], dout[n], dx[n], dy[n], v[N], dv[N], out[n];
    tu_fill_uniform(x, n, -1, 1, 1);
    tu_fill_uniform(y, n, -1, 1, 2);
    tu_fill_uniform(dout, n, -1, 1, 3);
    tu_fill_uniform(v, N, -1, 1, 4);
    for (int i = 0; i < n; i++) dx[i] = dy[i] = 1;
    caek_mul_backward(dx, NULL, dout, x, y, n, 1);
    caek_sub_backward(NULL, dy, dout, n, 1);
    for (int i = 0; i < n; i++) {
        expect_close("mul_backward", i, dx[i], 1 + (long double)dout[i] * y[i], REL);
        expect_close("sub_backward", i, dy[i], 1 - (long double)dout[i], REL);
    }
    for (int j = 0; j < N; j++) dv[j] = 2;
    caek_mul_row_backward(NULL, dv, dout, x, v, B, N, 1);
    for (int j = 0; j < N; j++) {
        long double s = 2;
        for (int b = 0; b < B; b++) s += (long double)dout[b * N + j] * x[b * N + j];
        expect_close("mul_row_backward dv", j, dv[j], s, 4 * REL);
    }
    /* softmax rows: the gradient of each row sums to zero (+ the prior 1s) */
    const cae_real labels[B] = {0, 4, 2};
    cae_real lse[B], loss;
    caek_softmax_xent_forward(&loss, lse, x, labels, B, N, 1);
    for (int i = 0; i < n; i++) dx[i] = 1;
    caek_softmax_xent_backward(dx, 1, x, labels, lse, B, N, 1);
    for (int b = 0; b < B; b++) {
        long double s = 0;
        for (int j = 0; j < N; j++) s += dx[b * N + j] - 1;
        ck_assert_msg(fabsl(s) < 100 * REL, "softmax_xent row %d gradient sums to %Lg", b, s);
    }
    caek_sigmoid_forward(out, x, n, 1);
    for (int i = 0; i < n; i++) dx[i] = 1;
    caek_sigmoid_backward(dx, dout, out, n, 1);
    for (int i = 0; i < n; i++) {
        long double s = r_sigmoid(x[i]);
        expect_close("sigmoid_backward", i, dx[i], 1 + dout[i] * s * (1 - s), 4 * REL);
    }
}
END_TEST

/* On the parallel path (from CAEK_PAR_MIN = 4096 elements), 1 and 2
 * threads give the same bits; sums match a long double reference. _i: 0 a
 * 300 x 333 tensor, 1 a batch of 20 x 1000 (split only since the threshold
 * went from 32768 to 4096). */
START_TEST(kernels_thread_independent)
{
    const int B = _i ? 20 : 300, N = _i ? 1000 : 333, n = B * N;
    cae_real *x = cae_alloc_reals(n), *t = cae_alloc_reals(n);
    cae_real *o1 = cae_alloc_reals(n), *o2 = cae_alloc_reals(n);
    cae_real *m1 = cae_alloc_reals(n), *m2 = cae_alloc_reals(n);
    double *part = malloc((size_t)(B + caek_sum_parts(n)) * sizeof *part); /* B for bce */
    tu_fill_uniform(x, n, -3, 3, 5);
    tu_fill_uniform(t, n, 0, 1, 6);
    cae_real s1, s2;
    caek_sum_forward(&s1, x, n, part, 1);
    caek_sum_forward(&s2, x, n, part, 2);
    ck_assert_msg(s1 == s2, "sum: %.17g with 1 thread, %.17g with 2", (double)s1, (double)s2);
    long double ref = 0;
    for (int i = 0; i < n; i++) ref += x[i];
    ck_assert_msg(fabsl(s1 - ref) < 1e-4L, "sum %.10g, want %.10Lg", (double)s1, ref);
    caek_bce_logits_forward(&s1, x, t, B, N, part, 1);
    caek_bce_logits_forward(&s2, x, t, B, N, part, 2);
    ck_assert_msg(s1 == s2, "bce: %.17g with 1 thread, %.17g with 2", (double)s1, (double)s2);
    caek_sum_cols_forward(o1, x, B, N, 1);
    caek_sum_cols_forward(o2, x, B, N, 2);
    ck_assert_msg(memcmp(o1, o2, N * sizeof *o1) == 0, "sum_cols differs across threads");
    caek_sigmoid_forward(o1, x, n, 1);
    caek_sigmoid_forward(o2, x, n, 2);
    ck_assert_msg(memcmp(o1, o2, n * sizeof *o1) == 0, "sigmoid differs across threads");
    caek_softplus_forward(o1, x, n, 1);
    caek_softplus_forward(o2, x, n, 2);
    ck_assert_msg(memcmp(o1, o2, n * sizeof *o1) == 0, "softplus differs across threads");
    caek_mask_noise_forward(o1, m1, x, (cae_real)0.25, 1234, n, 1);
    caek_mask_noise_forward(o2, m2, x, (cae_real)0.25, 1234, n, 2);
    ck_assert_msg(memcmp(o1, o2, n * sizeof *o1) == 0 && memcmp(m1, m2, n * sizeof *m1) == 0,
                  "mask_noise differs across threads");
    caek_gaussian_noise_forward(o1, x, (cae_real)0.5, 99, n, 1);
    caek_gaussian_noise_forward(o2, x, (cae_real)0.5, 99, n, 2);
    ck_assert_msg(memcmp(o1, o2, n * sizeof *o1) == 0, "gaussian_noise differs across threads");
    cae_free(x), cae_free(t), cae_free(o1), cae_free(o2), cae_free(m1), cae_free(m2);
    free(part);
}
END_TEST

/* ------------------------------------------------------------------ noise */

enum { NB = 200, NN = 500, NTOT = NB * NN }; /* large: the parallel path */

typedef struct {
    cae_graph *g;
    cae_node *x, *r, *y, *loss;
} noise_graph;

static noise_graph noise_new(int mask, double level, uint64_t seed, double x_lo, double x_hi)
{
    noise_graph q;
    q.g = cae_graph_new(NULL, NB);
    cae_graph_seed(q.g, seed);
    q.x = cae_input(q.g, "x", 2, (int64_t[]){NB, NN});
    cae_input_requires_grad(q.x);
    q.r = cae_const(q.g, "R", 2, (int64_t[]){NB, NN}, 0);
    q.y = mask ? cae_mask_noise(q.g, q.x, (cae_real)level)
               : cae_gaussian_noise(q.g, q.x, (cae_real)level);
    q.loss = cae_sum(q.g, cae_mul(q.g, q.y, q.r));
    ck_assert_int_eq(cae_graph_compile(q.g, q.loss), 0);
    tu_fill_uniform(cae_node_value(q.x)->data, NTOT, x_lo, x_hi, 8);
    tu_fill_uniform(cae_node_value(q.r)->data, NTOT, -1, 1, 9);
    return q;
}

/* About a fraction nu is zeroed, the rest kept exactly, and the gradient
 * is R exactly where kept and 0 where dropped. */
START_TEST(mask_fraction_and_grad)
{
    noise_graph q = noise_new(1, 0.3, 1, 0.5, 1);
    cae_graph_forward(q.g);
    cae_graph_backward(q.g);
    int64_t dropped = 0;
    for (int64_t i = 0; i < NTOT; i++) {
        const cae_real y = cae_node_value(q.y)->data[i], dx = cae_node_value(q.x)->grad[i];
        ck_assert_msg(y == 0 || y == cae_node_value(q.x)->data[i], "mask_noise: out[%lld] = %g, x = %g",
                      (long long)i, (double)y, (double)cae_node_value(q.x)->data[i]);
        dropped += y == 0;
        const cae_real want = y == 0 ? 0 : cae_node_value(q.r)->data[i];
        ck_assert_msg(dx == want, "mask_noise: dx[%lld] = %g, want %g", (long long)i,
                      (double)dx, (double)want);
    }
    const double frac = (double)dropped / NTOT;
    ck_assert_msg(fabs(frac - 0.3) < 0.01, "mask_noise: dropped fraction %g, nu 0.3", frac);
    cae_graph_free(q.g);
}
END_TEST

/* x = 0: the output is the noise; mean ~ 0, std ~ sigma; dx = R. */
START_TEST(gaussian_stats_and_grad)
{
    noise_graph q = noise_new(0, 0.5, 2, 0, 0);
    cae_graph_forward(q.g);
    cae_graph_backward(q.g);
    double s = 0, s2 = 0;
    for (int64_t i = 0; i < NTOT; i++) {
        s += cae_node_value(q.y)->data[i], s2 += (double)cae_node_value(q.y)->data[i] * cae_node_value(q.y)->data[i];
        ck_assert_msg(cae_node_value(q.x)->grad[i] == cae_node_value(q.r)->data[i], "gaussian_noise: dx[%lld] = %g",
                      (long long)i, (double)cae_node_value(q.x)->grad[i]);
    }
    const double mean = s / NTOT, sd = sqrt(s2 / NTOT - mean * mean);
    ck_assert_msg(fabs(mean) < 0.01 && fabs(sd - 0.5) < 0.01, "mean %g, sd %g (sigma 0.5)",
                  mean, sd);
    cae_graph_free(q.g);
}
END_TEST

/* The Gaussian draws of lib/ops/vnormal.h: the quarter-turn cosine against
 * libm; the draws equal the public cae_rng_hash_normal, are floats, are
 * bounded by 5.77; their CDF, kurtosis and the angle of each (cos, sin)
 * pair are those of a standard normal within 5 standard errors. */
START_TEST(normal_draws_distribution)
{
    double worst = 0;
    for (int k = 0; k <= 1250000; k++) {
        const float t = -0.25f + (float)k * 1e-6f;
        const double e = fabs((double)cae_vcos_turns(t) - cos(2 * M_PI * (double)t));
        if (e > worst) worst = e;
    }
    ck_assert_msg(worst < 3e-7, "cos(2 pi t): worst absolute error %.3g", worst);
    enum { N = 1 << 18, NQ = 7 };
    const double zq[NQ] = {-2.5, -1.5, -0.5, 0, 0.5, 1.5, 2.5};
    int64_t below[NQ] = {0}, oct[8] = {0};
    double m2 = 0, m4 = 0;
    const uint64_t key = 0x5eed;
    for (int64_t i = 0; i < N; i += 2) {
        double z[2];
        for (int h = 0; h < 2; h++) {
            const float v = cae_vnormal(key, (uint64_t)(i + h));
            z[h] = cae_rng_hash_normal(key, (uint64_t)(i + h));
            ck_assert_msg(z[h] == (double)v, "draw %lld: %.9g inline, %.9g public", (long long)(i + h),
                          (double)v, z[h]);
            ck_assert_msg(fabs(z[h]) <= 5.78, "draw %lld = %g", (long long)(i + h), z[h]);
            for (int q = 0; q < NQ; q++) below[q] += z[h] < zq[q];
            m2 += z[h] * z[h], m4 += z[h] * z[h] * z[h] * z[h];
        }
        const double a = atan2(z[1], z[0]) + M_PI; /* [0, 2 pi] */
        oct[(int)(a / (M_PI / 4)) & 7]++;
    }
    for (int q = 0; q < NQ; q++) {
        const double p = 0.5 * erfc(-zq[q] / sqrt(2.0)), f = (double)below[q] / N;
        ck_assert_msg(fabs(f - p) < 5 * sqrt(p * (1 - p) / N), "P(z < %g) = %.5f, want %.5f", zq[q], f, p);
    }
    /* The same bits in every build (float, double, sanitized) and from the
     * vectorized kernel as from the scalar function. */
    const double pinned[6] = {0x1.a991dcp+0, -0x1.a35dep+0, 0x1.01a8dep+0,
                              -0x1.06cf18p+0, 0x1.58f7eap-3, -0x1.fb316ap-2};
    for (int k = 0; k < 6; k++) {
        const double z = cae_rng_hash_normal(key, (uint64_t)k * 1000003u);
        ck_assert_msg(z == pinned[k], "draw %d: %a, pinned %a", k * 1000003, z, pinned[k]);
    }
    enum { NK = 5001 };
    cae_real *zero = cae_alloc_reals(NK), *o = cae_alloc_reals(NK);
    for (int64_t i = 0; i < NK; i++) zero[i] = 0;
    for (int nt = 1; nt <= 2; nt++) {
        caek_gaussian_noise_forward(o, zero, 1, key, NK, nt);
        for (int64_t i = 0; i < NK; i++)
            ck_assert_msg((double)o[i] == cae_rng_hash_normal(key, (uint64_t)i),
                          "kernel draw %lld (%d threads): %a, scalar %a", (long long)i, nt, (double)o[i],
                          cae_rng_hash_normal(key, (uint64_t)i));
    }
    cae_free(zero);
    cae_free(o);
    m2 /= N, m4 /= N;
    ck_assert_msg(fabs(m4 / (m2 * m2) - 3) < 0.1, "kurtosis %.4f, want 3", m4 / (m2 * m2));
    for (int k = 0; k < 8; k++) {
        const double f = (double)oct[k] / (N / 2);
        ck_assert_msg(fabs(f - 0.125) < 5 * sqrt(0.125 * 0.875 / (N / 2)), "pair angle in octant %d: %.5f", k, f);
    }
}
END_TEST

/* Same seed: same draw; another seed or the next forward: another draw;
 * 1 or 2 threads: the same bits. _i: 0 mask, 1 gaussian. */
START_TEST(noise_draws)
{
    const int mask = _i == 0;
    const double level = mask ? 0.5 : 0.3;
    noise_graph a = noise_new(mask, level, 42, -1, 1), b = noise_new(mask, level, 42, -1, 1);
    noise_graph c = noise_new(mask, level, 43, -1, 1);
    cae_graph_set_threads(a.g, 1);
    cae_graph_set_threads(b.g, 2);
    cae_graph_forward(a.g);
    cae_graph_forward(b.g);
    cae_graph_forward(c.g);
    const size_t bytes = NTOT * sizeof(cae_real);
    ck_assert_msg(memcmp(cae_node_value(a.y)->data, cae_node_value(b.y)->data, bytes) == 0,
                  "same seed, 1 vs 2 threads: different draws");
    ck_assert_msg(cae_node_value(a.loss)->data[0] == cae_node_value(b.loss)->data[0], "loss differs across threads");
    ck_assert_msg(memcmp(cae_node_value(a.y)->data, cae_node_value(c.y)->data, bytes) != 0, "seeds 42, 43: same draw");
    cae_real *first = malloc(bytes);
    memcpy(first, cae_node_value(a.y)->data, bytes);
    cae_graph_forward(a.g);
    int64_t diff = 0;
    for (int64_t i = 0; i < NTOT; i++) diff += first[i] != cae_node_value(a.y)->data[i];
    ck_assert_msg(diff > NTOT / 4, "two forwards: only %lld of %d elements differ",
                  (long long)diff, NTOT);
    free(first);
    cae_graph_free(a.g), cae_graph_free(b.g), cae_graph_free(c.g);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ops_values");
    TCase *tc = tcase_create("values");
    tcase_add_loop_test(tc, unary_values, 0, (int)(sizeof unary / sizeof unary[0]));
    tcase_add_test(tc, binary_and_reduce_values);
    tcase_add_test(tc, vmath_accuracy);
    tcase_add_test(tc, loss_values);
    tcase_add_test(tc, bce_kept_p_same_bits);
    tcase_add_test(tc, bce_equals_composed);
    tcase_add_test(tc, free_energy_equals_composed);
    tcase_add_test(tc, softmax_values);
    suite_add_tcase(s, tc);
    /* A death test needs its own process: only when Check forks. */
    const char *fork = getenv("CK_FORK");
    if (!fork || strcmp(fork, "no") != 0) {
        tc = tcase_create("softmax_bad_label");
        tcase_add_test_raise_signal(tc, softmax_bad_label_aborts, SIGABRT);
        suite_add_tcase(s, tc);
    }
    tc = tcase_create("kernels");
    tcase_add_test(tc, kernels_accumulate);
    tcase_add_loop_test(tc, kernels_thread_independent, 0, 2);
    suite_add_tcase(s, tc);
    tc = tcase_create("noise");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, mask_fraction_and_grad);
    tcase_add_test(tc, gaussian_stats_and_grad);
    tcase_add_test(tc, normal_draws_distribution);
    tcase_add_loop_test(tc, noise_draws, 0, 2);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
