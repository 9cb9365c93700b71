/* test_store_faults.c: the results database refuses, with a message naming the file, what
 * would otherwise fail mid-training (read-only file or directory, not a database, locked
 * beyond the busy timeout) and keeps what was recorded when the disk fills or a write fails. */
#include <errno.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "results_test.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void make_store(const char *path)
{
    mpsl_error err = {{0}};
    store *s = NULL;
    CHECK(store_open(path, STORE_READ_WRITE, &s, &err) == MPSL_OK);
    store_close(s);
}

/* Opening read-write in a child that cannot write (root drops to nobody, since root may
 * write any file); the child checks the message. */
static void check_refused_as_user(const char *path, const char *want1, const char *want2)
{
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0)) {
            _exit(77); /* cannot drop root here: root writes anything, nothing to test */
        }
        mpsl_error err = {{0}};
        store *s = NULL;
        int rc = store_open(path, STORE_READ_WRITE, &s, &err);
        CHECK(rc != MPSL_OK);
        CHECK(s == NULL);
        CHECK_CONTAINS(err.msg, want1);
        CHECK_CONTAINS(err.msg, want2);
        CHECK_CONTAINS(err.msg, path);
        _exit(check_failures ? 1 : 0);
    }
    int st = 0;
    CHECK(waitpid(pid, &st, 0) == pid);
    if (WIFEXITED(st) && WEXITSTATUS(st) == 77) {
        fprintf(stderr, "note: running as root without setuid: read-only checks skipped\n");
        return;
    }
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void test_read_only(const char *dir)
{
    char *ro = rt_path(dir, "ro");
    CHECK(mkdir(ro, 0755) == 0);
    char *path = rt_path(ro, "results.db");
    make_store(path);
    CHECK(chmod(path, 0444) == 0);
    check_refused_as_user(path, "cannot write results database", "read-only file");
    /* ... and reading it still works. */
    mpsl_error err = {{0}};
    store *s = NULL;
    CHECK(store_open(path, STORE_READ_ONLY, &s, &err) == MPSL_OK);
    store_close(s);

    /* A directory that takes no new file. */
    char *rodir = rt_path(dir, "rodir");
    CHECK(mkdir(rodir, 0555) == 0);
    char *inside = rt_path(rodir, "new.db");
    check_refused_as_user(inside, "cannot create results database", "is not writable");
    CHECK(access(inside, F_OK) != 0);
    chmod(rodir, 0755);
    free(ro);
    free(path);
    free(rodir);
    free(inside);
}

/* What a reader of a results database on read-only media checks (in a child): it opens,
 * reads, and leaves no file beside it; or, given `want`, it is refused with that message. */
static void check_readable(const char *path, const char *want)
{
    mpsl_error err = {{0}};
    store *s = NULL;
    int rc = store_open(path, STORE_READ_ONLY, &s, &err);
    if (want) {
        CHECK(rc != MPSL_OK);
        CHECK_CONTAINS(err.msg, want);
        store_close(s);
        return;
    }
    CHECK(rc == MPSL_OK);
    if (rc != MPSL_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return;
    }
    CHECK(rt_query_int(store_db(s), "SELECT count(*) FROM runs WHERE name = 'kept'") == 1);
    store_close(s);
    char *shm = NULL;
    CHECK(asprintf(&shm, "%s-shm", path) > 0 && access(shm, F_OK) != 0);
    free(shm);
}

/* The database's directory made read-only for the child: as a read-only bind mount in a
 * mount namespace of its own (real read-only media, EROFS, which stops root too), or by
 * dropping to nobody when `as_nobody` (a directory it may not write). Returns 0 when the
 * child could not set that up here (no namespaces; root without setuid), else 1. */
