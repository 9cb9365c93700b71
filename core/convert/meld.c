/* meld.c: `mpsl convert meld`: MELD (Poria et al. 2019) utterances -> 7-class emotion
 * recognition with modalities audio (1, mel_bins, frames) log-mel and text (L) UTF-8 bytes.
 *
 * Raw layout (`mpsl fetch meld` into IN, inner archives unpacked):
 *   IN/[MELD.Raw/]{train,dev,test}_sent_emo.csv      Utterance, Emotion, Dialogue_ID,
 *                                                     Utterance_ID, ... (RFC 4180 CSV)
 *   IN/[MELD.Raw/]train_splits/dia{D}_utt{U}.mp4      train clips
 *   IN/[MELD.Raw/]dev_splits_complete/dia{D}_utt{U}.mp4
 *   IN/[MELD.Raw/]output_repeated_splits_test/dia{D}_utt{U}.mp4
 * Splits: train -> train, test -> test, dev per --set val=drop|train|test (default drop). */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convert/convert_internal.h"
#include "convert/media.h"
#include "util/util.h"

static const char *const meld_classes[] = {"anger", "disgust", "fear", "joy",
                                           "neutral", "sadness", "surprise"};
#define MELD_N_CLASSES 7

static const char *const meld_bases[] = {"", "MELD.Raw", "MELD.Raw/MELD.Raw", "MELD.Raw/data"};
#define MELD_N_BASES 4

typedef struct meld_split {
    const char *csv;       /* train_sent_emo.csv */
    const char *clips;     /* train_splits */
    const char *archive;   /* train.tar.gz: where the clips come packed */
} meld_split;

static const meld_split meld_splits[3] = {
    {"train_sent_emo.csv", "train_splits", "train.tar.gz"},
    {"dev_sent_emo.csv", "dev_splits_complete", "dev.tar.gz"},
    {"test_sent_emo.csv", "output_repeated_splits_test", "test.tar.gz"},
};

/* Look for name under each base. */
static char *meld_find(const convert_options *o, const char *name, int dir, const char *what,
                       mpsl_error *err)
{
    const char *cand[MELD_N_BASES];
    char *owned[MELD_N_BASES];
    for (int b = 0; b < MELD_N_BASES; b++) {
        owned[b] = meld_bases[b][0] ? mpsl_strfmt("%s/%s", meld_bases[b], name) : mpsl_strdup(name);
        cand[b] = owned[b] ? owned[b] : name;
    }
    char *p = convert_locate(o, o->in_dir, cand, MELD_N_BASES, dir, what, err);
    for (int b = 0; b < MELD_N_BASES; b++) {
        free(owned[b]);
    }
    return p;
}

/* Clip directory of a split; when it is missing but its archive is there, say to unpack. */
static char *meld_clip_dir(const convert_options *o, const meld_split *s, mpsl_error *err)
{
    char what[96];
    snprintf(what, sizeof what, "clip directory %s/", s->clips);
    char *dir = meld_find(o, s->clips, 1, what, err);
    if (dir) {
        return dir;
    }
    mpsl_error e2;
    char *arch = meld_find(o, s->archive, 0, s->archive, &e2);
    if (arch) {
        char *parent = mpsl_strdup(arch);
        char *slash = parent ? strrchr(parent, '/') : NULL;
        if (slash) {
            *slash = '\0';
        }
        mpsl_errs(err, MPSL_ERR_IO, "convert meld: the clips of %s are still packed in %s: "
                                    "unpack it first (tar -xzf %s -C %s, which creates %s/)",
                  s->csv, arch, arch, parent ? parent : ".", s->clips);
        free(parent);
        free(arch);
    }
    return NULL;
}

static int parse_id(const char *s, long *out)
{
    while (isspace((unsigned char)*s)) {
        s++;
    }
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    while (isspace((unsigned char)*end)) {
        end++;
    }
    if (errno || end == s || *end || v < 0) {
        return -1;
    }
    *out = v;
    return 0;
}

static int emotion_index(const char *s)
{
    char buf[32];
    size_t k = 0;
    while (isspace((unsigned char)*s)) {
        s++;
    }
    for (; *s && k < sizeof buf - 1; s++) {
        buf[k++] = (char)tolower((unsigned char)*s);
    }
    while (k > 0 && isspace((unsigned char)buf[k - 1])) {
        k--;
    }
    buf[k] = '\0';
    for (int c = 0; c < MELD_N_CLASSES; c++) {
        if (strcmp(buf, meld_classes[c]) == 0) {
            return c;
        }
    }
    return -1;
}

typedef struct meld_stats {
    int64_t fixed_text, truncated;
} meld_stats;

