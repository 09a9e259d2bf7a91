/* Gradient checkers: central differences element by element
 * (cae_gradcheck), one graph against another (cae_gradcompare), central
 * differences along random directions (cae_dircheck). Not hot paths: they
 * allocate. Everything goes through the public graph API except
 * graph_ready, the one reader of a graph's private fields. */
#include <math.h>
#include <string.h>

#include "cae/gradcheck.h"
#include "graph/internal.h"

/* ------------------------------------------------------------ shared */

/* A compiled graph whose store has not moved since compile (what forward
 * and backward assert), as a status instead of an abort. */
static cae_status graph_ready(const cae_graph *g, const char *who, cae_error *err)
{
    if (!g) return cae_error_set(err, CAE_ERR_ARG, "%s: no graph (NULL)", who);
    if (!g->compiled)
        return cae_error_set(err, CAE_ERR_COMPILE, "%s: the graph is not compiled%s%s", who,
                             g->err[0] ? ": " : "", g->err);
    if (g->params_generation != cae_params_generation(g->params))
        return cae_error_set(err, CAE_ERR_COMPILE,
                             "%s: parameters were added to the store after compile: recompile "
                             "the graph", who);
    return CAE_OK;
}

static int on_tape(const cae_graph *g, const cae_node *n)
{
    for (int i = 0; n && i < cae_graph_tape_length(g); i++)
        if (cae_graph_tape_at(g, i) == n) return 1;
    return 0;
}

static double loss_value(cae_graph *g) { return (double)cae_node_value(cae_graph_loss(g))->data[0]; }

static cae_status need_scalar_loss(cae_graph *g, const char *who, cae_error *err)
{
    const cae_tensor *l = cae_node_value(cae_graph_loss(g));
    char sh[64];
    if (l->size != 1)
        return cae_error_set(err, CAE_ERR_MISMATCH, "%s: the loss '%s' is %s, not a scalar", who,
                             cae_node_name(cae_graph_loss(g)), cae_shape_str(l, sh, sizeof sh));
    return CAE_OK;
}

/* A tensor a checker reads the gradient of (and cae_dircheck perturbs):
 * a parameter of the store or an input marked for gradients. */
typedef struct slot {
    cae_tensor *t;    /* the store's tensor, or the input node's value */
    cae_node *in[2];  /* an input: its node in the analytic (or only) and
                         in the reference graph */
    unsigned used;    /* a parameter: bit k when graph k uses it with a gradient */
} slot;

/* Append every parameter g's tape uses with a gradient to s[0..*n), each
 * store tensor once, marking bit `flag`. -1 when more than max. */
static int add_params(cae_graph *g, slot *s, int *n, int max, unsigned flag)
{
    for (int i = 0; i < cae_graph_tape_length(g); i++) {
        cae_node *nd = cae_graph_tape_at(g, i);
        cae_tensor *t = cae_node_param(nd);
        if (!t || !cae_needs_grad(nd)) continue;
        int k = 0;
        while (k < *n && s[k].t != t) k++;
        if (k == *n) {
            if (*n == max) return -1;
            s[(*n)++] = (slot){.t = t};
        }
        s[k].used |= flag;
    }
    return 0;
}

/* ------------------------------------------ element-wise differences */

static double loss_at(cae_graph *g, const cae_rng *frozen)
{
    *cae_graph_rng(g) = *frozen; /* the same noise draw every time */
    cae_graph_forward(g);
    return loss_value(g);
}

