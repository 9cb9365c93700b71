/* template_dataset.c: a complete dataset plugin to copy when writing your own.
 *
 * HOW TO MAKE A NEW DATASET FROM THIS FILE
 *   1. Copy:   cp template_dataset.c my_data.c   (or: mpsl new-plugin dataset NAME)
 *   2. Rename: replace the prefix "td_" and the name "template_dataset" (last line).
 *   3. Build:  cc -shared -fPIC -O2 $(pkg-config --cflags mpsl-plugin) my_data.c -o my_data.so
 *              (or add a shared_module() line to plugins/dataset/meson.build).
 *   4. Change: open() to read your prepared files (refuse missing, truncated or mismatched
 *              files naming the file and what was expected), the modality description in
 *              info, and fill().
 *
 * WHAT THIS ONE DOES: generates, from `seed`, a small synthetic dataset of two classes of
 * Gaussian blobs shaped as 1x4x4 "images": every pixel of a class-0 sample is
 * N(-0.5, noise^2), of a class-1 sample N(+0.5, noise^2). Labels alternate 0,1,0,1...
 * Useful for smoke tests: any model that can average its input learns it.
 *
 * RULES IT FOLLOWS (see mpsl/plugin.h, and docs/plugins.md for each modality's format)
 * - open() describes every modality in info: its name (which tokenizer gets it), dtype and
 *   per-sample shape; here one float32 "image" of shape (1, 4, 4).
 * - fill() writes samples idx[0..n) into the host's batch, in that layout, and their labels;
 *   the host sets batch->n and the shapes.
 * - Random numbers come from the host's seeded streams (h->rng): the same data everywhere.
 */
#include <string.h>

#include <mpsl/plugin.h>

typedef struct {
    int64_t seed;
    int64_t n_train, n_test;
    double noise;
} td_params;

static const mpsl_param_spec td_spec[] = {
    MPSL_PARAM_INT(td_params, seed, "seed", 0, 0, 9.0e15, "1", "generator seed"),
    MPSL_PARAM_INT(td_params, n_train, "n_train", 0, 1, 1e7, "512", "training samples"),
    MPSL_PARAM_INT(td_params, n_test, "n_test", 0, 1, 1e7, "128", "test samples"),
    MPSL_PARAM_FLOAT(td_params, noise, "noise", 0, 0, 100, "1.0", "pixel noise std"),
};

enum { TD_C = 1, TD_H = 4, TD_W = 4, TD_F = TD_C * TD_H * TD_W, TD_CLASSES = 2 };

typedef struct {
    const mpsl_host *h;
    int64_t n[2];          // by mpsl_split
    float *x[2];           // (n, 1, 4, 4)
    int32_t *y[2];         // (n)
} td_state;

static void td_close(void *state)
{
    td_state *s = state;
    if (!s) {
        return;
    }
    for (int k = 0; k < 2; k++) {
        s->h->free(s->x[k]);
        s->h->free(s->y[k]);
    }
    s->h->free(s);
}

static int td_open(const mpsl_host *h, const void *params, const char *where,
                   mpsl_dataset_info *info, void **state, mpsl_error *err)
{
    const td_params *p = params;
    td_state *s = h->alloc(sizeof(*s));
    if (!s) {
        h->error_set(err, "%s: out of memory", where);
        return MPSL_ERR_NOMEM;
    }
    s->h = h;
    s->n[MPSL_SPLIT_TRAIN] = p->n_train;
    s->n[MPSL_SPLIT_TEST] = p->n_test;
    mpsl_rng rng;
    h->rng->seed(&rng, (uint64_t)p->seed);
    for (int k = 0; k < 2; k++) {
        s->x[k] = h->alloc((size_t)(s->n[k] * TD_F) * sizeof(float));
        s->y[k] = h->alloc((size_t)s->n[k] * sizeof(int32_t));
        if (!s->x[k] || !s->y[k]) {
            td_close(s);
            h->error_set(err, "%s: out of memory for %lld samples", where,
                         (long long)s->n[k]);
            return MPSL_ERR_NOMEM;
        }
        for (int64_t i = 0; i < s->n[k]; i++) {
            int32_t label = (int32_t)(i % TD_CLASSES);
            s->y[k][i] = label;
            for (int j = 0; j < TD_F; j++) {
                double mean = label ? 0.5 : -0.5;
                s->x[k][i * TD_F + j] = (float)(mean + p->noise * h->rng->normal(&rng));
            }
        }
    }
    memset(info, 0, sizeof(*info));
    info->n_modalities = 1;
    strcpy(info->modality[0].name, "image");
    info->modality[0].dtype = MPSL_F32;
    info->modality[0].ndim = 3;
    info->modality[0].shape[0] = TD_C;
    info->modality[0].shape[1] = TD_H;
    info->modality[0].shape[2] = TD_W;
    info->n_classes = TD_CLASSES;
    // Optional (since ABI 2.1): a name per class, for results and reports. The array and its
    // strings must stay valid until close(); each name is non-empty, at most 64 bytes, with
    // no control characters. Left NULL, the host says "class 0", "class 1", ...
    // static const char *const td_class_names[TD_CLASSES] = {"low", "high"};
    // info->class_names = td_class_names;
    info->n_train = s->n[MPSL_SPLIT_TRAIN];
    info->n_test = s->n[MPSL_SPLIT_TEST];
    *state = s;
    return MPSL_OK;
}

static const int32_t *td_labels(void *state, mpsl_split split)
{
    td_state *s = state;
    return s->y[split];
}

static int td_fill(void *state, mpsl_split split, const int64_t *idx, int64_t n,
                   mpsl_batch *batch, mpsl_error *err)
{
    td_state *s = state;
    float *x = batch->modality[0].data;    // (n, 1, 4, 4)
    for (int64_t i = 0; i < n; i++) {
        if (idx[i] < 0 || idx[i] >= s->n[split]) {
            s->h->error_set(err, "template_dataset: sample %lld out of range (the split has "
                            "%lld)", (long long)idx[i], (long long)s->n[split]);
            return MPSL_ERR_INVALID;
        }
        memcpy(x + i * TD_F, s->x[split] + idx[i] * TD_F, TD_F * sizeof(float));
        batch->labels[i] = s->y[split][idx[i]];
    }
    return MPSL_OK; // the host sets batch->n and the shapes
}

static const mpsl_dataset_api td_api = {
    sizeof(mpsl_dataset_api), td_open, td_close, td_labels, td_fill,
    NULL, /* prepare: nothing to prepare, the data is generated on open */
};

MPSL_PLUGIN(MPSL_KIND_DATASET, "template_dataset", "1.0.0",
            "template: two classes of Gaussian blobs as 1x4x4 images, generated from a seed",
            &td_api, td_params, td_spec);
