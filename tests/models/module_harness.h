/* module_harness.h: loading one module plugin (tokenizer, encoder or head) as the host does,
 * with a declare() that records every tensor, and checking its backward against central
 * finite differences of a scalar objective of its output (sum(out * G) by default, or any
 * other, e.g. the retrieval loss). Adapted from tests/kernels/test_modules.c.
 *
 * The host table is host_services() with one change: kernel entries the host does not yet
 * fill are taken from ref_kernels.h (harness_fallbacks counts them), so the plugins can be
 * tested whatever the state of the kernel table. */
#ifndef MPSL_TEST_MODULE_HARNESS_H
#define MPSL_TEST_MODULE_HARNESS_H

#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "config/config.h"
#include "kernels/grad_check.h"
#include "kernels/kernels.h"
#include "ref_kernels.h"
#include "plugin/loader.h"
#include "util/util.h"

static int g_argc;
static char **g_argv;
static mpsl_rng rng;
static int harness_fallbacks;

static const char *plugin_path(const char *name)
{
    size_t n = strlen(name);
    for (int i = 1; i < g_argc; i++) {
        const char *base = strrchr(g_argv[i], '/');
        base = base ? base + 1 : g_argv[i];
        if (strncmp(base, name, n) == 0 && strcmp(base + n, ".so") == 0) {
            return g_argv[i];
        }
    }
    fprintf(stderr, "no %s.so among the arguments\n", name);
    exit(1);
}

static float *fnew(int64_t n)
{
    float *p = calloc((size_t)(n > 0 ? n : 1), sizeof(float));
    if (!p) {
        abort();
    }
    return p;
}

/* ------------------------------------------------------------------ the host */

static const mpsl_host *harness_host(void)
{
    static mpsl_host host;
    static mpsl_kernels kt;
    static int ready;
    if (!ready) {
        const mpsl_host *h = host_services();
        host = *h;
        memcpy(&kt, h->kernels, h->kernels->size < sizeof kt ? h->kernels->size : sizeof kt);
        kt.size = sizeof kt;
#define FALLBACK(field, fn)          \
    if (!kt.field) {                 \
        kt.field = fn;               \
        harness_fallbacks++;         \
    }
        FALLBACK(layernorm_forward, ref_layernorm_forward);
        FALLBACK(layernorm_backward, ref_layernorm_backward);
        FALLBACK(gelu_forward, ref_gelu_forward);
        FALLBACK(gelu_backward, ref_gelu_backward);
        FALLBACK(attention_forward, ref_attention_forward);
        FALLBACK(attention_backward, ref_attention_backward);
        FALLBACK(add, ref_add);
        FALLBACK(token_select_forward, ref_token_select_forward);
        FALLBACK(token_select_backward, ref_token_select_backward);
        FALLBACK(contrastive_loss, ref_contrastive_loss);
#undef FALLBACK
        if (harness_fallbacks) {
            fprintf(stderr, "note: %d kernel(s) missing from the host table were replaced "
                    "by the test's references\n", harness_fallbacks);
        }
        host.kernels = &kt;
        ready = 1;
    }
    return &host;
}

/* ------------------------------------------------------------------ a module under test */

#define MAX_DECL 256
typedef struct {
    char name[96];
    int ndim;
    int64_t shape[MPSL_MAX_DIMS];
    int64_t off, count;
    mpsl_init init;
    float scale;
    int trainable;
} decl;

typedef struct {
    loaded_plugin lp;
    const mpsl_module_api *api;
    cfg_node *cfg;
    void *params;
    void *state;
    decl d[MAX_DECL];
    int n_decl;
    int64_t n;          // floats declared
    float *param, *grad;
    mpsl_weights w;
} module;

static int64_t test_declare(void *ctx, const char *name, int ndim, const int64_t *shape,
                            mpsl_init init, float scale, int trainable, mpsl_error *err)
{
    module *m = ctx;
    if (m->n_decl == MAX_DECL || ndim < 1 || ndim > MPSL_MAX_DIMS) {
        snprintf(err->msg, sizeof err->msg, "test declare: cannot take '%s'", name);
        return -1;
    }
    for (int i = 0; i < m->n_decl; i++) {
        if (strcmp(m->d[i].name, name) == 0) {
            snprintf(err->msg, sizeof err->msg, "test declare: '%s' declared twice", name);
            return -1;
        }
    }
    decl *d = &m->d[m->n_decl++];
    snprintf(d->name, sizeof d->name, "%s", name);
    d->ndim = ndim;
    d->count = 1;
    for (int i = 0; i < ndim; i++) {
        d->shape[i] = shape[i];
        d->count *= shape[i];
    }
    d->off = m->n;
    d->init = init;
    d->scale = scale;
    d->trainable = trainable;
    m->n += d->count;
    return d->off;
}

