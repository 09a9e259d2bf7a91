/* matmul and the raw GEMM: against a naive reference for every transpose
 * combination and awkward sizes, gradients by central differences, and 1
 * thread vs 2 threads. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cae/gemm.h"
#include "cae/gradcheck.h"
#include "cae/ops.h"
#include "testutil.h"

#ifdef CAE_REAL_DOUBLE
#define REF_TOL 1e-12
#else
#define REF_TOL 2e-5
#endif

/* C (m x n) = op(A) op(B), in double. */
static void naive(const cae_real *a, const cae_real *b, double *c, int64_t m, int64_t n,
                  int64_t k, int ta, int tb)
{
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            double s = 0;
            for (int64_t p = 0; p < k; p++) {
                double av = ta ? a[p * m + i] : a[i * k + p];
                double bv = tb ? b[j * k + p] : b[p * n + j];
                s += av * bv;
            }
            c[i * n + j] = s;
        }
}

static const int64_t sizes[][3] = {{1, 1, 1},   {1, 7, 5},    {3, 5, 7},   {17, 33, 9},
                                   {20, 100, 78}, {33, 65, 31}, {5, 130, 1}, {64, 64, 64},
                                   {100, 70, 129}, {70, 1, 33},  {1, 300, 257},
                                   {130, 40, 128}, {40, 150, 256}, {256, 33, 20},
                                   {96, 300, 260}};

static void check_gemm(int64_t m, int64_t n, int64_t k, int ta, int tb, int acc, int threads)
{
    cae_real *a = cae_alloc_reals((size_t)(m * k)), *b = cae_alloc_reals((size_t)(k * n));
    cae_real *c = cae_alloc_reals((size_t)(m * n));
    double *ref = malloc((size_t)(m * n) * sizeof *ref);
    tu_fill_uniform(a, m * k, -1, 1, 1 + (uint64_t)m);
    tu_fill_uniform(b, k * n, -1, 1, 2 + (uint64_t)n);
    tu_fill_uniform(c, m * n, -1, 1, 3);
    naive(a, b, ref, m, n, k, ta, tb);
    if (acc)
        for (int64_t i = 0; i < m * n; i++) ref[i] += c[i];
    cae_gemm p;
    ck_assert_int_eq(cae_gemm_plan(&p, m, n, k, ta, tb, acc), 0);
    cae_real *s = p.scratch_reals ? cae_alloc_reals(p.scratch_reals) : NULL;
    cae_gemm_run(&p, a, b, c, s, threads);
    for (int64_t i = 0; i < m * n; i++) {
        double tol = REF_TOL * (1 + sqrt((double)k));
        ck_assert_msg(fabs(c[i] - ref[i]) <= tol,
                      "gemm %lldx%lldx%lld ta=%d tb=%d acc=%d threads=%d: C[%lld] = %g, want %g",
                      (long long)m, (long long)n, (long long)k, ta, tb, acc, threads,
                      (long long)i, (double)c[i], ref[i]);
    }
    cae_free(a);
    cae_free(b);
    cae_free(c);
    cae_free(s);
    free(ref);
}

START_TEST(gemm_vs_naive)
{
    const int ta = _i & 1, tb = (_i >> 1) & 1;
    for (size_t t = 0; t < sizeof sizes / sizeof sizes[0]; t++)
        for (int acc = 0; acc < 2; acc++)
            for (int th = 1; th <= 2; th++)
                check_gemm(sizes[t][0], sizes[t][1], sizes[t][2], ta, tb, acc, th);
}
END_TEST

/* cae_gemm_plan_ksplit: against the reference, with and without accumulate
 * and bias, and bit for bit the same at 1, 2 and 3 threads (each block's
 * tiles have one writer, and the blocks are summed in one order). */
