/* `cae finetune` — an MLP from pretrained layers (the loaded store itself
 * gains out.V / out.c: the hidden layers start from exactly the pretrained
 * weights), trained on the labels with early stopping on the validation
 * error; reports the test error with its 95% interval. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cae/mtc.h"
#include "cli_common.h"
#include "commands.h"
#include "dist.h"
#include "parse.h"

static const char *finetune_usage =
    "usage: cae finetune --init CKPT --data SET --out CKPT [options]\n"
    "\n"
    "Fine-tune the encoder layers of CKPT (from cae pretrain, or a classifier to\n"
    "continue) with a fresh softmax output layer on the labels of SET, keeping\n"
    "the parameters of the epoch with the lowest validation error.\n"
    "\n"
    "  --data-dir DIR   where the data sets are (default $CAE_DATA_DIR or ./data)\n"
    "  --epochs N       at most N epochs (default 50)\n"
    "  --lr X           learning rate (default 0.1)\n"
    "  --momentum X     momentum in [0, 1) (default 0)\n"
    "  --lr-decay D     learning rate of epoch e (0-based): lr / (1 + D e) (default 0)\n"
    "  --batch B        minibatch size (default 20)\n"
    "  --patience P     stop after P epochs without a better validation error\n"
    "                   (default 5; 0 = run every epoch, keep the last)\n"
    "  --wd X           weight decay on every W and on the output layer (default 0)\n"
    "  --tangent-prop D the Manifold Tangent Classifier: at each training example the\n"
    "                   D leading right singular vectors of the encoder's Jacobian\n"
    "                   are its tangents, and fine-tuning adds --beta times\n"
    "                   sum ||d softmax / dx u||^2 over them (default 0: off)\n"
    "  --beta B         weight of that penalty (default 0.1; 0: plain fine-tuning)\n"
    "  --tangents-every E  recompute the tangents from the fine-tuned encoder every\n"
    "                   E epochs (default 0: once, from --init's encoder)\n"
    "  --limit N        use the first N training examples (default all)\n"
    "  --seed S         output-layer initialisation and shuffling (default 1)\n"
    "  --threads T      OpenMP threads (default: OpenMP's choice)\n"
    "  --no-test        do not read the test set (choosing hyper-parameters on\n"
    "                   validation error; `cae eval --model CKPT` reads it later)\n"
    "  --out CKPT       the classifier checkpoint (written at each new best epoch)\n"
    "  --resume         continue the run into --out CKPT from its last epoch, exactly\n"
    "                   (the same options; --epochs may grow)\n"
    "  --check-every N  under mpirun: compare the ranks' parameters every N steps\n"
    "                   too (default 100; 0: at the start and after each epoch)\n"
    "  --mpi-timeout S  under mpirun: a rank that waits S seconds for the others\n"
    "                   stops every rank (default 20; 0: wait forever)\n"
    "\n"
    "Data-parallel: `mpirun -np N cae finetune ...` trains as N ranks, --batch\n"
    "being the global batch; the ranks share the evaluations, rank 0's figures\n"
    "decide early stopping, and rank 0 prints and writes CKPT and CKPT.resume;\n"
    "--resume needs the same N.\n"
    "\n"
    "While training, CKPT.resume holds the last epoch's parameters, the optimizer\n"
    "state (velocities, the best epoch's parameters, early stopping) and the RNG;\n"
    "it is written atomically after every epoch and removed when training ends.\n"
    "--resume continues from it bit for bit (docs/DETERMINISM.md); a run without\n"
    "--resume removes a stale one.\n";

typedef struct finetune_ctx {
    const char *who, *out, *resume;
    cli_dist *dist;
    cae_model_info *info;
    cae_params *p, *opt;
    cae_task *task;
    cli_progress pg;
    int save_failed;
} finetune_ctx;

static void on_batch(int epoch, int64_t done, int64_t total, void *ctx)
{
    cli_progress_batch(&((finetune_ctx *)ctx)->pg, epoch, done, total);
    cli_dist_progress(((finetune_ctx *)ctx)->dist, epoch, done);
}

static int on_epoch(const cae_epoch_report *r, void *vctx)
{
    finetune_ctx *c = vctx;
    cli_progress_clear(&c->pg);
    const double rate = r->seconds > 0 ? (double)r->examples / r->seconds : 0;
    printf("epoch %3d/%d  objective %8.5f  valid error %6.2f%%%s  %6.1f s  %6.0f ex/s\n", r->epoch,
           r->epochs, r->objective, 100 * r->valid_metric, r->is_best ? " (best)" : "       ",
           r->seconds, rate);
    fflush(stdout);
    c->info->epochs_done = r->epoch;
    /* OUT.resume: this epoch's state; then OUT: the best parameters so far.
     * In this order a kill between the two loses nothing. */
    const int writes = cli_dist_rank(c->dist) == 0;
    if (cli_dist_rank_checkpoint(c->dist, c->who, c->info, c->task, c->opt) ||
        (writes && cli_save_run(c->who, c->resume, c->info, c->task, c->opt)) ||
        (writes && r->is_best && cli_save_run(c->who, c->out, c->info, c->task, NULL))) {
        c->save_failed = 1;
        return 1;
    }
    cli_dist_saved(c->dist, r->epoch);
    return 0;
}

