/* my_tokenizer.c: the tutorial's tokenizer plugin (docs/tutorial.md). "Rows": each row of
 * an image becomes one token, a linear embedding of the row's pixels plus a learned
 * position embedding for the row's index:
 *     token[b,t,:] = embed.weight @ row(b,t) + embed.bias + pos_embed[t,:]
 * Input (B,C,H,W) float; output (B,T,D) with T = H tokens of width D = `dim`, where row(b,t)
 * holds the C*W pixels of row t of sample b. The matrix work goes through the host's
 * kernels, so its FLOPs are counted for whichever party (client or server) runs it.
 */
#include <string.h>

#include <mpsl/plugin.h>

typedef struct {
    int64_t dim; // token width D
    int pos;     // add position embeddings
} rows_params;

static const mpsl_param_spec rows_spec[] = {
    MPSL_PARAM_INT(rows_params, dim, "dim", 0, 1, 4096, "32", "token width D"),
    MPSL_PARAM_BOOL(rows_params, pos, "pos_embed", "true", "add a learned embedding per row"),
};

typedef struct {
    const mpsl_host *h;
    int64_t C, H, W, K, D;     // channels, rows (= tokens T), columns, K = C*W, width
    int pos;
    int64_t off_w, off_b, off_pos; // offsets of embed.weight (D,K), embed.bias (D), pos (H,D)
    int64_t cap, saved_B;      // rows buffer capacity (samples); batch of the last forward
    float *rows;               // (B*H, K) the gathered rows, kept for backward
} rows_state;

static void rows_destroy(void *state)
{
    rows_state *s = state;
    if (s) {
        s->h->free(s->rows);
        s->h->free(s);
    }
}

/* create(): check the input, declare the parameter tensors, keep what forward needs. */
static int rows_create(const mpsl_host *h, const mpsl_module_init *init, void **state,
                       mpsl_error *err)
{
    const rows_params *p = init->params;
    if (init->in_dtype != MPSL_F32 || init->in_ndim != 3) {
        h->error_set(err, "%s: my_tokenizer needs float images (C,H,W), got a %d-dimensional "
                     "input", init->where, init->in_ndim);
        return MPSL_ERR_INVALID;
    }
    rows_state *s = h->alloc(sizeof(*s));
    if (!s) {
        h->error_set(err, "%s: out of memory", init->where);
        return MPSL_ERR_NOMEM;
    }
    s->h = h;
    s->C = init->in_shape[0];
    s->H = init->in_shape[1];
    s->W = init->in_shape[2];
    s->K = s->C * s->W;
    s->D = p->dim;
    s->pos = p->pos;
    s->saved_B = -1;
    int64_t wshape[2] = {s->D, s->K}, bshape[1] = {s->D}, pshape[2] = {s->H, s->D};
    s->off_w = init->declare(init->ctx, "embed.weight", 2, wshape, MPSL_INIT_NORMAL, 0.1f, 1,
                             err);
    s->off_b = s->off_w < 0 ? -1
                            : init->declare(init->ctx, "embed.bias", 1, bshape, MPSL_INIT_ZEROS,
                                            0.0f, 1, err);
    s->off_pos = -1;
    if (s->pos && s->off_b >= 0) {
        s->off_pos = init->declare(init->ctx, "pos_embed", 2, pshape, MPSL_INIT_NORMAL, 0.02f,
                                   1, err);
    }
    if (s->off_w < 0 || s->off_b < 0 || (s->pos && s->off_pos < 0)) {
        rows_destroy(s);
        return MPSL_ERR_INVALID;
    }
    *state = s;
    return MPSL_OK;
}

static int rows_output_shape(void *state, int *ndim, int64_t *shape, int *cls)
{
    rows_state *s = state;
    *ndim = 2;
    shape[0] = s->H; // T: one token per row
    shape[1] = s->D;
    if (cls) {
        *cls = 0;    // no CLS token
    }
    return MPSL_OK;
}

