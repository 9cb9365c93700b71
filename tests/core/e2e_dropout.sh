#!/usr/bin/env bash
# e2e_dropout.sh: clients that are not there (strategy.dropout, dropout_burst, min_clients).
# - dropout 0 is today's run bit for bit (MPSL and FedAvg; the same binary, in this test);
# - the same seed misses the same steps and rounds in one process and under mpirun -n 3;
# - MPSL: the server's batch is what arrived; a client that missed steps catches up within
#   the epoch (one_pass), and each client's slots add up: participated + missed = wanted;
# - FedAvg with client 1 dropped in a round equals the sample-weighted average of clients 0
#   and 2, computed here from their own models (runs in which only that client took part),
#   read from output.save_weights;
# - min_clients: skipped rounds and steps are recorded, a skipped round leaves the model;
# - resuming: a run with dropout killed inside an epoch and resumed from a step checkpoint
#   (MPSL) or an epoch checkpoint (FedAvg) records what the uninterrupted run records;
# - refusals: an impossible dropout_burst, min_clients above the clients there can be.
source "$(dirname "$0")/lib.sh"

cat > dropout.yaml <<'YAML'
name: dropout
seed: 3
data:
  dataset: {plugin: two_modalities, n_train: 1200, n_test: 300}
  clients: 4
  partition: {scheme: dirichlet, alpha: 0.5, min_per_client: 50}
model:
  tokenizers:
    image: {plugin: image_patch, patch: 4, dim: 32}
    audio: {plugin: image_patch, patch: 4, dim: 32}
  encoder: {plugin: token_mlp, depth: 1, hidden: 64}
  head: {plugin: classifier, pool: mean}
strategy: {plugin: mpsl}
train:
  epochs: 2
  batch_size: 32
  optimizer: {name: adam, lr: 0.003}
YAML

# Who missed what: the per-client tallies and the skipped slots.
misses() {
  sql "$1" "select epoch || ' ' || client || ' ' || name || ' ' || value from client_metrics
            where run_id=$2 and name in ('participated', 'missed_dropout', 'missed_too_few')
            order by 1"
  sql "$1" "select epoch || ' ' || name || ' ' || value from epoch_metrics where run_id=$2
            and name in ('skipped_steps', 'skipped_rounds') order by 1"
}

# --- dropout 0 is the run without dropout, bit for bit
for s in mpsl fedavg; do
  expect_ok "$s without dropout" "$MPSL" run dropout.yaml --db zero.db --quiet --set strategy.plugin=$s
  a=$(last_run zero.db)
  expect_ok "$s with dropout 0" "$MPSL" run dropout.yaml --db zero.db --quiet --set strategy.plugin=$s \
    --set strategy.dropout=0 --set strategy.dropout_burst=0 --set strategy.min_clients=1
  b=$(last_run zero.db)
  check "$s: dropout 0 records every figure, byte and FLOP of the run without it, bit for bit" \
    [ "$(all_figures zero.db "$a")" = "$(all_figures zero.db "$b")" ]
  check "$s: dropout 0 records no tallies" [ -z "$(misses zero.db "$b")" ]
done

# --- the same seed, the same misses: in one process and under MPI
mpi=1
if ! command -v mpirun >/dev/null; then mpi=0; echo "note: mpirun not found, MPI part skipped"; fi
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_btl=self,vader OMPI_MCA_btl_vader_single_copy_mechanism=none
MPIRUN=(mpirun --oversubscribe --bind-to none)
if [ -n "${ASAN_OPTIONS:-}" ]; then MPIRUN+=(-x "ASAN_OPTIONS=$ASAN_OPTIONS:detect_leaks=0"); fi
if [ $mpi = 1 ] && "$MPSL" run dropout.yaml --db probe.db --set transport.mode=mpi \
     --set train.epochs=1 2>&1 | grep -q "built without MPI"; then
  mpi=0; echo "note: built without MPI, MPI part skipped"
