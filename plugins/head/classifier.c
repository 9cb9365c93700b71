/* classifier.c: the classification head. Each modality's segment of the token tensor is
 * pooled to one vector (its CLS token, or the mean of its other tokens), the pooled vectors
 * are averaged over modalities, and a linear layer gives the class logits. Parameter names
 * follow timm (head.weight, head.bias). */
#include <math.h>
#include <string.h>

#include <mpsl/plugin.h>

enum { POOL_CLS = 0, POOL_MEAN = 1 };

typedef struct {
    int pool;
} cl_params;

static const mpsl_param_spec cl_spec[] = {
    MPSL_PARAM_ENUM(cl_params, pool, "pool", "cls|mean", "cls",
                    "cls: each segment's CLS token; mean: the mean of its other tokens"),
};

typedef struct {
    const mpsl_host *h;
    int64_t T, D, C;
    int n_seg;
    int64_t t0[MPSL_MAX_MODALITIES], len[MPSL_MAX_MODALITIES]; // pooled token range
    int64_t off_w, off_b;
    int64_t cap;
    float *pooled;   // (B,D) saved for backward
    float *tmp;      // (B,D) one segment's pooled vector / scratch
    int64_t saved_B;
} cl_state;

static void cl_destroy(void *state)
{
    cl_state *s = state;
    if (!s) {
        return;
    }
    s->h->free(s->pooled);
    s->h->free(s->tmp);
    s->h->free(s);
}

static int cl_create(const mpsl_host *h, const mpsl_module_init *init, void **state,
                     mpsl_error *err)
{
    const cl_params *p = init->params;
    const char *where = init->where ? init->where : "head";
    if (init->in_ndim != 2 || init->in_shape[0] < 1 || init->in_shape[1] < 1) {
        h->error_set(err, "%s: classifier expects tokens of shape (T,D), got %d dimensions",
                     where, init->in_ndim);
        return MPSL_ERR_INVALID;
    }
    if (init->n_classes < 1) {
        h->error_set(err, "%s: classifier needs the dataset's number of classes (got %lld)",
                     where, (long long)init->n_classes);
        return MPSL_ERR_INVALID;
    }
    int64_t T = init->in_shape[0];
    // without a layout the whole token tensor is one segment without CLS
    mpsl_token_layout whole = {1, {{0, T, 0}}};
    const mpsl_token_layout *lay = init->layout ? init->layout : &whole;
    if (lay->n_segments < 1 || lay->n_segments > MPSL_MAX_MODALITIES) {
        h->error_set(err, "%s: classifier: token layout has %d segments, expected 1..%d",
                     where, lay->n_segments, MPSL_MAX_MODALITIES);
        return MPSL_ERR_INVALID;
    }
    cl_state *s = h->alloc(sizeof(*s));
    if (!s) {
        h->error_set(err, "%s: classifier: out of memory", where);
        return MPSL_ERR_NOMEM;
    }
    s->h = h;
    s->T = T, s->D = init->in_shape[1], s->C = init->n_classes;
    s->n_seg = lay->n_segments;
    s->saved_B = -1;
    for (int i = 0; i < s->n_seg; i++) {
        int64_t off = lay->segment[i].offset, len = lay->segment[i].length;
        int has_cls = lay->segment[i].has_cls;
        if (off < 0 || len < 1 || off + len > T) {
            h->error_set(err, "%s: classifier: segment %d (tokens %lld..%lld) lies outside "
                         "the %lld tokens", where, i, (long long)off,
                         (long long)(off + len - 1), (long long)T);
            goto fail;
        }
        if (p->pool == POOL_CLS) {
            if (!has_cls) {
                h->error_set(err, "%s: pool: cls needs a CLS token in every segment, but "
                             "segment %d (tokens %lld..%lld) has none; use pool: mean or "
                             "enable the tokenizer's cls", where, i, (long long)off,
                             (long long)(off + len - 1));
                goto fail;
            }
            s->t0[i] = off, s->len[i] = 1;
        } else {
            // as timm's global_pool='avg': the CLS token is not part of the mean
            s->t0[i] = off + (has_cls != 0), s->len[i] = len - (has_cls != 0);
            if (s->len[i] < 1) {
                h->error_set(err, "%s: pool: mean needs tokens besides the CLS token, but "
                             "segment %d has only its CLS token; use pool: cls", where, i);
                goto fail;
            }
        }
    }
    float bound = 1.0f / sqrtf((float)s->D);
    int64_t wshape[2] = {s->C, s->D}, bshape[1] = {s->C};
    s->off_w = init->declare(init->ctx, "head.weight", 2, wshape, MPSL_INIT_UNIFORM, bound, 1,
                             err);
    if (s->off_w < 0) {
        goto fail;
    }
    s->off_b = init->declare(init->ctx, "head.bias", 1, bshape, MPSL_INIT_UNIFORM, bound, 1,
                             err);
    if (s->off_b < 0) {
        goto fail;
    }
    *state = s;
    return MPSL_OK;
fail:
    cl_destroy(s);
    return MPSL_ERR_INVALID;
}

static int cl_output_shape(void *state, int *ndim, int64_t *shape, int *cls)
{
    cl_state *s = state;
    *ndim = 1;
    shape[0] = s->C;
    if (cls) {
        *cls = 0;
    }
    return MPSL_OK;
}

