/* schema.c: the versioned schema of the results database. Each step takes the database from
 * version N-1 to N; store_open applies the missing steps in its one write transaction and
 * sets PRAGMA user_version. A released step never changes: add a new one at the end (and
 * document it in docs/results-schema.md). */
#include <stdio.h>
#include <stdlib.h>

#include "config/config.h"
#include "store_internal.h"
#include "util/util.h"

/* The rows of compute (alias c) that count: per-client rows, and a total row (client -1)
 * only where its run, epoch, party and pass has no per-client rows, so that a total is never
 * added to its parts. An index lookup, usable inside correlated subqueries (where SQLite
 * does not push the run id into a grouped view). */
#define COMPUTE_NOT_DOUBLE                                                                 \
    "(c.client >= 0 OR NOT EXISTS (SELECT 1 FROM compute d WHERE d.run_id = c.run_id"     \
    " AND d.epoch = c.epoch AND d.party = c.party AND d.pass = c.pass AND d.client >= 0))"

/* run_summary, one row per run. It uses correlated subqueries (each an index lookup on run_id)
 * rather than joins to aggregates, so that filtering a few runs never aggregates the whole
 * file. EXTRA: the columns a later version appends (version 1 has none). */
#define RUN_SUMMARY_VIEW(EXTRA) \
    "CREATE VIEW run_summary AS\n" \
    "  SELECT r.id, r.name, r.method, r.dataset, r.n_clients, r.status,\n" \
    "         r.started_at, r.ended_at,\n" \
    "         (SELECT COUNT(DISTINCT e.epoch) FROM epoch_metrics e WHERE e.run_id = r.id)\n" \
    "           AS epochs,\n" \
    "         (SELECT e.value FROM epoch_metrics e WHERE e.run_id = r.id\n" \
    "            AND e.name = 'test_acc' ORDER BY e.epoch DESC LIMIT 1) AS final_test_acc,\n" \
    "         (SELECT MAX(e.value) FROM epoch_metrics e WHERE e.run_id = r.id\n" \
    "            AND e.name = 'test_acc') AS best_test_acc,\n" \
    "         (SELECT e.value FROM epoch_metrics e WHERE e.run_id = r.id\n" \
    "            AND e.name = 'test_loss' ORDER BY e.epoch DESC LIMIT 1) AS final_test_loss,\n" \
    "         (SELECT SUM(c.bytes) FROM comm c WHERE c.run_id = r.id AND c.direction = 'up')\n" \
    "           * 1.0 / NULLIF(COALESCE(r.n_clients, (SELECT COUNT(DISTINCT c.client)\n" \
    "                                     FROM comm c WHERE c.run_id = r.id)), 0)\n" \
    "           AS bytes_up_per_client,\n" \
    "         (SELECT SUM(c.bytes) FROM comm c WHERE c.run_id = r.id AND c.direction = 'down')\n" \
    "           * 1.0 / NULLIF(COALESCE(r.n_clients, (SELECT COUNT(DISTINCT c.client)\n" \
    "                                     FROM comm c WHERE c.run_id = r.id)), 0)\n" \
    "           AS bytes_down_per_client,\n" \
    "         (SELECT SUM(c.bytes) FROM comm c WHERE c.run_id = r.id AND c.direction = 'up')\n" \
    "           AS bytes_up,\n" \
    "         (SELECT SUM(c.bytes) FROM comm c WHERE c.run_id = r.id AND c.direction = 'down')\n" \
    "           AS bytes_down,\n" \
    "         (SELECT SUM(c.flops) FROM compute c WHERE c.run_id = r.id\n" \
    "            AND c.party = 'client' AND " COMPUTE_NOT_DOUBLE ") AS client_flops,\n" \
    "         (SELECT SUM(c.flops) FROM compute c WHERE c.run_id = r.id\n" \
    "            AND c.party = 'client' AND " COMPUTE_NOT_DOUBLE ")\n" \
    "           / NULLIF(r.n_clients, 0) AS client_flops_per_client,\n" \
    "         (SELECT SUM(c.flops) FROM compute c WHERE c.run_id = r.id\n" \
    "            AND c.party = 'server' AND " COMPUTE_NOT_DOUBLE ") AS server_flops,\n" \
    "         r.wall_seconds,\n" \
    "         COALESCE(r.peak_rss_bytes,\n" \
    "                  (SELECT CAST(MAX(e.value) AS INTEGER) FROM epoch_metrics e\n" \
    "                   WHERE e.run_id = r.id AND e.name = 'peak_rss_bytes'))\n" \
    "           AS peak_rss_bytes\n" \
    EXTRA "\n" \
    "  FROM runs r;\n"

