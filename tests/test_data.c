/* lib/data: the IDX reader on good files and on every kind of broken file
 * (each made here), datasets, splits, the batcher, photographs, MNIST and
 * Fashion-MNIST as fetched by scripts/fetch-data.sh, and `cae data`. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "cae/data.h"
#include "testutil.h"

static char tmp[512];

static void setup(void)
{
    char *d = tu_tmpdir();
    ck_assert_msg(d != NULL, "cannot create a temporary directory");
    snprintf(tmp, sizeof tmp, "%s", d);
    free(d);
}

static void teardown(void)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd) != 0) { /* best effort */
    }
}

static const char *data_dir(void)
{
    static char buf[512];
    const char *d = getenv("CAE_DATA_DIR");
    if (d && *d) return d;
    snprintf(buf, sizeof buf, "%s/data", CAE_SOURCE_DIR);
    return buf;
}

static const char *path_in(const char *name)
{
    static char buf[4][700];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmp, name);
    return buf[k];
}

static void write_bytes(const char *path, const void *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "cannot write %s", path);
    ck_assert(n == 0 || fwrite(b, 1, n, f) == n);
    fclose(f);
}

static void write_gzip(const char *path, const void *b, size_t n)
{
    gzFile g = gzopen(path, "wb");
    ck_assert_msg(g != NULL, "cannot write %s", path);
    ck_assert(gzwrite(g, b, (unsigned)n) == (int)n);
    ck_assert(gzclose(g) == Z_OK);
}

/* A good 3 x 2 x 2 u8 image file: header + values 0, 20, 40, ... */
static size_t good_images(uint8_t *b, int n)
{
    const uint8_t head[16] = {0, 0, 0x08, 3, 0, 0, 0, (uint8_t)n, 0, 0, 0, 2, 0, 0, 0, 2};
    memcpy(b, head, 16);
    for (int i = 0; i < 4 * n; i++) b[16 + i] = (uint8_t)(20 * i);
    return 16 + 4 * (size_t)n;
}

static size_t good_labels(uint8_t *b, int n)
{
    const uint8_t head[8] = {0, 0, 0x08, 1, 0, 0, 0, (uint8_t)n};
    memcpy(b, head, 8);
    for (int i = 0; i < n; i++) b[8 + i] = (uint8_t)(i % 3);
    return 8 + (size_t)n;
}

/* Read path, expect status st and a message containing each of the
 * substrings (and the file name). */
static void expect_fail(const char *path, cae_status st, const char *sub1, const char *sub2)
{
    cae_error err;
    cae_idx *x = (cae_idx *)1;
    cae_status rc = cae_idx_read(path, &x, &err);
    ck_assert_msg(rc == st, "%s: expected status %s, got %s (%s)", path, cae_status_name(st),
                  cae_status_name(rc), err.msg);
    ck_assert_msg(x == NULL, "%s: *out must be NULL on failure", path);
    ck_assert_msg(strstr(err.msg, path) != NULL, "message '%s' does not name the file", err.msg);
    ck_assert_msg(strstr(err.msg, sub1) != NULL, "message '%s' lacks '%s'", err.msg, sub1);
    if (sub2) ck_assert_msg(strstr(err.msg, sub2) != NULL, "message '%s' lacks '%s'", err.msg, sub2);
}

/* ------------------------------------------------------------ good files */

START_TEST(read_good_raw_and_gzip)
{
    uint8_t b[64];
    size_t n = good_images(b, 3);
    write_bytes(path_in("a.idx"), b, n);
    write_gzip(path_in("a.idx.gz"), b, n);
    for (int gz = 0; gz < 2; gz++) {
        cae_error err;
        cae_idx *x = NULL;
        cae_status rc = cae_idx_read(path_in(gz ? "a.idx.gz" : "a.idx"), &x, &err);
        ck_assert_msg(rc == CAE_OK, "gzip=%d: %s", gz, err.msg);
        ck_assert_int_eq(x->gzip, gz);
        ck_assert_int_eq(x->type, CAE_IDX_U8);
        ck_assert_int_eq(x->rank, 3);
        ck_assert_int_eq(x->dims[0], 3);
        ck_assert_int_eq(x->dims[1], 2);
        ck_assert_int_eq(x->dims[2], 2);
        ck_assert_int_eq(x->count, 12);
        for (int i = 0; i < 12; i++) ck_assert_msg(cae_idx_get(x, i) == 20 * i, "element %d", i);
        cae_idx_free(x);
    }
}
END_TEST

