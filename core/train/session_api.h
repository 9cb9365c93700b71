/* session_api.h: the session API strategies' roles call (mpsl_session_api in plugin.h). */
#ifndef MPSL_SESSION_API_H
#define MPSL_SESSION_API_H

#include "mpsl/plugin.h"
#include "train/optim.h"

/* An optimizer made through the API: the model it steps and its state. */
struct mpsl_optim {
    mpsl_model *m;
    int seq;                    /* its place among the role's optimizers, in creation order */
    optim_state state;
};

/* The table roles get: the plain one, or with MPSL_PROFILE=1 the profiled one. */
const mpsl_session_api *session_api(void);
/* base with the calls that do a run's work timed into profile phases
 * (session_api_profiled.c); built once, from the first base it is given. */
const mpsl_session_api *session_api_profiled(const mpsl_session_api *base);
/* Free an optimizer made through the API. */
void session_optim_free(mpsl_optim *o);

#endif
