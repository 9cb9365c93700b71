/* journal.c: the final status of a run that could not be written (the database stayed
 * locked past the busy timeout, the disk was full) goes to a small text file beside the
 * database, DB.journal, one line per run: "mpsl-status<TAB>run<TAB>status<TAB>wall<TAB>
 * rss<TAB>message" (tabs and newlines in the message become spaces). The next time mpsl opens
 * the database for writing it applies every line to runs still marked running, then removes
 * the file; so a run never stays 'running' because its last write failed. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store.h"
#include "store_internal.h"
#include "util/util.h"

static char *journal_path(const char *db_path) { return mpsl_strfmt("%s.journal", db_path); }

int store_journal_status(const char *db_path, int64_t run_id, const char *status,
                         const char *message, double wall_seconds, int64_t peak_rss_bytes,
                         mpsl_error *err)
{
    char *path = journal_path(db_path);
    FILE *f = path ? fopen(path, "a") : NULL;
    if (!f) {
        int rc = mpsl_errs(err, MPSL_ERR_IO, "cannot write %s: %s", path ? path : db_path,
                           strerror(errno));
        free(path);
        return rc;
    }
    fprintf(f, "mpsl-status\t%" PRId64 "\t%s\t%.17g\t%" PRId64 "\t", run_id, status,
            wall_seconds, peak_rss_bytes);
    for (const char *p = message ? message : ""; *p; p++) {
        fputc(*p == '\t' || *p == '\n' || *p == '\r' ? ' ' : *p, f);
    }
    fputc('\n', f);
    int rc = MPSL_OK;
    if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
        rc = mpsl_errs(err, MPSL_ERR_IO, "cannot write %s: %s", path, strerror(errno));
    }
    if (fclose(f) != 0 && rc == MPSL_OK) {
        rc = mpsl_errs(err, MPSL_ERR_IO, "cannot write %s: %s", path, strerror(errno));
    }
    free(path);
    return rc;
}

int store_journal_apply(store *s, mpsl_error *err)
{
    char *path = journal_path(s->path);
    FILE *f = path ? fopen(path, "r") : NULL;
    if (!f) {
        free(path);
        return MPSL_OK; /* nothing waiting */
    }
    char line[4096];
    int rc = MPSL_OK;
    while (rc == MPSL_OK && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        char *fields[6] = {0};
        char *p = line;
        for (int i = 0; i < 6 && p; i++) {
            fields[i] = p;
            char *tab = i < 5 ? strchr(p, '\t') : NULL;
            if (tab) {
                *tab = '\0';
            }
            p = tab ? tab + 1 : NULL;
        }
        if (!fields[5] || strcmp(fields[0], "mpsl-status") != 0) {
            continue; /* a torn last line: nothing to apply */
        }
        int64_t id = strtoll(fields[1], NULL, 10);
        rc = store_run_end_if_running(s, id, fields[2], fields[5][0] ? fields[5] : NULL, err);
        if (rc == MPSL_OK && strtod(fields[3], NULL) >= 0) {
            /* the run's summary figures, as the run measured them (a watcher that marked
             * a dead run has none: it writes -1) */
            sqlite3_stmt *st = NULL;
            if (sqlite3_prepare_v2(s->db, "UPDATE runs SET wall_seconds = ?2, peak_rss_bytes = "
                                   "?3 WHERE id = ?1 AND wall_seconds IS NULL", -1, &st,
                                   NULL) == SQLITE_OK) {
                sqlite3_bind_int64(st, 1, id);
                sqlite3_bind_double(st, 2, strtod(fields[3], NULL));
                sqlite3_bind_int64(st, 3, strtoll(fields[4], NULL, 10));
                sqlite3_step(st);
            }
            sqlite3_finalize(st);
            mpsl_log(MPSL_LOG_INFO, "run %lld: applied its final status '%s' from %s",
                     (long long)id, fields[2], path);
        }
    }
    fclose(f);
    if (rc == MPSL_OK && unlink(path) != 0) {
        rc = mpsl_errs(err, MPSL_ERR_IO, "cannot remove %s after applying it: %s", path,
                       strerror(errno));
    }
    free(path);
    return rc;
}
