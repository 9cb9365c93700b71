/* torch_check.h: what the `torch` suite's tests share: reading the PyTorch fixtures that
 * make_fixtures.py writes, comparing tensors with one scale-relative metric and printing a
 * table of the worst error per case, and a small module harness on tests/module_harness.h
 * that loads the real plugin .so files as the host does (plugin_load, parameters from YAML, a
 * declare() that records every tensor, the real kernel table of host_services()).
 *
 * THE METRIC. For a tensor `got` compared with the reference `want` (n values):
 *
 *     err = max_i |got_i - want_i| / max(max_i |want_i|, 1e-30)
 *
 * the largest absolute error relative to the reference tensor's own scale (its infinity
 * norm). It does not blow up on entries that are near zero by cancellation (an elementwise
 * relative error would), and it is not loosened by an absolute floor. Scalars (losses) are the
 * case n = 1: the ordinary relative error. A non-finite value anywhere gives err = inf.
 * The acceptance bar of issue 3 is err < 1e-4 for every output, loss and gradient.
 *
 * Usage of every test: test_torch_* FIXTURE_DIR [PLUGIN.so ...] */
#ifndef MPSL_TEST_TORCH_CHECK_H
#define MPSL_TEST_TORCH_CHECK_H

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "kernels/kernels.h"
#include "module_harness.h"
#include "weights/safetensors.h"

#define TORCH_TOL 1e-4

static int g_argc;
static char **g_argv;

static inline void torch_args(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s FIXTURE_DIR [PLUGIN.so ...]\n", argv[0]);
        exit(2);
    }
    g_argc = argc;
    g_argv = argv;
}

/* ------------------------------------------------------------------ fixtures */

static inline st_file *fx_open(const char *file)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", g_argv[1], file);
    st_file *f = NULL;
    mpsl_error err = {{0}};
    if (st_read(path, &f, &err) != MPSL_OK) {
        fprintf(stderr, "cannot read the fixture: %s\n(regenerate with /usr/bin/python3 "
                "tests/torch/make_fixtures.py)\n", err.msg);
        exit(1);
    }
    return f;
}

static inline const st_tensor_info *fx_info(const st_file *f, const char *name)
{
    const st_tensor_info *t = st_find(f, name);
    if (!t) {
        fprintf(stderr, "%s: no tensor '%s' (fixture and test out of step?)\n", st_path(f),
                name);
        exit(1);
    }
    return t;
}

/* Tensor `name` as a new float array; *n (may be NULL) receives its size. */
static inline float *fx_get(const st_file *f, const char *name, int64_t *n)
{
    const st_tensor_info *t = fx_info(f, name);
    float *v = fnew(t->numel);
    mpsl_error err = {{0}};
    if (st_tensor_to_f32(f, name, v, t->numel, &err) != MPSL_OK) {
        fprintf(stderr, "%s\n", err.msg);
        exit(1);
    }
    if (n) {
        *n = t->numel;
    }
    return v;
}

/* The same, insisting on `want` values. */
static inline float *fx_getn(const st_file *f, const char *name, int64_t want)
{
    int64_t n = 0;
    float *v = fx_get(f, name, &n);
    if (n != want) {
        fprintf(stderr, "%s: '%s' has %lld values, the test expects %lld\n", st_path(f), name,
                (long long)n, (long long)want);
        exit(1);
    }
    return v;
}

/* Integer-valued tensors (labels, ids, bytes) are stored as exact float32. */
static inline int32_t *fx_get_i32(const st_file *f, const char *name, int64_t *n)
{
    int64_t m = 0;
    float *v = fx_get(f, name, &m);
    int32_t *out = malloc((size_t)(m > 0 ? m : 1) * sizeof(int32_t));
    if (!out) {
        abort();
    }
    for (int64_t i = 0; i < m; i++) {
        out[i] = (int32_t)v[i];
    }
    free(v);
    if (n) {
        *n = m;
    }
    return out;
}

/* ------------------------------------------------------------------ comparisons and the table */

typedef struct {
    char name[64];
    double worst;
    char worst_what[160]; /* as long as the tensor names checks are given */
    int tensors, failed;
} torch_case;

static torch_case g_cases[256];
static int g_n_cases;
static torch_case *g_case;

static inline void case_begin(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline void case_begin(const char *fmt, ...)
{
    if (g_n_cases == (int)MPSL_COUNT(g_cases)) {
        abort();
    }
    g_case = &g_cases[g_n_cases++];
    memset(g_case, 0, sizeof *g_case);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_case->name, sizeof g_case->name, fmt, ap);
    va_end(ap);
}

/* The metric of the header. */
static inline double rel_err(const float *got, const float *want, int64_t n)
{
    double scale = 0.0, worst = 0.0;
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(got[i]) || !isfinite(want[i])) {
            return INFINITY;
        }
        double w = fabs((double)want[i]), d = fabs((double)got[i] - (double)want[i]);
        scale = w > scale ? w : scale;
        worst = d > worst ? d : worst;
    }
    return worst / (scale > 1e-30 ? scale : 1e-30);
}

