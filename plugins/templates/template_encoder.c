/* template_encoder.c: a complete encoder plugin to copy when writing your own.
 *
 * HOW TO MAKE A NEW ENCODER FROM THIS FILE
 *   1. Copy:   cp template_encoder.c my_enc.c   (or: mpsl new-plugin encoder NAME)
 *   2. Rename: replace the prefix "te_" and the name "template_encoder" (last line).
 *   3. Build:  cc -shared -fPIC -O2 $(pkg-config --cflags mpsl-plugin) my_enc.c -o my_enc.so
 *              (or add a shared_module() line to plugins/encoder/meson.build).
 *   4. Change: parameters, declared tensors, forward()/backward(). Use h->kernels for the
 *              heavy lifting (linear layers, activations): they count FLOPs for you.
 *
 * WHAT THIS ONE DOES: out = scale * x with a single learned scalar `scale` (initialised to 1),
 * i.e. the identity at the start. Tokens keep their shape: (B,T,D) -> (B,T,D), with T and D
 * taken from init->in_shape. `trainable: false` declares `scale` frozen, as an encoder does
 * for blocks it does not fine-tune: frozen tensors get no gradient.
 */
#include <string.h>

#include <mpsl/plugin.h>

typedef struct {
    int trainable;
} te_params;

static const mpsl_param_spec te_spec[] = {
    MPSL_PARAM_BOOL(te_params, trainable, "trainable", "true", "learn the scale"),
};

typedef struct {
    const mpsl_host *h;
    int64_t T, D;
    int64_t off_scale;     // offset of `scale` (1)
    int trainable;
    int64_t cap, saved_B;
    float *x;              // (B,T,D) saved input
} te_state;

static void te_destroy(void *state)
{
    te_state *s = state;
    if (s) {
        s->h->free(s->x);
        s->h->free(s);
    }
}

static int te_create(const mpsl_host *h, const mpsl_module_init *init, void **state,
                     mpsl_error *err)
{
    const te_params *p = init->params;
    if (init->in_ndim != 2) {
        h->error_set(err, "%s: template_encoder expects tokens (T,D)", init->where);
        return MPSL_ERR_INVALID;
    }
    te_state *s = h->alloc(sizeof(*s));
    if (!s) {
        h->error_set(err, "%s: out of memory", init->where);
        return MPSL_ERR_NOMEM;
    }
    s->h = h;
    s->T = init->in_shape[0], s->D = init->in_shape[1];
    s->trainable = p->trainable;
    s->saved_B = -1;
    int64_t shape[1] = {1};
    s->off_scale = init->declare(init->ctx, "scale", 1, shape, MPSL_INIT_ONES, 0.0f,
                                 s->trainable, err);
    if (s->off_scale < 0) {
        te_destroy(s);
        return MPSL_ERR_INVALID;
    }
    *state = s;
    return MPSL_OK;
}

static int te_output_shape(void *state, int *ndim, int64_t *shape, int *cls)
{
    te_state *s = state;
    *ndim = 2;
    shape[0] = s->T;
    shape[1] = s->D;
    if (cls) {
        *cls = 0;
    }
    return MPSL_OK;
}

static int te_forward(void *state, const mpsl_weights *w, const mpsl_tensor *inp,
                      mpsl_tensor *out, mpsl_error *err)
{
    te_state *s = state;
    int64_t B = inp->shape[0], n = B * s->T * s->D;
    if (B > s->cap) {
        s->h->free(s->x);
        s->x = s->h->alloc((size_t)n * sizeof(float));
        s->cap = s->x ? B : 0;
        if (!s->x) {
            s->h->error_set(err, "template_encoder: out of memory");
            return MPSL_ERR_NOMEM;
        }
    }
    memcpy(s->x, inp->data, (size_t)n * sizeof(float));
    float scale = w->param[s->off_scale];
    float *o = out->data;  // (B,T,D)
    for (int64_t i = 0; i < n; i++) {
        o[i] = scale * s->x[i];
    }
    out->ndim = 3;
    out->shape[0] = B, out->shape[1] = s->T, out->shape[2] = s->D;
    s->saved_B = B;
    return MPSL_OK;
}

static int te_backward(void *state, const mpsl_weights *w, const mpsl_tensor *dout,
                       mpsl_tensor *din, mpsl_error *err)
{
    te_state *s = state;
    int64_t B = dout->shape[0], n = B * s->T * s->D;
    if (B != s->saved_B) {
        s->h->error_set(err, "template_encoder: backward without a matching forward");
        return MPSL_ERR_INVALID;
    }
    const float *g = dout->data;   // (B,T,D)
    float scale = w->param[s->off_scale];
    if (s->trainable) {            // frozen: no gradient
        double acc = 0.0;
        for (int64_t i = 0; i < n; i++) {
            acc += (double)g[i] * (double)s->x[i];
        }
        w->grad[s->off_scale] += (float)acc;
    }
    if (din) {                     // overwrite din (B,T,D)
        float *dx = din->data;
        for (int64_t i = 0; i < n; i++) {
            dx[i] = scale * g[i];
        }
    }
    return MPSL_OK;
}

static const mpsl_module_api te_api = {
    sizeof(mpsl_module_api), te_create, te_destroy, te_output_shape, te_forward, te_backward,
};

MPSL_PLUGIN(MPSL_KIND_ENCODER, "template_encoder", "1.0.0",
            "template: identity times one learned scale",
            &te_api, te_params, te_spec);
