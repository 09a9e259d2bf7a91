/*
 * cae/gemm.h — the matrix product under cae_matmul, usable on raw buffers
 * (fused ops, benchmarks). Row-major C (M x N) = op(A) op(B) (+ C when
 * accumulating), op(X) = X or X^T.
 *
 * A plan is made once (that is where libxsmm JIT kernels are dispatched) and
 * run many times; running never allocates and never dispatches. The product
 * is cut into tiles of C (32 x 48, or 24 x 64 when C is narrower than 512, the whole K per
 * kernel call) shared out over OpenMP threads, each tile written by one
 * thread: no atomics, results independent of the thread count.
 * libxsmm 1.17 cannot transpose its first operand, which is our B. A plan
 * with trans_b either transposes B into caller-provided scratch on every
 * run, or — when that moves fewer bytes, as for h W^T with a large weight
 * matrix W and a small batch — computes C^T = B op(A)^T, transposing only
 * the small operands (A, and C^T back into C). With trans_a, A is
 * transposed into scratch too (libxsmm's own transposed-operand kernels ran
 * 10-15% slower at K = 256), except for a product too narrow (N < 16) to
 * repay the copy. Scratch copies get a row stride padded off multiples of
 * 512 bytes (a 1 KiB stride cost the kernels 10-15% in cache conflicts).
 */
#ifndef CAE_GEMM_H
#define CAE_GEMM_H

#include "cae/graph.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cae_gemm {
    int64_t m, n, k;      /* the product the kernels compute (see swap) */
    int trans_a, trans_b, accumulate;
    int64_t mb, nb;       /* tile sizes */
    int64_t lda, ldb, ldc; /* row strides the kernels read and write */
    unsigned col_outer_mask; /* bit t: with t threads, column tiles outermost */
    int a_copy;           /* trans_a done by transposing A into scratch */
    void *kern[2][2];     /* [partial rows][partial cols] */
    size_t scratch_reals; /* needed by cae_gemm_run */
    /* swap: the planned C (out_m x out_n) is computed as C^T = B op(A)^T
     * into scratch, then transposed into C (added when out_accumulate). */
    int swap, out_accumulate, a_trans_in_swap;
    int64_t out_m, out_n;
    /* cae_gemm_plan_c_scratch: kernels writing tiles (row stride nb, padded) into
     * per-thread scratch, for up to c_threads threads. */
    void *kern_s[2][2];
    int c_threads;
    size_t c_scratch_reals; /* the last c_scratch_reals of the scratch */
    /* cae_gemm_plan_ksplit: K cut at k_split (0: not cut), and the kernels
     * of its two blocks. */
    int64_t k_split;
    void *kern_k[2][2][2]; /* [block][partial rows][partial cols] */
    /* cae_gemm_own: run by exactly 2 threads, the first takes the tiles
     * before row (own_dim 0) or column (own_dim 1) own_at of the product
     * the kernels compute, the second the rest (0: the static schedule). */
    int64_t own_at;
    int own_dim;
} cae_gemm;

/* Plan C = op(A) op(B) with op(A) M x K, op(B) K x N. accumulate: C += ...
 * instead of C = .... Returns 0, or -1 when a kernel cannot be dispatched
 * or a size is not positive (the plan is then unusable). */
int cae_gemm_plan(cae_gemm *p, int64_t m, int64_t n, int64_t k, int trans_a,
                  int trans_b, int accumulate);
/* The same with tiles of C of tile_rows x tile_cols (0: the default, 32 x
 * 48 for N >= 512, else 24 x 64), e.g. for an epilogue that works in row
 * blocks of a fixed height and reads other matrices row by row (wide tiles
 * let the hardware prefetch them: 1.5-2x faster at K <= 200, measured). */
int cae_gemm_plan_tiles(cae_gemm *p, int64_t m, int64_t n, int64_t k, int trans_a,
                        int trans_b, int accumulate, int64_t tile_rows, int64_t tile_cols);
/* Weight matrices and the two threads of a training step. The step's
 * finish updates a weight matrix W (rows x cols) in tiles of
 * CAE_GEMM_EPILOGUE_ROWS rows, the first cae_gemm_owner_split(rows) rows
 * by the first of 2 threads (cae_gemm_own on the weight gradient's plan),
 * the rest by the second; every product that reads W (or the copy W^T the
 * finish writes) is planned so that each thread reads only those rows: a
 * line one core wrote and the other reads must cross between their caches,
 * and crosses back when the writer writes it again (bench/ownership; on 2
 * threads at B = 20 the CAE step went from 35.5% to 48.1% of the GEMM
 * roofline, the MLP step from 24.1% to 33.9%: bench/peers, README). Returns
 * 0 when W is too small to split (fewer than 2 tiles of rows). */
