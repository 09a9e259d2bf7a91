/* `cae reproduce table1|table2|figures|all --budget smoke|quick|full --out DIR`:
 * the paper's experiments end to end, with its numbers beside ours and its
 * qualitative claims checked on our output. */
#define _XOPEN_SOURCE 700
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cae/analysis.h"
#include "cae/checkpoint.h"
#include "cli_common.h"
#include "commands.h"
#include "parse.h"
#include "plot.h"
#include "reproduce.h"

static const char *reproduce_usage =
    "usage: cae reproduce WHAT --budget smoke|quick|full --out DIR [options]\n"
    "\n"
    "WHAT is table1, table2, figures or all.\n"
    "  table1   the six models of the paper's Table 1 (cae, dae-g, rbm, dae-b, ae-wd, ae;\n"
    "           one layer of the budget's units) on MNIST and on Fashion-MNIST (in place\n"
    "           of CIFAR-bw, which no installable package ships); each model's\n"
    "           hyper-parameter chosen on validation error after fine-tuning, from\n"
    "           the grid in docs/REPRODUCE.md; test error +- 95%% interval, average\n"
    "           ||J_f||_F and SAT of the pretrained encoder, beside the paper.\n"
    "  table2   CAE-1 and CAE-2 on the generated MNIST variations (Table 2).\n"
    "  figures  Fig. 1 (contraction curves), Fig. 2 (Jacobian spectra), Fig. 3\n"
    "           (contraction through 1, 2, 3 stacked CAEs on rot), training curves.\n"
    "Budgets: smoke (about 2 minutes, tiny models: a check that everything runs),\n"
    "quick (about 20 minutes on 2 cores; the default of scripts/run.sh), full (the\n"
    "paper's scale; its expected time is printed first; each chosen row is refit\n"
    "on train + valid for the epochs it kept, and the refit's test error shown).\n"
    "Runs are cached in DIR/runs: rerunning resumes, and a finished model is not\n"
    "retrained unless it was made by another budget, --seed or protocol version\n"
    "(it is then redone).\n"
    "\n"
    "  --data-dir DIR  data sets (default $CAE_DATA_DIR or ./data)\n"
    "  --threads T     OpenMP threads per process (default: OpenMP's choice)\n"
    "  --jobs N        train the runs in N worker processes first, each as soon as the\n"
    "                  choices it waits for are made (default 1).\n"
    "                  At batch 20 a step is too small for 2 threads to pay: on a 2-core\n"
    "                  machine --jobs 2 --threads 1 is about twice as fast as one process\n"
    "                  on 2 threads. The output is the same as --jobs 1 --threads T.\n"
    "  --seed S        initialisation, shuffling, noise (default 1)\n"
    "  --grid N        try the first N values (1-4) of each regularised model's grid\n"
    "                  (Table 1) and of CAE-1's lambda grid (Table 2), in place of the\n"
    "                  budget's (smoke 1 and 1, quick 2 and 1, full 3 and 3); the cached\n"
    "                  runs of the values they share are kept\n"
    "  --hidden2 N     units of the first layer on the variations (Table 2's CAE-1 and\n"
    "                  CAE-2, Fig. 3's stack on rot) in place of the budget's (smoke\n"
    "                  100, quick 1000, full 2000); the layers above keep the budget's.\n"
    "                  Its runs are redone when N changes\n"
    "  --refit         test each chosen row's refit on train + valid (the full and\n"
    "  --no-refit      smoke budgets' way), or the chosen run itself (quick's), in\n"
    "                  place of the budget's; both kinds of test error stay cached\n"
    "  --plan          print the plan (runs, examples, the products' floating-point\n"
    "                  operations, the expected time) and exit: nothing is trained,\n"
    "                  read or written, and --out may be left out\n"
    "  --verbose       print every epoch\n";

static const char *const sets_all[] = {"basic", "rot", "bg-rand", "bg-img", "bg-img-rot", "rect",
                                       "rect-img", NULL};
static const char *const sets_smoke[] = {"basic", "rect", NULL};

/* Fine-tuning learning rates: 0.1 (MNIST's) first; 0.01 for the sets where
 * 0.1 with momentum diverges (the dense backgrounds, Fashion-MNIST). */
static const double ft_lrs[] = {0.1, 0.01};

/* The full budget's first layers on the variations have 2000 units: better
 * on validation than 1000 for CAE-2 on 6 sets of 7 and CAE-1 on 5 (docs/
 * REPRODUCE.md, phase 10), at about twice Table 2's time. The full budget
 * tests each chosen row's refit on train + valid (phase 11; smoke too, so
 * that the tests run it); quick tests the chosen runs themselves. */
static const rp_budget budgets[] = {
    {"smoke", 1000, 1000, 100, 1, 3000, 3, 2, 1, 1, 2, 50, 8, 5, 1, sets_smoke, ft_lrs, 2, 0, 1},
    {"quick", 0, 0, 1000, 8, 200000, 20, 3, 2, 1, 1, 300, 40, 30, 0, sets_all, ft_lrs, 2, 0, 0},
    {"full", 0, 0, 1000, 25, 500000, 200, 10, 3, 3, 3, 1000, 40, 200, 0, sets_all, ft_lrs, 2, 2000, 1},
};

