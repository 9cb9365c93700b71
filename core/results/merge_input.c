/* merge_input.c: opening the databases `mpsl merge` reads without changing them. A source may
 * be read-only, on another machine's disk image, or still written by a run: it is opened
 * read-only (immutable when no writer can be at work, so that not even a -shm or -wal file
 * appears beside it), checked, and, when its schema is older than this mpsl's, copied with
 * sqlite3_backup to a temporary file that store_open upgrades like any old database. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "merge_input.h"
#include "store_internal.h"
#include "util/util.h"

/* SQLite's own first 16 bytes of every database file. An empty file is not a database here
 * (for a source: it holds no runs; the output treats it as new before calling this). */
static int check_header(const char *path, const char *role, mpsl_error *err)
{
    static const char magic[16] = "SQLite format 3";
    char head[16] = {0};
    FILE *f = fopen(path, "rb");
    if (!f) {
        return mpsl_errs(err, MPSL_ERR_IO, "cannot read %s '%s': %s", role, path,
                         strerror(errno));
    }
    size_t got = fread(head, 1, sizeof head, f);
    fclose(f);
    if (got == 0) {
        return mpsl_errs(err, MPSL_ERR_INVALID,
                         "%s '%s' is an empty file, not an mpsl results database", role, path);
    }
    if (got < sizeof head || memcmp(head, magic, sizeof magic) != 0) {
        return mpsl_errs(err, MPSL_ERR_INVALID,
                         "%s '%s' is not a SQLite database (so not an mpsl results database)",
                         role, path);
    }
    return MPSL_OK;
}

/* A failed read of a database: corruption says so, anything else gives SQLite's words. */
static int read_error(sqlite3 *db, int rc, const char *role, const char *path, const char *step,
                      mpsl_error *err)
{
    const char *detail = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    if ((rc & 0xff) == SQLITE_CORRUPT || (rc & 0xff) == SQLITE_NOTADB) {
        return mpsl_errs(err, MPSL_ERR_INVALID,
                         "%s '%s' is corrupt (%s while %s); keep a copy and recover it with "
                         "`sqlite3 %s .recover`",
                         role, path, detail, step, path);
    }
    return mpsl_errs(err, MPSL_ERR_IO, "cannot read %s '%s' (%s): %s", role, path, step, detail);
}

/* Read-only connection to abs_path. Immutable (no locks, no -shm) when neither a -wal nor a
 * -journal file is beside it: no writer can be at work then, and nothing waits to be replayed
 * or rolled back, so nothing is created beside a file we must not touch. */
static int open_read_only(const char *abs_path, const char *role, const char *path,
                          sqlite3 **db, mpsl_error *err)
{
    int immutable = !store_file_beside(abs_path, "-wal") &&
                    !store_file_beside(abs_path, "-journal");
    char *uri = store_file_uri(abs_path, immutable ? "?mode=ro&immutable=1" : "?mode=ro");
    if (!uri) {
        return mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory opening '%s'", path);
    }
    int rc = sqlite3_open_v2(uri, db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, NULL);
    free(uri);
    if (rc != SQLITE_OK) {
        int status = read_error(*db, rc, role, path, "opening", err);
        sqlite3_close(*db);
        *db = NULL;
        return status;
    }
    sqlite3_extended_result_codes(*db, 1);
    sqlite3_busy_timeout(*db, 10000);
    return MPSL_OK;
}

/* PRAGMA quick_check: "ok", or the first problem it found. */
static int quick_check(sqlite3 *db, const char *path, mpsl_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, "PRAGMA quick_check(1)", -1, &st, NULL);
    if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *verdict = (const char *)sqlite3_column_text(st, 0);
        if (verdict && strcmp(verdict, "ok") != 0) {
            int status = mpsl_errs(err, MPSL_ERR_INVALID,
                                   "source '%s' is corrupt (quick_check: %s); keep a copy and "
                                   "recover it with `sqlite3 %s .recover`",
                                   path, verdict, path);
            sqlite3_finalize(st);
            return status;
        }
        rc = SQLITE_OK;
    }
    int status = rc == SQLITE_OK ? MPSL_OK
                                 : read_error(db, rc, "source", path, "checking it", err);
    sqlite3_finalize(st);
    return status;
}

static int make_tmpdir(char **tmpdir, mpsl_error *err)
{
    if (*tmpdir) {
        return MPSL_OK;
    }
    const char *base = getenv("TMPDIR");
    char *dir = mpsl_strfmt("%s/mpsl-merge-XXXXXX", base && *base ? base : "/tmp");
    if (!dir) {
        return mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory making a temporary folder");
    }
    if (!mkdtemp(dir)) {
        int status = mpsl_errs(err, MPSL_ERR_IO,
                               "cannot make a temporary folder %s for upgraded copies of older "
                               "sources: %s (TMPDIR chooses where)",
                               dir, strerror(errno));
        free(dir);
        return status;
    }
    *tmpdir = dir;
    return MPSL_OK;
}

