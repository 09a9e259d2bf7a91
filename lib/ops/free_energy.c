/* free_energy: a binary RBM's free energy summed over a batch, as one node.
 *
 *   in: v (B x D), a = v W + b (B x H), c (D, the visible bias)
 *   out = sum_b F(v_b) = -sum_b v_b . c - sum_{b,j} softplus(a_bj)
 *
 * The same value as the six nodes it replaces (mul_row, sum, softplus,
 * sum, add, scale by -1; see cae_free_energy_composed in the tests), in
 * one pass over a and v instead of six: the RBM's step builds it twice.
 *
 * Gradients, with g the output's gradient and s = -g:
 *   d/da = s sigmoid(a)      d/dv = s c (every row)      d/dc = s sum_b v_b
 * sigmoid(a) comes from the forward's e^-|a|, kept in scratch when a gets a
 * gradient, so the backward is one scaled copy. Each gradient has the bits
 * of the composed nodes' (the same expressions in the same order: dc is
 * summed over rows in order by cae_ops_col_acc_s, mul_row's by
 * cae_ops_col_acc, one loop); the value may differ from theirs in its last
 * bits (the sums are grouped otherwise). */
#include <tgmath.h>

#include "cae/op.h"
#include "cae/ops.h"
#include "ops/ewise.h"
#include "ops/vmath.h"

#define IN(n, i) (&(n)->in[i]->out)
#define NT(n) cae_node_threads(n)

static int fe_infer(cae_node *n)
{
    const cae_tensor *v = IN(n, 0), *a = IN(n, 1), *c = IN(n, 2);
    if (cae_ops_rank(n, 0, 2) || cae_ops_rank(n, 1, 2) || cae_ops_rank(n, 2, 1)) return -1;
    if (a->shape[0] != v->shape[0] || c->shape[0] != v->shape[1]) {
        char sv[64], sa[64], sc[64];
        return cae_node_fail(n, "v %s, a %s and c %s: a needs v's rows, c one value per column of v",
                             cae_shape_str(v, sv, sizeof sv), cae_shape_str(a, sa, sizeof sa),
                             cae_shape_str(c, sc, sizeof sc));
    }
    return cae_node_scalar(n);
}

/* scratch: B row sums (double), then sigmoid(a) (B x H) when a gets a
 * gradient. */
static int fe_plan(cae_node *n) { return cae_ops_plan_kept(n, 1); }

enum { LANES = 16 };

static void fe_fwd(cae_node *n)
{
    const cae_tensor *v = IN(n, 0), *a = IN(n, 1);
    const cae_real *c = IN(n, 2)->data;
    const int64_t B = v->shape[0], D = v->shape[1], H = a->shape[1];
    double *part = n->scratch;
    cae_real *sig = cae_ops_kept(n);
    CAEK_FOR_ROWS(B, D + H, NT(n), {
        const cae_real *vr = v->data + b * D, *ar = a->data + b * H;
        cae_real *sr = sig ? sig + b * H : NULL;
        /* LANES partial sums in the real type (vectorizes), then in double */
        cae_real vis[LANES] = {0}, hid[LANES] = {0};
        int64_t j = 0;
        for (; j + LANES <= D; j += LANES) {
            _Pragma("omp simd")
            for (int k = 0; k < LANES; k++) vis[k] += vr[j + k] * c[j + k];
        }
        double s = 0;
        for (; j < D; j++) s += (double)(vr[j] * c[j]);
        j = 0;
        if (sr) {
            for (; j + LANES <= H; j += LANES) {
                _Pragma("omp simd")
                for (int k = 0; k < LANES; k++) {
                    const cae_real x = ar[j + k], e = cae_vexp(-fabs(x));
                    sr[j + k] = cae_vsigmoid_e(x, e);
                    hid[k] += cae_vsoftplus_e(x, e);
                }
            }
        } else {
            for (; j + LANES <= H; j += LANES) {
                _Pragma("omp simd")
                for (int k = 0; k < LANES; k++) {
                    const cae_real x = ar[j + k];
                    hid[k] += cae_vsoftplus_e(x, cae_vexp(-fabs(x)));
                }
            }
        }
        for (; j < H; j++) {
            const cae_real x = ar[j], e = cae_vexp(-fabs(x));
            if (sr) sr[j] = cae_vsigmoid_e(x, e);
            s += (double)cae_vsoftplus_e(x, e);
        }
        for (int k = 0; k < LANES; k++) s += (double)vis[k] + (double)hid[k];
        part[b] = s;
    });
    double total = 0;
    for (int64_t b = 0; b < B; b++) total += part[b];
    n->out.data[0] = (cae_real)-total;
}

