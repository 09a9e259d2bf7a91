/* The fused contractive penalty: forward, analytic backward, node adapter.
 *
 * Derivation. One example, encoder h_j = phi(a_j), a_j = sum_i x_i W_ij + b_j
 * (layout CAE_W_IN_UNITS; for CAE_W_UNITS_IN read W_ij as W_ji). Then
 * dh_j/dx_i = phi'(a_j) W_ij, so
 *
 *   P(x) = ||J||_F^2 = sum_j phi'(a_j)^2 sum_i W_ij^2 = sum_j d_j^2 n_j.
 *
 * Over a batch of B examples the op returns P = (1/B) sum_b sum_j d_bj^2 n_j
 * = sum_j n_j c_j with c_j = (1/B) sum_b d_bj^2.
 *
 * Gradient. P depends on W twice: through n_j directly and through a_bj
 * (which depends on W, b and x). With e_bj = phi''(a_bj):
 *
 *   dP/da_bj        = (1/B) 2 d_bj e_bj n_j                       (= q_bj)
 *   dP/dW_ij direct = 2 W_ij c_j
 *
 * The tape turns dP/da into the familiar terms: through a = x W + b it adds
 * sum_b q_bj x_bi to dW_ij, sum_b q_bj to db_j and sum_j q_bj W_ij to dx_bi.
 * For the sigmoid (d = h(1-h), e = d(1-2h)) this is the closed form of the
 * paper, dP/dW_ij = 2 d_j^2 (1-2h_j) n_j x_i + 2 d_j^2 W_ij per example: the
 * factor 2 is in both terms, and n_j is a sum of squares (not a squared sum).
 *
 *   phi        d = phi'(a)        e = phi''(a)
 *   sigmoid    h(1-h)             d(1-2h)
 *   tanh       1-h^2              -2 h d
 *   relu       [a > 0]            0 (almost everywhere)
 *   softplus   sigmoid(a)         d(1-d)
 *   linear     1                  0          (P = sum W^2: weight decay)
 *
 * Work: n_j once per call (one pass over W), then one pass over a and h that
 * writes q (kept for backward) and c; backward is one pass over q and, for
 * the direct W term, one over W. Threads split the hidden units (columns),
 * so no two threads write the same c_j, q_bj or dW_ij. */
#include <math.h>

#include <omp.h>

#include "cae/op.h"
#include "cae/penalty.h"
#include "shared.h"

enum { COLS = 256 }; /* hidden units per parallel chunk */

/* n_j = sum_i W_ij^2 (W: D x H), as the sum in order of partial sums over
 * blocks of CAE_NORM_ROWS rows, each summed in row order with fused
 * multiply-adds: bit for bit what the finish of a training step leaves in
 * the graph's partial norms (lib/shared.h), so the forward gives the same
 * penalty from either. */
static void sum_partials(const cae_real *part, int64_t H, int64_t D, cae_real *norms,
                         int threads)
{
    const int64_t blocks = (D + CAE_NORM_ROWS - 1) / CAE_NORM_ROWS;
#pragma omp parallel for simd schedule(static) num_threads(threads) if (H * blocks >= 65536)
    for (int64_t j = 0; j < H; j++) {
        cae_real s = part[j];
        for (int64_t q = 1; q < blocks; q++) s += part[q * H + j];
        norms[j] = s;
    }
}

