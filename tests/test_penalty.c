/* The contractive penalty, fused and composed. Each test catches a mistake
 * public implementations made (PAPER.md): the two forms agree on value and
 * every gradient; both agree with finite differences; the hand-derived
 * closed form with its factor 2 (in both terms) is what comes out; n_j is a
 * sum of squares, not a squared sum; per-example squares are averaged, not
 * the batch sum squared; each activation uses its own derivative; a linear
 * encoder's penalty is weight decay; training with the penalty contracts;
 * 1 and 2 threads agree. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cae/gradcheck.h"
#include "cae/jacobian.h"
#include "cae/ops.h"
#include "cae/penalty.h"
#include "testutil.h"

#ifdef CAE_REAL_DOUBLE
#define REL_TOL 1e-10
#else
#define REL_TOL 1e-5
#endif

static const cae_act acts[] = {CAE_ACT_SIGMOID, CAE_ACT_TANH, CAE_ACT_RELU, CAE_ACT_SOFTPLUS,
                               CAE_ACT_LINEAR};
#define N_ACTS 5
static const char *lay_name(cae_wlayout l) { return l == CAE_W_IN_UNITS ? "DxH" : "HxD"; }
static const char *form_name(int fused) { return fused ? "fused" : "composed"; }

/* A store with W (D x H or H x D by layout, U(+-wa)) and b (H, U(+-0.5)). */
static cae_params *store_new(int64_t D, int64_t H, cae_wlayout lay, double wa, uint64_t seed)
{
    cae_params *p = cae_params_new();
    int64_t ws[2] = {lay == CAE_W_IN_UNITS ? D : H, lay == CAE_W_IN_UNITS ? H : D};
    cae_tensor *W = cae_params_add(p, "W", 2, ws), *b = cae_params_add(p, "b", 1, &H);
    ck_assert_ptr_nonnull(W);
    ck_assert_ptr_nonnull(b);
    tu_fill_uniform(W->data, W->size, -wa, wa, seed);
    tu_fill_uniform(b->data, b->size, -0.5, 0.5, seed + 1);
    return p;
}

/* One encoder layer and its penalty on a graph over store p:
 * a = x W (+ b), h = act(a), pen = penalty(a, h, W), loss = pen. */
typedef struct net {
    cae_graph *g;
    cae_node *x, *W, *b, *a, *h, *pen;
} net;

static net net_new(cae_params *p, int64_t B, int64_t D, cae_act act, cae_wlayout lay, int fused,
                   int threads)
{
    net n;
    n.g = cae_graph_new(p, B);
    cae_graph_set_threads(n.g, threads);
    n.x = cae_input(n.g, "x", 2, (int64_t[]){B, D});
    cae_input_requires_grad(n.x);
    n.W = cae_param(n.g, cae_params_get(p, "W"));
    n.b = cae_param(n.g, cae_params_get(p, "b"));
    n.a = cae_bias_add(n.g, cae_matmul(n.g, n.x, n.W, 0, lay == CAE_W_UNITS_IN), n.b);
    n.h = cae_activation(n.g, n.a, act);
    n.pen = fused ? cae_contractive_penalty(n.g, n.a, n.h, n.W, act, lay)
                  : cae_contractive_penalty_composed(n.g, n.a, n.h, n.W, act, lay);
    cae_graph_output(n.g, n.h);
    ck_assert_msg(!cae_graph_compile(n.g, n.pen), "%s", cae_graph_error(n.g));
    return n;
}

/* The two graphs' loss and gradients (of W, b and x) with cae_gradcompare:
 * the same x for both, drawn U(0, 1) from seed. Each gradient normwise
 * (max difference over the tensor's largest value) within REL_TOL, and
 * element by element within 10 REL_TOL where an element is at least 0.1 of
 * the largest (below that it is a cancellation residue, compared against
 * 0.1 of the largest: the report's floor). */
