/* kernels_micro.c: times the kernels on a ViT encoder's forward + backward (no optimizer) at
 * 1 and N threads, kernel by kernel, and a raw cblas_sgemm of the linear shapes for the
 * fraction of sgemm speed the kernels reach. A throwaway measuring tool, not a test and not
 * built by meson:
 *
 *   cc -O2 -Icore -Icore/include bench/kernels_micro.c -o /tmp/kernels_micro \
 *      -Lbuild/core -lmpsl -lopenblas -Wl,-rpath,$PWD/build/core
 *   /tmp/kernels_micro [B T D H blocks reps]     (default: ViT-Ti 16 197 192 3 12 3)
 *
 * Each figure is the fastest of `reps` runs (the machine may be shared). */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/kernels.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static float *rnd(int64_t n, float scale)
{
    float *p = malloc((size_t)n * sizeof(float));
    if (!p) {
        abort();
    }
    for (int64_t i = 0; i < n; i++) {
        p[i] = scale * ((float)rand() / (float)RAND_MAX - 0.5f);
    }
    return p;
}

enum { K_LN, K_LINEAR, K_ATT, K_GELU, K_ADD, K_COUNT };
static const char *k_name[K_COUNT] = {"layernorm", "linear", "attention", "gelu", "add"};
static double k_time[K_COUNT];
static double k_t0;
#define TIC() (k_t0 = now())
#define TOC(k) (k_time[k] += now() - k_t0)

typedef struct {
    float *ln1w, *ln1b, *qkvw, *qkvb, *projw, *projb, *ln2w, *ln2b, *fc1w, *fc1b, *fc2w, *fc2b;
} block_w;

typedef struct {
    float *x, *ln1, *m1, *r1, *qkv, *att, *ao, *x2, *ln2, *m2, *r2, *h, *hg;
} block_a;

