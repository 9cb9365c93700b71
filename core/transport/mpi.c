/* mpi.c: the MPI transport. Every message is one MPI message: a fixed header (endpoints,
 * kind, element type, shape) followed by the payload. Sends are non-blocking (the payload is
 * copied and the request completed later), so a role never blocks in a send and a process
 * hosting several roles cannot deadlock on its own sends. Receiving is done by polling:
 * whatever arrived is put into the receiving role's mailbox, exactly as a send within one
 * process would, so the message layer above is the same for both transports. Waiting backs
 * off from spinning to 1 ms sleeps, which keeps oversubscribed ranks (more ranks than cores)
 * from starving each other. */
#include <errno.h>
#include <mpi.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "transport.h"

#define TAG_MESSAGE 7

typedef struct wire_header {
    int32_t from, to, kind, dtype, ndim, rank;
    int64_t shape[MPSL_MAX_DIMS];
} wire_header;

typedef struct pending_send {
    struct pending_send *next;
    MPI_Request req;
    void *buf;
} pending_send;

typedef struct peer {
    int32_t pid;
    char host[64];
} peer;

typedef struct mpi_net {
    int rank, size;
    double last_heartbeat;      /* rank 0: when it last told the others it is alive */
    pending_send *pending;
    int done_ranks;             /* rank 0: client ranks that reported they are done */
    int failed;                 /* rank 0: a client rank reported a failure */
    mpsl_error failure;
    peer *peers;                /* (size) */
} mpi_net;

static int started;

int transport_mpi_built(void) { return 1; }

int transport_mpi_start(int *rank, int *size, mpsl_error *err)
{
    if (!started) {
        int provided;
        if (MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
            return mpsl_errs(err, MPSL_ERR_IO, "MPI_Init failed");
        }
        started = 1;
    }
    MPI_Comm_rank(MPI_COMM_WORLD, rank);
    MPI_Comm_size(MPI_COMM_WORLD, size);
    return MPSL_OK;
}

void transport_mpi_stop(void)
{
    if (started) {
        MPI_Finalize();
        started = 0;
    }
}

void transport_mpi_abort(int status)
{
    fflush(stdout);
    fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, status);
    exit(status);
}

int transport_rank_of_client(int k, int K, int size)
{
    return 1 + (int)((int64_t)k * (size - 1) / K);
}

int transport_agree(int rc, mpsl_error *err)
{
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    int mine = rc == MPSL_OK ? size : rank, first;
    MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (first == size) {
        return MPSL_OK;
    }
    int status = rc;
    MPI_Bcast(&status, 1, MPI_INT, first, MPI_COMM_WORLD);
    if (rank == first && first != 0) {
        mpsl_err_prefix(err, "rank %d", rank);
    }
    MPI_Bcast(err->msg, (int)sizeof err->msg, MPI_CHAR, first, MPI_COMM_WORLD);
    return status;
}

void transport_bcast_i64(int64_t *v)
{
    MPI_Bcast(v, 1, MPI_INT64_T, 0, MPI_COMM_WORLD);
}

/* ---------------------------------------------------------------- sending */

static int rank_of(const driver *d, int endpoint)
{
    const mpi_net *net = d->net_state;
    return endpoint == MPSL_SERVER
               ? 0
               : transport_rank_of_client(endpoint, d->s->ex->n_clients, net->size);
}

/* Complete what can be completed without waiting. */
static void progress_sends(mpi_net *net)
{
    pending_send **link = &net->pending;
    while (*link) {
        pending_send *p = *link;
        int done = 0;
        MPI_Test(&p->req, &done, MPI_STATUS_IGNORE);
        if (done) {
            *link = p->next;
            free(p->buf);
            free(p);
        } else {
            link = &p->next;
        }
    }
}

static int send_raw(mpi_net *net, int dest, const wire_header *h, const void *payload,
                    size_t bytes, mpsl_error *err)
{
    size_t total = sizeof *h + bytes;
    if (total > (size_t)0x7fffffff) {
        return mpsl_errs(err, MPSL_ERR_INVALID, "a %s message of %zu bytes is larger than one "
                         "MPI message carries (2 GiB): use a smaller batch",
                         message_kind_name(h->kind), bytes);
    }
    pending_send *p = calloc(1, sizeof *p);
    void *buf = malloc(total);
    if (!p || !buf) {
        free(p);
        free(buf);
        return mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory sending %zu bytes", total);
    }
    memcpy(buf, h, sizeof *h);
    if (bytes) {
        memcpy((char *)buf + sizeof *h, payload, bytes);
    }
    p->buf = buf;
    if (MPI_Isend(buf, (int)total, MPI_BYTE, dest, TAG_MESSAGE, MPI_COMM_WORLD, &p->req) !=
        MPI_SUCCESS) {
        free(buf);
        free(p);
        return mpsl_errs(err, MPSL_ERR_IO, "MPI_Isend to rank %d failed", dest);
    }
    p->next = net->pending;
    net->pending = p;
    progress_sends(net);
    return MPSL_OK;
}

