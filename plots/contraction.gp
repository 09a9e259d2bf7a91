# Contraction curves (Fig. 1 and Fig. 3): mean ||f(x0) - f(x1)|| / r against
# the radius r of the sphere x1 is drawn on, one curve per model.
#   gnuplot -e "in='curves.dat'; out='fig1'" plots/contraction.gp
# in:  a table written by cae_table_write: header "radius NAME NAME_sd ...",
#      then one row per radius (mean and standard deviation per model).
# out: output path without extension; OUT.png and OUT.svg are written.
# Optional: title, dmin, dmed, dmax (distances between training examples,
# drawn as vertical lines), logy=1 for a log ratio axis.
if (!exists("in")) in = 'curves.dat'
if (!exists("out")) out = 'contraction'
if (!exists("title")) title = 'Contraction ratio against distance from the data'

set xlabel 'radius r of the sphere around a validation example'
set ylabel 'mean ||f(x_0) - f(x_1)|| / r'
set key outside right top box width 1
set grid lc rgb '#dddddd'
set style data lines
if (exists("logy") && logy) set logscale y

mark(x, name) = sprintf("set arrow from %g, graph 0 to %g, graph 1 nohead dt 2 lc rgb '#777777'; set label '%s' at %g, graph 0.97 left offset 0.3, 0 textcolor rgb '#555555'", x, x, name, x)
if (exists("dmin")) eval mark(dmin, 'min')
if (exists("dmed")) eval mark(dmed, 'median')
if (exists("dmax")) eval mark(dmax, 'max')

do for [fmt in "png svg"] {
    if (fmt eq "png") { set terminal pngcairo size 900, 560 font ",11" } else { set terminal svg size 900, 560 font ",11" }
    set output out . '.' . fmt
    set title title
    plot for [i = 2:*:2] in using 1:i title columnhead(i) lw 2
    unset output
}
