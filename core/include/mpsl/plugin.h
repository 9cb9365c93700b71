/* mpsl/plugin.h: the one header a plugin author needs.
 *
 * OVERVIEW
 * A plugin is a shared object that exports exactly one function, mpsl_plugin_entry().
 * The host (the `mpsl` command / libmpsl) dlopen()s it with RTLD_NOW | RTLD_LOCAL, calls
 * the entry point with a table of host services, and gets back a descriptor: the ABI
 * version the plugin was built for, its name, version and kind, the parameters it accepts
 * (validated by the host, with file:line:column messages) and its kind's function table.
 *
 * Kinds: dataset, tokenizer, encoder, head, aggregation (a strategy: server and client roles,
 * see "strategies" below). Tokenizer, encoder and head share
 * one table shape, mpsl_module_api ("modules"): they declare parameter tensors, and the host
 * allocates parameters, gradients and optimizer state for them in flat buffers, so that
 * optimizers, averaging, checkpoints and byte counts are generic loops over one buffer.
 *
 * Sizes used in shape comments: B batch, T tokens, D width, C classes.
 *
 * WORKED EXAMPLE (a tokenizer that embeds each pixel row; see plugins/templates/ for a
 * complete template per kind):
 *
 *     typedef struct { int64_t dim; } row_params;
 *     static const mpsl_param_spec row_spec[] = {
 *         MPSL_PARAM_INT(row_params, dim, "dim", 1, 1, 65536, "64", "token width D"),
 *     };
 *     static int row_create(const mpsl_host *h, const mpsl_module_init *init,
 *                           void **state, mpsl_error *err) { ... init->declare(...) ... }
 *     static const mpsl_module_api row_api = { sizeof(mpsl_module_api), row_create,
 *         row_destroy, row_output_shape, row_forward, row_backward };
 *     MPSL_PLUGIN(MPSL_KIND_TOKENIZER, "rows", "1.0.0", "one token per pixel row",
 *                 &row_api, row_params, row_spec);
 *
 * Build out of tree:  cc -shared -fPIC $(pkg-config --cflags mpsl-plugin) rows.c -o rows.so
 *
 * RULES THAT HOLD FOR EVERY KIND
 * - Functions return MPSL_OK (0) or a negative mpsl_status, and on failure write a message
 *   into the caller-owned mpsl_error with h->error_set(). Plugins never call exit().
 * - Tables begin with a `size` field (sizeof the table the plugin was compiled with) and only
 *   ever grow at the end; the host reads no field beyond `size`.
 * - Everything the host passes by pointer stays owned by the host unless said otherwise.
 */
#ifndef MPSL_PLUGIN_H
#define MPSL_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ABI version. Major: incompatible change (the host refuses a different major).
 * Minor: tables grew at the end (the host refuses a plugin built for a newer minor). */
#define MPSL_ABI_MAJOR 2
#define MPSL_ABI_MINOR 2 /* 2.1: mpsl_dataset_info.class_names; 2.2: kernels l2norm_*,
                            MPSL_INIT_CONSTANT */

#define MPSL_PLUGIN_EXPORT __attribute__((visibility("default")))
#define MPSL_ENTRY_SYMBOL "mpsl_plugin_entry"
#define MPSL_COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* The host's table of services, defined at the end of this header. */
typedef struct mpsl_host mpsl_host;

/* ---------------------------------------------------------------- errors */

typedef enum mpsl_status {
    MPSL_OK = 0,
    MPSL_ERR_INVALID = -1,     /* bad input: config, file contents, shapes */
    MPSL_ERR_IO = -2,          /* file or database could not be read or written */
    MPSL_ERR_NOMEM = -3,       /* allocation failed */
    MPSL_ERR_PLUGIN = -4,      /* a plugin could not be loaded or refused to start */
    MPSL_ERR_INTERRUPTED = -5, /* SIGINT/SIGTERM asked the run to stop */
    MPSL_ERR_INTERNAL = -6     /* a bug: please report it */
} mpsl_status;

/* Caller-owned message buffer. Fill it with h->error_set(); it always stays NUL-terminated. */
typedef struct mpsl_error {
    char msg[1024];
} mpsl_error;

/* ---------------------------------------------------------------- plugin kinds */

typedef enum mpsl_plugin_kind {
    MPSL_KIND_DATASET = 0,
    MPSL_KIND_TOKENIZER,
    MPSL_KIND_ENCODER,
    MPSL_KIND_HEAD,
    MPSL_KIND_AGGREGATION,
    MPSL_KIND_COUNT
} mpsl_plugin_kind;

/* ---------------------------------------------------------------- parameters (config) */

/* A plugin's configuration keys are declared as a table of mpsl_param_spec. The host reads the
 * plugin's YAML mapping, refuses unknown keys (with a did-you-mean), wrong types, values out
 * of [min, max], NaN/inf, and missing required keys, all with file:line:column, then fills a
 * struct of `params_size` bytes at the given offsets and hands it to create()/open(). */
typedef enum mpsl_param_type {
    MPSL_PARAM_T_INT = 0, /* int64_t   */
    MPSL_PARAM_T_FLOAT,   /* double    */
    MPSL_PARAM_T_BOOL,    /* int (0/1) */
    MPSL_PARAM_T_STRING,  /* const char * (owned by the host, valid while the plugin lives) */
    MPSL_PARAM_T_ENUM,    /* int: index into the '|'-separated `choices` */
    MPSL_PARAM_T_COUNT
} mpsl_param_type;

typedef struct mpsl_param_spec {
    const char *key;       /* YAML key */
    mpsl_param_type type;
    size_t offset;         /* offsetof(your_params_struct, field) */
    int required;          /* 1: the key must be present; def is ignored */
    double min, max;       /* inclusive bounds for INT and FLOAT; ignored otherwise */
    const char *def;       /* default, written as in YAML ("0.5", "true", "mean"); NULL = 0 */
    const char *choices;   /* ENUM only: "cls|mean" */
    const char *help;      /* one line, shown by `mpsl plugins --params` and in errors */
} mpsl_param_spec;

#define MPSL_PARAM_INT(S, field, key, req, lo, hi, def, help) \
    { key, MPSL_PARAM_T_INT, offsetof(S, field), req, lo, hi, def, NULL, help }
#define MPSL_PARAM_FLOAT(S, field, key, req, lo, hi, def, help) \
    { key, MPSL_PARAM_T_FLOAT, offsetof(S, field), req, lo, hi, def, NULL, help }
#define MPSL_PARAM_BOOL(S, field, key, def, help) \
    { key, MPSL_PARAM_T_BOOL, offsetof(S, field), 0, 0, 1, def, NULL, help }
#define MPSL_PARAM_STRING(S, field, key, req, def, help) \
    { key, MPSL_PARAM_T_STRING, offsetof(S, field), req, 0, 0, def, NULL, help }
#define MPSL_PARAM_ENUM(S, field, key, choices, def, help) \
    { key, MPSL_PARAM_T_ENUM, offsetof(S, field), 0, 0, 0, def, choices, help }

/* ---------------------------------------------------------------- tensors */

/* MPSL_F64 is for messages only (session API 2): figures such as a loss value that must arrive
 * exactly as computed. Datasets, batches and modules use MPSL_F32 and MPSL_I32. */
typedef enum mpsl_dtype { MPSL_F32 = 0, MPSL_I32 = 1, MPSL_F64 = 2 } mpsl_dtype;

