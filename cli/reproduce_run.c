/* One experiment run of `cae reproduce`: greedy pretraining of a stack
 * (OUT/runs/NAME/), the encoder's measurements on the validation set,
 * fine-tuning with early stopping (OUT/runs/NAME/ft-lrX/), and, for a chosen
 * model only, the test error. Each step writes its numbers last
 * (atomically), with its recipe: a step with its numbers and this run's
 * recipe is finished and not redone; a step that is redone removes the
 * numbers of the steps built on it. */
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
static const double grid_cae[] = {0.1, 0.3, 1.0, 0.03};
static const double grid_none[] = {0};
/* CAE-2's second layer: smaller than the first layer's (phase 3 of
 * docs/REPRODUCE.md: on basic, rot and bg-rand the second layer did best
 * at a third to a tenth of the first's lambda). */
static const double grid_upper[] = {0.1, 0.03, 0.01};

int rp_grid_upper(const double **values)
{
    *values = grid_upper;
    return (int)(sizeof grid_upper / sizeof grid_upper[0]);
}

double rp_layer_hyper(const rp_spec *s, int k) { return k > 1 && s->upper > 0 ? s->upper : s->hyper; }

int64_t rp_layer_units(const rp_budget *b, const char *data, int k)
{
    return k == 1 && b->hidden2 > 0 && cae_variation_from_name(data) >= 0 ? b->hidden2 : b->hidden;
}

double rp_layer1_scale(const rp_budget *b, const char *data)
{
    return (double)rp_layer_units(b, data, 1) / (double)b->hidden;
}

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
        n += snprintf(buf + n, len - (size_t)n, "-L%d", s->n_layers);
    if (s->n_layers > 1 && s->upper > 0 && s->upper != s->hyper && n > 0 && (size_t)n < len)
        snprintf(buf + n, len - (size_t)n, "-%g", s->upper);
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

/* A finished step's numbers: "key value" lines, written atomically last, so
 * a file that loads with every key means the step is done. */
static int kv_load(const char *path, int n, const char *const *keys, double *vals)
{
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char key[64];
    double v;
    int seen = 0;
    while (fscanf(f, "%63s %lf", key, &v) == 2)
        for (int k = 0; k < n; k++)
            if (!strcmp(key, keys[k])) {
                vals[k] = v;
                seen |= 1 << k;
            }
    fclose(f);
    return seen == (1 << n) - 1 ? 0 : -1;
}

static int kv_save(const char *path, int n, const char *const *keys, const double *vals)
{
    char tmp[4600];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f) return -1;
    for (int k = 0; k < n; k++) fprintf(f, "%s %.10g\n", keys[k], vals[k]);
    if (fclose(f) || rename(tmp, path)) {
        remove(tmp);
        return -1;
    }
    return 0;
}

/* NAME/pretrain.txt: the pretrained encoder's measurements, and the
 * recipe (below) they were made by. */
static const char *const pre_keys[] = {"jac_norm", "jac_sqnorm",       "jac_entry",       "sat",
                                       "recon",    "pretrain_seconds", "pretrain_epochs", "recipe"};
enum { N_PRE = 8, N_FT = 4, N_TEST = 2, N_MAX = 8 };
/* NAME/ft-lrX/result.txt: a fine-tuning (validation only), and its recipe. */
static const char *const ft_keys[] = {"valid_error", "epochs_ft", "finetune_seconds", "recipe"};
/* NAME/ft-lrX/test.txt: the test set, read once, for a chosen model only
 * (in NAME/ft-lrX/refit/ when the budget refits the chosen rows). */
static const char *const test_keys[] = {"test_error", "test_ci"};
/* NAME/ft-lrX/refit/result.txt: the refit of a chosen row, and its recipe. */
enum { N_REFIT = 3 };
static const char *const refit_keys[] = {"epochs", "refit_seconds", "recipe"};

