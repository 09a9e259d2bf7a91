/* The graph machinery: parameter store, compile, tape, backward rules,
 * sticky errors, asserts on misuse, user-defined ops, the RNG and the
 * gradient checker itself (it must be able to fail). */
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include <omp.h>

#include "cae/gradcheck.h"
#include "cae/op.h"
#include "cae/ops.h"
#include "cae/penalty.h"
#include "cae/profile.h"
#include "cae/sgd.h"
#include "graph/internal.h" /* cae_graph_grad_zeroed: the store analysis */
#include "testutil.h"

/* A user-defined op, written exactly like a built-in: y = x^3, with a
 * backward that can be made wrong on purpose (fattr[0] scales it). */
static int cube_infer(cae_node *n) { return cae_node_same_shape(n, 0); }
static void cube_forward(cae_node *n)
{
    const cae_real *x = n->in[0]->out.data;
    for (int64_t i = 0; i < n->out.size; i++) n->out.data[i] = x[i] * x[i] * x[i];
}
static void cube_backward(cae_node *n)
{
    cae_tensor *x = &n->in[0]->out;
    if (!x->grad) return;
    const cae_real k = (cae_real)(n->fattr[0] == 0 ? 1 : n->fattr[0]);
    for (int64_t i = 0; i < n->out.size; i++)
        x->grad[i] += k * 3 * x->data[i] * x->data[i] * n->out.grad[i];
}
static const cae_op cube_op = {.name = "cube", .n_in = 1, .infer = cube_infer,
                               .forward = cube_forward, .backward = cube_backward};

static cae_node *cube(cae_graph *g, cae_node *x, double factor)
{
    cae_attr a = {.f = {factor}};
    return cae_node_new_attr(g, &cube_op, (cae_node *[]){x}, &a, "cube");
}

START_TEST(user_op_gradient_and_checker_can_fail)
{
    for (int wrong = 0; wrong < 2; wrong++) {
        cae_params *p = cae_params_new();
        cae_tensor *w = cae_params_add(p, "w", 2, (int64_t[]){3, 5});
        tu_fill_uniform(w->data, w->size, 0.2, 1, 3);
        cae_graph *g = cae_graph_new(p, 3);
        cae_node *W = cae_param(g, w);
        cae_node *loss = cae_sum(g, cube(g, W, wrong ? 1.01 : 1.0));
        ck_assert_msg(!cae_graph_compile(g, loss), "%s", cae_graph_error(g));
        cae_gradcheck_report r;
        TU_GRADCHECK(g, W, 0, 1, &r);
        ck_assert_int_eq(r.n_checked, 15);
        if (wrong) /* a 1% error in the backward must be caught */
            ck_assert_msg(r.max_rel_err > 5e-3, "checker missed a 1%% error: %g", r.max_rel_err);
        else
            ck_assert_msg(r.max_rel_err < TU_FD_TOL, "rel %g", r.max_rel_err);
        cae_graph_free(g);
        cae_params_free(p);
    }
}
END_TEST

START_TEST(fan_in_accumulates)
{
    /* loss = sum(x*x) + sum(cube(x)): d/dx = 2x + 3x^2 */
    cae_graph *g = cae_graph_new(NULL, 2);
    cae_node *x = cae_input(g, "x", 2, (int64_t[]){2, 3});
    cae_input_requires_grad(x);
    cae_real *xv = cae_node_value(x)->data;
    for (int i = 0; i < 6; i++) xv[i] = (cae_real)(0.5 * i - 1);
    cae_node *loss = cae_add(g, cae_sum(g, cae_mul(g, x, x)), cae_sum(g, cube(g, x, 1)));
    ck_assert(!cae_graph_compile(g, loss));
    cae_graph_forward(g);
    cae_graph_backward(g);
    for (int i = 0; i < 6; i++) {
        double want = 2 * xv[i] + 3 * xv[i] * xv[i];
        ck_assert_msg(fabs(cae_node_value(x)->grad[i] - want) < 1e-5, "x[%d]: %g want %g", i,
                      (double)cae_node_value(x)->grad[i], want);
    }
    /* Backward zeroes before accumulating: a second call gives the same. */
    cae_graph_backward(g);
    ck_assert(fabs(cae_node_value(x)->grad[5] - (2 * xv[5] + 3 * xv[5] * xv[5])) < 1e-5);
    cae_graph_free(g);
}
END_TEST

