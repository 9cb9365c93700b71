/* test_helpers.c: the shared helpers every plugin reaches through mpsl_host (ABI 2.0), called
 * through the host's own table as a plugin calls them: random streams (determinism,
 * independence of samples and streams, moments), half floats, log-mels (filters, silence,
 * a tone's peak, centring), IDX files (gzip and plain, limits, every refusal), and the file
 * chores (CRC-32 and FNV-1a check values, mkdir -p). Prepared files are read through the
 * `prepared` plugin in tests/convert. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "check.h"
#include "plugin/loader.h"

static const mpsl_host *h;
static char root[256];

/* ------------------------------------------------------------ the tables */

static void test_tables(void)
{
    CHECK(h->size == sizeof(mpsl_host));
    CHECK(h->rng && h->rng->size == sizeof(mpsl_rng_api));
    CHECK(h->half && h->half->size == sizeof(mpsl_half_api));
    CHECK(h->mel && h->mel->size == sizeof(mpsl_mel_api));
    CHECK(h->idx && h->idx->size == sizeof(mpsl_idx_api));
    CHECK(h->prepared && h->prepared->size == sizeof(mpsl_prepared_api));
    CHECK(h->files && h->files->size == sizeof(mpsl_files_api));
}

/* ------------------------------------------------------------ h->rng */

static void test_rng(void)
{
    const mpsl_rng_api *R = h->rng;
    mpsl_rng a, b, c, d;
    R->seed_sample(&a, 5, 0, 17, 1);
    R->seed_sample(&b, 5, 0, 17, 1);
    R->seed_sample(&c, 5, 1, 17, 1); /* another split */
    R->seed_sample(&d, 5, 0, 17, 2); /* another stream */
    int same = 1, differ_split = 0, differ_stream = 0;
    for (int i = 0; i < 100; i++) {
        uint64_t x = R->next(&a), y = R->next(&b), z = R->next(&c), w = R->next(&d);
        same &= x == y;
        differ_split += x != z;
        differ_stream += x != w;
    }
    CHECK(same);
    CHECK(differ_split > 95 && differ_stream > 95);

    /* seed(): the same numbers as the host's own generator gives for that seed */
    R->seed(&a, 42);
    R->seed(&b, 42);
    CHECK(R->uniform(&a) == R->uniform(&b));

    /* moments of both normals, range of uniform and below */
    R->seed_sample(&a, 1, 0, 0, 2);
    double s = 0, s2 = 0, f = 0, f2 = 0;
    int in_range = 1;
    for (int i = 0; i < 200000; i++) {
        double g = R->normal(&a), gf = R->normal_f32(&a), u = R->uniform(&a);
        int64_t k = R->below(&a, 7);
        s += g;
        s2 += g * g;
        f += gf;
        f2 += gf * gf;
        in_range &= u >= 0 && u < 1 && k >= 0 && k < 7;
    }
    CHECK_CLOSE(s / 200000, 0.0, 0.01);
    CHECK_CLOSE(s2 / 200000, 1.0, 0.02);
    CHECK_CLOSE(f / 200000, 0.0, 0.01);
    CHECK_CLOSE(f2 / 200000, 1.0, 0.02);
    CHECK(in_range);
    CHECK(R->below(&a, 1) == 0 && R->below(&a, 0) == 0);

    /* shuffle: a permutation */
    int64_t perm[50], seen[50] = {0};
    for (int i = 0; i < 50; i++) {
        perm[i] = i;
    }
    R->shuffle(&a, perm, 50);
    int moved = 0;
    for (int i = 0; i < 50; i++) {
        seen[perm[i]]++;
        moved += perm[i] != i;
    }
    int once = 1;
    for (int i = 0; i < 50; i++) {
        once &= seen[i] == 1;
    }
    CHECK(once && moved > 40);

    /* mix64: SplitMix64's output function (0 maps to 0; known value of the first state) */
    CHECK(R->mix64(0) == 0);
    CHECK(R->mix64(0x9E3779B97F4A7C15ull) == 0xE220A8397B1DCDAFull);
}

