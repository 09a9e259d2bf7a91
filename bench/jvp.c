/* bench/jvp — what forward mode costs and buys (cae/jvp.h).
 *
 *   --steps     one CAE training step (forward + backward + SGD; tied,
 *               sigmoid, 784 -> 1000, lambda 0.1) with the exact fused
 *               penalty and with its probe estimate at K = 1, 4, 16, at
 *               B = 20 and 100, 1 and 2 threads; and the same on two layers
 *               (784 -> 1000 -> 1000): layer 2 with its own exact penalty
 *               (greedy) against the end-to-end probe penalty of both.
 *               Median microseconds per step and samples/s.
 *   --variance  the probe estimator's relative standard deviation against K
 *               at B = 20 and 100: 400 draws of the batch-averaged estimate
 *               on a CAE trained for --epochs on MNIST ($CAE_DATA_DIR), or
 *               on the checkpoint given with --model.
 *   --deep      the exact ||J||_F of a 784-1000-1000 stack over the 10 000
 *               MNIST validation examples (cae_metrics_compute: all 784
 *               input directions as one batch of tangents per block of
 *               examples), seconds and GFLOP/s of its products; the stack
 *               is --model's (2 layers) or random.
 * All three when none is named. Options: --quick (fewer samples, 2000
 * validation examples), --threads LIST (default 1,2), --model CKPT,
 * --epochs N (default 2). Usage: jvp [sections] [options] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <omp.h>

#include "bench.h"

#include "cae/checkpoint.h"
#include "cae/metrics.h"
#include "cae/train.h"

enum { DX = 784, DH = 1000 };

static int samples = 7, quick = 0, epochs = 2;
static double min_time = 0.2;
static int threads_list[4] = {1, 2}, n_threads = 2;
static const char *model_path = NULL;

static void die(const char *what, const char *msg)
{
    fprintf(stderr, "jvp: %s: %s\n", what, msg);
    exit(1);
}

/* A store with layers 1..depth (784 -> 1000 [-> 1000]) initialised as the
 * library does. */
static cae_params *stack_store(int depth, cae_model_info *info, int probes, int e2e)
{
    cae_params *p = cae_params_new();
    memset(info, 0, sizeof *info);
    cae_error err;
    for (int l = 1; l <= depth; l++) {
        cae_layer_config c;
        cae_layer_config_default(&c, CAE_MODEL_CAE, l == 1 ? DX : DH, DH);
        if (l == depth) {
            c.probes = probes;
            c.end_to_end = e2e && l > 1;
        }
        if (cae_stack_push(p, info, &c, 1, &err)) die("params", err.msg);
    }
    return p;
}

static void steps(void)
{
    printf("CAE training step (forward + backward + SGD), median of %d, microseconds and samples/s\n",
           samples);
    printf("%-34s %5s %4s %11s %11s\n", "penalty", "B", "thr", "us/step", "samples/s");
    static const int Ks[4] = {0, 1, 4, 16};
    static const int64_t Bs[2] = {20, 100};
    for (int ti = 0; ti < n_threads; ti++)
        for (int bi = 0; bi < 2; bi++)
            for (int depth = 1; depth <= 2; depth++)
                for (int ki = 0; ki < 4; ki++) {
                    const int K = Ks[ki];
                    const int64_t B = Bs[bi];
                    const int th = threads_list[ti];
                    cae_model_info info;
                    cae_params *p = stack_store(depth, &info, K, depth == 2 && K > 0);
                    cae_error err;
                    cae_task *t = cae_task_pretrain_stack(p, &info, B, 1, th, &err);
                    if (!t) die("task", err.msg);
                    const int64_t D = cae_task_inputs(t);
                    cae_real *x = cae_alloc_reals((size_t)(B * D));
                    cae_rng r;
                    cae_rng_seed(&r, 2, 0);
                    for (int64_t i = 0; i < B * D; i++) x[i] = (cae_real)cae_rng_uniform(&r);
                    omp_set_num_threads(th);
                    bench_step c = {.t = t, .x = x, .rows = B};
                    const double s = bench_time_call(bench_step_run, &c, samples, min_time);
                    char name[64];
                    if (depth == 1)
                        snprintf(name, sizeof name, "1 layer, %s", K ? "probes" : "exact (fused)");
                    else
                        snprintf(name, sizeof name, "2 layers, %s",
                                 K ? "end-to-end probes" : "greedy exact (layer 2's)");
                    if (K) snprintf(name + strlen(name), sizeof name - strlen(name), " K=%d", K);
                    printf("%-34s %5lld %4d %11.1f %11.0f\n", name, (long long)B, th, 1e6 * s,
                           (double)B / s);
                    fflush(stdout);
                    cae_free(x);
                    cae_task_free(t);
                    cae_params_free(p);
                }
}