START_TEST(write_read_round_trip_all_types)
{
    const int types[] = {CAE_IDX_U8, CAE_IDX_I8, CAE_IDX_I16, CAE_IDX_I32, CAE_IDX_F32, CAE_IDX_F64};
    const double vals[5] = {0, 1, -2, 100, 7};
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        int ty = types[t];
        uint8_t buf[64];
        for (int i = 0; i < 5; i++) {
            double v = (ty == CAE_IDX_U8 && vals[i] < 0) ? 2 : vals[i];
            switch (ty) {
            case CAE_IDX_U8: ((uint8_t *)buf)[i] = (uint8_t)v; break;
            case CAE_IDX_I8: ((int8_t *)buf)[i] = (int8_t)v; break;
            case CAE_IDX_I16: ((int16_t *)buf)[i] = (int16_t)(v * 300); break;
            case CAE_IDX_I32: ((int32_t *)buf)[i] = (int32_t)(v * 70000); break;
            case CAE_IDX_F32: ((float *)buf)[i] = (float)(v / 3); break;
            default: ((double *)buf)[i] = v / 3; break;
            }
        }
        int64_t dims[1] = {5};
        cae_error err;
        ck_assert_msg(cae_idx_write(path_in("t.idx"), ty, 1, dims, buf, &err) == CAE_OK, "%s", err.msg);
        cae_idx *x = NULL;
        ck_assert_msg(cae_idx_read(path_in("t.idx"), &x, &err) == CAE_OK, "%s", err.msg);
        ck_assert_int_eq(x->type, ty);
        ck_assert_int_eq(memcmp(x->data, buf, 5 * (size_t)cae_idx_type_size(ty)), 0);
        cae_idx_free(x);
        /* the tmp file of the atomic write is gone */
        struct stat st;
        char tmpname[800];
        snprintf(tmpname, sizeof tmpname, "%s.tmp.%ld", path_in("t.idx"), (long)getpid());
        ck_assert(stat(tmpname, &st) != 0);
    }
    /* Big-endian on disk: i16 300 is 01 2c. */
    FILE *f;
    int16_t v = 300;
    int64_t d1[1] = {1};
    ck_assert(cae_idx_write(path_in("be.idx"), CAE_IDX_I16, 1, d1, &v, NULL) == CAE_OK);
    uint8_t raw[10];
    f = fopen(path_in("be.idx"), "rb");
    ck_assert(f && fread(raw, 1, 10, f) == 10);
    fclose(f);
    ck_assert_int_eq(raw[8], 0x01);
    ck_assert_int_eq(raw[9], 0x2c);
}
END_TEST

/* ---------------------------------------------------------- broken files */

START_TEST(broken_empty)
{
    write_bytes(path_in("empty"), "", 0);
    expect_fail(path_in("empty"), CAE_ERR_EMPTY, "empty file", "offset 0");
}
END_TEST

START_TEST(broken_truncated_header)
{
    const uint8_t b[3] = {0, 0, 8};
    write_bytes(path_in("h3"), b, 3);
    expect_fail(path_in("h3"), CAE_ERR_TRUNCATED, "IDX header", "found only 3");
    /* rank 3 declared, only two dimensions present */
    const uint8_t c[12] = {0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 2};
    write_bytes(path_in("dims"), c, sizeof c);
    expect_fail(path_in("dims"), CAE_ERR_TRUNCATED, "bytes of dimensions", "offset 4");
}
END_TEST

START_TEST(broken_truncated_body)
{
    uint8_t b[64];
    size_t n = good_images(b, 3);
    write_bytes(path_in("body"), b, n - 5);
    expect_fail(path_in("body"), CAE_ERR_TRUNCATED, "truncated body", "expected 12 bytes");
}
END_TEST

START_TEST(broken_trailing_bytes)
{
    uint8_t b[64] = {0};
    size_t n = good_images(b, 3);
    write_bytes(path_in("trail"), b, n + 2);
    expect_fail(path_in("trail"), CAE_ERR_DIMS, "trailing bytes", "offset 28");
    write_gzip(path_in("trail.gz"), b, n + 2);
    expect_fail(path_in("trail.gz"), CAE_ERR_DIMS, "trailing bytes", NULL);
}
END_TEST

START_TEST(broken_magic)
{
    uint8_t b[64];
    size_t n = good_images(b, 3);
    b[1] = 0x08;
    write_bytes(path_in("magic"), b, n);
    expect_fail(path_in("magic"), CAE_ERR_MAGIC, "expected magic bytes 00 00", "found 00 08");
    write_bytes(path_in("text"), "hello world, not IDX", 20);
    expect_fail(path_in("text"), CAE_ERR_MAGIC, "not an IDX file", NULL);
}
END_TEST

START_TEST(broken_type_and_rank)
{
    uint8_t b[64];
    size_t n = good_images(b, 3);
    b[2] = 0x07;
    write_bytes(path_in("type"), b, n);
    expect_fail(path_in("type"), CAE_ERR_TYPE, "offset 2", "found 07");
    good_images(b, 3);
    b[3] = 0;
    write_bytes(path_in("rank0"), b, n);
    expect_fail(path_in("rank0"), CAE_ERR_RANK, "offset 3", "found 0");
    b[3] = 9;
    write_bytes(path_in("rank9"), b, n);
    expect_fail(path_in("rank9"), CAE_ERR_RANK, "expected rank 1..4", "found 9");
}
END_TEST

