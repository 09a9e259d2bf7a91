/* Exact Jacobians (cae/jacobian.h): the closed form equals the brute-force
 * reverse-mode Jacobian element by element (not a vector-Jacobian product:
 * every row is checked), both equal a finite-difference Jacobian, the
 * squared norms equal the penalty's per-example value, reverse mode handles
 * a two-layer encoder (the chain rule), and misuse returns a status instead
 * of aborting. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cae/jacobian.h"
#include "cae/ops.h"
#include "cae/penalty.h"
#include "testutil.h"

#ifdef CAE_REAL_DOUBLE
#define JAC_TOL 1e-11
#else
#define JAC_TOL 1e-5
#endif

static const cae_act acts[] = {CAE_ACT_SIGMOID, CAE_ACT_TANH, CAE_ACT_RELU, CAE_ACT_SOFTPLUS,
                               CAE_ACT_LINEAR};
#define N_ACTS 5
static const char *lay_name(cae_wlayout l) { return l == CAE_W_IN_UNITS ? "DxH" : "HxD"; }

/* One encoder layer h = act(x W (+ b)) on its own store; h is the target,
 * and optionally a penalty is kept on the tape too. */
typedef struct enc {
    cae_params *p;
    cae_tensor *Wt, *bt;
    cae_graph *g;
    cae_node *x, *a, *h, *pen;
} enc;

static enc enc_new(int64_t B, int64_t D, int64_t H, cae_act act, cae_wlayout lay, int with_pen,
                   uint64_t seed)
{
    enc e;
    e.p = cae_params_new();
    int64_t ws[2] = {lay == CAE_W_IN_UNITS ? D : H, lay == CAE_W_IN_UNITS ? H : D};
    e.Wt = cae_params_add(e.p, "W", 2, ws);
    e.bt = cae_params_add(e.p, "b", 1, &H);
    tu_fill_uniform(e.Wt->data, e.Wt->size, -1.5 / sqrt((double)D), 1.5 / sqrt((double)D), seed);
    tu_fill_uniform(e.bt->data, H, -0.5, 0.5, seed + 1);
    e.g = cae_graph_new(e.p, B);
    e.x = cae_input(e.g, "x", 2, (int64_t[]){B, D});
    cae_input_requires_grad(e.x);
    tu_fill_uniform(cae_node_value(e.x)->data, B * D, 0, 1, seed + 2);
    cae_node *W = cae_param(e.g, e.Wt);
    e.a = cae_bias_add(e.g, cae_matmul(e.g, e.x, W, 0, lay == CAE_W_UNITS_IN), cae_param(e.g, e.bt));
    e.h = cae_activation(e.g, e.a, act);
    e.pen = NULL;
    cae_node *target = e.h;
    if (with_pen) {
        e.pen = with_pen == 1 ? cae_contractive_penalty(e.g, e.a, e.h, W, act, lay)
                              : cae_contractive_penalty_composed(e.g, e.a, e.h, W, act, lay);
        cae_graph_output(e.g, e.h);
        target = e.pen;
    }
    ck_assert_msg(!cae_graph_compile(e.g, target), "%s", cae_graph_error(e.g));
    return e;
}

static void enc_free(enc *e)
{
    cae_graph_free(e->g);
    cae_params_free(e->p);
}

static double max_abs(const cae_real *v, int64_t n)
{
    double m = 0;
    for (int64_t i = 0; i < n; i++) m = fmax(m, fabs((double)v[i]));
    return m;
}

/* ------------------------------- closed form = reverse mode, element-wise */

