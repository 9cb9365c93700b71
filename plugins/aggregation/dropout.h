/* dropout.h: clients that are not there, for the strategies whose clients run a role (mpsl,
 * fedavg, fedprox; header-only so each plugin stays one .so). The keys `dropout`,
 * `dropout_burst`, `min_clients` and `deadline`, their check against the run, and the
 * per-client tally of why a client missed slots, recorded at the end of each epoch. Who takes
 * part is the host's decision (the session API's participants(), a pure function of seed,
 * client and slot), so the roles agree on it without a message. */
#ifndef MPSL_DROPOUT_H
#define MPSL_DROPOUT_H

#include <mpsl/plugin.h>
#include <stdio.h>

/* S: the plugin's parameter struct; f: its mpsl_participation member (dropout, dropout_burst,
 * min_clients, deadline). */
#define DROPOUT_PARAM_SPECS(S, f)                                                              \
    MPSL_PARAM_FLOAT(S, f.dropout, "dropout", 0, 0, 0.99, "0",                                 \
                     "probability that a client misses a round (fedavg, fedprox) or a step "    \
                     "(mpsl); seeded, the same in one process and under MPI"),                  \
    MPSL_PARAM_FLOAT(S, f.dropout_burst, "dropout_burst", 0, 0, 1e6, "0",                      \
                     "0: each slot missed independently; L >= 1: missed slots come in runs of " \
                     "L on average (a two-state Markov chain per client)"),                     \
    MPSL_PARAM_INT(S, f.min_clients, "min_clients", 0, 0, 100000, "1",                         \
                   "a round or step with fewer clients there is skipped (and recorded)"),     \
    MPSL_PARAM_FLOAT(S, f.deadline, "deadline", 0, 0, 1e12, "0",                               \
                     "simulated seconds a client's round or step may take under the network " \
                     "model; a slower client misses it; 0: no deadline")

/* Whether the run can miss anything: only then are the tallies recorded, so a run without
 * dropout records exactly what it did before. */
static inline int dropout_active(const mpsl_participation *p)
{
    return p->dropout > 0 || p->min_clients > 1 || p->deadline > 0;
}

/* For a strategy's check(): the settings against the run, before anything is recorded.
 * `most`: the most clients a slot can want (fedavg: those a round samples). */
static inline int dropout_check(const mpsl_host *h, const mpsl_session_api *api,
                                mpsl_role *sr, const mpsl_participation *p, int most,
                                const char *where, mpsl_error *err)
{
    const char *w = where ? where : "experiment";
    if (p->deadline > 0) { /* a deadline needs the network model that says how long work takes */
        mpsl_slot_work none = {.kind = MPSL_WORK_LOCAL};
        if (api->work_seconds(sr, 0, &none, err) < 0) {
            return MPSL_ERR_INVALID;
        }
    }
    if (p->dropout > 0 && p->dropout_burst > 0 &&
        p->dropout / (p->dropout_burst * (1.0 - p->dropout)) > 1.0) {
        h->error_set(err, "%s: strategy.dropout_burst: %g is too short for dropout %g: a "
                     "share of %g missed slots needs runs of at least dropout / (1 - dropout) "
                     "= %.3g slots on average", w, p->dropout_burst, p->dropout, p->dropout,
                     p->dropout / (1.0 - p->dropout));
        return MPSL_ERR_INVALID;
    }
    if (p->dropout_burst > 0 && p->dropout_burst < 1) {
        h->error_set(err, "%s: strategy.dropout_burst: %g; expected 0 (independent) or a mean run "
                     "length of at least 1", w, p->dropout_burst);
        return MPSL_ERR_INVALID;
    }
    if (p->min_clients > most) {
        h->error_set(err, "%s: strategy.min_clients: %lld, but at most %d clients take part "
                     "in a slot: every one would be skipped", w, (long long)p->min_clients, most);
        return MPSL_ERR_INVALID;
    }
    return MPSL_OK;
}

/* One client's slots in an epoch: taken part in, and missed by reason. */
typedef struct dropout_tally {
    int64_t took, dropped, too_few, late;
} dropout_tally;

static inline void dropout_count(dropout_tally *t, uint8_t status)
{
    t->took += status == MPSL_SLOT_TAKES_PART;
    t->dropped += status == MPSL_SLOT_MISSED_DROPOUT;
    t->too_few += status == MPSL_SLOT_MISSED_TOO_FEW;
    t->late += status == MPSL_SLOT_MISSED_DEADLINE;
}

/* A client's tally as its records of the epoch (client_metrics). */
static inline int dropout_record(const mpsl_session_api *api, mpsl_role *r,
                                 const dropout_tally *t, mpsl_error *err)
{
    int rc = api->record(r, "participated", (double)t->took, err);
    if (rc == MPSL_OK) {
        rc = api->record(r, "missed_dropout", (double)t->dropped, err);
    }
    if (rc == MPSL_OK) {
        rc = api->record(r, "missed_too_few", (double)t->too_few, err);
    }
    if (rc == MPSL_OK) {
        rc = api->record(r, "missed_deadline", (double)t->late, err);
    }
    return rc;
}

#endif
