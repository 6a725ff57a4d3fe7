#!/usr/bin/env bash
# test_stage_tar.sh BINDIR [dev|uring] — a tarball extracted into a
# staging mount is in the table as tar lists it.
#
# What it shows:
#  - tar -xf of a tarball with symlinks (relative, absolute, dangling),
#    hard links, an executable, a 0600 file, a setuid file, another
#    owner and empty directories into a staging mount exits 0 without a
#    word;
#  - after the commit, a read-only mount of the table lists what tar -tvf
#    lists: the same names, types, modes, owners and link targets, and
#    each hard link has the inode of the name it links to.
# The modes, and the check of each daemon's log: tests/stage_lib.sh.
# shellcheck disable=SC2016
set -u
# shellcheck source=tests/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/stage_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/stage_lib.sh"
stage_init tar "$@"
require_tools tar

mkdir src
(
  cd src || exit 1
  mkdir -p bin lib/empty share/doc var/empty
  printf '#!/bin/sh\n' >bin/tool && chmod 0755 bin/tool
  echo key >lib/key && chmod 0600 lib/key
  echo suid >bin/suid && chmod 4755 bin/suid
  echo doc >share/doc/README
  [ "$(id -u)" != 0 ] || chown 1234:5678 share/doc/README
  echo lib >lib/libx.so.1.2 && ln -s libx.so.1.2 lib/libx.so.1
  ln -s /usr/bin/env bin/env-link
  ln -s ../missing bin/dangling
  ln bin/tool bin/tool-again && ln bin/tool share/tool
)
tar -cf src.tar -C src .
# The listing of the tarball: type and mode, owner, name (no "./"), and
# the link target; a hard link ("h") as a regular file, its target apart.
tar -tvf src.tar --numeric-owner |
  awk '{ t = substr($1, 1, 1); m = $1; n = $6; sub(/^\.\/?/, "", n);
         sub(/\/$/, "", n); if (n == "") next;
         l = ""; if (t == "l") l = $8;
         if (t == "h") { m = "-" substr($1, 2); print $6, $9 > "hardlinks" }
         print m, $2, n, l }' | sort >want
# listing DIR: the same for the tree at DIR.
listing() {
  (cd "$1" && find . -mindepth 1 -printf '%M %U/%G %P %l\n' | sort)
}

if stage_fg tar "$WORK/tar.sstable"; then
  mkdir "$MNT/x"
  run tar -xf src.tar -C "$MNT/x"
  check "tar -xf into the staging mount exits 0, says nothing" eval \
    'status_is 0 && [ ! -s err ]'
  listing "$MNT/x" >got
  check "the staging mount lists what tar -tvf lists" cmp -s want got
  cmp -s want got || diff want got | note /dev/stdin
  commit tar
  check "sstfs --unmount exits 0" status_is 0
  if ro_fg tarro tar.sstable; then
    listing "$MNT/x" >got
    check "read-only mount: it lists what tar -tvf lists (name, type, mode, owner, link)" \
      cmp -s want got
    cmp -s want got || diff want got | note /dev/stdin
    same=1
    while read -r name target; do
      [ "$(stat -c %i "$MNT/x/$name")" = "$(stat -c %i "$MNT/x/$target")" ] ||
        same=0
    done <hardlinks
    check "read-only mount: each hard link has its target's inode ($(wc -l <hardlinks) links)" \
      [ "$same" = 1 ]
    unmount_fg tarro
  fi
fi

stage_finish
