#!/usr/bin/env bash
# test_stage_delta.sh BINDIR [dev|uring] — metadata changes and deletions
# over a base, written as a delta (--base TABLE -o delta).
#
# What it shows (the tree: meta_tree in tests/stage_lib.sh, committed
# through a staging mount as the base):
#  - on a staging mount over the base, a chmod alone, a utimens, a chown
#    and a setxattr of base files, the removal of a directory (with
#    subdirectories) and of a symlink, and a chmod and an append through
#    names of a base hard link (seen through all its names) show at once,
#    as on a plain copy given the same changes (rsync -aHXc -n, directory
#    times aside);
#  - the delta holds only what changed: an entry for each changed file
#    (each name of the changed hard link), with its mode, mtime (ns) and
#    attributes, and tombstones for the
#    removed symlink, for the removed directory's own entry and for
#    everything under it; no untouched base entry;
#  - the stack (base + delta) mounted read-only shows the changed tree.
# The modes, and the check of each daemon's log: tests/stage_lib.sh.
# shellcheck disable=SC2016
set -u
# shellcheck source=tests/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/stage_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/stage_lib.sh"
stage_init delta "$@"
require_tools rsync setfattr getfattr

meta_tree src
cp -a src expected
# changes ROOT: the same on the mount and on the plain copy.
changes() {
  chmod 0700 "$1/bin/run" &&
    touch -d '2022-02-22 22:22:22.222222222' "$1/etc/owned" &&
    setfattr -n user.added -v new "$1/secret/key" &&
    rm -r "$1/deep" &&
    rm "$1/dangling" &&
    chmod 0640 "$1/etc/hard2" && echo more >>"$1/bin/hard3" &&
    touch -d '2023-03-03 03:03:03.333333333' "$1/etc/hard1" &&
    if [ "$(id -u)" = 0 ]; then chown 4321:8765 "$1/bin/sgid"; fi
}
same_as_expected() {
  run rsync -a -H -X -n -i -c --omit-dir-times expected/ "$2/"
  check "$1: rsync -aHXc -n from the changed copy finds nothing to do" \
    eval 'status_is 0 && [ ! -s out ] && [ ! -s err ]'
  [ -s out ] && note out
  run stat -c '%a %.9Y' "$2/bin/run"
  check "$1: the chmod alone: mode 700, the mtime (ns) kept" \
    out_is "700 915148800.500000000"
  check "$1: the removed directory and symlink are gone" eval \
    '[ ! -e "$2/deep" ] && [ ! -L "$2/dangling" ]'
  run stat -c '%i %a %h %s' "$2/etc/hard1" "$2/etc/hard2" "$2/bin/hard3"
  check "$1: the hard link's three names: one inode, mode 640, the append" \
    eval '[ "$(sort -u out | wc -l)" = 1 ] && [ "$(cut -d" " -f2- out | sort -u)" = "640 3 12" ]'
}

if stage_fg base "$WORK/base.sstable"; then
  run cp -a src/. "$MNT/"
  check "the base: cp -a of the tree into a staging mount" status_is 0
  commit base
  check "the base: sstfs --unmount exits 0" status_is 0
fi

if [ -f base.sstable ] &&
  stage_fg delta "$WORK/delta.sstable" --base "$WORK/base.sstable" -o delta; then
  # Every name looked at first, so that the kernel holds attributes that
  # a change through another name of a hard link makes stale.
  ls -lR "$MNT" >/dev/null
  changes "$MNT" 2>err
  rc=$?
  check "chmod, utimens, setxattr, chown, rm -r, rm on the staging mount" \
    eval 'status_is 0 && [ ! -s err ]'
  changes expected
  same_as_expected "the staging mount" "$MNT"
  commit delta
  check "sstfs --unmount exits 0" status_is 0
  run "$SST" scan --escape --tombstones delta.sstable
  sed 's/,.*//' out >keys
  for k in bin/run etc/owned secret/key bin/sgid etc/hard1 etc/hard2 bin/hard3; do
    check "the delta has an entry for $k" grep -qx "$k" keys
  done
  for k in dangling deep/ deep/er/ deep/er/est/ deep/er/est/blob; do
    check "the delta has a tombstone for $k" eval \
      'grep -qx "$k" keys && ! grep -q "^$k," out'
  done
  check "the delta holds no untouched base entry" eval \
    '! grep -qxE "etc/plain.conf|pair-a|abs-link|empty/|bin/suid" keys'
  if start_fg stack -- "$WORK/base.sstable" "$WORK/delta.sstable" \
    "$WORK/mnt/stack"; then
    same_as_expected "the stack base + delta, read-only" "$MNT"
    unmount_fg stack
  fi
fi

stage_finish
