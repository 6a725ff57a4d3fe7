# stage_lib.sh — what the staging mount's cases (tests/test_stage_*.sh
# BINDIR [dev|uring]) share: the mode requests reach the daemon by, staging
# and read-only daemons run in the foreground with a log each, the exit
# status and log lines expected of each, and the check of every log at the
# end. Sourced after lib.sh.
#
# A case script calls stage_init first and stage_finish last:
#
#   stage_init NAME BINDIR [dev|uring]
#   stage_fg n "$WORK/n.sstable" && { ...; commit n; check ...; }
#   stage_finish
#
# The modes: with dev (the default) every staging daemon started through
# start_fg gets -o nouring, so requests go through /dev/fuse whatever the
# kernel offers. With uring the fuse module's enable_uring is set for the
# run (the old value is put back at exit), so requests go through io_uring
# (fs/uring.c); ctest runs those alone (RUN_SERIAL), as other tests'
# daemons would see the setting. stage_finish checks which way requests
# went.
#
# Every daemon runs in the foreground (-f) with stderr in log/NAME, so that
# stage_finish can check each: the exit status in want[NAME] (0 unless
# set), no line but those matching the ERE in allow[NAME] (none unless
# set), no sanitizer report. Mounts live under mnt/ in $WORK; work_dir's
# EXIT trap undoes them.
#
# Checks written `check NAME eval 'EXPR'` expand EXPR when the check runs:
# the single quotes in the case scripts are intended.
# shellcheck shell=bash disable=SC2016,SC2034

# libfuse 3.14.0 logs this when given max_idle_threads UINT_MAX; it is
# libfuse's noise, not the daemon's.
threads_noise='^Ignoring invalid max threads value 4294967295 > max'
# A foreground staging daemon's last line, when it used io_uring.
uring_count='^sstfs: [0-9]* requests were served through io_uring$'
URING_PARAM=/sys/module/fuse/parameters/enable_uring

