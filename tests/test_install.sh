#!/usr/bin/env bash
# test_install.sh BUILD_DIR — `cmake --install` puts the tool, library,
# header and pkg-config file in place, and a program builds against them.
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
build=$1
# Flags the library was built with that a program linking it needs too
# (the sanitizers), passed as an optional second argument.
extra=${2:-}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
check() { # name, command...
  local name=$1; shift
  if "$@" >"$tmp/out" 2>&1; then
    echo "ok - $name"; pass=$((pass + 1))
  else
    echo "not ok - $name"; sed 's/^/  /' "$tmp/out"; fail=$((fail + 1))
  fi
}
check "cmake --install" cmake --install "$build" --prefix "$tmp/prefix"
check "sst installed" test -x "$tmp/prefix/bin/sst"
check "header installed" test -f "$tmp/prefix/include/sstable.h"
pcdir=$(dirname "$(find "$tmp/prefix" -name sstable.pc | head -1)")
check "compile against pkg-config" bash -c \
  "cc $extra -o '$tmp/prog' '$here/install_prog.c' \$(PKG_CONFIG_PATH='$pcdir' pkg-config --cflags --libs sstable)"
check "program runs" "$tmp/prog" "$tmp/t.sstable"
check "installed sst reads it" "$tmp/prefix/bin/sst" get "$tmp/t.sstable" k
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
