/* `cae pretrain` — train one auto-encoder (or RBM) layer, alone or stacked
 * on the layers of an existing checkpoint (--on), and write a checkpoint
 * holding every layer. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cae/metrics.h"
#include "cli_common.h"
#include "commands.h"
#include "dist.h"
#include "parse.h"

static const char *pretrain_usage =
    "usage: cae pretrain --model KIND --data SET --out CKPT [options]\n"
    "\n"
    "Train one layer: KIND is ae, ae-wd, dae-g, dae-b, cae, cae-h or rbm; SET is mnist,\n"
    "fashion or a variation (basic, rot, bg-rand, bg-img, bg-img-rot, rect,\n"
    "rect-img, convex). Objectives are summed over the inputs and averaged over\n"
    "the batch (lambda multiplies the per-example ||J||_F^2).\n"
    "\n"
    "  --data-dir DIR   where the data sets are (default $CAE_DATA_DIR or ./data)\n"
    "  --hidden N       hidden units (default 1000)\n"
    "  --act A          encoder activation: sigmoid (default), tanh, relu, softplus\n"
    "  --untied         separate decoder weights (default tied: W^T)\n"
    "  --composed       cae: the penalty composed from primitive ops (default fused)\n"
    "  --lambda X       cae: penalty weight (default 0.1)\n"
    "  --penalty P      cae: exact (default: the closed form, fused or --composed)\n"
    "                   or probes (its unbiased estimate from --probes random\n"
    "                   directions per example by forward mode: any activation)\n"
    "  --probes K       probes per example (default 4; implies --penalty probes)\n"
    "  --probe-kind P   gaussian (default) or rademacher\n"
    "  --end-to-end     cae with --on: penalize the Jacobian of the whole encoder\n"
    "                   w.r.t. the input (layers below frozen; trains on the data,\n"
    "                   not on codes; probes), not the new layer's alone\n"
    "  --gamma G        cae-h: weight of E||J(x) - J(x~)||_F^2 (default 0.1),\n"
    "                   x~ = x + N(0, sigma^2), estimated with the probes\n"
    "  --sigma S        cae-h: corruption standard deviation (default 0.1)\n"
    "  --corruptions C  cae-h: corrupted copies per example (default 4)\n"
    "  --noise X        dae-g: noise sigma (0.3); dae-b: fraction of inputs zeroed (0.25)\n"
    "  --wd X           weight decay on W (default 1e-4 for ae-wd, else 0)\n"
    "  --cd-k K         rbm: Gibbs steps per update (default 1)\n"
    "  --pcd            rbm: persistent contrastive divergence\n"
    "  --lr X           learning rate (default 0.01)\n"
    "  --momentum X     momentum in [0, 1) (default 0)\n"
    "  --lr-decay D     learning rate of epoch e (0-based): lr / (1 + D e) (default 0)\n"
    "  --batch B        minibatch size (default 20)\n"
    "  --epochs N       epochs (default 20)\n"
    "  --limit N        use the first N training examples (default all)\n"
    "  --seed S         initialisation, shuffling and noise (default 1)\n"
    "  --threads T      OpenMP threads (default: OpenMP's choice)\n"
    "  --on CKPT        stack: train layer k+1 on the codes of CKPT's k layers\n"
    "  --out CKPT       the checkpoint to write (after every epoch, atomically)\n"
    "  --resume         continue the run saved in --out CKPT (the same options;\n"
    "                   --epochs may grow) from its last epoch, exactly; without\n"
    "                   CKPT yet, start at epoch 1\n"
    "  --check-every N  under mpirun: compare the ranks' parameters every N steps\n"
    "                   too (default 100; 0: at the start and after each epoch)\n"
    "  --mpi-timeout S  under mpirun: a rank that waits S seconds for the others\n"
    "                   stops every rank (default 20; 0: wait forever)\n"
    "\n"
    "Data-parallel: `mpirun -np N cae pretrain ...` trains as N ranks, --batch\n"
    "being the global batch (each rank takes its slice; the result is one\n"
    "process's with that batch up to the order of the sums, docs/DETERMINISM.md);\n"
    "rank 0 prints and writes CKPT, and --resume needs the same N.\n"
    "\n"
    "The checkpoint also holds the optimizer state (momentum velocities) and the\n"
    "RNG, so --resume continues bit for bit (docs/DETERMINISM.md).\n"
    "\n"
    "Each epoch prints the training objective, the validation reconstruction\n"
    "cross-entropy (rbm: the free-energy gap and the mean-field reconstruction)\n"
    "and the time; on a terminal a progress bar runs on stderr.\n";

typedef struct pretrain_ctx {
    const char *who, *out;
    cli_dist *dist;
    cae_model_info *info;
    cae_params *p, *opt;
    cae_task *task;
    cli_progress pg;
    int save_failed;
} pretrain_ctx;

static void on_batch(int epoch, int64_t done, int64_t total, void *ctx)
{
    cli_progress_batch(&((pretrain_ctx *)ctx)->pg, epoch, done, total);
    cli_dist_progress(((pretrain_ctx *)ctx)->dist, epoch, done);
}

static int on_epoch(const cae_epoch_report *r, void *vctx)
{
    pretrain_ctx *c = vctx;
    cli_progress_clear(&c->pg);
    const double rate = r->seconds > 0 ? (double)r->examples / r->seconds : 0;
    if (c->info->kind == CAE_MODEL_RBM)
        printf("epoch %3d/%d  objective %10.4f  valid free-energy gap %9.4f  recon %9.4f  %6.1f s  %6.0f ex/s\n",
               r->epoch, r->epochs, r->objective, r->valid_loss, r->valid_metric, r->seconds, rate);
    else
        printf("epoch %3d/%d  objective %10.4f  valid recon %10.4f  %6.1f s  %6.0f ex/s\n", r->epoch,
               r->epochs, r->objective, r->valid_metric, r->seconds, rate);
    fflush(stdout);
    c->info->epochs_done = r->epoch;
    if (cli_dist_rank_checkpoint(c->dist, c->who, c->info, c->task, c->opt) ||
        (cli_dist_rank(c->dist) == 0 && cli_save_run(c->who, c->out, c->info, c->task, c->opt))) {
        c->save_failed = 1;
        return 1;
    }
    cli_dist_saved(c->dist, r->epoch);
    return 0;
}

/* Options that only make sense for some kinds. */
static int check_kind_options(const char *who, cae_model_kind kind, cli_opt *o, int n)
{
    static const struct { const char *opt; unsigned kinds; const char *what; } only[] = {
        {"--lambda", 1u << CAE_MODEL_CAE, "cae"},
        {"--composed", 1u << CAE_MODEL_CAE, "cae"},
        {"--penalty", 1u << CAE_MODEL_CAE, "cae and cae-h"},
        {"--probes", 1u << CAE_MODEL_CAE, "cae and cae-h"},
        {"--probe-kind", 1u << CAE_MODEL_CAE, "cae and cae-h"},
        {"--end-to-end", 1u << CAE_MODEL_CAE, "cae"},
        {"--noise", 1u << CAE_MODEL_DAE_G | 1u << CAE_MODEL_DAE_B, "dae-g and dae-b"},
        {"--cd-k", 1u << CAE_MODEL_RBM, "rbm"},
        {"--pcd", 1u << CAE_MODEL_RBM, "rbm"},
    };
    for (size_t i = 0; i < sizeof only / sizeof only[0]; i++)
        if (cli_opt_get(o, n, only[i].opt)->given && !(only[i].kinds >> kind & 1)) {
            fprintf(stderr, "%s: %s applies to --model %s only, not %s\n", who, only[i].opt,
                    only[i].what, cae_model_kind_name(kind));
            return 2;
        }
    return 0;
}

