/* two_layer — the graph library in one page.
 *
 * Builds a two-layer classifier from ops, with a hidden activation that is
 * NOT built in: softsign(x) = x / (1 + |x|), defined below as a user op
 * exactly like the library's own. Checks every parameter's gradient with
 * the library's checker, then trains on two interleaved spirals with plain
 * SGD and reports the accuracy. The op also has a tangent rule, so forward
 * mode (cae_jvp) works through it: the directional derivative of the
 * logits is compared with central differences at the end. Exit status 0
 * iff the gradients and the tangent check and the network learns the
 * spirals (>= 95% training accuracy).
 *
 *   ./two_layer [--threads N]
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cae/gradcheck.h"
#include "cae/jvp.h"
#include "cae/op.h"
#include "cae/ops.h"

/* ---- a user-defined op: softsign, forward and backward side by side */
static int softsign_infer(cae_node *n) { return cae_node_same_shape(n, 0); }

static void softsign_forward(cae_node *n)
{
    const cae_real *x = n->in[0]->out.data; /* any shape, size elements */
    cae_real *y = n->out.data;
    for (int64_t i = 0; i < n->out.size; i++) y[i] = x[i] / (1 + fabs(x[i]));
}

static void softsign_backward(cae_node *n)
{
    cae_tensor *x = &n->in[0]->out;
    if (!cae_needs_grad(n->in[0])) return;
    for (int64_t i = 0; i < n->out.size; i++) { /* dy/dx = 1 / (1 + |x|)^2 */
        const cae_real d = 1 + fabs(x->data[i]);
        x->grad[i] += n->out.grad[i] / (d * d); /* accumulate: += */
    }
}

/* The tangent, built from ops: y' = x' / (1 + |x|)^2 = x' (1 - y sign(x))^2
 * with sign(x) = 2 step(x) - 1. Ordinary nodes, so the reverse pass can
 * differentiate through it too. */
static cae_node *softsign_tangent(cae_graph *g, cae_node *n, cae_node *const *t)
{
    cae_node *sign = cae_add_scalar(g, cae_scale(g, cae_step(g, n->in[0]), 2), -1);
    cae_node *d = cae_square(g, cae_add_scalar(g, cae_scale(g, cae_mul(g, n, sign), -1), 1));
    /* t[0] may carry K directions: lift d to them */
    return cae_mul(g, cae_tangent_lift(g, d, cae_tangent_dirs(n->in[0], t[0])), t[0]);
}

static const cae_op softsign_op = {.name = "softsign", .n_in = 1, .infer = softsign_infer,
                                   .forward = softsign_forward, .backward = softsign_backward,
                                   .tangent = softsign_tangent};

static cae_node *softsign(cae_graph *g, cae_node *x)
{
    return cae_node_new(g, &softsign_op, (cae_node *[]){x}, "softsign");
}

/* ---- data: two spirals, label = arm */
enum { N = 400, HIDDEN = 64, BATCH = 40 };

static void spirals(cae_real *x, cae_real *y, cae_rng *r)
{
    for (int i = 0; i < N; i++) {
        const int arm = i & 1;
        const double t = 0.5 + 3.0 * M_PI * cae_rng_uniform(r); /* 1.5 turns */
        x[2 * i] = (cae_real)((arm ? -1 : 1) * t * cos(t) / 10 + 0.02 * cae_rng_normal(r));
        x[2 * i + 1] = (cae_real)((arm ? -1 : 1) * t * sin(t) / 10 + 0.02 * cae_rng_normal(r));
        y[i] = (cae_real)arm;
    }
}

