/* Every layer graph of cae/model.h against central finite differences:
 * ae, ae-wd, dae-g, dae-b (noise on, frozen by the checker), cae with the
 * fused and the composed penalty for every encoder activation, tied and
 * untied, rbm, and the fine-tuning MLP; w.r.t. W, b, c (and Wd untied).
 * Tight in the double build (TU_FD_* in testutil.h). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cae/gradcheck.h"
#include "cae/task.h"
#include "cae/ops.h"
#include "testutil.h"

#ifdef CAE_REAL_DOUBLE
#define SAME_TOL 1e-10
#else
#define SAME_TOL 2e-5
#endif

typedef struct gc_case {
    const char *name;
    cae_model_kind kind;
    cae_act act;
    int untied, composed;
    double lambda, noise, wd;
} gc_case;

#define SIG CAE_ACT_SIGMOID
#define TANH CAE_ACT_TANH
#define RELU CAE_ACT_RELU
#define SOFTP CAE_ACT_SOFTPLUS
#define LIN CAE_ACT_LINEAR
static const gc_case gc_cases[] = {
    {"ae", CAE_MODEL_AE, SIG, 0, 0, 0, 0, 0},
    {"ae untied", CAE_MODEL_AE, SIG, 1, 0, 0, 0, 0},
    {"ae tanh", CAE_MODEL_AE, TANH, 0, 0, 0, 0, 0},
    {"ae-wd", CAE_MODEL_AE_WD, SIG, 0, 0, 0, 0, 0.05},
    {"ae-wd untied", CAE_MODEL_AE_WD, SIG, 1, 0, 0, 0, 0.05},
    {"dae-g", CAE_MODEL_DAE_G, SIG, 0, 0, 0, 0.3, 0},
    {"dae-g untied", CAE_MODEL_DAE_G, SIG, 1, 0, 0, 0.3, 0},
    {"dae-b", CAE_MODEL_DAE_B, SIG, 0, 0, 0, 0.25, 0},
    {"dae-b untied", CAE_MODEL_DAE_B, SIG, 1, 0, 0, 0.25, 0},
    {"cae fused sigmoid", CAE_MODEL_CAE, SIG, 0, 0, 0.5, 0, 0},
    {"cae fused sigmoid untied", CAE_MODEL_CAE, SIG, 1, 0, 0.5, 0, 0},
    {"cae fused tanh", CAE_MODEL_CAE, TANH, 0, 0, 0.5, 0, 0},
    {"cae fused tanh untied", CAE_MODEL_CAE, TANH, 1, 0, 0.5, 0, 0},
    {"cae fused relu", CAE_MODEL_CAE, RELU, 0, 0, 0.5, 0, 0},
    {"cae fused relu untied", CAE_MODEL_CAE, RELU, 1, 0, 0.5, 0, 0},
    {"cae fused softplus", CAE_MODEL_CAE, SOFTP, 0, 0, 0.5, 0, 0},
    {"cae fused softplus untied", CAE_MODEL_CAE, SOFTP, 1, 0, 0.5, 0, 0},
    {"cae fused linear", CAE_MODEL_CAE, LIN, 0, 0, 0.5, 0, 0},
    {"cae composed sigmoid", CAE_MODEL_CAE, SIG, 0, 1, 0.5, 0, 0},
    {"cae composed sigmoid untied", CAE_MODEL_CAE, SIG, 1, 1, 0.5, 0, 0},
    {"cae composed tanh", CAE_MODEL_CAE, TANH, 0, 1, 0.5, 0, 0},
    {"cae composed tanh untied", CAE_MODEL_CAE, TANH, 1, 1, 0.5, 0, 0},
    {"cae composed relu", CAE_MODEL_CAE, RELU, 0, 1, 0.5, 0, 0},
    {"cae composed relu untied", CAE_MODEL_CAE, RELU, 1, 1, 0.5, 0, 0},
    {"cae composed softplus", CAE_MODEL_CAE, SOFTP, 0, 1, 0.5, 0, 0},
    {"cae composed softplus untied", CAE_MODEL_CAE, SOFTP, 1, 1, 0.5, 0, 0},
    {"cae composed linear", CAE_MODEL_CAE, LIN, 0, 1, 0.5, 0, 0},
    {"cae fused sigmoid + wd", CAE_MODEL_CAE, SIG, 0, 0, 0.5, 0, 0.05},
    {"rbm", CAE_MODEL_RBM, SIG, 0, 0, 0, 0, 0},
    {"rbm + wd", CAE_MODEL_RBM, SIG, 0, 0, 0, 0, 0.05},
};
#define N_GC ((int)(sizeof gc_cases / sizeof gc_cases[0]))

static cae_node *param_node_of(cae_graph *g, const cae_tensor *t)
{
    for (int i = 0; i < cae_graph_tape_length(g); i++) {
        cae_node *n = cae_graph_tape_at(g, i);
        if (!strcmp(cae_node_op_name(n), "param") && cae_node_value(n)->data == t->data) return n;
    }
    return NULL;
}

/* Odd sizes (7 inputs, 5 hidden, batch 3), biases non-zero, inputs in
 * (0,1): every tensor of the layer's objective passes the checker. The
 * noisy models are checked with the noise on (frozen by the checker), and
 * the noise must really be there (the loss differs from the noise-free
 * graph's). */
