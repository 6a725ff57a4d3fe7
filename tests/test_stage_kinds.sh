#!/usr/bin/env bash
# test_stage_kinds.sh BINDIR [dev|uring] — what a table cannot hold is
# refused on a staging mount, and said.
#
# What it shows:
#  - a hard link, a symbolic link, a device, a FIFO and an extended
#    attribute each fail (EPERM, or ENOTSUP for the attribute) with a line
#    in the daemon's log, create nothing, and the table holds just the
#    file that was there;
#  - empty directories are dropped; files in directories are kept.
# The modes, and the check of each daemon's log: tests/stage_lib.sh.
# shellcheck disable=SC2016
set -u
# shellcheck source=tests/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/stage_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/stage_lib.sh"
stage_init kinds "$@"

# Each refusal on a mount of its own: the daemon logs the first refusal of
# each kind only.
if command -v setfattr >/dev/null 2>&1; then
  xattr_tool=setfattr
elif [ "$have_python" = 1 ]; then
  xattr_tool=python3 # setfattr (package attr) is missing: os.setxattr
else
  xattr_tool=
fi
for kind in hardlink symlink chardev fifo xattr; do
  case $kind in
    hardlink) what="hard link" error="Operation not permitted" name=hl ;;
    symlink) what="symbolic link" error="Operation not permitted" name=sl ;;
    chardev) what="special file" error="Operation not permitted" name=chr ;;
    fifo) what="special file" error="Operation not permitted" name=fifo ;;
    xattr) what="extended attribute" error="Operation not supported" name=f ;;
  esac
  if [ "$kind" = xattr ] && [ -z "$xattr_tool" ]; then
    skip "xattr fails with ENOTSUP" "neither setfattr nor python3 is here"
    continue
  fi
  if [ "$kind" = chardev ] && [ "$(id -u)" != 0 ]; then
    skip "a device fails with EPERM" "not root: the kernel refuses mknod first"
    continue
  fi
  stage_fg "refuse-$kind" "$WORK/refuse-$kind.sstable" || continue
  allow[refuse-$kind]="/$name: $what"
  echo file >"$MNT/f"
  case $kind in
    hardlink) run ln "$MNT/f" "$MNT/hl" ;;
    symlink) run ln -s f "$MNT/sl" ;;
    chardev) run mknod "$MNT/chr" c 1 3 ;;
    fifo) run mknod "$MNT/fifo" p ;;
    xattr)
      if [ "$xattr_tool" = setfattr ]; then
        run setfattr -n user.test -v 1 "$MNT/f"
      else
        run python3 "$TESTS/set_xattr.py" "$MNT/f" user.test 1
      fi
      ;;
  esac
  check "$what ($kind) fails with \"$error\"" eval \
    '[ "$rc" -ne 0 ] && err_has "$error"'
  check "$what ($kind): the daemon logs a line about it" \
    grep -qE "/$name: $what" "log/refuse-$kind"
  check "$what ($kind): nothing is created" eval \
    '[ "$(ls -A "$MNT")" = f ]'
  commit "refuse-$kind"
  check "$what ($kind): the table holds just the file" eval \
    'status_is 0 && [ "$(keys "refuse-$kind.sstable")" = f ]'
done

if stage_fg kinds "$WORK/kinds.sstable"; then
  echo file >"$MNT/f"
  mkdir "$MNT/d" "$MNT/empty"
  mkdir -p "$MNT/e1/e2/e3"
  echo in-dir >"$MNT/d/f"
  commit kinds
  check "kinds: sstfs --unmount exits 0" status_is 0
  keys kinds.sstable >out 2>err
  check "empty directories are dropped, files in directories kept" \
    out_is "$(printf 'd/f\nf')"
  check "the file in a directory has its content" eval \
    '[ "$("$SST" get kinds.sstable d/f)" = in-dir ]'
fi

stage_finish
