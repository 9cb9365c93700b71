/* two_views_retrieval.c: a small synthetic image-text retrieval dataset (task retrieval), so the
 * contrastive loss and Recall@K can be tested end to end without Flickr30K.
 *
 * Each item has a latent pair (a, b): a among `latents` object kinds, b among `details`
 * attributes, drawn from (seed, split, index). Its image (1,8,8) float is pattern(a) +
 * 0.5 * pattern(b) + Gaussian noise. Its K = 5 captions (5,L) int32 are UTF-8 bytes, each
 * independently worded: "<word for b> <word for a>" where each word is one of 3 paraphrases
 * (made-up lowercase words fixed by the seed), sometimes followed by a short filler word.
 * Labels are the item's index in its split, as the prepared format's retrieval files. */
#include <math.h>
#include <mpsl/plugin.h>
#include <stdint.h>
#include <string.h>

typedef struct tvr_params {
    int64_t n_train, n_test, latents, details, caption_bytes;
    double noise;
    int64_t seed;
} tvr_params;

static const mpsl_param_spec tvr_spec[] = {
    MPSL_PARAM_INT(tvr_params, n_train, "n_train", 0, 1, 1000000, "2000", "training items"),
    MPSL_PARAM_INT(tvr_params, n_test, "n_test", 0, 1, 1000000, "200", "test items"),
    MPSL_PARAM_INT(tvr_params, latents, "latents", 0, 2, 64, "20", "object kinds (a)"),
    MPSL_PARAM_INT(tvr_params, details, "details", 0, 1, 16, "5", "attributes (b)"),
    MPSL_PARAM_INT(tvr_params, caption_bytes, "caption_bytes", 0, 24, 256, "24",
                   "bytes per caption L (zero-padded)"),
    MPSL_PARAM_FLOAT(tvr_params, noise, "noise", 0, 0, 100, "0.5", "image noise std"),
    MPSL_PARAM_INT(tvr_params, seed, "seed", 0, 0, 1e15, "1", "generator seed"),
};

#define SIDE 8
#define PIX (SIDE * SIDE)
#define CAPTIONS 5
#define PARAPHRASES 3
#define WORD 6          /* letters per made-up word */

typedef struct tvr_state {
    const mpsl_host *h;
    tvr_params p;
    int32_t *labels[2];
} tvr_state;

/* A stateless hash-based generator: values depend only on their key. */
static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

