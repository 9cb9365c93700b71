/* roles.c: roles and the driver that runs them. Every local role is a fiber; the driver keeps
 * a queue of roles that can run, resumes the first, and when it waits for a message that has
 * not come, moves on. Messages delivered to a waiting role put it back in the queue, so each
 * role runs exactly as its own sequential program would, whatever the interleaving: results
 * do not depend on the schedule. When no local role can run, the network (MPI) is asked for
 * messages; in one process that means no role can ever continue, which is reported as a
 * deadlock naming who waits for what. */
#include "roles.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fiber.h"
#include "session.h"
#include "session_api.h"
#include "train/model.h"
#include "train/participation.h"

/* Each role's stack. Module code keeps little on the stack (buffers come from the heap), but
 * error messages and printf do; untouched pages cost nothing. */
#define ROLE_STACK_BYTES ((size_t)1 << 20)

const char *role_name(const mpsl_role *r, char *buf, size_t size)
{
    if (r->id == MPSL_SERVER) {
        snprintf(buf, size, "the server");
    } else {
        snprintf(buf, size, "client %d", r->id);
    }
    return buf;
}

int role_track(mpsl_role *r, resource_kind kind, void *p)
{
    if (r->n_res == r->cap_res) {
        int grown = r->cap_res ? 2 * r->cap_res : 16;
        resource *bigger = realloc(r->res, (size_t)grown * sizeof *bigger);
        if (!bigger) {
            return MPSL_ERR_NOMEM;
        }
        r->res = bigger;
        r->cap_res = grown;
    }
    r->res[r->n_res++] = (resource){kind, p};
    return MPSL_OK;
}

void role_untrack(mpsl_role *r, void *p)
{
    for (int i = r->n_res - 1; i >= 0; i--) {
        if (r->res[i].p == p) {
            r->res[i] = r->res[--r->n_res];
            return;
        }
    }
}

void role_release(mpsl_role *r)
{
    /* Optimizers before the models they point into; batches and memory last. */
    static const resource_kind order[] = {RES_OPTIM, RES_MODEL, RES_BATCH, RES_MEMORY};
    for (size_t o = 0; o < MPSL_COUNT(order); o++) {
        for (int i = 0; i < r->n_res; i++) {
            resource *res = &r->res[i];
            if (res->kind != order[o]) {
                continue;
            }
            switch (res->kind) {
            case RES_OPTIM: session_optim_free(res->p); break;
            case RES_MODEL: model_destroy(res->p); break;
            case RES_BATCH: session_batch_destroy(r->s, res->p); break;
            case RES_MEMORY: mpsl_free(res->p); break;
            }
        }
    }
    free(r->res);
    r->res = NULL;
    r->n_res = r->cap_res = 0;
    free(r->metrics);
    r->metrics = NULL;
    r->n_metrics = r->cap_metrics = 0;
    free(r->step_rows);
    r->step_rows = NULL;
    r->n_step_rows = r->cap_step_rows = 0;
    participation_cache_free(r->participation);
    r->participation = NULL;
    free(r->sim_rows);
    r->sim_rows = NULL;
    r->n_sim_rows = r->cap_sim_rows = 0;
    messages_clear(r);
}

void role_reset_counters(mpsl_role *r)
{
    memset(r->flops, 0, sizeof r->flops);
    memset(r->sent_bytes, 0, sizeof r->sent_bytes);
    memset(r->sent_messages, 0, sizeof r->sent_messages);
    r->compute_s = r->wait_s = 0;
    r->n_metrics = 0;
    r->n_step_rows = 0;
    r->loss_calls = 0;
    memset(&r->interval, 0, sizeof r->interval);
    r->recv_bytes = r->recv_messages = 0;
    memset(&r->sim_mark, 0, sizeof r->sim_mark);
    r->n_sim_rows = 0;
}

int role_step_rows_append(role_step_row **rows, int *n, int *cap, const role_step_row *row)
{
    if (*n == *cap) {
        int grown = *cap ? 2 * *cap : 16;
        role_step_row *bigger = realloc(*rows, (size_t)grown * sizeof *bigger);
        if (!bigger) {
            return MPSL_ERR_NOMEM;
        }
        *rows = bigger;
        *cap = grown;
    }
    (*rows)[(*n)++] = *row;
    return MPSL_OK;
}