/* ------------------------------------------------------------ h->half */

static void test_half(void)
{
    const mpsl_half_api *H = h->half;
    CHECK(H->f32_to_f16(1.0f) == 0x3C00 && H->f16_to_f32(0x3C00) == 1.0f);
    CHECK(H->f32_to_f16(65520.0f) == 0x7C00); /* rounds to inf */
    CHECK(H->f32_to_bf16(1.0f) == 0x3F80 && H->bf16_to_f32(0xC020) == -2.5f);
    uint16_t src[3] = {0x3C00, 0xC000, 0x0001};
    float dst[3];
    H->f16_to_f32_n(dst, src, 3);
    CHECK(dst[0] == 1.0f && dst[1] == -2.0f && dst[2] == 0x1p-24f);
    uint16_t bsrc[2] = {0x3F80, 0x4040};
    H->bf16_to_f32_n(dst, bsrc, 2);
    CHECK(dst[0] == 1.0f && dst[1] == 3.0f);
}

/* ------------------------------------------------------------ h->mel */

static void test_mel(void)
{
    const mpsl_mel_api *M = h->mel;
    mpsl_error err = {{0}};
    /* every filter covers at least one FFT bin up to 128 filters; 256 is refused */
    for (int bins = 8; bins <= 128; bins *= 2) {
        mpsl_mel *mel = NULL;
        CHECK(M->create(bins, &mel, &err) == MPSL_OK);
        if (!mel) {
            fprintf(stderr, "%s\n", err.msg);
            continue;
        }
        CHECK(M->bins(mel) == bins);
        int nb;
        const float *flt = M->filters(mel, &nb);
        CHECK(nb == MPSL_MEL_NFFT / 2 + 1);
        int empty = 0;
        for (int b = 0; b < bins; b++) {
            double sum = 0;
            for (int k = 0; k < nb; k++) {
                sum += flt[b * nb + k];
            }
            empty += sum <= 0;
        }
        CHECK(empty == 0);
        M->destroy(mel);
    }
    mpsl_mel *none = NULL;
    CHECK(M->create(256, &none, &err) == MPSL_ERR_INVALID && none == NULL);
    CHECK_CONTAINS(err.msg, "covers no FFT bin");
    CHECK(M->create(0, &none, &err) == MPSL_ERR_INVALID);

    /* silence gives log(eps); a 1 kHz sine peaks in the filter centred nearest 1 kHz */
    enum { B = 64, F = 20 };
    mpsl_mel *mel = NULL;
    CHECK(M->create(B, &mel, &err) == MPSL_OK);
    if (!mel) {
        return;
    }
    int64_t L = M->window(F);
    CHECK(L == (F - 1) * 160 + 400);
    float *wave = calloc((size_t)L, sizeof *wave), out[B * F];
    CHECK(M->compute(mel, wave, F, out) == MPSL_OK);
    int silent = 1;
    for (int i = 0; i < B * F; i++) {
        silent &= out[i] == logf(1e-6f);
    }
    CHECK(silent);
    for (int64_t i = 0; i < L; i++) {
        wave[i] = 0.1f * (float)sin(2 * M_PI * 1000.0 * (double)i / 16000.0);
    }
    CHECK(M->compute(mel, wave, F, out) == MPSL_OK);
    int best = 0, nearest = 0;
    for (int b = 1; b < B; b++) {
        best = out[b * F + 10] > out[best * F + 10] ? b : best;
        nearest = fabs(M->center_hz(mel, b) - 1000) < fabs(M->center_hz(mel, nearest) - 1000)
                      ? b : nearest;
    }
    CHECK(abs(best - nearest) <= 1);
    CHECK(M->hz_to_mel(1000.0) == 15.0); /* Slaney: 3 mels per 200 Hz up to 1 kHz */
    CHECK(M->compute(mel, wave, 0, out) == MPSL_ERR_INVALID);

    /* compute_fixed: a short clip is centred (silence at both ends), a long one cropped to
     * its middle (the same frames as computing the middle window directly) */
    float fixed[B * F], direct[B * F];
    CHECK(M->compute_fixed(mel, wave, 800, F, fixed) == MPSL_OK);
    float middle = fixed[F / 2];
    for (int b = 0; b < B; b++) {
        middle = fixed[b * F + F / 2] > middle ? fixed[b * F + F / 2] : middle;
    }
    CHECK(fixed[0] == logf(1e-6f) && fixed[F - 1] == logf(1e-6f) && middle > 0.0f);
    float *longer = calloc((size_t)(L + 1000), sizeof *longer);
    for (int64_t i = 0; i < L + 1000; i++) {
        longer[i] = (float)((i * 7919) % 1000) / 1000.0f - 0.5f;
    }
    CHECK(M->compute_fixed(mel, longer, L + 1000, F, fixed) == MPSL_OK);
    CHECK(M->compute(mel, longer + 500, F, direct) == MPSL_OK);
    CHECK(memcmp(fixed, direct, sizeof fixed) == 0);
    free(longer);
    free(wave);
    M->destroy(mel);
    M->destroy(NULL);
}

