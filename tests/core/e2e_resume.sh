#!/usr/bin/env bash
# e2e_resume.sh: checkpoints and bit-exact resume. For MPSL, FedAvg, FedProx and centralized
# training, a run checkpointed every epoch is killed with SIGKILL at random steps (three
# seeds each) and continued with `mpsl resume`: every recorded figure except the timings
# (per-epoch and per-client metrics, bytes, FLOPs) equals an uninterrupted run's bit for bit
# (the same binary on the same machine); FedAvg's kept client optimizers are in the checkpoint;
# MPSL with its drift diagnostics and sync_tokenizers_every too.
# Resuming with a changed config is refused naming the
# difference (--force accepts it and tags the run); a corrupt newest checkpoint is named and
# the previous one used; a finished run or one without checkpoints is refused.
source "$(dirname "$0")/lib.sh"

cat > tiny.yaml <<YAML
name: tiny
seed: 3
data:
  dataset: {plugin: two_modalities, n_train: 600, n_test: 100}
  clients: 3
  partition: {scheme: dirichlet, alpha: 0.5, min_per_client: 50}
model:
  tokenizers:
    image: {plugin: image_patch, patch: 4, dim: 16}
  encoder: {plugin: counting_encoder, log: $WORK/calls.log}
  head: {plugin: classifier, pool: mean}
strategy: {plugin: mpsl}
train:
  epochs: 5
  batch_size: 32
  optimizer: {name: adam, lr: 0.003}
  checkpoint: {every_epochs: 1, keep: 2}
YAML

EXCLUDE="'epoch_seconds','eval_seconds','diagnostics_seconds','peak_rss_bytes','server_compute_seconds','server_wait_seconds','compute_seconds','wait_seconds'"
figures() {
  sql r.db "select 'e', epoch, name, quote(value) from epoch_metrics where run_id=$1 and name not in ($EXCLUDE) order by 2, 3"
  sql r.db "select 'c', epoch, client, name, quote(value) from client_metrics where run_id=$1 and name not in ($EXCLUDE) order by 2, 3, 4"
  sql r.db "select 'b', epoch, client, direction, kind, bytes, messages from comm where run_id=$1 order by 2, 3, 4, 5"
  sql r.db "select 'f', epoch, party, client, pass, quote(flops) from compute where run_id=$1 order by 2, 3, 4, 5"
}
last_id() { sql r.db "select max(id) from runs"; }

RANDOM=7   # the kill points are random, and the same on every run of this test
for s in mpsl fedavg fedprox centralized; do
  expect_ok "$s uninterrupted" "$MPSL" run tiny.yaml --db r.db --set strategy.plugin=$s
  base=$(last_id)
  calls=$(grep -c forward calls.log); rm -f calls.log   # forward calls of one whole run
  for try in 1 2 3; do
    at=$(( (RANDOM % (calls * 3 / 5)) + calls / 5 ))   # somewhere in epochs 2..4
    MPSL_TEST_CRASH=kill MPSL_TEST_CRASH_AT=$at "$MPSL" run tiny.yaml --db r.db \
      --set strategy.plugin=$s >/dev/null 2>&1
    id=$(last_id)
    check "$s try $try: killed at forward call $at of $calls (run $id failed)" \
      [ "$(sql r.db "select status from runs where id=$id")" = failed ]
    expect_ok "$s try $try: resume" "$MPSL" resume "$id" --db r.db
    check "$s try $try: the run finished as the same run" [ "$(sql r.db "select status from runs where id=$id")" = finished ]
    check "$s try $try: resumed equals uninterrupted, bit for bit" [ "$(figures "$base")" = "$(figures "$id")" ]
    rm -f calls.log
  done
done

# MPSL whose clients take the average every 2 epochs, with the diagnostics on: the synced
# tokenizers are in the checkpoint, the diagnostics recorded again after a resume are the same.
sync=(--set strategy.sync_tokenizers_every=2 --set strategy.diagnostics=true --set strategy.diagnostics_samples=30)
expect_ok "mpsl sync uninterrupted" "$MPSL" run tiny.yaml --db r.db "${sync[@]}"
base=$(last_id)
calls=$(grep -c forward calls.log); rm -f calls.log
for try in 1 2; do
  at=$(( (RANDOM % (calls * 3 / 5)) + calls / 5 ))
  MPSL_TEST_CRASH=kill MPSL_TEST_CRASH_AT=$at "$MPSL" run tiny.yaml --db r.db "${sync[@]}" >/dev/null 2>&1
  id=$(last_id)
  check "mpsl sync try $try: killed at forward call $at of $calls" [ "$(sql r.db "select status from runs where id=$id")" = failed ]
  expect_ok "mpsl sync try $try: resume" "$MPSL" resume "$id" --db r.db
  check "mpsl sync try $try: equal bit for bit" [ "$(figures "$base")" = "$(figures "$id")" ]
  rm -f calls.log
