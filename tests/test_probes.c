/* Regularizers by forward mode (cae/penalty.h): the probe estimate of
 * ||J||_F^2 is unbiased (its mean over many draws is within 3 standard
 * errors of the exact fused penalty for each activation, and of a
 * brute-force Jacobian on 2- and 3-layer stacks); its gradient, probes held
 * fixed, matches finite differences; CAE+H's term vanishes without
 * corruption and estimates a brute-force ||J(x) - J(x~)||_F^2. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cae/gradcheck.h"
#include "cae/jacobian.h"
#include "cae/jvp.h"
#include "cae/ops.h"
#include "cae/penalty.h"
#include "testutil.h"

enum { B = 4, D = 7, DRAWS = 3000 };

/* Mean and standard error of the node's value over n forwards (each draws
 * new probes). */
static void draw_stats(cae_graph *g, cae_node *n, int draws, double *mean, double *se)
{
    double s = 0, s2 = 0;
    for (int i = 0; i < draws; i++) {
        cae_graph_forward(g);
        const double v = cae_node_value(n)->data[0];
        s += v;
        s2 += v * v;
    }
    *mean = s / draws;
    *se = sqrt(fmax(0, s2 / draws - *mean * *mean) / draws);
}

static void expect_unbiased(const char *what, double mean, double se, double exact)
{
    ck_assert_msg(se < 0.05 * fabs(exact), "%s: too noisy to test (se %g, exact %g)", what, se, exact);
    ck_assert_msg(fabs(mean - exact) <= 3 * se, "%s: probe mean %.8g, exact %.8g (%.2f standard errors)",
                  what, mean, exact, fabs(mean - exact) / se);
}

/* One layer, each activation, both probe kinds: the probe penalty against
 * the fused op's exact value. */
START_TEST(unbiased_one_layer)
{
    const cae_act acts[5] = {CAE_ACT_SIGMOID, CAE_ACT_TANH, CAE_ACT_RELU, CAE_ACT_SOFTPLUS,
                             CAE_ACT_LINEAR};
    for (int a = 0; a < 5; a++)
        for (int kind = 0; kind < 2; kind++) {
            enum { H = 5 };
            cae_params *p = cae_params_new();
            cae_tensor *w = cae_params_add(p, "W", 2, (int64_t[]){D, H});
            cae_tensor *bb = cae_params_add(p, "b", 1, (int64_t[]){H});
            tu_fill_uniform(w->data, w->size, -1, 1, 3 + (uint64_t)a);
            tu_fill_uniform(bb->data, H, -0.5, 0.5, 4);
            cae_graph *g = cae_graph_new(p, B);
            cae_node *x = cae_input(g, "x", 2, (int64_t[]){B, D});
            cae_node *W = cae_param(g, w), *av = cae_affine(g, x, W, cae_param(g, bb), 0);
            cae_node *h = cae_activation(g, av, acts[a]);
            cae_node *exact = cae_contractive_penalty(g, av, h, W, acts[a], CAE_W_IN_UNITS);
            cae_node *est = cae_jacobian_penalty_probes(g, x, h, 4, (cae_probe_kind)kind);
            cae_graph_output(g, exact);
            ck_assert_msg(!cae_graph_compile(g, est), "%s", cae_graph_error(g));
            tu_fill_uniform(cae_node_value(x)->data, B * D, 0, 1, 5);
            cae_graph_seed(g, 6);
            double mean, se;
            draw_stats(g, est, DRAWS, &mean, &se);
            char what[64];
            snprintf(what, sizeof what, "%s %s", cae_act_name(acts[a]), kind ? "rademacher" : "gaussian");
            expect_unbiased(what, mean, se, cae_node_value(exact)->data[0]);
            cae_graph_free(g);
            cae_params_free(p);
        }
}
END_TEST

/* 2- and 3-layer stacks (sigmoid, tanh, softplus): the probe penalty of the
 * whole encoder against the mean ||J||_F^2 of brute-force Jacobians (one
 * reverse pass per output unit). */
