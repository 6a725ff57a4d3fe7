#!/usr/bin/env bash
# test_s3_store.sh — the local S3-compatible store that tests of s3:// URLs
# run against (scripts/s3-local: Ceph's monitor, an in-memory OSD and
# radosgw on 127.0.0.1), checked with requests signed by curl's SigV4.
#
# Usage: bash tests/test_s3_store.sh
#
# What it shows:
#  - start prints AWS_ENDPOINT_URL (on 127.0.0.1), AWS_ACCESS_KEY_ID,
#    AWS_SECRET_ACCESS_KEY and AWS_REGION, writes them to DIR/env, records
#    the daemons' pids, and the daemons listen on the loopback address only;
#  - mb makes a bucket and put uploads a file, printing its ETag;
#  - the answers a reader of remote tables relies on: a signed range
#    request gets 206 with exactly those bytes, Content-Range and the
#    object's ETag; a wrong If-Match gets 412 and the right one 206; a bad
#    secret gets 403, an unsigned request 403, a missing key 404;
#  - stop ends every process that start recorded, frees the port and
#    removes DIR.
#
# Exits 77 (SKIP, with the reason) only when the store cannot run on this
# machine at all (its programs are not installed: scripts/setup installs
# them); a store that is installed but does not start fails the test.
# shellcheck disable=SC2016,SC2034
set -u
# shellcheck source=tests/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
S3LOCAL=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/scripts/s3-local
export LC_ALL=C

passed=0 failed=0 skipped=0 rc=0
work_dir s3-store
STORE=$WORK/store

# At exit the store is stopped (by the pids it recorded) before $WORK goes.
store_cleanup() {
  [ -d "$STORE" ] && "$S3LOCAL" stop "$STORE" >/dev/null 2>&1
}
trap 'store_cleanup; work_cleanup' EXIT

# ---- start
t0=$SECONDS
run "$S3LOCAL" start "$STORE"
if [ "$rc" -eq 77 ]; then
  echo "SKIP: $(tail -n 1 err)"
  exit 77
fi
started=$((SECONDS - t0))
check "start: exit 0" status_is 0
if [ "$rc" -ne 0 ]; then
  sed 's/^/#   /' err
  summary
  exit 1
fi
check "start prints the four variables, the endpoint on 127.0.0.1" eval \
  'grep -qE "^AWS_ENDPOINT_URL=http://127\.0\.0\.1:[0-9]+$" out &&
   grep -qE "^AWS_ACCESS_KEY_ID=.+$" out &&
   grep -qE "^AWS_SECRET_ACCESS_KEY=.+$" out &&
   grep -qE "^AWS_REGION=.+$" out'
check "start writes the same to DIR/env" eval \
  'diff <(grep = out) <(grep = "$STORE/env") >/dev/null'
# shellcheck disable=SC1091
. "$STORE/env"

mapfile -t pids < <(awk '{ print $2 }' "$STORE/pids")
all_alive() {
  local p
  for p in "${pids[@]}"; do alive "$p" || return 1; done
}
check "start records three running daemons (monitor, OSD, radosgw)" eval \
  '[ ${#pids[@]} -eq 3 ] && all_alive'

# listen_addrs PID...: the local addresses (hex, as in /proc/net/tcp*) of
# the listening TCP sockets that these processes hold.
listen_addrs() {
  local p
  for p in "$@"; do
    find "/proc/$p/fd" -lname 'socket:*' -printf '%l\n' 2>/dev/null
  done | sed 's/^socket:\[\(.*\)\]$/\1/' |
    awk 'NR == FNR { ino[$1] = 1; next }
         FNR > 1 && $4 == "0A" && ($10 in ino) { split($2, a, ":"); print a[1] }' \
      - /proc/net/tcp /proc/net/tcp6 | sort -u
}
# 127.0.0.1 is 0100007F in /proc/net/tcp.
check "the daemons listen on 127.0.0.1 only" eval \
  '[ "$(listen_addrs "${pids[@]}")" = 0100007F ]'
rss=0
for p in "${pids[@]}"; do
  rss=$((rss + $(awk '/^VmRSS:/ { print $2 }' "/proc/$p/status" 2>/dev/null || echo 0)))
done
echo "# started in ${started} s; the three daemons' resident memory: $((rss / 1024)) MiB"

# ---- a bucket and an object
head -c 300000 /dev/urandom >obj
run "$S3LOCAL" mb "$STORE" tables
check "mb makes a bucket" status_is 0
run "$S3LOCAL" put "$STORE" obj tables/dir/obj.sstable
etag=$(cat out)
check "put uploads a file and prints its ETag (the MD5 of one part)" eval \
  'status_is 0 && [ "$etag" = "\"$(md5sum <obj | cut -d" " -f1)\"" ]'
run "$S3LOCAL" put "$STORE" obj nobucket/x
check "put to a missing bucket fails with the server's answer" eval \
  'status_is 1 && err_has NoSuchBucket'

# get [CURL ARGS...] URL: a request signed with the store's key (or with
# $secret when set), body in ./out, headers in ./hdr, status in $code.
get() {
  code=$(curl -s -o out -D hdr -w '%{http_code}' \
    --aws-sigv4 "aws:amz:$AWS_REGION:s3" \
    --user "$AWS_ACCESS_KEY_ID:${secret:-$AWS_SECRET_ACCESS_KEY}" \
    -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" "$@" 2>err)
  rc=$?
}
header() { tr -d '\r' <hdr | sed -n "s/^$1: //Ip"; }
URL=$AWS_ENDPOINT_URL/tables/dir/obj.sstable

get -r 123456-133455 "$URL"
check "a signed range request: 206" eval '[ "$code" = 206 ]'
check "... with exactly those 10000 bytes" eval \
  'cmp -s out <(tail -c +123457 obj | head -c 10000)'
check "... Content-Range bytes 123456-133455/300000" eval \
  '[ "$(header Content-Range)" = "bytes 123456-133455/300000" ]'
check "... and the object's ETag" eval '[ "$(header ETag)" = "$etag" ]'
get -r 0-99 -H "If-Match: $etag" "$URL"
check "If-Match with the ETag: 206" eval '[ "$code" = 206 ] && cmp -s out <(head -c 100 obj)'
get -r 0-99 -H 'If-Match: "0123456789abcdef0123456789abcdef"' "$URL"
check "If-Match with another ETag: 412" eval '[ "$code" = 412 ]'
secret=not-the-secret get -r 0-99 "$URL"
check "a bad secret: 403" eval '[ "$code" = 403 ] && grep -q SignatureDoesNotMatch out'
code=$(curl -s -o out -w '%{http_code}' -r 0-99 "$URL")
check "an unsigned request: 403" eval '[ "$code" = 403 ]'
get -r 0-99 "$AWS_ENDPOINT_URL/tables/dir/missing.sstable"
check "a missing key: 404" eval '[ "$code" = 404 ] && grep -q NoSuchKey out'

# ---- stop
run "$S3LOCAL" stop "$STORE"
check "stop: exit 0, DIR removed" eval 'status_is 0 && [ ! -e "$STORE" ]'
none_alive() {
  local p
  for p in "${pids[@]}"; do alive "$p" && return 1; done
  return 0
}
check "stop leaves none of the processes start began" none_alive
check "stop frees the endpoint's port" eval \
  '! curl -s -o /dev/null -m 2 "$AWS_ENDPOINT_URL/"'

summary
