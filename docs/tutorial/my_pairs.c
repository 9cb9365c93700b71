/* my_pairs.c: the tutorial's two-modality dataset plugin (docs/tutorial.md). "Corners": each
 * sample is a grey image of size x size pixels whose one bright quadrant is the class,
 *     class 0  top left     class 1  top right     class 2  bottom left     class 3  bottom right
 * in strong noise, paired with a short caption that names the corner ("a square at the top
 * left"), or, with probability text_noise, only says "a square somewhere". Neither modality
 * alone is certain; together they are.
 *
 * Two modalities, each in the format its tokenizer expects (docs/plugins.md, "What a dataset
 * hands out"):
 *     "image"  float32 (1, S, S): pixel values, here 0 or 1 plus noise
 *     "text"   int32 (L): the caption's UTF-8 bytes, one per element, then zeros
 * Samples are made on demand in fill() from the host's per-sample random streams
 * (h->rng->seed_sample), so a sample is the same whichever others are drawn, and nothing but
 * the labels is kept in memory.
 */
#include <stdio.h>
#include <string.h>

#include <mpsl/plugin.h>

typedef struct {
    int64_t size;            // image side in pixels (even)
    int64_t n_train, n_test; // samples per split
    double noise;            // standard deviation of the pixel noise
    double text_noise;       // probability that a caption does not name the corner
    int64_t text_len;        // caption bytes L per sample (zero-padded, cut at L)
    int64_t seed;            // generator seed
} pairs_params;

static const mpsl_param_spec pairs_spec[] = {
    MPSL_PARAM_INT(pairs_params, size, "size", 0, 2, 64, "8", "image side in pixels (even)"),
    MPSL_PARAM_INT(pairs_params, n_train, "n_train", 0, 4, 1000000, "2000", "training samples"),
    MPSL_PARAM_INT(pairs_params, n_test, "n_test", 0, 4, 1000000, "500", "test samples"),
    MPSL_PARAM_FLOAT(pairs_params, noise, "noise", 0, 0, 10, "2.0", "pixel noise std"),
    MPSL_PARAM_FLOAT(pairs_params, text_noise, "text_noise", 0, 0, 1, "0.5",
                     "probability that a caption says only \"somewhere\""),
    MPSL_PARAM_INT(pairs_params, text_len, "text_len", 0, 8, 256, "32",
                   "caption bytes per sample (zero-padded, cut at text_len)"),
    MPSL_PARAM_INT(pairs_params, seed, "seed", 0, 0, 9.0e15, "1", "generator seed"),
};

enum { PAIRS_CLASSES = 4, PAIRS_STREAM_LABEL = 0, PAIRS_STREAM_SAMPLE = 1 };

static const char *const pairs_corner[PAIRS_CLASSES] = {
    "top left", "top right", "bottom left", "bottom right",
};

typedef struct {
    const mpsl_host *h;
    pairs_params p;
    int32_t *y[2];           // (n) labels, by mpsl_split
} pairs_state;

static void pairs_close(void *state)
{
    pairs_state *s = state;
    if (s) {
        s->h->free(s->y[0]);
        s->h->free(s->y[1]);
        s->h->free(s);
    }
}

