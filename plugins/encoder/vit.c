/* vit.c: the modality-agnostic transformer encoder of Meta-Transformer / timm's
 * VisionTransformer, as a module plugin: (B,T,D) tokens of any modality (early fusion is just a
 * longer sequence) through `depth` pre-norm blocks, (B,T,D) out. Semantics and parameter names
 * are timm's, so pretrained ViT weights load by name:
 *
 *     x = norm_pre(x)                                   (pre_norm: true)
 *     for each block:  x = x + attn.proj(attention(attn.qkv(norm1(x))))
 *                      x = x + mlp.fc2(gelu(mlp.fc1(norm2(x))))
 *     x = norm(x)                                       (final_norm: true)
 *
 * LayerNorm eps 1e-6, exact (erf) GELU, attention scale head_dim^-0.5, qkv packed as
 * Linear(D, 3D) whose output reshapes to (B,T,3,H,D/H). No dropout, layer scale or drop path.
 * T is free: each forward may see a different number of tokens (buffers grow on demand).
 *
 * Sizes: B batch, T tokens, D width, H heads, Hd = round(D * mlp_ratio) MLP hidden width,
 * N = B*T token rows, A = B*H*T*T attention probabilities.
 *
 * SAVED ACTIVATIONS (float32, the forward keeps exactly these for backward):
 *   per block:  x_in (N,D), ln1 (N,D), qkv (N,3D), attn (N,D), x_mid (N,D), ln2 (N,D),
 *               fc1 pre-activation (N,Hd), gelu out (N,Hd), att probs (B,H,T,T),
 *               mean/rstd of norm1 and norm2 (4 x N)
 *     bytes_block = 4 * (8*N*D + 2*N*Hd + B*H*T*T + 4*N)
 *   encoder:    pre_norm adds its input (N,D) and mean/rstd (2N); final_norm adds the last
 *               block's output (N,D) and mean/rstd (2N)
 *     bytes_saved = depth * bytes_block + 4 * (pre_norm + final_norm) * (N*D + 2*N)
 *   Without final_norm the last block writes straight into the caller's output.
 *   Backward workspace (allocated once per size, reused by every block and step):
 *     bytes_work  = 4 * (3*N*D + N*max(3D, Hd))
 *   For ViT-Ti (D=192, Hd=768, H=3, T=197, B=16, depth 12, final_norm): 46.2 MB per block,
 *   saved 557.2 MB, workspace 16.9 MB (parameters 21.4 MB, as many for gradients).
 *   Nothing else grows with the batch; the forward also reads the caller's input once (copied
 *   into x_in of block 0, or into the pre_norm input).
 */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <mpsl/plugin.h>

typedef struct {
    int64_t depth;
    int64_t heads;
    double mlp_ratio;
    int qkv_bias;
    int pre_norm;
    int final_norm;
    int64_t trainable_blocks;
    double eps;
} vit_params;

static const mpsl_param_spec vit_spec[] = {
    MPSL_PARAM_INT(vit_params, depth, "depth", 0, 1, 1024, "12", "number of transformer blocks"),
    MPSL_PARAM_INT(vit_params, heads, "heads", 0, 1, 4096, "12",
                   "attention heads; must divide the token width D"),
    MPSL_PARAM_FLOAT(vit_params, mlp_ratio, "mlp_ratio", 0, 0.01, 64, "4.0",
                     "MLP hidden width = round(D * mlp_ratio)"),
    MPSL_PARAM_BOOL(vit_params, qkv_bias, "qkv_bias", "true", "bias in the qkv projection"),
    MPSL_PARAM_BOOL(vit_params, pre_norm, "pre_norm", "false",
                    "LayerNorm the input tokens before the blocks (timm's norm_pre)"),
    MPSL_PARAM_BOOL(vit_params, final_norm, "final_norm", "true",
                    "LayerNorm after the last block (timm's norm)"),
    MPSL_PARAM_INT(vit_params, trainable_blocks, "trainable_blocks", 0, -1, 1024, "-1",
                   "train only the last N blocks (-1: all, 0: none); norm_pre is trained only "
                   "with all blocks, the final norm unless N is 0"),
    MPSL_PARAM_FLOAT(vit_params, eps, "eps", 0, 1e-12, 1.0, "1e-6", "LayerNorm epsilon"),
};

