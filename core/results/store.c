/* store.c: opening and closing the results database: the checks that let a run fail before
 * training (missing directory, read-only file, not a database, locked, full, newer schema),
 * the connection settings (WAL, busy timeout, foreign keys), SQLite error messages and the
 * transaction helpers every write uses. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store_internal.h"
#include "util/util.h"

int store_sql_error(const store *s, int rc, const char *step, mpsl_error *err)
{
    const char *path = s && s->path ? s->path : "(results database)";
    const char *detail = s && s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc);
    int sys = s && s->db ? sqlite3_system_errno(s->db) : 0;
    double waited = s ? s->busy_ms / 1000.0 : 0.0;
    switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return mpsl_errs(err, MPSL_ERR_IO,
                         "results database '%s' is locked by another process (waited %.1f s "
                         "while %s); retry when it is done, raise MPSL_DB_BUSY_MS, or open "
                         "with --db elsewhere",
                         path, waited, step);
    case SQLITE_READONLY:
        return mpsl_errs(err, MPSL_ERR_IO,
                         "cannot write results database '%s': read-only %s (%s while %s; "
                         "open with --db elsewhere)",
                         path, rc == SQLITE_READONLY_DIRECTORY ? "directory" : "file", detail,
                         step);
    case SQLITE_NOTADB:
        return mpsl_errs(err, MPSL_ERR_IO,
                         "'%s' is not a SQLite database (file is not a database); pass --db "
                         "with the path of a results database or of a new file",
                         path);
    case SQLITE_FULL:
        return mpsl_errs(err, MPSL_ERR_IO,
                         "cannot write results database '%s': disk full or size limit reached "
                         "while %s (%s); rows committed before are kept; free space or open "
                         "with --db elsewhere",
                         path, step, detail);
    case SQLITE_CORRUPT:
        return mpsl_errs(err, MPSL_ERR_IO,
                         "results database '%s' is corrupt (%s while %s); keep a copy and "
                         "recover it with `sqlite3 %s .recover`",
                         path, detail, step, path);
    case SQLITE_CANTOPEN:
        return mpsl_errs(err, MPSL_ERR_IO, "cannot open results database '%s': %s (%s)", path,
                         sys ? strerror(sys) : detail, step);
    case SQLITE_IOERR:
        return mpsl_errs(err, MPSL_ERR_IO, "I/O error on results database '%s' while %s: %s%s%s",
                         path, step, detail, sys ? ": " : "", sys ? strerror(sys) : "");
    case SQLITE_NOMEM:
        return mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory while %s on '%s'", step, path);
    case SQLITE_CONSTRAINT:
        return mpsl_errs(err, MPSL_ERR_INVALID, "results database '%s': %s rejected: %s", path,
                         step, detail);
    default:
        return mpsl_errs(err, MPSL_ERR_IO, "results database '%s': %s failed: %s", path, step,
                         detail);
    }
}

int store_exec(store *s, const char *sql, const char *step, mpsl_error *err)
{
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? MPSL_OK : store_sql_error(s, rc, step, err);
}

int store_step_done(store *s, sqlite3_stmt *st, const char *step, mpsl_error *err)
{
    int rc = sqlite3_step(st);
    int status = MPSL_OK;
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        status = store_sql_error(s, rc, step, err);
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return status;
}

/* Text of each cached statement, indexed by store_stmt_id. */
static const char *const stmt_sql[STMT_COUNT] = {
    [STMT_RUN_INSERT] = "INSERT INTO runs (name, experiment_path, config_yaml, seed, method, "
                        "dataset, revision, mpsl_version, host, n_clients, transport, n_ranks, "
                        "hosts, config_json, sweep_id, sweep_point, class_names) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    [STMT_PLUGIN_INSERT] = "INSERT INTO run_plugins (run_id, slot, name, version, path, abi) "
                           "VALUES (?, ?, ?, ?, ?, ?)",
    [STMT_TAG_INSERT] = "INSERT OR IGNORE INTO run_tags (run_id, tag) VALUES (?, ?)",
    [STMT_RUN_END] = "UPDATE runs SET status = ?, message = ?, "
                     "ended_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), wall_seconds = ?, "
                     "peak_rss_bytes = ? WHERE id = ?",
    [STMT_METRIC] = "INSERT INTO epoch_metrics (run_id, epoch, name, value) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (run_id, epoch, name) DO UPDATE SET value = excluded.value",
    [STMT_CLIENT_METRIC] = "INSERT INTO client_metrics (run_id, epoch, client, name, value) "
                           "VALUES (?, ?, ?, ?, ?) ON CONFLICT (run_id, epoch, client, name) "
                           "DO UPDATE SET value = excluded.value",
    [STMT_COMM] = "INSERT INTO comm (run_id, epoch, client, direction, kind, bytes, messages) "
                  "VALUES (?, ?, ?, ?, ?, ?, ?) "
                  "ON CONFLICT (run_id, epoch, client, direction, kind) DO UPDATE SET "
                  "bytes = bytes + excluded.bytes, messages = messages + excluded.messages",
    [STMT_COMPUTE] = "INSERT INTO compute (run_id, epoch, party, client, pass, flops) "
                     "VALUES (?, ?, ?, ?, ?, ?) "
                     "ON CONFLICT (run_id, epoch, party, client, pass) DO UPDATE SET "
                     "flops = flops + excluded.flops",
    [STMT_CLIENT_DATA] = "INSERT INTO client_data (run_id, client, n_samples, class_histogram) "
                         "VALUES (?, ?, ?, ?) ON CONFLICT (run_id, client) DO UPDATE SET "
                         "n_samples = excluded.n_samples, "
                         "class_histogram = excluded.class_histogram",
    [STMT_RUN_CONFIG] = "SELECT config_yaml, experiment_path FROM runs WHERE id = ?",
    [STMT_RUN_EXISTS] = "SELECT 1 FROM runs WHERE id = ?",
    [STMT_STEP_METRIC] = "INSERT INTO step_metrics (run_id, epoch, step, client, name, value) "
                         "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (run_id, epoch, step, client, "
                         "name) DO UPDATE SET value = excluded.value",
};

