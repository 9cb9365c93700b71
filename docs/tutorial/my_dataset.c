/* my_dataset.c: the tutorial's dataset plugin (docs/tutorial.md). "Shapes": grey images of
 * size x size pixels showing one of four shapes at a random place, in Gaussian noise:
 *     class 0  a horizontal bar (one whole row)
 *     class 1  a vertical bar (one whole column)
 *     class 2  a filled 3x3 square
 *     class 3  a cross (a horizontal and a vertical bar)
 * Everything is generated from `seed` when the dataset opens (with the host's seeded random
 * streams, h->rng), so there are no files to prepare. A real dataset would read its files
 * here instead (and refuse missing or truncated ones, naming the file and what it expected).
 */
#include <string.h>

#include <mpsl/plugin.h>

/* 1. The YAML keys: a struct, and a table saying how the host fills it. */
typedef struct {
    int64_t size;            // image side in pixels
    int64_t n_train, n_test; // samples per split
    double noise;            // standard deviation of the pixel noise
    int64_t seed;            // generator seed
} shapes_params;

static const mpsl_param_spec shapes_spec[] = {
    MPSL_PARAM_INT(shapes_params, size, "size", 0, 4, 64, "8", "image side in pixels"),
    MPSL_PARAM_INT(shapes_params, n_train, "n_train", 0, 4, 1000000, "2000", "training samples"),
    MPSL_PARAM_INT(shapes_params, n_test, "n_test", 0, 4, 1000000, "500", "test samples"),
    MPSL_PARAM_FLOAT(shapes_params, noise, "noise", 0, 0, 10, "0.3", "pixel noise std"),
    MPSL_PARAM_INT(shapes_params, seed, "seed", 0, 0, 9.0e15, "1", "generator seed"),
};

enum { SHAPES_CLASSES = 4 };

/* 2. What stays open between calls: both splits, images and labels. */
typedef struct {
    const mpsl_host *h;
    int64_t S;             // image side
    int64_t n[2];          // samples, by mpsl_split
    float *x[2];           // (n, 1, S, S) images
    int32_t *y[2];         // (n) labels
} shapes_state;

/* Draw one image of class `label` into img (S,S), from the random stream r. */
static void shapes_draw(const mpsl_host *h, mpsl_rng *r, float *img, int64_t S, int32_t label,
                        double noise)
{
    int64_t row = h->rng->below(r, S), col = h->rng->below(r, S);
    for (int64_t i = 0; i < S; i++) {
        for (int64_t j = 0; j < S; j++) {
            int on = 0;
            switch (label) {
            case 0: on = i == row; break;
            case 1: on = j == col; break;
            case 2: on = i >= row % (S - 2) && i < row % (S - 2) + 3 &&
                         j >= col % (S - 2) && j < col % (S - 2) + 3; break;
            default: on = i == row || j == col; break;
            }
            img[i * S + j] = (float)(on + noise * h->rng->normal(r));
        }
    }
}

static void shapes_close(void *state)
{
    shapes_state *s = state;
    if (!s) {
        return;
    }
    for (int k = 0; k < 2; k++) {
        s->h->free(s->x[k]);
        s->h->free(s->y[k]);
    }
    s->h->free(s);
}

/* 3. open(): build the data and describe it in info. */
static int shapes_open(const mpsl_host *h, const void *params, const char *where,
                       mpsl_dataset_info *info, void **state, mpsl_error *err)
{
    const shapes_params *p = params;
    shapes_state *s = h->alloc(sizeof(*s));
    if (!s) {
        h->error_set(err, "%s: out of memory", where);
        return MPSL_ERR_NOMEM;
    }
    s->h = h;
    s->S = p->size;
    s->n[MPSL_SPLIT_TRAIN] = p->n_train;
    s->n[MPSL_SPLIT_TEST] = p->n_test;
    mpsl_rng r; // one stream for the whole dataset: the same seed gives the same data
    h->rng->seed(&r, (uint64_t)p->seed);
    for (int k = 0; k < 2; k++) {
        s->x[k] = h->alloc((size_t)(s->n[k] * s->S * s->S) * sizeof(float));
        s->y[k] = h->alloc((size_t)s->n[k] * sizeof(int32_t));
        if (!s->x[k] || !s->y[k]) {
            h->error_set(err, "%s: out of memory for %lld samples of %lldx%lld", where,
                         (long long)s->n[k], (long long)s->S, (long long)s->S);
            shapes_close(s);
            return MPSL_ERR_NOMEM;
        }
        for (int64_t i = 0; i < s->n[k]; i++) {
            s->y[k][i] = (int32_t)h->rng->below(&r, SHAPES_CLASSES);
            shapes_draw(h, &r, s->x[k] + i * s->S * s->S, s->S, s->y[k][i], p->noise);
        }
    }
    memset(info, 0, sizeof(*info));
    info->n_modalities = 1;
    strcpy(info->modality[0].name, "image"); // matched with model.tokenizers.image
    info->modality[0].dtype = MPSL_F32;
    info->modality[0].ndim = 3;              // per sample: (1, S, S)
    info->modality[0].shape[0] = 1;
    info->modality[0].shape[1] = s->S;
    info->modality[0].shape[2] = s->S;
    info->n_classes = SHAPES_CLASSES;
    info->n_train = s->n[MPSL_SPLIT_TRAIN];
    info->n_test = s->n[MPSL_SPLIT_TEST];
    *state = s;
    return MPSL_OK;
}

/* 4. labels(): all labels of a split; the host partitions clients with them. */
static const int32_t *shapes_labels(void *state, mpsl_split split)
{
    shapes_state *s = state;
    return s->y[split];
}

/* 5. fill(): copy samples idx[0..n) into a batch the host allocated for this info: each
 * modality's tensor holds n samples of its per-sample shape, back to back. The host sets
 * batch->n and the shapes itself. */
static int shapes_fill(void *state, mpsl_split split, const int64_t *idx, int64_t n,
                       mpsl_batch *batch, mpsl_error *err)
{
    shapes_state *s = state;
    int64_t F = s->S * s->S;
    float *x = batch->modality[0].data; // (n, 1, S, S)
    for (int64_t i = 0; i < n; i++) {
        if (idx[i] < 0 || idx[i] >= s->n[split]) {
            s->h->error_set(err, "my_dataset: sample %lld out of range (the split has %lld)",
                            (long long)idx[i], (long long)s->n[split]);
            return MPSL_ERR_INVALID;
        }
        memcpy(x + i * F, s->x[split] + idx[i] * F, (size_t)F * sizeof(float));
        batch->labels[i] = s->y[split][idx[i]];
    }
    return MPSL_OK;
}

/* 6. The function table, and the descriptor in one line: the name experiments write in
 * `plugin:`, a version, a summary, the table, and the parameters' struct and specs. */
static const mpsl_dataset_api shapes_api = {
    sizeof(mpsl_dataset_api), shapes_open, shapes_close, shapes_labels, shapes_fill,
    NULL, // prepare: nothing to download or convert
};

MPSL_PLUGIN(MPSL_KIND_DATASET, "my_dataset", "1.0.0",
            "tutorial: four shapes (bars, square, cross) in noisy grey images",
            &shapes_api, shapes_params, shapes_spec);