int role_close_interval(mpsl_role *r)
{
    if (r->interval.samples == 0) {
        return MPSL_OK;
    }
    r->interval.step = r->loss_calls;
    int rc = role_step_rows_append(&r->step_rows, &r->n_step_rows, &r->cap_step_rows,
                                   &r->interval);
    if (rc == MPSL_OK) {
        memset(&r->interval, 0, sizeof r->interval);
    }
    return rc;
}

/* ---------------------------------------------------------------- the driver */

static void enqueue(driver *d, mpsl_role *r)
{
    d->queue[d->q_tail] = r->id + 1;
    d->q_tail = (d->q_tail + 1) % (d->n_roles + 1);
}

/* Ahead of every role already waiting to run. */
static void enqueue_first(driver *d, mpsl_role *r)
{
    d->q_head = (d->q_head + d->n_roles) % (d->n_roles + 1);
    d->queue[d->q_head] = r->id + 1;
}

static mpsl_role *dequeue(driver *d)
{
    if (d->q_head == d->q_tail) {
        return NULL;
    }
    mpsl_role *r = &d->roles[d->queue[d->q_head]];
    d->q_head = (d->q_head + 1) % (d->n_roles + 1);
    return r;
}

static void role_main(void *arg)
{
    mpsl_role *r = arg;
    driver *d = &r->s->drv;
    const mpsl_role_fn fn = r->id == MPSL_SERVER ? d->api->server : d->api->client;
    r->rc = fn(r->s->host, session_api(), r, d->params, &r->err);
    if (r->rc != MPSL_OK && !r->err.msg[0]) {
        mpsl_errs(&r->err, r->rc, "the strategy's %s role failed with status %d but gave no "
                  "message", r->id == MPSL_SERVER ? "server" : "client", r->rc);
    }
}

int driver_init(driver *d, mpsl_session *s, const mpsl_strategy_api *api, const void *params,
                const uint8_t *local, mpsl_error *err)
{
    memset(d, 0, sizeof *d);
    d->s = s;
    d->api = api;
    d->params = params;
    d->n_roles = s->ex->n_clients + 1;
    d->roles = calloc((size_t)d->n_roles, sizeof *d->roles);
    d->queue = calloc((size_t)d->n_roles + 1, sizeof *d->queue);
    if (!d->roles || !d->queue) {
        return mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory for %d roles", d->n_roles);
    }
    uint64_t seed = s->ex->train.seed;
    for (int i = 0; i < d->n_roles; i++) {
        mpsl_role *r = &d->roles[i];
        r->s = s;
        r->id = i - 1;
        /* The shared stream is the one strategies drew from before roles existed, so client
         * sampling is unchanged; each role's own stream is seeded by its party. */
        mpsl_rng_seed(&r->shared, seed ^ 0x5eed5eedull);
        mpsl_rng_seed(&r->rng, (seed ^ 0x201e5ull) + 0x9E3779B97F4A7C15ull * (uint64_t)(i + 1));
        if (!local[i] || (r->id != MPSL_SERVER && !api->client)) {
            r->state = local[i] ? ROLE_FINISHED : ROLE_REMOTE;
            continue;
        }
        r->fiber = fiber_create(role_main, r, ROLE_STACK_BYTES);
        if (!r->fiber || messages_open(r, s->ex->n_clients) != MPSL_OK) {
            return mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory for the stack or the mailboxes "
                             "of role %d", i);
        }
        r->state = ROLE_READY;
        enqueue(d, r);
    }
    return MPSL_OK;
}

double role_running_seconds(const mpsl_role *r)
{
    return r->compute_s + (mpsl_now() - r->resumed_at);
}

