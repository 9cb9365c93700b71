/* test_torch_layers.c: the kernels alone against PyTorch (fixtures/layers.safetensors, made in
 * float64 by make_fixtures.py): linear at awkward sizes (with and without bias), LayerNorm with
 * eps 1e-6 and 1e-5 on rows of very different scales, exact GELU, the attention core between
 * timm's qkv and proj at T = 1, 7, 17, 50 and D/H = 64/4, 12/3, 48/3, softmax cross-entropy,
 * the symmetric contrastive loss, token embedding with repeated ids. The kernels are called
 * through kernels_table(), the table plugins receive. Each output and gradient is compared with
 * the metric of torch_check.h (max|a-b| / max|torch| per tensor) below 1e-4; for a layer alone
 * the gradients are those of sum(out * dout) with the fixture's random dout.
 *
 * Usage: test_torch_layers FIXTURE_DIR */
#include "torch_check.h"

static const mpsl_kernels *K;
static st_file *F;

static float *get(const char *c, const char *what, int64_t *n)
{
    char name[128];
    snprintf(name, sizeof name, "%s.%s", c, what);
    return fx_get(F, name, n);
}

static const st_tensor_info *info(const char *c, const char *what)
{
    char name[128];
    snprintf(name, sizeof name, "%s.%s", c, what);
    return fx_info(F, name);
}

static void test_linear(const char *c, int bias)
{
    case_begin("%s", c);
    const st_tensor_info *xi = info(c, "x"), *wi = info(c, "w");
    int64_t N = xi->shape[0], IC = xi->shape[1], OC = wi->shape[0];
    float *x = get(c, "x", NULL), *w = get(c, "w", NULL), *b = bias ? get(c, "b", NULL) : NULL;
    float *want = get(c, "out", NULL), *dout = get(c, "dout", NULL);
    float *out = fnew(N * OC), *dx = fnew(N * IC), *dw = fnew(OC * IC), *db = fnew(OC);
    K->linear_forward(out, x, w, b, N, IC, OC);
    expect_close("out", out, want, N * OC);
    K->linear_backward(dx, dw, bias ? db : NULL, dout, x, w, N, IC, OC);
    float *r = get(c, "dx", NULL);
    expect_close("dx", dx, r, N * IC);
    free(r);
    r = get(c, "dw", NULL);
    expect_close("dw", dw, r, OC * IC);
    free(r);
    if (bias) {
        r = get(c, "db", NULL);
        expect_close("db", db, r, OC);
        free(r);
    }
    free(x), free(w), free(b), free(want), free(dout), free(out), free(dx), free(dw), free(db);
}

static void test_layernorm(const char *c, float eps)
{
    case_begin("%s", c);
    const st_tensor_info *xi = info(c, "x");
    int64_t N = xi->shape[0], C = xi->shape[1];
    float *x = get(c, "x", NULL), *w = get(c, "w", NULL), *b = get(c, "b", NULL);
    float *want = get(c, "out", NULL), *dout = get(c, "dout", NULL);
    float *out = fnew(N * C), *mean = fnew(N), *rstd = fnew(N), *dx = fnew(N * C),
          *dw = fnew(C), *db = fnew(C);
    K->layernorm_forward(out, mean, rstd, x, w, b, N, C, eps);
    expect_close("out", out, want, N * C);
    K->layernorm_backward(dx, dw, db, dout, x, w, mean, rstd, N, C);
    float *r = get(c, "dx", NULL);
    expect_close("dx", dx, r, N * C);
    free(r);
    r = get(c, "dw", NULL);
    expect_close("dw", dw, r, C);
    free(r);
    r = get(c, "db", NULL);
    expect_close("db", db, r, C);
    free(r);
    free(x), free(w), free(b), free(want), free(dout), free(out), free(mean), free(rstd);
    free(dx), free(dw), free(db);
}

static void test_gelu(void)
{
    case_begin("gelu");
    int64_t N = 0;
    float *x = get("gelu", "x", &N), *want = get("gelu", "out", NULL);
    float *dout = get("gelu", "dout", NULL), *ref = get("gelu", "dx", NULL);
    float *out = fnew(N), *dx = fnew(N);
    K->gelu_forward(out, x, N);
    expect_close("out", out, want, N);
    K->gelu_backward(dx, dout, x, N);
    expect_close("dx", dx, ref, N);
    free(x), free(want), free(dout), free(ref), free(out), free(dx);
}

