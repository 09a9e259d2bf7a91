#!/usr/bin/env bash
# The shared library exports exactly the public API: every function declared
# in include/cae/*.h (and the generated cae/version.h) is a dynamic symbol of
# the library, and nothing else is but the real-type marker of cae/abi.h.
# Internal functions (lib/*/internal.h ...), libxsmm's symbols and its
# no-BLAS stub stay local. The declarations are read by the compiler itself
# (-aux-info lists every function prototype with the file that declares it).
#
# Usage: test_exports.sh LIBRARY.so CC SOURCE_INCLUDE BUILD_INCLUDE [DEFINE]
set -euo pipefail
lib=$1 cc=$2 src_inc=$3 bin_inc=$4 def=${5:-}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

{
  # cae/testing.h is Check macros for users' tests (it needs check.h and
  # declares nothing the library defines), cae/mpi.h the API of the separate
  # libcae_mpi.a (it needs <mpi.h>): neither is libcae's.
  for h in "$src_inc"/cae/*.h "$bin_inc"/cae/*.h; do
    case "$(basename "$h")" in testing.h | mpi.h) ;; *) echo "#include \"cae/$(basename "$h")\"" ;; esac
  done
} >"$tmp/all.c"
"$cc" -std=gnu11 ${def:+-D$def} -I"$src_inc" -I"$bin_inc" -fsyntax-only -aux-info "$tmp/aux.txt" "$tmp/all.c"
# Lines like: /* /path/include/cae/graph.h:123:NC */ extern cae_graph *cae_graph_new (cae_params *, int64_t);
grep -E "^/\\* ($src_inc|$bin_inc)/cae/[^:]*:[0-9]+:[A-Z]+ \\*/ extern " "$tmp/aux.txt" |
  sed -E 's/^\/\* [^*]*\*\/ extern //; s/^([^(]*[^A-Za-z0-9_(])?([A-Za-z_][A-Za-z0-9_]*) \(.*/\2/' |
  sort -u >"$tmp/declared"
if [ -n "$def" ]; then echo cae_abi_real_double; else echo cae_abi_real_float; fi >>"$tmp/declared"
sort -u -o "$tmp/declared" "$tmp/declared"

# Dynamic symbols the library defines. Sanitizer builds add their own
# instrumentation symbols (ASan's __odr_asan.*); those are not API.
nm -D --defined-only "$lib" | awk '{print $NF}' | sed 's/@.*//' |
  grep -v -E '^(__odr_asan|__asan|__ubsan|__sanitizer|_init$|_fini$)' | sort -u >"$tmp/exported"

n_decl=$(wc -l <"$tmp/declared")
n_exp=$(wc -l <"$tmp/exported")
status=0
if [ "$n_decl" -lt 100 ]; then
  echo "test_exports: only $n_decl declarations found in $src_inc/cae: the header scan is broken" >&2
  status=1
fi
missing=$(comm -23 "$tmp/declared" "$tmp/exported")
extra=$(comm -13 "$tmp/declared" "$tmp/exported")
if [ -n "$missing" ]; then
  echo "test_exports: declared in a public header but not exported by $lib:" >&2
  sed 's/^/  /' <<<"$missing" >&2
  status=1
fi
if [ -n "$extra" ]; then
  echo "test_exports: exported by $lib but declared in no public header (should be hidden):" >&2
  sed 's/^/  /' <<<"$extra" >&2
  status=1
fi
[ $status = 0 ] && echo "test_exports: $n_exp symbols exported by $(basename "$lib"), $n_decl declared: the same set"
exit $status
