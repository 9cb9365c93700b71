/* test_av_fmnist.c: the av_fashion_mnist dataset plugin. Its pieces (resampling, the audio of
 * one sample, texts) are checked directly through the plugin's static library (the random
 * streams and log-mels it uses are the host's, tested in tests/helpers); the module is loaded
 * as the host loads it for prepare/open/fill: shapes, labels, determinism (same bytes for the
 * same parameters, for any thread count; other bytes for another seed), independence from
 * limits, idempotent prepare, refusals of corrupted copies of the prepared file, each naming
 * the file.
 * Small limits (200 train, 50 test) keep it to a few seconds per preparation.
 * Usage: test_av_fmnist /path/to/av_fashion_mnist.so */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "avf.h"
#include "check.h"
#include "config/config.h"
#include "plugin/loader.h"

#define REAL_DIR "/usr/share/datasets/fashion-mnist"
#define SMALL "train_limit: 200\ntest_limit: 50\n"

static loaded_plugin lp;
static const mpsl_dataset_api *api;
static char tmp_root[256];

/* ------------------------------------------------------------ helpers */

/* The plugin's params block from YAML, as the host fills it; free with free_params. */
static void *make_params(const char *yaml)
{
    const mpsl_plugin_desc *d = lp.desc;
    void *buf = calloc(1, d->params_size);
    mpsl_error err = {{0}};
    cfg_node *map = cfg_parse_string(yaml, "test.yaml", &err);
    CHECK(map != NULL);
    if (!map) {
        /* never fall back to the defaults: they prepare the whole dataset in ~/.cache */
        fprintf(stderr, "%s\n", err.msg);
        abort();
    }
    int rc = cfg_parse_params(map, d->params, d->n_params, buf, d->params_size, "data.dataset",
                              NULL, &err);
    CHECK(rc == MPSL_OK);
    if (rc != MPSL_OK) {
        fprintf(stderr, "%s\n", err.msg);
    }
    void **pair = malloc(2 * sizeof *pair);
    pair[0] = buf;
    pair[1] = map;
    return pair;
}

static void free_params(void *pair)
{
    void **p = pair;
    free(p[0]);
    cfg_free(p[1]);
    free(p);
}

static int prepare_with(const char *yaml, mpsl_error *err)
{
    void *pair = make_params(yaml);
    err->msg[0] = '\0';
    int rc = api->prepare(host_services(), ((void **)pair)[0], "test.yaml:1:1", err);
    free_params(pair);
    return rc;
}

static int open_with(const char *yaml, mpsl_dataset_info *info, void **state, mpsl_error *err)
{
    void *pair = make_params(yaml);
    memset(info, 0, sizeof *info);
    err->msg[0] = '\0';
    *state = NULL;
    int rc = api->open(host_services(), ((void **)pair)[0], "test.yaml:1:1", info, state, err);
    free_params(pair);
    return rc;
}

/* A fresh folder tmp_root/name (its path in dir). */
static void fresh_dir(const char *name, char *dir, size_t size)
{
    snprintf(dir, size, "%s/%s", tmp_root, name);
    CHECK(mkdir(dir, 0700) == 0);
}

/* The one prepared file in dir, into path; 0 if there is not exactly one. */
static int the_file(const char *dir, char *path, size_t size)
{
    DIR *d = opendir(dir);
    int found = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n > 4 && strcmp(e->d_name + n - 4, ".bin") == 0) {
            snprintf(path, size, "%s/%s", dir, e->d_name);
            found++;
        }
    }
    if (d) {
        closedir(d);
    }
    return found == 1;
}

/* Prepare into a fresh cache folder tmp_root/name with extra and, unless extra sets its own
 * train_limit, SMALL; path of the file. */
static int prep(const char *name, const char *extra, char *path, size_t size)
{
    char dir[512], yaml[2048];
    fresh_dir(name, dir, sizeof dir);
    extra = extra ? extra : "";
    snprintf(yaml, sizeof yaml, "cache: %s\n%s%s", dir,
             strstr(extra, "train_limit") ? "test_limit: 50\n" : SMALL, extra);
    mpsl_error err;
    int rc = prepare_with(yaml, &err);
    CHECK(rc == MPSL_OK);
    if (rc != MPSL_OK) {
        fprintf(stderr, "prepare %s: %s\n", name, err.msg);
        return 0;
    }
    int ok = the_file(dir, path, size);
    CHECK(ok);
    return ok;
}

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        *len = 0;
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)n + 1);
    *len = fread(b, 1, (size_t)n, f);
    fclose(f);
    return b;
}

