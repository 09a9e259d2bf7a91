/* Verifying a hand-derived gradient against autodiff.
 *
 * A new regularizer, the contractive penalty plus an L1 on the code:
 *
 *     R = (1/B) sum_b sum_j [ lambda s_bj^2 n_j  +  beta h_bj ]
 *     h = sigmoid(a), s = h (1 - h), n_j = sum_i W_ij^2   (a = x W + b, W: D x H)
 *
 * written twice: composed from primitive ops (the tape differentiates it),
 * and as one fused op with a backward derived by hand. cae_gradcompare runs
 * both on the same parameters and inputs and compares the loss and every
 * gradient; cae_dircheck checks the fused op alone along random directions
 * (no reference needed). A copy of the fused op with a factor 2 dropped
 * (the slip of the paper's own code) must be caught by both.
 *
 * Builds in float and in double (-DCAE_DOUBLE=ON); prints what it finds;
 * exits 0 iff the right backward passes and the wrong one is caught. */
#include <math.h>
#include <stdio.h>

#include "cae/gradcheck.h"
#include "cae/op.h"
#include "cae/ops.h"
#include "cae/penalty.h"

enum { B = 20, D = 784, H = 1000 };

/* The fused op: inputs a (B x H) and W (D x H); f[0] = lambda, f[1] = beta,
 * i[0] = 1 for the deliberately wrong backward. Scratch: n_j and
 * c_j = (1/B) sum_b s_bj^2 (H each), kept by forward for backward.
 *
 * Backward, with g = dL/dR and d/da of h = s, of s = s (1 - 2h):
 *   d(s^2)/da_bj = 2 s_bj * s_bj (1 - 2 h_bj)
 *   dR/da_bj     = (g/B) [ lambda 2 s_bj^2 (1 - 2 h_bj) n_j  +  beta s_bj ]
 *   dR/dW_ij     = g lambda (1/B) sum_b s_bj^2 * 2 W_ij  =  2 g lambda c_j W_ij
 * (a does not depend on W here: the tape adds the path through a = x W + b). */
static int reg_infer(cae_node *n) { return cae_node_scalar(n); }

static int reg_plan(cae_node *n)
{
    n->scratch_bytes = 2 * (size_t)n->in[1]->out.shape[1] * sizeof(cae_real);
    return 0;
}

static void reg_forward(cae_node *n)
{
    const cae_real *a = n->in[0]->out.data, *W = n->in[1]->out.data;
    const int64_t Bn = n->in[0]->out.shape[0], Hn = n->in[0]->out.shape[1];
    const int64_t Dn = n->in[1]->out.shape[0];
    const double lambda = n->fattr[0], beta = n->fattr[1];
    cae_real *norm = n->scratch, *c = norm + Hn;
    for (int64_t j = 0; j < Hn; j++) norm[j] = c[j] = 0;
    for (int64_t i = 0; i < Dn; i++)
        for (int64_t j = 0; j < Hn; j++) norm[j] += W[i * Hn + j] * W[i * Hn + j];
    double r = 0;
    for (int64_t bb = 0; bb < Bn; bb++)
        for (int64_t j = 0; j < Hn; j++) {
            const double h = 1 / (1 + exp(-(double)a[bb * Hn + j])), s = h * (1 - h);
            c[j] += (cae_real)(s * s / (double)Bn);
            r += lambda * s * s * norm[j] + beta * h;
        }
    n->out.data[0] = (cae_real)(r / (double)Bn);
}

static void reg_backward(cae_node *n)
{
    const cae_tensor *at = &n->in[0]->out, *wt = &n->in[1]->out;
    const int64_t Bn = at->shape[0], Hn = at->shape[1], Dn = wt->shape[0];
    const double lambda = n->fattr[0], beta = n->fattr[1], g = n->out.grad[0];
    const double two = n->iattr[0] ? 1 : 2; /* the wrong one drops the 2 */
    const cae_real *norm = n->scratch, *c = norm + Hn;
    if (at->grad) /* += : other ops may write this gradient too */
        for (int64_t bb = 0; bb < Bn; bb++)
            for (int64_t j = 0; j < Hn; j++) {
                const double h = 1 / (1 + exp(-(double)at->data[bb * Hn + j])), s = h * (1 - h);
                at->grad[bb * Hn + j] +=
                    (cae_real)(g / (double)Bn * (lambda * two * s * s * (1 - 2 * h) * norm[j] + beta * s));
            }
    if (wt->grad)
        for (int64_t i = 0; i < Dn; i++)
            for (int64_t j = 0; j < Hn; j++)
                wt->grad[i * Hn + j] += (cae_real)(2 * g * lambda * c[j] * wt->data[i * Hn + j]);
}

static const cae_op reg_op = {.name = "contractive_l1", .n_in = 2, .infer = reg_infer,
                              .plan = reg_plan, .forward = reg_forward, .backward = reg_backward};

static cae_node *reg_fused(cae_graph *g, cae_node *a, cae_node *W, double lambda, double beta,
                           int wrong)
{
    const cae_attr at = {.i = {wrong}, .f = {lambda, beta}};
    return cae_node_new_attr(g, &reg_op, (cae_node *[]){a, W}, &at, "contractive_l1");
}

