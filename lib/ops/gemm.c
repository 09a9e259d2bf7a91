/* Row-major GEMM over libxsmm JIT microkernels, tiled over the output.
 *
 * libxsmm is column-major. A row-major C (M x N) is the column-major matrix
 * C^T (N x M), and C^T = B^T A^T; so every kernel call passes our B as
 * libxsmm's first operand and our A as its second. Our trans_a becomes
 * libxsmm's TRANS_B flag (supported by 1.17) for narrow products; otherwise
 * A is transposed into scratch. Our trans_b would be libxsmm's unsupported
 * TRANS_A, so B is transposed into scratch, or the product is swapped.
 *
 * Per tile (rows i0.., cols j0..): libxsmm m = tile cols, n = tile rows,
 * k = K; a = B + j0 (ld ldb), b = A + i0*lda (or A + i0 with TRANS_B),
 * c = C + i0*ldc + j0. */
#include <string.h>

#include <libxsmm.h>
#include <omp.h>

#include "cae/gemm.h"
#include "shared.h"

#ifdef CAE_REAL_DOUBLE
typedef libxsmm_dmmfunction kern_fn;
#define DISPATCH libxsmm_dmmdispatch
#else
typedef libxsmm_smmfunction kern_fn;
#define DISPATCH libxsmm_smmdispatch
#endif

/* Output tiles, measured on 2 threads with the configurations interleaved
 * (bench noise here is +-5%): for a wide C (N >= 512: x W, dz W and the
 * weight gradients, N = 1000) 32 x 48 ran 1-3% faster than 24 x 64 and 5%
 * faster than 32 x 64; for the swapped h W^T (784 x B, K = 1000) 24 x 64
 * ran 10% faster than 32 x 48. */
enum { WIDE = 512, NARROW = 16, MAX_SCHED_THREADS = 32 };

/* The row stride of a scratch copy with x columns: a multiple of 16, moved
 * off multiples of 512 bytes, where rows alias in the caches. */
static int64_t padded_ld(int64_t x)
{
    if (x < 32) return x;
    int64_t ld = (x + 15) / 16 * 16;
    if (ld * (int64_t)sizeof(cae_real) % 512 == 0) ld += 16;
    return ld;
}

static void *dispatch(const cae_gemm *p, int64_t rows, int64_t cols)
{
    const libxsmm_blasint m = (libxsmm_blasint)cols, n = (libxsmm_blasint)rows,
                          k = (libxsmm_blasint)p->k;
    const libxsmm_blasint lda = (libxsmm_blasint)p->ldb, ldb = (libxsmm_blasint)p->lda,
                          ldc = (libxsmm_blasint)p->ldc;
    const cae_real alpha = 1, beta = p->accumulate ? 1 : 0;
    const int flags = p->trans_a ? LIBXSMM_GEMM_FLAG_TRANS_B : LIBXSMM_GEMM_FLAG_NONE;
    const int prefetch = LIBXSMM_GEMM_PREFETCH_NONE;
    kern_fn f = DISPATCH(m, n, k, &lda, &ldb, &ldc, &alpha, &beta, &flags, &prefetch);
    return (void *)f;
}

/* The heaviest thread's share of the m x n output (in elements) when
 * `threads` threads split the tiles with a static schedule (contiguous
 * chunks, the first ntiles % threads one tile longer), tiles taken column
 * tile by column tile (col_outer) or row tile by row tile. */
static int64_t max_share(const cae_gemm *p, int col_outer, int threads)
{
    const int64_t tr = (p->m + p->mb - 1) / p->mb, tc = (p->n + p->nb - 1) / p->nb;
    const int64_t nt = tr * tc, q = nt / threads, r = nt % threads;
    int64_t worst = 0, t = 0;
    for (int th = 0; th < threads; th++) {
        const int64_t len = q + (th < r);
        int64_t load = 0;
        for (int64_t e = t + len; t < e; t++) {
            const int64_t ti = col_outer ? t % tr : t / tc, tj = col_outer ? t / tr : t % tc;
            const int64_t rows = ti == tr - 1 ? p->m - ti * p->mb : p->mb;
            const int64_t cols = tj == tc - 1 ? p->n - tj * p->nb : p->nb;
            load += rows * cols;
        }
        if (load > worst) worst = load;
    }
    return worst;
}

/* The kernels for C (m x n, ld ldc) = op(A) B with A's rows ld lda (or A
 * read transposed, k x m, with kern_trans_a) and B's rows ld ldb. */
