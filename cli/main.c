/* `cae` — the command-line front end. Dispatches `cae <command> ...` through
 * the table in cli/commands.h. */
#include <stdio.h>
#include <string.h>

#include "cae/version.h"
#include "commands.h"
#include "dist.h"

typedef struct cli_command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} cli_command;

#define CLI_ENTRY(name, fn, summary) {name, fn, summary},
static const cli_command commands[] = {CAE_CLI_COMMANDS(CLI_ENTRY)};
#undef CLI_ENTRY
static const int n_commands = (int)(sizeof commands / sizeof commands[0]);

static void usage(FILE *f)
{
    fprintf(f, "usage: cae <command> [options]\n       cae <command> --help\n\ncommands:\n");
    for (int i = 0; i < n_commands; i++) fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nContractive auto-encoders (Rifai et al. 2011) in C.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(cmd, "--version")) {
        printf("cae %s (%s)\n", cae_version(), cae_version_real());
        return 0;
    }
    for (int i = 0; i < n_commands; i++)
        if (!strcmp(cmd, commands[i].name)) {
            /* Only these two run as MPI ranks (cli/dist.h); under mpirun
             * any other would run N times over the same files. */
            char who[64];
            snprintf(who, sizeof who, "cae %s", cmd);
            if (strcmp(cmd, "pretrain") && strcmp(cmd, "finetune") && cli_dist_refuse(who)) return 2;
            return commands[i].run(argc - 1, argv + 1);
        }
    fprintf(stderr, "cae: unknown command '%s' (try cae --help)\n", cmd);
    return 2;
}
