/* A model from a directory of .npy files (cae_import_npy, cae/npy.h): the
 * inverse of cae_export_npy. What a model holds is decided here, by the
 * same rules as a checkpoint (docs/CHECKPOINT.md): the layer tensors
 * Lk.W, Lk.b, Lk.c (zeros when absent), Lk.Wd (its presence makes the
 * layer untied), and out.V, out.c
 * for a classifier. Every file name is checked before any file is read;
 * each shape is checked against the description and the layer before. */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cae/npy.h"

/* The tensors of a model, in the order training creates them. */
typedef struct want {
    char name[24];
    int layer;     /* 1.. for Lk.*, 0 for out.* */
    char what[4];  /* "W", "b", "c", "Wd", "V" */
    int optional;  /* Lk.c */
    int present;   /* its file is in the directory */
    cae_npy a;
} want;

enum { MAX_WANT = 4 * CAE_MAX_LAYERS + 2 };

static int has_name(char **names, int n, const char *file)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(names[i], file)) return 1;
    return 0;
}

static void free_names(char **names, int n)
{
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
}

/* The *.npy entries of dir (names with the extension). */
static cae_status list_npy(const char *dir, char ***out, int *count, cae_error *err)
{
    *out = NULL;
    *count = 0;
    DIR *d = opendir(dir);
    if (!d) return cae_error_set(err, CAE_ERR_IO, "%.200s: cannot open the directory: %s", dir, strerror(errno));
    char **names = NULL;
    int n = 0, cap = 0;
    cae_status st = CAE_OK;
    for (struct dirent *e; (e = readdir(d));) {
        const size_t len = strlen(e->d_name);
        if (len < 5 || strcmp(e->d_name + len - 4, ".npy")) continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            char **grown = cap <= 1 << 20 ? realloc(names, sizeof *names * (size_t)cap) : NULL;
            if (!grown) {
                st = cae_error_set(err, CAE_ERR_NOMEM, "%.200s: out of memory listing the directory", dir);
                break;
            }
            names = grown;
        }
        if (!(names[n] = strdup(e->d_name))) {
            st = cae_error_set(err, CAE_ERR_NOMEM, "%.200s: out of memory listing the directory", dir);
            break;
        }
        n++;
    }
    closedir(d);
    if (st) {
        free_names(names, n);
        return st;
    }
    *out = names;
    *count = n;
    return CAE_OK;
}

static void add_want(want *w, int *n, int layer, const char *what, int optional)
{
    want *x = &w[(*n)++];
    memset(x, 0, sizeof *x);
    x->layer = layer;
    snprintf(x->what, sizeof x->what, "%s", what);
    if (layer)
        snprintf(x->name, sizeof x->name, "L%d.%s", layer, what);
    else
        snprintf(x->name, sizeof x->name, "out.%s", what);
    x->optional = optional;
}

/* "784x1000" with 0 shown as "?" (a size still to be read). */
static void dims_text(int rank, const int64_t *d, char *buf, size_t len)
{
    size_t m = 0;
    buf[0] = 0;
    for (int i = 0; i < rank && m < len; i++) {
        if (d[i])
            m += (size_t)snprintf(buf + m, len - m, i ? "x%lld" : "%lld", (long long)d[i]);
        else
            m += (size_t)snprintf(buf + m, len - m, i ? "x?" : "?");
    }
}

/* a's shape against rank/exp (an expected 0 takes the file's size). */
static cae_status check_shape(const char *dir, const want *w, int rank, int64_t *exp, const char *what,
                              cae_error *err)
{
    int ok = w->a.rank == rank;
    for (int i = 0; ok && i < rank; i++) ok = !exp[i] || exp[i] == w->a.shape[i];
    char got[96], want_s[96];
    if (!ok) {
        if (w->a.rank == 0)
            snprintf(got, sizeof got, "a scalar");
        else
            dims_text(w->a.rank, w->a.shape, got, sizeof got);
        dims_text(rank, exp, want_s, sizeof want_s);
        return cae_error_set(err, CAE_ERR_SHAPE, "%.200s/%s.npy: shape %s, expected %s (%s)", dir, w->name,
                             got, want_s, what);
    }
    for (int i = 0; i < rank; i++) exp[i] = w->a.shape[i];
    return CAE_OK;
}