done
check "mpsl sync: diagnostics and synced bytes among the figures compared" \
  [ "$(figures "$base" | grep -c "tokenizer_drift\|down|parameters")" -gt 0 ]

# Checkpoints inside an epoch (every_steps) for the strategies whose roles take steps together:
# killed anywhere, resumed from the last step checkpoint, still bit for bit.
for s in mpsl centralized; do
  steps=(--set strategy.plugin=$s --set train.checkpoint.every_epochs=0 --set train.checkpoint.every_steps=4)
  expect_ok "$s uninterrupted (every_steps)" "$MPSL" run tiny.yaml --db r.db "${steps[@]}"
  base=$(last_id)
  calls=$(grep -c forward calls.log); rm -f calls.log
  for try in 1 2; do
    at=$(( (RANDOM % (calls * 3 / 5)) + calls / 5 ))
    MPSL_TEST_CRASH=kill MPSL_TEST_CRASH_AT=$at "$MPSL" run tiny.yaml --db r.db "${steps[@]}" \
      >/dev/null 2>&1
    id=$(last_id)
    check "$s every_steps try $try: a checkpoint inside an epoch" \
      [ "$(sql r.db "select count(*) from checkpoints where run_id=$id and step > 0")" -ge 1 ]
    expect_ok "$s every_steps try $try: resume" "$MPSL" resume "$id" --db r.db
    check "$s every_steps try $try: resumed after a step" grep -q "resumed after epoch [0-9]*, step [1-9]" "$WORK/err"
    check "$s every_steps try $try: equal bit for bit" [ "$(figures "$base")" = "$(figures "$id")" ]
    rm -f calls.log
  done
done

# FedAvg's client optimizers outlive rounds (client_optimizer: keep, the default, which the
# resumes above run), so each client's is part of its state in a checkpoint: its step count and
# Adam's two moments, 20 + 2 x 4 bytes per model float (every float of this model is
# trainable). With reset no optimizer lives between rounds and none is saved.
for mode in reset keep; do
  expect_ok "fedavg $mode, checkpointed" "$MPSL" run tiny.yaml --db r.db --set train.epochs=2 \
    --set "strategy={plugin: fedavg, client_optimizer: $mode}"
  declare "run_$mode=$(last_id)"
done
rm -f calls.log
P=$(sql r.db "select bytes / messages / 4 from comm where run_id=$run_keep and epoch=0 and client=0 and kind='parameters' and direction='down'")
saved=$(sql r.db "select (select bytes from checkpoints where run_id=$run_keep and epoch=1) - (select bytes from checkpoints where run_id=$run_reset and epoch=1)")
check "keep saves 3 clients' optimizers, 3 x (20 + 8 x $P) bytes ($saved)" [ "$saved" = $((3 * (20 + 8 * P))) ]

# Refusals and fallbacks.
MPSL_TEST_CRASH=kill MPSL_TEST_CRASH_AT=60 "$MPSL" run tiny.yaml --db r.db >/dev/null 2>&1
id=$(last_id)
expect_refusal "a changed config is refused, naming the difference" "would resume with changes" \
  "train.optimizer.lr: 0.003 -> 0.01" -- "$MPSL" resume "$id" --db r.db --set train.optimizer.lr=0.01
expect_ok "--force accepts it" "$MPSL" resume "$id" --db r.db --set train.optimizer.lr=0.01 --force
check "a forced resume is tagged" [ "$(sql r.db "select count(*) from run_tags where run_id=$id and tag='forced-resume'")" = 1 ]
expect_refusal "a finished run is refused" "finished: there is nothing to resume" -- "$MPSL" resume "$id" --db r.db

MPSL_TEST_CRASH=kill MPSL_TEST_CRASH_AT=60 "$MPSL" run tiny.yaml --db r.db >/dev/null 2>&1
id=$(last_id)
newest=$(sql r.db "select path from checkpoints where run_id=$id order by epoch desc limit 1")
printf 'garbage' | dd of="$newest" bs=1 seek=100 conv=notrunc 2>/dev/null
expect_ok "a corrupt newest checkpoint: the previous one is used" "$MPSL" resume "$id" --db r.db
check "the corrupt one is named" grep -q "checkpoint $newest is corrupt or truncated" "$WORK/err"
check "and the run finished" [ "$(sql r.db "select status from runs where id=$id")" = finished ]

MPSL_TEST_CRASH=kill MPSL_TEST_CRASH_AT=60 "$MPSL" run tiny.yaml --db r.db \
  --set train.checkpoint.every_epochs=0 >/dev/null 2>&1
expect_refusal "no checkpoint: refused" "has no usable checkpoint" -- "$MPSL" resume "$(last_id)" --db r.db
finish
