/* The figures of `cae reproduce`: Fig. 1 (contraction curves of the six
 * Table 1 models on MNIST), Fig. 2 (their Jacobian spectra), Fig. 3
 * (contraction through 1, 2 and 3 stacked CAEs on rot) and the training
 * curves of the chosen CAE — data files and charts in OUT/figures. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cae/analysis.h"
#include "cae/checkpoint.h"
#include "cli_common.h"
#include "plot.h"
#include "reproduce.h"

typedef struct loaded_model {
    cae_model_info info;
    cae_params *p;
    char name[32];
} loaded_model;

static int load_run(const rp_ctx *c, const rp_spec *s, loaded_model *m)
{
    char name[256], path[4400];
    rp_run_name(s, name, sizeof name);
    snprintf(path, sizeof path, "%s/runs/%s/pretrain.ckpt", c->out, name);
    snprintf(m->name, sizeof m->name, "%s", cae_model_kind_name(s->kind));
    return cli_load_checkpoint(c->who, "--out", path, &m->info, &m->p);
}

static void radii_grid(const rp_budget *b, double *r)
{
    for (int i = 0; i < b->n_radii; i++) r[i] = 40.0 * (i + 1) / b->n_radii;
}

/* Curves of n encoders (net[i] named names[i]) on d -> PREFIX.dat + chart. */
static int curves(const rp_ctx *c, cae_encoder_net **net, const char *const *names, int n,
                  const cae_dataset *d, const cae_dataset *train, const char *prefix,
                  const char *title, double *first_ratio, double *mean_ratio)
{
    const rp_budget *b = c->b;
    double radii[64], *table = calloc((size_t)b->n_radii * (size_t)(1 + 2 * n), sizeof *table);
    double *mean = calloc((size_t)b->n_radii, sizeof *mean), *sd = calloc((size_t)b->n_radii, sizeof *sd);
    const char **cols = calloc((size_t)(1 + 2 * n), sizeof *cols);
    char(*sdname)[48] = calloc((size_t)n, sizeof *sdname);
    char path[4400], vars[5000], comment[512];
    cae_error err;
    int rc = 1;
    if (!table || !mean || !sd || !cols || !sdname) goto done;
    radii_grid(b, radii);
    cols[0] = "radius";
    const int ncol = 1 + 2 * n;
    for (int r = 0; r < b->n_radii; r++) table[r * ncol] = radii[r];
    for (int i = 0; i < n; i++) {
        if (cae_contraction_curve(net[i], d, b->points, radii, b->n_radii, c->seed, mean, sd, &err)) {
            fprintf(stderr, "%s: %s: %s\n", c->who, prefix, err.msg);
            goto done;
        }
        cols[1 + 2 * i] = names[i];
        snprintf(sdname[i], sizeof sdname[i], "%s_sd", names[i]);
        cols[2 + 2 * i] = sdname[i];
        double s = 0;
        for (int r = 0; r < b->n_radii; r++) {
            table[r * ncol + 1 + 2 * i] = mean[r];
            table[r * ncol + 2 + 2 * i] = sd[r];
            s += mean[r];
        }
        first_ratio[i] = mean[0];
        mean_ratio[i] = s / b->n_radii;
    }
    double dmin, dmed, dmax;
    if (cae_distance_stats(train, c->b->points > 200 ? 1000 : 200, c->seed, &dmin, &dmed, &dmax, &err)) {
        fprintf(stderr, "%s: %s\n", c->who, err.msg);
        goto done;
    }
    snprintf(comment, sizeof comment,
             "%s\nmean ratio ||f(x0)-f(x1)||/r over %lld validation points, x1 uniform on the sphere of radius r\n"
             "distances between training examples: min %.4g median %.4g max %.4g",
             title, (long long)b->points, dmin, dmed, dmax);
    snprintf(path, sizeof path, "%s.dat", prefix);
    if (cae_table_write(path, comment, ncol, cols, b->n_radii, table, &err)) {
        fprintf(stderr, "%s: %s\n", c->who, err.msg);
        goto done;
    }
    snprintf(vars, sizeof vars, "in='%s'; out='%s'; dmin=%g; dmed=%g; dmax=%g; title='%s'", path, prefix,
             dmin, dmed, dmax, title);
    rc = cli_plot(c->who, "contraction.gp", vars);
    if (!rc) printf("  wrote %s.dat, %s.png, %s.svg\n", prefix, prefix, prefix);
done:
    free(table);
    free(mean);
    free(sd);
    free(cols);
    free(sdname);
    return rc;
}