typedef struct pretrain_opts {
    const char *model, *data, *data_dir, *act_name, *on, *out, *penalty, *probe_kind;
    long long hidden, cd_k, batch, epochs, limit, threads, probes, corruptions, check_every;
    unsigned long long seed;
    int untied, composed, pcd, resume, end_to_end, cae_h;
    double lambda, noise, wd, lr, momentum, gamma, sigma, lr_decay, mpi_timeout;
    int lambda_given, noise_given, wd_given, probes_given;
    cae_model_kind kind;
    cae_act act;
} pretrain_opts;

/* The new layer's configuration from the options (n_in: its input width). */
static void layer_config(const pretrain_opts *po, int64_t n_in, cae_layer_config *lc)
{
    cae_layer_config_default(lc, po->kind, n_in, po->hidden);
    lc->act = po->act;
    lc->untied = po->untied;
    lc->composed = po->composed;
    lc->persistent = po->pcd;
    lc->cd_k = (int)po->cd_k;
    if (po->lambda_given) lc->lambda = po->lambda;
    if (po->noise_given) lc->noise = po->noise;
    if (po->wd_given) lc->wd = po->wd;
    if (!strcmp(po->penalty, "probes") || po->probes_given || po->cae_h) {
        lc->probes = (int)po->probes;
        lc->probe_kind = strcmp(po->probe_kind, "rademacher") ? CAE_PROBE_GAUSSIAN
                                                              : CAE_PROBE_RADEMACHER;
    }
    lc->end_to_end = po->end_to_end;
    if (po->cae_h) {
        lc->gamma = po->gamma;
        lc->sigma = po->sigma;
        lc->corruptions = (int)po->corruptions;
    }
}

