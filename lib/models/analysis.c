/* Contraction curves, distance statistics and Jacobian spectra. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <errno.h>
#include <unistd.h>

#include "cae/analysis.h"
#include "cae/ops.h"
#include "models/encoder_internal.h"
#include "models/lapack_internal.h"

/* ----------------------------------------------------------- encoder net */

/* A public face of the shared batched encoder (models/encoder_internal.h). */
struct cae_encoder_net {
    cae_enc enc;
};

cae_encoder_net *cae_encoder_net_new(cae_params *p, int n_layers, const cae_act *act,
                                     int64_t batch, int threads, cae_error *err)
{
    if (n_layers < 1 || n_layers > CAE_MAX_LAYERS || batch < 1) {
        cae_error_set(err, CAE_ERR_ARG, "encoder: needs 1..%d layers and a batch >= 1", CAE_MAX_LAYERS);
        return NULL;
    }
    int64_t prev = -1;
    for (int k = 1; k <= n_layers; k++) {
        cae_tensor *W = cae_layer_tensor(p, k, "W");
        if (!W || !cae_layer_tensor(p, k, "b")) {
            cae_error_set(err, CAE_ERR_ARG, "encoder: the store has no layer %d (L%d.W, L%d.b)", k, k, k);
            return NULL;
        }
        if (prev >= 0 && W->shape[0] != prev) {
            cae_error_set(err, CAE_ERR_SHAPE, "encoder: layer %d takes %lld inputs, layer %d gives %lld", k,
                     (long long)W->shape[0], k - 1, (long long)prev);
            return NULL;
        }
        prev = W->shape[1];
    }
    cae_encoder_net *e = calloc(1, sizeof *e);
    if (!e) {
        cae_error_set(err, CAE_ERR_NOMEM, "encoder: out of memory");
        return NULL;
    }
    cae_enc_init(&e->enc, p, n_layers, act, cae_layer_tensor(p, 1, "W")->shape[0], -1, batch, threads);
    if (cae_enc_prepare(&e->enc, batch, err)) { /* a bad stack fails here */
        cae_encoder_net_free(e);
        return NULL;
    }
    return e;
}

void cae_encoder_net_free(cae_encoder_net *e)
{
    if (!e) return;
    cae_enc_free(&e->enc);
    free(e);
}

int64_t cae_encoder_net_inputs(const cae_encoder_net *e) { return e->enc.n_in; }
int64_t cae_encoder_net_outputs(const cae_encoder_net *e)
{
    return cae_layer_tensor(e->enc.p, e->enc.depth, "W")->shape[1];
}

cae_status cae_encoder_net_run(cae_encoder_net *e, const cae_real *x, int64_t n, cae_real *h, cae_error *err)
{
    const int64_t B = e->enc.batch, H = cae_encoder_net_outputs(e);
    for (int64_t s = 0; s < n; s += B) {
        const int64_t rows = n - s < B ? n - s : B;
        cae_enc_graph *eg = cae_enc_run(&e->enc, x + s * e->enc.n_in, rows, err);
        if (!eg) return err ? err->status : CAE_ERR_COMPILE;
        memcpy(h + s * H, cae_node_value(eg->h[e->enc.depth - 1])->data,
               (size_t)(rows * H) * sizeof(cae_real));
    }
    return CAE_OK;
}

/* ------------------------------------------------------ contraction curve */