/* One declared tensor: its offset and size in the flat buffer, trained by declaration. */
typedef struct {
    int64_t off, count;   // off -1: not declared (qkv bias off, norms absent)
    int trainable;
} vit_tensor;

/* A block's tensors, in timm's state_dict order. */
enum { N1_W, N1_B, QKV_W, QKV_B, PROJ_W, PROJ_B, N2_W, N2_B, FC1_W, FC1_B, FC2_W, FC2_B, N_T };

typedef struct {
    vit_tensor t[N_T];
} vit_block;

/* One block's saved activations inside the arena, for the current N and A. */
typedef struct {
    float *x;          // (N,D)  block input (the residual stream)
    float *ln1;        // (N,D)  norm1(x)
    float *qkv;        // (N,3D)
    float *att;        // (B,H,T,T) softmax probabilities
    float *attn;       // (N,D)  heads concatenated, before proj
    float *x_mid;      // (N,D)  x + proj(attn)
    float *ln2;        // (N,D)  norm2(x_mid)
    float *fc1;        // (N,Hd) fc1 output, the GELU's input
    float *act;        // (N,Hd) gelu(fc1)
    float *mean1, *rstd1, *mean2, *rstd2; // (N) each
} vit_saved;

typedef struct {
    const mpsl_host *h;
    int64_t depth, H, D, Hd, T0; // T0: the T given at create (reported by output_shape)
    float eps;
    int qkv_bias, pre_norm, final_norm;
    vit_block *blocks;
    vit_tensor pre_w, pre_b, norm_w, norm_b;
    // one arena for all saved activations (laid out per forward by vit_reserve)
    float *saved;
    int64_t saved_cap;   // floats
    float *work;         // backward workspace
    int64_t work_cap;    // floats
    // what the last forward saw
    int64_t B, T;
    float *raw;          // (N,D) pre_norm: the input; else NULL
    float *pre_mean, *pre_rstd;   // (N) pre_norm stats
    float *last;         // (N,D) final_norm: the last block's output
    float *fin_mean, *fin_rstd;   // (N) final_norm stats
} vit_state;

/* ------------------------------------------------------------------ create / destroy */

static void vit_destroy(void *state)
{
    vit_state *s = state;
    if (!s) {
        return;
    }
    s->h->free(s->saved);
    s->h->free(s->work);
    s->h->free(s->blocks);
    s->h->free(s);
}

typedef struct {
    const mpsl_module_init *init;
    mpsl_error *err;
    int failed;
} vit_decl;

/* Declares `name` (prefixed with "blocks.{i}." when i >= 0). A failure is remembered so that
 * a whole list of declarations is checked once. */
static vit_tensor vit_declare(vit_decl *dc, int64_t i, const char *name, int ndim, int64_t d0,
                              int64_t d1, mpsl_init kind, float scale, int trainable)
{
    vit_tensor t = {-1, ndim == 2 ? d0 * d1 : d0, trainable};
    if (dc->failed) {
        return t;
    }
    char full[96];
    if (i >= 0) {
        snprintf(full, sizeof full, "blocks.%lld.%s", (long long)i, name);
    } else {
        snprintf(full, sizeof full, "%s", name);
    }
    int64_t shape[2] = {d0, d1};
    t.off = dc->init->declare(dc->init->ctx, full, ndim, shape, kind, scale, trainable,
                              dc->err);
    if (t.off < 0) {
        dc->failed = 1;
    }
    return t;
}

/* Where tensor t's gradient goes, or NULL when nobody needs it: no gradient buffer, frozen
 * by declaration, or every entry frozen by the host (w->trainable, e.g. optimizer groups). */
