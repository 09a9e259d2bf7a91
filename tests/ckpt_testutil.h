/* Shared by test_checkpoint.c and test_checkpoint_reject.c: fixtures (a
 * pretrained stack, a classifier), file helpers, and a second encoder of
 * docs/CHECKPOINT.md written from the document, independent of the
 * library's: it must produce the very bytes cae_checkpoint_save writes, and
 * it crafts the broken files (with valid CRCs) the loader must reject. */
#ifndef CAE_CKPT_TESTUTIL_H
#define CAE_CKPT_TESTUTIL_H

#define _GNU_SOURCE /* nftw */
#include <dirent.h>
#include <errno.h>
#include <float.h>
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "cae/checkpoint.h"
#include "testutil.h"

/* ------------------------------------------------------------ fixtures */

/* Random values everywhere (biases too), plus values whose bits are easy
 * to lose: -0, a float subnormal, the largest float, a NaN. */
static inline void fill_tensors(cae_params *p, uint64_t seed)
{
    for (int i = 0; i < cae_params_count(p); i++) {
        cae_tensor *t = cae_params_at(p, i);
        tu_fill_uniform(t->data, t->size, -2, 2, seed + (uint64_t)i);
    }
    cae_tensor *b = cae_params_at(p, 1);
    if (b && b->size >= 4) {
        b->data[0] = (cae_real)-0.0;
        b->data[1] = (cae_real)1e-40;
        b->data[2] = (cae_real)FLT_MAX;
        b->data[3] = (cae_real)NAN;
    }
}

static inline void base_info(cae_model_info *in, cae_model_kind kind)
{
    memset(in, 0, sizeof *in);
    in->kind = kind;
    snprintf(in->data, sizeof in->data, "mnist-rot");
    in->epochs_done = 17;
    in->seed = 0x0123456789abcdefULL;
    in->batch = 20;
    in->lr = 0.01;
    in->momentum = 0.9;
    cae_rng_seed(&in->rng, 42, 7);
    for (int i = 0; i < 5; i++) cae_rng_next(&in->rng);
    in->has_rng = 1;
}

/* A pretrained stack: L1 cae 7->5 sigmoid, tied; L2 dae-b 5->3 tanh,
 * untied; optimizer velocities for every tensor. */
static inline void make_stack(cae_model_info *in, cae_params **p, cae_params **opt)
{
    base_info(in, CAE_MODEL_CAE);
    in->n_layers = 2;
    cae_layer_config_default(&in->layer[0], CAE_MODEL_CAE, 7, 5);
    in->layer[0].lambda = 0.37;
    in->layer[0].composed = 1;
    cae_layer_config_default(&in->layer[1], CAE_MODEL_DAE_B, 5, 3);
    in->layer[1].act = CAE_ACT_TANH;
    in->layer[1].untied = 1;
    in->layer[1].wd = 1e-5;
    *p = cae_params_new();
    cae_error err;
    for (int k = 0; k < 2; k++)
        ck_assert_msg(!cae_layer_params(*p, k + 1, &in->layer[k], 1, &err), "%s",
                      err.msg);
    fill_tensors(*p, 100);
    if (!opt) return;
    *opt = cae_params_new();
    for (int i = 0; i < cae_params_count(*p); i++) {
        const cae_tensor *t = cae_params_at(*p, i);
        char name[64];
        snprintf(name, sizeof name, "v.%s", t->name);
        ck_assert(cae_params_add(*opt, name, t->rank, t->shape));
    }
    fill_tensors(*opt, 200);
}

/* A classifier: L1 ae 7->5 sigmoid tied, L2 cae 5->4 relu untied, 3 classes. */
static inline void make_classifier(cae_model_info *in, cae_params **p)
{
    base_info(in, CAE_MODEL_MLP);
    in->n_layers = 2;
    cae_layer_config_default(&in->layer[0], CAE_MODEL_AE, 7, 5);
    cae_layer_config_default(&in->layer[1], CAE_MODEL_CAE, 5, 4);
    in->layer[1].act = CAE_ACT_RELU;
    in->layer[1].untied = 1;
    in->n_classes = 3;
    in->mlp_wd = 1e-4;
    in->has_rng = 0;
    *p = cae_params_new();
    cae_error err;
    for (int k = 0; k < 2; k++)
        ck_assert_msg(!cae_layer_params(*p, k + 1, &in->layer[k], 2, &err), "%s",
                      err.msg);
    cae_mlp_config m;
    cae_model_info_mlp(in, &m);
    ck_assert_msg(!cae_mlp_params(*p, &m, 2, &err), "%s", err.msg);
    fill_tensors(*p, 300);
}

static inline int same_f64(double a, double b) { return !memcmp(&a, &b, sizeof a); }