static void column_norms(const cae_real *W, int64_t H, int64_t D, cae_wlayout layout,
                         cae_real *norms, int threads)
{
    const int64_t chunks = (H + COLS - 1) / COLS;
    if (layout == CAE_W_IN_UNITS) { /* W: D x H, n_j = sum over rows of column j */
#pragma omp parallel for schedule(static) num_threads(threads) if (H * D >= 65536)
        for (int64_t c = 0; c < chunks; c++) {
            const int64_t j0 = c * COLS, j1 = j0 + COLS < H ? j0 + COLS : H;
            cae_real part[COLS];
            for (int64_t i0 = 0; i0 < D; i0 += CAE_NORM_ROWS) {
                const int64_t i1 = i0 + CAE_NORM_ROWS < D ? i0 + CAE_NORM_ROWS : D;
                for (int64_t j = j0; j < j1; j++) part[j - j0] = 0;
                for (int64_t i = i0; i < i1; i++) {
                    const cae_real *w = W + i * H;
#pragma omp simd
                    for (int64_t j = j0; j < j1; j++)
                        part[j - j0] = CAE_FMA(w[j], w[j], part[j - j0]);
                }
                if (i0 == 0)
                    for (int64_t j = j0; j < j1; j++) norms[j] = part[j - j0];
                else
                    for (int64_t j = j0; j < j1; j++) norms[j] += part[j - j0];
            }
        }
    } else { /* W: H x D, n_j = sum of row j */
#pragma omp parallel for schedule(static) num_threads(threads) if (H * D >= 65536)
        for (int64_t j = 0; j < H; j++) {
            const cae_real *w = W + j * D;
            cae_real s = 0;
#pragma omp simd reduction(+ : s)
            for (int64_t i = 0; i < D; i++) s += w[i] * w[i];
            norms[j] = s;
        }
    }
}

/* d = phi'(a), e = phi''(a) from a and h = phi(a). */
#define PHI_LOOP(DE)                                                              \
    for (int64_t b = 0; b < B; b++) {                                             \
        const cae_real *ar = a + b * H, *hr = h + b * H;                          \
        cae_real *qr = q + b * H;                                                 \
        _Pragma("omp simd") for (int64_t j = j0; j < j1; j++)                     \
        {                                                                         \
            const cae_real av = ar[j], hv = hr[j];                                \
            cae_real d, e;                                                        \
            DE;                                                                   \
            (void)av;                                                             \
            (void)hv;                                                             \
            colsum[j] += d * d;                                                   \
            qr[j] = two_over_b * d * e * norms[j];                                \
        }                                                                         \
    }

/* The forward; part: the partial column norms of W when the graph keeps
 * them (a training step), else NULL (computed here). */
static double contractive_forward(const cae_real *a, const cae_real *h, const cae_real *W,
                                  const cae_real *part, int64_t B, int64_t H, int64_t D,
                                  cae_act act, cae_wlayout layout, cae_real *norms,
                                  cae_real *colsum, cae_real *q, int threads)
{
    if (threads <= 0) threads = omp_get_max_threads();
    if (part)
        sum_partials(part, H, D, norms, threads);
    else
        column_norms(W, H, D, layout, norms, threads);
    const int64_t chunks = (H + COLS - 1) / COLS;
    const cae_real two_over_b = (cae_real)2 / (cae_real)B, inv_b = (cae_real)1 / (cae_real)B;
    double total = 0;
#pragma omp parallel for schedule(static) num_threads(threads) reduction(+ : total) \
    if (B * H >= 16384)
    for (int64_t c = 0; c < chunks; c++) {
        const int64_t j0 = c * COLS, j1 = j0 + COLS < H ? j0 + COLS : H;
        for (int64_t j = j0; j < j1; j++) colsum[j] = 0;
        switch (act) {
        case CAE_ACT_SIGMOID: PHI_LOOP(d = hv * (1 - hv); e = d * (1 - 2 * hv)); break;
        case CAE_ACT_TANH: PHI_LOOP(d = 1 - hv * hv; e = -2 * hv * d); break;
        case CAE_ACT_RELU: PHI_LOOP(d = av > 0 ? 1 : 0; e = 0); break;
        case CAE_ACT_SOFTPLUS: PHI_LOOP(d = (cae_real)(1 / (1 + exp(-av))); e = d * (1 - d)); break;
        case CAE_ACT_LINEAR: PHI_LOOP(d = 1; e = 0); break;
        }
        double sum = 0;
        for (int64_t j = j0; j < j1; j++) {
            colsum[j] *= inv_b;
            sum += (double)colsum[j] * (double)norms[j];
        }
        total += sum;
    }
    return total;
}

