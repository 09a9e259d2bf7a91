/* Checkpoints: status strings, the checks of a description and its
 * tensors (shared with the load in checkpoint_load.c), and save. The byte
 * layout is in docs/CHECKPOINT.md; every multi-byte field is encoded
 * explicitly in little-endian (ckpt_internal.h: put_* / get_*), never a
 * struct written whole, so a file means the same on every machine.
 *
 * Save: check the description and the tensors, write PATH.tmp.<pid> (a
 * zero header, the payload while its CRC-32 accumulates, then the real
 * header over the zeros), fflush + fsync, rename over PATH. Any failure
 * unlinks the temp file and leaves PATH alone. */
#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "models/ckpt_internal.h"

/* ------------------------------------------------------------- messages */

cae_status cae_ckpt_fail(const ckpt_ctx *c, cae_status st, uint64_t off, const char *fmt,
                              ...)
{
    if (!c->err) return st;
    c->err->status = st;
    char *msg = c->err->msg;
    const size_t len = sizeof c->err->msg;
    const char *path = c->path ? c->path : "checkpoint";
    int n = off == NO_OFF ? snprintf(msg, len, "%s: ", path)
                          : snprintf(msg, len, "%s: offset %llu: ", path, (unsigned long long)off);
    if (n >= 0 && (size_t)n < len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg + n, len - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return st;
}

void cae_ckpt_dims_str(int rank, const int64_t *dims, char *buf, size_t len)
{
    size_t n = 0;
    buf[0] = 0;
    if (rank == 0) snprintf(buf, len, "scalar");
    for (int i = 0; i < rank && n < len; i++) {
        int k = snprintf(buf + n, len - n, i ? "x%lld" : "%lld", (long long)dims[i]);
        if (k < 0) break;
        n += (size_t)k;
    }
}

/* A file name made of the tensor name: 1..63 printable ASCII bytes, no
 * '/', no backslash, not "." or "..". NULL if fine, else why not. */
const char *cae_ckpt_name_problem(const char *s, size_t len)
{
    if (len == 0) return "is empty";
    if (len > CKPT_NAME_MAX) return "is longer than 63 bytes";
    for (size_t i = 0; i < len; i++)
        if (s[i] <= 0x20 || s[i] >= 0x7f || s[i] == '/' || s[i] == '\\')
            return "has a byte that is not printable ASCII, or '/' or a backslash";
    if ((len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.'))
        return "is '.' or '..'";
    return NULL;
}

/* ------------------------------------------------------ the description */

static uint64_t unit_off(const uint64_t *off, int u) { return off ? off[u] : NO_OFF; }

cae_status cae_ckpt_check_info(const ckpt_ctx *c, const cae_model_info *in,
                                    const uint64_t *off)
{
    const cae_status F = CAE_ERR_FORMAT;
    if ((unsigned)in->kind >= CAE_MODEL_COUNT)
        return cae_ckpt_fail(c, F, unit_off(off, U_HEAD), "model kind %d, expected 0..%d (ae..mlp)",
                             (int)in->kind, CAE_MODEL_COUNT - 1);
    if (in->n_layers < 1 || in->n_layers > CAE_MAX_LAYERS)
        return cae_ckpt_fail(c, F, unit_off(off, U_HEAD), "%d layers, expected 1..%d", in->n_layers,
                             CAE_MAX_LAYERS);
    for (int k = 0; k < in->n_layers; k++) {
        const cae_layer_config *l = &in->layer[k];
        const uint64_t o = unit_off(off, U_LAYER + k);
        cae_error why;
        const char *bad = cae_layer_config_check(l, &why) ? why.msg : NULL;
        if ((unsigned)l->kind >= CAE_MODEL_MLP)
            return cae_ckpt_fail(c, F, o, "layer %d: pretraining kind %d, expected 0..%d (ae..rbm)",
                                 k + 1, (int)l->kind, CAE_MODEL_MLP - 1);
        if ((unsigned)l->act > CAE_ACT_LINEAR)
            return cae_ckpt_fail(c, F, o,
                                 "layer %d: activation %d, expected 0..%d (sigmoid..linear)", k + 1,
                                 (int)l->act, CAE_ACT_LINEAR);
        if (bad)
            return cae_ckpt_fail(c, F, o, "layer %d (%lldx%lld): %s", k + 1, (long long)l->n_in,
                                 (long long)l->n_hidden, bad);
        if ((l->untied | l->composed | l->persistent) & ~1)
            return cae_ckpt_fail(
                c, F, o, "layer %d: untied %d, composed %d, persistent %d: each must be 0 or 1",
                k + 1, l->untied, l->composed, l->persistent);
        if (!isfinite(l->lambda) || !isfinite(l->noise) || !isfinite(l->wd))
            return cae_ckpt_fail(c, F, o, "layer %d: lambda %g, noise %g, wd %g: expected finite",
                                 k + 1, l->lambda, l->noise, l->wd);
        if (l->cd_k < 0 || l->cd_k > 1000)
            return cae_ckpt_fail(c, F, o, "layer %d: cd_k %d, expected 0..1000", k + 1, l->cd_k);
        if (k > 0 && l->n_in != in->layer[k - 1].n_hidden)
            return cae_ckpt_fail(
                c, F, o, "layer %d has %lld inputs, expected %lld (layer %d's hidden units)", k + 1,
                (long long)l->n_in, (long long)in->layer[k - 1].n_hidden, k);
    }
    const uint64_t oc = unit_off(off, U_CLASS);
    if (in->kind == CAE_MODEL_MLP && (in->n_classes < 2 || in->n_classes > CKPT_MAX_CLASSES))
        return cae_ckpt_fail(c, F, oc, "an mlp has %d classes, expected 2..%d", in->n_classes,
                             CKPT_MAX_CLASSES);
    if (in->kind != CAE_MODEL_MLP && in->n_classes != 0)
        return cae_ckpt_fail(
            c, F, oc, "a %s checkpoint has %d classes, expected 0 (only an mlp has a classifier)",
            cae_model_kind_name(in->kind), in->n_classes);
    if (!(in->mlp_wd >= 0) || !isfinite(in->mlp_wd))
        return cae_ckpt_fail(c, F, oc, "mlp weight decay %g, expected finite and >= 0", in->mlp_wd);
    size_t dl = strnlen(in->data, sizeof in->data);
    if (dl == sizeof in->data)
        return cae_ckpt_fail(c, F, unit_off(off, U_DATA),
                             "data set name is not NUL-terminated within %zu bytes",
                             sizeof in->data);
    const uint64_t op = unit_off(off, U_PROGRESS);
    if (in->epochs_done < 0 || in->epochs_done > CKPT_MAX_EPOCHS)
        return cae_ckpt_fail(c, F, op, "epochs done %d, expected 0..%d", in->epochs_done,
                             CKPT_MAX_EPOCHS);
    if (in->batch < 0)
        return cae_ckpt_fail(c, F, op, "batch %lld, expected >= 0", (long long)in->batch);
    if (!isfinite(in->lr) || !isfinite(in->momentum) || in->lr < 0 || in->momentum < 0)
        return cae_ckpt_fail(c, F, op, "lr %g, momentum %g: expected finite and >= 0", in->lr,
                             in->momentum);
    if (in->has_rng != 0 && in->has_rng != 1)
        return cae_ckpt_fail(c, F, op, "has_rng %d, expected 0 or 1", in->has_rng);
    return CAE_OK;
}

typedef struct ckpt_expect {
    char name[16];
    int rank;
    int64_t dims[2];
    const char *why;
} ckpt_expect;

static int expected_tensors(const cae_model_info *in, ckpt_expect *e)
{
    int n = 0;
    for (int k = 1; k <= in->n_layers; k++) {
        const cae_layer_config *l = &in->layer[k - 1];
        static const char *what[4] = {"W", "b", "c", "Wd"};
        const int64_t shapes[4][2] = {
            {l->n_in, l->n_hidden}, {l->n_hidden, 0}, {l->n_in, 0}, {l->n_hidden, l->n_in}};
        for (int i = 0; i < (l->untied ? 4 : 3); i++) {
            snprintf(e[n].name, sizeof e[n].name, "L%d.%s", k, what[i]);
            e[n].rank = (i == 0 || i == 3) ? 2 : 1;
            e[n].dims[0] = shapes[i][0];
            e[n].dims[1] = shapes[i][1];
            e[n].why = i == 3 ? "the layer is untied" : "every layer has it";
            n++;
        }
    }
    if (in->n_classes > 0) {
        const int64_t top = in->layer[in->n_layers - 1].n_hidden;
        e[n] = (ckpt_expect){"out.V", 2, {top, in->n_classes}, "a classifier has it"};
        e[n + 1] = (ckpt_expect){"out.c", 1, {in->n_classes, 0}, "a classifier has it"};
        n += 2;
    }
    return n;
}

/* "L<digits>." or "out.": a name the description speaks for. */
static int reserved_name(const char *s)
{
    if (!strncmp(s, "out.", 4)) return 1;
    if (s[0] != 'L' || s[1] < '0' || s[1] > '9') return 0;
    const char *q = s + 1;
    while (*q >= '0' && *q <= '9') q++;
    return *q == '.';
}

cae_status cae_ckpt_check_tensors(const ckpt_ctx *c, const cae_model_info *in,
                                       const ckpt_desc *d, int n)
{
    const cae_status M = CAE_ERR_MISMATCH;
    ckpt_expect e[4 * CAE_MAX_LAYERS + 2];
    const int ne = expected_tensors(in, e);
    for (int j = 0; j < ne; j++) {
        const ckpt_desc *t = NULL;
        for (int i = 0; i < n && !t; i++)
            if (d[i].role == ROLE_MODEL && !strcmp(d[i].name, e[j].name)) t = &d[i];
        char want[64], got[64];
        cae_ckpt_dims_str(e[j].rank, e[j].dims, want, sizeof want);
        if (!t)
            return cae_ckpt_fail(c, M, NO_OFF, "tensor '%s' (%s) is missing: %s", e[j].name, want,
                                 e[j].why);
        int same = t->rank == e[j].rank;
        for (int r = 0; same && r < t->rank; r++) same = t->dims[r] == e[j].dims[r];
        if (!same) {
            cae_ckpt_dims_str(t->rank, t->dims, got, sizeof got);
            return cae_ckpt_fail(c, M, t->off, "tensor '%s' is %s, the description says %s",
                                 t->name, got, want);
        }
    }
    for (int i = 0; i < n; i++) {
        if (d[i].role != ROLE_MODEL || !reserved_name(d[i].name)) continue;
        int found = 0;
        for (int j = 0; j < ne && !found; j++) found = !strcmp(d[i].name, e[j].name);
        if (!found)
            return cae_ckpt_fail(c, M, d[i].off,
                                 "tensor '%s' is not in the description (%d layer%s%s%s)",
                                 d[i].name, in->n_layers, in->n_layers > 1 ? "s" : "",
                                 in->n_classes > 0 ? ", a classifier" : ", no classifier",
                                 d[i].name[0] == 'L' ? "; Wd only for untied layers" : "");
    }
    return CAE_OK;
}

/* Descriptors of a store's tensors (save side). */
static cae_status store_descs(const ckpt_ctx *c, const cae_params *p, int role, ckpt_desc *d,
                                   int *n)
{
    for (int i = 0; p && i < cae_params_count(p); i++) {
        const cae_tensor *t = cae_params_at(p, i);
        const char *why = cae_ckpt_name_problem(t->name, strlen(t->name));
        if (why)
            return cae_ckpt_fail(c, CAE_ERR_FORMAT, NO_OFF, "%s tensor '%.80s': the name %s",
                                 role == ROLE_MODEL ? "model" : "optimizer", t->name, why);
        if (*n == CKPT_MAX_TENSORS)
            return cae_ckpt_fail(c, CAE_ERR_FORMAT, NO_OFF, "more than %d tensors",
                                 CKPT_MAX_TENSORS);
        ckpt_desc *x = &d[(*n)++];
        memset(x, 0, sizeof *x);
        strcpy(x->name, t->name);
        x->role = role;
        x->rank = t->rank;
        memcpy(x->dims, t->shape, sizeof x->dims);
        x->size = t->size;
        x->off = NO_OFF;
    }
    return CAE_OK;
}

cae_status cae_checkpoint_check(const char *path, const cae_model_info *info,
                                     const cae_params *p, cae_error *err)
{
    const ckpt_ctx c = {path, err};
    if (!info || !p)
        return cae_ckpt_fail(&c, CAE_ERR_FORMAT, NO_OFF, "no model description or store");
    cae_status st = cae_ckpt_check_info(&c, info, NULL);
    if (st) return st;
    ckpt_desc *d = malloc(sizeof *d * (size_t)(cae_params_count(p) + 1));
    if (!d) return cae_ckpt_fail(&c, CAE_ERR_NOMEM, NO_OFF, "out of memory");
    int n = 0;
    st = store_descs(&c, p, ROLE_MODEL, d, &n);
    if (!st) st = cae_ckpt_check_tensors(&c, info, d, n);
    free(d);
    return st;
}

/* ---------------------------------------------------------------- write */

void cae_ckpt_w_bytes(ckpt_writer *w, const void *p, size_t n)
{
    if (w->err || !n) return;
    errno = 0;
    if (fwrite(p, 1, n, w->f) != n) {
        w->err = errno ? errno : EIO;
        return;
    }
    w->crc = crc32(w->crc, p, (uInt)n);
    w->n += n;
}
static void w_u32(ckpt_writer *w, uint32_t v)
{
    uint8_t b[4];
    put_u32(b, v);
    cae_ckpt_w_bytes(w, b, 4);
}
static void w_u64(ckpt_writer *w, uint64_t v)
{
    uint8_t b[8];
    put_u64(b, v);
    cae_ckpt_w_bytes(w, b, 8);
}
static void w_f64(ckpt_writer *w, double v) { w_u64(w, f64_bits(v)); }

void cae_ckpt_w_reals(ckpt_writer *w, const cae_real *x, int64_t n, int bytes)
{
    uint8_t buf[8192];
    const int64_t per = (int64_t)sizeof buf / bytes;
    for (int64_t i0 = 0; i0 < n && !w->err; i0 += per) {
        const int64_t m = n - i0 < per ? n - i0 : per;
        for (int64_t i = 0; i < m; i++) {
            if (bytes == 4) {
                float v = (float)x[i0 + i];
                uint32_t u;
                memcpy(&u, &v, 4);
                put_u32(buf + 4 * i, u);
            } else {
                put_u64(buf + 8 * i, f64_bits((double)x[i0 + i]));
            }
        }
        cae_ckpt_w_bytes(w, buf, (size_t)(m * bytes));
    }
}

/* Atomic replacement: open PATH.tmp.<pid>; commit = flush, fsync, close,
 * rename; abort = close and unlink. */
FILE *cae_ckpt_atomic_open(const char *path, char **tmp)
{
    size_t len = strlen(path) + 32;
    *tmp = malloc(len);
    if (!*tmp) return NULL;
    snprintf(*tmp, len, "%s.tmp.%ld", path, (long)getpid());
    int fd = open(*tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return NULL;
    FILE *f = fdopen(fd, "wb");
    if (!f) {
        int e = errno;
        close(fd);
        unlink(*tmp);
        errno = e;
    }
    return f;
}

static void sync_parent_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
    if (!dir) return;
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        fsync(fd); /* best effort: the rename is durable once this returns */
        close(fd);
    }
    free(dir);
}

/* 0, or an errno with f closed and tmp unlinked. */
int cae_ckpt_atomic_commit(FILE *f, const char *tmp, const char *path)
{
    int e = 0;
    if (fflush(f) || fsync(fileno(f))) e = errno ? errno : EIO;
    if (fclose(f) && !e) e = errno ? errno : EIO;
    if (!e && rename(tmp, path)) e = errno ? errno : EIO;
    if (e)
        unlink(tmp);
    else
        sync_parent_dir(path);
    return e;
}

void cae_ckpt_atomic_abort(FILE *f, const char *tmp)
{
    if (f) fclose(f);
    unlink(tmp);
}

static void w_tensors(ckpt_writer *w, const cae_params *p, int role, int bytes)
{
    for (int i = 0; p && i < cae_params_count(p) && !w->err; i++) {
        const cae_tensor *t = cae_params_at(p, i);
        const size_t len = strlen(t->name);
        w_u32(w, (uint32_t)role);
        w_u32(w, (uint32_t)len);
        cae_ckpt_w_bytes(w, t->name, len);
        w_u32(w, (uint32_t)t->rank);
        for (int r = 0; r < t->rank; r++) w_u64(w, (uint64_t)t->shape[r]);
        cae_ckpt_w_reals(w, t->data, t->size, bytes);
    }
}

static void w_payload(ckpt_writer *w, const cae_model_info *in, const cae_params *p,
                      const cae_params *opt, int bytes)
{
    w_u32(w, (uint32_t)in->kind);
    w_u32(w, (uint32_t)in->n_layers);
    for (int k = 0; k < in->n_layers; k++) {
        const cae_layer_config *l = &in->layer[k];
        w_u32(w, (uint32_t)l->kind);
        w_u64(w, (uint64_t)l->n_in);
        w_u64(w, (uint64_t)l->n_hidden);
        w_u32(w, (uint32_t)l->act);
        w_u32(w, (uint32_t)l->untied);
        w_u32(w, (uint32_t)l->composed);
        w_f64(w, l->lambda);
        w_f64(w, l->noise);
        w_f64(w, l->wd);
        w_u32(w, (uint32_t)l->cd_k);
        w_u32(w, (uint32_t)l->persistent);
    }
    w_u32(w, (uint32_t)in->n_classes);
    w_f64(w, in->mlp_wd);
    const size_t dl = strlen(in->data);
    w_u32(w, (uint32_t)dl);
    cae_ckpt_w_bytes(w, in->data, dl);
    w_u32(w, (uint32_t)in->epochs_done);
    w_u64(w, in->seed);
    w_u64(w, (uint64_t)in->batch);
    w_f64(w, in->lr);
    w_f64(w, in->momentum);
    w_u32(w, (uint32_t)in->has_rng);
    for (int i = 0; i < 4; i++) w_u64(w, in->rng.s[i]);
    w_u32(w, (uint32_t)bytes);
    w_u32(w, (uint32_t)(cae_params_count(p) + cae_params_count(opt)));
    w_tensors(w, p, ROLE_MODEL, bytes);
    w_tensors(w, opt, ROLE_OPT, bytes);
}

/* Saving f32 from the double build: every finite value must stay finite. */
static cae_status check_fits_float(const ckpt_ctx *c, const cae_params *p)
{
    for (int i = 0; sizeof(cae_real) > 4 && p && i < cae_params_count(p); i++) {
        const cae_tensor *t = cae_params_at(p, i);
        for (int64_t j = 0; j < t->size; j++)
            if (isfinite((double)t->data[j]) && fabs((double)t->data[j]) > FLT_MAX)
                return cae_ckpt_fail(c, CAE_ERR_FORMAT, NO_OFF,
                                     "tensor '%s' element %lld = %g does not fit in float", t->name,
                                     (long long)j, (double)t->data[j]);
    }
    return CAE_OK;
}

cae_status cae_checkpoint_save_as(const char *path, const cae_model_info *info,
                                       const cae_params *p, const cae_params *opt,
                                       cae_ckpt_real real, cae_error *err)
{
    const ckpt_ctx c = {path, err};
    if (err) err->msg[0] = 0;
    if (!path || !*path) return cae_ckpt_fail(&c, CAE_ERR_IO, NO_OFF, "no path to save to");
    if (real != CAE_CKPT_NATIVE && real != CAE_CKPT_F32 && real != CAE_CKPT_F64)
        return cae_ckpt_fail(&c, CAE_ERR_FORMAT, NO_OFF, "real type %d, expected 0, 4 or 8",
                             (int)real);
    const int bytes = real == CAE_CKPT_NATIVE ? (int)sizeof(cae_real) : (int)real;
    cae_status st = cae_checkpoint_check(path, info, p, err);
    if (st) return st;
    const int n_all = cae_params_count(p) + cae_params_count(opt);
    ckpt_desc *d = malloc(sizeof *d * (size_t)(n_all + 1));
    if (!d) return cae_ckpt_fail(&c, CAE_ERR_NOMEM, NO_OFF, "out of memory");
    int n = 0;
    st = store_descs(&c, p, ROLE_MODEL, d, &n);
    if (!st) st = store_descs(&c, opt, ROLE_OPT, d, &n);
    free(d);
    if (!st && bytes == 4) st = check_fits_float(&c, p);
    if (!st && bytes == 4) st = check_fits_float(&c, opt);
    if (st) return st;

    char *tmp = NULL;
    FILE *f = cae_ckpt_atomic_open(path, &tmp);
    if (!f) {
        int e = errno;
        st = cae_ckpt_fail(&c, CAE_ERR_IO, NO_OFF, "cannot create %s: %s",
                           tmp ? tmp : "temp file", tmp ? strerror(e) : "out of memory");
        free(tmp);
        return st;
    }
    ckpt_writer w = {f, crc32(0, Z_NULL, 0), 0, 0};
    uint8_t head[CKPT_HEADER] = {0};
    cae_ckpt_w_bytes(&w, head, sizeof head);
    w.crc = crc32(0, Z_NULL, 0);
    w.n = 0;
    w_payload(&w, info, p, opt, bytes);
    if (!w.err) {
        memcpy(head, CKPT_MAGIC, 8);
        put_u32(head + 8, CKPT_VERSION);
        put_u64(head + 12, w.n);
        put_u32(head + 20, (uint32_t)w.crc);
        errno = 0;
        if (fseek(f, 0, SEEK_SET) || fwrite(head, 1, sizeof head, f) != sizeof head)
            w.err = errno ? errno : EIO;
    }
    if (w.err) {
        cae_ckpt_atomic_abort(f, tmp);
        st =
            cae_ckpt_fail(&c, CAE_ERR_IO, NO_OFF, "cannot write %s: %s", tmp, strerror(w.err));
    } else {
        int e = cae_ckpt_atomic_commit(f, tmp, path);
        if (e)
            st = cae_ckpt_fail(&c, CAE_ERR_IO, NO_OFF, "cannot save (via %s): %s", tmp,
                               strerror(e));
    }
    free(tmp);
    return st;
}

cae_status cae_checkpoint_save(const char *path, const cae_model_info *info,
                                    const cae_params *p, const cae_params *opt, cae_error *err)
{
    return cae_checkpoint_save_as(path, info, p, opt, CAE_CKPT_NATIVE, err);
}

cae_status cae_checkpoint_save_run(const char *path, const cae_model_info *info, cae_task *t,
                                   const cae_params *opt, cae_error *err)
{
    cae_model_info run = *info;
    run.rng = *cae_task_rng(t);
    run.has_rng = 1;
    return cae_checkpoint_save(path, &run, cae_task_params(t), opt, err);
}
