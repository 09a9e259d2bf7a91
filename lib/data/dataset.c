/* Datasets (images + labels), the standard splits, and the minibatcher. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cae/rng.h"
#include "data/data_internal.h"

static cae_real *alloc_reals(int64_t n)
{
    int64_t bytes;
    if (!cae_data_mul(n, (int64_t)sizeof(cae_real), &bytes) || bytes > CAE_IDX_MAX_BYTES * 4)
        return NULL;
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes > 0 ? (size_t)bytes : 64) != 0) return NULL;
    return p;
}

void cae_dataset_free(cae_dataset *d)
{
    if (!d) return;
    if (d->x_converted || d->owns) free(d->x);
    if (d->owns) {
        free((void *)d->x8);
        free(d->y);
    }
    free(d);
}

const cae_real *cae_dataset_reals(const cae_dataset *d)
{
    if (!d || d->x || !d->x8) return d ? d->x : NULL;
    cae_real *x = NULL;
    if (!cae_dataset_rows(d, 0, d->n, &x)) return NULL;
    cae_dataset *cache = (cae_dataset *)d; /* heap-allocated by this file */
    cache->x = x;
    cache->x_converted = 1;
    return x;
}

const cae_real *cae_dataset_rows(const cae_dataset *d, int64_t begin, int64_t count,
                                 cae_real **owned)
{
    if (owned) *owned = NULL;
    if (!d || !owned || begin < 0 || count < 0 || begin > d->n || count > d->n - begin)
        return NULL;
    if (d->x) return d->x + begin * d->dim;
    int64_t n, bytes;
    if (!d->x8 || !cae_data_mul(count, d->dim, &n) ||
        !cae_data_mul(n, (int64_t)sizeof(cae_real), &bytes) || bytes > cae_data_mem_budget())
        return NULL;
    cae_real *x = alloc_reals(n);
    if (!x) return NULL;
    cae_data_bytes_to_reals(d->x8 + begin * d->dim, n, x);
    *owned = x;
    return x;
}

void cae_dataset_copy_rows(const cae_dataset *d, int64_t begin, int64_t count, cae_real *out)
{
    if (d->x)
        memcpy(out, d->x + begin * d->dim, (size_t)(count * d->dim) * sizeof *out);
    else
        cae_data_bytes_to_reals(d->x8 + begin * d->dim, count * d->dim, out);
}

cae_dataset *cae_dataset_view(const cae_dataset *d, int64_t begin, int64_t count)
{
    if (!d || begin < 0 || count < 0 || begin > d->n || count > d->n - begin) return NULL;
    cae_dataset *v = malloc(sizeof *v);
    if (!v) return NULL;
    *v = *d;
    v->owns = 0;
    v->x_converted = 0;
    v->n = count;
    v->x = d->x ? d->x + begin * d->dim : NULL;
    v->x8 = d->x8 ? d->x8 + begin * d->dim : NULL;
    v->y = d->y ? d->y + begin : NULL;
    return v;
}

cae_dataset *cae_dataset_concat(const cae_dataset *a, const cae_dataset *b)
{
    if (!a || !b || a->dim != b->dim || (!a->x && !a->x8) || (!b->x && !b->x8) || !a->y != !b->y)
        return NULL;
    int64_t n, count, bytes;
    if (a->n < 0 || b->n < 0 || __builtin_add_overflow(a->n, b->n, &n) ||
        !cae_data_mul(n, a->dim, &count))
        return NULL;
    const int as_bytes = !a->x && !b->x;
    if (!cae_data_mul(count, as_bytes ? 1 : (int64_t)sizeof(cae_real), &bytes) ||
        bytes > cae_data_mem_budget())
        return NULL;
    cae_dataset *d = calloc(1, sizeof *d);
    if (!d) return NULL;
    *d = *a;
    d->n = n;
    d->owns = 1;
    d->x_converted = 0;
    d->x = NULL;
    d->x8 = NULL;
    d->y = NULL;
    d->n_classes = a->n_classes > b->n_classes ? a->n_classes : b->n_classes;
    if (as_bytes) {
        uint8_t *x8 = malloc(count > 0 ? (size_t)count : 1);
        if (!x8) goto fail;
        memcpy(x8, a->x8, (size_t)(a->n * a->dim));
        memcpy(x8 + a->n * a->dim, b->x8, (size_t)(b->n * b->dim));
        d->x8 = x8;
    } else {
        if (!(d->x = alloc_reals(count))) goto fail;
        cae_dataset_copy_rows(a, 0, a->n, d->x);
        cae_dataset_copy_rows(b, 0, b->n, d->x + a->n * a->dim);
    }
    if (a->y) {
        if (!(d->y = malloc((size_t)(n > 0 ? n : 1) * sizeof *d->y))) goto fail;
        memcpy(d->y, a->y, (size_t)a->n * sizeof *d->y);
        memcpy(d->y + a->n, b->y, (size_t)b->n * sizeof *d->y);
    }
    return d;
fail:
    cae_dataset_free(d);
    return NULL;
}