START_TEST(broken_dims)
{
    /* 4 x 0xffffffff overflows 64 bits: refused before any allocation */
    uint8_t b[20] = {0, 0, 0x0d, 4};
    memset(b + 4, 0xff, 16);
    write_bytes(path_in("ovf"), b, sizeof b);
    expect_fail(path_in("ovf"), CAE_ERR_DIMS, "overflows", "4294967295 x 4294967295");
    /* fits 64 bits but far beyond the limit */
    uint8_t c[12] = {0, 0, 0x08, 2, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x10, 0x00};
    write_bytes(path_in("huge"), c, sizeof c);
    expect_fail(path_in("huge"), CAE_ERR_DIMS, "over the limit", NULL);
    /* a zero dimension */
    uint8_t z[12] = {0, 0, 0x08, 2, 0, 0, 0, 5, 0, 0, 0, 0};
    write_bytes(path_in("zero"), z, sizeof z);
    expect_fail(path_in("zero"), CAE_ERR_DIMS, "found 0", "offset 8");
    /* a gzip file that declares more than it could ever inflate to */
    uint8_t g[12] = {0, 0, 0x08, 2, 0x00, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0xff};
    write_gzip(path_in("bomb.gz"), g, sizeof g);
    expect_fail(path_in("bomb.gz"), CAE_ERR_TRUNCATED, "gzip file can hold", NULL);
}
END_TEST

START_TEST(broken_gzip_ends_early)
{
    /* incompressible-ish body so the compressed stream is long */
    uint8_t b[16 + 4000];
    const uint8_t head[16] = {0, 0, 0x08, 3, 0, 0, 0x03, 0xe8, 0, 0, 0, 2, 0, 0, 0, 2};
    memcpy(b, head, 16);
    uint32_t s = 12345;
    for (int i = 0; i < 4000; i++) {
        s = s * 1664525u + 1013904223u;
        b[16 + i] = (uint8_t)(s >> 24);
    }
    write_gzip(path_in("full.gz"), b, sizeof b);
    FILE *f = fopen(path_in("full.gz"), "rb");
    ck_assert(f);
    uint8_t z[8192];
    size_t zn = fread(z, 1, sizeof z, f);
    fclose(f);
    ck_assert(zn > 2000);
    /* cut in the middle of the deflate data */
    write_bytes(path_in("cut.gz"), z, zn / 2);
    expect_fail(path_in("cut.gz"), CAE_ERR_GZIP, "gzip stream ends early", "offset");
    /* cut inside the 8-byte trailer: the data is all there, the stream is not */
    write_bytes(path_in("trailer.gz"), z, zn - 4);
    expect_fail(path_in("trailer.gz"), CAE_ERR_GZIP, "ends early", NULL);
    /* cut right after the gzip header: not even the IDX header inflates */
    write_bytes(path_in("head.gz"), z, 12);
    expect_fail(path_in("head.gz"), CAE_ERR_GZIP, "ends early", "IDX header");
    /* a corrupted byte in the deflate data */
    z[zn / 2] ^= 0x55;
    z[zn / 2 + 1] ^= 0xaa;
    write_bytes(path_in("bad.gz"), z, zn);
    cae_error err;
    cae_idx *x = NULL;
    cae_status rc = cae_idx_read(path_in("bad.gz"), &x, &err);
    ck_assert_msg(rc == CAE_ERR_GZIP, "corrupt gzip: got %s (%s)", cae_status_name(rc), err.msg);
    ck_assert(x == NULL);
}
END_TEST

START_TEST(broken_missing_file_and_args)
{
    expect_fail(path_in("does-not-exist"), CAE_ERR_IO, "cannot open", NULL);
    cae_idx *x = NULL;
    ck_assert_int_eq(cae_idx_read(NULL, &x, NULL), CAE_ERR_ARG);
    ck_assert_int_eq(cae_idx_read(tmp, &x, NULL), CAE_ERR_IO); /* a directory */
    int64_t dims[1] = {0};
    uint8_t v = 0;
    ck_assert_int_eq(cae_idx_write(path_in("w"), CAE_IDX_U8, 1, dims, &v, NULL), CAE_ERR_DIMS);
    ck_assert_int_eq(cae_idx_write(path_in("w"), 0x42, 1, dims, &v, NULL), CAE_ERR_TYPE);
    char longpath[700];
    snprintf(longpath, sizeof longpath, "%s/no/such/dir/f", tmp);
    dims[0] = 1;
    cae_error err;
    ck_assert_int_eq(cae_idx_write(longpath, CAE_IDX_U8, 1, dims, &v, &err), CAE_ERR_IO);
    ck_assert_msg(strstr(err.msg, "cannot create") != NULL, "%s", err.msg);
}
END_TEST

/* --------------------------------------------------------------- datasets */

