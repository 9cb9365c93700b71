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
finish