START_TEST(gemm_ksplit_vs_naive)
{
    static const int64_t shapes[][4] = {{1, 1000, 784, 384}, {20, 784, 1000, 384},
                                        {20, 1000, 784, 384}, {7, 65, 130, 64},
                                        {33, 300, 200, 96},  {2, 5, 3, 1}};
    for (size_t t = 0; t < sizeof shapes / sizeof shapes[0]; t++)
        for (int mode = 0; mode < 3; mode++) { /* plain, accumulate, bias */
            const int64_t m = shapes[t][0], n = shapes[t][1], k = shapes[t][2], k0 = shapes[t][3];
            const int acc = mode == 1;
            cae_real *a = cae_alloc_reals((size_t)(m * k)), *b = cae_alloc_reals((size_t)(k * n));
            cae_real *c0 = cae_alloc_reals((size_t)(m * n)), *bias = cae_alloc_reals((size_t)n);
            cae_real *c[3];
            double *ref = malloc((size_t)(m * n) * sizeof *ref);
            tu_fill_uniform(a, m * k, -1, 1, 11 + (uint64_t)t);
            tu_fill_uniform(b, k * n, -1, 1, 12 + (uint64_t)t);
            tu_fill_uniform(c0, m * n, -1, 1, 13);
            tu_fill_uniform(bias, n, -1, 1, 14);
            naive(a, b, ref, m, n, k, 0, 0);
            for (int64_t i = 0; i < m * n; i++)
                ref[i] += (acc ? c0[i] : 0) + (mode == 2 ? bias[i % n] : 0);
            cae_gemm p;
            ck_assert_int_eq(cae_gemm_plan_ksplit(&p, m, n, k, k0, acc), 0);
            ck_assert_int_eq((int)p.k_split, (int)k0);
            cae_real *s = cae_alloc_reals(p.scratch_reals);
            for (int th = 1; th <= 3; th++) {
                c[th - 1] = cae_alloc_reals((size_t)(m * n));
                memcpy(c[th - 1], c0, (size_t)(m * n) * sizeof(cae_real));
                cae_gemm_run_bias(&p, a, b, c[th - 1], mode == 2 ? bias : NULL, s, th);
                for (int64_t i = 0; i < m * n; i++)
                    ck_assert_msg(fabs(c[th - 1][i] - ref[i]) <= REF_TOL * (1 + sqrt((double)k)),
                                  "ksplit %lldx%lldx%lld at %lld, mode %d, %d thread(s): C[%lld] = "
                                  "%g, want %g",
                                  (long long)m, (long long)n, (long long)k, (long long)k0, mode, th,
                                  (long long)i, (double)c[th - 1][i], ref[i]);
            }
            for (int th = 2; th <= 3; th++)
                ck_assert_msg(!memcmp(c[0], c[th - 1], (size_t)(m * n) * sizeof(cae_real)),
                              "ksplit %lldx%lldx%lld, mode %d: %d threads differ from 1",
                              (long long)m, (long long)n, (long long)k, mode, th);
            for (int th = 0; th < 3; th++) cae_free(c[th]);
            cae_free(a);
            cae_free(b);
            cae_free(c0);
            cae_free(bias);
            cae_free(s);
            free(ref);
        }
    cae_gemm p;
    ck_assert_int_eq(cae_gemm_plan_ksplit(&p, 4, 4, 8, 0, 0), -1);
    ck_assert_int_eq(cae_gemm_plan_ksplit(&p, 4, 4, 8, 8, 0), -1);
}
END_TEST

/* cae_gemm_own changes which thread computes a tile (or a row of the
 * batch-of-one dot products), never a value: 2 threads with it give the
 * plain plan's bits; it refuses a split off the tile grid or outside. */
