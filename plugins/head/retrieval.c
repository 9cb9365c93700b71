/* retrieval.c: the image-text retrieval head. The encoder sees each image's tokens followed by
 * its K captions, one token per caption (MPSL.md "Retrieval": the 5 captions of an image go
 * through the encoder together as one 5-token sequence). The token layout must have two
 * segments: 0 = image tokens starting with a CLS token, 1 = the K caption tokens (no CLS).
 *
 * Per sample the output is (1+K, E):
 *     row 0     img = head.img(fc_norm(x[CLS of segment 0]))
 *     row 1+k   txt_k = head.txt(fc_norm(x[caption token k]))
 * fc_norm (norm: true) is one LayerNorm shared by the image and caption features, as a
 * transformer's final norm is shared by all tokens; embed_dim E defaults to D.
 *
 * similarity: cosine (CLIP-style; not the paper's) then L2-normalises every row and scales it
 * by sqrt(exp(t)), so that the caller's raw dot products are exp(t) * cos(img, txt):
 *     out_row = sqrt(exp(min(t, ln 100))) * y_row / ||y_row||
 * t is the learnable scalar head.logit_scale, initialised to ln(1 / init_temperature), and
 * exp(t) is clamped at 100 as CLIP clamps it (the clamp passes no gradient beyond it, as
 * torch.clamp; the parameter itself is not changed); temperature: fixed uses the constant
 * 1 / init_temperature and declares nothing. Splitting the scale evenly over image and caption
 * rows keeps the loss, its gradient, Recall@K (which ranks the same dot products, a ranking
 * the positive scale leaves that of cos) and the test loss in the core unchanged, and keeps
 * the temperature where the head runs (the server in MPSL): its gradient comes back through
 * the head's dout like every other head parameter's, and the normalisation's FLOPs are counted
 * by the l2norm kernels. The default, similarity: dot, is the paper's reference setting.
 *
 * THE LOSS IS THE CALLER'S. As in the paper's reference code, it is the symmetric contrastive
 * loss of the rows' raw dot products (with similarity: dot, no normalisation, no temperature)
 * computed per caption index and summed:
 *     L = sum_k kernels->contrastive_loss(dimg_k, dtxt_k, img, txt_k, B, E, 1)
 * with img = out[:, 0, :] and txt_k = out[:, 1+k, :] gathered to contiguous (B,E) arrays; the
 * head's dout is dout[:, 0, :] = sum_k dimg_k and dout[:, 1+k, :] = dtxt_k. Recall@K ranks
 * the same dot products.
 *
 * Sizes: B batch, T tokens, D width, K captions per image, E embedding width, R = B*(1+K)
 * feature rows. Saved for backward: the gathered features (R,D), with norm the normed ones
 * (R,D) and mean/rstd (2R), with cosine the embeddings before normalisation (R,E) and their
 * inverse norms (R): 4 * (R*D + norm * (R*D + 2*R) + cosine * (R*E + R)) bytes; scratch
 * (R,E) + (R,D), plus (R,D) with norm. */
#include <math.h>
#include <stddef.h>
#include <string.h>

#include <mpsl/plugin.h>

enum { SIM_DOT, SIM_COSINE };
enum { TEMP_AUTO, TEMP_NONE, TEMP_FIXED, TEMP_LEARNABLE };

typedef struct {
    int64_t embed_dim;
    int norm;
    double eps;
    int similarity;
    int temperature;
    double init_temperature;
} rt_params;

static const mpsl_param_spec rt_spec[] = {
    MPSL_PARAM_INT(rt_params, embed_dim, "embed_dim", 0, 0, 1 << 20, "0",
                   "embedding width E of images and captions (0: the token width D)"),
    MPSL_PARAM_BOOL(rt_params, norm, "norm", "false",
                    "LayerNorm (fc_norm, shared) the image CLS and caption features"),
    MPSL_PARAM_FLOAT(rt_params, eps, "eps", 0, 1e-12, 1.0, "1e-6", "LayerNorm epsilon"),
    MPSL_PARAM_ENUM(rt_params, similarity, "similarity", "dot|cosine", "dot",
                    "dot: raw dot products (the paper's); cosine: L2-normalised embeddings "
                    "times exp(t) (CLIP)"),
    MPSL_PARAM_ENUM(rt_params, temperature, "temperature", "auto|none|fixed|learnable", "auto",
                    "the cosine logits' scale exp(t): learnable t, fixed, or none (scale 1); "
                    "auto: none with dot, learnable with cosine"),
    MPSL_PARAM_FLOAT(rt_params, init_temperature, "init_temperature", 0, 0.01, 100.0, "0.07",
                     "initial (fixed: constant) temperature; the logit scale is its inverse, "
                     "at most 100"),
};

