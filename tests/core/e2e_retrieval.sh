#!/usr/bin/env bash
# e2e_retrieval.sh: image-text retrieval end to end on a synthetic dataset (two_views_retrieval:
# 200 test items, 5 captions each): centralized, MPSL and FedAvg train with the summed
# contrastive loss and record Recall@1/5/10 both ways above chance; one-client MPSL equals
# centralized; class-based partitions and early fusion are refused; nothing int32 (no label,
# no caption byte) crosses the message layer.
source "$(dirname "$0")/lib.sh"

cat > retrieval.yaml <<'YAML'
name: retrieval
seed: 5
data:
  dataset: {plugin: two_views_retrieval, n_train: 2000, n_test: 200}
  clients: 4
  partition: {scheme: iid}
model:
  tokenizers:
    image: {plugin: image_patch, patch: 4, dim: 32}
    text: {plugin: text, vocab: bytes, pool_to_one: true, cls: false, max_tokens: 24, dim: 32}
  encoder: {plugin: vit, depth: 1, heads: 2, mlp_ratio: 2}
  head: {plugin: retrieval}
  fusion: late
strategy: {plugin: mpsl}
train:
  epochs: 4
  batch_size: 64
  optimizer: {name: adam, lr: 0.003}
YAML

metric() { sql "$1" "select value from epoch_metrics where run_id=$2 and epoch=3 and name='$3'"; }

# Chance with random scores: image->text R@r = 1 - C(995, r) / C(1000, r) (any of 5 own
# captions among the top r of 1000): R@1 0.005, R@5 0.025, R@10 0.049; text->image R@r =
# r / 200: 0.005, 0.025, 0.05. Required: R@10 > 0.15 both ways (3x chance).
for strategy in centralized mpsl fedavg; do
  expect_ok "$strategy retrieval" "$MPSL" run retrieval.yaml --db r.db --set strategy.plugin=$strategy
done
for id in 1 2 3; do
  for m in recall_i2t_1 recall_i2t_5 recall_i2t_10 recall_t2i_1 recall_t2i_5 recall_t2i_10 test_loss train_loss; do
    check "run $id records $m" [ -n "$(metric r.db $id $m)" ]
  done
  for d in i2t t2i; do
    r10=$(metric r.db $id recall_${d}_10)
    check "run $id $d R@10 $r10 > 0.15 (chance 0.05)" awk -v a="$r10" 'BEGIN { exit !(a > 0.15) }'
  done
  check "run $id: R@1 <= R@5 <= R@10" awk -v a="$(metric r.db $id recall_i2t_1)" \
    -v b="$(metric r.db $id recall_i2t_5)" -v c="$(metric r.db $id recall_i2t_10)" \
    'BEGIN { exit !(a <= b && b <= c) }'
  acc=$(metric r.db $id test_acc)
  mean=$(awk -v a="$(metric r.db $id recall_i2t_1)" -v b="$(metric r.db $id recall_t2i_1)" 'BEGIN { print (a + b) / 2 }')
  check "run $id test_acc $acc = mean of the two R@1 ($mean)" same_numbers "$acc" "$mean" 1e-9
  echo "run $id ($(sql r.db "select method from runs where id=$id")): i2t R@1/5/10" \
    "$(metric r.db $id recall_i2t_1)/$(metric r.db $id recall_i2t_5)/$(metric r.db $id recall_i2t_10)" \
    "t2i $(metric r.db $id recall_t2i_1)/$(metric r.db $id recall_t2i_5)/$(metric r.db $id recall_t2i_10)" \
    "test_loss $(metric r.db $id test_loss)" >&2
done
# Partition records: sample counts, no class histogram (items are not classes).
check "clients' sample counts are stored" [ "$(sql r.db "select group_concat(n_samples, ',') from client_data where run_id=2 order by client")" = "500,500,500,500" ]
check "no class histogram for retrieval" [ "$(sql r.db "select count(*) from client_data where class_histogram != '[]'")" = 0 ]

# One client: MPSL and centralized take the same steps and reach the same numbers.
expect_ok "mpsl, one client" "$MPSL" run retrieval.yaml --db one.db --set data.clients=1
expect_ok "centralized, one client" "$MPSL" run retrieval.yaml --db one.db --set data.clients=1 --set strategy.plugin=centralized
for m in train_loss train_acc test_loss test_acc recall_i2t_1 recall_i2t_5 recall_i2t_10 recall_t2i_1 recall_t2i_5 recall_t2i_10; do
  a=$(sql one.db "select group_concat(value, ' ') from (select value from epoch_metrics where run_id=1 and name='$m' order by epoch)")
  b=$(sql one.db "select group_concat(value, ' ') from (select value from epoch_metrics where run_id=2 and name='$m' order by epoch)")
  check "one-client MPSL = centralized on $m ($a | $b)" same_numbers "$a" "$b" 1e-5
done

# Per-class partitions make no sense for retrieval, nor does one joint image+captions sequence.
for scheme in dirichlet shards; do
  expect_refusal "$scheme refused for retrieval" "data.partition.scheme" "'$scheme'" "retrieval" "scheme: iid" -- \
    "$MPSL" run retrieval.yaml --db refused.db --set data.partition.scheme=$scheme
done
expect_refusal "early fusion refused for retrieval" "model.fusion" "retrieval" "late" -- \
  "$MPSL" run retrieval.yaml --db refused.db --set model.fusion=early
check "refusals wrote no database" [ ! -e refused.db ]

# Nothing int32 crosses: captions stay raw bytes on the client, labels are not used. Clients
# send up activations (b,10,32), d(loss)/d(embeddings) (b,(1+5)*32), one loss value, or their
# tokenizers' parameters.
MPSL_MESSAGE_TRACE="$WORK/trace.txt" expect_ok "traced retrieval run" "$MPSL" run retrieval.yaml --db trace.db --set train.epochs=1
check "messages were traced" [ "$(wc -l < trace.txt)" -gt 500 ]
check "no int32 message" [ "$(awk '$4 == "i32"' trace.txt | wc -l)" = 0 ]
check "float32 but the loss values (float64)" [ "$(awk '$4 != "f32" && !($3 == "scalars" && $4 == "f64")' trace.txt | wc -l)" = 0 ]
check "client messages are only the allowed shapes" [ "$(awk '$2 == -1 && !($3 == "activations" && $5 ~ /^[0-9]+x10x32$/) && !($3 == "logit_grads" && $5 ~ /^[0-9]+x192$/) && !($3 == "scalars" && $5 == "1") && !($3 == "parameters")' trace.txt | wc -l)" = 0 ]
finish
