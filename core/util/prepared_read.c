/* prepared_read.c: a prepared dataset file (mpsl/prepared_format.h) through mmap. open()
 * validates everything before handing anything out, each refusal naming the file and what was
 * expected: the magic, the version, header_bytes, the modality table, that the file is
 * exactly header_bytes + payload_bytes long and that payload_bytes is what the counts and
 * shapes imply, every label, and (verify) the payload's CRC32. Labels are copied out (a few
 * bytes per sample, and they may sit unaligned in the file); samples stay in the mapping and
 * are converted as they are read: u8/f16/f32 -> float32 (stored * scale + offset), i32 as is. */
#include "util/prepared_read.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "mpsl/prepared_format.h"
#include "util/half.h"
#include "util/util.h"

struct mpsl_prepared {
    char *path;
    unsigned char *map;
    size_t map_len;
    mpsl_prep_header hdr;
    mpsl_prep_modality mod[MPSL_PREP_MAX_MODALITIES];
    int64_t numel[MPSL_PREP_MAX_MODALITIES];  /* elements per sample */
    size_t elem[MPSL_PREP_MAX_MODALITIES];    /* bytes per stored element */
    int64_t n[2];                             /* samples per split */
    int32_t *labels[2];
    const unsigned char *data[2][MPSL_PREP_MAX_MODALITIES]; /* first sample in the mapping */
    float lut[MPSL_PREP_MAX_MODALITIES][256];  /* u8 -> float, per modality */
};

static const char *const split_name[2] = {"train", "test"};

void mpsl_prepared_close(mpsl_prepared *f)
{
    if (!f) {
        return;
    }
    if (f->map) {
        munmap(f->map, f->map_len);
    }
    free(f->labels[0]);
    free(f->labels[1]);
    free(f->path);
    free(f);
}

/* The header's fixed fields. */
static int check_header(const mpsl_prepared *f, uint64_t file_len, mpsl_error *err)
{
    const char *path = f->path;
    const mpsl_prep_header *hd = &f->hdr;
    if (memcmp(hd->magic, MPSL_PREP_MAGIC, 8) != 0) {
        return mpsl_err(err, "%s is not a prepared dataset file (magic '%.8s', expected '%s'; "
                             "write one with `mpsl convert`)",
                        path, hd->magic, MPSL_PREP_MAGIC);
    }
    if (hd->version != MPSL_PREP_VERSION) {
        return mpsl_err(err, "%s has format version %u, %s (this mpsl reads version %u)", path,
                        hd->version,
                        hd->version > MPSL_PREP_VERSION ? "newer than this mpsl: update mpsl"
                                                        : "which does not exist",
                        MPSL_PREP_VERSION);
    }
    if (hd->task != MPSL_PREP_CLASSIFICATION && hd->task != MPSL_PREP_RETRIEVAL) {
        return mpsl_err(err, "%s: unknown task %u, expected 0 (classification) or 1 "
                             "(retrieval)", path, hd->task);
    }
    if (hd->n_modalities < 1 || hd->n_modalities > MPSL_PREP_MAX_MODALITIES) {
        return mpsl_err(err, "%s: %u modalities, expected 1..%d", path, hd->n_modalities,
                        MPSL_PREP_MAX_MODALITIES);
    }
    if (hd->task == MPSL_PREP_CLASSIFICATION && (hd->n_classes < 1 || hd->n_classes > 100000)) {
        return mpsl_err(err, "%s: %u classes, expected 1..100000 for classification", path,
                        hd->n_classes);
    }
    if (hd->task == MPSL_PREP_RETRIEVAL && hd->n_classes != 0) {
        return mpsl_err(err, "%s: a retrieval file has n_classes 0, not %u", path,
                        hd->n_classes);
    }
    uint64_t need = sizeof(mpsl_prep_header) +
                    (uint64_t)hd->n_modalities * sizeof(mpsl_prep_modality) +
                    (uint64_t)hd->n_classes * MPSL_PREP_CLASS_NAME;
    if (hd->header_bytes % 64 != 0 || hd->header_bytes < need || hd->header_bytes > need + 64) {
        return mpsl_err(err, "%s: header_bytes %u, expected %llu rounded up to a multiple of 64 "
                             "(%u modalities, %u classes)",
                        path, hd->header_bytes, (unsigned long long)need, hd->n_modalities,
                        hd->n_classes);
    }
    if (hd->header_bytes > file_len) {
        return mpsl_errs(err, MPSL_ERR_IO, "%s is truncated: %llu bytes, shorter than its "
                                           "%u-byte header",
                         path, (unsigned long long)file_len, hd->header_bytes);
    }
    if (memchr(hd->source, '\0', sizeof hd->source) == NULL) {
        return mpsl_err(err, "%s: the source field is not NUL-terminated", path);
    }
    const uint64_t max_count = (uint64_t)1 << 40;
    if (hd->n_train > max_count || hd->n_test > max_count) {
        return mpsl_err(err, "%s: implausible sample counts (%llu train, %llu test)", path,
                        (unsigned long long)hd->n_train, (unsigned long long)hd->n_test);
    }
    return MPSL_OK;
}

