/* cae_dircheck's adjoint mode: <v, J u> by the tangent rules (cae_jvp)
 * against <J^T v, u> by backward. It passes, at its default tolerance, on
 * built-in ops (matmul, affine, sigmoid, the composed contractive penalty,
 * the probe penalty, a 2-layer stack; w.r.t. inputs and parameters), and it
 * fails, naming the op and both values, on a user's op ("mul2", a (.) b)
 * whose tangent rule or whose backward is off by 1% in one of its two
 * terms. Its refusals, and the state it leaves. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cae/gradcheck.h"
#include "cae/jvp.h"
#include "cae/op.h"
#include "cae/ops.h"
#include "cae/penalty.h"
#include "testutil.h"
/* after check.h (testutil.h): the Check assertions for users' suites */
#include "cae/testing.h"

/* ------------------------------------------------ the user's op: a (.) b */

static int mul2_infer(cae_node *n) { return cae_node_same_shapes(n); }

static void mul2_forward(cae_node *n)
{
    const cae_real *a = n->in[0]->out.data, *b = n->in[1]->out.data;
    for (int64_t i = 0; i < n->out.size; i++) n->out.data[i] = a[i] * b[i];
}

/* da += fb g b (fb = fattr[1]: 1 when right), db += g a. */
static void mul2_backward(cae_node *n)
{
    const cae_real *a = n->in[0]->out.data, *b = n->in[1]->out.data, *gy = n->out.grad;
    const cae_real fb = (cae_real)n->fattr[1];
    if (cae_needs_grad(n->in[0]))
        for (int64_t i = 0; i < n->out.size; i++) n->in[0]->out.grad[i] += fb * gy[i] * b[i];
    if (cae_needs_grad(n->in[1]))
        for (int64_t i = 0; i < n->out.size; i++) n->in[1]->out.grad[i] += gy[i] * a[i];
}

/* ft ta (.) b + a (.) tb (ft = fattr[0]: 1 when right). */
static cae_node *mul2_tangent(cae_graph *g, cae_node *n, cae_node *const *t)
{
    cae_node *ta = NULL, *tb = NULL;
    if (t[0]) {
        ta = cae_mul(g, t[0], cae_tangent_lift(g, n->in[1], cae_tangent_dirs(n->in[0], t[0])));
        if (n->fattr[0] != 1) ta = cae_scale(g, ta, (cae_real)n->fattr[0]);
    }
    if (t[1])
        tb = cae_mul(g, cae_tangent_lift(g, n->in[0], cae_tangent_dirs(n->in[1], t[1])), t[1]);
    return cae_tangent_sum(g, n, ta, tb);
}

static const cae_op mul2_op = {.name = "mul2", .n_in = 2, .infer = mul2_infer,
                               .forward = mul2_forward, .backward = mul2_backward,
                               .tangent = mul2_tangent};

static cae_node *mul2(cae_graph *g, cae_node *a, cae_node *b, double ft, double fb)
{
    const cae_attr at = {.f = {ft, fb}};
    return cae_node_new_attr(g, &mul2_op, (cae_node *[]){a, b}, &at, "mul2");
}

/* --------------------------------------------------------------- setup */

enum { B = 6, D = 9, H = 7, H2 = 5 };

/* A graph over store p with x (B x D, keeps a gradient), the output `of`
 * built by a case from x, and the tangent of `of` along t, a tangent input
 * of wrt's shape (wrt: x or a parameter node). */
typedef struct fixture {
    cae_params *p;
    cae_graph *g;
    cae_node *x, *wrt, *of, *t, *jt;
} fixture;

typedef cae_node *(*build_fn)(cae_graph *g, cae_params *p, cae_node *x, double ft, double fb);

static cae_node *pnode(cae_graph *g, cae_params *p, const char *name)
{
    return cae_param(g, cae_params_get(p, name));
}

static cae_node *b_matmul(cae_graph *g, cae_params *p, cae_node *x, double ft, double fb)
{
    return cae_matmul(g, x, pnode(g, p, "W1"), 0, 0);
}

static cae_node *b_affine(cae_graph *g, cae_params *p, cae_node *x, double ft, double fb)
{
    return cae_affine(g, x, pnode(g, p, "W1"), pnode(g, p, "b1"), 0);
}

static cae_node *b_sigmoid(cae_graph *g, cae_params *p, cae_node *x, double ft, double fb)
{
    return cae_sigmoid(g, x);
}

