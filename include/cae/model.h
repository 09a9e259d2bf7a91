/*
 * cae/model.h — the models of the paper as graphs over a shared parameter
 * store, how they stack, and the tasks that train them.
 *
 * A network is a stack of layers numbered from 1. Layer k owns, in the
 * store, "Lk.W" (n_in x n_hidden: a = x W + b, column j = unit j), "Lk.b"
 * (n_hidden), the decoder bias "Lk.c" (n_in) and, untied only, "Lk.Wd"
 * (n_hidden x n_in; tied decoders use W^T as in the paper). A classifier
 * adds "out.V" (n_hidden_top x classes) and "out.c" (classes). Because the
 * names are shared, the MLP built over a store in which layers were
 * pretrained starts from exactly those weights: same memory, no copy.
 *
 * Pretraining objectives (per layer, on that layer's own input x in [0,1]),
 * all averaged over the batch; L = cross-entropy summed over the inputs:
 *   ae      L(x, g(f(x)))
 *   ae-wd   L + wd * sum W^2
 *   dae-g   L(x, g(f(x + N(0, noise^2))))
 *   dae-b   L(x, g(f(x * mask))), each input zeroed with probability noise
 *   cae     L + lambda * ||J_f(x)||_F^2  (fused op, or composed from ops)
 *   rbm     F(v0) - F(vk), vk from k Gibbs steps (CD-k) or a persistent chain
 *           (PCD), held constant: the gradient is the CD gradient.
 * Any layer may also carry weight decay (wd > 0).
 *
 * What trains them is a task (cae/task.h): the store plus a builder of
 * these graphs.
 */
#ifndef CAE_MODEL_H
#define CAE_MODEL_H

#include "cae/data.h"
#include "cae/graph.h"
#include "cae/penalty.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum cae_model_kind {
    CAE_MODEL_AE = 0,
    CAE_MODEL_AE_WD,
    CAE_MODEL_DAE_G,
    CAE_MODEL_DAE_B,
    CAE_MODEL_CAE,
    CAE_MODEL_RBM,
    CAE_MODEL_MLP, /* a classifier (fine-tuning) */
    CAE_MODEL_COUNT
} cae_model_kind;

/* "ae", "ae-wd", "dae-g", "dae-b", "cae", "rbm", "mlp"; parse: -1 if unknown. */
const char *cae_model_kind_name(cae_model_kind k);
int cae_model_kind_parse(const char *name);

typedef struct cae_layer_config {
    cae_model_kind kind; /* pretraining objective (not CAE_MODEL_MLP) */
    int64_t n_in, n_hidden;
    cae_act act;         /* encoder activation; decoder is always sigmoid */
    int untied;          /* 0: decoder weights W^T (the paper) */
    int composed;        /* cae: 1 = penalty composed from ops, 0 = fused op */
    double lambda;       /* cae: penalty weight */
    double noise;        /* dae-g: sigma; dae-b: fraction zeroed */
    double wd;           /* weight decay on W (ae-wd; optional on others) */
    int cd_k;            /* rbm: Gibbs steps per update */
    int persistent;      /* rbm: 1 = persistent chain (PCD) */
} cae_layer_config;

/* The defaults of the paper's setting for a kind: sigmoid, tied, fused,
 * lambda 0.1, noise 0.25 (dae-b) or 0.3 (dae-g), wd 1e-4 (ae-wd), CD-1. */
void cae_layer_config_default(cae_layer_config *c, cae_model_kind kind, int64_t n_in,
                              int64_t n_hidden);
/* CAE_OK if c is usable, else CAE_ERR_ARG with err saying what is wrong. */
cae_status cae_layer_config_check(const cae_layer_config *c, cae_error *err);

/* Create layer k's tensors in p where missing and initialise the new ones
 * from (seed, k) — the same stream whoever calls: W ~ U(+-4 sqrt(6 /
 * (n_in + n_hidden))) for sigmoid (+-sqrt(6/..) for the others; 0.01 N(0,1)
 * for rbm), biases 0. Existing tensors must have the right shapes. */
cae_status cae_layer_params(cae_params *p, int layer, const cae_layer_config *c, uint64_t seed,
                            cae_error *err);
/* The tensor "L<layer>.<what>" (what: "W", "b", "c", "Wd"), or NULL. */
cae_tensor *cae_layer_tensor(const cae_params *p, int layer, const char *what);

/* ------------------------------------------------------------------ MLP */

#define CAE_MAX_LAYERS 8

