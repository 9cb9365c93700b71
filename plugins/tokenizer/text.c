/* text.c: the text tokenizer. Each sample holds raw UTF-8 bytes of one caption or question
 * (int32 (L,), zero-padded: 0 ends the text) or of S of them ((S,L), e.g. the 5 captions of
 * an image in retrieval). The client turns the bytes into token ids (0 FLOPs) and embeds them:
 *
 *   ids      vocab: bytes     id = byte + 3 (0 pad, 1 start, 2 end), V = 259
 *            vocab: clip_bpe  CLIP's BPE (clip_bpe.h) from bpe_path, V = 49408 with CLIP's file;
 *                             its tables are shared by every instance of the process that
 *                             names the same file (clip_bpe_cache.h), scratch is per instance
 *            each sequence is start, ids..., end, cut to max_tokens keeping the end token
 *   embed    token_embedding.weight (V,D) rows (CLIP's name), one token per id
 *   pool     pool_to_one: each sequence becomes ONE token, the mean of its embedded tokens
 *            (start and end included, pads excluded)
 *   output   (B,T,D): [cls_token] then per sequence max_tokens tokens (or 1 pooled), plus
 *            pos_embed (1,T,D) over the output tokens; T = cls + S * (pool_to_one ? 1 :
 *            max_tokens)
 *
 * Pads are MASKED, not embedded: a pad position's token is the zero vector (so its output is
 * just its position embedding) and it sends no gradient to the table. CLIP pads with id 0,
 * which is the token "!" in its vocabulary, and hides pads with its causal mask; this
 * bidirectional encoder has no mask, so an embedded pad would read as "!" (and in the bytes
 * vocabulary id 0 stays a reserved row that never trains).
 *
 * Sizes: B batch, S sequences per sample, L bytes per sequence, Q = max_tokens, D width,
 * V vocabulary, N real (non-pad) tokens in the batch. */
#include <string.h>

#include <mpsl/plugin.h>

#include "clip_bpe_cache.h"
#include "tok_common.h"

enum { TX_VOCAB_BYTES = 0, TX_VOCAB_CLIP_BPE = 1 };

typedef struct {
    int vocab;
    const char *bpe_path;
    int64_t max_tokens;
    int64_t dim;
    int cls;
    int pos_embed;
    int pool_to_one;
} tx_params;

static const mpsl_param_spec tx_spec[] = {
    MPSL_PARAM_ENUM(tx_params, vocab, "vocab", "bytes|clip_bpe", "bytes",
                    "token ids: raw bytes (V = 259) or CLIP's BPE (needs bpe_path)"),
    MPSL_PARAM_STRING(tx_params, bpe_path, "bpe_path", 0, NULL,
                      "CLIP's merges file bpe_simple_vocab_16e6.txt.gz (vocab: clip_bpe)"),
    MPSL_PARAM_INT(tx_params, max_tokens, "max_tokens", 0, 2, 65536, "77",
                   "tokens per sequence with start and end (at least 2; CLIP: 77)"),
    MPSL_PARAM_INT(tx_params, dim, "dim", 0, 1, 65536, "768", "token width D"),
    MPSL_PARAM_BOOL(tx_params, cls, "cls", "true", "prepend a learned CLS token"),
    MPSL_PARAM_BOOL(tx_params, pos_embed, "pos_embed", "true",
                    "add learned position embeddings to the output tokens"),
    MPSL_PARAM_BOOL(tx_params, pool_to_one, "pool_to_one", "false",
                    "one token per sequence: the mean of its non-pad token embeddings"),
};

#define TX_BYTES_V 259
#define TX_PAD 0
#define TX_START 1
#define TX_END 2

