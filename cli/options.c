/* Option helpers shared by the `cae` subcommands (declared in cli/commands.h).
 * Kept apart from main() so the parse-only entry points (cli/parse.h) link
 * without it, e.g. into fuzz/fuzz_cli. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"

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
