# Training curves: per-epoch training objective and validation figure.
#   gnuplot -e "in='train.dat'; out='training'" plots/training.gp
# in:  header "epoch objective valid [valid2 ...]" (columns after the first
#      are plotted against the epoch, each with its header as title).
# out: output path without extension (OUT.png, OUT.svg). Optional: title,
#      ylabel.
if (!exists("in")) in = 'train.dat'
if (!exists("out")) out = 'training'
if (!exists("title")) title = 'Training curves'
if (!exists("ylabel")) ylabel = 'value'

set xlabel 'epoch'
set ylabel ylabel
set key outside right top box width 1
set grid lc rgb '#dddddd'
set style data linespoints

do for [fmt in "png svg"] {
    if (fmt eq "png") { set terminal pngcairo size 900, 560 font ",11" } else { set terminal svg size 900, 560 font ",11" }
    set output out . '.' . fmt
    set title title
    plot for [i = 2:*] in using 1:i title columnhead(i) lw 2 pt 7 ps 0.6
    unset output
}