/* Version 1: the initial schema. */
static const char *const schema_v1[] = {
    "CREATE TABLE meta (\n"
    "  key   TEXT PRIMARY KEY,\n"
    "  value TEXT\n"
    ");\n",
    "CREATE TABLE runs (\n"
    "  id              INTEGER PRIMARY KEY,\n"
    "  name            TEXT NOT NULL,\n"
    "  experiment_path TEXT,\n"
    "  config_yaml     TEXT,\n"
    "  seed,\n" /* no type: integers stay integers, seeds >= 2^63 are stored as text */
    "  method          TEXT,\n"
    "  dataset         TEXT,\n"
    "  revision        TEXT,\n"
    "  mpsl_version    TEXT,\n"
    "  host            TEXT,\n"
    "  n_clients       INTEGER,\n"
    "  status          TEXT NOT NULL DEFAULT 'running'\n"
    "                  CHECK (status IN ('running','finished','failed','interrupted')),\n"
    "  message         TEXT,\n"
    "  started_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),\n"
    "  ended_at        TEXT,\n"
    "  wall_seconds    REAL,\n"
    "  peak_rss_bytes  INTEGER\n"
    ");\n",
    "CREATE INDEX runs_status ON runs(status);\n",
    "CREATE INDEX runs_method ON runs(method);\n",
    "CREATE INDEX runs_dataset ON runs(dataset);\n",
    "CREATE TABLE run_plugins (\n"
    "  run_id  INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,\n"
    "  slot    TEXT NOT NULL,\n"
    "  name    TEXT NOT NULL,\n"
    "  version TEXT,\n"
    "  path    TEXT,\n"
    "  abi     TEXT\n"
    ");\n",
    "CREATE INDEX run_plugins_run ON run_plugins(run_id);\n",
    "CREATE TABLE run_tags (\n"
    "  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,\n"
    "  tag    TEXT NOT NULL,\n"
    "  PRIMARY KEY (run_id, tag)\n"
    ");\n",
    "CREATE INDEX run_tags_tag ON run_tags(tag);\n",
    "CREATE TABLE epoch_metrics (\n"
    "  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,\n"
    "  epoch  INTEGER NOT NULL,\n"
    "  name   TEXT NOT NULL,\n"
    "  value  REAL,\n"
    "  PRIMARY KEY (run_id, epoch, name)\n"
    ");\n",
    "CREATE TABLE client_metrics (\n"
    "  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,\n"
    "  epoch  INTEGER NOT NULL,\n"
    "  client INTEGER NOT NULL,\n"
    "  name   TEXT NOT NULL,\n"
    "  value  REAL,\n"
    "  PRIMARY KEY (run_id, epoch, client, name)\n"
    ");\n",
    "CREATE TABLE comm (\n"
    "  run_id    INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,\n"
    "  epoch     INTEGER NOT NULL,\n"
    "  client    INTEGER NOT NULL,\n"
    "  direction TEXT NOT NULL CHECK (direction IN ('up','down')),\n"
    "  kind      TEXT NOT NULL,\n"
    "  bytes     INTEGER NOT NULL CHECK (bytes >= 0),\n"
    "  messages  INTEGER NOT NULL CHECK (messages >= 0),\n"
    "  PRIMARY KEY (run_id, epoch, client, direction, kind)\n"
    ");\n",
    "CREATE TABLE compute (\n"
    "  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,\n"
    "  epoch  INTEGER NOT NULL,\n"
    "  party  TEXT NOT NULL CHECK (party IN ('client','server')),\n"
    "  client INTEGER NOT NULL DEFAULT -1,\n"
    "  pass   TEXT NOT NULL CHECK (pass IN ('forward','backward')),\n"
    "  flops  REAL NOT NULL CHECK (flops >= 0),\n"
    "  PRIMARY KEY (run_id, epoch, party, client, pass)\n"
    ");\n",
    "CREATE TABLE client_data (\n"
    "  run_id          INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,\n"
    "  client          INTEGER NOT NULL,\n"
    "  n_samples       INTEGER NOT NULL CHECK (n_samples >= 0),\n"
    "  class_histogram TEXT NOT NULL DEFAULT '[]',\n"
    "  PRIMARY KEY (run_id, client)\n"
    ");\n",
    /* Views. Client FLOPs may be recorded per client or as one total row (client = -1):
     * per-client rows win where both exist (COMPUTE_NOT_DOUBLE). */
    "CREATE VIEW compute_totals AS\n"
    "  SELECT c.run_id, c.epoch, c.party, c.pass, SUM(c.flops) AS flops\n"
    "  FROM compute c WHERE " COMPUTE_NOT_DOUBLE "\n"
    "  GROUP BY c.run_id, c.epoch, c.party, c.pass;\n",
    "CREATE VIEW comm_per_client AS\n"
    "  SELECT run_id, client,\n"
    "         SUM(CASE WHEN direction = 'up' THEN bytes ELSE 0 END) AS bytes_up,\n"
    "         SUM(CASE WHEN direction = 'down' THEN bytes ELSE 0 END) AS bytes_down,\n"
    "         SUM(CASE WHEN direction = 'up' THEN messages ELSE 0 END) AS messages_up,\n"
    "         SUM(CASE WHEN direction = 'down' THEN messages ELSE 0 END) AS messages_down\n"
    "  FROM comm GROUP BY run_id, client;\n",
    "CREATE VIEW comm_by_kind AS\n"
    "  SELECT run_id, direction, kind, SUM(bytes) AS bytes, SUM(messages) AS messages,\n"
    "         COUNT(DISTINCT client) AS clients\n"
    "  FROM comm GROUP BY run_id, direction, kind;\n",
    "CREATE VIEW epoch_wide AS\n"
    "  SELECT m.run_id, m.epoch,\n"
    "         MAX(CASE WHEN m.name = 'test_acc' THEN m.value END) AS test_acc,\n"
    "         MAX(CASE WHEN m.name = 'test_loss' THEN m.value END) AS test_loss,\n"
    "         MAX(CASE WHEN m.name = 'train_acc' THEN m.value END) AS train_acc,\n"
    "         MAX(CASE WHEN m.name = 'train_loss' THEN m.value END) AS train_loss,\n"
    "         MAX(CASE WHEN m.name = 'epoch_seconds' THEN m.value END) AS epoch_seconds,\n"
    "         MAX(CASE WHEN m.name = 'peak_rss_bytes' THEN m.value END) AS peak_rss_bytes,\n"
    "         (SELECT SUM(c.bytes) FROM comm c WHERE c.run_id = m.run_id\n"
    "            AND c.epoch = m.epoch AND c.direction = 'up') AS bytes_up,\n"
    "         (SELECT SUM(c.bytes) FROM comm c WHERE c.run_id = m.run_id\n"
    "            AND c.epoch = m.epoch AND c.direction = 'down') AS bytes_down,\n"
    "         (SELECT SUM(c.flops) FROM compute c WHERE c.run_id = m.run_id\n"
    "            AND c.epoch = m.epoch AND c.party = 'client' AND " COMPUTE_NOT_DOUBLE ")\n"
    "           AS client_flops,\n"
    "         (SELECT SUM(c.flops) FROM compute c WHERE c.run_id = m.run_id\n"
    "            AND c.epoch = m.epoch AND c.party = 'server' AND " COMPUTE_NOT_DOUBLE ")\n"
    "           AS server_flops\n"
    "  FROM epoch_metrics m GROUP BY m.run_id, m.epoch;\n",
    RUN_SUMMARY_VIEW(""),
    NULL,
};

