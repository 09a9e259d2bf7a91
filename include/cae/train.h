/*
 * cae/train.h — minibatch SGD over a task (cae/model.h).
 *
 * Each epoch shuffles the training set by (seed, epoch), walks it in
 * minibatches — the last, partial batch included, through a second graph
 * compiled once for its size — and updates the task's tensors:
 *   v <- momentum v - lr_e g;  w <- w + v,   lr_e = lr / (1 + decay * e).
 * After each epoch the task is evaluated on the validation set (noise-free)
 * and on_epoch is called with the figures. Fine-tuning with patience > 0
 * stops when the validation error has not improved for `patience` epochs
 * and leaves the best epoch's parameters in the store.
 *
 * Every step checks the objective, and the update pass checks the gradient
 * of every tensor, for NaN or Inf: training then stops with an error naming
 * the epoch, the step and the tensor (the store's values are then not to be
 * trusted: keep the last checkpoint).
 *
 * Nothing here prints: progress and reports go to the caller's hooks.
 *
 * Resuming. All the state of training lives in three places: the task's
 * tensors, the task's RNG (cae_task_rng) and an optimizer store, cfg.opt (a
 * cae_params distinct from the task's, NULL for a private one freed on
 * return). cae_train keeps there, under names the checkpoint accepts:
 *   "v:<name>"     the momentum velocity of each trained tensor (momentum > 0)
 *   "best:<name>"  the best epoch's values (early stopping: valid, patience)
 *   <buffer>       a copy of each of the task's buffers (cae_task_buffers),
 *                  e.g. an rbm's "pcd:chain" and "pcd:steps"
 *   "train:state"  the configuration below and where training stands, 64-bit
 *                  fields as 16-bit integers so the float build keeps them exact
 *   "train:ranks"  the number of ranks, only when there are more than one (so a
 *                  one-process store is as it always was)
 * A tensor missing is created (zero), one present is reused. After every
 * epoch, before on_epoch, the store describes the end of that epoch, so a
 * hook that saves the task's tensors, the RNG and opt (cae_checkpoint_save_run
 * does exactly that) makes a checkpoint to resume from: load them, restore
 * the RNG and call again with the same configuration, first_epoch = the
 * epochs done, and the loaded opt (the buffers come back from it). The shuffling is a pure function of (seed, epoch), so the run
 * continues bit for bit as if never stopped (docs/DETERMINISM.md).
 * first_epoch = 0 starts afresh (velocities zeroed); first_epoch > 0 with a
 * "train:state" checks it: a different seed, limit, lr, momentum, lr_decay,
 * patience, batch, number of examples or number of ranks is an error naming
 * the field (the ranks change the sums' order, so the run would not continue
 * bit for bit).
 *
 * Data-parallel (cfg.comm, cae/comm.h): every rank calls cae_train and the
 * hooks; the ranks share the validation (cae_task_evaluate_comm) and report
 * rank 0's figures; after an epoch training stops when rank 0's on_epoch
 * says so (the others' answers are ignored). The task must keep no buffers (an rbm's PCD
 * chain is per process: refused). Noise is drawn per rank (cae_task_set_part):
 * models with noise match one process in distribution, deterministic ones
 * (ae, ae-wd, cae, mlp) up to the order of the sums. With a communicator a
 * non-finite objective on any rank shows on every rank as a non-finite
 * gradient, and the message names the rank.
 */
#ifndef CAE_TRAIN_H
#define CAE_TRAIN_H