START_TEST(closed_form_equals_reverse_mode)
{
    static const int64_t shapes[][3] = {{1, 7, 5}, {3, 7, 5}, {4, 33, 17}, {2, 100, 130}};
    const cae_act act = acts[_i];
    for (int l = 0; l < 2; l++)
        for (int s = 0; s < 4; s++) {
            const int64_t B = shapes[s][0], D = shapes[s][1], H = shapes[s][2];
            const cae_wlayout lay = (cae_wlayout)l;
            enc e = enc_new(B, D, H, act, lay, 0, 10 + (uint64_t)s);
            cae_real *J = malloc((size_t)(B * H * D) * sizeof *J);
            cae_real *Jc = malloc((size_t)(H * D) * sizeof *Jc);
            cae_real *Jp = malloc((size_t)(H * D) * sizeof *Jp);
            ck_assert_int_eq(cae_jacobian_graph(e.g, e.x, e.h, J, NULL), CAE_OK);
            const double scale = max_abs(J, B * H * D);
            ck_assert_msg(scale > 0, "%s: all-zero Jacobian", cae_act_name(act));
            for (int64_t b = 0; b < B; b++) {
                const cae_real *xb = cae_node_value(e.x)->data + b * D;
                const cae_real *ab = cae_node_value(e.a)->data + b * H;
                ck_assert_int_eq(cae_jacobian_layer(xb, e.Wt->data, e.bt->data, D, H, act, lay, Jc, NULL),
                                 CAE_OK);
                ck_assert_int_eq(cae_jacobian_layer_pre(ab, e.Wt->data, D, H, act, lay, Jp, NULL),
                                 CAE_OK);
                for (int64_t j = 0; j < H; j++)
                    for (int64_t i = 0; i < D; i++) {
                        const double r = J[(b * H + j) * D + i], c = Jc[j * D + i],
                                     cp = Jp[j * D + i];
                        ck_assert_msg(fabs(r - c) <= JAC_TOL * scale && fabs(cp - c) <= JAC_TOL * scale,
                                      "%s W %s B=%lld D=%lld H=%lld: J[b=%lld][j=%lld][i=%lld] "
                                      "reverse %.9g, closed form %.9g (from a: %.9g)",
                                      cae_act_name(act), lay_name(lay), (long long)B, (long long)D,
                                      (long long)H, (long long)b, (long long)j, (long long)i, r, c,
                                      cp);
                    }
            }
            free(J);
            free(Jc);
            free(Jp);
            enc_free(&e);
        }
}
END_TEST

/* ----------------------- ||J||^2 = the penalty's per-example value */

START_TEST(sqnorm_equals_penalty)
{
    const cae_act act = acts[_i];
    static const int64_t shapes[][3] = {{1, 7, 5}, {3, 33, 17}, {20, 100, 130}};
    for (int l = 0; l < 2; l++)
        for (int s = 0; s < 3; s++)
            for (int form = 1; form <= 2; form++) {
                const int64_t B = shapes[s][0], D = shapes[s][1], H = shapes[s][2];
                const cae_wlayout lay = (cae_wlayout)l;
                enc e = enc_new(B, D, H, act, lay, form, 50 + (uint64_t)s);
                double *brute = malloc((size_t)B * sizeof *brute);
                double *closed = malloc((size_t)B * sizeof *closed);
                double *closed_pre = malloc((size_t)B * sizeof *closed_pre);
                ck_assert_int_eq(cae_jacobian_graph_sqnorms(e.g, e.x, e.h, brute, NULL), CAE_OK);
                cae_graph_forward(e.g); /* the backward passes left values intact; be explicit */
                ck_assert_int_eq(cae_jacobian_sqnorms(cae_node_value(e.x)->data, e.Wt->data,
                                                      e.bt->data, B, D, H, act, lay, closed, NULL),
                                 CAE_OK);
                ck_assert_int_eq(cae_jacobian_sqnorms_pre(cae_node_value(e.a)->data, e.Wt->data,
                                                          B, D, H, act, lay, closed_pre, NULL),
                                 CAE_OK);
                double mean = 0;
                for (int64_t b = 0; b < B; b++) {
                    ck_assert_msg(fabs(brute[b] - closed[b]) <= 10 * JAC_TOL * closed[b] &&
                                      fabs(closed_pre[b] - closed[b]) <= 10 * JAC_TOL * closed[b],
                                  "%s W %s B=%lld: ||J_%lld||^2 reverse %.9g closed %.9g (from "
                                  "a %.9g)",
                                  cae_act_name(act), lay_name(lay), (long long)B, (long long)b,
                                  brute[b], closed[b], closed_pre[b]);
                    mean += brute[b] / (double)B;
                }
                const double v = cae_node_value(e.pen)->data[0];
                ck_assert_msg(fabs(v - mean) <= 10 * JAC_TOL * mean && mean > 0,
                              "%s %s W %s B=%lld D=%lld H=%lld: penalty %.9g, mean ||J||^2 %.9g",
                              form == 1 ? "fused" : "composed", cae_act_name(act), lay_name(lay),
                              (long long)B, (long long)D, (long long)H, v, mean);
                free(brute);
                free(closed);
                free(closed_pre);
                enc_free(&e);
            }
}
END_TEST

/* ------------------------------- finite-difference Jacobian, one case */

