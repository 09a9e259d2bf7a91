/* Forward mode (cae/jvp.h): every op's tangent rule against central
 * differences of the op itself along the same directions, with one and
 * with three directions at once, on odd shapes; the reverse pass through
 * the tangent (reverse over forward) against finite differences, w.r.t.
 * the inputs and w.r.t. the tangents; a composite encoder; the refusal of
 * an op without a rule; and the errors of cae_jvp.
 *
 * One case per op: CK_RUN_CASE=<op> runs one (tests/CMakeLists.txt). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cae/gradcheck.h"
#include "cae/jvp.h"
#include "cae/ops.h"
#include "cae/penalty.h"
#include "testutil.h"

enum { UNIFORM, AWAY, LABELS };
enum { NONE = 0, BATCH = 1, SHARED = 2 }; /* tangent: none, K directions, one */

typedef struct {
    int rank;
    int64_t shape[3];
    double lo, hi;
    int fill;
    int tan;
} jspec;

typedef cae_node *(*build_fn)(cae_graph *g, cae_node *const *x);

#ifdef CAE_REAL_DOUBLE
#define FD_EPS 1e-6
#define JVP_TOL 1e-6
#else
#define FD_EPS 1e-2
#define JVP_TOL 2e-2
#endif

static void fill(cae_real *x, int64_t n, const jspec *s, uint64_t seed)
{
    tu_fill_uniform(x, n, s->fill == LABELS ? 0 : s->lo, s->hi, seed);
    for (int64_t i = 0; i < n; i++) {
        if (s->fill == AWAY) x[i] += x[i] >= 0 ? (cae_real)0.1 : (cae_real)-0.1;
        if (s->fill == LABELS) x[i] = floor(x[i]);
    }
}

/* out = build(x); its tangent along u (K directions for BATCH inputs, one
 * for SHARED ones) against (out(x + e u_k) - out(x - e u_k)) / 2e for
 * each direction k; then loss = sum(tangent (.) R) checked by finite
 * differences w.r.t. every input and every tangent with a gradient. */