/* Every check that needs no file: CLI_PARSE_RUN, or the exit status. */
static int pretrain_parse_opts(int argc, char **argv, pretrain_opts *po)
{
    const char *who = "cae pretrain";
    *po = (pretrain_opts){.data_dir = cli_default_data_dir(), .act_name = "sigmoid", .hidden = 1000,
                          .cd_k = 1, .batch = 20, .epochs = 20, .seed = 1, .lr = 0.01,
                          .penalty = "exact", .probe_kind = "gaussian", .probes = 4,
                          .gamma = 0.1, .sigma = 0.1, .corruptions = 4, .check_every = 100,
                          .mpi_timeout = 20};
    cli_opt o[] = {
        {"--model", CLI_STR, &po->model, 0, 0, 0, 0},
        {"--data", CLI_STR, &po->data, 0, 0, 0, 0},
        {"--data-dir", CLI_STR, &po->data_dir, 0, 0, 0, 0},
        {"--hidden", CLI_INT, &po->hidden, 1, 1 << 20, 0, 0},
        {"--act", CLI_STR, &po->act_name, 0, 0, 0, 0},
        {"--untied", CLI_FLAG, &po->untied, 0, 0, 0, 0},
        {"--composed", CLI_FLAG, &po->composed, 0, 0, 0, 0},
        {"--lambda", CLI_REAL, &po->lambda, 0, 1e9, 0, 0},
        {"--penalty", CLI_STR, &po->penalty, 0, 0, 0, 0},
        {"--probes", CLI_INT, &po->probes, 1, 4096, 0, 0},
        {"--probe-kind", CLI_STR, &po->probe_kind, 0, 0, 0, 0},
        {"--end-to-end", CLI_FLAG, &po->end_to_end, 0, 0, 0, 0},
        {"--gamma", CLI_REAL, &po->gamma, 0, 1e9, 0, 0},
        {"--sigma", CLI_REAL, &po->sigma, 0, 1e3, 0, 0},
        {"--corruptions", CLI_INT, &po->corruptions, 1, 1024, 0, 0},
        {"--noise", CLI_REAL, &po->noise, 0, 1e3, 0, 0},
        {"--wd", CLI_REAL, &po->wd, 0, 1e9, 0, 0},
        {"--cd-k", CLI_INT, &po->cd_k, 1, 1000, 0, 0},
        {"--pcd", CLI_FLAG, &po->pcd, 0, 0, 0, 0},
        {"--lr", CLI_REAL, &po->lr, 1e-12, 1e6, 0, 0},
        {"--momentum", CLI_REAL, &po->momentum, 0, 1, 1, 0},
        {"--lr-decay", CLI_REAL, &po->lr_decay, 0, 1e6, 0, 0},
        {"--batch", CLI_INT, &po->batch, 1, 1 << 20, 0, 0},
        {"--epochs", CLI_INT, &po->epochs, 1, 1000000, 0, 0},
        {"--limit", CLI_INT, &po->limit, 0, 1e12, 0, 0},
        {"--seed", CLI_U64, &po->seed, 0, 0, 0, 0},
        {"--threads", CLI_INT, &po->threads, 0, 256, 0, 0},
        {"--on", CLI_STR, &po->on, 0, 0, 0, 0},
        {"--out", CLI_STR, &po->out, 0, 0, 0, 0},
        {"--resume", CLI_FLAG, &po->resume, 0, 0, 0, 0},
        {"--check-every", CLI_INT, &po->check_every, 0, 1e12, 0, 0},
        {"--mpi-timeout", CLI_REAL, &po->mpi_timeout, 0, 1e6, 0, 0},
    };
    const int n = (int)(sizeof o / sizeof o[0]);
    int rc = cli_parse(who, pretrain_usage, argc, argv, o, n);
    if (rc != CLI_PARSE_RUN) return rc;
    if ((rc = cli_require(who, cli_opt_get(o, n, "--model"))) || (rc = cli_require(who, cli_opt_get(o, n, "--data"))) ||
        (rc = cli_require(who, cli_opt_get(o, n, "--out"))))
        return rc;
    po->cae_h = !strcmp(po->model, "cae-h"); /* a cae with its higher-order term */
    const int kind = po->cae_h ? CAE_MODEL_CAE : cae_model_kind_parse(po->model);
    if (kind < 0 || kind == CAE_MODEL_MLP) {
        fprintf(stderr, "%s: bad value for --model: '%s' (expected ae, ae-wd, dae-g, dae-b, cae, "
                "cae-h or rbm)\n", who, po->model);
        return 2;
    }
    if (strcmp(po->penalty, "exact") && strcmp(po->penalty, "probes")) {
        fprintf(stderr, "%s: bad value for --penalty: '%s' (expected exact or probes)\n", who,
                po->penalty);
        return 2;
    }
    if (strcmp(po->probe_kind, "gaussian") && strcmp(po->probe_kind, "rademacher")) {
        fprintf(stderr, "%s: bad value for --probe-kind: '%s' (expected gaussian or rademacher)\n",
                who, po->probe_kind);
        return 2;
    }
    static const char *const cae_h_only[] = {"--gamma", "--sigma", "--corruptions"};
    for (int i = 0; i < 3; i++)
        if (!po->cae_h && cli_opt_get(o, n, cae_h_only[i])->given) {
            fprintf(stderr, "%s: %s applies to --model cae-h only\n", who, cae_h_only[i]);
            return 2;
        }
    po->probes_given = cli_opt_get(o, n, "--probes")->given;
    if (!strcmp(po->penalty, "exact") && cli_opt_get(o, n, "--penalty")->given && po->probes_given) {
        fprintf(stderr, "%s: --probes with --penalty exact: the exact penalty has no probes\n", who);
        return 2;
    }
    if (po->end_to_end && !cli_opt_get(o, n, "--on")->given) {
        fprintf(stderr, "%s: --end-to-end penalizes the stack's Jacobian: it needs --on\n", who);
        return 2;
    }
    if (po->end_to_end) po->probes_given = 1; /* estimated with probes */
    const int act = cae_act_parse(po->act_name);
    if (act < 0 || act == CAE_ACT_LINEAR) {
        fprintf(stderr, "%s: bad value for --act: '%s' (expected sigmoid, tanh, relu or softplus)\n", who,
                po->act_name);
        return 2;
    }
    po->kind = (cae_model_kind)kind;
    po->act = (cae_act)act;
    if ((rc = check_kind_options(who, po->kind, o, n))) return rc;
    po->lambda_given = cli_opt_get(o, n, "--lambda")->given;
    po->noise_given = cli_opt_get(o, n, "--noise")->given;
    po->wd_given = cli_opt_get(o, n, "--wd")->given;
    /* The layer configuration with a placeholder input width. */
    cae_layer_config lc;
    layer_config(po, 1, &lc);
    cae_error e;
    if (cae_layer_config_check(&lc, &e)) {
        fprintf(stderr, "%s: bad layer configuration: %s\n", who, e.msg);
        return 2;
    }
    return CLI_PARSE_RUN;
}

