/* bench/ownership — what a weight matrix costs when two threads split it
 * differently in consecutive passes (lib/ops/gemm.c, cae_gemm_owner_split).
 *
 * One iteration is a write pass over a 784 x 1000 float matrix (3 MB, as W
 * in a training step's update: w = 0.999 w + 1e-6) split by rows between
 * the threads, then a read pass (a sum, as a product reading W) split
 *   rows     by the same rows: each thread reads what it wrote;
 *   columns  by columns: half of what each thread reads the other wrote,
 *            as x W read W before the split was aligned;
 * and the same two passes on one thread. Median of 9 samples of 200
 * iterations, microseconds per iteration (write + read). The read pass is
 * one running sum per thread, so its time is its additions' latency more
 * than W's traffic; the last lines time the write pass alone (an update's
 * traffic: W read and written in place) on 1 and 2 threads.
 *
 *   ownership [--rows R] [--cols C] */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

enum { SAMPLES = 9, ITERS = 200 };

static int64_t R = 784, C = 1000;
static volatile double kept;

/* One write pass by row halves, one read pass by row or column halves
 * (read_cols < 0: no read pass). */
static double iterate(float *w, int threads, int read_cols)
{
    double total = 0;
#pragma omp parallel num_threads(threads) reduction(+ : total)
    {
        const int t = omp_get_thread_num(), nt = omp_get_num_threads();
        const int64_t r0 = R * t / nt, r1 = R * (t + 1) / nt;
        const int64_t c0 = C * t / nt, c1 = C * (t + 1) / nt;
        for (int64_t r = r0; r < r1; r++) {
            float *row = w + r * C;
#pragma omp simd
            for (int64_t c = 0; c < C; c++) row[c] = 0.999f * row[c] + 1e-6f;
        }
#pragma omp barrier
        float s = 0;
        for (int64_t r = read_cols ? 0 : r0; read_cols >= 0 && r < (read_cols ? R : r1); r++) {
            const float *row = w + r * C;
            const int64_t a = read_cols ? c0 : 0, b = read_cols ? c1 : C;
#pragma omp simd reduction(+ : s)
            for (int64_t c = a; c < b; c++) s += row[c];
        }
        total += s;
#pragma omp barrier
    }
    return total;
}

static double measure(float *w, int threads, int read_cols, double *sink)
{
    double us[SAMPLES];
    for (int i = 0; i < 20; i++) *sink += iterate(w, threads, read_cols); /* warm-up */
    for (int s = 0; s < SAMPLES; s++) {
        const double t0 = bench_now();
        for (int i = 0; i < ITERS; i++) *sink += iterate(w, threads, read_cols);
        us[s] = (bench_now() - t0) / ITERS * 1e6;
    }
    return bench_median(us, SAMPLES);
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--rows") && i + 1 < argc) R = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--cols") && i + 1 < argc) C = atoll(argv[++i]);
        else {
            fprintf(stderr, "ownership: unknown option '%s'\n", argv[i]);
            return 2;
        }
    }
    if (R < 2 || C < 2 || R * C > ((int64_t)1 << 28)) {
        fprintf(stderr, "ownership: --rows and --cols must be >= 2 (and R x C <= 2^28)\n");
        return 2;
    }
    /* 64-byte aligned, as the library's tensors are (cae_alloc_reals): with
     * malloc's 16-byte alignment every vector of a 4000-byte row straddles
     * two cache lines. */
    float *w = aligned_alloc(64, ((size_t)(R * C) * sizeof *w + 63) / 64 * 64);
    if (!w) {
        fprintf(stderr, "ownership: out of memory for a %lld x %lld matrix\n", (long long)R,
                (long long)C);
        return 1;
    }
    for (int64_t i = 0; i < R * C; i++) w[i] = (float)(i % 1000) * 1e-3f;
    double sink = 0;
    printf("# cae bench/ownership: %lld x %lld floats (%.1f MB); a write pass split by rows, then a "
           "read pass; median of %d samples of %d iterations, microseconds per iteration\n",
           (long long)R, (long long)C, (double)(R * C) * 4 / 1e6, SAMPLES, ITERS);
    const double one = measure(w, 1, 0, &sink);
    const double same = measure(w, 2, 0, &sink);
    const double cross = measure(w, 2, 1, &sink);
    printf("1 thread                          %8.1f\n", one);
    printf("2 threads, read split by rows     %8.1f\n", same);
    printf("2 threads, read split by columns  %8.1f   (%.2fx the rows split)\n", cross,
           cross / same);
    const double w1 = measure(w, 1, -1, &sink), w2 = measure(w, 2, -1, &sink);
    printf("write pass alone, 1 thread        %8.1f   (%.1f GB/s read + written)\n", w1,
           2 * (double)(R * C) * 4 / 1e3 / w1);
    printf("write pass alone, 2 threads       %8.1f   (%.1f GB/s)\n", w2,
           2 * (double)(R * C) * 4 / 1e3 / w2);
    free(w);
    kept = sink; /* the sums are used: the read passes are not optimized away */
    return 0;
}
