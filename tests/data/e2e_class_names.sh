#!/usr/bin/env bash
# e2e_class_names.sh: a dataset's class names (mpsl_dataset_info.class_names, ABI 2.1) through
# the real `mpsl run`: good names and no names run; each kind of broken name is refused with a
# message that names the plugin, the class index and what was expected; a dataset plugin
# built against ABI 2.0 (which cannot set the field) still loads and runs.
source "${MPSL_SOURCE:?}/tests/core/lib.sh"

cat > named.yaml <<'YAML'
name: named_classes
seed: 1
data:
  dataset: {plugin: named_classes, n_train: 200, n_test: 40}
  clients: 2
  partition: {scheme: iid}
model:
  tokenizers:
    image: {plugin: image_patch, patch: 2, dim: 8}
  encoder: {plugin: token_mlp, depth: 1, hidden: 16}
  head: {plugin: classifier, pool: mean}
strategy: {plugin: centralized}
train:
  epochs: 1
  batch_size: 20
  optimizer: {name: adam, lr: 0.01}
YAML

expect_ok "good class names" "$MPSL" run named.yaml --db n.db --set data.dataset.names=good
expect_ok "no class names (NULL)" "$MPSL" run named.yaml --db n.db --set data.dataset.names=none

expected="expected 4 names (one per class), each a non-empty string of at most 64 bytes"
expect_refusal "a NULL class name" "dataset plugin 'named_classes'" "class_names[2] is NULL" \
  "$expected" -- "$MPSL" run named.yaml --db n.db --set data.dataset.names=null_entry
expect_refusal "an empty class name" "dataset plugin 'named_classes'" "class_names[2] is empty" \
  "$expected" -- "$MPSL" run named.yaml --db n.db --set data.dataset.names=empty
expect_refusal "a 65-byte class name" "dataset plugin 'named_classes'" \
  "class_names[2] is longer than 64 bytes" "$expected" \
  -- "$MPSL" run named.yaml --db n.db --set data.dataset.names=too_long
expect_refusal "a tab in a class name" "dataset plugin 'named_classes'" \
  "class_names[2] holds control character 0x09 at byte 3" "$expected" \
  -- "$MPSL" run named.yaml --db n.db --set data.dataset.names=control
expect_refusal "class names on a retrieval dataset" \
  "dataset plugin 'named_classes' is a retrieval dataset but reports class_names" \
  "expected NULL" -- "$MPSL" run named.yaml --db n.db --set data.dataset.names=retrieval
check "refused runs leave no row" [ "$(sql n.db "select count(*) from runs")" = 2 ]

# Built against ABI 2.0: listed as such, accepted by this newer minor, and it runs.
"$MPSL" plugins --kind dataset "$MPSL_TEST_PLUGIN_DIR" >plugins.txt 2>/dev/null
check "named_classes_abi20 is listed with ABI 2.0" \
  grep -Eq '^named_classes_abi20 +dataset +1\.0\.0 +2\.0 ' plugins.txt
check "named_classes is listed with this mpsl's ABI 2.2" \
  grep -Eq '^named_classes +dataset +1\.0\.0 +2\.2 ' plugins.txt
expect_ok "a dataset plugin built against ABI 2.0" "$MPSL" run named.yaml --db n.db \
  --set data.dataset.plugin=named_classes_abi20

finish