static int max_classes(const cae_splits *s)
{
    int c = s->train->n_classes;
    if (s->valid && s->valid->n_classes > c) c = s->valid->n_classes;
    if (s->test && s->test->n_classes > c) c = s->test->n_classes;
    return c;
}

typedef struct finetune_opts {
    const char *init, *data, *data_dir, *out;
    long long epochs, batch, patience, limit, threads, tangent_dims, tangents_every, check_every;
    double beta;
    unsigned long long seed;
    double lr, momentum, wd, lr_decay, mpi_timeout;
    int wd_given, resume, no_test;
} finetune_opts;

/* Every check that needs no file: CLI_PARSE_RUN, or the exit status. */
static int finetune_parse_opts(int argc, char **argv, finetune_opts *fo)
{
    const char *who = "cae finetune";
    *fo = (finetune_opts){.data_dir = cli_default_data_dir(), .epochs = 50, .batch = 20, .patience = 5,
                          .seed = 1, .lr = 0.1, .beta = 0.1, .check_every = 100, .mpi_timeout = 20};
    cli_opt o[] = {
        {"--init", CLI_STR, &fo->init, 0, 0, 0, 0},
        {"--data", CLI_STR, &fo->data, 0, 0, 0, 0},
        {"--data-dir", CLI_STR, &fo->data_dir, 0, 0, 0, 0},
        {"--epochs", CLI_INT, &fo->epochs, 1, 1000000, 0, 0},
        {"--lr", CLI_REAL, &fo->lr, 1e-12, 1e6, 0, 0},
        {"--momentum", CLI_REAL, &fo->momentum, 0, 1, 1, 0},
        {"--lr-decay", CLI_REAL, &fo->lr_decay, 0, 1e6, 0, 0},
        {"--no-test", CLI_FLAG, &fo->no_test, 0, 0, 0, 0},
        {"--batch", CLI_INT, &fo->batch, 1, 1 << 20, 0, 0},
        {"--patience", CLI_INT, &fo->patience, 0, 1000000, 0, 0},
        {"--wd", CLI_REAL, &fo->wd, 0, 1e9, 0, 0},
        {"--tangent-prop", CLI_INT, &fo->tangent_dims, 0, 4096, 0, 0},
        {"--beta", CLI_REAL, &fo->beta, 0, 1e9, 0, 0},
        {"--tangents-every", CLI_INT, &fo->tangents_every, 0, 1000000, 0, 0},
        {"--limit", CLI_INT, &fo->limit, 0, 1e12, 0, 0},
        {"--seed", CLI_U64, &fo->seed, 0, 0, 0, 0},
        {"--threads", CLI_INT, &fo->threads, 0, 256, 0, 0},
        {"--out", CLI_STR, &fo->out, 0, 0, 0, 0},
        {"--resume", CLI_FLAG, &fo->resume, 0, 0, 0, 0},
        {"--check-every", CLI_INT, &fo->check_every, 0, 1e12, 0, 0},
        {"--mpi-timeout", CLI_REAL, &fo->mpi_timeout, 0, 1e6, 0, 0},
    };
    const int n = (int)(sizeof o / sizeof o[0]);
    int rc = cli_parse(who, finetune_usage, argc, argv, o, n);
    if (rc != CLI_PARSE_RUN) return rc;
    if ((rc = cli_require(who, cli_opt_get(o, n, "--init"))) || (rc = cli_require(who, cli_opt_get(o, n, "--data"))) ||
        (rc = cli_require(who, cli_opt_get(o, n, "--out"))))
        return rc;
    fo->wd_given = cli_opt_get(o, n, "--wd")->given;
    if (!fo->tangent_dims &&
        (cli_opt_get(o, n, "--beta")->given || cli_opt_get(o, n, "--tangents-every")->given)) {
        fprintf(stderr, "%s: --beta and --tangents-every are options of --tangent-prop D\n", who);
        return 2;
    }
    return CLI_PARSE_RUN;
}

