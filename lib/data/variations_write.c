/* Writing the variations benchmark to disk: digit pools, IDX files, the
 * manifest (seed, sizes, CRC-32 of each file's data) and the preview matrix.
 *
 * Digits: MNIST's 60 000 training and 10 000 test digits form one pool of
 * 70 000, permuted by the seed; each digit set takes its train, valid and
 * test examples from consecutive, disjoint ranges of that permutation (so no
 * digit image appears in two splits). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "cae/rng.h"
#include "data/data_internal.h"

#define NPIX 784
#define PREVIEW_N 10
#define CELL 30 /* 28 pixels + 2 gap */

static cae_status make_dir(const char *path, cae_error *err)
{
    if (mkdir(path, 0755) == 0 || errno == EEXIST) {
        struct stat st;
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) return CAE_OK;
    }
    return cae_error_set(err, CAE_ERR_IO, "%s: cannot create directory: %s", path,
                         strerror(errno));
}

/* mkdir -p */
static cae_status make_dirs(const char *path, cae_error *err)
{
    size_t n = strlen(path);
    char *p = malloc(n + 1);
    if (!p) return cae_error_set(err, CAE_ERR_NOMEM, "out of memory");
    memcpy(p, path, n + 1);
    cae_status rc = CAE_OK;
    for (size_t i = 1; i <= n && !rc; i++)
        if (p[i] == '/' || p[i] == '\0') {
            char c = p[i];
            p[i] = '\0';
            rc = make_dir(p, err);
            p[i] = c;
        }
    free(p);
    return rc;
}

/* Append to a growing text buffer. */
typedef struct text {
    char *s;
    size_t len, cap;
    int oom;
} text;

