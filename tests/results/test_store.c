/* test_store.c: the results store: schema creation and version, migration from an empty
 * database, refusal of newer or foreign schemas, recording a run and its end, and two
 * processes writing one database at once without losing a row. */
#include <sys/wait.h>

#include "results_test.h"

static void test_create(const char *dir)
{
    char *path = rt_path(dir, "create.db");
    mpsl_error err = {{0}};
    store *s = NULL;
    CHECK(store_open(path, STORE_READ_WRITE, &s, &err) == MPSL_OK);
    if (!s) {
        fprintf(stderr, "%s\n", err.msg);
        free(path);
        return;
    }
    sqlite3 *db = store_db(s);
    CHECK(rt_query_int(db, "PRAGMA user_version") == STORE_SCHEMA_VERSION);
    CHECK(rt_query_int(db, "PRAGMA foreign_keys") == 1);
    CHECK(rt_query_int(db, "SELECT COUNT(*) FROM pragma_journal_mode WHERE journal_mode = 'wal'")
          == 1);
    CHECK(rt_query_int(db, "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name IN "
                           "('runs','run_plugins','run_tags','epoch_metrics','client_metrics',"
                           "'comm','compute','client_data','meta')") == 9);
    CHECK(rt_query_int(db, "SELECT COUNT(*) FROM sqlite_master WHERE type = 'view' AND name IN "
                           "('run_summary','epoch_wide','comm_per_client','comm_by_kind',"
                           "'compute_totals')") == 5);
    CHECK(rt_query_int(db, "SELECT COUNT(*) FROM meta WHERE key = 'created_at'") == 1);
    CHECK(!strcmp(store_path(s), path));

    /* A run with plugins and tags. */
    const store_plugin_row plugins[] = {
        {"dataset", "mnist", "1.0.0", "/p/mnist.so", 1, 0},
        {"aggregation", "mpsl", "0.3.1", "/p/mpsl.so", 1, 0},
    };
    const char *tags[] = {"paper", "smoke", "paper", NULL};
    store_run_info info = {.name = "first", .experiment_path = "experiments/q.yaml",
                           .config_yaml = "seed: 7\nepochs: 3\n", .seed = 7,
                           .method = "mpsl", .dataset = "mnist", .revision = "abc123",
                           .mpsl_version = "0.1.0", .host = "box", .n_clients = 4,
                           .plugins = plugins, .n_plugins = 2, .tags = tags};
    int64_t id = 0;
    CHECK(store_run_begin(s, &info, &id, &err) == MPSL_OK);
    CHECK(id == 1);
    CHECK(rt_query_int(db, "SELECT COUNT(*) FROM runs WHERE status = 'running' AND "
                           "started_at LIKE '____-__-__T__:__:__.___Z' AND ended_at IS NULL") == 1);
    CHECK(rt_query_int(db, "SELECT COUNT(*) FROM run_plugins WHERE run_id = 1 AND abi = '1.0'") == 2);
    CHECK(rt_query_int(db, "SELECT COUNT(*) FROM run_tags WHERE run_id = 1") == 2);

    /* A huge seed keeps every digit. */
    store_run_info big = info;
    big.name = "big-seed";
    big.seed = UINT64_MAX;
    big.tags = NULL;
    big.n_plugins = 0;
    int64_t id2 = 0;
    CHECK(store_run_begin(s, &big, &id2, &err) == MPSL_OK);
    CHECK(rt_query_int(db, "SELECT COUNT(*) FROM runs WHERE seed = '18446744073709551615'") == 1);

    /* Figures, one epoch per transaction. */
    for (int e = 0; e < 3; e++) {
        CHECK(store_begin(s, &err) == MPSL_OK);
        CHECK(store_metric(s, id, e, "test_acc", 0.5 + 0.1 * e, &err) == MPSL_OK);
        CHECK(store_metric(s, id, e, "test_loss", 1.0 - 0.2 * e, &err) == MPSL_OK);
        for (int c = 0; c < 4; c++) {
            CHECK(store_client_metric(s, id, e, c, "train_acc", 0.4 + 0.05 * c, &err) == MPSL_OK);
            CHECK(store_comm(s, id, e, c, "up", "activations", 1000, 2, &err) == MPSL_OK);
            CHECK(store_comm(s, id, e, c, "down", "gradients", 500, 2, &err) == MPSL_OK);
            CHECK(store_compute(s, id, e, "client", c, "forward", 1e6, &err) == MPSL_OK);
        }
        CHECK(store_compute(s, id, e, "server", -1, "forward", 4e7, &err) == MPSL_OK);
        CHECK(store_commit(s, &err) == MPSL_OK);
    }
    /* Counters add up, metrics are replaced. */
    CHECK(store_comm(s, id, 2, 0, "up", "activations", 24, 1, &err) == MPSL_OK);
    CHECK(store_metric(s, id, 2, "test_acc", 0.75, &err) == MPSL_OK);
    CHECK(rt_query_int(db, "SELECT bytes FROM comm WHERE run_id = 1 AND epoch = 2 AND client = 0 "
                           "AND direction = 'up'") == 1024);
    const int64_t hist[3] = {10, 0, 5};
    CHECK(store_client_data(s, id, 0, 15, hist, 3, &err) == MPSL_OK);
    CHECK(rt_query_int(db, "SELECT COUNT(*) FROM client_data WHERE class_histogram = '[10,0,5]' "
                           "AND json_array_length(class_histogram) = 3") == 1);

    /* Bad input is refused with a message, not stored. */
    CHECK(store_comm(s, id, 0, 0, "sideways", "x", 1, 1, &err) != MPSL_OK);
    CHECK_CONTAINS(err.msg, "sideways");
    CHECK(store_compute(s, id, 0, "client", 0, "upward", 1, &err) != MPSL_OK);
    CHECK(store_metric(s, 999, 0, "test_acc", 1, &err) != MPSL_OK); /* no such run */
    CHECK_CONTAINS(err.msg, "FOREIGN KEY");

    /* A total over clients (client -1) counts only where there are no per-client rows. */
    CHECK(store_compute(s, id, 0, "client", -1, "forward", 4e6, &err) == MPSL_OK);
    CHECK(store_compute(s, id, 1, "client", -1, "backward", 5e6, &err) == MPSL_OK);

    /* The views. */
    CHECK(rt_query_int(db, "SELECT epochs FROM run_summary WHERE id = 1") == 3);
    CHECK(rt_query_int(db, "SELECT CAST(final_test_acc * 100 + 0.5 AS INTEGER) FROM run_summary "
                           "WHERE id = 1") == 75);
    CHECK(rt_query_int(db, "SELECT CAST(bytes_up_per_client AS INTEGER) FROM run_summary "
                           "WHERE id = 1") == 3006);
    CHECK(rt_query_int(db, "SELECT CAST(client_flops AS INTEGER) FROM run_summary WHERE id = 1")
          == 17000000);
    CHECK(rt_query_int(db, "SELECT CAST(SUM(flops) AS INTEGER) FROM compute_totals "
                           "WHERE run_id = 1 AND party = 'client'") == 17000000);
    CHECK(rt_query_int(db, "SELECT CAST(client_flops AS INTEGER) FROM epoch_wide "
                           "WHERE run_id = 1 AND epoch = 1") == 9000000);
    CHECK(rt_query_int(db, "SELECT CAST(server_flops AS INTEGER) FROM run_summary WHERE id = 1")
          == 120000000);
    CHECK(rt_query_int(db, "SELECT COUNT(*) FROM epoch_wide WHERE run_id = 1 AND bytes_up > 0") == 3);
    CHECK(rt_query_int(db, "SELECT bytes_down FROM comm_per_client WHERE run_id = 1 AND client = 3")
          == 1500);

    /* The end of a run. */
    CHECK(store_run_end(s, id, "running", NULL, 1, 1, &err) != MPSL_OK);
    CHECK_CONTAINS(err.msg, "finished, failed or interrupted");
    CHECK(store_run_end(s, 999, "finished", NULL, 1, 1, &err) != MPSL_OK);
    CHECK_CONTAINS(err.msg, "no run 999");
    CHECK(store_run_end(s, id, "finished", NULL, 12.5, 123456789, &err) == MPSL_OK);
    CHECK(store_run_end(s, id2, "failed", "plugin crashed", -1, -1, &err) == MPSL_OK);
    CHECK(rt_query_int(db, "SELECT COUNT(*) FROM runs WHERE id = 1 AND status = 'finished' AND "
                           "ended_at IS NOT NULL AND wall_seconds = 12.5 AND "
                           "peak_rss_bytes = 123456789") == 1);
    CHECK(rt_query_int(db, "SELECT COUNT(*) FROM runs WHERE id = 2 AND status = 'failed' AND "
                           "message = 'plugin crashed' AND wall_seconds IS NULL") == 1);

    char *yaml = NULL, *exp = NULL;
    CHECK(store_run_config(s, id, &yaml, &exp, &err) == MPSL_OK);
    CHECK(yaml && !strcmp(yaml, "seed: 7\nepochs: 3\n"));
    CHECK(exp && !strcmp(exp, "experiments/q.yaml"));
    free(yaml);
    free(exp);
    CHECK(store_run_config(s, 77, &yaml, &exp, &err) != MPSL_OK);
    CHECK_CONTAINS(err.msg, "no run 77");
    CHECK(store_run_exists(s, 1, &err) == 1);
    CHECK(store_run_exists(s, 77, &err) == 0);
    store_close(s);

    /* Reopening keeps everything; read-only refuses writes. */
    CHECK(store_open(path, STORE_READ_ONLY, &s, &err) == MPSL_OK);
    if (s) {
        CHECK(rt_query_int(store_db(s), "SELECT COUNT(*) FROM epoch_metrics") == 6);
        CHECK(store_metric(s, 1, 9, "test_acc", 1, &err) != MPSL_OK);
        CHECK_CONTAINS(err.msg, "read-only");
        store_close(s);
    }
    free(path);
}

