#!/usr/bin/env bash
# e2e_mpsl.sh: MPSL end to end on a two-modality dataset: early and late fusion learn; with one
# client MPSL equals centralized training step for step, in every recorded figure bit for bit;
# every byte count equals the analytical payload size; an epoch is one pass of every client
# over its partition (strategy.epoch: one_pass) or ceil(N/B) cycling steps (cycle). The drift
# diagnostics change nothing that training records (figures, bytes, FLOPs bit for bit) and
# agree with themselves (one client: no drift, its tokenizer's test accuracy is test_acc; the
# matrix's diagonal is cross_acc_own); sync_tokenizers_every: 1 sends the average down (bytes
# counted), changes the results, and leaves every client holding the average (no drift after
# the sync when the next epoch's learning rate is 0).
source "$(dirname "$0")/lib.sh"

cat > fusion.yaml <<'YAML'
name: fusion
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
strategy: {plugin: mpsl}
train:
  epochs: 3
  batch_size: 32
  optimizer: {name: adam, lr: 0.003}
YAML

expect_ok "mpsl early fusion" "$MPSL" run fusion.yaml --db f.db
expect_ok "mpsl late fusion" "$MPSL" run fusion.yaml --db f.db --set model.fusion=late
for id in 1 2; do
  acc=$(sql f.db "select value from epoch_metrics where run_id=$id and epoch=2 and name='test_acc'")
  check "run $id test accuracy $acc > 0.5 (chance 0.25)" awk -v a="$acc" 'BEGIN { exit !(a > 0.5) }'
done

# Exact bytes for one client in one epoch (4 IID clients of 500 samples, batch 32 -> 8 per
# client per step, 63 steps; T = 2 modalities x (4 patches + CLS) = 10 tokens of D = 32).
bytes() { sql f.db "select bytes from comm where run_id=1 and epoch=0 and client=0 and kind='$1' and direction='$2'"; }
check "activations up = 500*10*32*4" [ "$(bytes activations up)" = 640000 ]
check "cut-layer gradients down = 500*10*32*4" [ "$(bytes cut_grads down)" = 640000 ]
check "logits down = 500*4*4" [ "$(bytes logits down)" = 8000 ]
check "logit gradients up = 500*4*4" [ "$(bytes logit_grads up)" = 8000 ]
check "loss values up = 63*8 (float64)" [ "$(bytes scalars up)" = 504 ]
# Tokenizers uploaded for evaluation: 2 x (32*16 + 32 + 32 + 5*32) floats.
check "tokenizer parameters up = 1472*4" [ "$(bytes parameters up)" = 5888 ]
check "nothing else is sent" [ "$(sql f.db "select count(*) from comm where run_id=1 and epoch=0 and client=0")" = 6 ]
check "client FLOPs are a small share" [ "$(sql f.db "select (select sum(flops) from compute where run_id=1 and party='client') < (select sum(flops) from compute where run_id=1 and party='server')")" = 1 ]

# One client: MPSL and centralized take the same steps and reach the same numbers, every
# recorded figure bit for bit (the same binary on the same machine): the weights, the test
# figures, and the training figures too, since the client reports its loss as float64 and the
# server's train_acc is the one client's own (its weight in the clients' mean is exactly 1).
expect_ok "mpsl, one client" "$MPSL" run fusion.yaml --db one.db --set data.clients=1
expect_ok "centralized, one client" "$MPSL" run fusion.yaml --db one.db --set data.clients=1 --set strategy.plugin=centralized
for m in train_loss train_acc test_loss test_acc; do
  a=$(sql one.db "select group_concat(quote(value), ' ') from (select value from epoch_metrics where run_id=1 and name='$m' order by epoch)")
  b=$(sql one.db "select group_concat(quote(value), ' ') from (select value from epoch_metrics where run_id=2 and name='$m' order by epoch)")
  same=$(sql one.db "select count(*) from epoch_metrics a join epoch_metrics b on a.epoch = b.epoch and a.name = b.name where a.run_id=1 and b.run_id=2 and a.name='$m' and a.value = b.value")
  check "one-client MPSL = centralized on $m, all 3 epochs bit for bit ($a | $b)" [ "$same" = 3 ]
