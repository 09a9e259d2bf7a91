/* `cae data` — fetch, make-variations, inspect. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cae/data.h"
#include "commands.h"
#include "parse.h"

static const char *data_usage =
    "usage: cae data <subcommand> [options]\n"
    "\n"
    "  cae data fetch [--dir DIR] [--only mnist|fashion|images]...\n"
    "      Run scripts/fetch-data.sh: MNIST (checked against its MD5s), Fashion-MNIST\n"
    "      and the background photographs into DIR (default $CAE_DATA_DIR or data/).\n"
    "  cae data make-variations [--small] [--seed N] [--out DIR] [--data DIR] [--only SET,...]\n"
    "      Generate the variations benchmark (basic, rot, bg-rand, bg-img, bg-img-rot,\n"
    "      rect, rect-img, convex) as IDX files with MANIFEST.txt and preview.dat.\n"
    "      --data: where fetch put MNIST and the photos (default $CAE_DATA_DIR or data/)\n"
    "      --out: default DATA/variations; --seed: default 1; --small: 1/50 sizes.\n"
    "  cae data inspect FILE\n"
    "      Print what an IDX file (raw or gzip) holds: type, dims, value range and,\n"
    "      for labels, a histogram; or the reason it is broken (exit status 1).\n";

static const char *default_data_dir(void)
{
    const char *d = getenv("CAE_DATA_DIR");
    return (d && *d) ? d : "data";
}

static int file_exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* scripts/fetch-data.sh: $CAE_FETCH_SCRIPT, $CAE_SOURCE_DIR/scripts, then
 * next to the executable (build dirs sit one or two levels below the source),
 * then ./scripts. */
static int find_fetch_script(char *out, size_t len)
{
    const char *env = getenv("CAE_FETCH_SCRIPT");
    if (env && *env) {
        snprintf(out, len, "%s", env);
        return file_exists(out);
    }
    env = getenv("CAE_SOURCE_DIR");
    if (env && *env) {
        snprintf(out, len, "%s/scripts/fetch-data.sh", env);
        if (file_exists(out)) return 1;
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) *slash = '\0';
        static const char *up[] = {"..", "../..", "../../.."};
        for (int i = 0; i < 3; i++) {
            snprintf(out, len, "%s/%s/scripts/fetch-data.sh", exe, up[i]);
            if (file_exists(out)) return 1;
        }
    }
    snprintf(out, len, "scripts/fetch-data.sh");
    return file_exists(out);
}

/* Every option of every subcommand; filled by data_parse, nothing else. */
typedef enum { DATA_FETCH, DATA_MAKE_VARIATIONS, DATA_INSPECT } data_sub;
#define DATA_MAX_FETCH_ARGS 56
typedef struct data_opts {
    data_sub sub;
    /* fetch: --dir/--only pairs passed on to the script, in order */
    const char *fetch_args[DATA_MAX_FETCH_ARGS];
    int n_fetch_args;
    int fetch_has_dir;
    /* make-variations */
    const char *data_dir, *out;
    unsigned long long seed;
    int small;
    unsigned mask;
    /* inspect */
    const char *path;
} data_opts;

static int is_help(const char *a)
{
    return !strcmp(a, "--help") || !strcmp(a, "-h");
}

static int parse_fetch(int argc, char **argv, data_opts *o)
{
    const char *who = "cae data fetch";
    for (int i = 1; i < argc; i++) {
        if (is_help(argv[i])) {
            fputs(data_usage, stdout);
            return 0;
        }
        if (cli_is_option(argv[i], "--dir") || cli_is_option(argv[i], "--only")) {
            const char *opt = cli_is_option(argv[i], "--dir") ? "--dir" : "--only";
            const char *v = cli_option_value(who, argc, argv, &i, opt);
            if (!v) return 2;
            if (!strcmp(opt, "--only") && strcmp(v, "mnist") && strcmp(v, "fashion") && strcmp(v, "images")) {
                fprintf(stderr, "%s: bad value for --only: '%s' (expected mnist, fashion or images)\n", who, v);
                return 2;
            }
            if (o->n_fetch_args + 2 > DATA_MAX_FETCH_ARGS) {
                fprintf(stderr, "%s: too many options\n", who);
                return 2;
            }
            o->fetch_args[o->n_fetch_args++] = opt;
            o->fetch_args[o->n_fetch_args++] = v;
            o->fetch_has_dir |= !strcmp(opt, "--dir");
            continue;
        }
        fprintf(stderr, "%s: unknown option '%s' (try cae data --help)\n", who, argv[i]);
        return 2;
    }
    return CLI_PARSE_RUN;
}

