/* Metrics (cae/metrics.h): the closed-form average ||J|| equals the mean of
 * brute-force reverse-mode Jacobian norms; the deep metric equals the norm
 * of the product of independently computed layer Jacobians (and reverse
 * mode through the whole stack); SAT on hand-made codes; the reconstruction
 * equals the pretraining task's; codes equal a by-hand forward; misuse is
 * an error with a message. Odd sizes and a batch that leaves a remainder,
 * so both compiled graphs (full and last batch) are exercised. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cae/jacobian.h"
#include "cae/metrics.h"
#include "cae/task.h"
#include "cae/ops.h"
#include "testutil.h"

#ifdef CAE_REAL_DOUBLE
#define REL_TOL 1e-10
#else
#define REL_TOL 2e-4
#endif

static const cae_act acts[] = {CAE_ACT_SIGMOID, CAE_ACT_TANH, CAE_ACT_SOFTPLUS, CAE_ACT_RELU};
#define N_ACTS 4

static void assert_close(const char *what, double got, double want, double tol)
{
    const double err = fabs(got - want) / fmax(1e-12, fabs(want));
    ck_assert_msg(err <= tol, "%s: got %.12g, want %.12g (rel. error %.3g > %.3g)", what, got, want, err,
                  tol);
}

/* A dataset of n examples of dim values U(0,1), labels i % 3 (not owned). */
static cae_dataset make_data(int64_t n, int64_t dim, uint64_t seed)
{
    cae_dataset d;
    memset(&d, 0, sizeof d);
    d.n = n;
    d.dim = dim;
    d.rows = (int)dim;
    d.cols = 1;
    d.n_classes = 3;
    d.x = cae_alloc_reals((size_t)(n * dim));
    d.y = calloc((size_t)n, sizeof *d.y);
    ck_assert(d.x && d.y);
    tu_fill_uniform(d.x, n * dim, 0, 1, seed);
    for (int64_t i = 0; i < n; i++) d.y[i] = (int32_t)(i % 3);
    return d;
}

static void free_data(cae_dataset *d)
{
    cae_free(d->x);
    free(d->y);
}

/* A stack of `depth` layers with sizes[0..depth] and the given activations;
 * weights scaled so no unit is trivially saturated. */
static cae_params *make_stack(int depth, const int64_t *sizes, const cae_act *act, int untied,
                              cae_layer_config *L, uint64_t seed)
{
    cae_params *p = cae_params_new();
    cae_rng r;
    cae_rng_seed(&r, seed, 1);
    cae_error err;
    for (int k = 1; k <= depth; k++) {
        cae_layer_config_default(&L[k - 1], CAE_MODEL_CAE, sizes[k - 1], sizes[k]);
        L[k - 1].act = act[k - 1];
        L[k - 1].untied = untied && k == 1;
        ck_assert_msg(!cae_layer_params(p, k, &L[k - 1], seed, &err), "%s", err.msg);
        cae_tensor *W = cae_layer_tensor(p, k, "W"), *b = cae_layer_tensor(p, k, "b");
        const double a = 1.5 / sqrt((double)sizes[k - 1]);
        tu_fill_uniform(W->data, W->size, -a, a, seed + 10 * (uint64_t)k);
        tu_fill_uniform(b->data, b->size, -0.5, 0.5, seed + 10 * (uint64_t)k + 1);
        tu_fill_uniform(cae_layer_tensor(p, k, "c")->data, sizes[k - 1], -0.3, 0.3, seed + 7);
    }
    return p;
}

static cae_metrics run_metrics(cae_params *p, int depth, const cae_layer_config *L,
                               const cae_dataset *d, int64_t batch, int64_t max_examples)
{
    cae_metrics_config mc;
    cae_metrics_config_default(&mc);
    mc.batch = batch;
    mc.max_examples = max_examples;
    mc.threads = 1;
    cae_metrics m;
    cae_error err;
    ck_assert_msg(!cae_metrics_compute(p, depth, L, d, &mc, &m, &err), "%s", err.msg);
    return m;
}

