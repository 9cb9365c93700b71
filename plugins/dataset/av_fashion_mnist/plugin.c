/* plugin.c: the av_fashion_mnist dataset plugin: parameters, the cache file's name and place,
 * prepare (generate once, atomically, idempotently), open (verify, regenerate when allowed),
 * labels, fill and the descriptor.
 *
 * Modalities: "image" f32 (1,28,28) = pixel/255 + N(0, image_noise^2), the noise fixed per
 * sample (drawn from (seed, split, index) at fill time, so image_noise needs no new file);
 * "audio" f32 (1,M,F) normalised log-mel of the spoken class name; "text" i32 (L) UTF-8 bytes
 * of a description, zero-padded (only with text: true). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../fashion_mnist_classes.h"
#include "avf.h"

_Static_assert(AVF_CLASSES == FMNIST_CLASSES, "one name per Fashion-MNIST class");

static const mpsl_param_spec avf_spec[] = {
    MPSL_PARAM_STRING(avf_params, dir, "dir", 0, AVF_DEFAULT_DIR,
                      "folder holding {train,t10k}-{images-idx3,labels-idx1}-ubyte.gz"),
    MPSL_PARAM_STRING(avf_params, cache, "cache", 0, "",
                      "folder of the prepared file (\"\": $XDG_CACHE_HOME/mpsl or "
                      "~/.cache/mpsl)"),
    MPSL_PARAM_INT(avf_params, train_limit, "train_limit", 0, 0, AVF_TRAIN_MAX, "0",
                   "only the first N training samples (0 = all 60000)"),
    MPSL_PARAM_INT(avf_params, test_limit, "test_limit", 0, 0, AVF_TEST_MAX, "0",
                   "only the first N test samples (0 = all 10000)"),
    MPSL_PARAM_INT(avf_params, seed, "seed", 0, 0, 9.0e15, "0",
                   "generation seed: voices, shifts, noise, texts"),
    MPSL_PARAM_INT(avf_params, voices, "voices", 0, 1, AVF_MAX_VOICES, "6",
                   "espeak-ng voices in the utterance pool (accent x male/female variant)"),
    MPSL_PARAM_FLOAT(avf_params, image_noise, "image_noise", 0, 0, 10, "0.6",
                     "std of Gaussian noise added to pixels/255 (fixed per sample)"),
    MPSL_PARAM_FLOAT(avf_params, audio_noise, "audio_noise", 0, 0, 100, "4.0",
                     "std of white noise on the waveform relative to the word's RMS "
                     "(SNR = -20 log10(audio_noise) dB)"),
    MPSL_PARAM_INT(avf_params, mel_bins, "mel_bins", 0, 8, 128, "64", "mel filters M"),
    MPSL_PARAM_INT(avf_params, frames, "frames", 0, 16, 1024, "64",
                   "spectrogram frames F (10 ms hop: 64 = 0.655 s)"),
    MPSL_PARAM_BOOL(avf_params, text, "text", "false",
                    "add a \"text\" modality: a short description of the item"),
    MPSL_PARAM_INT(avf_params, text_len, "text_len", 0, 8, 256, "32",
                   "text bytes per sample L (zero-padded, cut at L)"),
    MPSL_PARAM_FLOAT(avf_params, text_noise, "text_noise", 0, 0, 1, "0.5",
                     "probability that a description says \"item\" instead of the class name"),
    MPSL_PARAM_BOOL(avf_params, prepare_on_open, "prepare_on_open", "true",
                    "open() prepares the file when it is missing or made with other params"),
    MPSL_PARAM_STRING(avf_params, espeak_data, "espeak_data", 0, "",
                      "espeak-ng-data folder (\"\": espeak-ng's default)"),
};

typedef struct avf_state {
    const mpsl_host *h;
    avf_data d;
    uint64_t seed;
    float image_noise;
    int64_t MF, L;
} avf_state;

/* ------------------------------------------------------------------ parameters and paths */

/* params as given, or the defaults when the host passes none. */
static avf_params avf_resolve(const void *params)
{
    if (params) {
        return *(const avf_params *)params;
    }
    avf_params p = {AVF_DEFAULT_DIR, "", 0, 0, 0, 6, 0.6, 4.0, 64, 64, 0, 32, 0.5, 1, ""};
    return p;
}