START_TEST(finite_difference_jacobian)
{
    const int64_t B = 2, D = 7, H = 5;
    for (int l = 0; l < 2; l++) {
        const cae_wlayout lay = (cae_wlayout)l;
        enc e = enc_new(B, D, H, CAE_ACT_SIGMOID, lay, 0, 70);
        cae_real *J = malloc((size_t)(B * H * D) * sizeof *J);
        cae_real *Jc = malloc((size_t)(H * D) * sizeof *Jc);
        ck_assert_int_eq(cae_jacobian_graph(e.g, e.x, e.h, J, NULL), CAE_OK);
        cae_real *xv = cae_node_value(e.x)->data;
        const cae_real *hv = cae_node_value(e.h)->data;
        for (int64_t b = 0; b < B; b++) {
            ck_assert_int_eq(cae_jacobian_layer(xv + b * D, e.Wt->data, e.bt->data, D, H,
                                                CAE_ACT_SIGMOID, lay, Jc, NULL),
                             CAE_OK);
            for (int64_t i = 0; i < D; i++) {
                const cae_real orig = xv[b * D + i];
                double hp[16], hm[16];
                xv[b * D + i] = (cae_real)(orig + TU_FD_EPS);
                cae_graph_forward(e.g);
                for (int64_t j = 0; j < H; j++) hp[j] = hv[b * H + j];
                xv[b * D + i] = (cae_real)(orig - TU_FD_EPS);
                cae_graph_forward(e.g);
                for (int64_t j = 0; j < H; j++) hm[j] = hv[b * H + j];
                xv[b * D + i] = orig;
                for (int64_t j = 0; j < H; j++) {
                    const double fd = (hp[j] - hm[j]) / (2 * TU_FD_EPS);
                    const double c = Jc[j * D + i], r = J[(b * H + j) * D + i];
                    const double den = fmax(fabs(c), TU_FD_FLOOR);
                    ck_assert_msg(fabs(fd - c) <= TU_FD_TOL * den && fabs(fd - r) <= TU_FD_TOL * den,
                                  "W %s: dh_%lld/dx_%lld (example %lld): finite difference %.9g, "
                                  "closed form %.9g, reverse %.9g",
                                  lay_name(lay), (long long)j, (long long)i, (long long)b, fd, c, r);
                }
            }
        }
        free(J);
        free(Jc);
        enc_free(&e);
    }
}
END_TEST

/* ----------------------------- any encoder: two layers, the chain rule */

START_TEST(two_layer_encoder)
{
    /* h2 = tanh(sigmoid(x W1 + b1) W2^T + b2), x: B x 7, h1: 6, h2: 4. */
    const int64_t B = 3, D = 7, H1 = 6, H2 = 4;
    cae_params *p = cae_params_new();
    cae_tensor *W1 = cae_params_add(p, "W1", 2, (int64_t[]){D, H1});
    cae_tensor *b1 = cae_params_add(p, "b1", 1, &H1);
    cae_tensor *W2 = cae_params_add(p, "W2", 2, (int64_t[]){H2, H1});
    cae_tensor *b2 = cae_params_add(p, "b2", 1, &H2);
    tu_fill_uniform(W1->data, W1->size, -1, 1, 1);
    tu_fill_uniform(b1->data, H1, -0.5, 0.5, 2);
    tu_fill_uniform(W2->data, W2->size, -1.5, 1.5, 3);
    tu_fill_uniform(b2->data, H2, -0.5, 0.5, 4);
    cae_graph *g = cae_graph_new(p, B);
    cae_node *x = cae_input(g, "x", 2, (int64_t[]){B, D});
    cae_input_requires_grad(x);
    tu_fill_uniform(cae_node_value(x)->data, B * D, 0, 1, 5);
    cae_node *h1 = cae_sigmoid(g, cae_bias_add(g, cae_matmul(g, x, cae_param(g, W1), 0, 0),
                                               cae_param(g, b1)));
    cae_node *h2 = cae_tanh(g, cae_bias_add(g, cae_matmul(g, h1, cae_param(g, W2), 0, 1),
                                            cae_param(g, b2)));
    ck_assert_msg(!cae_graph_compile(g, h2), "%s", cae_graph_error(g));
    cae_real J[3 * 4 * 7], J1[6 * 7], J2[4 * 6];
    double sq[3];
    ck_assert_int_eq(cae_jacobian_graph(g, x, h2, J, NULL), CAE_OK);
    ck_assert_int_eq(cae_jacobian_graph_sqnorms(g, x, h2, sq, NULL), CAE_OK);
    for (int64_t b = 0; b < B; b++) {
        const cae_real *xb = cae_node_value(x)->data + b * D;
        const cae_real *h1b = cae_node_value(h1)->data + b * H1;
        ck_assert_int_eq(cae_jacobian_layer(xb, W1->data, b1->data, D, H1, CAE_ACT_SIGMOID,
                                            CAE_W_IN_UNITS, J1, NULL), 0);
        ck_assert_int_eq(cae_jacobian_layer(h1b, W2->data, b2->data, H1, H2, CAE_ACT_TANH,
                                            CAE_W_UNITS_IN, J2, NULL), 0);
        double norm2 = 0;
        for (int64_t k = 0; k < H2; k++)
            for (int64_t i = 0; i < D; i++) {
                double c = 0; /* (J2 J1)_ki */
                for (int64_t j = 0; j < H1; j++) c += (double)J2[k * H1 + j] * J1[j * D + i];
                norm2 += c * c;
                const double r = J[(b * H2 + k) * D + i];
                ck_assert_msg(fabs(r - c) <= 10 * JAC_TOL * fmax(fabs(c), 0.1),
                              "two layers: J[b=%lld][%lld][%lld] reverse %.9g, J2 J1 %.9g",
                              (long long)b, (long long)k, (long long)i, r, c);
            }
        ck_assert_msg(fabs(sq[b] - norm2) <= 10 * JAC_TOL * norm2,
                      "two layers: ||J_%lld||^2 reverse %.9g, product %.9g", (long long)b, sq[b],
                      norm2);
    }
    cae_graph_free(g);
    cae_params_free(p);
}
END_TEST

