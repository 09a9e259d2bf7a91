/* IDX reader and writer (raw or gzip), plus the small helpers the other
 * lib/data files share.
 *
 * IDX layout: bytes 0-1 zero, byte 2 the element type, byte 3 the rank r,
 * then r big-endian uint32 dimensions, then prod(dims) big-endian elements.
 * Every size is checked against the file before anything is allocated: a raw
 * file must hold exactly header + body bytes; a gzip file cannot expand more
 * than deflate's ~1032:1, so a larger declared body is refused up front. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "data/data_internal.h"

int cae_data_mul(int64_t a, int64_t b, int64_t *out)
{
    if (a < 0 || b < 0) return 0;
    return !__builtin_mul_overflow(a, b, out);
}

int64_t cae_data_mem_budget(void) { return cae_memory_budget(); }

int cae_idx_type_size(int type)
{
    switch (type) {
    case CAE_IDX_U8: case CAE_IDX_I8: return 1;
    case CAE_IDX_I16: return 2;
    case CAE_IDX_I32: case CAE_IDX_F32: return 4;
    case CAE_IDX_F64: return 8;
    default: return 0;
    }
}

static const char *type_name(int type)
{
    switch (type) {
    case CAE_IDX_U8: return "u8";
    case CAE_IDX_I8: return "i8";
    case CAE_IDX_I16: return "i16";
    case CAE_IDX_I32: return "i32";
    case CAE_IDX_F32: return "f32";
    case CAE_IDX_F64: return "f64";
    default: return "?";
    }
}

void cae_idx_free(cae_idx *x)
{
    if (!x) return;
    free(x->data);
    free(x);
}

double cae_idx_get(const cae_idx *x, int64_t i)
{
    switch (x->type) {
    case CAE_IDX_U8: return ((const uint8_t *)x->data)[i];
    case CAE_IDX_I8: return ((const int8_t *)x->data)[i];
    case CAE_IDX_I16: return ((const int16_t *)x->data)[i];
    case CAE_IDX_I32: return ((const int32_t *)x->data)[i];
    case CAE_IDX_F32: return ((const float *)x->data)[i];
    case CAE_IDX_F64: return ((const double *)x->data)[i];
    default: return 0.0;
    }
}

/* Read up to n bytes; returns how many arrived (short only at EOF/error). */
static int64_t gz_read_all(gzFile gz, void *buf, int64_t n)
{
    int64_t got = 0;
    while (got < n) {
        int64_t want = n - got;
        if (want > (1 << 30)) want = 1 << 30;
        int r = gzread(gz, (char *)buf + got, (unsigned)want);
        if (r <= 0) break;
        got += r;
    }
    return got;
}

/* The reason a read came up short: gzip damage or a plain short file. */
static cae_status short_read(gzFile gz, int is_gzip, const char *path, int64_t off,
                                  int64_t want, int64_t got, const char *what, cae_error *err)
{
    int zerr = Z_OK;
    const char *zmsg = gzerror(gz, &zerr);
    if (zerr == Z_ERRNO)
        return cae_error_set(err, CAE_ERR_IO, "%s: offset %lld: read error: %s",
                             path, (long long)(off + got), strerror(errno));
    if (is_gzip && (zerr == Z_BUF_ERROR || zerr == Z_DATA_ERROR))
        return cae_error_set(err, CAE_ERR_GZIP,
                             "%s: offset %lld of the decompressed data: gzip stream %s "
                             "(expected %lld bytes of %s, got %lld; zlib: %s)",
                             path, (long long)(off + got),
                             zerr == Z_BUF_ERROR ? "ends early" : "is corrupt", (long long)want,
                             what, (long long)got, zmsg ? zmsg : "?");
    return cae_error_set(err, CAE_ERR_TRUNCATED,
                         "%s: offset %lld: expected %lld bytes of %s, found only %lld", path,
                         (long long)off, (long long)want, what, (long long)got);
}

static void from_big_endian(void *data, int64_t count, int size)
{
    uint8_t *p = data;
    if (size == 1) return;
    for (int64_t i = 0; i < count; i++, p += size)
        for (int a = 0, b = size - 1; a < b; a++, b--) {
            uint8_t t = p[a];
            p[a] = p[b];
            p[b] = t;
        }
}

static int host_is_little(void)
{
    const uint16_t one = 1;
    return *(const uint8_t *)&one == 1;
}