static int read_in_child(const char *media, const char *mnt, int as_nobody, const char *want)
{
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        const char *where = media;
        if (as_nobody) {
            if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0)) {
                _exit(77);
            }
        } else {
            /* Without root, a user namespace may allow the mount. */
            if ((unshare(CLONE_NEWNS) != 0 && unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0) ||
                mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
                mount(media, mnt, NULL, MS_BIND, NULL) != 0 ||
                mount(NULL, mnt, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL) != 0) {
                _exit(77);
            }
            CHECK(access(mnt, W_OK) != 0 && errno == EROFS);
            where = mnt;
        }
        char *path = rt_path(where, "results.db");
        check_readable(path, want);
        free(path);
        _exit(check_failures ? 1 : 0);
    }
    int st = 0;
    CHECK(waitpid(pid, &st, 0) == pid);
    if (WIFEXITED(st) && WEXITSTATUS(st) == 77) {
        return 0;
    }
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    return 1;
}

/* A results database on read-only media (a mounted archive, a read-only share) is read
 * without the -shm file SQLite would make beside it: `mpsl runs` there once said "No such
 * file or directory" for a file that exists. */
static void test_read_only_media(const char *dir)
{
    char *media = rt_path(dir, "media");
    char *mnt = rt_path(dir, "mnt");
    CHECK(mkdir(media, 0755) == 0 && mkdir(mnt, 0755) == 0);
    char *path = rt_path(media, "results.db");
    make_store(path);
    sqlite3 *db = NULL;
    CHECK(sqlite3_open(path, &db) == SQLITE_OK);
    CHECK(sqlite3_exec(db, "INSERT INTO runs (name, config_yaml, seed, method, dataset) "
                           "VALUES ('kept', 'name: kept', 1, 'fedavg', 'synthetic')",
                       NULL, NULL, NULL) == SQLITE_OK);
    CHECK(sqlite3_close(db) == SQLITE_OK); /* the last connection: -wal and -shm go */
    char *wal = rt_path(media, "results.db-wal");
    char *shm = rt_path(media, "results.db-shm");
    CHECK(access(wal, F_OK) != 0 && access(shm, F_OK) != 0);

    int mounted = read_in_child(media, mnt, 0, NULL);
    CHECK(chmod(media, 0555) == 0);
    int dropped = read_in_child(media, mnt, 1, NULL);
    CHECK(chmod(media, 0755) == 0);
    if (!mounted) {
        fprintf(stderr, "note: no mount namespace here: read-only media not tested, only a "
                        "read-only directory\n");
    }
    if (!dropped) {
        fprintf(stderr, "note: running as root without setuid: read-only directory not "
                        "tested\n");
    }
    CHECK(mounted || dropped);

    /* Changes still in a -wal need a -shm to be read: without one, say so. */
    CHECK(sqlite3_open(path, &db) == SQLITE_OK);
    sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
    CHECK(sqlite3_exec(db, "PRAGMA wal_autocheckpoint = 0; "
                           "UPDATE runs SET name = 'renamed' WHERE name = 'kept'",
                       NULL, NULL, NULL) == SQLITE_OK);
    CHECK(sqlite3_close(db) == SQLITE_OK);
    CHECK(access(wal, F_OK) == 0);
    unlink(shm);
    const char *want = "its directory is read-only and";
    read_in_child(media, mnt, 0, want);
    CHECK(chmod(media, 0555) == 0);
    read_in_child(media, mnt, 1, want);
    CHECK(chmod(media, 0755) == 0);
    free(media);
    free(mnt);
    free(path);
    free(wal);
    free(shm);
}

static void test_not_a_database(const char *dir)
{
    char *path = rt_path(dir, "random.db");
    unsigned char bytes[4096];
    unsigned x = 12345;
    for (size_t i = 0; i < sizeof bytes; i++) {
        x = x * 1103515245u + 12345u;
        bytes[i] = (unsigned char)(x >> 16);
    }
    FILE *f = fopen(path, "wb");
    fwrite(bytes, 1, sizeof bytes, f);
    fclose(f);
    mpsl_error err = {{0}};
    store *s = NULL;
    CHECK(store_open(path, STORE_READ_WRITE, &s, &err) != MPSL_OK);
    CHECK_CONTAINS(err.msg, "file is not a database");
    CHECK_CONTAINS(err.msg, path);
    CHECK(store_open(path, STORE_READ_ONLY, &s, &err) != MPSL_OK);
    CHECK_CONTAINS(err.msg, "file is not a database");
    /* The file is exactly as it was. */
    char *after = rt_read_file(path);
    CHECK(after && memcmp(after, bytes, sizeof bytes) == 0);
    free(after);
    /* A directory is not a database either. */
    CHECK(store_open(dir, STORE_READ_WRITE, &s, &err) != MPSL_OK);
    CHECK_CONTAINS(err.msg, "is a directory");
    free(path);
}