cae_status cae_gradcheck(cae_graph *g, cae_node *wrt, double eps, int64_t max_checks,
                         uint64_t seed, double floor, cae_gradcheck_report *rep, cae_error *err)
{
    static const char who[] = "gradcheck";
    if (!rep) return cae_error_set(err, CAE_ERR_ARG, "%s: no report (NULL)", who);
    memset(rep, 0, sizeof *rep);
    rep->worst_index = -1;
    cae_status st;
    if ((st = graph_ready(g, who, err)) || (st = need_scalar_loss(g, who, err))) return st;
    if (!wrt) return cae_error_set(err, CAE_ERR_ARG, "%s: no node to check (wrt is NULL)", who);
    if (!(eps > 0) || !isfinite(eps))
        return cae_error_set(err, CAE_ERR_ARG, "%s: bad step eps %g for '%s' (must be > 0)", who,
                             eps, cae_node_name(wrt));
    if (!on_tape(g, wrt))
        return cae_error_set(err, CAE_ERR_TAPE, "%s: node '%s' is not on the graph's tape", who,
                             cae_node_name(wrt));
    if (!cae_needs_grad(wrt))
        return cae_error_set(err, CAE_ERR_NOGRAD, "%s: node '%s' keeps no gradient (a parameter "
                             "of a no-grad graph, or an input without cae_input_requires_grad)",
                             who, cae_node_name(wrt));
    if (floor <= 0) floor = 1e-7;
    cae_tensor *w = cae_node_value(wrt);
    const int64_t n = w->size;
    int64_t m = (max_checks <= 0 || max_checks > n) ? n : max_checks;
    int64_t *idx = malloc((size_t)(n ? n : 1) * sizeof *idx);
    double *analytic = malloc((size_t)(m ? m : 1) * sizeof *analytic);
    if (!idx || !analytic) {
        free(idx);
        free(analytic);
        return cae_error_set(err, CAE_ERR_NOMEM, "%s: out of memory ('%s' has %lld elements)",
                             who, cae_node_name(wrt), (long long)n);
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
    const cae_rng frozen = *cae_graph_rng(g);
    loss_at(g, &frozen);
    cae_graph_backward(g);
    for (int64_t k = 0; k < m; k++) analytic[k] = (double)w->grad[idx[k]];

    cae_real *x = w->data;
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
    loss_at(g, &frozen); /* leave the graph in the unperturbed state */
    *cae_graph_rng(g) = frozen;
    free(idx);
    free(analytic);
    return CAE_OK;
}

/* ------------------------------------------------ one graph vs another */

/* Fill d from a (analytic) and r (reference), n values each; NULL reads
 * as zeros (a parameter that graph does not use). */
static void diff_fill(cae_gradcompare_diff *d, const cae_real *a, const cae_real *r, int64_t n,
                      double floor)
{
    d->size = n;
    d->worst_index = n ? 0 : -1;
    double scale = 0;
    for (int64_t i = 0; i < n; i++)
        scale = fmax(scale, fmax(a ? fabs((double)a[i]) : 0, r ? fabs((double)r[i]) : 0));
    d->scale = scale;
    for (int64_t i = 0; i < n; i++) {
        const double av = a ? (double)a[i] : 0, rv = r ? (double)r[i] : 0;
        const double ad = fabs(av - rv);
        const double den = fmax(fmax(fabs(av), fabs(rv)), floor * scale);
        const double rel = den > 0 ? ad / den : ad; /* 0/0: equal zeros */
        if (!isnan(d->max_abs_diff) && (isnan(ad) || ad > d->max_abs_diff)) d->max_abs_diff = ad;
        if (i == 0 || (!isnan(d->max_rel_diff) && (isnan(rel) || rel > d->max_rel_diff))) {
            d->max_rel_diff = rel;
            d->worst_index = i;
            d->worst_analytic = av;
            d->worst_reference = rv;
        }
    }
}

static void diff_shape(cae_gradcompare_diff *d, const cae_tensor *t)
{
    d->rank = t->rank;
    memcpy(d->shape, t->shape, sizeof d->shape);
}

/* Every input on g's tape, in tape order, into out (n_out set). */
static void tape_inputs(cae_graph *g, cae_node **out, int *n_out)
{
    *n_out = 0;
    for (int i = 0; i < cae_graph_tape_length(g); i++)
        if (cae_node_is_input(cae_graph_tape_at(g, i))) out[(*n_out)++] = cae_graph_tape_at(g, i);
}

static int same_shape(const cae_tensor *a, const cae_tensor *b)
{
    if (a->rank != b->rank) return 0;
    for (int k = 0; k < a->rank; k++)
        if (a->shape[k] != b->shape[k]) return 0;
    return 1;
}

/* Pair the inputs of the two graphs by name: pair[i] is the reference
 * input named like analytic input i. */
static cae_status match_inputs(cae_node **ia, int na, cae_node **ir, int nr, cae_node **pair,
                               cae_error *err)
{
    static const char who[] = "gradcompare";
    char s1[64], s2[64];
    for (int i = 0; i < na; i++) {
        const char *name = cae_node_name(ia[i]);
        pair[i] = NULL;
        for (int k = 0; k < i; k++)
            if (!strcmp(name, cae_node_name(ia[k])))
                return cae_error_set(err, CAE_ERR_MISMATCH,
                                     "%s: two inputs of the analytic graph are named '%s'", who,
                                     name);
        for (int j = 0; j < nr; j++) {
            if (strcmp(name, cae_node_name(ir[j]))) continue;
            if (pair[i])
                return cae_error_set(err, CAE_ERR_MISMATCH,
                                     "%s: two inputs of the reference graph are named '%s'", who,
                                     name);
            pair[i] = ir[j];
        }
        if (!pair[i])
            return cae_error_set(err, CAE_ERR_MISMATCH,
                                 "%s: input '%s' of the analytic graph has no input of that name "
                                 "in the reference graph", who, name);
        const cae_tensor *a = cae_node_value(ia[i]), *r = cae_node_value(pair[i]);
        if (!same_shape(a, r))
            return cae_error_set(err, CAE_ERR_MISMATCH,
                                 "%s: input '%s' is %s in the analytic graph, %s in the reference "
                                 "graph", who, name, cae_shape_str(a, s1, sizeof s1),
                                 cae_shape_str(r, s2, sizeof s2));
        if (!cae_needs_grad(ia[i]) != !cae_needs_grad(pair[i]))
            return cae_error_set(err, CAE_ERR_MISMATCH,
                                 "%s: input '%s' keeps a gradient in the %s graph only "
                                 "(cae_input_requires_grad)", who, name,
                                 cae_needs_grad(ia[i]) ? "analytic" : "reference");
    }
    for (int j = 0; j < nr; j++) {
        int found = 0;
        for (int i = 0; i < na && !found; i++) found = pair[i] == ir[j];
        if (!found)
            return cae_error_set(err, CAE_ERR_MISMATCH,
                                 "%s: input '%s' of the reference graph has no input of that "
                                 "name in the analytic graph", who, cae_node_name(ir[j]));
    }
    return CAE_OK;
}

/* A stream number for an input's random values: its name, so the draw does
 * not depend on the order in which inputs were created. */
static uint64_t name_stream(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    while (*s) h = (h ^ (unsigned char)*s++) * 0x100000001b3ull;
    return h;
}

/* Run g forward and backward from RNG state rng. */
static void run_pass(cae_graph *g, const cae_rng *rng)
{
    *cae_graph_rng(g) = *rng;
    cae_graph_forward(g);
    cae_graph_backward(g);
}

cae_status cae_gradcompare(cae_graph *ga, cae_graph *gr, const cae_gradcompare_opts *opts,
                           cae_gradcompare_report *rep, cae_error *err)
{
    static const char who[] = "gradcompare";
    if (!rep) return cae_error_set(err, CAE_ERR_ARG, "%s: no report (NULL)", who);
    memset(rep, 0, sizeof *rep);
    cae_gradcompare_opts o = opts ? *opts : (cae_gradcompare_opts){0};
    if (o.floor <= 0) o.floor = 1e-2;
    if (o.lo == o.hi) o.lo = 0, o.hi = 1;
    if ((o.inputs != CAE_INPUTS_RANDOM && o.inputs != CAE_INPUTS_CALLER) || !isfinite(o.lo) ||
        !isfinite(o.hi) || o.lo > o.hi || !isfinite(o.floor))
        return cae_error_set(err, CAE_ERR_ARG,
                             "%s: bad options (inputs %d, range [%g, %g), floor %g)", who,
                             (int)o.inputs, o.lo, o.hi, o.floor);
    cae_status st;
    if ((st = graph_ready(ga, "gradcompare (analytic graph)", err)) ||
        (st = graph_ready(gr, "gradcompare (reference graph)", err)) ||
        (st = need_scalar_loss(ga, "gradcompare (analytic graph)", err)) ||
        (st = need_scalar_loss(gr, "gradcompare (reference graph)", err)))
        return st;
    cae_params *p = cae_graph_params(ga);
    if (p != cae_graph_params(gr))
        return cae_error_set(err, CAE_ERR_MISMATCH,
                             "%s: the two graphs are over different parameter stores (build both "
                             "on one store)", who);

    /* Inputs, matched by name; then the compared tensors. */
    const int la = cae_graph_tape_length(ga), lr = cae_graph_tape_length(gr);
    cae_node **ia = malloc((size_t)(la + 2 * lr + 1) * sizeof *ia);
    if (!ia) return cae_error_set(err, CAE_ERR_NOMEM, "%s: out of memory", who);
    cae_node **ir = ia + la, **pair = ir + lr;
    int na, nr;
    tape_inputs(ga, ia, &na);
    tape_inputs(gr, ir, &nr);
    if ((st = match_inputs(ia, na, ir, nr, pair, err))) {
        free(ia);
        return st;
    }
    slot s[CAE_GRADCOMPARE_MAX];
    int ns = 0, n_params;
    int over = add_params(ga, s, &ns, CAE_GRADCOMPARE_MAX - 1, 1) ||
               add_params(gr, s, &ns, CAE_GRADCOMPARE_MAX - 1, 2);
    n_params = ns;
    for (int i = 0; i < na && !over; i++) {
        if (!cae_needs_grad(ia[i])) continue;
        if (ns == CAE_GRADCOMPARE_MAX - 1) over = 1;
        else s[ns++] = (slot){.t = cae_node_value(ia[i]), .in = {ia[i], pair[i]}};
    }
    if (over) {
        free(ia);
        return cae_error_set(err, CAE_ERR_ARG,
                             "%s: more than %d parameters and inputs with gradients to compare",
                             who, CAE_GRADCOMPARE_MAX - 1);
    }

    /* Buffers: the store's gradients as found, the analytic gradients, the
     * random inputs, the inputs' bindings as found. */
    const size_t total = cae_params_total(p);
    size_t n_grad = 0, n_in = 0;
    for (int k = 0; k < ns; k++) n_grad += (size_t)s[k].t->size;
    for (int i = 0; i < na; i++) n_in += (size_t)cae_node_value(ia[i])->size;
    if (o.inputs == CAE_INPUTS_CALLER) n_in = 0;
    cae_real *saved = malloc((total + n_grad + n_in + 1) * sizeof *saved);
    cae_real **bound = malloc((size_t)(na + nr + 1) * sizeof *bound);
    if (!saved || !bound) {
        free(saved);
        free(bound);
        free(ia);
        return cae_error_set(err, CAE_ERR_NOMEM, "%s: out of memory (%zu values)", who,
                             total + n_grad + n_in);
    }
    cae_real *agrad = saved + total, *inbuf = agrad + n_grad;
    if (total) memcpy(saved, cae_params_grads(p), total * sizeof *saved);
    for (int i = 0; i < na; i++) bound[i] = cae_node_value(ia[i])->data;
    for (int j = 0; j < nr; j++) bound[na + j] = cae_node_value(ir[j])->data;
    const cae_rng rng_a = *cae_graph_rng(ga), rng_r = *cae_graph_rng(gr);

    /* The same inputs for both. */
    for (int i = 0; i < na; i++) {
        const int64_t sz = cae_node_value(ia[i])->size;
        if (o.inputs == CAE_INPUTS_CALLER) {
            cae_input_bind(pair[i], bound[i]);
            continue;
        }
        cae_rng r;
        cae_rng_seed(&r, o.seed, name_stream(cae_node_name(ia[i])));
        for (int64_t e = 0; e < sz; e++)
            inbuf[e] = (cae_real)(o.lo + (o.hi - o.lo) * cae_rng_uniform(&r));
        cae_input_bind(ia[i], inbuf);
        cae_input_bind(pair[i], inbuf);
        inbuf += sz;
    }

    /* The analytic pass: keep its loss and gradients. */
    run_pass(ga, &rng_a);
    const cae_real loss_a = (cae_real)loss_value(ga);
    cae_real *ag = agrad;
    for (int k = 0; k < ns; k++) {
        const cae_tensor *t = s[k].t;
        const int param = k < n_params;
        if (param && !(s[k].used & 1)) memset(ag, 0, (size_t)t->size * sizeof *ag);
        else memcpy(ag, param ? t->grad : cae_node_value(s[k].in[0])->grad,
                    (size_t)t->size * sizeof *ag);
        ag += t->size;
    }

    /* The reference pass, and the differences. */
    run_pass(gr, &rng_r);
    const cae_real loss_r = (cae_real)loss_value(gr);
    cae_gradcompare_diff *d = rep->diff;
    d->name = "loss";
    d->kind = CAE_DIFF_LOSS;
    diff_shape(d, cae_node_value(cae_graph_loss(gr)));
    diff_fill(d, &loss_a, &loss_r, 1, o.floor);
    ag = agrad;
    for (int k = 0; k < ns; k++) {
        const cae_tensor *t = s[k].t;
        const int param = k < n_params;
        d = &rep->diff[k + 1];
        d->name = param ? t->name : cae_node_name(s[k].in[0]);
        d->kind = param ? CAE_DIFF_PARAM : CAE_DIFF_INPUT;
        diff_shape(d, t);
        const cae_real *rg = param ? ((s[k].used & 2) ? t->grad : NULL)
                                   : cae_node_value(s[k].in[1])->grad;
        diff_fill(d, ag, rg, t->size, o.floor);
        ag += t->size;
    }
    rep->n = ns + 1;
    for (int k = 0; k < rep->n; k++) {
        const cae_gradcompare_diff *dk = &rep->diff[k];
        if (k == 0 || (!isnan(rep->max_rel_diff) &&
                       (isnan(dk->max_rel_diff) || dk->max_rel_diff > rep->max_rel_diff))) {
            rep->max_rel_diff = dk->max_rel_diff;
            rep->worst = k;
        }
        if (!isnan(rep->max_abs_diff) &&
            (isnan(dk->max_abs_diff) || dk->max_abs_diff > rep->max_abs_diff))
            rep->max_abs_diff = dk->max_abs_diff;
    }

    /* Put back what was found. */
    if (total) memcpy(cae_params_grads(p), saved, total * sizeof *saved);
    for (int j = 0; j < nr; j++) cae_input_bind(ir[j], bound[na + j]);
    for (int i = 0; i < na; i++) cae_input_bind(ia[i], bound[i]);
    *cae_graph_rng(gr) = rng_r;
    *cae_graph_rng(ga) = rng_a;
    free(saved);
    free(bound);
    free(ia);
    return CAE_OK;
}

/* ------------------------------------------------ random directions */

/* Direction k's signs for checked tensor t come from the stream (seed, k,
 * t), 64 a draw, so θ+ and θ- see the same signs. */
static void signs_start(cae_rng *r, uint64_t seed, int k, int t)
{
    cae_rng_seed(r, seed, 0x646972ull << 32 | (uint64_t)k << 16 | (uint64_t)t);
}

/* The function checked: the loss, or <v, of> when `of` is given. */
typedef struct dir_fn {
    cae_graph *g;
    cae_node *of;     /* NULL: the loss */
    cae_real *v;      /* of's size */
    cae_rng frozen;
} dir_fn;

/* f from the last forward. */
static double dir_read(const dir_fn *f)
{
    if (!f->of) return loss_value(f->g);
    const cae_tensor *t = cae_node_value(f->of);
    double s = 0;
    for (int64_t i = 0; i < t->size; i++) s += (double)f->v[i] * (double)t->data[i];
    return s;
}

static double dir_value(dir_fn *f)
{
    *cae_graph_rng(f->g) = f->frozen;
    cae_graph_forward(f->g);
    return dir_read(f);
}

/* The reverse side: ∇f into every checked tensor's gradient. */
static void dir_gradient(dir_fn *f)
{
    *cae_graph_rng(f->g) = f->frozen;
    cae_graph_forward(f->g);
    if (f->of) cae_graph_backward_from(f->g, f->of, f->v);
    else cae_graph_backward(f->g);
}

/* Write θ + sgn ε u into the checked tensors (from the values x0 as found);
 * with sgn < 0 also return <∇f, θ+ - θ-> (the gradients are the tensors'
 * own: forward passes leave them alone). Blocks of 64 elements, one draw
 * of signs each, eight partial sums: vectorized, in a fixed order. */
static double dir_move(slot *s, int ns, const cae_real *x0, double eps, uint64_t seed, int k,
                       int sgn)
{
    double dot = 0;
    for (int t = 0; t < ns; t++) {
        cae_real *x = s[t].t->data;
        const cae_real *g = s[t].t->grad;
        const int64_t n = s[t].t->size;
        const double step = eps / sqrt((double)ns * (double)n);
        cae_rng r;
        signs_start(&r, seed, k, t);
        for (int64_t i0 = 0; i0 < n; i0 += 64) {
            const uint64_t bits = cae_rng_next(&r);
            const int m = n - i0 < 64 ? (int)(n - i0) : 64;
            double u[64], part[8] = {0};
            for (int j = 0; j < 64; j++) u[j] = (double)(int)((bits >> j & 1) * 2) - 1;
            const cae_real *a = x0 + i0;
            cae_real *b = x + i0;
            if (sgn > 0) {
                for (int j = 0; j < m; j++) b[j] = (cae_real)(a[j] + u[j] * step);
                continue;
            }
            for (int j = 0; j < m; j++) {
                const cae_real xp = (cae_real)(a[j] + u[j] * step), xm = (cae_real)(a[j] - u[j] * step);
                b[j] = xm;
                part[j & 7] += (double)g[i0 + j] * ((double)xp - (double)xm);
            }
            dot += ((part[0] + part[1]) + (part[2] + part[3])) +
                   ((part[4] + part[5]) + (part[6] + part[7]));
        }
        x0 += n;
    }
    return dot;
}

/* Along direction k with step e: forward (f(θ+) - f(θ-)) / 2e and
 * reverse <∇f, θ+ - θ-> / 2e. Leaves θ- in the tensors.
 * (The adjoint mode, adjcheck.c, reads its forward side from a tangent
 * node instead.) */
static void dir_central(dir_fn *f, slot *s, int ns, const cae_real *x0, double e, uint64_t seed,
                        int k, double *fw, double *rv)
{
    dir_move(s, ns, x0, e, seed, k, 1);
    const double fp = dir_value(f);
    const double dot = dir_move(s, ns, x0, e, seed, k, -1);
    const double fm = dir_value(f);
    *fw = (fp - fm) / (2 * e);
    *rv = dot / (2 * e);
}

void dircheck_record(cae_dircheck_report *rep, int k, double fw, double rv, double floor)
{
    rep->forward[k] = fw;
    rep->reverse[k] = rv;
    const double ad = fabs(fw - rv);
    const double den = fmax(fmax(fabs(fw), fabs(rv)), floor);
    const double rel = den > 0 ? ad / den : ad;
    if (!isnan(rep->max_abs_diff) && (isnan(ad) || ad > rep->max_abs_diff)) rep->max_abs_diff = ad;
    if (k == 0 || (!isnan(rep->max_rel_diff) && (isnan(rel) || rel > rep->max_rel_diff))) {
        rep->max_rel_diff = rel;
        rep->worst = k;
    }
}

cae_status cae_dircheck(cae_graph *g, const cae_dircheck_opts *opts, cae_dircheck_report *rep,
                        cae_error *err)
{
    static const char who[] = "dircheck";
    if (!rep) return cae_error_set(err, CAE_ERR_ARG, "%s: no report (NULL)", who);
    memset(rep, 0, sizeof *rep);
    cae_dircheck_opts o = opts ? *opts : (cae_dircheck_opts){0};
    if (!o.directions) o.directions = 4;
    if (o.floor <= 0) o.floor = 0.1;
    if ((o.mode != CAE_DIRCHECK_CENTRAL && o.mode != CAE_DIRCHECK_ADJOINT) || o.directions < 0 ||
        o.directions > CAE_DIRCHECK_MAX || !(o.eps >= 0) || !isfinite(o.eps) ||
        !isfinite(o.floor) || isnan(o.tol))
        return cae_error_set(err, CAE_ERR_ARG,
                             "%s: bad options (mode %d, %d directions (at most %d), eps %g, "
                             "floor %g, tol %g)", who, (int)o.mode, o.directions, CAE_DIRCHECK_MAX,
                             o.eps, o.floor, o.tol);
    cae_status st = graph_ready(g, who, err);
    if (st) return st;
    if (o.mode == CAE_DIRCHECK_ADJOINT) return dircheck_adjoint(g, &o, rep, err);
    if (o.of && !on_tape(g, o.of))
        return cae_error_set(err, CAE_ERR_TAPE, "%s: node '%s' (of) is not on the graph's tape",
                             who, cae_node_name(o.of));
    if (!o.of && (st = need_scalar_loss(g, who, err))) return st;

    /* The checked tensors: params first, then inputs (perturbed in a copy). */
    enum { MAX_TENSORS = 128 };
    slot s[MAX_TENSORS];
    const int max_slots = MAX_TENSORS;
    int ns = 0;
    if (o.wrt) {
        if (!on_tape(g, o.wrt))
            return cae_error_set(err, CAE_ERR_TAPE, "%s: node '%s' (wrt) is not on the graph's "
                                 "tape", who, cae_node_name(o.wrt));
        if (!cae_node_param(o.wrt) && !cae_node_is_input(o.wrt))
            return cae_error_set(err, CAE_ERR_ARG, "%s: node '%s' (wrt) is neither a parameter "
                                 "nor an input", who, cae_node_name(o.wrt));
        if (!cae_needs_grad(o.wrt))
            return cae_error_set(err, CAE_ERR_NOGRAD, "%s: node '%s' (wrt) keeps no gradient",
                                 who, cae_node_name(o.wrt));
        s[ns++] = cae_node_param(o.wrt) ? (slot){.t = cae_node_param(o.wrt)}
                                        : (slot){.t = cae_node_value(o.wrt), .in = {o.wrt}};
    } else {
        int over = add_params(g, s, &ns, max_slots, 1);
        for (int i = 0; i < cae_graph_tape_length(g) && !over; i++) {
            cae_node *n = cae_graph_tape_at(g, i);
            if (!cae_node_is_input(n) || !cae_needs_grad(n)) continue;
            if (ns == max_slots) over = 1;
            else s[ns++] = (slot){.t = cae_node_value(n), .in = {n}};
        }
        if (over)
            return cae_error_set(err, CAE_ERR_ARG, "%s: more than %d tensors to check", who,
                                 max_slots);
    }
    if (!ns)
        return cae_error_set(err, CAE_ERR_ARG, "%s: nothing to check: no parameter or input "
                             "keeps a gradient", who);

    /* Buffers: values as found (inputs then get a private copy to perturb),
     * the gradient at θ, v, the store's gradients as found. */
    cae_params *p = cae_graph_params(g);
    const size_t total = cae_params_total(p);
    size_t n_el = 0, n_in = 0, n_v = o.of ? (size_t)cae_node_value(o.of)->size : 0;
    for (int t = 0; t < ns; t++) {
        n_el += (size_t)s[t].t->size;
        if (s[t].in[0]) n_in += (size_t)s[t].t->size;
    }
    cae_real *buf = malloc((n_el + n_in + n_v + total + 1) * sizeof *buf);
    cae_real **bound = malloc((size_t)(ns + 1) * sizeof *bound);
    if (!buf || !bound) {
        free(buf);
        free(bound);
        return cae_error_set(err, CAE_ERR_NOMEM, "%s: out of memory (%zu values)", who,
                             n_el + n_in + n_v + total);
    }
    cae_real *x0 = buf, *copy = x0 + n_el, *v = copy + n_in, *gsave = v + n_v;
    if (total) memcpy(gsave, cae_params_grads(p), total * sizeof *gsave);
    dir_fn f = {.g = g, .of = o.of, .v = v, .frozen = *cae_graph_rng(g)};
    cae_rng vr;
    signs_start(&vr, o.seed, CAE_DIRCHECK_MAX, 0);
    for (size_t i = 0; i < n_v; i += 64)
        for (uint64_t b = cae_rng_next(&vr), j = 0; j < 64 && i + j < n_v; j++)
            v[i + j] = (b >> j) & 1 ? 1 : -1;
    size_t off = 0;
    for (int t = 0; t < ns; t++) {
        const size_t n = (size_t)s[t].t->size;
        memcpy(x0 + off, s[t].t->data, n * sizeof *x0);
        bound[t] = s[t].t->data;
        if (s[t].in[0]) {
            memcpy(copy, s[t].t->data, n * sizeof *copy);
            cae_input_bind(s[t].in[0], copy);
            copy += n;
        }
        off += n;
    }

    /* ∇f at θ, and the typical size of <∇f, u> over random u. */
    dir_gradient(&f);
    double var = 0;
    for (int t = 0; t < ns; t++) {
        const int64_t n = s[t].t->size;
        double sq = 0;
        for (int64_t i = 0; i < n; i++) sq += (double)s[t].t->grad[i] * (double)s[t].t->grad[i];
        var += sq / ((double)ns * (double)n);
    }
    rep->scale = sqrt(var);
    const double u = sizeof(cae_real) == sizeof(double) ? 0x1p-53 : 0x1p-24;
    double e = o.eps;
    if (e == 0) { /* chosen: a first step from the function's length, then a pilot */
        const cae_tensor *ft = o.of ? cae_node_value(o.of) : cae_node_value(cae_graph_loss(g));
        double mag = 0; /* |f|, or sum |v_i n_i|: what rounding scales with */
        for (int64_t i = 0; i < ft->size; i++) mag += fabs((double)ft->data[i]);
        double len = mag / rep->scale;
        if (!(len > 0) || !isfinite(len)) len = 1;
        e = 0.2 * cbrt(u) * len;
        /* Pilot along direction 0: the central difference at e and e/4
         * differ by ~15/16 of the truncation error at e; when that is over
         * the target, shorten the step to where it would be a quarter of it
         * (truncation ~ e^2), at most 256 times. */
        const double target = u > 1e-10 ? 1e-3 : 1e-7;
        double fa, ra, fb, rb;
        dir_central(&f, s, ns, x0, e, o.seed, 0, &fa, &ra);
        dir_central(&f, s, ns, x0, e / 4, o.seed, 0, &fb, &rb);
        const double den = fmax(fmax(fabs(fa), fabs(fb)), o.floor * rep->scale);
        const double trunc = fabs(fa - fb) * 16 / 15;
        if (trunc > target * den) e *= fmax(0.5 * sqrt(target * den / trunc), 1.0 / 256);
    }

    for (int k = 0; k < o.directions; k++) {
        double fw, rv;
        dir_central(&f, s, ns, x0, e, o.seed, k, &fw, &rv);
        rep->eps[k] = e;
        dircheck_record(rep, k, fw, rv, o.floor * rep->scale);
    }
    rep->n_dirs = o.directions;
    rep->n_tensors = ns;
    rep->n_elements = (int64_t)n_el;

    /* Put back what was found. */
    off = 0;
    for (int t = 0; t < ns; t++) {
        if (s[t].in[0]) cae_input_bind(s[t].in[0], bound[t]);
        else memcpy(s[t].t->data, x0 + off, (size_t)s[t].t->size * sizeof *x0);
        off += (size_t)s[t].t->size;
    }
    if (total) memcpy(cae_params_grads(p), gsave, total * sizeof *gsave);
    *cae_graph_rng(g) = f.frozen;
    free(buf);
    free(bound);
    if (!(o.tol > 0) || rep->max_rel_diff <= o.tol) return CAE_OK;
    const int w = rep->worst;
    return cae_error_set(err, CAE_ERR_MISMATCH,
                         "%s: along direction %d of %d (%d tensors, %lld elements), central "
                         "difference %.9g, backward %.9g (rel diff %.3g > tol %g)", who, w + 1,
                         rep->n_dirs, ns, (long long)n_el, rep->forward[w], rep->reverse[w],
                         rep->max_rel_diff, o.tol);
}
