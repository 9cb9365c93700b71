/* test_heads.c: the classifier head (pool, fc_norm, segments) and the retrieval head, loaded
 * as the host loads them. Forwards against plain recomputations, every gradient and the input
 * gradient against central finite differences (the retrieval head through the summed
 * per-caption contrastive loss), input gradients exactly zero on tokens nobody pooled, timm's
 * names, refusals naming the config position.
 *
 * Usage: test_heads PATH/classifier.so PATH/retrieval.so */
#include "module_harness.h"

static int64_t td_[2];
static const int64_t *td(int64_t T, int64_t D)
{
    td_[0] = T, td_[1] = D;
    return td_;
}

/* ------------------------------------------------------------------ classifier */

typedef struct {
    const char *yaml;
    const mpsl_token_layout *layout;
    int64_t B, T, D, C;
    int mean, norm;
    unsigned pick;   // bit i: segment i pooled
} cl_case;

static void classifier_case(const cl_case *cc, size_t k)
{
    mpsl_error err = {{0}};
    module m;
    int64_t B = cc->B, T = cc->T, D = cc->D, C = cc->C;
    CHECK(module_open(&m, "classifier", MPSL_KIND_HEAD, cc->yaml, 2, td(T, D), C, cc->layout,
                      &err) == MPSL_OK);
    if (!m.state) {
        fprintf(stderr, "case %zu: %s\n", k, err.msg);
        module_close(&m);
        return;
    }
    // names: fc_norm before head, as timm's state_dict
    CHECK(m.n_decl == 2 + 2 * cc->norm);
    if (cc->norm) {
        CHECK(strcmp(m.d[0].name, "fc_norm.weight") == 0 && m.d[0].shape[0] == D &&
              m.d[0].init == MPSL_INIT_ONES && m.d[0].trainable);
        CHECK(strcmp(m.d[1].name, "fc_norm.bias") == 0 && m.d[1].shape[0] == D &&
              m.d[1].init == MPSL_INIT_ZEROS);
        fill_uniform(&rng, m.param + m.d[0].off, D, 0.5f, 1.5f);
    }
    const decl *w = find_decl(&m, "head.weight"), *bias = find_decl(&m, "head.bias");
    CHECK(w && w->ndim == 2 && w->shape[0] == C && w->shape[1] == D && bias &&
          bias->shape[0] == C);

    int64_t in_shape[3] = {B, T, D}, n_in = B * T * D;
    float *x = fnew(n_in), *din = fnew(n_in);
    fill_uniform(&rng, x, n_in, -1, 1);
    fill_uniform(&rng, din, n_in, -9, 9);
    fd_ctx c;
    CHECK(fd_setup(&c, &m, x, 3, in_shape, din) == MPSL_OK);

    // expected: average over the picked segments of (CLS | mean of non-CLS), fc_norm, linear
    mpsl_token_layout one = {1, {{0, T, 0}}};
    const mpsl_token_layout *lay = cc->layout ? cc->layout : &one;
    int n_pick = 0;
    for (int s = 0; s < lay->n_segments; s++) {
        n_pick += (cc->pick >> s) & 1;
    }
    float *pooled = fnew(B * D), *normed = fnew(B * D), *want = fnew(B * C);
    int used[64] = {0};
    for (int s = 0; s < lay->n_segments; s++) {
        if (!((cc->pick >> s) & 1)) {
            continue;
        }
        int64_t t0 = lay->segment[s].offset, len = lay->segment[s].length;
        if (cc->mean) {
            t0 += lay->segment[s].has_cls;
            len -= lay->segment[s].has_cls;
        } else {
            len = 1;
        }
        for (int64_t t = t0; t < t0 + len; t++) {
            used[t] = 1;
            for (int64_t b = 0; b < B; b++) {
                for (int64_t d = 0; d < D; d++) {
                    pooled[b * D + d] += x[(b * T + t) * D + d] / (float)(len * n_pick);
                }
            }
        }
    }
    if (cc->norm) {
        ref_layernorm_forward(normed, NULL, NULL, pooled, pv(&m, "fc_norm.weight"),
                              pv(&m, "fc_norm.bias"), B, D, 1e-6f);
    } else {
        memcpy(normed, pooled, (size_t)(B * D) * sizeof(float));
    }
    kern_linear_forward_ref(want, normed, pv(&m, "head.weight"), pv(&m, "head.bias"), B, D, C);
    CHECK_ARRAYS("classifier forward", c.out, want, B * C, 1e-5, 1e-5);
    check_param_grads(&c, 1e-2f, 1e-2, 1e-3, 200);
    check_fd_(__FILE__, __LINE__, "classifier input", module_loss, &c, x, din, n_in, 1e-2f,
              1e-2, 1e-3, 100000);
    int zero_elsewhere = 1;
    for (int64_t b = 0; b < B; b++) {
        for (int64_t t = 0; t < T; t++) {
            for (int64_t d = 0; d < D && !used[t]; d++) {
                zero_elsewhere &= din[(b * T + t) * D + d] == 0.0f;
            }
        }
    }
    CHECK(zero_elsewhere);
    // without a gradient buffer (evaluation) the input gradient is the same
    float *din2 = fnew(n_in);
    module_loss(&c);
    m.w.grad = NULL;
    CHECK(fd_backward(&c, din2, 1) == MPSL_OK);
    CHECK(memcmp(din, din2, (size_t)n_in * sizeof(float)) == 0);
    m.w.grad = m.grad;
    free(x), free(din), free(din2), free(pooled), free(normed), free(want);
    fd_free(&c);
    module_close(&m);
}