START_TEST(layer_gradcheck)
{
    const gc_case *k = &gc_cases[_i];
    enum { D = 7, H = 5, B = 3 };
    cae_error err;
    cae_layer_config c;
    cae_layer_config_default(&c, k->kind, D, H);
    c.act = k->act;
    c.untied = k->untied;
    c.composed = k->composed;
    c.lambda = k->lambda;
    c.noise = k->noise;
    c.wd = k->wd;
    cae_params *p = cae_params_new();
    ck_assert_msg(!cae_layer_params(p, 1, &c, 100 + (uint64_t)_i, &err), "%s: %s", k->name, err.msg);
    cae_tensor *W = cae_layer_tensor(p, 1, "W");
    if (k->kind == CAE_MODEL_RBM) tu_fill_uniform(W->data, W->size, -1, 1, 200 + (uint64_t)_i);
    tu_fill_uniform(cae_layer_tensor(p, 1, "c")->data, D, -0.5, 0.5, 400 + (uint64_t)_i);
    cae_real xv[B * D];
    tu_fill_uniform(xv, B * D, 0.02, 0.98, 500 + (uint64_t)_i);
    /* b at random; for relu, the first draw that keeps every pre-activation
     * at least 2 eps from the kink (a step of eps in W or b moves a by at
     * most eps, as x < 1), since the relu penalty jumps there. */
    cae_real *bv = cae_layer_tensor(p, 1, "b")->data;
    for (uint64_t tries = 0;; tries++) {
        ck_assert_msg(tries < 1000, "%s: no bias draw keeps the relu off its kink", k->name);
        tu_fill_uniform(bv, H, -0.5, 0.5, 300 + 1000 * tries + (uint64_t)_i);
        if (k->act != RELU) break;
        double amin = INFINITY;
        for (int r = 0; r < B; r++)
            for (int j = 0; j < H; j++) {
                double a = bv[j];
                for (int i = 0; i < D; i++) a += (double)xv[r * D + i] * W->data[i * H + j];
                amin = fmin(amin, fabs(a));
            }
        if (amin > 2 * TU_FD_EPS) break;
    }

    double loss_clean = 0;
    for (int noisy = 0; noisy < 2; noisy++) {
        cae_graph *g = cae_graph_new(p, B);
        cae_graph_seed(g, 77);
        cae_node *x = cae_input(g, "x", 2, (int64_t[]){B, D});
        cae_layer_nodes ln;
        ck_assert_msg(!cae_layer_build(g, p, 1, &c, x, !noisy, NULL, NULL, &ln), "%s: %s", k->name,
                      cae_graph_error(g));
        ck_assert_msg(!cae_graph_compile(g, ln.loss), "%s: %s", k->name, cae_graph_error(g));
        memcpy(cae_node_value(x)->data, xv, sizeof xv);
        cae_graph_forward(g);
        const double loss = cae_node_value(ln.loss)->data[0];
        ck_assert_msg(isfinite(loss), "%s: loss %g", k->name, loss);
        if (!noisy) {
            loss_clean = loss;
            cae_graph_free(g);
            continue;
        }
        if (k->kind == CAE_MODEL_DAE_G || k->kind == CAE_MODEL_DAE_B)
            ck_assert_msg(fabs(loss - loss_clean) > 1e-4 * fabs(loss_clean),
                          "%s: the noisy loss %.10g equals the noise-free one %.10g", k->name, loss,
                          loss_clean);
        else
            ck_assert_msg(fabs(loss - loss_clean) <= SAME_TOL * (1 + fabs(loss_clean)),
                          "%s: training loss %.10g, evaluation loss %.10g differ without noise",
                          k->name, loss, loss_clean);
        if (k->act == RELU) /* keep finite differences off the kink */
            for (int64_t i = 0; i < B * H; i++)
                ck_assert_msg(fabs(cae_node_value(ln.a)->data[i]) > 2 * TU_FD_EPS,
                              "%s: pre-activation %lld = %g too close to the relu kink",
                              k->name, (long long)i,
                              (double)cae_node_value(ln.a)->data[i]);
        const char *names[4] = {"W", "b", "c", "Wd"};
        for (int t = 0; t < (k->untied ? 4 : 3); t++) {
            cae_tensor *ten = cae_layer_tensor(p, 1, names[t]);
            ck_assert_msg(ten != NULL, "%s: no L1.%s", k->name, names[t]);
            cae_node *n = param_node_of(g, ten);
            ck_assert_msg(n != NULL, "%s: L1.%s is not on the tape", k->name, names[t]);
            cae_gradcheck_report r;
            TU_GRADCHECK(g, n, 0, 1, &r);
            ck_assert_msg(r.n_checked == ten->size, "%s L1.%s: %lld of %lld checked", k->name,
                          names[t], (long long)r.n_checked, (long long)ten->size);
            ck_assert_msg(r.max_rel_err < TU_FD_TOL,
                          "%s d/dL1.%s: rel err %.3g at %lld: tape %.10g, finite diff %.10g",
                          k->name, names[t], r.max_rel_err, (long long)r.worst_index,
                          r.worst_analytic, r.worst_numeric);
        }
        cae_graph_free(g);
    }
    cae_params_free(p);
}
END_TEST

