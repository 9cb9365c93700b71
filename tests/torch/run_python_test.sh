#!/bin/bash
# run_python_test.sh SCRIPT [ARGS...] | --exec PROGRAM [ARGS...]: runs SCRIPT with /usr/bin/python3 (the Python this project
# uses for PyTorch; MPSL_TEST_PYTHON overrides it, for testing this script), or reports the test
# skipped (exit 77, meson's "skipped") with the reason when that Python or its torch module is
# missing. The tests that need PyTorch are always declared and run through this, so a machine
# without them shows SKIP, never a silently absent or passing test.
PY=${MPSL_TEST_PYTHON:-/usr/bin/python3}
if [ ! -x "$PY" ]; then
  echo "SKIP: $PY not found (Debian: apt install python3 python3-torch python3-numpy)"
  exit 77
fi
if ! why=$("$PY" -c 'import torch' 2>&1); then
  echo "SKIP: $PY cannot import torch (Debian: apt install python3-torch python3-numpy):"
  printf '%s\n' "$why" | tail -n 1
  exit 77
fi
# --exec PROGRAM ARGS...: run a program (which calls Python itself) once Python is known to work.
if [ "${1:-}" = --exec ]; then
  shift
  exec "$@"
fi
exec "$PY" "$@"
