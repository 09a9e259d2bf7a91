/* `cae analyze` — the paper's figures from checkpoints: contraction curves
 * (Fig. 1, and Fig. 3 through 1, 2, 3 stacked layers) and Jacobian spectra
 * (Fig. 2). Each writes a gnuplot table PREFIX.dat (cae_table_write) and,
 * with --plot, PREFIX.png / PREFIX.svg through plots/contraction.gp or
 * plots/spectrum.gp.
 *
 * Curves: one per (model, depth). --model and --name repeat; --depths
 * lists the depths (default: all of each checkpoint's layers), so one
 * stacked checkpoint with --depths 1,2,3 gives Fig. 3. Option parsing is
 * split from the work (cli/parse.h): cmd_analyze_parse has no side effects. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cae/analysis.h"
#include "cli_common.h"
#include "commands.h"
#include "parse.h"
#include "plot.h"

#define AN_MAX_MODELS 16
#define AN_MAX_CURVES (AN_MAX_MODELS * CAE_MAX_LAYERS)
#define AN_MAX_RADII 100000
#define AN_NAME_LEN 48

static const char *analyze_usage =
    "usage: cae analyze contraction|spectrum [options]   (cae analyze SUB --help)\n"
    "\n"
    "The geometry of trained encoders, as the paper's figures:\n"
    "  contraction  mean ||f(x0) - f(x1)|| / r for x1 uniform on the sphere of radius r\n"
    "               around validation examples x0, against r (Fig. 1; Fig. 3 with --depths)\n"
    "  spectrum     singular values of J_f(x), sorted, averaged index by index (Fig. 2)\n"
    "Each writes PREFIX.dat (a gnuplot table) and, with --plot, PREFIX.png and PREFIX.svg.\n";

#define AN_COMMON_HELP                                                                              \
    "  --model CKPT        a checkpoint (repeat for several models, up to 16)\n"                     \
    "  --name NAME         its name in the table and the legend (repeat: one per --model;\n"        \
    "                      default the file name without extension; spaces, quotes, '#'\n"         \
    "                      and '_' become '-', since column heads are single words)\n"              \
    "  --depths LIST       encoder depths, e.g. 1,2,3: one curve per model and depth,\n"            \
    "                      through layers 1..depth (default: all of each model's layers).\n"        \
    "                      One model with several depths names its curves \"1-layer\",\n"          \
    "                      \"2-layers\", ...; several models \"NAME-1-layer\", ...\n"               \
    "  --layers K          the same as --depths K\n"                                                \
    "  --data SET          data set (default: the one the first model was trained on)\n"           \
    "  --data-dir DIR      where the data sets are (default $CAE_DATA_DIR or ./data)\n"            \
    "  --split S           valid (default) or test: where the examples come from\n"                \
    "  --threads T         OpenMP threads (default: OpenMP's choice)\n"                             \
    "  --out PREFIX        write PREFIX.dat (a trailing .dat is dropped) [required]\n"             \
    "  --plot              also PREFIX.png and PREFIX.svg (gnuplot; scripts in $CAE_PLOTS_DIR)\n" \
    "  --title TEXT        chart title\n"

static const char *contraction_usage =
    "usage: cae analyze contraction --model CKPT [--model CKPT ...] --out PREFIX [options]\n"
    "\n"
    "Contraction curves (Fig. 1, Fig. 3): for the first N examples x0 of the split and\n"
    "one direction u per example, uniform on the unit sphere, the mean and standard\n"
    "deviation over examples of ||f(x0 + r u) - f(x0)|| / r at each radius r. The\n"
    "min / median / max distance between training examples is marked on the chart.\n"
    "\n" AN_COMMON_HELP
    "  --radii A:B:STEP    radii A, A+STEP, ..., <= B; A > 0 (default 1:40:1)\n"
    "  --points N          examples x0 (default 500)\n"
    "  --distances N       training examples sampled for the distance marks (default 1000;\n"
    "                      0: no marks)\n"
    "  --seed S            directions and the distance sample (default 1)\n"
    "  --logy              log scale for the ratio axis\n"
    "\n"
    "PREFIX.dat: '#' comment lines (distances, models, points, seed), then the header\n"
    "\"radius NAME NAME_sd ...\" and one row per radius.\n";

static const char *spectrum_usage =
    "usage: cae analyze spectrum --model CKPT [--model CKPT ...] --out PREFIX [options]\n"
    "\n"
    "Jacobian spectra (Fig. 2): the singular values of J_f(x) (LAPACK gesdd) at each of\n"
    "the first N examples of the split, sorted in decreasing order, averaged index by\n"
    "index, with their standard deviation (a band on the chart, log scale).\n"
    "\n" AN_COMMON_HELP
    "  --examples N        examples (default 100)\n"
    "\n"
    "PREFIX.dat: '#' comment lines, then the header \"index NAME NAME_sd ...\" and one row\n"
    "per index 1..max over curves of min(inputs, outputs); shorter curves end in nan.\n";

typedef enum { AN_CONTRACTION, AN_SPECTRUM } an_sub;

typedef struct an_opts {
    an_sub sub;
    const char *model[AN_MAX_MODELS], *name[AN_MAX_MODELS];
    int n_model, n_name;
    int depth[CAE_MAX_LAYERS], n_depth; /* 0: each model's own depth */
    const char *data, *data_dir, *split, *out, *title;
    double r0, r1, rstep;
    int n_radii;
    long long points, distances, examples, threads;
    unsigned long long seed;
    int plot, logy;
} an_opts;