static double gauss(uint64_t key)
{
    double u1 = ((double)(mix(key) >> 11) + 1.0) * 0x1.0p-53;
    double u2 = (double)(mix(key ^ 0x9e3779b97f4a7c15ull) >> 11) * 0x1.0p-53;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

static uint64_t item_key(const tvr_state *s, int split, int64_t i)
{
    return mix((uint64_t)s->p.seed * 1000003u + (uint64_t)split * 7919u + (uint64_t)i * 131u + 17u);
}

/* Write paraphrase `which` of the word for value v of factor f (0: a, 1: b). */
static int write_word(const tvr_state *s, int f, int64_t v, int which, uint8_t *out)
{
    for (int c = 0; c < WORD; c++) {
        uint64_t k = mix(((uint64_t)s->p.seed << 24) ^ ((uint64_t)f << 20) ^ ((uint64_t)v << 8) ^
                         ((uint64_t)which << 4) ^ (uint64_t)c);
        out[c] = (uint8_t)('a' + k % 26);
    }
    return WORD;
}

static int tvr_open(const mpsl_host *h, const void *params, const char *where,
                    mpsl_dataset_info *info, void **state, mpsl_error *err)
{
    (void)where;
    tvr_state *s = h->alloc(sizeof *s);
    if (!s) {
        h->error_set(err, "out of memory");
        return MPSL_ERR_NOMEM;
    }
    s->h = h;
    s->p = *(const tvr_params *)params;
    int64_t n[2] = {s->p.n_train, s->p.n_test};
    for (int split = 0; split < 2; split++) {
        s->labels[split] = h->alloc((size_t)n[split] * sizeof(int32_t));
        if (!s->labels[split]) {
            h->free(s->labels[0]);
            h->free(s);
            h->error_set(err, "out of memory");
            return MPSL_ERR_NOMEM;
        }
        for (int64_t i = 0; i < n[split]; i++) {
            s->labels[split][i] = (int32_t)i;
        }
    }
    memset(info, 0, sizeof *info);
    info->n_modalities = 2;
    strcpy(info->modality[0].name, "image");
    info->modality[0].dtype = MPSL_F32;
    info->modality[0].ndim = 3;
    info->modality[0].shape[0] = 1;
    info->modality[0].shape[1] = SIDE;
    info->modality[0].shape[2] = SIDE;
    strcpy(info->modality[1].name, "text");
    info->modality[1].dtype = MPSL_I32;
    info->modality[1].ndim = 2;
    info->modality[1].shape[0] = CAPTIONS;
    info->modality[1].shape[1] = s->p.caption_bytes;
    info->n_train = s->p.n_train;
    info->n_test = s->p.n_test;
    info->n_classes = n[0] > n[1] ? n[0] : n[1]; /* every label (an index) is valid */
    info->task = MPSL_TASK_RETRIEVAL;
    *state = s;
    return MPSL_OK;
}

static void tvr_close(void *state)
{
    tvr_state *s = state;
    s->h->free(s->labels[0]);
    s->h->free(s->labels[1]);
    s->h->free(s);
}

static const int32_t *tvr_labels(void *state, mpsl_split split)
{
    return ((tvr_state *)state)->labels[split];
}

static int tvr_fill(void *state, mpsl_split split, const int64_t *idx, int64_t n,
                    mpsl_batch *b, mpsl_error *err)
{
    tvr_state *s = state;
    int64_t limit = split == MPSL_SPLIT_TRAIN ? s->p.n_train : s->p.n_test;
    int64_t L = s->p.caption_bytes;
    for (int64_t j = 0; j < n; j++) {
        if (idx[j] < 0 || idx[j] >= limit) {
            s->h->error_set(err, "two_views_retrieval: item %lld out of range", (long long)idx[j]);
            return MPSL_ERR_INVALID;
        }
        uint64_t key = item_key(s, (int)split, idx[j]);
        int64_t a = (int64_t)(key % (uint64_t)s->p.latents);
        int64_t v = (int64_t)((key >> 20) % (uint64_t)s->p.details);
        b->labels[j] = (int32_t)idx[j];
        float *x = (float *)b->modality[0].data + j * PIX;
        for (int k = 0; k < PIX; k++) {
            uint64_t pa = ((uint64_t)s->p.seed << 20) ^ ((uint64_t)a << 8) ^ (uint64_t)k;
            uint64_t pb = ((uint64_t)s->p.seed << 20) ^ (1ull << 19) ^ ((uint64_t)v << 8) ^
                          (uint64_t)k;
            x[k] = (float)(gauss(pa) + 0.5 * gauss(pb) +
                           s->p.noise * gauss(key * 3 + (uint64_t)k * 977 + 1));
        }
        int32_t *t = (int32_t *)b->modality[1].data + j * CAPTIONS * L;
        memset(t, 0, (size_t)(CAPTIONS * L) * sizeof *t);
        for (int c = 0; c < CAPTIONS; c++) {
            uint64_t ck = mix(key ^ ((uint64_t)(c + 1) << 40));
            uint8_t text[256];
            int len = write_word(s, 1, v, (int)(ck % PARAPHRASES), text);
            text[len++] = ' ';
            len += write_word(s, 0, a, (int)((ck >> 8) % PARAPHRASES), text + len);
            if ((ck >> 16) % 2) { /* a filler word of two random letters */
                text[len++] = ' ';
                text[len++] = (uint8_t)('a' + (ck >> 24) % 26);
                text[len++] = (uint8_t)('a' + (ck >> 32) % 26);
            }
            for (int i = 0; i < len && i < L; i++) {
                t[c * L + i] = text[i];
            }
        }
    }
    return MPSL_OK;
}

static const mpsl_dataset_api tvr_api = {sizeof(mpsl_dataset_api), tvr_open, tvr_close,
                                         tvr_labels, tvr_fill, NULL};

MPSL_PLUGIN(MPSL_KIND_DATASET, "two_views_retrieval", "1.0.0",
            "synthetic image + 5 captions per item from shared latents (retrieval tests)",
            &tvr_api, tvr_params, tvr_spec);