static float *vit_grad(const mpsl_weights *w, vit_tensor t)
{
    if (!w->grad || !t.trainable || t.off < 0) {
        return NULL;
    }
    if (w->trainable && !memchr(w->trainable + t.off, 1, (size_t)t.count)) {
        return NULL;
    }
    return w->grad + t.off;
}

/* The kernels this encoder calls: refuse a host without them rather than crash later. */
static int vit_kernels_present(const mpsl_kernels *k)
{
    size_t need = offsetof(mpsl_kernels, add) + sizeof(k->add);
    return k && k->size >= need && k->linear_forward && k->linear_backward &&
           k->layernorm_forward && k->layernorm_backward && k->gelu_forward &&
           k->gelu_backward && k->attention_forward && k->attention_backward && k->add;
}

static int vit_create(const mpsl_host *h, const mpsl_module_init *init, void **state,
                      mpsl_error *err)
{
    const vit_params *p = init->params;
    const char *where = init->where ? init->where : "encoder";
    if (!vit_kernels_present(h->kernels)) {
        h->error_set(err, "%s: vit needs the transformer kernels (layernorm, gelu, attention, "
                     "add) of ABI 1.1, which this host lacks", where);
        return MPSL_ERR_PLUGIN;
    }
    if (init->in_ndim != 2 || init->in_shape[0] < 1 || init->in_shape[1] < 1) {
        h->error_set(err, "%s: vit expects tokens of shape (T,D), got %d dimensions", where,
                     init->in_ndim);
        return MPSL_ERR_INVALID;
    }
    int64_t D = init->in_shape[1];
    if (D % p->heads != 0) {
        h->error_set(err, "%s: heads: %lld does not divide the token width D = %lld; choose "
                     "heads among the divisors of %lld (or change the tokenizers' dim)", where,
                     (long long)p->heads, (long long)D, (long long)D);
        return MPSL_ERR_INVALID;
    }
    if (p->trainable_blocks > p->depth) {
        h->error_set(err, "%s: trainable_blocks: %lld is more than depth (%lld); expected -1 "
                     "(all) or 0..%lld", where, (long long)p->trainable_blocks,
                     (long long)p->depth, (long long)p->depth);
        return MPSL_ERR_INVALID;
    }
    int64_t Hd = llround((double)D * p->mlp_ratio);
    if (Hd < 1) {
        h->error_set(err, "%s: mlp_ratio: %g gives an MLP of width %lld for D = %lld; expected "
                     "at least 1", where, p->mlp_ratio, (long long)Hd, (long long)D);
        return MPSL_ERR_INVALID;
    }
    vit_state *s = h->alloc(sizeof(*s));
    if (!s) {
        h->error_set(err, "%s: vit: out of memory", where);
        return MPSL_ERR_NOMEM;
    }
    s->h = h;
    s->depth = p->depth, s->H = p->heads, s->D = D, s->Hd = Hd, s->T0 = init->in_shape[0];
    s->eps = (float)p->eps;
    s->qkv_bias = p->qkv_bias, s->pre_norm = p->pre_norm, s->final_norm = p->final_norm;
    s->B = -1;
    const vit_tensor none = {-1, 0, 0};
    s->pre_w = s->pre_b = s->norm_w = s->norm_b = none;
    s->blocks = h->alloc((size_t)s->depth * sizeof(vit_block));
    if (!s->blocks) {
        h->error_set(err, "%s: vit: out of memory", where);
        h->free(s);
        return MPSL_ERR_NOMEM;
    }
    int all = p->trainable_blocks < 0 || p->trainable_blocks == p->depth;
    int64_t first_trained = p->trainable_blocks < 0 ? 0 : s->depth - p->trainable_blocks;
    int norm_trainable = p->trainable_blocks != 0;

    // declaration order follows timm's state_dict: norm_pre, blocks, norm
    vit_decl dc = {init, err, 0};
    const mpsl_init W = MPSL_INIT_NORMAL, Z = MPSL_INIT_ZEROS, O = MPSL_INIT_ONES;
    const float std = 0.02f;
    if (s->pre_norm) {
        s->pre_w = vit_declare(&dc, -1, "norm_pre.weight", 1, D, 0, O, 0, all);
        s->pre_b = vit_declare(&dc, -1, "norm_pre.bias", 1, D, 0, Z, 0, all);
    }
    for (int64_t i = 0; i < s->depth; i++) {
        vit_tensor *bt = s->blocks[i].t;
        int t = i >= first_trained;
        bt[N1_W] = vit_declare(&dc, i, "norm1.weight", 1, D, 0, O, 0, t);
        bt[N1_B] = vit_declare(&dc, i, "norm1.bias", 1, D, 0, Z, 0, t);
        bt[QKV_W] = vit_declare(&dc, i, "attn.qkv.weight", 2, 3 * D, D, W, std, t);
        bt[QKV_B] = s->qkv_bias ? vit_declare(&dc, i, "attn.qkv.bias", 1, 3 * D, 0, Z, 0, t)
                                : none;
        bt[PROJ_W] = vit_declare(&dc, i, "attn.proj.weight", 2, D, D, W, std, t);
        bt[PROJ_B] = vit_declare(&dc, i, "attn.proj.bias", 1, D, 0, Z, 0, t);
        bt[N2_W] = vit_declare(&dc, i, "norm2.weight", 1, D, 0, O, 0, t);
        bt[N2_B] = vit_declare(&dc, i, "norm2.bias", 1, D, 0, Z, 0, t);
        bt[FC1_W] = vit_declare(&dc, i, "mlp.fc1.weight", 2, Hd, D, W, std, t);
        bt[FC1_B] = vit_declare(&dc, i, "mlp.fc1.bias", 1, Hd, 0, Z, 0, t);
        bt[FC2_W] = vit_declare(&dc, i, "mlp.fc2.weight", 2, D, Hd, W, std, t);
        bt[FC2_B] = vit_declare(&dc, i, "mlp.fc2.bias", 1, D, 0, Z, 0, t);
    }
    if (s->final_norm) {
        s->norm_w = vit_declare(&dc, -1, "norm.weight", 1, D, 0, O, 0, norm_trainable);
        s->norm_b = vit_declare(&dc, -1, "norm.bias", 1, D, 0, Z, 0, norm_trainable);
    }
    if (dc.failed) {
        vit_destroy(s);
        return MPSL_ERR_INVALID;
    }
    *state = s;
    return MPSL_OK;
}

