#!/usr/bin/env bash
# test_stage_kinds.sh BINDIR [dev|uring] — which kinds of entry a staging
# mount keeps, and which it refuses.
#
# What it shows:
#  - a device and a FIFO each fail with EPERM and a line in the daemon's
#    log, and create nothing; an extended attribute outside user.* fails
#    with ENOTSUP; the table then holds just the file that was there;
#  - a hard link, a symbolic link, a user.* extended attribute and empty
#    directories are kept: in the table (a directory entry for each
#    directory, the link's target as its value) and on a read-only mount
#    of it (one inode for both names, the target, the attribute, the
#    directories).
# The modes, and the check of each daemon's log: tests/stage_lib.sh.
# shellcheck disable=SC2016
set -u
# shellcheck source=tests/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/stage_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/stage_lib.sh"
stage_init kinds "$@"

if command -v setfattr >/dev/null 2>&1; then
  xattr_tool=setfattr
elif [ "$have_python" = 1 ]; then
  xattr_tool=python3 # setfattr (package attr) is missing: os.setxattr
else
  xattr_tool=
fi
# set_xattr PATH NAME VALUE
set_xattr() {
  if [ "$xattr_tool" = setfattr ]; then
    run setfattr -n "$2" -v "$3" "$1"
  else
    run python3 "$TESTS/set_xattr.py" "$1" "$2" "$3"
  fi
}

# Each refusal on a mount of its own: the daemon logs the first refusal
# only.
for kind in chardev fifo xattr; do
  case $kind in
    chardev) what="special file" error="Operation not permitted" name=chr ;;
    fifo) what="special file" error="Operation not permitted" name=fifo ;;
    xattr) what="extended attribute outside user.*" \
      error="Operation not supported" name=f ;;
  esac
  if [ "$kind" = xattr ] && { [ -z "$xattr_tool" ] || [ "$(id -u)" != 0 ]; }; then
    skip "$what fails with ENOTSUP" "needs root (trusted.*) and setfattr or python3"
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
    chardev) run mknod "$MNT/chr" c 1 3 ;;
    fifo) run mknod "$MNT/fifo" p ;;
    xattr) set_xattr "$MNT/f" trusted.test 1 ;;
  esac
  check "$what ($kind) fails with \"$error\"" eval \
    '[ "$rc" -ne 0 ] && err_has "$error"'
  if [ "$kind" != xattr ]; then
    check "$what ($kind): the daemon logs a line about it" \
      grep -qE "/$name: $what" "log/refuse-$kind"
  fi
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
  run ln "$MNT/f" "$MNT/hl"
  check "a hard link is made" status_is 0
  run ln -s d/f "$MNT/sl"
  check "a symbolic link is made" status_is 0
  if [ -n "$xattr_tool" ]; then
    set_xattr "$MNT/d/f" user.kind kept
    check "a user.* extended attribute is set" status_is 0
  fi
  commit kinds
  check "kinds: sstfs --unmount exits 0" status_is 0
  keys kinds.sstable >out 2>err
  check "the table holds the files and both links" \
    out_is "$(printf 'd/f\nf\nhl\nsl')"
  dir_keys kinds.sstable >out 2>err
  check "and an entry for each directory, the empty ones too" \
    out_is "$(printf '/\nd/\ne1/\ne1/e2/\ne1/e2/e3/\nempty/')"
  check "the file in a directory has its content, the link its target" eval \
    '[ "$("$SST" get kinds.sstable d/f)" = in-dir ] &&
     [ "$("$SST" get kinds.sstable sl)" = d/f ]'
  if ro_fg kindsro kinds.sstable; then
    check "read-only mount: the hard link's names share an inode" eval \
      '[ "$(stat -c "%i %h" "$MNT/f")" = "$(stat -c "%i %h" "$MNT/hl")" ] &&
       [ "$(stat -c %h "$MNT/f")" = 2 ]'
    check "read-only mount: the symbolic link and its target" eval \
      '[ "$(readlink "$MNT/sl")" = d/f ] && [ "$(cat "$MNT/sl")" = in-dir ]'
    check "read-only mount: the empty directories" \
      [ -d "$MNT/empty" ] && [ -d "$MNT/e1/e2/e3" ]
    if [ "$have_python" = 1 ]; then
      run python3 -c 'import os, sys; print(os.getxattr(sys.argv[1], "user.kind").decode())' "$MNT/d/f"
      check "read-only mount: the extended attribute" out_is kept
    fi
    unmount_fg kindsro
  fi
fi

stage_finish