/* NULL if a and b agree in every field (doubles bit for bit), else which. */
static inline const char *info_diff(const cae_model_info *a, const cae_model_info *b)
{
    if (a->kind != b->kind) return "kind";
    if (a->n_layers != b->n_layers) return "n_layers";
    for (int k = 0; k < a->n_layers; k++) {
        const cae_layer_config *x = &a->layer[k], *y = &b->layer[k];
        if (x->kind != y->kind) return "layer kind";
        if (x->n_in != y->n_in || x->n_hidden != y->n_hidden) return "layer sizes";
        if (x->act != y->act) return "layer act";
        if (x->untied != y->untied || x->composed != y->composed) return "untied/composed";
        if (!same_f64(x->lambda, y->lambda)) return "lambda";
        if (!same_f64(x->noise, y->noise)) return "noise";
        if (!same_f64(x->wd, y->wd)) return "wd";
        if (x->cd_k != y->cd_k || x->persistent != y->persistent) return "cd_k/persistent";
    }
    if (a->n_classes != b->n_classes) return "n_classes";
    if (!same_f64(a->mlp_wd, b->mlp_wd)) return "mlp_wd";
    if (strcmp(a->data, b->data)) return "data";
    if (a->epochs_done != b->epochs_done) return "epochs_done";
    if (a->seed != b->seed) return "seed";
    if (a->batch != b->batch) return "batch";
    if (!same_f64(a->lr, b->lr) || !same_f64(a->momentum, b->momentum)) return "lr/momentum";
    if (a->has_rng != b->has_rng) return "has_rng";
    if (memcmp(a->rng.s, b->rng.s, sizeof a->rng.s)) return "rng";
    return NULL;
}

/* The same tensors in the same order, bit for bit. */
static inline void assert_stores_equal(const cae_params *a, const cae_params *b)
{
    ck_assert_int_eq(cae_params_count(a), cae_params_count(b));
    for (int i = 0; i < cae_params_count(a); i++) {
        const cae_tensor *x = cae_params_at(a, i), *y = cae_params_at(b, i);
        ck_assert_str_eq(x->name, y->name);
        ck_assert_int_eq(x->rank, y->rank);
        for (int r = 0; r < x->rank; r++) ck_assert_int_eq(x->shape[r], y->shape[r]);
        for (int64_t j = 0; j < x->size; j++)
            ck_assert_msg(!memcmp(&x->data[j], &y->data[j], sizeof(cae_real)),
                          "tensor '%s' element %lld: %.9g vs %.9g", x->name, (long long)j,
                          (double)x->data[j], (double)y->data[j]);
    }
}

static inline int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

/* Remove a test's temporary directory and everything in it; frees dir. */
static inline void rm_tree(char *dir)
{
    nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
    free(dir);
}

static inline char *path_in(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

/* Entries of dir whose name contains ".tmp." */
static inline int temp_files(const char *dir)
{
    DIR *d = opendir(dir);
    ck_assert_msg(d != NULL, "opendir %s", dir);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strstr(e->d_name, ".tmp.")) n++;
    closedir(d);
    return n;
}

static inline unsigned char *read_all(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "open %s", path);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)len + 1);
    ck_assert((long)fread(b, 1, (size_t)len, f) == len);
    fclose(f);
    *n = (size_t)len;
    return b;
}

static inline void write_all(const char *path, const void *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    ck_assert(f != NULL);
    ck_assert(fwrite(b, 1, n, f) == n);
    ck_assert(!fclose(f));
}

/* Load must fail with status st and a message that names the file and
 * contains want; the out pointers are NULL afterwards. */
static inline void expect_load_fails(const char *path, cae_status st, const char *want)
{
    cae_model_info in;
    memset(&in, 0x5a, sizeof in);
    cae_params *p = (cae_params *)&in, *o = (cae_params *)&in;
    cae_error err;
    cae_status got = cae_checkpoint_load(path, &in, &p, &o, &err);
    ck_assert_msg(got == st, "%s: status %d (%s), expected %d (%s); message: %s", path, got,
                  cae_status_name(got), st, cae_status_name(st), err.msg);
    ck_assert_msg(strstr(err.msg, path) == err.msg, "message does not start with the file: %s", err.msg);
    ck_assert_msg(strstr(err.msg, want), "message lacks \"%s\": %s", want, err.msg);
    ck_assert(p == NULL && o == NULL);
    ck_assert_int_eq(in.n_layers, 0x5a5a5a5a); /* info untouched */
}

/* ---------------------------------------- an independent encoder (doc) */

typedef struct enc {
    unsigned char *b;
    size_t n, cap;
} enc;

