/* participation.c: seeded client dropout, decided alike everywhere (participation.h).
 *
 * Each client's availability in a slot comes from a hash of (seed, client, slot), never from
 * a random stream a role draws from: asking does not move any stream, so a run with dropout 0
 * draws exactly what a run without it draws, and every role on every rank gets the same
 * answer in any order.
 *
 * Model (docs/config.md): with dropout_burst 0 a client is unavailable in each slot
 * independently with probability p = dropout. With dropout_burst L > 0 each client follows
 * its own two-state Markov chain (a Gilbert-Elliott channel): unavailable -> available with
 * probability 1/L, so unavailable runs last L slots on average; available -> unavailable
 * with probability a = p / (L (1 - p)), so that the long-run share of unavailable slots is
 * still p; slot 0 starts from that stationary share. a <= 1 needs L >= p / (1 - p). */
#include "participation.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

struct participation_cache {
    int n;
    int64_t *slot;      /* the last slot whose state is known, per client; -1: none */
    uint8_t *down;      /* its state then */
};

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [0, 1) from (seed, client, slot) alone. */
static double slot_uniform(uint64_t seed, int client, int64_t slot)
{
    uint64_t h = mix64(seed ^ 0x6472 /* "dr" */);
    h = mix64(h ^ ((uint64_t)(uint32_t)client + 0x9e3779b97f4a7c15ull));
    h = mix64(h ^ ((uint64_t)slot * 0xd1b54a32d192ed03ull + 1));
    return (double)(h >> 11) * 0x1.0p-53;
}

void participation_cache_free(participation_cache *c)
{
    if (c) {
        free(c->slot);
        free(c->down);
        free(c);
    }
}

static participation_cache *cache_for(participation_cache **cache, int n)
{
    if (*cache && (*cache)->n == n) {
        return *cache;
    }
    participation_cache_free(*cache);
    participation_cache *c = calloc(1, sizeof *c);
    if (c) {
        c->n = n;
        c->slot = malloc((size_t)n * sizeof *c->slot);
        c->down = calloc((size_t)n, 1);
        if (!c->slot || !c->down) {
            participation_cache_free(c);
            c = NULL;
        } else {
            for (int k = 0; k < n; k++) {
                c->slot[k] = -1;
            }
        }
    }
    *cache = c;
    return c;
}

int participation_down(participation_cache **cache, uint64_t seed, int n_clients,
                       const mpsl_participation *p, int client, int64_t slot)
{
    double q = p->dropout, L = p->dropout_burst;
    if (q <= 0) {
        return 0;
    }
    if (L <= 0) {
        return slot_uniform(seed, client, slot) < q;
    }
    double to_down = q / (L * (1.0 - q)), to_up = 1.0 / L;
    participation_cache *c = cache_for(cache, n_clients);
    int64_t from = -1;
    int down = 0;
    if (c && c->slot[client] >= 0 && c->slot[client] <= slot) {
        from = c->slot[client];   /* go on from what is known */
        down = c->down[client];
    }
    for (int64_t t = from + 1; t <= slot; t++) {
        double u = slot_uniform(seed, client, t);
        down = t == 0 ? u < q : down ? !(u < to_up) : u < to_down;
    }
    if (c) {
        c->slot[client] = slot;
        c->down[client] = (uint8_t)down;
    }
    return down;
}

int participation_decide(participation_cache **cache, uint64_t seed, int n_clients,
                         const mpsl_participation *p, int64_t slot, const uint8_t *want,
                         const uint8_t *late, uint8_t *status)
{
    int present = 0;
    for (int k = 0; k < n_clients; k++) {
        /* every client's chain advances whether or not it is wanted: its state is a
         * function of the slot, not of what the strategy asked */
        int down = participation_down(cache, seed, n_clients, p, k, slot);
        status[k] = !want[k]              ? MPSL_SLOT_NOT_WANTED
                    : down                ? MPSL_SLOT_MISSED_DROPOUT
                    : late && late[k]     ? MPSL_SLOT_MISSED_DEADLINE
                                          : MPSL_SLOT_TAKES_PART;
        present += status[k] == MPSL_SLOT_TAKES_PART;
    }
    if (present > 0 && present < p->min_clients) {
        for (int k = 0; k < n_clients; k++) {
            if (status[k] == MPSL_SLOT_TAKES_PART) {
                status[k] = MPSL_SLOT_MISSED_TOO_FEW;
            }
        }
        present = 0;
    }
    return present;
}

const char *participation_invalid(const mpsl_participation *p, int n_clients, char *buf,
                                  size_t size)
{
    if (!(p->dropout >= 0 && p->dropout < 1)) {
        snprintf(buf, size, "dropout must be in [0, 1), got %g", p->dropout);
    } else if (!(p->dropout_burst == 0 || p->dropout_burst >= 1)) {
        snprintf(buf, size, "dropout_burst is the mean length of a run of missed slots: 0 "
                 "(independent) or at least 1, got %g", p->dropout_burst);
    } else if (p->dropout_burst > 0 && p->dropout > 0 &&
               p->dropout / (p->dropout_burst * (1.0 - p->dropout)) > 1.0) {
        snprintf(buf, size, "dropout %g with dropout_burst %g is impossible: a share of %g "
                 "missed slots needs runs of at least %.3g slots on average (dropout / (1 - "
                 "dropout))", p->dropout, p->dropout_burst, p->dropout,
                 p->dropout / (1.0 - p->dropout));
    } else if (!(p->deadline >= 0) || !isfinite(p->deadline)) {
        snprintf(buf, size, "deadline must be a number of seconds >= 0, got %g", p->deadline);
    } else if (p->min_clients < 0 || p->min_clients > n_clients) {
        snprintf(buf, size, "min_clients is %lld, but the run has %d clients",
                 (long long)p->min_clients, n_clients);
    } else {
        return NULL;
    }
    return buf;
}
