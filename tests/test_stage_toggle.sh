#!/usr/bin/env bash
# test_stage_toggle.sh BINDIR — a staging daemon already using io_uring
# keeps working when the fuse module's enable_uring is turned off.
#
# What it shows:
#  - with enable_uring set a staging mount is made; a file is written,
#    enable_uring is turned off (and on again after), and writing and
#    reading through the mount still work within 20 s;
#  - the commit holds both files, and the daemon says it served requests
#    through io_uring.
# Runs in the uring mode only (tests/stage_lib.sh); exits 77 where FUSE
# over io_uring is not there.
# shellcheck disable=SC2016
set -u
# shellcheck source=tests/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/stage_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/stage_lib.sh"
stage_init toggle "${1:?usage: test_stage_toggle.sh BINDIR}" uring

if stage_fg toggle "$WORK/toggle.sstable"; then
  echo one >"$MNT/a" 2>err
  echo N >"$URING_PARAM"
  run timeout 20 sh -c 'echo two >"$1/b" && cat "$1/a" "$1/b"' sh "$MNT"
  echo Y >"$URING_PARAM"
  check "enable_uring turned off under the mount: it keeps working" eval \
    'status_is 0 && [ "$(cat out)" = "$(printf "one\ntwo")" ]'
  commit toggle
  check "enable_uring turned off under the mount: the commit holds both files" eval \
    'status_is 0 && [ "${status[toggle]}" = 0 ] &&
     [ "$("$SST" get toggle.sstable b 2>&1)" = two ]'
  check "enable_uring turned off under the mount: served through io_uring" \
    grep -q "$uring_count" log/toggle
fi

stage_finish