typedef struct {
    const mpsl_host *h;
    int vocab;
    const clip_bpe *bpe;      // vocab clip_bpe: shared, read-only (clip_bpe_cache.h)
    clip_bpe_scratch bpe_scratch; // this instance's encoding buffers
    int in_ndim;              // 1: (L), 2: (S,L) per sample
    int64_t S, L, Q, D, V;
    int64_t Tq;               // output tokens per sequence: Q, or 1 with pool_to_one
    int64_t T;                // output tokens per sample
    int cls, pos, pool;
    int64_t off_tab, off_cls, off_pos; // offsets in the flat buffer (-1: absent)
    // grown on demand; saved for backward: ids, lens, rows
    int64_t cap_seq;          // sequences the buffers below hold
    int32_t *ids;             // (B*S, Q) token ids, pads = TX_PAD
    int32_t *lens;            // (B*S) tokens before the pads (>= 2)
    int32_t *rid;             // (N) ids of the real tokens, sequence-major
    uint8_t *text;            // (L) one sequence's bytes
    float *rows;              // (N, D) their embeddings / gradients in backward
    int64_t saved_B, saved_N;
} tx_state;

static void tx_destroy(void *state)
{
    tx_state *s = state;
    if (!s) {
        return;
    }
    clip_bpe_release(s->bpe);
    clip_bpe_scratch_free(&s->bpe_scratch);
    s->h->free(s->ids);
    s->h->free(s->lens);
    s->h->free(s->rid);
    s->h->free(s->text);
    s->h->free(s->rows);
    s->h->free(s);
}

static int tx_create(const mpsl_host *h, const mpsl_module_init *init, void **state,
                     mpsl_error *err)
{
    const tx_params *p = init->params;
    const char *where = init->where ? init->where : "tokenizer";
    if (init->in_dtype != MPSL_I32 || init->in_ndim < 1 || init->in_ndim > 2) {
        h->error_set(err, "%s: text expects int32 UTF-8 bytes per sample, shaped (L,) or "
                     "(S,L) for S sequences, got a %d-dimensional %s input", where,
                     init->in_ndim, init->in_dtype == MPSL_F32 ? "float" : "int");
        return MPSL_ERR_INVALID;
    }
    int64_t S = init->in_ndim == 2 ? init->in_shape[0] : 1;
    int64_t L = init->in_shape[init->in_ndim - 1];
    if (S < 1 || L < 1) {
        h->error_set(err, "%s: text: empty input shape (%lld,%lld)", where, (long long)S,
                     (long long)L);
        return MPSL_ERR_INVALID;
    }
    if (p->vocab == TX_VOCAB_CLIP_BPE && (!p->bpe_path || !*p->bpe_path)) {
        h->error_set(err, "%s: vocab: clip_bpe needs bpe_path: the merges file "
                     "bpe_simple_vocab_16e6.txt.gz from the clip/ folder of OpenAI's CLIP "
                     "repository (or use vocab: bytes)", where);
        return MPSL_ERR_INVALID;
    }
    TOK_REQUIRE_KERNEL(h, where, "text", embedding_forward, err);
    TOK_REQUIRE_KERNEL(h, where, "text", embedding_backward, err);
    if (p->pos_embed) {
        TOK_REQUIRE_KERNEL(h, where, "text", bias_add_forward, err);
        TOK_REQUIRE_KERNEL(h, where, "text", bias_add_backward, err);
    }
    if (p->pool_to_one) {
        TOK_REQUIRE_KERNEL(h, where, "text", meanpool_forward, err);
        TOK_REQUIRE_KERNEL(h, where, "text", meanpool_backward, err);
    }

    tx_state *s = h->alloc(sizeof(*s));
    if (!s) {
        h->error_set(err, "%s: text: out of memory", where);
        return MPSL_ERR_NOMEM;
    }
    s->h = h;
    s->vocab = p->vocab;
    s->in_ndim = init->in_ndim;
    s->S = S, s->L = L, s->Q = p->max_tokens, s->D = p->dim;
    s->cls = p->cls != 0;
    s->pos = p->pos_embed != 0;
    s->pool = p->pool_to_one != 0;
    s->Tq = s->pool ? 1 : s->Q;
    s->T = s->cls + S * s->Tq;
    s->off_cls = s->off_pos = -1;
    s->saved_B = -1;
    s->V = TX_BYTES_V;
    int rc = MPSL_OK;
    if (s->vocab == TX_VOCAB_CLIP_BPE) {
        char msg[sizeof err->msg - 64];
        rc = clip_bpe_acquire(p->bpe_path, &s->bpe, msg, sizeof msg);
        if (rc != MPSL_OK) {
            h->error_set(err, "%s: %s", where, msg);
            tx_destroy(s);
            return rc;
        }
        s->V = clip_bpe_vocab_size(s->bpe);
    }

    // CLIP's initialisation: token embedding and (here) CLS and positions N(0, 0.02^2)
    int64_t tshape[2] = {s->V, s->D}, cshape[3] = {1, 1, s->D}, pshape[3] = {1, s->T, s->D};
    s->off_tab = init->declare(init->ctx, "token_embedding.weight", 2, tshape, MPSL_INIT_NORMAL,
                               0.02f, 1, err);
    if (s->off_tab < 0) {
        rc = MPSL_ERR_INVALID;
    }
    if (rc == MPSL_OK && s->cls) {
        s->off_cls = init->declare(init->ctx, "cls_token", 3, cshape, MPSL_INIT_NORMAL, 0.02f,
                                   1, err);
        rc = s->off_cls < 0 ? MPSL_ERR_INVALID : MPSL_OK;
    }
    if (rc == MPSL_OK && s->pos) {
        s->off_pos = init->declare(init->ctx, "pos_embed", 3, pshape, MPSL_INIT_NORMAL, 0.02f,
                                   1, err);
        rc = s->off_pos < 0 ? MPSL_ERR_INVALID : MPSL_OK;
    }
    if (rc != MPSL_OK) {
        tx_destroy(s);
        return rc;
    }
    *state = s;
    return MPSL_OK;
}

