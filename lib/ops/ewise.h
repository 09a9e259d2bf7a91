/* Private helpers of lib/ops (not installed).
 *
 * CAEK_FOR(n, nt, body...) runs body for int64_t i in [0, n): an OpenMP
 * `parallel for simd` over nt threads (0 = OpenMP default) when n is at
 * least CAEK_PAR_MIN and there is more than one thread, a serial `omp simd`
 * loop otherwise, so small tensors never pay for a thread team, nor one
 * thread for a region. Iterations must be independent. CAEK_PAR_MIN is
 * 4096: at B = 20 on 2 threads the CAE's 20 x 1000 element-wise nodes ran
 * 1.5-1.8x faster split than on one thread (bench/profile, 2026-12-06:
 * sigmoid 11-12 -> 7 us, bce_logits 18-20 -> 11); a team costs a few
 * us. The results do not depend on the split: reductions go through
 * per-row or fixed CAEK_CHUNK partial sums.
 * CAEK_FOR_ROWS(B, width, nt, body...) does the same for int64_t b over B
 * rows of `width` elements each (no simd: the body loops over its row).
 *
 * The cae_ops_* infer helpers fail through cae_node_fail, which prefixes
 * the op's name. */
#ifndef CAE_OPS_EWISE_H
#define CAE_OPS_EWISE_H

#include <omp.h>
#include <stdint.h>

#include "cae/graph.h"
#include "cae/op.h"
#include "cae/ops.h"
#include "shared.h"

#define CAEK_PAR_MIN 4096
/* Elements per partial sum of the deterministic reductions. */
#define CAEK_CHUNK 4096
/* Columns per thread task in column reductions. */
#define CAEK_COLS 64

static inline int caek_nt(int nt) { return nt > 0 ? nt : omp_get_max_threads(); }

#define CAEK_FOR(n, nt, ...)                                                \
    do {                                                                    \
        const int64_t caek_n_ = (n);                                        \
        const int caek_nt_ = caek_n_ >= CAEK_PAR_MIN ? caek_nt(nt) : 1;     \
        if (caek_nt_ > 1) {                                                 \
            _Pragma("omp parallel for simd schedule(static) num_threads(caek_nt_)") \
            for (int64_t i = 0; i < caek_n_; i++) { __VA_ARGS__; }          \
        } else {                                                            \
            _Pragma("omp simd")                                             \
            for (int64_t i = 0; i < caek_n_; i++) { __VA_ARGS__; }          \
        }                                                                   \
    } while (0)

#define CAEK_FOR_ROWS(B, width, nt, ...)                                    \
    do {                                                                    \
        const int64_t caek_b_ = (B);                                        \
        const int caek_nt_ = caek_b_ > 1 && caek_b_ * (int64_t)(width) >= CAEK_PAR_MIN \
                                 ? caek_nt(nt) : 1;                         \
        if (caek_nt_ > 1) {                                                 \
            _Pragma("omp parallel for schedule(static) num_threads(caek_nt_)") \
            for (int64_t b = 0; b < caek_b_; b++) { __VA_ARGS__; }          \
        } else {                                                            \
            for (int64_t b = 0; b < caek_b_; b++) { __VA_ARGS__; }          \
        }                                                                   \
    } while (0)

/* dst[i] = expr (store) or dst[i] += expr, for int64_t i in [0, n): the
 * one loop of a backward that may be its buffer's first writer
 * (lib/shared.h), with the derivative written once. */
#define CAEK_PUT(n, nt, store, dst, expr)                                   \
    do {                                                                    \
        if (store) CAEK_FOR(n, nt, (dst)[i] = (expr));                      \
        else CAEK_FOR(n, nt, (dst)[i] += (expr));                           \
    } while (0)

/* Inputs 0 and 1 must have identical shapes; out takes them. */
static inline int cae_ops_same2(cae_node *n)
{
    const cae_tensor *a = &n->in[0]->out, *b = &n->in[1]->out;
    int same = a->rank == b->rank;
    for (int d = 0; same && d < a->rank; d++) same = a->shape[d] == b->shape[d];
    if (!same) {
        char sa[64], sb[64];
        cae_node_fail(n, "shapes %s and %s differ",
                      cae_shape_str(a, sa, sizeof sa),
                      cae_shape_str(b, sb, sizeof sb));
        return -1;
    }
    return cae_node_same_shape(n, 0);
}

