/* roles.h: the parties of a run as roles (see mpsl_strategy_api in plugin.h) and the driver
 * that runs them. Each role is a fiber with its own resources (models, optimizers, batches,
 * memory), counters (FLOPs, bytes it sent, compute and wait time) and mailbox. The driver
 * resumes roles that can make progress, in a fixed order; when none can, it asks the network
 * (under MPI) or reports the deadlock (in one process). */
#ifndef MPSL_ROLES_H
#define MPSL_ROLES_H

#include <stdint.h>

#include "mpsl/plugin.h"
#include "util/util.h"

typedef struct mpsl_session mpsl_session;
typedef struct fiber fiber;
typedef struct message message;
typedef struct broadcast broadcast;

/* Kinds the message layer uses for itself, after the strategy-visible ones. They carry
 * instrumentation and control, are never counted as payload bytes, and strategies cannot
 * send them. */
enum {
    MSG_REPORT = MPSL_MSG_KIND_COUNT, /* a client's end-of-epoch report, to the server */
    MSG_FAILED,                       /* a client rank's failure, to the server rank */
    MSG_DONE,                         /* a client rank has finished all its roles */
    MSG_CHECKPOINT,                   /* a client's saved state, to the server */
    MSG_HEARTBEAT,                    /* the server's rank is alive (MPI, while it waits) */
    MSG_AUDIT_LABELS,                 /* a client's drawn labels, to the leakage audit's
                                         observer only (audit.h), never to a role */
    MSG_KIND_ALL
};

typedef enum role_state {
    ROLE_READY = 0,     /* can run */
    ROLE_WAITING,       /* in recv, for (wait_from, wait_kind) */
    ROLE_FINISHED,      /* its function returned (rc says how) */
    ROLE_REMOTE         /* runs in another process */
} role_state;

/* A figure a client recorded this epoch, reported to the server at epoch_end. */
typedef struct role_metric {
    char name[48];
    double value;
} role_metric;

/* Training figures of metrics.every_steps steps of one role (session_api.c's loss): the
 * steps of this epoch so far, the samples of the interval, their summed loss (each batch's
 * loss times its samples) and correct predictions. Plain data: it crosses processes. */
typedef struct role_step_row {
    int64_t step;
    int64_t samples;
    double loss_sum;
    int64_t hits;
} role_step_row;

/* Something a role created, released when the role ends. */
typedef enum { RES_MEMORY, RES_MODEL, RES_OPTIM, RES_BATCH } resource_kind;
typedef struct resource {
    resource_kind kind;
    void *p;
} resource;

struct mpsl_role {
    mpsl_session *s;
    int id;                     /* MPSL_SERVER or the client index */
    role_state state;
    fiber *fiber;
    int wait_from, wait_kind;
    int rc;                     /* its function's status once finished */
    mpsl_error err;

    mpsl_rng rng;               /* api->random */
    mpsl_rng shared;            /* api->shared_random: the same stream in every role */

    /* this epoch's counters (reset at each epoch_end) */
    double flops[2];            /* [MPSL_PASS_FORWARD], [MPSL_PASS_BACKWARD] */
    int64_t sent_bytes[MPSL_MSG_KIND_COUNT], sent_messages[MPSL_MSG_KIND_COUNT];
    double compute_s, wait_s;
    double resumed_at, waiting_since;
    role_metric *metrics;       /* clients: recorded this epoch */
    int n_metrics, cap_metrics;
    int64_t epochs_ended;       /* epoch_end calls so far: the epoch records go to */
    int64_t step;               /* last progress step, named when a run fails */
    int warned_nonfinite;       /* train.on_nonfinite: warn said it once */

    /* metrics.every_steps: loss calls this epoch, the open interval, the closed ones */
    int64_t loss_calls;
    role_step_row interval;
    role_step_row *step_rows;
    int n_step_rows, cap_step_rows;

    /* messages waiting for this role, one queue per sender, at index from + 1 (a client
     * hears only the server, MPSL_SERVER + 1 = 0): a receive scans its sender's queue, not
     * every client's waiting reports (K^2 scanned per epoch at 1000 clients) */
    message **mail_head, **mail_tail;
    int n_mail;

    /* checkpoints: creation counts give the order models and optimizers are saved and
     * restored in; what keep() declared; the saved state a resumed role is restored from */
    int models_made, optims_made;
    struct role_kept {
        char name[48];
        void *data;
        size_t bytes;
    } *kept;
    int n_kept, cap_kept;
    struct ckpt_role *restore;

