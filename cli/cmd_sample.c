/* `cae sample` — Markov chains of samples from a pretrained model
 * (cae/sample.h), written as .npy and drawn as a grid. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cae/sample.h"
#include "cli_common.h"
#include "commands.h"
#include "parse.h"
#include "plot.h"

static const char *sample_usage =
    "usage: cae sample --model CKPT --out DIR [options]\n"
    "\n"
    "Run chains of samples from a pretrained model: for a cae (or any auto-encoder\n"
    "stack) the chain of Rifai et al. 2012, h = f(x), h~ = h + J J^T e with\n"
    "e ~ N(0, sigma^2) in the top code, x = g(h~) decoded down the stack; for an\n"
    "rbm, block Gibbs sampling. Chains start at validation examples of the model's\n"
    "data set. Writes DIR/samples.npy (records x chains x inputs, float, the\n"
    "decoder's means), DIR/start.npy (chains x inputs) and, with --plot, the grid\n"
    "DIR/chains.png and .svg (a row per chain: its start, then every record).\n"
    "\n"
    "  --chains C       chains run together (default 10)\n"
    "  --steps N        steps per chain (default 100)\n"
    "  --every K        record every K-th step (default 10)\n"
    "  --sigma S        standard deviation of the hidden-space noise (default 0.1)\n"
    "  --bernoulli      the next state is a Bernoulli draw from the mean (default: the mean)\n"
    "  --seed S         noise and the chains' starting examples (default 1)\n"
    "  --data SET       where the starting examples come from (default the model's)\n"
    "  --data-dir DIR   where the data sets are (default $CAE_DATA_DIR or ./data)\n"
    "  --threads T      OpenMP threads (default: OpenMP's choice)\n"
    "  --plot           draw the grid with gnuplot (plots/samples.gp)\n";

typedef struct sample_opts {
    const char *model, *out, *data, *data_dir;
    long long chains, steps, every, threads;
    unsigned long long seed;
    double sigma;
    int bernoulli, plot;
} sample_opts;

static int sample_parse_opts(int argc, char **argv, sample_opts *so)
{
    const char *who = "cae sample";
    *so = (sample_opts){.data_dir = cli_default_data_dir(), .chains = 10, .steps = 100, .every = 10,
                        .seed = 1, .sigma = 0.1};
    cli_opt o[] = {
        {"--model", CLI_STR, &so->model, 0, 0, 0, 0},
        {"--out", CLI_STR, &so->out, 0, 0, 0, 0},
        {"--chains", CLI_INT, &so->chains, 1, 100000, 0, 0},
        {"--steps", CLI_INT, &so->steps, 1, 100000000, 0, 0},
        {"--every", CLI_INT, &so->every, 1, 100000000, 0, 0},
        {"--sigma", CLI_REAL, &so->sigma, 0, 1e6, 0, 0},
        {"--bernoulli", CLI_FLAG, &so->bernoulli, 0, 0, 0, 0},
        {"--seed", CLI_U64, &so->seed, 0, 0, 0, 0},
        {"--data", CLI_STR, &so->data, 0, 0, 0, 0},
        {"--data-dir", CLI_STR, &so->data_dir, 0, 0, 0, 0},
        {"--threads", CLI_INT, &so->threads, 0, 256, 0, 0},
        {"--plot", CLI_FLAG, &so->plot, 0, 0, 0, 0},
    };
    const int n = (int)(sizeof o / sizeof o[0]);
    int rc = cli_parse(who, sample_usage, argc, argv, o, n);
    if (rc != CLI_PARSE_RUN) return rc;
    if ((rc = cli_require(who, cli_opt_get(o, n, "--model"))) ||
        (rc = cli_require(who, cli_opt_get(o, n, "--out"))))
        return rc;
    if (so->every > so->steps) {
        fprintf(stderr, "%s: --every %lld is more than --steps %lld: nothing would be recorded\n", who,
                so->every, so->steps);
        return 2;
    }
    return CLI_PARSE_RUN;
}

int cmd_sample_parse(int argc, char **argv)
{
    sample_opts so;
    return sample_parse_opts(argc, argv, &so);
}

/* The grid for gnuplot: an image per chain and record, 1 pixel apart. */
static int write_grid(const char *who, const char *path, const cae_real *start, const cae_real *rec,
                      int64_t C, int R, int rows, int cols)
{
    const int64_t D = (int64_t)rows * cols, W = (int64_t)(R + 1) * (cols + 1), Hh = C * (rows + 1);
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "%s: cannot write %s\n", who, path);
        return 1;
    }
    for (int64_t y = Hh - 1; y >= 0; y--) { /* gnuplot's matrix rows go upwards */
        const int64_t c = y / (rows + 1), py = y % (rows + 1);
        for (int64_t x = 0; x < W; x++) {
            const int64_t r = x / (cols + 1), px = x % (cols + 1);
            double v = 1; /* white gutters */
            if (py < rows && px < cols) {
                const cae_real *img = r == 0 ? start + c * D : rec + ((int64_t)(r - 1) * C + c) * D;
                v = 1 - img[py * cols + px]; /* ink dark */
            }
            fprintf(f, x ? " %.3f" : "%.3f", v);
        }
        fputc('\n', f);
    }
    return fclose(f) ? 1 : 0;
}