static void test_attention(int64_t T, int64_t D, int64_t H)
{
    char c[64];
    snprintf(c, sizeof c, "attention_T%lld_D%lld_H%lld", (long long)T, (long long)D,
             (long long)H);
    case_begin("%s", c);
    const st_tensor_info *qi = info(c, "qkv");
    int64_t B = qi->shape[0];
    CHECK(qi->shape[1] == T && qi->shape[2] == 3 * D);
    float *qkv = get(c, "qkv", NULL), *want = get(c, "out", NULL), *dout = get(c, "dout", NULL);
    float *ref = get(c, "dqkv", NULL);
    float *out = fnew(B * T * D), *att = fnew(B * H * T * T), *dqkv = fnew(B * T * 3 * D);
    K->attention_forward(out, att, qkv, B, T, D, H);
    expect_close("out", out, want, B * T * D);
    K->attention_backward(dqkv, dout, qkv, att, B, T, D, H);
    expect_close("dqkv", dqkv, ref, B * T * 3 * D);
    // every row of the saved probabilities sums to 1
    double worst = 0.0;
    for (int64_t r = 0; r < B * H * T; r++) {
        double s = 0.0;
        for (int64_t j = 0; j < T; j++) {
            s += att[r * T + j];
        }
        worst = fabs(s - 1.0) > worst ? fabs(s - 1.0) : worst;
    }
    CHECK(worst < 1e-5);
    free(qkv), free(want), free(dout), free(ref), free(out), free(att), free(dqkv);
}

static void test_cross_entropy(void)
{
    case_begin("cross_entropy");
    const st_tensor_info *li = info("cross_entropy", "logits");
    int64_t B = li->shape[0], C = li->shape[1];
    float *logits = get("cross_entropy", "logits", NULL);
    int32_t *labels = fx_get_i32(F, "cross_entropy.labels", NULL);
    float *loss = get("cross_entropy", "loss", NULL), *ref = get("cross_entropy", "dlogits", NULL);
    float *dlogits = fnew(B * C);
    double l = K->cross_entropy(dlogits, logits, labels, B, C, 1.0f, NULL);
    expect_scalar("loss", l, loss[0]);
    expect_close("dlogits", dlogits, ref, B * C);
    free(logits), free(labels), free(loss), free(ref), free(dlogits);
}

static void test_contrastive(void)
{
    case_begin("contrastive");
    const st_tensor_info *ii = info("contrastive", "img");
    int64_t B = ii->shape[0], E = ii->shape[1];
    float *img = get("contrastive", "img", NULL), *txt = get("contrastive", "txt", NULL);
    float *loss = get("contrastive", "loss", NULL);
    float *rimg = get("contrastive", "dimg", NULL), *rtxt = get("contrastive", "dtxt", NULL);
    float *dimg = fnew(B * E), *dtxt = fnew(B * E);
    double l = K->contrastive_loss(dimg, dtxt, img, txt, B, E, 1.0f);
    expect_scalar("loss", l, loss[0]);
    expect_close("dimg", dimg, rimg, B * E);
    expect_close("dtxt", dtxt, rtxt, B * E);
    free(img), free(txt), free(loss), free(rimg), free(rtxt), free(dimg), free(dtxt);
}

static void test_embedding(void)
{
    case_begin("embedding (repeated ids)");
    const st_tensor_info *ti = info("embedding", "table");
    int64_t V = ti->shape[0], D = ti->shape[1], N = 0;
    int32_t *ids = fx_get_i32(F, "embedding.ids", &N);
    float *table = get("embedding", "table", NULL), *want = get("embedding", "out", NULL);
    float *dout = get("embedding", "dout", NULL), *ref = get("embedding", "dtable", NULL);
    float *out = fnew(N * D), *dtable = fnew(V * D);
    K->embedding_forward(out, ids, table, N, V, D);
    expect_close("out", out, want, N * D);
    K->embedding_backward(dtable, dout, ids, N, V, D);
    expect_close("dtable", dtable, ref, V * D);
    free(ids), free(table), free(want), free(dout), free(ref), free(out), free(dtable);
}

int main(int argc, char **argv)
{
    torch_args(argc, argv);
    K = kernels_table();
    F = fx_open("layers.safetensors");
    test_linear("linear", 1);
    test_linear("linear_nobias", 0);
    test_linear("linear_wide", 1);
    test_layernorm("layernorm_eps1e-6", 1e-6f);
    test_layernorm("layernorm_eps1e-5", 1e-5f);
    test_gelu();
    const int64_t Ts[] = {1, 7, 17, 50}, DH[][2] = {{64, 4}, {12, 3}, {48, 3}};
    for (size_t i = 0; i < MPSL_COUNT(Ts); i++) {
        for (size_t j = 0; j < MPSL_COUNT(DH); j++) {
            test_attention(Ts[i], DH[j][0], DH[j][1]);
        }
    }
    test_cross_entropy();
    test_contrastive();
    test_embedding();
    st_close(F);
    return torch_report("kernels vs PyTorch");
}