/* Per-example ||J||^2 by reverse mode over a fresh graph of the stack. */
static void reverse_sqnorms(cae_params *p, int depth, const cae_layer_config *L, const cae_dataset *d,
                            double *sq)
{
    cae_graph *g = cae_graph_new(p, d->n);
    cae_node *x = cae_input(g, "x", 2, (int64_t[]){d->n, d->dim});
    cae_input_requires_grad(x);
    cae_node *h = x;
    for (int k = 1; k <= depth; k++) h = cae_encoder(g, p, k, L[k - 1].act, h, NULL);
    ck_assert_msg(!cae_graph_compile(g, h), "%s", cae_graph_error(g));
    cae_graph_set_threads(g, 1);
    memcpy(cae_node_value(x)->data, d->x, (size_t)(d->n * d->dim) * sizeof(cae_real));
    cae_error e;
    ck_assert_msg(cae_jacobian_graph_sqnorms(g, x, h, sq, &e) == CAE_OK, "%s", e.msg);
    cae_graph_free(g);
}

/* ------------------------------------------- closed form = reverse mode */

START_TEST(closed_form_equals_reverse_mode)
{
    const cae_act act = acts[_i];
    const int64_t sizes[2] = {7, 5}, n = 13;
    cae_layer_config L[1];
    cae_params *p = make_stack(1, sizes, &act, 0, L, 100 + (uint64_t)_i);
    cae_dataset d = make_data(n, sizes[0], 3);
    cae_metrics m = run_metrics(p, 1, L, &d, 4, 0); /* batches 4,4,4,1 */
    double sq[13], mean_sq = 0, mean_norm = 0;
    reverse_sqnorms(p, 1, L, &d, sq);
    for (int i = 0; i < n; i++) {
        mean_sq += sq[i] / (double)n;
        mean_norm += sqrt(sq[i]) / (double)n;
    }
    ck_assert_int_eq(m.n_jacobian, n);
    ck_assert_int_eq(m.n_examples, n);
    ck_assert_int_eq(m.depth, 1);
    assert_close(cae_act_name(act), m.jac_sqnorm, mean_sq, REL_TOL);
    assert_close(cae_act_name(act), m.jac_norm, mean_norm, REL_TOL);
    assert_close("per entry", m.jac_per_entry, mean_sq / (7.0 * 5.0), REL_TOL);
    ck_assert_msg(m.jac_norm * m.jac_norm <= m.jac_sqnorm * (1 + 1e-9), "Jensen: mean norm^2 <= mean sqnorm");

    /* max_examples: the first 6 examples only. */
    cae_metrics m6 = run_metrics(p, 1, L, &d, 4, 6);
    double s6 = 0;
    for (int i = 0; i < 6; i++) s6 += sq[i] / 6.0;
    ck_assert_int_eq(m6.n_jacobian, 6);
    ck_assert_int_eq(m6.n_examples, n);
    assert_close("max_examples", m6.jac_sqnorm, s6, REL_TOL);
    free_data(&d);
    cae_params_free(p);
}
END_TEST

/* ----------------------------------------------- deep = product of layers */

/* h = act(x W + b) in double; x: D, W: D x H, out: H. */
static void layer_forward(const double *x, const cae_tensor *W, const cae_tensor *b, cae_act act,
                          double *out)
{
    const int64_t D = W->shape[0], H = W->shape[1];
    for (int64_t j = 0; j < H; j++) {
        double a = b->data[j];
        for (int64_t i = 0; i < D; i++) a += x[i] * (double)W->data[i * H + j];
        switch (act) {
        case CAE_ACT_SIGMOID: out[j] = 1 / (1 + exp(-a)); break;
        case CAE_ACT_TANH: out[j] = tanh(a); break;
        case CAE_ACT_RELU: out[j] = a > 0 ? a : 0; break;
        case CAE_ACT_SOFTPLUS: out[j] = log1p(exp(a)); break;
        default: out[j] = a;
        }
    }
}

