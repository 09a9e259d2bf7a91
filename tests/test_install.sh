#!/usr/bin/env bash
# Programs outside the tree link the installed library (issue 14):
#  1. `cmake --install` into a temporary prefix, then move the prefix (the
#     .pc file and the CMake package must not remember where they were put);
#  2. copy examples/two_layer.c and examples/custom_regularizer.c out of the
#     source and build them three ways: `pkg-config --cflags --libs NAME`
#     (shared library), `pkg-config --static` against a prefix that holds
#     only the static library (and with -Wl,-Bstatic where both are), and
#     a 10-line CMakeLists.txt with
#     find_package(NAME CONFIG REQUIRED) (cae::cae and cae::cae_static);
#     run every program;
#  3. the version: cae_version() == CAE_VERSION_STRING == the project
#     version == `NAME --version`;
#  4. a real-type mismatch fails at link time, naming the marker (shared
#     and static; one translation unit of each type in one program too),
#     while the same program with the matching type links and runs;
#  5. when the other real type's build sits beside this one (build,
#     build-double), both install into one prefix side by side.
# Skipped (77) in a sanitizer build: its library is instrumented, and a
# program outside would need the sanitizer's runtime to link.
#
# Usage: test_install.sh BUILD_DIR SOURCE_DIR NAME REAL VERSION LIBDIR CC SANITIZE [OTHER_BUILD]
set -euo pipefail
build=$1 src=$2 name=$3 real=$4 version=$5 libdir=$6 cc=$7 sanitize=$8 other=${9:-}
if [ "$sanitize" = ON ]; then
  echo "test_install: skipped: a sanitizer build's library needs the sanitizer runtime in every program"
  exit 77