/* A trained one-layer CAE: --model's, or trained here on MNIST. */
static cae_params *trained_cae(cae_model_info *info, const cae_splits *s)
{
    cae_error err;
    cae_params *p = NULL;
    if (model_path) {
        if (cae_checkpoint_load(model_path, info, &p, NULL, &err)) die(model_path, err.msg);
        return p;
    }
    p = cae_params_new();
    memset(info, 0, sizeof *info);
    cae_layer_config c;
    cae_layer_config_default(&c, CAE_MODEL_CAE, DX, DH);
    if (cae_stack_push(p, info, &c, 1, &err)) die("params", err.msg);
    cae_task *t = cae_task_pretrain(p, 1, &c, 20, 1, 0, &err);
    if (!t) die("task", err.msg);
    cae_train_config tc;
    cae_train_config_default(&tc);
    tc.epochs = epochs;
    tc.limit = quick ? 5000 : 0;
    cae_train_result res;
    if (cae_train(t, s->train, NULL, &tc, NULL, &res, &err)) die("train", err.msg);
    cae_task_free(t);
    return p;
}

static void variance(void)
{
    cae_error err;
    cae_splits *s = NULL;
    const char *dir = getenv("CAE_DATA_DIR") ? getenv("CAE_DATA_DIR") : "data";
    if (cae_splits_load(dir, "mnist", &s, &err)) die("mnist", err.msg);
    cae_model_info info;
    cae_params *p = trained_cae(&info, s);
    const int draws = quick ? 100 : 400;
    printf("\nprobe estimator of the batch mean ||J||_F^2 on a %s CAE: relative standard deviation "
           "over %d draws\n", model_path ? "loaded" : "freshly trained", draws);
    printf("%5s %4s %14s %14s %10s %12s\n", "B", "K", "exact", "probe mean", "rel sd", "sqrt(2/KB)");
    static const int Ks[3] = {1, 4, 16};
    static const int64_t Bs[2] = {20, 100};
    const cae_real *X = cae_dataset_reals(s->valid);
    for (int bi = 0; bi < 2; bi++)
        for (int ki = 0; ki < 3; ki++) {
            const int64_t B = Bs[bi];
            const int K = Ks[ki];
            cae_graph *g = cae_graph_new(p, B);
            cae_graph_set_no_grad(g, 1);
            cae_node *x = cae_input(g, "x", 2, (int64_t[]){B, DX}), *a;
            cae_node *h = cae_encoder(g, p, 1, info.layer[0].act, x, &a);
            cae_node *W = cae_param(g, cae_layer_tensor(p, 1, "W"));
            cae_node *exact = cae_contractive_penalty(g, a, h, W, info.layer[0].act, CAE_W_IN_UNITS);
            cae_node *est = cae_jacobian_penalty_probes(g, x, h, K, CAE_PROBE_GAUSSIAN);
            cae_graph_output(g, exact);
            if (cae_graph_compile(g, est)) die("graph", cae_graph_error(g));
            cae_input_bind(x, X);
            double sum = 0, sum2 = 0;
            for (int d = 0; d < draws; d++) {
                cae_graph_forward(g);
                const double v = cae_node_value(est)->data[0];
                sum += v;
                sum2 += v * v;
            }
            const double mean = sum / draws, sd = sqrt(fmax(0, sum2 / draws - mean * mean));
            const double ex = cae_node_value(exact)->data[0];
            printf("%5lld %4d %14.6g %14.6g %10.4f %12.4f\n", (long long)B, K, ex, mean, sd / ex,
                   sqrt(2.0 / ((double)K * (double)B)));
            cae_graph_free(g);
        }
    cae_params_free(p);
    cae_splits_free(s);
}