/* Version 2: where a run's parties ran. transport: "local" (one process) or "mpi";
 * n_ranks: its processes; hosts: their distinct host names, comma-separated. Runs recorded
 * before version 2 ran in one process. */
static const char *const schema_v2[] = {
    "ALTER TABLE runs ADD COLUMN transport TEXT NOT NULL DEFAULT 'local';\n",
    "ALTER TABLE runs ADD COLUMN n_ranks INTEGER NOT NULL DEFAULT 1;\n",
    "ALTER TABLE runs ADD COLUMN hosts TEXT;\n",
    "UPDATE runs SET hosts = host WHERE hosts IS NULL;\n",
    NULL,
};

/* Version 3: checkpoints written for a run (train.checkpoint), newest kept; `mpsl resume`
 * continues from the newest one that verifies. epoch: the epochs done when it was written;
 * step: the steps done in the next epoch (0 for a checkpoint at an epoch's end). */
static const char *const schema_v3[] = {
    "CREATE TABLE checkpoints (\n"
    "  run_id     INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,\n"
    "  epoch      INTEGER NOT NULL,\n"
    "  step       INTEGER NOT NULL DEFAULT 0,\n"
    "  path       TEXT NOT NULL,\n"
    "  bytes      INTEGER,\n"
    "  written_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),\n"
    "  PRIMARY KEY (run_id, epoch, step)\n"
    ");\n",
    /* Measured time per party over the whole run (schema 2's per-epoch figures, summed): the
     * server's role, and a client's on average. NULL where nothing was recorded. */
    "CREATE VIEW run_times AS\n"
    "  SELECT r.id AS run_id,\n"
    "         (SELECT SUM(e.value) FROM epoch_metrics e WHERE e.run_id = r.id\n"
    "            AND e.name = 'server_compute_seconds') AS server_compute_seconds,\n"
    "         (SELECT SUM(e.value) FROM epoch_metrics e WHERE e.run_id = r.id\n"
    "            AND e.name = 'server_wait_seconds') AS server_wait_seconds,\n"
    "         (SELECT SUM(m.value) / NULLIF(COUNT(DISTINCT m.client), 0) FROM client_metrics m\n"
    "            WHERE m.run_id = r.id AND m.name = 'compute_seconds') AS client_compute_seconds,\n"
    "         (SELECT SUM(m.value) / NULLIF(COUNT(DISTINCT m.client), 0) FROM client_metrics m\n"
    "            WHERE m.run_id = r.id AND m.name = 'wait_seconds') AS client_wait_seconds\n"
    "  FROM runs r;\n",
    NULL,
};