static void test_locked(const char *dir)
{
    char *path = rt_path(dir, "locked.db");
    make_store(path);
    sqlite3 *other = NULL;
    CHECK(sqlite3_open(path, &other) == SQLITE_OK);
    CHECK(sqlite3_exec(other, "BEGIN EXCLUSIVE", NULL, NULL, NULL) == SQLITE_OK);
    setenv("MPSL_DB_BUSY_MS", "300", 1);
    mpsl_error err = {{0}};
    store *s = NULL;
    double t0 = now_s();
    CHECK(store_open(path, STORE_READ_WRITE, &s, &err) != MPSL_OK);
    double waited = now_s() - t0;
    CHECK(waited >= 0.25 && waited < 5.0);
    CHECK_CONTAINS(err.msg, "is locked by another process");
    CHECK_CONTAINS(err.msg, "waited 0.3 s");
    CHECK_CONTAINS(err.msg, path);
    /* Readers are not blocked by a writer in WAL mode. */
    CHECK(store_open(path, STORE_READ_ONLY, &s, &err) == MPSL_OK);
    store_close(s);
    s = NULL;

    /* A store that is open already waits as long as it is told, then says so. */
    CHECK(sqlite3_exec(other, "COMMIT", NULL, NULL, NULL) == SQLITE_OK);
    CHECK(store_open(path, STORE_READ_WRITE, &s, &err) == MPSL_OK);
    if (s) {
        store_run_info info = {.name = "locked-out", .n_clients = 1};
        int64_t id = 0;
        CHECK(store_run_begin(s, &info, &id, &err) == MPSL_OK);
        CHECK(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK);
        store_set_busy_timeout(s, 100);
        CHECK(store_begin(s, &err) != MPSL_OK);
        CHECK_CONTAINS(err.msg, "waited 0.1 s");
        CHECK(store_metric(s, id, 0, "test_acc", 0.5, &err) != MPSL_OK);
        CHECK_CONTAINS(err.msg, "locked");
        CHECK(sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL) == SQLITE_OK);
        CHECK(store_metric(s, id, 0, "test_acc", 0.5, &err) == MPSL_OK);
        store_close(s);
    }
    sqlite3_close(other);
    unsetenv("MPSL_DB_BUSY_MS");
    CHECK(rt_file_int(path, "SELECT COUNT(*) FROM epoch_metrics") == 1);
    free(path);
}