static void spit(const char *path, const unsigned char *b, size_t len)
{
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (f) {
        CHECK(fwrite(b, 1, len, f) == len);
        fclose(f);
    }
}

static int same_file(const char *a, const char *b)
{
    size_t na, nb;
    unsigned char *x = slurp(a, &na), *y = slurp(b, &nb);
    int same = x && y && na == nb && memcmp(x, y, na) == 0;
    free(x);
    free(y);
    return same;
}

/* Offsets in the payload of a file with SMALL sizes, M = F = 64, no text. */
enum { NTR = 200, NTE = 50, MF = 64 * 64 };
#define OFF_LABELS(sp) (256 + (sp) * (size_t)NTR * (4 + 784 + 8 + MF))
#define OFF_IMAGES(sp) (OFF_LABELS(sp) + (size_t)((sp) ? NTE : NTR) * 4)
#define OFF_SPECQ(sp) (OFF_IMAGES(sp) + (size_t)((sp) ? NTE : NTR) * 784)
#define OFF_SPEC(sp) (OFF_SPECQ(sp) + (size_t)((sp) ? NTE : NTR) * 8)

/* A batch for up to n samples of the given info. */
typedef struct tbatch {
    mpsl_batch b;
    float *img, *aud;
    int32_t *txt, *lab;
} tbatch;

static void tbatch_init(tbatch *t, const mpsl_dataset_info *info, int n)
{
    memset(t, 0, sizeof *t);
    int64_t a = info->modality[1].shape[1] * info->modality[1].shape[2];
    t->img = calloc((size_t)n * 784, sizeof(float));
    t->aud = calloc((size_t)(n * a), sizeof(float));
    t->lab = calloc((size_t)n, sizeof(int32_t));
    t->b.modality[0].data = t->img;
    t->b.modality[0].dtype = MPSL_F32;
    t->b.modality[1].data = t->aud;
    t->b.modality[1].dtype = MPSL_F32;
    if (info->n_modalities == 3) {
        t->txt = calloc((size_t)(n * info->modality[2].shape[0]), sizeof(int32_t));
        t->b.modality[2].data = t->txt;
        t->b.modality[2].dtype = MPSL_I32;
    }
    t->b.labels = t->lab;
}

static void tbatch_free(tbatch *t)
{
    free(t->img);
    free(t->aud);
    free(t->txt);
    free(t->lab);
}

/* ------------------------------------------------------------ pieces */

static void test_resample(void)
{
    const mpsl_host *h = host_services();
    enum { N = 22050 };
    float *in = malloc(N * sizeof *in);
    for (int i = 0; i < N; i++) {
        in[i] = 0.5f;
    }
    float *out = NULL;
    int64_t m = 0;
    CHECK(avf_resample(h, in, N, 22050, 16000, &out, &m) == MPSL_OK);
    CHECK(m == 16000);
    double worst = 0;
    for (int64_t j = 100; j < m - 100; j++) {
        worst = fmax(worst, fabs(out[j] - 0.5));
    }
    CHECK(worst < 1e-5);
    h->free(out);
    /* a 1 kHz sine comes out as the same sine at 16 kHz; a 10 kHz one (above the new Nyquist
     * frequency) is filtered out instead of folding back to 6 kHz */
    for (int i = 0; i < N; i++) {
        in[i] = (float)sin(2 * M_PI * 1000.0 * i / 22050.0);
    }
    CHECK(avf_resample(h, in, N, 22050, 16000, &out, &m) == MPSL_OK);
    worst = 0;
    for (int64_t j = 100; j < m - 100; j++) {
        worst = fmax(worst, fabs(out[j] - sin(2 * M_PI * 1000.0 * (double)j / 16000.0)));
    }
    CHECK(worst < 5e-3);
    h->free(out);
    for (int i = 0; i < N; i++) {
        in[i] = (float)sin(2 * M_PI * 10000.0 * i / 22050.0);
    }
    CHECK(avf_resample(h, in, N, 22050, 16000, &out, &m) == MPSL_OK);
    worst = 0;
    for (int64_t j = 100; j < m - 100; j++) {
        worst = fmax(worst, fabs(out[j]));
    }
    CHECK(worst < 0.01);
    h->free(out);
    free(in);
}