START_TEST(deep_equals_product_of_layer_jacobians)
{
    /* depth 2 (sigmoid then tanh) and depth 3 (sigmoid, softplus, sigmoid) */
    const int depth = _i == 0 ? 2 : 3;
    const int64_t sizes[4] = {9, 6, 5, 4}, n = 7;
    const cae_act act[3] = {CAE_ACT_SIGMOID, _i == 0 ? CAE_ACT_TANH : CAE_ACT_SOFTPLUS, CAE_ACT_SIGMOID};
    cae_layer_config L[3];
    cae_params *p = make_stack(depth, sizes, act, 0, L, 200 + (uint64_t)_i);
    cae_dataset d = make_data(n, sizes[0], 5);
    cae_metrics m = run_metrics(p, depth, L, &d, 3, 0); /* batches 3,3,1 */

    /* Independently: J_l = cae_jacobian_layer at the layer's input (closed
     * form per layer), multiplied naively in double. */
    double mean_sq = 0, mean_norm = 0, sq[7];
    for (int64_t e = 0; e < n; e++) {
        double in[16], next[16], prod[16 * 16], tmp[16 * 16];
        cae_real xin[16], Jl[16 * 16];
        for (int64_t i = 0; i < sizes[0]; i++) in[i] = (double)d.x[e * sizes[0] + i];
        for (int k = 1; k <= depth; k++) {
            const int64_t Din = sizes[k - 1], H = sizes[k];
            const cae_tensor *W = cae_layer_tensor(p, k, "W"), *b = cae_layer_tensor(p, k, "b");
            for (int64_t i = 0; i < Din; i++) xin[i] = (cae_real)in[i];
            ck_assert_int_eq(cae_jacobian_layer(xin, W->data, b->data, Din, H, act[k - 1], CAE_W_IN_UNITS, Jl, NULL),
                             CAE_OK);
            if (k == 1) {
                for (int64_t r = 0; r < H * Din; r++) prod[r] = (double)Jl[r];
            } else { /* prod (H x D0) = J_k (H x Din) * prod (Din x D0) */
                for (int64_t r = 0; r < H; r++)
                    for (int64_t c = 0; c < sizes[0]; c++) {
                        double s = 0;
                        for (int64_t t = 0; t < Din; t++) s += (double)Jl[r * Din + t] * prod[t * sizes[0] + c];
                        tmp[r * sizes[0] + c] = s;
                    }
                memcpy(prod, tmp, (size_t)(H * sizes[0]) * sizeof *prod);
            }
            layer_forward(in, W, b, act[k - 1], next);
            memcpy(in, next, (size_t)H * sizeof *in);
        }
        double s = 0;
        for (int64_t r = 0; r < sizes[depth] * sizes[0]; r++) s += prod[r] * prod[r];
        sq[e] = s;
        mean_sq += s / (double)n;
        mean_norm += sqrt(s) / (double)n;
    }
    ck_assert_int_eq(m.depth, depth);
    ck_assert_int_eq(m.d_in, sizes[0]);
    ck_assert_int_eq(m.d_out, sizes[depth]);
    assert_close("deep sqnorm vs product", m.jac_sqnorm, mean_sq, 10 * REL_TOL);
    assert_close("deep norm vs product", m.jac_norm, mean_norm, 10 * REL_TOL);
    assert_close("deep per entry", m.jac_per_entry, mean_sq / (double)(sizes[0] * sizes[depth]), 10 * REL_TOL);

    /* A third way: reverse mode through the whole stack. */
    double rev[7];
    reverse_sqnorms(p, depth, L, &d, rev);
    for (int e = 0; e < n; e++) assert_close("reverse mode vs product", rev[e], sq[e], 10 * REL_TOL);

    /* The depth-k metric is not the depth-1 one. */
    cae_metrics m1 = run_metrics(p, 1, L, &d, 3, 0);
    ck_assert_msg(fabs(m1.jac_sqnorm - m.jac_sqnorm) > 1e-6 * m1.jac_sqnorm, "depth ignored");
    free_data(&d);
    cae_params_free(p);
}
END_TEST

/* ------------------------------------------------------------------- SAT */

