/* gibbs: k steps of block Gibbs sampling in a binary RBM, as a node.
 *
 *   in: v (B x D), W (D x H), b (H, hidden bias), c (D, visible bias)
 *   each step: h ~ Bernoulli(sigmoid(v W + b)), v ~ Bernoulli(sigmoid(h W^T + c))
 *   out: the last v (B x D)
 *
 * Element i of a layer's sample is [U_i < p_i] with U_i the counter-based
 * cae_rng_hash_uniform(key, i): two keys per step from the graph's RNG, so
 * the sample depends on the seed and the number of forwards, never on the
 * thread count. The node has no backward: the sample is a constant to the
 * tape (the CD gradient of F(v0) - F(vk)). The two products are planned at
 * compile; h lives in scratch, and the output doubles as the visible layer
 * between steps.
 *
 * Persistent mode (PCD): with a chain (B x D) and a step counter (one
 * value), tensors that outlive the graph (a task's buffers), the sampling
 * starts from the chain — from v while the counter is 0 — and each forward
 * writes its sample back into the chain and counts itself.
 *
 * cae_gibbs_pre takes a = v W + b (an affine node the model has anyway: the
 * free energy of the data) instead of v and samples the first hidden layer
 * from it: one product fewer per step, bit for bit the same sample (the
 * same kernels, and the bias added by the same one rounding). In a training
 * step (cae/sgd.h) h W^T runs over the graph's copy of W^T. */
#include <stdint.h>
#include <string.h>

#include "cae/gemm.h"
#include "cae/ops.h"
#include "cae/rng.h"
#include "ops/ewise.h"
#include "ops/vmath.h"

typedef struct gibbs_plan {
    cae_gemm up, down, down_t;
    int has_down_t;
} gibbs_plan;

/* iattr: [0] k, [1] the step counter tensor (a pointer, persistent mode
 * only); pattr: the chain tensor (persistent mode), else NULL. */
static cae_tensor *chain_of(const cae_node *n) { return n->pattr; }
static cae_tensor *steps_of(const cae_node *n) { return (cae_tensor *)(intptr_t)n->iattr[1]; }

/* iattr[2]: input 0 is a = v W + b (B x H), not v. */
static int pre_of(const cae_node *n) { return n->iattr[2] != 0; }
static int64_t B_of(const cae_node *n) { return n->in[0]->out.shape[0]; }
static int64_t D_of(const cae_node *n) { return n->in[1]->out.shape[0]; }
static int64_t H_of(const cae_node *n) { return n->in[1]->out.shape[1]; }

static int gibbs_infer(cae_node *n)
{
    const cae_tensor *v = &n->in[0]->out, *W = &n->in[1]->out, *b = &n->in[2]->out,
                     *c = &n->in[3]->out;
    char sv[64], sw[64], sb[64], sc[64];
    cae_shape_str(v, sv, sizeof sv);
    cae_shape_str(W, sw, sizeof sw);
    cae_shape_str(b, sb, sizeof sb);
    cae_shape_str(c, sc, sizeof sc);
    const int pre = pre_of(n);
    if (v->rank != 2 || W->rank != 2 || b->rank != 1 || c->rank != 1 ||
        v->shape[1] != (pre ? W->shape[1] : W->shape[0]) || b->shape[0] != W->shape[1] ||
        c->shape[0] != W->shape[0])
        return cae_node_fail(n, "needs %s, W (D x H), b (H), c (D); got %s %s, W %s, b %s, c %s",
                             pre ? "a (B x H)" : "v (B x D)", pre ? "a" : "v", sv, sw, sb, sc);
    if (n->iattr[0] < 1) return cae_node_fail(n, "k = %lld Gibbs steps", (long long)n->iattr[0]);
    const cae_tensor *chain = chain_of(n), *steps = steps_of(n);
    if (!chain != !steps)
        return cae_node_fail(n, "persistent sampling needs both a chain and a step counter");
    if (chain && (chain->size != v->shape[0] * W->shape[0] || steps->size < 1))
        return cae_node_fail(n, "the persistent chain has %lld values, for %lld x %lld",
                             (long long)chain->size, (long long)v->shape[0],
                             (long long)W->shape[0]);
    n->out.rank = 2;
    n->out.shape[0] = v->shape[0];
    n->out.shape[1] = W->shape[0];
    return 0;
}

static int gibbs_plan_fn(cae_node *n)
{
    gibbs_plan *p = cae_node_state(n, sizeof *p);
    if (!p) return -1;
    const int64_t B = B_of(n), D = D_of(n), H = H_of(n);
    /* W's rows as 2 threads split them in a training step (cae/gemm.h) */
    const int64_t own = cae_node_owner_rows(n, 1); /* as the affine node's x W */
    if ((own ? cae_gemm_plan_ksplit(&p->up, B, H, D, own, 0)
             : cae_gemm_plan(&p->up, B, H, D, 0, 0, 0)) ||
        cae_gemm_plan(&p->down, B, D, H, 0, 1, 0))
        return cae_node_fail(n, "libxsmm dispatch failed for %lld rows", (long long)B);
    if (own && p->down.swap) (void)cae_gemm_own(&p->down, 0, own);
    size_t gs = p->up.scratch_reals > p->down.scratch_reals ? p->up.scratch_reals
                                                             : p->down.scratch_reals;
    if (B >= 2 && !cae_node_want_transpose(n, 1)) { /* h W^T over W^T: a direct product */
        if (cae_plan_over_transpose(&p->down_t, B, D, H, 0, own))
            return cae_node_fail(n, "libxsmm dispatch failed for %lld rows", (long long)B);
        gs = gs > p->down_t.scratch_reals ? gs : p->down_t.scratch_reals;
        p->has_down_t = 1;
    }
    n->scratch_bytes = cae_round_up((size_t)(B * H) * sizeof(cae_real), CAE_ALIGN) +
                       gs * sizeof(cae_real);
    return 0;
}