/* The whole database behind src (its read transaction's snapshot) into a new file. */
static int backup_to(sqlite3 *src, const char *copy_path, const char *path, mpsl_error *err)
{
    sqlite3 *dst = NULL;
    int rc = sqlite3_open_v2(copy_path, &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_backup *b = sqlite3_backup_init(dst, "main", src, "main");
        if (!b) {
            rc = sqlite3_errcode(dst);
        } else {
            rc = sqlite3_backup_step(b, -1);
            int fin = sqlite3_backup_finish(b);
            rc = rc == SQLITE_DONE ? fin : rc;
        }
    }
    int status = MPSL_OK;
    if (rc != SQLITE_OK) {
        if ((rc & 0xff) == SQLITE_CORRUPT || (rc & 0xff) == SQLITE_NOTADB) {
            status = read_error(src, rc, "source", path, "copying it", err);
        } else {
            status = mpsl_errs(err, MPSL_ERR_IO,
                               "cannot copy source '%s' to %s for its upgrade: %s (TMPDIR "
                               "chooses where copies go)",
                               path, copy_path, dst ? sqlite3_errmsg(dst) : sqlite3_errstr(rc));
        }
    }
    sqlite3_close(dst);
    return status;
}

/* Copy a small text file (a journal) byte for byte. */
static int copy_file(const char *from, const char *to, mpsl_error *err)
{
    FILE *in = fopen(from, "rb");
    FILE *out = in ? fopen(to, "wb") : NULL;
    int ok = in && out;
    char buf[8192];
    size_t n;
    while (ok && (n = fread(buf, 1, sizeof buf, in)) > 0) {
        ok = fwrite(buf, 1, n, out) == n;
    }
    ok = ok && !ferror(in);
    if (out && fclose(out) != 0) {
        ok = 0;
    }
    if (in) {
        fclose(in);
    }
    return ok ? MPSL_OK
              : mpsl_errs(err, MPSL_ERR_IO, "cannot copy %s to %s: %s", from, to,
                          strerror(errno));
}

/* Older schema, or final statuses waiting in a journal: read an upgraded copy instead. */
static int open_upgraded_copy(merge_input *in, int index, char **tmpdir, mpsl_error *err)
{
    int rc = make_tmpdir(tmpdir, err);
    if (rc) {
        return rc;
    }
    const char *base = strrchr(in->path, '/');
    in->copy_path = mpsl_strfmt("%s/%d-%s", *tmpdir, index + 1, base ? base + 1 : in->path);
    if (!in->copy_path) {
        return mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory copying '%s'", in->path);
    }
    rc = backup_to(in->file, in->copy_path, in->path, err);
    if (rc == MPSL_OK && in->journal) {
        char *from = mpsl_strfmt("%s.journal", in->abs_path);
        char *to = mpsl_strfmt("%s.journal", in->copy_path);
        rc = from && to ? copy_file(from, to, err)
                        : mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory copying a journal");
        free(from);
        free(to);
    }
    sqlite3_close_v2(in->file); /* ends its read transaction: the copy is read from now on */
    in->file = NULL;
    if (rc) {
        return rc;
    }
    rc = store_open(in->copy_path, STORE_READ_WRITE, &in->copy, err);
    if (rc) {
        mpsl_err_prefix(err, "source '%s' (schema %d): upgrading its temporary copy", in->path,
                        in->schema);
        return rc;
    }
    in->db = store_db(in->copy);
    return MPSL_OK;
}

int merge_input_open(merge_input *in, const char *path, int index, char **tmpdir,
                     mpsl_error *err)
{
    memset(in, 0, sizeof *in);
    in->path = path;
    struct stat st;
    if (stat(path, &st) != 0) {
        return errno == ENOENT
                   ? mpsl_errs(err, MPSL_ERR_INVALID, "source '%s' does not exist", path)
                   : mpsl_errs(err, MPSL_ERR_IO, "cannot read source '%s': %s", path,
                               strerror(errno));
    }
    if (!S_ISREG(st.st_mode)) {
        return mpsl_errs(err, MPSL_ERR_INVALID, "source '%s' is %s, not a results database",
                         path, S_ISDIR(st.st_mode) ? "a directory" : "not a regular file");
    }
    in->dev = st.st_dev;
    in->ino = st.st_ino;
    in->abs_path = realpath(path, NULL);
    if (!in->abs_path) {
        return mpsl_errs(err, MPSL_ERR_IO, "cannot resolve the path of source '%s': %s", path,
                         strerror(errno));
    }
    int rc = check_header(path, "source", err);
    if (rc == MPSL_OK) {
        rc = open_read_only(in->abs_path, "source", path, &in->file, err);
    }
    if (rc) {
        return rc;
    }
    /* One read transaction from here on: the checks, the plan and the copy all see one
     * snapshot of a file that a run may be writing. */
    int sql = sqlite3_exec(in->file, "BEGIN", NULL, NULL, NULL);
    if (sql == SQLITE_OK) {
        sql = store_sql_int(in->file, "PRAGMA user_version", &in->schema);
    }
    if (sql != SQLITE_OK) {
        return read_error(in->file, sql, "source", path, "reading its schema version", err);
    }
    if (in->schema == 0) {
        return mpsl_errs(err, MPSL_ERR_INVALID,
                         "source '%s' is a SQLite database but not an mpsl results database "
                         "(no schema version)",
                         path);
    }
    if (in->schema > STORE_SCHEMA_VERSION) {
        return mpsl_errs(err, MPSL_ERR_INVALID,
                         "source '%s' has schema version %d, this mpsl knows up to %d; upgrade "
                         "mpsl",
                         path, in->schema, STORE_SCHEMA_VERSION);
    }
    rc = quick_check(in->file, path, err);
    if (rc) {
        return rc;
    }
    in->journal = store_file_beside(in->abs_path, ".journal");
    if (in->schema < STORE_SCHEMA_VERSION || in->journal) {
        return open_upgraded_copy(in, index, tmpdir, err);
    }
    in->db = in->file;
    return MPSL_OK;
}

