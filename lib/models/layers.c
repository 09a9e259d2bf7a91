/* Layer parameters and the graphs of every pretraining objective and of
 * the MLP. Everything is built from public ops plus the penalty ops. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cae/model.h"
#include "cae/ops.h"

static const char *const kind_names[CAE_MODEL_COUNT] = {"ae",  "ae-wd", "dae-g", "dae-b",
                                                        "cae", "rbm",   "mlp"};

const char *cae_model_kind_name(cae_model_kind k)
{
    return (k >= 0 && k < CAE_MODEL_COUNT) ? kind_names[k] : "unknown";
}

int cae_model_kind_parse(const char *name)
{
    for (int i = 0; name && i < CAE_MODEL_COUNT; i++)
        if (!strcmp(name, kind_names[i])) return i;
    return -1;
}

void cae_layer_config_default(cae_layer_config *c, cae_model_kind kind, int64_t n_in,
                              int64_t n_hidden)
{
    memset(c, 0, sizeof *c);
    c->kind = kind;
    c->n_in = n_in;
    c->n_hidden = n_hidden;
    c->act = CAE_ACT_SIGMOID;
    c->lambda = kind == CAE_MODEL_CAE ? 0.1 : 0;
    c->noise = kind == CAE_MODEL_DAE_B ? 0.25 : kind == CAE_MODEL_DAE_G ? 0.3 : 0;
    c->wd = kind == CAE_MODEL_AE_WD ? 1e-4 : 0;
    c->cd_k = 1;
}

const char *cae_layer_config_check(const cae_layer_config *c)
{
    if (c->kind < 0 || c->kind >= CAE_MODEL_MLP) return "unknown pretraining model";
    if (c->n_in <= 0 || c->n_hidden <= 0) return "layer sizes must be positive";
    if (c->n_in > (1 << 24) || c->n_hidden > (1 << 24)) return "layer size is absurdly large";
    if (c->act < CAE_ACT_SIGMOID || c->act > CAE_ACT_LINEAR) return "unknown activation";
    if (!(c->lambda >= 0) || !(c->wd >= 0) || !(c->noise >= 0)) return "lambda, wd and noise must be >= 0";
    if (c->kind == CAE_MODEL_DAE_B && !(c->noise < 1)) return "dae-b noise (fraction zeroed) must be < 1";
    if (c->kind == CAE_MODEL_RBM && (c->cd_k < 1 || c->cd_k > 1000)) return "cd-k must be in 1..1000";
    if (c->kind == CAE_MODEL_RBM && c->act != CAE_ACT_SIGMOID) return "an rbm has sigmoid (binary) units";
    if (c->kind == CAE_MODEL_RBM && c->untied) return "an rbm has one weight matrix (no untied decoder)";
    return NULL;
}

cae_tensor *cae_layer_tensor(const cae_params *p, int layer, const char *what)
{
    char name[32];
    snprintf(name, sizeof name, "L%d.%s", layer, what);
    return cae_params_get(p, name);
}

/* Get or create tensor name with the given shape; *created tells which. */
static cae_tensor *get_or_add(cae_params *p, const char *name, int rank, const int64_t *shape,
                              int *created, char *err, size_t errlen)
{
    cae_tensor *t = cae_params_get(p, name);
    *created = 0;
    if (t) {
        int same = t->rank == rank;
        for (int i = 0; same && i < rank; i++) same = t->shape[i] == shape[i];
        if (!same) {
            char have[64];
            snprintf(err, errlen, "parameter '%s' is %s, expected %lld%s%lld", name,
                     cae_shape_str(t, have, sizeof have), (long long)shape[0],
                     rank == 2 ? "x" : "", rank == 2 ? (long long)shape[1] : 0LL);
            return NULL;
        }
        return t;
    }
    t = cae_params_add(p, name, rank, shape);
    if (!t) snprintf(err, errlen, "%s", cae_params_error(p) ? cae_params_error(p) : "out of memory");
    *created = t != NULL;
    return t;
}

