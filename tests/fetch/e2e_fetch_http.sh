#!/usr/bin/env bash
# e2e_fetch_http.sh: `mpsl fetch` against the local server: downloads, idempotence, mirrors,
# retries, resume, servers that ignore or botch Range, checksum and size mismatches,
# redirects to file://, oversized bodies (with and without Content-Length), a stalled server,
# a full disk, checksum locks, --force, hand-placed files and the directory lock. After every
# failure nothing may sit under the final name.
. "$MPSL_SOURCE/tests/fetch/lib.sh"
start_server
head -c 300000 /dev/urandom >"$WORK/www/blob.bin"
SHA=$(sha_of "$WORK/www/blob.bin")
SIZE=300000

# --- a normal download, then a second fetch that downloads nothing
manifest t_ok blob.bin "$BASE/ok/blob.bin" $SIZE "$SHA"
expect_ok "plain download" "$MPSL" fetch t_ok
check "plain: file in place" cmp -s "$WORK/www/blob.bin" "$MPSL_DATA_DIR/t_ok/blob.bin"
check "plain: no .part left" not test -e "$MPSL_DATA_DIR/t_ok/blob.bin.part"
check "plain: no lock when the manifest has the sha256" \
  not test -e "$MPSL_DATA_DIR/t_ok/blob.bin.sha256.lock"
before=$(requests "/ok/blob.bin")
expect_ok "second fetch" "$MPSL" fetch t_ok
check "second fetch says nothing was downloaded" grep -q "nothing downloaded" "$WORK/out"
check "second fetch makes no request" test "$(requests /ok/blob.bin)" = "$before"
expect_ok "--verify re-hashes" "$MPSL" fetch t_ok --verify
check "--verify: sha256 ok" grep -q "present, sha256 ok" "$WORK/out"
expect_ok "list" "$MPSL" fetch --list
check "list: t_ok verified" grep -Eq "^t_ok +1 +300.0 kB +verified" "$WORK/out"

# --- progress lines when stderr is not a terminal
manifest t_slow blob.bin "$BASE/slow/blob.bin" $SIZE "$SHA"
MPSL_FETCH_PROGRESS_INTERVAL=0.2 expect_ok "slow download" "$MPSL" fetch t_slow
check "slow: progress lines" grep -Eq "^  blob.bin: [0-9.]+ kB of 300.0 kB \([0-9]+%\), [0-9.]+ [kM]?B/s, ETA [0-9]+:[0-9]{2}$" "$WORK/err"

# --- --dir, and a manifest given as a path
expect_ok "--dir and a manifest path" "$MPSL" fetch "$WORK/datasets/t_ok.yaml" --dir "$WORK/elsewhere"
check "--dir: file there" cmp -s "$WORK/www/blob.bin" "$WORK/elsewhere/blob.bin"

# --- HTTP errors are errors; the next mirror is tried
manifest t_404 blob.bin "$BASE/missing/blob.bin" $SIZE "$SHA"
expect_refusal "404" "HTTP 404" "could not be downloaded" -- "$MPSL" fetch t_404
no_final t_404 blob.bin
check "404: no empty .part left" not test -e "$MPSL_DATA_DIR/t_404/blob.bin.part"
manifest t_mirrors blob.bin "$BASE/missing/blob.bin, $BASE/ok/blob.bin" $SIZE "$SHA"
expect_ok "second mirror after a 404" "$MPSL" fetch t_mirrors
check "mirrors: file in place" cmp -s "$WORK/www/blob.bin" "$MPSL_DATA_DIR/t_mirrors/blob.bin"

# --- transient failures are retried
for kind in flaky500 flaky429 reset; do
  manifest "t_$kind" blob.bin "$BASE/$kind/blob.bin" $SIZE "$SHA"
  expect_ok "$kind then success" "$MPSL" fetch "t_$kind"
  check "$kind: retried" grep -q "retry 1/3" "$WORK/err"
  check "$kind: two requests" test "$(requests "/$kind/blob.bin")" = 2
  check "$kind: file in place" cmp -s "$WORK/www/blob.bin" "$MPSL_DATA_DIR/t_$kind/blob.bin"
done
# ... but not forever
manifest t_503 blob.bin "$BASE/always503/blob.bin" $SIZE "$SHA"
MPSL_FETCH_RETRIES=2 expect_refusal "persistent 503s give up" "HTTP 503" \
  "gave up after 2 retries" -- "$MPSL" fetch t_503
check "503: three requests" test "$(requests /always503/blob.bin)" = 3
no_final t_503 blob.bin