cae_status cae_idx_read(const char *path, cae_idx **out, cae_error *err)
{
    if (out) *out = NULL;
    if (!path || !out) return cae_error_set(err, CAE_ERR_ARG, "cae_idx_read: NULL argument");

    struct stat st;
    if (stat(path, &st) != 0)
        return cae_error_set(err, CAE_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return cae_error_set(err, CAE_ERR_IO, "%s: not a regular file", path);
    if (st.st_size == 0)
        return cae_error_set(err, CAE_ERR_EMPTY,
                             "%s: offset 0: expected a 4-byte IDX header, found an empty file", path);

    gzFile gz = gzopen(path, "rb");
    if (!gz)
        return cae_error_set(err, CAE_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    gzbuffer(gz, 1 << 17);
    int is_gzip = !gzdirect(gz);
    cae_status rc = CAE_OK;
    cae_idx *x = NULL;

    uint8_t head[4];
    int64_t got = gz_read_all(gz, head, 4);
    if (got < 4) {
        rc = short_read(gz, is_gzip, path, 0, 4, got, "IDX header", err);
        goto done;
    }
    if (head[0] != 0 || head[1] != 0) {
        rc = cae_error_set(err, CAE_ERR_MAGIC,
                           "%s: offset 0: expected magic bytes 00 00, found %02x %02x (not an IDX file)",
                           path, head[0], head[1]);
        goto done;
    }
    int esize = cae_idx_type_size(head[2]);
    if (esize == 0) {
        rc = cae_error_set(err, CAE_ERR_TYPE,
                           "%s: offset 2: expected a type byte 08/09/0b/0c/0d/0e, found %02x", path,
                           head[2]);
        goto done;
    }
    int rank = head[3];
    if (rank < 1 || rank > CAE_IDX_MAX_RANK) {
        rc = cae_error_set(err, CAE_ERR_RANK, "%s: offset 3: expected rank 1..%d, found %d",
                           path, CAE_IDX_MAX_RANK, rank);
        goto done;
    }
    uint8_t dimb[4 * CAE_IDX_MAX_RANK];
    got = gz_read_all(gz, dimb, 4 * rank);
    if (got < 4 * rank) {
        rc = short_read(gz, is_gzip, path, 4, 4 * rank, got, "dimensions", err);
        goto done;
    }
    x = calloc(1, sizeof *x);
    if (!x) {
        rc = cae_error_set(err, CAE_ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }
    x->type = head[2];
    x->rank = rank;
    x->gzip = is_gzip;
    int64_t count = 1;
    int overflow = 0;
    char dstr[96] = "";
    for (int k = 0; k < rank; k++) {
        const uint8_t *b = dimb + 4 * k;
        x->dims[k] = ((int64_t)b[0] << 24) | ((int64_t)b[1] << 16) | ((int64_t)b[2] << 8) | b[3];
        size_t used = strlen(dstr);
        snprintf(dstr + used, sizeof dstr - used, "%s%lld", k ? " x " : "", (long long)x->dims[k]);
        if (x->dims[k] == 0) {
            rc = cae_error_set(err, CAE_ERR_DIMS,
                               "%s: offset %d: expected a dimension >= 1, found 0 (dimension %d)", path,
                               4 + 4 * k, k);
            goto done;
        }
        if (!cae_data_mul(count, x->dims[k], &count)) overflow = 1;
    }
    int64_t body = 0;
    if (overflow || !cae_data_mul(count, esize, &body)) {
        rc = cae_error_set(err, CAE_ERR_DIMS,
                           "%s: offset 4: the product of dimensions %s (%s) overflows", path, dstr,
                           type_name(x->type));
        goto done;
    }
    if (body > CAE_IDX_MAX_BYTES) {
        rc = cae_error_set(err, CAE_ERR_DIMS,
                           "%s: offset 4: dimensions %s (%s) need %lld bytes, over the limit of %lld",
                           path, dstr, type_name(x->type), (long long)body, (long long)CAE_IDX_MAX_BYTES);
        goto done;
    }
    int64_t budget = cae_data_mem_budget();
    if (body > budget) {
        rc = cae_error_set(err, CAE_ERR_NOMEM,
                           "%s: offset 4: dimensions %s (%s) need %lld bytes, more than the %lld "
                           "bytes of memory this process can use",
                           path, dstr, type_name(x->type), (long long)body, (long long)budget);
        goto done;
    }
    x->count = count;
    int64_t hlen = 4 + 4 * (int64_t)rank;
    if (!is_gzip) {
        if ((int64_t)st.st_size < hlen + body) {
            rc = cae_error_set(err, CAE_ERR_TRUNCATED,
                               "%s: offset %lld: expected %lld bytes of data for dimensions %s (%s), "
                               "found only %lld (truncated body)",
                               path, (long long)hlen, (long long)body, dstr, type_name(x->type),
                               (long long)(st.st_size - hlen));
            goto done;
        }
        if ((int64_t)st.st_size > hlen + body) {
            rc = cae_error_set(err, CAE_ERR_DIMS,
                               "%s: offset %lld: expected end of file after dimensions %s (%s), "
                               "found %lld trailing bytes",
                               path, (long long)(hlen + body), dstr, type_name(x->type),
                               (long long)(st.st_size - hlen - body));
            goto done;
        }
    } else if (body / 1032 > (int64_t)st.st_size + 1024) {
        rc = cae_error_set(err, CAE_ERR_TRUNCATED,
                           "%s: offset %lld: dimensions %s (%s) declare %lld bytes, more than a "
                           "%lld-byte gzip file can hold",
                           path, (long long)hlen, dstr, type_name(x->type), (long long)body,
                           (long long)st.st_size);
        goto done;
    }
    x->data = malloc(body > 0 ? (size_t)body : 1);
    if (!x->data) {
        rc = cae_error_set(err, CAE_ERR_NOMEM, "%s: cannot allocate %lld bytes", path,
                           (long long)body);
        goto done;
    }
    got = gz_read_all(gz, x->data, body);
    if (got < body) {
        rc = short_read(gz, is_gzip, path, hlen, body, got, "data", err);
        goto done;
    }
    if (is_gzip) {
        uint8_t extra;
        got = gz_read_all(gz, &extra, 1);
        int zerr = Z_OK;
        const char *zmsg = gzerror(gz, &zerr);
        if (got > 0) {
            rc = cae_error_set(err, CAE_ERR_DIMS,
                               "%s: offset %lld of the decompressed data: expected end of data "
                               "after dimensions %s (%s), found trailing bytes",
                               path, (long long)(hlen + body), dstr, type_name(x->type));
            goto done;
        }
        if (zerr == Z_BUF_ERROR || zerr == Z_DATA_ERROR) {
            rc = cae_error_set(err, CAE_ERR_GZIP,
                               "%s: offset %lld of the decompressed data: gzip stream %s after "
                               "the data (zlib: %s)",
                               path, (long long)(hlen + body),
                               zerr == Z_BUF_ERROR ? "ends early" : "is corrupt", zmsg ? zmsg : "?");
            goto done;
        }
    }
    if (host_is_little()) from_big_endian(x->data, count, esize);

done:
    gzclose_r(gz);
    if (rc != CAE_OK) {
        cae_idx_free(x);
        return rc;
    }
    *out = x;
    return CAE_OK;
}

cae_status cae_data_write_file(const char *path, const void *head, size_t head_len,
                                    const void *body, size_t body_len, cae_error *err)
{
    size_t plen = strlen(path) + 32;
    char *tmp = malloc(plen);
    if (!tmp) return cae_error_set(err, CAE_ERR_NOMEM, "%s: out of memory", path);
    snprintf(tmp, plen, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        cae_status rc = cae_error_set(err, CAE_ERR_IO, "%s: cannot create: %s", tmp,
                                           strerror(errno));
        free(tmp);
        return rc;
    }
    int ok = (head_len == 0 || fwrite(head, 1, head_len, f) == head_len) &&
             (body_len == 0 || fwrite(body, 1, body_len, f) == body_len);
    int saved = errno;
    if (fclose(f) != 0) {
        ok = 0;
        saved = errno;
    }
    if (!ok || rename(tmp, path) != 0) {
        if (ok) saved = errno;
        remove(tmp);
        cae_status rc = cae_error_set(err, CAE_ERR_IO, "%s: cannot write: %s", path,
                                           strerror(saved));
        free(tmp);
        return rc;
    }
    free(tmp);
    return CAE_OK;
}

cae_status cae_idx_write(const char *path, int type, int rank, const int64_t *dims,
                              const void *data, cae_error *err)
{
    if (!path || !dims || !data)
        return cae_error_set(err, CAE_ERR_ARG, "cae_idx_write: NULL argument");
    int esize = cae_idx_type_size(type);
    if (esize == 0)
        return cae_error_set(err, CAE_ERR_TYPE, "%s: unknown IDX type 0x%02x", path, type);
    if (rank < 1 || rank > CAE_IDX_MAX_RANK)
        return cae_error_set(err, CAE_ERR_RANK, "%s: rank %d not in 1..%d", path, rank,
                             CAE_IDX_MAX_RANK);
    uint8_t head[4 + 4 * CAE_IDX_MAX_RANK] = {0, 0, (uint8_t)type, (uint8_t)rank};
    int64_t count = 1;
    for (int k = 0; k < rank; k++) {
        if (dims[k] < 1 || dims[k] > 0xFFFFFFFFll || !cae_data_mul(count, dims[k], &count))
            return cae_error_set(err, CAE_ERR_DIMS, "%s: dimension %d = %lld is invalid",
                                 path, k, (long long)dims[k]);
        for (int b = 0; b < 4; b++) head[4 + 4 * k + b] = (uint8_t)(dims[k] >> (24 - 8 * b));
    }
    int64_t body = 0;
    if (!cae_data_mul(count, esize, &body) || body > CAE_IDX_MAX_BYTES)
        return cae_error_set(err, CAE_ERR_DIMS, "%s: data too large", path);
    const void *src = data;
    void *swapped = NULL;
    if (esize > 1 && host_is_little()) {
        swapped = malloc((size_t)body);
        if (!swapped)
            return cae_error_set(err, CAE_ERR_NOMEM, "%s: cannot allocate %lld bytes",
                                 path, (long long)body);
        memcpy(swapped, data, (size_t)body);
        from_big_endian(swapped, count, esize); /* the swap is its own inverse */
        src = swapped;
    }
    cae_status rc = cae_data_write_file(path, head, 4 + 4 * (size_t)rank, src, (size_t)body, err);
    free(swapped);
    return rc;
}
