/* One experiment run of `cae reproduce`: greedy pretraining of a stack,
 * the encoder's measurements on the validation set, fine-tuning with early
 * stopping, the test error. Everything a run produces lives in
 * OUT/runs/NAME/; result.txt is written last (atomically), so a run with a
 * result is finished and is never retrained. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cae/analysis.h"
#include "cae/checkpoint.h"
#include "cae/metrics.h"
#include "cae/train.h"
#include "cli_common.h"
#include "reproduce.h"

enum { MAX_LOG = 2048 };

static const double grid_wd[] = {1e-4, 1e-3, 1e-5, 1e-2};
static const double grid_dae_g[] = {0.3, 0.1, 0.5, 0.05};
static const double grid_dae_b[] = {0.25, 0.1, 0.5, 0.4};
static const double grid_cae[] = {0.1, 0.3, 0.03, 1.0};
static const double grid_none[] = {0};

const char *rp_hyper_name(cae_model_kind kind)
{
    switch (kind) {
    case CAE_MODEL_AE_WD: return "wd";
    case CAE_MODEL_DAE_G:
    case CAE_MODEL_DAE_B: return "noise";
    case CAE_MODEL_CAE: return "lambda";
    default: return "-";
    }
}

int rp_grid(cae_model_kind kind, const double **values)
{
    switch (kind) {
    case CAE_MODEL_AE_WD: *values = grid_wd; return 4;
    case CAE_MODEL_DAE_G: *values = grid_dae_g; return 4;
    case CAE_MODEL_DAE_B: *values = grid_dae_b; return 4;
    case CAE_MODEL_CAE: *values = grid_cae; return 4;
    default: *values = grid_none; return 1;
    }
}

void rp_run_name(const rp_spec *s, char *buf, size_t len)
{
    int n = snprintf(buf, len, "%s-%s", s->data, cae_model_kind_name(s->kind));
    if (strcmp(rp_hyper_name(s->kind), "-") && n > 0 && (size_t)n < len)
        n += snprintf(buf + n, len - (size_t)n, "-%g", s->hyper);
    if (s->n_layers > 1 && n > 0 && (size_t)n < len)
        snprintf(buf + n, len - (size_t)n, "-L%d", s->n_layers);
}

int rp_mkdirs(const char *path)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *q = tmp + 1; *q; q++) {
        if (*q != '/') continue;
        *q = 0;
        if (mkdir(tmp, 0777) && errno != EEXIST) return -1;
        *q = '/';
    }
    return (mkdir(tmp, 0777) && errno != EEXIST) ? -1 : 0;
}

/* ---------------------------------------------------------------- cache */

static const char *const result_keys[] = {"valid_error", "test_error", "test_ci", "jac_norm",
                                          "jac_sqnorm",  "jac_entry",  "sat",     "recon",
                                          "seconds",     "epochs_ft"};
enum { N_KEYS = sizeof result_keys / sizeof result_keys[0] };

static double *result_field(rp_result *r, int k)
{
    double *f[N_KEYS - 1] = {&r->valid_error, &r->test_error, &r->test_ci, &r->jac_norm,
                             &r->jac_sqnorm,  &r->jac_entry,  &r->sat,     &r->recon,
                             &r->seconds};
    return k < N_KEYS - 1 ? f[k] : NULL;
}

static int result_load(const char *path, rp_result *r)
{
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char key[64];
    double v;
    int seen = 0;
    while (fscanf(f, "%63s %lf", key, &v) == 2) {
        for (int k = 0; k < N_KEYS; k++) {
            if (strcmp(key, result_keys[k])) continue;
            if (k == N_KEYS - 1)
                r->epochs_ft = (int)v;
            else
                *result_field(r, k) = v;
            seen |= 1 << k;
        }
    }
    fclose(f);
    return seen == (1 << N_KEYS) - 1 ? 0 : -1;
}

