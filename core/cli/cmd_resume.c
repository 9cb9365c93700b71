/* cmd_resume.c: `mpsl resume RUN [--db PATH] [--set KEY=VALUE]... [--force]`: continue a
 * stopped run from its newest checkpoint that verifies, as the same run (same id, its rows
 * kept up to that epoch). The run's stored config is used; a --set that changes it, or
 * plugins whose versions differ from the ones the run recorded, are refused with the
 * differences named unless --force (the run is then tagged forced-resume). */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "results/store.h"
#include "run_cli.h"
#include "train/checkpoint.h"
#include "train/experiment.h"
#include "transport/transport.h"
#include "util/util.h"

#define MAX_RESUME_SETS 64

static void resume_usage(FILE *out)
{
    fprintf(out,
            "usage: mpsl resume RUN [--db PATH] [--set KEY=VALUE]... [--force]\n"
            "  continue run RUN from its newest checkpoint (train.checkpoint.every_epochs)\n"
            "  --db PATH        results database the run is in (default $MPSL_DB, else\n"
            "                   results.db)\n"
            "  --set KEY=VALUE  change the stored config (refused without --force)\n"
            "  --force          accept a changed config or changed plugin versions (the run\n"
            "                   is tagged forced-resume)\n"
            "exit status: 0 finished, 1 refused or failed, 2 usage, 130 interrupted\n");
}

/* The dotted keys whose values differ between two config trees, as "key: old -> new". */
static void config_diff(const cfg_node *a, const cfg_node *b, const char *path, char *buf,
                        size_t size)
{
    size_t used = strlen(buf);
    if (used + 1 >= size || cfg_equal(a, b)) {
        return;
    }
    if (a && b && cfg_node_type(a) == CFG_MAP && cfg_node_type(b) == CFG_MAP) {
        for (size_t i = 0; i < cfg_len(a); i++) {
            const char *k = cfg_key_at(a, i);
            char sub[256];
            snprintf(sub, sizeof sub, "%s%s%s", path, *path ? "." : "", k);
            config_diff(cfg_at(a, i), cfg_get(b, k), sub, buf, size);
        }
        for (size_t i = 0; i < cfg_len(b); i++) {
            const char *k = cfg_key_at(b, i);
            if (!cfg_get(a, k)) {
                char sub[256];
                snprintf(sub, sizeof sub, "%s%s%s", path, *path ? "." : "", k);
                config_diff(NULL, cfg_at(b, i), sub, buf, size);
            }
        }
        return;
    }
    const char *x = a && cfg_scalar(a) ? cfg_scalar(a) : a ? "(a mapping or list)" : "(absent)";
    const char *y = b && cfg_scalar(b) ? cfg_scalar(b) : b ? "(a mapping or list)" : "(absent)";
    snprintf(buf + used, size - used, "\n  %s: %s -> %s", path, x, y);
}

/* Plugins whose name or version differ from what the run recorded. */
static int plugin_changes(store *db, int64_t id, experiment *ex, char *buf, size_t size)
{
    plugin_slot *slots[MPSL_MAX_MODALITIES + 4];
    int n = experiment_slots(ex, slots, (int)MPSL_COUNT(slots)), changes = 0;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(store_db(db), "SELECT name, version FROM run_plugins WHERE "
                           "run_id = ?1 AND slot = ?2", -1, &st, NULL) != SQLITE_OK) {
        return 0;
    }
    for (int i = 0; i < n; i++) {
        const mpsl_plugin_desc *d = slots[i]->plugin.desc;
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_text(st, 2, slots[i]->slot, -1, SQLITE_STATIC);
        const char *name = NULL, *version = NULL;
        if (sqlite3_step(st) == SQLITE_ROW) {
            name = (const char *)sqlite3_column_text(st, 0);
            version = (const char *)sqlite3_column_text(st, 1);
        }
        if (!name || strcmp(name, d->name) != 0 || !version || strcmp(version, d->version)) {
            size_t used = strlen(buf);
            snprintf(buf + used, size - used, "\n  %s: %s %s then, %s %s now", slots[i]->slot,
                     name ? name : "(none)", version ? version : "", d->name, d->version);
            changes++;
        }
    }
    sqlite3_finalize(st);
    return changes;
}

