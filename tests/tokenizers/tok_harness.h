/* tok_harness.h: loading a tokenizer plugin as the host does and checking it. A test
 * declare() records the tensors by name; parameters get random values (zero initialisations
 * would hide gradient bugs); the scalar loss sum(out * G) through forward() drives central
 * finite differences of every parameter tensor. Unlike tests/kernels/test_modules.c, inputs
 * may be int32 (the text tokenizer's bytes). */
#ifndef MPSL_TOK_HARNESS_H
#define MPSL_TOK_HARNESS_H

#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "kernels/grad_check.h"
#include "plugin/loader.h"
#include "util/util.h"

static mpsl_rng rng;

static float *fnew(int64_t n)
{
    float *p = calloc((size_t)(n > 0 ? n : 1), sizeof(float));
    if (!p) {
        abort();
    }
    return p;
}

#define MAX_DECL 16
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

/* The float offset of a declared tensor; a missing one fails the test and aborts. */
static int64_t off_of(const module *m, const char *name)
{
    const decl *d = find_decl(m, name);
    if (!d) {
        fprintf(stderr, "tensor '%s' was not declared\n", name);
        abort();
    }
    return d->off;
}

/* Load the plugin at path, parse its params from yaml and create it for per-sample inputs of
 * in_shape (in_ndim dims, dtype). Returns create's status (err set on failure); close with
 * module_close either way. */
static int module_open(module *m, const char *path, const char *yaml, mpsl_dtype dtype,
                       int in_ndim, const int64_t *in_shape, mpsl_error *err)
{
    memset(m, 0, sizeof(*m));
    int rc = plugin_load(path, MPSL_KIND_TOKENIZER, &m->lp, err);
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
                             .in_ndim = in_ndim, .in_dtype = dtype,
                             .declare = test_declare, .ctx = m, .where = "test.yaml:3:5"};
    for (int i = 0; i < in_ndim; i++) {
        init.in_shape[i] = in_shape[i];
    }
    rc = m->api->create(host_services(), &init, &m->state, err);
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

/* The per-sample output shape as {T, D}; checks it is 2-dimensional. */
static void out_td(module *m, int64_t *T, int64_t *D, int *cls)
{
    int ndim = 0, c = -1;
    int64_t shape[MPSL_MAX_DIMS] = {0};
    CHECK(m->api->output_shape(m->state, &ndim, shape, &c) == MPSL_OK);
    CHECK(ndim == 2);
    *T = shape[0];
    *D = shape[1];
    if (cls) {
        *cls = c;
    }
}

/* The scalar loss sum(out * G) through the module's forward. */
typedef struct {
    module *m;
    mpsl_tensor inp;
    float *out, *G;
    int64_t n_out;
    mpsl_tensor out_t;
} fd_ctx;

static double module_loss(void *p)
{
    fd_ctx *c = p;
    mpsl_error err = {{0}};
    if (c->m->api->forward(c->m->state, &c->m->w, &c->inp, &c->out_t, &err) != MPSL_OK) {
        fprintf(stderr, "forward failed: %s\n", err.msg);
        abort();
    }
    double s = 0.0;
    for (int64_t i = 0; i < c->n_out; i++) {
        s += (double)c->out[i] * (double)c->G[i];
    }
    return s;
}

/* Forward once into c->out (B,T,D), then backward with dout = G into m->grad (zeroed first)
 * and din = NULL. inp is the batch tensor (shape[0] = B). Returns backward's status. */
static int fd_setup(fd_ctx *c, module *m, const mpsl_tensor *inp)
{
    memset(c, 0, sizeof(*c));
    c->m = m;
    c->inp = *inp;
    int64_t T = 0, D = 0;
    out_td(m, &T, &D, NULL);
    int64_t B = inp->shape[0];
    c->n_out = B * T * D;
    c->out = fnew(c->n_out);
    c->G = fnew(c->n_out);
    c->out_t = (mpsl_tensor){.data = c->out, .dtype = MPSL_F32, .ndim = 3,
                             .shape = {B, T, D}};
    fill_uniform(&rng, c->G, c->n_out, -1, 1);
    module_loss(c);
    CHECK(c->out_t.ndim == 3 && c->out_t.shape[0] == B && c->out_t.shape[1] == T &&
          c->out_t.shape[2] == D && c->out_t.dtype == MPSL_F32);
    memset(m->grad, 0, (size_t)m->n * sizeof(float));
    mpsl_tensor dout = c->out_t;
    dout.data = c->G;
    mpsl_error err = {{0}};
    int rc = m->api->backward(m->state, &m->w, &dout, NULL, &err);
    if (rc != MPSL_OK) {
        fprintf(stderr, "backward failed: %s\n", err.msg);
    }
    return rc;
}

static void fd_free(fd_ctx *c)
{
    free(c->out);
    free(c->G);
}

/* Central differences for every declared tensor (all are trainable in tokenizers). The
 * losses are linear in each parameter, so differences are exact up to rounding. */
static void check_param_grads(fd_ctx *c, float eps, int64_t max_probe)
{
    module *m = c->m;
    for (int i = 0; i < m->n_decl; i++) {
        const decl *d = &m->d[i];
        CHECK(d->trainable);
        check_fd_(__FILE__, __LINE__, d->name, module_loss, c, m->param + d->off,
                  m->grad + d->off, d->count, eps, 1e-2, 1e-3, max_probe);
    }
}

/* A backward with a din must be refused, naming the plugin. */
static void check_din_refused(fd_ctx *c, void *din, const char *want)
{
    mpsl_tensor dout = c->out_t, dint = c->inp;
    dout.data = c->G;
    dint.data = din;
    mpsl_error err = {{0}};
    CHECK(c->m->api->backward(c->m->state, &c->m->w, &dout, &dint, &err) == MPSL_ERR_INVALID);
    CHECK_CONTAINS(err.msg, want);
}

#endif