/* One modality entry; fills numel and elem. */
static int check_modality(mpsl_prepared *f, uint32_t m, mpsl_error *err)
{
    const char *path = f->path;
    const mpsl_prep_modality *md = &f->mod[m];
    if (md->name[0] == '\0' || memchr(md->name, '\0', sizeof md->name) == NULL) {
        return mpsl_err(err, "%s: modality %u has no NUL-terminated name", path, m);
    }
    size_t es = mpsl_prep_storage_bytes(md->storage);
    if (es == 0) {
        return mpsl_err(err, "%s: modality '%s' has storage %u, expected 0 (u8), 1 (f16), 2 "
                             "(f32) or 3 (i32)", path, md->name, md->storage);
    }
    if (md->ndim < 1 || md->ndim > 3) {
        return mpsl_err(err, "%s: modality '%s' has %u dimensions, expected 1..3", path,
                        md->name, md->ndim);
    }
    uint64_t numel = 1;
    for (uint32_t d = 0; d < 3; d++) {
        if (d < md->ndim && (md->shape[d] < 1 || md->shape[d] > ((uint64_t)1 << 31))) {
            return mpsl_err(err, "%s: modality '%s': dimension %u is %llu, expected 1..2^31",
                            path, md->name, d, (unsigned long long)md->shape[d]);
        }
        if (d >= md->ndim && md->shape[d] != 0) {
            return mpsl_err(err, "%s: modality '%s': shape[%u] = %llu beyond its %u "
                                 "dimensions, expected 0",
                            path, md->name, d, (unsigned long long)md->shape[d], md->ndim);
        }
        if (d < md->ndim) {
            numel *= md->shape[d];
            if (numel > ((uint64_t)1 << 36)) {
                return mpsl_err(err, "%s: modality '%s': a sample of more than 2^36 elements",
                                path, md->name);
            }
        }
    }
    if (md->storage != MPSL_PREP_I32 &&
        (!isfinite(md->scale) || !isfinite(md->offset) || md->scale == 0.0f)) {
        return mpsl_err(err, "%s: modality '%s': scale %g and offset %g must be finite, the "
                             "scale non-zero",
                        path, md->name, (double)md->scale, (double)md->offset);
    }
    for (uint32_t k = 0; k < m; k++) {
        if (strcmp(f->mod[k].name, md->name) == 0) {
            return mpsl_err(err, "%s: two modalities are named '%s'", path, md->name);
        }
    }
    f->numel[m] = (int64_t)numel;
    f->elem[m] = es;
    return MPSL_OK;
}

