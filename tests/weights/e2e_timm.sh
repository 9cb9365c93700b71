#!/bin/bash
# e2e_timm.sh: a model `mpsl run` saved (output.save_weights) drops into timm's
# VisionTransformer. Each case trains a tiny model for one epoch on the synthetic dataset
# (seconds), saves it, and then:
#   1. weights_logits (the C harness) builds the same experiment with the saved file as
#      model.weights (a strict load through mpsl's loader) and writes mpsl's logits for the
#      test samples, with the inputs it fed;
#   2. timm_vit_check.py loads the file into its mirror of timm's VisionTransformer with
#      load_state_dict(strict=True) and checks that PyTorch's logits for the same inputs are
#      mpsl's (1e-4 of their scale) and that their mean cross-entropy is the run's test_loss
#      (1e-4 relative: the saved file is the model the run evaluated).
# Cases: timm's default ViT (CLS pooling, final norm) on 3-channel 32x24 images with 8x8
# patches (a 4x3 grid: a wrong channel, row or column order changes the logits); timm's
# global_pool='avg' with fc_norm, pre_norm and no qkv bias at LayerNorm eps 1e-5; and early
# fusion of an image and an overlapping-patch audio tokenizer (modality-prefixed names).
# Needs: MPSL, MPSL_SOURCE, MPSL_PLUGIN_DIR, MPSL_TEST_PLUGIN_DIR (two_modalities),
# WEIGHTS_LOGITS (the harness), sqlite3, and /usr/bin/python3 with torch (run through
# tests/torch/run_python_test.sh, which reports SKIP without them).
source "$(dirname "$0")/../core/lib.sh"
PY=${MPSL_TEST_PYTHON:-/usr/bin/python3}
CHECK_PY="$MPSL_SOURCE/tests/weights/timm_vit_check.py"
N_TEST=64

# case NAME MODE DATASET TOKENIZERS ENCODER HEAD -- CHECK_ARGS...: train, save, compare.
case_run() {
  local name=$1 mode=$2 dataset=$3 tokenizers=$4 encoder=$5 head=$6
  shift 7
  cat > "$name.yaml" <<YAML
name: $name
seed: 11
data:
  dataset: $dataset
  clients: 1
  partition: {scheme: iid}
model:
  tokenizers: $tokenizers
  encoder: $encoder
  head: $head
  fusion: early
strategy: {plugin: centralized}
train:
  epochs: 1
  batch_size: 32
  optimizer: {name: adam, lr: 0.003}
output:
  save_weights: $WORK/$name.safetensors
YAML
  expect_ok "$name: mpsl run saves the weights" "$MPSL" run "$name.yaml" --db "$name.db"
  [ -s "$WORK/$name.safetensors" ] || { fail "$name: no weights file"; return; }
  local loss
  loss=$(sql "$name.db" "select value from epoch_metrics where run_id=1 and name='test_loss'")
  [ -n "$loss" ] || { fail "$name: no test_loss in the database"; return; }
  expect_ok "$name: mpsl's logits from the saved file" "$WEIGHTS_LOGITS" "$name.yaml" \
    "$WORK/$name.safetensors" "$N_TEST" "$WORK/$name.logits.safetensors"
  if "$PY" "$CHECK_PY" "$mode" "$WORK/$name.safetensors" "$WORK/$name.logits.safetensors" \
       --expect-loss "$loss" "$@" >"$WORK/py.out" 2>&1; then
    ok
    sed 's/^/    /' "$WORK/py.out" | grep -v '^     ' >&2
  else
    fail "$name: timm_vit_check.py $mode"
    sed 's/^/    /' "$WORK/py.out" >&2
  fi
}

SYN="{plugin: synthetic, channels: 3, height: 32, width: 24, classes: 5, n_train: 256, n_test: $N_TEST}"

case_run vit_token single "$SYN" \
  "{image: {plugin: image_patch, patch: 8, dim: 48}}" \
  "{plugin: vit, depth: 2, heads: 4}" \
  "{plugin: classifier, pool: cls}" -- \
  --tok image:3:32:24:8:8 --dim 48 --depth 2 --heads 4 --classes 5 --pool token

case_run vit_avg single "$SYN" \
  "{image: {plugin: image_patch, patch: 8, dim: 32}}" \
  "{plugin: vit, depth: 1, heads: 2, mlp_ratio: 2, qkv_bias: false, pre_norm: true, final_norm: false, eps: 1e-5}" \
  "{plugin: classifier, pool: mean, norm: true, eps: 1e-5}" -- \
  --tok image:3:32:24:8:8 --dim 32 --depth 1 --heads 2 --classes 5 --pool avg --mlp-ratio 2 \
  --no-qkv-bias --pre-norm --fc-norm --eps 1e-5

case_run fusion fusion "{plugin: two_modalities, n_train: 256, n_test: $N_TEST}" \
  "{image: {plugin: image_patch, patch: 4, dim: 32}, audio: {plugin: audio_patch, patch: 4, stride_f: 2, stride_t: 2, dim: 32}}" \
  "{plugin: vit, depth: 2, heads: 4, pre_norm: true, final_norm: false}" \
  "{plugin: classifier, pool: cls, norm: true}" -- \
  --tok image:1:8:8:4:4 --tok audio:1:8:8:4:2 --dim 32 --depth 2 --heads 4 --classes 4 \
  --pool token --pre-norm --fc-norm

finish
