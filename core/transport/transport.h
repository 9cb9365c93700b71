/* transport.h: running a session's roles in several processes over MPI (docs/distributed.md).
 * Rank 0 runs the server role and is the only writer of the results database; the K client
 * roles are spread evenly over ranks 1..R-1. Messages between processes carry the same
 * payload as in one process, behind a small header; reports and control messages (a rank
 * finished, a rank failed) use the same channel and are not counted as payload.
 * Built without MPI (meson -Dmpi=disabled), every function here refuses with a message. */
#ifndef MPSL_TRANSPORT_H
#define MPSL_TRANSPORT_H

#include <stdint.h>

#include "train/session.h"

/* Whether this process was started by an MPI launcher (mpirun, mpiexec, srun). */
int transport_mpi_launched(void);
/* This process's rank as its MPI launcher gives it (0 when there is none). */
int transport_launched_rank(void);
/* Whether this mpsl was built with MPI. */
int transport_mpi_built(void);

/* MPI_Init (once per process); rank and size of the job. */
int transport_mpi_start(int *rank, int *size, mpsl_error *err);
/* MPI_Finalize, after every pending send completed. */
void transport_mpi_stop(void);
/* End the whole job now (MPI_Abort) with this exit status. */
void transport_mpi_abort(int status);

/* The rank hosting client k of K over `size` ranks (blocks of consecutive clients). */
int transport_rank_of_client(int k, int K, int size);

/* Every rank passes its status; all return the status of the lowest rank that failed, with
 * its message (prefixed with its rank), or MPSL_OK when none did. */
int transport_agree(int rc, mpsl_error *err);
/* Rank 0's value of v, on every rank. */
void transport_bcast_i64(int64_t *v);

/* Set the driver up to exchange messages with the other ranks and learn who they are (pids,
 * hosts). hosts receives this job's distinct host names, comma-separated. */
int transport_attach(driver *d, char *hosts, size_t hosts_size, mpsl_error *err);
void transport_detach(driver *d);
/* How many client ranks (rank > 0) of the job run on this host; at least 1. */
int transport_client_ranks_on_this_host(const driver *d);

/* A client rank that failed: give rank 0 up to `seconds` to record the failure and end the
 * job (MPI_Abort reaches this process too), then end it from here. Does not return. */
void transport_client_rank_linger_and_abort(double seconds, int status);
/* A client rank whose roles ended: tell rank 0 (finished, or failed with err's message). */
void transport_client_rank_done(driver *d, int rc, const mpsl_error *err);
/* Rank 0, once the server role finished: wait until every client rank said it is done.
 * Returns the first failure a client rank reported, or a timeout. */
int transport_wait_clients(driver *d, mpsl_error *err);
/* After SIGTERM under MPI (mpirun ends a job this way when one of its processes dies):
 * whether a peer process on this host is gone. Returns 1 and describes it in `what` (rank,
 * its clients, or the server), else 0. */
int transport_dead_peer(driver *d, char *what, size_t size);

#endif