static void expect_same(cae_graph *ga, cae_graph *gr, uint64_t seed, const char *what)
{
    cae_gradcompare_report r;
    cae_error e;
    const cae_gradcompare_opts o = {.seed = seed, .floor = 0.1};
    ck_assert_msg(cae_gradcompare(ga, gr, &o, &r, &e) == CAE_OK, "%s: %s", what, e.msg);
    ck_assert_int_eq(r.n, 4); /* loss, W, b, x */
    ck_assert_msg(r.diff[0].max_rel_diff <= REL_TOL && r.diff[0].worst_reference > 0,
                  "%s: penalty %.9g vs %.9g", what, r.diff[0].worst_analytic,
                  r.diff[0].worst_reference);
    for (int k = 1; k < r.n; k++) {
        const cae_gradcompare_diff *d = &r.diff[k];
        ck_assert_msg(d->max_abs_diff <= REL_TOL * d->scale && d->max_rel_diff <= 10 * REL_TOL,
                      "%s: d/d%s normwise %.3g, worst rel %.3g at [%lld]: %.9g vs %.9g", what,
                      d->name, d->max_abs_diff / d->scale, d->max_rel_diff,
                      (long long)d->worst_index, d->worst_analytic, d->worst_reference);
    }
}

/* ------------------------------------------------ fused = composed */

static void fused_vs_composed(int64_t B, int64_t D, int64_t H, cae_act act, cae_wlayout lay)
{
    cae_params *p = store_new(D, H, lay, 1.5 / sqrt((double)D), 7 + (uint64_t)(B * D * H));
    net f = net_new(p, B, D, act, lay, 1, 0), c = net_new(p, B, D, act, lay, 0, 0);
    char what[128];
    snprintf(what, sizeof what, "%s W %s B=%lld D=%lld H=%lld, fused vs composed",
             cae_act_name(act), lay_name(lay), (long long)B, (long long)D, (long long)H);
    expect_same(f.g, c.g, 11 + (uint64_t)B, what);
    cae_graph_free(f.g);
    cae_graph_free(c.g);
    cae_params_free(p);
}

START_TEST(fused_equals_composed)
{
    static const int64_t Bs[] = {1, 3, 20}, Ds[] = {7, 33, 100}, Hs[] = {5, 17, 130};
    const cae_act act = acts[_i];
    for (int l = 0; l < 2; l++)
        for (int bi = 0; bi < 3; bi++)
            for (int di = 0; di < 3; di++)
                for (int hi = 0; hi < 3; hi++)
                    fused_vs_composed(Bs[bi], Ds[di], Hs[hi], act, (cae_wlayout)l);
}
END_TEST

/* ------------------------------------------- both = finite differences */

START_TEST(finite_differences)
{
    const cae_act act = acts[_i];
    const int64_t B = 3, D = 7, H = 5;
    for (int l = 0; l < 2; l++)
        for (int fused = 0; fused < 2; fused++) {
            cae_wlayout lay = (cae_wlayout)l;
            cae_params *p = store_new(D, H, lay, 0.8, 21 + (uint64_t)l);
            net n = net_new(p, B, D, act, lay, fused, 0);
            /* Keep every pre-activation away from relu's kink (a step of
             * eps moves a by at most eps here). */
            double margin = 0;
            for (uint64_t s = 0; s < 200 && margin < 0.05; s++) {
                tu_fill_uniform(cae_node_value(n.x)->data, B * D, 0, 1, 100 + s);
                cae_graph_forward(n.g);
                margin = INFINITY;
                for (int64_t i = 0; i < B * H; i++)
                    margin = fmin(margin, fabs((double)cae_node_value(n.a)->data[i]));
            }
            ck_assert_msg(margin >= 0.05, "no data away from the kink");
            cae_node *wrt[3] = {n.W, n.b, n.x};
            for (int k = 0; k < 3; k++) {
                cae_gradcheck_report r;
                TU_GRADCHECK(n.g, wrt[k], 0, 1, &r);
                ck_assert_msg(r.max_rel_err <= TU_FD_TOL,
                              "%s %s W %s: d/d%s rel err %.3g at [%lld]: analytic %.9g numeric "
                              "%.9g",
                              form_name(fused), cae_act_name(act), lay_name(lay),
                              cae_node_name(wrt[k]), r.max_rel_err, (long long)r.worst_index,
                              r.worst_analytic, r.worst_numeric);
            }
            cae_graph_free(n.g);
            cae_params_free(p);
        }
}
END_TEST

/* The whole CAE objective, tied decoder sharing h and W with the penalty:
 * bce(h W^T + c, x) + lambda P, both forms, against finite differences. */
