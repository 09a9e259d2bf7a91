/* The Manifold Tangent Classifier (cae/mtc.h): tangents by batched subspace
 * iteration, the tangent-propagation task and the provider of tangents. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <omp.h>

#include "cae/jvp.h"
#include "cae/mtc.h"
#include "cae/ops.h"
#include "models/lapack_internal.h"

/* ------------------------------------------------------------ float16 */

uint16_t cae_float_to_half(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    const uint32_t sign = (x >> 16) & 0x8000u, ab = x & 0x7fffffffu;
    if (ab >= 0x7f800000u) /* Inf or NaN (a quiet NaN keeps a payload bit) */
        return (uint16_t)(sign | 0x7c00u | (ab > 0x7f800000u ? 0x200u : 0));
    if (ab >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u); /* rounds beyond 65504 */
    if (ab < 0x38800000u) { /* a subnormal half, or zero */
        if (ab < 0x33000001u) return (uint16_t)sign;
        const uint32_t m = (ab & 0x7fffffu) | 0x800000u, e = ab >> 23;
        const uint32_t shift = 126 - e; /* |f| 2^24 = m 2^(e - 126): in units of 2^-24 */
        uint32_t h = m >> shift;
        const uint32_t rest = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rest > half || (rest == half && (h & 1))) h++;
        return (uint16_t)(sign | h);
    }
    uint32_t h = ((ab - 0x38000000u) >> 13); /* rebias 127 -> 15 */
    const uint32_t rest = ab & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1))) h++;
    return (uint16_t)(sign | h);
}

float cae_half_to_float(uint16_t h)
{
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
    uint32_t x;
    if (e == 0x1f) x = sign | 0x7f800000u | (m << 13);
    else if (e) x = sign | ((e + 112) << 23) | (m << 13);
    else if (!m) x = sign;
    else { /* subnormal: normalise */
        int k = 0;
        uint32_t mm = m;
        while (!(mm & 0x400u)) {
            mm <<= 1;
            k++;
        }
        x = sign | ((uint32_t)(113 - k) << 23) | ((mm & 0x3ffu) << 13);
    }
    float f;
    memcpy(&f, &x, 4);
    return f;
}

/* ------------------------------------------------------------ tangents */

void cae_tangent_config_default(cae_tangent_config *c)
{
    memset(c, 0, sizeof *c);
    c->dims = 10;
    c->oversample = 8;
    c->iterations = 6;
    c->seed = 1;
}

/* J^T J Q for R examples at once: x (R x D); Q ((k R) x D, direction-major)
 * -> out ((k R) x D). */
typedef struct jtj_graph {
    cae_graph *g;
    cae_node *x, *q, *out;
} jtj_graph;

static cae_status jtj_build(jtj_graph *j, cae_params *p, int depth, const cae_act *act, int64_t R,
                            int64_t k, int threads, cae_error *err)
{
    memset(j, 0, sizeof *j);
    const int64_t D = cae_layer_tensor(p, 1, "W")->shape[0];
    cae_graph *g = j->g = cae_graph_new(p, R);
    if (!g) return cae_error_set(err, CAE_ERR_NOMEM, "tangents: out of memory");
    cae_graph_set_threads(g, threads);
    cae_graph_set_no_grad(g, 1);
    j->x = cae_input(g, "x", 2, (int64_t[]){R, D});
    j->q = cae_input(g, "Q", 2, (int64_t[]){k * R, D});
    cae_node *a[CAE_MAX_LAYERS], *h[CAE_MAX_LAYERS], *z = j->x, *t = NULL;
    for (int l = 1; l <= depth; l++) z = h[l - 1] = cae_encoder(g, p, l, act[l - 1], z, &a[l - 1]);
    if (!cae_jvp(g, 1, &h[depth - 1], 1, &j->x, &j->q, &t)) { /* J Q, then J^T (J Q) */
        for (int l = depth; l >= 1; l--) {
            cae_node *d = cae_activation_derivative(g, a[l - 1], h[l - 1], act[l - 1]);
            t = cae_mul(g, t, cae_tangent_lift(g, d, k));
            t = cae_matmul(g, t, cae_param(g, cae_layer_tensor(p, l, "W")), 0, 1);
        }
    }
    j->out = t;
    if (cae_graph_compile(g, t)) {
        const cae_status st = cae_error_set(err, CAE_ERR_COMPILE, "tangents: %s", cae_graph_error(g));
        cae_graph_free(g);
        j->g = NULL;
        return st;
    }
    return CAE_OK;
}