static void test_classifier(void)
{
    const mpsl_token_layout two_cls = {2, {{0, 3, 1}, {3, 4, 1}}};
    const mpsl_token_layout mixed = {2, {{0, 3, 1}, {3, 4, 0}}};
    const mpsl_token_layout three = {3, {{0, 3, 1}, {3, 2, 1}, {5, 4, 1}}};
    const mpsl_token_layout gap = {2, {{1, 2, 1}, {4, 3, 1}}};   // tokens 0 and 3 unpooled
    const cl_case cases[] = {
        {"", &two_cls, 2, 7, 4, 3, 0, 0, 3},
        {"norm: true\n", &two_cls, 3, 7, 6, 3, 0, 1, 3},
        {"norm: true\npool: mean\n", &mixed, 2, 7, 5, 4, 1, 1, 3},
        {"segments: 1\n", &two_cls, 2, 7, 4, 3, 0, 0, 2},
        {"segments: 0\n", &mixed, 2, 7, 4, 3, 0, 0, 1},   // segment 1 has no CLS: not pooled
        {"segments: ' 2 , 0'\nnorm: true\n", &three, 2, 9, 8, 5, 0, 1, 5},
        {"segments: 0,1,2\npool: mean\n", &three, 2, 9, 3, 2, 1, 0, 7},
        {"pool: cls\nnorm: true\n", &gap, 2, 7, 4, 4, 0, 1, 3},
        {"pool: mean\nnorm: true\n", NULL, 2, 5, 4, 2, 1, 1, 1},
    };
    for (size_t k = 0; k < MPSL_COUNT(cases); k++) {
        classifier_case(&cases[k], k);
    }

    // eps reaches the LayerNorm: with a tiny spread, 1e-6 and 1e-1 differ
    mpsl_error err = {{0}};
    module m;
    for (int e = 0; e < 2; e++) {
        CHECK(module_open(&m, "classifier", MPSL_KIND_HEAD,
                          e ? "norm: true\neps: 0.1\n" : "norm: true\n", 2, td(7, 4), 2,
                          &two_cls, &err) == MPSL_OK);
        if (m.state) {
            float x[7 * 4], y[2], want[2], pooled[4], normed[4];
            for (int i = 0; i < 28; i++) {
                x[i] = 0.01f * (float)(i % 5);
            }
            for (int d = 0; d < 4; d++) {
                pooled[d] = 0.5f * (x[d] + x[12 + d]);
            }
            ref_layernorm_forward(normed, NULL, NULL, pooled, pv(&m, "fc_norm.weight"),
                                  pv(&m, "fc_norm.bias"), 1, 4, e ? 0.1f : 1e-6f);
            kern_linear_forward_ref(want, normed, pv(&m, "head.weight"), pv(&m, "head.bias"),
                                    1, 4, 2);
            mpsl_tensor in = {.data = x, .dtype = MPSL_F32, .ndim = 3, .shape = {1, 7, 4}};
            mpsl_tensor out = {.data = y, .dtype = MPSL_F32, .ndim = 2, .shape = {1, 2}};
            CHECK(m.api->forward(m.state, &m.w, &in, &out, &err) == MPSL_OK);
            CHECK_ARRAYS("classifier eps", y, want, 2, 1e-4, 1e-5);
        }
        module_close(&m);
    }

    // refusals name the position, the value and the range
    const struct {
        const char *yaml;
        const mpsl_token_layout *layout;
        const char *needle[3];
    } bad[] = {
        {"segments: 2\n", &two_cls, {"test.yaml:3:5", "index 2 is out of range", "0..1"}},
        {"segments: 0,0\n", &two_cls, {"test.yaml:3:5", "listed twice", "segments"}},
        {"segments: first\n", &two_cls, {"test.yaml:3:5", "'first'", "0,1"}},
        {"segments: 0;1\n", &two_cls, {"test.yaml:3:5", "';'", "segments"}},
        {"segments: 0,\n", &two_cls, {"test.yaml:3:5", "segments", "'0,'"}},
        {"segments: 1\n", &mixed, {"test.yaml:3:5", "segment 1", "pool: mean"}},
        {"segments: -1\n", &two_cls, {"test.yaml:3:5", "segments", "'-1'"}},
    };
    for (size_t k = 0; k < MPSL_COUNT(bad); k++) {
        CHECK(module_open(&m, "classifier", MPSL_KIND_HEAD, bad[k].yaml, 2, td(7, 4), 3,
                          bad[k].layout, &err) == MPSL_ERR_INVALID);
        for (int j = 0; j < 3; j++) {
            CHECK_CONTAINS(err.msg, bad[k].needle[j]);
        }
        module_close(&m);
    }
    CHECK(module_open(&m, "classifier", MPSL_KIND_HEAD, "norm: maybe\n", 2, td(7, 4), 3,
                      &two_cls, &err) != MPSL_OK);
    module_close(&m);
}