/* ------------------------------------------------------------ h->idx */

/* Write an IDX file of n items of `item` bytes (value = (i * 7 + k) % 256), gzip-compressed
 * or plain, with `extra` bytes after the data and `cut` bytes fewer of data. */
static void write_idx(const char *path, int gz, uint32_t magic, int ndim, const uint32_t *dims,
                      int extra, int cut)
{
    size_t n = dims[0], item = 1;
    for (int d = 1; d < ndim; d++) {
        item *= dims[d];
    }
    size_t head = 4 + 4 * (size_t)ndim, body = n * item;
    unsigned char *b = malloc(head + body + (size_t)extra);
    uint32_t fields[1 + MPSL_IDX_MAX_DIMS] = {magic};
    memcpy(fields + 1, dims, (size_t)ndim * 4);
    for (int f = 0; f <= ndim; f++) {
        for (int k = 0; k < 4; k++) {
            b[4 * f + k] = (unsigned char)(fields[f] >> (24 - 8 * k));
        }
    }
    for (size_t i = 0; i < body + (size_t)extra; i++) {
        b[head + i] = (unsigned char)((i / item * 7 + i % item) % 256);
    }
    size_t len = head + body + (size_t)extra - (size_t)cut;
    if (gz) {
        gzFile g = gzopen(path, "wb");
        gzwrite(g, b, (unsigned)len);
        gzclose(g);
    } else {
        FILE *fp = fopen(path, "wb");
        fwrite(b, 1, len, fp);
        fclose(fp);
    }
    free(b);
}

