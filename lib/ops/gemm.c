/* Row-major GEMM over libxsmm JIT microkernels, tiled over the output.
 *
 * libxsmm is column-major. A row-major C (M x N) is the column-major matrix
 * C^T (N x M), and C^T = B^T A^T; so every kernel call passes our B as
 * libxsmm's first operand and our A as its second. Our trans_a becomes
 * libxsmm's TRANS_B flag (supported by 1.17); our trans_b would be its
 * unsupported TRANS_A, so B is transposed into scratch instead.
 *
 * Per tile (rows i0.., cols j0..): libxsmm m = tile cols, n = tile rows,
 * k = K; a = B + j0 (ld N), b = A + i0*K (ld K) or A + i0 (ld M, TRANS_B),
 * c = C + i0*N + j0 (ld N). */
#include <string.h>

#include <libxsmm.h>
#include <omp.h>

#include "cae/gemm.h"
#include "graph/internal.h"

#ifdef CAE_REAL_DOUBLE
typedef libxsmm_dmmfunction kern_fn;
#define DISPATCH libxsmm_dmmdispatch
#else
typedef libxsmm_smmfunction kern_fn;
#define DISPATCH libxsmm_smmdispatch
#endif

enum { TILE_ROWS = 32, TILE_COLS = 64 };

static void *dispatch(const cae_gemm *p, int64_t rows, int64_t cols)
{
    const libxsmm_blasint m = (libxsmm_blasint)cols, n = (libxsmm_blasint)rows,
                          k = (libxsmm_blasint)p->k;
    const libxsmm_blasint lda = (libxsmm_blasint)p->n;
    const libxsmm_blasint ldb = (libxsmm_blasint)(p->trans_a ? p->m : p->k);
    const libxsmm_blasint ldc = (libxsmm_blasint)p->n;
    const cae_real alpha = 1, beta = p->accumulate ? 1 : 0;
    const int flags = p->trans_a ? LIBXSMM_GEMM_FLAG_TRANS_B : LIBXSMM_GEMM_FLAG_NONE;
    const int prefetch = LIBXSMM_GEMM_PREFETCH_NONE;
    kern_fn f = DISPATCH(m, n, k, &lda, &ldb, &ldc, &alpha, &beta, &flags, &prefetch);
    return (void *)f;
}

/* The kernels for C (m x n) = op(A) op(B) without the swap. */
static int plan_direct(cae_gemm *p, int64_t m, int64_t n, int64_t k, int trans_a, int trans_b,
                       int accumulate)
{
    p->m = m;
    p->n = n;
    p->k = k;
    p->trans_a = !!trans_a;
    p->trans_b = !!trans_b;
    p->accumulate = !!accumulate;
    p->mb = m < TILE_ROWS ? m : TILE_ROWS;
    p->nb = n < TILE_COLS ? n : TILE_COLS;
    const int64_t mr = m % p->mb, nr = n % p->nb;
    p->kern[0][0] = dispatch(p, p->mb, p->nb);
    if (!p->kern[0][0]) return -1;
    if (nr && !(p->kern[0][1] = dispatch(p, p->mb, nr))) return -1;
    if (mr && !(p->kern[1][0] = dispatch(p, mr, p->nb))) return -1;
    if (mr && nr && !(p->kern[1][1] = dispatch(p, mr, nr))) return -1;
    return 0;
}

int cae_gemm_plan(cae_gemm *p, int64_t m, int64_t n, int64_t k, int trans_a, int trans_b,
                  int accumulate)
{
    memset(p, 0, sizeof *p);
    if (m <= 0 || n <= 0 || k <= 0 || m > INT32_MAX || n > INT32_MAX || k > INT32_MAX)
        return -1;
    p->out_m = m;
    p->out_n = n;
    p->out_accumulate = !!accumulate;
    /* With trans_b, B (n x k) must be transposed for the kernels. Swapping
     * instead transposes op(A) (m x k, unless already stored k x m) and C
     * (m x n): pick whichever moves fewer elements. */
    const int64_t direct_cost = k * n, swap_cost = (trans_a ? 0 : m * k) + m * n;
    if (trans_b && swap_cost < direct_cost) {
        p->swap = 1;
        p->a_trans_in_swap = !trans_a;
        /* C^T (n x m) = B (n x k, as stored) op(A)^T (k x m). op(A)^T is A
         * itself when trans_a (A stored k x m), else A^T: the second operand
         * then has trans_b (A stored m x k), transposed into scratch. */
        if (plan_direct(p, n, m, k, 0, 0, 0)) return -1;
        p->scratch_reals = (size_t)(n * m) + (trans_a ? 0 : (size_t)(k * m));
        return 0;
    }
    if (plan_direct(p, m, n, k, trans_a, trans_b, accumulate)) return -1;
    p->scratch_reals = p->trans_b ? (size_t)(k * n) : 0;
    return 0;
}

