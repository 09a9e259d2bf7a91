/* Writes the seed corpora of the fuzz targets into DIR/{idx,checkpoint,cli}
 * (fuzz/make-corpus.sh runs it with DIR = fuzz/corpus). Every file is tiny
 * (< 4 KB): a few valid inputs of each kind and a few broken ones. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "../cli/parse.h"
#include "cae/checkpoint.h"
#include "cae/data.h"

#define SEP "\n--labels--\n" /* as in fuzz_idx.c */

static const char *root;

static void die(const char *what, const char *err.msg)
{
    fprintf(stderr, "make_seeds: %s: %s\n", what, err.msg ? err.msg : "failed");
    exit(1);
}

static char *path_of(const char *sub, const char *name)
{
    static char p[1024];
    snprintf(p, sizeof p, "%s/%s/%s", root, sub, name);
    return p;
}

static void put(const char *sub, const char *name, const void *a, size_t na, const void *b, size_t nb)
{
    FILE *f = fopen(path_of(sub, name), "wb");
    if (!f || fwrite(a, 1, na, f) != na || (nb && fwrite(b, 1, nb, f) != nb) || fclose(f)) die(name, "write");
}

static uint8_t *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) die(path, "open");
    uint8_t *b = malloc(1 << 16);
    *n = fread(b, 1, 1 << 16, f);
    fclose(f);
    return b;
}

/* An IDX file through the library's writer, returned as bytes. */
static uint8_t *idx_bytes(int type, int rank, const int64_t *dims, const void *data, size_t *n)
{
    char tmp[1024];
    cae_error err;
    snprintf(tmp, sizeof tmp, "%s/idx.tmp", root);
    if (cae_idx_write(tmp, type, rank, dims, data, &err)) die("cae_idx_write", err.msg);
    uint8_t *b = slurp(tmp, n);
    remove(tmp);
    return b;
}

static void gz_put(const char *name, const uint8_t *b, size_t n, size_t keep)
{
    gzFile g = gzopen(path_of("idx", name), "wb9");
    if (!g || gzwrite(g, b, (unsigned)n) != (int)n || gzclose(g) != Z_OK) die(name, "gzip");
    if (keep) { /* cut the compressed file short */
        size_t m;
        uint8_t *z = slurp(path_of("idx", name), &m);
        put("idx", name, z, keep < m ? keep : m / 2, NULL, 0);
        free(z);
    }
}

static void idx_seeds(void)
{
    uint8_t img[2 * 3 * 3], lab[2] = {1, 0};
    for (int i = 0; i < 18; i++) img[i] = (uint8_t)(i * 14);
    int64_t d3[3] = {2, 3, 3}, d1[1] = {2}, d2[2] = {2, 4};
    size_t ni, nl, n;
    uint8_t *bi = idx_bytes(CAE_IDX_U8, 3, d3, img, &ni);
    uint8_t *bl = idx_bytes(CAE_IDX_U8, 1, d1, lab, &nl);
    put("idx", "u8-images", bi, ni, NULL, 0);
    put("idx", "u8-labels", bl, nl, NULL, 0);
    gz_put("u8-images.gz", bi, ni, 0);
    gz_put("truncated.gz", bi, ni, 20);
    /* images + labels, for cae_dataset_load */
    uint8_t both[512];
    memcpy(both, bi, ni);
    memcpy(both + ni, SEP, sizeof SEP - 1);
    memcpy(both + ni + sizeof SEP - 1, bl, nl);
    put("idx", "dataset-u8", both, ni + sizeof SEP - 1 + nl, NULL, 0);
    int32_t lab32[2] = {3, 7};
    uint8_t *b32 = idx_bytes(CAE_IDX_I32, 1, d1, lab32, &n);
    float fimg[8] = {0, .25f, .5f, 1, .125f, 0, 1, .75f};
    size_t nf;
    uint8_t *bf = idx_bytes(CAE_IDX_F32, 2, d2, fimg, &nf);
    memcpy(both, bf, nf);
    memcpy(both + nf, SEP, sizeof SEP - 1);
    memcpy(both + nf + sizeof SEP - 1, b32, n);
    put("idx", "dataset-f32-i32", both, nf + sizeof SEP - 1 + n, NULL, 0);
    free(b32);
    free(bf);
    double dimg[8] = {0, .5, 1, .25, .75, 0, 1, .5};
    uint8_t *bd = idx_bytes(CAE_IDX_F64, 2, d2, dimg, &n);
    put("idx", "f64-rank2", bd, n, NULL, 0);
    free(bd);
    int16_t s16[2] = {-3, 300};
    int8_t s8[2] = {-1, 5};
    uint8_t *b16 = idx_bytes(CAE_IDX_I16, 1, d1, s16, &n);
    put("idx", "i16", b16, n, NULL, 0);
    free(b16);
    uint8_t *b8 = idx_bytes(CAE_IDX_I8, 1, d1, s8, &n);
    put("idx", "i8", b8, n, NULL, 0);
    free(b8);
    /* broken */
    put("idx", "truncated-body", bi, ni - 3, NULL, 0);
    put("idx", "trailing", bi, ni, "xyz", 3);
    put("idx", "bad-magic", "\x01\x00\x08\x01\x00\x00\x00\x01\x05", 9, NULL, 0);
    put("idx", "huge-dims", "\x00\x00\x0d\x03\xff\xff\xff\xff\xff\xff\xff\xff\x00\x00\x00\x02", 16, NULL, 0);
    put("idx", "zero-dim", "\x00\x00\x08\x02\x00\x00\x00\x00\x00\x00\x00\x03", 12, NULL, 0);
    free(bi);
    free(bl);
}

