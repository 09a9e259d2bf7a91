/* Jacobian spectra (Fig. 2 of the paper): in how many directions around a
 * data point does the encoder still react?
 *
 * The singular values s_1 >= s_2 >= ... of J_f(x) (hidden x 784) at a
 * validation example x say how much f stretches each input direction.
 * Averaged index by index, a CAE's spectrum falls faster than an AE's: its
 * code reacts in a few directions (tangents of the data manifold) only.
 *
 *   jacobian_spectrum [--quick] [--out PREFIX] [CKPT ...]
 *
 * Trains an AE and a CAE on a subset of MNIST ($CAE_DATA_DIR or ./data), or
 * measures the checkpoints given (`cae pretrain`). Writes PREFIX.dat
 * ("index NAME NAME_sd ...", nan past a model's last value) and PREFIX.png /
 * .svg (plots/spectrum.gp). --quick: a smoke test. Exit 0, or 1 on failure. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cae/analysis.h"
#include "charts.h"

int main(int argc, char **argv)
{
    const char *prefix = "jacobian_spectrum", *ckpt[MAX_MODELS];
    int quick = 0, n_ckpt = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) quick = 1;
        else if (!strcmp(argv[i], "--out") && i + 1 < argc) prefix = argv[++i];
        else if (argv[i][0] != '-' && n_ckpt < MAX_MODELS) ckpt[n_ckpt++] = argv[i];
        else {
            fprintf(stderr, "usage: %s [--quick] [--out PREFIX] [CKPT ...]\n", argv[0]);
            return 1;
        }
    }
    /* The budget: the full run takes about a minute on 2 cores. */
    const int64_t n_train = quick ? 1000 : 10000, hidden = quick ? 100 : 500, n_examples = quick ? 20 : 50;
    const int epochs = quick ? 1 : 5;

    cae_error err = {CAE_ERR_NOMEM, "out of memory"};
    const char *dir = getenv("CAE_DATA_DIR") && *getenv("CAE_DATA_DIR") ? getenv("CAE_DATA_DIR") : "data";
    cae_splits *s = NULL;
    if (cae_splits_load(dir, "mnist", &s, &err)) {
        fprintf(stderr, "cannot load MNIST: %s\n", err.msg);
        return 1;
    }
    model m[MAX_MODELS];
    memset(m, 0, sizeof m);
    const int n_models = n_ckpt ? n_ckpt : 2;
    double *mean[MAX_MODELS] = {0}, *sd[MAX_MODELS] = {0}, *table = NULL;
    int64_t nv[MAX_MODELS] = {0}, rows = 0;
    int rc = 1;
    for (int i = 0; i < n_models; i++) {
        const int bad = n_ckpt ? load_model(&m[i], ckpt[i], &err)
                               : train_model(&m[i], i ? CAE_MODEL_CAE : CAE_MODEL_AE, s->train, n_train, hidden,
                                             epochs, &err);
        if (bad) {
            fprintf(stderr, "model %d: %s\n", i + 1, err.msg);
            goto done;
        }
        /* At most min(inputs, outputs) singular values. */
        mean[i] = malloc((size_t)s->valid->dim * sizeof(double));
        sd[i] = malloc((size_t)s->valid->dim * sizeof(double));
        if (!mean[i] || !sd[i] || cae_jacobian_spectrum(m[i].p, m[i].n_layers, m[i].act, s->valid, n_examples,
                                                        mean[i], sd[i], &nv[i], &err)) {
            fprintf(stderr, "%s: %s\n", m[i].name, mean[i] && sd[i] ? err.msg : "out of memory");
            goto done;
        }
        if (nv[i] > rows) rows = nv[i];
    }

    /* The table: index, then mean and sd per model; nan where a model has no more values. */
    const int ncols = 1 + 2 * n_models;
    char sd_names[MAX_MODELS][72];
    const char *names[1 + 2 * MAX_MODELS] = {"index"};
    if (!(table = malloc((size_t)(rows * ncols) * sizeof *table))) goto done;
    for (int64_t r = 0; r < rows; r++) {
        table[r * ncols] = (double)(r + 1);
        for (int i = 0; i < n_models; i++) {
            table[r * ncols + 1 + 2 * i] = r < nv[i] ? mean[i][r] : NAN;
            table[r * ncols + 2 + 2 * i] = r < nv[i] ? sd[i][r] : NAN;
        }
    }
    for (int i = 0; i < n_models; i++) {
        snprintf(sd_names[i], sizeof sd_names[i], "%.63s_sd", m[i].name);
        names[1 + 2 * i] = m[i].name;
        names[2 + 2 * i] = sd_names[i];
    }
    char path[4200], comment[256], vars[8600];
    snprintf(path, sizeof path, "%s.dat", prefix);
    snprintf(comment, sizeof comment, "singular values of J_f(x), mean and sd over %lld MNIST validation examples",
             (long long)n_examples);
    if (cae_table_write(path, comment, ncols, names, rows, table, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        goto done;
    }
    printf("wrote %s\n", path);
    snprintf(vars, sizeof vars, "in='%s'; out='%s'; title='Singular values of the encoder Jacobian on MNIST'",
             path, prefix);
    const int g = run_gnuplot("spectrum.gp", vars);
    if (g == 1) {
        fprintf(stderr, "gnuplot failed on %s\n", path);
        goto done;
    }
    printf(g ? "gnuplot not found: no chart (the data is in %s.dat)\n" : "wrote %s.png and %s.svg\n", prefix, prefix);

    /* What the spectrum shows: how many directions keep at least half the
     * largest sensitivity (fewer = a lower-dimensional tangent space). */
    printf("summary: singular values above half the largest:");
    for (int i = 0; i < n_models; i++) {
        int64_t k = 0;
        while (k < nv[i] && mean[i][k] >= 0.5 * mean[i][0]) k++;
        printf(" %s %lld of %lld (s1 %.3g)%s", m[i].name, (long long)k, (long long)nv[i], mean[i][0],
               i + 1 < n_models ? "," : "");
    }
    printf("\n");
    rc = 0;
done:
    for (int i = 0; i < n_models; i++) {
        cae_params_free(m[i].p);
        free(mean[i]);
        free(sd[i]);
    }
    free(table);
    cae_splits_free(s);
    return rc;
}
