#!/usr/bin/env bash
# test_stage_tree.sh BINDIR [dev|uring] — a real tree copied into a
# staging mount keeps its metadata, on the mount and in the table.
#
# What it shows (the tree: meta_tree in tests/stage_lib.sh):
#  - cp -a of a tree with symlinks (relative, absolute, dangling), an
#    executable, a 0600 file, setuid and setgid bits, a sticky and empty
#    directories, another owner, hard links, user.* extended attributes
#    and nanosecond mtimes into a staging mount exits 0 without a word;
#  - the staging mount then shows that tree: rsync -aHXc -n finds nothing
#    to do, find -printf (types, modes, owners, mtimes, link targets) is
#    the same, the names of a hard link share an inode number;
#  - after the commit, the table verifies and a read-only mount of it
#    shows the same tree by both measures, hard links included.
# The modes, and the check of each daemon's log: tests/stage_lib.sh.
# shellcheck disable=SC2016
set -u
# shellcheck source=tests/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/stage_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/stage_lib.sh"
stage_init tree "$@"
require_tools rsync setfattr getfattr

meta_tree src
find_list src >want
# same_tree WHAT DIR: the checks of DIR against src.
same_tree() {
  run rsync -a -H -X -n -i -c src/ "$2/"
  check "$1: rsync -aHXc -n from the source finds nothing to do" eval \
    'status_is 0 && [ ! -s out ] && [ ! -s err ]'
  [ -s out ] && note out
  find_list "$2" >got
  check "$1: find -printf (type, mode, owner, mtime in ns, link target)" \
    cmp -s want got
  cmp -s want got || diff want got | note /dev/stdin
  run stat -c '%i %h' "$2/etc/hard1" "$2/etc/hard2" "$2/bin/hard3"
  check "$1: the three names of a hard link: one inode, 3 links" eval \
    '[ "$(sort -u out | wc -l)" = 1 ] && [ "$(cut -d" " -f2 out | sort -u)" = 3 ]'
  run getfattr -n user.bin --only-values "$2/etc/plain.conf"
  check "$1: a binary extended attribute reads back" eval \
    '[ "$(od -An -tx1 out | tr -d " ")" = 000102ff ]'
}

if stage_fg tree "$WORK/tree.sstable"; then
  run cp -a src/. "$MNT/"
  check "cp -a of the tree into the staging mount exits 0, says nothing" \
    eval 'status_is 0 && [ ! -s err ]'
  same_tree "staging mount" "$MNT"
  commit tree
  check "sstfs --unmount exits 0" status_is 0
  run "$SST" verify tree.sstable
  check "the table verifies" status_is 0
  if ro_fg treero tree.sstable; then
    same_tree "read-only mount of the table" "$MNT"
    unmount_fg treero
  fi
fi

stage_finish
