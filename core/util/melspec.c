/* melspec.c: log-mel spectrograms with FFTW (single precision); see melspec.h and
 * mpsl_mel_api in mpsl/plugin.h for the front end. Slaney rather than HTK mels because the
 * linear low end keeps every filter at least one FFT bin (31.25 Hz) wide up to M = 128; on
 * the HTK scale filters below 100 Hz would cover no bin at all for M > 100. No pre-emphasis
 * and no dithering: av_fashion_mnist adds noise itself, and real recordings have their own.
 *
 * The arithmetic is the one av_fashion_mnist's prepared files were made with (same filters,
 * window, plan and summation order); a change here changes those files' bytes. */
#include "util/melspec.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <fftw3.h>

#include "util/util.h"

#define MEL_NBINS (MPSL_MEL_NFFT / 2 + 1)

/* FFTW's planner is global and not thread-safe, and keeps memory (its codelet tables) after
 * the plans are gone: planning is serialised, and the last destroy hands that memory back
 * (fftwf_cleanup), so that unloading a plugin leaks nothing. */
static pthread_mutex_t mel_fftw_lock = PTHREAD_MUTEX_INITIALIZER;
static int mel_fftw_plans;

struct mpsl_mel {
    int mel_bins;
    float *filters;          /* (M, MEL_NBINS) */
    int *lo, *hi;            /* each filter's first and last non-zero bin */
    double *center;          /* (M) centre frequencies, Hz */
    float window[MPSL_MEL_WIN];
    fftwf_plan plan;
};

/* Slaney's scale: 3 mels per 200 Hz up to 1 kHz (15 mels), then 27 mels per factor 6.4. */
#define MEL_BREAK_HZ 1000.0
#define MEL_BREAK 15.0
#define MEL_LOGSTEP (log(6.4) / 27.0)

double mpsl_mel_hz_to_mel(double hz)
{
    return hz < MEL_BREAK_HZ ? hz * 3.0 / 200.0
                             : MEL_BREAK + log(hz / MEL_BREAK_HZ) / MEL_LOGSTEP;
}

static double mel_to_hz(double mel)
{
    return mel < MEL_BREAK ? mel * 200.0 / 3.0
                           : MEL_BREAK_HZ * exp((mel - MEL_BREAK) * MEL_LOGSTEP);
}

int mpsl_mel_create(int mel_bins, mpsl_mel **out, mpsl_error *err)
{
    *out = NULL;
    if (mel_bins < 1 || mel_bins > 256) {
        return mpsl_err(err, "mel_bins = %d: expected 1..256", mel_bins);
    }
    mpsl_mel *m = calloc(1, sizeof *m);
    if (!m) {
        return mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory for a mel filter bank");
    }
    m->mel_bins = mel_bins;
    m->filters = calloc((size_t)mel_bins * MEL_NBINS, sizeof *m->filters);
    m->lo = calloc((size_t)mel_bins, sizeof *m->lo);
    m->hi = calloc((size_t)mel_bins, sizeof *m->hi);
    m->center = calloc((size_t)mel_bins, sizeof *m->center);
    if (!m->filters || !m->lo || !m->hi || !m->center) {
        mpsl_mel_destroy(m);
        return mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory for a mel filter bank");
    }
    double m0 = mpsl_mel_hz_to_mel(MPSL_MEL_FMIN), m1 = mpsl_mel_hz_to_mel(MPSL_MEL_FMAX);
    for (int b = 0; b < mel_bins; b++) {
        double f_left = mel_to_hz(m0 + (m1 - m0) * b / (mel_bins + 1));
        double f_mid = mel_to_hz(m0 + (m1 - m0) * (b + 1) / (mel_bins + 1));
        double f_right = mel_to_hz(m0 + (m1 - m0) * (b + 2) / (mel_bins + 1));
        float *row = m->filters + (size_t)b * MEL_NBINS;
        m->center[b] = f_mid;
        m->lo[b] = MEL_NBINS;
        m->hi[b] = -1;
        for (int k = 0; k < MEL_NBINS; k++) {
            double f = (double)k * MPSL_MEL_RATE / MPSL_MEL_NFFT;
            double up = (f - f_left) / (f_mid - f_left), down = (f_right - f) / (f_right - f_mid);
            double w = up < down ? up : down;
            if (w > 0.0) {
                row[k] = (float)w;
                m->lo[b] = k < m->lo[b] ? k : m->lo[b];
                m->hi[b] = k;
            }
        }
        if (m->hi[b] < 0) {
            mpsl_mel_destroy(m);
            return mpsl_err(err, "mel_bins = %d is too many for a %d-point FFT at %d Hz: mel "
                                 "filter %d (%.1f to %.1f Hz) covers no FFT bin",
                            mel_bins, MPSL_MEL_NFFT, MPSL_MEL_RATE, b, f_left, f_right);
        }
    }
    for (int n = 0; n < MPSL_MEL_WIN; n++) {
        m->window[n] = (float)(0.5 - 0.5 * cos(2.0 * M_PI * n / MPSL_MEL_WIN));
    }
    float *in = fftwf_malloc(MPSL_MEL_NFFT * sizeof *in);
    fftwf_complex *tmp = fftwf_malloc(MEL_NBINS * sizeof *tmp);
    pthread_mutex_lock(&mel_fftw_lock);
    if (in && tmp) {
        m->plan = fftwf_plan_dft_r2c_1d(MPSL_MEL_NFFT, in, tmp, FFTW_ESTIMATE);
    }
    mel_fftw_plans += m->plan != NULL;
    pthread_mutex_unlock(&mel_fftw_lock);
    fftwf_free(in);
    fftwf_free(tmp);
    if (!m->plan) {
        mpsl_mel_destroy(m);
        return mpsl_errs(err, MPSL_ERR_INTERNAL, "FFTW could not plan a %d-point transform",
                         MPSL_MEL_NFFT);
    }
    *out = m;
    return MPSL_OK;
}