static int is_integer_type(int t)
{
    return t == CAE_IDX_U8 || t == CAE_IDX_I8 || t == CAE_IDX_I16 || t == CAE_IDX_I32;
}

cae_status cae_dataset_load(const char *images_path, const char *labels_path,
                                 cae_dataset **out, cae_error *err)
{
    if (out) *out = NULL;
    if (!images_path || !labels_path || !out)
        return cae_error_set(err, CAE_ERR_ARG, "cae_dataset_load: NULL argument");
    cae_idx *im = NULL, *lb = NULL;
    cae_dataset *d = NULL;
    cae_status rc = cae_idx_read(images_path, &im, err);
    if (rc) goto done;
    rc = cae_idx_read(labels_path, &lb, err);
    if (rc) goto done;

    if (im->rank != 2 && im->rank != 3) {
        rc = cae_error_set(err, CAE_ERR_RANK,
                           "%s: offset 3: expected images of rank 2 or 3, found rank %d", images_path,
                           im->rank);
        goto done;
    }
    if (im->type != CAE_IDX_U8 && im->type != CAE_IDX_F32 && im->type != CAE_IDX_F64) {
        rc = cae_error_set(err, CAE_ERR_TYPE,
                           "%s: offset 2: expected image type u8, f32 or f64, found 0x%02x", images_path,
                           im->type);
        goto done;
    }
    if (lb->rank != 1) {
        rc = cae_error_set(err, CAE_ERR_RANK,
                           "%s: offset 3: expected labels of rank 1, found rank %d", labels_path, lb->rank);
        goto done;
    }
    if (!is_integer_type(lb->type)) {
        rc = cae_error_set(err, CAE_ERR_TYPE,
                           "%s: offset 2: expected an integer label type, found 0x%02x", labels_path,
                           lb->type);
        goto done;
    }
    if (lb->dims[0] != im->dims[0]) {
        rc = cae_error_set(err, CAE_ERR_MISMATCH,
                           "%s: offset 4: expected %lld labels (one per image in %s), found %lld",
                           labels_path, (long long)im->dims[0], images_path, (long long)lb->dims[0]);
        goto done;
    }
    int64_t rows = im->dims[1], cols = im->rank == 3 ? im->dims[2] : 1;
    if (rows > (1 << 20) || cols > (1 << 20)) {
        rc = cae_error_set(err, CAE_ERR_DIMS, "%s: image size %lld x %lld is absurd",
                           images_path, (long long)rows, (long long)cols);
        goto done;
    }
    /* The reals (none for u8 images, kept as read) and labels, beside the
     * two files still held. */
    const int64_t budget = cae_data_mem_budget();
    const int64_t held = im->count * cae_idx_type_size(im->type) + lb->count * cae_idx_type_size(lb->type);
    int64_t reals = 0;
    if (!cae_data_mul(im->type == CAE_IDX_U8 ? 0 : im->count, (int64_t)sizeof(cae_real), &reals) ||
        reals > budget - held - (int64_t)sizeof(int32_t) * im->dims[0]) {
        rc = cae_error_set(err, CAE_ERR_NOMEM,
                           "%s: %lld x %lld values need %lld bytes as reals (beside the %lld bytes "
                           "read), more than the %lld bytes of memory this process can use",
                           images_path, (long long)im->dims[0], (long long)(rows * cols),
                           (long long)reals, (long long)held, (long long)budget);
        goto done;
    }
    d = calloc(1, sizeof *d);
    if (!d) goto nomem;
    d->owns = 1;
    d->n = im->dims[0];
    d->rows = (int)rows;
    d->cols = (int)cols;
    d->dim = rows * cols;
    d->y = malloc((size_t)d->n * sizeof *d->y);
    if (!d->y) goto nomem;

    if (im->type == CAE_IDX_U8) {
        d->x8 = im->data; /* taken over from the file's buffer */
        im->data = NULL;
    } else {
        if (!(d->x = alloc_reals(im->count))) goto nomem;
        for (int64_t i = 0; i < im->count; i++) {
            double v = cae_idx_get(im, i);
            if (!(v >= 0.0 && v <= 1.0)) {
                int esz = cae_idx_type_size(im->type);
                rc = cae_error_set(err, CAE_ERR_MISMATCH,
                                   "%s: offset %lld: expected a value in [0,1], found %g", images_path,
                                   (long long)(4 + 4 * im->rank + i * esz), v);
                goto done;
            }
            d->x[i] = (cae_real)v;
        }
    }
    int maxl = 0;
    for (int64_t i = 0; i < d->n; i++) {
        double v = cae_idx_get(lb, i);
        if (v < 0 || v > 255) {
            int esz = cae_idx_type_size(lb->type);
            rc = cae_error_set(err, CAE_ERR_MISMATCH,
                               "%s: offset %lld: expected a label in 0..255, found %g", labels_path,
                               (long long)(8 + i * esz), v);
            goto done;
        }
        d->y[i] = (int32_t)v;
        if (d->y[i] > maxl) maxl = d->y[i];
    }
    d->n_classes = maxl + 1;
    goto done;
nomem:
    rc = cae_error_set(err, CAE_ERR_NOMEM, "%s: cannot allocate the dataset", images_path);
done:
    cae_idx_free(im);
    cae_idx_free(lb);
    if (rc) {
        cae_dataset_free(d);
        return rc;
    }
    *out = d;
    return CAE_OK;
}