static void pre_vals(rp_result *r, double *v, int to_r)
{
    double *f[N_PRE - 1] = {&r->jac_norm, &r->jac_sqnorm, &r->jac_entry, &r->sat, &r->recon,
                            &r->pre_seconds, NULL};
    double ep = r->pre_epochs;
    for (int k = 0; k < N_PRE - 1; k++) {
        double *x = f[k] ? f[k] : &ep;
        if (to_r)
            *x = v[k];
        else
            v[k] = *x;
    }
    if (to_r) r->pre_epochs = (int)ep;
}

/* The recipe of a cached step: a 32-bit hash (exact in the files' %.10g)
 * of everything its numbers depend on besides the run's name (data set,
 * kind, hyper-parameters, layers: the directory) and the thread count
 * (which moves only last bits, docs/DETERMINISM.md): the budget's fields
 * that reach it, where its variations come from (--small sets or the
 * data directory's) and their recipe (cae_variation_recipe, from version 2
 * on), the seed, and RP_PROTOCOL, raised when a constant of
 * the protocol changes, written below or a library default it relies on
 * (cae_train_config_default, cae_layer_config_default, initialisations,
 * metrics). A step whose file holds another recipe, or none, is redone:
 * an --out directory reused with another budget or seed retrains instead
 * of reporting the old numbers. */
enum { RP_PROTOCOL = 1 };

static double hash32(const char *txt)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (const unsigned char *q = (const unsigned char *)txt; *q; q++) h = (h ^ *q) * 1099511628211ull;
    h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ull; /* a finalizer: every input bit moves the top 32 */
    h = (h ^ (h >> 27)) * 0x94d049bb133111ebull;
    return (double)(uint32_t)(h >> 32);
}

static double recipe_pre(const rp_ctx *c, const rp_spec *s)
{
    const rp_budget *b = c->b;
    char txt[512];
    int n = snprintf(txt, sizeof txt,
                     "pre %d|limit %lld|eval %lld|hidden %lld|epochs %d|examples %lld|small %d|seed %llu",
                     (int)RP_PROTOCOL, (long long)b->limit, (long long)b->eval_limit, (long long)b->hidden,
                     b->pre_epochs, (long long)b->pre_examples, b->small_variations,
                     (unsigned long long)c->seed);
    /* A generated set's recipe from its second version on: runs on a set
     * whose bytes changed are redone, the others' stay cached. */
    const int v = cae_variation_from_name(s->data);
    if (v >= 0 && cae_variation_recipe(v) > 1 && n > 0 && (size_t)n < sizeof txt)
        n += snprintf(txt + n, sizeof txt - (size_t)n, "|recipe %d", cae_variation_recipe(v));
    /* A first layer of other units than the others' (--hidden2): every
     * layer's numbers depend on it; a run of the budget's width keeps the
     * recipe it always had. */
    const int64_t u1 = rp_layer_units(b, s->data, 1);
    if (u1 != b->hidden && n > 0 && (size_t)n < sizeof txt)
        snprintf(txt + n, sizeof txt - (size_t)n, "|units1 %lld", (long long)u1);
    return hash32(txt);
}

static double recipe_ft(const rp_ctx *c, const rp_spec *s)
{
    const rp_budget *b = c->b;
    char txt[600];
    snprintf(txt, sizeof txt, "%.10g|ft|lr %.17g|epochs %d|patience %d", recipe_pre(c, s), s->ft_lr,
             b->ft_epochs, b->patience);
    return hash32(txt);
}

/* A refit's recipe: the fine-tuning's, and the epochs it runs. */
static double recipe_refit(const rp_ctx *c, const rp_spec *s, int epochs)
{
    char txt[600];
    snprintf(txt, sizeof txt, "%.10g|refit on train + valid|epochs %d", recipe_ft(c, s), epochs);
    return hash32(txt);
}

