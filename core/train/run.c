/* run.c: one run from a validated experiment to a finished row in the results store.
 * Everything that can be refused (database, dataset, partition, model shapes, strategy
 * settings) is checked before the run's row is written; from then on the row always ends as
 * finished, failed or interrupted, never left running (unless a second signal ends the
 * process at once, or it is killed). */
#include "run.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kernels/kernels.h"
#include "kernels/gemm.h"
#include "mpsl_build_config.h"
#include "mpsl_revision.h"
#include "train/audit.h"
#include "train/checkpoint.h"
#include "train/model.h"
#include "train/profile_rows.h"
#include "train/session_api.h"
#include "transport/transport.h"

/* The first SIGINT/SIGTERM asks the strategy to stop at its next check; a second one ends
 * the process at once (for a strategy that never checks). */
static void on_signal(int sig)
{
    if (session_stop_requested) {
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    session_stop_requested = 1;
}

static void install_handlers(struct sigaction *old_int, struct sigaction *old_term)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, old_int);
    sigaction(SIGTERM, &sa, old_term);
    sigaction(SIGHUP, &sa, NULL); /* a closed terminal stops the run like SIGTERM */
    /* a closed output pipe (mpsl run ... | head) must not kill the run before it records
     * how it ended: writes to it fail instead */
    signal(SIGPIPE, SIG_IGN);
}

/* output.save_weights is written at the very end: make its folder now and check it can be
 * written, so a long run cannot fail on its last step for want of a directory. */
static int prepare_save_path(const char *path, mpsl_error *err)
{
    /* The weights go to a temporary file renamed onto path after the last epoch; a path
     * that names a folder (empty, ending in '/', or an existing directory) can never take
     * that rename, so refuse it here rather than after training. */
    size_t len = strlen(path);
    struct stat st;
    if (len == 0 || path[len - 1] == '/') {
        return mpsl_errs(err, MPSL_ERR_INVALID,
                         "output.save_weights: '%s' names a folder, not a file; give a file "
                         "name such as '%smodel.safetensors'",
                         path, path);
    }
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        return mpsl_errs(err, MPSL_ERR_INVALID,
                         "output.save_weights: '%s' is a directory; give a file name such as "
                         "'%s/model.safetensors'",
                         path, path);
    }
    char *dir = mpsl_strdup(path);
    if (!dir) {
        return mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
    }
    char *slash = strrchr(dir, '/');
    int rc = MPSL_OK;
    if (slash && slash != dir) {
        *slash = '\0';
        rc = mpsl_mkdir_p(dir, err);
        if (rc != MPSL_OK) {
            mpsl_err_prefix(err, "output.save_weights");
        }
    } else {
        strcpy(dir, slash ? "/" : ".");
    }
    if (rc == MPSL_OK && access(dir, W_OK) != 0) {
        rc = mpsl_errs(err, MPSL_ERR_IO, "output.save_weights: cannot write in %s: %s", dir,
                       strerror(errno));
    }
    free(dir);
    return rc;
}

/* The dataset's class names as a JSON array (runs.class_names), or NULL when it names none.
 * The names were checked when the dataset opened: printable, no control characters. */
static char *class_names_json(const mpsl_dataset_info *info)
{
    if (!info->class_names || info->n_classes <= 0) {
        return NULL;
    }
    size_t cap = 3;
    for (int64_t c = 0; c < info->n_classes; c++) {
        cap += 2 * strlen(info->class_names[c]) + 3;
    }
    char *out = malloc(cap), *p = out;
    if (!out) {
        return NULL;
    }
    *p++ = '[';
    for (int64_t c = 0; c < info->n_classes; c++) {
        if (c) {
            *p++ = ',';
        }
        *p++ = '"';
        for (const char *t = info->class_names[c]; *t; t++) {
            if (*t == '"' || *t == '\\') {
                *p++ = '\\';
            }
            *p++ = *t;
        }
        *p++ = '"';
    }
    *p++ = ']';
    *p = '\0';
    return out;
}

