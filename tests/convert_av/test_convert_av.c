/* test_convert_av.c: `mpsl convert meld|ucf101|kinetics_sounds` on tiny fixtures made at test
 * time with the ffmpeg command (1-second clips: a sine tone of a class-specific frequency and
 * a solid colour of a class-specific colour, some without audio) in each dataset's raw
 * layout, read back with the `prepared` plugin: labels, shapes, the frame's colour, the
 * spectrogram's peak mel bin against the tone, text bytes, splits, the no-audio policy, and
 * refusals that name the file.
 * Usage: test_convert_av MPSL_BINARY PREPARED_PLUGIN.so */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../convert/fixtures.h"
#include "check.h"

static const char *mpsl;
static char root[256];
static char out[1 << 16];

/* ------------------------------------------------------------ fixtures */

/* A 1-second clip: a tone of freq Hz (0: no audio track) and a solid colour. */
static void clip(const char *path, int freq, const char *colour)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", path);
    *strrchr(dir, '/') = '\0';
    fx_mkdirs(dir);
    int avi = strstr(path, ".avi") != NULL;
    char cmd[4096];
    if (freq > 0) {
        snprintf(cmd, sizeof cmd,
                 "ffmpeg -nostdin -loglevel error -y -f lavfi -i 'sine=frequency=%d:duration=1:"
                 "sample_rate=44100' -f lavfi -i 'color=c=%s:s=80x60:d=1:r=10' -c:v mpeg4 "
                 "-c:a %s -shortest '%s'", freq, colour, avi ? "pcm_s16le" : "aac", path);
    } else {
        snprintf(cmd, sizeof cmd,
                 "ffmpeg -nostdin -loglevel error -y -f lavfi -i 'color=c=%s:s=80x60:d=1:r=10' "
                 "-c:v mpeg4 '%s'", colour, path);
    }
    int rc = system(cmd);
    CHECK(rc == 0);
    if (rc != 0) {
        fprintf(stderr, "failed: %s\n", cmd);
        exit(1);
    }
}

static char *P(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *P(const char *fmt, ...)
{
    static char bufs[8][1024];
    static int k;
    char *b = bufs[k++ % 8];
    int n = snprintf(b, 1024, "%s/", root);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b + n, 1024 - (size_t)n, fmt, ap);
    va_end(ap);
    return b;
}

/* ------------------------------------------------------------ checks */

static double hz_to_mel(double hz)
{
    return hz < 1000.0 ? hz * 3.0 / 200.0 : 15.0 + log(hz / 1000.0) / (log(6.4) / 27.0);
}
static double mel_to_hz(double m)
{
    return m < 15.0 ? m * 200.0 / 3.0 : 1000.0 * exp((m - 15.0) * log(6.4) / 27.0);
}

/* The mel bin whose centre is nearest freq (Slaney, 20 Hz .. 8 kHz, M bins). */
static int expected_bin(double freq, int M)
{
    double m0 = hz_to_mel(20.0), m1 = hz_to_mel(8000.0);
    int best = 0;
    for (int b = 1; b < M; b++) {
        double c = mel_to_hz(m0 + (m1 - m0) * (b + 1) / (M + 1));
        double cb = mel_to_hz(m0 + (m1 - m0) * (best + 1) / (M + 1));
        if (fabs(c - freq) < fabs(cb - freq)) {
            best = b;
        }
    }
    return best;
}

/* Peak bin of sample i of an audio tensor (1, M, F), summed over frames. */
static int peak_bin(const float *a, int64_t i, int M, int F, double *range)
{
    const float *s = a + (size_t)i * M * F;
    int best = 0;
    double best_v = -1e30, lo = 1e30;
    for (int b = 0; b < M; b++) {
        double v = 0;
        for (int t = 0; t < F; t++) {
            v += s[(size_t)b * F + t];
        }
        if (v > best_v) {
            best_v = v;
            best = b;
        }
        lo = v < lo ? v : lo;
    }
    *range = (best_v - lo) / F;
    return best;
}

static int find_mod(const mpsl_dataset_info *info, const char *name)
{
    for (int m = 0; m < info->n_modalities; m++) {
        if (strcmp(info->modality[m].name, name) == 0) {
            return m;
        }
    }
    return -1;
}

typedef struct loaded {
    mpsl_dataset_info info;
    void *state;
    mpsl_batch *b[2];
    int ok;
} loaded;

