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

/* Whether a plan runs as dot products (run_dots): a batch of one. */
static int is_dots(const cae_gemm *p) { return p->n == 1 && !p->trans_a; }

/* The kernel of a rows x cols tile of C with row stride ldc_out, over K =
 * kk, adding to C (beta 1) or not. */
static void *dispatch_k(const cae_gemm *p, int64_t rows, int64_t cols, int64_t ldc_out,
                        int64_t kk, int add)
{
    const libxsmm_blasint m = (libxsmm_blasint)cols, n = (libxsmm_blasint)rows,
                          k = (libxsmm_blasint)kk;
    const libxsmm_blasint lda = (libxsmm_blasint)p->ldb, ldb = (libxsmm_blasint)p->lda,
                          ldc = (libxsmm_blasint)ldc_out;
    const cae_real alpha = 1, beta = add ? 1 : 0;
    const int flags = p->trans_a ? LIBXSMM_GEMM_FLAG_TRANS_B : LIBXSMM_GEMM_FLAG_NONE;
    const int prefetch = LIBXSMM_GEMM_PREFETCH_NONE;
    kern_fn f = DISPATCH(m, n, k, &lda, &ldb, &ldc, &alpha, &beta, &flags, &prefetch);
    return (void *)f;
}

/* The kernel of a rows x cols tile of C with row stride ldc_out. */
static void *dispatch_ldc(const cae_gemm *p, int64_t rows, int64_t cols, int64_t ldc_out)
{
    return dispatch_k(p, rows, cols, ldc_out, p->k, p->accumulate);
}

static void *dispatch(const cae_gemm *p, int64_t rows, int64_t cols)
{
    return dispatch_ldc(p, rows, cols, p->ldc);
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
                       int64_t lda, int64_t ldb, int64_t ldc, int accumulate, int64_t rows,
                       int64_t cols)
{
    p->m = m;
    p->n = n;
    p->k = k;
    p->trans_a = !!kern_trans_a;
    p->accumulate = !!accumulate;
    p->lda = lda;
    p->ldb = ldb;
    p->ldc = ldc;
    const int64_t tile_rows = rows > 0 ? rows : n >= WIDE ? 32 : 24,
                  tile_cols = cols > 0 ? cols : n >= WIDE ? 48 : 64;
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

int cae_gemm_plan_c_scratch(cae_gemm *p, int threads)
{
    /* Swapped plans write C in the transpose back, accumulating ones read
     * it, and the batch-of-one dot products have no tiles: left as they are. */
    if (p->swap || p->accumulate || is_dots(p) || threads < 1) return 0;
    /* The tile's row stride padded off multiples of 512 bytes: a 2 KiB
     * stride (512 columns) made the kernels 1.5x slower (measured). */
    const int64_t mr = p->m % p->mb, nr = p->n % p->nb, ld = padded_ld(p->nb);
    if (!(p->kern_s[0][0] = dispatch_ldc(p, p->mb, p->nb, ld))) return -1;
    if (nr && !(p->kern_s[0][1] = dispatch_ldc(p, p->mb, nr, ld))) return -1;
    if (mr && !(p->kern_s[1][0] = dispatch_ldc(p, mr, p->nb, ld))) return -1;
    if (mr && nr && !(p->kern_s[1][1] = dispatch_ldc(p, mr, nr, ld))) return -1;
    const size_t line = CAE_ALIGN / sizeof(cae_real);
    p->scratch_reals -= p->c_scratch_reals;
    p->c_threads = threads;
    p->c_scratch_reals = (size_t)threads * cae_round_up((size_t)(p->mb * ld), line);
    p->scratch_reals += p->c_scratch_reals;
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
    return cae_gemm_plan_tiles(p, m, n, k, trans_a, trans_b, accumulate, 0, 0);
}

int cae_gemm_plan_tiles(cae_gemm *p, int64_t m, int64_t n, int64_t k, int trans_a, int trans_b,
                        int accumulate, int64_t tile_rows, int64_t tile_cols)
{
    memset(p, 0, sizeof *p);
    if (m <= 0 || n <= 0 || k <= 0 || m > INT32_MAX || n > INT32_MAX || k > INT32_MAX ||
        tile_rows < 0 || tile_cols < 0)
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
        if (plan_direct(p, n, m, k, 0, k, trans_a ? m : ldt, ldt, 0, 0, 0)) return -1;
        p->scratch_reals = swap_scratch(m, n, k, trans_a);
        return 0;
    }
    p->trans_b = !!trans_b;
    p->a_copy = copies_a(n, trans_a);
    const int64_t lda = p->a_copy ? padded_ld(k) : trans_a ? m : k;
    const int64_t ldb = trans_b ? padded_ld(n) : n;
    if (plan_direct(p, m, n, k, trans_a && !p->a_copy, lda, ldb, n, accumulate, tile_rows,
                    tile_cols))
        return -1;
    p->scratch_reals = direct_scratch(m, n, k, trans_a, trans_b);
    return 0;
}

