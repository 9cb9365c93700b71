#!/usr/bin/env bash
# test.sh: the README's second command (and what CI runs). Installs what is missing, builds
# from scratch in build-test/, runs every test, and prints "N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/.."
MPSL_WITH_TESTS=1 bash scripts/install-deps.sh
rm -rf build-test
meson setup build-test --buildtype=debugoptimized >/dev/null
ninja -C build-test
status=0
meson test -C build-test --print-errorlogs --num-processes 2 "$@" || status=$?
# One summary line in the plain form CI reads.
/usr/bin/python3 - build-test/meson-logs/testlog.json <<'PY'
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
