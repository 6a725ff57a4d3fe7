#!/usr/bin/env bash
# test_stage_sync.sh BINDIR [dev|uring] — sync of a staging mount's root
# commits while the mount goes on.
#
# What it shows:
#  - sync of the root exits 0 and writes OUT from what is staged (a file
#    held open included) while the mount stays; writes, unlinks and the
#    open file go on after it; sync of a subdirectory writes no table;
#  - a sync whose commit cannot write OUT fails with EIO, says why in the
#    log, and the mount goes on; sstfs --unmount then writes the final
#    tree;
#  - five syncs of the root during a cp -a all exit 0, and so does cp;
#    the final table is the one sst pack makes of the tree (cmp), its
#    metadata included.
# The modes, and the check of each daemon's log: tests/stage_lib.sh.
# shellcheck disable=SC2016
set -u
# shellcheck source=tests/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/stage_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/stage_lib.sh"
stage_init sync "$@"

mkdir outdir
OUT=$WORK/outdir/live.sstable
if stage_fg live "$OUT" -o "stagedir=$WORK/area"; then
  allow[live]='commit of .* on sync of the mount failed: .*; the mount goes on'
  echo one >"$MNT/a" && mkdir "$MNT/d" && echo two >"$MNT/d/b"
  exec {held}>"$MNT/held"
  echo first >&"$held"
  run sync "$MNT"
  check "sync of the root: exits 0 and writes OUT while mounted" eval \
    'status_is 0 && is_mounted "$MNT" &&
     [ "$(keys "$OUT" | tr "\n" " ")" = "a d/b held " ] &&
     [ "$("$SST" get "$OUT" held)" = first ] &&
     [ "$("$SST" get "$OUT" d/b)" = two ]'
  echo three >"$MNT/c" && rm "$MNT/a" && echo second >&"$held"
  check "sync of the root: the mount goes on (write, unlink, a file held open)" \
    eval '[ "$(cat "$MNT/c")" = three ] && [ ! -e "$MNT/a" ] &&
          [ "$(cat "$MNT/held")" = "$(printf "first\nsecond")" ]'
  run sync "$MNT/d"
  check "sync of a subdirectory: exits 0, OUT as it was" eval \
    'status_is 0 && [ "$(keys "$OUT" | tr "\n" " ")" = "a d/b held " ]'
  rm -rf outdir # the next commit cannot write OUT
  run sync "$MNT"
  check "sync of the root, the commit failing: sync fails (EIO), the mount goes on" \
    eval '[ "$rc" -ne 0 ] && err_has "Input/output error" && is_mounted "$MNT" &&
          [ "$(cat "$MNT/c")" = three ] && grep -q "on sync of the mount failed: .*outdir" log/live'
  mkdir outdir
  exec {held}>&-
  commit live
  check "sync of the root, then sstfs --unmount: OUT holds the final tree" \
    eval 'status_is 0 && [ "${status[live]}" = 0 ] &&
          [ "$(keys "$OUT" | tr "\n" " ")" = "c d/b held " ] &&
          [ "$("$SST" get "$OUT" held)" = "$(printf "first\nsecond")" ]'
fi

# Commits while a copy goes on: each waits for the operations under way
# and holds the later ones back until OUT is written.
awkward_tree src
run "$SST" pack -q src tree.sstable
check "pack the awkward tree" eval 'status_is 0 && [ -s tree.sstable ]'
if stage_fg livecp "$WORK/livecp.sstable"; then
  cp -a src/. "$MNT/" &
  cp_pid=$!
  syncs=0
  for _ in 1 2 3 4 5; do
    sync "$MNT" && syncs=$((syncs + 1))
  done
  wait "$cp_pid"
  rc=$?
  check "five syncs of the root during a cp -a: all exit 0, and so does cp" \
    eval '[ "$syncs" = 5 ] && status_is 0'
  commit livecp
  check "then sstfs --unmount: the table is the packed tree's (cmp)" \
    eval 'status_is 0 && cmp -s livecp.sstable tree.sstable'
fi

stage_finish