done

# Frozen tokenizers: no cut-layer gradients and no parameter uploads.
expect_ok "frozen tokenizers" "$MPSL" run fusion.yaml --db frozen.db --set strategy.freeze_tokenizers=true --set train.epochs=1
check "no cut-layer gradients when frozen" [ "$(sql frozen.db "select count(*) from comm where kind in ('cut_grads', 'parameters')")" = 0 ]
# The server runs ONE forward and ONE backward per step, over every client's rows, whatever
# the number of clients (63 steps of 4 x 8 rows, the last of 4 x 4).
for K in 1 4; do
  rm -f calls.log
  expect_ok "counting encoder, $K clients" "$MPSL" run fusion.yaml --db count.db --set data.clients=$K \
    --set train.epochs=1 --set "model.encoder={plugin: counting_encoder, log: $WORK/calls.log}"
  server=$(awk '$2 == "backward" { print $1; exit }' calls.log)
  check "$K clients: 63 server backward passes" [ "$(grep -c "^$server backward" calls.log)" = 63 ]
  check "$K clients: 63 server forward passes" [ "$(grep -c "^$server forward" calls.log)" = 63 ]
  check "$K clients: the server saw all 2000 samples once" \
    [ "$(awk -v s="$server" '$1 == s && $2 == "forward" { n += $3 } END { print n }' calls.log)" = 2000 ]
done

# The epoch (strategy.epoch). one_pass, the default and the reference implementation's: each
# client passes over its own partition exactly once, b = ceil(32/4) = 8 samples a step; the
# epoch is the longest client's ceil(n_k/8) steps, and a client whose pass is over sits out
# the rest (no messages either way), so the server's batch shrinks. cycle: ceil(N/32) steps,
# every client in each, restarting its partition when its pass is over. Dirichlet partitions
# of unequal sizes show the difference.
noniid=(--set 'data.partition={scheme: dirichlet, alpha: 0.5, min_per_client: 50}' --set train.epochs=2)
for mode in one_pass cycle; do
  rm -f calls.log
  expect_ok "epoch $mode" "$MPSL" run fusion.yaml --db epoch.db "${noniid[@]}" --set strategy.epoch=$mode \
    --set "model.encoder={plugin: counting_encoder, log: $WORK/calls.log}"
  server=$(awk '$2 == "backward" { print $1; exit }' calls.log)
  awk -v s="$server" '$1 == s && $2 == "backward" { print $3 }' calls.log > rows.$mode
done
id1=1 id2=2   # one_pass, cycle
sizes=$(sql epoch.db "select group_concat(n_samples, ' ') from (select n_samples from client_data where run_id=$id1 order by client)")
check "the partition is uneven ($sizes)" [ "$(sql epoch.db "select max(n_samples) - min(n_samples) > 100 from client_data where run_id=$id1")" = 1 ]
longest=$(sql epoch.db "select max((n_samples + 7) / 8) from client_data where run_id=$id1")
check "one_pass: the server takes the longest client's $longest steps an epoch" [ "$(wc -l < rows.one_pass)" = $((2 * longest)) ]
check "one_pass: the server sees all 2000 samples once an epoch" [ "$(awk '{ n += $1 } END { print n }' rows.one_pass)" = 4000 ]
check "one_pass: its batch shrinks as clients finish (first 32 rows, last fewer)" \
  [ "$(head -1 rows.one_pass)" = 32 ] && [ "$(sed -n "${longest}p" rows.one_pass)" -lt 32 ]
check "one_pass: every client processed exactly its partition, every epoch" \
  [ "$(sql epoch.db "select count(*) from client_metrics m join client_data d on d.run_id = m.run_id and d.client = m.client where m.run_id=$id1 and m.name='samples' and m.value = d.n_samples")" = 8 ]
