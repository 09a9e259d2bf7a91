/* Loading a checkpoint: header, length and CRC checks before anything is
 * trusted, then the description field by field, then one pass over the
 * tensor records (names, ranks, sizes against the payload, the match with
 * the description) before the store is allocated and the values converted
 * to cae_real. Layout: docs/CHECKPOINT.md. */
#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "models/ckpt_internal.h"

/* ----------------------------------------------------------------- read */

typedef struct ckpt_reader {
    const uint8_t *b;
    uint64_t n, pos;
    int short_read; /* a get went past the end */
} ckpt_reader;

static const uint8_t *r_take(ckpt_reader *r, uint64_t k)
{
    if (r->short_read || r->n - r->pos < k) {
        r->short_read = 1;
        return NULL;
    }
    const uint8_t *p = r->b + r->pos;
    r->pos += k;
    return p;
}
static uint32_t r_u32(ckpt_reader *r)
{
    const uint8_t *p = r_take(r, 4);
    return p ? get_u32(p) : 0;
}
static uint64_t r_u64(ckpt_reader *r)
{
    const uint8_t *p = r_take(r, 8);
    return p ? get_u64(p) : 0;
}
static double r_f64(ckpt_reader *r) { return bits_f64(r_u64(r)); }
static int32_t r_i32(ckpt_reader *r) { return (int32_t)r_u32(r); }

#define FOFF(pos) ((uint64_t)(pos) + CKPT_HEADER)

static cae_status ended(const ckpt_ctx *c, const ckpt_reader *r, uint64_t start,
                             const char *what)
{
    return cae_ckpt_fail(c, CAE_ERR_FORMAT, FOFF(start),
                         "the payload (%llu bytes) ends inside %s", (unsigned long long)r->n, what);
}

/* The description, each part's file offset in off[]. */
static cae_status read_info(const ckpt_ctx *c, ckpt_reader *r, cae_model_info *in,
                                 uint64_t *off)
{
    memset(in, 0, sizeof *in);
    off[U_HEAD] = FOFF(r->pos);
    in->kind = (cae_model_kind)r_u32(r);
    const uint32_t nl = r_u32(r);
    if (r->short_read) return ended(c, r, off[U_HEAD] - CKPT_HEADER, "the model kind");
    if (nl < 1 || nl > CAE_MAX_LAYERS)
        return cae_ckpt_fail(c, CAE_ERR_FORMAT, FOFF(r->pos - 4), "%u layers, expected 1..%d",
                             nl, CAE_MAX_LAYERS);
    in->n_layers = (int)nl;
    for (int k = 0; k < in->n_layers; k++) {
        cae_layer_config *l = &in->layer[k];
        off[U_LAYER + k] = FOFF(r->pos);
        l->kind = (cae_model_kind)r_u32(r);
        l->n_in = (int64_t)r_u64(r);
        l->n_hidden = (int64_t)r_u64(r);
        l->act = (cae_act)r_u32(r);
        l->untied = r_i32(r);
        l->composed = r_i32(r);
        l->lambda = r_f64(r);
        l->noise = r_f64(r);
        l->wd = r_f64(r);
        l->cd_k = r_i32(r);
        l->persistent = r_i32(r);
        if (r->short_read) return ended(c, r, off[U_LAYER + k] - CKPT_HEADER, "a layer record");
    }
    off[U_CLASS] = FOFF(r->pos);
    const uint32_t ncls = r_u32(r);
    in->n_classes = (int)(ncls > INT32_MAX ? INT32_MAX : ncls);
    in->mlp_wd = r_f64(r);
    off[U_DATA] = FOFF(r->pos);
    const uint32_t dl = r_u32(r);
    if (r->short_read) return ended(c, r, off[U_CLASS] - CKPT_HEADER, "the classifier fields");
    if (dl >= sizeof in->data)
        return cae_ckpt_fail(c, CAE_ERR_FORMAT, off[U_DATA],
                             "data set name is %u bytes, at most %zu", dl, sizeof in->data - 1);
    const uint8_t *dn = r_take(r, dl);
    if (!dn) return ended(c, r, off[U_DATA] - CKPT_HEADER, "the data set name");
    if (memchr(dn, 0, dl))
        return cae_ckpt_fail(c, CAE_ERR_FORMAT, off[U_DATA], "data set name has a NUL byte");
    memcpy(in->data, dn, dl);
    off[U_PROGRESS] = FOFF(r->pos);
    const uint32_t ep = r_u32(r);
    in->epochs_done = (int)(ep > INT32_MAX ? INT32_MAX : ep);
    in->seed = r_u64(r);
    in->batch = (int64_t)r_u64(r);
    in->lr = r_f64(r);
    in->momentum = r_f64(r);
    in->has_rng = r_i32(r);
    for (int i = 0; i < 4; i++) in->rng.s[i] = r_u64(r);
    if (r->short_read) return ended(c, r, off[U_PROGRESS] - CKPT_HEADER, "the progress fields");
    return cae_ckpt_check_info(c, in, off);
}

