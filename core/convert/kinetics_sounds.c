/* kinetics_sounds.c: `mpsl convert kinetics_sounds`: the Kinetics-Sounds subset of
 * Kinetics-400 (Arandjelovic & Zisserman 2017) -> action classification with modalities image
 * (3, S, S) (the clip's middle frame) and audio (1, mel_bins, frames) log-mel.
 *
 * Raw layout (IN = the `mpsl fetch kinetics_sounds` directory):
 *   IN/kinetics400/{train,validate,test}.csv   label,youtube_id,time_start,time_end,split[,...]
 *   VIDEOS/<split>/<label>/<youtube_id>_<start>_<end>.mp4   fetched by a separate tool
 *       VIDEOS: --set videos=DIR, else IN/videos, else IN; <split>: train for train.csv,
 *       val, validate or valid for validate.csv, test for test.csv; <label> as in the CSV or
 *       with '_' for ' '; <start>/<end> as %06d (the ActivityNet crawler's names) or as
 *       plain integers; extensions .mp4, .mkv, .webm.
 * Splits: train.csv -> train, validate.csv -> test (Kinetics' test labels were published
 * late; --set test_csv=test uses test.csv instead).
 * Classes: the 34 of Look, Listen and Learn as listed in datasets/kinetics_sounds.yaml; a name
 * that is not a Kinetics-400 label is mapped to the one label starting with it, or through
 * the table below (e.g. "blowing out" -> "blowing out candles"); names matching no label in
 * the CSVs are reported and left out, as are classes without a downloaded clip. A listed clip
 * whose file is not there is not a failure (many are gone from YouTube): it is counted. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convert/convert_internal.h"
#include "convert/media.h"
#include "util/util.h"

static const char *const ks_classes[] = {
    "blowing nose", "bowling", "chopping wood", "ripping paper", "shuffling cards", "singing",
    "tapping pen", "typing", "blowing out", "dribbling ball", "laughing",
    "mowing the lawn by pushing lawnmower", "shoveling snow", "stomping", "tap dancing",
    "tapping guitar", "tickling", "fingerpicking", "patting", "playing accordion",
    "playing bagpipes", "playing bass guitar", "playing clarinet", "playing drums",
    "playing guitar", "playing harmonica", "playing keyboard", "playing organ",
    "playing piano", "playing saxophone", "playing trombone", "playing trumpet",
    "playing violin", "playing xylophone"};
#define KS_N (int)(sizeof ks_classes / sizeof ks_classes[0])

/* Paper names -> Kinetics-400 labels (datasets/kinetics_sounds.yaml, notes). */
static const char *const ks_map[][2] = {
    {"blowing out", "blowing out candles"},
    {"dribbling ball", "dribbling basketball"},
    {"mowing the lawn by pushing lawnmower", "mowing lawn"},
    {"stomping", "stomping grapes"},
};

typedef struct ks_labels {
    char **k400;           /* the Kinetics-400 label each class maps to (NULL: none) */
} ks_labels;

/* Split a CSV with a header: label, youtube_id, time_start, time_end. */
typedef struct ks_row {
    char *label, *id;
    long start, end;
} ks_row;

static int read_csv(const char *path, ks_row **rows, int64_t *n, mpsl_error *err)
{
    av_csv *c = NULL;
    *rows = NULL;
    *n = 0;
    int rc = av_csv_open(path, &c, err);
    if (rc != MPSL_OK) {
        return rc;
    }
    char **f;
    int nf;
    int64_t line, cap = 0;
    rc = av_csv_next(c, &f, &nf, &line, err);
    if (rc <= 0) {
        av_csv_close(c);
        return rc < 0 ? rc : mpsl_err(err, "%s: empty file (expected a header line)", path);
    }
    int hn = nf;
    const char *need[4] = {"label", "youtube_id", "time_start", "time_end"};
    int col[4];
    for (int k = 0; k < 4; k++) {
        if ((col[k] = av_csv_column(f, nf, need[k])) < 0) {
            av_csv_close(c);
            return mpsl_err(err, "%s:%lld: no column '%s' in the header (Kinetics CSVs have "
                                 "label, youtube_id, time_start, time_end, split)",
                            path, (long long)line, need[k]);
        }
    }
    while ((rc = av_csv_next(c, &f, &nf, &line, err)) > 0) {
        if (nf != hn) {
            rc = mpsl_err(err, "%s:%lld: %d fields, the header has %d", path, (long long)line,
                          nf, hn);
            break;
        }
        char *e1, *e2;
        long s = strtol(f[col[2]], &e1, 10), e = strtol(f[col[3]], &e2, 10);
        if (e1 == f[col[2]] || *e1 || e2 == f[col[3]] || *e2 || s < 0 || e < s ||
            !f[col[1]][0]) {
            rc = mpsl_err(err, "%s:%lld: youtube_id '%s', time_start '%s', time_end '%s': "
                               "expected an id and whole seconds", path, (long long)line,
                          f[col[1]], f[col[2]], f[col[3]]);
            break;
        }
        if (*n == cap) {
            cap = cap ? cap * 2 : 1024;
            ks_row *p = realloc(*rows, (size_t)cap * sizeof *p);
            if (!p) {
                rc = mpsl_errs(err, MPSL_ERR_NOMEM, "convert kinetics_sounds: out of memory");
                break;
            }
            *rows = p;
        }
        ks_row *r = &(*rows)[(*n)++];
        r->label = mpsl_strdup(f[col[0]]);
        r->id = mpsl_strdup(f[col[1]]);
        r->start = s;
        r->end = e;
        if (!r->label || !r->id) {
            rc = mpsl_errs(err, MPSL_ERR_NOMEM, "convert kinetics_sounds: out of memory");
            break;
        }
    }
    av_csv_close(c);
    return rc < 0 ? rc : MPSL_OK;
}

