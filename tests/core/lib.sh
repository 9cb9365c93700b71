# lib.sh: helpers for the end-to-end tests, which drive the real `mpsl` command.
# Needs: MPSL (the command), MPSL_SOURCE (the source tree), sqlite3.
set -u
failures=0
checks=0
WORK=$(mktemp -d /tmp/mpsl-e2e.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
export MPSL_PLUGIN_PATH="${MPSL_PLUGIN_DIR:-}:${MPSL_TEST_PLUGIN_DIR:-}"

fail() { failures=$((failures + 1)); echo "FAIL: $*" >&2; }
ok() { checks=$((checks + 1)); }

# expect_ok DESCRIPTION CMD...: the command must exit 0.
expect_ok() {
  local what=$1; shift
  if "$@" >"$WORK/out" 2>"$WORK/err"; then ok; else
    fail "$what: exit $? from: $*"; sed 's/^/    /' "$WORK/err" >&2; fi
}

# expect_refusal DESCRIPTION NEEDLE... -- CMD...: the command must exit non-zero and its
# stderr must contain every needle.
expect_refusal() {
  local what=$1; shift
  local needles=()
  while [ "$1" != "--" ]; do needles+=("$1"); shift; done
  shift
  if "$@" >"$WORK/out" 2>"$WORK/err"; then
    fail "$what: expected a refusal, got exit 0 from: $*"; return
  fi
  local n
  for n in "${needles[@]}"; do
    if grep -qF -- "$n" "$WORK/err"; then ok; else
      fail "$what: message lacks '$n'"; sed 's/^/    got: /' "$WORK/err" >&2; fi
  done
}

# check CONDITION-DESCRIPTION TEST-EXPRESSION...
check() {
  local what=$1; shift
  if "$@"; then ok; else fail "$what"; fi
}

# not CMD...: succeeds when CMD fails (for use with check).
not() { ! "$@"; }

sql() { sqlite3 -batch -noheader "$1" "$2"; }

# last_run DB: the id of the run written last.
last_run() { sql "$1" "select max(id) from runs"; }

# all_figures DB RUN: every figure a run recorded, at full precision, timings and memory
# aside (epoch and client metrics, bytes and messages per link, FLOPs per party): two runs
# that print the same lines recorded the same figures bit for bit.
all_figures() {
  sql "$1" "select epoch || ' ' || name || ' ' || printf('%.17g', value) from epoch_metrics
            where run_id=$2 and name not like '%seconds' and name <> 'peak_rss_bytes'
            order by epoch, name"
  sql "$1" "select epoch || ' ' || client || ' ' || name || ' ' || printf('%.17g', value)
            from client_metrics where run_id=$2 and name not like '%seconds' order by 1"
  sql "$1" "select epoch, client, direction, kind, bytes, messages from comm where run_id=$2
            order by 1, 2, 3, 4"
  sql "$1" "select party, client, pass, printf('%.17g', flops) from compute where run_id=$2
            order by 1, 2, 3"
}

# Quick settings: a slice of Fashion-MNIST and one epoch.
QUICK=(--set data.dataset.train_limit=3000 --set data.dataset.test_limit=1000 --set train.epochs=1)

# same_numbers A B TOL: two whitespace-separated lists of numbers agree to relative TOL.
same_numbers() {
  awk -v a="$1" -v b="$2" -v tol="$3" 'BEGIN {
    n = split(a, x); m = split(b, y); if (n != m || n == 0) exit 1
    for (i = 1; i <= n; i++) { d = x[i] - y[i]; if (d < 0) d = -d
      s = (x[i] < 0 ? -x[i] : x[i]); if (s < 1) s = 1; if (d > tol * s) exit 1 }
  }'
}

finish() {
  echo "$checks checks, $failures failed" >&2
  [ "$failures" -eq 0 ]
}
