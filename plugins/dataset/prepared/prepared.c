/* prepared.c: the `prepared` dataset plugin: one prepared dataset file (the output of
 * `mpsl convert`; docs/convert.md), read with the host's reader (h->prepared), which checks
 * the whole file on open (header, sizes, every label, and the CRC32 unless verify: false),
 * keeps the samples in a read-only mapping and converts the requested ones on fill():
 * u8/f16/f32 storage -> float32 (stored * scale + offset), i32 -> int32. What this plugin adds
 * is the parameters, the limits and the dataset description.
 *
 * Retrieval files label each sample with its index in the split; the plugin reports
 * n_classes = max(n_train, n_test) so that every label is a valid class for the host's
 * partitioning (each image is its own class), and task = MPSL_TASK_RETRIEVAL, which makes the
 * host train with the contrastive loss, evaluate Recall@1/5/10 and split IID only.
 *
 * Class names: a classification file holds one 64-byte name per class in its header (the
 * converters write their label vocabularies there). h->prepared does not hand them out, so
 * they are read here from the header the host has just checked; a file whose names are all
 * empty (written without names) reports class_names NULL. */
#include <mpsl/plugin.h>
#include <mpsl/prepared_format.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

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

typedef struct pp_state {
    const mpsl_host *h;
    mpsl_prepared *file;
    mpsl_prepared_info info;
    char path[1024];
    int64_t n[2]; /* samples used per split, after the limits */
    char (*name_text)[MPSL_PREP_CLASS_NAME]; /* the header's names, or NULL */
    const char **names;                      /* n_classes pointers into name_text */
} pp_state;

static const char *const pp_split_name[2] = {"train", "test"};

static void pp_close(void *state)
{
    pp_state *s = state;
    if (s) {
        s->h->prepared->close(s->file);
        s->h->free(s->name_text);
        s->h->free(s->names);
        s->h->free(s);
    }
}

/* Whether one stored name is what the host accepts: terminated within its 64 bytes,
 * non-empty, no control characters. */
static int pp_name_ok(const char *name)
{
    if (!name[0] || !memchr(name, '\0', MPSL_PREP_CLASS_NAME)) {
        return 0;
    }
    for (const unsigned char *c = (const unsigned char *)name; *c; c++) {
        if (*c < 0x20 || *c == 0x7f) {
            return 0;
        }
    }
    return 1;
}

/* Read the class names from the header of PATH (see the top of this file) into s->names.
 * Names are only for people (results, reports): a file without them, or with one the host
 * would refuse, leaves s->names NULL (the latter with a warning) rather than refusing data
 * that trains perfectly well. */
static int pp_read_class_names(pp_state *s, const char *path, mpsl_error *err)
{
    const mpsl_host *h = s->h;
    int64_t n = s->info.n_classes;
    if (s->info.task != MPSL_TASK_CLASSIFICATION || n < 1) {
        return MPSL_OK;
    }
    s->name_text = h->alloc((size_t)n * MPSL_PREP_CLASS_NAME);
    s->names = h->alloc((size_t)n * sizeof *s->names);
    if (!s->name_text || !s->names) {
        h->error_set(err, "prepared: out of memory for the %lld class names of %s",
                     (long long)n, s->path);
        return MPSL_ERR_NOMEM;
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        h->error_set(err, "prepared: cannot open %s again to read its class names: %s",
                     s->path, strerror(errno));
        return MPSL_ERR_IO;
    }
    mpsl_prep_header hd;
    long at = (long)(sizeof hd + (size_t)s->info.n_modalities * sizeof(mpsl_prep_modality));
    int ok = fread(&hd, sizeof hd, 1, f) == 1 && memcmp(hd.magic, MPSL_PREP_MAGIC, 8) == 0 &&
             hd.n_classes == (uint32_t)n && hd.n_modalities == (uint32_t)s->info.n_modalities &&
             fseek(f, at, SEEK_SET) == 0 &&
             fread(s->name_text, MPSL_PREP_CLASS_NAME, (size_t)n, f) == (size_t)n;
    fclose(f);
    if (!ok) {
        h->error_set(err, "prepared: %s: could not read the %lld class names after the header "
                          "was checked (was the file replaced while it was opened?)",
                     s->path, (long long)n);
        return MPSL_ERR_IO;
    }
    int64_t named = 0, bad = -1;
    for (int64_t c = 0; c < n; c++) {
        s->names[c] = s->name_text[c];
        named += s->name_text[c][0] != '\0';
        if (bad < 0 && !pp_name_ok(s->name_text[c])) {
            bad = c;
        }
    }
    if (named > 0 && bad >= 0) {
        h->log(MPSL_LOG_WARN, "prepared: %s: the name of class %lld is empty, unterminated or "
                              "holds a control character; the classes stay unnamed",
               s->path, (long long)bad);
    }
    if (named == 0 || bad >= 0) {
        h->free(s->name_text);
        h->free(s->names);
        s->name_text = NULL;
        s->names = NULL;
    }
    return MPSL_OK;
}