static int tx_output_shape(void *state, int *ndim, int64_t *shape, int *cls)
{
    tx_state *s = state;
    *ndim = 2;
    shape[0] = s->T;
    shape[1] = s->D;
    if (cls) {
        *cls = s->cls;
    }
    return MPSL_OK;
}

static int tx_reserve(tx_state *s, int64_t B, mpsl_error *err)
{
    int64_t nseq = B * s->S;
    if (nseq <= s->cap_seq && s->text) {
        return MPSL_OK;
    }
    const mpsl_host *h = s->h;
    h->free(s->ids);
    h->free(s->lens);
    h->free(s->rid);
    h->free(s->text);
    h->free(s->rows);
    s->cap_seq = 0;
    s->ids = h->alloc((size_t)(nseq * s->Q) * sizeof(int32_t) + 1);
    s->lens = h->alloc((size_t)nseq * sizeof(int32_t) + 1);
    s->rid = h->alloc((size_t)(nseq * s->Q) * sizeof(int32_t) + 1);
    s->text = h->alloc((size_t)s->L + 1);
    s->rows = h->alloc((size_t)(nseq * s->Q * s->D) * sizeof(float) + 1);
    if (!s->ids || !s->lens || !s->rid || !s->text || !s->rows) {
        h->free(s->ids);
        h->free(s->lens);
        h->free(s->rid);
        h->free(s->text);
        h->free(s->rows);
        s->ids = s->lens = s->rid = NULL;
        s->text = NULL;
        s->rows = NULL;
        h->error_set(err, "text: out of memory for a batch of %lld", (long long)B);
        return MPSL_ERR_NOMEM;
    }
    s->cap_seq = nseq;
    return MPSL_OK;
}

/* Token ids of one sequence src (L) into ids (Q): start, ..., end, pads. Returns the number
 * of real tokens (>= 2), or a negative status with err set. */