void merge_input_close(merge_input *in)
{
    if (in->file) {
        sqlite3_close_v2(in->file); /* ends the read transaction; nothing was written */
    }
    store_close(in->copy); /* its files go with the temporary folder (merge_tmpdir_remove) */
    free(in->copy_path);
    free(in->abs_path);
    memset(in, 0, sizeof *in);
}

void merge_tmpdir_remove(char *tmpdir)
{
    if (!tmpdir) {
        return;
    }
    DIR *d = opendir(tmpdir);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
            char *p = mpsl_strfmt("%s/%s", tmpdir, e->d_name);
            if (p) {
                unlink(p);
            }
            free(p);
        }
    }
    if (d) {
        closedir(d);
    }
    rmdir(tmpdir);
    free(tmpdir);
}

int merge_output_peek(const char *path, sqlite3 **db, int *exists, int *schema,
                      mpsl_error *err)
{
    *db = NULL;
    *exists = 0;
    *schema = 0;
    struct stat st;
    if (stat(path, &st) == 0) {
        *exists = 1;
        if (!S_ISREG(st.st_mode)) {
            return mpsl_errs(err, MPSL_ERR_INVALID, "output '%s' is %s, not a results database",
                             path, S_ISDIR(st.st_mode) ? "a directory" : "not a regular file");
        }
    } else if (errno != ENOENT) {
        return mpsl_errs(err, MPSL_ERR_IO, "cannot use output '%s': %s", path, strerror(errno));
    }
    int rc = MPSL_OK;
    if (*exists && st.st_size > 0) {
        char *abs_path = realpath(path, NULL);
        if (!abs_path) {
            return mpsl_errs(err, MPSL_ERR_IO, "cannot resolve the path of output '%s': %s",
                             path, strerror(errno));
        }
        rc = check_header(path, "output", err);
        if (rc == MPSL_OK) {
            rc = open_read_only(abs_path, "output", path, db, err);
        }
        free(abs_path);
        int tables = 0, sql = SQLITE_OK;
        if (rc == MPSL_OK) {
            sql = sqlite3_exec(*db, "BEGIN", NULL, NULL, NULL);
            sql = sql ? sql : store_sql_int(*db, "PRAGMA user_version", schema);
            sql = sql ? sql : store_sql_int(*db, STORE_SQL_USER_TABLES, &tables);
            if (sql != SQLITE_OK) {
                rc = read_error(*db, sql, "output", path, "reading its schema", err);
            }
        }
        if (rc == MPSL_OK && *schema > STORE_SCHEMA_VERSION) {
            rc = mpsl_errs(err, MPSL_ERR_INVALID,
                           "output '%s' has schema version %d, this mpsl knows up to %d; "
                           "upgrade mpsl",
                           path, *schema, STORE_SCHEMA_VERSION);
        } else if (rc == MPSL_OK && *schema == 0 && tables > 0) {
            rc = mpsl_errs(err, MPSL_ERR_INVALID,
                           "output '%s' is a SQLite database but not an mpsl results database "
                           "(%d table%s, no schema version); choose another -o",
                           path, tables, tables == 1 ? "" : "s");
        }
        if (rc || *schema > 0) {
            if (rc) {
                sqlite3_close_v2(*db);
                *db = NULL;
            }
            return rc;
        }
        sqlite3_close_v2(*db); /* a SQLite file with no tables yet: as good as new */
        *db = NULL;
    }
    /* Nothing there yet: plan against an empty database. */
    if (sqlite3_open_v2(":memory:", db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
        sqlite3_close(*db);
        *db = NULL;
        return mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory planning the merge");
    }
    return MPSL_OK;
}