/* Whether path loads with every key and the recipe want (the last key).
 * A file that loads but is not used says why and is removed at once: the
 * redo overwrites the checkpoint and logs it describes before writing its
 * own numbers, so an interrupted redo must not leave it matching them. */
static int cached(const rp_ctx *c, const char *path, int n, const char *const *keys, double *v,
                  double want)
{
    if (kv_load(path, n, keys, v)) {
        if (!kv_load(path, n - 1, keys, v)) {
            if (!c->quiet) printf("  %s: has no recipe (an older cae's): redone\n", path);
            remove(path);
        }
        return 0;
    }
    if (v[n - 1] == want) return 1;
    if (!c->quiet)
        printf("  %s: made by another budget, seed, --hidden2 or protocol (recipe %.0f, this run's "
               "%.0f): redone\n",
               path, v[n - 1], want);
    remove(path);
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
    char path[4500];
    cae_error err;
    snprintf(path, sizeof path, "%s/%.64s", dir, file);
    const char *names[3] = {"epoch", "objective", valid_name};
    if (cae_table_write(path, NULL, 3, names, l->n, &l->row[0][0], &err))
        fprintf(stderr, "%s: %s\n", c->who, err.msg);
}

static void layer_config(const rp_ctx *c, const rp_spec *s, int k, int64_t n_in, cae_layer_config *lc)
{
    cae_layer_config_default(lc, s->kind, n_in, rp_layer_units(c->b, s->data, k));
    const double h = rp_layer_hyper(s, k);
    switch (s->kind) {
    case CAE_MODEL_AE_WD: lc->wd = h; break;
    case CAE_MODEL_DAE_G:
    case CAE_MODEL_DAE_B: lc->noise = h; break;
    case CAE_MODEL_CAE: lc->lambda = h; break;
    default: break;
    }
}

int rp_pre_epochs(const rp_budget *b, int64_t n_train)
{
    int64_t e = b->pre_epochs;
    if (n_train > 0 && b->pre_examples > e * n_train) e = (b->pre_examples + n_train - 1) / n_train;
    return e > 100000 ? 100000 : (int)e;
}

void rp_ft_dir(const rp_ctx *c, const rp_spec *s, char *buf, size_t len)
{
    char name[256];
    rp_run_name(s, name, sizeof name);
    snprintf(buf, len, "%s/runs/%s/ft-lr%g", c->out, name, s->ft_lr);
}

/* Views of the validation and (when test is non-NULL) test sets as the
 * budget evaluates them. */
static int eval_views(const rp_ctx *c, cae_splits *sp, cae_dataset **valid, cae_dataset **test)
{
    const int64_t lim = c->b->eval_limit;
    *valid = cae_dataset_view(sp->valid, 0, lim && lim < sp->valid->n ? lim : sp->valid->n);
    if (test) *test = cae_dataset_view(sp->test, 0, lim && lim < sp->test->n ? lim : sp->test->n);
    if (*valid && (!test || *test)) return 0;
    fprintf(stderr, "%s: out of memory\n", c->who);
    cae_dataset_free(*valid);
    *valid = NULL;
    if (test) {
        cae_dataset_free(*test);
        *test = NULL;
    }
    return 1;
}

/* Pretrain layer n of s on top of the cached n-1 layers below it (a stack
 * of n layers reuses the (n-1)-layer run of the same kind, hyper-parameters,
 * data and seed), measure the encoder, save NAME/pretrain.ckpt and
 * NAME/pretrain.txt. */