START_TEST(full_objective_finite_differences)
{
    const int64_t B = 4, D = 9, H = 6;
    for (int fused = 0; fused < 2; fused++) {
        cae_params *p = store_new(D, H, CAE_W_IN_UNITS, 1.0, 5);
        cae_tensor *ct = cae_params_add(p, "c", 1, &D);
        tu_fill_uniform(ct->data, D, -0.3, 0.3, 6);
        cae_graph *g = cae_graph_new(p, B);
        cae_node *x = cae_input(g, "x", 2, (int64_t[]){B, D});
        cae_input_requires_grad(x);
        tu_fill_uniform(cae_node_value(x)->data, B * D, 0, 1, 8);
        cae_node *W = cae_param(g, cae_params_get(p, "W")), *b = cae_param(g, cae_params_get(p, "b"));
        cae_node *c = cae_param(g, ct);
        cae_node *a = cae_bias_add(g, cae_matmul(g, x, W, 0, 0), b);
        cae_node *h = cae_sigmoid(g, a);
        cae_node *rec = cae_bce_logits(g, cae_bias_add(g, cae_matmul(g, h, W, 0, 1), c), x);
        cae_node *pen = fused ? cae_contractive_penalty(g, a, h, W, CAE_ACT_SIGMOID, CAE_W_IN_UNITS)
                              : cae_contractive_penalty_composed(g, a, h, W, CAE_ACT_SIGMOID,
                                                                 CAE_W_IN_UNITS);
        cae_node *loss = cae_add(g, rec, cae_scale(g, pen, 0.7));
        ck_assert_msg(!cae_graph_compile(g, loss), "%s", cae_graph_error(g));
        cae_node *wrt[4] = {W, b, c, x};
        for (int k = 0; k < 4; k++) {
            cae_gradcheck_report r;
            TU_GRADCHECK(g, wrt[k], 0, 1, &r);
            ck_assert_msg(r.max_rel_err <= TU_FD_TOL,
                          "CAE objective (%s): d/d%s rel err %.3g at [%lld]: %.9g vs %.9g",
                          form_name(fused), cae_node_name(wrt[k]), r.max_rel_err,
                          (long long)r.worst_index, r.worst_analytic, r.worst_numeric);
        }
        cae_graph_free(g);
        cae_params_free(p);
    }
}
END_TEST

/* ------------------------------------ linear encoder = weight decay */

START_TEST(linear_is_weight_decay)
{
    static const int64_t shapes[][3] = {{1, 7, 5}, {3, 33, 17}, {20, 100, 130}};
    for (int s = 0; s < 3; s++)
        for (int l = 0; l < 2; l++)
            for (int fused = 0; fused < 2; fused++) {
                const int64_t B = shapes[s][0], D = shapes[s][1], H = shapes[s][2];
                cae_wlayout lay = (cae_wlayout)l;
                cae_params *p = store_new(D, H, lay, 1.0, 3 + (uint64_t)s);
                net n = net_new(p, B, D, CAE_ACT_LINEAR, lay, fused, 0);
                tu_fill_uniform(cae_node_value(n.x)->data, B * D, -1, 1, 4);
                cae_graph_forward(n.g);
                cae_graph_backward(n.g);
                const cae_tensor *W = cae_params_get(p, "W");
                double wd = 0;
                for (int64_t i = 0; i < W->size; i++) wd += (double)W->data[i] * W->data[i];
                const double v = cae_node_value(n.pen)->data[0];
                ck_assert_msg(fabs(v - wd) <= REL_TOL * wd,
                              "linear %s W %s B=%lld D=%lld H=%lld: penalty %.9g, sum W^2 %.9g",
                              form_name(fused), lay_name(lay), (long long)B, (long long)D,
                              (long long)H, v, wd);
                for (int64_t i = 0; i < W->size; i++)
                    ck_assert_msg(fabs(W->grad[i] - 2 * W->data[i]) <= REL_TOL * 4,
                                  "linear %s W %s: dP/dW[%lld] %.9g, want 2W = %.9g",
                                  form_name(fused), lay_name(lay), (long long)i,
                                  (double)W->grad[i], 2.0 * W->data[i]);
                const cae_tensor *b = cae_params_get(p, "b");
                for (int64_t j = 0; j < H; j++)
                    ck_assert_msg(b->grad[j] == 0, "linear: dP/db[%lld] = %g, want 0",
                                  (long long)j, (double)b->grad[j]);
                for (int64_t i = 0; i < B * D; i++)
                    ck_assert_msg(cae_node_value(n.x)->grad[i] == 0,
                                  "linear: dP/dx[%lld] = %g, want 0", (long long)i,
                                  (double)cae_node_value(n.x)->grad[i]);
                cae_graph_free(n.g);
                cae_params_free(p);
            }
}
END_TEST

