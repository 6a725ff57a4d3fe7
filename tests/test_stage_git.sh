#!/usr/bin/env bash
# test_stage_git.sh BINDIR [dev|uring] — a git repository made in a
# staging mount is a sound repository in the table.
#
# What it shows:
#  - git init, three commits (an executable script tracked with mode
#    100755, a file renamed, a directory) and git gc all succeed on a
#    staging mount;
#  - after the commit, on a read-only mount of the table, git fsck --full
#    passes, git status is clean, the script is 100755 and executable,
#    and the log has the three commits.
# The modes, and the check of each daemon's log: tests/stage_lib.sh.
# shellcheck disable=SC2016
set -u
# shellcheck source=tests/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/stage_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/stage_lib.sh"
stage_init git "$@"
require_tools git

# A git of its own: no user or system configuration.
export HOME=$WORK GIT_CONFIG_NOSYSTEM=1 GIT_AUTHOR_NAME=sstfs \
  GIT_AUTHOR_EMAIL=sstfs@example.org GIT_COMMITTER_NAME=sstfs \
  GIT_COMMITTER_EMAIL=sstfs@example.org
# history REPO: the three commits and a gc.
history() {
  git init -q "$1" && cd "$1" &&
    printf '#!/bin/sh\necho built\n' >build.sh && chmod 0755 build.sh &&
    echo one >README && git add . && git commit -qm first &&
    mkdir src && echo 'int main(void) { return 0; }' >src/main.c &&
    echo two >>README && git add . && git commit -qm second &&
    git mv README README.txt && echo three >>README.txt &&
    git commit -qam third && git gc -q
}

if stage_fg git "$WORK/git.sstable"; then
  run bash -c "$(declare -f history); history '$MNT/repo'"
  check "git init, three commits and git gc in the staging mount" eval \
    'status_is 0 && [ ! -s err ]'
  commit git
  check "sstfs --unmount exits 0" status_is 0
  if ro_fg gitro git.sstable; then
    repo=$MNT/repo
    run git -C "$repo" fsck --full --strict
    check "read-only mount: git fsck --full passes" status_is 0
    run git -C "$repo" status --porcelain --untracked-files=all
    check "read-only mount: git status is clean" eval \
      'status_is 0 && [ ! -s out ]'
    note out
    run git -C "$repo" ls-files -s build.sh
    check "read-only mount: the script is tracked 100755 and executable" \
      eval 'out_has "100755 " && [ -x "$repo/build.sh" ]'
    run git -C "$repo" log --oneline
    check "read-only mount: the log has the three commits" eval \
      '[ "$(wc -l <out)" = 3 ]'
    run git -C "$repo" count-objects -v
    check "read-only mount: git gc packed the objects" eval \
      'out_has "count: 0" && out_has "packs: 1"'
    unmount_fg gitro
  fi
fi

stage_finish