/* ------------------------------------------------------------------ retrieval */

/* sum over caption k of the contrastive loss between images out[:,0] and captions out[:,1+k];
 * the value in double from the reference, the gradient from the host's kernel. */
static double retrieval_objective(const fd_ctx *c, const float *out, float *dout)
{
    int64_t B = c->out_shape[0], K = c->out_shape[1] - 1, E = c->out_shape[2];
    float *img = fnew(B * E), *txt = fnew(B * E), *dimg = fnew(B * E), *dtxt = fnew(B * E);
    double loss = 0;
    if (dout) {
        memset(dout, 0, (size_t)(B * (1 + K) * E) * sizeof(float));
    }
    for (int64_t k = 0; k < K; k++) {
        for (int64_t b = 0; b < B; b++) {
            memcpy(img + b * E, out + b * (1 + K) * E, (size_t)E * sizeof(float));
            memcpy(txt + b * E, out + (b * (1 + K) + 1 + k) * E, (size_t)E * sizeof(float));
        }
        loss += ref_contrastive_loss(NULL, NULL, img, txt, B, E, 1.0f);
        if (dout) {
            harness_host()->kernels->contrastive_loss(dimg, dtxt, img, txt, B, E, 1.0f);
            for (int64_t b = 0; b < B; b++) {
                for (int64_t e = 0; e < E; e++) {
                    dout[b * (1 + K) * E + e] += dimg[b * E + e];
                    dout[(b * (1 + K) + 1 + k) * E + e] = dtxt[b * E + e];
                }
            }
        }
    }
    free(img), free(txt), free(dimg), free(dtxt);
    return loss;
}