/* "1,2,3" -> depths, each 1..CAE_MAX_LAYERS, no repeats. */
static int parse_depths(const char *who, const char *opt, const char *text, an_opts *o)
{
    const char *s = text;
    o->n_depth = 0;
    while (*s) {
        char *end = NULL;
        const long v = strtol(s, &end, 10);
        if (end == s || v < 1 || v > CAE_MAX_LAYERS || (*end && *end != ',') || o->n_depth == CAE_MAX_LAYERS)
            goto bad;
        for (int k = 0; k < o->n_depth; k++)
            if (o->depth[k] == v) goto bad;
        o->depth[o->n_depth++] = (int)v;
        s = *end ? end + 1 : end;
        if (*end && !*s) goto bad;
    }
    if (o->n_depth) return 0;
bad:
    fprintf(stderr, "%s: bad value for %s: '%s' (expected distinct depths in 1..%d, e.g. 1,2,3)\n", who,
            opt, text, CAE_MAX_LAYERS);
    return 2;
}

/* "A:B:STEP" with 0 < A <= B, STEP > 0. */
static int parse_radii(const char *who, const char *text, an_opts *o)
{
    double v[3];
    const char *s = text;
    for (int k = 0; k < 3; k++) {
        char *end = NULL;
        v[k] = strtod(s, &end);
        if (end == s || !isfinite(v[k]) || *end != (k < 2 ? ':' : '\0')) goto bad;
        s = end + 1;
    }
    if (!(v[0] > 0) || v[1] < v[0] || !(v[2] > 0)) goto bad;
    const double count = floor((v[1] - v[0]) / v[2] + 1e-9) + 1;
    if (count > AN_MAX_RADII) {
        fprintf(stderr, "%s: bad value for --radii: '%s' gives %.0f radii (at most %d)\n", who, text,
                count, AN_MAX_RADII);
        return 2;
    }
    o->r0 = v[0];
    o->r1 = v[1];
    o->rstep = v[2];
    o->n_radii = (int)count;
    return 0;
bad:
    fprintf(stderr, "%s: bad value for --radii: '%s' (expected A:B:STEP with 0 < A <= B and STEP > 0, "
            "e.g. 1:40:1)\n", who, text);
    return 2;
}

/* Every option into o; prints only the reason (or the usage). Returns
 * CLI_PARSE_RUN, 0 after --help, or 2. */
