#!/usr/bin/env bash
# test_mount.sh — the read-only mount, tested through real FUSE mounts.
#
# Usage: bash tests/test_mount.sh BINDIR    (BINDIR holds sst and sstfs)
#
# Prints "ok - NAME" or "not ok - NAME" per check (with details on "#"
# lines after a failure), then "N passed, M failed". Exits non-zero if any
# check failed, 77 when FUSE is not available here.
#
# Every mount lives under a fresh temporary directory; the EXIT trap
# unmounts each of them and stops only the daemons this script started.
# Daemons run in the foreground (-f) with stderr in a log, so that each log
# can be checked at the end: no unexpected line, no sanitizer report, and
# exit status 0 once unmounted.
#
# Checks written `check NAME eval 'EXPR'` expand EXPR when the check runs:
# the single quotes are intended.
# shellcheck disable=SC2016,SC2034
set -u
# shellcheck source=tests/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BIN=${1:?usage: test_mount.sh BINDIR}
case $BIN in /*) ;; *) BIN=$PWD/$BIN ;; esac
SST=$BIN/sst
SSTFS=$BIN/sstfs
export LC_ALL=C

require_fuse

WORK=$(mktemp -d "${TMPDIR:-/tmp}/sst-mount.XXXXXX") || exit 1
cd "$WORK" || exit 1
mkdir mnt log

passed=0
failed=0
skipped=0
rc=0
mounts=()          # every mount point this script used
readers=()         # reader subshells running in the background
declare -A daemon  # foreground daemon name -> pid
declare -A status  # foreground daemon name -> exit status once it ended
declare -A expect  # foreground daemon name -> log lines it may write

cleanup() {
  local m pid
  for pid in "${readers[@]}"; do
    kill "$pid" 2>/dev/null
  done
  for m in "${mounts[@]}"; do
    is_mounted "$m" || continue
    for _ in 1 2 3 4 5; do
      fusermount3 -u "$m" 2>/dev/null && break
      sleep 0.2
    done
    is_mounted "$m" && fusermount3 -uz "$m" 2>/dev/null
  done
  for pid in "${daemon[@]}"; do
    kill -0 "$pid" 2>/dev/null && kill "$pid" 2>/dev/null
  done
  cd / || return
  # Never recurse into a mount that is somehow still there.
  if ! grep -qF " $WORK/" /proc/self/mounts; then
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

ok_and_out_is() { [ "$rc" -eq 0 ] && out_is "$1"; }

# same_files PATH...: each file of src is the same in $MNT.
same_files() {
  local f
  for f in "$@"; do
    cmp -s "src/$f" "$MNT/$f" || return 1
  done
}

# Flips every bit of the byte at offset $2 of file $1.
flip_byte() {
  local byte
  byte=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
  # shellcheck disable=SC2059
  printf "$(printf '\\%03o' $((byte ^ 255)))" |
    dd of="$1" bs=1 seek="$2" count=1 conv=notrunc 2>/dev/null
}

# The daemon as a child whose SIGINT is not ignored: a shell starts
# background commands with SIGINT ignored, and libfuse keeps an ignored
# signal ignored.
# Each wrapper execs the daemon, so $! is the daemon's pid.
if env --default-signal=INT true 2>/dev/null; then
  fg_daemon=(env --default-signal=INT "$SSTFS" -f)
else
  fg_daemon=(perl -e '$SIG{INT} = "DEFAULT"; exec @ARGV or exit 127'
    "$SSTFS" -f)
fi

# mount_fg NAME TABLE [OPTION...]: mounts TABLE at mnt/NAME with a
# foreground daemon logging to log/NAME; sets MNT. Fails (as a check) if
# the mount does not appear.
mount_fg() {
  local name=$1 table=$2
  shift 2
  MNT=$WORK/mnt/$name
  mkdir -p "$MNT"
  mounts+=("$MNT")
  "${fg_daemon[@]}" "$@" "$table" "$MNT" 2>"log/$name" &
  daemon[$name]=$!
  expect[$name]=0
  if ! wait_mounted "$MNT" "${daemon[$name]}"; then
    echo "not ok - mount $name"
    sed 's/^/#   /' "log/$name" | head -n 5
    failed=$((failed + 1))
    return 1
  fi
}

# waits for foreground daemon NAME to end, at most 10 s; records its
# status.
reap() {
  local name=$1 pid=${daemon[$1]} i
  for ((i = 0; i < 200; i++)); do
    alive "$pid" || break
    sleep 0.05
  done
  if alive "$pid"; then
    status[$name]=timeout
    return 1
  fi
  wait "$pid"
  status[$name]=$?
}

# unmount_fg NAME: unmounts mnt/NAME and reaps its daemon.
unmount_fg() {
  local m=$WORK/mnt/$1
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    is_mounted "$m" || break
    fusermount3 -u "$m" 2>/dev/null && break
    sleep 0.2
  done
  reap "$1"
}

# libfuse 3.14.0 logs this when given max_idle_threads UINT_MAX, the
# "unset" value fuse_parse_cmdline leaves; later versions stay quiet. It
# gets one check of its own, so that it does not fail every log check.
threads_noise='^Ignoring invalid max threads value 4294967295 > max'

# ---- data ------------------------------------------------------------------

# A tree with awkward names.
mkdir src
(
  cd src || exit 1
  echo plain >plain.txt
  echo space >"with space"
  echo lead >" leading space"
  echo trail >"trailing space "
  printf 'tab\n' >"tab$(printf '\t')here"
  echo café >café
  mkdir 日本
  echo 語 >日本/語.txt
  for n in % %41 a%2Fb 100% %% %%=x %2F; do echo "name $n" >"$n"; done
  echo hidden >.hidden
  echo dotdotx >..x
  echo dots >...
  mkdir .dir
  echo inner >.dir/.inner
  long=$(printf 'N%.0s' $(seq 255))
  echo long-ascii >"$long"
  wide=$(printf '日%.0s' $(seq 85)) # 255 bytes of UTF-8
  echo long-utf8 >"$wide"
  mkdir "D${long:1}"
  mkdir "D${long:1}/$wide"
  echo in-long-dirs >"D${long:1}/$wide/$long"
  deep=$(printf 'n%02d/' $(seq 30))
  mkdir -p "$deep"
  echo leaf >"${deep}leaf.txt"
  : >empty
  mkdir -p deep
  : >deep/empty
  mkdir a
  echo x >a/x
  echo a-b >a-b
  echo a.b >a.b
  echo "a b" >"a b"
  echo a0 >a0
  head -c 3145728 /dev/urandom >big.bin
  head -c 100000 /dev/zero >zeros
  # Either side of the size up to which a read is served from a buffer.
  head -c 8192 /dev/urandom >edge8192
  head -c 8193 /dev/urandom >edge8193
  printf 'victim: UNIQUE-VICTIM-f3a91c0e77b2 end\n' >victim.txt
  # Many small files for the concurrent readers.
  for d in $(seq -w 0 19); do
    mkdir -p "many/d$d"
    for f in $(seq -w 0 19); do
      head -c $(((10#$d * 20 + 10#$f) * 157 % 70000)) /dev/urandom \
        >"many/d$d/f$f"
    done
  done
)
(cd src && find . -type f | sed 's|^\./||') >files.list
nfiles=$(wc -l <files.list)

# A plain table (no modes, owners, times: tests/test_mount_meta.sh mounts
# one with them), as `sst pack --no-metadata` makes where pack keeps
# metadata; values stored as they are (tests/test_mount_compress.sh
# mounts compressed ones).
plain_pack=("$SST" pack)
"$SST" pack --help 2>&1 | grep -q -- --no-metadata && plain_pack+=(--no-metadata)
"$SST" pack --help 2>&1 | grep -q -- --compress && plain_pack+=(--compress none)
run "${plain_pack[@]}" src tree.sstable
check "pack the awkward tree" eval 'status_is 0 && [ -s tree.sstable ]'

# Every escape case: escaped key, value, path, path with -o flat.
L300=$(printf 'L%.0s' $(seq 300))
D300=$(printf 'D%.0s' $(seq 300))
L84=${L300:0:84} L216=${L300:84}
D84=${D300:0:84} D216=${D300:84}
esc_keys=('a/./b' 'a/../c' 'a//b' '/lead' 'x/' 'nul\x00byte' 'k' 'k/sub'
  '%=x' "$L300" "$D300/f" 'a/b' 'e/empty')
esc_values=('dot' 'dot-dot' 'empty component' 'leading slash' 'trailing slash'
  'NUL byte' 'file beside a directory' 'under k' 'marker' 'long component'
  'under a long directory' 'clean' '')
esc_paths=('a/%=./b' 'a/%=../c' 'a/%=/b' '%=/lead' 'x/%=' '%=nul%00byte'
  '%!k' 'k/sub' '%=%25=x' "%+$L84/%=$L216" "%+$D84/%=$D216/f" 'a/b'
  'e/empty')
esc_flat=('%=a%2F.%2Fb' '%=a%2F..%2Fc' '%=a%2F%2Fb' '%=%2Flead' '%=x%2F'
  '%=nul%00byte' 'k' '%=k%2Fsub' '%=%25=x' "%+$L84/%=$L216"
  "%+$D84/%=$D216%2Ff" '%=a%2Fb' '%=e%2Fempty')
nesc=${#esc_keys[@]}
for ((i = 0; i < nesc; i++)); do
  printf '%s,%s\n' "${esc_keys[i]}" "${esc_values[i]}"
done >escape.esc
run "$SST" build --escape -o escape.sstable escape.esc
check "build the escape table" status_is 0
touch -d '2001-02-03 04:05:06.789' escape.sstable

run "$SST" build -o empty.sstable </dev/null
check "build an empty table" status_is 0

# A directory of 5000 names of varied lengths, between keys that sort just
# before and after it.
awk 'BEGIN {
  print "big-before,x"
  for (i = 0; i < 5000; i++) {
    pad = substr("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
                 1, (i * 37) % 60)
    printf "big/f%05d%s,%s\n", i, pad, substr("value", 1, i % 6)
  }
  print "big0,x"
}' >bigdir.csv
run "$SST" build -o bigdir.sstable bigdir.csv
check "build the big directory table" status_is 0
awk -F, '/^big\// { sub(/^big\//, "", $1); print $1 }' bigdir.csv | sort >bigdir.names
bigdir_bytes=$(awk -F, '/^big\// { s += length($2) } END { print s }' bigdir.csv)

# ---- the awkward tree ------------------------------------------------------

# On fresh mounts (nothing cached): every file by its path, found by
# lookups without any listing; 8 readers at once.
if mount_fg lookups tree.sstable; then
  bad=0
  while IFS= read -r f; do
    cmp -s "src/$f" "$MNT/$f" || { bad=$((bad + 1)); echo "#   differs: $f"; }
  done <files.list
  check "every file read by its path on a fresh mount" [ "$bad" -eq 0 ]
  unmount_fg lookups
fi
if mount_fg readers tree.sstable; then
  for i in 1 2 3 4 5 6 7 8; do
    (
      errors=0
      while IFS= read -r f; do
        cmp -s "src/$f" "$MNT/$f" || errors=$((errors + 1))
      done < <(shuf -r -n 200 --random-source=<(yes "seed $i") files.list)
      echo "$errors" >"readers.$i"
    ) &
    readers+=($!)
  done
  bad=0
  for i in 1 2 3 4 5 6 7 8; do
    wait "${readers[i - 1]}" || bad=$((bad + 1))
    [ "$(cat "readers.$i" 2>/dev/null)" = 0 ] || bad=$((bad + 1))
  done
  readers=()
  check "8 concurrent readers of 200 random files each" [ "$bad" -eq 0 ]
  unmount_fg readers
fi

if mount_fg tree tree.sstable; then
  tree_mnt=$MNT
  run diff -r src "$MNT"
  check "diff -r of the tree and its mount" eval 'status_is 0 && [ ! -s out ]'
  [ "$rc" -eq 0 ] || sed 's/^/#   /' out | head -n 10

  # O_DIRECT reads reach the daemon at the offset asked for, past the
  # page cache: 512-byte pieces from anywhere in a value, and past its end.
  pieces_ok() {
    local f s
    for f in edge8192 edge8193 plain.txt big.bin; do
      for s in 0 1 3 15 16 17 6143; do
        cmp -s <(dd if="$MNT/$f" iflag=direct bs=512 skip=$s count=3 2>/dev/null) \
          <(dd if="src/$f" bs=512 skip=$s count=3 2>/dev/null) || return 1
      done
    done
  }
  check "O_DIRECT reads at offsets, small and large values" pieces_ok

  run find "$MNT" -type f
  check "find: as many files as keys" eval '[ "$(wc -l <out)" -eq "$nfiles" ]'

  run stat -f -c %c "$MNT"
  check "statfs: total inodes is the key count" ok_and_out_is "$nfiles"
  run stat -f -c %l "$MNT"
  check "statfs: longest name is 255" ok_and_out_is 255

  run ls -a "$MNT"
  check "ls -a of the root shows . and .." eval \
    'status_is 0 && grep -qx "\." out && grep -qx "\.\." out &&
     [ "$(wc -l <out)" -eq "$(($(ls -a src | wc -l)))" ]'
  run ls -a "$MNT/deep"
  check "ls -a of a directory shows . and .." eval \
    'status_is 0 && out_is "$(printf ".\n..\nempty")"'

  run awk -v m="$MNT" '$2 == m { print $1, $3, $4 }' /proc/self/mounts
  check "/proc/mounts: source is the table, type fuse.sstfs, ro" eval \
    'out_has "$WORK/tree.sstable fuse.sstfs ro,"'

  # Changes fail with EROFS and change nothing.
  f=$MNT/plain.txt
  run bash -c 'echo x >"$1"' _ "$f"
  check "write fails with EROFS" eval \
    'status_is 1 && err_has "Read-only file system"'
  run bash -c 'echo x >>"$1"' _ "$f"
  check "append fails with EROFS" eval \
    'status_is 1 && err_has "Read-only file system"'
  run bash -c 'echo x >"$1"' _ "$MNT/new.txt"
  check "create by redirection fails with EROFS" eval \
    'status_is 1 && err_has "Read-only file system"'
  run touch "$MNT/new2.txt"
  check "create (touch) fails with EROFS" eval \
    'status_is 1 && err_has "Read-only file system"'
  run rm -f "$f"
  check "unlink fails with EROFS" eval \
    'status_is 1 && err_has "Read-only file system"'
  run mkdir "$MNT/newdir"
  check "mkdir fails with EROFS" eval \
    'status_is 1 && err_has "Read-only file system"'
  run rmdir "$MNT/deep"
  check "rmdir fails with EROFS" eval \
    'status_is 1 && err_has "Read-only file system"'
  run mv "$f" "$MNT/renamed.txt"
  check "rename fails with EROFS" eval \
    'status_is 1 && err_has "Read-only file system"'
  run truncate -s 0 "$f"
  check "truncate fails with EROFS" eval \
    'status_is 1 && err_has "Read-only file system"'
  run chmod 600 "$f"
  check "chmod fails with EROFS" eval \
    'status_is 1 && err_has "Read-only file system"'
  run ln -s plain.txt "$MNT/link"
  check "symlink fails with EROFS" eval \
    'status_is 1 && err_has "Read-only file system"'
  check "nothing changed" eval 'cmp -s src/plain.txt "$f" &&
    [ "$(stat -c %a "$f")" = 444 ] && [ ! -e "$MNT/new.txt" ] &&
    [ ! -e "$MNT/newdir" ] && [ ! -e "$MNT/renamed.txt" ]'
  unmount_fg tree
  check "unmount: the mount is gone" eval '! is_mounted "$tree_mnt"'
fi

# ---- background mode and the mount helper ----------------------------------

MNT=$WORK/mnt/background
mkdir -p "$MNT"
mounts+=("$MNT")
run "$SSTFS" tree.sstable "$MNT"
check "background mode: the command returns 0, mounted" eval \
  'status_is 0 && is_mounted "$MNT"'
if is_mounted "$MNT"; then
  check "background mode: a file reads" cmp -s src/big.bin "$MNT/big.bin"
  run fusermount3 -u "$MNT"
  check "background mode: fusermount3 -u unmounts" eval \
    'status_is 0 && ! is_mounted "$MNT"'
fi

# mount -t fuse.sstfs runs mount.fuse3, which runs `sstfs TABLE MNT -o
# OPTS` through /bin/sh. mount(8) may clear PATH for its helpers (util-linux
# 2.38 does), so a BINDIR put on PATH can be lost on the way: then the
# helper is checked directly, and through mount(8) with the old
# "PROGRAM#SOURCE" form, which names the program by its path.
MNT=$WORK/mnt/helper
mkdir -p "$MNT"
mounts+=("$MNT")
mount_fuse3=$(PATH=$PATH:/sbin:/usr/sbin command -v mount.fuse3)
helper_mounted() {
  status_is 0 && is_mounted "$MNT" && cmp -s src/plain.txt "$MNT/plain.txt" &&
    awk -v m="$MNT" '$2 == m && $3 == "fuse.sstfs" { f = 1 } END { exit !f }' \
      /proc/self/mounts
}
helper_unmount() {
  if is_mounted "$MNT"; then
    run umount "$MNT"
    check "umount of the $1 mount" eval 'status_is 0 && ! is_mounted "$MNT"'
  fi
}
if [ -z "$mount_fuse3" ]; then
  skip "mount -t fuse.sstfs" "mount.fuse3 is not installed"
else
  PATH=$BIN:$PATH run mount -t fuse.sstfs "$WORK/tree.sstable" "$MNT"
  if [ "$rc" -ne 0 ] && err_has "sstfs: not found"; then
    # mount(8) gave its helpers its own PATH (util-linux 2.38:
    # /usr/local/sbin:/usr/local/bin:/usr/sbin:...). In a mount namespace
    # of the test's own, an empty /usr/local/sbin (a tmpfs) gets sstfs,
    # as an installed sstfs would be found, for the length of one mount;
    # nothing outside the namespace sees it.
    run unshare -m --propagation private bash -c '
      trap "umount -l \"\$3\" 2>/dev/null" EXIT
      mount -t tmpfs sstfs-test /usr/local/sbin &&
        ln -s "$1/sstfs" /usr/local/sbin/sstfs &&
        mount -t fuse.sstfs "$2" "$3" &&
        awk -v m="$3" "\$2 == m && \$3 == \"fuse.sstfs\" { f = 1 } END { exit !f }" \
          /proc/self/mounts &&
        cmp "$4" "$3/plain.txt" && umount "$3"' \
      _ "$BIN" "$WORK/tree.sstable" "$MNT" "$WORK/src/plain.txt"
    check "mount -t fuse.sstfs, sstfs where mount(8) looks (a namespace)" \
      eval 'status_is 0 && ! is_mounted "$MNT"'
  else
    check "mount -t fuse.sstfs with BINDIR on PATH" helper_mounted
    helper_unmount "mount -t fuse.sstfs"
  fi
  PATH=$BIN:$PATH run "$mount_fuse3" "$WORK/tree.sstable" "$MNT" -t sstfs \
    -o umask=0227
  check "mount.fuse3 -t sstfs (the helper of mount -t fuse.sstfs)" eval \
    'helper_mounted && [ "$(stat -c %a "$MNT/plain.txt")" = 440 ]'
  helper_unmount mount.fuse3
  run mount -t fuse "$BIN/sstfs#$WORK/tree.sstable" "$MNT"
  check "mount -t fuse BINDIR/sstfs#TABLE" helper_mounted
  helper_unmount "mount -t fuse"
fi

# ---- every escape case ---------------------------------------------------

if mount_fg escape escape.sstable; then
  bad=0
  for ((i = 0; i < nesc; i++)); do
    p=$MNT/${esc_paths[i]}
    if [ ! -f "$p" ] || [ "$(cat "$p")" != "${esc_values[i]}" ]; then
      echo "#   key ${esc_keys[i]:0:40}: not at ${esc_paths[i]:0:60}"
      bad=$((bad + 1))
    fi
  done
  check "every key is at its escaped path with its value" [ "$bad" -eq 0 ]
  run find "$MNT" -type f
  check "find: as many files as keys" eval '[ "$(wc -l <out)" -eq "$nesc" ]'
  (cd "$MNT" && find . -type f | sed 's|^\./||' | sort) >found.paths
  printf '%s\n' "${esc_paths[@]}" | sort >want.paths
  check "find: exactly the escaped paths" cmp -s found.paths want.paths
  bad=0
  for p in '%=k' '%=a' '%!a' '%=k/sub' '%=x/%=' 'a/%=b' '%=%2Flead' \
    '%=nul%00byte/' "%=$L216" "%+$L84/$L216" "%+$L84/%!$L216"; do
    [ -e "$MNT/$p" ] && { bad=$((bad + 1)); echo "#   found: ${p:0:60}"; }
  done
  check "other spellings of the keys find nothing" [ "$bad" -eq 0 ]
  run stat -f -c %c "$MNT"
  check "statfs: total inodes is the key count" ok_and_out_is "$nesc"
  run ls "$MNT/a"
  check "ls of a directory of escapes" ok_and_out_is \
    "$(printf '%%=\n%%=.\n%%=..\nb')"

  bad=0
  for ((i = 0; i < nesc; i++)); do
    size=$(stat -c %s "$MNT/${esc_paths[i]}")
    [ "$size" = "${#esc_values[i]}" ] || {
      bad=$((bad + 1))
      echo "#   ${esc_paths[i]:0:60}: size $size, want ${#esc_values[i]}"
    }
  done
  check "stat: sizes are the value lengths" [ "$bad" -eq 0 ]
  run stat -c %a "$MNT/k/sub" "$MNT/%!k" "$MNT/e/empty"
  check "stat: files are 0444" ok_and_out_is "$(printf '444\n444\n444')"
  run stat -c %a "$MNT" "$MNT/k" "$MNT/%+$D84/%=$D216"
  check "stat: directories are 0555" ok_and_out_is "$(printf '555\n555\n555')"
  u=$(id -u) g=$(id -g)
  run stat -c '%F %u %g' "$MNT/k/sub" "$MNT/e/empty" "$MNT/k"
  check "stat: types; owner and group are who mounted" ok_and_out_is \
    "regular file $u $g
regular empty file $u $g
directory $u $g"
  want_mtime=$(stat -c '%y' escape.sstable)
  run stat -c '%y' "$MNT/k/sub" "$MNT/k" "$MNT"
  check "stat: mtime is the table's, to the nanosecond" ok_and_out_is \
    "$(printf '%s\n%s\n%s' "$want_mtime" "$want_mtime" "$want_mtime")"
  unmount_fg escape
fi

if mount_fg flat escape.sstable -o flat; then
  printf '%s\n' "${esc_flat[@]}" | sed 's|/.*||' | sort >want.flat
  ls -A "$MNT" >found.flat 2>err
  rc=$?
  check "-o flat: ls shows every key at the top level" eval \
    'status_is 0 && cmp -s found.flat want.flat'
  bad=0
  for ((i = 0; i < nesc; i++)); do
    p=$MNT/${esc_flat[i]}
    if [ ! -f "$p" ] || [ "$(cat "$p")" != "${esc_values[i]}" ]; then
      bad=$((bad + 1))
      echo "#   key ${esc_keys[i]:0:40}: not at ${esc_flat[i]:0:60}"
    fi
  done
  check "-o flat: every key at its path with its value" [ "$bad" -eq 0 ]
  run find "$MNT" -type f
  check "-o flat: as many files as keys" eval '[ "$(wc -l <out)" -eq "$nesc" ]'
  check "-o flat: lower-case hex and '/' find nothing" eval \
    '[ ! -e "$MNT/%=a%2fb" ] && [ ! -e "$MNT/a%2Fb" ] && [ ! -e "$MNT/k/sub" ]'
  unmount_fg flat
fi

# ---- options: umask, uid, gid --------------------------------------------

for spec in "022 444 555" "0227 440 550" "0777 0 0"; do
  read -r um fmode dmode <<<"$spec"
  if mount_fg "umask$um" escape.sstable -o "umask=$um"; then
    run stat -c %a "$MNT/k/sub" "$MNT/k"
    check "-o umask=$um: files $fmode, directories $dmode" ok_and_out_is \
      "$(printf '%s\n%s' "$fmode" "$dmode")"
    unmount_fg "umask$um"
  fi
done

if mount_fg owner escape.sstable -o uid=1234,gid=4321; then
  run stat -c '%u %g' "$MNT/k/sub" "$MNT/k" "$MNT"
  check "-o uid=1234,gid=4321" ok_and_out_is \
    "$(printf '1234 4321\n1234 4321\n1234 4321')"
  unmount_fg owner
fi

# ---- an empty table, a big directory ---------------------------------------

if mount_fg empty empty.sstable; then
  run ls "$MNT"
  check "ls of an empty table's mount: empty, status 0" ok_and_out_is ""
  run ls -a "$MNT"
  check "ls -a of an empty table's mount: . and .." ok_and_out_is \
    "$(printf '.\n..')"
  run stat -f -c %c "$MNT"
  check "statfs of an empty table: 0 inodes" ok_and_out_is 0
  unmount_fg empty
fi

if mount_fg bigdir bigdir.sstable; then
  run ls "$MNT/big"
  check "ls of a 5000-name directory lists every name once" eval \
    'status_is 0 && [ "$(wc -l <out)" -eq 5000 ] && sort out | cmp -s - bigdir.names'
  run ls "$MNT"
  check "ls around the big directory" ok_and_out_is \
    "$(printf 'big\nbig-before\nbig0')"
  unmount_fg bigdir
fi
if mount_fg bigdirplus bigdir.sstable; then
  run ls -l "$MNT/big"
  check "ls -l of the 5000-name directory: every name, every size" eval \
    'status_is 0 && [ "$(grep -c "^-r--r--r--" out)" -eq 5000 ] &&
     [ "$(awk "/^-/ { s += \$5 } END { print s }" out)" -eq "$bigdir_bytes" ]'
  unmount_fg bigdirplus
fi

# The daemon's memory stays small whatever is listed or read: a table of
# 48 MiB (4,000 values of 12 KiB in 40 folders, and two of 4 MiB), listed
# with ls -lR and read whole with cat, leaves the daemon's peak resident
# set (VmHWM) under 16 MiB. The table's pages it maps are given back past
# a limit (fs/sstfs.c, trim). Not in a sanitizer build, whose shadow
# memory is resident memory too.
awk 'BEGIN {
  v = "mmmmmmmmmmmm"; while (length(v) < 12288) v = v v
  for (i = 0; i < 4000; i++) printf "d%02d/f%04d,%s%d\n", i % 40, i, v, i
}' >mem.csv
head -c 4194304 /dev/urandom | base64 -w 0 | head -c 4194304 >mem.big
{ printf 'big/a,'; cat mem.big; printf '\nbig/b,'; cat mem.big; echo; } >>mem.csv
run "$SST" build -o mem.sstable mem.csv
check "build the 48 MiB table" status_is 0
if grep -qa __asan_ "$SSTFS"; then
  echo "# daemon memory: not measured in a sanitizer build"
elif [ -n "${SSTFS_UNDER_VALGRIND:-}" ]; then
  echo "# daemon memory: not measured under valgrind (scripts/valgrind)"
elif mount_fg mem mem.sstable; then
  ls -lR "$MNT" >/dev/null && cat "$MNT"/*/* >/dev/null
  run cat "$MNT"/*/*
  hwm=$(awk '$1 == "VmHWM:" { print $2 }' "/proc/${daemon[mem]}/status")
  check "ls -lR and cat of a 48 MiB table: daemon VmHWM ${hwm:-?} KiB < 16 MiB" \
    eval 'status_is 0 && [ "$(wc -c <out)" -gt 56000000 ] && [ "${hwm:-99999}" -lt 16384 ]'
  unmount_fg mem
fi

# Threads: a mount of local tables is served by one thread, even to
# three readers that ask at once; -o threads gives it libfuse's pool, which
# starts a worker beside the thread that waits for the unmount; -s with
# -o threads is a usage error. threads NAME: daemon NAME's thread count.
threads() { awk '$1 == "Threads:" { print $2 }' "/proc/${daemon[$1]}/status"; }
# three_readers: reads at once from three places of the mount; sets bad
# to 1 if any read failed.
three_readers() {
  local a b
  bad=0
  cat "$MNT"/d0*/* >/dev/null &
  a=$!
  cat "$MNT"/d1*/* >/dev/null &
  b=$!
  cat "$MNT"/big/* >/dev/null || bad=1
  wait "$a" || bad=1
  wait "$b" || bad=1
}
if mount_fg onethread mem.sstable; then
  three_readers
  n=$(threads onethread)
  check "local tables, three readers at once: one thread serves (${n:-?})" \
    eval '[ "$bad" -eq 0 ] && [ "${n:-0}" -eq 1 ]'
  unmount_fg onethread
fi
if mount_fg pool mem.sstable -o threads; then
  three_readers
  n=$(threads pool)
  check "-o threads: a pool serves (${n:-?} threads)" \
    eval '[ "$bad" -eq 0 ] && [ "${n:-0}" -ge 2 ]'
  unmount_fg pool
fi
mkdir -p "$WORK/mnt/contra"
mounts+=("$WORK/mnt/contra") # unmounted at exit, should it ever mount
run "$SSTFS" -s -o threads mem.sstable "$WORK/mnt/contra"
check "-s with -o threads: a usage error that says why" eval \
  'status_is 2 && err_has "-s and -o threads contradict each other"'

# How listings reach the daemon, read from its -d log: the first batch of a
# directory comes with attributes (READDIRPLUS) but is small, so find,
# which never stats, gets the rest as plain names; directories are opened
# without a request (the first OPENDIR is answered ENOSYS), and the kernel
# keeps every listing, so the second listing makes none; ls -l of a
# directory not listed before gets attributes in bulk, with no LOOKUP per
# file. requests LOG OPCODE: how many daemon LOG has logged so far.
requests() { grep -c "opcode: $2 " "log/$1"; }
listings() { echo $(($(requests "$1" READDIR) + $(requests "$1" READDIRPLUS))); }
if mount_fg rdplus bigdir.sstable -d; then
  run find "$MNT/big"
  check "find of the 5000-name directory: every name" eval \
    'status_is 0 && [ "$(wc -l <out)" -eq 5001 ]'
  check "find: one small READDIRPLUS, the rest plain READDIR" eval \
    '[ "$(requests rdplus READDIRPLUS)" -eq 1 ] &&
     [ "$(requests rdplus READDIR)" -ge 1 ] &&
     [ "$(grep -A1 "opcode: READDIRPLUS " log/rdplus |
          sed -n "s/.*outsize: //p")" -le 1024 ]'
  check "directories opened with one OPENDIR in all, no RELEASEDIR" eval \
    '[ "$(requests rdplus OPENDIR)" -le 1 ] &&
     [ "$(requests rdplus RELEASEDIR)" -eq 0 ]'
  listed=$(listings rdplus)
  run ls "$MNT/big"
  again=""
  # The kernel keeps this cache in the directory's page cache and may
  # drop it under memory pressure (ctest -j2 beside the other suites):
  # then one more listing must come from the cache, and the check's name
  # says it was retried.
  if [ "$(listings rdplus)" -ne "$listed" ]; then
    listed=$(listings rdplus)
    run ls "$MNT/big"
    again=" (on a second try: the first reached the daemon)"
  fi
  check "a second listing: from the kernel's cache, same names$again" eval \
    'status_is 0 && sort out | cmp -s - bigdir.names &&
     [ "$(listings rdplus)" -eq "$listed" ]'
  unmount_fg rdplus
  mv log/rdplus rdplus.log && : >log/rdplus # the debug lines are no finding
fi
if mount_fg rdplus_l bigdir.sstable -d; then
  run ls -l "$MNT/big"
  check "ls -l of it, listed first: every name and size, no LOOKUP per file" \
    eval 'status_is 0 && [ "$(grep -c "^-r--r--r--" out)" -eq 5000 ] &&
     [ "$(awk "/^-/ { s += \$5 } END { print s }" out)" -eq "$bigdir_bytes" ] &&
     [ "$(requests rdplus_l LOOKUP)" -le 2 ]'
  unmount_fg rdplus_l
  mv log/rdplus_l rdplus_l.log && : >log/rdplus_l
fi

# ---- a damaged value -------------------------------------------------------

cp tree.sstable badvalue.sstable
grep -obUa 'UNIQUE-VICTIM-f3a91c0e77b2' badvalue.sstable | cut -d: -f1 >victim.at
check "the victim value is in the table once" [ "$(wc -l <victim.at)" -eq 1 ]
flip_byte badvalue.sstable "$(($(head -n 1 victim.at) + 7))"
if mount_fg badvalue badvalue.sstable; then
  expect[badvalue]=1
  run cat "$MNT/victim.txt"
  check "cat of a damaged value: Input/output error" eval \
    'status_is 1 && err_has "Input/output error" && [ ! -s out ]'
  check "other files, in the same key block too, still read" same_files \
    plain.txt big.bin zeros "with space" "trailing space "
  run cat "$MNT/victim.txt"
  check "a second cat fails the same" eval \
    'status_is 1 && err_has "Input/output error"'
  grep -v "$threads_noise" log/badvalue >err
  check "the log names the key, on one line" eval \
    '[ "$(wc -l <err)" -eq 1 ] && grep -q "key .victim.txt.: checksum" err'
  sleep 0.2
  check "the daemon keeps serving" eval 'alive "${daemon[badvalue]}" &&
    cmp -s src/many/d03/f07 "$MNT/many/d03/f07"'
  unmount_fg badvalue
fi

# ---- refusals: nothing is mounted ------------------------------------------

# A refused command that mounted all the same is unmounted at once, so
# that one failure does not spoil the next check.
refused() {
  is_mounted "$1" && fusermount3 -u "$1"
  return 0
}

MNT=$WORK/mnt/refused
mkdir -p "$MNT"
mounts+=("$MNT" "$WORK/mnt/no-such-dir" "$WORK/src/plain.txt")
run "$SSTFS" "$WORK/missing.sstable" "$MNT"
check "a missing table fails the command" eval \
  '[ "$rc" -ne 0 ] && err_has missing.sstable && ! is_mounted "$MNT"'
refused "$MNT"

size=$(wc -c <tree.sstable)
for back in 128 120 100 12 1; do
  cp tree.sstable badfooter.sstable
  flip_byte badfooter.sstable $((size - back))
  run "$SSTFS" badfooter.sstable "$MNT"
  check "a footer byte flipped $back bytes from the end fails the command" eval \
    '[ "$rc" -ne 0 ] && [ -s err ] && ! is_mounted "$MNT"'
  refused "$MNT"
done

run "$SSTFS" tree.sstable "$WORK/mnt/no-such-dir"
check "a missing mount point fails the command" eval \
  '[ "$rc" -ne 0 ] && err_has no-such-dir && ! is_mounted "$WORK/mnt/no-such-dir"'
refused "$WORK/mnt/no-such-dir"
run "$SSTFS" tree.sstable "$WORK/src/plain.txt"
check "a file as mount point fails the command" eval \
  '[ "$rc" -ne 0 ] && [ -s err ] && ! is_mounted "$WORK/src/plain.txt"'
refused "$WORK/src/plain.txt"

# ---- signals ---------------------------------------------------------------

for sig in TERM INT; do
  if mount_fg "sig$sig" tree.sstable; then
    kill -s "$sig" "${daemon[sig$sig]}"
    reap "sig$sig"
    check "SIG$sig: the daemon ends and the mount is gone" eval \
      '[ "${status[sig$sig]}" != timeout ] && ! is_mounted "$MNT"'
  fi
done

# ---- the daemons' logs -----------------------------------------------------

for d in "${!daemon[@]}"; do
  [ -n "${status[$d]:-}" ] || unmount_fg "$d"
done
noisy=0
for d in $(printf '%s\n' "${!daemon[@]}" | sort); do
  : >err
  rc=${status[$d]}
  check "daemon $d exited 0" [ "$rc" = 0 ]
  grep -v "$threads_noise" "log/$d" >err
  check "daemon $d: log as expected, no sanitizer report" eval \
    '[ "$(wc -l <err)" -eq "${expect[$d]}" ] &&
     ! grep -qE "Sanitizer|runtime error|SUMMARY:" err'
  grep -q "$threads_noise" "log/$d" && noisy=$((noisy + 1))
done
grep -h "$threads_noise" log/* 2>/dev/null | head -n 1 >err
check "no daemon logs libfuse's 'invalid max threads' line ($noisy did)" \
  [ "$noisy" -eq 0 ]

[ "$skipped" -eq 0 ] || echo "# $skipped skipped"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