static void tprintf(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tprintf(text *t, const char *fmt, ...)
{
    if (t->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(t->s ? t->s + t->len : NULL, t->s ? t->cap - t->len : 0, fmt, ap);
        va_end(ap);
        if (k < 0) {
            t->oom = 1;
            return;
        }
        if (t->s && t->len + (size_t)k < t->cap) {
            t->len += (size_t)k;
            return;
        }
        size_t cap = (t->cap ? t->cap * 2 : 4096) + (size_t)k;
        char *s = realloc(t->s, cap);
        if (!s) {
            t->oom = 1;
            return;
        }
        t->s = s;
        t->cap = cap;
    }
}

/* Rows perm[off .. off+n) of the pool (a = MNIST train, b = MNIST test). */
static cae_dataset *gather(const cae_dataset *a, const cae_dataset *b, const int64_t *perm,
                           int64_t off, int64_t n)
{
    cae_dataset *d = calloc(1, sizeof *d);
    if (!d) return NULL;
    d->owns = 1;
    d->n = n;
    d->rows = a->rows;
    d->cols = a->cols;
    d->dim = a->dim;
    d->n_classes = 10;
    d->x = malloc((size_t)(n > 0 ? n : 1) * (size_t)a->dim * sizeof *d->x);
    d->y = malloc((size_t)(n > 0 ? n : 1) * sizeof *d->y);
    if (!d->x || !d->y) {
        cae_dataset_free(d);
        return NULL;
    }
    for (int64_t i = 0; i < n; i++) {
        int64_t j = perm[off + i];
        const cae_dataset *s = j < a->n ? a : b;
        int64_t r = j < a->n ? j : j - a->n;
        cae_dataset_copy_rows(s, r, 1, d->x + i * d->dim);
        d->y[i] = s->y[r];
    }
    return d;
}

static char *path_of(const char *a, const char *b, const char *c)
{
    size_t n = strlen(a) + strlen(b) + (c ? strlen(c) : 0) + 3;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s%s%s", a, b, c ? "/" : "", c ? c : "");
    return p;
}

cae_status cae_variations_write(const char *data_dir, const char *out_dir, uint64_t seed,
                                     int small, unsigned mask, cae_error *err)
{
    static const char *part[3] = {"train", "valid", "test"};
    if (!data_dir || !out_dir)
        return cae_error_set(err, CAE_ERR_ARG, "cae_variations_write: NULL argument");
    if (mask == 0) mask = (1u << CAE_VAR_COUNT) - 1;
    if (mask >> CAE_VAR_COUNT)
        return cae_error_set(err, CAE_ERR_ARG, "cae_variations_write: bad mask 0x%x", mask);
    int need_digits = 0, need_photos = 0, nsets = 0;
    for (int v = 0; v < CAE_VAR_COUNT; v++)
        if (mask >> v & 1) {
            need_digits |= cae_variation_uses_digits(v);
            need_photos |= cae_variation_uses_photos(v);
            nsets++;
        }

    cae_status rc = make_dirs(out_dir, err);
    if (rc) return rc;
    cae_dataset *mtrain = NULL, *mtest = NULL;
    cae_photos *photos = NULL;
    int64_t *perm = NULL;
    uint8_t *img = NULL, *lab = NULL, *preview = NULL;
    text man = {0}, prev = {0};
    char *p1 = NULL, *p2 = NULL, *dir = NULL;

    if (need_digits) {
        p1 = path_of(data_dir, "mnist", "train-images-idx3-ubyte");
        p2 = path_of(data_dir, "mnist", "train-labels-idx1-ubyte");
        rc = (p1 && p2) ? cae_dataset_load(p1, p2, &mtrain, err) : CAE_ERR_NOMEM;
        free(p1);
        free(p2);
        p1 = p2 = NULL;
        if (rc) goto done;
        p1 = path_of(data_dir, "mnist", "t10k-images-idx3-ubyte");
        p2 = path_of(data_dir, "mnist", "t10k-labels-idx1-ubyte");
        rc = (p1 && p2) ? cae_dataset_load(p1, p2, &mtest, err) : CAE_ERR_NOMEM;
        if (rc) goto done;
        if (mtrain->rows != 28 || mtrain->cols != 28 || mtest->dim != mtrain->dim) {
            rc = cae_error_set(err, CAE_ERR_DIMS, "%s/mnist: expected 28 x 28 digits", data_dir);
            goto done;
        }
        int64_t pool = mtrain->n + mtest->n;
        perm = malloc((size_t)pool * sizeof *perm);
        if (!perm) goto nomem;
        for (int64_t i = 0; i < pool; i++) perm[i] = i;
        cae_rng r;
        cae_rng_seed(&r, seed, 0x504F4F4Cull); /* "POOL" */
        cae_rng_shuffle(&r, perm, pool);
    }
    if (need_photos) {
        free(p1);
        p1 = path_of(data_dir, "images", NULL);
        if (!p1) goto nomem;
        rc = cae_photos_load(p1, &photos, err);
        if (rc) goto done;
    }

    int prow = nsets * CELL - 2, pcol = PREVIEW_N * CELL - 2;
    preview = calloc((size_t)prow * (size_t)pcol, 1);
    if (!preview) goto nomem;
    memset(preview, 128, (size_t)prow * (size_t)pcol);
    tprintf(&man, "# cae variations benchmark (Larochelle et al. 2007 recipe, see lib/data/variations.c)\n");
    tprintf(&man, "generator cae-variations-2\nseed %llu\nsmall %d\n", (unsigned long long)seed,
            small ? 1 : 0);
    if (need_digits)
        tprintf(&man, "digits %s/mnist train %lld + t10k %lld, pool permuted by the seed\n", data_dir,
                (long long)mtrain->n, (long long)mtest->n);
    if (need_photos)
        tprintf(&man, "photos %d from %s/images/MANIFEST.tsv\n", cae_photos_count(photos), data_dir);
    tprintf(&man, "# recipe set version; set split file examples bytes crc32(file)\n");
    tprintf(&prev, "# sets:");

    int row = 0;
    for (int v = 0; v < CAE_VAR_COUNT; v++) {
        if (!(mask >> v & 1)) continue;
        const char *name = cae_variation_name(v);
        tprintf(&prev, " %s", name);
        tprintf(&man, "recipe %s %d\n", name, cae_variation_recipe(v));
        free(dir);
        dir = path_of(out_dir, name, NULL);
        if (!dir) goto nomem;
        rc = make_dirs(dir, err);
        if (rc) goto done;
        int64_t sizes[3], off = 0;
        cae_variation_sizes(v, small, sizes);
        for (int k = 0; k < 3; k++) {
            int64_t n = sizes[k];
            cae_dataset *digits = NULL;
            if (cae_variation_uses_digits(v)) {
                digits = gather(mtrain, mtest, perm, off, n);
                if (!digits) goto nomem;
            }
            off += n;
            free(img);
            free(lab);
            img = malloc((size_t)n * NPIX);
            lab = malloc((size_t)n);
            if (!img || !lab) {
                cae_dataset_free(digits);
                goto nomem;
            }
            rc = cae_variation_generate(v, digits, photos, seed, (uint64_t)(v + 1) * 16 + (uint64_t)k, n,
                                        img, lab, err);
            cae_dataset_free(digits);
            if (rc) goto done;
            const char *kinds[2] = {"images-idx3", "labels-idx1"};
            for (int f = 0; f < 2; f++) {
                char fname[64];
                snprintf(fname, sizeof fname, "%s-%s-ubyte", part[k], kinds[f]);
                free(p2);
                p2 = path_of(dir, fname, NULL);
                if (!p2) goto nomem;
                int64_t dims[3] = {n, 28, 28};
                rc = cae_idx_write(p2, CAE_IDX_U8, f ? 1 : 3, dims, f ? (void *)lab : (void *)img, err);
                if (rc) goto done;
                /* CRC-32 of the whole file as written (header + data). */
                uint8_t head[16] = {0, 0, CAE_IDX_U8, (uint8_t)(f ? 1 : 3)};
                int hl = f ? 8 : 16;
                for (int d = 0; d < (f ? 1 : 3); d++)
                    for (int b = 0; b < 4; b++) head[4 + 4 * d + b] = (uint8_t)(dims[d] >> (24 - 8 * b));
                uLong crc = crc32(0L, Z_NULL, 0);
                crc = crc32(crc, head, (uInt)hl);
                int64_t body = f ? n : n * NPIX;
                for (int64_t o = 0; o < body; o += 1 << 30) {
                    int64_t c = body - o < (1 << 30) ? body - o : (1 << 30);
                    crc = crc32(crc, (f ? lab : img) + o, (uInt)c);
                }
                tprintf(&man, "%s %s %s/%s %lld %lld %08lx\n", name, part[k], name, fname, (long long)n,
                        (long long)(hl + body), (unsigned long)crc);
            }
            if (k == 0)
                for (int e = 0; e < PREVIEW_N && e < n; e++)
                    for (int y = 0; y < 28; y++)
                        memcpy(preview + (size_t)(row * CELL + y) * (size_t)pcol + (size_t)e * CELL,
                               img + (size_t)e * NPIX + (size_t)y * 28, 28);
        }
        row++;
    }
    tprintf(&prev, "\n# %d rows x %d columns of grey levels 0..255, ten training examples per set\n",
            prow, pcol);
    for (int y = 0; y < prow; y++)
        for (int x = 0; x < pcol; x++)
            tprintf(&prev, "%d%c", preview[(size_t)y * (size_t)pcol + (size_t)x], x + 1 < pcol ? ' ' : '\n');
    if (man.oom || prev.oom) goto nomem;
    free(p1);
    p1 = path_of(out_dir, "preview.dat", NULL);
    if (!p1) goto nomem;
    rc = cae_data_write_file(p1, NULL, 0, prev.s, prev.len, err);
    if (rc) goto done;
    free(p1);
    p1 = path_of(out_dir, "MANIFEST.txt", NULL);
    if (!p1) goto nomem;
    rc = cae_data_write_file(p1, NULL, 0, man.s, man.len, err);
    goto done;
nomem:
    rc = cae_error_set(err, CAE_ERR_NOMEM, "cae_variations_write: out of memory");
done:
    cae_dataset_free(mtrain);
    cae_dataset_free(mtest);
    cae_photos_free(photos);
    free(perm);
    free(img);
    free(lab);
    free(preview);
    free(man.s);
    free(prev.s);
    free(p1);
    free(p2);
    free(dir);
    return rc;
}
