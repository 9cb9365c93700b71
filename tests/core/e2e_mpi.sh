#!/usr/bin/env bash
# e2e_mpi.sh: parties as processes. The same experiments run in one process and under
# `mpirun --oversubscribe -n 3` and `-n 5` (rank 0 the server, clients spread over the
# others): every per-epoch metric agrees (to 1e-6 relative; the report says whether bit for
# bit), every byte count per client, direction and kind is identical, and the run records its
# transport, ranks and hosts. MPSL, FedAvg, FedProx and centralized with early fusion, MPSL
# with late fusion, MPSL on retrieval; MPSL's epochs both ways (one_pass, where clients of the
# uneven Dirichlet partition sit out the steps after their pass, and cycle); MPSL with its drift
# diagnostics and sync_tokenizers_every (computed on rank 0 from the uploaded tokenizers, the
# same figures). Failures end the job with the run marked failed: a
# client rank killed by SIGKILL (named), and a client rank that stops answering
# (transport.timeout_s). Skipped (77) when mpirun or the MPI build is missing.
source "$(dirname "$0")/lib.sh"

if ! command -v mpirun >/dev/null; then
  echo "SKIP: mpirun not found (Debian: apt install openmpi-bin libopenmpi-dev)"; exit 77
fi
# Open MPI refuses to run as root unless told it may (CI runs as root).
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# Keep Open MPI on this machine's loopback and shared memory.
export OMPI_MCA_btl=self,vader OMPI_MCA_btl_vader_single_copy_mechanism=none
MPIRUN=(mpirun --oversubscribe --bind-to none)
# Under AddressSanitizer (scripts/test.sh --sanitize): Open MPI dlopen()s and dlclose()s its
# components, and LeakSanitizer can neither name nor suppress what they leave allocated, so
# the ranks mpirun starts run without leak checking (every other check stays on; the runs in
# one process keep it).
if [ -n "${ASAN_OPTIONS:-}" ]; then
  MPIRUN+=(-x "ASAN_OPTIONS=$ASAN_OPTIONS:detect_leaks=0")
fi

cat > fusion.yaml <<'YAML'
name: fusion
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
  fusion: early
strategy: {plugin: mpsl}
train:
  epochs: 2
  batch_size: 32
  optimizer: {name: adam, lr: 0.003}
YAML

cat > retrieval.yaml <<'YAML'
name: retrieval
seed: 5
data:
  dataset: {plugin: two_views_retrieval, n_train: 800, n_test: 100}
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
  epochs: 2
  batch_size: 64
  optimizer: {name: adam, lr: 0.003}
YAML

if "$MPSL" run fusion.yaml --db probe.db --set transport.mode=mpi --set train.epochs=1 \
     2>&1 | grep -q "built without MPI"; then
  echo "SKIP: this mpsl was built without MPI"; exit 77
fi

last_id() { sql "$1" "select max(id) from runs"; }
metrics() { sql "$1" "select value from epoch_metrics where run_id=$2 and (name in ('train_loss','train_acc','test_acc','test_loss','recall_i2t_1','recall_t2i_10') or name like 'tokenizer_drift_%' or name like '%tokenizer%acc%' or name like 'cross_acc_%') order by epoch, name"; }
client_metrics() { sql "$1" "select value from client_metrics where run_id=$2 and (name in ('train_loss','train_acc','samples','tokenizer_drift') or name like '%tokenizer%acc%' or name like 'cross_acc_tok_%') order by epoch, client, name"; }
comm() { sql "$1" "select epoch, client, direction, kind, bytes, messages from comm where run_id=$2 order by 1, 2, 3, 4"; }
flops() { sql "$1" "select sum(flops) from compute where run_id=$2 group by party, client, pass order by party, client, pass"; }