static avf_gen avf_gen_of(const avf_params *p)
{
    avf_gen g;
    memset(&g, 0, sizeof g);
    g.seed = (uint64_t)p->seed;
    g.train_limit = p->train_limit;
    g.test_limit = p->test_limit;
    g.voices = (uint32_t)p->voices;
    g.mel_bins = (uint32_t)p->mel_bins;
    g.frames = (uint32_t)p->frames;
    g.audio_noise = p->audio_noise;
    g.text = p->text ? 1u : 0u;
    g.text_len = p->text ? (uint32_t)p->text_len : 0u; /* without text, no text setting counts */
    g.text_noise = p->text ? p->text_noise : 0.0;
    return g;
}

/* The cache folder: the cache param, $XDG_CACHE_HOME/mpsl or $HOME/.cache/mpsl. */
static int avf_cache_dir(const mpsl_host *h, const avf_params *p, const char *where, char *out,
                         size_t size, mpsl_error *err)
{
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    int n;
    if (p->cache && p->cache[0]) {
        n = snprintf(out, size, "%s", p->cache);
    } else if (xdg && xdg[0] == '/') {
        n = snprintf(out, size, "%s/mpsl", xdg);
    } else if (home && home[0]) {
        n = snprintf(out, size, "%s/.cache/mpsl", home);
    } else {
        h->error_set(err, "%s: av_fashion_mnist: neither XDG_CACHE_HOME nor HOME is set: set "
                          "cache to a folder for the prepared file",
                     where);
        return MPSL_ERR_INVALID;
    }
    if (n < 0 || (size_t)n >= size - 64) {
        h->error_set(err, "%s: av_fashion_mnist: the cache path is too long", where);
        return MPSL_ERR_INVALID;
    }
    return MPSL_OK;
}

/* <cache>/av_fmnist-<hash of the generation parameters and the source folder>.bin */
static int avf_file_path(const mpsl_host *h, const avf_params *p, const char *where, char *out,
                         size_t size, mpsl_error *err)
{
    char dir[4096];
    int rc = avf_cache_dir(h, p, where, dir, sizeof dir, err);
    if (rc != MPSL_OK) {
        return rc;
    }
    avf_gen g = avf_gen_of(p);
    char key[4600];
    int n = snprintf(key, sizeof key,
                     "av_fashion_mnist format %u dir=%s seed=%llu train_limit=%lld "
                     "test_limit=%lld voices=%u mel_bins=%u frames=%u audio_noise=%.17g "
                     "text=%u text_len=%u text_noise=%.17g",
                     AVF_VERSION, p->dir && p->dir[0] ? p->dir : AVF_DEFAULT_DIR,
                     (unsigned long long)g.seed, (long long)g.train_limit,
                     (long long)g.test_limit, g.voices, g.mel_bins, g.frames, g.audio_noise,
                     g.text, g.text_len, g.text_noise);
    snprintf(out, size, "%s/av_fmnist-%016llx.bin", dir,
             (unsigned long long)h->files->fnv1a64(key, (size_t)n));
    return MPSL_OK;
}

/* mkdir -p for the folder part of file. */
static int avf_mkdirs(const mpsl_host *h, const char *file, mpsl_error *err)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", file);
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir) {
        return MPSL_OK;
    }
    *slash = '\0';
    int rc = h->files->mkdir_p(dir, err);
    if (rc != MPSL_OK) {
        mpsl_error why = *err; /* error_set must not read the buffer it writes */
        h->error_set(err, "av_fashion_mnist: the cache folder: %s", why.msg);
    }
    return rc;
}

/* ------------------------------------------------------------------ prepare */

/* Generate and write path. */
static int avf_make(const mpsl_host *h, const avf_params *p, const char *path, mpsl_error *err)
{
    int rc = avf_mkdirs(h, path, err);
    if (rc != MPSL_OK) {
        return rc;
    }
    avf_gen g = avf_gen_of(p);
    avf_data d;
    if ((rc = avf_generate(h, p, &g, &d, err)) != MPSL_OK) {
        return rc;
    }
    rc = avf_file_write(h, path, &d, err);
    if (rc == MPSL_OK) {
        h->log(MPSL_LOG_INFO, "av_fashion_mnist: wrote %s (%.1f MB)", path,
               (double)(AVF_HEADER_BYTES + avf_payload_bytes(&d.hdr)) / 1e6);
    }
    avf_data_free(h, &d);
    return rc;
}

