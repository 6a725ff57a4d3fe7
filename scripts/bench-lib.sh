# scripts/bench-lib.sh — what the benchmark scripts share (scripts/bench,
# bench-stage, bench-merge, bench-core): messages and arguments, the
# Release build in build-bench/, timing, figures and their medians,
# mounting and waiting, seeded records, the machine's description, and
# cleanup at exit.
#
# Sourced, not run: the script sets bench_name (its name in messages) and
# usage_lines (the lines of its header comment that --help prints), then
# sources this file, which moves to the repository's top directory.
#
# The variables this file sets are for the script that sources it, and
# those it reads are the script's (SC2034, SC2154).
# shellcheck shell=bash disable=SC2034,SC2154

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root" || exit 1

# ---- messages and arguments ------------------------------------------------

say() { echo "$bench_name: $*" >&2; }
die() {
  say "$*"
  exit 1
}

# usage STATUS: the usage text, to stdout for --help (0), else to stderr;
# exits STATUS.
usage() {
  if [ "$1" -eq 0 ]; then
    sed -n "${usage_lines}p" "$0" | sed 's/^# \{0,1\}//'
  else
    sed -n "${usage_lines}p" "$0" | sed 's/^# \{0,1\}//' >&2
  fi
  exit "$1"
}

# count_arg OPTION VALUE: exits 2 unless VALUE is a positive count.
count_arg() {
  [[ "$2" =~ ^[1-9][0-9]*$ ]] ||
    { say "$1 needs a positive count, not '$2'"; exit 2; }
}

# ---- the build ---------------------------------------------------------------

# bench_build TARGET...: scripts/setup --bench, then a Release build of the
# CMake targets in build-bench/ (its output shown only if it fails). Sets
# build, SST and SSTFS; the targets land in $build/bin/.
bench_build() {
  local log
  scripts/setup --bench
  build="$root/build-bench"
  say "building $* (Release) in build-bench/"
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
  if ! log="$(cmake --build "$build" -j2 --target "$@" 2>&1)"; then
    echo "$log" >&2
    exit 1
  fi
  SST="$build/bin/sst"
  SSTFS="$build/bin/sstfs"
}

# build_rocksdb_program NAME: tests/bench/NAME.cc built with g++ -O2 as
# $build/bench/NAME.
build_rocksdb_program() {
  mkdir -p "$build/bench"
  g++ -std=c++17 -O2 -Wall -Wextra "tests/bench/$1.cc" -lrocksdb \
    -o "$build/bench/$1"
}

# ---- the data directory and cleanup ----------------------------------------

# What bench_cleanup undoes at exit, in this order; the script fills them
# in: the pid of a sampler while one runs (stopped); mount points
# (unmounted if mounted); the pids of our FUSE daemons while they run
# (waited for, then stopped); the mount points of kernel file systems
# (loop_mount fills it: unmounted if mounted) and the loop devices
# attached here and not yet detached (detached); the data directory
# (removed, unless keep is 1, or something is still mounted in it).
sampler=""
mounts=()
daemon=""
kernel_mounts=()
loops=()
work=""

# make_work PARENT PREFIX: makes the data directory PARENT/PREFIX.XXXXXX
# and sets the traps that clean up at exit.
make_work() {
  mkdir -p "$1"
  work="$(mktemp -d "$(cd "$1" && pwd)/$2.XXXXXX")"
  trap bench_cleanup EXIT
  trap 'exit 130' INT TERM
}

# Stops and removes only what this run started and made.
bench_cleanup() {
  local m p
  [ -z "$sampler" ] || kill "$sampler" 2>/dev/null || true
  for m in ${mounts[@]+"${mounts[@]}"}; do
    if mountpoint -q "$m" 2>/dev/null; then
      fusermount3 -u "$m" 2>/dev/null || fusermount3 -uz "$m" 2>/dev/null || true
    fi
  done
  for p in $daemon; do
    wait_gone "$p" 60 || kill "$p" 2>/dev/null || true
  done
  for m in ${kernel_mounts[@]+"${kernel_mounts[@]}"}; do
    if mountpoint -q "$m" 2>/dev/null; then
      umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
    fi
  done
  for p in ${loops[@]+"${loops[@]}"}; do
    losetup -d "$p" 2>/dev/null || true
  done
  [ -n "$work" ] || return 0
  for m in ${mounts[@]+"${mounts[@]}"} ${kernel_mounts[@]+"${kernel_mounts[@]}"}; do
    if mountpoint -q "$m" 2>/dev/null; then
      say "$m is still mounted: data left in $work"
      return 0
    fi
  done
  if ((${keep:-0})); then
    say "data kept in $work"
  else
    rm -rf "$work"
  fi
}

