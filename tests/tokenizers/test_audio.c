/* test_audio.c: the audio_patch tokenizer (AST patch embedding), loaded as the host loads it.
 * Output shape (AST's 128 mel bins x 100 frames, patch 16, stride 10 -> 12 x 9 patches),
 * timm names and shapes, forward against a direct strided (overlapping) convolution written
 * here, parameter gradients by central finite differences, frozen tensors, refusals.
 *
 * Usage: test_audio audio_patch.so */
#include "tok_harness.h"

static const char *g_plugin;

/* out (B,T,D) of AST's patch embedding computed as a convolution, straight from the input. */
static void conv_expected(float *want, const module *m, const float *x, int64_t B, int64_t C,
                          int64_t F, int64_t Tf, int64_t P, int64_t Sf, int64_t St,
                          int64_t D, int cls, int pos)
{
    int64_t nF = (F - P) / Sf + 1, nT = (Tf - P) / St + 1, T = nF * nT + cls, K = C * P * P;
    const float *w = m->param + off_of(m, "patch_embed.proj.weight");   // (D, C*P*P)
    const float *bias = m->param + off_of(m, "patch_embed.proj.bias");  // (D)
    for (int64_t b = 0; b < B; b++) {
        for (int64_t t = 0; t < T; t++) {
            for (int64_t d = 0; d < D; d++) {
                double v;
                if (cls && t == 0) {
                    v = m->param[off_of(m, "cls_token") + d];
                } else {
                    int64_t p = t - cls, fi = p / nT, ti = p % nT;   // frequency-major
                    v = bias[d];
                    for (int64_t c = 0; c < C; c++) {
                        for (int64_t py = 0; py < P; py++) {
                            for (int64_t px = 0; px < P; px++) {
                                v += (double)w[d * K + (c * P + py) * P + px] *
                                     x[((b * C + c) * F + fi * Sf + py) * Tf + ti * St + px];
                            }
                        }
                    }
                }
                if (pos) {
                    v += m->param[off_of(m, "pos_embed") + t * D + d];
                }
                want[(b * T + t) * D + d] = (float)v;
            }
        }
    }
}

static void test_defaults(void)
{
    mpsl_error err = {{0}};
    module m;
    int64_t in[4] = {1, 1, 128, 100};   // AST: 128 mel bins, here 100 frames
    CHECK(module_open(&m, g_plugin, "", MPSL_F32, 3, in + 1, &err) == MPSL_OK);
    if (!m.state) {
        fprintf(stderr, "%s\n", err.msg);
        module_close(&m);
        return;
    }
    int64_t T = 0, D = 0;
    int cls = -1;
    out_td(&m, &T, &D, &cls);
    CHECK(T == 12 * 9 + 1 && D == 768 && cls == 1);
    CHECK(m.n_decl == 4);
    const decl *w = find_decl(&m, "patch_embed.proj.weight");
    const decl *b = find_decl(&m, "patch_embed.proj.bias");
    const decl *c = find_decl(&m, "cls_token");
    const decl *p = find_decl(&m, "pos_embed");
    CHECK(w && w->ndim == 2 && w->shape[0] == 768 && w->shape[1] == 256 && w->trainable);
    CHECK(b && b->ndim == 1 && b->shape[0] == 768);
    CHECK(c && c->ndim == 3 && c->shape[0] == 1 && c->shape[1] == 1 && c->shape[2] == 768);
    CHECK(p && p->ndim == 3 && p->shape[0] == 1 && p->shape[1] == 109 && p->shape[2] == 768);
    CHECK(m.n == 768 * 256 + 768 + 768 + 109 * 768);
    if (w && b && c && p) {
        float *x = fnew(128 * 100), *want = fnew(109 * 768);
        fill_uniform(&rng, x, 128 * 100, -1, 1);
        mpsl_tensor inp = {.data = x, .dtype = MPSL_F32, .ndim = 4, .shape = {1, 1, 128, 100}};
        fd_ctx fc;
        CHECK(fd_setup(&fc, &m, &inp) == MPSL_OK);
        conv_expected(want, &m, x, 1, 1, 128, 100, 16, 10, 10, 768, 1, 1);
        CHECK_ARRAYS("audio_patch forward (defaults)", fc.out, want, 109 * 768, 1e-4, 1e-4);
        fd_free(&fc);
        free(x), free(want);
    }
    module_close(&m);
}

