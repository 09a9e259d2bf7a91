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
#include "ops/vnormal.h"

/* ------------------------------------------------------------ kernels */

void caek_gaussian_noise_forward(cae_real *out, const cae_real *x,
                                 cae_real sigma, uint64_t key, int64_t n,
                                 int nt)
{   /* out, x: n */
    CAEK_FOR(n, nt, out[i] = x[i] + sigma * (cae_real)cae_vnormal(key, (uint64_t)i));
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

/* mask_like(t, m): t times the mask the mask_noise node m drew on its
 * last forward, the mask tiled over t's K blocks (t is K times m's size):
 * the tangent of mask_noise, and differentiable itself. m is an input for
 * the order of the tape only: no gradient flows to it. */
static int mask_like_infer(cae_node *n)
{
    const cae_tensor *t = &n->in[0]->out, *m = &n->in[1]->out;
    if (m->size < 1 || t->size % m->size)
        return cae_node_fail(n, "%lld values are not copies of the mask's %lld", (long long)t->size,
                             (long long)m->size);
    return cae_node_same_shape(n, 0);
}
static void mask_like_fwd(cae_node *n)
{
    const cae_real *t = IN0(n)->data, *mask = n->in[1]->scratch;
    const int64_t m = n->in[1]->out.size;
    cae_real *out = n->out.data;
    CAEK_FOR(n->out.size, NT(n), out[i] = t[i] * mask[i % m]);
}
static void mask_like_bwd(cae_node *n)
{
    if (!cae_needs_grad(n->in[0])) return;
    const cae_real *G = n->out.grad, *mask = n->in[1]->scratch;
    const int64_t m = n->in[1]->out.size;
    cae_real *dt = IN0(n)->grad;
    CAEK_FOR(n->out.size, NT(n), dt[i] += G[i] * mask[i % m]);
}
static cae_node *mask_like_tan(cae_graph *g, cae_node *n, cae_node *const *t);
static const cae_op mask_like_op = {.name = "mask_like", .n_in = 2, .infer = mask_like_infer,
                                    .forward = mask_like_fwd, .backward = mask_like_bwd,
                                    .tangent = mask_like_tan};
static cae_node *mask_like(cae_graph *g, cae_node *t, cae_node *mask_node)
{
    /* no gradient to the mask node: the graph looks past this node for it */
    return cae_node_new_builtin(g, &mask_like_op, (cae_node *[]){t, mask_node}, NULL, NULL, 0,
                                1u << 1);
}

/* ------------------------------------------------------ tangent rules */

static cae_node *gauss_tan(cae_graph *g, cae_node *n, cae_node *const *t)
{   /* x + noise: the noise is a constant draw */
    (void)g;
    (void)n;
    return t[0];
}
static cae_node *mask_tan(cae_graph *g, cae_node *n, cae_node *const *t)
{
    return mask_like(g, t[0], n);
}
static cae_node *mask_like_tan(cae_graph *g, cae_node *n, cae_node *const *t)
{   /* linear in t; the mask is a constant */
    if (!t[0]) return NULL;
    if (cae_tangent_dirs(n->in[0], t[0]) > 1) {
        cae_node_fail(n, "forward mode: a tangent of a tangent with several directions");
        return NULL;
    }
    return mask_like(g, t[0], n->in[1]);
}
static cae_node *zero_tan(cae_graph *g, cae_node *n, cae_node *const *t)
{   /* no derivative flows through (stop_grad), or none exists (probes) */
    (void)g;
    (void)n;
    (void)t;
    return NULL;
}

/* probes: iattr[0] = K, iattr[1] = kind; in: x (B x D, for the shape). */
static int probes_infer(cae_node *n)
{
    if (cae_ops_rank(n, 0, 2)) return -1;
    if (n->iattr[0] < 1) return cae_node_fail(n, "K = %lld probes", (long long)n->iattr[0]);
    if (n->iattr[1] != CAE_PROBE_GAUSSIAN && n->iattr[1] != CAE_PROBE_RADEMACHER)
        return cae_node_fail(n, "unknown probe kind %lld", (long long)n->iattr[1]);
    cae_node_same_shape(n, 0);
    n->out.shape[0] *= n->iattr[0];
    return 0;
}
static void probes_fwd(cae_node *n)
{
    const uint64_t key = cae_rng_next(cae_graph_rng(n->graph));
    cae_real *out = n->out.data;
    if (n->iattr[1] == CAE_PROBE_GAUSSIAN)
        CAEK_FOR(n->out.size, NT(n), out[i] = (cae_real)cae_vnormal(key, (uint64_t)i));
    else
        CAEK_FOR(n->out.size, NT(n),
                 out[i] = cae_rng_hash_uniform(key, (uint64_t)i) < 0.5 ? (cae_real)-1 : (cae_real)1);
}

/* bernoulli: out_i = [U_i < p_i], one key per forward. */
static void bernoulli_fwd(cae_node *n)
{
    const uint64_t key = cae_rng_next(cae_graph_rng(n->graph));
    const cae_real *pr = IN0(n)->data;
    cae_real *out = n->out.data;
    CAEK_FOR(n->out.size, NT(n), out[i] = cae_rng_hash_uniform(key, (uint64_t)i) < (double)pr[i] ? 1 : 0);
}

static const cae_op gauss_op = {.name = "gaussian_noise", .n_in = 1, .infer = same_infer,
                                .forward = gauss_fwd, .backward = pass_bwd, .tangent = gauss_tan};
static const cae_op mask_op = {.name = "mask_noise", .n_in = 1, .infer = same_infer,
                               .plan = mask_plan, .forward = mask_fwd, .backward = mask_bwd,
                               .tangent = mask_tan};
static const cae_op stop_op = {.name = "stop_grad", .n_in = 1, .infer = same_infer,
                               .forward = stop_fwd, .tangent = zero_tan};
static const cae_op bernoulli_op = {.name = "bernoulli", .n_in = 1, .infer = same_infer,
                                    .forward = bernoulli_fwd, .tangent = zero_tan};
static const cae_op probes_op = {.name = "probes", .n_in = 1, .infer = probes_infer,
                                 .forward = probes_fwd, .tangent = zero_tan};

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
cae_node *cae_bernoulli(cae_graph *g, cae_node *p)
{
    return cae_node_new(g, &bernoulli_op, (cae_node *[]){p}, NULL);
}
cae_node *cae_probes(cae_graph *g, cae_node *x, int64_t K, cae_probe_kind kind)
{
    const cae_attr at = {.i = {K, kind}};
    return cae_node_new_attr(g, &probes_op, (cae_node *[]){x}, &at, "probes");
}
