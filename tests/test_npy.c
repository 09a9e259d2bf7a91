/* NumPy import (cae/npy.h): the .npy reader on valid files of every version,
 * order and type it takes, against values written here byte by byte; every
 * refusal with its status and a message naming the file (truncations at
 * every length, wrong magic, object dtype, big-endian, shape overflow, huge
 * dimensions, bad dict syntax); and whole models: export -> import gives the
 * same store bit for bit and export again the same files; Fortran order and
 * float64 files; what an import refuses (missing, extra, misshapen, NaN). */
#include "ckpt_testutil.h" /* first: it sets _GNU_SOURCE */

#include "cae/npy.h"

/* ------------------------------------------------------------- writing */

typedef struct buf {
    unsigned char b[1 << 16];
    size_t n;
} buf;

static void b_put(buf *b, const void *p, size_t n)
{
    ck_assert(b->n + n <= sizeof b->b);
    memcpy(b->b + b->n, p, n);
    b->n += n;
}

/* Magic, version major.0, the dict padded with spaces and '\n' to 64. */
static void b_header(buf *b, int major, const char *dict)
{
    b->n = 0;
    const size_t pre = major == 1 ? 10 : 12, dl = strlen(dict);
    size_t total = pre + dl + 1;
    total += (64 - total % 64) % 64;
    unsigned char h[12] = {0x93, 'N', 'U', 'M', 'P', 'Y', (unsigned char)major, 0};
    for (size_t i = 0; i < pre - 8; i++) h[8 + i] = (unsigned char)((total - pre) >> (8 * i));
    b_put(b, h, pre);
    b_put(b, dict, dl);
    while (b->n < total - 1) b_put(b, " ", 1);
    b_put(b, "\n", 1);
}

/* n values as little-endian f4 (bytes 4) or f8. */
static void b_values(buf *b, const double *v, int64_t n, int bytes)
{
    for (int64_t i = 0; i < n; i++) {
        unsigned char e[8];
        uint64_t u;
        if (bytes == 4) {
            const float f = (float)v[i];
            uint32_t w;
            memcpy(&w, &f, 4);
            u = w;
        } else {
            memcpy(&u, &v[i], 8);
        }
        for (int k = 0; k < bytes; k++) e[k] = (unsigned char)(u >> (8 * k));
        b_put(b, e, (size_t)bytes);
    }
}

static cae_status decode(const buf *b, cae_npy *a, cae_error *e)
{
    return cae_npy_decode(b->b, b->n, "t.npy", a, e);
}

/* Decoding must fail with st and a message "t.npy: ..." containing want. */
static void expect_refused(const buf *b, cae_status st, const char *want)
{
    cae_npy a;
    cae_error e = {CAE_OK, ""};
    const cae_status got = decode(b, &a, &e);
    ck_assert_msg(got == st, "status %s, expected %s (wanted \"%s\"); message: %s", cae_status_name(got),
                  cae_status_name(st), want, e.msg);
    ck_assert_msg(!strncmp(e.msg, "t.npy: ", 7), "the message does not name the file: %s", e.msg);
    ck_assert_msg(strstr(e.msg, want), "the message lacks \"%s\": %s", want, e.msg);
    ck_assert(a.data == NULL && a.size == 0 && a.rank == 0);
}

/* ------------------------------------------------------------- reading */

