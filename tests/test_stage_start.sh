#!/usr/bin/env bash
# test_stage_start.sh BINDIR — starts that fail leave nothing behind and say
# why; a commit that failed is reported where the user looks next.
#
# What it shows:
#  - a mount point that is a regular file, or missing: exit 1 with one
#    line naming it and the real reason, no usage text, no staging area or
#    OUT.lock left (read-only mounts likewise exit 1);
#  - a compression setting it does not take (-o compress=zstd:20): exit
#    2, saying what it takes, nothing mounted or left;
#  - /dev/fuse that cannot be opened (a mount namespace without it): exit 1,
#    no staging area left;
#  - a dead mount (its daemon killed): a new mount there says to run
#    sstfs --unmount, which clears it (read-only and staging);
#  - a FIFO given as a table or a base: refused at once, "not a regular
#    file", for sstfs, sstfs --stage --base and sst info;
#  - a commit that fails after fusermount3 -u, with no syslog to read:
#    sstfs --unmount, the next sstfs --stage and sst info each say that it
#    failed and why; a resume then commits.
# shellcheck disable=SC2016
set -u
# shellcheck source=tests/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
BIN=$(cd "${1:?usage: test_stage_start.sh BINDIR}" && pwd)
SST=$BIN/sst
SSTFS=$BIN/sstfs
require_fuse

passed=0 failed=0 skipped=0 rc=0
work_dir stage-start
mkdir m
printf 'a,1\nb/c,2\n' | "$SST" build -o t.sstable 2>/dev/null

# nothing_left NAMES: the work directory holds NAMES (and run's out, err).
nothing_left() { [ "$(ls -A | grep -vxE 'out|err' | tr '\n' ' ')" = "$1" ]; }
one_line() { [ "$(wc -l <err)" = 1 ] && ! err_has usage; }

# ---- bad mount points
touch file
run "$SSTFS" --stage o.sstable file -o nouring
check "--stage on a regular file: exit 1, 'Not a directory', one line" eval \
  'status_is 1 && err_has "mount point file: Not a directory" && one_line'
check "--stage on a regular file: no staging area or lock left" \
  nothing_left "file m t.sstable "
run "$SSTFS" --stage o.sstable nodir -o nouring
check "--stage on a missing mount point: exit 1, one line, no usage text" eval \
  'status_is 1 && err_has "mount point nodir: No such file or directory" && one_line'
check "--stage on a missing mount point: nothing left" nothing_left "file m t.sstable "
run "$SSTFS" t.sstable nodir
check "read-only on a missing mount point: exit 1, one line" eval \
  'status_is 1 && err_has "mount point nodir: No such file or directory" && one_line'

# ---- a bad compression setting
run "$SSTFS" --stage o.sstable m -o compress=zstd:20 -o nouring
check "--stage -o compress=zstd:20: exit 2, says what it takes" eval \
  'status_is 2 && err_has "compress=zstd:20: not zstd, zstd:LEVEL (1 to 19) or none" &&
   ! is_mounted "$WORK/m"'
check "--stage -o compress=zstd:20: nothing left" nothing_left "file m t.sstable "

# ---- /dev/fuse missing
if command -v unshare >/dev/null && [ "$(id -u)" -eq 0 ]; then
  run unshare -m sh -c 'mount -t tmpfs none /dev && exec "$0" --stage o.sstable m -o nouring' "$SSTFS"
  check "no /dev/fuse: exit 1 and the reason" eval \
    'status_is 1 && err_has "could not be mounted" && ! is_mounted "$WORK/m"'
  check "no /dev/fuse: no staging area or lock left" nothing_left "file m t.sstable "
else
  skip "no /dev/fuse" "needs root and unshare (util-linux)"
fi

# ---- dead mounts
"$SSTFS" -f t.sstable m 2>/dev/null &
pid=$!
own_daemon "$pid"
if wait_mounted "$WORK/m" "$pid"; then
  kill -9 "$pid"
  wait "$pid" 2>/dev/null
  run "$SSTFS" t.sstable m
  check "over a dead mount: exit 1, says to run sstfs --unmount" eval \
    'status_is 1 && err_has "Transport endpoint is not connected" &&
     err_has "sstfs --unmount m" && one_line'
  run "$SSTFS" --stage o.sstable m -o nouring
  check "--stage over a dead mount: the same, nothing left" eval \
    'status_is 1 && err_has "sstfs --unmount m" && nothing_left "file m t.sstable "'
  run "$SSTFS" --unmount m
  check "sstfs --unmount clears a dead read-only mount" eval \
    'status_is 0 && ! is_mounted "$WORK/m"'
  run "$SSTFS" t.sstable m
  check "then a mount there works" eval 'status_is 0 && [ "$(cat m/a)" = 1 ]'
  own_daemon "$(pgrep -nf "sstfs t.sstable m")"
  fusermount3 -u m
else
  check "read-only mount for the dead-mount case" false
fi

"$SSTFS" -f --stage dead.sstable m -o nouring 2>/dev/null &
pid=$!
own_daemon "$pid"
if wait_mounted "$WORK/m" "$pid"; then
  echo x >m/x
  kill -9 "$pid"
  wait "$pid" 2>/dev/null
  run "$SSTFS" --unmount m
  check "sstfs --unmount of a dead staging mount: exit 1, clears it, says how to resume" eval \
    'status_is 1 && ! is_mounted "$WORK/m" && err_has "without writing" &&
     err_has "-o resume" && [ -f dead.sstable.stage/tree/x ]'
else
  check "staging mount for the dead-mount case" false
fi

# ---- FIFOs
mkfifo fifo
run timeout 10 "$SSTFS" fifo m
check "a FIFO as TABLE: refused at once" eval \
  'status_is 1 && err_has "not a regular file" && ! is_mounted "$WORK/m"'
run timeout 10 "$SSTFS" --stage f.sstable m --base fifo -o nouring
check "a FIFO as --base: refused at once, nothing left" eval \
  'status_is 1 && err_has "not a regular file" && [ ! -e f.sstable.stage ]'
run timeout 10 "$SST" info fifo
check "sst info of a FIFO: refused at once" eval \
  'status_is 1 && err_has "not a regular file"'
rm fifo

# ---- a failed commit, after fusermount3 -u, with no syslog
run "$SSTFS" --stage bad.sstable m -o nouring
own_area bad.sstable.stage
echo fine >m/fine
echo bad >'m/%=' # a name that is no key: the commit fails
fusermount3 -u m
gone "$pid"
check "a failed commit: no table, the area kept with its reason" eval \
  '[ ! -e bad.sstable ] && grep -q "cannot be a key" bad.sstable.stage/error'
run "$SSTFS" --unmount m
check "a failed commit: sstfs --unmount (mount gone) says it failed and why" eval \
  'status_is 1 && err_has "not mounted" && err_has "cannot be a key" &&
   err_has "bad.sstable"'
run "$SSTFS" --stage bad.sstable m -o nouring
check "a failed commit: the next sstfs --stage says it failed and why" eval \
  'status_is 1 && err_has "ended without writing it" && err_has "cannot be a key"'
run "$SST" info bad.sstable
check "a failed commit: sst info says it failed and why" eval \
  'status_is 1 && err_has "No such file or directory" && err_has "cannot be a key" &&
   err_has "bad.sstable.stage"'
run "$SSTFS" --stage bad.sstable m -o nouring,resume
own_area bad.sstable.stage
rm -f 'm/%='
run "$SSTFS" --unmount m
check "a failed commit: after a resume without the bad name, it commits" eval \
  'status_is 0 && [ "$("$SST" get bad.sstable fine)" = fine ]'

summary
