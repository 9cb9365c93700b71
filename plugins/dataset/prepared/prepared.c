/* prepared.c: the `prepared` dataset plugin: reads one prepared dataset file (the format of
 * mpsl/prepared_format.h, written by `mpsl convert`) through mmap and converts the requested
 * samples on fill(): u8/f16/f32 storage -> float32 (value * scale + offset), i32 -> int32.
 *
 * open() validates everything before handing anything out, each refusal naming the file and
 * what was expected: the magic, the version, header_bytes, the modality table, that the file
 * is exactly header_bytes + payload_bytes long and that payload_bytes is what the counts and
 * shapes imply, every label, and (verify: true, the default) the payload's CRC32.
 *
 * Labels are copied out (a few bytes per sample); samples stay in the mapping, so the page
 * cache holds what is used and a file larger than memory still works.
 *
 * Retrieval files (task 1) label each sample with its index in the split; the plugin reports
 * n_classes = max(n_train, n_test) so that every label is a valid class for the host's
 * partitioning (each image is its own class), and task = MPSL_TASK_RETRIEVAL, which makes the
 * host train with the contrastive loss, evaluate Recall@1/5/10 and split IID only. */
#include <mpsl/plugin.h>
#include <mpsl/prepared_format.h>

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

typedef struct pp_params {
    const char *path;
    int64_t train_limit;
    int64_t test_limit;
    int verify;
} pp_params;

static const mpsl_param_spec pp_spec[] = {
    MPSL_PARAM_STRING(pp_params, path, "path", 1, NULL,
                      "the prepared file written by `mpsl convert`"),
    MPSL_PARAM_INT(pp_params, train_limit, "train_limit", 0, 0, 1e15, "0",
                   "use only the first N training samples (0 = all)"),
    MPSL_PARAM_INT(pp_params, test_limit, "test_limit", 0, 0, 1e15, "0",
                   "use only the first N test samples (0 = all)"),
    MPSL_PARAM_BOOL(pp_params, verify, "verify", "true",
                    "check the payload's CRC32 on open (reads the whole file once)"),
};

typedef struct pp_split {
    int64_t n;                                  /* samples used (after the limit) */
    int32_t *labels;                            /* (n), host memory */
    const unsigned char *data[MPSL_PREP_MAX_MODALITIES]; /* first sample in the mapping */
} pp_split;

typedef struct pp_state {
    const mpsl_host *h;
    char path[1024];
    unsigned char *map;
    size_t map_len;
    mpsl_prep_header hdr;
    mpsl_prep_modality mod[MPSL_PREP_MAX_MODALITIES];
    int64_t numel[MPSL_PREP_MAX_MODALITIES];
    size_t elem[MPSL_PREP_MAX_MODALITIES];
    pp_split split[2];
    float lut[MPSL_PREP_MAX_MODALITIES][256]; /* u8 -> float per modality */
} pp_state;

static size_t pp_storage_size(uint32_t s)
{
    return s == MPSL_PREP_U8 ? 1 : s == MPSL_PREP_F16 ? 2 : (s == MPSL_PREP_F32 || s == MPSL_PREP_I32) ? 4 : 0;
}

static double pp_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* IEEE half -> float, by hand (exact). */
static float pp_f16(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1Fu;
    uint32_t man = h & 0x3FFu;
    uint32_t f;
    if (exp == 0) {
        if (man == 0) {
            f = sign;
        } else {
            int e = -1;
            do {
                e++;
                man <<= 1;
            } while (!(man & 0x400u));
            f = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3FFu) << 13);
        }
    } else if (exp == 31) {
        f = sign | 0x7F800000u | (man << 13);
    } else {
        f = sign | ((exp - 15 + 127) << 23) | (man << 13);
    }
    float x;
    memcpy(&x, &f, 4);
    return x;
}

static void pp_close(void *state)
{
    pp_state *s = state;
    if (!s) {
        return;
    }
    const mpsl_host *h = s->h;
    if (s->map) {
        munmap(s->map, s->map_len);
    }
    h->free(s->split[0].labels);
    h->free(s->split[1].labels);
    h->free(s);
}

