/* bench_vit.c: times one training step of a ViT encoder + classifier head on our kernels, with
 * the real plugins (vit.so, classifier.so) loaded from the build tree as the host loads them.
 * Not a test: meson builds it, bench/run.sh runs it beside bench_torch.py (the same model in
 * PyTorch) and sgemm_peak (OpenBLAS's own sgemm speed) and prints the comparison.
 *
 * THE MODEL. Random tokens x (B,T,D) ~ N(0,1) go straight into the encoder (no tokenizer: the
 * step is what an MPSL server computes on the cut-layer activations it receives), then:
 *   vit:        depth pre-norm blocks (LayerNorm eps 1e-6, qkv bias, mlp_ratio 4, exact GELU),
 *               final LayerNorm (timm's VisionTransformer blocks + norm)
 *   classifier: CLS token (token 0) -> Linear(D, C), C = 10 classes, no fc_norm
 *   loss:       mean softmax cross-entropy against random labels
 * Parameters are initialised as the host does (weights N(0, 0.02^2), LayerNorm ones/zeros,
 * biases zero) in one flat buffer, gradients in another, AdamW moments in two more.
 *
 * ONE STEP (what is timed, and what bench_torch.py does the same way):
 *   1. zero the gradient buffer                        (torch: optimizer.zero_grad())
 *   2. encoder forward, head forward, cross-entropy and its d logits
 *   3. head backward -> d encoded; encoder backward -> every parameter gradient AND d tokens
 *      (the cut-layer gradient an MPSL server returns; torch: x.requires_grad_())
 *   4. AdamW over all parameters (lr 1e-3, betas 0.9/0.999, eps 1e-8, weight decay 0.05 on
 *      every tensor; torch.optim.AdamW)
 * `warmup` untimed steps, then `steps` timed ones; median and minimum are reported.
 *
 * FLOPs per step are those the kernels count themselves (flops_set_target, convention in
 * core/kernels/kernels.h), recorded over one step; the analytical matmul FLOPs of the model
 * (3 x the forward GEMMs: forward, d input, d weight) are printed beside them. AdamW's
 * elementwise work is in neither (about 15 flops per parameter, < 0.1% here).
 *
 * MEMORY. Peak resident memory (VmHWM) after the timed steps minus the resident memory just
 * before the model is created, against the analytical size the training state needs:
 * parameters + gradients + AdamW m and v (4 x 4 bytes per parameter) + the activations the
 * encoder saves (its documented formula, vit.c) + the head's (the pooled (B,D)). Run one
 * shape per process: VmHWM never goes down.
 *
 * Usage: bench_vit [options]
 *   --shape tiny|small   tiny:  D 192, 12 blocks, 3 heads, T 197, B 16 (ViT-Ti, 224/16)
 *                        small: D 128, 4 blocks, 4 heads, T 50, B 64
 *   --B n --T n --D n --heads n --depth n --classes n   (override the shape's values)
 *   --threads n (default 2) --warmup n (2) --steps n (10 tiny, 20 small)
 *   --profile            time every kernel call and print a table per kernel (adds a
 *                        clock read per call, about 250 calls per ViT-Ti step)
 *   --bf16               the step as train.precision: bf16 runs it (linear and attention
 *                        GEMMs with bfloat16 inputs, float32 accumulation); exits 3 on a
 *                        CPU without AVX512_BF16
 *   --plugins DIR        where vit.so / classifier.so are (default: this build tree)
 * Output: a human-readable report, then "RESULT key value" lines that run.sh reads. */
#include <cblas.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/flops.h"
#include "kernels/gemm.h"
#include "kernels/kernels.h"
#include "module_harness.h"
#include "mpsl_build_config.h"
#include "plugin/loader.h"
#include "train/optim.h"
#include "util/util.h"

/* ------------------------------------------------------------------ small helpers */

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void die(const char *what, const char *msg)
{
    fprintf(stderr, "bench_vit: %s: %s\n", what, msg);
    exit(1);
}

