/* image_patch.c: the ViT patch embedding as a tokenizer. An image (C,H,W) is cut into
 * non-overlapping P x P patches, each projected linearly to D features (the stride-P
 * convolution of timm's PatchEmbed), optionally preceded by a learned CLS token and plus
 * learned position embeddings. Parameter names follow timm, so pretrained weights map 1:1. */
#include <math.h>
#include <string.h>

#include <mpsl/plugin.h>

typedef struct {
    int64_t patch;
    int64_t dim;
    int cls;
    int pos_embed;
} ip_params;

static const mpsl_param_spec ip_spec[] = {
    MPSL_PARAM_INT(ip_params, patch, "patch", 0, 1, 4096, "7",
                   "patch side P in pixels; must divide the image height and width"),
    MPSL_PARAM_INT(ip_params, dim, "dim", 0, 1, 65536, "64", "token width D"),
    MPSL_PARAM_BOOL(ip_params, cls, "cls", "true", "prepend a learned CLS token"),
    MPSL_PARAM_BOOL(ip_params, pos_embed, "pos_embed", "true",
                    "add learned position embeddings"),
};

typedef struct {
    const mpsl_host *h;
    int64_t C, H, W, P, D;
    int64_t nP, K, T; // patches per image, features per patch (C*P*P), tokens per image
    int cls, pos;
    int64_t off_w, off_b, off_cls, off_pos; // offsets in the flat buffer (-1: absent)
    // saved for backward, grown on demand
    int64_t cap;      // batch capacity of the buffers below
    float *patches;   // (B, nP, K)
    float *proj;      // (B, nP, D) patch tokens before CLS/positions are placed
    int64_t saved_B;  // batch of the last forward, -1 before the first
} ip_state;

static void ip_destroy(void *state)
{
    ip_state *s = state;
    if (!s) {
        return;
    }
    s->h->free(s->patches);
    s->h->free(s->proj);
    s->h->free(s);
}

static int ip_create(const mpsl_host *h, const mpsl_module_init *init, void **state,
                     mpsl_error *err)
{
    const ip_params *p = init->params;
    const char *where = init->where ? init->where : "tokenizer";
    if (init->in_dtype != MPSL_F32 || init->in_ndim != 3) {
        h->error_set(err, "%s: image_patch expects float images of shape (C,H,W), got a "
                     "%d-dimensional %s input", where, init->in_ndim,
                     init->in_dtype == MPSL_F32 ? "float" : "int");
        return MPSL_ERR_INVALID;
    }
    int64_t C = init->in_shape[0], H = init->in_shape[1], W = init->in_shape[2];
    if (C < 1 || H < 1 || W < 1) {
        h->error_set(err, "%s: image_patch: empty image shape (%lld,%lld,%lld)", where,
                     (long long)C, (long long)H, (long long)W);
        return MPSL_ERR_INVALID;
    }
    if (H % p->patch != 0 || W % p->patch != 0) {
        h->error_set(err, "%s: patch: %lld does not divide the image size %lldx%lld; expected "
                     "a patch side that divides both height and width (e.g. %s)", where,
                     (long long)p->patch, (long long)H, (long long)W,
                     H == 28 && W == 28 ? "4, 7 or 14" : "a common divisor");
        return MPSL_ERR_INVALID;
    }
    ip_state *s = h->alloc(sizeof(*s));
    if (!s) {
        h->error_set(err, "%s: image_patch: out of memory", where);
        return MPSL_ERR_NOMEM;
    }
    s->h = h;
    s->C = C, s->H = H, s->W = W, s->P = p->patch, s->D = p->dim;
    s->nP = (H / s->P) * (W / s->P);
    s->K = C * s->P * s->P;
    s->cls = p->cls != 0;
    s->pos = p->pos_embed != 0;
    s->T = s->nP + s->cls;
    s->off_cls = s->off_pos = -1;
    s->saved_B = -1;

    // PyTorch's default for a conv/linear layer: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    float bound = 1.0f / sqrtf((float)s->K);
    int64_t wshape[2] = {s->D, s->K}, bshape[1] = {s->D};
    int64_t cshape[3] = {1, 1, s->D}, pshape[3] = {1, s->T, s->D};
    s->off_w = init->declare(init->ctx, "patch_embed.proj.weight", 2, wshape,
                             MPSL_INIT_UNIFORM, bound, 1, err);
    if (s->off_w < 0) {
        goto fail;
    }
    s->off_b = init->declare(init->ctx, "patch_embed.proj.bias", 1, bshape, MPSL_INIT_UNIFORM,
                             bound, 1, err);
    if (s->off_b < 0) {
        goto fail;
    }
    if (s->cls) {
        s->off_cls = init->declare(init->ctx, "cls_token", 3, cshape, MPSL_INIT_NORMAL, 0.02f,
                                   1, err);
        if (s->off_cls < 0) {
            goto fail;
        }
    }
    if (s->pos) {
        s->off_pos = init->declare(init->ctx, "pos_embed", 3, pshape, MPSL_INIT_NORMAL, 0.02f,
                                   1, err);
        if (s->off_pos < 0) {
            goto fail;
        }
    }
    *state = s;
    return MPSL_OK;
fail:
    ip_destroy(s);
    return MPSL_ERR_INVALID;
}

