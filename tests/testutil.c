#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cae/rng.h"

void tu_fill_uniform(cae_real *x, int64_t n, double lo, double hi, uint64_t seed)
{
    cae_rng r;
    cae_rng_seed(&r, seed, 0);
    for (int64_t i = 0; i < n; i++)
        x[i] = (cae_real)(lo + (hi - lo) * cae_rng_uniform(&r));
}

int tu_run(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

char *tu_tmpdir(void)
{
    const char *base = getenv("TMPDIR");
    if (!base || !*base) base = "/tmp";
    size_t len = strlen(base) + 32;
    char *p = malloc(len);
    if (!p) return NULL;
    snprintf(p, len, "%s/cae-test-XXXXXX", base);
    if (!mkdtemp(p)) { free(p); return NULL; }
    return p;
}

const char *tu_data_dir(void)
{
    static char buf[512];
    const char *d = getenv("CAE_DATA_DIR");
    if (d && *d) return d;
    snprintf(buf, sizeof buf, "%s/data", CAE_SOURCE_DIR);
    return buf;
}

cae_splits *tu_mnist(void)
{
    cae_error err;
    cae_splits *s = NULL;
    const cae_status st = cae_splits_load(tu_data_dir(), "mnist", &s, &err);
    ck_assert_msg(st == CAE_OK && s,
                  "MNIST could not be loaded from %s/mnist (%s): these tests need the real data. "
                  "Run scripts/fetch-data.sh (or set CAE_DATA_DIR to where it put the data).",
                  tu_data_dir(), err.msg);
    return s;
}

cae_dataset *tu_head(const cae_dataset *d, int64_t n)
{
    cae_dataset *v = cae_dataset_view(d, 0, n);
    ck_assert_msg(v != NULL, "view of %lld examples of a set of %lld", (long long)n,
                  (long long)d->n);
    return v;
}

void tu_expect_err(cae_status got, cae_status want, const cae_error *e, const char *part)
{
    ck_assert_msg(got == want, "status %s, want %s (%s)", cae_status_name(got),
                  cae_status_name(want), e->msg);
    ck_assert_msg(e->status == want && strstr(e->msg, part), "message \"%s\" lacks \"%s\"",
                  e->msg, part);
}
