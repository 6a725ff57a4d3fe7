#!/usr/bin/env bash
# test_stage_enospc.sh BINDIR [dev|uring] — a full staging area fails the
# writer, and loses nothing staged before.
#
# What it shows, with the staging area in a 2 MiB tmpfs (unmounted at
# exit, after the daemon):
#  - writing past the area's size fails with ENOSPC;
#  - the files written before read back intact through the mount;
#  - the partial file can be deleted, and once space is freed writes work
#    again;
#  - the committed table holds the intact files and the later one.
# The modes, and the check of each daemon's log: tests/stage_lib.sh.
# shellcheck disable=SC2016
set -u
# shellcheck source=tests/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/stage_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/stage_lib.sh"
stage_init enospc "$@"

mkdir small
if ! mount -t tmpfs -o size=2m tmpfs small 2>err; then
  echo "SKIP: cannot mount a tmpfs for a 2 MiB staging area: $(head -n 1 err)"
  exit 77
fi
if stage_fg nospc "$WORK/nospc.sstable" -o "stagedir=$WORK/small/area"; then
  head -c 300000 /dev/urandom >s1
  head -c 500000 /dev/urandom >s2
  cp s1 s2 "$MNT/"
  run sh -c 'head -c 4194304 /dev/urandom >"$1"' sh "$MNT/big"
  check "ENOSPC: writing past the area's size fails: No space left on device" \
    eval '[ "$rc" -ne 0 ] && err_has "No space left on device"'
  check "ENOSPC: the files written before are intact through the mount" \
    eval 'cmp -s s1 "$MNT/s1" && cmp -s s2 "$MNT/s2"'
  run rm "$MNT/big"
  check "ENOSPC: the partial file can be deleted" status_is 0
  { echo after >"$MNT/after"; } 2>err
  check "ENOSPC: once space is freed, writes work again" eval \
    '[ "$(cat "$MNT/after")" = after ]'
  commit nospc
  check "ENOSPC: sstfs --unmount exits 0" status_is 0
  check "ENOSPC: the table holds the intact files" eval \
    '"$SST" get nospc.sstable s1 | cmp -s - s1 &&
     "$SST" get nospc.sstable s2 | cmp -s - s2 &&
     [ "$(keys nospc.sstable | tr "\n" " ")" = "after s1 s2 " ]'
fi

stage_finish
