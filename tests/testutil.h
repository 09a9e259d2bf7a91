/* Shared helpers for the Check suites. */
#ifndef CAE_TESTUTIL_H
#define CAE_TESTUTIL_H

#include <check.h>
#include <stdint.h>

#include "cae/data.h"
#include "cae/graph.h"

/* Tolerances that depend on the real type: tight in the double build. */
/* TU_FD_FLOOR is the gradient checker's relative-error floor: in float,
 * differences of O(1) losses carry ~1e-4 absolute noise, so gradients much
 * smaller than the floor are compared absolutely. */
#ifdef CAE_REAL_DOUBLE
#define TU_FD_EPS 1e-5
#define TU_FD_TOL 1e-5
#define TU_FD_FLOOR 1e-3
#else
#define TU_FD_EPS 1e-2
#define TU_FD_TOL 2e-2
#define TU_FD_FLOOR 5e-2
#endif

/* Fill x[0..n-1] with U(lo, hi) from a private generator seeded by seed. */
void tu_fill_uniform(cae_real *x, int64_t n, double lo, double hi, uint64_t seed);
/* Run a suite (CK_FORK as set in the environment, default fork) and return
 * the process exit status: 0 iff every test passed. */
int tu_run(Suite *s);
/* Where the fetched data is: $CAE_DATA_DIR, else <source>/data. */
const char *tu_data_dir(void);
/* The MNIST splits, or the test fails saying where the data should be
 * (these tests need the real data: scripts/fetch-data.sh). */
cae_splits *tu_mnist(void);
/* A view of the first n examples of d (the test fails if it cannot). */
cae_dataset *tu_head(const cae_dataset *d, int64_t n);
/* A fresh temporary directory (mkdtemp under $TMPDIR or /tmp), malloc'd. */
char *tu_tmpdir(void);

#endif