static void deep(void)
{
    cae_error err;
    cae_splits *s = NULL;
    const char *dir = getenv("CAE_DATA_DIR") ? getenv("CAE_DATA_DIR") : "data";
    if (cae_splits_load(dir, "mnist", &s, &err)) die("mnist", err.msg);
    cae_model_info info;
    cae_params *p = NULL;
    if (model_path) {
        if (cae_checkpoint_load(model_path, &info, &p, NULL, &err)) die(model_path, err.msg);
        if (info.n_layers != 2) die(model_path, "--deep needs a stack of two layers");
    } else {
        p = stack_store(2, &info, 0, 0);
    }
    const int64_t n = quick ? 2000 : s->valid->n;
    const double gflop = 2.0 * (double)n * DX * (double)info.layer[0].n_hidden *
                         (double)info.layer[1].n_hidden / 1e9;
    printf("\nexact ||J||_F of the %lld-%lld-%lld stack over %lld MNIST validation examples "
           "(forward mode; %.0f GFLOP in the layer-2 products)\n",
           (long long)DX, (long long)info.layer[0].n_hidden, (long long)info.layer[1].n_hidden,
           (long long)n, gflop);
    printf("%4s %10s %10s %14s\n", "thr", "seconds", "GFLOP/s", "mean ||J||_F");
    for (int ti = 0; ti < n_threads; ti++) {
        cae_metrics_config mc;
        cae_metrics_config_default(&mc);
        mc.threads = threads_list[ti];
        mc.limit = n;
        omp_set_num_threads(threads_list[ti]);
        cae_metrics m;
        const double t0 = bench_now();
        if (cae_metrics_compute(p, 2, info.layer, s->valid, &mc, &m, &err)) die("metrics", err.msg);
        const double sec = bench_now() - t0;
        printf("%4d %10.2f %10.1f %14.6g\n", threads_list[ti], sec, gflop / sec, m.jac_norm);
        fflush(stdout);
    }
    cae_params_free(p);
    cae_splits_free(s);
}

int main(int argc, char **argv)
{
    int do_steps = 0, do_var = 0, do_deep = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--steps")) do_steps = 1;
        else if (!strcmp(argv[i], "--variance")) do_var = 1;
        else if (!strcmp(argv[i], "--deep")) do_deep = 1;
        else if (!strcmp(argv[i], "--quick")) {
            quick = 1;
            samples = 3;
            min_time = 0.05;
        } else if (!strcmp(argv[i], "--model") && i + 1 < argc) model_path = argv[++i];
        else if (!strcmp(argv[i], "--epochs") && i + 1 < argc) epochs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            n_threads = 0;
            for (char *tok = strtok(argv[++i], ","); tok && n_threads < 4; tok = strtok(NULL, ","))
                threads_list[n_threads++] = atoi(tok);
        } else {
            fprintf(stderr, "usage: jvp [--steps] [--variance] [--deep] [--quick] [--threads LIST] "
                            "[--model CKPT] [--epochs N]\n");
            return 2;
        }
    }
    if (!do_steps && !do_var && !do_deep) do_steps = do_var = do_deep = 1;
    if (do_steps) steps();
    if (do_var) variance();
    if (do_deep) deep();
    return 0;
}
