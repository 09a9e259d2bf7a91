/* The Manifold Tangent Classifier (cae/mtc.h): float16 round trips; the
 * tangents are orthonormal and span the top right singular subspace of a
 * brute-force Jacobian (one layer and a stack), with its singular values;
 * the tangent-propagation penalty's gradient against finite differences
 * with the tangents held fixed; a run stopped after an epoch and resumed
 * (tangents recomputed from the encoder kept in the buffers) ends bit for
 * bit where the uninterrupted run does. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cae/gradcheck.h"
#include "cae/jacobian.h"
#include "cae/mtc.h"
#include "cae/ops.h"
#include "cae/train.h"
#include "testutil.h"

START_TEST(half_round_trips)
{
    for (uint32_t h = 0; h < 65536; h++) {
        const float f = cae_half_to_float((uint16_t)h);
        if (isnan(f)) continue;
        ck_assert_msg(cae_float_to_half(f) == h, "half %04x -> %g -> %04x", h, (double)f,
                      cae_float_to_half(f));
    }
    ck_assert_int_eq(cae_float_to_half(1.0f), 0x3c00);
    ck_assert_int_eq(cae_float_to_half(-2.0f), 0xc000);
    ck_assert_int_eq(cae_float_to_half(65504.0f), 0x7bff);
    ck_assert_int_eq(cae_float_to_half(1e6f), 0x7c00);                /* overflow: inf */
    ck_assert_int_eq(cae_float_to_half(1.0f + 1.0f / 2048), 0x3c00);  /* a tie: to even */
    ck_assert_int_eq(cae_float_to_half(1.0f + 3.0f / 2048), 0x3c02);  /* a tie: to even */
    ck_assert_int_eq(cae_float_to_half(5.96e-8f), 0x0001);            /* the smallest subnormal */
    ck_assert(isnan(cae_half_to_float(cae_float_to_half(NAN))));
}
END_TEST

/* Eigenvectors of a symmetric n x n matrix (double, Jacobi rotations):
 * A is destroyed, its diagonal ends as the eigenvalues, V's columns. */
static void jacobi_eig(double *A, double *V, int n)
{
    for (int i = 0; i < n * n; i++) V[i] = (i / n == i % n);
    for (int sweep = 0; sweep < 100; sweep++) {
        double off = 0;
        for (int p = 0; p < n; p++)
            for (int q = p + 1; q < n; q++) off += A[p * n + q] * A[p * n + q];
        if (off < 1e-26) break;
        for (int p = 0; p < n; p++)
            for (int q = p + 1; q < n; q++) {
                if (fabs(A[p * n + q]) < 1e-300) continue;
                const double th = 0.5 * atan2(2 * A[p * n + q], A[q * n + q] - A[p * n + p]);
                const double c = cos(th), s = sin(th);
                for (int k = 0; k < n; k++) { /* A <- A G */
                    const double akp = A[k * n + p], akq = A[k * n + q];
                    A[k * n + p] = c * akp - s * akq;
                    A[k * n + q] = s * akp + c * akq;
                }
                for (int k = 0; k < n; k++) { /* A <- G^T A */
                    const double apk = A[p * n + k], aqk = A[q * n + k];
                    A[p * n + k] = c * apk - s * aqk;
                    A[q * n + k] = s * apk + c * aqk;
                }
                for (int k = 0; k < n; k++) {
                    const double vkp = V[k * n + p], vkq = V[k * n + q];
                    V[k * n + p] = c * vkp - s * vkq;
                    V[k * n + q] = s * vkp + c * vkq;
                }
            }
    }
}

