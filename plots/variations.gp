# Ten training examples of each generated variations set, one row per set.
# Data: the preview.dat that `cae data make-variations` writes beside its
# MANIFEST.txt (a matrix of grey levels 0..255; first line "# sets: ...").
#   gnuplot -e "in='out/variations/preview.dat'; out='out/variations.png'" plots/variations.gp
if (!exists("in")) in = 'data/variations/preview.dat'
if (!exists("out")) out = 'variations.png'

sets = system(sprintf("sed -n '1s/^# sets: *//p' '%s'", in))
nsets = words(sets)
cell = 30
ncols = 10 * cell - 2
nrows = nsets * cell - 2

set terminal pngcairo size (ncols * 3 + 140), (nrows * 3 + 70) font ",11"
set output out
set title "Variations benchmark: ten training examples per set"
unset key
unset colorbox
set palette grey
set cbrange [0:255]
set xrange [-0.5:ncols - 0.5]
set yrange [nrows - 0.5:-0.5]
set size ratio -1
unset xtics
set ytics scale 0
set ytics ()
do for [i = 1:nsets] {
    set ytics add (word(sets, i) (i - 1) * cell + 13.5)
}
set lmargin 14
plot in matrix with image
