/* profile.h: where the time of a run goes, for MPSL_PROFILE=1 (docs/cli.md, "Profiling").
 *
 * Two views of the same seconds, both per process (under MPI, per rank):
 * - phases, measured around the session API calls strategies make and the host's own work
 *   (data, tokenizers, the encoder + head, the loss, optimizer steps, messages, waiting for
 *   the network, evaluation, diagnostics, the database, checkpoints). They do not overlap:
 *   a role's time suspended inside recv (other roles running, in one process) is not its
 *   messages' time. What no phase covers (the strategies' own loops, e.g. FedAvg's
 *   averaging or MPSL's gradient scaling, and the host's bookkeeping) is "other";
 * - kernels by kind, measured around every call through the kernel table (mpsl_kernels),
 *   wherever it happens: inside tokenizers, the encoder, the loss or evaluation.
 *
 * Off (the default), every hook is one branch on profile_on. Single-threaded by design: the
 * session API and the kernel table are called from the process's main thread (the kernels'
 * worker threads run inside one timed call). */
#ifndef MPSL_PROFILE_H
#define MPSL_PROFILE_H

#include <stdint.h>

typedef enum {
    PROF_DATA,          /* next_batch: drawing and filling a batch */
    PROF_TOKENIZE,      /* model_tokenize and its backward */
    PROF_ENCODE,        /* model_encode (encoder + head) and its backward */
    PROF_LOSS,          /* the task's loss and its gradient */
    PROF_OPTIMIZER,     /* optim_step */
    PROF_MESSAGES,      /* send and recv: copies and framing, not the time suspended */
    PROF_NETWORK_WAIT,  /* MPI: the process idle, waiting for a message from another rank */
    PROF_EVALUATION,    /* the epoch's test evaluation */
    PROF_DIAGNOSTICS,   /* strategies' extra evaluations (MPSL's drift diagnostics) */
    PROF_DATABASE,      /* writing the epoch's rows (a commit counts in the next epoch) */
    PROF_CHECKPOINT,    /* gathering and writing checkpoints */
    PROF_PHASES
} prof_phase;

typedef enum {
    PK_LINEAR_FORWARD,
    PK_LINEAR_BACKWARD,
    PK_ATTENTION_FORWARD,
    PK_ATTENTION_BACKWARD,
    PK_LAYERNORM,       /* forward and backward */
    PK_ACTIVATION,      /* GELU, ReLU, forward and backward */
    PK_ELEMENTWISE,     /* residual and bias adds */
    PK_LOSS,            /* cross-entropy, contrastive loss */
    PK_LAYOUT,          /* patch gathering, embeddings, token selection, pooling */
    PK_L2NORM,
    PK_KINDS
} prof_kernel;

typedef struct profile_counts {
    double wall;                      /* seconds since the previous profile_take */
    double phase[PROF_PHASES];
    int64_t phase_calls[PROF_PHASES];
    double kernel[PK_KINDS];
    int64_t kernel_calls[PK_KINDS];
} profile_counts;

/* Non-zero when MPSL_PROFILE is set to 1 (read by profile_configure). */
extern int profile_on;

/* Reads MPSL_PROFILE (once per process is enough; later calls re-read it) and starts the
 * clock of the first interval. */
void profile_configure(void);
void profile_phase_add(prof_phase p, double seconds);
void profile_kernel_add(prof_kernel k, double seconds);
/* The counts since the previous take (or profile_configure), then zeroes them; *total (may
 * be NULL) accumulates them over the run. */
void profile_take(profile_counts *out, profile_counts *total);
const char *profile_phase_name(int p);  /* "data", "tokenize", ... */
const char *profile_kernel_name(int k); /* "linear_forward", ... */

#endif
