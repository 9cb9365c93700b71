#!/usr/bin/env bash
# e2e_supervise.sh: every run ends with the truth. `mpsl run` watches the run's process: a
# plugin that crashes (SIGSEGV), calls abort() or calls exit(0) during training, and a run
# killed with SIGKILL, leave their run marked failed (never 'running') with the cause and the
# last epoch and step, and the command exits non-zero (128 + signal, or 1; never 0). A sweep
# point that dies the same way is a failure and the sweep stops with a non-zero status.
source "$(dirname "$0")/lib.sh"

cat > tiny.yaml <<YAML
name: tiny
seed: 3
data:
  dataset: {plugin: two_modalities, n_train: 600, n_test: 100}
  clients: 2
  partition: {scheme: iid}
model:
  tokenizers:
    image: {plugin: image_patch, patch: 4, dim: 16}
  encoder: {plugin: counting_encoder, log: $WORK/calls.log}
  head: {plugin: classifier, pool: mean}
strategy: {plugin: mpsl}
train: {epochs: 3, batch_size: 32}
YAML

# crash HOW EXPECTED-EXIT NEEDLE
crash() {
  local how=$1 want=$2 needle=$3 db="crash_$1.db"
  # Under AddressSanitizer (scripts/test.sh --sanitize) the plugin's SIGSEGV must stay a
  # signal, not become ASan's report, and its exit(0) in mid-run must stay a 0, not become
  # LeakSanitizer's 1 for what the run still held.
  local asan=${ASAN_OPTIONS:-}
  if [ -n "$asan" ]; then
    case $how in
      segv) asan="$asan:handle_segv=0" ;;
      exit0) asan="$asan:detect_leaks=0" ;;
    esac
  fi
  ASAN_OPTIONS=$asan MPSL_TEST_CRASH=$how MPSL_TEST_CRASH_AT=30 "$MPSL" run tiny.yaml --db "$db" >"$how.out" 2>"$how.err"
  local rc=$?
  check "$how: exit status $want (got $rc)" [ "$rc" = "$want" ]
  check "$how: run marked failed" [ "$(sql "$db" "select status from runs where id=1")" = failed ]
  local msg; msg=$(sql "$db" "select message from runs where id=1")
  check "$how: the message gives the cause ($msg)" grep -q -- "$needle" <<<"$msg"
  check "$how: the message gives the epoch and step ($msg)" grep -q "during epoch 2 (after step" <<<"$msg"
  check "$how: the command says so" grep -q "run 1 failed" "$how.err"
}
# 600 samples, batch 32: 19 steps an epoch, one encoder forward each (plus evaluation): the
# 30th forward call is in the second epoch.
crash segv 139 "killed by SEGV"
crash abort 134 "killed by ABRT"
crash exit0 1 "exited with status 0 without recording how the run ended"

# A kernel handed an input out of range (an embedding id past its table) fails the module
# call that ran it, with the kernel's message, in every build (not an assert).
MPSL_TEST_CRASH=kernel MPSL_TEST_CRASH_AT=30 "$MPSL" run tiny.yaml --db kernel.db >kernel.out 2>kernel.err
rc=$?
check "kernel error: exit status 1 (got $rc)" [ "$rc" = 1 ]
check "kernel error: run marked failed" [ "$(sql kernel.db "select status from runs where id=1")" = failed ]
msg=$(sql kernel.db "select message from runs where id=1")
check "kernel error: the message names the module and the kernel ($msg)" \
  grep -q "encoder plugin 'counting_encoder' forward: embedding_forward: id 3 at row 0 is outside the vocabulary 0..1" <<<"$msg"

# SIGKILL to the run's process (the child of the command).
"$MPSL" run tiny.yaml --db kill.db --set train.epochs=100000 2>kill.err &
parent=$!
for _ in $(seq 1 300); do
  [ "$(sql kill.db "select count(*) from epoch_metrics where name='test_acc'" 2>/dev/null || echo 0)" -ge 1 ] && break
  sleep 0.1