static double dot(const cae_real *a, const cae_real *b, int64_t n)
{
    double s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t i = 0; i < n; i++) s += (double)a[i] * (double)b[i];
    return s;
}

/* Orthonormalise the k vectors of length D of example b (rows j R + b of
 * Q, direction-major): Gram-Schmidt twice (enough in float: Kahan), in
 * place; a vector that vanishes is replaced by a fresh random one. */
static void orthonormalize(cae_real *Q, int64_t R, int64_t b, int64_t k, int64_t D, cae_rng *rng)
{
    for (int64_t j = 0; j < k; j++) {
        cae_real *qj = Q + (j * R + b) * D;
        for (int tries = 0; tries < 4; tries++) {
            const double before = dot(qj, qj, D);
            for (int pass = 0; pass < 2; pass++)
                for (int64_t l = 0; l < j; l++) {
                    const cae_real *ql = Q + (l * R + b) * D;
                    const cae_real c = (cae_real)dot(qj, ql, D);
#pragma omp simd
                    for (int64_t i = 0; i < D; i++) qj[i] -= c * ql[i];
                }
            const double nrm = dot(qj, qj, D);
            if (nrm > 1e-12 * (before > 0 ? before : 1) && nrm > 0) {
                const cae_real inv = (cae_real)(1 / sqrt(nrm));
#pragma omp simd
                for (int64_t i = 0; i < D; i++) qj[i] *= inv;
                break;
            }
            for (int64_t i = 0; i < D; i++) qj[i] = (cae_real)cae_rng_normal(rng);
        }
    }
}