static void test_idx(void)
{
    const mpsl_idx_api *X = h->idx;
    mpsl_error err = {{0}};
    char path[512];
    const uint32_t dims[3] = {5, 3, 4};
    int64_t got[3];
    mpsl_idx_file *f = NULL;
    unsigned char buf[60];
    for (int gz = 0; gz < 2; gz++) {
        snprintf(path, sizeof path, "%s/ok%d.idx", root, gz);
        write_idx(path, gz, 0x803, 3, dims, 0, 0);
        CHECK(X->open(path, 3, got, &f, &err) == MPSL_OK);
        CHECK(got[0] == 5 && got[1] == 3 && got[2] == 4);
        CHECK(X->read(f, 2, buf, &err) == MPSL_OK); /* a limit: the first items only */
        CHECK(buf[0] == 0 && buf[11] == 11 && buf[12] == 7 && buf[23] == 18);
        CHECK(X->read(f, 3, buf, &err) == MPSL_OK); /* the rest, and the end checked */
        CHECK(buf[0] == 14 && buf[35] == (4 * 7 + 11) % 256);
        CHECK(X->read(f, 1, buf, &err) == MPSL_ERR_INTERNAL); /* past the end */
        X->close(f);
    }
    /* refusals, each naming the file */
    snprintf(path, sizeof path, "%s/missing.idx", root);
    CHECK(X->open(path, 3, got, &f, &err) == MPSL_ERR_IO && f == NULL);
    CHECK_CONTAINS(err.msg, path);
    CHECK_CONTAINS(err.msg, "No such file");
    snprintf(path, sizeof path, "%s/labels.idx", root);
    write_idx(path, 1, 0x801, 1, dims, 0, 0);
    CHECK(X->open(path, 3, got, &f, &err) == MPSL_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "magic number 2049, expected 2051");
    snprintf(path, sizeof path, "%s/garbage.idx", root);
    FILE *fp = fopen(path, "wb");
    fputs("this is neither gzip nor IDX", fp);
    fclose(fp);
    CHECK(X->open(path, 1, got, &f, &err) == MPSL_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "is neither a gzip-compressed nor a plain IDX file");
    snprintf(path, sizeof path, "%s/empty.idx", root);
    fp = fopen(path, "wb");
    fclose(fp);
    CHECK(X->open(path, 1, got, &f, &err) == MPSL_ERR_IO);
    CHECK_CONTAINS(err.msg, "is truncated");
    CHECK(X->open(root, 1, got, &f, &err) == MPSL_ERR_IO);
    CHECK_CONTAINS(err.msg, "is a folder");
    snprintf(path, sizeof path, "%s/short.idx", root);
    write_idx(path, 1, 0x803, 3, dims, 0, 5);
    CHECK(X->open(path, 3, got, &f, &err) == MPSL_OK);
    CHECK(X->read(f, 4, buf, &err) == MPSL_OK); /* what is there reads */
    CHECK(X->read(f, 1, buf, &err) == MPSL_ERR_IO);
    CHECK_CONTAINS(err.msg, "expected 12 bytes of items 4..4, got 7");
    X->close(f);
    snprintf(path, sizeof path, "%s/long.idx", root);
    write_idx(path, 0, 0x803, 3, dims, 3, 0);
    CHECK(X->open(path, 3, got, &f, &err) == MPSL_OK);
    CHECK(X->read(f, 5, buf, &err) == MPSL_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "more data than the 5 items its header announces");
    X->close(f);
    X->close(NULL);
}

/* ------------------------------------------------------------ h->files */

static void test_files(void)
{
    const mpsl_files_api *F = h->files;
    /* the standard check values of CRC-32 and FNV-1a 64 */
    CHECK(F->crc32(0, "123456789", 9) == 0xCBF43926u);
    CHECK(F->crc32(F->crc32(0, "1234", 4), "56789", 5) == 0xCBF43926u);
    CHECK(F->fnv1a64("a", 1) == 0xaf63dc4c8601ec8cull);
    CHECK(F->fnv1a64("", 0) == 0xcbf29ce484222325ull);
    mpsl_error err = {{0}};
    char path[512];
    snprintf(path, sizeof path, "%s/a/b/c", root);
    CHECK(F->mkdir_p(path, &err) == MPSL_OK);
    struct stat st;
    CHECK(stat(path, &st) == 0 && S_ISDIR(st.st_mode));
    CHECK(F->mkdir_p(path, &err) == MPSL_OK); /* already there */
    snprintf(path, sizeof path, "%s/ok0.idx/x", root); /* under a file */
    CHECK(F->mkdir_p(path, &err) != MPSL_OK);
    CHECK_CONTAINS(err.msg, "ok0.idx");
}

int main(void)
{
    h = host_services();
    const char *tmp = getenv("TMPDIR");
    snprintf(root, sizeof root, "%s/mpsl-helpers-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        return 1;
    }
    test_tables();
    test_rng();
    test_half();
    test_mel();
    test_idx();
    test_files();
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd) != 0) {
        fprintf(stderr, "could not remove %s\n", root);
    }
    return check_exit();
}