/* What the tables' test errors are of, where the budget refits. */
static const char refit_clause[] = ", on the chosen run refit: fine-tuned again on the training and "
                                   "validation examples together for the epochs it kept";

/* Table 1 in the paper's order, with its numbers (test error %, SAT %,
 * CIFAR-bw test error %; NaN where the paper has none). */
const rp_paper_row rp_paper1[RP_N_MODELS] = {
    {CAE_MODEL_CAE, 1.14, 86.4, 47.86},  {CAE_MODEL_DAE_G, 1.18, 17.8, 54.81},
    {CAE_MODEL_RBM, 1.30, 78.6, NAN},    {CAE_MODEL_DAE_B, 1.57, 68.2, 49.03},
    {CAE_MODEL_AE_WD, 1.68, 13.0, 55.03}, {CAE_MODEL_AE, 1.78, 49.9, 55.47},
};

/* Table 2 (test error %): SVM_rbf, SAE-3, RBM-3, DAE-b-3, CAE-1, CAE-2. */
static const struct {
    const char *set;
    double v[6];
} paper2[] = {
    {"basic", {3.03, 3.46, 3.11, 2.84, 2.83, 2.48}},
    {"rot", {11.11, 10.30, 10.30, 9.53, 11.59, 9.66}},
    {"bg-rand", {14.58, 11.28, 6.73, 10.30, 13.57, 10.90}},
    {"bg-img", {22.61, 23.00, 16.31, 16.68, 16.70, 15.50}},
    {"bg-img-rot", {55.18, 51.93, 47.39, 43.76, 48.10, 45.23}},
    {"rect", {2.15, 2.41, 2.60, 1.99, 1.48, 1.21}},
    {"rect-img", {24.04, 24.05, 22.50, 21.59, 21.86, 21.54}},
};

void rp_claim(rp_claims *cl, int ok, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    printf("  [%s] %s\n", ok ? "PASS" : "FAIL", msg);
    if (cl->f) fprintf(cl->f, "- **%s** %s\n", ok ? "PASS" : "FAIL", msg);
    ok ? cl->pass++ : cl->fail++;
}

/* An output file written as DIR/NAME.tmp.PID and renamed to DIR/NAME when
 * complete: an interrupted or failed run never leaves a half-written table. */
typedef struct rp_file {
    FILE *f;
    char path[4200], tmp[4300];
} rp_file;

static FILE *rp_file_open(rp_file *o, const char *dir, const char *name)
{
    snprintf(o->path, sizeof o->path, "%s/%s", dir, name);
    snprintf(o->tmp, sizeof o->tmp, "%s.tmp.%ld", o->path, (long)getpid());
    return o->f = fopen(o->tmp, "w");
}

/* Close and rename (ok) or close and remove (!ok). 0, or -1 when ok and
 * the file could not be completed (after saying so). */
static int rp_file_close(rp_file *o, int ok, const char *who)
{
    if (!o->f) return ok ? -1 : 0;
    const int bad = ferror(o->f) | (fclose(o->f) != 0);
    o->f = NULL;
    if (ok && !bad && !rename(o->tmp, o->path)) return 0;
    remove(o->tmp);
    if (!ok) return 0;
    fprintf(stderr, "%s: cannot write %s\n", who, o->path);
    return -1;
}

rp_spec rp_grid_spec(const char *data, const char *data_dir, cae_model_kind kind, double v, double lr)
{
    return (rp_spec){data, data_dir, kind, v, 1, 1, lr, 0};
}

int rp_grid_winner(const rp_ctx *c, const char *data, const char *data_dir, cae_model_kind kind, int grid,
                   rp_spec *best, rp_result *bres)
{
    const double *vals;
    int n = rp_grid(kind, &vals);
    if (grid < n) n = grid;
    for (int i = 0; i < n; i++) {
        const rp_spec s = rp_grid_spec(data, data_dir, kind, vals[i], c->b->ft_lrs[0]);
        rp_result r;
        if (rp_run(c, &s, &r)) return 1;
        if (!i || r.valid_error < bres->valid_error) {
            *best = s;
            *bres = r;
        }
    }
    return 0;
}

int rp_rate_wanted(const rp_ctx *c, const rp_spec *w0, const rp_result *r0, int j, int *wanted)
{
    rp_spec s = *w0;
    s.ft_lr = c->b->ft_lrs[j];
    rp_result r;
    if (rp_run(c, &s, &r)) return 1;
    *wanted = r.valid_error < r0->valid_error;
    return 0;
}

int rp_grid_rates_winner(const rp_ctx *c, const char *data, const char *data_dir, cae_model_kind kind,
                         int grid, rp_spec *best, rp_result *bres)
{
    rp_spec w0;
    rp_result r0;
    if (rp_grid_winner(c, data, data_dir, kind, grid, &w0, &r0)) return 1;
    *best = w0;
    *bres = r0;
    const double *vals;
    int n = rp_grid(kind, &vals);
    if (grid < n) n = grid;
    for (int j = 1; j < c->b->n_ft_lrs; j++) {
        int wanted;
        if (rp_rate_wanted(c, &w0, &r0, j, &wanted)) return 1;
        for (int i = 0; wanted && i < n; i++) {
            const rp_spec s = rp_grid_spec(data, data_dir, kind, vals[i], c->b->ft_lrs[j]);
            rp_result r;
            if (rp_run(c, &s, &r)) return 1;
            if (r.valid_error < bres->valid_error) {
                *best = s;
                *bres = r;
            }
        }
    }
    return 0;
}