static int data_fetch(const data_opts *o)
{
    const char *who = "cae data fetch";
    char *args[DATA_MAX_FETCH_ARGS + 8];
    int na = 0;
    char script[PATH_MAX + 64];
    args[na++] = "bash";
    args[na++] = script;
    for (int k = 0; k < o->n_fetch_args; k++) args[na++] = (char *)o->fetch_args[k];
    if (!o->fetch_has_dir) { /* the same default as make-variations: $CAE_DATA_DIR or ./data */
        args[na++] = "--dir";
        args[na++] = (char *)default_data_dir();
    }
    args[na] = NULL;
    if (!find_fetch_script(script, sizeof script)) {
        fprintf(stderr, "%s: cannot find scripts/fetch-data.sh (set CAE_SOURCE_DIR to the source tree)\n", who);
        return 1;
    }
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        perror(who);
        return 1;
    }
    if (pid == 0) {
        execvp("bash", args);
        perror("cae data fetch: bash");
        _exit(127);
    }
    int status = 0;
    if (waitpid(pid, &status, 0) < 0) {
        perror(who);
        return 1;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return 0;
    fprintf(stderr, "%s: %s failed\n", who, script);
    return 1;
}

/* "rot,bg-rand" -> bit mask; 0 (after printing the reason) on a bad name. */
static unsigned parse_sets(const char *who, const char *list)
{
    unsigned mask = 0;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", list);
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        int v = cae_variation_from_name(t);
        if (v < 0) {
            fprintf(stderr, "%s: bad value for --only: unknown set '%s' (expected basic, rot, bg-rand, "
                            "bg-img, bg-img-rot, rect, rect-img or convex)\n", who, t);
            return 0;
        }
        mask |= 1u << v;
    }
    if (!mask) fprintf(stderr, "%s: bad value for --only: empty list\n", who);
    return mask;
}

static int parse_make_variations(int argc, char **argv, data_opts *o)
{
    const char *who = "cae data make-variations";
    o->data_dir = default_data_dir();
    o->seed = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (is_help(a)) {
            fputs(data_usage, stdout);
            return 0;
        } else if (!strcmp(a, "--small")) {
            o->small = 1;
        } else if (cli_is_option(a, "--seed")) {
            if (!(v = cli_option_value(who, argc, argv, &i, "--seed")) || !cli_parse_u64(who, "--seed", v, &o->seed))
                return 2;
        } else if (cli_is_option(a, "--out")) {
            if (!(o->out = cli_option_value(who, argc, argv, &i, "--out"))) return 2;
        } else if (cli_is_option(a, "--data")) {
            if (!(o->data_dir = cli_option_value(who, argc, argv, &i, "--data"))) return 2;
        } else if (cli_is_option(a, "--only")) {
            if (!(v = cli_option_value(who, argc, argv, &i, "--only")) || !(o->mask = parse_sets(who, v)))
                return 2;
        } else {
            fprintf(stderr, "%s: unknown option '%s' (try cae data --help)\n", who, a);
            return 2;
        }
    }
    return CLI_PARSE_RUN;
}

static int data_make_variations(const data_opts *o)
{
    const char *who = "cae data make-variations";
    const char *data_dir = o->data_dir, *out = o->out;
    unsigned long long seed = o->seed;
    int small = o->small;
    unsigned mask = o->mask;
    char outbuf[PATH_MAX];
    if (!out) {
        snprintf(outbuf, sizeof outbuf, "%s/variations", data_dir);
        out = outbuf;
    }
    cae_error err;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    cae_status rc = cae_variations_write(data_dir, out, seed, small, mask, &err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (rc) {
        fprintf(stderr, "%s: %s%s\n", who, err.msg,
                rc == CAE_ERR_IO ? " (fetch the data first: cae data fetch, or pass --data DIR)" : "");
        return 1;
    }
    printf("variations (seed %llu%s) written to %s in %.1f s\n", seed, small ? ", small" : "", out,
           (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec));
    for (int v = 0; v < CAE_VAR_COUNT; v++) {
        if (mask && !(mask >> v & 1)) continue;
        int64_t s[3];
        cae_variation_sizes(v, small, s);
        printf("  %-11s train %6lld  valid %5lld  test %6lld\n", cae_variation_name(v), (long long)s[0],
               (long long)s[1], (long long)s[2]);
    }
    printf("manifest: %s/MANIFEST.txt\npreview:  gnuplot -e \"in='%s/preview.dat'; out='variations.png'\" "
           "plots/variations.gp\n", out, out);
    return 0;
}

static int parse_inspect(int argc, char **argv, data_opts *o)
{
    const char *who = "cae data inspect";
    for (int i = 1; i < argc; i++) {
        if (is_help(argv[i])) {
            fputs(data_usage, stdout);
            return 0;
        }
        if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "%s: unknown option '%s' (try cae data --help)\n", who, argv[i]);
            return 2;
        }
        if (o->path) {
            fprintf(stderr, "%s: expected one FILE, found a second: '%s'\n", who, argv[i]);
            return 2;
        }
        o->path = argv[i];
    }
    if (!o->path) {
        fprintf(stderr, "%s: missing FILE (usage: cae data inspect FILE)\n", who);
        return 2;
    }
    return CLI_PARSE_RUN;
}

