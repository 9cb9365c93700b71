/* convert.c: the converter table, options, and the pieces every converter shares (finding
 * files in a raw layout, parallel image conversion, text sections). */
#include "convert/convert_internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/util.h"

static const convert_entry converters[] = {
    {"b_t4sa", "B-T4SA: tweet image + text, 3 sentiment classes", convert_b_t4sa},
    {"coco_qa", "COCO-QA: COCO image + question, classification over the answers",
     convert_coco_qa},
    {"flickr30k", "Flickr30K (Karpathy split): image + its 5 captions, retrieval",
     convert_flickr30k},
    {"kinetics_sounds", "Kinetics-Sounds: middle frame + log-mel audio, action classes",
     convert_kinetics_sounds},
    {"meld", "MELD: utterance log-mel audio + transcript, 7 emotions", convert_meld},
    {"mscoco", "MS-COCO 2014 (Karpathy split): image + 5 captions, retrieval", convert_mscoco},
    {"ucf101", "UCF101 (split 1-3): middle frame + log-mel audio, 101 actions", convert_ucf101},
};

const convert_entry *convert_all(size_t *n)
{
    *n = sizeof converters / sizeof converters[0];
    return converters;
}

const convert_entry *convert_find(const char *name)
{
    size_t n;
    const convert_entry *all = convert_all(&n);
    for (size_t i = 0; name && i < n; i++) {
        if (strcmp(all[i].name, name) == 0) {
            return &all[i];
        }
    }
    return NULL;
}

void convert_options_init(convert_options *o)
{
    memset(o, 0, sizeof *o);
    o->image_size = 224;
    o->max_caption_bytes = 0;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    o->threads = cpus < 1 ? 1 : cpus > 8 ? 8 : (int)cpus;
}

const char *convert_opt_str(const convert_options *o, const char *key, const char *def)
{
    for (int i = o->n_set - 1; i >= 0; i--) {
        if (strcmp(o->set_key[i], key) == 0) {
            return o->set_val[i];
        }
    }
    return def;
}

int convert_opt_int(const convert_options *o, const char *key, int64_t def, int64_t lo,
                    int64_t hi, int64_t *out, mpsl_error *err)
{
    const char *v = convert_opt_str(o, key, NULL);
    if (!v) {
        *out = def;
        return MPSL_OK;
    }
    char *end = NULL;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi) {
        return mpsl_err(err, "convert %s: --set %s=%s: expected an integer in %lld..%lld",
                        o->name, key, v, (long long)lo, (long long)hi);
    }
    *out = x;
    return MPSL_OK;
}

int convert_run(const convert_options *o, mpsl_error *err)
{
    const convert_entry *c = convert_find(o->name);
    if (!c) {
        char list[512] = "";
        size_t n;
        const convert_entry *all = convert_all(&n);
        for (size_t i = 0; i < n; i++) {
            size_t len = strlen(list);
            snprintf(list + len, sizeof list - len, "%s%s", i ? ", " : "", all[i].name);
        }
        return mpsl_err(err, "convert: no converter for '%s' (known: %s)",
                        o->name ? o->name : "", list);
    }
    if (!o->in_dir || !o->out_path) {
        return mpsl_err(err, "convert %s: --in RAW_DIR and --out FILE are required", c->name);
    }
    if (!convert_is_dir(o->in_dir)) {
        return mpsl_errs(err, MPSL_ERR_IO, "convert %s: %s is not a directory (the raw "
                                           "layout `mpsl fetch %s` leaves)",
                         c->name, o->in_dir, c->name);
    }
    if (o->image_size < 1 || o->image_size > 4096) {
        return mpsl_err(err, "convert %s: --image-size %d: expected 1..4096", c->name,
                        o->image_size);
    }
    if (o->max_caption_bytes < 0 || o->max_caption_bytes > 65536) {
        return mpsl_err(err, "convert %s: --max-caption-bytes %d: expected 1..65536", c->name,
                        o->max_caption_bytes);
    }
    if (o->limit < 0) {
        return mpsl_err(err, "convert %s: --limit must not be negative", c->name);
    }
    double t0 = mpsl_now();
    int rc = c->run(o, err);
    if (rc != MPSL_OK) {
        return rc;
    }
    if (!o->quiet) {
        struct stat st;
        double bytes = stat(o->out_path, &st) == 0 ? (double)st.st_size : 0.0;
        double s = mpsl_now() - t0;
        fprintf(stderr, "convert %s: wrote %s (%.1f MB) in %.2f s\n", c->name, o->out_path,
                bytes / 1e6, s);
    }
    return MPSL_OK;
}

