/* cae_dircheck's adjoint mode: the dot-product test of a tangent rule
 * against a backward. For random u (wrt's shape) and v (of's shape),
 *   forward mode:  <v, J u>    = sum v . tangent_out, tangent_in fed u
 *   reverse mode:  <J^T v, u>  = sum grad(wrt) . u after backward from of
 *                                seeded with v.
 * The two are one number computed by two codes, so they differ by rounding
 * only; a wrong tangent rule or a wrong backward shows as a difference. */
#include <math.h>
#include <string.h>

#include "cae/gradcheck.h"
#include "graph/internal.h"

/* Float: both sides round at ~6e-8 per operation, and the test sums a few
 * hundred thousand terms at most; 1e-4 leaves room for that and still sees
 * a 1% error in any term carrying 1% of the product. Double: the same at
 * 1e-16. */
#ifdef CAE_REAL_DOUBLE
#define ADJ_TOL 1e-10
#else
#define ADJ_TOL 1e-4
#endif

/* A named node of g, on its tape: CAE_OK or the status saying why not. */
static cae_status need_node(cae_graph *g, cae_node *n, const char *what, cae_error *err)
{
    static const char who[] = "dircheck (adjoint)";
    if (!n)
        return cae_error_set(err, CAE_ERR_ARG, "%s: no %s node (NULL): set opts.%s", who, what,
                             what);
    if (n->graph != g)
        return cae_error_set(err, CAE_ERR_ARG, "%s: node '%s' (%s) belongs to another graph", who,
                             cae_node_name(n), what);
    if (!cae_node_on_tape(n))
        return cae_error_set(err, CAE_ERR_TAPE, "%s: node '%s' (%s) is not on the graph's tape%s",
                             who, cae_node_name(n), what,
                             strcmp(what, "tangent_out") ? ""
                                                         : " (mark it with cae_graph_output)");
    return CAE_OK;
}

/* x[0..n) from U(-1, 1), stream (seed, k, which). */
static void draw(cae_real *x, int64_t n, uint64_t seed, int k, int which)
{
    cae_rng r;
    cae_rng_seed(&r, seed, 0x61646au << 24 | (uint64_t)k << 8 | (uint64_t)which);
    for (int64_t i = 0; i < n; i++) x[i] = (cae_real)(2 * cae_rng_uniform(&r) - 1);
}

/* sum a_i b_i, and in *typ sqrt(sum (a_i b_i)^2): the size of such a sum
 * when the signs of the terms are random. */
static double dot(const cae_real *a, const cae_real *b, int64_t n, double *typ)
{
    double s = 0, q = 0;
    for (int64_t i = 0; i < n; i++) {
        const double t = (double)a[i] * (double)b[i];
        s += t;
        q += t * t;
    }
    *typ = sqrt(q);
    return s;
}

cae_status dircheck_adjoint(cae_graph *g, const struct cae_dircheck_opts *o,
                            struct cae_dircheck_report *rep, cae_error *err)
{
    static const char who[] = "dircheck (adjoint)";
    cae_status st;
    if ((st = need_node(g, o->wrt, "wrt", err)) || (st = need_node(g, o->of, "of", err)) ||
        (st = need_node(g, o->tangent_out, "tangent_out", err)) ||
        (st = need_node(g, o->tangent_in, "tangent_in", err)))
        return st;
    cae_node *wrt = o->wrt, *of = o->of, *tin = o->tangent_in, *tout = o->tangent_out;
    if (!cae_node_is_input(tin))
        return cae_error_set(err, CAE_ERR_ARG, "%s: tangent_in '%s' is not an input (cae_input): "
                             "the check feeds it u", who, cae_node_name(tin));
    const int64_t n_u = cae_node_value(wrt)->size, n_v = cae_node_value(of)->size;
    char s1[64], s2[64];
    if (cae_node_value(tin)->size != n_u || cae_node_value(tout)->size != n_v)
        return cae_error_set(err, CAE_ERR_SHAPE,
                             "%s: the tangents must have one direction: tangent_in '%s' is %s for "
                             "wrt '%s' of %lld values, tangent_out '%s' is %s for of '%s' of %lld",
                             who, cae_node_name(tin),
                             cae_shape_str(cae_node_value(tin), s1, sizeof s1),
                             cae_node_name(wrt), (long long)n_u, cae_node_name(tout),
                             cae_shape_str(cae_node_value(tout), s2, sizeof s2), cae_node_name(of),
                             (long long)n_v);
    if (!cae_needs_grad(wrt) || !cae_needs_grad(of))
        return cae_error_set(err, CAE_ERR_NOGRAD,
                             "%s: '%s' (%s) keeps no gradient: the reverse side runs backward from "
                             "of into wrt (mark an input with cae_input_requires_grad)", who,
                             cae_node_name(cae_needs_grad(wrt) ? of : wrt),
                             cae_needs_grad(wrt) ? "of" : "wrt");
    const double tol = o->tol == 0 ? ADJ_TOL : o->tol;

    cae_params *p = cae_graph_params(g);
    const size_t total = p ? cae_params_total(p) : 0;
    cae_real *buf = malloc(((size_t)n_u + (size_t)n_v + total + 1) * sizeof *buf);
    if (!buf)
        return cae_error_set(err, CAE_ERR_NOMEM, "%s: out of memory (%zu values)", who,
                             (size_t)n_u + (size_t)n_v + total);
    cae_real *u = buf, *v = u + n_u, *gsave = v + n_v;
    if (total) memcpy(gsave, cae_params_grads(p), total * sizeof *gsave);
    cae_real *bound = cae_node_value(tin)->data;
    const cae_rng frozen = *cae_graph_rng(g);

    for (int k = 0; k < o->directions; k++) {
        draw(u, n_u, o->seed, k, 0);
        draw(v, n_v, o->seed, k, 1);
        cae_input_bind(tin, u);
        *cae_graph_rng(g) = frozen; /* the same noise draw every time */
        cae_graph_forward(g);
        double tf, tr;
        const double fw = dot(v, cae_node_value(tout)->data, n_v, &tf);
        cae_graph_backward_from(g, of, v);
        const double rv = dot(cae_node_value(wrt)->grad, u, n_u, &tr);
        const double scale = fmax(tf, tr);
        rep->eps[k] = 0;
        dircheck_record(rep, k, fw, rv, o->floor * scale);
        if (k == 0 || scale > rep->scale) rep->scale = scale;
    }
    rep->n_dirs = o->directions;
    rep->n_tensors = 1;
    rep->n_elements = n_u;

    cae_input_bind(tin, bound);
    if (total) memcpy(cae_params_grads(p), gsave, total * sizeof *gsave);
    *cae_graph_rng(g) = frozen;
    free(buf);
    if (tol < 0 || rep->max_rel_diff <= tol) return CAE_OK;
    const int w = rep->worst;
    const char *name = cae_node_name(of), *tname = cae_node_name(tout);
    return cae_error_set(err, CAE_ERR_MISMATCH,
                         "%s: op '%s'%s%s%s from '%s': along direction %d of %d, <v, J u> = %.9g "
                         "by the tangent rules%s%s%s, <J^T v, u> = %.9g by backward (rel diff "
                         "%.3g > tol %g)", who, cae_node_op_name(of), *name ? " (node '" : "",
                         name, *name ? "')" : "", cae_node_name(wrt), w + 1, rep->n_dirs,
                         rep->forward[w], *tname ? " ('" : "", tname, *tname ? "')" : "",
                         rep->reverse[w], rep->max_rel_diff, tol);
}