int64_t cae_gemm_owner_split(int64_t rows)
{
    const int64_t tiles = (rows + CAE_GEMM_EPILOGUE_ROWS - 1) / CAE_GEMM_EPILOGUE_ROWS;
    return tiles >= 2 ? tiles / 2 * CAE_GEMM_EPILOGUE_ROWS : 0;
}

int cae_gemm_plan_ksplit(cae_gemm *p, int64_t m, int64_t n, int64_t k, int64_t k0,
                         int accumulate)
{
    if (k0 <= 0 || k0 >= k || cae_gemm_plan_tiles(p, m, n, k, 0, 0, accumulate, 0, 0) ||
        p->swap)
        return -1;
    p->k_split = k0;
    const int64_t mr = p->m % p->mb, nr = p->n % p->nb;
    for (int q = 0; q < 2; q++)
        for (int pr = 0; pr <= (mr > 0); pr++)
            for (int pc = 0; pc <= (nr > 0); pc++)
                if (!(p->kern_k[q][pr][pc] = dispatch_k(p, pr ? mr : p->mb, pc ? nr : p->nb,
                                                        p->ldc, q ? k - k0 : k0,
                                                        q == 0 && accumulate)))
                    return -1;
    p->scratch_reals = (size_t)(m * n); /* block 1's product, row stride n */
    return 0;
}

int cae_gemm_own(cae_gemm *p, int dim, int64_t at)
{
    const int64_t size = dim ? p->n : p->m, tile = dim ? p->nb : p->mb;
    const int dots = is_dots(p); /* one row at a time */
    if (dim < 0 || dim > 1 || at <= 0 || at >= size || p->k_split || (dots && dim) ||
        (!dots && at % tile))
        return -1;
    p->own_at = at;
    p->own_dim = dim;
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
 * 2 threads). A worksharing loop over the column blocks of in (rows of
 * out), orphaned: called inside a run's region, the team splits it;
 * outside any, one thread does it all. No collapse(2): that made the loop
 * 7x slower on 2 threads (measured). nowait: the caller places barriers. */