fi
mpsl_drop=(--set strategy.dropout=0.3 --set strategy.dropout_burst=3 --set strategy.min_clients=2)
fed_drop=(--set strategy.plugin=fedavg --set train.epochs=6 --set strategy.dropout=0.3
          --set strategy.min_clients=3)
for case in mpsl fedavg; do
  if [ $case = mpsl ]; then args=("${mpsl_drop[@]}"); else args=("${fed_drop[@]}"); fi
  expect_ok "$case with dropout in one process" "$MPSL" run dropout.yaml --db $case.db --quiet "${args[@]}"
  a=$(last_run $case.db)
  expect_ok "$case with dropout, again" "$MPSL" run dropout.yaml --db $case.db --quiet "${args[@]}"
  check "$case: the same seed misses the same slots and records the same figures" \
    [ "$(all_figures $case.db "$a")" = "$(all_figures $case.db "$(last_run $case.db)")" ]
  check "$case: some slots were missed" \
    [ "$(sql $case.db "select sum(value) > 0 from client_metrics where run_id=$a and name='missed_dropout'")" = 1 ]
  if [ $mpi = 1 ]; then
    expect_ok "$case with dropout under mpirun -n 3" "${MPIRUN[@]}" -n 3 "$MPSL" run dropout.yaml \
      --db $case.db --quiet "${args[@]}"
    b=$(last_run $case.db)
    check "$case: ran over MPI" [ "$(sql $case.db "select transport || n_ranks from runs where id=$b")" = mpi3 ]
    check "$case: the same misses in one process and under MPI" \
      [ "$(misses $case.db "$a")" = "$(misses $case.db "$b")" ]
    check "$case: the same byte counts in one process and under MPI" \
      [ "$(sql $case.db "select epoch, client, direction, kind, bytes from comm where run_id=$a order by 1,2,3,4")" = \
        "$(sql $case.db "select epoch, client, direction, kind, bytes from comm where run_id=$b order by 1,2,3,4")" ]
    check "$case: the same figures in one process and under MPI (1e-6)" same_numbers \
      "$(sql $case.db "select value from epoch_metrics where run_id=$a and name in ('train_loss','test_acc') order by epoch, name")" \
      "$(sql $case.db "select value from epoch_metrics where run_id=$b and name in ('train_loss','test_acc') order by epoch, name")" 1e-6
  fi
done

# MPSL: every client's slots add up to what it wanted; with catch-up, a client whose pass is
# shorter than the epoch still makes its whole pass despite missed steps.
a=$(sql mpsl.db "select min(id) from runs")
steps=$(sql mpsl.db "select max((n_samples + 7) / 8) from client_data where run_id=$a")
check "mpsl: no client takes part in more steps than the epoch has ($steps)" \
  [ "$(sql mpsl.db "select count(*) from client_metrics c where run_id=$a and name='participated' and value > $steps")" = 0 ]
check "mpsl: the shortest pass is made whole despite missed steps (catch-up)" \
  [ "$(sql mpsl.db "select c.value = (d.n_samples + 7) / 8 and m.value > 0 from client_data d
        join client_metrics c on c.run_id=d.run_id and c.client=d.client and c.name='participated' and c.epoch=0
        join client_metrics m on m.run_id=d.run_id and m.client=d.client and m.name='missed_dropout' and m.epoch=0
        where d.run_id=$a order by d.n_samples limit 1")" = 1 ]
check "mpsl: min_clients 2 skipped steps, recorded per epoch and per client" \
  [ "$(sql mpsl.db "select (select sum(value) > 0 from epoch_metrics where run_id=$a and name='skipped_steps')
        || (select sum(value) > 0 from client_metrics where run_id=$a and name='missed_too_few')")" = 11 ]
check "mpsl: a client's samples are those of the steps it took part in" \
  [ "$(sql mpsl.db "select count(*) from client_metrics s join client_metrics p on p.run_id=s.run_id
        and p.epoch=s.epoch and p.client=s.client and p.name='participated'
        where s.run_id=$a and s.name='samples' and (s.value > 8 * p.value or s.value <= 8 * (p.value - 1))")" = 0 ]

