/* The `cae` command table: the one place a new subcommand is added.
 *
 * Each command is a function run(argc, argv) whose argv[0] is the command's
 * own name ("data", "pretrain", ...), returning the process exit status:
 * 0 success, 1 failure while running, 2 bad usage (one-line reason printed on
 * stderr). `cae CMD --help` must print the command's usage and return 0.
 *
 * To add a command: declare its function below, add one X(...) line to
 * CAE_CLI_COMMANDS, and put the function in cli/cmd_NAME.c (globbed by CMake).
 */
#ifndef CAE_CLI_COMMANDS_H
#define CAE_CLI_COMMANDS_H

int cmd_data(int argc, char **argv);
int cmd_pretrain(int argc, char **argv);
int cmd_finetune(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_import(int argc, char **argv);
int cmd_analyze(int argc, char **argv);
int cmd_reproduce(int argc, char **argv);
int cmd_sample(int argc, char **argv);
int cmd_parzen(int argc, char **argv);

/* X(name, function, one-line summary) */
#define CAE_CLI_COMMANDS(X) \
    X("data", cmd_data, "fetch, generate and inspect data sets (IDX files, variations)") \
    X("pretrain", cmd_pretrain, "train one auto-encoder / RBM layer (or stack one with --on)") \
    X("finetune", cmd_finetune, "an MLP from pretrained layers, early stopping, test error") \
    X("eval", cmd_eval, "error, ||J_f||, SAT and reconstruction of a checkpoint") \
    X("export", cmd_export, "write a checkpoint's tensors as .npy files") \
    X("import", cmd_import, "a checkpoint from .npy files (the inverse of export)") \
    X("analyze", cmd_analyze, "contraction curves and Jacobian spectra of checkpoints (Fig. 1-3)") \
    X("reproduce", cmd_reproduce, "the paper's Table 1, Table 2 and figures end to end") \
    X("sample", cmd_sample, "chains of samples from a pretrained model (CAE: along J J^T; RBM: Gibbs)") \
    X("parzen", cmd_parzen, "Parzen-window log-likelihood of samples, the width chosen on validation")

/* Shared option helpers (cli/options.c). Each prints a one-line reason naming
 * `who` and the option on stderr and returns 0 on failure. */
int cli_parse_u64(const char *who, const char *opt, const char *text, unsigned long long *out);
int cli_parse_i64(const char *who, const char *opt, const char *text, long long min, long long max,
                  long long *out);
/* Value of an option at argv[*i]: "--opt=value" or "--opt value" (advances
 * *i). Returns NULL (after printing the reason) if the value is missing. */
const char *cli_option_value(const char *who, int argc, char **argv, int *i, const char *opt);
/* 1 if argv[i] is exactly opt or starts with "opt=". */
int cli_is_option(const char *arg, const char *opt);

#endif
