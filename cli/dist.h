/* The ranks of a `cae pretrain` / `cae finetune` run (cli/dist.c).
 *
 * Started by an MPI launcher (mpirun sets OMPI_COMM_WORLD_SIZE, PMI_SIZE or
 * PMIX_RANK) in a build with MPI (CAE_WITH_MPI), a command runs as one of N
 * ranks: MPI is initialised, cae_train gets a communicator (cae/mpi.h), and
 * only rank 0 speaks: the other ranks' stdout goes to /dev/null and their
 * stderr into a file of their own, shown (each line prefixed "[rank R]")
 * when that rank fails alone (its data cannot be read, ...) or after a
 * fault. Without a launcher, or with one rank, the command is one process,
 * exactly as without MPI.
 *
 * The protocol every rank follows, so that no rank waits for one that has
 * gone: cli_dist_start first; then exactly one cli_dist_agree after the
 * setup (whether it failed or not), before training; cli_dist_end last, with
 * the command's exit status, which returns the status to exit with (a
 * failure on any rank makes every rank's non-zero).
 *
 * Faults: when one rank dies, mpirun ends the others with SIGTERM; rank 0
 * then says where training stood and which epoch the checkpoint holds, and
 * removes a half-written temporary checkpoint. When the launcher does not
 * end them (mpirun --enable-recovery, a rank that hangs), the collectives'
 * timeout (--mpi-timeout) does: the command fails with a message naming the
 * collective and the ranks leave through MPI_Abort.
 *
 * Environment (debugging and tests): CAE_RANK_CHECKPOINTS=DIR makes every
 * rank write DIR/rank<R>.ckpt after each epoch (to compare the ranks'
 * parameters); CAE_RANK_STDERR=1 leaves every rank's stderr alone. */
#ifndef CAE_CLI_DIST_H
#define CAE_CLI_DIST_H

#include "cae/comm.h"
#include "cae/model.h"
#include "cae/task.h"

typedef struct cli_dist cli_dist;

/* Start (*out is always set, even on failure). 0, or an exit status after a
 * one-line reason (a launcher but a build without MPI; MPI_Init failed). */
int cli_dist_start(const char *who, cli_dist **out);
/* Collectives give up after s seconds (0: never). */
void cli_dist_set_timeout(cli_dist *d, double s);
/* The communicator for cae_train_config.comm: NULL for one process. */
const cae_comm *cli_dist_comm(const cli_dist *d);
int cli_dist_rank(const cli_dist *d);
int cli_dist_size(const cli_dist *d);
/* Every rank's setup status: 0 when every rank's rc is 0, else the status
 * to stop with (after rank 0 says which rank failed, and that rank shows
 * its own reason). One process: rc. */
int cli_dist_agree(cli_dist *d, int rc);
/* Last call: the exit status (see above); frees d and leaves MPI. */
int cli_dist_end(cli_dist *d, int rc);

/* Rank 0 prints "data-parallel: N ranks x T threads, global batch B (b per
 * rank)" and warns when its CPU affinity has fewer CPUs than threads. */
void cli_dist_describe(const cli_dist *d, long long threads, long long batch);
/* For the SIGTERM message: the checkpoint paths rank 0 writes (path2 may be
 * NULL), where training stands, and the last epoch saved. */
void cli_dist_watch(cli_dist *d, const char *path1, const char *path2);
void cli_dist_progress(cli_dist *d, int epoch, long long done);
void cli_dist_saved(cli_dist *d, int epoch);
/* CAE_RANK_CHECKPOINTS: this rank's state into DIR/rank<R>.ckpt (1 on a
 * failure, printed; 0 otherwise or when unset). */
int cli_dist_rank_checkpoint(const cli_dist *d, const char *who, const cae_model_info *info,
                             cae_task *t, const cae_params *opt);
/* A command that runs as one process only: 2 (after a line from the first
 * rank) when started as several ranks, else 0. */
int cli_dist_refuse(const char *who);

#endif