/* CLIP's ceiling on the logit scale exp(t). */
#define MAX_LOGIT_SCALE 100.0f

typedef struct {
    const mpsl_host *h;
    int64_t T, D, E, K;
    int64_t img_t;    // the image CLS token
    int64_t txt_t0;   // the first caption token (K consecutive)
    int norm;
    float eps;
    int cosine;
    float fixed_scale;  // the logit scale without a learnable t (1 with temperature none)
    int64_t off_nw, off_nb, off_iw, off_ib, off_tw, off_tb; // off_n*: -1 without norm
    int64_t off_ls;     // head.logit_scale, -1 unless cosine with a learnable temperature
    int64_t cap;      // batch capacity
    // rows are ordered image features first (B), then captions (B*K, sample-major)
    float *feat;      // (R,D) saved: gathered tokens
    float *normed;    // (R,D) saved with norm
    float *mean, *rstd; // (R) saved with norm
    float *y;         // (R,E) scratch: embeddings / their gradients in row order
    float *dfeat;     // (R,D) scratch
    float *dnorm;     // (R,D) scratch with norm
    float *emb;       // (R,E) saved with cosine: embeddings before normalisation, row order
    float *rnorm;     // (R) saved with cosine: their inverse norms
    float row_scale;  // saved with cosine: sqrt of the logit scale the forward used
    int64_t saved_B;
} rt_state;

static void rt_free_buffers(rt_state *s)
{
    const mpsl_host *h = s->h;
    h->free(s->feat), h->free(s->normed), h->free(s->mean), h->free(s->rstd);
    h->free(s->y), h->free(s->dfeat), h->free(s->dnorm), h->free(s->emb), h->free(s->rnorm);
    s->feat = s->normed = s->mean = s->rstd = s->y = s->dfeat = s->dnorm = NULL;
    s->emb = s->rnorm = NULL;
    s->cap = 0;
}

static void rt_destroy(void *state)
{
    rt_state *s = state;
    if (s) {
        rt_free_buffers(s);
        s->h->free(s);
    }
}

