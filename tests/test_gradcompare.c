/* cae_gradcompare and cae_dircheck against a user's fused op with injected
 * mistakes. "dense" below is out = x W + b written as a user would write
 * it (cae_gemm, a hand-written backward), with a switch that breaks its
 * backward in one of the ways hand derivations go wrong: a factor 2, a
 * transposed weight gradient, a sign, a missing bias-gradient term, an
 * off-by-one row, one wrong element. The reference is the library's
 * affine. Both checkers must pass the right backward and catch every
 * wrong one; they must leave the store, the inputs' bindings and the RNG as
 * found; their errors name what is wrong. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cae/gemm.h"
#include "cae/gradcheck.h"
#include "cae/op.h"
#include "cae/ops.h"
#include "testutil.h"
/* after check.h (testutil.h): the Check assertions for users' suites */
#include "cae/testing.h"

#define CMP_TOL CAE_CK_TOL_COMPARE
#define DIR_TOL CAE_CK_TOL_DIR

/* ---------------------------------------------------- the user's op */

enum fault { F_NONE, F_FACTOR2, F_TRANSPOSE, F_SIGN, F_NO_BIAS_TERM, F_ROW_SHIFT, F_ONE, N_FAULTS };
static const char *fault_name[N_FAULTS] = {"none",           "factor 2 in dW", "transposed dW",
                                           "sign of dx",     "db misses a row",
                                           "dW rows off by one", "one element of dW"};
/* The tensor each mistake is in. */
static const char *fault_tensor[N_FAULTS] = {"", "W", "W", "x", "b", "W", "W"};
enum { ONE_AT = 17 };

typedef struct dense_plan {
    cae_gemm fwd, dx, dx0, dw, dw0, dwt; /* *0: into scratch (no accumulation) */
} dense_plan;

static int dense_infer(cae_node *n)
{
    const cae_tensor *x = &n->in[0]->out, *w = &n->in[1]->out, *b = &n->in[2]->out;
    if (x->rank != 2 || w->rank != 2 || b->rank != 1 || x->shape[1] != w->shape[0] ||
        b->shape[0] != w->shape[1])
        return cae_node_fail(n, "x W + b needs x B x D, W D x H, b H");
    n->out.rank = 2;
    n->out.shape[0] = x->shape[0];
    n->out.shape[1] = w->shape[1];
    return 0;
}

static int dense_plan_fn(cae_node *n)
{
    dense_plan *p = cae_node_state(n, sizeof *p);
    if (!p) return -1;
    const int64_t B = n->in[0]->out.shape[0], D = n->in[1]->out.shape[0], H = n->in[1]->out.shape[1];
    if (cae_gemm_plan(&p->fwd, B, H, D, 0, 0, 0) || cae_gemm_plan(&p->dx, B, D, H, 0, 1, 1) ||
        cae_gemm_plan(&p->dx0, B, D, H, 0, 1, 0) || cae_gemm_plan(&p->dw, D, H, B, 1, 0, 1) ||
        cae_gemm_plan(&p->dw0, D, H, B, 1, 0, 0) || cae_gemm_plan(&p->dwt, H, D, B, 1, 0, 1))
        return cae_node_fail(n, "no kernel");
    size_t s = 0;
    const cae_gemm *all[6] = {&p->fwd, &p->dx, &p->dx0, &p->dw, &p->dw0, &p->dwt};
    for (int i = 0; i < 6; i++) s = s > all[i]->scratch_reals ? s : all[i]->scratch_reals;
    n->scratch_bytes = (s + (size_t)(B * D + D * H)) * sizeof(cae_real);
    return 0;
}

static void dense_forward(cae_node *n)
{
    const dense_plan *p = n->state;
    cae_gemm_run_bias(&p->fwd, n->in[0]->out.data, n->in[1]->out.data, n->out.data,
                      n->in[2]->out.data, n->scratch, cae_node_threads(n));
}

