/* avf.h: internals of the av_fashion_mnist dataset plugin (audio-visual Fashion-MNIST): each
 * Fashion-MNIST image is paired with its class name spoken by espeak-ng, turned into a
 * log-mel spectrogram, and optionally with a short text description.
 *
 * One purpose per file:
 *   idx.c       the Fashion-MNIST files of Debian's dataset-fashion-mnist, through h->idx
 *   speech.c    the utterance pool: espeak-ng in a child process, resampled to 16 kHz
 *   text.c      the optional text descriptions
 *   generate.c  the whole preparation: pool -> per-sample audio -> quantised log-mels
 *   format.c    the prepared binary file (header, payload, CRC32), written atomically
 *   plugin.c    parameters, cache path, open/labels/fill/prepare, the descriptor
 * The host provides the rest (mpsl/plugin.h, "shared helpers"): per-sample random streams
 * (h->rng->seed_sample), log-mel spectrograms (h->mel), IDX reading (h->idx), CRC32, the
 * cache file's name hash and mkdir -p (h->files).
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

/* Audio front end: the host's log-mel (h->mel), recorded in every file header so that a file
 * made with another front end is recognised. */
#define AVF_SYNTH_RATE 22050       /* espeak-ng's native output rate */
#define AVF_RATE MPSL_MEL_RATE     /* spectrograms are computed at 16 kHz */
#define AVF_WIN MPSL_MEL_WIN       /* 25 ms Hann window */
#define AVF_HOP MPSL_MEL_HOP       /* 10 ms hop */
#define AVF_NFFT MPSL_MEL_NFFT
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
/* The classes as printed are fmnist_class_names (../fashion_mnist_classes.h, shared with the
 * fashion_mnist plugin); these are how the audio and the descriptions word them. */
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

/* The random streams of a sample (h->rng->seed_sample's `stream`). */
enum { AVF_STREAM_AUDIO = 1, AVF_STREAM_IMAGE = 2, AVF_STREAM_TEXT = 3 };

/* ------------------------------------------------------------------ idx.c */

/* Labels (all of them: n_all receives the file's count) and the first n images of one split
 * ("train" or "t10k") from dir, through h->idx. labels (n_all) and images (n, 784) are
 * h->alloc'd. n = 0 means all; n above the file's count is refused naming limit_key. */
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

/* ------------------------------------------------------------------ text.c */

/* The description of one sample: UTF-8 bytes as int32, zero-padded to len (cut at len).
 * With probability noise the class name is replaced by "item". out (len). */
void avf_text_make(const mpsl_host *h, uint64_t seed, int split, int64_t index, int cls,
                   double noise, int len, int32_t *out);

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
    const mpsl_host *h;
    avf_pool pool;
    mpsl_mel *mel;  /* h->mel's bank of mel_bins filters */
    uint64_t seed;
    float noise_std;
    int mel_bins, frames;
    int64_t window; /* samples: (frames - 1) * hop + win */
} avf_audio;

int avf_audio_create(const mpsl_host *h, const avf_params *p, avf_audio *a, mpsl_error *err);
void avf_audio_destroy(const mpsl_host *h, avf_audio *a);
/* wave (window) receives the waveform, out (M,F) its log-mel before normalisation. Safe to
 * call from several threads at once. */
void avf_audio_sample(const avf_audio *a, int split, int64_t index, int cls, float *wave,
                      float *out);

/* Everything from the raw inputs to a filled avf_data (limits applied). Spectrograms are
 * normalised with the mean and std of the log-mels of train samples 0..AVF_STAT_SAMPLES-1
 * (whatever train_limit is, so a sample's values do not depend on the limits), then
 * quantised to uint8 per sample. */
int avf_generate(const mpsl_host *h, const avf_params *p, const avf_gen *gen, avf_data *d,
                 mpsl_error *err);
/* Threads used by generation: min(online CPUs, 8), or $MPSL_THREADS when set. */
int avf_threads(void);

#endif
