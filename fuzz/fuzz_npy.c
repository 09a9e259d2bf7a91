/* libFuzzer target: the .npy reader (cae_npy_decode, cae_npy_read).
 *
 * Input: a .npy file. Besides the sanitizers it checks what cae/npy.h
 * promises: a failure leaves the array empty and writes a message naming
 * the file; a success has a rank in 0..CAE_MAX_RANK, size = the product of
 * the shape, a stored type of 4 or 8 bytes and every value equal to the one
 * at its place in the file (C order directly, Fortran order by the index
 * formula, recomputed here independently of the reader's odometer); and
 * reading the same bytes from a file gives the same result. The seeds
 * (fuzz/corpus/npy) are valid files of each version, order and type, and
 * the refusals the reader names (object dtype, big-endian, truncated, ...). */
#include <math.h>
#include <string.h>

#include "cae/npy.h"
#include "fuzz_common.h"

#define CHECK(cond, ...)                                                          \
    do {                                                                          \
        if (!(cond)) {                                                            \
            fprintf(stderr, "fuzz_npy: %s:%d: %s: ", __FILE__, __LINE__, #cond);  \
            fprintf(stderr, __VA_ARGS__);                                         \
            fputc('\n', stderr);                                                  \
            abort();                                                              \
        }                                                                         \
    } while (0)

static fuzz_file npy;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_file_open(&npy, "cae-fuzz-npy");
    return 0;
}

static cae_real value_at(const uint8_t *p, int bytes)
{
    if (bytes == 4) {
        uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
        float f;
        memcpy(&f, &u, 4);
        return (cae_real)f;
    }
    uint64_t u = 0;
    for (int i = 7; i >= 0; i--) u = u << 8 | p[i];
    double d;
    memcpy(&d, &u, 8);
    return (cae_real)d;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cae_npy a;
    cae_error e = {CAE_OK, ""};
    const cae_status st = cae_npy_decode(data, size, "in.npy", &a, &e);
    if (st) {
        CHECK(a.data == NULL && a.size == 0 && a.rank == 0, "a failure left an array");
        CHECK(e.status == st && !strncmp(e.msg, "in.npy: ", 8) && strlen(e.msg) > 8,
              "a failure (%d) without a message naming the file: '%s'", (int)st, e.msg);
    } else {
        CHECK(a.rank >= 0 && a.rank <= CAE_MAX_RANK, "rank %d", a.rank);
        CHECK(a.dtype_bytes == 4 || a.dtype_bytes == 8, "dtype of %d bytes", a.dtype_bytes);
        CHECK(a.version >= 1 && a.version <= 3, "version %d", a.version);
        CHECK(a.data != NULL, "no data");
        int64_t n = 1;
        for (int k = 0; k < a.rank; k++) n *= a.shape[k];
        CHECK(n == a.size, "size %lld, the shape says %lld", (long long)a.size, (long long)n);
        const size_t hstart = a.version == 1 ? 10 : 12;
        size_t hlen = (size_t)data[8] | (size_t)data[9] << 8;
        if (a.version > 1) hlen |= (size_t)data[10] << 16 | (size_t)data[11] << 24;
        CHECK(size == hstart + hlen + (size_t)a.size * (size_t)a.dtype_bytes, "the sizes do not add up");
        const uint8_t *body = data + hstart + hlen;
        for (int64_t i = 0; i < a.size; i++) {
            int64_t at = i;
            if (a.fortran_order) { /* C index i -> multi-index -> Fortran offset */
                int64_t rest = i, idx[CAE_MAX_RANK], stride = 1;
                for (int k = a.rank - 1; k >= 0; k--) {
                    idx[k] = rest % a.shape[k];
                    rest /= a.shape[k];
                }
                at = 0;
                for (int k = 0; k < a.rank; k++) {
                    at += idx[k] * stride;
                    stride *= a.shape[k];
                }
            }
            const cae_real want = value_at(body + (size_t)at * (size_t)a.dtype_bytes, a.dtype_bytes);
            CHECK(!memcmp(&want, &a.data[i], sizeof want) || (isnan(want) && isnan(a.data[i])),
                  "element %lld is %g, the file has %g at %lld", (long long)i, (double)a.data[i],
                  (double)want, (long long)at);
        }
    }
    /* The same bytes through a file. */
    fuzz_file_set(&npy, data, size);
    cae_npy b;
    cae_error e2 = {CAE_OK, ""};
    const cae_status st2 = cae_npy_read(npy.path, &b, &e2);
    CHECK(st2 == st, "decode says %d, read says %d (%s)", (int)st, (int)st2, e2.msg);
    if (!st) {
        CHECK(b.rank == a.rank && b.size == a.size && b.fortran_order == a.fortran_order &&
                  b.dtype_bytes == a.dtype_bytes,
              "read and decode disagree on the header");
        CHECK(!memcmp(a.data, b.data, sizeof(cae_real) * (size_t)a.size), "read and decode disagree on values");
    } else {
        CHECK(!strncmp(e2.msg, npy.path, strlen(npy.path)), "read's message does not name the file: '%s'", e2.msg);
    }
    cae_npy_release(&a);
    cae_npy_release(&b);
    return 0;
}