static int cl_reserve(cl_state *s, int64_t B, mpsl_error *err)
{
    if (B <= s->cap) {
        return MPSL_OK;
    }
    s->h->free(s->pooled);
    s->h->free(s->tmp);
    s->cap = 0;
    s->pooled = s->h->alloc((size_t)(B * s->D) * sizeof(float));
    s->tmp = s->h->alloc((size_t)(B * s->D) * sizeof(float));
    if (!s->pooled || !s->tmp) {
        s->h->free(s->pooled);
        s->h->free(s->tmp);
        s->pooled = s->tmp = NULL;
        s->h->error_set(err, "classifier: out of memory for a batch of %lld", (long long)B);
        return MPSL_ERR_NOMEM;
    }
    s->cap = B;
    return MPSL_OK;
}

static int cl_forward(void *state, const mpsl_weights *w, const mpsl_tensor *inp,
                      mpsl_tensor *out, mpsl_error *err)
{
    cl_state *s = state;
    const mpsl_kernels *k = s->h->kernels;
    if (inp->dtype != MPSL_F32 || inp->ndim != 3 || inp->shape[1] != s->T ||
        inp->shape[2] != s->D) {
        s->h->error_set(err, "classifier: expected tokens (B,%lld,%lld) float, got %d "
                        "dimensions (B,%lld,%lld)", (long long)s->T, (long long)s->D,
                        inp->ndim, (long long)inp->shape[1], (long long)inp->shape[2]);
        return MPSL_ERR_INVALID;
    }
    int64_t B = inp->shape[0], T = s->T, D = s->D;
    int rc = cl_reserve(s, B, err);
    if (rc != MPSL_OK) {
        return rc;
    }
    const float *x = inp->data;                    // (B,T,D)
    k->meanpool_forward(s->pooled, x, B, T, D, s->t0[0], s->len[0]);
    if (s->n_seg > 1) {
        for (int i = 1; i < s->n_seg; i++) {
            k->meanpool_forward(s->tmp, x, B, T, D, s->t0[i], s->len[i]);
            for (int64_t j = 0; j < B * D; j++) {
                s->pooled[j] += s->tmp[j];
            }
        }
        float inv = 1.0f / (float)s->n_seg;
        for (int64_t j = 0; j < B * D; j++) {
            s->pooled[j] *= inv;
        }
    }
    k->linear_forward(out->data, s->pooled, w->param + s->off_w, w->param + s->off_b, B, D,
                      s->C);
    out->dtype = MPSL_F32;
    out->ndim = 2;
    out->shape[0] = B, out->shape[1] = s->C;
    s->saved_B = B;
    return MPSL_OK;
}

static int cl_backward(void *state, const mpsl_weights *w, const mpsl_tensor *dout,
                       mpsl_tensor *din, mpsl_error *err)
{
    cl_state *s = state;
    const mpsl_kernels *k = s->h->kernels;
    int64_t B = dout->shape[0], T = s->T, D = s->D;
    if (dout->ndim != 2 || dout->shape[1] != s->C || B != s->saved_B) {
        s->h->error_set(err, "classifier: backward got dout (%lld,%lld), expected "
                        "(%lld,%lld) from the last forward", (long long)B,
                        (long long)dout->shape[1], (long long)s->saved_B, (long long)s->C);
        return MPSL_ERR_INVALID;
    }
    float *dinp = din && din->data ? din->data : NULL;   // (B,T,D)
    float *g = w->grad;
    k->linear_backward(dinp ? s->tmp : NULL, g ? g + s->off_w : NULL, g ? g + s->off_b : NULL,
                       dout->data, s->pooled, w->param + s->off_w, B, D, s->C);
    if (dinp) {
        // d pooled (B,D) is shared equally by the segments' pooled vectors
        if (s->n_seg > 1) {
            float inv = 1.0f / (float)s->n_seg;
            for (int64_t j = 0; j < B * D; j++) {
                s->tmp[j] *= inv;
            }
        }
        memset(dinp, 0, (size_t)(B * T * D) * sizeof(float));
        for (int i = 0; i < s->n_seg; i++) {
            k->meanpool_backward(dinp, s->tmp, B, T, D, s->t0[i], s->len[i]);
        }
        din->dtype = MPSL_F32;
        din->ndim = 3;
        din->shape[0] = B, din->shape[1] = T, din->shape[2] = D;
    }
    return MPSL_OK;
}

static const mpsl_module_api cl_api = {
    sizeof(mpsl_module_api), cl_create, cl_destroy, cl_output_shape, cl_forward, cl_backward,
};

static const mpsl_plugin_desc cl_desc = {
    MPSL_ABI_MAJOR, MPSL_ABI_MINOR, "classifier", "1.0.0", MPSL_KIND_HEAD,
    "pool each segment (CLS or mean), average over modalities, linear to class logits",
    cl_spec, MPSL_COUNT(cl_spec), sizeof(cl_params), &cl_api,
};

MPSL_PLUGIN_EXPORT int mpsl_plugin_entry(const mpsl_host *h, const mpsl_plugin_desc **desc,
                                         mpsl_error *err);
MPSL_PLUGIN_EXPORT int mpsl_plugin_entry(const mpsl_host *h, const mpsl_plugin_desc **desc,
                                         mpsl_error *err)
{
    (void)h;
    (void)err;
    *desc = &cl_desc;
    return MPSL_OK;
}
