/* bench/matmul — GFLOP/s of the three products of a CAE step (784 -> 1000)
 * through cae_gemm (libxsmm JIT kernels in our OpenMP tile loop), beside
 * OpenBLAS on the same shapes in the same run.
 *
 *   encoder   B x 784  .  784 x 1000
 *   decoder   B x 1000 . (784 x 1000)^T  (h W^T: B read transposed)
 *   weights   (B x 784)^T . B x 1000     (x^T da: A read transposed)
 * Our transposed operands go through scratch copies (cae/gemm.h); OpenBLAS
 * reads them in place.
 *
 * Each cell is the median of 9 timed samples after a warm-up; a sample
 * repeats the product until at least 20 ms have passed.
 * Usage: matmul [--quick]   (--quick: 3 samples of >= 5 ms) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <omp.h>

#include "bench.h"

#include "cae/gemm.h"
#include "cae/rng.h"

#ifdef CAE_HAVE_OPENBLAS
#include <cblas.h>
void openblas_set_num_threads(int num_threads);
#endif

typedef struct shape {
    const char *name;
    int64_t m, n, k;
    int trans_a, trans_b;
} shape;

static cae_real *scratch; /* for the plans' transposed copies */

static int samples = 9;
static double min_time = 0.02;

typedef void (*run_fn)(const shape *s, const cae_real *a, const cae_real *b, cae_real *c,
                       void *ctx, int threads);

static void run_cae(const shape *s, const cae_real *a, const cae_real *b, cae_real *c, void *ctx,
                    int threads)
{
    cae_gemm_run(ctx, a, b, c, scratch, threads);
}

#ifdef CAE_HAVE_OPENBLAS
static void run_blas(const shape *s, const cae_real *a, const cae_real *b, cae_real *c, void *ctx,
                     int threads)
{
    const int lda = s->trans_a ? (int)s->m : (int)s->k;
#ifdef CAE_REAL_DOUBLE
    cblas_dgemm(
#else
    cblas_sgemm(
#endif
        CblasRowMajor, s->trans_a ? CblasTrans : CblasNoTrans,
        s->trans_b ? CblasTrans : CblasNoTrans, (int)s->m, (int)s->n, (int)s->k, 1, a, lda, b,
        s->trans_b ? (int)s->k : (int)s->n, 0, c, (int)s->n);
}
#endif

typedef struct gemm_call {
    run_fn f;
    const shape *s;
    const cae_real *a, *b;
    cae_real *c;
    void *ctx;
    int threads;
} gemm_call;

static void gemm_call_run(void *v)
{
    const gemm_call *g = v;
    g->f(g->s, g->a, g->b, g->c, g->ctx, g->threads);
}

static double gflops(run_fn f, const shape *s, const cae_real *a, const cae_real *b, cae_real *c,
                     void *ctx, int threads)
{
    gemm_call g = {f, s, a, b, c, ctx, threads};
    const double flop = 2.0 * (double)s->m * (double)s->n * (double)s->k;
    return flop / bench_time_call(gemm_call_run, &g, samples, min_time) * 1e-9;
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) {
            samples = 3;
            min_time = 0.005;
        } else {
            fprintf(stderr, "matmul: unknown option '%s' (usage: matmul [--quick])\n", argv[i]);
            return 2;
        }
    }
    const int batches[] = {1, 10, 20, 100, 256};
    const int dx = 784, dh = 1000;
    cae_real *a = cae_alloc_reals((size_t)256 * dh + (size_t)dx * dh);
    cae_real *b = cae_alloc_reals((size_t)dx * dh + 256 * dh);
    cae_real *c = cae_alloc_reals((size_t)dx * dh);
    /* Scratch for the largest decoder (B = 256) and weights products. */
    const size_t s_dec = cae_gemm_scratch_bound(256, dx, dh, 0, 1),
                 s_wgt = cae_gemm_scratch_bound(dx, dh, 256, 1, 0);
    scratch = cae_alloc_reals(s_dec > s_wgt ? s_dec : s_wgt);
    if (!a || !b || !c || !scratch) {
        fprintf(stderr, "matmul: out of memory\n");
        return 1;
    }
    cae_rng r;
    cae_rng_seed(&r, 1, 0);
    for (size_t i = 0; i < (size_t)256 * dh + (size_t)dx * dh; i++) {
        a[i] = (cae_real)cae_rng_uniform(&r);
        b[i] = (cae_real)cae_rng_uniform(&r);
    }
    printf("# cae bench/matmul: GFLOP/s, median of %d samples; %s precision; max threads %d\n",
           samples, sizeof(cae_real) == 4 ? "single" : "double", omp_get_max_threads());
#ifdef CAE_HAVE_OPENBLAS
    printf("# peer: OpenBLAS %s\n", openblas_get_config());
    printf("%-8s %5s %4s %9s %9s %7s\n", "product", "B", "thr", "cae", "openblas", "ratio");
#else
    printf("# peer: none (OpenBLAS not found at build time)\n");
    printf("%-8s %5s %4s %9s\n", "product", "B", "thr", "cae");
#endif
    /* All of ours first, then all of the peer's: OpenBLAS's pthread workers
     * keep competing for the two cores long after a call (measured here: our
     * 2-thread figures fell 20-100x when timed after OpenBLAS calls). */
    enum { NB = sizeof batches / sizeof batches[0] };
    static double res[2][2][NB][3];
    for (int lib = 0; lib < 2; lib++)
        for (int th = 1; th <= 2; th++) {
#ifdef CAE_HAVE_OPENBLAS
            openblas_set_num_threads(th);
#else
            if (lib == 1) break;
#endif
            for (int bi = 0; bi < NB; bi++) {
                const int B = batches[bi];
                const shape shapes[3] = {{"encoder", B, dh, dx, 0, 0},
                                         {"decoder", B, dx, dh, 0, 1},
                                         {"weights", dx, dh, B, 1, 0}};
                for (int si = 0; si < 3; si++) {
                    const shape *sh = &shapes[si];
                    cae_gemm p;
                    if (cae_gemm_plan(&p, sh->m, sh->n, sh->k, sh->trans_a, sh->trans_b, 0)) {
                        fprintf(stderr, "matmul: no kernel for %s at B=%d\n", sh->name, B);
                        return 1;
                    }
#ifdef CAE_HAVE_OPENBLAS
                    res[lib][th - 1][bi][si] =
                        gflops(lib ? run_blas : run_cae, sh, a, b, c, &p, th);
#else
                    res[lib][th - 1][bi][si] = gflops(run_cae, sh, a, b, c, &p, th);
#endif
                }
            }
        }
    for (int th = 1; th <= 2; th++) {
        static const char *names[3] = {"encoder", "decoder", "weights"};
        for (int bi = 0; bi < NB; bi++)
            for (int si = 0; si < 3; si++) {
#ifdef CAE_HAVE_OPENBLAS
                const double o = res[0][th - 1][bi][si], q = res[1][th - 1][bi][si];
                printf("%-8s %5d %4d %9.1f %9.1f %7.2f\n", names[si], batches[bi], th, o, q,
                       o / q);
#else
                printf("%-8s %5d %4d %9.1f\n", names[si], batches[bi], th,
                       res[0][th - 1][bi][si]);
#endif
            }
        fflush(stdout);
    }
    cae_free(a);
    cae_free(b);
    cae_free(c);
    cae_free(scratch);
    return 0;
}
