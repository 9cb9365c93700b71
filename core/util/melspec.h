/* melspec.h: log-mel spectrograms for the audio converters (MELD, UCF101, Kinetics-Sounds).
 *
 * Front end (fixed, as AST's Kaldi fbank and the av_fashion_mnist plugin): 16 kHz mono,
 * 25 ms periodic Hann window (400 samples) every 10 ms (hop 160), zero-padded to a 512-point
 * FFT, power spectrum, M triangular filters on the Slaney mel scale (librosa's default:
 * linear below 1 kHz, logarithmic above) between 20 Hz and 8 kHz with peak 1, then
 * log(mel + 1e-6). No centre padding: frame t covers samples [t*160, t*160 + 400).
 * The 512-point FFT (as Kaldi rounds 400 up) keeps every one of up to 128 filters at least
 * one FFT bin wide; with a 400-point FFT (40 Hz bins) the lowest filters would be sampled by
 * a single bin at a small weight. */
#ifndef MPSL_CONVERT_MELSPEC_H
#define MPSL_CONVERT_MELSPEC_H

#include <stdint.h>

#include "mpsl/plugin.h"

#define MEL_RATE 16000
#define MEL_WIN 400
#define MEL_HOP 160
#define MEL_NFFT 512
#define MEL_FMIN 20.0
#define MEL_FMAX 8000.0
#define MEL_LOG_EPS 1e-6f

typedef struct mel_spec mel_spec;

/* Filter bank for mel_bins filters (1..256). Refuses a bank with a filter that covers no FFT
 * bin. Thread-safe to use from several threads once made (each call has its own buffers). */
int mel_create(int mel_bins, mel_spec **out, mpsl_error *err);
void mel_destroy(mel_spec *m);
int mel_bins(const mel_spec *m);

/* Samples needed for `frames` frames: (frames - 1) * hop + win. */
int64_t mel_window_samples(int frames);

/* log-mel of exactly `frames` frames of wave (at least mel_window_samples(frames) samples)
 * into out (mel_bins x frames, row-major: bin-major as (1, M, F)). MPSL_ERR_NOMEM only. */
int mel_compute(const mel_spec *m, const float *wave, int frames, float *out);

/* Fixed-length log-mel of a clip of n samples: the clip is centred in a window of
 * mel_window_samples(frames) samples: a longer clip is cropped equally at both ends, a
 * shorter one padded with silence equally on both sides (padding frames hold log(1e-6)). */
int mel_compute_fixed(const mel_spec *m, const float *wave, int64_t n, int frames, float *out);

/* Centre frequency (Hz) of filter b: for tests and messages. */
double mel_center_hz(const mel_spec *m, int b);

#endif
