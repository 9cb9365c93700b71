#!/usr/bin/env bash
# tutorial.sh: docs/tutorial.md works as written. Its code blocks that name a file
# (<!-- file: PATH -->) match those files exactly; from a fresh `meson install --destdir`
# its shell blocks (<!-- test: sh -->) run in order in an empty folder, the only changes
# being the environment that points into the staging folder (PATH, PKG_CONFIG_PATH,
# PKG_CONFIG_SYSROOT_DIR, LD_LIBRARY_PATH, MPSL_PLUGIN_PATH for the shipped plugins); after
# the `mpsl new-plugin` block the scaffolds must build with the line new-plugin printed,
# and are then replaced by the tutorial's files (the reader's edits). Both experiments (one
# modality, then two) must finish well above chance.
set -u
BUILD=$1 SOURCE=$2
failures=0
fail() { failures=$((failures + 1)); echo "FAIL: $*" >&2; }
STAGE=$(mktemp -d /tmp/mpsl-tutorial.XXXXXX)
trap 'rm -rf "$STAGE"' EXIT
PY=/usr/bin/python3
DOC="$SOURCE/docs/tutorial.md"

# 1. The included code is the code.
"$PY" - "$DOC" "$SOURCE" <<'PY' || fail "tutorial.md and docs/tutorial/ differ"
import os, re, sys
doc, src = open(sys.argv[1]).read(), sys.argv[2]
blocks = re.findall(r"<!-- file: (\S+) -->\n```[a-z]*\n(.*?)```\n", doc, re.S)
bad = 0
for path, text in blocks:
    if open(os.path.join(src, path)).read() != text:
        print(f"{path}: the block in tutorial.md differs from the file", file=sys.stderr)
        bad += 1
named = {p for p, _ in blocks}
for f in os.listdir(os.path.join(src, "docs/tutorial")):
    if f"docs/tutorial/{f}" not in named:
        print(f"docs/tutorial/{f} is not shown in tutorial.md", file=sys.stderr)
        bad += 1
if len(blocks) < 4:
    print(f"only {len(blocks)} file blocks", file=sys.stderr); bad += 1
sys.exit(1 if bad else 0)
PY

# 2. A staged install, as a reader would have under /usr/local.
meson install -C "$BUILD" --destdir "$STAGE/root" --no-rebuild >"$STAGE/install.log" 2>&1 \
  || { fail "meson install"; cat "$STAGE/install.log" >&2; exit 1; }
prefix=$(meson introspect "$BUILD" --buildoptions | "$PY" -c \
  'import json,sys; print(next(o["value"] for o in json.load(sys.stdin) if o["name"]=="prefix"))')
root="$STAGE/root$prefix"
pc=$(find "$root" -name mpsl-plugin.pc | head -1)
libdir=$(dirname "$(find "$root" -name 'libmpsl.so*' | head -1)")
[ -x "$root/bin/mpsl" ] || { fail "no staged mpsl"; exit 1; }
[ -f "$root/share/mpsl/templates/template_dataset.c" ] || fail "templates not installed"
export PATH="$root/bin:$PATH"
export PKG_CONFIG_PATH=$(dirname "$pc") PKG_CONFIG_SYSROOT_DIR="$STAGE/root"
export LD_LIBRARY_PATH="$libdir" MPSL_PLUGIN_PATH="$libdir/mpsl/plugins"
unset MPSL_TEMPLATE_PATH MPSL_CONFIG_PATH

# 3. The tutorial's shell blocks, in order, in an empty folder.
work="$STAGE/my_plugins"
mkdir -p "$work"
"$PY" - "$DOC" "$STAGE/blocks" <<'PY'
import re, sys
blocks = re.findall(r"<!-- test: sh -->\n```sh\n(.*?)```\n", open(sys.argv[1]).read(), re.S)
for i, b in enumerate(blocks):
    open(f"{sys.argv[2]}.{i:02d}.sh", "w").write(b)
print(len(blocks), file=sys.stderr)
PY
nblocks=$(ls "$STAGE"/blocks.*.sh 2>/dev/null | wc -l)
[ "$nblocks" -ge 4 ] || fail "only $nblocks shell blocks marked <!-- test: sh -->"
for b in "$STAGE"/blocks.*.sh; do
  echo "--- $(head -1 "$b")" >&2
  if ! (cd "$work" && bash -e "$b") >"$b.out" 2>&1; then
    fail "tutorial block failed: $(cat "$b")"; sed 's/^/    /' "$b.out" >&2
  fi
  if grep -q "new-plugin" "$b"; then
    for p in my_dataset my_tokenizer; do
      [ -f "$work/$p.c" ] || fail "new-plugin wrote no $p.c"
      grep -q "$STAGE/root" "$b.out" || fail "new-plugin did not take the installed templates"
      line=$(grep "^  cc .* $p.c -o $p.so" "$b.out" | sed 's/^ *//' | head -1)
      (cd "$work" && eval "$line") >"$STAGE/scaffold.log" 2>&1 \
        || { fail "scaffold $p does not build with: $line"; cat "$STAGE/scaffold.log" >&2; }
    done
    # The reader now edits the files: here, the tutorial's own.
    cp "$SOURCE"/docs/tutorial/* "$work"/
    rm -f "$work"/*.so
  fi
done

# 4. What it must have produced.
grep -q "^my_dataset *dataset" "$STAGE"/blocks.*.out || fail "my_dataset not listed by mpsl plugins"
grep -q "^my_tokenizer *tokenizer" "$STAGE"/blocks.*.out || fail "my_tokenizer not listed"
grep -q "^my_pairs *dataset" "$STAGE"/blocks.*.out || fail "my_pairs not listed"
db="$work/results.db"
[ -f "$db" ] || { fail "no results.db"; echo "tutorial test: $failures failure(s)" >&2; exit 1; }
[ "$(sqlite3 "$db" "select group_concat(name, ' ') from (select name from run_plugins
                     where slot='dataset' order by run_id)")" = "my_dataset my_pairs" ] \
  || fail "the runs did not record my_dataset, then my_pairs"
[ "$(sqlite3 "$db" "select count(*) from run_plugins where run_id = 2 and slot like 'tokenizer%'")" = 2 ] \
  || fail "the two-modality run did not record two tokenizers"
for run in 1 2; do
  status=$(sqlite3 "$db" "select status from runs where id = $run")
  acc=$(sqlite3 "$db" "select final_test_acc from run_summary where id = $run")
  classes=$(sqlite3 "$db" "select count(*) from json_each((select class_histogram from client_data where run_id = $run limit 1))")
  echo "tutorial run $run: $status, test accuracy $acc with $classes classes (chance $(awk -v c="$classes" 'BEGIN{print 1/c}'))" >&2
  [ "$status" = finished ] || fail "the tutorial's run $run did not finish ($status)"
  awk -v a="$acc" -v c="$classes" 'BEGIN { exit !(c > 0 && a > 2.0 / c) }' \
    || fail "run $run: test accuracy $acc is not well above chance (1/$classes)"
done
[ -s "$work/report.html" ] || fail "the tutorial's report was not written"

echo "tutorial test: $failures failure(s)" >&2
[ $failures -eq 0 ]
