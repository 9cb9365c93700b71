#!/usr/bin/env bash
# e2e_merge.sh: `mpsl merge` of databases of different schema versions (a schema-3 and a
# schema-1 fixture written by tests/results/make_old_db.py with the released DDL, and one
# written by real `mpsl run`s): every row of every table that has a run_id arrives, with its
# provenance; the sources stay byte-identical; duplicates, the output among the sources and
# bad sources are refused with nothing written. Also: an older database is upgraded in place
# by the verbs that open it (runs kept, config_json filled from the stored YAML).
source "$(dirname "$0")/lib.sh"
EXP="$MPSL_SOURCE/experiments"
MAKE_OLD=(python3 "$MPSL_SOURCE/tests/results/make_old_db.py")
TINY=(--set data.dataset.train_limit=600 --set data.dataset.test_limit=200 --set train.epochs=2)
export TMPDIR="$WORK/tmp"   # where merge puts upgraded copies: must be empty afterwards
mkdir -p "$TMPDIR"

# ---- the sources: schema 3 (its last run still 'running'), schema 1, and the current one
expect_ok "schema-3 fixture" "${MAKE_OLD[@]}" old3.db --schema 3 --running
expect_ok "schema-1 fixture" "${MAKE_OLD[@]}" old1.db --schema 1 --prefix v1run --host h1 --day 40
check "fixture is schema 3" [ "$(sql old3.db 'PRAGMA user_version')" = 3 ]
check "fixture is schema 1" [ "$(sql old1.db 'PRAGMA user_version')" = 1 ]
# checkpoints and step rows too, so that every table has rows to carry
expect_ok "first real run" "$MPSL" run "$EXP/fmnist_fedavg.yaml" --db new.db "${TINY[@]}" \
  --set train.checkpoint.every_epochs=1 --set metrics.every_steps=5
expect_ok "second real run" "$MPSL" run "$EXP/fmnist_centralized.yaml" --db new.db "${TINY[@]}"
check "current schema is 4" [ "$(sql new.db 'PRAGMA user_version')" = 4 ]
for f in old3 old1 new; do cp $f.db $f.orig; done

# ---- the merge
expect_ok "merge three databases" "$MPSL" merge old3.db old1.db new.db -o all.db
cp "$WORK/out" merge.out
cp "$WORK/err" merge.err
for f in old3 old1 new; do
  check "$f.db byte-identical after the merge" cmp -s $f.db $f.orig
  check "no -wal, -shm or journal made beside $f.db" [ -z "$(ls $f.db-* $f.db.journal 2>/dev/null)" ]
done
check "no temporary copies left" [ -z "$(ls -A "$TMPDIR")" ]
check "a line per source" grep -q "^old3.db: 3 runs copied (schema 3, upgraded in the copy)" merge.out
check "a line for schema 1" grep -q "^old1.db: 3 runs copied (schema 1, upgraded in the copy)" merge.out
check "a line for the current" grep -q "^new.db: 2 runs copied (schema 4)$" merge.out
check "a total" grep -q "^total: 8 runs copied into all.db (created)" merge.out
check "the running run named" grep -q "old3.db run 3 is still 'running'" merge.err
check "output at the current schema" [ "$(sql all.db 'PRAGMA user_version')" = 4 ]
check "8 runs" [ "$(sql all.db 'select count(*) from runs')" = 8 ]
check "running run copied as it is" [ "$(sql all.db "select status from runs where name = 'old_run_3'")" = running ]

