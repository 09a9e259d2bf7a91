/*
 * cae/gradcheck.h — compare a compiled graph's backward with central finite
 * differences. The checker never prints: it fills a report and the caller
 * decides. Noise ops are frozen during a check (the graph's RNG state is
 * restored before every forward), so a noisy graph is checked as the
 * deterministic function of one draw.
 *
 *   cae_gradcheck_report r;
 *   cae_gradcheck(g, cae_param(g, W), 1e-6, 200, 1, &r);
 *   if (r.max_rel_err > 1e-6) ...   // r.worst_index says where
 */
#ifndef CAE_GRADCHECK_H
#define CAE_GRADCHECK_H

#include "cae/graph.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cae_gradcheck_report {
    double max_abs_err;    /* max |analytic - numeric| */
    double max_rel_err;    /* max |a - n| / max(|a|, |n|, floor) */
    int64_t worst_index;   /* flat index of the worst relative error */
    double worst_analytic; /* the two values there */
    double worst_numeric;
    int64_t n_checked;
} cae_gradcheck_report;

/* Check d(loss)/d(wrt) for a compiled graph with a scalar loss. wrt is a
 * parameter node or an input marked with cae_input_requires_grad. eps is
 * the finite-difference step; when the tensor has more than max_checks
 * elements, max_checks distinct indices are drawn with `seed` (max_checks
 * <= 0: all). floor is the relative-error denominator's floor (0 picks
 * 1e-7). Returns 0, or -1 if wrt has no gradient or the graph is not
 * compiled. Leaves the node's values as it found them. */
int cae_gradcheck(cae_graph *g, cae_node *wrt, double eps, int64_t max_checks,
                  uint64_t seed, double floor, cae_gradcheck_report *rep);

#ifdef __cplusplus
}
#endif
#endif
