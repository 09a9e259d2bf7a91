/* `cae parzen` — the Gaussian Parzen-window log-likelihood of a set of
 * samples (any .npy of float32/float64 rows: `cae sample`'s, or another
 * program's), its width chosen on the validation split. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cae/npy.h"
#include "cae/sample.h"
#include "cli_common.h"
#include "commands.h"
#include "parse.h"

#define PZ_MAX_SIGMAS 64

static const char *parzen_usage =
    "usage: cae parzen --samples FILE.npy --data SET [options]\n"
    "\n"
    "Estimate the log-likelihood of a data set's test split under a Gaussian\n"
    "Parzen window on samples: log p(x) = logsumexp_i(-||x - s_i||^2 / 2 sigma^2)\n"
    "- log n - D/2 log(2 pi sigma^2), averaged over the examples, with its standard\n"
    "error. The width sigma is the one of --sigmas with the best mean on the\n"
    "validation split (or --sigma). FILE holds n x D values (any leading shape:\n"
    "`cae sample` writes records x chains x D), float32 or float64; D must be the\n"
    "data set's width. Prints the validation log-likelihood of every width, then\n"
    "'chosen width S' and 'test log-likelihood M +- SE'.\n"
    "\n"
    "  --samples FILE   the samples (.npy)\n"
    "  --data SET       the data set (mnist, fashion or a variation)\n"
    "  --sigmas LIST    widths tried on validation, e.g. 0.1,0.15,0.2 (default 20\n"
    "                   geometric steps from 0.05 to 0.5)\n"
    "  --sigma S        use this width; no validation pass\n"
    "  --burn-in K      drop the first K records of a records x chains x D file\n"
    "  --limit N        use the first N examples of each split (default all)\n"
    "  --split SPLIT    the split reported: test (default) or valid\n"
    "  --data-dir DIR   where the data sets are (default $CAE_DATA_DIR or ./data)\n"
    "  --threads T      OpenMP threads (default: OpenMP's choice)\n";

typedef struct parzen_opts {
    const char *samples, *data, *data_dir, *sigmas_text, *split;
    double sigma;
    long long burn_in, limit, threads;
    double sigmas[PZ_MAX_SIGMAS];
    int n_sigma, sigma_given;
} parzen_opts;

/* "A,B,C": distinct-or-not positive finite widths, at most PZ_MAX_SIGMAS. */
static int parse_sigmas(const char *who, const char *text, parzen_opts *po)
{
    const char *s = text;
    po->n_sigma = 0;
    while (*s) {
        char *end = NULL;
        const double v = strtod(s, &end);
        if (end == s || !isfinite(v) || !(v > 0) || (*end && *end != ',')) goto bad;
        if (po->n_sigma == PZ_MAX_SIGMAS) {
            fprintf(stderr, "%s: --sigmas '%s': more than %d widths\n", who, text, PZ_MAX_SIGMAS);
            return 2;
        }
        po->sigmas[po->n_sigma++] = v;
        s = *end ? end + 1 : end;
        if (*end && !*s) goto bad;
    }
    if (po->n_sigma) return 0;
bad:
    fprintf(stderr, "%s: bad value for --sigmas: '%s' (expected widths > 0 separated by commas, "
            "e.g. 0.1,0.15,0.2)\n", who, text);
    return 2;
}

static int parzen_parse_opts(int argc, char **argv, parzen_opts *po)
{
    const char *who = "cae parzen";
    *po = (parzen_opts){.data_dir = cli_default_data_dir(), .split = "test"};
    cli_opt o[] = {
        {"--samples", CLI_STR, &po->samples, 0, 0, 0, 0},
        {"--data", CLI_STR, &po->data, 0, 0, 0, 0},
        {"--sigmas", CLI_STR, &po->sigmas_text, 0, 0, 0, 0},
        {"--sigma", CLI_REAL, &po->sigma, 0, 1e6, 0, 0},
        {"--burn-in", CLI_INT, &po->burn_in, 0, 1000000000, 0, 0},
        {"--limit", CLI_INT, &po->limit, 1, 1000000000, 0, 0},
        {"--split", CLI_STR, &po->split, 0, 0, 0, 0},
        {"--data-dir", CLI_STR, &po->data_dir, 0, 0, 0, 0},
        {"--threads", CLI_INT, &po->threads, 0, 256, 0, 0},
    };
    const int n = (int)(sizeof o / sizeof o[0]);
    int rc = cli_parse(who, parzen_usage, argc, argv, o, n);
    if (rc != CLI_PARSE_RUN) return rc;
    if ((rc = cli_require(who, cli_opt_get(o, n, "--samples"))) ||
        (rc = cli_require(who, cli_opt_get(o, n, "--data"))))
        return rc;
    if (strcmp(po->split, "test") && strcmp(po->split, "valid")) {
        fprintf(stderr, "%s: bad value for --split: '%s' (expected test or valid)\n", who, po->split);
        return 2;
    }
    po->sigma_given = cli_opt_get(o, n, "--sigma")->given;
    if (po->sigma_given && po->sigmas_text) {
        fprintf(stderr, "%s: --sigma and --sigmas exclude each other (one width, or widths to choose from)\n",
                who);
        return 2;
    }
    if (po->sigma_given) {
        if (!(po->sigma > 0)) {
            fprintf(stderr, "%s: --sigma %g: the width must be > 0\n", who, po->sigma);
            return 2;
        }
        po->sigmas[0] = po->sigma;
        po->n_sigma = 1;
    } else if (po->sigmas_text) {
        if ((rc = parse_sigmas(who, po->sigmas_text, po))) return rc;
    } else {
        po->n_sigma = 20;
        for (int k = 0; k < po->n_sigma; k++) po->sigmas[k] = 0.05 * pow(10.0, k / 19.0);
    }
    return CLI_PARSE_RUN;
}

