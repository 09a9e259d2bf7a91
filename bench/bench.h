/* Helpers shared by the benchmark programs in bench/ (header-only: each
 * bench program is built on its own from one .c file). */
#ifndef CAE_BENCH_H
#define CAE_BENCH_H

#include <stdlib.h>
#include <time.h>

#include "cae/task.h"

/* Seconds on a monotonic clock. */
static inline double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static inline int bench_cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The median of v[0..n-1] (sorts v). */
static inline double bench_median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, bench_cmp_double);
    return v[n / 2];
}

/* Median seconds per call of f(ctx) over `samples` (<= 64) timed samples
 * after 3 warm-up calls; a sample repeats the call until min_time seconds
 * have passed. */
static inline double bench_time_call(void (*f)(void *), void *ctx, int samples, double min_time)
{
    double t[64];
    if (samples > 64) samples = 64;
    for (int w = 0; w < 3; w++) f(ctx);
    for (int r = 0; r < samples; r++) {
        long reps = 0;
        double t0 = bench_now(), el;
        do {
            f(ctx);
            reps++;
            el = bench_now() - t0;
        } while (el < min_time);
        t[r] = el / (double)reps;
    }
    return bench_median(t, samples);
}

/* One training step as the benchmarks time it: forward, backward and plain
 * SGD (rate 1e-4) over the task's tensors, in one pass (cae_task_step_sgd:
 * each tensor updated by the node that finishes its gradient), as cae_train
 * runs it. ctx is a bench_step (for timing loops that take a void *
 * callback); set sgd.continues = 0 before its first step. */
typedef struct bench_step {
    cae_task *t;
    const cae_real *x;
    int64_t rows;
    const int32_t *y; /* labels (supervised tasks), else NULL */
    cae_sgd sgd;
} bench_step;

static inline void bench_step_run(void *ctx)
{
    bench_step *c = ctx;
    double obj;
    if (c->sgd.lr <= 0) c->sgd.lr = 1e-4;
    cae_task_step_sgd(c->t, c->x, c->y, c->rows, &c->sgd, &obj);
    c->sgd.continues = 1;
}

#endif