#define MPSL_MAX_DIMS 4
typedef struct mpsl_tensor {
    void *data;                     /* float * for MPSL_F32, int32_t * for MPSL_I32,
                                       double * for MPSL_F64 */
    mpsl_dtype dtype;
    int ndim;
    int64_t shape[MPSL_MAX_DIMS];   /* shape[0] is always the batch B */
} mpsl_tensor;

/* Where each modality's tokens sit in a (B,T,D) token tensor. With early fusion all
 * modalities are concatenated along T; heads pool over these ranges (e.g. each CLS). */
#define MPSL_MAX_MODALITIES 4
typedef struct mpsl_token_layout {
    int n_segments;
    struct {
        int64_t offset;   /* first token of this modality */
        int64_t length;   /* number of tokens */
        int has_cls;      /* 1: the first token of the segment is a CLS token */
    } segment[MPSL_MAX_MODALITIES];
} mpsl_token_layout;

/* ---------------------------------------------------------------- FLOP accounting */

typedef enum mpsl_pass { MPSL_PASS_FORWARD = 0, MPSL_PASS_BACKWARD = 1 } mpsl_pass;

/* ---------------------------------------------------------------- kernels */

/* Numeric kernels shared by core and plugins (float32, OpenBLAS underneath). Each adds the
 * FLOPs it executed to the party whose model (or loss) is running: the host points the
 * counter at that party before it calls a module, so plugins never attribute FLOPs.
 * Backward functions ACCUMULATE (+=) into weight gradients and OVERWRITE input gradients;
 * any gradient pointer may be NULL to skip it (e.g. frozen weights, the first layer). */
typedef struct mpsl_kernels {
    uint32_t size;
    /* out = inp @ w^T + b.  out (N,OC), inp (N,IC), w (OC,IC), b (OC) or NULL */
    void (*linear_forward)(float *out, const float *inp, const float *w, const float *b,
                           int64_t N, int64_t IC, int64_t OC);
    void (*linear_backward)(float *dinp, float *dw, float *db, const float *dout,
                            const float *inp, const float *w, int64_t N, int64_t IC,
                            int64_t OC);
    /* elementwise ReLU: out (N), inp (N); backward dinp = dout * (inp > 0) */
    void (*relu_forward)(float *out, const float *inp, int64_t N);
    void (*relu_backward)(float *dinp, const float *dout, const float *inp, int64_t N);
    /* mean over tokens [t0, t0+len) of each sample: out (B,D), inp (B,T,D) */
    void (*meanpool_forward)(float *out, const float *inp, int64_t B, int64_t T, int64_t D,
                             int64_t t0, int64_t len);
    /* dinp (B,T,D) += spread of dout (B,D) over the same range */
    void (*meanpool_backward)(float *dinp, const float *dout, int64_t B, int64_t T,
                              int64_t D, int64_t t0, int64_t len);
    /* softmax cross-entropy, mean over the batch. logits (B,C), labels (B).
     * Returns the mean loss; if dlogits (B,C) is non-NULL writes d(mean loss)/dlogits
     * scaled by `scale` (use 1). *correct (may be NULL) receives the number of argmax hits. */
    double (*cross_entropy)(float *dlogits, const float *logits, const int32_t *labels,
                            int64_t B, int64_t C, float scale, int64_t *correct);
    /* gather non-overlapping P x P patches: out (B, nP, Cin*P*P) from img (B,Cin,H,W),
     * nP = (H/P)*(W/P), patch order row-major, feature order (c, py, px) as in a conv. */
    void (*patch_gather)(float *out, const float *img, int64_t B, int64_t Cin, int64_t H,
                         int64_t W, int64_t P);

    /* --- transformer kernels. Shapes: N rows, C features, B batch, T tokens, D width,
     * H heads (D % H == 0), E embedding width, V vocabulary. */

    /* LayerNorm over the last dimension (PyTorch's, biased variance):
     * out (N,C) = (inp - mean) * rstd * w + b, saving mean (N) and rstd (N) for backward.
     * w, b (C). Backward writes dinp (N,C), accumulates dw, db (C). */
    void (*layernorm_forward)(float *out, float *mean, float *rstd, const float *inp,
                              const float *w, const float *b, int64_t N, int64_t C, float eps);
    void (*layernorm_backward)(float *dinp, float *dw, float *db, const float *dout,
                               const float *inp, const float *w, const float *mean,
                               const float *rstd, int64_t N, int64_t C);
    /* Exact GELU: out (N) = 0.5 * x * (1 + erf(x / sqrt(2))). */
    void (*gelu_forward)(float *out, const float *inp, int64_t N);
    void (*gelu_backward)(float *dinp, const float *dout, const float *inp, int64_t N);
    /* Multi-head self-attention between the qkv and output projections.
     * qkv (B,T,3D) packed as timm's Linear(D, 3D) output: q = qkv[..., 0:D], k = [D:2D],
     * v = [2D:3D], each split into H heads of D/H. out (B,T,D) heads concatenated.
     * att (B,H,T,T) receives the softmax probabilities (scale 1/sqrt(D/H), max-subtracted),
     * kept for backward. Backward writes dqkv (B,T,3D). */
    void (*attention_forward)(float *out, float *att, const float *qkv, int64_t B, int64_t T,
                              int64_t D, int64_t H);
    void (*attention_backward)(float *dqkv, const float *dout, const float *qkv,
                               const float *att, int64_t B, int64_t T, int64_t D, int64_t H);
    /* Residual add: out (N) = a + b; out may alias a or b. (Its backward is the identity.) */
    void (*add)(float *out, const float *a, const float *b, int64_t N);
    /* Broadcast add over a batch: out (B,M) = inp (B,M) + bias (M) (e.g. position
     * embeddings with M = T*D); out may alias inp. Backward: dbias (M) += sum over B. */
    void (*bias_add_forward)(float *out, const float *inp, const float *bias, int64_t B,
                             int64_t M);
    void (*bias_add_backward)(float *dbias, const float *dout, int64_t B, int64_t M);
    /* Patches with a stride (overlapping when stride < patch, as AST does on spectrograms):
     * out (B, nH*nW, Cin*Ph*Pw) from img (B,Cin,H,W), nH = (H-Ph)/Sh + 1,
     * nW = (W-Pw)/Sw + 1, patches row-major, features in (c, py, px) order. */
    void (*patch_gather_strided)(float *out, const float *img, int64_t B, int64_t Cin,
                                 int64_t H, int64_t W, int64_t Ph, int64_t Pw, int64_t Sh,
                                 int64_t Sw);
    /* Token embedding lookup: out (N,D) = table[ids[n]] with ids in [0,V) (the caller
     * validates). Backward: dtable (V,D) += scatter of dout (N,D). */
    void (*embedding_forward)(float *out, const int32_t *ids, const float *table, int64_t N,
                              int64_t V, int64_t D);
    void (*embedding_backward)(float *dtable, const float *dout, const int32_t *ids, int64_t N,
                               int64_t V, int64_t D);
    /* One token of each sample: out (B,D) = inp[:, t, :] from inp (B,T,D) (CLS pooling).
     * Backward: dinp[:, t, :] += dout (accumulates, like meanpool_backward). */
    void (*token_select_forward)(float *out, const float *inp, int64_t B, int64_t T, int64_t D,
                                 int64_t t);
    void (*token_select_backward)(float *dinp, const float *dout, int64_t B, int64_t T,
                                  int64_t D, int64_t t);
    /* Symmetric contrastive loss of the retrieval task (see docs): S = img @ txt^T (B,B) of
     * raw dot products (no normalisation, no temperature); loss = (CE(S, diag) +
     * CE(S^T, diag)) / 2 with CE the mean cross-entropy. Returns the loss; dimg, dtxt (B,E)
     * (either may be NULL) receive scale * its gradient. */
    double (*contrastive_loss)(float *dimg, float *dtxt, const float *img, const float *txt,
                               int64_t B, int64_t E, float scale);
    /* Since ABI 2.2. Row-wise L2 normalisation times a scale, as F.normalize(x) * scale:
     * out (N,C) = scale * inp / max(||inp row||, 1e-12), saving rnorm (N) = 1 / that norm.
     * Backward writes dinp (N,C) (may alias dout) and accumulates into *dscale (may be NULL)
     * the gradient of the scale, sum(dout * inp * rnorm). */
    void (*l2norm_forward)(float *out, float *rnorm, const float *inp, int64_t N, int64_t C,
                           float scale);
    void (*l2norm_backward)(float *dinp, float *dscale, const float *dout, const float *inp,
                            const float *rnorm, int64_t N, int64_t C, float scale);
} mpsl_kernels;