/* ------------------------------------------------------------------ splits */

void cae_splits_free(cae_splits *s)
{
    if (!s) return;
    cae_dataset *parts[3] = {s->train, s->valid, s->test};
    for (int i = 0; i < 3; i++) {
        int owned = 0;
        for (int k = 0; k < 3; k++) owned |= parts[i] && parts[i] == s->owned[k];
        if (!owned) cae_dataset_free(parts[i]);
    }
    for (int k = 0; k < 3; k++) cae_dataset_free(s->owned[k]);
    free(s);
}

static char *join(const char *a, const char *b, const char *c)
{
    size_t n = strlen(a) + strlen(b) + (c ? strlen(c) : 0) + 3;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s%s%s", a, b, c ? "/" : "", c ? c : "");
    return p;
}

static cae_status load_pair(const char *dir, const char *sub, const char *img,
                                 const char *lab, cae_dataset **out, cae_error *err)
{
    char *d = join(dir, sub, NULL);
    char *pi = d ? join(d, img, NULL) : NULL;
    char *pl = d ? join(d, lab, NULL) : NULL;
    cae_status rc = (pi && pl) ? cae_dataset_load(pi, pl, out, err)
                                    : cae_error_set(err, CAE_ERR_NOMEM, "out of memory");
    free(d);
    free(pi);
    free(pl);
    return rc;
}

cae_status cae_splits_load(const char *data_dir, const char *name, cae_splits **out,
                                cae_error *err)
{
    if (out) *out = NULL;
    if (!data_dir || !name || !out)
        return cae_error_set(err, CAE_ERR_ARG, "cae_splits_load: NULL argument");
    cae_splits *s = calloc(1, sizeof *s);
    if (!s) return cae_error_set(err, CAE_ERR_NOMEM, "out of memory");
    snprintf(s->name, sizeof s->name, "%s", name);
    cae_status rc = CAE_OK;
    int mnist = !strcmp(name, "mnist"), fashion = !strcmp(name, "fashion");
    if (mnist || fashion) {
        const char *sub = mnist ? "mnist" : "fashion-mnist";
        const char *gz = mnist ? "" : ".gz";
        char ti[64], tl[64], si[64], sl[64];
        snprintf(ti, sizeof ti, "train-images-idx3-ubyte%s", gz);
        snprintf(tl, sizeof tl, "train-labels-idx1-ubyte%s", gz);
        snprintf(si, sizeof si, "t10k-images-idx3-ubyte%s", gz);
        snprintf(sl, sizeof sl, "t10k-labels-idx1-ubyte%s", gz);
        rc = load_pair(data_dir, sub, ti, tl, &s->owned[0], err);
        if (!rc) rc = load_pair(data_dir, sub, si, sl, &s->owned[1], err);
        if (!rc && s->owned[0]->n != 60000) {
            rc = cae_error_set(err, CAE_ERR_MISMATCH,
                               "%s/%s/%s: expected 60000 training images, found %lld", data_dir, sub, ti,
                               (long long)s->owned[0]->n);
        }
        if (!rc) {
            s->train = cae_dataset_view(s->owned[0], 0, 50000);
            s->valid = cae_dataset_view(s->owned[0], 50000, 10000);
            s->test = s->owned[1];
            if (!s->train || !s->valid)
                rc = cae_error_set(err, CAE_ERR_NOMEM, "out of memory");
        }
    } else if (cae_variation_from_name(name) >= 0) {
        static const char *part[3] = {"train", "valid", "test"};
        char *sub = join("variations", name, NULL);
        if (!sub) rc = cae_error_set(err, CAE_ERR_NOMEM, "out of memory");
        for (int k = 0; k < 3 && !rc; k++) {
            char img[64], lab[64];
            snprintf(img, sizeof img, "%s-images-idx3-ubyte", part[k]);
            snprintf(lab, sizeof lab, "%s-labels-idx1-ubyte", part[k]);
            rc = load_pair(data_dir, sub, img, lab, &s->owned[k], err);
        }
        free(sub);
        if (!rc) {
            s->train = s->owned[0];
            s->valid = s->owned[1];
            s->test = s->owned[2];
        }
    } else {
        rc = cae_error_set(err, CAE_ERR_ARG,
                           "unknown data set '%s' (expected mnist, fashion or a variation name)", name);
    }
    if (rc) {
        cae_splits_free(s);
        return rc;
    }
    *out = s;
    return CAE_OK;
}

