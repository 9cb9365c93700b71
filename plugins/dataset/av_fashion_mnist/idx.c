/* idx.c: reads the gzip-compressed IDX files of Debian's dataset-fashion-mnist (the same files
 * the fashion_mnist plugin reads; this is a small copy of its loader, kept separate so that
 * each plugin stays one self-contained module).
 * IDX (big-endian): images: magic 2051, count, rows, cols, pixels; labels: magic 2049, count,
 * labels. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "avf.h"

static uint32_t avf_be32(const unsigned char *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | (uint32_t)b[3];
}

static gzFile avf_gzopen(const mpsl_host *h, const char *path, mpsl_error *err)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        int e = errno;
        h->error_set(err, "av_fashion_mnist: cannot open %s: %s%s", path, strerror(e),
                     e == ENOENT ? " " AVF_FMNIST_HINT : "");
        return NULL;
    }
    gzFile gz = S_ISDIR(st.st_mode) ? NULL : gzopen(path, "rb");
    if (!gz) {
        h->error_set(err, "av_fashion_mnist: cannot open %s as a gzip file", path);
        return NULL;
    }
    gzbuffer(gz, 1 << 17);
    return gz;
}

/* Read exactly want bytes, naming the file and what was being read on a short read. */
static int avf_gzread_all(const mpsl_host *h, gzFile gz, const char *path, void *buf,
                          size_t want, const char *what, mpsl_error *err)
{
    size_t got = 0;
    while (got < want) {
        size_t chunk = want - got > (1u << 30) ? (1u << 30) : want - got;
        int r = gzread(gz, (unsigned char *)buf + got, (unsigned)chunk);
        if (r < 0) {
            int zerr = 0;
            h->error_set(err, "av_fashion_mnist: %s is corrupt: %s", path, gzerror(gz, &zerr));
            return MPSL_ERR_IO;
        }
        if (r == 0) {
            break;
        }
        got += (size_t)r;
    }
    if (got < want) {
        h->error_set(err, "av_fashion_mnist: %s is truncated: expected %zu bytes of %s, got %zu",
                     path, want, what, got);
        return MPSL_ERR_IO;
    }
    return MPSL_OK;
}

/* Open path and check its header: magic, and for images 28x28. dims receives the fields. */
static gzFile avf_idx_open(const mpsl_host *h, const char *path, uint32_t magic, int n_dims,
                           uint32_t *dims, mpsl_error *err)
{
    gzFile gz = avf_gzopen(h, path, err);
    if (!gz) {
        return NULL;
    }
    unsigned char b[16];
    if (avf_gzread_all(h, gz, path, b, 4 + 4 * (size_t)n_dims, "header", err) != MPSL_OK) {
        gzclose(gz);
        return NULL;
    }
    if (gzdirect(gz) || avf_be32(b) != magic) {
        h->error_set(err, "av_fashion_mnist: %s is not a gzip-compressed IDX %s file (magic %u, "
                          "expected %u)",
                     path, magic == 2051u ? "images" : "labels", avf_be32(b), magic);
        gzclose(gz);
        return NULL;
    }
    for (int i = 0; i < n_dims; i++) {
        dims[i] = avf_be32(b + 4 + 4 * i);
    }
    return gz;
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
    uint32_t idim[3] = {0}, ldim[1] = {0};
    uint8_t *raw = NULL;
    int rc = MPSL_ERR_IO;
    gzFile gi = avf_idx_open(h, ipath, 2051u, 3, idim, err);
    gzFile gl = gi ? avf_idx_open(h, lpath, 2049u, 1, ldim, err) : NULL;
    if (!gi || !gl) {
        goto done;
    }
    rc = MPSL_ERR_INVALID;
    if (idim[1] != AVF_SIDE || idim[2] != AVF_SIDE) {
        h->error_set(err, "av_fashion_mnist: %s holds %ux%u images, expected %dx%d", ipath,
                     idim[1], idim[2], AVF_SIDE, AVF_SIDE);
        goto done;
    }
    if (idim[0] != ldim[0] || idim[0] == 0) {
        h->error_set(err, "av_fashion_mnist: %s holds %u images but %s holds %u labels", ipath,
                     idim[0], lpath, ldim[0]);
        goto done;
    }
    if (n > (int64_t)idim[0]) {
        h->error_set(err, "av_fashion_mnist: %s = %lld but %s holds only %u samples", limit_key,
                     (long long)n, ipath, idim[0]);
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
    if ((rc = avf_gzread_all(h, gl, lpath, raw, (size_t)all, "labels", err)) != MPSL_OK ||
        (rc = avf_gzread_all(h, gi, ipath, *images, (size_t)take * AVF_PIXELS, "pixels",
                             err)) != MPSL_OK) {
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
    if (gi) {
        gzclose(gi);
    }
    if (gl) {
        gzclose(gl);
    }
    h->free(raw);
    if (rc != MPSL_OK) {
        h->free(*labels);
        h->free(*images);
        *labels = NULL;
        *images = NULL;
    }
    return rc;
}