static int tx_tokenize(tx_state *s, const int32_t *src, int32_t *ids, int64_t seq,
                       mpsl_error *err)
{
    int64_t n = 0;   // bytes before the first 0
    for (; n < s->L && src[n] != 0; n++) {
        if (src[n] < 0 || src[n] > 255) {
            s->h->error_set(err, "text: sequence %lld byte %lld is %d; expected UTF-8 bytes "
                            "0..255 (0 ends the text)", (long long)seq, (long long)n, src[n]);
            return MPSL_ERR_INVALID;
        }
        s->text[n] = (uint8_t)src[n];
    }
    int64_t room = s->Q - 2, k = 0;   // content tokens that fit between start and end
    if (s->vocab == TX_VOCAB_BYTES) {
        ids[0] = TX_START;
        for (; k < n && k < room; k++) {
            ids[1 + k] = (int32_t)s->text[k] + 3;
        }
        ids[1 + k] = TX_END;
    } else {
        ids[0] = clip_bpe_start_id(s->bpe);
        k = clip_bpe_encode(s->bpe, &s->bpe_scratch, s->text, n, ids + 1, room);
        if (k < 0) {
            s->h->error_set(err, "text: out of memory tokenizing sequence %lld",
                            (long long)seq);
            return MPSL_ERR_NOMEM;
        }
        ids[1 + k] = clip_bpe_end_id(s->bpe);
    }
    for (int64_t t = 2 + k; t < s->Q; t++) {
        ids[t] = TX_PAD;
    }
    return (int)(2 + k);
}

static int tx_forward(void *state, const mpsl_weights *w, const mpsl_tensor *inp,
                      mpsl_tensor *out, mpsl_error *err)
{
    tx_state *s = state;
    const mpsl_kernels *k = s->h->kernels;
    if (inp->dtype != MPSL_I32 || inp->ndim != s->in_ndim + 1 ||
        inp->shape[inp->ndim - 1] != s->L || (s->in_ndim == 2 && inp->shape[1] != s->S)) {
        s->h->error_set(err, "text: expected int32 input (B,%s%lld), got a %d-dimensional %s "
                        "tensor with last dimension %lld", s->in_ndim == 2 ? "S," : "",
                        (long long)s->L, inp->ndim, inp->dtype == MPSL_I32 ? "int32" : "float",
                        (long long)(inp->ndim > 0 ? inp->shape[inp->ndim - 1] : 0));
        return MPSL_ERR_INVALID;
    }
    int64_t B = inp->shape[0], S = s->S, Q = s->Q, D = s->D, T = s->T, nseq = B * S;
    int rc = tx_reserve(s, B, err);
    if (rc != MPSL_OK) {
        return rc;
    }
    const int32_t *src = inp->data;               // (B*S, L)
    int64_t N = 0;
    for (int64_t q = 0; q < nseq; q++) {
        int32_t *ids = s->ids + q * Q;
        int n = tx_tokenize(s, src + q * s->L, ids, q, err);
        if (n < 0) {
            return n;
        }
        s->lens[q] = n;
        for (int t = 0; t < n; t++) {
            if (ids[t] < 0 || ids[t] >= s->V) {   // never, by construction; checked in every build
                s->h->error_set(err, "text: sequence %lld token %d has id %d, outside the "
                                "vocabulary 0..%lld", (long long)q, t, (int)ids[t],
                                (long long)(s->V - 1));
                return MPSL_ERR_INTERNAL;
            }
            s->rid[N++] = ids[t];
        }
    }
    const float *table = w->param + s->off_tab;    // (V,D)
    k->embedding_forward(s->rows, s->rid, table, N, s->V, D);

    float *o = out->data;                          // (B,T,D)
    memset(o, 0, (size_t)(B * T * D) * sizeof(float));
    const float *row = s->rows;                    // (N,D), sequence-major
    for (int64_t b = 0; b < B; b++) {
        float *ob = o + b * T * D;
        if (s->cls) {
            memcpy(ob, w->param + s->off_cls, (size_t)D * sizeof(float));
        }
        for (int64_t q = 0; q < S; q++) {
            int64_t n = s->lens[b * S + q];
            float *oq = ob + (s->cls + q * s->Tq) * D;
            if (s->pool) {
                k->meanpool_forward(oq, row, 1, n, D, 0, n);
            } else {
                memcpy(oq, row, (size_t)(n * D) * sizeof(float));   // pads stay zero
            }
            row += n * D;
        }
    }
    if (s->pos) {
        k->bias_add_forward(o, o, w->param + s->off_pos, B, T * D); // pos (T,D)
    }
    out->dtype = MPSL_F32;
    out->ndim = 3;
    out->shape[0] = B, out->shape[1] = T, out->shape[2] = D;
    s->saved_B = B;
    s->saved_N = N;
    return MPSL_OK;
}

