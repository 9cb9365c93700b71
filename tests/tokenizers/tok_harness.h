/* tok_harness.h: loading a tokenizer plugin as the host does and checking it. A test
 * declare() records the tensors by name; parameters get random values (zero initialisations
 * would hide gradient bugs); the scalar loss sum(out * G) through forward() drives central
 * finite differences of every parameter tensor. Loading, declare() and the buffers are
 * tests/module_harness.h's; here inputs may be int32 (the text tokenizer's bytes). */
#ifndef MPSL_TOK_HARNESS_H
#define MPSL_TOK_HARNESS_H

#include <stdlib.h>
#include <string.h>

#include "kernels/grad_check.h"
#include "module_harness.h"
#include "util/util.h"

static mpsl_rng rng;

typedef mh_decl decl;
typedef mh_module module;

static inline const decl *find_decl(const module *m, const char *name)
{
    return mh_find(m, name);
}

/* The float offset of a declared tensor; a missing one fails the test and aborts. */
static inline int64_t off_of(const module *m, const char *name)
{
    return mh_get(m, name)->off;
}

/* Load the tokenizer plugin at path, parse its params from yaml and create it for per-sample
 * inputs of in_shape (in_ndim dims, dtype). Returns create's status (err set on failure);
 * close with module_close either way. Parameters get random values in [-0.5, 0.5]. */
static int module_open(module *m, const char *path, const char *yaml, mpsl_dtype dtype,
                       int in_ndim, const int64_t *in_shape, mpsl_error *err)
{
    int rc = mh_open_test(m, path, MPSL_KIND_TOKENIZER, yaml, NULL, in_ndim, in_shape, dtype,
                          0, NULL, err);
    if (rc == MPSL_OK) {
        fill_uniform(&rng, m->param, m->n, -0.5f, 0.5f);
    }
    return rc;
}

static inline void module_close(module *m)
{
    mh_close(m);
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