static int avf_prepare(const mpsl_host *h, const void *params, const char *where,
                       mpsl_error *err)
{
    avf_params p = avf_resolve(params);
    where = where ? where : "data.dataset";
    char path[4200];
    int rc = avf_file_path(h, &p, where, path, sizeof path, err);
    if (rc != MPSL_OK) {
        return rc;
    }
    if (access(path, F_OK) == 0) {
        /* Keep a file that verifies completely (header, sizes, CRC) and matches. */
        avf_data d;
        mpsl_error why;
        why.msg[0] = '\0';
        avf_gen g = avf_gen_of(&p);
        char diff[512];
        if (avf_file_read(h, path, &d, 1, &why) == MPSL_OK) {
            if (!avf_gen_compare(&d.hdr, &g, diff, sizeof diff)) {
                h->log(MPSL_LOG_INFO, "av_fashion_mnist: %s is already prepared; kept", path);
                return MPSL_OK;
            }
            h->log(MPSL_LOG_WARN, "av_fashion_mnist: %s was prepared with other parameters "
                                  "(%s); generating it again",
                   path, diff);
        } else {
            h->log(MPSL_LOG_WARN, "%s; generating it again", why.msg);
        }
    }
    return avf_make(h, &p, path, err);
}

/* ------------------------------------------------------------------ open, labels, fill */

static void avf_close(void *state)
{
    avf_state *s = state;
    if (!s) {
        return;
    }
    avf_data_free(s->h, &s->d);
    s->h->free(s);
}

static int avf_open(const mpsl_host *h, const void *params, const char *where,
                    mpsl_dataset_info *info, void **state, mpsl_error *err)
{
    *state = NULL;
    avf_params p = avf_resolve(params);
    where = where ? where : "data.dataset";
    char path[4200];
    int rc = avf_file_path(h, &p, where, path, sizeof path, err);
    if (rc != MPSL_OK) {
        return rc;
    }
    avf_gen g = avf_gen_of(&p);
    if (access(path, F_OK) != 0) {
        if (!p.prepare_on_open) {
            h->error_set(err, "%s: av_fashion_mnist: the prepared file %s does not exist: run "
                              "`mpsl prepare` on this experiment (or set prepare_on_open: true)",
                         where, path);
            return MPSL_ERR_IO;
        }
        h->log(MPSL_LOG_INFO, "av_fashion_mnist: preparing %s (once)", path);
        if ((rc = avf_make(h, &p, path, err)) != MPSL_OK) {
            return rc;
        }
    }
    avf_header hd;
    char diff[512];
    if ((rc = avf_file_read_header(h, path, &hd, err)) != MPSL_OK) {
        return rc;
    }
    if (avf_gen_compare(&hd, &g, diff, sizeof diff)) {
        if (!p.prepare_on_open) {
            h->error_set(err, "%s: av_fashion_mnist: %s was prepared with other parameters "
                              "(%s): run `mpsl prepare` to generate it again (or set "
                              "prepare_on_open: true)",
                         where, path, diff);
            return MPSL_ERR_INVALID;
        }
        h->log(MPSL_LOG_WARN, "av_fashion_mnist: %s was prepared with other parameters (%s); "
                              "generating it again",
               path, diff);
        if ((rc = avf_make(h, &p, path, err)) != MPSL_OK) {
            return rc;
        }
    }
    avf_state *s = h->alloc(sizeof *s);
    if (!s) {
        h->error_set(err, "av_fashion_mnist: out of memory");
        return MPSL_ERR_NOMEM;
    }
    s->h = h;
    if ((rc = avf_file_read(h, path, &s->d, 0, err)) != MPSL_OK) {
        h->free(s);
        return rc;
    }
    /* A file replaced between the header check and the read would show here. */
    if (avf_gen_compare(&s->d.hdr, &g, diff, sizeof diff)) {
        h->error_set(err, "%s: av_fashion_mnist: %s changed while it was opened (%s)", where,
                     path, diff);
        avf_close(s);
        return MPSL_ERR_INVALID;
    }
    s->seed = (uint64_t)p.seed;
    s->image_noise = (float)p.image_noise;
    s->MF = (int64_t)s->d.hdr.mel_bins * s->d.hdr.frames;
    s->L = s->d.hdr.text_len;

    memset(info, 0, sizeof *info);
    mpsl_modality_info *m = &info->modality[0];
    snprintf(m->name, sizeof m->name, "image");
    m->dtype = MPSL_F32;
    m->ndim = 3;
    m->shape[0] = 1;
    m->shape[1] = AVF_SIDE;
    m->shape[2] = AVF_SIDE;
    m = &info->modality[1];
    snprintf(m->name, sizeof m->name, "audio");
    m->dtype = MPSL_F32;
    m->ndim = 3;
    m->shape[0] = 1;
    m->shape[1] = s->d.hdr.mel_bins;
    m->shape[2] = s->d.hdr.frames;
    info->n_modalities = 2;
    if (s->L) {
        m = &info->modality[2];
        snprintf(m->name, sizeof m->name, "text");
        m->dtype = MPSL_I32;
        m->ndim = 1;
        m->shape[0] = s->L;
        info->n_modalities = 3;
    }
    info->n_classes = AVF_CLASSES;
    info->class_names = fmnist_class_names; /* static: valid beyond close() */
    info->n_train = s->d.split[0].n;
    info->n_test = s->d.split[1].n;
    h->log(MPSL_LOG_DEBUG, "av_fashion_mnist: %lld train and %lld test samples from %s",
           (long long)info->n_train, (long long)info->n_test, path);
    *state = s;
    return MPSL_OK;
}

