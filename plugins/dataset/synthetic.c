/* synthetic.c: images of any shape generated from a seed, for FLOP counting, benchmarks and
 * smoke tests at real model sizes (e.g. 3x224x224 for ViT-B/16) without a real dataset.
 * Each class shifts the mean of a fixed random pattern, so the task is learnable; values are
 * a pure function of (seed, split, index, position) through the host's counter-based
 * h->rng->mix64, so any sample can be produced alone. */
#include <math.h>
#include <mpsl/plugin.h>
#include <stdint.h>
#include <string.h>

typedef struct syn_params {
    int64_t channels, height, width, classes, n_train, n_test, seed;
    double noise;
} syn_params;

static const mpsl_param_spec syn_spec[] = {
    MPSL_PARAM_INT(syn_params, channels, "channels", 0, 1, 64, "3", "image channels"),
    MPSL_PARAM_INT(syn_params, height, "height", 0, 1, 4096, "224", "image height"),
    MPSL_PARAM_INT(syn_params, width, "width", 0, 1, 4096, "224", "image width"),
    MPSL_PARAM_INT(syn_params, classes, "classes", 0, 2, 100000, "10", "number of classes"),
    MPSL_PARAM_INT(syn_params, n_train, "n_train", 0, 1, 10000000, "256", "training samples"),
    MPSL_PARAM_INT(syn_params, n_test, "n_test", 0, 1, 10000000, "64", "test samples"),
    MPSL_PARAM_INT(syn_params, seed, "seed", 0, 0, 9.0e15, "0", "generator seed"),
    MPSL_PARAM_FLOAT(syn_params, noise, "noise", 0, 0, 100, "1", "noise std around the class pattern"),
};

typedef struct syn_state {
    const mpsl_host *h;
    syn_params p;
    int32_t *labels[2];
} syn_state;

/* Uniform in [-1, 1) from a key: cheap enough for 150k values per sample. */
static float uniform(const mpsl_host *h, uint64_t key)
{
    return (float)((double)(h->rng->mix64(key) >> 11) * 0x1.0p-52 - 1.0);
}

static int syn_open(const mpsl_host *h, const void *params, const char *where,
                    mpsl_dataset_info *info, void **state, mpsl_error *err)
{
    (void)where;
    syn_state *s = h->alloc(sizeof *s);
    if (!s) {
        h->error_set(err, "out of memory");
        return MPSL_ERR_NOMEM;
    }
    s->h = h;
    s->p = *(const syn_params *)params;
    int64_t n[2] = {s->p.n_train, s->p.n_test};
    for (int split = 0; split < 2; split++) {
        s->labels[split] = h->alloc((size_t)n[split] * sizeof(int32_t));
        if (!s->labels[split]) {
            h->free(s->labels[0]);
            h->free(s);
            h->error_set(err, "out of memory for %lld labels", (long long)n[split]);
            return MPSL_ERR_NOMEM;
        }
        for (int64_t i = 0; i < n[split]; i++) {
            uint64_t key = h->rng->mix64((uint64_t)s->p.seed ^ ((uint64_t)split << 60) ^
                                         (uint64_t)i);
            s->labels[split][i] = (int32_t)(key % (uint64_t)s->p.classes);
        }
    }
    memset(info, 0, sizeof *info);
    info->n_modalities = 1;
    strcpy(info->modality[0].name, "image");
    info->modality[0].dtype = MPSL_F32;
    info->modality[0].ndim = 3;
    info->modality[0].shape[0] = s->p.channels;
    info->modality[0].shape[1] = s->p.height;
    info->modality[0].shape[2] = s->p.width;
    info->n_classes = s->p.classes;
    /* class_names stays NULL: a class is only a shift of the pattern's mean, with nothing to
     * name it by, and the host's own "class 0", "class 1", .. says exactly that (up to
     * 100000 invented strings would only cost memory). */
    info->n_train = s->p.n_train;
    info->n_test = s->p.n_test;
    *state = s;
    return MPSL_OK;
}

static void syn_close(void *state)
{
    syn_state *s = state;
    s->h->free(s->labels[0]);
    s->h->free(s->labels[1]);
    s->h->free(s);
}

static const int32_t *syn_labels(void *state, mpsl_split split)
{
    return ((syn_state *)state)->labels[split];
}

static int syn_fill(void *state, mpsl_split split, const int64_t *idx, int64_t n,
                    mpsl_batch *b, mpsl_error *err)
{
    syn_state *s = state;
    int64_t limit = split == MPSL_SPLIT_TRAIN ? s->p.n_train : s->p.n_test;
    int64_t per = s->p.channels * s->p.height * s->p.width;
    for (int64_t j = 0; j < n; j++) {
        if (idx[j] < 0 || idx[j] >= limit) {
            s->h->error_set(err, "synthetic: sample %lld is outside the %s split (0..%lld)",
                            (long long)idx[j], split == MPSL_SPLIT_TRAIN ? "train" : "test",
                            (long long)limit - 1);
            return MPSL_ERR_INVALID;
        }
        int32_t y = s->labels[split][idx[j]];
        b->labels[j] = y;
        float *x = (float *)b->modality[0].data + j * per;
        uint64_t sample = s->h->rng->mix64((uint64_t)s->p.seed * 0x9e3779b97f4a7c15ull ^
                                           ((uint64_t)split << 62) ^ (uint64_t)(idx[j] + 1));
        float shift = (float)y / (float)s->p.classes;
        for (int64_t k = 0; k < per; k++) {
            float pattern = uniform(s->h, (uint64_t)s->p.seed ^ ((uint64_t)k << 8) ^ 0x5a5a);
            x[k] = pattern * shift + (float)s->p.noise * uniform(s->h, sample ^ (uint64_t)k);
        }
    }
    return MPSL_OK;
}

static const mpsl_dataset_api syn_api = {sizeof(mpsl_dataset_api), syn_open, syn_close,
                                         syn_labels, syn_fill, NULL};

MPSL_PLUGIN(MPSL_KIND_DATASET, "synthetic", "1.0.0",
            "seeded synthetic images of any shape (FLOP counting, benchmarks, smoke tests)",
            &syn_api, syn_params, syn_spec);
