/* Sampling chains (cae/sample.h) as graphs run step after step, and the
 * Parzen-window log-likelihood over GEMM distances. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <omp.h>

#include "cae/gemm.h"
#include "cae/jvp.h"
#include "cae/ops.h"
#include "cae/sample.h"

void cae_sample_config_default(cae_sample_config *c)
{
    memset(c, 0, sizeof *c);
    c->chains = 10;
    c->steps = 100;
    c->every = 10;
    c->sigma = 0.1;
    c->seed = 1;
}

int cae_sample_records(const cae_sample_config *c)
{
    return c->every > 0 ? c->steps / c->every : 0;
}

static cae_node *param(cae_graph *g, cae_params *p, int layer, const char *what)
{
    cae_tensor *t = cae_layer_tensor(p, layer, what);
    if (!t) cae_graph_fail(g, "sample: the store has no 'L%d.%s'", layer, what);
    return t ? cae_param(g, t) : NULL;
}

cae_node *cae_sample_step(cae_graph *g, cae_params *p, const cae_model_info *info, cae_node *x,
                          cae_node *e, cae_node **jjte)
{
    const int L = info->n_layers;
    if (jjte) *jjte = NULL;
    if (!g || !x || !e) return NULL;
    if (L < 1 || L > CAE_MAX_LAYERS) {
        cae_graph_fail(g, "sample: a stack of %d layers", L);
        return NULL;
    }
    cae_node *a[CAE_MAX_LAYERS], *h[CAE_MAX_LAYERS];
    cae_node *z = x;
    for (int l = 1; l <= L; l++) {
        h[l - 1] = cae_encoder(g, p, l, info->layer[l - 1].act, z, &a[l - 1]);
        z = h[l - 1];
    }
    /* u = J^T e by the reverse chain through the layers. */
    cae_node *u = e;
    for (int l = L; l >= 1; l--) {
        u = cae_mul(g, u, cae_activation_derivative(g, a[l - 1], h[l - 1], info->layer[l - 1].act));
        u = cae_matmul(g, u, param(g, p, l, "W"), 0, 1); /* times W_l^T */
    }
    cae_node *Ju = NULL; /* J (J^T e) by forward mode */
    if (!u || cae_jvp(g, 1, &h[L - 1], 1, &x, &u, &Ju)) return NULL;
    if (jjte) *jjte = Ju;
    z = cae_add(g, h[L - 1], Ju);
    for (int l = L; l >= 1; l--) { /* decode down the stack */
        const cae_layer_config *c = &info->layer[l - 1];
        cae_node *logits = c->untied ? cae_affine(g, z, param(g, p, l, "Wd"), param(g, p, l, "c"), 0)
                                     : cae_affine(g, z, param(g, p, l, "W"), param(g, p, l, "c"), 1);
        z = cae_sigmoid(g, logits);
    }
    return z;
}

/* One step of block Gibbs sampling in an RBM: returns p(v|h); *next = v. */
static cae_node *rbm_step_graph(cae_graph *g, cae_params *p, cae_node *v, cae_node **next)
{
    cae_node *W = param(g, p, 1, "W");
    cae_node *h = cae_bernoulli(g, cae_sigmoid(g, cae_affine(g, v, W, param(g, p, 1, "b"), 0)));
    cae_node *pv = cae_sigmoid(g, cae_affine(g, h, W, param(g, p, 1, "c"), 1));
    *next = cae_bernoulli(g, pv);
    return pv;
}

cae_status cae_sample(cae_params *p, const cae_model_info *info, const cae_real *start,
                      const cae_sample_config *c, cae_real *out, cae_error *err)
{
    if (!p || !info || !start || !c || !out)
        return cae_error_set(err, CAE_ERR_ARG, "sample: a NULL argument");
    if (info->n_layers < 1 || info->n_classes > 0 || info->kind == CAE_MODEL_MLP)
        return cae_error_set(err, CAE_ERR_ARG, "sample: needs a pretrained stack (not a classifier)");
    if (c->chains < 1 || c->steps < 1 || c->every < 1 || c->every > c->steps || !(c->sigma >= 0))
        return cae_error_set(err, CAE_ERR_ARG, "sample: %lld chains, %d steps, every %d, sigma %g: "
                             "needs chains >= 1, 1 <= every <= steps, sigma >= 0",
                             (long long)c->chains, c->steps, c->every, c->sigma);
    const int rbm = info->layer[info->n_layers - 1].kind == CAE_MODEL_RBM;
    if (rbm && info->n_layers != 1)
        return cae_error_set(err, CAE_ERR_ARG, "sample: an rbm's chain needs a single rbm layer");
    const int64_t C = c->chains, D = info->layer[0].n_in;
    cae_graph *g = cae_graph_new(p, C);
    if (!g) return cae_error_set(err, CAE_ERR_NOMEM, "sample: out of memory");
    cae_graph_set_threads(g, c->threads);
    cae_graph_set_no_grad(g, 1);
    cae_graph_seed(g, c->seed);
    cae_node *x = cae_input(g, "x", 2, (int64_t[]){C, D}), *next = NULL;
    cae_node *mean;
    if (rbm) {
        mean = rbm_step_graph(g, p, x, &next);
    } else { /* e ~ N(0, sigma^2 I) in the top code, drawn at every step */
        const int64_t H = info->layer[info->n_layers - 1].n_hidden;
        cae_node *e = cae_scale(g, cae_probes(g, cae_const(g, "shape", 2, (int64_t[]){C, H}, 0), 1,
                                              CAE_PROBE_GAUSSIAN), (cae_real)c->sigma);
        mean = cae_sample_step(g, p, info, x, e, NULL);
        next = c->bernoulli ? cae_bernoulli(g, mean) : mean;
    }
    if (next) cae_graph_output(g, next);
    if (cae_graph_compile(g, mean)) {
        const cae_status st = cae_error_set(err, CAE_ERR_COMPILE, "sample: %s", cae_graph_error(g));
        cae_graph_free(g);
        return st;
    }
    cae_real *state = cae_node_value(x)->data;
    memcpy(state, start, (size_t)(C * D) * sizeof(cae_real));
    int r = 0;
    for (int s = 1; s <= c->steps; s++) {
        cae_graph_forward(g);
        memcpy(state, cae_node_value(next)->data, (size_t)(C * D) * sizeof(cae_real));
        if (s % c->every == 0 && r < cae_sample_records(c))
            memcpy(out + (int64_t)r++ * C * D, cae_node_value(mean)->data,
                   (size_t)(C * D) * sizeof(cae_real));
    }
    cae_graph_free(g);
    return CAE_OK;
}