static float *falloc(int64_t n)
{
    float *p = mpsl_alloc((size_t)n * sizeof(float));
    if (!p) {
        die("memory", "out of memory");
    }
    return p;
}

/* A /proc/self/status field in bytes ("VmRSS", "VmHWM"), or -1. */
static int64_t proc_status_bytes(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) {
        return -1;
    }
    char line[256];
    size_t kl = strlen(key);
    int64_t v = -1;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, key, kl) == 0 && line[kl] == ':') {
            v = 1024 * strtoll(line + kl + 1, NULL, 10);
            break;
        }
    }
    fclose(f);
    return v;
}

/* The path of the first mapped file whose name contains `part` (e.g. "libopenblas"). */
static void mapped_path(const char *part, char *out, size_t n)
{
    snprintf(out, n, "?");
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f) {
        return;
    }
    char line[4096];
    while (fgets(line, sizeof line, f)) {
        char *p = strchr(line, '/');
        if (p && strstr(p, part)) {
            p[strcspn(p, "\n")] = 0;
            snprintf(out, n, "%s", p);
            break;
        }
    }
    fclose(f);
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static double urand(void)
{
    rng_state ^= rng_state << 13, rng_state ^= rng_state >> 7, rng_state ^= rng_state << 17;
    return (double)(rng_state >> 11) * 0x1.0p-53;
}
static float nrand(void)
{
    double u = urand(), v = urand();
    return (float)(sqrt(-2.0 * log(u + 1e-300)) * cos(2.0 * M_PI * v));
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* ------------------------------------------------------------------ per-kernel profile */

/* With --profile, the plugins get a copy of the host whose kernel table wraps every kernel in
 * a timer: seconds and calls per kernel, over the timed steps. */
enum {
    P_LIN_F, P_LIN_B, P_LN_F, P_LN_B, P_ATT_F, P_ATT_B, P_GELU_F, P_GELU_B, P_ADD, P_CE,
    P_SEL_F, P_SEL_B, P_COUNT
};
static const char *p_name[P_COUNT] = {
    "linear_forward", "linear_backward", "layernorm_forward", "layernorm_backward",
    "attention_forward", "attention_backward", "gelu_forward", "gelu_backward", "add",
    "cross_entropy", "token_select_forward", "token_select_backward",
};
static double p_time[P_COUNT];
static int64_t p_calls[P_COUNT];
static int p_on;
static const mpsl_kernels *K;   // the real table
static mpsl_kernels K_prof;

#define PROF(id, call)                          \
    do {                                        \
        double t0_ = p_on ? now() : 0.0;        \
        call;                                   \
        if (p_on) {                             \
            p_time[id] += now() - t0_;          \
            p_calls[id]++;                      \
        }                                       \
    } while (0)

static void w_lin_f(float *out, const float *inp, const float *w, const float *b, int64_t N,
                    int64_t IC, int64_t OC)
{
    PROF(P_LIN_F, K->linear_forward(out, inp, w, b, N, IC, OC));
}
static void w_lin_b(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                    const float *w, int64_t N, int64_t IC, int64_t OC)
{
    PROF(P_LIN_B, K->linear_backward(dinp, dw, db, dout, inp, w, N, IC, OC));
}
static void w_ln_f(float *out, float *mean, float *rstd, const float *inp, const float *w,
                   const float *b, int64_t N, int64_t C, float eps)
{
    PROF(P_LN_F, K->layernorm_forward(out, mean, rstd, inp, w, b, N, C, eps));
}
static void w_ln_b(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                   const float *w, const float *mean, const float *rstd, int64_t N, int64_t C)
{
    PROF(P_LN_B, K->layernorm_backward(dinp, dw, db, dout, inp, w, mean, rstd, N, C));
}
static void w_att_f(float *out, float *att, const float *qkv, int64_t B, int64_t T, int64_t D,
                    int64_t H)
{
    PROF(P_ATT_F, K->attention_forward(out, att, qkv, B, T, D, H));
}
static void w_att_b(float *dqkv, const float *dout, const float *qkv, const float *att,
                    int64_t B, int64_t T, int64_t D, int64_t H)
{
    PROF(P_ATT_B, K->attention_backward(dqkv, dout, qkv, att, B, T, D, H));
}
static void w_gelu_f(float *out, const float *inp, int64_t N)
{
    PROF(P_GELU_F, K->gelu_forward(out, inp, N));
}
static void w_gelu_b(float *dinp, const float *dout, const float *inp, int64_t N)
{
    PROF(P_GELU_B, K->gelu_backward(dinp, dout, inp, N));
}
static void w_add(float *out, const float *a, const float *b, int64_t N)
{
    PROF(P_ADD, K->add(out, a, b, N));
}
static void w_sel_f(float *out, const float *inp, int64_t B, int64_t T, int64_t D, int64_t t)
{
    PROF(P_SEL_F, K->token_select_forward(out, inp, B, T, D, t));
}
static void w_sel_b(float *dinp, const float *dout, int64_t B, int64_t T, int64_t D, int64_t t)
{
    PROF(P_SEL_B, K->token_select_backward(dinp, dout, B, T, D, t));
}

/* ------------------------------------------------------------------ modules */

/* Loading, declare() and the buffers are tests/module_harness.h's. */
typedef mh_decl decl;
typedef mh_module module;

/* The plugin at path, created for tokens (T, D) on host; dies on any failure. */
static void module_open(module *m, const mpsl_host *host, const char *path,
                        mpsl_plugin_kind kind, const char *yaml, int64_t T, int64_t D,
                        int64_t C, const mpsl_token_layout *lay)
{
    mpsl_error err = {{0}};
    const int64_t td[2] = {T, D};
    if (mh_load(m, path, kind, yaml, "bench.yaml", &err) != MPSL_OK ||
        mh_params(m, NULL, &err) != MPSL_OK ||
        mh_create(m, host, 2, td, MPSL_F32, C, lay, "bench.yaml:1:1", &err) != MPSL_OK) {
        die(path, err.msg);
    }
}

/* The host's initialisation of a module's declared tensors. */
static void module_init_params(module *m, float *param)
{
    for (int i = 0; i < m->n_decl; i++) {
        const decl *d = &m->d[i];
        float *p = param + d->off;
        for (int64_t j = 0; j < d->count; j++) {
            switch (d->init) {
            case MPSL_INIT_ONES: p[j] = 1.0f; break;
            case MPSL_INIT_NORMAL: p[j] = d->scale * nrand(); break;
            case MPSL_INIT_UNIFORM: p[j] = d->scale * (float)(2.0 * urand() - 1.0); break;
            case MPSL_INIT_ZEROS:
            default: p[j] = 0.0f; break;
            }
        }
    }
}

/* ------------------------------------------------------------------ main */

static void usage(void)
{
    fprintf(stderr, "usage: bench_vit [--shape tiny|small] [--B n] [--T n] [--D n] [--heads n] "
            "[--depth n] [--classes n] [--threads n] [--warmup n] [--steps n] [--profile] [--bf16] "
            "[--plugins DIR]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *shape = "tiny";
    for (int i = 1; i + 1 < argc; i++) {
        if (strcmp(argv[i], "--shape") == 0) {
            shape = argv[i + 1];
        }
    }
    int64_t B, T, D, H, L, C = 10, threads = 2, warmup = 2, steps;
    if (strcmp(shape, "tiny") == 0) {
        B = 16, T = 197, D = 192, H = 3, L = 12, steps = 10;
    } else if (strcmp(shape, "small") == 0) {
        B = 64, T = 50, D = 128, H = 4, L = 4, steps = 20;
    } else {
        usage();
        return 2;
    }
    int profile = 0, bf16 = 0;
    char plugdir[4096];
    snprintf(plugdir, sizeof plugdir, "%s/plugins", MPSL_BUILD_ROOT);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has = i + 1 < argc;
        int64_t *slot = NULL;
        if (strcmp(a, "--profile") == 0) {
            profile = 1;
            continue;
        }
        if (strcmp(a, "--bf16") == 0) {
            bf16 = 1;
            continue;
        }
        if (!has) {
            usage();
        }
        if (strcmp(a, "--shape") == 0) {
            i++;
            continue;
        }
        if (strcmp(a, "--plugins") == 0) {
            snprintf(plugdir, sizeof plugdir, "%s", argv[++i]);
            continue;
        }
        slot = strcmp(a, "--B") == 0         ? &B
               : strcmp(a, "--T") == 0       ? &T
               : strcmp(a, "--D") == 0       ? &D
               : strcmp(a, "--heads") == 0   ? &H
               : strcmp(a, "--depth") == 0   ? &L
               : strcmp(a, "--classes") == 0 ? &C
               : strcmp(a, "--threads") == 0 ? &threads
               : strcmp(a, "--warmup") == 0  ? &warmup
               : strcmp(a, "--steps") == 0   ? &steps
                                             : NULL;
        if (!slot) {
            usage();
        }
        *slot = atoll(argv[++i]);
    }
    if (B < 1 || T < 1 || D < 1 || H < 1 || D % H || L < 1 || C < 2 || threads < 1 ||
        steps < 1 || warmup < 0) {
        usage();
    }
    const int64_t Hd = 4 * D, N = B * T, A = B * H * T * T;

    kern_set_threads((int)threads);
    if (bf16 && !kern_set_precision_bf16(1)) {
        fprintf(stderr, "bench_vit: --bf16 needs a CPU with AVX512_BF16\n");
        return 3;
    }
    // Start the kernels' pool (and with it OpenBLAS's single-thread setting) before taking
    // the baseline, so that only the model counts.
    {
        float a[64] = {0}, o[64];
        kern_linear_forward(o, a, a, NULL, 8, 8, 8);
    }

    mpsl_host host = *host_services();
    if (profile) {
        K = host.kernels;
        K_prof = *K;
        K_prof.linear_forward = w_lin_f, K_prof.linear_backward = w_lin_b;
        K_prof.layernorm_forward = w_ln_f, K_prof.layernorm_backward = w_ln_b;
        K_prof.attention_forward = w_att_f, K_prof.attention_backward = w_att_b;
        K_prof.gelu_forward = w_gelu_f, K_prof.gelu_backward = w_gelu_b;
        K_prof.add = w_add;
        K_prof.token_select_forward = w_sel_f, K_prof.token_select_backward = w_sel_b;
        host.kernels = &K_prof;
    }
    const mpsl_kernels *k = host.kernels;

    char vit_path[4200], cl_path[4200];
    snprintf(vit_path, sizeof vit_path, "%s/encoder/vit.so", plugdir);
    snprintf(cl_path, sizeof cl_path, "%s/head/classifier.so", plugdir);
    mpsl_token_layout lay = {.n_segments = 1};
    lay.segment[0].offset = 0, lay.segment[0].length = T, lay.segment[0].has_cls = 1;

    int64_t rss0 = proc_status_bytes("VmRSS");
    char enc_yaml[256];
    snprintf(enc_yaml, sizeof enc_yaml,
             "depth: %" PRId64 "\nheads: %" PRId64 "\nmlp_ratio: 4\nqkv_bias: true\n"
             "pre_norm: false\nfinal_norm: true\neps: 1e-6\n", L, H);
    module enc, head;
    module_open(&enc, &host, vit_path, MPSL_KIND_ENCODER, enc_yaml, T, D, 0, &lay);
    module_open(&head, &host, cl_path, MPSL_KIND_HEAD, "pool: cls\nnorm: false\n", T, D, C,
                &lay);

    // one flat buffer in declaration order (encoder, head), as the host lays it out
    const int64_t n = enc.n + head.n;
    float *param = falloc(n), *grad = falloc(n);
    module_init_params(&enc, param);
    module_init_params(&head, param + enc.n);
    mh_bind(&enc, param, grad);
    mh_bind(&head, param + enc.n, grad + enc.n);
    optim_settings os = {0};
    os.kind = OPTIM_ADAMW;
    os.lr = 1e-3, os.beta1 = 0.9, os.beta2 = 0.999, os.eps = 1e-8, os.weight_decay = 0.05;
    os.schedule = SCHEDULE_CONSTANT;
    // one span per declared tensor, as the host's build_spans lists them
    optim_span *spans = calloc((size_t)(enc.n_decl + head.n_decl), sizeof *spans);
    int n_spans = 0;
    for (int mi = 0; mi < 2; mi++) {
        const module *m = mi == 0 ? &enc : &head;
        int64_t base = mi == 0 ? 0 : enc.n;
        for (int j = 0; j < m->n_decl; j++) {
            if (m->d[j].trainable) {
                spans[n_spans++] = (optim_span){base + m->d[j].off, m->d[j].count, os.lr,
                                                os.weight_decay};
            }
        }
    }
    optim_state opt;
    mpsl_error err = {{0}};
    if (optim_state_init(&opt, &os, n, &err) != MPSL_OK) {
        die("optimizer", err.msg);
    }
    float *tokens = falloc(N * D), *dtokens = falloc(N * D);
    float *encoded = falloc(N * D), *dencoded = falloc(N * D);
    float *logits = falloc(B * C), *dlogits = falloc(B * C);
    int32_t *labels = malloc((size_t)B * sizeof(int32_t));
    for (int64_t i = 0; i < N * D; i++) {
        tokens[i] = nrand();
    }
    for (int64_t i = 0; i < B; i++) {
        labels[i] = (int32_t)(urand() * (double)C);
    }

    // the timed step, phase by phase
    enum { PH_ZERO, PH_FWD, PH_LOSS, PH_BWD, PH_OPT, PH_COUNT };
    static const char *ph_name[PH_COUNT] = {"zero grads", "forward (encoder + head)",
                                            "loss", "backward (head + encoder)", "AdamW"};
    double ph[PH_COUNT] = {0};
    double fl[2] = {0, 0};
    double *times = calloc((size_t)steps, sizeof(double));
    double loss_first = 0.0, loss_last = 0.0;
    for (int64_t s = 0; s < warmup + steps; s++) {
        int timed = s >= warmup;
        if (s == warmup) {
            p_on = profile;
            flops_set_target(fl);
        }
        if (s == warmup + 1) {
            flops_set_target(NULL);   // one step's FLOPs
        }
        double t[PH_COUNT + 1];
        t[0] = now();
        memset(grad, 0, (size_t)n * sizeof(float));
        t[1] = now();
        mpsl_tensor tin = {.data = tokens, .dtype = MPSL_F32, .ndim = 3, .shape = {B, T, D}};
        mpsl_tensor tenc = {.data = encoded}, tlog = {.data = logits};
        if (enc.api->forward(enc.state, &enc.w, &tin, &tenc, &err) != MPSL_OK ||
            head.api->forward(head.state, &head.w, &tenc, &tlog, &err) != MPSL_OK) {
            die("forward", err.msg);
        }
        t[2] = now();
        double loss = k->cross_entropy(dlogits, logits, labels, B, C, 1.0f, NULL);
        t[3] = now();
        mpsl_tensor tdl = {.data = dlogits, .dtype = MPSL_F32, .ndim = 2, .shape = {B, C}};
        mpsl_tensor tde = {.data = dencoded}, tdt = {.data = dtokens};
        if (head.api->backward(head.state, &head.w, &tdl, &tde, &err) != MPSL_OK ||
            enc.api->backward(enc.state, &enc.w, &tde, &tdt, &err) != MPSL_OK) {
            die("backward", err.msg);
        }
        t[4] = now();
        optim_state_step(&opt, param, grad, spans, n_spans, 0);
        t[5] = now();
        if (s == 0) {
            loss_first = loss;
        }
        loss_last = loss;
        if (timed) {
            times[s - warmup] = t[5] - t[0];
            for (int p = 0; p < PH_COUNT; p++) {
                ph[p] += t[p + 1] - t[p];
            }
        }
    }
    p_on = 0;
    int64_t hwm = proc_status_bytes("VmHWM");
    double sum = 0.0;
    for (int64_t i = 0; i < steps; i++) {
        sum += times[i];
    }
    qsort(times, (size_t)steps, sizeof(double), cmp_double);
    double t_med = steps % 2 ? times[steps / 2] : 0.5 * (times[steps / 2 - 1] + times[steps / 2]);
    double t_min = times[0], t_mean = sum / (double)steps;

    // FLOPs: the kernels' count and the analytical GEMM count
    double counted = fl[0] + fl[1];
    double gemm_fwd = (double)L * (2.0 * (double)N * (double)D * (double)(3 * D + D + 2 * Hd) +
                                   4.0 * (double)B * (double)T * (double)T * (double)D) +
                      2.0 * (double)B * (double)D * (double)C;
    double analytical = 3.0 * gemm_fwd;

    // memory: the analytical training state against the measured growth
    double bytes_param = 4.0 * (double)n;
    double bytes_block = 4.0 * (double)(8 * N * D + 2 * N * Hd + A + 4 * N);
    double bytes_saved_enc = (double)L * bytes_block + 4.0 * (double)(N * D + 2 * N);
    double bytes_saved_head = 4.0 * (double)(B * D);
    double analytic_mem = 4.0 * bytes_param + bytes_saved_enc + bytes_saved_head;
    double work = 4.0 * (double)(3 * N * D + N * (3 * D > Hd ? 3 * D : Hd));
    double io = 4.0 * (double)(4 * N * D + 2 * B * C) + 4.0 * (double)(2 * B * D); // ours + head
    double grown = (double)(hwm - rss0);

    char blas_path[4096];
    mapped_path("libopenblas", blas_path, sizeof blas_path);
    printf("mpsl ViT step benchmark: shape %s (B %" PRId64 ", T %" PRId64 ", D %" PRId64
           ", heads %" PRId64 ", depth %" PRId64 ", mlp %" PRId64 ", classes %" PRId64 ")\n",
           shape, B, T, D, H, L, Hd, C);
    printf("threads: %d (kernels' pool, OpenBLAS at 1 thread inside it: openblas_get_num_threads"
           "() = %d)\n", kern_threads(), openblas_get_num_threads());
    printf("OpenBLAS: %s [%s]\n", blas_path, openblas_get_config());
    printf("parameters: %" PRId64 " (%.2f MB), spans %d; loss %.4f (first step) -> %.4f "
           "(last)\n", n, bytes_param * 1e-6, n_spans, loss_first, loss_last);
    printf("steps: %" PRId64 " warm-up + %" PRId64 " timed: median %.2f ms, min %.2f ms, mean "
           "%.2f ms\n", warmup, steps, 1e3 * t_med, 1e3 * t_min, 1e3 * t_mean);
    printf("phases (mean per step):");
    for (int p = 0; p < PH_COUNT; p++) {
        printf(" %s %.2f ms (%.1f%%)%s", ph_name[p], 1e3 * ph[p] / (double)steps,
               100.0 * ph[p] / sum, p + 1 < PH_COUNT ? "," : "\n");
    }
    printf("FLOPs per step: counted by the kernels %.3f G (forward %.3f G, backward %.3f G); "
           "analytical GEMMs 3 x %.3f G = %.3f G (counted / analytical %.3f)\n", counted * 1e-9,
           fl[0] * 1e-9, fl[1] * 1e-9, gemm_fwd * 1e-9, analytical * 1e-9,
           counted / analytical);
    printf("GFLOP/s: %.1f at the median (%.1f at the min)\n", counted / t_med * 1e-9,
           counted / t_min * 1e-9);
    printf("memory: resident before the model %.1f MB, peak %.1f MB, grown %.1f MB\n",
           (double)rss0 * 1e-6, (double)hwm * 1e-6, grown * 1e-6);
    printf("  analytical %.1f MB = params %.1f + grads %.1f + AdamW m, v %.1f + saved "
           "activations %.1f (encoder %.1f, head %.3f)\n", analytic_mem * 1e-6,
           bytes_param * 1e-6, bytes_param * 1e-6, 2 * bytes_param * 1e-6,
           (bytes_saved_enc + bytes_saved_head) * 1e-6, bytes_saved_enc * 1e-6,
           bytes_saved_head * 1e-6);
    printf("  beyond it by design: encoder backward workspace %.1f MB, tokens/encoded and their "
           "gradients and the head's scratch %.1f MB\n", work * 1e-6, io * 1e-6);
    printf("  measured / analytical = %.3f (target <= 1.5)\n", grown / analytic_mem);
    if (profile) {
        double ktot = 0.0;
        for (int p = 0; p < P_COUNT; p++) {
            ktot += p_time[p];
        }
        printf("\nprofile over %" PRId64 " timed steps (per step; %% of the step's mean %.2f "
               "ms):\n", steps, 1e3 * t_mean);
        printf("  %-24s %7s %10s %7s\n", "kernel", "calls", "ms/step", "%");
        for (int p = 0; p < P_COUNT; p++) {
            if (p_calls[p]) {
                printf("  %-24s %7" PRId64 " %10.2f %6.1f%%\n", p_name[p],
                       p_calls[p] / steps, 1e3 * p_time[p] / (double)steps,
                       100.0 * p_time[p] / sum);
            }
        }
        printf("  %-24s %7s %10.2f %6.1f%%\n", "zero grads", "", 1e3 * ph[PH_ZERO] / (double)steps,
               100.0 * ph[PH_ZERO] / sum);
        printf("  %-24s %7s %10.2f %6.1f%%\n", "AdamW", "", 1e3 * ph[PH_OPT] / (double)steps,
               100.0 * ph[PH_OPT] / sum);
        double other = sum - ktot - ph[PH_ZERO] - ph[PH_OPT];
        printf("  %-24s %7s %10.2f %6.1f%%\n", "other (copies, memsets)", "",
               1e3 * other / (double)steps, 100.0 * other / sum);
    }
    printf("RESULT shape %s\n", shape);
    printf("RESULT precision %s\n", bf16 ? "bf16" : "fp32");
    printf("RESULT threads %d\n", kern_threads());
    printf("RESULT ms_median %.3f\nRESULT ms_min %.3f\nRESULT ms_mean %.3f\n", 1e3 * t_med,
           1e3 * t_min, 1e3 * t_mean);
    printf("RESULT gflop_counted %.6f\nRESULT gflop_analytical %.6f\n", counted * 1e-9,
           analytical * 1e-9);
    printf("RESULT gflops %.3f\n", counted / t_med * 1e-9);
    printf("RESULT mem_grown_mb %.3f\nRESULT mem_analytical_mb %.3f\nRESULT mem_ratio %.4f\n",
           grown * 1e-6, analytic_mem * 1e-6, grown / analytic_mem);
    printf("RESULT blas %s\n", blas_path);

    free(times), free(spans), free(labels);
    mpsl_free(param), mpsl_free(grad), mpsl_free(tokens), mpsl_free(dtokens);
    mpsl_free(encoded), mpsl_free(dencoded), mpsl_free(logits), mpsl_free(dlogits);
    optim_state_free(&opt);
    mh_close(&head), mh_close(&enc);
    return 0;
}