# --- a transfer cut short resumes with Range
manifest t_cut blob.bin "$BASE/cut/blob.bin" $SIZE "$SHA"
expect_ok "cut then resumed" "$MPSL" fetch t_cut
check "cut: resumed" grep -q "(resumed)" "$WORK/out"
check "cut: a Range request for the rest" grep -q "GET /cut/blob.bin range=bytes=100000-" "$WORK/server.log"
check "cut: file intact" cmp -s "$WORK/www/blob.bin" "$MPSL_DATA_DIR/t_cut/blob.bin"

# --- a server that ignores Range: the partial file is started over
manifest t_norange blob.bin "$BASE/norange/blob.bin" $SIZE "$SHA"
mkdir -p "$MPSL_DATA_DIR/t_norange"
head -c 1000 /dev/urandom >"$MPSL_DATA_DIR/t_norange/blob.bin.part"
expect_ok "server ignores Range" "$MPSL" fetch t_norange
check "norange: asked for a range" grep -q "GET /norange/blob.bin range=bytes=1000-" "$WORK/server.log"
check "norange: said so" grep -q "ignored the range request (HTTP 200); starting over" "$WORK/err"
check "norange: file intact" cmp -s "$WORK/www/blob.bin" "$MPSL_DATA_DIR/t_norange/blob.bin"

# --- a server that answers a range with the wrong Content-Range: starts over
manifest t_badrange blob.bin "$BASE/badrange/blob.bin" $SIZE "$SHA"
mkdir -p "$MPSL_DATA_DIR/t_badrange"
head -c 1000 /dev/urandom >"$MPSL_DATA_DIR/t_badrange/blob.bin.part"
expect_ok "wrong Content-Range" "$MPSL" fetch t_badrange
check "badrange: started over" grep -q "starting over" "$WORK/err"
check "badrange: file intact" cmp -s "$WORK/www/blob.bin" "$MPSL_DATA_DIR/t_badrange/blob.bin"

# --- a complete but corrupt .part from an earlier run: verified, deleted, downloaded afresh
manifest t_oldpart blob.bin "$BASE/ok/blob.bin" $SIZE "$SHA"
mkdir -p "$MPSL_DATA_DIR/t_oldpart"
head -c $SIZE /dev/zero >"$MPSL_DATA_DIR/t_oldpart/blob.bin.part"
expect_ok "corrupt complete .part" "$MPSL" fetch t_oldpart
check "oldpart: mismatch reported" grep -q "sha256 mismatch" "$WORK/err"
check "oldpart: one fresh request" test "$(requests /ok/blob.bin)" -ge 1
check "oldpart: file intact" cmp -s "$WORK/www/blob.bin" "$MPSL_DATA_DIR/t_oldpart/blob.bin"

# --- checksum mismatch: expected and actual printed, partial file deleted
WRONG=0000000000000000000000000000000000000000000000000000000000000000
manifest t_badsha blob.bin "$BASE/ok/blob.bin" $SIZE $WRONG
expect_refusal "sha256 mismatch" "sha256 mismatch" "expected $WRONG" "actual   $SHA" \
  "partial file was deleted" -- "$MPSL" fetch t_badsha
no_final t_badsha blob.bin
check "badsha: .part deleted" not test -e "$MPSL_DATA_DIR/t_badsha/blob.bin.part"
# A size the server contradicts is refused before the body is written.
manifest t_badsize blob.bin "$BASE/ok/blob.bin" 300001 "$SHA"
expect_refusal "size mismatch" "announces" "300001" -- "$MPSL" fetch t_badsize
no_final t_badsize blob.bin

# --- redirects: followed to http, refused to file://
manifest t_redirect blob.bin "$BASE/redirect/blob.bin" $SIZE "$SHA"
expect_ok "redirect to http" "$MPSL" fetch t_redirect
manifest t_tofile passwd "$BASE/tofile/passwd" null null
expect_refusal "redirect to file://" "only http and https" -- "$MPSL" fetch t_tofile
no_final t_tofile passwd
manifest t_fileurl passwd "file:///etc/passwd" null null
expect_refusal "file:// in a manifest" "only http:// and https:// URLs" -- "$MPSL" fetch t_fileurl