static cae_status check_finite(const char *dir, const want *w, cae_error *err)
{
    for (int64_t i = 0; i < w->a.size; i++)
        if (!isfinite(w->a.data[i])) {
            char at[64] = "";
            if (w->a.rank == 2)
                snprintf(at, sizeof at, " (row %lld, column %lld)", (long long)(i / w->a.shape[1]),
                         (long long)(i % w->a.shape[1]));
            return cae_error_set(err, CAE_ERR_NUMERIC, "%.200s/%s.npy: element %lld%s is %g", dir,
                                 w->name, (long long)i, at, (double)w->a.data[i]);
        }
    return CAE_OK;
}

/* Read the wanted files in order, checking each shape as it comes. */
static cae_status read_all(const char *dir, cae_model_info *in, want *w, int nw, cae_error *err)
{
    char path[4200];
    cae_status st;
    for (int i = 0; i < nw; i++) {
        if (!w[i].present) continue;
        snprintf(path, sizeof path, "%s/%s.npy", dir, w[i].name);
        if ((st = cae_npy_read(path, &w[i].a, err))) return st;
        if ((st = check_finite(dir, &w[i], err))) return st;
        const int k = w[i].layer;
        if (k) {
            cae_layer_config *c = &in->layer[k - 1];
            if (!c->n_in && k > 1) c->n_in = in->layer[k - 2].n_hidden;
            char what[96];
            if (!strcmp(w[i].what, "W")) {
                snprintf(what, sizeof what, "layer %d's n_in x n_hidden%s", k,
                         k > 1 ? ", n_in = the layer below's n_hidden" : "");
                int64_t e[2] = {c->n_in, c->n_hidden};
                if ((st = check_shape(dir, &w[i], 2, e, what, err))) return st;
                c->n_in = e[0];
                c->n_hidden = e[1];
            } else if (!strcmp(w[i].what, "Wd")) {
                snprintf(what, sizeof what, "layer %d's untied decoder: n_hidden x n_in", k);
                if ((st = check_shape(dir, &w[i], 2, (int64_t[]){c->n_hidden, c->n_in}, what, err)))
                    return st;
            } else {
                const int bias = !strcmp(w[i].what, "b");
                snprintf(what, sizeof what, "layer %d's %s bias: %s values", k,
                         bias ? "encoder" : "decoder", bias ? "n_hidden" : "n_in");
                if ((st = check_shape(dir, &w[i], 1, (int64_t[]){bias ? c->n_hidden : c->n_in}, what, err)))
                    return st;
            }
        } else {
            const int64_t top = in->layer[in->n_layers - 1].n_hidden;
            if (!strcmp(w[i].what, "V")) {
                int64_t e[2] = {top, in->n_classes};
                if ((st = check_shape(dir, &w[i], 2, e,
                                      "the classifier: the top layer's n_hidden x classes", err)))
                    return st;
                if (e[1] > INT32_MAX)
                    return cae_error_set(err, CAE_ERR_SHAPE, "%.200s/out.V.npy: %lld classes", dir,
                                         (long long)e[1]);
                in->n_classes = (int)e[1];
            } else if ((st = check_shape(dir, &w[i], 1, (int64_t[]){in->n_classes},
                                         "the classifier's bias: one per class", err))) {
                return st;
            }
        }
    }
    return CAE_OK;
}

