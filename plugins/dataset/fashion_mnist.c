/* fashion_mnist.c: the Fashion-MNIST dataset plugin. Reads the four IDX files shipped by the
 * Debian package dataset-fashion-mnist (gzip-compressed) with the host's IDX reader (h->idx),
 * keeps the raw uint8 pixels in memory (47 MB for the training split) and converts to float on
 * fill().
 *
 * Sizes: B batch; every sample is one 1 x 28 x 28 greyscale image and a label in 0..9.
 * IDX format (big-endian): images: magic 2051, count, rows, cols, then count*rows*cols bytes;
 * labels: magic 2049, count, then count bytes. */
#include <mpsl/plugin.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "fashion_mnist_classes.h"

#define FM_ROWS 28
#define FM_COLS 28
#define FM_PIXELS (FM_ROWS * FM_COLS)
#define FM_CLASSES FMNIST_CLASSES
#define FM_MAGIC_IMAGES 2051u
#define FM_MAGIC_LABELS 2049u
#define FM_MEAN 0.2860f /* mean and std of the training pixels scaled to [0,1] */
#define FM_STD 0.3530f
#define FM_DEFAULT_DIR "/usr/share/datasets/fashion-mnist"
#define FM_HINT \
    "(install it with `apt-get install dataset-fashion-mnist`, or point data.dataset.dir " \
    "at the files)"

typedef enum { FM_NORM_UNIT = 0, FM_NORM_STANDARD = 1 } fm_norm;

typedef struct fm_params {
    const char *dir;
    int64_t train_limit;
    int64_t test_limit;
    int64_t train_skip;
    int normalize; /* fm_norm */
} fm_params;

static const mpsl_param_spec fm_spec[] = {
    MPSL_PARAM_STRING(fm_params, dir, "dir", 0, FM_DEFAULT_DIR,
                      "folder holding {train,t10k}-{images-idx3,labels-idx1}-ubyte.gz"),
    MPSL_PARAM_INT(fm_params, train_limit, "train_limit", 0, 0, 60000, "0",
                   "use only the first N training samples (0 = all 60000)"),
    MPSL_PARAM_INT(fm_params, test_limit, "test_limit", 0, 0, 10000, "0",
                   "use only the first N test samples (0 = all 10000)"),
    MPSL_PARAM_INT(fm_params, train_skip, "train_skip", 0, 0, 59999, "0",
                   "skip the first N training samples: the split is samples N..N+train_limit-1 "
                   "(to the end when train_limit is 0), e.g. to pretrain on images that a "
                   "fine-tuning run's first samples do not include"),
    MPSL_PARAM_ENUM(fm_params, normalize, "normalize", "unit|standard", "unit",
                    "unit: x/255; standard: (x/255 - 0.2860) / 0.3530"),
};

typedef struct fm_split {
    int64_t n;
    uint8_t *pixels;  /* (n, 28*28) */
    int32_t *labels;  /* (n) */
} fm_split;

typedef struct fm_state {
    const mpsl_host *h;
    int normalize;
    fm_split split[2]; /* MPSL_SPLIT_TRAIN, MPSL_SPLIT_TEST */
} fm_state;

/* Open one IDX file through the host's reader; a missing file gets the hint of how to install
 * the dataset. */
static int fm_open_idx(const mpsl_host *h, const char *path, int ndim, int64_t *dims,
                       mpsl_idx_file **f, mpsl_error *err)
{
    int rc = h->idx->open(path, ndim, dims, f, err);
    if (rc != MPSL_OK && access(path, F_OK) != 0 && errno == ENOENT) {
        mpsl_error why = *err; /* error_set must not read the buffer it writes */
        h->error_set(err, "%s " FM_HINT, why.msg);
    }
    return rc;
}

/* Load one split: `prefix` is "train" or "t10k". The split is the file's samples after the
 * first `skip`: all of them when limit = 0, else the next `limit` (skip + limit must not
 * exceed the file's count). The skipped samples are read and dropped: the reader streams. */