static inline void e_put(enc *e, const void *p, size_t n)
{
    if (e->n + n > e->cap) {
        e->cap = 2 * (e->n + n) + 64;
        e->b = realloc(e->b, e->cap);
    }
    memcpy(e->b + e->n, p, n);
    e->n += n;
}
static inline void e_u32(enc *e, uint32_t v)
{
    unsigned char b[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 24)};
    e_put(e, b, 4);
}
static inline void e_u64(enc *e, uint64_t v)
{
    e_u32(e, (uint32_t)v);
    e_u32(e, (uint32_t)(v >> 32));
}
static inline void e_f64(enc *e, double v)
{
    uint64_t u;
    memcpy(&u, &v, 8);
    e_u64(e, u);
}

/* The description, then the real type and the tensor count. */
static inline void e_head(enc *e, const cae_model_info *in, uint32_t bytes, uint32_t n_tensors)
{
    e_u32(e, (uint32_t)in->kind);
    e_u32(e, (uint32_t)in->n_layers);
    for (int k = 0; k < in->n_layers; k++) {
        const cae_layer_config *l = &in->layer[k];
        const size_t at = e->n;
        e_u32(e, (uint32_t)l->kind);
        e_u64(e, (uint64_t)l->n_in);
        e_u64(e, (uint64_t)l->n_hidden);
        e_u32(e, (uint32_t)l->act);
        e_u32(e, (uint32_t)l->untied);
        e_u32(e, (uint32_t)l->composed);
        e_f64(e, l->lambda);
        e_f64(e, l->noise);
        e_f64(e, l->wd);
        e_u32(e, (uint32_t)l->cd_k);
        e_u32(e, (uint32_t)l->persistent);
        ck_assert_int_eq(e->n - at, 64); /* the documented record size */
    }
    e_u32(e, (uint32_t)in->n_classes);
    e_f64(e, in->mlp_wd);
    e_u32(e, (uint32_t)strlen(in->data));
    e_put(e, in->data, strlen(in->data));
    e_u32(e, (uint32_t)in->epochs_done);
    e_u64(e, in->seed);
    e_u64(e, (uint64_t)in->batch);
    e_f64(e, in->lr);
    e_f64(e, in->momentum);
    e_u32(e, (uint32_t)in->has_rng);
    for (int i = 0; i < 4; i++) e_u64(e, in->rng.s[i]);
    e_u32(e, bytes);
    e_u32(e, n_tensors);
}

/* One record; returns its file offset. n values from x (or zeros). */
static inline uint64_t e_tensor(enc *e, uint32_t role, const char *name, uint32_t rank,
                                const uint64_t *dims, const cae_real *x, int64_t n, uint32_t bytes)
{
    const uint64_t at = e->n + 24;
    e_u32(e, role);
    e_u32(e, (uint32_t)strlen(name));
    e_put(e, name, strlen(name));
    e_u32(e, rank);
    for (uint32_t r = 0; r < rank; r++) e_u64(e, dims[r]);
    for (int64_t i = 0; i < n; i++) {
        const double v = x ? (double)x[i] : 0.0;
        if (bytes == 4) {
            float f = (float)v;
            uint32_t u;
            memcpy(&u, &f, 4);
            e_u32(e, u);
        } else {
            e_f64(e, v);
        }
    }
    return at;
}

static inline void e_store(enc *e, const cae_params *p, uint32_t role, uint32_t bytes)
{
    for (int i = 0; p && i < cae_params_count(p); i++) {
        const cae_tensor *t = cae_params_at(p, i);
        uint64_t dims[4];
        for (int r = 0; r < t->rank; r++) dims[r] = (uint64_t)t->shape[r];
        e_tensor(e, role, t->name, (uint32_t)t->rank, dims, t->data, t->size, bytes);
    }
}

/* Header (magic, version, length, CRC) + payload to path. */
static inline void e_write(const char *path, const enc *e, uint32_t version)
{
    enc f = {0};
    e_put(&f, "CAECKPT", 8);
    e_u32(&f, version);
    e_u64(&f, e->n);
    e_u32(&f, (uint32_t)crc32(crc32(0, Z_NULL, 0), e->b, (uInt)e->n));
    e_put(&f, e->b, e->n);
    write_all(path, f.b, f.n);
    free(f.b);
}

/* A whole file for (in, p, opt) in the given real type. */
static inline void e_checkpoint(const char *path, const cae_model_info *in, const cae_params *p,
                                const cae_params *opt, uint32_t bytes)
{
    enc e = {0};
    e_head(&e, in, bytes, (uint32_t)(cae_params_count(p) + cae_params_count(opt)));
    e_store(&e, p, 0, bytes);
    e_store(&e, opt, 1, bytes);
    e_write(path, &e, 1);
    free(e.b);
}

#endif
