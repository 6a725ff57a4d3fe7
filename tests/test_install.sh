#!/usr/bin/env bash
# test_install.sh BUILD_DIR — `cmake --install` puts the tool, library,
# header and pkg-config file in place, and a program builds against them.
set -u
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
cat >"$tmp/prog.c" <<'C'
#include <sstable.h>
#include <stdio.h>
#include <string.h>
int main(int argc, char **argv) {
  sst_writer *w;
  sst_error err;
  if (argc < 2 || sst_writer_open(argv[1], NULL, &w, &err)) return 1;
  if (sst_writer_add(w, "k", 1, "v", 1) || sst_writer_finish(w, &err)) return 1;
  sst_writer_free(w);
  sst_reader *r;
  const unsigned char *v;
  unsigned long long n = 0;
  uint64_t vl;
  if (sst_reader_open(argv[1], NULL, &r, &err)) return 1;
  if (sst_reader_get(r, "k", 1, &v, &vl) || vl != 1 || v[0] != 'v') return 1;
  n = vl;
  sst_reader_close(r);
  printf("%llu\n", n);
  return 0;
}
C
check "compile against pkg-config" bash -c \
  "cc $extra -o '$tmp/prog' '$tmp/prog.c' \$(PKG_CONFIG_PATH='$pcdir' pkg-config --cflags --libs sstable)"
check "program runs" "$tmp/prog" "$tmp/t.sstable"
check "installed sst reads it" "$tmp/prefix/bin/sst" get "$tmp/t.sstable" k
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