static int vit_output_shape(void *state, int *ndim, int64_t *shape, int *cls)
{
    vit_state *s = state;
    *ndim = 2;
    shape[0] = s->T0;
    shape[1] = s->D;
    if (cls) {
        *cls = 0;
    }
    return MPSL_OK;
}

/* ------------------------------------------------------------------ buffers */

static int64_t vit_block_floats(const vit_state *s, int64_t N, int64_t A)
{
    return 8 * N * s->D + 2 * N * s->Hd + A + 4 * N;
}

/* Block i's views into the arena for N rows and A attention probabilities. */
static vit_saved vit_block_view(const vit_state *s, int64_t i, int64_t N, int64_t A)
{
    int64_t D = s->D, Hd = s->Hd;
    float *p = s->saved + i * vit_block_floats(s, N, A);
    vit_saved v;
    v.x = p, p += N * D;
    v.ln1 = p, p += N * D;
    v.qkv = p, p += 3 * N * D;
    v.attn = p, p += N * D;
    v.x_mid = p, p += N * D;
    v.ln2 = p, p += N * D;
    v.fc1 = p, p += N * Hd;
    v.act = p, p += N * Hd;
    v.att = p, p += A;
    v.mean1 = p, p += N;
    v.rstd1 = p, p += N;
    v.mean2 = p, p += N;
    v.rstd2 = p;
    return v;
}

/* Grows the saved-activation arena for a forward of (B,T) and lays out the encoder-level
 * views after the blocks. Contents are not kept across a growth (a forward refills them). */