START_TEST(sat_on_hand_made_codes)
{
    /* D = 1, H = 4: h = sigmoid(x W + b) with x in {0, 1}.
     *   x = 0: sigmoid(-5, 0, 5, 0)       = .0067 .5 .9933 .5   -> 2/4
     *   x = 1: sigmoid(-5, 10, -5, 0)     = .0067 .99995 .0067 .5 -> 3/4
     * Layer 2 (H = 3): W2 = 0, b2 = (-4, 4, 0.5) -> .018 .982 .62 -> 2/3. */
    cae_params *p = cae_params_new();
    cae_layer_config L[2];
    cae_layer_config_default(&L[0], CAE_MODEL_CAE, 1, 4);
    cae_layer_config_default(&L[1], CAE_MODEL_CAE, 4, 3);
    cae_rng r;
    cae_rng_seed(&r, 1, 1);
    cae_error err;
    ck_assert_msg(!cae_layer_params(p, 1, &L[0], 7, &err), "%s", err.msg);
    ck_assert_msg(!cae_layer_params(p, 2, &L[1], 7, &err), "%s", err.msg);
    const cae_real W1[4] = {0, 10, -10, 0}, b1[4] = {-5, 0, 5, 0}, b2[3] = {-4, 4, 0.5f};
    memcpy(cae_layer_tensor(p, 1, "W")->data, W1, sizeof W1);
    memcpy(cae_layer_tensor(p, 1, "b")->data, b1, sizeof b1);
    memset(cae_layer_tensor(p, 2, "W")->data, 0, 12 * sizeof(cae_real));
    memcpy(cae_layer_tensor(p, 2, "b")->data, b2, sizeof b2);
    cae_dataset d = make_data(5, 1, 1);
    const cae_real xs[5] = {0, 1, 1, 0, 1};
    memcpy(d.x, xs, sizeof xs);
    cae_metrics m = run_metrics(p, 1, L, &d, 2, 0);
    assert_close("SAT layer 1", m.sat, (2 * 0.5 + 3 * 0.75) / 5, 1e-12);
    assert_close("SAT layer 1 (per layer)", m.sat_layer[0], m.sat, 1e-12);
    cae_metrics m2 = run_metrics(p, 2, L, &d, 2, 0);
    assert_close("SAT top of 2", m2.sat, 2.0 / 3.0, 1e-12);
    assert_close("SAT layer 1 of 2", m2.sat_layer[0], m.sat, 1e-12);
    assert_close("SAT layer 2 of 2", m2.sat_layer[1], 2.0 / 3.0, 1e-12);
    /* W2 = 0: the stack's Jacobian is exactly zero. */
    ck_assert_msg(m2.jac_sqnorm == 0 && m2.jac_norm == 0, "W2 = 0 but ||J||^2 = %g", m2.jac_sqnorm);
    free_data(&d);
    cae_params_free(p);
}
END_TEST

/* -------------------------------------------------------- reconstruction */

START_TEST(recon_equals_task_recon)
{
    const int untied = _i;
    const int64_t sizes[2] = {12, 5}, n = 23;
    const cae_act act = CAE_ACT_SIGMOID;
    cae_layer_config L[1];
    cae_params *p = make_stack(1, sizes, &act, untied, L, 300);
    cae_dataset d = make_data(n, sizes[0], 9);
    cae_metrics m = run_metrics(p, 1, L, &d, 4, 0);
    cae_error err;
    cae_task *t = cae_task_pretrain(p, 1, &L[0], 4, 1, 1, &err);
    ck_assert_msg(t, "%s", err.msg);
    double loss, recon;
    ck_assert_msg(!cae_task_evaluate(t, &d, &loss, &recon), "%s", cae_task_error(t));
    assert_close(untied ? "untied recon" : "tied recon", m.recon, recon, REL_TOL);
    ck_assert_msg(recon > 0 && isfinite(recon), "recon %g", recon);
    cae_task_free(t);

    /* Without the decoder bias the reconstruction is NaN, the rest works. */
    cae_params *q = cae_params_new();
    cae_tensor *W = cae_params_add(q, "L1.W", 2, (int64_t[]){12, 5});
    cae_tensor *b = cae_params_add(q, "L1.b", 1, (int64_t[]){5});
    memcpy(W->data, cae_layer_tensor(p, 1, "W")->data, 60 * sizeof(cae_real));
    memcpy(b->data, cae_layer_tensor(p, 1, "b")->data, 5 * sizeof(cae_real));
    cae_metrics mq = run_metrics(q, 1, L, &d, 4, 0);
    ck_assert_msg(isnan(mq.recon), "recon without a decoder: %g", mq.recon);
    assert_close("same encoder, same ||J||", mq.jac_sqnorm, m.jac_sqnorm, 1e-12);
    cae_params_free(q);
    free_data(&d);
    cae_params_free(p);
}
END_TEST

/* ------------------------------------------------------------------ codes */

