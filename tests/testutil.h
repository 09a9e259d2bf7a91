/* Shared helpers for the Check suites. */
#ifndef CAE_TESTUTIL_H
#define CAE_TESTUTIL_H

#include <check.h>
#include <stdint.h>

#include "cae/graph.h"

/* Tolerances that depend on the real type: tight in the double build. */
#ifdef CAE_REAL_DOUBLE
#define TU_FD_EPS 1e-6
#define TU_FD_TOL 1e-6
#else
#define TU_FD_EPS 1e-2
#define TU_FD_TOL 2e-2
#endif

/* Fill x[0..n-1] with U(lo, hi) from a private generator seeded by seed. */
void tu_fill_uniform(cae_real *x, int64_t n, double lo, double hi, uint64_t seed);
/* Run a suite (CK_FORK as set in the environment, default fork) and return
 * the process exit status: 0 iff every test passed. */
int tu_run(Suite *s);
/* A fresh temporary directory (mkdtemp under $TMPDIR or /tmp), malloc'd. */
char *tu_tmpdir(void);

#endif