/* ------------------------- the hand derivation, factor 2 and all terms */

/* H = 2, D = 3, B = 1, sigmoid. PAPER.md, with W_ji unit j's weight from
 * input i, s_j = h_j (1 - h_j), n_j = sum_i W_ji^2:
 *   P        = sum_j s_j^2 n_j
 *   dP/dW_ji = 2 s_j^2 (1 - 2 h_j) n_j x_i  +  2 s_j^2 W_ji
 *              (chain term, through a_j)       (direct term, through n_j)
 *   dP/db_j  = 2 s_j^2 (1 - 2 h_j) n_j
 * A derivation that drops the 2 (the authors' numpy code) gives half of
 * each; one that detaches W from the penalty loses the direct term. */
static const double Wh[2][3] = {{0.9, -1.3, 0.7}, {-0.4, 1.1, 0.8}}; /* W_ji */
static const double xh[3] = {0.3, 0.8, 0.55}, bh[2] = {0.2, -0.35};

static void hand(double *P, double dW[2][3], double db[2], double da[2], double direct[2][3])
{
    *P = 0;
    for (int j = 0; j < 2; j++) {
        double a = bh[j], n = 0;
        for (int i = 0; i < 3; i++) a += Wh[j][i] * xh[i], n += Wh[j][i] * Wh[j][i];
        const double h = 1 / (1 + exp(-a)), s = h * (1 - h);
        *P += s * s * n;
        db[j] = da[j] = 2 * s * s * (1 - 2 * h) * n;
        for (int i = 0; i < 3; i++) {
            direct[j][i] = 2 * s * s * Wh[j][i];
            dW[j][i] = 2 * s * s * (1 - 2 * h) * n * xh[i] + direct[j][i];
        }
    }
}

/* W element (j, i) in the store for a layout. */
static int64_t widx(cae_wlayout lay, int j, int i) { return lay == CAE_W_UNITS_IN ? j * 3 + i : i * 2 + j; }

static void set_hand_params(cae_params *p, cae_wlayout lay)
{
    cae_tensor *W = cae_params_get(p, "W"), *b = cae_params_get(p, "b");
    for (int j = 0; j < 2; j++) {
        b->data[j] = (cae_real)bh[j];
        for (int i = 0; i < 3; i++) W->data[widx(lay, j, i)] = (cae_real)Wh[j][i];
    }
}

#define HAND_TOL (REL_TOL * 10)
#define CLOSE(got, want) (fabs((got) - (want)) <= HAND_TOL * fmax(fabs(want), 1e-3))