fi
command -v pkg-config >/dev/null || { echo "test_install: pkg-config is not installed" >&2; exit 1; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/cae-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail() { echo "test_install: $*" >&2; exit 1; }
step() { echo "== $*"; }
cmake() { command "${CAE_CMAKE:-cmake}" "$@"; } # the build's own cmake

if [ "$real" = double ]; then def=-DCAE_REAL_DOUBLE wrong_def= wrong=float marker=cae_abi_real_float
else def= wrong_def=-DCAE_REAL_DOUBLE wrong=double marker=cae_abi_real_double; fi

# ------------------------------------------------------------- install
step "install $build into a temporary prefix, then move it"
cmake --install "$build" --prefix "$tmp/first" >"$tmp/install.log" || { cat "$tmp/install.log"; fail "cmake --install failed"; }
mv "$tmp/first" "$tmp/prefix"
P=$tmp/prefix
for f in "$libdir/lib$name.so" "$libdir/lib$name.a" "$libdir/pkgconfig/$name.pc" \
         "$libdir/cmake/$name/${name}Config.cmake" "include/cae/graph.h" "include/cae/version.h" "bin/$name"; do
  [ -e "$P/$f" ] || fail "the install has no $f"
done
[ ! -e "$P/include/cae/version.h.in" ] || fail "the install has the template include/cae/version.h.in"
if grep -rq "$tmp/first" "$P/$libdir/pkgconfig" "$P/$libdir/cmake"; then
  fail "the package files remember the first prefix ($tmp/first)"
fi

export PKG_CONFIG_PATH=$P/$libdir/pkgconfig
pc_prefix=$(pkg-config --variable=prefix "$name")
[ "$(cd "$pc_prefix" && pwd -P)" = "$(cd "$P" && pwd -P)" ] || fail "$name.pc: prefix is '$pc_prefix', expected $P"
pc_version=$(pkg-config --modversion "$name")
[ "$pc_version" = "$version" ] || fail "$name.pc: version $pc_version, the project's is $version"
if [ -n "$def" ]; then
  [[ " $(pkg-config --cflags "$name") " == *" $def "* ]] || fail "$name.pc: Cflags lack $def"
else
  [[ "$(pkg-config --cflags "$name")" != *CAE_REAL_DOUBLE* ]] || fail "$name.pc: Cflags define CAE_REAL_DOUBLE"
fi
static_libs=$(pkg-config --static --libs "$name")
echo "   pkg-config --static --libs $name: $static_libs"
# libxsmm before its no-BLAS stub (else sgemm_ & co. are undefined).
x=$(tr ' ' '\n' <<<"$static_libs" | grep -n -x -- -lxsmm | cut -d: -f1)
nb=$(tr ' ' '\n' <<<"$static_libs" | grep -n -x -- -lxsmmnoblas | cut -d: -f1)
[ -n "$x" ] && [ -n "$nb" ] && [ "$x" -lt "$nb" ] || fail "$name.pc: --static must give -lxsmm before -lxsmmnoblas: $static_libs"

mkdir -p "$tmp/user"
cp "$src/examples/two_layer.c" "$src/examples/custom_regularizer.c" "$tmp/user/"
cd "$tmp/user"
examples="two_layer custom_regularizer"

uses() { # uses PROGRAM TEXT [ENV...]: 0 if ldd's output holds TEXT
  local prog=$1 text=$2 out
  shift 2
  out=$(env "$@" ldd "$prog")
  [[ $out == *"$text"* ]]
}

run() { # run NAME PROGRAM [ENV...]: the program must exit 0
  local what=$1 prog=$2
  shift 2
  if ! env "$@" "$prog" >"$prog.out" 2>&1; then
    tail -20 "$prog.out"
    fail "$what: $prog failed"
  fi
  echo "   $what: $(basename "$prog") ran: $(tail -1 "$prog.out")"
}

# ----------------------------------------------------- pkg-config, shared
step "pkg-config --cflags --libs $name (shared)"
for e in $examples; do
  # shellcheck disable=SC2046
  "$cc" -O2 -o "$e.shared" "$e.c" $(pkg-config --cflags --libs "$name") ||
    fail "pkg-config (shared): $e.c does not build"
  uses "$e.shared" "lib$name.so.0 => $P/" LD_LIBRARY_PATH="$P/$libdir" || fail "$e.shared does not use $P's lib$name.so"
  run "pkg-config (shared)" "./$e.shared" LD_LIBRARY_PATH="$P/$libdir"
done

# ------------------------------------------------------ pkg-config, static
step "pkg-config --static --cflags --libs $name (a prefix with only lib$name.a)"
cp -a "$P" "$tmp/static-prefix"
rm -f "$tmp/static-prefix/$libdir/lib$name.so"*
for e in $examples; do
  # shellcheck disable=SC2046
  "$cc" -O2 -o "$e.static" "$e.c" $(PKG_CONFIG_PATH=$tmp/static-prefix/$libdir/pkgconfig pkg-config --static --cflags --libs "$name") ||
    fail "pkg-config --static: $e.c does not build"
  ! uses "$e.static" "lib$name" || fail "$e.static depends on lib$name.so"
  run "pkg-config --static" "./$e.static"
done

step "both libraries installed: libcae.a by -Wl,-Bstatic -l$name -Wl,-Bdynamic (the README's line)"
for e in $examples; do
  # shellcheck disable=SC2046
  "$cc" -O2 -o "$e.bstatic" "$e.c" $(pkg-config --cflags "$name") -Wl,-Bstatic "-l$name" -Wl,-Bdynamic \
    $(pkg-config --static --libs "$name") || fail "-Wl,-Bstatic: $e.c does not build"
  ! uses "$e.bstatic" "lib$name" LD_LIBRARY_PATH="$P/$libdir" || fail "$e.bstatic depends on lib$name.so"
  run "-Wl,-Bstatic" "./$e.bstatic"
done

# --------------------------------------------------------------- CMake
step "find_package($name CONFIG REQUIRED), cae::cae and cae::cae_static"
mkdir -p cm
cat >cm/CMakeLists.txt <<EOF
cmake_minimum_required(VERSION 3.18)
project(user C)
find_package($name CONFIG REQUIRED)
foreach(e $examples)
  add_executable(\${e} ../\${e}.c)
  target_link_libraries(\${e} PRIVATE cae::cae)
  add_executable(\${e}_static ../\${e}.c)
  target_link_libraries(\${e}_static PRIVATE cae::cae_static)
endforeach()
EOF
[ "$(wc -l <cm/CMakeLists.txt)" -le 10 ] || fail "the CMakeLists.txt is longer than 10 lines"
(cmake -S cm -B cm/build -DCMAKE_C_COMPILER="$cc" -DCMAKE_PREFIX_PATH="$P" -DCMAKE_BUILD_TYPE=Release &&
   cmake --build cm/build) >cm.log 2>&1 || { tail -30 cm.log; fail "the find_package project does not build"; }
for e in $examples; do
  uses "cm/build/$e" "lib$name.so.0 => $P/" || fail "cm/build/$e does not use $P's lib$name.so (RPATH)"
  ! uses "cm/build/${e}_static" "lib$name" || fail "cm/build/${e}_static depends on lib$name.so"
  run "find_package (cae::cae)" "cm/build/$e"
  run "find_package (cae::cae_static)" "cm/build/${e}_static"
done

# ------------------------------------------------------------- version
step "version: header, library, project, command"
cat >version.c <<'EOF'
#include <stdio.h>
#include <string.h>
#include "cae/graph.h"
#include "cae/version.h"
int main(void)
{
    printf("%s %s %s %d\n", CAE_VERSION_STRING, cae_version(), cae_version_real(), CAE_VERSION_NUMBER);
    return strcmp(CAE_VERSION_STRING, cae_version()) != 0;
}
EOF
# shellcheck disable=SC2046
"$cc" -o version version.c $(pkg-config --cflags --libs "$name") || fail "version.c does not build"
got=$(LD_LIBRARY_PATH=$P/$libdir ./version) || fail "cae_version() differs from CAE_VERSION_STRING: $got"
IFS=. read -r vmaj vmin vpat <<<"$version"
[ "$got" = "$version $version $real $((vmaj * 10000 + vmin * 100 + vpat))" ] ||
  fail "version program says '$got', expected '$version $version $real ...'"
cmdv=$("$P/bin/$name" --version)
[ "$cmdv" = "cae $version ($real)" ] || fail "$name --version says '$cmdv', expected 'cae $version ($real)'"
echo "   $got; $name --version: $cmdv"

# ------------------------------------------------- real-type mismatch
step "a $wrong program against lib$name fails at link time"
cat >abi_main.c <<'EOF'
#include <stdio.h>
#include "cae/graph.h"
int helper(void);
int main(void)
{
    cae_params *p = cae_params_new();
    cae_tensor *t = cae_params_add(p, "w", 1, (int64_t[]){3});
    printf("sizeof(cae_real) = %d, tensor of %lld\n", (int)sizeof(cae_real), (long long)t->size);
    cae_params_free(p);
    return helper();
}
EOF
cat >abi_helper.c <<'EOF'
#include "cae/rng.h"
#include "cae/graph.h"
int helper(void) { return sizeof(cae_real) == 0; }
EOF
cflags_only=$(pkg-config --cflags "$name" | sed 's/-DCAE_REAL_DOUBLE//')
expect_link_error() { # WHAT LOG: the link failed, naming the marker
  grep -q "undefined reference to .$marker" "$2" || { cat "$2"; fail "$1: the link error does not name $marker"; }
  echo "   $1: refused: $(grep -m1 -o "undefined reference to .$marker." "$2")"
}
# shellcheck disable=SC2086,SC2046
if "$cc" -o abi_shared abi_main.c abi_helper.c $cflags_only $wrong_def $(pkg-config --libs "$name") >abi_shared.log 2>&1; then
  fail "a $wrong program linked with lib$name.so"
fi
expect_link_error "shared, $wrong" abi_shared.log
# shellcheck disable=SC2086,SC2046
if "$cc" -o abi_static abi_main.c abi_helper.c $cflags_only $wrong_def \
     $(PKG_CONFIG_PATH=$tmp/static-prefix/$libdir/pkgconfig pkg-config --static --libs "$name") >abi_static.log 2>&1; then
  fail "a $wrong program linked with lib$name.a"
fi
expect_link_error "static, $wrong" abi_static.log
# One translation unit of each type in one program.
# shellcheck disable=SC2086,SC2046
"$cc" -c -o abi_helper_wrong.o abi_helper.c $cflags_only $wrong_def
# shellcheck disable=SC2086,SC2046
if "$cc" -o abi_mixed abi_main.c abi_helper_wrong.o $(pkg-config --cflags --libs "$name") >abi_mixed.log 2>&1; then
  fail "a program with a $real and a $wrong translation unit linked"
fi
expect_link_error "mixed translation units" abi_mixed.log
# The control: the same program with the matching type links and runs.
# shellcheck disable=SC2086,SC2046
"$cc" -o abi_ok abi_main.c abi_helper.c $(pkg-config --cflags --libs "$name") || fail "the matching program does not link"
run "matching type" ./abi_ok LD_LIBRARY_PATH="$P/$libdir"

# ------------------------------------------------------- side by side
if [ "$name" = cae ]; then oname=cae-double; else oname=cae; fi
if [ -n "$other" ]; then
  newer=""
  [ -e "$other/lib$oname.so" ] && newer=$(find "$src/include" "$src/lib" -newer "$other/lib$oname.so" -print -quit)
  if [ -n "$newer" ]; then
    echo "== side by side: skipped ($other is older than $newer: build it first)"
  elif [ -f "$other/CMakeCache.txt" ] && [ -f "$other/$oname.pc" ] && [ -e "$other/lib$oname.so" ] && [ -e "$other/lib$oname.a" ]; then
    step "side by side: $other ($oname) into the same prefix"
    cp -a "$P" "$tmp/both"
    sums() { (cd "$tmp/both" && find . -name "lib$name.so*" -o -name "lib$name.a" -o -name "$name.pc" -o -path "*/cmake/$name/*" | sort | xargs md5sum); }
    before=$(sums)
    cmake --install "$other" --prefix "$tmp/both" >"$tmp/install-other.log" || fail "cmake --install $other failed"
    [ "$before" = "$(sums)" ] || fail "installing $oname changed $name's files"
    for n in "$name" "$oname"; do
      # shellcheck disable=SC2046
      "$cc" -o "two_layer.$n" two_layer.c $(PKG_CONFIG_PATH=$tmp/both/$libdir/pkgconfig pkg-config --cflags --libs "$n") ||
        fail "side by side: two_layer.c does not build with $n"
      run "side by side ($n)" "./two_layer.$n" LD_LIBRARY_PATH="$tmp/both/$libdir"
      "$tmp/both/bin/$n" --version >/dev/null || fail "side by side: bin/$n does not run"
    done
    # One project cannot load both packages (the same symbols, two real types).
    mkdir -p cm2
    printf 'cmake_minimum_required(VERSION 3.18)\nproject(both C)\nfind_package(%s CONFIG REQUIRED)\nfind_package(%s CONFIG REQUIRED)\n' \
      "$name" "$oname" >cm2/CMakeLists.txt
    if cmake -S cm2 -B cm2/build -DCMAKE_PREFIX_PATH="$tmp/both" >cm2.log 2>&1; then
      fail "one CMake project loaded both $name and $oname"
    fi
    grep -q "not both" cm2.log || { cat cm2.log; fail "loading both packages: not the expected message"; }
    echo "   find_package($name) then find_package($oname): refused"
  else
    echo "== side by side: skipped ($other has no current $oname build)"
  fi
fi
echo "test_install: all passed ($name, $real)"
