/* table_profiled.c: the kernel table with every entry timed into its kind (profile.h), which
 * kernels_table() hands out instead of the plain one when MPSL_PROFILE=1. Each wrapper calls
 * the kernel itself: results are the same bit for bit. */
#include "../util/profile.h"
#include "../util/util.h"
#include "kernels.h"

#define TIMED(kind, call)                                                                      \
    do {                                                                                       \
        double t0_ = mpsl_now();                                                               \
        call;                                                                                  \
        profile_kernel_add(kind, mpsl_now() - t0_);                                            \
    } while (0)

static void p_linear_forward(float *out, const float *inp, const float *w, const float *b,
                             int64_t N, int64_t IC, int64_t OC)
{
    TIMED(PK_LINEAR_FORWARD, kern_linear_forward(out, inp, w, b, N, IC, OC));
}
static void p_linear_backward(float *dinp, float *dw, float *db, const float *dout,
                              const float *inp, const float *w, int64_t N, int64_t IC, int64_t OC)
{
    TIMED(PK_LINEAR_BACKWARD, kern_linear_backward(dinp, dw, db, dout, inp, w, N, IC, OC));
}
static void p_relu_forward(float *out, const float *inp, int64_t N)
{
    TIMED(PK_ACTIVATION, kern_relu_forward(out, inp, N));
}
static void p_relu_backward(float *dinp, const float *dout, const float *inp, int64_t N)
{
    TIMED(PK_ACTIVATION, kern_relu_backward(dinp, dout, inp, N));
}
static void p_meanpool_forward(float *out, const float *inp, int64_t B, int64_t T, int64_t D,
                               int64_t t0, int64_t len)
{
    TIMED(PK_LAYOUT, kern_meanpool_forward(out, inp, B, T, D, t0, len));
}
static void p_meanpool_backward(float *dinp, const float *dout, int64_t B, int64_t T,
                                int64_t D, int64_t t0, int64_t len)
{
    TIMED(PK_LAYOUT, kern_meanpool_backward(dinp, dout, B, T, D, t0, len));
}
static double p_cross_entropy(float *dlogits, const float *logits, const int32_t *labels,
                              int64_t B, int64_t C, float scale, int64_t *correct)
{
    double v;
    TIMED(PK_LOSS, v = kern_cross_entropy(dlogits, logits, labels, B, C, scale, correct));
    return v;
}
static void p_patch_gather(float *out, const float *img, int64_t B, int64_t Cin, int64_t H,
                           int64_t W, int64_t P)
{
    TIMED(PK_LAYOUT, kern_patch_gather(out, img, B, Cin, H, W, P));
}
static void p_layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                                const float *w, const float *b, int64_t N, int64_t C, float eps)
{
    TIMED(PK_LAYERNORM, kern_layernorm_forward(out, mean, rstd, inp, w, b, N, C, eps));
}
static void p_layernorm_backward(float *dinp, float *dw, float *db, const float *dout,
                                 const float *inp, const float *w, const float *mean,
                                 const float *rstd, int64_t N, int64_t C)
{
    TIMED(PK_LAYERNORM, kern_layernorm_backward(dinp, dw, db, dout, inp, w, mean, rstd, N, C));
}
static void p_gelu_forward(float *out, const float *inp, int64_t N)
{
    TIMED(PK_ACTIVATION, kern_gelu_forward(out, inp, N));
}
static void p_gelu_backward(float *dinp, const float *dout, const float *inp, int64_t N)
{
    TIMED(PK_ACTIVATION, kern_gelu_backward(dinp, dout, inp, N));
}
static void p_attention_forward(float *out, float *att, const float *qkv, int64_t B, int64_t T,
                                int64_t D, int64_t H)
{
    TIMED(PK_ATTENTION_FORWARD, kern_attention_forward(out, att, qkv, B, T, D, H));
}
static void p_attention_backward(float *dqkv, const float *dout, const float *qkv,
                                 const float *att, int64_t B, int64_t T, int64_t D, int64_t H)
{
    TIMED(PK_ATTENTION_BACKWARD, kern_attention_backward(dqkv, dout, qkv, att, B, T, D, H));
}
static void p_add(float *out, const float *a, const float *b, int64_t N)
{
    TIMED(PK_ELEMENTWISE, kern_add(out, a, b, N));
}
static void p_bias_add_forward(float *out, const float *inp, const float *bias, int64_t B,
                               int64_t M)
{
    TIMED(PK_ELEMENTWISE, kern_bias_add_forward(out, inp, bias, B, M));
}
static void p_bias_add_backward(float *dbias, const float *dout, int64_t B, int64_t M)
{
    TIMED(PK_ELEMENTWISE, kern_bias_add_backward(dbias, dout, B, M));
}
static void p_patch_gather_strided(float *out, const float *img, int64_t B, int64_t Cin,
                                   int64_t H, int64_t W, int64_t Ph, int64_t Pw, int64_t Sh,
                                   int64_t Sw)
{
    TIMED(PK_LAYOUT, kern_patch_gather_strided(out, img, B, Cin, H, W, Ph, Pw, Sh, Sw));
}
static void p_embedding_forward(float *out, const int32_t *ids, const float *tab, int64_t N,
                                int64_t V, int64_t D)
{
    TIMED(PK_LAYOUT, kern_embedding_forward(out, ids, tab, N, V, D));
}
static void p_embedding_backward(float *dtable, const float *dout, const int32_t *ids,
                                 int64_t N, int64_t V, int64_t D)
{
    TIMED(PK_LAYOUT, kern_embedding_backward(dtable, dout, ids, N, V, D));
}
static void p_token_select_forward(float *out, const float *inp, int64_t B, int64_t T,
                                   int64_t D, int64_t t)
{
    TIMED(PK_LAYOUT, kern_token_select_forward(out, inp, B, T, D, t));
}
static void p_token_select_backward(float *dinp, const float *dout, int64_t B, int64_t T,
                                    int64_t D, int64_t t)
{
    TIMED(PK_LAYOUT, kern_token_select_backward(dinp, dout, B, T, D, t));
}
static double p_contrastive_loss(float *dimg, float *dtxt, const float *img, const float *txt,
                                 int64_t B, int64_t E, float scale)
{
    double v;
    TIMED(PK_LOSS, v = kern_contrastive_loss(dimg, dtxt, img, txt, B, E, scale));
    return v;
}
static void p_l2norm_forward(float *out, float *rnorm, const float *inp, int64_t N, int64_t C,
                             float scale)
{
    TIMED(PK_L2NORM, kern_l2norm_forward(out, rnorm, inp, N, C, scale));
}
static void p_l2norm_backward(float *dinp, float *dscale, const float *dout, const float *inp,
                              const float *rnorm, int64_t N, int64_t C, float scale)
{
    TIMED(PK_L2NORM, kern_l2norm_backward(dinp, dscale, dout, inp, rnorm, N, C, scale));
}

