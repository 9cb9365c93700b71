/* participation.h: which clients take part in a slot of a run (a federated round, an MPSL
 * step) when clients drop out (strategy.dropout, dropout_burst, min_clients; the session
 * API's participants()). The decision is a pure function of (seed, client, slot), computed
 * alike by every role on every rank, so roles agree on it without a message and a run
 * decides the same in one process and under MPI. See docs/config.md (strategy, dropout). */
#ifndef MPSL_PARTICIPATION_H
#define MPSL_PARTICIPATION_H

#include <stdint.h>

#include "mpsl/plugin.h"

/* A role's memory of each client's availability chain (dropout_burst), so that asking for
 * the next slot costs one step of the chain instead of a replay from slot 0. Only a cache:
 * the answer never depends on it. */
typedef struct participation_cache participation_cache;

/* Whether client `client` is unavailable in `slot` (0-based, counting from the run's start):
 * independently with probability p->dropout, or along a two-state Markov chain whose
 * unavailable runs last p->dropout_burst slots on average (docs/config.md). *cache may be
 * NULL on entry (it is then made); release with participation_cache_free. */
int participation_down(participation_cache **cache, uint64_t seed, int n_clients,
                       const mpsl_participation *p, int client, int64_t slot);

/* The session API's participants(): status[k] for every client of want[k] (non-zero: the
 * strategy would have client k take part), MPSL_SLOT_*; late[k] non-zero (late may be NULL):
 * its work would overrun the deadline. Returns how many take part. */
int participation_decide(participation_cache **cache, uint64_t seed, int n_clients,
                         const mpsl_participation *p, int64_t slot, const uint8_t *want,
                         const uint8_t *late, uint8_t *status);

/* NULL, or a message saying what in p is out of range (for n_clients clients). */
const char *participation_invalid(const mpsl_participation *p, int n_clients, char *buf,
                                  size_t size);

void participation_cache_free(participation_cache *cache);

#endif