int main(int argc, char **argv)
{
    int64_t B = 16, T = 197, D = 192, H = 3, L = 12, reps = 3;
    if (argc >= 7) {
        B = atoll(argv[1]), T = atoll(argv[2]), D = atoll(argv[3]), H = atoll(argv[4]);
        L = atoll(argv[5]), reps = atoll(argv[6]);
    }
    int64_t N = B * T, F = 4 * D;
    block_w *w = calloc((size_t)L, sizeof *w), *g = calloc((size_t)L, sizeof *g);
    block_a *a = calloc((size_t)L + 1, sizeof *a);
    for (int64_t l = 0; l < L; l++) {
        block_w *p[2] = {&w[l], &g[l]};
        for (int k = 0; k < 2; k++) {
            float s = k ? 0.0f : 0.1f;
            p[k]->ln1w = rnd(D, s), p[k]->ln1b = rnd(D, s), p[k]->qkvw = rnd(3 * D * D, s);
            p[k]->qkvb = rnd(3 * D, s), p[k]->projw = rnd(D * D, s), p[k]->projb = rnd(D, s);
            p[k]->ln2w = rnd(D, s), p[k]->ln2b = rnd(D, s), p[k]->fc1w = rnd(F * D, s);
            p[k]->fc1b = rnd(F, s), p[k]->fc2w = rnd(D * F, s), p[k]->fc2b = rnd(D, s);
        }
        a[l].ln1 = rnd(N * D, 1), a[l].m1 = rnd(N, 1), a[l].r1 = rnd(N, 1);
        a[l].qkv = rnd(N * 3 * D, 1), a[l].att = rnd(B * H * T * T, 1), a[l].ao = rnd(N * D, 1);
        a[l].x2 = rnd(N * D, 1), a[l].ln2 = rnd(N * D, 1), a[l].m2 = rnd(N, 1);
        a[l].r2 = rnd(N, 1), a[l].h = rnd(N * F, 1), a[l].hg = rnd(N * F, 1);
    }
    for (int64_t l = 0; l <= L; l++) {
        a[l].x = rnd(N * D, 1);
    }
    float *dx = rnd(N * D, 1), *dtmp = rnd(N * D, 1), *dqkv = rnd(N * 3 * D, 1);
    float *dh = rnd(N * F, 1), *dln = rnd(N * D, 1);

    int max_threads = kern_threads();
    printf("B=%lld T=%lld D=%lld H=%lld blocks=%lld, fastest of %lld\n", (long long)B,
           (long long)T, (long long)D, (long long)H, (long long)L, (long long)reps);
    for (int threads = 1; threads <= max_threads; threads = threads == 1 ? max_threads : threads + 1) {
        kern_set_threads(threads);
        double best = 1e30, best_k[K_COUNT] = {0};
        for (int64_t r = 0; r < reps; r++) {
            memset(k_time, 0, sizeof k_time);
            double t0 = now();
            for (int64_t l = 0; l < L; l++) {
                block_w *p = &w[l];
                block_a *s = &a[l];
                TIC();
                kern_layernorm_forward(s->ln1, s->m1, s->r1, s->x, p->ln1w, p->ln1b, N, D, 1e-6f);
                TOC(K_LN), TIC();
                kern_linear_forward(s->qkv, s->ln1, p->qkvw, p->qkvb, N, D, 3 * D);
                TOC(K_LINEAR), TIC();
                kern_attention_forward(s->ao, s->att, s->qkv, B, T, D, H);
                TOC(K_ATT), TIC();
                kern_linear_forward(dtmp, s->ao, p->projw, p->projb, N, D, D);
                TOC(K_LINEAR), TIC();
                kern_add(s->x2, s->x, dtmp, N * D);
                TOC(K_ADD), TIC();
                kern_layernorm_forward(s->ln2, s->m2, s->r2, s->x2, p->ln2w, p->ln2b, N, D, 1e-6f);
                TOC(K_LN), TIC();
                kern_linear_forward(s->h, s->ln2, p->fc1w, p->fc1b, N, D, F);
                TOC(K_LINEAR), TIC();
                kern_gelu_forward(s->hg, s->h, N * F);
                TOC(K_GELU), TIC();
                kern_linear_forward(dtmp, s->hg, p->fc2w, p->fc2b, N, F, D);
                TOC(K_LINEAR), TIC();
                kern_add(a[l + 1].x, s->x2, dtmp, N * D);
                TOC(K_ADD);
            }
            for (int64_t l = L - 1; l >= 0; l--) {
                block_w *p = &w[l], *q = &g[l];
                block_a *s = &a[l];
                // dx holds d(block output); the residual passes it through unchanged
                TIC();
                kern_linear_backward(dh, q->fc2w, q->fc2b, dx, s->hg, p->fc2w, N, F, D);
                TOC(K_LINEAR), TIC();
                kern_gelu_backward(dh, dh, s->h, N * F);
                TOC(K_GELU), TIC();
                kern_linear_backward(dln, q->fc1w, q->fc1b, dh, s->ln2, p->fc1w, N, D, F);
                TOC(K_LINEAR), TIC();
                kern_layernorm_backward(dtmp, q->ln2w, q->ln2b, dln, s->x2, p->ln2w, s->m2, s->r2,
                                        N, D);
                TOC(K_LN), TIC();
                kern_add(dx, dx, dtmp, N * D);
                TOC(K_ADD), TIC();
                kern_linear_backward(dln, q->projw, q->projb, dx, s->ao, p->projw, N, D, D);
                TOC(K_LINEAR), TIC();
                kern_attention_backward(dqkv, dln, s->qkv, s->att, B, T, D, H);
                TOC(K_ATT), TIC();
                kern_linear_backward(dln, q->qkvw, q->qkvb, dqkv, s->ln1, p->qkvw, N, D, 3 * D);
                TOC(K_LINEAR), TIC();
                kern_layernorm_backward(dtmp, q->ln1w, q->ln1b, dln, s->x, p->ln1w, s->m1, s->r1,
                                        N, D);
                TOC(K_LN), TIC();
                kern_add(dx, dx, dtmp, N * D);
                TOC(K_ADD);
            }
            double dt = now() - t0;
            if (dt < best) {
                best = dt;
                memcpy(best_k, k_time, sizeof k_time);
            }
        }
        double lin = 3.0 * 2.0 * (double)N * (double)D * (3.0 * D + D + 2.0 * F) * (double)L;
        double att = 3.0 * 4.0 * (double)B * (double)T * (double)T * (double)D * (double)L;
        printf("threads %d: forward+backward %.1f ms (%.1f GFLOP/s on the GEMM work)\n", threads,
               best * 1e3, (lin + att) / best * 1e-9);
        for (int k = 0; k < K_COUNT; k++) {
            printf("  %-10s %8.2f ms%s", k_name[k], best_k[k] * 1e3,
                   k == K_LINEAR ? "" : "\n");
            if (k == K_LINEAR) {
                printf("  (%.1f GFLOP/s)\n", lin / best_k[k] * 1e-9);
            }
        }
    }

    // a raw sgemm of the same shapes, OpenBLAS threading as it comes (openblas_set_num_threads)
    int64_t shapes[4][2] = {{D, 3 * D}, {D, D}, {D, F}, {F, D}};
    float *x = rnd(N * F, 1), *wt = rnd(F * F, 1), *o = rnd(N * F, 1);
    for (int threads = 1; threads <= max_threads; threads = threads == 1 ? max_threads : threads + 1) {
        for (int k = 0; k < 4; k++) {
            int64_t IC = shapes[k][0], OC = shapes[k][1];
            double b_raw = 1e30, b_kern = 1e30;
            for (int64_t r = 0; r < 5 * reps; r++) {
                openblas_set_num_threads(threads);
                double t0 = now();
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)N, (int)OC, (int)IC,
                            1.0f, x, (int)IC, wt, (int)IC, 0.0f, o, (int)OC);
                double t1 = now();
                kern_set_threads(threads);
                kern_linear_forward(o, x, wt, NULL, N, IC, OC);
                double t2 = now();
                b_raw = t1 - t0 < b_raw ? t1 - t0 : b_raw;
                b_kern = t2 - t1 < b_kern ? t2 - t1 : b_kern;
            }
            double f = 2.0 * (double)N * (double)IC * (double)OC;
            printf("threads %d linear %lldx%lld->%lld: kernel %.1f GFLOP/s, raw cblas_sgemm "
                   "%.1f GFLOP/s\n", threads, (long long)N, (long long)IC, (long long)OC,
                   f / b_kern * 1e-9, f / b_raw * 1e-9);
        }
    }
    return 0;
}