/* The fine-tuning MLP (two hidden layers, sigmoid and tanh) too. */
START_TEST(mlp_gradcheck)
{
    enum { D = 7, B = 3, C = 4 };
    cae_error err;
    cae_mlp_config m = {.n_layers = 2, .sizes = {D, 5, 6}, .act = {SIG, TANH}, .n_classes = C};
    cae_params *p = cae_params_new();
    ck_assert_msg(!cae_mlp_params(p, &m, 61, &err), "%s", err.msg);
    tu_fill_uniform(cae_layer_tensor(p, 1, "b")->data, 5, -0.5, 0.5, 62);
    tu_fill_uniform(cae_params_get(p, "out.c")->data, C, -0.5, 0.5, 63);
    cae_graph *g = cae_graph_new(p, B);
    cae_node *x = cae_input(g, "x", 2, (int64_t[]){B, D});
    cae_node *y = cae_input(g, "y", 1, (int64_t[]){B});
    cae_node *loss = cae_softmax_xent(g, cae_mlp_logits(g, p, &m, x, NULL), y);
    ck_assert_msg(!cae_graph_compile(g, loss), "%s", cae_graph_error(g));
    tu_fill_uniform(cae_node_value(x)->data, B * D, 0, 1, 64);
    for (int i = 0; i < B; i++) cae_node_value(y)->data[i] = (cae_real)((i * 3) % C);
    /* (cae_mlp_params also creates the decoder biases L1.c, L2.c of the
     * hidden layers, for pretraining; the MLP does not use them.) */
    const char *names[6] = {"L1.W", "L1.b", "L2.W", "L2.b", "out.V", "out.c"};
    for (int i = 0; i < 6; i++) {
        cae_tensor *t = cae_params_get(p, names[i]);
        ck_assert_msg(t != NULL, "mlp: no tensor %s", names[i]);
        cae_node *n = param_node_of(g, t);
        ck_assert_msg(n != NULL, "mlp: %s not on the tape", t->name);
        cae_gradcheck_report r;
        TU_GRADCHECK(g, n, 0, 1, &r);
        ck_assert_msg(r.max_rel_err < TU_FD_TOL,
                      "mlp d/d%s: rel err %.3g at %lld: tape %.10g, finite diff %.10g", t->name,
                      r.max_rel_err, (long long)r.worst_index, r.worst_analytic, r.worst_numeric);
    }
    cae_graph_free(g);
    cae_params_free(p);
}
END_TEST

