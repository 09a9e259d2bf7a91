/* `cae eval` — the paper's measurements of a checkpoint on one split:
 * the classifier's error with its 95% interval (classifiers), and for every
 * model the Jacobian norms of its encoder stack, SAT and the layer-1
 * reconstruction (cae/metrics.h); as text or one JSON object. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cae/metrics.h"
#include "cli_common.h"
#include "commands.h"
#include "parse.h"

static const char *eval_usage =
    "usage: cae eval --model CKPT [options]\n"
    "\n"
    "Measure a checkpoint: test/validation error (classifiers), the average\n"
    "||J_f(x)||_F of its encoder layers (raw, squared, per entry), SAT (units\n"
    "with h < 0.05 or h > 0.95) and the layer-1 reconstruction cross-entropy.\n"
    "\n"
    "  --data SET          data set (default: the one the model was trained on)\n"
    "  --data-dir DIR      where the data sets are (default $CAE_DATA_DIR or ./data)\n"
    "  --split S           valid or test (default: test for classifiers, else valid)\n"
    "  --limit N           use the first N examples of the split (default all)\n"
    "  --max-jacobian N    Jacobian figures on the first N examples (default 0 = all;\n"
    "                      a deep stack's by forward mode, all input directions at once)\n"
    "  --threads T         OpenMP threads (default: OpenMP's choice)\n"
    "  --json              print one JSON object instead of text\n";

/* A JSON number, or null when not finite. */
static void json_num(const char *key, double v, int comma)
{
    if (isfinite(v))
        printf("\"%s\":%.9g%s", key, v, comma ? "," : "");
    else
        printf("\"%s\":null%s", key, comma ? "," : "");
}

static void json_str(const char *key, const char *v)
{
    printf("\"%s\":\"", key);
    for (const char *c = v; *c; c++) {
        if (*c == '"' || *c == '\\')
            printf("\\%c", *c);
        else if ((unsigned char)*c < 0x20)
            printf("\\u%04x", (unsigned char)*c);
        else
            putchar(*c);
    }
    printf("\",");
}

typedef struct eval_opts {
    const char *model, *data, *data_dir, *split;
    long long max_jac, limit, threads;
    int json, max_jac_given;
} eval_opts;

/* Every check that needs no file: CLI_PARSE_RUN, or the exit status. */
static int eval_parse_opts(int argc, char **argv, eval_opts *eo)
{
    const char *who = "cae eval";
    *eo = (eval_opts){.data_dir = cli_default_data_dir()};
    cli_opt o[] = {
        {"--model", CLI_STR, &eo->model, 0, 0, 0, 0},
        {"--data", CLI_STR, &eo->data, 0, 0, 0, 0},
        {"--data-dir", CLI_STR, &eo->data_dir, 0, 0, 0, 0},
        {"--split", CLI_STR, &eo->split, 0, 0, 0, 0},
        {"--limit", CLI_INT, &eo->limit, 0, 1e12, 0, 0},
        {"--max-jacobian", CLI_INT, &eo->max_jac, 0, 1e12, 0, 0},
        {"--threads", CLI_INT, &eo->threads, 0, 256, 0, 0},
        {"--json", CLI_FLAG, &eo->json, 0, 0, 0, 0},
    };
    const int n = (int)(sizeof o / sizeof o[0]);
    int rc = cli_parse(who, eval_usage, argc, argv, o, n);
    if (rc != CLI_PARSE_RUN) return rc;
    if ((rc = cli_require(who, cli_opt_get(o, n, "--model")))) return rc;
    if (eo->split && strcmp(eo->split, "valid") && strcmp(eo->split, "test")) {
        fprintf(stderr, "%s: bad value for --split: '%s' (expected valid or test)\n", who, eo->split);
        return 2;
    }
    eo->max_jac_given = cli_opt_get(o, n, "--max-jacobian")->given;
    return CLI_PARSE_RUN;
}

int cmd_eval_parse(int argc, char **argv)
{
    eval_opts eo;
    return eval_parse_opts(argc, argv, &eo);
}