int main(int argc, char **argv)
{
    int threads = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            threads = atoi(argv[++i]);
        } else {
            fprintf(stderr, "two_layer: unknown option '%s' (usage: two_layer [--threads N])\n",
                    argv[i]);
            return 2;
        }
    }
    /* Parameters live in a store that outlives graphs. */
    cae_params *p = cae_params_new();
    cae_tensor *W1 = cae_params_add(p, "W1", 2, (int64_t[]){2, HIDDEN});
    cae_tensor *b1 = cae_params_add(p, "b1", 1, (int64_t[]){HIDDEN});
    cae_tensor *W2 = cae_params_add(p, "W2", 2, (int64_t[]){HIDDEN, 2});
    cae_tensor *b2 = cae_params_add(p, "b2", 1, (int64_t[]){2});
    cae_rng rng;
    cae_rng_seed(&rng, 42, 0);
    cae_tensor_uniform(W1, 2.0f, &rng);
    cae_tensor_uniform(b1, 1.0f, &rng);
    cae_tensor_uniform(W2, (cae_real)sqrt(6.0 / (HIDDEN + 2)), &rng);

    /* Build: logits = softsign(x W1 + b1) W2 + b2; loss = softmax xent. */
    cae_graph *g = cae_graph_new(p, BATCH);
    cae_graph_set_threads(g, threads);
    cae_node *x = cae_input(g, "x", 2, (int64_t[]){BATCH, 2});
    cae_node *y = cae_input(g, "y", 1, (int64_t[]){BATCH});
    cae_node *h = softsign(g, cae_affine(g, x, cae_param(g, W1), cae_param(g, b1), 0));
    cae_node *logits = cae_affine(g, h, cae_param(g, W2), cae_param(g, b2), 0);
    cae_node *loss = cae_softmax_xent(g, logits, y);
    cae_graph_output(g, logits); /* keep it for the accuracy */
    /* Forward mode: d logits along a direction u of the inputs. */
    cae_node *u = cae_input(g, "u", 2, (int64_t[]){BATCH, 2}), *dlogits = NULL;
    cae_jvp(g, 1, &logits, 1, &x, &u, &dlogits); /* an error is sticky: compile reports it */
    cae_graph_output(g, dlogits);
    if (cae_graph_compile(g, loss)) { /* one check catches any earlier error */
        fprintf(stderr, "two_layer: %s\n", cae_graph_error(g));
        return 1;
    }

    cae_real *data = malloc(2 * N * sizeof *data), *labels = malloc(N * sizeof *labels);
    spirals(data, labels, &rng);
    memcpy(cae_node_value(x)->data, data, 2 * BATCH * sizeof *data);
    memcpy(cae_node_value(y)->data, labels, BATCH * sizeof *labels);

    /* Gradient check of every parameter (the user op included). */
    int ok = 1;
    const double tol = sizeof(cae_real) == 8 ? 1e-5 : 3e-2;
    for (int i = 0; i < cae_graph_tape_length(g); i++) {
        cae_node *n = cae_graph_tape_at(g, i);
        if (!cae_node_param(n)) continue; /* parameters only */
        cae_gradcheck_report r;
        cae_error e;
        if (cae_gradcheck(g, n, sizeof(cae_real) == 8 ? 1e-6 : 1e-2, 100, 1, 1e-2, &r, &e)) {
            printf("gradcheck %-3s: %s (%s)\n", cae_node_name(n), e.msg, cae_status_name(e.status));
            ok = 0;
            continue;
        }
        const int good = r.max_rel_err < tol;
        printf("gradcheck %-3s: %3lld entries, max rel err %.2e, max abs err %.2e, worst [%lld]: "
               "backward %.6g, numeric %.6g  %s\n", cae_node_name(n), (long long)r.n_checked,
               r.max_rel_err, r.max_abs_err, (long long)r.worst_index, r.worst_analytic,
               r.worst_numeric, good ? "ok" : "FAIL");
        ok &= good;
    }

    /* Train: minibatch SGD on the flat parameter block. Inputs are bound to
     * slices of the data set, so no batch is copied. */
    const cae_real lr = 0.5f;
    for (int epoch = 1; epoch <= 1000; epoch++) {
        double sum = 0;
        for (int b0 = 0; b0 < N; b0 += BATCH) {
            cae_input_bind(x, data + 2 * b0);
            cae_input_bind(y, labels + b0);
            cae_graph_forward(g);
            cae_graph_backward(g);
            sum += cae_node_value(loss)->data[0];
            cae_real *v = cae_params_values(p), *gr = cae_params_grads(p);
            for (size_t k = 0; k < cae_params_total(p); k++) v[k] -= lr * gr[k];
        }
        if (epoch % 200 == 0) printf("epoch %3d  loss %.4f\n", epoch, sum / (N / BATCH));
    }
    int correct = 0;
    for (int b0 = 0; b0 < N; b0 += BATCH) {
        cae_input_bind(x, data + 2 * b0);
        cae_input_bind(y, labels + b0);
        cae_graph_forward(g);
        const cae_real *z = cae_node_value(logits)->data;
        for (int i = 0; i < BATCH; i++) correct += (z[2 * i + 1] > z[2 * i]) == (labels[b0 + i] > 0.5f);
    }
    const double acc = (double)correct / N;
    printf("training accuracy %.1f%% (%d/%d)\n", 100 * acc, correct, N);
    ok &= acc >= 0.95;

    /* The tangent against central differences of the logits along u. */
    cae_input_bind(x, NULL); /* back to x's own buffer, which we perturb */
    cae_real *xv = cae_node_value(x)->data, *uv = cae_node_value(u)->data;
    for (int i = 0; i < 2 * BATCH; i++) uv[i] = (cae_real)(cae_rng_uniform(&rng) - 0.5);
    const double e = sizeof(cae_real) == 8 ? 1e-6 : 1e-3, worst_ok = sizeof(cae_real) == 8 ? 1e-6 : 2e-2;
    double fd[2 * BATCH], worst = 0;
    for (int sgn = 1; sgn >= -1; sgn -= 2) {
        for (int i = 0; i < 2 * BATCH; i++) xv[i] = data[i] + (cae_real)(sgn * e) * uv[i];
        cae_graph_forward(g);
        for (int i = 0; i < 2 * BATCH; i++)
            fd[i] = sgn > 0 ? cae_node_value(logits)->data[i]
                            : (fd[i] - cae_node_value(logits)->data[i]) / (2 * e);
    }
    memcpy(xv, data, 2 * BATCH * sizeof *xv);
    cae_graph_forward(g);
    for (int i = 0; i < 2 * BATCH; i++)
        worst = fmax(worst, fabs(cae_node_value(dlogits)->data[i] - fd[i]) / (1 + fabs(fd[i])));
    printf("tangent of the logits vs central differences: max rel err %.2e\n", worst);
    ok &= worst < worst_ok;
    printf("%s\n", ok ? "OK" : "FAILED");
    cae_graph_free(g);
    cae_params_free(p);
    free(data);
    free(labels);
    return ok ? 0 : 1;
}