static int mpi_send(driver *d, message *msg, mpsl_error *err)
{
    mpi_net *net = d->net_state;
    const mpsl_tensor *t = message_tensor(msg);
    wire_header h = {.from = message_from(msg), .to = message_to(msg),
                     .kind = message_kind(msg), .dtype = (int32_t)t->dtype, .ndim = t->ndim,
                     .rank = net->rank};
    for (int i = 0; i < t->ndim; i++) {
        h.shape[i] = t->shape[i];
    }
    int rc = send_raw(net, rank_of(d, h.to), &h, t->data, (size_t)message_payload_bytes(t),
                      err);
    message_free(msg);
    return rc;
}

/* ---------------------------------------------------------------- receiving */

/* Clients hosted by a rank, as "clients 3-5" (or "no clients"). */
static void clients_of_rank(const driver *d, int rank, char *buf, size_t size)
{
    int K = d->s->ex->n_clients, first = -1, last = -1;
    const mpi_net *net = d->net_state;
    for (int k = 0; k < K; k++) {
        if (transport_rank_of_client(k, K, net->size) == rank) {
            first = first < 0 ? k : first;
            last = k;
        }
    }
    if (first < 0) {
        snprintf(buf, size, "no clients");
    } else if (first == last) {
        snprintf(buf, size, "client %d", first);
    } else {
        snprintf(buf, size, "clients %d-%d", first, last);
    }
}

/* Take one arrived message: deliver it, or note a control message. */
static int take_message(driver *d, const MPI_Status *st, mpsl_error *err)
{
    mpi_net *net = d->net_state;
    int bytes;
    MPI_Get_count(st, MPI_BYTE, &bytes);
    char *buf = malloc(bytes > 0 ? (size_t)bytes : 1);
    if (!buf) {
        return mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory receiving %d bytes", bytes);
    }
    MPI_Recv(buf, bytes, MPI_BYTE, st->MPI_SOURCE, TAG_MESSAGE, MPI_COMM_WORLD,
             MPI_STATUS_IGNORE);
    wire_header h;
    if ((size_t)bytes < sizeof h) {
        free(buf);
        return mpsl_errs(err, MPSL_ERR_IO, "a truncated message (%d bytes) from rank %d", bytes,
                         st->MPI_SOURCE);
    }
    memcpy(&h, buf, sizeof h);
    mpsl_tensor t = {.data = buf + sizeof h, .dtype = (mpsl_dtype)h.dtype, .ndim = h.ndim};
    memcpy(t.shape, h.shape, sizeof t.shape);
    int rc = MPSL_OK;
    if (h.kind == MSG_HEARTBEAT) {
        /* nothing to deliver: hearing it is the point */
    } else if (h.kind == MSG_DONE) {
        net->done_ranks++;
    } else if (h.kind == MSG_FAILED) {
        char who[64];
        clients_of_rank(d, h.rank, who, sizeof who);
        size_t n = (size_t)bytes - sizeof h;
        n = n < sizeof net->failure.msg - 1 ? n : sizeof net->failure.msg - 1;
        char text[sizeof net->failure.msg];
        memcpy(text, buf + sizeof h, n);
        text[n] = '\0';
        net->failed = 1;
        rc = mpsl_errs(err, MPSL_ERR_PLUGIN, "rank %d (%s) failed: %s", h.rank, who, text);
        net->failure = *err;
    } else if (h.to < MPSL_SERVER || h.to >= d->s->ex->n_clients ||
               driver_role(d, h.to)->state == ROLE_REMOTE) {
        rc = mpsl_errs(err, MPSL_ERR_INTERNAL, "rank %d sent a %s message for %d, which this "
                       "rank %d does not host", h.rank, message_kind_name(h.kind), h.to,
                       net->rank);
    } else if (h.ndim < 1 || h.ndim > MPSL_MAX_DIMS || message_payload_bytes(&t) < 0 ||
               (size_t)message_payload_bytes(&t) != (size_t)bytes - sizeof h) {
        rc = mpsl_errs(err, MPSL_ERR_IO, "rank %d sent a malformed %s message: %d payload "
                       "bytes for a %d-dimensional tensor of element type %d (expected 1 to %d "
                       "dimensions and the shape's elements times 4, or 8 for float64)",
                       h.rank, message_kind_name(h.kind), bytes - (int)sizeof h, h.ndim,
                       (int)h.dtype, MPSL_MAX_DIMS);
    } else {
        message *msg = message_new(h.from, h.to, h.kind, &t);
        rc = msg ? MPSL_OK : mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
        if (msg) {
            messages_deliver(d, msg);
        }
    }
    free(buf);
    return rc;
}