static int plan_direct(cae_gemm *p, int64_t m, int64_t n, int64_t k, int kern_trans_a,
                       int64_t lda, int64_t ldb, int64_t ldc, int accumulate)
{
    p->m = m;
    p->n = n;
    p->k = k;
    p->trans_a = !!kern_trans_a;
    p->accumulate = !!accumulate;
    p->lda = lda;
    p->ldb = ldb;
    p->ldc = ldc;
    const int64_t tile_rows = n >= WIDE ? 32 : 24, tile_cols = n >= WIDE ? 48 : 64;
    p->mb = m < tile_rows ? m : tile_rows;
    p->nb = n < tile_cols ? n : tile_cols;
    const int64_t mr = m % p->mb, nr = n % p->nb;
    p->kern[0][0] = dispatch(p, p->mb, p->nb);
    if (!p->kern[0][0]) return -1;
    if (nr && !(p->kern[0][1] = dispatch(p, p->mb, nr))) return -1;
    if (mr && !(p->kern[1][0] = dispatch(p, mr, p->nb))) return -1;
    if (mr && nr && !(p->kern[1][1] = dispatch(p, mr, nr))) return -1;
    /* Column tiles outermost keep each thread's slice of B (the weights,
     * usually) hot in its cache; rows outermost when that balances the
     * threads better (a 784 x 100 output has one full and one partial
     * column tile). */
    p->col_outer_mask = 0;
    for (int th = 1; th < MAX_SCHED_THREADS; th++)
        if (max_share(p, 1, th) <= max_share(p, 0, th)) p->col_outer_mask |= 1u << th;
    return 0;
}

/* Scratch of each strategy for C (m x n) = op(A) op(B), inner size k. */
static size_t swap_scratch(int64_t m, int64_t n, int64_t k, int trans_a)
{
    const int64_t ldt = padded_ld(m);
    return (size_t)(n * ldt) + (trans_a ? 0 : (size_t)(k * ldt));
}

static int copies_a(int64_t n, int trans_a) { return trans_a && n >= NARROW; }

static size_t direct_scratch(int64_t m, int64_t n, int64_t k, int trans_a, int trans_b)
{
    return (trans_b ? (size_t)(k * padded_ld(n)) : 0) +
           (copies_a(n, trans_a) ? (size_t)(m * padded_ld(k)) : 0);
}

/* With trans_b, B (n x k) must be transposed for the kernels. Swapping
 * instead transposes op(A) (m x k, unless already stored k x m) and C
 * (m x n): pick whichever moves fewer elements. */
static int swaps(int64_t m, int64_t n, int64_t k, int trans_a, int trans_b)
{
    return trans_b && (trans_a ? 0 : m * k) + m * n < k * n;
}

size_t cae_gemm_scratch_bound(int64_t max_m, int64_t n, int64_t k, int trans_a, int trans_b)
{
    const size_t d = direct_scratch(max_m, n, k, trans_a, trans_b);
    const size_t s = trans_b ? swap_scratch(max_m, n, k, trans_a) : 0;
    return d > s ? d : s;
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
    if (swaps(m, n, k, trans_a, trans_b)) {
        p->swap = 1;
        p->a_trans_in_swap = !trans_a;
        /* C^T (n x m) = B (n x k, as stored) op(A)^T (k x m). op(A)^T is A
         * itself when trans_a (A stored k x m), else A^T transposed into
         * scratch. C^T and A^T rows are ld padded_ld(m). */
        const int64_t ldt = padded_ld(m);
        if (plan_direct(p, n, m, k, 0, k, trans_a ? m : ldt, ldt, 0)) return -1;
        p->scratch_reals = swap_scratch(m, n, k, trans_a);
        return 0;
    }
    p->trans_b = !!trans_b;
    p->a_copy = copies_a(n, trans_a);
    const int64_t lda = p->a_copy ? padded_ld(k) : trans_a ? m : k;
    const int64_t ldb = trans_b ? padded_ld(n) : n;
    if (plan_direct(p, m, n, k, trans_a && !p->a_copy, lda, ldb, n, accumulate)) return -1;
    p->scratch_reals = direct_scratch(m, n, k, trans_a, trans_b);
    return 0;
}

#if defined(__AVX512F__) && !defined(CAE_REAL_DOUBLE)
#include <immintrin.h>
#define TBLOCK 16
/* One 16 x 16 block of floats: out = in^T (or += with add), in registers.
 * Pairs of rows are interleaved (unpack), then groups of four (shuffle
 * within 128-bit lanes), then the lanes themselves are gathered
 * (shuffle_f32x4): output row c takes lane c % 4 ... of each. */