/* The first node to write a gradient in a pass stores it (no zeroing); the
 * others add. Gradients must not depend on what the buffers held before,
 * must match finite differences, and must equal a pass that zeroes every
 * buffer (backward_from the loss). A tied auto-encoder with the fused
 * penalty exercises every storing op: matmul (both operands), bias_add,
 * sigmoid, bce_logits, contractive_penalty; a parameter behind stop_grad
 * must come out zero. */
START_TEST(first_writers_store_and_others_accumulate)
{
    enum { B = 5, D = 7, H = 6 };
    cae_params *p = cae_params_new();
    cae_tensor *w = cae_params_add(p, "W", 2, (int64_t[]){D, H});
    cae_tensor *b = cae_params_add(p, "b", 1, (int64_t[]){H});
    cae_tensor *c = cae_params_add(p, "c", 1, (int64_t[]){D});
    cae_tensor *v = cae_params_add(p, "V", 1, (int64_t[]){3});
    tu_fill_uniform(w->data, w->size, -1, 1, 11);
    tu_fill_uniform(b->data, b->size, -0.5, 0.5, 12);
    tu_fill_uniform(c->data, c->size, -0.5, 0.5, 13);
    cae_graph *g = cae_graph_new(p, B);
    cae_node *x = cae_input(g, "x", 2, (int64_t[]){B, D});
    cae_input_requires_grad(x);
    tu_fill_uniform(cae_node_value(x)->data, B * D, 0, 1, 14);
    cae_node *W = cae_param(g, w), *bn = cae_param(g, b), *cn = cae_param(g, c);
    cae_node *a = cae_bias_add(g, cae_matmul(g, x, W, 0, 0), bn);
    cae_node *h = cae_sigmoid(g, a);
    cae_node *z = cae_bias_add(g, cae_matmul(g, h, W, 0, 1), cn);
    cae_node *pen = cae_contractive_penalty(g, a, h, W, CAE_ACT_SIGMOID, CAE_W_IN_UNITS);
    cae_node *loss = cae_add(g, cae_add(g, cae_bce_logits(g, z, x), cae_scale(g, pen, 0.3)),
                             cae_sum(g, cae_stop_grad(g, cae_param(g, v))));
    ck_assert_msg(!cae_graph_compile(g, loss), "%s", cae_graph_error(g));
    /* The analysis engaged: W's and h's first writers store, V is zeroed. */
    ck_assert_int_eq(cae_graph_grad_zeroed(W), 0);
    ck_assert_int_eq(cae_graph_grad_zeroed(h), 0);
    ck_assert_int_eq(cae_graph_grad_zeroed(x), 1); /* bce's target term adds: zeroed first */
    cae_graph_forward(g);
    cae_tensor *ts[5] = {w, b, c, v, cae_node_value(x)};
    cae_real *first[5];
    for (int pass = 0; pass < 3; pass++) {
        for (int t = 0; t < 5; t++) /* stale values a store must overwrite */
            for (int64_t i = 0; i < ts[t]->size; i++) ts[t]->grad[i] = (cae_real)(7 + i);
        if (pass < 2)
            cae_graph_backward(g);
        else
            cae_graph_backward_from(g, loss, (cae_real[]){1});
        for (int t = 0; t < 5; t++) {
            if (pass == 0) {
                first[t] = malloc((size_t)ts[t]->size * sizeof(cae_real));
                memcpy(first[t], ts[t]->grad, (size_t)ts[t]->size * sizeof(cae_real));
                continue;
            }
            for (int64_t i = 0; i < ts[t]->size; i++)
                ck_assert_msg(fabs((double)ts[t]->grad[i] - (double)first[t][i]) <=
                                  1e-6 * (1 + fabs((double)first[t][i])),
                              "pass %d, tensor %d [%lld]: %g, first pass %g", pass, t,
                              (long long)i, (double)ts[t]->grad[i], (double)first[t][i]);
        }
    }
    for (int64_t i = 0; i < v->size; i++) ck_assert(first[3][i] == 0);
    cae_node *wrt[4] = {W, bn, x, cn};
    for (int k = 0; k < 4; k++) {
        cae_gradcheck_report r;
        TU_GRADCHECK(g, wrt[k], 0, 1, &r);
        ck_assert_msg(r.max_rel_err < TU_FD_TOL, "input %d: rel %g at %lld (%g vs %g)", k,
                      r.max_rel_err, (long long)r.worst_index, r.worst_analytic, r.worst_numeric);
    }
    for (int t = 0; t < 5; t++) free(first[t]);
    cae_graph_free(g);
    cae_params_free(p);
}
END_TEST

