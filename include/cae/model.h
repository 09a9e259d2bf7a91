/*
 * cae/model.h — the models of the paper as graphs over a shared parameter
 * store, and the tasks that train them.
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
 * A task (cae_task) is one trainable objective with its graphs compiled for
 * the training batch and, lazily and once, for a smaller last batch, plus a
 * noise-free evaluation graph. Training itself is in cae/train.h.
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
/* NULL if c is usable, else a static string saying what is wrong. */
const char *cae_layer_config_check(const cae_layer_config *c);

/* Create layer k's tensors in p where missing and initialise the new ones:
 * W ~ U(+-4 sqrt(6 / (n_in + n_hidden))) for sigmoid (+-sqrt(6/..) for the
 * others; 0.01 N(0,1) for rbm), biases 0. Existing tensors must have the
 * right shapes. Returns 0, or -1 with a message in err. */
int cae_layer_params(cae_params *p, int layer, const cae_layer_config *c, cae_rng *init,
                     char *err, size_t errlen);
/* The tensor "L<layer>.<what>" (what: "W", "b", "c", "Wd"), or NULL. */
cae_tensor *cae_layer_tensor(const cae_params *p, int layer, const char *what);

/* ---------------------------------------------------------------- graphs */

/* wd * sum W^2 (a scalar node): the weight-decay term of every objective. */
cae_node *cae_weight_decay(cae_graph *g, cae_node *W, double wd);

/* h = phi(x W + b) for layer k of the store; *a_out (may be NULL) receives
 * the pre-activation node. */
cae_node *cae_encoder(cae_graph *g, cae_params *p, int layer, cae_act act, cae_node *x,
                      cae_node **a_out);

typedef struct cae_layer_nodes {
    cae_node *x;       /* the clean input (B x n_in) */
    cae_node *vk;      /* rbm: the Gibbs sample input (B x n_in) */
    cae_node *a, *h;   /* pre-activation and code */
    cae_node *logits;  /* decoder logits (B x n_in); NULL for rbm */
    cae_node *recon;   /* reconstruction cross-entropy; rbm: free-energy gap */
    cae_node *penalty; /* the regularizer before its weight, or NULL */
    cae_node *loss;    /* the objective */
} cae_layer_nodes;

/* Build layer k's pretraining objective on input x (B x n_in). With
 * noise_off the corruption of dae-g / dae-b is left out (evaluation). */
int cae_layer_build(cae_graph *g, cae_params *p, int layer, const cae_layer_config *c,
                    cae_node *x, int noise_off, cae_layer_nodes *out);

/* ------------------------------------------------------------------ MLP */

#define CAE_MAX_LAYERS 8

typedef struct cae_mlp_config {
    int n_layers;                  /* hidden layers, 1..CAE_MAX_LAYERS */
    int64_t sizes[CAE_MAX_LAYERS + 1]; /* sizes[0] = inputs, sizes[k] = layer k */
    cae_act act[CAE_MAX_LAYERS];   /* activation of layer k+1 */
    int n_classes;
    double wd;                     /* weight decay on every W and V */
} cae_mlp_config;

/* Create the output layer's tensors (out.V ~ U(+-sqrt(6/(h+C))), out.c = 0)
 * and any missing hidden layer (initialised as for an AE). */
int cae_mlp_params(cae_params *p, const cae_mlp_config *m, cae_rng *init, char *err,
                   size_t errlen);
/* logits (B x C) of the classifier on x; *h_top (may be NULL) = top code. */
cae_node *cae_mlp_logits(cae_graph *g, cae_params *p, const cae_mlp_config *m, cae_node *x,
                         cae_node **h_top);

/* ----------------------------------------------------------------- tasks */

typedef struct cae_task cae_task;

/* A pretraining task for layer k (the store must hold its tensors). */
cae_task *cae_task_pretrain(cae_params *p, int layer, const cae_layer_config *c, int64_t batch,
                            uint64_t seed, int threads, char *err, size_t errlen);
/* A fine-tuning task: softmax cross-entropy (+ wd) of the MLP. */
cae_task *cae_task_finetune(cae_params *p, const cae_mlp_config *m, int64_t batch,
                            uint64_t seed, int threads, char *err, size_t errlen);
void cae_task_free(cae_task *t);

/* One forward + backward on rows (1..batch) examples x (rows x n_in) and
 * labels y (fine-tuning; NULL otherwise). Gradients land in the store.
 * Returns the objective, or NAN after a failure (cae_task_error says why:
 * only the first use of a new row count can fail, when it compiles). */
double cae_task_step(cae_task *t, const cae_real *x, const int32_t *y, int64_t rows);
/* Noise-free evaluation over a whole dataset: the mean objective (loss) and
 * the mean reconstruction cross-entropy (pretraining) or the error rate
 * (fine-tuning) in *metric. Returns 0 or -1. */
int cae_task_evaluate(cae_task *t, const cae_dataset *d, double *loss, double *metric);
/* The tensors this task trains (its graph's parameters). */
int cae_task_n_params(const cae_task *t);
cae_tensor *cae_task_param(const cae_task *t, int i);
int64_t cae_task_batch(const cae_task *t);
/* The thread count the task was made with (0 = OpenMP's default). */
int cae_task_threads(const cae_task *t);
int64_t cae_task_inputs(const cae_task *t);
const char *cae_task_error(const cae_task *t);
/* The RNG state of the task (noise, Gibbs sampling): for checkpoints. */
cae_rng *cae_task_rng(cae_task *t);
/* rbm with PCD: the persistent chain (batch x n_in values), NULL before the
 * first full batch and for every other task. cae_task_set_chain starts it
 * at x (batch x n_in values, copied); -1 if the task has no chain. */
const cae_real *cae_task_chain(const cae_task *t);
int cae_task_set_chain(cae_task *t, const cae_real *x);

#ifdef __cplusplus
}
#endif
#endif