exact=0 close=0
# compare WHAT FILE EXTRA-ARGS... : run in one process, then with 3 and 5 ranks; compare.
compare() {
  local what=$1 file=$2; shift 2
  expect_ok "$what in one process" "$MPSL" run "$file" --db "$what.db" "$@"
  local base; base=$(last_id "$what.db")
  for n in 3 5; do
    expect_ok "$what with mpirun -n $n" "${MPIRUN[@]}" -n $n "$MPSL" run "$file" --db "$what.db" "$@"
    local id; id=$(last_id "$what.db")
    check "$what -n $n: a new run ($id)" [ "$id" != "$base" ]
    check "$what -n $n: recorded transport mpi, $n ranks, one host" \
      [ "$(sql "$what.db" "select transport || ' ' || n_ranks || ' ' || (instr(hosts, ',') = 0) || ' ' || status from runs where id=$id")" = "mpi $n 1 finished" ]
    local a b
    a=$(metrics "$what.db" "$base"); b=$(metrics "$what.db" "$id")
    check "$what -n $n: per-epoch metrics agree" same_numbers "$a" "$b" 1e-6
    if [ "$a" = "$b" ]; then exact=$((exact + 1)); else close=$((close + 1)); fi
    a=$(client_metrics "$what.db" "$base"); b=$(client_metrics "$what.db" "$id")
    [ -z "$a" ] || check "$what -n $n: per-client metrics agree" same_numbers "$a" "$b" 1e-6
    check "$what -n $n: identical byte counts per client, direction and kind" \
      [ "$(comm "$what.db" "$base")" = "$(comm "$what.db" "$id")" ]
    check "$what -n $n: FLOPs per party agree" same_numbers "$(flops "$what.db" "$base")" "$(flops "$what.db" "$id")" 1e-9
    check "$what -n $n: server compute and wait time recorded" \
      [ "$(sql "$what.db" "select count(*) from epoch_metrics where run_id=$id and name in ('server_compute_seconds','server_wait_seconds')")" = 4 ]
  done
  check "$what: local run recorded as local, 1 rank" \
    [ "$(sql "$what.db" "select transport || ' ' || n_ranks from runs where id=$base")" = "local 1" ]
}

compare mpsl fusion.yaml
compare mpsl_cycle fusion.yaml --set strategy.epoch=cycle
compare fedavg fusion.yaml --set strategy.plugin=fedavg
compare fedprox fusion.yaml --set strategy.plugin=fedprox
compare centralized fusion.yaml --set strategy.plugin=centralized
compare mpsl_late fusion.yaml --set model.fusion=late
compare mpsl_drift fusion.yaml --set strategy.diagnostics=true --set strategy.diagnostics_samples=40 \
  --set strategy.sync_tokenizers_every=1
check "mpsl_drift: the diagnostics were recorded (7 per client and epoch)" \
  [ "$(sql mpsl_drift.db "select count(*) from client_metrics where run_id=3 and (name like 'cross_acc_tok_%' or name like '%tokenizer%')")" = 56 ]
compare retrieval retrieval.yaml
compare retrieval_server retrieval.yaml --set strategy.retrieval_loss=server
check "client compute and wait time recorded per client" \
  [ "$(sql mpsl.db "select count(*) from client_metrics where run_id=2 and name in ('compute_seconds','wait_seconds')")" = 16 ]
echo "metrics bit for bit equal in $exact of $((exact + close)) MPI runs, within 1e-6 in the rest"

# --- failures: never a hang, never a run left 'running'
faults=(--set strategy.plugin=fedavg --set "model.encoder={plugin: counting_encoder, log: $WORK/calls.log}")

# A client rank killed by SIGKILL on its 3rd forward pass.
MPSL_TEST_FAULT_RANK=2 MPSL_TEST_KILL_AT=3 expect_refusal "a killed client rank fails the run" \
  -- timeout 120 "${MPIRUN[@]}" -n 3 "$MPSL" run fusion.yaml --db fault.db "${faults[@]}"
id=$(last_id fault.db)
check "killed rank: run $id marked failed" [ "$(sql fault.db "select status from runs where id=$id")" = failed ]
msg=$(sql fault.db "select message from runs where id=$id")
check "killed rank: the message names rank 2 and its clients ($msg)" grep -q "rank 2 (clients 2-3" <<<"$msg"

# A client rank that stops answering: the server gives up after transport.timeout_s.
MPSL_TEST_FAULT_RANK=1 MPSL_TEST_HANG_AT=2 expect_refusal "a silent client rank fails the run" \
  "heard nothing for 3 s" -- timeout 120 "${MPIRUN[@]}" -n 3 "$MPSL" run fusion.yaml --db fault.db \
  "${faults[@]}" --set transport.timeout_s=3
