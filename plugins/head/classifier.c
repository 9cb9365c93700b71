/* classifier.c: the classification head. Each chosen modality segment of the token tensor is
 * pooled to one vector (its CLS token, or the mean of its other tokens), the pooled vectors
 * are averaged over those segments (the paper's early fusion: the mean of each modality's CLS
 * output), optionally LayerNormed (timm's fc_norm) and a linear layer gives the class logits.
 * Parameter names follow timm (fc_norm.weight, fc_norm.bias, head.weight, head.bias).
 *
 * Sizes: B batch, T tokens, D width, C classes, S pooled segments.
 * Saved for backward: the averaged pooled vectors (B,D), and with norm the normed ones (B,D)
 * and LayerNorm mean/rstd (2B): 4 * (B*D + norm * (B*D + 2*B)) bytes. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <mpsl/plugin.h>

enum { POOL_CLS = 0, POOL_MEAN = 1 };

typedef struct {
    int pool;
    int norm;
    double eps;
    const char *segments;
} cl_params;

static const mpsl_param_spec cl_spec[] = {
    MPSL_PARAM_ENUM(cl_params, pool, "pool", "cls|mean", "cls",
                    "cls: each segment's CLS token; mean: the mean of its other tokens"),
    MPSL_PARAM_BOOL(cl_params, norm, "norm", "false",
                    "LayerNorm the pooled features before the linear layer (timm's fc_norm)"),
    MPSL_PARAM_FLOAT(cl_params, eps, "eps", 0, 1e-12, 1.0, "1e-6", "LayerNorm epsilon"),
    MPSL_PARAM_STRING(cl_params, segments, "segments", 0, "all",
                      "modality segments to pool and average: all, or indices such as 0 or "
                      "0,1"),
};

typedef struct {
    const mpsl_host *h;
    int64_t T, D, C;
    int n_seg;       // pooled segments
    int64_t t0[MPSL_MAX_MODALITIES], len[MPSL_MAX_MODALITIES]; // pooled token range
    int norm;
    float eps;
    int64_t off_nw, off_nb, off_w, off_b; // off_nw, off_nb: -1 without norm
    int64_t cap;
    float *pooled;   // (B,D) saved for backward: the average over segments
    float *normed;   // (B,D) saved with norm: fc_norm(pooled)
    float *mean, *rstd; // (B) saved with norm
    float *tmp;      // (B,D) one segment's pooled vector / scratch
    float *tmp2;     // (B,D) scratch with norm
    int64_t saved_B;
} cl_state;

static void cl_free_buffers(cl_state *s)
{
    s->h->free(s->pooled), s->h->free(s->normed), s->h->free(s->mean);
    s->h->free(s->rstd), s->h->free(s->tmp), s->h->free(s->tmp2);
    s->pooled = s->normed = s->mean = s->rstd = s->tmp = s->tmp2 = NULL;
    s->cap = 0;
}

static void cl_destroy(void *state)
{
    cl_state *s = state;
    if (!s) {
        return;
    }
    cl_free_buffers(s);
    s->h->free(s);
}

/* Parses `segments` ("all", or distinct indices "0,2" below n) into the 0/1 array pick.
 * Returns 0, or -1 with a message naming the problem. */