START_TEST(unbiased_stacks)
{
    const cae_act acts[3] = {CAE_ACT_SIGMOID, CAE_ACT_TANH, CAE_ACT_SOFTPLUS};
    const int64_t sizes[4] = {D, 6, 5, 4};
    for (int depth = 2; depth <= 3; depth++) {
        cae_params *p = cae_params_new();
        cae_graph *g = cae_graph_new(p, B);
        cae_node *x = cae_input(g, "x", 2, (int64_t[]){B, D});
        cae_input_requires_grad(x);
        cae_node *h = x;
        for (int l = 0; l < depth; l++) {
            char wn[8], bn[8];
            snprintf(wn, sizeof wn, "W%d", l);
            snprintf(bn, sizeof bn, "b%d", l);
            cae_tensor *w = cae_params_add(p, wn, 2, (int64_t[]){sizes[l], sizes[l + 1]});
            cae_tensor *bb = cae_params_add(p, bn, 1, (int64_t[]){sizes[l + 1]});
            tu_fill_uniform(w->data, w->size, -1.2, 1.2, 10 + (uint64_t)l);
            tu_fill_uniform(bb->data, bb->size, -0.5, 0.5, 20 + (uint64_t)l);
            h = cae_activation(g, cae_affine(g, h, cae_param(g, w), cae_param(g, bb), 0), acts[l]);
        }
        cae_node *est = cae_jacobian_penalty_probes(g, x, h, 3, CAE_PROBE_GAUSSIAN);
        cae_graph_output(g, h);
        ck_assert_msg(!cae_graph_compile(g, est), "%s", cae_graph_error(g));
        tu_fill_uniform(cae_node_value(x)->data, B * D, 0, 1, 30);
        const int64_t H = sizes[depth];
        double sq[B], exact = 0;
        cae_error e;
        ck_assert_msg(!cae_jacobian_graph_sqnorms(g, x, h, sq, &e), "%s", e.msg);
        for (int b = 0; b < B; b++) exact += sq[b] / B;
        (void)H;
        cae_graph_seed(g, 31);
        double mean, se;
        draw_stats(g, est, DRAWS, &mean, &se);
        char what[32];
        snprintf(what, sizeof what, "%d layers", depth);
        expect_unbiased(what, mean, se, exact);
        cae_graph_free(g);
        cae_params_free(p);
    }
}
END_TEST

/* The gradient of the probe penalty (the probes of one draw held fixed:
 * the checker replays the graph's RNG) against finite differences, w.r.t.
 * every parameter and the input, in a tied auto-encoder's objective. */
START_TEST(gradient_matches_finite_differences)
{
    enum { H = 5 };
    const cae_act acts[3] = {CAE_ACT_SIGMOID, CAE_ACT_TANH, CAE_ACT_SOFTPLUS};
    for (int a = 0; a < 3; a++) {
        cae_params *p = cae_params_new();
        cae_tensor *w = cae_params_add(p, "W", 2, (int64_t[]){D, H});
        cae_tensor *bb = cae_params_add(p, "b", 1, (int64_t[]){H});
        cae_tensor *cc = cae_params_add(p, "c", 1, (int64_t[]){D});
        tu_fill_uniform(w->data, w->size, -1, 1, 40);
        tu_fill_uniform(bb->data, H, -0.5, 0.5, 41);
        tu_fill_uniform(cc->data, D, -0.5, 0.5, 42);
        cae_graph *g = cae_graph_new(p, B);
        cae_node *x = cae_input(g, "x", 2, (int64_t[]){B, D});
        cae_input_requires_grad(x);
        cae_node *W = cae_param(g, w);
        cae_node *h = cae_activation(g, cae_affine(g, x, W, cae_param(g, bb), 0), acts[a]);
        cae_node *rec = cae_bce_logits(g, cae_affine(g, h, W, cae_param(g, cc), 1), x);
        cae_node *loss = cae_add(g, rec, cae_scale(g, cae_jacobian_penalty_probes(g, x, h, 3, CAE_PROBE_GAUSSIAN), 0.7));
        ck_assert_msg(!cae_graph_compile(g, loss), "%s", cae_graph_error(g));
        tu_fill_uniform(cae_node_value(x)->data, B * D, 0.05, 0.95, 43);
        cae_graph_seed(g, 44);
        cae_node *wrt[4] = {W, cae_param(g, bb), cae_param(g, cc), x};
        for (int k = 0; k < 4; k++) {
            cae_gradcheck_report r;
            TU_GRADCHECK(g, wrt[k], 0, 1, &r);
            ck_assert_msg(r.max_rel_err <= TU_FD_TOL, "%s d/d%s: rel err %g at %lld: %.10g vs %.10g",
                          cae_act_name(acts[a]), cae_node_name(wrt[k]), r.max_rel_err,
                          (long long)r.worst_index, r.worst_analytic, r.worst_numeric);
        }
        cae_graph_free(g);
        cae_params_free(p);
    }
}
END_TEST

