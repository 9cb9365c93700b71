/* test_torch_modules.c: each plugin alone, loaded from its .so as the host loads it, against
 * PyTorch (fixtures made in float64 by make_fixtures.py): tokenizers image_patch (P 7 tiles a
 * 28x28 image), audio_patch (AST's overlapping 16x16 patches every 10; and two channels with
 * strides 8/12 and no CLS), text (bytes vocabulary with repeated ids, pads masked, a text cut
 * to max_tokens; and pool_to_one over two sequences), the vit encoder (the small ViT's; the
 * same with trainable_blocks: 1, and with block 0 frozen by the host's w.trainable flags as
 * optimizer groups freeze it; pre_norm without final norm and qkv bias at eps 1e-5), the
 * classifier head (cls over two segments; mean pooling with fc_norm; the small ViT's head) and
 * the retrieval head with its summed contrastive loss (raw dot products; and cosine similarity
 * with a learnable temperature, against CLIP's form of the loss). Outputs, input gradients and every
 * parameter gradient below 1e-4 with the metric of torch_check.h; tensors frozen by
 * declaration keep an exactly zero gradient.
 *
 * For a module alone the fixtures' upstream gradient is a random dout (gradients of
 * sum(out * dout)); the encoder and classifier cases of the composed models use the
 * activations and gradients PyTorch saw inside the model (vit.out.tokens -> vit.out.encoded,
 * vit.dencoded -> vit.dtokens, ...), so each module is checked alone on its real inputs.
 *
 * Usage: test_torch_modules FIXTURE_DIR image_patch.so audio_patch.so text.so vit.so
 *        classifier.so retrieval.so */
#include "torch_check.h"

