#!/usr/bin/env bash
# run_test.sh TEST [ARGS...]: how scripts/test.sh --sanitize has `meson test` run each test
# (--wrapper). Every process the test starts, however deep (the mpsl command, its supervised
# child, sweep points, MPI ranks), writes its AddressSanitizer, LeakSanitizer and UBSan
# reports into a folder of this test's own (log_path) instead of its stderr, so that a report
# cannot hide in a command whose failure the test expects or whose stderr it does not read.
# After the test, any report fails it (its status becomes 1 unless it already failed) and
# is printed on stderr, where meson's log of that test shows it. Files holding only ASan's
# warning about swapcontext (strategy roles run as fibers; core/train/fiber.c annotates the
# switches) are not reports.
set -u
dir=$(mktemp -d "${TMPDIR:-/tmp}/mpsl-sanitize.XXXXXX") || exit 1
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}log_path=$dir/asan"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}log_path=$dir/ubsan"
"$@"
rc=$?
reports=()
for f in "$dir"/*; do
  [ -f "$f" ] && grep -qE 'ERROR: |runtime error|SUMMARY: ' "$f" && reports+=("$f")
done
if [ "${#reports[@]}" -gt 0 ]; then
  for f in "${reports[@]}"; do
    echo "=== sanitizer report from process ${f##*.} (${f##*/})" >&2
    cat "$f" >&2
  done
  echo "sanitizer: ${#reports[@]} report(s) from processes of this test (above)" >&2
  if [ "$rc" = 0 ] || [ "$rc" = 77 ]; then
    rc=1
  fi
fi
rm -rf "$dir"
exit "$rc"