START_TEST(hand_closed_form_factor_two)
{
    double P, dW[2][3], db[2], da[2], direct[2][3];
    hand(&P, dW, db, da, direct);
    for (int l = 0; l < 2; l++)
        for (int fused = 0; fused < 2; fused++) {
            cae_wlayout lay = (cae_wlayout)l;
            const char *tag = form_name(fused);
            /* (1) the full encoder: x -> a -> h, gradients w.r.t. W and b. */
            cae_params *p = store_new(3, 2, lay, 1, 1);
            set_hand_params(p, lay);
            net n = net_new(p, 1, 3, CAE_ACT_SIGMOID, lay, fused, 0);
            for (int i = 0; i < 3; i++) cae_node_value(n.x)->data[i] = (cae_real)xh[i];
            cae_graph_forward(n.g);
            cae_graph_backward(n.g);
            const double v = cae_node_value(n.pen)->data[0];
            ck_assert_msg(CLOSE(v, P), "%s W %s: P = %.9g, hand %.9g", tag, lay_name(lay), v, P);
            const cae_tensor *W = cae_params_get(p, "W"), *b = cae_params_get(p, "b");
            for (int j = 0; j < 2; j++) {
                ck_assert_msg(CLOSE(b->grad[j], db[j]), "%s W %s: dP/db_%d = %.9g, hand %.9g",
                              tag, lay_name(lay), j, (double)b->grad[j], db[j]);
                for (int i = 0; i < 3; i++) {
                    const double g = W->grad[widx(lay, j, i)];
                    ck_assert_msg(fabs(dW[j][i]) > 1e-3, "hand case too degenerate");
                    ck_assert_msg(CLOSE(g, dW[j][i]),
                                  "%s W %s: dP/dW_%d%d = %.9g, hand (factor 2) %.9g, a x1/2 "
                                  "derivation gives %.9g",
                                  tag, lay_name(lay), j, i, g, dW[j][i], dW[j][i] / 2);
                    ck_assert_msg(fabs(g - dW[j][i] / 2) > 0.4 * fabs(dW[j][i]),
                                  "%s: dP/dW_%d%d = %.9g equals half the closed form", tag, j, i,
                                  g);
                }
            }
            cae_graph_free(n.g);
            /* (2) each term alone: a is an input (independent of W), so
             * dP/dW is the direct term 2 s_j^2 W_ji and dP/da the chain
             * factor 2 s_j^2 (1 - 2 h_j) n_j. */
            cae_graph *g = cae_graph_new(p, 1);
            cae_node *a = cae_input(g, "a", 2, (int64_t[]){1, 2});
            cae_input_requires_grad(a);
            cae_node *Wn = cae_param(g, cae_params_get(p, "W"));
            cae_node *h = cae_sigmoid(g, a);
            cae_node *pen =
                fused ? cae_contractive_penalty(g, a, h, Wn, CAE_ACT_SIGMOID, lay)
                      : cae_contractive_penalty_composed(g, a, h, Wn, CAE_ACT_SIGMOID, lay);
            ck_assert_msg(!cae_graph_compile(g, pen), "%s", cae_graph_error(g));
            for (int j = 0; j < 2; j++) {
                double av = bh[j];
                for (int i = 0; i < 3; i++) av += Wh[j][i] * xh[i];
                cae_node_value(a)->data[j] = (cae_real)av;
            }
            cae_graph_forward(g);
            cae_graph_backward(g);
            for (int j = 0; j < 2; j++) {
                const double gaj = cae_node_value(a)->grad[j];
                ck_assert_msg(CLOSE(gaj, da[j]), "%s W %s: chain dP/da_%d = %.9g, hand %.9g", tag,
                              lay_name(lay), j, gaj, da[j]);
                for (int i = 0; i < 3; i++) {
                    const double gd = W->grad[widx(lay, j, i)];
                    ck_assert_msg(CLOSE(gd, direct[j][i]),
                                  "%s W %s: direct dP/dW_%d%d = %.9g, hand 2 s^2 W = %.9g", tag,
                                  lay_name(lay), j, i, gd, direct[j][i]);
                    /* and the chain term through a = W x + b is x_i dP/da_j */
                    ck_assert_msg(CLOSE(gd + xh[i] * gaj, dW[j][i]),
                                  "%s: direct + x chain = %.9g, hand %.9g", tag, gd + xh[i] * gaj,
                                  dW[j][i]);
                }
            }
            cae_graph_free(g);
            cae_params_free(p);
        }
}
END_TEST

/* -------------- sum of squares, per example: the wrong forms must differ */