/* ----------------------------------------- misuse returns a status */

START_TEST(errors_are_statuses)
{
    cae_real J[64], Wv[6] = {1, 2, 3, 4, 5, 6}, av[2] = {0.1, 0.2};
    double sq[4];
    /* closed form: bad arguments */
    ck_assert_int_eq(cae_jacobian_layer_pre(NULL, Wv, 3, 2, CAE_ACT_SIGMOID, CAE_W_IN_UNITS, J, NULL),
                     CAE_ERR_ARG);
    ck_assert_int_eq(cae_jacobian_layer_pre(av, Wv, 0, 2, CAE_ACT_SIGMOID, CAE_W_IN_UNITS, J, NULL),
                     CAE_ERR_ARG);
    ck_assert_int_eq(cae_jacobian_layer_pre(av, Wv, 3, 2, (cae_act)99, CAE_W_IN_UNITS, J, NULL),
                     CAE_ERR_ARG);
    ck_assert_int_eq(cae_jacobian_sqnorms_pre(av, Wv, 1, 3, 2, CAE_ACT_TANH, (cae_wlayout)5, sq, NULL),
                     CAE_ERR_ARG);
    ck_assert_int_eq(cae_jacobian_sqnorms(av, Wv, NULL, 1, 3, 2, CAE_ACT_TANH, CAE_W_IN_UNITS,
                                          NULL, NULL),
                     CAE_ERR_ARG);
    ck_assert(isnan(cae_act_derivative((cae_act)99, 0)));

    /* reverse mode: x without a gradient */
    cae_params *p = cae_params_new();
    cae_tensor *W = cae_params_add(p, "W", 2, (int64_t[]){3, 2});
    cae_graph *g = cae_graph_new(p, 2);
    cae_node *x = cae_input(g, "x", 2, (int64_t[]){2, 3});
    cae_node *h = cae_sigmoid(g, cae_matmul(g, x, cae_param(g, W), 0, 0));
    cae_node *off = cae_tanh(g, x); /* never on the tape */
    ck_assert_int_eq(cae_jacobian_graph(g, x, h, J, NULL), CAE_ERR_COMPILE); /* not compiled */
    ck_assert(!cae_graph_compile(g, h));
    ck_assert_int_eq(cae_jacobian_graph(g, x, h, J, NULL), CAE_ERR_NOGRAD);
    ck_assert_int_eq(cae_jacobian_graph(g, x, off, J, NULL), CAE_ERR_TAPE);
    ck_assert_int_eq(cae_jacobian_graph(g, NULL, h, J, NULL), CAE_ERR_ARG);
    ck_assert_int_eq(cae_jacobian_graph(g, x, h, NULL, NULL), CAE_ERR_ARG);
    ck_assert_int_eq(cae_jacobian_graph_sqnorms(NULL, x, h, sq, NULL), CAE_ERR_ARG);
    cae_input_requires_grad(x); /* releases the compiled blocks */
    ck_assert_int_eq(cae_jacobian_graph(g, x, h, J, NULL), CAE_ERR_COMPILE);
    ck_assert(!cae_graph_compile(g, h));
    ck_assert_int_eq(cae_jacobian_graph(g, x, h, J, NULL), CAE_OK);
    /* parameters moved since compile: a status, not an abort */
    cae_params_add(p, "V", 1, (int64_t[]){3});
    ck_assert_int_eq(cae_jacobian_graph(g, x, h, J, NULL), CAE_ERR_COMPILE);
    cae_graph_free(g);

    /* batch mismatch: h computed from another input of batch 3 */
    g = cae_graph_new(p, 2);
    x = cae_input(g, "x", 2, (int64_t[]){2, 3});
    cae_input_requires_grad(x);
    cae_node *y = cae_input(g, "y", 2, (int64_t[]){3, 3});
    h = cae_matmul(g, y, cae_param(g, cae_params_get(p, "W")), 0, 0);
    cae_graph_output(g, x);
    ck_assert(!cae_graph_compile(g, h));
    ck_assert_int_eq(cae_jacobian_graph(g, x, h, J, NULL), CAE_ERR_SHAPE);
    cae_graph_free(g);

    /* the message says what to do */
    cae_error e;
    g = cae_graph_new(p, 2);
    x = cae_input(g, "x", 2, (int64_t[]){2, 3});
    h = cae_sigmoid(g, cae_matmul(g, x, cae_param(g, cae_params_get(p, "W")), 0, 0));
    ck_assert(!cae_graph_compile(g, h));
    ck_assert_int_eq(cae_jacobian_graph(g, x, h, J, &e), CAE_ERR_NOGRAD);
    ck_assert_int_eq(e.status, CAE_ERR_NOGRAD);
    ck_assert_msg(strstr(e.msg, "cae_input_requires_grad"), "%s", e.msg);
    ck_assert_int_eq(cae_jacobian_graph(g, x, NULL, J, &e), CAE_ERR_ARG);
    ck_assert_msg(strstr(e.msg, "invalid argument"), "%s", e.msg);
    cae_graph_free(g);
    cae_params_free(p);
}
END_TEST