# stage_init NAME BINDIR [dev|uring]: sets BIN, SST, SSTFS, TESTS (this
# directory) and MODE; exits 77 where FUSE (or, in the uring mode, FUSE
# over io_uring) cannot be used; sets up the mode, the counters and $WORK
# (named after NAME, and made the current directory) with mnt/ and log/.
stage_init() {
  local usage="usage: ${0##*/} BINDIR [dev|uring]"
  BIN=${2:?$usage}
  MODE=${3:-dev}
  case $MODE in
    dev | uring) ;;
    *)
      echo "$usage" >&2
      exit 2
      ;;
  esac
  case $BIN in /*) ;; *) BIN=$PWD/$BIN ;; esac
  SST=$BIN/sst
  SSTFS=$BIN/sstfs
  TESTS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
  export LC_ALL=C

  require_fuse
  uring_was=
  stage_opts=(-o nouring)
  if [ "$MODE" = uring ]; then
    if [ ! -e "$URING_PARAM" ]; then
      echo "SKIP: this kernel has no FUSE over io_uring (no $URING_PARAM; Linux 6.14 or later has it)"
      exit 77
    fi
    if ! "$SSTFS" --version | grep -q "io_uring: yes"; then
      echo "SKIP: sstfs was built without liburing (scripts/setup installs liburing-dev)"
      exit 77
    fi
    stage_opts=()
  fi
  have_python=0
  command -v python3 >/dev/null 2>&1 && have_python=1

  passed=0 failed=0 skipped=0 rc=0
  declare -gA daemon=() # foreground daemon name -> pid
  declare -gA status=() # foreground daemon name -> exit status once it ended
  declare -gA want=()   # foreground daemon name -> the exit status it should have
  declare -gA allow=()  # foreground daemon name -> ERE of log lines it may write
  work_dir "stage-$1"
  trap 'work_cleanup; uring_restore' EXIT
  mkdir mnt log
  if [ "$MODE" = uring ]; then
    uring_was=$(cat "$URING_PARAM")
    if ! echo Y 2>/dev/null >"$URING_PARAM"; then
      uring_was=
      echo "SKIP: cannot set $URING_PARAM (not root?)"
      exit 77
    fi
  fi
}

# uring_restore: puts enable_uring back as it was before stage_init.
uring_restore() {
  [ -z "$uring_was" ] || echo "$uring_was" >"$URING_PARAM"
}

# require_python: exits 77 (SKIP) when python3 is missing.
require_python() {
  if [ "$have_python" = 0 ]; then
    echo "SKIP: python3 is not installed"
    exit 77
  fi
}

# note FILE [N]: shows the first N (10) lines of FILE as "#" lines.
note() { sed 's/^/#   /' "$1" | head -n "${2:-10}"; }

# The daemon as a child whose SIGINT is not ignored: a shell starts
# background commands with SIGINT ignored, and libfuse keeps an ignored
# signal ignored. Each wrapper execs the daemon, so $! is the daemon's pid.
if env --default-signal=INT true 2>/dev/null; then
  fg_prefix=(env --default-signal=INT)
else
  fg_prefix=(perl -e '$SIG{INT} = "DEFAULT"; exec @ARGV or exit 127')
fi

# start_fg NAME ENV... -- ARG...: starts `sstfs -f ARG...` (with the
# environment assignments ENV) as foreground daemon NAME, logging to
# log/NAME; sets MNT to mnt/NAME. Fails (as a check) if the mount does not
# appear. The mount point is the last ARG.
start_fg() {
  local name=$1 vars=()
  shift
  while [ "$1" != -- ]; do
    vars+=("$1")
    shift
  done
  shift
  MNT=${fg_mnt:-$WORK/mnt/$name}
  fg_mnt=
  mkdir -p "$MNT"
  [ "$1" = --stage ] && set -- "$@" "${stage_opts[@]}"
  env "${vars[@]}" "${fg_prefix[@]}" "$SSTFS" -f "$@" 2>"log/$name" </dev/null &
  daemon[$name]=$!
  own_daemon "$!"
  want[$name]=0
  allow[$name]='^$'
  if ! wait_mounted "$MNT" "${daemon[$name]}"; then
    echo "not ok - mount $name"
    note "log/$name" 5
    failed=$((failed + 1))
    return 1
  fi
}

# stage_fg NAME OUT [ARG...]: a staging mount for OUT at mnt/NAME.
stage_fg() {
  local name=$1 out=$2
  shift 2
  start_fg "$name" -- --stage "$out" "$WORK/mnt/$name" "$@"
}

# ro_fg NAME TABLE: a read-only mount of TABLE at mnt/NAME.
ro_fg() {
  start_fg "$1" -- "$2" "$WORK/mnt/$1"
}

# ro_fg_at NAME TABLE DIR: a read-only mount of TABLE at DIR (which
# unmount_fg does not know: unmount it with fusermount3 -u and reap NAME).
ro_fg_at() {
  fg_mnt=$3
  start_fg "$1" -- "$2" "$3"
}

# reap NAME: waits for foreground daemon NAME to end, at most 20 s;
# records its status.
reap() {
  local name=$1 pid=${daemon[$1]}
  if ! gone "$pid"; then
    status[$name]=timeout
    return 1
  fi
  wait "$pid"
  status[$name]=$?
}

# unmount_fg NAME: unmounts mnt/NAME with fusermount3 and reaps its daemon.
unmount_fg() {
  local m=$WORK/mnt/$1
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    is_mounted "$m" || break
    fusermount3 -u "$m" 2>/dev/null && break
    sleep 0.2
  done
  reap "$1"
}

# commit NAME: sstfs --unmount mnt/NAME (status in $rc, output in out and
# err), then reaps the daemon.
commit() {
  local urc
  run "$SSTFS" --unmount "$WORK/mnt/$1"
  urc=$rc
  reap "$1"
  rc=$urc
}

# keys TABLE: the table's keys, escaped, one a line, without the
# directory entries a staging commit writes (the root's "/" and "DIR/",
# each with an empty value).
keys() { "$SST" dump --escape "$1" | sed '/\/,$/d; s/,.*//'; }

# dir_keys TABLE: those directory entries alone.
dir_keys() { "$SST" dump --escape "$1" | sed -n 's/\(.*\/\),$/\1/p'; }

# awkward_tree DIR: makes DIR, a tree with awkward but clean names (each is
# its own key), a 3 MiB file and 80 small ones in 8 directories.
awkward_tree() {
  mkdir "$1" && (
    cd "$1" || exit 1
    echo plain >plain.txt
    echo space >"with space"
    echo lead >" leading space"
    echo trail >"trailing space "
    printf 'tab\n' >"tab$(printf '\t')here"
    printf 'nl\n' >"new$(printf '\nline')"
    echo café >café
    mkdir 日本
    echo 語 >日本/語.txt
    for n in % %41 a%2Fb 100% %% %%=x %2F; do echo "name $n" >"$n"; done
    echo hidden >.hidden
    echo dots >...
    long=$(printf 'N%.0s' $(seq 255))
    echo long-ascii >"$long"
    deep=$(printf 'n%02d/' $(seq 30))
    mkdir -p "$deep"
    echo leaf >"${deep}leaf.txt"
    : >empty
    mkdir a
    echo x >a/x
    echo a-b >a-b
    echo a0 >a0
    head -c 3145728 /dev/urandom >big.bin
    head -c 100000 /dev/zero >zeros
    for d in 0 1 2 3 4 5 6 7; do
      mkdir -p "many/d$d"
      for f in 0 1 2 3 4 5 6 7 8 9; do
        head -c $(((d * 10 + f) * 977 % 30000)) /dev/urandom >"many/d$d/f$f"
      done
    done
  )
}