cae_status cae_import_npy(const char *dir, cae_model_info *info, cae_params **out,
                          unsigned *zero_c, cae_error *err)
{
    if (out) *out = NULL;
    if (zero_c) *zero_c = 0;
    if (!dir || !*dir || !info || !out)
        return cae_error_set(err, CAE_ERR_ARG, "cae_import_npy: no directory, description or output");
    if (info->kind < 0 || info->kind >= CAE_MODEL_COUNT || info->n_layers < 0 ||
        info->n_layers > CAE_MAX_LAYERS || info->n_classes < 0)
        return cae_error_set(err, CAE_ERR_ARG, "%.200s: cae_import_npy: a bad description (kind %d, %d layers)",
                             dir, (int)info->kind, info->n_layers);
    char **names;
    int n_names;
    cae_status st = list_npy(dir, &names, &n_names, err);
    if (st) return st;
    cae_model_info in = *info;
    char file[64];
    if (!in.n_layers) {
        while (in.n_layers < CAE_MAX_LAYERS &&
               (snprintf(file, sizeof file, "L%d.W.npy", in.n_layers + 1), has_name(names, n_names, file)))
            in.n_layers++;
        if (!in.n_layers) {
            free_names(names, n_names);
            return cae_error_set(err, CAE_ERR_MISMATCH,
                                 "%.200s: no L1.W.npy (the first layer's weights, n_in x n_hidden): "
                                 "not a directory of model tensors",
                                 dir);
        }
    }
    want w[MAX_WANT];
    int nw = 0;
    for (int k = 1; k <= in.n_layers; k++) {
        add_want(w, &nw, k, "W", 0);
        add_want(w, &nw, k, "b", 0);
        add_want(w, &nw, k, "c", 1);
        snprintf(file, sizeof file, "L%d.Wd.npy", k); /* untied iff its decoder is there */
        in.layer[k - 1].untied = has_name(names, n_names, file);
        if (in.layer[k - 1].untied) add_want(w, &nw, k, "Wd", 0);
    }
    if (in.kind == CAE_MODEL_MLP) {
        add_want(w, &nw, 0, "V", 0);
        add_want(w, &nw, 0, "c", 0);
    }
    /* Names first: a file this model has no place for, then a missing one. */
    char expected[256];
    size_t m = 0;
    expected[0] = 0;
    for (int i = 0; i < nw && m < sizeof expected; i++)
        m += (size_t)snprintf(expected + m, sizeof expected - m, "%s%s", i ? ", " : "", w[i].name);
    for (int f = 0; f < n_names && !st; f++) {
        int known = 0;
        for (int i = 0; i < nw && !known; i++) {
            snprintf(file, sizeof file, "%.23s.npy", w[i].name);
            if (!strcmp(names[f], file)) known = w[i].present = 1;
        }
        if (!known) {
            const char *hint = "";
            if (!strncmp(names[f], "out.", 4))
                hint = " (out.* files belong to a classifier, kind mlp)";
            st = cae_error_set(err, CAE_ERR_MISMATCH,
                               "%.200s/%.80s: not a tensor of this model%s; a %s model with %d layer%s "
                               "has %s",
                               dir, names[f], hint, cae_model_kind_name(in.kind), in.n_layers,
                               in.n_layers == 1 ? "" : "s", expected);
        }
    }
    free_names(names, n_names);
    for (int i = 0; i < nw && !st; i++)
        if (!w[i].present && !w[i].optional)
            st = cae_error_set(err, CAE_ERR_MISMATCH, "%.200s: %s.npy is missing (a %s model with %d layer%s has %s)",
                               dir, w[i].name, cae_model_kind_name(in.kind), in.n_layers,
                               in.n_layers == 1 ? "" : "s", expected);
    if (!st) st = read_all(dir, &in, w, nw, err);

    cae_params *p = NULL;
    unsigned zeroed = 0;
    if (!st && !(p = cae_params_new())) st = cae_error_set(err, CAE_ERR_NOMEM, "%.200s: out of memory", dir);
    for (int i = 0; i < nw && !st; i++) {
        const want *x = &w[i];
        const cae_layer_config *c = x->layer ? &in.layer[x->layer - 1] : NULL;
        int64_t shape[2];
        int rank = 1;
        if (x->present) {
            rank = x->a.rank;
            memcpy(shape, x->a.shape, sizeof(int64_t) * (size_t)rank);
        } else { /* an absent Lk.c */
            shape[0] = c->n_in;
            zeroed |= 1u << (x->layer - 1);
        }
        cae_tensor *t = cae_params_add(p, x->name, rank, shape);
        if (!t)
            st = cae_error_set(err, CAE_ERR_NOMEM, "%.200s: %s: %s", dir, x->name,
                               cae_params_error(p) ? cae_params_error(p) : "out of memory");
        else if (x->present)
            memcpy(t->data, x->a.data, sizeof(cae_real) * (size_t)t->size);
    }
    for (int i = 0; i < nw; i++) cae_npy_release(&w[i].a);
    if (!st) st = cae_checkpoint_check(dir, &in, p, err);
    if (st) {
        cae_params_free(p);
        return st;
    }
    *info = in;
    *out = p;
    if (zero_c) *zero_c = zeroed;
    return CAE_OK;
}
