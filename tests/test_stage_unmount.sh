#!/usr/bin/env bash
# test_stage_unmount.sh BINDIR [dev|uring] — sstfs --unmount waits for the
# table even before the daemon has written its pid.
#
# What it shows:
#  - the daemon writes its pid file only after the mount appears (and in
#    the background mode after the mounting command has returned), so
#    `sstfs --stage OUT M && sstfs --unmount M` can find no pid. That
#    state is made by removing the pid file, and the commit is made slow
#    (512 MiB of zeros): sstfs --unmount still exits 0 only once the table
#    is there.
# The modes, and the check of each daemon's log: tests/stage_lib.sh.
# shellcheck disable=SC2016
set -u
# shellcheck source=tests/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/stage_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/stage_lib.sh"
stage_init unmount "$@"

if stage_fg window "$WORK/window.sstable"; then
  truncate -s 512M "$MNT/zeros"
  rm -f window.sstable.stage/pid
  run "$SSTFS" --unmount "$MNT"
  table_then=absent
  [ -e window.sstable ] && table_then=present
  check "--unmount with no pid file yet still waits for the table ($table_then when it returned)" \
    eval 'status_is 0 && [ "$table_then" = present ]'
  reap window
  rm -f window.sstable
fi

stage_finish