static cae_node *b_penalty(cae_graph *g, cae_params *p, cae_node *x, double ft, double fb)
{
    cae_node *W = pnode(g, p, "W1"), *a = cae_affine(g, x, W, pnode(g, p, "b1"), 0);
    cae_node *h = cae_activation(g, a, CAE_ACT_SIGMOID);
    return cae_contractive_penalty_composed(g, a, h, W, CAE_ACT_SIGMOID, CAE_W_IN_UNITS);
}

static cae_node *b_probes(cae_graph *g, cae_params *p, cae_node *x, double ft, double fb)
{
    cae_node *h = cae_sigmoid(g, cae_affine(g, x, pnode(g, p, "W1"), pnode(g, p, "b1"), 0));
    return cae_jacobian_penalty_probes(g, x, h, 3, CAE_PROBE_GAUSSIAN);
}

static cae_node *b_stack(cae_graph *g, cae_params *p, cae_node *x, double ft, double fb)
{
    cae_node *h = cae_sigmoid(g, cae_affine(g, x, pnode(g, p, "W1"), pnode(g, p, "b1"), 0));
    return cae_sigmoid(g, cae_affine(g, h, pnode(g, p, "W2"), pnode(g, p, "b2"), 0));
}

static cae_node *b_mul2(cae_graph *g, cae_params *p, cae_node *x, double ft, double fb)
{
    return mul2(g, x, cae_sigmoid(g, x), ft, fb);
}

/* mul2 inside a stack: its mistake is seen through affine layers. */
static cae_node *b_mul2_inside(cae_graph *g, cae_params *p, cae_node *x, double ft, double fb)
{
    cae_node *a = cae_affine(g, x, pnode(g, p, "W1"), pnode(g, p, "b1"), 0);
    cae_node *m = mul2(g, a, cae_sigmoid(g, a), ft, fb);
    return cae_affine(g, m, pnode(g, p, "W2"), pnode(g, p, "b2"), 0);
}

/* wrt_param: NULL for x, else the name of the parameter checked. */
static fixture make(build_fn build, const char *wrt_param, double ft, double fb)
{
    fixture f = {.p = cae_params_new()};
    const struct { const char *name; int rank; int64_t shape[2]; } ps[] = {
        {"W1", 2, {D, H}}, {"b1", 1, {H}}, {"W2", 2, {H, H2}}, {"b2", 1, {H2}}};
    cae_rng rng;
    cae_rng_seed(&rng, 7, 0);
    for (int i = 0; i < 4; i++)
        cae_tensor_uniform(cae_params_add(f.p, ps[i].name, ps[i].rank, ps[i].shape), 0.8f, &rng);
    f.g = cae_graph_new(f.p, B);
    f.x = cae_input(f.g, "x", 2, (int64_t[]){B, D});
    cae_input_requires_grad(f.x);
    f.of = build(f.g, f.p, f.x, ft, fb);
    f.wrt = wrt_param ? pnode(f.g, f.p, wrt_param) : f.x;
    const cae_tensor *w = cae_node_value(f.wrt);
    f.t = cae_input(f.g, "t", w->rank, w->shape);
    ck_assert_msg(cae_jvp(f.g, 1, &f.of, 1, &f.wrt, &f.t, &f.jt) == CAE_OK, "jvp: %s",
                  cae_graph_error(f.g));
    cae_graph_output(f.g, f.jt);
    cae_graph_output(f.g, f.of);
    ck_assert_msg(cae_graph_compile(f.g, cae_sum(f.g, f.of)) == 0, "compile: %s",
                  cae_graph_error(f.g));
    tu_fill_uniform(cae_node_value(f.x)->data, B * D, -1, 1, 3);
    cae_graph_seed(f.g, 11);
    return f;
}

static void unmake(fixture *f)
{
    cae_graph_free(f->g);
    cae_params_free(f->p);
}

static cae_dircheck_opts adjoint(const fixture *f)
{
    return (cae_dircheck_opts){.mode = CAE_DIRCHECK_ADJOINT, .directions = 4, .seed = 1,
                               .wrt = f->wrt, .of = f->of, .tangent_in = f->t,
                               .tangent_out = f->jt};
}

/* ----------------------------------------------------------- built-ins */