static double init_range(cae_act act, int64_t fan_in, int64_t fan_out)
{
    const double r = sqrt(6.0 / (double)(fan_in + fan_out));
    return act == CAE_ACT_SIGMOID ? 4 * r : r;
}

int cae_layer_params(cae_params *p, int layer, const cae_layer_config *c, cae_rng *init,
                     char *err, size_t errlen)
{
    const char *bad = cae_layer_config_check(c);
    if (bad) {
        snprintf(err, errlen, "layer %d: %s", layer, bad);
        return -1;
    }
    char name[32];
    int created;
    snprintf(name, sizeof name, "L%d.W", layer);
    cae_tensor *W = get_or_add(p, name, 2, (int64_t[]){c->n_in, c->n_hidden}, &created, err, errlen);
    if (!W) return -1;
    if (created) {
        if (c->kind == CAE_MODEL_RBM)
            for (int64_t i = 0; i < W->size; i++) W->data[i] = (cae_real)(0.01 * cae_rng_normal(init));
        else
            cae_tensor_uniform(W, (cae_real)init_range(c->act, c->n_in, c->n_hidden), init);
    }
    snprintf(name, sizeof name, "L%d.b", layer);
    if (!get_or_add(p, name, 1, (int64_t[]){c->n_hidden}, &created, err, errlen)) return -1;
    snprintf(name, sizeof name, "L%d.c", layer);
    if (!get_or_add(p, name, 1, (int64_t[]){c->n_in}, &created, err, errlen)) return -1;
    if (c->untied) {
        snprintf(name, sizeof name, "L%d.Wd", layer);
        cae_tensor *Wd = get_or_add(p, name, 2, (int64_t[]){c->n_hidden, c->n_in}, &created, err,
                                    errlen);
        if (!Wd) return -1;
        if (created) cae_tensor_uniform(Wd, (cae_real)init_range(CAE_ACT_SIGMOID, c->n_in, c->n_hidden), init);
    }
    return 0;
}

static cae_node *param_node(cae_graph *g, cae_params *p, int layer, const char *what)
{
    cae_tensor *t = cae_layer_tensor(p, layer, what);
    return t ? cae_param(g, t) : cae_param(g, NULL); /* NULL records the error */
}

cae_node *cae_encoder(cae_graph *g, cae_params *p, int layer, cae_act act, cae_node *x,
                      cae_node **a_out)
{
    cae_node *a = cae_affine(g, x, param_node(g, p, layer, "W"), param_node(g, p, layer, "b"), 0);
    if (a_out) *a_out = a;
    return cae_activation(g, a, act);
}

cae_node *cae_weight_decay(cae_graph *g, cae_node *W, double wd)
{
    return cae_scale(g, cae_sum(g, cae_square(g, W)), (cae_real)wd);
}

/* The RBM's free energy summed over the batch, from v and its hidden
 * pre-activation a = v W + b:
 * sum_b F(v_b) = -sum_b v_b . c - sum_{b,j} softplus(a_bj). */
static cae_node *free_energy_sum(cae_graph *g, cae_node *v, cae_node *a, cae_node *c)
{
    cae_node *visible = cae_sum(g, cae_mul_row(g, v, c));
    cae_node *hidden = cae_sum(g, cae_softplus(g, a));
    return cae_scale(g, cae_add(g, visible, hidden), -1);
}