/* Input i must have rank `rank`. */
static inline int cae_ops_rank(cae_node *n, int i, int rank)
{
    const cae_tensor *t = &n->in[i]->out;
    if (t->rank == rank) return 0;
    char s[64];
    cae_node_fail(n, "input %d must have rank %d, got shape %s", i, rank,
                  cae_shape_str(t, s, sizeof s));
    return -1;
}

/* Set out to a vector of len elements. Returns 0. */
static inline int cae_ops_vector(cae_node *n, int64_t len)
{
    n->out.rank = 1;
    n->out.shape[0] = len;
    return 0;
}

/* Column reduction: acc[j] += sum_b y[b,j] (x == NULL), sum_b y[b,j] x[b,j],
 * or (y == NULL) sum_b s x[b,j]; y, x B x N, acc N; with store, acc[j] = the
 * sum (acc's old values never read). Threads own column blocks, so each
 * acc[j] is summed by one thread in row order (deterministic). A constant
 * y of s gives the bits of s x, as y x does. */
static inline void cae_ops_col_acc_s(cae_real *acc, const cae_real *y, cae_real s,
                                     const cae_real *x, int64_t B, int64_t N, int nt,
                                     int store)
{
    const int64_t nblk = (N + CAEK_COLS - 1) / CAEK_COLS;
    CAEK_FOR_ROWS(nblk, B * CAEK_COLS, nt, {
        const int64_t j0 = b * CAEK_COLS;
        const int64_t j1 = j0 + CAEK_COLS < N ? j0 + CAEK_COLS : N;
        if (store)
            for (int64_t j = j0; j < j1; j++) acc[j] = 0;
        for (int64_t r = 0; r < B; r++) {
            const cae_real *yr = y ? y + r * N : NULL, *xr = x ? x + r * N : NULL;
            if (yr && xr) {
                _Pragma("omp simd")
                for (int64_t j = j0; j < j1; j++) acc[j] += yr[j] * xr[j];
            } else if (yr) {
                _Pragma("omp simd")
                for (int64_t j = j0; j < j1; j++) acc[j] += yr[j];
            } else {
                _Pragma("omp simd")
                for (int64_t j = j0; j < j1; j++) acc[j] += s * xr[j];
            }
        }
    });
}
static inline void cae_ops_col_acc(cae_real *acc, const cae_real *y,
                                   const cae_real *x, int64_t B, int64_t N,
                                   int nt, int store)
{
    cae_ops_col_acc_s(acc, y, 0, x, B, N, nt, store);
}

/* A loss-like op's scratch: one double per row of input 0 (its B rows),
 * then, when input i gets a gradient in this graph, a copy of input i's
 * size the forward fills for the backward (plan: cae_ops_plan_kept; the
 * copy, or NULL without one: cae_ops_kept). */
static inline size_t cae_ops_kept_offset(const cae_node *n)
{
    return cae_round_up((size_t)n->in[0]->out.shape[0] * sizeof(double), CAE_ALIGN);
}
static inline int cae_ops_plan_kept(cae_node *n, int i)
{
    n->scratch_bytes = cae_ops_kept_offset(n);
    if (cae_needs_grad(n) && cae_needs_grad(n->in[i]))
        n->scratch_bytes += (size_t)n->in[i]->out.size * sizeof(cae_real);
    return 0;
}
static inline cae_real *cae_ops_kept(const cae_node *n)
{
    const size_t off = cae_ops_kept_offset(n);
    return n->scratch_bytes > off ? (cae_real *)((char *)n->scratch + off) : NULL;
}

/* Forward mode: the total of each direction's block of tangent t (the
 * tangent of a scalar total): a scalar for one direction, K values for K. */
static inline cae_node *cae_ops_dir_sum(cae_graph *g, cae_node *t, int64_t K)
{
    if (K <= 1) return cae_sum(g, t);
    const int64_t size = cae_node_value(t)->size;
    return cae_sum_rows(g, cae_reshape(g, t, 2, (int64_t[]){K, size / K}));
}

#endif
