/* The parameter store: one flat block of values and one of gradients, with
 * named tensors as views into them. Each tensor starts on a CAE_ALIGN
 * boundary. Adding a tensor grows both blocks (values and gradients are
 * copied) and bumps the generation, so graphs compiled earlier refuse to
 * run until recompiled. */
#include <stdarg.h>
#include <string.h>

#include "graph/internal.h"

static void params_fail(cae_params *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void params_fail(cae_params *p, const char *fmt, ...)
{
    if (p->err[0]) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->err, sizeof p->err, fmt, ap);
    va_end(ap);
}

cae_params *cae_params_new(void) { return calloc(1, sizeof(cae_params)); }

void cae_params_free(cae_params *p)
{
    if (!p) return;
    for (int i = 0; i < p->n; i++) {
        free(p->t[i]);
        free(p->names[i]);
    }
    free(p->t);
    free(p->names);
    free(p->offset);
    cae_free(p->values);
    cae_free(p->grads);
    free(p);
}

cae_tensor *cae_params_get(const cae_params *p, const char *name)
{
    if (!p || !name) return NULL;
    for (int i = 0; i < p->n; i++)
        if (!strcmp(p->names[i], name)) return p->t[i];
    return NULL;
}

cae_tensor *cae_params_add(cae_params *p, const char *name, int rank,
                           const int64_t *shape)
{
    if (!p) return NULL;
    if (!name || !*name) {
        params_fail(p, "params: a parameter needs a name");
        return NULL;
    }
    if (cae_params_get(p, name)) {
        params_fail(p, "params: '%s' already exists", name);
        return NULL;
    }
    int64_t size = cae_shape_size(rank, shape);
    if (size < 0 || (rank > 0 && !shape)) {
        params_fail(p, "params: '%s' has a bad shape (rank %d)", name, rank);
        return NULL;
    }
    const size_t per_line = CAE_ALIGN / sizeof(cae_real);
    size_t padded = cae_round_up((size_t)size, per_line);
    if (padded > (SIZE_MAX / sizeof(cae_real)) / 4 - p->total) {
        params_fail(p, "params: '%s' is too large", name);
        return NULL;
    }
    size_t total = p->total + padded;
    if (p->n == p->cap) {
        int cap = p->cap ? 2 * p->cap : 8;
        cae_tensor **t = realloc(p->t, (size_t)cap * sizeof *t);
        if (t) p->t = t;
        char **nm = realloc(p->names, (size_t)cap * sizeof *nm);
        if (nm) p->names = nm;
        size_t *off = realloc(p->offset, (size_t)cap * sizeof *off);
        if (off) p->offset = off;
        if (!t || !nm || !off) {
            params_fail(p, "params: out of memory adding '%s'", name);
            return NULL;
        }
        p->cap = cap;
    }
    cae_real *v = cae_alloc_reals(total), *gr = cae_alloc_reals(total);
    cae_tensor *t = calloc(1, sizeof *t);
    char *nm = strdup(name);
    if (!v || !gr || !t || !nm) {
        cae_free(v);
        cae_free(gr);
        free(t);
        free(nm);
        params_fail(p, "params: out of memory adding '%s' (%lld values)", name,
                    (long long)size);
        return NULL;
    }
    if (p->total) {
        memcpy(v, p->values, p->total * sizeof(cae_real));
        memcpy(gr, p->grads, p->total * sizeof(cae_real));
    }
    cae_free(p->values);
    cae_free(p->grads);
    p->values = v;
    p->grads = gr;
    t->rank = rank;
    for (int i = 0; i < rank; i++) t->shape[i] = shape[i];
    t->size = size;
    t->name = nm;
    p->t[p->n] = t;
    p->names[p->n] = nm;
    p->offset[p->n] = p->total;
    p->n++;
    p->total = total;
    for (int i = 0; i < p->n; i++) {
        p->t[i]->data = p->values + p->offset[i];
        p->t[i]->grad = p->grads + p->offset[i];
    }
    p->generation++;
    return t;
}

int cae_params_count(const cae_params *p) { return p ? p->n : 0; }
cae_tensor *cae_params_at(const cae_params *p, int i)
{
    return (p && i >= 0 && i < p->n) ? p->t[i] : NULL;
}
cae_real *cae_params_values(const cae_params *p) { return p ? p->values : NULL; }
cae_real *cae_params_grads(const cae_params *p) { return p ? p->grads : NULL; }
size_t cae_params_total(const cae_params *p) { return p ? p->total : 0; }
uint64_t cae_params_generation(const cae_params *p) { return p ? p->generation : 0; }
const char *cae_params_error(const cae_params *p)
{
    return (p && p->err[0]) ? p->err : NULL;
}

void cae_params_zero_grad(cae_params *p)
{
    if (p && p->total) memset(p->grads, 0, p->total * sizeof(cae_real));
}

void cae_tensor_uniform(cae_tensor *t, cae_real a, cae_rng *rng)
{
    for (int64_t i = 0; i < t->size; i++)
        t->data[i] = (cae_real)((2.0 * cae_rng_uniform(rng) - 1.0) * a);
}
