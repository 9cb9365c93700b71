/* speech.c: the pool of spoken class names. espeak-ng synthesises every (class, voice, rate,
 * pitch) once at 22050 Hz in a forked child (see avf_pool_create for why); the parent resamples
 * to 16 kHz, trims the silence around the word and scales it to a fixed loudness. */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <espeak-ng/espeak_ng.h>
#include <espeak-ng/speak_lib.h>

#include "avf.h"

/* Twelve voices: accents x espeak-ng's male (m*) and female (f*) variants. The first six are
 * the default pool; more voices means more variety per class. */
const char *const avf_voice_names[AVF_MAX_VOICES] = {
    "en-us+m1", "en-us+f2", "en+m3",  "en+f4",           "en-gb-scotland+m7", "en-029+f1",
    "en-gb-x-rp+m2", "en-us+f5", "en-gb-x-gbclan+m4", "en-us-nyc+f3", "en-gb-x-gbcwmd+m6",
    "en+f1",
};
const int avf_rates[AVF_N_RATES] = {165, 200, 235};
const int avf_pitches[AVF_N_PITCHES] = {35, 50, 65};
const char *const avf_spoken[AVF_CLASSES] = {
    "T-shirt", "trousers", "pullover", "dress", "coat",
    "sandal",  "shirt",    "sneaker",  "bag",   "ankle boot",
};

#define AVF_MAX_UTT (3 * AVF_SYNTH_RATE) /* longest utterance kept: 3 s (words take < 1.2 s) */

/* What the child hands back, in a shared anonymous mapping. */
typedef struct avf_shm {
    int done;     /* 1 once every utterance is written */
    int failed;   /* 1: msg says why */
    char msg[1024];
    char version[32];
    int32_t len[AVF_CLASSES * AVF_MAX_VOICES * AVF_N_RATES * AVF_N_PITCHES];
    int16_t samples[]; /* (n, AVF_MAX_UTT) */
} avf_shm;

/* The child's destination for espeak-ng's callback (the child is single-threaded for us). */
static int16_t *avf_child_dst;
static int32_t avf_child_len;

static int avf_child_callback(short *wav, int n, espeak_EVENT *events)
{
    (void)events;
    if (wav && n > 0) {
        int32_t room = AVF_MAX_UTT - avf_child_len;
        int32_t take = n < room ? n : room;
        memcpy(avf_child_dst + avf_child_len, wav, (size_t)take * sizeof *wav);
        avf_child_len += take;
    }
    return 0; /* continue */
}

static void avf_child_fail(avf_shm *shm, const char *fmt, const char *a, const char *b)
{
    snprintf(shm->msg, sizeof shm->msg, fmt, a, b);
    shm->failed = 1;
}

/* The child: initialise espeak-ng from scratch, speak every utterance of the pool in a fixed
 * order, leave with _exit (never returning into the host's code). */
static void avf_child(avf_shm *shm, int voices, const char *espeak_data)
{
    espeak_ng_InitializePath(espeak_data && espeak_data[0] ? espeak_data : NULL);
    const char *data_path = NULL;
    const char *version = espeak_Info(&data_path);
    snprintf(shm->version, sizeof shm->version, "%s", version ? version : "?");
    char phontab[600];
    snprintf(phontab, sizeof phontab, "%.500s/phontab", data_path ? data_path : "?");
    if (access(phontab, R_OK) != 0) {
        avf_child_fail(shm, "espeak-ng data not found: %s is missing %s", phontab,
                       AVF_ESPEAK_HINT);
        return;
    }
    espeak_ng_ERROR_CONTEXT ctx = NULL;
    espeak_ng_STATUS st = espeak_ng_Initialize(&ctx);
    if (st == ENS_OK) {
        st = espeak_ng_InitializeOutput(ENOUTPUT_MODE_SYNCHRONOUS, 0, NULL);
    }
    if (st != ENS_OK) {
        char why[256];
        espeak_ng_GetStatusCodeMessage(st, why, sizeof why);
        avf_child_fail(shm, "espeak-ng could not start: %s %s", why, AVF_ESPEAK_HINT);
        return;
    }
    espeak_SetSynthCallback(avf_child_callback);
    for (int v = 0; v < voices; v++) {
        if (espeak_ng_SetVoiceByName(avf_voice_names[v]) != ENS_OK) {
            avf_child_fail(shm, "espeak-ng has no voice %s (data in %s)", avf_voice_names[v],
                           data_path);
            return;
        }
        for (int r = 0; r < AVF_N_RATES; r++) {
            for (int p = 0; p < AVF_N_PITCHES; p++) {
                espeak_SetParameter(espeakRATE, avf_rates[r], 0);
                espeak_SetParameter(espeakPITCH, avf_pitches[p], 0);
                for (int c = 0; c < AVF_CLASSES; c++) {
                    int u = avf_pool_index(voices, c, v, r, p);
                    avf_child_dst = shm->samples + (size_t)u * AVF_MAX_UTT;
                    avf_child_len = 0;
                    const char *word = avf_spoken[c];
                    if (espeak_Synth(word, strlen(word) + 1, 0, POS_CHARACTER, 0,
                                     espeakCHARS_UTF8, NULL, NULL) != EE_OK) {
                        avf_child_fail(shm, "espeak-ng failed to speak \"%s\" with voice %s",
                                       word, avf_voice_names[v]);
                        return;
                    }
                    shm->len[u] = avf_child_len;
                }
            }
        }
    }
    shm->done = 1;
}

