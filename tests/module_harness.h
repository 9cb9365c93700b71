/* module_harness.h: loading one module plugin (tokenizer, encoder or head) as the host does,
 * shared by the module tests (kernels/test_modules.c, models/module_harness.h,
 * tokenizers/tok_harness.h, torch/torch_check.h) and bench/bench_vit.c, which add their own
 * checks on top:
 *
 *   mh_plugin_arg  a plugin .so among the program's arguments, found by file name;
 *   mh_load        plugin_load (which checks the plugin's kind) and the YAML string of its
 *                  parameters (cfg_parse_string);
 *   mh_params      the parameters block the plugin's create() receives (cfg_parse_params);
 *   mh_host_complete  whether a host table has every entry (services, helpers, kernels);
 *   mh_create      mpsl_module_init for a per-sample input and create(), with a declare()
 *                  (mh_declare) that records every tensor: name, shape, offset, initialisation,
 *                  trainable, in a list that grows as needed; refuses an incomplete host;
 *   mh_bind        the flat parameter and gradient buffers: the module's own (zeroed) or its
 *                  part of larger ones;
 *   mh_open_test   all of these as the unit tests do it;
 *   mh_find        a declared tensor by name (mh_get: one that must exist);
 *   mh_close       everything undone, whatever stage the opening reached.
 *
 * The host table is host_services() unless the caller gives another (the benchmark wraps
 * kernels in timers). Whichever it is, it must be complete: a module is never tested on a
 * host with a NULL entry (nothing is swapped in for it), since that would test something
 * other than what the host runs. No assertion kit here: bench/bench_vit.c includes it too.
 * Every function is static inline, as each includer uses a part of them. */
#ifndef MPSL_TEST_SHARED_MODULE_HARNESS_H
#define MPSL_TEST_SHARED_MODULE_HARNESS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "plugin/loader.h"

/* A zeroed float array (at least one element); aborts when memory runs out. */
static inline float *fnew(int64_t n)
{
    float *p = calloc((size_t)(n > 0 ? n : 1), sizeof(float));
    if (!p) {
        abort();
    }
    return p;
}

/* The argument among argv[first..argc) whose file name is exactly "<name>.so"; exits when
 * there is none (the test's meson.build passes every plugin it needs). */
static inline const char *mh_plugin_arg(int argc, char **argv, int first, const char *name)
{
    size_t n = strlen(name);
    for (int i = first; i < argc; i++) {
        const char *base = strrchr(argv[i], '/');
        base = base ? base + 1 : argv[i];
        if (strncmp(base, name, n) == 0 && strcmp(base + n, ".so") == 0) {
            return argv[i];
        }
    }
    fprintf(stderr, "no %s.so among the arguments\n", name);
    exit(1);
}

/* ------------------------------------------------------------------ the host */

/* The kernel table's entries in plugin.h's order, for messages (a later entry is named by its
 * index). */
static const char *const mh_kernel_names[] = {
    "linear_forward", "linear_backward", "relu_forward", "relu_backward", "meanpool_forward",
    "meanpool_backward", "cross_entropy", "patch_gather", "layernorm_forward",
    "layernorm_backward", "gelu_forward", "gelu_backward", "attention_forward",
    "attention_backward", "add", "bias_add_forward", "bias_add_backward",
    "patch_gather_strided", "embedding_forward", "embedding_backward", "token_select_forward",
    "token_select_backward", "contrastive_loss", "l2norm_forward", "l2norm_backward"};

/* MPSL_OK when every entry of host h is there: its services, its helper tables and every
 * kernel of a table as large as this build's plugin.h; otherwise MPSL_ERR_INTERNAL, err naming
 * the first missing entry. */
