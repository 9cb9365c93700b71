/* avf.h: internals of the av_fashion_mnist dataset plugin (audio-visual Fashion-MNIST): each
 * Fashion-MNIST image is paired with its class name spoken by espeak-ng, turned into a
 * log-mel spectrogram, and optionally with a short text description.
 *
 * One purpose per file:
 *   rng.c       per-sample random streams, derived from (seed, split, index, stream)
 *   idx.c       the gzip IDX files of Debian's dataset-fashion-mnist
 *   speech.c    the utterance pool: espeak-ng in a child process, resampled to 16 kHz
 *   melspec.c   log-mel spectrograms with FFTW
 *   text.c      the optional text descriptions
 *   generate.c  the whole preparation: pool -> per-sample audio -> quantised log-mels
 *   format.c    the prepared binary file (header, payload, CRC32), written atomically
 *   plugin.c    parameters, cache path, open/labels/fill/prepare, the entry point
 *
 * Sizes: N samples of a split, M mel bins, F frames, L text bytes, S waveform samples. */
#ifndef AVF_H
#define AVF_H

#include <stddef.h>
#include <stdint.h>

#include <mpsl/plugin.h>

#define AVF_CLASSES 10
#define AVF_SIDE 28
#define AVF_PIXELS (AVF_SIDE * AVF_SIDE)
#define AVF_TRAIN_MAX 60000
#define AVF_TEST_MAX 10000
#define AVF_DEFAULT_DIR "/usr/share/datasets/fashion-mnist"
#define AVF_FMNIST_HINT "(install it with `apt-get install dataset-fashion-mnist`, or set dir)"
#define AVF_ESPEAK_HINT "(install it with `apt-get install espeak-ng-data`, or set espeak_data)"

/* Audio front end: fixed, recorded in every file header. */
#define AVF_SYNTH_RATE 22050 /* espeak-ng's native output rate */
#define AVF_RATE 16000       /* spectrograms are computed at 16 kHz */
#define AVF_WIN 400          /* 25 ms Hann window */
#define AVF_HOP 160          /* 10 ms hop */
#define AVF_NFFT 512
#define AVF_FMIN 20.0
#define AVF_FMAX 8000.0
#define AVF_LOG_EPS 1e-6f
#define AVF_MAX_SHIFT 1600   /* random time shift: up to +-0.1 s at 16 kHz */
#define AVF_WORD_RMS 0.1f    /* every utterance is scaled to this RMS over its word */
#define AVF_STAT_SAMPLES 1000 /* train samples 0..999 give the normalisation mean and std */

/* The pool: every class spoken by `voices` voices x AVF_N_RATES rates x AVF_N_PITCHES. */
#define AVF_MAX_VOICES 12
#define AVF_N_RATES 3
#define AVF_N_PITCHES 3
extern const char *const avf_voice_names[AVF_MAX_VOICES]; /* espeak-ng "language+variant" */
extern const int avf_rates[AVF_N_RATES];                 /* words per minute */
extern const int avf_pitches[AVF_N_PITCHES];             /* espeak base pitch 0..100 */
extern const char *const avf_class_names[AVF_CLASSES];   /* Fashion-MNIST's, as printed */
extern const char *const avf_spoken[AVF_CLASSES];        /* what espeak-ng is asked to say */
extern const char *const avf_written[AVF_CLASSES];       /* the name inside descriptions */

/* The parameters (YAML keys) of the plugin. */
typedef struct avf_params {
    const char *dir;
    const char *cache;
    int64_t train_limit, test_limit;
    int64_t seed;
    int64_t voices;
    double image_noise;
    double audio_noise;
    int64_t mel_bins;
    int64_t frames;
    int text;
    int64_t text_len;
    double text_noise;
    int prepare_on_open;
    const char *espeak_data;
} avf_params;

/* ------------------------------------------------------------------ rng.c */

/* xoshiro256** seeded by SplitMix64 from (seed, split, index, stream): a sample's randomness
 * does not depend on which other samples are generated (limits, threads). */
typedef struct avf_rng {
    uint64_t s[4];
    float spare; /* Box-Muller's second value */
    int has_spare;
} avf_rng;