/* --resume: the run saved in OUT.resume (ri, st) must be the one the
 * options describe (want: --init's stack, the data's classes, the options)
 * over `examples` training examples. 0, or 2 after a line naming the option. */
static int resume_check(const char *who, const finetune_opts *fo, const char *path,
                        const cae_model_info *want, const cae_model_info *ri,
                        const cae_train_config *tc, const cae_train_state *st, int64_t examples,
                        const cae_params *ropt)
{
    if (ri->kind != CAE_MODEL_MLP) {
        fprintf(stderr, "%s: --resume %s: not a classifier\n", who, path);
        return 2;
    }
    /* The tangent classifier's settings, in its buffer (cae/mtc.h). */
    const cae_tensor *mc = cae_params_get(ropt, "mtc:config");
    const int mtc = fo->tangent_dims > 0 && fo->beta > 0;
    const double saved[3] = {mc ? mc->data[0] : 0, mc ? mc->data[1] : 0, mc ? mc->data[2] : 0};
    const double wants[3] = {mtc ? (double)fo->tangent_dims : 0, mtc ? (double)(cae_real)fo->beta : 0,
                             mtc ? (double)fo->tangents_every : 0};
    static const char *const names[3] = {"--tangent-prop", "--beta", "--tangents-every"};
    for (int i = 0; i < 3; i++)
        if (saved[i] != wants[i]) {
            fprintf(stderr, "%s: --resume %s: %s is %g, the checkpoint has %g\n", who, path, names[i],
                    wants[i], saved[i]);
            return 2;
        }
    cae_mismatch m;
    cae_train_config at = *tc;
    at.first_epoch = st->epochs_done;
    if (cae_model_info_diff(want, ri, &m) || cae_train_state_diff(&at, st, examples, fo->batch, &m))
        return cli_resume_mismatch(who, path, &m, 0, "--init's");
    if (fo->epochs < st->epochs_done) {
        fprintf(stderr, "%s: --resume %s: --epochs %lld, but %d epochs are done already\n", who,
                path, fo->epochs, st->epochs_done);
        return 2;
    }
    return 0;
}

int cmd_finetune_parse(int argc, char **argv)
{
    finetune_opts fo;
    return finetune_parse_opts(argc, argv, &fo);
}

static int finetune_run(cli_dist *dist, int argc, char **argv);

int cmd_finetune(int argc, char **argv)
{
    cli_dist *dist;
    int rc = cli_dist_start("cae finetune", &dist);
    if (!rc) rc = finetune_run(dist, argc, argv);
    return cli_dist_end(dist, rc);
}

