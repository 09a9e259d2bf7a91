/* `cae reproduce`: budgets, one experiment run (pretrain a stack, measure
 * the encoder, fine-tune, test), and the cache that makes reruns resume. */
#ifndef CAE_CLI_REPRODUCE_H
#define CAE_CLI_REPRODUCE_H

#include <stdint.h>
#include <stdio.h>

#include "cae/data.h"
#include "cae/model.h"

typedef struct rp_budget {
    const char *name;
    int64_t limit;       /* training examples (0 = all) */
    int64_t eval_limit;  /* validation / test examples used (0 = all) */
    int64_t hidden;      /* units per layer */
    int pre_epochs;      /* pretraining epochs per layer, at least */
    int64_t pre_examples;/* ... and at least this many examples seen per layer */
    int ft_epochs;       /* fine-tuning epochs (at most) */
    int patience;        /* early stopping on validation error */
    int grid;            /* grid values tried per model (first ones) */
    int grid2;           /* ... for Table 2's first layer */
    int grid_up;         /* ... for CAE-2's second layer (rp_grid_upper) */
    int points;          /* contraction-curve points */
    int n_radii;         /* radii 1..40 spread over this many values */
    int spectrum;        /* examples behind each spectrum */
    int small_variations;/* Table 2 on the --small generated sets */
    const char *const *table2_sets;
    const double *ft_lrs; /* fine-tuning learning rates: the first on every grid */
    int n_ft_lrs;         /* value, the others as rp_grid_rates_winner says */
    int64_t hidden2;      /* units of the first layer on the variations (Table 2, and
                             Fig. 3's stack, which shares rot's runs); 0: hidden */
    int refit;            /* the test error of a chosen row is its refit's: the row's
                             fine-tuning redone on train + valid for the epochs it
                             kept (rp_test) */
} rp_budget;

/* One run: an n-layer stack of `kind` layers with hyper-parameter `hyper`
 * (lambda, noise or wd by kind; unused for ae and rbm), fine-tuned. */
typedef struct rp_spec {
    const char *data;     /* mnist, fashion or a variation */
    const char *data_dir; /* where the splits load from */
    cae_model_kind kind;
    double hyper;
    int n_layers;
    int finetune;         /* 0: pretraining (and metrics) only */
    double ft_lr;         /* fine-tuning learning rate */
    double upper;         /* the hyper-parameter of layers 2..n (0: hyper) */
} rp_spec;

typedef struct rp_result {
    double valid_error, test_error, test_ci; /* test: NaN until rp_test */
    double jac_norm, jac_sqnorm, jac_entry, sat, recon;
    double pre_seconds, ft_seconds; /* of the top layer's pretraining; of fine-tuning */
    int pre_epochs, epochs_ft;
} rp_result;

typedef struct rp_ctx {
    const char *who;
    const char *out;      /* the output directory */
    const rp_budget *b;
    uint64_t seed;
    int threads;
    int verbose;
    int jobs;             /* worker processes that fill the cache first (1: none) */
    int quiet;            /* no "cached" lines (looking up finished runs) */
} rp_ctx;

/* The name of a hyper-parameter of a kind ("lambda", "noise", "wd", "-"). */
const char *rp_hyper_name(cae_model_kind kind);
/* The grid of a kind (values in trial order); returns the count. */
int rp_grid(cae_model_kind kind, const double **values);
/* CAE-2's second-layer lambdas, tried in this order on the first layer
 * chosen for CAE-1 (greedy, layer by layer); returns the count. */
int rp_grid_upper(const double **values);
/* The hyper-parameter of layer k (1-based) of s. */
double rp_layer_hyper(const rp_spec *s, int k);
/* The units of layer k (1-based) of a stack on data under b: hidden2 for a
 * first layer on a variation set when b sets it, else hidden. */
int64_t rp_layer_units(const rp_budget *b, const char *data, int k);
/* A first layer's units on data over the budget's: what a run's cost scales
 * by (the layer above reads its codes). */
double rp_layer1_scale(const rp_budget *b, const char *data);
/* runs/<data>-<kind>[-<hyper>][-L<n>[-<upper>]] (upper when it differs) */
void rp_run_name(const rp_spec *s, char *buf, size_t len);
/* OUT/runs/NAME/ft-lrX: one fine-tuning of a run. */
void rp_ft_dir(const rp_ctx *c, const rp_spec *s, char *buf, size_t len);
/* Pretraining epochs of a layer trained on n_train examples: pre_epochs, or
 * more when they would show it fewer than pre_examples examples. */
int rp_pre_epochs(const rp_budget *b, int64_t n_train);
/* Training examples of a data set under b (before a run loads it), and the
 * fine-tuning epochs a run typically takes: the plan's and the workers'
 * estimates. */
double rp_train_size(const rp_budget *b, const char *data);
int rp_ft_epochs_typical(const rp_budget *b);
/* Examples x epochs of a refit on data (rp_test) as the plan estimates it:
 * train + valid for the epochs a fine-tuning typically keeps; 0 when the
 * budget does not refit. */
