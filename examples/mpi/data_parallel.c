/* Data-parallel training in your own program: the same cae_train as one
 * process, given a communicator over MPI (cae/mpi.h, library cae_mpi).
 *
 *   mpirun -np 2 build/examples/data_parallel [--epochs E]
 *
 * Every rank loads the data and makes the same parameters (same seed);
 * cae_train gives each rank its slice of every global minibatch, sums the
 * gradients, checks that the ranks' parameters agree, and takes validation
 * and stopping decisions from rank 0. Only rank 0 prints and would write
 * files. A CAE layer (784 -> 200) on the first 5000 MNIST examples
 * ($CAE_DATA_DIR or ./data; a synthetic set without it).
 *
 * Exits 0 when training ends and lowers the validation reconstruction error
 * on every rank, 1 otherwise. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cae/data.h"
#include "cae/mpi.h"
#include "cae/train.h"

typedef struct report {
    int rank;
    double first, last;
} report;

/* Called on every rank; rank 0 prints (the figures are the same
 * everywhere: the validation error is rank 0's, broadcast). */
static int on_epoch(const cae_epoch_report *r, void *ctx)
{
    report *rep = ctx;
    if (r->epoch == 1) rep->first = r->valid_metric;
    rep->last = r->valid_metric;
    if (rep->rank == 0)
        printf("epoch %d/%d  objective %.3f  valid recon %.3f  %.0f examples/s (all ranks)\n",
               r->epoch, r->epochs, r->objective, r->valid_metric, (double)r->examples / r->seconds);
    return 0; /* rank 0's answer is the one that counts */
}

/* n examples of U(0,1) when there is no MNIST. */
static cae_dataset *synthetic(int64_t n)
{
    cae_dataset *d = calloc(1, sizeof *d);
    *d = (cae_dataset){.n = n, .dim = 784, .rows = 28, .cols = 28, .n_classes = 1, .owns = 1};
    d->x = cae_alloc_reals((size_t)(n * 784));
    cae_rng r;
    cae_rng_seed(&r, 5, 0);
    for (int64_t i = 0; i < n * 784; i++) d->x[i] = (cae_real)cae_rng_uniform(&r);
    return d;
}

int main(int argc, char **argv)
{
    int provided, epochs = 3;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    if (argc == 3 && !strcmp(argv[1], "--epochs")) epochs = atoi(argv[2]);
    cae_error err;
    /* A collective that waits 30 s for a rank fails instead of hanging. */
    cae_comm *comm = cae_mpi_comm_new(MPI_COMM_WORLD, 30.0, &err);
    if (!comm) {
        fprintf(stderr, "%s\n", err.msg);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    const char *dir = getenv("CAE_DATA_DIR");
    cae_splits *s = NULL;
    cae_dataset *own[2] = {NULL, NULL};
    const cae_dataset *train, *valid;
    if (!cae_splits_load(dir && *dir ? dir : "data", "mnist", &s, &err)) {
        train = s->train;
        valid = own[1] = cae_dataset_view(s->valid, 0, 1000);
    } else {
        train = own[0] = synthetic(5000);
        valid = own[1] = synthetic(500);
    }
    /* The same parameters on every rank: the same seed. */
    cae_params *p = cae_params_new(), *opt = cae_params_new();
    cae_layer_config c;
    cae_layer_config_default(&c, CAE_MODEL_CAE, 784, 200);
    cae_task *t = NULL;
    if (cae_layer_params(p, 1, &c, 1, &err) ||
        !(t = cae_task_pretrain(p, 1, &c, 40 /* the global batch */, 1, 1, &err))) {
        fprintf(stderr, "rank %d: %s\n", comm->rank, err.msg);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    cae_train_config cfg;
    cae_train_config_default(&cfg);
    cfg.epochs = epochs;
    cfg.lr = 0.05;
    cfg.limit = 5000;
    cfg.opt = opt;
    cfg.comm = comm;      /* the one line that makes it data-parallel */
    cfg.check_every = 50; /* compare the ranks' parameters every 50 steps */
    report rep = {.rank = comm->rank};
    cae_train_hooks hooks = {.on_epoch = on_epoch, .ctx = &rep};
    cae_train_result res;
    int rc = 0;
    if (cae_train(t, train, valid, &cfg, &hooks, &res, &err)) {
        /* Every rank gets the same error (a peer's too); after a timeout the
         * MPI state is undefined: leave with MPI_Abort, not MPI_Finalize. */
        if (comm->rank == 0) fprintf(stderr, "%s\n", err.msg);
        if (cae_mpi_comm_broken(comm)) MPI_Abort(MPI_COMM_WORLD, 1);
        rc = 1;
    } else if (!(rep.last < rep.first)) {
        if (comm->rank == 0) fprintf(stderr, "the validation error did not fall\n");
        rc = 1;
    } else if (comm->rank == 0) {
        printf("%d ranks, %d epochs: valid recon %.3f -> %.3f\n", comm->size, res.epochs_run,
               rep.first, rep.last);
    }
    cae_task_free(t);
    cae_params_free(p);
    cae_params_free(opt);
    cae_dataset_free(own[0]);
    cae_dataset_free(own[1]);
    cae_splits_free(s);
    cae_mpi_comm_free(comm);
    MPI_Finalize();
    return rc;
}