static int vit_reserve(vit_state *s, int64_t B, int64_t T, mpsl_error *err)
{
    int64_t N = B * T, D = s->D, A = B * s->H * T * T;
    int64_t need = s->depth * vit_block_floats(s, N, A) +
                   (s->pre_norm + s->final_norm) * (N * D + 2 * N);
    if (need > s->saved_cap) {
        s->h->free(s->saved);
        s->saved_cap = 0;
        s->saved = s->h->alloc((size_t)need * sizeof(float));
        if (!s->saved) {
            s->h->error_set(err, "vit: out of memory for the activations of a batch of %lld x "
                            "%lld tokens (%.1f MB)", (long long)B, (long long)T,
                            (double)need * 4e-6);
            return MPSL_ERR_NOMEM;
        }
        s->saved_cap = need;
    }
    float *p = s->saved + s->depth * vit_block_floats(s, N, A);
    s->raw = s->pre_mean = s->pre_rstd = s->last = s->fin_mean = s->fin_rstd = NULL;
    if (s->pre_norm) {
        s->raw = p, p += N * D;
        s->pre_mean = p, p += N;
        s->pre_rstd = p, p += N;
    }
    if (s->final_norm) {
        s->last = p, p += N * D;
        s->fin_mean = p, p += N;
        s->fin_rstd = p;
    }
    return MPSL_OK;
}

static int vit_reserve_work(vit_state *s, int64_t N, mpsl_error *err)
{
    int64_t wide = 3 * s->D > s->Hd ? 3 * s->D : s->Hd;
    int64_t need = 3 * N * s->D + N * wide;
    if (need > s->work_cap) {
        s->h->free(s->work);
        s->work_cap = 0;
        s->work = s->h->alloc((size_t)need * sizeof(float));
        if (!s->work) {
            s->h->error_set(err, "vit: out of memory for the backward workspace of %lld token "
                            "rows", (long long)N);
            return MPSL_ERR_NOMEM;
        }
        s->work_cap = need;
    }
    return MPSL_OK;
}

/* ------------------------------------------------------------------ forward / backward */

static int vit_check(const vit_state *s, const mpsl_tensor *t, const char *what,
                     mpsl_error *err)
{
    if (!t || !t->data || t->dtype != MPSL_F32 || t->ndim != 3 || t->shape[0] < 1 ||
        t->shape[1] < 1 || t->shape[2] != s->D) {
        s->h->error_set(err, "vit: %s should be float tokens (B,T,%lld), got %d dimensions "
                        "(%lld,%lld,%lld)", what, (long long)s->D, t ? t->ndim : 0,
                        t ? (long long)t->shape[0] : 0LL, t ? (long long)t->shape[1] : 0LL,
                        t ? (long long)t->shape[2] : 0LL);
        return MPSL_ERR_INVALID;
    }
    return MPSL_OK;
}