static const mpsl_kernels profiled = {
    .size = sizeof(mpsl_kernels),
    .linear_forward = p_linear_forward,
    .linear_backward = p_linear_backward,
    .relu_forward = p_relu_forward,
    .relu_backward = p_relu_backward,
    .meanpool_forward = p_meanpool_forward,
    .meanpool_backward = p_meanpool_backward,
    .cross_entropy = p_cross_entropy,
    .patch_gather = p_patch_gather,
    .layernorm_forward = p_layernorm_forward,
    .layernorm_backward = p_layernorm_backward,
    .gelu_forward = p_gelu_forward,
    .gelu_backward = p_gelu_backward,
    .attention_forward = p_attention_forward,
    .attention_backward = p_attention_backward,
    .add = p_add,
    .bias_add_forward = p_bias_add_forward,
    .bias_add_backward = p_bias_add_backward,
    .patch_gather_strided = p_patch_gather_strided,
    .embedding_forward = p_embedding_forward,
    .embedding_backward = p_embedding_backward,
    .token_select_forward = p_token_select_forward,
    .token_select_backward = p_token_select_backward,
    .contrastive_loss = p_contrastive_loss,
    .l2norm_forward = p_l2norm_forward,
    .l2norm_backward = p_l2norm_backward,
};

const mpsl_kernels *kernels_table_profiled(void) { return &profiled; }