static void test_full(const char *dir)
{
    char *path = rt_path(dir, "full.db");
    mpsl_error err = {{0}};
    store *s = NULL;
    CHECK(store_open(path, STORE_READ_WRITE, &s, &err) == MPSL_OK);
    if (!s) {
        free(path);
        return;
    }
    store_run_info info = {.name = "fills-the-disk", .n_clients = 2};
    int64_t id = 0;
    CHECK(store_run_begin(s, &info, &id, &err) == MPSL_OK);
    CHECK(store_begin(s, &err) == MPSL_OK);
    for (int e = 0; e < 10; e++) {
        CHECK(store_metric(s, id, e, "test_acc", e * 0.1, &err) == MPSL_OK);
    }
    CHECK(store_commit(s, &err) == MPSL_OK);

    /* No page beyond those the file has now (what a full disk looks like to SQLite). */
    sqlite3 *db = store_db(s);
    long long pages = rt_query_int(db, "PRAGMA page_count");
    char pragma[64];
    snprintf(pragma, sizeof pragma, "PRAGMA max_page_count = %lld", pages);
    CHECK(sqlite3_exec(db, pragma, NULL, NULL, NULL) == SQLITE_OK);

    CHECK(store_begin(s, &err) == MPSL_OK);
    int rc = MPSL_OK;
    char name[200];
    for (int i = 0; i < 100000 && rc == MPSL_OK; i++) {
        snprintf(name, sizeof name, "a_long_metric_name_that_takes_room_%08d_"
                 "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", i);
        rc = store_metric(s, id, 100, name, i, &err);
    }
    CHECK(rc == MPSL_ERR_IO);
    CHECK_CONTAINS(err.msg, "disk full or size limit reached");
    CHECK_CONTAINS(err.msg, path);
    CHECK_CONTAINS(err.msg, "rows committed before are kept");
    CHECK(store_rollback(s) == MPSL_OK);

    /* What was committed before is intact; nothing of the failed transaction is. */
    CHECK(rt_query_int(db, "SELECT COUNT(*) FROM epoch_metrics WHERE run_id = 1") == 10);
    CHECK(rt_query_int(db, "SELECT COUNT(*) FROM epoch_metrics WHERE epoch = 100") == 0);
    /* Room again: the same store goes on. */
    CHECK(sqlite3_exec(db, "PRAGMA max_page_count = 1073741823", NULL, NULL, NULL) == SQLITE_OK);
    CHECK(store_run_end(s, id, "failed", "disk full", 3.0, -1, &err) == MPSL_OK);
    store_close(s);
    CHECK(rt_file_int(path, "SELECT COUNT(*) FROM runs WHERE status = 'failed'") == 1);
    CHECK(rt_file_int(path, "PRAGMA integrity_check") == 0); /* "ok" reads as 0 */
    free(path);
}

/* A failed write undoes itself only: in autocommit mode and inside the caller's transaction. */
static void test_failed_write_isolated(const char *dir)
{
    char *path = rt_path(dir, "isolated.db");
    mpsl_error err = {{0}};
    store *s = NULL;
    CHECK(store_open(path, STORE_READ_WRITE, &s, &err) == MPSL_OK);
    if (!s) {
        free(path);
        return;
    }
    sqlite3 *db = store_db(s);
    const store_plugin_row bad[] = {{"encoder", NULL, "1", "/x.so", 1, 0}};
    store_run_info info = {.name = "bad-plugins", .plugins = bad, .n_plugins = 1};
    int64_t id = 0;
    CHECK(store_run_begin(s, &info, &id, &err) != MPSL_OK);
    CHECK(rt_query_int(db, "SELECT COUNT(*) FROM runs") == 0);

    store_run_info good = {.name = "good", .n_clients = 1};
    CHECK(store_run_begin(s, &good, &id, &err) == MPSL_OK);
    CHECK(store_begin(s, &err) == MPSL_OK);
    CHECK(store_metric(s, id, 0, "test_acc", 0.5, &err) == MPSL_OK);
    CHECK(store_run_begin(s, &info, &id, &err) != MPSL_OK); /* savepoint rolled back */
    CHECK(store_metric(s, 1, 1, "test_acc", 0.6, &err) == MPSL_OK);
    CHECK(store_commit(s, &err) == MPSL_OK);
    CHECK(rt_query_int(db, "SELECT COUNT(*) FROM runs") == 1);
    CHECK(rt_query_int(db, "SELECT COUNT(*) FROM epoch_metrics") == 2);
    CHECK(store_begin(s, &err) == MPSL_OK);
    CHECK(store_begin(s, &err) != MPSL_OK); /* nested store_begin is a bug, said so */
    CHECK(store_rollback(s) == MPSL_OK);
    CHECK(store_rollback(s) == MPSL_OK); /* harmless without a transaction */
    store_close(s);
    free(path);
}

int main(void)
{
    char *dir = rt_tmpdir();
    CHECK(dir != NULL);
    if (!dir) {
        return check_exit();
    }
    chmod(dir, 0755); /* the unprivileged child must reach the files */
    test_read_only(dir);
    test_read_only_media(dir);
    test_not_a_database(dir);
    test_locked(dir);
    test_full(dir);
    test_failed_write_isolated(dir);
    rt_rmtree(dir);
    free(dir);
    return check_exit();
}