static int data_inspect(const data_opts *o)
{
    const char *who = "cae data inspect", *path = o->path;
    cae_error err;
    cae_idx *x = NULL;
    cae_status rc = cae_idx_read(path, &x, &err);
    if (rc) {
        fprintf(stderr, "%s: error (%s): %s\n", who, cae_status_name(rc), err.msg);
        return 1;
    }
    static const struct { int t; const char *n; } tn[] = {{CAE_IDX_U8, "unsigned byte (0x08)"},
        {CAE_IDX_I8, "signed byte (0x09)"}, {CAE_IDX_I16, "int16 (0x0b)"}, {CAE_IDX_I32, "int32 (0x0c)"},
        {CAE_IDX_F32, "float32 (0x0d)"}, {CAE_IDX_F64, "float64 (0x0e)"}};
    const char *tname = "?";
    for (size_t k = 0; k < sizeof tn / sizeof tn[0]; k++)
        if (tn[k].t == x->type) tname = tn[k].n;
    printf("file:   %s (%s IDX)\n", path, x->gzip ? "gzip" : "raw");
    printf("type:   %s\n", tname);
    printf("rank:   %d\ndims:   ", x->rank);
    for (int k = 0; k < x->rank; k++) printf("%s%lld", k ? " x " : "", (long long)x->dims[k]);
    double mn = cae_idx_get(x, 0), mx = mn, sum = 0;
    int integral = 1;
    for (int64_t i = 0; i < x->count; i++) {
        double v = cae_idx_get(x, i);
        mn = v < mn ? v : mn;
        mx = v > mx ? v : mx;
        sum += v;
        if (v != (double)(long long)v) integral = 0;
    }
    printf("\nitems:  %lld of %lld values each\n", (long long)x->dims[0], (long long)(x->count / x->dims[0]));
    printf("values: min %g  max %g  mean %.4g\n", mn, mx, sum / (double)x->count);
    if (x->type == CAE_IDX_U8 && x->rank >= 2)
        printf("as reals in [0,1] (divided by 255): min %.4g  max %.4g\n", mn / 255.0, mx / 255.0);
    if (x->rank == 1 && integral && mn >= 0 && mx <= 255) {
        long long hist[256] = {0};
        for (int64_t i = 0; i < x->count; i++) hist[(int)cae_idx_get(x, i)]++;
        printf("labels: %d classes\n", (int)mx + 1);
        for (int c = 0; c <= (int)mx; c++)
            printf("  %3d: %8lld  (%.2f%%)\n", c, hist[c], 100.0 * (double)hist[c] / (double)x->count);
    }
    cae_idx_free(x);
    return 0;
}

/* CLI_PARSE_RUN with *o filled, or the exit status (help, bad usage). */
static int data_parse(int argc, char **argv, data_opts *o)
{
    memset(o, 0, sizeof *o);
    if (argc < 2) {
        fputs(data_usage, stderr);
        return 2;
    }
    const char *sub = argv[1];
    if (is_help(sub) || !strcmp(sub, "help")) {
        fputs(data_usage, stdout);
        return 0;
    }
    if (!strcmp(sub, "fetch")) {
        o->sub = DATA_FETCH;
        return parse_fetch(argc - 1, argv + 1, o);
    }
    if (!strcmp(sub, "make-variations")) {
        o->sub = DATA_MAKE_VARIATIONS;
        return parse_make_variations(argc - 1, argv + 1, o);
    }
    if (!strcmp(sub, "inspect")) {
        o->sub = DATA_INSPECT;
        return parse_inspect(argc - 1, argv + 1, o);
    }
    fprintf(stderr, "cae data: unknown subcommand '%s' (expected fetch, make-variations or inspect)\n", sub);
    return 2;
}

int cmd_data_parse(int argc, char **argv)
{
    data_opts o;
    return data_parse(argc, argv, &o);
}

int cmd_data(int argc, char **argv)
{
    data_opts o;
    int rc = data_parse(argc, argv, &o);
    if (rc != CLI_PARSE_RUN) return rc;
    switch (o.sub) {
    case DATA_FETCH: return data_fetch(&o);
    case DATA_MAKE_VARIATIONS: return data_make_variations(&o);
    case DATA_INSPECT: return data_inspect(&o);
    }
    return 2;
}