static int rows_forward(void *state, const mpsl_weights *w, const mpsl_tensor *inp,
                        mpsl_tensor *out, mpsl_error *err)
{
    rows_state *s = state;
    int64_t B = inp->shape[0], C = s->C, H = s->H, W = s->W, K = s->K, D = s->D;
    if (inp->ndim != 4 || inp->shape[1] != C || inp->shape[2] != H || inp->shape[3] != W) {
        s->h->error_set(err, "my_tokenizer: expected input (B,%lld,%lld,%lld)", (long long)C,
                        (long long)H, (long long)W);
        return MPSL_ERR_INVALID;
    }
    if (B > s->cap) { // grow the saved rows for this batch size
        s->h->free(s->rows);
        s->rows = s->h->alloc((size_t)(B * H * K) * sizeof(float));
        s->cap = s->rows ? B : 0;
        if (!s->rows) {
            s->h->error_set(err, "my_tokenizer: out of memory for a batch of %lld",
                            (long long)B);
            return MPSL_ERR_NOMEM;
        }
    }
    const float *img = inp->data; // (B,C,H,W)
    for (int64_t b = 0; b < B; b++) {
        for (int64_t t = 0; t < H; t++) {
            for (int64_t c = 0; c < C; c++) { // row (b,t) = channels side by side
                memcpy(s->rows + (b * H + t) * K + c * W, img + ((b * C + c) * H + t) * W,
                       (size_t)W * sizeof(float));
            }
        }
    }
    float *o = out->data; // (B,H,D)
    s->h->kernels->linear_forward(o, s->rows, w->param + s->off_w, w->param + s->off_b, B * H,
                                  K, D);
    if (s->pos) {
        const float *pos = w->param + s->off_pos; // (H,D)
        for (int64_t b = 0; b < B; b++) {
            for (int64_t i = 0; i < H * D; i++) {
                o[b * H * D + i] += pos[i];
            }
        }
    }
    out->dtype = MPSL_F32;
    out->ndim = 3;
    out->shape[0] = B, out->shape[1] = H, out->shape[2] = D;
    s->saved_B = B;
    return MPSL_OK;
}

/* backward(): ACCUMULATE the weight gradients (+=). A tokenizer's input is raw data, so
 * the host asks for no input gradient (din is NULL). */
static int rows_backward(void *state, const mpsl_weights *w, const mpsl_tensor *dout,
                         mpsl_tensor *din, mpsl_error *err)
{
    rows_state *s = state;
    int64_t B = dout->shape[0], H = s->H, D = s->D;
    if (B != s->saved_B) {
        s->h->error_set(err, "my_tokenizer: backward without a matching forward");
        return MPSL_ERR_INVALID;
    }
    if (din && din->data) {
        s->h->error_set(err, "my_tokenizer: no gradient for raw images (pass din = NULL)");
        return MPSL_ERR_INVALID;
    }
    if (!w->grad) {
        return MPSL_OK; // nothing is trained
    }
    const float *g = dout->data; // (B,H,D)
    if (s->pos) {
        float *dpos = w->grad + s->off_pos; // (H,D)
        for (int64_t b = 0; b < B; b++) {
            for (int64_t i = 0; i < H * D; i++) {
                dpos[i] += g[b * H * D + i];
            }
        }
    }
    s->h->kernels->linear_backward(NULL, w->grad + s->off_w, w->grad + s->off_b, g, s->rows,
                                   w->param + s->off_w, B * H, s->K, D);
    return MPSL_OK;
}

static const mpsl_module_api rows_api = {
    sizeof(mpsl_module_api), rows_create, rows_destroy, rows_output_shape, rows_forward,
    rows_backward,
};

MPSL_PLUGIN(MPSL_KIND_TOKENIZER, "my_tokenizer", "1.0.0",
            "tutorial: one token per image row, linear embedding plus row position",
            &rows_api, rows_params, rows_spec);