/* z (rows x cols) <- Bernoulli(sigmoid(z + bias)), element i drawn with
 * the hash of (key, i): vectorizes, and does not depend on the threads. */
static void sample_layer(cae_real *z, const cae_real *bias, int64_t rows, int64_t cols,
                         uint64_t key, int threads)
{
    CAEK_FOR_ROWS(rows, cols, threads, {
        cae_real *zr = z + b * cols;
        const uint64_t base = (uint64_t)(b * cols);
        _Pragma("omp simd")
        for (int64_t j = 0; j < cols; j++) {
            const cae_real pr = cae_vsigmoid(zr[j] + bias[j]);
            zr[j] = cae_rng_hash_uniform(key, base + (uint64_t)j) < (double)pr ? 1 : 0;
        }
    });
}

/* The same from a pre-activation that holds the bias already, into h. */
static void sample_pre(cae_real *h, const cae_real *a, int64_t rows, int64_t cols, uint64_t key,
                       int threads)
{
    CAEK_FOR_ROWS(rows, cols, threads, {
        const cae_real *ar = a + b * cols;
        cae_real *hr = h + b * cols;
        const uint64_t base = (uint64_t)(b * cols);
        _Pragma("omp simd")
        for (int64_t j = 0; j < cols; j++) {
            const cae_real pr = cae_vsigmoid(ar[j]);
            hr[j] = cae_rng_hash_uniform(key, base + (uint64_t)j) < (double)pr ? 1 : 0;
        }
    });
}

static void gibbs_forward(cae_node *n)
{
    const gibbs_plan *p = n->state;
    const int64_t B = B_of(n), D = D_of(n), H = H_of(n);
    const int th = cae_node_threads(n);
    const cae_real *W = n->in[1]->out.data, *b = n->in[2]->out.data, *c = n->in[3]->out.data;
    cae_real *h = n->scratch;
    cae_real *gs = (cae_real *)((char *)n->scratch +
                                cae_round_up((size_t)(B * H) * sizeof(cae_real), CAE_ALIGN));
    cae_tensor *chain = chain_of(n), *steps = steps_of(n);
    const int pre = pre_of(n), from_chain = chain && steps->data[0] > 0;
    const cae_real *v = pre ? NULL : n->in[0]->out.data;
    if (from_chain) v = chain->data;
    const cae_real *Wt = p->has_down_t ? cae_node_param_transpose(n, 1) : NULL;
    cae_rng *rng = cae_graph_rng(n->graph);
    for (int64_t s = 0; s < n->iattr[0]; s++) {
        if (v) {
            cae_gemm_run(&p->up, v, W, h, gs, th);
            sample_layer(h, b, B, H, cae_rng_next(rng), th);
        } else { /* the first step from the data: a = v W + b given */
            sample_pre(h, n->in[0]->out.data, B, H, cae_rng_next(rng), th);
        }
        if (Wt)
            cae_gemm_run(&p->down_t, h, Wt, n->out.data, gs, th);
        else
            cae_gemm_run(&p->down, h, W, n->out.data, gs, th);
        sample_layer(n->out.data, c, B, D, cae_rng_next(rng), th);
        v = n->out.data;
    }
    if (chain) {
        memcpy(chain->data, n->out.data, (size_t)(B * D) * sizeof(cae_real));
        steps->data[0] += 1;
    }
}

/* The sample is a constant: its tangent is zero, as its gradient is. */
static cae_node *gibbs_tangent(cae_graph *g, cae_node *n, cae_node *const *t)
{
    (void)g;
    (void)n;
    (void)t;
    return NULL;
}

static const cae_op gibbs_op = {.name = "gibbs", .n_in = 4, .infer = gibbs_infer,
                                .plan = gibbs_plan_fn, .forward = gibbs_forward,
                                .tangent = gibbs_tangent};

cae_node *cae_gibbs(cae_graph *g, cae_node *v, cae_node *W, cae_node *b, cae_node *c, int k,
                    cae_tensor *chain, cae_tensor *steps)
{
    cae_attr at = {.i = {k, (int64_t)(intptr_t)steps}, .p = chain};
    return cae_node_new_attr(g, &gibbs_op, (cae_node *[]){v, W, b, c}, &at, "gibbs");
}

cae_node *cae_gibbs_pre(cae_graph *g, cae_node *a, cae_node *W, cae_node *b, cae_node *c, int k,
                        cae_tensor *chain, cae_tensor *steps)
{
    cae_attr at = {.i = {k, (int64_t)(intptr_t)steps, 1}, .p = chain};
    return cae_node_new_attr(g, &gibbs_op, (cae_node *[]){a, W, b, c}, &at, "gibbs");
}