sqlite3_stmt *store_stmt(store *s, store_stmt_id id, mpsl_error *err)
{
    if (!s->stmt[id]) {
        int rc = sqlite3_prepare_v3(s->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
                                    &s->stmt[id], NULL);
        if (rc != SQLITE_OK) {
            store_sql_error(s, rc, "preparing a statement", err);
            sqlite3_finalize(s->stmt[id]);
            s->stmt[id] = NULL;
            return NULL;
        }
    }
    sqlite3_reset(s->stmt[id]);
    sqlite3_clear_bindings(s->stmt[id]);
    return s->stmt[id];
}

int store_tx_begin(store *s, int *nested, mpsl_error *err)
{
    *nested = !sqlite3_get_autocommit(s->db);
    return store_exec(s, *nested ? "SAVEPOINT store_write" : "BEGIN IMMEDIATE",
                      "starting a write transaction", err);
}

int store_tx_end(store *s, int nested, int ok, mpsl_error *err)
{
    if (ok) {
        int rc = store_exec(s, nested ? "RELEASE store_write" : "COMMIT",
                            "committing a write transaction", err);
        if (rc == MPSL_OK) {
            return MPSL_OK;
        }
        ok = 0;
        /* fall through: undo what this write did, keep the message */
    }
    if (sqlite3_get_autocommit(s->db)) {
        return ok ? MPSL_OK : MPSL_ERR_IO; /* SQLite already rolled back */
    }
    if (nested) {
        sqlite3_exec(s->db, "ROLLBACK TO store_write; RELEASE store_write", NULL, NULL, NULL);
    } else {
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    }
    return MPSL_OK;
}

int store_begin(store *s, mpsl_error *err)
{
    if (!sqlite3_get_autocommit(s->db)) {
        return mpsl_errs(err, MPSL_ERR_INTERNAL,
                         "results database '%s': store_begin inside an open transaction",
                         s->path);
    }
    return store_exec(s, "BEGIN IMMEDIATE", "starting a transaction", err);
}

int store_commit(store *s, mpsl_error *err)
{
    int rc = store_exec(s, "COMMIT", "committing a transaction", err);
    if (rc && !sqlite3_get_autocommit(s->db)) {
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    }
    return rc;
}

int store_rollback(store *s)
{
    if (!s || sqlite3_get_autocommit(s->db)) {
        return MPSL_OK;
    }
    return sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL) == SQLITE_OK ? MPSL_OK
                                                                          : MPSL_ERR_IO;
}

void store_set_busy_timeout(store *s, int ms)
{
    s->busy_ms = ms < 0 ? 0 : ms;
    sqlite3_busy_timeout(s->db, s->busy_ms);
}