/* norm: fc_norm declared; cosine: rows L2-normalised times sqrt(logit scale), which is
 * exp(t) of a declared head.logit_scale set to t (clamped at 100) when t is not NAN, else
 * `fixed`. */
static void retrieval_case_cos(const char *yaml, const mpsl_token_layout *lay, int64_t B,
                               int64_t T, int64_t D, int64_t E, int norm, int cosine, float t_log,
                               float fixed)
{
    mpsl_error err = {{0}};
    module m;
    CHECK(module_open(&m, "retrieval", MPSL_KIND_HEAD, yaml, 2, td(T, D), 0, lay, &err) ==
          MPSL_OK);
    if (!m.state) {
        fprintf(stderr, "retrieval '%s': %s\n", yaml, err.msg);
        module_close(&m);
        return;
    }
    int64_t K = lay->segment[1].length;
    int ndim = 0, cls = -1;
    int64_t shape[MPSL_MAX_DIMS] = {0};
    CHECK(m.api->output_shape(m.state, &ndim, shape, &cls) == MPSL_OK);
    CHECK(ndim == 2 && shape[0] == 1 + K && shape[1] == E && cls == 0);
    const char *names[] = {"fc_norm.weight", "fc_norm.bias", "head.img.weight",
                           "head.img.bias", "head.txt.weight", "head.txt.bias"};
    int learn = cosine && !isnan(t_log);
    CHECK(m.n_decl == 4 + 2 * norm + learn);
    if (learn) {   // declared last, initialised to ln(1/init_temperature) by the host
        const decl *ls = &m.d[m.n_decl - 1];
        CHECK(strcmp(ls->name, "head.logit_scale") == 0 && ls->trainable && ls->count == 1);
        CHECK(ls->init == MPSL_INIT_CONSTANT);
        m.param[ls->off] = t_log;
    }
    for (int i = 0; i < m.n_decl - learn; i++) {
        const char *want = names[i + 2 * !norm];
        CHECK(strcmp(m.d[i].name, want) == 0);
        CHECK(m.d[i].trainable);
        int64_t s0 = strstr(want, "fc_norm") ? D : E;
        CHECK(m.d[i].shape[0] == s0);
        CHECK(m.d[i].ndim == 1 || m.d[i].shape[1] == D);
    }
    if (norm) {
        fill_uniform(&rng, m.param + m.d[0].off, D, 0.5f, 1.5f);
    }

    int64_t in_shape[3] = {B, T, D}, n_in = B * T * D, R = B * (1 + K);
    float *x = fnew(n_in), *din = fnew(n_in);
    fill_uniform(&rng, x, n_in, -1, 1);
    fill_uniform(&rng, din, n_in, -9, 9);
    fd_ctx c;
    CHECK(fd_setup_obj(&c, &m, x, 3, in_shape, din, retrieval_objective) == MPSL_OK);

    // expected: per sample, the image CLS and each caption token, fc_norm, their own linear
    float *feat = fnew(R * D), *normed = fnew(R * D), *want = fnew(R * E);
    for (int64_t b = 0; b < B; b++) {
        for (int64_t r = 0; r <= K; r++) {
            int64_t t = r == 0 ? lay->segment[0].offset : lay->segment[1].offset + r - 1;
            memcpy(feat + (b * (1 + K) + r) * D, x + (b * T + t) * D,
                   (size_t)D * sizeof(float));
        }
    }
    if (norm) {
        ref_layernorm_forward(normed, NULL, NULL, feat, pv(&m, "fc_norm.weight"),
                              pv(&m, "fc_norm.bias"), R, D, 1e-6f);
    } else {
        memcpy(normed, feat, (size_t)(R * D) * sizeof(float));
    }
    for (int64_t row = 0; row < R; row++) {
        int img = row % (1 + K) == 0;
        kern_linear_forward_ref(want + row * E, normed + row * D,
                                pv(&m, img ? "head.img.weight" : "head.txt.weight"),
                                pv(&m, img ? "head.img.bias" : "head.txt.bias"), 1, D, E);
        if (cosine) {
            double ss = 0.0, scale = learn ? fmin(exp((double)t_log), 100.0) : fixed;
            for (int64_t e = 0; e < E; e++) {
                ss += (double)want[row * E + e] * want[row * E + e];
            }
            for (int64_t e = 0; e < E; e++) {
                want[row * E + e] = (float)(want[row * E + e] * sqrt(scale / ss));
            }
        }
    }
    CHECK_ARRAYS("retrieval forward", c.out, want, R * E, 1e-5, 1e-5);
    check_param_grads(&c, 1e-2f, 1e-2, 1e-3, 200);
    if (learn && t_log > logf(100.0f)) {   // clamped: the logit scale gets no gradient
        CHECK(m.grad[m.d[m.n_decl - 1].off] == 0.0f);
    } else if (learn) {
        CHECK(m.grad[m.d[m.n_decl - 1].off] != 0.0f);
    }
    check_fd_(__FILE__, __LINE__, "retrieval input", module_loss, &c, x, din, n_in, 1e-2f, 1e-2,
              1e-3, 100000);
    // tokens other than the image CLS and the captions get exactly zero gradient
    int zero_elsewhere = 1;
    for (int64_t b = 0; b < B; b++) {
        for (int64_t t = 0; t < T; t++) {
            int used = t == lay->segment[0].offset ||
                       (t >= lay->segment[1].offset && t < lay->segment[1].offset + K);
            for (int64_t d = 0; d < D && !used; d++) {
                zero_elsewhere &= din[(b * T + t) * D + d] == 0.0f;
            }
        }
    }
    CHECK(zero_elsewhere);
    // a second backward after the same forward gives the same input gradient
    float *din2 = fnew(n_in);
    module_loss(&c);   // the finite differences left a perturbed forward behind
    CHECK(fd_backward(&c, din2, 0) == MPSL_OK);
    CHECK(fd_backward(&c, din2, 0) == MPSL_OK);
    CHECK(memcmp(din, din2, (size_t)n_in * sizeof(float)) == 0);
    free(x), free(din), free(din2), free(feat), free(normed), free(want);
    fd_free(&c);
    module_close(&m);
}

