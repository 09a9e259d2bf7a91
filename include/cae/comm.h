/*
 * cae/comm.h — what data-parallel training needs from the processes it runs
 * in, without the library knowing how they talk.
 *
 * cae_train (cae/train.h) runs in one process. Given a communicator
 * (cae_train_config.comm) with size > 1 it runs as one of `size` ranks that
 * each hold the whole data set and the same parameters: every rank shuffles
 * the same way, takes its own slice of every global minibatch (rows
 * [r m / size, (r + 1) m / size) of a batch of m), scales its gradient by its
 * share of the batch and has the communicator sum the gradients, so every
 * rank applies the update one process with the whole batch would (up to the
 * order of the sums). The ranks share the validation (each evaluates every
 * size-th chunk, cae_task_evaluate_comm) and take rank 0's figures, so early
 * stopping decides the same everywhere; whether to stop after an epoch is
 * rank 0's on_epoch's answer, broadcast; a hash of the parameters is
 * compared across ranks (at the start, every check_every steps and at every
 * epoch's end). Every failure is made the same on every rank (a rank whose
 * step failed has its message broadcast), so ranks stop together.
 *
 * The library never calls MPI. A communicator is a small table of
 * collectives: cae_mpi_comm_new (cae/mpi.h, library cae_mpi, built when MPI
 * is found) implements it over MPI; a program may implement it over anything
 * else (tests/test_dist.c does over threads).
 *
 *   cae_comm *c = cae_mpi_comm_new(MPI_COMM_WORLD, 20.0, &err);
 *   cae_train_config cfg;  cae_train_config_default(&cfg);
 *   cfg.comm = c;  cfg.check_every = 100;
 *   cae_train(task, train, valid, &cfg, &hooks, &res, &err);   // on every rank
 */
#ifndef CAE_COMM_H
#define CAE_COMM_H

#include <stddef.h>
#include <stdint.h>

#include "cae/graph.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Element types of a sum. */
typedef enum cae_comm_type {
    CAE_COMM_REAL,   /* cae_real (the gradients) */
    CAE_COMM_DOUBLE  /* double (objectives, flags, counts: exact up to 2^53) */
} cae_comm_type;

/* Every rank calls the same collectives in the same order. Each returns
 * CAE_OK, or a status (CAE_ERR_COMM: a peer failed or did not answer in
 * time) with a one-line reason in err; after a failure the communicator is
 * not used again. */
typedef struct cae_comm {
    int rank, size; /* 0 <= rank < size */
    /* Sum n values of `type` at buf over the ranks, in place. Every rank
     * must get the same bits (a ring or a tree that reduces each element
     * once and sends the result does; the parameter hash checks it). */
    cae_status (*allreduce)(void *buf, int64_t n, cae_comm_type type, void *ctx, cae_error *err);
    /* Copy `bytes` bytes at buf from rank `root` to every rank. */
    cae_status (*broadcast)(void *buf, size_t bytes, int root, void *ctx, cae_error *err);
    void *ctx;
} cae_comm;

/* The slice of rank `rank` of `size` in a batch of m rows: rows [*begin,
 * *begin + return value). Slices differ in size by at most one; a rank's
 * slice is empty when m < size. */
int64_t cae_comm_slice(int64_t m, int rank, int size, int64_t *begin);

#ifdef __cplusplus
}
#endif
#endif