/* The modality table, then the payload's size against the counts and shapes. */
static int check_layout(mpsl_prepared *f, uint64_t file_len, mpsl_error *err)
{
    const mpsl_prep_header *hd = &f->hdr;
    uint64_t per = 4; /* the label */
    for (uint32_t m = 0; m < hd->n_modalities; m++) {
        int rc = check_modality(f, m, err);
        if (rc != MPSL_OK) {
            return rc;
        }
        per += (uint64_t)f->numel[m] * f->elem[m];
    }
    uint64_t n = hd->n_train + hd->n_test;
    if (n > 0 && per > UINT64_MAX / 2 / n) {
        return mpsl_err(err, "%s: the payload size overflows", f->path);
    }
    uint64_t payload = per * n;
    if (hd->payload_bytes != payload) {
        return mpsl_err(err, "%s: payload_bytes is %llu, but %llu train + %llu test samples of "
                             "%llu bytes (label and modalities) need %llu",
                        f->path, (unsigned long long)hd->payload_bytes,
                        (unsigned long long)hd->n_train, (unsigned long long)hd->n_test,
                        (unsigned long long)per, (unsigned long long)payload);
    }
    uint64_t want = hd->header_bytes + payload;
    if (file_len != want) {
        return mpsl_errs(err, file_len < want ? MPSL_ERR_IO : MPSL_ERR_INVALID,
                         "%s is %s: %llu bytes, expected exactly %llu (a %u-byte header and "
                         "%llu bytes of samples)",
                         f->path, file_len < want ? "truncated" : "longer than its header says",
                         (unsigned long long)file_len, (unsigned long long)want,
                         hd->header_bytes, (unsigned long long)payload);
    }
    return MPSL_OK;
}

static int check_crc(const mpsl_prepared *f, mpsl_error *err)
{
    double t0 = mpsl_now();
    const unsigned char *payload = f->map + f->hdr.header_bytes;
    uint64_t bytes = f->hdr.payload_bytes;
    madvise(f->map, f->map_len, MADV_SEQUENTIAL);
    uint32_t crc = (uint32_t)crc32_z(crc32_z(0L, Z_NULL, 0), payload, (size_t)bytes);
    madvise(f->map, f->map_len, MADV_NORMAL);
    if (crc != f->hdr.crc32) {
        return mpsl_err(err, "%s is corrupt: the payload's CRC32 is %08x, the header says %08x "
                             "(convert it again)",
                        f->path, crc, f->hdr.crc32);
    }
    double dt = mpsl_now() - t0;
    mpsl_log(MPSL_LOG_DEBUG, "CRC32 of %s verified: %.1f MB in %.3f s (%.2f s per GB)", f->path,
             (double)bytes / 1e6, dt, bytes > 0 ? dt / ((double)bytes / 1e9) : 0.0);
    return MPSL_OK;
}

/* Point each split's modalities into the mapping, copy and check the labels. */
static int map_splits(mpsl_prepared *f, mpsl_error *err)
{
    const unsigned char *at = f->map + f->hdr.header_bytes;
    const int retrieval = f->hdr.task == MPSL_PREP_RETRIEVAL;
    for (int sp = 0; sp < 2; sp++) {
        int64_t n = f->n[sp];
        f->labels[sp] = malloc((size_t)(n > 0 ? n : 1) * sizeof(int32_t));
        if (!f->labels[sp]) {
            return mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory for the labels of %s", f->path);
        }
        memcpy(f->labels[sp], at, (size_t)n * sizeof(int32_t));
        for (int64_t i = 0; i < n; i++) {
            int32_t l = f->labels[sp][i];
            if (retrieval && l != i) {
                return mpsl_err(err, "%s: %s label %lld is %d; a retrieval label must be the "
                                     "sample's index",
                                f->path, split_name[sp], (long long)i, l);
            }
            if (!retrieval && (l < 0 || (uint32_t)l >= f->hdr.n_classes)) {
                return mpsl_err(err, "%s: %s label %lld is %d, outside 0..%u", f->path,
                                split_name[sp], (long long)i, l, f->hdr.n_classes - 1);
            }
        }
        at += (size_t)n * sizeof(int32_t);
        for (uint32_t m = 0; m < f->hdr.n_modalities; m++) {
            f->data[sp][m] = at;
            at += (size_t)n * (size_t)f->numel[m] * f->elem[m];
        }
    }
    return MPSL_OK;
}

