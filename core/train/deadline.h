/* deadline.h: the predicted simulated time of a client's work in a slot, for
 * strategy.deadline (deadline.c; the session API's work_seconds). */
#ifndef MPSL_DEADLINE_H
#define MPSL_DEADLINE_H

#include "mpsl/plugin.h"

typedef struct mpsl_session mpsl_session;

/* Seconds client `client` would take for `w` under the experiment's network model; -1 with
 * err set when there is no model or w is malformed. */
double deadline_work_seconds(mpsl_session *s, int client, const mpsl_slot_work *w,
                             mpsl_error *err);

#endif