static const struct {
    const char *name;
    build_fn build;
    const char *wrt; /* NULL: x */
} builtin[] = {
    {"matmul (x)", b_matmul, NULL},   {"matmul (W)", b_matmul, "W1"},
    {"affine (x)", b_affine, NULL},   {"affine (W)", b_affine, "W1"},
    {"affine (b)", b_affine, "b1"},   {"sigmoid", b_sigmoid, NULL},
    {"penalty (x)", b_penalty, NULL}, {"penalty (W)", b_penalty, "W1"},
    {"probe penalty (x)", b_probes, NULL}, {"probe penalty (W)", b_probes, "W1"},
    {"stack (x)", b_stack, NULL},     {"stack (W1)", b_stack, "W1"},
    {"stack (b2)", b_stack, "b2"},    {"mul2 right", b_mul2, NULL},
    {"mul2 right, inside", b_mul2_inside, NULL},
};
enum { N_BUILTIN = sizeof builtin / sizeof builtin[0] };

START_TEST(adjoint_passes_builtins)
{
    fixture f = make(builtin[_i].build, builtin[_i].wrt, 1, 1);
    cae_dircheck_opts o = adjoint(&f);
    cae_dircheck_report r;
    cae_error e;
    const cae_status st = cae_dircheck(f.g, &o, &r, &e);
    ck_assert_msg(st == CAE_OK, "%s: %s", builtin[_i].name, e.msg);
    ck_assert_int_eq(r.n_dirs, 4);
    ck_assert_int_eq(r.n_tensors, 1);
    ck_assert_int_eq(r.n_elements, cae_node_value(f.wrt)->size);
    for (int k = 0; k < 4; k++) ck_assert(r.forward[k] != 0 && r.scale > 0);
    printf("adjoint %-20s max rel diff %.2e (forward %.6g, reverse %.6g)\n", builtin[_i].name,
           r.max_rel_diff, r.forward[r.worst], r.reverse[r.worst]);
    unmake(&f);
}
END_TEST

/* -------------------------------------------------- injected mistakes */

static const struct {
    const char *name;
    build_fn build;
    double ft, fb;
} faulty[] = {
    {"tangent 1% off in one term", b_mul2, 1.01, 1},
    {"backward 1% off in one term", b_mul2, 1, 1.01},
    {"tangent 1% off, inside a stack", b_mul2_inside, 1.01, 1},
    {"backward 1% off, inside a stack", b_mul2_inside, 1, 1.01},
};
enum { N_FAULTY = sizeof faulty / sizeof faulty[0] };

START_TEST(adjoint_catches_faults)
{
    fixture f = make(faulty[_i].build, NULL, faulty[_i].ft, faulty[_i].fb);
    cae_dircheck_opts o = adjoint(&f);
    cae_dircheck_report r;
    cae_error e;
    const cae_status st = cae_dircheck(f.g, &o, &r, &e);
    printf("adjoint %-32s max rel diff %.2e: %s\n", faulty[_i].name, r.max_rel_diff, e.msg);
    ck_assert_msg(st == CAE_ERR_MISMATCH && e.status == CAE_ERR_MISMATCH, "%s: %s (%s)",
                  faulty[_i].name, cae_status_name(st), e.msg);
    ck_assert_msg(r.max_rel_diff > 1e-3, "%s: max rel diff only %g", faulty[_i].name,
                  r.max_rel_diff);
    char want[160];
    const int w = r.worst;
    snprintf(want, sizeof want, "<v, J u> = %.9g by the tangent rules, <J^T v, u> = %.9g",
             r.forward[w], r.reverse[w]);
    ck_assert_msg(strstr(e.msg, want), "message \"%s\" lacks \"%s\"", e.msg, want);
    snprintf(want, sizeof want, "op '%s'%s from 'x': along direction %d of 4",
             cae_node_op_name(f.of), faulty[_i].build == b_mul2 ? " (node 'mul2')" : "", w + 1);
    ck_assert_msg(strstr(e.msg, want), "message \"%s\" lacks \"%s\"", e.msg, want);
    /* tol < 0: the report only; the same numbers */
    cae_dircheck_report r2;
    o.tol = -1;
    ck_assert_int_eq(cae_dircheck(f.g, &o, &r2, &e), CAE_OK);
    ck_assert(r2.max_rel_diff == r.max_rel_diff && r2.worst == r.worst);
    unmake(&f);
}
END_TEST

