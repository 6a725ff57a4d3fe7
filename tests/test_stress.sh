#!/usr/bin/env bash
# test_stress.sh — the read-only mount under load: 16 reader processes at
# once for a bounded time, every byte checked, and the daemon's memory
# flat from the first pass to the end.
#
# Usage: bash tests/test_stress.sh BINDIR [SECONDS [OPTION...]]
#   BINDIR   holds sst and sstfs
#   SECONDS  length of the random phase (default 20)
#   OPTION   given to the daemon: -o threads runs the same load on
#            libfuse's pool of threads (a mount of a file is served by one
#            thread otherwise)
#
# A generated tree (a few thousand files of 0 to 64 KiB in nested
# directories, a few of 1 to 4 MiB) is packed with `sst pack` and mounted
# by a foreground daemon logging to a file. Then:
#   1. first pass: 16 readers share the tree, each reading its files whole
#      (through the daemon: O_DIRECT, in pieces of random sizes), stat-ing
#      them and listing its directories; then a warm-up round of step 2;
#   2. random phase: 16 readers for SECONDS doing random lookups (names
#      that exist and names that do not), listings of random directories
#      and reads of random byte ranges, two thirds of them with O_DIRECT
#      or after dropping the file's cached pages, so that the daemon
#      serves them rather than the page cache.
# Every answer is compared with the source tree. The daemon's VmRSS, VmHWM
# and RssAnon are taken after the first pass and at the end: RssAnon at the
# end may exceed the first pass by ANON_SLACK_KIB at most, plus
# THREAD_SLACK_KIB for each worker thread the daemon started in between
# (see below). The daemon's log must stay empty and it must exit 0 once
# unmounted.
#
# The first pass ends with a warm-up round of the random mix (SECONDS),
# because the daemon's anonymous memory grows during its first seconds of
# random reads and then levels off: libfuse copies each reply shorter than
# two pages into a page-aligned buffer (posix_memalign, free), which
# fragments each worker thread's malloc arena to about 1 MiB. That growth
# is bounded by the thread count (libfuse starts workers as the load asks,
# hence the allowance per added thread); a leak grows with the operations,
# and the measured round after the warm-up catches it. The RssAnon after
# the whole-tree read alone is printed too, so the warm-up growth stays
# visible. With a sanitizer build of the daemon the memory check is
# skipped (its quarantine grows by design); the log check then catches any
# sanitizer report.
#
# Prints "ok - NAME" or "not ok - NAME" per check, the line
# "stress: N operations, M mismatches, RssAnon first pass X KiB, end Y KiB",
# then "N passed, M failed". Exits non-zero if a check failed, 77 when FUSE
# or python3 is not available here.
#
# Functions run from the trap and through `check` look unreachable to the
# linter (SC2317); the perl line's $ signs are perl's (SC2016).
# shellcheck disable=SC2016,SC2317
set -u
# shellcheck source=tests/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
TESTS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