rp_spec rp_upper_spec(const rp_ctx *c, const rp_spec *l1, double upper)
{
    rp_spec s = *l1;
    s.n_layers = 2;
    s.finetune = 1;
    s.ft_lr = c->b->ft_lrs[0];
    s.upper = upper;
    return s;
}

int rp_upper_winner(const rp_ctx *c, const rp_spec *l1, int grid, rp_spec *best, rp_result *bres)
{
    const double *up;
    int n = rp_grid_upper(&up);
    if (grid < n) n = grid;
    for (int i = 0; i < n; i++) {
        const rp_spec s = rp_upper_spec(c, l1, up[i]);
        rp_result r;
        if (rp_run(c, &s, &r)) return 1;
        if (!i || r.valid_error < bres->valid_error) {
            *best = s;
            *bres = r;
        }
    }
    return 0;
}

int rp_best_rate(const rp_ctx *c, rp_spec *best, rp_result *bres)
{
    const rp_spec winner = *best;
    for (int j = 1; j < c->b->n_ft_lrs; j++) {
        rp_spec s = winner;
        s.ft_lr = c->b->ft_lrs[j];
        rp_result r;
        if (rp_run(c, &s, &r)) return 1;
        if (r.valid_error < bres->valid_error) {
            *best = s;
            *bres = r;
        }
    }
    return 0;
}

int rp_rates_and_test(const rp_ctx *c, rp_spec *best, rp_result *bres)
{
    return rp_best_rate(c, best, bres) || rp_test(c, best, bres);
}

int rp_best_of(const rp_ctx *c, const char *data, const char *data_dir, cae_model_kind kind, int grid,
               rp_spec *best, rp_result *bres)
{
    return rp_grid_rates_winner(c, data, data_dir, kind, grid, best, bres) || rp_test(c, best, bres);
}

static void fmt_hyper(const rp_spec *s, char *buf, size_t len)
{
    if (strcmp(rp_hyper_name(s->kind), "-"))
        snprintf(buf, len, "%s=%g lr=%g", rp_hyper_name(s->kind), s->hyper, s->ft_lr);
    else
        snprintf(buf, len, "lr=%g", s->ft_lr);
}

/* --------------------------------------------------------------- Table 1 */