const char *store_path(const store *s) { return s->path; }

struct sqlite3 *store_db(store *s) { return s->db; }

static int env_busy_ms(void)
{
    const char *v = getenv("MPSL_DB_BUSY_MS");
    if (v && *v) {
        char *end = NULL;
        long ms = strtol(v, &end, 10);
        if (end && *end == '\0' && ms >= 0 && ms <= 86400000L) {
            return (int)ms;
        }
        mpsl_log(MPSL_LOG_WARN, "ignoring MPSL_DB_BUSY_MS='%s' (want milliseconds)", v);
    }
    return STORE_DEFAULT_BUSY_MS;
}

/* The directory holding path ("." when it has none), in buf. */
static const char *dir_of(const char *path, char *buf, size_t n)
{
    const char *slash = strrchr(path, '/');
    if (!slash) {
        snprintf(buf, n, ".");
    } else if (slash == path) {
        snprintf(buf, n, "/");
    } else {
        snprintf(buf, n, "%.*s", (int)(slash - path), path);
    }
    return buf;
}

/* File-system checks that give a better message than SQLite would (it says only "unable to
 * open database file" or "attempt to write a readonly database"). */
static int precheck_writable(const char *path, mpsl_error *err)
{
    char dir[4096];
    dir_of(path, dir, sizeof dir);
    struct stat st;
    if (stat(path, &st) == 0) {
        if (S_ISDIR(st.st_mode)) {
            return mpsl_errs(err, MPSL_ERR_IO,
                             "cannot use results database '%s': it is a directory", path);
        }
        if (access(path, W_OK) != 0) {
            return mpsl_errs(err, MPSL_ERR_IO,
                             "cannot write results database '%s': read-only %s (open with "
                             "--db elsewhere)",
                             path, errno == EROFS ? "file system" : "file");
        }
        /* WAL keeps two files beside the database (-wal, -shm): the directory must take
         * them unless they are there already. */
        char wal[4096 + 8];
        snprintf(wal, sizeof wal, "%s-wal", path);
        if (access(wal, F_OK) != 0 && access(dir, W_OK | X_OK) != 0) {
            return mpsl_errs(err, MPSL_ERR_IO,
                             "cannot write results database '%s': directory '%s' is not "
                             "writable (SQLite keeps '%s-wal' and '%s-shm' beside the "
                             "database; open with --db elsewhere)",
                             path, dir, path, path);
        }
        return MPSL_OK;
    }
    if (errno != ENOENT) {
        return mpsl_errs(err, MPSL_ERR_IO, "cannot open results database '%s': %s", path,
                         strerror(errno));
    }
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        return mpsl_errs(err, MPSL_ERR_IO,
                         "cannot create results database '%s': directory '%s' does not exist",
                         path, dir);
    }
    if (access(dir, W_OK | X_OK) != 0) {
        return mpsl_errs(err, MPSL_ERR_IO,
                         "cannot create results database '%s': directory '%s' is not "
                         "writable (open with --db elsewhere)",
                         path, dir);
    }
    return MPSL_OK;
}

/* Read a one-row, one-column PRAGMA into buf (text). */
static int pragma_text(store *s, const char *sql, char *buf, size_t n, const char *step,
                       mpsl_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            const unsigned char *t = sqlite3_column_text(st, 0);
            snprintf(buf, n, "%s", t ? (const char *)t : "");
            rc = SQLITE_OK;
        } else if (rc == SQLITE_DONE) {
            buf[0] = '\0';
            rc = SQLITE_OK;
        }
    }
    if (rc != SQLITE_OK) {
        int status = store_sql_error(s, rc, step, err);
        sqlite3_finalize(st);
        return status;
    }
    sqlite3_finalize(st);
    return MPSL_OK;
}

/* Switching a new file to WAL takes an exclusive lock from a shared one; two processes
 * creating the same file can each hold the shared lock while waiting for the other, and a
 * busy timeout only makes both wait it out. So try in short waits, backing off by a random
 * few milliseconds between tries (which drops our shared lock), until busy_ms has passed.
 * Once the file is in WAL mode the pragma takes no lock at all. */