static void check_jvp(const char *op, build_fn build, int n_in, const jspec *in, int64_t K)
{
    cae_graph *g = cae_graph_new(NULL, in[0].shape[0]);
    cae_node *x[4], *u[4], *xs[4], *us[4];
    int nt = 0;
    for (int i = 0; i < n_in; i++) {
        char name[8];
        snprintf(name, sizeof name, "x%d", i);
        x[i] = cae_input(g, name, in[i].rank, in[i].shape);
        u[i] = NULL;
        if (!in[i].tan) continue;
        cae_input_requires_grad(x[i]);
        int64_t sh[3] = {in[i].shape[0], in[i].shape[1], in[i].shape[2]};
        if (in[i].tan == BATCH) sh[0] *= K;
        snprintf(name, sizeof name, "u%d", i);
        u[i] = cae_input(g, name, in[i].rank, sh);
        cae_input_requires_grad(u[i]);
        xs[nt] = x[i];
        us[nt++] = u[i];
    }
    cae_node *out = build(g, x), *jv;
    ck_assert_msg(out != NULL, "%s: %s", op, cae_graph_error(g));
    ck_assert_msg(cae_jvp(g, 1, &out, nt, xs, us, &jv) == CAE_OK, "%s: jvp: %s", op,
                  cae_graph_error(g));
    int batch = 0;
    for (int i = 0; i < n_in; i++) batch |= in[i].tan == BATCH;
    const int64_t Kout = jv->out.size / out->out.size;
    ck_assert_msg(Kout == (batch ? K : 1), "%s: %lld directions out, %lld in", op,
                  (long long)Kout, (long long)K);
    cae_node *r = cae_const(g, "R", jv->out.rank, jv->out.shape, 0);
    cae_node *loss = cae_sum(g, cae_mul(g, jv, r));
    cae_graph_output(g, out);
    cae_graph_output(g, jv);
    ck_assert_msg(cae_graph_compile(g, loss) == 0, "%s: compile: %s", op, cae_graph_error(g));
    tu_fill_uniform(cae_node_value(r)->data, r->out.size, -1, 1, 99);
    for (int i = 0; i < n_in; i++) {
        fill(cae_node_value(x[i])->data, x[i]->out.size, &in[i], 10 + (uint64_t)i);
        if (u[i]) tu_fill_uniform(cae_node_value(u[i])->data, u[i]->out.size, -1, 1, 20 + (uint64_t)i);
    }
    cae_graph_seed(g, 5);
    const cae_rng frozen = *cae_graph_rng(g);
    cae_graph_forward(g);
    const int64_t m = out->out.size;
    double *want = calloc((size_t)(m * Kout), sizeof *want), *fp = malloc((size_t)m * sizeof *fp);
    /* Central differences, one direction at a time. */
    for (int64_t k = 0; k < Kout; k++) {
        for (int sign = 1; sign >= -1; sign -= 2) {
            for (int i = 0; i < n_in; i++) {
                if (!u[i]) continue;
                const int64_t n = x[i]->out.size, off = in[i].tan == BATCH ? k * n : 0;
                for (int64_t e = 0; e < n; e++)
                    x[i]->out.data[e] += (cae_real)(sign * FD_EPS) * u[i]->out.data[off + e];
            }
            *cae_graph_rng(g) = frozen;
            cae_graph_forward(g);
            for (int64_t e = 0; e < m; e++) {
                if (sign > 0) fp[e] = out->out.data[e];
                else want[k * m + e] = (fp[e] - out->out.data[e]) / (2 * FD_EPS);
            }
            for (int i = 0; i < n_in; i++) /* restore exactly */
                if (u[i]) fill(cae_node_value(x[i])->data, x[i]->out.size, &in[i], 10 + (uint64_t)i);
        }
    }
    *cae_graph_rng(g) = frozen;
    cae_graph_forward(g);
    for (int64_t e = 0; e < m * Kout; e++) {
        const double got = jv->out.data[e], w = want[e];
        ck_assert_msg(fabs(got - w) <= JVP_TOL * (1 + fabs(w)),
                      "%s (K %lld): tangent [%lld] = %.10g, central difference %.10g", op,
                      (long long)K, (long long)e, got, w);
    }
    /* Reverse over forward. */
    for (int i = 0; i < n_in; i++) {
        if (!u[i]) continue;
        cae_node *wrt[2] = {x[i], u[i]};
        for (int w = 0; w < 2; w++) {
            cae_gradcheck_report rep;
            *cae_graph_rng(g) = frozen;
            TU_GRADCHECK(g, wrt[w], 0, 1, &rep);
            ck_assert_msg(rep.max_rel_err <= TU_FD_TOL,
                          "%s (K %lld): d <R, tangent> / d %s [%lld]: reverse %.10g, numeric "
                          "%.10g (rel err %g)", op, (long long)K, cae_node_name(wrt[w]),
                          (long long)rep.worst_index, rep.worst_analytic, rep.worst_numeric,
                          rep.max_rel_err);
        }
    }
    free(want);
    free(fp);
    cae_graph_free(g);
}

#define T3(lo, hi, f, t) {3, {3, 5, 7}, lo, hi, f, t}
#define M57(lo, hi, f, t) {2, {5, 7}, lo, hi, f, t}
#define V7(t) {1, {7}, -1, 1, UNIFORM, t}
#define V5(t) {1, {5}, -1, 1, UNIFORM, t}

