/* generate.c: the preparation itself, from the raw inputs (Fashion-MNIST files, espeak-ng) to a
 * filled avf_data: the utterance pool, per-sample audio, log-mels normalised and quantised,
 * texts. Samples are computed in parallel; each depends only on (seed, split, index), so the
 * result is the same for any number of threads. */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "avf.h"

int avf_threads(void)
{
    const char *env = getenv("MPSL_THREADS");
    if (env && *env) {
        char *end;
        long v = strtol(env, &end, 10);
        if (*end == '\0' && v >= 1) {
            return v > 8 ? 8 : (int)v;
        }
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 8 ? 8 : (int)n;
}

int avf_audio_create(const mpsl_host *h, const avf_params *p, avf_audio *a, mpsl_error *err)
{
    memset(a, 0, sizeof *a);
    a->h = h;
    int rc = h->mel->create((int)p->mel_bins, &a->mel, err);
    if (rc != MPSL_OK) {
        mpsl_error why = *err; /* error_set must not read the buffer it writes */
        h->error_set(err, "av_fashion_mnist: %s", why.msg);
    } else {
        rc = avf_pool_create(h, (int)p->voices, p->espeak_data, &a->pool, err);
    }
    if (rc != MPSL_OK) {
        avf_audio_destroy(h, a);
        return rc;
    }
    a->seed = (uint64_t)p->seed;
    a->noise_std = (float)(p->audio_noise * AVF_WORD_RMS);
    a->window = h->mel->window((int)p->frames);
    a->mel_bins = (int)p->mel_bins;
    a->frames = (int)p->frames;
    return MPSL_OK;
}

void avf_audio_destroy(const mpsl_host *h, avf_audio *a)
{
    avf_pool_destroy(h, &a->pool);
    h->mel->destroy(a->mel);
    memset(a, 0, sizeof *a);
}

void avf_audio_sample(const avf_audio *a, int split, int64_t index, int cls, float *wave,
                      float *out)
{
    const mpsl_rng_api *rng = a->h->rng;
    mpsl_rng r;
    rng->seed_sample(&r, a->seed, split, index, AVF_STREAM_AUDIO);
    int v = (int)rng->below(&r, a->pool.voices);
    int rt = (int)rng->below(&r, AVF_N_RATES);
    int pt = (int)rng->below(&r, AVF_N_PITCHES);
    const avf_utt *u = &a->pool.utt[avf_pool_index(a->pool.voices, cls, v, rt, pt)];
    const int64_t L = a->window, W = u->len;
    int64_t slack = (L > W ? L - W : W - L) / 2;
    int64_t S = slack < AVF_MAX_SHIFT ? slack : AVF_MAX_SHIFT;
    int64_t shift = rng->below(&r, 2 * S + 1) - S;
    int64_t off = (L - W) / 2 + shift; /* where the word starts in the window; < 0: cropped */
    for (int64_t n = 0; n < L; n++) {
        int64_t k = n - off;
        wave[n] = (k >= 0 && k < W ? u->wave[k] : 0.0f) + a->noise_std * rng->normal_f32(&r);
    }
    /* Cannot fail: frames >= 16 (the parameter's minimum) and the bank exists. */
    a->h->mel->compute(a->mel, wave, a->frames, out);
}

/* ------------------------------------------------------------------ parallel passes */

typedef struct avf_job {
    const avf_audio *audio;
    const mpsl_host *h;
    int split;
    int64_t n;
    const int32_t *labels;  /* (n) */
    /* stats pass: per-sample sums; main pass: quantised output */
    double *sum, *sum2;     /* (n) */
    double mean, inv_std;
    float *spec_q;          /* (n, 2) */
    uint8_t *spec;          /* (n, M*F) */
    int thread, threads;
    int failed;
} avf_job;

enum { AVF_CHUNK = 32 };

static void *avf_job_run(void *arg)
{
    avf_job *j = arg;
    const avf_audio *a = j->audio;
    const int64_t MF = (int64_t)a->mel_bins * a->frames;
    float *wave = j->h->alloc((size_t)a->window * sizeof *wave);
    float *lm = j->h->alloc((size_t)MF * sizeof *lm);
    if (!wave || !lm) {
        j->failed = 1;
        goto done;
    }
    for (int64_t c0 = (int64_t)j->thread * AVF_CHUNK; c0 < j->n;
         c0 += (int64_t)j->threads * AVF_CHUNK) {
        int64_t c1 = c0 + AVF_CHUNK < j->n ? c0 + AVF_CHUNK : j->n;
        for (int64_t i = c0; i < c1; i++) {
            avf_audio_sample(a, j->split, i, j->labels[i], wave, lm);
            if (j->sum) {
                double s1 = 0.0, s2 = 0.0;
                for (int64_t k = 0; k < MF; k++) {
                    s1 += lm[k];
                    s2 += (double)lm[k] * lm[k];
                }
                j->sum[i] = s1;
                j->sum2[i] = s2;
                continue;
            }
            /* normalise, then quantise to uint8 over this sample's own range */
            float lo = INFINITY, hi = -INFINITY;
            for (int64_t k = 0; k < MF; k++) {
                lm[k] = (float)((lm[k] - j->mean) * j->inv_std);
                lo = lm[k] < lo ? lm[k] : lo;
                hi = lm[k] > hi ? lm[k] : hi;
            }
            float step = (hi - lo) / 255.0f;
            float inv = step > 0.0f ? 1.0f / step : 0.0f;
            uint8_t *q = j->spec + i * MF;
            for (int64_t k = 0; k < MF; k++) {
                long v = lrintf((lm[k] - lo) * inv);
                q[k] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
            j->spec_q[2 * i] = lo;
            j->spec_q[2 * i + 1] = step;
        }
    }
done:
    j->h->free(wave);
    j->h->free(lm);
    return NULL;
}

/* Run the pass described by proto on every sample with avf_threads() threads. */
static int avf_parallel(const mpsl_host *h, const avf_job *proto, mpsl_error *err)
{
    int T = avf_threads();
    avf_job jobs[8];
    pthread_t tid[8];
    int started[8] = {0};
    for (int t = 0; t < T; t++) {
        jobs[t] = *proto;
        jobs[t].thread = t;
        jobs[t].threads = T;
        if (t > 0) {
            started[t] = pthread_create(&tid[t], NULL, avf_job_run, &jobs[t]) == 0;
        }
    }
    /* The calling thread works too, and takes over the chunks of any thread that did not
     * start: re-run those jobs here. */
    avf_job_run(&jobs[0]);
    int failed = jobs[0].failed;
    for (int t = 1; t < T; t++) {
        if (started[t]) {
            pthread_join(tid[t], NULL);
        } else {
            avf_job_run(&jobs[t]);
        }
        failed |= jobs[t].failed;
    }
    if (failed) {
        h->error_set(err, "av_fashion_mnist: out of memory computing spectrograms");
        return MPSL_ERR_NOMEM;
    }
    return MPSL_OK;
}

static double avf_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int avf_generate(const mpsl_host *h, const avf_params *p, const avf_gen *gen, avf_data *d,
                 mpsl_error *err)
{
    static const char *const prefix[2] = {"train", "t10k"};
    static const char *const limit_key[2] = {"train_limit", "test_limit"};
    const int64_t limit[2] = {p->train_limit, p->test_limit};
    const char *dir = p->dir && p->dir[0] ? p->dir : AVF_DEFAULT_DIR;
    int32_t *all_labels[2] = {NULL, NULL};
    int64_t n_all[2] = {0, 0};
    double *sum = NULL, *sum2 = NULL;
    avf_audio audio;
    memset(&audio, 0, sizeof audio);
    memset(d, 0, sizeof *d);
    double t0 = avf_seconds();
    int rc = MPSL_OK;

    for (int sp = 0; sp < 2 && rc == MPSL_OK; sp++) {
        rc = avf_idx_load(h, dir, prefix[sp], limit_key[sp], limit[sp], &all_labels[sp],
                          &n_all[sp], &d->split[sp].images, &d->split[sp].n, err);
    }
    if (rc != MPSL_OK || (rc = avf_audio_create(h, p, &audio, err)) != MPSL_OK) {
        goto done;
    }
    double t_pool = avf_seconds();
    const int64_t MF = p->mel_bins * p->frames;

    /* Normalisation statistics over a fixed set of training samples. */
    int64_t n_stat = n_all[0] < AVF_STAT_SAMPLES ? n_all[0] : AVF_STAT_SAMPLES;
    sum = h->alloc((size_t)n_stat * sizeof *sum);
    sum2 = h->alloc((size_t)n_stat * sizeof *sum2);
    if (!sum || !sum2) {
        h->error_set(err, "av_fashion_mnist: out of memory");
        rc = MPSL_ERR_NOMEM;
        goto done;
    }
    avf_job job;
    memset(&job, 0, sizeof job);
    job.audio = &audio;
    job.h = h;
    job.split = MPSL_SPLIT_TRAIN;
    job.n = n_stat;
    job.labels = all_labels[0];
    job.sum = sum;
    job.sum2 = sum2;
    if ((rc = avf_parallel(h, &job, err)) != MPSL_OK) {
        goto done;
    }
    double s1 = 0.0, s2 = 0.0; /* summed in index order: the same for any thread count */
    for (int64_t i = 0; i < n_stat; i++) {
        s1 += sum[i];
        s2 += sum2[i];
    }
    double cnt = (double)n_stat * (double)MF;
    double mean = s1 / cnt, var = s2 / cnt - mean * mean;
    double std = var > 1e-12 ? sqrt(var) : 1.0;

    for (int sp = 0; sp < 2; sp++) {
        avf_split_data *s = &d->split[sp];
        int64_t n = s->n;
        s->labels = h->alloc((size_t)n * sizeof *s->labels);
        s->spec_q = h->alloc((size_t)n * 2 * sizeof *s->spec_q);
        s->spec = h->alloc((size_t)n * (size_t)MF);
        s->text = p->text ? h->alloc((size_t)n * (size_t)p->text_len * sizeof *s->text) : NULL;
        if (!s->labels || !s->spec_q || !s->spec || (p->text && !s->text)) {
            h->error_set(err, "av_fashion_mnist: out of memory for %lld samples",
                         (long long)n);
            rc = MPSL_ERR_NOMEM;
            goto done;
        }
        memcpy(s->labels, all_labels[sp], (size_t)n * sizeof *s->labels);
        memset(&job, 0, sizeof job);
        job.audio = &audio;
        job.h = h;
        job.split = sp;
        job.n = n;
        job.labels = s->labels;
        job.mean = mean;
        job.inv_std = 1.0 / std;
        job.spec_q = s->spec_q;
        job.spec = s->spec;
        if ((rc = avf_parallel(h, &job, err)) != MPSL_OK) {
            goto done;
        }
        for (int64_t i = 0; p->text && i < n; i++) {
            avf_text_make(h, (uint64_t)p->seed, sp, i, s->labels[i], p->text_noise,
                          (int)p->text_len, s->text + i * p->text_len);
        }
    }

    avf_header *hd = &d->hdr;
    hd->version = AVF_VERSION;
    hd->n[0] = d->split[0].n;
    hd->n[1] = d->split[1].n;
    hd->n_classes = AVF_CLASSES;
    hd->image_side = AVF_SIDE;
    hd->mel_bins = (uint32_t)p->mel_bins;
    hd->frames = (uint32_t)p->frames;
    hd->text_len = p->text ? (uint32_t)p->text_len : 0;
    hd->sample_rate = AVF_RATE;
    hd->n_fft = AVF_NFFT;
    hd->win = AVF_WIN;
    hd->hop = AVF_HOP;
    hd->n_rates = AVF_N_RATES;
    hd->n_pitches = AVF_N_PITCHES;
    hd->gen = *gen;
    hd->spec_mean = mean;
    hd->spec_std = std;
    memcpy(hd->espeak_version, audio.pool.espeak_version, sizeof hd->espeak_version);
    hd->payload_bytes = avf_payload_bytes(hd);
    h->log(MPSL_LOG_INFO,
           "av_fashion_mnist: generated %lld train + %lld test samples (%d utterances, %d "
           "threads): pool %.1f s, spectrograms %.1f s",
           (long long)hd->n[0], (long long)hd->n[1], audio.pool.n, avf_threads(), t_pool - t0,
           avf_seconds() - t_pool);
done:
    h->free(all_labels[0]);
    h->free(all_labels[1]);
    h->free(sum);
    h->free(sum2);
    avf_audio_destroy(h, &audio);
    if (rc != MPSL_OK) {
        avf_data_free(h, d);
    }
    return rc;
}
