/* test_vit.c: the vit encoder plugin, loaded as the host loads it. Forward against a plain
 * recomputation of timm's VisionTransformer blocks with the reference kernels; every
 * parameter gradient and the input gradient against central finite differences; frozen blocks
 * (trainable_blocks) get exactly zero gradient while the input gradient stays right; timm's
 * names, shapes and initialisations; refusals naming the config position; buffers growing
 * with the batch and token count; bitwise determinism; accumulation into the gradient.
 *
 * Usage: test_vit PATH/vit.so */
#include "module_harness.h"

/* timm's forward with the reference kernels: want (B,T,D) from x (B,T,D). */
typedef struct {
    int64_t depth, H, Hd;
    int qkv_bias, pre_norm, final_norm;
    float eps;
} vit_cfg;

static void vit_expected(float *want, const module *m, const float *x, int64_t B, int64_t T,
                         int64_t D, const vit_cfg *v)
{
    int64_t N = B * T, Hd = v->Hd;
    float *h = fnew(N * D), *ln = fnew(N * D), *qkv = fnew(N * 3 * D), *att =
        fnew(B * v->H * T * T), *a = fnew(N * D), *y = fnew(N * D), *f1 = fnew(N * Hd),
        *g = fnew(N * Hd);
    if (v->pre_norm) {
        ref_layernorm_forward(h, NULL, NULL, x, pv(m, "norm_pre.weight"), pv(m, "norm_pre.bias"),
                              N, D, v->eps);
    } else {
        memcpy(h, x, (size_t)(N * D) * sizeof(float));
    }
    for (int64_t i = 0; i < v->depth; i++) {
        char n[16][64];
        const char *what[] = {"norm1.weight", "norm1.bias", "attn.qkv.weight", "attn.qkv.bias",
                              "attn.proj.weight", "attn.proj.bias", "norm2.weight",
                              "norm2.bias", "mlp.fc1.weight", "mlp.fc1.bias",
                              "mlp.fc2.weight", "mlp.fc2.bias"};
        for (int j = 0; j < 12; j++) {
            snprintf(n[j], sizeof n[j], "blocks.%lld.%s", (long long)i, what[j]);
        }
        ref_layernorm_forward(ln, NULL, NULL, h, pv(m, n[0]), pv(m, n[1]), N, D, v->eps);
        kern_linear_forward_ref(qkv, ln, pv(m, n[2]), v->qkv_bias ? pv(m, n[3]) : NULL, N, D,
                                3 * D);
        ref_attention_forward(a, att, qkv, B, T, D, v->H);
        kern_linear_forward_ref(y, a, pv(m, n[4]), pv(m, n[5]), N, D, D);
        for (int64_t j = 0; j < N * D; j++) {
            h[j] += y[j];
        }
        ref_layernorm_forward(ln, NULL, NULL, h, pv(m, n[6]), pv(m, n[7]), N, D, v->eps);
        kern_linear_forward_ref(f1, ln, pv(m, n[8]), pv(m, n[9]), N, D, Hd);
        ref_gelu_forward(g, f1, N * Hd);
        kern_linear_forward_ref(y, g, pv(m, n[10]), pv(m, n[11]), N, Hd, D);
        for (int64_t j = 0; j < N * D; j++) {
            h[j] += y[j];
        }
    }
    if (v->final_norm) {
        ref_layernorm_forward(want, NULL, NULL, h, pv(m, "norm.weight"), pv(m, "norm.bias"), N,
                              D, v->eps);
    } else {
        memcpy(want, h, (size_t)(N * D) * sizeof(float));
    }
    free(h), free(ln), free(qkv), free(att), free(a), free(y), free(f1), free(g);
}

static int64_t td_[2];
static const int64_t *td(int64_t T, int64_t D)
{
    td_[0] = T, td_[1] = D;
    return td_;
}

/* ------------------------------------------------------------------ names and shapes */

