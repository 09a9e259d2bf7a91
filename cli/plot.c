/* Running gnuplot on the scripts in plots/. */
#include "plot.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef CAE_PLOTS_DIR
#define CAE_PLOTS_DIR "plots"
#endif

const char *cli_plots_dir(void)
{
    const char *d = getenv("CAE_PLOTS_DIR");
    return d && *d ? d : CAE_PLOTS_DIR;
}

int cli_plot(const char *who, const char *script, const char *vars)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", cli_plots_dir(), script);
    if (access(path, R_OK)) {
        fprintf(stderr, "%s: gnuplot script %s not found (set CAE_PLOTS_DIR)\n", who, path);
        return 1;
    }
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "%s: cannot start gnuplot\n", who);
        return 1;
    }
    if (pid == 0) {
        execlp("gnuplot", "gnuplot", "-e", vars, path, (char *)NULL);
        _exit(127);
    }
    int status = 0;
    if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status)) {
        fprintf(stderr, "%s: gnuplot %s failed%s\n", who, script,
                WIFEXITED(status) && WEXITSTATUS(status) == 127 ? " (is gnuplot installed?)" : "");
        return 1;
    }
    return 0;
}