/* One tensor record's header; leaves r at the next record. */
static cae_status read_desc(const ckpt_ctx *c, ckpt_reader *r, int i, int bytes, ckpt_desc *d)
{
    const cae_status F = CAE_ERR_FORMAT;
    const uint64_t start = r->pos;
    memset(d, 0, sizeof *d);
    d->off = FOFF(start);
    const uint32_t role = r_u32(r), len = r_u32(r);
    if (r->short_read) return ended(c, r, start, "a tensor record");
    if (role > ROLE_OPT)
        return cae_ckpt_fail(c, F, d->off,
                             "tensor %d: role %u, expected 0 (model) or 1 (optimizer)", i, role);
    d->role = (int)role;
    if (len < 1 || len > CKPT_NAME_MAX)
        return cae_ckpt_fail(c, F, d->off + 4, "tensor %d: name is %u bytes, expected 1..%d", i,
                             len, CKPT_NAME_MAX);
    const uint8_t *nm = r_take(r, len);
    if (!nm) return ended(c, r, start, "a tensor name");
    memcpy(d->name, nm, len);
    const char *why = cae_ckpt_name_problem(d->name, len);
    if (why) return cae_ckpt_fail(c, F, d->off + 8, "tensor %d: the name %s", i, why);
    const uint32_t rank = r_u32(r);
    if (r->short_read) return ended(c, r, start, "a tensor record");
    if (rank > CAE_MAX_RANK)
        return cae_ckpt_fail(c, F, FOFF(r->pos - 4), "tensor '%s': rank %u, at most %d", d->name,
                             rank, CAE_MAX_RANK);
    d->rank = (int)rank;
    const uint64_t dims_off = FOFF(r->pos);
    uint64_t udims[CAE_MAX_RANK];
    for (int k = 0; k < d->rank; k++) udims[k] = r_u64(r);
    if (r->short_read) return ended(c, r, start, "a tensor's dimensions");
    uint64_t size = 1;
    int overflow = 0;
    for (int k = 0; k < d->rank; k++) {
        if (udims[k] > (uint64_t)INT64_MAX || (udims[k] && size > (uint64_t)INT64_MAX / udims[k]))
            overflow = 1;
        else
            size *= udims[k];
        d->dims[k] = (int64_t)udims[k];
    }
    if (overflow) {
        char s[128] = "";
        for (int k = 0, m = 0; k < d->rank && m >= 0 && (size_t)m < sizeof s; k++)
            m += snprintf(s + m, sizeof s - (size_t)m, k ? "x%llu" : "%llu",
                          (unsigned long long)udims[k]);
        return cae_ckpt_fail(c, F, dims_off,
                             "tensor '%s': dimensions %s overflow a 64-bit element count", d->name,
                             s);
    }
    d->size = (int64_t)size;
    d->data = r->pos;
    const uint64_t left = r->n - r->pos;
    if (size > left / (uint64_t)bytes) {
        char s[64];
        cae_ckpt_dims_str(d->rank, d->dims, s, sizeof s);
        return cae_ckpt_fail(
            c, F, FOFF(r->pos),
            "tensor '%s' (%s, f%d) needs %llu bytes of data%s, only %llu remain in the payload",
            d->name, s, 8 * bytes,
            size > UINT64_MAX / (uint64_t)bytes ? 0ULL : (unsigned long long)(size * bytes),
            size > UINT64_MAX / (uint64_t)bytes ? " (more than 2^64)" : "",
            (unsigned long long)left);
    }
    r->pos += size * (uint64_t)bytes;
    return CAE_OK;
}

/* Decode n values (f32 or f64, little-endian) into cae_real. */
static cae_status read_values(const ckpt_ctx *c, const uint8_t *src, int64_t n, int bytes,
                                   cae_real *dst, const ckpt_desc *d)
{
    for (int64_t i = 0; i < n; i++) {
        if (bytes == 4) {
            uint32_t u = get_u32(src + 4 * i);
            float v;
            memcpy(&v, &u, 4);
            dst[i] = (cae_real)v;
        } else {
            const double v = bits_f64(get_u64(src + 8 * i));
            if (sizeof(cae_real) == 4 && isfinite(v) && fabs(v) > FLT_MAX)
                return cae_ckpt_fail(c, CAE_ERR_FORMAT, FOFF(d->data + 8 * (uint64_t)i),
                                     "tensor '%s' element %lld = %g does not fit in float", d->name,
                                     (long long)i, v);
            dst[i] = (cae_real)v;
        }
    }
    return CAE_OK;
}