/* ----------------------------------------------------------------- batcher */

struct cae_batcher {
    const cae_dataset *d;
    int64_t batch;
    uint64_t seed;
    int drop_last;
    int64_t *perm; /* n row indices in this epoch's order */
    int64_t pos;   /* next position in perm */
    int64_t last;  /* start of the batch last returned */
};

cae_batcher *cae_batcher_new(const cae_dataset *d, int64_t batch, uint64_t seed, int drop_last)
{
    if (!d || batch < 1 || d->n < 1 || d->n > (INT64_MAX / (int64_t)sizeof(int64_t))) return NULL;
    cae_batcher *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    b->perm = malloc((size_t)d->n * sizeof *b->perm);
    if (!b->perm) {
        free(b);
        return NULL;
    }
    b->d = d;
    b->batch = batch;
    b->seed = seed;
    b->drop_last = drop_last;
    cae_batcher_epoch(b, 0);
    return b;
}

void cae_batcher_free(cae_batcher *b)
{
    if (!b) return;
    free(b->perm);
    free(b);
}

void cae_batcher_epoch(cae_batcher *b, uint64_t epoch)
{
    if (!b) return;
    cae_rng r;
    /* Stream 0x4241544348 ("BATCH") + epoch: one independent stream per epoch. */
    cae_rng_seed(&r, b->seed, 0x4241544348ull + epoch);
    for (int64_t i = 0; i < b->d->n; i++) b->perm[i] = i;
    cae_rng_shuffle(&r, b->perm, b->d->n);
    b->pos = 0;
    b->last = 0;
}

int64_t cae_batcher_next(cae_batcher *b, cae_real *x, int32_t *y)
{
    if (!b) return 0;
    int64_t left = b->d->n - b->pos;
    int64_t m = left < b->batch ? left : b->batch;
    if (m <= 0 || (b->drop_last && m < b->batch)) return 0;
    const cae_dataset *d = b->d;
    for (int64_t r = 0; r < m; r++) {
        int64_t i = b->perm[b->pos + r];
        if (x) cae_dataset_copy_rows(d, i, 1, x + r * d->dim);
        if (y) y[r] = d->y ? d->y[i] : 0; /* a set without labels: zeros */
    }
    b->last = b->pos;
    b->pos += m;
    return m;
}

int64_t cae_batcher_next_part(cae_batcher *b, int part, int parts, cae_real *x, int32_t *y,
                              int64_t *rows)
{
    *rows = 0;
    if (!b || parts < 1 || part < 0 || part >= parts) return 0;
    const int64_t left = b->d->n - b->pos;
    const int64_t m = left < b->batch ? left : b->batch;
    if (m <= 0 || (b->drop_last && m < b->batch)) return 0;
    const int64_t begin = m * part / parts, count = m * (part + 1) / parts - begin;
    const cae_dataset *d = b->d;
    for (int64_t r = 0; r < count; r++) {
        const int64_t i = b->perm[b->pos + begin + r];
        if (x) cae_dataset_copy_rows(d, i, 1, x + r * d->dim);
        if (y) y[r] = d->y ? d->y[i] : 0;
    }
    b->last = b->pos + begin; /* this part's rows, for cae_batcher_indices */
    b->pos += m;
    *rows = count;
    return m;
}

const int64_t *cae_batcher_indices(const cae_batcher *b)
{
    return b ? b->perm + b->last : NULL;
}

int64_t cae_batcher_batches_per_epoch(const cae_batcher *b)
{
    if (!b) return 0;
    return b->drop_last ? b->d->n / b->batch : (b->d->n + b->batch - 1) / b->batch;
}
