/*
 * cae/testing.h — Check assertions for gradients, for your own test suites.
 *
 * The checkers of cae/gradcheck.h return reports; these macros turn a report
 * into a Check failure whose message names the tensor, the index and both
 * values. They are Check assertions (https://libcheck.github.io/check/), so
 * include <check.h> first; without it this header refuses to compile.
 *
 *   #include <check.h>
 *   #include "cae/testing.h"
 *
 *   START_TEST(fused_regularizer)
 *   {
 *       // g_fused and g_composed: the same loss over one parameter store,
 *       // with my fused op and with primitives; both compiled.
 *       cae_ck_gradcompare(g_fused, g_composed, CAE_CK_TOL_COMPARE);
 *       cae_ck_dircheck(g_fused, CAE_CK_TOL_DIR);      // every tensor, ~12 forwards
 *       cae_ck_gradcheck(g_fused, W, CAE_CK_TOL_FD);   // element by element
 *       cae_ck_adjoint(g, x, t, h, Jt);  // tangent rules vs backward (cae/jvp.h)
 *   }
 *   END_TEST
 *
 * A failure reads, for example:
 *   cae_gradcompare: d loss/d W[2,5] (W is 7x6): analytic 0.918273645,
 *   reference 0.459136822 (rel diff 0.5 > tol 0.0001; also over tol: b)
 *
 * Tolerances. CAE_CK_TOL_* below are what our own suites use, in the float
 * build (the product) and the double build (-DCAE_DOUBLE=ON, which exists
 * so that gradient tests can be tight); u is the unit roundoff, 6e-8 in
 * float and 1.1e-16 in double.
 *
 *  - cae_gradcompare: float 1e-4, double 1e-10. Both graphs compute the
 *    same function in the same precision, so they differ by rounding only:
 *    a few u times the number of terms summed, more where terms cancel.
 *    With the default floor (an element below 1% of its tensor's largest
 *    is compared absolutely, against that 1%), the fused and composed
 *    contractive penalties differ by at most 2e-5 (float) and 4e-14
 *    (double) over 270 shapes, activations and layouts, while a 1% error in
 *    one term of the gradient shows as ~1e-2 where that term dominates.
 *  - cae_gradcheck (finite differences, step CAE_CK_FD_EPS, absolute floor
 *    CAE_CK_FD_FLOOR): float 2e-2, double 1e-5. The central difference
 *    has a truncation error ~eps^2 and a rounding error ~u |loss| / eps;
 *    in float the best eps (~1e-2) still leaves errors of 1e-3..1e-2, so
 *    float can only catch gross mistakes and the double build is where
 *    this check is meaningful (eps 1e-5: errors ~1e-8).
 *  - cae_dircheck: float 1e-2, double 1e-5. The same two errors, with the
 *    step chosen by the checker; a right backward measures up to ~4e-3
 *    (float) and ~3e-7 (double; 1e-9 on cross-entropy layers, more where
 *    the forward sums many terms), while a factor 2, sign, transpose,
 *    shifted row or missing bias term measures 0.06..0.7.
 *  - cae_ck_adjoint: the checker's own, float 1e-4, double 1e-10. No step:
 *    <v, J u> and <J^T v, u> differ by rounding only (~2e-6 in float on
 *    our ops), while a tangent or backward 1% off in a term shows ~1e-2.
 */
#ifndef CAE_TESTING_H
#define CAE_TESTING_H

#ifndef ck_assert_msg
#error "cae/testing.h holds Check assertions: include <check.h> before it"
#endif

#include <stdio.h>
#include <string.h>

#include "cae/gradcheck.h"

#ifdef CAE_REAL_DOUBLE
#define CAE_CK_TOL_COMPARE 1e-10
#define CAE_CK_TOL_FD 1e-5
#define CAE_CK_TOL_DIR 1e-5
#define CAE_CK_FD_EPS 1e-5
#define CAE_CK_FD_FLOOR 1e-3
#else
#define CAE_CK_TOL_COMPARE 1e-4
#define CAE_CK_TOL_FD 2e-2
#define CAE_CK_TOL_DIR 1e-2
#define CAE_CK_FD_EPS 1e-2
#define CAE_CK_FD_FLOOR 5e-2
#endif
/* cae_ck_gradcheck checks at most this many elements (drawn at random);
 * define it before including to change it. */
#ifndef CAE_CK_FD_MAX_CHECKS
#define CAE_CK_FD_MAX_CHECKS 500
#endif

