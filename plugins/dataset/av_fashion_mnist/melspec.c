/* melspec.c: log-mel spectrograms at 16 kHz with FFTW (single precision).
 * Frame t covers samples [t*hop, t*hop + win) of the window, multiplied by a periodic Hann
 * window (as torch.hann_window), zero-padded to n_fft = 512; power spectrum |X_k|^2 of the
 * 257 bins; M triangular filters on the Slaney mel scale (librosa's default, htk=False:
 * linear below 1 kHz, 200/3 Hz per mel, logarithmic above), equally spaced in mel between
 * 20 Hz and 8 kHz, peak 1 (not area-normalised); log(mel + 1e-6). Slaney rather than HTK
 * because its linear low end keeps every filter at least one FFT bin (31.25 Hz) wide up to
 * M = 128; on the HTK scale filters below 100 Hz would cover no bin at all for M > 100.
 * No pre-emphasis, no dithering (the added noise plays that role). */
#include <math.h>
#include <pthread.h>
#include <string.h>

#include <fftw3.h>

#include "avf.h"

#define AVF_NBINS (AVF_NFFT / 2 + 1)

/* FFTW's planner is global and not thread-safe, and it keeps memory (its tables of codelets
 * and wisdom) after the plans are gone. The lock serialises planning; when the last of our
 * plans goes, fftwf_cleanup() hands that memory back, so that unloading the plugin leaks
 * nothing. mpsl has no other FFTW user; one that plans while ours live would be safe (no
 * cleanup then), one that holds plans across our last destroy would not. */
static pthread_mutex_t avf_fftw_lock = PTHREAD_MUTEX_INITIALIZER;
static int avf_fftw_plans;

struct avf_mel {
    int mel_bins, frames;
    float *filters;          /* (M, AVF_NBINS) */
    int *lo, *hi;            /* (M) each filter's first and last non-zero bin */
    float window[AVF_WIN];
    fftwf_plan plan;
};

struct avf_mel_scratch {
    float *in;               /* (AVF_NFFT) */
    fftwf_complex *out;      /* (AVF_NBINS) */
    float *power;            /* (AVF_NBINS) */
};

/* Slaney's scale: 3 mels per 200 Hz up to 1 kHz (15 mels), then 27 mels per factor 6.4. */
#define AVF_MEL_BREAK_HZ 1000.0
#define AVF_MEL_BREAK 15.0
#define AVF_MEL_LOGSTEP (log(6.4) / 27.0)

double avf_mel_hz_to_mel(double hz)
{
    return hz < AVF_MEL_BREAK_HZ ? hz * 3.0 / 200.0
                                 : AVF_MEL_BREAK + log(hz / AVF_MEL_BREAK_HZ) / AVF_MEL_LOGSTEP;
}

static double avf_mel_to_hz(double mel)
{
    return mel < AVF_MEL_BREAK ? mel * 200.0 / 3.0
                               : AVF_MEL_BREAK_HZ * exp((mel - AVF_MEL_BREAK) * AVF_MEL_LOGSTEP);
}

