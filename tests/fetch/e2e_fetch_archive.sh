#!/usr/bin/env bash
# e2e_fetch_archive.sh: extraction: good tar.gz and zip archives land in place (symlinks and
# hard links inside the tree kept), a second fetch extracts nothing; hostile archives ('..',
# absolute paths, escaping symlinks and hard links, devices, fifos, too many bytes or entries,
# zip bombs) are refused with nothing left behind: no extraction directory, no temporary
# directory, nothing written outside.
. "$MPSL_SOURCE/tests/fetch/lib.sh"
/usr/bin/python3 "$MPSL_SOURCE/tests/fetch/make_archives.py" "$WORK/www"
start_server

# arch NAME FILE [FORMAT [MAX_BYTES [MAX_ENTRIES]]]: a manifest extracting one served archive.
arch() {
  manifest "$1" "$2" "$BASE/ok/$2" "$(size_of "$WORK/www/$2")" "$(sha_of "$WORK/www/$2")" \
    true "${3:-auto}" "${4:-10000000}" "${5:-1000}"
}
# nothing_left NAME DIR: no extraction directory, no temporary one.
nothing_left() {
  check "$1: no $2/" not test -e "$MPSL_DATA_DIR/$1/$2"
  check "$1: no temporary directory left" \
    test -z "$(find "$MPSL_DATA_DIR/$1" -maxdepth 1 -name '.extract-*')"
}

# --- good archives
arch t_tgz good.tar.gz tar.gz
expect_ok "good tar.gz" "$MPSL" fetch t_tgz
X="$MPSL_DATA_DIR/t_tgz/good"
check "tgz: file" grep -q alpha "$X/data/a.txt"
check "tgz: nested file" grep -q beta "$X/data/sub/b.txt"
check "tgz: symlink kept" test "$(readlink "$X/data/link")" = sub/b.txt
check "tgz: symlink resolves" grep -q beta "$X/data/link"
check "tgz: upward symlink inside the tree" grep -q alpha "$X/data/sub/up"
check "tgz: hard link" test "$(stat -c %i "$X/data/hard")" = "$(stat -c %i "$X/data/a.txt")"
check "tgz: marker" grep -q "archive good.tar.gz sha256" "$X/.mpsl-extracted"
check "tgz: says so" grep -q "extracted 7 entries" "$WORK/out"
expect_ok "good tar.gz again" "$MPSL" fetch t_tgz
check "tgz again: nothing done" grep -q "already extracted in good/" "$WORK/out"
check "tgz again: nothing downloaded" grep -q "nothing downloaded" "$WORK/out"

arch t_zip good.zip
expect_ok "good zip (format auto)" "$MPSL" fetch t_zip
check "zip: files" grep -q gamma "$MPSL_DATA_DIR/t_zip/good/z/b/c.txt"

# A wrong format hint: only that reader is enabled.
arch t_hint good.zip tar
expect_refusal "zip declared as tar" "cannot open as an archive of the manifest's format" -- \
  "$MPSL" fetch t_hint
nothing_left t_hint good

# An extraction directory that mpsl did not make is not overwritten without --force.
arch t_exists good.tar.gz
mkdir -p "$MPSL_DATA_DIR/t_exists/good" && echo mine >"$MPSL_DATA_DIR/t_exists/good/mine.txt"
expect_refusal "foreign extraction directory" "was not extracted from this good.tar.gz" \
  "--force" -- "$MPSL" fetch t_exists
check "exists: kept" test -e "$MPSL_DATA_DIR/t_exists/good/mine.txt"
expect_ok "--force replaces it" "$MPSL" fetch t_exists --force
check "force: replaced" not test -e "$MPSL_DATA_DIR/t_exists/good/mine.txt"
check "force: extracted" grep -q alpha "$MPSL_DATA_DIR/t_exists/good/data/a.txt"

# --- hostile archives: refused, nothing left, nothing written outside
refused() { # NAME FILE NEEDLE [FORMAT [MAX_BYTES [MAX_ENTRIES]]]
  local name=$1 file=$2 needle=$3
  arch "$name" "$file" "${4:-auto}" "${5:-10000000}" "${6:-1000}"
  expect_refusal "$file refused" "refused" "$needle" -- "$MPSL" fetch "$name"
  nothing_left "$name" "${file%%.*}"
  check "$file: the archive itself stays verified" test -e "$MPSL_DATA_DIR/$name/$file"
}
refused t_dotdot dotdot.tar "a '..' component"
refused t_abs absolute.tar "an absolute path"
refused t_symabs symlink_abs.tar "a symlink to an absolute path (/etc)"
refused t_symesc symlink_escape.tar "points outside the extraction directory (../../outside)"
refused t_symname symlink_name_dotdot.tar "'..' after a name"
refused t_hardesc hardlink_escape.tar "a hard link to a '..' component"
refused t_device device.tar "a device node"
refused t_fifo fifo.tar "a fifo"
refused t_bomb bomb.tar.gz "beyond max_extracted_bytes = 5000000" tar.gz 5000000
refused t_halves two_halves.tar.gz "beyond max_extracted_bytes = 5000000" auto 5000000
refused t_zipbomb bomb.zip "beyond max_extracted_bytes = 5000000" zip 5000000
refused t_liar liar.zip "expands beyond max_extracted_bytes = 5000000 (at entry" zip 5000000
refused t_many many.tar "more than max_entries = 100" tar 10000000 100
check "nothing escaped into the work directory" \
  test -z "$(find "$WORK" -name 'evil*' -o -name outside -o -name passwd)"
check "nothing written at the absolute path" not test -e /tmp/mpsl_fetch_test_evil_abs.txt

# A leftover temporary directory from an interrupted run is cleaned up.
mkdir -p "$MPSL_DATA_DIR/t_zip/.extract-good.zip.AbCdEf"
rm -rf "$MPSL_DATA_DIR/t_zip/good"
expect_ok "re-extract after removal" "$MPSL" fetch t_zip
check "stale temporary directory removed" not test -e "$MPSL_DATA_DIR/t_zip/.extract-good.zip.AbCdEf"

stop_server
finish