/* Compare the analytic graph's loss and gradients with the reference's on
 * random inputs U(0, 1) (cae_gradcompare with default options); fail when
 * any relative difference exceeds tol. */
#define cae_ck_gradcompare(g_analytic, g_reference, tol) \
    cae_ck_gradcompare_opts(g_analytic, g_reference, NULL, tol)
/* The same with options (inputs, seed, range, floor). */
#define cae_ck_gradcompare_opts(g_analytic, g_reference, opts, tol)                      \
    do {                                                                                 \
        char cae_ck_msg_[1024];                                                          \
        const int cae_ck_ok_ = cae_ck_gradcompare_run_((g_analytic), (g_reference),      \
                                                       (opts), (tol), cae_ck_msg_,       \
                                                       sizeof cae_ck_msg_);              \
        ck_assert_msg(cae_ck_ok_, "%s", cae_ck_msg_);                                    \
    } while (0)

/* Backward against central differences for one parameter or input node
 * (at most CAE_CK_FD_MAX_CHECKS elements); fail above tol. */
#define cae_ck_gradcheck(g, node, tol)                                                   \
    do {                                                                                 \
        char cae_ck_msg_[1024];                                                          \
        const int cae_ck_ok_ =                                                           \
            cae_ck_gradcheck_run_((g), (node), (tol), cae_ck_msg_, sizeof cae_ck_msg_);  \
        ck_assert_msg(cae_ck_ok_, "%s", cae_ck_msg_);                                    \
    } while (0)

/* Backward against central differences along 4 random directions through
 * every parameter and input with a gradient; on a failure, each tensor is
 * checked alone to name the wrong one(s). */
#define cae_ck_dircheck(g, tol)                                                          \
    do {                                                                                 \
        char cae_ck_msg_[1024];                                                          \
        const int cae_ck_ok_ = cae_ck_dircheck_run_((g), (tol), cae_ck_msg_,             \
                                                    sizeof cae_ck_msg_);                 \
        ck_assert_msg(cae_ck_ok_, "%s", cae_ck_msg_);                                    \
    } while (0)

/* The adjoint test (cae_dircheck, CAE_DIRCHECK_ADJOINT) of of_node's
 * tangent rules against its backwards w.r.t. wrt_node (tan_out: cae_jvp of
 * of_node along tan_in, wrt_node's tangent input), at the checker's default
 * tolerance; fails with its message. */
#define cae_ck_adjoint(g, wrt_node, tan_in, of_node, tan_out)                            \
    do {                                                                                 \
        const cae_dircheck_opts cae_ck_o_ = {.mode = CAE_DIRCHECK_ADJOINT,               \
            .wrt = (wrt_node), .of = (of_node), .tangent_in = (tan_in),                  \
            .tangent_out = (tan_out)};                                                   \
        cae_dircheck_report cae_ck_r_;                                                   \
        cae_error cae_ck_e_;                                                             \
        const cae_status cae_ck_s_ = cae_dircheck((g), &cae_ck_o_, &cae_ck_r_, &cae_ck_e_); \
        ck_assert_msg(cae_ck_s_ == CAE_OK, "cae_dircheck failed (%s): %s",               \
                      cae_status_name(cae_ck_s_), cae_ck_e_.msg);                        \
    } while (0)

/* ---- the macros' bodies (not for direct use) */

/* "[2,5]" for flat index i of a tensor of this shape ("" for a scalar). */
static inline void cae_ck_index_(char *b, size_t len, int rank, const int64_t *shape, int64_t i)
{
    int64_t at[CAE_MAX_RANK] = {0};
    for (int k = rank - 1; k >= 0; k--) {
        at[k] = shape[k] > 0 ? i % shape[k] : 0;
        i = shape[k] > 0 ? i / shape[k] : 0;
    }
    size_t o = 0;
    b[0] = 0;
    for (int k = 0; k < rank && o < len; k++)
        o += (size_t)snprintf(b + o, len - o, "%s%lld", k ? "," : "[", (long long)at[k]);
    if (rank && o < len) snprintf(b + o, len - o, "]");
}