/* ------------------------------------------------ through the task builders */

/* Build what a task trains (the builder, on a graph of B rows), then check
 * every parameter on its tape against finite differences. Returns the
 * loss. */
static double check_builder(const char *name, cae_params *p, cae_task_build_fn build,
                            const void *ctx, int64_t D, int classes, uint64_t seed)
{
    enum { B = 3 };
    cae_graph *g = cae_graph_new(p, B);
    cae_graph_seed(g, seed);
    cae_params *buffers = cae_params_new();
    cae_task_io io = {.params = p, .buffers = buffers, .rows = B, .batch = B};
    io.x = cae_input(g, "x", 2, (int64_t[]){B, D});
    if (classes) io.y = cae_input(g, "y", 1, (int64_t[]){B});
    ck_assert_msg(!build(g, &io, ctx), "%s: %s", name, cae_graph_error(g));
    ck_assert_msg(!cae_graph_compile(g, io.loss), "%s: %s", name, cae_graph_error(g));
    tu_fill_uniform(cae_node_value(io.x)->data, B * D, 0.02, 0.98, seed);
    for (int i = 0; classes && i < B; i++) cae_node_value(io.y)->data[i] = (cae_real)((i * 3 + 1) % classes);
    int checked = 0;
    for (int i = 0; i < cae_graph_tape_length(g); i++) {
        cae_node *n = cae_graph_tape_at(g, i);
        const cae_tensor *t = cae_node_param(n);
        if (!t) continue;
        cae_gradcheck_report r;
        TU_GRADCHECK(g, n, 0, 1, &r);
        ck_assert_msg(r.max_rel_err < TU_FD_TOL,
                      "%s d/d%s: rel err %.3g at %lld: tape %.10g, finite diff %.10g", name,
                      t->name, r.max_rel_err, (long long)r.worst_index, r.worst_analytic,
                      r.worst_numeric);
        checked++;
    }
    ck_assert_msg(checked >= 2, "%s: only %d parameters on the tape", name, checked);
    cae_graph_forward(g);
    const double loss = cae_node_value(io.loss)->data[0];
    cae_graph_free(g);
    cae_params_free(buffers);
    return loss;
}

static double sum_sq(const cae_tensor *t)
{
    double s = 0;
    for (int64_t i = 0; i < t->size; i++) s += (double)t->data[i] * t->data[i];
    return s;
}

/* Every pretraining kind with every option that adds a term, through
 * cae_layer_task_build (the builder cae_task_pretrain uses), on layer 1
 * and on layer 2 of a stack. */
