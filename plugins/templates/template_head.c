/* template_head.c: a complete head plugin to copy when writing your own.
 *
 * HOW TO MAKE A NEW HEAD FROM THIS FILE
 *   1. Copy:   cp template_head.c my_head.c   (or: mpsl new-plugin head NAME)
 *   2. Rename: replace the prefix "th_" and the name "template_head" (last line).
 *   3. Build:  cc -shared -fPIC -O2 $(pkg-config --cflags mpsl-plugin) my_head.c -o my_head.so
 *              (or add a shared_module() line to plugins/head/meson.build).
 *   4. Change: parameters, declared tensors, forward()/backward().
 *
 * WHAT THIS ONE DOES: the mean over all T tokens, then a linear layer to the dataset's
 * classes: (B,T,D) -> pooled (B,D) -> logits (B,C). It uses only the host's kernels
 * (meanpool, linear), which also count the FLOPs. A real head would pool per modality with
 * init->layout (see plugins/head/classifier.c).
 */
#include <math.h>
#include <string.h>

#include <mpsl/plugin.h>

typedef struct {
    int bias;
} th_params;

static const mpsl_param_spec th_spec[] = {
    MPSL_PARAM_BOOL(th_params, bias, "bias", "true", "add a learned bias to the logits"),
};

typedef struct {
    const mpsl_host *h;
    int64_t T, D, C;
    int64_t off_w, off_b;  // head.weight (C,D), head.bias (C) or -1
    int64_t cap, saved_B;
    float *pooled;         // (B,D) saved for backward
    float *dpooled;        // (B,D) scratch
} th_state;

static void th_destroy(void *state)
{
    th_state *s = state;
    if (s) {
        s->h->free(s->pooled);
        s->h->free(s->dpooled);
        s->h->free(s);
    }
}

static int th_create(const mpsl_host *h, const mpsl_module_init *init, void **state,
                     mpsl_error *err)
{
    const th_params *p = init->params;
    if (init->in_ndim != 2 || init->n_classes < 1) {
        h->error_set(err, "%s: template_head expects tokens (T,D) and a class count",
                     init->where);
        return MPSL_ERR_INVALID;
    }
    th_state *s = h->alloc(sizeof(*s));
    if (!s) {
        h->error_set(err, "%s: out of memory", init->where);
        return MPSL_ERR_NOMEM;
    }
    s->h = h;
    s->T = init->in_shape[0], s->D = init->in_shape[1], s->C = init->n_classes;
    s->saved_B = -1;
    s->off_b = -1;
    float bound = 1.0f / sqrtf((float)s->D);   // PyTorch's nn.Linear default
    int64_t wshape[2] = {s->C, s->D}, bshape[1] = {s->C};
    s->off_w = init->declare(init->ctx, "head.weight", 2, wshape, MPSL_INIT_UNIFORM, bound, 1,
                             err);
    if (s->off_w >= 0 && p->bias) {
        s->off_b = init->declare(init->ctx, "head.bias", 1, bshape, MPSL_INIT_UNIFORM, bound,
                                 1, err);
    }
    if (s->off_w < 0 || (p->bias && s->off_b < 0)) {
        th_destroy(s);
        return MPSL_ERR_INVALID;
    }
    *state = s;
    return MPSL_OK;
}

static int th_output_shape(void *state, int *ndim, int64_t *shape, int *cls)
{
    th_state *s = state;
    *ndim = 1;
    shape[0] = s->C;
    if (cls) {
        *cls = 0;
    }
    return MPSL_OK;
}

static int th_forward(void *state, const mpsl_weights *w, const mpsl_tensor *inp,
                      mpsl_tensor *out, mpsl_error *err)
{
    th_state *s = state;
    const mpsl_kernels *k = s->h->kernels;
    int64_t B = inp->shape[0];
    if (B > s->cap) {
        s->h->free(s->pooled);
        s->h->free(s->dpooled);
        s->pooled = s->h->alloc((size_t)(B * s->D) * sizeof(float));
        s->dpooled = s->h->alloc((size_t)(B * s->D) * sizeof(float));
        s->cap = s->pooled && s->dpooled ? B : 0;
        if (!s->cap) {
            s->h->error_set(err, "template_head: out of memory");
            return MPSL_ERR_NOMEM;
        }
    }
    k->meanpool_forward(s->pooled, inp->data, B, s->T, s->D, 0, s->T);
    k->linear_forward(out->data, s->pooled, w->param + s->off_w,
                      s->off_b >= 0 ? w->param + s->off_b : NULL, B, s->D, s->C);
    out->ndim = 2;
    out->shape[0] = B, out->shape[1] = s->C;
    s->saved_B = B;
    return MPSL_OK;
}

static int th_backward(void *state, const mpsl_weights *w, const mpsl_tensor *dout,
                       mpsl_tensor *din, mpsl_error *err)
{
    th_state *s = state;
    const mpsl_kernels *k = s->h->kernels;
    int64_t B = dout->shape[0];
    if (B != s->saved_B) {
        s->h->error_set(err, "template_head: backward without a matching forward");
        return MPSL_ERR_INVALID;
    }
    // weight gradients accumulate; d pooled is only needed when din is wanted
    k->linear_backward(din ? s->dpooled : NULL, w->grad + s->off_w,
                       s->off_b >= 0 ? w->grad + s->off_b : NULL, dout->data, s->pooled,
                       w->param + s->off_w, B, s->D, s->C);
    if (din) {
        // meanpool_backward accumulates, and din must be overwritten: zero it first
        memset(din->data, 0, (size_t)(B * s->T * s->D) * sizeof(float));
        k->meanpool_backward(din->data, s->dpooled, B, s->T, s->D, 0, s->T);
    }
    return MPSL_OK;
}

static const mpsl_module_api th_api = {
    sizeof(mpsl_module_api), th_create, th_destroy, th_output_shape, th_forward, th_backward,
};

MPSL_PLUGIN(MPSL_KIND_HEAD, "template_head", "1.0.0",
            "template: mean over all tokens, then linear to class logits",
            &th_api, th_params, th_spec);
