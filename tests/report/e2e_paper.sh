#!/usr/bin/env bash
# e2e_paper.sh: the report's paper figures from real runs: a sweep of three seeds times two
# strategies (FedAvg, FedProx) on a tiny Fashion-MNIST slice with step figures, plus one
# retrieval run. The page, read with an XML parser: self-contained (no script, no URL),
# groups with mean ± sd (n) and band paths, a retrieval section with recall@1/5/10 and no
# retrieval line among the classifiers, the bytes axis logarithmic, FedProx's bytes named as
# the same as FedAvg's, per-step curves, the target and config-difference tables, class names,
# a print stylesheet; no tokenizer-drift section, which a tiny MPSL run with
# strategy.diagnostics adds (two charts and a cross-accuracy table). `mpsl plot` against
# step, bytes, seconds and comm, grouped, and its refusals. Then headless Chromium prints the
# page to PDF and takes a screenshot (skipped without chromium).
source "$MPSL_SOURCE/tests/core/lib.sh"
PY=/usr/bin/python3
cat > sweep.yaml <<'YAML'
name: paper
seed: 1
data:
  dataset: {plugin: fashion_mnist, train_limit: 600, test_limit: 200}
  clients: 4
  partition: {scheme: dirichlet, alpha: 0.5}
model:
  tokenizers:
    image: {plugin: image_patch, patch: 7, dim: 32}
  encoder: {plugin: token_mlp, depth: 1, hidden: 64}
  head: {plugin: classifier, pool: mean}
strategy: {plugin: fedavg}
train: {epochs: 3, batch_size: 64, optimizer: {name: adam, lr: 0.003}}
metrics: {every_steps: 2}
sweep:
  strategy: [{plugin: fedavg}, {plugin: fedprox, mu: 0.01}]
  seed: [1, 2, 3]
YAML
# A tiny retrieval run (tests/core/e2e_retrieval.sh's, smaller), without step figures.
cat > retrieval.yaml <<'YAML'
name: retrieval
seed: 5
data:
  dataset: {plugin: two_views_retrieval, n_train: 400, n_test: 100}
  clients: 2
  partition: {scheme: iid}
model:
  tokenizers:
    image: {plugin: image_patch, patch: 4, dim: 16}
    text: {plugin: text, vocab: bytes, pool_to_one: true, cls: false, max_tokens: 24, dim: 16}
  encoder: {plugin: vit, depth: 1, heads: 2, mlp_ratio: 2}
  head: {plugin: retrieval}
  fusion: late
strategy: {plugin: mpsl}
train: {epochs: 2, batch_size: 64, optimizer: {name: adam, lr: 0.003}}
YAML
expect_ok "sweep: 3 seeds x fedavg, fedprox" "$MPSL" run sweep.yaml --db r.db
expect_ok "retrieval run" "$MPSL" run retrieval.yaml --db r.db
check "seven finished runs" [ "$(sql r.db "select count(*) from runs where status='finished'")" = 7 ]
check "the sweep recorded step figures" [ "$(sql r.db "select count(*) > 0 from step_metrics where run_id <= 6")" = 1 ]

# ---------------------------------------------------------------- the report
expect_ok "report" "$MPSL" report --db r.db -o paper.html --target 0.15 --link-mbps 10,50
cat > check_paper.py <<'PY'
import re, sys, xml.dom.minidom as md
text = open(sys.argv[1], encoding="utf-8").read()
errors = []
def need(cond, what):
    if not cond:
        errors.append(what)
try:
    doc = md.parseString(text.encode("utf-8"))
except Exception as e:
    print("report is not well-formed:", e); sys.exit(1)
low = text.lower()
for bad in ("<script", "http://", "https://", " src=", "<link", "@import", "url("):
    need(bad not in low, f"no '{bad}' in the report")
def by_id(i):
    for tag in ("figure", "section", "h3"):
        for e in doc.getElementsByTagName(tag):
            if e.getAttribute("id") == i:
                return e
    return None
def texts(e):
    return "".join(n.data for n in e.childNodes if n.nodeType == n.TEXT_NODE) + \
           "".join(texts(c) for c in e.childNodes if c.nodeType == c.ELEMENT_NODE)
def marks(fig, cls):
    return [e for tag in ("path", "rect", "g", "text") for e in fig.getElementsByTagName(tag)
            if cls in e.getAttribute("class").split()]
cls, ret = by_id("classification"), by_id("retrieval")
need(cls is not None and ret is not None, "a classification and a retrieval section")
# Groups: two of three runs in classification, one run in retrieval; mean ± sd (n).
tables = {t.getAttribute("class"): t for t in doc.getElementsByTagName("table")}
for want in ("groups", "target", "config-diff", "runs"):
    need(any(t.getAttribute("class") == want for t in doc.getElementsByTagName("table")),
         f"a {want} table")
