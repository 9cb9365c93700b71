/* supervise.h: running one experiment in a child process watched by a small parent, so that
 * every run ends with a true status in the database: when the child dies by a signal (a
 * crash, SIGKILL, the OOM killer) or exits without recording how the run ended (a plugin
 * that calls exit()), the parent marks the run failed (or interrupted) with the cause and the
 * last epoch and step the child reported. */
#ifndef MPSL_SUPERVISE_H
#define MPSL_SUPERVISE_H

#include "mpsl/plugin.h"
#include "train/run.h"

/* Run body(ctx) in a child process, which gets `progress` (shared with the parent) to fill
 * in; wait for it, forwarding SIGINT, SIGTERM and SIGHUP to it once each. Returns the exit
 * status the command should end with: the child's own, 128 + signal when it died by one, or
 * 1 when it exited 0 without recording the end of a run it began. err says why when the
 * parent had to mark the run. *progress stays readable after the call. */
int supervise(int (*body)(void *ctx, run_progress *progress), void *ctx,
              run_progress *progress, mpsl_error *err);

/* Shared memory for a run_progress (MAP_SHARED, so the child's writes are seen here). */
run_progress *supervise_progress_new(void);
void supervise_progress_free(run_progress *p);

#endif