START_TEST(decodes_every_form)
{
    buf b;
    cae_npy a;
    cae_error e;
    const double v6[6] = {1, -2, 0.5, 0.1, -0.0, 3.25};
    /* C order float32: the values in place. */
    b_header(&b, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }");
    b_values(&b, v6, 6, 4);
    ck_assert_msg(!decode(&b, &a, &e), "%s", e.msg);
    ck_assert(a.rank == 2 && a.shape[0] == 2 && a.shape[1] == 3 && a.size == 6 && a.dtype_bytes == 4 &&
              !a.fortran_order && a.version == 1);
    for (int i = 0; i < 6; i++) ck_assert(a.data[i] == (cae_real)(float)v6[i]);
    ck_assert(signbit(a.data[4]));
    cae_npy_release(&a);
    /* Fortran order float64 3x2: the file is column after column, so C
     * element (i, j) is file element i + 3 j. */
    b_header(&b, 1, "{'descr': '<f8', 'fortran_order': True, 'shape': (3, 2), }");
    b_values(&b, (const double[]){1, 2, 3, 4, 5, 6}, 6, 8);
    ck_assert_msg(!decode(&b, &a, &e), "%s", e.msg);
    const double want32[6] = {1, 4, 2, 5, 3, 6};
    for (int i = 0; i < 6; i++) ck_assert_msg(a.data[i] == want32[i], "element %d: %g", i, (double)a.data[i]);
    ck_assert(a.fortran_order && a.dtype_bytes == 8);
    cae_npy_release(&a);
    /* Rank 3, Fortran: value 100 i + 10 j + k at file offset i + 2 j + 6 k. */
    double f[2 * 3 * 4];
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++)
            for (int k = 0; k < 4; k++) f[i + 2 * j + 6 * k] = 100 * i + 10 * j + k;
    b_header(&b, 1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3, 4), }");
    b_values(&b, f, 24, 4);
    ck_assert_msg(!decode(&b, &a, &e), "%s", e.msg);
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++)
            for (int k = 0; k < 4; k++)
                ck_assert_msg(a.data[(i * 3 + j) * 4 + k] == 100 * i + 10 * j + k, "(%d, %d, %d): %g", i, j,
                              k, (double)a.data[(i * 3 + j) * 4 + k]);
    cae_npy_release(&a);
    /* float64 into this build's real type: rounded like a cast. */
    b_header(&b, 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (6,), }");
    b_values(&b, v6, 6, 8);
    ck_assert_msg(!decode(&b, &a, &e), "%s", e.msg);
    for (int i = 0; i < 6; i++) ck_assert(a.data[i] == (cae_real)v6[i]);
    cae_npy_release(&a);
    /* Versions 2.0 and 3.0 (a 4-byte header length), other key orders,
     * double quotes, Python 2 longs, no trailing comma. */
    b_header(&b, 2, "{\"shape\": (3L, 2L), \"descr\": \"<f8\", \"fortran_order\": False}");
    b_values(&b, v6, 6, 8);
    ck_assert_msg(!decode(&b, &a, &e), "%s", e.msg);
    ck_assert(a.version == 2 && a.shape[0] == 3 && a.shape[1] == 2 && a.data[3] == (cae_real)0.1);
    cae_npy_release(&a);
    b_header(&b, 3, "{'fortran_order': False, 'shape': (6,), 'descr': '<f4'}");
    b_values(&b, v6, 6, 4);
    ck_assert_msg(!decode(&b, &a, &e), "%s", e.msg);
    ck_assert(a.version == 3 && a.rank == 1 && a.size == 6);
    cae_npy_release(&a);
    /* A scalar and an empty array. */
    b_header(&b, 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (), }");
    b_values(&b, (const double[]){-7.5}, 1, 8);
    ck_assert_msg(!decode(&b, &a, &e), "%s", e.msg);
    ck_assert(a.rank == 0 && a.size == 1 && a.data[0] == -7.5);
    cae_npy_release(&a);
    b_header(&b, 1, "{'descr': '<f4', 'fortran_order': True, 'shape': (0, 3), }");
    ck_assert_msg(!decode(&b, &a, &e), "%s", e.msg);
    ck_assert(a.rank == 2 && a.size == 0 && a.data != NULL);
    cae_npy_release(&a);
    /* Empty, in Fortran order, with other dimensions whose product
     * overflows int64 (a fuzzer's find: the strides overflowed). */
    b_header(&b, 1,
             "{'descr': '<f4', 'fortran_order': True, 'shape': (0, 9000000000000000000, 3, "
             "9000000000000000000), }");
    ck_assert_msg(!decode(&b, &a, &e), "%s", e.msg);
    ck_assert(a.rank == 4 && a.size == 0 && a.shape[1] == 9000000000000000000LL);
    cae_npy_release(&a);
    cae_npy_release(&a); /* twice is fine */
}
END_TEST