static void describe(const mpsl_prepared *f, mpsl_prepared_info *info)
{
    memset(info, 0, sizeof *info);
    info->task = f->hdr.task == MPSL_PREP_RETRIEVAL ? MPSL_TASK_RETRIEVAL
                                                    : MPSL_TASK_CLASSIFICATION;
    info->n_classes = f->hdr.n_classes;
    info->n[0] = f->n[0];
    info->n[1] = f->n[1];
    info->n_modalities = (int)f->hdr.n_modalities;
    for (int m = 0; m < info->n_modalities; m++) {
        const mpsl_prep_modality *md = &f->mod[m];
        mpsl_modality_info *mi = &info->modality[m];
        memcpy(mi->name, md->name, sizeof mi->name); /* both 32 bytes, NUL-terminated */
        mi->dtype = md->storage == MPSL_PREP_I32 ? MPSL_I32 : MPSL_F32;
        mi->ndim = (int)md->ndim;
        for (uint32_t d = 0; d < md->ndim; d++) {
            mi->shape[d] = (int64_t)md->shape[d];
        }
    }
    memcpy(info->source, f->hdr.source, sizeof info->source);
}

/* Open and map path; the header and modality table are copied out of the mapping. */
static int map_file(mpsl_prepared *f, mpsl_error *err)
{
    int fd = open(f->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        return mpsl_errs(err, MPSL_ERR_IO, "cannot open %s: %s%s", f->path, strerror(e),
                         e == ENOENT ? " (write it with `mpsl convert NAME --in RAW_DIR --out "
                                       "FILE`)" : "");
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return mpsl_errs(err, MPSL_ERR_IO, "%s is not a regular file", f->path);
    }
    if ((uint64_t)st.st_size < sizeof(mpsl_prep_header)) {
        close(fd);
        return mpsl_errs(err, MPSL_ERR_IO, "%s is truncated: %llu bytes, shorter than the "
                                           "%zu-byte header of a prepared file",
                         f->path, (unsigned long long)st.st_size, sizeof(mpsl_prep_header));
    }
    void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (map == MAP_FAILED) {
        return mpsl_errs(err, MPSL_ERR_IO, "cannot map %s: %s", f->path, strerror(e));
    }
    f->map = map;
    f->map_len = (size_t)st.st_size;
    memcpy(&f->hdr, f->map, sizeof f->hdr);
    uint32_t nm = f->hdr.n_modalities;
    if (nm >= 1 && nm <= MPSL_PREP_MAX_MODALITIES &&
        sizeof(mpsl_prep_header) + nm * sizeof(mpsl_prep_modality) <= f->map_len) {
        memcpy(f->mod, f->map + sizeof(mpsl_prep_header), nm * sizeof(mpsl_prep_modality));
    }
    return MPSL_OK;
}

static void decode(const mpsl_prepared *f, int m, const unsigned char *src, void *dst);

/* Every float a sample decodes to is finite (part of verify: a NaN in the data would end a
 * run much later, far from its cause). */
static int check_finite(const mpsl_prepared *f, mpsl_error *err)
{
    int64_t most = 1;
    for (uint32_t m = 0; m < f->hdr.n_modalities; m++) {
        most = f->numel[m] > most ? f->numel[m] : most;
    }
    float *buf = malloc((size_t)most * sizeof(float));
    if (!buf) {
        return mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory verifying %s", f->path);
    }
    int rc = MPSL_OK;
    for (int sp = 0; sp < 2 && rc == MPSL_OK; sp++) {
        for (uint32_t m = 0; m < f->hdr.n_modalities && rc == MPSL_OK; m++) {
            if (f->mod[m].storage == MPSL_PREP_I32) {
                continue;
            }
            size_t stride = (size_t)f->numel[m] * f->elem[m];
            for (int64_t i = 0; i < f->n[sp] && rc == MPSL_OK; i++) {
                decode(f, (int)m, f->data[sp][m] + (size_t)i * stride, buf);
                for (int64_t k = 0; k < f->numel[m]; k++) {
                    if (!isfinite(buf[k])) {
                        rc = mpsl_err(err, "%s: %s sample %lld holds %g in modality '%.*s' "
                                      "(element %lld): the file's data must be finite",
                                      f->path, split_name[sp], (long long)i, buf[k],
                                      (int)sizeof f->mod[m].name, f->mod[m].name, (long long)k);
                        break;
                    }
                }
            }
        }
    }
    free(buf);
    return rc;
}

