#!/usr/bin/env bash
# test_stage_users.sh BINDIR — a staging mount shared with other users
# (-o allow_other) enforces the modes and owners it shows, as a kernel file
# system would. Acts as user nobody through setpriv; needs root.
#
# What it shows:
#  - the mount's root is 0755, owned by the mounting user;
#  - nobody cannot read a 0600 file of root's, create in root's 0755
#    directory, or delete root's file;
#  - in a 1777 directory, what nobody creates is nobody's: nobody can
#    append to it and delete it, but not delete root's file there;
#  - a setuid file nobody makes is nobody's, not root's; a write or a chgrp
#    by nobody clears setuid/setgid bits; root's chown of a setuid file
#    clears it too; a setgid directory passes its group on;
#  - the creator's umask applies;
#  - the table holds what each user wrote.
# shellcheck disable=SC2016
set -u
# shellcheck source=tests/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
BIN=$(cd "${1:?usage: test_stage_users.sh BINDIR}" && pwd)
SST=$BIN/sst
SSTFS=$BIN/sstfs

require_fuse
if [ "$(id -u)" -ne 0 ]; then
  echo "SKIP: acting as another user needs root"
  exit 77
fi
if ! command -v setpriv >/dev/null || ! id nobody >/dev/null 2>&1; then
  echo "SKIP: setpriv (util-linux) or user nobody missing"
  exit 77
fi
NOBODY=$(id -u nobody)
NOGROUP=$(id -g nobody)

passed=0 failed=0 skipped=0 rc=0
work_dir stage-users
chmod 0755 "$WORK" # nobody must reach the mount point
mkdir m

# as_nobody CMD...: runs CMD as nobody (status in $rc, output in out, err).
as_nobody() {
  run setpriv --reuid="$NOBODY" --regid="$NOGROUP" --clear-groups -- "$@"
}
owner() { stat -c %u:%g "$1"; }
mode() { stat -c %a "$1"; }

run "$SSTFS" --stage o.sstable m -o allow_other,nouring
check "mounted with -o allow_other" status_is 0
own_area o.sstable.stage

check "the root is 0755, owned by the mounting user" eval \
  '[ "$(mode m)" = 755 ] && [ "$(owner m)" = 0:0 ]'

echo secret >m/s
chmod 600 m/s
as_nobody cat m/s
check "nobody cannot read root's 0600 file" eval \
  '! status_is 0 && err_has "Permission denied" && ! out_has secret'
as_nobody sh -c 'echo evil >m/n'
check "nobody cannot create in root's 0755 directory" eval \
  '! status_is 0 && [ ! -e m/n ]'
as_nobody rm -f m/s
check "nobody cannot delete root's file" eval '! status_is 0 && [ -e m/s ]'

mkdir m/pub
chmod 1777 m/pub
echo rootfile >m/pub/r
chmod 666 m/pub/r
as_nobody sh -c 'umask 022; echo one >m/pub/x && echo two >>m/pub/x'
check "in a 1777 directory nobody creates and appends to its own file" eval \
  'status_is 0 && [ "$(owner m/pub/x)" = "$NOBODY:$NOGROUP" ] &&
   [ "$(mode m/pub/x)" = 644 ] && [ "$(cat m/pub/x)" = "one
two" ]'
as_nobody rm m/pub/r
check "the sticky bit keeps nobody from deleting root's file" eval \
  '! status_is 0 && [ -e m/pub/r ]'
as_nobody sh -c 'mkdir m/pub/d && echo y >m/pub/d/y && rm m/pub/d/y && echo z >m/pub/d/z'
check "nobody's directory is nobody's, and nobody deletes in it" eval \
  'status_is 0 && [ "$(owner m/pub/d)" = "$NOBODY:$NOGROUP" ] &&
   [ ! -e m/pub/d/y ] && [ "$(owner m/pub/d/z)" = "$NOBODY:$NOGROUP" ]'
as_nobody sh -c 'cp /bin/true m/pub/t && chmod 4755 m/pub/t'
check "a setuid copy nobody makes belongs to nobody, not root" eval \
  'status_is 0 && [ "$(owner m/pub/t)" = "$NOBODY:$NOGROUP" ] &&
   [ "$(mode m/pub/t)" = 4755 ]'
as_nobody sh -c 'echo gone >m/pub/gone && rm m/pub/gone'
check "nobody deletes its own file in a 1777 directory" eval \
  'status_is 0 && [ ! -e m/pub/gone ]'

cp /bin/true m/pub/suid
chmod 4777 m/pub/suid
as_nobody sh -c 'echo >>m/pub/suid'
check "a write by nobody clears root's setuid bit" eval \
  'status_is 0 && [ "$(mode m/pub/suid)" = 777 ] && [ "$(owner m/pub/suid)" = 0:0 ]'
as_nobody sh -c 'echo g >m/pub/g && chmod 6755 m/pub/g && chgrp '"$NOGROUP"' m/pub/g'
check "a chgrp by nobody clears setuid and setgid" eval \
  'status_is 0 && [ "$(mode m/pub/g)" = 755 ]'
cp /bin/true m/root-suid
chmod 4755 m/root-suid
chown "$NOBODY" m/root-suid
check "a chown clears the setuid bit" eval \
  '[ "$(mode m/root-suid)" = 755 ] && [ "$(owner m/root-suid)" = "$NOBODY:0" ]'

mkdir m/sg
chgrp "$NOGROUP" m/sg
chmod 2775 m/sg
touch m/sg/f
mkdir m/sg/sub
check "a setgid directory gives new entries its group (and subdirectories its bit)" eval \
  '[ "$(owner m/sg/f)" = "0:$NOGROUP" ] && [ "$(owner m/sg/sub)" = "0:$NOGROUP" ] &&
   [ "$(mode m/sg/sub)" = 2755 ]'

(umask 077 && touch m/private && mkdir m/privdir)
(umask 002 && touch m/groupw && mkdir m/groupd)
check "the creator's umask applies (not the daemon's)" eval \
  '[ "$(mode m/private)" = 600 ] && [ "$(mode m/privdir)" = 700 ] &&
   [ "$(mode m/groupw)" = 664 ] && [ "$(mode m/groupd)" = 775 ]'

run "$SSTFS" --unmount m
check "sstfs --unmount exits 0" status_is 0
run "$SST" get o.sstable pub/x
check "the table holds nobody's file" eval 'status_is 0 && out_is "one
two"'
run "$SST" get o.sstable s
check "the table holds root's 0600 file" eval 'status_is 0 && out_is secret'

summary
