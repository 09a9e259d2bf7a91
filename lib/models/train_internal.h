/* The data-parallel side of cae_train (lib/models/train_dist.c): what
 * train.c calls when its configuration has a communicator of size > 1. Each
 * function is a collective: every rank calls it at the same point. */
#ifndef CAE_TRAIN_INTERNAL_H
#define CAE_TRAIN_INTERNAL_H

#include "cae/train.h"

typedef struct train_dist {
    const cae_comm *c;    /* NULL: one process (every other field unused) */
    int rank, size;
    cae_real *grads;      /* the range of the gradient block the trained tensors span */
    int64_t n_grads;
    double *flags;        /* size + 1 doubles for the flag sums */
} train_dist;

/* Set up d for cfg's communicator (d->c NULL when there is none or it has
 * one rank): checks the communicator and the task (batch >= size, no
 * buffers) and splits the task's batch (cae_task_set_part). Not collective. */
cae_status train_dist_init(train_dist *d, const cae_train_config *cfg, cae_task *t, cae_error *err);
void train_dist_free(train_dist *d);

/* After a step of `rows` of the m rows of the batch: each rank's gradient
 * times rows / m, summed over the ranks. bad != 0 (this rank's step failed
 * or its objective is not finite) poisons the sum with a NaN instead, so
 * every rank's update sees a non-finite gradient and calls train_dist_fail. */
cae_status train_dist_grads(train_dist *d, cae_task *t, int64_t rows, int64_t m, int bad,
                            cae_error *err);

/* Every rank found a non-finite gradient in `tensor` at (epoch, step): find
 * out why and say it the same on every rank. code: 0 this rank's step was
 * fine, 1 its objective was not finite, 2 its step failed with status st
 * and message msg. A rank's failure wins (its message is broadcast), then
 * the objectives, then the gradient. Returns the status to stop with. */
cae_status train_dist_fail(train_dist *d, int code, cae_status st, const char *msg,
                           const char *tensor, int epoch, long long step, cae_error *err);

/* Compare a hash of the task's trained tensors (and of run[0..n_run-1], a
 * description of the run that must agree too) with rank 0's; sums[0..n-1]
 * are summed over the ranks on the way. A rank that differs stops every
 * rank with an error naming `when` ("after epoch 2, step 300"). */
cae_status train_dist_check(train_dist *d, cae_task *t, const uint64_t *run, int n_run,
                            double *sums, int n, const char *when, cae_error *err);

/* What cae_task_evaluate sums over d, restricted to the chunks of
 * EVAL_BATCH rows that part `part` of `parts` takes (every parts-th): the
 * objective times the rows in sums[0], the metric times the rows or the
 * errors in sums[1]. The parts' sums add up to the whole's; every part
 * draws each chunk's key, so a chunk gets the same noise in any part.
 * (lib/models/task.c) */
cae_status cae_task_evaluate_sums(cae_task *t, const cae_dataset *d, int part, int parts,
                                  double sums[2]);

/* Rank 0's bytes at buf to every rank. */
cae_status train_dist_bcast(train_dist *d, void *buf, size_t bytes, cae_error *err);

#endif