#include "cae/comm.h"
#include "cae/data.h"
#include "cae/task.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cae_train_config {
    int epochs;        /* >= 1 */
    double lr;         /* > 0 */
    double momentum;   /* 0 <= momentum < 1 */
    double lr_decay;   /* >= 0 */
    int64_t limit;     /* use the first `limit` training examples (0 = all) */
    uint64_t seed;     /* shuffling */
    int patience;      /* early stopping on validation error (fine-tuning) */
    int first_epoch;   /* resume: epochs already done (0 for a fresh run) */
    cae_params *opt;   /* optimizer store (may be NULL): see "Resuming" above */
    /* A task with a side input (cae_task_spec.aux_rows > 0) gets it here: out
     * ((aux_rows rows) x aux_cols, the layout io->aux has) for the training
     * examples index[0..rows) of this step (indices into the training set,
     * after limit), in epoch (0-based). Returns CAE_OK, or a status with err
     * set, which stops training. */
    cae_status (*aux)(void *ctx, int epoch, const int64_t *index, int64_t rows, cae_real *out,
                      cae_error *err);
    void *aux_ctx;
    /* Data-parallel training (cae/comm.h): this process is rank comm->rank of
     * comm->size, each running cae_train with the same configuration, data
     * and parameters; the task's batch is the global batch. NULL or size 1:
     * one process. */
    const cae_comm *comm;
    int check_every;   /* with comm: compare the parameters across ranks every
                          this many steps too (0: at the start and after each
                          epoch only) */
} cae_train_config;

void cae_train_config_default(cae_train_config *c);

typedef struct cae_epoch_report {
    int epoch, epochs;     /* 1-based */
    double objective;      /* mean training objective over the epoch */
    double valid_loss;     /* noise-free objective on the validation set */
    double valid_metric;   /* reconstruction cross-entropy, or error rate */
    double seconds;        /* training time of the epoch */
    double lr;
    int64_t examples;
    int is_best;           /* fine-tuning: best validation error so far */
} cae_epoch_report;

typedef struct cae_train_hooks {
    /* After each epoch; return non-zero to stop training there. */
    int (*on_epoch)(const cae_epoch_report *r, void *ctx);
    /* After each batch (may be NULL): examples done in this epoch. */
    void (*on_batch)(int epoch, int64_t done, int64_t total, void *ctx);
    void *ctx;
} cae_train_hooks;

typedef struct cae_train_result {
    int epochs_run;
    int best_epoch;          /* fine-tuning with validation */
    double best_valid_metric;
    double last_objective;
} cae_train_result;

/* Train t on train (valid may be NULL). CAE_OK, or a status with err
 * saying why: a bad configuration (ARG), data of the wrong width (SHAPE), a
 * saved state that is not this run's (MISMATCH), a NaN or infinity in the
 * objective or a gradient (NUMERIC: training stops there). */
cae_status cae_train(cae_task *t, const cae_dataset *train, const cae_dataset *valid,
                     const cae_train_config *cfg, const cae_train_hooks *hooks,
                     cae_train_result *res, cae_error *err);

/* What cae_train recorded in an optimizer store ("train:state"). */
typedef struct cae_train_state {
    cae_train_config cfg; /* seed, limit, lr, momentum, lr_decay, patience */
    int epochs_done;
    int64_t examples;     /* training examples per epoch (after limit) */
    int64_t batch;        /* the task's batch size */
    int best_epoch;       /* epoch of the best validation metric, 0 if none */
    int since_best;       /* epochs since then */
    double best_metric;   /* INFINITY when best_epoch is 0 */
    int ranks;            /* data-parallel ranks ("train:ranks"; 1 without it) */
} cae_train_state;

/* Decode opt's "train:state" into *st. Returns 0, or -1 when opt holds
 * none (or not one cae_train wrote). */
int cae_train_state_get(const cae_params *opt, cae_train_state *st);
/* 0 when training configured as c over `examples` examples in batches of
 * `batch` continues the saved state s (the epochs done, seed, limit,
 * examples, batch, lr, momentum, lr-decay, patience, and "ranks": c->comm's
 * size, 1 without); else 1 with *m naming the first field that differs.
 * cae_train checks it when resuming. */
int cae_train_state_diff(const cae_train_config *c, const cae_train_state *s, int64_t examples,
                         int64_t batch, cae_mismatch *m);

/* Error rate of a supervised task on d, with its 95% interval
 * 1.96 sqrt(p (1 - p) / n). The task's sticky error says why on failure. */
cae_status cae_classify_error(cae_task *t, const cae_dataset *d, double *error, double *interval);

#ifdef __cplusplus
}
#endif
#endif
