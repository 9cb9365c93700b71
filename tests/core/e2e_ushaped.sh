#!/usr/bin/env bash
# e2e_ushaped.sh: U-shaped MPSL (strategy.head_on_client: true), where each client holds a
# copy of the head and the server only the encoder. It learns with early and late fusion;
# with one client it equals centralized training in every recorded figure bit for bit (and
# its FLOPs split between the parties add up to centralized's); the server runs its encoder
# once forward and once backward per step, over every client's rows; every byte count equals
# the analytical payload size, kind by kind (features down, feature gradients up, no logits
# and no logit gradients); no label crosses the message layer; frozen tokenizers and
# sync_tokenizers_every behave as in plain MPSL; settings that need the server's head are
# refused; a gradient defence changes what is sent and is off by default; and the same runs
# give the same numbers in one process and under `mpirun -n 3` (skipped without MPI).
source "$(dirname "$0")/lib.sh"

cat > fusion.yaml <<'YAML'
name: ushaped
seed: 3
data:
  dataset: {plugin: two_modalities, n_train: 2000, n_test: 500}
  clients: 4
  partition: {scheme: iid}
model:
  tokenizers:
    image: {plugin: image_patch, patch: 4, dim: 32}
    audio: {plugin: image_patch, patch: 4, dim: 32}
  encoder: {plugin: token_mlp, depth: 1, hidden: 64}
  head: {plugin: classifier, pool: mean}
  fusion: early
strategy: {plugin: mpsl, head_on_client: true}
train:
  epochs: 3
  batch_size: 32
  optimizer: {name: adam, lr: 0.003}
YAML

expect_ok "u-shaped early fusion" "$MPSL" run fusion.yaml --db f.db
expect_ok "u-shaped late fusion" "$MPSL" run fusion.yaml --db f.db --set model.fusion=late
expect_ok "plain mpsl, for comparison" "$MPSL" run fusion.yaml --db f.db --set strategy.head_on_client=false
for id in 1 2; do
  acc=$(sql f.db "select value from epoch_metrics where run_id=$id and epoch=2 and name='test_acc'")
  check "run $id test accuracy $acc > 0.5 (chance 0.25)" awk -v a="$acc" 'BEGIN { exit !(a > 0.5) }'
  check "run $id records the clients' train_acc" [ "$(sql f.db "select count(*) from epoch_metrics where run_id=$id and name='train_acc'")" = 3 ]
done

# Exact bytes for client 0 in epoch 0: 500 samples, T = 10 tokens of D = 32 (the encoder
# keeps the width, Dh = 32), 63 steps of 8 rows.
bytes() { sql f.db "select bytes from comm where run_id=1 and epoch=0 and client=0 and kind='$1' and direction='$2'"; }
check "activations up = 500*10*32*4" [ "$(bytes activations up)" = 640000 ]
check "features down = 500*10*32*4" [ "$(bytes features down)" = 640000 ]
check "feature gradients up = 500*10*32*4" [ "$(bytes feature_grads up)" = 640000 ]
check "cut-layer gradients down = 500*10*32*4" [ "$(bytes cut_grads down)" = 640000 ]
check "loss values up = 63*8 (float64)" [ "$(bytes scalars up)" = 504 ]
# Tokenizers 2 x (32*16 + 32 + 32 + 5*32) = 1472 floats and the head 4*32 + 4 = 132.
check "tokenizers and head up = (1472+132)*4" [ "$(bytes parameters up)" = 6416 ]
check "two parameter messages an epoch" [ "$(sql f.db "select messages from comm where run_id=1 and epoch=0 and client=0 and kind='parameters'")" = 2 ]
check "nothing else is sent" [ "$(sql f.db "select count(*) from comm where run_id=1 and epoch=0 and client=0")" = 6 ]
check "no logits or logit gradients in any run with the head on the clients" \
  [ "$(sql f.db "select count(*) from comm where run_id in (1, 2) and kind in ('logits', 'logit_grads')")" = 0 ]