/* dx += G W^T, dW += x^T G, db += column sums of G; except the fault. */
static void dense_backward(cae_node *n)
{
    const dense_plan *p = n->state;
    const int fault = (int)n->iattr[0];
    const cae_tensor *x = &n->in[0]->out, *w = &n->in[1]->out, *b = &n->in[2]->out;
    const int64_t B = x->shape[0], D = w->shape[0], H = w->shape[1];
    const cae_real *G = n->out.grad;
    const int th = cae_node_threads(n);
    cae_real *tmp = (cae_real *)n->scratch, *gs = tmp + B * D + D * H; /* gemm scratch */
    if (x->grad && fault == F_SIGN) {
        cae_gemm_run(&p->dx0, G, w->data, tmp, gs, th);
        for (int64_t i = 0; i < B * D; i++) x->grad[i] -= tmp[i];
    } else if (x->grad) {
        cae_gemm_run(&p->dx, G, w->data, x->grad, gs, th);
    }
    if (w->grad) {
        if (fault == F_TRANSPOSE) { /* G^T x (H x D) into the D x H buffer */
            cae_gemm_run(&p->dwt, G, x->data, w->grad, gs, th);
        } else if (fault == F_ROW_SHIFT) { /* row i gets row i + 1's */
            cae_real *t = tmp + B * D;
            cae_gemm_run(&p->dw0, x->data, G, t, gs, th);
            for (int64_t i = 0; i + 1 < D; i++)
                for (int64_t j = 0; j < H; j++) w->grad[i * H + j] += t[(i + 1) * H + j];
        } else {
            cae_gemm_run(&p->dw, x->data, G, w->grad, gs, th);
            if (fault == F_FACTOR2) cae_gemm_run(&p->dw, x->data, G, w->grad, gs, th);
            if (fault == F_ONE) w->grad[ONE_AT] += 1;
        }
    }
    if (b->grad)
        for (int64_t r = 0; r < B - (fault == F_NO_BIAS_TERM); r++)
            for (int64_t j = 0; j < H; j++) b->grad[j] += G[r * H + j];
}

static const cae_op dense_op = {.name = "dense", .n_in = 3, .infer = dense_infer,
                                .plan = dense_plan_fn, .forward = dense_forward,
                                .backward = dense_backward};

static cae_node *dense(cae_graph *g, cae_node *x, cae_node *w, cae_node *b, int fault)
{
    const cae_attr a = {.i = {fault}};
    return cae_node_new_attr(g, &dense_op, (cae_node *[]){x, w, b}, &a, "dense");
}

/* --------------------------------------------------------- the models */

/* A store with W (D x H, the CAE's initial scale) and b (H). */
static cae_params *store_new(int64_t D, int64_t H)
{
    cae_params *p = cae_params_new();
    cae_tensor *W = cae_params_add(p, "W", 2, (int64_t[]){D, H});
    cae_tensor *b = cae_params_add(p, "b", 1, (int64_t[]){H});
    ck_assert_ptr_nonnull(W);
    ck_assert_ptr_nonnull(b);
    tu_fill_uniform(W->data, W->size, -4 * sqrt(6.0 / (double)(D + H)), 4 * sqrt(6.0 / (double)(D + H)), 3);
    tu_fill_uniform(b->data, H, -0.5, 0.5, 4);
    return p;
}

/* loss = bce(x W + b, t): fault < 0 builds it with the library's affine
 * (the reference), otherwise with dense(fault). x keeps a gradient. */
static cae_graph *model(cae_params *p, int64_t B, int fault, cae_node **out)
{
    const cae_tensor *W = cae_params_get(p, "W");
    cae_graph *g = cae_graph_new(p, B);
    cae_node *x = cae_input(g, "x", 2, (int64_t[]){B, W->shape[0]});
    cae_node *t = cae_input(g, "t", 2, (int64_t[]){B, W->shape[1]});
    cae_input_requires_grad(x);
    cae_node *Wn = cae_param(g, cae_params_get(p, "W")), *bn = cae_param(g, cae_params_get(p, "b"));
    cae_node *z = fault < 0 ? cae_affine(g, x, Wn, bn, 0) : dense(g, x, Wn, bn, fault);
    ck_assert_msg(!cae_graph_compile(g, cae_bce_logits(g, z, t)), "%s", cae_graph_error(g));
    tu_fill_uniform(cae_node_value(x)->data, B * W->shape[0], 0, 1, 5);
    tu_fill_uniform(cae_node_value(t)->data, B * W->shape[1], 0, 1, 6);
    if (out) *out = z;
    return g;
}

