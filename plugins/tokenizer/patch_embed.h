/* patch_embed.h: the patch embedding shared by the image and audio tokenizers, included by
 * image_patch.c and audio_patch.c (each stays one self-contained plugin). An input (C,H,W)
 * is cut into Ph x Pw patches taken every Sh rows and Sw columns (non-overlapping when the
 * stride equals the patch, overlapping as in AST when it is smaller), each patch is
 * projected linearly to D features (timm's PatchEmbed conv written as gather + matmul),
 * optionally preceded by a learned CLS token, plus learned position embeddings.
 *
 * Parameters (timm names): patch_embed.proj.weight (D, C*Ph*Pw), patch_embed.proj.bias (D),
 * cls_token (1,1,D) when cls, pos_embed (1,T,D) when pos; T = nH*nW + cls. */
#ifndef MPSL_PATCH_EMBED_H
#define MPSL_PATCH_EMBED_H

#include <math.h>
#include <string.h>

#include <mpsl/plugin.h>

#include "tok_common.h"

typedef struct {
    const mpsl_host *h;
    const char *name;         // plugin name, first word of every message
    const char *raw;          // what the raw input is, for the din refusal ("pixels")
    int64_t C, H, W;          // per-sample input (C,H,W)
    int64_t Ph, Pw, Sh, Sw;   // patch size and stride
    int64_t nH, nW;           // patches along H and W
    int64_t nP, K, T, D;      // patches, features per patch (C*Ph*Pw), tokens, width
    int cls, pos;
    int tiled;                // square patches with stride = patch tiling the input exactly
    int64_t off_w, off_b, off_cls, off_pos; // offsets in the flat buffer (-1: absent)
    // saved for backward, grown on demand
    int64_t cap;              // batch capacity of the buffers below
    float *patches;           // (B, nP, K)
    float *proj;              // (B, nP, D) patch tokens before CLS/positions are placed
    int64_t saved_B;          // batch of the last forward, -1 before the first
} pe_state;

static void pe_destroy(void *state)
{
    pe_state *s = state;
    if (!s) {
        return;
    }
    s->h->free(s->patches);
    s->h->free(s->proj);
    s->h->free(s);
}

/* Fill the geometry of s (allocated zeroed by the caller, who has validated that a patch
 * fits: H >= Ph, W >= Pw), check the kernels it will call and declare its parameters.
 * Returns MPSL_OK or a status with err set; the caller then calls pe_destroy(s). */
static int pe_setup(pe_state *s, const mpsl_host *h, const mpsl_module_init *init,
                    const char *name, const char *raw, const int64_t chw[3],
                    const int64_t patch[2], const int64_t stride[2], int64_t D, int cls,
                    int pos, mpsl_error *err)
{
    const char *where = init->where ? init->where : "tokenizer";
    s->h = h;
    s->name = name;
    s->raw = raw;
    s->C = chw[0], s->H = chw[1], s->W = chw[2];
    s->Ph = patch[0], s->Pw = patch[1], s->Sh = stride[0], s->Sw = stride[1];
    s->D = D;
    s->nH = (s->H - s->Ph) / s->Sh + 1;
    s->nW = (s->W - s->Pw) / s->Sw + 1;
    s->nP = s->nH * s->nW;
    s->K = s->C * s->Ph * s->Pw;
    s->cls = cls != 0;
    s->pos = pos != 0;
    s->T = s->nP + s->cls;
    s->tiled = s->Ph == s->Pw && s->Sh == s->Ph && s->Sw == s->Pw && s->H % s->Ph == 0 &&
               s->W % s->Pw == 0;
    s->off_w = s->off_b = s->off_cls = s->off_pos = -1;
    s->saved_B = -1;

    TOK_REQUIRE_KERNEL(h, where, name, linear_forward, err);
    TOK_REQUIRE_KERNEL(h, where, name, linear_backward, err);
    if (s->tiled) {
        TOK_REQUIRE_KERNEL(h, where, name, patch_gather, err);
    } else {
        TOK_REQUIRE_KERNEL(h, where, name, patch_gather_strided, err);
    }
    if (s->pos) {
        TOK_REQUIRE_KERNEL(h, where, name, bias_add_forward, err);
        TOK_REQUIRE_KERNEL(h, where, name, bias_add_backward, err);
    }

    // PyTorch's default for a conv/linear layer: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    float bound = 1.0f / sqrtf((float)s->K);
    int64_t wshape[2] = {s->D, s->K}, bshape[1] = {s->D};
    int64_t cshape[3] = {1, 1, s->D}, pshape[3] = {1, s->T, s->D};
    s->off_w = init->declare(init->ctx, "patch_embed.proj.weight", 2, wshape,
                             MPSL_INIT_UNIFORM, bound, 1, err);
    if (s->off_w < 0) {
        return MPSL_ERR_INVALID;
    }
    s->off_b = init->declare(init->ctx, "patch_embed.proj.bias", 1, bshape, MPSL_INIT_UNIFORM,
                             bound, 1, err);
    if (s->off_b < 0) {
        return MPSL_ERR_INVALID;
    }
    if (s->cls) {
        s->off_cls = init->declare(init->ctx, "cls_token", 3, cshape, MPSL_INIT_NORMAL, 0.02f,
                                   1, err);
        if (s->off_cls < 0) {
            return MPSL_ERR_INVALID;
        }
    }
    if (s->pos) {
        s->off_pos = init->declare(init->ctx, "pos_embed", 3, pshape, MPSL_INIT_NORMAL, 0.02f,
                                   1, err);
        if (s->off_pos < 0) {
            return MPSL_ERR_INVALID;
        }
    }
    return MPSL_OK;
}

