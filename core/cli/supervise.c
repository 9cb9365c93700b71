/* supervise.c: see supervise.h. The child is put in its own process group so that a Ctrl-C
 * on the terminal reaches it once, through the parent, and not twice (a second stop signal
 * ends a run at once). */
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

static volatile sig_atomic_t child_pid;
static volatile sig_atomic_t stop_forwarded;

static void forward(int sig)
{
    if (child_pid > 0) {
        kill((pid_t)child_pid, sig);
        stop_forwarded = 1;
    }
}

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

/* Record how the run ended, when the child could not. */
static void mark(const run_progress *p, const char *status, const char *why, mpsl_error *err)
{
    char msg[sizeof err->msg];
    snprintf(msg, sizeof msg, "%s during epoch %lld (after step %lld)", why,
             (long long)p->epoch + 1, (long long)p->step);
    mpsl_errs(err, MPSL_ERR_PLUGIN, "run %lld %s: %s", (long long)p->run_id, status, msg);
    store *db = NULL;
    mpsl_error e = {{0}};
    int rc = store_open(p->db_path, STORE_READ_WRITE, &db, &e);
    if (rc == MPSL_OK) {
        rc = store_run_end_if_running(db, p->run_id, status, msg, &e);
        store_close(db);
    }
    if (rc != MPSL_OK) {
        mpsl_log(MPSL_LOG_WARN, "could not mark run %lld %s in %s: %s", (long long)p->run_id,
                 status, p->db_path, e.msg);
    }
}

int supervise(int (*body)(void *ctx, run_progress *progress), void *ctx,
              run_progress *progress, mpsl_error *err)
{
    memset(progress, 0, sizeof *progress);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        return mpsl_err(err, "cannot start the run's process: %s", strerror(errno)), 1;
    }
    if (pid == 0) {
        setpgid(0, 0);
        int status = body(ctx, progress);
        fflush(NULL);
        _exit(status);
    }
    setpgid(pid, pid); /* also here: whichever runs first, the group exists before signals */
    child_pid = pid;
    stop_forwarded = 0;
    struct sigaction sa = {.sa_handler = forward}, old_int, old_term, old_hup;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    sigaction(SIGHUP, &sa, &old_hup);
    int wstatus = 0;
    while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
    }
    child_pid = 0;
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    sigaction(SIGHUP, &old_hup, NULL);

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
    if (begun_unended) {
        char why[96];
        snprintf(why, sizeof why, "the run's process exited with status %d without recording "
                 "how the run ended", code);
        mark(progress, "failed", why, err);
        return code ? code : 1;
    }
    return code;
}