static void test_cases(void)
{
    mpsl_error err = {{0}};
    module m;
    const struct {
        const char *yaml;
        int64_t B, C, F, Tf, P, Sf, St, D;
        int cls, pos;
    } cases[] = {
        // overlapping in both axes, AST-like
        {"patch: 3\nstride_f: 2\nstride_t: 2\ndim: 4\n", 2, 1, 7, 9, 3, 2, 2, 4, 1, 1},
        // stride 1: every position, two channels, no CLS, no positions
        {"patch: 2\nstride_f: 1\nstride_t: 1\ndim: 3\ncls: false\npos_embed: false\n", 2, 2, 6,
         5, 2, 1, 1, 3, 0, 0},
        // stride = patch tiling the input: the non-overlapping gather path
        {"patch: 4\nstride_f: 4\nstride_t: 4\ndim: 5\npos_embed: false\n", 3, 1, 8, 8, 4, 4, 4,
         5, 1, 0},
        // different strides, leftover bins and frames ignored, as a conv does
        {"patch: 3\nstride_f: 3\nstride_t: 4\ndim: 2\ncls: false\n", 2, 1, 5, 11, 3, 3, 4, 2, 0,
         1},
        // stride larger than the patch: gaps between patches
        {"patch: 2\nstride_f: 5\nstride_t: 3\ndim: 3\n", 1, 2, 10, 10, 2, 5, 3, 3, 1, 1},
        // the patch spans all mel bins: one row of patches
        {"patch: 4\nstride_f: 2\nstride_t: 2\ndim: 2\n", 2, 1, 4, 9, 4, 2, 2, 2, 1, 1},
    };
    for (size_t k = 0; k < MPSL_COUNT(cases); k++) {
        int64_t B = cases[k].B, C = cases[k].C, F = cases[k].F, Tf = cases[k].Tf;
        int64_t in[4] = {B, C, F, Tf};
        CHECK(module_open(&m, g_plugin, cases[k].yaml, MPSL_F32, 3, in + 1, &err) == MPSL_OK);
        if (!m.state) {
            fprintf(stderr, "case %zu: %s\n", k, err.msg);
            module_close(&m);
            continue;
        }
        int64_t nF = (F - cases[k].P) / cases[k].Sf + 1, nT = (Tf - cases[k].P) / cases[k].St + 1;
        int64_t T = 0, D = 0;
        int cls = -1;
        out_td(&m, &T, &D, &cls);
        CHECK(T == nF * nT + cases[k].cls && D == cases[k].D && cls == cases[k].cls);
        CHECK(m.n_decl == 2 + cases[k].cls + cases[k].pos);

        int64_t n_in = B * C * F * Tf;
        float *x = fnew(n_in), *want = fnew(B * T * D);
        fill_uniform(&rng, x, n_in, -1, 1);
        // a batch of one first: the buffers must grow for the next one
        mpsl_tensor one = {.data = x, .dtype = MPSL_F32, .ndim = 4, .shape = {1, C, F, Tf}};
        fd_ctx c1;
        CHECK(fd_setup(&c1, &m, &one) == MPSL_OK);
        fd_free(&c1);

        mpsl_tensor inp = {.data = x, .dtype = MPSL_F32, .ndim = 4, .shape = {B, C, F, Tf}};
        fd_ctx fc;
        CHECK(fd_setup(&fc, &m, &inp) == MPSL_OK);
        conv_expected(want, &m, x, B, C, F, Tf, cases[k].P, cases[k].Sf, cases[k].St, D,
                      cases[k].cls, cases[k].pos);
        module_loss(&fc);
        CHECK_ARRAYS("audio_patch forward", fc.out, want, B * T * D, 1e-5, 1e-5);
        check_param_grads(&fc, 1e-2f, 400);

        // raw spectrograms need no gradient: a din is refused
        float *din = fnew(n_in);
        check_din_refused(&fc, din, "audio_patch cannot produce input gradients");

        // a tensor frozen by the host's mask gets no gradient; the others still do
        uint8_t *mask = malloc((size_t)m.n);
        memset(mask, 1, (size_t)m.n);
        const decl *wd = find_decl(&m, "patch_embed.proj.weight");
        memset(mask + wd->off, 0, (size_t)wd->count);
        m.w.trainable = mask;
        float *keep = fnew(m.n);
        memcpy(keep, m.grad, (size_t)m.n * sizeof(float));
        memset(m.grad, 0, (size_t)m.n * sizeof(float));
        mpsl_tensor dout = fc.out_t;
        dout.data = fc.G;
        module_loss(&fc);
        CHECK(m.api->backward(m.state, &m.w, &dout, NULL, &err) == MPSL_OK);
        int frozen_zero = 1;
        for (int64_t i = 0; i < wd->count; i++) {
            frozen_zero &= m.grad[wd->off + i] == 0.0f;
        }
        CHECK(frozen_zero);
        const decl *bd = find_decl(&m, "patch_embed.proj.bias");
        CHECK_ARRAYS("bias gradient beside a frozen weight", m.grad + bd->off, keep + bd->off,
                     bd->count, 1e-6, 1e-6);
        m.w.trainable = NULL;
        free(mask), free(keep);

        free(x), free(want), free(din);
        fd_free(&fc);
        module_close(&m);
    }
}

