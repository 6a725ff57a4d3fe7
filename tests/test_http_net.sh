#!/usr/bin/env bash
# test_http_net.sh — tables read by URL over a network that is slow or
# failing, and over HTTPS, from a real nginx on loopback:
#   - through tests/delay_proxy.py at 20 ms per round trip, a mount lists
#     and reads the packed tree (ls, find, cat, diff -r), in few requests;
#     a large value read in order is fetched ahead of its reads by the
#     daemon's read-ahead thread (SST_HTTP_LOG tells which requests);
#   - real HTTP 503 answers (from the proxy, in front of nginx): a few at
#     open or at a read are retried and the mount or the read succeeds;
#     503 every time fails that read alone with EIO, logged once with the
#     URL, while the mount stays and other files read; connection resets
#     and a request that is never answered (a timeout) are retried;
#     503 every time at open fails the mount with the status and the URL;
#   - HTTPS with a certificate made here (openssl): a mount that trusts
#     its CA reads the tree, and a mount against the untrusted certificate
#     fails with a message naming the certificate and the URL.
#
# Usage: bash tests/test_http_net.sh BINDIR    (BINDIR holds sst, sstfs)
#
# Prints "ok - NAME" or "not ok - NAME" per check, then "N passed, M
# failed". Exits non-zero if any check failed, 77 (SKIP, with
# the reason) when FUSE, nginx, python3, openssl or curl is missing
# (scripts/setup installs them). nginx, the proxy and every mount live
# under a fresh temporary directory ($WORK, see tests/lib.sh), stopped
# and unmounted at exit.
# shellcheck disable=SC2016,SC2034
set -u
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/lib.sh
. "$HERE/lib.sh"

BIN=${1:?usage: test_http_net.sh BINDIR}
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
for prog in python3 openssl curl; do
  if ! command -v "$prog" >/dev/null 2>&1; then
    echo "SKIP: $prog is not installed (scripts/setup installs it)"
    exit 77
  fi
done

passed=0
failed=0
skipped=0
rc=0
work_dir http-net
# nginx's workers may run as another user: they must reach the files.
chmod 755 "$WORK"

# ms_since T0: milliseconds since T0, a value of $EPOCHREALTIME.
ms_since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%d", (b - a) * 1000 }'; }

# ---- the certificate, the server, the proxy ---------------------------------

mkdir -p www log tmp tls
# A CA of this test alone, and the server's certificate signed by it, for
# the address the server listens on.
if ! openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=sstfs test CA" \
  -keyout tls/ca.key -out tls/ca.crt \
  -addext "basicConstraints=critical,CA:TRUE" \
  -addext "keyUsage=critical,keyCertSign" >log/openssl 2>&1 ||
  ! openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
    -keyout tls/server.key -out tls/server.csr >>log/openssl 2>&1 ||
  ! printf '%s\n' "subjectAltName=IP:127.0.0.1,DNS:localhost" \
    "basicConstraints=CA:FALSE" "extendedKeyUsage=serverAuth" >tls/ext ||
  ! openssl x509 -req -in tls/server.csr -CA tls/ca.crt -CAkey tls/ca.key \
    -CAcreateserial -days 2 -extfile tls/ext -out tls/server.crt \
    >>log/openssl 2>&1; then
  echo "SKIP: openssl could not make a certificate: $(tail -n 3 log/openssl)"
  exit 77
fi

PORT=$(python3 "$HERE/free_port.py") || exit 1
TLS_PORT=$(python3 "$HERE/free_port.py") || exit 1
sed -e "s|@WORK@|$WORK|g" -e "s|@PORT@|$PORT|g" -e "s|@TLS_PORT@|$TLS_PORT|g" \
  "$HERE/http_net_nginx.conf" >nginx.conf
"$NGINX" -p "$WORK" -e "$WORK/log/error.log" -c "$WORK/nginx.conf" \
  2>>log/nginx.err &
NGINX_PID=$!
own_helper "$NGINX_PID"
listening() {
  python3 "$HERE/free_port.py" --busy "$PORT" &&
    python3 "$HERE/free_port.py" --busy "$TLS_PORT"
}
for ((i = 0; i < 100; i++)); do
  listening && break
  alive "$NGINX_PID" || break
  sleep 0.05
done
if ! listening; then
  echo "SKIP: nginx did not start: $(head -n 3 log/nginx.err)"
  exit 77
fi
URL=http://127.0.0.1:$PORT
TLS_URL=https://127.0.0.1:$TLS_PORT

# The proxy: 10 ms each way, faults from ./faults, a line a request in
# log/proxy.log.
python3 "$HERE/delay_proxy.py" --target "127.0.0.1:$PORT" --delay-ms 10 \
  --port-file proxy.port --faults "$WORK/faults" --log "$WORK/log/proxy.log" \
  >/dev/null 2>log/proxy.err &