/* --resume: the run saved in --out (ri, rp, st) must be the one the options
 * describe (want: the layers below from --on, or none, and the new layer)
 * over `examples` training examples, with --on's tensors unchanged. 0, or 2
 * after a line naming the option. */
static int resume_check(const char *who, const pretrain_opts *po, const cae_model_info *want,
                        const cae_params *below_p, const cae_model_info *ri, const cae_params *rp,
                        const cae_train_config *tc, const cae_train_state *st, int64_t examples)
{
    const char *path = po->out;
    if (ri->kind == CAE_MODEL_MLP || ri->n_layers != want->n_layers) {
        fprintf(stderr, "%s: --resume %s: the checkpoint %s, %s\n", who, path,
                ri->kind == CAE_MODEL_MLP ? "is a fine-tuned classifier" : "has a different stack",
                want->n_layers > 1 ? "expected --on's layers and one more" : "expected one layer (no --on)");
        return 2;
    }
    for (int i = 0; i < cae_params_count(below_p); i++) {
        const cae_tensor *a = cae_params_at(below_p, i), *b = cae_params_get(rp, a->name);
        if (!b || b->size != a->size || memcmp(a->data, b->data, (size_t)a->size * sizeof(cae_real))) {
            fprintf(stderr, "%s: --resume %s: tensor '%s' differs from --on %s's\n", who, path,
                    a->name, po->on);
            return 2;
        }
    }
    cae_mismatch m;
    cae_train_config at = *tc;
    at.first_epoch = st->epochs_done;
    if (cae_model_info_diff(want, ri, &m) || cae_train_state_diff(&at, st, examples, po->batch, &m))
        return cli_resume_mismatch(who, path, &m, want->n_layers, "--on's");
    if (po->epochs < st->epochs_done) {
        fprintf(stderr, "%s: --resume %s: --epochs %lld, but %d epochs are done already\n", who,
                path, po->epochs, st->epochs_done);
        return 2;
    }
    return 0;
}