static int rt_create(const mpsl_host *h, const mpsl_module_init *init, void **state,
                     mpsl_error *err)
{
    const rt_params *p = init->params;
    const char *where = init->where ? init->where : "head";
    if (init->in_ndim != 2 || init->in_shape[0] < 1 || init->in_shape[1] < 1) {
        h->error_set(err, "%s: retrieval expects tokens of shape (T,D), got %d dimensions",
                     where, init->in_ndim);
        return MPSL_ERR_INVALID;
    }
    int64_t T = init->in_shape[0], D = init->in_shape[1];
    const mpsl_token_layout *lay = init->layout;
    if (!lay || lay->n_segments != 2) {
        h->error_set(err, "%s: retrieval needs two token segments, the image (with CLS) and "
                     "its captions (one token each), got %d", where,
                     lay ? lay->n_segments : 0);
        return MPSL_ERR_INVALID;
    }
    for (int i = 0; i < 2; i++) {
        int64_t off = lay->segment[i].offset, len = lay->segment[i].length;
        if (off < 0 || len < 1 || off + len > T) {
            h->error_set(err, "%s: retrieval: segment %d (tokens %lld..%lld) lies outside the "
                         "%lld tokens", where, i, (long long)off, (long long)(off + len - 1),
                         (long long)T);
            return MPSL_ERR_INVALID;
        }
    }
    if (!lay->segment[0].has_cls) {
        h->error_set(err, "%s: retrieval embeds the image by its CLS token, but segment 0 has "
                     "none; enable the image tokenizer's cls", where);
        return MPSL_ERR_INVALID;
    }
    if (lay->segment[1].has_cls) {
        h->error_set(err, "%s: retrieval expects segment 1 to hold one token per caption "
                     "without a CLS token; disable the text tokenizer's cls", where);
        return MPSL_ERR_INVALID;
    }
    if (p->norm && !h->kernels->layernorm_forward) {
        h->error_set(err, "%s: retrieval: norm needs the layernorm kernel (ABI 1.1), which "
                     "this host lacks", where);
        return MPSL_ERR_PLUGIN;
    }
    int cosine = p->similarity == SIM_COSINE;
    int temp = p->temperature == TEMP_AUTO ? (cosine ? TEMP_LEARNABLE : TEMP_NONE)
                                           : p->temperature;
    if (!cosine && temp != TEMP_NONE) {
        h->error_set(err, "%s: retrieval: temperature: %s scales cosine similarities; with "
                     "similarity: dot the embeddings' norms are the scale (the paper's setting): "
                     "use similarity: cosine or leave temperature out", where,
                     temp == TEMP_FIXED ? "fixed" : "learnable");
        return MPSL_ERR_INVALID;
    }
    if (cosine && (h->kernels->size < offsetof(mpsl_kernels, l2norm_backward) + sizeof(void *) ||
                   !h->kernels->l2norm_forward || !h->kernels->l2norm_backward)) {
        h->error_set(err, "%s: retrieval: similarity: cosine needs the l2norm kernels (ABI 2.2), "
                     "which this host lacks", where);
        return MPSL_ERR_PLUGIN;
    }
    rt_state *s = h->alloc(sizeof(*s));
    if (!s) {
        h->error_set(err, "%s: retrieval: out of memory", where);
        return MPSL_ERR_NOMEM;
    }
    s->h = h;
    s->T = T, s->D = D, s->E = p->embed_dim ? p->embed_dim : D;
    s->K = lay->segment[1].length;
    s->img_t = lay->segment[0].offset;
    s->txt_t0 = lay->segment[1].offset;
    s->norm = p->norm, s->eps = (float)p->eps;
    s->cosine = cosine;
    s->fixed_scale = temp == TEMP_FIXED ? (float)(1.0 / p->init_temperature) : 1.0f;
    s->off_nw = s->off_nb = s->off_ls = -1;
    s->saved_B = -1;
    int64_t dshape[1] = {D}, wshape[2] = {s->E, D}, bshape[1] = {s->E};
    float bound = 1.0f / sqrtf((float)D);
    if (s->norm) {
        if ((s->off_nw = init->declare(init->ctx, "fc_norm.weight", 1, dshape, MPSL_INIT_ONES,
                                       0.0f, 1, err)) < 0 ||
            (s->off_nb = init->declare(init->ctx, "fc_norm.bias", 1, dshape, MPSL_INIT_ZEROS,
                                       0.0f, 1, err)) < 0) {
            goto fail;
        }
    }
    if ((s->off_iw = init->declare(init->ctx, "head.img.weight", 2, wshape, MPSL_INIT_UNIFORM,
                                   bound, 1, err)) < 0 ||
        (s->off_ib = init->declare(init->ctx, "head.img.bias", 1, bshape, MPSL_INIT_UNIFORM,
                                   bound, 1, err)) < 0 ||
        (s->off_tw = init->declare(init->ctx, "head.txt.weight", 2, wshape, MPSL_INIT_UNIFORM,
                                   bound, 1, err)) < 0 ||
        (s->off_tb = init->declare(init->ctx, "head.txt.bias", 1, bshape, MPSL_INIT_UNIFORM,
                                   bound, 1, err)) < 0) {
        goto fail;
    }
    int64_t one[1] = {1};
    if (temp == TEMP_LEARNABLE &&
        (s->off_ls = init->declare(init->ctx, "head.logit_scale", 1, one, MPSL_INIT_CONSTANT,
                                   (float)log(1.0 / p->init_temperature), 1, err)) < 0) {
        goto fail;
    }
    *state = s;
    return MPSL_OK;
fail:
    rt_destroy(s);
    return MPSL_ERR_INVALID;
}

static int rt_output_shape(void *state, int *ndim, int64_t *shape, int *cls)
{
    rt_state *s = state;
    *ndim = 2;
    shape[0] = 1 + s->K;
    shape[1] = s->E;
    if (cls) {
        *cls = 0;
    }
    return MPSL_OK;
}