START_TEST(gemm_own_changes_no_bit)
{
    /* m, n, k, ta, tb, dim, at: tiles of 32 x 48 (wide), of 24 x 64, the
     * swapped h W^T over W's rows, and the dot products (B = 1). */
    static const int64_t cases[][7] = {{784, 1000, 20, 0, 0, 0, 384}, {20, 784, 1000, 0, 0, 1, 384},
                                       {100, 300, 50, 0, 0, 1, 128},  {20, 784, 1000, 0, 1, 0, 384},
                                       {1, 784, 1000, 0, 1, 0, 384}};
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        const int64_t m = cases[t][0], n = cases[t][1], k = cases[t][2], at = cases[t][6];
        const int ta = (int)cases[t][3], tb = (int)cases[t][4], dim = (int)cases[t][5];
        cae_real *a = cae_alloc_reals((size_t)(m * k)), *b = cae_alloc_reals((size_t)(k * n));
        cae_real *c1 = cae_alloc_reals((size_t)(m * n)), *c2 = cae_alloc_reals((size_t)(m * n));
        tu_fill_uniform(a, m * k, -1, 1, 21 + (uint64_t)t);
        tu_fill_uniform(b, k * n, -1, 1, 22 + (uint64_t)t);
        cae_gemm p, q;
        ck_assert_int_eq(cae_gemm_plan(&p, m, n, k, ta, tb, 0), 0);
        q = p;
        ck_assert_msg(cae_gemm_own(&q, dim, at) == 0, "case %zu: own refused", t);
        ck_assert_int_eq(cae_gemm_own(&q, dim, (dim ? q.n : q.m)), -1);
        cae_real *s = p.scratch_reals ? cae_alloc_reals(p.scratch_reals) : NULL;
        cae_gemm_run(&p, a, b, c1, s, 2);
        cae_gemm_run(&q, a, b, c2, s, 2);
        ck_assert_msg(!memcmp(c1, c2, (size_t)(m * n) * sizeof(cae_real)),
                      "case %zu: the owned schedule changed the product", t);
        cae_free(a);
        cae_free(b);
        cae_free(c1);
        cae_free(c2);
        cae_free(s);
    }
    cae_gemm p;
    ck_assert_int_eq(cae_gemm_plan(&p, 784, 1000, 20, 0, 0, 0), 0);
    ck_assert_int_eq(cae_gemm_own(&p, 0, 40), -1); /* not a multiple of the 32-row tiles */
    ck_assert_int_eq(cae_gemm_own(&p, 1, 100), -1);
    ck_assert_int_eq(cae_gemm_own(&p, 2, 32), -1);
    ck_assert_int_eq((int)cae_gemm_owner_split(784), 384);
    ck_assert_int_eq((int)cae_gemm_owner_split(32), 0); /* one tile of rows */
    ck_assert_int_eq((int)cae_gemm_owner_split(200), 96);
}
END_TEST

/* cae_transpose: whole register blocks, ragged edges, and shapes large
 * enough for the threaded loop, against the definition. */
START_TEST(transpose_vs_definition)
{
    const int64_t shapes[][2] = {{1, 1}, {1, 40}, {16, 16}, {17, 33}, {48, 32}, {300, 257}, {256, 1000}};
    for (size_t t = 0; t < sizeof shapes / sizeof shapes[0]; t++)
        for (int th = 1; th <= 2; th++) {
            const int64_t r = shapes[t][0], c = shapes[t][1];
            cae_real *in = cae_alloc_reals((size_t)(r * c));
            cae_real *out = cae_alloc_reals((size_t)(r * c));
            for (int64_t i = 0; i < r * c; i++) {
                in[i] = (cae_real)(i % 9973) - 17;
                out[i] = -1e6;
            }
            cae_transpose(out, in, r, c, th);
            for (int64_t i = 0; i < r; i++)
                for (int64_t j = 0; j < c; j++)
                    ck_assert_msg(out[j * r + i] == in[i * c + j],
                                  "transpose %lldx%lld, %d thread(s): out[%lld][%lld] = %g, want %g",
                                  (long long)r, (long long)c, th, (long long)j, (long long)i,
                                  (double)out[j * r + i], (double)in[i * c + j]);
            cae_free(in);
            cae_free(out);
        }
}
END_TEST

START_TEST(gemm_rejects_bad_sizes)
{
    cae_gemm p;
    ck_assert_int_eq(cae_gemm_plan(&p, 0, 3, 3, 0, 0, 0), -1);
    ck_assert_int_eq(cae_gemm_plan(&p, 3, -1, 3, 0, 0, 0), -1);
}
END_TEST

