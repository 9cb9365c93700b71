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
 * host train with the contrastive loss, evaluate Recall@1/5/10 and split IID only. */
#include <mpsl/plugin.h>

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
} pp_state;

static const char *const pp_split_name[2] = {"train", "test"};

static void pp_close(void *state)
{
    pp_state *s = state;
    if (s) {
        s->h->prepared->close(s->file);
        s->h->free(s);
    }
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
    memset(info, 0, sizeof *info);
    info->n_modalities = s->info.n_modalities;
    memcpy(info->modality, s->info.modality, sizeof info->modality);
    info->n_train = s->n[MPSL_SPLIT_TRAIN];
    info->n_test = s->n[MPSL_SPLIT_TEST];
    info->task = s->info.task;
    info->n_classes = s->info.task == MPSL_TASK_RETRIEVAL
                          ? (info->n_train > info->n_test ? info->n_train : info->n_test)
                          : s->info.n_classes;
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