static int cl_parse_segments(const mpsl_host *h, const char *text, int n, int *pick,
                             const char *where, mpsl_error *err)
{
    for (int i = 0; i < MPSL_MAX_MODALITIES; i++) {
        pick[i] = !text || strcmp(text, "all") == 0 ? i < n : 0;
    }
    if (!text || strcmp(text, "all") == 0) {
        return 0;
    }
    const char *p = text;
    int count = 0;
    for (;;) {
        while (*p == ' ') {
            p++;
        }
        char *end = NULL;
        long v = (*p >= '0' && *p <= '9') ? strtol(p, &end, 10) : -1;
        if (v < 0 || end == p) {
            h->error_set(err, "%s: segments: '%s' is not 'all' or a comma-separated list of "
                         "segment indices such as 0 or 0,1", where, text);
            return -1;
        }
        if (v >= n) {
            h->error_set(err, "%s: segments: index %ld is out of range: the token layout has "
                         "%d segment%s (0..%d)", where, v, n, n == 1 ? "" : "s", n - 1);
            return -1;
        }
        if (pick[v]) {
            h->error_set(err, "%s: segments: index %ld is listed twice in '%s'", where, v,
                         text);
            return -1;
        }
        pick[v] = 1;
        count++;
        p = end;
        while (*p == ' ') {
            p++;
        }
        if (*p == '\0') {
            break;
        }
        if (*p != ',') {
            h->error_set(err, "%s: segments: unexpected '%c' in '%s'; expected 'all' or "
                         "indices such as 0,1", where, *p, text);
            return -1;
        }
        p++;
    }
    return count > 0 ? 0 : -1;
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
    int pick[MPSL_MAX_MODALITIES];
    if (cl_parse_segments(h, p->segments, lay->n_segments, pick, where, err) != 0) {
        return MPSL_ERR_INVALID;
    }
    cl_state *s = h->alloc(sizeof(*s));
    if (!s) {
        h->error_set(err, "%s: classifier: out of memory", where);
        return MPSL_ERR_NOMEM;
    }
    s->h = h;
    s->T = T, s->D = init->in_shape[1], s->C = init->n_classes;
    s->norm = p->norm, s->eps = (float)p->eps;
    s->off_nw = s->off_nb = -1;
    s->n_seg = 0;
    s->saved_B = -1;
    if (s->norm && !h->kernels->layernorm_forward) {
        h->error_set(err, "%s: classifier: norm needs the layernorm kernel (ABI 1.1), which "
                     "this host lacks", where);
        goto fail;
    }
    for (int j = 0; j < lay->n_segments; j++) {
        if (!pick[j]) {
            continue;
        }
        int i = s->n_seg++;   // i: pooled slot, j: layout segment
        int64_t off = lay->segment[j].offset, len = lay->segment[j].length;
        int has_cls = lay->segment[j].has_cls;
        if (off < 0 || len < 1 || off + len > T) {
            h->error_set(err, "%s: classifier: segment %d (tokens %lld..%lld) lies outside "
                         "the %lld tokens", where, j, (long long)off,
                         (long long)(off + len - 1), (long long)T);
            goto fail;
        }
        if (p->pool == POOL_CLS) {
            if (!has_cls) {
                h->error_set(err, "%s: pool: cls needs a CLS token in every pooled segment, "
                             "but segment %d (tokens %lld..%lld) has none; use pool: mean, "
                             "enable the tokenizer's cls or leave it out of segments", where,
                             j, (long long)off, (long long)(off + len - 1));
                goto fail;
            }
            s->t0[i] = off, s->len[i] = 1;
        } else {
            // as timm's global_pool='avg': the CLS token is not part of the mean
            s->t0[i] = off + (has_cls != 0), s->len[i] = len - (has_cls != 0);
            if (s->len[i] < 1) {
                h->error_set(err, "%s: pool: mean needs tokens besides the CLS token, but "
                             "segment %d has only its CLS token; use pool: cls", where, j);
                goto fail;
            }
        }
    }
    if (s->norm) {
        int64_t nshape[1] = {s->D};
        s->off_nw = init->declare(init->ctx, "fc_norm.weight", 1, nshape, MPSL_INIT_ONES, 0.0f,
                                  1, err);
        if (s->off_nw < 0) {
            goto fail;
        }
        s->off_nb = init->declare(init->ctx, "fc_norm.bias", 1, nshape, MPSL_INIT_ZEROS, 0.0f,
                                  1, err);
        if (s->off_nb < 0) {
            goto fail;
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
    cl_free_buffers(s);
    const mpsl_host *h = s->h;
    size_t bd = (size_t)(B * s->D) * sizeof(float);
    s->pooled = h->alloc(bd);
    s->tmp = h->alloc(bd);
    int ok = s->pooled && s->tmp;
    if (s->norm) {
        s->normed = h->alloc(bd);
        s->tmp2 = h->alloc(bd);
        s->mean = h->alloc((size_t)B * sizeof(float));
        s->rstd = h->alloc((size_t)B * sizeof(float));
        ok = ok && s->normed && s->tmp2 && s->mean && s->rstd;
    }
    if (!ok) {
        cl_free_buffers(s);
        h->error_set(err, "classifier: out of memory for a batch of %lld", (long long)B);
        return MPSL_ERR_NOMEM;
    }
    s->cap = B;
    return MPSL_OK;
}

/* out (B,D) = pool of tokens [t0, t0+len) of x (B,T,D): the CLS token or a mean. (A host
 * older than ABI 1.1 has no token_select: a mean over one token is the same.) */
static void cl_pool(const mpsl_kernels *k, float *out, const float *x, int64_t B, int64_t T,
                    int64_t D, int64_t t0, int64_t len)
{
    if (len == 1 && k->token_select_forward) {
        k->token_select_forward(out, x, B, T, D, t0);
    } else {
        k->meanpool_forward(out, x, B, T, D, t0, len);
    }
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
    cl_pool(k, s->pooled, x, B, T, D, s->t0[0], s->len[0]);
    if (s->n_seg > 1) {
        for (int i = 1; i < s->n_seg; i++) {
            cl_pool(k, s->tmp, x, B, T, D, s->t0[i], s->len[i]);
            for (int64_t j = 0; j < B * D; j++) {
                s->pooled[j] += s->tmp[j];
            }
        }
        float inv = 1.0f / (float)s->n_seg;
        for (int64_t j = 0; j < B * D; j++) {
            s->pooled[j] *= inv;
        }
    }
    const float *feat = s->pooled;                 // (B,D) what the linear layer sees
    if (s->norm) {
        k->layernorm_forward(s->normed, s->mean, s->rstd, s->pooled, w->param + s->off_nw,
                             w->param + s->off_nb, B, D, s->eps);
        feat = s->normed;
    }
    k->linear_forward(out->data, feat, w->param + s->off_w, w->param + s->off_b, B, D, s->C);
    out->dtype = MPSL_F32;
    out->ndim = 2;
    out->shape[0] = B, out->shape[1] = s->C;
    s->saved_B = B;
    return MPSL_OK;
}

/* Where the gradient of the tensor at [off, off+count) goes, or NULL: no gradient buffer, no
 * such tensor, or all its entries frozen by the host (w->trainable, e.g. optimizer groups). */
static float *cl_grad(const mpsl_weights *w, int64_t off, int64_t count)
{
    if (!w->grad || off < 0 || (w->trainable && !memchr(w->trainable + off, 1, (size_t)count))) {
        return NULL;
    }
    return w->grad + off;
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
    float *g_w = cl_grad(w, s->off_w, s->C * D), *g_b = cl_grad(w, s->off_b, s->C);
    float *g_nw = cl_grad(w, s->off_nw, D), *g_nb = cl_grad(w, s->off_nb, D);
    // d feat is needed for the input's gradient and, with norm, for fc_norm's
    int dfeat = dinp || g_nw || g_nb;
    k->linear_backward(dfeat ? s->tmp : NULL, g_w, g_b, dout->data,
                       s->norm ? s->normed : s->pooled, w->param + s->off_w, B, D, s->C);
    if (s->norm && dfeat) {
        k->layernorm_backward(dinp ? s->tmp2 : NULL, g_nw, g_nb, s->tmp, s->pooled,
                              w->param + s->off_nw, s->mean, s->rstd, B, D);
        if (dinp) {
            memcpy(s->tmp, s->tmp2, (size_t)(B * D) * sizeof(float));
        }
    }
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
            if (s->len[i] == 1 && k->token_select_backward) {
                k->token_select_backward(dinp, s->tmp, B, T, D, s->t0[i]);
            } else {
                k->meanpool_backward(dinp, s->tmp, B, T, D, s->t0[i], s->len[i]);
            }
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

MPSL_PLUGIN(MPSL_KIND_HEAD, "classifier", "1.1.0",
            "pool segments (CLS or mean), average, optional fc_norm, linear to class logits",
            &cl_api, cl_params, cl_spec);