check "one_pass: a client sends one loss value per step it takes part in, ceil(n_k/8)" \
  [ "$(sql epoch.db "select count(*) from comm c join client_data d on d.run_id = c.run_id and d.client = c.client where c.run_id=$id1 and c.kind='scalars' and c.messages = (d.n_samples + 7) / 8")" = 8 ]
check "one_pass: and is sent cut-layer gradients for those steps only" \
  [ "$(sql epoch.db "select count(*) from comm c join client_data d on d.run_id = c.run_id and d.client = c.client where c.run_id=$id1 and c.kind='cut_grads' and c.bytes = d.n_samples * 10 * 32 * 4")" = 8 ]
check "cycle: ceil(2000/32) = 63 steps an epoch" [ "$(wc -l < rows.cycle)" = 126 ]
check "cycle: every client takes part in each (63 loss values per client and epoch)" \
  [ "$(sql epoch.db "select count(*) from comm where run_id=$id2 and kind='scalars' and messages = 63")" = 8 ]
check "cycle: the clients' samples are not their partitions" \
  [ "$(sql epoch.db "select count(*) from client_metrics m join client_data d on d.run_id = m.run_id and d.client = m.client where m.run_id=$id2 and m.name='samples' and m.value != d.n_samples")" -gt 0 ]
a=$(sql epoch.db "select group_concat(quote(value), ' ') from (select value from epoch_metrics where run_id=$id1 and name in ('train_loss', 'test_acc') order by epoch, name)")
b=$(sql epoch.db "select group_concat(quote(value), ' ') from (select value from epoch_metrics where run_id=$id2 and name in ('train_loss', 'test_acc') order by epoch, name)")
check "one_pass and cycle train differently ($a | $b)" [ -n "$a" ] && [ "$a" != "$b" ]

# No label crosses the message layer, checked on every message itself (MPSL_MESSAGE_TRACE
# writes one line per message: from to kind dtype shape bytes): all are float32 but the loss
# values (float64, 8 bytes), and what clients send up is activations (b,10,32), logit
# gradients (b,4), one loss value, or the tokenizers' parameters. Labels would be int32 (b)
# vectors.
MPSL_MESSAGE_TRACE="$WORK/trace.txt" expect_ok "traced run" "$MPSL" run fusion.yaml --db trace.db --set train.epochs=1
check "messages were traced" [ "$(wc -l < trace.txt)" -gt 1000 ]
check "every message is float32 but the loss values" [ "$(awk '$4 != "f32" && !($3 == "scalars" && $4 == "f64" && $6 == 8)' trace.txt | wc -l)" = 0 ]
check "every loss value is float64" [ "$(awk '$3 == "scalars" && $4 != "f64"' trace.txt | wc -l)" = 0 ]
check "client messages are only the allowed shapes" [ "$(awk '$2 == -1 && !($3 == "activations" && $5 ~ /^[0-9]+x10x32$/) && !($3 == "logit_grads" && $5 ~ /^[0-9]+x4$/) && !($3 == "scalars" && $5 == "1") && !($3 == "parameters")' trace.txt | wc -l)" = 0 ]
check "no one-dimensional batch-sized payload goes up" [ "$(awk '$2 == -1 && $5 ~ /^[0-9]+$/ && $5 != "1" && $3 != "parameters"' trace.txt | wc -l)" = 0 ]
# The database's counters agree with the messages themselves.
check "trace bytes = stored bytes" [ "$(awk '{ n += $6 } END { print n }' trace.txt)" = "$(sql trace.db 'select sum(bytes) from comm')" ]
check "only activations, logit gradients, loss values and tokenizers go up" \
  [ "$(sql f.db "select group_concat(kind, ',') from (select distinct kind from comm where run_id=1 and direction='up' order by kind)")" = "activations,logit_grads,parameters,scalars" ]