/* Sleep a little longer each time nothing came, up to 1 ms. */
static void back_off(int idle_rounds)
{
    if (idle_rounds < 50) {
        return;
    }
    if (idle_rounds < 200) {
        sched_yield();
        return;
    }
    long ns = 1000L * (idle_rounds < 1000 ? idle_rounds - 199 : 1000);
    struct timespec ts = {0, ns};
    nanosleep(&ts, NULL);
}

/* Who this rank waits for, for a timeout message. */
static void describe_wait(driver *d, char *buf, size_t size)
{
    buf[0] = '\0';
    for (int i = 0; i < d->n_roles; i++) {
        mpsl_role *r = &d->roles[i];
        if (r->state == ROLE_WAITING) {
            char me[32], other[32];
            snprintf(buf, size, "%s waits for %s from %s (rank %d) in epoch %lld",
                     role_name(r, me, sizeof me), message_kind_name(r->wait_kind),
                     role_name(driver_role(d, r->wait_from), other, sizeof other),
                     rank_of(d, r->wait_from), (long long)r->epochs_ended + 1);
            return;
        }
    }
    snprintf(buf, size, "waiting for the other ranks to finish");
}

/* Rank 0, while it waits: tell every client rank it is alive, every quarter of the timeout,
 * so that a client that legitimately waits long (FedAvg's unsampled clients, MPSL's clients
 * while others' work is done) does not take the silence for a dead server. */
static void heartbeat(driver *d, double timeout)
{
    mpi_net *net = d->net_state;
    double now = mpsl_now();
    if (net->rank != 0 || now - net->last_heartbeat < timeout / 4) {
        return;
    }
    net->last_heartbeat = now;
    wire_header h = {.from = MPSL_SERVER, .to = MPSL_SERVER, .kind = MSG_HEARTBEAT,
                     .dtype = MPSL_I32, .ndim = 1, .rank = 0};
    mpsl_error ignored;
    for (int r = 1; r < net->size; r++) {
        send_raw(net, r, &h, NULL, 0, &ignored);
    }
}

static int poll_until(driver *d, double timeout, int (*satisfied)(driver *), mpsl_error *err)
{
    mpi_net *net = d->net_state;
    double start = mpsl_now();
    for (int idle = 0;; idle++) {
        heartbeat(d, timeout);
        progress_sends(net);
        int flag = 0, got = 0;
        MPI_Status st;
        while (MPI_Iprobe(MPI_ANY_SOURCE, TAG_MESSAGE, MPI_COMM_WORLD, &flag, &st) ==
                   MPI_SUCCESS && flag) {
            int rc = take_message(d, &st, err);
            if (rc != MPSL_OK) {
                return rc;
            }
            got = 1;
        }
        if (satisfied ? satisfied(d) : got) {
            return MPSL_OK;
        }
        if (session_stop_requested) {
            return mpsl_errs(err, MPSL_ERR_INTERRUPTED, "interrupted by a signal");
        }
        if (mpsl_now() - start > timeout) {
            char what[256];
            describe_wait(d, what, sizeof what);
            return mpsl_errs(err, MPSL_ERR_IO, "rank %d heard nothing for %.0f s "
                             "(transport.timeout_s): %s", net->rank, timeout, what);
        }
        back_off(got ? 0 : idle);
    }
}

static int mpi_poll(driver *d, double timeout, mpsl_error *err)
{
    return poll_until(d, timeout, NULL, err);
}

static const net_ops mpi_ops = {mpi_send, mpi_poll};

/* ---------------------------------------------------------------- the job */