/* The same regularizer from primitives. */
static cae_node *reg_composed(cae_graph *g, cae_node *a, cae_node *W, double lambda, double beta)
{
    cae_node *h = cae_sigmoid(g, a);
    cae_node *jac = cae_contractive_penalty_composed(g, a, h, W, CAE_ACT_SIGMOID, CAE_W_IN_UNITS);
    cae_node *l1 = cae_mean(g, cae_sum_rows(g, h)); /* (1/B) sum_b sum_j h_bj */
    return cae_add(g, cae_scale(g, jac, (cae_real)lambda), cae_scale(g, l1, (cae_real)beta));
}

/* loss = R(x W + b) with x bound to batch; form 0: composed, 1: fused,
 * 2: fused with the wrong backward. */
static cae_graph *build(cae_params *p, int form, const cae_real *batch)
{
    cae_graph *g = cae_graph_new(p, B);
    cae_node *x = cae_input(g, "x", 2, (int64_t[]){B, D});
    cae_input_requires_grad(x); /* compare dR/dx too */
    cae_input_bind(x, batch);
    cae_node *W = cae_param(g, cae_params_get(p, "W"));
    cae_node *a = cae_affine(g, x, W, cae_param(g, cae_params_get(p, "b")), 0);
    cae_node *r = form ? reg_fused(g, a, W, 0.1, 0.05, form == 2) : reg_composed(g, a, W, 0.1, 0.05);
    if (cae_graph_compile(g, r)) {
        fprintf(stderr, "verify_fused: %s\n", cae_graph_error(g));
        return NULL;
    }
    return g;
}

int main(void)
{
    const int dbl = sizeof(cae_real) == sizeof(double);
    /* Tolerances of cae/testing.h (CAE_CK_TOL_COMPARE, CAE_CK_TOL_DIR):
     * same-precision rounding for the comparison, finite differences for
     * the directional check. */
    const double tol_cmp = dbl ? 1e-10 : 1e-4, tol_dir = dbl ? 1e-5 : 1e-2;
    cae_params *p = cae_params_new();
    cae_tensor *W = cae_params_add(p, "W", 2, (int64_t[]){D, H});
    cae_params_add(p, "b", 1, (int64_t[]){H});
    cae_rng rng;
    cae_rng_seed(&rng, 2011, 0);
    cae_tensor_uniform(W, (cae_real)(4 * sqrt(6.0 / (D + H))), &rng);
    static cae_real batch[B * D]; /* a batch of pixel-like values for the directional check */
    for (int i = 0; i < B * D; i++) batch[i] = (cae_real)cae_rng_uniform(&rng);
    cae_graph *ref = build(p, 0, batch), *right = build(p, 1, batch), *wrong = build(p, 2, batch);
    if (!ref || !right || !wrong) return 1;

    printf("contractive penalty + L1 on the code, x %dx%d, W %dx%d, %s\n", B, D, D, H,
           dbl ? "double" : "float");
    int ok = 1;
    for (int k = 0; k < 2; k++) {
        cae_graph *g = k ? wrong : right;
        cae_gradcompare_report r;
        cae_dircheck_report dr;
        cae_error e;
        /* gradcompare draws x from U(0, 1) with seed 0 for both graphs (its
         * default); dircheck uses the batch bound to x. */
        if (cae_gradcompare(g, ref, NULL, &r, &e) || cae_dircheck(g, NULL, &dr, &e)) {
            fprintf(stderr, "verify_fused: %s\n", e.msg);
            return 1;
        }
        printf("\n%s backward vs composed (cae_gradcompare, tol %g):\n", k ? "WRONG" : "right",
               tol_cmp);
        for (int i = 0; i < r.n; i++) {
            const cae_gradcompare_diff *d = &r.diff[i];
            printf("  %-4s %8lld values  max abs %.2e  max rel %.2e  worst [%lld]: %.9g vs %.9g\n",
                   d->name, (long long)d->size, d->max_abs_diff, d->max_rel_diff,
                   (long long)d->worst_index, d->worst_analytic, d->worst_reference);
        }
        printf("  directional check, %d directions through %lld values: max rel %.2e (tol %g)\n",
               dr.n_dirs, (long long)dr.n_elements, dr.max_rel_diff, tol_dir);
        const int cmp_pass = r.max_rel_diff <= tol_cmp, dir_pass = dr.max_rel_diff <= tol_dir;
        if (!k) {
            printf("  %s\n", cmp_pass && dir_pass ? "passes" : "FAILS");
            ok &= cmp_pass && dir_pass;
        } else {
            printf("  %s (worst: d/d%s)\n", !cmp_pass && !dir_pass ? "caught by both" : "NOT CAUGHT",
                   r.diff[r.worst].name);
            ok &= !cmp_pass && !dir_pass;
        }
    }
    printf("\n%s\n", ok ? "OK: the hand-derived backward matches autodiff; the wrong one is caught"
                        : "FAILED");
    cae_graph_free(ref);
    cae_graph_free(right);
    cae_graph_free(wrong);
    cae_params_free(p);
    return ok ? 0 : 1;
}