double rp_refit_examples(const rp_budget *b, const char *data);
/* Run (or load from the cache) one spec: pretraining (OUT/runs/NAME/
 * pretrain.ckpt; a stack of n layers trains only its top layer, on the
 * cached run of n-1), then, if s->finetune, fine-tuning at s->ft_lr with
 * early stopping on the validation set. The test set is not read. Returns
 * 0, or 1 after printing the reason. */
int rp_run(const rp_ctx *c, const rp_spec *s, rp_result *r);
/* The test error of a fine-tuned run (cached in its ft-lrX/test.txt): read
 * once per chosen model. When the budget refits, that of the run's refit
 * (ft-lrX/refit/: trained first if not cached, test.txt). 0 or 1. */
int rp_test(const rp_ctx *c, const rp_spec *s, rp_result *r);
/* mkdir -p; 0 or -1. */
int rp_mkdirs(const char *path);

/* The 1-layer run of a grid value v, fine-tuned at rate lr. */
rp_spec rp_grid_spec(const char *data, const char *data_dir, cae_model_kind kind, double v, double lr);
/* The best of a kind's grid (its first `grid` values, 1-layer runs) on
 * validation error, each fine-tuned at the budget's first learning rate
 * (running what is not cached). Returns 0 or 1. */
int rp_grid_winner(const rp_ctx *c, const char *data, const char *data_dir, cae_model_kind kind, int grid,
                   rp_spec *best, rp_result *bres);
/* The (value, rate) of a kind's grid (its first `grid` values) with the
 * lowest validation error, searched in three steps: every value at the
 * budget's first fine-tuning rate; the other rates on that winner; and
 * every value at each rate that did better than the first on it (the
 * first on a tie: the first rate's values, then each further rate's, in
 * grid order). Where the first rate diverges (the background sets,
 * Fashion-MNIST) a value judged there alone would be chosen by chance;
 * where it does not (MNIST) no value pays for another rate
 * (docs/REPRODUCE.md, phase 7). Runs what is not cached. 0 or 1. */
int rp_grid_rates_winner(const rp_ctx *c, const char *data, const char *data_dir, cae_model_kind kind,
                         int grid, rp_spec *best, rp_result *bres);
/* Whether rate j (>= 1) did better than the first on w0 (result r0, at
 * the first rate): its run is looked up or trained. 0 or 1. */
int rp_rate_wanted(const rp_ctx *c, const rp_spec *w0, const rp_result *r0, int j, int *wanted);
/* The 2-layer run on l1's first layer with second-layer value `upper`,
 * fine-tuned at the budget's first learning rate. */
rp_spec rp_upper_spec(const rp_ctx *c, const rp_spec *l1, double upper);
/* CAE-2: the best second-layer value of rp_grid_upper (its first `grid`)
 * on top of l1's first layer, at the budget's first learning rate. 0 or 1. */
int rp_upper_winner(const rp_ctx *c, const rp_spec *l1, int grid, rp_spec *best, rp_result *bres);
/* From a grid winner: the budget's other fine-tuning rates on its
 * pretrained encoder, then the test error of the (hyper-parameter, rate)
 * with the lowest validation error only. 0 or 1. */
int rp_rates_and_test(const rp_ctx *c, rp_spec *best, rp_result *bres);
/* The same choice without the test: best becomes the (hyper-parameter,
 * rate) with the lowest validation error. 0 or 1. */
int rp_best_rate(const rp_ctx *c, rp_spec *best, rp_result *bres);
/* A model's row: rp_grid_rates_winner, then the test error of that
 * (hyper-parameter, rate) only. Returns 0 or 1. */
int rp_best_of(const rp_ctx *c, const char *data, const char *data_dir, cae_model_kind kind, int grid,
               rp_spec *best, rp_result *bres);

/* The paper's Table 1 rows in its order: CAE, DAE-g, RBM, DAE-b, AE+wd, AE. */
enum { RP_N_MODELS = 6 };
typedef struct rp_paper_row {
    cae_model_kind kind;
    double mnist, sat, cifar; /* test error %, SAT %, CIFAR-bw error % */
} rp_paper_row;
extern const rp_paper_row rp_paper1[RP_N_MODELS];

/* Claims of the paper checked on our output: printed, and listed in f. */
typedef struct rp_claims {
    FILE *f;
    int pass, fail;
} rp_claims;
void rp_claim(rp_claims *cl, int ok, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Where the variations live for this budget (the data dir, or OUT/small-data
 * for the small sets), and generating them there when missing (0 or 1). */
void rp_variations_root(const rp_ctx *c, const char *data_dir, char *buf, size_t len);
int rp_ensure_variations(const rp_ctx *c, const char *data_dir, const char *var_root);

/* With c->jobs > 1: train every run the targets need with c->jobs worker
 * processes (fork), each run queued as soon as the runs it depends on have
 * ended (a grid's winner, the layer below; reproduce_jobs.c), so that the
 * tables and figures then find them cached. Each run is deterministic for a given --threads, so the
 * output is the same as without workers. Returns 0 or 1. */
int rp_prefetch(const rp_ctx *c, const char *data_dir, int do1, int do2, int dof);

/* Fig. 1-3 and the training curves into OUT/figures. Returns 0 or 1. */
int rp_figures(const rp_ctx *c, const char *data_dir, rp_claims *cl);

#endif