START_TEST(sum_of_squares_per_example)
{
    /* W (D=4 x H=3, DxH) with mixed signs: column sums nearly cancel. The
     * two examples sit at very different slopes (x = 0 keeps every unit at
     * a = 0, the other saturates unit 0), so averaging the batch before
     * squaring also shows. */
    static const double w[4][3] = {{2.7, -2.1, 1.2}, {-2.4, 1.8, 1.5}, {1.5, 0.9, -1.8},
                                   {-1.8, -0.6, -1.2}};
    static const double xs[2][4] = {{0, 0, 0, 0}, {1, 0, 1, 0}};
    const int64_t B = 2, D = 4, H = 3;
    for (int fused = 0; fused < 2; fused++) {
        cae_params *p = store_new(D, H, CAE_W_IN_UNITS, 1, 1);
        cae_tensor *W = cae_params_get(p, "W"), *b = cae_params_get(p, "b");
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 3; j++) W->data[i * 3 + j] = (cae_real)w[i][j];
        for (int j = 0; j < 3; j++) b->data[j] = 0;
        net n = net_new(p, B, D, CAE_ACT_SIGMOID, CAE_W_IN_UNITS, fused, 0);
        for (int k = 0; k < 8; k++) cae_node_value(n.x)->data[k] = (cae_real)xs[k / 4][k % 4];
        cae_graph_forward(n.g);
        double right = 0, sq_of_sum = 0, batch_sq = 0;
        double dmean[3] = {0, 0, 0};
        for (int bb = 0; bb < 2; bb++)
            for (int j = 0; j < 3; j++) {
                double a = 0, nj = 0, cs = 0;
                for (int i = 0; i < 4; i++) a += xs[bb][i] * w[i][j], nj += w[i][j] * w[i][j], cs += w[i][j];
                const double h = 1 / (1 + exp(-a)), d = h * (1 - h);
                right += d * d * nj / B;     /* mean over examples of sum_j d^2 n_j */
                sq_of_sum += d * d * cs * cs / B; /* (sum_i W_ij)^2: wrong */
                dmean[j] += d / B;
            }
        for (int j = 0; j < 3; j++) {
            double nj = 0;
            for (int i = 0; i < 4; i++) nj += w[i][j] * w[i][j];
            batch_sq += dmean[j] * dmean[j] * nj; /* ||mean_b J_b||^2: wrong */
        }
        const double v = cae_node_value(n.pen)->data[0];
        ck_assert_msg(fabs(v - right) <= 10 * REL_TOL * right, "%s: P = %.9g, want %.9g",
                      form_name(fused), v, right);
        ck_assert_msg(fabs(sq_of_sum - right) > 0.5 * right,
                      "test data too weak: (sum W)^2 form %.9g vs %.9g", sq_of_sum, right);
        ck_assert_msg(fabs(batch_sq - right) > 0.1 * right,
                      "test data too weak: batch form %.9g vs %.9g", batch_sq, right);
        /* and the per-example brute-force Jacobian norms average to P */
        double sq[2];
        ck_assert_int_eq(cae_jacobian_graph_sqnorms(n.g, n.x, n.h, sq, NULL), 0);
        ck_assert_msg(fabs((sq[0] + sq[1]) / 2 - right) <= 10 * REL_TOL * right,
                      "%s: brute-force mean ||J||^2 %.9g, want %.9g", form_name(fused),
                      (sq[0] + sq[1]) / 2, right);
        cae_graph_free(n.g);
        cae_params_free(p);
    }
}
END_TEST

/* ------------------- each activation uses its own derivative */

START_TEST(own_activation_derivative)
{
    const cae_act act = acts[_i];
    const int64_t D = 7, H = 5;
    for (int l = 0; l < 2; l++)
        for (int fused = 0; fused < 2; fused++) {
            cae_wlayout lay = (cae_wlayout)l;
            cae_params *p = store_new(D, H, lay, 0.9, 31);
            net n = net_new(p, 1, D, act, lay, fused, 0);
            tu_fill_uniform(cae_node_value(n.x)->data, D, 0, 1, 32);
            cae_graph_forward(n.g);
            const double v = cae_node_value(n.pen)->data[0];
            double brute;
            ck_assert_int_eq(cae_jacobian_graph_sqnorms(n.g, n.x, n.h, &brute, NULL), 0);
            ck_assert_msg(fabs(v - brute) <= 10 * REL_TOL * brute && brute > 0,
                          "%s %s W %s: penalty %.9g, brute-force ||J||^2 %.9g", form_name(fused),
                          cae_act_name(act), lay_name(lay), v, brute);
            /* The sigmoid's derivative under another activation is wrong. */
            double as_sigmoid = 0;
            const cae_tensor *W = cae_params_get(p, "W");
            for (int64_t j = 0; j < H; j++) {
                double nj = 0;
                for (int64_t i = 0; i < D; i++) {
                    double wv = lay == CAE_W_IN_UNITS ? W->data[i * H + j] : W->data[j * D + i];
                    nj += wv * wv;
                }
                double d = cae_act_derivative(CAE_ACT_SIGMOID, cae_node_value(n.a)->data[j]);
                as_sigmoid += d * d * nj;
            }
            if (act != CAE_ACT_SIGMOID)
                ck_assert_msg(fabs(as_sigmoid - brute) > 0.05 * brute,
                              "%s: test cannot tell its derivative from the sigmoid's",
                              cae_act_name(act));
            cae_graph_free(n.g);
            cae_params_free(p);
        }
}
END_TEST