/* Compares and records under the current case; a failure prints what, the error and the first
 * index at the worst difference. Returns the error. */
static inline double expect_close_tol(const char *what, const float *got, const float *want,
                                      int64_t n, double tol)
{
    double e = rel_err(got, want, n);
    check_count++;
    if (g_case) {
        g_case->tensors++;
        if (!(e <= g_case->worst) || g_case->tensors == 1) {
            g_case->worst = e;
            snprintf(g_case->worst_what, sizeof g_case->worst_what, "%s", what);
        }
    }
    if (!(e < tol)) {
        check_failures++;
        if (g_case) {
            g_case->failed++;
        }
        int64_t at = 0;
        double dmax = -1.0;
        for (int64_t i = 0; i < n; i++) {
            double d = fabs((double)got[i] - (double)want[i]);
            if (!(d <= dmax)) {
                dmax = d, at = i;
            }
        }
        fprintf(stderr, "MISMATCH vs PyTorch: %s%s%s: max rel err %.3g (tolerance %g); at "
                "[%lld] got %.9g, torch %.9g\n", g_case ? g_case->name : "",
                g_case ? " / " : "", what, e, tol, (long long)at, (double)got[at],
                (double)want[at]);
    }
    return e;
}

static inline double expect_close(const char *what, const float *got, const float *want, int64_t n)
{
    return expect_close_tol(what, got, want, n, TORCH_TOL);
}

static inline double expect_scalar(const char *what, double got, float want)
{
    float g = (float)got;
    return expect_close(what, &g, &want, 1);
}

/* The table: one row per case with its worst tensor. Returns check_exit(). */
static inline int torch_report(const char *title)
{
    printf("\n%s: max relative error per case (metric: max|a-b| / max|torch|, tolerance %g "
           "unless noted)\n", title, TORCH_TOL);
    printf("%-48s %8s %12s  %s\n", "case", "tensors", "max rel err", "worst tensor");
    for (int i = 0; i < g_n_cases; i++) {
        const torch_case *c = &g_cases[i];
        printf("%-48s %8d %12.3g  %s%s\n", c->name, c->tensors, c->worst, c->worst_what,
               c->failed ? "   <-- FAILED" : "");
    }
    fflush(stdout);
    return check_exit();
}

/* ------------------------------------------------------------------ plugin modules */

static inline const char *plugin_path(const char *name)
{
    return mh_plugin_arg(g_argc, g_argv, 2, name);
}

/* A module is tests/module_harness.h's, with its per-sample output shape (out_ndim,
 * out_shape, cls) recorded when it opens and, after tmod_freeze, the trainable flags the host
 * would give it (trainable_mask). TMOD_MAX_DECL bounds the tensors of one module. */
#define TMOD_MAX_DECL 128
typedef mh_decl tdecl;
typedef mh_module tmod;

/* Loads plugin `name`.so, parses yaml into its parameters and creates it for the per-sample
 * input (in_ndim, in_shape, dtype). Exits on any failure (the rest of the test needs it). */
static inline void tmod_open(tmod *m, const char *name, mpsl_plugin_kind kind, const char *yaml,
                             int in_ndim, const int64_t *in_shape, mpsl_dtype dtype,
                             int64_t n_classes, const mpsl_token_layout *layout)
{
    mpsl_error err = {{0}};
    if (mh_load(m, plugin_path(name), kind, yaml, "torch.yaml", &err) != MPSL_OK ||
        mh_params(m, name, &err) != MPSL_OK) {
        fprintf(stderr, "%s\n", err.msg);
        exit(1);
    }
    if (mh_create(m, NULL, in_ndim, in_shape, dtype, n_classes, layout, "torch.yaml:1:1",
                  &err) != MPSL_OK) {
        fprintf(stderr, "%s: create failed: %s\n", name, err.msg);
        exit(1);
    }
    if (m->n_decl > TMOD_MAX_DECL) {
        fprintf(stderr, "%s: %d tensors, more than TMOD_MAX_DECL\n", name, m->n_decl);
        exit(1);
    }
    if (m->api->output_shape(m->state, &m->out_ndim, m->out_shape, &m->cls) != MPSL_OK) {
        fprintf(stderr, "%s: no output shape\n", name);
        exit(1);
    }
}

/* Points the module at param/grad (its part of a larger flat buffer), or at its own buffers
 * when both are NULL. */
static inline void tmod_bind(tmod *m, float *param, float *grad)
{
    mh_bind(m, param, grad);
}

static inline void tmod_close(tmod *m)
{
    mh_close(m);
}

/* Every tensor "<prefix>.<name>" of the fixture is declared by the module with the same shape,
 * and every declared tensor has one: copied into m->param. */