double caek_contractive_forward(const cae_real *a, const cae_real *h, const cae_real *W,
                                int64_t B, int64_t H, int64_t D, cae_act act,
                                cae_wlayout layout, cae_real *norms, cae_real *colsum,
                                cae_real *q, int threads)
{
    return contractive_forward(a, h, W, NULL, B, H, D, act, layout, norms, colsum, q, threads);
}

/* The backward with, per output, store (=) instead of accumulate (+=):
 * the node stores when it is the first writer of a gradient in a pass. */
static void contractive_backward(const cae_real *q, const cae_real *colsum, const cae_real *W,
                                 int64_t B, int64_t H, int64_t D, cae_wlayout layout, cae_real g,
                                 cae_real *da, cae_real *dW, int store_da, int store_dW,
                                 int threads)
{
    if (threads <= 0) threads = omp_get_max_threads();
    if (da) {
        const int64_t n = B * H;
        if (store_da) {
#pragma omp parallel for simd schedule(static) num_threads(threads) if (n >= 32768)
            for (int64_t i = 0; i < n; i++) da[i] = g * q[i];
        } else {
#pragma omp parallel for simd schedule(static) num_threads(threads) if (n >= 32768)
            for (int64_t i = 0; i < n; i++) da[i] += g * q[i];
        }
    }
    if (dW) {
        const cae_real g2 = 2 * g;
        if (layout == CAE_W_IN_UNITS) { /* W: D x H */
#pragma omp parallel for schedule(static) num_threads(threads) if (H * D >= 65536)
            for (int64_t i = 0; i < D; i++) {
                const cae_real *w = W + i * H;
                cae_real *dw = dW + i * H;
                if (store_dW) {
#pragma omp simd
                    for (int64_t j = 0; j < H; j++) dw[j] = g2 * colsum[j] * w[j];
                } else {
#pragma omp simd
                    for (int64_t j = 0; j < H; j++) dw[j] += g2 * colsum[j] * w[j];
                }
            }
        } else { /* W: H x D */
#pragma omp parallel for schedule(static) num_threads(threads) if (H * D >= 65536)
            for (int64_t j = 0; j < H; j++) {
                const cae_real s = g2 * colsum[j], *w = W + j * D;
                cae_real *dw = dW + j * D;
                if (store_dW) {
#pragma omp simd
                    for (int64_t i = 0; i < D; i++) dw[i] = s * w[i];
                } else {
#pragma omp simd
                    for (int64_t i = 0; i < D; i++) dw[i] += s * w[i];
                }
            }
        }
    }
}

void caek_contractive_backward(const cae_real *q, const cae_real *colsum, const cae_real *W,
                               int64_t B, int64_t H, int64_t D, cae_wlayout layout, cae_real g,
                               cae_real *da, cae_real *dW, int threads)
{
    contractive_backward(q, colsum, W, B, H, D, layout, g, da, dW, 0, 0, threads);
}

/* ---------------------------------------------------------- node adapter */
/* in: a (B x H), h (B x H), W (D x H or H x D). iattr: act, layout.
 * scratch: norms (H), colsum (H), q (B x H), each on its own cache line. */

static int64_t units_of(const cae_node *n)
{
    return n->in[0]->out.shape[1];
}

static int penalty_infer(cae_node *n)
{
    const cae_tensor *a = &n->in[0]->out, *h = &n->in[1]->out, *w = &n->in[2]->out;
    char sa[64], sh[64], sw[64];
    cae_shape_str(a, sa, sizeof sa);
    cae_shape_str(h, sh, sizeof sh);
    cae_shape_str(w, sw, sizeof sw);
    if (n->iattr[0] < CAE_ACT_SIGMOID || n->iattr[0] > CAE_ACT_LINEAR)
        return cae_node_fail(n, "unknown activation %lld", (long long)n->iattr[0]);
    if (a->rank != 2 || h->rank != 2 || w->rank != 2)
        return cae_node_fail(n, "needs a, h (B x H) and W (matrix), got a %s, h %s, W %s", sa, sh,
                             sw);
    if (a->shape[0] != h->shape[0] || a->shape[1] != h->shape[1])
        return cae_node_fail(n, "a %s and h %s differ", sa, sh);
    const int64_t units = n->iattr[1] == CAE_W_IN_UNITS ? w->shape[1] : w->shape[0];
    if (units != a->shape[1])
        return cae_node_fail(n, "W %s (%s layout) has %lld units, a %s has %lld", sw,
                             n->iattr[1] == CAE_W_IN_UNITS ? "inputs x units" : "units x inputs",
                             (long long)units, sa, (long long)a->shape[1]);
    return cae_node_scalar(n);
}

