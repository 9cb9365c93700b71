/* audit.h: the label-leakage audit (metrics.leakage_audit; docs/privacy.md). An observer in
 * the server's process, outside every role, that sees what the server's role receives (each
 * payload message a client sends it, and the server's own sends, as the message layer
 * delivers them) and, through a path of its own, the labels each client draws: the host's
 * next_batch sends them from the client's process as an internal message (MSG_AUDIT_LABELS,
 * never counted) that the message layer hands to the observer instead of any mailbox, so no
 * role can receive it (the session API refuses internal kinds) and no session API call
 * returns it. At each epoch end it runs the attacks (attacks.h) on what it saw and stores
 * their figures as the epoch's metrics. */
#ifndef MPSL_AUDIT_H
#define MPSL_AUDIT_H

#include "train/session.h"

typedef struct audit audit;

/* In the process that hosts the server role, when metrics.leakage_audit is on: s->audit. */
int audit_open(mpsl_session *s, mpsl_error *err);
void audit_close(mpsl_session *s);
/* A client role drew labels[0..n): the host sends them to the observer (host code only). */
int audit_send_labels(mpsl_role *r, const int32_t *labels, int64_t n, mpsl_error *err);
/* The message layer's hook: a message the server's process delivers to the server or sends
 * from it (payload kinds), or the observer's own labels. Never changes the message. */
void audit_observe(mpsl_session *s, const message *msg);
/* Run the attacks on the epoch's observations and store their figures (inside the epoch's
 * database transaction); then start the next epoch's. */
int audit_store_epoch(mpsl_session *s, int64_t epoch, mpsl_error *err);

#endif