static cae_node *input_named(cae_graph *g, const char *name)
{
    for (int i = 0; i < cae_graph_tape_length(g); i++) {
        cae_node *n = cae_graph_tape_at(g, i);
        if (cae_node_is_input(n) && !strcmp(cae_node_name(n), name)) return n;
    }
    ck_abort_msg("no input '%s'", name);
    return NULL;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---------------------------------------------------- cae_gradcompare */

START_TEST(compare_self_is_zero)
{
    cae_params *p = store_new(7, 6);
    cae_graph *g = model(p, 5, F_NONE, NULL), *h = model(p, 5, F_NONE, NULL);
    cae_gradcompare_report r;
    cae_error e;
    for (int k = 0; k < 2; k++) { /* the graph with itself, then with its twin */
        ck_assert_int_eq(cae_gradcompare(g, k ? h : g, NULL, &r, &e), CAE_OK);
        ck_assert_int_eq(r.n, 4); /* loss, W, b, x */
        const char *names[4] = {"loss", "W", "b", "x"};
        for (int i = 0; i < r.n; i++) {
            ck_assert_str_eq(r.diff[i].name, names[i]);
            ck_assert_msg(r.diff[i].max_abs_diff == 0 && r.diff[i].max_rel_diff == 0,
                          "%s: abs %g rel %g", names[i], r.diff[i].max_abs_diff,
                          r.diff[i].max_rel_diff);
            ck_assert_msg(r.diff[i].scale > 0, "%s: scale 0", names[i]);
        }
        ck_assert(r.max_rel_diff == 0 && r.max_abs_diff == 0);
        ck_assert_int_eq(r.diff[1].rank, 2);
        ck_assert_int_eq(r.diff[1].shape[0], 7);
        ck_assert_int_eq(r.diff[1].shape[1], 6);
        ck_assert_int_eq(r.diff[3].kind, CAE_DIFF_INPUT);
    }
    cae_graph_free(g);
    cae_graph_free(h);
    cae_params_free(p);
}
END_TEST

/* Every fault, on a small layer and on the CAE's 784 x 1000. */
START_TEST(compare_catches_faults)
{
    static const int64_t shapes[2][3] = {{5, 7, 6}, {20, 784, 1000}};
    for (int s = 0; s < 2; s++) {
        cae_params *p = store_new(shapes[s][1], shapes[s][2]);
        cae_graph *ref = model(p, shapes[s][0], -1, NULL);
        for (int f = 0; f < N_FAULTS; f++) {
            cae_graph *g = model(p, shapes[s][0], f, NULL);
            cae_gradcompare_report r;
            cae_error e;
            ck_assert_int_eq(cae_gradcompare(g, ref, NULL, &r, &e), CAE_OK);
            const cae_gradcompare_diff *w = &r.diff[r.worst];
            if (f == F_NONE) {
                ck_assert_msg(r.max_rel_diff <= CMP_TOL,
                              "right backward: %s rel diff %.3g at [%lld]: %.9g vs %.9g", w->name,
                              r.max_rel_diff, (long long)w->worst_index, w->worst_analytic,
                              w->worst_reference);
            } else {
                ck_assert_msg(r.max_rel_diff > 0.1 && !strcmp(w->name, fault_tensor[f]),
                              "%s (%lld x %lld): worst %s, rel diff %.3g", fault_name[f],
                              (long long)shapes[s][1], (long long)shapes[s][2], w->name,
                              r.max_rel_diff);
                ck_assert(r.diff[0].max_rel_diff <= CMP_TOL); /* the loss is right */
            }
            cae_graph_free(g);
        }
        cae_graph_free(ref);
        cae_params_free(p);
    }
}
END_TEST

/* The report says where: one wrong element of dW, off by exactly 1. */
START_TEST(compare_names_the_element)
{
    cae_params *p = store_new(7, 6);
    cae_graph *ref = model(p, 5, -1, NULL), *g = model(p, 5, F_ONE, NULL);
    cae_gradcompare_report r;
    ck_assert_int_eq(cae_gradcompare(g, ref, NULL, &r, NULL), CAE_OK);
    const cae_gradcompare_diff *w = &r.diff[r.worst];
    ck_assert_str_eq(w->name, "W");
    ck_assert_int_eq(w->kind, CAE_DIFF_PARAM);
    ck_assert_int_eq(w->worst_index, ONE_AT);
    ck_assert_msg(fabs(w->worst_analytic - w->worst_reference - 1) < 1e-5 &&
                      fabs(w->max_abs_diff - 1) < 1e-5,
                  "analytic %.9g reference %.9g abs %.9g", w->worst_analytic,
                  w->worst_reference, w->max_abs_diff);
    for (int i = 0; i < r.n; i++)
        if (i != r.worst) ck_assert_msg(r.diff[i].max_rel_diff <= CMP_TOL, "%s", r.diff[i].name);
    cae_graph_free(g);
    cae_graph_free(ref);
    cae_params_free(p);
}
END_TEST

/* Values and gradients of the store, bindings and RNG states as found. */
START_TEST(compare_leaves_state)
{
    cae_params *p = store_new(7, 6);
    cae_graph *g = model(p, 5, F_NONE, NULL), *ref = model(p, 5, -1, NULL);
    const size_t tot = cae_params_total(p);
    tu_fill_uniform(cae_params_grads(p), (int64_t)tot, -9, 9, 77); /* stale grads */
    cae_real *v0 = cae_alloc_reals(tot), *g0 = cae_alloc_reals(tot);
    memcpy(v0, cae_params_values(p), tot * sizeof *v0);
    memcpy(g0, cae_params_grads(p), tot * sizeof *g0);
    cae_real mine[5 * 7];
    tu_fill_uniform(mine, 35, 0, 1, 8);
    cae_real copy[5 * 7];
    memcpy(copy, mine, sizeof mine);
    cae_input_bind(input_named(g, "x"), mine); /* the caller's memory */
    cae_graph_seed(ref, 99);
    const cae_rng r0 = *cae_graph_rng(g), r1 = *cae_graph_rng(ref);
    cae_real *own_t = cae_node_value(input_named(ref, "t"))->data;
    for (int mode = 0; mode < 2; mode++) {
        cae_gradcompare_opts o = {.inputs = mode ? CAE_INPUTS_CALLER : CAE_INPUTS_RANDOM};
        cae_gradcompare_report r;
        ck_assert_int_eq(cae_gradcompare(g, ref, &o, &r, NULL), CAE_OK);
        ck_assert_msg(r.max_rel_diff <= CMP_TOL, "mode %d: %g", mode, r.max_rel_diff);
        ck_assert(!memcmp(v0, cae_params_values(p), tot * sizeof *v0));
        ck_assert_msg(!memcmp(g0, cae_params_grads(p), tot * sizeof *g0), "gradients changed");
        ck_assert(cae_node_value(input_named(g, "x"))->data == mine);
        ck_assert(cae_node_value(input_named(ref, "t"))->data == own_t);
        ck_assert(!memcmp(mine, copy, sizeof mine));
        ck_assert(!memcmp(cae_graph_rng(g), &r0, sizeof r0));
        ck_assert(!memcmp(cae_graph_rng(ref), &r1, sizeof r1));
    }
    cae_free(v0);
    cae_free(g0);
    cae_graph_free(g);
    cae_graph_free(ref);
    cae_params_free(p);
}
END_TEST

/* CAE_INPUTS_CALLER: the analytic graph's inputs go to both (the twin's
 * own, different values are ignored); CAE_INPUTS_RANDOM: a seed and a range
 * decide the draw. */
START_TEST(compare_inputs)
{
    cae_params *p = store_new(7, 6);
    cae_graph *g = model(p, 5, -1, NULL), *h = model(p, 5, -1, NULL);
    tu_fill_uniform(cae_node_value(input_named(h, "x"))->data, 35, -5, 5, 123);
    cae_gradcompare_report r;
    cae_gradcompare_opts o = {.inputs = CAE_INPUTS_CALLER};
    ck_assert_int_eq(cae_gradcompare(g, h, &o, &r, NULL), CAE_OK);
    ck_assert(r.max_abs_diff == 0);
    cae_graph_forward(g);
    ck_assert(r.diff[0].worst_analytic == cae_node_value(cae_graph_loss(g))->data[0]);
    double loss[4];
    const cae_gradcompare_opts ro[4] = {{.seed = 1}, {.seed = 1}, {.seed = 2}, {.seed = 1, .lo = -3, .hi = 3}};
    for (int k = 0; k < 4; k++) {
        ck_assert_int_eq(cae_gradcompare(g, h, &ro[k], &r, NULL), CAE_OK);
        ck_assert(r.max_abs_diff == 0);
        loss[k] = r.diff[0].worst_analytic;
    }
    ck_assert(loss[0] == loss[1] && loss[0] != loss[2] && loss[0] != loss[3]);
    cae_graph_free(g);
    cae_graph_free(h);
    cae_params_free(p);
}
END_TEST

/* Noise is frozen: a noisy graph compared with itself is 0. */
START_TEST(compare_noise_frozen)
{
    cae_params *p = store_new(7, 6);
    cae_graph *g = cae_graph_new(p, 5);
    cae_node *x = cae_input(g, "x", 2, (int64_t[]){5, 7});
    cae_node *z = cae_affine(g, cae_gaussian_noise(g, x, 0.3), cae_param(g, cae_params_get(p, "W")),
                             cae_param(g, cae_params_get(p, "b")), 0);
    ck_assert_int_eq(cae_graph_compile(g, cae_sum(g, cae_square(g, z))), 0);
    cae_gradcompare_report r;
    ck_assert_int_eq(cae_gradcompare(g, g, NULL, &r, NULL), CAE_OK);
    ck_assert(r.max_abs_diff == 0 && r.diff[1].scale > 0);
    cae_graph_free(g);
    cae_params_free(p);
}
END_TEST

/* A parameter one graph does not use counts as a zero gradient there: an
 * analytic graph that forgot the bias (here b = 0, so the loss agrees). */
START_TEST(compare_unused_parameter)
{
    cae_params *p = store_new(7, 6);
    memset(cae_params_get(p, "b")->data, 0, 6 * sizeof(cae_real));
    cae_graph *ref = model(p, 5, -1, NULL), *g = cae_graph_new(p, 5);
    cae_node *x = cae_input(g, "x", 2, (int64_t[]){5, 7}), *t = cae_input(g, "t", 2, (int64_t[]){5, 6});
    cae_input_requires_grad(x);
    cae_node *z = cae_matmul(g, x, cae_param(g, cae_params_get(p, "W")), 0, 0);
    ck_assert_int_eq(cae_graph_compile(g, cae_bce_logits(g, z, t)), 0);
    cae_gradcompare_report r;
    for (int k = 0; k < 2; k++) { /* either way round */
        ck_assert_int_eq(cae_gradcompare(k ? ref : g, k ? g : ref, NULL, &r, NULL), CAE_OK);
        ck_assert_int_eq(r.n, 4);
        const cae_gradcompare_diff *w = &r.diff[r.worst];
        ck_assert_str_eq(w->name, "b");
        ck_assert_msg(w->max_rel_diff == 1 && (k ? w->worst_reference : w->worst_analytic) == 0,
                      "b: rel %g, %g vs %g", w->max_rel_diff, w->worst_analytic, w->worst_reference);
        ck_assert(r.diff[0].max_rel_diff <= CMP_TOL && r.diff[1].max_rel_diff <= CMP_TOL);
    }
    cae_graph_free(g);
    cae_graph_free(ref);
    cae_params_free(p);
}
END_TEST

START_TEST(compare_errors)
{
    cae_params *p = store_new(7, 6), *q = store_new(7, 6);
    cae_graph *g = model(p, 5, -1, NULL), *other = model(q, 5, -1, NULL);
    cae_gradcompare_report r;
    cae_error e;
    tu_expect_err(cae_gradcompare(g, other, NULL, &r, &e), CAE_ERR_MISMATCH, &e, "different parameter stores");
    tu_expect_err(cae_gradcompare(g, NULL, NULL, &r, &e), CAE_ERR_ARG, &e, "reference graph");
    tu_expect_err(cae_gradcompare(g, g, NULL, NULL, &e), CAE_ERR_ARG, &e, "report");
    cae_gradcompare_opts bad = {.lo = 2, .hi = 1};
    tu_expect_err(cae_gradcompare(g, g, &bad, &r, &e), CAE_ERR_ARG, &e, "range");
    /* inputs: a missing name, a shape, a gradient kept by one graph only */
    const char *parts[4] = {"input 'x' of the analytic graph has no input", "is 5x7 in the analytic graph, 5x8",
                            "keeps a gradient in the analytic graph only", "not compiled"};
    for (int k = 0; k < 4; k++) {
        cae_graph *h = cae_graph_new(p, 5);
        cae_node *x = cae_input(h, k == 0 ? "y" : "x", 2, (int64_t[]){5, k == 1 ? 8 : 7});
        cae_node *t = cae_input(h, "t", 2, (int64_t[]){5, 6});
        if (k != 2) cae_input_requires_grad(x);
        cae_node *W = cae_param(h, cae_params_get(p, "W"));
        if (k == 1) W = cae_const(h, "W8", 2, (int64_t[]){8, 7}, 0.1);
        cae_node *z = cae_matmul(h, x, W, 0, 0);
        if (k == 1) z = cae_matmul(h, z, cae_param(h, cae_params_get(p, "W")), 0, 0);
        if (k < 3) ck_assert_int_eq(cae_graph_compile(h, cae_bce_logits(h, z, t)), 0);
        tu_expect_err(cae_gradcompare(g, h, NULL, &r, &e), k < 3 ? CAE_ERR_MISMATCH : CAE_ERR_COMPILE,
                   &e, parts[k]);
        cae_graph_free(h);
    }
    /* a loss that is not a scalar */
    cae_graph *h = cae_graph_new(p, 5);
    cae_node *x = cae_input(h, "x", 2, (int64_t[]){5, 7});
    ck_assert_int_eq(cae_graph_compile(h, cae_matmul(h, x, cae_param(h, cae_params_get(p, "W")), 0, 0)), 0);
    tu_expect_err(cae_gradcompare(h, h, NULL, &r, &e), CAE_ERR_MISMATCH, &e, "5x6");
    /* parameters added after compile */
    cae_params_add(p, "late", 1, (int64_t[]){3});
    tu_expect_err(cae_gradcompare(g, g, NULL, &r, &e), CAE_ERR_COMPILE, &e, "recompile");
    cae_graph_free(h);
    cae_graph_free(g);
    cae_graph_free(other);
    cae_params_free(p);
    cae_params_free(q);
}
END_TEST

/* ------------------------------------------------------- cae_dircheck */

/* The right backward passes, every fault is caught, with K = 4 on the
 * CAE's 784 x 1000 W (and on a small layer; the one wrong element only
 * there). Prints the time taken. */
START_TEST(dircheck_catches_faults)
{
    static const int64_t shapes[2][3] = {{20, 784, 1000}, {5, 7, 6}};
    for (int s = 0; s < 2; s++) {
        cae_params *p = store_new(shapes[s][1], shapes[s][2]);
        for (int f = -1; f < N_FAULTS; f++) {
            if (s == 0 && f == F_ONE) continue; /* 1 of 784 000: diluted (cae/gradcheck.h) */
            cae_graph *g = model(p, shapes[s][0], f, NULL);
            cae_graph_forward(g); /* warm: first-touch of the buffers */
            cae_dircheck_report r;
            cae_error e;
            const double t0 = now();
            ck_assert_int_eq(cae_dircheck(g, NULL, &r, &e), CAE_OK);
            const double ms = 1e3 * (now() - t0);
            if (s == 0)
                printf("dircheck K=4, %s, W %lldx%lld B=%lld (%lld elements in %d tensors): "
                       "%.1f ms, max rel diff %.3g (%s)\n",
                       sizeof(cae_real) == 8 ? "double" : "float", (long long)shapes[s][1],
                       (long long)shapes[s][2], (long long)shapes[s][0], (long long)r.n_elements,
                       r.n_tensors, ms, r.max_rel_diff, f < 0 ? "library's affine" : fault_name[f]);
            ck_assert_int_eq(r.n_dirs, 4);
            ck_assert_int_eq(r.n_tensors, 3);
            if (f <= F_NONE)
                ck_assert_msg(r.max_rel_diff <= DIR_TOL,
                              "%s: direction %d: central %.9g, backward %.9g (rel %.3g, scale %.3g)",
                              f < 0 ? "affine" : "dense", r.worst, r.forward[r.worst],
                              r.reverse[r.worst], r.max_rel_diff, r.scale);
            else
                ck_assert_msg(r.max_rel_diff > 2 * DIR_TOL,
                              "%s (%lld x %lld) not caught: rel %.3g (central %.9g, backward %.9g)",
                              fault_name[f], (long long)shapes[s][1], (long long)shapes[s][2],
                              r.max_rel_diff, r.forward[r.worst], r.reverse[r.worst]);
            cae_graph_free(g);
        }
        fflush(stdout);
        cae_params_free(p);
    }
}
END_TEST

/* One tensor at a time (wrt) finds which one is wrong; `of` checks
 * <v, node> through cae_graph_backward_from. */
START_TEST(dircheck_wrt_and_of)
{
    cae_params *p = store_new(7, 6);
    for (int f = 0; f < N_FAULTS; f++) {
        cae_node *z;
        cae_graph *g = model(p, 5, f, &z);
        const char *names[3] = {"W", "b", "x"};
        cae_node *wrt[3] = {NULL, NULL, input_named(g, "x")};
        for (int i = 0; i < cae_graph_tape_length(g); i++) {
            cae_node *n = cae_graph_tape_at(g, i);
            if (cae_node_param(n)) wrt[strcmp(cae_node_param(n)->name, "W") ? 1 : 0] = n;
        }
        for (int k = 0; k < 3; k++)
            for (int use_of = 0; use_of < 2; use_of++) {
                cae_dircheck_opts o = {.wrt = wrt[k], .of = use_of ? z : NULL, .seed = 3};
                cae_dircheck_report r;
                ck_assert_int_eq(cae_dircheck(g, &o, &r, NULL), CAE_OK);
                ck_assert_int_eq(r.n_tensors, 1);
                const int wrong = f != F_NONE && !strcmp(fault_tensor[f], names[k]);
                ck_assert_msg(wrong ? r.max_rel_diff > 2 * DIR_TOL : r.max_rel_diff <= DIR_TOL,
                              "%s, wrt %s, of %s: rel %.3g", fault_name[f], names[k],
                              use_of ? "z" : "loss", r.max_rel_diff);
            }
        cae_graph_free(g);
    }
    cae_params_free(p);
}
END_TEST

START_TEST(dircheck_leaves_state)
{
    cae_params *p = store_new(7, 6);
    cae_graph *g = model(p, 5, F_NONE, NULL);
    const size_t tot = cae_params_total(p);
    tu_fill_uniform(cae_params_grads(p), (int64_t)tot, -9, 9, 77);
    cae_real *v0 = cae_alloc_reals(tot), *g0 = cae_alloc_reals(tot);
    memcpy(v0, cae_params_values(p), tot * sizeof *v0);
    memcpy(g0, cae_params_grads(p), tot * sizeof *g0);
    cae_real mine[5 * 7], copy[5 * 7];
    tu_fill_uniform(mine, 35, 0, 1, 8);
    memcpy(copy, mine, sizeof mine);
    cae_input_bind(input_named(g, "x"), mine);
    const cae_rng r0 = *cae_graph_rng(g);
    cae_dircheck_report r;
    ck_assert_int_eq(cae_dircheck(g, &(cae_dircheck_opts){.directions = 7}, &r, NULL), CAE_OK);
    ck_assert_int_eq(r.n_dirs, 7);
    ck_assert(r.max_rel_diff <= DIR_TOL);
    ck_assert(!memcmp(v0, cae_params_values(p), tot * sizeof *v0));
    ck_assert(!memcmp(g0, cae_params_grads(p), tot * sizeof *g0));
    ck_assert(cae_node_value(input_named(g, "x"))->data == mine);
    ck_assert(!memcmp(mine, copy, sizeof mine));
    ck_assert(!memcmp(cae_graph_rng(g), &r0, sizeof r0));
    cae_free(v0);
    cae_free(g0);
    cae_graph_free(g);
    cae_params_free(p);
}
END_TEST

START_TEST(dircheck_errors)
{
    cae_params *p = store_new(7, 6);
    cae_node *z;
    cae_graph *g = model(p, 5, F_NONE, &z), *h = model(p, 5, F_NONE, NULL);
    cae_dircheck_report r;
    cae_error e;
    tu_expect_err(cae_dircheck(g, &(cae_dircheck_opts){.directions = CAE_DIRCHECK_MAX + 1}, &r, &e),
               CAE_ERR_ARG, &e, "directions");
    tu_expect_err(cae_dircheck(g, &(cae_dircheck_opts){.eps = -1}, &r, &e), CAE_ERR_ARG, &e, "eps");
    tu_expect_err(cae_dircheck(g, &(cae_dircheck_opts){.wrt = input_named(h, "x")}, &r, &e),
               CAE_ERR_TAPE, &e, "'x' (wrt) is not on the graph's tape");
    tu_expect_err(cae_dircheck(g, &(cae_dircheck_opts){.wrt = z}, &r, &e), CAE_ERR_ARG, &e,
               "neither a parameter nor an input");
    tu_expect_err(cae_dircheck(g, &(cae_dircheck_opts){.wrt = input_named(g, "t")}, &r, &e),
               CAE_ERR_NOGRAD, &e, "'t' (wrt) keeps no gradient");
    tu_expect_err(cae_dircheck(g, &(cae_dircheck_opts){.of = input_named(h, "t")}, &r, &e),
               CAE_ERR_TAPE, &e, "(of)");
    tu_expect_err(cae_dircheck(NULL, NULL, &r, &e), CAE_ERR_ARG, &e, "NULL");
    cae_graph *c = cae_graph_new(NULL, 1); /* nothing keeps a gradient */
    cae_node *x = cae_input(c, "x", 1, (int64_t[]){3});
    ck_assert_int_eq(cae_graph_compile(c, cae_sum(c, cae_square(c, x))), 0);
    tu_expect_err(cae_dircheck(c, NULL, &r, &e), CAE_ERR_ARG, &e, "nothing to check");
    cae_graph_free(c);
    cae_graph_free(g);
    cae_graph_free(h);
    cae_params_free(p);
}
END_TEST

/* cae_gradcheck's refusals: a status and a message naming the node. */
START_TEST(gradcheck_errors)
{
    cae_params *p = store_new(7, 6);
    cae_graph *g = model(p, 5, F_NONE, NULL), *h = model(p, 5, F_NONE, NULL);
    cae_gradcheck_report r;
    cae_error e;
    cae_node *x = input_named(g, "x");
    tu_expect_err(cae_gradcheck(g, x, 1e-2, 5, 1, 0, NULL, &e), CAE_ERR_ARG, &e, "report");
    tu_expect_err(cae_gradcheck(g, NULL, 1e-2, 5, 1, 0, &r, &e), CAE_ERR_ARG, &e, "wrt is NULL");
    tu_expect_err(cae_gradcheck(g, x, 0, 5, 1, 0, &r, &e), CAE_ERR_ARG, &e, "eps 0 for 'x'");
    tu_expect_err(cae_gradcheck(g, input_named(h, "x"), 1e-2, 5, 1, 0, &r, &e), CAE_ERR_TAPE, &e,
               "'x' is not on the graph's tape");
    tu_expect_err(cae_gradcheck(g, input_named(g, "t"), 1e-2, 5, 1, 0, &r, &e), CAE_ERR_NOGRAD, &e,
               "'t' keeps no gradient");
    tu_expect_err(cae_gradcheck(NULL, x, 1e-2, 5, 1, 0, &r, &e), CAE_ERR_ARG, &e, "NULL");
    ck_assert_int_eq(cae_gradcheck(g, x, 1e-2, 5, 1, 0, &r, NULL), CAE_OK); /* err may be NULL */
    ck_assert_int_eq(r.n_checked, 5);
    cae_params_add(p, "late", 1, (int64_t[]){3}); /* the store moves */
    tu_expect_err(cae_gradcheck(g, x, 1e-2, 5, 1, 0, &r, &e), CAE_ERR_COMPILE, &e, "recompile");
    cae_graph_free(g);
    cae_graph_free(h);
    cae_params_free(p);
}
END_TEST

/* ------------------------------------------------------ cae/testing.h */

START_TEST(macros_pass)
{
    cae_params *p = store_new(7, 6);
    cae_graph *g = model(p, 5, F_NONE, NULL), *ref = model(p, 5, -1, NULL);
    cae_ck_gradcompare(g, ref, CAE_CK_TOL_COMPARE);
    cae_ck_gradcompare_opts(g, ref, &(cae_gradcompare_opts){.inputs = CAE_INPUTS_CALLER},
                            CAE_CK_TOL_COMPARE);
    cae_ck_dircheck(g, CAE_CK_TOL_DIR);
    for (int i = 0; i < cae_graph_tape_length(g); i++) {
        cae_node *n = cae_graph_tape_at(g, i);
        if (cae_node_param(n) || (cae_node_is_input(n) && cae_needs_grad(n)))
            cae_ck_gradcheck(g, n, CAE_CK_TOL_FD);
    }
    cae_graph_free(g);
    cae_graph_free(ref);
    cae_params_free(p);
}
END_TEST

/* Failing cases, run by macros_fail_with_message in a forked child each. */
START_TEST(fail_compare)
{
    cae_params *p = store_new(7, 6);
    cae_graph *g = model(p, 5, F_ONE, NULL), *ref = model(p, 5, -1, NULL);
    cae_ck_gradcompare(g, ref, CAE_CK_TOL_COMPARE);
}
END_TEST

START_TEST(fail_compare_error)
{
    cae_params *p = store_new(7, 6), *q = store_new(7, 6);
    cae_ck_gradcompare(model(p, 5, F_NONE, NULL), model(q, 5, -1, NULL), CAE_CK_TOL_COMPARE);
}
END_TEST

START_TEST(fail_gradcheck)
{
    cae_params *p = store_new(7, 6);
    cae_graph *g = model(p, 5, F_ONE, NULL);
    cae_node *W = NULL;
    for (int i = 0; i < cae_graph_tape_length(g); i++)
        if (cae_node_param(cae_graph_tape_at(g, i)) == cae_params_get(p, "W")) W = cae_graph_tape_at(g, i);
    cae_ck_gradcheck(g, W, CAE_CK_TOL_FD);
}
END_TEST

START_TEST(fail_dircheck)
{
    cae_params *p = store_new(7, 6);
    cae_ck_dircheck(model(p, 5, F_NO_BIAS_TERM, NULL), CAE_CK_TOL_DIR);
}
END_TEST

/* Each failing case in a forked child (Check's own fork mode): it must
 * fail, at the macro's line in this file, with a message naming the
 * tensor, the index and both values. */
START_TEST(macros_fail_with_message)
{
    const struct {
        const char *name;
        const TTest *test;
        const char *parts[5];
    } cases[] = {
        {"fail_compare", fail_compare,
         {"cae_gradcompare: d loss/d W[2,5] (W is 7x6): analytic ", ", reference ",
          "(rel diff ", "> tol "}},
        {"fail_compare_error", fail_compare_error,
         {"cae_gradcompare failed (mismatch): ", "different parameter stores"}},
        {"fail_gradcheck", fail_gradcheck,
         {"cae_gradcheck: d loss/d W[2,5] (W is 7x6): backward ", ", central difference "}},
        {"fail_dircheck", fail_dircheck,
         {"cae_dircheck: direction ", "central difference ", ", backward ",
          "alone, over tol: b (rel "}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        Suite *s = suite_create("inner");
        TCase *tc = tcase_create(cases[c].name);
        tcase_add_test(tc, cases[c].test);
        suite_add_tcase(s, tc);
        SRunner *sr = srunner_create(s);
        srunner_set_fork_status(sr, CK_FORK);
        srunner_run(sr, "inner", cases[c].name, CK_SILENT); /* whatever CK_RUN_CASE says */
        ck_assert_int_eq(srunner_ntests_failed(sr), 1);
        TestResult **tr = srunner_failures(sr);
        const char *msg = tr_msg(tr[0]);
        ck_assert_msg(tr_rtype(tr[0]) == CK_FAILURE, "%s: not an assertion failure: %s",
                      cases[c].name, msg);
        ck_assert_msg(strstr(tr_lfile(tr[0]), "test_gradcompare.c") != NULL, "%s: failed in %s",
                      cases[c].name, tr_lfile(tr[0]));
        for (int k = 0; cases[c].parts[k]; k++)
            ck_assert_msg(strstr(msg, cases[c].parts[k]) != NULL,
                          "%s: message \"%s\" lacks \"%s\"", cases[c].name, msg,
                          cases[c].parts[k]);
        printf("%s: %s\n", cases[c].name, msg);
        free(tr);
        srunner_free(sr);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("gradcompare");
    TCase *tc = tcase_create("gradcompare");
    tcase_add_test(tc, compare_self_is_zero);
    tcase_add_test(tc, compare_catches_faults);
    tcase_add_test(tc, compare_names_the_element);
    tcase_add_test(tc, compare_leaves_state);
    tcase_add_test(tc, compare_inputs);
    tcase_add_test(tc, compare_noise_frozen);
    tcase_add_test(tc, compare_unused_parameter);
    tcase_add_test(tc, compare_errors);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    tc = tcase_create("dircheck");
    tcase_add_test(tc, dircheck_catches_faults);
    tcase_add_test(tc, dircheck_wrt_and_of);
    tcase_add_test(tc, dircheck_leaves_state);
    tcase_add_test(tc, dircheck_errors);
    tcase_add_test(tc, gradcheck_errors);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    tc = tcase_create("testing_h");
    tcase_add_test(tc, macros_pass);
    tcase_add_test(tc, macros_fail_with_message);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