static int begin_run(mpsl_session *s, const char *db_path, const char *hosts,
                     const run_options *opt, mpsl_error *err)
{
    experiment *ex = s->ex;
    plugin_slot *slots[MPSL_MAX_MODALITIES + 4];
    int n = experiment_slots(ex, slots, (int)MPSL_COUNT(slots));
    store_plugin_row rows[MPSL_MAX_MODALITIES + 4];
    for (int i = 0; i < n; i++) {
        const mpsl_plugin_desc *d = slots[i]->plugin.desc;
        rows[i] = (store_plugin_row){slots[i]->slot, d->name, d->version, slots[i]->plugin.path,
                                     d->abi_major, d->abi_minor};
    }
    char host[256] = "unknown";
    gethostname(host, sizeof host - 1);
    char *yaml = cfg_to_yaml(ex->root), *json = cfg_to_json(ex->root);
    char *classes = class_names_json(&s->info);
    if (!yaml || !json || (s->info.class_names && !classes)) {
        free(yaml);
        free(json);
        free(classes);
        return mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory writing the resolved config");
    }
    store_run_info info = {
        .name = ex->name,
        .experiment_path = ex->path,
        .config_yaml = yaml,
        .seed = ex->train.seed,
        .method = ex->strategy.plugin.desc->name,
        .dataset = ex->dataset.plugin.desc->name,
        .revision = MPSL_REVISION,
        .mpsl_version = MPSL_VERSION,
        .host = host,
        .n_clients = ex->n_clients,
        .transport = s->transport,
        .n_ranks = s->n_ranks,
        .hosts = hosts && hosts[0] ? hosts : host,
        .config_json = json,
        .sweep_id = opt ? opt->sweep_id : NULL,
        .sweep_point = opt ? opt->sweep_point : NULL,
        .class_names = classes,
        .plugins = rows,
        .n_plugins = n,
        .tags = ex->tags,
    };
    int rc = store_run_begin(s->db, &info, &s->run_id, err);
    free(yaml);
    free(json);
    free(classes);
    if (rc != MPSL_OK) {
        mpsl_err_prefix(err, "%s", db_path);
        return rc;
    }
    /* Each client's partition: size and class histogram (none for retrieval, whose labels
     * are item indices, not classes). */
    int64_t n_classes = s->info.task == MPSL_TASK_RETRIEVAL ? 0 : s->info.n_classes;
    int64_t *hist = calloc((size_t)(n_classes ? n_classes : 1), sizeof *hist);
    if (!hist) {
        return mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
    }
    const int32_t *labels = s->dataset_api->labels(s->dataset, MPSL_SPLIT_TRAIN);
    rc = store_begin(s->db, err);
    for (int k = 0; k < ex->n_clients && rc == MPSL_OK; k++) {
        partition_histogram(&s->part, k, labels, n_classes, hist);
        rc = store_client_data(s->db, s->run_id, k, s->part.count[k], hist, n_classes, err);
    }
    if (rc == MPSL_OK) {
        rc = store_commit(s->db, err);
    } else {
        store_rollback(s->db);
    }
    free(hist);
    return rc;
}

/* Ranks on one host share its cores. The protocols keep one side busy while the other waits
 * (the MPSL server computes while its clients wait, FedAvg's clients while the server waits),
 * so the server's rank gets every core of its host and the client ranks share them. Waiting
 * ranks sleep, and one kernel thread has no workers to spin. MPSL_THREADS overrides this. */
static void share_cores(const driver *d, int rank)
{
    const char *env = getenv("MPSL_THREADS");
    if (env && *env) {
        return;
    }
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    long share = rank == 0 ? cores : cores / transport_client_ranks_on_this_host(d);
    kern_set_threads(share >= 1 ? (int)share : 1);
}

/* Resuming: every role's state from the checkpoint; roles start after its epoch. */
static int restore_roles(mpsl_session *s, const char *path, mpsl_error *err)
{
    s->resume_file = calloc(1, sizeof *s->resume_file);
    int K = s->ex->n_clients;
    s->resume_roles = calloc((size_t)K + 1, sizeof *s->resume_roles);
    if (!s->resume_file || !s->resume_roles) {
        return mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
    }
    int rc = checkpoint_read(path, s->resume_file, err);
    if (rc != MPSL_OK) {
        return rc;
    }
    const ckpt_file *f = s->resume_file;
    if (f->n_roles != K + 1 || (f->epoch < 1 && f->step < 1) ||
        f->epoch >= s->ex->train.epochs) {
        return mpsl_err(err, "checkpoint %s holds %d parties after %lld epochs; this run has "
                        "%d and %lld epochs", path, f->n_roles, (long long)f->epoch, K + 1,
                        (long long)s->ex->train.epochs);
    }
    for (int i = 0; i <= K && rc == MPSL_OK; i++) {
        rc = checkpoint_role_parse(f->role[i], f->role_len[i], &s->resume_roles[i], err);
        if (rc == MPSL_OK) {
            rc = checkpoint_role_restore(&s->drv.roles[i], &s->resume_roles[i], err);
        }
        if (rc != MPSL_OK) {
            mpsl_err_prefix(err, "checkpoint %s", path);
        }
        s->drv.roles[i].epochs_ended = f->epoch;
    }
    s->first_epoch = f->epoch;
    s->first_step = f->step;
    s->epochs_done = f->epoch;
    return rc;
}

