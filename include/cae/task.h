/*
 * cae/task.h — what cae_train (cae/train.h) trains: a parameter store plus a
 * builder, a function that adds the objective to a graph for an input node.
 *
 * The task compiles the builder's graph for the training batch, for a last,
 * partial batch, and, with eval = 1, noise-free for evaluation. The built-in
 * models are builders like any other (cae_layer_task_build,
 * cae_mlp_task_build); a user's regularizer is a builder too and trains with
 * everything cae_train gives the built-ins: shuffling, momentum, the NaN
 * guard, early stopping, checkpoints and exact resumption
 * (examples/custom_regularizer.c).
 *
 *   static int my_build(cae_graph *g, cae_task_io *io, const void *ctx) {
 *       const cae_layer_task *lt = ctx;               // a CAE layer ...
 *       if (cae_layer_task_build(g, io, lt)) return -1;
 *       cae_node *h = ...;                            // ... plus my term
 *       io->loss = cae_add(g, io->loss, cae_scale(g, my_term(g, h), 0.1));
 *       return io->loss ? 0 : -1;
 *   }
 *   cae_layer_task lt = {1, config};
 *   cae_task_spec spec = {.name = "mine", .n_in = 784, .build = my_build,
 *                         .ctx = &lt, .ctx_size = sizeof lt};
 *   cae_task *t = cae_task_new(p, &spec, 20, seed, 0, &err);
 */
#ifndef CAE_TASK_H
#define CAE_TASK_H

#include "cae/comm.h"
#include "cae/model.h"
#include "cae/sgd.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cae_task cae_task;

/* One graph's build: what the task gives the builder, and what the builder
 * gives back. */
typedef struct cae_task_io {
    /* given */
    cae_params *params;   /* the task's parameter store */
    cae_params *buffers;  /* the task's buffers: state that is not trained but
                             travels with the run (checkpoints, resume), e.g. the
                             rbm's persistent chain. Get or create tensors here
                             (the same on every call). */
    cae_node *x;          /* rows x n_in, bound to the rows of each step */
    cae_node *y;          /* rows labels 0..n_classes-1 (supervised), else NULL */
    cae_node *aux;        /* per-example side input (spec.aux_rows > 0), else NULL:
                             (aux_rows rows) x aux_cols, filled for each training
                             step by cae_train_config.aux; zeros in evaluation */
    int64_t rows;         /* this graph's row count */
    int64_t batch;        /* the task's (full) batch size */
    int eval;             /* 1: the evaluation graph: no noise, no state updates */
    /* filled by the builder */
    cae_node *loss;       /* the scalar objective (averaged over rows) */
    cae_node *metric;     /* unsupervised: a scalar averaged over rows that
                             evaluation reports beside the loss (NULL: the loss) */
    cae_node *logits;     /* supervised: rows x n_classes; evaluation reports
                             the error rate of their argmax */
} cae_task_io;

/* Add the objective to g (whose inputs io->x, io->y exist); return 0, or
 * non-zero with the graph's error set (a failed constructor does that). */
typedef int (*cae_task_build_fn)(cae_graph *g, cae_task_io *io, const void *ctx);

typedef struct cae_task_spec {
    const char *name;       /* for messages ("cae", "mlp", "my-regularizer") */
    int64_t n_in;           /* input width */
    int n_classes;          /* 0: unsupervised; > 0: labels 0..n_classes-1 */
    cae_task_build_fn build;
    const void *ctx;        /* passed to build */
    size_t ctx_size;        /* > 0: the task keeps its own copy of that many bytes
                               of ctx; 0: ctx must outlive the task */
    int64_t aux_rows;       /* > 0: a side input of aux_rows x aux_cols values per
                               example (e.g. tangent directions), io->aux */
    int64_t aux_cols;
} cae_task_spec;

/* A task over store p (whose tensors the builder uses must exist): the
 * training graph is built and compiled now (errors come out here, in err),
 * others on first use. seed seeds the task RNG (noise, Gibbs sampling);
 * threads per op (0 = OpenMP default). */
cae_task *cae_task_new(cae_params *p, const cae_task_spec *spec, int64_t batch, uint64_t seed,
                       int threads, cae_error *err);
void cae_task_free(cae_task *t);

/* The built-in builders. ctx of cae_layer_task_build: a cae_layer_task;
 * of cae_mlp_task_build: a cae_mlp_config. A user's builder may call them
 * and add its own terms to io->loss. */
typedef struct cae_layer_task {
    int layer;
    cae_layer_config config;
    cae_act below[CAE_MAX_LAYERS]; /* end-to-end: the activations of layers
                                      1..layer-1, which then run (frozen) on
                                      the stack's input x */
} cae_layer_task;
int cae_layer_task_build(cae_graph *g, cae_task_io *io, const void *ctx);
int cae_mlp_task_build(cae_graph *g, cae_task_io *io, const void *ctx);
/* cae_task_new with those builders: pretraining layer k on its own input
 * (the store must hold its tensors), and fine-tuning: softmax cross-entropy
 * (+ wd). */