#define JVP_TEST(op, expr, ...)                                                \
    static cae_node *build_##op(cae_graph *g, cae_node *const *x)              \
    {                                                                          \
        return expr;                                                           \
    }                                                                          \
    START_TEST(jvp_##op)                                                       \
    {                                                                          \
        static const jspec s[] = {__VA_ARGS__};                                \
        for (int64_t K = 1; K <= 3; K += 2)                                    \
            check_jvp(#op, build_##op, (int)(sizeof s / sizeof s[0]), s, K);   \
    }                                                                          \
    END_TEST

JVP_TEST(add, cae_add(g, x[0], x[1]), T3(-1, 1, UNIFORM, BATCH), T3(-1, 1, UNIFORM, BATCH))
JVP_TEST(sub, cae_sub(g, x[0], x[1]), T3(-1, 1, UNIFORM, BATCH), T3(-1, 1, UNIFORM, BATCH))
JVP_TEST(mul, cae_mul(g, x[0], x[1]), T3(-1, 1, UNIFORM, BATCH), T3(-1, 1, UNIFORM, BATCH))
JVP_TEST(scale, cae_scale(g, x[0], (cae_real)-1.7), T3(-1, 1, UNIFORM, BATCH))
JVP_TEST(add_scalar, cae_add_scalar(g, x[0], (cae_real)0.3), T3(-1, 1, UNIFORM, BATCH))
JVP_TEST(square, cae_square(g, x[0]), T3(-1, 1, UNIFORM, BATCH))
JVP_TEST(bias_add, cae_bias_add(g, x[0], x[1]), M57(-1, 1, UNIFORM, BATCH), V7(SHARED))
JVP_TEST(mul_row, cae_mul_row(g, x[0], x[1]), M57(-1, 1, UNIFORM, BATCH), V7(SHARED))
JVP_TEST(mul_col, cae_mul_col(g, x[0], x[1]), M57(-1, 1, UNIFORM, BATCH), V5(BATCH))
JVP_TEST(sum, cae_sum(g, x[0]), T3(-1, 1, UNIFORM, BATCH))
JVP_TEST(sum_squares, cae_sum_squares(g, x[0]), T3(-1, 1, UNIFORM, BATCH))
JVP_TEST(mean, cae_mean(g, x[0]), T3(-1, 1, UNIFORM, BATCH))
JVP_TEST(sum_rows, cae_sum_rows(g, x[0]), M57(-1, 1, UNIFORM, BATCH))
JVP_TEST(sum_cols, cae_sum_cols(g, x[0]), M57(-1, 1, UNIFORM, BATCH))
JVP_TEST(sigmoid, cae_sigmoid(g, x[0]), T3(-4, 4, UNIFORM, BATCH))
JVP_TEST(tanh, cae_tanh(g, x[0]), T3(-2, 2, UNIFORM, BATCH))
JVP_TEST(relu, cae_relu(g, x[0]), T3(-1, 1, AWAY, BATCH))
JVP_TEST(softplus, cae_softplus(g, x[0]), T3(-4, 4, UNIFORM, BATCH))
JVP_TEST(exp, cae_exp(g, x[0]), T3(-2, 1, UNIFORM, BATCH))
JVP_TEST(log, cae_log(g, x[0]), T3(0.5, 2, UNIFORM, BATCH))
JVP_TEST(step, cae_add(g, cae_step(g, x[0]), x[0]), T3(-1, 1, AWAY, BATCH))
JVP_TEST(softmax, cae_softmax(g, x[0]), M57(-3, 3, UNIFORM, BATCH))
JVP_TEST(bce_logits, cae_bce_logits(g, x[0], x[1]), M57(-4, 4, UNIFORM, BATCH),
         M57(0, 1, UNIFORM, BATCH))
JVP_TEST(softmax_xent, cae_softmax_xent(g, x[0], x[1]), M57(-3, 3, UNIFORM, BATCH),
         {1, {5}, 0, 7, LABELS, NONE})
JVP_TEST(sq_error, cae_sq_error(g, x[0], x[1]), M57(-1, 1, UNIFORM, BATCH),
         M57(-1, 1, UNIFORM, BATCH))
JVP_TEST(free_energy, cae_free_energy(g, x[0], x[1], x[2]), M57(0, 1, UNIFORM, BATCH),
         {2, {5, 9}, -4, 4, UNIFORM, BATCH}, V7(SHARED))
JVP_TEST(gaussian_noise, cae_gaussian_noise(g, x[0], (cae_real)0.3), T3(-1, 1, UNIFORM, BATCH))
JVP_TEST(mask_noise, cae_mask_noise(g, x[0], (cae_real)0.4), T3(-1, 1, UNIFORM, BATCH))
JVP_TEST(tile, cae_mul(g, cae_tile(g, x[0], 2), cae_tile(g, x[0], 2)), M57(-1, 1, UNIFORM, SHARED))
JVP_TEST(repeat_rows, cae_square(g, cae_repeat_rows(g, x[0], 3)), M57(-1, 1, UNIFORM, BATCH))
JVP_TEST(reshape, cae_sum_rows(g, cae_square(g, cae_reshape(g, x[0], 2, (int64_t[]){7, 15}))),
         T3(-1, 1, UNIFORM, BATCH))
/* The products, every transpose combination; directions along A's rows. */
JVP_TEST(matmul, cae_matmul(g, x[0], x[1], 0, 0), {2, {5, 4}, -1, 1, UNIFORM, BATCH},
         {2, {4, 3}, -1, 1, UNIFORM, SHARED})
JVP_TEST(matmul_tb, cae_matmul(g, x[0], x[1], 0, 1), {2, {5, 4}, -1, 1, UNIFORM, BATCH},
         {2, {3, 4}, -1, 1, UNIFORM, SHARED})
JVP_TEST(matmul_ta, cae_matmul(g, x[1], x[0], 1, 0), {2, {4, 3}, -1, 1, UNIFORM, SHARED},
         {2, {4, 5}, -1, 1, UNIFORM, NONE})
JVP_TEST(affine, cae_affine(g, x[0], x[1], x[2], 0), {2, {5, 4}, -1, 1, UNIFORM, BATCH},
         {2, {4, 3}, -1, 1, UNIFORM, SHARED}, {1, {3}, -1, 1, UNIFORM, SHARED})
JVP_TEST(affine_tw, cae_affine(g, x[0], x[1], x[2], 1), {2, {5, 4}, -1, 1, UNIFORM, BATCH},
         {2, {3, 4}, -1, 1, UNIFORM, SHARED}, {1, {3}, -1, 1, UNIFORM, SHARED})
/* A tied auto-encoder with the composed contractive penalty: the tangent
 * of a whole objective, and through it a second derivative of the
 * penalty w.r.t. the weights. */
JVP_TEST(composite,
         cae_add(g, cae_bce_logits(g, cae_affine(g, cae_sigmoid(g, cae_affine(g, x[0], x[1], x[2], 0)),
                                                 x[1], x[3], 1),
                                   x[0]),
                 cae_contractive_penalty_composed(g, cae_affine(g, x[0], x[1], x[2], 0),
                                                  cae_sigmoid(g, cae_affine(g, x[0], x[1], x[2], 0)),
                                                  x[1], CAE_ACT_SIGMOID, CAE_W_IN_UNITS)),
         {2, {3, 6}, 0.05, 0.95, UNIFORM, BATCH}, {2, {6, 4}, -1, 1, UNIFORM, SHARED},
         {1, {4}, -0.5, 0.5, UNIFORM, SHARED}, {1, {6}, -0.5, 0.5, UNIFORM, NONE})

/* An op without a tangent rule on the path is refused by name; off the
 * path it does not matter. */
START_TEST(refuses_without_rule)
{
    cae_params *p = cae_params_new();
    cae_tensor *w = cae_params_add(p, "W", 2, (int64_t[]){4, 3});
    cae_graph *g = cae_graph_new(p, 2);
    cae_node *x = cae_input(g, "x", 2, (int64_t[]){2, 4});
    cae_node *W = cae_param(g, w);
    cae_node *a = cae_matmul(g, x, W, 0, 0), *h = cae_sigmoid(g, a);
    cae_node *pen = cae_contractive_penalty(g, a, h, W, CAE_ACT_SIGMOID, CAE_W_IN_UNITS);
    cae_node *u = cae_input(g, "u", 2, (int64_t[]){2, 4}), *t;
    ck_assert_int_eq(cae_jvp(g, 1, &h, 1, &x, &u, &t), CAE_OK); /* the penalty is off h's path */
    ck_assert_int_eq(cae_jvp(g, 1, &pen, 1, &x, &u, &t), CAE_ERR_UNSUPPORTED);
    ck_assert_ptr_null(t);
    ck_assert_msg(strstr(cae_graph_error(g), "contractive_penalty") &&
                      strstr(cae_graph_error(g), "no tangent rule"),
                  "%s", cae_graph_error(g));
    cae_graph_free(g);
    /* Shapes that do not fit, and tangents of another graph. */
    g = cae_graph_new(p, 2);
    x = cae_input(g, "x", 2, (int64_t[]){2, 4});
    h = cae_sigmoid(g, cae_matmul(g, x, cae_param(g, w), 0, 0));
    cae_node *bad = cae_input(g, "u", 2, (int64_t[]){2, 5});
    ck_assert_int_eq(cae_jvp(g, 1, &h, 1, &x, &bad, &t), CAE_ERR_SHAPE);
    ck_assert_msg(strstr(cae_graph_error(g), "2x5") && strstr(cae_graph_error(g), "2x4"), "%s",
                  cae_graph_error(g));
    ck_assert_int_ne(cae_graph_compile(g, h), 0); /* the error is sticky */
    cae_graph_free(g);
    cae_params_free(p);
}
END_TEST

/* An output that does not depend on the inputs gets a zero tangent with
 * the inputs' K directions; stop_grad passes none (its forward is the
 * identity, so finite differences would disagree on purpose). */
START_TEST(independent_output_is_zero)
{
    cae_graph *g = cae_graph_new(NULL, 2);
    cae_node *x = cae_input(g, "x", 2, (int64_t[]){2, 3});
    cae_node *y = cae_input(g, "y", 2, (int64_t[]){2, 3});
    cae_node *h[2] = {cae_sigmoid(g, y), cae_sigmoid(g, cae_stop_grad(g, x))};
    cae_node *u = cae_input(g, "u", 2, (int64_t[]){8, 3}), *t[2];
    ck_assert_int_eq(cae_jvp(g, 2, h, 1, &x, &u, t), CAE_OK);
    ck_assert_int_eq(cae_graph_compile(g, cae_add(g, cae_sum(g, t[0]), cae_sum(g, t[1]))), 0);
    cae_graph_forward(g);
    for (int k = 0; k < 2; k++) {
        ck_assert_int_eq(t[k]->out.shape[0], 8);
        for (int i = 0; i < 24; i++) ck_assert(t[k]->out.data[i] == 0);
    }
    cae_graph_free(g);
}
END_TEST

static void add_case(Suite *s, const char *name, const TTest *t)
{
    TCase *tc = tcase_create(name);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, t);
    suite_add_tcase(s, tc);
}
#define ADD(s, op) add_case(s, #op, jvp_##op)

int main(void)
{
    Suite *s = suite_create("jvp");
    ADD(s, add), ADD(s, sub), ADD(s, mul), ADD(s, scale), ADD(s, add_scalar), ADD(s, square);
    ADD(s, bias_add), ADD(s, mul_row), ADD(s, mul_col);
    ADD(s, sum), ADD(s, sum_squares), ADD(s, mean), ADD(s, sum_rows), ADD(s, sum_cols);
    ADD(s, sigmoid), ADD(s, tanh), ADD(s, relu), ADD(s, softplus), ADD(s, exp), ADD(s, log);
    ADD(s, step), ADD(s, softmax), ADD(s, bce_logits), ADD(s, softmax_xent), ADD(s, sq_error);
    ADD(s, free_energy);
    ADD(s, gaussian_noise), ADD(s, mask_noise);
    ADD(s, tile), ADD(s, repeat_rows), ADD(s, reshape);
    ADD(s, matmul), ADD(s, matmul_tb), ADD(s, matmul_ta), ADD(s, affine), ADD(s, affine_tw);
    ADD(s, composite);
    add_case(s, "errors", refuses_without_rule);
    add_case(s, "zero", independent_output_is_zero);
    return tu_run(s);
}
