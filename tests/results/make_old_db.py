#!/usr/bin/env python3
"""make_old_db.py: write a results database of an OLDER schema version (1, 2 or 3), as an
mpsl release of that version wrote it, with a few runs that have rows in every table of that
version. For the tests of upgrades and of `mpsl merge`.

The DDL below is copied from the released steps of core/results/schema.c (schema_v1,
schema_v2, schema_v3). Released steps never change (that is the migration contract), so this
copy must not follow later edits of schema.c: if an upgrade of this fixture breaks, the
schema.c step was edited, which is the bug.

usage: make_old_db.py OUT.db [--schema 1|2|3] [--runs N] [--host H] [--running]
                             [--prefix P] [--day D]
"""
import argparse
import os
import sqlite3
import sys

COMPUTE_NOT_DOUBLE = (
    "(c.client >= 0 OR NOT EXISTS (SELECT 1 FROM compute d WHERE d.run_id = c.run_id"
    " AND d.epoch = c.epoch AND d.party = c.party AND d.pass = c.pass AND d.client >= 0))")

RUN_SUMMARY_VIEW_V1 = """CREATE VIEW run_summary AS
  SELECT r.id, r.name, r.method, r.dataset, r.n_clients, r.status,
         r.started_at, r.ended_at,
         (SELECT COUNT(DISTINCT e.epoch) FROM epoch_metrics e WHERE e.run_id = r.id)
           AS epochs,
         (SELECT e.value FROM epoch_metrics e WHERE e.run_id = r.id
            AND e.name = 'test_acc' ORDER BY e.epoch DESC LIMIT 1) AS final_test_acc,
         (SELECT MAX(e.value) FROM epoch_metrics e WHERE e.run_id = r.id
            AND e.name = 'test_acc') AS best_test_acc,
         (SELECT e.value FROM epoch_metrics e WHERE e.run_id = r.id
            AND e.name = 'test_loss' ORDER BY e.epoch DESC LIMIT 1) AS final_test_loss,
         (SELECT SUM(c.bytes) FROM comm c WHERE c.run_id = r.id AND c.direction = 'up')
           * 1.0 / NULLIF(COALESCE(r.n_clients, (SELECT COUNT(DISTINCT c.client)
                                     FROM comm c WHERE c.run_id = r.id)), 0)
           AS bytes_up_per_client,
         (SELECT SUM(c.bytes) FROM comm c WHERE c.run_id = r.id AND c.direction = 'down')
           * 1.0 / NULLIF(COALESCE(r.n_clients, (SELECT COUNT(DISTINCT c.client)
                                     FROM comm c WHERE c.run_id = r.id)), 0)
           AS bytes_down_per_client,
         (SELECT SUM(c.bytes) FROM comm c WHERE c.run_id = r.id AND c.direction = 'up')
           AS bytes_up,
         (SELECT SUM(c.bytes) FROM comm c WHERE c.run_id = r.id AND c.direction = 'down')
           AS bytes_down,
         (SELECT SUM(c.flops) FROM compute c WHERE c.run_id = r.id
            AND c.party = 'client' AND """ + COMPUTE_NOT_DOUBLE + """) AS client_flops,
         (SELECT SUM(c.flops) FROM compute c WHERE c.run_id = r.id
            AND c.party = 'client' AND """ + COMPUTE_NOT_DOUBLE + """)
           / NULLIF(r.n_clients, 0) AS client_flops_per_client,
         (SELECT SUM(c.flops) FROM compute c WHERE c.run_id = r.id
            AND c.party = 'server' AND """ + COMPUTE_NOT_DOUBLE + """) AS server_flops,
         r.wall_seconds,
         COALESCE(r.peak_rss_bytes,
                  (SELECT CAST(MAX(e.value) AS INTEGER) FROM epoch_metrics e
                   WHERE e.run_id = r.id AND e.name = 'peak_rss_bytes'))
           AS peak_rss_bytes

  FROM runs r;
"""