static int fig1_fig2(const rp_ctx *c, const char *data_dir, rp_claims *cl)
{
    loaded_model m[RP_N_MODELS];
    memset(m, 0, sizeof m);
    cae_encoder_net *net[RP_N_MODELS] = {0};
    const char *names[RP_N_MODELS];
    cae_splits *sp = NULL;
    char prefix[4200], path[4400], vars[9000];
    cae_error err;
    int rc = 1;
    printf("figures 1 and 2 (MNIST, the model of each kind chosen for Table 1):\n");
    for (int k = 0; k < RP_N_MODELS; k++) {
        rp_spec s;
        rp_result r;
        if (rp_best_of(c, "mnist", data_dir, rp_paper1[k].kind, c->b->grid, &s, &r) || load_run(c, &s, &m[k]))
            goto done;
        names[k] = m[k].name;
        cae_act act = m[k].info.layer[0].act;
        if (!(net[k] = cae_encoder_net_new(m[k].p, 1, &act, 500, c->threads, &err))) {
            fprintf(stderr, "%s: %s\n", c->who, err.msg);
            goto done;
        }
    }
    if (cli_load_splits(c->who, data_dir, "mnist", &sp)) goto done;
    double first[RP_N_MODELS], avg[RP_N_MODELS];
    snprintf(prefix, sizeof prefix, "%s/figures/fig1-contraction", c->out);
    if (curves(c, net, names, RP_N_MODELS, sp->valid, sp->train, prefix,
               "Fig. 1: contraction curves on MNIST", first, avg))
        goto done;
    int other = 1; /* the lowest of the other models */
    for (int k = 2; k < RP_N_MODELS; k++)
        if (first[k] < first[other]) other = k;
    rp_claim(cl, first[0] < first[other],
             "Fig. 1: CAE's contraction curve is the lowest at the smallest radius (CAE %.3f; lowest "
             "other: %s %.3f; AE %.3f)",
             first[0], names[other], first[other], first[RP_N_MODELS - 1]);
    /* Fig. 2: spectra. */
    const int64_t nv = 784;
    const int ncol = 1 + 2 * RP_N_MODELS;
    double *table = calloc((size_t)(nv * ncol), sizeof *table), mean[784], sd[784], area[RP_N_MODELS];
    const char *cols[1 + 2 * RP_N_MODELS];
    char sdn[RP_N_MODELS][48];
    if (!table) goto done;
    cols[0] = "index";
    int64_t got = 0;
    for (int k = 0; k < RP_N_MODELS; k++) {
        cae_act act = m[k].info.layer[0].act;
        if (cae_jacobian_spectrum(m[k].p, 1, &act, sp->valid, c->b->spectrum, mean, sd, &got, &err)) {
            fprintf(stderr, "%s: %s\n", c->who, err.msg);
            free(table);
            goto done;
        }
        cols[1 + 2 * k] = names[k];
        snprintf(sdn[k], sizeof sdn[k], "%s_sd", names[k]);
        cols[2 + 2 * k] = sdn[k];
        area[k] = 0;
        for (int64_t i = 0; i < got; i++) {
            table[i * ncol] = (double)(i + 1);
            table[i * ncol + 1 + 2 * k] = mean[i];
            table[i * ncol + 2 + 2 * k] = sd[i];
            area[k] += mean[0] > 0 ? mean[i] / mean[0] : 0;
        }
        area[k] /= (double)got;
    }
    snprintf(prefix, sizeof prefix, "%s/figures/fig2-spectrum", c->out);
    snprintf(path, sizeof path, "%s.dat", prefix);
    char comment[256];
    snprintf(comment, sizeof comment,
             "Fig. 2: singular values of J_f(x), sorted, averaged index-wise over %d MNIST validation examples",
             c->b->spectrum);
    rc = cae_table_write(path, comment, ncol, cols, got, table, &err);
    free(table);
    if (rc) {
        fprintf(stderr, "%s: %s\n", c->who, err.msg);
        goto done;
    }
    snprintf(vars, sizeof vars, "in='%s'; out='%s'; title='Fig. 2: Jacobian singular-value spectra on MNIST'",
             path, prefix);
    if ((rc = cli_plot(c->who, "spectrum.gp", vars))) goto done;
    printf("  wrote %s.dat, %s.png, %s.svg\n", prefix, prefix, prefix);
    int other2 = 1;
    for (int k = 2; k < RP_N_MODELS; k++)
        if (area[k] < area[other2]) other2 = k;
    rp_claim(cl, area[0] < area[other2],
             "Fig. 2: CAE's spectrum drops fastest (mean of s_i/s_1: CAE %.4f; fastest other: %s "
             "%.4f; AE %.4f)",
             area[0], names[other2], area[other2], area[RP_N_MODELS - 1]);
    rc = 0;
done:
    for (int k = 0; k < RP_N_MODELS; k++) {
        cae_encoder_net_free(net[k]);
        cae_params_free(m[k].p);
    }
    cae_splits_free(sp);
    return rc;
}