/* ------------------------------ training with the penalty contracts */

/* Smooth random patterns in [0,1]: two sinusoids of random frequency,
 * phase and amplitude per example. */
static void smooth_patterns(cae_real *X, int64_t N, int64_t D, uint64_t seed)
{
    cae_rng r;
    cae_rng_seed(&r, seed, 0);
    for (int64_t n = 0; n < N; n++) {
        const double f1 = 0.5 + 2 * cae_rng_uniform(&r), p1 = 2 * M_PI * cae_rng_uniform(&r);
        const double f2 = 2 + 3 * cae_rng_uniform(&r), p2 = 2 * M_PI * cae_rng_uniform(&r);
        const double a2 = 0.2 * cae_rng_uniform(&r);
        for (int64_t i = 0; i < D; i++) {
            const double t = (double)i / (double)D;
            double v = 0.5 + 0.3 * sin(2 * M_PI * f1 * t + p1) + a2 * sin(2 * M_PI * f2 * t + p2);
            X[n * D + i] = (cae_real)fmin(1, fmax(0, v));
        }
    }
}

/* Train a tied sigmoid auto-encoder (W: D x H, a = x W + b, logits =
 * h W^T + c) with loss bce + lambda P by plain SGD; report the mean
 * ||J||_F^2 over the data before and after, and the final reconstruction. */
static void train_tied(double lambda, int fused, const cae_real *X, int64_t N, int64_t D,
                       int64_t H, int steps, double lr, double *j0, double *j1, double *rec_end)
{
    const int64_t B = 20;
    cae_params *p = cae_params_new();
    cae_tensor *Wt = cae_params_add(p, "W", 2, (int64_t[]){D, H});
    cae_tensor *bt = cae_params_add(p, "b", 1, &H), *ct = cae_params_add(p, "c", 1, &D);
    cae_rng r;
    cae_rng_seed(&r, 2011, 0); /* the same initialisation for every run */
    cae_tensor_uniform(Wt, (cae_real)(4 * sqrt(6.0 / (double)(D + H))), &r);
    cae_graph *g = cae_graph_new(p, B);
    cae_node *x = cae_input(g, "x", 2, (int64_t[]){B, D});
    cae_node *W = cae_param(g, Wt);
    cae_node *a = cae_bias_add(g, cae_matmul(g, x, W, 0, 0), cae_param(g, bt));
    cae_node *h = cae_sigmoid(g, a);
    cae_node *logits = cae_bias_add(g, cae_matmul(g, h, W, 0, 1), cae_param(g, ct));
    cae_node *rec = cae_bce_logits(g, logits, x);
    cae_node *loss = rec;
    if (lambda > 0) {
        cae_node *pen = fused ? cae_contractive_penalty(g, a, h, W, CAE_ACT_SIGMOID, CAE_W_IN_UNITS)
                              : cae_contractive_penalty_composed(g, a, h, W, CAE_ACT_SIGMOID,
                                                                 CAE_W_IN_UNITS);
        loss = cae_add(g, rec, cae_scale(g, pen, (cae_real)lambda));
    }
    ck_assert_msg(!cae_graph_compile(g, loss), "%s", cae_graph_error(g));
    double *sq = malloc((size_t)N * sizeof *sq);
    ck_assert_int_eq(cae_jacobian_sqnorms(X, Wt->data, bt->data, N, D, H, CAE_ACT_SIGMOID,
                                          CAE_W_IN_UNITS, sq, NULL), 0);
    *j0 = 0;
    for (int64_t n = 0; n < N; n++) *j0 += sq[n] / (double)N;
    cae_real *v = cae_params_values(p), *gr = cae_params_grads(p);
    const size_t tot = cae_params_total(p);
    for (int s = 0; s < steps; s++) {
        cae_input_bind(x, X + (s % (N / B)) * B * D);
        cae_graph_forward(g);
        cae_graph_backward(g);
        for (size_t k = 0; k < tot; k++) v[k] -= (cae_real)lr * gr[k];
    }
    ck_assert_int_eq(cae_jacobian_sqnorms(X, Wt->data, bt->data, N, D, H, CAE_ACT_SIGMOID,
                                          CAE_W_IN_UNITS, sq, NULL), 0);
    *j1 = 0;
    for (int64_t n = 0; n < N; n++) *j1 += sq[n] / (double)N;
    *rec_end = cae_node_value(rec)->data[0];
    free(sq);
    cae_graph_free(g);
    cae_params_free(p);
}

