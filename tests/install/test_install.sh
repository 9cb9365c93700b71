#!/usr/bin/env bash
# test_install.sh: `meson install` puts the command, library, plugins, header and
# mpsl-plugin.pc in place; a plugin built OUT OF TREE from a template with pkg-config loads
# in the installed mpsl and runs in an experiment. The man page renders without warnings and
# describes every verb and option the command has; the bash completion and the
# documentation are installed.
set -u
BUILD=$1 SOURCE=$2
failures=0
fail() { failures=$((failures + 1)); echo "FAIL: $*" >&2; }
STAGE=$(mktemp -d /tmp/mpsl-install.XXXXXX)
trap 'rm -rf "$STAGE"' EXIT

meson install -C "$BUILD" --destdir "$STAGE" --no-rebuild >"$STAGE/install.log" 2>&1 \
  || { fail "meson install"; cat "$STAGE/install.log" >&2; exit 1; }
prefix=$(meson introspect "$BUILD" --buildoptions | /usr/bin/python3 -c \
  'import json,sys; print(next(o["value"] for o in json.load(sys.stdin) if o["name"]=="prefix"))')
root="$STAGE$prefix"
pc=$(find "$root" -name mpsl-plugin.pc | head -1)
bin="$root/bin/mpsl"
libdir=$(dirname "$(find "$root" -name 'libmpsl.so*' | head -1)")
[ -x "$bin" ] || fail "no installed mpsl command"
[ -n "$pc" ] || fail "no installed mpsl-plugin.pc"
[ -f "$root/include/mpsl/plugin.h" ] || fail "no installed mpsl/plugin.h"
plugdir="$libdir/mpsl/plugins"
for p in dataset/fashion_mnist aggregation/fedavg aggregation/centralized tokenizer/image_patch \
         encoder/token_mlp head/classifier; do
  [ -f "$plugdir/$p.so" ] || fail "plugin $p not installed under $plugdir"
done
[ -f "$root/share/mpsl/experiments/quickstart.yaml" ] || fail "experiments not installed"

# Out of tree: copy the tokenizer template, rename it, build it with pkg-config only.
work="$STAGE/myplugin"
mkdir -p "$work"
sed 's/"template_tokenizer"/"my_tokenizer"/' "$SOURCE/plugins/templates/template_tokenizer.c" > "$work/my_tokenizer.c"
# The staged tree stands in for /: PKG_CONFIG_SYSROOT_DIR points the -I flags into it.
cflags=$(PKG_CONFIG_PATH=$(dirname "$pc") PKG_CONFIG_SYSROOT_DIR="$STAGE" pkg-config --cflags mpsl-plugin) \
  || fail "pkg-config --cflags mpsl-plugin"
cc -std=c11 -Wall -Wextra -Werror -shared -fPIC $cflags "$work/my_tokenizer.c" -o "$work/my_tokenizer.so" \
  || fail "out-of-tree build of the tokenizer template"

export LD_LIBRARY_PATH="$libdir"
export MPSL_PLUGIN_PATH="$plugdir:$work"
"$bin" plugins >"$STAGE/plugins.txt" 2>&1 || fail "installed mpsl plugins"
grep -q "^my_tokenizer *tokenizer" "$STAGE/plugins.txt" || { fail "my_tokenizer not listed"; cat "$STAGE/plugins.txt" >&2; }
grep -q "^fedavg *aggregation" "$STAGE/plugins.txt" || fail "installed fedavg not listed"

# Name it in an experiment and run it with the installed command and configs.
cat > "$work/exp.yaml" <<YAML
name: out_of_tree
seed: 1
data:
  dataset: {plugin: fashion_mnist, train_limit: 1000, test_limit: 200}
  clients: 2
model:
  tokenizers:
    image: {plugin: my_tokenizer}
  encoder: {plugin: token_mlp}
  head: {plugin: classifier, pool: mean}
strategy: {plugin: centralized}
train: {epochs: 1, batch_size: 50}
YAML
( cd "$work" && "$bin" run exp.yaml --db r.db ) >"$STAGE/run.log" 2>&1 \
  || { fail "experiment with the out-of-tree plugin"; cat "$STAGE/run.log" >&2; }