START_TEST(malformed_files_are_refused)
{
    buf good, b;
    b_header(&good, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }");
    b_values(&good, (const double[]){1, 2, 3, 4, 5, 6}, 6, 4);
    /* Truncated anywhere. */
    for (size_t n = 0; n < good.n; n++) {
        b = good;
        b.n = n;
        expect_refused(&b, n ? CAE_ERR_TRUNCATED : CAE_ERR_EMPTY, n ? "the " : "empty");
    }
    const size_t data_at = good.n - 24;
    char want[96];
    b = good;
    b.n = data_at + 6;
    expect_refused(&b, CAE_ERR_TRUNCATED, "the data is 6 bytes, the shape (2, 3) of float32 needs 24");
    b = good;
    b.n = 30;
    snprintf(want, sizeof want, "the file ends after 30 bytes, the header says it ends at byte %zu", data_at);
    expect_refused(&b, CAE_ERR_TRUNCATED, want);
    b = good;
    b_put(&b, "\0\0\0\0", 4);
    expect_refused(&b, CAE_ERR_FORMAT, "4 bytes after the data");
    /* Magic and version. */
    b = good;
    b.b[5] = 'Z';
    expect_refused(&b, CAE_ERR_MAGIC, "starts with bytes 93 4e 55 4d 50 5a");
    b = good;
    b.b[6] = 4;
    expect_refused(&b, CAE_ERR_VERSION, "format version 4.0");
    b_header(&b, 2, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }");
    b.b[11] = 1; /* a 16 MiB header */
    expect_refused(&b, CAE_ERR_FORMAT, "more than 1048576");

    struct { const char *dict; cae_status st; const char *want; } bad[] = {
        {"{'descr': '|O', 'fortran_order': False, 'shape': (2,), }", CAE_ERR_TYPE, "object dtype ('|O')"},
        {"{'descr': '>f8', 'fortran_order': False, 'shape': (2,), }", CAE_ERR_TYPE, "big-endian float64"},
        {"{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }", CAE_ERR_TYPE, "'<i8' (signed integers)"},
        {"{'descr': '<f2', 'fortran_order': False, 'shape': (2,), }", CAE_ERR_TYPE, "a float of another size"},
        {"{'descr': 'f4', 'fortran_order': False, 'shape': (2,), }", CAE_ERR_TYPE, "expected float32 '<f4'"},
        {"{'descr': [('x', '<f4')], 'fortran_order': False, 'shape': (2,), }", CAE_ERR_TYPE, "structured dtype"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776, 1099511627776), }", CAE_ERR_DIMS,
         "has more than 2^61 elements"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999, 1), }", CAE_ERR_DIMS,
         "dimension 1 (99999999999999999999) is larger than 2^63 - 1"},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000, 1000000000), }", CAE_ERR_TRUNCATED,
         "the shape (1000000000, 1000000000) of float64 needs 8000000000000000000"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 1, 1, 1), }", CAE_ERR_RANK,
         "more than 4 dimensions"},
        {"{'descr': '<f4', 'fortran_order': False, }", CAE_ERR_FORMAT, "no 'shape' key"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}", CAE_ERR_FORMAT, "unknown key 'x'"},
        {"{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,)}", CAE_ERR_FORMAT,
         "'descr' appears twice"},
        {"{'descr': '<f4', 'fortran_order': 0, 'shape': (2,)}", CAE_ERR_FORMAT, "True or False"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2)}", CAE_ERR_FORMAT, "not a tuple"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (-2,)}", CAE_ERR_FORMAT, "a dimension"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2 3)}", CAE_ERR_FORMAT, "',' or ')'"},
        {"{'descr': '<f4' 'fortran_order': False, 'shape': (2,)}", CAE_ERR_FORMAT, "',' or '}' after a value"},
        {"{'descr' '<f4', 'fortran_order': False, 'shape': (2,)}", CAE_ERR_FORMAT, "':' after a key"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,)", CAE_ERR_FORMAT, "ends where"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,)} x", CAE_ERR_FORMAT, "only spaces"},
        {"['descr', '<f4']", CAE_ERR_FORMAT, "the header dict '{'"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), '\xc3\xa9': 1}", CAE_ERR_FORMAT,
         "not printable ASCII"},
        {"{'descr': '<\\f4', 'fortran_order': False, 'shape': (2,)}", CAE_ERR_FORMAT, "without escapes"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        b_header(&b, 1, bad[i].dict);
        b_values(&b, (const double[]){1, 2}, 2, 8);
        expect_refused(&b, bad[i].st, bad[i].want);
    }
#ifndef CAE_REAL_DOUBLE
    b_header(&b, 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }");
    b_values(&b, (const double[]){1, -1e300}, 2, 8);
    expect_refused(&b, CAE_ERR_NUMERIC, "element 1 is -1.0000000000000001e+300, beyond the range of float");
#endif
}
END_TEST

