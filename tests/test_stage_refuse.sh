#!/usr/bin/env bash
# test_stage_refuse.sh BINDIR [dev|uring] — a staging mount is refused
# where it would lose or mix up data.
#
# What it shows:
#  - an existing OUT is refused without -o overwrite (nothing mounted, no
#    area made, OUT as it was), and replaced with it;
#  - an area staged for another OUT, or with another --base, is refused
#    even with -o resume, and left as it was;
#  - -o resume of an area a live daemon is using is refused; that daemon
#    then commits its file over the base.
# The modes, and the check of each daemon's log: tests/stage_lib.sh.
# shellcheck disable=SC2016
set -u
# shellcheck source=tests/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/stage_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/stage_lib.sh"
stage_init refuse "$@"

escape_records escape.esc
run "$SST" build --escape -o escape.sstable escape.esc
check "build the escape table" status_is 0

cp escape.sstable exist.sstable
MNT=$WORK/mnt/refused
mkdir -p "$MNT"
run "$SSTFS" --stage exist.sstable "$MNT"
check "an existing OUT is refused without -o overwrite" eval \
  '[ "$rc" -ne 0 ] && err_has "overwrite" && ! is_mounted "$MNT" &&
   [ ! -e exist.sstable.stage ] && cmp -s exist.sstable escape.sstable'
is_mounted "$MNT" && fusermount3 -u "$MNT"
if stage_fg overwrite "$WORK/exist.sstable" -o overwrite; then
  echo replaced >"$MNT/only"
  commit overwrite
  keys exist.sstable >out 2>>err
  check "-o overwrite: OUT is replaced by the new table" eval \
    'out_is only && [ "$("$SST" get exist.sstable only)" = replaced ]'
fi

if stage_fg holder "$WORK/A.sstable" --base "$WORK/escape.sstable" \
  -o "stagedir=$WORK/areaX"; then
  echo held >"$MNT/held"
  cp areaX/target target.before
  MNT=$WORK/mnt/refused
  run "$SSTFS" --stage "$WORK/B.sstable" "$MNT" -o "stagedir=$WORK/areaX,resume"
  check "an area staged for another OUT is refused (even with -o resume)" eval \
    '[ "$rc" -ne 0 ] && err_has "for something else" && ! is_mounted "$MNT" &&
     [ ! -e B.sstable ]'
  is_mounted "$MNT" && fusermount3 -u "$MNT"
  run "$SSTFS" --stage "$WORK/A.sstable" "$MNT" -o "stagedir=$WORK/areaX,resume"
  check "an area staged with another --base is refused" eval \
    '[ "$rc" -ne 0 ] && err_has "for something else" && ! is_mounted "$MNT"'
  is_mounted "$MNT" && fusermount3 -u "$MNT"
  check "the refused commands leave the area as it was" eval \
    'cmp -s areaX/target target.before && [ -f areaX/tree/held ]'

  # The same command again, while the holder still serves the area: a
  # second daemon on one area would commit it and remove it under the
  # first. Run in the foreground so that it can be stopped without a
  # commit if it does mount.
  holder_pid=$(cat areaX/pid 2>/dev/null)
  MNT2=$WORK/mnt/second
  mkdir -p "$MNT2"
  "${fg_prefix[@]}" "$SSTFS" -f --stage "$WORK/A.sstable" "$MNT2" \
    --base "$WORK/escape.sstable" -o "stagedir=$WORK/areaX,resume" \
    2>log/second-attempt </dev/null &
  second=$!
  own_helper "$second"
  for ((i = 0; i < 40; i++)); do
    is_mounted "$MNT2" && break
    alive "$second" || break
    sleep 0.05
  done
  second_mounted=0
  is_mounted "$MNT2" && second_mounted=1
  cp log/second-attempt err
  rc=-
  check "-o resume of an area a live daemon is using is refused" \
    [ "$second_mounted" = 0 ]
  if alive "$second"; then
    kill -9 "$second"
    is_mounted "$MNT2" && fusermount3 -uz "$MNT2"
    # the second daemon wrote its pid over the holder's: put it back
    [ -n "$holder_pid" ] && echo "$holder_pid" >areaX/pid
  fi
  wait "$second" 2>/dev/null
  commit holder
  check "the holder commits: its file and the base's keys" eval \
    'status_is 0 && [ "$("$SST" get A.sstable held)" = held ] &&
     [ "$(keys A.sstable | wc -l)" -eq 15 ]'
fi

stage_finish