static int table1(const rp_ctx *c, const char *data_dir, rp_claims *cl, rp_spec best[2][RP_N_MODELS])
{
    static const char *const datas[2] = {"mnist", "fashion"};
    rp_result res[2][RP_N_MODELS];
    for (int d = 0; d < 2; d++) {
        printf("table1 on %s:\n", datas[d]);
        for (int m = 0; m < RP_N_MODELS; m++)
            if (rp_best_of(c, datas[d], data_dir, rp_paper1[m].kind, c->b->grid, &best[d][m], &res[d][m]))
                return 1;
    }
    rp_file ftsv, fmd;
    FILE *tsv = rp_file_open(&ftsv, c->out, "table1.tsv"), *md = rp_file_open(&fmd, c->out, "table1.md");
    if (!tsv || !md) {
        fprintf(stderr, "%s: cannot write the tables in %s\n", c->who, c->out);
        rp_file_close(&ftsv, 0, c->who);
        rp_file_close(&fmd, 0, c->who);
        return 1;
    }
    fprintf(tsv, "data\tmodel\tchosen\tvalid_error\ttest_error\ttest_ci95\tjac_norm\tjac_sqnorm\t"
                 "jac_per_entry\tsat\tpaper_test_error\tpaper_sat\n");
    fprintf(md, "Budget `%s`: %lld training examples%s, %lld hidden units, %d pretraining epochs, at most "
                "%d fine-tuning epochs (patience %d), grid of %d value(s) per model, fine-tuning rate "
                "chosen from {",
            c->b->name, (long long)(c->b->limit ? c->b->limit : 50000), c->b->limit ? "" : " (all)",
            (long long)c->b->hidden, rp_pre_epochs(c->b, c->b->limit ? c->b->limit : 50000),
            c->b->ft_epochs, c->b->patience, c->b->grid);
    for (int j = 0; j < c->b->n_ft_lrs; j++) fprintf(md, "%s%g", j ? ", " : "", c->b->ft_lrs[j]);
    fprintf(md, "} (every value at the first; the others on the winner, and on every value where one beat "
                "the first there); every choice on validation error, the test set read once per "
                "row%s. Errors in %%, ±95%% interval. ‖J‖ is the mean Frobenius norm of the pretrained "
                "encoder's Jacobian on the validation set; SAT the fraction of saturated units.\n\n",
            c->b->refit ? refit_clause : "");
    for (int d = 0; d < 2; d++) {
        fprintf(md, "| %s | chosen | valid err | test err | ‖J‖_F | ‖J‖²_F/(d_x d_h) | SAT | paper %s | paper SAT |\n",
                d ? "Fashion-MNIST" : "MNIST", d ? "CIFAR-bw err" : "test err");
        fprintf(md, "|---|---|---|---|---|---|---|---|---|\n");
        for (int m = 0; m < RP_N_MODELS; m++) {
            const rp_result *r = &res[d][m];
            char hy[64];
            fmt_hyper(&best[d][m], hy, sizeof hy);
            const double pe = d ? rp_paper1[m].cifar : rp_paper1[m].mnist, ps = d ? NAN : rp_paper1[m].sat;
            fprintf(tsv, "%s\t%s\t%s\t%.4f\t%.4f\t%.4f\t%.6g\t%.6g\t%.6g\t%.4f\t%.2f\t%.1f\n", datas[d],
                    cae_model_kind_name(rp_paper1[m].kind), hy, 100 * r->valid_error, 100 * r->test_error,
                    100 * r->test_ci, r->jac_norm, r->jac_sqnorm, r->jac_entry, 100 * r->sat, pe, ps);
            char pes[16] = "—", pss[16] = "—";
            if (!isnan(pe)) snprintf(pes, sizeof pes, "%.2f", pe);
            if (!isnan(ps)) snprintf(pss, sizeof pss, "%.1f%%", ps);
            fprintf(md, "| %s | %s | %.2f | %.2f ± %.2f | %.4g | %.3g | %.1f%% | %s | %s |\n",
                    cae_model_kind_name(rp_paper1[m].kind), hy, 100 * r->valid_error,
                    100 * r->test_error, 100 * r->test_ci, r->jac_norm, r->jac_entry, 100 * r->sat, pes,
                    pss);
        }
        fprintf(md, "\n");
    }
    if (rp_file_close(&ftsv, 1, c->who) | rp_file_close(&fmd, 1, c->who)) return 1;
    printf("wrote %s/table1.tsv and table1.md\n", c->out);
    for (int d = 0; d < 2; d++) {
        int jm = 1, sm = 1; /* the best of the other models */
        for (int m = 2; m < RP_N_MODELS; m++) {
            if (res[d][m].jac_norm < res[d][jm].jac_norm) jm = m;
            if (res[d][m].sat > res[d][sm].sat) sm = m;
        }
        rp_claim(cl, res[d][0].jac_norm < res[d][jm].jac_norm,
                 "%s: CAE has the lowest average ||J_f||_F (CAE %.4g; lowest other: %s %.4g)", datas[d],
                 res[d][0].jac_norm, cae_model_kind_name(rp_paper1[jm].kind), res[d][jm].jac_norm);
        rp_claim(cl, res[d][0].sat > res[d][sm].sat,
                 "%s: CAE has the highest SAT (CAE %.1f%%; highest other: %s %.1f%%)", datas[d],
                 100 * res[d][0].sat, cae_model_kind_name(rp_paper1[sm].kind), 100 * res[d][sm].sat);
    }
    return 0;
}

/* --------------------------------------------------------------- Table 2 */

void rp_variations_root(const rp_ctx *c, const char *data_dir, char *buf, size_t len)
{
    if (c->b->small_variations)
        snprintf(buf, len, "%s/small-data", c->out);
    else
        snprintf(buf, len, "%s", data_dir);
}

/* The recipe manifest records for set `name` (1 when it names none: the
 * manifests of the first generator); 0 for no manifest. */
static int manifest_recipe(const char *manifest, const char *name)
{
    FILE *mf = fopen(manifest, "r");
    if (!mf) return 0;
    char line[256], set[64];
    int recipe = 1, r;
    while (fgets(line, sizeof line, mf))
        if (sscanf(line, "recipe %63s %d", set, &r) == 2 && strcmp(set, name) == 0) recipe = r;
    fclose(mf);
    return recipe;
}

int rp_ensure_variations(const rp_ctx *c, const char *data_dir, const char *var_root)
{
    char vdir[4200], manifest[4400];
    cae_error err;
    snprintf(vdir, sizeof vdir, "%s/variations", var_root);
    snprintf(manifest, sizeof manifest, "%s/MANIFEST.txt", vdir);
    /* Every set the budget uses, not just a manifest: a generation of some
     * sets (cae data make-variations --only) leaves one too. When one was
     * made by an older recipe (cae_variation_recipe), all are made again. */
    int missing = access(manifest, R_OK) != 0;
    for (int i = -1; !missing && (i < 0 || c->b->table2_sets[i]); i++) {
        const char *set = i < 0 ? "rot" : c->b->table2_sets[i];
        char f[4600]; /* the last file a set's generation writes; rot for Fig. 3 */
        snprintf(f, sizeof f, "%s/%s/test-labels-idx1-ubyte", vdir, set);
        missing = access(f, R_OK) != 0;
        const int have = manifest_recipe(manifest, set);
        const int want = cae_variation_recipe(cae_variation_from_name(set));
        if (!missing && have != want) {
            printf("%s: %s was made by recipe %d of the generator, this cae's is %d\n", manifest, set, have,
                   want);
            missing = 1;
        }
    }
    if (!missing) return 0;
    FILE *mf = fopen(manifest, "r");
    if (mf) { /* completing the sets rewrites them all at seed 1: never over another seed's */
        char line[256];
        unsigned long long seed = 1;
        while (fgets(line, sizeof line, mf))
            if (sscanf(line, "seed %llu", &seed) == 1) break;
        fclose(mf);
        if (seed != 1) {
            fprintf(stderr,
                    "%s: %s: sets are missing or outdated and the others were made with seed %llu; "
                    "cae reproduce uses seed 1: pass another --data-dir\n",
                    c->who, manifest, seed);
            return 1;
        }
    }
    printf("generating the variations benchmark%s into %s\n", c->b->small_variations ? " (small)" : "",
           vdir);
    fflush(stdout);
    if (rp_mkdirs(vdir) || cae_variations_write(data_dir, vdir, 1, c->b->small_variations, 0, &err)) {
        fprintf(stderr, "%s: generating the variations: %s\n", c->who, err.msg);
        return 1;
    }
    return 0;
}

