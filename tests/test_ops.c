/* Every op of cae/ops.h but matmul: central-difference checks of its
 * backward (one test case per op, named after it) with loss sum(out (.) R)
 * for a fixed random R on odd shapes; fan-in; stop_grad; and the error
 * paths (shape mismatches name the op and both shapes, NULL inputs
 * propagate to compile, which reports the first error). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cae/gradcheck.h"
#include "cae/op.h"
#include "cae/ops.h"
#include "testutil.h"

enum { UNIFORM, AWAY, LABELS }; /* AWAY: |x| >= 0.1 (off relu/step kinks) */

typedef struct {
    int rank;
    int64_t shape[3];
    double lo, hi;
    int fill;  /* UNIFORM, AWAY or LABELS (class indices 0..hi-1) */
    int grad;  /* 1: input requiring grad, 2: a parameter, 0: no gradient */
} spec;

typedef cae_node *(*build_fn)(cae_graph *g, cae_node *const *x);

static void fill(cae_real *x, int64_t n, const spec *s, uint64_t seed)
{
    tu_fill_uniform(x, n, s->fill == LABELS ? 0 : s->lo, s->hi, seed);
    for (int64_t i = 0; i < n; i++) {
        if (s->fill == AWAY) x[i] += x[i] >= 0 ? (cae_real)0.1 : (cae_real)-0.1;
        if (s->fill == LABELS) x[i] = floor(x[i]);
    }
}

/* Builds out = build(inputs), loss = sum(out (.) R) and checks d loss /d x
 * for every input with a gradient, at every element. */
static void check_op(const char *op, build_fn build, int n_in, const spec *in)
{
    cae_params *p = cae_params_new();
    cae_graph *g = cae_graph_new(p, in[0].shape[0]);
    cae_node *x[4];
    for (int i = 0; i < n_in; i++) {
        char name[8];
        snprintf(name, sizeof name, "x%d", i);
        if (in[i].grad == 2) {
            x[i] = cae_param(g, cae_params_add(p, name, in[i].rank, in[i].shape));
        } else {
            x[i] = cae_input(g, name, in[i].rank, in[i].shape);
            if (in[i].grad) cae_input_requires_grad(x[i]);
        }
        ck_assert_ptr_nonnull(x[i]);
    }
    cae_node *out = build(g, x);
    ck_assert_msg(out != NULL, "%s: constructor failed: %s", op, cae_graph_error(g));
    cae_node *r = cae_const(g, "R", out->out.rank, out->out.shape, 0);
    cae_node *loss = cae_sum(g, cae_mul(g, out, r));
    ck_assert_msg(cae_graph_compile(g, loss) == 0, "%s: compile: %s", op, cae_graph_error(g));
    tu_fill_uniform(cae_node_value(r)->data, r->out.size, -1, 1, 99);
    for (int i = 0; i < n_in; i++)
        fill(cae_node_value(x[i])->data, x[i]->out.size, &in[i], 10 + (uint64_t)i);
    for (int i = 0; i < n_in; i++) {
        if (!in[i].grad) continue;
        cae_gradcheck_report rep;
        TU_GRADCHECK(g, x[i], 0, 1, &rep);
        ck_assert_int_eq(rep.n_checked, x[i]->out.size);
        ck_assert_msg(rep.max_rel_err <= TU_FD_TOL,
                      "%s: d loss/d input %d [%lld]: analytic %.10g, numeric %.10g (rel err %g)",
                      op, i, (long long)rep.worst_index, rep.worst_analytic, rep.worst_numeric,
                      rep.max_rel_err);
    }
    cae_graph_free(g);
    cae_params_free(p);
}

/* Shapes: element-wise ops on 3x5x7, row ops and losses on 5x7. */
#define T3(lo, hi, f, gr) {3, {3, 5, 7}, lo, hi, f, gr}
#define M57(lo, hi, f, gr) {2, {5, 7}, lo, hi, f, gr}
#define V7(gr) {1, {7}, -1, 1, UNIFORM, gr}