static inline int mh_host_complete(const mpsl_host *h, mpsl_error *err)
{
    const char *missing = NULL;
    char name[64];
    if (!h) {
        missing = "the host table";
    } else if (!h->error_set || !h->log || !h->alloc || !h->free) {
        missing = "a service (error_set, log, alloc, free)";
    } else if (!h->rng || !h->half || !h->mel || !h->idx || !h->prepared || !h->files) {
        missing = "a helper table (rng, half, mel, idx, prepared, files)";
    } else if (!h->kernels || h->kernels->size < sizeof(mpsl_kernels)) {
        snprintf(name, sizeof name, "kernels (a table of %u bytes, plugin.h's has %zu)",
                 h->kernels ? (unsigned)h->kernels->size : 0u, sizeof(mpsl_kernels));
        missing = name;
    } else {
        typedef void (*any_fn)(void);
        const size_t first = offsetof(mpsl_kernels, linear_forward);
        const size_t n = (sizeof(mpsl_kernels) - first) / sizeof(any_fn);
        for (size_t i = 0; i < n && !missing; i++) {
            any_fn f;
            memcpy(&f, (const char *)h->kernels + first + i * sizeof f, sizeof f);
            if (!f) {
                if (i < sizeof mh_kernel_names / sizeof *mh_kernel_names) {
                    snprintf(name, sizeof name, "kernels->%s", mh_kernel_names[i]);
                } else {
                    snprintf(name, sizeof name, "kernel entry %zu", i);
                }
                missing = name;
            }
        }
    }
    if (missing) {
        snprintf(err->msg, sizeof err->msg, "test harness: the host table lacks %s; modules "
                 "are tested on the host's own complete table", missing);
        return MPSL_ERR_INTERNAL;
    }
    return MPSL_OK;
}

/* ------------------------------------------------------------------ a module */

/* One tensor the module declared, in declaration order. */
typedef struct {
    char name[96];
    int ndim;
    int64_t shape[MPSL_MAX_DIMS];
    int64_t off, count;       // in floats, inside the module's flat buffers
    mpsl_init init;
    float scale;
    int trainable;
} mh_decl;

typedef struct {
    loaded_plugin lp;
    const mpsl_module_api *api;
    cfg_node *cfg;            // the parsed YAML, or NULL when it had no keys
    void *params;             // the parameters block create() received
    void *state;              // NULL until create() succeeds
    mh_decl *d;               // (n_decl) the declared tensors
    int n_decl, cap_decl;
    int64_t n;                // floats declared
    float *param, *grad;      // (n) set by mh_bind; owned when own
    int own;
    mpsl_weights w;           // what forward()/backward() get
    uint8_t *trainable_mask;  // NULL, or an owned (n) mask w.trainable points at
    int out_ndim;             // per-sample output shape, where the includer records it
    int64_t out_shape[MPSL_MAX_DIMS];
    int cls;
} mh_module;

/* The declare() every module gets: records the tensor and returns its offset. Refuses
 * impossible ranks and a name declared twice. */