/* The audio of one sample: with no noise, the frames outside the word are exact silence and
 * the word's frames carry energy; with noise, the word's frames stand well above the noise
 * floor; the same sample comes out the same twice, another index differently. */
static void test_audio(void)
{
    const mpsl_host *h = host_services();
    mpsl_error err;
    void *pair = make_params("voices: 2\naudio_noise: 0\n");
    avf_params p = *(avf_params *)((void **)pair)[0];
    avf_audio a;
    int rc = avf_audio_create(h, &p, &a, &err);
    CHECK(rc == MPSL_OK);
    if (rc != MPSL_OK) {
        fprintf(stderr, "%s\n", err.msg);
        free_params(pair);
        return;
    }
    CHECK(a.pool.n == 10 * 2 * 3 * 3);
    CHECK(strlen(a.pool.espeak_version) > 0);
    for (int u = 0; u < a.pool.n; u++) {
        /* every word is between 0.2 and 1.3 s */
        CHECK(a.pool.utt[u].len > 3200 && a.pool.utt[u].len < 20800);
    }
    enum { M = 64, F = 64 };
    float *wave = malloc((size_t)a.window * sizeof *wave);
    float x[M * F], y[M * F];
    /* class 8, "bag": short enough to leave silence at both ends */
    avf_audio_sample(&a, 0, 3, 8, wave, x);
    int edge_silent = 1;
    double centre = 0;
    for (int b = 0; b < M; b++) {
        for (int t = 0; t < 3; t++) {
            edge_silent &= x[b * F + t] == logf(1e-6f) && x[b * F + F - 1 - t] == logf(1e-6f);
        }
        for (int t = 28; t < 36; t++) {
            centre += x[b * F + t] / (M * 8);
        }
    }
    CHECK(edge_silent);
    CHECK(centre > logf(1e-6f) + 5);
    avf_audio_sample(&a, 0, 3, 8, wave, y);
    CHECK(memcmp(x, y, sizeof x) == 0);
    avf_audio_sample(&a, 0, 4, 8, wave, y);
    CHECK(memcmp(x, y, sizeof x) != 0);

    /* with noise (0 dB): the word's frames hold clearly more energy than the noise floor */
    a.noise_std = 1.0f * AVF_WORD_RMS;
    double speech = 0, floor_ = 0;
    for (int i = 0; i < 20; i++) {
        avf_audio_sample(&a, 0, i, 8, wave, x);
        for (int b = 0; b < M; b++) {
            for (int t = 0; t < 3; t++) {
                floor_ += expf(x[b * F + t]) + expf(x[b * F + F - 1 - t]);
            }
            for (int t = 28; t < 36; t++) {
                speech += expf(x[b * F + t]);
            }
        }
    }
    double ratio = (speech / 8) / (floor_ / 6);
    fprintf(stderr, "speech frames / noise-only frames energy at 0 dB SNR: %.1f\n", ratio);
    CHECK(ratio > 2.0);
    free(wave);
    avf_audio_destroy(h, &a);
    free_params(pair);
}

static void test_text(void)
{
    const mpsl_host *h = host_services();
    int32_t t[32];
    char s[33];
    for (int i = 0; i < 20; i++) {
        avf_text_make(h, 7, 0, i, 9, 0.0, 32, t);
        for (int k = 0; k < 32; k++) {
            s[k] = (char)t[k];
        }
        s[32] = '\0';
        CHECK_CONTAINS(s, "ankle boot");
        avf_text_make(h, 7, 0, i, 9, 1.0, 32, t);
        for (int k = 0; k < 32; k++) {
            s[k] = (char)t[k];
        }
        CHECK_CONTAINS(s, "item");
        CHECK(strstr(s, "boot") == NULL);
        CHECK(t[31] == 0); /* every template fits in 32 bytes with padding */
    }
    avf_text_make(h, 7, 0, 0, 9, 0.0, 8, t); /* cut at L, no terminator needed */
    CHECK(t[7] != 0);
}

/* ------------------------------------------------------------ the module */