#define GRAD_TEST(op, expr, ...)                                               \
    static cae_node *build_##op(cae_graph *g, cae_node *const *x)              \
    {                                                                          \
        return expr;                                                           \
    }                                                                          \
    START_TEST(grad_##op)                                                      \
    {                                                                          \
        static const spec s[] = {__VA_ARGS__};                                 \
        check_op(#op, build_##op, (int)(sizeof s / sizeof s[0]), s);           \
    }                                                                          \
    END_TEST

GRAD_TEST(add, cae_add(g, x[0], x[1]), T3(-1, 1, UNIFORM, 1), T3(-1, 1, UNIFORM, 1))
GRAD_TEST(sub, cae_sub(g, x[0], x[1]), T3(-1, 1, UNIFORM, 1), T3(-1, 1, UNIFORM, 1))
GRAD_TEST(mul, cae_mul(g, x[0], x[1]), T3(-1, 1, UNIFORM, 1), T3(-1, 1, UNIFORM, 1))
GRAD_TEST(scale, cae_scale(g, x[0], (cae_real)-1.7), T3(-1, 1, UNIFORM, 1))
GRAD_TEST(add_scalar, cae_add_scalar(g, x[0], (cae_real)0.3), T3(-1, 1, UNIFORM, 1))
GRAD_TEST(square, cae_square(g, x[0]), T3(-1, 1, UNIFORM, 1))
GRAD_TEST(bias_add, cae_bias_add(g, x[0], x[1]), M57(-1, 1, UNIFORM, 1), V7(2))
GRAD_TEST(mul_row, cae_mul_row(g, x[0], x[1]), M57(-1, 1, UNIFORM, 2), V7(1))
GRAD_TEST(sum, cae_sum(g, x[0]), T3(-1, 1, UNIFORM, 1))
GRAD_TEST(sum_squares, cae_sum_squares(g, x[0]), T3(-1, 1, UNIFORM, 1))
GRAD_TEST(mean, cae_mean(g, x[0]), T3(-1, 1, UNIFORM, 1))
GRAD_TEST(sum_rows, cae_sum_rows(g, x[0]), M57(-1, 1, UNIFORM, 1))
GRAD_TEST(sum_cols, cae_sum_cols(g, x[0]), M57(-1, 1, UNIFORM, 1))
GRAD_TEST(sigmoid, cae_sigmoid(g, x[0]), T3(-4, 4, UNIFORM, 1))
GRAD_TEST(tanh, cae_tanh(g, x[0]), T3(-2, 2, UNIFORM, 1))
GRAD_TEST(relu, cae_relu(g, x[0]), T3(-1, 1, AWAY, 1))
GRAD_TEST(softplus, cae_softplus(g, x[0]), T3(-4, 4, UNIFORM, 1))
GRAD_TEST(exp, cae_exp(g, x[0]), T3(-2, 1, UNIFORM, 1))
GRAD_TEST(log, cae_log(g, x[0]), T3(0.5, 2, UNIFORM, 1))
GRAD_TEST(step, cae_step(g, x[0]), T3(-1, 1, AWAY, 1))
GRAD_TEST(bce_logits, cae_bce_logits(g, x[0], x[1]), M57(-4, 4, UNIFORM, 1),
          M57(0, 1, UNIFORM, 1))
GRAD_TEST(softmax_xent, cae_softmax_xent(g, x[0], x[1]), M57(-3, 3, UNIFORM, 2),
          {1, {5}, 0, 7, LABELS, 0})
GRAD_TEST(sq_error, cae_sq_error(g, x[0], x[1]), M57(-1, 1, UNIFORM, 1),
          M57(-1, 1, UNIFORM, 2))
GRAD_TEST(free_energy, cae_free_energy(g, x[0], x[1], x[2]), M57(0, 1, UNIFORM, 1),
          {2, {5, 9}, -4, 4, UNIFORM, 1}, V7(2))
/* The same where each input has another writer, made after it (one
 * statement each: argument order is unspecified), so it runs first in
 * backward and the op adds to all three gradients instead of storing. */
static cae_node *fe_fan_in(cae_graph *g, cae_node *const *x)
{
    cae_node *f = cae_free_energy(g, x[0], x[1], x[2]);
    cae_node *s0 = cae_sum_squares(g, x[0]);
    cae_node *s1 = cae_sum_squares(g, x[1]);
    cae_node *s2 = cae_sum_squares(g, x[2]);
    return cae_add(g, cae_add(g, f, s0), cae_add(g, s1, s2));
}
GRAD_TEST(free_energy_fan_in, fe_fan_in(g, x), M57(0, 1, UNIFORM, 1), {2, {5, 9}, -4, 4, UNIFORM, 1},
          V7(2))
GRAD_TEST(gaussian_noise, cae_gaussian_noise(g, x[0], (cae_real)0.3), T3(-1, 1, UNIFORM, 1))
GRAD_TEST(mask_noise, cae_mask_noise(g, x[0], (cae_real)0.4), T3(-1, 1, UNIFORM, 1))
GRAD_TEST(mul_col, cae_mul_col(g, x[0], x[1]), M57(-1, 1, UNIFORM, 1), {1, {5}, -1, 1, UNIFORM, 2})
GRAD_TEST(softmax, cae_softmax(g, x[0]), M57(-3, 3, UNIFORM, 1))
GRAD_TEST(tile, cae_tile(g, x[0], 3), T3(-1, 1, UNIFORM, 1))
GRAD_TEST(repeat_rows, cae_repeat_rows(g, x[0], 3), M57(-1, 1, UNIFORM, 2))
GRAD_TEST(reshape, cae_reshape(g, x[0], 2, (int64_t[]){15, 7}), T3(-1, 1, UNIFORM, 1))
/* Composites: a tensor used twice gets the sum of both gradients. */
GRAD_TEST(fan_in, cae_add(g, cae_mul(g, cae_sigmoid(g, x[0]), x[0]), cae_square(g, x[0])),
          T3(-2, 2, UNIFORM, 1))
GRAD_TEST(self_mul, cae_mul(g, x[0], x[0]), T3(-1, 1, UNIFORM, 1))

/* Fan-in by hand: loss = sum(sigmoid(x) (.) R) + sum(x^2) gives
 * dx = R s (1 - s) + 2 x. */
START_TEST(fan_in_exact)
{
    const int64_t sh[3] = {3, 5, 7};
    cae_graph *g = cae_graph_new(NULL, 3);
    cae_node *x = cae_input(g, "x", 3, sh);
    cae_input_requires_grad(x);
    cae_node *r = cae_const(g, "R", 3, sh, 0);
    cae_node *loss = cae_add(g, cae_sum(g, cae_mul(g, cae_sigmoid(g, x), r)),
                             cae_sum(g, cae_square(g, x)));
    ck_assert_int_eq(cae_graph_compile(g, loss), 0);
    cae_real *xv = cae_node_value(x)->data, *rv = cae_node_value(r)->data;
    tu_fill_uniform(xv, 105, -2, 2, 3);
    tu_fill_uniform(rv, 105, -1, 1, 4);
    cae_graph_forward(g);
    cae_graph_backward(g);
    for (int i = 0; i < 105; i++) {
        double s = 1 / (1 + exp(-(double)xv[i]));
        double want = rv[i] * s * (1 - s) + 2 * xv[i];
        double got = cae_node_value(x)->grad[i];
        ck_assert_msg(fabs(got - want) <= 1e-5 * (1 + fabs(want)),
                      "fan_in: dx[%d] = %.10g, want %.10g", i, got, want);
    }
    cae_graph_free(g);
}
END_TEST

/* stop_grad: identity forward; loss = sum(stop_grad(x) (.) x) gives dx = x,
 * not 2x. */
START_TEST(stop_grad_blocks)
{
    const int64_t sh[3] = {3, 5, 7};
    cae_graph *g = cae_graph_new(NULL, 3);
    cae_node *x = cae_input(g, "x", 3, sh);
    cae_input_requires_grad(x);
    cae_node *s = cae_stop_grad(g, x);
    cae_node *loss = cae_sum(g, cae_mul(g, s, x));
    ck_assert_int_eq(cae_graph_compile(g, loss), 0);
    cae_real *xv = cae_node_value(x)->data;
    tu_fill_uniform(xv, 105, -1, 1, 5);
    cae_graph_forward(g);
    cae_graph_backward(g);
    ck_assert_ptr_null(cae_node_value(s)->grad);
    for (int i = 0; i < 105; i++) {
        ck_assert_msg(cae_node_value(s)->data[i] == xv[i], "stop_grad: out[%d] = %g, x = %g", i,
                      (double)cae_node_value(s)->data[i], (double)xv[i]);
        ck_assert_msg(cae_node_value(x)->grad[i] == xv[i], "stop_grad: dx[%d] = %g, want %g", i,
                      (double)cae_node_value(x)->grad[i], (double)xv[i]);
    }
    cae_graph_free(g);
}
END_TEST

/* ---------------------------------------------------------------- errors */

static void expect_error(cae_graph *g, cae_node *n, const char *const *parts)
{
    ck_assert_ptr_null(n);
    const char *e = cae_graph_error(g);
    ck_assert_ptr_nonnull(e);
    for (int i = 0; parts[i]; i++)
        ck_assert_msg(strstr(e, parts[i]) != NULL, "error \"%s\" lacks \"%s\"", e, parts[i]);
}

#define EXPECT_ERROR(expr, ...)                                                \
    do {                                                                       \
        cae_graph *g = cae_graph_new(NULL, 5);                                 \
        cae_node *a35 = cae_input(g, "a", 2, (int64_t[]){3, 5});               \
        cae_node *a53 = cae_input(g, "b", 2, (int64_t[]){5, 3});               \
        cae_node *a57 = cae_input(g, "c", 2, (int64_t[]){5, 7});               \
        cae_node *v6 = cae_input(g, "v", 1, (int64_t[]){6});                   \
        cae_node *t3 = cae_input(g, "t", 3, (int64_t[]){3, 5, 7});             \
        (void)a35, (void)a53, (void)a57, (void)v6, (void)t3;                   \
        expect_error(g, expr, (const char *const[]){__VA_ARGS__, NULL});       \
        cae_graph_free(g);                                                     \
    } while (0)

START_TEST(shape_errors)
{
    EXPECT_ERROR(cae_add(g, a35, a53), "'add'", "3x5", "5x3");
    EXPECT_ERROR(cae_sub(g, a35, t3), "'sub'", "3x5", "3x5x7");
    EXPECT_ERROR(cae_mul(g, a57, a53), "'mul'", "5x7", "5x3");
    EXPECT_ERROR(cae_bias_add(g, a57, v6), "'bias_add'", "5x7", "6");
    EXPECT_ERROR(cae_mul_row(g, t3, v6), "'mul_row'", "3x5x7");
    EXPECT_ERROR(cae_sum_rows(g, t3), "'sum_rows'", "3x5x7");
    EXPECT_ERROR(cae_sum_cols(g, v6), "'sum_cols'", "6");
    EXPECT_ERROR(cae_bce_logits(g, a57, a53), "'bce_logits'", "5x7", "5x3");
    EXPECT_ERROR(cae_sq_error(g, a35, a57), "'sq_error'", "3x5", "5x7");
    EXPECT_ERROR(cae_softmax_xent(g, a57, v6), "'softmax_xent'", "5x7", "6");
}
END_TEST

/* A NULL input passes through every constructor silently; compile then
 * fails with the first error, not a later one. */
START_TEST(null_propagates)
{
    cae_graph *g = cae_graph_new(NULL, 3);
    cae_node *a = cae_input(g, "a", 2, (int64_t[]){3, 5});
    cae_node *b = cae_input(g, "b", 2, (int64_t[]){5, 3});
    cae_node *bad = cae_add(g, a, b);
    ck_assert_ptr_null(bad);
    ck_assert_ptr_null(cae_sigmoid(g, bad));
    ck_assert_ptr_null(cae_scale(g, bad, 2));
    ck_assert_ptr_null(cae_mask_noise(g, bad, (cae_real)0.5));
    ck_assert_ptr_null(cae_bce_logits(g, bad, a));
    ck_assert_ptr_null(cae_mul(g, a, cae_input(g, "c", 1, (int64_t[]){4}))); /* a 2nd error */
    cae_node *loss = cae_sum(g, cae_softplus(g, bad));
    ck_assert_ptr_null(loss);
    ck_assert_int_ne(cae_graph_compile(g, loss), 0);
    const char *e = cae_graph_error(g);
    ck_assert_ptr_nonnull(e);
    ck_assert_msg(strstr(e, "'add'") && strstr(e, "3x5") && strstr(e, "5x3"),
                  "compile reports \"%s\", not the first error", e);
    cae_graph_free(g);
}
END_TEST

static void add_case(Suite *s, const char *name, const TTest *t)
{
    TCase *tc = tcase_create(name);
    tcase_add_test(tc, t);
    suite_add_tcase(s, tc);
}
#define ADD(s, op) add_case(s, #op, grad_##op)

int main(void)
{
    Suite *s = suite_create("ops");
    ADD(s, add), ADD(s, sub), ADD(s, mul), ADD(s, scale), ADD(s, add_scalar);
    ADD(s, square), ADD(s, bias_add), ADD(s, mul_row);
    ADD(s, sum), ADD(s, sum_squares), ADD(s, mean), ADD(s, sum_rows), ADD(s, sum_cols);
    ADD(s, sigmoid), ADD(s, tanh), ADD(s, relu), ADD(s, softplus), ADD(s, exp), ADD(s, log);
    ADD(s, step), ADD(s, bce_logits), ADD(s, softmax_xent), ADD(s, sq_error), ADD(s, free_energy);
    ADD(s, free_energy_fan_in);
    ADD(s, gaussian_noise), ADD(s, mask_noise), ADD(s, fan_in), ADD(s, self_mul);
    ADD(s, mul_col), ADD(s, softmax), ADD(s, tile), ADD(s, repeat_rows), ADD(s, reshape);
    add_case(s, "stop_grad", stop_grad_blocks);
    add_case(s, "fan_in_exact", fan_in_exact);
    TCase *tc = tcase_create("errors");
    tcase_add_test(tc, shape_errors);
    tcase_add_test(tc, null_propagates);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
