#!/usr/bin/env bash
# test_http.sh — tables read over HTTP from a real nginx on loopback: the
# sst read commands give what they give on the file, a FUSE mount of the
# URL is the packed tree, the server's access log shows how few requests
# a mount, a listing, a read and a whole-tree diff make, a server that
# is down fails only the reads made meanwhile (EIO, after retries), a
# table replaced on the server fails reads with EIO (never other bytes),
# a large value read in order is fetched ahead of its reads by the
# daemon's read-ahead thread (SST_HTTP_LOG says which request was made
# why), a second mount over a cache on disk (-o cache=DIR) fetches no
# data, and a missing URL fails the mount with the server's status.
#
# Usage: bash tests/test_http.sh BINDIR    (BINDIR holds sst, sstfs)
#
# Prints "ok - NAME" or "not ok - NAME" per check, then "N passed, M
# failed". Exits non-zero if any check failed, 77 (SKIP, with the reason)
# when FUSE, nginx or python3 is missing. nginx and every mount live under
# a fresh temporary directory ($WORK, see tests/lib.sh), stopped and
# unmounted at exit.
# shellcheck disable=SC2034
set -u
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/lib.sh
. "$HERE/lib.sh"

BIN=${1:?usage: test_http.sh BINDIR}
case $BIN in /*) ;; *) BIN=$PWD/$BIN ;; esac
SST=$BIN/sst
SSTFS=$BIN/sstfs
export LC_ALL=C

require_fuse
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
if [ ! -x "$NGINX" ]; then
  echo "SKIP: nginx is not installed (scripts/setup installs nginx-light)"
  exit 77
fi
if ! command -v python3 >/dev/null 2>&1; then
  echo "SKIP: python3 is not installed (scripts/setup installs it)"
  exit 77
fi

passed=0
failed=0
skipped=0
rc=0
work_dir http
# nginx's workers may run as another user: they must reach the files.
chmod 755 "$WORK"

# ---- the server ------------------------------------------------------------

mkdir -p www log tmp
PORT=$(python3 "$HERE/free_port.py") || exit 1
sed -e "s|@WORK@|$WORK|g" -e "s|@PORT@|$PORT|g" "$HERE/http_nginx.conf" \
  >nginx.conf
# start_nginx: starts it, sets NGINX_PID, waits until it listens.
start_nginx() {
  "$NGINX" -p "$WORK" -e "$WORK/log/error.log" -c "$WORK/nginx.conf" \
    2>>log/nginx.err &
  NGINX_PID=$!
  own_helper "$NGINX_PID"
  local i
  for ((i = 0; i < 100; i++)); do
    python3 "$HERE/free_port.py" --busy "$PORT" && return 0
    alive "$NGINX_PID" || return 1
    sleep 0.05
  done
  return 1
}
# stop_nginx: stops the one this script started, and waits for it.
stop_nginx() {
  kill "$NGINX_PID" 2>/dev/null
  gone "$NGINX_PID"
}
if ! start_nginx; then
  echo "SKIP: nginx did not start: $(head -n 3 log/nginx.err)"
  exit 77
fi
URL=http://127.0.0.1:$PORT

# requests: lines in the access log so far.
requests() { wc -l <log/access.log; }
# bytes_per_request FROM: the average of bytes sent by the requests after
# line FROM.
bytes_per_request() {
  awk -v from="$1" 'NR > from { n++; s += $2 } END { print n ? int(s / n) : 0 }' \
    log/access.log
}
# connections FROM: how many connections carried the requests after line
# FROM. One request at a time reuses one kept-alive connection; more mean
# requests that were in flight at once.
connections() {
  awk -v from="$1" 'NR > from { c[$NF] = 1 } END { print length(c) }' \
    log/access.log
}
# hwm PID: the peak resident memory of process PID, in KiB.
hwm() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"; }
# A sanitizer build maps shadow memory: no memory bound holds for it.
sanitized() { ldd "$SSTFS" 2>/dev/null | grep -qE 'libasan|libubsan'; }

# ---- tables ----------------------------------------------------------------

# A tree of random (incompressible) files, 12 MB in all: its values are
# far larger than what open fetches, its keys much smaller.
python3 "$HERE/make_tree.py" src 24 40 25000 18 || exit 1
mkdir -p src/d00/sub && echo small >src/d00/sub/small.txt
run "$SST" pack src www/tree.sstable
check "pack the tree" status_is 0
run "$SST" build -o www/records.sstable - <<'EOF'
alpha,1
beta,two
gamma,3
EOF
check "build a small table of records" status_is 0
printf 'alpha,one\nbeta2,b2\ndelta,4444\n' >records2.csv
run "$SST" build -o www/records2.sstable records2.csv
check "and a second one" status_is 0

# ---- sst over http equals sst on the file ------------------------------------

same() { # same ARGS...: sst ARGS with the file and with the URL agree
  local name=$1
  shift
  "$SST" "$@" "www/$name" >local.out 2>&1
  local lrc=$?
  "$SST" "$@" "$URL/$name" 2>&1 | sed "s|$URL/|www/|g" >remote.out
  local rrc=${PIPESTATUS[0]}
  rc=$rrc
  [ "$lrc" = "$rrc" ] && cmp -s local.out remote.out
}
get_same() {
  "$SST" get "www/$1" "${@:2}" >local.out 2>&1
  "$SST" get "$URL/$1" "${@:2}" >remote.out 2>&1
  cmp -s local.out remote.out && [ -s local.out ]
}
check "sst get over http" get_same tree.sstable d03/f007 d00/sub/small.txt
check "sst get of records over http" get_same records.sstable beta alpha
check "sst scan over http" same records.sstable scan
check "sst scan --prefix over http" same tree.sstable scan --keys-only --prefix d1
check "sst info over http" same tree.sstable info
check "sst verify over http" same tree.sstable verify
check "sst ls over http" same tree.sstable ls
check "sst dump over http" same records.sstable dump
run "$SST" unpack "$URL/tree.sstable" unpacked
check "sst unpack over http" diff -r src unpacked
run "$SST" merge -o merged.sstable "$URL/records.sstable" www/tree.sstable
check "sst merge of a URL and a file" status_is 0
run "$SST" get merged.sstable beta d00/sub/small.txt
check "the merge holds both" out_is "twosmall"
"$SST" merge -o local2.sstable www/records.sstable www/records2.sstable \
  2>/dev/null
run "$SST" merge -o remote2.sstable "$URL/records.sstable" \
  "$URL/records2.sstable"
check "sst merge of two URLs" status_is 0
check "... writes what the merge of the files writes" \
  cmp local2.sstable remote2.sstable
run "$SST" info "$URL/missing.sstable"
check "sst info of a missing URL: 404" err_has "HTTP 404"

# ---- a mount of the URL, and its requests --------------------------------------

# mount_url MNT URL...: a foreground daemon, stderr in log/MNT.
mount_url() {
  local mnt=$1
  shift
  mkdir -p "$mnt"
  "$SSTFS" -f "$@" "$mnt" 2>"log/$mnt" &
  own_daemon $!
  wait_mounted "$WORK/$mnt" $!
}

before=$(requests)
mount_url mnt "$URL/tree.sstable"
check "mount of the URL" is_mounted "$WORK/mnt"
after_mount=$(requests)
n=$((after_mount - before))
echo "# requests: mount $n"
check "the mount makes at most 2 requests" [ "$n" -le 2 ]
ls mnt/d05 >/dev/null
after_ls=$(requests)
n=$((after_ls - after_mount))
echo "# requests: ls of one directory $n"
check "ls of one directory: at most 1 more" [ "$n" -le 1 ]
cat mnt/d05/f003 >/dev/null
n=$(($(requests) - after_ls))
echo "# requests: cat of one small file $n"
check "cat of one small file: at most 1 more" [ "$n" -le 1 ]
before=$(requests)
run diff -r src mnt
check "diff -r of the mount and the tree" status_is 0
avg=$(bytes_per_request "$before")
echo "# requests: diff -r $(($(requests) - before)), $avg bytes each on average"
check "diff -r: at least 256 KiB a request" [ "$avg" -ge 262144 ]

# ---- a large value read in order, and a large key region ---------------------

# One 64 MiB value (random, so its chunks are stored as they are).
mkdir -p big && head -c $((64 << 20)) /dev/urandom >big/large.bin
run "$SST" pack big www/big.sstable
check "pack a 64 MiB value" status_is 0
# SST_HTTP_LOG: the daemon says why it made each request (open, read:
# a read waiting for it, ahead: its thread reading ahead of the reads).
export SST_HTTP_LOG=$WORK/log/big.why
mount_url bigm "$URL/big.sstable"
unset SST_HTTP_LOG
big_pid=${own_pids[-1]}
mem_before=$(hwm "$big_pid")
before=$(requests)
why_before=$(wc -l <log/big.why)
run cmp bigm/large.bin big/large.bin
check "a 64 MiB value read over http is right" status_is 0
n=$(($(requests) - before))
tail -n +$((why_before + 1)) log/big.why >big.why
avg=$(bytes_per_request "$before")
conns=$(connections "$before")
mem_after=$(hwm "$big_pid")
echo "# requests: cat of a 64 MiB value $n, $avg bytes each on average," \
  "on $conns connections; daemon peak memory $mem_before KiB after the" \
  "mount, $mem_after KiB after the read"
check "... in at most 48 requests" [ "$n" -le 48 ]
ahead=$(grep -c '^ahead ' big.why)
asked=$(grep -c '^read ' big.why)
echo "# requests: of the 64 MiB value, $ahead made ahead of the reads by the" \
  "daemon's read-ahead thread, $asked by reads that found their bytes missing"
check "... each of them in the log of SST_HTTP_LOG" [ "$(wc -l <big.why)" -eq "$n" ]
check "... at most 3 of them made by a read that found its bytes missing" \
  [ "$asked" -le 3 ]
check "... the others made ahead, before a read asked for their bytes" \
  [ "$ahead" -eq $((n - asked)) ]
check "... of at least 1 MiB each on average" [ "$avg" -ge 1048576 ]
check "... several of them in flight at once" [ "$conns" -ge 2 ]
if sanitized; then
  echo "# skipped: the memory bound (a sanitizer build)"
else
  check "... and the daemon grew by less than 40 MiB" \
    [ $((mem_after - mem_before)) -lt 40960 ]
fi
fusermount3 -u "$WORK/bigm"

# 200,000 keys in 200 directories: a key region of about 7 MB, of which
# open fetches the last MiB.
python3 - >keys.csv <<'PY'
import hashlib
for i in range(200000):
    print("d%03d/%s,v" % (i // 1000, hashlib.sha1(str(i).encode()).hexdigest()[:24]))
PY
run "$SST" build -o www/keys.sstable keys.csv
check "build a table of 200,000 keys" status_is 0
# A lone lookup in the middle of the key region: one request of at most
# 1 MiB, not a whole window.
mount_url keys1 "$URL/keys.sstable"
before=$(requests)
key=$(sed -n '100000s/,v$//p' keys.csv)
check "cat of one file of 200,000" [ "$(cat "keys1/$key")" = v ]
n=$(($(requests) - before))
avg=$(bytes_per_request "$before")
echo "# requests: cat of one file of the 200,000 after the mount $n, $avg bytes"
check "... in one request" [ "$n" -eq 1 ]
check "... of at most 1 MiB" [ "$avg" -le $(((1 << 20) + 4096)) ]
fusermount3 -u "$WORK/keys1"
before=$(requests)
mount_url keysm "$URL/keys.sstable"
run find keysm -type f
check "find over the mount of 200,000 keys" \
  [ "$(wc -l <out)" -eq 200000 ]
n=$(($(requests) - before))
conns=$(connections "$before")
region=$("$SST" info www/keys.sstable | awk '/^key region:/ { print $3 }')
echo "# requests: mount and find over a key region of $region bytes $n," \
  "on $conns connections"
# The mount's two (the tail, the header), then the rest of the region in
# pieces of at most 2 MiB.
most=$((2 + (region - 1048576 + 2097151) / 2097152))
check "... in at most $most requests" [ "$n" -le "$most" ]
check "... several of them in flight at once" [ "$conns" -ge 2 ]
fusermount3 -u "$WORK/keysm"

# A stack of a URL and a file.
mount_url stack "$URL/records.sstable" www/tree.sstable
check "a stack of a URL and a file" [ "$(cat stack/beta)" = two ]
check "the file's keys in the stack" cmp stack/d00/sub/small.txt src/d00/sub/small.txt

# ---- the server gone for a while ------------------------------------------------

mount_url outage "$URL/tree.sstable"
stop_nginx
run cat outage/d12/f020
check "a read while the server is down fails" status_is 1
check "... with EIO" err_has "Input/output error"
check "... logged with the URL" grep -q "$URL/tree.sstable: bytes" log/outage
start_nginx
run cmp outage/d12/f020 src/d12/f020
check "the same read works once the server is back" status_is 0
check "... and so do others" cmp outage/d13/f002 src/d13/f002

# ---- a cache on disk ------------------------------------------------------------

# data_requests FROM: requests after line FROM that sent bytes of a table
# (200 or 206; a 304 says only that the table did not change).
data_requests() {
  awk -v from="$1" 'NR > from && ($1 == 200 || $1 == 206) { n++ }
    END { print n + 0 }' log/access.log
}
mkdir -p cache
mount_url cold -o cache="$WORK/cache" "$URL/tree.sstable"
run diff -r src cold
check "diff -r of a mount with a cache on disk" status_is 0
fusermount3 -u "$WORK/cold"
before=$(requests)
mount_url warm -o cache="$WORK/cache" "$URL/tree.sstable"
run diff -r src warm
check "diff -r of a second mount over the warm cache" status_is 0
n=$(data_requests "$before")
echo "# requests: second mount and diff -r over a warm cache: $n with data," \
  "$(($(requests) - before)) in all"
check "... makes no data requests" [ "$n" -eq 0 ]
fusermount3 -u "$WORK/warm"
# A damaged block in the cache is fetched again, never served.
block=$(find cache -name '*.1' | head -n 1)
printf 'X' | dd of="$block" bs=1 seek=5000 conv=notrunc status=none
before=$(requests)
mount_url damaged -o cache="$WORK/cache" "$URL/tree.sstable"
run diff -r src damaged
check "a damaged cached block is not served" status_is 0
n=$(data_requests "$before")
check "... but fetched again" [ "$n" -ge 1 ]
fusermount3 -u "$WORK/damaged"

# ---- a bound on the cache directory ----------------------------------------------

table_bytes=$(stat -c %s www/tree.sstable)
bound=$((4 << 20))
# du_max DIR FILE: samples du of DIR into FILE (the largest seen) until
# the file DIR.stop appears.
du_max() {
  local max=0 u
  while [ ! -e "$1.stop" ]; do
    u=$(du -s -B1 "$1" 2>/dev/null | cut -f1)
    [ -n "$u" ] && [ "$u" -gt "$max" ] && max=$u
    echo "$max" >"$2"
    sleep 0.05
  done
}
mkdir -p small
mount_url bounded -o cache="$WORK/small",cache_size=4M "$URL/tree.sstable"
run diff -r src bounded
check "diff -r with the cache bounded to 4M, a table of $table_bytes bytes" \
  status_is 0
used=$(du -s -B1 small | cut -f1)
echo "# cache directory: $used bytes after diff -r (bound $bound)"
check "... the directory stays within the bound" [ "$used" -le "$bound" ]
check "... and holds something" [ "$used" -ge $((1 << 20)) ]
fusermount3 -u "$WORK/bounded"
mount_url bounded2 -o cache="$WORK/small",cache_size=4M "$URL/tree.sstable"
run diff -r src bounded2
check "a second mount over what is left: reads right" status_is 0
fusermount3 -u "$WORK/bounded2"

# Two mounts at once over one directory, each reading more than the bound,
# each removing what the other kept.
mkdir -p shared
mount_url shareA -o cache="$WORK/shared",cache_size=4M "$URL/tree.sstable"
mount_url shareB -o cache="$WORK/shared",cache_size=4M "$URL/big.sstable"
du_max shared du.max &
sampler=$!
own_helper "$sampler"
diff -r src shareA >diffA.out 2>&1 &
pa=$!
cmp shareB/large.bin big/large.bin >cmpB.out 2>&1 &
pb=$!
diff -r src shareA >diffA2.out 2>&1 &
pa2=$!
wait "$pa"
ra=$?
wait "$pb"
rb=$?
wait "$pa2"
ra2=$?
touch shared.stop
wait "$sampler"
check "two mounts sharing a bounded cache: the tree is right" \
  [ "$((ra + ra2))" -eq 0 ]
check "... and so is the 64 MiB value" [ "$rb" -eq 0 ]
max=$(cat du.max)
echo "# shared cache directory: at most $max bytes seen while two mounts" \
  "read (bound $bound)"
check "... the directory stayed within the bound" [ "$max" -le "$bound" ]
fusermount3 -u "$WORK/shareA"
fusermount3 -u "$WORK/shareB"

mkdir -p refused
run "$SSTFS" -o cache_size=64M "$URL/tree.sstable" refused
check "-o cache_size without -o cache is refused" [ "$rc" -eq 2 ]
check "... naming -o block_cache" err_has "-o block_cache=SIZE"
run "$SSTFS" -o cache="$WORK/cache",cache_size=lots "$URL/tree.sstable" refused
check "-o cache_size=lots is refused" err_has "cache_size=lots: not a size"
run "$SSTFS" -o cache="$WORK/cache",cache_size=1M "$URL/tree.sstable" refused
check "-o cache_size below 4M is refused" err_has "less than the least"

# ---- the table replaced on the server -------------------------------------------

mount_url changed "$URL/tree.sstable"
cat changed/d00/sub/small.txt >/dev/null # the tail and the first blocks
mkdir -p src2 && cp -r src/d2* src2/ && echo new >src2/new.txt
"$SST" pack src2 www/tree.next >/dev/null 2>&1
touch -d '+1 hour' www/tree.next
mv www/tree.next www/tree.sstable
# A file in the middle of the values: neither in the tail fetched at open
# nor in a block read so far.
run cat changed/d12/f020
check "a read after the table changed fails" status_is 1
check "... with EIO" err_has "Input/output error"
check "... and nothing of the new table is served" [ ! -s out ]
sleep 0.2
check "one log line names the URL" \
  [ "$(grep -c "$URL/tree.sstable: .*changed on the server" log/changed)" -eq 1 ]
run cat changed/d08/f001
check "later reads fail too" status_is 1

# ---- refused mounts ---------------------------------------------------------------

mkdir -p refused
run "$SSTFS" "$URL/missing.sstable" refused
check "a mount of a missing URL fails" [ "$rc" -ne 0 ]
check "... naming the status" err_has "HTTP 404"
check "... and the URL" err_has "$URL/missing.sstable"
not_mounted() { ! is_mounted "$1"; }
check "... and nothing is mounted" not_mounted "$WORK/refused"

for m in mnt stack outage changed; do
  fusermount3 -u "$WORK/$m"
done
for f in log/mnt log/stack log/outage log/cold log/warm log/damaged \
  log/changed log/bigm log/keys1 log/keysm log/bounded log/bounded2 log/shareA \
  log/shareB; do
  check "no sanitizer report in $f" sanitizer_free "$f"
done

summary
