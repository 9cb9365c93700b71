/* image_patch.c: the ViT patch embedding as a tokenizer. An image (C,H,W) is cut into
 * non-overlapping P x P patches, each projected linearly to D features (the stride-P
 * convolution of timm's PatchEmbed), optionally preceded by a learned CLS token and plus
 * learned position embeddings. Parameter names follow timm, so pretrained weights map 1:1.
 * The embedding itself is patch_embed.h, shared with audio_patch. */
#include <mpsl/plugin.h>

#include "patch_embed.h"

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
    pe_state *s = h->alloc(sizeof(*s));
    if (!s) {
        h->error_set(err, "%s: image_patch: out of memory", where);
        return MPSL_ERR_NOMEM;
    }
    // non-overlapping: the stride is the patch
    int64_t chw[3] = {C, H, W}, patch[2] = {p->patch, p->patch};
    int rc = pe_setup(s, h, init, "image_patch", "pixels", chw, patch, patch, p->dim, p->cls,
                      p->pos_embed, err);
    if (rc != MPSL_OK) {
        pe_destroy(s);
        return rc;
    }
    *state = s;
    return MPSL_OK;
}

static const mpsl_module_api ip_api = {
    sizeof(mpsl_module_api), ip_create, pe_destroy, pe_output_shape, pe_forward, pe_backward,
};

MPSL_PLUGIN(MPSL_KIND_TOKENIZER, "image_patch", "1.0.0",
            "ViT patch embedding: P x P patches -> linear -> [CLS] + position embeddings",
            &ip_api, ip_params, ip_spec);