static void transpose_blocked(cae_real *out, int64_t ldo, const cae_real *in, int64_t ldi,
                              int64_t rows, int64_t cols, int add, const cae_real *bias)
{
    enum { T = TBLOCK };
    const int64_t tr = (rows + T - 1) / T, tc = (cols + T - 1) / T;
#pragma omp for schedule(static) nowait
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

void cae_transpose_tile(cae_real *out, int64_t ldo, const cae_real *in, int64_t ldi,
                        int64_t rows, int64_t cols)
{
    enum { T = TBLOCK };
    for (int64_t i0 = 0; i0 < rows; i0 += T)
        for (int64_t j0 = 0; j0 < cols; j0 += T) {
            const int64_t i1 = i0 + T < rows ? i0 + T : rows, j1 = j0 + T < cols ? j0 + T : cols;
#if TBLOCK == 16
            if (i1 - i0 == T && j1 - j0 == T) {
                transpose_block(out + j0 * ldo + i0, ldo, in + i0 * ldi + j0, ldi, 0, NULL);
                continue;
            }
#endif
            for (int64_t j = j0; j < j1; j++)
                for (int64_t i = i0; i < i1; i++) out[j * ldo + i] = in[i * ldi + j];
        }
}

void cae_transpose(cae_real *out, const cae_real *in, int64_t rows, int64_t cols, int threads)
{
    if (threads <= 0) threads = omp_get_max_threads();
#pragma omp parallel num_threads(threads) if (threads > 1 && rows * cols > 65536)
    transpose_blocked(out, rows, in, cols, rows, cols, 0, NULL);
}

/* One run: the operands, and what the phases of its region do. */
typedef struct run {
    const cae_gemm *p;
    const cae_real *a, *b, *bias;
    cae_real *c, *scratch;
    const cae_gemm_epilogue *e;
    int count; /* stacked: the blocks of A and B along K (0: one, a and b) */
    const cae_real *const *as, *const *bs;
    const int64_t *ks;
    double acc; /* the epilogue's total, added to once by each thread */
} run;

/* C (m x 1) (+)= A (m x k) b (k): one dot product per row. libxsmm
 * vectorizes along its m, which is 1 here, so we do it ourselves: this is
 * the batch-of-one case (h W^T at B = 1), bound by reading A once. With
 * n = 1 every plan has b and C dense (ld 1: padded_ld leaves 1 alone). */
static inline void dot_row(const cae_gemm *p, const cae_real *a, const cae_real *b, cae_real *c,
                           const cae_real *bias, int64_t i)
{
    const int64_t k = p->k;
    const cae_real *ar = a + i * p->lda;
    cae_real s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t q = 0; q < k; q++) s += ar[q] * b[q];
    c[i] = p->accumulate ? c[i] + s : s;
    if (bias) c[i] += bias[0];
}

static void run_dots(const cae_gemm *p, const cae_real *a, const cae_real *b, cae_real *c,
                     const cae_real *bias, int threads)
{
    const int64_t m = p->m;
    if (threads == 2 && p->own_at) { /* cae_gemm_own */
        const int me = omp_get_thread_num();
        for (int64_t i = me ? p->own_at : 0, e = me ? m : p->own_at; i < e; i++)
            dot_row(p, a, b, c, bias, i);
#pragma omp barrier
        return;
    }
#pragma omp for schedule(static)
    for (int64_t i = 0; i < m; i++) dot_row(p, a, b, c, bias, i);
}

/* The tiles of C = op(A) B with the kernels (a, b as the kernels read
 * them), each followed by the bias and the epilogue while it is in L1.
 * bias (n values, or NULL): plans without accumulate. */
static inline void run_tile(const cae_gemm *p, const cae_real *a, const cae_real *b,
                            cae_real *c, const cae_real *bias, const cae_gemm_epilogue *e,
                            double *acc, cae_real *mine, int64_t ti, int64_t tj)
{
    const int64_t m = p->m, n = p->n, mb = p->mb, nb = p->nb;
    const int64_t i0 = ti * mb, j0 = tj * nb;
    const int pr = i0 + mb > m, pc = j0 + nb > n;
    kern_fn f = (kern_fn)(mine ? p->kern_s[pr][pc] : p->kern[pr][pc]);
    const cae_real *lb = p->trans_a ? a + i0 : a + i0 * p->lda;
    cae_real *ct = mine ? mine : c + i0 * p->ldc + j0;
    const int64_t ldc = mine ? padded_ld(nb) : p->ldc;
    f(b + j0, lb, ct);
    const int64_t rows = pr ? m - i0 : mb, cols = pc ? n - j0 : nb;
    if (bias)
        for (int64_t r = 0; r < rows; r++) {
            cae_real *cr = ct + r * ldc;
#pragma omp simd
            for (int64_t q = 0; q < cols; q++) cr[q] += bias[j0 + q];
        }
    if (e) e->tile(e->ctx, ct, ldc, i0, j0, rows, cols, acc);
}

