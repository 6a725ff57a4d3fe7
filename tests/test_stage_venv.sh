#!/usr/bin/env bash
# test_stage_venv.sh BINDIR [dev|uring] — a Python virtual environment
# made in a staging mount runs from the table.
#
# What it shows:
#  - python3 -m venv (its symlinks, executables, pip's installed files)
#    succeeds on a staging mount, and its python runs there;
#  - after the commit, the table mounted read-only at the same directory
#    (the venv's own files name that path) runs bin/python -c 'import
#    sys', sees the venv as sys.prefix, and imports pip from the venv.
# The modes, and the check of each daemon's log: tests/stage_lib.sh.
# shellcheck disable=SC2016
set -u
# shellcheck source=tests/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/stage_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/stage_lib.sh"
stage_init venv "$@"
require_python
if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
  echo "SKIP: python3 -m venv is missing (package python3-venv; scripts/setup)"
  exit 77
fi

if stage_fg venv "$WORK/venv.sstable"; then
  dir=$MNT
  run python3 -m venv "$dir/env"
  check "python3 -m venv in the staging mount" status_is 0
  run "$dir/env/bin/python" -c 'import sys; print(sys.prefix)'
  check "the venv's python runs on the staging mount" \
    out_is "$dir/env"
  commit venv
  check "sstfs --unmount exits 0" status_is 0
  # The table where the staging mount was.
  if ro_fg_at venvro venv.sstable "$dir"; then
    run "$dir/env/bin/python" -c 'import sys'
    check "read-only mount: bin/python -c 'import sys' runs" eval \
      'status_is 0 && [ ! -s err ]'
    run "$dir/env/bin/python" -c 'import sys; print(sys.prefix)'
    check "read-only mount: sys.prefix is the venv" out_is "$dir/env"
    run "$dir/env/bin/python" -c 'import pip; print(pip.__file__)'
    check "read-only mount: pip imports from the venv" eval \
      'status_is 0 && out_has "$dir/env/lib/"'
    run fusermount3 -u "$dir"
    reap venvro
  fi
fi

stage_finish