/* One tensor, one node: cae_param on a tensor already in the graph returns
 * that node. W feeds an affine (a built-in that may store W's gradient when
 * it writes it first) and a user op that only adds (cube), in both orders
 * on the tape: whichever runs first in backward, the gradient is the sum of
 * both terms, d/dW [sum(x W + b) + 0.5 sum(W^3)] = X^T 1 + 1.5 W^2, and
 * matches finite differences, whatever the buffer held before. */
START_TEST(one_tensor_one_node_and_mixed_writers)
{
    enum { B = 3, D = 4, H = 5 };
    for (int order = 0; order < 2; order++) {
        cae_params *p = cae_params_new();
        cae_tensor *w = cae_params_add(p, "W", 2, (int64_t[]){D, H});
        cae_tensor *b = cae_params_add(p, "b", 1, (int64_t[]){H});
        tu_fill_uniform(w->data, w->size, -1, 1, 21);
        cae_graph *g = cae_graph_new(p, B);
        cae_node *x = cae_input(g, "x", 2, (int64_t[]){B, D});
        tu_fill_uniform(cae_node_value(x)->data, B * D, 0, 1, 22);
        cae_node *W1 = cae_param(g, w), *W2 = cae_param(g, w);
        ck_assert_ptr_eq(W1, W2);
        cae_node *aff = NULL, *cub = NULL;
        if (order == 0) { /* the user op is last on the tape: its backward runs first */
            aff = cae_sum(g, cae_affine(g, x, W1, cae_param(g, b), 0));
            cub = cae_scale(g, cae_sum(g, cube(g, W2, 1)), 0.5);
        } else {
            cub = cae_scale(g, cae_sum(g, cube(g, W2, 1)), 0.5);
            aff = cae_sum(g, cae_affine(g, x, W1, cae_param(g, b), 0));
        }
        cae_node *loss = order == 0 ? cae_add(g, aff, cub) : cae_add(g, cub, aff);
        ck_assert_msg(!cae_graph_compile(g, loss), "%s", cae_graph_error(g));
        /* The affine may store W's gradient only when it writes it first. */
        ck_assert_int_eq(cae_graph_grad_zeroed(W1), order == 0);
        int params = 0;
        for (int i = 0; i < cae_graph_tape_length(g); i++) params += cae_node_param(cae_graph_tape_at(g, i)) == w;
        ck_assert_int_eq(params, 1);
        cae_graph_forward(g);
        for (int64_t i = 0; i < w->size; i++) w->grad[i] = (cae_real)(100 + i); /* stale */
        cae_graph_backward(g);
        const cae_real *xv = cae_node_value(x)->data;
        for (int i = 0; i < D; i++)
            for (int j = 0; j < H; j++) {
                double want = 1.5 * w->data[i * H + j] * w->data[i * H + j];
                for (int r = 0; r < B; r++) want += xv[r * D + i];
                ck_assert_msg(fabs(w->grad[i * H + j] - want) <= 1e-5 * (1 + fabs(want)),
                              "order %d: dW[%d][%d] = %g, want %g", order, i, j,
                              (double)w->grad[i * H + j], want);
            }
        cae_gradcheck_report r;
        TU_GRADCHECK(g, W1, 0, 1, &r);
        ck_assert_msg(r.max_rel_err < TU_FD_TOL, "order %d: rel err %g", order, r.max_rel_err);
        cae_graph_free(g);
        cae_params_free(p);
    }
}
END_TEST