/* ------------------------------------------------------ Parzen windows */

cae_status cae_parzen(const cae_real *samples, int64_t n, const cae_dataset *d, int64_t limit,
                      const double *sigmas, int n_sigma, int threads, double *mean, double *se,
                      cae_error *err)
{
    enum { BLOCK = 128 };
    if (!samples || n < 1 || !d || n_sigma < 1)
        return cae_error_set(err, CAE_ERR_ARG, "parzen: no samples, no data or no width");
    for (int k = 0; k < n_sigma; k++)
        if (!(sigmas[k] > 0))
            return cae_error_set(err, CAE_ERR_ARG, "parzen: width %g is not > 0", sigmas[k]);
    const int64_t D = d->dim, m = limit > 0 && limit < d->n ? limit : d->n;
    if (threads <= 0) threads = omp_get_max_threads();
    cae_gemm full, last;
    const int64_t rem = m % BLOCK;
    if (cae_gemm_plan(&full, BLOCK, n, D, 0, 1, 0) || (rem && cae_gemm_plan(&last, rem, n, D, 0, 1, 0)))
        return cae_error_set(err, CAE_ERR_KERNEL, "parzen: no GEMM kernel for %lld samples", (long long)n);
    cae_real *G = cae_alloc_reals((size_t)(BLOCK * n)), *xb = cae_alloc_reals((size_t)(BLOCK * D));
    cae_real *scratch = cae_alloc_reals(cae_gemm_scratch_bound(BLOCK, n, D, 0, 1) + 1);
    double *ss = malloc((size_t)n * sizeof *ss), *sum = calloc((size_t)n_sigma, sizeof *sum),
           *sum2 = calloc((size_t)n_sigma, sizeof *sum2),
           *ll = malloc((size_t)(BLOCK * n_sigma) * sizeof *ll);
    cae_status rc = CAE_OK;
    if (!G || !xb || !scratch || !ss || !sum || !sum2 || !ll) {
        rc = cae_error_set(err, CAE_ERR_NOMEM, "parzen: out of memory for %lld samples", (long long)n);
        goto done;
    }
    for (int64_t i = 0; i < n; i++) {
        double s = 0;
        for (int64_t j = 0; j < D; j++) s += (double)samples[i * D + j] * samples[i * D + j];
        ss[i] = s;
    }
    for (int64_t s0 = 0; s0 < m; s0 += BLOCK) {
        const int64_t rows = m - s0 < BLOCK ? m - s0 : BLOCK;
        cae_dataset_copy_rows(d, s0, rows, xb);
        cae_gemm_run(rows == BLOCK ? &full : &last, xb, samples, G, scratch, threads);
#pragma omp parallel for schedule(dynamic) num_threads(threads)
        for (int64_t r = 0; r < rows; r++) {
            double xx = 0;
            for (int64_t j = 0; j < D; j++) xx += (double)xb[r * D + j] * xb[r * D + j];
            const cae_real *gr = G + r * n;
            for (int k = 0; k < n_sigma; k++) {
                const double inv = 1 / (2 * sigmas[k] * sigmas[k]);
                double mx = -INFINITY;
                for (int64_t i = 0; i < n; i++) {
                    const double e = -(xx + ss[i] - 2 * (double)gr[i]) * inv;
                    mx = e > mx ? e : mx;
                }
                double acc = 0;
                for (int64_t i = 0; i < n; i++) acc += exp(-(xx + ss[i] - 2 * (double)gr[i]) * inv - mx);
                ll[r * n_sigma + k] = mx + log(acc) - log((double)n) -
                                      0.5 * (double)D * log(2 * M_PI * sigmas[k] * sigmas[k]);
            }
        }
        for (int64_t r = 0; r < rows; r++) /* in order: the same sums on any thread count */
            for (int k = 0; k < n_sigma; k++) {
                sum[k] += ll[r * n_sigma + k];
                sum2[k] += ll[r * n_sigma + k] * ll[r * n_sigma + k];
            }
    }
    for (int k = 0; k < n_sigma; k++) {
        mean[k] = sum[k] / (double)m;
        se[k] = sqrt(fmax(0, sum2[k] / (double)m - mean[k] * mean[k]) / (double)m);
    }
done:
    cae_free(G);
    cae_free(xb);
    cae_free(scratch);
    free(ss);
    free(sum);
    free(sum2);
    free(ll);
    return rc;
}