static void fe_bwd(cae_node *n)
{
    const cae_tensor *v = IN(n, 0), *a = IN(n, 1), *c = IN(n, 2);
    const int64_t B = v->shape[0], D = v->shape[1], H = a->shape[1];
    const cae_real s = -n->out.grad[0];
    const int nt = NT(n);
    if (a->grad) {
        const cae_real *sig = cae_ops_kept(n);
        CAE_ASSERT(sig || B * H == 0, "free_energy: a has a gradient but the plan kept no sigmoid(a)");
        CAEK_PUT(B * H, nt, cae_node_stores(n, 1), a->grad, s * sig[i]);
    }
    if (v->grad) {
        cae_real *dv = v->grad;
        const cae_real *cv = c->data;
        const int store = cae_node_stores(n, 0);
        CAEK_FOR_ROWS(B, D, nt, {
            cae_real *d = dv + b * D;
            if (store) {
                _Pragma("omp simd")
                for (int64_t j = 0; j < D; j++) d[j] = 0 + s * cv[j]; /* +0 where it is 0 */
            } else {
                _Pragma("omp simd")
                for (int64_t j = 0; j < D; j++) d[j] += s * cv[j];
            }
        });
    }
    if (c->grad) /* dc[j] (+)= sum_b s v[b,j], rows in order */
        cae_ops_col_acc_s(c->grad, NULL, s, v->data, B, D, nt, cae_node_stores(n, 2));
}

/* -(sum_b v_b' . c + sum_b v_b . c' + sum sigmoid(a) a'); c's tangent, a
 * vector broadcast over rows, has one direction (as mul_row's). */
static cae_node *fe_tan(cae_graph *g, cae_node *n, cae_node *const *t)
{
    cae_node *v = n->in[0], *a = n->in[1], *c = n->in[2];
    if (t[2] && cae_tangent_dirs(c, t[2]) != 1) {
        cae_node_fail(n, "forward mode: the tangent of its vector c has %lld directions; "
                         "a broadcast vector's tangent has one",
                      (long long)cae_tangent_dirs(c, t[2]));
        return NULL;
    }
    cae_node *sum = NULL;
    if (t[0]) {
        const int64_t K = cae_tangent_dirs(v, t[0]);
        sum = cae_ops_dir_sum(g, cae_mul_row(g, t[0], c), K);
    }
    if (t[1]) {
        const int64_t K = cae_tangent_dirs(a, t[1]);
        cae_node *s = cae_tangent_lift(g, cae_sigmoid(g, a), K);
        sum = cae_tangent_sum(g, n, sum, cae_ops_dir_sum(g, cae_mul(g, s, t[1]), K));
    }
    if (t[2]) sum = cae_tangent_sum(g, n, sum, cae_sum(g, cae_mul_row(g, v, t[2])));
    return sum ? cae_scale(g, sum, -1) : NULL;
}

static const cae_op fe_op = {.name = "free_energy", .n_in = 3, .infer = fe_infer,
                             .plan = fe_plan, .forward = fe_fwd, .backward = fe_bwd,
                             .tangent = fe_tan};

cae_node *cae_free_energy(cae_graph *g, cae_node *v, cae_node *a, cae_node *c)
{   /* may store every input's gradient */
    return cae_node_new_builtin(g, &fe_op, (cae_node *[]){v, a, c}, NULL, NULL, 7u, 0);
}