/* Tangents against the eigenvectors of J^T J from brute-force Jacobians. */
START_TEST(tangents_span_the_top_subspace)
{
    enum { D = 12, N = 20, DM = 3 };
    const int64_t sizes[3] = {D, 9, 7};
    const cae_act act[2] = {CAE_ACT_SIGMOID, CAE_ACT_TANH};
    for (int depth = 1; depth <= 2; depth++) {
        cae_params *p = cae_params_new();
        cae_error err;
        for (int l = 1; l <= depth; l++) {
            cae_layer_config c;
            cae_layer_config_default(&c, CAE_MODEL_CAE, sizes[l - 1], sizes[l]);
            c.act = act[l - 1];
            ck_assert_msg(!cae_layer_params(p, l, &c, 11, &err), "%s", err.msg);
        }
        cae_dataset d = {.n = N, .dim = D, .rows = D, .cols = 1};
        d.x = malloc(N * D * sizeof *d.x);
        tu_fill_uniform(d.x, N * D, 0, 1, 12);
        cae_tangent_config tc;
        cae_tangent_config_default(&tc);
        tc.dims = DM;
        tc.iterations = 12;
        uint16_t *tan = malloc(N * DM * D * sizeof *tan);
        cae_real *sv = malloc(N * DM * sizeof *sv);
        ck_assert_msg(!cae_tangents(p, depth, act, &d, N, &tc, tan, sv, &err), "%s", err.msg);
        /* brute force */
        cae_graph *g = cae_graph_new(p, N);
        cae_node *x = cae_input(g, "x", 2, (int64_t[]){N, D});
        cae_input_requires_grad(x);
        cae_node *h = x;
        for (int l = 1; l <= depth; l++) h = cae_encoder(g, p, l, act[l - 1], h, NULL);
        ck_assert(!cae_graph_compile(g, h));
        memcpy(cae_node_value(x)->data, d.x, N * D * sizeof *d.x);
        const int64_t H = sizes[depth];
        cae_real *J = malloc((size_t)(N * H * D) * sizeof *J);
        ck_assert_msg(!cae_jacobian_graph(g, x, h, J, &err), "%s", err.msg);
        for (int b = 0; b < N; b++) {
            double A[D * D], V[D * D], u[DM][D];
            for (int i = 0; i < D; i++)
                for (int j = 0; j < D; j++) {
                    double s = 0;
                    for (int r = 0; r < H; r++) s += (double)J[(b * H + r) * D + i] * J[(b * H + r) * D + j];
                    A[i * D + j] = s;
                }
            jacobi_eig(A, V, D);
            int order[D];
            for (int i = 0; i < D; i++) order[i] = i;
            for (int i = 0; i < D; i++) /* decreasing eigenvalues */
                for (int j = i + 1; j < D; j++)
                    if (A[order[j] * D + order[j]] > A[order[i] * D + order[i]]) {
                        const int t = order[i];
                        order[i] = order[j];
                        order[j] = t;
                    }
            for (int t = 0; t < DM; t++)
                for (int i = 0; i < D; i++) u[t][i] = cae_half_to_float(tan[(b * DM + t) * D + i]);
            double proj = 0; /* ||V_top^T U||_F^2: DM when the spans agree */
            for (int t = 0; t < DM; t++) {
                for (int s = 0; s < DM; s++) { /* orthonormal (float16 precision) */
                    double dd = 0;
                    for (int i = 0; i < D; i++) dd += u[t][i] * u[s][i];
                    ck_assert_msg(fabs(dd - (t == s)) < 3e-3, "depth %d example %d: <u%d, u%d> = %g",
                                  depth, b, t, s, dd);
                }
                for (int e = 0; e < DM; e++) {
                    double dd = 0;
                    for (int i = 0; i < D; i++) dd += V[i * D + order[e]] * u[t][i];
                    proj += dd * dd;
                }
                const double want = sqrt(fmax(0, A[order[t] * D + order[t]]));
                ck_assert_msg(fabs(sv[b * DM + t] - want) <= 1e-3 * (1 + want),
                              "depth %d example %d: singular value %d is %g, by brute force %g", depth,
                              b, t, (double)sv[b * DM + t], want);
            }
            ck_assert_msg(proj > DM - 5e-3, "depth %d example %d: the tangents' span misses the top "
                          "subspace (||V^T U||^2 = %g of %d)", depth, b, proj, DM);
        }
        free(J);
        free(tan);
        free(sv);
        free(d.x);
        cae_graph_free(g);
        cae_params_free(p);
    }
}
END_TEST

