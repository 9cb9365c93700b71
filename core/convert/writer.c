/* writer.c: the streaming writer of prepared dataset files (see writer.h), the text helper
 * and progress lines. Images are in image.c; half floats in core/util/half.c. */
#include "convert/writer.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "util/util.h"

#define PREP_BUF_BYTES (4u << 20)

_Static_assert(sizeof(mpsl_prep_header) == 256, "the header is 256 bytes");
_Static_assert(sizeof(mpsl_prep_modality) == 96, "a modality entry is 96 bytes");

struct prep_writer {
    char *path, *tmp;
    int fd;
    mpsl_prep_header hdr;
    mpsl_prep_modality mod[MPSL_PREP_MAX_MODALITIES];
    char (*class_names)[MPSL_PREP_CLASS_NAME];
    int n_mod;
    int64_t n_split[2];
    int64_t numel[MPSL_PREP_MAX_MODALITIES];
    size_t elem[MPSL_PREP_MAX_MODALITIES];
    /* The cursor: section = split * (1 + n_mod) + part (0 labels, 1 + m modality m), and
     * how many samples of it are written. */
    int section, n_sections;
    int64_t done;
    uint64_t payload;
    uint32_t crc;
    unsigned char *buf;
    size_t used;
};

static int64_t header_bytes_for(int n_mod, uint32_t n_classes)
{
    int64_t b = (int64_t)sizeof(mpsl_prep_header) + (int64_t)n_mod * sizeof(mpsl_prep_modality) +
                (int64_t)n_classes * MPSL_PREP_CLASS_NAME;
    return (b + 63) / 64 * 64;
}

/* numel of a modality, -1 on overflow or a bad shape. */
static int64_t spec_numel(const prep_modality_spec *m)
{
    if (m->ndim < 1 || m->ndim > 3) {
        return -1;
    }
    int64_t n = 1;
    for (int d = 0; d < m->ndim; d++) {
        if (m->shape[d] <= 0 || n > INT64_MAX / m->shape[d]) {
            return -1;
        }
        n *= m->shape[d];
    }
    return n;
}

int64_t prep_file_bytes(const prep_modality_spec *modalities, int n_modalities,
                        uint32_t n_classes, int64_t n_train, int64_t n_test)
{
    if (n_train < 0 || n_test < 0 || n_train > INT64_MAX - n_test) {
        return -1;
    }
    int64_t n = n_train + n_test;
    int64_t per = 4; /* the label */
    for (int m = 0; m < n_modalities; m++) {
        int64_t e = spec_numel(&modalities[m]);
        size_t es = mpsl_prep_storage_bytes(modalities[m].storage);
        if (e < 0 || es == 0 || e > (INT64_MAX / 8) / (int64_t)es) {
            return -1;
        }
        per += e * (int64_t)es;
        if (per < 0 || per > INT64_MAX / 8) {
            return -1;
        }
    }
    if (n > 0 && per > (INT64_MAX - (1 << 30)) / n) {
        return -1;
    }
    return header_bytes_for(n_modalities, n_classes) + per * n;
}

static const char *section_name(const prep_writer *w, int section, char *buf, size_t cap)
{
    if (section >= w->n_sections) {
        snprintf(buf, cap, "nothing more (the file is complete)");
        return buf;
    }
    int split = section / (1 + w->n_mod), part = section % (1 + w->n_mod);
    const char *sp = split == 0 ? "train" : "test";
    if (part == 0) {
        snprintf(buf, cap, "%s labels", sp);
    } else {
        snprintf(buf, cap, "%s modality %d (%s)", sp, part - 1, w->mod[part - 1].name);
    }
    return buf;
}

/* Skip sections with nothing to write (an empty split). */
static void advance(prep_writer *w)
{
    while (w->section < w->n_sections) {
        int split = w->section / (1 + w->n_mod);
        if (w->done < w->n_split[split]) {
            break;
        }
        w->section++;
        w->done = 0;
    }
}

static int flush_buf(prep_writer *w, mpsl_error *err)
{
    size_t off = 0;
    while (off < w->used) {
        ssize_t r = write(w->fd, w->buf + off, w->used - off);
        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }
            return mpsl_errs(err, MPSL_ERR_IO, "convert: cannot write %s: %s", w->tmp,
                             strerror(errno));
        }
        off += (size_t)r;
    }
    w->used = 0;
    return MPSL_OK;
}