static int an_parse_opts(int argc, char **argv, an_opts *o)
{
    memset(o, 0, sizeof *o);
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        if (argc < 2) {
            fprintf(stderr, "cae analyze: missing subcommand: contraction or spectrum (try cae analyze --help)\n");
            return 2;
        }
        fputs(analyze_usage, stdout);
        return 0;
    }
    const char *who, *usage;
    if (!strcmp(argv[1], "contraction")) {
        o->sub = AN_CONTRACTION, who = "cae analyze contraction", usage = contraction_usage;
    } else if (!strcmp(argv[1], "spectrum")) {
        o->sub = AN_SPECTRUM, who = "cae analyze spectrum", usage = spectrum_usage;
    } else {
        fprintf(stderr, "cae analyze: unknown subcommand '%s' (expected contraction or spectrum)\n", argv[1]);
        return 2;
    }
    o->data_dir = cli_default_data_dir();
    o->split = "valid";
    o->points = 500;
    o->distances = 1000;
    o->examples = 100;
    o->seed = 1;
    const char *radii = "1:40:1", *depths = NULL;
    long long layers = 0;
    /* --model and --name repeat: take them out, hand the rest to cli_parse. */
    char *rest[256];
    int n_rest = 0;
    rest[n_rest++] = argv[1];
    for (int i = 2; i < argc; i++) {
        const int is_model = cli_is_option(argv[i], "--model"), is_name = cli_is_option(argv[i], "--name");
        if (!is_model && !is_name) {
            if (n_rest == (int)(sizeof rest / sizeof rest[0])) {
                fprintf(stderr, "%s: too many arguments\n", who);
                return 2;
            }
            rest[n_rest++] = argv[i];
            continue;
        }
        const char *opt = is_model ? "--model" : "--name";
        const char *v = cli_option_value(who, argc, argv, &i, opt);
        if (!v) return 2;
        if (!*v) {
            fprintf(stderr, "%s: bad value for %s: empty\n", who, opt);
            return 2;
        }
        int *count = is_model ? &o->n_model : &o->n_name;
        if (*count == AN_MAX_MODELS) {
            fprintf(stderr, "%s: at most %d %s options\n", who, AN_MAX_MODELS, opt);
            return 2;
        }
        (is_model ? o->model : o->name)[(*count)++] = v;
    }
    const int con = o->sub == AN_CONTRACTION;
    cli_opt opts[16] = {
        {"--data", CLI_STR, &o->data, 0, 0, 0, 0},
        {"--data-dir", CLI_STR, &o->data_dir, 0, 0, 0, 0},
        {"--split", CLI_STR, &o->split, 0, 0, 0, 0},
        {"--depths", CLI_STR, &depths, 0, 0, 0, 0},
        {"--layers", CLI_INT, &layers, 1, CAE_MAX_LAYERS, 0, 0},
        {"--threads", CLI_INT, &o->threads, 0, 256, 0, 0},
        {"--out", CLI_STR, &o->out, 0, 0, 0, 0},
        {"--plot", CLI_FLAG, &o->plot, 0, 0, 0, 0},
        {"--title", CLI_STR, &o->title, 0, 0, 0, 0},
    };
    int n = 9;
    if (con) {
        opts[n++] = (cli_opt){"--radii", CLI_STR, &radii, 0, 0, 0, 0};
        opts[n++] = (cli_opt){"--points", CLI_INT, &o->points, 1, 1e9, 0, 0};
        opts[n++] = (cli_opt){"--distances", CLI_INT, &o->distances, 0, 100000, 0, 0};
        opts[n++] = (cli_opt){"--seed", CLI_U64, &o->seed, 0, 0, 0, 0};
        opts[n++] = (cli_opt){"--logy", CLI_FLAG, &o->logy, 0, 0, 0, 0};
    } else {
        opts[n++] = (cli_opt){"--examples", CLI_INT, &o->examples, 1, 1e9, 0, 0};
    }
    int rc = cli_parse(who, usage, n_rest, rest, opts, n);
    if (rc != CLI_PARSE_RUN) return rc;
    if (!o->n_model) {
        fprintf(stderr, "%s: missing required option --model (try %s --help)\n", who, who);
        return 2;
    }
    if ((rc = cli_require(who, cli_opt_get(opts, n, "--out")))) return rc;
    if (o->n_name && o->n_name != o->n_model) {
        fprintf(stderr, "%s: %d --name for %d --model: give one name per model, or none\n", who,
                o->n_name, o->n_model);
        return 2;
    }
    if (strcmp(o->split, "valid") && strcmp(o->split, "test")) {
        fprintf(stderr, "%s: bad value for --split: '%s' (expected valid or test)\n", who, o->split);
        return 2;
    }
    if (depths && layers) {
        fprintf(stderr, "%s: give --depths or --layers, not both\n", who);
        return 2;
    }
    if (depths && (rc = parse_depths(who, "--depths", depths, o))) return rc;
    if (layers) o->depth[o->n_depth++] = (int)layers;
    if (con && (rc = parse_radii(who, radii, o))) return rc;
    if (o->plot && (strchr(o->out, '\'') || strchr(o->out, '"'))) {
        fprintf(stderr, "%s: --out %s: quotes in the path cannot be passed to gnuplot\n", who, o->out);
        return 2;
    }
    return CLI_PARSE_RUN;
}