START_TEST(dataset_load_and_mismatch)
{
    uint8_t b[64], l[32];
    write_bytes(path_in("img"), b, good_images(b, 3));
    write_bytes(path_in("lab"), l, good_labels(l, 3));
    write_bytes(path_in("lab4"), l, good_labels(l, 4));
    cae_error err;
    cae_dataset *d = NULL;
    ck_assert_msg(cae_dataset_load(path_in("img"), path_in("lab"), &d, &err) == CAE_OK, "%s", err.msg);
    ck_assert_int_eq(d->n, 3);
    ck_assert_int_eq(d->dim, 4);
    ck_assert_int_eq(d->rows, 2);
    ck_assert_int_eq(d->cols, 2);
    ck_assert_int_eq(d->n_classes, 3);
    /* u8 images are kept as bytes, converted to reals on demand. */
    ck_assert(d->x == NULL && d->x8 != NULL);
    for (int i = 0; i < 12; i++) ck_assert_int_eq(d->x8[i], 20 * i);
    cae_dataset *v = cae_dataset_view(d, 1, 2);
    ck_assert(v && v->n == 2 && v->x == NULL && v->x8 == d->x8 + 4 && v->y[0] == 1 && !v->owns);
    /* concat: bytes + bytes stay bytes, in order, labels after labels */
    cae_dataset *v0 = cae_dataset_view(d, 0, 1), *v2 = cae_dataset_view(d, 2, 1);
    cae_dataset *cat = cae_dataset_concat(v2, v0);
    ck_assert(cat && cat->owns && cat->n == 2 && cat->dim == 4 && cat->rows == 2 && !cat->x);
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(cat->x8[i], 20 * (i + 8));
        ck_assert_int_eq(cat->x8[4 + i], 20 * i);
    }
    ck_assert(cat->y[0] == 2 && cat->y[1] == 0 && cat->n_classes == 3);
    const cae_real *vx = cae_dataset_reals(v); /* the view converts only its rows */
    ck_assert(vx != NULL && vx == v->x && d->x == NULL);
    for (int i = 0; i < 8; i++)
        ck_assert_msg(vx[i] == (cae_real)((20 * (i + 4)) * (1.0 / 255.0)), "view pixel %d = %g", i,
                      (double)vx[i]);
    const cae_real *dx = cae_dataset_reals(d);
    ck_assert(dx != NULL && dx == cae_dataset_reals(d)); /* converted once, then kept */
    for (int i = 0; i < 12; i++)
        ck_assert_msg(fabs((double)dx[i] - 20.0 * i / 255.0) < 1e-6, "pixel %d = %g", i, (double)dx[i]);
    cae_real rows2[4];
    cae_dataset_copy_rows(d, 2, 1, rows2);
    ck_assert(rows2[3] == dx[11]);
    ck_assert_int_eq(d->y[2], 2);
    ck_assert(cae_dataset_view(d, 2, 2) == NULL);

    /* reals + bytes: reals, each byte as byte / 255 */
    cae_dataset *cat2 = cae_dataset_concat(v, cat); /* v holds reals (converted above) */
    ck_assert(cat2 && cat2->n == 4 && cat2->x && !cat2->x8);
    for (int i = 0; i < 8; i++) ck_assert(cat2->x[i] == vx[i]);
    for (int i = 0; i < 4; i++)
        ck_assert(cat2->x[8 + i] == (cae_real)((20 * (i + 8)) * (1.0 / 255.0)));
    ck_assert(cat2->y[0] == 1 && cat2->y[1] == 2 && cat2->y[2] == 2 && cat2->y[3] == 0);
    cae_dataset other = *d; /* another width: refused */
    other.dim = 3;
    ck_assert(cae_dataset_concat(d, &other) == NULL);
    ck_assert(cae_dataset_concat(d, NULL) == NULL);
    other = *d; /* labels on one side only: refused, not silently dropped */
    other.y = NULL;
    ck_assert(cae_dataset_concat(d, &other) == NULL && cae_dataset_concat(&other, d) == NULL);
    cae_dataset_free(cat2);
    cae_dataset_free(cat);
    cae_dataset_free(v2);
    cae_dataset_free(v0);
    cae_dataset_free(v);
    cae_dataset_free(d);

    d = (cae_dataset *)1;
    cae_status rc = cae_dataset_load(path_in("img"), path_in("lab4"), &d, &err);
    ck_assert_msg(rc == CAE_ERR_MISMATCH, "got %s (%s)", cae_status_name(rc), err.msg);
    ck_assert(d == NULL);
    ck_assert_msg(strstr(err.msg, "expected 3 labels") && strstr(err.msg, "found 4"), "%s", err.msg);
    ck_assert_msg(strstr(err.msg, path_in("lab4")) != NULL, "%s", err.msg);
    /* labels given as images, images as labels */
    rc = cae_dataset_load(path_in("lab"), path_in("img"), &d, &err);
    ck_assert_msg(rc == CAE_ERR_RANK, "got %s (%s)", cae_status_name(rc), err.msg);
    /* a broken file inside a pair reports that file */
    write_bytes(path_in("empty"), "", 0);
    rc = cae_dataset_load(path_in("img"), path_in("empty"), &d, &err);
    ck_assert_int_eq(rc, CAE_ERR_EMPTY);
    ck_assert_msg(strstr(err.msg, path_in("empty")) != NULL, "%s", err.msg);
    /* float images outside [0,1] */
    float fx[4] = {0.f, 0.5f, 1.5f, 1.f};
    int64_t dims[2] = {1, 4};
    ck_assert(cae_idx_write(path_in("fimg"), CAE_IDX_F32, 2, dims, fx, NULL) == CAE_OK);
    write_bytes(path_in("lab1"), l, good_labels(l, 1));
    rc = cae_dataset_load(path_in("fimg"), path_in("lab1"), &d, &err);
    ck_assert_msg(rc == CAE_ERR_MISMATCH && strstr(err.msg, "[0,1]"), "%s", err.msg);
}
END_TEST

