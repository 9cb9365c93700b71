#!/usr/bin/env bash
# e2e_many_clients.sh: what one more client costs in one process. FedAvg and MPSL with 10 and
# 150 clients on the same data (total batch 150: the server's batch is the same at both K);
# the peak memory each extra client adds must stay near what a client has to hold (its
# parameters and Adam's two moments, of its whole model in FedAvg and of its tokenizers in
# MPSL), not several copies more: before the per-client buffers were cut (docs/benchmarks.md,
# "Many clients") a FedAvg client here cost 6.3 copies of its model and an MPSL client 6.0 of
# its tokenizers; now 3.0 and 4.2. The parameter counts come from the run's own byte counts,
# so the bounds follow the model. Memory, not time.
source "$(dirname "$0")/lib.sh"

cat > m.yaml <<'YAML'
name: many
seed: 5
data:
  dataset: {plugin: two_modalities, n_train: 1500, n_test: 100}
  clients: 10
  partition: {scheme: iid}
model:
  tokenizers:
    image: {plugin: image_patch, patch: 4, dim: 128}
    audio: {plugin: image_patch, patch: 4, dim: 128}
  encoder: {plugin: vit, depth: 2, heads: 2, mlp_ratio: 2}
  head: {plugin: classifier, pool: cls}
  fusion: early
strategy: {plugin: mpsl}
train:
  epochs: 1
  batch_size: 150
  optimizer: {name: adam, lr: 0.003}
YAML

# peak DB: the last run's peak resident bytes
peak() { sql "$1" "select value from epoch_metrics where run_id=(select max(id) from runs) and name='peak_rss_bytes' and epoch=0"; }
# per_client A B KA KB: bytes each client beyond KA adds
per_client() { awk -v a="$1" -v b="$2" -v ka="$3" -v kb="$4" 'BEGIN { printf "%.0f", (b - a) / (kb - ka) }'; }
# at_most X Y: X <= Y
at_most() { awk -v x="$1" -v y="$2" 'BEGIN { exit !(x <= y) }'; }

export MPSL_HUGEPAGES=0 # 4 KiB pages: the peak counts what is touched, not 2 MiB at a time
for strategy in fedavg mpsl; do
  for k in 10 150; do
    expect_ok "$strategy, $k clients" "$MPSL" run m.yaml --db "$strategy$k.db" -q \
      --set strategy.plugin=$strategy --set data.clients=$k
  done
  # the parameters a client sends up in an epoch: FedAvg its whole model, MPSL its tokenizers
  P=$(sql "${strategy}10.db" "select bytes / 4 from comm where client=0 and direction='up'
                              and kind='parameters'")
  check "$strategy: the clients' parameter upload is counted ($P floats)" [ "${P:-0}" -gt 1000 ]
  extra=$(per_client "$(peak "${strategy}10.db")" "$(peak "${strategy}150.db")" 10 150)
  copies=$(awk -v e="$extra" -v p="${P:-1}" 'BEGIN { printf "%.2f", e / (4 * p) }')
  echo "$strategy: $extra bytes per extra client, $copies copies of its $P parameters" >&2
  # what a client must hold: parameters and Adam's two moments (3 copies); FedAvg's bound
  # leaves room for the batch-1 activations of the whole model, MPSL's for its batch, its
  # tokenizers' activations and its role (each a fraction of a small tokenizer)
  bound=$([ $strategy = fedavg ] && echo 4.5 || echo 5)
  check "$strategy: an extra client adds $copies copies of its parameters (at most $bound)" \
    at_most "$copies" "$bound"
  check "$strategy: ... and at least the 3 it must hold" at_most 3 "$copies"
done
finish