static void test_names(void)
{
    mpsl_error err = {{0}};
    module m;
    // 2 blocks, heads 4, D 32: timm's state_dict order, shapes and initialisations
    CHECK(module_open(&m, "vit", MPSL_KIND_ENCODER, "depth: 2\nheads: 4\n", 2, td(5, 32), 0,
                      NULL, &err) == MPSL_OK);
    if (m.state) {
        const char *want[] = {"blocks.0.norm1.weight", "blocks.0.norm1.bias",
                              "blocks.0.attn.qkv.weight", "blocks.0.attn.qkv.bias",
                              "blocks.0.attn.proj.weight", "blocks.0.attn.proj.bias",
                              "blocks.0.norm2.weight", "blocks.0.norm2.bias",
                              "blocks.0.mlp.fc1.weight", "blocks.0.mlp.fc1.bias",
                              "blocks.0.mlp.fc2.weight", "blocks.0.mlp.fc2.bias"};
        const int64_t shape0[12] = {32, 32, 96, 96, 32, 32, 32, 32, 128, 128, 32, 32};
        const int64_t shape1[12] = {0, 0, 32, 0, 32, 0, 0, 0, 32, 0, 128, 0};
        const mpsl_init kind[12] = {MPSL_INIT_ONES, MPSL_INIT_ZEROS, MPSL_INIT_NORMAL,
                                    MPSL_INIT_ZEROS, MPSL_INIT_NORMAL, MPSL_INIT_ZEROS,
                                    MPSL_INIT_ONES, MPSL_INIT_ZEROS, MPSL_INIT_NORMAL,
                                    MPSL_INIT_ZEROS, MPSL_INIT_NORMAL, MPSL_INIT_ZEROS};
        CHECK(m.n_decl == 26);
        for (int i = 0; i < 24 && i < m.n_decl; i++) {
            const decl *d = &m.d[i];
            char name[96];
            snprintf(name, sizeof name, "blocks.%d.%s", i / 12, want[i % 12] + 9);
            CHECK(strcmp(d->name, name) == 0);
            CHECK(d->ndim == (shape1[i % 12] ? 2 : 1));
            CHECK(d->shape[0] == shape0[i % 12]);
            CHECK(d->ndim == 1 || d->shape[1] == shape1[i % 12]);
            CHECK(d->init == kind[i % 12]);
            CHECK(d->init != MPSL_INIT_NORMAL || fabsf(d->scale - 0.02f) < 1e-7f);
            CHECK(d->trainable);
            if (strcmp(d->name, name) != 0) {
                fprintf(stderr, "declared %s, expected %s\n", d->name, name);
            }
        }
        CHECK(m.n_decl == 26 && strcmp(m.d[24].name, "norm.weight") == 0 &&
              strcmp(m.d[25].name, "norm.bias") == 0 && m.d[24].init == MPSL_INIT_ONES);
        int64_t per_block = 4 * 32 + 96 * 32 + 96 + 32 * 32 + 32 + 128 * 32 + 128 + 32 * 128 +
                            32;
        CHECK(m.n == 2 * per_block + 64);
        int ndim = 0, cls = -1;
        int64_t shape[MPSL_MAX_DIMS] = {0};
        CHECK(m.api->output_shape(m.state, &ndim, shape, &cls) == MPSL_OK);
        CHECK(ndim == 2 && shape[0] == 5 && shape[1] == 32 && cls == 0);
    }
    module_close(&m);

    // pre_norm first, no qkv bias, no final norm, hidden = round(D * mlp_ratio)
    CHECK(module_open(&m, "vit", MPSL_KIND_ENCODER,
                      "depth: 1\nheads: 2\npre_norm: true\nfinal_norm: false\nqkv_bias: false\n"
                      "mlp_ratio: 1.3\n", 2, td(3, 24), 0, NULL, &err) == MPSL_OK);
    if (m.state) {
        CHECK(m.n_decl == 13);
        CHECK(strcmp(m.d[0].name, "norm_pre.weight") == 0 &&
              strcmp(m.d[1].name, "norm_pre.bias") == 0);
        CHECK(!find_decl(&m, "blocks.0.attn.qkv.bias") && !find_decl(&m, "norm.weight"));
        const decl *fc1 = find_decl(&m, "blocks.0.mlp.fc1.weight");
        CHECK(fc1 && fc1->shape[0] == 31 && fc1->shape[1] == 24);   // round(31.2)
    }
    module_close(&m);

    // trainable_blocks: the last N blocks; norm_pre only with all; final norm unless 0
    const struct {
        const char *yaml;
        int b0, b1, b2, pre, fin;
    } tr[] = {
        {"depth: 3\nheads: 2\npre_norm: true\n", 1, 1, 1, 1, 1},
        {"depth: 3\nheads: 2\npre_norm: true\ntrainable_blocks: 3\n", 1, 1, 1, 1, 1},
        {"depth: 3\nheads: 2\npre_norm: true\ntrainable_blocks: 2\n", 0, 1, 1, 0, 1},
        {"depth: 3\nheads: 2\npre_norm: true\ntrainable_blocks: 1\n", 0, 0, 1, 0, 1},
        {"depth: 3\nheads: 2\npre_norm: true\ntrainable_blocks: 0\n", 0, 0, 0, 0, 0},
    };
    for (size_t k = 0; k < MPSL_COUNT(tr); k++) {
        CHECK(module_open(&m, "vit", MPSL_KIND_ENCODER, tr[k].yaml, 2, td(2, 8), 0, NULL,
                          &err) == MPSL_OK);
        for (int i = 0; i < m.n_decl; i++) {
            const decl *d = &m.d[i];
            int want = strncmp(d->name, "norm_pre.", 9) == 0 ? tr[k].pre
                       : strncmp(d->name, "norm.", 5) == 0  ? tr[k].fin
                       : strncmp(d->name, "blocks.0.", 9) == 0 ? tr[k].b0
                       : strncmp(d->name, "blocks.1.", 9) == 0 ? tr[k].b1
                                                               : tr[k].b2;
            CHECK(d->trainable == want);
            if (d->trainable != want) {
                fprintf(stderr, "case %zu: %s trainable %d, expected %d\n", k, d->name,
                        d->trainable, want);
            }
        }
        module_close(&m);
    }
}

