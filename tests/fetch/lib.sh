# lib.sh: helpers for the fetch tests: the core e2e helpers, a private data directory, network
# settings short enough for tests, and the local HTTP server (server.py) on 127.0.0.1.
# Needs: MPSL, MPSL_SOURCE, /usr/bin/python3 (without it the test reports SKIP, exit 77).
if [ ! -x /usr/bin/python3 ]; then
  echo "SKIP: /usr/bin/python3 not found: it serves the test's files (apt install python3)"
  exit 77
fi
. "$MPSL_SOURCE/tests/core/lib.sh"

SERVER_PID=
stop_server() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null
    wait "$SERVER_PID" 2>/dev/null
    SERVER_PID=
  fi
}
trap 'stop_server; rm -rf "$WORK"' EXIT

# Only the local server is ever contacted: no proxies, and a HOME of our own.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY
export NO_PROXY=127.0.0.1 no_proxy=127.0.0.1
export HOME="$WORK/home"
export MPSL_DATA_DIR="$WORK/data" MPSL_DATASETS_PATH="$WORK/datasets"
export MPSL_FETCH_RETRIES=3 MPSL_FETCH_RETRY_DELAY=0.05 MPSL_FETCH_RETRY_MAX_DELAY=0.2
export MPSL_FETCH_LOW_SPEED_LIMIT=1000 MPSL_FETCH_LOW_SPEED_TIME=1 MPSL_FETCH_CONNECT_TIMEOUT=5
export MPSL_FETCH_PROGRESS=lines
mkdir -p "$WORK/www" "$WORK/datasets" "$WORK/data" "$HOME"

# start_server: serves $WORK/www; sets PORT and BASE. The server exits by itself after 100 s.
start_server() {
  /usr/bin/python3 "$MPSL_SOURCE/tests/fetch/server.py" "$WORK/www" "$WORK/port" \
    "$WORK/server.log" 100 &
  SERVER_PID=$!
  local i
  for i in $(seq 200); do [ -s "$WORK/port" ] && break; sleep 0.05; done
  PORT=$(cat "$WORK/port")
  BASE="http://127.0.0.1:$PORT"
  [ -n "$PORT" ] || { echo "FAIL: the test server did not start" >&2; exit 1; }
}

sha_of() { sha256sum "$1" | cut -d' ' -f1; }
size_of() { stat -c %s "$1"; }
requests() { grep -c -F -- "$1" "$WORK/server.log" 2>/dev/null || true; }

# manifest NAME FILE URL SIZE SHA256 [EXTRACT [FORMAT [MAX_BYTES [MAX_ENTRIES]]]]: a one-file
# manifest in $WORK/datasets. URL "" means no URLs (placed by hand).
manifest() {
  local urls="[$3]"
  [ -z "$3" ] && urls="[]"
  cat >"$WORK/datasets/$1.yaml" <<EOF
name: $1
description: a test dataset
license: test only
homepage: http://127.0.0.1/
modalities: [image]
task: testing mpsl fetch
used_by: tests/fetch
checksum_note: test files
manual_instructions: Ask the test for the file and copy it into the dataset directory.
max_extracted_bytes: ${8:-10000000}
max_entries: ${9:-1000}
files:
  - name: $2
    urls: $urls
    size: $4
    sha256: $5
    extract: ${6:-false}
    format: ${7:-auto}
EOF
}

# no_final NAME FILE: after a failure nothing sits under the final name (nor a verified stamp).
no_final() {
  check "$1: nothing under the final name $2" not test -e "$MPSL_DATA_DIR/$1/$2"
  check "$1: no stamp for $2" not test -e "$MPSL_DATA_DIR/$1/.$2.verified"
}