static void load(const char *file, loaded *L)
{
    mpsl_error err;
    memset(L, 0, sizeof *L);
    int rc = fx_open(file, NULL, &L->info, &L->state, &err);
    CHECK(rc == MPSL_OK);
    if (rc != MPSL_OK) {
        fprintf(stderr, "open %s: %s\n", file, err.msg);
        return;
    }
    for (int s = 0; s < 2; s++) {
        int64_t n = s == 0 ? L->info.n_train : L->info.n_test;
        L->b[s] = fx_batch(&L->info, n > 0 ? n : 1);
        int64_t *idx = calloc((size_t)(n > 0 ? n : 1), sizeof *idx);
        for (int64_t i = 0; i < n; i++) {
            idx[i] = i;
        }
        if (n > 0) {
            rc = fx_api()->fill(L->state, (mpsl_split)s, idx, n, L->b[s], &err);
            CHECK(rc == MPSL_OK);
            if (rc != MPSL_OK) {
                fprintf(stderr, "fill: %s\n", err.msg);
            }
        }
        free(idx);
    }
    L->ok = 1;
}

static void unload(loaded *L)
{
    if (!L->ok) {
        return;
    }
    for (int s = 0; s < 2; s++) {
        fx_batch_free(L->b[s], &L->info);
    }
    fx_close(L->state);
}

static void check_tone(const loaded *L, int split, int64_t i, double freq)
{
    int m = find_mod(&L->info, "audio");
    CHECK(m >= 0);
    if (m < 0) {
        return;
    }
    int M = (int)L->info.modality[m].shape[1], F = (int)L->info.modality[m].shape[2];
    double range;
    int b = peak_bin(L->b[split]->modality[m].data, i, M, F, &range);
    int e = expected_bin(freq, M);
    if (abs(b - e) > 1) {
        fprintf(stderr, "split %d sample %lld: peak mel bin %d, expected %d (%.0f Hz)\n", split,
                (long long)i, b, e, freq);
    }
    CHECK(abs(b - e) <= 1);
    CHECK(range > 0.5);   /* a real peak, not silence */
}

static void check_silent(const loaded *L, int split, int64_t i)
{
    int m = find_mod(&L->info, "audio");
    int M = (int)L->info.modality[m].shape[1], F = (int)L->info.modality[m].shape[2];
    const float *s = (const float *)L->b[split]->modality[m].data + (size_t)i * M * F;
    float v0 = s[0];
    int same = 1;
    for (int k = 1; k < M * F; k++) {
        same &= s[k] == v0;
    }
    CHECK(same);
}

/* Mean colour of sample i's frame (3, S, S) in 0..1. */
static void check_colour(const loaded *L, int split, int64_t i, double r, double g, double b)
{
    int m = find_mod(&L->info, "image");
    CHECK(m >= 0);
    if (m < 0) {
        return;
    }
    int64_t S = L->info.modality[m].shape[1];
    const float *px = (const float *)L->b[split]->modality[m].data + (size_t)i * 3 * S * S;
    double want[3] = {r, g, b};
    for (int c = 0; c < 3; c++) {
        double sum = 0;
        for (int64_t k = 0; k < S * S; k++) {
            sum += px[c * S * S + k];
        }
        double mean = sum / (double)(S * S);
        if (fabs(mean - want[c]) > 0.1) {
            fprintf(stderr, "split %d sample %lld channel %d: mean %.3f, expected %.3f\n", split,
                    (long long)i, c, mean, want[c]);
        }
        CHECK(fabs(mean - want[c]) <= 0.1);
    }
}

