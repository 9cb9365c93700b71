/* melspec.c: log-mel spectrograms with FFTW (single precision); see melspec.h for the front
 * end. The approach follows plugins/dataset/av_fashion_mnist/melspec.c (Slaney mel, Hann
 * window, 512-point FFT), rebuilt here for the core so the converters need no plugin. */
#include "melspec.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <fftw3.h>

#include "util/util.h"

#define MEL_NBINS (MEL_NFFT / 2 + 1)

/* FFTW's planner is global and not thread-safe, and keeps memory after the plans are gone:
 * planning is serialised, and the last destroy hands that memory back (fftwf_cleanup). */
static pthread_mutex_t mel_fftw_lock = PTHREAD_MUTEX_INITIALIZER;
static int mel_fftw_plans;

struct mel_spec {
    int mel_bins;
    float *filters;          /* (M, MEL_NBINS) */
    int *lo, *hi;            /* each filter's first and last non-zero bin */
    double *center;          /* (M) centre frequencies, Hz */
    float window[MEL_WIN];
    fftwf_plan plan;
};

/* Slaney's scale: 3 mels per 200 Hz up to 1 kHz (15 mels), then 27 mels per factor 6.4. */
#define MEL_BREAK_HZ 1000.0
#define MEL_BREAK 15.0
#define MEL_LOGSTEP (log(6.4) / 27.0)

static double hz_to_mel(double hz)
{
    return hz < MEL_BREAK_HZ ? hz * 3.0 / 200.0
                             : MEL_BREAK + log(hz / MEL_BREAK_HZ) / MEL_LOGSTEP;
}

static double mel_to_hz(double mel)
{
    return mel < MEL_BREAK ? mel * 200.0 / 3.0
                           : MEL_BREAK_HZ * exp((mel - MEL_BREAK) * MEL_LOGSTEP);
}

int mel_create(int mel_bins, mel_spec **out, mpsl_error *err)
{
    *out = NULL;
    if (mel_bins < 1 || mel_bins > 256) {
        return mpsl_err(err, "convert: mel_bins = %d: expected 1..256", mel_bins);
    }
    mel_spec *m = calloc(1, sizeof *m);
    if (!m) {
        return mpsl_errs(err, MPSL_ERR_NOMEM, "convert: out of memory");
    }
    m->mel_bins = mel_bins;
    m->filters = calloc((size_t)mel_bins * MEL_NBINS, sizeof *m->filters);
    m->lo = calloc((size_t)mel_bins, sizeof *m->lo);
    m->hi = calloc((size_t)mel_bins, sizeof *m->hi);
    m->center = calloc((size_t)mel_bins, sizeof *m->center);
    if (!m->filters || !m->lo || !m->hi || !m->center) {
        mel_destroy(m);
        return mpsl_errs(err, MPSL_ERR_NOMEM, "convert: out of memory");
    }
    double m0 = hz_to_mel(MEL_FMIN), m1 = hz_to_mel(MEL_FMAX);
    for (int b = 0; b < mel_bins; b++) {
        double f_left = mel_to_hz(m0 + (m1 - m0) * b / (mel_bins + 1));
        double f_mid = mel_to_hz(m0 + (m1 - m0) * (b + 1) / (mel_bins + 1));
        double f_right = mel_to_hz(m0 + (m1 - m0) * (b + 2) / (mel_bins + 1));
        float *row = m->filters + (size_t)b * MEL_NBINS;
        m->center[b] = f_mid;
        m->lo[b] = MEL_NBINS;
        m->hi[b] = -1;
        for (int k = 0; k < MEL_NBINS; k++) {
            double f = (double)k * MEL_RATE / MEL_NFFT;
            double up = (f - f_left) / (f_mid - f_left), down = (f_right - f) / (f_right - f_mid);
            double w = up < down ? up : down;
            if (w > 0.0) {
                row[k] = (float)w;
                m->lo[b] = k < m->lo[b] ? k : m->lo[b];
                m->hi[b] = k;
            }
        }
        if (m->hi[b] < 0) {
            mel_destroy(m);
            return mpsl_err(err, "convert: mel_bins = %d is too many for a %d-point FFT at "
                                 "%d Hz: mel filter %d (%.1f to %.1f Hz) covers no FFT bin",
                            mel_bins, MEL_NFFT, MEL_RATE, b, f_left, f_right);
        }
    }
    for (int n = 0; n < MEL_WIN; n++) {
        m->window[n] = (float)(0.5 - 0.5 * cos(2.0 * M_PI * n / MEL_WIN));
    }
    float *in = fftwf_malloc(MEL_NFFT * sizeof *in);
    fftwf_complex *tmp = fftwf_malloc(MEL_NBINS * sizeof *tmp);
    pthread_mutex_lock(&mel_fftw_lock);
    if (in && tmp) {
        m->plan = fftwf_plan_dft_r2c_1d(MEL_NFFT, in, tmp, FFTW_ESTIMATE);
    }
    mel_fftw_plans += m->plan != NULL;
    pthread_mutex_unlock(&mel_fftw_lock);
    fftwf_free(in);
    fftwf_free(tmp);
    if (!m->plan) {
        mel_destroy(m);
        return mpsl_errs(err, MPSL_ERR_INTERNAL,
                         "convert: FFTW could not plan a %d-point transform", MEL_NFFT);
    }
    *out = m;
    return MPSL_OK;
}

void mel_destroy(mel_spec *m)
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

int mel_bins(const mel_spec *m) { return m->mel_bins; }

double mel_center_hz(const mel_spec *m, int b) { return m->center[b]; }

int64_t mel_window_samples(int frames) { return (int64_t)(frames - 1) * MEL_HOP + MEL_WIN; }

int mel_compute(const mel_spec *m, const float *wave, int frames, float *out)
{
    const int M = m->mel_bins, F = frames;
    /* fftwf_malloc: the alignment the plan was made for (new-array execute needs it). */
    float *in = fftwf_malloc(MEL_NFFT * sizeof *in);
    fftwf_complex *spec = fftwf_malloc(MEL_NBINS * sizeof *spec);
    float power[MEL_NBINS];
    if (!in || !spec) {
        fftwf_free(in);
        fftwf_free(spec);
        return MPSL_ERR_NOMEM;
    }
    memset(in + MEL_WIN, 0, (MEL_NFFT - MEL_WIN) * sizeof *in);
    for (int t = 0; t < F; t++) {
        const float *x = wave + (size_t)t * MEL_HOP;
        for (int n = 0; n < MEL_WIN; n++) {
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
            out[(size_t)b * F + t] = logf(acc + MEL_LOG_EPS);
        }
    }
    fftwf_free(in);
    fftwf_free(spec);
    return MPSL_OK;
}

int mel_compute_fixed(const mel_spec *m, const float *wave, int64_t n, int frames, float *out)
{
    int64_t need = mel_window_samples(frames);
    float *buf = calloc((size_t)need, sizeof *buf);
    if (!buf) {
        return MPSL_ERR_NOMEM;
    }
    if (n >= need) {
        memcpy(buf, wave + (n - need) / 2, (size_t)need * sizeof *buf);
    } else if (n > 0) {
        memcpy(buf + (need - n) / 2, wave, (size_t)n * sizeof *buf);
    }
    int rc = mel_compute(m, buf, frames, out);
    free(buf);
    return rc;
}