int cmd_sample(int argc, char **argv)
{
    const char *who = "cae sample";
    sample_opts so;
    int rc = sample_parse_opts(argc, argv, &so);
    if (rc != CLI_PARSE_RUN) return rc;
    cli_use_threads(so.threads);
    cae_model_info info;
    cae_params *p = NULL, *out = NULL;
    cae_splits *s = NULL;
    if ((rc = cli_load_checkpoint(who, "--model", so.model, &info, &p))) return rc;
    if (info.n_classes > 0 || info.n_layers < 1) {
        fprintf(stderr, "%s: --model %s is %s: sample from a pretrained encoder\n", who, so.model,
                info.n_layers < 1 ? "empty" : "a fine-tuned classifier");
        rc = 2;
        goto done;
    }
    const char *data = so.data ? so.data : info.data;
    if ((rc = cli_load_splits(who, so.data_dir, data, &s))) goto done;
    if ((rc = cli_check_width(who, data, s->valid, info.layer[0].n_in, "--model", so.model))) goto done;
    const int64_t C = so.chains, D = info.layer[0].n_in;
    cae_sample_config c;
    cae_sample_config_default(&c);
    c.chains = C;
    c.steps = (int)so.steps;
    c.every = (int)so.every;
    c.sigma = so.sigma;
    c.bernoulli = so.bernoulli;
    c.seed = so.seed;
    c.threads = (int)so.threads;
    const int R = cae_sample_records(&c);
    cae_error err;
    if (!(out = cae_params_new())) {
        fprintf(stderr, "%s: out of memory\n", who);
        rc = 1;
        goto done;
    }
    cae_tensor *rec = cae_params_add(out, "samples", 3, (int64_t[]){R, C, D});
    cae_tensor *st = cae_params_add(out, "start", 2, (int64_t[]){C, D});
    if (!rec || !st) {
        fprintf(stderr, "%s: %lld records of %lld chains: %s\n", who, (long long)R, (long long)C,
                cae_params_error(out));
        rc = 1;
        goto done;
    }
    cae_rng pick; /* the starting examples: C distinct validation rows when there are enough */
    cae_rng_seed(&pick, so.seed, 0x7374617274u);
    for (int64_t i = 0; i < C; i++) {
        const int64_t row = C <= s->valid->n ? (i * s->valid->n) / C + (int64_t)cae_rng_below(&pick, (uint64_t)(s->valid->n / C))
                                            : (int64_t)cae_rng_below(&pick, (uint64_t)s->valid->n);
        cae_dataset_copy_rows(s->valid, row, 1, st->data + i * D);
    }
    const double t0 = cli_now();
    if (cae_sample(p, &info, st->data, &c, rec->data, &err)) {
        fprintf(stderr, "%s: %s\n", who, err.msg);
        rc = 1;
        goto done;
    }
    const double sec = cli_now() - t0;
    if (cae_export_npy(out, so.out, &err)) {
        fprintf(stderr, "%s: --out %s: %s\n", who, so.out, err.msg);
        rc = 1;
        goto done;
    }
    printf("%lld chains x %lld steps in %.1f s (%.0f steps/s): wrote %s/samples.npy (%d x %lld x %lld) "
           "and %s/start.npy\n", (long long)C, so.steps, sec, (double)(C * so.steps) / (sec > 0 ? sec : 1),
           so.out, R, (long long)C, (long long)D, so.out);
    if (so.plot) {
        char dat[4200], png[4200], vars[9000];
        int rows = s->valid->rows, cols = s->valid->cols;
        if ((int64_t)rows * cols != D) rows = cols = (int)lround(sqrt((double)D));
        snprintf(dat, sizeof dat, "%s/chains.dat", so.out);
        snprintf(png, sizeof png, "%s/chains", so.out);
        if ((int64_t)rows * cols != D) {
            fprintf(stderr, "%s: --plot: %lld inputs are not an image\n", who, (long long)D);
            rc = 1;
            goto done;
        }
        if ((rc = write_grid(who, dat, st->data, rec->data, C, R, rows, cols))) goto done;
        snprintf(vars, sizeof vars, "in='%s'; out='%s'; title='%s: %lld chains, every %lld steps'", dat,
                 png, info.data, (long long)C, so.every);
        if ((rc = cli_plot(who, "samples.gp", vars))) goto done;
        printf("drew %s.png and %s.svg\n", png, png);
    }
    rc = 0;
done:
    cae_params_free(p);
    cae_params_free(out);
    cae_splits_free(s);
    return rc;
}