static int pretrain(const rp_ctx *c, const rp_spec *s, const char *name, const char *dir, rp_result *r)
{
    char path[4400];
    cae_error err;
    const rp_budget *b = c->b;
    cae_params *p = NULL;
    cae_model_info info;
    memset(&info, 0, sizeof info);
    cae_dataset *valid = NULL, *codes[2] = {NULL, NULL};
    cae_task *task = NULL;
    log_ctx *lg = calloc(1, sizeof *lg);
    int rc = 1;
    const int k = s->n_layers;
    if (k > 1) { /* the layers below, trained (or cached) as their own run */
        rp_spec below = *s;
        below.n_layers = k - 1;
        below.finetune = 0;
        rp_result rb;
        char bname[256];
        rp_run_name(&below, bname, sizeof bname);
        snprintf(path, sizeof path, "%s/runs/%s/pretrain.ckpt", c->out, bname);
        if (rp_run(c, &below, &rb) || cli_load_checkpoint(c->who, "--out", path, &info, &p)) goto done;
        if (info.n_layers != k - 1) {
            fprintf(stderr, "%s: %s has %d layers, expected %d\n", c->who, path, info.n_layers, k - 1);
            goto done;
        }
    } else if (!(p = cae_params_new())) {
        fprintf(stderr, "%s: out of memory\n", c->who);
        goto done;
    }
    cae_splits *sp = splits_for(c, s);
    if (!sp || !lg || eval_views(c, sp, &valid, NULL)) goto done;
    lg->verbose = c->verbose;
    const cae_dataset *tr = sp->train, *va = valid;
    if (k > 1) { /* the codes of the layers below are this layer's data */
        if (cae_encode_dataset(p, k - 1, info.layer, sp->train, b->limit, c->threads, &codes[0], &err) ||
            cae_encode_dataset(p, k - 1, info.layer, valid, 0, c->threads, &codes[1], &err)) {
            fprintf(stderr, "%s: %s codes: %s\n", c->who, name, err.msg);
            goto done;
        }
        tr = codes[0];
        va = codes[1];
    }
    const int64_t n_train = k == 1 && b->limit && b->limit < tr->n ? b->limit : tr->n;
    const int epochs = rp_pre_epochs(b, n_train);
    printf("  %-28s pretrain layer %d: %d epochs of %lld examples%s", name, k, epochs, (long long)n_train,
           c->verbose || c->jobs > 1 ? "\n" : "");
    fflush(stdout);
    cae_layer_config lc;
    layer_config(c, s, k, tr->dim, &lc);
    const double t0 = cli_now();
    if (cae_stack_push(p, &info, &lc, c->seed, &err) ||
        !(task = cae_task_pretrain(p, k, &lc, 20, c->seed + (uint64_t)k, c->threads, &err))) {
        fprintf(stderr, "%s: %s layer %d: %s\n", c->who, name, k, err.msg);
        goto done;
    }
    cae_train_config tc;
    cae_train_config_default(&tc);
    tc.epochs = epochs;
    tc.lr = s->kind == CAE_MODEL_RBM ? 0.05 : 0.01;
    tc.limit = k == 1 ? b->limit : 0;
    tc.seed = c->seed + (uint64_t)k;
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
    /* The pretrained encoder's measurements (before any fine-tuning). */
    cae_metrics m;
    cae_metrics_config mc;
    cae_metrics_config_default(&mc);
    mc.threads = c->threads;
    mc.max_examples = k > 1 ? 200 : 0;
    if (cae_metrics_compute(p, k, info.layer, valid, &mc, &m, &err)) {
        fprintf(stderr, "%s: %s metrics: %s\n", c->who, name, err.msg);
        goto done;
    }
    r->jac_norm = m.jac_norm;
    r->jac_sqnorm = m.jac_sqnorm;
    r->jac_entry = m.jac_per_entry;
    r->sat = m.sat;
    r->recon = m.recon;
    r->pre_epochs = epochs;
    info.kind = s->kind;
    snprintf(info.data, sizeof info.data, "%s", s->data);
    info.seed = c->seed;
    info.batch = 20;
    info.epochs_done = epochs;
    snprintf(path, sizeof path, "%s/pretrain.ckpt", dir);
    if (cae_checkpoint_save(path, &info, p, NULL, &err) != CAE_OK) {
        fprintf(stderr, "%s: %s\n", c->who, err.msg);
        goto done;
    }
    r->pre_seconds = cli_now() - t0;
    double v[N_PRE];
    pre_vals(r, v, 0);
    v[N_PRE - 1] = recipe_pre(c, s);
    snprintf(path, sizeof path, "%s/pretrain.txt", dir);
    if (kv_save(path, N_PRE, pre_keys, v)) {
        fprintf(stderr, "%s: cannot write %s\n", c->who, path);
        goto done;
    }
    if (c->verbose || c->jobs > 1) printf("  %-28s", name);
    printf(" |J| %8.4f  SAT %5.1f%%  (%.0f s)\n", r->jac_norm, 100 * r->sat, r->pre_seconds);
    fflush(stdout);
    rc = 0;
done:
    cae_task_free(task);
    cae_dataset_free(codes[0]);
    cae_dataset_free(codes[1]);
    cae_dataset_free(valid);
    cae_params_free(p);
    free(lg);
    return rc;
}