START_TEST(params_shared_between_graphs)
{
    cae_params *p = cae_params_new();
    cae_tensor *w = cae_params_add(p, "W", 2, (int64_t[]){4, 3});
    cae_tensor *b = cae_params_add(p, "b", 1, (int64_t[]){4});
    ck_assert_ptr_nonnull(w);
    ck_assert_ptr_nonnull(b);
    ck_assert_ptr_null(cae_params_add(p, "W", 1, (int64_t[]){2}));
    ck_assert_ptr_nonnull(strstr(cae_params_error(p), "already exists"));
    ck_assert_ptr_eq(cae_params_get(p, "b"), b);
    ck_assert_int_eq(((uintptr_t)w->data) % CAE_ALIGN, 0);
    ck_assert_int_eq(((uintptr_t)b->data) % CAE_ALIGN, 0);
    ck_assert(w->data >= cae_params_values(p) && b->data < cae_params_values(p) + cae_params_total(p));
    tu_fill_uniform(w->data, w->size, -1, 1, 1);
    cae_graph *g1 = cae_graph_new(p, 2), *g2 = cae_graph_new(p, 5);
    cae_node *x1 = cae_input(g1, "x", 2, (int64_t[]){2, 3});
    cae_node *x2 = cae_input(g2, "x", 2, (int64_t[]){5, 3});
    cae_node *l1 = cae_sum(g1, cae_matmul(g1, x1, cae_param(g1, w), 0, 1));
    cae_node *l2 = cae_sum(g2, cae_bias_add(g2, cae_matmul(g2, x2, cae_param(g2, w), 0, 1),
                                            cae_param(g2, b)));
    ck_assert(!cae_graph_compile(g1, l1));
    ck_assert(!cae_graph_compile(g2, l2));
    /* Both graphs see the same values without copies. */
    ck_assert_ptr_eq(cae_node_value(cae_graph_tape_at(g1, 1))->data, w->data);
    memset(w->data, 0, (size_t)w->size * sizeof(cae_real));
    w->data[0] = 42;
    cae_node_value(x1)->data[0] = 1;
    cae_graph_forward(g1);
    ck_assert(fabs(cae_node_value(l1)->data[0] - 42) < 1e-4);
    cae_graph_backward(g1);
    ck_assert(fabs(w->grad[0] - 1) < 1e-6); /* d/dW[0][0] = x[0][0] summed */
    cae_graph_free(g1);
    cae_graph_free(g2);
    cae_params_free(p);
}
END_TEST

START_TEST(forward_uncompiled_aborts)
{
    cae_graph *g = cae_graph_new(NULL, 1);
    cae_input(g, "x", 1, (int64_t[]){3});
    cae_graph_forward(g); /* must abort */
}
END_TEST

START_TEST(params_moved_after_compile_aborts)
{
    cae_params *p = cae_params_new();
    cae_tensor *w = cae_params_add(p, "W", 1, (int64_t[]){3});
    cae_graph *g = cae_graph_new(p, 1);
    cae_node *l = cae_sum(g, cae_param(g, w));
    ck_assert(!cae_graph_compile(g, l));
    cae_params_add(p, "V", 1, (int64_t[]){3});
    cae_graph_forward(g); /* the store moved: must abort, not read freed memory */
}
END_TEST

START_TEST(compile_errors_are_clean)
{
    cae_graph *g = cae_graph_new(NULL, 3);
    ck_assert_int_ne(cae_graph_compile(g, NULL), 0);
    ck_assert_ptr_nonnull(strstr(cae_graph_error(g), "NULL"));
    cae_graph_free(g);
    g = cae_graph_new(NULL, 3);
    cae_graph *other = cae_graph_new(NULL, 3);
    cae_node *a = cae_input(g, "a", 2, (int64_t[]){3, 5});
    cae_node *b = cae_input(other, "b", 2, (int64_t[]){3, 5});
    ck_assert_ptr_null(cae_add(g, a, b));
    ck_assert_ptr_nonnull(strstr(cae_graph_error(g), "another graph"));
    cae_node *bad = cae_add(g, a, cae_input(g, "c", 2, (int64_t[]){5, 3}));
    ck_assert_ptr_null(bad);
    /* Sticky: the first error is kept. */
    ck_assert_ptr_nonnull(strstr(cae_graph_error(g), "another graph"));
    ck_assert_ptr_null(cae_input(g, "neg", 2, (int64_t[]){-1, 3}));
    cae_graph_free(g);
    cae_graph_free(other);
}
END_TEST

