/* Shared helpers for the Check suites. */
#ifndef CAE_TESTUTIL_H
#define CAE_TESTUTIL_H

#include <check.h>
#include <stdint.h>

#include "cae/data.h"
#include "cae/gradcheck.h"
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

/* cae_gradcheck of node wrt with TU_FD_EPS and TU_FD_FLOOR into *rep; the
 * test fails, with the checker's message, if the checker refuses. */
#define TU_GRADCHECK(g, wrt, max_checks, seed, rep)                                     \
    do {                                                                                \
        cae_error tu_e_;                                                                \
        ck_assert_msg(cae_gradcheck((g), (wrt), TU_FD_EPS, (max_checks), (seed),        \
                                    TU_FD_FLOOR, (rep), &tu_e_) == CAE_OK,              \
                      "cae_gradcheck (%s): %s", cae_status_name(tu_e_.status), tu_e_.msg); \
    } while (0)

/* got must be want, and so must e->status, with part in e->msg. */
void tu_expect_err(cae_status got, cae_status want, const cae_error *e, const char *part);

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