/* The central mode reaches its verdict too when given a tol. */
START_TEST(central_tol_verdict)
{
    fixture f = make(b_mul2, NULL, 1, 1.5), ok = make(b_mul2, NULL, 1, 1);
    cae_dircheck_report r;
    cae_error e;
    const double tol = sizeof(cae_real) == 8 ? 1e-5 : 1e-2;
    cae_dircheck_opts o = {.wrt = f.x, .of = f.of, .tol = tol};
    ck_assert_int_eq(cae_dircheck(f.g, &o, &r, &e), CAE_ERR_MISMATCH);
    ck_assert_msg(strstr(e.msg, "central difference ") && strstr(e.msg, "> tol "), "%s", e.msg);
    o = (cae_dircheck_opts){.wrt = ok.x, .of = ok.of, .tol = tol};
    ck_assert_msg(cae_dircheck(ok.g, &o, &r, &e) == CAE_OK, "%s", e.msg);
    ck_assert_int_eq(cae_dircheck(f.g, &(cae_dircheck_opts){.wrt = f.x, .of = f.of}, &r, &e),
                     CAE_OK);
    unmake(&f);
    unmake(&ok);
}
END_TEST

/* ------------------------------------------------------ state, errors */

START_TEST(adjoint_leaves_state)
{
    fixture f = make(b_stack, "W1", 1, 1);
    const size_t tot = cae_params_total(f.p);
    cae_real *v0 = cae_alloc_reals(tot), *g0 = cae_alloc_reals(tot);
    tu_fill_uniform(cae_params_grads(f.p), (int64_t)tot, -1, 1, 8);
    memcpy(v0, cae_params_values(f.p), tot * sizeof *v0);
    memcpy(g0, cae_params_grads(f.p), tot * sizeof *g0);
    cae_real mine[H * D];
    tu_fill_uniform(mine, H * D, -1, 1, 9);
    cae_input_bind(f.t, mine);
    const cae_rng r0 = *cae_graph_rng(f.g);
    cae_dircheck_opts o = adjoint(&f);
    cae_dircheck_report r, r2;
    cae_error e;
    ck_assert_msg(cae_dircheck(f.g, &o, &r, &e) == CAE_OK, "%s", e.msg);
    ck_assert(!memcmp(v0, cae_params_values(f.p), tot * sizeof *v0));
    ck_assert(!memcmp(g0, cae_params_grads(f.p), tot * sizeof *g0));
    ck_assert(cae_node_value(f.t)->data == mine);
    ck_assert(!memcmp(cae_graph_rng(f.g), &r0, sizeof r0));
    ck_assert_int_eq(cae_dircheck(f.g, &o, &r2, NULL), CAE_OK); /* repeatable */
    ck_assert(!memcmp(r.forward, r2.forward, sizeof r.forward));
    ck_assert(!memcmp(r.reverse, r2.reverse, sizeof r.reverse));
    cae_free(v0);
    cae_free(g0);
    unmake(&f);
}
END_TEST

