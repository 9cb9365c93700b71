#!/usr/bin/env bash
# e2e_report.sh: `mpsl report`, `plot`, `query` and `new-plugin` on real runs (FedAvg, MPSL
# and centralized, quick settings): the report's structure (one row per run, every plot
# with data marks, escaping of a hostile run name, no external resources, well-formed), run
# selection by id and filters, plots as valid SVG, query's read-only refusals, the example
# queries of docs/queries.md, and scaffolds of every kind that compile and load.
source "$MPSL_SOURCE/tests/core/lib.sh"
PY=/usr/bin/python3
HOSTILE='<b>"A&B"</b> '"'q'"
# A small experiment of its own (the shipped ones change): Fashion-MNIST slice, tiny model.
cat > exp.yaml <<'YAML'
name: quick
seed: 11
data:
  dataset: {plugin: fashion_mnist, train_limit: 3000, test_limit: 500}
  clients: 6
  partition: {scheme: dirichlet, alpha: 0.5}
model:
  tokenizers:
    image: {plugin: image_patch, patch: 7, dim: 64}
  encoder: {plugin: token_mlp, depth: 1, hidden: 128}
  head: {plugin: classifier, pool: mean}
strategy: {plugin: fedavg}
train: {epochs: 3, batch_size: 64, optimizer: {name: adam, lr: 0.003}}
output: {tags: [e2e]}
YAML

expect_ok "fedavg run" "$MPSL" run exp.yaml --db r.db --set "name=$HOSTILE"
expect_ok "mpsl run" "$MPSL" run exp.yaml --db r.db --set 'strategy={plugin: mpsl}'
expect_ok "centralized run" "$MPSL" run exp.yaml --db r.db --set 'strategy={plugin: centralized}'
check "three finished runs" [ "$(sql r.db "select count(*) from runs where status='finished'")" = 3 ]

# ---------------------------------------------------------------- report
expect_ok "report" "$MPSL" report 1 2 3 --db r.db -o report.html
check "report written" [ -s report.html ]
# Structure, read with an XML parser (the page is well-formed XML by design).
cat > check_report.py <<'PY'
import sys, xml.dom.minidom as md
path, want_runs, hostile = sys.argv[1], int(sys.argv[2]), sys.argv[3]
text = open(path, encoding="utf-8").read()
errors = []
def need(cond, what):
    if not cond:
        errors.append(what)
try:
    doc = md.parseString(text.encode("utf-8"))
except Exception as e:
    print("report is not well-formed:", e); sys.exit(1)
tables = [t for t in doc.getElementsByTagName("table") if t.getAttribute("class") == "runs"]
need(len(tables) == 1, "one runs table")
if tables:
    heads = tables[0].getElementsByTagName("th")
    rows = [r for r in tables[0].getElementsByTagName("tr") if r.getAttribute("class") == "run"]
    need(len(rows) == want_runs, f"{len(rows)} run rows, want {want_runs}")
    for r in rows:
        need(len(r.getElementsByTagName("td")) == len(heads), "a row has as many cells as headers")
    names = [r.getElementsByTagName("td")[1].firstChild.data for r in rows if r.getElementsByTagName("td")[1].firstChild]
    need(hostile in names, f"the hostile name reads back exactly ({names})")
svgs = doc.getElementsByTagName("svg")
need(len(svgs) >= 7, f"{len(svgs)} plots, want at least 7")
figs = {f.getAttribute("id"): f for f in doc.getElementsByTagName("figure")}
for fid in ["plot-test-metric", "plot-test-loss", "plot-train-loss", "plot-bytes",
            "plot-flops", "plot-client-spread"]:
    need(fid in figs, f"figure {fid}")
need(any(k.startswith("plot-client-data-") for k in figs), "a client data figure")
for fid, f in figs.items():
    s = f.getElementsByTagName("svg")
    need(len(s) == 1, f"{fid} holds one svg")
    if s:
        marks = [e for tag in ("path", "rect", "g") for e in s[0].getElementsByTagName(tag)
                 if e.getAttribute("class") == "series"]
        need(len(marks) > 0, f"{fid} has data marks (class=series)")
        need(s[0].getElementsByTagName("title"), f"{fid} has a title")
low = text.lower()
for bad in ("http://", "https://", "<script", " src=", "<link", "@import", "url("):
    need(bad not in low, f"no '{bad}' in the report")
raw = hostile.replace("&", "&amp;")
need(hostile not in text, "the hostile name never appears unescaped")
need("&lt;b&gt;&quot;A&amp;B&quot;&lt;/b&gt; &#39;q&#39;" in text, "the hostile name escaped")
need("(no data)" in text, "centralized is marked (no data) in the bytes plot")
for e in errors:
    print("FAIL:", e)
