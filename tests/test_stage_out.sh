#!/usr/bin/env bash
# test_stage_out.sh BINDIR — a commit never replaces an OUT it did not
# write, and two staging areas never write one OUT.
#
# What it shows:
#  - a table that appears at OUT while the mount runs is not replaced: the
#    commit fails (sstfs --unmount exits 1 and says why), OUT and the
#    staging area stay as they are; a resume without -o overwrite is
#    refused, and with it commits;
#  - a second staging mount of the same OUT, with another -o stagedir=, is
#    refused while the first runs, and OUT.lock goes with the first;
#  - after a sync of the mount (which writes OUT), the unmount replaces
#    that OUT; a table put there after the sync is not replaced;
#  - -o overwrite replaces whatever is there.
# shellcheck disable=SC2016
set -u
# shellcheck source=tests/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
BIN=$(cd "${1:?usage: test_stage_out.sh BINDIR}" && pwd)
SST=$BIN/sst
SSTFS=$BIN/sstfs
require_fuse

passed=0 failed=0 skipped=0 rc=0
work_dir stage-out
mkdir a b

# ---- a table appears at OUT during the mount
run "$SSTFS" --stage race.sstable a -o nouring
check "staging mount of race.sstable" status_is 0
own_area race.sstable.stage
echo staged >a/s
printf 'important,data\n' | "$SST" build -o race.sstable 2>/dev/null
cp race.sstable race.before
run "$SSTFS" --unmount a
check "OUT appeared during the mount: the commit fails and says why" eval \
  'status_is 1 && err_has "race.sstable appeared" && err_has "overwrite"'
check "OUT appeared during the mount: OUT is untouched, the area kept" eval \
  'cmp -s race.sstable race.before && [ -f race.sstable.stage/tree/s ] &&
   grep -q "appeared" race.sstable.stage/error'
run "$SSTFS" --stage race.sstable a -o nouring,resume
check "a resume without -o overwrite is refused, OUT untouched" eval \
  'status_is 1 && err_has "overwrite" && ! is_mounted "$WORK/a" &&
   cmp -s race.sstable race.before'
run "$SSTFS" --stage race.sstable a -o nouring,resume,overwrite
check "a resume with -o overwrite mounts it" eval \
  'status_is 0 && [ "$(cat a/s)" = staged ]'
own_area race.sstable.stage

# ---- a second staging area for the same OUT
run "$SSTFS" --stage race.sstable b -o nouring,stagedir="$WORK/other"
check "a second staging mount of OUT (another stagedir) is refused" eval \
  'status_is 1 && err_has "being staged by another sstfs" &&
   err_has "race.sstable.stage" && ! is_mounted "$WORK/b" && [ ! -e other ]'
run "$SSTFS" --unmount a
check "the first commits (-o overwrite)" eval \
  'status_is 0 && [ "$("$SST" get race.sstable s)" = staged ] &&
   [ ! -e race.sstable.stage ]'
check "OUT.lock goes with the daemon" eval '[ ! -e race.sstable.lock ]'

# ---- sync writes OUT; the unmount may replace that, not another
run "$SSTFS" --stage synced.sstable a -o nouring
own_area synced.sstable.stage
echo one >a/one
sync a
check "sync of the mount writes OUT" eval \
  '[ "$("$SST" get synced.sstable one 2>/dev/null)" = one ]'
echo two >a/two
run "$SSTFS" --unmount a
check "the unmount replaces what the sync wrote" eval \
  'status_is 0 && [ "$("$SST" get synced.sstable two)" = two ]'

run "$SSTFS" --stage synced2.sstable a -o nouring
own_area synced2.sstable.stage
echo one >a/one
sync a
printf 'other,table\n' | "$SST" build -o synced2.sstable 2>/dev/null
cp synced2.sstable synced2.before
echo two >a/two
run "$SSTFS" --unmount a
check "a table put at OUT after a sync is not replaced" eval \
  'status_is 1 && err_has "appeared" && cmp -s synced2.sstable synced2.before'
rm -rf synced2.sstable.stage

# ---- -o overwrite from the start
printf 'old,table\n' | "$SST" build -o over.sstable 2>/dev/null
run "$SSTFS" --stage over.sstable a -o nouring,overwrite
own_area over.sstable.stage
echo new >a/new
printf 'newer,table\n' | "$SST" build -o over.sstable 2>/dev/null
run "$SSTFS" --unmount a
check "-o overwrite replaces whatever is at OUT" eval \
  'status_is 0 && [ "$("$SST" get over.sstable new)" = new ] &&
   ! "$SST" get over.sstable newer >/dev/null 2>&1'

summary