/* out (cols x rows) = in (rows x cols)^T, or += with add: 32 x 32 blocks.
 * Threads split the column blocks of in (rows of out); no collapse(2):
 * that made the loop 7x slower on 2 threads (measured). */
static void transpose_blocked(cae_real *out, const cae_real *in, int64_t rows, int64_t cols,
                              int add, int threads)
{
    enum { T = 32 };
    const int64_t tr = (rows + T - 1) / T, tc = (cols + T - 1) / T;
#pragma omp parallel for schedule(static) num_threads(threads) if (rows * cols > 65536)
    for (int64_t bj = 0; bj < tc; bj++)
        for (int64_t bi = 0; bi < tr; bi++) {
            const int64_t i1 = (bi + 1) * T < rows ? (bi + 1) * T : rows;
            const int64_t j1 = (bj + 1) * T < cols ? (bj + 1) * T : cols;
            for (int64_t j = bj * T; j < j1; j++)
                for (int64_t i = bi * T; i < i1; i++)
                    out[j * rows + i] = add ? out[j * rows + i] + in[i * cols + j] : in[i * cols + j];
        }
}

void cae_transpose(cae_real *out, const cae_real *in, int64_t rows, int64_t cols, int threads)
{
    transpose_blocked(out, in, rows, cols, 0, threads > 0 ? threads : omp_get_max_threads());
}


/* C (m x 1) (+)= A (m x k) b (k): one dot product per row. libxsmm
 * vectorizes along its m, which is 1 here, so we do it ourselves: this is
 * the batch-of-one case (h W^T at B = 1), bound by reading A once. */
static void run_dots(const cae_gemm *p, const cae_real *a, const cae_real *b, cae_real *c,
                     int threads)
{
    const int64_t m = p->m, k = p->k;
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1 && m * k >= 65536)
    for (int64_t i = 0; i < m; i++) {
        const cae_real *ar = a + i * k;
        cae_real s = 0;
#pragma omp simd reduction(+ : s)
        for (int64_t q = 0; q < k; q++) s += ar[q] * b[q];
        c[i] = p->accumulate ? c[i] + s : s;
    }
}

static void run_direct(const cae_gemm *p, const cae_real *a, const cae_real *b, cae_real *c,
                       int threads)
{
    if (p->n == 1 && !p->trans_a) {
        run_dots(p, a, b, c, threads);
        return;
    }
    const int64_t m = p->m, n = p->n, k = p->k, mb = p->mb, nb = p->nb;
    const int64_t tiles_r = (m + mb - 1) / mb, tiles_c = (n + nb - 1) / nb;
    const int64_t ntiles = tiles_r * tiles_c;
    const int parallel = threads > 1 && ntiles > 1 && m * n * k >= 32768;
    /* Column tiles outermost: with a static schedule each thread keeps its
     * own slice of B's columns (the weights) hot in cache. */
#pragma omp parallel for schedule(static) num_threads(threads) if (parallel)
    for (int64_t t = 0; t < ntiles; t++) {
        const int64_t tj = t / tiles_r, ti = t % tiles_r;
        const int64_t i0 = ti * mb, j0 = tj * nb;
        const int pr = i0 + mb > m, pc = j0 + nb > n;
        kern_fn f = (kern_fn)p->kern[pr][pc];
        const cae_real *lb = p->trans_a ? a + i0 : a + i0 * k;
        f(b + j0, lb, c + i0 * n + j0);
    }
}

void cae_gemm_run(const cae_gemm *p, const cae_real *a, const cae_real *b, cae_real *c,
                  cae_real *scratch, int threads)
{
    if (threads <= 0) threads = omp_get_max_threads();
    if (p->swap) { /* C^T = B op(A)^T into scratch, then C (+)= (C^T)^T */
        cae_real *ct = scratch, *at = scratch + p->m * p->n;
        const cae_real *second = a;
        if (p->a_trans_in_swap) { /* A is out_m x k: its transpose, k x out_m */
            cae_transpose(at, a, p->out_m, p->k, threads);
            second = at;
        }
        run_direct(p, b, second, ct, threads);
        transpose_blocked(c, ct, p->out_n, p->out_m, p->out_accumulate, threads);
        return;
    }
    if (p->trans_b) { /* b is N x K: make the K x N copy the kernels read */
        cae_transpose(scratch, b, p->n, p->k, threads);
        b = scratch;
    }
    run_direct(p, a, b, c, threads);
}
