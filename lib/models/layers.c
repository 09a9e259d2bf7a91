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

static const char *config_problem(const cae_layer_config *c)
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
    if (c->probes < 0 || c->probes > 4096) return "probes must be in 0..4096";
    if (c->probe_kind != CAE_PROBE_GAUSSIAN && c->probe_kind != CAE_PROBE_RADEMACHER)
        return "unknown probe kind (gaussian or rademacher)";
    if (!(c->gamma >= 0) || !(c->sigma >= 0)) return "gamma and sigma must be >= 0";
    if (c->corruptions < 0 || c->corruptions > 1024) return "corruptions must be in 0..1024";
    const int extended = c->probes || c->end_to_end || c->gamma > 0;
    if (extended && c->kind != CAE_MODEL_CAE)
        return "probes, end-to-end and gamma are options of a cae";
    if (c->end_to_end && !c->probes) return "the end-to-end penalty is estimated with probes: set probes > 0";
    if (c->gamma > 0 && (!c->probes || c->corruptions < 1))
        return "cae+h (gamma > 0) needs probes > 0 and corruptions >= 1";
    if (c->composed && c->probes) return "composed and probes are two ways of the penalty: choose one";
    return NULL;
}

cae_status cae_layer_config_check(const cae_layer_config *c, cae_error *err)
{
    const char *bad = config_problem(c);
    return bad ? cae_error_set(err, CAE_ERR_ARG, "%s", bad) : CAE_OK;
}

cae_tensor *cae_layer_tensor(const cae_params *p, int layer, const char *what)
{
    char name[32];
    snprintf(name, sizeof name, "L%d.%s", layer, what);
    return cae_params_get(p, name);
}

/* Get or create tensor name with the given shape into *out; *created
 * tells which. */
static cae_status get_or_add(cae_params *p, const char *name, int rank, const int64_t *shape,
                             cae_tensor **out, int *created, cae_error *err)
{
    cae_tensor *t = cae_params_get(p, name);
    *created = 0;
    *out = NULL;
    if (t) {
        int same = t->rank == rank;
        for (int i = 0; same && i < rank; i++) same = t->shape[i] == shape[i];
        if (!same) {
            char have[64];
            return cae_error_set(err, CAE_ERR_SHAPE, "parameter '%s' is %s, expected %lld%s%lld",
                                 name, cae_shape_str(t, have, sizeof have), (long long)shape[0],
                                 rank == 2 ? "x" : "", rank == 2 ? (long long)shape[1] : 0LL);
        }
        *out = t;
        return CAE_OK;
    }
    t = cae_params_add(p, name, rank, shape);
    if (!t)
        return cae_error_set(err, CAE_ERR_NOMEM, "%s",
                             cae_params_error(p) ? cae_params_error(p) : "out of memory");
    *created = 1;
    *out = t;
    return CAE_OK;
}

static double init_range(cae_act act, int64_t fan_in, int64_t fan_out)
{
    const double r = sqrt(6.0 / (double)(fan_in + fan_out));
    return act == CAE_ACT_SIGMOID ? 4 * r : r;
}

/* The RNG streams of initialisation: every program that creates a layer or
 * a classifier's output layer from a seed draws the same numbers. */
enum { STREAM_LAYER_INIT = 0x696e6974 /* "init" + the layer's number */,
       STREAM_OUTPUT_INIT = 0x6f7574 /* "out" */ };