/* ---------------------------------------------------------------- modules */

/* Parameter initialisation the host applies when it allocates a module's buffer. */
typedef enum mpsl_init {
    MPSL_INIT_ZEROS = 0,
    MPSL_INIT_ONES,
    MPSL_INIT_NORMAL,   /* N(0, scale^2) */
    MPSL_INIT_UNIFORM,  /* U(-scale, scale) */
    MPSL_INIT_CONSTANT  /* every entry = scale (since ABI 2.2; e.g. a logit scale) */
} mpsl_init;

/* Given to a module's create(): what it receives and how it declares its parameters. Valid
 * only during create(): copy what you need (e.g. the layout) into your state. */
typedef struct mpsl_module_init {
    uint32_t size;
    const void *params;        /* the struct the host filled from the plugin's YAML keys */
    /* Input description: tokenizers get the modality's per-sample shape (e.g. {1,28,28});
     * encoders and heads get {T, D} of the tokens they will see. */
    int in_ndim;
    int64_t in_shape[MPSL_MAX_DIMS - 1];
    mpsl_dtype in_dtype;
    int64_t n_classes;         /* heads: number of classes of the dataset; else 0 */
    const mpsl_token_layout *layout; /* encoders and heads: token layout; else NULL */
    /* Declare one parameter tensor. Returns its offset (in floats) inside the module's flat
     * buffer, or -1 with err set. `name` follows timm's naming where one exists
     * ("blocks.0.attn.qkv.weight"). Frozen tensors (trainable = 0) get no optimizer updates,
     * are not averaged or sent by federated strategies and need no gradient. */
    int64_t (*declare)(void *ctx, const char *name, int ndim, const int64_t *shape,
                       mpsl_init init, float scale, int trainable, mpsl_error *err);
    void *ctx;                 /* pass back to declare() */
    const char *where;         /* "file:line:column" of the plugin's YAML mapping, for errors */
} mpsl_module_init;

/* The parameter and gradient buffers of one module instance, laid out as declared. */
typedef struct mpsl_weights {
    const float *param;
    float *grad;               /* backward accumulates here (+=); host zeroes it */
    int64_t n;
    /* (n) 1 where a float is trained, 0 where frozen (by the plugin's own declaration or by
     * the experiment's optimizer groups); NULL means all trained. A module should skip the
     * weight gradients of a tensor whose entries are all frozen. Since ABI 1.1. */
    const uint8_t *trainable;
} mpsl_weights;

/* Tokenizer, encoder and head.
 * - create(): validate cross-field settings (use init->where in messages), declare
 *   parameters, allocate the state. The state owns the activations it saves for backward;
 *   one state serves one forward/backward at a time (the host creates one per party).
 * - output_shape(): the per-sample output shape for the given per-sample input shape and
 *   layout: tokenizers {T, D}, encoders {T, D}, heads {C} (or {E}, or {1+K, E} for retrieval). For
 *   tokenizers, *cls receives 1 if its first output token is a CLS token.
 * - forward(): out must be allocated by the caller with the output shape; inp's batch may be
 *   anything up to what memory allows. The state remembers what backward needs.
 * - backward(): given dout (same shape as out), accumulate weight gradients into w->grad and
 *   write din (same shape as inp; NULL when the input needs no gradient, e.g. raw pixels).
 */
typedef struct mpsl_module_api {
    uint32_t size;
    int (*create)(const mpsl_host *h, const mpsl_module_init *init, void **state,
                  mpsl_error *err);
    void (*destroy)(void *state);
    int (*output_shape)(void *state, int *ndim, int64_t *shape, int *cls);
    int (*forward)(void *state, const mpsl_weights *w, const mpsl_tensor *inp,
                   mpsl_tensor *out, mpsl_error *err);
    int (*backward)(void *state, const mpsl_weights *w, const mpsl_tensor *dout,
                    mpsl_tensor *din, mpsl_error *err);
} mpsl_module_api;

/* ---------------------------------------------------------------- datasets */

typedef enum mpsl_split { MPSL_SPLIT_TRAIN = 0, MPSL_SPLIT_TEST = 1 } mpsl_split;

typedef struct mpsl_modality_info {
    char name[32];                 /* "image", "audio", "text" */
    mpsl_dtype dtype;
    int ndim;                      /* per-sample dims */
    int64_t shape[MPSL_MAX_DIMS - 1];
} mpsl_modality_info;

/* What a dataset is for; decides the loss and the evaluation (see mpsl_host.loss). */
typedef enum mpsl_task {
    MPSL_TASK_CLASSIFICATION = 0, /* labels are classes; softmax cross-entropy, accuracy */
    MPSL_TASK_RETRIEVAL = 1,      /* image-text pairs; labels are item indices (unused by
                                     training); contrastive loss, Recall@1/5/10 */
    MPSL_TASK_COUNT
} mpsl_task;

static inline const char *mpsl_task_name(int task)
{
    static const char *const names[MPSL_TASK_COUNT] = {"classification", "retrieval"};
    return task >= 0 && task < MPSL_TASK_COUNT ? names[task] : "unknown";
}

typedef struct mpsl_dataset_info {
    int n_modalities;
    mpsl_modality_info modality[MPSL_MAX_MODALITIES];
    int64_t n_classes;
    int64_t n_train, n_test;
    /* Since ABI 1.2: mpsl_task. The host zeroes the info before open(), so a dataset that
     * does not set it is a classification dataset. A retrieval dataset has modalities
     * "image" and "text" (K captions per item), labels = item index, and n_classes >= 1
     * (any value that keeps every label valid, e.g. max(n_train, n_test)). */
    int32_t task;
    /* Since ABI 2.1: n_classes names owned by the dataset (valid until close), or NULL (the
     * host then says 'class 0'..). Retrieval datasets leave it NULL. The host refuses a name
     * that is NULL, empty, longer than 64 bytes or holds a control character. A plugin built
     * against 2.0 does not know the field and leaves it as the host zeroed it: NULL. */
    const char *const *class_names;
} mpsl_dataset_info;