static void test_refusals(void)
{
    mpsl_error err = {{0}};
    module m;
    // a spectrogram smaller than one patch: the message names the place and the sizes
    int64_t small[3] = {1, 10, 100};
    CHECK(module_open(&m, g_plugin, "", MPSL_F32, 3, small, &err) == MPSL_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "test.yaml:3:5");
    CHECK_CONTAINS(err.msg, "patch");
    CHECK_CONTAINS(err.msg, "10 mel bins x 100 frames");
    module_close(&m);
    int64_t short_clip[3] = {1, 128, 15};
    CHECK(module_open(&m, g_plugin, "", MPSL_F32, 3, short_clip, &err) == MPSL_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "15 frames");
    module_close(&m);
    // exactly one patch is fine
    int64_t exact[3] = {1, 16, 16};
    CHECK(module_open(&m, g_plugin, "dim: 4\n", MPSL_F32, 3, exact, &err) == MPSL_OK);
    if (m.state) {
        int64_t T = 0, D = 0;
        out_td(&m, &T, &D, NULL);
        CHECK(T == 2 && D == 4);
    }
    module_close(&m);
    // wrong rank and dtype
    int64_t two[2] = {128, 100};
    CHECK(module_open(&m, g_plugin, "", MPSL_F32, 2, two, &err) == MPSL_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "test.yaml:3:5");
    CHECK_CONTAINS(err.msg, "(C, mel bins, frames)");
    module_close(&m);
    int64_t spec[3] = {1, 128, 100};
    CHECK(module_open(&m, g_plugin, "", MPSL_I32, 3, spec, &err) == MPSL_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "int");
    module_close(&m);
    // the parameter table refuses a zero stride
    CHECK(module_open(&m, g_plugin, "stride_t: 0\n", MPSL_F32, 3, spec, &err) != MPSL_OK);
    module_close(&m);
    // forward refuses an input of another shape than create() was given
    CHECK(module_open(&m, g_plugin, "dim: 2\n", MPSL_F32, 3, spec, &err) == MPSL_OK);
    if (m.state) {
        float *x = fnew(128 * 99), *o = fnew(109 * 2);
        mpsl_tensor inp = {.data = x, .dtype = MPSL_F32, .ndim = 4, .shape = {1, 1, 128, 99}};
        mpsl_tensor out = {.data = o, .dtype = MPSL_F32, .ndim = 3, .shape = {1, 109, 2}};
        CHECK(m.api->forward(m.state, &m.w, &inp, &out, &err) == MPSL_ERR_INVALID);
        CHECK_CONTAINS(err.msg, "audio_patch");
        free(x), free(o);
    }
    module_close(&m);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: test_audio audio_patch.so\n");
        return 2;
    }
    g_plugin = argv[1];
    mpsl_rng_seed(&rng, 7);
    test_defaults();
    test_cases();
    test_refusals();
    return check_exit();
}