    resource *res;
    int n_res, cap_res;

    struct participation_cache *participation; /* participants(): its dropout chains */

    /* network: what the role received this epoch (counted kinds), its counters when its
     * last interval closed, and its closed intervals as simulated seconds */
    int64_t recv_bytes, recv_messages;
    struct {
        double flops;
        int64_t up, down, messages;
    } sim_mark;
    struct sim_row *sim_rows;
    int n_sim_rows, cap_sim_rows;
};

/* The end-of-epoch report a client role sends its server (MSG_REPORT), followed by
 * n_metrics role_metric records and n_steps role_step_row records. Plain data: it crosses processes as bytes. */
typedef struct role_report {
    int64_t epoch;
    double flops[2];
    int64_t sent_bytes[MPSL_MSG_KIND_COUNT], sent_messages[MPSL_MSG_KIND_COUNT];
    double compute_s, wait_s;
    int32_t n_metrics;
    int32_t n_steps;            /* role_step_row records after the metrics */
    int32_t n_sim;              /* network: sim_row records after the step rows */
} role_report;

/* Track or release one resource of a role. */
int role_track(mpsl_role *r, resource_kind kind, void *p);
void role_untrack(mpsl_role *r, void *p);
/* Release everything the role still holds (models, optimizers, batches, memory). */
void role_release(mpsl_role *r);
/* Zero the epoch's counters. */
void role_reset_counters(mpsl_role *r);
/* The role's running time this epoch so far, the slice it is running now included (call it
 * from the role's own fiber): the difference of two calls is its own time between them,
 * without what it spent suspended while other roles ran or the process waited. */
double role_running_seconds(const mpsl_role *r);
/* End the open metrics.every_steps interval (if it saw samples) as a row at the current step.
 * MPSL_ERR_NOMEM when the row cannot be kept. */
int role_close_interval(mpsl_role *r);
/* Append row to a growing array of *n rows (*cap allocated). MPSL_ERR_NOMEM when it cannot. */
int role_step_rows_append(role_step_row **rows, int *n, int *cap, const role_step_row *row);
/* "the server" or "client 3", for messages. */
const char *role_name(const mpsl_role *r, char *buf, size_t size);

/* ---------------------------------------------------------------- the driver */

typedef struct driver driver;

/* What a driver needs from a network: sending a message to a role in another process, and
 * waiting (up to timeout seconds) for messages to arrive and be delivered to local roles
 * (messages_deliver). NULL ops: everything is in one process. */
typedef struct net_ops {
    int (*send)(driver *d, message *msg, mpsl_error *err);   /* takes msg */
    /* Deliver what arrived; block until something did or `timeout` passed. Returns MPSL_OK
     * (possibly having delivered nothing), or an error (a peer failed, the wait timed out). */
    int (*poll)(driver *d, double timeout, mpsl_error *err);
} net_ops;

struct driver {
    mpsl_session *s;
    mpsl_role *roles;           /* [0] the server, [1 + k] client k */
    int n_roles;
    const mpsl_strategy_api *api;
    const void *params;
    int *queue;                 /* ready roles, a ring of n_roles + 1 */
    int q_head, q_tail;
    mpsl_role *current;         /* the role running now, NULL in the scheduler */
    const net_ops *net;
    void *net_state;
    double timeout_s;           /* transport.timeout_s: longest wait for a peer */
};

/* The role object for an endpoint id (MPSL_SERVER or a client index). */
static inline mpsl_role *driver_role(driver *d, int id)
{
    return &d->roles[id + 1];
}

/* Set up roles for the session: local[i] says whether role i ([0] server, [1+k] client k)
 * runs in this process. */
int driver_init(driver *d, mpsl_session *s, const mpsl_strategy_api *api, const void *params,
                const uint8_t *local, mpsl_error *err);
/* Run every local role to its end. Returns MPSL_OK when all finished, else the first
 * failing role's status with err set (prefixed with the role's name). */
int driver_run(driver *d, mpsl_error *err);
void driver_free(driver *d);

/* Called by recv when the role's message is not there: marks the role waiting and yields to
 * the scheduler; returns once a matching message was delivered (or the run is ending, with
 * a status). */
int driver_wait(driver *d, mpsl_role *r, int from, int kind, mpsl_error *err);
/* A message arrived for a local role: wake it if it waits for exactly this. */
void driver_wake(driver *d, mpsl_role *r, int from, int kind);

#endif