static void test_descriptor(void)
{
    const mpsl_plugin_desc *d = lp.desc;
    CHECK(strcmp(d->name, "av_fashion_mnist") == 0);
    CHECK(d->kind == MPSL_KIND_DATASET);
    CHECK(d->n_params == 15);
    CHECK(((const mpsl_dataset_api *)d->api)->prepare != NULL);
    void *buf = calloc(1, d->params_size);
    mpsl_error err = {{0}};
    cfg_node *map = cfg_parse_string("voices: 13\n", "test.yaml", &err);
    CHECK(cfg_parse_params(map, d->params, d->n_params, buf, d->params_size, "data.dataset",
                           NULL, &err) != MPSL_OK);
    cfg_free(map);
    map = cfg_parse_string("mel_bins: 200\n", "test.yaml", &err);
    CHECK(cfg_parse_params(map, d->params, d->n_params, buf, d->params_size, "data.dataset",
                           NULL, &err) != MPSL_OK);
    cfg_free(map);
    CHECK(cfg_parse_params(NULL, d->params, d->n_params, buf, d->params_size, "data.dataset",
                           NULL, &err) == MPSL_OK);
    const avf_params *p = buf;
    CHECK(strcmp(p->dir, REAL_DIR) == 0 && p->voices == 6 && p->mel_bins == 64 &&
          p->frames == 64 && !p->text && p->prepare_on_open && p->seed == 0);
    free(buf);
}