static int pe_output_shape(void *state, int *ndim, int64_t *shape, int *cls)
{
    pe_state *s = state;
    *ndim = 2;
    shape[0] = s->T;
    shape[1] = s->D;
    if (cls) {
        *cls = s->cls;
    }
    return MPSL_OK;
}

static int pe_reserve(pe_state *s, int64_t B, mpsl_error *err)
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
        s->h->error_set(err, "%s: out of memory for a batch of %lld", s->name, (long long)B);
        return MPSL_ERR_NOMEM;
    }
    s->cap = B;
    return MPSL_OK;
}

static int pe_forward(void *state, const mpsl_weights *w, const mpsl_tensor *inp,
                      mpsl_tensor *out, mpsl_error *err)
{
    pe_state *s = state;
    const mpsl_kernels *k = s->h->kernels;
    if (inp->dtype != MPSL_F32 || inp->ndim != 4 || inp->shape[1] != s->C ||
        inp->shape[2] != s->H || inp->shape[3] != s->W) {
        s->h->error_set(err, "%s: expected input (B,%lld,%lld,%lld) float, got a "
                        "%d-dimensional tensor (B,%lld,%lld,%lld)", s->name, (long long)s->C,
                        (long long)s->H, (long long)s->W, inp->ndim,
                        (long long)inp->shape[1], (long long)inp->shape[2],
                        (long long)inp->shape[3]);
        return MPSL_ERR_INVALID;
    }
    int64_t B = inp->shape[0], T = s->T, D = s->D, nP = s->nP;
    int rc = pe_reserve(s, B, err);
    if (rc != MPSL_OK) {
        return rc;
    }
    const float *img = inp->data;                  // (B,C,H,W)
    const float *wt = w->param + s->off_w;         // (D, K)
    const float *bias = w->param + s->off_b;       // (D)
    float *o = out->data;                          // (B,T,D)

    if (s->tiled) {
        k->patch_gather(s->patches, img, B, s->C, s->H, s->W, s->Ph);
    } else {
        k->patch_gather_strided(s->patches, img, B, s->C, s->H, s->W, s->Ph, s->Pw, s->Sh,
                                s->Sw);
    }
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
        k->bias_add_forward(o, o, w->param + s->off_pos, B, T * D); // pos (T,D)
    }
    out->dtype = MPSL_F32;
    out->ndim = 3;
    out->shape[0] = B, out->shape[1] = T, out->shape[2] = D;
    s->saved_B = B;
    return MPSL_OK;
}

static int pe_backward(void *state, const mpsl_weights *w, const mpsl_tensor *dout,
                       mpsl_tensor *din, mpsl_error *err)
{
    pe_state *s = state;
    const mpsl_kernels *k = s->h->kernels;
    if (din && din->data) {
        s->h->error_set(err, "%s cannot produce input gradients (raw %s need none): pass "
                        "din = NULL", s->name, s->raw);
        return MPSL_ERR_INVALID;
    }
    int64_t B = dout->shape[0], T = s->T, D = s->D, nP = s->nP;
    if (B != s->saved_B || dout->ndim != 3 || dout->shape[1] != T || dout->shape[2] != D) {
        s->h->error_set(err, "%s: backward got dout (%lld,%lld,%lld), expected "
                        "(%lld,%lld,%lld) from the last forward", s->name, (long long)B,
                        (long long)dout->shape[1], (long long)dout->shape[2],
                        (long long)s->saved_B, (long long)T, (long long)D);
        return MPSL_ERR_INVALID;
    }
    if (!w->grad) {
        return MPSL_OK; // nothing trainable asked for
    }
    const float *g = dout->data;                   // (B,T,D)
    if (s->pos && tok_trained(w, s->off_pos, T * D)) {
        k->bias_add_backward(w->grad + s->off_pos, g, B, T * D); // dpos (T,D)
    }
    if (s->cls && tok_trained(w, s->off_cls, D)) {
        float *dcls = w->grad + s->off_cls;        // (D)
        for (int64_t b = 0; b < B; b++) {
            const float *gb = g + b * T * D;
            for (int64_t d = 0; d < D; d++) {
                dcls[d] += gb[d];
            }
        }
    }
    float *dw = tok_trained(w, s->off_w, D * s->K) ? w->grad + s->off_w : NULL;
    float *db = tok_trained(w, s->off_b, D) ? w->grad + s->off_b : NULL;
    if (!dw && !db) {
        return MPSL_OK;
    }
    const float *gpatch = g;                       // (B*nP, D) rows of patch tokens
    if (s->cls) {
        for (int64_t b = 0; b < B; b++) {
            memcpy(s->proj + b * nP * D, g + (b * T + 1) * D, (size_t)(nP * D) * sizeof(float));
        }
        gpatch = s->proj;
    }
    k->linear_backward(NULL, dw, db, gpatch, s->patches, w->param + s->off_w, B * nP, s->K, D);
    return MPSL_OK;
}

#endif
