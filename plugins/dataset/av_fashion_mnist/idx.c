/* idx.c: the Fashion-MNIST files of Debian's dataset-fashion-mnist (gzip-compressed IDX, the
 * files the fashion_mnist plugin reads too), through the host's IDX reader (h->idx): what is
 * particular to this dataset is only that images are 28x28 and labels lie in 0..9. */
#include <errno.h>
#include <stdio.h>
#include <unistd.h>

#include "avf.h"

/* Open one IDX file; a missing file gets the hint of how to install the dataset. */
static int avf_idx_open(const mpsl_host *h, const char *path, int ndim, int64_t *dims,
                        mpsl_idx_file **f, mpsl_error *err)
{
    int rc = h->idx->open(path, ndim, dims, f, err);
    if (rc != MPSL_OK && access(path, F_OK) != 0 && errno == ENOENT) {
        mpsl_error why = *err; /* error_set must not read the buffer it writes */
        h->error_set(err, "%s %s", why.msg, AVF_FMNIST_HINT);
    }
    return rc;
}

int avf_idx_load(const mpsl_host *h, const char *dir, const char *prefix, const char *limit_key,
                 int64_t n, int32_t **labels, int64_t *n_all, uint8_t **images,
                 int64_t *n_images, mpsl_error *err)
{
    char ipath[4096], lpath[4096];
    *labels = NULL;
    *images = NULL;
    if ((size_t)snprintf(ipath, sizeof ipath, "%s/%s-images-idx3-ubyte.gz", dir, prefix) >=
            sizeof ipath ||
        (size_t)snprintf(lpath, sizeof lpath, "%s/%s-labels-idx1-ubyte.gz", dir, prefix) >=
            sizeof lpath) {
        h->error_set(err, "av_fashion_mnist: the path of dir is too long");
        return MPSL_ERR_INVALID;
    }
    int64_t idim[3] = {0}, ldim[1] = {0};
    mpsl_idx_file *gi = NULL, *gl = NULL;
    uint8_t *raw = NULL;
    int rc = avf_idx_open(h, ipath, 3, idim, &gi, err);
    if (rc == MPSL_OK) {
        rc = avf_idx_open(h, lpath, 1, ldim, &gl, err);
    }
    if (rc != MPSL_OK) {
        goto done;
    }
    rc = MPSL_ERR_INVALID;
    if (idim[1] != AVF_SIDE || idim[2] != AVF_SIDE) {
        h->error_set(err, "av_fashion_mnist: %s holds %lldx%lld images, expected %dx%d", ipath,
                     (long long)idim[1], (long long)idim[2], AVF_SIDE, AVF_SIDE);
        goto done;
    }
    if (idim[0] != ldim[0] || idim[0] == 0) {
        h->error_set(err, "av_fashion_mnist: %s holds %lld images but %s holds %lld labels",
                     ipath, (long long)idim[0], lpath, (long long)ldim[0]);
        goto done;
    }
    if (n > idim[0]) {
        h->error_set(err, "av_fashion_mnist: %s = %lld but %s holds only %lld samples", limit_key,
                     (long long)n, ipath, (long long)idim[0]);
        goto done;
    }
    int64_t all = idim[0], take = n > 0 ? n : all;
    raw = h->alloc((size_t)all);
    *labels = h->alloc((size_t)all * sizeof **labels);
    *images = h->alloc((size_t)take * AVF_PIXELS);
    if (!raw || !*labels || !*images) {
        h->error_set(err, "av_fashion_mnist: out of memory reading %s", ipath);
        rc = MPSL_ERR_NOMEM;
        goto done;
    }
    if ((rc = h->idx->read(gl, all, raw, err)) != MPSL_OK ||
        (rc = h->idx->read(gi, take, *images, err)) != MPSL_OK) {
        goto done;
    }
    for (int64_t i = 0; i < all; i++) {
        if (raw[i] >= AVF_CLASSES) {
            h->error_set(err, "av_fashion_mnist: %s: label %u of sample %lld is outside 0..%d",
                         lpath, raw[i], (long long)i, AVF_CLASSES - 1);
            rc = MPSL_ERR_INVALID;
            goto done;
        }
        (*labels)[i] = raw[i];
    }
    *n_all = all;
    *n_images = take;
    rc = MPSL_OK;
done:
    h->idx->close(gi);
    h->idx->close(gl);
    h->free(raw);
    if (rc != MPSL_OK) {
        h->free(*labels);
        h->free(*images);
        *labels = NULL;
        *images = NULL;
    }
    return rc;
}
