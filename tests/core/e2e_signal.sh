#!/usr/bin/env bash
# e2e_signal.sh: a run stopped with SIGINT or SIGTERM is marked interrupted (never left
# running), exits non-zero, and keeps the epochs it had recorded.
source "$(dirname "$0")/lib.sh"
EXP="$MPSL_SOURCE/experiments"

for sig in INT TERM; do
  db="sig_$sig.db"
  "$MPSL" run "$EXP/fmnist_centralized.yaml" --db "$db" --set data.dataset.train_limit=3000 \
    --set data.dataset.test_limit=500 --set train.epochs=100000 2>"$sig.log" &
  pid=$!
  # Wait until at least one epoch is recorded (at most 60 s).
  for _ in $(seq 1 600); do
    n=$(sql "$db" "select count(*) from epoch_metrics where name='test_acc'" 2>/dev/null || echo 0)
    [ "${n:-0}" -ge 1 ] && break
    sleep 0.1
  done
  check "SIG$sig: run is running before the signal" [ "$(sql "$db" "select status from runs where id=1")" = running ]
  kill -s "$sig" $pid
  wait $pid; rc=$?
  check "SIG$sig: exit status is non-zero (got $rc)" [ $rc -ne 0 ]
  check "SIG$sig: marked interrupted" [ "$(sql "$db" "select status from runs where id=1")" = interrupted ]
  check "SIG$sig: recorded epochs kept" [ "$(sql "$db" "select count(*) from epoch_metrics where name='test_acc'")" -ge 1 ]
  check "SIG$sig: end time set" [ -n "$(sql "$db" "select ended_at from runs where id=1")" ]
  check "SIG$sig: message says interrupted" grep -q "interrupted" "$sig.log"
done
# SIGINT while the final weights are saved (after the last epoch): the run finished, and is
# recorded so, with its weights written.
cat > save.yaml <<YAML
name: save
seed: 3
data:
  dataset: {plugin: two_modalities, n_train: 300, n_test: 100}
  clients: 2
  partition: {scheme: iid}
model:
  tokenizers:
    image: {plugin: image_patch, patch: 4, dim: 16}
  encoder: {plugin: token_mlp, depth: 1, hidden: 32}
  head: {plugin: classifier, pool: mean}
strategy: {plugin: mpsl}
train: {epochs: 2, batch_size: 32}
output: {save_weights: w/final.safetensors}
YAML
MPSL_TEST_SIGINT_AT_SAVE=1 "$MPSL" run save.yaml --db save.db >/dev/null 2>save.err
rc=$?
check "SIGINT at the final save: exit 0 (got $rc)" [ "$rc" = 0 ]
check "SIGINT at the final save: recorded finished" [ "$(sql save.db "select status from runs where id=1")" = finished ]
check "SIGINT at the final save: the weights are there" [ -s w/final.safetensors ]
finish