static void run_tiles(const cae_gemm *p, const cae_real *a, const cae_real *b, cae_real *c,
                      const cae_real *bias, const cae_gemm_epilogue *e, int threads,
                      double *acc, cae_real *tiles)
{
    /* This thread's tile in scratch, when C is not needed after the epilogue. */
    cae_real *mine = NULL;
    if (tiles && e && e->c_discard && threads <= p->c_threads)
        mine = tiles + (size_t)omp_get_thread_num() * (p->c_scratch_reals / (size_t)p->c_threads);
    const int64_t tiles_r = (p->m + p->mb - 1) / p->mb, tiles_c = (p->n + p->nb - 1) / p->nb;
    const int64_t ntiles = tiles_r * tiles_c;
    const int col_outer = threads >= MAX_SCHED_THREADS || ((p->col_outer_mask >> threads) & 1);
    if (threads == 2 && p->own_at) { /* cae_gemm_own: each thread its side */
        const int64_t first = p->own_at / (p->own_dim ? p->nb : p->mb);
        const int side = omp_get_thread_num();
        for (int64_t t = 0; t < ntiles; t++) {
            const int64_t tj = col_outer ? t / tiles_r : t % tiles_c;
            const int64_t ti = col_outer ? t % tiles_r : t / tiles_c;
            if (((p->own_dim ? tj : ti) >= first) == side)
                run_tile(p, a, b, c, bias, e, acc, mine, ti, tj);
        }
#pragma omp barrier
        return;
    }
#pragma omp for schedule(static)
    for (int64_t t = 0; t < ntiles; t++) {
        const int64_t tj = col_outer ? t / tiles_r : t % tiles_c;
        const int64_t ti = col_outer ? t % tiles_r : t / tiles_c;
        run_tile(p, a, b, c, bias, e, acc, mine, ti, tj);
    }
}

/* The epilogue over C (m x n, row stride ldc) in blocks of mb full rows. */
static void run_epilogue_rows(const cae_gemm_epilogue *e, cae_real *c, int64_t m, int64_t n,
                              int64_t ldc, int64_t mb, double *acc)
{
    const int64_t blocks = (m + mb - 1) / mb;
#pragma omp for schedule(static)
    for (int64_t q = 0; q < blocks; q++) {
        const int64_t i0 = q * mb, rows = i0 + mb < m ? mb : m - i0;
        e->tile(e->ctx, c + i0 * ldc, ldc, i0, 0, rows, n, acc);
    }
}

/* A K-split plan (cae_gemm_plan_ksplit): block q's product, every tile,
 * by the threads of parity q (contiguous shares of the tiles), block 1's
 * into scratch; then C = (C +) P0 + P1 (+ bias), shared by the team in
 * pieces of one row and up to KS_COLS columns. */
enum { KS_COLS = 256 };
static void run_ksplit(const run *r, int threads)
{
    const cae_gemm *p = r->p;
    const int64_t m = p->m, n = p->n, mb = p->mb, nb = p->nb, k0 = p->k_split;
    const int64_t tiles_c = (n + nb - 1) / nb, ntiles = (m + mb - 1) / mb * tiles_c;
    cae_real *part = r->scratch;
    const int me = threads > 1 ? omp_get_thread_num() : 0;
    for (int q = 0; q < 2; q++) {
        /* block q's threads: q, q + 2, ...; one thread does both blocks */
        const int nq = threads > 1 ? (threads - q + 1) / 2 : 1;
        if (threads > 1 && me % 2 != q) continue;
        const int64_t idx = threads > 1 ? me / 2 : 0;
        const int64_t t0 = ntiles * idx / nq, t1 = ntiles * (idx + 1) / nq;
        const cae_real *a = r->a + (q ? k0 : 0), *b = r->b + (q ? k0 * p->ldb : 0);
        cae_real *c = q ? part : r->c;
        for (int64_t t = t0; t < t1; t++) {
            const int64_t i0 = t / tiles_c * mb, j0 = t % tiles_c * nb;
            kern_fn f = (kern_fn)p->kern_k[q][i0 + mb > m][j0 + nb > n];
            f(b + j0, a + i0 * p->lda, c + i0 * p->ldc + j0);
        }
    }
    if (threads > 1) {
#pragma omp barrier
    }
    const int64_t cb = (n + KS_COLS - 1) / KS_COLS;
    const cae_real *bias = r->bias;
#pragma omp for schedule(static)
    for (int64_t t = 0; t < m * cb; t++) {
        const int64_t i = t / cb, j0 = t % cb * KS_COLS, j1 = j0 + KS_COLS < n ? j0 + KS_COLS : n;
        cae_real *cr = r->c + i * p->ldc;
        const cae_real *pr = part + i * n;
        if (bias) {
#pragma omp simd
            for (int64_t j = j0; j < j1; j++) cr[j] = (cr[j] + pr[j]) + bias[j];
        } else {
#pragma omp simd
            for (int64_t j = j0; j < j1; j++) cr[j] += pr[j];
        }
    }
}

