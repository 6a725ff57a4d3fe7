#!/usr/bin/env bash
# test_stage_workload.sh BINDIR [dev|uring] — a seeded random workload
# behaves on a staging mount as on a plain directory, operation by
# operation.
#
# What it shows:
#  - 3000 random operations (tests/workload.py, seed 1: writes at offsets,
#    appends, truncates, renames of files and directories, unlinks,
#    mkdir/rmdir, reads, files held open and renamed or unlinked while
#    open) have the same outcome on the mount and on a plain directory,
#    and the committed table unpacks to that directory;
#  - the same over --base (2500 operations, seed 2, on a random base
#    tree): the overlay of staged files, whiteouts and base behaves as a
#    copy of the base tree would.
# The modes, and the check of each daemon's log: tests/stage_lib.sh.
# shellcheck disable=SC2016
set -u
# shellcheck source=tests/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/stage_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/stage_lib.sh"
stage_init workload "$@"
require_python

if stage_fg work "$WORK/work.sstable"; then
  mkdir plain
  run python3 "$TESTS/workload.py" "$MNT" "$WORK/plain" 1 3000
  check "3000 random operations (seed 1) alike on the mount and a directory" \
    status_is 0
  note out 21
  commit work
  check "workload: sstfs --unmount exits 0" status_is 0
  run "$SST" unpack -q work.sstable work.unpacked
  check "workload: the table unpacks" status_is 0
  run diff -r work.unpacked plain
  check "workload: diff -r of the unpacked table and the directory" eval \
    'status_is 0 && [ ! -s out ]'
  [ "$rc" -eq 0 ] || note out 10
fi

# The same over --base: the overlay of staged files, whiteouts and base.
# (Unlinks of open files are left out here: the workload above has them.)
mkdir wbase
python3 "$TESTS/workload.py" --make-tree wbase 7
run "$SST" pack -q wbase wbase.sstable
check "workload over --base: pack a random base tree" status_is 0
cp -a wbase wbase.plain
if stage_fg wbase "$WORK/wbase-out.sstable" --base "$WORK/wbase.sstable"; then
  run diff -r "$MNT" wbase
  check "workload over --base: the mount shows the base tree" eval \
    'status_is 0 && [ ! -s out ]'
  run python3 "$TESTS/workload.py" "$MNT" "$WORK/wbase.plain" 2 2500 --no-unlink-open
  check "2500 random operations (seed 2) over --base alike on the mount and a directory" \
    status_is 0
  note out 21
  commit wbase
  check "workload over --base: sstfs --unmount exits 0" status_is 0
  run "$SST" unpack -q wbase-out.sstable wbase.unpacked
  run diff -r wbase.unpacked wbase.plain
  check "workload over --base: diff -r of the unpacked table and the directory" \
    eval 'status_is 0 && [ ! -s out ]'
  [ "$rc" -eq 0 ] || note out 10
fi

stage_finish