int cmd_pretrain_parse(int argc, char **argv)
{
    pretrain_opts po;
    return pretrain_parse_opts(argc, argv, &po);
}

static int pretrain_run(cli_dist *dist, int argc, char **argv);

int cmd_pretrain(int argc, char **argv)
{
    cli_dist *dist;
    int rc = cli_dist_start("cae pretrain", &dist);
    if (!rc) rc = pretrain_run(dist, argc, argv);
    return cli_dist_end(dist, rc);
}

/* One rank's run (every rank's, under mpirun: cli/dist.h). */
static int pretrain_run(cli_dist *dist, int argc, char **argv)
{
    const char *who = "cae pretrain";
    pretrain_opts po;
    int rc = pretrain_parse_opts(argc, argv, &po), agreed = 0;
    if (rc != CLI_PARSE_RUN) return cli_dist_agree(dist, rc); /* the setup's one agreement */
    cli_use_threads(po.threads);
    cli_dist_set_timeout(dist, po.mpi_timeout);
    const char *data = po.data, *on = po.on, *out = po.out;
    const long long limit = po.limit, threads = po.threads, batch = po.batch, epochs = po.epochs;
    const unsigned long long seed = po.seed;
    const double lr = po.lr, momentum = po.momentum;

    /* The layers below (--on), then the data. */
    cae_model_info info;
    memset(&info, 0, sizeof info);
    cae_params *p = NULL, *opt = NULL;
    cae_splits *s = NULL;
    cae_dataset *codes[2] = {NULL, NULL};
    cae_task *task = NULL;
    cae_error err;
    if (cli_dist_rank(dist) == 0 && (rc = cli_check_out(who, out))) goto done;
    if (on) {
        if ((rc = cli_load_checkpoint(who, "--on", on, &info, &p))) goto done;
        if (info.n_classes > 0 || info.kind == CAE_MODEL_MLP) {
            fprintf(stderr, "%s: --on %s is a fine-tuned classifier: stack on a pretrained encoder\n", who, on);
            rc = 2;
            goto done;
        }
        if (info.n_layers < 1 || info.n_layers >= CAE_MAX_LAYERS) {
            fprintf(stderr, "%s: --on %s has %d layers: can stack on 1..%d\n", who, on, info.n_layers,
                    CAE_MAX_LAYERS - 1);
            rc = 2;
            goto done;
        }
    } else if (!(p = cae_params_new())) {
        fprintf(stderr, "%s: out of memory\n", who);
        rc = 1;
        goto done;
    }
    if ((rc = cli_load_splits(who, po.data_dir, data, &s))) goto done;
    if (on && (rc = cli_check_width(who, data, s->train, info.layer[0].n_in, "--on", on))) goto done;
    const int layer = info.n_layers + 1;
    const cae_dataset *train = s->train, *valid = s->valid;
    /* The new layer's input: the codes of the layers below; with an
     * end-to-end penalty the data itself, through the frozen layers. */
    const int64_t n_in = on ? info.layer[info.n_layers - 1].n_hidden : train->dim;
    if (on && !po.end_to_end) {
        const double t0 = cli_now();
        if (cae_encode_dataset(p, info.n_layers, info.layer, s->train, limit, (int)threads, &codes[0],
                               &err) ||
            cae_encode_dataset(p, info.n_layers, info.layer, s->valid, 0, (int)threads, &codes[1],
                               &err)) {
            fprintf(stderr, "%s: computing the codes of --on %s: %s\n", who, on, err.msg);
            rc = 1;
            goto done;
        }
        train = codes[0];
        valid = codes[1];
        printf("codes of layers 1..%d: %lld training and %lld validation examples of %lld units (%.1f s)\n",
               info.n_layers, (long long)train->n, (long long)valid->n, (long long)train->dim,
               cli_now() - t0);
    }

    /* The new layer: fresh, or the run saved in --out (--resume). */
    cae_layer_config lc;
    layer_config(&po, n_in, &lc);
    const int64_t examples = limit && limit < train->n ? limit : train->n;
    cae_train_config tc;
    cae_train_config_default(&tc);
    tc.epochs = (int)epochs;
    tc.lr = lr;
    tc.momentum = momentum;
    tc.lr_decay = po.lr_decay;
    tc.limit = on && !po.end_to_end ? 0 : limit; /* codes were made from the first limit */
    tc.seed = seed;
    tc.comm = cli_dist_comm(dist); /* before the resume check: the ranks must match */
    /* The run the options describe. */
    cae_model_info want = info;
    want.layer[layer - 1] = lc;
    want.n_layers = layer;
    want.kind = lc.kind;
    want.n_classes = 0;
    snprintf(want.data, sizeof want.data, "%s", data);
    want.seed = seed;
    want.batch = batch;
    want.lr = lr;
    want.momentum = momentum;
    int resuming = 0;
    if (po.resume && !cli_exists(out)) {
        printf("--resume: no %s yet: starting at epoch 1\n", out);
    } else if (po.resume) {
        cae_model_info ri;
        cae_params *rp, *ropt;
        cae_train_state st;
        if ((rc = cli_resume_load(who, out, &ri, &rp, &ropt, &st))) goto done;
        if ((rc = resume_check(who, &po, &want, p, &ri, rp, &tc, &st, examples))) {
            cae_params_free(rp);
            cae_params_free(ropt);
            goto done;
        }
        cae_params_free(p);
        p = rp;
        opt = ropt;
        info = ri;
        resuming = 1;
    }
    if (!opt && !(opt = cae_params_new())) {
        fprintf(stderr, "%s: out of memory\n", who);
        rc = 1;
        goto done;
    }
    if ((!resuming && cae_stack_push(p, &info, &lc, seed, &err)) ||
        !(task = cae_task_pretrain_stack(p, &info, batch, seed, (int)threads, &err)) ||
        (resuming && cae_task_resume(task, &info, &err))) {
        fprintf(stderr, "%s: layer %d: %s\n", who, layer, err.msg);
        rc = 1;
        goto done;
    }
    const int first_epoch = resuming ? info.epochs_done : 0;
    snprintf(info.data, sizeof info.data, "%s", data);
    info.epochs_done = first_epoch;
    info.seed = seed;
    info.batch = batch;
    info.lr = lr;
    info.momentum = momentum;

    char desc[256];
    printf("pretrain %s layer %d (%s) on %s: %lld examples, batch %lld, lr %g, %lld epoch%s\n",
           cae_model_kind_name(lc.kind), layer, cli_describe_stack(&info, desc, sizeof desc), data,
           (long long)examples, batch, lr, epochs, epochs == 1 ? "" : "s");
    if (lc.kind == CAE_MODEL_CAE) { /* which penalty runs, as the options chose it */
        printf("penalty: lambda %g x ||J||_F^2", lc.lambda);
        if (lc.probes > 0)
            printf(", estimated from %d %s probe%s per example%s", lc.probes,
                   lc.probe_kind == CAE_PROBE_RADEMACHER ? "rademacher" : "gaussian", lc.probes == 1 ? "" : "s",
                   lc.end_to_end ? ", of the whole encoder" : "");
        else
            printf(", exact, %s", lc.composed ? "composed from primitive ops" : "one fused op");
        if (lc.gamma > 0)
            printf("; + gamma %g x E||J(x) - J(x~)||_F^2, x~ = x + N(0, %g^2), %d corruption%s", lc.gamma,
                   lc.sigma, lc.corruptions, lc.corruptions == 1 ? "" : "s");
        printf("\n");
    }
    if (resuming) printf("resuming %s after epoch %d\n", out, first_epoch);
    cli_dist_describe(dist, threads, batch);
    fflush(stdout);
    tc.first_epoch = first_epoch;
    tc.opt = opt;
    tc.check_every = (int)(po.check_every > INT32_MAX ? INT32_MAX : po.check_every);
    pretrain_ctx ctx = {.who = who, .out = out, .dist = dist, .info = &info, .p = p, .opt = opt,
                        .task = task};
    agreed = 1; /* every rank is set up (or stops here with the one that is not) */
    if ((rc = cli_dist_agree(dist, 0))) goto done;
    cli_dist_watch(dist, out, NULL);
    if (resuming) cli_dist_saved(dist, first_epoch);
    cli_progress_init(&ctx.pg, (int)epochs);
    cae_train_hooks hooks = {.on_epoch = on_epoch, .on_batch = on_batch, .ctx = &ctx};
    cae_train_result res;
    const double t0 = cli_now();
    const cae_status trc = cae_train(task, train, valid, &tc, &hooks, &res, &err);
    cli_progress_clear(&ctx.pg);
    if (trc) {
        fprintf(stderr, "%s: %s%s\n", who, err.msg, info.epochs_done ? " (the checkpoint holds the last good epoch)" : "");
        rc = 1;
        goto done;
    }
    if (ctx.save_failed || (cli_dist_rank(dist) == 0 && cli_save_run(who, out, &info, task, opt))) {
        rc = 1;
        goto done;
    }
    printf("wrote %s: %s %s, %d layer%s, %d epoch%s in %.1f s\n", out, cae_model_kind_name(lc.kind),
           cli_describe_stack(&info, desc, sizeof desc), info.n_layers, info.n_layers > 1 ? "s" : "",
           res.epochs_run, res.epochs_run > 1 ? "s" : "", cli_now() - t0);
    rc = 0;
done:
    if (!agreed) rc = cli_dist_agree(dist, rc);
    cae_task_free(task);
    cae_dataset_free(codes[0]);
    cae_dataset_free(codes[1]);
    cae_splits_free(s);
    cae_params_free(p);
    cae_params_free(opt);
    return rc;
}