int64_t cae_gemm_owner_split(int64_t rows);
/* C (M x N) (+)= A (M x K) B (K x N), row-major, no transposes, with K cut
 * at k0 (0 < k0 < K) into two blocks: block q's product over its part of
 * K, every tile of C, is computed by the threads of parity q (block 1's
 * into scratch), then C = (C +) P0 + P1 in that order at any thread
 * count (so the thread count does not change a bit). With 2 threads each
 * thread reads only its block's rows of B: for a B whose rows are split
 * between the threads by their writer (cae_gemm_owner_split). */
int cae_gemm_plan_ksplit(cae_gemm *p, int64_t m, int64_t n, int64_t k, int64_t k0,
                         int accumulate);
/* Give a direct plan's tiles (or a batch-of-one plan's rows) to 2 threads
 * split at row (dim 0) or column (dim 1) `at` of the product the kernels
 * compute (p->m x p->n; a swapped plan's kernels compute C^T): when run
 * by exactly 2 threads, the first takes the tiles before `at`. Only the
 * schedule changes, not a value. Returns 0, or -1 (the plan is left as it
 * was) when `at` is not inside the product or not on a tile boundary. */
int cae_gemm_own(cae_gemm *p, int dim, int64_t at);
/* Scratch enough for a plan of any m <= max_m with these n, k and flags
 * (for buffers shared by plans of several batch sizes). */
size_t cae_gemm_scratch_bound(int64_t max_m, int64_t n, int64_t k, int trans_a,
                              int trans_b);
/* Run a plan. a, b, c as planned (row-major, densely packed); scratch holds
 * p->scratch_reals reals (may be NULL when that is 0); threads <= 0 uses
 * the OpenMP default. One OpenMP region per run: the copies, the tiles
 * and the transpose back are its phases. */
void cae_gemm_run(const cae_gemm *p, const cae_real *a, const cae_real *b,
                  cae_real *c, cae_real *scratch, int threads);
/* The same, then bias (N values) added to every row of C, tile by tile
 * while the tile is in cache: bit for bit C = op(A) op(B) followed by
 * C[i][j] += bias[j]. Plans without accumulate only. */
void cae_gemm_run_bias(const cae_gemm *p, const cae_real *a, const cae_real *b,
                       cae_real *c, const cae_real *bias, cae_real *scratch,
                       int threads);

/* An epilogue: tile(ctx, c, ldc, i0, j0, rows, cols, acc) is called once
 * for every block of C (rows x cols at row i0, column j0; c points at it,
 * ldc its row stride) after its final value is written, by the thread
 * that wrote it, while it is in cache; blocks cover C exactly once. acc
 * is that thread's running sum (the run returns the total, summed in no
 * fixed order). A direct plan calls it per output tile; a swapped or
 * batch-of-one plan per block of CAE_GEMM_EPILOGUE_ROWS rows after the
 * transpose back. */
#define CAE_GEMM_EPILOGUE_ROWS 32
typedef struct cae_gemm_epilogue {
    void (*tile)(void *ctx, cae_real *c, int64_t ldc, int64_t i0, int64_t j0,
                 int64_t rows, int64_t cols, double *acc);
    void *ctx;
    int c_discard; /* C's values are not needed after the epilogue: a plan with
                      cae_gemm_plan_c_scratch then writes each tile into scratch
                      (C is left as it was; saves C's traffic) */
} cae_gemm_epilogue;
/* Let a direct plan without accumulate write its tiles into per-thread
 * scratch for epilogues with c_discard, when run by at most `threads`
 * threads (more: into C as usual). Grows p->scratch_reals (and the stacked
 * scratch). Other plans (swapped, accumulating, batch-of-one) are left as
 * they are. Returns 0, or -1 when a kernel cannot be dispatched. */
int cae_gemm_plan_c_scratch(cae_gemm *p, int threads);
/* cae_gemm_run with an epilogue (e may be NULL); returns the sum of acc. */
double cae_gemm_run_epilogue(const cae_gemm *p, const cae_real *a, const cae_real *b,
                             cae_real *c, cae_real *scratch, int threads,
                             const cae_gemm_epilogue *e);
/* Stacked along K: C (+)= sum_q A_q^T B_q with A_q (k[q] x M) and B_q
 * (k[q] x N) row-major and sum_q k[q] = p->k, for a plan made with trans_a
 * and without trans_b: one product with the whole K (two weight gradients
 * of one matrix in one GEMM). Bit for bit the plan run on the
 * concatenations. scratch: cae_gemm_stacked_scratch(p) reals. */
#define CAE_GEMM_MAX_STACK 4
double cae_gemm_run_stacked(const cae_gemm *p, int count, const cae_real *const *a,
                            const cae_real *const *b, const int64_t *k, cae_real *c,
                            cae_real *scratch, int threads, const cae_gemm_epilogue *e);
size_t cae_gemm_stacked_scratch(const cae_gemm *p);
/* out (cols x rows) = in (rows x cols)^T, blocked, OpenMP. */
void cae_transpose(cae_real *out, const cae_real *in, int64_t rows,
                   int64_t cols, int threads);

#ifdef __cplusplus
}
#endif
#endif
