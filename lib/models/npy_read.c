/* NumPy .npy reader (cae/npy.h): the header, a Python dict literal, parsed
 * by a small strict scanner; the values checked against the bytes present
 * before anything is allocated, then converted to cae_real in C order.
 *
 * Format (numpy.lib.format): the 6 bytes \x93NUMPY, a major and a minor
 * version byte, the header length H (u16 little-endian for 1.x, u32 for 2.x
 * and 3.x), H bytes of text "{'descr': '<f4', 'fortran_order': False,
 * 'shape': (3, 4), }" padded with spaces and a newline, then the values. */
#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cae/npy.h"

static const uint8_t npy_magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};

/* "NAME: message" into err; returns s. */
static cae_status npy_fail(cae_error *err, cae_status s, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static cae_status npy_fail(cae_error *err, cae_status s, const char *name, const char *fmt, ...)
{
    char msg[CAE_ERR_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return cae_error_set(err, s, "%.200s: %s", name, msg);
}

static void shape_text(int rank, const int64_t *shape, char *buf, size_t len)
{
    size_t m = (size_t)snprintf(buf, len, "(");
    for (int i = 0; i < rank && m < len; i++)
        m += (size_t)snprintf(buf + m, len - m, i ? ", %lld" : "%lld", (long long)shape[i]);
    if (m < len) snprintf(buf + m, len - m, rank == 1 ? ",)" : ")");
}

/* ------------------------------------------------------------ the header */

typedef struct scan {
    const char *s; /* the header text */
    size_t n, i;   /* its length, the position */
    size_t base;   /* file offset of s[0], for messages */
    const char *name;
    cae_error *err;
} scan;

static void skip_ws(scan *c)
{
    while (c->i < c->n && (c->s[c->i] == ' ' || c->s[c->i] == '\t' || c->s[c->i] == '\n' ||
                           c->s[c->i] == '\r'))
        c->i++;
}

static cae_status syntax(scan *c, const char *what)
{
    if (c->i >= c->n)
        return npy_fail(c->err, CAE_ERR_FORMAT, c->name,
                        "the header (bytes %zu..%zu) ends where %s was expected", c->base,
                        c->base + c->n, what);
    const unsigned char ch = (unsigned char)c->s[c->i];
    if (ch >= 0x20 && ch < 0x7f)
        return npy_fail(c->err, CAE_ERR_FORMAT, c->name, "header byte %zu: expected %s, found '%c'",
                        c->base + c->i, what, ch);
    return npy_fail(c->err, CAE_ERR_FORMAT, c->name, "header byte %zu: expected %s, found byte 0x%02x",
                    c->base + c->i, what, ch);
}

/* A quoted string without escapes into buf (cap bytes with its NUL). */
static cae_status scan_string(scan *c, char *buf, size_t cap, const char *what)
{
    skip_ws(c);
    if (c->i >= c->n || (c->s[c->i] != '\'' && c->s[c->i] != '"')) return syntax(c, what);
    const char q = c->s[c->i++];
    size_t m = 0;
    while (c->i < c->n && c->s[c->i] != q) {
        if (c->s[c->i] == '\\' || m + 1 >= cap) return syntax(c, "a short string without escapes");
        buf[m++] = c->s[c->i++];
    }
    if (c->i >= c->n) return syntax(c, "the end of a string");
    c->i++;
    buf[m] = 0;
    return CAE_OK;
}

static int scan_word(scan *c, const char *w)
{
    const size_t k = strlen(w);
    if (c->n - c->i < k || memcmp(c->s + c->i, w, k)) return 0;
    c->i += k;
    return 1;
}

/* A shape tuple: (), (n,), (a, b), ... Non-negative integers. */
static cae_status scan_shape(scan *c, cae_npy *a)
{
    skip_ws(c);
    if (c->i >= c->n || c->s[c->i] != '(') return syntax(c, "a shape tuple '('");
    c->i++;
    int rank = 0, comma_after_last = 0;
    int64_t dims[CAE_MAX_RANK];
    for (;;) {
        skip_ws(c);
        if (c->i < c->n && c->s[c->i] == ')') {
            c->i++;
            break;
        }
        if (rank > 0 && !comma_after_last) return syntax(c, "',' or ')' in the shape");
        if (c->i >= c->n || c->s[c->i] < '0' || c->s[c->i] > '9')
            return syntax(c, "a dimension (a non-negative integer)");
        const size_t start = c->i;
        uint64_t v = 0;
        int big = 0;
        while (c->i < c->n && c->s[c->i] >= '0' && c->s[c->i] <= '9') {
            const unsigned d = (unsigned)(c->s[c->i++] - '0');
            if (v > ((uint64_t)INT64_MAX - d) / 10) big = 1;
            if (!big) v = v * 10 + d;
        }
        if (c->i < c->n && c->s[c->i] == 'L') c->i++; /* Python 2 long */
        if (big)
            return npy_fail(c->err, CAE_ERR_DIMS, c->name,
                            "header byte %zu: dimension %d (%.*s) is larger than 2^63 - 1",
                            c->base + start, rank + 1, (int)(c->i - start > 40 ? 40 : c->i - start),
                            c->s + start);
        if (rank == CAE_MAX_RANK)
            return npy_fail(c->err, CAE_ERR_RANK, c->name,
                            "the shape has more than %d dimensions (at most %d are supported)",
                            CAE_MAX_RANK, CAE_MAX_RANK);
        dims[rank++] = (int64_t)v;
        skip_ws(c);
        comma_after_last = c->i < c->n && c->s[c->i] == ',';
        if (comma_after_last) c->i++;
    }
    if (rank == 1 && !comma_after_last)
        return npy_fail(c->err, CAE_ERR_FORMAT, c->name,
                        "the shape (%lld) is not a tuple (a 1-d shape is written (%lld,))",
                        (long long)dims[0], (long long)dims[0]);
    a->rank = rank;
    memcpy(a->shape, dims, sizeof(int64_t) * (size_t)rank);
    return CAE_OK;
}

/* The dtype string: float32 or float64, little-endian; anything else is
 * refused by name. */
static cae_status check_descr(scan *c, const char *d, cae_npy *a)
{
    const char *hint = "expected float32 '<f4' or float64 '<f8'";
    char order = 0;
    const char *k = d;
    if (*k == '<' || *k == '>' || *k == '|' || *k == '=') order = *k++;
    if (k[0] == 'O')
        return npy_fail(c->err, CAE_ERR_TYPE, c->name,
                        "object dtype ('%s'): the values are pickled Python objects, not numbers; %s",
                        d, hint);
    if (k[0] == 'f' && (!strcmp(k + 1, "4") || !strcmp(k + 1, "8"))) {
        if (order == '>')
            return npy_fail(c->err, CAE_ERR_TYPE, c->name,
                            "big-endian float%s ('%s'): only little-endian is read; %s (in NumPy: "
                            "a.astype('<f%s'))",
                            k[1] == '4' ? "32" : "64", d, hint, k + 1);
        if (order == '<') {
            a->dtype_bytes = k[1] - '0';
            return CAE_OK;
        }
    }
    const char *what = k[0] == 'f'   ? "a float of another size"
                       : k[0] == 'i' ? "signed integers"
                       : k[0] == 'u' ? "unsigned integers"
                       : k[0] == 'b' ? "booleans"
                       : k[0] == 'c' ? "complex numbers"
                       : k[0] == 'U' || k[0] == 'S' ? "strings"
                                                     : "an unknown type";
    return npy_fail(c->err, CAE_ERR_TYPE, c->name, "dtype '%s' (%s): %s", d, what, hint);
}

/* Parse the dict text s[0..n) (file offset base) into a's rank, shape,
 * dtype and order. */
static cae_status parse_dict(const char *s, size_t n, size_t base, const char *name, cae_npy *a,
                             cae_error *err)
{
    for (size_t j = 0; j < n; j++) {
        const unsigned char ch = (unsigned char)s[j];
        if ((ch < 0x20 && ch != '\n' && ch != '\r' && ch != '\t') || ch >= 0x7f)
            return npy_fail(err, CAE_ERR_FORMAT, name,
                            "header byte %zu is 0x%02x: the header is not printable ASCII", base + j,
                            ch);
    }
    scan c = {s, n, 0, base, name, err};
    skip_ws(&c);
    if (c.i >= n || s[c.i] != '{') return syntax(&c, "the header dict '{'");
    c.i++;
    int have_descr = 0, have_order = 0, have_shape = 0;
    cae_status st;
    for (;;) {
        skip_ws(&c);
        if (c.i < n && s[c.i] == '}') {
            c.i++;
            break;
        }
        char key[32];
        const size_t key_at = c.i;
        if ((st = scan_string(&c, key, sizeof key, "a key ('descr', 'fortran_order' or 'shape') or '}'")))
            return st;
        skip_ws(&c);
        if (c.i >= n || s[c.i] != ':') return syntax(&c, "':' after a key");
        c.i++;
        skip_ws(&c);
        int *seen = !strcmp(key, "descr")           ? &have_descr
                    : !strcmp(key, "fortran_order") ? &have_order
                    : !strcmp(key, "shape")         ? &have_shape
                                                    : NULL;
        if (!seen)
            return npy_fail(err, CAE_ERR_FORMAT, name,
                            "header byte %zu: unknown key '%s' (a .npy header has 'descr', "
                            "'fortran_order' and 'shape')",
                            base + key_at, key);
        if (*seen)
            return npy_fail(err, CAE_ERR_FORMAT, name, "header byte %zu: the key '%s' appears twice",
                            base + key_at, key);
        *seen = 1;
        if (seen == &have_descr) {
            if (c.i < n && s[c.i] == '[')
                return npy_fail(err, CAE_ERR_TYPE, name,
                                "a structured dtype (a list of fields): expected float32 '<f4' or "
                                "float64 '<f8'");
            char d[32];
            if ((st = scan_string(&c, d, sizeof d, "the dtype string ('<f4')"))) return st;
            if ((st = check_descr(&c, d, a))) return st;
        } else if (seen == &have_order) {
            if (scan_word(&c, "True"))
                a->fortran_order = 1;
            else if (scan_word(&c, "False"))
                a->fortran_order = 0;
            else
                return syntax(&c, "True or False for 'fortran_order'");
        } else if ((st = scan_shape(&c, a))) {
            return st;
        }
        skip_ws(&c);
        if (c.i < n && s[c.i] == ',') {
            c.i++;
            continue;
        }
        skip_ws(&c);
        if (c.i < n && s[c.i] == '}') continue;
        return syntax(&c, "',' or '}' after a value");
    }
    skip_ws(&c);
    if (c.i < n) return syntax(&c, "only spaces and a newline after the dict");
    const char *missing = !have_descr ? "descr" : !have_order ? "fortran_order" : !have_shape ? "shape" : NULL;
    if (missing)
        return npy_fail(err, CAE_ERR_FORMAT, name, "the header has no '%s' key", missing);
    return CAE_OK;
}

/* ------------------------------------------------------------ the values */

static double get_elem(const uint8_t *p, int bytes)
{
    if (bytes == 4) {
        uint32_t u = 0;
        for (int i = 0; i < 4; i++) u |= (uint32_t)p[i] << (8 * i);
        float f;
        memcpy(&f, &u, 4);
        return f;
    }
    uint64_t u = 0;
    for (int i = 0; i < 8; i++) u |= (uint64_t)p[i] << (8 * i);
    double d;
    memcpy(&d, &u, 8);
    return d;
}

/* Convert the stored values to C order. Fortran order: element
 * (i0, .., ir-1) is at i0 + s0 (i1 + s1 (i2 + ...)) in the file. */
static cae_status convert(const uint8_t *src, const char *name, cae_npy *a, cae_error *err)
{
    /* An empty array has nothing to convert, and its other dimensions may
     * be anything up to 2^63 - 1: their product would overflow. Otherwise
     * every dimension is >= 1 and every partial product divides size. */
    if (a->size == 0) return CAE_OK;
    int64_t fstride[CAE_MAX_RANK], idx[CAE_MAX_RANK] = {0};
    int64_t st = 1;
    for (int k = 0; k < a->rank; k++) {
        fstride[k] = st;
        st *= a->shape[k];
    }
    int64_t off = 0; /* the file element of C element i */
    for (int64_t i = 0; i < a->size; i++) {
        const int64_t at = a->fortran_order ? off : i;
        const double v = get_elem(src + (size_t)at * (size_t)a->dtype_bytes, a->dtype_bytes);
        if (sizeof(cae_real) < 8 && isfinite(v) && fabs(v) > FLT_MAX)
            return npy_fail(err, CAE_ERR_NUMERIC, name,
                            "element %lld is %.17g, beyond the range of float (this build's real "
                            "type)",
                            (long long)i, v);
        a->data[i] = (cae_real)v;
        if (a->fortran_order) /* next C index: the last dimension moves fastest */
            for (int k = a->rank - 1; k >= 0; k--) {
                off += fstride[k];
                if (++idx[k] < a->shape[k]) break;
                off -= fstride[k] * a->shape[k];
                idx[k] = 0;
            }
    }
    return CAE_OK;
}

void cae_npy_release(cae_npy *a)
{
    if (!a) return;
    cae_free(a->data);
    memset(a, 0, sizeof *a);
}

cae_status cae_npy_decode(const void *buf, size_t len, const char *name, cae_npy *out,
                          cae_error *err)
{
    if (!name) name = "npy";
    if (!out) return npy_fail(err, CAE_ERR_ARG, name, "cae_npy_decode: no output");
    memset(out, 0, sizeof *out);
    if (!buf && len) return npy_fail(err, CAE_ERR_ARG, name, "cae_npy_decode: no buffer");
    const uint8_t *b = buf;
    if (len == 0) return npy_fail(err, CAE_ERR_EMPTY, name, "the file is empty (0 bytes)");
    const size_t mlen = len < 6 ? len : 6;
    if (memcmp(b, npy_magic, mlen)) {
        char got[32] = "";
        for (size_t i = 0, m = 0; i < mlen; i++)
            m += (size_t)snprintf(got + m, sizeof got - m, "%s%02x", i ? " " : "", b[i]);
        return npy_fail(err, CAE_ERR_MAGIC, name,
                        "not a .npy file: it starts with bytes %s, a .npy file with 93 4e 55 4d 50 "
                        "59 (\\x93NUMPY)",
                        got);
    }
    if (len < 8)
        return npy_fail(err, CAE_ERR_TRUNCATED, name,
                        "the file ends after %zu bytes, inside the magic and version (8 bytes)", len);
    const int major = b[6], minor = b[7];
    if (major < 1 || major > 3)
        return npy_fail(err, CAE_ERR_VERSION, name,
                        "format version %d.%d: this reader knows 1.0, 2.0 and 3.0", major, minor);
    const size_t lenbytes = major == 1 ? 2 : 4, hstart = 8 + lenbytes;
    if (len < hstart)
        return npy_fail(err, CAE_ERR_TRUNCATED, name,
                        "the file ends after %zu bytes, inside the header length (bytes 8..%zu)", len,
                        hstart - 1);
    uint32_t hlen = 0;
    for (size_t i = 0; i < lenbytes; i++) hlen |= (uint32_t)b[8 + i] << (8 * i);
    if (hlen > CAE_NPY_MAX_HEADER)
        return npy_fail(err, CAE_ERR_FORMAT, name, "the header is %u bytes long, more than %d",
                        (unsigned)hlen, CAE_NPY_MAX_HEADER);
    if (len - hstart < hlen)
        return npy_fail(err, CAE_ERR_TRUNCATED, name,
                        "the file ends after %zu bytes, the header says it ends at byte %zu", len,
                        hstart + hlen);
    cae_status st = parse_dict((const char *)b + hstart, hlen, hstart, name, out, err);
    if (st) {
        memset(out, 0, sizeof *out);
        return st;
    }
    out->version = major;
    char shp[160];
    shape_text(out->rank, out->shape, shp, sizeof shp);
    const int64_t size = cae_shape_size(out->rank, out->shape);
    if (size < 0 || (uint64_t)size > SIZE_MAX / 8) {
        memset(out, 0, sizeof *out);
        return npy_fail(err, CAE_ERR_DIMS, name, "the shape %s has more than 2^61 elements", shp);
    }
    const size_t need = (size_t)size * (size_t)out->dtype_bytes, have = len - hstart - hlen;
    if (have != need) {
        const int dt = out->dtype_bytes;
        memset(out, 0, sizeof *out);
        if (have < need)
            return npy_fail(err, CAE_ERR_TRUNCATED, name,
                            "the data is %zu bytes, the shape %s of float%d needs %zu", have, shp,
                            8 * dt, need);
        return npy_fail(err, CAE_ERR_FORMAT, name,
                        "%zu bytes after the data (the shape %s of float%d is %zu bytes)",
                        have - need, shp, 8 * dt, need);
    }
    const int64_t budget = cae_memory_budget();
    if ((uint64_t)size > (uint64_t)budget / sizeof(cae_real)) {
        memset(out, 0, sizeof *out);
        return npy_fail(err, CAE_ERR_NOMEM, name, "the shape %s is more than this process may hold",
                        shp);
    }
    out->size = size;
    out->data = cae_alloc_reals(size ? (size_t)size : 1);
    if (!out->data) {
        memset(out, 0, sizeof *out);
        return npy_fail(err, CAE_ERR_NOMEM, name, "out of memory for the shape %s", shp);
    }
    if ((st = convert(b + hstart + hlen, name, out, err))) cae_npy_release(out);
    return st;
}

cae_status cae_npy_read(const char *path, cae_npy *out, cae_error *err)
{
    if (out) memset(out, 0, sizeof *out);
    if (!path || !out) return cae_error_set(err, CAE_ERR_ARG, "cae_npy_read: NULL argument");
    const int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return npy_fail(err, CAE_ERR_IO, path, "cannot open: %s", strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb)) {
        const int e = errno;
        close(fd);
        return npy_fail(err, CAE_ERR_IO, path, "cannot stat: %s", strerror(e));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return npy_fail(err, CAE_ERR_IO, path, "%s",
                        S_ISDIR(sb.st_mode) ? "a directory, not a file" : "not a regular file");
    }
    const int64_t budget = cae_memory_budget();
    if (sb.st_size > budget / 3 || (uint64_t)sb.st_size > SIZE_MAX) {
        close(fd);
        return npy_fail(err, CAE_ERR_NOMEM, path, "%lld bytes: more than this process may hold",
                        (long long)sb.st_size);
    }
    const size_t n = (size_t)sb.st_size;
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf) {
        close(fd);
        return npy_fail(err, CAE_ERR_NOMEM, path, "out of memory for %zu bytes", n);
    }
    size_t got = 0;
    while (got < n) {
        const ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            const int e = r < 0 ? errno : 0;
            free(buf);
            close(fd);
            return npy_fail(err, CAE_ERR_IO, path, "read failed after %zu of %zu bytes%s%s", got, n,
                            e ? ": " : " (the file shrank)", e ? strerror(e) : "");
        }
        got += (size_t)r;
    }
    close(fd);
    const cae_status st = cae_npy_decode(buf, n, path, out, err);
    free(buf);
    return st;
}