static int fig3(const rp_ctx *c, const char *data_dir, rp_claims *cl)
{
    char var_root[4200], prefix[4200];
    cae_error err;
    rp_variations_root(c, data_dir, var_root, sizeof var_root);
    if (rp_ensure_variations(c, data_dir, var_root)) return 1;
    /* The widths (28 x 28 inputs), since --hidden2 gives the first layer its own. */
    char widths[96], title[160];
    snprintf(widths, sizeof widths, "784-%lld-%lld-%lld", (long long)rp_layer_units(c->b, "rot", 1),
             (long long)rp_layer_units(c->b, "rot", 2), (long long)rp_layer_units(c->b, "rot", 3));
    printf("figure 3 (a stack of 3 CAEs pretrained on rot, %s):\n", widths);
    const double *vals;
    rp_grid(CAE_MODEL_CAE, &vals);
    rp_spec s = {"rot", var_root, CAE_MODEL_CAE, vals[0], 3, 0, 0, 0};
    rp_result r;
    loaded_model m;
    memset(&m, 0, sizeof m);
    cae_splits *sp = NULL;
    cae_encoder_net *net[3] = {0};
    int rc = 1;
    if (rp_run(c, &s, &r) || load_run(c, &s, &m) || cli_load_splits(c->who, var_root, "rot", &sp)) goto done;
    static const char *const names[3] = {"1-layer", "2-layers", "3-layers"};
    cae_act act[3];
    for (int k = 0; k < 3; k++) act[k] = m.info.layer[k].act;
    for (int k = 0; k < 3; k++)
        if (!(net[k] = cae_encoder_net_new(m.p, k + 1, act, 500, c->threads, &err))) {
            fprintf(stderr, "%s: %s\n", c->who, err.msg);
            goto done;
        }
    snprintf(title, sizeof title, "Fig. 3: contraction through 1, 2, 3 stacked CAEs on rot (%s)", widths);
    double first[3], avg[3];
    snprintf(prefix, sizeof prefix, "%s/figures/fig3-depth", c->out);
    if (curves(c, net, names, 3, sp->valid, sp->train, prefix, title, first, avg)) goto done;
    rp_claim(cl, avg[2] < avg[0],
             "Fig. 3: deeper is more contractive (mean ratio over the radii: %.3f, %.3f, %.3f for 1, 2, 3 layers)",
             avg[0], avg[1], avg[2]);
    rc = 0;
done:
    for (int k = 0; k < 3; k++) cae_encoder_net_free(net[k]);
    cae_params_free(m.p);
    cae_splits_free(sp);
    return rc;
}

static int training_curves(const rp_ctx *c, const char *data_dir)
{
    rp_spec s;
    rp_result r;
    if (rp_best_of(c, "mnist", data_dir, CAE_MODEL_CAE, c->b->grid, &s, &r)) return 1;
    char name[256], ftdir[4300], in[4400], out[4400], vars[9000];
    rp_run_name(&s, name, sizeof name);
    rp_ft_dir(c, &s, ftdir, sizeof ftdir);
    static const struct {
        const char *file, *fig, *title, *ylabel;
    } t[2] = {{"pretrain-L1.dat", "training-pretrain", "CAE pretraining on MNIST (chosen lambda)",
               "objective / reconstruction cross-entropy"},
              {"finetune.dat", "training-finetune", "MLP fine-tuning from the CAE on MNIST",
               "objective / validation error rate"}};
    for (int i = 0; i < 2; i++) {
        if (i == 0)
            snprintf(in, sizeof in, "%s/runs/%s/%s", c->out, name, t[i].file);
        else
            snprintf(in, sizeof in, "%s/%s", ftdir, t[i].file);
        snprintf(out, sizeof out, "%s/figures/%s", c->out, t[i].fig);
        snprintf(vars, sizeof vars, "in='%s'; out='%s'; title='%s'; ylabel='%s'", in, out, t[i].title,
                 t[i].ylabel);
        if (cli_plot(c->who, "training.gp", vars)) return 1;
        printf("  wrote %s.png, %s.svg\n", out, out);
    }
    return 0;
}

int rp_figures(const rp_ctx *c, const char *data_dir, rp_claims *cl)
{
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/figures", c->out);
    if (rp_mkdirs(dir)) {
        fprintf(stderr, "%s: cannot create %s\n", c->who, dir);
        return 1;
    }
    if (fig1_fig2(c, data_dir, cl) || fig3(c, data_dir, cl) || training_curves(c, data_dir)) return 1;
    return 0;
}