/* A checkpoint through the library's writer, behind fuzz_checkpoint's mode byte. */
static void ckpt_put(const char *name, const cae_model_info *info, const cae_params *p,
                     const cae_params *opt, cae_ckpt_real real, int cut, int flip)
{
    char tmp[1024];
    cae_error err;
    snprintf(tmp, sizeof tmp, "%s/ckpt.tmp", root);
    if (cae_checkpoint_save_as(tmp, info, p, opt, real, &err)) die(name, err.msg);
    size_t n;
    uint8_t *b = slurp(tmp, &n);
    remove(tmp);
    if (n > 4000) die(name, "seed over 4 KB");
    if (flip) b[n - 1] ^= 0x40;
    if (cut) n -= (size_t)cut;
    put("checkpoint", name, "\0", 1, b, n);
    free(b);
}

static void ckpt_seeds(void)
{
    cae_error err;
    cae_rng r;
    cae_rng_seed(&r, 1, 2);
    cae_model_info info;
    memset(&info, 0, sizeof info);
    info.kind = CAE_MODEL_CAE;
    info.n_layers = 1;
    cae_layer_config_default(&info.layer[0], CAE_MODEL_CAE, 4, 3);
    snprintf(info.data, sizeof info.data, "mnist");
    info.epochs_done = 2;
    info.seed = 1;
    info.batch = 20;
    info.lr = 0.01;
    info.rng = r;
    info.has_rng = 1;
    cae_params *p = cae_params_new();
    if (cae_layer_params(p, 1, &info.layer[0], &r, &err)) die("layer 1", err.msg);
    ckpt_put("cae-1layer-f32", &info, p, NULL, CAE_CKPT_F32, 0, 0);
    ckpt_put("cae-1layer-f64", &info, p, NULL, CAE_CKPT_F64, 0, 0);
    ckpt_put("truncated", &info, p, NULL, CAE_CKPT_F32, 7, 0);
    ckpt_put("bad-crc", &info, p, NULL, CAE_CKPT_F32, 0, 1);

    /* optimizer state beside the model */
    cae_params *opt = cae_params_new();
    for (int i = 0; i < cae_params_count(p); i++) {
        const cae_tensor *t = cae_params_at(p, i);
        cae_tensor *v = cae_params_add(opt, t->name, t->rank, t->shape);
        if (!v) die("opt", cae_params_error(opt));
        for (int64_t k = 0; k < v->size; k++) v->data[k] = (cae_real)(0.001 * (double)k);
    }
    ckpt_put("cae-with-opt", &info, p, opt, CAE_CKPT_F32, 0, 0);
    cae_params_free(opt);

    /* untied rbm below a second layer, then an MLP classifier on both */
    cae_params *q = cae_params_new();
    cae_model_info two = info;
    two.kind = CAE_MODEL_DAE_B;
    two.n_layers = 2;
    two.has_rng = 0;
    cae_layer_config_default(&two.layer[0], CAE_MODEL_RBM, 5, 3);
    cae_layer_config_default(&two.layer[1], CAE_MODEL_DAE_B, 3, 2);
    two.layer[1].untied = 1;
    if (cae_layer_params(q, 1, &two.layer[0], &r, &err) ||
        cae_layer_params(q, 2, &two.layer[1], &r, &err))
        die("two layers", err.msg);
    ckpt_put("rbm-dae-2layers", &two, q, NULL, CAE_CKPT_NATIVE, 0, 0);
    cae_mlp_config m;
    memset(&m, 0, sizeof m);
    m.n_layers = 2;
    m.sizes[0] = 5;
    m.sizes[1] = 3;
    m.sizes[2] = 2;
    m.n_classes = 3;
    m.wd = 1e-4;
    if (cae_mlp_params(q, &m, &r, &err)) die("mlp", err.msg);
    two.kind = CAE_MODEL_MLP;
    two.n_classes = 3;
    two.mlp_wd = 1e-4;
    ckpt_put("mlp-2layers", &two, q, NULL, CAE_CKPT_F32, 0, 0);
    cae_params_free(q);
    cae_params_free(p);
    put("checkpoint", "magic-only", "\0CAECKPT", 8, NULL, 0);
}

