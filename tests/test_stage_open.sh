#!/usr/bin/env bash
# test_stage_open.sh BINDIR [dev|uring] — files held open on a staging
# mount behave as on a plain directory.
#
# What it shows:
#  - a file written and read back while open (pwrite, pread past the end,
#    fstat, a second descriptor); ftruncate shorter and longer while open;
#    a rename while open (the descriptor follows it); an unlink while open
#    (the descriptor keeps working, the name stays gone): each step as
#    tests/open_fd.py expects;
#  - the daemon serves on after those, and the table holds the closed
#    files, each with the bytes written, and not the unlinked one.
# The modes, and the check of each daemon's log: tests/stage_lib.sh.
# shellcheck disable=SC2016
set -u
# shellcheck source=tests/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/stage_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/stage_lib.sh"
stage_init open "$@"
require_python

if stage_fg openfd "$WORK/openfd.sstable"; then
  for c in readback ftruncate rename unlink; do
    run python3 "$TESTS/open_fd.py" "$c" "$MNT/$c" "want.$c"
    case $c in
      readback) what="read back while open (pwrite, pread, fstat, 2nd fd)" ;;
      ftruncate) what="ftruncate shorter and longer while open" ;;
      rename) what="rename while open: the descriptor follows" ;;
      unlink) what="unlink while open: the descriptor keeps working" ;;
    esac
    check "$what" eval 'status_is 0 && [ ! -s out ]'
    [ "$rc" -eq 0 ] || note out 3
  done
  { echo after >"$MNT/after"; } 2>err
  check "the daemon still serves after those" eval \
    'alive "${daemon[openfd]}" && [ "$(cat "$MNT/after" 2>&1)" = after ]'
  commit openfd
  check "open files: sstfs --unmount exits 0" status_is 0
  keys openfd.sstable >out 2>err
  check "open files: the table holds the closed files, not the unlinked one" \
    out_is "$(printf 'after\nftruncate\nreadback\nrename.renamed')"
  bad=0
  for c in readback ftruncate rename.renamed; do
    "$SST" get openfd.sstable "$c" 2>/dev/null | cmp -s - "want.${c%.renamed}" ||
      bad=$((bad + 1))
  done
  check "open files: each value is what was written" [ "$bad" -eq 0 ]
fi

stage_finish
