#!/usr/bin/env bash
# test_pack_meta.sh — a real tree through sst pack and sst unpack with
# its metadata (pack's default): types, modes with setuid, setgid and
# sticky, owners, nanosecond times, symlinks, hard links, extended
# attributes, empty directories; checked with rsync, find and stat. Also
# --no-metadata, --strict, sst ls, sst info, sst merge of such tables,
# and an unpack that must not follow a symlink.
#
# Usage: bash tests/test_pack_meta.sh path/to/sst
#
# Prints "ok - NAME" or "not ok - NAME" per check, "ok - NAME # SKIP why"
# for one that cannot run here, then "N passed, M failed".
#
# Checks written `check NAME eval 'EXPR'` expand EXPR when the check runs,
# after the command under test: the single quotes are intended.
# shellcheck disable=SC2016
set -u
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/lib.sh
. "$HERE/lib.sh"

SST=${1:?usage: test_pack_meta.sh path/to/sst}
case $SST in /*) ;; *) SST=$PWD/$SST ;; esac

for tool in rsync python3 find stat; do
  if ! command -v "$tool" >/dev/null; then
    echo "SKIP: $tool is not installed (scripts/setup installs it)"
    exit 77
  fi
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/sst-pack-meta.XXXXXX") || exit 1
trap 'chmod -R u+rwx "$WORK" 2>/dev/null; rm -rf "$WORK"' EXIT
cd "$WORK" || exit 1

passed=0
failed=0
skipped=0
rc=0
root=0
[ "$(id -u)" -eq 0 ] && root=1

# The listing find gives of tree $1 (type, mode, mtime with nanoseconds,
# symlink target, owner, path), its FIFO left out, sorted.
listing() {
  (cd "$1" && find . ! -type p -printf '%y %m %T@ %l %U:%G %p\n' |
    LC_ALL=C sort)
}
# The link counts of the regular files of tree $1, sorted.
links_of() {
  (cd "$1" && find . -type f -exec stat -c '%h %n' {} + | LC_ALL=C sort)
}
# The extended attributes of tree $1 (getfattr, in hex), sorted by path.
xattrs_of() {
  (cd "$1" && find . ! -type p ! -type l -print0 | LC_ALL=C sort -z |
    xargs -0 getfattr --absolute-names -h -d -m - -e hex 2>/dev/null)
}
# What rsync would change to make $2 like $1 (FIFO left out): nothing
# when the trees are the same, contents compared by checksum.
rsync_diff() { rsync -a -H -X -n -i -c --exclude=/fifo "$1/" "$2/"; }

# ---- help ----------------------------------------------------------------

run "$SST" pack --help
check "pack --help tells of metadata and --no-metadata" eval \
  'status_is 0 && out_has "--no-metadata" && out_has "hard links" &&
   out_has "extended attributes"'
run "$SST" unpack --help
check "unpack --help tells of --same-owner and --no-same-owner" eval \
  'status_is 0 && out_has "--same-owner" && out_has "--no-same-owner" &&
   out_has "is ever followed"'
run "$SST" ls --help
check "ls --help" eval \
  'status_is 0 && out_has SYNOPSIS && out_has "EXIT STATUS" &&
   out_has EXAMPLES && out_has numeric'
run "$SST" --help
check "sst --help lists ls" out_has "    ls "
run "$SST" ls
check "ls without a table exits 2" eval 'status_is 2 && err_has Usage'
run "$SST" ls a b c
check "ls with three arguments exits 2" status_is 2

# ---- the tree ------------------------------------------------------------

python3 "$HERE/make_meta_tree.py" src >xattrs.txt
xattrs=0
grep -q 'xattrs: yes' xattrs.txt && xattrs=1

run "$SST" pack src t.sstable
check "pack a real tree" eval \
  'status_is 0 && err_has "sst pack: skipping FIFO src/fifo" &&
   err_has "12 directories" && err_has "5 symlinks" && ! err_has "skipping symlink"'
run "$SST" verify t.sstable
check "the table verifies" status_is 0
run "$SST" info t.sstable
check "info: metadata and the two regions" eval \
  'status_is 0 && out_has "format version: 2" && out_has "metadata: yes" &&
   out_has "value region: " && out_has "key region: "'
# Key blocks compressed: stored bytes fewer than decoded ones.
check "info: key blocks stored compressed" awk \
  '/^key blocks stored:/ { ok = $4 < $7 } END { exit !ok }' out

run "$SST" unpack t.sstable tree
check "unpack it" eval \
  'status_is 0 && err_has "(3 hard links), 12 directories, 5 symlinks written" &&
   ! err_has warning'
run rsync_diff src tree
check "rsync -a -H -X -c finds nothing to change" eval \
  'status_is 0 && [ ! -s out ]'
listing src >src.list
listing tree >tree.list
check "types, modes, times to the ns, targets, owners are the same" \
  cmp -s src.list tree.list
links_of src >src.links
links_of tree >tree.links
check "link counts are the same" cmp -s src.links tree.links
check "hard links are one inode" eval \
  '[ "$(stat -c %i tree/links/one)" = "$(stat -c %i tree/links/three)" ] &&
   [ "$(stat -c %i tree/a/h1)" = "$(stat -c %i tree/b/h2)" ]'
check "setuid, setgid and sticky bits" eval \
  '[ "$(stat -c %a tree/bin/suid)" = 4755 ] &&
   [ "$(stat -c %a tree/bin/sgid)" = 2755 ] &&
   [ "$(stat -c %a tree/tmp)" = 1777 ] && [ "$(stat -c %a tree/shared)" = 2775 ]'
check "a 0600 file, an executable, empty directories" eval \
  '[ "$(stat -c %a tree/secret)" = 600 ] && [ -x tree/bin/run.sh ] &&
   [ -d tree/empty ] && [ -d tree/deep/er/empty ]'
check "symlinks: relative, absolute, dangling, to a directory" eval \
  '[ "$(readlink tree/links/rel)" = one ] &&
   [ "$(readlink tree/abs)" = /etc/hostname ] &&
   [ "$(readlink tree/dangling)" = no/such/file ] && [ -L tree/dirlink ]'
check "nanosecond times" eval \
  '[ "$(stat -c %y tree/secret)" = "$(stat -c %y src/secret)" ] &&
   stat -c %y tree/secret | grep -qv "\.000000000"'
if [ "$xattrs" -eq 1 ] && command -v getfattr >/dev/null; then
  xattrs_of src >src.xattrs
  xattrs_of tree >tree.xattrs
  check "extended attributes of files, hard links and directories" eval \
    'cmp -s src.xattrs tree.xattrs && grep -q "^user.comment=" tree.xattrs &&
     grep -q "^user.bin=0x0001ff" tree.xattrs && grep -q "^user.dir=" tree.xattrs &&
     [ "$(grep -c "^user.link=" tree.xattrs)" -eq 3 ]'
else
  skip "extended attributes of files, hard links and directories" \
    "no getfattr, or the file system of $WORK refuses user.* attributes"
fi
if [ "$root" -eq 1 ]; then
  check "as root, owners are restored (1234:5678, a symlink's too)" eval \
    '[ "$(stat -c %u:%g tree/owned)" = 1234:5678 ] &&
     [ "$(stat -c %u:%g tree/owned-link)" = 1234:5678 ]'
  run "$SST" unpack --no-same-owner t.sstable mine
  check "unpack --no-same-owner leaves everything to the user" eval \
    'status_is 0 && [ "$(stat -c %u:%g mine/owned)" = 0:0 ] &&
     [ "$(stat -c %a mine/bin/suid)" = 4755 ]'
else
  skip "as root, owners are restored (1234:5678, a symlink's too)" "not root"
  skip "unpack --no-same-owner leaves everything to the user" "not root"
fi

run "$SST" pack tree t2.sstable
check "pack the unpacked tree: a byte-identical table" eval \
  'status_is 0 && cmp -s t.sstable t2.sstable'

# As another user: owners are not set, and a read-only directory still
# gets its files (its mode is set once they are in).
if [ "$root" -eq 1 ] && command -v setpriv >/dev/null && id nobody >/dev/null 2>&1; then
  mkdir -p rosrc/ro
  printf 'inside' >rosrc/ro/file
  chmod 0444 rosrc/ro/file
  chmod 0555 rosrc/ro
  "$SST" pack -q rosrc ro.sstable 2>/dev/null
  chmod 0755 "$WORK"
  chmod 0644 ro.sstable
  mkdir asuser
  chown nobody asuser
  run setpriv --reuid="$(id -u nobody)" --regid="$(id -g nobody)" \
    --clear-groups -- "$SST" unpack ro.sstable asuser/tree
  check "as a user: files go into a read-only directory, owned by the user" eval \
    'status_is 0 && ! err_has warning && [ "$(stat -c %a asuser/tree/ro)" = 555 ] &&
     [ "$(cat asuser/tree/ro/file)" = inside ] &&
     [ "$(stat -c %U asuser/tree/ro/file)" = nobody ]'
  # What the system refuses a user is a warning per path, not silence.
  printf 'x' >rosrc/trusted
  trusted=0
  setfattr -n trusted.sst -v 1 rosrc/trusted 2>/dev/null && trusted=1
  "$SST" pack -q rosrc warn.sstable 2>/dev/null
  chmod 0644 warn.sstable
  run setpriv --reuid="$(id -u nobody)" --regid="$(id -g nobody)" \
    --clear-groups -- "$SST" unpack --same-owner warn.sstable asuser/warn
  check "as a user, --same-owner: a warning for each owner refused" eval \
    'status_is 0 &&
     err_has "sst unpack: warning: asuser/warn/ro/file: cannot set owner 0:0: Operation not permitted" &&
     err_has "warnings, "'
  if [ "$trusted" -eq 1 ]; then
    check "... and for each extended attribute refused" \
      err_has "sst unpack: warning: asuser/warn/trusted: cannot set extended attribute trusted.sst: Operation not permitted"
  else
    skip "... and for each extended attribute refused" "no trusted.* attributes here"
  fi
else
  skip "as a user: files go into a read-only directory, owned by the user" \
    "needs root, setpriv and the user nobody"
  skip "as a user, --same-owner: a warning for each owner refused" \
    "needs root, setpriv and the user nobody"
fi

# A tree 1500 levels deep with 64 descriptors: every level a directory
# entry, whose metadata unpack sets on the way back up.
awk 'BEGIN {
    for (k = 1500; k > 0; k -= 299) {
      line = ""
      for (i = 0; i < k; i++) line = line "ab/"
      print line "zz,level " k
    }
  }' >deep.records
"$SST" build -o deep.sstable deep.records 2>/dev/null
(
  ulimit -n 64
  "$SST" unpack -q deep.sstable deep1 && "$SST" pack -q deep1 deep1.sstable &&
    "$SST" unpack -q deep1.sstable deep2 && "$SST" pack -q deep2 deep2.sstable
) >out 2>err
rc=$?
check "1500 levels deep with 64 descriptors: pack, unpack, pack is identical" eval \
  'status_is 0 && cmp -s deep1.sstable deep2.sstable &&
   [ "$("$SST" ls deep2.sstable | grep -c "^d")" -eq 1501 ]'

# ---- sst ls ----------------------------------------------------------------

run "$SST" ls t.sstable
check "ls: one line per entry" eval \
  'status_is 0 && [ "$(wc -l <out)" -eq "$("$SST" info t.sstable | sed -n "s/^keys: //p")" ]'
check "ls: the top, a directory, an empty one" eval \
  'grep -qE "^drwxr-xr-x +1 +[0-9]+ +[0-9]+ +0 [0-9-]+ [0-9:.]+ /$" out &&
   grep -qE "^drwxrwsr-x .* shared/$" out && grep -qE "^drwxrwxrwt .* tmp/$" out &&
   grep -qE "^drwxr-xr-x .* deep/er/empty/$" out'
check "ls: modes with s and t, links, sizes, nanosecond times" eval \
  'grep -qE "^-rwsr-xr-x +1 .* 7 [0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:]{8}\.[0-9]{9} bin/suid$" out &&
   grep -qE "^-rw------- +1 .* secret$" out &&
   grep -qE "^-rw-r----- +3 +[0-9]+ +[0-9]+ +12 .* links/two$" out'
check "ls: symlinks with their targets" eval \
  'grep -qE "^lrwxrwxrwx +1 .* 3 .* links/rel -> one$" out &&
   grep -qE "^l.* dangling -> no/such/file$" out'
if [ "$root" -eq 1 ]; then
  check "ls: numeric owners" grep -qE "^-rw-r----- +1 +1234 +5678 .* owned$" out
fi
run "$SST" ls t.sstable links/
check "ls PREFIX lists only the keys under it" eval \
  'status_is 0 && [ "$(wc -l <out)" -eq 5 ] && ! grep -qv " links/" out'
printf 'plain,value\n' >plain.csv
"$SST" build -o plain.sstable plain.csv 2>/dev/null
run "$SST" ls plain.sstable
check "ls: a plain entry is a read-only file" eval \
  'status_is 0 && grep -qE "^-r--r--r-- +1 +- +- +5 +- +plain$" out'
run "$SST" ls nosuch.sstable
check "ls of a missing table" eval \
  'status_is 1 && err_has "nosuch.sstable: No such file or directory"'

# ---- plain tables, --strict ---------------------------------------------

run "$SST" pack --no-metadata src plain-t.sstable
check "--no-metadata: a plain table, symlinks skipped" eval \
  'status_is 0 && err_has "skipping symlink src/links/rel" &&
   err_has "13 files packed, 6 entries skipped"'
run "$SST" info plain-t.sstable
check "... which info says has no metadata" out_has "metadata: no"
"$SST" scan --keys-only plain-t.sstable >keys 2>err
(cd src && find . -type f | sed 's|^\./||' | LC_ALL=C sort) >files
check "... whose keys are the regular files' paths, nothing more" \
  cmp -s keys files
run "$SST" unpack plain-t.sstable plainout
check "... and unpacks to plain files, 0644, no links" eval \
  'status_is 0 && [ "$(stat -c %a plainout/bin/suid)" = 644 ] &&
   [ "$(stat -c %h plainout/links/one)" = 1 ] && diff -q src/big plainout/big'

run "$SST" pack --strict src strict.sstable
check "--strict refuses the FIFO and writes no table" eval \
  'status_is 1 && [ ! -e strict.sstable ] &&
   err_has "sst pack: src/fifo: is a FIFO: a table holds only regular files, directories and symlinks (--strict)"'
mkdir nofifo
cp -a src/links nofifo/
run "$SST" pack --strict nofifo strict.sstable
check "--strict takes symlinks and hard links" eval 'status_is 0'

mkdir -p dup/a
printf 'x' >dup/a/%=
run "$SST" pack dup dup.sstable
check "a directory whose key is also a file's is named, no table" eval \
  'status_is 1 && [ ! -e dup.sstable ] &&
   err_has "sst pack: dup/a and dup/a/%= give the same key '\''a/'\'' (a directory'\''s entry and a file'\''s key"'

# ---- merge -----------------------------------------------------------------

run "$SST" merge -q -o m.sstable t.sstable
run "$SST" unpack m.sstable mout
run rsync_diff src mout
check "merge of one table keeps every metadata and link" eval \
  'status_is 0 && [ ! -s out ] && cmp -s src.links <(links_of mout)'
# A table of a tree merges at sst pack's level and block size: merged
# alone, it is written again byte for byte.
check "merge of one table of a tree: sst pack's table, byte for byte" \
  cmp m.sstable t.sstable
mkdir over
printf 'replaced\n' >over/placeholder
mkdir over/links
printf 'no longer a link\n' >over/links/two
run "$SST" pack --no-metadata over over.sstable
run "$SST" merge -o m2.sstable t.sstable over.sstable
check "merge over a table that replaces one name of a group" status_is 0
run "$SST" ls m2.sstable links/
check "... leaves the group's other names linked, two of them" eval \
  'grep -qE "^-rw-r----- +2 .* links/one$" out &&
   grep -qE "^-rw-r----- +2 .* links/three$" out &&
   grep -qE "^-r--r--r-- +1 .* links/two$" out'
run "$SST" unpack m2.sstable m2out
check "... which unpacks so" eval \
  'status_is 0 && [ "$(stat -c %h m2out/links/one)" = 2 ] &&
   [ "$(cat m2out/links/two)" = "no longer a link" ] &&
   [ "$(cat m2out/links/three)" = "three names" ]'

# ---- never follow a symlink --------------------------------------------

# A table with a symlink "a" to a directory outside and a file "a/x"
# (from two tables merged): the file must not land outside.
mkdir victim evil1 evil2 evil2/a
ln -s "$WORK/victim" evil1/a
printf 'intruder' >evil2/a/x
"$SST" pack -q evil1 evil1.sstable 2>/dev/null
"$SST" pack -q --no-metadata evil2 evil2.sstable 2>/dev/null
"$SST" merge -q -o evil.sstable evil1.sstable evil2.sstable 2>/dev/null
run "$SST" unpack evil.sstable evilout
check "a symlink a and a file a/x: nothing written through the link" eval \
  'status_is 0 && [ -z "$(ls -A victim)" ] && [ -L "evilout/%!a" ] &&
   [ "$(cat evilout/a/x)" = intruder ]'

summary