int transport_attach(driver *d, char *hosts, size_t hosts_size, mpsl_error *err)
{
    mpi_net *net = calloc(1, sizeof *net);
    if (!net) {
        return mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
    }
    MPI_Comm_rank(MPI_COMM_WORLD, &net->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &net->size);
    net->peers = calloc((size_t)net->size, sizeof *net->peers);
    if (!net->peers) {
        free(net);
        return mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
    }
    peer me = {.pid = (int32_t)getpid()};
    gethostname(me.host, sizeof me.host - 1);
    MPI_Allgather(&me, (int)sizeof me, MPI_BYTE, net->peers, (int)sizeof me, MPI_BYTE,
                  MPI_COMM_WORLD);
    hosts[0] = '\0';
    for (int r = 0; r < net->size; r++) {
        int seen = 0;
        for (int q = 0; q < r; q++) {
            seen |= strcmp(net->peers[q].host, net->peers[r].host) == 0;
        }
        size_t used = strlen(hosts);
        if (!seen && used + strlen(net->peers[r].host) + 2 < hosts_size) {
            snprintf(hosts + used, hosts_size - used, "%s%s", used ? "," : "",
                     net->peers[r].host);
        }
    }
    d->net = &mpi_ops;
    d->net_state = net;
    return MPSL_OK;
}

int transport_client_ranks_on_this_host(const driver *d)
{
    const mpi_net *net = d->net_state;
    int n = 0;
    for (int r = 1; net && r < net->size; r++) {
        n += strcmp(net->peers[r].host, net->peers[net->rank].host) == 0;
    }
    return n > 0 ? n : 1;
}

void transport_detach(driver *d)
{
    mpi_net *net = d->net_state;
    if (!net) {
        return;
    }
    /* Every send must complete before MPI_Finalize (or the process ends). */
    while (net->pending) {
        progress_sends(net);
        if (net->pending) {
            back_off(1000);
        }
    }
    free(net->peers);
    free(net);
    d->net = NULL;
    d->net_state = NULL;
}

void transport_client_rank_linger_and_abort(double seconds, int status)
{
    fflush(stdout);
    fflush(stderr);
    double until = mpsl_now() + seconds;
    while (mpsl_now() < until) {
        struct timespec ts = {0, 100 * 1000 * 1000L};
        nanosleep(&ts, NULL);
    }
    transport_mpi_abort(status);
}

void transport_client_rank_done(driver *d, int rc, const mpsl_error *err)
{
    mpi_net *net = d->net_state;
    wire_header h = {.from = MPSL_SERVER, .to = MPSL_SERVER, .dtype = MPSL_I32, .ndim = 1,
                     .rank = net->rank};
    mpsl_error ignored;
    if (rc == MPSL_OK) {
        h.kind = MSG_DONE;
        send_raw(net, 0, &h, NULL, 0, &ignored);
    } else {
        h.kind = MSG_FAILED;
        size_t n = strlen(err->msg);
        h.shape[0] = (int64_t)n;
        send_raw(net, 0, &h, err->msg, n, &ignored);
    }
}

static int all_clients_done(driver *d)
{
    mpi_net *net = d->net_state;
    return net->done_ranks >= net->size - 1;
}

int transport_wait_clients(driver *d, mpsl_error *err)
{
    return poll_until(d, d->timeout_s, all_clients_done, err);
}

/* A process that has exited, including one not yet reaped by its parent (a zombie: mpirun's
 * daemon may not have collected it when the others are told to stop). */
static int process_gone(pid_t pid)
{
    if (kill(pid, 0) != 0) {
        return errno == ESRCH;
    }
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) {
        return 0;
    }
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *close_paren = strrchr(buf, ')'); /* "pid (comm) S ...": the state follows */
    return close_paren && (close_paren[2] == 'Z' || close_paren[2] == 'X');
}

int transport_dead_peer(driver *d, char *what, size_t size)
{
    mpi_net *net = d->net_state;
    if (!net) {
        return 0;
    }
    for (int r = 0; r < net->size; r++) {
        if (r == net->rank || strcmp(net->peers[r].host, net->peers[net->rank].host) != 0) {
            continue;
        }
        if (process_gone((pid_t)net->peers[r].pid)) {
            char who[64];
            clients_of_rank(d, r, who, sizeof who);
            snprintf(what, size, "rank %d (%s, pid %d on %s)", r,
                     r == 0 ? "the server" : who, (int)net->peers[r].pid, net->peers[r].host);
            return 1;
        }
    }
    return 0;
}