/* ---------------------------------------------------------------- files */

char *convert_join(const char *a, const char *b)
{
    if (!a || !a[0] || b[0] == '/') {
        return mpsl_strdup(b);
    }
    size_t la = strlen(a);
    if (!b[0]) {
        return mpsl_strdup(a);
    }
    return mpsl_strfmt("%s%s%s", a, a[la - 1] == '/' ? "" : "/", b);
}

int convert_is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int convert_is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

char *convert_locate(const convert_options *o, const char *base, const char *const *candidates,
                   int n, int dirs, const char *what, mpsl_error *err)
{
    char tried[768] = "";
    for (int i = 0; i < n; i++) {
        char *p = convert_join(base, candidates[i]);
        if (!p) {
            mpsl_errs(err, MPSL_ERR_NOMEM, "convert: out of memory");
            return NULL;
        }
        if (dirs ? convert_is_dir(p) : convert_is_file(p)) {
            return p;
        }
        size_t len = strlen(tried);
        snprintf(tried + len, sizeof tried - len, "%s%s", i ? ", " : "", p);
        free(p);
    }
    mpsl_errs(err, MPSL_ERR_IO,
              "convert %s: missing %s: looked for %s (run `mpsl fetch %s` into %s, or point "
              "--in at the dataset directory)",
              o->name, what, tried, o->name, base);
    return NULL;
}

int convert_text_len(const convert_options *o, int def)
{
    return o->max_caption_bytes > 0 ? o->max_caption_bytes : def;
}

int convert_val_policy(const convert_options *o, mpsl_error *err)
{
    const char *v = convert_opt_str(o, "val", "drop");
    if (strcmp(v, "drop") == 0) {
        return 0;
    }
    if (strcmp(v, "train") == 0) {
        return 1;
    }
    if (strcmp(v, "test") == 0) {
        return 2;
    }
    mpsl_err(err, "convert %s: --set val=%s: expected drop, train or test", o->name, v);
    return -1;
}

int convert_read_file(const char *path, char **data, size_t *len, mpsl_error *err)
{
    *data = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        return mpsl_errs(err, MPSL_ERR_IO, "convert: cannot open %s: %s", path,
                         strerror(errno));
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (n + 1 >= cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        size_t r = fread(buf + n, 1, cap - n - 1, f);
        n += r;
        if (r == 0) {
            break;
        }
    }
    int bad = ferror(f);
    fclose(f);
    if (!buf) {
        return mpsl_errs(err, MPSL_ERR_NOMEM, "convert: out of memory reading %s", path);
    }
    if (bad) {
        free(buf);
        return mpsl_errs(err, MPSL_ERR_IO, "convert: cannot read %s", path);
    }
    buf[n] = '\0';
    *data = buf;
    *len = n;
    return MPSL_OK;
}

int convert_lines(char *data, char ***lines, int64_t *n, const char *path, mpsl_error *err)
{
    int64_t count = 0, cap = 1024;
    char **v = malloc((size_t)cap * sizeof *v);
    char *p = data;
    while (v && *p) {
        if (count == cap) {
            char **nv = realloc(v, (size_t)cap * 2 * sizeof *v);
            if (!nv) {
                free(v);
                v = NULL;
                break;
            }
            v = nv;
            cap *= 2;
        }
        v[count++] = p;
        char *nl = strchr(p, '\n');
        if (!nl) {
            break;
        }
        *nl = '\0';
        if (nl > p && nl[-1] == '\r') {
            nl[-1] = '\0';
        }
        p = nl + 1;
    }
    if (!v) {
        return mpsl_errs(err, MPSL_ERR_NOMEM, "convert: out of memory reading %s", path);
    }
    *lines = v;
    *n = count;
    return MPSL_OK;
}

/* ---------------------------------------------------------------- images */

#define IMG_CHUNK 64

typedef struct img_job {
    char *const *paths;
    int64_t first, count;
    int size;
    uint8_t *out;            /* count * 3*S*S */
    int rc[IMG_CHUNK];
    mpsl_error err[IMG_CHUNK];
    atomic_int_fast64_t next; /* the next image of the chunk to take */
} img_job;

