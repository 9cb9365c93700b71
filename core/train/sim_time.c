/* sim_time.c: intervals of each role's work as simulated seconds, and the epoch's simulated
 * wall time (sim_time.h, docs/config.md: network). */
#include "sim_time.h"

#include <stdlib.h>
#include <string.h>

#include "results/store.h"
#include "train/session.h"

static int append_row(sim_row **rows, int *n, int *cap, const sim_row *row)
{
    if (*n == *cap) {
        int grown = *cap ? 2 * *cap : 16;
        sim_row *bigger = realloc(*rows, (size_t)grown * sizeof *bigger);
        if (!bigger) {
            return MPSL_ERR_NOMEM;
        }
        *rows = bigger;
        *cap = grown;
    }
    (*rows)[(*n)++] = *row;
    return MPSL_OK;
}

void sim_time_received(mpsl_role *r, int64_t bytes)
{
    r->recv_bytes += bytes;
    r->recv_messages += 1;
}

/* The role's counters of the epoch so far, as sim_mark holds them. */
static void totals(const mpsl_role *r, double *flops, int64_t *up, int64_t *down,
                   int64_t *messages)
{
    *flops = r->flops[0] + r->flops[1];
    *up = *down = *messages = 0;
    if (r->id == MPSL_SERVER) { /* the server's sends are the clients' downlinks */
        return;
    }
    for (int kind = 0; kind < MPSL_MSG_KIND_COUNT; kind++) {
        *up += r->sent_bytes[kind];
        *messages += r->sent_messages[kind];
    }
    *down = r->recv_bytes;
    *messages += r->recv_messages;
}

void sim_time_mark(mpsl_role *r)
{
    totals(r, &r->sim_mark.flops, &r->sim_mark.up, &r->sim_mark.down, &r->sim_mark.messages);
}

int sim_time_close(mpsl_role *r, int64_t slot)
{
    const netmodel *nm = &r->s->ex->network;
    if (!nm->on) {
        return MPSL_OK;
    }
    double flops;
    int64_t up, down, messages;
    totals(r, &flops, &up, &down, &messages);
    double d_flops = flops - r->sim_mark.flops;
    int64_t d_up = up - r->sim_mark.up, d_down = down - r->sim_mark.down;
    int64_t d_messages = messages - r->sim_mark.messages;
    r->sim_mark.flops = flops;
    r->sim_mark.up = up;
    r->sim_mark.down = down;
    r->sim_mark.messages = messages;
    if (d_flops == 0 && d_messages == 0) {
        return MPSL_OK; /* it did nothing in this slot: nobody waited for it */
    }
    sim_row row = r->id == MPSL_SERVER
                      ? netmodel_server_row(nm, slot, d_flops)
                      : netmodel_client_row(nm, r->id, slot, d_flops, d_up, d_down, d_messages);
    return append_row(&r->sim_rows, &r->n_sim_rows, &r->cap_sim_rows, &row);
}

int sim_time_collect(mpsl_session *s, int client, const sim_row *rows, int n)
{
    for (int i = 0; i < n; i++) {
        int at = s->n_sim;
        int rc = append_row(&s->sim_rows, &s->n_sim, &s->cap_sim, &rows[i]);
        if (rc != MPSL_OK) {
            return rc;
        }
        if (s->n_sim > s->cap_sim_client) {
            int *bigger = realloc(s->sim_client, (size_t)s->cap_sim * sizeof *bigger);
            if (!bigger) {
                return MPSL_ERR_NOMEM;
            }
            s->sim_client = bigger;
            s->cap_sim_client = s->cap_sim;
        }
        s->sim_client[at] = client;
    }
    return MPSL_OK;
}

int sim_time_store(mpsl_role *server, int64_t epoch, mpsl_error *err)
{
    mpsl_session *s = server->s;
    if (!s->ex->network.on) {
        return MPSL_OK;
    }
    int rc = sim_time_close(server, NETMODEL_EPOCH_END);
    if (rc == MPSL_OK) {
        rc = sim_time_collect(s, MPSL_SERVER, server->sim_rows, server->n_sim_rows);
    }
    if (rc != MPSL_OK) {
        return mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory for the simulated time");
    }
    int K = s->ex->n_clients;
    double *sums = calloc((size_t)K * 2, sizeof *sums), server_s = 0;
    if (!sums) {
        return mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < s->n_sim; i++) {
        int k = s->sim_client[i];
        if (k == MPSL_SERVER) {
            server_s += s->sim_rows[i].compute_s;
        } else {
            sums[2 * k] += s->sim_rows[i].compute_s;
            sums[2 * k + 1] += s->sim_rows[i].transfer_s;
        }
    }
    double epoch_s = netmodel_epoch_seconds(s->sim_rows, s->sim_client, s->n_sim);
    rc = store_metric(s->db, s->run_id, epoch, "sim_epoch_seconds", epoch_s, err);
    if (rc == MPSL_OK) {
        rc = store_metric(s->db, s->run_id, epoch, "sim_server_seconds", server_s, err);
    }
    for (int k = 0; k < K && rc == MPSL_OK && s->drv.api->client; k++) {
        rc = store_client_metric(s->db, s->run_id, epoch, k, "sim_compute_seconds",
                                 sums[2 * k], err);
        if (rc == MPSL_OK) {
            rc = store_client_metric(s->db, s->run_id, epoch, k, "sim_transfer_seconds",
                                     sums[2 * k + 1], err);
        }
    }
    free(sums);
    s->n_sim = 0;
    return rc;
}