static inline void transpose_block(cae_real *out, int64_t ldo, const cae_real *in, int64_t ldi,
                                   int add, const cae_real *bias)
{
    __m512 r[16], t[16], u[16];
    for (int i = 0; i < 16; i++) r[i] = _mm512_loadu_ps(in + i * ldi);
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);     /* per lane: a0 b0 a1 b1 */
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]); /*           a2 b2 a3 b3 */
    }
    for (int i = 0; i < 16; i += 4) { /* u[i + s], lane L: column 4L + s of rows i..i+3 */
        u[i] = _mm512_shuffle_ps(t[i], t[i + 2], 0x44);
        u[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], 0xEE);
        u[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        u[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
    }
    for (int s = 0; s < 4; s++) {
        const __m512 v = _mm512_shuffle_f32x4(u[s], u[4 + s], 0x88);  /* lanes 0, 2 */
        const __m512 v2 = _mm512_shuffle_f32x4(u[s], u[4 + s], 0xDD); /* lanes 1, 3 */
        const __m512 w = _mm512_shuffle_f32x4(u[8 + s], u[12 + s], 0x88);
        const __m512 w2 = _mm512_shuffle_f32x4(u[8 + s], u[12 + s], 0xDD);
        __m512 c[4] = {_mm512_shuffle_f32x4(v, w, 0x88), _mm512_shuffle_f32x4(v2, w2, 0x88),
                       _mm512_shuffle_f32x4(v, w, 0xDD), _mm512_shuffle_f32x4(v2, w2, 0xDD)};
        for (int q = 0; q < 4; q++) { /* c[q] is input column 4q + s */
            cae_real *o = out + (4 * q + s) * ldo;
            if (add) c[q] = _mm512_add_ps(_mm512_loadu_ps(o), c[q]);
            else if (bias) c[q] = _mm512_add_ps(c[q], _mm512_loadu_ps(bias));
            _mm512_storeu_ps(o, c[q]);
        }
    }
}
#else
#define TBLOCK 32
#endif

/* out (cols x rows, row stride ldo) = in (rows x cols, row stride ldi)^T, or
 * += with add, or with bias (rows values, NULL for none) added to every row
 * of out; in TBLOCK x TBLOCK blocks (in registers with AVX-512: 2-3x
 * faster than the scalar loop, which GCC does not vectorize; at B = 256 the
 * transposes around h W^T and the weight gradients took ~100 us a step on
 * 2 threads). Threads split the column blocks of in (rows of out); no
 * collapse(2): that made the loop 7x slower on 2 threads (measured). */
static void transpose_blocked(cae_real *out, int64_t ldo, const cae_real *in, int64_t ldi,
                              int64_t rows, int64_t cols, int add, const cae_real *bias,
                              int threads)
{
    enum { T = TBLOCK };
    const int64_t tr = (rows + T - 1) / T, tc = (cols + T - 1) / T;
#pragma omp parallel for schedule(static) num_threads(threads) if (rows * cols > 65536)
    for (int64_t bj = 0; bj < tc; bj++)
        for (int64_t bi = 0; bi < tr; bi++) {
            const int64_t i1 = (bi + 1) * T < rows ? (bi + 1) * T : rows;
            const int64_t j1 = (bj + 1) * T < cols ? (bj + 1) * T : cols;
#if TBLOCK == 16
            if (i1 - bi * T == T && j1 - bj * T == T) {
                transpose_block(out + bj * T * ldo + bi * T, ldo, in + bi * T * ldi + bj * T, ldi,
                                add, bias ? bias + bi * T : NULL);
                continue;
            }
#endif
            for (int64_t j = bj * T; j < j1; j++)
                for (int64_t i = bi * T; i < i1; i++)
                    out[j * ldo + i] = add    ? out[j * ldo + i] + in[i * ldi + j]
                                       : bias ? in[i * ldi + j] + bias[i]
                                              : in[i * ldi + j];
        }
}

void cae_transpose(cae_real *out, const cae_real *in, int64_t rows, int64_t cols, int threads)
{
    transpose_blocked(out, rows, in, cols, rows, cols, 0, NULL,
                      threads > 0 ? threads : omp_get_max_threads());
}

/* C (m x 1) (+)= A (m x k) b (k): one dot product per row. libxsmm
 * vectorizes along its m, which is 1 here, so we do it ourselves: this is
 * the batch-of-one case (h W^T at B = 1), bound by reading A once. With
 * n = 1 every plan has b and C dense (ld 1: padded_ld leaves 1 alone). */