/* A database written by `sqlite3` with a given version and optional tables. */
static void make_raw(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    CHECK(sqlite3_open(path, &db) == SQLITE_OK);
    CHECK(sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(db);
}

static void test_versions(const char *dir)
{
    mpsl_error err = {{0}};
    store *s = NULL;

    /* Version 0: an empty file and an empty SQLite database both upgrade. */
    char *empty = rt_path(dir, "empty.db");
    FILE *f = fopen(empty, "w");
    fclose(f);
    CHECK(store_open(empty, STORE_READ_ONLY, &s, &err) != MPSL_OK);
    CHECK_CONTAINS(err.msg, "not an mpsl results database");
    CHECK(store_open(empty, STORE_READ_WRITE, &s, &err) == MPSL_OK);
    if (s) {
        CHECK(rt_query_int(store_db(s), "PRAGMA user_version") == STORE_SCHEMA_VERSION);
        store_close(s);
    }
    char *v0 = rt_path(dir, "v0.db");
    make_raw(v0, "CREATE TABLE scratch (a); DROP TABLE scratch;");
    CHECK(rt_file_int(v0, "PRAGMA user_version") == 0);
    CHECK(store_open(v0, STORE_READ_WRITE, &s, &err) == MPSL_OK);
    store_close(s);
    CHECK(rt_file_int(v0, "PRAGMA user_version") == STORE_SCHEMA_VERSION);
    CHECK(rt_file_int(v0, "SELECT COUNT(*) FROM run_summary") == 0);

    /* Newer than this build: refused both ways, the file untouched. */
    char *v7 = rt_path(dir, "v7.db");
    make_raw(v7, "CREATE TABLE runs (id INTEGER PRIMARY KEY); PRAGMA user_version = 7;");
    CHECK(store_open(v7, STORE_READ_WRITE, &s, &err) != MPSL_OK);
    CHECK(s == NULL);
    char want[512];
    snprintf(want, sizeof want, "%s has schema version 7, this mpsl knows up to %d; upgrade mpsl",
             v7, STORE_SCHEMA_VERSION);
    CHECK_CONTAINS(err.msg, want);
    CHECK(store_open(v7, STORE_READ_ONLY, &s, &err) != MPSL_OK);
    CHECK_CONTAINS(err.msg, want);
    CHECK(rt_file_int(v7, "PRAGMA user_version") == 7);
    CHECK(rt_file_int(v7, "SELECT COUNT(*) FROM sqlite_master WHERE name = 'meta'") == 0);

    /* Someone else's database: refused, untouched. */
    char *foreign = rt_path(dir, "foreign.db");
    make_raw(foreign, "CREATE TABLE invoices (n); INSERT INTO invoices VALUES (1);");
    CHECK(store_open(foreign, STORE_READ_WRITE, &s, &err) != MPSL_OK);
    CHECK_CONTAINS(err.msg, "not an mpsl results database");
    CHECK_CONTAINS(err.msg, foreign);
    CHECK(rt_file_int(foreign, "SELECT COUNT(*) FROM sqlite_master") == 1);

    /* Reading a file that is not there. */
    char *missing = rt_path(dir, "missing.db");
    CHECK(store_open(missing, STORE_READ_ONLY, &s, &err) != MPSL_OK);
    CHECK_CONTAINS(err.msg, "no results database");
    CHECK(access(missing, F_OK) != 0);
    char *nodir = rt_path(dir, "no/such/dir/r.db");
    CHECK(store_open(nodir, STORE_READ_WRITE, &s, &err) != MPSL_OK);
    CHECK_CONTAINS(err.msg, "does not exist");
    free(empty);
    free(v0);
    free(v7);
    free(foreign);
    free(missing);
    free(nodir);
}

enum { CONC_RUNS = 15, CONC_EPOCHS = 8, CONC_METRICS = 4, CONC_CLIENTS = 3 };

/* One writer: its own connection, every epoch in one immediate transaction. */
static int writer(const char *path, int who)
{
    mpsl_error err = {{0}};
    store *s = NULL;
    if (store_open(path, STORE_READ_WRITE, &s, &err) != MPSL_OK) {
        fprintf(stderr, "writer %d: %s\n", who, err.msg);
        return 1;
    }
    static const char *const names[CONC_METRICS] = {"test_acc", "test_loss", "train_loss",
                                                    "epoch_seconds"};
    for (int r = 0; r < CONC_RUNS; r++) {
        char name[64];
        snprintf(name, sizeof name, "writer%d-run%d", who, r);
        store_run_info info = {.name = name, .method = who ? "fedavg" : "mpsl",
                               .dataset = "mnist", .n_clients = CONC_CLIENTS};
        int64_t id = 0;
        if (store_run_begin(s, &info, &id, &err) != MPSL_OK) {
            goto fail;
        }
        for (int e = 0; e < CONC_EPOCHS; e++) {
            if (store_begin(s, &err) != MPSL_OK) {
                goto fail;
            }
            for (int m = 0; m < CONC_METRICS; m++) {
                if (store_metric(s, id, e, names[m], e * 0.1 + m, &err) != MPSL_OK) {
                    goto fail;
                }
            }
            for (int c = 0; c < CONC_CLIENTS; c++) {
                if (store_comm(s, id, e, c, "up", "activations", 100 + c, 1, &err) ||
                    store_client_metric(s, id, e, c, "train_acc", 0.5, &err)) {
                    goto fail;
                }
            }
            if (store_commit(s, &err) != MPSL_OK) {
                goto fail;
            }
        }
        if (store_run_end(s, id, "finished", NULL, 1.0, 1000, &err) != MPSL_OK) {
            goto fail;
        }
    }
    store_close(s);
    return 0;
fail:
    fprintf(stderr, "writer %d: %s\n", who, err.msg);
    store_rollback(s);
    store_close(s);
    return 1;
}

static void test_concurrent(const char *dir)
{
    char *path = rt_path(dir, "shared.db");
    /* Both start on a file that does not exist yet: the creation itself is contended. */
    pid_t pids[2];
    for (int w = 0; w < 2; w++) {
        pids[w] = fork();
        if (pids[w] == 0) {
            _exit(writer(path, w));
        }
    }
    for (int w = 0; w < 2; w++) {
        int st = 0;
        CHECK(waitpid(pids[w], &st, 0) == pids[w]);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    CHECK(rt_file_int(path, "SELECT COUNT(*) FROM runs WHERE status = 'finished'")
          == 2 * CONC_RUNS);
    CHECK(rt_file_int(path, "SELECT COUNT(*) FROM epoch_metrics")
          == 2 * CONC_RUNS * CONC_EPOCHS * CONC_METRICS);
    CHECK(rt_file_int(path, "SELECT COUNT(*) FROM comm")
          == 2 * CONC_RUNS * CONC_EPOCHS * CONC_CLIENTS);
    CHECK(rt_file_int(path, "SELECT COUNT(*) FROM client_metrics")
          == 2 * CONC_RUNS * CONC_EPOCHS * CONC_CLIENTS);
    /* Each run's rows belong to it: every run has all its epochs. */
    CHECK(rt_file_int(path, "SELECT COUNT(*) FROM run_summary WHERE epochs = 8") == 2 * CONC_RUNS);
    CHECK(rt_file_int(path, "SELECT COUNT(DISTINCT name) FROM runs") == 2 * CONC_RUNS);
    CHECK(rt_file_int(path, "SELECT COUNT(*) FROM pragma_journal_mode "
                            "WHERE journal_mode = 'wal'") == 1);
    free(path);
}

static char *dir; /* static: the forked writers _exit with it still reachable */

int main(void)
{
    dir = rt_tmpdir();
    CHECK(dir != NULL);
    if (!dir) {
        return check_exit();
    }
    test_create(dir);
    test_versions(dir);
    test_concurrent(dir);
    rt_rmtree(dir);
    free(dir);
    return check_exit();
}
