#!/usr/bin/env bash
# render_chromium.sh: a report as a browser shows it. Headless Chromium (Debian's `chromium`,
# from scripts/install-deps.sh) takes a screenshot, which must be a real picture (a PNG of
# the window's size whose pixels vary), and dumps the DOM after rendering, which must still
# hold the runs table and every plot. Network is off for the browser: the page needs none.
# Skipped (exit 77) when chromium is not installed.
source "$MPSL_SOURCE/tests/core/lib.sh"
CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$CHROMIUM" ]; then
  echo "SKIP: chromium is not installed (scripts/install-deps.sh installs it)" >&2
  exit 77
fi
cat > exp.yaml <<'YAML'
name: render
seed: 5
data:
  dataset: {plugin: fashion_mnist, train_limit: 1000, test_limit: 300}
  clients: 8
  partition: {scheme: dirichlet, alpha: 0.5}
model:
  tokenizers:
    image: {plugin: image_patch, patch: 7, dim: 32}
  encoder: {plugin: token_mlp, depth: 1, hidden: 64}
  head: {plugin: classifier, pool: mean}
strategy: {plugin: fedavg}
train: {epochs: 2, batch_size: 64, optimizer: {name: adam, lr: 0.002}}
YAML
expect_ok "fedavg run" "$MPSL" run exp.yaml --db r.db
expect_ok "mpsl run" "$MPSL" run exp.yaml --db r.db --set 'strategy={plugin: mpsl}'
expect_ok "report" "$MPSL" report --db r.db -o report.html

browser() {
  # HOME too: Chromium writes caches and crash reports there.
  HOME="$WORK" timeout 90 "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-quic \
    --no-first-run --disable-background-networking --disable-component-update --disable-sync \
    --disable-dev-shm-usage --user-data-dir="$(mktemp -d "$WORK/profile.XXXX")" "$@"
}
browser --screenshot="$WORK/shot.png" --window-size=1280,2400 "file://$WORK/report.html" \
  >"$WORK/chromium.log" 2>&1 || { fail "chromium screenshot"; tail -5 "$WORK/chromium.log" >&2; }
check "screenshot written" [ -s shot.png ]
# The PNG is the window's size, and its pixels vary: decode the scanlines (zlib) and count
# distinct rows and colours; a blank or failed render has a handful.
check "screenshot is a real picture" /usr/bin/python3 - "$WORK/shot.png" <<'PY'
import struct, sys, zlib
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
pos, idat, w = 8, b"", 0
while pos < len(data):
    n, kind = struct.unpack(">I4s", data[pos:pos + 8])
    body = data[pos + 8:pos + 8 + n]
    if kind == b"IHDR":
        w, h, depth, ctype = struct.unpack(">IIBB", body[:10])
    elif kind == b"IDAT":
        idat += body
    pos += 12 + n
assert (w, h) == (1280, 2400), f"size {w}x{h}"
raw = zlib.decompress(idat)
bpp = {2: 3, 6: 4}[ctype]
stride = 1 + w * bpp
rows = {raw[i * stride + 1:(i + 1) * stride] for i in range(0, h, 4)}
sample = raw[1:stride * h:997]
print(f"{len(data)} bytes, {len(rows)} distinct sampled rows, {len(set(sample))} byte values",
      file=sys.stderr)
assert len(data) > 50000, "suspiciously small"
assert len(rows) > 100, "too few distinct rows: blank page?"
PY
browser --dump-dom "file://$WORK/report.html" >"$WORK/dom.html" 2>"$WORK/chromium.log" \
  || { fail "chromium --dump-dom"; tail -5 "$WORK/chromium.log" >&2; }
check "rendered DOM has the runs table" grep -q '<table class="runs">' dom.html
check "rendered DOM has both runs" [ "$(grep -c '<tr class="run"' dom.html)" = 2 ]
check "rendered DOM has every plot" [ "$(grep -o '<svg ' dom.html | wc -l)" -ge 7 ]
check "rendered plots have data marks" grep -q 'class="series"' dom.html
echo "screenshot: $WORK/shot.png (removed on exit; keep with MPSL_KEEP_SHOT=DIR)" >&2
if [ -n "${MPSL_KEEP_SHOT:-}" ]; then cp shot.png report.html "$MPSL_KEEP_SHOT"/; fi
finish
