#!/usr/bin/env bash
# test.sh: the README's second command (and what CI runs). Installs what is missing, builds
# from scratch in build-test/, runs every test, and prints "N passed, N failed".
#
# test.sh --sanitize: the same suite built in build-asan/ with AddressSanitizer and
# UndefinedBehaviorSanitizer (kept between runs, rebuilt incrementally), every test under them
# (a leak, an out-of-bounds access or undefined behaviour fails the test that hit it); for
# developers, slower, not what CI runs. Other arguments go to `meson test` either way.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

sanitize=0
args=()
for a in "$@"; do
  if [ "$a" = --sanitize ]; then sanitize=1; else args+=("$a"); fi
done

MPSL_WITH_TESTS=1 bash scripts/install-deps.sh
if [ "$sanitize" = 0 ]; then
  build=build-test
  rm -rf "$build"
  meson setup "$build" --buildtype=debugoptimized >/dev/null
  ninja -C "$build"
  test_args=()
else
  build=build-asan
  # Frame pointers: whole stacks in ASan's reports, and cheap ones for LeakSanitizer.
  opts=(--buildtype=debugoptimized -Db_sanitize=address,undefined
        -Dc_args=-fno-omit-frame-pointer)
  if [ -f "$build/build.ninja" ]; then
    meson setup --reconfigure "$build" "${opts[@]}" >/dev/null
  else
    rm -rf "$build"
    meson setup "$build" "${opts[@]}" >/dev/null
  fi
  ninja -C "$build"
  # halt_on_error: the first finding ends the process. detect_leaks: LeakSanitizer at exit
  # (it works as root here; no suppressions are needed). verify_asan_link_order=0: the fetch
  # tests LD_PRELOAD a shim ahead of the ASan runtime on purpose. Settings already in the
  # environment come after ours and win, except log_path, which the wrapper below sets per
  # test.
  export ASAN_OPTIONS="halt_on_error=1:detect_leaks=1:abort_on_error=0:print_summary=1:verify_asan_link_order=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
  export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:print_summary=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
  # Sanitized binaries run 2-3 times slower. The wrapper gathers each test's reports from
  # all its processes and fails the test on any (tests/sanitize/run_test.sh).
  test_args=(--timeout-multiplier 4 --wrapper "bash $root/tests/sanitize/run_test.sh")
  rm -f "$build"/meson-logs/testlog*.json   # never summarise an earlier run
fi
status=0
meson test -C "$build" --print-errorlogs --num-processes 2 "${test_args[@]}" "${args[@]}" || status=$?
log="$build/meson-logs/testlog.json"
if [ "$sanitize" = 1 ]; then
  # meson names the log after the wrapper (testlog-bash.json)
  log=$(ls "$build"/meson-logs/testlog*.json)
fi
# One summary line in the plain form CI reads.
/usr/bin/python3 - "$log" <<'PY'
import json, sys
passed = failed = skipped = 0
for line in open(sys.argv[1]):
    r = json.loads(line)["result"]
    if r in ("OK", "EXPECTEDFAIL"): passed += 1
    elif r == "SKIP": skipped += 1
    else: failed += 1
print(f"{passed} passed, {failed} failed, {skipped} skipped")
PY
exit $status
