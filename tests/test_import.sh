#!/usr/bin/env bash
# `cae import --npy` end to end, on a tiny data set written here (a
# variation-style set of 2x3-pixel images: no download needed):
#  1. hand-made .npy files (written byte by byte below, float32 C order and
#     float64 Fortran order) with known weights: `cae eval` gives the
#     closed-form ||J_f||_F, ||J_f||_F^2, SAT and reconstruction computed
#     here independently (awk, double precision);
#  2. pretrain -> export -> import -> export is bit-identical (one layer;
#     a stack of two, the second untied);
#  3. an imported model is used by eval, analyze contraction, analyze
#     spectrum and finetune;
#  4. refusals: usage errors (status 2), files that are wrong (status 1, the
#     file named);
#  5. with NumPy (python3-numpy), docs/CHECKPOINT.md's numpy.save example is
#     run as written and imported, and arrays NumPy writes in Fortran order
#     come back from import -> export equal.
# Usage: test_import.sh path/to/cae
set -euo pipefail
cae=$1
tmp=$(mktemp -d "${TMPDIR:-/tmp}/cae-import.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
src=${CAE_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
fail() { echo "test_import: $*" >&2; exit 1; }
real=$("$cae" --version | sed -E 's/.*\((float|double)\)$/\1/')
if [ "$real" = double ]; then tol=1e-8; else tol=2e-5; fi # eval prints 9 digits

# ------------------------------------------------------------ writing bytes
# bytes: numbers 0..255 on stdin -> those bytes.
bytes() { printf '%b' "$(awk '{for (i = 1; i <= NF; i++) printf "\\x%02x", $i}')"; }
# be32 N: 4 bytes, big-endian (IDX dimensions).
be32() { echo "$(($1 >> 24 & 255)) $(($1 >> 16 & 255)) $(($1 >> 8 & 255)) $(($1 & 255))" | bytes; }

# IEEE encodings of dyadic numbers (k / 2^m, few bits), little-endian bytes.
ieee_awk='
function enc(v, bytes,   s, e, m, hi, lo, k, out) {
  s = 0; if (v < 0 || (v == 0 && 1 / v < 0)) { s = 1; v = -v }
  if (v == 0) { hi = s * 2147483648; lo = 0 }
  else {
    e = 0; while (v >= 2) { v /= 2; e++ } while (v < 1) { v *= 2; e-- }
    if (bytes == 4) { hi = s * 2147483648 + (e + 127) * 8388608 + (v - 1) * 8388608; lo = -1 }
    else { m = (v - 1) * 1048576; hi = s * 2147483648 + (e + 1023) * 1048576 + int(m); lo = (m - int(m)) * 4294967296 }
  }
  out = ""
  if (bytes == 8) for (k = 0; k < 4; k++) out = out " " int(lo / 256 ^ k) % 256
  for (k = 0; k < 4; k++) out = out " " int(hi / 256 ^ k) % 256
  return out
}'
# npy FILE DESCR FORTRAN SHAPE VALUE...: a NumPy 1.0 file, values in file order.
npy() {
  local file=$1 descr=$2 fortran=$3 shape=$4
  shift 4
  local dict="{'descr': '$descr', 'fortran_order': $fortran, 'shape': $shape, }"
  local total=$((10 + ${#dict} + 1))
  total=$((total + (64 - total % 64) % 64))
  local hl=$((total - 10)) pad=$((total - 10 - ${#dict} - 1))
  {
    printf '\x93NUMPY\x01\x00'
    echo "$((hl & 255)) $((hl >> 8))" | bytes
    printf '%s%*s\n' "$dict" "$pad" ""
    echo "$@" | awk -v n="${descr: -1}" "$ieee_awk"' { for (i = 1; i <= NF; i++) print enc($i, n) }' | bytes
  } >"$file"
}

# ------------------------------------------------------------ the data set
# variations/basic/{train,valid,test}: 2x3-pixel images from an LCG, labels
# alternating 0, 1. pixels.txt keeps each split's pixels for the checks.
mkdir -p data/variations/basic
for split in train:40:1 valid:10:2 test:10:3; do
  IFS=: read -r name n seed <<<"$split"
  awk -v n="$n" -v seed="$seed" 'BEGIN {
    p = seed * 7919
    for (i = 0; i < n; i++) { line = ""
      for (j = 0; j < 6; j++) { p = (p * 1103515245 + 12345) % 2147483648; line = line " " int(p / 65536) % 256 }
      print line } }' >"$name.pixels"
  { printf '\x00\x00\x08\x03'; be32 "$n"; be32 2; be32 3; bytes <"$name.pixels"; } \
    >"data/variations/basic/$name-images-idx3-ubyte"
  { printf '\x00\x00\x08\x01'; be32 "$n"; awk -v n="$n" 'BEGIN { for (i = 0; i < n; i++) print i % 2 }' | bytes; } \
    >"data/variations/basic/$name-labels-idx1-ubyte"
done
D=(--data basic --data-dir "$tmp/data")

# ------------------------------------------- 1. hand-made weights, closed form
# W (6 x 4), b (4), c (6): multiples of 1/4, exact in float32 and float64;
# some units saturate (SAT > 0).
W=() Wf=()
for i in 0 1 2 3 4 5; do for j in 0 1 2 3; do W+=("$(awk -v i=$i -v j=$j 'BEGIN { print ((i * 3 + j * 5) % 9 - 4) / 2 }')"); done; done
for j in 0 1 2 3; do for i in 0 1 2 3 4 5; do Wf+=("${W[$((i * 4 + j))]}"); done; done # column after column
b=(-3.5 -0.25 0.25 3.5)
c=(-0.5 -0.25 0 0.25 0.5 0.75)
mkdir known known-f
npy known/L1.W.npy '<f4' False '(6, 4)' "${W[@]}"
npy known/L1.b.npy '<f4' False '(4,)' "${b[@]}"
npy known/L1.c.npy '<f4' False '(6,)' "${c[@]}"
npy known-f/L1.W.npy '<f8' True '(6, 4)' "${Wf[@]}"
npy known-f/L1.b.npy '<f8' False '(4,)' "${b[@]}"
npy known-f/L1.c.npy '<f8' True '(6,)' "${c[@]}"

"$cae" import --npy known --model cae --out known.ckpt >import.out || fail "import of the hand-made files failed"
grep -q "wrote known.ckpt: cae 6-4 sigmoid" import.out || fail "unexpected import report: $(cat import.out)"
"$cae" import --npy known-f --model cae --layers 6-4 --out known-f.ckpt >/dev/null || fail "import of the Fortran float64 files failed"
"$cae" eval --model known.ckpt "${D[@]}" --json >eval.json || fail "cae eval on the imported model failed"
"$cae" eval --model known-f.ckpt "${D[@]}" --json >eval-f.json || fail "cae eval on the Fortran import failed"
num() { sed -E "s/.*\"$1\":([^,}]*).*/\1/" "$2"; }
for k in jac_norm jac_sqnorm sat recon; do
  [ "$(num $k eval.json)" = "$(num $k eval-f.json)" ] || fail "$k: C float32 and Fortran float64 files give $(num $k eval.json) and $(num $k eval-f.json)"
done
# The closed form, independently: h = sigmoid(x W + b), x = pixel / 255 over
# the valid split; ||J||_F^2 = sum_j (h_j (1 - h_j))^2 sum_i W_ij^2; SAT: units
# with h < 0.05 or > 0.95; recon: cross-entropy of sigmoid(h W^T + c).
expect=$(awk -v w="${W[*]}" -v bb="${b[*]}" -v cc="${c[*]}" '
  BEGIN { split(w, W, " "); split(bb, B, " "); split(cc, C, " ") }
  { for (i = 0; i < 6; i++) x[i] = $(i + 1) / 255
    sq = 0; sat = 0
    for (j = 0; j < 4; j++) {
      a = B[j + 1]; n2 = 0
      for (i = 0; i < 6; i++) { a += x[i] * W[i * 4 + j + 1]; n2 += W[i * 4 + j + 1] ^ 2 }
      h[j] = 1 / (1 + exp(-a)); d = h[j] * (1 - h[j]); sq += d * d * n2
      if (h[j] < 0.05 || h[j] > 0.95) sat++ }
    ce = 0
    for (i = 0; i < 6; i++) {
      z = C[i + 1]; for (j = 0; j < 4; j++) z += h[j] * W[i * 4 + j + 1]
      r = 1 / (1 + exp(-z)); ce -= x[i] * log(r) + (1 - x[i]) * log(1 - r) }
    tn += sqrt(sq); tq += sq; ts += sat / 4; tc += ce; n++ }
  END { printf "%.12g %.12g %.12g %.12g %d\n", tn / n, tq / n, ts / n, tc / n, n }' valid.pixels)
read -r e_norm e_sq e_sat e_rec e_n <<<"$expect"
check() { # NAME GOT WANT: |got - want| <= tol |want|
  awk -v g="$2" -v w="$3" -v t="$tol" 'BEGIN { d = g - w; if (d < 0) d = -d; a = w < 0 ? -w : w; exit !(d <= t * a + 1e-12) }' ||
    fail "$1: cae eval says $2, the closed form computed here $3 (relative tolerance $tol)"
  echo "   $1: cae eval $2, closed form $3"
}
[ "$(num examples eval.json)" = "$e_n" ] || fail "eval used $(num examples eval.json) examples, the valid split has $e_n"
check "||J||_F" "$(num jac_norm eval.json)" "$e_norm"
check "||J||_F^2" "$(num jac_sqnorm eval.json)" "$e_sq"
check "SAT" "$(num sat eval.json)" "$e_sat"
check "recon" "$(num recon eval.json)" "$e_rec"

# ---------------------------------------------- 2. export -> import -> export
"$cae" pretrain --model cae --hidden 5 --epochs 2 --batch 5 "${D[@]}" --out one.ckpt >/dev/null || fail "pretrain failed"
"$cae" pretrain --model dae-b --hidden 3 --epochs 2 --batch 5 --untied --act tanh --on one.ckpt "${D[@]}" \
  --out two.ckpt >/dev/null || fail "pretrain --on failed"
"$cae" finetune --init two.ckpt --epochs 2 --batch 5 "${D[@]}" --out mlp.ckpt >/dev/null || fail "finetune failed"
rt() { # NAME CKPT IMPORT-OPTIONS...: export, import, export: the same bytes
  local name=$1 ckpt=$2
  shift 2
  "$cae" export --model "$ckpt" --npy "$name.a" >/dev/null || fail "$name: export failed"
  "$cae" import --npy "$name.a" "$@" --out "$name.imported.ckpt" >/dev/null || fail "$name: import $* failed"
  "$cae" export --model "$name.imported.ckpt" --npy "$name.b" >/dev/null || fail "$name: second export failed"
  diff -r "$name.a" "$name.b" >/dev/null || fail "$name: export -> import -> export differs"
  # The tensors of the two checkpoints are the same bits: eval agrees exactly.
  "$cae" eval --model "$ckpt" "${D[@]}" --json | sed 's/"model":"[^"]*",//; s/"kind":"[^"]*",//' >"$name.e1"
  "$cae" eval --model "$name.imported.ckpt" "${D[@]}" --json | sed 's/"model":"[^"]*",//; s/"kind":"[^"]*",//' >"$name.e2"
  cmp -s "$name.e1" "$name.e2" || fail "$name: eval differs after import: $(cat "$name.e1" "$name.e2")"
  echo "   $name: export -> import -> export identical ($(ls "$name.a" | tr '\n' ' '))"
}
rt one one.ckpt --model cae
rt two two.ckpt --model cae,dae-b --act sigmoid,tanh
rt mlp mlp.ckpt --model mlp --act sigmoid,tanh

# --------------------------------------- 3. an imported model, used everywhere
"$cae" analyze contraction --model known.ckpt --model two.imported.ckpt "${D[@]}" --points 10 --distances 10 \
  --radii 1:3:1 --out contraction >/dev/null || fail "analyze contraction on imported models failed"
[ "$(grep -vc '^#' contraction.dat)" -ge 4 ] || fail "contraction.dat has too few rows"
"$cae" analyze spectrum --model known.ckpt --model one.imported.ckpt "${D[@]}" --examples 5 --out spectrum \
  >/dev/null || fail "analyze spectrum on imported models failed"
[ "$(grep -vc '^#' spectrum.dat)" -ge 5 ] || fail "spectrum.dat has too few rows"
"$cae" finetune --init known.ckpt --epochs 2 --batch 5 "${D[@]}" --out known-mlp.ckpt >/dev/null ||
  fail "finetune from an imported model failed"
"$cae" eval --model known-mlp.ckpt "${D[@]}" --json | grep -q '"error":' || fail "eval of the fine-tuned import has no error"
"$cae" eval --model mlp.imported.ckpt "${D[@]}" --json | grep -q '"error":' || fail "eval of an imported classifier has no error"
echo "   eval, analyze contraction, analyze spectrum, finetune: ran on imported models"

# ------------------------------------------------------------- 4. refusals
expect_fail() { # STATUS TEXT ARGS...
  local want=$1 text=$2 rc=0
  shift 2
  "$cae" import "$@" >out.txt 2>err.txt || rc=$?
  [ "$rc" = "$want" ] || fail "cae import $*: exit $rc, expected $want ($(cat err.txt))"
  grep -qF -- "$text" err.txt || fail "cae import $*: the message lacks \"$text\": $(cat err.txt)"
  [ "$(wc -l <err.txt)" = 1 ] || fail "cae import $*: more than one line on stderr: $(cat err.txt)"
}
expect_fail 2 "missing required option --npy" --model cae --out x.ckpt
expect_fail 2 "bad value for --model" --npy known --model nope --out x.ckpt
expect_fail 2 "bad value for --layers" --npy known --model cae --layers 6 --out x.ckpt
expect_fail 2 "bad value for --act" --npy known --model cae --act sigmoid,nope --out x.ckpt
expect_fail 2 "--model gives 2 objectives" --npy known --model cae,ae --layers 6-4 --out x.ckpt
expect_fail 2 "an rbm has sigmoid" --npy known --model rbm --act tanh --out x.ckpt
expect_fail 1 "known/L1.W.npy: shape 6x4, expected 6x5" --npy known --model cae --layers 6-5 --out x.ckpt
expect_fail 1 "L2.W.npy: not a tensor of this model" --npy two.a --model cae --layers 6-5 --out x.ckpt
expect_fail 1 "cannot open the directory" --npy nowhere --model cae --out x.ckpt
mkdir bad && cp known/L1.W.npy known/L1.b.npy bad/
npy bad/L1.c.npy '>f4' False '(6,)' "${c[@]}"
expect_fail 1 "bad/L1.c.npy: big-endian float32" --npy bad --model cae --out x.ckpt
printf '\x93NUMPY\x01\x00\x76\x00{"descr": "|O"' >bad/L1.c.npy
expect_fail 1 "bad/L1.c.npy: the file ends after" --npy bad --model cae --out x.ckpt
rm bad/L1.c.npy
"$cae" import --npy bad --model cae --out nodecoder.ckpt >out.txt || fail "import without L1.c failed"
grep -q "L1.c (6, zeros: no file)" out.txt || fail "the import does not say L1.c is zeros: $(cat out.txt)"
[ ! -e x.ckpt ] || fail "a refused import wrote x.ckpt"
echo "   refusals: usage errors exit 2, bad files exit 1 naming the file"

# ----------------------------------------------- 5. with NumPy, the docs' example
py=""
for p in python3 /usr/bin/python3; do
  if command -v "$p" >/dev/null && "$p" -c 'import numpy' 2>/dev/null; then py=$p; break; fi
done
if [ -z "$py" ]; then
  echo "   NumPy not installed (python3-numpy): the docs' example is not run"
else
  # The example as written in docs/CHECKPOINT.md (between the markers).
  sed -n '/^<!-- numpy-example -->$/,/^<!-- \/numpy-example -->$/p' "$src/docs/CHECKPOINT.md" |
    sed -n '/^```python$/,/^```$/p' | sed '1d;$d' >example.py
  [ "$(wc -l <example.py)" -ge 10 ] || fail "docs/CHECKPOINT.md: the numpy example was not found"
  "$py" example.py || fail "the docs' numpy example does not run"
  "$cae" import --npy weights --model cae --out weights.ckpt >out.txt || fail "the docs' example does not import: $(cat out.txt)"
  grep -q "cae 784-100 sigmoid" out.txt || fail "the docs' example: $(cat out.txt)"
  "$cae" export --model weights.ckpt --npy weights.back >/dev/null
  # NumPy writes W.T (a Fortran-contiguous view) in Fortran order; import
  # transposes it; the export is C order with the same values.
  "$py" - <<'EOF' || fail "NumPy: what the docs' example saved does not come back equal"
import os
import numpy as np
a = {n: np.load(os.path.join("weights", n)) for n in os.listdir("weights")}
b = {n: np.load(os.path.join("weights.back", n)) for n in os.listdir("weights.back")}
assert set(a) == set(b), (sorted(a), sorted(b))
for n in a:
    assert a[n].shape == b[n].shape and np.array_equal(a[n].astype(b[n].dtype), b[n]), n
t = np.arange(24, dtype=np.float64).reshape(4, 6) / 8
os.makedirs("f", exist_ok=True)
np.save("f/L1.W.npy", t.T)  # (6, 4), a Fortran-contiguous view: fortran_order True
np.save("f/L1.b.npy", np.float32([1, 2, 3, 4]))
EOF
  head -c 128 f/L1.W.npy | grep -q "'fortran_order': True" || fail "NumPy did not write f/L1.W.npy in Fortran order"
  "$cae" import --npy f --model ae --out f.ckpt >/dev/null || fail "import of NumPy's Fortran-order file failed"
  "$cae" export --model f.ckpt --npy f.back >/dev/null
  "$py" -c '
import numpy as np
t = np.arange(24, dtype=np.float64).reshape(4, 6) / 8
w = np.load("f.back/L1.W.npy")
assert w.shape == (6, 4) and np.array_equal(w, t.T.astype(w.dtype)), w
assert np.array_equal(np.load("f.back/L1.c.npy"), np.zeros(6))' || fail "NumPy: the Fortran-order import does not match"
  echo "   NumPy: the docs' example imports; a Fortran-order W.T comes back equal"
fi
echo "test_import: all passed ($real)"
