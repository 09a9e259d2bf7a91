/* libFuzzer target: the option parsing of every `cae` subcommand.
 *
 * Input: the first byte picks an entry of CAE_CLI_PARSERS (cli/parse.h;
 * modulo their number); the rest, split at NUL bytes, is the argv after the
 * command's name (at most 64 arguments, each in its own allocation so an
 * over-read is caught). The parse functions promise no side effects; to
 * hold them to it, every call where a command's work begins is replaced at
 * link time (-Wl,--wrap, fuzz/CMakeLists.txt) by a tripwire that aborts, so
 * a parser that loads, checks or writes anything shows up as a crash. A
 * parser must return CLI_PARSE_RUN, 0 or 2. Commands in CAE_CLI_COMMANDS
 * without a parser are not fuzzed (listed once at start-up). */
#include <string.h>

#include "commands.h"
#include "fuzz_common.h"
#include "parse.h"

#define FUZZ_MAX_ARGS 64

#define PARSE_ENTRY(name, fn) {name, fn},
static const struct {
    const char *name;
    int (*parse)(int, char **);
} parsers[] = {CAE_CLI_PARSERS(PARSE_ENTRY)};
#undef PARSE_ENTRY
static const int n_parsers = (int)(sizeof parsers / sizeof parsers[0]);

#define NAME_ENTRY(name, fn, summary) name,
static const char *const command_names[] = {CAE_CLI_COMMANDS(NAME_ENTRY)};
#undef NAME_ENTRY

/* The parsers' own messages are noise: scripts/fuzz.sh runs this target with
 * -close_fd_mask=3. This target's findings go to a copy of stderr made
 * before libFuzzer closes it. */
static int report_fd = 2;

/* Tripwires: the first step of a command's real work (see fuzz/CMakeLists.txt). */
#define TRIPWIRE(fn)                                                              \
    void __wrap_##fn(void);                                                       \
    void __wrap_##fn(void)                                                        \
    {                                                                             \
        dprintf(report_fd, "fuzz_cli: a parse-only entry point called " #fn "\n"); \
        abort();                                                                  \
    }
TRIPWIRE(cli_check_out)
TRIPWIRE(cli_load_splits)
TRIPWIRE(cli_load_checkpoint)
TRIPWIRE(cli_save_checkpoint)
TRIPWIRE(cae_splits_load)
TRIPWIRE(cae_dataset_load)
TRIPWIRE(cae_idx_read)
TRIPWIRE(cae_checkpoint_load)
TRIPWIRE(cae_checkpoint_save)
TRIPWIRE(cae_export_npy)
TRIPWIRE(cae_import_npy)
TRIPWIRE(cae_npy_read)
TRIPWIRE(cae_variations_write)
TRIPWIRE(cae_train)
TRIPWIRE(fork)

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    report_fd = dup(2);
    if (report_fd < 0) report_fd = 2;
    for (size_t i = 0; i < sizeof command_names / sizeof command_names[0]; i++) {
        int found = 0;
        for (int k = 0; k < n_parsers; k++) found |= !strcmp(command_names[i], parsers[k].name);
        if (!found) dprintf(report_fd, "fuzz_cli: cae %s has no parse-only entry point: not fuzzed\n", command_names[i]);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    const int which = data[0] % n_parsers;
    char *argv[FUZZ_MAX_ARGS + 2], *owned[FUZZ_MAX_ARGS + 2];
    int argc = 0;
    argv[argc++] = strdup(parsers[which].name);
    size_t pos = 1;
    while (pos < size && argc <= FUZZ_MAX_ARGS) {
        const uint8_t *nul = memchr(data + pos, 0, size - pos);
        const size_t len = nul ? (size_t)(nul - (data + pos)) : size - pos;
        char *a = malloc(len + 1);
        if (!a) abort();
        memcpy(a, data + pos, len);
        a[len] = '\0';
        argv[argc++] = a;
        pos += len + 1;
    }
    argv[argc] = NULL;
    memcpy(owned, argv, sizeof owned); /* a parser may permute argv */

    const int rc = parsers[which].parse(argc, argv);
    if (rc != CLI_PARSE_RUN && rc != 0 && rc != 2) {
        dprintf(report_fd, "fuzz_cli: cmd_%s_parse returned %d (expected CLI_PARSE_RUN, 0 or 2)\n",
                parsers[which].name, rc);
        abort();
    }
    fflush(stdout);
    for (int i = 0; i < argc; i++) free(owned[i]);
    return 0;
}