START_TEST(codes_equal_forward)
{
    const int64_t sizes[3] = {8, 6, 3}, n = 11;
    const cae_act act[2] = {CAE_ACT_SIGMOID, CAE_ACT_TANH};
    cae_layer_config L[2];
    cae_params *p = make_stack(2, sizes, act, 0, L, 400);
    cae_dataset d = make_data(n, sizes[0], 4);
    cae_dataset *codes = NULL;
    cae_error err;
    ck_assert_msg(!cae_encode_dataset(p, 2, L, &d, 9, 1, &codes, &err), "%s", err.msg);
    ck_assert_int_eq(codes->n, 9);
    ck_assert_int_eq(codes->dim, 3);
    ck_assert_int_eq(codes->n_classes, 3);
    for (int64_t e = 0; e < 9; e++) {
        double in[8], h1[6], h2[3];
        for (int i = 0; i < 8; i++) in[i] = (double)d.x[e * 8 + i];
        layer_forward(in, cae_layer_tensor(p, 1, "W"), cae_layer_tensor(p, 1, "b"), act[0], h1);
        layer_forward(h1, cae_layer_tensor(p, 2, "W"), cae_layer_tensor(p, 2, "b"), act[1], h2);
        for (int j = 0; j < 3; j++)
            ck_assert_msg(fabs((double)codes->x[e * 3 + j] - h2[j]) < 1e-5, "code %lld,%d: %g vs %g",
                          (long long)e, j, (double)codes->x[e * 3 + j], h2[j]);
        ck_assert_int_eq(codes->y[e], d.y[e]);
    }
    cae_dataset_free(codes);
    free_data(&d);
    cae_params_free(p);
}
END_TEST

/* ------------------------------------------------------------------ errors */

START_TEST(errors_have_messages)
{
    const int64_t sizes[3] = {8, 6, 3};
    const cae_act act[2] = {CAE_ACT_SIGMOID, CAE_ACT_SIGMOID};
    cae_layer_config L[2];
    cae_params *p = make_stack(2, sizes, act, 0, L, 500);
    cae_dataset d = make_data(4, 7, 1); /* 7 inputs, the model wants 8 */
    cae_metrics m;
    cae_error err;
    ck_assert_int_eq(cae_metrics_compute(p, 2, L, &d, NULL, &m, &err), CAE_ERR_SHAPE);
    ck_assert_msg(strstr(err.msg, "7 inputs") && strstr(err.msg, "expects 8"), "message: %s", err.msg);
    cae_dataset *codes = (cae_dataset *)1;
    ck_assert_int_eq(cae_encode_dataset(p, 2, L, &d, 0, 1, &codes, &err), CAE_ERR_SHAPE);
    ck_assert_ptr_null(codes);
    free_data(&d);
    d = make_data(4, 8, 1);
    /* Layer 3 is not in the store. */
    cae_layer_config L3[3] = {L[0], L[1], L[1]};
    L3[2].n_in = 3;
    err.msg[0] = '\0';
    ck_assert_int_eq(cae_metrics_compute(p, 3, L3, &d, NULL, &m, &err), CAE_ERR_ARG);
    ck_assert_msg(strstr(err.msg, "L3.W"), "message: %s", err.msg);
    /* Inconsistent chain. */
    L3[1].n_in = 5;
    ck_assert_int_eq(cae_metrics_compute(p, 2, L3, &d, NULL, &m, &err), CAE_ERR_SHAPE);
    ck_assert_msg(strstr(err.msg, "layer 2"), "message: %s", err.msg);
    ck_assert_int_eq(cae_metrics_compute(p, 0, L, &d, NULL, &m, &err), CAE_ERR_ARG);
    free_data(&d);
    cae_params_free(p);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("jacobian");
    tcase_add_loop_test(tc, closed_form_equals_reverse_mode, 0, N_ACTS);
    tcase_add_loop_test(tc, deep_equals_product_of_layer_jacobians, 0, 2);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    tc = tcase_create("codes");
    tcase_add_test(tc, sat_on_hand_made_codes);
    tcase_add_loop_test(tc, recon_equals_task_recon, 0, 2);
    tcase_add_test(tc, codes_equal_forward);
    tcase_add_test(tc, errors_have_messages);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