START_TEST(files_are_read_or_refused_by_path)
{
    char *dir = tu_tmpdir(), *path = path_in(dir, "a.npy"), *none = path_in(dir, "none.npy");
    buf b;
    b_header(&b, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }");
    b_values(&b, (const double[]){1, 2, 3}, 3, 4);
    write_all(path, b.b, b.n);
    cae_npy a;
    cae_error e;
    ck_assert_msg(!cae_npy_read(path, &a, &e), "%s", e.msg);
    ck_assert(a.size == 3 && a.data[2] == 3);
    cae_npy_release(&a);
    ck_assert_int_eq(cae_npy_read(none, &a, &e), CAE_ERR_IO);
    ck_assert_msg(strstr(e.msg, none) == e.msg && strstr(e.msg, "cannot open"), "%s", e.msg);
    ck_assert_int_eq(cae_npy_read(dir, &a, &e), CAE_ERR_IO);
    ck_assert_msg(strstr(e.msg, "a directory"), "%s", e.msg);
    write_all(path, b.b, 20);
    ck_assert_int_eq(cae_npy_read(path, &a, &e), CAE_ERR_TRUNCATED);
    ck_assert_msg(strstr(e.msg, path) == e.msg, "%s", e.msg);
    ck_assert_int_eq(cae_npy_read(NULL, &a, NULL), CAE_ERR_ARG);
    free(path);
    free(none);
    rm_tree(dir);
}
END_TEST

/* ---------------------------------------------------------------- models */

/* The description cae_import_npy is given for a model like `in`: kinds
 * and settings, but no sizes, no layer count, no untied flags. */
static cae_model_info ask_for(const cae_model_info *in)
{
    cae_model_info q;
    memset(&q, 0, sizeof q);
    q.kind = in->kind;
    for (int k = 0; k < CAE_MAX_LAYERS; k++) {
        q.layer[k] = in->layer[k < in->n_layers ? k : in->n_layers - 1];
        q.layer[k].n_in = q.layer[k].n_hidden = 0;
        q.layer[k].untied = 0;
    }
    snprintf(q.data, sizeof q.data, "%s", in->data);
    return q;
}

static void no_nan(cae_params *p)
{
    for (int i = 0; i < cae_params_count(p); i++) {
        cae_tensor *t = cae_params_at(p, i);
        for (int64_t j = 0; j < t->size; j++)
            if (!isfinite(t->data[j])) t->data[j] = (cae_real)0.75;
    }
}

static void same_files(const char *d1, const char *d2, const cae_params *p)
{
    for (int i = 0; i < cae_params_count(p); i++) {
        char name[80];
        snprintf(name, sizeof name, "%s.npy", cae_params_at(p, i)->name);
        char *a = path_in(d1, name), *b = path_in(d2, name);
        size_t na, nb;
        unsigned char *x = read_all(a, &na), *y = read_all(b, &nb);
        ck_assert_msg(na == nb && !memcmp(x, y, na), "%s differs from %s", b, a);
        free(x), free(y), free(a), free(b);
    }
}

static void round_trip(const cae_model_info *in, cae_params *p)
{
    char *dir = tu_tmpdir(), *d1 = path_in(dir, "one"), *d2 = path_in(dir, "two");
    cae_error ce;
    ck_assert_msg(!cae_export_npy(p, d1, &ce), "%s", ce.msg);
    cae_model_info got = ask_for(in);
    cae_params *q;
    unsigned zero_c = 99;
    cae_error e;
    ck_assert_msg(!cae_import_npy(d1, &got, &q, &zero_c, &e), "%s", e.msg);
    ck_assert_int_eq(zero_c, 0);
    assert_stores_equal(p, q);
    ck_assert_int_eq(got.n_layers, in->n_layers);
    ck_assert_int_eq(got.n_classes, in->n_classes);
    for (int k = 0; k < in->n_layers; k++)
        ck_assert_msg(!memcmp(&got.layer[k], &in->layer[k], sizeof got.layer[k]), "layer %d's config", k + 1);
    ck_assert_msg(!cae_checkpoint_check("x", &got, q, &ce), "%s", ce.msg);
    ck_assert_msg(!cae_export_npy(q, d2, &ce), "%s", ce.msg);
    same_files(d1, d2, p); /* export -> import -> export: the same bytes */
    cae_params_free(q);
    free(d1), free(d2);
    rm_tree(dir);
}

START_TEST(export_import_export_is_bit_identical)
{
    cae_model_info in;
    cae_params *p;
    make_stack(&in, &p, NULL); /* cae 7->5 tied, dae-b 5->3 tanh untied */
    no_nan(p);
    round_trip(&in, p);
    cae_params_free(p);
    make_classifier(&in, &p); /* ae 7->5, cae 5->4 relu untied, 3 classes */
    no_nan(p);
    round_trip(&in, p);
    cae_params_free(p);
}
END_TEST