# FedProx with mu = 0 is FedAvg bit for bit.
expect_ok "fedavg" "$MPSL" run fusion.yaml --db prox.db --set strategy.plugin=fedavg --set train.epochs=2
expect_ok "fedprox mu 0" "$MPSL" run fusion.yaml --db prox.db --set "strategy={plugin: fedprox, mu: 0}" --set train.epochs=2
a=$(sql prox.db "select group_concat(value, ' ') from (select value from epoch_metrics where run_id=1 and name not like '%seconds' and name != 'peak_rss_bytes' order by epoch, name)")
b=$(sql prox.db "select group_concat(value, ' ') from (select value from epoch_metrics where run_id=2 and name not like '%seconds' and name != 'peak_rss_bytes' order by epoch, name)")
check "fedprox(mu=0) = fedavg exactly" [ -n "$a" ] && [ "$a" = "$b" ]
expect_ok "fedprox mu 0.5" "$MPSL" run fusion.yaml --db prox.db --set "strategy={plugin: fedprox, mu: 0.5}" --set train.epochs=2
c=$(sql prox.db "select group_concat(value, ' ') from (select value from epoch_metrics where run_id=3 and name not like '%seconds' and name != 'peak_rss_bytes' order by epoch, name)")
check "fedprox(mu=0.5) differs from fedavg" [ "$a" != "$c" ]

# FedAvg's client optimizers (strategy.client_optimizer). keep, the default and the reference
# implementation's: each client's optimizer is made once and its state (Adam's moments and
# step count) carries across rounds. With one client FedAvg is then centralized training
# exactly: the same batches, one Adam over all of them, and an average of one model; every
# recorded figure equals centralized's bit for bit. reset (a fresh optimizer every round)
# restarts Adam each round: round 1 is the same, later rounds differ.
expect_ok "fedavg, one client (keep)" "$MPSL" run fusion.yaml --db opt.db --set data.clients=1 --set strategy.plugin=fedavg
expect_ok "fedavg, one client, reset" "$MPSL" run fusion.yaml --db opt.db --set data.clients=1 --set "strategy={plugin: fedavg, client_optimizer: reset}"
expect_ok "centralized, one client" "$MPSL" run fusion.yaml --db opt.db --set data.clients=1 --set strategy.plugin=centralized
equal_to_central() {  # run epoch...: how many of its four figures equal centralized's (run 3) in those epochs
  local run=$1; shift
  sql opt.db "select count(*) from epoch_metrics a join epoch_metrics b on a.epoch = b.epoch and a.name = b.name where a.run_id=$run and b.run_id=3 and a.name in ('train_loss', 'train_acc', 'test_loss', 'test_acc') and a.epoch in ($(IFS=,; echo "$*")) and a.value = b.value"
}
check "one-client FedAvg (keep) = centralized, every figure of 3 epochs bit for bit" [ "$(equal_to_central 1 0 1 2)" = 12 ]
check "one-client FedAvg (reset) = centralized in round 1" [ "$(equal_to_central 2 0)" = 4 ]
check "one-client FedAvg (reset) differs from centralized later (Adam restarted)" \
  [ "$(sql opt.db "select count(*) from epoch_metrics a join epoch_metrics b on a.epoch = b.epoch and a.name = b.name where a.run_id=2 and b.run_id=3 and a.name in ('train_loss', 'test_loss') and a.epoch > 0 and a.value != b.value")" = 4 ]
for s in fedavg fedprox; do
  expect_ok "$s, 4 clients, reset" "$MPSL" run fusion.yaml --db opt4.db --set train.epochs=2 --set "strategy={plugin: $s, client_optimizer: reset}"
  expect_ok "$s, 4 clients, keep" "$MPSL" run fusion.yaml --db opt4.db --set train.epochs=2 --set "strategy={plugin: $s, client_optimizer: keep}"
  reset=$(sql opt4.db "select max(id) - 1 from runs") keep=$(sql opt4.db "select max(id) from runs")
  figure() { sql opt4.db "select quote(value) from epoch_metrics where run_id=$1 and epoch=$2 and name='test_loss'"; }
  check "$s: keep and reset agree in round 1" [ "$(figure $keep 0)" = "$(figure $reset 0)" ]
  check "$s: and differ in round 2" [ "$(figure $keep 1)" != "$(figure $reset 1)" ]
