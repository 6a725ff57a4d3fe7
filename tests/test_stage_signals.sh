#!/usr/bin/env bash
# test_stage_signals.sh BINDIR — a staging daemon stopped by a signal
# writes no table, and a resume never commits a half-written file without
# saying so.
#
# What it shows:
#  - SIGTERM, then SIGINT, in the middle of a cp -a: the daemon exits 1,
#    says in its log that nothing was committed, OUT does not exist, the
#    area is kept; sstfs --unmount and a new start say why; -o resume and
#    a second cp -a then commit the whole tree (diff -r);
#  - SIGKILL while a file is open for writing: the resume names it with
#    its size and leaves it out of the mount and the table; a file closed
#    before, and one fsynced and still open, are kept; sstfs --unmount
#    names the file left out; a file written again after the resume is
#    committed and not reported;
#  - with -o keep_incomplete the half-written file is kept as it was.
# shellcheck disable=SC2016
set -u
# shellcheck source=tests/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
BIN=$(cd "${1:?usage: test_stage_signals.sh BINDIR}" && pwd)
TESTS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SST=$BIN/sst
SSTFS=$BIN/sstfs
require_fuse
command -v python3 >/dev/null || {
  echo "SKIP: python3 is needed to hold a file open"
  exit 77
}

passed=0 failed=0 skipped=0 rc=0
work_dir stage-signals
mkdir m log

# The source tree: 3,000 small files in 30 folders.
python3 "$TESTS/make_tree.py" src 30 100 4000 7

# start_fg LOG ARG...: `sstfs -f --stage ARG...` with stderr in log/LOG,
# SIGINT not ignored (a shell starts background jobs with it ignored);
# sets $pid. Fails unless the mount appears.
start_fg() {
  local name=$1
  shift
  env --default-signal=INT "$SSTFS" -f --stage "$@" -o nouring \
    2>"log/$name" </dev/null &
  pid=$!
  own_daemon "$pid"
  wait_mounted "$WORK/m" "$pid"
}

# stop_during_copy SIG: starts a cp -a of src into the mount and sends SIG
# to the daemon once part of it is there; $status receives the daemon's
# exit status, $copied how many files were in the area then.
stop_during_copy() {
  local sig=$1 i
  cp -a src/. m/ 2>/dev/null &
  local copier=$!
  for ((i = 0; i < 400; i++)); do
    [ "$(find out.sstable.stage/tree -type f 2>/dev/null | wc -l)" -ge 300 ] && break
    sleep 0.02
  done
  copied=$(find out.sstable.stage/tree -type f | wc -l)
  kill "-$sig" "$pid"
  gone "$pid"
  wait "$pid"
  status=$?
  wait "$copier"
}

for sig in TERM INT; do
  if ! start_fg "$sig" out.sstable m $([ "$sig" = INT ] && echo -o resume); then
    check "SIG$sig: staging mount" false
    continue
  fi
  stop_during_copy "$sig"
  check "SIG$sig during cp -a ($copied files staged): the daemon exits 1, unmounted" eval \
    '[ "$status" = 1 ] && ! is_mounted "$WORK/m"'
  check "SIG$sig: no table at OUT, the staging area is kept" eval \
    '[ ! -e out.sstable ] && [ -d out.sstable.stage/tree ] && [ "$copied" -gt 0 ]'
  check "SIG$sig: the log says nothing was committed and how to resume" eval \
    'grep -q "stopped by SIG$sig: .*out.sstable was not written" "log/$sig" &&
     grep -q -- "-o resume" "log/$sig" && sanitizer_free "log/$sig"'
  run "$SSTFS" --unmount m
  check "SIG$sig: sstfs --unmount of the mount that is gone says why" eval \
    'status_is 1 && err_has "not mounted" && err_has "stopped by SIG$sig"'
  run "$SSTFS" --stage out.sstable m -o nouring
  check "SIG$sig: a new start says why and asks for -o resume" eval \
    'status_is 1 && err_has "stopped by SIG$sig" && err_has "-o resume" &&
     ! is_mounted "$WORK/m"'
done

