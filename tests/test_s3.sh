#!/usr/bin/env bash
# test_s3.sh — tables read from a real S3-compatible store (Ceph's
# radosgw, started by scripts/s3-local on 127.0.0.1) through s3:// URLs:
# requests signed with SigV4, credentials from the environment or from a
# credentials file, the sst read commands give what they give on the file,
# a FUSE mount of the URL is the packed tree, a table replaced in the
# store fails reads with EIO (never other bytes), and a wrong secret, a
# missing key or missing credentials fail with the reason.
#
# Usage: bash tests/test_s3.sh BINDIR    (BINDIR holds sst, sstfs)
#
# Prints "ok - NAME" or "not ok - NAME" per check, then "N passed, M
# failed". Exits 77 (SKIP, with the reason) when FUSE or the store's
# programs are missing (scripts/setup installs them); the store and every
# mount live under a fresh temporary directory, stopped at exit.
# shellcheck disable=SC2034
set -u
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/lib.sh
. "$HERE/lib.sh"
S3LOCAL=$(cd "$HERE/.." && pwd)/scripts/s3-local

BIN=${1:?usage: test_s3.sh BINDIR}
case $BIN in /*) ;; *) BIN=$PWD/$BIN ;; esac
SST=$BIN/sst
SSTFS=$BIN/sstfs
export LC_ALL=C

require_fuse
passed=0 failed=0 skipped=0 rc=0
work_dir s3
STORE=$WORK/store
store_cleanup() {
  [ -d "$STORE" ] && "$S3LOCAL" stop "$STORE" >/dev/null 2>&1
}
trap 'store_cleanup; work_cleanup' EXIT

run "$S3LOCAL" start "$STORE"
if [ "$rc" -eq 77 ]; then
  echo "SKIP: $(tail -n 1 err)"
  exit 77
fi
check "the store starts" status_is 0
if [ "$rc" -ne 0 ]; then
  sed 's/^/#   /' err
  summary
  exit 1
fi
# shellcheck disable=SC1091
. "$STORE/env"
unset AWS_SESSION_TOKEN AWS_PROFILE AWS_SHARED_CREDENTIALS_FILE
export HOME=$WORK/home
mkdir -p "$HOME"

# The tree: text, a large file of random bytes (so that the table is
# larger than what a mount fetches at open), an empty file, a symlink, an
# executable.
mkdir -p tree/sub
for i in $(seq 1 300); do
  seq 1 $((i % 40 + 1)) | sed "s/^/file $i line /" >"tree/sub/f$i.txt"
done
head -c 3000000 /dev/urandom >tree/big.bin
: >tree/empty
ln -s sub/f1.txt tree/link
printf '#!/bin/sh\necho hi\n' >tree/run.sh
chmod 755 tree/run.sh
run "$SST" pack -q tree t.sstable
check "pack the tree" status_is 0
run "$S3LOCAL" mb "$STORE" tables
check "make a bucket" status_is 0
run "$S3LOCAL" put "$STORE" t.sstable tables/dir/t.sstable
check "upload the table" status_is 0
T=s3://tables/dir/t.sstable

for cmd in info "ls" "dump --escape"; do
  # shellcheck disable=SC2086 # the words of $cmd are arguments
  "$SST" $cmd t.sstable >want 2>&1
  # shellcheck disable=SC2086
  run "$SST" $cmd "$T"
  sed -i "s|$T|t.sstable|" out
  check "sst $cmd of the s3:// URL is that of the file" eval \
    'status_is 0 && cmp -s out want'
done
run "$SST" get "$T" big.bin
check "sst get of a large value is the file" eval 'status_is 0 && cmp -s out tree/big.bin'

run "$SST" verify "$T"
check "sst verify of the s3:// URL" eval 'status_is 0 && out_has "ok"'

# Credentials from a file, the environment's unset.
mkdir -p "$HOME/.aws"
printf '[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n' \
  "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" >"$HOME/.aws/credentials"
run env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY "$SST" get "$T" sub/f3.txt
check "credentials from ~/.aws/credentials" eval \
  'status_is 0 && out_has "file 3 line 4"'
printf '[other]\naws_access_key_id = %s\naws_secret_access_key = %s\n' \
  "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" >"$WORK/creds"
run env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY \
  AWS_SHARED_CREDENTIALS_FILE="$WORK/creds" AWS_PROFILE=other \
  "$SST" get "$T" sub/f3.txt
check "credentials from AWS_SHARED_CREDENTIALS_FILE, profile AWS_PROFILE" \
  eval 'status_is 0 && out_has "file 3 line 4"'
rm -f "$HOME/.aws/credentials"
run env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY "$SST" info "$T"
check "no credentials: an error that says where to put them" eval \
  'status_is 1 && err_has "no credentials" && err_has "AWS_ACCESS_KEY_ID"'
run env AWS_SECRET_ACCESS_KEY=wrong "$SST" info "$T"
check "a wrong secret: HTTP 403 and the URL" eval \
  'status_is 1 && err_has "$T" && err_has "403"'
run "$SST" info s3://tables/dir/missing.sstable
check "a missing key: HTTP 404 and the URL" eval \
  'status_is 1 && err_has "s3://tables/dir/missing.sstable" && err_has "404"'
run "$SST" info s3://tables
check "a URL without a key: a usage error" eval \
  'status_is 1 && err_has "not s3://BUCKET/KEY"'

# The mount.
mkdir -p mnt log
"$SSTFS" -f "$T" "$WORK/mnt" 2>log/mnt &
own_daemon $!
wait_mounted "$WORK/mnt" $!
check "mount of the s3:// URL" is_mounted "$WORK/mnt"
run diff -r tree mnt
check "diff -r of the tree and the mount is empty" eval 'status_is 0 && [ ! -s out ]'
run mnt/run.sh
check "a script on the mount runs" eval 'status_is 0 && out_is hi'
mkdir -p mnt2
run "$SSTFS" s3://tables/dir/missing.sstable "$WORK/mnt2"
check "a mount of a missing key fails with HTTP 404" eval \
  'status_is 1 && err_has "404"'

fusermount3 -u "$WORK/mnt"

# The table replaced in the store under a fresh mount: a read of what was
# not fetched yet (the large file lies before the tail read at open) fails
# with EIO, and serves no byte of the new object.
mkdir -p mnt3
"$SSTFS" -f "$T" "$WORK/mnt3" 2>log/mnt3 &
own_daemon $!
wait_mounted "$WORK/mnt3" $!
cat mnt3/sub/f1.txt >/dev/null
cp t.sstable other.sstable
printf 'changed' | dd of=other.sstable bs=1 seek=100 conv=notrunc 2>/dev/null
"$S3LOCAL" put "$STORE" other.sstable tables/dir/t.sstable >/dev/null 2>&1
run cat mnt3/big.bin
check "after the object changed, a read fails with EIO" eval \
  'status_is 1 && err_has "Input/output error" && [ ! -s out ]'
check "... and the log names the URL" grep -qF "$T" log/mnt3
fusermount3 -u "$WORK/mnt3"

summary
