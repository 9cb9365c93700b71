/* session.h: one run in progress, in this process: the experiment, the opened dataset and its
 * partition, the roles and their driver, the epoch's counters (bytes per link, FLOPs and time
 * per party) as the server stores them, and the results store (on the server's process only).
 * Strategies reach it only through the session API (session_api.c), as roles. */
#ifndef MPSL_SESSION_H
#define MPSL_SESSION_H

#include <signal.h>
#include <stdint.h>
#include <stdio.h>

#include "results/store.h"
#include "train/experiment.h"
#include "train/partition.h"
#include "train/roles.h"
#include "util/profile.h"
#include "util/util.h"

/* Where a run is, for a supervising parent process (cli/supervise.c): written by the run as
 * it goes, in memory the parent shares. */
typedef struct run_progress {
    int64_t run_id;             /* 0 until the run's row exists */
    int64_t epoch;              /* epochs ended */
    int64_t step;               /* the last step reported in the current epoch */
    int status_written;         /* the run's final status is in the database */
    char db_path[1024];
} run_progress;

/* Counters for one client's link to the server, by direction (0 up, 1 down) and kind. */
typedef struct link_counters {
    int64_t bytes[2][MPSL_MSG_KIND_COUNT];
    int64_t messages[2][MPSL_MSG_KIND_COUNT];
} link_counters;

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

    /* the roles and the transport between them */
    driver drv;
    int rank, n_ranks;                      /* 0 and 1 in one process */
    const char *transport;                  /* "local" or "mpi" */
    FILE *trace;                            /* $MPSL_MESSAGE_TRACE: one line per message */
    struct broadcast *broadcast;            /* the server's last large payload (messages.c) */

    /* the epoch's counters as the server stores them: bytes per link (the server's own
     * sends counted here, the clients' from their reports), FLOPs and time per party */
    link_counters *links;                   /* (n_clients) */
    double server_flops[2];
    double *client_flops;                   /* (n_clients * 2) */
    double *client_time;                    /* (n_clients * 2): compute, wait seconds */
    double diag_seconds;                    /* the epoch's diagnostics (api->evaluate), kept
                                               out of its training time */
    /* network: this epoch's intervals of every party as simulated seconds (sim_time.c),
     * sim_client[i] the party of row i (MPSL_SERVER for the server) */
    struct sim_row *sim_rows;
    int *sim_client;
    int n_sim, cap_sim, cap_sim_client;
    /* strategy.deadline: FLOPs of a step of n samples, a + b n, per piece of work
     * (deadline.c), measured once in this process */
    int work_measured;
    double work_flops[4][2];

    /* resuming: the epoch the roles start from, and the checkpoint they are restored from */
    int64_t first_epoch, first_step;
    struct ckpt_file *resume_file;
    struct ckpt_role *resume_roles;         /* (n_clients + 1): server first */

    /* results */
    run_progress *progress;                 /* shared with a supervising parent, or NULL */
    store *db;
    int64_t run_id;
    double started, epoch_started;
    int64_t epochs_done;
    int weights_logged;                     /* the pretrained-weights report was printed */
    struct init_cache *init_cache;          /* initial parameters per model layout */
    double last_progress;                   /* when the last progress line was shown */
    int progress_shown;                     /* a \r progress line is on the terminal */
    int quiet;                              /* run --quiet: no epoch or progress lines */
    role_step_row *step_sums;               /* metrics.every_steps: this epoch's client rows */
    int n_step_sums, cap_step_sums;         /* summed step by step */

    /* the head's per-sample output shape, set when a model with the head is built (the
     * run's probe builds one before the strategy starts); out_size = its product */
    int out_ndim;
    int64_t out_shape[MPSL_MAX_DIMS];
    int64_t out_size;
    /* retrieval loss scratch (host_session.c): 5 arrays of loss_cap rows of E floats */
    float *loss_scratch;
    int64_t loss_cap;
    /* the loss at chance (session_epoch_end): this epoch's training loss calls seen by this
     * process, sum of n * (the loss of equal scores for n samples) and of n; and how many
     * epochs in a row train_loss has been within 1% of that chance value */
    double chance_sum, chance_n;
    int chance_streak;
    /* metrics.leakage_audit: the observer, in the server's process (audit.h); else NULL */
    struct audit *audit;
    /* MPSL_PROFILE=1: the run's profile so far (the epochs' counts, util/profile.h) */
    profile_counts profile_total;

};

/* Set by the SIGINT/SIGTERM handler the run installs. */
extern volatile sig_atomic_t session_stop_requested;

/* Open the dataset, partition it and store the clients' data. */
int session_open_data(mpsl_session *s, mpsl_error *err);
/* Release everything the session created (roles and their resources, mail, data). */
void session_close(mpsl_session *s);