int cmd_eval(int argc, char **argv)
{
    const char *who = "cae eval";
    eval_opts eo;
    int rc = eval_parse_opts(argc, argv, &eo);
    if (rc != CLI_PARSE_RUN) return rc;
    cli_use_threads(eo.threads);
    const char *model = eo.model, *data = eo.data, *data_dir = eo.data_dir, *split = eo.split;
    const long long max_jac = eo.max_jac, limit = eo.limit, threads = eo.threads;
    const int json = eo.json;

    cae_model_info info;
    cae_params *p = NULL;
    cae_splits *s = NULL;
    cae_task *task = NULL;
    cae_dataset *view = NULL;
    char desc[256];
    cae_error err;
    if ((rc = cli_load_checkpoint(who, "--model", model, &info, &p))) goto done;
    if (info.n_layers < 1) {
        fprintf(stderr, "%s: --model %s has no encoder layers\n", who, model);
        rc = 2;
        goto done;
    }
    if (!data) {
        if (!info.data[0]) {
            fprintf(stderr, "%s: --model %s does not name its data set: pass --data SET\n", who, model);
            rc = 2;
            goto done;
        }
        data = info.data;
    }
    const int classifier = info.n_classes > 0;
    if (!split) split = classifier ? "test" : "valid";
    if ((rc = cli_load_splits(who, data_dir, data, &s))) goto done;
    const cae_dataset *full = strcmp(split, "test") ? s->valid : s->test;
    if ((rc = cli_check_width(who, data, full, info.layer[0].n_in, "--model", model))) goto done;
    const int64_t used = limit && limit < full->n ? limit : full->n;
    if (!(view = cae_dataset_view(full, 0, used))) {
        fprintf(stderr, "%s: out of memory\n", who);
        rc = 1;
        goto done;
    }

    cae_metrics_config mc;
    cae_metrics_config_default(&mc);
    mc.threads = (int)threads;
    mc.max_examples = eo.max_jac_given ? max_jac : 0;
    cae_metrics m;
    if (cae_metrics_compute(p, info.n_layers, info.layer, view, &mc, &m, &err)) {
        fprintf(stderr, "%s: --model %s on %s: %s\n", who, model, data, err.msg);
        rc = 1;
        goto done;
    }
    double error = NAN, ci = NAN;
    if (classifier) {
        cae_mlp_config mlp;
        cae_model_info_mlp(&info, &mlp);
        if (mlp.n_classes < view->n_classes) {
            fprintf(stderr, "%s: --model %s classifies %d classes, --data %s has labels up to %d\n", who,
                    model, mlp.n_classes, data, view->n_classes - 1);
            rc = 2;
            goto done;
        }
        if (!(task = cae_task_finetune(p, &mlp, 1, 0, (int)threads, &err)) ||
            cae_classify_error(task, view, &error, &ci)) {
            fprintf(stderr, "%s: --model %s: %s\n", who, model, task ? cae_task_error(task) : err.msg);
            rc = 1;
            goto done;
        }
    }

    const char *kind = cae_model_kind_name(info.kind);
    const char *method = info.n_layers > 1 ? "product of layer Jacobians" : "closed form";
    if (json) {
        printf("{");
        json_str("model", model);
        json_str("kind", kind);
        printf("\"depth\":%d,\"d_in\":%lld,\"d_out\":%lld,", m.depth, (long long)m.d_in, (long long)m.d_out);
        json_str("data", data);
        json_str("split", split);
        printf("\"examples\":%lld,", (long long)m.n_examples);
        if (classifier) {
            json_num("error", error, 1);
            json_num("error_ci95", ci, 1);
        }
        printf("\"jacobian_examples\":%lld,", (long long)m.n_jacobian);
        json_num("jac_norm", m.jac_norm, 1);
        json_num("jac_sqnorm", m.jac_sqnorm, 1);
        json_num("jac_per_entry", m.jac_per_entry, 1);
        json_num("sat", m.sat, 1);
        printf("\"sat_layers\":[");
        for (int l = 0; l < m.depth; l++) printf("%s%.9g", l ? "," : "", m.sat_layer[l]);
        printf("],");
        json_num("recon", m.recon, 0);
        printf("}\n");
    } else {
        printf("model:        %s (%s: %s), %d epoch%s on %s\n", model, kind,
               cli_describe_stack(&info, desc, sizeof desc), info.epochs_done,
               info.epochs_done == 1 ? "" : "s", info.data[0] ? info.data : "?");
        printf("data:         %s %s, %lld examples\n", data, split, (long long)m.n_examples);
        if (classifier)
            printf("error:        %.2f%% +- %.2f%% (95%% interval)\n", 100 * error, 100 * ci);
        printf("||J||_F:      %.6g  (mean over %lld examples; %s%s)\n", m.jac_norm,
               (long long)m.n_jacobian, method, info.n_layers > 1 ? " of the whole stack" : "");
        printf("||J||_F^2:    %.6g  (per entry, / (%lld x %lld): %.6g)\n", m.jac_sqnorm, (long long)m.d_in,
               (long long)m.d_out, m.jac_per_entry);
        printf("SAT:          %.2f%%", 100 * m.sat);
        if (m.depth > 1) {
            printf("  (layers:");
            for (int l = 0; l < m.depth; l++) printf(" %.2f%%", 100 * m.sat_layer[l]);
            printf(")");
        }
        printf("\n");
        if (isfinite(m.recon))
            printf("recon:        %.4f  (layer-1 cross-entropy, summed over %lld inputs)\n", m.recon,
                   (long long)m.d_in);
        else
            printf("recon:        n/a (no layer-1 decoder in the checkpoint)\n");
    }
    rc = 0;
done:
    cae_task_free(task);
    cae_dataset_free(view);
    cae_splits_free(s);
    cae_params_free(p);
    return rc;
}
