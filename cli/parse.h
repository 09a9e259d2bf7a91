/* Parse-only entry points of the `cae` subcommands.
 *
 * A command that splits its option parsing from its work exposes the parsing
 * here: NAME_parse(argc, argv) takes the same argv as the command (argv[0] is
 * the command's own name), checks every option exactly as the command would,
 * and returns CLI_PARSE_RUN when the command would go on to run, or the exit
 * status the command would return without running (0 after --help, 2 on bad
 * usage, with the same one-line reason on stderr). A parse function opens,
 * reads, writes, forks and allocates nothing that outlives the call, so it is
 * safe to call millions of times in one process: fuzz/fuzz_cli.c drives every
 * entry of CAE_CLI_PARSERS with random argv.
 *
 * The pattern (cli/cmd_data.c follows it):
 *
 *   typedef struct { ... every option value ... } foo_opts;
 *   static int foo_parse_opts(int argc, char **argv, foo_opts *o);  // no side effects
 *   int cmd_foo_parse(int argc, char **argv) { foo_opts o; return foo_parse_opts(argc, argv, &o); }
 *   int cmd_foo(int argc, char **argv) {
 *       foo_opts o;
 *       int rc = foo_parse_opts(argc, argv, &o);
 *       if (rc != CLI_PARSE_RUN) return rc;
 *       ... the work ...
 *   }
 *
 * To add a command's parser: declare it below and add one X(...) line.
 */
#ifndef CAE_CLI_PARSE_H
#define CAE_CLI_PARSE_H

#define CLI_PARSE_RUN (-1)

int cmd_data_parse(int argc, char **argv);
int cmd_analyze_parse(int argc, char **argv);
int cmd_pretrain_parse(int argc, char **argv);
int cmd_finetune_parse(int argc, char **argv);
int cmd_eval_parse(int argc, char **argv);
int cmd_export_parse(int argc, char **argv);
int cmd_import_parse(int argc, char **argv);
int cmd_reproduce_parse(int argc, char **argv);
int cmd_sample_parse(int argc, char **argv);
int cmd_parzen_parse(int argc, char **argv);

/* X(name as in CAE_CLI_COMMANDS, parse function) */
#define CAE_CLI_PARSERS(X) \
    X("data", cmd_data_parse) \
    X("analyze", cmd_analyze_parse) \
    X("pretrain", cmd_pretrain_parse) \
    X("finetune", cmd_finetune_parse) \
    X("eval", cmd_eval_parse) \
    X("export", cmd_export_parse) \
    X("reproduce", cmd_reproduce_parse) \
    X("sample", cmd_sample_parse) \
    X("import", cmd_import_parse) \
    X("parzen", cmd_parzen_parse)

#endif
