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
