/*
 * cae/mpi.h — a communicator (cae/comm.h) over MPI, for data-parallel
 * cae_train. Library cae_mpi, built when CMake finds MPI (CAE_WITH_MPI):
 * link it, cae and MPI (`mpicc ... -lcae_mpi -lcae`). The core library never
 * calls MPI; this is the one place that does.
 *
 * The gradient sum is one MPI_Iallreduce in place over the gradient block,
 * a broadcast an MPI_Ibcast; each is polled with MPI_Test until it
 * completes or `timeout` seconds pass, so a rank whose peer died (SIGKILL)
 * or hangs gets CAE_ERR_COMM with a message naming the collective, instead
 * of waiting forever. MPI's own errors come back the same way
 * (MPI_ERRORS_RETURN on a duplicate of the program's communicator). After a
 * failure the MPI state is undefined: do not call MPI_Finalize (it may
 * wait for the dead rank); leave with MPI_Abort (cae_mpi_comm_broken).
 *
 *   MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
 *   cae_comm *c = cae_mpi_comm_new(MPI_COMM_WORLD, 20.0, &err);
 *   cfg.comm = c;                                   // cae_train_config
 *   if (cae_train(task, train, valid, &cfg, &hooks, &res, &err)) {
 *       fprintf(stderr, "rank %d: %s\n", c->rank, err.msg);
 *       if (cae_mpi_comm_broken(c)) MPI_Abort(MPI_COMM_WORLD, 1);
 *   }
 *   cae_mpi_comm_free(c);
 *   MPI_Finalize();
 *
 * The OpenMP threads of a rank (cae_task threads) only compute; MPI is
 * called from the thread that calls cae_train (MPI_THREAD_FUNNELED is
 * enough).
 */
#ifndef CAE_MPI_H
#define CAE_MPI_H

#include <mpi.h>

#include "cae/comm.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A communicator for cae_train over a duplicate of comm (MPI initialised;
 * collective over comm). timeout > 0: seconds a collective may wait before
 * it fails; 0: the blocking calls, which wait forever. NULL with err set on
 * failure. */
cae_comm *cae_mpi_comm_new(MPI_Comm comm, double timeout, cae_error *err);
/* Change the timeout of c's collectives (seconds; 0: wait forever). */
void cae_mpi_comm_set_timeout(cae_comm *c, double timeout);
/* Release c (collective, unless c is broken). NULL is fine. */
void cae_mpi_comm_free(cae_comm *c);
/* 1 after a collective failed or timed out, else 0. */
int cae_mpi_comm_broken(const cae_comm *c);
/* Seconds spent waiting in c's collectives since it was made (or the last
 * reset), and their number in *calls (may be NULL): for benchmarks. */
double cae_mpi_comm_seconds(const cae_comm *c, int64_t *calls);
void cae_mpi_comm_reset_time(cae_comm *c);

#ifdef __cplusplus
}
#endif
#endif
