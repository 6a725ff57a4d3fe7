#!/usr/bin/env bash
# test_stage_base.sh BINDIR [dev|uring] — a staging mount over a base
# table (--base) stages only what changes.
#
# What it shows:
#  - the mount shows the base tree (diff -r), and reading base files
#    copies nothing into the staging area's tree/;
#  - a change, an append, additions, deletions (of a file and a
#    directory), renames (of a directory, over a file), a truncate and a
#    directory made again give the same tree on the mount as on a plain
#    copy, and the committed table unpacks to it;
#  - untouched base files are never copied into tree/; the base table is
#    unchanged.
# The modes, and the check of each daemon's log: tests/stage_lib.sh.
# shellcheck disable=SC2016,SC2034
set -u
# shellcheck source=tests/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/stage_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/stage_lib.sh"
stage_init base "$@"

mkdir bt
(
  cd bt || exit 1
  mkdir -p deldir/sub movedir/sub dir/nested redo
  head -c 10000 /dev/urandom >keep.txt
  head -c 2097152 /dev/urandom >big.bin
  head -c 100000 /dev/urandom >change.bin
  printf 'line 1\nline 2\n' >append.log
  echo delete >delete.txt
  echo a >deldir/a
  echo b >deldir/sub/b
  echo x >movedir/x
  echo y >movedir/sub/y
  echo deep >dir/nested/deep.txt
  echo over >over.txt
  echo moved-over >src.txt
  head -c 50000 /dev/urandom >trunc.bin
  echo old >redo/old
)
run "$SST" pack -q bt base.sstable
check "--base: pack the base tree" status_is 0
cp base.sstable base.copy
cp -a bt expected
# changes ROOT: the same changes, on the mount and on a plain copy.
changes() {
  printf 'PATCH' | dd of="$1/change.bin" bs=1 seek=5000 conv=notrunc 2>/dev/null &&
    echo "line 3" >>"$1/append.log" &&
    echo new >"$1/new.txt" &&
    mkdir -p "$1/newdir/sub" && echo n >"$1/newdir/sub/n.txt" &&
    echo added >"$1/dir/added.txt" &&
    rm "$1/delete.txt" &&
    rm -r "$1/deldir" &&
    mv "$1/movedir" "$1/moved" &&
    echo x2 >>"$1/moved/x" &&
    mv "$1/src.txt" "$1/over.txt" &&
    truncate -s 100 "$1/trunc.bin" &&
    rm -r "$1/redo" && mkdir "$1/redo" && echo new >"$1/redo/new"
}
if stage_fg base "$WORK/v2.sstable" --base "$WORK/base.sstable"; then
  area=$WORK/v2.sstable.stage
  run cat "$MNT/keep.txt"
  check "--base: a base file reads" eval 'status_is 0 && cmp -s out bt/keep.txt'
  check "--base: reading a base file does not copy it into tree/" eval \
    '[ ! -e "$area/tree/keep.txt" ] && [ -z "$(ls -A "$area/tree")" ]'
  run diff -r bt "$MNT"
  check "--base: diff -r of the base tree and the mount" eval \
    'status_is 0 && [ ! -s out ]'
  check "--base: nor does reading every file (tree/ is still empty)" \
    eval '[ -z "$(ls -A "$area/tree")" ]'
  changes "$MNT" 2>err
  rc=$?
  check "--base: change, append, add, delete, rename on the mount" status_is 0
  changes expected 2>>err
  run diff -r expected "$MNT"
  check "--base: diff -r of the expected tree and the mount" eval \
    'status_is 0 && [ ! -s out ]'
  [ "$rc" -eq 0 ] || note out 10
  check "--base: untouched base files are not in tree/" eval \
    '[ ! -e "$area/tree/keep.txt" ] && [ ! -e "$area/tree/big.bin" ] &&
     [ ! -e "$area/tree/dir/nested/deep.txt" ]'
  commit base
  check "--base: sstfs --unmount exits 0" status_is 0
  run "$SST" unpack -q v2.sstable v2.unpacked
  run diff -r v2.unpacked expected
  check "--base: diff -r of the unpacked table and the expected tree" eval \
    'status_is 0 && [ ! -s out ]'
  [ "$rc" -eq 0 ] || note out 10
  check "--base: the base table is unchanged" cmp -s base.sstable base.copy
fi

stage_finish