enum { AVF_STREAM_AUDIO = 1, AVF_STREAM_IMAGE = 2, AVF_STREAM_TEXT = 3 };
/* split: 0 train, 1 test (mpsl_split) */
void avf_rng_seed(avf_rng *r, uint64_t seed, int split, int64_t index, int stream);
uint64_t avf_rng_next(avf_rng *r);
double avf_rng_uniform(avf_rng *r);           /* [0, 1) */
int64_t avf_rng_below(avf_rng *r, int64_t n); /* [0, n) */
float avf_rng_gauss(avf_rng *r);              /* N(0, 1) */
uint64_t avf_hash64(const void *data, size_t len); /* FNV-1a, for the cache file name */

/* ------------------------------------------------------------------ idx.c */

/* Labels (all of them: n_all receives the file's count) and the first n images of one split
 * ("train" or "t10k") from dir. labels (n_all) and images (n, 784) are h->alloc'd. n = 0
 * means all; n above the file's count is refused naming limit_key. */
int avf_idx_load(const mpsl_host *h, const char *dir, const char *prefix, const char *limit_key,
                 int64_t n, int32_t **labels, int64_t *n_all, uint8_t **images,
                 int64_t *n_images, mpsl_error *err);

/* ------------------------------------------------------------------ speech.c */

/* One utterance of the pool at AVF_RATE, trimmed to the spoken word (+ 10 ms margins) and
 * scaled to RMS AVF_WORD_RMS. */
typedef struct avf_utt {
    float *wave; /* (len) */
    int64_t len;
} avf_utt;

typedef struct avf_pool {
    int voices;
    int n;          /* AVF_CLASSES * voices * AVF_N_RATES * AVF_N_PITCHES */
    avf_utt *utt;   /* (n), index avf_pool_index() */
    char espeak_version[32];
} avf_pool;

static inline int avf_pool_index(int voices, int cls, int voice, int rate, int pitch)
{
    return ((cls * voices + voice) * AVF_N_RATES + rate) * AVF_N_PITCHES + pitch;
}

/* Synthesise the pool. espeak-ng keeps hidden state between utterances (its output depends on
 * what it said before) and its Terminate() can hang, so synthesis runs in a forked child that
 * starts from a fresh library state every time; the child writes into shared memory.
 * espeak_data: the espeak-ng-data folder, or NULL/"" for espeak-ng's default. */
int avf_pool_create(const mpsl_host *h, int voices, const char *espeak_data, avf_pool *pool,
                    mpsl_error *err);
void avf_pool_destroy(const mpsl_host *h, avf_pool *pool);
/* Windowed-sinc resampling from rate_in to rate_out: out receives floor(n * out/in) samples
 * (h->alloc'd). Exposed for the tests. */
int avf_resample(const mpsl_host *h, const float *in, int64_t n, int rate_in, int rate_out,
                 float **out, int64_t *n_out);

/* ------------------------------------------------------------------ melspec.c */

/* A mel filterbank and an FFTW plan. Plan creation is not thread-safe (FFTW's planner), the
 * per-frame transforms are: each thread brings its own avf_mel_scratch. FFTW_ESTIMATE keeps
 * the arithmetic (and so the bytes of the prepared file) the same from run to run. */
typedef struct avf_mel avf_mel;
typedef struct avf_mel_scratch avf_mel_scratch;

int avf_mel_create(const mpsl_host *h, int mel_bins, int frames, avf_mel **mel, mpsl_error *err);
void avf_mel_destroy(const mpsl_host *h, avf_mel *mel);
avf_mel_scratch *avf_mel_scratch_create(const mpsl_host *h, const avf_mel *mel);
void avf_mel_scratch_destroy(const mpsl_host *h, avf_mel_scratch *s);
/* Samples a window of `frames` frames needs: (frames - 1) * hop + win. */
int64_t avf_mel_window(const avf_mel *mel);
/* out (M,F) = log(mel(power(STFT(wave))) + 1e-6) with wave (avf_mel_window(mel)). */
void avf_mel_compute(const avf_mel *mel, avf_mel_scratch *s, const float *wave, float *out);
/* The filterbank (M, n_fft/2 + 1), row-major: for the tests and docs. */
const float *avf_mel_filters(const avf_mel *mel, int *n_bins);
double avf_mel_hz_to_mel(double hz); /* Slaney: linear below 1 kHz, log above */

/* ------------------------------------------------------------------ text.c */

/* The description of one sample: UTF-8 bytes as int32, zero-padded to len (cut at len).
 * With probability noise the class name is replaced by "item". out (len). */
void avf_text_make(uint64_t seed, int split, int64_t index, int cls, double noise, int len,
                   int32_t *out);