# Every table with a run_id column, read from the schema (so a table added later is checked
# without being named here): the output holds the sum of the sources' rows, and some rows.
tables=$(sql all.db "select m.name from sqlite_master m where m.type = 'table'
  and exists (select 1 from pragma_table_info(m.name) where name = 'run_id') order by 1")
check "the per-run tables are found ($(echo $tables | wc -w))" [ "$(echo $tables | wc -w)" -ge 10 ]
count() { # count DB TABLE: its rows, 0 where the table is not in that schema
  if [ "$(sql "$1" "select count(*) from sqlite_master where type='table' and name='$2'")" = 1 ]
  then sql "$1" "select count(*) from \"$2\""; else echo 0; fi
}
for t in $tables; do
  got=$(count all.db "$t")
  if [ "$t" = run_sources ]; then want=8; else
    want=$(( $(count old3.db "$t") + $(count old1.db "$t") + $(count new.db "$t") )); fi
  check "$t: $got rows merged, the sources have $want" [ "$got" = "$want" ]
  check "$t has rows to check" [ "$got" -gt 0 ]
done
check "the runs' own columns arrive" [ "$(sql all.db "select group_concat(seed || host, ',') from runs")" = \
  "$(sql old3.db "select group_concat(seed || host, ',') from runs"),$(sql old1.db "select group_concat(seed || host, ',') from runs"),$(sql new.db "select group_concat(seed || host, ',') from runs")" ]
check "a run's metrics arrive with it" [ "$(sql all.db "select group_concat(value) from epoch_metrics where run_id = 8 order by epoch, name")" = \
  "$(sql new.db "select group_concat(value) from epoch_metrics where run_id = 2 order by epoch, name")" ]

# Provenance: absolute source path, the run's id there, the source's schema before upgrade.
check "provenance of the schema-3 runs" [ "$(sql all.db "select group_concat(source_run_id || ':' || source_schema) from run_sources where source_db = '$WORK/old3.db'")" = "1:3,2:3,3:3" ]
check "provenance of the schema-1 runs" [ "$(sql all.db "select group_concat(source_run_id || ':' || source_schema) from run_sources where source_db = '$WORK/old1.db'")" = "1:1,2:1,3:1" ]
check "provenance of the current runs" [ "$(sql all.db "select group_concat(run_id || ':' || source_run_id || ':' || source_schema) from run_sources where source_db = '$WORK/new.db'")" = "7:1:4,8:2:4" ]
check "one merge time" [ "$(sql all.db "select count(distinct merged_at) from run_sources where merged_at like '20__-__-__T%Z'")" = 1 ]
check "config_json filled for the old runs" [ "$(sql all.db "select group_concat(json_extract(config_json, '\$.train.epochs')) from runs where id <= 6")" = "3,4,5,3,4,5" ]
check "run_params reads the old runs" [ "$(sql all.db "select lr from run_params where run_id = 4")" = 0.003 ]
check "schema-1 runs ran in one process" [ "$(sql all.db "select group_concat(transport || n_ranks || hosts) from runs where host = 'h1'")" = "local1h1,local1h1,local1h1" ]
check "checkpoint paths kept" [ "$(sql all.db "select path from checkpoints where run_id = 7")" = "$(sql new.db "select path from checkpoints where run_id = 1")" ]
check "no foreign key broken" [ -z "$(sql all.db 'PRAGMA foreign_key_check')" ]

expect_ok "show a merged old run" "$MPSL" show 2 --db all.db
check "show has its name" grep -q old_run_2 "$WORK/out"
expect_ok "compare merged runs" "$MPSL" compare 2 4 7 8 --db all.db
check "compare has the schema-1 run" grep -q v1run_1 "$WORK/out"
expect_ok "runs lists them" "$MPSL" runs --db all.db
check "runs lists 8" [ "$(grep -c -E '^ *[0-9]+ ' "$WORK/out")" = 8 ]

# ---- duplicates: a second identical merge is refused, the output unchanged
sql all.db .dump > before.dump
cp all.db all.orig
expect_refusal "second identical merge" "already in all.db" "old3.db run 1 = all.db run 1" \
  "new.db run 2 = all.db run 8" "nothing written" -- "$MPSL" merge old3.db new.db -o all.db
check "output unchanged after the refusal (file)" cmp -s all.db all.orig
sql all.db .dump > after.dump
check "output unchanged after the refusal (dump)" cmp -s before.dump after.dump

# --dry-run says what would happen and writes nothing
expect_ok "dry run" "$MPSL" merge old3.db new.db -o all.db --skip-duplicates --dry-run
check "dry run counts" grep -q "^old3.db: 0 runs would be copied, 3 duplicates skipped" "$WORK/out"
check "dry run says nothing written" grep -q "nothing written" "$WORK/out"
check "dry run wrote nothing" cmp -s all.db all.orig
expect_ok "dry run to a new file" "$MPSL" merge old1.db -o fresh.db --dry-run
check "would be created" grep -q "^dry run: 3 runs would be copied into fresh.db (would be created)" "$WORK/out"
check "no file from a dry run" [ ! -e fresh.db ]

# --skip-duplicates: the new runs only, the others noted
expect_ok "third real run" "$MPSL" run "$EXP/fmnist_fedavg.yaml" --db new.db "${TINY[@]}"
expect_ok "skip duplicates" "$MPSL" merge old3.db new.db -o all.db --skip-duplicates
check "one new run copied" grep -q "^new.db: 1 run copied, 2 duplicates skipped (schema 4)" "$WORK/out"
check "skipped ones noted" grep -q "note: new.db run 1 = all.db run 7 (same start, host, name and config): skipped" "$WORK/err"
check "9 runs now" [ "$(sql all.db 'select count(*) from runs')" = 9 ]
check "the new run's origin" [ "$(sql all.db "select source_run_id from run_sources where run_id = 9")" = 3 ]

# The same file twice in one merge is a duplicate too.
expect_refusal "same file twice" "old1.db run 1 = old1.db run 1" "given twice" -- \
  "$MPSL" merge old1.db old1.db -o twice.db
check "no output from a refused merge" [ ! -e twice.db ]

# A merged database merged again keeps the ORIGINAL provenance.
expect_ok "merge a merged database" "$MPSL" merge all.db -o all2.db
check "original provenance kept" [ "$(sql all2.db "select group_concat(source_db || source_run_id || source_schema) from run_sources")" = \
  "$(sql all.db "select group_concat(source_db || source_run_id || source_schema) from run_sources")" ]
check "original merge time kept" [ "$(sql all2.db "select merged_at from run_sources where run_id = 1")" = \
  "$(sql all.db "select merged_at from run_sources where run_id = 1")" ]
# ... and the same origin is a duplicate even when the run changed since.
cp old1.orig renamed.db
expect_ok "merge a copy" "$MPSL" merge renamed.db -o prov.db
sqlite3 renamed.db "update runs set name = 'renamed' where id = 2"
expect_refusal "same origin" "renamed.db run 2 = prov.db run 2 (both come from $WORK/renamed.db run 2)" -- \
  "$MPSL" merge renamed.db -o prov.db
expect_refusal "the merged runs' origin" "all.db run 4 = all2.db run 4" -- "$MPSL" merge all.db -o all2.db

# ---- refusals before anything is written
cp all.db out.orig
expect_refusal "output among the sources" "output 'all.db' is also a source" -- \
  "$MPSL" merge old1.db all.db -o all.db
expect_refusal "output among the sources by another name" "is also a source" -- \
  "$MPSL" merge "$WORK/./all.db" -o all.db
expect_refusal "missing source" "source 'nothere.db' does not exist" -- \
  "$MPSL" merge old1.db nothere.db -o bad.db
sqlite3 foreign.db "create table t (x)"
expect_refusal "not an mpsl database" "source 'foreign.db'" "not an mpsl results database" -- \
  "$MPSL" merge foreign.db -o bad.db
echo "not a database" > text.db
expect_refusal "not SQLite" "source 'text.db' is not a SQLite database" -- "$MPSL" merge text.db -o bad.db
cp new.orig newer.db
sqlite3 newer.db "PRAGMA user_version = 99"
expect_refusal "newer schema" "source 'newer.db' has schema version 99" "upgrade mpsl" -- \
  "$MPSL" merge old1.db newer.db -o bad.db
head -c 12288 new.orig > corrupt.db
expect_refusal "corrupt source" "source 'corrupt.db' is corrupt" -- "$MPSL" merge corrupt.db -o bad.db
check "no output from refusals" [ ! -e bad.db ]
expect_refusal "refusal into an existing output" "source 'corrupt.db'" -- \
  "$MPSL" merge old1.db corrupt.db -o all.db
check "existing output unchanged by refusals" cmp -s all.db out.orig
expect_refusal "output not an mpsl database" "output 'foreign.db'" "not an mpsl results database" -- \
  "$MPSL" merge old1.db -o foreign.db
check "no temporary copies left after refusals" [ -z "$(ls -A "$TMPDIR")" ]

# usage
expect_refusal "no output" "which output" -- "$MPSL" merge old1.db
expect_refusal "no sources" "which sources" -- "$MPSL" merge -o x.db
"$MPSL" merge old1.db -o x.db --allow-duplicates 2>"$WORK/err"; rc=$?
check "unknown option is a usage error (exit $rc)" [ $rc = 2 ]
check "pointing at --skip-duplicates" grep -q -- "--skip-duplicates" "$WORK/err"

# ---- an older output is upgraded first, then appended to
cp old1.orig into1.db
expect_ok "merge into a schema-1 database" "$MPSL" merge new.db -o into1.db
check "says it upgraded" grep -q "upgraded from schema 1 first" "$WORK/out"
check "output upgraded" [ "$(sql into1.db 'PRAGMA user_version')" = 4 ]
check "its own runs kept" [ "$(sql into1.db "select count(*) from runs where host = 'h1'")" = 3 ]
check "and the merged ones" [ "$(sql into1.db 'select count(*) from run_sources')" = 3 ]

# ---- a journal waiting beside a source is applied in the copy, not in the source
cp old3.orig journal.db
printf 'mpsl-status\t3\tfailed\t12.5\t1000\tkilled by the test\n' > journal.db.journal
cp journal.db.journal journal.orig
expect_ok "merge with a journal" "$MPSL" merge journal.db -o jm.db
check "journal applied in the copy" [ "$(sql jm.db "select status || ':' || message from runs where name = 'old_run_3'")" = "failed:killed by the test" ]
check "source untouched" cmp -s journal.db old3.orig
check "its journal untouched" cmp -s journal.db.journal journal.orig

# ---- upgrades in place: the previous release's database opened by a verb
cp old3.orig up.db
expect_ok "runs on a schema-3 database" "$MPSL" runs --db up.db
check "upgraded in place to 4" [ "$(sql up.db 'PRAGMA user_version')" = 4 ]
check "its runs intact" [ "$(sql up.db "select count(*) || ':' || (select count(*) from epoch_metrics) || ':' || (select count(*) from checkpoints) from runs")" = \
  "$(sql old3.orig "select count(*) || ':' || (select count(*) from epoch_metrics) || ':' || (select count(*) from checkpoints) from runs")" ]
check "config_json answers for the old runs" [ "$(sql up.db "select group_concat(json_extract(config_json, '\$.train.epochs')) from runs")" = "3,4,5" ]
cp old3.orig up_run.db
expect_ok "run into a schema-3 database" "$MPSL" run "$EXP/fmnist_fedavg.yaml" --db up_run.db "${TINY[@]}"
check "upgraded by run" [ "$(sql up_run.db 'PRAGMA user_version')" = 4 ]
check "old runs and the new one" [ "$(sql up_run.db "select group_concat(json_extract(config_json, '\$.train.epochs')) from runs")" = "3,4,5,2" ]
finish
