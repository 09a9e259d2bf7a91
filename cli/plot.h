/* Charts from the programs: run gnuplot on one of the scripts in plots/. */
#ifndef CAE_CLI_PLOT_H
#define CAE_CLI_PLOT_H

/* The plots directory: $CAE_PLOTS_DIR, else the source tree's plots/. */
const char *cli_plots_dir(void);
/* Run `gnuplot -e "VARS" DIR/SCRIPT`. vars is gnuplot code such as
 * "in='a.dat'; out='fig1'" (quote paths with single quotes; they must not
 * contain quotes). Returns 0, or 1 after printing "WHO: reason" on stderr
 * (gnuplot missing or failing). */
int cli_plot(const char *who, const char *script, const char *vars);

#endif
