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
 */
#ifndef CAE_TRAIN_H
#define CAE_TRAIN_H

#include "cae/data.h"
#include "cae/model.h"

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

/* Train t on train (valid may be NULL). Returns 0, or -1 with err set (bad
 * configuration, data of the wrong width, non-finite values). */
int cae_train(cae_task *t, const cae_dataset *train, const cae_dataset *valid,
              const cae_train_config *cfg, const cae_train_hooks *hooks,
              cae_train_result *res, char *err, size_t errlen);

/* Error rate of a fine-tuning task on d, with its 95% interval
 * 1.96 sqrt(p (1 - p) / n). Returns 0 or -1. */
int cae_classify_error(cae_task *t, const cae_dataset *d, double *error, double *interval);

#ifdef __cplusplus
}
#endif
#endif