# FedAvg, min_clients 3 of 4: a skipped round is recorded, nobody trains, the model stays.
f=$(sql fedavg.db "select min(id) from runs")
skipped=$(sql fedavg.db "select group_concat(epoch) from epoch_metrics where run_id=$f and name='skipped_rounds' and value=1")
check "fedavg: some rounds were skipped by min_clients ($skipped)" [ -n "$skipped" ]
for e in ${skipped//,/ }; do
  [ "$e" = 0 ] && continue
  check "fedavg: skipped round $e trained nobody" \
    [ "$(sql fedavg.db "select count(*) from client_metrics where run_id=$f and epoch=$e and name='samples'")" = 0 ]
  check "fedavg: skipped round $e left the model as it was (same test figures)" \
    [ "$(sql fedavg.db "select printf('%.17g %.17g', a.value, b.value) from epoch_metrics a join epoch_metrics b
          on b.run_id=a.run_id and b.name=a.name and b.epoch=a.epoch - 1 where a.run_id=$f and a.epoch=$e and a.name='test_loss'" |
         awk '{print ($1 == $2)}')" = 1 ]
done
check "fedavg: in a skipped round every client there records missed_too_few" \
  [ "$(sql fedavg.db "select count(*) from client_metrics where run_id=$f and name='missed_too_few' and value=1")" -gt 0 ]

# --- FedAvg with one client dropped: the sample-weighted average of the others
# Seed 4, three clients, round 0: each client's chance draw is 0.827, 0.101, 0.286 (clients
# 0, 1, 2), so dropout 0.2 drops client 1 alone and 0.5 clients 1 and 2; fraction 0.6 samples
# clients 1 and 2, so with dropout 0.2 client 2 trains alone. Each client's round-0 model
# depends only on the seed (same start, same data order), so the runs in which it trained
# alone give its own model.
cat > avg.yaml <<'YAML'
name: avg
seed: 4
data:
  dataset: {plugin: two_modalities, n_train: 600, n_test: 200}
  clients: 3
  partition: {scheme: dirichlet, alpha: 0.5, min_per_client: 50}
model:
  tokenizers:
    image: {plugin: image_patch, patch: 4, dim: 16}
    audio: {plugin: image_patch, patch: 4, dim: 16}
  encoder: {plugin: token_mlp, depth: 1, hidden: 32}
  head: {plugin: classifier, pool: mean}
strategy: {plugin: fedavg}
train:
  epochs: 1
  batch_size: 30
  optimizer: {name: adam, lr: 0.003}
YAML
trained() { sql avg.db "select group_concat(client) from client_metrics where run_id=$(last_run avg.db) and name='samples'"; }
expect_ok "fedavg, client 1 dropped" "$MPSL" run avg.yaml --db avg.db --quiet \
  --set strategy.dropout=0.2 --set output.save_weights=w02.safetensors
check "client 1 dropped, 0 and 2 trained" [ "$(trained)" = "0,2" ]
expect_ok "fedavg, client 0 alone" "$MPSL" run avg.yaml --db avg.db --quiet \
  --set strategy.dropout=0.5 --set output.save_weights=w0.safetensors
check "client 0 trained alone" [ "$(trained)" = "0" ]
expect_ok "fedavg, client 2 alone" "$MPSL" run avg.yaml --db avg.db --quiet \
  --set strategy.dropout=0.2 --set strategy.fraction=0.6 --set output.save_weights=w2.safetensors
check "client 2 trained alone" [ "$(trained)" = "2" ]
n0=$(sql avg.db "select n_samples from client_data where run_id=1 and client=0")
n2=$(sql avg.db "select n_samples from client_data where run_id=1 and client=2")
cat > average.py <<'PY'
import json, struct, sys
def load(path):
    raw = open(path, 'rb').read()
    n = struct.unpack('<Q', raw[:8])[0]
    head = json.loads(raw[8:8 + n]); data = raw[8 + n:]
    out = {}
    for name, t in head.items():
        if name == '__metadata__': continue
        a, b = t['data_offsets']
        out[name] = struct.unpack('<%df' % ((b - a) // 4), data[a:b])
    return out
w, w0, w2 = load('w02.safetensors'), load('w0.safetensors'), load('w2.safetensors')
n0, n2 = float(sys.argv[1]), float(sys.argv[2])
worst, count = 0.0, 0
for name, got in w.items():
    for g, x, y in zip(got, w0[name], w2[name]):
        want = (n0 * x + n2 * y) / (n0 + n2)
        worst = max(worst, abs(g - want) / max(1.0, abs(want))); count += 1
print(count, worst)
sys.exit(0 if count > 0 and worst <= 1e-6 else 1)
PY
if python3 average.py "$n0" "$n2" >avg.out; then ok; else
  fail "fedavg with client 1 dropped is not the ($n0, $n2)-weighted average of clients 0 and 2: $(cat avg.out)"; fi
echo "fedavg average: $(cat avg.out) (parameters compared, largest relative difference)"

# --- resuming: the decisions are replayed, the tallies and catch-up go on as they would have
cat > resume.yaml <<YAML
name: resume
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
strategy: {plugin: mpsl, dropout: 0.3, dropout_burst: 2, min_clients: 2}
train:
  epochs: 3
  batch_size: 30
  optimizer: {name: adam, lr: 0.003}
YAML
for s in mpsl fedavg; do
  if [ $s = mpsl ]; then ck=(--set train.checkpoint.every_steps=3); else
    ck=(--set strategy.plugin=fedavg --set train.epochs=5 --set train.checkpoint.every_epochs=1); fi
  rm -f calls.log
  expect_ok "$s with dropout, uninterrupted" "$MPSL" run resume.yaml --db res.db --quiet "${ck[@]}"
  base=$(last_run res.db)
  calls=$(grep -c forward calls.log); rm -f calls.log
  at=$((calls / 2 + 1))
  MPSL_TEST_CRASH=kill MPSL_TEST_CRASH_AT=$at "$MPSL" run resume.yaml --db res.db --quiet "${ck[@]}" \
    >/dev/null 2>&1
  id=$(last_run res.db)
  check "$s with dropout: killed at forward call $at of $calls" \
    [ "$(sql res.db "select status from runs where id=$id")" = failed ]
  [ $s = fedavg ] || check "$s with dropout: a checkpoint inside an epoch to resume from" \
    [ "$(sql res.db "select count(*) from checkpoints where run_id=$id and step > 0")" -ge 1 ]
  expect_ok "$s with dropout: resume" "$MPSL" resume "$id" --db res.db
  check "$s with dropout: resumed equals uninterrupted (tallies included), bit for bit" \
    [ "$(all_figures res.db "$base")" = "$(all_figures res.db "$id")" ]
  check "$s with dropout: some slots were missed" [ -n "$(misses res.db "$base" | grep -v ' 0.0$')" ]
done

# --- refusals, before anything is recorded
expect_refusal "a dropout_burst too short for the dropout" "strategy.dropout_burst" "dropout / (1 - dropout)" -- \
  "$MPSL" run dropout.yaml --db bad.db --set strategy.dropout=0.8 --set strategy.dropout_burst=2
expect_refusal "min_clients above the clients" "strategy.min_clients: 5" -- \
  "$MPSL" run dropout.yaml --db bad.db --set strategy.min_clients=5
expect_refusal "min_clients above FedAvg's sample" "strategy.min_clients: 3" "at most 2" -- \
  "$MPSL" run dropout.yaml --db bad.db --set strategy.plugin=fedavg --set strategy.fraction=0.5 \
  --set strategy.min_clients=3
expect_refusal "dropout 1" "dropout" -- "$MPSL" run dropout.yaml --db bad.db --set strategy.dropout=1
check "no run recorded for a refusal" [ ! -e bad.db ] || [ "$(sql bad.db "select count(*) from runs")" = 0 ]

finish