static int table2(const rp_ctx *c, const char *data_dir, rp_claims *cl)
{
    char var_root[4200];
    rp_variations_root(c, data_dir, var_root, sizeof var_root);
    if (rp_ensure_variations(c, data_dir, var_root)) return 1;
    rp_file fmd, ftsv;
    FILE *md = rp_file_open(&fmd, c->out, "table2.md"), *tsv = rp_file_open(&ftsv, c->out, "table2.tsv");
    if (!md || !tsv) {
        fprintf(stderr, "%s: cannot write the tables in %s\n", c->who, c->out);
        rp_file_close(&fmd, 0, c->who);
        rp_file_close(&ftsv, 0, c->who);
        return 1;
    }
    char units[96] = "";
    const int64_t u1 = rp_layer_units(c->b, c->b->table2_sets[0], 1);
    if (u1 != c->b->hidden)
        snprintf(units, sizeof units, ", first layers of %lld units (the second of %lld)", (long long)u1,
                 (long long)c->b->hidden);
    fprintf(md, "Budget `%s`%s%s. Test error %% ±95%% interval%s; the paper's columns beside ours.\n\n"
                "| data set | CAE-1 (ours) | CAE-2 (ours) | paper CAE-1 | paper CAE-2 | SVM_rbf | SAE-3 | RBM-3 | DAE-b-3 |\n"
                "|---|---|---|---|---|---|---|---|---|\n",
            c->b->name, c->b->small_variations ? " on the small generated sets" : "", units,
            c->b->refit ? refit_clause : "");
    fprintf(tsv, "data\tcae1_test\tcae1_ci\tcae1_chosen\tcae1_lr\tcae2_test\tcae2_ci\tcae2_chosen\tcae2_lr\t"
                 "paper_cae1\tpaper_cae2\tcae2_upper\n");
    int better = 0, total = 0;
    for (int i = 0; c->b->table2_sets[i]; i++) {
        const char *set = c->b->table2_sets[i];
        printf("table2 on %s:\n", set);
        /* CAE-2 is chosen greedily: its first layer is CAE-1's (lambda,
         * rate) winner, its second layer's lambda is searched on top of it. */
        rp_spec s1 = {0}, s2 = {0}, w1;
        rp_result r1 = {0}, r2 = {0};
        int bad = rp_grid_rates_winner(c, set, var_root, CAE_MODEL_CAE, c->b->grid2, &s1, &r1);
        w1 = s1;
        bad = bad || rp_test(c, &s1, &r1) || rp_upper_winner(c, &w1, c->b->grid_up, &s2, &r2) ||
              rp_rates_and_test(c, &s2, &r2);
        if (bad) {
            rp_file_close(&fmd, 0, c->who);
            rp_file_close(&ftsv, 0, c->who);
            return 1;
        }
        const double *pv = NULL;
        for (size_t k = 0; k < sizeof paper2 / sizeof paper2[0]; k++)
            if (!strcmp(paper2[k].set, set)) pv = paper2[k].v;
        fprintf(md, "| %s | %.2f ± %.2f | %.2f ± %.2f |", set, 100 * r1.test_error, 100 * r1.test_ci,
                100 * r2.test_error, 100 * r2.test_ci);
        if (pv)
            fprintf(md, " %.2f | %.2f | %.2f | %.2f | %.2f | %.2f |\n", pv[4], pv[5], pv[0], pv[1], pv[2], pv[3]);
        else
            fprintf(md, " — | — | — | — | — | — |\n");
        fprintf(tsv, "%s\t%.4f\t%.4f\t%g\t%g\t%.4f\t%.4f\t%g\t%g\t%.2f\t%.2f\t%g\n", set, 100 * r1.test_error,
                100 * r1.test_ci, s1.hyper, s1.ft_lr, 100 * r2.test_error, 100 * r2.test_ci, s2.hyper,
                s2.ft_lr, pv ? pv[4] : NAN, pv ? pv[5] : NAN, rp_layer_hyper(&s2, 2));
        better += r2.test_error <= r1.test_error;
        total++;
    }
    if (rp_file_close(&fmd, 1, c->who) | rp_file_close(&ftsv, 1, c->who)) return 1;
    printf("wrote %s/table2.tsv and table2.md\n", c->out);
    rp_claim(cl, 2 * better > total, "CAE-2 is at least as good as CAE-1 on %d of %d variation sets", better, total);
    return 0;
}