/* Read one CSV into list, clips from clip_dir. */
static int meld_read(const convert_options *o, const char *csv_path, const char *clip_dir,
                     const char *split_tag, int fix_text, int text_len, av_list *list,
                     meld_stats *st, mpsl_error *err)
{
    av_csv *c = NULL;
    int rc = av_csv_open(csv_path, &c, err);
    if (rc != MPSL_OK) {
        return rc;
    }
    char **f;
    int nf;
    int64_t line;
    rc = av_csv_next(c, &f, &nf, &line, err);
    if (rc <= 0) {
        av_csv_close(c);
        return rc < 0 ? rc : mpsl_err(err, "%s: empty file (expected a header line)", csv_path);
    }
    int header_n = nf;
    const char *need[4] = {"Utterance", "Emotion", "Dialogue_ID", "Utterance_ID"};
    int col[4];
    for (int k = 0; k < 4; k++) {
        col[k] = av_csv_column(f, nf, need[k]);
        if (col[k] < 0) {
            av_csv_close(c);
            return mpsl_err(err, "%s:%lld: no column '%s' in the header (MELD's CSVs have "
                                 "Utterance, Emotion, Dialogue_ID, Utterance_ID)",
                            csv_path, (long long)line, need[k]);
        }
    }
    while ((rc = av_csv_next(c, &f, &nf, &line, err)) > 0) {
        if (nf != header_n) {
            rc = mpsl_err(err, "%s:%lld: %d fields, the header has %d (an unquoted comma or "
                               "quote?)", csv_path, (long long)line, nf, header_n);
            break;
        }
        int label = emotion_index(f[col[1]]);
        long dia, utt;
        if (label < 0) {
            rc = mpsl_err(err, "%s:%lld: unknown emotion '%s' (expected anger, disgust, fear, "
                               "joy, neutral, sadness or surprise)", csv_path, (long long)line,
                          f[col[1]]);
            break;
        }
        if (parse_id(f[col[2]], &dia) != 0 || parse_id(f[col[3]], &utt) != 0) {
            rc = mpsl_err(err, "%s:%lld: Dialogue_ID '%s' / Utterance_ID '%s': expected "
                               "non-negative integers", csv_path, (long long)line, f[col[2]],
                          f[col[3]]);
            break;
        }
        int changed = 0;
        char *text = av_text_clean(f[col[0]], fix_text, &changed);
        char *path = mpsl_strfmt("%s/dia%ld_utt%ld.mp4", clip_dir, dia, utt);
        char *name = mpsl_strfmt("%s/dia%ld_utt%ld.mp4", split_tag, dia, utt);
        if (!text || !path || !name ||
            av_list_add(list, path, name, label, text) != MPSL_OK) {
            free(text);
            free(path);
            free(name);
            rc = mpsl_errs(err, MPSL_ERR_NOMEM, "convert meld: out of memory");
            break;
        }
        st->fixed_text += changed;
        st->truncated += (int64_t)strlen(text) > text_len;
        free(text);
        free(path);
        free(name);
    }
    av_csv_close(c);
    return rc < 0 ? rc : MPSL_OK;
}

int convert_meld(const convert_options *o, mpsl_error *err)
{
    av_job j;
    av_job_init(&j, "meld", o);
    j.audio = 1;
    j.frames = 512;
    j.require_audio = 1;
    j.text_len = convert_text_len(o, 256);
    j.n_classes = MELD_N_CLASSES;
    j.class_names = meld_classes;
    int rc = av_job_options(&j, err);
    int val = rc == MPSL_OK ? convert_val_policy(o, err) : 0;
    int64_t fix = 1;
    if (rc == MPSL_OK && val < 0) {
        rc = MPSL_ERR_INVALID;
    }
    if (rc == MPSL_OK) {
        rc = convert_opt_int(o, "fix_text", 1, 0, 1, &fix, err);
    }
    meld_stats st = {0, 0};
    /* MELD split s -> our split (-1: dropped). */
    int target[3] = {MPSL_SPLIT_TRAIN, val == 1 ? MPSL_SPLIT_TRAIN : val == 2 ? MPSL_SPLIT_TEST
                                                                           : -1,
                     MPSL_SPLIT_TEST};
    static const char *const tags[3] = {"train", "dev", "test"};
    for (int s = 0; s < 3 && rc == MPSL_OK; s++) {
        if (target[s] < 0) {
            continue;
        }
        char *csv = meld_find(o, meld_splits[s].csv, 0, meld_splits[s].csv, err);
        char *dir = csv ? meld_clip_dir(o, &meld_splits[s], err) : NULL;
        if (!csv || !dir) {
            rc = MPSL_ERR_IO;
        } else {
            rc = meld_read(o, csv, dir, tags[s], (int)fix, j.text_len, &j.split[target[s]],
                           &st, err);
        }
        free(csv);
        free(dir);
    }
    if (rc == MPSL_OK && !o->quiet) {
        fprintf(stderr, "convert meld: %lld train, %lld test utterances listed (dev: %s); "
                        "%lld transcripts repaired (mojibake or Windows-1252), %lld longer than "
                        "%d bytes (truncated)\n", (long long)j.split[0].n,
                (long long)j.split[1].n, val == 0 ? "dropped" : val == 1 ? "into train"
                                                                         : "into test",
                (long long)st.fixed_text, (long long)st.truncated, j.text_len);
    }
    if (rc == MPSL_OK) {
        rc = av_convert(&j, err);
    }
    av_job_free(&j);
    return rc;
}