BIN=${1:?usage: test_stress.sh BINDIR [SECONDS [OPTION...]]}
SECONDS_RANDOM=${2:-20}
DAEMON_OPTS=("${@:3}")
SECONDS_WARMUP=$SECONDS_RANDOM
case $BIN in /*) ;; *) BIN=$PWD/$BIN ;; esac
SST=$BIN/sst
SSTFS=$BIN/sstfs
READERS=16
ANON_SLACK_KIB=2048
THREAD_SLACK_KIB=1536 # for each worker thread the daemon added
export LC_ALL=C

require_fuse
if ! command -v python3 >/dev/null 2>&1; then
  echo "SKIP: python3 is not installed"
  exit 77
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/sst-stress.XXXXXX") || exit 1
cd "$WORK" || exit 1
MNT=$WORK/mnt
mkdir "$MNT" out

passed=0
failed=0
daemon_pid=
readers=()

cleanup() {
  local pid
  for pid in "${readers[@]}"; do
    kill "$pid" 2>/dev/null
  done
  if is_mounted "$MNT"; then
    for _ in 1 2 3 4 5; do
      fusermount3 -u "$MNT" 2>/dev/null && break
      sleep 0.2
    done
    is_mounted "$MNT" && fusermount3 -uz "$MNT" 2>/dev/null
  fi
  if [ -n "$daemon_pid" ] && alive "$daemon_pid"; then
    kill "$daemon_pid" 2>/dev/null
  fi
  cd / || return
  # Never recurse into a mount that is somehow still there.
  if ! grep -qF " $WORK/" /proc/self/mounts; then
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# check NAME TEST...: passes when TEST succeeds; DETAILS (a file) is shown
# after a failure.
DETAILS=/dev/null
check() {
  local name=$1
  shift
  if "$@"; then
    echo "ok - $name"
    passed=$((passed + 1))
  else
    echo "not ok - $name"
    sed 's/^/#   /' "$DETAILS" 2>/dev/null | head -n 10
    failed=$((failed + 1))
  fi
  DETAILS=/dev/null
}

finish() {
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
  exit
}

# kib FIELD: a field of the daemon's /proc status (in KiB for sizes).
kib() { awk -v f="$1:" '$1 == f { print $2 }' "/proc/$daemon_pid/status"; }

# ---- the tree ----------------------------------------------------------------



mkdir src
python3 "$TESTS/stress_tree.py" src 3000 2>gen.err
DETAILS=gen.err
check "generate the source tree" [ -s src/big/big3.bin ]
(
  cd src || exit 1
  find . -type f -printf 'f\t%s\t%P\n'
  find . -type d -printf 'd\t0\t%P\n'
) >manifest
nfiles=$(grep -c '^f' manifest)
"$SST" pack -q src table.sst 2>pack.err
rc=$?
DETAILS=pack.err
packed() { [ "$rc" -eq 0 ] && [ -s table.sst ]; }
check "pack $nfiles files ($(du -sk src | cut -f1) KiB)" packed
[ "$failed" -eq 0 ] || finish

# ---- the mount ---------------------------------------------------------------

# The daemon as a child whose SIGINT is not ignored (a shell starts
# background commands with SIGINT ignored); the wrapper execs the daemon,
# so $! is its pid.
if env --default-signal=INT true 2>/dev/null; then
  fg_daemon=(env --default-signal=INT "$SSTFS" -f)
else
  fg_daemon=(perl -e '$SIG{INT} = "DEFAULT"; exec @ARGV or exit 127'
    "$SSTFS" -f)
fi
"${fg_daemon[@]}" ${DAEMON_OPTS[@]+"${DAEMON_OPTS[@]}"} table.sst "$MNT" 2>daemon.log &
daemon_pid=$!
for ((i = 0; i < 200; i++)); do
  is_mounted "$MNT" && break
  alive "$daemon_pid" || break
  sleep 0.05
done
DETAILS=daemon.log
check "mount the table" is_mounted "$MNT"
is_mounted "$MNT" || finish

# run_phase MODE SECONDS: READERS readers at once; sums their results
# into $ops and $mismatches; failed readers count as mismatches.
run_phase() {
  local i pid bad=0 o m
  readers=()
  for ((i = 0; i < READERS; i++)); do
    READERS=$READERS python3 "$TESTS/stress_reader.py" "$MNT" src manifest "$1" "$i" "$2" \
      "out/$1.$i" 2>"out/$1.$i.err" &
    readers+=($!)
  done
  for pid in "${readers[@]}"; do
    wait "$pid" || bad=$((bad + 1))
  done
  readers=()
  phase_ops=0
  phase_mismatches=$bad
  for ((i = 0; i < READERS; i++)); do
    if read -r o m <"out/$1.$i" 2>/dev/null; then
      phase_ops=$((phase_ops + o))
      phase_mismatches=$((phase_mismatches + m))
    else
      phase_mismatches=$((phase_mismatches + 1))
    fi
  done
  cat out/"$1".*.err >"out/$1.errors"
}

run_phase first 0
DETAILS=out/first.errors
check "first pass: $nfiles files read whole, $phase_ops operations, every byte right" \
  [ "$phase_mismatches" -eq 0 ]
ops=$phase_ops
mismatches=$phase_mismatches
anon_tree=$(kib RssAnon)

run_phase warmup "$SECONDS_WARMUP"
DETAILS=out/warmup.errors
check "first pass: warm-up of ${SECONDS_WARMUP}s, $phase_ops operations, no mismatch" \
  [ "$phase_mismatches" -eq 0 ]
ops=$((ops + phase_ops))
mismatches=$((mismatches + phase_mismatches))
rss_first=$(kib VmRSS) hwm_first=$(kib VmHWM) anon_first=$(kib RssAnon)
threads_first=$(kib Threads)

run_phase random "$SECONDS_RANDOM"
DETAILS=out/random.errors
check "random phase: ${SECONDS_RANDOM}s, $phase_ops operations, no mismatch" \
  [ "$phase_mismatches" -eq 0 ]
ops=$((ops + phase_ops))
mismatches=$((mismatches + phase_mismatches))
rss_end=$(kib VmRSS) hwm_end=$(kib VmHWM) anon_end=$(kib RssAnon)
threads_end=$(kib Threads)

echo "# daemon RssAnon after reading the whole tree: $anon_tree KiB"
echo "# daemon after the first pass: VmRSS $rss_first KiB," \
  "VmHWM $hwm_first KiB, RssAnon $anon_first KiB, $threads_first threads"
echo "# daemon at the end:           VmRSS $rss_end KiB," \
  "VmHWM $hwm_end KiB, RssAnon $anon_end KiB, $threads_end threads"
added=$((${threads_end:-0} - ${threads_first:-0}))
[ "$added" -gt 0 ] || added=0
slack=$((ANON_SLACK_KIB + added * THREAD_SLACK_KIB))
anon_flat() {
  [ -n "$anon_first" ] && [ -n "$anon_end" ] &&
    [ "$anon_end" -le $((anon_first + slack)) ]
}
# A sanitizer's quarantine and shadow memory are anonymous memory too.
if grep -qa __asan_ "$SSTFS"; then
  echo "# daemon RssAnon: compared in the non-sanitizer build only"
else
  check "daemon RssAnon at the end is within $slack KiB of the first pass" \
    anon_flat
fi

# ---- the end -----------------------------------------------------------------

for _ in 1 2 3 4 5 6 7 8 9 10; do
  is_mounted "$MNT" || break
  fusermount3 -u "$MNT" 2>/dev/null && break
  sleep 0.2
done
for ((i = 0; i < 200; i++)); do
  alive "$daemon_pid" || break
  sleep 0.05
done
if alive "$daemon_pid"; then
  status=timeout
else
  wait "$daemon_pid"
  status=$?
fi
daemon_pid=
DETAILS=daemon.log
check "daemon exited 0 once unmounted (status $status)" [ "$status" = 0 ]
DETAILS=daemon.log
check "daemon log is empty" [ ! -s daemon.log ]

echo "stress: $ops operations, $mismatches mismatches," \
  "RssAnon first pass ${anon_first:-?} KiB, end ${anon_end:-?} KiB"
finish