# --- oversized bodies: with Content-Length, chunked, close-delimited
manifest t_bigcl big.bin "$BASE/bigcl/big.bin" 1000 null
expect_refusal "oversize with Content-Length" "announces 50.0 MB" -- "$MPSL" fetch t_bigcl
no_final t_bigcl big.bin
for kind in bigchunked bigclose; do
  manifest "t_$kind" big.bin "$BASE/$kind/big.bin" 1000 null
  expect_refusal "$kind over the manifest size" "sent more than 1.0 kB" -- "$MPSL" fetch "t_$kind"
  no_final "t_$kind" big.bin
  manifest "t_${kind}_u" big.bin "$BASE/$kind/big.bin" null null
  MPSL_FETCH_MAX_BYTES=2000000 expect_refusal "$kind over the global cap" \
    "sent more than 2.0 MB" "cap for files of unknown size" -- "$MPSL" fetch "t_${kind}_u"
  no_final "t_${kind}_u" big.bin
done

# --- a stalled server times out quickly (and the directory lock keeps a second fetch out)
manifest t_stall blob.bin "$BASE/stall/blob.bin" $SIZE "$SHA"
t0=$(date +%s.%N)
MPSL_FETCH_RETRIES=1 "$MPSL" fetch t_stall >"$WORK/stall.out" 2>"$WORK/stall.err" &
stall_pid=$!
sleep 0.5
expect_refusal "directory lock" "another mpsl fetch is working" -- "$MPSL" fetch t_stall
if wait $stall_pid; then fail "stall: expected a failure"; else ok; fi
t1=$(date +%s.%N)
check "stall: gave up within 10 s" awk -v a="$t0" -v b="$t1" 'BEGIN { exit !(b - a < 10) }'
check "stall: says stalled" grep -q "stalled" "$WORK/stall.err"
no_final t_stall blob.bin

# --- disk full while writing: a clear error, nothing under the final name
if [ -n "${MPSL_TEST_ENOSPC_SHIM:-}" ]; then
  manifest t_enospc blob.bin "$BASE/ok/blob.bin" $SIZE "$SHA"
  LD_PRELOAD="$MPSL_TEST_ENOSPC_SHIM" MPSL_TEST_ENOSPC_AFTER=50000 expect_refusal "disk full" \
    "No space left on device" "disk full" -- "$MPSL" fetch t_enospc
  no_final t_enospc blob.bin
  expect_ok "disk freed: resumes" "$MPSL" fetch t_enospc
  check "enospc: resumed" grep -q "(resumed)" "$WORK/out"
  check "enospc: file intact" cmp -s "$WORK/www/blob.bin" "$MPSL_DATA_DIR/t_enospc/blob.bin"
fi

# --- no published checksum: the first verified download records it, later fetches use it
manifest t_lock blob.bin "$BASE/ok/blob.bin" $SIZE null
expect_ok "sha256 null" "$MPSL" fetch t_lock
D="$MPSL_DATA_DIR/t_lock"
check "lock: recorded" grep -q "recorded $SHA" "$WORK/out"
check "lock: sha256sum format" sh -c "cd '$D' && sha256sum -c --quiet blob.bin.sha256.lock"
printf 'x' | dd of="$D/blob.bin" bs=1 seek=1000 conv=notrunc status=none
expect_refusal "changed file vs lock" "sha256 mismatch" "recorded in the .sha256.lock" \
  "--force" -- "$MPSL" fetch t_lock
expect_ok "--force downloads again" "$MPSL" fetch t_lock --force
check "force: file intact" cmp -s "$WORK/www/blob.bin" "$D/blob.bin"
check "force: lock kept" grep -q "^$SHA  blob.bin$" "$D/blob.bin.sha256.lock"

# --- files placed by hand (login required)
manifest t_manual blob.bin "" $SIZE "$SHA"
sed -i 's/^task:/login_required: true\ntask:/' "$WORK/datasets/t_manual.yaml"
expect_refusal "login required" "must be downloaded by hand (login required)" \
  "put it in $MPSL_DATA_DIR/t_manual" -- "$MPSL" fetch t_manual
check "manual: says where" grep -q "place it by hand at $MPSL_DATA_DIR/t_manual/blob.bin (300.0 kB)" "$WORK/out"
check "manual: prints the instructions" grep -q "Ask the test for the file" "$WORK/out"
cp "$WORK/www/blob.bin" "$MPSL_DATA_DIR/t_manual/blob.bin"
expect_ok "hand-placed file verified" "$MPSL" fetch t_manual
check "manual: verified" grep -q "present, sha256 ok" "$WORK/out"
head -c 10 /dev/zero >"$MPSL_DATA_DIR/t_manual/blob.bin"
expect_refusal "wrong hand-placed file" "size mismatch" -- "$MPSL" fetch t_manual

stop_server
finish
