/* messages.c: the message layer. Roles exchange tensors only by send/recv. A send copies the
 * payload into a message; a message for a role in this process goes straight into its
 * mailbox, one for a role in another process goes to the network (the driver's net_ops).
 * The exact payload bytes (elements times element size: 4 for float32 and int32, 8 for
 * float64; no headers) are counted by the
 * sender for the client end of the link, per direction and kind: the server's sends in the
 * session's link counters, a client's in its own counters, which it reports to the server at
 * the end of each epoch. So the same counts come out in one process and over MPI. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "session.h"
#include "train/audit.h"

struct message {
    message *next;
    int from, to, kind;
    mpsl_tensor t;              /* data points into the same allocation, or into `shared` */
    broadcast *shared;          /* the payload it shares with others, or NULL */
};

/* One payload several messages share. FedAvg's server sends the same global model to every
 * client of a round (0.49 MB each for the quickstart's model): in one process that was
 * K copies waiting in the mailboxes at once. A large payload the server sends to a role in
 * this process is compared with the one it sent last; if the bytes are the same the message
 * points at that copy instead of making its own. The session keeps a reference to the
 * latest, so it can be compared; receivers copy out of it as out of any message. */
struct broadcast {
    int refs;
    size_t bytes;
    mpsl_dtype dtype;
    int ndim;
    int64_t shape[MPSL_MAX_DIMS];
    _Alignas(64) unsigned char data[];
};

/* Payloads smaller than this are copied as always: comparing would save nothing. */
#define BROADCAST_MIN_BYTES ((size_t)1 << 16)

static void broadcast_release(broadcast *b)
{
    if (b && --b->refs == 0) {
        free(b);
    }
}

void messages_forget_broadcast(mpsl_session *s)
{
    broadcast_release(s->broadcast);
    s->broadcast = NULL;
}

void message_free(message *msg)
{
    if (msg) {
        broadcast_release(msg->shared);
        free(msg);
    }
}

static const char *const kind_names[] = {"activations", "logits",     "logit_grads", "cut_grads",
                                         "parameters",  "scalars",    "features",
                                         "feature_grads", "report",   "failed",      "done",
                                         "checkpoint",  "heartbeat",  "audit_labels"};
_Static_assert(MPSL_COUNT(kind_names) == MSG_KIND_ALL, "a message kind has no name");

const char *message_kind_name(int kind)
{
    return kind >= 0 && kind < MSG_KIND_ALL ? kind_names[kind] : "unknown";
}

static int64_t tensor_elements(const mpsl_tensor *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) {
        n *= t->shape[i];
    }
    return n;
}

int64_t message_payload_bytes(const mpsl_tensor *t)
{
    switch (t->dtype) {
    case MPSL_F32:
    case MPSL_I32:
        return tensor_elements(t) * 4;
    case MPSL_F64:
        return tensor_elements(t) * 8;
    default:
        return -1;
    }
}

const char *message_dtype_name(mpsl_dtype dtype)
{
    switch (dtype) {
    case MPSL_F32:
        return "f32";
    case MPSL_I32:
        return "i32";
    case MPSL_F64:
        return "f64";
    default:
        return "unknown";
    }
}

/* A message's header with room for `room` payload bytes after it; t.data still t's. */
static message *message_alloc(int from, int to, int kind, const mpsl_tensor *t, size_t room)
{
    message *msg = malloc(sizeof *msg + room);
    if (!msg) {
        return NULL;
    }
    msg->next = NULL;
    msg->from = from;
    msg->to = to;
    msg->kind = kind;
    msg->t = *t;
    msg->shared = NULL;
    return msg;
}

/* t's element type must be known (message_payload_bytes(t) >= 0). */
message *message_new(int from, int to, int kind, const mpsl_tensor *t)
{
    size_t bytes = (size_t)message_payload_bytes(t);
    message *msg = message_alloc(from, to, kind, t, bytes);
    if (!msg) {
        return NULL;
    }
    msg->t.data = msg + 1;
    if (t->data && bytes) {
        memcpy(msg->t.data, t->data, bytes);
    }
    return msg;
}

static int same_payload(const broadcast *b, const mpsl_tensor *t, size_t bytes)
{
    return b && b->bytes == bytes && b->dtype == t->dtype && b->ndim == t->ndim &&
           memcmp(b->shape, t->shape, (size_t)t->ndim * sizeof *t->shape) == 0 &&
           memcmp(b->data, t->data, bytes) == 0;
}

/* A message of the server's to a role in this process: sharing the last large payload it
 * sent when the bytes are the same, else with a copy of its own (which, when large, becomes
 * the one the next send is compared with). */
