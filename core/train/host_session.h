/* host_session.h: the session services of the host table (see mpsl_host in plugin.h). */
#ifndef MPSL_HOST_SESSION_H
#define MPSL_HOST_SESSION_H

#include "mpsl/plugin.h"

/* Fill the session entries of a host table. */
void host_session_fill(mpsl_host *table);

#endif