static int rt_reserve(rt_state *s, int64_t B, mpsl_error *err)
{
    if (B <= s->cap) {
        return MPSL_OK;
    }
    rt_free_buffers(s);
    const mpsl_host *h = s->h;
    int64_t R = B * (1 + s->K);
    size_t rd = (size_t)(R * s->D) * sizeof(float);
    s->feat = h->alloc(rd);
    s->dfeat = h->alloc(rd);
    s->y = h->alloc((size_t)(R * s->E) * sizeof(float));
    int ok = s->feat && s->dfeat && s->y;
    if (s->norm) {
        s->normed = h->alloc(rd);
        s->dnorm = h->alloc(rd);
        s->mean = h->alloc((size_t)R * sizeof(float));
        s->rstd = h->alloc((size_t)R * sizeof(float));
        ok = ok && s->normed && s->dnorm && s->mean && s->rstd;
    }
    if (s->cosine) {
        s->emb = h->alloc((size_t)(R * s->E) * sizeof(float));
        s->rnorm = h->alloc((size_t)R * sizeof(float));
        ok = ok && s->emb && s->rnorm;
    }
    if (!ok) {
        rt_free_buffers(s);
        h->error_set(err, "retrieval: out of memory for a batch of %lld", (long long)B);
        return MPSL_ERR_NOMEM;
    }
    s->cap = B;
    return MPSL_OK;
}

/* Moves rows between the per-sample order (B,1+K,W) and the head's row order (image rows,
 * then caption rows). to_rows: src is per-sample; else src is row-ordered. */
static void rt_permute(float *dst, const float *src, int64_t B, int64_t K, int64_t W,
                       int to_rows)
{
    size_t row = (size_t)W * sizeof(float);
    for (int64_t b = 0; b < B; b++) {
        float *img = to_rows ? dst + b * W : dst + b * (1 + K) * W;
        const float *simg = to_rows ? src + b * (1 + K) * W : src + b * W;
        memcpy(img, simg, row);
        float *txt = to_rows ? dst + (B + b * K) * W : dst + (b * (1 + K) + 1) * W;
        const float *stxt = to_rows ? src + (b * (1 + K) + 1) * W : src + (B + b * K) * W;
        memcpy(txt, stxt, (size_t)K * row);
    }
}

/* The logit scale exp(t) (clamped at 100), the fixed one, or 1. */
static float rt_logit_scale(const rt_state *s, const mpsl_weights *w)
{
    if (s->off_ls < 0) {
        return s->fixed_scale;
    }
    float t = w->param[s->off_ls];
    return t < logf(MAX_LOGIT_SCALE) ? expf(t) : MAX_LOGIT_SCALE;
}

static int rt_forward(void *state, const mpsl_weights *w, const mpsl_tensor *inp,
                      mpsl_tensor *out, mpsl_error *err)
{
    rt_state *s = state;
    const mpsl_kernels *k = s->h->kernels;
    if (inp->dtype != MPSL_F32 || inp->ndim != 3 || inp->shape[1] != s->T ||
        inp->shape[2] != s->D) {
        s->h->error_set(err, "retrieval: expected tokens (B,%lld,%lld) float, got %d "
                        "dimensions (B,%lld,%lld)", (long long)s->T, (long long)s->D,
                        inp->ndim, (long long)inp->shape[1], (long long)inp->shape[2]);
        return MPSL_ERR_INVALID;
    }
    int64_t B = inp->shape[0], T = s->T, D = s->D, E = s->E, K = s->K;
    int rc = rt_reserve(s, B, err);
    if (rc != MPSL_OK) {
        return rc;
    }
    const float *x = inp->data;   // (B,T,D)
    for (int64_t b = 0; b < B; b++) {
        memcpy(s->feat + b * D, x + (b * T + s->img_t) * D, (size_t)D * sizeof(float));
        memcpy(s->feat + (B + b * K) * D, x + (b * T + s->txt_t0) * D,
               (size_t)(K * D) * sizeof(float));
    }
    const float *f = s->feat;     // (R,D)
    if (s->norm) {
        k->layernorm_forward(s->normed, s->mean, s->rstd, s->feat, w->param + s->off_nw,
                             w->param + s->off_nb, B * (1 + K), D, s->eps);
        f = s->normed;
    }
    float *y = s->cosine ? s->emb : s->y;   // cosine keeps the embeddings for backward
    k->linear_forward(y, f, w->param + s->off_iw, w->param + s->off_ib, B, D, E);
    k->linear_forward(y + B * E, f + B * D, w->param + s->off_tw, w->param + s->off_tb,
                      B * K, D, E);
    if (s->cosine) {
        s->row_scale = sqrtf(rt_logit_scale(s, w));
        k->l2norm_forward(s->y, s->rnorm, s->emb, B * (1 + K), E, s->row_scale);
    }
    rt_permute(out->data, s->y, B, K, E, 0);
    out->dtype = MPSL_F32;
    out->ndim = 3;
    out->shape[0] = B, out->shape[1] = 1 + K, out->shape[2] = E;
    s->saved_B = B;
    return MPSL_OK;
}