/* What was read off a fine-tuning that is redone: its test error, its
 * refit and the refit's test error. */
static void forget_tests(const char *ftdir)
{
    static const char *const files[] = {"test.txt", "refit/result.txt", "refit/test.txt"};
    char path[4500];
    for (int k = 0; k < 3; k++) {
        snprintf(path, sizeof path, "%s/%s", ftdir, files[k]);
        remove(path);
    }
}

/* Train a classifier from NAME/pretrain.ckpt (its layers, a fresh output
 * layer) at s->ft_lr with momentum 0.9 on train (its first `limit`
 * examples; 0: all) for at most `epochs`, keeping the epoch with the lowest
 * error on valid when patience > 0, else the last: outdir/{mlp.ckpt,
 * finetune.dat}. *valid_error: the kept epoch's (NaN without valid). */
static int fit_mlp(const rp_ctx *c, const rp_spec *s, const char *name, const char *outdir,
                   const cae_dataset *train, int64_t limit, const cae_dataset *valid, int epochs,
                   int patience, int *epochs_run, double *valid_error)
{
    char path[4500];
    cae_error err;
    cae_params *p = NULL;
    cae_model_info info;
    cae_task *task = NULL;
    log_ctx *lg = calloc(1, sizeof *lg);
    int rc = 1;
    snprintf(path, sizeof path, "%s/runs/%s/pretrain.ckpt", c->out, name);
    if (!lg || cli_load_checkpoint(c->who, "--out", path, &info, &p)) goto done;
    if (rp_mkdirs(outdir)) {
        fprintf(stderr, "%s: cannot create %s: %s\n", c->who, outdir, strerror(errno));
        goto done;
    }
    lg->verbose = c->verbose;
    info.n_classes = train->n_classes > 1 ? train->n_classes : 2;
    cae_mlp_config mlp;
    cae_model_info_mlp(&info, &mlp);
    if (cae_mlp_params(p, &mlp, c->seed, &err) ||
        !(task = cae_task_finetune(p, &mlp, 20, c->seed + 99, c->threads, &err))) {
        fprintf(stderr, "%s: %s fine-tuning: %s\n", c->who, name, err.msg);
        goto done;
    }
    cae_train_config tc;
    cae_train_config_default(&tc);
    tc.epochs = epochs;
    tc.lr = s->ft_lr;
    tc.momentum = 0.9; /* plain SGD at 0.1 is far from converged in a short budget */
    tc.limit = limit;
    tc.seed = c->seed + 99;
    tc.patience = patience;
    lg->what = "finetune";
    cae_train_hooks hooks = {.on_epoch = on_epoch, .ctx = lg};
    cae_train_result tr_res;
    if (cae_train(task, train, valid, &tc, &hooks, &tr_res, &err)) {
        fprintf(stderr, "%s: %s fine-tuning: %s\n", c->who, name, err.msg);
        goto done;
    }
    write_log(c, outdir, "finetune.dat", lg, "valid_error");
    *valid_error = valid ? tr_res.best_valid_metric : NAN;
    *epochs_run = tr_res.epochs_run;
    if (valid && (patience == 0 || tr_res.best_epoch == 0)) { /* no early stopping: the last epoch */
        double loss;
        cae_task_evaluate(task, valid, &loss, valid_error);
    }
    info.kind = CAE_MODEL_MLP;
    info.lr = tc.lr;
    info.momentum = tc.momentum;
    info.epochs_done = tr_res.epochs_run;
    snprintf(path, sizeof path, "%s/mlp.ckpt", outdir);
    if (cae_checkpoint_save(path, &info, p, NULL, &err) != CAE_OK) {
        fprintf(stderr, "%s: %s\n", c->who, err.msg);
        goto done;
    }
    rc = 0;
done:
    cae_task_free(task);
    cae_params_free(p);
    free(lg);
    return rc;
}