static void free_rows(ks_row *rows, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        free(rows[i].label);
        free(rows[i].id);
    }
    free(rows);
}

/* Map each class to a Kinetics-400 label present in rows. */
static void map_classes(ks_row *const *rows, const int64_t *n, int n_sets, const char **k400)
{
    for (int c = 0; c < KS_N; c++) {
        const char *want = ks_classes[c];
        for (size_t m = 0; m < sizeof ks_map / sizeof ks_map[0]; m++) {
            if (strcmp(ks_map[m][0], want) == 0) {
                want = ks_map[m][1];
            }
        }
        const char *exact = NULL, *prefix = NULL;
        int n_prefix = 0;
        size_t wl = strlen(ks_classes[c]);
        for (int s = 0; s < n_sets && !exact; s++) {
            for (int64_t i = 0; i < n[s] && !exact; i++) {
                const char *l = rows[s][i].label;
                if (strcmp(l, want) == 0 || strcmp(l, ks_classes[c]) == 0) {
                    exact = l;
                } else if (strncmp(l, ks_classes[c], wl) == 0 && l[wl] == ' ' &&
                           (!prefix || strcmp(prefix, l) != 0)) {
                    prefix = l;
                    n_prefix++;
                }
            }
        }
        k400[c] = exact ? exact : n_prefix == 1 ? prefix : NULL;
    }
}

/* The clip file of a row, or NULL. */
static char *find_clip(const char *const *split_dirs, int n_dirs, const ks_row *r)
{
    static const char *const ext[] = {"mp4", "mkv", "webm"};
    char label_us[256];
    snprintf(label_us, sizeof label_us, "%s", r->label);
    for (char *p = label_us; *p; p++) {
        *p = *p == ' ' ? '_' : *p;
    }
    const char *labels[2] = {r->label, label_us};
    for (int d = 0; d < n_dirs; d++) {
        for (int l = 0; l < 2; l++) {
            for (int fmt = 0; fmt < 2; fmt++) {
                for (int e = 0; e < 3; e++) {
                    char *p = fmt == 0 ? mpsl_strfmt("%s/%s/%s_%06ld_%06ld.%s", split_dirs[d],
                                                     labels[l], r->id, r->start, r->end, ext[e])
                                       : mpsl_strfmt("%s/%s/%s_%ld_%ld.%s", split_dirs[d],
                                                     labels[l], r->id, r->start, r->end, ext[e]);
                    if (p && convert_is_file(p)) {
                        return p;
                    }
                    free(p);
                }
            }
        }
    }
    return NULL;
}

