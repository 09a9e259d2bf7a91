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