if cls is not None:
    g = [t for t in cls.getElementsByTagName("table") if t.getAttribute("class") == "groups"]
    rows = [r for r in g[0].getElementsByTagName("tr") if r.getAttribute("class") == "group"] if g else []
    need(len(rows) == 2, f"classification: two groups, not {len(rows)}")
    for r in rows:
        t = texts(r)
        need("(n=3)" in t and "\u00b1" in t and "(3)" in t, f"group row has n=3 and mean ± sd (3): {t[:120]}")
        need(len(r.getElementsByTagName("a")) == 3, "a group row links its three runs")
    need("#7" not in texts(cls), "the retrieval run is not in the classification section")
    fig = by_id("plot-test-metric")
    need(fig is not None and len(marks(fig, "band")) == 2, "test metric: a band per group")
    fig = by_id("plot-metric-bytes")
    need(fig is not None and marks(fig, "log") and "(log scale)" in texts(fig),
         "test metric against bytes: a log x axis")
    for fid in ("plot-metric-time", "plot-metric-comm", "plot-train-loss-steps", "plot-train-loss"):
        f = by_id(fid)
        need(f is not None and marks(f, "series") and marks(f, "band"), f"{fid}: lines and bands")
    f = by_id("plot-metric-comm")
    need(f is not None and "10 Mbit/s up, 50 down" in texts(f), "the link model is named")
    t = [t for t in cls.getElementsByTagName("table") if t.getAttribute("class") == "target"]
    need(t and len([r for r in t[0].getElementsByTagName("tr") if r.getAttribute("class") == "group"]) == 2,
         "target table: a row per group")
    need(t and ("of 3" in texts(t[0]) or "not reached" in texts(t[0])), "target table: reached k of 3")
    d = [t for t in cls.getElementsByTagName("table") if t.getAttribute("class") == "config-diff"]
    keys = [td.firstChild.data for td in d[0].getElementsByTagName("td") if td.getAttribute("class") == "key"] if d else []
    need(keys == ["seed", "strategy.plugin", "strategy.mu"], f"config diff keys: {keys}")
if ret is not None:
    for d in ("i2t", "t2i"):
        for k in (1, 5, 10):
            f = by_id(f"plot-recall_{d}_{k}")
            need(f is not None and marks(f, "series"), f"retrieval: recall@{k} {d} drawn")
    need("recall@10, text to image" in texts(ret), "recall chart titles")
    need(by_id("retrieval-plot-test-metric") is not None, "retrieval's own curves")
    need("fedavg" not in texts(ret), "no classifier in the retrieval section")
# FedProx sends FedAvg's bytes: the later line is named, dashed, with other markers.
f = by_id("plot-bytes")
need(f is not None and "(same as plugin=fedavg" in texts(f), "bytes: FedProx named the same as FedAvg")
need(f is not None and any(p.getAttribute("stroke-dasharray") for p in f.getElementsByTagName("path")),
     "bytes: a dashed line")
f = by_id("plot-flops")
need(f is not None and marks(f, "series"), "FLOPs bars")
# Class names instead of numbers.
need("T-shirt/top" in text and "Ankle boot" in text, "Fashion-MNIST's class names")
need("class 0" not in text, "no 'class 0'")
# Print: white, figures whole, headers repeated.
need("@media print" in text and "break-inside:avoid" in text and "table-header-group" in text,
     "a print stylesheet")
for e in errors:
    print("FAIL:", e)
sys.exit(1 if errors else 0)
PY
check "report structure" $PY check_paper.py paper.html
expect_ok "report, 95% intervals, grouped by strategy" "$MPSL" report --db r.db -o ci.html \
  --band ci95 --group-by strategy
check "ci95 named" grep -q '95% confidence interval' ci.html
check "grouped by strategy: strategy=fedavg" grep -q 'strategy=fedavg (n=3)' ci.html
expect_ok "report, no band" "$MPSL" report 1 2 3 --db r.db -o none.html --band none
check "no band paths with --band none" not grep -q 'class="band"' none.html
check "no target: a hint instead" grep -q -- '--target VALUE' none.html
expect_refusal "report --band bad" "--band wants sd, ci95 or none, not 'se'" -- \
  "$MPSL" report --db r.db -o x.html --band se
expect_refusal "report --link-mbps 0" "--link-mbps wants UP or UP,DOWN" "not '0,50'" -- \
  "$MPSL" report --db r.db -o x.html --link-mbps 0,50
expect_refusal "report --target x" "--target wants a number" -- \
  "$MPSL" report --db r.db -o x.html --target high
expect_refusal "report --group-by an unknown key" "nosuchkey" -- \
  "$MPSL" report --db r.db -o x.html --group-by nosuchkey