check "the head's FLOPs are the clients' (more than plain MPSL's clients)" \
  [ "$(sql f.db "select (select sum(flops) from compute where run_id=1 and party='client') > (select sum(flops) from compute where run_id=3 and party='client')")" = 1 ]

# One client: the same steps as centralized training, every recorded figure bit for bit.
expect_ok "u-shaped, one client" "$MPSL" run fusion.yaml --db one.db --set data.clients=1
expect_ok "centralized, one client" "$MPSL" run fusion.yaml --db one.db --set data.clients=1 --set "strategy={plugin: centralized}"
for m in train_loss train_acc test_loss test_acc; do
  same=$(sql one.db "select count(*) from epoch_metrics a join epoch_metrics b on a.epoch = b.epoch and a.name = b.name where a.run_id=1 and b.run_id=2 and a.name='$m' and a.value = b.value")
  check "one-client u-shaped = centralized on $m, all 3 epochs bit for bit" [ "$same" = 3 ]
done
check "one client: client + server FLOPs = centralized's" \
  [ "$(sql one.db "select (select sum(flops) from compute where run_id=1) = (select sum(flops) from compute where run_id=2)")" = 1 ]

# One encoder pass forward and one backward per step, over all clients' rows.
for K in 1 4; do
  rm -f calls.log
  expect_ok "counting encoder, $K clients" "$MPSL" run fusion.yaml --db count.db --set data.clients=$K \
    --set train.epochs=1 --set "model.encoder={plugin: counting_encoder, log: $WORK/calls.log}"
  server=$(awk '$2 == "backward" { print $1; exit }' calls.log)
  check "$K clients: 63 server backward passes" [ "$(grep -c "^$server backward" calls.log)" = 63 ]
  check "$K clients: 63 server forward passes" [ "$(grep -c "^$server forward" calls.log)" = 63 ]
  check "$K clients: the server saw all 2000 samples once" \
    [ "$(awk -v s="$server" '$1 == s && $2 == "forward" { n += $3 } END { print n }' calls.log)" = 2000 ]
  check "$K clients: only the server runs the encoder in training" \
    [ "$(awk '$2 == "backward" { print $1 }' calls.log | sort -u | wc -l)" = 1 ]
done

# Frozen tokenizers: no cut-layer gradients; the head alone goes up.
expect_ok "frozen tokenizers" "$MPSL" run fusion.yaml --db frozen.db --set strategy.freeze_tokenizers=true --set train.epochs=1
check "no cut-layer gradients when frozen" [ "$(sql frozen.db "select count(*) from comm where kind='cut_grads'")" = 0 ]
check "only the head is uploaded when frozen (132*4 bytes)" [ "$(sql frozen.db "select count(*) from comm where kind='parameters' and bytes = 528 and direction = 'up'")" = 4 ]

# sync_tokenizers_every: 1 sends both averages down after every epoch but the last.
expect_ok "sync every epoch" "$MPSL" run fusion.yaml --db sync.db --set strategy.sync_tokenizers_every=1
check "averages down after epochs 0 and 1: 6416 bytes per client" \
  [ "$(sql sync.db "select group_concat(epoch || ':' || bytes, ' ') from (select epoch, bytes from comm where client=0 and kind='parameters' and direction='down' order by epoch)")" = "0:6416 1:6416" ]

# Refused: what needs the server's head.
expect_refusal "diagnostics need the server's head" "head_on_client" "diagnostics" -- \
  "$MPSL" run fusion.yaml --db bad.db --set strategy.diagnostics=true
expect_refusal "unknown defence" "defence" "none, gaussian, max_norm" -- \
  "$MPSL" run fusion.yaml --db bad.db --set strategy.defence=marvel
expect_refusal "dropout is not taken by the U-shaped step yet" "head_on_client" "dropout" -- \
  "$MPSL" run fusion.yaml --db bad.db --set strategy.dropout=0.2
expect_refusal "nor min_clients" "head_on_client" "min_clients" -- \
  "$MPSL" run fusion.yaml --db bad.db --set strategy.min_clients=2