int cae_layer_build(cae_graph *g, cae_params *p, int layer, const cae_layer_config *c,
                    cae_node *x, int noise_off, cae_layer_nodes *out)
{
    memset(out, 0, sizeof *out);
    out->x = x;
    if (!x) return -1;
    const int64_t B = cae_node_value(x)->shape[0];
    cae_node *W = param_node(g, p, layer, "W");
    cae_node *b = param_node(g, p, layer, "b");
    cae_node *cb = param_node(g, p, layer, "c");
    if (c->kind == CAE_MODEL_RBM) {
        /* F(v0) - F(vk) averaged over the batch, vk a constant input. */
        out->vk = cae_input(g, "vk", 2, (int64_t[]){B, c->n_in});
        out->a = cae_affine(g, x, W, b, 0);
        out->h = cae_sigmoid(g, out->a); /* on the tape only if used */
        cae_node *ak = cae_affine(g, out->vk, W, b, 0);
        cae_node *gap = cae_sub(g, free_energy_sum(g, x, out->a, cb),
                                free_energy_sum(g, out->vk, ak, cb));
        out->recon = cae_scale(g, gap, (cae_real)(1.0 / (double)B));
        out->loss = out->recon;
        if (c->wd > 0) out->loss = cae_add(g, out->loss, cae_weight_decay(g, W, c->wd));
        return out->loss ? 0 : -1;
    }
    cae_node *in = x;
    if (!noise_off && c->kind == CAE_MODEL_DAE_G && c->noise > 0)
        in = cae_gaussian_noise(g, x, (cae_real)c->noise);
    if (!noise_off && c->kind == CAE_MODEL_DAE_B && c->noise > 0)
        in = cae_mask_noise(g, x, (cae_real)c->noise);
    out->a = cae_affine(g, in, W, b, 0);
    out->h = cae_activation(g, out->a, c->act);
    out->logits = c->untied ? cae_affine(g, out->h, param_node(g, p, layer, "Wd"), cb, 0)
                            : cae_affine(g, out->h, W, cb, 1);
    out->recon = cae_bce_logits(g, out->logits, x); /* reconstruct the clean x */
    out->loss = out->recon;
    if (c->kind == CAE_MODEL_CAE) {
        out->penalty = c->composed
                           ? cae_contractive_penalty_composed(g, out->a, out->h, W, c->act, CAE_W_IN_UNITS)
                           : cae_contractive_penalty(g, out->a, out->h, W, c->act, CAE_W_IN_UNITS);
        if (c->lambda > 0)
            out->loss = cae_add(g, out->loss, cae_scale(g, out->penalty, (cae_real)c->lambda));
        else
            cae_graph_output(g, out->penalty);
    }
    if (c->wd > 0) out->loss = cae_add(g, out->loss, cae_weight_decay(g, W, c->wd));
    cae_graph_output(g, out->h);
    return out->loss ? 0 : -1;
}

/* ------------------------------------------------------------------ MLP */

int cae_mlp_params(cae_params *p, const cae_mlp_config *m, cae_rng *init, char *err,
                   size_t errlen)
{
    if (m->n_layers < 1 || m->n_layers > CAE_MAX_LAYERS || m->n_classes < 2) {
        snprintf(err, errlen, "mlp: needs 1..%d hidden layers and >= 2 classes", CAE_MAX_LAYERS);
        return -1;
    }
    for (int k = 1; k <= m->n_layers; k++) {
        cae_layer_config c;
        cae_layer_config_default(&c, CAE_MODEL_AE, m->sizes[k - 1], m->sizes[k]);
        c.act = m->act[k - 1];
        if (cae_layer_params(p, k, &c, init, err, errlen)) return -1;
    }
    const int64_t top = m->sizes[m->n_layers];
    int created;
    cae_tensor *V = get_or_add(p, "out.V", 2, (int64_t[]){top, m->n_classes}, &created, err, errlen);
    if (!V) return -1;
    if (created) cae_tensor_uniform(V, (cae_real)sqrt(6.0 / (double)(top + m->n_classes)), init);
    if (!get_or_add(p, "out.c", 1, (int64_t[]){m->n_classes}, &created, err, errlen)) return -1;
    return 0;
}

cae_node *cae_mlp_logits(cae_graph *g, cae_params *p, const cae_mlp_config *m, cae_node *x,
                         cae_node **h_top)
{
    cae_node *h = x;
    for (int k = 1; k <= m->n_layers; k++) h = cae_encoder(g, p, k, m->act[k - 1], h, NULL);
    if (h_top) *h_top = h;
    cae_tensor *V = cae_params_get(p, "out.V"), *c = cae_params_get(p, "out.c");
    return cae_affine(g, h, cae_param(g, V), cae_param(g, c), 0);
}