id=$(last_id fault.db)
check "silent rank: run $id marked failed" [ "$(sql fault.db "select status from runs where id=$id")" = failed ]
msg=$(sql fault.db "select message from runs where id=$id")
check "silent rank: the message names the client it waited for ($msg)" grep -q "from client 0 (rank 1)" <<<"$msg"
# The server's rank killed (on its first forward pass: FedAvg's evaluation): a client rank on
# the same host marks the run failed.
MPSL_TEST_FAULT_RANK=0 MPSL_TEST_KILL_AT=1 expect_refusal "a killed server rank fails the run" \
  -- timeout 120 "${MPIRUN[@]}" -n 3 "$MPSL" run fusion.yaml --db fault.db "${faults[@]}"
id=$(last_id fault.db)
check "killed server: run $id marked failed" [ "$(sql fault.db "select status from runs where id=$id")" = failed ]
msg=$(sql fault.db "select message from runs where id=$id")
check "killed server: the message says the server's process died ($msg)" grep -q "server's process died" <<<"$msg"
check "no run is left running" [ "$(sql fault.db "select count(*) from runs where status='running'")" = 0 ]

# A sweep under mpirun: every rank runs the points one after another (no child processes).
cat > sweep.yaml <<'YAML'
name: sweep
seed: 3
data:
  dataset: {plugin: two_modalities, n_train: 600, n_test: 100}
  clients: 4
  partition: {scheme: iid}
model:
  tokenizers:
    image: {plugin: image_patch, patch: 4, dim: 16}
  encoder: {plugin: token_mlp, depth: 1, hidden: 32}
  head: {plugin: classifier, pool: mean}
strategy: {plugin: mpsl}
train: {epochs: 1, batch_size: 32}
sweep:
  strategy.plugin: [mpsl, fedavg, centralized]
YAML
expect_ok "a sweep under mpirun -n 3" "${MPIRUN[@]}" -n 3 "$MPSL" run sweep.yaml --db sweep.db
check "the sweep's three points ran over MPI and finished" \
  [ "$(sql sweep.db "select group_concat(method || ':' || transport || ':' || status, ' ') from runs")" = "mpsl:mpi:finished fedavg:mpi:finished centralized:mpi:finished" ]
check "the comparison is printed once (by rank 0)" [ "$(grep -c '^final_test_acc' "$WORK/out")" = 1 ]

# A client role that fails (a NaN loss in MPSL, computed on the clients): its rank tells rank
# 0, which records the failure naming the rank, its clients and the cause.
expect_refusal "a failing client role fails the run" -- timeout 120 "${MPIRUN[@]}" -n 3 "$MPSL" \
  run fusion.yaml --db fault.db --set "train.optimizer={name: sgd, lr: 10}"
id=$(last_id fault.db)
msg=$(sql fault.db "select status || ': ' || message from runs where id=$id")
check "failing client: recorded with its rank, clients and cause ($msg)" \
  grep -Eq "^failed: rank [12] \(clients [0-9]-[0-9]\) failed: client [0-9]: the training loss is" <<<"$msg"

# FedAvg sampling one client of four a round, one client per rank: a client that is not
# sampled for several rounds hears nothing from the server for longer than timeout_s, and
# must not take that for a dead server (the server's rank tells it it is alive). Every forward
# call sleeps 40 ms, so a round takes at least ~0.8 s however fast the machine, and the
# sampling is fixed by the seed: clients 0 and 2 are never sampled in 8 rounds, a silence of
# at least ~6 s against a timeout of 3 s (which a round itself stays well under).
MPSL_TEST_SLEEP_MS=40 expect_ok "unsampled clients wait longer than timeout_s" \
  timeout 300 "${MPIRUN[@]}" -n 5 "$MPSL" run fusion.yaml --db slow.db "${faults[@]}" \
  --set strategy.fraction=0.25 --set train.epochs=8 --set transport.timeout_s=3
check "the slow run finished" [ "$(sql slow.db "select status from runs")" = finished ]
check "clients 0 and 2 were never sampled (a silence longer than timeout_s)" \
  [ "$(sql slow.db "select count(*) from client_metrics where name='samples' and client in (0, 2)")" = 0 ]

# transport: local keeps everything in one process even under mpirun (each rank its own run).
expect_ok "transport: local under mpirun" "${MPIRUN[@]}" -n 2 "$MPSL" run fusion.yaml --db local.db \
  --set transport.mode=local --set train.epochs=1
check "transport local: two independent local runs" \
  [ "$(sql local.db "select count(*) || ' ' || group_concat(distinct transport) from runs")" = "2 local" ]

echo "$checks checks, $failures failures"
[ "$failures" -eq 0 ]