int cmd_analyze_parse(int argc, char **argv)
{
    an_opts o;
    return an_parse_opts(argc, argv, &o);
}

/* ------------------------------------------------------------------ work */

typedef struct an_model {
    cae_model_info info;
    cae_params *p;
    char name[AN_NAME_LEN];
} an_model;

typedef struct an_curve {
    int model, depth;
    char name[AN_NAME_LEN + 16], sd_name[AN_NAME_LEN + 20];
} an_curve;

/* A column head: one word, no characters gnuplot would misread. */
static void clean_name(char *dst, size_t len, const char *src)
{
    snprintf(dst, len, "%s", src);
    for (char *c = dst; *c; c++)
        if ((unsigned char)*c <= ' ' || *c == '\'' || *c == '"' || *c == '#' || *c == '_' || *c == '\\')
            *c = '-';
}

static void default_name(char *dst, size_t len, const char *path)
{
    const char *base = strrchr(path, '/');
    base = base && base[1] ? base + 1 : path;
    char tmp[AN_NAME_LEN];
    snprintf(tmp, sizeof tmp, "%s", base);
    char *dot = strrchr(tmp, '.');
    if (dot && dot != tmp) *dot = '\0';
    clean_name(dst, len, tmp);
}

/* A gnuplot single-quoted string body ('' stands for '). */
static void gp_quote(char *dst, size_t len, const char *src)
{
    size_t o = 0;
    for (const char *c = src; *c && o + 3 < len; c++) {
        if (*c == '\'') dst[o++] = '\'';
        dst[o++] = *c == '\n' ? ' ' : *c;
    }
    dst[o] = '\0';
}