static int ip_output_shape(void *state, int *ndim, int64_t *shape, int *cls)
{
    ip_state *s = state;
    *ndim = 2;
    shape[0] = s->T;
    shape[1] = s->D;
    if (cls) {
        *cls = s->cls;
    }
    return MPSL_OK;
}

static int ip_reserve(ip_state *s, int64_t B, mpsl_error *err)
{
    if (B <= s->cap) {
        return MPSL_OK;
    }
    s->h->free(s->patches);
    s->h->free(s->proj);
    s->cap = 0;
    s->patches = s->h->alloc((size_t)(B * s->nP * s->K) * sizeof(float));
    s->proj = s->h->alloc((size_t)(B * s->nP * s->D) * sizeof(float));
    if (!s->patches || !s->proj) {
        s->h->free(s->patches);
        s->h->free(s->proj);
        s->patches = s->proj = NULL;
        s->h->error_set(err, "image_patch: out of memory for a batch of %lld", (long long)B);
        return MPSL_ERR_NOMEM;
    }
    s->cap = B;
    return MPSL_OK;
}

static int ip_forward(void *state, const mpsl_weights *w, const mpsl_tensor *inp,
                      mpsl_tensor *out, mpsl_error *err)
{
    ip_state *s = state;
    const mpsl_kernels *k = s->h->kernels;
    if (inp->dtype != MPSL_F32 || inp->ndim != 4 || inp->shape[1] != s->C ||
        inp->shape[2] != s->H || inp->shape[3] != s->W) {
        s->h->error_set(err, "image_patch: expected input (B,%lld,%lld,%lld) float, got a "
                        "%d-dimensional tensor (B,%lld,%lld,%lld)", (long long)s->C,
                        (long long)s->H, (long long)s->W, inp->ndim,
                        (long long)inp->shape[1], (long long)inp->shape[2],
                        (long long)inp->shape[3]);
        return MPSL_ERR_INVALID;
    }
    int64_t B = inp->shape[0], T = s->T, D = s->D, nP = s->nP;
    int rc = ip_reserve(s, B, err);
    if (rc != MPSL_OK) {
        return rc;
    }
    const float *img = inp->data;                  // (B,C,H,W)
    const float *wt = w->param + s->off_w;         // (D, K)
    const float *bias = w->param + s->off_b;       // (D)
    float *o = out->data;                          // (B,T,D)

    k->patch_gather(s->patches, img, B, s->C, s->H, s->W, s->P);
    if (s->cls) {
        // the projection lands in a side buffer, then each sample's rows move down one token
        k->linear_forward(s->proj, s->patches, wt, bias, B * nP, s->K, D);
        const float *cls = w->param + s->off_cls;  // (D)
        for (int64_t b = 0; b < B; b++) {
            memcpy(o + b * T * D, cls, (size_t)D * sizeof(float));
            memcpy(o + (b * T + 1) * D, s->proj + b * nP * D, (size_t)(nP * D) * sizeof(float));
        }
    } else {
        k->linear_forward(o, s->patches, wt, bias, B * nP, s->K, D);
    }
    if (s->pos) {
        const float *pos = w->param + s->off_pos;  // (T, D)
        for (int64_t b = 0; b < B; b++) {
            float *ob = o + b * T * D;
            for (int64_t i = 0; i < T * D; i++) {
                ob[i] += pos[i];
            }
        }
    }
    out->dtype = MPSL_F32;
    out->ndim = 3;
    out->shape[0] = B, out->shape[1] = T, out->shape[2] = D;
    s->saved_B = B;
    return MPSL_OK;
}

