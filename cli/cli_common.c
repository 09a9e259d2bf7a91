/* Option parsing, data and checkpoint loading for the model commands
 * (see cli_common.h). */
#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <omp.h>

#include "cli_common.h"
#include "commands.h"
#include "parse.h"

/* ---------------------------------------------------------------- options */

static int parse_real(const char *who, const cli_opt *o, const char *text)
{
    char *end = NULL;
    errno = 0;
    const double v = strtod(text, &end);
    const int in_range = v >= o->min && (o->max_open ? v < o->max : v <= o->max);
    if (!*text || *end || errno || !isfinite(v) || !in_range) {
        fprintf(stderr, "%s: bad value for %s: '%s' (expected a number in [%g, %g%s)\n", who, o->name,
                text, o->min, o->max, o->max_open ? ")" : "]");
        return 0;
    }
    *(double *)o->dst = v;
    return 1;
}

int cli_parse(const char *who, const char *usage, int argc, char **argv, cli_opt *opts, int n)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage, stdout);
            return 0;
        }
        cli_opt *o = NULL;
        for (int k = 0; k < n && !o; k++)
            if (opts[k].kind == CLI_FLAG ? !strcmp(a, opts[k].name) : cli_is_option(a, opts[k].name))
                o = &opts[k];
        if (!o) {
            if (a[0] == '-')
                fprintf(stderr, "%s: unknown option '%s' (try %s --help)\n", who, a, who);
            else
                fprintf(stderr, "%s: unexpected argument '%s' (try %s --help)\n", who, a, who);
            return 2;
        }
        o->given = 1;
        if (o->kind == CLI_FLAG) {
            *(int *)o->dst = 1;
            continue;
        }
        const char *v = cli_option_value(who, argc, argv, &i, o->name);
        if (!v) return 2;
        switch (o->kind) {
        case CLI_STR:
            if (!*v) {
                fprintf(stderr, "%s: bad value for %s: empty\n", who, o->name);
                return 2;
            }
            *(const char **)o->dst = v;
            break;
        case CLI_INT:
            if (!cli_parse_i64(who, o->name, v, (long long)o->min, (long long)o->max, o->dst)) return 2;
            break;
        case CLI_U64:
            if (!cli_parse_u64(who, o->name, v, o->dst)) return 2;
            break;
        case CLI_REAL:
            if (!parse_real(who, o, v)) return 2;
            break;
        case CLI_FLAG: break;
        }
    }
    return CLI_PARSE_RUN;
}

void cli_use_threads(long long threads)
{
    if (threads > 0) omp_set_num_threads((int)threads);
}

cli_opt *cli_opt_get(cli_opt *opts, int n, const char *name)
{
    for (int k = 0; k < n; k++)
        if (!strcmp(opts[k].name, name)) return &opts[k];
    assert(!"cli_opt_get: no such option");
    return NULL;
}

int cli_require(const char *who, const cli_opt *opt)
{
    if (opt->given) return 0;
    fprintf(stderr, "%s: missing required option %s (try %s --help)\n", who, opt->name, who);
    return 2;
}

/* ------------------------------------------------------------ data, models */

const char *cli_default_data_dir(void)
{
    const char *d = getenv("CAE_DATA_DIR");
    return (d && *d) ? d : "data";
}

int cli_load_splits(const char *who, const char *dir, const char *name, cae_splits **out)
{
    cae_error err;
    *out = NULL;
    cae_status rc = cae_splits_load(dir, name, out, &err);
    if (rc == CAE_OK) return 0;
    fprintf(stderr, "%s: --data %s: %s%s\n", who, name, err.msg,
            rc == CAE_ERR_IO ? " (fetch it with cae data fetch / make-variations, or pass --data-dir DIR)"
                             : "");
    return rc == CAE_ERR_ARG ? 2 : 1; /* an unknown name is a usage error */
}

int cli_load_checkpoint(const char *who, const char *opt, const char *path, cae_model_info *info,
                        cae_params **params)
{
    cae_error err;
    *params = NULL;
    cae_status rc = cae_checkpoint_load(path, info, params, NULL, &err);
    if (rc == CAE_OK) return 0;
    (void)path; /* the message names the file */
    fprintf(stderr, "%s: %s: %s (%s)\n", who, opt, err.msg, cae_status_name(rc));
    cae_params_free(*params);
    *params = NULL;
    return 1;
}

int cli_save_checkpoint(const char *who, const char *path, const cae_model_info *info,
                        const cae_params *p, const cae_params *opt)
{
    cae_error err;
    cae_status rc = cae_checkpoint_save(path, info, p, opt, &err);
    if (rc == CAE_OK) return 0;
    fprintf(stderr, "%s: --out: %s (%s)\n", who, err.msg, cae_status_name(rc));
    return 1;
}