int convert_kinetics_sounds(const convert_options *o, mpsl_error *err)
{
    av_job j;
    av_job_init(&j, "kinetics_sounds", o);
    j.image = 1;
    j.audio = 1;
    j.frames = 1024;
    j.require_audio = 1;
    j.drop_empty_classes = 1;
    j.n_classes = KS_N;
    int rc = av_job_options(&j, err);
    const char *test_csv = convert_opt_str(o, "test_csv", "validate");
    if (rc == MPSL_OK && strcmp(test_csv, "validate") != 0 && strcmp(test_csv, "test") != 0) {
        rc = mpsl_err(err, "convert kinetics_sounds: --set test_csv=%s: expected validate or "
                           "test", test_csv);
    }
    const char *csv_names[2] = {"train.csv", strcmp(test_csv, "test") == 0 ? "test.csv"
                                                                             : "validate.csv"};
    ks_row *rows[2] = {NULL, NULL};
    int64_t n_rows[2] = {0, 0};
    for (int s = 0; s < 2 && rc == MPSL_OK; s++) {
        char c1[64], c2[64];
        snprintf(c1, sizeof c1, "kinetics400/%s", csv_names[s]);
        snprintf(c2, sizeof c2, "%s", csv_names[s]);
        const char *cand[2] = {c1, c2};
        char *path = convert_locate(o, o->in_dir, cand, 2, 0, csv_names[s], err);
        rc = path ? read_csv(path, &rows[s], &n_rows[s], err) : MPSL_ERR_IO;
        free(path);
    }
    const char *k400[KS_N];
    char *videos = NULL;
    if (rc == MPSL_OK) {
        map_classes(rows, n_rows, 2, k400);
        char list[1024] = "";
        int unmapped = 0;
        for (int c = 0; c < KS_N; c++) {
            if (!k400[c]) {
                size_t len = strlen(list);
                snprintf(list + len, sizeof list - len, "%s'%s'", unmapped ? ", " : "",
                         ks_classes[c]);
                unmapped++;
            }
        }
        if (unmapped && !o->quiet) {
            fprintf(stderr, "convert kinetics_sounds: %d of %d classes match no Kinetics-400 "
                            "label in the CSVs and are left out: %s\n", unmapped, KS_N, list);
        }
        const char *v = convert_opt_str(o, "videos", NULL);
        if (v) {
            videos = mpsl_strdup(v);
            if (!convert_is_dir(videos)) {
                rc = mpsl_errs(err, MPSL_ERR_IO, "convert kinetics_sounds: --set videos=%s is "
                                                 "not a directory", v);
            }
        } else {
            static const char *const cand[] = {"videos", "."};
            videos = convert_locate(o, o->in_dir, cand, 2, 1, "the video directory", err);
            rc = videos ? MPSL_OK : MPSL_ERR_IO;
        }
    }
    int64_t missing[2] = {0, 0};
    for (int s = 0; s < 2 && rc == MPSL_OK; s++) {
        const char *sub_train[] = {"train"};
        const char *sub_val[] = {"val", "validate", "valid", "validation"};
        const char *sub_test[] = {"test"};
        const char *const *subs = s == 0 ? sub_train : strcmp(test_csv, "test") == 0 ? sub_test
                                                                                   : sub_val;
        int n_subs = s == 0 || strcmp(test_csv, "test") == 0 ? 1 : 4;
        char *dirs[4];
        int nd = 0;
        for (int k = 0; k < n_subs; k++) {
            char *d = convert_join(videos, subs[k]);
            if (d && convert_is_dir(d)) {
                dirs[nd++] = d;
            } else {
                free(d);
            }
        }
        if (nd == 0) {
            rc = mpsl_errs(err, MPSL_ERR_IO, "convert kinetics_sounds: no clip directory "
                                             "%s/%s/ for %s (clips go to "
                                             "%s/%s/<label>/<youtube_id>_<start>_<end>.mp4; "
                                             "--set videos=DIR)", videos, subs[0],
                           csv_names[s], videos, subs[0]);
            break;
        }
        for (int64_t i = 0; i < n_rows[s] && rc == MPSL_OK; i++) {
            const ks_row *r = &rows[s][i];
            int label = -1;
            for (int c = 0; c < KS_N && label < 0; c++) {
                if (k400[c] && strcmp(k400[c], r->label) == 0) {
                    label = c;
                }
            }
            if (label < 0) {
                continue;
            }
            char *p = find_clip((const char *const *)dirs, nd, r);
            if (!p) {
                missing[s]++;
                continue;
            }
            char *name = mpsl_strfmt("%s/%s/%s_%06ld_%06ld", s == 0 ? "train" : test_csv,
                                     r->label, r->id, r->start, r->end);
            if (!name || av_list_add(&j.split[s], p, name, label, NULL) != MPSL_OK) {
                rc = mpsl_errs(err, MPSL_ERR_NOMEM, "convert kinetics_sounds: out of memory");
            }
            free(name);
            free(p);
        }
        for (int k = 0; k < nd; k++) {
            free(dirs[k]);
        }
    }
    if (rc == MPSL_OK) {
        j.class_names = ks_classes;
        if (!o->quiet) {
            fprintf(stderr, "convert kinetics_sounds: %lld train, %lld test clips found "
                            "(%lld and %lld listed in the CSVs for these classes are not in %s)\n",
                    (long long)j.split[0].n, (long long)j.split[1].n, (long long)missing[0],
                    (long long)missing[1], videos);
        }
        rc = av_convert(&j, err);
    }
    for (int s = 0; s < 2; s++) {
        free_rows(rows[s], n_rows[s]);
    }
    free(videos);
    av_job_free(&j);
    return rc;
}