/* The penalty's gradient with the tangents held fixed (an input), through
 * cae_mtc_task_build, every parameter and the input. */
START_TEST(penalty_gradient)
{
    enum { D = 7, B = 3, C = 4, DM = 2 };
    cae_error err;
    cae_mlp_config m = {.n_layers = 1, .sizes = {D, 5}, .act = {CAE_ACT_SIGMOID}, .n_classes = C};
    cae_params *p = cae_params_new();
    ck_assert_msg(!cae_mlp_params(p, &m, 3, &err), "%s", err.msg);
    tu_fill_uniform(cae_params_get(p, "out.c")->data, C, -0.5, 0.5, 4);
    cae_graph *g = cae_graph_new(p, B);
    cae_params *buf = cae_params_new();
    cae_task_io io = {.params = p, .buffers = buf, .rows = B, .batch = B};
    io.x = cae_input(g, "x", 2, (int64_t[]){B, D});
    io.y = cae_input(g, "y", 1, (int64_t[]){B});
    io.aux = cae_input(g, "tangents", 2, (int64_t[]){DM * B, D});
    cae_input_requires_grad(io.x);
    const cae_mtc_task_ctx ctx = {.m = m, .dims = DM, .beta = 0.8};
    ck_assert_msg(!cae_mtc_task_build(g, &io, &ctx), "%s", cae_graph_error(g));
    ck_assert_msg(!cae_graph_compile(g, io.loss), "%s", cae_graph_error(g));
    tu_fill_uniform(cae_node_value(io.x)->data, B * D, 0, 1, 5);
    tu_fill_uniform(cae_node_value(io.aux)->data, DM * B * D, -1, 1, 6);
    for (int i = 0; i < B; i++) cae_node_value(io.y)->data[i] = (cae_real)(i % C);
    const char *names[4] = {"L1.W", "L1.b", "out.V", "out.c"};
    for (int k = 0; k < 5; k++) {
        cae_node *n = io.x;
        if (k < 4) n = cae_param(g, cae_params_get(p, names[k]));
        cae_gradcheck_report r;
        TU_GRADCHECK(g, n, 0, 1, &r);
        ck_assert_msg(r.max_rel_err <= TU_FD_TOL, "d/d%s: rel err %g at %lld: %.10g vs %.10g",
                      cae_node_name(n), r.max_rel_err, (long long)r.worst_index, r.worst_analytic,
                      r.worst_numeric);
    }
    /* and the penalty is there: beta 0 gives a different loss */
    cae_graph_forward(g);
    const double with = cae_node_value(io.loss)->data[0];
    cae_graph *g0 = cae_graph_new(p, B);
    cae_task_io io0 = io;
    io0.x = cae_input(g0, "x", 2, (int64_t[]){B, D});
    io0.y = cae_input(g0, "y", 1, (int64_t[]){B});
    io0.aux = cae_input(g0, "tangents", 2, (int64_t[]){DM * B, D});
    const cae_mtc_task_ctx ctx0 = {.m = m, .dims = DM, .beta = 0};
    ck_assert(!cae_mtc_task_build(g0, &io0, &ctx0) && !cae_graph_compile(g0, io0.loss));
    memcpy(cae_node_value(io0.x)->data, cae_node_value(io.x)->data, B * D * sizeof(cae_real));
    memcpy(cae_node_value(io0.y)->data, cae_node_value(io.y)->data, B * sizeof(cae_real));
    cae_graph_forward(g0);
    ck_assert_msg(with > cae_node_value(io0.loss)->data[0], "the penalty adds nothing");
    cae_graph_free(g0);
    cae_graph_free(g);
    cae_params_free(buf);
    cae_params_free(p);
}
END_TEST

/* Fine-tuning with tangents refreshed every epoch, stopped after epoch 1
 * and resumed (the task's buffers back from the optimizer store), equals the
 * uninterrupted run bit for bit. */