/* loss = sum(matmul(A, B) * R) */
static cae_graph *build(int64_t m, int64_t n, int64_t k, int ta, int tb, cae_params **pp,
                        cae_node **A, cae_node **B)
{
    cae_params *p = cae_params_new();
    cae_tensor *tb_t = cae_params_add(p, "B", 2, tb ? (int64_t[]){n, k} : (int64_t[]){k, n});
    cae_rng r;
    cae_rng_seed(&r, 7, 0);
    cae_tensor_uniform(tb_t, 1, &r);
    cae_graph *g = cae_graph_new(p, m);
    *A = cae_input(g, "A", 2, ta ? (int64_t[]){k, m} : (int64_t[]){m, k});
    tu_fill_uniform(cae_node_value(*A)->data, m * k, -1, 1, 11);
    cae_input_requires_grad(*A);
    *B = cae_param(g, tb_t);
    cae_node *c = cae_matmul(g, *A, *B, ta, tb);
    cae_node *R = cae_const(g, "R", 2, (int64_t[]){m, n}, 0);
    tu_fill_uniform(cae_node_value(R)->data, m * n, -1, 1, 13);
    cae_node *loss = cae_sum(g, cae_mul(g, c, R));
    ck_assert_msg(cae_graph_compile(g, loss) == 0, "compile: %s", cae_graph_error(g));
    *pp = p;
    return g;
}

START_TEST(matmul_gradients)
{
    const int ta = _i & 1, tb = (_i >> 1) & 1;
    const int64_t shapes[][3] = {{3, 5, 7}, {1, 17, 9}, {20, 33, 1}, {18, 70, 35}};
    for (size_t s = 0; s < 4; s++) {
        cae_params *p;
        cae_node *A, *B;
        cae_graph *g = build(shapes[s][0], shapes[s][1], shapes[s][2], ta, tb, &p, &A, &B);
        cae_gradcheck_report r;
        for (int w = 0; w < 2; w++) {
            TU_GRADCHECK(g, w ? B : A, 300, 5, &r);
            ck_assert_msg(r.max_rel_err < TU_FD_TOL,
                          "matmul ta=%d tb=%d shape %lld,%lld,%lld d/d%s: rel %g at %lld "
                          "(analytic %g numeric %g)",
                          ta, tb, (long long)shapes[s][0], (long long)shapes[s][1],
                          (long long)shapes[s][2], w ? "B" : "A", r.max_rel_err,
                          (long long)r.worst_index, r.worst_analytic, r.worst_numeric);
        }
        cae_graph_free(g);
        cae_params_free(p);
    }
}
END_TEST

/* loss = sum((A op(B) + v) * R), as affine (fused) or as bias_add(matmul)
 * (composed); B and v parameters of store p (affine_store). Setups: 0 A an
 * input with a gradient; 1 A without one (a model's x); 2 v a constant (no
 * gradient); 3 a second node on the same A, B and v, summed into the loss
 * (shared parameters: their gradients accumulate). */
enum { AFF_SETUPS = 4 };
static cae_params *affine_store(int64_t n, int64_t k, int tb)
{
    cae_params *p = cae_params_new();
    cae_tensor *tb_t = cae_params_add(p, "B", 2, tb ? (int64_t[]){n, k} : (int64_t[]){k, n});
    cae_tensor *v_t = cae_params_add(p, "v", 1, (int64_t[]){n});
    cae_rng r;
    cae_rng_seed(&r, 7, 0);
    cae_tensor_uniform(tb_t, 1, &r);
    cae_tensor_uniform(v_t, 1, &r);
    return p;
}

static cae_graph *build_affine_setup(cae_params *p, int64_t m, int tb, int fused, int setup,
                                     cae_node **nodes)
{
    cae_tensor *tb_t = cae_params_get(p, "B"), *v_t = cae_params_get(p, "v");
    const int64_t n = v_t->size, k = tb_t->shape[tb ? 1 : 0];
    cae_graph *g = cae_graph_new(p, m);
    cae_node *A = cae_input(g, "A", 2, (int64_t[]){m, k});
    tu_fill_uniform(cae_node_value(A)->data, m * k, -1, 1, 11);
    if (setup != 1) cae_input_requires_grad(A);
    cae_node *B = cae_param(g, tb_t), *v = cae_param(g, v_t);
    if (setup == 2) {
        v = cae_const(g, "v", 1, (int64_t[]){n}, 0);
        memcpy(cae_node_value(v)->data, v_t->data, (size_t)n * sizeof(cae_real));
    }
    cae_node *c = fused ? cae_affine(g, A, B, v, tb) : cae_bias_add(g, cae_matmul(g, A, B, 0, tb), v);
    cae_node *R = cae_const(g, "R", 2, (int64_t[]){m, n}, 0);
    tu_fill_uniform(cae_node_value(R)->data, m * n, -1, 1, 13);
    cae_node *loss = cae_sum(g, cae_mul(g, c, R));
    if (setup == 3) {
        cae_node *c2 = fused ? cae_affine(g, A, B, v, tb) : cae_bias_add(g, cae_matmul(g, A, B, 0, tb), v);
        loss = cae_add(g, loss, cae_sum(g, cae_square(g, c2)));
    }
    ck_assert_msg(cae_graph_compile(g, loss) == 0, "compile: %s", cae_graph_error(g));
    nodes[0] = A;
    nodes[1] = B;
    nodes[2] = v;
    nodes[3] = c;
    return g;
}