check "no file left by refusals" [ ! -e x.html ]

# ---------------------------------------------------------------- plot
svg_ok() { # FILE [NEEDLE...]: a well-formed standalone SVG with lines, holding each needle
  local f=$1; shift
  $PY - "$f" "$@" <<'PY'
import sys, xml.dom.minidom as md
d = md.parse(sys.argv[1]); r = d.documentElement
assert r.tagName == "svg" and r.getAttribute("xmlns") == "http://www.w3.org/2000/svg", "root"
assert [p for p in d.getElementsByTagName("path") if p.getAttribute("class") == "series"], "lines"
text = open(sys.argv[1], encoding="utf-8").read()
for needle in sys.argv[2:]:
    assert needle in text, f"no {needle!r}"
PY
}
expect_ok "plot train_loss --x step" "$MPSL" plot train_loss 1 2 3 4 5 6 --db r.db --x step -o steps.svg
check "steps: bands, the step axis" svg_ok steps.svg 'class="band"' 'training step'
expect_ok "plot test_acc --x bytes --log-x" "$MPSL" plot test_acc 1 2 3 4 5 6 --db r.db --x bytes --log-x -o bytes.svg
check "bytes: log x" svg_ok bytes.svg 'axis log' '(log scale)' 'bytes per client'
expect_ok "plot test_acc --x seconds" "$MPSL" plot test_acc 1 2 3 4 5 6 --db r.db --x seconds -o secs.svg
check "seconds: wall time" svg_ok secs.svg 'wall time'
expect_ok "plot test_acc --x comm" "$MPSL" plot test_acc 1 4 --db r.db --x comm --link-mbps 1,2 -o comm.svg
check "comm: the link named" svg_ok comm.svg '1 Mbit/s up, 2 down'
expect_ok "plot --group-by strategy --log-y" "$MPSL" plot test_loss 1 2 3 4 5 6 --db r.db --group-by strategy --log-y -o g.svg
check "grouped: two groups, log y" svg_ok g.svg 'strategy=fedprox (n=3)' 'axis log'
expect_ok "plot recall of the retrieval run" "$MPSL" plot recall_t2i_10 7 --db r.db -o r10.svg
check "recall plot" svg_ok r10.svg 'recall@10, text to image'
expect_refusal "plot a misspelt metric" "no per-epoch figure 'test_acx'" "did you mean 'test_acc'" \
  "they have: " -- "$MPSL" plot test_acx 1 2 --db r.db -o x.svg
expect_refusal "plot steps of a run without them" "no per-step figure 'train_loss' in run 7" \
  "metrics.every_steps" -- "$MPSL" plot train_loss 7 --db r.db --x step -o x.svg
expect_refusal "plot steps: a misspelt name" "did you mean 'train_loss'" -- \
  "$MPSL" plot train_los 1 --db r.db --x step -o x.svg
expect_refusal "plot --x unknown" "--x wants epoch, step, bytes, seconds, comm or sim, not 'time'" -- \
  "$MPSL" plot test_acc 1 --db r.db --x time -o x.svg
check "no file left by refusals" [ ! -e x.svg ]

# ---------------------------------------------------------------- MPSL drift diagnostics
# None of the runs above records them: no drift section. A tiny MPSL run with
# strategy.diagnostics and one without, in a database of their own.
check "no drift section without diagnostics" not grep -q 'id="tokenizer-drift"' paper.html
cat > drift.yaml <<'YAML'
name: drift
seed: 3
data:
  dataset: {plugin: fashion_mnist, train_limit: 300, test_limit: 100}
  clients: 3
  partition: {scheme: dirichlet, alpha: 0.5}
model:
  tokenizers:
    image: {plugin: image_patch, patch: 7, dim: 16}
  encoder: {plugin: token_mlp, depth: 1, hidden: 32}
  head: {plugin: classifier, pool: mean}
strategy: {plugin: mpsl, diagnostics: true}
train: {epochs: 2, batch_size: 64, optimizer: {name: adam, lr: 0.003}}
YAML
sed -e 's/diagnostics: true/diagnostics: false/' -e 's/^name: drift/name: plain/' drift.yaml > plain.yaml
expect_ok "mpsl run with diagnostics" "$MPSL" run drift.yaml --db d.db
expect_ok "mpsl run without diagnostics" "$MPSL" run plain.yaml --db d.db
check "the diagnostics were recorded" [ "$(sql d.db "select count(*) > 0 from epoch_metrics where run_id = 1 and name = 'tokenizer_drift_mean'")" = 1 ]
expect_ok "report of the run without diagnostics" "$MPSL" report 2 --db d.db -o plain.html
check "no drift section for a run without diagnostics" not grep -q 'Tokenizer drift' plain.html
expect_ok "report with diagnostics" "$MPSL" report --db d.db -o drift.html
cat > check_drift.py <<'PY'
import sys, xml.dom.minidom as md
text = open(sys.argv[1], encoding="utf-8").read()
errors = []
def need(cond, what):
    if not cond:
        errors.append(what)
