/* sized_head.c: a head that declares whatever output size its `outputs` parameter says (and
 * outputs zeros), for the tests that the host checks a head's output against the dataset
 * before training: a size other than the class count, and an absurd one. */
#include <mpsl/plugin.h>
#include <string.h>

typedef struct sh_params {
    int64_t outputs;
} sh_params;

static const mpsl_param_spec sh_spec[] = {
    MPSL_PARAM_INT(sh_params, outputs, "outputs", 1, 1, 9.0e18, NULL, "floats per sample"),
};

typedef struct sh_state {
    const mpsl_host *h;
    int64_t outputs, T, D;
} sh_state;

static int sh_create(const mpsl_host *h, const mpsl_module_init *init, void **state,
                     mpsl_error *err)
{
    sh_state *s = h->alloc(sizeof *s);
    if (!s) {
        h->error_set(err, "out of memory");
        return MPSL_ERR_NOMEM;
    }
    s->h = h;
    s->outputs = ((const sh_params *)init->params)->outputs;
    s->T = init->in_shape[0];
    s->D = init->in_shape[1];
    *state = s;
    return MPSL_OK;
}

static void sh_destroy(void *state)
{
    sh_state *s = state;
    s->h->free(s);
}

static int sh_output_shape(void *state, int *ndim, int64_t *shape, int *cls)
{
    *ndim = 1;
    shape[0] = ((sh_state *)state)->outputs;
    if (cls) {
        *cls = 0;
    }
    return MPSL_OK;
}

static int sh_forward(void *state, const mpsl_weights *w, const mpsl_tensor *inp,
                      mpsl_tensor *out, mpsl_error *err)
{
    (void)w;
    (void)err;
    sh_state *s = state;
    memset(out->data, 0, (size_t)(inp->shape[0] * s->outputs) * sizeof(float));
    return MPSL_OK;
}

static int sh_backward(void *state, const mpsl_weights *w, const mpsl_tensor *dout,
                       mpsl_tensor *din, mpsl_error *err)
{
    (void)w;
    (void)err;
    sh_state *s = state;
    if (din) {
        memset(din->data, 0, (size_t)(dout->shape[0] * s->T * s->D) * sizeof(float));
    }
    return MPSL_OK;
}

static const mpsl_module_api sh_api = {sizeof(mpsl_module_api), sh_create, sh_destroy,
                                       sh_output_shape, sh_forward, sh_backward};

MPSL_PLUGIN(MPSL_KIND_HEAD, "sized_head", "1.0.0", "a head of any declared size (for tests)",
            &sh_api, sh_params, sh_spec);
