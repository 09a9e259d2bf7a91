# Jacobian singular-value spectra (Fig. 2): singular values of J_f(x),
# sorted, averaged index by index over validation examples, with +- one
# standard deviation as a band, one curve per model.
#   gnuplot -e "in='spectrum.dat'; out='fig2'" plots/spectrum.gp
# in:  header "index NAME NAME_sd ...", one row per singular value index.
# out: output path without extension (OUT.png, OUT.svg).
# Optional: title, nmax (indices shown, default all), logy (default 1).
if (!exists("in")) in = 'spectrum.dat'
if (!exists("out")) out = 'spectrum'
if (!exists("title")) title = 'Singular values of the encoder Jacobian'
if (!exists("logy")) logy = 1

set xlabel 'index of the singular value (decreasing order)'
set ylabel 'singular value'
set key outside right top box width 1
set grid lc rgb '#dddddd'
if (logy) set logscale y
set format y '%g'
if (exists("nmax")) set xrange [0:nmax]

do for [fmt in "png svg"] {
    if (fmt eq "png") { set terminal pngcairo size 900, 560 font ",11" } else { set terminal svg size 900, 560 font ",11" }
    set output out . '.' . fmt
    set title title
    plot for [i = 2:*:2] in using 1:(column(i) > column(i + 1) ? column(i) - column(i + 1) : column(i) * 0.5):(column(i) + column(i + 1)) \
             with filledcurves lc i / 2 fs transparent solid 0.15 noborder notitle, \
         for [i = 2:*:2] in using 1:i with lines lw 2 lc i / 2 title columnhead(i)
    unset output
}
