#!/usr/bin/env bash
# e2e_database.sh: two runs writing one database at the same time both keep every row; an
# unwritable, corrupt or locked database is refused before training with a clear message.
source "$(dirname "$0")/lib.sh"
EXP="$MPSL_SOURCE/experiments"

# Two concurrent runs on one file.
"$MPSL" run "$EXP/fmnist_fedavg.yaml" --db shared.db "${QUICK[@]}" --set train.epochs=2 2>a.log &
pa=$!
"$MPSL" run "$EXP/fmnist_centralized.yaml" --db shared.db "${QUICK[@]}" --set train.epochs=2 2>b.log &
pb=$!
wait $pa; ra=$?
wait $pb; rb=$?
check "first concurrent run exits 0 (got $ra)" [ $ra = 0 ]
check "second concurrent run exits 0 (got $rb)" [ $rb = 0 ]
check "both finished" [ "$(sql shared.db "select count(*) from runs where status='finished'")" = 2 ]
for id in 1 2; do
  check "run $id has both epochs' test_acc" \
    [ "$(sql shared.db "select count(*) from epoch_metrics where run_id=$id and name='test_acc'")" = 2 ]
done
check "fedavg kept all client rows" \
  [ "$(sql shared.db "select count(*) from client_metrics where run_id=(select id from runs where method='fedavg') and name='train_acc'")" = 20 ]

# Corrupt: not a SQLite file. Refused, and the file is left as it was.
head -c 8192 /dev/urandom > corrupt.db
sum=$(sha256sum corrupt.db)
expect_refusal "corrupt database" "corrupt.db" "not a database" -- "$MPSL" run "$EXP/fmnist_fedavg.yaml" --db corrupt.db "${QUICK[@]}"
check "corrupt file untouched" [ "$(sha256sum corrupt.db)" = "$sum" ]
check "no training output for a corrupt db" not grep -q "epoch 1/" "$WORK/err"

# Unwritable: a location no one can create files in (root ignores file modes, so use /proc).
expect_refusal "unwritable database" "/proc/mpsl-results.db" -- "$MPSL" run "$EXP/fmnist_fedavg.yaml" --db /proc/mpsl-results.db "${QUICK[@]}"

# Locked: another process holds an exclusive lock for longer than the busy timeout.
cp shared.db locked.db
( echo "PRAGMA locking_mode=EXCLUSIVE; BEGIN EXCLUSIVE; SELECT count(*) FROM runs;"; sleep 8 ) \
  | sqlite3 locked.db >/dev/null 2>&1 &
locker=$!
sleep 1
MPSL_DB_BUSY_MS=500 expect_refusal "locked database" "locked.db" "lock" -- "$MPSL" run "$EXP/fmnist_fedavg.yaml" --db locked.db "${QUICK[@]}"
kill $locker 2>/dev/null; wait $locker 2>/dev/null
check "locked db still has its two runs" [ "$(sql locked.db 'select count(*) from runs')" = 2 ]

# A database of schema version 1 (before transport, ranks and hosts were recorded) is upgraded
# in place the first time a verb opens it, even a reading one; its runs keep their rows.
cp shared.db v1.db
sqlite3 v1.db "DROP VIEW run_params; DROP VIEW run_summary; DROP INDEX runs_sweep;
               DROP TABLE step_metrics; DROP TABLE run_sources;
               ALTER TABLE runs DROP COLUMN config_json; ALTER TABLE runs DROP COLUMN sweep_id;
               ALTER TABLE runs DROP COLUMN sweep_point; ALTER TABLE runs DROP COLUMN class_names;
               ALTER TABLE runs DROP COLUMN transport; ALTER TABLE runs DROP COLUMN n_ranks;
               ALTER TABLE runs DROP COLUMN hosts; DROP TABLE checkpoints; DROP VIEW run_times;
               PRAGMA user_version = 1;"
expect_ok "show on a version-1 database" "$MPSL" show 1 --db v1.db
check "upgraded to the current version (4)" [ "$(sql v1.db 'PRAGMA user_version')" = 4 ]
check "old runs' configs converted to JSON" [ "$(sql v1.db "select count(*) from runs where json_extract(config_json, '\$.train.epochs') = 2")" = 2 ]
check "with the checkpoints table" [ "$(sql v1.db "select count(*) from checkpoints")" = 0 ]
check "old runs ran in one process" [ "$(sql v1.db "select group_concat(transport || n_ranks) from runs")" = "local1,local1" ]
check "old runs' hosts are their host" [ "$(sql v1.db "select count(*) from runs where hosts = host")" = 2 ]

# The verbs refuse a database that is not there, rather than creating one.
expect_refusal "runs on a missing db" "missing.db" -- "$MPSL" runs --db missing.db
check "no file created" [ ! -e missing.db ]
finish