cae_status cae_tangents(cae_params *p, int depth, const cae_act *act, const cae_dataset *d,
                        int64_t n, const cae_tangent_config *c, uint16_t *out, cae_real *sv,
                        cae_error *err)
{
    const cae_tensor *W1 = cae_layer_tensor(p, 1, "W");
    if (!p || !act || !d || !c || !out || depth < 1 || depth > CAE_MAX_LAYERS || !W1)
        return cae_error_set(err, CAE_ERR_ARG, "tangents: needs layers 1..%d in the store", depth);
    const int64_t D = W1->shape[0], dims = c->dims;
    const int64_t Htop = cae_layer_tensor(p, depth, "W") ? cae_layer_tensor(p, depth, "W")->shape[1] : 0;
    if (d->dim != D)
        return cae_error_set(err, CAE_ERR_SHAPE, "tangents: the data has %lld inputs, the encoder %lld",
                             (long long)d->dim, (long long)D);
    if (dims < 1 || dims > D || c->oversample < 0 || c->iterations < 0 || n < 0 || n > d->n)
        return cae_error_set(err, CAE_ERR_ARG, "tangents: %lld tangents of %lld inputs, %lld of %lld "
                             "examples", (long long)dims, (long long)D, (long long)n, (long long)d->n);
    int64_t k = dims + c->oversample;
    if (k > D) k = D;
    if (k > Htop && Htop >= dims) k = Htop; /* J has rank <= its rows */
    const int64_t R = 64;
    jtj_graph j;
    cae_status rc = jtj_build(&j, p, depth, act, R, k, c->threads, err);
    if (rc) return rc;
    cae_syev_fn syev = NULL;
    void *lapack = cae_lapack_open("tangents", CAE_LAPACKE("syev"), c->threads, (void **)&syev, err);
    cae_real *X = cae_alloc_reals((size_t)(R * D)), *Q = cae_node_value(j.q)->data;
    cae_real *T = cae_alloc_reals((size_t)(k * k)), *w = cae_alloc_reals((size_t)k);
    cae_real *vrow = cae_alloc_reals((size_t)D);
    if (!lapack) {
        rc = err ? err->status : CAE_ERR_IO;
        goto done;
    }
    if (!X || !T || !w || !vrow) {
        rc = cae_error_set(err, CAE_ERR_NOMEM, "tangents: out of memory");
        goto done;
    }
    cae_input_bind(j.x, X);
    for (int64_t s0 = 0; s0 < n; s0 += R) {
        const int64_t m = n - s0 < R ? n - s0 : R;
        for (int64_t b = 0; b < R; b++) /* a last block padded with its first example */
            cae_dataset_copy_rows(d, s0 + (b < m ? b : 0), 1, X + b * D);
        const int th = c->threads > 0 ? c->threads : omp_get_max_threads();
#pragma omp parallel for schedule(static) num_threads(th)
        for (int64_t b = 0; b < R; b++) { /* a random start of each example's own */
            cae_rng r;
            cae_rng_seed(&r, c->seed, 0x74616e67ull ^ (uint64_t)(s0 + (b < m ? b : 0)) << 8);
            for (int64_t jj = 0; jj < k; jj++)
                for (int64_t i = 0; i < D; i++) Q[(jj * R + b) * D + i] = (cae_real)cae_rng_normal(&r);
            orthonormalize(Q, R, b, k, D, &r);
        }
        const cae_real *Z = cae_node_value(j.out)->data;
        for (int it = 0; it < c->iterations; it++) {
            cae_graph_forward(j.g);
            memcpy(Q, Z, (size_t)(k * R * D) * sizeof(cae_real));
#pragma omp parallel for schedule(static) num_threads(th)
            for (int64_t b = 0; b < m; b++) {
                cae_rng r;
                cae_rng_seed(&r, c->seed, 0x72657374ull ^ (uint64_t)(s0 + b) << 8);
                orthonormalize(Q, R, b, k, D, &r);
            }
        }
        cae_graph_forward(j.g); /* Z = J^T J Q: the Rayleigh-Ritz step */
        for (int64_t b = 0; b < m; b++) {
            for (int64_t r1 = 0; r1 < k; r1++)
                for (int64_t r2 = 0; r2 <= r1; r2++) {
                    const cae_real *q1 = Q + (r1 * R + b) * D, *z2 = Z + (r2 * R + b) * D;
                    const cae_real *q2 = Q + (r2 * R + b) * D, *z1 = Z + (r1 * R + b) * D;
                    const double s = 0.5 * (dot(q1, z2, D) + dot(q2, z1, D));
                    T[r1 * k + r2] = T[r2 * k + r1] = (cae_real)s;
                }
            if (syev(LAPACK_ROW_MAJOR, 'V', 'U', (lapack_int)k, T, (lapack_int)k, w)) {
                rc = cae_error_set(err, CAE_ERR_NUMERIC, "tangents: LAPACK syev failed at example %lld",
                                   (long long)(s0 + b));
                goto done;
            }
            for (int64_t t = 0; t < dims; t++) { /* eigenvalues ascend: the top ones last */
                const int64_t col = k - 1 - t;
                uint16_t *o = out + ((s0 + b) * dims + t) * D;
                memset(vrow, 0, (size_t)D * sizeof *vrow); /* V = Q U: column col of U */
                for (int64_t r1 = 0; r1 < k; r1++) {
                    const cae_real *q = Q + (r1 * R + b) * D, u = T[r1 * k + col];
#pragma omp simd
                    for (int64_t i = 0; i < D; i++) vrow[i] += u * q[i];
                }
                for (int64_t i = 0; i < D; i++) o[i] = cae_float_to_half((float)vrow[i]);
                if (sv) sv[(s0 + b) * dims + t] = (cae_real)sqrt(fmax(0, (double)w[col]));
            }
        }
    }
done:
    if (lapack) dlclose(lapack);
    cae_graph_free(j.g);
    cae_free(X);
    cae_free(T);
    cae_free(w);
    cae_free(vrow);
    return rc;
}

/* --------------------------------------------- the tangent classifier */


/* The encoder the tangents came from, in the task's buffers. */
static cae_tensor *snap(cae_params *b, int layer, const char *what)
{
    char name[40];
    snprintf(name, sizeof name, "mtc:L%d.%s", layer, what);
    return cae_params_get(b, name);
}