/* Fine-tune NAME/pretrain.ckpt at s->ft_lr with early stopping on the
 * validation set: NAME/ft-lrX/{mlp.ckpt, finetune.dat, result.txt}. */
static int finetune(const rp_ctx *c, const rp_spec *s, const char *name, const char *ftdir,
                    rp_result *r)
{
    char path[4400];
    cae_dataset *valid = NULL;
    cae_splits *sp = splits_for(c, s);
    if (!sp || eval_views(c, sp, &valid, NULL)) return 1;
    forget_tests(ftdir); /* of a classifier this replaces */
    printf("  %-28s fine-tune at lr %-5g%s", name, s->ft_lr, c->verbose || c->jobs > 1 ? "\n" : "");
    fflush(stdout);
    const double t0 = cli_now();
    int rc = fit_mlp(c, s, name, ftdir, sp->train, c->b->limit, valid, c->b->ft_epochs, c->b->patience,
                     &r->epochs_ft, &r->valid_error);
    cae_dataset_free(valid);
    if (rc) return 1;
    r->ft_seconds = cli_now() - t0;
    const double v[N_FT] = {r->valid_error, r->epochs_ft, r->ft_seconds, recipe_ft(c, s)};
    snprintf(path, sizeof path, "%s/result.txt", ftdir);
    if (kv_save(path, N_FT, ft_keys, v)) {
        fprintf(stderr, "%s: cannot write %s\n", c->who, path);
        return 1;
    }
    if (c->verbose || c->jobs > 1) printf("  %-28s lr %-5g", name, s->ft_lr);
    printf(" valid %6.2f%%  (%d epochs, %.0f s)\n", 100 * r->valid_error, r->epochs_ft, r->ft_seconds);
    fflush(stdout);
    return 0;
}