/* One rank's run (every rank's, under mpirun: cli/dist.h). */
static int finetune_run(cli_dist *dist, int argc, char **argv)
{
    const char *who = "cae finetune";
    finetune_opts fo;
    int rc = finetune_parse_opts(argc, argv, &fo), agreed = 0;
    if (rc != CLI_PARSE_RUN) return cli_dist_agree(dist, rc); /* the setup's one agreement */
    cli_use_threads(fo.threads);
    cli_dist_set_timeout(dist, fo.mpi_timeout);
    const int writes = cli_dist_rank(dist) == 0; /* rank 0 writes the files */
    const char *init = fo.init, *data = fo.data, *data_dir = fo.data_dir, *out = fo.out;
    const long long epochs = fo.epochs, batch = fo.batch, patience = fo.patience, limit = fo.limit,
                    threads = fo.threads;
    const unsigned long long seed = fo.seed;
    const double lr = fo.lr, momentum = fo.momentum, wd = fo.wd;

    cae_model_info info;
    cae_params *p = NULL, *opt = NULL;
    cae_splits *s = NULL;
    cae_task *task = NULL;
    cae_mtc *mtcx = NULL;
    char desc[256], rpath[4200];
    cae_error err;
    if ((size_t)snprintf(rpath, sizeof rpath, "%s.resume", out) >= sizeof rpath) {
        fprintf(stderr, "%s: --out %s: the path is too long\n", who, out);
        rc = 2;
        goto done;
    }
    if (writes && (rc = cli_check_out(who, out))) goto done;
    if ((rc = cli_load_checkpoint(who, "--init", init, &info, &p))) goto done;
    if (info.n_layers < 1) {
        fprintf(stderr, "%s: --init %s has no encoder layers\n", who, init);
        rc = 2;
        goto done;
    }
    if ((rc = cli_load_splits(who, data_dir, data, &s))) goto done;
    if ((rc = cli_check_width(who, data, s->train, info.layer[0].n_in, "--init", init))) goto done;
    const int classes = max_classes(s);
    cae_mlp_config m;
    if (info.n_classes > 0) { /* continue a classifier */
        cae_model_info_mlp(&info, &m);
        if (m.n_classes != classes) {
            fprintf(stderr, "%s: --init %s classifies %d classes, --data %s has %d\n", who, init,
                    m.n_classes, data, classes);
            rc = 2;
            goto done;
        }
    }
    if (fo.wd_given || info.n_classes == 0) info.mlp_wd = wd;
    info.kind = CAE_MODEL_MLP;
    info.n_classes = classes;
    cae_model_info_mlp(&info, &m); /* the classifier over --init's stack */
    cae_train_config tc;
    cae_train_config_default(&tc);
    tc.epochs = (int)epochs;
    tc.lr = lr;
    tc.momentum = momentum;
    tc.lr_decay = fo.lr_decay;
    tc.limit = limit;
    tc.seed = seed;
    tc.patience = (int)patience;
    tc.comm = cli_dist_comm(dist); /* before the resume check: the ranks must match */
    /* The run the options describe. */
    cae_model_info want = info;
    snprintf(want.data, sizeof want.data, "%s", data);
    want.seed = seed;
    want.batch = batch;
    want.lr = lr;
    want.momentum = momentum;

    /* Fresh, or the run saved in OUT.resume (--resume). */
    const int64_t examples = limit && limit < s->train->n ? limit : s->train->n;
    int resuming = 0;
    if (fo.resume && cli_exists(rpath)) {
        cae_model_info ri;
        cae_params *rp, *ropt;
        cae_train_state st;
        if ((rc = cli_resume_load(who, rpath, &ri, &rp, &ropt, &st))) goto done;
        if ((rc = resume_check(who, &fo, rpath, &want, &ri, &tc, &st, examples, ropt))) {
            cae_params_free(rp);
            cae_params_free(ropt);
            goto done;
        }
        cae_params_free(p);
        p = rp;
        opt = ropt;
        info = ri;
        cae_model_info_mlp(&ri, &m);
        resuming = 1;
    } else if (fo.resume && cli_exists(out)) {
        fprintf(stderr, "%s: --resume: there is no %s: the run into %s has ended (or another "
                "wrote it)\n", who, rpath, out);
        rc = 2;
        goto done;
    } else if (fo.resume) {
        printf("--resume: no %s yet: starting at epoch 1\n", rpath);
    }
    if (!opt && !(opt = cae_params_new())) {
        fprintf(stderr, "%s: out of memory\n", who);
        rc = 1;
        goto done;
    }
    const int mtc = fo.tangent_dims > 0 && fo.beta > 0; /* beta 0: plain fine-tuning */
    if ((!resuming && cae_mlp_params(p, &m, seed, &err)) ||
        !(task = mtc ? cae_mtc_task(p, &m, (int)fo.tangent_dims, fo.beta, batch, seed, (int)threads, &err)
                     : cae_task_finetune(p, &m, batch, seed, (int)threads, &err)) ||
        (resuming && cae_task_resume(task, &info, &err))) {
        fprintf(stderr, "%s: --init %s: %s\n", who, init, err.msg);
        rc = 1;
        goto done;
    }
    if (mtc) {
        cae_tangent_config tcf;
        cae_tangent_config_default(&tcf);
        tcf.dims = (int)fo.tangent_dims;
        tcf.seed = seed;
        tcf.threads = (int)threads;
        if (!(mtcx = cae_mtc_new(task, p, &m, s->train, limit, &tcf, (int)fo.tangents_every, &err))) {
            fprintf(stderr, "%s: --tangent-prop: %s\n", who, err.msg);
            rc = 1;
            goto done;
        }
        tc.aux = cae_mtc_aux;
        tc.aux_ctx = mtcx;
    }
    const int first_epoch = resuming ? info.epochs_done : 0;
    snprintf(info.data, sizeof info.data, "%s", data);
    info.epochs_done = first_epoch;
    info.seed = seed;
    info.batch = batch;
    info.lr = lr;
    info.momentum = momentum;
    info.has_rng = resuming;
    printf("finetune %s on %s: %lld examples, batch %lld, lr %g, up to %lld epochs, patience %lld\n",
           cli_describe_stack(&info, desc, sizeof desc), data,
           (long long)examples, batch, lr, epochs, patience);
    if (resuming) printf("resuming %s after epoch %d\n", rpath, first_epoch);
    cli_dist_describe(dist, threads, batch);
    fflush(stdout);
    if (writes && !resuming && unlink(rpath) && errno != ENOENT) {
        fprintf(stderr, "%s: cannot remove the stale %s: %s\n", who, rpath, strerror(errno));
        rc = 1;
        goto done;
    }

    tc.first_epoch = first_epoch;
    tc.opt = opt;
    tc.check_every = (int)(fo.check_every > INT32_MAX ? INT32_MAX : fo.check_every);
    finetune_ctx ctx = {.who = who, .out = out, .resume = rpath, .dist = dist, .info = &info,
                        .p = p, .opt = opt, .task = task};
    agreed = 1; /* every rank is set up (or stops here with the one that is not) */
    if ((rc = cli_dist_agree(dist, 0))) goto done;
    cli_dist_watch(dist, rpath, out);
    if (resuming) cli_dist_saved(dist, first_epoch);
    cli_progress_init(&ctx.pg, (int)epochs);
    cae_train_hooks hooks = {.on_epoch = on_epoch, .on_batch = on_batch, .ctx = &ctx};
    cae_train_result res;
    const double t0 = cli_now();
    const cae_status trc = cae_train(task, s->train, s->valid, &tc, &hooks, &res, &err);
    cli_progress_clear(&ctx.pg);
    if (trc) {
        fprintf(stderr, "%s: %s\n", who, err.msg);
        rc = 1;
        goto done;
    }
    info.epochs_done = res.epochs_run;
    rc = ctx.save_failed || (writes && cli_save_run(who, out, &info, task, NULL));
    if (!rc && writes && unlink(rpath) && errno != ENOENT)
        fprintf(stderr, "%s: warning: cannot remove %s: %s\n", who, rpath, strerror(errno));
    if ((rc = cli_dist_agree(dist, rc))) goto done; /* one process: rc */
    printf("best epoch %d of %d: valid error %.2f%%\n", res.best_epoch, res.epochs_run,
           100 * res.best_valid_metric);
    if (!fo.no_test) {
        double e, ci;
        const cae_comm *comm = cli_dist_comm(dist);
        if (!comm && cae_classify_error(task, s->test, &e, &ci)) {
            fprintf(stderr, "%s: test set of %s: %s\n", who, data, cae_task_error(task));
            rc = 1;
            goto done;
        }
        if (comm) { /* every rank evaluates its share (cae_classify_error's interval) */
            double loss;
            if (cae_task_evaluate_comm(task, s->test, comm, &loss, &e, &err)) {
                fprintf(stderr, "%s: test set of %s: %s\n", who, data, err.msg);
                rc = 1;
                goto done;
            }
            ci = s->test->n ? 1.96 * sqrt(e * (1 - e) / (double)s->test->n) : 0;
        }
        printf("test error %.2f%% +- %.2f%% (95%% interval, %lld examples)\n", 100 * e, 100 * ci,
               (long long)s->test->n);
    }
    if (mtcx) printf("tangents: %.1f s of the %.1f s\n", cae_mtc_seconds(mtcx), cli_now() - t0);
    printf("wrote %s in %.1f s\n", out, cli_now() - t0);
    rc = 0;
done:
    if (!agreed) rc = cli_dist_agree(dist, rc);
    cae_mtc_free(mtcx);
    cae_task_free(task);
    cae_splits_free(s);
    cae_params_free(p);
    cae_params_free(opt);
    return rc;
}