START_TEST(batcher_covers_and_is_deterministic)
{
    uint8_t b[16 + 4 * 23], l[8 + 23];
    const uint8_t head[16] = {0, 0, 0x08, 3, 0, 0, 0, 23, 0, 0, 0, 2, 0, 0, 0, 2};
    memcpy(b, head, 16);
    for (int i = 0; i < 23; i++)
        for (int k = 0; k < 4; k++) b[16 + 4 * i + k] = (uint8_t)(i * 10 + k);
    write_bytes(path_in("img"), b, sizeof b);
    write_bytes(path_in("lab"), l, good_labels(l, 23));
    cae_dataset *d = NULL;
    cae_error err;
    ck_assert_msg(cae_dataset_load(path_in("img"), path_in("lab"), &d, &err) == 0, "%s", err.msg);

    cae_batcher *bt = cae_batcher_new(d, 5, 99, 0);
    ck_assert(bt);
    ck_assert_int_eq(cae_batcher_batches_per_epoch(bt), 5);
    int64_t order[2][23];
    for (int e = 0; e < 2; e++) {
        cae_batcher_epoch(bt, (uint64_t)e);
        int seen[23] = {0}, pos = 0;
        cae_real x[5 * 4];
        int32_t y[5];
        int64_t m;
        while ((m = cae_batcher_next(bt, x, y)) > 0) {
            const int64_t *idx = cae_batcher_indices(bt);
            for (int r = 0; r < m; r++) {
                ck_assert(idx[r] >= 0 && idx[r] < 23);
                seen[idx[r]]++;
                order[e][pos++] = idx[r];
                ck_assert_int_eq(y[r], d->y[idx[r]]);
                ck_assert(x[r * 4 + 3] == cae_dataset_reals(d)[idx[r] * 4 + 3]);
            }
        }
        ck_assert_int_eq(pos, 23);
        for (int i = 0; i < 23; i++) ck_assert_msg(seen[i] == 1, "epoch %d: row %d seen %d times", e, i, seen[i]);
    }
    ck_assert_msg(memcmp(order[0], order[1], sizeof order[0]) != 0, "two epochs gave the same order");
    /* the same (seed, epoch) replays the same order, from a fresh batcher too */
    cae_batcher *b2 = cae_batcher_new(d, 5, 99, 1);
    ck_assert_int_eq(cae_batcher_batches_per_epoch(b2), 4);
    cae_batcher_epoch(b2, 1);
    int pos = 0, nb = 0;
    int64_t m;
    while ((m = cae_batcher_next(b2, NULL, NULL)) > 0) {
        ck_assert_int_eq(m, 5);
        for (int r = 0; r < m; r++) ck_assert(cae_batcher_indices(b2)[r] == order[1][pos++]);
        nb++;
    }
    ck_assert_int_eq(nb, 4); /* drop_last: the partial batch of 3 is skipped */
    ck_assert(cae_batcher_new(d, 0, 1, 0) == NULL);
    cae_batcher_free(b2);
    cae_batcher_free(bt);
    cae_dataset_free(d);
}
END_TEST

