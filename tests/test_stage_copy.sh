#!/usr/bin/env bash
# test_stage_copy.sh BINDIR [dev|uring] — a read-only mount copied into a
# staging mount with cp -a gives back the table.
#
# What it shows:
#  - for a table of every escape case of docs/PATHS.md and for a packed
#    tree of awkward names: cp -a from its read-only mount into a staging
#    mount, diff -r of the two mounts, then sstfs --unmount gives a table
#    that verifies; for the packed tree (which keeps its metadata) the
#    dump and the file are identical to the first; for the escape table
#    (plain keys, no metadata) the dump is, but for the directory entries
#    the copy adds; keys that a directory's entry would be ("x/", "/lead")
#    make a commit fail, saying why;
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
# A table with metadata gives every directory an entry, "DIR/" (the
# root's "/"): a plain key ending in "/" (the file x/%=) or starting with
# one (under the directory %=) would be that same key. Those two are left
# out of the copy, and a commit of them fails, saying why.
escape_records all.esc
grep -v -e '^/lead,' -e '^x/,' all.esc >escape.esc
run "$SST" build --escape -o escape.sstable escape.esc
check "build the escape table" status_is 0
if stage_fg clash "$WORK/clash.sstable"; then
  mkdir "$MNT/x" && echo trailing >"$MNT/x/%="
  want[clash]=1
  allow[clash]="a directory's entry and a file's key"
  commit clash
  check "a directory x and a file x/%= (both the key x/): the commit fails, saying why" \
    eval '[ "$rc" = 1 ] && err_has "a directory'"'"'s entry and a file'"'"'s key" &&
          [ ! -e clash.sstable ]'
fi

for t in escape tree; do
  ro_fg "ro-$t" "$t.sstable" || continue
  ro=$MNT
  if ! stage_fg "rt-$t" "$WORK/rt-$t.sstable"; then
    unmount_fg "ro-$t"
    continue
  fi
  # cp -a sets system.posix_acl_access on every file and directory (it
  # preserves modes that way); the mount keeps user.* attributes only and
  # refuses it (ENOTSUP) without a word, which cp -a takes quietly.
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
  if [ "$t" = escape ]; then
    # The staging mount writes a directory entry ("DIR/", empty) for each
    # directory; none of the escape records is one.
    "$SST" dump --escape "rt-$t.sstable" | sed '/\/,$/d' >"rt-$t.dump" 2>>err
    check "$t: sst dump --escape of the copy is byte-identical, but for its directory entries" \
      cmp -s "$t.dump" "rt-$t.dump"
  else
    "$SST" dump --escape "rt-$t.sstable" >"rt-$t.dump" 2>>err
    check "$t: sst dump --escape of the copy is byte-identical" \
      cmp -s "$t.dump" "rt-$t.dump"
    run cmp "$t.sstable" "rt-$t.sstable"
    check "$t: the table files are identical (cmp)" status_is 0
  fi
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