/* The store of one role, in record order. */
static cae_status build_store(const ckpt_ctx *c, const uint8_t *payload, const ckpt_desc *d,
                                   int n, int role, int bytes, cae_params **out)
{
    *out = NULL;
    cae_params *p = cae_params_new();
    if (!p) return cae_ckpt_fail(c, CAE_ERR_NOMEM, NO_OFF, "out of memory");
    for (int i = 0; i < n; i++) {
        if (d[i].role != role) continue;
        cae_tensor *t = cae_params_add(p, d[i].name, d[i].rank, d[i].dims);
        if (!t) {
            cae_status st = cae_ckpt_fail(c, CAE_ERR_NOMEM, d[i].off, "%s",
                                               cae_params_error(p) ? cae_params_error(p) : "?");
            cae_params_free(p);
            return st;
        }
        cae_status st = read_values(c, payload + d[i].data, t->size, bytes, t->data, &d[i]);
        if (st) {
            cae_params_free(p);
            return st;
        }
    }
    *out = p;
    return CAE_OK;
}

/* Header and payload: returns the payload (malloc'd) in *out, its length in
 * *len, after the magic, version, length and CRC checks. */
static cae_status read_file(const ckpt_ctx *c, uint8_t **out, uint64_t *len)
{
    *out = NULL;
    FILE *f = fopen(c->path, "rb");
    if (!f) return cae_ckpt_fail(c, CAE_ERR_IO, NO_OFF, "cannot open: %s", strerror(errno));
    struct stat sb;
    cae_status st = CAE_OK;
    uint8_t head[CKPT_HEADER];
    uint8_t *payload = NULL;
    if (fstat(fileno(f), &sb) || !S_ISREG(sb.st_mode)) {
        st = cae_ckpt_fail(c, CAE_ERR_IO, NO_OFF, "not a regular file");
        goto done;
    }
    const uint64_t fsize = (uint64_t)sb.st_size;
    if (fsize == 0) {
        st = cae_ckpt_fail(c, CAE_ERR_TRUNCATED, 0,
                           "empty file, expected a %d-byte header starting with \"CAECKPT\"",
                           CKPT_HEADER);
        goto done;
    }
    const size_t hn = fsize < CKPT_HEADER ? (size_t)fsize : CKPT_HEADER;
    if (fread(head, 1, hn, f) != hn) {
        st = cae_ckpt_fail(c, CAE_ERR_IO, 0, "cannot read the header: %s",
                           ferror(f) ? strerror(errno) : "file shrank");
        goto done;
    }
    const size_t mn = hn < 8 ? hn : 8;
    if (memcmp(head, CKPT_MAGIC, mn)) {
        char got[40] = "";
        for (size_t i = 0, m = 0; i < mn; i++)
            m += (size_t)snprintf(got + m, sizeof got - m, "%s%02x", i ? " " : "", head[i]);
        st = cae_ckpt_fail(
            c, CAE_ERR_MAGIC, 0,
            "not a cae checkpoint: the file starts with %s, expected \"CAECKPT\\0\" (43 41 45 43 4b 50 54 00)",
            got);
        goto done;
    }
    if (hn < CKPT_HEADER) {
        st = cae_ckpt_fail(c, CAE_ERR_TRUNCATED, hn,
                           "the file ends inside the %d-byte header (%zu bytes)", CKPT_HEADER, hn);
        goto done;
    }
    const uint32_t version = get_u32(head + 8);
    if (version != CKPT_VERSION) {
        st = cae_ckpt_fail(c, CAE_ERR_VERSION, 8,
                           "format version %u, this build reads version %u%s", version,
                           CKPT_VERSION, version > CKPT_VERSION ? " (written by a newer cae)" : "");
        goto done;
    }
    const uint64_t plen = get_u64(head + 12), have = fsize - CKPT_HEADER;
    if (have < plen) {
        st = cae_ckpt_fail(c, CAE_ERR_TRUNCATED, fsize,
                           "the file ends after %llu payload bytes, the header says %llu",
                           (unsigned long long)have, (unsigned long long)plen);
        goto done;
    }
    if (have > plen) {
        st = cae_ckpt_fail(c, CAE_ERR_FORMAT, CKPT_HEADER + plen,
                           "%llu bytes after the %llu-byte payload",
                           (unsigned long long)(have - plen), (unsigned long long)plen);
        goto done;
    }
    if (plen > SIZE_MAX || !(payload = malloc(plen ? (size_t)plen : 1))) {
        st = cae_ckpt_fail(c, CAE_ERR_NOMEM, NO_OFF, "cannot hold a %llu-byte payload",
                           (unsigned long long)plen);
        goto done;
    }
    if (fread(payload, 1, (size_t)plen, f) != plen) {
        st = cae_ckpt_fail(c, CAE_ERR_IO, CKPT_HEADER, "cannot read the payload: %s",
                           ferror(f) ? strerror(errno) : "file shrank");
        goto done;
    }
    uLong crc = crc32(0, Z_NULL, 0);
    for (uint64_t o = 0; o < plen;) {
        const uint64_t k = plen - o < (1u << 30) ? plen - o : (1u << 30);
        crc = crc32(crc, payload + o, (uInt)k);
        o += k;
    }
    if ((uint32_t)crc != get_u32(head + 20)) {
        st = cae_ckpt_fail(
            c, CAE_ERR_CRC, CKPT_HEADER,
            "the payload's CRC-32 is %08x, the header (offset 20) says %08x: the file is damaged",
            (unsigned)crc, (unsigned)get_u32(head + 20));
        goto done;
    }
    *out = payload;
    *len = plen;
    payload = NULL;
done:
    free(payload);
    fclose(f);
    return st;
}

