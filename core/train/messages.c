/* messages.c: the message layer. Parties exchange tensors only by send/recv; in one process a
 * send copies the payload into a mailbox, and the exact payload bytes (elements times element
 * size, no headers) are counted for the client end of the link, per direction and kind. Over
 * MPI the same calls would carry the same bytes on the wire. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "session.h"

struct message {
    message *next;
    int from, to;
    mpsl_msg_kind kind;
    mpsl_tensor t;              /* data points into the same allocation */
};

static const char *const kind_names[] = {"activations", "logits", "logit_grads",
                                         "cut_grads",   "parameters", "scalars"};
_Static_assert(MPSL_COUNT(kind_names) == MPSL_MSG_KIND_COUNT, "a message kind has no name");

const char *message_kind_name(mpsl_msg_kind kind)
{
    return (int)kind >= 0 && kind < MPSL_MSG_KIND_COUNT ? kind_names[kind] : "unknown";
}

static int64_t tensor_elements(const mpsl_tensor *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) {
        n *= t->shape[i];
    }
    return n;
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

int messages_send(mpsl_session *s, int from, int to, mpsl_msg_kind kind, const mpsl_tensor *t,
                  mpsl_error *err)
{
    int rc = check_endpoints(s, from, to, err);
    if (rc != MPSL_OK) {
        return rc;
    }
    if ((int)kind < 0 || kind >= MPSL_MSG_KIND_COUNT || t->ndim < 1 || t->ndim > MPSL_MAX_DIMS) {
        return mpsl_errs(err, MPSL_ERR_INTERNAL, "send: bad message kind %d or tensor rank %d",
                         (int)kind, t->ndim);
    }
    size_t bytes = (size_t)tensor_elements(t) * 4; /* float32 and int32 alike */
    message *msg = malloc(sizeof *msg + bytes);
    if (!msg) {
        return mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory sending %zu bytes", bytes);
    }
    msg->next = NULL;
    msg->from = from;
    msg->to = to;
    msg->kind = kind;
    msg->t = *t;
    msg->t.data = msg + 1;
    memcpy(msg->t.data, t->data, bytes);
    if (s->mail_tail) {
        s->mail_tail->next = msg;
    } else {
        s->mail_head = msg;
    }
    s->mail_tail = msg;
    if (s->trace) {
        /* One line per message, for audits such as "no label ever crosses": endpoints, kind,
         * element type, shape, bytes. */
        fprintf(s->trace, "%d %d %s %s", from, to, message_kind_name(kind),
                t->dtype == MPSL_F32 ? "f32" : "i32");
        for (int d = 0; d < t->ndim; d++) {
            fprintf(s->trace, "%s%lld", d ? "x" : " ", (long long)t->shape[d]);
        }
        fprintf(s->trace, " %zu\n", bytes);
    }
    int client = from == MPSL_SERVER ? to : from;
    int dir = from == MPSL_SERVER ? 1 : 0;
    s->links[client].bytes[dir][kind] += (int64_t)bytes;
    s->links[client].messages[dir][kind] += 1;
    return MPSL_OK;
}

int messages_recv(mpsl_session *s, int to, int from, mpsl_msg_kind kind, mpsl_tensor *t,
                  mpsl_error *err)
{
    message *prev = NULL;
    for (message *msg = s->mail_head; msg; prev = msg, msg = msg->next) {
        if (msg->to != to || msg->from != from || msg->kind != kind) {
            continue;
        }
        if (t->dtype != msg->t.dtype) {
            return mpsl_errs(err, MPSL_ERR_INTERNAL, "recv: %s message holds %s, receiver expects %s",
                             message_kind_name(kind), msg->t.dtype == MPSL_F32 ? "float32" : "int32",
                             t->dtype == MPSL_F32 ? "float32" : "int32");
        }
        /* The receiver's shape on entry is its buffer's capacity: never write past it. */
        if (t->ndim < 1 || tensor_elements(&msg->t) > tensor_elements(t)) {
            return mpsl_errs(err, MPSL_ERR_INTERNAL,
                             "recv: %s message of %lld elements from %d to %d does not fit the "
                             "receiving buffer of %lld", message_kind_name(kind),
                             (long long)tensor_elements(&msg->t), from, to,
                             (long long)(t->ndim < 1 ? 0 : tensor_elements(t)));
        }
        memcpy(t->data, msg->t.data, (size_t)tensor_elements(&msg->t) * 4);
        t->ndim = msg->t.ndim;
        memcpy(t->shape, msg->t.shape, sizeof t->shape);
        if (prev) {
            prev->next = msg->next;
        } else {
            s->mail_head = msg->next;
        }
        if (s->mail_tail == msg) {
            s->mail_tail = prev;
        }
        free(msg);
        return MPSL_OK;
    }
    return mpsl_errs(err, MPSL_ERR_INTERNAL, "recv: no %s message from %d to %d is waiting",
                     message_kind_name(kind), from, to);
}

void messages_clear(mpsl_session *s)
{
    message *msg = s->mail_head;
    while (msg) {
        message *next = msg->next;
        free(msg);
        msg = next;
    }
    s->mail_head = s->mail_tail = NULL;
}