cae_status cae_layer_params(cae_params *p, int layer, const cae_layer_config *c, uint64_t seed,
                            cae_error *err)
{
    const char *bad = config_problem(c);
    if (bad) return cae_error_set(err, CAE_ERR_ARG, "layer %d: %s", layer, bad);
    if (layer < 1 || layer > CAE_MAX_LAYERS)
        return cae_error_set(err, CAE_ERR_ARG, "layer %d: layers are numbered 1..%d", layer,
                             CAE_MAX_LAYERS);
    cae_rng init;
    cae_rng_seed(&init, seed, STREAM_LAYER_INIT + (uint64_t)layer);
    char name[32];
    int created;
    cae_tensor *t;
    cae_status st;
    snprintf(name, sizeof name, "L%d.W", layer);
    if ((st = get_or_add(p, name, 2, (int64_t[]){c->n_in, c->n_hidden}, &t, &created, err)))
        return st;
    if (created) {
        if (c->kind == CAE_MODEL_RBM)
            for (int64_t i = 0; i < t->size; i++) t->data[i] = (cae_real)(0.01 * cae_rng_normal(&init));
        else
            cae_tensor_uniform(t, (cae_real)init_range(c->act, c->n_in, c->n_hidden), &init);
    }
    snprintf(name, sizeof name, "L%d.b", layer);
    if ((st = get_or_add(p, name, 1, (int64_t[]){c->n_hidden}, &t, &created, err))) return st;
    snprintf(name, sizeof name, "L%d.c", layer);
    if ((st = get_or_add(p, name, 1, (int64_t[]){c->n_in}, &t, &created, err))) return st;
    if (c->untied) {
        snprintf(name, sizeof name, "L%d.Wd", layer);
        if ((st = get_or_add(p, name, 2, (int64_t[]){c->n_hidden, c->n_in}, &t, &created, err)))
            return st;
        if (created)
            cae_tensor_uniform(t, (cae_real)init_range(CAE_ACT_SIGMOID, c->n_in, c->n_hidden), &init);
    }
    return CAE_OK;
}

static cae_node *param_node(cae_graph *g, cae_params *p, int layer, const char *what)
{
    cae_tensor *t = cae_layer_tensor(p, layer, what);
    if (!t && g) cae_graph_fail(g, "layer %d: the parameter store has no 'L%d.%s'", layer, layer, what);
    return t ? cae_param(g, t) : NULL;
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
    return cae_scale(g, cae_sum_squares(g, W), (cae_real)wd);
}

int cae_layer_build(cae_graph *g, cae_params *p, int layer, const cae_layer_config *c,
                    cae_node *x, int eval, cae_tensor *chain, cae_tensor *steps,
                    cae_layer_nodes *out)
{
    memset(out, 0, sizeof *out);
    out->x = x;
    if (!x) return -1;
    cae_node *W = param_node(g, p, layer, "W");
    cae_node *b = param_node(g, p, layer, "b");
    cae_node *cb = param_node(g, p, layer, "c");
    if (c->kind == CAE_MODEL_RBM) {
        /* F(v0) - F(vk) averaged over the batch, vk a sample (no gradient):
         * k steps from the data (CD-k), from the chain (PCD), or one step
         * from the data for evaluation. */
        const int64_t B = cae_node_value(x)->shape[0];
        out->a = cae_affine(g, x, W, b, 0); /* the sampler starts from it too */
        out->vk = eval ? cae_gibbs_pre(g, out->a, W, b, cb, 1, NULL, NULL)
                       : cae_gibbs_pre(g, out->a, W, b, cb, c->cd_k, chain, steps);
        out->h = cae_sigmoid(g, out->a); /* on the tape only if used */
        cae_node *ak = cae_affine(g, out->vk, W, b, 0);
        cae_node *gap = cae_sub(g, cae_free_energy(g, x, out->a, cb),
                                cae_free_energy(g, out->vk, ak, cb));
        out->recon = cae_scale(g, gap, (cae_real)(1.0 / (double)B));
        out->loss = out->recon;
        if (c->wd > 0) out->loss = cae_add(g, out->loss, cae_weight_decay(g, W, c->wd));
        return out->loss ? 0 : -1;
    }
    cae_node *in = x;
    if (!eval && c->kind == CAE_MODEL_DAE_G && c->noise > 0)
        in = cae_gaussian_noise(g, x, (cae_real)c->noise);
    if (!eval && c->kind == CAE_MODEL_DAE_B && c->noise > 0)
        in = cae_mask_noise(g, x, (cae_real)c->noise);
    out->a = cae_affine(g, in, W, b, 0);
    out->h = cae_activation(g, out->a, c->act);
    out->logits = c->untied ? cae_affine(g, out->h, param_node(g, p, layer, "Wd"), cb, 0)
                            : cae_affine(g, out->h, W, cb, 1);
    out->recon = cae_bce_logits(g, out->logits, x); /* reconstruct the clean x */
    out->loss = out->recon;
    if (c->kind == CAE_MODEL_CAE && !c->end_to_end) {
        const cae_probe_kind pk = (cae_probe_kind)c->probe_kind;
        out->penalty =
            c->probes ? cae_jacobian_penalty_probes(g, in, out->h, c->probes, pk)
            : c->composed ? cae_contractive_penalty_composed(g, out->a, out->h, W, c->act, CAE_W_IN_UNITS)
                          : cae_contractive_penalty(g, out->a, out->h, W, c->act, CAE_W_IN_UNITS);
        if (c->lambda > 0)
            out->loss = cae_add(g, out->loss, cae_scale(g, out->penalty, (cae_real)c->lambda));
        else
            cae_graph_output(g, out->penalty);
    }
    if (c->kind == CAE_MODEL_CAE && c->gamma > 0) { /* CAE+H */
        cae_node *xt = cae_gaussian_noise(g, cae_tile(g, in, c->corruptions), (cae_real)c->sigma);
        cae_node *ht = cae_activation(g, cae_affine(g, xt, W, b, 0), c->act);
        out->higher = cae_jacobian_difference_probes(g, in, out->h, xt, ht, c->probes,
                                                     (cae_probe_kind)c->probe_kind);
        out->loss = cae_add(g, out->loss, cae_scale(g, out->higher, (cae_real)c->gamma));
    }
    if (c->wd > 0) out->loss = cae_add(g, out->loss, cae_weight_decay(g, W, c->wd));
    cae_graph_output(g, out->h);
    return out->loss ? 0 : -1;
}