# require_tools TOOL...: exits 77 (SKIP) naming the first TOOL missing
# (scripts/setup installs them all).
require_tools() {
  local t
  for t in "$@"; do
    if ! command -v "$t" >/dev/null 2>&1; then
      echo "SKIP: $t is not installed (scripts/setup installs it)"
      exit 77
    fi
  done
}

# meta_tree DIR: makes DIR, a tree whose metadata a table keeps: symlinks
# (relative, absolute, dangling, to a directory), an executable, a 0600
# file in a 0700 directory, setuid and setgid files, a sticky directory,
# empty directories, a file of another owner (as root), hard links (a
# group of three in two directories, a pair), user.* extended attributes
# (on files, a hard link and a directory; one value binary), and mtimes
# in nanoseconds on files, symlinks and every directory. Needs setfattr.
meta_tree() {
  local ns=.123456789
  mkdir "$1" && (
    cd "$1" || exit 1
    mkdir -p bin etc/empty deep/er/est empty secret sticky 'with space'
    printf '#!/bin/sh\necho run\n' >bin/run && chmod 0755 bin/run
    echo secret >secret/key && chmod 0600 secret/key && chmod 0700 secret
    echo suid >bin/suid && chmod 4755 bin/suid
    echo sgid >bin/sgid && chmod 2711 bin/sgid
    chmod 1777 sticky
    echo plain >etc/plain.conf
    echo owned >etc/owned
    [ "$(id -u)" != 0 ] || chown 1234:5678 etc/owned
    head -c 70000 /dev/urandom >deep/er/est/blob
    echo linked >etc/hard1 && ln etc/hard1 etc/hard2 && ln etc/hard1 bin/hard3
    echo pair >pair-a && ln pair-a 'with space/pair-b'
    ln -s plain.conf etc/rel-link
    ln -s ../etc/plain.conf bin/up-link
    ln -s /etc/hostname abs-link
    ln -s does/not/exist dangling
    ln -s etc dir-link
    setfattr -n user.comment -v 'a file' etc/plain.conf &&
      setfattr -n user.bin -v 0sAAEC/w== etc/plain.conf &&
      setfattr -n user.dir -v yes etc &&
      setfattr -n user.linked -v 1 etc/hard1 || exit 1
    touch -h -d "2001-02-03 04:05:06$ns" etc/rel-link dangling
    touch -d "2019-12-31 23:59:59.000000001" etc/plain.conf
    touch -d "1999-01-01 00:00:00.5" bin/run
    find . -depth -type d -exec touch -d "2020-06-07 08:09:10$ns" {} +
  )
}

# find_list DIR: every entry under DIR, sorted: type, mode, owner, group,
# mtime (ns), link target, path.
find_list() {
  (cd "$1" && find . -printf '%y %m %U %G %T@ %l %p\n' | sort)
}

# escape_records FILE: writes FILE, records (sst build --escape) for every
# escape case of docs/PATHS.md, and a binary key and value: 14 keys.
escape_records() {
  local l300 d300
  l300=$(printf 'L%.0s' $(seq 300))
  d300=$(printf 'D%.0s' $(seq 300))
  printf '%s\n' 'a/./b,dot' 'a/../c,dot-dot' 'a//b,empty component' \
    '/lead,leading slash' 'x/,trailing slash' 'nul\x00byte,NUL byte' \
    'k,file beside a directory' 'k/sub,under k' '%=x,marker' \
    "$l300,long component" "$d300/f,under a long directory" 'a/b,clean' \
    'e/empty,' 'bin\x01\x7f\xff,v\x00\n\\x\r' >"$1"
}

# stage_finish: unmounts the foreground daemons still mounted; checks each
# daemon's exit status and log, and which way requests went (in the uring
# mode some staging daemon served requests through io_uring, with -o
# nouring none did); prints the summary, whose status is the script's.
stage_finish() {
  local d served=0
  for d in "${!daemon[@]}"; do
    [ -n "${status[$d]:-}" ] || unmount_fg "$d"
  done
  for d in $(printf '%s\n' "${!daemon[@]}" | sort); do
    : >err
    rc=${status[$d]}
    check "daemon $d exited ${want[$d]}" [ "$rc" = "${want[$d]}" ]
    grep -v "$threads_noise" "log/$d" | grep -v "$uring_count" |
      grep -vE "${allow[$d]}" >err
    check "daemon $d: only the log lines expected, no sanitizer report" eval \
      '[ ! -s err ] && sanitizer_free "log/$d"'
    grep -q "$uring_count" "log/$d" && served=$((served + 1))
  done
  : >err
  rc=-
  if [ "${#daemon[@]}" = 0 ]; then
    skip "which way requests went" "no daemon ran"
  elif [ "$MODE" = uring ]; then
    check "requests went through io_uring (daemons saying so: $served)" \
      [ "$served" -gt 0 ]
  else
    check "-o nouring: no request went through io_uring" [ "$served" = 0 ]
  fi
  summary
}