cae_status cae_contraction_curve(cae_encoder_net *e, const cae_dataset *d, int64_t n_points,
                          const double *radii, int n_radii, uint64_t seed, double *mean,
                          double *sd, cae_error *err)
{
    if (d->dim != cae_encoder_net_inputs(e)) {
        return cae_error_set(err, CAE_ERR_SHAPE, "contraction: the data has %lld inputs, the encoder %lld",
                 (long long)d->dim, (long long)cae_encoder_net_inputs(e));
    }
    if (n_points > d->n) n_points = d->n;
    if (n_points < 1 || n_radii < 1) {
        return cae_error_set(err, CAE_ERR_ARG, "contraction: no points or no radii");
    }
    cae_real *own = NULL;
    const cae_real *X = cae_dataset_rows(d, 0, n_points, &own);
    if (!X) {
        return cae_error_set(err, CAE_ERR_NOMEM, "contraction: out of memory for %lld examples as reals",
                 (long long)n_points);
    }
    const int64_t D = cae_encoder_net_inputs(e), H = cae_encoder_net_outputs(e), n = n_points;
    cae_real *x1 = cae_alloc_reals((size_t)(n * D)), *u = cae_alloc_reals((size_t)(n * D));
    cae_real *h0 = cae_alloc_reals((size_t)(n * H)), *h1 = cae_alloc_reals((size_t)(n * H));
    cae_status rc = CAE_OK;
    if (!x1 || !u || !h0 || !h1) {
        rc = cae_error_set(err, CAE_ERR_NOMEM, "contraction: out of memory");
        goto done;
    }
    /* One direction per point, uniform on the unit sphere. */
    cae_rng r;
    cae_rng_seed(&r, seed, 0x636f6e74);
    for (int64_t i = 0; i < n; i++) {
        double norm = 0;
        for (int64_t k = 0; k < D; k++) {
            const double g = cae_rng_normal(&r);
            u[i * D + k] = (cae_real)g;
            norm += g * g;
        }
        norm = sqrt(norm);
        for (int64_t k = 0; k < D; k++) u[i * D + k] = (cae_real)(u[i * D + k] / norm);
    }
    if ((rc = cae_encoder_net_run(e, X, n, h0, err))) goto done;
    for (int ri = 0; ri < n_radii; ri++) {
        const double rad = radii[ri];
        if (!(rad > 0)) {
            rc = cae_error_set(err, CAE_ERR_ARG, "contraction: radius %g is not > 0", rad);
            goto done;
        }
        for (int64_t i = 0; i < n * D; i++) x1[i] = (cae_real)(X[i] + rad * u[i]);
        if ((rc = cae_encoder_net_run(e, x1, n, h1, err))) goto done;
        double s = 0, s2 = 0;
        for (int64_t i = 0; i < n; i++) {
            double dist = 0;
            for (int64_t j = 0; j < H; j++) {
                const double df = (double)h0[i * H + j] - (double)h1[i * H + j];
                dist += df * df;
            }
            const double ratio = sqrt(dist) / rad;
            s += ratio;
            s2 += ratio * ratio;
        }
        mean[ri] = s / (double)n;
        sd[ri] = sqrt(fmax(0, s2 / (double)n - mean[ri] * mean[ri]));
    }
    rc = CAE_OK;
done:
    free(own);
    cae_free(x1);
    cae_free(u);
    cae_free(h0);
    cae_free(h1);
    return rc;
}

/* --------------------------------------------------------- distance stats */

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

