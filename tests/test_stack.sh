#!/usr/bin/env bash
# test_stack.sh BINDIR — tables stacked: a base table and two delta tables
# (made by staging mounts with --base ... -o delta) mounted together show
# exactly the tree that results from applying the changes; `sst merge` of
# the stack, mounted alone, shows the same tree; a directory in one table
# and a file of the same name in another follow the one-table rule.
set -u
# shellcheck source=tests/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bin=$(cd "$1" && pwd)
sst=$bin/sst
sstfs=$bin/sstfs

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

pass=0 fail=0
ok() { echo "ok - $1"; pass=$((pass + 1)); }
not_ok() { echo "not ok - $1"; fail=$((fail + 1)); }
check() { # name command...
  local name=$1
  shift
  if "$@" >"$tmp/out" 2>&1; then ok "$name"; else
    not_ok "$name"
    sed 's/^/  /' "$tmp/out" | head -20
  fi
}

mnt() { # dir: a fresh mount point, remembered for cleanup
  mkdir -p "$1"
  mounts+=("$1")
}

cd "$tmp" || exit 1

# The base tree, and the expected tree that the changes lead to.
mkdir -p src/docs/old src/data src/keep
for i in $(seq 1 40); do echo "data $i" >"src/data/f$i"; done
echo "readme" >src/README
echo "old 1" >src/docs/old/a
echo "old 2" >src/docs/old/b
echo "keep" >src/keep/k
head -c 300000 /dev/urandom >src/data/blob
check "pack the base" "$sst" pack -q src base.sstable
cp -a src expect

# Delta 1: change, add, delete a file and a whole directory.
mnt m1
check "stage delta 1" "$sstfs" --stage d1.sstable m1 --base base.sstable -o delta
echo "changed" >m1/README
echo "changed" >expect/README
echo "new" >m1/data/new
echo "new" >expect/data/new
rm m1/data/f3 && rm expect/data/f3
rm -r m1/docs/old && rm -r expect/docs/old
printf 'more' >>m1/data/f5 && printf 'more' >>expect/data/f5
check "commit delta 1" "$sstfs" --unmount m1

# Delta 2, over base + delta 1: rename a directory, re-create a deleted
# name, delete a file that delta 1 added.
mnt m2
check "stage delta 2" "$sstfs" --stage d2.sstable m2 --base base.sstable \
  --base d1.sstable -o delta
mv m2/keep m2/kept && mv expect/keep expect/kept
mkdir -p m2/docs/old expect/docs/old
echo "again" >m2/docs/old/a && echo "again" >expect/docs/old/a
rm m2/data/new && rm expect/data/new
check "commit delta 2" "$sstfs" --unmount m2

check "delta 1 is small (only changes)" \
  bash -c "[ \$('$sst' info d1.sstable | sed -n 's/^keys: //p') -lt 10 ]"
check "delta 2 has tombstones" \
  bash -c "[ \$('$sst' info d2.sstable | sed -n 's/^tombstones: //p') -gt 0 ]"

mnt stack
check "mount the stack" "$sstfs" base.sstable d1.sstable d2.sstable stack
check "the stack shows the changed tree" diff -r expect stack
check "stat of a file from delta 1" \
  bash -c "[ \$(stat -c %s stack/README) -eq 8 ]"
fusermount3 -u stack

check "merge the stack" "$sst" merge -q -o merged.sstable base.sstable \
  d1.sstable d2.sstable
check "merge --drop-tombstones" "$sst" merge -q --drop-tombstones \
  -o flat.sstable base.sstable d1.sstable d2.sstable
check "merged table verifies" "$sst" verify merged.sstable flat.sstable
mnt single
check "mount the merged table" "$sstfs" flat.sstable single
check "merged table shows the same tree" diff -r expect single
fusermount3 -u single
check "merging the stack keeps tombstones" \
  bash -c "[ \$('$sst' info merged.sstable | sed -n 's/^tombstones: //p') -gt 0 ]"
check "dropping them leaves none" \
  bash -c "[ \$('$sst' info flat.sstable | sed -n 's/^tombstones: //p') -eq 0 ]"

# A file in one table, a directory of the same name in another.
printf 'a,file\n' | "$sst" build -o t1.sstable 2>/dev/null
printf 'a/b,inside\n' | "$sst" build -o t2.sstable 2>/dev/null
mnt mix
check "mount a file/directory clash" "$sstfs" t1.sstable t2.sstable mix
check "the file takes the %! name" bash -c "[ \"\$(cat 'mix/%!a')\" = file ]"
check "the directory keeps its name" bash -c "[ \"\$(cat mix/a/b)\" = inside ]"
fusermount3 -u mix

# Staging over a stack without delta writes the whole merged tree.
mnt full
check "stage over the stack, not a delta" "$sstfs" --stage full.sstable full \
  --base base.sstable --base d1.sstable --base d2.sstable
check "commit the full table" "$sstfs" --unmount full
"$sst" dump --escape full.sstable >full.dump 2>&1
"$sst" dump --escape flat.sstable >flat.dump 2>&1
check "it equals the merge" bash -c "[ -s flat.dump ] && cmp full.dump flat.dump"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