static int vit_forward(void *state, const mpsl_weights *w, const mpsl_tensor *inp,
                       mpsl_tensor *out, mpsl_error *err)
{
    vit_state *s = state;
    const mpsl_kernels *k = s->h->kernels;
    int rc = vit_check(s, inp, "input", err);
    if (rc != MPSL_OK) {
        return rc;
    }
    int64_t B = inp->shape[0], T = inp->shape[1], N = B * T, D = s->D, H = s->H, Hd = s->Hd;
    int64_t A = B * H * T * T;
    s->B = -1;   // no valid forward saved until this one completes
    if ((rc = vit_reserve(s, B, T, err)) != MPSL_OK) {
        return rc;
    }
    const float *P = w->param;
    const float *x0 = inp->data;   // (N,D)
    float *y = out->data;          // (N,D)
    vit_saved v0 = vit_block_view(s, 0, N, A);
    if (s->pre_norm) {
        memcpy(s->raw, x0, (size_t)(N * D) * sizeof(float));
        k->layernorm_forward(v0.x, s->pre_mean, s->pre_rstd, s->raw, P + s->pre_w.off,
                             P + s->pre_b.off, N, D, s->eps);
    } else {
        memcpy(v0.x, x0, (size_t)(N * D) * sizeof(float));
    }
    for (int64_t i = 0; i < s->depth; i++) {
        const vit_tensor *bt = s->blocks[i].t;
        vit_saved v = vit_block_view(s, i, N, A);
        // where this block's output goes: the next block's input, the final norm's input, or
        // (neither) straight into the caller's output
        float *x_out = i + 1 < s->depth ? vit_block_view(s, i + 1, N, A).x
                       : s->final_norm  ? s->last
                                        : y;
        k->layernorm_forward(v.ln1, v.mean1, v.rstd1, v.x, P + bt[N1_W].off, P + bt[N1_B].off,
                             N, D, s->eps);
        k->linear_forward(v.qkv, v.ln1, P + bt[QKV_W].off,
                          bt[QKV_B].off >= 0 ? P + bt[QKV_B].off : NULL, N, D, 3 * D);
        k->attention_forward(v.attn, v.att, v.qkv, B, T, D, H);
        k->linear_forward(v.x_mid, v.attn, P + bt[PROJ_W].off, P + bt[PROJ_B].off, N, D, D);
        k->add(v.x_mid, v.x_mid, v.x, N * D);
        k->layernorm_forward(v.ln2, v.mean2, v.rstd2, v.x_mid, P + bt[N2_W].off,
                             P + bt[N2_B].off, N, D, s->eps);
        k->linear_forward(v.fc1, v.ln2, P + bt[FC1_W].off, P + bt[FC1_B].off, N, D, Hd);
        k->gelu_forward(v.act, v.fc1, N * Hd);
        k->linear_forward(x_out, v.act, P + bt[FC2_W].off, P + bt[FC2_B].off, N, Hd, D);
        k->add(x_out, x_out, v.x_mid, N * D);
    }
    if (s->final_norm) {
        k->layernorm_forward(y, s->fin_mean, s->fin_rstd, s->last, P + s->norm_w.off,
                             P + s->norm_b.off, N, D, s->eps);
    }
    out->dtype = MPSL_F32;
    out->ndim = 3;
    out->shape[0] = B, out->shape[1] = T, out->shape[2] = D;
    s->B = B, s->T = T;
    return MPSL_OK;
}

