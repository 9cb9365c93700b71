#!/usr/bin/env bash
# e2e_config_errors.sh: every kind of bad experiment is refused by `mpsl run` with
# file:line:column and what was expected, a non-zero exit, and no change to the database.
source "$(dirname "$0")/lib.sh"
export MPSL_CONFIG_PATH="$MPSL_SOURCE/configs"

# A valid base experiment; each case edits one thing.
cat > base.yaml <<'YAML'
name: e2e
seed: 7
include: [datasets/fashion_mnist.yaml, models/patch_mlp_tiny.yaml]
data:
  dataset: {plugin: fashion_mnist, train_limit: 2000, test_limit: 500}
  clients: 4
  partition: {scheme: iid}
strategy: {plugin: fedavg}
train:
  epochs: 1
  batch_size: 32
  optimizer: {name: adam, lr: 0.001}
YAML
expect_ok "the base experiment runs" "$MPSL" run base.yaml --db keep.db
before=$(sha256sum keep.db | cut -d' ' -f1)

# case NAME SED-EXPRESSION NEEDLE...: apply the edit to a copy of base.yaml, expect refusal.
case_sed() {
  local name=$1 expr=$2; shift 2
  sed "$expr" base.yaml > "$name.yaml"
  expect_refusal "$name" "$@" -- "$MPSL" run "$name.yaml" --db keep.db
}

case_sed unknown_key 's/^  epochs: 1/  epohcs: 1/' "unknown_key.yaml:10:3" "epohcs" "did you mean 'epochs'"
case_sed wrong_type 's/^  epochs: 1/  epochs: many/' "wrong_type.yaml:10:11" "epochs"
case_sed out_of_range 's/^  clients: 4/  clients: 0/' "out_of_range.yaml:6:12" "clients"
case_sed not_finite 's/lr: 0.001/lr: .nan/' "not_finite.yaml:12:31" "finite"
case_sed missing_required 's/^  epochs: 1//' "missing_required.yaml" "epochs"
case_sed duplicate 's/^  batch_size: 32/  batch_size: 32\n  batch_size: 16/' "duplicate.yaml:12:3" "batch_size"
case_sed contradiction 's/{scheme: iid}/{scheme: iid, alpha: 0.5}/' "contradiction.yaml:7" "alpha" "only applies to scheme 'dirichlet'"
case_sed plugin_unknown_key 's/{plugin: fedavg}/{plugin: fedavg, local_epoch: 2}/' "plugin_unknown_key.yaml:8" "local_epoch" "did you mean 'local_epochs'"
case_sed plugin_range 's/{plugin: fedavg}/{plugin: fedavg, fraction: 2}/' "plugin_range.yaml:8" "fraction"
case_sed unknown_plugin 's/{plugin: fedavg}/{plugin: fedavgg}/' "unknown_plugin.yaml:8" "no aggregation plugin named 'fedavgg'"
case_sed wrong_kind "s|{plugin: fedavg}|{plugin: $MPSL_PLUGIN_DIR/head/classifier.so}|" "wrong_kind.yaml:8" "is of kind 'head'" "needs kind 'aggregation'"
case_sed bad_dataset_dir 's|{plugin: fashion_mnist, |{plugin: fashion_mnist, dir: /nonexistent, |' "/nonexistent" "data.dataset"
case_sed empty_client 's/clients: 4/clients: 4000/' "partition" "client"
{ cat base.yaml; printf 'model:\n  tokenizers:\n    audio: {plugin: image_patch}\n'; } > no_modality.yaml
expect_refusal "no such modality" "no_modality.yaml:" "model.tokenizers.audio" "no modality 'audio'" -- "$MPSL" run no_modality.yaml --db keep.db

# A plugin slot left out is reported at the mapping that should hold it, not at "?".
{ sed 's|, models/patch_mlp_tiny.yaml||' base.yaml
  printf 'model:\n  tokenizers:\n    image: {plugin: image_patch, patch: 7, dim: 64}\n'
  printf '  encoder: {plugin: token_mlp}\n'; } > no_head.yaml
expect_refusal "missing head" "no_head.yaml:14:3: 'model.head'" "head plugin" -- "$MPSL" run no_head.yaml --db keep.db
sed '/encoder:/d' no_head.yaml > no_encoder.yaml
expect_refusal "missing encoder" "no_encoder.yaml:14:3: 'model.encoder'" -- "$MPSL" run no_encoder.yaml --db keep.db
sed -e 's|include: .*|include: [models/patch_mlp_tiny.yaml]|' -e '/dataset:/d' base.yaml > no_dataset.yaml
expect_refusal "missing dataset" "no_dataset.yaml:5:3: 'data.dataset'" -- "$MPSL" run no_dataset.yaml --db keep.db
# A model the plugins themselves refuse: 5 does not divide 28.
expect_refusal "patch size" "patch" "28" -- "$MPSL" run base.yaml --db keep.db --set model.tokenizers.image.patch=5
# Bad overrides.
expect_refusal "override type" "--set train.epochs" -- "$MPSL" run base.yaml --db keep.db --set train.epochs=abc
expect_refusal "override syntax" "=" -- "$MPSL" run base.yaml --db keep.db --set train.epochs
# A missing include.
sed 's|models/patch_mlp_tiny.yaml|models/nope.yaml|' base.yaml > missing_include.yaml
expect_refusal "missing include" "missing_include.yaml:3" "nope.yaml" -- "$MPSL" run missing_include.yaml --db keep.db

# Hostile YAML: refused quickly, never a hang or a stack overflow.
{
  echo 'a: &a ["x","x","x","x","x","x","x","x","x"]'
  prev=a
  for n in b c d e f g h i; do echo "$n: &$n [*$prev,*$prev,*$prev,*$prev,*$prev,*$prev,*$prev,*$prev,*$prev]"; prev=$n; done
} > bomb.yaml
start=$(date +%s%N)
expect_refusal "alias bomb" "bomb.yaml" -- timeout 10 "$MPSL" run bomb.yaml --db keep.db
ms=$(( ($(date +%s%N) - start) / 1000000 ))
check "alias bomb refused in ${ms} ms (< 2000)" [ "$ms" -lt 2000 ]
printf 'a: %s\n' "$(head -c 100000 /dev/zero | tr '\0' '[')" > deep.yaml
expect_refusal "deep nesting" "deep.yaml" -- timeout 10 "$MPSL" run deep.yaml --db keep.db
printf 'a: &x\n  b: *x\n' > selfref.yaml
expect_refusal "self-referencing anchor" "selfref.yaml:2" -- timeout 10 "$MPSL" run selfref.yaml --db keep.db
expect_refusal "missing experiment file" "nothere.yaml" -- "$MPSL" run nothere.yaml --db keep.db

# output.save_weights naming a folder is refused before training, not after the last epoch.
mkdir -p weights_dir
expect_refusal "save_weights is a directory" "output.save_weights: 'weights_dir' is a directory" -- "$MPSL" run base.yaml --db keep.db --set output.save_weights=weights_dir
expect_refusal "save_weights ends in /" "output.save_weights: 'weights_dir/' names a folder" -- "$MPSL" run base.yaml --db keep.db --set output.save_weights=weights_dir/

# Nothing above touched the database.
check "database unchanged by refusals" [ "$(sha256sum keep.db | cut -d' ' -f1)" = "$before" ]
check "only the base run recorded" [ "$(sql keep.db 'select count(*) from runs')" = 1 ]
finish
