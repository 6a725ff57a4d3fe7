#!/usr/bin/env bash
# test_mount_compress.sh — tables with compressed values (sst pack's
# default) through the read-only and the staging mount: the tree comes
# back as it was, reads at any offset of a large file are right, the
# detached daemon has the zstd decoder mapped before its first read and
# keeps nothing of what its rehearsal read (sstfs_rehearse), a
# damaged chunk fails the reads that touch it alone (EIO, one log line),
# and a staging mount over a compressed base reads it, changes it and
# commits compressed or not.
#
# Usage: bash tests/test_mount_compress.sh BINDIR    (BINDIR holds sst, sstfs)
#
# Prints "ok - NAME" or "not ok - NAME" per check, then "N passed, M
# failed". Exits non-zero if any check failed, 77 when FUSE is missing.
# Every mount lives under a fresh temporary directory ($WORK, see
# tests/lib.sh), unmounted at exit.
# shellcheck disable=SC2016,SC2034
set -u
# shellcheck source=tests/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BIN=${1:?usage: test_mount_compress.sh BINDIR}
case $BIN in /*) ;; *) BIN=$PWD/$BIN ;; esac
SST=$BIN/sst
SSTFS=$BIN/sstfs
export LC_ALL=C

require_fuse
for tool in rsync python3; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "SKIP: $tool is not installed (scripts/setup installs it)"
    exit 77
  fi
done

# libfuse's own lines, which are no finding.
noise='FUSE library version\|^Ignoring invalid max threads value\|^$'

passed=0
failed=0
skipped=0
rc=0
work_dir mount-compress

# mount_table MNT TABLE... [OPTS]: a foreground daemon, stderr in log/MNT.
mount_table() {
  local mnt=$1
  shift
  mkdir -p "$mnt" log
  "$SSTFS" -f "$@" "$mnt" 2>"log/$mnt" &
  own_daemon $!
  wait_mounted "$WORK/$mnt" $!
}
# zstd_rss PID: KiB of libzstd resident in process PID.
zstd_rss() {
  awk '/^[0-9a-f]+-[0-9a-f]+ / { z = /libzstd/; next }
       z && $1 == "Rss:" { kb += $2 } END { print kb + 0 }' "/proc/$1/smaps"
}
unmount() { fusermount3 -u "$WORK/$1"; }

# ---- the tree -----------------------------------------------------------------

python3 - <<'PY'
import os, random
random.seed(5)
os.makedirs("src/docs/a", exist_ok=True)
os.makedirs("src/docs/b", exist_ok=True)
os.makedirs("src/empty", exist_ok=True)
words = "alpha beta gamma delta epsilon zeta eta theta iota kappa".split()
for i in range(400):
    d = "src/docs/a" if i % 2 else "src/docs/b"
    with open(f"{d}/note{i:03d}.txt", "w") as f:
        f.write(" ".join(random.choice(words) for _ in range(50 + i)) + "\n")
lic = "Permission is hereby granted, free of charge, to any person\n" * 40
for d in ("src", "src/docs/a", "src/docs/b", "src/empty/.."):
    with open(f"{d}/LICENSE", "w") as f:
        f.write(lic)
with open("src/big.txt", "w") as f:
    for i in range(60000):
        f.write(f"line {i} of a large and compressible file\n")
data = bytearray(random.getrandbits(8) for _ in range(1 << 20))
data[700000:700000 + 24] = b"UNIQUE-CHUNK-MARK-5a1f2e"
with open("src/random.bin", "wb") as f:
    f.write(data)
open("src/zero-length", "w").close()
os.symlink("docs/a/note001.txt", "src/link")
os.link("src/big.txt", "src/big-hardlink.txt")
with open("src/secret", "w") as f:
    f.write("0600\n")
os.chmod("src/secret", 0o600)
PY

run "$SST" pack src c.sstable
check "pack compresses by default" eval 'status_is 0 && [ -s c.sstable ]'
"$SST" info c.sstable >info
check "info: zstd, a dictionary or none, identical files stored once" eval \
  'grep -q "^compression: zstd" info && grep -q "^compression dictionary:" info &&
   grep -q "^deduplicated: [1-9]" info'
src_bytes=$(du -sb --apparent-size src | cut -f1)
check "the table is far smaller than the tree" \
  [ "$(stat -c %s c.sstable)" -lt $((src_bytes / 3)) ]
run "$SST" verify c.sstable
check "verify" status_is 0
run "$SST" pack --compress none src n.sstable
check "--compress none: values as they are" eval \
  'status_is 0 && "$SST" info n.sstable | grep -q "^compression: none"'
run "$SST" pack --compress zstd:30 src bad.sstable
check "--compress zstd:30 is a usage error" eval \
  'status_is 2 && err_has "zstd:30" && [ ! -e bad.sstable ]'
run "$SST" unpack c.sstable back
check "unpack of it" status_is 0
run rsync -a -H -X -n -i -c src/ back/
check "rsync -aHXc finds no difference after unpack" eval \
  'status_is 0 && [ ! -s out ]'

# ---- read-only mount ---------------------------------------------------------------

# sst_reader_warm: a detached daemon (whose resident set holds only the
# pages it touched since its fork) has the decoder's code mapped when the
# mount command returns, before any read.
mkdir -p bg log
if "$SSTFS" c.sstable bg 2>log/bg; then
  pid=$(pgrep -nf -- "$SSTFS c.sstable bg")
  own_daemon "$pid"
  kb=$(zstd_rss "$pid")
  check "the zstd decoder is mapped before the first read ($kb KiB)" \
    [ "$kb" -ge 64 ]
  fusermount3 -u bg
  check "the detached daemon exits at unmount" gone "$pid"
else
  check "mount c.sstable detached" false
fi

# sstfs_rehearse: before the mount command returns, the detached daemon
# runs lookups and reads a byte of the first large file (code mapped for
# a first read after a drop of the page cache: docs/BENCHMARKS.md), then
# forgets what it read. Here that file is one chunk of random bytes: the
# chunk damaged after the mount must fail its first read (EIO), not be
# served from what the rehearsal read, and the daemon must serve the
# rest of the tree.
mkdir -p rsrc/sub
python3 - <<'PY'
import random
random.seed(9)
data = bytearray(random.getrandbits(8) for _ in range(100000))
data[50:50 + 24] = b"REHEARSAL-MARK-7c3e91d0a"[:24]
open("rsrc/a.bin", "wb").write(data)
open("rsrc/sub/small.txt", "w").write("a small file\n")
PY
"$SST" pack -q rsrc r.sstable
mkdir -p rmnt
if "$SSTFS" r.sstable rmnt 2>log/rmnt; then
  pid=$(pgrep -nf -- "$SSTFS r.sstable rmnt")
  own_daemon "$pid"
  at=$(grep -obUa 'REHEARSAL-MARK-7c3e91d0' r.sstable | head -n 1 | cut -d: -f1)
  byte=$(od -An -tu1 -j "$at" -N1 r.sstable | tr -d ' ')
  # shellcheck disable=SC2059
  printf "$(printf '\\%03o' $((byte ^ 255)))" |
    dd of=r.sstable bs=1 seek="$at" count=1 conv=notrunc 2>/dev/null
  run head -c 100 rmnt/a.bin
  check "after the rehearsal, a chunk damaged since the mount: EIO" eval \
    'status_is 1 && err_has "Input/output error"'
  run cat rmnt/sub/small.txt
  check "the rest of the tree reads" eval 'status_is 0 && grep -q small out'
  fusermount3 -u rmnt
  gone "$pid" || true
else
  check "mount r.sstable detached" false
fi

if mount_table mnt c.sstable; then
  run diff -r --no-dereference src mnt
  check "diff -r with the mount is empty" eval 'status_is 0 && [ ! -s out ]'
  run rsync -a -H -X -n -i -c src/ mnt/
  check "rsync -aHXc finds no difference in the mount" eval \
    'status_is 0 && [ ! -s out ]'
  run python3 - src/big.txt mnt/big.txt src/random.bin mnt/random.bin <<'PY'
import random, sys
random.seed(9)
for a, b in ((sys.argv[1], sys.argv[2]), (sys.argv[3], sys.argv[4])):
    want = open(a, "rb").read()
    with open(b, "rb") as f:
        for _ in range(300):
            off = random.randrange(len(want))
            n = random.choice((1, 100, 4096, 131072, 300000))
            f.seek(off)
            got = f.read(n)
            if got != want[off:off + n]:
                sys.exit(f"{b}: {n} bytes at {off} differ")
PY
  check "random reads in large values, across chunks, are right" status_is 0
  run head -c 100 mnt/big.txt
  check "head -c 100 of a large value" eval \
    'status_is 0 && [ "$(cat out)" = "$(head -c 100 src/big.txt)" ]'
  check "hard links share an inode" \
    [ "$(stat -c %i mnt/big.txt)" = "$(stat -c %i mnt/big-hardlink.txt)" ]
  unmount mnt
else
  check "mount the compressed table" false
fi

if mount_table small c.sstable -o block_cache=16K; then
  run diff -r src small
  check "-o block_cache=16K: reads still right" eval \
    'status_is 0 && [ ! -s out ]'
  unmount small
else
  check "mount with -o block_cache=16K" false
fi

# ---- a damaged chunk ---------------------------------------------------------------

cp c.sstable bad.sstable
grep -obUa 'UNIQUE-CHUNK-MARK-5a1f2e' bad.sstable | cut -d: -f1 >mark.at
check "the marked chunk is stored raw, once" [ "$(wc -l <mark.at)" -eq 1 ]
at=$(head -n 1 mark.at)
byte=$(od -An -tu1 -j "$at" -N1 bad.sstable | tr -d ' ')
# shellcheck disable=SC2059
printf "$(printf '\\%03o' $((byte ^ 255)))" |
  dd of=bad.sstable bs=1 seek="$at" count=1 conv=notrunc 2>/dev/null
if mount_table badmnt bad.sstable; then
  run dd if=badmnt/random.bin bs=4096 skip=170 count=1 status=none
  check "a read of the damaged chunk: Input/output error" eval \
    'status_is 1 && err_has "Input/output error"'
  run cmp <(head -c 131072 badmnt/random.bin) <(head -c 131072 src/random.bin)
  check "the first chunk of the same file still reads" status_is 0
  run diff -r --exclude=random.bin src badmnt
  check "every other file still reads" eval 'status_is 0 && [ ! -s out ]'
  cat badmnt/random.bin >/dev/null 2>&1
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    grep -q random.bin log/badmnt && break
    sleep 0.2
  done
  grep -v "$noise" log/badmnt >err
  check "the log names the key, on one line" eval \
    '[ "$(wc -l <err)" -eq 1 ] && grep -q "random.bin" err'
  : >log/badmnt
  unmount badmnt
else
  check "mount the damaged table" false
fi

# ---- staging over a compressed base ---------------------------------------------------

stage() { # OUT MNT OPTS...: a foreground staging daemon
  local out=$1 mnt=$2
  shift 2
  mkdir -p "$mnt" log
  "$SSTFS" -f --stage "$out" "$mnt" "$@" 2>"log/$mnt" &
  own_daemon $!
  stage_pid=$!
  wait_mounted "$WORK/$mnt" $!
}
for mode in zstd none; do
  rm -f "s-$mode.sstable"
  if stage "s-$mode.sstable" "st-$mode" --base c.sstable -o "compress=$mode"; then
    run cmp src/random.bin "st-$mode/random.bin"
    check "$mode: a base file reads through the staging mount" status_is 0
    echo more >>"st-$mode/big.txt"
    rm "st-$mode/docs/a/note001.txt"
    run "$SSTFS" --unmount "$WORK/st-$mode"
    wait "$stage_pid" 2>/dev/null
    check "$mode: commit" eval 'status_is 0 && [ -s s-'"$mode"'.sstable ]'
    "$SST" info "s-$mode.sstable" >info
    check "$mode: the committed table's compression is $mode" \
      grep -q "^compression: $mode" info
    cp -a src "src-$mode"
    echo more >>"src-$mode/big.txt"
    rm "src-$mode/docs/a/note001.txt"
    if mount_table "m-$mode" "s-$mode.sstable"; then
      run diff -r --no-dereference "src-$mode" "m-$mode"
      check "$mode: the committed tree is the changed one" eval \
        'status_is 0 && [ ! -s out ]'
      unmount "m-$mode"
    else
      check "$mode: mount the committed table" false
    fi
  else
    check "$mode: staging mount over the compressed base" false
  fi
done

# ---- the daemons' logs ---------------------------------------------------------------

for pid in "${own_pids[@]}"; do
  gone "$pid"
done
check "the daemons logged nothing else" eval \
  '! cat log/* | grep -v "$noise" | grep -q .'
grep -H . log/* 2>/dev/null | head -n 5 | sed 's/^/#   /'

summary