static int vit_backward(void *state, const mpsl_weights *w, const mpsl_tensor *dout,
                        mpsl_tensor *din, mpsl_error *err)
{
    vit_state *s = state;
    const mpsl_kernels *k = s->h->kernels;
    int rc = vit_check(s, dout, "dout", err);
    if (rc != MPSL_OK) {
        return rc;
    }
    int64_t B = dout->shape[0], T = dout->shape[1], N = B * T, D = s->D, H = s->H, Hd = s->Hd;
    int64_t A = B * H * T * T;
    if (B != s->B || T != s->T) {
        s->h->error_set(err, "vit: backward for (%lld,%lld) tokens after a forward of "
                        "(%lld,%lld)", (long long)B, (long long)T, (long long)s->B,
                        (long long)s->T);
        return MPSL_ERR_INVALID;
    }
    float *dinp = din && din->data ? din->data : NULL;   // (N,D)
    const float *P = w->param;
    // The lowest block anything needs a gradient from: the input's gradient needs all of
    // them; otherwise the lowest block with a trained tensor (norm_pre trains only when
    // block 0 does, as its declaration follows trainable_blocks).
    float *g_pre_w = vit_grad(w, s->pre_w), *g_pre_b = vit_grad(w, s->pre_b);
    float *g_norm_w = vit_grad(w, s->norm_w), *g_norm_b = vit_grad(w, s->norm_b);
    int pre_grad = g_pre_w || g_pre_b;
    int64_t stop = s->depth;
    for (int64_t i = 0; i < s->depth && stop == s->depth; i++) {
        for (int j = 0; j < N_T; j++) {
            if (vit_grad(w, s->blocks[i].t[j])) {
                stop = i;
            }
        }
    }
    if (dinp || pre_grad) {
        stop = 0;
    }
    if (stop == s->depth && !g_norm_w && !g_norm_b) {
        return MPSL_OK;   // nothing trained and no input gradient wanted
    }
    if ((rc = vit_reserve_work(s, N, err)) != MPSL_OK) {
        return rc;
    }
    float *dx = s->work;            // (N,D) gradient w.r.t. the residual stream
    float *d1 = dx + N * D;         // (N,D) scratch
    float *d2 = d1 + N * D;         // (N,D) scratch
    float *wide = d2 + N * D;       // (N,Hd) MLP gradient, later (N,3D) qkv gradient
    if (s->final_norm) {
        k->layernorm_backward(stop < s->depth ? dx : NULL, g_norm_w, g_norm_b, dout->data,
                              s->last, P + s->norm_w.off, s->fin_mean, s->fin_rstd, N, D);
    } else {
        memcpy(dx, dout->data, (size_t)(N * D) * sizeof(float));
    }
    for (int64_t i = s->depth - 1; i >= stop; i--) {
        const vit_tensor *bt = s->blocks[i].t;
        float *g[N_T];
        for (int j = 0; j < N_T; j++) {
            g[j] = vit_grad(w, bt[j]);
        }
        vit_saved v = vit_block_view(s, i, N, A);
        int need_dx = i > stop || dinp || pre_grad;   // does anything below want d/dx?
        // MLP branch: x_out = x_mid + fc2(gelu(fc1(norm2(x_mid))))
        float *dh = wide;
        k->linear_backward(dh, g[FC2_W], g[FC2_B], dx, v.act, P + bt[FC2_W].off, N, Hd, D);
        k->gelu_backward(dh, dh, v.fc1, N * Hd);
        k->linear_backward(d1, g[FC1_W], g[FC1_B], dh, v.ln2, P + bt[FC1_W].off, N, D, Hd);
        k->layernorm_backward(d2, g[N2_W], g[N2_B], d1, v.x_mid, P + bt[N2_W].off, v.mean2,
                              v.rstd2, N, D);
        k->add(dx, dx, d2, N * D);   // dx is now d/dx_mid
        // attention branch: x_mid = x + proj(attention(qkv(norm1(x))))
        float *dqkv = wide;
        k->linear_backward(d1, g[PROJ_W], g[PROJ_B], dx, v.attn, P + bt[PROJ_W].off, N, D, D);
        k->attention_backward(dqkv, d1, v.qkv, v.att, B, T, D, H);
        // (the block at `stop` without need_dx has a trained tensor: norm1 may need d1)
        k->linear_backward(d1, g[QKV_W], g[QKV_B], dqkv, v.ln1, P + bt[QKV_W].off, N, D,
                           3 * D);
        if (need_dx || g[N1_W] || g[N1_B]) {
            k->layernorm_backward(need_dx ? d2 : NULL, g[N1_W], g[N1_B], d1, v.x,
                                  P + bt[N1_W].off, v.mean1, v.rstd1, N, D);
        }
        if (need_dx) {
            k->add(dx, dx, d2, N * D);   // dx is now d/dx of this block's input
        }
    }
    if (s->pre_norm && (dinp || pre_grad)) {
        k->layernorm_backward(dinp, g_pre_w, g_pre_b, dx, s->raw, P + s->pre_w.off,
                              s->pre_mean, s->pre_rstd, N, D);
    } else if (dinp) {
        memcpy(dinp, dx, (size_t)(N * D) * sizeof(float));
    }
    if (dinp) {
        din->dtype = MPSL_F32;
        din->ndim = 3;
        din->shape[0] = B, din->shape[1] = T, din->shape[2] = D;
    }
    return MPSL_OK;
}

static const mpsl_module_api vit_api = {
    sizeof(mpsl_module_api), vit_create, vit_destroy, vit_output_shape, vit_forward,
    vit_backward,
};

MPSL_PLUGIN(MPSL_KIND_ENCODER, "vit", "1.0.0",
            "pre-norm ViT encoder (timm VisionTransformer blocks) over any token sequence",
            &vit_api, vit_params, vit_spec);