/* The main file A: shapes, labels, fill, idempotence, determinism, limits, seeds. */
static void test_prepared(char *file_a, size_t size)
{
    if (!prep("a", NULL, file_a, size)) {
        return;
    }
    char dir[512], yaml[1024];
    snprintf(dir, sizeof dir, "%s/a", tmp_root);
    snprintf(yaml, sizeof yaml, "cache: %s\n" SMALL "prepare_on_open: false\n", dir);
    struct stat st0, st1;
    CHECK(stat(file_a, &st0) == 0);
    CHECK((size_t)st0.st_size == 256 + (size_t)(NTR + NTE) * (4 + 784 + 8 + MF));

    /* idempotent: the second prepare keeps the verified file (same inode, same mtime) */
    mpsl_error err;
    sleep(1);
    CHECK(prepare_with(yaml, &err) == MPSL_OK);
    CHECK(stat(file_a, &st1) == 0);
    CHECK(st0.st_ino == st1.st_ino && st0.st_mtim.tv_sec == st1.st_mtim.tv_sec &&
          st0.st_mtim.tv_nsec == st1.st_mtim.tv_nsec);

    mpsl_dataset_info info;
    void *state;
    int rc = open_with(yaml, &info, &state, &err);
    CHECK(rc == MPSL_OK);
    if (rc != MPSL_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return;
    }
    CHECK(info.n_train == NTR && info.n_test == NTE && info.n_classes == 10);
    CHECK(info.n_modalities == 2);
    CHECK(strcmp(info.modality[0].name, "image") == 0 && info.modality[0].dtype == MPSL_F32 &&
          info.modality[0].ndim == 3 && info.modality[0].shape[0] == 1 &&
          info.modality[0].shape[1] == 28 && info.modality[0].shape[2] == 28);
    CHECK(strcmp(info.modality[1].name, "audio") == 0 && info.modality[1].dtype == MPSL_F32 &&
          info.modality[1].ndim == 3 && info.modality[1].shape[0] == 1 &&
          info.modality[1].shape[1] == 64 && info.modality[1].shape[2] == 64);

    /* labels: the first 200/50 of the real files, every class present */
    const int32_t *tr = api->labels(state, MPSL_SPLIT_TRAIN);
    const int32_t *te = api->labels(state, MPSL_SPLIT_TEST);
    int32_t *real = NULL;
    uint8_t *img = NULL;
    int64_t n_all = 0, n_img = 0;
    CHECK(avf_idx_load(host_services(), REAL_DIR, "train", "train_limit", 5, &real, &n_all,
                       &img, &n_img, &err) == MPSL_OK);
    CHECK(n_all == 60000 && n_img == 5);
    CHECK(real && memcmp(real, tr, NTR * sizeof *tr) == 0);
    host_services()->free(real);
    int hist[10] = {0}, in_range = 1;
    for (int i = 0; i < NTR; i++) {
        in_range &= tr[i] >= 0 && tr[i] < 10;
        hist[tr[i] >= 0 && tr[i] < 10 ? tr[i] : 0]++;
    }
    for (int i = 0; i < NTE; i++) {
        in_range &= te[i] >= 0 && te[i] < 10;
    }
    CHECK(in_range);
    for (int c = 0; c < 10; c++) {
        CHECK(hist[c] >= 8 && hist[c] <= 40);
    }
    CHECK(tr[0] == 9 && te[0] == 9);

    /* fill: labels, pixels = raw/255 + fixed noise of std image_noise, audio = dequantised
     * spectrogram with about zero mean and unit std; batch n and shapes are the host's */
    tbatch t;
    tbatch_init(&t, &info, 4);
    const int64_t idx[4] = {0, 199, 5, 0};
    CHECK(api->fill(state, MPSL_SPLIT_TRAIN, idx, 4, &t.b, &err) == MPSL_OK);
    CHECK(t.b.n == 0 && t.b.modality[0].ndim == 0 && t.b.modality[1].ndim == 0);
    CHECK(t.lab[0] == tr[0] && t.lab[1] == tr[199] && t.lab[2] == tr[5]);
    CHECK(memcmp(t.img, t.img + 3 * 784, 784 * sizeof(float)) == 0); /* same sample: same noise */
    CHECK(memcmp(t.aud, t.aud + 3 * MF, MF * sizeof(float)) == 0);
    double dn = 0, dn2 = 0;
    for (int k = 0; k < 784; k++) {
        double e = t.img[k] - img[k] / 255.0;
        dn += e;
        dn2 += e * e;
    }
    CHECK_CLOSE(dn / 784, 0.0, 0.08);
    CHECK_CLOSE(sqrt(dn2 / 784), 0.6, 0.08);
    host_services()->free(img);
    double am = 0, am2 = 0;
    for (int k = 0; k < 3 * MF; k++) {
        am += t.aud[k];
        am2 += (double)t.aud[k] * t.aud[k];
    }
    am /= 3 * MF;
    fprintf(stderr, "audio of 3 samples: mean %.3f, std %.3f\n", am, sqrt(am2 / (3 * MF) - am * am));
    CHECK(fabs(am) < 0.5 && fabs(sqrt(am2 / (3 * MF) - am * am) - 1.0) < 0.5);

    /* refusals leave the batch alone */
    const int64_t bad[2] = {1, 200};
    t.b.n = 77;
    CHECK(api->fill(state, MPSL_SPLIT_TRAIN, bad, 2, &t.b, &err) == MPSL_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "sample index 200 (batch position 1) is out of range for the train "
                            "split (200 samples)");
    CHECK(t.b.n == 77);
    const int64_t neg[1] = {-1}, fifty[1] = {50};
    CHECK(api->fill(state, MPSL_SPLIT_TEST, neg, 1, &t.b, &err) == MPSL_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "sample index -1");
    CHECK(api->fill(state, MPSL_SPLIT_TEST, fifty, 1, &t.b, &err) == MPSL_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "test split (50 samples)");
    CHECK(api->fill(state, (mpsl_split)2, fifty, 1, &t.b, &err) == MPSL_ERR_INVALID);
    t.b.modality[1].dtype = MPSL_I32;
    CHECK(api->fill(state, MPSL_SPLIT_TEST, neg, 0, &t.b, &err) == MPSL_ERR_INTERNAL);
    CHECK_CONTAINS(err.msg, "audio");
    t.b.modality[1].dtype = MPSL_F32;

    /* The stored spectrogram is the float pipeline's output up to half a quantisation step. */
    {
        avf_data d;
        CHECK(avf_file_read(host_services(), file_a, &d, 0, &err) == MPSL_OK);
        void *pair = make_params("audio_noise: 4.0\n");
        avf_params p = *(avf_params *)((void **)pair)[0];
        avf_audio a;
        CHECK(avf_audio_create(host_services(), &p, &a, &err) == MPSL_OK);
        float *wave = malloc((size_t)a.window * sizeof *wave), lm[MF];
        double worst = 0;
        for (int i = 0; i < 10; i++) {
            avf_audio_sample(&a, 1, i, d.split[1].labels[i], wave, lm);
            float lo = d.split[1].spec_q[2 * i], step = d.split[1].spec_q[2 * i + 1];
            for (int k = 0; k < MF; k++) {
                double want = (lm[k] - d.hdr.spec_mean) / d.hdr.spec_std;
                double got = lo + d.split[1].spec[(size_t)i * MF + k] * step;
                worst = fmax(worst, fabs(got - want) / step);
            }
        }
        fprintf(stderr, "worst quantisation error: %.3f steps (spectrogram mean %.3f, std %.3f, "
                        "espeak-ng %s)\n",
                worst, d.hdr.spec_mean, d.hdr.spec_std, d.hdr.espeak_version);
        CHECK(worst <= 0.5001);
        free(wave);
        avf_audio_destroy(host_services(), &a);
        free_params(pair);
        avf_data_free(host_services(), &d);
    }
    tbatch_free(&t);
    api->close(state);

    /* Determinism: the same parameters on one thread give the same bytes. */
    char path[1024];
    setenv("MPSL_THREADS", "1", 1);
    if (prep("a_again", NULL, path, sizeof path)) {
        CHECK(same_file(file_a, path));
    }
    unsetenv("MPSL_THREADS");

    /* Another seed: same labels and pixels, other audio. */
    size_t na, nb;
    if (prep("seed1", "seed: 1\n", path, sizeof path)) {
        unsigned char *x = slurp(file_a, &na), *y = slurp(path, &nb);
        CHECK(na == nb);
        if (x && y && na == nb) {
            CHECK(memcmp(x + OFF_LABELS(0), y + OFF_LABELS(0), OFF_SPECQ(0) - OFF_LABELS(0)) ==
                  0);
            size_t differ = 0;
            for (size_t k = OFF_SPEC(0); k < OFF_SPEC(0) + (size_t)NTR * MF; k++) {
                differ += x[k] != y[k];
            }
            CHECK(differ > (size_t)NTR * MF / 2);
        }
        free(x);
        free(y);
    }

    /* Limits: 300 train samples instead of 200: the first 200 are byte for byte the same
     * (audio, quantisation and the normalisation computed on train samples 0..999). */
    if (prep("limit300", "train_limit: 300\n", path, sizeof path)) {
        unsigned char *x = slurp(file_a, &na), *y = slurp(path, &nb);
        size_t y_spec = 256 + 300 * (size_t)(4 + 784) + 300 * 8;
        if (x && y) {
            CHECK(memcmp(x + OFF_SPECQ(0), y + 256 + 300 * (size_t)(4 + 784), NTR * 8) == 0);
            CHECK(memcmp(x + OFF_SPEC(0), y + y_spec, (size_t)NTR * MF) == 0);
            CHECK(memcmp(x + 152, y + 152, 16) == 0); /* spectrogram mean and std */
        }
        free(x);
        free(y);
    }
}

