/* Central-difference gradient checker. Not a hot path: it allocates. */
#include <math.h>
#include <string.h>

#include "cae/gradcheck.h"
#include "graph/internal.h"

static double loss_at(cae_graph *g, const cae_rng *frozen)
{
    g->rng = *frozen; /* the same noise draw every time */
    cae_graph_forward(g);
    return (double)g->loss->out.data[0];
}

int cae_gradcheck(cae_graph *g, cae_node *wrt, double eps, int64_t max_checks,
                  uint64_t seed, double floor, cae_gradcheck_report *rep)
{
    memset(rep, 0, sizeof *rep);
    rep->worst_index = -1;
    if (!g || !g->compiled || !wrt || wrt->graph != g || !cae_node_on_tape(wrt) || !wrt->out.grad)
        return -1;
    if (g->loss->out.size != 1) return -1;
    if (floor <= 0) floor = 1e-7;
    const int64_t n = wrt->out.size;
    int64_t m = (max_checks <= 0 || max_checks > n) ? n : max_checks;
    int64_t *idx = malloc((size_t)(n ? n : 1) * sizeof *idx);
    double *analytic = malloc((size_t)(m ? m : 1) * sizeof *analytic);
    if (!idx || !analytic) {
        free(idx);
        free(analytic);
        return -1;
    }
    for (int64_t i = 0; i < n; i++) idx[i] = i;
    if (m < n) { /* m distinct indices: a partial Fisher-Yates shuffle */
        cae_rng r;
        cae_rng_seed(&r, seed, 0x67636b);
        for (int64_t i = 0; i < m; i++) {
            int64_t j = i + (int64_t)cae_rng_below(&r, (uint64_t)(n - i));
            int64_t t = idx[i];
            idx[i] = idx[j];
            idx[j] = t;
        }
    }
    const cae_rng frozen = g->rng;
    loss_at(g, &frozen);
    cae_graph_backward(g);
    for (int64_t k = 0; k < m; k++) analytic[k] = (double)wrt->out.grad[idx[k]];

    cae_real *x = wrt->out.data;
    for (int64_t k = 0; k < m; k++) {
        const int64_t i = idx[k];
        const cae_real orig = x[i];
        const cae_real xp = (cae_real)(orig + eps), xm = (cae_real)(orig - eps);
        x[i] = xp;
        double lp = loss_at(g, &frozen);
        x[i] = xm;
        double lm = loss_at(g, &frozen);
        x[i] = orig;
        double numeric = (lp - lm) / ((double)xp - (double)xm);
        double a = analytic[k];
        double abs_err = fabs(a - numeric);
        double den = fmax(fmax(fabs(a), fabs(numeric)), floor);
        double rel = abs_err / den;
        /* A NaN anywhere is kept: it must not be hidden by later entries. */
        if (!isnan(rep->max_abs_err) && (isnan(abs_err) || abs_err > rep->max_abs_err))
            rep->max_abs_err = abs_err;
        if (rep->worst_index < 0 ||
            (!isnan(rep->max_rel_err) && (isnan(rel) || rel > rep->max_rel_err))) {
            rep->max_rel_err = rel;
            rep->worst_index = i;
            rep->worst_analytic = a;
            rep->worst_numeric = numeric;
        }
    }
    rep->n_checked = m;
    g->rng = frozen;
    cae_graph_forward(g); /* leave the graph in the unperturbed state */
    g->rng = frozen;
    free(idx);
    free(analytic);
    return 0;
}