static void run_dots(const cae_gemm *p, const cae_real *a, const cae_real *b, cae_real *c,
                     const cae_real *bias, int threads)
{
    const int64_t m = p->m, k = p->k, lda = p->lda;
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1 && m * k >= 65536)
    for (int64_t i = 0; i < m; i++) {
        const cae_real *ar = a + i * lda;
        cae_real s = 0;
#pragma omp simd reduction(+ : s)
        for (int64_t q = 0; q < k; q++) s += ar[q] * b[q];
        c[i] = p->accumulate ? c[i] + s : s;
        if (bias) c[i] += bias[0];
    }
}

/* bias (n values, or NULL): added to each row of a tile right after its
 * kernel wrote it, while it is in L1 (plans without accumulate). */
static void run_direct(const cae_gemm *p, const cae_real *a, const cae_real *b, cae_real *c,
                       const cae_real *bias, int threads)
{
    if (p->n == 1 && !p->trans_a) {
        CAE_ASSERT(p->ldb == 1 && p->ldc == 1, "gemm: a batch-of-one plan with strided b or C");
        run_dots(p, a, b, c, bias, threads);
        return;
    }
    const int64_t m = p->m, n = p->n, k = p->k, mb = p->mb, nb = p->nb;
    const int64_t tiles_r = (m + mb - 1) / mb, tiles_c = (n + nb - 1) / nb;
    const int64_t ntiles = tiles_r * tiles_c;
    const int parallel = threads > 1 && ntiles > 1 && m * n * k >= 32768;
    const int col_outer = threads >= MAX_SCHED_THREADS || ((p->col_outer_mask >> threads) & 1);
#pragma omp parallel for schedule(static) num_threads(threads) if (parallel)
    for (int64_t t = 0; t < ntiles; t++) {
        const int64_t tj = col_outer ? t / tiles_r : t % tiles_c;
        const int64_t ti = col_outer ? t % tiles_r : t / tiles_c;
        const int64_t i0 = ti * mb, j0 = tj * nb;
        const int pr = i0 + mb > m, pc = j0 + nb > n;
        kern_fn f = (kern_fn)p->kern[pr][pc];
        const cae_real *lb = p->trans_a ? a + i0 : a + i0 * p->lda;
        cae_real *ct = c + i0 * p->ldc + j0;
        f(b + j0, lb, ct);
        if (bias) {
            const int64_t rows = pr ? m - i0 : mb, cols = pc ? n - j0 : nb;
            for (int64_t r = 0; r < rows; r++) {
                cae_real *cr = ct + r * p->ldc;
#pragma omp simd
                for (int64_t q = 0; q < cols; q++) cr[q] += bias[j0 + q];
            }
        }
    }
}

void cae_gemm_run(const cae_gemm *p, const cae_real *a, const cae_real *b, cae_real *c,
                  cae_real *scratch, int threads)
{
    cae_gemm_run_bias(p, a, b, c, NULL, scratch, threads);
}

void cae_gemm_run_bias(const cae_gemm *p, const cae_real *a, const cae_real *b, cae_real *c,
                       const cae_real *bias, cae_real *scratch, int threads)
{
    CAE_ASSERT(!bias || !p->out_accumulate, "gemm: a bias with an accumulating plan");
    if (threads <= 0) threads = omp_get_max_threads();
    if (p->swap) { /* C^T = B op(A)^T into scratch, then C (+)= (C^T)^T */
        cae_real *ct = scratch, *at = scratch + p->m * p->ldc;
        const cae_real *second = a;
        if (p->a_trans_in_swap) { /* A is out_m x k: its transpose, k x out_m */
            transpose_blocked(at, p->ldb, a, p->k, p->out_m, p->k, 0, NULL, threads);
            second = at;
        }
        run_direct(p, b, second, ct, NULL, threads);
        transpose_blocked(c, p->out_n, ct, p->ldc, p->out_n, p->out_m, p->out_accumulate, bias,
                          threads);
        return;
    }
    cae_real *s = scratch;
    if (p->trans_b) { /* b is N x K: make the K x N copy the kernels read */
        transpose_blocked(s, p->ldb, b, p->k, p->n, p->k, 0, NULL, threads);
        b = s;
        s += p->k * p->ldb;
    }
    if (p->a_copy) { /* a is K x M: make the M x K copy */
        transpose_blocked(s, p->lda, a, p->m, p->k, p->m, 0, NULL, threads);
        a = s;
    }
    run_direct(p, a, b, c, bias, threads);
}
