/* `cae` — the command-line front end. Dispatches `cae <command> ...` through
 * the table in cli/commands.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"

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

int cli_is_option(const char *arg, const char *opt)
{
    size_t n = strlen(opt);
    return strncmp(arg, opt, n) == 0 && (arg[n] == '\0' || arg[n] == '=');
}

const char *cli_option_value(const char *who, int argc, char **argv, int *i, const char *opt)
{
    const char *a = argv[*i];
    size_t n = strlen(opt);
    if (a[n] == '=') return a + n + 1;
    if (*i + 1 >= argc) {
        fprintf(stderr, "%s: option %s needs a value\n", who, opt);
        return NULL;
    }
    return argv[++*i];
}

int cli_parse_u64(const char *who, const char *opt, const char *text, unsigned long long *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 0);
    if (!*text || *text == '-' || *end || errno) {
        fprintf(stderr, "%s: bad value for %s: '%s' (expected a non-negative integer)\n", who, opt, text);
        return 0;
    }
    *out = v;
    return 1;
}

int cli_parse_i64(const char *who, const char *opt, const char *text, long long min, long long max,
                  long long *out)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(text, &end, 0);
    if (!*text || *end || errno || v < min || v > max) {
        fprintf(stderr, "%s: bad value for %s: '%s' (expected an integer in %lld..%lld)\n", who, opt, text,
                min, max);
        return 0;
    }
    *out = v;
    return 1;
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
        printf("cae 0.1.0\n");
        return 0;
    }
    for (int i = 0; i < n_commands; i++)
        if (!strcmp(cmd, commands[i].name)) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "cae: unknown command '%s' (try cae --help)\n", cmd);
    return 2;
}