static int ip_backward(void *state, const mpsl_weights *w, const mpsl_tensor *dout,
                       mpsl_tensor *din, mpsl_error *err)
{
    ip_state *s = state;
    const mpsl_kernels *k = s->h->kernels;
    if (din && din->data) {
        s->h->error_set(err, "image_patch cannot produce input gradients (raw pixels need "
                        "none): pass din = NULL");
        return MPSL_ERR_INVALID;
    }
    int64_t B = dout->shape[0], T = s->T, D = s->D, nP = s->nP;
    if (B != s->saved_B || dout->ndim != 3 || dout->shape[1] != T || dout->shape[2] != D) {
        s->h->error_set(err, "image_patch: backward got dout (%lld,%lld,%lld), expected "
                        "(%lld,%lld,%lld) from the last forward", (long long)B,
                        (long long)dout->shape[1], (long long)dout->shape[2],
                        (long long)s->saved_B, (long long)T, (long long)D);
        return MPSL_ERR_INVALID;
    }
    if (!w->grad) {
        return MPSL_OK; // nothing trainable asked for
    }
    const float *g = dout->data;                   // (B,T,D)
    if (s->pos) {
        float *dpos = w->grad + s->off_pos;        // (T,D)
        for (int64_t b = 0; b < B; b++) {
            const float *gb = g + b * T * D;
            for (int64_t i = 0; i < T * D; i++) {
                dpos[i] += gb[i];
            }
        }
    }
    const float *gpatch = g;                       // (B*nP, D) rows of patch tokens
    if (s->cls) {
        float *dcls = w->grad + s->off_cls;        // (D)
        for (int64_t b = 0; b < B; b++) {
            const float *gb = g + b * T * D;
            for (int64_t d = 0; d < D; d++) {
                dcls[d] += gb[d];
            }
            memcpy(s->proj + b * nP * D, gb + D, (size_t)(nP * D) * sizeof(float));
        }
        gpatch = s->proj;
    }
    k->linear_backward(NULL, w->grad + s->off_w, w->grad + s->off_b, gpatch, s->patches,
                       w->param + s->off_w, B * nP, s->K, D);
    return MPSL_OK;
}

static const mpsl_module_api ip_api = {
    sizeof(mpsl_module_api), ip_create, ip_destroy, ip_output_shape, ip_forward, ip_backward,
};

static const mpsl_plugin_desc ip_desc = {
    MPSL_ABI_MAJOR, MPSL_ABI_MINOR, "image_patch", "1.0.0", MPSL_KIND_TOKENIZER,
    "ViT patch embedding: P x P patches -> linear -> [CLS] + position embeddings",
    ip_spec, MPSL_COUNT(ip_spec), sizeof(ip_params), &ip_api,
};

MPSL_PLUGIN_EXPORT int mpsl_plugin_entry(const mpsl_host *h, const mpsl_plugin_desc **desc,
                                         mpsl_error *err);
MPSL_PLUGIN_EXPORT int mpsl_plugin_entry(const mpsl_host *h, const mpsl_plugin_desc **desc,
                                         mpsl_error *err)
{
    (void)h;
    (void)err;
    *desc = &ip_desc;
    return MPSL_OK;
}
