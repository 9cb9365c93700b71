/* mpsl_ushaped.h: U-shaped MPSL (strategy.head_on_client: true), the roles in
 * mpsl_ushaped.c, built into the mpsl plugin. mpsl.c decides from its parameters what every
 * role derives alike (the batch per client, the steps of an epoch and each client's share of
 * them) and hands that over as a plan. */
#ifndef MPSL_USHAPED_H
#define MPSL_USHAPED_H

#include <mpsl/plugin.h>

#include "grad_defence.h"

typedef struct ushaped_plan {
    int freeze_tokenizers;    /* tokenizers stay as initialised: no cut-layer gradients */
    int64_t b;                /* samples per client per step */
    int64_t steps;            /* steps of an epoch */
    const int64_t *client_steps; /* (K) the first steps of an epoch client k takes part in */
    int64_t sync_every;       /* every N epochs the clients take the averages; 0 never */
    grad_defence defence;     /* what a client does to d(features) before sending it */
} ushaped_plan;

int ushaped_server(const mpsl_host *h, const mpsl_session_api *api, mpsl_role *r,
                   const ushaped_plan *plan, mpsl_error *err);
int ushaped_client(const mpsl_host *h, const mpsl_session_api *api, mpsl_role *r,
                   const ushaped_plan *plan, mpsl_error *err);

#endif