/* Where the gradient of the tensor at [off, off+count) goes, or NULL: no gradient buffer, no
 * such tensor, or all its entries frozen by the host (w->trainable, e.g. optimizer groups). */
static float *rt_grad(const mpsl_weights *w, int64_t off, int64_t count)
{
    if (!w->grad || off < 0 || (w->trainable && !memchr(w->trainable + off, 1, (size_t)count))) {
        return NULL;
    }
    return w->grad + off;
}

static int rt_backward(void *state, const mpsl_weights *w, const mpsl_tensor *dout,
                       mpsl_tensor *din, mpsl_error *err)
{
    rt_state *s = state;
    const mpsl_kernels *k = s->h->kernels;
    int64_t B = dout->shape[0], T = s->T, D = s->D, E = s->E, K = s->K;
    if (dout->ndim != 3 || dout->shape[1] != 1 + K || dout->shape[2] != E ||
        B != s->saved_B) {
        s->h->error_set(err, "retrieval: backward got dout (%lld,%lld,%lld), expected "
                        "(%lld,%lld,%lld) from the last forward", (long long)B,
                        (long long)dout->shape[1], (long long)dout->shape[2],
                        (long long)s->saved_B, (long long)(1 + K), (long long)E);
        return MPSL_ERR_INVALID;
    }
    float *dinp = din && din->data ? din->data : NULL;   // (B,T,D)
    float *g_iw = rt_grad(w, s->off_iw, E * D), *g_ib = rt_grad(w, s->off_ib, E);
    float *g_tw = rt_grad(w, s->off_tw, E * D), *g_tb = rt_grad(w, s->off_tb, E);
    float *g_nw = rt_grad(w, s->off_nw, D), *g_nb = rt_grad(w, s->off_nb, D);
    int dfeat = dinp || g_nw || g_nb;
    const float *f = s->norm ? s->normed : s->feat;
    rt_permute(s->y, dout->data, B, K, E, 1);   // dy in row order
    if (s->cosine) {
        /* out = c * y / ||y|| with c = sqrt(exp(t)): dc/dt = c / 2 while exp(t) is below the
         * clamp (t = ln 100 still passes it, as torch.clamp's gradient does) */
        float *g_ls = rt_grad(w, s->off_ls, 1), dc = 0.0f;
        k->l2norm_backward(s->y, g_ls ? &dc : NULL, s->y, s->emb, s->rnorm, B * (1 + K), E,
                           s->row_scale);
        if (g_ls && w->param[s->off_ls] <= logf(MAX_LOGIT_SCALE)) {
            g_ls[0] += 0.5f * s->row_scale * dc;
        }
    }
    k->linear_backward(dfeat ? s->dfeat : NULL, g_iw, g_ib, s->y, f, w->param + s->off_iw, B,
                       D, E);
    k->linear_backward(dfeat ? s->dfeat + B * D : NULL, g_tw, g_tb, s->y + B * E, f + B * D,
                       w->param + s->off_tw, B * K, D, E);
    float *dx = s->dfeat;   // (R,D) gradient w.r.t. the gathered tokens
    if (s->norm && dfeat) {
        k->layernorm_backward(dinp ? s->dnorm : NULL, g_nw, g_nb, s->dfeat, s->feat,
                              w->param + s->off_nw, s->mean, s->rstd, B * (1 + K), D);
        dx = s->dnorm;
    }
    if (dinp) {
        memset(dinp, 0, (size_t)(B * T * D) * sizeof(float));
        for (int64_t b = 0; b < B; b++) {
            memcpy(dinp + (b * T + s->img_t) * D, dx + b * D, (size_t)D * sizeof(float));
            memcpy(dinp + (b * T + s->txt_t0) * D, dx + (B + b * K) * D,
                   (size_t)(K * D) * sizeof(float));
        }
        din->dtype = MPSL_F32;
        din->ndim = 3;
        din->shape[0] = B, din->shape[1] = T, din->shape[2] = D;
    }
    return MPSL_OK;
}

static const mpsl_module_api rt_api = {
    sizeof(mpsl_module_api), rt_create, rt_destroy, rt_output_shape, rt_forward, rt_backward,
};

MPSL_PLUGIN(MPSL_KIND_HEAD, "retrieval", "1.1.0",
            "image-text retrieval: image CLS and per-caption tokens to embeddings (contrastive)",
            &rt_api, rt_params, rt_spec);
