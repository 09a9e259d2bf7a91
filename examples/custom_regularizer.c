/* Writing your own regularizer: compose it from public ops, check its
 * gradient, and train it with cae_train like any built-in model.
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
 *   1. write the regularizer as graph nodes, and a task builder that adds it
 *      to a built-in objective (here the plain auto-encoder's);
 *   2. build one graph with that builder and compare its backward with
 *      finite differences (cae_gradcheck) on every parameter;
 *   3. train with cae_train: shuffling, momentum, validation, the NaN guard
 *      and checkpoint hooks come with it, no loop of our own.
 *
 * Prints to stdout; exits 0 when the gradient check passes and training
 * lowers the validation objective, 1 otherwise. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "cae/gradcheck.h"
#include "cae/ops.h"
#include "cae/penalty.h"
#include "cae/train.h"

enum { B = 10, D = 24, H = 12, N = 200, NV = 50 };

/* Step 1a — the new regularizer, one function returning one scalar node.
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

/* Step 1b — the task builder: the auto-encoder of layer 1 (reconstruction
 * cross-entropy, tied weights) plus R. The same builder serves training
 * (io->eval = 0) and evaluation (1). */
typedef struct my_task {
    cae_layer_task layer; /* which layer and its configuration */
    cae_real lambda, beta;
} my_task;

static int build(cae_graph *g, cae_task_io *io, const void *ctx)
{
    const my_task *m = ctx;
    cae_layer_nodes ln;
    if (cae_layer_build(g, io->params, m->layer.layer, &m->layer.config, io->x, io->eval, NULL,
                        NULL, &ln))
        return -1;
    cae_node *W = cae_param(g, cae_layer_tensor(io->params, 1, "W"));
    io->loss = cae_add(g, ln.loss, contractive_sparse(g, ln.a, ln.h, W, m->lambda, m->beta));
    io->metric = ln.recon; /* evaluation also reports the reconstruction alone */
    return io->loss ? 0 : -1;
}

/* Smooth patterns in [0,1]: a random sinusoid per example. */
static void make_data(cae_real *X, int n, cae_rng *r)
{
    for (int e = 0; e < n; e++) {
        double f = 0.5 + 2 * cae_rng_uniform(r), ph = 6.2831853 * cae_rng_uniform(r);
        for (int i = 0; i < D; i++)
            X[e * D + i] = (cae_real)(0.5 + 0.4 * sin(6.2831853 * f * i / D + ph));
    }
}

static int on_epoch(const cae_epoch_report *r, void *ctx)
{
    (void)ctx;
    if (r->epoch % 10 == 0 || r->epoch == 1)
        printf("epoch %3d  objective %.5f  valid objective %.5f  (reconstruction %.5f)\n",
               r->epoch, r->objective, r->valid_loss, r->valid_metric);
    return 0; /* a checkpoint would be saved here: cae_checkpoint_save_run */
}

int main(void)
{
    const int dbl = sizeof(cae_real) == sizeof(double);
    int failed = 0;
    cae_rng rng;
    cae_rng_seed(&rng, 42, 0);
    cae_error err;

    /* The parameters: layer 1 of a store, as the library names them. */
    my_task mt = {.lambda = 0.1f, .beta = 0.05f};
    mt.layer.layer = 1;
    cae_layer_config_default(&mt.layer.config, CAE_MODEL_AE, D, H);
    cae_params *p = cae_params_new();
    if (cae_layer_params(p, 1, &mt.layer.config, 42, &err)) {
        printf("params: %s\n", err.msg);
        return 1;
    }
    cae_real *X = malloc(sizeof(cae_real) * (N + NV) * D);
    if (!X) return 1;
    make_data(X, N + NV, &rng);

    /* Step 2 — one graph from the builder, and the gradient check of every
     * parameter on a fixed batch. Float needs a larger step and tolerance. */
    cae_graph *g = cae_graph_new(p, B);
    cae_task_io io = {.params = p, .rows = B, .batch = B};
    io.x = cae_input(g, "x", 2, (int64_t[]){B, D});
    if (build(g, &io, &mt) || cae_graph_compile(g, io.loss)) {
        printf("compile failed: %s\n", cae_graph_error(g));
        return 1;
    }
    cae_input_bind(io.x, X);
    const double eps = dbl ? 1e-5 : 1e-2, tol = dbl ? 1e-5 : 2e-2, floor = dbl ? 1e-3 : 5e-2;
    printf("gradient check (%s, eps %g):\n", dbl ? "double" : "float", eps);
    for (int i = 0; i < cae_graph_tape_length(g); i++) {
        cae_node *n = cae_graph_tape_at(g, i);
        if (!cae_node_param(n)) continue; /* parameters only */
        cae_gradcheck_report r;
        cae_error e;
        if (cae_gradcheck(g, n, eps, 0, 1, floor, &r, &e)) {
            printf("  %s: checker refused the node: %s\n", cae_node_name(n), e.msg);
            failed = 1;
            continue;
        }
        const int ok = r.max_rel_err <= tol;
        printf("  d loss / d %-4s %4lld entries  max abs err %.2e  max rel err %.2e"
               "  (worst [%lld]: tape %.6g, numeric %.6g)  %s\n",
               cae_node_name(n), (long long)r.n_checked, r.max_abs_err, r.max_rel_err,
               (long long)r.worst_index, r.worst_analytic, r.worst_numeric, ok ? "ok" : "FAIL");
        failed |= !ok;
    }
    cae_graph_free(g);

    /* Step 3 — a task from the builder, trained by cae_train on N examples
     * and evaluated on NV others after every epoch. */
    const cae_task_spec spec = {.name = "ae+contractive-sparse", .n_in = D, .build = build,
                                .ctx = &mt, .ctx_size = sizeof mt};
    cae_task *t = cae_task_new(p, &spec, B, 7, 0, &err);
    if (!t) {
        printf("task: %s\n", err.msg);
        return 1;
    }
    cae_dataset train = {.n = N, .dim = D, .rows = D, .cols = 1, .x = X};
    cae_dataset valid = {.n = NV, .dim = D, .rows = D, .cols = 1, .x = X + N * D};
    double before, recon_before;
    cae_task_evaluate(t, &valid, &before, &recon_before);
    cae_train_config tc;
    cae_train_config_default(&tc);
    tc.epochs = 60;
    tc.lr = 0.05;
    tc.momentum = 0.5;
    tc.seed = 7;
    cae_train_hooks hooks = {.on_epoch = on_epoch};
    cae_train_result res;
    if (cae_train(t, &train, &valid, &tc, &hooks, &res, &err)) {
        printf("train: %s\n", err.msg);
        failed = 1;
    }
    double after, recon_after;
    cae_task_evaluate(t, &valid, &after, &recon_after);
    printf("validation objective %.5f before, %.5f after %d epochs\n", before, after,
           res.epochs_run);
    if (!(after < before)) {
        printf("FAIL: the validation objective did not decrease\n");
        failed = 1;
    }
    printf("%s\n", failed ? "FAILED" : "all checks passed");
    cae_task_free(t);
    free(X);
    cae_params_free(p);
    return failed;
}