/* ------------------------------------------------------------------ refusals */

static void test_refusals(void)
{
    mpsl_error err = {{0}};
    module m;
    CHECK(module_open(&m, "vit", MPSL_KIND_ENCODER, "depth: 1\nheads: 5\n", 2, td(4, 32), 0,
                      NULL, &err) == MPSL_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "test.yaml:3:5");
    CHECK_CONTAINS(err.msg, "heads: 5");
    CHECK_CONTAINS(err.msg, "D = 32");
    module_close(&m);
    // the default 12 heads do not divide a width of 64
    CHECK(module_open(&m, "vit", MPSL_KIND_ENCODER, "", 2, td(4, 64), 0, NULL, &err) ==
          MPSL_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "heads: 12");
    module_close(&m);
    CHECK(module_open(&m, "vit", MPSL_KIND_ENCODER, "depth: 2\nheads: 2\ntrainable_blocks: 3\n",
                      2, td(4, 8), 0, NULL, &err) == MPSL_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "test.yaml:3:5");
    CHECK_CONTAINS(err.msg, "trainable_blocks: 3");
    CHECK_CONTAINS(err.msg, "depth (2)");
    module_close(&m);
    static const int64_t three_d[3] = {1, 4, 8}; /* a (C,T,D) input an encoder must refuse */
    CHECK(module_open(&m, "vit", MPSL_KIND_ENCODER, "heads: 2\n", 3, three_d, 0, NULL, &err) ==
          MPSL_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "test.yaml:3:5");
    module_close(&m);
    // the parameter table: depth >= 1, trainable_blocks >= -1, mlp_ratio > 0, no unknown keys
    CHECK(module_open(&m, "vit", MPSL_KIND_ENCODER, "depth: 0\n", 2, td(4, 8), 0, NULL, &err) !=
          MPSL_OK);
    module_close(&m);
    CHECK(module_open(&m, "vit", MPSL_KIND_ENCODER, "heads: 2\ntrainable_blocks: -2\n", 2,
                      td(4, 8), 0, NULL, &err) != MPSL_OK);
    module_close(&m);
    CHECK(module_open(&m, "vit", MPSL_KIND_ENCODER, "heads: 2\nmlp_ratio: 0\n", 2, td(4, 8), 0,
                      NULL, &err) != MPSL_OK);
    module_close(&m);
    CHECK(module_open(&m, "vit", MPSL_KIND_ENCODER, "heads: 2\nhead: 2\n", 2, td(4, 8), 0, NULL,
                      &err) != MPSL_OK);
    module_close(&m);

    // shape errors at run time: wrong width, backward without a matching forward
    CHECK(module_open(&m, "vit", MPSL_KIND_ENCODER, "depth: 1\nheads: 2\n", 2, td(3, 8), 0,
                      NULL, &err) == MPSL_OK);
    if (m.state) {
        float x[2 * 3 * 9] = {0}, y[2 * 3 * 9] = {0};
        mpsl_tensor in = {.data = x, .dtype = MPSL_F32, .ndim = 3, .shape = {2, 3, 9}};
        mpsl_tensor out = {.data = y, .dtype = MPSL_F32, .ndim = 3, .shape = {2, 3, 9}};
        CHECK(m.api->forward(m.state, &m.w, &in, &out, &err) == MPSL_ERR_INVALID);
        CHECK_CONTAINS(err.msg, "(B,T,8)");
        in.shape[2] = out.shape[2] = 8;
        CHECK(m.api->backward(m.state, &m.w, &out, NULL, &err) == MPSL_ERR_INVALID);
        CHECK(m.api->forward(m.state, &m.w, &in, &out, &err) == MPSL_OK);
        out.shape[0] = 1;
        CHECK(m.api->backward(m.state, &m.w, &out, NULL, &err) == MPSL_ERR_INVALID);
        CHECK_CONTAINS(err.msg, "after a forward of (2,3)");
    }
    module_close(&m);
}