static inline void tmod_load(tmod *m, const st_file *f, const char *prefix)
{
    size_t pl = strlen(prefix);
    int found = 0;
    for (int i = 0; i < st_count(f); i++) {
        const st_tensor_info *t = st_tensor_at(f, i);
        if (strncmp(t->name, prefix, pl) != 0 || t->name[pl] != '.') {
            continue;
        }
        const char *name = t->name + pl + 1;
        const tdecl *d = mh_find(m, name);
        check_count++;
        if (!d) {
            check_failures++;
            fprintf(stderr, "%s: torch's '%s' is not declared by %s\n", prefix, name,
                    m->lp.desc->name);
            continue;
        }
        int same = t->ndim == d->ndim;
        for (int j = 0; same && j < d->ndim; j++) {
            same = t->shape[j] == d->shape[j];
        }
        if (!same) {
            check_failures++;
            fprintf(stderr, "%s: '%s' has another shape in the fixture than declared\n", prefix,
                    name);
            exit(1);
        }
        mpsl_error err = {{0}};
        if (st_tensor_to_f32(f, t->name, m->param + d->off, d->count, &err) != MPSL_OK) {
            fprintf(stderr, "%s\n", err.msg);
            exit(1);
        }
        found++;
    }
    check_count++;
    if (found != m->n_decl) {
        check_failures++;
        fprintf(stderr, "%s: %s declares %d tensors, the fixture holds %d of them\n", prefix,
                m->lp.desc->name, m->n_decl, found);
    }
}

/* Freezes, through w.trainable as the host does for optimizer groups, every declared tensor
 * whose name starts with prefix. */
static inline void tmod_freeze(tmod *m, const char *prefix)
{
    uint8_t *t = malloc((size_t)(m->n > 0 ? m->n : 1));
    if (!t) {
        abort();
    }
    memset(t, 1, (size_t)m->n);
    for (int i = 0; i < m->n_decl; i++) {
        if (strncmp(m->d[i].name, prefix, strlen(prefix)) == 0) {
            memset(t + m->d[i].off, 0, (size_t)m->d[i].count);
        }
    }
    free(m->trainable_mask);
    m->trainable_mask = t;   // kept to be freed; it holds the trainable flags
    m->w.trainable = t;
}

/* Gradients against "<prefix>.<name>" for every trainable tensor; a tensor frozen by
 * declaration or by the host (w.trainable) must keep an exactly zero gradient. Returns the
 * worst error. */
static inline double tmod_check_grads(const tmod *m, const st_file *f, const char *prefix,
                                      const char *label)
{
    double worst = 0.0;
    for (int i = 0; i < m->n_decl; i++) {
        const tdecl *d = &m->d[i];
        const float *g = m->grad + d->off;
        char what[160];
        snprintf(what, sizeof what, "d %s%s%s", label, *label ? "." : "", d->name);
        int host_frozen = m->w.trainable && !memchr(m->w.trainable + d->off, 1,
                                                    (size_t)d->count);
        if (!d->trainable || host_frozen) {
            int zero = 1;
            for (int64_t j = 0; j < d->count; j++) {
                zero &= g[j] == 0.0f;
            }
            check_count++;
            if (!zero) {
                check_failures++;
                if (g_case) {
                    g_case->failed++;
                }
                fprintf(stderr, "MISMATCH: %s: frozen tensor %s got a gradient\n",
                        g_case ? g_case->name : "", d->name);
            }
            continue;
        }
        char full[192];
        snprintf(full, sizeof full, "%s.%s", prefix, d->name);
        float *want = fx_getn(f, full, d->count);
        double e = expect_close(what, g, want, d->count);
        worst = e > worst ? e : worst;
        free(want);
    }
    return worst;
}

static inline mpsl_tensor tensor3(float *data, int64_t a, int64_t b, int64_t c)
{
    return (mpsl_tensor){.data = data, .dtype = MPSL_F32, .ndim = 3, .shape = {a, b, c}};
}

static inline void tmod_forward(tmod *m, const mpsl_tensor *inp, mpsl_tensor *out)
{
    mpsl_error err = {{0}};
    if (m->api->forward(m->state, &m->w, inp, out, &err) != MPSL_OK) {
        fprintf(stderr, "%s forward failed: %s\n", m->lp.desc->name, err.msg);
        exit(1);
    }
}

static inline void tmod_backward(tmod *m, const mpsl_tensor *dout, mpsl_tensor *din)
{
    mpsl_error err = {{0}};
    if (m->api->backward(m->state, &m->w, dout, din, &err) != MPSL_OK) {
        fprintf(stderr, "%s backward failed: %s\n", m->lp.desc->name, err.msg);
        exit(1);
    }
}

/* Per-sample output size of a module (the product of its output shape). */
static inline int64_t tmod_out_numel(const tmod *m)
{
    int64_t n = 1;
    for (int i = 0; i < m->out_ndim; i++) {
        n *= m->out_shape[i];
    }
    return n;
}

#endif