done

# A sweep runs every combination in its own process and compares them.
cat > sweep.yaml <<'YAML'
name: sweep
seed: 3
data:
  dataset: {plugin: two_modalities, n_train: 400, n_test: 100}
  clients: 2
model:
  tokenizers:
    image: {plugin: image_patch, patch: 4, dim: 16}
  encoder: {plugin: token_mlp}
  head: {plugin: classifier, pool: mean}
strategy: {plugin: mpsl}
train: {epochs: 1, batch_size: 20}
sweep:
  strategy: [{plugin: mpsl}, {plugin: fedavg}]
  data.clients: [1, 2]
YAML
expect_ok "sweep" "$MPSL" run sweep.yaml --db sweep.db
check "sweep made four runs" [ "$(sql sweep.db "select count(*) from runs where status='finished'")" = 4 ]
check "sweep order: first key slowest" [ "$(sql sweep.db "select group_concat(method || n_clients, ' ') from (select * from runs order by id)")" = "mpsl1 mpsl2 fedavg1 fedavg2" ]
check "sweep prints the comparison" grep -q "final_test_acc" "$WORK/out"
check "stored configs hold no sweep" [ "$(sql sweep.db "select count(*) from runs where config_yaml like '%sweep:%'")" = 0 ]
# --- drift diagnostics and sync_tokenizers_every (runs 1-6 of d.db)
D=(--set data.dataset.n_train=800 --set data.dataset.n_test=200 --set train.epochs=2)
DIAG=(--set strategy.diagnostics=true --set strategy.diagnostics_samples=50)
ZERO=(--set "train.schedule={name: step, step_epochs: 1, gamma: 0}") # epoch 1 learns nothing
expect_ok "diagnostics" "$MPSL" run fusion.yaml --db d.db "${D[@]}" "${DIAG[@]}"
expect_ok "no diagnostics" "$MPSL" run fusion.yaml --db d.db "${D[@]}"
expect_ok "sync every epoch" "$MPSL" run fusion.yaml --db d.db "${D[@]}" "${DIAG[@]}" \
  --set strategy.sync_tokenizers_every=1
expect_ok "sync, lr 0 after epoch 0" "$MPSL" run fusion.yaml --db d.db "${D[@]}" "${DIAG[@]}" \
  --set strategy.sync_tokenizers_every=1 "${ZERO[@]}"
expect_ok "no sync, lr 0 after epoch 0" "$MPSL" run fusion.yaml --db d.db "${D[@]}" "${DIAG[@]}" \
  "${ZERO[@]}"
expect_ok "diagnostics, one client" "$MPSL" run fusion.yaml --db d.db "${D[@]}" "${DIAG[@]}" \
  --set data.clients=1
em() { sql d.db "select quote(value) from epoch_metrics where run_id=$1 and epoch=$2 and name='$3'"; }
TRAINING="'train_loss','train_acc','test_acc','test_loss'"
trained() {
  sql d.db "select epoch, name, quote(value) from epoch_metrics where run_id=$1 and name in ($TRAINING) order by 1, 2"
  sql d.db "select epoch, client, name, quote(value) from client_metrics where run_id=$1 and name in ($TRAINING, 'samples') order by 1, 2, 3"
  sql d.db "select epoch, client, direction, kind, bytes, messages from comm where run_id=$1 order by 1, 2, 3, 4"
  sql d.db "select epoch, party, client, pass, quote(flops) from compute where run_id=$1 order by 1, 2, 3, 4"
}
check "diagnostics change no training figure, byte or FLOP" [ "$(trained 1)" = "$(trained 2)" ]
check "no diagnostics without diagnostics: true" \
  [ "$(sql d.db "select count(*) from client_metrics where run_id=2 and (name like 'cross_acc_tok_%' or name like '%tokenizer%')")" = 0 ]