cae_status cae_distance_stats(const cae_dataset *d, int64_t sample, uint64_t seed, double *min,
                       double *median, double *max, cae_error *err)
{
    if (sample > d->n) sample = d->n;
    if (sample < 2) {
        return cae_error_set(err, CAE_ERR_ARG, "distances: need at least 2 examples");
    }
    const int64_t m = sample, D = d->dim, pairs = m * (m - 1) / 2;
    if ((double)pairs * sizeof(double) > 0.5 * (double)cae_memory_budget()) {
        return cae_error_set(err, CAE_ERR_NOMEM, "distances: %lld examples make %lld pairs, too many for this machine's memory",
                 (long long)m, (long long)pairs);
    }
    int64_t *idx = malloc((size_t)d->n * sizeof *idx);
    double *dist = malloc((size_t)pairs * sizeof *dist);
    cae_real *X = cae_alloc_reals((size_t)(m * D)); /* the sampled rows */
    if (!idx || !dist || !X) {
        free(idx);
        free(dist);
        cae_free(X);
        return cae_error_set(err, CAE_ERR_NOMEM, "distances: out of memory for %lld pairs", (long long)pairs);
    }
    for (int64_t i = 0; i < d->n; i++) idx[i] = i;
    cae_rng r;
    cae_rng_seed(&r, seed, 0x64697374);
    cae_rng_shuffle(&r, idx, d->n);
    for (int64_t i = 0; i < m; i++) cae_dataset_copy_rows(d, idx[i], 1, X + i * D);
#pragma omp parallel for schedule(dynamic, 16)
    for (int64_t i = 0; i < m; i++) {
        const cae_real *a = X + i * D;
        int64_t at = i * (2 * m - i - 1) / 2; /* pairs (i, j > i) start here */
        for (int64_t j = i + 1; j < m; j++) {
            const cae_real *b = X + j * D;
            double s = 0;
            for (int64_t k = 0; k < D; k++) {
                const double df = (double)a[k] - (double)b[k];
                s += df * df;
            }
            dist[at++] = sqrt(s);
        }
    }
    qsort(dist, (size_t)pairs, sizeof *dist, cmp_double);
    *min = dist[0];
    *max = dist[pairs - 1];
    *median = pairs % 2 ? dist[pairs / 2] : 0.5 * (dist[pairs / 2 - 1] + dist[pairs / 2]);
    free(idx);
    free(dist);
    cae_free(X);
    return CAE_OK;
}

/* ------------------------------------------------------ Jacobian spectrum */

cae_status cae_jacobian_spectrum(cae_params *p, int n_layers, const cae_act *act, const cae_dataset *d,
                          int64_t n_examples, double *mean, double *sd, int64_t *n_values,
                          cae_error *err)
{
    if (n_examples > d->n) n_examples = d->n;
    /* The Jacobians by forward mode, a block of examples at a time (the
     * graph the metrics use); each example's J^T gathered, then its SVD. */
    cae_error e2;
    const cae_tensor *W1 = cae_layer_tensor(p, 1, "W"), *Wt = cae_layer_tensor(p, n_layers, "W");
    if (!W1 || !Wt || n_layers < 1)
        return cae_error_set(err, CAE_ERR_ARG, "spectrum: the store has no layers 1..%d", n_layers);
    const int64_t D = W1->shape[0], Hout = Wt->shape[1], nv = D < Hout ? D : Hout;
    int64_t dmax = 0;
    for (int l = 1; l <= n_layers; l++) {
        const cae_tensor *W = cae_layer_tensor(p, l, "W");
        if (W && W->shape[1] > dmax) dmax = W->shape[1];
    }
    if (d->dim != D)
        return cae_error_set(err, CAE_ERR_SHAPE, "spectrum: the data has %lld inputs, the encoder %lld",
                             (long long)d->dim, (long long)D);
    cae_jac_graph jg;
    memset(&jg, 0, sizeof jg);
    const int64_t rows = cae_jac_graph_rows(D, dmax);
    cae_real *s = cae_alloc_reals((size_t)nv), *J = cae_alloc_reals((size_t)(D * Hout));
    cae_real *pad = cae_alloc_reals((size_t)(rows * D));
    double *sum = calloc((size_t)nv, sizeof *sum), *sum2 = calloc((size_t)nv, sizeof *sum2);
    void *lapack = NULL;
    cae_gesdd_fn gesdd = NULL;
    const cae_real *X = NULL;
    cae_real *own = NULL;
    cae_status rc = CAE_OK;
    X = cae_dataset_rows(d, 0, n_examples, &own);
    if (!X || !s || !J || !pad || !sum || !sum2) {
        rc = cae_error_set(err, CAE_ERR_NOMEM, "spectrum: out of memory");
        goto done;
    }
    if ((rc = cae_jac_graph_init(&jg, p, n_layers, act, rows, 0, &e2))) {
        rc = cae_error_set(err, e2.status, "spectrum: %s", e2.msg);
        goto done;
    }
    if (!(lapack = cae_lapack_open("spectrum", CAE_LAPACKE("gesdd"), 0, (void **)&gesdd, err))) {
        rc = err ? err->status : CAE_ERR_IO;
        goto done;
    }
    for (int64_t s0 = 0; s0 < n_examples; s0 += rows) {
        const int64_t m = n_examples - s0 < rows ? n_examples - s0 : rows;
        for (int64_t r = 0; r < rows; r++) /* the last block padded with its first row */
            memcpy(pad + r * D, X + (s0 + (r < m ? r : 0)) * D, (size_t)D * sizeof(cae_real));
        cae_jac_graph_run(&jg, pad);
        const cae_real *T = jg.tan->out.data;
        for (int64_t r = 0; r < m; r++) {
            for (int64_t k = 0; k < D; k++) /* row k of J^T: direction k of example r */
                memcpy(J + k * Hout, T + (k * rows + r) * Hout, (size_t)Hout * sizeof(cae_real));
            lapack_int info = gesdd(LAPACK_ROW_MAJOR, 'N', (lapack_int)D, (lapack_int)Hout, J,
                                    (lapack_int)Hout, s, NULL, (lapack_int)D, NULL, (lapack_int)Hout);
            if (info != 0) {
                rc = cae_error_set(err, CAE_ERR_ARG,
                                   "spectrum: LAPACK gesdd failed (info %d) at example %lld",
                                   (int)info, (long long)(s0 + r));
                goto done;
            }
            for (int64_t i = 0; i < nv; i++) { /* gesdd sorts in decreasing order */
                sum[i] += s[i];
                sum2[i] += (double)s[i] * s[i];
            }
        }
    }
    for (int64_t i = 0; i < nv; i++) {
        mean[i] = n_examples ? sum[i] / (double)n_examples : 0;
        sd[i] = n_examples ? sqrt(fmax(0, sum2[i] / (double)n_examples - mean[i] * mean[i])) : 0;
    }
    *n_values = nv;
    rc = CAE_OK;
done:
    free(own);
    if (lapack) dlclose(lapack);
    cae_jac_graph_free(&jg);
    cae_free(s);
    cae_free(J);
    cae_free(pad);
    free(sum);
    free(sum2);
    return rc;
}