/* argv after the command name, NUL-separated, behind the parser's index. */
#define NAME_ONLY(name, fn) name,
static const char *const parsers[] = {CAE_CLI_PARSERS(NAME_ONLY)};

static void cli_put(const char *cmd, const char *file, const char *const *args)
{
    int which = -1;
    for (size_t i = 0; i < sizeof parsers / sizeof parsers[0]; i++)
        if (!strcmp(parsers[i], cmd)) which = (int)i;
    if (which < 0) return; /* no parser (yet) */
    uint8_t b[1024];
    size_t n = 0;
    b[n++] = (uint8_t)which;
    for (int i = 0; args[i]; i++) {
        size_t l = strlen(args[i]);
        if (i) b[n++] = 0;
        memcpy(b + n, args[i], l);
        n += l;
    }
    put("cli", file, b, n, NULL, 0);
}

static void cli_seeds(void)
{
    cli_put("data", "data-inspect", (const char *const[]){"inspect", "x.idx", NULL});
    cli_put("data", "data-make-variations",
            (const char *const[]){"make-variations", "--small", "--only=rect,convex", "--seed", "0x3", "--out", "o", NULL});
    cli_put("data", "data-fetch", (const char *const[]){"fetch", "--dir", "d", "--only", "mnist", NULL});
    cli_put("pretrain", "pretrain-cae",
            (const char *const[]){"--model", "cae", "--data", "mnist", "--out", "a.ckpt", "--hidden=10", "--lambda",
                                  "0.5", "--epochs", "2", "--momentum", "0.9", "--seed", "7", NULL});
    cli_put("pretrain", "pretrain-rbm",
            (const char *const[]){"--model=rbm", "--data=rot", "--out=r", "--cd-k", "3", "--pcd", "--on", "a", NULL});
    cli_put("finetune", "finetune",
            (const char *const[]){"--init", "a", "--data", "basic", "--out", "b", "--patience", "3", "--wd", "1e-5", NULL});
    cli_put("eval", "eval", (const char *const[]){"--model", "b", "--split", "test", "--json", "--limit", "100", NULL});
    cli_put("export", "export", (const char *const[]){"--model", "b", "--npy", "dir", NULL});
    cli_put("analyze", "analyze",
            (const char *const[]){"--model", "a", "--name", "CAE", "--model", "b", "--name", "AE", "--data", "mnist", NULL});
    cli_put("pretrain", "pretrain-help", (const char *const[]){"--help", NULL});
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: make_seeds DIR\n");
        return 2;
    }
    root = argv[1];
    const char *subs[] = {"idx", "checkpoint", "cli"};
    for (int i = 0; i < 3; i++) {
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", root, subs[i]);
        mkdir(root, 0755);
        mkdir(p, 0755);
    }
    idx_seeds();
    ckpt_seeds();
    cli_seeds();
    return 0;
}
