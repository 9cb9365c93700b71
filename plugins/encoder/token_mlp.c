/* token_mlp.c: the simplest real encoder: `depth` residual MLP blocks applied to every token
 * independently, x = x + fc2(relu(fc1(x))). No attention: a baseline and a stand-in until the
 * transformer encoder exists, with the same names (blocks.{i}.mlp.fc1.weight, ...) and the
 * same "train only the last N blocks" switch. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <mpsl/plugin.h>

typedef struct {
    int64_t depth;
    int64_t hidden;
    int64_t trainable_blocks;
} tm_params;

static const mpsl_param_spec tm_spec[] = {
    MPSL_PARAM_INT(tm_params, depth, "depth", 0, 1, 1024, "1", "number of residual MLP blocks"),
    MPSL_PARAM_INT(tm_params, hidden, "hidden", 0, 1, 1 << 20, "128", "hidden width of each MLP"),
    MPSL_PARAM_INT(tm_params, trainable_blocks, "trainable_blocks", 0, -1, 1024, "-1",
                   "train only the last N blocks (-1: all, 0: none)"),
};

typedef struct {
    int64_t fc1_w, fc1_b, fc2_w, fc2_b; // offsets in the flat buffer
    int trainable;
} tm_block;

typedef struct {
    const mpsl_host *h;
    int64_t depth, T, D, Hd; // Hd: hidden width
    tm_block *blocks;
    // saved for backward, per block: its input x (BT,D), fc1 output (BT,Hd), relu (BT,Hd)
    int64_t cap;             // batch capacity (samples)
    float *x;                // (depth, B*T, D)
    float *pre;              // (depth, B*T, Hd)
    float *act;              // (depth, B*T, Hd)
    float *dx, *dtmp;        // (B*T, D) scratch for backward
    float *dh;               // (B*T, Hd)
    int64_t saved_B;
} tm_state;

static void tm_free_buffers(tm_state *s)
{
    const mpsl_host *h = s->h;
    h->free(s->x), h->free(s->pre), h->free(s->act);
    h->free(s->dx), h->free(s->dtmp), h->free(s->dh);
    s->x = s->pre = s->act = s->dx = s->dtmp = s->dh = NULL;
    s->cap = 0;
}

static void tm_destroy(void *state)
{
    tm_state *s = state;
    if (!s) {
        return;
    }
    tm_free_buffers(s);
    s->h->free(s->blocks);
    s->h->free(s);
}

static int64_t tm_declare(const mpsl_module_init *init, int64_t i, const char *what, int ndim,
                          int64_t d0, int64_t d1, float bound, int trainable, mpsl_error *err)
{
    char name[96];
    snprintf(name, sizeof(name), "blocks.%lld.mlp.%s", (long long)i, what);
    int64_t shape[2] = {d0, d1};
    return init->declare(init->ctx, name, ndim, shape, MPSL_INIT_UNIFORM, bound, trainable,
                         err);
}

static int tm_create(const mpsl_host *h, const mpsl_module_init *init, void **state,
                     mpsl_error *err)
{
    const tm_params *p = init->params;
    const char *where = init->where ? init->where : "encoder";
    if (init->in_ndim != 2 || init->in_shape[0] < 1 || init->in_shape[1] < 1) {
        h->error_set(err, "%s: token_mlp expects tokens of shape (T,D), got %d dimensions",
                     where, init->in_ndim);
        return MPSL_ERR_INVALID;
    }
    if (p->trainable_blocks > p->depth) {
        h->error_set(err, "%s: trainable_blocks: %lld is more than depth (%lld); expected -1 "
                     "(all) or 0..%lld", where, (long long)p->trainable_blocks,
                     (long long)p->depth, (long long)p->depth);
        return MPSL_ERR_INVALID;
    }
    tm_state *s = h->alloc(sizeof(*s));
    if (!s) {
        h->error_set(err, "%s: token_mlp: out of memory", where);
        return MPSL_ERR_NOMEM;
    }
    s->h = h;
    s->depth = p->depth, s->T = init->in_shape[0], s->D = init->in_shape[1];
    s->Hd = p->hidden;
    s->saved_B = -1;
    s->blocks = h->alloc((size_t)s->depth * sizeof(tm_block));
    if (!s->blocks) {
        h->error_set(err, "%s: token_mlp: out of memory", where);
        h->free(s);
        return MPSL_ERR_NOMEM;
    }
    int64_t first_trained = p->trainable_blocks < 0 ? 0 : s->depth - p->trainable_blocks;
    float b1 = 1.0f / sqrtf((float)s->D), b2 = 1.0f / sqrtf((float)s->Hd);
    for (int64_t i = 0; i < s->depth; i++) {
        tm_block *bk = &s->blocks[i];
        bk->trainable = i >= first_trained;
        if ((bk->fc1_w = tm_declare(init, i, "fc1.weight", 2, s->Hd, s->D, b1, bk->trainable,
                                    err)) < 0 ||
            (bk->fc1_b = tm_declare(init, i, "fc1.bias", 1, s->Hd, 0, b1, bk->trainable,
                                    err)) < 0 ||
            (bk->fc2_w = tm_declare(init, i, "fc2.weight", 2, s->D, s->Hd, b2, bk->trainable,
                                    err)) < 0 ||
            (bk->fc2_b = tm_declare(init, i, "fc2.bias", 1, s->D, 0, b2, bk->trainable,
                                    err)) < 0) {
            tm_destroy(s);
            return MPSL_ERR_INVALID;
        }
    }
    *state = s;
    return MPSL_OK;
}

static int tm_output_shape(void *state, int *ndim, int64_t *shape, int *cls)
{
    tm_state *s = state;
    *ndim = 2;
    shape[0] = s->T;
    shape[1] = s->D;
    if (cls) {
        *cls = 0;
    }
    return MPSL_OK;
}

static int tm_reserve(tm_state *s, int64_t B, mpsl_error *err)
{
    if (B <= s->cap) {
        return MPSL_OK;
    }
    tm_free_buffers(s);
    const mpsl_host *h = s->h;
    size_t nd = (size_t)(B * s->T * s->D) * sizeof(float);
    size_t nh = (size_t)(B * s->T * s->Hd) * sizeof(float);
    s->x = h->alloc((size_t)s->depth * nd);
    s->pre = h->alloc((size_t)s->depth * nh);
    s->act = h->alloc((size_t)s->depth * nh);
    s->dx = h->alloc(nd);
    s->dtmp = h->alloc(nd);
    s->dh = h->alloc(nh);
    if (!s->x || !s->pre || !s->act || !s->dx || !s->dtmp || !s->dh) {
        tm_free_buffers(s);
        h->error_set(err, "token_mlp: out of memory for a batch of %lld", (long long)B);
        return MPSL_ERR_NOMEM;
    }
    s->cap = B;
    return MPSL_OK;
}

static int tm_check_shape(tm_state *s, const mpsl_tensor *t, const char *what, mpsl_error *err)
{
    if (t->dtype != MPSL_F32 || t->ndim != 3 || t->shape[1] != s->T || t->shape[2] != s->D) {
        s->h->error_set(err, "token_mlp: %s should be (B,%lld,%lld) float, got %d dimensions "
                        "(B,%lld,%lld)", what, (long long)s->T, (long long)s->D, t->ndim,
                        (long long)t->shape[1], (long long)t->shape[2]);
        return MPSL_ERR_INVALID;
    }
    return MPSL_OK;
}

static int tm_forward(void *state, const mpsl_weights *w, const mpsl_tensor *inp,
                      mpsl_tensor *out, mpsl_error *err)
{
    tm_state *s = state;
    const mpsl_kernels *k = s->h->kernels;
    int rc = tm_check_shape(s, inp, "input", err);
    if (rc != MPSL_OK) {
        return rc;
    }
    int64_t B = inp->shape[0], N = B * s->T, D = s->D, Hd = s->Hd;
    if ((rc = tm_reserve(s, B, err)) != MPSL_OK) {
        return rc;
    }
    float *o = out->data;                          // (B,T,D)
    if (o != inp->data) {
        memcpy(o, inp->data, (size_t)(N * D) * sizeof(float));
    }
    for (int64_t i = 0; i < s->depth; i++) {
        const tm_block *bk = &s->blocks[i];
        float *x = s->x + i * N * D;               // (N,D)
        float *pre = s->pre + i * N * Hd;          // (N,Hd)
        float *act = s->act + i * N * Hd;          // (N,Hd)
        memcpy(x, o, (size_t)(N * D) * sizeof(float));
        k->linear_forward(pre, x, w->param + bk->fc1_w, w->param + bk->fc1_b, N, D, Hd);
        k->relu_forward(act, pre, N * Hd);
        // o = x + fc2(act): fc2 into scratch, then the residual add
        k->linear_forward(s->dtmp, act, w->param + bk->fc2_w, w->param + bk->fc2_b, N, Hd, D);
        for (int64_t j = 0; j < N * D; j++) {
            o[j] += s->dtmp[j];
        }
    }
    out->dtype = MPSL_F32;
    out->ndim = 3;
    out->shape[0] = B, out->shape[1] = s->T, out->shape[2] = D;
    s->saved_B = B;
    return MPSL_OK;
}

static int tm_backward(void *state, const mpsl_weights *w, const mpsl_tensor *dout,
                       mpsl_tensor *din, mpsl_error *err)
{
    tm_state *s = state;
    const mpsl_kernels *k = s->h->kernels;
    int rc = tm_check_shape(s, dout, "dout", err);
    if (rc != MPSL_OK) {
        return rc;
    }
    int64_t B = dout->shape[0], N = B * s->T, D = s->D, Hd = s->Hd;
    if (B != s->saved_B) {
        s->h->error_set(err, "token_mlp: backward for a batch of %lld after a forward of %lld",
                        (long long)B, (long long)s->saved_B);
        return MPSL_ERR_INVALID;
    }
    float *dinp = din && din->data ? din->data : NULL; // (B,T,D)
    // the earliest block whose gradients anyone needs: below it nothing is computed
    int64_t stop = s->depth;
    for (int64_t i = 0; i < s->depth && stop == s->depth; i++) {
        if (s->blocks[i].trainable && w->grad) {
            stop = i;
        }
    }
    if (dinp) {
        stop = 0;
    }
    float *dx = s->dx;                             // (N,D): gradient w.r.t. the running x
    memcpy(dx, dout->data, (size_t)(N * D) * sizeof(float));
    for (int64_t i = s->depth - 1; i >= stop; i--) {
        const tm_block *bk = &s->blocks[i];
        int wg = bk->trainable && w->grad;
        float *g = w->grad;
        const float *x = s->x + i * N * D;
        // residual: dx flows straight through and also into the MLP branch
        k->linear_backward(s->dh, wg ? g + bk->fc2_w : NULL, wg ? g + bk->fc2_b : NULL, dx,
                           s->act + i * N * Hd, w->param + bk->fc2_w, N, Hd, D);
        k->relu_backward(s->dh, s->dh, s->pre + i * N * Hd, N * Hd);
        int need_dx = i > stop || dinp; // blocks below stop need no gradient
        k->linear_backward(need_dx ? s->dtmp : NULL, wg ? g + bk->fc1_w : NULL,
                           wg ? g + bk->fc1_b : NULL, s->dh, x, w->param + bk->fc1_w, N, D,
                           Hd);
        if (need_dx) {
            for (int64_t j = 0; j < N * D; j++) {
                dx[j] += s->dtmp[j];
            }
        }
    }
    if (dinp) {
        memcpy(dinp, dx, (size_t)(N * D) * sizeof(float));
        din->dtype = MPSL_F32;
        din->ndim = 3;
        din->shape[0] = B, din->shape[1] = s->T, din->shape[2] = D;
    }
    return MPSL_OK;
}

static const mpsl_module_api tm_api = {
    sizeof(mpsl_module_api), tm_create, tm_destroy, tm_output_shape, tm_forward, tm_backward,
};

MPSL_PLUGIN(MPSL_KIND_ENCODER, "token_mlp", "1.0.0",
            "residual per-token MLP blocks (no attention): a baseline encoder",
            &tm_api, tm_params, tm_spec);