/* Write tensor t as DIR/NAME.npy in Fortran order as float64. */
static void write_fortran_f64(const char *dir, const cae_tensor *t)
{
    ck_assert_int_eq(t->rank, 2);
    const int64_t r = t->shape[0], c = t->shape[1];
    double *v = malloc(sizeof(double) * (size_t)t->size);
    for (int64_t i = 0; i < r; i++)
        for (int64_t j = 0; j < c; j++) v[i + r * j] = (double)t->data[i * c + j] + 1.0 / 3;
    char dict[160], name[80];
    snprintf(dict, sizeof dict, "{'descr': '<f8', 'fortran_order': True, 'shape': (%lld, %lld), }", (long long)r,
             (long long)c);
    buf *b = malloc(sizeof *b);
    b_header(b, 1, dict);
    b_values(b, v, t->size, 8);
    snprintf(name, sizeof name, "%s.npy", t->name);
    char *path = path_in(dir, name);
    write_all(path, b->b, b->n);
    free(path), free(b), free(v);
}

START_TEST(fortran_order_float64_and_missing_decoder_bias)
{
    cae_model_info in;
    cae_params *p;
    make_stack(&in, &p, NULL);
    no_nan(p);
    char *dir = tu_tmpdir();
    cae_error ce;
    ck_assert_msg(!cae_export_npy(p, dir, &ce), "%s", ce.msg);
    write_fortran_f64(dir, cae_params_get(p, "L1.W"));
    write_fortran_f64(dir, cae_params_get(p, "L2.Wd"));
    char *c1 = path_in(dir, "L1.c.npy");
    ck_assert(!remove(c1));
    cae_model_info got = ask_for(&in);
    cae_params *q;
    unsigned zero_c;
    cae_error e;
    ck_assert_msg(!cae_import_npy(dir, &got, &q, &zero_c, &e), "%s", e.msg);
    ck_assert_int_eq(zero_c, 1); /* layer 1's decoder bias */
    for (int i = 0; i < cae_params_count(p); i++) {
        const cae_tensor *a = cae_params_at(p, i), *b = cae_params_at(q, i);
        ck_assert_str_eq(a->name, b->name);
        const int moved = !strcmp(a->name, "L1.W") || !strcmp(a->name, "L2.Wd");
        for (int64_t j = 0; j < a->size; j++) {
            const cae_real want = !strcmp(a->name, "L1.c") ? 0
                                  : moved ? (cae_real)((double)a->data[j] + 1.0 / 3)
                                          : a->data[j];
            ck_assert_msg(!memcmp(&want, &b->data[j], sizeof want), "%s[%lld]: %.9g, expected %.9g",
                          a->name, (long long)j, (double)b->data[j], (double)want);
        }
    }
    cae_params_free(q);
    cae_params_free(p);
    free(c1);
    rm_tree(dir);
}
END_TEST

/* Import dir as `in` must fail with st and a message containing want. */
static void expect_import_fails(const char *dir, const cae_model_info *in, cae_status st, const char *want)
{
    cae_model_info got = *in;
    cae_params *q = (cae_params *)&got;
    cae_error e = {CAE_OK, ""};
    const cae_status s = cae_import_npy(dir, &got, &q, NULL, &e);
    ck_assert_msg(s == st, "status %s, expected %s (\"%s\"): %s", cae_status_name(s), cae_status_name(st), want,
                  e.msg);
    ck_assert_msg(strstr(e.msg, want), "the message lacks \"%s\": %s", want, e.msg);
    ck_assert(q == NULL);
    ck_assert(!memcmp(&got, in, sizeof got)); /* untouched */
}