/* CAE+H: x~ given (C copies): without corruption the term is 0; with a
 * fixed corruption its mean over probe draws estimates the brute-force
 * mean of ||J(x_b) - J(x~_cb)||_F^2 (closed-form one-layer Jacobians). */
START_TEST(higher_order_term)
{
    enum { H = 5, C = 3 };
    cae_params *p = cae_params_new();
    cae_tensor *w = cae_params_add(p, "W", 2, (int64_t[]){D, H});
    cae_tensor *bb = cae_params_add(p, "b", 1, (int64_t[]){H});
    tu_fill_uniform(w->data, w->size, -1.5, 1.5, 50);
    tu_fill_uniform(bb->data, H, -0.5, 0.5, 51);
    for (int sigma0 = 1; sigma0 >= 0; sigma0--) {
        cae_graph *g = cae_graph_new(p, B);
        cae_node *x = cae_input(g, "x", 2, (int64_t[]){B, D});
        cae_node *xt = cae_input(g, "xt", 2, (int64_t[]){C * B, D});
        cae_node *W = cae_param(g, w), *b = cae_param(g, bb);
        cae_node *h = cae_sigmoid(g, cae_affine(g, x, W, b, 0));
        cae_node *ht = cae_sigmoid(g, cae_affine(g, xt, W, b, 0));
        cae_node *term = cae_jacobian_difference_probes(g, x, h, xt, ht, 4, CAE_PROBE_RADEMACHER);
        ck_assert_msg(!cae_graph_compile(g, term), "%s", cae_graph_error(g));
        cae_real *xv = cae_node_value(x)->data, *xtv = cae_node_value(xt)->data;
        tu_fill_uniform(xv, B * D, 0, 1, 52);
        cae_real noise[C * B * D];
        tu_fill_uniform(noise, C * B * D, -0.4, 0.4, 53);
        for (int c = 0; c < C; c++)
            for (int i = 0; i < B * D; i++) xtv[c * B * D + i] = xv[i] + (sigma0 ? noise[c * B * D + i] : 0);
        cae_graph_seed(g, 54);
        if (!sigma0) {
            for (int i = 0; i < 10; i++) {
                cae_graph_forward(g);
                ck_assert_msg(fabs(cae_node_value(term)->data[0]) < 1e-6, "sigma 0: the term is %g",
                              (double)cae_node_value(term)->data[0]);
            }
        } else {
            double brute = 0;
            cae_real J[H * D], Jt[H * D];
            cae_error e;
            for (int c = 0; c < C; c++)
                for (int r = 0; r < B; r++) {
                    ck_assert(!cae_jacobian_layer(xv + r * D, w->data, bb->data, D, H, CAE_ACT_SIGMOID,
                                                  CAE_W_IN_UNITS, J, &e));
                    ck_assert(!cae_jacobian_layer(xtv + (c * B + r) * D, w->data, bb->data, D, H,
                                                  CAE_ACT_SIGMOID, CAE_W_IN_UNITS, Jt, &e));
                    for (int i = 0; i < H * D; i++)
                        brute += ((double)J[i] - Jt[i]) * ((double)J[i] - Jt[i]) / (C * B);
                }
            double mean, se;
            draw_stats(g, term, DRAWS, &mean, &se);
            expect_unbiased("cae+h term", mean, se, brute);
        }
        cae_graph_free(g);
    }
    cae_params_free(p);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("probes");
    TCase *t = tcase_create("probes");
    tcase_set_timeout(t, 120);
    tcase_add_test(t, unbiased_one_layer);
    tcase_add_test(t, unbiased_stacks);
    tcase_add_test(t, gradient_matches_finite_differences);
    tcase_add_test(t, higher_order_term);
    suite_add_tcase(s, t);
    return tu_run(s);
}
