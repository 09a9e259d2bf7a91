/* Shape ops: tile (K copies stacked along the first dimension), repeat_rows
 * (each row repeated B times) and reshape (the same values, another shape).
 * They carry forward-mode tangents between shapes: a tangent with K
 * directions is K copies' worth of values stacked along the first
 * dimension (cae/jvp.h), and a primal value meets it through cae_tile.
 * Each is a copy forward; backward sums what was copied. */
#include <string.h>

#include "cae/kernels.h"
#include "cae/ops.h"
#include "ops/ewise.h"

#define IN0(n) (&(n)->in[0]->out)
#define NT(n) cae_node_threads(n)

/* ---------------------------------------------------------------- tile */
/* iattr[0] = K. out: K blocks of x's size. */

static int tile_infer(cae_node *n)
{
    const cae_tensor *x = &n->in[0]->out;
    const int64_t K = n->iattr[0];
    if (K < 1) return cae_node_fail(n, "K = %lld copies", (long long)K);
    if (x->rank == 0) return cae_ops_vector(n, K);
    cae_node_same_shape(n, 0);
    n->out.shape[0] = K * x->shape[0];
    return 0;
}

static void tile_fwd(cae_node *n)
{
    const int64_t m = IN0(n)->size, K = n->iattr[0];
    for (int64_t k = 0; k < K; k++)
        memcpy(n->out.data + k * m, IN0(n)->data, (size_t)m * sizeof(cae_real));
}

static void tile_bwd(cae_node *n)
{   /* dx += sum over the K blocks of G */
    if (!cae_needs_grad(n->in[0])) return;
    cae_real *dx = IN0(n)->grad;
    const cae_real *G = n->out.grad;
    const int64_t m = IN0(n)->size, K = n->iattr[0];
    CAEK_FOR(m, NT(n), {
        cae_real s = 0;
        for (int64_t k = 0; k < K; k++) s += G[k * m + i];
        dx[i] += s;
    });
}

static cae_node *tile_tangent(cae_graph *g, cae_node *n, cae_node *const *t)
{
    if (cae_tangent_dirs(n->in[0], t[0]) != 1) {
        cae_node_fail(n, "the tangent of a tile with several directions is not supported");
        return NULL;
    }
    return cae_tile(g, t[0], n->iattr[0]);
}

static const cae_op tile_op = {.name = "tile", .n_in = 1, .infer = tile_infer,
                               .forward = tile_fwd, .backward = tile_bwd, .tangent = tile_tangent};

cae_node *cae_tile(cae_graph *g, cae_node *x, int64_t K)
{
    const cae_attr at = {.i = {K}};
    return cae_node_new_attr(g, &tile_op, (cae_node *[]){x}, &at, NULL);
}

/* --------------------------------------------------------- repeat_rows */
/* iattr[0] = B. x: R x N; out (R B) x N, row r B + b = row r. */

static int repeat_infer(cae_node *n)
{
    if (cae_ops_rank(n, 0, 2)) return -1;
    if (n->iattr[0] < 1) return cae_node_fail(n, "B = %lld repeats", (long long)n->iattr[0]);
    cae_node_same_shape(n, 0);
    n->out.shape[0] = IN0(n)->shape[0] * n->iattr[0];
    return 0;
}

static void repeat_fwd(cae_node *n)
{
    const int64_t R = IN0(n)->shape[0], N = IN0(n)->shape[1], B = n->iattr[0];
    const cae_real *x = IN0(n)->data;
    cae_real *out = n->out.data;
    CAEK_FOR_ROWS(R * B, N, NT(n), memcpy(out + b * N, x + (b / B) * N, (size_t)N * sizeof(cae_real)));
}

static void repeat_bwd(cae_node *n)
{
    if (!cae_needs_grad(n->in[0])) return;
    const int64_t R = IN0(n)->shape[0], N = IN0(n)->shape[1], B = n->iattr[0];
    cae_real *dx = IN0(n)->grad;
    const cae_real *G = n->out.grad;
    CAEK_FOR_ROWS(R, N * B, NT(n), {
        cae_real *d = dx + b * N;
        for (int64_t r = 0; r < B; r++) {
            const cae_real *gr = G + (b * B + r) * N;
            _Pragma("omp simd")
            for (int64_t j = 0; j < N; j++) d[j] += gr[j];
        }
    });
}

static cae_node *repeat_tangent(cae_graph *g, cae_node *n, cae_node *const *t)
{   /* linear, and rows stay in blocks: direction k's block of R rows
     * becomes a block of R B rows */
    return cae_repeat_rows(g, t[0], n->iattr[0]);
}

static const cae_op repeat_op = {.name = "repeat_rows", .n_in = 1, .infer = repeat_infer,
                                 .forward = repeat_fwd, .backward = repeat_bwd,
                                 .tangent = repeat_tangent};

cae_node *cae_repeat_rows(cae_graph *g, cae_node *x, int64_t B)
{
    const cae_attr at = {.i = {B}};
    return cae_node_new_attr(g, &repeat_op, (cae_node *[]){x}, &at, NULL);
}

/* ------------------------------------------------------------- reshape */
/* The new shape's dimensions in iattr[0..2] (up to rank 3), its rank in
 * fattr[0]. */

static int reshape_infer(cae_node *n)
{
    const int rank = (int)n->fattr[0];
    if (rank < 0 || rank > 3) return cae_node_fail(n, "rank %d (reshape keeps up to 3 dimensions)", rank);
    n->out.rank = rank;
    for (int d = 0; d < rank; d++) n->out.shape[d] = n->iattr[d];
    const int64_t size = cae_shape_size(rank, n->out.shape);
    if (size != IN0(n)->size) {
        char sx[64], so[64];
        return cae_node_fail(n, "%s has %lld values, the shape %s %lld",
                             cae_shape_str(IN0(n), sx, sizeof sx), (long long)IN0(n)->size,
                             cae_shape_str(&n->out, so, sizeof so), (long long)size);
    }
    return 0;
}

static void reshape_fwd(cae_node *n)
{
    memcpy(n->out.data, IN0(n)->data, (size_t)n->out.size * sizeof(cae_real));
}

static void reshape_bwd(cae_node *n)
{
    if (!cae_needs_grad(n->in[0])) return;
    caek_add_scalar_backward(IN0(n)->grad, n->out.grad, n->out.size, NT(n));
}

static cae_node *reshape_tangent(cae_graph *g, cae_node *n, cae_node *const *t)
{   /* each direction's block reshaped in place: the first dimension (or,
     * for a scalar, a new one) counts K blocks */
    const int64_t K = cae_tangent_dirs(n->in[0], t[0]);
    int64_t shape[3];
    int rank = n->out.rank;
    for (int d = 0; d < rank; d++) shape[d] = n->out.shape[d];
    if (K > 1) {
        if (rank == 0) shape[rank++] = K;
        else shape[0] *= K;
    }
    return cae_reshape(g, t[0], rank, shape);
}

static const cae_op reshape_op = {.name = "reshape", .n_in = 1, .infer = reshape_infer,
                                  .forward = reshape_fwd, .backward = reshape_bwd,
                                  .tangent = reshape_tangent};

cae_node *cae_reshape(cae_graph *g, cae_node *x, int rank, const int64_t *shape)
{
    cae_attr at = {.f = {rank}};
    for (int d = 0; d < rank && d < 3; d++) at.i[d] = shape[d];
    if (rank > 3) at.f[0] = rank; /* refused by infer */
    return cae_node_new_attr(g, &reshape_op, (cae_node *[]){x}, &at, NULL);
}