START_TEST(layer_task_builder_gradcheck)
{
    enum { D = 7, H1 = 5, H2 = 4 };
    for (int layer = 1; layer <= 2; layer++)
        for (int i = 0; i < N_GC; i++) {
            const gc_case *k = &gc_cases[i];
            if (k->act == RELU) continue; /* the relu penalty jumps at its kink: layer_gradcheck */
            cae_error err;
            cae_params *p = cae_params_new();
            cae_layer_task lt = {.layer = layer};
            for (int l = 1; l <= layer; l++) {
                cae_layer_config_default(&lt.config, l == layer ? k->kind : CAE_MODEL_AE,
                                         l == 1 ? D : H1, l == 1 ? H1 : H2);
                if (l == layer) {
                    lt.config.act = k->act;
                    lt.config.untied = k->untied;
                    lt.config.composed = k->composed;
                    lt.config.lambda = k->lambda;
                    lt.config.noise = k->noise;
                    lt.config.wd = k->wd;
                }
                ck_assert_msg(!cae_layer_params(p, l, &lt.config, 30 + (uint64_t)i, &err), "%s",
                              err.msg);
            }
            tu_fill_uniform(cae_layer_tensor(p, layer, "b")->data, layer == 1 ? H1 : H2, -0.5, 0.5,
                            40 + (uint64_t)i);
            tu_fill_uniform(cae_layer_tensor(p, layer, "c")->data, layer == 1 ? D : H1, -0.5, 0.5,
                            50 + (uint64_t)i);
            if (k->kind == CAE_MODEL_RBM) {
                cae_tensor *W = cae_layer_tensor(p, layer, "W");
                tu_fill_uniform(W->data, W->size, -1, 1, 60 + (uint64_t)i);
            }
            char name[96];
            snprintf(name, sizeof name, "layer %d %s", layer, k->name);
            /* Layer 2 trains on codes: inputs of width H1 in (0, 1). */
            const double loss = check_builder(name, p, cae_layer_task_build, &lt,
                                              layer == 1 ? D : H1, 0, 70 + (uint64_t)i);
            if (k->wd > 0) { /* the decay term is there, with its weight */
                lt.config.wd = 0;
                const double plain = check_builder(name, p, cae_layer_task_build, &lt,
                                                   layer == 1 ? D : H1, 0, 70 + (uint64_t)i);
                const double want = k->wd * sum_sq(cae_layer_tensor(p, layer, "W"));
                ck_assert_msg(fabs((loss - plain) - want) <= 1e-4 * want,
                              "%s: the wd term is %.10g, want %.10g", name, loss - plain, want);
            }
            cae_params_free(p);
        }
}
END_TEST

/* The fine-tuning MLP through cae_mlp_task_build (the builder of
 * cae_task_finetune), with and without weight decay, one and two hidden
 * layers; the decay term is wd times the squares of every W and V. */
START_TEST(mlp_task_builder_gradcheck)
{
    enum { D = 7, C = 4 };
    for (int layers = 1; layers <= 2; layers++)
        for (int wdi = 0; wdi < 2; wdi++) {
            cae_error err;
            cae_mlp_config m = {.n_layers = layers, .sizes = {D, 5, 6}, .act = {SIG, TANH},
                                .n_classes = C, .wd = wdi ? 0.03 : 0};
            cae_params *p = cae_params_new();
            ck_assert_msg(!cae_mlp_params(p, &m, 80 + (uint64_t)layers, &err), "%s", err.msg);
            tu_fill_uniform(cae_params_get(p, "out.c")->data, C, -0.5, 0.5, 81);
            char name[64];
            snprintf(name, sizeof name, "mlp %d layer%s wd %g", layers, layers > 1 ? "s" : "", m.wd);
            const double loss = check_builder(name, p, cae_mlp_task_build, &m, D, C, 90);
            if (m.wd > 0) {
                cae_mlp_config plain = m;
                plain.wd = 0;
                const double l0 = check_builder(name, p, cae_mlp_task_build, &plain, D, C, 90);
                double want = sum_sq(cae_params_get(p, "out.V"));
                for (int k = 1; k <= layers; k++) want += sum_sq(cae_layer_tensor(p, k, "W"));
                want *= m.wd;
                ck_assert_msg(fabs((loss - l0) - want) <= 1e-4 * want,
                              "%s: the wd term is %.10g, want %.10g", name, loss - l0, want);
            }
            cae_params_free(p);
        }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("models_grad");
    TCase *t = tcase_create("gradcheck");
    tcase_set_timeout(t, 30);
    tcase_add_loop_test(t, layer_gradcheck, 0, N_GC);
    tcase_add_test(t, mlp_gradcheck);
    tcase_add_test(t, layer_task_builder_gradcheck);
    tcase_add_test(t, mlp_task_builder_gradcheck);
    suite_add_tcase(s, t);
    return tu_run(s);
}