static int64_t avf_gcd(int64_t a, int64_t b)
{
    while (b) {
        int64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

int avf_resample(const mpsl_host *h, const float *in, int64_t n, int rate_in, int rate_out,
                 float **out, int64_t *n_out)
{
    /* Hann-windowed sinc low-pass at 0.45 * rate_out (below the new Nyquist frequency, so
     * espeak's energy between 8 and 11 kHz does not fold back), K taps on each side. Output
     * sample j sits at input position j * rate_in / rate_out, whose fractional part takes only
     * P = rate_out / gcd values: the kernel is tabulated once per phase (320 for 22050 ->
     * 16000). Each phase's weights are normalised to sum 1, so a constant stays that constant. */
    enum { K = 24, TAPS = 2 * K + 1 };
    const int64_t g = avf_gcd(rate_in, rate_out), P = rate_out / g, Q = rate_in / g;
    const int64_t m = n * rate_out / rate_in;
    float *o = h->alloc((size_t)(m > 0 ? m : 1) * sizeof *o);
    float *table = h->alloc((size_t)P * TAPS * sizeof *table);
    if (!o || !table) {
        h->free(o);
        h->free(table);
        return MPSL_ERR_NOMEM;
    }
    const double wc = 0.45 * rate_out / rate_in; /* cutoff, cycles per input sample */
    for (int64_t ph = 0; ph < P; ph++) {
        /* taps k = base - K .. base + K around x = base + frac */
        double frac = (double)(ph * Q % P) / (double)P, wsum = 0.0;
        double w[TAPS];
        for (int t = 0; t < TAPS; t++) {
            double d = frac - (double)(t - K);
            double s = fabs(d) < 1e-12 ? 1.0 : sin(2.0 * M_PI * wc * d) / (2.0 * M_PI * wc * d);
            w[t] = fabs(d) >= K + 1 ? 0.0 : 2.0 * wc * s * (0.5 + 0.5 * cos(M_PI * d / (K + 1)));
            wsum += w[t];
        }
        for (int t = 0; t < TAPS; t++) {
            table[ph * TAPS + t] = (float)(w[t] / wsum);
        }
    }
    for (int64_t j = 0; j < m; j++) {
        const int64_t base = j * Q / P;
        const float *w = table + (j % P) * TAPS;
        float acc = 0.0f;
        for (int t = 0; t < TAPS; t++) {
            int64_t k = base + t - K;
            if (k >= 0 && k < n) {
                acc += w[t] * in[k];
            }
        }
        o[j] = acc;
    }
    h->free(table);
    *out = o;
    *n_out = m;
    return MPSL_OK;
}

/* Resample one raw utterance, keep the word (first to last sample above 1% of the peak, with
 * 10 ms margins) and scale it to RMS AVF_WORD_RMS. */
static int avf_utt_make(const mpsl_host *h, const int16_t *raw, int32_t n, avf_utt *u)
{
    float *f = h->alloc((size_t)(n > 0 ? n : 1) * sizeof *f);
    if (!f) {
        return MPSL_ERR_NOMEM;
    }
    for (int32_t i = 0; i < n; i++) {
        f[i] = (float)raw[i] / 32768.0f;
    }
    float *rs = NULL;
    int64_t m = 0;
    int rc = avf_resample(h, f, n, AVF_SYNTH_RATE, AVF_RATE, &rs, &m);
    h->free(f);
    if (rc != MPSL_OK) {
        return rc;
    }
    float peak = 0.0f;
    for (int64_t i = 0; i < m; i++) {
        peak = fabsf(rs[i]) > peak ? fabsf(rs[i]) : peak;
    }
    int64_t a = 0, b = m - 1;
    while (a < m && fabsf(rs[a]) <= 0.01f * peak) {
        a++;
    }
    while (b > a && fabsf(rs[b]) <= 0.01f * peak) {
        b--;
    }
    const int64_t margin = AVF_RATE / 100;
    a = a - margin < 0 ? 0 : a - margin;
    b = b + margin >= m ? m - 1 : b + margin;
    int64_t len = m > 0 ? b - a + 1 : 0;
    if (len < AVF_RATE / 20 || peak <= 0.0f) {
        h->free(rs);
        return MPSL_ERR_INVALID; /* under 50 ms of sound: not a word */
    }
    double e = 0.0;
    for (int64_t i = a; i <= b; i++) {
        e += (double)rs[i] * rs[i];
    }
    float gain = AVF_WORD_RMS / (float)sqrt(e / (double)len);
    u->wave = h->alloc((size_t)len * sizeof *u->wave);
    if (!u->wave) {
        h->free(rs);
        return MPSL_ERR_NOMEM;
    }
    for (int64_t i = 0; i < len; i++) {
        u->wave[i] = rs[a + i] * gain;
    }
    u->len = len;
    h->free(rs);
    return MPSL_OK;
}

/* An espeak_data folder must hold phontab itself or in espeak-ng-data/ (what espeak-ng
 * accepts). Checked here because espeak-ng silently falls back to its default otherwise. */
static int avf_check_espeak_dir(const mpsl_host *h, const char *dir, mpsl_error *err)
{
    char a[4200], b[4200];
    snprintf(a, sizeof a, "%s/phontab", dir);
    snprintf(b, sizeof b, "%s/espeak-ng-data/phontab", dir);
    if (access(a, R_OK) != 0 && access(b, R_OK) != 0) {
        h->error_set(err, "av_fashion_mnist: espeak-ng data not found: neither %s nor %s "
                          "exists %s",
                     a, b, AVF_ESPEAK_HINT);
        return MPSL_ERR_IO;
    }
    return MPSL_OK;
}

int avf_pool_create(const mpsl_host *h, int voices, const char *espeak_data, avf_pool *pool,
                    mpsl_error *err)
{
    memset(pool, 0, sizeof *pool);
    if (voices < 1 || voices > AVF_MAX_VOICES) {
        h->error_set(err, "av_fashion_mnist: voices = %d is outside 1..%d", voices,
                     AVF_MAX_VOICES);
        return MPSL_ERR_INVALID;
    }
    if (espeak_data && espeak_data[0] && avf_check_espeak_dir(h, espeak_data, err) != MPSL_OK) {
        return MPSL_ERR_IO;
    }
    int n = AVF_CLASSES * voices * AVF_N_RATES * AVF_N_PITCHES;
    size_t bytes = sizeof(avf_shm) + (size_t)n * AVF_MAX_UTT * sizeof(int16_t);
    avf_shm *shm = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (shm == MAP_FAILED) {
        h->error_set(err, "av_fashion_mnist: cannot map %zu bytes for speech synthesis: %s",
                     bytes, strerror(errno));
        return MPSL_ERR_NOMEM;
    }
    fflush(NULL); /* the child must not flush the host's buffered output a second time */
    pid_t pid = fork();
    if (pid < 0) {
        h->error_set(err, "av_fashion_mnist: cannot fork the speech synthesis process: %s",
                     strerror(errno));
        munmap(shm, bytes);
        return MPSL_ERR_IO;
    }
    if (pid == 0) {
        avf_child(shm, voices, espeak_data);
        _exit(shm->done ? 0 : 1);
    }
    int status = 0;
    pid_t w;
    while ((w = waitpid(pid, &status, 0)) < 0 && errno == EINTR) {
    }
    /* A host that ignores SIGCHLD gets ECHILD from waitpid: the shared flags still tell. */
    int rc = MPSL_OK;
    if (!shm->done) {
        if (shm->failed) {
            h->error_set(err, "av_fashion_mnist: %s", shm->msg);
        } else if (w == pid && WIFSIGNALED(status)) {
            h->error_set(err, "av_fashion_mnist: the espeak-ng synthesis process died (signal "
                              "%d)",
                         WTERMSIG(status));
        } else {
            h->error_set(err, "av_fashion_mnist: the espeak-ng synthesis process failed");
        }
        rc = MPSL_ERR_IO;
        goto done;
    }
    snprintf(pool->espeak_version, sizeof pool->espeak_version, "%s", shm->version);
    pool->voices = voices;
    pool->n = n;
    pool->utt = h->alloc((size_t)n * sizeof *pool->utt);
    if (!pool->utt) {
        h->error_set(err, "av_fashion_mnist: out of memory for the utterance pool");
        rc = MPSL_ERR_NOMEM;
        goto done;
    }
    for (int u = 0; u < n; u++) {
        rc = avf_utt_make(h, shm->samples + (size_t)u * AVF_MAX_UTT, shm->len[u], &pool->utt[u]);
        if (rc != MPSL_OK) {
            int p = u % AVF_N_PITCHES, r = u / AVF_N_PITCHES % AVF_N_RATES;
            int v = u / (AVF_N_PITCHES * AVF_N_RATES) % voices;
            int c = u / (AVF_N_PITCHES * AVF_N_RATES * voices);
            if (rc == MPSL_ERR_NOMEM) {
                h->error_set(err, "av_fashion_mnist: out of memory for the utterance pool");
            } else {
                h->error_set(err, "av_fashion_mnist: espeak-ng gave no audible speech for "
                                  "\"%s\" (voice %s, rate %d, pitch %d)",
                             avf_spoken[c], avf_voice_names[v], avf_rates[r], avf_pitches[p]);
            }
            goto done;
        }
    }
done:
    munmap(shm, bytes);
    if (rc != MPSL_OK) {
        avf_pool_destroy(h, pool);
    }
    return rc;
}

void avf_pool_destroy(const mpsl_host *h, avf_pool *pool)
{
    if (pool->utt) {
        for (int u = 0; u < pool->n; u++) {
            h->free(pool->utt[u].wave);
        }
        h->free(pool->utt);
    }
    memset(pool, 0, sizeof *pool);
}