START_TEST(splits_of_a_generated_variation)
{
    char out[600];
    cae_error err;
    snprintf(out, sizeof out, "%s/variations", tmp);
    unsigned mask = 1u << CAE_VAR_RECT | 1u << CAE_VAR_CONVEX;
    ck_assert_msg(cae_variations_write(tmp, out, 7, 1, mask, &err) == CAE_OK, "%s", err.msg);
    cae_splits *s = NULL;
    ck_assert_msg(cae_splits_load(tmp, "convex", &s, &err) == CAE_OK, "%s", err.msg);
    int64_t sz[3];
    cae_variation_sizes(CAE_VAR_CONVEX, 1, sz);
    ck_assert_int_eq(s->train->n, sz[0]);
    ck_assert_int_eq(s->valid->n, sz[1]);
    ck_assert_int_eq(s->test->n, sz[2]);
    ck_assert_int_eq(s->train->dim, 784);
    ck_assert_int_eq(s->test->n_classes, 2);
    cae_splits_free(s);
    s = (cae_splits *)1;
    cae_status rc = cae_splits_load(tmp, "rot", &s, &err); /* not generated */
    ck_assert_msg(rc == CAE_ERR_IO && strstr(err.msg, "variations/rot/train-images"), "%s", err.msg);
    ck_assert(s == NULL);
    rc = cae_splits_load(tmp, "cifar", &s, &err);
    ck_assert_msg(rc == CAE_ERR_ARG && strstr(err.msg, "unknown data set 'cifar'"), "%s", err.msg);
}
END_TEST

/* ------------------------------------------------------ fetched real data */

static void need_file(const char *sub)
{
    char p[700];
    snprintf(p, sizeof p, "%s/%s", data_dir(), sub);
    struct stat st;
    ck_assert_msg(stat(p, &st) == 0,
                  "%s is missing: the data tests need the fetched data. Run scripts/fetch-data.sh "
                  "(or set CAE_DATA_DIR to where it put the data).", p);
}

START_TEST(mnist_splits)
{
    need_file("mnist/train-images-idx3-ubyte");
    cae_error err;
    cae_splits *s = NULL;
    ck_assert_msg(cae_splits_load(data_dir(), "mnist", &s, &err) == CAE_OK, "%s", err.msg);
    ck_assert_int_eq(s->train->n, 50000);
    ck_assert_int_eq(s->valid->n, 10000);
    ck_assert_int_eq(s->test->n, 10000);
    ck_assert_int_eq(s->train->dim, 784);
    ck_assert_int_eq(s->train->n_classes, 10);
    ck_assert_int_eq(s->train->y[0], 5); /* MNIST's first training label */
    ck_assert_int_eq(s->test->y[0], 7);  /* and first test label */
    ck_assert(s->valid->x8 == s->train->x8 + 50000 * 784);
    const cae_real *tx = cae_dataset_reals(s->test);
    ck_assert(tx != NULL);
    double sum = 0, mx = 0, mn = 1;
    for (int64_t i = 0; i < s->test->n * 784; i++) {
        double v = tx[i];
        sum += v;
        mx = v > mx ? v : mx;
        mn = v < mn ? v : mn;
    }
    ck_assert(mn == 0.0 && mx == 1.0);
    double mean = sum / (10000.0 * 784);
    ck_assert_msg(mean > 0.12 && mean < 0.14, "MNIST test mean pixel %g", mean);
    cae_splits_free(s);
}
END_TEST

START_TEST(fashion_splits)
{
    need_file("fashion-mnist/train-images-idx3-ubyte.gz");
    cae_error err;
    cae_splits *s = NULL;
    ck_assert_msg(cae_splits_load(data_dir(), "fashion", &s, &err) == CAE_OK, "%s", err.msg);
    ck_assert_int_eq(s->train->n, 50000);
    ck_assert_int_eq(s->valid->n, 10000);
    ck_assert_int_eq(s->test->n, 10000);
    ck_assert_int_eq(s->train->n_classes, 10);
    ck_assert_int_eq(s->train->y[0], 9); /* ankle boot */
    cae_splits_free(s);
}
END_TEST

START_TEST(photos_load)
{
    need_file("images/MANIFEST.tsv");
    char p[700];
    cae_error err;
    snprintf(p, sizeof p, "%s/images", data_dir());
    cae_photos *ph = NULL;
    ck_assert_msg(cae_photos_load(p, &ph, &err) == CAE_OK, "%s", err.msg);
    ck_assert_int_eq(cae_photos_count(ph), 20);
    cae_photos_free(ph);
    /* a manifest naming a file that is not an image */
    write_bytes(path_in("MANIFEST.tsv"), "# file\nbogus.png\tx\n", 19);
    write_bytes(path_in("bogus.png"), "not a png at all", 16);
    cae_status rc = cae_photos_load(tmp, &ph, &err);
    ck_assert_msg(rc == CAE_ERR_IMAGE && strstr(err.msg, "bogus.png: cannot decode"), "%s", err.msg);
    ck_assert(ph == NULL);
}
END_TEST

/* ---------------------------------------------------------------- the CLI */