static char nbuf[4][192];
static const char *nm(int slot, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static const char *nm(int slot, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(nbuf[slot], sizeof nbuf[slot], fmt, ap);
    va_end(ap);
    return nbuf[slot];
}

/* A module alone: load the parameters "<c>.param.<label>.*", forward inp, compare with want
 * (n_out floats), backward dout, compare din (when want_din) and "<c>.grad.<label>.*". */
static void run_module(tmod *m, const st_file *f, const char *c, const char *label,
                       const mpsl_tensor *inp, const char *out_name, const char *dout_name,
                       const char *din_name)
{
    if (!m->param) {
        tmod_bind(m, NULL, NULL);
    }
    tmod_load(m, f, nm(0, "%s.param.%s", c, label));
    int64_t B = inp->shape[0], n_out = B * tmod_out_numel(m);
    if (m->lp.desc->kind == MPSL_KIND_ENCODER) {
        n_out = B * inp->shape[1] * inp->shape[2];   // encoders keep the input's T
    }
    float *out = fnew(n_out);
    mpsl_tensor o = {.data = out, .dtype = MPSL_F32};
    tmod_forward(m, inp, &o);
    CHECK(o.shape[0] == B);
    float *want = fx_getn(f, out_name, n_out);
    expect_close("out", out, want, n_out);
    float *dout = fx_getn(f, dout_name, n_out);
    mpsl_tensor d = o;
    d.data = dout;
    int64_t n_in = 1;
    for (int i = 0; i < inp->ndim; i++) {
        n_in *= inp->shape[i];
    }
    float *din = din_name ? fnew(n_in) : NULL;
    mpsl_tensor di = *inp;
    di.data = din;
    memset(m->grad, 0, (size_t)m->n * sizeof(float));
    tmod_backward(m, &d, din ? &di : NULL);
    if (din_name) {
        float *ref = fx_getn(f, din_name, n_in);
        expect_close("din", din, ref, n_in);
        free(ref);
    }
    tmod_check_grads(m, f, nm(0, "%s.grad.%s", c, label), "");
    free(out), free(want), free(dout), free(din);
}

/* ------------------------------------------------------------------ tokenizers */

static void tokenizer_case(const st_file *f, const char *c, const char *plugin,
                           const char *label, const char *yaml)
{
    case_begin("%s (%s.so)", c, plugin);
    const st_tensor_info *ti = fx_info(f, nm(1, "%s.in", c));
    tmod m;
    if (ti->ndim == 4) {
        // images and spectrograms (B,C,H,W)
        tmod_open(&m, plugin, MPSL_KIND_TOKENIZER, yaml, 3, ti->shape + 1, MPSL_F32, 0, NULL);
        float *x = fx_get(f, ti->name, NULL);
        mpsl_tensor inp = {.data = x, .dtype = MPSL_F32, .ndim = 4,
                           .shape = {ti->shape[0], ti->shape[1], ti->shape[2], ti->shape[3]}};
        run_module(&m, f, c, label, &inp, nm(2, "%s.out", c), nm(3, "%s.dout", c), NULL);
        free(x);
    } else {
        // text bytes (B,S,L): per sample (L) when S is 1, else (S,L)
        int64_t B = ti->shape[0], S = ti->shape[1], L = ti->shape[2];
        int64_t one[1] = {L}, two[2] = {S, L};
        tmod_open(&m, plugin, MPSL_KIND_TOKENIZER, yaml, S == 1 ? 1 : 2, S == 1 ? one : two,
                  MPSL_I32, 0, NULL);
        int32_t *x = fx_get_i32(f, ti->name, NULL);
        mpsl_tensor inp = {.data = x, .dtype = MPSL_I32, .ndim = S == 1 ? 2 : 3};
        inp.shape[0] = B;
        inp.shape[1] = S == 1 ? L : S;
        inp.shape[2] = S == 1 ? 0 : L;
        run_module(&m, f, c, label, &inp, nm(2, "%s.out", c), nm(3, "%s.dout", c), NULL);
        free(x);
    }
    tmod_close(&m);
}

/* ------------------------------------------------------------------ encoder */

/* The vit plugin on the tokens PyTorch fed the encoder inside model file `c`; host_freeze
 * (or NULL) freezes the tensors whose names start with it through w.trainable, as optimizer
 * groups do. */
static void encoder_case(const st_file *f, const char *c, const char *title, const char *yaml,
                         const char *host_freeze)
{
    case_begin("%s", title);
    const st_tensor_info *ti = fx_info(f, nm(1, "%s.out.tokens", c));
    int64_t B = ti->shape[0], T = ti->shape[1], D = ti->shape[2];
    tmod m;
    int64_t td[2] = {T, D};
    tmod_open(&m, "vit", MPSL_KIND_ENCODER, yaml, 2, td, MPSL_F32, 0, NULL);
    float *x = fx_get(f, ti->name, NULL);
    mpsl_tensor inp = tensor3(x, B, T, D);
    if (host_freeze) {
        tmod_bind(&m, NULL, NULL);
        tmod_freeze(&m, host_freeze);
    }
    run_module(&m, f, c, "encoder", &inp, nm(2, "%s.out.encoded", c), nm(3, "%s.dencoded", c),
               nm(1, "%s.dtokens", c));
    free(x);
    tmod_close(&m);
}

/* ------------------------------------------------------------------ heads */

static void classifier_case(const st_file *f, const char *c, const char *title, const char *in,
                            const char *out, const char *dout, const char *din,
                            const char *yaml, const mpsl_token_layout *layout, int64_t C)
{
    case_begin("%s", title);
    const st_tensor_info *ti = fx_info(f, in);
    int64_t B = ti->shape[0], T = ti->shape[1], D = ti->shape[2];
    tmod m;
    int64_t td[2] = {T, D};
    tmod_open(&m, "classifier", MPSL_KIND_HEAD, yaml, 2, td, MPSL_F32, C, layout);
    float *x = fx_get(f, in, NULL);
    mpsl_tensor inp = tensor3(x, B, T, D);
    run_module(&m, f, c, "head", &inp, out, dout, din);
    free(x);
    tmod_close(&m);
}

/* retrieval (case c, K captions): out (B, 1+K, E); the loss is the caller's: sum over
 * captions k of the contrastive loss of img = out[:, 0] and txt_k = out[:, 1+k], computed
 * with the kernel. With similarity: cosine PyTorch computed it as CLIP does, from exp(t) *
 * cos(img, txt) (make_fixtures.py checks that this is the same loss). */
static void retrieval_case(const st_file *f, const char *c, int64_t K, const char *yaml)
{
    case_begin("%s (retrieval.so)", c);
    const mpsl_kernels *k = kernels_table();
    const st_tensor_info *ti = fx_info(f, nm(0, "%s.in", c));
    int64_t B = ti->shape[0], T = ti->shape[1], D = ti->shape[2];
    mpsl_token_layout lay = {2, {{0, T - K, 1}, {T - K, K, 0}}};
    tmod m;
    int64_t td[2] = {T, D};
    tmod_open(&m, "retrieval", MPSL_KIND_HEAD, yaml, 2, td, MPSL_F32, 0, &lay);
    tmod_bind(&m, NULL, NULL);
    tmod_load(&m, f, nm(0, "%s.param.head", c));
    CHECK(m.out_ndim == 2 && m.out_shape[0] == 1 + K);
    int64_t E = m.out_shape[1], R = 1 + K;
    float *x = fx_get(f, nm(0, "%s.in", c), NULL), *out = fnew(B * R * E);
    mpsl_tensor inp = tensor3(x, B, T, D), o = {.data = out};
    tmod_forward(&m, &inp, &o);
    float *want = fx_getn(f, nm(0, "%s.out", c), B * R * E);
    expect_close("out", out, want, B * R * E);
    // loss and dout as the retrieval task computes them
    float *img = fnew(B * E), *txt = fnew(B * E), *dimg = fnew(B * E), *dtxt = fnew(B * E);
    float *dout = fnew(B * R * E);
    for (int64_t b = 0; b < B; b++) {
        memcpy(img + b * E, out + b * R * E, (size_t)E * sizeof(float));
    }
    double loss = 0.0;
    for (int64_t j = 0; j < K; j++) {
        for (int64_t b = 0; b < B; b++) {
            memcpy(txt + b * E, out + (b * R + 1 + j) * E, (size_t)E * sizeof(float));
        }
        loss += k->contrastive_loss(dimg, dtxt, img, txt, B, E, 1.0f);
        for (int64_t b = 0; b < B; b++) {
            for (int64_t e = 0; e < E; e++) {
                dout[b * R * E + e] += dimg[b * E + e];
                dout[(b * R + 1 + j) * E + e] = dtxt[b * E + e];
            }
        }
    }
    float *rl = fx_getn(f, nm(0, "%s.loss", c), 1);
    expect_scalar("loss", loss, rl[0]);
    float *rd = fx_getn(f, nm(0, "%s.dout", c), B * R * E);
    expect_close("dout", dout, rd, B * R * E);
    float *din = fnew(B * T * D);
    mpsl_tensor d = {.data = dout, .dtype = MPSL_F32, .ndim = 3, .shape = {B, R, E}};
    mpsl_tensor di = tensor3(din, B, T, D);
    tmod_backward(&m, &d, &di);
    float *rdin = fx_getn(f, nm(0, "%s.din", c), B * T * D);
    expect_close("din", din, rdin, B * T * D);
    tmod_check_grads(&m, f, nm(0, "%s.grad.head", c), "");
    free(x), free(out), free(want), free(img), free(txt), free(dimg), free(dtxt), free(dout);
    free(rl), free(rd), free(din), free(rdin);
    tmod_close(&m);
}

int main(int argc, char **argv)
{
    torch_args(argc, argv);
    st_file *mod = fx_open("modules.safetensors");
    tokenizer_case(mod, "image_patch", "image_patch", "image",
                   "patch: 7\ndim: 24\ncls: true\npos_embed: true\n");
    tokenizer_case(mod, "audio_patch", "audio_patch", "audio",
                   "patch: 16\nstride_f: 10\nstride_t: 10\ndim: 24\ncls: true\n");
    tokenizer_case(mod, "audio_patch_2ch", "audio_patch", "audio",
                   "patch: 16\nstride_f: 8\nstride_t: 12\ndim: 8\ncls: false\n");
    tokenizer_case(mod, "text", "text", "text",
                   "vocab: bytes\nmax_tokens: 10\ndim: 16\ncls: true\n");
    tokenizer_case(mod, "text_pool", "text", "text",
                   "vocab: bytes\nmax_tokens: 8\ndim: 12\ncls: false\npool_to_one: true\n");
    mpsl_token_layout two = {2, {{0, 5, 1}, {5, 4, 1}}};
    classifier_case(mod, "classifier_cls", "classifier_cls (classifier.so)",
                    "classifier_cls.in", "classifier_cls.out", "classifier_cls.dout",
                    "classifier_cls.din", "pool: cls\n", &two, 5);
    classifier_case(mod, "classifier_mean_norm", "classifier_mean_norm (classifier.so)",
                    "classifier_mean_norm.in", "classifier_mean_norm.out",
                    "classifier_mean_norm.dout", "classifier_mean_norm.din",
                    "pool: mean\nnorm: true\n", &two, 5);
    retrieval_case(mod, "retrieval", 3, "norm: true\nembed_dim: 12\n");
    retrieval_case(mod, "retrieval_cosine", 2,
                   "embed_dim: 12\nsimilarity: cosine\ntemperature: learnable\n");
    st_close(mod);

    st_file *vit = fx_open("vit.safetensors");
    const char *small = "depth: 2\nheads: 4\nmlp_ratio: 4\nqkv_bias: true\nfinal_norm: true\n";
    encoder_case(vit, "vit", "vit encoder (small ViT's)", small, NULL);
    char frozen[256];
    snprintf(frozen, sizeof frozen, "%strainable_blocks: 1\n", small);
    encoder_case(vit, "vit", "vit encoder, block 0 frozen", frozen, NULL);
    encoder_case(vit, "vit", "vit encoder, block 0 frozen by host", small, "blocks.0.");
    mpsl_token_layout one = {1, {{0, 17, 1}}};
    classifier_case(vit, "vit", "classifier head (small ViT's)", "vit.out.encoded",
                    "vit.out.logits", "vit.dlogits", "vit.dencoded", "pool: cls\n", &one, 10);
    st_close(vit);

    st_file *fus = fx_open("fusion.safetensors");
    encoder_case(fus, "fusion", "vit encoder, pre_norm (fusion's)",
                 "depth: 2\nheads: 4\nmlp_ratio: 2\nqkv_bias: false\npre_norm: true\n"
                 "final_norm: false\neps: 1e-5\n", NULL);
    mpsl_token_layout fl = {2, {{0, 17, 1}, {17, 7, 1}}};
    classifier_case(fus, "fusion", "classifier head, 2 segments + fc_norm (fusion's)",
                    "fusion.out.encoded", "fusion.out.logits", "fusion.dlogits",
                    "fusion.dencoded", "pool: cls\nnorm: true\n", &fl, 7);
    st_close(fus);
    return torch_report("plugins alone vs PyTorch");
}