int rp_run(const rp_ctx *c, const rp_spec *s, rp_result *r)
{
    char name[256], dir[4200], ftdir[4300], path[4400];
    rp_run_name(s, name, sizeof name);
    snprintf(dir, sizeof dir, "%s/runs/%s", c->out, name);
    memset(r, 0, sizeof *r);
    r->valid_error = r->test_error = r->test_ci = NAN;
    double v[N_MAX] = {0};
    snprintf(path, sizeof path, "%s/pretrain.txt", dir);
    const int pre_cached = cached(c, path, N_PRE, pre_keys, v, recipe_pre(c, s));
    if (pre_cached) {
        pre_vals(r, v, 1);
    } else {
        if (rp_mkdirs(dir)) {
            fprintf(stderr, "%s: cannot create %s: %s\n", c->who, dir, strerror(errno));
            return 1;
        }
        /* What was built on an encoder this replaces is stale: its
         * fine-tunings and the next layer's pretraining. */
        for (int j = 0; j < c->b->n_ft_lrs; j++) {
            rp_spec f = *s;
            f.ft_lr = c->b->ft_lrs[j];
            rp_ft_dir(c, &f, ftdir, sizeof ftdir);
            snprintf(path, sizeof path, "%s/result.txt", ftdir);
            remove(path);
            forget_tests(ftdir);
        }
        /* Every deeper stack built on it, at every upper value: a cached
         * deeper layer is used without looking at the layers below. */
        const double *up;
        const int n_up = s->n_layers == 1 ? rp_grid_upper(&up) : 0;
        for (int k = s->n_layers + 1; k <= CAE_MAX_LAYERS; k++)
            for (int j = -1; j < n_up; j++) {
                rp_spec above = *s;
                above.n_layers = k;
                if (j >= 0) above.upper = up[j];
                char aname[256];
                rp_run_name(&above, aname, sizeof aname);
                snprintf(path, sizeof path, "%s/runs/%s/pretrain.txt", c->out, aname);
                remove(path);
            }
        if (pretrain(c, s, name, dir, r)) return 1;
    }
    if (!s->finetune) {
        if (pre_cached && !c->quiet) printf("  %-28s cached\n", name);
        return 0;
    }
    rp_ft_dir(c, s, ftdir, sizeof ftdir);
    snprintf(path, sizeof path, "%s/result.txt", ftdir);
    if (cached(c, path, N_FT, ft_keys, v, recipe_ft(c, s))) {
        r->valid_error = v[0];
        r->epochs_ft = (int)v[1];
        r->ft_seconds = v[2];
        if (!c->quiet) printf("  %-28s lr %-5g cached\n", name, s->ft_lr);
        return 0;
    }
    return finetune(c, s, name, ftdir, r);
}

/* The epoch whose parameters a fine-tuning kept, from its log (ftdir/
 * finetune.dat: epoch, objective, validation error): the first with the
 * lowest validation error, as cae_train keeps it, or the last when the
 * budget stops no run early. 0 when the log cannot be read. */
static int kept_epoch(const rp_budget *b, const char *ftdir)
{
    char path[4500], line[256];
    snprintf(path, sizeof path, "%s/finetune.dat", ftdir);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    int best = 0, last = 0;
    double best_v = INFINITY;
    while (fgets(line, sizeof line, f)) {
        int e;
        double obj, v;
        if (sscanf(line, "%d %lf %lf", &e, &obj, &v) != 3 || e != last + 1) continue;
        last = e;
        if (v < best_v) {
            best_v = v;
            best = e;
        }
    }
    fclose(f);
    return b->patience ? best : last;
}

/* Refit a chosen row: fine-tune NAME/pretrain.ckpt again as the chosen run
 * was (the same seeds, rate and momentum), on its training examples and the
 * validation examples together, for the epochs the chosen run kept, with
 * nothing to stop it early: NAME/ft-lrX/refit/{mlp.ckpt, finetune.dat,
 * result.txt}. */
static int refit(const rp_ctx *c, const rp_spec *s, const char *name, const char *rdir, int epochs,
                 double recipe)
{
    char path[4500];
    cae_dataset *valid = NULL, *train = NULL, *both = NULL;
    int rc = 1, run;
    double none;
    cae_splits *sp = splits_for(c, s);
    if (!sp || eval_views(c, sp, &valid, NULL)) return 1;
    const int64_t n = c->b->limit && c->b->limit < sp->train->n ? c->b->limit : sp->train->n;
    if (!(train = cae_dataset_view(sp->train, 0, n)) || !(both = cae_dataset_concat(train, valid))) {
        fprintf(stderr, "%s: %s refit: out of memory\n", c->who, name);
        goto done;
    }
    snprintf(path, sizeof path, "%s/test.txt", rdir); /* of a refit this replaces */
    remove(path);
    printf("  %-28s refit at lr %-5g%s", name, s->ft_lr, c->verbose || c->jobs > 1 ? "\n" : "");
    fflush(stdout);
    const double t0 = cli_now();
    if (fit_mlp(c, s, name, rdir, both, 0, NULL, epochs, 0, &run, &none)) goto done;
    const double secs = cli_now() - t0, v[N_REFIT] = {epochs, secs, recipe};
    snprintf(path, sizeof path, "%s/result.txt", rdir);
    if (kv_save(path, N_REFIT, refit_keys, v)) {
        fprintf(stderr, "%s: cannot write %s\n", c->who, path);
        goto done;
    }
    if (c->verbose || c->jobs > 1) printf("  %-28s lr %-5g refit", name, s->ft_lr);
    printf(" on %lld training + validation examples  (%d epochs, %.0f s)\n", (long long)both->n, epochs,
           secs);
    fflush(stdout);
    rc = 0;
done:
    cae_dataset_free(both);
    cae_dataset_free(train);
    cae_dataset_free(valid);
    return rc;
}