/* Version 4: research-grade results. runs gains config_json (the resolved config as JSON, so
 * json_extract(config_json, '$.train.optimizer.lr') works; older runs get it converted from
 * their YAML by the step's fill function), sweep_id (one id shared by the points of one
 * sweep) and sweep_point (the point's swept keys and values as a JSON object), class_names
 * (the dataset's names of its classes, a JSON array, NULL when it names none).
 * step_metrics holds figures every metrics.every_steps training steps; run_sources where a
 * merged run came from; run_params the common hyperparameters as columns; run_summary gains
 * seed, sweep_id and sweep_point (appended, so earlier columns keep their places). */
static const char *const schema_v4[] = {
    "ALTER TABLE runs ADD COLUMN config_json TEXT;\n",
    "ALTER TABLE runs ADD COLUMN sweep_id TEXT;\n",
    "ALTER TABLE runs ADD COLUMN sweep_point TEXT;\n",
    "ALTER TABLE runs ADD COLUMN class_names TEXT;\n",
    "CREATE INDEX runs_sweep ON runs(sweep_id);\n",
    /* step: the role's training steps in this epoch, counted from 1; client -1: the server's
     * (or the whole run's) figure, k >= 0: client k's own. */
    "CREATE TABLE step_metrics (\n"
    "  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,\n"
    "  epoch  INTEGER NOT NULL,\n"
    "  step   INTEGER NOT NULL,\n"
    "  client INTEGER NOT NULL DEFAULT -1,\n"
    "  name   TEXT NOT NULL,\n"
    "  value  REAL,\n"
    "  PRIMARY KEY (run_id, epoch, step, client, name)\n"
    ");\n",
    "CREATE TABLE run_sources (\n"
    "  run_id        INTEGER PRIMARY KEY REFERENCES runs(id) ON DELETE CASCADE,\n"
    "  source_db     TEXT NOT NULL,\n"
    "  source_run_id INTEGER NOT NULL,\n"
    "  source_schema INTEGER,\n"
    "  merged_at     TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now'))\n"
    ");\n",
    "CREATE VIEW run_params AS\n"
    "  SELECT r.id AS run_id, r.name, r.seed, r.sweep_id, r.method AS strategy, r.dataset,\n"
    "         json_extract(r.config_json, '$.data.clients') AS clients,\n"
    "         json_extract(r.config_json, '$.data.partition.scheme') AS partition,\n"
    "         json_extract(r.config_json, '$.data.partition.alpha') AS alpha,\n"
    "         json_extract(r.config_json, '$.strategy.mu') AS mu,\n"
    "         json_extract(r.config_json, '$.strategy.fraction') AS fraction,\n"
    "         json_extract(r.config_json, '$.strategy.local_epochs') AS local_epochs,\n"
    "         json_extract(r.config_json, '$.train.optimizer.name') AS optimizer,\n"
    "         json_extract(r.config_json, '$.train.optimizer.lr') AS lr,\n"
    "         json_extract(r.config_json, '$.train.batch_size') AS batch_size,\n"
    "         json_extract(r.config_json, '$.train.epochs') AS epochs,\n"
    "         json_extract(r.config_json, '$.model.encoder.plugin') AS encoder,\n"
    "         (SELECT json_extract(t.value, '$.dim') FROM json_each(r.config_json,\n"
    "            '$.model.tokenizers') t LIMIT 1) AS width,\n"
    "         json_extract(r.config_json, '$.model.encoder.depth') AS depth,\n"
    "         json_extract(r.config_json, '$.model.encoder.heads') AS heads,\n"
    "         json_extract(r.config_json, '$.model.fusion') AS fusion\n"
    "  FROM runs r;\n",
    "DROP VIEW IF EXISTS run_summary;\n",
    RUN_SUMMARY_VIEW(", r.seed, r.sweep_id, r.sweep_point"),
    NULL,
};

