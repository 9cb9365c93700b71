/* sgemm_peak.c: OpenBLAS's own single-precision GEMM speed on this machine, measured in the
 * same run as the model benchmarks, so that their GFLOP/s can be given as a fraction of it.
 * Links OpenBLAS directly (no mpsl code), sets openblas_set_num_threads(threads) and times
 * cblas_sgemm on
 *   - a large square product, 2048^3 (the "peak"),
 *   - the GEMMs that dominate the two benchmark shapes: the forward of fc1 (N x D times
 *     D x 4D, N = B*T token rows), fc2 (N x 4D times 4D x D) and qkv (N x D times D x 3D),
 *     with B, T, D of ViT-Ti (16, 197, 192) and of the small shape (64, 50, 128),
 * each as the best of `reps` runs after one warm-up call (2 * M * N * K flops per call),
 * at `threads` threads and at 1 thread (our kernels run single-threaded sgemm on slices, so
 * 1-thread x threads is their ideal).
 *
 * Usage: sgemm_peak [threads (2)] [reps (5)]
 * Output: a table, then "RESULT key value" lines that run.sh reads (peak_gflops = the
 * 2048^3 figure at `threads` threads). */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static float *rnd(long n)
{
    float *p = malloc((size_t)n * sizeof(float));
    if (!p) {
        fprintf(stderr, "sgemm_peak: out of memory\n");
        exit(1);
    }
    for (long i = 0; i < n; i++) {
        p[i] = (float)rand() / (float)RAND_MAX - 0.5f;
    }
    return p;
}

/* GFLOP/s of C (M,N) = A (M,K) @ B (N,K)^T (a Linear layer's forward), best of reps. */
static double time_gemm(long M, long N, long K, int reps)
{
    float *a = rnd(M * K), *b = rnd(N * K), *c = rnd(M * N);
    double best = 1e30;
    for (int r = 0; r <= reps; r++) {
        double t0 = now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)M, (int)N, (int)K, 1.0f, a,
                    (int)K, b, (int)K, 0.0f, c, (int)N);
        double t = now() - t0;
        if (r > 0 && t < best) {   // r == 0: warm-up
            best = t;
        }
    }
    free(a), free(b), free(c);
    return 2.0 * (double)M * (double)N * (double)K / best * 1e-9;
}

int main(int argc, char **argv)
{
    int threads = argc > 1 ? atoi(argv[1]) : 2;
    int reps = argc > 2 ? atoi(argv[2]) : 5;
    if (threads < 1 || reps < 1) {
        fprintf(stderr, "usage: sgemm_peak [threads] [reps]\n");
        return 2;
    }
    const char *env = getenv("OPENBLAS_CORETYPE");
    printf("OpenBLAS sgemm: %s, core %s (OPENBLAS_CORETYPE=%s), parallel mode %d\n",
           openblas_get_config(), openblas_get_corename(), env ? env : "(unset)",
           openblas_get_parallel());
    struct {
        const char *name;
        long M, N, K;
    } shapes[] = {
        {"square 2048^3", 2048, 2048, 2048},
        {"tiny fc1  3152x768x192", 16 * 197, 768, 192},
        {"tiny fc2  3152x192x768", 16 * 197, 192, 768},
        {"tiny qkv  3152x576x192", 16 * 197, 576, 192},
        {"small fc1 3200x512x128", 64 * 50, 512, 128},
        {"small fc2 3200x128x512", 64 * 50, 128, 512},
        {"small qkv 3200x384x128", 64 * 50, 384, 128},
    };
    int ns = (int)(sizeof shapes / sizeof shapes[0]);
    double g_n[16], g_1[16];
    for (int i = 0; i < ns; i++) {
        openblas_set_num_threads(threads);
        g_n[i] = time_gemm(shapes[i].M, shapes[i].N, shapes[i].K, reps);
        openblas_set_num_threads(1);
        g_1[i] = time_gemm(shapes[i].M, shapes[i].N, shapes[i].K, reps);
    }
    printf("%-26s %14s %14s\n", "GEMM (M x N x K)", "GFLOP/s @1", "GFLOP/s @threads");
    for (int i = 0; i < ns; i++) {
        printf("%-26s %14.1f %14.1f\n", shapes[i].name, g_1[i], g_n[i]);
    }
    printf("RESULT threads %d\n", threads);
    printf("RESULT peak_gflops %.3f\n", g_n[0]);
    printf("RESULT peak_gflops_1thread %.3f\n", g_1[0]);
    double tiny = 0.0, small = 0.0;
    for (int i = 1; i <= 3; i++) {
        tiny = g_n[i] > tiny ? g_n[i] : tiny;
        small = g_n[i + 3] > small ? g_n[i + 3] : small;
    }
    printf("RESULT tiny_shapes_best_gflops %.3f\n", tiny);
    printf("RESULT small_shapes_best_gflops %.3f\n", small);
    printf("RESULT config %s\n", openblas_get_config());
    return 0;
}