void driver_wake(driver *d, mpsl_role *r, int from, int kind)
{
    if (r->state == ROLE_WAITING && r->wait_from == from && r->wait_kind == kind) {
        r->state = ROLE_READY;
        r->wait_s += mpsl_now() - r->waiting_since;
        /* The server runs next when a message it waits for comes: it takes each client's
         * message before the next client runs, so at most one waits in its mailbox instead
         * of one per client (FedAvg's K uploads of the whole model). Clients keep their
         * order. Results do not depend on the order (above); this only bounds memory. */
        if (r->id == MPSL_SERVER) {
            enqueue_first(d, r);
        } else {
            enqueue(d, r);
        }
    }
}

int driver_wait(driver *d, mpsl_role *r, int from, int kind, mpsl_error *err)
{
    if (d->current != r) {
        return mpsl_errs(err, MPSL_ERR_INTERNAL, "recv outside the role's own fiber");
    }
    r->state = ROLE_WAITING;
    r->wait_from = from;
    r->wait_kind = kind;
    r->waiting_since = mpsl_now();
    fiber_yield();
    /* Resumed: either the message came, or the run is ending and the fiber is being
     * unwound (the driver never resumes a waiting role otherwise). */
    if (r->state != ROLE_READY) {
        return mpsl_errs(err, MPSL_ERR_INTERNAL, "the run ended while waiting");
    }
    return MPSL_OK;
}

/* Who waits for what, for a deadlock or timeout message. */
static void describe_waiting(driver *d, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < d->n_roles && used + 1 < size; i++) {
        mpsl_role *r = &d->roles[i];
        if (r->state != ROLE_WAITING) {
            continue;
        }
        char me[32], other[32];
        mpsl_role *peer = driver_role(d, r->wait_from);
        const char *peer_state = peer->state == ROLE_FINISHED ? ", which has ended" : "";
        int w = snprintf(buf + used, size - used, "%s%s waits for %s from %s%s",
                         used ? "; " : "", role_name(r, me, sizeof me),
                         message_kind_name(r->wait_kind), role_name(peer, other, sizeof other),
                         peer_state);
        if (w < 0) {
            break;
        }
        used += (size_t)w < size - used ? (size_t)w : size - used - 1;
    }
}

static int role_failed(mpsl_role *r, mpsl_error *err)
{
    char me[32];
    *err = r->err;
    if (r->rc != MPSL_ERR_INTERRUPTED) {
        mpsl_err_prefix(err, "%s", role_name(r, me, sizeof me));
    }
    return r->rc;
}

int driver_run(driver *d, mpsl_error *err)
{
    int live = 0;
    for (int i = 0; i < d->n_roles; i++) {
        live += d->roles[i].fiber != NULL;
    }
    while (live > 0) {
        mpsl_role *r = dequeue(d);
        if (!r) {
            if (!d->net) {
                char who[768];
                describe_waiting(d, who, sizeof who);
                return mpsl_errs(err, MPSL_ERR_PLUGIN,
                                 "strategy '%s': no role can continue (deadlock): %s",
                                 d->s->ex->strategy.plugin.desc->name, who);
            }
            double t0 = profile_on ? mpsl_now() : 0;
            int rc = d->net->poll(d, d->timeout_s, err); /* every role here waits */
            if (profile_on) {
                profile_phase_add(PROF_NETWORK_WAIT, mpsl_now() - t0);
            }
            if (rc != MPSL_OK) {
                return rc;
            }
            continue;
        }
        d->current = r;
        r->resumed_at = mpsl_now();
        int finished = fiber_resume(r->fiber);
        r->compute_s += mpsl_now() - r->resumed_at;
        d->current = NULL;
        if (!finished) {
            continue;
        }
        r->state = ROLE_FINISHED;
        live--;
        if (r->rc != MPSL_OK) {
            return role_failed(r, err);
        }
    }
    return MPSL_OK;
}

void driver_free(driver *d)
{
    if (!d->roles) {
        return;
    }
    for (int i = 0; i < d->n_roles; i++) {
        mpsl_role *r = &d->roles[i];
        fiber_destroy(r->fiber);
        r->fiber = NULL;
        role_release(r);
    }
    free(d->roles);
    free(d->queue);
    d->roles = NULL;
    d->queue = NULL;
}