/* Version 4's fill: every run recorded before it gets config_json from its config_yaml. A
 * stored YAML that no longer parses (it always did when it was written) keeps NULL. */
static int fill_config_json(store *s, mpsl_error *err)
{
    sqlite3_stmt *sel = NULL, *upd = NULL;
    int rc = sqlite3_prepare_v2(s->db, "SELECT id, config_yaml FROM runs WHERE config_json IS "
                                "NULL AND config_yaml IS NOT NULL", -1, &sel, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_prepare_v2(s->db, "UPDATE runs SET config_json = ?2 WHERE id = ?1", -1,
                                &upd, NULL);
    }
    while (rc == SQLITE_OK && (rc = sqlite3_step(sel)) == SQLITE_ROW) {
        rc = SQLITE_OK;
        mpsl_error ignored = {{0}};
        cfg_node *root = cfg_parse_string((const char *)sqlite3_column_text(sel, 1),
                                          "stored config", &ignored);
        char *json = root ? cfg_to_json(root) : NULL;
        cfg_free(root);
        if (json) {
            sqlite3_bind_int64(upd, 1, sqlite3_column_int64(sel, 0));
            sqlite3_bind_text(upd, 2, json, -1, free);
            rc = sqlite3_step(upd) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(s->db);
            sqlite3_reset(upd);
        }
    }
    rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
    sqlite3_finalize(sel);
    sqlite3_finalize(upd);
    return rc == SQLITE_OK ? MPSL_OK : store_sql_error(s, rc, "converting stored configs to JSON",
                                                      err);
}