/* ------------------------------------------------------------------ numerics */

typedef struct {
    const char *yaml;
    int64_t B, T, D;
    vit_cfg v;
    int with_din;
} vit_case;

static void run_case(const vit_case *vc, size_t k)
{
    mpsl_error err = {{0}};
    module m;
    int64_t B = vc->B, T = vc->T, D = vc->D, n_in = B * T * D;
    CHECK(module_open(&m, "vit", MPSL_KIND_ENCODER, vc->yaml, 2, td(T, D), 0, NULL, &err) ==
          MPSL_OK);
    if (!m.state) {
        fprintf(stderr, "case %zu: %s\n", k, err.msg);
        module_close(&m);
        return;
    }
    // LayerNorm weights near 1 and small linear weights keep the network well conditioned,
    // as trained ones are, so that finite differences in float32 stay accurate
    for (int i = 0; i < m.n_decl; i++) {
        decl *d = &m.d[i];
        if (d->init == MPSL_INIT_ONES) {
            fill_uniform(&rng, m.param + d->off, d->count, 0.5f, 1.5f);
        } else if (d->ndim == 2) {
            float s = 1.0f / sqrtf((float)d->shape[1]);
            fill_uniform(&rng, m.param + d->off, d->count, -s, s);
        } else {
            fill_uniform(&rng, m.param + d->off, d->count, -0.2f, 0.2f);
        }
    }
    int64_t in_shape[3] = {B, T, D};
    float *x = fnew(n_in), *x_keep = fnew(n_in), *din = fnew(n_in), *want = fnew(n_in);
    fill_uniform(&rng, x, n_in, -1, 1);
    memcpy(x_keep, x, (size_t)n_in * sizeof(float));
    fill_uniform(&rng, din, n_in, -9, 9);   // must be overwritten

    // a smaller batch with fewer tokens first: buffers must grow for the real one
    {
        int64_t small[3] = {1, T > 1 ? T - 1 : 1, D};
        fd_ctx c1;
        CHECK(fd_setup(&c1, &m, x, 3, small, NULL) == MPSL_OK);
        fd_free(&c1);
    }
    fd_ctx c;
    CHECK(fd_setup(&c, &m, x, 3, in_shape, vc->with_din ? din : NULL) == MPSL_OK);
    CHECK(memcmp(x, x_keep, (size_t)n_in * sizeof(float)) == 0);   // input untouched
    vit_expected(want, &m, x, B, T, D, &vc->v);
    CHECK_ARRAYS("vit forward", c.out, want, n_in, 1e-4, 1e-4);

    check_param_grads(&c, 1e-2f, 2e-2, 2e-3, 60);
    if (vc->with_din) {
        check_fd_(__FILE__, __LINE__, "vit input", module_loss, &c, x, din, n_in, 1e-2f, 2e-2,
                  2e-3, 200);
    }
    // backward accumulates: a second backward doubles every gradient
    module_loss(&c);
    float *once = fnew(m.n);
    CHECK(fd_backward(&c, NULL, 0) == MPSL_OK);
    memcpy(once, m.grad, (size_t)m.n * sizeof(float));
    CHECK(fd_backward(&c, NULL, 1) == MPSL_OK);
    int doubled = 1;
    for (int64_t j = 0; j < m.n; j++) {
        doubled &= fabsf(m.grad[j] - 2 * once[j]) <= 1e-5f * fabsf(once[j]) + 1e-12f;
    }
    CHECK(doubled);
    free(once), free(x), free(x_keep), free(din), free(want);
    fd_free(&c);
    module_close(&m);
}

