#!/usr/bin/env bash
# test_crash.sh BINDIR [TRIALS] — crash trials of the staging mount: a
# scripted copy into a staging mount, the daemon killed with SIGKILL at a
# random moment, then resumed and committed. Every file whose copy had
# finished before the kill must be in the table with the right bytes, and
# the output path must never hold a table before the commit.
set -u
# shellcheck source=tests/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bin=$(cd "$1" && pwd)
trials=${2:-10}
sst=$bin/sst
sstfs=$bin/sstfs

require_fuse

tmp=$(mktemp -d)
mnt=$tmp/mnt
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
  if mountpoint -q "$mnt" 2>/dev/null; then
    fusermount3 -u "$mnt" 2>/dev/null || fusermount3 -uz "$mnt"
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
cd "$tmp" || exit 1
mkdir -p "$mnt"

pass=0 fail=0
ok() { echo "ok - $1"; pass=$((pass + 1)); }
not_ok() { echo "not ok - $1"; fail=$((fail + 1)); }

# The source: small files in folders, and a few larger ones.
RANDOM=4242
mkdir -p src
for d in 0 1 2 3 4 5 6 7; do
  mkdir -p "src/d$d"
  for f in $(seq 1 40); do
    head -c $((RANDOM % 3000)) /dev/urandom >"src/d$d/f$f"
  done
done
for b in 1 2 3; do head -c $((1 << 20)) /dev/urandom >"src/big$b"; done
(cd src && find . -type f | sed 's|^\./||' | sort) >files

wait_mounted() {
  for _ in $(seq 1 200); do
    mountpoint -q "$mnt" && return 0
    sleep 0.02
  done
  return 1
}

start_daemon() { # out [extra options]
  local out=$1
  shift
  env --default-signal=INT "$sstfs" -f --stage "$out" "$mnt" "$@" \
    2>>"$tmp/daemon.log" &
  daemon=$!
  pids+=("$daemon")
  wait_mounted
}

for t in $(seq 1 "$trials"); do
  out=$tmp/out$t.sstable
  committed=0
  : >"done$t"
  if ! start_daemon "$out"; then
    not_ok "trial $t: staging mount"
    continue
  fi
  # Copy file by file; a name is listed only once its copy has finished.
  (
    while read -r f; do
      mkdir -p "$mnt/$(dirname "$f")" 2>/dev/null || exit 0
      cp "src/$f" "$mnt/$f" 2>/dev/null || exit 0
      echo "$f" >>"done$t"
    done <files
  ) &
  copier=$!
  sleep "0.$((RANDOM % 9 + 1))"
  kill -9 "$daemon"
  wait "$daemon" 2>/dev/null
  wait "$copier" 2>/dev/null
  fusermount3 -uz "$mnt" 2>/dev/null
  if [ -e "$out" ]; then
    not_ok "trial $t: no table at the output before the commit"
  else
    ok "trial $t: no table at the output before the commit"
  fi
  copied=$(wc -l <"done$t")

  # Resume, check what was finished, complete the copy, commit.
  if ! start_daemon "$out" -o resume; then
    not_ok "trial $t: resume"
    continue
  fi
  bad=0
  while read -r f; do cmp -s "src/$f" "$mnt/$f" || bad=$((bad + 1)); done <"done$t"
  if [ "$bad" -eq 0 ]; then
    ok "trial $t: after the kill, all $copied finished files are intact"
  else
    not_ok "trial $t: $bad of $copied finished files damaged after the kill"
  fi
  cp -r src/. "$mnt/"
  if [ $((t % 2)) -eq 0 ]; then
    # Kill it again, this time while it writes the table: the output is
    # then absent or whole, never partial.
    fusermount3 -u "$mnt" &
    sleep "0.0$((RANDOM % 9))"
    kill -9 "$daemon" 2>/dev/null
    wait "$daemon" 2>/dev/null
    wait
    fusermount3 -uz "$mnt" 2>/dev/null
    if [ ! -e "$out" ] || "$sst" verify "$out" >/dev/null 2>&1; then
      ok "trial $t: killed while committing: the output is absent or whole"
    else
      not_ok "trial $t: killed while committing: the output is absent or whole"
    fi
    if [ ! -d "$out.stage" ]; then
      # The kill came after the commit: the table is complete.
      committed=1
    elif ! start_daemon "$out" -o resume,overwrite; then
      not_ok "trial $t: second resume"
      continue
    fi
  fi
  if [ "${committed:-0}" = 1 ] ||
    { "$sstfs" --unmount "$mnt" && wait "$daemon"; }; then
    ok "trial $t: commit after resume"
  else
    not_ok "trial $t: commit after resume"
    continue
  fi
  rm -rf "unpacked$t"
  if "$sst" verify "$out" >/dev/null && "$sst" unpack "$out" "unpacked$t" \
    >/dev/null 2>&1 && diff -r src "unpacked$t" >/dev/null; then
    ok "trial $t: the table holds every file with the right bytes"
  else
    not_ok "trial $t: the table holds every file with the right bytes"
  fi
  rm -rf "unpacked$t" "$out"
done

if grep -qiE "AddressSanitizer|runtime error|LeakSanitizer" "$tmp/daemon.log"; then
  not_ok "no sanitizer reports from the daemons"
  sed 's/^/  /' "$tmp/daemon.log" | head -20
else
  ok "no sanitizer reports from the daemons"
fi
echo "crash: $trials trials"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
