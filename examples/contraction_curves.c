/* Contraction curves (Fig. 1 of the paper): how much an encoder shrinks
 * distances around the data, as a function of how far you move.
 *
 * For validation examples x0 and x1 drawn uniformly on the sphere of radius
 * r around x0, the contraction ratio is ||f(x0) - f(x1)|| / r. A CAE is
 * trained to make it small near the data (its penalty is ||J_f(x)||^2,
 * the limit of the squared ratio as r -> 0), so its curve starts lower.
 *
 *   contraction_curves [--quick] [--out PREFIX] [CKPT ...]
 *
 * Without checkpoints it trains an AE and a CAE on a subset of MNIST
 * ($CAE_DATA_DIR or ./data); with them (written by `cae pretrain`) it
 * measures those instead. It writes PREFIX.dat (default
 * contraction_curves.dat: "radius NAME NAME_sd ...") and draws PREFIX.png /
 * PREFIX.svg with plots/contraction.gp, the distances between training
 * examples marked. --quick: a tiny budget (a smoke test).
 * Exit status 0 on success, 1 on any failure. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cae/analysis.h"
#include "charts.h"

int main(int argc, char **argv)
{
    const char *prefix = "contraction_curves", *ckpt[MAX_MODELS];
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
    /* The budget: the full run takes well under a minute on 2 cores. */
    const int64_t n_train = quick ? 1000 : 10000, hidden = quick ? 100 : 1000, n_points = quick ? 100 : 500;
    const int epochs = quick ? 1 : 5, n_radii = quick ? 10 : 40;
    double radii[40];
    for (int r = 0; r < n_radii; r++) radii[r] = (r + 1) * 40.0 / n_radii; /* up to 40, as in Fig. 1 */

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
    int rc = 1;
    for (int i = 0; i < n_models; i++) {
        const int bad = n_ckpt ? load_model(&m[i], ckpt[i], &err)
                               : train_model(&m[i], i ? CAE_MODEL_CAE : CAE_MODEL_AE, s->train, n_train, hidden,
                                             epochs, &err);
        if (bad) {
            fprintf(stderr, "model %d: %s\n", i + 1, err.msg);
            goto done;
        }
    }

    /* The curves: columns radius, then mean and sd per model. */
    const int ncols = 1 + 2 * n_models;
    double table[40 * (1 + 2 * MAX_MODELS)], mean[40], sd[40];
    char sd_names[MAX_MODELS][72];
    const char *names[1 + 2 * MAX_MODELS] = {"radius"};
    for (int r = 0; r < n_radii; r++) table[r * ncols] = radii[r];
    for (int i = 0; i < n_models; i++) {
        cae_encoder_net *e = cae_encoder_net_new(m[i].p, m[i].n_layers, m[i].act, 250, 0, &err);
        if (!e || cae_contraction_curve(e, s->valid, n_points, radii, n_radii, 1, mean, sd, &err)) {
            fprintf(stderr, "%s: %s\n", m[i].name, err.msg);
            cae_encoder_net_free(e);
            goto done;
        }
        cae_encoder_net_free(e);
        for (int r = 0; r < n_radii; r++) {
            table[r * ncols + 1 + 2 * i] = mean[r];
            table[r * ncols + 2 + 2 * i] = sd[r];
        }
        snprintf(sd_names[i], sizeof sd_names[i], "%.63s_sd", m[i].name);
        names[1 + 2 * i] = m[i].name;
        names[2 + 2 * i] = sd_names[i];
    }

    /* Distances between training examples: where the data lives on the r axis. */
    double dmin, dmed, dmax;
    if (cae_distance_stats(s->train, quick ? 200 : 1000, 1, &dmin, &dmed, &dmax, &err)) {
        fprintf(stderr, "distances: %s\n", err.msg);
        goto done;
    }
    char path[4200], comment[512], vars[8600];
    snprintf(path, sizeof path, "%s.dat", prefix);
    snprintf(comment, sizeof comment,
             "contraction ratio over %lld MNIST validation examples\n"
             "distances between training examples: min %.4g median %.4g max %.4g", (long long)n_points, dmin, dmed,
             dmax);
    if (cae_table_write(path, comment, ncols, names, n_radii, table, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        goto done;
    }
    printf("wrote %s\n", path);
    snprintf(vars, sizeof vars, "in='%s'; out='%s'; dmin=%g; dmed=%g; dmax=%g; title='Contraction ratio on MNIST'",
             path, prefix, dmin, dmed, dmax);
    const int g = run_gnuplot("contraction.gp", vars);
    if (g == 1) {
        fprintf(stderr, "gnuplot failed on %s\n", path);
        goto done;
    }
    printf(g ? "gnuplot not found: no chart (the data is in %s.dat)\n" : "wrote %s.png and %s.svg\n", prefix, prefix);

    /* What the curve shows: the ratio nearest the data, model by model. */
    printf("summary: ratio at r = %g:", radii[0]);
    for (int i = 0; i < n_models; i++) printf(" %s %.3f%s", m[i].name, table[1 + 2 * i], i + 1 < n_models ? "," : "");
    if (!n_ckpt)
        printf(" (CAE/AE = %.2f: %s)", table[3] / table[1],
               table[3] < table[1] ? "the CAE contracts more near the data" : "the CAE does not contract more here");
    printf("\n");
    rc = 0;
done:
    for (int i = 0; i < n_models; i++) cae_params_free(m[i].p);
    cae_splits_free(s);
    return rc;
}