SCHEMA_V1 = [
    """CREATE TABLE meta (
  key   TEXT PRIMARY KEY,
  value TEXT
);""",
    """CREATE TABLE runs (
  id              INTEGER PRIMARY KEY,
  name            TEXT NOT NULL,
  experiment_path TEXT,
  config_yaml     TEXT,
  seed,
  method          TEXT,
  dataset         TEXT,
  revision        TEXT,
  mpsl_version    TEXT,
  host            TEXT,
  n_clients       INTEGER,
  status          TEXT NOT NULL DEFAULT 'running'
                  CHECK (status IN ('running','finished','failed','interrupted')),
  message         TEXT,
  started_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
  ended_at        TEXT,
  wall_seconds    REAL,
  peak_rss_bytes  INTEGER
);""",
    "CREATE INDEX runs_status ON runs(status);",
    "CREATE INDEX runs_method ON runs(method);",
    "CREATE INDEX runs_dataset ON runs(dataset);",
    """CREATE TABLE run_plugins (
  run_id  INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  slot    TEXT NOT NULL,
  name    TEXT NOT NULL,
  version TEXT,
  path    TEXT,
  abi     TEXT
);""",
    "CREATE INDEX run_plugins_run ON run_plugins(run_id);",
    """CREATE TABLE run_tags (
  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  tag    TEXT NOT NULL,
  PRIMARY KEY (run_id, tag)
);""",
    "CREATE INDEX run_tags_tag ON run_tags(tag);",
    """CREATE TABLE epoch_metrics (
  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  epoch  INTEGER NOT NULL,
  name   TEXT NOT NULL,
  value  REAL,
  PRIMARY KEY (run_id, epoch, name)
);""",
    """CREATE TABLE client_metrics (
  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  epoch  INTEGER NOT NULL,
  client INTEGER NOT NULL,
  name   TEXT NOT NULL,
  value  REAL,
  PRIMARY KEY (run_id, epoch, client, name)
);""",
    """CREATE TABLE comm (
  run_id    INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  epoch     INTEGER NOT NULL,
  client    INTEGER NOT NULL,
  direction TEXT NOT NULL CHECK (direction IN ('up','down')),
  kind      TEXT NOT NULL,
  bytes     INTEGER NOT NULL CHECK (bytes >= 0),
  messages  INTEGER NOT NULL CHECK (messages >= 0),
  PRIMARY KEY (run_id, epoch, client, direction, kind)
);""",
    """CREATE TABLE compute (
  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  epoch  INTEGER NOT NULL,
  party  TEXT NOT NULL CHECK (party IN ('client','server')),
  client INTEGER NOT NULL DEFAULT -1,
  pass   TEXT NOT NULL CHECK (pass IN ('forward','backward')),
  flops  REAL NOT NULL CHECK (flops >= 0),
  PRIMARY KEY (run_id, epoch, party, client, pass)
);""",
    """CREATE TABLE client_data (
  run_id          INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  client          INTEGER NOT NULL,
  n_samples       INTEGER NOT NULL CHECK (n_samples >= 0),
  class_histogram TEXT NOT NULL DEFAULT '[]',
  PRIMARY KEY (run_id, client)
);""",
    """CREATE VIEW compute_totals AS
  SELECT c.run_id, c.epoch, c.party, c.pass, SUM(c.flops) AS flops
  FROM compute c WHERE """ + COMPUTE_NOT_DOUBLE + """
  GROUP BY c.run_id, c.epoch, c.party, c.pass;""",
    """CREATE VIEW comm_per_client AS
  SELECT run_id, client,
         SUM(CASE WHEN direction = 'up' THEN bytes ELSE 0 END) AS bytes_up,
         SUM(CASE WHEN direction = 'down' THEN bytes ELSE 0 END) AS bytes_down,
         SUM(CASE WHEN direction = 'up' THEN messages ELSE 0 END) AS messages_up,
         SUM(CASE WHEN direction = 'down' THEN messages ELSE 0 END) AS messages_down
  FROM comm GROUP BY run_id, client;""",
    """CREATE VIEW comm_by_kind AS
  SELECT run_id, direction, kind, SUM(bytes) AS bytes, SUM(messages) AS messages,
         COUNT(DISTINCT client) AS clients
  FROM comm GROUP BY run_id, direction, kind;""",
    """CREATE VIEW epoch_wide AS
  SELECT m.run_id, m.epoch,
         MAX(CASE WHEN m.name = 'test_acc' THEN m.value END) AS test_acc,
         MAX(CASE WHEN m.name = 'test_loss' THEN m.value END) AS test_loss,
         MAX(CASE WHEN m.name = 'train_acc' THEN m.value END) AS train_acc,
         MAX(CASE WHEN m.name = 'train_loss' THEN m.value END) AS train_loss,
         MAX(CASE WHEN m.name = 'epoch_seconds' THEN m.value END) AS epoch_seconds,
         MAX(CASE WHEN m.name = 'peak_rss_bytes' THEN m.value END) AS peak_rss_bytes,
         (SELECT SUM(c.bytes) FROM comm c WHERE c.run_id = m.run_id
            AND c.epoch = m.epoch AND c.direction = 'up') AS bytes_up,
         (SELECT SUM(c.bytes) FROM comm c WHERE c.run_id = m.run_id
            AND c.epoch = m.epoch AND c.direction = 'down') AS bytes_down,
         (SELECT SUM(c.flops) FROM compute c WHERE c.run_id = m.run_id
            AND c.epoch = m.epoch AND c.party = 'client' AND """ + COMPUTE_NOT_DOUBLE + """)
           AS client_flops,
         (SELECT SUM(c.flops) FROM compute c WHERE c.run_id = m.run_id
            AND c.epoch = m.epoch AND c.party = 'server' AND """ + COMPUTE_NOT_DOUBLE + """)
           AS server_flops
  FROM epoch_metrics m GROUP BY m.run_id, m.epoch;""",
    RUN_SUMMARY_VIEW_V1,
]