static int put(prep_writer *w, const void *data, size_t bytes, mpsl_error *err)
{
    const unsigned char *p = data;
    w->crc = (uint32_t)crc32_z(w->crc, p, bytes);
    w->payload += bytes;
    while (bytes > 0) {
        size_t room = PREP_BUF_BYTES - w->used;
        size_t n = bytes < room ? bytes : room;
        memcpy(w->buf + w->used, p, n);
        w->used += n;
        p += n;
        bytes -= n;
        if (w->used == PREP_BUF_BYTES) {
            int rc = flush_buf(w, err);
            if (rc != MPSL_OK) {
                return rc;
            }
        }
    }
    return MPSL_OK;
}

void prep_writer_abort(prep_writer *w)
{
    if (!w) {
        return;
    }
    if (w->fd >= 0) {
        close(w->fd);
    }
    if (w->tmp) {
        unlink(w->tmp);
    }
    free(w->tmp);
    free(w->path);
    free(w->buf);
    free(w->class_names);
    free(w);
}

static int name_ok(const char *s)
{
    if (!s || !s[0] || strlen(s) >= 32) {
        return 0;
    }
    for (const char *p = s; *p; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_')) {
            return 0;
        }
    }
    return 1;
}

int prep_writer_open(const char *path, mpsl_prep_task task, uint32_t n_classes,
                     const char *const *class_names, const prep_modality_spec *modalities,
                     int n_modalities, int64_t n_train, int64_t n_test, const char *source,
                     prep_writer **out, mpsl_error *err)
{
    *out = NULL;
    if (!path || !path[0]) {
        return mpsl_err(err, "convert: no output file given");
    }
    if (task != MPSL_PREP_CLASSIFICATION && task != MPSL_PREP_RETRIEVAL) {
        return mpsl_err(err, "convert: %s: unknown task %d", path, (int)task);
    }
    if (task == MPSL_PREP_CLASSIFICATION && n_classes < 1) {
        return mpsl_err(err, "convert: %s: a classification dataset needs at least one class",
                        path);
    }
    if (task == MPSL_PREP_RETRIEVAL && (n_classes != 0 || class_names)) {
        return mpsl_err(err, "convert: %s: a retrieval dataset has no classes (n_classes 0)",
                        path);
    }
    if (n_classes > 100000) {
        return mpsl_err(err, "convert: %s: %u classes is more than the 100000 supported", path,
                        n_classes);
    }
    if (n_modalities < 1 || n_modalities > MPSL_PREP_MAX_MODALITIES) {
        return mpsl_err(err, "convert: %s: %d modalities, expected 1..%d", path, n_modalities,
                        MPSL_PREP_MAX_MODALITIES);
    }
    if (n_train < 0 || n_test < 0) {
        return mpsl_err(err, "convert: %s: negative sample count", path);
    }
    if (source && strlen(source) >= sizeof(((mpsl_prep_header *)0)->source)) {
        return mpsl_err(err, "convert: %s: source text longer than 127 bytes", path);
    }

    prep_writer *w = calloc(1, sizeof *w);
    if (!w) {
        return mpsl_errs(err, MPSL_ERR_NOMEM, "convert: out of memory");
    }
    w->fd = -1;
    for (int m = 0; m < n_modalities; m++) {
        const prep_modality_spec *s = &modalities[m];
        if (!name_ok(s->name)) {
            prep_writer_abort(w);
            return mpsl_err(err, "convert: %s: modality %d: name '%s' must be 1..31 characters "
                                 "of [a-z0-9_]", path, m, s->name ? s->name : "(null)");
        }
        for (int k = 0; k < m; k++) {
            if (strcmp(modalities[k].name, s->name) == 0) {
                prep_writer_abort(w);
                return mpsl_err(err, "convert: %s: two modalities are named '%s'", path,
                                s->name);
            }
        }
        if (mpsl_prep_storage_bytes((uint32_t)s->storage) == 0) {
            prep_writer_abort(w);
            return mpsl_err(err, "convert: %s: modality '%s': unknown storage %d", path,
                            s->name, (int)s->storage);
        }
        if (s->ndim < 1 || s->ndim > 3) {
            prep_writer_abort(w);
            return mpsl_err(err, "convert: %s: modality '%s': %d dimensions, expected 1..3",
                            path, s->name, s->ndim);
        }
        if (!isfinite(s->scale) || !isfinite(s->offset) ||
            (s->storage != MPSL_PREP_I32 && s->scale == 0.0f)) {
            prep_writer_abort(w);
            return mpsl_err(err, "convert: %s: modality '%s': scale %g / offset %g must be "
                                 "finite and the scale non-zero", path, s->name,
                            (double)s->scale, (double)s->offset);
        }
        mpsl_prep_modality *d = &w->mod[m];
        snprintf(d->name, sizeof d->name, "%s", s->name);
        d->storage = (uint32_t)s->storage;
        d->ndim = (uint32_t)s->ndim;
        for (int k = 0; k < s->ndim; k++) {
            d->shape[k] = (uint64_t)s->shape[k];
        }
        d->scale = s->storage == MPSL_PREP_I32 ? 1.0f : s->scale;
        d->offset = s->storage == MPSL_PREP_I32 ? 0.0f : s->offset;
        w->numel[m] = spec_numel(s);
        w->elem[m] = mpsl_prep_storage_bytes(d->storage);
    }
    if (prep_file_bytes(modalities, n_modalities, n_classes, n_train, n_test) < 0) {
        prep_writer_abort(w);
        return mpsl_err(err, "convert: %s: the sample shapes or counts overflow a 64-bit size",
                        path);
    }
    if (n_classes > 0) {
        w->class_names = calloc(n_classes, sizeof *w->class_names);
        if (!w->class_names) {
            prep_writer_abort(w);
            return mpsl_errs(err, MPSL_ERR_NOMEM, "convert: out of memory");
        }
        for (uint32_t c = 0; c < n_classes && class_names; c++) {
            const char *nm = class_names[c] ? class_names[c] : "";
            if (strlen(nm) >= MPSL_PREP_CLASS_NAME) {
                prep_writer_abort(w);
                return mpsl_err(err, "convert: %s: class %u's name '%s' is longer than %d "
                                     "bytes", path, c, nm, MPSL_PREP_CLASS_NAME - 1);
            }
            snprintf(w->class_names[c], MPSL_PREP_CLASS_NAME, "%s", nm);
        }
    }
    w->n_mod = n_modalities;
    w->n_split[0] = n_train;
    w->n_split[1] = n_test;
    w->n_sections = 2 * (1 + n_modalities);
    w->crc = (uint32_t)crc32_z(0L, Z_NULL, 0);

    mpsl_prep_header *h = &w->hdr;
    memcpy(h->magic, MPSL_PREP_MAGIC, 8);
    h->version = MPSL_PREP_VERSION;
    h->header_bytes = (uint32_t)header_bytes_for(n_modalities, n_classes);
    h->task = (uint32_t)task;
    h->n_modalities = (uint32_t)n_modalities;
    h->n_classes = n_classes;
    h->n_train = (uint64_t)n_train;
    h->n_test = (uint64_t)n_test;
    snprintf(h->source, sizeof h->source, "%s", source ? source : "");

    w->path = mpsl_strdup(path);
    w->tmp = mpsl_strfmt("%s.tmp.%ld", path, (long)getpid());
    w->buf = malloc(PREP_BUF_BYTES);
    if (!w->path || !w->tmp || !w->buf) {
        prep_writer_abort(w);
        return mpsl_errs(err, MPSL_ERR_NOMEM, "convert: out of memory");
    }
    w->fd = open(w->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (w->fd < 0) {
        int e = errno;
        free(w->tmp);
        w->tmp = NULL; /* nothing to remove */
        prep_writer_abort(w);
        return mpsl_errs(err, MPSL_ERR_IO, "convert: cannot create %s.tmp.%ld: %s", path,
                         (long)getpid(), strerror(e));
    }
    /* Reserve the header; close() writes it once the CRC is known. */
    size_t hb = h->header_bytes;
    memset(w->buf, 0, hb);
    w->used = hb;
    int rc = flush_buf(w, err);
    if (rc != MPSL_OK) {
        prep_writer_abort(w);
        return rc;
    }
    advance(w);
    *out = w;
    return MPSL_OK;
}

/* Checks that (split, part) is the section the cursor is at and n fits in it. */
static int expect(prep_writer *w, mpsl_split split, int part, int64_t n, mpsl_error *err)
{
    char want[96], got[96];
    if (split != MPSL_SPLIT_TRAIN && split != MPSL_SPLIT_TEST) {
        return mpsl_err(err, "convert: %s: unknown split %d", w->path, (int)split);
    }
    if (part < 0 || part > w->n_mod) {
        return mpsl_err(err, "convert: %s: modality %d does not exist (the file has %d)",
                        w->path, part - 1, w->n_mod);
    }
    if (n < 0) {
        return mpsl_err(err, "convert: %s: negative sample count", w->path);
    }
    if (n == 0) {
        return MPSL_OK;
    }
    int section = (int)split * (1 + w->n_mod) + part;
    if (section != w->section) {
        section_name(w, w->section, want, sizeof want);
        section_name(w, section, got, sizeof got);
        if (w->section < w->n_sections) {
            int sp = w->section / (1 + w->n_mod);
            return mpsl_errs(err, MPSL_ERR_INTERNAL,
                             "convert: %s: writes out of order: expected %s (%lld of %lld "
                             "written), got %s",
                             w->path, want, (long long)w->done, (long long)w->n_split[sp], got);
        }
        return mpsl_errs(err, MPSL_ERR_INTERNAL,
                         "convert: %s: writes out of order: the file is complete, got %s",
                         w->path, got);
    }
    if (n > w->n_split[split] - w->done) {
        section_name(w, section, got, sizeof got);
        return mpsl_errs(err, MPSL_ERR_INTERNAL,
                         "convert: %s: %lld more samples of %s than the %lld announced",
                         w->path, (long long)(w->done + n - w->n_split[split]), got,
                         (long long)w->n_split[split]);
    }
    return MPSL_OK;
}

int prep_writer_labels(prep_writer *w, mpsl_split split, const int32_t *labels, int64_t n,
                       mpsl_error *err)
{
    int rc = expect(w, split, 0, n, err);
    if (rc != MPSL_OK || n == 0) {
        return rc;
    }
    const char *sp = split == MPSL_SPLIT_TRAIN ? "train" : "test";
    for (int64_t i = 0; i < n; i++) {
        int64_t index = w->done + i;
        if (w->hdr.task == MPSL_PREP_RETRIEVAL) {
            if (labels[i] != index) {
                return mpsl_errs(err, MPSL_ERR_INTERNAL,
                                 "convert: %s: %s label %lld is %d; a retrieval label must be "
                                 "the sample's index", w->path, sp, (long long)index,
                                 labels[i]);
            }
        } else if (labels[i] < 0 || (uint32_t)labels[i] >= w->hdr.n_classes) {
            return mpsl_errs(err, MPSL_ERR_INTERNAL,
                             "convert: %s: %s label %lld is %d, outside 0..%u", w->path, sp,
                             (long long)index, labels[i], w->hdr.n_classes - 1);
        }
    }
    if ((rc = put(w, labels, (size_t)n * sizeof *labels, err)) != MPSL_OK) {
        return rc;
    }
    w->done += n;
    advance(w);
    return MPSL_OK;
}

int prep_writer_samples(prep_writer *w, mpsl_split split, int modality, const void *data,
                        int64_t n, mpsl_error *err)
{
    int rc = expect(w, split, modality + 1, n, err);
    if (rc != MPSL_OK || n == 0) {
        return rc;
    }
    size_t bytes = (size_t)n * (size_t)w->numel[modality] * w->elem[modality];
    if ((rc = put(w, data, bytes, err)) != MPSL_OK) {
        return rc;
    }
    w->done += n;
    advance(w);
    return MPSL_OK;
}

static int pwrite_all(int fd, const void *data, size_t n, off_t at)
{
    const unsigned char *p = data;
    while (n > 0) {
        ssize_t r = pwrite(fd, p, n, at);
        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        p += r;
        n -= (size_t)r;
        at += r;
    }
    return 0;
}

/* fsync the directory holding path, so the rename is durable. Failures are ignored (some
 * file systems refuse fsync on directories). */
static void sync_dir(const char *path)
{
    char *dir = mpsl_strdup(path);
    if (!dir) {
        return;
    }
    char *slash = strrchr(dir, '/');
    const char *d = ".";
    if (slash) {
        if (slash == dir) {
            slash[1] = '\0';
        } else {
            *slash = '\0';
        }
        d = dir;
    }
    int fd = open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    free(dir);
}

int prep_writer_close(prep_writer *w, mpsl_error *err)
{
    if (!w) {
        return mpsl_errs(err, MPSL_ERR_INTERNAL, "convert: close without a writer");
    }
    char want[96];
    if (w->section < w->n_sections) {
        int sp = w->section / (1 + w->n_mod);
        section_name(w, w->section, want, sizeof want);
        int rc = mpsl_errs(err, MPSL_ERR_INTERNAL,
                           "convert: %s: incomplete: %s has %lld of %lld samples", w->path,
                           want, (long long)w->done, (long long)w->n_split[sp]);
        prep_writer_abort(w);
        return rc;
    }
    int rc = flush_buf(w, err);
    if (rc != MPSL_OK) {
        prep_writer_abort(w);
        return rc;
    }
    w->hdr.payload_bytes = w->payload;
    w->hdr.crc32 = w->crc;
    size_t hb = w->hdr.header_bytes;
    unsigned char *head = calloc(1, hb);
    if (!head) {
        prep_writer_abort(w);
        return mpsl_errs(err, MPSL_ERR_NOMEM, "convert: out of memory");
    }
    memcpy(head, &w->hdr, sizeof w->hdr);
    memcpy(head + sizeof w->hdr, w->mod, (size_t)w->n_mod * sizeof w->mod[0]);
    if (w->hdr.n_classes > 0) {
        memcpy(head + sizeof w->hdr + (size_t)w->n_mod * sizeof w->mod[0], w->class_names,
               (size_t)w->hdr.n_classes * MPSL_PREP_CLASS_NAME);
    }
    int bad = pwrite_all(w->fd, head, hb, 0) != 0 || fsync(w->fd) != 0;
    int e = errno;
    free(head);
    if (bad) {
        rc = mpsl_errs(err, MPSL_ERR_IO, "convert: cannot write %s: %s", w->tmp, strerror(e));
        prep_writer_abort(w);
        return rc;
    }
    if (close(w->fd) != 0) {
        e = errno;
        w->fd = -1;
        rc = mpsl_errs(err, MPSL_ERR_IO, "convert: cannot write %s: %s", w->tmp, strerror(e));
        prep_writer_abort(w);
        return rc;
    }
    w->fd = -1;
    if (rename(w->tmp, w->path) != 0) {
        e = errno;
        rc = mpsl_errs(err, MPSL_ERR_IO, "convert: cannot rename %s to %s: %s", w->tmp,
                       w->path, strerror(e));
        prep_writer_abort(w);
        return rc;
    }
    sync_dir(w->path);
    free(w->tmp);
    w->tmp = NULL;
    prep_writer_abort(w); /* frees what is left; nothing to remove any more */
    return MPSL_OK;
}

/* ---------------------------------------------------------------- text */

int64_t prep_text_bytes(const char *utf8, int32_t *out, int64_t len)
{
    if (len <= 0) {
        return 0;
    }
    const unsigned char *s = (const unsigned char *)(utf8 ? utf8 : "");
    int64_t n = 0;
    while (n < len && s[n]) {
        n++;
    }
    if (n == len && s[n] && (s[n] & 0xC0) == 0x80) {
        /* Truncated inside a character: drop its leading bytes too. */
        while (n > 0 && (s[n] & 0xC0) == 0x80) {
            n--;
        }
    }
    for (int64_t i = 0; i < n; i++) {
        out[i] = s[i];
    }
    for (int64_t i = n; i < len; i++) {
        out[i] = 0;
    }
    return n;
}

/* ---------------------------------------------------------------- progress */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void prep_progress_start(prep_progress *p, const char *name, const char *what, int64_t total,
                         int quiet)
{
    memset(p, 0, sizeof *p);
    p->name = name;
    p->what = what;
    p->total = total;
    p->start = p->last = now_s();
    p->interval = isatty(STDERR_FILENO) ? 1.0 : 10.0;
    p->quiet = quiet;
}

void prep_progress_step(prep_progress *p, int64_t done)
{
    if (p->quiet) {
        return;
    }
    double t = now_s();
    if (done < p->total && t - p->last < p->interval) {
        return;
    }
    p->last = t;
    double el = t - p->start;
    double rate = el > 0 ? (double)done / el : 0.0;
    double pct = p->total > 0 ? 100.0 * (double)done / (double)p->total : 100.0;
    if (done < p->total && rate > 0) {
        double eta = (double)(p->total - done) / rate;
        fprintf(stderr, "convert %s: %s %lld/%lld (%.1f%%), %.0f/s, ETA %.0f s\n", p->name,
                p->what, (long long)done, (long long)p->total, pct, rate, eta);
    } else {
        fprintf(stderr, "convert %s: %s %lld/%lld (%.1f%%), %.0f/s, %.1f s\n", p->name,
                p->what, (long long)done, (long long)p->total, pct, rate, el);
    }
}