/* ------------------------------------------------------------------ format.c */

/* What a prepared file was generated with: compared with what open() asks for. */
typedef struct avf_gen {
    uint64_t seed;
    int64_t train_limit, test_limit; /* as requested (0 = all) */
    uint32_t voices, mel_bins, frames, text, text_len;
    double audio_noise, text_noise;
} avf_gen;

typedef struct avf_header {
    uint32_t version;
    uint32_t crc;          /* CRC32 of bytes 16.. (everything after magic, version, crc) */
    uint64_t payload_bytes;
    int64_t n[2];          /* samples per split (train, test) */
    uint32_t n_classes, image_side, mel_bins, frames, text_len;
    /* the fixed front end, recorded so that a file made by other code is recognised */
    uint32_t sample_rate, n_fft, win, hop, n_rates, n_pitches;
    avf_gen gen;
    double spec_mean, spec_std; /* the normalisation applied before quantisation */
    char espeak_version[32];
} avf_header;

typedef struct avf_split_data {
    int64_t n;
    int32_t *labels; /* (N) */
    uint8_t *images; /* (N, 28*28) raw pixels */
    float *spec_q;   /* (N, 2): offset and step of the sample's uint8 quantisation */
    uint8_t *spec;   /* (N, M*F): value = offset + q * step (already normalised) */
    int32_t *text;   /* (N, L) or NULL when text_len = 0 */
} avf_split_data;

typedef struct avf_data {
    avf_header hdr;
    avf_split_data split[2];
} avf_data;

#define AVF_MAGIC "MPSLAVF1"
#define AVF_VERSION 1u
#define AVF_HEADER_BYTES 256u

/* Bytes of the payload that these sizes describe. */
uint64_t avf_payload_bytes(const avf_header *hdr);
/* Write d to path atomically: path.tmp.<pid>, fsync, rename. */
int avf_file_write(const mpsl_host *h, const char *path, const avf_data *d, mpsl_error *err);
/* Read and verify the header only (size fields against the file length); no CRC. */
int avf_file_read_header(const mpsl_host *h, const char *path, avf_header *hdr,
                         mpsl_error *err);
/* Read and verify everything (header, sizes, CRC, labels in range) into d (h->alloc'd; free
 * with avf_data_free). With header_only != 0 the payload is only checksummed, not kept. */
int avf_file_read(const mpsl_host *h, const char *path, avf_data *d, int header_only,
                  mpsl_error *err);
void avf_data_free(const mpsl_host *h, avf_data *d);
/* 0 when hdr's generation parameters equal want's; else 1 and `what` describes the first
 * difference ("seed = 1 in the file, 2 requested"). */
int avf_gen_compare(const avf_header *hdr, const avf_gen *want, char *what, size_t size);

/* ------------------------------------------------------------------ generate.c */

/* The audio of a sample: an utterance of its class from the pool (voice, rate and pitch drawn
 * from the sample's stream), centred in the window and shifted by up to +-0.1 s (never
 * cutting a word that fits, never leaving the word when it does not), plus white Gaussian
 * noise of std audio_noise * AVF_WORD_RMS over the whole window. */
typedef struct avf_audio {
    avf_pool pool;
    avf_mel *mel;
    uint64_t seed;
    float noise_std;
    int mel_bins, frames;
    int64_t window; /* samples: (frames - 1) * hop + win */
} avf_audio;

int avf_audio_create(const mpsl_host *h, const avf_params *p, avf_audio *a, mpsl_error *err);
void avf_audio_destroy(const mpsl_host *h, avf_audio *a);
/* wave (window) receives the waveform, out (M,F) its log-mel before normalisation. */
void avf_audio_sample(const avf_audio *a, avf_mel_scratch *s, int split, int64_t index, int cls,
                      float *wave, float *out);

/* Everything from the raw inputs to a filled avf_data (limits applied). Spectrograms are
 * normalised with the mean and std of the log-mels of train samples 0..AVF_STAT_SAMPLES-1
 * (whatever train_limit is, so a sample's values do not depend on the limits), then
 * quantised to uint8 per sample. */
int avf_generate(const mpsl_host *h, const avf_params *p, const avf_gen *gen, avf_data *d,
                 mpsl_error *err);
/* Threads used by generation: min(online CPUs, 8), or $MPSL_THREADS when set. */
int avf_threads(void);

#endif
