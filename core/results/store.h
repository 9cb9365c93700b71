/* store.h: the SQLite results database. One file holds every run: its resolved config,
 * plugins, status and timings, and every figure it measured. The schema is versioned with
 * PRAGMA user_version and migrated forward on open; docs/results-schema.md documents it.
 * Writes use WAL, a busy timeout and BEGIN IMMEDIATE so that several runs can share a file. */
#ifndef MPSL_STORE_H
#define MPSL_STORE_H

#include <stdint.h>

#include "mpsl/plugin.h"

typedef struct store store;

#define STORE_SCHEMA_VERSION 4

typedef enum store_mode { STORE_READ_ONLY = 0, STORE_READ_WRITE = 1 } store_mode;

/* Open (creating when writable and absent) and migrate. In READ_WRITE mode it checks that
 * the file really can be written (read-only file or directory, locked, full disk, not a
 * SQLite database, a newer schema than this mpsl knows) and refuses with a message naming
 * the path, so a run fails before training starts. */
int store_open(const char *path, store_mode mode, store **out, mpsl_error *err);
void store_close(store *s);

typedef struct store_plugin_row {
    const char *slot;      /* "dataset", "tokenizer.image", "encoder", "head", "aggregation" */
    const char *name;
    const char *version;
    const char *path;
    uint32_t abi_major, abi_minor;
} store_plugin_row;

typedef struct store_run_info {
    const char *name;           /* experiment name */
    const char *experiment_path;
    const char *config_yaml;    /* fully resolved configuration */
    uint64_t seed;
    const char *method;         /* aggregation plugin name */
    const char *dataset;        /* dataset plugin name */
    const char *revision;       /* project revision (git describe at build time) */
    const char *mpsl_version;
    const char *host;
    int n_clients;
    const char *transport;      /* "local" or "mpi" (since schema 2) */
    int n_ranks;                /* processes the run used: 1 in one process */
    const char *hosts;          /* the distinct hosts of those processes, comma-separated */
    const char *config_json;    /* the resolved config as JSON (since schema 4) */
    const char *sweep_id;       /* shared by the points of one sweep, NULL outside one */
    const char *sweep_point;    /* the point's swept keys and values, a JSON object */
    const char *class_names;    /* the dataset's class names, a JSON array, or NULL */
    const store_plugin_row *plugins;
    int n_plugins;
    const char *const *tags;    /* NULL-terminated, may be NULL */
} store_run_info;

/* Insert a run with status 'running' and started_at = now. */
int store_run_begin(store *s, const store_run_info *info, int64_t *run_id, mpsl_error *err);

/* Final state: status is "finished", "failed" or "interrupted"; message may be NULL.
 * wall_seconds and peak_rss_bytes summarise the run. */
int store_run_end(store *s, int64_t run_id, const char *status, const char *message,
                  double wall_seconds, int64_t peak_rss_bytes, mpsl_error *err);

/* End a run with status ("failed" or "interrupted") and message, only if it is still
 * 'running': for a process that outlived the one that writes the run (a supervising parent,
 * a client rank whose server rank died). */
int store_run_end_if_running(store *s, int64_t run_id, const char *status, const char *message,
                             mpsl_error *err);

/* The journal beside a database (journal.c): a run's final status that could not be written
 * is appended to DB.journal; the next read-write open applies it (store_open does). */
int store_journal_status(const char *db_path, int64_t run_id, const char *status,
                         const char *message, double wall_seconds, int64_t peak_rss_bytes,
                         mpsl_error *err);
int store_journal_apply(store *s, mpsl_error *err);

/* Checkpoints (schema 3). add: record one written after `epoch` epochs and `step` steps of
 * the next. prune: forget all but the newest `keep`, handing back their paths (malloc'd, *n
 * of them) for deletion. list: every path of a run, newest first, with its epoch and step
 * (epoch * 2^32 + step in *epochs: one number that orders them). */
int store_checkpoint_add(store *s, int64_t run_id, int64_t epoch, int64_t step,
                         const char *path, int64_t bytes, mpsl_error *err);
int store_checkpoint_prune(store *s, int64_t run_id, int64_t keep, char ***paths, int *n,
                           mpsl_error *err);
int store_checkpoint_list(store *s, int64_t run_id, char ***paths, int64_t **epochs, int *n,
                          mpsl_error *err);
/* A run resumed from a checkpoint after `epoch` epochs and `step` steps of the next: status
 * back to 'running', every row of epochs from `epoch` on deleted (they are done again), and
 * every newer checkpoint forgotten. */
int store_run_resume(store *s, int64_t run_id, int64_t epoch, int64_t step, mpsl_error *err);

/* Group the writes of one epoch in one immediate transaction. */
int store_begin(store *s, mpsl_error *err);
int store_commit(store *s, mpsl_error *err);
int store_rollback(store *s);

/* Per-epoch metric (test_acc, test_loss, train_loss, epoch_seconds, peak_rss_bytes, ...). */
int store_metric(store *s, int64_t run_id, int64_t epoch, const char *name, double value,
                 mpsl_error *err);
/* Per-client metric for an epoch (train_acc, train_loss, ...). */
int store_client_metric(store *s, int64_t run_id, int64_t epoch, int client,
                        const char *name, double value, mpsl_error *err);
/* A figure of training step `step` (counted from 1 within the epoch) of `epoch`, by the
 * server or the whole run (client -1) or by client k (metrics.every_steps). */
int store_step_metric(store *s, int64_t run_id, int64_t epoch, int64_t step, int client,
                      const char *name, double value, mpsl_error *err);
/* Bytes and message count for one client, one direction ("up" client->server, "down"),
 * one message kind ("activations", "logits", ...), during one epoch. */
int store_comm(store *s, int64_t run_id, int64_t epoch, int client, const char *direction,
               const char *kind, int64_t bytes, int64_t messages, mpsl_error *err);
/* FLOPs executed by a party ("client" or "server") in a pass ("forward" or "backward")
 * during one epoch; client = -1 for the server or for a total over clients. */
int store_compute(store *s, int64_t run_id, int64_t epoch, const char *party, int client,
                  const char *pass, double flops, mpsl_error *err);
/* A client's partition: sample count and class histogram (n_classes counts). */
int store_client_data(store *s, int64_t run_id, int client, int64_t n_samples,
                      const int64_t *class_counts, int64_t n_classes, mpsl_error *err);

/* The stored resolved config and experiment path of a run (caller frees both). */
int store_run_config(store *s, int64_t run_id, char **config_yaml, char **experiment_path,
                     mpsl_error *err);

/* Read-only SQL for the CLI verbs: the sqlite3 handle behind the store. */
struct sqlite3 *store_db(store *s);

/* The path the store was opened with. */
const char *store_path(const store *s);

/* How long a write waits for another process's transaction before failing with a "locked"
 * message, in milliseconds. The default is 10000, or MPSL_DB_BUSY_MS from the environment
 * when it is set (read at store_open, so it also bounds the checks store_open does). */
void store_set_busy_timeout(store *s, int ms);

/* 1 when the run exists, 0 when it does not, a negative mpsl_status on error. */
int store_run_exists(store *s, int64_t run_id, mpsl_error *err);

#endif