static inline int64_t mh_declare(void *ctx, const char *name, int ndim, const int64_t *shape,
                                 mpsl_init init, float scale, int trainable, mpsl_error *err)
{
    mh_module *m = ctx;
    if (ndim < 1 || ndim > MPSL_MAX_DIMS) {
        snprintf(err->msg, sizeof err->msg, "test declare: cannot take '%s'", name);
        return -1;
    }
    for (int i = 0; i < m->n_decl; i++) {
        if (strcmp(m->d[i].name, name) == 0) {
            snprintf(err->msg, sizeof err->msg, "test declare: '%s' declared twice", name);
            return -1;
        }
    }
    if (m->n_decl == m->cap_decl) {
        int cap = m->cap_decl ? 2 * m->cap_decl : 16;
        mh_decl *d = realloc(m->d, (size_t)cap * sizeof *d);
        if (!d) {
            snprintf(err->msg, sizeof err->msg, "test declare: out of memory at '%s'", name);
            return -1;
        }
        m->d = d, m->cap_decl = cap;
    }
    mh_decl *d = &m->d[m->n_decl++];
    memset(d, 0, sizeof *d);
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

/* Starts m afresh: loads the plugin at path, insisting on its kind, and parses yaml (NULL or
 * "": no keys), named yaml_name in messages. Returns the status, err set on failure; close m
 * with mh_close either way. */
static inline int mh_load(mh_module *m, const char *path, mpsl_plugin_kind kind,
                          const char *yaml, const char *yaml_name, mpsl_error *err)
{
    memset(m, 0, sizeof *m);
    int rc = plugin_load(path, kind, &m->lp, err);
    if (rc != MPSL_OK) {
        return rc;
    }
    m->api = m->lp.desc->api;
    if (yaml && *yaml) {
        m->cfg = cfg_parse_string(yaml, yaml_name, err);
        if (!m->cfg) {
            return MPSL_ERR_INVALID;
        }
    }
    return MPSL_OK;
}

/* Fills the plugin's parameters block from the YAML through its parameter table (section:
 * the block's name in messages; NULL: the plugin's name). Returns the status (the table may
 * refuse a value). */
static inline int mh_params(mh_module *m, const char *section, mpsl_error *err)
{
    const mpsl_plugin_desc *desc = m->lp.desc;
    m->params = calloc(1, desc->params_size ? desc->params_size : 1);
    if (!m->params) {
        abort();
    }
    return cfg_parse_params(m->cfg, desc->params, desc->n_params, m->params, desc->params_size,
                            section ? section : desc->name, NULL, err);
}

/* create() for per-sample inputs of in_shape (in_ndim dims of dtype), n_classes (heads) and
 * the token layout (encoders and heads; may be NULL), its YAML mapping at `where`, on host
 * (NULL: host_services()), which must be complete (mh_host_complete). Returns create's
 * status; m->state stays NULL on failure. */
static inline int mh_create(mh_module *m, const mpsl_host *host, int in_ndim,
                            const int64_t *in_shape, mpsl_dtype dtype, int64_t n_classes,
                            const mpsl_token_layout *layout, const char *where, mpsl_error *err)
{
    mpsl_module_init init = {.size = sizeof(mpsl_module_init), .params = m->params,
                             .in_ndim = in_ndim, .in_dtype = dtype, .n_classes = n_classes,
                             .layout = layout, .declare = mh_declare, .ctx = m,
                             .where = where};
    for (int i = 0; i < in_ndim; i++) {
        init.in_shape[i] = in_shape[i];
    }
    host = host ? host : host_services();
    int rc = mh_host_complete(host, err);
    if (rc != MPSL_OK) {
        return rc;
    }
    rc = m->api->create(host, &init, &m->state, err);
    if (rc != MPSL_OK) {
        m->state = NULL;
    }
    return rc;
}

/* Points the module at param/grad (its part of larger flat buffers), or at buffers of its own,
 * zeroed, when param is NULL. */
static inline void mh_bind(mh_module *m, float *param, float *grad)
{
    if (!param) {
        param = fnew(m->n), grad = fnew(m->n);
        m->own = 1;
    }
    m->param = param, m->grad = grad;
    m->w = (mpsl_weights){.param = param, .grad = grad, .n = m->n};
}

/* The unit tests' way: load (the loader's and the YAML parser's errors are printed), the
 * parameters (block "test" of "test.yaml"; a refusal is returned quietly, as tests expect
 * some), create at "test.yaml:3:5", then buffers of its own. Returns the first failing
 * status, err set; close m with mh_close either way. */
static inline int mh_open_test(mh_module *m, const char *path, mpsl_plugin_kind kind,
                               const char *yaml, const mpsl_host *host, int in_ndim,
                               const int64_t *in_shape, mpsl_dtype dtype, int64_t n_classes,
                               const mpsl_token_layout *layout, mpsl_error *err)
{
    int rc = mh_load(m, path, kind, yaml, "test.yaml", err);
    if (rc != MPSL_OK) {
        fprintf(stderr, "%s\n", err->msg);
        return rc;
    }
    rc = mh_params(m, "test", err);
    if (rc != MPSL_OK) {
        return rc;
    }
    rc = mh_create(m, host, in_ndim, in_shape, dtype, n_classes, layout, "test.yaml:3:5", err);
    if (rc != MPSL_OK) {
        return rc;
    }
    mh_bind(m, NULL, NULL);
    return MPSL_OK;
}

/* Undoes whatever of the above was done, and zeroes m. */
static inline void mh_close(mh_module *m)
{
    if (m->state) {
        m->api->destroy(m->state);
    }
    if (m->lp.handle) {
        plugin_unload(&m->lp);
    }
    cfg_free(m->cfg);
    free(m->params);
    free(m->d);
    free(m->trainable_mask);
    if (m->own) {
        free(m->param), free(m->grad);
    }
    memset(m, 0, sizeof *m);
}

/* ------------------------------------------------------------------ declared tensors */

/* The declared tensor `name`, or NULL. */
static inline const mh_decl *mh_find(const mh_module *m, const char *name)
{
    for (int i = 0; i < m->n_decl; i++) {
        if (strcmp(m->d[i].name, name) == 0) {
            return &m->d[i];
        }
    }
    return NULL;
}

/* The declared tensor `name`, which must exist: aborts otherwise, as the test would be wrong. */
static inline const mh_decl *mh_get(const mh_module *m, const char *name)
{
    const mh_decl *d = mh_find(m, name);
    if (!d) {
        fprintf(stderr, "tensor '%s' was not declared\n", name);
        abort();
    }
    return d;
}

#endif