static void retrieval_case(const char *yaml, const mpsl_token_layout *lay, int64_t B,
                           int64_t T, int64_t D, int64_t E, int norm)
{
    retrieval_case_cos(yaml, lay, B, T, D, E, norm, 0, NAN, 1.0f);
}

static void test_retrieval(void)
{
    // 4 image tokens (CLS first) then 3 captions, one token each
    const mpsl_token_layout lay = {2, {{0, 5, 1}, {5, 3, 0}}};
    // the paper's shape: 5 captions, early fused after the image
    const mpsl_token_layout five = {2, {{0, 3, 1}, {3, 5, 0}}};
    retrieval_case("embed_dim: 8\n", &lay, 3, 8, 16, 8, 0);
    retrieval_case("norm: true\n", &lay, 4, 8, 6, 6, 1);
    retrieval_case("norm: true\nembed_dim: 3\n", &five, 3, 8, 5, 3, 1);
    // cosine similarity: a learnable temperature (t below and above CLIP's clamp ln 100),
    // a fixed one, and none (scale 1)
    retrieval_case_cos("similarity: cosine\nembed_dim: 5\n", &lay, 4, 8, 6, 5, 0, 1, 2.0f, 0);
    retrieval_case_cos("similarity: cosine\nnorm: true\ntemperature: learnable\n", &five, 5,
                       8, 6, 6, 1, 1, 0.3f, 0);
    retrieval_case_cos("similarity: cosine\n", &lay, 3, 8, 6, 6, 0, 1, 5.0f, 0);
    retrieval_case_cos("similarity: cosine\ntemperature: fixed\ninit_temperature: 0.5\n", &lay,
                       4, 8, 6, 6, 0, 1, NAN, 2.0f);
    retrieval_case_cos("similarity: cosine\ntemperature: none\n", &lay, 4, 8, 6, 6, 0, 1, NAN,
                       1.0f);
    // batch growth: a bigger batch after a smaller one, on the same instance, is covered by
    // fd_setup's forward (B) after module_loss probes; here B=1 then B=5
    mpsl_error err = {{0}};
    module m;
    CHECK(module_open(&m, "retrieval", MPSL_KIND_HEAD, "norm: true\n", 2, td(8, 4), 0, &lay,
                      &err) == MPSL_OK);
    if (m.state) {
        for (int64_t B = 1; B <= 5; B += 4) {
            float *x = fnew(B * 8 * 4), *y = fnew(B * 4 * 4), *dy = fnew(B * 4 * 4),
                  *dx = fnew(B * 8 * 4);
            fill_uniform(&rng, x, B * 32, -1, 1);
            fill_uniform(&rng, dy, B * 16, -1, 1);
            mpsl_tensor in = {.data = x, .dtype = MPSL_F32, .ndim = 3, .shape = {B, 8, 4}};
            mpsl_tensor out = {.data = y, .dtype = MPSL_F32, .ndim = 3, .shape = {B, 4, 4}};
            mpsl_tensor dout = {.data = dy, .dtype = MPSL_F32, .ndim = 3, .shape = {B, 4, 4}};
            mpsl_tensor dinp = {.data = dx, .dtype = MPSL_F32, .ndim = 3, .shape = {B, 8, 4}};
            CHECK(m.api->forward(m.state, &m.w, &in, &out, &err) == MPSL_OK);
            CHECK(out.ndim == 3 && out.shape[0] == B && out.shape[1] == 4 && out.shape[2] == 4);
            CHECK(m.api->backward(m.state, &m.w, &dout, &dinp, &err) == MPSL_OK);
            dout.shape[1] = 3;
            CHECK(m.api->backward(m.state, &m.w, &dout, &dinp, &err) == MPSL_ERR_INVALID);
            free(x), free(y), free(dy), free(dx);
        }
    }
    module_close(&m);

    // refusals
    const mpsl_token_layout one = {1, {{0, 8, 1}}};
    const mpsl_token_layout no_cls = {2, {{0, 5, 0}, {5, 3, 0}}};
    const mpsl_token_layout txt_cls = {2, {{0, 5, 1}, {5, 3, 1}}};
    const mpsl_token_layout outside = {2, {{0, 5, 1}, {5, 4, 0}}};
    const struct {
        const mpsl_token_layout *layout;
        const char *needle;
    } bad[] = {
        {NULL, "two token segments"}, {&one, "got 1"}, {&no_cls, "segment 0 has none"},
        {&txt_cls, "without a CLS token"}, {&outside, "outside"},
    };
    for (size_t k = 0; k < MPSL_COUNT(bad); k++) {
        CHECK(module_open(&m, "retrieval", MPSL_KIND_HEAD, "", 2, td(8, 4), 0, bad[k].layout,
                          &err) == MPSL_ERR_INVALID);
        CHECK_CONTAINS(err.msg, "test.yaml:3:5");
        CHECK_CONTAINS(err.msg, bad[k].needle);
        module_close(&m);
    }
    CHECK(module_open(&m, "retrieval", MPSL_KIND_HEAD, "embed_dim: -1\n", 2, td(8, 4), 0, &lay,
                      &err) != MPSL_OK);
    module_close(&m);
    // a temperature scales cosine similarities only; init_temperature keeps exp(t) <= 100
    CHECK(module_open(&m, "retrieval", MPSL_KIND_HEAD, "temperature: learnable\n", 2,
                      td(8, 4), 0, &lay, &err) == MPSL_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "use similarity: cosine");
    module_close(&m);
    CHECK(module_open(&m, "retrieval", MPSL_KIND_HEAD,
                      "similarity: cosine\ninit_temperature: 0.001\n", 2, td(8, 4), 0, &lay,
                      &err) != MPSL_OK);
    module_close(&m);
    // the default initial t is ln(1/0.07), CLIP's
    CHECK(module_open(&m, "retrieval", MPSL_KIND_HEAD, "similarity: cosine\n", 2, td(8, 4), 0,
                      &lay, &err) == MPSL_OK);
    const decl *ls = m.state ? find_decl(&m, "head.logit_scale") : NULL;
    CHECK(ls && ls->init == MPSL_INIT_CONSTANT && fabsf(ls->scale - logf(1 / 0.07f)) < 1e-6f);
    module_close(&m);
}