int rp_test(const rp_ctx *c, const rp_spec *s, rp_result *r)
{
    char name[256], ftdir[4300], tdir[4400], path[4500];
    cae_error err;
    rp_run_name(s, name, sizeof name);
    rp_ft_dir(c, s, ftdir, sizeof ftdir);
    /* the model tested: the chosen run's, or its refit */
    snprintf(tdir, sizeof tdir, "%s%s", ftdir, c->b->refit ? "/refit" : "");
    double v[N_MAX] = {0};
    int epochs = 0;
    if (c->b->refit) { /* the refit first: its test error goes when it is redone */
        if (!(epochs = kept_epoch(c->b, ftdir))) {
            fprintf(stderr, "%s: %s/finetune.dat: cannot read the epoch the fine-tuning kept\n", c->who,
                    ftdir);
            return 1;
        }
        const double recipe = recipe_refit(c, s, epochs);
        snprintf(path, sizeof path, "%s/result.txt", tdir);
        if (!cached(c, path, N_REFIT, refit_keys, v, recipe) && refit(c, s, name, tdir, epochs, recipe))
            return 1;
    }
    snprintf(path, sizeof path, "%s/test.txt", tdir);
    if (!kv_load(path, N_TEST, test_keys, v)) {
        r->test_error = v[0];
        r->test_ci = v[1];
        return 0;
    }
    cae_params *p = NULL;
    cae_model_info info;
    cae_dataset *valid = NULL, *test = NULL;
    cae_task *task = NULL;
    int rc = 1;
    snprintf(path, sizeof path, "%s/mlp.ckpt", tdir);
    if (cli_load_checkpoint(c->who, "--out", path, &info, &p)) goto done;
    cae_splits *sp = splits_for(c, s);
    if (!sp || eval_views(c, sp, &valid, &test)) goto done;
    cae_mlp_config mlp;
    cae_model_info_mlp(&info, &mlp);
    if (!(task = cae_task_finetune(p, &mlp, 20, 0, c->threads, &err))) {
        fprintf(stderr, "%s: %s: %s\n", c->who, path, err.msg);
        goto done;
    }
    if (cae_classify_error(task, test, &r->test_error, &r->test_ci)) {
        fprintf(stderr, "%s: %s test: %s\n", c->who, name, cae_task_error(task));
        goto done;
    }
    v[0] = r->test_error;
    v[1] = r->test_ci;
    snprintf(path, sizeof path, "%s/test.txt", tdir);
    if (kv_save(path, N_TEST, test_keys, v)) {
        fprintf(stderr, "%s: cannot write %s\n", c->who, path);
        goto done;
    }
    if (epochs)
        printf("  %-28s lr %-5g chosen on validation, refit (%d epochs): test %6.2f%% +- %.2f\n", name,
               s->ft_lr, epochs, 100 * r->test_error, 100 * r->test_ci);
    else
        printf("  %-28s lr %-5g chosen on validation: test %6.2f%% +- %.2f\n", name, s->ft_lr,
               100 * r->test_error, 100 * r->test_ci);
    fflush(stdout);
    rc = 0;
done:
    cae_task_free(task);
    cae_dataset_free(valid);
    cae_dataset_free(test);
    cae_params_free(p);
    return rc;
}
