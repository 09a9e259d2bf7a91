/* Noise ops and stop_grad. gaussian_noise and mask_noise make a fresh draw
 * on every forward: one 64-bit key from the graph's RNG, then element i's
 * value is the counter-based cae_rng_hash_*(key, i), so the draw depends on
 * the seed and the number of forwards, never on the thread count. The mask
 * of the last forward stays in the node's scratch for backward (and
 * cae_gradcheck replays the RNG state, so a checked graph sees one draw). */
#include "cae/kernels.h"
#include "cae/op.h"
#include "cae/ops.h"
#include "cae/rng.h"
#include "ops/ewise.h"

/* ------------------------------------------------------------ kernels */

void caek_gaussian_noise_forward(cae_real *out, const cae_real *x,
                                 cae_real sigma, uint64_t key, int64_t n,
                                 int nt)
{   /* out, x: n */
    CAEK_FOR(n, nt, out[i] = x[i] + sigma * (cae_real)cae_rng_hash_normal(key, (uint64_t)i));
}

void caek_mask_noise_forward(cae_real *out, cae_real *mask, const cae_real *x,
                             cae_real nu, uint64_t key, int64_t n, int nt)
{   /* out, mask, x: n */
    CAEK_FOR(n, nt, {
        mask[i] = cae_rng_hash_uniform(key, (uint64_t)i) >= (double)nu ? 1 : 0;
        out[i] = x[i] * mask[i];
    });
}

void caek_mask_noise_backward(cae_real *dx, const cae_real *dout,
                              const cae_real *mask, int64_t n, int nt)
{   /* dx, dout, mask: n */
    CAEK_FOR(n, nt, dx[i] += dout[i] * mask[i]);
}

/* -------------------------------------------------------------- nodes */

#define IN0(n) (&(n)->in[0]->out)
#define NT(n) cae_node_threads(n)

/* sigma or nu in fattr[0]. */
static int same_infer(cae_node *n) { return cae_node_same_shape(n, 0); }
static void pass_bwd(cae_node *n)
{
    if (cae_needs_grad(n->in[0]))
        caek_add_scalar_backward(IN0(n)->grad, n->out.grad, n->out.size, NT(n));
}

static void gauss_fwd(cae_node *n)
{
    const uint64_t key = cae_rng_next(cae_graph_rng(n->graph));
    caek_gaussian_noise_forward(n->out.data, IN0(n)->data, (cae_real)n->fattr[0], key,
                                n->out.size, NT(n));
}

static int mask_plan(cae_node *n)
{
    n->scratch_bytes = (size_t)IN0(n)->size * sizeof(cae_real);
    return 0;
}
static void mask_fwd(cae_node *n)
{
    const uint64_t key = cae_rng_next(cae_graph_rng(n->graph));
    caek_mask_noise_forward(n->out.data, n->scratch, IN0(n)->data, (cae_real)n->fattr[0],
                            key, n->out.size, NT(n));
}
static void mask_bwd(cae_node *n)
{
    if (cae_needs_grad(n->in[0]))
        caek_mask_noise_backward(IN0(n)->grad, n->out.grad, n->scratch, n->out.size, NT(n));
}

/* stop_grad: a copy forward; the NULL backward means no gradient flows
 * through it (the tape keeps none for this node). */
static void stop_fwd(cae_node *n)
{
    const cae_real *x = IN0(n)->data;
    cae_real *out = n->out.data;
    CAEK_FOR(n->out.size, NT(n), out[i] = x[i]);
}

static const cae_op gauss_op = {.name = "gaussian_noise", .n_in = 1, .infer = same_infer,
                                .forward = gauss_fwd, .backward = pass_bwd};
static const cae_op mask_op = {.name = "mask_noise", .n_in = 1, .infer = same_infer,
                               .plan = mask_plan, .forward = mask_fwd, .backward = mask_bwd};
static const cae_op stop_op = {.name = "stop_grad", .n_in = 1, .infer = same_infer,
                               .forward = stop_fwd};

/* ------------------------------------------------------- constructors */

static cae_node *with_const(cae_graph *g, const cae_op *op, cae_node *x, cae_real c)
{
    const cae_attr attr = {.f = {c}};
    return cae_node_new_attr(g, op, (cae_node *[]){x}, &attr, NULL);
}

cae_node *cae_gaussian_noise(cae_graph *g, cae_node *x, cae_real sigma)
{
    return with_const(g, &gauss_op, x, sigma);
}
cae_node *cae_mask_noise(cae_graph *g, cae_node *x, cae_real nu)
{
    return with_const(g, &mask_op, x, nu);
}
cae_node *cae_stop_grad(cae_graph *g, cae_node *x)
{
    return cae_node_new(g, &stop_op, (cae_node *[]){x}, NULL);
}