int mpsl_prepared_open(const char *path, int verify, mpsl_prepared **out,
                       mpsl_prepared_info *info, mpsl_error *err)
{
    *out = NULL;
    mpsl_prepared *f = calloc(1, sizeof *f);
    if (!f || !(f->path = mpsl_strdup(path))) {
        free(f);
        return mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory opening %s", path);
    }
    int rc = map_file(f, err);
    if (rc == MPSL_OK) {
        rc = check_header(f, f->map_len, err);
    }
    if (rc == MPSL_OK) {
        rc = check_layout(f, f->map_len, err);
    }
    if (rc == MPSL_OK && verify) {
        rc = check_crc(f, err);
    }
    if (rc == MPSL_OK) {
        f->n[0] = (int64_t)f->hdr.n_train;
        f->n[1] = (int64_t)f->hdr.n_test;
        rc = map_splits(f, err);
    }
    if (rc == MPSL_OK) {
        for (uint32_t m = 0; m < f->hdr.n_modalities; m++) {
            for (int v = 0; v < 256; v++) {
                f->lut[m][v] = (float)v * f->mod[m].scale + f->mod[m].offset;
            }
        }
    }
    if (rc == MPSL_OK && verify) {
        rc = check_finite(f, err);
    }
    if (rc != MPSL_OK) {
        mpsl_prepared_close(f);
        return rc;
    }
    describe(f, info);
    *out = f;
    return MPSL_OK;
}

const int32_t *mpsl_prepared_labels(const mpsl_prepared *f, mpsl_split split)
{
    return split == MPSL_SPLIT_TRAIN || split == MPSL_SPLIT_TEST ? f->labels[split] : NULL;
}

/* One sample of modality m from src into dst, converted to float32 (or copied for i32). */
static void decode(const mpsl_prepared *f, int m, const unsigned char *src, void *dst)
{
    const mpsl_prep_modality *md = &f->mod[m];
    const int64_t E = f->numel[m];
    if (md->storage == MPSL_PREP_I32) {
        memcpy(dst, src, (size_t)E * sizeof(int32_t));
        return;
    }
    float *out = dst;
    const float scale = md->scale, offset = md->offset;
    switch (md->storage) {
    case MPSL_PREP_U8:
        for (int64_t k = 0; k < E; k++) {
            out[k] = f->lut[m][src[k]];
        }
        break;
    case MPSL_PREP_F16:
        for (int64_t k = 0; k < E; k++) {
            uint16_t v;
            memcpy(&v, src + 2 * k, 2); /* may be unaligned in the file */
            out[k] = mpsl_f16_to_f32(v) * scale + offset;
        }
        break;
    default: /* F32 */
        for (int64_t k = 0; k < E; k++) {
            float v;
            memcpy(&v, src + 4 * k, 4);
            out[k] = v * scale + offset;
        }
        break;
    }
}

int mpsl_prepared_read(const mpsl_prepared *f, mpsl_split split, int m, const int64_t *idx,
                       int64_t n, void *dst, mpsl_error *err)
{
    if ((split != MPSL_SPLIT_TRAIN && split != MPSL_SPLIT_TEST) || m < 0 ||
        m >= (int)f->hdr.n_modalities || n < 0 || (n > 0 && (!idx || !dst))) {
        return mpsl_errs(err, MPSL_ERR_INTERNAL, "%s: read of split %d, modality %d, %lld "
                                                 "samples: no such split or modality, or no "
                                                 "buffers",
                         f->path, (int)split, m, (long long)n);
    }
    for (int64_t i = 0; i < n; i++) {
        if (idx[i] < 0 || idx[i] >= f->n[split]) {
            return mpsl_err(err, "%s: sample index %lld (position %lld) is out of range for the "
                                 "%s split (%lld samples)",
                            f->path, (long long)idx[i], (long long)i, split_name[split],
                            (long long)f->n[split]);
        }
    }
    const size_t bytes = (size_t)f->numel[m] * f->elem[m];
    const size_t out_bytes = (size_t)f->numel[m] * 4; /* float32 or int32 */
    for (int64_t i = 0; i < n; i++) {
        decode(f, m, f->data[split][m] + (size_t)idx[i] * bytes,
               (unsigned char *)dst + (size_t)i * out_bytes);
    }
    return MPSL_OK;
}