/* The command (printf-style, after "mpsl ") must fail with needle (and needle2) in its output. */
static void expect_refusal(const char *needle, const char *needle2, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void expect_refusal(const char *needle, const char *needle2, const char *fmt, ...)
{
    char args[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    int rc = fx_mpsl(mpsl, out, sizeof out, "%s", args);
    CHECK(rc != 0);
    CHECK_CONTAINS(out, needle);
    if (needle2) {
        CHECK_CONTAINS(out, needle2);
    }
    fprintf(stderr, "refused as expected: %.400s\n", out);
}

/* ------------------------------------------------------------ MELD */

static const char *meld_header =
    "Sr No.,Utterance,Speaker,Emotion,Sentiment,Dialogue_ID,Utterance_ID,Season,Episode,"
    "StartTime,EndTime\n";

static void test_meld(void)
{
    /* train: joy 440 Hz (quotes, comma, newline in the text), anger 1000 Hz (mojibake),
     * neutral 2000 Hz, sadness without audio (left out); dev: sadness 3000 Hz;
     * test: surprise 600 Hz, fear 1500 Hz */
    clip(P("meld/MELD.Raw/train_splits/dia0_utt0.mp4"), 440, "red");
    clip(P("meld/MELD.Raw/train_splits/dia0_utt1.mp4"), 1000, "red");
    clip(P("meld/MELD.Raw/train_splits/dia1_utt0.mp4"), 2000, "red");
    clip(P("meld/MELD.Raw/train_splits/dia1_utt1.mp4"), 0, "red");
    clip(P("meld/MELD.Raw/dev_splits_complete/dia0_utt0.mp4"), 3000, "red");
    clip(P("meld/MELD.Raw/output_repeated_splits_test/dia0_utt0.mp4"), 600, "red");
    clip(P("meld/MELD.Raw/output_repeated_splits_test/dia0_utt1.mp4"), 1500, "red");
    fx_write(P("meld/train_sent_emo.csv"),
             "%s1,\"Hello, \"\"world\"\"\nagain\",Chandler,joy,positive,0,0,8,21,"
             "\"00:16:16,059\",\"00:16:21,731\"\r\n"
             "2,I\xc3\xa2\xe2\x82\xac\xe2\x84\xa2m fine,Joey,Anger,negative,0,1,8,21,a,b\r\n"
             "3,Okay.,Ross,neutral,neutral,1,0,8,21,a,b\r\n"
             "4,Silence,Ross,sadness,negative,1,1,8,21,a,b\r\n", meld_header);
    fx_write(P("meld/dev_sent_emo.csv"), "%s1,So sad,Monica,sadness,negative,0,0,1,1,a,b\n",
             meld_header);
    fx_write(P("meld/test_sent_emo.csv"),
             "%s1,Wow!,Rachel,surprise,positive,0,0,1,1,a,b\n"
             "2,Scary,Phoebe,fear,negative,0,1,1,1,a,b\n", meld_header);

    int rc = fx_mpsl(mpsl, out, sizeof out, "convert meld --in %s --out %s --set val=train "
                                            "--max-caption-bytes 32",
                     P("meld"), P("meld.mpsl"));
    CHECK(rc == 0);
    fprintf(stderr, "%s", out);
    CHECK_CONTAINS(out, "1 clip without an audio track left out");
    CHECK_CONTAINS(out, "1 transcripts repaired");
    loaded L;
    load(P("meld.mpsl"), &L);
    if (L.ok) {
        CHECK(L.info.n_classes == 7);
        CHECK(L.info.n_train == 4 && L.info.n_test == 2);
        int a = find_mod(&L.info, "audio"), t = find_mod(&L.info, "text");
        CHECK(L.info.n_modalities == 2 && a == 0 && t == 1);
        CHECK(L.info.modality[a].ndim == 3 && L.info.modality[a].shape[0] == 1 &&
              L.info.modality[a].shape[1] == 128 && L.info.modality[a].shape[2] == 512);
        CHECK(L.info.modality[t].dtype == MPSL_I32 && L.info.modality[t].ndim == 1 &&
              L.info.modality[t].shape[0] == 32);
        const int32_t want_train[4] = {3, 0, 4, 5}, want_test[2] = {6, 2};
        for (int i = 0; i < 4; i++) {
            CHECK(L.b[0]->labels[i] == want_train[i]);
        }
        for (int i = 0; i < 2; i++) {
            CHECK(L.b[1]->labels[i] == want_test[i]);
        }
        const double f_train[4] = {440, 1000, 2000, 3000}, f_test[2] = {600, 1500};
        for (int i = 0; i < 4; i++) {
            check_tone(&L, 0, i, f_train[i]);
        }
        for (int i = 0; i < 2; i++) {
            check_tone(&L, 1, i, f_test[i]);
        }
        char *s0 = fx_text(&L.b[0]->modality[t], 0, 0, 1, 32);
        char *s1 = fx_text(&L.b[0]->modality[t], 1, 0, 1, 32);
        char *s4 = fx_text(&L.b[1]->modality[t], 0, 0, 1, 32);
        CHECK(strcmp(s0, "Hello, \"world\"\nagain") == 0);
        CHECK(strcmp(s1, "I\xe2\x80\x99m fine") == 0);   /* mojibake repaired */
        CHECK(strcmp(s4, "Wow!") == 0);
        free(s0);
        free(s1);
        free(s4);
        /* normalised audio: the train values have mean ~0 */
        const float *au = L.b[0]->modality[a].data;
        double sum = 0;
        for (int64_t k = 0; k < 4 * 128 * 512; k++) {
            sum += au[k];
        }
        CHECK(fabs(sum / (4.0 * 128 * 512)) < 0.05);
    }
    unload(&L);

    /* --limit, f16 storage, dev dropped by default */
    rc = fx_mpsl(mpsl, out, sizeof out, "convert meld --in %s --out %s --limit 2 --set "
                                        "audio_storage=f16 --set frames=64 --quiet",
                 P("meld"), P("meld2.mpsl"));
    CHECK(rc == 0);
    load(P("meld2.mpsl"), &L);
    if (L.ok) {
        CHECK(L.info.n_train == 2 && L.info.n_test == 2);
        CHECK(L.info.modality[0].shape[2] == 64);
        check_tone(&L, 0, 0, 440);
    }
    unload(&L);

    /* refusals */
    expect_refusal("mel_bins", NULL, "convert meld --in %s --out %s --set mel_bins=300",
                   P("meld"), P("x.mpsl"));
    /* a clip the CSV lists is missing: stop naming it; on_error=skip leaves it out */
    fx_write(P("meld/test_sent_emo.csv"),
             "%s1,Wow!,Rachel,surprise,positive,0,0,1,1,a,b\n"
             "2,Gone,Phoebe,fear,negative,7,3,1,1,a,b\n", meld_header);
    expect_refusal("dia7_utt3.mp4", "on_error=skip", "convert meld --in %s --out %s",
                   P("meld"), P("x.mpsl"));
    CHECK(access(P("x.mpsl"), F_OK) != 0);
    rc = fx_mpsl(mpsl, out, sizeof out, "convert meld --in %s --out %s --set on_error=skip",
                 P("meld"), P("x.mpsl"));
    CHECK(rc == 0);
    CHECK_CONTAINS(out, "1 broken clip left out");
    CHECK_CONTAINS(out, "dia7_utt3.mp4");
    /* a corrupt clip */
    fx_write(P("meld/MELD.Raw/output_repeated_splits_test/dia7_utt3.mp4"), "not a video at all");
    expect_refusal("dia7_utt3.mp4", NULL, "convert meld --in %s --out %s", P("meld"),
                   P("x.mpsl"));
    /* CSV rows: an unknown emotion, an unterminated quote, a short row */
    fx_write(P("meld/test_sent_emo.csv"), "%s1,Wow!,Rachel,happy,positive,0,0,1,1,a,b\n",
             meld_header);
    expect_refusal("test_sent_emo.csv:2", "unknown emotion 'happy'",
                   "convert meld --in %s --out %s", P("meld"), P("x.mpsl"));
    fx_write(P("meld/test_sent_emo.csv"), "%s1,Wow!,Rachel,joy,positive,0,0,1,1,a,b\n"
             "2,\"Wow!,Rachel,joy,positive,0,1,1,1,a,b\n", meld_header);
    expect_refusal("test_sent_emo.csv:3", "unterminated quoted field",
                   "convert meld --in %s --out %s", P("meld"), P("x.mpsl"));
    fx_write(P("meld/test_sent_emo.csv"), "%s1,Wow!,Rachel,joy\n", meld_header);
    expect_refusal("test_sent_emo.csv:2", "4 fields, the header has 11",
                   "convert meld --in %s --out %s", P("meld"), P("x.mpsl"));
    /* a missing CSV */
    unlink(P("meld/test_sent_emo.csv"));
    expect_refusal("missing test_sent_emo.csv", NULL, "convert meld --in %s --out %s",
                   P("meld"), P("x.mpsl"));
}

/* ------------------------------------------------------------ UCF101 */

static void test_ucf101(void)
{
    const char *lists = "ucf/UCF101TrainTestSplits-RecognitionTask/ucfTrainTestlist";
    fx_write(P("%s/classInd.txt", lists), "1 Archery\r\n2 Biking\r\n3 HandstandPushups\r\n");
    fx_write(P("%s/trainlist01.txt", lists),
             "Archery/v_Archery_g01_c01.avi 1\r\nArchery/v_Archery_g01_c02.avi 1\r\n"
             "Biking/v_Biking_g01_c01.avi 2\r\nBiking/v_Biking_g01_c02.avi 2\r\n"
             "HandstandPushups/v_HandStandPushups_g01_c01.avi 3\r\n");
    fx_write(P("%s/testlist01.txt", lists),
             "Archery/v_Archery_g02_c01.avi\r\nBiking/v_Biking_g02_c01.avi\r\n"
             "HandstandPushups/v_HandStandPushups_g02_c01.avi\r\n");
    /* Archery: red + 440 Hz; Biking: lime (0,255,0), no audio; HandstandPushups: blue +
     * 2000 Hz, files spelt v_HandstandPushups (the list says HandStand) */
    clip(P("ucf/UCF101/UCF-101/Archery/v_Archery_g01_c01.avi"), 440, "red");
    clip(P("ucf/UCF101/UCF-101/Archery/v_Archery_g01_c02.avi"), 440, "red");
    clip(P("ucf/UCF101/UCF-101/Archery/v_Archery_g02_c01.avi"), 440, "red");
    clip(P("ucf/UCF101/UCF-101/Biking/v_Biking_g01_c01.avi"), 0, "lime");
    clip(P("ucf/UCF101/UCF-101/Biking/v_Biking_g01_c02.avi"), 0, "lime");
    clip(P("ucf/UCF101/UCF-101/Biking/v_Biking_g02_c01.avi"), 0, "lime");
    clip(P("ucf/UCF101/UCF-101/HandstandPushups/v_HandstandPushups_g01_c01.avi"), 2000, "blue");
    clip(P("ucf/UCF101/UCF-101/HandstandPushups/v_HandstandPushups_g02_c01.avi"), 2000, "blue");

    int rc = fx_mpsl(mpsl, out, sizeof out, "convert ucf101 --in %s --out %s --image-size 32",
                     P("ucf"), P("ucf.mpsl"));
    CHECK(rc == 0);
    fprintf(stderr, "%s", out);
    loaded L;
    load(P("ucf.mpsl"), &L);
    if (L.ok) {
        CHECK(L.info.n_classes == 3 && L.info.n_train == 5 && L.info.n_test == 3);
        int im = find_mod(&L.info, "image"), a = find_mod(&L.info, "audio");
        CHECK(im == 0 && a == 1);
        CHECK(L.info.modality[im].shape[0] == 3 && L.info.modality[im].shape[1] == 32 &&
              L.info.modality[im].shape[2] == 32);
        CHECK(L.info.modality[a].shape[1] == 128 && L.info.modality[a].shape[2] == 1024);
        const int32_t want[5] = {0, 0, 1, 1, 2};
        for (int i = 0; i < 5; i++) {
            CHECK(L.b[0]->labels[i] == want[i]);
        }
        check_colour(&L, 0, 0, 1, 0, 0);
        check_colour(&L, 0, 2, 0, 1, 0);
        check_colour(&L, 1, 2, 0, 0, 1);
        check_tone(&L, 0, 0, 440);
        check_tone(&L, 0, 4, 2000);
        check_tone(&L, 1, 2, 2000);
        check_silent(&L, 0, 2);   /* no audio track: silence */
        check_silent(&L, 1, 1);
    }
    unload(&L);

    /* require_audio=1: the Biking clips go, and so does the class */
    rc = fx_mpsl(mpsl, out, sizeof out, "convert ucf101 --in %s --out %s --image-size 16 "
                                        "--set require_audio=1 --set frames=32",
                 P("ucf"), P("ucf2.mpsl"));
    CHECK(rc == 0);
    CHECK_CONTAINS(out, "2 clips without an audio track left out");
    CHECK_CONTAINS(out, "1 of 3 classes have no clip");
    load(P("ucf2.mpsl"), &L);
    if (L.ok) {
        CHECK(L.info.n_classes == 2 && L.info.n_train == 3 && L.info.n_test == 2);
        CHECK(L.b[0]->labels[2] == 1 && L.b[1]->labels[1] == 1);
        check_colour(&L, 0, 2, 0, 0, 1);
    }
    unload(&L);

    /* refusals: a class not in classInd, a missing split list, a missing clip */
    fx_write(P("%s/testlist01.txt", lists), "Archery/v_Archery_g02_c01.avi\nRowing/v_Rowing_g01_c01.avi\n");
    expect_refusal("testlist01.txt:2", "class 'Rowing'", "convert ucf101 --in %s --out %s",
                   P("ucf"), P("x.mpsl"));
    fx_write(P("%s/testlist01.txt", lists), "Archery/v_Archery_g09_c01.avi\n");
    expect_refusal("v_Archery_g09_c01.avi", "No such file", "convert ucf101 --in %s --out %s "
                   "--image-size 16", P("ucf"), P("x.mpsl"));
    unlink(P("%s/testlist01.txt", lists));
    expect_refusal("testlist01.txt", "missing", "convert ucf101 --in %s --out %s", P("ucf"),
                   P("x.mpsl"));
}

/* ------------------------------------------------------------ Kinetics-Sounds */

static void test_kinetics_sounds(void)
{
    const char *hdr = "label,youtube_id,time_start,time_end,split\n";
    fx_write(P("ks/kinetics400/train.csv"),
             "%splaying piano,aaa,10,20,train\n\"blowing out candles\",bbb,0,10,train\n"
             "dancing ballet,ccc,5,15,train\nplaying piano,gone,1,11,train\n"
             "playing piano,ddd,30,40,train\n", hdr);
    fx_write(P("ks/kinetics400/validate.csv"),
             "%splaying piano,eee,3,13,val\nblowing out candles,fff,7,17,val\n", hdr);
    clip(P("ks/videos/train/playing piano/aaa_000010_000020.mp4"), 440, "red");
    clip(P("ks/videos/train/blowing_out_candles/bbb_000000_000010.mp4"), 2000, "blue");
    clip(P("ks/videos/train/dancing ballet/ccc_000005_000015.mp4"), 1000, "lime");
    clip(P("ks/videos/train/playing piano/ddd_30_40.mkv"), 0, "red");  /* no audio: left out */
    clip(P("ks/videos/val/playing piano/eee_000003_000013.mp4"), 440, "red");
    clip(P("ks/videos/val/blowing out candles/fff_000007_000017.mp4"), 2000, "blue");
    int rc = fx_mpsl(mpsl, out, sizeof out, "convert kinetics_sounds --in %s --out %s "
                                            "--image-size 16 --set frames=128",
                     P("ks"), P("ks.mpsl"));
    CHECK(rc == 0);
    fprintf(stderr, "%s", out);
    CHECK_CONTAINS(out, "1 clip without an audio track left out");
    CHECK_CONTAINS(out, "(1 and 0 listed");
    CHECK_CONTAINS(out, "32 of 34 classes match no Kinetics-400 label");
    loaded L;
    load(P("ks.mpsl"), &L);
    if (L.ok) {
        /* classes kept in the list's order: blowing out (8) -> 0, playing piano (28) -> 1 */
        CHECK(L.info.n_classes == 2 && L.info.n_train == 2 && L.info.n_test == 2);
        CHECK(L.b[0]->labels[0] == 1 && L.b[0]->labels[1] == 0);
        CHECK(L.b[1]->labels[0] == 1 && L.b[1]->labels[1] == 0);
        check_colour(&L, 0, 0, 1, 0, 0);
        check_colour(&L, 0, 1, 0, 0, 1);
        check_tone(&L, 0, 0, 440);
        check_tone(&L, 1, 1, 2000);
    }
    unload(&L);
    expect_refusal("no clip directory", "videos/train/train/", "convert kinetics_sounds --in %s --out %s "
                   "--set videos=%s", P("ks"), P("x.mpsl"), P("ks/videos/train"));
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: test_convert_av MPSL PREPARED_PLUGIN\n");
        return 2;
    }
    mpsl = argv[1];
    if (system("ffmpeg -version >/dev/null 2>&1") != 0) {
        fprintf(stderr, "ffmpeg not found (apt-get install ffmpeg): skipping\n");
        return 77;
    }
    snprintf(root, sizeof root, "/tmp/mpsl-cav.XXXXXX");
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        return 1;
    }
    if (fx_plugin_load(argv[2]) != 0) {
        return 1;
    }
    test_meld();
    test_ucf101();
    test_kinetics_sounds();
    fx_plugin_unload();
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (!check_failures && system(cmd) != 0) {
        fprintf(stderr, "could not remove %s\n", root);
    }
    return check_exit();
}
