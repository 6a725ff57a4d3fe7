#!/usr/bin/env bash
# test_v1.sh BINDIR — a version 1 table (tests/data/v1.sstable, written by
# the version 1 writer from tests/data/v1.csv) stays usable by every
# command that reads tables: info, verify, get, scan, dump, merge
# (alone and with a version 2 table) and the read-only mount (alone and
# stacked under a version 2 table).
set -u
# shellcheck source=tests/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bin=$(cd "$1" && pwd)
sst=$bin/sst
sstfs=$bin/sstfs
data=$(cd "$(dirname "${BASH_SOURCE[0]}")/data" && pwd)
v1=$data/v1.sstable

require_fuse

tmp=$(mktemp -d)
mounts=()
cleanup() {
  for m in "${mounts[@]}"; do
    if mountpoint -q "$m" 2>/dev/null; then
      fusermount3 -u "$m" 2>/dev/null || fusermount3 -uz "$m"
    fi
  done
  rm -rf "$tmp"
}
trap cleanup EXIT
cd "$tmp" || exit 1
passed=0 failed=0 skipped=0 rc=0

run "$sst" info "$v1"
check "info says version 1" eval 'status_is 0 && out_has "format version: 1" &&
  out_has "keys: 14" && out_has "key blocks: 4"'
run "$sst" verify "$v1"
check "verify" eval 'status_is 0 && out_has "ok (14 keys"'
run "$sst" get "$v1" conf/app.json
check "get" eval 'status_is 0 && out_is "{\"port\": 8080}"'
run "$sst" get "$v1" missing
check "get of a missing key" status_is 1
run "$sst" dump "$v1"
check "dump gives back the records" eval 'status_is 0 && cmp -s out "$data/v1.csv"'
run "$sst" scan "$v1" --prefix b/d/
check "scan --prefix" eval 'status_is 0 && out_is "$(printf "b/d/e,deep value\nb/d/f,")"'

# merge: alone, the same records in a version 2 table; with a version 2
# table on top, its records win.
run "$sst" merge -o m.sstable "$v1"
check "merge alone writes version 2" eval 'status_is 0 &&
  "$sst" info m.sstable | grep -qx "format version: 2" &&
  "$sst" dump m.sstable | cmp -s - "$data/v1.csv"'
printf 'a,new alpha\nnew/key,fresh\n' | "$sst" build -o top.sstable - 2>/dev/null
run "$sst" merge -o m2.sstable "$v1" top.sstable
check "merge with a version 2 table on top" eval 'status_is 0 &&
  [ "$("$sst" get m2.sstable a)" = "new alpha" ] &&
  [ "$("$sst" get m2.sstable new/key)" = fresh ] &&
  [ "$("$sst" get m2.sstable z/last)" = "the last key" ]'

# The mount: every record is a file with its value.
mkdir mnt
mounts+=("$tmp/mnt")
run "$sstfs" "$v1" mnt
check "mount" status_is 0
all=1
while IFS= read -r line; do
  key=${line%%,*} value=${line#*,}
  [ "$(cat "mnt/$key" 2>/dev/null)" = "$value" ] || { all=0; echo "# $key"; }
done <"$data/v1.csv"
check "every record reads back through the mount" [ "$all" = 1 ]
run find mnt -type f
check "the mount holds the records and nothing else" eval '[ "$(wc -l <out)" = 14 ]'
run stat -c %a mnt/b/c
check "files look as before (0444)" out_is 444
fusermount3 -u mnt

run "$sstfs" "$v1" top.sstable mnt
check "mount stacked under a version 2 table" eval 'status_is 0 &&
  [ "$(cat mnt/a)" = "new alpha" ] && [ "$(cat mnt/new/key)" = fresh ] &&
  [ "$(cat mnt/conf/db.json)" = "{\"host\": \"localhost\"}" ]'
fusermount3 -u mnt

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