sys.exit(1 if errors else 0)
PY
check "report structure" $PY check_report.py report.html 3 "$HOSTILE"

# Run selection: filters as in `mpsl runs`, ids and filters together, refusals.
rows() { grep -c '<tr class="run"' "$1"; }
expect_ok "report --method" "$MPSL" report --db r.db --method mpsl -o m.html
check "--method mpsl: one run" [ "$(rows m.html)" = 1 ]
expect_ok "report --tag" "$MPSL" report --db r.db --tag e2e --status finished -o t.html
check "--tag e2e: three runs" [ "$(rows t.html)" = 3 ]
expect_ok "report ids and filter" "$MPSL" report 1 2 3 --db r.db --name 'quick*' -o n.html
check "ids 1 2 3 named quick*: two runs" [ "$(rows n.html)" = 2 ]
expect_ok "report of everything" "$MPSL" report --db r.db -o all.html --limit 2
check "--limit 2: two runs" [ "$(rows all.html)" = 2 ]
expect_ok "report to stdout" "$MPSL" report 3 --db r.db -o -
check "stdout report is HTML" grep -q '^<!DOCTYPE html>' "$WORK/out"
check "centralized alone: no data, but a page" grep -q 'no data' "$WORK/out"
expect_refusal "report of a missing run" "no run 99" -- "$MPSL" report 1 99 --db r.db -o x.html
check "no file left by a refused report" [ ! -e x.html ]
expect_refusal "report with no match" "no runs" "match these filters" -- \
  "$MPSL" report --db r.db --method nope -o x.html
expect_refusal "report without -o" "-o report.html" -- "$MPSL" report 1 --db r.db
expect_refusal "report into a missing folder" "cannot write nodir/x.html" -- \
  "$MPSL" report 1 --db r.db -o nodir/x.html
expect_refusal "report of a missing database" "no results database" -- \
  "$MPSL" report 1 --db missing.db -o x.html

# ---------------------------------------------------------------- plot
valid_svg() {
  $PY -c 'import sys, xml.dom.minidom as md
d = md.parse(sys.argv[1]); r = d.documentElement
assert r.tagName == "svg" and r.getAttribute("xmlns") == "http://www.w3.org/2000/svg", "root"
assert [p for p in d.getElementsByTagName("path") if p.getAttribute("class") == "series"], "lines"' "$1"
}
for m in test_acc train_loss epoch_seconds peak_rss_bytes bytes bytes_up; do
  expect_ok "plot $m" "$MPSL" plot "$m" 1 2 3 --db r.db -o "$m.svg"
  check "plot $m is a valid SVG with lines" valid_svg "$m.svg"
done
check "bytes plot marks centralized as no data" grep -q '(no data)' bytes.svg
expect_ok "plot to stdout" "$MPSL" plot test_loss 2 --db r.db -o -
check "stdout plot starts with the XML declaration" grep -q '^<?xml' "$WORK/out"
expect_refusal "plot of an unknown metric" "no per-epoch figure 'nope'" "test_acc" -- \
  "$MPSL" plot nope 1 --db r.db -o x.svg
expect_refusal "plot against bytes of a centralized run" "no communication recorded in run 3" \
  "nothing to draw against bytes" -- "$MPSL" plot test_acc 3 --db r.db --x bytes -o x.svg
expect_ok "plot against bytes, centralized among them" "$MPSL" plot test_acc 1 2 3 --db r.db --x bytes -o xb.svg
check "the centralized run is listed as no data" grep -q '(no data)' xb.svg
expect_refusal "plot without runs" "which metric, and which runs" -- "$MPSL" plot test_acc -o x.svg
expect_refusal "plot of a bad id" "'x' is not a run id" -- "$MPSL" plot test_acc x -o x.svg
expect_refusal "plot of a missing run" "no run 42" -- "$MPSL" plot test_acc 1 42 --db r.db -o x.svg

