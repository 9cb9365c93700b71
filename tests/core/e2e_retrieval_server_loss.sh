#!/usr/bin/env bash
# e2e_retrieval_server_loss.sh: MPSL's retrieval_loss: server. The server computes the
# contrastive loss over every client's pairs at once (negatives from all clients), so the
# clients exchange only tokens and cut-layer gradients: no embeddings down, no gradients of
# them or loss values up. Checks: the messages and their bytes; that the loss differs from the
# per-client one (more negatives: a higher loss at the start, 5 ln 64 against 5 ln 16 at equal
# scores); that one client equals centralized training; the per-client records; and the
# refusal for a classification task, whose loss needs the clients' labels.
source "$(dirname "$0")/lib.sh"

cat > r.yaml <<'YAML'
name: server-loss
seed: 5
data:
  dataset: {plugin: two_views_retrieval, n_train: 1024, n_test: 128}
  clients: 4
  partition: {scheme: iid}
model:
  tokenizers:
    image: {plugin: image_patch, patch: 4, dim: 32}
    text: {plugin: text, vocab: bytes, pool_to_one: true, cls: false, max_tokens: 24, dim: 32}
  encoder: {plugin: vit, depth: 1, heads: 2, mlp_ratio: 2}
  head: {plugin: retrieval, similarity: cosine, temperature: learnable}
  fusion: late
strategy: {plugin: mpsl}
train:
  epochs: 2
  batch_size: 64
  optimizer: {name: adam, lr: 0.001}
YAML

metric() { sql "$1" "select group_concat(value, ' ') from (select value from epoch_metrics where run_id=$2 and name='$3' order by epoch)"; }
kinds() { sql "$1" "select group_concat(kind || ':' || direction, ' ') from (select distinct kind, direction from comm where run_id=$2 order by kind, direction)"; }
bytes_of() { sql "$1" "select sum(bytes) from comm where run_id=$2 and kind='$3'"; }

expect_ok "client-side loss (the default)" "$MPSL" run r.yaml --db r.db
expect_ok "server-side loss" "$MPSL" run r.yaml --db r.db --set strategy.retrieval_loss=server

# 1. Messages: tokens up and cut-layer gradients down only (and the tokenizer upload).
check "client-side: logits, their gradients and loss values cross" \
  [ "$(kinds r.db 1)" = "activations:up cut_grads:down logit_grads:up logits:down parameters:up scalars:up" ]
check "server-side: only tokens, cut-layer gradients and the tokenizer upload" \
  [ "$(kinds r.db 2)" = "activations:up cut_grads:down parameters:up" ]
for k in activations cut_grads parameters; do
  check "$k bytes equal in both modes ($(bytes_of r.db 1 $k))" \
    [ "$(bytes_of r.db 1 $k)" = "$(bytes_of r.db 2 $k)" ]
done
# Each sample's tokens: the 8x8 image's 4 patches + CLS and its 5 captions' one token each,
# 10 tokens of 32 floats, float32, over 1024 samples and 2 epochs
check "server-side tokens up: 2 x 1024 x 10 x 32 x 4 bytes" \
  [ "$(bytes_of r.db 2 activations)" = $((2 * 1024 * 10 * 32 * 4)) ]

# 2. The loss is the whole batch's: at the start its chance value is 5 ln 64 (20.79) against
#    5 ln 16 (13.86) per client, so the first epoch's loss is higher.
c0=$(sql r.db "select value from epoch_metrics where run_id=1 and epoch=0 and name='train_loss'")
s0=$(sql r.db "select value from epoch_metrics where run_id=2 and epoch=0 and name='train_loss'")
check "server-side epoch-1 loss $s0 > client-side $c0 + 1" awk -v s="$s0" -v c="$c0" 'BEGIN { exit !(s > c + 1) }'
check "server-side epoch-1 loss $s0 below its chance value 20.79" awk -v s="$s0" 'BEGIN { exit !(s < 20.79 && s > 10) }'
check "server-side records train_acc (in-batch R@1 over the whole batch)" \
  [ "$(sql r.db "select count(*) from epoch_metrics where run_id=2 and name='train_acc'")" = 2 ]

# 3. Per client: samples only (a client computes no loss of its own).
check "server-side: each client records its samples, 256 an epoch" \
  [ "$(sql r.db "select group_concat(value, ' ') from client_metrics where run_id=2 and name='samples'")" = "256.0 256.0 256.0 256.0 256.0 256.0 256.0 256.0" ]
check "server-side: no per-client train_loss or train_acc" \
  [ "$(sql r.db "select count(*) from client_metrics where run_id=2 and name in ('train_loss','train_acc')")" = 0 ]
check "the run's config records retrieval_loss: server" \
  grep -q '"retrieval_loss":"server"' <(sql r.db "select config_json from runs where id=2")

# 4. One client: the server's loss over the client's batch is centralized training's.
expect_ok "server-side, one client" "$MPSL" run r.yaml --db one.db --set data.clients=1 \
  --set strategy.retrieval_loss=server
expect_ok "centralized" "$MPSL" run r.yaml --db one.db --set data.clients=1 \
  --set strategy.plugin=centralized
for m in train_loss train_acc test_loss recall_i2t_1 recall_t2i_10; do
  a=$(metric one.db 1 $m); b=$(metric one.db 2 $m)
  check "one client: server-side MPSL = centralized on $m ($a | $b)" same_numbers "$a" "$b" 1e-5
done

# 5. Classification: the loss needs the labels, which never leave the clients.
expect_refusal "server-side loss for classification" \
  "strategy.retrieval_loss: server needs a retrieval task, but the dataset's task is classification" \
  "labels, which never leave them" -- \
  "$MPSL" run "$MPSL_SOURCE/experiments/fmnist_fedavg.yaml" --db refused.db \
  --set 'strategy={plugin: mpsl, retrieval_loss: server}' --set train.epochs=1
check "nothing recorded for the refused run" [ ! -s refused.db ] 
finish