static message *server_message_new(mpsl_session *s, int to, int kind, const mpsl_tensor *t)
{
    size_t bytes = (size_t)message_payload_bytes(t);
    if (bytes < BROADCAST_MIN_BYTES || !t->data) {
        return message_new(MPSL_SERVER, to, kind, t);
    }
    if (!same_payload(s->broadcast, t, bytes)) {
        broadcast *b = malloc(sizeof *b + bytes);
        if (!b) {
            return NULL;
        }
        b->refs = 1; /* the session's */
        b->bytes = bytes;
        b->dtype = t->dtype;
        b->ndim = t->ndim;
        memcpy(b->shape, t->shape, sizeof b->shape);
        memcpy(b->data, t->data, bytes);
        messages_forget_broadcast(s);
        s->broadcast = b;
    }
    message *msg = message_alloc(MPSL_SERVER, to, kind, t, 0);
    if (!msg) {
        return NULL;
    }
    msg->t.data = s->broadcast->data;
    msg->shared = s->broadcast;
    s->broadcast->refs++;
    return msg;
}

int message_to(const message *msg) { return msg->to; }
int message_from(const message *msg) { return msg->from; }
int message_kind(const message *msg) { return msg->kind; }
const mpsl_tensor *message_tensor(const message *msg) { return &msg->t; }

static void trace(mpsl_session *s, const message *msg)
{
    const mpsl_tensor *t = &msg->t;
    /* One line per message, for audits such as "no label ever crosses": endpoints, kind,
     * element type, shape, bytes. */
    fprintf(s->trace, "%d %d %s %s", msg->from, msg->to, message_kind_name(msg->kind),
            message_dtype_name(t->dtype));
    for (int d = 0; d < t->ndim; d++) {
        fprintf(s->trace, "%s%lld", d ? "x" : " ", (long long)t->shape[d]);
    }
    fprintf(s->trace, " %lld\n", (long long)message_payload_bytes(t));
}

void messages_deliver(driver *d, message *msg)
{
    if (msg->kind == MSG_AUDIT_LABELS) { /* the observer's own path: no role's mailbox */
        audit_observe(d->s, msg);
        message_free(msg);
        return;
    }
    if (msg->to == MPSL_SERVER && (msg->kind < MPSL_MSG_KIND_COUNT || msg->kind == MSG_REPORT) &&
        d->s->audit) {
        audit_observe(d->s, msg); /* what the server's role receives */
    }
    mpsl_role *r = driver_role(d, msg->to);
    /* The server's process sees every payload message: it writes the trace, in the order the
     * server's mailbox receives them (client sends) or the server sends them. */
    if (d->s->trace && msg->to == MPSL_SERVER && msg->kind < MPSL_MSG_KIND_COUNT) {
        trace(d->s, msg);
    }
    int q = msg->from + 1; /* check_endpoints: a client's sender is the server, queue 0 */
    if (q < 0 || q >= r->n_mail) { /* a role that runs nothing here: nobody will read it */
        message_free(msg);
        return;
    }
    if (r->mail_tail[q]) {
        r->mail_tail[q]->next = msg;
    } else {
        r->mail_head[q] = msg;
    }
    r->mail_tail[q] = msg;
    driver_wake(d, r, msg->from, msg->kind);
}

static int check_endpoints(mpsl_session *s, int from, int to, mpsl_error *err)
{
    int n = s->ex->n_clients;
    int from_ok = from == MPSL_SERVER || (from >= 0 && from < n);
    int to_ok = to == MPSL_SERVER || (to >= 0 && to < n);
    if (!from_ok || !to_ok || (from == MPSL_SERVER) == (to == MPSL_SERVER)) {
        return mpsl_errs(err, MPSL_ERR_INTERNAL,
                         "message from %d to %d: one end must be the server (%d) and the other a "
                         "client in [0, %d)", from, to, MPSL_SERVER, n);
    }
    return MPSL_OK;
}

int messages_send(mpsl_role *r, int to, int kind, const mpsl_tensor *t, mpsl_error *err)
{
    mpsl_session *s = r->s;
    int rc = check_endpoints(s, r->id, to, err);
    if (rc != MPSL_OK) {
        return rc;
    }
    if (kind < 0 || kind >= MSG_KIND_ALL || t->ndim < 1 || t->ndim > MPSL_MAX_DIMS ||
        message_payload_bytes(t) < 0) {
        return mpsl_errs(err, MPSL_ERR_INTERNAL, "send: bad message kind %d, tensor rank %d or "
                         "element type %d (expected MPSL_F32, MPSL_I32 or MPSL_F64)", kind,
                         t->ndim, (int)t->dtype);
    }
    int64_t bytes = message_payload_bytes(t);
    mpsl_role *dest = driver_role(&s->drv, to);
    message *msg = r->id == MPSL_SERVER && dest->state != ROLE_REMOTE
                       ? server_message_new(s, to, kind, t)
                       : message_new(r->id, to, kind, t);
    if (!msg) {
        return mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory sending %lld bytes",
                         (long long)bytes);
    }
    if (kind < MPSL_MSG_KIND_COUNT) {
        if (r->id == MPSL_SERVER) {
            s->links[to].bytes[1][kind] += bytes;
            s->links[to].messages[1][kind] += 1;
            if (s->trace) {
                trace(s, msg);
            }
            if (s->audit) {
                audit_observe(s, msg);
            }
        } else {
            r->sent_bytes[kind] += bytes;
            r->sent_messages[kind] += 1;
        }
    }
    if (dest->state == ROLE_REMOTE) {
        return s->drv.net->send(&s->drv, msg, err);
    }
    messages_deliver(&s->drv, msg);
    return MPSL_OK;
}