static void test_text_modality(void)
{
    char path[1024], dir[512], yaml[1024];
    if (!prep("text", "text: true\ntext_noise: 0.25\n", path, sizeof path)) {
        return;
    }
    snprintf(dir, sizeof dir, "%s/text", tmp_root);
    snprintf(yaml, sizeof yaml, "cache: %s\n" SMALL "text: true\ntext_noise: 0.25\n", dir);
    mpsl_dataset_info info;
    void *state;
    mpsl_error err;
    CHECK(open_with(yaml, &info, &state, &err) == MPSL_OK);
    if (!state) {
        fprintf(stderr, "%s\n", err.msg);
        return;
    }
    CHECK(info.n_modalities == 3 && strcmp(info.modality[2].name, "text") == 0 &&
          info.modality[2].dtype == MPSL_I32 && info.modality[2].ndim == 1 &&
          info.modality[2].shape[0] == 32);
    tbatch t;
    tbatch_init(&t, &info, NTR);
    int64_t idx[NTR];
    for (int i = 0; i < NTR; i++) {
        idx[i] = i;
    }
    CHECK(api->fill(state, MPSL_SPLIT_TRAIN, idx, NTR, &t.b, &err) == MPSL_OK);
    int named = 0, masked = 0;
    for (int i = 0; i < NTR; i++) {
        char s[33];
        for (int k = 0; k < 32; k++) {
            s[k] = (char)t.txt[i * 32 + k];
        }
        s[32] = '\0';
        named += strstr(s, avf_written[t.lab[i]]) != NULL;
        masked += strstr(s, "item") != NULL;
    }
    fprintf(stderr, "texts: %d name their class, %d say \"item\"\n", named, masked);
    CHECK(named + masked == NTR);
    CHECK(masked > 25 && masked < 75);
    tbatch_free(&t);
    api->close(state);
}