grep -q "finished" "$STAGE/run.log" || fail "run did not finish"

# The man page: groff finds nothing to warn about, man renders it, and it has an entry for
# every verb `mpsl --help` lists and names every option of each verb's usage.
man1="$root/share/man/man1/mpsl.1"
if [ ! -f "$man1" ]; then
  fail "no installed man page (share/man/man1/mpsl.1)"
elif ! command -v groff >/dev/null || ! command -v man >/dev/null; then
  fail "groff and man are needed to check the man page (apt-get install groff-base man-db)"
else
  groff -man -Tutf8 -ww -z "$man1" 2>"$STAGE/groff.err" || fail "groff failed on $man1"
  [ -s "$STAGE/groff.err" ] && { fail "groff warns about $man1:"; cat "$STAGE/groff.err" >&2; }
  # ASCII and wide, so that what is checked below is not hyphenated, wrapped or typeset.
  MANPAGER=cat MANWIDTH=250 LC_ALL=C man --warnings -l "$man1" >"$STAGE/man.txt" 2>"$STAGE/man.err" \
    || fail "man -l $man1"
  [ -s "$STAGE/man.err" ] && { fail "man -l warns:"; cat "$STAGE/man.err" >&2; }
  grep -q "^NAME" "$STAGE/man.txt" || fail "the rendered man page has no NAME section"
  for section in SYNOPSIS DESCRIPTION VERBS ENVIRONMENT "EXIT STATUS" FILES EXAMPLES "SEE ALSO"; do
    grep -q "^$section\$" "$STAGE/man.txt" || fail "the man page has no $section section"
  done
  verbs=$("$bin" --help | awk '/^verbs:/ { v = 1; next } v && /^$/ { exit } v { print $1 }')
  [ "$(echo "$verbs" | wc -w)" -ge 10 ] || fail "mpsl --help lists too few verbs: $verbs"
  for v in $verbs; do
    grep -qE "^   mpsl $v( |\$)" "$STAGE/man.txt" || fail "the man page has no entry for 'mpsl $v'"
    [ "$v" = help ] || [ "$v" = version ] && continue
    for o in $("$bin" "$v" --help | grep -oE '(^|[][ ,(|])--[a-z][a-z-]*' | sed 's/^[][ ,(|]//' | sort -u); do
      grep -qe "$o" "$STAGE/man.txt" || fail "the man page does not mention 'mpsl $v $o'"
    done
  done
  for var in MPSL_DB MPSL_PLUGIN_PATH MPSL_CONFIG_PATH MPSL_LOG; do
    grep -q "^       $var" "$STAGE/man.txt" || fail "the man page's ENVIRONMENT lacks $var"
  done
fi

# Bash completion, where bash-completion looks for it, and loadable by a plain bash.
comp="$root/share/bash-completion/completions/mpsl"
if [ ! -f "$comp" ]; then
  fail "no installed bash completion (share/bash-completion/completions/mpsl)"
else
  cmp -s "$comp" "$SOURCE/scripts/completion/mpsl.bash" || fail "installed completion differs from the source"
  bash --norc --noprofile -c "source '$comp' && complete -p mpsl" >"$STAGE/comp.txt" 2>&1 \
    && grep -q -- "-F _mpsl mpsl" "$STAGE/comp.txt" || { fail "the installed completion does not load"; cat "$STAGE/comp.txt" >&2; }
fi

# The documentation: README.md and everything in docs/ (the tutorial too), not the man page.
docdir="$root/share/doc/mpsl"
[ -f "$docdir/README.md" ] || fail "README.md not installed in share/doc/mpsl"
for f in "$SOURCE"/docs/*.md "$SOURCE"/docs/tutorial/*; do
  rel=${f#"$SOURCE/docs/"}
  cmp -s "$f" "$docdir/$rel" || fail "docs/$rel not installed as share/doc/mpsl/$rel"
done
[ -e "$docdir/mpsl.1" ] && fail "the man page is installed as documentation too"

echo "install test: $failures failure(s)" >&2
[ $failures -eq 0 ]