static inline int cae_ck_gradcompare_run_(cae_graph *ga, cae_graph *gr,
                                          const cae_gradcompare_opts *o, double tol, char *msg,
                                          size_t len)
{
    cae_gradcompare_report r;
    cae_error e;
    if (cae_gradcompare(ga, gr, o, &r, &e)) {
        snprintf(msg, len, "cae_gradcompare failed (%s): %s", cae_status_name(e.status), e.msg);
        return 0;
    }
    if (r.max_rel_diff <= tol) return 1;
    const cae_gradcompare_diff *d = &r.diff[r.worst];
    char at[96], shape[64], others[256] = "";
    cae_tensor t = {.rank = d->rank};
    memcpy(t.shape, d->shape, sizeof t.shape);
    cae_ck_index_(at, sizeof at, d->rank, d->shape, d->worst_index);
    cae_shape_str(&t, shape, sizeof shape);
    for (int k = 0, o2 = 0; k < r.n; k++)
        if (k != r.worst && !(r.diff[k].max_rel_diff <= tol) && o2 < (int)sizeof others)
            o2 += snprintf(others + o2, sizeof others - (size_t)o2, "%s%s",
                           o2 ? ", " : "; also over tol: ", r.diff[k].name);
    if (d->kind == CAE_DIFF_LOSS)
        snprintf(msg, len, "cae_gradcompare: loss: analytic %.9g, reference %.9g (rel diff %.3g "
                 "> tol %g%s)", d->worst_analytic, d->worst_reference, d->max_rel_diff, tol, others);
    else
        snprintf(msg, len, "cae_gradcompare: d loss/d %s%s%s (%s is %s): analytic %.9g, reference "
                 "%.9g (rel diff %.3g > tol %g%s)",
                 d->kind == CAE_DIFF_INPUT ? "input " : "", d->name, at, d->name, shape,
                 d->worst_analytic, d->worst_reference, d->max_rel_diff, tol, others);
    return 0;
}

static inline int cae_ck_gradcheck_run_(cae_graph *g, cae_node *n, double tol, char *msg,
                                        size_t len)
{
    cae_gradcheck_report r;
    cae_error e;
    const char *name = n ? cae_node_name(n) : "(NULL)";
    if (cae_gradcheck(g, n, CAE_CK_FD_EPS, CAE_CK_FD_MAX_CHECKS, 1, CAE_CK_FD_FLOOR, &r, &e)) {
        snprintf(msg, len, "cae_gradcheck failed (%s): %s", cae_status_name(e.status), e.msg);
        return 0;
    }
    if (r.max_rel_err <= tol) return 1;
    const cae_tensor *t = cae_node_value(n);
    char at[96], shape[64];
    cae_ck_index_(at, sizeof at, t->rank, t->shape, r.worst_index);
    snprintf(msg, len, "cae_gradcheck: d loss/d %s%s (%s is %s): backward %.9g, central "
             "difference %.9g (rel err %.3g > tol %g)", name, at, name,
             cae_shape_str(t, shape, sizeof shape), r.worst_analytic, r.worst_numeric,
             r.max_rel_err, tol);
    return 0;
}

static inline int cae_ck_dircheck_run_(cae_graph *g, double tol, char *msg, size_t len)
{
    cae_dircheck_report r;
    cae_error e;
    if (cae_dircheck(g, NULL, &r, &e)) {
        snprintf(msg, len, "cae_dircheck failed (%s): %s", cae_status_name(e.status), e.msg);
        return 0;
    }
    if (r.max_rel_diff <= tol) return 1;
    int o = snprintf(msg, len, "cae_dircheck: direction %d of %d (%lld elements in %d tensors): "
                     "central difference %.9g, backward %.9g (rel diff %.3g > tol %g); alone, "
                     "over tol:", r.worst + 1, r.n_dirs, (long long)r.n_elements, r.n_tensors,
                     r.forward[r.worst], r.reverse[r.worst], r.max_rel_diff, tol);
    int named = 0;
    for (int i = 0; i < cae_graph_tape_length(g) && o < (int)len; i++) {
        cae_node *n = cae_graph_tape_at(g, i);
        const int is_param = cae_node_param(n) != NULL, is_input = cae_node_is_input(n);
        if ((!is_param && !is_input) || !cae_node_value(n)->grad) continue; /* no gradient kept */
        int seen = 0; /* a parameter used through several nodes: once */
        for (int k = 0; k < i && is_param; k++)
            seen |= cae_node_param(cae_graph_tape_at(g, k)) == cae_node_param(n);
        cae_dircheck_opts one = {.wrt = n};
        cae_dircheck_report r1;
        if (seen || cae_dircheck(g, &one, &r1, NULL) || r1.max_rel_diff <= tol) continue;
        o += snprintf(msg + o, len - (size_t)o, " %s (rel %.3g)", cae_node_name(n), r1.max_rel_diff);
        named = 1;
    }
    if (!named && o < (int)len) snprintf(msg + o, len - (size_t)o, " none (look across tensors)");
    return 0;
}

#endif