START_TEST(adjoint_errors)
{
    fixture f = make(b_stack, NULL, 1, 1), h = make(b_stack, NULL, 1, 1);
    cae_dircheck_report r;
    cae_error e;
    cae_dircheck_opts o = adjoint(&f);
    o.tangent_in = NULL;
    tu_expect_err(cae_dircheck(f.g, &o, &r, &e), CAE_ERR_ARG, &e, "no tangent_in node");
    o = adjoint(&f);
    o.of = h.of;
    tu_expect_err(cae_dircheck(f.g, &o, &r, &e), CAE_ERR_ARG, &e, "(of) belongs to another graph");
    o = adjoint(&f);
    o.tangent_in = o.wrt = pnode(f.g, f.p, "W1");
    tu_expect_err(cae_dircheck(f.g, &o, &r, &e), CAE_ERR_ARG, &e, "is not an input");
    o = adjoint(&f);
    o.tangent_out = f.of; /* the sizes differ */
    o.tangent_in = f.t;
    o.wrt = f.x;
    o.of = pnode(f.g, f.p, "b2");
    tu_expect_err(cae_dircheck(f.g, &o, &r, &e), CAE_ERR_SHAPE, &e, "one direction");
    o = adjoint(&f);
    o.tol = NAN;
    tu_expect_err(cae_dircheck(f.g, &o, &r, &e), CAE_ERR_ARG, &e, "tol nan");
    o = (cae_dircheck_opts){.mode = 7};
    tu_expect_err(cae_dircheck(f.g, &o, &r, &e), CAE_ERR_ARG, &e, "mode 7");

    /* A tangent that is not on the tape; a K-direction tangent; an input
     * without a gradient. */
    cae_graph *g = cae_graph_new(f.p, B);
    cae_node *x = cae_input(g, "x", 2, (int64_t[]){B, D});
    cae_node *z = cae_input(g, "z", 2, (int64_t[]){B, D});
    cae_input_requires_grad(x);
    cae_node *y = b_affine(g, f.p, x, 1, 1), *t3 = cae_input(g, "t3", 2, (int64_t[]){3 * B, D});
    cae_node *t = cae_input(g, "t", 2, (int64_t[]){B, D}), *j3, *j1, *jz;
    cae_node *yz = b_affine(g, f.p, z, 1, 1), *tz = cae_input(g, "tz", 2, (int64_t[]){B, D});
    ck_assert_int_eq(cae_jvp(g, 1, &y, 1, &x, &t3, &j3), CAE_OK);
    ck_assert_int_eq(cae_jvp(g, 1, &y, 1, &x, &t, &j1), CAE_OK);
    ck_assert_int_eq(cae_jvp(g, 1, &yz, 1, &z, &tz, &jz), CAE_OK);
    cae_graph_output(g, j3);
    cae_graph_output(g, jz);
    ck_assert_int_eq(cae_graph_compile(g, cae_add(g, cae_sum(g, y), cae_sum(g, yz))), 0);
    o = (cae_dircheck_opts){.mode = CAE_DIRCHECK_ADJOINT, .wrt = z, .of = yz, .tangent_in = tz,
                            .tangent_out = jz};
    tu_expect_err(cae_dircheck(g, &o, &r, &e), CAE_ERR_NOGRAD, &e, "'z' (wrt) keeps no gradient");
    o = (cae_dircheck_opts){.mode = CAE_DIRCHECK_ADJOINT, .wrt = x, .of = y, .tangent_in = t,
                            .tangent_out = j1};
    tu_expect_err(cae_dircheck(g, &o, &r, &e), CAE_ERR_TAPE, &e, "cae_graph_output");
    o.tangent_in = t3;
    o.tangent_out = j3;
    tu_expect_err(cae_dircheck(g, &o, &r, &e), CAE_ERR_SHAPE, &e, "one direction");
    cae_graph_free(g);
    unmake(&f);
    unmake(&h);
}
END_TEST

/* ------------------------------------------------------ cae/testing.h */

START_TEST(macro_passes)
{
    fixture f = make(b_stack, NULL, 1, 1);
    cae_ck_adjoint(f.g, f.wrt, f.t, f.of, f.jt);
    unmake(&f);
}
END_TEST

/* Run by macro_fails_with_message in a forked child. */
START_TEST(macro_fails)
{
    fixture f = make(b_mul2, NULL, 1, 1.01);
    cae_ck_adjoint(f.g, f.wrt, f.t, f.of, f.jt);
}
END_TEST

START_TEST(macro_fails_with_message)
{
    Suite *s = suite_create("inner");
    TCase *tc = tcase_create("macro_fails");
    tcase_add_test(tc, macro_fails);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_FORK);
    srunner_run(sr, "inner", "macro_fails", CK_SILENT);
    ck_assert_int_eq(srunner_ntests_failed(sr), 1);
    TestResult **tr = srunner_failures(sr);
    const char *msg = tr_msg(tr[0]);
    ck_assert_msg(tr_rtype(tr[0]) == CK_FAILURE, "not an assertion failure: %s", msg);
    const char *parts[] = {"cae_dircheck failed (mismatch): dircheck (adjoint): op 'mul2'",
                           "<v, J u> = ", " by the tangent rules, <J^T v, u> = ", "> tol "};
    for (int k = 0; k < 4; k++)
        ck_assert_msg(strstr(msg, parts[k]) != NULL, "message \"%s\" lacks \"%s\"", msg, parts[k]);
    printf("macro_fails: %s\n", msg);
    free(tr);
    srunner_free(sr);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("adjoint");
    TCase *tc = tcase_create("adjoint");
    tcase_add_loop_test(tc, adjoint_passes_builtins, 0, N_BUILTIN);
    tcase_add_loop_test(tc, adjoint_catches_faults, 0, N_FAULTY);
    tcase_add_test(tc, central_tol_verdict);
    tcase_add_test(tc, adjoint_leaves_state);
    tcase_add_test(tc, adjoint_errors);
    tcase_add_test(tc, macro_passes);
    tcase_add_test(tc, macro_fails_with_message);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