/* A batch the host allocates from the dataset info: one tensor per modality, labels (B). */
typedef struct mpsl_batch {
    int64_t n;                                   /* samples in this batch */
    mpsl_tensor modality[MPSL_MAX_MODALITIES];
    int32_t *labels;
} mpsl_batch;

/* - open(): read the prepared files named in params, fill info. Refuse missing, truncated or
 *   mismatched files with a message naming the file and what was expected.
 * - labels(): all labels of a split (n_train or n_test of them), owned by the dataset;
 *   the host partitions clients with them.
 * - fill(): copy samples idx[0..n) of a split into batch (already allocated for >= n). */
typedef struct mpsl_dataset_api {
    uint32_t size;
    int (*open)(const mpsl_host *h, const void *params, const char *where,
                mpsl_dataset_info *info, void **state, mpsl_error *err);
    void (*close)(void *state);
    const int32_t *(*labels)(void *state, mpsl_split split);
    int (*fill)(void *state, mpsl_split split, const int64_t *idx, int64_t n,
                mpsl_batch *batch, mpsl_error *err);
    /* Optional (NULL when the data needs no preparation; since ABI 1.1): turn raw inputs
     * into the prepared files open() reads, once. Must be idempotent (a verified prepared
     * file is kept) and write atomically (temporary name, then rename). `mpsl prepare`
     * calls it; open() may call it itself when the prepared file is missing. */
    int (*prepare)(const mpsl_host *h, const void *params, const char *where, mpsl_error *err);
} mpsl_dataset_api;

/* ---------------------------------------------------------------- host services */

typedef enum mpsl_log_level { MPSL_LOG_DEBUG = 0, MPSL_LOG_INFO, MPSL_LOG_WARN } mpsl_log_level;

/* ---------------------------------------------------------------- shared helpers (since 2.0) */

/* Code that dataset and module plugins used to copy privately, implemented once in the host
 * and reached through mpsl_host: h->rng, h->half, h->mel, h->idx, h->prepared, h->files.
 * Each group is a table of its own that starts with `size` and only grows at the end (check
 * `size` before using a function added after 2.0). Every function may be called from several
 * threads at once, on different objects. Messages name the file or value concerned; they do
 * not name your plugin (the host adds that on the way up). */

/* --- h->rng: seeded random streams. xoshiro256** seeded through SplitMix64: the same seed
 * gives the same numbers on every machine and build. A stream is a plain struct the caller
 * owns (on the stack is fine); one stream must not be used by two threads at once. */
typedef struct mpsl_rng {
    uint64_t s[4];
    double spare;          /* the second Box-Muller value of normal() */
    float spare_f32;       /* ... and of normal_f32() */
    int has_spare, has_spare_f32;
} mpsl_rng;

typedef struct mpsl_rng_api {
    uint32_t size;
    void (*seed)(mpsl_rng *r, uint64_t seed);
    /* The stream of one sample of a dataset: every random choice about sample `index` of split
     * `split` (0..255, an mpsl_split) comes from (seed, split, index, stream), so a sample
     * comes out the same whichever other samples are generated (limits), by whichever thread,
     * in whatever order. `stream` (0..255) separates independent uses of one sample, e.g. its
     * audio, its image noise and its text. */
    void (*seed_sample)(mpsl_rng *r, uint64_t seed, int split, int64_t index, int stream);
    uint64_t (*next)(mpsl_rng *r);              /* 64 random bits */
    double (*uniform)(mpsl_rng *r);             /* [0, 1), 53 random bits */
    int64_t (*below)(mpsl_rng *r, int64_t n);   /* [0, n) by modulo (bias < n / 2^64); 0 if n <= 1 */
    double (*normal)(mpsl_rng *r);              /* N(0, 1): Box-Muller in double */
    /* N(0, 1) in float: Box-Muller on 24-bit uniforms in float arithmetic; cheaper, for noise
     * where float resolution is enough. A stream keeps separate spares for the two. */
    float (*normal_f32)(mpsl_rng *r);
    void (*shuffle)(mpsl_rng *r, int64_t *a, int64_t n);  /* uniform permutation of a (n) */
    /* Counter-based randomness without a stream: a well-mixed 64-bit value of a 64-bit key
     * (SplitMix64's output function; a bijection). The same key always gives the same value,
     * e.g. one pixel's noise from a key made of (seed, sample, position). */
    uint64_t (*mix64)(uint64_t key);
} mpsl_rng_api;

/* --- h->half: IEEE binary16 (f16) and bfloat16 (bf16), stored as uint16_t bits. Widening is
 * exact; narrowing rounds to nearest, ties to even, overflows to infinity and keeps NaN a NaN. */
typedef struct mpsl_half_api {
    uint32_t size;
    float (*f16_to_f32)(uint16_t h);
    uint16_t (*f32_to_f16)(float x);
    float (*bf16_to_f32)(uint16_t b);
    uint16_t (*f32_to_bf16)(float x);
    /* Whole arrays: dst (n) from src (n), without a call per element. */
    void (*f16_to_f32_n)(float *dst, const uint16_t *src, int64_t n);
    void (*bf16_to_f32_n)(float *dst, const uint16_t *src, int64_t n);
} mpsl_half_api;

/* --- h->mel: log-mel spectrograms, the front end of the audio datasets (av_fashion_mnist,
 * `mpsl convert meld|ucf101|kinetics_sounds`) and of AST's Kaldi fbank: 16 kHz mono; frame t
 * covers samples [t*hop, t*hop + win) (no centre padding) times a periodic Hann window,
 * zero-padded to n_fft points; power spectrum; M triangular filters of peak 1 on the Slaney
 * mel scale (librosa's default: linear below 1 kHz, logarithmic above) between 20 Hz and
 * 8 kHz; then log(mel + 1e-6). Output (M, F) row-major: the (1, M, F) audio tensor of one
 * sample without its channel. FFTW single precision, planned with FFTW_ESTIMATE, so the same
 * input gives the same bits from run to run. */
#define MPSL_MEL_RATE 16000   /* Hz */
#define MPSL_MEL_WIN 400      /* 25 ms */
#define MPSL_MEL_HOP 160      /* 10 ms */
#define MPSL_MEL_NFFT 512
#define MPSL_MEL_FMIN 20.0    /* Hz */
#define MPSL_MEL_FMAX 8000.0
#define MPSL_MEL_LOG_EPS 1e-6f

typedef struct mpsl_mel mpsl_mel;   /* a filter bank and an FFT plan; read-only once made */

typedef struct mpsl_mel_api {
    uint32_t size;
    /* A bank of mel_bins (1..256) filters; refuses a count for which a filter would cover no
     * FFT bin (above about 128). */
    int (*create)(int mel_bins, mpsl_mel **mel, mpsl_error *err);
    void (*destroy)(mpsl_mel *mel);            /* NULL is fine */
    int (*bins)(const mpsl_mel *mel);
    /* Samples that `frames` frames cover: (frames - 1) * hop + win. */
    int64_t (*window)(int frames);
    /* out (M, frames) from wave (at least window(frames) samples). Any number of threads may
     * compute with one bank at once. MPSL_ERR_INVALID for frames < 1. */
    int (*compute)(const mpsl_mel *mel, const float *wave, int frames, float *out);
    /* A clip of n samples (any length) centred in window(frames) samples: a longer clip is
     * cropped equally at both ends, a shorter one padded with silence equally on both sides
     * (silent frames hold log(1e-6)). MPSL_ERR_NOMEM or _INVALID. */
    int (*compute_fixed)(const mpsl_mel *mel, const float *wave, int64_t n, int frames,
                         float *out);
    /* The filters (M, n_bins) row-major, n_bins = n_fft/2 + 1; a filter's centre frequency;
     * the Slaney mel of a frequency: for tests and plots. */
    const float *(*filters)(const mpsl_mel *mel, int *n_bins);
    double (*center_hz)(const mpsl_mel *mel, int b);
    double (*hz_to_mel)(double hz);
} mpsl_mel_api;