check "per client and epoch: drift, own test acc, average's train acc, 4 cross accuracies" \
  [ "$(sql d.db "select count(*) from client_metrics where run_id=1 and (name like 'cross_acc_tok_%' or name like '%tokenizer%')")" = 56 ]
for n in tokenizer_drift_mean tokenizer_drift_min tokenizer_drift_max own_tokenizer_test_acc_mean \
         own_tokenizer_test_acc_min own_tokenizer_test_acc_max train_acc_avg_tokenizer \
         cross_acc_own cross_acc_others diagnostics_seconds; do
  check "epoch metric $n, both epochs" [ "$(sql d.db "select count(*) from epoch_metrics where run_id=1 and name='$n'")" = 2 ]
done
check "clients' tokenizers drift apart" awk -v d="$(em 1 1 tokenizer_drift_min)" 'BEGIN { exit !(d > 1e-3) }'
# 4 IID clients of 200 samples: each weighs 1/4
check "cross_acc_own is the matrix's diagonal" same_numbers "$(em 1 1 cross_acc_own)" \
  "$(sql d.db "select sum(value) / 4 from client_metrics where run_id=1 and epoch=1 and name = 'cross_acc_tok_' || client")" 1e-12
check "cross_acc_others is the rest of it" same_numbers "$(em 1 1 cross_acc_others)" \
  "$(sql d.db "select sum(value) / 12 from client_metrics where run_id=1 and epoch=1 and name like 'cross_acc_tok_%' and name != 'cross_acc_tok_' || client")" 1e-12
check "own_tokenizer_test_acc_mean is the clients' mean" same_numbers "$(em 1 1 own_tokenizer_test_acc_mean)" \
  "$(sql d.db "select avg(value) from client_metrics where run_id=1 and epoch=1 and name='own_tokenizer_test_acc'")" 1e-12
check "one client: no drift" [ "$(em 6 1 tokenizer_drift_max)" = 0.0 ]
check "one client: its tokenizer's test accuracy is test_acc" [ "$(em 6 1 own_tokenizer_test_acc_max)" = "$(em 6 1 test_acc)" ]
check "one client: the average's train accuracy is its own tokenizer's" \
  [ "$(em 6 1 train_acc_avg_tokenizer)" = "$(em 6 1 cross_acc_own)" ]
pbytes() { sql d.db "select coalesce(sum(bytes), 0) from comm where run_id=$1 and epoch=$2 and kind='parameters' and direction='$3'"; }
check "sync: the average goes down after epoch 0, as many bytes as the uploads" \
  [ "$(pbytes 3 0 down)" = "$(pbytes 3 0 up)" -a "$(pbytes 3 0 down)" -gt 0 ]
check "sync: nothing down after the last epoch, nor without sync" [ "$(pbytes 3 1 down)$(pbytes 1 0 down)" = 00 ]
check "sync: epoch 0 as without it" [ "$(em 3 0 test_acc)" = "$(em 1 0 test_acc)" ]
check "sync: epoch 1 differs" [ "$(em 3 1 train_loss)" != "$(em 1 1 train_loss)" ]
check "sync: every client holds the average after it (no drift with lr 0)" \
  awk -v d="$(em 4 1 tokenizer_drift_max)" 'BEGIN { exit !(d < 1e-6) }'
check "sync: each client's tokenizer scores test_acc" \
  [ "$(em 4 1 own_tokenizer_test_acc_min) $(em 4 1 own_tokenizer_test_acc_max)" = "$(em 4 1 test_acc) $(em 4 1 test_acc)" ]
check "no sync, lr 0: the drift stays" [ "$(em 5 1 tokenizer_drift_mean)" = "$(em 5 0 tokenizer_drift_mean)" ]
finish
