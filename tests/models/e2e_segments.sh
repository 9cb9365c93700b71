#!/usr/bin/env bash
# e2e_segments.sh: the classifier's `segments` matters in early fusion with CLS pooling (the
# paper's): pooling segment 0 (the image's CLS output) or segment 1 (the audio's) trains two
# different models. Both tokenizers are configured alike, so only the modality prefix in their
# parameters' seeds (image.cls_token, audio.cls_token) tells them apart. When the seed ignored
# the prefix, the two CLS tokens (and positions, and projections) started identical, the two
# runs were mirror images of each other, and their figures agreed to rounding (measured:
# 1e-9 relative); now they differ by about 1e-2.
# Needs: MPSL, MPSL_SOURCE, MPSL_PLUGIN_DIR, MPSL_TEST_PLUGIN_DIR (two_modalities), sqlite3.
source "$(dirname "$0")/../core/lib.sh"

cat > segments.yaml <<'YAML'
name: segments
seed: 3
data:
  dataset: {plugin: two_modalities, n_train: 400, n_test: 100}
  clients: 2
  partition: {scheme: iid}
model:
  tokenizers:
    image: {plugin: image_patch, patch: 4, dim: 16}
    audio: {plugin: image_patch, patch: 4, dim: 16}
  encoder: {plugin: vit, depth: 1, heads: 2, pre_norm: true, final_norm: false}
  head: {plugin: classifier, pool: cls, norm: true, segments: 0}
  fusion: early
strategy: {plugin: mpsl}
train:
  epochs: 1
  batch_size: 20
  optimizer: {name: adam, lr: 0.003}
YAML

expect_ok "early fusion, CLS of segment 0" "$MPSL" run segments.yaml --db seg.db
expect_ok "early fusion, CLS of segment 1" "$MPSL" run segments.yaml --db seg.db --set model.head.segments=1
figures() { sql seg.db "select group_concat(value, ' ') from (select value from epoch_metrics where run_id=$1 and name in ('train_loss', 'test_loss') order by name)"; }
differ() { [ -n "$1" ] && not same_numbers "$1" "$2" 1e-4; }
a=$(figures 1) b=$(figures 2)
check "segments 0 and 1 train different models (test_loss train_loss: $a | $b)" differ "$a" "$b"
finish