/* What a budget will train, counted from its fields, and the time that
 * takes at the rates measured on this 2-core machine (examples per second,
 * validation included; docs/REPRODUCE.md): a plan, printed before the run. */
double rp_train_size(const rp_budget *b, const char *data)
{
    if (!strcmp(data, "mnist") || !strcmp(data, "fashion")) return b->limit ? (double)b->limit : 50000;
    const int rect = !strcmp(data, "rect");
    return b->small_variations ? (rect ? 20 : 200) : rect ? 1000 : 10000;
}

int rp_ft_epochs_typical(const rp_budget *b)
{
    /* early stopping: the best epoch is typically 15-25 epochs in, then patience */
    return b->patience && b->patience + 25 < b->ft_epochs ? b->patience + 25 : b->ft_epochs;
}

double rp_refit_examples(const rp_budget *b, const char *data)
{
    if (!b->refit) return 0;
    const int v = cae_variation_from_name(data);
    int64_t sizes[3] = {0, 10000, 0}; /* MNIST, Fashion-MNIST: 10 000 validation examples */
    if (v >= 0) cae_variation_sizes((cae_variation)v, b->small_variations, sizes);
    const double n = rp_train_size(b, data),
                 nv = b->eval_limit && b->eval_limit < sizes[1] ? (double)b->eval_limit : (double)sizes[1];
    const int kept = rp_ft_epochs_typical(b) - b->patience;
    return (n + nv) * (kept > 1 ? kept : 1);
}

static void plan_print(const rp_budget *b, int do1, int do2, int dof, int jobs, const char *out)
{
    /* A 784-1000 layer at batch 20, validation included, per process, measured
     * here (2026-12-05, OMP_WAIT_POLICY=PASSIVE): one thread or two make
     * little difference at this batch; processes add up to the cores. */
    const double par = jobs < 2 ? 1 : 2, pre_rate = 16e3 * par, ft_rate = 30e3 * par;
    double pre = 0, ft = 0;                        /* examples x (cost relative to 784-1000) */
    double ft_up = 0; /* the part of ft in layers above the first (CAE-2's second) */
    int n_pre = 0, n_ft = 0;
    const int ft_ep = rp_ft_epochs_typical(b);
    const int n1 = do1 ? 2 : dof ? 1 : 0; /* data sets of Table 1 (the figures: MNIST only) */
    if (n1) {
        const double n = rp_train_size(b, "mnist");
        int runs = 0;
        for (int m = 0; m < RP_N_MODELS; m++) {
            const double *v;
            int g = rp_grid(rp_paper1[m].kind, &v);
            runs += g < b->grid ? g : b->grid;
        }
        /* MNIST: the other rates on each winner only; Fashion-MNIST: on every
         * value, 0.01 beating 0.1 there (rp_grid_rates_winner) */
        const int fts = runs + RP_N_MODELS * (b->n_ft_lrs - 1) + (n1 > 1 ? runs * b->n_ft_lrs : 0);
        n_pre += n1 * runs;
        n_ft += fts + (b->refit ? n1 * RP_N_MODELS : 0);
        pre += n1 * runs * rp_pre_epochs(b, (int64_t)n) * n;
        ft += fts * ft_ep * n + n1 * RP_N_MODELS * rp_refit_examples(b, "mnist");
    }
    int rot_layers = 0; /* layers of the rot stack already counted */
    for (int i = 0; do2 && b->table2_sets[i]; i++) {
        const double n = rp_train_size(b, b->table2_sets[i]);
        const double layer = rp_pre_epochs(b, (int64_t)n) * n;
        const double *up;
        const int n_grid_up = rp_grid_upper(&up), n_up = n_grid_up < b->grid_up ? n_grid_up : b->grid_up;
        /* every value at every rate where 0.01 beats 0.1 (the background and
         * image sets), the other rates on the winner elsewhere */
        const char *set = b->table2_sets[i];
        const int dense = !strncmp(set, "bg-", 3) || !strcmp(set, "rect-img");
        const int fts1 = dense ? b->grid2 * b->n_ft_lrs : b->grid2 + b->n_ft_lrs - 1,
                  fts2 = n_up + b->n_ft_lrs - 1;
        /* cost relative to a 784-h layer: the first layer w of it, the second
         * (w h inputs) w h / 784, CAE-2's classifier w (1 + h / 784) */
        const double w = rp_layer1_scale(b, set), h = (double)b->hidden;
        n_pre += b->grid2 + n_up;
        pre += (b->grid2 + n_up * h / 784) * w * layer;
        n_ft += fts1 + fts2 + (b->refit ? 2 : 0);
        ft += (fts1 + (1 + h / 784) * fts2) * w * ft_ep * n +
              (2 + h / 784) * w * rp_refit_examples(b, set); /* CAE-1's and CAE-2's refits */
        ft_up += h / 784 * w * (fts2 * ft_ep * n + rp_refit_examples(b, set));
        /* Fig. 3 stacks on rot's lambda 0.1 at every layer: Table 2 trains
         * its first layer, and its second too when the first-layer grid has
         * one value (then CAE-1's winner is 0.1, and 0.1 is the first lambda 2). */
        if (!strcmp(b->table2_sets[i], "rot")) rot_layers = b->grid2 == 1 ? 2 : 1;
    }
    if (dof) { /* Fig. 3: a stack of 3 on rot, on top of what Table 2 trained */
        const double n = b->small_variations ? 200 : 10000;
        const double w = rp_layer1_scale(b, "rot"), h = (double)b->hidden;
        for (int l = rot_layers + 1; l <= 3; l++, n_pre++)
            pre += (l == 1 ? w : l == 2 ? w * h / 784 : h / 784) * rp_pre_epochs(b, (int64_t)n) * n;
    }
    const double secs = pre / pre_rate + ft / ft_rate + (dof ? b->points * 0.2 + b->spectrum * 0.5 : 0);
    /* The products of one example through a 784-h layer (the unit the
     * counts above are in): pretraining's five (h = x W, the reconstruction
     * h W^T, the gradient through W, the two halves of W's gradient),
     * fine-tuning's two (x W and W's gradient; the input needs none), and a
     * third (the gradient passed down) in the layers above the first. The
     * softmax layer and the validation passes (a few percent) are left out. */
    const double unit = 2.0 * 784 * (double)b->hidden;
    const double tflop = (pre * 5 * unit + ft * 2 * unit + ft_up * unit) / 1e12;
    char tf[32];
    snprintf(tf, sizeof tf, tflop >= 10 ? "%.0f" : "%.2g", tflop);
    printf("budget %s: %d pretrainings (%.1f M examples), %d fine-tunings (about %.1f M examples);\n"
           "their products %s TFLOP (%.0f minutes on 2 cores at 100 GFLOP/s each);\n"
           "about %.0f minutes on 2 quiet cores (--jobs %d).\n",
           b->name, n_pre, pre / 1e6, n_ft, ft / 1e6, tf, tflop * 1e12 / 200e9 / 60, secs / 60, jobs);
    if (out)
        printf("Every run is kept in %s/runs: an interrupted reproduction resumes where it stopped.\n", out);
}

