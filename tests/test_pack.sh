#!/usr/bin/env bash
# test_pack.sh — end-to-end tests of sst pack and sst unpack of plain
# key/value tables: names, escapes, depth, errors. Every pack here is
# --no-metadata, the table sst pack wrote before tables held metadata;
# test_pack_meta.sh tests the tree with its metadata, pack's default.
# A pack compared byte for byte with a table from sst build also takes
# --compress none --no-dedup: sst build stores values as they are.
#
# Usage: bash tests/test_pack.sh path/to/sst
#
# Prints "ok - NAME" or "not ok - NAME" per check (with the command's exit
# status and stderr after a failure), then "N passed, M failed". A check
# that cannot run here prints "ok - NAME # SKIP why" and is not counted.
# Exits non-zero if any check failed.
#
# Checks written `check NAME eval 'EXPR'` expand EXPR when the check runs,
# after the command under test: the single quotes are intended.
# shellcheck disable=SC2016,SC2034
set -u
# shellcheck source=tests/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SST=${1:?usage: test_pack.sh path/to/sst}
case $SST in /*) ;; *) SST=$PWD/$SST ;; esac

WORK=$(mktemp -d "${TMPDIR:-/tmp}/sst-pack.XXXXXX") || exit 1
trap 'chmod -R u+rwx "$WORK" 2>/dev/null; rm -rf "$WORK"' EXIT
cd "$WORK" || exit 1

passed=0
failed=0
rc=0

skip() { echo "ok - $1 # SKIP $2"; }

err_empty() { [ ! -s err ]; }
same() { cmp -s "$1" "$2"; }

# Relative paths of the regular files under $1, bytewise sorted.
files_of() { (cd "$1" && find . -type f | sed 's|^\./||' | LC_ALL=C sort); }

# Flips every bit of the byte at offset $2 of file $1.
flip_byte() {
  local byte
  byte=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
  # shellcheck disable=SC2059
  printf "$(printf '\\%03o' $((byte ^ 255)))" |
    dd of="$1" bs=1 seek="$2" count=1 conv=notrunc 2>/dev/null
}

# A string of $2 copies of the character $1.
repeat() { printf "%${2}s" '' | tr ' ' "$1"; }

# ---- help and usage ------------------------------------------------------

for cmd in pack unpack; do
  run "$SST" "$cmd" --help
  check "$cmd --help" eval \
    'status_is 0 && out_has SYNOPSIS && out_has "EXIT STATUS" && out_has EXAMPLES'
done
run "$SST" --help
check "sst --help lists pack and unpack" eval \
  'status_is 0 && out_has "    pack " && out_has "    unpack "'
run "$SST" pack --no-metadata onlyone
check "pack with one argument exits 2" eval 'status_is 2 && err_has Usage'
run "$SST" unpack a b c
check "unpack with three arguments exits 2" status_is 2
run "$SST" pack --no-metadata --frobnicate a b
check "pack: unknown option exits 2" eval 'status_is 2 && err_has "--frobnicate"'
run "$SST" pack --no-metadata --block-keys 0 a b
check "pack: bad --block-keys exits 2" status_is 2

# ---- a tree with awkward names -------------------------------------------

long=$(repeat n 255)
deep=$(printf 'd%02d/' $(seq 1 30))
mkdir -p src/"with space" src/"$deep" src/sub/empty-dir src/日本
printf 'spaces\n' >src/"with space"/"file name.txt"
printf 'accent' >src/é
printf 'nihon' >src/日本/語
printf 'percent 41' >src/%41
printf 'not a slash' >src/a%2Fb
printf 'hundred' >src/100%
printf 'hidden' >src/.hidden
printf 'dotdot' >src/..x
printf 'long name' >src/"$long"
printf 'deep' >src/"$deep"leaf
: >src/empty
: >src/sub/also-empty
head -c 3145728 /dev/urandom >src/big
printf 'a-x' >src/sub/a-x
mkdir -p src/sub/a
printf 'under a' >src/sub/a/b

run "$SST" pack --no-metadata src t1.sstable
check "pack an awkward tree" eval \
  'status_is 0 && [ -f t1.sstable ] && err_has "15 files packed" && err_has "-> t1.sstable"'
check "pack leaves no temporary file" eval \
  '[ "$(ls | grep -c tmp)" -eq 0 ]'

"$SST" scan --keys-only t1.sstable >keys 2>err
files_of src >files
check "the keys are exactly the relative paths" same keys files

run "$SST" get t1.sstable "with space/file name.txt"
check "get a key with spaces" eval 'status_is 0 && out_is spaces'
run "$SST" get t1.sstable é 日本/語 %41 a%2Fb 100% .hidden ..x
check "get UTF-8, percent and dot keys" eval \
  'status_is 0 && out_is "accentnihonpercent 41not a slashhundredhiddendotdot"'
run "$SST" get t1.sstable "$long" "${deep}leaf"
check "get the 255-byte name and the 30-deep file" eval \
  'status_is 0 && out_is "long namedeep"'
"$SST" get t1.sstable big >big.out 2>err
rc=$?
check "the 3 MiB file is the value" eval 'status_is 0 && same big.out src/big'
run "$SST" get t1.sstable empty sub/also-empty
check "empty files are empty values" eval 'status_is 0 && out_is ""'
run "$SST" scan --keys-only t1.sstable --prefix sub/
check "empty directories are not kept" \
  out_is "$(printf 'sub/a-x\nsub/a/b\nsub/also-empty')"

run "$SST" unpack t1.sstable out1
check "unpack" eval 'status_is 0 && err_has "15 files written" && err_has "-> out1"'
run diff -r src out1
check "unpacked tree equals the source (but for the empty directory)" eval \
  'status_is 1 && out_is "Only in src/sub: empty-dir"'
rmdir src/sub/empty-dir
run diff -r src out1
check "... and equals it once that is gone" status_is 0

run "$SST" pack --no-metadata out1 t2.sstable
check "pack the unpacked tree: a byte-identical table" eval \
  'status_is 0 && same t1.sstable t2.sstable'

run "$SST" verify t1.sstable
check "the packed table verifies" status_is 0

umask_was=$(umask)
umask 022
"$SST" unpack -q t1.sstable modes >/dev/null 2>&1
umask "$umask_was"
check "unpack modes: directories 0755, files 0644 under umask 022" eval \
  '[ "$(stat -c %a modes/sub)" = 755 ] && [ "$(stat -c %a modes/sub/a/b)" = 644 ]'

run "$SST" pack --no-metadata -q src quiet.sstable
check "pack -q prints nothing" eval 'status_is 0 && err_empty && same quiet.sstable t1.sstable'
run "$SST" unpack -q t1.sstable quiet
check "unpack -q prints nothing" eval 'status_is 0 && err_empty'

run "$SST" pack --no-metadata --block-keys 4 --no-filter src opts.sstable
run "$SST" info opts.sstable
check "pack --block-keys and --no-filter" eval \
  'out_has "index interval: 4 keys per block" && out_has "filter: none"'

mkdir inside
printf '1' >inside/one
"$SST" pack --no-metadata -q inside inside/self.sstable 2>err
cp inside/self.sstable self1.sstable
run "$SST" pack --no-metadata inside inside/self.sstable
check "a table inside DIR is left out of it" eval \
  'status_is 0 && err_has "1 file packed" && same inside/self.sstable self1.sstable'

# ---- escaped keys --------------------------------------------------------

# Keys that cannot be paths as they stand, as `sst build --escape` records.
comp300=$(repeat L 300)
longpath=$(for i in $(seq 1 20); do printf '%s/' "$(repeat p 250)"; done)
{
  printf '%s\n' 'a,is also a directory' 'a-x,sorts between a and a/' \
    'a/./b,dot' 'a//b,empty component' 'a/../b,dotdot' 'a/b,plain' \
    '/lead,leading slash' 'x/,trailing slash' 'nul\x00byte,nul' \
    'nl\nkey,newline' 'hi\xffbyte,high byte' '%=x,marker' '%!y,marker' \
    '%+z,marker' 'q,alone' 'q-1,not under q' 'pct%41,percent' \
    "$comp300,a 300-byte component" "${longpath}end,a path past PATH_MAX" \
    'v/,\x00bin\x01value\n'
} >esc.records
run "$SST" build --escape -o esc.sstable esc.records
check "build the escape-case table" eval 'status_is 0 && err_has "20 unique keys"'

run "$SST" unpack esc.sstable escout
check "unpack escaped keys" eval 'status_is 0 && err_has "20 files written"'
expect_file() { [ -f "escout/$1" ] && [ "$(cat "escout/$1")" = "$2" ]; }
check "a beside a/b is %!a" expect_file '%!a' 'is also a directory'
check "a-x (before a/ in order) is itself" expect_file 'a-x' 'sorts between a and a/'
check "q beside q-1 only is plain q" expect_file 'q' 'alone'
check "a/./b is a/%=./b" expect_file 'a/%=./b' 'dot'
check "a//b is a/%=/b" expect_file 'a/%=/b' 'empty component'
check "a/../b is a/%=../b" expect_file 'a/%=../b' 'dotdot'
check "a/b is a/b" expect_file 'a/b' 'plain'
check "/lead is %=/lead" expect_file '%=/lead' 'leading slash'
check "x/ is x/%=" expect_file 'x/%=' 'trailing slash'
check "a NUL byte is %00" expect_file '%=nul%00byte' 'nul'
check "a newline stays raw" expect_file "$(printf 'nl\nkey')" 'newline'
check "a high byte stays raw" expect_file "$(printf 'hi\377byte')" 'high byte'
check "a name with a marker is escaped" expect_file '%=%25=x' 'marker'
check "a plain % stays" expect_file 'pct%41' 'percent'
check "a 300-byte component is cut into a %+ directory" expect_file \
  "%+$(repeat L 84)/%=$(repeat L 216)" 'a 300-byte component'
check "a path longer than PATH_MAX is written" eval \
  '[ "$(find escout -name end -type f | wc -l)" -eq 1 ]'

run "$SST" pack --no-metadata --compress none --no-dedup escout esc2.sstable
check "pack escaped names back" status_is 0
"$SST" dump --escape esc.sstable >esc.dump 2>err
"$SST" dump --escape esc2.sstable >esc2.dump 2>>err
check "... into the same keys and values (dump --escape)" same esc.dump esc2.dump
check "... and a byte-identical table" same esc.sstable esc2.sstable

# Random binary keys over an alphabet rich in separators, dots, markers
# and control bytes (seeded, so a failure repeats).
awk 'BEGIN {
    srand(11)
    split("/ . % = ! + \\x00 \\n a b \\xff - 0", alpha, " ")
    for (n = 0; n < 4000; n++) {
      kl = 1 + int(rand() * 8); line = ""
      for (i = 0; i < kl; i++) line = line alpha[1 + int(rand() * 13)]
      printf "%s,v%d\n", line, n
    }
  }' >rand.records
run "$SST" build --escape -o rand.sstable rand.records
check "build a table of random binary keys" status_is 0
run "$SST" unpack rand.sstable randout
check "unpack random binary keys" status_is 0
run "$SST" pack --no-metadata --compress none --no-dedup randout rand2.sstable
"$SST" dump --escape rand.sstable >rand.dump 2>err
"$SST" dump --escape rand2.sstable >rand2.dump 2>>err
check "random binary keys: unpack | pack keeps every key and value" eval \
  'status_is 0 && same rand.dump rand2.dump && same rand.sstable rand2.sstable'

# A tree deeper than the descriptors pack and unpack keep open, with files
# at several levels (deeper ones come first in key order, so the walk goes
# back up through closed levels), and paths far past PATH_MAX.
awk 'BEGIN {
    for (k = 1500; k > 0; k -= 299) {
      line = ""
      for (i = 0; i < k; i++) line = line "ab/"
      print line "zz,level " k
    }
  }' >deep.records
run "$SST" build -o deep.sstable deep.records
(
  ulimit -n 64
  "$SST" unpack deep.sstable deepout && "$SST" pack --no-metadata --compress none --no-dedup deepout deep2.sstable
) >out 2>err
rc=$?
check "1500 levels deep with 64 descriptors: unpack | pack is identical" eval \
  'status_is 0 && same deep.sstable deep2.sstable'

# A real tree, made one level at a time with mkdir and cd, whose paths are
# longer than PATH_MAX: 300 levels of 16-byte names (5100 bytes of path),
# with a file at the top, at level 150 and at the bottom.
mkdir longtree
(
  cd longtree || exit 1
  printf 'top' >top
  for ((i = 1; i <= 300; i++)); do
    name=$(printf 'level-%03d-abcdef' "$i")
    mkdir "$name" && cd "$name" || exit 1
    if [ "$i" -eq 150 ]; then printf 'middle' >mid; fi
  done
  printf 'bottom' >leaf
)
run "$SST" pack --no-metadata longtree long.sstable
check "a tree 300 levels deep, paths past PATH_MAX, packs" eval \
  'status_is 0 && err_has "3 files packed"'
"$SST" scan --keys-only long.sstable >keys 2>err
check "... with a key for each of its 3 files, the longest 5104 bytes" eval \
  '[ "$(wc -l <keys)" -eq 3 ] && [ "$(awk "{ print length }" keys | sort -n | tail -n 1)" -eq 5104 ]'
run "$SST" get long.sstable "$(sed -n '/leaf$/p' keys)"
check "... and the bottom file's content as its value" eval \
  'status_is 0 && out_is bottom'

# Prints a tree that is one chain of directories, level by level: each
# file with its content, then the directory below. cd goes down one name
# at a time, so no path is ever longer than PATH_MAX.
chain_listing() (
  cd "$1" || exit 1
  while :; do
    below=
    for e in *; do
      if [ -d "$e" ]; then
        below=$e
      elif [ -f "$e" ]; then
        printf '%s=%s\n' "$e" "$(cat "$e")"
      fi
    done
    [ -n "$below" ] || break
    printf 'dir %s\n' "$below"
    cd "$below" || exit 1
  done
)
run "$SST" unpack long.sstable longout
check "... unpacks" eval 'status_is 0 && err_has "3 files written"'
chain_listing longtree >long.list
chain_listing longout >longout.list
check "... into the same tree (names and contents, level by level)" eval \
  'same long.list longout.list && [ "$(grep -c "^dir " long.list)" -eq 300 ]'
run "$SST" pack --no-metadata longout long2.sstable
check "... which packs into a byte-identical table" eval \
  'status_is 0 && same long.sstable long2.sstable'

# ---- flat ----------------------------------------------------------------

printf 'users/1,alice\nusers/2,bob\nlogs,top\n' >flat.csv
run "$SST" build -o flat.sstable flat.csv
run "$SST" unpack --flat flat.sstable flatout
check "unpack --flat puts every key at the top" eval \
  'status_is 0 && [ "$(files_of flatout | tr "\n" " ")" = "%=users%2F1 %=users%2F2 logs " ]'
run "$SST" pack --no-metadata --compress none --no-dedup --flat flatout flat2.sstable
check "pack --flat of it: a byte-identical table" eval \
  'status_is 0 && same flat.sstable flat2.sstable'
run "$SST" pack --no-metadata --flat src flatbad.sstable
check "pack --flat of a nested tree fails" eval \
  'status_is 1 && err_has "--flat" && [ ! -e flatbad.sstable ]'
run "$SST" unpack --flat esc.sstable escflat
run "$SST" pack --no-metadata --compress none --no-dedup --flat escflat escflat.sstable
check "escaped keys round-trip flat too" eval \
  'status_is 0 && same escflat.sstable esc.sstable'

# ---- skipped entries -----------------------------------------------------

mkdir -p special/d
printf 'real' >special/d/file
ln -s file special/d/link
ln -s /etc special/etc
mkfifo special/fifo
run "$SST" pack --no-metadata special sp.sstable
check "symlinks and FIFOs are skipped, with a message" eval \
  'status_is 0 && err_has "sst pack: skipping symlink special/d/link" &&
   err_has "skipping symlink special/etc" && err_has "skipping FIFO special/fifo" &&
   err_has "1 file packed, 3 entries skipped"'
run "$SST" scan --keys-only sp.sstable
check "only the regular file is packed" out_is "d/file"
run "$SST" pack --no-metadata --strict special strict.sstable
check "pack --strict refuses a symlink or FIFO" eval \
  'status_is 1 && err_has "(--strict)" && [ ! -e strict.sstable ] &&
   [ -z "$(ls | grep strict.sstable)" ]'
run "$SST" pack --no-metadata -q special spq.sstable
check "pack -q still reports skipped entries" eval \
  'status_is 0 && err_has "skipping FIFO" && ! err_has "packed"'

# ---- temporaries left by a killed writer ----------------------------------

# A writer killed before its rename leaves TABLE.tmp.XXXXXXXX behind,
# unlocked; the next write of TABLE removes it. Files that only look alike
# and the temporary of a live writer (whose flock is held) stay.
mkdir tmps
printf 'stale' >tmps/out.sstable.tmp.0badf00d
lookalikes="out.sstable.tmp.0badf00 out.sstable.tmp.0badf00dd
  out.sstable.tmp.0badf00g out.sstable.tmp.0badf00d.x
  xout.sstable.tmp.0badf00d other.sstable.tmp.0badf00d"
for f in $lookalikes; do printf 'keep' >"tmps/$f"; done
ln -s out.sstable.tmp.0badf00d tmps/out.sstable.tmp.5ca1ab1e
if command -v flock >/dev/null 2>&1; then
  # One process that holds the lock: the subshell becomes the sleep.
  (exec 9>tmps/out.sstable.tmp.12345678 && flock 9 && exec sleep 30) &
  holder=$!
  for ((i = 0; i < 100; i++)); do
    flock -n tmps/out.sstable.tmp.12345678 true 2>/dev/null || break
    sleep 0.05
  done
  run "$SST" pack --no-metadata -q src tmps/out.sstable
  check "a write of TABLE removes a stale TABLE.tmp.XXXXXXXX" eval \
    'status_is 0 && [ -f tmps/out.sstable ] &&
     [ ! -e tmps/out.sstable.tmp.0badf00d ]'
  check "... keeps the temporary a live writer holds locked" \
    [ -f tmps/out.sstable.tmp.12345678 ]
  lookalikes_kept() {
    local f
    for f in $lookalikes; do [ "$(cat "tmps/$f")" = keep ] || return 1; done
    [ -L tmps/out.sstable.tmp.5ca1ab1e ]
  }
  check "... keeps names that only look alike, and symlinks" lookalikes_kept
  kill "$holder"
  wait "$holder" 2>/dev/null
  run "$SST" build -o tmps/out.sstable flat.csv
  check "... and removes it once its writer is gone" eval \
    'status_is 0 && [ ! -e tmps/out.sstable.tmp.12345678 ] && lookalikes_kept &&
     [ "$(ls tmps | grep -c "^out.sstable.tmp.")" -eq 5 ]'
else
  skip "stale temporaries are removed" "no flock(1) (util-linux)"
fi

# ---- errors --------------------------------------------------------------

run "$SST" pack --no-metadata missing-dir nope.sstable
check "pack of a missing directory" eval \
  'status_is 1 && err_has "sst pack: missing-dir: No such file or directory" &&
   [ ! -e nope.sstable ]'
run "$SST" pack --no-metadata esc.records nope.sstable
check "pack of a file, not a directory" eval \
  'status_is 1 && err_has "Not a directory" && [ ! -e nope.sstable ]'
run "$SST" pack --no-metadata src src
check "pack onto a directory is refused" eval 'status_is 1 && err_has "is a directory"'

mkdir -p dup/a
printf '1' >dup/%!a
printf '2' >dup/a/b
printf '3' >dup/c
printf '4' >dup/%=c
run "$SST" pack --no-metadata dup dup.sstable
check "two names with one key: both named, no table" eval \
  'status_is 1 && err_has "dup/%=c and dup/c give the same key '\''c'\''" &&
   [ ! -e dup.sstable ] && [ -z "$(ls | grep dup.sstable)" ]'

# A file that grows while pack reads it: a sparse file appended to by a
# background loop (bounded to 30 s, killed once pack is done). Whether pack
# sees the growth between the walk and the read or during the read, the
# pack fails naming the file and leaves no table.
mkdir growing
truncate -s 32M growing/log
(
  end=$((EPOCHSECONDS + 30))
  while [ "$EPOCHSECONDS" -lt "$end" ]; do printf x >>growing/log; done
) &
appender=$!
for ((i = 0; i < 100; i++)); do
  [ "$(stat -c %s growing/log)" -gt 33554432 ] && break
  sleep 0.05
done
run "$SST" pack --no-metadata growing grow.sstable
kill "$appender"
wait "$appender" 2>/dev/null
check "a file that grows while it is packed fails the pack" eval \
  'status_is 1 && [ -z "$(ls | grep grow.sstable)" ] &&
   grep -qE "^sst pack: growing/log: (changed since it was scanned \(from [0-9]+ bytes to [0-9]+\)|grew while it was read \(from [0-9]+ bytes\)|changed while it was read)$" err'

cp t1.sstable keep.sstable
run "$SST" pack --no-metadata missing-dir keep.sstable
check "a failed pack keeps the old table" eval 'status_is 1 && same keep.sstable t1.sstable'

# Root reads any file: as root the packs run as nobody (setpriv), which
# may go through the test's directory and write into uo/ alone.
as_user=()
if [ "$(id -u)" -eq 0 ]; then
  as_user=(setpriv --reuid=65534 --regid=65534 --clear-groups)
  chmod o+x "$WORK"
fi
mkdir -p unreadable/d uo
chmod 777 uo
printf 'secret' >unreadable/f
chmod 000 unreadable/f
run "${as_user[@]}" "$SST" pack --no-metadata unreadable uo/u.sstable
check "an unreadable file fails the pack" eval \
  'status_is 1 && err_has "unreadable/f: Permission denied" && [ ! -e uo/u.sstable ]'
chmod 644 unreadable/f
chmod 000 unreadable/d
run "${as_user[@]}" "$SST" pack --no-metadata unreadable uo/u.sstable
check "an unreadable directory fails the pack" eval \
  'status_is 1 && err_has "unreadable/d: Permission denied" && [ ! -e uo/u.sstable ]'
chmod 755 unreadable/d

mkdir full
: >full/x
run "$SST" unpack t1.sstable full
check "unpack into a non-empty directory is refused" eval \
  'status_is 1 && err_has "full: not empty" && [ "$(ls full)" = x ]'
run "$SST" unpack t1.sstable no/such/parent
check "unpack below a missing parent fails" eval \
  'status_is 1 && err_has "no/such/parent"'
run "$SST" unpack esc.records notable
check "unpack of a file that is not a table" eval \
  'status_is 1 && err_has esc.records && [ ! -e notable ]'
mkdir emptydir
run "$SST" unpack flat.sstable emptydir
check "unpack into an existing empty directory" eval \
  'status_is 0 && [ "$(cat emptydir/users/2)" = bob ]'

printf 'aaa,first value\nbbb,the value that gets damaged\nccc,third\n' >dmg.csv
run "$SST" build -o dmg.sstable dmg.csv
offset=$(grep -abo 'that gets damaged' dmg.sstable | head -n 1 | cut -d: -f1)
flip_byte dmg.sstable "$((offset + 2))"
run "$SST" unpack dmg.sstable dmgout
check "unpack of a damaged value names its key" eval \
  'status_is 1 && err_has "value of key '\''bbb'\''" && err_has "checksum" &&
   [ -f dmgout/aaa ] && [ ! -e dmgout/bbb ]'

# -j: the same table whatever the number of compressing threads; out of
# range is a usage error. The tree mixes small files (value blocks), large
# ones (chunks), empty ones and copies.
mkdir jtree
head -c 300000 "$SST" >jtree/big
cp jtree/big jtree/big-copy
for i in $(seq 1 200); do printf 'file %d of the tree\n' "$i" >"jtree/f$i"; done
: >jtree/empty
mkdir jtree/emptydir
for j in 1 2 4; do
  run "$SST" pack -q -j "$j" jtree "j$j.sstable"
  check "pack -j $j" status_is 0
done
check "... the same table with 1, 2 and 4 threads" eval \
  'cmp -s j1.sstable j2.sstable && cmp -s j1.sstable j4.sstable'
run "$SST" verify j4.sstable
check "... which verifies" status_is 0
run "$SST" pack -q --value-block 512K jtree jb.sstable
check "pack --value-block 512K" status_is 0
run "$SST" verify jb.sstable
check "... verifies" status_is 0
run "$SST" unpack jb.sstable jbout
check "... and unpacks to the tree" eval 'status_is 0 && diff -r jtree jbout >/dev/null'
run "$SST" pack --value-block 1K jtree jb2.sstable
check "pack --value-block 1K: a usage error" eval 'status_is 2 && err_has "between 4K and 4M"'
run "$SST" pack -j 0 jtree j0.sstable
check "pack -j 0: a usage error" eval 'status_is 2 && err_has "--jobs"'
run "$SST" pack -j 65 jtree j65.sstable
check "pack -j 65: a usage error" eval 'status_is 2 && err_has "at most 64"'

mkdir emptytree
run "$SST" pack --no-metadata emptytree e.sstable
run "$SST" info e.sstable
check "an empty directory packs to an empty table" eval 'status_is 0 && out_has "keys: 0"'
run "$SST" unpack e.sstable eout
check "... which unpacks to an empty directory" eval \
  'status_is 0 && [ -d eout ] && [ -z "$(ls -A eout)" ]'

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