/* ------------------------------------------------------------------ MLP */

cae_status cae_mlp_params(cae_params *p, const cae_mlp_config *m, uint64_t seed, cae_error *err)
{
    if (m->n_layers < 1 || m->n_layers > CAE_MAX_LAYERS || m->n_classes < 2)
        return cae_error_set(err, CAE_ERR_ARG, "mlp: needs 1..%d hidden layers and >= 2 classes",
                             CAE_MAX_LAYERS);
    cae_status st;
    for (int k = 1; k <= m->n_layers; k++) {
        cae_layer_config c;
        cae_layer_config_default(&c, CAE_MODEL_AE, m->sizes[k - 1], m->sizes[k]);
        c.act = m->act[k - 1];
        if ((st = cae_layer_params(p, k, &c, seed, err))) return st;
    }
    cae_rng init;
    cae_rng_seed(&init, seed, STREAM_OUTPUT_INIT);
    const int64_t top = m->sizes[m->n_layers];
    int created;
    cae_tensor *t;
    if ((st = get_or_add(p, "out.V", 2, (int64_t[]){top, m->n_classes}, &t, &created, err)))
        return st;
    if (created) cae_tensor_uniform(t, (cae_real)sqrt(6.0 / (double)(top + m->n_classes)), &init);
    return get_or_add(p, "out.c", 1, (int64_t[]){m->n_classes}, &t, &created, err);
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

/* ------------------------------------------------------------ the stack */

cae_status cae_stack_push(cae_params *p, cae_model_info *info, const cae_layer_config *c,
                          uint64_t seed, cae_error *err)
{
    const int k = info->n_layers + 1;
    if (k > CAE_MAX_LAYERS)
        return cae_error_set(err, CAE_ERR_ARG, "a stack holds at most %d layers", CAE_MAX_LAYERS);
    if (info->n_layers > 0 && c->n_in != info->layer[info->n_layers - 1].n_hidden)
        return cae_error_set(err, CAE_ERR_SHAPE, "layer %d has %lld inputs, the stack's top code "
                             "has %lld units", k, (long long)c->n_in,
                             (long long)info->layer[info->n_layers - 1].n_hidden);
    cae_status st = cae_layer_params(p, k, c, seed, err);
    if (st) return st;
    info->layer[k - 1] = *c;
    info->n_layers = k;
    info->kind = c->kind;
    return CAE_OK;
}

void cae_model_info_mlp(const cae_model_info *info, cae_mlp_config *m)
{
    memset(m, 0, sizeof *m);
    const int n = info->n_layers < 0                ? 0
                  : info->n_layers > CAE_MAX_LAYERS ? CAE_MAX_LAYERS
                                                    : info->n_layers;
    m->n_layers = n;
    if (n > 0) m->sizes[0] = info->layer[0].n_in;
    for (int k = 0; k < n; k++) {
        m->sizes[k + 1] = info->layer[k].n_hidden;
        m->act[k] = info->layer[k].act;
    }
    m->n_classes = info->n_classes;
    m->wd = info->mlp_wd;
}

/* ------------------------------------------------- comparing two runs */

static int differ_str(cae_mismatch *m, const char *field, const char *want, const char *saved)
{
    if (!strcmp(want, saved)) return 0;
    snprintf(m->field, sizeof m->field, "%s", field);
    snprintf(m->want, sizeof m->want, "%s", want);
    snprintf(m->saved, sizeof m->saved, "%s", saved);
    return 1;
}

static int differ_int(cae_mismatch *m, const char *field, long long want, long long saved)
{
    char a[32], b[32];
    snprintf(a, sizeof a, "%lld", want);
    snprintf(b, sizeof b, "%lld", saved);
    return differ_str(m, field, a, b);
}

static int differ_u64(cae_mismatch *m, const char *field, uint64_t want, uint64_t saved)
{
    char a[32], b[32];
    snprintf(a, sizeof a, "%llu", (unsigned long long)want);
    snprintf(b, sizeof b, "%llu", (unsigned long long)saved);
    return differ_str(m, field, a, b);
}

static int differ_real(cae_mismatch *m, const char *field, double want, double saved)
{
    if (want == saved) return 0;
    char a[40], b[40];
    snprintf(a, sizeof a, "%.17g", want);
    snprintf(b, sizeof b, "%.17g", saved);
    return differ_str(m, field, a, b);
}

int cae_model_info_diff(const cae_model_info *want, const cae_model_info *saved,
                        cae_mismatch *m)
{
    memset(m, 0, sizeof *m);
    if (differ_int(m, "layers", want->n_layers, saved->n_layers)) return 1;
    for (int k = 0; k < want->n_layers && k < CAE_MAX_LAYERS; k++) {
        const cae_layer_config *a = &want->layer[k], *b = &saved->layer[k];
        static const char *const f[17] = {"model",  "inputs", "hidden", "act",   "untied",
                                          "composed", "lambda", "noise", "wd",   "cd-k",
                                          "pcd", "probes", "probe-kind", "end-to-end", "gamma",
                                          "sigma", "corruptions"};
        m->layer = k + 1;
        if (differ_str(m, f[0], cae_model_kind_name(a->kind), cae_model_kind_name(b->kind)) ||
            differ_int(m, f[1], a->n_in, b->n_in) || differ_int(m, f[2], a->n_hidden, b->n_hidden) ||
            differ_str(m, f[3], cae_act_name(a->act), cae_act_name(b->act)) ||
            differ_int(m, f[4], a->untied, b->untied) ||
            differ_int(m, f[5], a->composed, b->composed) ||
            differ_real(m, f[6], a->lambda, b->lambda) || differ_real(m, f[7], a->noise, b->noise) ||
            differ_real(m, f[8], a->wd, b->wd) || differ_int(m, f[9], a->cd_k, b->cd_k) ||
            differ_int(m, f[10], a->persistent, b->persistent) ||
            differ_int(m, f[11], a->probes, b->probes) ||
            differ_int(m, f[12], a->probe_kind, b->probe_kind) ||
            differ_int(m, f[13], a->end_to_end, b->end_to_end) ||
            differ_real(m, f[14], a->gamma, b->gamma) || differ_real(m, f[15], a->sigma, b->sigma) ||
            differ_int(m, f[16], a->corruptions, b->corruptions))
            return 1;
        m->layer = 0;
    }
    return differ_int(m, "classes", want->n_classes, saved->n_classes) ||
           differ_real(m, "wd", want->mlp_wd, saved->mlp_wd) ||
           differ_str(m, "data", want->data, saved->data) ||
           differ_u64(m, "seed", want->seed, saved->seed) ||
           differ_int(m, "batch", want->batch, saved->batch) ||
           differ_real(m, "lr", want->lr, saved->lr) ||
           differ_real(m, "momentum", want->momentum, saved->momentum);
}
