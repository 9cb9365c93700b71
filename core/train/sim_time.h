/* sim_time.h: the simulated wall time of a run under the network model (netmodel.h): each
 * role closes an interval of its work at every step_end and at its epoch_end, turning the
 * FLOPs it was charged and the bytes and messages it moved into simulated seconds; clients
 * hand theirs to the server in their end-of-epoch report, and the server stores the epoch's
 * simulated time beside the measured one. Nothing here changes what a run computes. */
#ifndef MPSL_SIM_TIME_H
#define MPSL_SIM_TIME_H

#include "train/netmodel.h"
#include "train/roles.h"

/* End the role's current interval as slot `slot` (a 1-based step, or NETMODEL_EPOCH_END);
 * an interval without work adds no row. Does nothing when the network model is off. */
int sim_time_close(mpsl_role *r, int64_t slot);
/* Start the role's next interval from its counters as they are now (a resumed role: what
 * it did before the checkpoint belongs to no interval). */
void sim_time_mark(mpsl_role *r);
/* A counted message of `bytes` reached the role (its downlink, for a client). */
void sim_time_received(mpsl_role *r, int64_t bytes);
/* The server's epoch_end: take client k's rows (from its report). */
int sim_time_collect(mpsl_session *s, int client, const sim_row *rows, int n);
/* The server's epoch_end, inside its transaction: store sim_epoch_seconds,
 * sim_server_seconds and each client's sim_compute_seconds and sim_transfer_seconds, from
 * the collected rows and the server's own; then forget them. */
int sim_time_store(mpsl_role *server, int64_t epoch, mpsl_error *err);

#endif
