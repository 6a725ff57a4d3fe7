#!/usr/bin/env bash
# test_mount_meta.sh — a real tree packed with `sst pack` and mounted
# read-only comes back as it was: types, modes (exec, setuid, sticky,
# 0600), owners, nanosecond mtimes, symlinks (relative, absolute,
# dangling), hard links, user.* xattrs and empty directories. Then
# -o uid,gid,umask over stored metadata, a table without metadata, and
# /usr/include (packed with its symlinks, `diff -r` with the mount).
#
# Usage: bash tests/test_mount_meta.sh BINDIR    (BINDIR holds sst, sstfs)
#
# Prints "ok - NAME" or "not ok - NAME" per check, then "N passed, M
# failed". Exits non-zero if any check failed, 77 when FUSE is missing.
# Every mount lives under a fresh temporary directory ($WORK, see
# tests/lib.sh), unmounted at exit; daemons run in the foreground with
# their stderr in a log, which must stay empty of errors.
# shellcheck disable=SC2016,SC2034
set -u
# shellcheck source=tests/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BIN=${1:?usage: test_mount_meta.sh BINDIR}
case $BIN in /*) ;; *) BIN=$PWD/$BIN ;; esac
SST=$BIN/sst
SSTFS=$BIN/sstfs
TESTS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export LC_ALL=C

require_fuse
for tool in rsync getfattr python3; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "SKIP: $tool is not installed (scripts/setup installs it)"
    exit 77
  fi
done

if ! "$SST" pack --help 2>/dev/null | grep -q -- --no-metadata; then
  echo "SKIP: this sst pack does not keep metadata (no --no-metadata)"
  exit 77
fi

passed=0
failed=0
skipped=0
rc=0
work_dir mount-meta

# mount TABLE... MNT [-o OPTS]: a foreground daemon, stderr in log/MNT.
mount_table() {
  local mnt=$1
  shift
  mkdir -p "$mnt" log
  "$SSTFS" -f "$@" "$mnt" 2>"log/${mnt//\//_}" &
  own_daemon $!
  wait_mounted "$WORK/$mnt" $!
}

unmount() { fusermount3 -u "$WORK/$1"; }

# ---- the tree -----------------------------------------------------------------

# Every kind of thing pack keeps. Times are set last, deepest first, so
# that making the children does not change a directory's mtime.
make_tree() {
  mkdir -p src/bin src/data/sub src/empty src/deep/er/est src/sticky \
    src/private
  printf '#!/bin/sh\nexit 0\n' >src/bin/run.sh
  chmod 0755 src/bin/run.sh
  printf 'secret\n' >src/data/secret
  chmod 0600 src/data/secret
  cp src/bin/run.sh src/bin/suid
  chmod 04755 src/bin/suid
  printf 'g' >src/bin/sgid
  chmod 02711 src/bin/sgid
  chmod 01777 src/sticky
  chmod 0700 src/private
  chmod 0750 src/deep/er
  printf 'plain\n' >src/data/plain
  : >src/data/zero
  printf 'linked\n' >src/data/h1
  ln src/data/h1 src/data/sub/h2
  ln src/data/h1 src/h3
  printf 'two\n' >src/data/sub/p1
  ln src/data/sub/p1 src/private/p2
  head -c 200000 /dev/urandom >src/data/big
  ln -s ../bin/run.sh src/data/rel
  ln -s /etc/hostname src/data/abs
  ln -s no/such/target src/data/dangling
  ln -s sub src/data/dirlink
  chown 1234:5678 src/data/plain
  chown 4321:8765 src/data/rel
  chown 77:88 src/data/sub
  setfattr -n user.color -v blue src/data/plain
  setfattr -n user.empty src/data/plain
  setfattr -n user.bin -v 0x00ff00 src/data/big
  setfattr -n user.note -v 'a directory' src/data/sub
  local i=0 p
  # Directories after their content: deepest (longest path) first.
  while read -r p; do
    i=$((i + 1))
    touch -h -d "@$((1600000000 + i * 1000)).$(printf '%09d' $((i * 7654321 % 1000000000)))" "$p"
  done < <(find src -mindepth 1 ! -type d; find src -type d | awk '{ print length, $0 }' | sort -rn | cut -d' ' -f2-)
}

make_tree
run "$SST" pack src t.sst
check "pack the tree" status_is 0
run "$SST" pack --no-metadata src plain.sst
check "pack it without metadata" status_is 0
if ! mount_table mnt t.sst; then
  echo "Bail out! cannot mount t.sst"
  cat log/mnt
  exit 1
fi
MNT=$WORK/mnt

# ---- the tree through the mount ----------------------------------------------

# rsync compares type, mode, owner, mtime, content (checksums), hard
# links and xattrs, and prints one line per difference.
run rsync -a -H -X -n -i -c src/ mnt/
check "rsync -aHXc finds no difference" eval '[ "$rc" -eq 0 ] && [ ! -s out ]'
[ -s out ] && sed 's/^/#   /' out | head -n 10

listing() { (cd "$1" && find . -printf '%y %m %U %G %T@ %l %p\n' | sort); }
listing src >find.src
listing mnt >find.mnt
check "find -printf '%y %m %U %G %T@ %l %p' is the same" cmp -s find.src find.mnt
cmp -s find.src find.mnt || diff find.src find.mnt | head -n 10 | sed 's/^/#   /'

links() { (cd "$1" && find . -type f -printf '%n %p\n' | sort); }
check "link counts of files are the same" eval '[ "$(links src)" = "$(links mnt)" ]'

check "hard links share an inode" eval \
  '[ "$(stat -c %i mnt/data/h1)" = "$(stat -c %i mnt/data/sub/h2)" ] &&
   [ "$(stat -c %i mnt/data/h1)" = "$(stat -c %i mnt/h3)" ] &&
   [ "$(stat -c %i mnt/data/h1)" != "$(stat -c %i mnt/data/sub/p1)" ]'
run "$MNT/bin/run.sh"
check "a script runs from the mount (exit 0)" status_is 0
run cat mnt/data/rel
check "a relative symlink leads to its target" \
  eval '[ "$rc" -eq 0 ] && cmp -s out src/bin/run.sh'
check "readlink of absolute and dangling symlinks" eval \
  '[ "$(readlink mnt/data/abs)" = /etc/hostname ] &&
   [ "$(readlink mnt/data/dangling)" = no/such/target ] &&
   [ ! -e mnt/data/dangling ]'
check "empty directories are there, and empty" eval \
  '[ -d mnt/empty ] && [ -z "$(ls -A mnt/empty)" ] &&
   [ -d mnt/deep/er/est ] && [ -z "$(ls -A mnt/deep/er/est)" ]'
check "a 0600 file keeps its mode and content" eval \
  '[ "$(stat -c %a mnt/data/secret)" = 600 ] && cmp -s src/data/secret mnt/data/secret'
check "setuid, setgid and sticky bits as stored" eval \
  '[ "$(stat -c %a mnt/bin/suid)" = 4755 ] &&
   [ "$(stat -c %a mnt/bin/sgid)" = 2711 ] &&
   [ "$(stat -c %a mnt/sticky)" = 1777 ]'
check "mtimes keep their nanoseconds" eval \
  '[ "$(stat -c %y src/data/big)" = "$(stat -c %y mnt/data/big)" ] &&
   [ "$(stat -c %z mnt/data/big)" = "$(stat -c %y mnt/data/big)" ]'
run getfattr -d -m - --absolute-names mnt/data/plain
check "getfattr -d shows the stored xattrs" eval \
  'out_has "user.color=\"blue\"" && out_has "user.empty"'
run python3 "$TESTS/xattr_query.py" mnt/data/plain user.color blue
check "getxattr/listxattr: size query, ERANGE, ENODATA" status_is 0
[ -s out ] && sed 's/^/#   /' out
run getfattr -n user.nothing mnt/data/zero
check "getxattr of a file without xattrs: No such attribute" \
  eval '[ "$rc" -ne 0 ] && err_has "No such attribute"'
run cmp src/data/big mnt/data/big
check "a large file reads back the same" status_is 0

# Writes are refused.
run touch mnt/data/plain
check "the mount stays read-only" eval '[ "$rc" -ne 0 ] && err_has "Read-only"'
run setfattr -n user.x -v 1 mnt/data/plain
check "setxattr is refused" eval '[ "$rc" -ne 0 ]'

unmount mnt

# ---- -o uid,gid,umask over stored metadata -------------------------------------

if mount_table over -o uid=4242,gid=4343,umask=027 t.sst; then
  check "-o uid,gid override stored owners" eval \
    '[ "$(stat -c %u:%g over/data/plain)" = 4242:4343 ] &&
     [ "$(stat -c %u:%g over/data/sub)" = 4242:4343 ]'
  check "-o umask clears bits from stored modes" eval \
    '[ "$(stat -c %a over/bin/run.sh)" = 750 ] &&
     [ "$(stat -c %a over/bin/suid)" = 4750 ] &&
     [ "$(stat -c %a over/sticky)" = 1750 ] &&
     [ "$(stat -c %a over/data/secret)" = 600 ]'
  check "mtimes and symlinks stay as stored" eval \
    '[ "$(stat -c %y over/data/big)" = "$(stat -c %y src/data/big)" ] &&
     [ "$(readlink over/data/rel)" = ../bin/run.sh ]'
  unmount over
else
  check "mount with -o uid,gid,umask" false
fi

# ---- a table without metadata mounts as before ----------------------------------

if mount_table flat0 plain.sst; then
  check "without metadata: files 0444, directories 0555, owner who mounts" eval \
    '[ "$(stat -c %a:%u:%g flat0/bin/run.sh)" = "444:$(id -u):$(id -g)" ] &&
     [ "$(stat -c %a flat0/data)" = 555 ] &&
     [ "$(stat -c %Y flat0/data/plain)" = "$(stat -c %Y plain.sst)" ]'
  run getfattr -n user.color flat0/data/plain
  check "without metadata: xattrs are not supported" \
    eval '[ "$rc" -ne 0 ] && err_has "Operation not supported"'
  check "without metadata: no empty directories, no symlinks" eval \
    '[ ! -e flat0/empty ] && [ ! -L flat0/data/rel ]'
  unmount flat0
else
  check "mount the table without metadata" false
fi

# ---- /usr/include ------------------------------------------------------------------

if [ ! -d /usr/include ]; then
  skip "/usr/include packs and mounts the same" "/usr/include is missing"
else
  run "$SST" pack /usr/include inc.sst
  check "pack /usr/include" status_is 0
  check "pack /usr/include keeps its symlinks" \
    eval '! err_has "skipping symlink"'
  # diff -r follows symlinks, and some leave the tree (clang's include
  # -> ../../../lib/llvm-14/...): mounted at $WORK/usr/include beside
  # links to the rest of /usr, they lead where they lead from /usr.
  mkdir usr
  for x in /usr/*; do
    [ "$x" = /usr/include ] || ln -s "$x" "usr/${x#/usr/}"
  done
  if mount_table usr/include inc.sst; then
    run diff -r /usr/include usr/include
    check "diff -r /usr/include MNT is empty" eval '[ "$rc" -eq 0 ] && [ ! -s out ]'
    [ -s out ] && sed 's/^/#   /' out | head -n 5
    one=$(cd /usr/include && find . -type f | head -n 1)
    run getfattr -n user.x "usr/include/$one"
    check "no entry has xattrs: getxattr is not supported (no round trip)" \
      eval '[ "$rc" -ne 0 ] && err_has "Operation not supported"'
    run diff -r --no-dereference /usr/include usr/include
    check "diff -r --no-dereference /usr/include MNT is empty" \
      eval '[ "$rc" -eq 0 ] && [ ! -s out ]'
    run rsync -a -H -X -n -i -c /usr/include/ usr/include/
    check "rsync -aHXc finds no difference in /usr/include" \
      eval '[ "$rc" -eq 0 ] && [ ! -s out ]'
    [ -s out ] && sed 's/^/#   /' out | head -n 5
    unmount usr/include
  else
    check "mount /usr/include" false
  fi
fi

# ---- the daemons' logs ---------------------------------------------------------------

for pid in "${own_pids[@]}"; do
  gone "$pid"
done
check "the daemons logged nothing" eval '! grep -q . log/*'
grep -H . log/* 2>/dev/null | head -n 5 | sed 's/^/#   /'

summary