static const decl *find_decl(const module *m, const char *name)
{
    for (int i = 0; i < m->n_decl; i++) {
        if (strcmp(m->d[i].name, name) == 0) {
            return &m->d[i];
        }
    }
    return NULL;
}

/* The parameter tensor `name` (must exist: aborts otherwise, as the test would be wrong). */
static const float *pv(const module *m, const char *name)
{
    const decl *d = find_decl(m, name);
    if (!d) {
        fprintf(stderr, "tensor '%s' was not declared\n", name);
        abort();
    }
    return m->param + d->off;
}

/* Load, parse params from yaml and create. Returns create's status (err set on failure); the
 * module must be closed with module_close either way. Parameters get random values in
 * [-lo, hi] (zero initialisations would hide gradient bugs). */
static int module_open(module *m, const char *name, mpsl_plugin_kind kind, const char *yaml,
                       int in_ndim, const int64_t *in_shape, int64_t n_classes,
                       const mpsl_token_layout *layout, mpsl_error *err)
{
    memset(m, 0, sizeof(*m));
    err->msg[0] = '\0';
    int rc = plugin_load(plugin_path(name), kind, &m->lp, err);
    if (rc != MPSL_OK) {
        fprintf(stderr, "%s\n", err->msg);
        return rc;
    }
    const mpsl_plugin_desc *desc = m->lp.desc;
    m->api = desc->api;
    if (yaml && *yaml) {
        m->cfg = cfg_parse_string(yaml, "test.yaml", err);
        if (!m->cfg) {
            fprintf(stderr, "%s\n", err->msg);
            return MPSL_ERR_INVALID;
        }
    }
    m->params = calloc(1, desc->params_size ? desc->params_size : 1);
    rc = cfg_parse_params(m->cfg, desc->params, desc->n_params, m->params, desc->params_size,
                          "test", NULL, err);
    if (rc != MPSL_OK) {
        return rc;   // some tests expect the parameter table to refuse
    }
    mpsl_module_init init = {.size = sizeof(mpsl_module_init), .params = m->params,
                             .in_ndim = in_ndim, .in_dtype = MPSL_F32,
                             .n_classes = n_classes, .layout = layout,
                             .declare = test_declare, .ctx = m, .where = "test.yaml:3:5"};
    for (int i = 0; i < in_ndim; i++) {
        init.in_shape[i] = in_shape[i];
    }
    rc = m->api->create(harness_host(), &init, &m->state, err);
    if (rc != MPSL_OK) {
        m->state = NULL;
        return rc;
    }
    m->param = fnew(m->n);
    m->grad = fnew(m->n);
    fill_uniform(&rng, m->param, m->n, -0.5f, 0.5f);
    m->w = (mpsl_weights){.param = m->param, .grad = m->grad, .n = m->n};
    return MPSL_OK;
}

static void module_close(module *m)
{
    if (m->state) {
        m->api->destroy(m->state);
    }
    if (m->lp.handle) {
        plugin_unload(&m->lp);
    }
    cfg_free(m->cfg);
    free(m->params);
    free(m->param);
    free(m->grad);
    memset(m, 0, sizeof(*m));
}

/* ------------------------------------------------------------------ objectives */

/* A scalar objective of the module's output: value (in double) and its gradient. */
typedef struct fd_ctx fd_ctx;
typedef double (*objective_fn)(const fd_ctx *c, const float *out, float *dout);

struct fd_ctx {
    module *m;
    mpsl_tensor inp;
    float *out, *G;
    int64_t n_out;
    int out_ndim;
    int64_t out_shape[MPSL_MAX_DIMS];
    objective_fn objective;   // NULL: sum(out * G)
};

static double objective_linear(const fd_ctx *c, const float *out, float *dout)
{
    double s = 0.0;
    for (int64_t i = 0; i < c->n_out; i++) {
        s += (double)out[i] * (double)c->G[i];
    }
    if (dout) {
        memcpy(dout, c->G, (size_t)c->n_out * sizeof(float));
    }
    return s;
}