typedef struct rp_opts {
    int do1, do2, dof;
    const char *what, *budget, *out, *data_dir;
    long long threads, jobs;
    unsigned long long seed;
    long long grid, hidden2;
    int verbose, refit, no_refit, plan;
    rp_budget b; /* the budget named, with --grid, --hidden2 and --(no-)refit applied */
} rp_opts;

/* Every check that needs no file: CLI_PARSE_RUN, or the exit status. */
static int reproduce_parse_opts(int argc, char **argv, rp_opts *r)
{
    const char *who = "cae reproduce";
    memset(r, 0, sizeof *r);
    r->data_dir = cli_default_data_dir();
    r->seed = 1;
    r->jobs = 1;
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        fputs(reproduce_usage, stdout);
        return 0;
    }
    if (argc < 2 || argv[1][0] == '-') {
        fprintf(stderr, "%s: say what to reproduce: table1, table2, figures or all (see --help)\n", who);
        return 2;
    }
    r->what = argv[1];
    r->do1 = !strcmp(r->what, "table1") || !strcmp(r->what, "all");
    r->do2 = !strcmp(r->what, "table2") || !strcmp(r->what, "all");
    r->dof = !strcmp(r->what, "figures") || !strcmp(r->what, "all");
    if (!r->do1 && !r->do2 && !r->dof) {
        fprintf(stderr, "%s: unknown target '%s' (expected table1, table2, figures or all)\n", who, r->what);
        return 2;
    }
    cli_opt o[] = {
        {"--budget", CLI_STR, &r->budget, 0, 0, 0, 0},     {"--out", CLI_STR, &r->out, 0, 0, 0, 0},
        {"--data-dir", CLI_STR, &r->data_dir, 0, 0, 0, 0}, {"--threads", CLI_INT, &r->threads, 0, 256, 0, 0},
        {"--seed", CLI_U64, &r->seed, 0, 0, 0, 0},         {"--verbose", CLI_FLAG, &r->verbose, 0, 0, 0, 0},
        {"--jobs", CLI_INT, &r->jobs, 1, 64, 0, 0},         {"--grid", CLI_INT, &r->grid, 1, 4, 0, 0},
        {"--hidden2", CLI_INT, &r->hidden2, 1, 100000, 0, 0},
        {"--refit", CLI_FLAG, &r->refit, 0, 0, 0, 0},       {"--no-refit", CLI_FLAG, &r->no_refit, 0, 0, 0, 0},
        {"--plan", CLI_FLAG, &r->plan, 0, 0, 0, 0},
    };
    const int n = (int)(sizeof o / sizeof o[0]);
    int rc = cli_parse(who, reproduce_usage, argc - 1, argv + 1, o, n);
    if (rc != CLI_PARSE_RUN) return rc;
    if ((rc = cli_require(who, cli_opt_get(o, n, "--budget"))) ||
        (!r->plan && (rc = cli_require(who, cli_opt_get(o, n, "--out")))))
        return rc;
    const rp_budget *b = NULL;
    for (size_t i = 0; i < sizeof budgets / sizeof budgets[0]; i++)
        if (!strcmp(budgets[i].name, r->budget)) b = &budgets[i];
    if (!b) {
        fprintf(stderr, "%s: bad value for --budget: '%s' (expected smoke, quick or full)\n", who, r->budget);
        return 2;
    }
    r->b = *b;
    if (r->grid > 0) r->b.grid = r->b.grid2 = (int)r->grid;
    if (r->hidden2 > 0) r->b.hidden2 = r->hidden2;
    if (r->refit && r->no_refit) {
        fprintf(stderr, "%s: --refit and --no-refit contradict each other: give one\n", who);
        return 2;
    }
    if (r->refit || r->no_refit) r->b.refit = r->refit;
    return CLI_PARSE_RUN;
}