done
child=$(pgrep -P $parent | head -n 1)
check "the run has its own process ($child)" [ -n "$child" ]
kill -KILL "$child"
wait $parent; rc=$?
check "SIGKILL: exit status 137 (got $rc)" [ "$rc" = 137 ]
check "SIGKILL: run marked failed" [ "$(sql kill.db "select status from runs where id=1")" = failed ]
check "SIGKILL: the message names the signal" grep -q "killed by KILL" <<<"$(sql kill.db "select message from runs where id=1")"

# A sweep whose second point calls exit(0): a failure; the sweep stops and exits non-zero.
cat tiny.yaml > sweep.yaml
printf 'sweep:\n  train.batch_size: [64, 32, 16]\n' >> sweep.yaml
# (Under AddressSanitizer without leak checking, as crash exit0 above.)
asan=${ASAN_OPTIONS:-}
[ -z "$asan" ] || asan="$asan:detect_leaks=0"
ASAN_OPTIONS=$asan MPSL_TEST_CRASH=exit0 MPSL_TEST_CRASH_AT=30 "$MPSL" run sweep.yaml --db sweep.db >sweep.out 2>sweep.err
rc=$?
check "sweep: exit status non-zero (got $rc)" [ "$rc" -ne 0 ]
# batch 64: 10 steps an epoch, 3 epochs = 30 forward calls + evaluations: the 30th call is in
# epoch 3 or evaluation... so count on the statuses, not on which point failed first.
check "sweep: no run left running" [ "$(sql sweep.db "select count(*) from runs where status='running'")" = 0 ]
check "sweep: a failed point" [ "$(sql sweep.db "select count(*) from runs where status='failed'")" -ge 1 ]
check "sweep: stopped at the failure" [ "$(sql sweep.db "select count(*) from runs where id > (select min(id) from runs where status='failed')")" = 0 ]

# SIGINT or SIGTERM to a sweep's process reaches the running point, which ends interrupted;
# the sweep starts no further point and exits 130.
for sig in INT TERM; do
  db="sweep_$sig.db"
  cat tiny.yaml > long.yaml
  printf 'sweep:\n  train.epochs: [100000, 100000]\n' >> long.yaml
  "$MPSL" run long.yaml --db "$db" >/dev/null 2>"long_$sig.err" &
  pid=$!
  for _ in $(seq 1 300); do
    [ "$(sql "$db" "select count(*) from epoch_metrics where name='test_acc'" 2>/dev/null || echo 0)" -ge 1 ] && break
    sleep 0.1
  done
  kill -s "$sig" $pid
  wait $pid; rc=$?
  check "sweep SIG$sig: exit status 130 (got $rc)" [ "$rc" = 130 ]
  check "sweep SIG$sig: the point is marked interrupted" [ "$(sql "$db" "select group_concat(status) from runs")" = interrupted ]
done

# Rerunning a sweep skips the points that finished (matched by their resolved config), so a
# stopped sweep picks up where it stopped; --rerun runs them again; --jobs N runs N at once.
cat tiny.yaml > three.yaml
printf 'sweep:\n  train.batch_size: [64, 32, 16]\n' >> three.yaml
expect_ok "a sweep of three" "$MPSL" run three.yaml --db three.db --set train.epochs=1
check "three runs" [ "$(sql three.db "select count(*) from runs where status='finished'")" = 3 ]
expect_ok "the same sweep again" "$MPSL" run three.yaml --db three.db --set train.epochs=1
check "nothing ran again" [ "$(sql three.db "select count(*) from runs")" = 3 ]
check "it says which points were skipped" [ "$(grep -c 'finished before as run' "$WORK/err")" = 3 ]
check "the comparison still shows the three" grep -q "^id  *1  *2  *3" "$WORK/out"
expect_ok "a changed point runs" "$MPSL" run three.yaml --db three.db --set train.epochs=2
check "three new runs for two epochs" [ "$(sql three.db "select count(*) from runs")" = 6 ]
expect_ok "--rerun" "$MPSL" run three.yaml --db three.db --set train.epochs=1 --rerun
check "--rerun ran all three again" [ "$(sql three.db "select count(*) from runs")" = 9 ]

