/* audio_patch.c: the AST (Audio Spectrogram Transformer) patch embedding as a tokenizer. A
 * log-mel spectrogram (C, F, Tf) = (channels, mel bins, frames) is cut into P x P patches
 * taken every stride_f bins and stride_t frames (overlapping: AST uses patch 16, stride 10),
 * each projected linearly to D features, optionally preceded by a learned CLS token, plus
 * learned position embeddings. Tokens are ordered frequency-major (the order of flattening
 * AST's conv output (D, nF, nT)). Parameter names follow timm, as image_patch's do. */
#include <mpsl/plugin.h>

#include "patch_embed.h"

typedef struct {
    int64_t patch;
    int64_t stride_f, stride_t;
    int64_t dim;
    int cls;
    int pos_embed;
} ap_params;

static const mpsl_param_spec ap_spec[] = {
    MPSL_PARAM_INT(ap_params, patch, "patch", 0, 1, 4096, "16",
                   "patch side P (mel bins and frames); the spectrogram must hold one patch"),
    MPSL_PARAM_INT(ap_params, stride_f, "stride_f", 0, 1, 4096, "10",
                   "step between patches along the mel bins (< patch: overlapping, as AST)"),
    MPSL_PARAM_INT(ap_params, stride_t, "stride_t", 0, 1, 4096, "10",
                   "step between patches along the frames (< patch: overlapping, as AST)"),
    MPSL_PARAM_INT(ap_params, dim, "dim", 0, 1, 65536, "768", "token width D"),
    MPSL_PARAM_BOOL(ap_params, cls, "cls", "true", "prepend a learned CLS token"),
    MPSL_PARAM_BOOL(ap_params, pos_embed, "pos_embed", "true",
                    "add learned position embeddings"),
};

static int ap_create(const mpsl_host *h, const mpsl_module_init *init, void **state,
                     mpsl_error *err)
{
    const ap_params *p = init->params;
    const char *where = init->where ? init->where : "tokenizer";
    if (init->in_dtype != MPSL_F32 || init->in_ndim != 3) {
        h->error_set(err, "%s: audio_patch expects float spectrograms of shape (C, mel bins, "
                     "frames), got a %d-dimensional %s input", where, init->in_ndim,
                     init->in_dtype == MPSL_F32 ? "float" : "int");
        return MPSL_ERR_INVALID;
    }
    int64_t C = init->in_shape[0], F = init->in_shape[1], Tf = init->in_shape[2];
    if (C < 1 || F < 1 || Tf < 1) {
        h->error_set(err, "%s: audio_patch: empty spectrogram shape (%lld,%lld,%lld)", where,
                     (long long)C, (long long)F, (long long)Tf);
        return MPSL_ERR_INVALID;
    }
    if (F < p->patch || Tf < p->patch) {
        h->error_set(err, "%s: patch: %lld is larger than the spectrogram (%lld mel bins x "
                     "%lld frames); expected a patch of at most %lld", where,
                     (long long)p->patch, (long long)F, (long long)Tf,
                     (long long)(F < Tf ? F : Tf));
        return MPSL_ERR_INVALID;
    }
    pe_state *s = h->alloc(sizeof(*s));
    if (!s) {
        h->error_set(err, "%s: audio_patch: out of memory", where);
        return MPSL_ERR_NOMEM;
    }
    int64_t chw[3] = {C, F, Tf}, patch[2] = {p->patch, p->patch};
    int64_t stride[2] = {p->stride_f, p->stride_t};
    int rc = pe_setup(s, h, init, "audio_patch", "spectrograms", chw, patch, stride, p->dim,
                      p->cls, p->pos_embed, err);
    if (rc != MPSL_OK) {
        pe_destroy(s);
        return rc;
    }
    *state = s;
    return MPSL_OK;
}

static const mpsl_module_api ap_api = {
    sizeof(mpsl_module_api), ap_create, pe_destroy, pe_output_shape, pe_forward, pe_backward,
};

MPSL_PLUGIN(MPSL_KIND_TOKENIZER, "audio_patch", "1.0.0",
            "AST patch embedding: overlapping P x P spectrogram patches -> linear -> [CLS] + "
            "position embeddings",
            &ap_api, ap_params, ap_spec);
