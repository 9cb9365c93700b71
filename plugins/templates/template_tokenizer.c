/* template_tokenizer.c: a complete tokenizer plugin to copy when writing your own.
 *
 * HOW TO MAKE A NEW TOKENIZER FROM THIS FILE
 *   1. Copy:   cp template_tokenizer.c my_tok.c   (or: mpsl new-plugin tokenizer NAME)
 *   2. Rename: replace the prefix "tt_" and the name "template_tokenizer" (last line) by your
 *              own; the name is what experiments write in `plugin:`.
 *   3. Build:  cc -shared -fPIC -O2 $(pkg-config --cflags mpsl-plugin) my_tok.c -o my_tok.so
 *              (or add a shared_module() line to plugins/tokenizer/meson.build), then put
 *              my_tok.so on the plugin path (MPSL_PLUGIN_PATH, or next to the experiment).
 *   4. Change: the parameters (tt_params + tt_spec), the tensors declared in create(), and
 *              forward()/backward(). `mpsl plugins --params` shows your keys.
 *
 * WHAT THIS ONE DOES (the simplest correct tokenizer): every input feature becomes one token,
 * a per-feature linear embedding of its value
 *     token[b,t,:] = x[b,t] * embed.weight[t,:] + embed.bias[t,:]      t < F = prod(in_shape)
 * so T = F and D = `dim`. No CLS token.
 *
 * RULES IT FOLLOWS (see mpsl/plugin.h)
 * - Parameters are declared in create() and live in host-owned flat buffers; forward and
 *   backward read them through mpsl_weights (w->param + offset) at every call.
 * - Activations needed by backward are saved in the plugin state, grown for the batch size.
 * - backward ACCUMULATES weight gradients (+=) and OVERWRITES din; din may be NULL.
 * - Errors: return a negative mpsl_status and describe the problem with h->error_set().
 */
#include <string.h>

#include <mpsl/plugin.h>

typedef struct {
    int64_t dim;
} tt_params;

static const mpsl_param_spec tt_spec[] = {
    MPSL_PARAM_INT(tt_params, dim, "dim", 0, 1, 65536, "16", "token width D"),
};

typedef struct {
    const mpsl_host *h;
    int64_t F, D;          // features per sample (= tokens T), token width
    int64_t off_w, off_b;  // offsets of embed.weight (F,D) and embed.bias (F,D)
    int64_t cap, saved_B;  // batch capacity of x; batch of the last forward
    float *x;              // (B,F) the input saved for backward
} tt_state;

static void tt_destroy(void *state)
{
    tt_state *s = state;
    if (s) {
        s->h->free(s->x);
        s->h->free(s);
    }
}

static int tt_create(const mpsl_host *h, const mpsl_module_init *init, void **state,
                     mpsl_error *err)
{
    const tt_params *p = init->params;
    if (init->in_dtype != MPSL_F32 || init->in_ndim < 1) {
        h->error_set(err, "%s: template_tokenizer needs float input", init->where);
        return MPSL_ERR_INVALID;
    }
    tt_state *s = h->alloc(sizeof(*s));
    if (!s) {
        h->error_set(err, "%s: out of memory", init->where);
        return MPSL_ERR_NOMEM;
    }
    s->h = h;
    s->F = 1;
    for (int i = 0; i < init->in_ndim; i++) {
        s->F *= init->in_shape[i];
    }
    s->D = p->dim;
    s->saved_B = -1;
    int64_t shape[2] = {s->F, s->D};
    s->off_w = init->declare(init->ctx, "embed.weight", 2, shape, MPSL_INIT_NORMAL, 0.02f, 1,
                             err);
    s->off_b = s->off_w < 0 ? -1
                            : init->declare(init->ctx, "embed.bias", 2, shape, MPSL_INIT_ZEROS,
                                            0.0f, 1, err);
    if (s->off_b < 0) {
        tt_destroy(s);
        return MPSL_ERR_INVALID;
    }
    *state = s;
    return MPSL_OK;
}

static int tt_output_shape(void *state, int *ndim, int64_t *shape, int *cls)
{
    tt_state *s = state;
    *ndim = 2;
    shape[0] = s->F; // T
    shape[1] = s->D;
    if (cls) {
        *cls = 0; // no CLS token
    }
    return MPSL_OK;
}

static int tt_forward(void *state, const mpsl_weights *w, const mpsl_tensor *inp,
                      mpsl_tensor *out, mpsl_error *err)
{
    tt_state *s = state;
    int64_t B = inp->shape[0], F = s->F, D = s->D;
    if (B > s->cap) { // grow the saved input for this batch size
        s->h->free(s->x);
        s->x = s->h->alloc((size_t)(B * F) * sizeof(float));
        s->cap = s->x ? B : 0;
        if (!s->x) {
            s->h->error_set(err, "template_tokenizer: out of memory");
            return MPSL_ERR_NOMEM;
        }
    }
    memcpy(s->x, inp->data, (size_t)(B * F) * sizeof(float));
    const float *wt = w->param + s->off_w, *bias = w->param + s->off_b; // (F,D), (F,D)
    float *o = out->data;                                             // (B,F,D)
    for (int64_t b = 0; b < B; b++) {
        for (int64_t t = 0; t < F; t++) {
            float xv = s->x[b * F + t];
            for (int64_t d = 0; d < D; d++) {
                o[(b * F + t) * D + d] = xv * wt[t * D + d] + bias[t * D + d];
            }
        }
    }
    out->ndim = 3;
    out->shape[0] = B, out->shape[1] = F, out->shape[2] = D;
    s->saved_B = B;
    return MPSL_OK;
}

static int tt_backward(void *state, const mpsl_weights *w, const mpsl_tensor *dout,
                       mpsl_tensor *din, mpsl_error *err)
{
    tt_state *s = state;
    int64_t B = dout->shape[0], F = s->F, D = s->D;
    if (B != s->saved_B) {
        s->h->error_set(err, "template_tokenizer: backward without a matching forward");
        return MPSL_ERR_INVALID;
    }
    const float *g = dout->data;                                       // (B,F,D)
    const float *wt = w->param + s->off_w;                             // (F,D)
    float *dw = w->grad + s->off_w, *db = w->grad + s->off_b;          // (F,D) each, +=
    float *dx = din ? din->data : NULL;                                // (B,F) or NULL
    for (int64_t b = 0; b < B; b++) {
        for (int64_t t = 0; t < F; t++) {
            float xv = s->x[b * F + t], acc = 0.0f;
            for (int64_t d = 0; d < D; d++) {
                float gv = g[(b * F + t) * D + d];
                dw[t * D + d] += gv * xv;
                db[t * D + d] += gv;
                acc += gv * wt[t * D + d];
            }
            if (dx) {
                dx[b * F + t] = acc;
            }
        }
    }
    return MPSL_OK;
}

static const mpsl_module_api tt_api = {
    sizeof(mpsl_module_api), tt_create, tt_destroy, tt_output_shape, tt_forward, tt_backward,
};

MPSL_PLUGIN(MPSL_KIND_TOKENIZER, "template_tokenizer", "1.0.0",
            "template: one token per input feature, a per-feature linear embedding",
            &tt_api, tt_params, tt_spec);
