#!/usr/bin/env bash
# test_install.sh: `meson install` puts the command, library, plugins, header and
# mpsl-plugin.pc in place; a plugin built OUT OF TREE from a template with pkg-config loads
# in the installed mpsl and runs in an experiment.
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

echo "install test: $failures failure(s)" >&2
[ $failures -eq 0 ]
