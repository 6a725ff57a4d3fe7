#!/usr/bin/env bash
# test_stage_copy.sh BINDIR [dev|uring] — a read-only mount copied into a
# staging mount with cp -a gives back a byte-identical table.
#
# What it shows:
#  - for a table of every escape case of docs/PATHS.md and for a packed
#    tree of awkward names: cp -a from its read-only mount into a staging
#    mount, diff -r of the two mounts, then sstfs --unmount gives a table
#    whose dump and whose file are identical to the first, and that
#    verifies;
#  - with -o nouring no request went through io_uring; in the uring mode
#    at least 5 a file did.
# The modes, and the check of each daemon's log: tests/stage_lib.sh.
# shellcheck disable=SC2016
set -u
# shellcheck source=tests/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/stage_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/stage_lib.sh"
stage_init copy "$@"

awkward_tree src
run "$SST" pack -q src tree.sstable
check "pack the awkward tree" eval 'status_is 0 && [ -s tree.sstable ]'
escape_records escape.esc
run "$SST" build --escape -o escape.sstable escape.esc
check "build the escape table" status_is 0

for t in escape tree; do
  ro_fg "ro-$t" "$t.sstable" || continue
  ro=$MNT
  if ! stage_fg "rt-$t" "$WORK/rt-$t.sstable"; then
    unmount_fg "ro-$t"
    continue
  fi
  # cp -a sets system.posix_acl_access on every file and directory (it
  # preserves modes that way); the daemon refuses it and logs a line (the
  # name "new<LF>line" is logged as it is, so its line comes in two).
  allow[rt-$t]='extended attribute|^sstfs: /new$'
  nfiles=$(find "$ro" -type f | wc -l)
  run cp -a "$ro/." "$MNT/"
  check "$t: cp -a from the read-only mount into a staging mount" status_is 0
  run diff -r "$ro" "$MNT"
  check "$t: the staging mount shows what was copied (diff -r)" eval \
    'status_is 0 && [ ! -s out ]'
  unmount_fg "ro-$t"
  commit "rt-$t"
  check "$t: sstfs --unmount exits 0; the daemon exits 0" eval \
    'status_is 0 && [ "${status[rt-$t]}" = 0 ]'
  check "$t: the table is there and its staging area is gone" eval \
    '[ -f "rt-$t.sstable" ] && [ ! -e "rt-$t.sstable.stage" ]'
  "$SST" dump --escape "$t.sstable" >"$t.dump" 2>err
  "$SST" dump --escape "rt-$t.sstable" >"rt-$t.dump" 2>>err
  check "$t: sst dump --escape of the copy is byte-identical" \
    cmp -s "$t.dump" "rt-$t.dump"
  run cmp "$t.sstable" "rt-$t.sstable"
  check "$t: the table files are identical (cmp)" status_is 0
  run "$SST" verify "rt-$t.sstable"
  check "$t: sst verify of the copy" status_is 0
  served=$(grep "$uring_count" "log/rt-$t" | tr -dc 0-9)
  if [ "$MODE" = uring ]; then
    # cp -a makes at least 5 requests a file (lookup, create, write, 2
    # setattr) and its release.
    check "$t: requests went through io_uring (${served:-none} for $nfiles files)" \
      eval '[ "${served:-0}" -ge $((5 * nfiles)) ]'
  else
    check "$t: -o nouring: no request went through io_uring" [ -z "$served" ]
  fi
done

stage_finish