static void *img_worker(void *arg)
{
    img_job *j = arg;
    size_t per = (size_t)3 * (size_t)j->size * (size_t)j->size;
    for (;;) {
        int64_t i = atomic_fetch_add(&j->next, 1);
        if (i >= j->count) {
            break;
        }
        j->rc[i] = prep_image_load_square(j->paths[j->first + i], j->size,
                                          j->out + (size_t)i * per, &j->err[i]);
    }
    return NULL;
}

int convert_write_images(prep_writer *w, mpsl_split split, int modality,
                         char *const *paths, int64_t n, const convert_options *o,
                         const char *what, mpsl_error *err)
{
    int S = o->image_size;
    size_t per = (size_t)3 * (size_t)S * (size_t)S;
    img_job *j = calloc(1, sizeof *j);
    uint8_t *buf = malloc(per * IMG_CHUNK);
    if (!j || !buf) {
        free(j);
        free(buf);
        return mpsl_errs(err, MPSL_ERR_NOMEM, "convert: out of memory for %d images of %dx%d",
                         IMG_CHUNK, S, S);
    }
    int nt = o->threads < 1 ? 1 : o->threads > 64 ? 64 : o->threads;
    prep_progress pr;
    prep_progress_start(&pr, o->name, what, n, o->quiet);
    int rc = MPSL_OK;
    for (int64_t first = 0; first < n && rc == MPSL_OK; first += IMG_CHUNK) {
        j->paths = paths;
        j->first = first;
        j->count = n - first < IMG_CHUNK ? n - first : IMG_CHUNK;
        j->size = S;
        j->out = buf;
        atomic_store(&j->next, 0);
        pthread_t th[64];
        int started = 0;
        /* This thread works too; a thread that fails to start just leaves more to the rest. */
        for (int t = 1; t < nt && t < j->count; t++) {
            if (pthread_create(&th[started], NULL, img_worker, j) != 0) {
                break;
            }
            started++;
        }
        img_worker(j);
        for (int t = 0; t < started; t++) {
            pthread_join(th[t], NULL);
        }
        for (int64_t i = 0; i < j->count; i++) {
            if (j->rc[i] != MPSL_OK) {
                *err = j->err[i];
                rc = j->rc[i];
                break;
            }
        }
        if (rc == MPSL_OK) {
            rc = prep_writer_samples(w, split, modality, buf, j->count, err);
        }
        prep_progress_step(&pr, first + j->count);
    }
    free(j);
    free(buf);
    return rc;
}

/* ---------------------------------------------------------------- text and labels */

#define TEXT_CHUNK 1024

int convert_write_text(prep_writer *w, mpsl_split split, int modality, int64_t n, int S, int L,
                       convert_text_fn text, void *ctx, int64_t *truncated, mpsl_error *err)
{
    int32_t *buf = malloc((size_t)TEXT_CHUNK * (size_t)S * (size_t)L * sizeof *buf);
    if (!buf) {
        return mpsl_errs(err, MPSL_ERR_NOMEM, "convert: out of memory");
    }
    int rc = MPSL_OK;
    for (int64_t first = 0; first < n && rc == MPSL_OK; first += TEXT_CHUNK) {
        int64_t count = n - first < TEXT_CHUNK ? n - first : TEXT_CHUNK;
        for (int64_t i = 0; i < count; i++) {
            for (int s = 0; s < S; s++) {
                const char *t = text(ctx, first + i, s);
                int64_t kept = prep_text_bytes(t, buf + ((size_t)i * S + s) * (size_t)L, L);
                if (truncated && t && (int64_t)strlen(t) > kept) {
                    (*truncated)++;
                }
            }
        }
        rc = prep_writer_samples(w, split, modality, buf, count, err);
    }
    free(buf);
    return rc;
}

int convert_write_index_labels(prep_writer *w, mpsl_split split, int64_t n, mpsl_error *err)
{
    int32_t buf[4096];
    for (int64_t first = 0; first < n; first += 4096) {
        int64_t count = n - first < 4096 ? n - first : 4096;
        for (int64_t i = 0; i < count; i++) {
            buf[i] = (int32_t)(first + i);
        }
        int rc = prep_writer_labels(w, split, buf, count, err);
        if (rc != MPSL_OK) {
            return rc;
        }
    }
    return MPSL_OK;
}