START_TEST(imports_are_refused_with_reasons)
{
    cae_model_info in;
    cae_params *p;
    make_stack(&in, &p, NULL);
    no_nan(p);
    char *dir = tu_tmpdir();
    cae_error ce;
    ck_assert_msg(!cae_export_npy(p, dir, &ce), "%s", ce.msg);
    const cae_model_info q = ask_for(&in);
    char *path = path_in(dir, "L1.b.npy"), *keep = path_in(dir, "keep"), *extra = path_in(dir, "mean.npy");
    /* Missing, then an extra file. */
    ck_assert(!rename(path, keep));
    expect_import_fails(dir, &q, CAE_ERR_MISMATCH, "L1.b.npy is missing (a cae model with 2 layers has L1.W, L1.b");
    ck_assert(!rename(keep, path));
    buf b;
    b_header(&b, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (5,), }");
    b_values(&b, (const double[]){1, 2, 3, 4, 5}, 5, 4);
    write_all(extra, b.b, b.n);
    expect_import_fails(dir, &q, CAE_ERR_MISMATCH, "/mean.npy: not a tensor of this model");
    ck_assert(!remove(extra));
    /* A wrong shape: L1.b with 4 values instead of 5. */
    b_header(&b, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }");
    b_values(&b, (const double[]){1, 2, 3, 4}, 4, 4);
    write_all(path, b.b, b.n);
    expect_import_fails(dir, &q, CAE_ERR_SHAPE, "L1.b.npy: shape 4, expected 5 (layer 1's encoder bias");
    /* A NaN, an object array. */
    b_header(&b, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (5,), }");
    b_values(&b, (const double[]){1, 2, NAN, 4, 5}, 5, 4);
    write_all(path, b.b, b.n);
    expect_import_fails(dir, &q, CAE_ERR_NUMERIC, "L1.b.npy: element 2 is nan");
    b_header(&b, 1, "{'descr': '|O', 'fortran_order': False, 'shape': (5,), }");
    write_all(path, b.b, b.n);
    expect_import_fails(dir, &q, CAE_ERR_TYPE, "L1.b.npy: object dtype");
    cae_tensor *t = cae_params_get(p, "L1.b"); /* put it back, in the real type's width */
    b_header(&b, 1, sizeof(cae_real) == 4 ? "{'descr': '<f4', 'fortran_order': False, 'shape': (5,), }"
                                          : "{'descr': '<f8', 'fortran_order': False, 'shape': (5,), }");
    double v[5];
    for (int i = 0; i < 5; i++) v[i] = t->data[i];
    b_values(&b, v, 5, (int)sizeof(cae_real));
    write_all(path, b.b, b.n);
    /* Sizes given that the files contradict; a chain that breaks. */
    cae_model_info sized = q;
    sized.n_layers = 2;
    sized.layer[0].n_in = 7;
    sized.layer[0].n_hidden = 6;
    expect_import_fails(dir, &sized, CAE_ERR_SHAPE, "L1.W.npy: shape 7x5, expected 7x6");
    sized.layer[0].n_hidden = 5;
    sized.layer[1].n_hidden = 3;
    sized.n_layers = 1;
    expect_import_fails(dir, &sized, CAE_ERR_MISMATCH, "L2.W.npy: not a tensor of this model");
    sized.n_layers = 2;
    sized.layer[1].n_in = 4;
    expect_import_fails(dir, &sized, CAE_ERR_SHAPE, "L2.W.npy: shape 5x3, expected 4x3");
    /* A classifier needs out.V and out.c. */
    cae_model_info mlp = q;
    mlp.kind = CAE_MODEL_MLP;
    expect_import_fails(dir, &mlp, CAE_ERR_MISMATCH, "out.V.npy is missing");
    /* No model there at all; no directory. */
    char *empty = path_in(dir, "empty");
    ck_assert(!mkdir(empty, 0755));
    expect_import_fails(empty, &q, CAE_ERR_MISMATCH, "no L1.W.npy");
    ck_assert(!rmdir(empty));
    expect_import_fails(empty, &q, CAE_ERR_IO, "cannot open the directory");
    /* Still importable after all that. */
    cae_model_info got = q;
    cae_params *r;
    cae_error e;
    ck_assert_msg(!cae_import_npy(dir, &got, &r, NULL, &e), "%s", e.msg);
    assert_stores_equal(p, r);
    cae_params_free(r);
    cae_params_free(p);
    free(path), free(keep), free(extra), free(empty);
    rm_tree(dir);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("npy");
    TCase *t = tcase_create("npy");
    tcase_set_timeout(t, 60);
    tcase_add_test(t, decodes_every_form);
    tcase_add_test(t, malformed_files_are_refused);
    tcase_add_test(t, files_are_read_or_refused_by_path);
    tcase_add_test(t, export_import_export_is_bit_identical);
    tcase_add_test(t, fortran_order_float64_and_missing_decoder_bias);
    tcase_add_test(t, imports_are_refused_with_reasons);
    suite_add_tcase(s, t);
    return tu_run(s);
}