static void test_numerics(void)
{
    const vit_cfg base = {2, 2, 64, 1, 0, 1, 1e-6f};
    vit_case cases[] = {
        {"depth: 2\nheads: 2\n", 2, 5, 16, base, 1},
        {"depth: 2\nheads: 4\npre_norm: true\nfinal_norm: false\n", 2, 17, 32,
         {2, 4, 128, 1, 1, 0, 1e-6f}, 1},
        {"depth: 2\nheads: 2\nqkv_bias: false\nmlp_ratio: 2\n", 3, 1, 16,
         {2, 2, 32, 0, 0, 1, 1e-6f}, 1},
        {"depth: 1\nheads: 3\neps: 1e-5\n", 1, 17, 48, {1, 3, 192, 1, 0, 1, 1e-5f}, 1},
        // frozen blocks: zero gradient, and the input gradient still flows through them
        {"depth: 2\nheads: 4\ntrainable_blocks: 1\npre_norm: true\n", 2, 5, 32,
         {2, 4, 128, 1, 1, 1, 1e-6f}, 1},
        {"depth: 2\nheads: 4\ntrainable_blocks: 1\npre_norm: true\n", 2, 5, 32,
         {2, 4, 128, 1, 1, 1, 1e-6f}, 0},
        {"depth: 2\nheads: 2\ntrainable_blocks: 0\n", 2, 5, 16, base, 1},
        {"depth: 2\nheads: 2\ntrainable_blocks: 0\nfinal_norm: false\n", 2, 5, 16,
         {2, 2, 64, 1, 0, 0, 1e-6f}, 0},
        // everything trained, no input gradient: norm_pre still needs the stream's gradient
        {"depth: 2\nheads: 2\npre_norm: true\n", 2, 5, 16, {2, 2, 64, 1, 1, 1, 1e-6f}, 0},
    };
    for (size_t k = 0; k < MPSL_COUNT(cases); k++) {
        run_case(&cases[k], k);
    }
}

/* ------------------------------------------------------------------ batches, determinism */

static void test_batches_and_determinism(void)
{
    mpsl_error err = {{0}};
    module a, b;
    const char *yaml = "depth: 2\nheads: 2\npre_norm: true\n";
    const vit_cfg v = {2, 2, 64, 1, 1, 1, 1e-6f};
    int64_t D = 16;
    CHECK(module_open(&a, "vit", MPSL_KIND_ENCODER, yaml, 2, td(5, D), 0, NULL, &err) ==
          MPSL_OK);
    CHECK(module_open(&b, "vit", MPSL_KIND_ENCODER, yaml, 2, td(5, D), 0, NULL, &err) ==
          MPSL_OK);
    if (!a.state || !b.state) {
        module_close(&a), module_close(&b);
        return;
    }
    memcpy(b.param, a.param, (size_t)a.n * sizeof(float));
    // growing and shrinking (B,T): each forward matches the reference and backward works
    const int64_t shapes[][2] = {{1, 5}, {4, 5}, {2, 9}, {3, 1}, {1, 12}, {2, 5}};
    for (size_t k = 0; k < MPSL_COUNT(shapes); k++) {
        int64_t B = shapes[k][0], T = shapes[k][1], n = B * T * D;
        int64_t in_shape[3] = {B, T, D};
        float *x = fnew(n), *din = fnew(n), *want = fnew(n);
        fill_uniform(&rng, x, n, -1, 1);
        fd_ctx c;
        CHECK(fd_setup(&c, &a, x, 3, in_shape, din) == MPSL_OK);
        vit_expected(want, &a, x, B, T, D, &v);
        CHECK_ARRAYS("vit forward after a batch change", c.out, want, n, 1e-4, 1e-4);
        // the same input twice, and through a second instance: bitwise equal
        float *out1 = fnew(n), *grad1 = fnew(a.n), *din1 = fnew(n);
        memcpy(out1, c.out, (size_t)n * sizeof(float));
        memcpy(grad1, a.grad, (size_t)a.n * sizeof(float));
        memcpy(din1, din, (size_t)n * sizeof(float));
        module_loss(&c);
        CHECK(memcmp(out1, c.out, (size_t)n * sizeof(float)) == 0);
        CHECK(fd_backward(&c, din, 0) == MPSL_OK);
        CHECK(memcmp(grad1, a.grad, (size_t)a.n * sizeof(float)) == 0);
        CHECK(memcmp(din1, din, (size_t)n * sizeof(float)) == 0);
        c.m = &b;
        module_loss(&c);
        CHECK(memcmp(out1, c.out, (size_t)n * sizeof(float)) == 0);
        CHECK(fd_backward(&c, din, 0) == MPSL_OK);
        CHECK(memcmp(grad1, b.grad, (size_t)a.n * sizeof(float)) == 0);
        CHECK(memcmp(din1, din, (size_t)n * sizeof(float)) == 0);
        free(out1), free(grad1), free(din1), free(x), free(din), free(want);
        fd_free(&c);
    }
    // no gradient buffer at all (evaluation): backward with only din works
    {
        int64_t in_shape[3] = {2, 5, D}, n = 2 * 5 * D;
        float *x = fnew(n), *din = fnew(n), *din2 = fnew(n);
        fill_uniform(&rng, x, n, -1, 1);
        fd_ctx c;
        CHECK(fd_setup(&c, &a, x, 3, in_shape, din) == MPSL_OK);
        a.w.grad = NULL;
        CHECK(fd_backward(&c, din2, 1) == MPSL_OK);
        CHECK(memcmp(din, din2, (size_t)n * sizeof(float)) == 0);
        a.w.grad = a.grad;
        free(x), free(din), free(din2);
        fd_free(&c);
    }
    module_close(&a);
    module_close(&b);
}