/* Every path of the GEMM (batch-of-one dots, narrow, swapped h W^T, direct
 * with B transposed, ragged tiles) on 1 and 2 threads: the same bits as
 * the two-node form, forward and backward (cae_gradcompare: zero
 * difference in the loss and every gradient kept; then the outputs, which
 * hold the comparison's passes on the same inputs). */
START_TEST(affine_equals_bias_add_matmul)
{
    const int64_t shapes[][3] = {{1, 784, 100}, {1, 7, 5}, {5, 130, 1}, {20, 100, 78},
                                 {37, 130, 90}, {256, 70, 33}, {600, 40, 50}, {64, 64, 64},
                                 {70, 1, 33},   {300, 784, 500}};
    const int setup = _i;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int tb = 0; tb < 2; tb++)
            for (int th = 1; th <= 2; th++) {
                const int64_t m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
                cae_params *p = affine_store(n, k, tb);
                cae_node *nd[2][4];
                cae_graph *g[2];
                for (int f = 0; f < 2; f++) {
                    g[f] = build_affine_setup(p, m, tb, f, setup, nd[f]);
                    cae_graph_set_threads(g[f], th);
                }
                cae_gradcompare_report r;
                cae_error e;
                const cae_gradcompare_opts o = {.seed = 11, .lo = -1, .hi = 1};
                ck_assert_msg(cae_gradcompare(g[1], g[0], &o, &r, &e) == CAE_OK, "%s", e.msg);
                /* loss, then B and v unless v is a constant, then A if it has a gradient */
                ck_assert_int_eq(r.n, 1 + (setup == 2 ? 1 : 2) + (setup != 1));
                const cae_gradcompare_diff *d = &r.diff[r.worst];
                ck_assert_msg(r.max_abs_diff == 0,
                              "affine setup %d, %lldx%lldx%lld tb=%d, %d thread(s): d%s[%lld] = "
                              "%.9g, bias_add(matmul) gives %.9g",
                              setup, (long long)m, (long long)n, (long long)k, tb, th, d->name,
                              (long long)d->worst_index, d->worst_analytic, d->worst_reference);
                const cae_tensor *a = cae_node_value(nd[1][3]), *b = cae_node_value(nd[0][3]);
                ck_assert_msg(!memcmp(a->data, b->data, (size_t)a->size * sizeof(cae_real)),
                              "affine setup %d, %lldx%lldx%lld tb=%d, %d thread(s): values differ",
                              setup, (long long)m, (long long)n, (long long)k, tb, th);
                for (int f = 0; f < 2; f++) cae_graph_free(g[f]);
                cae_params_free(p);
            }
}
END_TEST

START_TEST(affine_gradients)
{
    const int tb = _i;
    const int64_t shapes[][3] = {{3, 5, 7}, {1, 17, 9}, {18, 70, 35}};
    for (size_t s = 0; s < 3; s++) {
        cae_params *p = affine_store(shapes[s][1], shapes[s][2], tb);
        cae_node *nd[4];
        cae_graph *g = build_affine_setup(p, shapes[s][0], tb, 1, 0, nd);
        cae_gradcheck_report r;
        for (int w = 0; w < 3; w++) {
            TU_GRADCHECK(g, nd[w], 300, 5, &r);
            ck_assert_msg(r.max_rel_err < TU_FD_TOL,
                          "affine tb=%d shape %lld,%lld,%lld d/d%s: rel %g at %lld "
                          "(analytic %g numeric %g)",
                          tb, (long long)shapes[s][0], (long long)shapes[s][1],
                          (long long)shapes[s][2], (const char *[]){"x", "W", "v"}[w],
                          r.max_rel_err, (long long)r.worst_index, r.worst_analytic,
                          r.worst_numeric);
        }
        cae_graph_free(g);
        cae_params_free(p);
    }
}
END_TEST