/* The temporary files (NAME.tmp.PID, written then renamed) that a killed
 * run left where a reproduction writes: DIR, DIR/figures, DIR/runs/NAME,
 * its ft-lrX and their refit. Only files of a process that is gone and at
 * least a minute old (a run on another machine sharing DIR has renamed its
 * file by then); nothing else, no other directory, no symbolic link. */
enum { AT_OUT, AT_RUNS, AT_RUN, AT_FT, AT_LEAF };
/* The level of subdirectory nm of a directory at `level`, or -1: not swept. */
static int sweep_child(int level, const char *nm)
{
    switch (level) {
    case AT_OUT: return !strcmp(nm, "runs") ? AT_RUNS : !strcmp(nm, "figures") ? AT_LEAF : -1;
    case AT_RUNS: return AT_RUN;
    case AT_RUN: return !strncmp(nm, "ft-lr", 5) ? AT_FT : -1;
    case AT_FT: return !strcmp(nm, "refit") ? AT_LEAF : -1;
    default: return -1;
    }
}

static int sweep_dir(const char *dir, int level, time_t now)
{
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        char path[4200];
        struct stat st;
        if (e->d_name[0] == '.' || snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= (int)sizeof path ||
            lstat(path, &st))
            continue;
        if (S_ISDIR(st.st_mode)) {
            const int sub = sweep_child(level, e->d_name);
            if (sub >= 0) n += sweep_dir(path, sub, now);
            continue;
        }
        const char *t = strstr(e->d_name, ".tmp.");
        char *end;
        const long pid = t ? strtol(t + 5, &end, 10) : 0;
        if (!S_ISREG(st.st_mode) || pid <= 0 || *end || pid > INT_MAX || pid == (long)getpid() ||
            now - st.st_mtime < 60 || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue;
        n += remove(path) == 0;
    }
    closedir(d);
    return n;
}

static void sweep_stale(const char *out)
{
    const int n = sweep_dir(out, AT_OUT, time(NULL));
    if (n) printf("removed %d temporary file(s) an interrupted run left in %s\n", n, out);
}

int cmd_reproduce_parse(int argc, char **argv)
{
    rp_opts r;
    return reproduce_parse_opts(argc, argv, &r);
}

int cmd_reproduce(int argc, char **argv)
{
    const char *who = "cae reproduce";
    rp_opts ro;
    int rc = reproduce_parse_opts(argc, argv, &ro);
    if (rc != CLI_PARSE_RUN) return rc;
    cli_use_threads(ro.threads);
    rc = 0;
    const rp_budget *b = &ro.b;
    const char *out = ro.out, *data_dir = ro.data_dir, *what = ro.what;
    const int do1 = ro.do1, do2 = ro.do2, dof = ro.dof;
    if (ro.plan) {
        plan_print(b, do1, do2, dof, (int)ro.jobs, NULL);
        return 0;
    }
    if (rp_mkdirs(out)) {
        fprintf(stderr, "%s: cannot create --out %s\n", who, out);
        return 1;
    }
    rp_ctx c = {who, out, b, ro.seed, (int)ro.threads, ro.verbose, (int)ro.jobs, 0};
    plan_print(b, do1, do2, dof, (int)ro.jobs, out);
    sweep_stale(out);
    fflush(stdout);
    char name[64];
    snprintf(name, sizeof name, "claims-%s.md", what);
    rp_file fcl;
    rp_claims cl = {rp_file_open(&fcl, out, name), 0, 0};
    if (!cl.f) {
        fprintf(stderr, "%s: cannot write %s\n", who, fcl.path);
        return 1;
    }
    fprintf(cl.f, "# The paper's qualitative claims, checked on our output (budget %s)\n\n", b->name);
    const double t0 = cli_now();
    rp_spec best[2][RP_N_MODELS];
    if (c.jobs > 1 && rp_prefetch(&c, data_dir, do1, do2, dof)) rc = 1;
    if (!rc && do1 && table1(&c, data_dir, &cl, best)) rc = 1;
    if (!rc && do2 && table2(&c, data_dir, &cl)) rc = 1;
    if (!rc && dof && rp_figures(&c, data_dir, &cl)) rc = 1;
    if (rp_file_close(&fcl, !rc, who)) rc = 1;
    if (!rc)
        printf("reproduce %s (budget %s) done in %.1f min: %d claim(s) hold, %d do not (%s)\n", what,
               b->name, (cli_now() - t0) / 60, cl.pass, cl.fail, fcl.path);
    return rc;
}