SCHEMA_V2 = [
    "ALTER TABLE runs ADD COLUMN transport TEXT NOT NULL DEFAULT 'local';",
    "ALTER TABLE runs ADD COLUMN n_ranks INTEGER NOT NULL DEFAULT 1;",
    "ALTER TABLE runs ADD COLUMN hosts TEXT;",
    "UPDATE runs SET hosts = host WHERE hosts IS NULL;",
]

SCHEMA_V3 = [
    """CREATE TABLE checkpoints (
  run_id     INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  epoch      INTEGER NOT NULL,
  step       INTEGER NOT NULL DEFAULT 0,
  path       TEXT NOT NULL,
  bytes      INTEGER,
  written_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
  PRIMARY KEY (run_id, epoch, step)
);""",
    """CREATE VIEW run_times AS
  SELECT r.id AS run_id,
         (SELECT SUM(e.value) FROM epoch_metrics e WHERE e.run_id = r.id
            AND e.name = 'server_compute_seconds') AS server_compute_seconds,
         (SELECT SUM(e.value) FROM epoch_metrics e WHERE e.run_id = r.id
            AND e.name = 'server_wait_seconds') AS server_wait_seconds,
         (SELECT SUM(m.value) / NULLIF(COUNT(DISTINCT m.client), 0) FROM client_metrics m
            WHERE m.run_id = r.id AND m.name = 'compute_seconds') AS client_compute_seconds,
         (SELECT SUM(m.value) / NULLIF(COUNT(DISTINCT m.client), 0) FROM client_metrics m
            WHERE m.run_id = r.id AND m.name = 'wait_seconds') AS client_wait_seconds
  FROM runs r;""",
]

STEPS = [SCHEMA_V1, SCHEMA_V2, SCHEMA_V3]

CLIENTS = 2

# A resolved configuration in the form mpsl stores it (train.epochs varies per run).
CONFIG = """name: {name}
seed: {seed}
data:
  dataset:
    plugin: fashion_mnist
    train_limit: 600
    test_limit: 200
  clients: {clients}
  partition:
    scheme: dirichlet
    alpha: 0.5
model:
  tokenizers:
    image:
      plugin: image_patch
      patch: 7
      dim: 16
  encoder:
    plugin: token_mlp
    depth: 1
    hidden: 32
  head:
    plugin: classifier
    pool: mean
strategy:
  plugin: fedavg
  local_epochs: 1
train:
  epochs: {epochs}
  batch_size: 32
  optimizer:
    name: adam
    lr: 0.003
output:
  db: 'old.db'
  tags: [old, fixture]
"""


