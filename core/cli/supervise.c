/* supervise.c: see supervise.h. */
#include "supervise.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "results/store.h"
#include "util/util.h"

/* The children running now, for the signal forwarder. */
static volatile sig_atomic_t live_pid[SUPERVISE_MAX_CHILDREN];
static volatile sig_atomic_t stop_forwarded;
static int handlers_installed;
static struct sigaction old_int, old_term, old_hup;

static void forward(int sig)
{
    stop_forwarded = 1;
    for (int i = 0; i < SUPERVISE_MAX_CHILDREN; i++) {
        if (live_pid[i] > 0) {
            kill((pid_t)live_pid[i], sig);
        }
    }
}

static void install(void)
{
    signal(SIGPIPE, SIG_IGN); /* a closed output pipe must not take the watcher down */
    if (!handlers_installed) {
        struct sigaction sa = {.sa_handler = forward};
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, &old_int);
        sigaction(SIGTERM, &sa, &old_term);
        sigaction(SIGHUP, &sa, &old_hup);
        handlers_installed = 1;
        stop_forwarded = 0;
    }
}

static void uninstall_if_idle(void)
{
    for (int i = 0; i < SUPERVISE_MAX_CHILDREN; i++) {
        if (live_pid[i] > 0) {
            return;
        }
    }
    if (handlers_installed) {
        sigaction(SIGINT, &old_int, NULL);
        sigaction(SIGTERM, &old_term, NULL);
        sigaction(SIGHUP, &old_hup, NULL);
        handlers_installed = 0;
    }
}

int supervise_stop_requested(void) { return stop_forwarded; }

run_progress *supervise_progress_new(void)
{
    void *p = mmap(NULL, sizeof(run_progress), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

void supervise_progress_free(run_progress *p)
{
    if (p) {
        munmap(p, sizeof *p);
    }
}

int supervise_start(int (*body)(void *ctx, run_progress *progress), void *ctx,
                    supervised *child, mpsl_error *err)
{
    int slot = -1;
    for (int i = 0; i < SUPERVISE_MAX_CHILDREN && slot < 0; i++) {
        slot = live_pid[i] == 0 ? i : -1;
    }
    if (slot < 0) {
        return mpsl_err(err, "more than %d runs at once", SUPERVISE_MAX_CHILDREN), 1;
    }
    memset(child->progress, 0, sizeof *child->progress);
    install();
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        uninstall_if_idle();
        return mpsl_err(err, "cannot start the run's process: %s", strerror(errno)), 1;
    }
    if (pid == 0) {
        /* The child handles its own signals (train/run.c installs them). */
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGHUP, SIG_DFL);
        setpgid(0, 0);
        int status = body(ctx, child->progress);
        fflush(NULL);
        _exit(status);
    }
    setpgid(pid, pid); /* also here: whichever runs first, the group exists before signals */
    child->pid = pid;
    live_pid[slot] = pid;
    return 0;
}

/* Record how the run ended, when the child could not. */
static void mark(const run_progress *p, const char *status, const char *why, mpsl_error *err)
{
    char msg[sizeof err->msg];
    snprintf(msg, sizeof msg, "%s during epoch %lld (after step %lld)", why,
             (long long)p->epoch + 1, (long long)p->step);
    mpsl_errs(err, MPSL_ERR_PLUGIN, "run %lld %s: %s", (long long)p->run_id, status, msg);
    fprintf(stderr, "mpsl run: %s\n", err->msg);
    store *db = NULL;
    mpsl_error e = {{0}};
    int rc = store_open(p->db_path, STORE_READ_WRITE, &db, &e);
    if (rc == MPSL_OK) {
        rc = store_run_end_if_running(db, p->run_id, status, msg, &e);
        store_close(db);
    }
    if (rc != MPSL_OK) { /* the journal beside the database takes it, as the run would */
        mpsl_error je = {{0}};
        if (store_journal_status(p->db_path, p->run_id, status, msg, -1.0, -1, &je) == MPSL_OK) {
            mpsl_log(MPSL_LOG_WARN, "could not mark run %lld %s in %s (%s); saved in %s.journal, "
                     "applied the next time mpsl opens the database for writing",
                     (long long)p->run_id, status, p->db_path, e.msg, p->db_path);
        } else {
            mpsl_log(MPSL_LOG_WARN, "could not mark run %lld %s in %s: %s", (long long)p->run_id,
                     status, p->db_path, e.msg);
        }
    }
}

static int outcome(int wstatus, const run_progress *progress, mpsl_error *err)
{
    int begun_unended = progress->run_id > 0 && !progress->status_written;
    if (WIFSIGNALED(wstatus)) {
        int sig = WTERMSIG(wstatus);
        char why[96];
        snprintf(why, sizeof why, "the run's process was killed by %s",
                 sigabbrev_np(sig) ? sigabbrev_np(sig) : "a signal");
        if (begun_unended) {
            /* A stop the user asked for that had to end the process is an interruption. */
            int asked = stop_forwarded && (sig == SIGINT || sig == SIGTERM || sig == SIGHUP);
            mark(progress, asked ? "interrupted" : "failed", why, err);
        } else {
            mpsl_err(err, "%s", why);
        }
        return 128 + sig;
    }
    int code = WEXITSTATUS(wstatus);
    if (code == 0 && progress->run_id == 0) {
        /* run_one exits 0 only for a run it recorded as finished: this is a plugin calling
         * exit(0) before the run's row existed */
        mpsl_err(err, "the run's process exited with status 0 before the run began (a plugin "
                 "that calls exit()?); nothing was recorded");
        return 1;
    }
    if (begun_unended) {
        char why[96];
        snprintf(why, sizeof why, "the run's process exited with status %d without recording "
                 "how the run ended", code);
        mark(progress, "failed", why, err);
        return code ? code : 1;
    }
    return code;
}

int supervise_wait_any(supervised *children, int n, int *which, mpsl_error *err)
{
    for (;;) {
        int wstatus = 0;
        pid_t pid = waitpid(-1, &wstatus, 0);
        if (pid < 0) {
            if (errno == EINTR) {
                continue;
            }
            return mpsl_err(err, "waiting for the runs: %s", strerror(errno)), 1;
        }
        for (int i = 0; i < SUPERVISE_MAX_CHILDREN; i++) {
            if (live_pid[i] == pid) {
                live_pid[i] = 0;
            }
        }
        for (int i = 0; i < n; i++) {
            if (children[i].pid == pid) {
                children[i].pid = 0;
                *which = i;
                uninstall_if_idle();
                return outcome(wstatus, children[i].progress, err);
            }
        }
        /* not one of ours (another child of this process): keep waiting */
    }
}