int cmd_resume(int argc, char **argv)
{
    const char *db_path = cli_default_db(), *id_text = NULL;
    const char *sets[MAX_RESUME_SETS];
    int n_sets = 0, force = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            resume_usage(stdout);
            return 0;
        } else if (strcmp(a, "--db") == 0 && i + 1 < argc) {
            db_path = argv[++i];
        } else if (strcmp(a, "--set") == 0 && i + 1 < argc && n_sets < MAX_RESUME_SETS) {
            sets[n_sets++] = argv[++i];
        } else if (strcmp(a, "--force") == 0) {
            force = 1;
        } else if (a[0] != '-' && !id_text) {
            id_text = a;
        } else {
            fprintf(stderr, "mpsl resume: unknown option or missing value: %s\n", a);
            resume_usage(stderr);
            return 2;
        }
    }
    char *end = NULL;
    long long id = id_text ? strtoll(id_text, &end, 10) : 0;
    if (!id_text || *end || id < 1) {
        fprintf(stderr, "mpsl resume: give the id of the run to continue\n");
        resume_usage(stderr);
        return 2;
    }
    mpsl_error err = {{0}};
    store *db = NULL;
    char *yaml = NULL, *exp_path = NULL, *status = NULL, *resolved = NULL;
    char diff[2048] = "";
    cfg_node *root = NULL;
    experiment ex;
    memset(&ex, 0, sizeof ex);
    int built = 0, rc = store_open(db_path, STORE_READ_ONLY, &db, &err);
    if (rc == MPSL_OK) {
        rc = store_run_config(db, id, &yaml, &exp_path, &err);
    }
    if (rc == MPSL_OK) {
        sqlite3_stmt *st = NULL;
        sqlite3_prepare_v2(store_db(db), "SELECT status FROM runs WHERE id = ?1", -1, &st, NULL);
        sqlite3_bind_int64(st, 1, id);
        if (sqlite3_step(st) == SQLITE_ROW) {
            status = mpsl_strdup((const char *)sqlite3_column_text(st, 0));
        }
        sqlite3_finalize(st);
        if (status && strcmp(status, "finished") == 0) {
            rc = mpsl_err(&err, "run %lld finished: there is nothing to resume", id);
        } else if (status && strcmp(status, "running") == 0 && !force) {
            rc = mpsl_err(&err, "run %lld is marked running: if no process runs it any more, "
                          "resume it with --force", id);
        }
    }
    if (rc == MPSL_OK) {
        char name[64];
        snprintf(name, sizeof name, "run %lld", id);
        root = cfg_parse_string(yaml, name, &err);
        rc = root ? MPSL_OK : MPSL_ERR_INVALID;
    }
    for (int i = 0; rc == MPSL_OK && i < n_sets; i++) {
        rc = cfg_apply_override(root, sets[i], &err);
    }
    char *exp_dir = exp_path ? cli_dir_of(exp_path) : mpsl_strdup(".");
    if (rc == MPSL_OK) {
        cfg_node *copy = cfg_clone(root);
        rc = copy ? experiment_build(copy, exp_path, exp_dir, &ex, &err) : MPSL_ERR_NOMEM;
        built = 1;
    }
    int changes = 0;
    if (rc == MPSL_OK) {
        resolved = cfg_to_yaml(ex.root);
        cfg_node *stored = cfg_parse_string(yaml, "stored config", &err);
        if (resolved && stored && strcmp(resolved, yaml) != 0) {
            config_diff(stored, ex.root, "", diff, sizeof diff);
            changes++;
        }
        cfg_free(stored);
        changes += plugin_changes(db, id, &ex, diff, sizeof diff);
        if (changes && !force) {
            rc = mpsl_err(&err, "run %lld would resume with changes (--force accepts them):%s",
                          id, diff);
        }
    }
    /* The newest checkpoint that verifies; a broken one is named and the one before it used. */
    char **paths = NULL, *chosen = NULL;
    int64_t *epochs = NULL;
    int n = 0;
    if (rc == MPSL_OK) {
        rc = store_checkpoint_list(db, id, &paths, &epochs, &n, &err);
    }
    for (int i = 0; rc == MPSL_OK && i < n && !chosen; i++) {
        ckpt_file f;
        mpsl_error e = {{0}};
        if (checkpoint_read(paths[i], &f, &e) == MPSL_OK) {
            if (f.run_id == id && f.epoch * 4294967296LL + f.step == epochs[i]) {
                chosen = paths[i];
            } else {
                snprintf(e.msg, sizeof e.msg, "checkpoint %s belongs to run %lld after %lld "
                         "epochs and %lld steps, not to run %lld as recorded", paths[i],
                         (long long)f.run_id, (long long)f.epoch, (long long)f.step, id);
            }
            checkpoint_free(&f);
        }
        if (!chosen) {
            fprintf(stderr, "mpsl resume: %s; trying the one before\n", e.msg);
        }
    }
    if (rc == MPSL_OK && !chosen) {
        rc = mpsl_err(&err, "run %lld has no usable checkpoint (%d recorded; write them with "
                      "train.checkpoint.every_epochs or every_steps)", id, n);
    }
    store_close(db);
    int exit_status = 1;
    if (rc == MPSL_OK && changes && force) {
        store *w = NULL;
        if (store_open(db_path, STORE_READ_WRITE, &w, &err) == MPSL_OK) {
            sqlite3_stmt *st = NULL;
            sqlite3_prepare_v2(store_db(w), "INSERT OR IGNORE INTO run_tags (run_id, tag) VALUES "
                               "(?1, 'forced-resume')", -1, &st, NULL);
            sqlite3_bind_int64(st, 1, id);
            sqlite3_step(st);
            sqlite3_finalize(st);
            store_close(w);
        }
        fprintf(stderr, "mpsl resume: resuming run %lld with changes (--force):%s\n", id, diff);
    }
    if (rc == MPSL_OK) {
        fprintf(stderr, "mpsl resume: run %lld continues from %s\n", id, chosen);
        run_options opt = {.resume_run_id = id, .resume_checkpoint = chosen};
        cfg_node *run_root = root;
        root = NULL;
        exit_status = transport_mpi_launched()
                          ? run_one(run_root, exp_path, exp_dir, db_path, 1, &opt, NULL, &err)
                          : run_supervised(run_root, exp_path, exp_dir, db_path, 1, &opt, NULL,
                                           &err);
    }
    if (exit_status != 0 && err.msg[0]) {
        fprintf(stderr, "mpsl resume: %s\n", err.msg);
    }
    for (int i = 0; i < n; i++) {
        free(paths[i]);
    }
    free(paths);
    free(epochs);
    if (built) {
        experiment_free(&ex);
    }
    cfg_free(root);
    free(resolved);
    free(yaml);
    free(exp_path);
    free(exp_dir);
    free(status);
    transport_mpi_stop();
    return exit_status;
}