/* Validate the header and the modality table; fills s->mod, numel, elem. */
static int pp_check_header(pp_state *s, uint64_t file_len, mpsl_error *err)
{
    const mpsl_host *h = s->h;
    const char *path = s->path;
    const mpsl_prep_header *hd = &s->hdr;
    if (memcmp(hd->magic, MPSL_PREP_MAGIC, 8) != 0) {
        h->error_set(err, "prepared: %s is not a prepared dataset file (magic '%.8s', expected "
                          "'%s'; write one with `mpsl convert`)", path, hd->magic,
                     MPSL_PREP_MAGIC);
        return MPSL_ERR_INVALID;
    }
    if (hd->version != MPSL_PREP_VERSION) {
        h->error_set(err, "prepared: %s has format version %u, %s (this plugin reads version "
                          "%u)", path, hd->version,
                     hd->version > MPSL_PREP_VERSION ? "newer than this mpsl: update mpsl"
                                                     : "which does not exist",
                     MPSL_PREP_VERSION);
        return MPSL_ERR_INVALID;
    }
    if (hd->task != MPSL_PREP_CLASSIFICATION && hd->task != MPSL_PREP_RETRIEVAL) {
        h->error_set(err, "prepared: %s: unknown task %u, expected 0 (classification) or 1 "
                          "(retrieval)", path, hd->task);
        return MPSL_ERR_INVALID;
    }
    if (hd->n_modalities < 1 || hd->n_modalities > MPSL_PREP_MAX_MODALITIES) {
        h->error_set(err, "prepared: %s: %u modalities, expected 1..%d", path, hd->n_modalities,
                     MPSL_PREP_MAX_MODALITIES);
        return MPSL_ERR_INVALID;
    }
    if (hd->task == MPSL_PREP_CLASSIFICATION && (hd->n_classes < 1 || hd->n_classes > 100000)) {
        h->error_set(err, "prepared: %s: %u classes, expected 1..100000 for classification",
                     path, hd->n_classes);
        return MPSL_ERR_INVALID;
    }
    if (hd->task == MPSL_PREP_RETRIEVAL && hd->n_classes != 0) {
        h->error_set(err, "prepared: %s: a retrieval file has n_classes 0, not %u", path,
                     hd->n_classes);
        return MPSL_ERR_INVALID;
    }
    uint64_t need = sizeof(mpsl_prep_header) +
                    (uint64_t)hd->n_modalities * sizeof(mpsl_prep_modality) +
                    (uint64_t)hd->n_classes * MPSL_PREP_CLASS_NAME;
    if (hd->header_bytes % 64 != 0 || hd->header_bytes < need ||
        hd->header_bytes > need + 64) {
        h->error_set(err, "prepared: %s: header_bytes %u, expected %llu rounded up to a "
                          "multiple of 64 (%u modalities, %u classes)", path, hd->header_bytes,
                     (unsigned long long)need, hd->n_modalities, hd->n_classes);
        return MPSL_ERR_INVALID;
    }
    if (hd->header_bytes > file_len) {
        h->error_set(err, "prepared: %s is truncated: %llu bytes, shorter than its %u-byte "
                          "header", path, (unsigned long long)file_len, hd->header_bytes);
        return MPSL_ERR_IO;
    }
    if (memchr(hd->source, '\0', sizeof hd->source) == NULL) {
        h->error_set(err, "prepared: %s: the source field is not NUL-terminated", path);
        return MPSL_ERR_INVALID;
    }
    const uint64_t max_count = (uint64_t)1 << 40;
    if (hd->n_train > max_count || hd->n_test > max_count) {
        h->error_set(err, "prepared: %s: implausible sample counts (%llu train, %llu test)",
                     path, (unsigned long long)hd->n_train, (unsigned long long)hd->n_test);
        return MPSL_ERR_INVALID;
    }
    /* The per-sample size, with overflow checks. */
    uint64_t per = 4;
    for (uint32_t m = 0; m < hd->n_modalities; m++) {
        const mpsl_prep_modality *md = &s->mod[m];
        if (md->name[0] == '\0' || memchr(md->name, '\0', sizeof md->name) == NULL) {
            h->error_set(err, "prepared: %s: modality %u has no NUL-terminated name", path, m);
            return MPSL_ERR_INVALID;
        }
        size_t es = pp_storage_size(md->storage);
        if (es == 0) {
            h->error_set(err, "prepared: %s: modality '%s' has storage %u, expected 0 (u8), 1 "
                              "(f16), 2 (f32) or 3 (i32)", path, md->name, md->storage);
            return MPSL_ERR_INVALID;
        }
        if (md->ndim < 1 || md->ndim > 3) {
            h->error_set(err, "prepared: %s: modality '%s' has %u dimensions, expected 1..3",
                         path, md->name, md->ndim);
            return MPSL_ERR_INVALID;
        }
        uint64_t numel = 1;
        for (uint32_t d = 0; d < 3; d++) {
            if (d < md->ndim && (md->shape[d] < 1 || md->shape[d] > ((uint64_t)1 << 31))) {
                h->error_set(err, "prepared: %s: modality '%s': dimension %u is %llu, "
                                  "expected 1..2^31", path, md->name, d,
                             (unsigned long long)md->shape[d]);
                return MPSL_ERR_INVALID;
            }
            if (d >= md->ndim && md->shape[d] != 0) {
                h->error_set(err, "prepared: %s: modality '%s': shape[%u] = %llu beyond its "
                                  "%u dimensions, expected 0", path, md->name, d,
                             (unsigned long long)md->shape[d], md->ndim);
                return MPSL_ERR_INVALID;
            }
            if (d < md->ndim) {
                numel *= md->shape[d];
                if (numel > ((uint64_t)1 << 36)) {
                    h->error_set(err, "prepared: %s: modality '%s': a sample of more than "
                                      "2^36 elements", path, md->name);
                    return MPSL_ERR_INVALID;
                }
            }
        }
        if (md->storage != MPSL_PREP_I32 &&
            (!isfinite(md->scale) || !isfinite(md->offset) || md->scale == 0.0f)) {
            h->error_set(err, "prepared: %s: modality '%s': scale %g and offset %g must be "
                              "finite, the scale non-zero", path, md->name, (double)md->scale,
                         (double)md->offset);
            return MPSL_ERR_INVALID;
        }
        for (uint32_t k = 0; k < m; k++) {
            if (strcmp(s->mod[k].name, md->name) == 0) {
                h->error_set(err, "prepared: %s: two modalities are named '%s'", path,
                             md->name);
                return MPSL_ERR_INVALID;
            }
        }
        s->numel[m] = (int64_t)numel;
        s->elem[m] = es;
        per += numel * es;
    }
    uint64_t n = hd->n_train + hd->n_test;
    if (n > 0 && per > UINT64_MAX / 2 / n) {
        h->error_set(err, "prepared: %s: the payload size overflows", path);
        return MPSL_ERR_INVALID;
    }
    uint64_t payload = per * n;
    if (hd->payload_bytes != payload) {
        h->error_set(err, "prepared: %s: payload_bytes is %llu, but %llu train + %llu test "
                          "samples of %llu bytes (label and modalities) need %llu", path,
                     (unsigned long long)hd->payload_bytes, (unsigned long long)hd->n_train,
                     (unsigned long long)hd->n_test, (unsigned long long)per,
                     (unsigned long long)payload);
        return MPSL_ERR_INVALID;
    }
    uint64_t want = hd->header_bytes + payload;
    if (file_len != want) {
        h->error_set(err, "prepared: %s is %s: %llu bytes, expected exactly %llu (a %u-byte "
                          "header and %llu bytes of samples)", path,
                     file_len < want ? "truncated" : "longer than its header says",
                     (unsigned long long)file_len, (unsigned long long)want, hd->header_bytes,
                     (unsigned long long)payload);
        return file_len < want ? MPSL_ERR_IO : MPSL_ERR_INVALID;
    }
    return MPSL_OK;
}