static int result_save(const char *path, rp_result *r)
{
    char tmp[4500];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f) return -1;
    for (int k = 0; k < N_KEYS; k++)
        fprintf(f, "%s %.10g\n", result_keys[k], k == N_KEYS - 1 ? r->epochs_ft : *result_field(r, k));
    if (fclose(f) || rename(tmp, path)) {
        remove(tmp);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------ data cache */

/* The program keeps the last loaded data set (runs come grouped by set). */
static struct {
    char key[4200];
    cae_splits *s;
} loaded;

static cae_splits *splits_for(const rp_ctx *c, const rp_spec *s)
{
    char key[4200];
    snprintf(key, sizeof key, "%s|%s", s->data_dir, s->data);
    if (loaded.s && !strcmp(loaded.key, key)) return loaded.s;
    cae_splits_free(loaded.s);
    loaded.s = NULL;
    if (cli_load_splits(c->who, s->data_dir, s->data, &loaded.s)) return NULL;
    snprintf(loaded.key, sizeof loaded.key, "%s", key);
    return loaded.s;
}

/* -------------------------------------------------------------- training */

typedef struct log_ctx {
    int n;
    double row[MAX_LOG][3];
    int verbose;
    const char *what;
} log_ctx;

static int on_epoch(const cae_epoch_report *r, void *vctx)
{
    log_ctx *l = vctx;
    if (l->n < MAX_LOG) {
        l->row[l->n][0] = r->epoch;
        l->row[l->n][1] = r->objective;
        l->row[l->n][2] = r->valid_metric;
        l->n++;
    }
    if (l->verbose)
        printf("    %s epoch %3d/%d  objective %9.4f  valid %9.4f  %5.1f s\n", l->what, r->epoch,
               r->epochs, r->objective, r->valid_metric, r->seconds);
    return 0;
}

static void write_log(const rp_ctx *c, const char *dir, const char *file, const log_ctx *l,
                      const char *valid_name)
{
    char path[4300];
    cae_error err;
    snprintf(path, sizeof path, "%s/%.64s", dir, file);
    const char *names[3] = {"epoch", "objective", valid_name};
    if (cae_table_write(path, NULL, 3, names, l->n, &l->row[0][0], &err))
        fprintf(stderr, "%s: %s\n", c->who, err.msg);
}

static void layer_config(const rp_ctx *c, const rp_spec *s, int64_t n_in, cae_layer_config *lc)
{
    cae_layer_config_default(lc, s->kind, n_in, c->b->hidden);
    switch (s->kind) {
    case CAE_MODEL_AE_WD: lc->wd = s->hyper; break;
    case CAE_MODEL_DAE_G:
    case CAE_MODEL_DAE_B: lc->noise = s->hyper; break;
    case CAE_MODEL_CAE: lc->lambda = s->hyper; break;
    default: break;
    }
}

int rp_run(const rp_ctx *c, const rp_spec *s, rp_result *r)
{
    char name[256], dir[4200], path[4400];
    cae_error err;
    rp_run_name(s, name, sizeof name);
    snprintf(dir, sizeof dir, "%s/runs/%s", c->out, name);
    snprintf(path, sizeof path, "%s/result.txt", dir);
    memset(r, 0, sizeof *r);
    if (!result_load(path, r)) {
        printf("  %-28s cached\n", name);
        return 0;
    }
    if (rp_mkdirs(dir)) {
        fprintf(stderr, "%s: cannot create %s: %s\n", c->who, dir, strerror(errno));
        return 1;
    }
    cae_splits *sp = splits_for(c, s);
    if (!sp) return 1;
    const double t0 = cli_now();
    const rp_budget *b = c->b;
    const int64_t nv = b->eval_limit && b->eval_limit < sp->valid->n ? b->eval_limit : sp->valid->n;
    const int64_t nt = b->eval_limit && b->eval_limit < sp->test->n ? b->eval_limit : sp->test->n;
    cae_dataset *valid = cae_dataset_view(sp->valid, 0, nv), *test = cae_dataset_view(sp->test, 0, nt);
    cae_params *p = cae_params_new();
    cae_model_info info;
    memset(&info, 0, sizeof info);
    cae_dataset *codes[2] = {NULL, NULL};
    cae_task *task = NULL;
    log_ctx *lg = calloc(1, sizeof *lg);
    int rc = 1;
    if (!valid || !test || !p || !lg) {
        fprintf(stderr, "%s: out of memory\n", c->who);
        goto done;
    }
    lg->verbose = c->verbose;
    printf("  %-28s", name);
    fflush(stdout);
    if (c->verbose) printf("\n");
    for (int k = 1; k <= s->n_layers; k++) {
        const cae_dataset *tr = k == 1 ? sp->train : codes[0], *va = k == 1 ? valid : codes[1];
        cae_layer_config lc;
        layer_config(c, s, tr->dim, &lc);
        task = NULL;
        if (cae_stack_push(p, &info, &lc, c->seed, &err) ||
            !(task = cae_task_pretrain(p, k, &lc, 20, c->seed + (uint64_t)k, c->threads, &err))) {
            fprintf(stderr, "%s: %s layer %d: %s\n", c->who, name, k, err.msg);
            goto done;
        }
        cae_train_config tc;
        cae_train_config_default(&tc);
        tc.epochs = b->pre_epochs;
        tc.lr = s->kind == CAE_MODEL_RBM ? 0.05 : 0.01;
        tc.limit = k == 1 ? b->limit : 0;
        tc.seed = c->seed + (uint64_t)k;
        lg->n = 0;
        lg->what = "pretrain";
        cae_train_hooks hooks = {.on_epoch = on_epoch, .ctx = lg};
        cae_train_result tr_res;
        if (cae_train(task, tr, va, &tc, &hooks, &tr_res, &err)) {
            fprintf(stderr, "%s: %s layer %d: %s\n", c->who, name, k, err.msg);
            goto done;
        }
        char file[64];
        snprintf(file, sizeof file, "pretrain-L%d.dat", k);
        write_log(c, dir, file, lg, s->kind == CAE_MODEL_RBM ? "valid_recon_meanfield" : "valid_recon");
        cae_task_free(task);
        task = NULL;
        if (k < s->n_layers) { /* the next layer trains on these codes */
            cae_dataset_free(codes[0]);
            cae_dataset_free(codes[1]);
            codes[0] = codes[1] = NULL;
            if (cae_encode_dataset(p, k, info.layer, sp->train, b->limit, c->threads, &codes[0], &err) ||
                cae_encode_dataset(p, k, info.layer, valid, 0, c->threads, &codes[1], &err)) {
                fprintf(stderr, "%s: %s codes: %s\n", c->who, name, err.msg);
                goto done;
            }
        }
    }
    /* The pretrained encoder's measurements (before any fine-tuning). */
    cae_metrics m;
    cae_metrics_config mc;
    cae_metrics_config_default(&mc);
    mc.threads = c->threads;
    mc.max_examples = s->n_layers > 1 ? 200 : 0;
    if (cae_metrics_compute(p, s->n_layers, info.layer, valid, &mc, &m, &err)) {
        fprintf(stderr, "%s: %s metrics: %s\n", c->who, name, err.msg);
        goto done;
    }
    r->jac_norm = m.jac_norm;
    r->jac_sqnorm = m.jac_sqnorm;
    r->jac_entry = m.jac_per_entry;
    r->sat = m.sat;
    r->recon = m.recon;
    info.kind = s->kind;
    snprintf(info.data, sizeof info.data, "%s", s->data);
    info.seed = c->seed;
    info.batch = 20;
    info.epochs_done = b->pre_epochs;
    snprintf(path, sizeof path, "%s/pretrain.ckpt", dir);
    if (cae_checkpoint_save(path, &info, p, NULL, &err) != CAE_OK) {
        fprintf(stderr, "%s: %s\n", c->who, err.msg);
        goto done;
    }
    r->valid_error = r->test_error = r->test_ci = NAN;
    if (s->finetune) {
        cae_model_info ci = info;
        ci.n_classes = sp->train->n_classes > 1 ? sp->train->n_classes : 2;
        cae_mlp_config mlp;
        cae_model_info_mlp(&ci, &mlp);
        if (cae_mlp_params(p, &mlp, c->seed, &err) ||
            !(task = cae_task_finetune(p, &mlp, 20, c->seed + 99, c->threads, &err))) {
            fprintf(stderr, "%s: %s fine-tuning: %s\n", c->who, name, err.msg);
            goto done;
        }
        cae_train_config tc;
        cae_train_config_default(&tc);
        tc.epochs = b->ft_epochs;
        tc.lr = 0.1;
        tc.momentum = 0.9; /* plain SGD at 0.1 is far from converged in a short budget */
        tc.limit = b->limit;
        tc.seed = c->seed + 99;
        tc.patience = b->patience;
        lg->n = 0;
        lg->what = "finetune";
        cae_train_hooks hooks = {.on_epoch = on_epoch, .ctx = lg};
        cae_train_result tr_res;
        if (cae_train(task, sp->train, valid, &tc, &hooks, &tr_res, &err)) {
            fprintf(stderr, "%s: %s fine-tuning: %s\n", c->who, name, err.msg);
            goto done;
        }
        write_log(c, dir, "finetune.dat", lg, "valid_error");
        r->valid_error = tr_res.best_valid_metric;
        r->epochs_ft = tr_res.epochs_run;
        if (b->patience == 0 || tr_res.best_epoch == 0) { /* no early stopping: the last epoch */
            double loss;
            cae_task_evaluate(task, valid, &loss, &r->valid_error);
        }
        if (cae_classify_error(task, test, &r->test_error, &r->test_ci)) {
            fprintf(stderr, "%s: %s test: %s\n", c->who, name, cae_task_error(task));
            goto done;
        }
    }
    r->seconds = cli_now() - t0;
    snprintf(path, sizeof path, "%s/result.txt", dir);
    if (result_save(path, r)) {
        fprintf(stderr, "%s: cannot write %s\n", c->who, path);
        goto done;
    }
    if (c->verbose) printf("  %-28s", name);
    if (s->finetune)
        printf(" |J| %8.4f  SAT %5.1f%%  valid %6.2f%%  test %6.2f%% +- %.2f  (%.0f s)\n", r->jac_norm,
               100 * r->sat, 100 * r->valid_error, 100 * r->test_error, 100 * r->test_ci, r->seconds);
    else
        printf(" |J| %8.4f  SAT %5.1f%%  (%.0f s)\n", r->jac_norm, 100 * r->sat, r->seconds);
    fflush(stdout);
    rc = 0;
done:
    cae_task_free(task);
    cae_dataset_free(codes[0]);
    cae_dataset_free(codes[1]);
    cae_dataset_free(valid);
    cae_dataset_free(test);
    cae_params_free(p);
    free(lg);
    return rc;
}