int cae_mtc_task_build(cae_graph *g, cae_task_io *io, const void *vctx)
{
    const cae_mtc_task_ctx *c = vctx;
    if (cae_mlp_task_build(g, io, &c->m)) return -1;
    /* buffers: the period of the tangents and the encoder they came from */
    if ((!cae_params_get(io->buffers, "mtc:period") &&
         !cae_params_add(io->buffers, "mtc:period", 1, (int64_t[]){1})) ||
        (!cae_params_get(io->buffers, "mtc:config") &&
         !cae_params_add(io->buffers, "mtc:config", 1, (int64_t[]){3}))) {
        cae_graph_fail(g, "mtc: %s", cae_params_error(io->buffers));
        return -1;
    }
    for (int l = 1; l <= c->m.n_layers; l++)
        for (int w = 0; w < 2; w++) {
            const char *what = w ? "b" : "W";
            const cae_tensor *t = cae_layer_tensor(io->params, l, what);
            char name[40];
            snprintf(name, sizeof name, "mtc:L%d.%s", l, what);
            if (!t || (!cae_params_get(io->buffers, name) &&
                       !cae_params_add(io->buffers, name, t->rank, t->shape))) {
                cae_graph_fail(g, "mtc: the buffer %s: %s", name,
                               t ? cae_params_error(io->buffers) : "no hidden layer in the store");
                return -1;
            }
        }
    cae_tensor *cfg = cae_params_get(io->buffers, "mtc:config"); /* what the run is */
    cfg->data[0] = (cae_real)c->dims;
    cfg->data[1] = (cae_real)c->beta;
    if (io->eval) return 0; /* the penalty trains; evaluation is the classifier's */
    /* beta sum_u ||J_o u||^2 / rows, o = softmax(logits), u the dims tangents */
    cae_node *o = cae_softmax(g, io->logits), *t = NULL;
    if (cae_jvp(g, 1, &o, 1, &io->x, &io->aux, &t)) return -1;
    cae_node *pen = cae_scale(g, cae_sum(g, cae_square(g, t)), (cae_real)(c->beta / (double)io->rows));
    io->loss = cae_add(g, io->loss, pen);
    return io->loss ? 0 : -1;
}

cae_task *cae_mtc_task(cae_params *p, const cae_mlp_config *m, int dims, double beta,
                       int64_t batch, uint64_t seed, int threads, cae_error *err)
{
    if (dims < 1 || !(beta >= 0)) {
        cae_error_set(err, CAE_ERR_ARG, "mtc: %d tangents, beta %g: needs >= 1 and >= 0", dims, beta);
        return NULL;
    }
    const cae_mtc_task_ctx c = {.m = *m, .dims = dims, .beta = beta};
    const cae_task_spec spec = {.name = "mlp+tangent-prop", .n_in = m->sizes[0],
                                .n_classes = m->n_classes, .build = cae_mtc_task_build, .ctx = &c,
                                .ctx_size = sizeof c, .aux_rows = dims, .aux_cols = m->sizes[0]};
    return cae_task_new(p, &spec, batch, seed, threads, err);
}

struct cae_mtc {
    cae_task *t;
    cae_params *p, *enc; /* the task's store; the encoder the tangents come from */
    cae_mlp_config m;
    const cae_dataset *train;
    int64_t n, D;
    cae_tangent_config c;
    int every;
    int period;          /* of the tangents held, -1 before the first */
    uint16_t *tan;       /* n x dims x D */
    double seconds;
};

void cae_mtc_free(cae_mtc *x)
{
    if (!x) return;
    cae_params_free(x->enc);
    free(x->tan);
    free(x);
}

double cae_mtc_seconds(const cae_mtc *x) { return x->seconds; }