static int pp_open(const mpsl_host *h, const void *params, const char *where,
                   mpsl_dataset_info *info, void **state, mpsl_error *err)
{
    const pp_params *p = params;
    where = where ? where : "data";
    *state = NULL;
    if (!p || !p->path || !p->path[0]) {
        h->error_set(err, "%s: prepared: `path` (the file `mpsl convert` wrote) is required",
                     where);
        return MPSL_ERR_INVALID;
    }
    pp_state *s = h->alloc(sizeof *s);
    if (!s) {
        h->error_set(err, "prepared: out of memory");
        return MPSL_ERR_NOMEM;
    }
    s->h = h;
    snprintf(s->path, sizeof s->path, "%s", p->path);
    int rc = h->prepared->open(p->path, p->verify, &s->file, &s->info, err);
    if (rc != MPSL_OK) {
        h->free(s);
        return rc;
    }
    const int64_t limits[2] = {p->train_limit, p->test_limit};
    for (int sp = 0; sp < 2; sp++) {
        if (limits[sp] < 0 || limits[sp] > s->info.n[sp]) {
            h->error_set(err, "%s: prepared: %s_limit = %lld but %s holds only %lld %s samples",
                         where, pp_split_name[sp], (long long)limits[sp], s->path,
                         (long long)s->info.n[sp], pp_split_name[sp]);
            pp_close(s);
            return MPSL_ERR_INVALID;
        }
        s->n[sp] = limits[sp] > 0 ? limits[sp] : s->info.n[sp];
    }
    if ((rc = pp_read_class_names(s, p->path, err)) != MPSL_OK) {
        pp_close(s);
        return rc;
    }
    memset(info, 0, sizeof *info);
    info->n_modalities = s->info.n_modalities;
    memcpy(info->modality, s->info.modality, sizeof info->modality);
    info->n_train = s->n[MPSL_SPLIT_TRAIN];
    info->n_test = s->n[MPSL_SPLIT_TEST];
    info->task = s->info.task;
    info->n_classes = s->info.task == MPSL_TASK_RETRIEVAL
                          ? (info->n_train > info->n_test ? info->n_train : info->n_test)
                          : s->info.n_classes;
    info->class_names = s->names;
    h->log(MPSL_LOG_DEBUG, "prepared: %s (%s): %lld train, %lld test samples, %d modalities",
           s->path, s->info.source, (long long)info->n_train, (long long)info->n_test,
           info->n_modalities);
    *state = s;
    return MPSL_OK;
}

static const int32_t *pp_labels(void *state, mpsl_split split)
{
    pp_state *s = state;
    if (!s || (split != MPSL_SPLIT_TRAIN && split != MPSL_SPLIT_TEST)) {
        return NULL;
    }
    return s->h->prepared->labels(s->file, split); /* the limit takes the first n */
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
    if (n < 0 || (n > 0 && !idx) || !batch || !batch->labels) {
        h->error_set(err, "prepared: fill() called without indices or batch buffers");
        return MPSL_ERR_INTERNAL;
    }
    for (int m = 0; m < s->info.n_modalities; m++) {
        const mpsl_modality_info *mi = &s->info.modality[m];
        if (!batch->modality[m].data || batch->modality[m].dtype != mi->dtype) {
            h->error_set(err, "prepared: the batch tensor of modality '%s' must be %s",
                         mi->name, mi->dtype == MPSL_I32 ? "int32" : "float32");
            return MPSL_ERR_INTERNAL;
        }
    }
    /* Check every index against the limit before touching the batch. */
    for (int64_t i = 0; i < n; i++) {
        if (idx[i] < 0 || idx[i] >= s->n[split]) {
            h->error_set(err, "prepared: %s: sample index %lld (batch position %lld) is out of "
                              "range for the %s split (%lld samples)",
                         s->path, (long long)idx[i], (long long)i, pp_split_name[split],
                         (long long)s->n[split]);
            return MPSL_ERR_INVALID;
        }
    }
    for (int m = 0; m < s->info.n_modalities; m++) {
        int rc = h->prepared->read(s->file, split, m, idx, n, batch->modality[m].data, err);
        if (rc != MPSL_OK) {
            return rc;
        }
    }
    const int32_t *labels = h->prepared->labels(s->file, split);
    for (int64_t i = 0; i < n; i++) {
        batch->labels[i] = labels[idx[i]];
    }
    return MPSL_OK;
}

static const mpsl_dataset_api pp_api = {
    sizeof(mpsl_dataset_api), pp_open, pp_close, pp_labels, pp_fill,
    NULL, /* prepare: `mpsl convert` writes the file */
};

MPSL_PLUGIN(MPSL_KIND_DATASET, "prepared", "1.0.0",
            "a prepared dataset file written by `mpsl convert` (images, text, audio; any task)",
            &pp_api, pp_params, pp_spec);