/* Point each split's modalities into the mapping, copy and check the labels. */
static int pp_layout(pp_state *s, const pp_params *p, const char *where, mpsl_error *err)
{
    const mpsl_host *h = s->h;
    const unsigned char *at = s->map + s->hdr.header_bytes;
    int64_t counts[2] = {(int64_t)s->hdr.n_train, (int64_t)s->hdr.n_test};
    int64_t limits[2] = {p->train_limit, p->test_limit};
    const char *names[2] = {"train", "test"};
    for (int sp = 0; sp < 2; sp++) {
        int64_t n = counts[sp];
        if (limits[sp] < 0 || limits[sp] > n) {
            h->error_set(err, "%s: prepared: %s_limit = %lld but %s holds only %lld %s samples",
                         where ? where : "data", names[sp], (long long)limits[sp], s->path,
                         (long long)n, names[sp]);
            return MPSL_ERR_INVALID;
        }
        int64_t use = limits[sp] > 0 ? limits[sp] : n;
        pp_split *S = &s->split[sp];
        S->n = use;
        S->labels = h->alloc((size_t)(use > 0 ? use : 1) * sizeof(int32_t));
        if (!S->labels) {
            h->error_set(err, "prepared: out of memory for the labels of %s", s->path);
            return MPSL_ERR_NOMEM;
        }
        memcpy(S->labels, at, (size_t)use * sizeof(int32_t));
        for (int64_t i = 0; i < use; i++) {
            int32_t l = S->labels[i];
            if (s->hdr.task == MPSL_PREP_RETRIEVAL ? l != i
                                                   : (l < 0 || (uint32_t)l >= s->hdr.n_classes)) {
                if (s->hdr.task == MPSL_PREP_RETRIEVAL) {
                    h->error_set(err, "prepared: %s: %s label %lld is %d; a retrieval label "
                                      "must be the sample's index", s->path, names[sp],
                                 (long long)i, l);
                } else {
                    h->error_set(err, "prepared: %s: %s label %lld is %d, outside 0..%u",
                                 s->path, names[sp], (long long)i, l, s->hdr.n_classes - 1);
                }
                return MPSL_ERR_INVALID;
            }
        }
        at += (size_t)n * sizeof(int32_t);
        for (uint32_t m = 0; m < s->hdr.n_modalities; m++) {
            S->data[m] = at;
            at += (size_t)n * (size_t)s->numel[m] * s->elem[m];
        }
    }
    return MPSL_OK;
}