cae_task *cae_task_pretrain(cae_params *p, int layer, const cae_layer_config *c, int64_t batch,
                            uint64_t seed, int threads, cae_error *err);
/* Pretraining the top layer of the stack info describes. Its input is that
 * layer's own (the codes of the layers below), except for an end-to-end
 * penalty: the stack's input then, through the layers below, frozen. */
cae_task *cae_task_pretrain_stack(cae_params *p, const cae_model_info *info, int64_t batch,
                                  uint64_t seed, int threads, cae_error *err);
cae_task *cae_task_finetune(cae_params *p, const cae_mlp_config *m, int64_t batch,
                            uint64_t seed, int threads, cae_error *err);

/* One forward + backward on rows (1..batch) examples x (rows x n_in) and
 * labels y (supervised; NULL otherwise). Gradients land in the store, the
 * objective in *objective. Fails (sticky error on the task) only at the
 * first use of a new row count, when that graph compiles. With parts > 1
 * (below), rows may be 0 (an empty part of a short batch): the trained
 * tensors' gradients are zeroed, the objective is 0 and the task RNG
 * advances as for a step. */
cae_status cae_task_step(cae_task *t, const cae_real *x, const int32_t *y, int64_t rows,
                         double *objective);
/* cae_task_step and the SGD update of the task's tensors in one pass
 * (cae/sgd.h): s->tensors NULL means the task's own (cae_task_param order,
 * which s->velocity and s->grad_check then follow). s->continues is honoured
 * only when the previous training step ran on the same graph (the full
 * batch's or the last, partial one's). An objective that is not finite
 * comes back with nothing updated. Not for a task split into parts
 * (cae_task_set_part): its gradients must be reduced across the parts
 * before the update (cae_train does that with cae_task_step). */
cae_status cae_task_step_sgd(cae_task *t, const cae_real *x, const int32_t *y, int64_t rows,
                             const cae_sgd *s, double *objective);
/* Data-parallel training (cae_train with a communicator calls it, cae/comm.h):
 * this task runs part `part` (0-based) of `parts` of every minibatch, the
 * rows cae_comm_slice gives it. The training graph is recompiled for the
 * rows of its part of a full batch (parts <= batch), and with parts > 1 the
 * random draws of each step (noise, Gibbs sampling, probes) come from a key
 * of the part's own, so parts never repeat each other's noise, while the
 * task RNG, the state a checkpoint keeps, advances as in one process. */
cae_status cae_task_set_part(cae_task *t, int part, int parts);
/* Noise-free evaluation over a whole dataset: the mean objective (loss) and
 * the mean metric (unsupervised) or the error rate (supervised) in *metric.
 * Its random draws (an rbm's Gibbs step) come from a stream of their own,
 * the same at every call: evaluating never changes the training stream. */
cae_status cae_task_evaluate(cae_task *t, const cae_dataset *d, double *loss, double *metric);
/* cae_task_evaluate shared by the ranks of c (cae/comm.h; NULL or one rank:
 * cae_task_evaluate itself): each rank evaluates every size-th chunk of 500
 * rows, the sums are added, and every rank gets rank 0's figures. A
 * collective; a failure on any rank is every rank's, with its message in
 * err. The loss and an unsupervised metric may differ from one process's
 * in the last bits (the order of the sums); an error rate cannot. */
cae_status cae_task_evaluate_comm(cae_task *t, const cae_dataset *d, const cae_comm *c,
                                  double *loss, double *metric, cae_error *err);
/* The tensors this task trains (its graph's parameters). */
int cae_task_n_params(const cae_task *t);
cae_tensor *cae_task_param(const cae_task *t, int i);
cae_params *cae_task_params(const cae_task *t);
/* The task's buffers (see cae_task_io); cae_train saves and restores them. */
cae_params *cae_task_buffers(const cae_task *t);
/* The side input the training graphs read ((aux_rows batch) x aux_cols,
 * written before each step: cae_train_config.aux), or NULL. */
cae_real *cae_task_aux(cae_task *t);
int64_t cae_task_batch(const cae_task *t);
/* The thread count the task was made with (0 = OpenMP's default). */
int cae_task_threads(const cae_task *t);
int64_t cae_task_inputs(const cae_task *t);
int cae_task_classes(const cae_task *t);
const char *cae_task_name(const cae_task *t);
/* The task's sticky error, or NULL. */
const char *cae_task_error(const cae_task *t);
/* The RNG state of the task (noise, Gibbs sampling): for checkpoints. */
cae_rng *cae_task_rng(cae_task *t);
/* Continue the run saved in info (cae_checkpoint_save_run): the task RNG
 * as it was after info->epochs_done epochs. The buffers come back from the
 * optimizer store when cae_train resumes. */
cae_status cae_task_resume(cae_task *t, const cae_model_info *info, cae_error *err);

#ifdef __cplusplus
}
#endif
#endif
