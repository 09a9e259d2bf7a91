/* Shapes, aligned allocation and the always-on assertion. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "graph/internal.h"

_Noreturn void cae_assert_fail(const char *file, int line, const char *cond,
                               const char *fmt, ...)
{
    fprintf(stderr, "cae: %s:%d: assertion '%s' failed: ", file, line, cond);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    abort();
}

int64_t cae_shape_size(int rank, const int64_t *shape)
{
    if (rank < 0 || rank > CAE_MAX_RANK) return -1;
    int64_t n = 1;
    for (int i = 0; i < rank; i++) {
        if (shape[i] < 0) return -1;
        if (shape[i] != 0 && n > INT64_MAX / shape[i]) return -1;
        n *= shape[i];
    }
    return n;
}

char *cae_shape_str(const cae_tensor *t, char *buf, size_t len)
{
    if (!len) return buf;
    buf[0] = 0;
    if (!t) {
        snprintf(buf, len, "(null)");
        return buf;
    }
    if (t->rank == 0) {
        snprintf(buf, len, "scalar");
        return buf;
    }
    size_t used = 0;
    for (int i = 0; i < t->rank && used < len; i++) {
        int w = snprintf(buf + used, len - used, i ? "x%lld" : "%lld",
                         (long long)t->shape[i]);
        if (w < 0) break;
        used += (size_t)w;
    }
    return buf;
}

size_t cae_round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }

cae_real *cae_alloc_reals(size_t n)
{
    if (n > SIZE_MAX / sizeof(cae_real) - CAE_ALIGN) return NULL;
    size_t bytes = cae_round_up((n ? n : 1) * sizeof(cae_real), CAE_ALIGN);
    void *p = NULL;
    if (posix_memalign(&p, CAE_ALIGN, bytes)) return NULL;
    memset(p, 0, bytes);
    return p;
}

void cae_free(void *p) { free(p); }

int64_t cae_memory_budget(void)
{
    int64_t budget = INT64_MAX;
    const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    int64_t phys;
    if (pages > 0 && page > 0 && !__builtin_mul_overflow((int64_t)pages, (int64_t)page, &phys))
        budget = phys;
    const int limits[2] = {RLIMIT_AS, RLIMIT_DATA};
    for (int k = 0; k < 2; k++) {
        struct rlimit rl;
        if (getrlimit(limits[k], &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
            rl.rlim_cur < (rlim_t)budget)
            budget = (int64_t)rl.rlim_cur;
    }
    return budget;
}

static const char *const status_names[CAE_ERR_COUNT] = {
    "ok",     "bad argument", "out of memory", "i/o",      "empty",     "truncated",
    "magic",  "version",      "crc",           "format",   "type",      "rank",
    "dims",   "shape",        "mismatch",      "gzip",     "image",     "not compiled",
    "not on the tape", "no gradient", "kernel", "not finite", "unsupported", "communication"};

const char *cae_status_name(cae_status s)
{
    return (s >= 0 && s < CAE_ERR_COUNT) ? status_names[s] : "unknown status";
}

cae_status cae_error_set(cae_error *e, cae_status s, const char *fmt, ...)
{
    if (e) {
        e->status = s;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        va_end(ap);
    }
    return s;
}
