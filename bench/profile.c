/* bench/profile — where the time of one training step goes, node by node:
 *
 *  - alone: each node's forward and backward run on its own, the tape's
 *    order (median over samples, microseconds);
 *  - in step: the same nodes inside whole training steps
 *    (cae_graph_step_sgd: forward, backward and the SGD update, each
 *    parameter finished by its last writer; cae/profile.h), so a node's
 *    backward includes the update it runs, and the forward the copies it
 *    reads (a product over W^T in step reads the step's transposed copy);
 *
 * beside the time of the whole forward + backward and of the training
 * step. --model mlp is fine-tuning's 784-H-10 classifier, with momentum 0.9
 * as `cae reproduce` runs it; the others are pretraining models.
 *
 *   profile [--model cae|ae|dae-b|dae-g|ae-wd|rbm|mlp] [--batch B] [--threads T]
 *           [--hidden H] [--composed] [--reps N]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "cae/model.h"
#include "cae/op.h"
#include "cae/ops.h"
#include "cae/profile.h"
#include "cae/sgd.h"

int main(int argc, char **argv)
{
    const char *model = "cae";
    int64_t B = 20, hidden = 1000;
    int threads = 0, composed = 0, reps = 101;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--model") && i + 1 < argc) model = argv[++i];
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc) B = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--hidden") && i + 1 < argc) hidden = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--composed")) composed = 1;
        else {
            fprintf(stderr, "profile: unknown option '%s'\n", argv[i]);
            return 2;
        }
    }
    const int kind = cae_model_kind_parse(model);
    if (kind == CAE_MODEL_MLP && composed) {
        fprintf(stderr, "profile: --composed is the CAE's penalty; the mlp has none\n");
        return 2;
    }
    if (kind < 0 || B < 1 || hidden < 1 || reps < 1 || reps > 100000) {
        fprintf(stderr, "profile: bad --model, --batch, --hidden or --reps\n");
        return 2;
    }
    cae_params *p = cae_params_new();
    cae_layer_config lc;
    cae_layer_config_default(&lc, (cae_model_kind)kind, 784, hidden);
    lc.composed = composed;
    cae_rng r;
    cae_rng_seed(&r, 1, 0);
    cae_error err;
    const int mlp = kind == CAE_MODEL_MLP;
    const cae_mlp_config mc = {.n_layers = 1, .sizes = {784, hidden}, .n_classes = 10};
    if (mlp ? cae_mlp_params(p, &mc, 1, &err) : cae_layer_params(p, 1, &lc, 1, &err)) {
        fprintf(stderr, "profile: %s\n", err.msg);
        return 1;
    }
    cae_graph *g = cae_graph_new(p, B);
    cae_graph_set_threads(g, threads);
    cae_node *x = cae_input(g, "x", 2, (int64_t[]){B, 784}), *y = NULL, *loss;
    if (mlp) {
        y = cae_input(g, "y", 1, (int64_t[]){B});
        loss = cae_softmax_xent(g, cae_mlp_logits(g, p, &mc, x, NULL), y);
    } else {
        cae_layer_nodes ln;
        cae_layer_build(g, p, 1, &lc, x, 0, NULL, NULL, &ln); /* rbm: the Gibbs sample is a node */
        loss = ln.loss;
    }
    if (cae_graph_compile(g, loss)) {
        fprintf(stderr, "profile: %s\n", cae_graph_error(g));
        return 1;
    }
    for (int64_t i = 0; i < B * 784; i++) cae_node_value(x)->data[i] = (cae_real)cae_rng_uniform(&r);
    for (int64_t i = 0; y && i < B; i++) cae_node_value(y)->data[i] = (cae_real)(i % 10);
    const int n = cae_graph_tape_length(g);
    double *tf = calloc((size_t)(n * reps), sizeof *tf), *tb = calloc((size_t)(n * reps), sizeof *tb);
    double *sf = calloc((size_t)(n * reps), sizeof *sf), *sb = calloc((size_t)(n * reps), sizeof *sb);
    double *step = calloc((size_t)reps, sizeof *step), *train = calloc((size_t)reps, sizeof *train);
    double *one_f = calloc((size_t)n, sizeof *one_f), *one_b = calloc((size_t)n, sizeof *one_b);
    if (!tf || !tb || !sf || !sb || !step || !train || !one_f || !one_b) {
        fprintf(stderr, "profile: out of memory\n");
        return 1;
    }
    cae_tensor *upd[8];
    cae_real *vel[8] = {0};
    int nu = 0;
    for (int i = 0; i < n && nu < 8; i++) {
        cae_tensor *t = cae_node_param(cae_graph_tape_at(g, i));
        if (t && cae_node_receives_grad(cae_graph_tape_at(g, i))) upd[nu++] = t;
    }
    for (int i = 0; mlp && i < nu; i++)
        if (!(vel[i] = cae_alloc_reals((size_t)upd[i]->size))) {
            fprintf(stderr, "profile: out of memory\n");
            return 1;
        }
    cae_sgd sgd = {.lr = mlp ? 0.01 : 1e-4, .momentum = mlp ? 0.9 : 0, .n = nu, .tensors = upd,
                   .velocity = mlp ? vel : NULL};
    for (int rep = -5; rep < reps; rep++) {
        const double s0 = bench_now();
        cae_graph_forward(g);
        cae_graph_backward(g);
        const double s1 = bench_now();
        for (int i = 0; i < n; i++) { /* forward node by node */
            cae_node *nd = cae_graph_tape_at(g, i);
            if (!nd->op) continue;
            const double t0 = bench_now();
            nd->op->forward(nd);
            if (rep >= 0) tf[i * reps + rep] = bench_now() - t0;
        }
        cae_graph_backward(g); /* zero and seed, then each backward again */
        for (int i = n - 1; i >= 0; i--) {
            cae_node *nd = cae_graph_tape_at(g, i);
            if (!nd->op || !nd->out.grad || !nd->op->backward) continue;
            const double t0 = bench_now();
            nd->op->backward(nd);
            if (rep >= 0) tb[i * reps + rep] = bench_now() - t0;
        }
        if (rep >= 0) step[rep] = s1 - s0;
        const double s2 = bench_now();
        int bad = cae_graph_step_sgd(g, &sgd);
        sgd.continues = 1;
        if (rep >= 0) train[rep] = bench_now() - s2;
        memset(one_f, 0, (size_t)n * sizeof *one_f); /* the same step, timed node by node */
        memset(one_b, 0, (size_t)n * sizeof *one_b);
        cae_graph_time_nodes(g, one_f, one_b);
        bad |= cae_graph_step_sgd(g, &sgd);
        cae_graph_time_nodes(g, NULL, NULL);
        if (bad) { /* the loss went non-finite: no backward, the columns would lie */
            fprintf(stderr, "profile: the loss is not finite after %d steps\n", 2 * (rep + 5) + 2);
            return 1;
        }
        for (int i = 0; i < n && rep >= 0; i++) {
            sf[i * reps + rep] = one_f[i];
            sb[i * reps + rep] = one_b[i];
        }
    }
    printf("# cae bench/profile: %s%s 784 -> %lld%s, batch %lld, %s threads, median of %d, microseconds\n",
           model, composed ? " (composed penalty)" : "", (long long)hidden, mlp ? " -> 10" : "",
           (long long)B, threads ? "set" : "default", reps);
    if (threads) printf("# threads: %d\n", threads);
    printf("%-4s %-22s %-14s %10s %10s   %10s %10s\n", "", "", "", "alone", "", "in step", "");
    printf("%-4s %-22s %-14s %10s %10s   %10s %10s\n", "node", "op", "shape", "forward", "backward",
           "forward", "bwd+upd");
    double sum = 0, sum_in = 0;
    for (int i = 0; i < n; i++) {
        cae_node *nd = cae_graph_tape_at(g, i);
        if (!nd->op) continue;
        char shape[64];
        const double f = bench_median(tf + i * reps, reps), b = bench_median(tb + i * reps, reps);
        const double f2 = bench_median(sf + i * reps, reps), b2 = bench_median(sb + i * reps, reps);
        printf("%-4d %-22s %-14s %10.1f %10.1f   %10.1f %10.1f\n", i, nd->op->name,
               cae_shape_str(&nd->out, shape, sizeof shape), 1e6 * f, 1e6 * b, 1e6 * f2, 1e6 * b2);
        sum += f + b;
        sum_in += f2 + b2;
    }
    printf("sum of nodes alone %.1f us; whole forward + backward (incl. zeroing) %.1f us\n", 1e6 * sum,
           1e6 * bench_median(step, reps));
    printf("sum of nodes in step %.1f us; training step (forward + backward + update, "
           "cae_graph_step_sgd%s) %.1f us\n",
           1e6 * sum_in, mlp ? ", momentum 0.9" : "", 1e6 * bench_median(train, reps));
    for (int i = 0; i < nu; i++) cae_free(vel[i]);
    free(one_f);
    free(one_b);
    free(sf);
    free(sb);
    free(train);
    free(tf);
    free(tb);
    free(step);
    cae_graph_free(g);
    cae_params_free(p);
    return 0;
}