int cmd_parzen_parse(int argc, char **argv)
{
    parzen_opts po;
    return parzen_parse_opts(argc, argv, &po);
}

int cmd_parzen(int argc, char **argv)
{
    const char *who = "cae parzen";
    parzen_opts po;
    int rc = parzen_parse_opts(argc, argv, &po);
    if (rc != CLI_PARSE_RUN) return rc;
    cli_use_threads(po.threads);
    cae_npy a = {0};
    cae_splits *s = NULL;
    cae_error err;
    if (cae_npy_read(po.samples, &a, &err)) {
        fprintf(stderr, "%s: --samples: %s\n", who, err.msg);
        return 1;
    }
    if ((rc = cli_load_splits(who, po.data_dir, po.data, &s))) goto done;
    const int64_t D = s->test->dim;
    rc = 2;
    if (a.rank < 1 || a.shape[a.rank - 1] != D) {
        fprintf(stderr, "%s: --samples %s: rows of %lld values, but --data %s has %lld inputs\n", who,
                po.samples, a.rank < 1 ? 0LL : (long long)a.shape[a.rank - 1], po.data, (long long)D);
        goto done;
    }
    int64_t n = a.size / D, first = 0;
    if (po.burn_in) {
        if (a.rank != 3) {
            fprintf(stderr, "%s: --burn-in needs records x chains x D samples; %s has rank %d\n", who,
                    po.samples, a.rank);
            goto done;
        }
        if (po.burn_in >= a.shape[0]) {
            fprintf(stderr, "%s: --burn-in %lld drops all %lld records of %s\n", who, po.burn_in,
                    (long long)a.shape[0], po.samples);
            goto done;
        }
        first = po.burn_in * a.shape[1];
        n -= first;
    }
    if (n < 1) {
        fprintf(stderr, "%s: --samples %s holds no samples\n", who, po.samples);
        goto done;
    }
    for (int64_t i = first * D; i < a.size; i++)
        if (!isfinite((double)a.data[i])) {
            fprintf(stderr, "%s: --samples %s: sample %lld, input %lld is %g\n", who, po.samples,
                    (long long)(i / D - first), (long long)(i % D), (double)a.data[i]);
            rc = 1;
            goto done;
        }
    const cae_real *smp = a.data + first * D;
    printf("%lld samples of %lld inputs from %s\n", (long long)n, (long long)D, po.samples);
    double mean[PZ_MAX_SIGMAS], se[PZ_MAX_SIGMAS], sigma = po.sigmas[0];
    const double t0 = cli_now();
    if (!po.sigma_given) {
        if (cae_parzen(smp, n, s->valid, po.limit, po.sigmas, po.n_sigma, (int)po.threads, mean, se, &err)) {
            fprintf(stderr, "%s: %s\n", who, err.msg);
            rc = 1;
            goto done;
        }
        int best = 0;
        printf("width  valid log-likelihood\n");
        for (int k = 0; k < po.n_sigma; k++) {
            printf("%-8.4g %.2f +- %.2f\n", po.sigmas[k], mean[k], se[k]);
            if (mean[k] > mean[best]) best = k;
        }
        sigma = po.sigmas[best];
        printf("chosen width %.4g (valid log-likelihood %.2f +- %.2f)\n", sigma, mean[best], se[best]);
        if (po.n_sigma > 1 && (sigma == po.sigmas[0] || sigma == po.sigmas[po.n_sigma - 1]))
            fprintf(stderr, "%s: warning: the chosen width %.4g is at the end of --sigmas; the best may lie "
                    "beyond it\n", who, sigma);
    }
    const cae_dataset *rep = strcmp(po.split, "test") ? s->valid : s->test;
    if (cae_parzen(smp, n, rep, po.limit, &sigma, 1, (int)po.threads, mean, se, &err)) {
        fprintf(stderr, "%s: %s\n", who, err.msg);
        rc = 1;
        goto done;
    }
    const int64_t m = po.limit && po.limit < rep->n ? po.limit : rep->n;
    printf("%s log-likelihood %.2f +- %.2f (%lld examples, width %.4g, %.1f s)\n", po.split, mean[0], se[0],
           (long long)m, sigma, cli_now() - t0);
    rc = 0;
done:
    cae_npy_release(&a);
    cae_splits_free(s);
    return rc;
}