START_TEST(backward_from_and_outputs)
{
    /* h = x W^T (B x 2); backward_from(h, e_j) gives row j of the Jacobian. */
    cae_params *p = cae_params_new();
    cae_tensor *w = cae_params_add(p, "W", 2, (int64_t[]){2, 3});
    for (int i = 0; i < 6; i++) w->data[i] = (cae_real)(i + 1);
    cae_graph *g = cae_graph_new(p, 1);
    cae_node *x = cae_input(g, "x", 2, (int64_t[]){1, 3});
    cae_input_requires_grad(x);
    cae_node *h = cae_matmul(g, x, cae_param(g, w), 0, 1);
    cae_node *extra = cae_scale(g, h, 2); /* not in the loss */
    cae_graph_output(g, extra);
    ck_assert(!cae_graph_compile(g, h));
    ck_assert_int_eq(cae_graph_tape_length(g), 4);
    cae_graph_forward(g);
    cae_real seed[2] = {0, 1};
    cae_graph_backward_from(g, h, seed);
    for (int i = 0; i < 3; i++) ck_assert(fabs(cae_node_value(x)->grad[i] - w->data[3 + i]) < 1e-6);
    cae_graph_free(g);
    cae_params_free(p);
}
END_TEST

/* An op that takes at least fattr[0] seconds forward and fattr[1]
 * backward (y = x): to see the node timer attribute time to its node. */
static void spin_for(double sec)
{
    const double t0 = omp_get_wtime();
    while (omp_get_wtime() - t0 < sec) {
    }
}
static void slow_forward(cae_node *n)
{
    spin_for(n->fattr[0]);
    memcpy(n->out.data, n->in[0]->out.data, (size_t)n->out.size * sizeof(cae_real));
}
static void slow_backward(cae_node *n)
{
    spin_for(n->fattr[1]);
    cae_tensor *x = &n->in[0]->out;
    for (int64_t i = 0; x->grad && i < n->out.size; i++) x->grad[i] += n->out.grad[i];
}
static const cae_op slow_op = {.name = "slow", .n_in = 1, .infer = cube_infer,
                               .forward = slow_forward, .backward = slow_backward};