int messages_recv(mpsl_role *r, int from, int kind, mpsl_tensor *t, mpsl_error *err)
{
    int q = from + 1;
    if (q < 0 || q >= r->n_mail) {
        return mpsl_errs(err, MPSL_ERR_INTERNAL, "recv: role %d cannot hear from %d", r->id,
                         from);
    }
    for (;;) {
        message *prev = NULL;
        for (message *msg = r->mail_head[q]; msg; prev = msg, msg = msg->next) {
            if (msg->kind != kind) {
                continue;
            }
            if (t->dtype != msg->t.dtype) {
                return mpsl_errs(err, MPSL_ERR_INTERNAL,
                                 "recv: %s message holds %s, receiver expects %s",
                                 message_kind_name(kind), message_dtype_name(msg->t.dtype),
                                 message_dtype_name(t->dtype));
            }
            /* The receiver's shape on entry is its buffer's capacity: never write past it. */
            if (t->ndim < 1 || tensor_elements(&msg->t) > tensor_elements(t)) {
                return mpsl_errs(err, MPSL_ERR_INTERNAL,
                                 "recv: %s message of %lld elements from %d to %d does not fit "
                                 "the receiving buffer of %lld", message_kind_name(kind),
                                 (long long)tensor_elements(&msg->t), from, r->id,
                                 (long long)(t->ndim < 1 ? 0 : tensor_elements(t)));
            }
            memcpy(t->data, msg->t.data, (size_t)message_payload_bytes(&msg->t));
            t->ndim = msg->t.ndim;
            memcpy(t->shape, msg->t.shape, sizeof t->shape);
            if (prev) {
                prev->next = msg->next;
            } else {
                r->mail_head[q] = msg->next;
            }
            if (r->mail_tail[q] == msg) {
                r->mail_tail[q] = prev;
            }
            message_free(msg);
            return MPSL_OK;
        }
        int rc = driver_wait(&r->s->drv, r, from, kind, err);
        if (rc != MPSL_OK) {
            return rc;
        }
    }
}

int messages_recv_alloc(mpsl_role *r, int from, int kind, void **data, size_t *bytes,
                        mpsl_error *err)
{
    *data = NULL;
    *bytes = 0;
    int q = from + 1;
    for (;;) {
        for (message *msg = q >= 0 && q < r->n_mail ? r->mail_head[q] : NULL; msg;
             msg = msg->next) {
            if (msg->kind == kind) {
                size_t n = (size_t)message_payload_bytes(&msg->t);
                *data = malloc(n ? n : 1);
                if (!*data) {
                    return mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory receiving %zu bytes", n);
                }
                mpsl_tensor t = {.data = *data, .dtype = msg->t.dtype, .ndim = 1,
                                 .shape = {tensor_elements(&msg->t)}};
                *bytes = n;
                return messages_recv(r, from, kind, &t, err);
            }
        }
        int rc = driver_wait(&r->s->drv, r, from, kind, err);
        if (rc != MPSL_OK) {
            return rc;
        }
    }
}

int messages_open(mpsl_role *r, int n_clients)
{
    r->n_mail = r->id == MPSL_SERVER ? n_clients + 1 : 1;
    r->mail_head = calloc((size_t)r->n_mail, sizeof *r->mail_head);
    r->mail_tail = calloc((size_t)r->n_mail, sizeof *r->mail_tail);
    if (!r->mail_head || !r->mail_tail) {
        messages_clear(r);
        return MPSL_ERR_NOMEM;
    }
    return MPSL_OK;
}

void messages_clear(mpsl_role *r)
{
    for (int q = 0; q < r->n_mail && r->mail_head; q++) {
        message *msg = r->mail_head[q];
        while (msg) {
            message *next = msg->next;
            message_free(msg);
            msg = next;
        }
    }
    free(r->mail_head);
    free(r->mail_tail);
    r->mail_head = r->mail_tail = NULL;
    r->n_mail = 0;
}
