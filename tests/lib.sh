# lib.sh — what the shell tests share: running a command, reporting a
# check, and watching mounts and daemons. Sourced by tests/test_*.sh,
# which keep their own counters: passed, failed, skipped, rc.
# shellcheck shell=bash

# run CMD...: runs a command with stdout in ./out, stderr in ./err, status
# in $rc.
run() {
  "$@" >out 2>err
  rc=$?
}

# check NAME TEST...: passes when TEST succeeds.
check() {
  local name=$1
  shift
  if "$@"; then
    echo "ok - $name"
    passed=$((passed + 1))
  else
    echo "not ok - $name"
    echo "#   last status $rc; stderr:"
    sed 's/^/#   /' err 2>/dev/null | head -n 5
    failed=$((failed + 1))
  fi
}

skip() {
  echo "ok - $1 # SKIP $2"
  skipped=$((skipped + 1))
}

status_is() { [ "$rc" -eq "$1" ]; }

out_is() { [ "$(cat out)" = "$1" ]; }

out_has() { grep -qF -- "$1" out; }

err_has() { grep -qF -- "$1" err; }

is_mounted() { awk -v m="$1" '$2 == m { found = 1 } END { exit !found }' /proc/self/mounts; }

# alive PID: the process runs (a zombie has ended).
alive() {
  local state
  state=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$state" ] && [ "$state" != Z ]
}

# waits until mount point $1 is mounted (or, with $2, daemon pid $2 has
# ended), at most 10 s.
wait_mounted() {
  local i
  for ((i = 0; i < 200; i++)); do
    is_mounted "$1" && return 0
    [ -n "${2:-}" ] && ! alive "$2" && return 1
    sleep 0.05
  done
  return 1
}

# require_fuse: exits 77 (SKIP, with the reason) where no FUSE mount can be
# made: no /dev/fuse or no fusermount3.
require_fuse() {
  if [ ! -c /dev/fuse ]; then
    echo "SKIP: /dev/fuse is missing"
    exit 77
  fi
  if ! command -v fusermount3 >/dev/null 2>&1; then
    echo "SKIP: fusermount3 is not installed"
    exit 77
  fi
}

# ---- the staging tests' set-up (tests/test_stage_*.sh) -----------------------

# work_dir NAME: makes $WORK, a fresh temporary directory, and goes there.
# At exit the helper processes recorded with own_helper are stopped, every
# FUSE mount under $WORK is unmounted, every daemon recorded with own_daemon
# is given 10 s to end (an unmounted staging daemon writes its table) and
# then killed, the other mounts under $WORK (a tmpfs) are unmounted, and
# $WORK is removed (unless a mount under it could not be undone).
work_dir() {
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/sst-$1.XXXXXX") || exit 1
  cd "$WORK" || exit 1
  own_pids=()
  own_helpers=()
  trap work_cleanup EXIT
  trap 'exit 130' INT TERM HUP
}

# own_daemon PID: a daemon this script started.
own_daemon() { own_pids+=("$1"); }

# own_helper PID: another background process of this script (a copier, a
# second daemon meant to be refused); killed at exit.
own_helper() { own_helpers+=("$1"); }

# own_area AREA: records the daemon named in staging area AREA's pid file
# (one started in the background mode) and sets $pid to it.
own_area() {
  pid=$(cat "$1/pid" 2>/dev/null) || pid=
  [ -n "$pid" ] && own_daemon "$pid"
}

# mounts_under DIR fuse|other: the mount points under DIR of FUSE or of
# any other type, the last mounted first.
mounts_under() {
  awk -v w="$1/" -v fuse="$2" 'index($2, w) == 1 &&
    (fuse == "fuse") == ($3 ~ /^fuse/) { print $2 }' /proc/self/mounts | tac
}

work_cleanup() {
  local m pid i
  cd / || return
  for pid in "${own_helpers[@]}"; do
    kill "$pid" 2>/dev/null
  done
  while read -r m; do
    for ((i = 0; i < 5; i++)); do
      fusermount3 -u "$m" 2>/dev/null && break
      sleep 0.2
    done
    is_mounted "$m" && fusermount3 -uz "$m" 2>/dev/null
  done < <(mounts_under "$WORK" fuse)
  for pid in "${own_pids[@]}"; do
    for ((i = 0; i < 100; i++)); do
      alive "$pid" || break
      sleep 0.1
    done
    alive "$pid" && kill -9 "$pid" 2>/dev/null
  done
  while read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
  done < <(mounts_under "$WORK" other)
  grep -qF " $WORK/" /proc/self/mounts || rm -rf "$WORK"
}

# gone PID: waits until process PID has ended, at most 20 s.
gone() {
  local i
  for ((i = 0; i < 400; i++)); do
    alive "$1" || return 0
    sleep 0.05
  done
  return 1
}

# sanitizer_free LOG: LOG has no sanitizer report.
sanitizer_free() { ! grep -qE "Sanitizer|runtime error|SUMMARY:" "$1"; }

# summary: the closing line; the exit status says whether all passed.
summary() {
  [ "$skipped" -eq 0 ] || echo "# $skipped skipped"
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
}