# ---------------------------------------------------------------- query
expect_ok "query" "$MPSL" query "SELECT id, method, final_test_acc FROM run_summary ORDER BY id" --db r.db
check "query lists the methods" grep -q centralized "$WORK/out"
expect_ok "query json" "$MPSL" query "SELECT id, final_test_acc, name FROM run_summary" --db r.db --format json
check "json parses, numbers stay numbers" $PY -c 'import json,sys
rows = json.load(open(sys.argv[1])); assert len(rows) == 3
assert isinstance(rows[0]["id"], int) and isinstance(rows[0]["final_test_acc"], float)
assert rows[0]["name"] == sys.argv[2]' "$WORK/out" "$HOSTILE"
expect_ok "query csv" "$MPSL" query "SELECT name FROM runs WHERE id = 1" --db r.db --format csv
check "csv quotes the hostile name" grep -qF '"<b>""A&B""</b> '"'q'"'"' "$WORK/out"
expect_ok "read-only pragma" "$MPSL" query "PRAGMA table_info(runs)" --db r.db
expect_ok "table-valued pragma" "$MPSL" query "SELECT name FROM pragma_table_info('runs')" --db r.db
before=$(sqlite3 r.db "select count(*) from run_tags")
for refusal in \
  "INSERT INTO run_tags VALUES (1, 'x')|refused: INSERT on run_tags" \
  "UPDATE runs SET name = 'x'|refused: UPDATE on runs" \
  "DELETE FROM runs|refused: DELETE on runs" \
  "DROP TABLE runs|refused: DROP" \
  "CREATE TEMP TABLE t (x)|refused: CREATE" \
  "ATTACH 'other.db' AS o|refused: ATTACH" \
  "PRAGMA user_version = 5|refused: PRAGMA user_version = 5" \
  "PRAGMA journal_mode = DELETE|refused: PRAGMA journal_mode = DELETE" \
  "PRAGMA writable_schema = 1|refused: PRAGMA writable_schema" \
  "SELECT 1; SELECT 2|refused: more than one statement" \
  "SELECT 1; DROP TABLE runs|refused: more than one statement" \
  "BEGIN|refused: a transaction" \
  "VACUUM|refused: the statement would write"; do
  expect_refusal "query: ${refusal%%|*}" "${refusal#*|}" "read-only statement" -- \
    "$MPSL" query "${refusal%%|*}" --db r.db
done
check "nothing changed" [ "$(sqlite3 r.db "select count(*) from run_tags")" = "$before" ]
check "runs table still there" [ "$(sql r.db "select count(*) from runs")" = 3 ]
check "other.db not created by ATTACH" [ ! -e other.db ]
expect_refusal "query syntax error" "syntax error" -- "$MPSL" query "SELEC 1" --db r.db
expect_refusal "query without SQL" "which SQL" -- "$MPSL" query --db r.db

# The example queries of docs/queries.md: each runs and returns rows.
$PY - "$MPSL_SOURCE/docs/queries.md" > examples.txt <<'PY'
import re, sys
blocks = re.findall(r"```sql\n(.*?)```", open(sys.argv[1]).read(), re.S)
print("\0".join(blocks), end="")
PY
n=0
while IFS= read -r -d '' q || [ -n "$q" ]; do
  n=$((n + 1))
  if "$MPSL" query "$q" --db r.db --format csv >"$WORK/q.out" 2>"$WORK/q.err"; then
    lines=$(wc -l <"$WORK/q.out")
    check "docs/queries.md example $n returns rows ($lines lines)" [ "$lines" -ge 2 ]
  else
    fail "docs/queries.md example $n: $(cat "$WORK/q.err")"; echo "$q" >&2
  fi
done < examples.txt
check "docs/queries.md has at least 8 examples ($n)" [ "$n" -ge 8 ]

# ---------------------------------------------------------------- new-plugin
mkdir -p scaffold
for kind in dataset tokenizer encoder head aggregation; do
  expect_ok "new-plugin $kind" "$MPSL" new-plugin "$kind" "my_$kind" --dir scaffold
  check "new-plugin $kind prints the build line" grep -q "pkg-config --cflags mpsl-plugin" "$WORK/out"
  check "my_$kind.c names itself" grep -q "\"my_$kind\"" "scaffold/my_$kind.c"
  check "no template name left in my_$kind.c" not grep -q "template_$kind" <(sed 1,8d "scaffold/my_$kind.c")
  expect_ok "my_$kind.c compiles" cc -std=c11 -Wall -Wextra -Werror -shared -fPIC \
    -I"$MPSL_SOURCE/core/include" "scaffold/my_$kind.c" -o "scaffold/my_$kind.so" -lm
done
expect_ok "scaffolds load" "$MPSL" plugins --params scaffold
check "five scaffolds listed" [ "$(grep -c '^my_' "$WORK/out")" = 5 ]
expect_refusal "new-plugin over a file" "exists" "--force" -- \
  "$MPSL" new-plugin head my_head --dir scaffold
expect_refusal "new-plugin of an unknown kind" "unknown kind 'widget'" -- "$MPSL" new-plugin widget w
expect_refusal "new-plugin with a bad name" "must start with a-z" -- "$MPSL" new-plugin head My-Head
MPSL_TEMPLATE_PATH=/nonexistent expect_ok "template path falls back" \
  "$MPSL" new-plugin head other_head --dir scaffold

finish