/* The phases of a run, executed by every thread of its team (or by one
 * thread outside any region): the copies the kernels need, a barrier, the
 * tiles, and for a swapped plan the transpose back into C. */
static void run_body(run *r, int threads)
{
    const cae_gemm *p = r->p;
    const cae_real *a = r->a, *b = r->b;
    double acc = 0;
    if (p->k_split) {
        CAE_ASSERT(!r->e && !r->count, "gemm: a K-split plan with an epilogue or stacked blocks");
        run_ksplit(r, threads);
        return;
    }
    if (p->swap) { /* C^T = B op(A)^T into scratch, then C (+)= (C^T)^T */
        cae_real *ct = r->scratch, *at = r->scratch + p->m * p->ldc;
        const cae_real *second = a;
        if (p->a_trans_in_swap) { /* A is out_m x k: its transpose, k x out_m */
            transpose_blocked(at, p->ldb, a, p->k, p->out_m, p->k, 0, NULL);
            second = at;
#pragma omp barrier
        }
        if (is_dots(p))
            run_dots(p, b, second, ct, NULL, threads);
        else
            run_tiles(p, b, second, ct, NULL, NULL, threads, &acc, NULL);
        /* the for loops above end with their implicit barrier */
        transpose_blocked(r->c, p->out_n, ct, p->ldc, p->out_n, p->out_m, p->out_accumulate,
                          r->bias);
        if (r->e) {
#pragma omp barrier
            run_epilogue_rows(r->e, r->c, p->out_m, p->out_n, p->out_n, CAE_GEMM_EPILOGUE_ROWS,
                              &acc);
        }
    } else {
        cae_real *s = r->scratch;
        if (p->trans_b) { /* b is N x K: make the K x N copy the kernels read */
            transpose_blocked(s, p->ldb, b, p->k, p->n, p->k, 0, NULL);
            b = s;
            s += p->k * p->ldb;
        }
        cae_real *tiles = r->scratch + (p->scratch_reals - p->c_scratch_reals);
        if (r->count) { /* stacked: A_q^T into columns of A's copy, B_q into rows */
            cae_real *acat = s, *bcat = s + (p->a_copy ? p->m * p->lda : p->k * p->m);
            tiles = bcat + p->k * p->n;
            int64_t off = 0;
            for (int q = 0; q < r->count; q++) {
                const int64_t kq = r->ks[q];
                if (p->a_copy) /* A_q (kq x M)^T: M x kq at column off */
                    transpose_blocked(acat + off, p->lda, r->as[q], p->m, kq, p->m, 0, NULL);
                else { /* the kernels read A^T themselves: stack A_q's rows */
#pragma omp for schedule(static) nowait
                    for (int64_t i = 0; i < kq; i++)
                        memcpy(acat + (off + i) * p->m, r->as[q] + i * p->m,
                               (size_t)p->m * sizeof(cae_real));
                }
#pragma omp for schedule(static) nowait
                for (int64_t i = 0; i < kq; i++)
                    memcpy(bcat + (off + i) * p->n, r->bs[q] + i * p->n,
                           (size_t)p->n * sizeof(cae_real));
                off += kq;
            }
            a = acat;
            b = bcat;
        } else if (p->a_copy) { /* a is K x M: make the M x K copy */
            transpose_blocked(s, p->lda, a, p->m, p->k, p->m, 0, NULL);
            a = s;
        }
        if (p->trans_b || p->a_copy || r->count) {
#pragma omp barrier
        }
        if (is_dots(p)) {
            CAE_ASSERT(p->ldb == 1 && p->ldc == 1, "gemm: a batch-of-one plan with strided b or C");
            run_dots(p, a, b, r->c, r->bias, threads);
            if (r->e) {
#pragma omp barrier
                run_epilogue_rows(r->e, r->c, p->m, 1, 1, CAE_GEMM_EPILOGUE_ROWS, &acc);
            }
        } else {
            run_tiles(p, a, b, r->c, r->bias, r->e, threads, &acc,
                      p->c_scratch_reals ? tiles : NULL);
        }
    }
    if (r->e) {
#pragma omp atomic
        r->acc += acc;
    }
}

