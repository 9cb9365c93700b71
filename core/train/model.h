/* model.h: a model for one party: instances of the tokenizer, encoder and head plugins the
 * experiment names, one flat buffer of parameters and one of gradients with the layout the
 * plugins declared, and the activations between parts. Early fusion concatenates all
 * modalities' tokens into one sequence; late fusion runs the encoder once per modality. */
#ifndef MPSL_MODEL_H
#define MPSL_MODEL_H

#include "train/optim.h"
#include "train/session.h"

typedef struct param_decl {
    char name[96];
    int64_t offset, count;      /* in floats, from the start of the model's buffer */
    int ndim;
    int64_t shape[MPSL_MAX_DIMS];
    mpsl_init init;
    float scale;
    int trainable;
} param_decl;

typedef struct module_inst {
    const mpsl_module_api *api;
    const plugin_slot *slot;
    void *state;
    int64_t base, count;        /* the module's span of the flat buffer */
    /* per-sample output shape */
    int out_ndim;
    int64_t out_shape[MPSL_MAX_DIMS];
    int cls;
} module_inst;

struct mpsl_model {
    mpsl_session *s;
    mpsl_role *role;            /* the party that created it through the session API, or NULL */
    int seq;                    /* its place among the role's models, in creation order */
    double *flops;              /* that party's FLOP counters: what its kernels are charged to */
    int parts;
    int n_tok;
    module_inst tok[MPSL_MAX_MODALITIES];
    int n_enc;                  /* 1 (early fusion) or n_tok (late: weights shared) */
    module_inst enc[MPSL_MAX_MODALITIES];
    module_inst head;

    param_decl *decls;
    int n_decls, cap_decls;
    float *param, *grad;
    uint8_t *trainable;
    int trainable_shared;       /* trainable is the session's init cache's (init_cache.h) */
    int64_t n, n_trainable;
    optim_span *spans;          /* trainable spans with their group's lr and weight decay */
    int n_spans;

    mpsl_token_layout layout;   /* of the concatenated token sequence */
    int64_t T, D;
    int64_t Dh;                 /* width of the encoder's output, the head's input */
    int64_t C;                  /* floats per sample of the output: product of head.out_shape */
    int64_t tok_T[MPSL_MAX_MODALITIES];

    /* activations, grown to the largest batch seen: tokens and encoder output (B,T,D),
     * per-modality tokenizer outputs (B,T_i,D), logits (B,C), gradients of the same shapes;
     * only those between the parts the model holds (the others stay NULL) */
    int64_t cap;
    int64_t B;                  /* batch of the last forward */
    float *tokens, *dtokens, *hidden, *dhidden, *logits;
    float *tok_out[MPSL_MAX_MODALITIES], *dtok_out[MPSL_MAX_MODALITIES];
    float *seg_in[MPSL_MAX_MODALITIES], *seg_out[MPSL_MAX_MODALITIES]; /* late fusion */
};

/* The most floats a head may output per sample (2^28: a batch of them still fits memory). */
#define MODEL_MAX_OUTPUT ((int64_t)1 << 28)

int model_create(mpsl_session *s, int parts, mpsl_model **out, mpsl_error *err);
/* Build every module once to check shapes and settings, without allocating or loading
 * parameters (the run's early refusal check). */
int model_probe(mpsl_session *s, mpsl_error *err);
void model_destroy(mpsl_model *m);

int model_tokenize(mpsl_model *m, const mpsl_batch *b, mpsl_tensor *tokens, mpsl_error *err);
int model_tokenize_backward(mpsl_model *m, const mpsl_tensor *dtokens, mpsl_error *err);
int model_encode(mpsl_model *m, const mpsl_tensor *tokens, mpsl_tensor *logits,
                 mpsl_error *err);
int model_encode_backward(mpsl_model *m, const mpsl_tensor *dlogits, mpsl_tensor *dtokens,
                          mpsl_error *err);
/* U-shaped split (MPSL with the head on the client): the encoder alone, tokens (B,T,D) ->
 * features (B,T,Dh) owned by the model, and its backward; the head alone (a model with the
 * head and without the encoder), features -> outputs (B,C), and its backward. */
int model_features(mpsl_model *m, const mpsl_tensor *tokens, mpsl_tensor *features,
                   mpsl_error *err);
int model_features_backward(mpsl_model *m, const mpsl_tensor *dfeatures, mpsl_tensor *dtokens,
                            mpsl_error *err);
int model_head(mpsl_model *m, const mpsl_tensor *features, mpsl_tensor *logits, mpsl_error *err);
int model_head_backward(mpsl_model *m, const mpsl_tensor *dlogits, mpsl_tensor *dfeatures,
                        mpsl_error *err);
int model_copy(mpsl_model *dst, const mpsl_model *src, mpsl_error *err);
/* Where one part (MPSL_PART_TOKENIZERS, _ENCODER or _HEAD) lies in the flat buffer;
 * MPSL_ERR_INVALID when the model does not hold it. */
int model_part_span(const mpsl_model *m, int part, int64_t *base, int64_t *count);
/* Allocate the gradient buffer (zeroed) if the model has none yet. */
int model_ensure_grad(mpsl_model *m, mpsl_error *err);
/* Free the activations between the parts and those every module saved for backward (its
 * state is created again, empty, over the same parameters); the next forward makes them
 * anew. Parameters, gradients and the trainable mask are untouched. */
int model_release_activations(mpsl_model *m, mpsl_error *err);

#endif