static int fm_load_split(const mpsl_host *h, const char *dir, const char *prefix,
                         const char *limit_key, int64_t limit, int64_t skip, const char *where,
                         fm_split *out, mpsl_error *err)
{
    char ipath[4096], lpath[4096];
    int n1 = snprintf(ipath, sizeof ipath, "%s/%s-images-idx3-ubyte.gz", dir, prefix);
    int n2 = snprintf(lpath, sizeof lpath, "%s/%s-labels-idx1-ubyte.gz", dir, prefix);
    if (n1 < 0 || (size_t)n1 >= sizeof ipath || n2 < 0 || (size_t)n2 >= sizeof lpath) {
        h->error_set(err, "fashion_mnist: the path of dir is too long");
        return MPSL_ERR_INVALID;
    }
    mpsl_idx_file *gi = NULL, *gl = NULL;
    uint8_t *raw_labels = NULL;
    int64_t idim[3], ldim[1];

    /* Open both and check the headers before reading any payload: mismatches fail fast. */
    int rc = fm_open_idx(h, ipath, 3, idim, &gi, err);
    if (rc != MPSL_OK) {
        goto done;
    }
    if (idim[1] != FM_ROWS || idim[2] != FM_COLS) {
        h->error_set(err, "fashion_mnist: %s holds %lldx%lld images, expected %dx%d", ipath,
                     (long long)idim[1], (long long)idim[2], FM_ROWS, FM_COLS);
        rc = MPSL_ERR_INVALID;
        goto done;
    }
    if ((rc = fm_open_idx(h, lpath, 1, ldim, &gl, err)) != MPSL_OK) {
        goto done;
    }
    if (idim[0] != ldim[0]) {
        h->error_set(err, "fashion_mnist: %s holds %lld images but %s holds %lld labels", ipath,
                     (long long)idim[0], lpath, (long long)ldim[0]);
        rc = MPSL_ERR_INVALID;
        goto done;
    }
    if (idim[0] == 0) {
        h->error_set(err, "fashion_mnist: %s holds no images", ipath);
        rc = MPSL_ERR_INVALID;
        goto done;
    }
    int64_t n = idim[0];
    if (skip >= n || (limit > 0 && skip + limit > n) || limit > n) {
        if (skip > 0) {
            h->error_set(err,
                         "%s: fashion_mnist: train_skip = %lld and %s = %lld ask for samples "
                         "beyond the %lld that %s holds",
                         where ? where : "data", (long long)skip, limit_key, (long long)limit,
                         (long long)n, ipath);
        } else {
            h->error_set(err, "%s: fashion_mnist: %s = %lld but %s holds only %lld samples",
                         where ? where : "data", limit_key, (long long)limit, ipath,
                         (long long)n);
        }
        rc = MPSL_ERR_INVALID;
        goto done;
    }
    int64_t read_n = limit > 0 ? skip + limit : n; /* samples read from the file's start */
    n = read_n - skip;

    out->pixels = h->alloc((size_t)read_n * FM_PIXELS);
    out->labels = h->alloc((size_t)n * sizeof *out->labels);
    raw_labels = h->alloc((size_t)read_n);
    if (!out->pixels || !out->labels || !raw_labels) {
        h->error_set(err, "fashion_mnist: out of memory for %lld samples of %s",
                     (long long)read_n, ipath);
        rc = MPSL_ERR_NOMEM;
        goto done;
    }
    /* Reading every sample also checks each file's end (gzip CRC, no extra data). */
    if ((rc = h->idx->read(gi, read_n, out->pixels, err)) != MPSL_OK ||
        (rc = h->idx->read(gl, read_n, raw_labels, err)) != MPSL_OK) {
        goto done;
    }
    if (skip > 0) {
        memmove(out->pixels, out->pixels + (size_t)skip * FM_PIXELS, (size_t)n * FM_PIXELS);
    }
    for (int64_t i = 0; i < n; i++) {
        uint8_t label = raw_labels[skip + i];
        if (label >= FM_CLASSES) {
            h->error_set(err, "fashion_mnist: %s: label %u of sample %lld is outside 0..%d",
                         lpath, label, (long long)(skip + i), FM_CLASSES - 1);
            rc = MPSL_ERR_INVALID;
            goto done;
        }
        out->labels[i] = label;
    }
    out->n = n;
done:
    h->idx->close(gi);
    h->idx->close(gl);
    h->free(raw_labels);
    if (rc != MPSL_OK) {
        h->free(out->pixels);
        h->free(out->labels);
        memset(out, 0, sizeof *out);
    }
    return rc;
}

static void fm_close(void *state)
{
    fm_state *s = state;
    if (!s) {
        return;
    }
    const mpsl_host *h = s->h;
    for (int i = 0; i < 2; i++) {
        h->free(s->split[i].pixels);
        h->free(s->split[i].labels);
    }
    h->free(s);
}