static int switch_to_wal(store *s, char *mode, size_t n, mpsl_error *err)
{
    double deadline = mpsl_now() + s->busy_ms / 1000.0;
    unsigned seed = (unsigned)getpid();
    int rc;
    for (;;) {
        sqlite3_busy_timeout(s->db, 10 + (int)(rand_r(&seed) % 40));
        rc = pragma_text(s, "PRAGMA journal_mode = WAL", mode, n, "switching to WAL journal mode",
                         err);
        if (rc == MPSL_OK || (sqlite3_errcode(s->db) & 0xff) != SQLITE_BUSY ||
            mpsl_now() >= deadline) {
            break;
        }
        usleep(1000 + rand_r(&seed) % 10000);
    }
    sqlite3_busy_timeout(s->db, s->busy_ms);
    return rc;
}

/* READ_WRITE: WAL, then one immediate transaction that migrates and writes a row, which
 * proves the file, its directory and the disk take writes before any training starts. */
static int open_read_write(store *s, mpsl_error *err)
{
    int rc = sqlite3_open_v2(s->path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    if (rc != SQLITE_OK) {
        return store_sql_error(s, rc, "opening", err);
    }
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_timeout(s->db, s->busy_ms);
    char mode[32];
    rc = switch_to_wal(s, mode, sizeof mode, err);
    if (rc) {
        return rc;
    }
    if (strcmp(mode, "wal") != 0) {
        mpsl_log(MPSL_LOG_WARN,
                 "results database '%s' is in journal mode '%s', not WAL (a file system "
                 "without shared memory?); concurrent runs will wait for each other",
                 s->path, mode);
    }
    rc = store_exec(s, "PRAGMA foreign_keys = ON", "enabling foreign keys", err);
    if (rc) {
        return rc;
    }
    rc = store_exec(s, "BEGIN IMMEDIATE", "starting the opening write transaction", err);
    if (rc) {
        return rc;
    }
    int from = 0;
    rc = store_schema_migrate(s, &from, err);
    if (rc == MPSL_OK && from == 0) {
        rc = store_exec(s,
                        "INSERT INTO meta (key, value) VALUES "
                        "('created_at', strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))",
                        "recording the creation time", err);
    }
    if (rc == MPSL_OK) {
        rc = store_exec(s,
                        "INSERT INTO meta (key, value) VALUES "
                        "('last_opened_at', strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) "
                        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                        "writing at open", err);
    }
    if (rc == MPSL_OK) {
        rc = store_exec(s, "COMMIT", "committing the opening write transaction", err);
    }
    if (rc != MPSL_OK && !sqlite3_get_autocommit(s->db)) {
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    }
    if (rc == MPSL_OK && from != 0 && from < STORE_SCHEMA_VERSION) {
        mpsl_log(MPSL_LOG_INFO, "results database '%s' migrated from schema version %d to %d",
                 s->path, from, STORE_SCHEMA_VERSION);
    }
    if (rc == MPSL_OK) { /* final statuses a run could not write before */
        rc = store_journal_apply(s, err);
    }
    return rc;
}

int store_file_beside(const char *path, const char *suffix)
{
    char side[4096 + 16];
    snprintf(side, sizeof side, "%s%s", path, suffix);
    return access(side, F_OK) == 0;
}

static int dir_writable(const char *path)
{
    char dir[4096];
    return access(dir_of(path, dir, sizeof dir), W_OK | X_OK) == 0;
}

/* SQLite reads a WAL database through a -shm file beside it, which it creates when absent.
 * On read-only media (a mounted archive, a read-only share) it cannot, and opening failed
 * with "No such file or directory" (the -shm it tried to make) for a file that is there.
 * When the directory cannot be written and neither a -wal nor a -journal file is beside the
 * database, no process can be writing it (a writer keeps one of them there) and nothing is
 * left to replay or roll back, so it can be read as immutable: without locks or -shm. */
static int read_as_immutable(const char *path)
{
    return !dir_writable(path) && !store_file_beside(path, "-wal") &&
           !store_file_beside(path, "-journal");
}

char *store_file_uri(const char *path, const char *query)
{
    size_t n = strlen(path);
    char *uri = malloc(3 * n + strlen(query) + 8);
    if (!uri) {
        return NULL;
    }
    /* "file:///abs/path" for absolute paths ("file://x" would name a host x), else
     * "file:rel/path". */
    size_t j = (size_t)sprintf(uri, "%s", path[0] == '/' ? "file://" : "file:");
    for (const char *c = path; *c; c++) {
        if (*c == '%' || *c == '?' || *c == '#') {
            j += (size_t)sprintf(uri + j, "%%%02X", (unsigned char)*c);
        } else {
            uri[j++] = *c;
        }
    }
    strcpy(uri + j, query);
    return uri;
}

static int open_read_only(store *s, mpsl_error *err)
{
    struct stat st;
    if (stat(s->path, &st) != 0) {
        if (errno == ENOENT) {
            return mpsl_errs(err, MPSL_ERR_IO,
                             "no results database '%s' (`mpsl run` creates it; pass --db PATH "
                             "to read another)",
                             s->path);
        }
        return mpsl_errs(err, MPSL_ERR_IO, "cannot open results database '%s': %s", s->path,
                         strerror(errno));
    }
    if (S_ISDIR(st.st_mode)) {
        return mpsl_errs(err, MPSL_ERR_IO,
                         "cannot use results database '%s': it is a directory", s->path);
    }
    if (!dir_writable(s->path) && store_file_beside(s->path, "-wal") &&
        !store_file_beside(s->path, "-shm")) {
        /* Runs committed to the -wal are read through -shm, which cannot be made here. */
        return mpsl_errs(err, MPSL_ERR_IO,
                         "cannot read results database '%s': its directory is read-only and "
                         "'%s-wal' (changes not yet written into the database) needs a "
                         "'%s-shm' beside it, which is missing; copy the database with its "
                         "-wal file to a writable directory and read it there",
                         s->path, s->path, s->path);
    }
    int rc;
    if (read_as_immutable(s->path)) {
        char *uri = store_file_uri(s->path, "?immutable=1");
        if (!uri) {
            return mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory opening '%s'", s->path);
        }
        rc = sqlite3_open_v2(uri, &s->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, NULL);
        free(uri);
    } else {
        rc = sqlite3_open_v2(s->path, &s->db, SQLITE_OPEN_READONLY, NULL);
    }
    if (rc != SQLITE_OK) {
        return store_sql_error(s, rc, "opening", err);
    }
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_timeout(s->db, s->busy_ms);
    int version = 0;
    rc = store_schema_version_read(s, &version, err);
    if (rc) {
        return rc;
    }
    if (version > STORE_SCHEMA_VERSION) {
        return mpsl_errs(err, MPSL_ERR_INVALID,
                         "%s has schema version %d, this mpsl knows up to %d; upgrade mpsl",
                         s->path, version, STORE_SCHEMA_VERSION);
    }
    if (version == 0) {
        return mpsl_errs(err, MPSL_ERR_INVALID,
                         "'%s' is not an mpsl results database (no schema version)", s->path);
    }
    if (version < STORE_SCHEMA_VERSION && access(s->path, W_OK) == 0) {
        /* an older database we may write: upgrade it in place, then read */
        sqlite3_close(s->db);
        s->db = NULL;
        return open_read_write(s, err);
    }
    if (version < STORE_SCHEMA_VERSION) {
        return mpsl_errs(err, MPSL_ERR_INVALID,
                         "%s has schema version %d, older than this mpsl's %d; open it "
                         "read-write once (e.g. with `mpsl run`) to migrate it",
                         s->path, version, STORE_SCHEMA_VERSION);
    }
    return MPSL_OK;
}

int store_open(const char *path, store_mode mode, store **out, mpsl_error *err)
{
    *out = NULL;
    if (!path || !*path) {
        return mpsl_errs(err, MPSL_ERR_INVALID, "results database: empty path");
    }
    if (mode == STORE_READ_WRITE) {
        int rc = precheck_writable(path, err);
        if (rc) {
            return rc;
        }
    }
    store *s = calloc(1, sizeof *s);
    if (!s || !(s->path = mpsl_strdup(path))) {
        free(s);
        return mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory opening '%s'", path);
    }
    s->mode = mode;
    s->busy_ms = env_busy_ms();
    int rc = mode == STORE_READ_WRITE ? open_read_write(s, err) : open_read_only(s, err);
    if (rc) {
        store_close(s);
        return rc;
    }
    *out = s;
    return MPSL_OK;
}

void store_close(store *s)
{
    if (!s) {
        return;
    }
    for (int i = 0; i < STMT_COUNT; i++) {
        sqlite3_finalize(s->stmt[i]);
    }
    if (s->db) {
        if (!sqlite3_get_autocommit(s->db)) {
            sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        }
        sqlite3_close_v2(s->db);
    }
    free(s->path);
    free(s);
}
