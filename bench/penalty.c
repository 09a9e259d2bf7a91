/* bench/penalty — cost of the contractive penalty, fused vs composed.
 *
 * For B in {1, 20, 100} and 1 and 2 threads (784 inputs, 1000 sigmoid
 * units, W stored 784 x 1000):
 *   penalty   forward + backward of the penalty's own nodes only (the fused
 *             op, or every node the composed form adds), timed by running
 *             those nodes' forward and backward functions from the tape;
 *   step      one whole CAE training step (tied, sigmoid, cross-entropy,
 *             lambda = 0.1, forward + backward + SGD update) with each form,
 *             and the same step of a plain AE (lambda = 0) for reference;
 *   share     (CAE step - AE step) / CAE step, with the fused op.
 * Times are medians of 9 samples in microseconds.
 * Usage: penalty [--quick] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <omp.h>

#include "bench.h"

#include "cae/op.h"
#include "cae/ops.h"
#include "cae/penalty.h"
#include "cae/model.h"

static int samples = 9;
static double min_time = 0.05;

/* Median time of one call in microseconds. */
static double time_us(void (*f)(void *), void *ctx)
{
    return 1e6 * bench_time_call(f, ctx, samples, min_time);
}

/* ---- the penalty's own nodes */
typedef struct pen_ctx {
    cae_graph *g;
    int first, last; /* tape range of the penalty's nodes */
} pen_ctx;

static void pen_run(void *vctx)
{
    pen_ctx *c = vctx;
    for (int i = c->first; i <= c->last; i++) {
        cae_node *n = cae_graph_tape_at(c->g, i);
        if (n->op) n->op->forward(n);
    }
    cae_graph_tape_at(c->g, c->last)->out.grad[0] = 1;
    for (int i = c->last; i >= c->first; i--) {
        cae_node *n = cae_graph_tape_at(c->g, i);
        if (n->op && n->out.grad && n->op->backward) n->op->backward(n);
    }
}

static double penalty_time(cae_params *p, int64_t B, int composed, int threads)
{
    cae_graph *g = cae_graph_new(p, B);
    cae_graph_set_threads(g, threads);
    cae_node *a = cae_input(g, "a", 2, (int64_t[]){B, 1000});
    cae_input_requires_grad(a);
    cae_node *h = cae_sigmoid(g, a);
    cae_node *W = cae_param(g, cae_params_get(p, "L1.W"));
    int before = 3; /* a, h, W are on the tape before the penalty's nodes */
    cae_node *P = composed ? cae_contractive_penalty_composed(g, a, h, W, CAE_ACT_SIGMOID, CAE_W_IN_UNITS)
                           : cae_contractive_penalty(g, a, h, W, CAE_ACT_SIGMOID, CAE_W_IN_UNITS);
    if (cae_graph_compile(g, P)) {
        fprintf(stderr, "penalty: %s\n", cae_graph_error(g));
        exit(1);
    }
    cae_rng r;
    cae_rng_seed(&r, 3, 0);
    for (int64_t i = 0; i < B * 1000; i++) cae_node_value(a)->data[i] = (cae_real)(cae_rng_normal(&r) * 2);
    cae_graph_forward(g);
    pen_ctx c = {g, before, cae_graph_tape_length(g) - 1};
    double t = time_us(pen_run, &c);
    cae_graph_free(g);
    return t;
}

/* ---- whole training steps */

/* On a fresh copy of the layer each time: thousands of updates on a shared
 * store drift W, and the timings with it. */
static double step_time(int64_t B, double lambda, int composed, int threads, const cae_real *x)
{
    cae_layer_config lc;
    cae_layer_config_default(&lc, lambda > 0 ? CAE_MODEL_CAE : CAE_MODEL_AE, 784, 1000);
    lc.lambda = lambda;
    lc.composed = composed;
    cae_error err;
    cae_params *p = cae_params_new();
    cae_rng r;
    cae_rng_seed(&r, 1, 0);
    if (cae_layer_params(p, 1, &lc, 1, &err)) {
        fprintf(stderr, "penalty: %s\n", err.msg);
        exit(1);
    }
    cae_task *t = cae_task_pretrain(p, 1, &lc, B, 1, threads, &err);
    if (!t) {
        fprintf(stderr, "penalty: %s\n", err.msg);
        exit(1);
    }
    omp_set_num_threads(threads);
    bench_step c = {.t = t, .x = x, .rows = B};
    double us = time_us(bench_step_run, &c);
    cae_task_free(t);
    cae_params_free(p);
    return us;
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) {
            samples = 3;
            min_time = 0.01;
        } else {
            fprintf(stderr, "penalty: unknown option '%s' (usage: penalty [--quick])\n", argv[i]);
            return 2;
        }
    }
    cae_params *p = cae_params_new();
    cae_layer_config lc;
    cae_layer_config_default(&lc, CAE_MODEL_CAE, 784, 1000);
    cae_rng r;
    cae_rng_seed(&r, 1, 0);
    cae_error err;
    if (cae_layer_params(p, 1, &lc, 1, &err)) {
        fprintf(stderr, "penalty: %s\n", err.msg);
        return 1;
    }
    cae_real *x = cae_alloc_reals((size_t)100 * 784);
    for (int i = 0; i < 100 * 784; i++) x[i] = (cae_real)cae_rng_uniform(&r);
    printf("# cae bench/penalty: 784 -> 1000, sigmoid, W 784x1000; median of %d samples, "
           "microseconds; %s precision\n",
           samples, sizeof(cae_real) == 4 ? "single" : "double");
    printf("%5s %4s | %9s %9s %6s | %9s %9s %9s | %8s\n", "B", "thr", "pen.fused", "pen.comp",
           "x", "step.fus", "step.comp", "step.ae", "share");
    const int64_t batches[] = {1, 20, 100};
    for (int th = 1; th <= 2; th++)
        for (int bi = 0; bi < 3; bi++) {
            const int64_t B = batches[bi];
            double pf = penalty_time(p, B, 0, th), pc = penalty_time(p, B, 1, th);
            double sf = step_time(B, 0.1, 0, th, x), sc = step_time(B, 0.1, 1, th, x);
            double sa = step_time(B, 0, 0, th, x);
            printf("%5lld %4d | %9.1f %9.1f %6.2f | %9.1f %9.1f %9.1f | %7.1f%%\n", (long long)B,
                   th, pf, pc, pc / pf, sf, sc, sa, 100 * (sf - sa) / sf);
            fflush(stdout);
        }
    cae_free(x);
    cae_params_free(p);
    return 0;
}