static int pairs_open(const mpsl_host *h, const void *params, const char *where,
                      mpsl_dataset_info *info, void **state, mpsl_error *err)
{
    const pairs_params *p = params;
    if (p->size % 2 != 0) {
        h->error_set(err, "%s: size: %lld is odd; the image is cut into four equal quadrants",
                     where, (long long)p->size);
        return MPSL_ERR_INVALID;
    }
    pairs_state *s = h->alloc(sizeof(*s));
    if (!s) {
        h->error_set(err, "%s: out of memory", where);
        return MPSL_ERR_NOMEM;
    }
    s->h = h;
    s->p = *p;
    const int64_t n[2] = {p->n_train, p->n_test};
    for (int k = 0; k < 2; k++) {
        s->y[k] = h->alloc((size_t)n[k] * sizeof(int32_t));
        if (!s->y[k]) {
            h->error_set(err, "%s: out of memory for %lld labels", where, (long long)n[k]);
            pairs_close(s);
            return MPSL_ERR_NOMEM;
        }
        for (int64_t i = 0; i < n[k]; i++) { // each label from its sample's own stream
            mpsl_rng r;
            h->rng->seed_sample(&r, (uint64_t)p->seed, k, i, PAIRS_STREAM_LABEL);
            s->y[k][i] = (int32_t)h->rng->below(&r, PAIRS_CLASSES);
        }
    }
    /* Two modalities, in the order fill() writes them. Their names connect them to the
     * experiment's tokenizers: model.tokenizers.image and model.tokenizers.text. */
    memset(info, 0, sizeof(*info));
    info->n_modalities = 2;
    mpsl_modality_info *image = &info->modality[0], *text = &info->modality[1];
    strcpy(image->name, "image");
    image->dtype = MPSL_F32;
    image->ndim = 3;                  // per sample: (1, S, S)
    image->shape[0] = 1;
    image->shape[1] = p->size;
    image->shape[2] = p->size;
    strcpy(text->name, "text");
    text->dtype = MPSL_I32;
    text->ndim = 1;                   // per sample: (L) bytes
    text->shape[0] = p->text_len;
    info->n_classes = PAIRS_CLASSES;
    info->n_train = p->n_train;
    info->n_test = p->n_test;
    *state = s;
    return MPSL_OK;
}

static const int32_t *pairs_labels(void *state, mpsl_split split)
{
    pairs_state *s = state;
    return s->y[split];
}

/* One sample of class `label` from the stream r: its image (S,S) and caption (L). */
static void pairs_make(const pairs_state *s, mpsl_rng *r, int32_t label, float *img,
                       int32_t *text)
{
    const mpsl_host *h = s->h;
    const int64_t S = s->p.size, half = S / 2, L = s->p.text_len;
    const int64_t top = label < 2, left = label % 2 == 0;
    for (int64_t i = 0; i < S; i++) {
        for (int64_t j = 0; j < S; j++) {
            int on = (i < half) == top && (j < half) == left;
            img[i * S + j] = (float)(on + s->p.noise * h->rng->normal(r));
        }
    }
    char caption[64];
    if (h->rng->uniform(r) < s->p.text_noise) {
        snprintf(caption, sizeof caption, "a square somewhere");
    } else {
        snprintf(caption, sizeof caption, "a square at the %s", pairs_corner[label]);
    }
    /* UTF-8 bytes, one per int32, then zeros; a longer caption is cut at L bytes (this one is
     * ASCII, so no character can be split). */
    int64_t k = 0;
    for (; k < L && caption[k]; k++) {
        text[k] = (unsigned char)caption[k];
    }
    for (; k < L; k++) {
        text[k] = 0;
    }
}

/* fill(): samples idx[0..n) into the host's batch: modality 0 (n,1,S,S) floats, modality 1
 * (n,L) ints, and the labels. The host sets batch->n and the shapes. */
static int pairs_fill(void *state, mpsl_split split, const int64_t *idx, int64_t n,
                      mpsl_batch *batch, mpsl_error *err)
{
    pairs_state *s = state;
    const int64_t count = split == MPSL_SPLIT_TRAIN ? s->p.n_train : s->p.n_test;
    const int64_t F = s->p.size * s->p.size, L = s->p.text_len;
    float *img = batch->modality[0].data;
    int32_t *text = batch->modality[1].data;
    for (int64_t i = 0; i < n; i++) {
        if (idx[i] < 0 || idx[i] >= count) {
            s->h->error_set(err, "my_pairs: sample %lld out of range (the split has %lld)",
                            (long long)idx[i], (long long)count);
            return MPSL_ERR_INVALID;
        }
        mpsl_rng r;
        s->h->rng->seed_sample(&r, (uint64_t)s->p.seed, split, idx[i], PAIRS_STREAM_SAMPLE);
        batch->labels[i] = s->y[split][idx[i]];
        pairs_make(s, &r, batch->labels[i], img + i * F, text + i * L);
    }
    return MPSL_OK;
}

static const mpsl_dataset_api pairs_api = {
    sizeof(mpsl_dataset_api), pairs_open, pairs_close, pairs_labels, pairs_fill,
    NULL, // prepare: nothing to prepare
};

MPSL_PLUGIN(MPSL_KIND_DATASET, "my_pairs", "1.0.0",
            "tutorial: a noisy image with one bright corner, and a caption that may name it",
            &pairs_api, pairs_params, pairs_spec);