static int pp_open(const mpsl_host *h, const void *params, const char *where,
                   mpsl_dataset_info *info, void **state, mpsl_error *err)
{
    const pp_params *p = params;
    *state = NULL;
    if (!p || !p->path || !p->path[0]) {
        h->error_set(err, "%s: prepared: `path` (the file `mpsl convert` wrote) is required",
                     where ? where : "data");
        return MPSL_ERR_INVALID;
    }
    pp_state *s = h->alloc(sizeof *s);
    if (!s) {
        h->error_set(err, "prepared: out of memory");
        return MPSL_ERR_NOMEM;
    }
    s->h = h;
    snprintf(s->path, sizeof s->path, "%s", p->path);
    int fd = open(p->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        h->error_set(err, "prepared: cannot open %s: %s%s", p->path, strerror(e),
                     e == ENOENT ? " (write it with `mpsl convert NAME --in RAW_DIR --out "
                                   "FILE`)" : "");
        h->free(s);
        return MPSL_ERR_IO;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        h->error_set(err, "prepared: %s is not a regular file", p->path);
        close(fd);
        h->free(s);
        return MPSL_ERR_IO;
    }
    uint64_t len = (uint64_t)st.st_size;
    if (len < sizeof(mpsl_prep_header)) {
        h->error_set(err, "prepared: %s is truncated: %llu bytes, shorter than the %zu-byte "
                          "header of a prepared file", p->path, (unsigned long long)len,
                     sizeof(mpsl_prep_header));
        close(fd);
        h->free(s);
        return MPSL_ERR_IO;
    }
    void *map = mmap(NULL, (size_t)len, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (map == MAP_FAILED) {
        h->error_set(err, "prepared: cannot map %s: %s", p->path, strerror(e));
        h->free(s);
        return MPSL_ERR_IO;
    }
    s->map = map;
    s->map_len = (size_t)len;
    memcpy(&s->hdr, s->map, sizeof s->hdr);
    uint32_t nm = s->hdr.n_modalities;
    if (nm >= 1 && nm <= MPSL_PREP_MAX_MODALITIES &&
        sizeof(mpsl_prep_header) + nm * sizeof(mpsl_prep_modality) <= len) {
        memcpy(s->mod, s->map + sizeof(mpsl_prep_header), nm * sizeof(mpsl_prep_modality));
    }
    int rc = pp_check_header(s, len, err);
    if (rc == MPSL_OK && p->verify) {
        double t0 = pp_now();
        const unsigned char *pl = s->map + s->hdr.header_bytes;
        uint64_t left = s->hdr.payload_bytes;
        madvise(s->map, s->map_len, MADV_SEQUENTIAL);
        uint32_t crc = (uint32_t)crc32_z(0L, Z_NULL, 0);
        crc = (uint32_t)crc32_z(crc, pl, (size_t)left);
        madvise(s->map, s->map_len, MADV_NORMAL);
        double dt = pp_now() - t0;
        if (crc != s->hdr.crc32) {
            h->error_set(err, "prepared: %s is corrupt: the payload's CRC32 is %08x, the header "
                              "says %08x (convert it again)", p->path, crc, s->hdr.crc32);
            rc = MPSL_ERR_INVALID;
        } else {
            h->log(MPSL_LOG_DEBUG, "prepared: CRC32 of %s verified: %.1f MB in %.3f s "
                                   "(%.2f s per GB)", p->path, (double)left / 1e6, dt,
                   left > 0 ? dt / ((double)left / 1e9) : 0.0);
        }
    }
    if (rc == MPSL_OK) {
        rc = pp_layout(s, p, where, err);
    }
    if (rc != MPSL_OK) {
        pp_close(s);
        return rc;
    }
    memset(info, 0, sizeof *info);
    info->n_modalities = (int)nm;
    for (uint32_t m = 0; m < nm; m++) {
        mpsl_modality_info *mi = &info->modality[m];
        snprintf(mi->name, sizeof mi->name, "%s", s->mod[m].name);
        mi->dtype = s->mod[m].storage == MPSL_PREP_I32 ? MPSL_I32 : MPSL_F32;
        mi->ndim = (int)s->mod[m].ndim;
        for (uint32_t d = 0; d < s->mod[m].ndim; d++) {
            mi->shape[d] = (int64_t)s->mod[m].shape[d];
        }
        for (int v = 0; v < 256; v++) {
            s->lut[m][v] = (float)v * s->mod[m].scale + s->mod[m].offset;
        }
    }
    info->n_train = s->split[0].n;
    info->n_test = s->split[1].n;
    if (s->hdr.task == MPSL_PREP_RETRIEVAL) {
        info->n_classes = info->n_train > info->n_test ? info->n_train : info->n_test;
        info->task = MPSL_TASK_RETRIEVAL;
    } else {
        info->n_classes = s->hdr.n_classes;
        info->task = MPSL_TASK_CLASSIFICATION;
    }
    h->log(MPSL_LOG_DEBUG, "prepared: %s (%s): %lld train, %lld test samples, %d modalities",
           p->path, s->hdr.source, (long long)info->n_train, (long long)info->n_test, (int)nm);
    *state = s;
    return MPSL_OK;
}

static const int32_t *pp_labels(void *state, mpsl_split split)
{
    pp_state *s = state;
    if (!s || (split != MPSL_SPLIT_TRAIN && split != MPSL_SPLIT_TEST)) {
        return NULL;
    }
    return s->split[split].labels;
}

static int pp_fill(void *state, mpsl_split split, const int64_t *idx, int64_t n,
                   mpsl_batch *batch, mpsl_error *err)
{
    pp_state *s = state;
    const mpsl_host *h = s->h;
    if (split != MPSL_SPLIT_TRAIN && split != MPSL_SPLIT_TEST) {
        h->error_set(err, "prepared: unknown split %d", (int)split);
        return MPSL_ERR_INVALID;
    }
    const pp_split *sp = &s->split[split];
    const char *name = split == MPSL_SPLIT_TRAIN ? "train" : "test";
    if (n < 0 || (n > 0 && !idx) || !batch || !batch->labels) {
        h->error_set(err, "prepared: fill() called without indices or batch buffers");
        return MPSL_ERR_INTERNAL;
    }
    uint32_t nm = s->hdr.n_modalities;
    for (uint32_t m = 0; m < nm; m++) {
        mpsl_dtype want = s->mod[m].storage == MPSL_PREP_I32 ? MPSL_I32 : MPSL_F32;
        if (!batch->modality[m].data || batch->modality[m].dtype != want) {
            h->error_set(err, "prepared: the batch tensor of modality '%s' must be %s",
                         s->mod[m].name, want == MPSL_I32 ? "int32" : "float32");
            return MPSL_ERR_INTERNAL;
        }
    }
    for (int64_t i = 0; i < n; i++) {
        if (idx[i] < 0 || idx[i] >= sp->n) {
            h->error_set(err, "prepared: %s: sample index %lld (batch position %lld) is out of "
                              "range for the %s split (%lld samples)", s->path,
                         (long long)idx[i], (long long)i, name, (long long)sp->n);
            return MPSL_ERR_INVALID;
        }
    }
    for (uint32_t m = 0; m < nm; m++) {
        const mpsl_prep_modality *md = &s->mod[m];
        int64_t E = s->numel[m];
        size_t bytes = (size_t)E * s->elem[m];
        mpsl_tensor *t = &batch->modality[m];
        for (int64_t i = 0; i < n; i++) {
            const unsigned char *src = sp->data[m] + (size_t)idx[i] * bytes;
            if (md->storage == MPSL_PREP_I32) {
                memcpy((int32_t *)t->data + i * E, src, bytes);
                continue;
            }
            float *dst = (float *)t->data + i * E;
            const float sc = md->scale, of = md->offset;
            switch (md->storage) {
            case MPSL_PREP_U8: {
                const float *lut = s->lut[m];
                for (int64_t k = 0; k < E; k++) {
                    dst[k] = lut[src[k]];
                }
                break;
            }
            case MPSL_PREP_F16:
                for (int64_t k = 0; k < E; k++) {
                    uint16_t v;
                    memcpy(&v, src + 2 * k, 2);
                    dst[k] = pp_f16(v) * sc + of;
                }
                break;
            default: /* F32 */
                for (int64_t k = 0; k < E; k++) {
                    float v;
                    memcpy(&v, src + 4 * k, 4);
                    dst[k] = v * sc + of;
                }
                break;
            }
        }
        t->ndim = 1 + (int)md->ndim;
        t->shape[0] = n;
        for (uint32_t d = 0; d < md->ndim; d++) {
            t->shape[1 + d] = (int64_t)md->shape[d];
        }
    }
    for (int64_t i = 0; i < n; i++) {
        batch->labels[i] = sp->labels[idx[i]];
    }
    batch->n = n;
    return MPSL_OK;
}

static const mpsl_dataset_api pp_api = {
    sizeof(mpsl_dataset_api), pp_open, pp_close, pp_labels, pp_fill,
    NULL, /* prepare: `mpsl convert` writes the file */
};

static const mpsl_plugin_desc pp_desc = {
    MPSL_ABI_MAJOR,
    MPSL_ABI_MINOR,
    "prepared",
    "1.0.0",
    MPSL_KIND_DATASET,
    "a prepared dataset file written by `mpsl convert` (images, text, audio; any task)",
    pp_spec,
    MPSL_COUNT(pp_spec),
    sizeof(pp_params),
    &pp_api,
};

MPSL_PLUGIN_EXPORT int mpsl_plugin_entry(const mpsl_host *h, const mpsl_plugin_desc **desc,
                                         mpsl_error *err)
{
    (void)err;
    (void)h;
    *desc = &pp_desc;
    return MPSL_OK;
}