/* Copies of file A, each damaged one way, must be refused naming the file, even with
 * prepare_on_open (regenerating would hide the damage); prepare() replaces a damaged file. */
static void test_refusals(const char *file_a)
{
    size_t len;
    unsigned char *good = slurp(file_a, &len);
    CHECK(good != NULL);
    if (!good) {
        return;
    }
    const char *base = strrchr(file_a, '/') + 1;
    typedef struct {
        const char *name;
        size_t at;    /* byte to change (or new length for truncation) */
        int how;      /* 0 xor 0xff, 1 truncate to `at`, 2 append bytes, 3 set u32 at `at` */
        uint32_t v;
        const char *needle;
    } damage;
    const damage cases[] = {
        {"header_cut", 100, 1, 0, "is truncated: 100 bytes, shorter than its 256-byte header"},
        {"payload_cut", len - 1000, 1, 0, "is truncated: its header's sizes"},
        {"longer", 0, 2, 0, "is longer than its header says"},
        {"payload_flip", OFF_SPEC(1) + 1234, 0, 0, "is corrupt: CRC32"},
        {"header_flip", 153, 0, 0, "is corrupt: CRC32"},
        {"magic", 3, 0, 0, "is not a prepared av_fashion_mnist file (magic"},
        {"version2", 8, 3, 2, "has format version 2, newer than this plugin reads (1)"},
        {"version0", 8, 3, 0, "format version 0"},
        {"n_train", 24, 3, 201, "does not match its own header: its sizes (n_train 201"},
        {"mel_bins", 44, 3, 32, "does not match its own header"},
        {"side", 40, 3, 32, "impossible sizes"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const damage *dm = &cases[c];
        char dir[512], path[1200], yaml[1024];
        fresh_dir(dm->name, dir, sizeof dir);
        snprintf(path, sizeof path, "%s/%s", dir, base);
        unsigned char *b = malloc(len + 10);
        memcpy(b, good, len);
        size_t n = len;
        if (dm->how == 0) {
            b[dm->at] ^= 0xff;
        } else if (dm->how == 1) {
            n = dm->at;
        } else if (dm->how == 2) {
            memset(b + len, 0, 10);
            n = len + 10;
        } else {
            for (int i = 0; i < 4; i++) {
                b[dm->at + i] = (unsigned char)(dm->v >> (8 * i));
            }
        }
        spit(path, b, n);
        free(b);
        snprintf(yaml, sizeof yaml, "cache: %s\n" SMALL, dir);
        mpsl_dataset_info info;
        void *state;
        mpsl_error err;
        int rc = open_with(yaml, &info, &state, &err);
        CHECK(rc != MPSL_OK && state == NULL);
        fprintf(stderr, "%s: refused as expected: %s\n", dm->name, err.msg);
        CHECK_CONTAINS(err.msg, path);
        CHECK_CONTAINS(err.msg, dm->needle);
        if (rc == MPSL_OK) {
            api->close(state);
        }
        if (c == 3) {
            /* prepare() does not keep a damaged file: it generates it again */
            CHECK(prepare_with(yaml, &err) == MPSL_OK);
            CHECK(same_file(path, file_a));
        }
    }
    free(good);
}

/* Missing files and parameters that do not match the file's. */
static void test_mismatch_and_missing(const char *file_a)
{
    char dir[512], yaml[2048];
    mpsl_dataset_info info;
    void *state;
    mpsl_error err;

    /* no prepared file and prepare_on_open false */
    fresh_dir("seed2", dir, sizeof dir);
    snprintf(yaml, sizeof yaml, "cache: %s\n" SMALL "seed: 2\nprepare_on_open: false\n", dir);
    CHECK(open_with(yaml, &info, &state, &err) != MPSL_OK);
    CHECK_CONTAINS(err.msg, "does not exist: run `mpsl prepare`");
    CHECK_CONTAINS(err.msg, dir);
    CHECK_CONTAINS(err.msg, "test.yaml:1:1");
    /* ... then file A (seed 0) copied to seed 2's name: refused, naming the difference */
    const char *p0 = strstr(err.msg, dir), *p1 = p0 ? strstr(p0, ".bin") : NULL;
    char path[1200] = "";
    if (p0 && p1) {
        snprintf(path, sizeof path, "%.*s", (int)(p1 + 4 - p0), p0);
        size_t len;
        unsigned char *b = slurp(file_a, &len);
        spit(path, b, len);
        free(b);
        CHECK(open_with(yaml, &info, &state, &err) == MPSL_ERR_INVALID);
        fprintf(stderr, "refused as expected: %s\n", err.msg);
        CHECK_CONTAINS(err.msg, path);
        CHECK_CONTAINS(err.msg, "seed = 0 in the file, 2 requested");
        CHECK_CONTAINS(err.msg, "run `mpsl prepare`");
        /* with prepare_on_open (the default) it is generated again, for seed 2 */
        snprintf(yaml, sizeof yaml, "cache: %s\n" SMALL "seed: 2\n", dir);
        CHECK(open_with(yaml, &info, &state, &err) == MPSL_OK);
        if (state) {
            api->close(state);
        }
        avf_header hd;
        CHECK(avf_file_read_header(host_services(), path, &hd, &err) == MPSL_OK);
        CHECK(hd.gen.seed == 2);
    }

    /* Fashion-MNIST missing */
    snprintf(yaml, sizeof yaml, "cache: %s\ndir: %s/nowhere\n" SMALL, dir, tmp_root);
    CHECK(prepare_with(yaml, &err) != MPSL_OK);
    CHECK_CONTAINS(err.msg, "nowhere/train-images-idx3-ubyte.gz");
    CHECK_CONTAINS(err.msg, "apt-get install dataset-fashion-mnist");
    /* espeak-ng data missing */
    snprintf(yaml, sizeof yaml, "cache: %s\nespeak_data: %s/no-espeak\n" SMALL, dir, tmp_root);
    CHECK(open_with(yaml, &info, &state, &err) != MPSL_OK);
    fprintf(stderr, "refused as expected: %s\n", err.msg);
    CHECK_CONTAINS(err.msg, "no-espeak/phontab");
    CHECK_CONTAINS(err.msg, "apt-get install espeak-ng-data");
    /* mel_bins and frames other than the file's are a mismatch too (header check) */
    avf_header hd;
    CHECK(avf_file_read_header(host_services(), file_a, &hd, &err) == MPSL_OK);
    avf_gen g = hd.gen;
    char what[512];
    CHECK(avf_gen_compare(&hd, &g, what, sizeof what) == 0);
    g.frames = 100;
    CHECK(avf_gen_compare(&hd, &g, what, sizeof what) == 1);
    CHECK_CONTAINS(what, "frames = 64 in the file, 100 requested");
    g = hd.gen;
    g.audio_noise = 1.5;
    CHECK(avf_gen_compare(&hd, &g, what, sizeof what) == 1);
    CHECK_CONTAINS(what, "audio_noise = 4 in the file, 1.5 requested");
}

static void rm_tree(const char *root)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd) != 0) {
        fprintf(stderr, "could not remove %s\n", root);
    }
}