/* ------------------------------------------------------------ data tables */

cae_status cae_table_write(const char *path, const char *comment, int ncols, const char *const *names,
                    int64_t nrows, const double *data, cae_error *err)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp) {
        return cae_error_set(err, CAE_ERR_IO, "%s: path too long", path);
    }
    FILE *f = fopen(tmp, "w");
    if (!f) {
        return cae_error_set(err, CAE_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
    }
    if (comment) {
        const char *s = comment;
        while (*s) {
            const char *nl = strchr(s, '\n');
            const int len = nl ? (int)(nl - s) : (int)strlen(s);
            fprintf(f, "# %.*s\n", len, s);
            s += len + (nl ? 1 : 0);
        }
    }
    for (int c = 0; c < ncols; c++) fprintf(f, c ? " %s" : "%s", names[c]);
    fputc('\n', f);
    for (int64_t r = 0; r < nrows; r++) {
        for (int c = 0; c < ncols; c++) {
            const double v = data[r * ncols + c];
            if (isnan(v))
                fprintf(f, c ? " nan" : "nan");
            else
                fprintf(f, c ? " %.9g" : "%.9g", v);
        }
        fputc('\n', f);
    }
    const int bad = ferror(f) | (fflush(f) != 0) | (fsync(fileno(f)) != 0);
    if (fclose(f) != 0 || bad) {
        remove(tmp);
        return cae_error_set(err, CAE_ERR_IO, "%s: write failed", tmp);
    }
    if (rename(tmp, path)) {
        const cae_status st =
            cae_error_set(err, CAE_ERR_IO, "%s: cannot rename to %s: %s", tmp, path, strerror(errno));
        remove(tmp);
        return st;
    }
    return CAE_OK;
}