/* Which processes run which roles: everything here in one process; under MPI the server on
 * rank 0 and client k on transport_rank_of_client(k). */
static uint8_t *local_roles(const mpsl_session *s, int mpi)
{
    int K = s->ex->n_clients;
    uint8_t *local = malloc((size_t)K + 1);
    if (local) {
        local[0] = !mpi || s->rank == 0;
        for (int k = 0; k < K; k++) {
            local[k + 1] = !mpi || transport_rank_of_client(k, K, s->n_ranks) == s->rank;
        }
    }
    return local;
}

/* Under MPI a SIGTERM usually means mpirun is ending the job because a process died: name it
 * when it was on this host, instead of calling the run interrupted. */
static int explain_stop(mpsl_session *s, int rc, mpsl_error *err)
{
    char what[192];
    if (rc == MPSL_ERR_INTERRUPTED && transport_dead_peer(&s->drv, what, sizeof what)) {
        mpsl_role *server = driver_role(&s->drv, MPSL_SERVER);
        return mpsl_errs(err, MPSL_ERR_IO, "%s died; mpirun ended the job (the server had "
                         "ended %lld epoch(s), last step %lld)", what,
                         (long long)server->epochs_ended, (long long)server->step);
    }
    return rc;
}

/* A client rank that outlived the server rank marks the run failed itself (the database is
 * reachable from here when the ranks share a file system, as on one machine). */
static void mark_failed_from_client(mpsl_session *s, const char *db_path, int64_t run_id,
                                    const char *why)
{
    store *db = NULL;
    mpsl_error e = {{0}};
    if (store_open(db_path, STORE_READ_WRITE, &db, &e) == MPSL_OK) {
        char msg[sizeof e.msg];
        snprintf(msg, sizeof msg, "rank %d: %s", s->rank, why);
        store_run_end_if_running(db, run_id, "failed", msg, &e);
        store_close(db);
    }
}