/* h independent of x: the Jacobian is zero, not garbage. */
START_TEST(independent_output_is_zero)
{
    cae_params *p = cae_params_new();
    cae_tensor *w = cae_params_add(p, "w", 2, (int64_t[]){2, 3});
    tu_fill_uniform(w->data, 6, -1, 1, 1);
    cae_graph *g = cae_graph_new(p, 2);
    cae_node *x = cae_input(g, "x", 2, (int64_t[]){2, 4});
    cae_input_requires_grad(x);
    cae_node *h = cae_sigmoid(g, cae_param(g, w)); /* 2 x 3, from W only */
    cae_graph_output(g, x);
    ck_assert(!cae_graph_compile(g, h));
    cae_real J[2 * 3 * 4];
    for (int i = 0; i < 24; i++) J[i] = 7;
    ck_assert_int_eq(cae_jacobian_graph(g, x, h, J, NULL), CAE_OK);
    for (int i = 0; i < 24; i++) ck_assert_msg(J[i] == 0, "J[%d] = %g, want 0", i, (double)J[i]);
    cae_graph_free(g);
    cae_params_free(p);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("jacobian");
    TCase *tc = tcase_create("closed_form_equals_reverse_mode");
    tcase_add_loop_test(tc, closed_form_equals_reverse_mode, 0, N_ACTS);
    suite_add_tcase(s, tc);
    tc = tcase_create("sqnorm_equals_penalty");
    tcase_add_loop_test(tc, sqnorm_equals_penalty, 0, N_ACTS);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    tc = tcase_create("finite_difference_jacobian");
    tcase_add_test(tc, finite_difference_jacobian);
    suite_add_tcase(s, tc);
    tc = tcase_create("two_layer_encoder");
    tcase_add_test(tc, two_layer_encoder);
    suite_add_tcase(s, tc);
    tc = tcase_create("errors");
    tcase_add_test(tc, errors_are_statuses);
    tcase_add_test(tc, independent_output_is_zero);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