doc = md.parseString(text.encode("utf-8"))
low = text.lower()
for bad in ("<script", "http://", "https://", " src=", "<link", "@import", "url("):
    need(bad not in low, f"no '{bad}' in the report")
def texts(e):
    return "".join(n.data for n in e.childNodes if n.nodeType == n.TEXT_NODE) + \
           "".join(texts(c) for c in e.childNodes if c.nodeType == c.ELEMENT_NODE)
def marks(e, cls):
    return [x for tag in ("path", "rect", "g") for x in e.getElementsByTagName(tag)
            if cls in x.getAttribute("class").split()]
sec = [s for s in doc.getElementsByTagName("section") if s.getAttribute("id") == "tokenizer-drift"]
need(len(sec) == 1, "one tokenizer-drift section")
if sec:
    s = sec[0]
    need("Tokenizer drift (MPSL)" in texts(s), "the section's title")
    figs = {f.getAttribute("id"): f for f in s.getElementsByTagName("figure")}
    need(sorted(figs) == ["plot-drift-0", "plot-own-acc-0"],
         f"a drift and an accuracy chart for the one group with diagnostics: {sorted(figs)}")
    d = figs.get("plot-drift-0")
    need(d is not None and len(marks(d, "series")) >= 1 and marks(d, "band"),
         "drift chart: a line with its min-max band")
    a = figs.get("plot-own-acc-0")
    need(a is not None and len([p for p in a.getElementsByTagName("path")
                                if p.getAttribute("class") == "series"]) == 3 and marks(a, "band"),
         "accuracy chart: own tokenizer (with band), test_acc, train_acc_avg_tokenizer")
    need(a is not None and "test_acc" in texts(a), "accuracy chart names test_acc")
    t = [t for t in s.getElementsByTagName("table") if t.getAttribute("class") == "drift"]
    rows = [r for r in t[0].getElementsByTagName("tr") if r.getAttribute("class") == "group"] if t else []
    need(len(rows) == 1, f"cross-accuracy table: one row (the run with diagnostics), not {len(rows)}")
    need(t and "cross_acc_own" in texts(t[0]) and "cross_acc_others" in texts(t[0]),
         "cross-accuracy table: own and others")
    if rows:
        nums = [td for td in rows[0].getElementsByTagName("td") if td.getAttribute("class") == "num"]
        need(len(nums) == 5, f"five figures in the row, not {len(nums)}")
        need("#1" in texts(rows[0]) and "#2" not in texts(rows[0]), "the row is run 1's")
need("table.drift" in text and "@media print" in text, "the drift table is styled, print too")
for e in errors:
    print("FAIL:", e)
sys.exit(1 if errors else 0)
PY
check "drift section structure" $PY check_drift.py drift.html

# ---------------------------------------------------------------- Chromium: PDF and PNG
CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$CHROMIUM" ]; then
  echo "chromium is not installed: the PDF and PNG render is skipped" >&2
else
  browser() {
    HOME="$WORK" timeout 90 "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-quic \
      --no-first-run --disable-background-networking --disable-component-update --disable-sync \
      --disable-dev-shm-usage --user-data-dir="$(mktemp -d "$WORK/profile.XXXX")" "$@"
  }
  browser --print-to-pdf="$WORK/paper.pdf" --no-pdf-header-footer "file://$WORK/paper.html" \
    >"$WORK/chromium.log" 2>&1 || { fail "chromium --print-to-pdf"; tail -5 "$WORK/chromium.log" >&2; }
  check "PDF written" $PY -c 'import sys, re
d = open(sys.argv[1], "rb").read()
assert d[:5] == b"%PDF-", "not a PDF"
pages = len(re.findall(rb"/Type\s*/Page\b", d))
print(f"{len(d)} bytes, {pages} pages", file=sys.stderr)
assert len(d) > 20000 and pages >= 3, "too small for the report"' "$WORK/paper.pdf"
  browser --screenshot="$WORK/paper.png" --window-size=1280,2000 "file://$WORK/paper.html" \
    >"$WORK/chromium.log" 2>&1 || { fail "chromium screenshot"; tail -5 "$WORK/chromium.log" >&2; }
  check "PNG written" $PY -c 'import sys
d = open(sys.argv[1], "rb").read()
assert d[:8] == b"\x89PNG\r\n\x1a\n" and len(d) > 50000' "$WORK/paper.png"
  if [ -n "${MPSL_KEEP_SHOT:-}" ]; then cp paper.html paper.pdf paper.png "$MPSL_KEEP_SHOT"/; fi
fi
finish
