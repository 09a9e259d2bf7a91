/* bench/profile — where the time of one training step goes: the forward and
 * backward time of every node on the tape of a pretraining model's graph,
 * run node by node (median over samples, microseconds), beside the time of
 * the whole step through cae_graph_forward + cae_graph_backward, and of a
 * whole training step (cae_graph_step_sgd: forward, backward and the SGD
 * update of the layer's tensors, each finished by its last writer).
 *
 *   profile [--model cae|ae|dae-b|dae-g|ae-wd|rbm] [--batch B] [--threads T]
 *           [--hidden H] [--composed] [--reps N]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "cae/model.h"
#include "cae/op.h"
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
    if (kind < 0 || kind == CAE_MODEL_MLP || B < 1 || hidden < 1 || reps < 1 || reps > 100000) {
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
    if (cae_layer_params(p, 1, &lc, 1, &err)) {
        fprintf(stderr, "profile: %s\n", err.msg);
        return 1;
    }
    cae_graph *g = cae_graph_new(p, B);
    cae_graph_set_threads(g, threads);
    cae_node *x = cae_input(g, "x", 2, (int64_t[]){B, 784});
    cae_layer_nodes ln;
    cae_layer_build(g, p, 1, &lc, x, 0, NULL, NULL, &ln); /* rbm: the Gibbs sample is a node */
    if (cae_graph_compile(g, ln.loss)) {
        fprintf(stderr, "profile: %s\n", cae_graph_error(g));
        return 1;
    }
    for (int64_t i = 0; i < B * 784; i++) cae_node_value(x)->data[i] = (cae_real)cae_rng_uniform(&r);
    const int n = cae_graph_tape_length(g);
    double *tf = calloc((size_t)(n * reps), sizeof *tf), *tb = calloc((size_t)(n * reps), sizeof *tb);
    double *step = calloc((size_t)reps, sizeof *step), *train = calloc((size_t)reps, sizeof *train);
    cae_tensor *upd[8];
    int nu = 0;
    for (int i = 0; i < n && nu < 8; i++) {
        cae_tensor *t = cae_node_param(cae_graph_tape_at(g, i));
        if (t && cae_node_receives_grad(cae_graph_tape_at(g, i))) upd[nu++] = t;
    }
    cae_sgd sgd = {.lr = 1e-4, .n = nu, .tensors = upd};
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
        cae_graph_step_sgd(g, &sgd);
        sgd.continues = 1;
        if (rep >= 0) train[rep] = bench_now() - s2;
    }
    printf("# cae bench/profile: %s%s 784 -> %lld, batch %lld, %s threads, median of %d, microseconds\n",
           model, composed ? " (composed penalty)" : "", (long long)hidden, (long long)B,
           threads ? "set" : "default", reps);
    if (threads) printf("# threads: %d\n", threads);
    printf("%-4s %-22s %-14s %10s %10s\n", "node", "op", "shape", "forward", "backward");
    double sum = 0;
    for (int i = 0; i < n; i++) {
        cae_node *nd = cae_graph_tape_at(g, i);
        if (!nd->op) continue;
        char shape[64];
        const double f = bench_median(tf + i * reps, reps), b = bench_median(tb + i * reps, reps);
        printf("%-4d %-22s %-14s %10.1f %10.1f\n", i, nd->op->name, cae_shape_str(&nd->out, shape, sizeof shape),
               1e6 * f, 1e6 * b);
        sum += f + b;
    }
    printf("sum of nodes %.1f us; whole step (forward + backward, incl. zeroing) %.1f us\n", 1e6 * sum,
           1e6 * bench_median(step, reps));
    printf("training step (forward + backward + update, cae_graph_step_sgd) %.1f us\n",
           1e6 * bench_median(train, reps));
    free(train);
    free(tf);
    free(tb);
    free(step);
    cae_graph_free(g);
    cae_params_free(p);
    return 0;
}
