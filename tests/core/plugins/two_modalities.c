/* two_modalities.c: a small synthetic dataset with two modalities ("image" and "audio", each
 * 1x8x8), so fusion can be tested end to end. Each class has a fixed random pattern per
 * modality; samples are pattern + Gaussian noise, with a noise level per modality so that one
 * modality alone is weaker than both together. */
#include <math.h>
#include <mpsl/plugin.h>
#include <stdint.h>
#include <string.h>

typedef struct tm_params {
    int64_t n_train, n_test, classes;
    double noise_image, noise_audio;
    int64_t seed;
} tm_params;

static const mpsl_param_spec tm_spec[] = {
    MPSL_PARAM_INT(tm_params, n_train, "n_train", 0, 1, 1000000, "2000", "training samples"),
    MPSL_PARAM_INT(tm_params, n_test, "n_test", 0, 1, 1000000, "500", "test samples"),
    MPSL_PARAM_INT(tm_params, classes, "classes", 0, 2, 64, "4", "number of classes"),
    MPSL_PARAM_FLOAT(tm_params, noise_image, "noise_image", 0, 0, 100, "1.5", "image noise std"),
    MPSL_PARAM_FLOAT(tm_params, noise_audio, "noise_audio", 0, 0, 100, "1.5", "audio noise std"),
    MPSL_PARAM_INT(tm_params, seed, "seed", 0, 0, 1e15, "1", "generator seed"),
};

#define SIDE 8
#define PIX (SIDE * SIDE)

typedef struct tm_state {
    const mpsl_host *h;
    tm_params p;
    int32_t *labels[2];
} tm_state;

/* A stateless hash-based generator: sample values depend only on (seed, split, index, k). */
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

static int tm_open(const mpsl_host *h, const void *params, const char *where,
                   mpsl_dataset_info *info, void **state, mpsl_error *err)
{
    (void)where;
    tm_state *s = h->alloc(sizeof *s);
    if (!s) {
        h->error_set(err, "out of memory");
        return MPSL_ERR_NOMEM;
    }
    s->h = h;
    s->p = *(const tm_params *)params;
    int64_t n[2] = {s->p.n_train, s->p.n_test};
    for (int split = 0; split < 2; split++) {
        s->labels[split] = h->alloc((size_t)n[split] * sizeof(int32_t));
        if (!s->labels[split]) {
            h->error_set(err, "out of memory");
            return MPSL_ERR_NOMEM;
        }
        for (int64_t i = 0; i < n[split]; i++) {
            s->labels[split][i] =
                (int32_t)(mix((uint64_t)s->p.seed * 31 + (uint64_t)split * 7 + (uint64_t)i * 131) %
                          (uint64_t)s->p.classes);
        }
    }
    memset(info, 0, sizeof *info);
    info->n_modalities = 2;
    const char *names[2] = {"image", "audio"};
    for (int m = 0; m < 2; m++) {
        strcpy(info->modality[m].name, names[m]);
        info->modality[m].dtype = MPSL_F32;
        info->modality[m].ndim = 3;
        info->modality[m].shape[0] = 1;
        info->modality[m].shape[1] = SIDE;
        info->modality[m].shape[2] = SIDE;
    }
    info->n_classes = s->p.classes;
    info->n_train = s->p.n_train;
    info->n_test = s->p.n_test;
    *state = s;
    return MPSL_OK;
}

static void tm_close(void *state)
{
    tm_state *s = state;
    s->h->free(s->labels[0]);
    s->h->free(s->labels[1]);
    s->h->free(s);
}

static const int32_t *tm_labels(void *state, mpsl_split split)
{
    return ((tm_state *)state)->labels[split];
}

static int tm_fill(void *state, mpsl_split split, const int64_t *idx, int64_t n,
                   mpsl_batch *b, mpsl_error *err)
{
    tm_state *s = state;
    int64_t limit = split == MPSL_SPLIT_TRAIN ? s->p.n_train : s->p.n_test;
    double noise[2] = {s->p.noise_image, s->p.noise_audio};
    for (int64_t j = 0; j < n; j++) {
        if (idx[j] < 0 || idx[j] >= limit) {
            s->h->error_set(err, "two_modalities: sample %lld out of range", (long long)idx[j]);
            return MPSL_ERR_INVALID;
        }
        int32_t y = s->labels[split][idx[j]];
        b->labels[j] = y;
        for (int m = 0; m < 2; m++) {
            float *x = (float *)b->modality[m].data + j * PIX;
            for (int k = 0; k < PIX; k++) {
                uint64_t pattern_key = ((uint64_t)s->p.seed << 20) ^ ((uint64_t)m << 16) ^
                                       ((uint64_t)y << 8) ^ (uint64_t)k;
                uint64_t noise_key = pattern_key ^ ((uint64_t)split << 62) ^
                                     ((uint64_t)(idx[j] + 1) << 24);
                x[k] = (float)(gauss(pattern_key) + noise[m] * gauss(noise_key * 3 + 1));
            }
        }
    }
    return MPSL_OK;
}

static const mpsl_dataset_api tm_api = {sizeof(mpsl_dataset_api), tm_open, tm_close,
                                        tm_labels, tm_fill, NULL};

MPSL_PLUGIN(MPSL_KIND_DATASET, "two_modalities", "1.0.0",
            "synthetic image + audio patterns with per-modality noise (for fusion tests)",
            &tm_api, tm_params, tm_spec);