def add_run(db, schema, i, args, running):
    name = "%s_%d" % (args.prefix, i)
    epochs = 2 + i
    started = "2023-%02d-%02dT10:%02d:00.000Z" % (args.day // 28 + 1, args.day % 28 + 1, i)
    ended = None if running else "2023-%02d-%02dT10:%02d:30.000Z" % (
        args.day // 28 + 1, args.day % 28 + 1, i)
    cols = {
        "name": name, "experiment_path": "/old/experiments/%s.yaml" % args.prefix,
        "config_yaml": CONFIG.format(name=name, seed=100 + i, clients=CLIENTS, epochs=epochs),
        "seed": 100 + i, "method": "fedavg", "dataset": "fashion_mnist",
        "revision": "v0.%d-old" % schema, "mpsl_version": "0.%d.0" % schema,
        "host": args.host, "n_clients": CLIENTS,
        "status": "running" if running else "finished", "started_at": started,
        "ended_at": ended, "wall_seconds": None if running else 30.0 + i,
        "peak_rss_bytes": None if running else 50000000 + i,
    }
    if schema >= 2:
        cols.update({"transport": "local", "n_ranks": 1, "hosts": args.host})
    keys = list(cols)
    cur = db.execute("INSERT INTO runs (%s) VALUES (%s)" % (", ".join(keys),
                     ", ".join("?" * len(keys))), [cols[k] for k in keys])
    run = cur.lastrowid
    for slot, plugin in (("dataset", "fashion_mnist"), ("aggregation", "fedavg")):
        db.execute("INSERT INTO run_plugins VALUES (?, ?, ?, '1.0', ?, '1.0')",
                   (run, slot, plugin, "/old/plugins/%s.so" % plugin))
    for tag in ("old", "fixture"):
        db.execute("INSERT INTO run_tags VALUES (?, ?)", (run, tag))
    done = 1 if running else epochs
    for e in range(done):
        for metric, value in (("test_acc", 0.5 + 0.1 * e), ("test_loss", 1.5 - 0.2 * e),
                              ("train_loss", 1.6 - 0.2 * e), ("epoch_seconds", 10.0)):
            db.execute("INSERT INTO epoch_metrics VALUES (?, ?, ?, ?)", (run, e, metric, value))
        for c in range(CLIENTS):
            db.execute("INSERT INTO client_metrics VALUES (?, ?, ?, 'train_acc', ?)",
                       (run, e, c, 0.4 + 0.1 * e + 0.01 * c))
            for direction, kind in (("up", "weights"), ("down", "weights")):
                db.execute("INSERT INTO comm VALUES (?, ?, ?, ?, ?, ?, 1)",
                           (run, e, c, direction, kind, 1000 * (c + 1)))
            db.execute("INSERT INTO compute VALUES (?, ?, 'client', ?, 'forward', ?)",
                       (run, e, c, 1e6 * (c + 1)))
        db.execute("INSERT INTO compute VALUES (?, ?, 'server', -1, 'forward', 5e5)", (run, e))
    for c in range(CLIENTS):
        db.execute("INSERT INTO client_data VALUES (?, ?, ?, ?)",
                   (run, c, 300, "[30,30,30,30,30,30,30,30,30,30]"))
    if schema >= 3:
        db.execute("INSERT INTO checkpoints VALUES (?, ?, 0, ?, 4096, ?)",
                   (run, done, "/old/%s.db.checkpoints/run%d-e%d.ckpt" % (args.prefix, run, done),
                    started))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out")
    p.add_argument("--schema", type=int, default=3, choices=(1, 2, 3))
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--host", default="oldhost")
    p.add_argument("--prefix", default="old_run", help="run names are PREFIX_1, PREFIX_2, ...")
    p.add_argument("--day", type=int, default=0, help="which day of 2023 the runs started on")
    p.add_argument("--running", action="store_true", help="the last run is still 'running'")
    args = p.parse_args()
    if os.path.exists(args.out):
        sys.exit("make_old_db.py: %s exists; not overwriting it" % args.out)
    db = sqlite3.connect(args.out, isolation_level=None)
    db.execute("BEGIN")
    for version, step in enumerate(STEPS[:args.schema], start=1):
        for sql in step:
            db.execute(sql)
        db.execute("PRAGMA user_version = %d" % version)
    db.execute("INSERT INTO meta VALUES ('created_at', '2023-01-01T00:00:00.000Z')")
    for i in range(1, args.runs + 1):
        add_run(db, args.schema, i, args, args.running and i == args.runs)
    db.execute("COMMIT")
    db.close()


if __name__ == "__main__":
    main()
