#!/usr/bin/env bash
# test_cli.sh — end-to-end tests of the sst command-line tool.
#
# Usage: bash tests/test_cli.sh path/to/sst
#
# Prints "ok - NAME" or "not ok - NAME" per check (with the command's exit
# status and stderr after a failure), then "N passed, M failed". Exits
# non-zero if any check failed.
#
# Checks written `check NAME eval 'EXPR'` expand EXPR when the check runs,
# after the command under test: the single quotes are intended.
# shellcheck disable=SC2016,SC2034
set -u
# shellcheck source=tests/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SST=${1:?usage: test_cli.sh path/to/sst}
case $SST in /*) ;; *) SST=$PWD/$SST ;; esac

WORK=$(mktemp -d "${TMPDIR:-/tmp}/sst-cli.XXXXXX") || exit 1
trap 'rm -rf "$WORK"' EXIT
cd "$WORK" || exit 1

passed=0
failed=0
rc=0

err_empty() { [ ! -s err ]; }
same() { cmp -s "$1" "$2"; }
ok_and_out_is() { status_is 0 && out_is "$1"; }

# Flips every bit of the byte at offset $2 of file $1.
flip_byte() {
  local byte
  byte=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
  # shellcheck disable=SC2059
  printf "$(printf '\\%03o' $((byte ^ 255)))" |
    dd of="$1" bs=1 seek="$2" count=1 conv=notrunc 2>/dev/null
}

# ---- general -------------------------------------------------------------

run "$SST" --version
check "--version" ok_and_out_is "sst (sstfs) 0.1.0 (table format 2)"

run "$SST" --help
check "--help" eval 'status_is 0 && out_has SYNOPSIS && out_has verify'

for cmd in build get scan dump ls info verify; do
  run "$SST" "$cmd" --help
  check "$cmd --help" eval \
    'status_is 0 && out_has SYNOPSIS && out_has "EXIT STATUS" && out_has EXAMPLES'
done

run "$SST" help scan
check "help scan" eval 'status_is 0 && out_has "sst scan"'

run "$SST" help frobnicate
check "help of an unknown command exits 2" status_is 2

run "$SST" frobnicate
check "unknown command exits 2" eval 'status_is 2 && err_has "unknown command"'

run "$SST"
check "no command exits 2" status_is 2

# -q: nothing on stderr but the count of bad lines skipped.
printf 'a,1\nb,2\n' >q.csv
run "$SST" build -q -o q.sstable q.csv
check "build -q: a table and nothing on stderr" eval \
  'status_is 0 && [ ! -s err ] && [ -s q.sstable ]'
printf 'a,1\nnodelimiter\nb,2\n' >q.csv
run "$SST" build -q --skip-bad -o q.sstable q.csv
check "build -q --skip-bad: one line, the count of bad lines" eval \
  'status_is 0 && [ "$(cat err)" = "sst build: 1 bad lines skipped" ]'

for bad in zstd:0 zstd:20 lz4; do
  run "$SST" build -o bad.sstable --compress "$bad" /dev/null
  check "build --compress $bad: a usage error, no table" eval \
    'status_is 2 && err_has "--compress: '"'$bad'"' is not zstd" && [ ! -e bad.sstable ]'
done

run "$SST" build --frobnicate x.csv
check "unknown option exits 2" eval \
  'status_is 2 && err_has "--frobnicate" && err_has Usage'

run "$SST" build -d ab x.csv
check "multi-byte delimiter exits 2" status_is 2

run "$SST" build -d "$(printf '\r')" x.csv
check "carriage return delimiter exits 2" status_is 2

run "$SST" build --memory 10X x.csv
check "bad --memory exits 2" status_is 2

run "$SST" scan
check "scan without a table exits 2" status_is 2

run "$SST" get only-a-table.sstable
check "get without a key exits 2" status_is 2

# ---- build ---------------------------------------------------------------

printf 'banana,yellow\napple,red\ncherry,dark red\napple,green\nbanana,ripe,yes\n' \
  >fruit.csv

run "$SST" build fruit.csv
check "build names the output after the input" eval \
  'status_is 0 && [ -f fruit.sstable ]'
check "build summary" eval \
  'err_has "5 records read" && err_has "3 unique keys written" && err_has "fruit.sstable"'

run "$SST" dump fruit.sstable
check "unsorted input with duplicates: sorted, last wins" ok_and_out_is \
  "$(printf 'apple,green\nbanana,ripe,yes\ncherry,dark red')"

mkdir -p dir a.b
printf 'k1\tv1\nk2\tv\t2\nk3\tv,3\n' >dir/x.tsv
run "$SST" build -d '\t' dir/x.tsv
check "-d '\\t' writes dir/x.sstable" eval 'status_is 0 && [ -f dir/x.sstable ]'
run "$SST" get dir/x.sstable k2
check "tab-delimited value keeps later tabs" ok_and_out_is "$(printf 'v\t2')"
run "$SST" build -d "$(printf '\t')" -o literal-tab.sstable dir/x.tsv
check "a literal tab delimiter works too" eval \
  'status_is 0 && same literal-tab.sstable dir/x.sstable'

cp fruit.csv noext
run "$SST" build noext
check "input without extension: noext.sstable" eval \
  'status_is 0 && same noext.sstable fruit.sstable'
cp fruit.csv a.b/c
run "$SST" build a.b/c
check "a dot in the directory is not an extension" eval \
  'status_is 0 && [ -f a.b/c.sstable ]'

run "$SST" build -o stdin.sstable <fruit.csv
check "build from stdin" eval 'status_is 0 && same stdin.sstable fruit.sstable'
# shellcheck disable=SC2002 # a pipe on purpose: no file position to use
cat fruit.csv | "$SST" build -o pipe.sstable - 2>err
rc=$?
check "build from a pipe, input -" eval 'status_is 0 && same pipe.sstable fruit.sstable'
run "$SST" build <fruit.csv
check "stdin without -o exits 2" status_is 2

printf 'a,1\r\nb,2\r\nc,3' >crlf.csv
run "$SST" build crlf.csv
run "$SST" dump crlf.sstable
check "CRLF lines and a last line without newline" ok_and_out_is \
  "$(printf 'a,1\nb,2\nc,3')"

printf 'k,\nj,x\n' >emptyvalue.csv
run "$SST" build emptyvalue.csv
run "$SST" dump emptyvalue.sstable
check "an empty value keeps its delimiter in dump" ok_and_out_is \
  "$(printf 'j,x\nk,')"

printf 'a,1\nbad line\n\nb,2\n' >bad.csv
run "$SST" build bad.csv
check "a line without delimiter fails with its line number" eval \
  'status_is 1 && err_has "sst build: bad.csv:2: no '\'','\'' delimiter"'
check "a failed build leaves no output" eval '[ ! -e bad.sstable ]'
run "$SST" build --skip-bad bad.csv
check "--skip-bad skips and counts" eval \
  'status_is 0 && err_has "1 bad lines skipped" && err_has "2 unique keys"'

cp fruit.sstable keep.sstable
run "$SST" build -o keep.sstable bad.csv
check "a failed build keeps the old output" eval \
  'status_is 1 && same keep.sstable fruit.sstable'

printf 'a,1\n\n,x\n' >emptykey.csv
run "$SST" build emptykey.csv
check "empty key fails with its line number" eval \
  'status_is 1 && err_has "emptykey.csv:3: empty key"'
run "$SST" build --skip-bad emptykey.csv
check "--skip-bad skips a line with an empty key" eval \
  'status_is 0 && err_has "1 bad lines skipped" && err_has "1 unique keys"'
run "$SST" dump emptykey.sstable
check "... and keeps the other records" ok_and_out_is "a,1"
printf ',v\nb,2\nno delimiter\n,\n' >mixedbad.csv
run "$SST" build --skip-bad --escape mixedbad.csv
check "--skip-bad --escape: empty keys and missing delimiters" eval \
  'status_is 0 && err_has "3 bad lines skipped" && err_has "1 unique keys"'

run "$SST" build -o nope.sstable missing.csv
check "missing input file" eval 'status_is 1 && err_has "missing.csv"'

run "$SST" build -o empty.sstable </dev/null
run "$SST" info empty.sstable
check "an empty input gives an empty table" eval \
  'status_is 0 && out_has "keys: 0"'

# A value longer than the parser's first buffer.
{
  printf 'big,'
  head -c 3145728 /dev/zero | tr '\0' 'x'
  printf '\nsmall,1\n'
} >long.csv
run "$SST" build long.csv
"$SST" get long.sstable big >long.out 2>err
rc=$?
check "a 3 MiB value" eval \
  'status_is 0 && [ "$(wc -c <long.out)" -eq 3145728 ]'

# ---- plain round trip ----------------------------------------------------

awk 'BEGIN {
  for (i = 1; i <= 6000; i++)
    printf "key%05d,value %d with, a comma\n", (i * 7919) % 5000, i
}' >big.csv
run "$SST" build big.csv
check "build 6000 records" eval 'status_is 0 && err_has "5000 unique keys"'
run "$SST" get big.sstable key02919 key02920
check "duplicate keys: the last record wins" ok_and_out_is \
  "value 5001 with, a commavalue 2680 with, a comma"
"$SST" dump big.sstable >big.dump 2>err
rc=$?
run "$SST" build -o big2.sstable big.dump
check "dump | build gives a byte-identical table" eval \
  'status_is 0 && same big.sstable big2.sstable'

mkdir -p spill
run "$SST" build --memory 16K --temp-dir spill -o spilled.sstable big.csv
check "a small memory budget spills and gives the same table" eval \
  'status_is 0 && same spilled.sstable big.sstable && [ -z "$(ls spill)" ]'

# ---- input in key order: streamed; out of order: sorted from there ------

no_temps() { [ -z "$(ls "$1" | grep -F '.tmp.')" ]; }

mkdir -p order
# 3000 keys in order, most of them twice or three times (the last wins).
awk 'BEGIN {
  for (i = 1; i <= 3000; i++)
    for (j = 0; j <= i % 3; j++)
      printf "k%05d,value %d of %d\n", i, j, i
}' >order/sorted.csv
shuf --random-source=order/sorted.csv order/sorted.csv >order/shuffled.csv
# The same records in key order, ties in input order: what sort -s gives.
LC_ALL=C sort -s -t, -k1,1 order/shuffled.csv >order/resorted.csv

run "$SST" build -o order/sorted.sstable order/sorted.csv
check "input in key order with duplicates" eval \
  'status_is 0 && err_has "3000 unique keys written" && no_temps order'
"$SST" dump order/sorted.sstable >order/sorted.dump 2>err
awk -F, '{ last[$1] = $0 } END { for (k in last) print last[k] }' \
  order/sorted.csv | LC_ALL=C sort >order/expected.dump
check "... streamed: the last record of each key" \
  same order/sorted.dump order/expected.dump
# The shuffled input's table, as its records in order stream it.
run "$SST" build -o order/shuffled-ref.sstable order/resorted.csv
check "sort -s of shuffled input streams" eval \
  'status_is 0 && err_has "3000 unique keys written"'

printf 'a,1\nb,1\nd,1\nd,2\nc,1\nd,3\ne,1\nb,2\n' >order/switch.csv
run "$SST" build -o order/switch.sstable order/switch.csv
run "$SST" dump order/switch.sstable
check "one key out of order: the records before it are kept, last wins" \
  ok_and_out_is "$(printf 'a,1\nb,2\nc,1\nd,3\ne,1')"
check "... and no temporary is left" no_temps order

# Sorted, one key out of order in the middle, sorted again; keys on both
# sides of the switch, and the one held back when it came.
awk 'NR == 4000 { print "k00007,out of order" } { print }
     NR == 4000 { print "k09999,after the switch"; print "k00007,wins" }' \
  order/sorted.csv >order/middle.csv
LC_ALL=C sort -s -t, -k1,1 order/middle.csv >order/middle-sorted.csv
"$SST" build -o order/middle-ref.sstable order/middle-sorted.csv 2>err
for threads in 1 2; do
  run "$SST" build --sort-threads "$threads" -o order/middle-$threads.sstable \
    order/middle.csv
  check "sorted, one out of order, sorted again ($threads sort threads)" eval \
    "status_is 0 && same order/middle-$threads.sstable order/middle-ref.sstable"
done
run "$SST" get order/middle-1.sstable k00007 k09999 k00001 k03000
check "... the values of keys on both sides of the switch" ok_and_out_is \
  "winsafter the switchvalue 1 of 1value 0 of 3000"

# The part streamed before the switch is a compressed table, with values
# shared (dedup): read back through decompression, the same table as from
# the input sorted first.
for opts in "--compress zstd" "--compress zstd:3 --dedup"; do
  # shellcheck disable=SC2086 # the words of $opts are options
  "$SST" build $opts -o order/cmp-ref.sstable order/middle-sorted.csv 2>err
  # shellcheck disable=SC2086
  run "$SST" build $opts --memory 16K -o order/cmp.sstable order/middle.csv
  check "compressed ($opts): one key out of order, the same table" eval \
    'status_is 0 && same order/cmp.sstable order/cmp-ref.sstable'
done

# Two inputs, each in order: the second starts below where the first ended.
awk -F, '$1 < "k01500"' order/sorted.csv >order/part1.csv
awk -F, '$1 >= "k01500"' order/sorted.csv >order/part2.csv
run "$SST" build -o order/parts.sstable order/part2.csv order/part1.csv
check "inputs in order each, not together" eval \
  'status_is 0 && same order/parts.sstable order/sorted.sstable'

mkdir -p order/spill
for threads in 1 2 3; do
  run "$SST" build --memory 16K --temp-dir order/spill --sort-threads "$threads" \
    -o order/shuffled-$threads.sstable order/shuffled.csv
  check "shuffled, --memory 16K, $threads sort threads: spilled runs, same table" \
    eval "status_is 0 && same order/shuffled-$threads.sstable order/shuffled-ref.sstable"
done
check "... and the spilled runs are gone" eval '[ -z "$(ls order/spill)" ]'
run "$SST" build -o order/shuffled-big.sstable order/shuffled.csv
check "shuffled, in memory: the same table" eval \
  'status_is 0 && same order/shuffled-big.sstable order/shuffled-ref.sstable'

run "$SST" build --sort-threads 0 -o x.sstable order/sorted.csv
check "--sort-threads 0 exits 2" eval 'status_is 2 && err_has "--sort-threads"'
run "$SST" build --help
check "build --help explains input in order and --sort-threads" eval \
  'status_is 0 && out_has "Input already in key order" && out_has "--sort-threads N"'

# Errors leave no output and no temporary, in order or not.
printf 'a,1\nb,2\nc,3\nno delimiter\nd,4\n' >order/bad-sorted.csv
run "$SST" build -o order/bad.sstable order/bad-sorted.csv
check "a bad line in input in order: its file and line" eval \
  'status_is 1 && err_has "sst build: order/bad-sorted.csv:4: no '\'','\'' delimiter"'
check "... no output, no temporary" eval '[ ! -e order/bad.sstable ] && no_temps order'
printf 'b,1\na,2\nc,3\nno delimiter\nd,4\n' >order/bad-switch.csv
run "$SST" build -o order/bad.sstable order/bad-switch.csv
check "a bad line after a key out of order: its file and line" eval \
  'status_is 1 && err_has "sst build: order/bad-switch.csv:4: no '\'','\'' delimiter"'
check "... no output, no temporary" eval '[ ! -e order/bad.sstable ] && no_temps order'
{
  printf 'a,1\nk'
  head -c 70000 /dev/zero | tr '\0' 'k'
  printf ',v\n'
} >order/longkey.csv
run "$SST" build -o order/bad.sstable order/longkey.csv
check "a key over 64 KiB: its file and line" eval \
  'status_is 1 && err_has "order/longkey.csv:2: key of 70001 bytes"'
check "... no output, no temporary" eval '[ ! -e order/bad.sstable ] && no_temps order'
mkdir -p order/adir
run "$SST" build -o order/bad.sstable order/sorted.csv order/adir
check "an input that cannot be read is named" eval \
  'status_is 1 && err_has "order/adir" && [ ! -e order/bad.sstable ] && no_temps order'
cp order/sorted.sstable order/kept.sstable
run "$SST" build -o order/kept.sstable order/bad-switch.csv
check "a failed build keeps the old output, after a switch too" eval \
  'status_is 1 && same order/kept.sstable order/sorted.sstable && no_temps order'

( "$SST" dump big.sstable 2>pipe.err ) | head -n 1 >/dev/null
check "dump into a closed pipe is quiet" eval '[ ! -s pipe.err ]'

# ---- escaped round trip --------------------------------------------------

# Random binary records (seeded, so a failure repeats), written as escaped
# lines: every byte as \xHH in either case, or raw when printable. Keys are
# 1 to 3 bytes, so many repeat and the last record must win.
awk 'function enc(v, h) {
    if (v >= 33 && v < 127 && v != 92 && v != 44 && rand() < 0.5)
      return sprintf("%c", v)
    h = sprintf("%02x", v)
    return "\\x" (rand() < 0.5 ? toupper(h) : h)
  }
  BEGIN {
    srand(7)
    for (n = 0; n < 3000; n++) {
      kl = 1 + int(rand() * 3); vl = int(rand() * 50); line = ""
      for (i = 0; i < kl; i++) line = line enc(int(rand() * 256))
      line = line ","
      for (i = 0; i < vl; i++) line = line enc(int(rand() * 256))
      print line
    }
  }' >bin.esc
run "$SST" build --escape bin.esc
check "build binary records with --escape" status_is 0
"$SST" dump --escape bin.sstable >bin.dump 2>err
rc=$?
check "dump --escape" status_is 0
run "$SST" build --escape -o bin2.sstable bin.dump
check "binary dump --escape | build --escape is byte-identical" eval \
  'status_is 0 && same bin.sstable bin2.sstable'
"$SST" dump --escape -d '\t' bin.sstable 2>err |
  "$SST" build --escape -d '\t' -o bin3.sstable 2>err
rc=$?
check "... and with a tab delimiter" eval 'status_is 0 && same bin.sstable bin3.sstable'
"$SST" dump --escape -d x bin.sstable 2>err |
  "$SST" build --escape -d x -o bin4.sstable 2>err
rc=$?
check "... and with the letter x as delimiter" eval \
  'status_is 0 && same bin.sstable bin4.sstable'
run "$SST" info bin.sstable
check "one dumped line per key" eval \
  'out_has "keys: $(wc -l <bin.dump)"'
run "$SST" dump bin.sstable
check "plain dump refuses binary records" eval \
  'status_is 1 && err_has "use --escape"'

printf 'a\\x00b,v\\n\\x00\n' >nul.esc
run "$SST" build --escape nul.esc
"$SST" get --escape nul.sstable 'a\x00b' >nul.out 2>err
rc=$?
printf 'v\n\0' >nul.want
check "get --escape of a key with a NUL byte" eval \
  'status_is 0 && same nul.out nul.want'

printf 'k\\nx,v\n' | "$SST" build --escape -o nlkey.sstable 2>err
run "$SST" dump nlkey.sstable
check "plain dump refuses a key with a newline" eval \
  'status_is 1 && err_has "use --escape"'
printf 'k,v\\r\n' | "$SST" build --escape -o crvalue.sstable 2>err
run "$SST" dump crvalue.sstable
check "plain dump refuses a value ending in CR" eval \
  'status_is 1 && err_has "carriage return"'
printf 'a\\x2cb,v\n' | "$SST" build --escape -o comma.sstable 2>err
run "$SST" dump comma.sstable
check "plain dump refuses a key holding the delimiter" eval \
  'status_is 1 && err_has "delimiter"'
run "$SST" dump -d '|' comma.sstable
check "... which another delimiter can carry" ok_and_out_is "a,b|v"

# ---- get -----------------------------------------------------------------

run "$SST" get fruit.sstable apple cherry
check "get prints values raw" ok_and_out_is "greendark red"
run "$SST" get fruit.sstable apple nope banana
check "get of a missing key: exit 1, other keys printed" eval \
  'status_is 1 && out_is "greenripe,yes" && err_has "fruit.sstable: key '\''nope'\'' not found"'
run "$SST" get missing.sstable apple
check "get on a missing table" eval 'status_is 1 && err_has missing.sstable'
run "$SST" get fruit.csv apple
check "get on a file that is not a table" eval 'status_is 1 && err_has fruit.csv'
run "$SST" get --escape fruit.sstable 'bad\q'
check "get --escape of a bad escape exits 2" status_is 2

# ---- scan ----------------------------------------------------------------

printf 'user/2,b\nusr,d\nuser/1,a\nusers,c\nz,e\nA,f\n' >keys.csv
run "$SST" build keys.csv
run "$SST" scan keys.sstable --prefix user/ --keys-only
check "scan --prefix --keys-only" ok_and_out_is "$(printf 'user/1\nuser/2')"
run "$SST" scan keys.sstable --prefix user
check "scan --prefix" ok_and_out_is "$(printf 'user/1,a\nuser/2,b\nusers,c')"
run "$SST" scan keys.sstable --from user/2 --to z
check "scan --from --to" ok_and_out_is "$(printf 'user/2,b\nusers,c\nusr,d')"
run "$SST" scan keys.sstable --from usr
check "scan --from" ok_and_out_is "$(printf 'usr,d\nz,e')"
run "$SST" scan keys.sstable --to user/2 --keys-only
check "scan --to" ok_and_out_is "$(printf 'A\nuser/1')"
run "$SST" scan keys.sstable --prefix nothing
check "scan of an empty prefix range" ok_and_out_is ""
run "$SST" scan keys.sstable -d '|'
check "scan -d" eval 'status_is 0 && out_has "z|e"'
"$SST" scan keys.sstable >scan.out 2>err
"$SST" dump keys.sstable >dump.out 2>>err
check "a full scan prints what dump prints" same scan.out dump.out
run "$SST" scan keys.sstable --prefix u --from a
check "--prefix with --from exits 2" status_is 2
run "$SST" scan --escape nul.sstable --prefix 'a\x00'
check "scan --escape with an escaped prefix" ok_and_out_is 'a\0b,v\n\0'

# ---- info ----------------------------------------------------------------

run "$SST" info fruit.sstable
size=$(wc -c <fruit.sstable)
check "info" eval 'status_is 0 &&
  out_has "path: fruit.sstable" && out_has "format version: 2" &&
  out_has "file size: $size bytes" && out_has "keys: 3" &&
  out_has "tombstones: 0" && out_has "key bytes: 17" &&
  out_has "value bytes: 21" && out_has "key blocks: 1" &&
  out_has "index interval: 64 keys per block" && out_has "index bytes: " &&
  out_has "bits per key" && out_has "metadata: no (plain keys and values)" &&
  out_has "value region: " && out_has "key region: "'
run "$SST" build --block-keys 10 --no-filter -o blocks.sstable big.csv
run "$SST" info blocks.sstable
check "--block-keys and --no-filter" eval 'status_is 0 &&
  out_has "index interval: 10 keys per block" && out_has "key blocks: 500" &&
  out_has "filter: none"'
# A missing table whose staging area (sstfs --stage) is beside it: the
# message gives the reason its last commit failed, or says it exists.
mkdir -p staged.sstable.stage/tree
printf 'cannot write staged.sstable: No space left on device\n' \
  >staged.sstable.stage/error
run "$SST" info staged.sstable
check "info of a missing table whose last staging commit failed" eval \
  'status_is 1 && err_has "sst info: staged.sstable: No such file or directory; the last staging commit of it failed: cannot write staged.sstable: No space left on device (staging area staged.sstable.stage is kept; see sstfs --stage --help, -o resume)"'
rm staged.sstable.stage/error
run "$SST" info staged.sstable fruit.sstable
check "info of a missing table with a staging area and no error" eval \
  'status_is 1 && out_has "path: fruit.sstable" && err_has "sst info: staged.sstable: No such file or directory; a staging area staged.sstable.stage exists (a staging mount is running or was stopped; resume it with sstfs --stage staged.sstable MOUNTPOINT -o resume)"'
run "$SST" info nostage.sstable
check "info of a missing table without a staging area" eval \
  'status_is 1 && [ "$(cat err)" = "sst info: nostage.sstable: No such file or directory" ]'
touch notadir.sstable.stage
run "$SST" info notadir.sstable
check "... and with a file, not a directory, of the area'\''s name" eval \
  'status_is 1 && [ "$(cat err)" = "sst info: notadir.sstable: No such file or directory" ]'

run "$SST" get blocks.sstable key04999 key00000
check "get from a table without filter" ok_and_out_is \
  "value 2321 with, a commavalue 5000 with, a comma"

# A FIFO (no writer) or a directory given as a table is refused at once:
# opening a FIFO must not wait for a writer that never comes.
mkfifo fifo
mkdir -p notatable.d
for args in "info fifo" "verify fifo" "get fifo k" "dump fifo" \
  "merge -o merged.sstable fruit.sstable fifo"; do
  # shellcheck disable=SC2086 # the words of $args are the arguments
  run timeout 5 "$SST" $args
  check "sst $args: refused at once as not a regular file" eval \
    'status_is 1 && err_has "fifo: not a regular file"'
done
check "a merge with a FIFO input writes nothing" eval '[ ! -e merged.sstable ]'
run timeout 5 "$SST" info notatable.d
check "sst info of a directory: not a regular file" eval \
  'status_is 1 && err_has "notatable.d: not a regular file"'

# ---- verify --------------------------------------------------------------

run "$SST" verify fruit.sstable big.sstable
check "verify good tables" eval 'status_is 0 &&
  out_has "fruit.sstable: ok (3 keys, $size bytes)" && out_has "big.sstable: ok (5000 keys"'

cp big.sstable corrupt.sstable
flip_byte corrupt.sstable $(($(wc -c <corrupt.sstable) / 2))
run "$SST" verify fruit.sstable corrupt.sstable
check "verify finds a flipped byte in the middle" eval \
  'status_is 1 && out_has "fruit.sstable: ok" && err_has "sst verify: corrupt.sstable"'
run "$SST" dump corrupt.sstable
check "dump of a damaged table fails" status_is 1

cp big.sstable badvalue.sstable
offset=$(grep -abo 'value 2500 with' badvalue.sstable | head -n 1 | cut -d: -f1)
flip_byte badvalue.sstable "$((offset + 3))"
run "$SST" get badvalue.sstable key00000 key02500
check "get of a damaged value reports it" eval \
  'status_is 1 && out_is "value 5000 with, a comma" && err_has "key02500"'

run "$SST" verify fruit.csv
check "verify of a file that is not a table" eval \
  'status_is 1 && err_has "sst verify: " && err_has fruit.csv'

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
