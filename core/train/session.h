/* session.h: one run in progress: the experiment, the opened dataset and its partition, the
 * message layer's mailboxes and byte counters, FLOP counters per party, the results store
 * and the run's random generator. Strategies reach it only through mpsl_host services. */
#ifndef MPSL_SESSION_H
#define MPSL_SESSION_H

#include <signal.h>
#include <stdint.h>
#include <stdio.h>

#include "results/store.h"
#include "train/experiment.h"
#include "train/partition.h"
#include "util/util.h"

/* Counters for one client's link to the server, by direction (0 up, 1 down) and kind. */
typedef struct link_counters {
    int64_t bytes[2][MPSL_MSG_KIND_COUNT];
    int64_t messages[2][MPSL_MSG_KIND_COUNT];
} link_counters;

typedef struct message message;   /* a payload waiting in a mailbox (messages.c) */

typedef struct client_cursor {
    int64_t *order;        /* this pass's shuffled sample indices */
    int64_t n, next;
    mpsl_rng rng;          /* its own batch-order stream (see session_open_data) */
} client_cursor;

struct mpsl_session {
    experiment *ex;
    const mpsl_host *host;

    /* data */
    void *dataset;                          /* the dataset plugin's state */
    const mpsl_dataset_api *dataset_api;
    mpsl_dataset_info info;
    int modality_of_tokenizer[MPSL_MAX_MODALITIES]; /* dataset modality index per tokenizer */
    partition part;
    int64_t *all_train;                     /* union of the clients' indices */
    int64_t n_all_train;
    client_cursor *cursor;                  /* (n_clients + 1): the last is the union */
    mpsl_rng rng;                           /* strategy-visible random numbers */

    /* message layer */
    message *mail_head, *mail_tail;
    FILE *trace;                            /* $MPSL_MESSAGE_TRACE: one line per message */
    link_counters *links;                   /* (n_clients) */

    /* FLOPs: [party or client][pass]; client k at client_flops[k] */
    double server_flops[2];
    double *client_flops;                   /* (n_clients * 2) */

    /* results */
    store *db;
    int64_t run_id;
    double started, epoch_started;
    int64_t epochs_done;
    int64_t last_epoch_recorded;
    int weights_logged;                     /* the pretrained-weights report was printed */
    double last_progress;                   /* when the last progress line was shown */
    int progress_shown;                     /* a \r progress line is on the terminal */

    /* the head's per-sample output shape, set when a model with the head is built (the
     * run's probe builds one before the strategy starts); out_size = its product */
    int out_ndim;
    int64_t out_shape[MPSL_MAX_DIMS];
    int64_t out_size;
    /* retrieval loss scratch (host_session.c): 5 arrays of loss_cap rows of E floats */
    float *loss_scratch;
    int64_t loss_cap;

    /* models made through the host, released at the end of the run */
    mpsl_model **models;
    int n_models, cap_models;
    mpsl_optim **optims;
    int n_optims, cap_optims;
    mpsl_batch **batches;
    int n_batches, cap_batches;
};

/* Set by the SIGINT/SIGTERM handler the run installs. */
extern volatile sig_atomic_t session_stop_requested;

/* Open the dataset, partition it and store the clients' data. */
int session_open_data(mpsl_session *s, mpsl_error *err);
/* Release everything the session created (models, optimizers, batches, mail, data). */
void session_close(mpsl_session *s);

/* The message layer (messages.c); see mpsl_host.send/recv for the contract. */
int messages_send(mpsl_session *s, int from, int to, mpsl_msg_kind kind, const mpsl_tensor *t,
                  mpsl_error *err);
int messages_recv(mpsl_session *s, int to, int from, mpsl_msg_kind kind, mpsl_tensor *t,
                  mpsl_error *err);
/* Forget undelivered messages (e.g. after a failed step). */
void messages_clear(mpsl_session *s);
const char *message_kind_name(mpsl_msg_kind kind);

/* Batches and the client cursors (see mpsl_host.batch_create / client_next). */
mpsl_batch *session_batch_create(mpsl_session *s, int64_t max_n, mpsl_error *err);
void session_batch_destroy(mpsl_session *s, mpsl_batch *b);
int64_t session_client_next(mpsl_session *s, int client, mpsl_batch *b, int64_t n,
                            mpsl_error *err);
/* See mpsl_host.epoch_end. */
int session_epoch_end(mpsl_session *s, int64_t epoch, mpsl_model *eval_model, double train_loss,
                      double train_acc, mpsl_error *err);
/* Free an optimizer made through the host (host_session.c). */
void session_optim_free(mpsl_optim *o);

/* What an evaluation measured. Classification: acc and the mean loss. Retrieval: recall[d][r]
 * = Recall@{1,5,10}[r] image->text (d 0) and text->image (d 1) over the whole test split,
 * acc = the mean of the two Recall@1, loss = the mean over test batches of the summed
 * contrastive loss (see session_loss). */
typedef struct eval_result {
    double acc, loss;
    int has_recall;
    double recall[2][3];
} eval_result;

/* Evaluate a model on the test split. FLOPs are not counted. */
int session_evaluate(mpsl_session *s, mpsl_model *m, eval_result *res, mpsl_error *err);

/* The task's loss (mpsl_host.loss; host_session.c). */
double session_loss(mpsl_session *s, float *dout, const float *out, const int32_t *labels,
                    int64_t n, int64_t *correct);
/* Retrieval shape of the outputs: K captions of E floats (0, 0 for classification). */
void session_retrieval_shape(const mpsl_session *s, int64_t *K, int64_t *E);

#endif
