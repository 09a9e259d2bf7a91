/* `cae import` — a checkpoint from NumPy arrays (the inverse of `cae export
 * --npy`): the library decides what the model holds (cae_import_npy); this
 * command turns options into the description and writes the checkpoint. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cae/npy.h"
#include "cli_common.h"
#include "commands.h"
#include "parse.h"

static const char *import_usage =
    "usage: cae import --npy DIR --model KIND --out CKPT [options]\n"
    "\n"
    "Build a checkpoint from NumPy .npy files named like the tensors (the layout\n"
    "cae export --npy writes; docs/CHECKPOINT.md): DIR/L1.W.npy (n_in x n_hidden,\n"
    "the encoder h = act(x W + b)), L1.b.npy (n_hidden), L1.c.npy (n_in, the\n"
    "decoder bias; zeros when absent), L1.Wd.npy (n_hidden x n_in: present iff\n"
    "the layer is untied), then L2.W.npy ... for a stack; --model mlp also needs\n"
    "out.V.npy (n_hidden x classes) and out.c.npy. float32 or float64, little-\n"
    "endian, C or Fortran order; any other .npy file in DIR is refused.\n"
    "\n"
    "  --model KIND     the layers' objective: ae, ae-wd, dae-g, dae-b, cae or rbm\n"
    "                   (with its default settings, as cae pretrain), or one per\n"
    "                   layer: cae,ae; or mlp, a classifier (layers recorded as ae)\n"
    "  --layers SIZES   the widths, input first: 784-1000 or 784-1000-500; every\n"
    "                   file's shape is checked against them (default: read from\n"
    "                   the files, layer by layer)\n"
    "  --act A          the encoder activation: sigmoid (default), tanh, relu,\n"
    "                   softplus or linear; or one per layer: sigmoid,tanh\n"
    "  --data SET       the data set the model is for (cae eval's default)\n"
    "  --out CKPT       the checkpoint to write (atomically)\n";

typedef struct import_opts {
    const char *dir, *model, *layers, *act, *data, *out;
    cae_model_info info; /* the description to import into */
} import_opts;

/* "784-1000-500" (or with commas) into sizes[]; the count, or -1. */
static int parse_sizes(const char *s, int64_t *sizes, int max)
{
    int n = 0;
    const char *p = s;
    for (;;) {
        char *end;
        if (*p < '0' || *p > '9' || n == max) return -1;
        const long long v = strtoll(p, &end, 10);
        if (v < 1 || v > (1 << 24)) return -1;
        sizes[n++] = v;
        if (!*end) break;
        if (*end != '-' && *end != ',') return -1;
        p = end + 1;
    }
    return n;
}

/* "sigmoid" or "sigmoid,tanh" into acts[]; the count, or -1. */
static int parse_acts(const char *s, cae_act *acts, int max)
{
    int n = 0;
    const char *p = s;
    for (;;) {
        const size_t len = strcspn(p, ",");
        char name[32];
        if (!len || len >= sizeof name || n == max) return -1;
        memcpy(name, p, len);
        name[len] = 0;
        const int a = cae_act_parse(name);
        if (a < 0) return -1;
        acts[n++] = (cae_act)a;
        if (!p[len]) break;
        p += len + 1;
    }
    return n;
}

/* "cae" or "cae,ae" into kinds[] (mlp only alone); the count, or -1. */
static int parse_kinds(const char *s, int *kinds, int max)
{
    int n = 0;
    const char *p = s;
    for (;;) {
        const size_t len = strcspn(p, ",");
        char name[32];
        if (!len || len >= sizeof name || n == max) return -1;
        memcpy(name, p, len);
        name[len] = 0;
        const int k = cae_model_kind_parse(name);
        if (k < 0 || (k == CAE_MODEL_MLP && (n || p[len]))) return -1;
        kinds[n++] = k;
        if (!p[len]) break;
        p += len + 1;
    }
    return n;
}