typedef struct schema_step {
    int version;                /* the version this step produces */
    const char *const *sql;     /* statements, NULL-terminated */
    int (*fill)(store *s, mpsl_error *err); /* data the SQL cannot make, or NULL */
} schema_step;

static const schema_step schema_steps[] = {
    {1, schema_v1, NULL},
    {2, schema_v2, NULL},
    {3, schema_v3, NULL},
    {4, schema_v4, fill_config_json},
};

_Static_assert(sizeof schema_steps / sizeof schema_steps[0] == STORE_SCHEMA_VERSION,
               "one schema step per version: add the step when raising STORE_SCHEMA_VERSION");

int store_sql_int(sqlite3 *db, const char *sql, int *out)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            *out = sqlite3_column_int(st, 0);
            rc = SQLITE_OK;
        }
    }
    sqlite3_finalize(st);
    return rc;
}

int store_schema_version_read(store *s, int *version, mpsl_error *err)
{
    int rc = store_sql_int(s->db, "PRAGMA user_version", version);
    return rc == SQLITE_OK ? MPSL_OK : store_sql_error(s, rc, "reading the schema version", err);
}

int store_schema_user_tables(store *s, int *count, mpsl_error *err)
{
    int rc = store_sql_int(s->db, STORE_SQL_USER_TABLES, count);
    return rc == SQLITE_OK ? MPSL_OK : store_sql_error(s, rc, "reading the schema", err);
}

int store_schema_migrate(store *s, int *from, mpsl_error *err)
{
    int version = 0;
    int rc = store_schema_version_read(s, &version, err);
    if (rc) {
        return rc;
    }
    *from = version;
    if (version > STORE_SCHEMA_VERSION) {
        return mpsl_errs(err, MPSL_ERR_INVALID,
                         "%s has schema version %d, this mpsl knows up to %d; upgrade mpsl",
                         s->path, version, STORE_SCHEMA_VERSION);
    }
    if (version == 0) {
        int tables = 0;
        rc = store_schema_user_tables(s, &tables, err);
        if (rc) {
            return rc;
        }
        if (tables > 0) {
            return mpsl_errs(err, MPSL_ERR_INVALID,
                             "%s is a SQLite database but not an mpsl results database "
                             "(%d table%s, no schema version); choose another --db",
                             s->path, tables, tables == 1 ? "" : "s");
        }
    }
    for (int i = version; i < STORE_SCHEMA_VERSION; i++) {
        const schema_step *step = &schema_steps[i];
        char what[64];
        snprintf(what, sizeof what, "migrating the schema to version %d", step->version);
        for (const char *const *sql = step->sql; *sql; sql++) {
            rc = store_exec(s, *sql, what, err);
            if (rc) {
                return rc;
            }
        }
        if (step->fill) {
            rc = step->fill(s, err);
            if (rc) {
                return rc;
            }
        }
        char pragma[48];
        snprintf(pragma, sizeof pragma, "PRAGMA user_version = %d", step->version);
        rc = store_exec(s, pragma, what, err);
        if (rc) {
            return rc;
        }
    }
    return MPSL_OK;
}
