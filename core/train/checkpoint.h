/* checkpoint.h: what a run needs to continue exactly where it was at the end of an epoch, or
 * of a step inside one. Each role saves its own state (its random streams, its data cursor,
 * the epoch's counters so far, the models and optimizers it holds, in creation order, and
 * what it declared with keep; the server also its link counters) as a blob; the
 * server's process writes every role's blob into one file, atomically (temporary name,
 * fsync, rename), with the run id, the epoch, the resolved config and a CRC32. Blobs are
 * raw native-endian numbers: a checkpoint is for the same build on the same kind of machine.
 * Format: docs/cli.md ("Checkpoints and resume"). */
#ifndef MPSL_CHECKPOINT_H
#define MPSL_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "mpsl/plugin.h"

typedef struct mpsl_session mpsl_session;

/* A growing byte buffer. */
typedef struct ckpt_buf {
    unsigned char *p;
    size_t len, cap;
    int oom;
} ckpt_buf;
void ckpt_buf_free(ckpt_buf *b);

/* Append role r's state. */
int checkpoint_role_save(mpsl_role *r, ckpt_buf *b, mpsl_error *err);
/* Zero bytes up to a multiple of 4 (a blob travels as int32 words; parsing ignores them). */
void checkpoint_pad4(ckpt_buf *b);

/* One role's saved state, pointing into a blob. */
typedef struct ckpt_tensor {
    int32_t parts;              /* models: MPSL_PART_* they held */
    int64_t n, t;               /* floats; optimizers: steps taken */
    const float *a, *b;         /* models: params; optimizers: moments m and v (v may be NULL) */
} ckpt_tensor;
typedef struct ckpt_kept {
    const char *name;
    const void *data;
    uint64_t bytes;
} ckpt_kept;
typedef struct ckpt_role {
    int32_t id;
    mpsl_rng rng, shared;
    double flops[2], compute_s, wait_s;
    int64_t sent_bytes[MPSL_MSG_KIND_COUNT], sent_messages[MPSL_MSG_KIND_COUNT];
    int n_metrics;
    const unsigned char *metrics;   /* n_metrics role_metric records (copy them out) */
    const unsigned char *links;     /* the server: its link counters, links_bytes long */
    uint64_t links_bytes;
    int64_t cursor_n, cursor_next;
    mpsl_rng cursor_rng;
    const int64_t *cursor_order;
    int n_models, n_optims, n_kept;
    ckpt_tensor *models, *optims;
    ckpt_kept *kept;
} ckpt_role;
/* Parse a blob (pointers stay into it); refuses anything malformed. */
int checkpoint_role_parse(const unsigned char *p, size_t len, ckpt_role *out, mpsl_error *err);
void checkpoint_role_free(ckpt_role *r);
/* Put a parsed state back into role r: its streams and data cursor now; its models,
 * optimizers and kept memory as the role creates or declares them again (session_api.c). */
int checkpoint_role_restore(mpsl_role *r, ckpt_role *state, mpsl_error *err);

/* A checkpoint file. */
typedef struct ckpt_file {
    unsigned char *data;        /* the whole file */
    size_t len;
    int64_t run_id, epoch;      /* epochs done when it was written */
    int64_t step;               /* and steps done in the next one (0: at an epoch's end) */
    const char *config;         /* the run's resolved config (YAML), NUL-terminated */
    int n_roles;                /* server first, then clients 0..K-1 */
    const unsigned char **role;
    size_t *role_len;
} ckpt_file;

int checkpoint_write(const char *path, int64_t run_id, int64_t epoch, int64_t step,
                     const char *config, const ckpt_buf *roles, int n_roles, mpsl_error *err);
/* Read and verify (magic, version, sizes, CRC32): every refusal names the file. */
int checkpoint_read(const char *path, ckpt_file *f, mpsl_error *err);
void checkpoint_free(ckpt_file *f);

#endif