cae_mtc *cae_mtc_new(cae_task *t, cae_params *p, const cae_mlp_config *m,
                     const cae_dataset *train, int64_t limit, const cae_tangent_config *c,
                     int every, cae_error *err)
{
    const int64_t n = limit > 0 && limit < train->n ? limit : train->n, D = m->sizes[0];
    if (!t || cae_task_aux(t) == NULL || every < 0 || train->dim != D) {
        cae_error_set(err, CAE_ERR_ARG, "mtc: needs the task of cae_mtc_task, data of %lld inputs "
                      "and every >= 0", (long long)D);
        return NULL;
    }
    const double bytes = (double)n * c->dims * (double)D * 2;
    if (bytes > 0.5 * (double)cae_memory_budget()) {
        cae_error_set(err, CAE_ERR_NOMEM, "mtc: %.2f GB of tangents (%lld examples x %d x %lld, float16) "
                      "is more than half this machine's memory", bytes / 1e9, (long long)n, c->dims,
                      (long long)D);
        return NULL;
    }
    cae_mtc *x = calloc(1, sizeof *x);
    if (!x || !(x->tan = malloc((size_t)bytes ? (size_t)bytes : 1)) || !(x->enc = cae_params_new())) {
        cae_mtc_free(x);
        cae_error_set(err, CAE_ERR_NOMEM, "mtc: out of memory for %.2f GB of tangents", bytes / 1e9);
        return NULL;
    }
    x->t = t;
    x->p = p;
    x->m = *m;
    x->train = train;
    x->n = n;
    x->D = D;
    x->c = *c;
    x->every = every;
    x->period = -1;
    cae_tensor *cfg = cae_params_get(cae_task_buffers(t), "mtc:config");
    if (cfg) cfg->data[2] = (cae_real)every; /* [0], [1]: the task's (cae_mtc_task_build) */
    for (int l = 1; l <= m->n_layers; l++)
        for (int w = 0; w < 2; w++) {
            const cae_tensor *s = cae_layer_tensor(p, l, w ? "b" : "W");
            char name[16];
            snprintf(name, sizeof name, "L%d.%s", l, w ? "b" : "W");
            if (!s || !cae_params_add(x->enc, name, s->rank, s->shape)) {
                cae_error_set(err, CAE_ERR_NOMEM, "mtc: the encoder's copy: %s", cae_params_error(x->enc));
                cae_mtc_free(x);
                return NULL;
            }
        }
    return x;
}

static double seconds_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The tangents of `period`: from the encoder kept in the buffers when they
 * hold that period (a resumed run), else from the hidden layers as they are
 * now, which the buffers then keep. */
static cae_status refresh(cae_mtc *x, int period, cae_error *err)
{
    cae_params *buf = cae_task_buffers(x->t);
    cae_tensor *pt = cae_params_get(buf, "mtc:period");
    const int kept = pt && (int)pt->data[0] == period + 1; /* stored as period + 1: 0 = none */
    for (int l = 1; l <= x->m.n_layers; l++)
        for (int w = 0; w < 2; w++) {
            const char *what = w ? "b" : "W";
            cae_tensor *s = snap(buf, l, what), *e = cae_layer_tensor(x->enc, l, what);
            const cae_tensor *live = cae_layer_tensor(x->p, l, what);
            if (!kept) memcpy(s->data, live->data, (size_t)s->size * sizeof(cae_real));
            memcpy(e->data, s->data, (size_t)s->size * sizeof(cae_real));
        }
    pt->data[0] = (cae_real)(period + 1);
    const double t0 = seconds_now();
    const cae_status rc = cae_tangents(x->enc, x->m.n_layers, x->m.act, x->train, x->n, &x->c,
                                       x->tan, NULL, err);
    x->seconds += seconds_now() - t0;
    if (!rc) x->period = period;
    return rc;
}

cae_status cae_mtc_aux(void *ctx, int epoch, const int64_t *index, int64_t rows, cae_real *out,
                       cae_error *err)
{
    cae_mtc *x = ctx;
    const int period = x->every > 0 ? epoch / x->every : 0;
    if (period != x->period) {
        const cae_status rc = refresh(x, period, err);
        if (rc) return rc;
    }
    const int64_t dims = x->c.dims, D = x->D;
    /* direction-major: row t rows + b is tangent t of the step's example b */
    for (int64_t b = 0; b < rows; b++) {
        if (index[b] < 0 || index[b] >= x->n)
            return cae_error_set(err, CAE_ERR_ARG, "mtc: example %lld has no tangents (%lld computed)",
                                 (long long)index[b], (long long)x->n);
        for (int64_t t = 0; t < dims; t++) {
            const uint16_t *src = x->tan + (index[b] * dims + t) * D;
            cae_real *dst = out + (t * rows + b) * D;
            for (int64_t i = 0; i < D; i++) dst[i] = (cae_real)cae_half_to_float(src[i]);
        }
    }
    return CAE_OK;
}
