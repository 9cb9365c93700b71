/* init_cache.c: initial parameters shared by the models of one layout (init_cache.h). */
#include "init_cache.h"

#include <stdlib.h>
#include <string.h>

#include "util/util.h"

typedef struct init_entry {
    init_decl *decls;
    int n_decls;
    int64_t n;
    float *param;               /* NULL until the layout's second model */
    uint8_t *trainable;
    int64_t n_trainable;
} init_entry;

struct init_cache {
    init_entry *entry;
    int n, cap;                 /* a run has a handful of layouts */
};

static init_entry *find(const init_cache *c, const init_decl *decls, int n_decls, int64_t n)
{
    for (int i = 0; c && i < c->n; i++) {
        init_entry *e = &c->entry[i];
        if (e->n == n && e->n_decls == n_decls &&
            memcmp(e->decls, decls, (size_t)n_decls * sizeof *decls) == 0) {
            return e;
        }
    }
    return NULL;
}

const uint8_t *init_cache_copy(const init_cache *c, const init_decl *decls, int n_decls,
                               int64_t n, float *param, int64_t *n_trainable)
{
    const init_entry *e = find(c, decls, n_decls, n);
    if (!e || !e->param) {
        return NULL;
    }
    memcpy(param, e->param, (size_t)n * sizeof *param);
    *n_trainable = e->n_trainable;
    return e->trainable;
}

void init_cache_offer(init_cache **c, const init_decl *decls, int n_decls, int64_t n,
                      const float *param, const uint8_t *trainable, int64_t n_trainable)
{
    if (!*c && !(*c = calloc(1, sizeof **c))) {
        return;
    }
    init_cache *ic = *c;
    init_entry *e = find(ic, decls, n_decls, n);
    if (!e) { /* first sight: remember the layout only */
        if (ic->n == ic->cap) {
            int cap = ic->cap ? 2 * ic->cap : 4;
            init_entry *grown = realloc(ic->entry, (size_t)cap * sizeof *grown);
            if (!grown) {
                return;
            }
            ic->entry = grown;
            ic->cap = cap;
        }
        init_decl *key = malloc((size_t)(n_decls ? n_decls : 1) * sizeof *key);
        if (!key) {
            return;
        }
        memcpy(key, decls, (size_t)n_decls * sizeof *key);
        ic->entry[ic->n++] = (init_entry){.decls = key, .n_decls = n_decls, .n = n};
        return;
    }
    if (e->param) {
        return;
    }
    float *p = mpsl_alloc((size_t)(n ? n : 1) * sizeof *p);
    uint8_t *t = mpsl_alloc((size_t)(n ? n : 1));
    if (!p || !t) {
        mpsl_free(p);
        mpsl_free(t);
        return;
    }
    memcpy(p, param, (size_t)n * sizeof *p);
    memcpy(t, trainable, (size_t)n);
    e->param = p;
    e->trainable = t;
    e->n_trainable = n_trainable;
}

void init_cache_free(init_cache *c)
{
    if (!c) {
        return;
    }
    for (int i = 0; i < c->n; i++) {
        free(c->entry[i].decls);
        mpsl_free(c->entry[i].param);
        mpsl_free(c->entry[i].trainable);
    }
    free(c->entry);
    free(c);
}
