/* idx.c: IDX files of unsigned bytes through zlib, which reads gzip-compressed and plain
 * files alike (gzdirect() tells which it was). Layout (big-endian): magic 0x0000 08 NDIM,
 * NDIM 32-bit dimensions, then dims[0] items of dims[1] * ... bytes. */
#include "util/idx.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "util/util.h"

#define IDX_TYPE_U8 0x08u

struct mpsl_idx_file {
    gzFile gz;
    char *path;
    int64_t items, item_bytes; /* from the header */
    int64_t done;              /* items read so far */
};

static uint32_t be32(const unsigned char *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | (uint32_t)b[3];
}

/* zlib's reason for the last error, without the "path: " it puts in front. */
static const char *zreason(mpsl_idx_file *f)
{
    int zerr = 0;
    const char *msg = gzerror(f->gz, &zerr);
    if (zerr == Z_ERRNO) {
        return strerror(errno);
    }
    size_t len = strlen(f->path);
    if (strncmp(msg, f->path, len) == 0 && msg[len] == ':' && msg[len + 1] == ' ') {
        msg += len + 2;
    }
    return msg;
}

/* Read up to want bytes; *got receives how many came (fewer only at the end of the data). */
static int read_bytes(mpsl_idx_file *f, void *buf, size_t want, size_t *got, mpsl_error *err)
{
    unsigned char *p = buf;
    *got = 0;
    while (*got < want) {
        size_t chunk = want - *got > (1u << 30) ? (1u << 30) : want - *got;
        int r = gzread(f->gz, p + *got, (unsigned)chunk);
        if (r < 0) {
            return mpsl_errs(err, MPSL_ERR_IO, "%s is corrupt: %s", f->path, zreason(f));
        }
        if (r == 0) {
            break;
        }
        *got += (size_t)r;
    }
    return MPSL_OK;
}

void mpsl_idx_close(mpsl_idx_file *f)
{
    if (!f) {
        return;
    }
    if (f->gz) {
        gzclose(f->gz);
    }
    free(f->path);
    free(f);
}

int mpsl_idx_open(const char *path, int ndim, int64_t *dims, mpsl_idx_file **out,
                  mpsl_error *err)
{
    *out = NULL;
    if (ndim < 1 || ndim > MPSL_IDX_MAX_DIMS) {
        return mpsl_errs(err, MPSL_ERR_INTERNAL, "%s: an IDX file has 1 to %d dimensions, not %d",
                         path, MPSL_IDX_MAX_DIMS, ndim);
    }
    /* stat first: gzopen's own reasons are vaguer, and it would open a folder. */
    struct stat st;
    if (stat(path, &st) != 0) {
        return mpsl_errs(err, MPSL_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    }
    if (S_ISDIR(st.st_mode)) {
        return mpsl_errs(err, MPSL_ERR_IO, "%s is a folder, expected an IDX file", path);
    }
    mpsl_idx_file *f = calloc(1, sizeof *f);
    if (!f || !(f->path = mpsl_strdup(path))) {
        free(f);
        return mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory opening %s", path);
    }
    errno = 0;
    f->gz = gzopen(path, "rb");
    if (!f->gz) {
        int rc = mpsl_errs(err, MPSL_ERR_IO, "cannot open %s: %s", path,
                           errno ? strerror(errno) : "out of memory");
        mpsl_idx_close(f);
        return rc;
    }
    gzbuffer(f->gz, 1 << 17);
    unsigned char b[4 + 4 * MPSL_IDX_MAX_DIMS];
    size_t want = 4 + 4 * (size_t)ndim, got = 0;
    int rc = read_bytes(f, b, want, &got, err);
    uint32_t magic = got >= 4 ? be32(b) : 0, expected = IDX_TYPE_U8 << 8 | (uint32_t)ndim;
    if (rc == MPSL_OK && got >= 4 && magic != expected && gzdirect(f->gz)) {
        rc = mpsl_err(err, "%s is neither a gzip-compressed nor a plain IDX file (read as IDX, "
                           "its magic number is %u, expected %u)",
                      path, magic, expected);
    } else if (rc == MPSL_OK && got >= 4 && magic != expected) {
        rc = mpsl_err(err, "%s has magic number %u, expected %u (an IDX file of unsigned bytes "
                           "in %d dimension%s)",
                      path, magic, expected, ndim, ndim == 1 ? "" : "s");
    } else if (rc == MPSL_OK && got < want) {
        rc = mpsl_errs(err, MPSL_ERR_IO, "%s is truncated: expected a %zu-byte IDX header, got "
                                         "%zu bytes",
                       path, want, got);
    }
    if (rc != MPSL_OK) {
        mpsl_idx_close(f);
        return rc;
    }
    f->items = be32(b + 4);
    f->item_bytes = 1;
    dims[0] = f->items;
    for (int i = 1; i < ndim; i++) {
        dims[i] = be32(b + 4 + 4 * i);
        f->item_bytes *= dims[i];
    }
    *out = f;
    return MPSL_OK;
}

/* After the last item: one more read makes zlib check the gzip trailer (CRC and length), and
 * shows data the header does not account for. */
static int check_end(mpsl_idx_file *f, mpsl_error *err)
{
    unsigned char extra;
    size_t got = 0;
    int rc = read_bytes(f, &extra, 1, &got, err);
    if (rc == MPSL_OK && got > 0) {
        rc = mpsl_err(err, "%s holds more data than the %lld items its header announces",
                      f->path, (long long)f->items);
    }
    return rc;
}

int mpsl_idx_read(mpsl_idx_file *f, int64_t n, uint8_t *dst, mpsl_error *err)
{
    if (n < 0 || n > f->items - f->done) {
        return mpsl_errs(err, MPSL_ERR_INTERNAL, "%s: asked for %lld more items, %lld of its "
                                                 "%lld are left",
                         f->path, (long long)n, (long long)(f->items - f->done),
                         (long long)f->items);
    }
    size_t want = (size_t)n * (size_t)f->item_bytes, got = 0;
    int rc = read_bytes(f, dst, want, &got, err);
    if (rc != MPSL_OK) {
        return rc;
    }
    if (got < want) {
        return mpsl_errs(err, MPSL_ERR_IO, "%s is truncated: expected %zu bytes of items %lld.."
                                           "%lld, got %zu",
                         f->path, want, (long long)f->done, (long long)(f->done + n - 1), got);
    }
    f->done += n;
    return f->done == f->items ? check_end(f, err) : MPSL_OK;
}