int cli_save_run(const char *who, const char *path, const cae_model_info *info, cae_task *t,
                 const cae_params *opt)
{
    cae_error err;
    cae_status rc = cae_checkpoint_save_run(path, info, t, opt, &err);
    if (rc == CAE_OK) return 0;
    fprintf(stderr, "%s: --out: %s (%s)\n", who, err.msg, cae_status_name(rc));
    return 1;
}

int cli_resume_load(const char *who, const char *path, cae_model_info *info, cae_params **p,
                    cae_params **opt, cae_train_state *st)
{
    cae_error err;
    *p = *opt = NULL;
    cae_status rc = cae_checkpoint_load(path, info, p, opt, &err);
    if (rc != CAE_OK) {
        fprintf(stderr, "%s: --resume: %s (%s)\n", who, err.msg, cae_status_name(rc));
        return 1;
    }
    if (!info->has_rng || cae_train_state_get(*opt, st)) {
        fprintf(stderr, "%s: --resume %s: the checkpoint has no %s to resume from (written by an "
                "older cae?)\n", who, path, info->has_rng ? "training state" : "RNG state");
        cae_params_free(*p);
        cae_params_free(*opt);
        *p = *opt = NULL;
        return 1;
    }
    return 0;
}

int cli_resume_mismatch(const char *who, const char *path, const cae_mismatch *m,
                        int top_layer, const char *below)
{
    static const char *const options[] = {"model", "hidden", "act", "untied", "composed", "lambda",
                                          "noise", "wd", "cd-k", "pcd", "seed", "batch", "lr",
                                          "momentum", "data", "limit", "patience", "lr-decay",
                                          "probes", "probe-kind", "end-to-end", "gamma", "sigma",
                                          "corruptions"};
    int is_option = 0;
    for (size_t i = 0; i < sizeof options / sizeof options[0]; i++)
        is_option |= !strcmp(m->field, options[i]);
    char name[96];
    if (m->layer && (m->layer != top_layer || !is_option))
        snprintf(name, sizeof name, "%s layer %d's %s", below, m->layer, m->field);
    else if (!strcmp(m->field, "examples"))
        snprintf(name, sizeof name, "--limit (training examples)");
    else if (!strcmp(m->field, "classes"))
        snprintf(name, sizeof name, "the number of classes of --data");
    else if (!strcmp(m->field, "ranks"))
        snprintf(name, sizeof name, "the number of ranks (mpirun -np)");
    else
        snprintf(name, sizeof name, "%s%s", is_option ? "--" : "", m->field);
    fprintf(stderr, "%s: --resume %s: %s is %s, the checkpoint has %s\n", who, path, name, m->want,
            m->saved);
    return 2;
}

int cli_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

int cli_check_out(const char *who, const char *path)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    struct stat st;
    if (stat(dir, &st) || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "%s: --out %s: the directory %s does not exist\n", who, path, dir);
        return 1;
    }
    if (access(dir, W_OK)) {
        fprintf(stderr, "%s: --out %s: the directory %s is not writable\n", who, path, dir);
        return 1;
    }
    if (!stat(path, &st) && S_ISDIR(st.st_mode)) {
        fprintf(stderr, "%s: --out %s: is a directory\n", who, path);
        return 1;
    }
    return 0;
}

int cli_check_width(const char *who, const char *data_name, const cae_dataset *d, int64_t n_in,
                    const char *model_opt, const char *model_path)
{
    if (d->dim == n_in) return 0;
    fprintf(stderr, "%s: --data %s has %lld inputs per example, but %s %s expects %lld\n", who,
            data_name, (long long)d->dim, model_opt, model_path, (long long)n_in);
    return 2;
}

char *cli_describe_stack(const cae_model_info *info, char *buf, size_t len)
{
    size_t off = 0;
    buf[0] = '\0';
    if (info->n_layers < 1) return buf;
    off += (size_t)snprintf(buf + off, len - off, "%lld", (long long)info->layer[0].n_in);
    for (int k = 0; k < info->n_layers && off < len; k++)
        off += (size_t)snprintf(buf + off, len - off, "-%lld", (long long)info->layer[k].n_hidden);
    for (int k = 0; k < info->n_layers && off < len; k++)
        off += (size_t)snprintf(buf + off, len - off, "%c%s", k ? '/' : ' ',
                                cae_act_name(info->layer[k].act));
    if (info->n_classes > 0 && off < len)
        snprintf(buf + off, len - off, " -> %d classes", info->n_classes);
    return buf;
}
