/* run.h: running a validated experiment and recording it in the results store. */
#ifndef MPSL_RUN_H
#define MPSL_RUN_H

#include "train/experiment.h"
#include "train/session.h"

typedef struct run_options {
    int quiet;                  /* nothing on stderr but warnings and errors */
    /* a sweep's point (sweep.c): the id its points share and this point's swept keys and
     * values as a JSON object; both NULL for a run outside a sweep */
    const char *sweep_id;
    const char *sweep_point;
    run_progress *progress;     /* NULL when nobody watches */
    /* resume (`mpsl resume`): continue run resume_run_id from this checkpoint file instead of
     * starting a new run */
    int64_t resume_run_id;
    const char *resume_checkpoint;
} run_options;

typedef struct run_result {
    int64_t run_id;             /* 0 when the run was refused before it began */
    char status[16];            /* finished, failed, interrupted */
    int64_t epochs_done;
    double wall_seconds;
    int mpi;                    /* the run went over MPI: the process must end through MPI */
    int rank;                   /* this process's rank (0: the server and the database) */
} run_result;

/* Open the store at db_path, the data and the strategy, then run. Returns MPSL_OK when the
 * run finished; MPSL_ERR_INTERRUPTED after SIGINT/SIGTERM (the run is marked interrupted);
 * another status with err set otherwise (marked failed if it had begun). */
int run_experiment(experiment *ex, const char *db_path, const run_options *opt,
                   run_result *result, mpsl_error *err);

#endif