cat tiny.yaml > four.yaml
printf 'sweep:\n  seed: [1, 2, 3, 4]\n' >> four.yaml
expect_ok "--jobs 2" "$MPSL" run four.yaml --db jobs.db --set data.dataset.n_train=3000 --jobs 2
check "--jobs 2: four runs finished" [ "$(sql jobs.db "select count(*) from runs where status='finished'")" = 4 ]
check "--jobs 2: runs overlapped in time" [ "$(sql jobs.db "select count(*) from runs a join runs b on a.id < b.id where a.started_at < b.ended_at and b.started_at < a.ended_at")" -ge 1 ]
expect_refusal "--jobs 0 is refused" "--jobs wants a number from 1 to" -- "$MPSL" run four.yaml --db jobs.db --jobs 0

# The final status cannot be written (a database locked past the busy timeout, a full disk;
# simulated): it goes to DB.journal, and the next write-open of the database applies it.
MPSL_TEST_STATUS_WRITE_FAILS=1 expect_ok "a run whose status write fails" \
  "$MPSL" run tiny.yaml --db journal.db --set train.epochs=1
check "the message names the journal" grep -q "saved in journal.db.journal" "$WORK/err"
check "the journal holds the status" grep -q "^mpsl-status	1	finished	" journal.db.journal
check "until then the run is still running" [ "$(sql journal.db "select status from runs where id=1")" = running ]
expect_ok "the next run" "$MPSL" run tiny.yaml --db journal.db --set train.epochs=1
check "the journal was applied" [ "$(sql journal.db "select group_concat(status) from runs")" = "finished,finished" ]
check "and removed" [ ! -e journal.db.journal ]

# Non-finite numbers: SGD at a huge learning rate makes the loss NaN. By default the run stops
# as failed naming the party, epoch and step; train.on_nonfinite: warn says so once and goes on.
expect_refusal "a NaN loss stops the run" "training loss is" "(after step" "train.on_nonfinite" -- \
  "$MPSL" run tiny.yaml --db nan.db --set strategy.plugin=centralized \
  --set "train.optimizer={name: sgd, lr: 10}"
check "NaN: the run is marked failed" [ "$(sql nan.db "select status from runs where id=1")" = failed ]
check "NaN: the message names the party" grep -q "^the server: the training loss is" <<<"$(sql nan.db "select message from runs where id=1")"
expect_ok "on_nonfinite: warn goes on" "$MPSL" run tiny.yaml --db nan.db --set strategy.plugin=fedavg \
  --set "train.optimizer={name: sgd, lr: 10}" --set train.on_nonfinite=warn
check "warn: the run finished" [ "$(sql nan.db "select status from runs where id=2")" = finished ]
check "warn: a warning per party, once" [ "$(grep -c 'going on (train.on_nonfinite: warn' "$WORK/err")" -ge 1 ]

# A strategy whose roles wait for messages nobody sends: the run fails naming who waits for
# what (in one process the driver sees that no role can continue), never hangs.
expect_refusal "the server waits forever" "no role can continue (deadlock)" \
  "the server waits for scalars from client 0, which has ended" -- \
  timeout 60 "$MPSL" run tiny.yaml --db deadlock.db --set strategy.plugin=deadlock_strategy
expect_refusal "the clients wait forever" "client 0 waits for logits from the server, which has ended" \
  -- timeout 60 "$MPSL" run tiny.yaml --db deadlock.db --set strategy.plugin=deadlock_strategy \
  --set strategy.client_waits=true
check "deadlocked runs are marked failed" [ "$(sql deadlock.db "select group_concat(status) from runs")" = "failed,failed" ]

# The head's output is checked against the dataset before anything is recorded.
expect_refusal "a head of the wrong size" "outputs 7 scores per sample" "has 4 classes" -- \
  "$MPSL" run tiny.yaml --db contract.db --set "model.head={plugin: sized_head, outputs: 7}"
expect_refusal "an absurd head size" "each sample's output must have 1 to" -- \
  "$MPSL" run tiny.yaml --db contract.db --set "model.head={plugin: sized_head, outputs: 4000000000000}"
check "nothing recorded for refused experiments" [ ! -e contract.db ]
finish