static cae_params *run(const cae_dataset *d, int epochs, int first, cae_params *from_p,
                       cae_params *from_opt, const cae_rng *rng, cae_params **opt_out, cae_rng *rng_out)
{
    enum { D = 10 };
    cae_error err;
    cae_mlp_config m = {.n_layers = 1, .sizes = {D, 6}, .act = {CAE_ACT_SIGMOID}, .n_classes = 3};
    cae_params *p = cae_params_new(), *opt = cae_params_new();
    ck_assert(!cae_mlp_params(p, &m, 21, &err));
    if (from_p)
        for (int i = 0; i < cae_params_count(p); i++)
            memcpy(cae_params_at(p, i)->data, cae_params_get(from_p, cae_params_at(p, i)->name)->data,
                   (size_t)cae_params_at(p, i)->size * sizeof(cae_real));
    if (from_opt)
        for (int i = 0; i < cae_params_count(from_opt); i++) {
            const cae_tensor *t = cae_params_at(from_opt, i);
            cae_tensor *c = cae_params_add(opt, t->name, t->rank, t->shape);
            memcpy(c->data, t->data, (size_t)t->size * sizeof(cae_real));
        }
    cae_task *t = cae_mtc_task(p, &m, 2, 0.5, 8, 22, 1, &err);
    ck_assert_msg(t != NULL, "%s", err.msg);
    if (rng) *cae_task_rng(t) = *rng;
    cae_tangent_config tc;
    cae_tangent_config_default(&tc);
    tc.dims = 2;
    cae_mtc *x = cae_mtc_new(t, p, &m, d, 0, &tc, 1, &err);
    ck_assert_msg(x != NULL, "%s", err.msg);
    cae_train_config c;
    cae_train_config_default(&c);
    c.epochs = epochs;
    c.lr = 0.3;
    c.momentum = 0.5;
    c.seed = 23;
    c.first_epoch = first;
    c.opt = opt;
    c.aux = cae_mtc_aux;
    c.aux_ctx = x;
    cae_train_result res;
    ck_assert_msg(!cae_train(t, d, NULL, &c, NULL, &res, &err), "%s", err.msg);
    if (rng_out) *rng_out = *cae_task_rng(t);
    cae_mtc_free(x);
    cae_task_free(t);
    *opt_out = opt;
    return p;
}

START_TEST(resume_is_exact)
{
    enum { N = 30, D = 10 };
    cae_dataset d = {.n = N, .dim = D, .rows = D, .cols = 1, .n_classes = 3};
    d.x = malloc(N * D * sizeof *d.x);
    d.y = malloc(N * sizeof *d.y);
    tu_fill_uniform(d.x, N * D, 0, 1, 30);
    for (int i = 0; i < N; i++) d.y[i] = i % 3;
    cae_params *opt_a, *opt_b, *opt_c;
    cae_rng r1;
    cae_params *a = run(&d, 3, 0, NULL, NULL, NULL, &opt_a, NULL);
    cae_params *b = run(&d, 1, 0, NULL, NULL, NULL, &opt_b, &r1); /* stopped after epoch 1 */
    cae_params *c = run(&d, 3, 1, b, opt_b, &r1, &opt_c, NULL);    /* resumed */
    for (int i = 0; i < cae_params_count(a); i++) {
        const cae_tensor *x = cae_params_at(a, i), *y = cae_params_get(c, x->name);
        ck_assert_msg(!memcmp(x->data, y->data, (size_t)x->size * sizeof(cae_real)),
                      "%s differs after the resumed run", x->name);
    }
    ck_assert_msg(cae_params_get(opt_b, "mtc:L1.W") && cae_params_get(opt_b, "mtc:period"),
                  "the optimizer store lacks the encoder the tangents came from");
    cae_params_free(a);
    cae_params_free(b);
    cae_params_free(c);
    cae_params_free(opt_a);
    cae_params_free(opt_b);
    cae_params_free(opt_c);
    free(d.x);
    free(d.y);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("mtc");
    TCase *t = tcase_create("mtc");
    tcase_set_timeout(t, 120);
    tcase_add_test(t, half_round_trips);
    tcase_add_test(t, tangents_span_the_top_subspace);
    tcase_add_test(t, penalty_gradient);
    tcase_add_test(t, resume_is_exact);
    suite_add_tcase(s, t);
    return tu_run(s);
}