/* The message layer (messages.c); see mpsl_session_api.send/recv for the contract. Internal
 * kinds (roles.h) may be sent too; they are not counted. */
int messages_send(mpsl_role *r, int to, int kind, const mpsl_tensor *t, mpsl_error *err);
int messages_recv(mpsl_role *r, int from, int kind, mpsl_tensor *t, mpsl_error *err);
/* Put a message into its receiver's mailbox (and the trace), waking the receiver. */
void messages_deliver(driver *d, message *msg);
/* A message's parts, for transports. */
message *message_new(int from, int to, int kind, const mpsl_tensor *t);
void message_free(message *msg);
/* Drop the session's reference to the server's last large payload (session_close). */
void messages_forget_broadcast(mpsl_session *s);
/* The exact payload bytes of a tensor: its elements times 4 (float32, int32) or 8 (float64);
 * -1 for an unknown element type. What the link counters count and the wire carries. */
int64_t message_payload_bytes(const mpsl_tensor *t);
/* "f32", "i32", "f64" (the trace's words), or "unknown". */
const char *message_dtype_name(mpsl_dtype dtype);
int message_to(const message *msg);
int message_from(const message *msg);
int message_kind(const message *msg);
const mpsl_tensor *message_tensor(const message *msg);
/* recv of a message of any size: *data (malloc'd, *bytes long) holds its payload. */
int messages_recv_alloc(mpsl_role *r, int from, int kind, void **data, size_t *bytes,
                        mpsl_error *err);
/* A local role's mailboxes (one queue per sender), before anything is sent to it. */
int messages_open(mpsl_role *r, int n_clients);
/* Forget every undelivered message of a role, and its mailboxes. */
void messages_clear(mpsl_role *r);
const char *message_kind_name(int kind);

/* Batches and the data cursors (see mpsl_session_api.batch_create / next_batch): client
 * -1 is the union of all clients' data. */
mpsl_batch *session_batch_create(mpsl_session *s, int64_t max_n, mpsl_error *err);
void session_batch_destroy(mpsl_session *s, mpsl_batch *b);
int64_t session_client_next(mpsl_session *s, int client, mpsl_batch *b, int64_t n,
                            mpsl_error *err);
/* Fill b with training samples ids[0..n), touching no cursor. */
int session_fill_train(mpsl_session *s, const int64_t *ids, int64_t n, mpsl_batch *b,
                       mpsl_error *err);
/* Whether a checkpoint is written after this 0-based epoch (never after the last). */
int session_checkpoint_due(const mpsl_session *s, int64_t epoch);
/* The checkpoint after `epochs` epochs and `step` steps of the next, written by the server's
 * role with every client's state (session.c). */
int session_write_checkpoint(mpsl_role *server, int64_t epochs, int64_t step, mpsl_error *err);
/* The server's epoch_end: gathers the clients' reports, evaluates when due, stores the
 * epoch (see mpsl_session_api.epoch_end). */
int session_epoch_end(mpsl_role *server, int64_t epoch, mpsl_model *eval_model,
                      double train_loss, double train_acc, mpsl_error *err);

/* What an evaluation measured. Classification: acc and the mean loss. Retrieval: recall[d][r]
 * = Recall@{1,5,10}[r] image->text (d 0) and text->image (d 1) over the whole test split,
 * acc = the mean of the two Recall@1, loss = the mean over test batches of the summed
 * contrastive loss (see session_loss). */
typedef struct eval_result {
    double acc, loss;
    int has_recall;
    double recall[2][3];
    /* classification: per class c, the test samples, correct predictions and summed loss
     * (n_classes each, malloc'd; NULL for retrieval); eval_result_free releases them */
    int64_t *class_n, *class_hits;
    double *class_loss;
} eval_result;

void eval_result_free(eval_result *res);

/* Evaluate a model on the test split. FLOPs are not counted. */
int session_evaluate(mpsl_session *s, mpsl_model *m, eval_result *res, mpsl_error *err);
/* The same on N samples of a split: ids[0..N) (NULL: the first N in order); by_class fills
 * the per-class figures. What the session API's diagnostics (evaluate) run. */
int session_evaluate_on(mpsl_session *s, mpsl_model *m, mpsl_split split, const int64_t *ids,
                        int64_t N, int by_class, eval_result *res, mpsl_error *err);

/* The task's loss (mpsl_session_api.loss; session_api.c). Returns NAN when scratch memory
 * runs out. */
double session_loss(mpsl_session *s, float *dout, const float *out, const int32_t *labels,
                    int64_t n, int64_t *correct);
/* Retrieval shape of the outputs: K captions of E floats (0, 0 for classification). */
void session_retrieval_shape(const mpsl_session *s, int64_t *K, int64_t *E);

#endif
