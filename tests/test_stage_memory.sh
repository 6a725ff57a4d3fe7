#!/usr/bin/env bash
# test_stage_memory.sh BINDIR [dev|uring] — a 1 GiB file goes through a
# staging daemon in bounded memory.
#
# What it shows:
#  - cp of a 1 GiB file into a staging mount, then sstfs --unmount, exit
#    0, and the daemon's peak memory (VmHWM) stays under 64 MiB through
#    the copy and the commit;
#  - OUT is never seen partly written during the commit;
#  - the table's value is the file (sst get | cmp).
# Needs 3.5 GiB free (the source, its staged copy and the table); exits 77
# without. The modes, and the check of each daemon's log:
# tests/stage_lib.sh.
# shellcheck disable=SC2016,SC2034
set -u
# shellcheck source=tests/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/stage_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/stage_lib.sh"
stage_init memory "$@"

avail=$(df -Pk . | awk 'NR == 2 { print $4 }')
if [ "${avail:-0}" -lt 3670016 ]; then
  echo "SKIP: a 1 GiB file in bounded memory needs 3.5 GiB free in $WORK"
  exit 77
fi
# A sanitizer build keeps freed memory in a quarantine, which counts in
# the daemon's RSS: its daemon gets a small one.
vars=()
if ldd "$SSTFS" 2>/dev/null | grep -q libasan ||
  grep -qa __asan_init "$SSTFS" 2>/dev/null; then
  vars=("ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=8")
fi

if head -c 1073741824 /dev/urandom >gig.src &&
  start_fg gig "${vars[@]}" -- --stage "$WORK/gig.sstable" "$WORK/mnt/gig"; then
  pid=${daemon[gig]}
  run cp gig.src "$MNT/"
  check "1 GiB: cp into the staging mount" status_is 0
  hwm_copy=$(awk '/^VmHWM/ { print $2 }' "/proc/$pid/status")
  # Unmount in the background and watch the daemon through its commit.
  "$SSTFS" --unmount "$MNT" >out 2>err &
  unmounter=$!
  own_helper "$unmounter"
  hwm=$hwm_copy
  while alive "$pid"; do
    h=$(awk '/^VmHWM/ { print $2 }' "/proc/$pid/status" 2>/dev/null)
    [ -n "$h" ] && hwm=$h
    if [ -e gig.sstable ]; then
      s=$(stat -c %s gig.sstable 2>/dev/null)
      [ -n "$s" ] && echo "$s" >>gig.sizes
    fi
    sleep 0.05
  done
  wait "$unmounter"
  rc=$?
  reap gig
  check "1 GiB: sstfs --unmount exits 0" status_is 0
  check "1 GiB: peak memory of the daemon < 64 MiB (after the copy ${hwm_copy} kB, at the end ${hwm} kB)" \
    eval '[ "$hwm" -lt 65536 ]'
  final_size=$(stat -c %s gig.sstable 2>/dev/null || echo 0)
  check "1 GiB: OUT was never seen partly written during the commit" eval \
    '[ ! -s gig.sizes ] || [ -z "$(grep -vx "$final_size" gig.sizes)" ]'
  "$SST" get gig.sstable gig.src 2>err | cmp -s - gig.src
  pipe="${PIPESTATUS[*]}"
  check "1 GiB: the table's value is the file (sst get | cmp)" [ "$pipe" = "0 0" ]
fi
rm -f gig.src gig.sstable

stage_finish