START_TEST(node_timer_covers_the_passes)
{
    /* loss = sum(slow(x W)); slow takes >= 2 ms forward, >= 1 ms backward. */
    cae_params *p = cae_params_new();
    cae_tensor *w = cae_params_add(p, "W", 2, (int64_t[]){3, 2});
    for (int i = 0; i < 6; i++) w->data[i] = (cae_real)(i + 1) / 8;
    cae_graph *g = cae_graph_new(p, 2);
    cae_node *x = cae_input(g, "x", 2, (int64_t[]){2, 3});
    cae_node *h = cae_matmul(g, x, cae_param(g, w), 0, 0);
    cae_attr a = {.f = {2e-3, 1e-3}};
    cae_node *s = cae_node_new_attr(g, &slow_op, (cae_node *[]){h}, &a, "slow");
    cae_node *loss = cae_sum(g, s);
    ck_assert(!cae_graph_compile(g, loss));
    const int n = cae_graph_tape_length(g);
    int at_slow = -1, at_mm = -1;
    for (int i = 0; i < n; i++) {
        if (cae_graph_tape_at(g, i) == s) at_slow = i;
        if (cae_graph_tape_at(g, i) == h) at_mm = i;
    }
    ck_assert(at_slow >= 0 && at_mm >= 0);
    double f[16] = {0}, b[16] = {0};
    ck_assert_int_le(n, 16);
    cae_graph_time_nodes(g, f, b);
    for (int k = 0; k < 3; k++) { /* three forward, two backward, one step */
        cae_graph_forward(g);
        if (k < 2) cae_graph_backward(g);
    }
    cae_sgd sgd = {.lr = 0.1, .n = 1, .tensors = (cae_tensor *[]){w}};
    ck_assert(!cae_graph_step_sgd(g, &sgd));
    cae_graph_time_nodes(g, NULL, NULL);
    ck_assert_msg(f[at_slow] >= 4 * 2e-3 && b[at_slow] >= 3 * 1e-3, "slow: %g s forward, %g s backward",
                  f[at_slow], b[at_slow]);
    /* Fast nodes: only >= 0 (a clock of 1 us resolution may read 0). */
    ck_assert(f[at_mm] >= 0 && b[at_mm] >= 0);
    for (int i = 0; i < n; i++) {
        cae_node *nd = cae_graph_tape_at(g, i);
        if (nd == x || cae_node_param(nd)) ck_assert(f[i] == 0 && b[i] == 0); /* leaves */
    }
    /* Stopped: nothing more is added; forward only: the backward is not timed. */
    const double f_slow = f[at_slow], b_slow = b[at_slow];
    cae_graph_forward(g);
    cae_graph_backward(g);
    ck_assert(f[at_slow] == f_slow && b[at_slow] == b_slow);
    cae_graph_time_nodes(g, f, NULL);
    cae_graph_forward(g);
    cae_graph_backward(g);
    cae_graph_time_nodes(g, NULL, NULL);
    ck_assert(f[at_slow] >= f_slow + 2e-3 && b[at_slow] == b_slow);
    /* A recompile stops the timing: the arrays were sized for the old tape. */
    cae_graph_time_nodes(g, f, b);
    cae_graph_set_no_grad(g, 1);
    ck_assert(!cae_graph_compile(g, loss));
    const double f_after = f[at_slow];
    cae_graph_forward(g);
    ck_assert(f[at_slow] == f_after);
    cae_graph_free(g);
    cae_params_free(p);
}
END_TEST

START_TEST(rng_streams)
{
    cae_rng a, b, c;
    cae_rng_seed(&a, 5, 0);
    cae_rng_seed(&b, 5, 0);
    cae_rng_seed(&c, 5, 1);
    int same_ab = 1, same_ac = 1;
    for (int i = 0; i < 100; i++) {
        uint64_t x = cae_rng_next(&a), y = cae_rng_next(&b), z = cae_rng_next(&c);
        same_ab &= x == y;
        same_ac &= x == z;
    }
    ck_assert(same_ab);
    ck_assert(!same_ac);
    double s = 0, s2 = 0;
    const int n = 200000;
    for (int i = 0; i < n; i++) {
        double u = cae_rng_normal(&a);
        s += u;
        s2 += u * u;
    }
    ck_assert_msg(fabs(s / n) < 0.01 && fabs(s2 / n - 1) < 0.02, "mean %g var %g", s / n, s2 / n);
    int64_t idx[50], seen[50] = {0};
    for (int i = 0; i < 50; i++) idx[i] = i;
    cae_rng_shuffle(&a, idx, 50);
    for (int i = 0; i < 50; i++) seen[idx[i]]++;
    for (int i = 0; i < 50; i++) ck_assert_int_eq(seen[i], 1);
    for (uint64_t i = 0; i < 1000; i++) {
        double u = cae_rng_hash_uniform(99, i);
        ck_assert(u >= 0 && u < 1);
        ck_assert(u == cae_rng_hash_uniform(99, i));
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("graph");
    TCase *t = tcase_create("graph");
    tcase_add_test(t, user_op_gradient_and_checker_can_fail);
    tcase_add_test(t, fan_in_accumulates);
    tcase_add_test(t, first_writers_store_and_others_accumulate);
    tcase_add_test(t, one_tensor_one_node_and_mixed_writers);
    tcase_add_test(t, params_shared_between_graphs);
    tcase_add_test(t, compile_errors_are_clean);
    tcase_add_test(t, backward_from_and_outputs);
    tcase_add_test(t, node_timer_covers_the_passes);
    tcase_add_test(t, rng_streams);
    tcase_add_test_raise_signal(t, forward_uncompiled_aborts, SIGABRT);
    tcase_add_test_raise_signal(t, params_moved_after_compile_aborts, SIGABRT);
    suite_add_tcase(s, t);
    return tu_run(s);
}