START_TEST(training_contracts)
{
    const int64_t N = 200, D = 64, H = 32;
    const int steps = 400;
    const double lr = 0.02;
    cae_real *X = cae_alloc_reals((size_t)(N * D));
    smooth_patterns(X, N, D, 77);
    double a0, a1, arec;
    train_tied(0, 1, X, N, D, H, steps, lr, &a0, &a1, &arec);
    ck_assert_msg(isfinite(arec), "AE diverged");
    for (int fused = 0; fused < 2; fused++) {
        double c0, c1, crec;
        train_tied(0.5, fused, X, N, D, H, steps, lr, &c0, &c1, &crec);
        ck_assert_msg(c0 == a0, "not the same initialisation: %g vs %g", c0, a0);
        ck_assert_msg(isfinite(crec), "CAE (%s) diverged", form_name(fused));
        ck_assert_msg(c1 < 0.5 * a1 && (c0 - c1) > (a0 - a1),
                      "CAE (%s penalty, lambda 0.5): mean ||J||^2 %.5g -> %.5g, AE %.5g -> %.5g "
                      "(reconstruction CAE %.4g, AE %.4g)",
                      form_name(fused), c0, c1, a0, a1, crec, arec);
    }
    cae_free(X);
}
END_TEST

/* ------------------------------------------------ 1 vs 2 threads */

START_TEST(threads_agree)
{
    const int64_t B = 100, D = 784, H = 1000;
    for (int l = 0; l < 2; l++) {
        cae_wlayout lay = (cae_wlayout)l;
        cae_params *p = store_new(D, H, lay, 4 * sqrt(6.0 / (D + H)), 41);
        net n1 = net_new(p, B, D, CAE_ACT_SIGMOID, lay, 1, 1);
        net n2 = net_new(p, B, D, CAE_ACT_SIGMOID, lay, 1, 2);
        expect_same(n2.g, n1.g, 42, lay == CAE_W_IN_UNITS ? "W DxH, 2 threads vs 1"
                                                          : "W HxD, 2 threads vs 1");
        cae_graph_free(n1.g);
        cae_graph_free(n2.g);
        cae_params_free(p);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("penalty");
    TCase *tc = tcase_create("fused_equals_composed");
    tcase_add_loop_test(tc, fused_equals_composed, 0, N_ACTS);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    tc = tcase_create("finite_differences");
    tcase_add_loop_test(tc, finite_differences, 0, N_ACTS);
    tcase_add_test(tc, full_objective_finite_differences);
    suite_add_tcase(s, tc);
    tc = tcase_create("linear_is_weight_decay");
    tcase_add_test(tc, linear_is_weight_decay);
    suite_add_tcase(s, tc);
    tc = tcase_create("hand_closed_form_factor_two");
    tcase_add_test(tc, hand_closed_form_factor_two);
    suite_add_tcase(s, tc);
    tc = tcase_create("sum_of_squares_per_example");
    tcase_add_test(tc, sum_of_squares_per_example);
    suite_add_tcase(s, tc);
    tc = tcase_create("own_activation_derivative");
    tcase_add_loop_test(tc, own_activation_derivative, 0, N_ACTS);
    suite_add_tcase(s, tc);
    tc = tcase_create("training_contracts");
    tcase_add_test(tc, training_contracts);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    tc = tcase_create("threads_agree");
    tcase_add_test(tc, threads_agree);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