START_TEST(affine_shape_error)
{
    cae_params *p = cae_params_new();
    cae_graph *g = cae_graph_new(p, 3);
    cae_node *x = cae_input(g, "x", 2, (int64_t[]){3, 5});
    cae_node *w = cae_input(g, "w", 2, (int64_t[]){5, 7});
    cae_node *v = cae_input(g, "v", 1, (int64_t[]){6});
    ck_assert_ptr_null(cae_affine(g, x, w, v, 0));
    const char *e = cae_graph_error(g);
    ck_assert_msg(e && strstr(e, "affine") && strstr(e, "6") && strstr(e, "3x7") && strstr(e, "7 values"),
                  "message: %s", e);
    cae_graph_free(g);
    cae_params_free(p);
}
END_TEST

START_TEST(matmul_threads_agree)
{
    cae_params *p;
    cae_node *A, *B;
    cae_graph *g = build(37, 130, 90, 0, 1, &p, &A, &B);
    cae_graph_set_threads(g, 1);
    cae_graph_forward(g);
    cae_graph_backward(g);
    size_t nb = cae_params_total(p);
    cae_real *g1 = malloc(nb * sizeof *g1);
    memcpy(g1, cae_params_grads(p), nb * sizeof *g1);
    cae_real l1 = cae_node_value(cae_graph_tape_at(g, cae_graph_tape_length(g) - 1))->data[0];
    cae_graph_set_threads(g, 2);
    cae_graph_forward(g);
    cae_graph_backward(g);
    cae_real l2 = cae_node_value(cae_graph_tape_at(g, cae_graph_tape_length(g) - 1))->data[0];
    /* Tiles are owned by one thread each: results are bitwise equal. */
    ck_assert_msg(l1 == l2, "loss %g (1 thread) vs %g (2 threads)", (double)l1, (double)l2);
    ck_assert_msg(!memcmp(g1, cae_params_grads(p), nb * sizeof *g1), "gradients differ");
    free(g1);
    cae_graph_free(g);
    cae_params_free(p);
}
END_TEST

START_TEST(matmul_shape_error)
{
    cae_graph *g = cae_graph_new(NULL, 3);
    cae_node *a = cae_input(g, "a", 2, (int64_t[]){3, 5});
    cae_node *b = cae_input(g, "b", 2, (int64_t[]){4, 7});
    ck_assert_ptr_null(cae_matmul(g, a, b, 0, 0));
    const char *e = cae_graph_error(g);
    ck_assert_ptr_nonnull(e);
    ck_assert_msg(strstr(e, "matmul") && strstr(e, "3x5") && strstr(e, "4x7"), "message: %s", e);
    /* NULL propagates and compile reports the first error. */
    cae_node *s = cae_sum(g, cae_matmul(g, NULL, b, 0, 0));
    ck_assert_ptr_null(s);
    ck_assert_int_ne(cae_graph_compile(g, s), 0);
    ck_assert_str_eq(cae_graph_error(g), e);
    cae_graph_free(g);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("matmul");
    TCase *t = tcase_create("gemm");
    tcase_add_loop_test(t, gemm_vs_naive, 0, 4);
    tcase_add_test(t, gemm_rejects_bad_sizes);
    tcase_add_test(t, gemm_ksplit_vs_naive);
    tcase_add_test(t, gemm_own_changes_no_bit);
    tcase_add_test(t, transpose_vs_definition);
    tcase_set_timeout(t, 120);
    suite_add_tcase(s, t);
    t = tcase_create("matmul");
    tcase_add_loop_test(t, matmul_gradients, 0, 4);
    tcase_add_test(t, matmul_threads_agree);
    tcase_add_test(t, matmul_shape_error);
    tcase_add_loop_test(t, affine_equals_bias_add_matmul, 0, AFF_SETUPS);
    tcase_add_loop_test(t, affine_gradients, 0, 2);
    tcase_add_test(t, affine_shape_error);
    tcase_set_timeout(t, 120);
    suite_add_tcase(s, t);
    return tu_run(s);
}