/* --- h->idx: IDX files (the format of MNIST, Fashion-MNIST, KMNIST, EMNIST): a big-endian
 * magic 0x0000 08 NDIM for unsigned bytes, NDIM big-endian 32-bit dimensions, then the bytes,
 * item after item. Gzip-compressed or plain, told apart by the first bytes. */
#define MPSL_IDX_MAX_DIMS 4

typedef struct mpsl_idx_file mpsl_idx_file;

typedef struct mpsl_idx_api {
    uint32_t size;
    /* Open an IDX file of unsigned bytes in ndim (1..4) dimensions and read its header into
     * dims (ndim); dims[0] is the number of items. Refused, naming the file: missing or
     * unreadable (MPSL_ERR_IO, with errno's reason), not IDX, another magic (shown in decimal
     * with the expected one: images are 2051, labels 2049), a header cut short. */
    int (*open)(const char *path, int ndim, int64_t *dims, mpsl_idx_file **f, mpsl_error *err);
    /* The next n items (n * dims[1] * ... * dims[ndim-1] bytes) into dst. A file cut short is
     * refused with the bytes expected and found; a read that reaches the last item the header
     * announces also checks the end of the file (nothing after it; a gzip file's CRC). */
    int (*read)(mpsl_idx_file *f, int64_t n, uint8_t *dst, mpsl_error *err);
    void (*close)(mpsl_idx_file *f);           /* NULL is fine */
} mpsl_idx_api;

/* --- h->prepared: prepared dataset files, the output of `mpsl convert` (docs/convert.md):
 * images, audio and text of both splits in one file, read through a read-only mapping (a file
 * larger than memory works; the page cache keeps what is used). */
typedef struct mpsl_prepared mpsl_prepared;

typedef struct mpsl_prepared_info {
    int32_t task;                  /* mpsl_task */
    int64_t n_classes;             /* classification: the classes; retrieval: 0 */
    int64_t n[2];                  /* samples per split, by mpsl_split */
    int n_modalities;
    /* name, per-sample shape and the dtype read() hands out: MPSL_F32 (u8, f16 and f32
     * storage, as stored * scale + offset) or MPSL_I32 (token ids or UTF-8 bytes) */
    mpsl_modality_info modality[MPSL_MAX_MODALITIES];
    char source[128];              /* what wrote it, e.g. "flickr30k (convert 1.0)" */
} mpsl_prepared_info;

typedef struct mpsl_prepared_api {
    uint32_t size;
    /* Open PATH and check everything before handing anything out: the magic, the version,
     * the modality table, that the file is exactly as long as its header says, every label
     * (classification: in [0, n_classes); retrieval: the sample's index in its split) and, with
     * verify != 0, the payload's CRC32 (which reads the whole file once). Each refusal names
     * the file and what was expected. */
    int (*open)(const char *path, int verify, mpsl_prepared **f, mpsl_prepared_info *info,
                mpsl_error *err);
    void (*close)(mpsl_prepared *f);           /* NULL is fine */
    /* All labels of a split (info->n[split]), owned by f. */
    const int32_t *(*labels)(const mpsl_prepared *f, mpsl_split split);
    /* Samples idx[0..n) of modality m of a split into dst (n x the per-sample element count),
     * float32 or int32 as the info says. An index out of range is refused before dst is
     * touched. */
    int (*read)(const mpsl_prepared *f, mpsl_split split, int m, const int64_t *idx, int64_t n,
                void *dst, mpsl_error *err);
} mpsl_prepared_api;

/* --- h->files: small file chores. */
typedef struct mpsl_files_api {
    uint32_t size;
    /* mkdir -p: create path and its missing parents (mode 0755); refuses, naming the folder,
     * when one cannot be created or path exists but is not a folder. */
    int (*mkdir_p)(const char *path, mpsl_error *err);
    /* CRC-32 as zlib computes it: continue from crc (0 to start) over n bytes. */
    uint32_t (*crc32)(uint32_t crc, const void *data, size_t n);
    /* 64-bit FNV-1a of n bytes: a short stable name for a set of settings, e.g. a cache
     * file's (not a checksum against tampering). */
    uint64_t (*fnv1a64)(const void *data, size_t n);
} mpsl_files_api;

/* What every plugin receives: errors, logging, memory, kernels, and the helpers plugins would
 * otherwise copy privately. Strategies also receive the session API (mpsl_session_api, below),
 * versioned on its own; no other kind can reach a run's models, data or messages. */
struct mpsl_host {
    uint32_t size;
    uint32_t abi_major, abi_minor;