static int fm_open(const mpsl_host *h, const void *params, const char *where,
                   mpsl_dataset_info *info, void **state, mpsl_error *err)
{
    const fm_params *p = params;
    const char *dir = p && p->dir && p->dir[0] ? p->dir : FM_DEFAULT_DIR;
    *state = NULL;
    if (p && (p->train_limit < 0 || p->test_limit < 0 || p->train_skip < 0 || p->normalize < 0 ||
              p->normalize > FM_NORM_STANDARD)) {
        h->error_set(err, "%s: fashion_mnist: invalid parameters", where ? where : "data");
        return MPSL_ERR_INVALID;
    }
    fm_state *s = h->alloc(sizeof *s);
    if (!s) {
        h->error_set(err, "fashion_mnist: out of memory");
        return MPSL_ERR_NOMEM;
    }
    s->h = h;
    s->normalize = p ? p->normalize : FM_NORM_UNIT;
    int rc = fm_load_split(h, dir, "train", "train_limit", p ? p->train_limit : 0,
                           p ? p->train_skip : 0, where, &s->split[MPSL_SPLIT_TRAIN], err);
    if (rc == MPSL_OK) {
        rc = fm_load_split(h, dir, "t10k", "test_limit", p ? p->test_limit : 0, 0, where,
                           &s->split[MPSL_SPLIT_TEST], err);
    }
    if (rc != MPSL_OK) {
        fm_close(s);
        return rc;
    }
    memset(info, 0, sizeof *info);
    info->n_modalities = 1;
    mpsl_modality_info *m = &info->modality[0];
    snprintf(m->name, sizeof m->name, "image");
    m->dtype = MPSL_F32;
    m->ndim = 3;
    m->shape[0] = 1;
    m->shape[1] = FM_ROWS;
    m->shape[2] = FM_COLS;
    info->n_classes = FM_CLASSES;
    info->class_names = fmnist_class_names; /* static: valid beyond close() */
    info->n_train = s->split[MPSL_SPLIT_TRAIN].n;
    info->n_test = s->split[MPSL_SPLIT_TEST].n;
    h->log(MPSL_LOG_DEBUG, "fashion_mnist: %lld train and %lld test samples from %s",
           (long long)info->n_train, (long long)info->n_test, dir);
    *state = s;
    return MPSL_OK;
}

static const int32_t *fm_labels(void *state, mpsl_split split)
{
    fm_state *s = state;
    if (!s || (split != MPSL_SPLIT_TRAIN && split != MPSL_SPLIT_TEST)) {
        return NULL;
    }
    return s->split[split].labels;
}

static int fm_fill(void *state, mpsl_split split, const int64_t *idx, int64_t n,
                   mpsl_batch *batch, mpsl_error *err)
{
    fm_state *s = state;
    const mpsl_host *h = s->h;
    if (split != MPSL_SPLIT_TRAIN && split != MPSL_SPLIT_TEST) {
        h->error_set(err, "fashion_mnist: unknown split %d", (int)split);
        return MPSL_ERR_INVALID;
    }
    const fm_split *sp = &s->split[split];
    const char *name = split == MPSL_SPLIT_TRAIN ? "train" : "test";
    if (n < 0 || (n > 0 && !idx) || !batch || !batch->modality[0].data || !batch->labels) {
        h->error_set(err, "fashion_mnist: fill() called without indices or batch buffers");
        return MPSL_ERR_INTERNAL;
    }
    if (batch->modality[0].dtype != MPSL_F32) {
        h->error_set(err, "fashion_mnist: the image tensor of the batch must be float32");
        return MPSL_ERR_INTERNAL;
    }
    /* Check every index before touching the batch, so a refusal leaves it unchanged. */
    for (int64_t i = 0; i < n; i++) {
        if (idx[i] < 0 || idx[i] >= sp->n) {
            h->error_set(err,
                         "fashion_mnist: sample index %lld (batch position %lld) is out of "
                         "range for the %s split (%lld samples)",
                         (long long)idx[i], (long long)i, name, (long long)sp->n);
            return MPSL_ERR_INVALID;
        }
    }
    /* Lookup table: one multiply-add per pixel folded into 256 entries. */
    float lut[256];
    for (int v = 0; v < 256; v++) {
        float x = (float)v / 255.0f;
        lut[v] = s->normalize == FM_NORM_STANDARD ? (x - FM_MEAN) / FM_STD : x;
    }
    float *out = batch->modality[0].data; /* (B,1,28,28) */
    for (int64_t i = 0; i < n; i++) {
        const uint8_t *src = sp->pixels + idx[i] * FM_PIXELS;
        float *dst = out + i * FM_PIXELS;
        for (int j = 0; j < FM_PIXELS; j++) {
            dst[j] = lut[src[j]];
        }
        batch->labels[i] = sp->labels[idx[i]];
    }
    return MPSL_OK; /* the host sets batch->n and the tensors' shapes */
}

static const mpsl_dataset_api fm_api = {
    sizeof(mpsl_dataset_api), fm_open, fm_close, fm_labels, fm_fill,
    NULL, /* prepare: the Debian package ships the files ready to read */
};

MPSL_PLUGIN(MPSL_KIND_DATASET, "fashion_mnist", "1.0.0",
            "Fashion-MNIST 28x28 greyscale clothing images, 10 classes (Debian "
            "dataset-fashion-mnist)",
            &fm_api, fm_params, fm_spec);
