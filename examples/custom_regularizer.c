/* Writing your own regularizer: compose it from public ops, check its
 * gradient, train with it.
 *
 * The regularizer here is new (not in the library):
 *
 *     R(x) = lambda ||J_f(x)||_F^2  +  beta sum_j h_j          (per example)
 *
 * the contractive penalty plus an L1 sparsity term on the code (for a
 * sigmoid encoder h >= 0, so sum_j h_j is its L1 norm). Both parts are
 * built from ops that already have a backward, so the tape differentiates
 * R with no gradient code of ours. The workflow:
 *
 *   1. build the model and the regularizer as graph nodes;
 *   2. compile, then compare backward with finite differences
 *      (cae_gradcheck) on every parameter before trusting it;
 *   3. train: forward, backward, update the store's flat arrays.
 *
 * Prints to stdout; exits 0 when the gradient check passes and the
 * objective decreases, 1 otherwise. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "cae/gradcheck.h"
#include "cae/ops.h"
#include "cae/penalty.h"

enum { B = 10, D = 24, H = 12, N = 100, STEPS = 300 };

/* Step 1b — the new regularizer, one function returning one scalar node.
 * a: pre-activations (B x H), h = sigmoid(a), W: the encoder weights
 * (D x H). Averaged over the batch, like the reconstruction loss. */
static cae_node *contractive_sparse(cae_graph *g, cae_node *a, cae_node *h, cae_node *W,
                                    cae_real lambda, cae_real beta)
{
    /* mean_b ||J_f(x_b)||^2, composed from primitives (lib/models/regularizers.c) */
    cae_node *jac = cae_contractive_penalty_composed(g, a, h, W, CAE_ACT_SIGMOID, CAE_W_IN_UNITS);
    /* mean_b sum_j h_bj: sum each example's code, then average */
    cae_node *l1 = cae_mean(g, cae_sum_rows(g, h));
    /* Any constructor may fail (shapes); NULL flows through and compile says why. */
    return cae_add(g, cae_scale(g, jac, lambda), cae_scale(g, l1, beta));
}

/* Smooth patterns in [0,1]: a random sinusoid per example. */
static void make_data(cae_real *X, cae_rng *r)
{
    for (int n = 0; n < N; n++) {
        double f = 0.5 + 2 * cae_rng_uniform(r), ph = 6.2831853 * cae_rng_uniform(r);
        for (int i = 0; i < D; i++)
            X[n * D + i] = (cae_real)(0.5 + 0.4 * sin(6.2831853 * f * i / D + ph));
    }
}

/* Mean of the objective over all N examples (one forward per minibatch). */
static double objective(cae_graph *g, cae_node *x, cae_node *loss, const cae_real *X)
{
    double total = 0;
    for (int m = 0; m < N / B; m++) {
        cae_input_bind(x, X + (size_t)m * B * D);
        cae_graph_forward(g);
        total += cae_node_value(loss)->data[0];
    }
    return total / (N / B);
}

int main(void)
{
    const int dbl = sizeof(cae_real) == sizeof(double);
    int failed = 0;
    cae_rng rng;
    cae_rng_seed(&rng, 42, 0);

    /* Step 1a — a tied sigmoid auto-encoder: a = x W + b, h = sigmoid(a),
     * logits = h W^T + c, reconstruction = cross-entropy(logits, x). */
    cae_params *p = cae_params_new();
    cae_tensor *Wt = cae_params_add(p, "W", 2, (int64_t[]){D, H});
    cae_tensor *bt = cae_params_add(p, "b", 1, (int64_t[]){H});
    cae_tensor *ct = cae_params_add(p, "c", 1, (int64_t[]){D});
    cae_tensor_uniform(Wt, (cae_real)(4 * sqrt(6.0 / (D + H))), &rng);

    cae_graph *g = cae_graph_new(p, B);
    cae_node *x = cae_input(g, "x", 2, (int64_t[]){B, D});
    cae_node *W = cae_param(g, Wt), *b = cae_param(g, bt), *c = cae_param(g, ct);
    /* affine = x W + b as one node (the same bits as bias_add(matmul)). */
    cae_node *a = cae_affine(g, x, W, b, 0);
    cae_node *h = cae_sigmoid(g, a);
    cae_node *logits = cae_affine(g, h, W, c, 1); /* tied: h W^T + c */
    cae_node *rec = cae_bce_logits(g, logits, x);
    cae_node *reg = contractive_sparse(g, a, h, W, 0.1, 0.05);
    cae_node *loss = cae_add(g, rec, reg);
    cae_graph_output(g, reg); /* keep its value for printing */
    if (cae_graph_compile(g, loss)) {
        printf("compile failed: %s\n", cae_graph_error(g));
        return 1;
    }

    cae_real *X = malloc(sizeof(cae_real) * N * D);
    if (!X) return 1;
    make_data(X, &rng);

    /* Step 2 — gradient check on a fixed batch: central differences vs the
     * tape, for every parameter. Float needs a larger step and tolerance. */
    cae_input_bind(x, X);
    const double eps = dbl ? 1e-5 : 1e-2, tol = dbl ? 1e-5 : 2e-2, floor = dbl ? 1e-3 : 5e-2;
    cae_node *wrt[3] = {W, b, c};
    printf("gradient check (%s, eps %g):\n", dbl ? "double" : "float", eps);
    for (int k = 0; k < 3; k++) {
        cae_gradcheck_report r;
        if (cae_gradcheck(g, wrt[k], eps, 0, 1, floor, &r)) {
            printf("  %s: checker refused the node\n", cae_node_name(wrt[k]));
            failed = 1;
            continue;
        }
        const int ok = r.max_rel_err <= tol;
        printf("  d loss / d %-2s %4lld entries  max abs err %.2e  max rel err %.2e"
               "  (worst [%lld]: tape %.6g, numeric %.6g)  %s\n",
               cae_node_name(wrt[k]), (long long)r.n_checked, r.max_abs_err, r.max_rel_err,
               (long long)r.worst_index, r.worst_analytic, r.worst_numeric, ok ? "ok" : "FAIL");
        failed |= !ok;
    }

    /* Step 3 — plain SGD over the store's flat arrays; the objective is
     * measured on all N examples before and after. */
    cae_real *v = cae_params_values(p), *gr = cae_params_grads(p);
    const size_t n_params = cae_params_total(p);
    const double before = objective(g, x, loss, X);
    for (int s = 0; s < STEPS; s++) {
        cae_input_bind(x, X + (size_t)(s % (N / B)) * B * D);
        cae_graph_forward(g);
        cae_graph_backward(g);
        for (size_t k = 0; k < n_params; k++) v[k] -= (cae_real)0.05 * gr[k];
        if (s % 50 == 0 || s == STEPS - 1)
            printf("step %3d  loss %.5f  (reconstruction %.5f, regularizer %.5f)\n", s,
                   (double)cae_node_value(loss)->data[0], (double)cae_node_value(rec)->data[0],
                   (double)cae_node_value(reg)->data[0]);
    }
    const double after = objective(g, x, loss, X);
    printf("objective on all %d examples: %.5f before, %.5f after %d steps\n", N, before, after,
           STEPS);
    if (!(after < before)) {
        printf("FAIL: the objective did not decrease\n");
        failed = 1;
    }
    printf("%s\n", failed ? "FAILED" : "all checks passed");

    free(X);
    cae_graph_free(g);
    cae_params_free(p);
    return failed;
}