int avf_mel_create(const mpsl_host *h, int mel_bins, int frames, avf_mel **out, mpsl_error *err)
{
    *out = NULL;
    avf_mel *m = h->alloc(sizeof *m);
    if (!m) {
        h->error_set(err, "av_fashion_mnist: out of memory");
        return MPSL_ERR_NOMEM;
    }
    m->mel_bins = mel_bins;
    m->frames = frames;
    m->filters = h->alloc((size_t)mel_bins * AVF_NBINS * sizeof *m->filters);
    m->lo = h->alloc((size_t)mel_bins * sizeof *m->lo);
    m->hi = h->alloc((size_t)mel_bins * sizeof *m->hi);
    if (!m->filters || !m->lo || !m->hi) {
        avf_mel_destroy(h, m);
        h->error_set(err, "av_fashion_mnist: out of memory");
        return MPSL_ERR_NOMEM;
    }
    double m0 = avf_mel_hz_to_mel(AVF_FMIN), m1 = avf_mel_hz_to_mel(AVF_FMAX);
    for (int b = 0; b < mel_bins; b++) {
        double f_left = avf_mel_to_hz(m0 + (m1 - m0) * b / (mel_bins + 1));
        double f_mid = avf_mel_to_hz(m0 + (m1 - m0) * (b + 1) / (mel_bins + 1));
        double f_right = avf_mel_to_hz(m0 + (m1 - m0) * (b + 2) / (mel_bins + 1));
        float *row = m->filters + (size_t)b * AVF_NBINS;
        m->lo[b] = AVF_NBINS;
        m->hi[b] = -1;
        for (int k = 0; k < AVF_NBINS; k++) {
            double f = (double)k * AVF_RATE / AVF_NFFT;
            double up = (f - f_left) / (f_mid - f_left), down = (f_right - f) / (f_right - f_mid);
            double w = up < down ? up : down;
            if (w > 0.0) {
                row[k] = (float)w;
                m->lo[b] = k < m->lo[b] ? k : m->lo[b];
                m->hi[b] = k;
            }
        }
        if (m->hi[b] < 0) {
            h->error_set(err, "av_fashion_mnist: mel_bins = %d is too many for a %d-point FFT "
                              "at %d Hz: mel filter %d (%.1f to %.1f Hz) covers no FFT bin",
                         mel_bins, AVF_NFFT, AVF_RATE, b, f_left, f_right);
            avf_mel_destroy(h, m);
            return MPSL_ERR_INVALID;
        }
    }
    for (int n = 0; n < AVF_WIN; n++) {
        m->window[n] = (float)(0.5 - 0.5 * cos(2.0 * M_PI * n / AVF_WIN));
    }
    float *in = fftwf_malloc(AVF_NFFT * sizeof *in);
    fftwf_complex *tmp = fftwf_malloc(AVF_NBINS * sizeof *tmp);
    pthread_mutex_lock(&avf_fftw_lock);
    if (in && tmp) {
        m->plan = fftwf_plan_dft_r2c_1d(AVF_NFFT, in, tmp, FFTW_ESTIMATE);
    }
    avf_fftw_plans += m->plan != NULL;
    pthread_mutex_unlock(&avf_fftw_lock);
    fftwf_free(in);
    fftwf_free(tmp);
    if (!m->plan) {
        h->error_set(err, "av_fashion_mnist: FFTW could not plan a %d-point transform",
                     AVF_NFFT);
        avf_mel_destroy(h, m);
        return MPSL_ERR_INTERNAL;
    }
    *out = m;
    return MPSL_OK;
}

void avf_mel_destroy(const mpsl_host *h, avf_mel *m)
{
    if (!m) {
        return;
    }
    if (m->plan) {
        pthread_mutex_lock(&avf_fftw_lock);
        fftwf_destroy_plan(m->plan);
        if (--avf_fftw_plans == 0) {
            fftwf_cleanup();
        }
        pthread_mutex_unlock(&avf_fftw_lock);
    }
    h->free(m->filters);
    h->free(m->lo);
    h->free(m->hi);
    h->free(m);
}

avf_mel_scratch *avf_mel_scratch_create(const mpsl_host *h, const avf_mel *mel)
{
    (void)mel;
    avf_mel_scratch *s = h->alloc(sizeof *s);
    if (!s) {
        return NULL;
    }
    /* fftwf_malloc gives the alignment the plan was made for (new-array execute needs it). */
    s->in = fftwf_malloc(AVF_NFFT * sizeof *s->in);
    s->out = fftwf_malloc(AVF_NBINS * sizeof *s->out);
    s->power = h->alloc(AVF_NBINS * sizeof *s->power);
    if (!s->in || !s->out || !s->power) {
        avf_mel_scratch_destroy(h, s);
        return NULL;
    }
    return s;
}

void avf_mel_scratch_destroy(const mpsl_host *h, avf_mel_scratch *s)
{
    if (!s) {
        return;
    }
    fftwf_free(s->in);
    fftwf_free(s->out);
    h->free(s->power);
    h->free(s);
}

int64_t avf_mel_window(const avf_mel *mel) { return (int64_t)(mel->frames - 1) * AVF_HOP + AVF_WIN; }

void avf_mel_compute(const avf_mel *mel, avf_mel_scratch *s, const float *wave, float *out)
{
    const int M = mel->mel_bins, F = mel->frames;
    memset(s->in + AVF_WIN, 0, (AVF_NFFT - AVF_WIN) * sizeof *s->in);
    for (int t = 0; t < F; t++) {
        const float *x = wave + (size_t)t * AVF_HOP;
        for (int n = 0; n < AVF_WIN; n++) {
            s->in[n] = x[n] * mel->window[n];
        }
        fftwf_execute_dft_r2c(mel->plan, s->in, s->out);
        for (int k = 0; k < AVF_NBINS; k++) {
            s->power[k] = s->out[k][0] * s->out[k][0] + s->out[k][1] * s->out[k][1];
        }
        for (int b = 0; b < M; b++) {
            const float *row = mel->filters + (size_t)b * AVF_NBINS;
            float acc = 0.0f;
            for (int k = mel->lo[b]; k <= mel->hi[b]; k++) {
                acc += row[k] * s->power[k];
            }
            out[(size_t)b * F + t] = logf(acc + AVF_LOG_EPS);
        }
    }
}

const float *avf_mel_filters(const avf_mel *mel, int *n_bins)
{
    *n_bins = AVF_NBINS;
    return mel->filters;
}
