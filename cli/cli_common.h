/* Helpers shared by the model commands (pretrain, finetune, eval, export):
 * a table-driven option parser, data and checkpoint loading with one-line
 * reasons, model descriptions, and the training progress display.
 *
 * Every function that can fail prints one line "WHO: reason" on stderr and
 * returns the exit status the command should return (2 usage, 1 runtime),
 * or 0 on success. */
#ifndef CAE_CLI_COMMON_H
#define CAE_CLI_COMMON_H

#include <stdint.h>
#include <stdio.h>

#include "cae/checkpoint.h"
#include "cae/data.h"
#include "cae/train.h"

/* ---------------------------------------------------------------- options */

typedef enum cli_opt_kind {
    CLI_FLAG, /* int* set to 1 */
    CLI_STR,  /* const char ** */
    CLI_INT,  /* long long *, in [min, max] */
    CLI_U64,  /* unsigned long long * */
    CLI_REAL  /* double *, finite, in [min, max] (max_open: < max) */
} cli_opt_kind;

typedef struct cli_opt {
    const char *name; /* "--hidden" */
    cli_opt_kind kind;
    void *dst;
    double min, max;
    int max_open;
    int given; /* set by cli_parse */
} cli_opt;

/* Parse argv[1..] against opts. Returns CLI_PARSE_RUN (cli/parse.h) when
 * the command should run, 0 after --help / -h (usage printed on stdout), 2
 * after a usage error (reason on stderr). Positional arguments are
 * rejected. No side effects besides the printing and *dst / given. */
int cli_parse(const char *who, const char *usage, int argc, char **argv, cli_opt *opts, int n);
/* --threads T (T > 0) for the whole command: OpenMP's thread count, which
 * the library's regions that take no count of their own use (the distance
 * sample, the spectrum, LAPACK's SVD); 0 leaves OpenMP's default. */
void cli_use_threads(long long threads);
/* The option named name in opts (asserts it exists). */
cli_opt *cli_opt_get(cli_opt *opts, int n, const char *name);
/* 2 (after "WHO: missing required option NAME") if opt was not given. */
int cli_require(const char *who, const cli_opt *opt);

/* ------------------------------------------------------------ data, models */

/* $CAE_DATA_DIR, or "data". */
const char *cli_default_data_dir(void);
/* Load the splits of a named set; 1 on failure (reason printed). */
int cli_load_splits(const char *who, const char *dir, const char *name, cae_splits **out);
/* Load a checkpoint given by option opt; 1 on failure (reason printed). */
int cli_load_checkpoint(const char *who, const char *opt, const char *path, cae_model_info *info,
                        cae_params **params);
/* Save info, p and the optimizer store opt (may be NULL) atomically; 1 on
 * failure (reason printed). */
int cli_save_checkpoint(const char *who, const char *path, const cae_model_info *info,
                        const cae_params *p, const cae_params *opt);
/* Save a resumable run (cae_checkpoint_save_run); 1 on failure (printed). */
int cli_save_run(const char *who, const char *path, const cae_model_info *info, cae_task *t,
                 const cae_params *opt);

/* ----------------------------------------------------------------- resume */

/* --resume: load the checkpoint at path with its optimizer store and the
 * training state cae_train recorded in it (*st). 1 on failure (reason
 * printed): unreadable, or no RNG / training state to resume from. */
int cli_resume_load(const char *who, const char *path, cae_model_info *info, cae_params **p,
                    cae_params **opt, cae_train_state *st);
/* 2 after "WHO: --resume PATH: --FIELD is WANT, the checkpoint has SAVED":
 * a field of layer top_layer that is an option is named as the option
 * (0: none is), one of another layer as "BELOW layer K's FIELD". */
int cli_resume_mismatch(const char *who, const char *path, const cae_mismatch *m,
                        int top_layer, const char *below);
/* 1 if path exists (any kind of file), 0 if not. */
int cli_exists(const char *path);
/* 1 (reason printed) when the directory of an output path does not exist
 * or is not writable, or the path is a directory: checked before training. */
int cli_check_out(const char *who, const char *path);
/* 2 (reason printed, naming the data option and the checkpoint) when d's
 * width is not n_in. */
int cli_check_width(const char *who, const char *data_name, const cae_dataset *d, int64_t n_in,
                    const char *model_opt, const char *model_path);
/* "784-1000-500 sigmoid/sigmoid" (the encoder stack) into buf. */
char *cli_describe_stack(const cae_model_info *info, char *buf, size_t len);

/* ---------------------------------------------------------------- progress */

/* A progress bar on stderr when it is a terminal (rate, ETA); inert otherwise. */
typedef struct cli_progress {
    int enabled, drawn;
    int epoch, epochs;
    double start, last_draw;
} cli_progress;

void cli_progress_init(cli_progress *pg, int epochs);
/* Call from the on_batch hook. */
void cli_progress_batch(cli_progress *pg, int epoch, int64_t done, int64_t total);
/* Erase the bar (before printing an epoch line). */
void cli_progress_clear(cli_progress *pg);
/* Seconds on a monotonic clock. */
double cli_now(void);

#endif