cae_status cae_checkpoint_load(const char *path, cae_model_info *info, cae_params **out_params,
                                    cae_params **out_opt, cae_error *err)
{
    const ckpt_ctx c = {path, err};
    if (err) err->msg[0] = 0;
    if (out_params) *out_params = NULL;
    if (out_opt) *out_opt = NULL;
    if (!path || !*path) return cae_ckpt_fail(&c, CAE_ERR_IO, NO_OFF, "no path to load");
    uint8_t *payload;
    uint64_t plen = 0;
    cae_status st = read_file(&c, &payload, &plen);
    if (st) return st;
    ckpt_reader r = {payload, plen, 0, 0};
    cae_model_info in;
    uint64_t off[U_COUNT];
    ckpt_desc *d = NULL;
    cae_params *p = NULL, *opt = NULL;
    st = read_info(&c, &r, &in, off);
    if (st) goto done;
    const uint64_t at = r.pos;
    const uint32_t bytes = r_u32(&r), nt = r_u32(&r);
    if (r.short_read) {
        st = ended(&c, &r, at, "the real type and tensor count");
        goto done;
    }
    if (bytes != 4 && bytes != 8) {
        st = cae_ckpt_fail(&c, CAE_ERR_FORMAT, FOFF(at),
                           "real type %u, expected 4 (f32) or 8 (f64)", bytes);
        goto done;
    }
    if (nt > CKPT_MAX_TENSORS || nt > (r.n - r.pos) / CKPT_TENSOR_MIN) {
        st = cae_ckpt_fail(
            &c, CAE_ERR_FORMAT, FOFF(at + 4),
            "%u tensors, expected at most %d and at most one per %d bytes of the remaining %llu",
            nt, CKPT_MAX_TENSORS, CKPT_TENSOR_MIN, (unsigned long long)(r.n - r.pos));
        goto done;
    }
    if (!(d = malloc(sizeof *d * ((size_t)nt + 1)))) {
        st = cae_ckpt_fail(&c, CAE_ERR_NOMEM, NO_OFF, "out of memory");
        goto done;
    }
    int n_opt = 0;
    for (int i = 0; i < (int)nt; i++) {
        if ((st = read_desc(&c, &r, i, (int)bytes, &d[i]))) goto done;
        for (int j = 0; j < i; j++)
            if (d[j].role == d[i].role && !strcmp(d[j].name, d[i].name)) {
                st = cae_ckpt_fail(&c, CAE_ERR_FORMAT, d[i].off,
                                   "tensor '%s' appears twice (first at offset %llu)", d[i].name,
                                   (unsigned long long)d[j].off);
                goto done;
            }
        n_opt += d[i].role == ROLE_OPT;
    }
    if (r.pos != r.n) {
        st = cae_ckpt_fail(&c, CAE_ERR_FORMAT, FOFF(r.pos), "%llu bytes after the last tensor",
                           (unsigned long long)(r.n - r.pos));
        goto done;
    }
    if ((st = cae_ckpt_check_tensors(&c, &in, d, (int)nt))) goto done;
    if (out_params) {
        if ((st = build_store(&c, payload, d, (int)nt, ROLE_MODEL, (int)bytes, &p))) goto done;
        if (out_opt && n_opt &&
            (st = build_store(&c, payload, d, (int)nt, ROLE_OPT, (int)bytes, &opt)))
            goto done;
        *out_params = p;
        if (out_opt) *out_opt = opt;
        p = opt = NULL;
    }
    if (info) *info = in;
done:
    cae_params_free(p);
    cae_params_free(opt);
    free(d);
    free(payload);
    return st;
}