/* ------------------------------------------------------------------ host freezing */

/* w->trainable (the host's per-float mask, e.g. optimizer groups): tensors whose entries are
 * all frozen get no gradient; the others get exactly the gradient they get without a mask,
 * also when the mask freezes block 0 but trains norm_pre below it. */
static void test_host_mask(void)
{
    mpsl_error err = {{0}};
    module m;
    CHECK(module_open(&m, "vit", MPSL_KIND_ENCODER, "depth: 2\nheads: 2\npre_norm: true\n", 2,
                      td(5, 16), 0, NULL, &err) == MPSL_OK);
    if (!m.state) {
        module_close(&m);
        return;
    }
    int64_t in_shape[3] = {2, 5, 16}, n = 2 * 5 * 16;
    float *x = fnew(n), *full = fnew(m.n);
    fill_uniform(&rng, x, n, -1, 1);
    fd_ctx c;
    CHECK(fd_setup(&c, &m, x, 3, in_shape, NULL) == MPSL_OK);
    memcpy(full, m.grad, (size_t)m.n * sizeof(float));
    uint8_t *mask = malloc((size_t)m.n);
    memset(mask, 1, (size_t)m.n);
    for (int i = 0; i < m.n_decl; i++) {
        const decl *d = &m.d[i];
        if (strncmp(d->name, "blocks.0.", 9) == 0 || strcmp(d->name, "norm.bias") == 0) {
            memset(mask + d->off, 0, (size_t)d->count);
        }
    }
    m.w.trainable = mask;
    CHECK(fd_backward(&c, NULL, 0) == MPSL_OK);
    for (int i = 0; i < m.n_decl; i++) {
        const decl *d = &m.d[i];
        int frozen = !mask[d->off];
        int ok = 1;
        for (int64_t j = 0; j < d->count; j++) {
            ok &= m.grad[d->off + j] == (frozen ? 0.0f : full[d->off + j]);
        }
        CHECK(ok);
        if (!ok) {
            fprintf(stderr, "host mask: %s (frozen %d) has a wrong gradient\n", d->name, frozen);
        }
    }
    CHECK(!all_zero(m.grad + find_decl(&m, "norm_pre.weight")->off, 16));
    // everything frozen: nothing to do, nothing written
    memset(mask, 0, (size_t)m.n);
    CHECK(fd_backward(&c, NULL, 0) == MPSL_OK);
    CHECK(all_zero(m.grad, m.n));
    m.w.trainable = NULL;
    free(mask), free(x), free(full);
    fd_free(&c);
    module_close(&m);
}

int main(int argc, char **argv)
{
    g_argc = argc;
    g_argv = argv;
    mpsl_rng_seed(&rng, 7);
    test_names();
    test_refusals();
    test_numerics();
    test_batches_and_determinism();
    test_host_mask();
    return check_exit();
}