# No label crosses: what the clients send up is activations (b,10,32), feature gradients
# (b,10,32), one loss value or parameters, all float32 but the loss values.
MPSL_MESSAGE_TRACE="$WORK/trace.txt" expect_ok "traced run" "$MPSL" run fusion.yaml --db trace.db --set train.epochs=1
check "messages were traced" [ "$(wc -l < trace.txt)" -gt 1000 ]
check "every message is float32 but the loss values" [ "$(awk '$4 != "f32" && !($3 == "scalars" && $4 == "f64" && $6 == 8)' trace.txt | wc -l)" = 0 ]
check "client messages are only the allowed shapes" [ "$(awk '$2 == -1 && !($3 == "activations" && $5 ~ /^[0-9]+x10x32$/) && !($3 == "feature_grads" && $5 ~ /^[0-9]+x10x32$/) && !($3 == "scalars" && $5 == "1") && !($3 == "parameters")' trace.txt | wc -l)" = 0 ]
check "trace bytes = stored bytes" [ "$(awk '{ n += $6 } END { print n }' trace.txt)" = "$(sql trace.db 'select sum(bytes) from comm')" ]

# A defence on the returned gradients: off by default (a run that names none is the default
# bit for bit), on it changes training and leaves the bytes as they were.
expect_ok "defence none" "$MPSL" run fusion.yaml --db def.db --set train.epochs=1
expect_ok "defence none, named" "$MPSL" run fusion.yaml --db def.db --set train.epochs=1 --set strategy.defence=none
expect_ok "defence gaussian" "$MPSL" run fusion.yaml --db def.db --set train.epochs=1 --set strategy.defence=gaussian --set strategy.defence_noise=2
fig() { sql def.db "select group_concat(quote(value), ' ') from (select value from epoch_metrics where run_id=$1 and name in ('train_loss', 'test_acc', 'test_loss') order by name)"; }
check "defence: none is the default bit for bit" [ "$(fig 1)" = "$(fig 2)" ]
check "defence: gaussian changes training" [ "$(fig 1)" != "$(fig 3)" ]
check "defence: same bytes" [ "$(sql def.db "select group_concat(bytes) from comm where run_id=1 order by client, kind, direction")" = "$(sql def.db "select group_concat(bytes) from comm where run_id=3 order by client, kind, direction")" ]

# Under MPI: the same numbers, the same bytes.
if command -v mpirun >/dev/null && ! "$MPSL" run fusion.yaml --db probe.db --set transport.mode=mpi --set train.epochs=1 2>&1 | grep -q "built without MPI"; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
  export OMPI_MCA_btl=self,vader OMPI_MCA_btl_vader_single_copy_mechanism=none
  MPIRUN=(mpirun --oversubscribe --bind-to none)
  [ -z "${ASAN_OPTIONS:-}" ] || MPIRUN+=(-x "ASAN_OPTIONS=$ASAN_OPTIONS:detect_leaks=0")
  noniid=(--set 'data.partition={scheme: dirichlet, alpha: 0.5, min_per_client: 50}' --set train.epochs=2)
  expect_ok "u-shaped in one process" "$MPSL" run fusion.yaml --db mpi.db "${noniid[@]}"
  expect_ok "u-shaped under mpirun -n 3" "${MPIRUN[@]}" -n 3 "$MPSL" run fusion.yaml --db mpi.db "${noniid[@]}"
  check "the second run used MPI with 3 ranks" [ "$(sql mpi.db "select transport || ' ' || n_ranks || ' ' || status from runs where id=2")" = "mpi 3 finished" ]
  m() { sql mpi.db "select value from epoch_metrics where run_id=$1 and name in ('train_loss','train_acc','test_acc','test_loss') order by epoch, name"; }
  check "per-epoch metrics agree to 1e-6" same_numbers "$(m 1)" "$(m 2)" 1e-6
  c() { sql mpi.db "select epoch, client, direction, kind, bytes, messages from comm where run_id=$1 order by 1, 2, 3, 4"; }
  check "identical byte counts per client, direction and kind" [ "$(c 1)" = "$(c 2)" ]
else
  echo "note: mpirun or MPI support missing; the MPI comparison is skipped" >&2
fi

finish