static int run_cae(const char *args, char *out, size_t len)
{
    char cmd[1500];
    snprintf(cmd, sizeof cmd, "'%s/cae' %s 2>&1", CAE_BINARY_DIR, args);
    FILE *p = popen(cmd, "r");
    ck_assert(p);
    size_t n = fread(out, 1, len - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

START_TEST(cli_inspect_and_options)
{
    char bin[600];
    snprintf(bin, sizeof bin, "%s/cae", CAE_BINARY_DIR);
    ck_assert_msg(access(bin, X_OK) == 0, "%s not built", bin);
    uint8_t l[32];
    write_bytes(path_in("lab"), l, good_labels(l, 6));
    char out[4096], args[1600];
    snprintf(args, sizeof args, "data inspect '%s'", path_in("lab"));
    ck_assert_int_eq(run_cae(args, out, sizeof out), 0);
    ck_assert_msg(strstr(out, "dims:   6") && strstr(out, "labels: 3 classes") && strstr(out, "2:        2"), "%s", out);
    write_bytes(path_in("h3"), "\0\0\x08", 3);
    snprintf(args, sizeof args, "data inspect '%s'", path_in("h3"));
    ck_assert_int_eq(run_cae(args, out, sizeof out), 1);
    ck_assert_msg(strstr(out, "truncated") && strstr(out, "IDX header"), "%s", out);
    ck_assert_int_eq(run_cae("data make-variations --seed nope", out, sizeof out), 2);
    ck_assert_msg(strstr(out, "bad value for --seed") && !strchr(strchr(out, '\n') + 1, '\n'), "%s", out);
    ck_assert_int_eq(run_cae("data make-variations --frobnicate", out, sizeof out), 2);
    ck_assert_msg(strstr(out, "unknown option '--frobnicate'"), "%s", out);
    ck_assert_int_eq(run_cae("data make-variations --only rot,nope", out, sizeof out), 2);
    ck_assert_int_eq(run_cae("data inspect", out, sizeof out), 2);
    ck_assert_int_eq(run_cae("frobnicate", out, sizeof out), 2);
    ck_assert_int_eq(run_cae("--help", out, sizeof out), 0);
    ck_assert_msg(strstr(out, "data"), "%s", out);
    ck_assert_int_eq(run_cae("data --help", out, sizeof out), 0);
    snprintf(args, sizeof args, "data make-variations --small --only rect,convex --seed 3 --data '%s' --out '%s/v'", tmp, tmp);
    ck_assert_int_eq(run_cae(args, out, sizeof out), 0);
    ck_assert_msg(strstr(out, "rect ") && strstr(out, "convex"), "%s", out);
}
END_TEST

/* ------------------------------------------------- limits and regressions */

/* Under a 128 MB data limit, sizes read from files that would need more are
 * refused before anything is allocated, naming the memory (not a failed
 * malloc). Needs its own process (Check's fork) and no ASan (its shadow
 * memory does not fit under such a limit). */
START_TEST(memory_budget_refuses_before_allocating)
{
#if defined(__SANITIZE_ADDRESS__)
    return;
#endif
    const char *fork = getenv("CK_FORK");
    if (fork && !strcmp(fork, "no")) return;
    struct rlimit rl;
    ck_assert(getrlimit(RLIMIT_DATA, &rl) == 0);
    rl.rlim_cur = (rlim_t)128 << 20;
    ck_assert(setrlimit(RLIMIT_DATA, &rl) == 0);

    /* gzip declaring 200 x 1000 x 1000 u8 (200 MB), with enough (incompressible)
     * bytes that the ratio check alone would let it through */
    const size_t nz = 256 << 10;
    uint8_t *b = malloc(16 + nz);
    ck_assert(b != NULL);
    const uint8_t head[16] = {0, 0, 0x08, 3, 0, 0, 0, 200, 0, 0, 0x03, 0xe8, 0, 0, 0x03, 0xe8};
    memcpy(b, head, 16);
    uint64_t r = 88172645463325252ull;
    for (size_t i = 0; i < nz; i++) {
        r ^= r << 13, r ^= r >> 7, r ^= r << 17;
        b[16 + i] = (uint8_t)r;
    }
    write_gzip(path_in("big.gz"), b, 16 + nz);
    free(b);
    expect_fail(path_in("big.gz"), CAE_ERR_NOMEM, "memory this process can use", "200 x 1000 x 1000");

    /* 40 MB of u8 images load (kept as bytes), but as reals (160 or 320 MB)
     * they do not fit: cae_dataset_reals refuses instead of allocating */
    const int64_t n = 40, side = 1000;
    uint8_t *img = calloc((size_t)(n * side * side), 1);
    ck_assert(img != NULL);
    cae_error err;
    ck_assert_msg(cae_idx_write(path_in("img"), CAE_IDX_U8, 3, (int64_t[]){n, side, side}, img, &err) == 0,
                  "%s", err.msg);
    free(img);
    uint8_t lab[40] = {0};
    ck_assert(cae_idx_write(path_in("lab"), CAE_IDX_U8, 1, (int64_t[]){n}, lab, &err) == 0);
    cae_dataset *d = NULL;
    cae_status rc = cae_dataset_load(path_in("img"), path_in("lab"), &d, &err);
    ck_assert_msg(rc == CAE_OK && d && d->x8 && !d->x, "got %s (%s)", cae_status_name(rc), err.msg);
    ck_assert(cae_dataset_reals(d) == NULL);
    cae_dataset_free(d);

    /* 20 x 1000 x 1000 f32 images (80 MB read) need 80 MB more as reals */
    const int64_t nf = 20;
    FILE *f = fopen(path_in("fimg"), "wb");
    ck_assert(f != NULL);
    const uint8_t fhead[16] = {0, 0, CAE_IDX_F32, 3, 0, 0, 0, (uint8_t)nf, 0, 0, 0x03, 0xe8, 0, 0, 0x03, 0xe8};
    ck_assert(fwrite(fhead, 1, 16, f) == 16);
    static const float zeros[1 << 16];
    for (int64_t left = nf * side * side; left > 0; left -= 1 << 16)
        ck_assert(fwrite(zeros, sizeof(float), left < (1 << 16) ? (size_t)left : 1u << 16, f) > 0);
    ck_assert(fclose(f) == 0);
    ck_assert(cae_idx_write(path_in("flab"), CAE_IDX_U8, 1, (int64_t[]){nf}, lab, &err) == 0);
    d = (cae_dataset *)1;
    rc = cae_dataset_load(path_in("fimg"), path_in("flab"), &d, &err);
    ck_assert_msg(rc == CAE_ERR_NOMEM && d == NULL, "got %s (%s)", cae_status_name(rc), err.msg);
    ck_assert_msg(strstr(err.msg, "memory this process can use") && strstr(err.msg, "as reals"), "%s", err.msg);
}
END_TEST

/* Every input in tests/regress/idx/ (fuzzer findings and hand-made breakage)
 * goes through the reader and the dataset loader (as images, and with the
 * previous file as labels): whatever the status, no crash, no sanitizer
 * report, and a failure always explains itself. */
START_TEST(regress_inputs_are_handled)
{
    char dir[700];
    snprintf(dir, sizeof dir, "%s/tests/regress/idx", CAE_SOURCE_DIR);
    DIR *dp = opendir(dir);
    ck_assert_msg(dp != NULL, "cannot open %s", dir);
    struct dirent *e;
    int files = 0;
    char prev[1400] = "";
    while ((e = readdir(dp))) {
        if (e->d_name[0] == '.' || !strncmp(e->d_name, "README", 6)) continue;
        char path[1400];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        cae_error err;
        cae_idx *x = (cae_idx *)1;
        cae_status rc = cae_idx_read(path, &x, &err);
        ck_assert_msg(rc == CAE_OK ? x != NULL : x == NULL && err.msg[0], "%s: status %s, message '%s'",
                      e->d_name, cae_status_name(rc), err.msg);
        cae_idx_free(x);
        cae_dataset *d = (cae_dataset *)1;
        err.msg[0] = '\0';
        rc = cae_dataset_load(path, prev[0] ? prev : path, &d, &err);
        ck_assert_msg(rc == CAE_OK ? d != NULL : d == NULL && err.msg[0], "%s as images: status %s, '%s'",
                      e->d_name, cae_status_name(rc), err.msg);
        cae_dataset_free(d);
        snprintf(prev, sizeof prev, "%s", path);
        files++;
    }
    closedir(dp);
    ck_assert_msg(files > 0, "no inputs in %s", dir);
}
END_TEST


static Suite *suite(void)
{
    Suite *s = suite_create("data");
    TCase *t = tcase_create("idx");
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_set_timeout(t, 30);
    tcase_add_test(t, read_good_raw_and_gzip);
    tcase_add_test(t, write_read_round_trip_all_types);
    tcase_add_test(t, broken_empty);
    tcase_add_test(t, broken_truncated_header);
    tcase_add_test(t, broken_truncated_body);
    tcase_add_test(t, broken_trailing_bytes);
    tcase_add_test(t, broken_magic);
    tcase_add_test(t, broken_type_and_rank);
    tcase_add_test(t, broken_dims);
    tcase_add_test(t, broken_gzip_ends_early);
    tcase_add_test(t, broken_missing_file_and_args);
    suite_add_tcase(s, t);

    t = tcase_create("dataset");
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_set_timeout(t, 60);
    tcase_add_test(t, dataset_load_and_mismatch);
    tcase_add_test(t, batcher_covers_and_is_deterministic);
    tcase_add_test(t, splits_of_a_generated_variation);
    suite_add_tcase(s, t);

    t = tcase_create("fetched");
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_set_timeout(t, 60);
    tcase_add_test(t, mnist_splits);
    tcase_add_test(t, fashion_splits);
    tcase_add_test(t, photos_load);
    suite_add_tcase(s, t);

    t = tcase_create("limits");
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_set_timeout(t, 60);
    tcase_add_test(t, memory_budget_refuses_before_allocating);
    tcase_add_test(t, regress_inputs_are_handled);
    suite_add_tcase(s, t);

    t = tcase_create("cli");
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_set_timeout(t, 60);
    tcase_add_test(t, cli_inspect_and_options);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return tu_run(suite());
}