static int tx_backward(void *state, const mpsl_weights *w, const mpsl_tensor *dout,
                       mpsl_tensor *din, mpsl_error *err)
{
    tx_state *s = state;
    const mpsl_kernels *k = s->h->kernels;
    if (din && din->data) {
        s->h->error_set(err, "text cannot produce input gradients (token ids have none): "
                        "pass din = NULL");
        return MPSL_ERR_INVALID;
    }
    int64_t B = dout->shape[0], T = s->T, D = s->D, S = s->S;
    if (B != s->saved_B || dout->ndim != 3 || dout->shape[1] != T || dout->shape[2] != D) {
        s->h->error_set(err, "text: backward got dout (%lld,%lld,%lld), expected "
                        "(%lld,%lld,%lld) from the last forward", (long long)B,
                        (long long)dout->shape[1], (long long)dout->shape[2],
                        (long long)s->saved_B, (long long)T, (long long)D);
        return MPSL_ERR_INVALID;
    }
    if (!w->grad) {
        return MPSL_OK; // nothing trainable asked for
    }
    const float *g = dout->data;                   // (B,T,D)
    if (s->pos && tok_trained(w, s->off_pos, T * D)) {
        k->bias_add_backward(w->grad + s->off_pos, g, B, T * D); // dpos (T,D)
    }
    if (s->cls && tok_trained(w, s->off_cls, D)) {
        float *dcls = w->grad + s->off_cls;        // (D)
        for (int64_t b = 0; b < B; b++) {
            for (int64_t d = 0; d < D; d++) {
                dcls[d] += g[b * T * D + d];
            }
        }
    }
    if (!tok_trained(w, s->off_tab, s->V * D)) {
        return MPSL_OK;
    }
    if (s->pool) {
        memset(s->rows, 0, (size_t)(s->saved_N * D) * sizeof(float));
    }
    float *row = s->rows;                          // (N,D) gradients of the real tokens
    for (int64_t q = 0; q < B * S; q++) {
        int64_t b = q / S, n = s->lens[q];
        const float *gq = g + (b * T + s->cls + (q % S) * s->Tq) * D;
        if (s->pool) {
            k->meanpool_backward(row, gq, 1, n, D, 0, n);
        } else {
            memcpy(row, gq, (size_t)(n * D) * sizeof(float));   // pads send nothing
        }
        row += n * D;
    }
    k->embedding_backward(w->grad + s->off_tab, s->rows, s->rid, s->saved_N, s->V, D);
    return MPSL_OK;
}

static const mpsl_module_api tx_api = {
    sizeof(mpsl_module_api), tx_create, tx_destroy, tx_output_shape, tx_forward, tx_backward,
};

MPSL_PLUGIN(MPSL_KIND_TOKENIZER, "text", "1.0.0",
            "text bytes -> byte or CLIP BPE ids -> token embedding [-> mean per sequence] -> [CLS] + "
            "position embeddings",
            &tx_api, tx_params, tx_spec);