PROXY_PID=$!
own_helper "$PROXY_PID"
for ((i = 0; i < 200; i++)); do
  [ -s proxy.port ] && break
  alive "$PROXY_PID" || break
  sleep 0.05
done
if [ ! -s proxy.port ]; then
  echo "SKIP: the proxy did not start: $(tail -n 3 log/proxy.err)"
  exit 77
fi
PROXY=http://127.0.0.1:$(cat proxy.port)
: >>log/proxy.log

# fault KIND COUNT [TEXT]: the proxy's next COUNT requests (containing
# TEXT) get KIND (see tests/delay_proxy.py); "fault" alone: none.
fault() {
  if [ $# -eq 0 ]; then
    rm -f faults
  else
    echo "$*" >faults.tmp && mv faults.tmp faults
  fi
}
# requests: lines in nginx's access log so far.
requests() { wc -l <log/access.log; }
# proxy_lines: lines in the proxy's log so far.
proxy_lines() { wc -l <log/proxy.log; }
# proxied KIND FROM: requests the proxy treated as KIND after line FROM.
proxied() { awk -v k="$1" -v from="$2" 'NR > from && $1 == k { n++ } END { print n + 0 }' log/proxy.log; }

# mount_url MNT URL...: a foreground daemon, stderr in log/MNT.
mount_url() {
  local mnt=$1
  shift
  mkdir -p "$mnt"
  "$SSTFS" -f "$@" "$mnt" 2>"log/$mnt" &
  own_daemon $!
  wait_mounted "$WORK/$mnt" $!
}
not_mounted() { ! is_mounted "$1"; }

# ---- tables ----------------------------------------------------------------

# 256 files of random bytes, 8 MB in all: the values of one directory lie
# about 512 KB from the next one's, so that reads in different
# directories far apart fetch different blocks.
python3 "$HERE/make_tree.py" src 16 16 65536 7 || exit 1
mkdir -p src/d00/sub && echo small >src/d00/sub/small.txt
run "$SST" pack src www/tree.sstable
check "pack the tree" status_is 0
run "$SST" build -o www/records.sstable - <<'EOF'
alpha,1
beta,two
gamma,3
EOF
check "build a small table of records" status_is 0
# The files read in the failure cases: in the middle of the table.
FILE=d08/f008
OTHER=d03/f005
check "they are not empty" [ -s "src/$FILE" ] && [ -s "src/$OTHER" ]

# ---- at 20 ms per round trip ------------------------------------------------------

# The proxy adds what it says: a request on a kept connection costs a round
# trip, on a new one two (the handshake's).
curl -s -o /dev/null -o /dev/null -w '%{time_total}\n' \
  "$PROXY/records.sstable" "$PROXY/records.sstable" >took
echo "# curl through the proxy: $(paste -s -d ' ' took) s (new, kept connection)"
check "a request through the proxy takes 20 ms, on a new connection 40" \
  awk 'NR == 1 && $1 < 0.040 { bad = 1 } NR == 2 && $1 < 0.020 { bad = 1 }
    END { exit bad || NR != 2 }' took

before=$(requests)
t0=$EPOCHREALTIME
mount_url slow "$PROXY/tree.sstable"
check "mount through the proxy" is_mounted "$WORK/slow"
n=$(($(requests) - before))
echo "# through the proxy: mount $n requests, $(ms_since "$t0") ms"
check "... in at most 2 requests" [ "$n" -le 2 ]
before=$(requests)
t0=$EPOCHREALTIME
run ls slow/d05
ls src/d05 >want
check "ls of a directory through the proxy" eval 'status_is 0 && cmp -s out want'
echo "# through the proxy: ls $(($(requests) - before)) requests, $(ms_since "$t0") ms"
before=$(requests)
t0=$EPOCHREALTIME
run cat slow/d05/f003
check "cat of a file through the proxy" cmp out src/d05/f003
echo "# through the proxy: cat $(($(requests) - before)) requests, $(ms_since "$t0") ms"
(cd src && find . | sort) >want
t0=$EPOCHREALTIME
(cd slow && find . | sort) >out
check "find through the proxy" cmp out want
echo "# through the proxy: find $(ms_since "$t0") ms"
before=$(requests)
t0=$EPOCHREALTIME
run diff -r src slow
check "diff -r of the tree and the mount through the proxy" status_is 0
echo "# through the proxy: diff -r $(($(requests) - before)) requests, $(ms_since "$t0") ms"
fusermount3 -u "$WORK/slow"

# A large value read in order at 20 ms a round trip: the daemon's
# read-ahead thread asks for each window before the reads reach it, so
# that (SST_HTTP_LOG says why each request was made) no more than the
# first reads make requests of their own and wait a round trip.
mkdir -p big && head -c $((16 << 20)) /dev/urandom >big/large.bin
run "$SST" pack big www/big.sstable
check "pack a 16 MiB value" status_is 0
export SST_HTTP_LOG=$WORK/log/big.why
mount_url bigslow "$PROXY/big.sstable"
unset SST_HTTP_LOG
before=$(requests)
from=$(wc -l <log/big.why)
t0=$EPOCHREALTIME
run cmp bigslow/large.bin big/large.bin
check "a 16 MiB value read through the proxy is right" status_is 0
ms=$(ms_since "$t0")
n=$(($(requests) - before))
tail -n +$((from + 1)) log/big.why >big.why
ahead=$(grep -c '^ahead ' big.why)
asked=$(grep -c '^read ' big.why)
echo "# through the proxy: 16 MiB value $n requests, $ahead of them made" \
  "ahead, $asked by reads that found their bytes missing, $ms ms"
check "... each request in the log of SST_HTTP_LOG" [ "$(wc -l <big.why)" -eq "$n" ]
check "... at most 3 made by a read that found its bytes missing" \
  [ "$asked" -le 3 ]
# What each request was, when that check fails.
[ "$asked" -le 3 ] || sed 's/^/#   /' big.why
check "... the others made ahead, before a read asked for their bytes" \
  [ "$ahead" -eq $((n - asked)) -a "$ahead" -ge 4 ]
fusermount3 -u "$WORK/bigslow"

# ---- HTTP 503, resets, a timeout ------------------------------------------------

# Each case on a fresh mount, which holds only what open fetched (the
# last MiB and the first block): reading FILE then needs a request.

from=$(proxy_lines)
fault 503 2
mount_url retried "$PROXY/tree.sstable"
check "503 twice at open: the mount succeeds" is_mounted "$WORK/retried"
check "... after 2 answers of 503" [ "$(proxied 503 "$from")" -eq 2 ]
from=$(proxy_lines)
fault 503 3
run cat "retried/$FILE"
check "503 three times at a read: the read succeeds" \
  eval 'status_is 0 && cmp -s out "src/$FILE"'
check "... after 3 answers of 503" [ "$(proxied 503 "$from")" -eq 3 ]
fault
fusermount3 -u "$WORK/retried"

mount_url failing "$PROXY/tree.sstable"
from=$(proxy_lines)
fault 503 always
t0=$EPOCHREALTIME
run cat "failing/$FILE"
ms=$(ms_since "$t0")
check "503 every time: the read fails" status_is 1
check "... with EIO" err_has "Input/output error"
echo "# 503 every time: $(proxied 503 "$from") requests, EIO after $ms ms"
check "... after a few tries" [ "$(proxied 503 "$from")" -ge 2 ]
sleep 0.2
# The kernel reads a page again itself when its readahead failed: two
# reads reach the daemon, each tried as often.
lines=$(grep -c "$PROXY/tree.sstable: .*Service Unavailable" log/failing)
echo "# 503 every time: $lines log lines"
check "... logged, naming the URL and the status" [ "$lines" -ge 1 ]
check "the mount stays" is_mounted "$WORK/failing"
run ls failing/d08
ls src/d08 >want
check "... and lists its directories meanwhile" eval 'status_is 0 && cmp -s out want'
fault
check "once the server answers again, other files read" \
  cmp "failing/$OTHER" "src/$OTHER"
check "... and so does the file that failed" cmp "failing/$FILE" "src/$FILE"
fusermount3 -u "$WORK/failing"

mount_url reset "$PROXY/tree.sstable"
from=$(proxy_lines)
fault reset 2
run cat "reset/$FILE"
check "connections reset twice at a read: the read succeeds" \
  eval 'status_is 0 && cmp -s out "src/$FILE"'
check "... after 2 resets" [ "$(proxied reset "$from")" -eq 2 ]
fault
fusermount3 -u "$WORK/reset"

mount_url stalled "$PROXY/tree.sstable"
from=$(proxy_lines)
fault stall 1
t0=$EPOCHREALTIME
cat "stalled/$FILE" >out 2>err &
reader=$!
# While that read waits, a listing is answered: a mount of a URL serves
# requests on a pool of threads (a mount of files on one thread). The
# proxy logs the stall when it begins.
for ((i = 0; i < 100; i++)); do
  [ "$(proxied stall "$from")" -ge 1 ] && break
  sleep 0.05
done
t1=$EPOCHREALTIME
ls stalled/d03 >ls.out
ls_ms=$(ms_since "$t1")
waiting=0
alive "$reader" && waiting=1
wait "$reader"
rc=$?
ms=$(ms_since "$t0")
echo "# a request never answered: the read took $ms ms; an ls meanwhile $ls_ms ms"
check "a request never answered times out, and the read succeeds" \
  eval 'status_is 0 && cmp -s out "src/$FILE"'
check "... and while it waits, ls of a directory is answered" eval \
  '[ "$waiting" -eq 1 ] && ls src/d03 | cmp -s - ls.out'
check "... after one stalled request" [ "$(proxied stall "$from")" -eq 1 ]
fault
fusermount3 -u "$WORK/stalled"

from=$(proxy_lines)
fault 503 always
mkdir -p refused
t0=$EPOCHREALTIME
run "$SSTFS" "$PROXY/tree.sstable" refused
ms=$(ms_since "$t0")
fault
echo "# 503 every time at open: $(proxied 503 "$from") requests, failed after $ms ms"
check "503 every time at open: the mount fails" [ "$rc" -ne 0 ]
check "... naming the status" err_has "HTTP 503"
check "... and the URL" err_has "$PROXY/tree.sstable"
check "... and nothing is mounted" not_mounted "$WORK/refused"

# ---- HTTPS --------------------------------------------------------------------

run curl -s --cacert tls/ca.crt -r 0-7 "$TLS_URL/tree.sstable"
check "nginx serves HTTPS with the test's certificate" out_is SSTFSTBL

# CURL_CA_BUNDLE (or SSL_CERT_FILE) names a CA file, as for curl(1).
run env CURL_CA_BUNDLE="$WORK/tls/ca.crt" "$SST" get "$TLS_URL/records.sstable" beta
check "sst get over HTTPS, the CA given by CURL_CA_BUNDLE" \
  eval 'status_is 0 && out_is two'
run env -u CURL_CA_BUNDLE SSL_CERT_FILE="$WORK/tls/ca.crt" "$SST" get \
  "$TLS_URL/records.sstable" beta
check "sst get over HTTPS, the CA given by SSL_CERT_FILE" \
  eval 'status_is 0 && out_is two'

# The CA trusted the way every libcurl program trusts one: in the bundle
# libcurl was built with, here bound over it in a mount namespace of this
# test alone (the system's file is not changed).
bundle=$(curl-config --ca 2>/dev/null)
[ -f "$bundle" ] || bundle=/etc/ssl/certs/ca-certificates.crt
cat "$bundle" tls/ca.crt >tls/bundle.crt 2>/dev/null
mkdir -p tls_mnt
before=$(wc -l <log/tls.log)
unshare -m --propagation private bash -c '
  . "$1/lib.sh"
  sstfs=$2 url=$3 bundle=$4 system=$5 mnt=$6
  mount --bind "$bundle" "$system" || exit 3
  "$sstfs" -f "$url" "$mnt" 2>log/tls_mnt &
  pid=$!
  trap "fusermount3 -u $mnt 2>/dev/null; kill $pid 2>/dev/null" EXIT
  wait_mounted "$mnt" "$pid" || exit 4
  diff -r src "$mnt" >tls_diff 2>&1 || exit 5
  fusermount3 -u "$mnt"
  wait "$pid"
' _ "$HERE" "$SSTFS" "$TLS_URL/tree.sstable" "$WORK/tls/bundle.crt" \
  "$bundle" "$WORK/tls_mnt" 2>tls_err &
ns=$!
own_helper "$ns"
wait "$ns"
rc=$?
cp tls_err err
check "a mount over HTTPS that trusts the CA: diff -r finds the tree" status_is 0
check "... read over TLS" [ "$(($(wc -l <log/tls.log) - before))" -ge 2 ]
check "... no sanitizer report" sanitizer_free log/tls_mnt

mkdir -p untrusted
t0=$EPOCHREALTIME
run "$SSTFS" "$TLS_URL/tree.sstable" untrusted
echo "# an untrusted certificate: the mount failed after $(ms_since "$t0") ms: $(head -n 1 err)"
check "a mount over HTTPS against an untrusted certificate fails" [ "$rc" -ne 0 ]
check "... naming the certificate" grep -qi "certificate" err
check "... and the URL" err_has "$TLS_URL/tree.sstable"
check "... and nothing is mounted" not_mounted "$WORK/untrusted"
run "$SST" get "$TLS_URL/records.sstable" beta
check "sst get against an untrusted certificate fails too" \
  eval '[ "$rc" -ne 0 ] && grep -qi certificate err'

for f in log/slow log/bigslow log/retried log/failing log/reset log/stalled; do
  check "no sanitizer report in $f" sanitizer_free "$f"
done

summary