static int penalty_plan(cae_node *n)
{
    const int64_t B = n->in[0]->out.shape[0], H = units_of(n);
    const size_t line = CAE_ALIGN;
    /* Training steps: the column norms from the partial sums the graph
     * keeps, refreshed by W's update (no pass over W here). */
    if (n->iattr[1] == CAE_W_IN_UNITS) cae_node_want_norms(n, 2);
    n->scratch_bytes = 2 * cae_round_up((size_t)H * sizeof(cae_real), line) +
                       (size_t)(B * H) * sizeof(cae_real);
    return 0;
}

static void penalty_buffers(cae_node *n, cae_real **norms, cae_real **colsum, cae_real **q)
{
    const int64_t H = units_of(n);
    const size_t hb = cae_round_up((size_t)H * sizeof(cae_real), CAE_ALIGN);
    unsigned char *s = n->scratch;
    *norms = (cae_real *)s;
    *colsum = (cae_real *)(s + hb);
    *q = (cae_real *)(s + 2 * hb);
}

static int64_t inputs_of(const cae_node *n)
{
    const cae_tensor *w = &n->in[2]->out;
    return n->iattr[1] == CAE_W_IN_UNITS ? w->shape[0] : w->shape[1];
}

static void penalty_forward(cae_node *n)
{
    cae_real *norms, *colsum, *q;
    penalty_buffers(n, &norms, &colsum, &q);
    n->out.data[0] = (cae_real)contractive_forward(
        n->in[0]->out.data, n->in[1]->out.data, n->in[2]->out.data, cae_node_param_norms(n, 2),
        n->in[0]->out.shape[0], units_of(n), inputs_of(n), (cae_act)n->iattr[0],
        (cae_wlayout)n->iattr[1], norms, colsum, q, cae_node_threads(n));
}

static void penalty_backward(cae_node *n)
{
    cae_real *norms, *colsum, *q;
    penalty_buffers(n, &norms, &colsum, &q);
    /* W's direct term 2 g c_j W_ij, a column-scaled copy of W: handed to
     * W's finish when the graph takes it (it adds it while W is in cache). */
    const int defer = cae_node_defers(n, 2);
    if (defer) cae_node_defer(n, 2, colsum, 2 * n->out.grad[0]);
    contractive_backward(q, colsum, n->in[2]->out.data, n->in[0]->out.shape[0], units_of(n),
                         inputs_of(n), (cae_wlayout)n->iattr[1], n->out.grad[0],
                         n->in[0]->out.grad, defer ? NULL : n->in[2]->out.grad,
                         cae_node_stores(n, 0), cae_node_stores(n, 2), cae_node_threads(n));
}

static const cae_op penalty_op = {.name = "contractive_penalty", .n_in = 3,
                                  .infer = penalty_infer, .plan = penalty_plan,
                                  .forward = penalty_forward, .backward = penalty_backward};

cae_node *cae_contractive_penalty(cae_graph *g, cae_node *a, cae_node *h, cae_node *W,
                                  cae_act act, cae_wlayout layout)
{
    cae_attr at = {.i = {act, layout}};
    /* May store a's and W's gradients when it writes them first; h gets none. */
    cae_node *n = cae_node_new_builtin(g, &penalty_op, (cae_node *[]){a, h, W}, &at, NULL,
                                       (1u << 0) | (1u << 2), 1u << 1);
    /* With W's columns the units, W's term is column-scaled: it may defer it. */
    if (n && layout == CAE_W_IN_UNITS) cae_node_builtin_bits(n, 0, 1u << 2);
    return n;
}