# ---- timing and waiting -------------------------------------------------------

# now VAR: sets VAR to the time in microseconds (no subshell, so that it
# adds nothing to what it times).
now() { printf -v "$1" '%s' "${EPOCHREALTIME/./}"; }

# wait_for SECONDS COMMAND...: runs COMMAND every 10 ms until it succeeds;
# false if it has not after SECONDS.
wait_for() {
  local i tries=$(($1 * 100))
  shift
  for ((i = 0; i < tries; i++)); do
    "$@" && return 0
    sleep 0.01
  done
  return 1
}

exited() { ! kill -0 "$1" 2>/dev/null; }

# wait_gone PID SECONDS: true once PID has exited.
wait_gone() { [ -z "$1" ] || wait_for "$2" exited "$1"; }

# warm FILE...: reads the files, untimed, so that a timed step finds them
# in the page cache.
warm() { cat "$@" >/dev/null; }

# rotate ROUND ITEM...: sets order to the ITEMs rotated by ROUND - 1, so
# that each round starts with another one.
rotate() {
  local k=$((($1 - 1) % ($# - 1)))
  shift
  order=("${@:k+1}" "${@:1:k}")
}

# ---- mounts -------------------------------------------------------------------

regex_quote() { printf '%s' "$1" | sed 's/[][\.*^$+?(){}|]/\\&/g'; }

# fuse_mount MNT COMMAND...: runs COMMAND, a FUSE daemon that returns once
# MNT is mounted, and a stat of MNT. Sets mount_us to the microseconds
# that took and daemon to the daemon's pid.
fuse_mount() {
  local mnt="$1" t0 t1
  shift
  now t0
  "$@"
  [[ -d "$mnt/." ]]
  now t1
  mount_us=$((t1 - t0))
  mountpoint -q "$mnt" || die "$mnt is not mounted"
  daemon="$(pgrep -n -x -f "$(regex_quote "$*")" || true)"
  [ -n "$daemon" ] || die "no daemon found for $mnt"
}

# fuse_unmount MNT: unmounts MNT and waits for its daemon to exit.
fuse_unmount() {
  fusermount3 -u "$1"
  wait_gone "$daemon" 30 || die "daemon $daemon still running 30 s after unmount"
  daemon=""
}

declare -A loop_of=() # mount point -> loop device, while mounted

# loop_mount TYPE IMAGE MNT: attaches IMAGE, read only, to a free loop
# device and mounts that with the kernel's file system TYPE (squashfs,
# erofs) on MNT, read only. Needs root.
loop_mount() {
  local dev
  dev="$(losetup -f --show -r "$2")" || die "no loop device for $2"
  loops+=("$dev")
  loop_of["$3"]="$dev"
  kernel_mounts+=("$3")
  mount -t "$1" -o ro "$dev" "$3" || die "cannot mount $2 ($1) on $3"
}

# loop_unmount MNT: unmounts MNT and detaches the loop device that
# loop_mount attached for it.
loop_unmount() {
  local dev="${loop_of[$1]}" left=() p
  umount "$1"
  losetup -d "$dev"
  unset 'loop_of[$1]'
  for p in "${loops[@]}"; do
    [ "$p" = "$dev" ] || left+=("$p")
  done
  loops=(${left[@]+"${left[@]}"})
}

# has_kernel_fs TYPE: true if this kernel can mount TYPE and a loop device
# is free (and we are root).
has_kernel_fs() {
  [ "$(id -u)" -eq 0 ] && grep -qw "$1" /proc/filesystems && losetup -f >/dev/null 2>&1
}

# drop_caches: writes back dirty pages, then drops the page cache,
# dentries and inodes (root only).
drop_caches() {
  sync
  echo 3 >/proc/sys/vm/drop_caches
}

# ---- figures -----------------------------------------------------------------

# Figures are lines of tab-separated KEY... VALUE in $results, which
# start_results makes.
start_results() {
  results="$work/results.tsv"
  : >"$results"
}

# note KEY... VALUE: records one figure.
note() {
  local IFS=$'\t'
  printf '%s\n' "$*" >>"$results"
}

# vals KEY...: the values recorded under KEY..., one a line.
vals() {
  local IFS=$'\t'
  awk -F'\t' -v key="$*" -v n=$# 'NF == n + 1 {
    k = $1
    for (i = 2; i <= n; i++) k = k FS $i
    if (k == key) print $(n + 1) }' "$results"
}

# median: the median of the numbers on stdin, one a line ("nan" if none).
median() {
  sort -g | awk '{v[NR] = $1} END {
    if (NR == 0) { print "nan"; exit }
    if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# med KEY...: the median of the values recorded under KEY....
med() { vals "$@" | median; }

# spread SCALE FORMAT KEY...: "smallest–largest" of the values / SCALE.
spread() {
  local scale="$1" format="$2"
  shift 2
  vals "$@" | sort -g | awk -v s="$scale" -v f="$format" \
    'NR == 1 {lo = $1} {hi = $1} END {if (NR) printf f "–" f, lo / s, hi / s}'
}

# quotient A B: A / B to two decimals.
quotient() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }

# ratio KEY_A KEY_B: the ratio of the medians of two figures.
ratio() { quotient "$(med "$1")" "$(med "$2")"; }

# fmt VALUE FORMAT: VALUE printed with FORMAT.
fmt() { awk -v v="$1" -v f="$2" 'BEGIN {printf f, v}'; }

# ---- records ------------------------------------------------------------------

# records_csv N: N key,value lines (bench-core's step 5, bench-blocks):
# user/NNNNNNNNNN/item keys in order, ids rising by 1 to 4 as in
# bench_rand.h's generator; values of 84 characters of a 64-letter
# alphabet, 11 pieces of 8 drawn at random (seeded) from 65536 random
# pieces, so that RocksDB's default Snappy finds next to nothing to
# compress; 106 bytes a line.
records_csv() {
  awk -v n="$1" 'BEGIN {
    srand(17)
    a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    for (i = 0; i < 65536; i++) {
      p = ""
      for (j = 0; j < 8; j++) p = p substr(a, 1 + int(rand() * 64), 1)
      piece[i] = p
    }
    for (i = 0; i < n; i++) {
      id += 1 + (i * 7) % 4
      v = ""
      for (j = 0; j < 11; j++) v = v piece[int(rand() * 65536)]
      printf "user/%010d/item,%s\n", id, substr(v, 1, 84)
    }
  }'
}

# ---- the machine --------------------------------------------------------------

# revision DIR...: the commit checked out, and whether DIRs hold
# uncommitted changes.
revision() {
  local rev dirs
  rev="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  if [ -n "$(git status --porcelain -- "$@" 2>/dev/null)" ]; then
    dirs="$(printf '%s/ or ' "$@")"
    rev="$rev + uncommitted changes in ${dirs% or }"
  fi
  echo "$rev"
}

# describe_machine DIR: sets cpu_model, memory, fsinfo (the filesystem of
# DIR), machine (all of it in one line) and load_start.
describe_machine() {
  cpu_model="$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
  memory="$(awk '/MemTotal/ {printf "%.1f GiB RAM", $2 / 1048576}' /proc/meminfo)"
  fsinfo="$(df -PT "$1" | awk 'NR == 2 {print $2 " on " $1}')"
  machine="$(nproc) CPUs ($cpu_model), $memory, Linux $(uname -r), data on $fsinfo"
  load_start="$(load_average)"
}

load_average() { cut -d' ' -f1-3 /proc/loadavg; }
