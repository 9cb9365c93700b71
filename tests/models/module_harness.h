/* module_harness.h: loading one module plugin (tokenizer, encoder or head) as the host does,
 * with a declare() that records every tensor, and checking its backward against central
 * finite differences of a scalar objective of its output (sum(out * G) by default, or any
 * other, e.g. the retrieval loss). Loading, declare() and the buffers are those of
 * tests/module_harness.h, which tests/kernels/test_modules.c shares.
 *
 * The host table is host_services() itself, the one the host runs: nothing is swapped in for
 * a missing entry (tests/module_harness.h refuses an incomplete table, so a missing kernel
 * fails the test). ref_kernels.h only recomputes forwards to compare with. A kernel error
 * (kernels.h, KERNEL ERRORS) during a forward or backward fails the test too. */
#ifndef MPSL_TEST_MODULE_HARNESS_H
#define MPSL_TEST_MODULE_HARNESS_H

#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "../module_harness.h"   // tests/module_harness.h, not this file
#include "kernels/grad_check.h"
#include "kernels/kernels.h"
#include "ref_kernels.h"
#include "util/util.h"

static int g_argc;
static char **g_argv;
static mpsl_rng rng;

typedef mh_decl decl;
typedef mh_module module;

static inline const char *plugin_path(const char *name)
{
    return mh_plugin_arg(g_argc, g_argv, 1, name);
}

/* ------------------------------------------------------------------ the host */

/* The host the modules run on: the host's own table (mh_create checks it is complete). */
static const mpsl_host *harness_host(void)
{
    return host_services();
}

/* A kernel error recorded during a module call fails the test (and is cleared). */
static void check_no_kernel_error(const char *what)
{
    char msg[256];
    int rc = kern_error_take(msg, sizeof msg);
    CHECK(rc == MPSL_OK);
    if (rc != MPSL_OK) {
        fprintf(stderr, "%s: kernel error: %s\n", what, msg);
    }
}

/* ------------------------------------------------------------------ a module under test */

static inline const decl *find_decl(const module *m, const char *name)
{
    return mh_find(m, name);
}

/* The parameter tensor `name` (must exist: aborts otherwise, as the test would be wrong). */
static inline const float *pv(const module *m, const char *name)
{
    return m->param + mh_get(m, name)->off;
}

/* Load plugin `name`, parse params from yaml and create on harness_host(). Returns create's
 * status (err set on failure); the module must be closed with module_close either way.
 * Parameters get random values in [-0.5, 0.5] (zero initialisations would hide gradient
 * bugs). */
static int module_open(module *m, const char *name, mpsl_plugin_kind kind, const char *yaml,
                       int in_ndim, const int64_t *in_shape, int64_t n_classes,
                       const mpsl_token_layout *layout, mpsl_error *err)
{
    err->msg[0] = '\0';
    int rc = mh_open_test(m, plugin_path(name), kind, yaml, harness_host(), in_ndim, in_shape,
                          MPSL_F32, n_classes, layout, err);
    if (rc == MPSL_OK) {
        fill_uniform(&rng, m->param, m->n, -0.5f, 0.5f);
    }
    return rc;
}

static inline void module_close(module *m)
{
    mh_close(m);
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
    check_no_kernel_error("forward");
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
    check_no_kernel_error("backward");
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
