# Chains of samples (cae sample --plot): one row per chain, its starting
# example then every recorded state, as a grey image (ink dark).
#   gnuplot -e "in='chains.dat'; out='chains'" plots/samples.gp
# in:  a matrix of grey levels in [0,1] (cae sample writes DIR/chains.dat).
# out: output path without extension (OUT.png, OUT.svg).
if (!exists("in")) in = 'chains.dat'
if (!exists("out")) out = 'chains'
if (!exists("title")) title = 'Samples'

stats in matrix nooutput
w = STATS_size_x
h = STATS_size_y
unset key
unset colorbox
unset tics
unset border
set palette gray
set cbrange [0:1]
set xrange [-0.5:w - 0.5]
set yrange [-0.5:h - 0.5]
set size ratio -1
set lmargin 1
set rmargin 1
do for [fmt in "png svg"] {
    scale = (w > 1200 ? 1 : 2)
    if (fmt eq "png") { set terminal pngcairo size w * scale + 40, h * scale + 60 font ",10" } else { set terminal svg size w * scale + 40, h * scale + 60 font ",10" }
    set output out . '.' . fmt
    set title title
    plot in matrix with image pixels
    unset output
}
