/* melspec.h: log-mel spectrograms, implemented once for the converters
 * (`mpsl convert meld|ucf101|kinetics_sounds`) and for plugins (h->mel; av_fashion_mnist).
 * The front end (16 kHz, 25 ms Hann window every 10 ms, 512-point FFT, Slaney mel filters of
 * peak 1 between 20 Hz and 8 kHz, log(mel + 1e-6), output (M, F)) is described with
 * mpsl_mel_api in mpsl/plugin.h, whose MPSL_MEL_* constants fix it. */
#ifndef MPSL_UTIL_MELSPEC_H
#define MPSL_UTIL_MELSPEC_H

#include <stdint.h>

#include "mpsl/plugin.h"

/* Filter bank for mel_bins filters (1..256). Refuses a bank with a filter that covers no FFT
 * bin. Read-only once made: any number of threads may compute with it at once. */
int mpsl_mel_create(int mel_bins, mpsl_mel **out, mpsl_error *err);
void mpsl_mel_destroy(mpsl_mel *m);
int mpsl_mel_bins(const mpsl_mel *m);

/* Samples needed for `frames` frames: (frames - 1) * hop + win. */
int64_t mpsl_mel_window(int frames);

/* log-mel of exactly `frames` frames of wave (at least mpsl_mel_window(frames) samples) into
 * out (mel_bins x frames, row-major). MPSL_ERR_INVALID for frames < 1. */
int mpsl_mel_compute(const mpsl_mel *m, const float *wave, int frames, float *out);

/* Fixed-length log-mel of a clip of n samples: the clip is centred in a window of
 * mpsl_mel_window(frames) samples: a longer clip is cropped equally at both ends, a shorter
 * one padded with silence equally on both sides (padding frames hold log(1e-6)). */
int mpsl_mel_compute_fixed(const mpsl_mel *m, const float *wave, int64_t n, int frames,
                           float *out);

/* The filters (M, n_fft/2 + 1), a filter's centre frequency (Hz), and the Slaney mel of a
 * frequency: for tests, plots and messages. */
const float *mpsl_mel_filters(const mpsl_mel *m, int *n_bins);
double mpsl_mel_center_hz(const mpsl_mel *m, int b);
double mpsl_mel_hz_to_mel(double hz);

#endif
