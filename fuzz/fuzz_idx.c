/* libFuzzer target: the IDX reader (raw and gzip) and the dataset loader.
 *
 * Input: IMAGES, optionally followed by FUZZ_IDX_SEP and LABELS. IMAGES goes
 * through cae_idx_read; when the separator is present the two parts also go
 * through cae_dataset_load and, if that accepts them, a batcher walks one
 * epoch. Besides the sanitizers, every result is checked against what the
 * API promises (status and message agree, dims multiply to count, values of
 * a dataset in [0,1], labels below n_classes); a broken promise aborts. */
#include <math.h>
#include <string.h>

#include "cae/data.h"
#include "fuzz_common.h"

#define FUZZ_IDX_SEP "\n--labels--\n"

#define CHECK(cond, ...)                                                     \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "fuzz_idx: %s:%d: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                    \
            fputc('\n', stderr);                                             \
            abort();                                                         \
        }                                                                    \
    } while (0)

static fuzz_file images, labels;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_file_open(&images, "cae-fuzz-images");
    fuzz_file_open(&labels, "cae-fuzz-labels");
    return 0;
}

static void check_idx(const uint8_t *data, size_t size)
{
    fuzz_file_set(&images, data, size);
    cae_error err;
    cae_idx *x = (cae_idx *)&err; /* must be overwritten */
    cae_status rc = cae_idx_read(images.path, &x, &err);
    if (rc != CAE_OK) {
        CHECK(x == NULL, "status %s but a result", cae_status_name(rc));
        CHECK(err.msg[0] != '\0', "status %s without a message", cae_status_name(rc));
        CHECK(strlen(err.msg) < sizeof err.msg, "unterminated message");
        return;
    }
    CHECK(x && x->data, "ok without data");
    CHECK(x->rank >= 1 && x->rank <= CAE_IDX_MAX_RANK, "rank %d", x->rank);
    int esize = cae_idx_type_size(x->type);
    CHECK(esize > 0, "type 0x%02x", x->type);
    int64_t count = 1;
    for (int k = 0; k < x->rank; k++) {
        CHECK(x->dims[k] >= 1, "dim %d = %lld", k, (long long)x->dims[k]);
        count *= x->dims[k];
    }
    CHECK(count == x->count, "count %lld != product %lld", (long long)x->count, (long long)count);
    CHECK(count * esize <= CAE_IDX_MAX_BYTES, "body over the limit");
    if (!x->gzip)
        CHECK((size_t)(4 + 4 * x->rank + count * esize) == size, "raw size %zu", size);
    double sum = 0;
    for (int64_t i = 0; i < x->count; i++) sum += cae_idx_get(x, i); /* touch every element */
    (void)sum;
    cae_idx_free(x);
}

static void check_dataset(void)
{
    cae_error err;
    cae_dataset *d = NULL;
    cae_status rc = cae_dataset_load(images.path, labels.path, &d, &err);
    if (rc != CAE_OK) {
        CHECK(d == NULL, "status %s but a dataset", cae_status_name(rc));
        CHECK(err.msg[0] != '\0', "status %s without a message", cae_status_name(rc));
        return;
    }
    CHECK(d && d->n >= 1 && d->dim >= 1 && d->dim == (int64_t)d->rows * d->cols, "shape");
    CHECK(d->n_classes >= 1 && d->n_classes <= 256, "n_classes %d", d->n_classes);
    for (int64_t i = 0; i < d->n; i++)
        CHECK(d->y[i] >= 0 && d->y[i] < d->n_classes, "y[%lld] = %d", (long long)i, d->y[i]);

    /* A view of the second half and one epoch of batches of 3 over it. */
    cae_dataset *v = cae_dataset_view(d, d->n / 2, d->n - d->n / 2);
    CHECK(v, "view");
    cae_batcher *b = cae_batcher_new(v, 3, 7, 0);
    CHECK(b, "batcher");
    cae_real *xb = malloc(sizeof *xb * 3 * (size_t)v->dim);
    int32_t yb[3];
    CHECK(xb, "malloc");
    int64_t rows = 0, m;
    while ((m = cae_batcher_next(b, xb, yb)) > 0) {
        const int64_t *idx = cae_batcher_indices(b);
        for (int64_t r = 0; r < m; r++) {
            CHECK(idx[r] >= 0 && idx[r] < v->n, "index %lld", (long long)idx[r]);
            CHECK(yb[r] == v->y[idx[r]], "label of row %lld", (long long)r);
            for (int64_t k = 0; k < v->dim; k++) /* the batcher's conversion of bytes */
                CHECK(xb[r * v->dim + k] >= 0 && xb[r * v->dim + k] <= 1, "batch x[%lld]",
                      (long long)k);
        }
        rows += m;
    }
    CHECK(rows == v->n, "an epoch covered %lld of %lld rows", (long long)rows, (long long)v->n);
    free(xb);
    cae_batcher_free(b);
    cae_dataset_free(v);

    /* The whole set as reals: converted and kept, or refused (NULL) when a
     * small gzip declared more than this process may hold as reals. */
    const cae_real *x = cae_dataset_reals(d);
    if (x)
        for (int64_t i = 0; i < d->n * d->dim; i++)
            CHECK(x[i] >= 0 && x[i] <= 1, "x[%lld] = %g", (long long)i, (double)x[i]);
    cae_dataset_free(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const size_t seplen = sizeof FUZZ_IDX_SEP - 1;
    const uint8_t *sep = memmem(data, size, FUZZ_IDX_SEP, seplen);
    const size_t n1 = sep ? (size_t)(sep - data) : size;
    check_idx(data, n1);
    if (sep) {
        fuzz_file_set(&labels, sep + seplen, size - n1 - seplen);
        check_dataset();
    }
    return 0;
}
