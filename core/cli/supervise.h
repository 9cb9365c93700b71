/* supervise.h: running experiments in child processes watched by a small parent, so that
 * every run ends with a true status in the database: when a child dies by a signal (a crash,
 * SIGKILL, the OOM killer) or exits without recording how its run ended (a plugin that calls
 * exit()), the parent marks the run failed (or interrupted) with the cause and the last epoch
 * and step the child reported. Several children may run at once (mpsl run --jobs). */
#ifndef MPSL_SUPERVISE_H
#define MPSL_SUPERVISE_H

#include <sys/types.h>

#include "mpsl/plugin.h"
#include "train/run.h"

#define SUPERVISE_MAX_CHILDREN 64

typedef struct supervised {
    pid_t pid;                  /* 0 once it has been waited for */
    run_progress *progress;     /* shared with the child */
} supervised;

/* Start body(ctx, progress) in a child process (its own process group, so that a Ctrl-C on
 * the terminal reaches it once, through this process). While children run, this process
 * forwards SIGINT, SIGTERM and SIGHUP to each. */
int supervise_start(int (*body)(void *ctx, run_progress *progress), void *ctx,
                    supervised *child, mpsl_error *err);
/* Wait for any of the n children with a pid; *which gets its index. Returns the exit status
 * the command should take from it: the child's own, 128 + signal when it died by one, or 1
 * when it exited 0 without recording the end of a run it began; err says why when this
 * process had to mark the run (its message has been printed). */
int supervise_wait_any(supervised *children, int n, int *which, mpsl_error *err);
/* Whether a stop signal has been forwarded since the last supervise_start of an idle parent. */
int supervise_stop_requested(void);

/* Shared memory for a run_progress (MAP_SHARED, so the child's writes are seen here). */
run_progress *supervise_progress_new(void);
void supervise_progress_free(run_progress *p);

#endif