static double module_loss(void *p)
{
    fd_ctx *c = p;
    mpsl_tensor out = {.data = c->out, .dtype = MPSL_F32, .ndim = c->out_ndim};
    memcpy(out.shape, c->out_shape, sizeof(out.shape));
    mpsl_error err = {{0}};
    if (c->m->api->forward(c->m->state, &c->m->w, &c->inp, &out, &err) != MPSL_OK) {
        fprintf(stderr, "forward failed: %s\n", err.msg);
        abort();
    }
    return (c->objective ? c->objective : objective_linear)(c, c->out, NULL);
}

/* Runs backward with dout = d objective / d out (of the last forward) into m->grad (zeroed
 * first unless keep_grad) and din. */
static int fd_backward(fd_ctx *c, float *din, int keep_grad)
{
    module *m = c->m;
    float *dout_buf = fnew(c->n_out);
    (c->objective ? c->objective : objective_linear)(c, c->out, dout_buf);
    if (!keep_grad) {
        memset(m->grad, 0, (size_t)m->n * sizeof(float));
    }
    mpsl_tensor dout = {.data = dout_buf, .dtype = MPSL_F32, .ndim = c->out_ndim};
    memcpy(dout.shape, c->out_shape, sizeof(dout.shape));
    mpsl_tensor dint = c->inp;
    dint.data = din;
    mpsl_error err = {{0}};
    int rc = m->api->backward(m->state, &m->w, &dout, din ? &dint : NULL, &err);
    if (rc != MPSL_OK) {
        fprintf(stderr, "backward failed: %s\n", err.msg);
    }
    free(dout_buf);
    return rc;
}

/* Forward once into c->out, then backward into m->grad and din. */
static int fd_setup_obj(fd_ctx *c, module *m, float *inp, int in_ndim, const int64_t *in_shape,
                        float *din, objective_fn objective)
{
    memset(c, 0, sizeof(*c));
    c->m = m;
    c->objective = objective;
    c->inp = (mpsl_tensor){.data = inp, .dtype = MPSL_F32, .ndim = in_ndim};
    memcpy(c->inp.shape, in_shape, (size_t)in_ndim * sizeof(int64_t));
    int ndim = 0, cls = -1;
    int64_t shape[MPSL_MAX_DIMS] = {0};
    CHECK(m->api->output_shape(m->state, &ndim, shape, &cls) == MPSL_OK);
    c->out_ndim = ndim + 1;
    c->out_shape[0] = in_shape[0];
    c->n_out = in_shape[0];
    for (int i = 0; i < ndim; i++) {
        // encoders take any T: their output has the input's token count
        c->out_shape[i + 1] = (i == 0 && m->lp.desc->kind == MPSL_KIND_ENCODER && in_ndim == 3)
                                  ? in_shape[1]
                                  : shape[i];
        c->n_out *= c->out_shape[i + 1];
    }
    c->out = fnew(c->n_out);
    c->G = fnew(c->n_out);
    fill_uniform(&rng, c->G, c->n_out, -1, 1);
    module_loss(c);
    return fd_backward(c, din, 0);
}

static int fd_setup(fd_ctx *c, module *m, float *inp, int in_ndim, const int64_t *in_shape,
                    float *din)
{
    return fd_setup_obj(c, m, inp, in_ndim, in_shape, din, NULL);
}

static void fd_free(fd_ctx *c)
{
    free(c->out);
    free(c->G);
}

/* Central finite differences (smooth functions) for every trainable declared tensor, at most
 * max_probe entries each; frozen ones must have exactly zero gradient. */
static void check_param_grads(fd_ctx *c, float eps, double rtol, double atol,
                              int64_t max_probe)
{
    module *m = c->m;
    for (int i = 0; i < m->n_decl; i++) {
        const decl *d = &m->d[i];
        if (d->trainable) {
            check_fd_(__FILE__, __LINE__, d->name, module_loss, c, m->param + d->off,
                      m->grad + d->off, d->count, eps, rtol, atol, max_probe);
        } else {
            int zero = 1;
            for (int64_t j = 0; j < d->count; j++) {
                zero &= m->grad[d->off + j] == 0.0f;
            }
            CHECK(zero);
            if (!zero) {
                fprintf(stderr, "frozen tensor %s got a gradient\n", d->name);
            }
        }
    }
}

/* The whole gradient buffer is zero. */
static inline int all_zero(const float *g, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        if (g[i] != 0.0f) {
            return 0;
        }
    }
    return 1;
}

#endif