    /* --- errors, logging, memory */
    void (*error_set)(mpsl_error *err, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
    void (*log)(mpsl_log_level level, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
    void *(*alloc)(size_t bytes);           /* 64-byte aligned, zeroed; NULL on failure */
    void (*free)(void *p);

    const mpsl_kernels *kernels;

    /* --- shared helpers (since 2.0) */
    const mpsl_rng_api *rng;
    const mpsl_half_api *half;
    const mpsl_mel_api *mel;
    const mpsl_idx_api *idx;
    const mpsl_prepared_api *prepared;
    const mpsl_files_api *files;
};

/* ---------------------------------------------------------------- strategies */

/* A strategy (kind "aggregation") is a training protocol written as two ROLES: a server role
 * and a client role, plain sequential functions that exchange tensors only through send and
 * recv of the session API. Each role sees only its own party: the models, optimizers, batches
 * and memory it creates belong to it, a client draws only its own partition, and a message
 * carries the sender's identity implicitly. A driver runs the roles:
 * - in one process (transport local, the default) it runs the server role and the K client
 *   roles as coroutines on one thread, switching only when a role waits for a message that
 *   has not arrived, in a fixed order (server, then clients 0..K-1; the server first when
 *   a message it waits for arrives): a run is deterministic;
 * - under MPI (mpirun) rank 0 runs the server role and writes the results database, and the
 *   K client roles are spread evenly over ranks 1..R-1 (several per rank run as coroutines).
 * The same strategy code runs unchanged under both, and gives the same numbers.
 *
 * Rhythm: every role calls epoch_end() once per epoch (or round), in order. A client's
 * epoch_end() reports what it recorded and counted in that epoch; the server's waits for every
 * client's report, evaluates the model it passes when due, and stores the epoch. */

/* 2: send/recv carry MPSL_F64 tensors (8 bytes an element). 3: the server's diagnostics,
 * evaluate and record_client. 4: participants() and work_seconds() (client dropout,
 * min_clients, deadlines), and the U-shaped split (model_features, model_head and their
 * backward passes, model_feature_width; message kinds MPSL_MSG_FEATURES and
 * MPSL_MSG_FEATURE_GRADS). 5: model_release_grads and model_release_activations. A strategy
 * built for an older version runs unchanged; one built for a newer one is refused. */
#define MPSL_SESSION_API_VERSION 5

typedef struct mpsl_role mpsl_role;    /* one party of a run: the server or one client */
typedef struct mpsl_model mpsl_model;
typedef struct mpsl_optim mpsl_optim;

/* Which parts of the model a mpsl_model holds. */
enum {
    MPSL_PART_TOKENIZERS = 1,
    MPSL_PART_ENCODER = 2,
    MPSL_PART_HEAD = 4,
    MPSL_PART_ALL = 7
};

/* Message kinds counted by the message layer. */
typedef enum mpsl_msg_kind {
    MPSL_MSG_ACTIVATIONS = 0, /* client tokens up to the server */
    MPSL_MSG_LOGITS,          /* server logits down to a client */
    MPSL_MSG_LOGIT_GRADS,     /* client loss gradient w.r.t. its logits, up */
    MPSL_MSG_CUT_GRADS,       /* cut-layer gradients down to a client */
    MPSL_MSG_PARAMETERS,      /* model parameters, either way (federated learning) */
    MPSL_MSG_SCALARS,         /* losses, sample counts and other small values (F64 for a
                                 loss, so the server's figures equal the client's) */
    MPSL_MSG_FEATURES,        /* encoder outputs down to a client that holds the head
                                 (U-shaped split; since session API 4) */
    MPSL_MSG_FEATURE_GRADS,   /* that client's loss gradient w.r.t. its features, up */
    MPSL_MSG_KIND_COUNT
} mpsl_msg_kind;

/* Endpoint ids for the message layer: the server is MPSL_SERVER, client k is k (0-based). */
#define MPSL_SERVER (-1)

/* The training settings every strategy obeys (from the experiment's `train:` section). */
typedef struct mpsl_train_settings {
    int64_t epochs;           /* epochs (MPSL, centralized) or rounds (federated) */
    int64_t batch_size;       /* total batch over all clients per step */
    int64_t eval_every;       /* evaluate every N epochs (and always after the last) */
    uint64_t seed;
} mpsl_train_settings;

/* Clients that are not there (since session API 4): a strategy's dropout settings, which
 * participants() turns into who takes part in a slot (a round, a step). */
typedef struct mpsl_participation {
    double dropout;         /* share of slots a client misses (0: never) */
    double dropout_burst;   /* mean length of a run of missed slots; 0: each slot independent */
    int64_t min_clients;    /* fewer clients there: the slot is skipped (0 or 1: never) */
    double deadline;        /* simulated seconds a client's slot may take (0: no deadline);
                               needs the experiment's network model */
} mpsl_participation;

/* What a slot asks of one client, for the deadline: its steps and samples of a kind of work,
 * the bytes it moves each way and its messages. */
enum {
    MPSL_WORK_LOCAL = 0,        /* steps of the whole model (FedAvg): forward, loss, backward */
    MPSL_WORK_SPLIT_CLIENT = 1  /* an MPSL client's steps: tokenize, [loss], [backward] */
};
typedef struct mpsl_slot_work {
    int kind;                   /* MPSL_WORK_* */
    int loss, backward;         /* MPSL_WORK_SPLIT_CLIENT: the client computes the loss,
                                   backpropagates its tokenizers */
    int64_t steps, samples;
    int64_t up_bytes, down_bytes, messages;
} mpsl_slot_work;

/* What participants() says of each client for one slot. */
enum {
    MPSL_SLOT_NOT_WANTED = 0,     /* the strategy did not ask it (not sampled, pass over) */
    MPSL_SLOT_TAKES_PART = 1,
    MPSL_SLOT_MISSED_DROPOUT = 2, /* it dropped out */
    MPSL_SLOT_MISSED_TOO_FEW = 3, /* it was there, but fewer than min_clients were */
    MPSL_SLOT_MISSED_DEADLINE = 4 /* its work would take longer than the deadline */
};

/* The session API: every function takes the calling role (or an object it created). */
typedef struct mpsl_session_api {
    uint32_t size;
    uint32_t version;                      /* MPSL_SESSION_API_VERSION of the host */

    /* --- who and what */
    int (*client_id)(mpsl_role *r);        /* MPSL_SERVER, or the client's index 0..K-1 */
    int (*n_clients)(mpsl_role *r);
    const mpsl_train_settings *(*settings)(mpsl_role *r);
    const mpsl_dataset_info *(*dataset_info)(mpsl_role *r);
    int64_t (*client_samples)(mpsl_role *r, int client);  /* client's partition size */
    /* Floats per sample of the model's output (the product of the head's output shape), the
     * same for every role: what a client receives per sample when the server holds the head. */
    int64_t (*output_size)(mpsl_role *r);
    /* Uniform numbers in [0,1). random(): the role's own stream, seeded from the run seed and
     * the party. shared_random(): one stream every role sees identically (seeded from the run
     * seed alone), so roles that draw from it in the same order agree without a message, e.g.
     * on which clients a round samples. */
    double (*random)(mpsl_role *r);
    double (*shared_random)(mpsl_role *r);

    /* --- memory the role owns (64-byte aligned, zeroed); released when the role ends,
     * however it ends, so a role that fails half-way leaks nothing. */
    void *(*alloc)(mpsl_role *r, size_t bytes);
    void (*free)(mpsl_role *r, void *p);

    /* --- data. batch_create allocates for up to max_n samples. next_batch draws the next up
     * to n samples of the role's data: a client's own partition; for the server the union of
     * all clients' data (centralized training: a strategy with client roles is refused, so
     * its server never holds the clients' labels). Each pass is reshuffled from the run seed.
     * Returns the number drawn, 0 when a pass is complete (the next call starts a new pass),
     * or a negative status. */
    mpsl_batch *(*batch_create)(mpsl_role *r, int64_t max_n, mpsl_error *err);
    void (*batch_destroy)(mpsl_role *r, mpsl_batch *b);
    int64_t (*next_batch)(mpsl_role *r, mpsl_batch *b, int64_t n, mpsl_error *err);

    /* --- models. A model holds the chosen parts for the role that creates it: one flat
     * parameter buffer (gradients and optimizer state have the same layout) and its own
     * activations. The kernels it runs are counted as that party's FLOPs. */
    int (*model_create)(mpsl_role *r, int parts, mpsl_model **m, mpsl_error *err);
    void (*model_destroy)(mpsl_model *m);
    /* The whole flat buffer (n floats), or the view of one part (MPSL_PART_TOKENIZERS,
     * _ENCODER or _HEAD; NULL with n = 0 when the model does not hold it). Parts are laid
     * out tokenizers, encoder, head; the same part has the same layout in every model. */
    float *(*model_params)(mpsl_model *m, int64_t *n);
    float *(*model_part)(mpsl_model *m, int part, int64_t *n);
    float *(*model_grads)(mpsl_model *m, int64_t *n);
    /* (n) 1 where a float is trained, 0 where frozen; and how many are trained. */
    const uint8_t *(*model_trainable)(mpsl_model *m);
    int64_t (*model_trainable_count)(mpsl_model *m);
    void (*model_zero_grad)(mpsl_model *m);
    int (*model_token_shape)(mpsl_model *m, int64_t *T, int64_t *D);
    /* Floats per sample of model_encode's output (the product of the head's output shape);
     * 0 for a model without a head. */
    int64_t (*model_output_size)(mpsl_model *m);
    /* Tokens for a batch (tokenizer parts): tokens (n,T,D) owned by the model, valid until
     * the next call. */
    int (*model_tokenize)(mpsl_model *m, const mpsl_batch *b, mpsl_tensor *tokens,
                          mpsl_error *err);
    /* Backward of model_tokenize given dtokens (n,T,D). */
    int (*model_tokenize_backward)(mpsl_model *m, const mpsl_tensor *dtokens, mpsl_error *err);
    /* Encoder + head on tokens (n,T,D) -> outputs (n,C) owned by the model (a head with a
     * multi-dimensional output, retrieval's (1+K,E), is flattened to C floats). */
    int (*model_encode)(mpsl_model *m, const mpsl_tensor *tokens, mpsl_tensor *logits,
                        mpsl_error *err);
    /* Backward of model_encode: dlogits (n,C) -> dtokens (n,T,D) owned by the model. */
    int (*model_encode_backward)(mpsl_model *m, const mpsl_tensor *dlogits,
                                 mpsl_tensor *dtokens, mpsl_error *err);
    /* Copy parameters between two models of one role holding the same parts. */
    int (*model_copy)(mpsl_model *dst, const mpsl_model *src, mpsl_error *err);

    /* --- optimizers as configured in train.optimizer (with its parameter groups); the
     * moments have the model's flat layout and belong to the optimizer. optim_step takes one
     * step over the trainable parameters at the learning rate the schedule gives for the
     * 0-based epoch. */
    int (*optim_create)(mpsl_role *r, mpsl_model *m, mpsl_optim **o, mpsl_error *err);
    void (*optim_destroy)(mpsl_optim *o);
    int (*optim_step)(mpsl_optim *o, int64_t epoch, mpsl_error *err);

    /* --- the task's training loss on n outputs (as model_encode returns them), counted as
     * the role's FLOPs. dout (n,C) (may be NULL) receives d(loss)/d(out); *correct (may be
     * NULL) the batch's hits. Classification: mean softmax cross-entropy, hits = argmax
     * hits. Retrieval (out (n,1+K,E)): the sum over the K caption indices of the symmetric
     * contrastive loss within the batch (labels are not read); hits = images whose own first
     * caption scores highest among the batch's first captions. A loss that is not finite is
     * an error naming the role. */
    int (*loss)(mpsl_role *r, const float *out, const int32_t *labels, int64_t n, float *dout,
                double *loss, int64_t *correct, mpsl_error *err);

    /* --- messages: the only way tensors move between parties. One end is always the
     * server. send copies the payload (float32, int32, or float64 since session API 2) and
     * counts its exact bytes (elements x 4, or x 8 for float64) for the client end of the
     * link, per direction and kind. recv waits for the oldest message of that kind from
     * `from` (the driver runs other roles meanwhile, or waits on the network); t's dtype must
     * be the message's, and on entry t's shape gives its buffer's capacity (a larger message is refused), on return
     * the message's shape. A message no role can still send is an error, never a hang. */
    int (*send)(mpsl_role *r, int to, mpsl_msg_kind kind, const mpsl_tensor *t,
                mpsl_error *err);
    int (*recv)(mpsl_role *r, int from, mpsl_msg_kind kind, mpsl_tensor *t, mpsl_error *err);

    /* --- metrics and the rhythm of a run. record() stores a figure for the role's current
     * epoch: per client for a client role (train_loss, train_acc and samples are the
     * conventional ones), run-wide for the server. epoch_end(): see above; clients pass
     * eval_model NULL. The server passes the epoch's train_loss and train_acc, or a negative
     * value for either to have it computed from the clients' records (their train_loss /
     * train_acc weighted by their samples). */
    int (*record)(mpsl_role *r, const char *name, double value, mpsl_error *err);
    int (*epoch_end)(mpsl_role *r, int64_t epoch, mpsl_model *eval_model, double train_loss,
                     double train_acc, mpsl_error *err);
    /* Non-zero once SIGINT/SIGTERM arrived: return MPSL_ERR_INTERRUPTED soon. */
    int (*should_stop)(mpsl_role *r);
    /* Progress inside an epoch: `done` of `total` steps (shown for the server role, at most
     * once a second on a terminal); cheap enough to call every step. */
    void (*progress)(mpsl_role *r, int64_t epoch, int64_t done, int64_t total);

    /* --- checkpoints and resuming (train.checkpoint, `mpsl resume`). A role runs its epochs
     * from first_epoch(): 0, or the epoch the checkpoint a resumed run continues from was
     * written in (the next one, for a checkpoint at the end of an epoch).
     * What a role holds at the end of an epoch is saved with each checkpoint: its models and
     * optimizers, its random streams and data cursor; when the run resumes, the models and
     * optimizers it creates again are restored in the order they were created. Anything else
     * that must outlive an epoch (counters, a strategy's own buffers) is declared with keep():
     * `bytes` at `data`, saved under `name` (unique within the role) with every checkpoint,
     * and restored into `data` at once when the run resumes. */
    int64_t (*first_epoch)(mpsl_role *r);
    int (*keep)(mpsl_role *r, const char *name, void *data, size_t bytes, mpsl_error *err);
    /* Checkpoints inside an epoch (train.checkpoint.every_steps), for strategies whose epochs
     * are steps that every role takes together (MPSL; centralized training): every role
     * calls step_end() after each step (1-based: steps done in the epoch); when one is due
     * each role's state is saved there, the counters of the epoch so far included. A resumed
     * role starts its first epoch at step first_step() (0 unless the checkpoint was written
     * inside an epoch) and keeps what it accumulates over an epoch (its loss sums) with
     * keep(), resetting it only when an epoch starts at step 0. A strategy whose roles do
     * not call step_end() gets checkpoints at epoch ends only. */
    int (*step_end)(mpsl_role *r, int64_t epoch, int64_t step, mpsl_error *err);
    int64_t (*first_step)(mpsl_role *r);

    /* --- diagnostics (since session API 3), for the server role only: measurements the host
     * makes beside the protocol, for instance of how far clients' models have drifted apart.
     * They send nothing, count no FLOPs and no bytes, draw from no random stream, and their
     * time is kept out of the epoch's training time (the epoch's diagnostics_seconds).
     * evaluate(): model m (all parts) on the test split (client MPSL_SERVER; limit 0: all of
     * it, else its first `limit` samples) or on `limit` samples of client's training partition
     * (0: all of it), spread evenly over the partition, the same ones every epoch: *acc and
     * *loss (may be NULL) as the test figures are computed. The server reads client data
     * here that the protocol never shows it: use it to measure, never to train.
     * record_client(): store a figure of client `client` for the current epoch
     * (client_metrics), as that client's own record() would. */
    int (*evaluate)(mpsl_role *r, mpsl_model *m, int client, int64_t limit, double *acc,
                    double *loss, mpsl_error *err);
    int (*record_client)(mpsl_role *r, int client, const char *name, double value,
                         mpsl_error *err);

    /* --- participation (since session API 4): who of the clients the strategy wants in
     * `slot` is there. A slot is a federated round, or an MPSL step numbered from the run's
     * start (epoch x steps per epoch + step). want[k] non-zero: the strategy would have
     * client k take part; status[k] (n_clients) receives MPSL_SLOT_*. With p->deadline,
     * work[k] says what the slot asks of client k (work may be NULL otherwise), and a client
     * whose simulated time for it (work_seconds) exceeds the deadline misses the slot.
     * Returns how many take part, or a negative status. A pure function of (run seed,
     * client, slot), p and work: every role on every rank gets the same answer without a
     * message, and asking draws from no random stream (docs/config.md: the dropout model).
     * work_seconds(): the simulated seconds of `w` for client `client` under the
     * experiment's network model (its FLOPs measured once per kind of step, affine in the
     * samples; its bytes over the client's link); negative with err set when the experiment
     * has no network model. */
    int (*participants)(mpsl_role *r, const mpsl_participation *p, int64_t slot,
                        const uint8_t *want, const mpsl_slot_work *work, uint8_t *status,
                        mpsl_error *err);
    double (*work_seconds)(mpsl_role *r, int client, const mpsl_slot_work *w, mpsl_error *err);
    /* --- the U-shaped split (since session API 4): the server runs the encoder alone, a
     * client the head alone. model_features(): encoder of a model holding MPSL_PART_ENCODER
     * on tokens (n,T,D) -> features (n,T,Dh) owned by the model, valid until the next call;
     * model_features_backward(): dfeatures (n,T,Dh) -> dtokens (n,T,D). model_head(): the
     * head of a model holding MPSL_PART_HEAD without the encoder on features (n,T,Dh) ->
     * outputs (n,C) as model_encode gives them; model_head_backward(): doutputs (n,C) ->
     * dfeatures (n,T,Dh) owned by the model. model_feature_width(): Dh, the encoder's output
     * width (the same in every model of a run). Work is counted as the model's party's. */
    int (*model_features)(mpsl_model *m, const mpsl_tensor *tokens, mpsl_tensor *features,
                          mpsl_error *err);
    int (*model_features_backward)(mpsl_model *m, const mpsl_tensor *dfeatures,
                                   mpsl_tensor *dtokens, mpsl_error *err);
    int (*model_head)(mpsl_model *m, const mpsl_tensor *features, mpsl_tensor *outputs,
                      mpsl_error *err);
    int (*model_head_backward)(mpsl_model *m, const mpsl_tensor *doutputs,
                               mpsl_tensor *dfeatures, mpsl_error *err);
    int64_t (*model_feature_width)(mpsl_model *m);
    /* --- since session API 5: free the model's gradient buffer; the next backward (or
     * model_grads()) makes a zeroed one. A role whose gradients live only
     * from a backward to the optimizer step after it (an MPSL client's tokenizers, a FedAvg
     * client's model between rounds) calls it after the step: in one process K clients then
     * hold one client's gradients at a time instead of K. The numbers are the same. */
    void (*model_release_grads)(mpsl_model *m);
    /* Since session API 5: free the activations the model keeps for backward, its own and
     * those its modules saved (each module's state is created again, empty, over the same
     * parameters: a module keeps nothing else in its state); the next forward makes them
     * anew. Outputs the model returned before are invalid after it. A role that holds a
     * model across a wait without a backward pending (a FedAvg client between its rounds)
     * calls it, so that in one process K clients hold one client's activations at a time.
     * The numbers are the same. Fails only when a module cannot be created again. */
    int (*model_release_activations)(mpsl_model *m, mpsl_error *err);
} mpsl_session_api;

/* A role function runs one party from the first epoch to the last and returns MPSL_OK, or
 * MPSL_ERR_INTERRUPTED as soon as should_stop() says so, or another status with err set.
 * It keeps its state in its own variables and role memory; `params` is the strategy's
 * parameter block (read-only, shared by every role). */
typedef int (*mpsl_role_fn)(const mpsl_host *h, const mpsl_session_api *api, mpsl_role *r,
                            const void *params, mpsl_error *err);

typedef struct mpsl_strategy_api {
    uint32_t size;
    uint32_t session_version;    /* MPSL_SESSION_API_VERSION the strategy was built against */
    /* Optional: validate the parameters against the run (client count, batch size) before
     * anything is recorded. Called with the server role; must not keep what it allocates. */
    int (*check)(const mpsl_host *h, const mpsl_session_api *api, mpsl_role *server,
                 const void *params, const char *where, mpsl_error *err);
    mpsl_role_fn server;         /* required */
    mpsl_role_fn client;         /* NULL when clients do nothing (centralized training) */
} mpsl_strategy_api;

/* ---------------------------------------------------------------- the descriptor */

typedef struct mpsl_plugin_desc {
    uint32_t abi_major;            /* MPSL_ABI_MAJOR at build time */
    uint32_t abi_minor;            /* MPSL_ABI_MINOR at build time */
    const char *name;              /* unique within its kind, [a-z0-9_] */
    const char *version;           /* the plugin's own version, "1.2.0" */
    mpsl_plugin_kind kind;
    const char *summary;           /* one line for `mpsl plugins` */
    const mpsl_param_spec *params; /* accepted YAML keys; may be NULL when n_params is 0 */
    size_t n_params;
    size_t params_size;            /* sizeof the struct the specs' offsets point into */
    const void *api;               /* mpsl_dataset_api, mpsl_module_api or
                                      mpsl_strategy_api, by kind */
} mpsl_plugin_desc;

/* The one exported function. Return MPSL_OK and set *desc (a static descriptor), or fail
 * with err set (the host then closes the library). */
typedef int (*mpsl_plugin_entry_fn)(const mpsl_host *host, const mpsl_plugin_desc **desc,
                                    mpsl_error *err);
MPSL_PLUGIN_EXPORT int mpsl_plugin_entry(const mpsl_host *host, const mpsl_plugin_desc **desc,
                                         mpsl_error *err);

/* The descriptor and the entry point in one line, at file scope (as SQLite's
 * SQLITE_EXTENSION_INIT does for extensions):
 *
 *     MPSL_PLUGIN(MPSL_KIND_TOKENIZER, "rows", "1.0.0", "one token per pixel row",
 *                 &row_api, row_params, row_spec);
 *
 * params_type is the struct the specs' offsets point into and spec its mpsl_param_spec array;
 * a plugin without parameters writes MPSL_PLUGIN_NO_PARAMS(kind, name, version, summary, api). */
#define MPSL_PLUGIN(kind_, name_, version_, summary_, api_, params_type, spec)                 \
    MPSL_PLUGIN_DESCRIBE_(kind_, name_, version_, summary_, api_, spec, MPSL_COUNT(spec),       \
                          sizeof(params_type))
#define MPSL_PLUGIN_NO_PARAMS(kind_, name_, version_, summary_, api_)                          \
    MPSL_PLUGIN_DESCRIBE_(kind_, name_, version_, summary_, api_, NULL, 0, 0)
#define MPSL_PLUGIN_DESCRIBE_(kind_, name_, version_, summary_, api_, spec, n_spec, size)       \
    static const mpsl_plugin_desc mpsl_plugin_descriptor_ = {                                  \
        MPSL_ABI_MAJOR, MPSL_ABI_MINOR, name_, version_, kind_, summary_, spec, n_spec, size,  \
        api_};                                                                                 \
    MPSL_PLUGIN_EXPORT int mpsl_plugin_entry(const mpsl_host *host,                            \
                                             const mpsl_plugin_desc **desc, mpsl_error *err)   \
    {                                                                                          \
        (void)host;                                                                            \
        (void)err;                                                                             \
        *desc = &mpsl_plugin_descriptor_;                                                      \
        return MPSL_OK;                                                                        \
    }                                                                                          \
    typedef int mpsl_plugin_semicolon_

#ifdef __cplusplus
}
#endif
#endif