static const int32_t *avf_labels(void *state, mpsl_split split)
{
    avf_state *s = state;
    if (!s || (split != MPSL_SPLIT_TRAIN && split != MPSL_SPLIT_TEST)) {
        return NULL;
    }
    return s->d.split[split].labels;
}

static int avf_fill(void *state, mpsl_split split, const int64_t *idx, int64_t n,
                    mpsl_batch *batch, mpsl_error *err)
{
    avf_state *s = state;
    const mpsl_host *h = s->h;
    if (split != MPSL_SPLIT_TRAIN && split != MPSL_SPLIT_TEST) {
        h->error_set(err, "av_fashion_mnist: unknown split %d", (int)split);
        return MPSL_ERR_INVALID;
    }
    const avf_split_data *sp = &s->d.split[split];
    const int n_mod = s->L ? 3 : 2;
    if (n < 0 || (n > 0 && !idx) || !batch || !batch->labels) {
        h->error_set(err, "av_fashion_mnist: fill() called without indices or batch buffers");
        return MPSL_ERR_INTERNAL;
    }
    for (int k = 0; k < n_mod; k++) {
        mpsl_dtype want = k == 2 ? MPSL_I32 : MPSL_F32;
        if (!batch->modality[k].data || batch->modality[k].dtype != want) {
            h->error_set(err, "av_fashion_mnist: the batch's %s tensor is missing or not %s",
                         k == 0 ? "image" : k == 1 ? "audio" : "text",
                         want == MPSL_F32 ? "float32" : "int32");
            return MPSL_ERR_INTERNAL;
        }
    }
    for (int64_t i = 0; i < n; i++) {
        if (idx[i] < 0 || idx[i] >= sp->n) {
            h->error_set(err, "av_fashion_mnist: sample index %lld (batch position %lld) is out "
                              "of range for the %s split (%lld samples)",
                         (long long)idx[i], (long long)i,
                         split == MPSL_SPLIT_TRAIN ? "train" : "test", (long long)sp->n);
            return MPSL_ERR_INVALID;
        }
    }
    float *img = batch->modality[0].data; /* (B,1,28,28) */
    float *aud = batch->modality[1].data; /* (B,1,M,F) */
    int32_t *txt = n_mod == 3 ? batch->modality[2].data : NULL; /* (B,L) */
    for (int64_t i = 0; i < n; i++) {
        const int64_t j = idx[i];
        const uint8_t *px = sp->images + j * AVF_PIXELS;
        float *o = img + i * AVF_PIXELS;
        if (s->image_noise > 0.0f) {
            mpsl_rng r;
            h->rng->seed_sample(&r, s->seed, split, j, AVF_STREAM_IMAGE);
            for (int k = 0; k < AVF_PIXELS; k++) {
                o[k] = (float)px[k] / 255.0f + s->image_noise * h->rng->normal_f32(&r);
            }
        } else {
            for (int k = 0; k < AVF_PIXELS; k++) {
                o[k] = (float)px[k] / 255.0f;
            }
        }
        const float lo = sp->spec_q[2 * j], step = sp->spec_q[2 * j + 1];
        const uint8_t *q = sp->spec + j * s->MF;
        float *a = aud + i * s->MF;
        for (int64_t k = 0; k < s->MF; k++) {
            a[k] = lo + (float)q[k] * step;
        }
        if (txt) {
            memcpy(txt + i * s->L, sp->text + j * s->L, (size_t)s->L * sizeof *txt);
        }
        batch->labels[i] = sp->labels[j];
    }
    return MPSL_OK; /* the host sets batch->n and the tensors' shapes */
}

static const mpsl_dataset_api avf_api = {
    sizeof(mpsl_dataset_api), avf_open, avf_close, avf_labels, avf_fill, avf_prepare,
};

MPSL_PLUGIN(MPSL_KIND_DATASET, "av_fashion_mnist", "1.0.0",
            "Fashion-MNIST images + their spoken class names (espeak-ng, log-mel) [+ text], "
            "10 classes",
            &avf_api, avf_params, avf_spec);