static int an_run(const an_opts *o)
{
    const char *who = o->sub == AN_CONTRACTION ? "cae analyze contraction" : "cae analyze spectrum";
    an_model m[AN_MAX_MODELS];
    an_curve c[AN_MAX_CURVES];
    memset(m, 0, sizeof m);
    cae_splits *s = NULL;
    cae_encoder_net *net = NULL;
    double *table = NULL, *radii = NULL, *mean = NULL, *sd = NULL;
    char prefix[4096], path[4200], comment[8192];
    cae_error err;
    int rc = 0, n_curves = 0;
    size_t cl = 0;

    snprintf(prefix, sizeof prefix, "%s", o->out);
    const size_t pl = strlen(prefix);
    if (pl > 4 && !strcmp(prefix + pl - 4, ".dat")) prefix[pl - 4] = '\0';
    snprintf(path, sizeof path, "%s.dat", prefix);
    if ((rc = cli_check_out(who, path))) return rc;

    /* Models, their depths, the curves. */
    for (int i = 0; i < o->n_model; i++) {
        if ((rc = cli_load_checkpoint(who, "--model", o->model[i], &m[i].info, &m[i].p))) goto done;
        if (m[i].info.n_layers < 1) {
            fprintf(stderr, "%s: --model %s has no encoder layers\n", who, o->model[i]);
            rc = 2;
            goto done;
        }
        if (o->n_name)
            clean_name(m[i].name, sizeof m[i].name, o->name[i]);
        else
            default_name(m[i].name, sizeof m[i].name, o->model[i]);
        const int nd = o->n_depth ? o->n_depth : 1;
        for (int k = 0; k < nd; k++) {
            const int depth = o->n_depth ? o->depth[k] : m[i].info.n_layers;
            if (depth > m[i].info.n_layers) {
                fprintf(stderr, "%s: --model %s has %d layer%s: no curve through %d\n", who, o->model[i],
                        m[i].info.n_layers, m[i].info.n_layers == 1 ? "" : "s", depth);
                rc = 2;
                goto done;
            }
            an_curve *cv = &c[n_curves++];
            cv->model = i;
            cv->depth = depth;
            const char *unit = depth == 1 ? "layer" : "layers";
            if (o->n_depth < 2)
                snprintf(cv->name, sizeof cv->name, "%s", m[i].name);
            else if (o->n_model == 1)
                snprintf(cv->name, sizeof cv->name, "%d-%s", depth, unit);
            else
                snprintf(cv->name, sizeof cv->name, "%s-%d-%s", m[i].name, depth, unit);
            snprintf(cv->sd_name, sizeof cv->sd_name, "%s_sd", cv->name);
        }
    }
    const char *data = o->data ? o->data : m[0].info.data;
    if (!*data) {
        fprintf(stderr, "%s: --model %s does not name its data set: pass --data SET\n", who, o->model[0]);
        rc = 2;
        goto done;
    }
    if ((rc = cli_load_splits(who, o->data_dir, data, &s))) goto done;
    const cae_dataset *split = strcmp(o->split, "test") ? s->valid : s->test;
    for (int i = 0; i < o->n_model; i++)
        if ((rc = cli_check_width(who, data, split, m[i].info.layer[0].n_in, "--model", o->model[i]))) goto done;

    const int con = o->sub == AN_CONTRACTION;
    const int ncols = 1 + 2 * n_curves;
    int64_t nrows = 0;
    if (con) {
        nrows = o->n_radii;
    } else {
        for (int k = 0; k < n_curves; k++) {
            const cae_model_info *in = &m[c[k].model].info;
            const int64_t nv = in->layer[c[k].depth - 1].n_hidden < in->layer[0].n_in
                                   ? in->layer[c[k].depth - 1].n_hidden : in->layer[0].n_in;
            if (nv > nrows) nrows = nv;
        }
    }
    table = malloc((size_t)(nrows * ncols) * sizeof *table);
    radii = malloc((size_t)nrows * sizeof *radii);
    mean = malloc((size_t)nrows * sizeof *mean);
    sd = malloc((size_t)nrows * sizeof *sd);
    if (!table || !radii || !mean || !sd) {
        fprintf(stderr, "%s: out of memory\n", who);
        rc = 1;
        goto done;
    }
    for (int64_t r = 0; r < nrows; r++) {
        radii[r] = con ? o->r0 + (double)r * o->rstep : (double)(r + 1);
        table[r * ncols] = radii[r];
    }

    /* Distances between training examples: the marks on Fig. 1. */
    double dmin = NAN, dmed = NAN, dmax = NAN;
    if (con && o->distances >= 2) {
        if (cae_distance_stats(s->train, o->distances, o->seed, &dmin, &dmed, &dmax, &err)) {
            fprintf(stderr, "%s: --data %s: %s\n", who, data, err.msg);
            rc = 1;
            goto done;
        }
    }
    const int64_t n_x = con ? (o->points < split->n ? o->points : split->n)
                            : (o->examples < split->n ? o->examples : split->n);
    if (con)
        cl += (size_t)snprintf(comment + cl, sizeof comment - cl,
                               "cae analyze contraction: mean and sd over %lld examples x0 of %s %s of "
                               "||f(x0 + r u) - f(x0)|| / r, u uniform on the unit sphere (seed %llu)\n",
                               (long long)n_x, data, o->split, o->seed);
    else
        cl += (size_t)snprintf(comment + cl, sizeof comment - cl,
                               "cae analyze spectrum: singular values of J_f(x), decreasing, mean and sd "
                               "index by index over %lld examples of %s %s\n",
                               (long long)n_x, data, o->split);
    if (con && isfinite(dmin))
        cl += (size_t)snprintf(comment + cl, sizeof comment - cl,
                               "distances between %lld %s train examples: min %.6g median %.6g max %.6g\n",
                               (long long)(o->distances < s->train->n ? o->distances : s->train->n), data,
                               dmin, dmed, dmax);

    /* The curves. */
    for (int k = 0; k < n_curves; k++) {
        an_model *mm = &m[c[k].model];
        cae_act act[CAE_MAX_LAYERS];
        for (int l = 0; l < c[k].depth; l++) act[l] = mm->info.layer[l].act;
        char desc[256];
        cae_model_info shown = mm->info;
        shown.n_layers = c[k].depth;
        shown.n_classes = 0;
        if (cl < sizeof comment)
            cl += (size_t)snprintf(comment + cl, sizeof comment - cl, "%s: %s (%s %s%s, %d epoch%s on %s)\n",
                                   c[k].name, o->model[c[k].model], cae_model_kind_name(mm->info.kind),
                                   cli_describe_stack(&shown, desc, sizeof desc),
                                   mm->info.n_classes > 0 ? ", fine-tuned encoder" : "",
                                   mm->info.epochs_done, mm->info.epochs_done == 1 ? "" : "s",
                                   mm->info.data[0] ? mm->info.data : "?");
        int64_t nv = nrows;
        if (con) {
            if (!(net = cae_encoder_net_new(mm->p, c[k].depth, act, n_x < 256 ? n_x : 256, (int)o->threads,
                                            &err)) ||
                cae_contraction_curve(net, split, n_x, radii, o->n_radii, o->seed, mean, sd, &err)) {
                fprintf(stderr, "%s: --model %s: %s\n", who, o->model[c[k].model], err.msg);
                rc = 1;
                goto done;
            }
            cae_encoder_net_free(net);
            net = NULL;
            int peak = 0;
            for (int r = 1; r < o->n_radii; r++)
                if (mean[r] > mean[peak]) peak = r;
            printf("%-20s ratio %.4g at r = %g, largest %.4g at r = %g, %.4g at r = %g\n", c[k].name, mean[0],
                   radii[0], mean[peak], radii[peak], mean[o->n_radii - 1], radii[o->n_radii - 1]);
        } else {
            if (cae_jacobian_spectrum(mm->p, c[k].depth, act, split, n_x, mean, sd, &nv, &err)) {
                fprintf(stderr, "%s: --model %s: %s\n", who, o->model[c[k].model], err.msg);
                rc = 1;
                goto done;
            }
            int64_t above = 0;
            for (int64_t r = 0; r < nv; r++) above += mean[r] > 0.01 * mean[0];
            printf("%-20s s1 %.4g, s10 %.4g, %lld of %lld above 1%% of s1\n", c[k].name, mean[0],
                   nv >= 10 ? mean[9] : NAN, (long long)above, (long long)nv);
        }
        for (int64_t r = 0; r < nrows; r++) {
            table[r * ncols + 1 + 2 * k] = r < nv ? mean[r] : NAN;
            table[r * ncols + 2 + 2 * k] = r < nv ? sd[r] : NAN;
        }
    }

    const char *names[1 + 2 * AN_MAX_CURVES];
    names[0] = con ? "radius" : "index";
    for (int k = 0; k < n_curves; k++) {
        names[1 + 2 * k] = c[k].name;
        names[2 + 2 * k] = c[k].sd_name;
    }
    if (cl >= sizeof comment) comment[sizeof comment - 1] = '\0';
    const size_t len = strlen(comment);
    if (len && comment[len - 1] == '\n') comment[len - 1] = '\0';
    if (cae_table_write(path, comment, ncols, names, nrows, table, &err)) {
        fprintf(stderr, "%s: --out: %s\n", who, err.msg);
        rc = 1;
        goto done;
    }
    printf("wrote %s (%lld rows, %d curve%s)\n", path, (long long)nrows, n_curves, n_curves == 1 ? "" : "s");

    if (o->plot) {
        char title[512], qt[1100], vars[6000];
        if (o->title)
            snprintf(title, sizeof title, "%s", o->title);
        else if (con)
            snprintf(title, sizeof title, "Contraction ratio on %s (%s, %lld points)", data, o->split,
                     (long long)n_x);
        else
            snprintf(title, sizeof title, "Singular values of the Jacobian on %s (%s, %lld examples)", data,
                     o->split, (long long)n_x);
        gp_quote(qt, sizeof qt, title);
        int vl = snprintf(vars, sizeof vars, "in='%s'; out='%s'; title='%s'", path, prefix, qt);
        if (con && isfinite(dmin))
            vl += snprintf(vars + vl, sizeof vars - (size_t)vl, "; dmin=%.6g; dmed=%.6g; dmax=%.6g", dmin,
                           dmed, dmax);
        if (con && o->logy) snprintf(vars + vl, sizeof vars - (size_t)vl, "; logy=1");
        if ((rc = cli_plot(who, con ? "contraction.gp" : "spectrum.gp", vars))) goto done;
        printf("wrote %s.png and %s.svg\n", prefix, prefix);
    }
    rc = 0;
done:
    cae_encoder_net_free(net);
    free(table);
    free(radii);
    free(mean);
    free(sd);
    cae_splits_free(s);
    for (int i = 0; i < o->n_model; i++) cae_params_free(m[i].p);
    return rc;
}

int cmd_analyze(int argc, char **argv)
{
    an_opts o;
    const int rc = an_parse_opts(argc, argv, &o);
    if (rc != CLI_PARSE_RUN) return rc;
    cli_use_threads(o.threads);
    return an_run(&o);
}