int main(int argc, char **argv)
{
    const char *so = argc > 1 ? argv[1] : getenv("AVF_SO");
    if (!so) {
        fprintf(stderr, "usage: %s /path/to/av_fashion_mnist.so\n", argv[0]);
        return 1;
    }
    mpsl_error err = {{0}};
    if (plugin_load(so, MPSL_KIND_DATASET, &lp, &err) != MPSL_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    api = lp.desc->api;
    test_resample();
    test_text();
    test_descriptor();
    if (access(REAL_DIR "/train-images-idx3-ubyte.gz", R_OK) != 0) {
        fprintf(stderr, "SKIP: %s missing (apt-get install dataset-fashion-mnist)\n", REAL_DIR);
        plugin_unload(&lp);
        return check_exit();
    }
    const char *tmp = getenv("TMPDIR");
    snprintf(tmp_root, sizeof tmp_root, "%s/mpsl-avf-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(tmp_root)) {
        fprintf(stderr, "mkdtemp %s: %s\n", tmp_root, strerror(errno));
        return 1;
    }
    test_audio();
    char file_a[1024] = "";
    test_prepared(file_a, sizeof file_a);
    if (file_a[0]) {
        test_text_modality();
        test_refusals(file_a);
        test_mismatch_and_missing(file_a);
    }
    rm_tree(tmp_root);
    plugin_unload(&lp);
    return check_exit();
}
