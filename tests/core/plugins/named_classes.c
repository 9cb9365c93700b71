/* named_classes.c: a tiny four-class dataset (one 1x4x4 "image" modality) whose class names
 * are chosen by the `names` key, to test how the host checks mpsl_dataset_info.class_names
 * (ABI 2.1): `good` names every class; `none` leaves the field NULL; `null_entry`, `empty`,
 * `too_long` and `control` break class 2 in one way each; `retrieval` claims the retrieval
 * task while naming classes (retrieval items are not classes).
 *
 * Built a second time with -DNAMED_ABI_2_0 as `named_classes_abi20`: a plugin compiled against
 * ABI 2.0, which reports minor 0 and writes only the fields 2.0 had (it cannot know
 * class_names), so that a run shows the host accepting it and zeroing the field for it. */
#include <mpsl/plugin.h>

#include <stddef.h>
#include <string.h>

#ifdef NAMED_ABI_2_0
#undef MPSL_ABI_MINOR
#define MPSL_ABI_MINOR 0
#define NC_NAME "named_classes_abi20"
#else
#define NC_NAME "named_classes"
#endif

enum { NC_CLASSES = 4, NC_SIDE = 4, NC_PIX = NC_SIDE * NC_SIDE };

typedef enum {
    NC_GOOD, NC_NONE, NC_NULL_ENTRY, NC_EMPTY, NC_TOO_LONG, NC_CONTROL, NC_RETRIEVAL
} nc_mode;

typedef struct nc_params {
    int64_t n_train, n_test;
    int names; /* nc_mode */
} nc_params;

static const mpsl_param_spec nc_spec[] = {
    MPSL_PARAM_INT(nc_params, n_train, "n_train", 0, 1, 100000, "200", "training samples"),
    MPSL_PARAM_INT(nc_params, n_test, "n_test", 0, 1, 100000, "40", "test samples"),
    MPSL_PARAM_ENUM(nc_params, names, "names",
                    "good|none|null_entry|empty|too_long|control|retrieval", "good",
                    "which class names to report (all but good and none are refused)"),
};

#ifndef NAMED_ABI_2_0
/* Each table breaks class 2 only, so a message must name index 2. */
static const char *const nc_good[NC_CLASSES] = {"circle", "square", "T-shirt/top", "Ankle boot"};
static const char *const nc_null_entry[NC_CLASSES] = {"circle", "square", NULL, "star"};
static const char *const nc_empty[NC_CLASSES] = {"circle", "square", "", "star"};
static const char *const nc_too_long[NC_CLASSES] = {
    "circle", "square",
    "a name of sixty-five bytes, one more than the host accepts: 65 by", "star"};
static const char *const nc_control[NC_CLASSES] = {"circle", "square", "tri\tangle", "star"};
/* By nc_mode; retrieval names its classes well, but must not name them at all. */
static const char *const *const nc_tables[] = {
    nc_good, NULL, nc_null_entry, nc_empty, nc_too_long, nc_control, nc_good,
};
#endif

typedef struct nc_state {
    const mpsl_host *h;
    int64_t n[2];
    int32_t *labels[2];
} nc_state;

static void nc_close(void *state)
{
    nc_state *s = state;
    if (s) {
        s->h->free(s->labels[0]);
        s->h->free(s->labels[1]);
        s->h->free(s);
    }
}

static int nc_open(const mpsl_host *h, const void *params, const char *where,
                   mpsl_dataset_info *info, void **state, mpsl_error *err)
{
    const nc_params *p = params;
    nc_state *s = h->alloc(sizeof *s);
    if (!s) {
        h->error_set(err, "%s: out of memory", where);
        return MPSL_ERR_NOMEM;
    }
    s->h = h;
    s->n[0] = p->n_train;
    s->n[1] = p->n_test;
    for (int sp = 0; sp < 2; sp++) {
        s->labels[sp] = h->alloc((size_t)s->n[sp] * sizeof(int32_t));
        if (!s->labels[sp]) {
            nc_close(s);
            h->error_set(err, "%s: out of memory", where);
            return MPSL_ERR_NOMEM;
        }
        for (int64_t i = 0; i < s->n[sp]; i++) {
            s->labels[sp][i] = (int32_t)(i % NC_CLASSES);
        }
    }
#ifdef NAMED_ABI_2_0
    /* What a 2.0 plugin's memset(info, 0, sizeof *info) covered: everything before the field
     * 2.1 appended. */
    memset(info, 0, offsetof(mpsl_dataset_info, class_names));
#else
    memset(info, 0, sizeof *info);
#endif
    info->n_modalities = 1;
    strcpy(info->modality[0].name, "image");
    info->modality[0].dtype = MPSL_F32;
    info->modality[0].ndim = 3;
    info->modality[0].shape[0] = 1;
    info->modality[0].shape[1] = NC_SIDE;
    info->modality[0].shape[2] = NC_SIDE;
    info->n_classes = NC_CLASSES;
    info->n_train = s->n[0];
    info->n_test = s->n[1];
#ifndef NAMED_ABI_2_0
    info->class_names = nc_tables[p->names];
    info->task = p->names == NC_RETRIEVAL ? MPSL_TASK_RETRIEVAL : MPSL_TASK_CLASSIFICATION;
#endif
    *state = s;
    return MPSL_OK;
}

static const int32_t *nc_labels(void *state, mpsl_split split)
{
    return ((nc_state *)state)->labels[split];
}

/* Class c: every pixel is c plus a small per-position ripple, so the data is learnable. */
static int nc_fill(void *state, mpsl_split split, const int64_t *idx, int64_t n,
                   mpsl_batch *b, mpsl_error *err)
{
    nc_state *s = state;
    for (int64_t j = 0; j < n; j++) {
        if (idx[j] < 0 || idx[j] >= s->n[split]) {
            s->h->error_set(err, NC_NAME ": sample %lld out of range", (long long)idx[j]);
            return MPSL_ERR_INVALID;
        }
        int32_t y = s->labels[split][idx[j]];
        b->labels[j] = y;
        float *x = (float *)b->modality[0].data + j * NC_PIX;
        for (int k = 0; k < NC_PIX; k++) {
            x[k] = (float)y + 0.1f * (float)((k * 7 + idx[j]) % 5);
        }
    }
    return MPSL_OK;
}

static const mpsl_dataset_api nc_api = {sizeof(mpsl_dataset_api), nc_open, nc_close, nc_labels,
                                        nc_fill, NULL};

MPSL_PLUGIN(MPSL_KIND_DATASET, NC_NAME, "1.0.0",
            "test: four classes whose names are good, absent or broken on purpose", &nc_api,
            nc_params, nc_spec);