if start_fg resume out.sstable m -o resume; then
  cp -a src/. m/
  run "$SSTFS" --unmount m
  check "after the signals: -o resume, cp -a again, sstfs --unmount exits 0" status_is 0
  gone "$pid"
  "$SST" unpack out.sstable unpacked >/dev/null 2>&1
  check "the table holds the whole tree (diff -r)" diff -r src unpacked
  # A file being copied at the signal is named by the resume, copied again.
  check "the resumed daemon's log has no sanitizer report" sanitizer_free log/resume
else
  check "resume after the signals" false
fi

# ---- SIGKILL while files are open for writing

kill_with_open_files() { # OUT LOGNAME [OPTIONS]
  local out=$1 name=$2 i
  shift 2
  start_fg "$name" "$out" m "$@" || return 1
  echo done >m/closed
  mkdir m/dir
  python3 "$TESTS/hold_open.py" m/dir/half 3145728 >ready.half &
  local h1=$!
  python3 "$TESTS/hold_open.py" m/synced 65536 fsync >ready.synced &
  local h2=$!
  for ((i = 0; i < 200; i++)); do
    [ -s ready.half ] && [ -s ready.synced ] && break
    sleep 0.05
  done
  kill -9 "$pid"
  wait "$pid" 2>/dev/null
  kill "$h1" "$h2" 2>/dev/null
  wait "$h1" "$h2" 2>/dev/null
  fusermount3 -u m 2>/dev/null || fusermount3 -uz m
  rm -f ready.half ready.synced
}

if kill_with_open_files k.sstable kill; then
  run "$SSTFS" --stage k.sstable m -o nouring,resume
  check "SIGKILL: the resume names the half-written file with its size" eval \
    'status_is 0 && err_has "1 file was open for writing" &&
     err_has "dir/half (3145728 bytes)" && ! err_has "synced" &&
     ! err_has "closed"'
  own_area k.sstable.stage
  check "SIGKILL: the half-written file is out of the mount, kept aside" eval \
    '[ ! -e m/dir/half ] && [ -f k.sstable.stage/incomplete/dir/half ] &&
     [ "$(cat m/closed)" = done ] && [ "$(stat -c %s m/synced)" = 65536 ]'
  echo again >m/written-again
  run "$SSTFS" --unmount m
  check "SIGKILL: sstfs --unmount exits 0 and names the file left out" eval \
    'status_is 0 && err_has "not in the table" && err_has "dir/half"'
  run "$SST" dump --escape k.sstable
  check "SIGKILL: the table leaves the half-written file out, keeps the others" eval \
    '! out_has "dir/half" && out_has "closed,done" && out_has "written-again,again" &&
     [ "$("$SST" get k.sstable synced | wc -c)" = 65536 ]'
else
  check "SIGKILL: staging mount" false
fi

if kill_with_open_files k2.sstable kill2; then
  run "$SSTFS" --stage k2.sstable m -o nouring,resume
  own_area k2.sstable.stage
  check "SIGKILL again: the resume names the half-written file" eval \
    'status_is 0 && err_has "dir/half"'
  mkdir -p m/dir && head -c 100 /dev/zero >m/dir/half
  run "$SSTFS" --unmount m
  check "SIGKILL again: a file written again after the resume is committed, not reported" eval \
    'status_is 0 && ! err_has "not in the table" &&
     [ "$("$SST" get k2.sstable dir/half | wc -c)" = 100 ]'
else
  check "SIGKILL (written again): staging mount" false
fi

if kill_with_open_files k3.sstable kill3; then
  run "$SSTFS" --stage k3.sstable m -o nouring,resume,keep_incomplete
  own_area k3.sstable.stage
  check "-o keep_incomplete: the file is named, and kept as it was" eval \
    'status_is 0 && err_has "dir/half (3145728 bytes)" && err_has "kept as they are" &&
     [ "$(stat -c %s m/dir/half)" = 3145728 ]'
  run "$SSTFS" --unmount m
  check "-o keep_incomplete: the table holds it" eval \
    'status_is 0 && [ "$("$SST" get k3.sstable dir/half | wc -c)" = 3145728 ]'
else
  check "-o keep_incomplete: staging mount" false
fi

summary
