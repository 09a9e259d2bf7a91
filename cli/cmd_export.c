/* `cae export` — every tensor of a checkpoint as a NumPy .npy file. */
#include <stdio.h>
#include <string.h>

#include "cli_common.h"
#include "commands.h"
#include "parse.h"

static const char *export_usage =
    "usage: cae export --model CKPT --npy DIR\n"
    "\n"
    "Write each tensor of CKPT as DIR/<name>.npy (NumPy format 1.0, C order;\n"
    "e.g. L1.W.npy is n_in x n_hidden, a = x W + b), creating DIR if needed.\n"
    "Load with numpy.load.\n";

/* CLI_PARSE_RUN, or the exit status. */
static int export_parse_opts(int argc, char **argv, const char **model, const char **dir)
{
    const char *who = "cae export";
    *model = *dir = NULL;
    cli_opt o[] = {
        {"--model", CLI_STR, model, 0, 0, 0, 0},
        {"--npy", CLI_STR, dir, 0, 0, 0, 0},
    };
    const int n = (int)(sizeof o / sizeof o[0]);
    int rc = cli_parse(who, export_usage, argc, argv, o, n);
    if (rc != CLI_PARSE_RUN) return rc;
    if ((rc = cli_require(who, &o[0])) || (rc = cli_require(who, &o[1]))) return rc;
    return CLI_PARSE_RUN;
}

int cmd_export_parse(int argc, char **argv)
{
    const char *model, *dir;
    return export_parse_opts(argc, argv, &model, &dir);
}

int cmd_export(int argc, char **argv)
{
    const char *who = "cae export", *model, *dir;
    int rc = export_parse_opts(argc, argv, &model, &dir);
    if (rc != CLI_PARSE_RUN) return rc;
    cae_model_info info;
    cae_params *p = NULL;
    if ((rc = cli_load_checkpoint(who, "--model", model, &info, &p))) return rc;
    cae_error err;
    if (cae_export_npy(p, dir, &err)) {
        fprintf(stderr, "%s: --npy %s: %s\n", who, dir, err.msg);
        cae_params_free(p);
        return 1;
    }
    const int count = cae_params_count(p);
    printf("wrote %d tensor%s to %s:", count, count == 1 ? "" : "s", dir);
    for (int i = 0; i < count; i++) {
        const cae_tensor *t = cae_params_at(p, i);
        char shape[64];
        printf(" %s.npy (%s)", t->name, cae_shape_str(t, shape, sizeof shape));
    }
    printf("\n");
    cae_params_free(p);
    return 0;
}