/* ------------------------------------------------------------------ host freezing */

/* With w->trainable freezing the tensors whose names start with `frozen`, those get no
 * gradient and the others exactly the gradient they get without a mask. */
static void check_host_mask(const char *name, const char *yaml, const mpsl_token_layout *lay,
                            int64_t C, const char *frozen)
{
    mpsl_error err = {{0}};
    module m;
    CHECK(module_open(&m, name, MPSL_KIND_HEAD, yaml, 2, td(8, 6), C, lay, &err) == MPSL_OK);
    if (!m.state) {
        module_close(&m);
        return;
    }
    int64_t in_shape[3] = {3, 8, 6}, n = 3 * 8 * 6;
    float *x = fnew(n), *full = fnew(m.n);
    fill_uniform(&rng, x, n, -1, 1);
    fd_ctx c;
    CHECK(fd_setup(&c, &m, x, 3, in_shape, NULL) == MPSL_OK);
    memcpy(full, m.grad, (size_t)m.n * sizeof(float));
    uint8_t *mask = malloc((size_t)m.n);
    memset(mask, 1, (size_t)m.n);
    for (int i = 0; i < m.n_decl; i++) {
        if (strncmp(m.d[i].name, frozen, strlen(frozen)) == 0) {
            memset(mask + m.d[i].off, 0, (size_t)m.d[i].count);
        }
    }
    m.w.trainable = mask;
    CHECK(fd_backward(&c, NULL, 0) == MPSL_OK);
    for (int i = 0; i < m.n_decl; i++) {
        const decl *d = &m.d[i];
        int off = !mask[d->off], ok = 1;
        for (int64_t j = 0; j < d->count; j++) {
            ok &= m.grad[d->off + j] == (off ? 0.0f : full[d->off + j]);
        }
        CHECK(ok);
        if (!ok) {
            fprintf(stderr, "%s host mask: %s (frozen %d) has a wrong gradient\n", name,
                    d->name, off);
        }
    }
    m.w.trainable = NULL;
    free(mask), free(x), free(full);
    fd_free(&c);
    module_close(&m);
}

static void test_host_mask(void)
{
    const mpsl_token_layout two = {2, {{0, 5, 1}, {5, 3, 0}}};
    check_host_mask("classifier", "norm: true\nsegments: 0\n", &two, 4, "head.");
    check_host_mask("classifier", "norm: true\nsegments: 0\n", &two, 4, "fc_norm.");
    check_host_mask("retrieval", "norm: true\n", &two, 0, "head.");
    check_host_mask("retrieval", "norm: true\n", &two, 0, "head.img.");
}

int main(int argc, char **argv)
{
    g_argc = argc;
    g_argv = argv;
    mpsl_rng_seed(&rng, 11);
    test_classifier();
    test_retrieval();
    test_host_mask();
    return check_exit();
}