int run_experiment(experiment *ex, const char *db_path, const run_options *opt,
                   run_result *result, mpsl_error *err)
{
    memset(result, 0, sizeof *result);
    mpsl_session s = {.ex = ex, .host = host_services(), .n_ranks = 1, .transport = "local"};
    session_stop_requested = 0;
    const mpsl_strategy_api *strategy = ex->strategy.plugin.desc->api;
    uint8_t *local = NULL;
    int begun = 0;

    /* Signals are caught from the start: one that arrives while the data loads stops the run
     * before its row is written; later ones mark the row interrupted, never 'running'. */
    struct sigaction old_int, old_term;
    install_handlers(&old_int, &old_term);

    /* 0. The transport: MPI when asked for, or by default when mpirun started us. */
    int rc = MPSL_OK, mpi = ex->transport == TRANSPORT_MPI ||
                            (ex->transport == TRANSPORT_AUTO && transport_mpi_launched());
    char hosts[1024] = "";
    int mpi_started = 0;
    if (mpi) {
        rc = transport_mpi_start(&s.rank, &s.n_ranks, err);
        mpi_started = rc == MPSL_OK;
        if (rc == MPSL_OK && s.n_ranks < 2) {
            mpi = 0; /* mpirun -n 1: the whole run in this one process */
        }
    }
    if (rc == MPSL_OK && mpi) {
        s.transport = "mpi";
        rc = transport_attach(&s.drv, hosts, sizeof hosts, err);
        result->mpi = 1;
        result->rank = s.rank;
        share_cores(&s.drv, s.rank);
    }

    /* 1. Everything that can be refused, before the run's row exists (on every rank). */
    const char *trace = getenv("MPSL_MESSAGE_TRACE");
    if (rc == MPSL_OK && s.rank == 0 && trace && *trace && !(s.trace = fopen(trace, "a"))) {
        rc = mpsl_errs(err, MPSL_ERR_IO, "MPSL_MESSAGE_TRACE: cannot open %s: %s", trace,
                       strerror(errno));
    }
    if (rc == MPSL_OK) {
        rc = session_open_data(&s, err);
    }
    if (rc == MPSL_OK) {
        rc = model_probe(&s, err); /* builds every module once: shape and parameter errors */
    }
    if (rc == MPSL_OK && s.rank == 0) {
        rc = audit_open(&s, err); /* the leakage audit's observer, beside the server role */
    }
    if (rc == MPSL_OK) {
        local = local_roles(&s, mpi);
        rc = local ? MPSL_OK : mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
    }
    if (rc == MPSL_OK) {
        /* keep the net ops transport_attach set: driver_init starts from a clean driver */
        const net_ops *net = s.drv.net;
        void *net_state = s.drv.net_state;
        rc = driver_init(&s.drv, &s, strategy, ex->strategy.params, local, err);
        s.drv.net = net;
        s.drv.net_state = net_state;
        s.drv.timeout_s = ex->timeout_s;
    }
    if (rc == MPSL_OK && opt && opt->resume_checkpoint) {
        rc = restore_roles(&s, opt->resume_checkpoint, err);
    }
    if (rc == MPSL_OK && strategy->check) {
        rc = strategy->check(s.host, session_api(), driver_role(&s.drv, MPSL_SERVER),
                             ex->strategy.params, ex->strategy.where, err);
        if (rc != MPSL_OK) {
            mpsl_err_prefix(err, "strategy (plugin '%s')", ex->strategy.plugin.desc->name);
        }
    }
    if (rc == MPSL_OK && ex->save_weights && s.rank == 0) {
        rc = prepare_save_path(ex->save_weights, err);
    }
    /* The database last (rank 0 only): a refused experiment never opens (let alone changes) it. */
    if (rc == MPSL_OK && s.rank == 0) {
        rc = store_open(db_path, STORE_READ_WRITE, &s.db, err);
    }
    if (rc == MPSL_OK && session_stop_requested) {
        rc = mpsl_errs(err, MPSL_ERR_INTERRUPTED, "interrupted by a signal before the run began");
    }
    if (mpi && mpi_started) { /* every rank learns whether any refused */
        rc = transport_agree(rc, err);
    }
    int all_ready = rc == MPSL_OK; /* the same on every rank once they agreed */
    /* 2. The run itself. */
    if (rc == MPSL_OK && s.rank == 0 && opt && opt->resume_run_id) {
        s.run_id = opt->resume_run_id;
        rc = store_run_resume(s.db, s.run_id, s.first_epoch, s.first_step, err);
        begun = rc == MPSL_OK;
    } else if (rc == MPSL_OK && s.rank == 0) {
        rc = begin_run(&s, db_path, hosts, opt, err);
        begun = rc == MPSL_OK;
    }
    if (mpi && all_ready) { /* every rank, whatever rank 0's attempt to begin gave */
        rc = transport_agree(rc, err);
        transport_bcast_i64(&s.run_id);
        begun = rc == MPSL_OK;
    }
    if (begun) {
        result->run_id = s.run_id;
        s.progress = opt ? opt->progress : NULL;
        s.quiet = opt && opt->quiet;
        if (s.progress && s.rank == 0) {
            snprintf(s.progress->db_path, sizeof s.progress->db_path, "%s", db_path);
            s.progress->run_id = s.run_id;
        }
        if (s.rank == 0 && (!opt || !opt->quiet)) {
            char resumed[96] = "";
            if (opt && opt->resume_checkpoint) {
                snprintf(resumed, sizeof resumed, " resumed after epoch %lld, step %lld",
                         (long long)s.first_epoch, (long long)s.first_step);
            }
            fprintf(stderr, "run %lld%s: %s (%s on %s, %d clients%s) -> %s\n",
                    (long long)s.run_id, resumed, ex->name, ex->strategy.plugin.desc->name,
                    ex->dataset.plugin.desc->name, ex->n_clients,
                    mpi ? ", over MPI" : "", db_path);
        }
        /* train.precision: bf16 where this CPU runs it natively, float32 elsewhere (said once
         * per process; each epoch of a bf16 run records precision_bf16) */
        if (!kern_set_precision_bf16(ex->precision_bf16) && ex->precision_bf16) {
            mpsl_log(MPSL_LOG_WARN, "train.precision: bf16 needs a CPU with AVX512_BF16 (and "
                     "MPSL_GEMM_BF16 not set to portable); this one%s computes in float32",
                     mpi ? (s.rank ? " (a client rank)" : " (rank 0)") : "");
        }
        s.started = s.epoch_started = mpsl_now();
        if (profile_on) { /* the profile covers training, not the setup before it */
            profile_counts setup;
            profile_take(&setup, NULL);
        }
        rc = driver_run(&s.drv, err);
        kern_set_precision_bf16(0); /* a later run in this process starts from float32 */
        if (mpi && s.rank > 0) {
            char what[192];
            if (rc == MPSL_ERR_INTERRUPTED && transport_dead_peer(&s.drv, what, sizeof what) &&
                strstr(what, "the server")) {
                mark_failed_from_client(&s, db_path, s.run_id, "the server's process died: "
                                        "mpirun ended the job");
            }
            if (rc != MPSL_ERR_INTERRUPTED) { /* a stop reaches rank 0 too: it records that */
                transport_client_rank_done(&s.drv, rc, err);
            }
        } else if (mpi) {
            if (rc == MPSL_OK) {
                rc = transport_wait_clients(&s.drv, err);
            }
            rc = explain_stop(&s, rc, err);
        }
    }
    if (begun && profile_on) { /* what came after the last epoch's rows, then the table */
        profile_counts rest;
        profile_take(&rest, &s.profile_total);
        char title[96];
        snprintf(title, sizeof title, "profile of run %lld%s (MPSL_PROFILE=1), wall time",
                 (long long)s.run_id, mpi ? (s.rank ? ", a client rank" : ", rank 0") : "");
        profile_print(stderr, title, &s.profile_total);
    }
    if (begun && s.rank == 0) {
        if (rc == MPSL_OK && s.epochs_done < ex->train.epochs && !session_stop_requested) {
            rc = mpsl_errs(err, MPSL_ERR_PLUGIN,
                           "strategy '%s' returned after %lld of %lld epochs without an error",
                           ex->strategy.plugin.desc->name, (long long)s.epochs_done,
                           (long long)ex->train.epochs);
        }
        /* A stop that came after the last epoch (e.g. while the weights were saved) does not
         * undo a finished run. */
        if (session_stop_requested && (rc == MPSL_ERR_INTERRUPTED ||
                                       (rc == MPSL_OK && s.epochs_done < ex->train.epochs))) {
            rc = MPSL_ERR_INTERRUPTED;
            mpsl_errs(err, rc, "interrupted by a signal after %lld epoch(s)",
                      (long long)s.epochs_done);
        }
        result->epochs_done = s.epochs_done;
        result->wall_seconds = mpsl_now() - s.started;
        const char *status = rc == MPSL_OK                 ? "finished"
                             : rc == MPSL_ERR_INTERRUPTED ? "interrupted"
                                                          : "failed";
        snprintf(result->status, sizeof result->status, "%s", status);
        mpsl_error end_err = {{0}};
        const char *end_msg = rc == MPSL_OK ? NULL : err->msg;
        /* MPSL_TEST_STATUS_WRITE_FAILS=1: the tests' stand-in for a database that stays
         * locked, or a full disk, at the very end */
        int end_rc = getenv("MPSL_TEST_STATUS_WRITE_FAILS")
                         ? mpsl_errs(&end_err, MPSL_ERR_IO, "database is locked (test)")
                         : store_run_end(s.db, s.run_id, status, end_msg, result->wall_seconds,
                                         mpsl_peak_rss_bytes(), &end_err);
        if (end_rc != MPSL_OK) {
            /* the status goes to the journal beside the database, applied at its next open */
            mpsl_error jerr = {{0}};
            if (store_journal_status(db_path, s.run_id, status, end_msg, result->wall_seconds,
                                     mpsl_peak_rss_bytes(), &jerr) == MPSL_OK) {
                mpsl_log(MPSL_LOG_WARN, "could not mark run %lld %s in %s (%s); the status "
                         "is saved in %s.journal and is applied the next time mpsl opens the "
                         "database for writing", (long long)s.run_id, status, db_path,
                         end_err.msg, db_path);
                end_rc = MPSL_OK;
            } else {
                mpsl_log(MPSL_LOG_WARN, "could not mark run %lld %s: %s; nor journal it: %s",
                         (long long)s.run_id, status, end_err.msg, jerr.msg);
            }
        }
        if (end_rc == MPSL_OK) {
            if (s.progress) {
                s.progress->status_written = 1;
            }
        } else if (rc == MPSL_OK) {
            rc = MPSL_ERR_IO;
            *err = end_err;
        }
    }
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    if (mpi && rc == MPSL_OK) {
        transport_detach(&s.drv); /* completes every send before MPI_Finalize */
    }
    session_close(&s);
    free(local);
    if (s.trace) {
        fclose(s.trace);
    }
    if (s.db) {
        store_close(s.db);
    }
    return rc;
}