/* Whether a run is worth a team: the kernels' work, or a large copy. */
static int run_parallel(const cae_gemm *p, int threads)
{
    if (threads <= 1) return 0;
    const int64_t tiles = ((p->m + p->mb - 1) / p->mb) * ((p->n + p->nb - 1) / p->nb);
    if (is_dots(p)) return p->m * p->k >= 65536;
    return (tiles > 1 && p->m * p->n * p->k >= 32768) || p->out_m * p->out_n > 65536;
}

static double run_all(run *r, int threads)
{
    if (threads <= 0) threads = omp_get_max_threads();
    const int par = run_parallel(r->p, threads);
    r->acc = 0;
#pragma omp parallel num_threads(threads) if (par)
    run_body(r, par ? omp_get_num_threads() : 1);
    return r->acc;
}

void cae_gemm_run(const cae_gemm *p, const cae_real *a, const cae_real *b, cae_real *c,
                  cae_real *scratch, int threads)
{
    run r = {.p = p, .a = a, .b = b, .c = c, .scratch = scratch};
    run_all(&r, threads);
}

void cae_gemm_run_bias(const cae_gemm *p, const cae_real *a, const cae_real *b, cae_real *c,
                       const cae_real *bias, cae_real *scratch, int threads)
{
    CAE_ASSERT(!bias || !p->out_accumulate, "gemm: a bias with an accumulating plan");
    run r = {.p = p, .a = a, .b = b, .c = c, .bias = bias, .scratch = scratch};
    run_all(&r, threads);
}

double cae_gemm_run_epilogue(const cae_gemm *p, const cae_real *a, const cae_real *b,
                             cae_real *c, cae_real *scratch, int threads,
                             const cae_gemm_epilogue *e)
{
    run r = {.p = p, .a = a, .b = b, .c = c, .scratch = scratch, .e = e};
    return run_all(&r, threads);
}

size_t cae_gemm_stacked_scratch(const cae_gemm *p)
{
    return (p->a_copy ? (size_t)(p->m * p->lda) : (size_t)(p->k * p->m)) +
           (size_t)(p->k * p->n) + p->c_scratch_reals;
}

double cae_gemm_run_stacked(const cae_gemm *p, int count, const cae_real *const *a,
                            const cae_real *const *b, const int64_t *k, cae_real *c,
                            cae_real *scratch, int threads, const cae_gemm_epilogue *e)
{
    CAE_ASSERT((p->trans_a || p->a_copy) && !p->trans_b && !p->swap && count >= 1 &&
                   count <= CAE_GEMM_MAX_STACK,
               "gemm: a stacked run needs a plan with trans_a only and 1..%d blocks",
               CAE_GEMM_MAX_STACK);
    int64_t total = 0;
    for (int q = 0; q < count; q++) total += k[q];
    CAE_ASSERT(total == p->k, "gemm: stacked blocks of %lld rows, the plan has K = %lld",
               (long long)total, (long long)p->k);
    run r = {.p = p, .c = c, .scratch = scratch, .e = e, .count = count, .as = a, .bs = b,
             .ks = k};
    return run_all(&r, threads);
}
