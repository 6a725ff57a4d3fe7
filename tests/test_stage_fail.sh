#!/usr/bin/env bash
# test_stage_fail.sh BINDIR [dev|uring] — a commit that fails keeps the
# staging area, says why, and can be resumed.
#
# What it shows:
#  - a commit that cannot write OUT (its directory removed): sstfs
#    --unmount and the foreground daemon exit 1, the message names OUT,
#    the mount is gone, the area is kept with the reason in its error file
#    and the staged bytes;
#  - a new start without -o resume does not take the area up; with it (in
#    the background mode) the mount shows the staged files again, and
#    sstfs --unmount then writes the table with them and removes the area.
# The modes, and the check of each daemon's log: tests/stage_lib.sh.
# shellcheck disable=SC2016
set -u
# shellcheck source=tests/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/stage_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/stage_lib.sh"
stage_init fail "$@"

mkdir outdir
OUT=$WORK/outdir/x.sstable
AREA=$WORK/area
if stage_fg fail "$OUT" -o "stagedir=$AREA"; then
  want[fail]=1
  allow[fail]='commit of .* failed'
  head -c 200000 /dev/urandom >fail.bin
  cp fail.bin "$MNT/fail.bin"
  mkdir "$MNT/sub" && echo kept >"$MNT/sub/kept"
  rm -rf outdir # the commit cannot write OUT now
  commit fail
  check "a failed commit: sstfs --unmount exits 1 and says why" eval \
    'status_is 1 && err_has "not written" && err_has "outdir/x.sstable"'
  check "a failed commit: the foreground daemon exits 1" \
    [ "${status[fail]}" = 1 ]
  check "a failed commit: the mount is gone" eval '! is_mounted "$MNT"'
  check "a failed commit: the area is kept, with the reason in error" eval \
    '[ -s "$AREA/error" ] && grep -q "outdir/x.sstable" "$AREA/error" &&
     cmp -s fail.bin "$AREA/tree/fail.bin"'
  mkdir outdir
  run "$SSTFS" --stage "$OUT" "$MNT" -o "stagedir=$AREA"
  check "a failed commit: without -o resume the area is not taken up" eval \
    '[ "$rc" -ne 0 ] && err_has "resume" && ! is_mounted "$MNT"'
  is_mounted "$MNT" && fusermount3 -u "$MNT"
  # Resumed in the background mode this time.
  run "$SSTFS" --stage "$OUT" "$MNT" -o "stagedir=$AREA,resume"
  check "a failed commit: -o resume mounts it again (background mode)" eval \
    'status_is 0 && is_mounted "$MNT"'
  own_area "$AREA"
  check "a failed commit: the resumed mount shows the staged files" eval \
    'cmp -s fail.bin "$MNT/fail.bin" && [ "$(cat "$MNT/sub/kept")" = kept ] &&
     [ ! -e "$AREA/error" ]'
  run "$SSTFS" --unmount "$MNT"
  check "a failed commit: after the resume, sstfs --unmount exits 0" eval \
    'status_is 0 && [ ! -e "$AREA" ]'
  "$SST" get "$OUT" fail.bin >got.bin 2>err
  check "a failed commit: then the table holds the files" eval \
    'cmp -s got.bin fail.bin && [ "$(keys "$OUT" | tr "\n" " ")" = "fail.bin sub/kept " ]'
fi

stage_finish