/* Every check that needs no file: CLI_PARSE_RUN, or the exit status. */
static int import_parse_opts(int argc, char **argv, import_opts *io)
{
    const char *who = "cae import";
    memset(io, 0, sizeof *io);
    io->act = "sigmoid";
    cli_opt o[] = {
        {"--npy", CLI_STR, &io->dir, 0, 0, 0, 0},
        {"--model", CLI_STR, &io->model, 0, 0, 0, 0},
        {"--layers", CLI_STR, &io->layers, 0, 0, 0, 0},
        {"--act", CLI_STR, &io->act, 0, 0, 0, 0},
        {"--data", CLI_STR, &io->data, 0, 0, 0, 0},
        {"--out", CLI_STR, &io->out, 0, 0, 0, 0},
    };
    const int n = (int)(sizeof o / sizeof o[0]);
    int rc = cli_parse(who, import_usage, argc, argv, o, n);
    if (rc != CLI_PARSE_RUN) return rc;
    if ((rc = cli_require(who, cli_opt_get(o, n, "--npy"))) || (rc = cli_require(who, cli_opt_get(o, n, "--model"))) ||
        (rc = cli_require(who, cli_opt_get(o, n, "--out"))))
        return rc;
    if (!*io->dir) {
        fprintf(stderr, "%s: bad value for --npy: an empty directory name\n", who);
        return 2;
    }
    int kinds[CAE_MAX_LAYERS];
    const int nk = parse_kinds(io->model, kinds, CAE_MAX_LAYERS);
    if (nk < 1) {
        fprintf(stderr, "%s: bad value for --model: '%s' (expected ae, ae-wd, dae-g, dae-b, cae, rbm, "
                        "a comma-separated list of those, one per layer, or mlp)\n", who, io->model);
        return 2;
    }
    const int kind = kinds[nk - 1]; /* the top's */
    int64_t sizes[CAE_MAX_LAYERS + 2] = {0};
    int n_layers = 0;
    if (io->layers) {
        const int ns = parse_sizes(io->layers, sizes, CAE_MAX_LAYERS + 1);
        if (ns < 2) {
            fprintf(stderr, "%s: bad value for --layers: '%s' (expected 2..%d widths in 1..2^24, input "
                            "first: 784-1000)\n", who, io->layers, CAE_MAX_LAYERS + 1);
            return 2;
        }
        n_layers = ns - 1;
    }
    cae_act acts[CAE_MAX_LAYERS];
    const int na = parse_acts(io->act, acts, CAE_MAX_LAYERS);
    if (na < 1) {
        fprintf(stderr, "%s: bad value for --act: '%s' (expected sigmoid, tanh, relu, softplus or linear, "
                        "or a comma-separated list, one per layer)\n", who, io->act);
        return 2;
    }
    if (na > 1 && n_layers && na != n_layers) {
        fprintf(stderr, "%s: --act gives %d activations, --layers %s has %d layer%s\n", who, na, io->layers,
                n_layers, n_layers == 1 ? "" : "s");
        return 2;
    }
    if (na > 1) n_layers = na;
    if (nk > 1 && n_layers && nk != n_layers) {
        fprintf(stderr, "%s: --model gives %d objectives, but the model has %d layer%s (--layers or --act)\n",
                who, nk, n_layers, n_layers == 1 ? "" : "s");
        return 2;
    }
    if (nk > 1) n_layers = nk;
    if (io->data && (!*io->data || strlen(io->data) >= sizeof io->info.data)) {
        fprintf(stderr, "%s: bad value for --data: '%s' (a data set name of 1..%d bytes)\n", who, io->data,
                (int)sizeof io->info.data - 1);
        return 2;
    }
    cae_model_info *info = &io->info;
    info->kind = (cae_model_kind)kind;
    info->n_layers = n_layers; /* 0: from the files */
    for (int k = 0; k < CAE_MAX_LAYERS; k++) {
        const int lk = kinds[nk > 1 ? (k < nk ? k : nk - 1) : 0];
        cae_layer_config *c = &info->layer[k];
        cae_layer_config_default(c, lk == CAE_MODEL_MLP ? CAE_MODEL_AE : (cae_model_kind)lk, sizes[k],
                                 k < n_layers ? sizes[k + 1] : 0);
        c->act = acts[na > 1 ? (k < na ? k : na - 1) : 0];
        cae_layer_config probe = *c; /* the sizes are not known yet */
        probe.n_in = probe.n_hidden = 1;
        cae_error e;
        if (k < (n_layers ? n_layers : 1) && cae_layer_config_check(&probe, &e)) {
            fprintf(stderr, "%s: layer %d (%s, --act %s): %s\n", who, k + 1, cae_model_kind_name(c->kind),
                    cae_act_name(c->act), e.msg);
            return 2;
        }
    }
    if (io->data) snprintf(info->data, sizeof info->data, "%s", io->data);
    return CLI_PARSE_RUN;
}

int cmd_import_parse(int argc, char **argv)
{
    import_opts io;
    return import_parse_opts(argc, argv, &io);
}

int cmd_import(int argc, char **argv)
{
    const char *who = "cae import";
    import_opts io;
    int rc = import_parse_opts(argc, argv, &io);
    if (rc != CLI_PARSE_RUN) return rc;
    if ((rc = cli_check_out(who, io.out))) return rc;
    cae_model_info info = io.info;
    cae_params *p = NULL;
    unsigned zero_c = 0;
    cae_error e;
    if (cae_import_npy(io.dir, &info, &p, &zero_c, &e)) {
        fprintf(stderr, "%s: --npy %s: %s\n", who, io.dir, e.msg);
        return 1;
    }
    if ((rc = cli_save_checkpoint(who, io.out, &info, p, NULL))) {
        cae_params_free(p);
        return rc;
    }
    char desc[256];
    printf("wrote %s: %s %s from %s:", io.out, cae_model_kind_name(info.kind),
           cli_describe_stack(&info, desc, sizeof desc), io.dir);
    for (int i = 0; i < cae_params_count(p); i++) {
        const cae_tensor *t = cae_params_at(p, i);
        char shape[64];
        int zeros = 0;
        for (int k = 0; k < info.n_layers; k++) {
            char cname[16];
            snprintf(cname, sizeof cname, "L%d.c", k + 1);
            zeros |= (zero_c >> k & 1) && !strcmp(t->name, cname);
        }
        printf(" %s (%s%s)", t->name, cae_shape_str(t, shape, sizeof shape),
               zeros ? ", zeros: no file" : "");
    }
    if (info.n_classes) printf("; %d classes", info.n_classes);
    printf("\n");
    cae_params_free(p);
    return 0;
}