void mpsl_mel_destroy(mpsl_mel *m)
{
    if (!m) {
        return;
    }
    if (m->plan) {
        pthread_mutex_lock(&mel_fftw_lock);
        fftwf_destroy_plan(m->plan);
        if (--mel_fftw_plans == 0) {
            fftwf_cleanup();
        }
        pthread_mutex_unlock(&mel_fftw_lock);
    }
    free(m->filters);
    free(m->lo);
    free(m->hi);
    free(m->center);
    free(m);
}

int mpsl_mel_bins(const mpsl_mel *m) { return m->mel_bins; }

const float *mpsl_mel_filters(const mpsl_mel *m, int *n_bins)
{
    *n_bins = MEL_NBINS;
    return m->filters;
}

double mpsl_mel_center_hz(const mpsl_mel *m, int b) { return m->center[b]; }

int64_t mpsl_mel_window(int frames) { return (int64_t)(frames - 1) * MPSL_MEL_HOP + MPSL_MEL_WIN; }

int mpsl_mel_compute(const mpsl_mel *m, const float *wave, int frames, float *out)
{
    if (frames < 1) {
        return MPSL_ERR_INVALID;
    }
    const int M = m->mel_bins, F = frames;
    /* New-array execution needs the alignment the plan was made with (fftwf_malloc's, at
     * most 64 bytes): these buffers have it, on the stack, so computing never allocates. */
    _Alignas(64) float in[MPSL_MEL_NFFT];
    _Alignas(64) fftwf_complex spec[MEL_NBINS];
    float power[MEL_NBINS];
    memset(in + MPSL_MEL_WIN, 0, (MPSL_MEL_NFFT - MPSL_MEL_WIN) * sizeof *in);
    for (int t = 0; t < F; t++) {
        const float *x = wave + (size_t)t * MPSL_MEL_HOP;
        for (int n = 0; n < MPSL_MEL_WIN; n++) {
            in[n] = x[n] * m->window[n];
        }
        fftwf_execute_dft_r2c(m->plan, in, spec);
        for (int k = 0; k < MEL_NBINS; k++) {
            power[k] = spec[k][0] * spec[k][0] + spec[k][1] * spec[k][1];
        }
        for (int b = 0; b < M; b++) {
            const float *row = m->filters + (size_t)b * MEL_NBINS;
            float acc = 0.0f;
            for (int k = m->lo[b]; k <= m->hi[b]; k++) {
                acc += row[k] * power[k];
            }
            out[(size_t)b * F + t] = logf(acc + MPSL_MEL_LOG_EPS);
        }
    }
    return MPSL_OK;
}

int mpsl_mel_compute_fixed(const mpsl_mel *m, const float *wave, int64_t n, int frames,
                           float *out)
{
    if (frames < 1) {
        return MPSL_ERR_INVALID;
    }
    int64_t need = mpsl_mel_window(frames);
    float *buf = calloc((size_t)need, sizeof *buf);
    if (!buf) {
        return MPSL_ERR_NOMEM;
    }
    if (n >= need) {
        memcpy(buf, wave + (n - need) / 2, (size_t)need * sizeof *buf);
    } else if (n > 0) {
        memcpy(buf + (need - n) / 2, wave, (size_t)n * sizeof *buf);
    }
    int rc = mpsl_mel_compute(m, buf, frames, out);
    free(buf);
    return rc;
}