typedef struct cae_mlp_config {
    int n_layers;                  /* hidden layers, 1..CAE_MAX_LAYERS */
    int64_t sizes[CAE_MAX_LAYERS + 1]; /* sizes[0] = inputs, sizes[k] = layer k */
    cae_act act[CAE_MAX_LAYERS];   /* activation of layer k+1 */
    int n_classes;
    double wd;                     /* weight decay on every W and V */
} cae_mlp_config;

/* Create the output layer's tensors (out.V ~ U(+-sqrt(6/(h+C))), out.c = 0,
 * from (seed, its own stream)) and any missing hidden layer (initialised as
 * for an AE). */
cae_status cae_mlp_params(cae_params *p, const cae_mlp_config *m, uint64_t seed, cae_error *err);

/* ----------------------------------------------------- model description */

/* What a model is: the stack of pretrained layers, the classifier if any,
 * and where its training stands. A checkpoint (cae/checkpoint.h) stores one
 * beside the tensors. */
typedef struct cae_model_info {
    cae_model_kind kind;     /* kind of the top: a pretraining kind, or mlp */
    int n_layers;            /* pretrained / hidden layers, 0..CAE_MAX_LAYERS */
    cae_layer_config layer[CAE_MAX_LAYERS];
    int n_classes;           /* > 0 when the model is a classifier */
    double mlp_wd;
    char data[32];           /* data set it was trained on ("mnist", ...) */
    /* Training progress (for resuming and for reports). */
    int epochs_done;
    uint64_t seed;
    int64_t batch;
    double lr, momentum;
    cae_rng rng;             /* the task RNG after epochs_done epochs */
    int has_rng;
} cae_model_info;

/* Put layer info->n_layers + 1, configured as c (c->n_in must be the top
 * code's width), on the stack: its tensors created in p and initialised from
 * (seed, the layer's number) as cae_layer_params does, info->layer and
 * n_layers updated, info->kind = c->kind. */
cae_status cae_stack_push(cae_params *p, cae_model_info *info, const cae_layer_config *c,
                          uint64_t seed, cae_error *err);
/* The classifier over the stack of info: its hidden layers (sizes and
 * activations), info->n_classes classes, weight decay info->mlp_wd. */
void cae_model_info_mlp(const cae_model_info *info, cae_mlp_config *m);

/* The first field in which two descriptions of a run differ, named as the
 * command line spells it ("lambda", "hidden", "cd-k", "seed", "lr", ...),
 * with both values as text; layer: the layer (1..) whose configuration the
 * field is, or 0. */
typedef struct cae_mismatch {
    int layer;
    char field[40];
    char want[72];
    char saved[72];
} cae_mismatch;

/* 0 when a run described by `want` continues the one saved in `saved`: the
 * same stack of layers (every configuration field), classifier, data set,
 * seed, batch, learning rate and momentum; else 1 with *m filled. */
int cae_model_info_diff(const cae_model_info *want, const cae_model_info *saved,
                        cae_mismatch *m);

/* ---------------------------------------------------------------- graphs */

/* wd * sum W^2 (a scalar node): the weight-decay term of every objective. */
cae_node *cae_weight_decay(cae_graph *g, cae_node *W, double wd);

/* h = phi(x W + b) for layer k of the store; *a_out (may be NULL) receives
 * the pre-activation node. */
cae_node *cae_encoder(cae_graph *g, cae_params *p, int layer, cae_act act, cae_node *x,
                      cae_node **a_out);

typedef struct cae_layer_nodes {
    cae_node *x;       /* the clean input (B x n_in) */
    cae_node *vk;      /* rbm: the Gibbs sample (cae_gibbs, no gradient) */
    cae_node *a, *h;   /* pre-activation and code */
    cae_node *logits;  /* decoder logits (B x n_in); NULL for rbm */
    cae_node *recon;   /* reconstruction cross-entropy; rbm: free-energy gap */
    cae_node *penalty; /* the regularizer before its weight, or NULL */
    cae_node *loss;    /* the objective */
} cae_layer_nodes;

/* Build layer k's pretraining objective on input x (B x n_in). With eval
 * the corruption of dae-g / dae-b is left out and an rbm samples one Gibbs
 * step from the data. chain, steps (may be NULL): an rbm with PCD samples
 * from this persistent chain instead (cae_gibbs). Returns 0, or -1 with the
 * graph's error set. */
int cae_layer_build(cae_graph *g, cae_params *p, int layer, const cae_layer_config *c,
                    cae_node *x, int eval, cae_tensor *chain, cae_tensor *steps,
                    cae_layer_nodes *out);

/* logits (B x C) of the classifier on x; *h_top (may be NULL) = top code. */
cae_node *cae_mlp_logits(cae_graph *g, cae_params *p, const cae_mlp_config *m, cae_node *x,
                         cae_node **h_top);

#ifdef __cplusplus
}
#endif
#endif
