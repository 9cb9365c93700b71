/* ucf101.c: `mpsl convert ucf101`: UCF101 (Soomro et al. 2012) -> 101-class action
 * recognition with modalities image (3, S, S) (the clip's middle frame) and audio
 * (1, mel_bins, frames) log-mel of the clip's sound track (centred window).
 *
 * Raw layout (`mpsl fetch ucf101` into IN):
 *   IN/[UCF101/]UCF-101/<Class>/v_<Class>_gXX_cYY.avi
 *   IN/[UCF101TrainTestSplits-RecognitionTask/]ucfTrainTestlist/classInd.txt   "1 ApplyEyeMakeup"
 *       trainlistK.txt   "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1"   (K = --set split=1..3)
 *       testlistK.txt    "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi"
 *
 * No-audio policy: about half of the clips have no audio track. require_audio=0 (default):
 * they are kept with a silent spectrogram (every value log(1e-6), u8 0), so the official
 * 101-class split is complete; require_audio=1: they are left out and so are the classes left
 * with no clip (drop_empty_classes follows require_audio unless set), labels renumbered. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "convert/convert_internal.h"
#include "convert/media.h"
#include "util/util.h"

#define UCF_MAX_CLASSES 1024

typedef struct ucf_classes {
    char *names[UCF_MAX_CLASSES];
    int n;
} ucf_classes;

static void trim(char *s)
{
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1])) {
        s[--n] = '\0';
    }
    size_t k = 0;
    while (isspace((unsigned char)s[k])) {
        k++;
    }
    memmove(s, s + k, n - k + 1);
}

static int read_classes(const char *path, ucf_classes *c, mpsl_error *err)
{
    char *data = NULL;
    size_t len = 0;
    char **lines = NULL;
    int64_t n = 0;
    int rc = convert_read_file(path, &data, &len, err);
    if (rc == MPSL_OK) {
        rc = convert_lines(data, &lines, &n, path, err);
    }
    for (int64_t i = 0; rc == MPSL_OK && i < n; i++) {
        trim(lines[i]);
        if (!lines[i][0]) {
            continue;
        }
        char *sp = lines[i];
        while (*sp && !isspace((unsigned char)*sp)) {
            sp++;
        }
        char *end;
        long idx = strtol(lines[i], &end, 10);
        if (end != sp || !*sp) {
            rc = mpsl_err(err, "%s:%lld: expected \"INDEX ClassName\", got \"%s\"", path,
                          (long long)i + 1, lines[i]);
            break;
        }
        trim(sp);
        if (idx != c->n + 1 || c->n == UCF_MAX_CLASSES) {
            rc = mpsl_err(err, "%s:%lld: class index %ld, expected %d (indices count up from 1)",
                          path, (long long)i + 1, idx, c->n + 1);
            break;
        }
        if (!(c->names[c->n++] = mpsl_strdup(sp))) {
            rc = mpsl_errs(err, MPSL_ERR_NOMEM, "convert ucf101: out of memory");
        }
    }
    if (rc == MPSL_OK && c->n == 0) {
        rc = mpsl_err(err, "%s: no classes listed", path);
    }
    free(lines);
    free(data);
    return rc;
}

static int class_of(const ucf_classes *c, const char *name)
{
    for (int k = 0; k < c->n; k++) {
        if (strcmp(c->names[k], name) == 0) {
            return k;
        }
    }
    for (int k = 0; k < c->n; k++) {
        if (strcasecmp(c->names[k], name) == 0) {
            return k;
        }
    }
    return -1;
}

/* The clip's path: root/rel, or a case-insensitive match of its file name in its class
 * directory (the lists spell some names differently from the files, e.g. HandStandPushups). */
static char *clip_path(const char *root, const char *rel)
{
    char *p = convert_join(root, rel);
    if (!p || convert_is_file(p)) {
        return p;
    }
    char *slash = strrchr(p, '/');
    *slash = '\0';
    const char *file = slash + 1;
    DIR *d = opendir(p);
    if (!d) {
        /* the class directory itself may differ in case: try the parent */
        *slash = '/';
        return p;
    }
    struct dirent *e;
    char *found = NULL;
    while ((e = readdir(d)) != NULL) {
        if (strcasecmp(e->d_name, file) == 0) {
            found = mpsl_strfmt("%s/%s", p, e->d_name);
            break;
        }
    }
    closedir(d);
    if (found) {
        free(p);
        return found;
    }
    *slash = '/';
    return p;
}

static int read_list(const char *path, const char *root, const ucf_classes *c, int labelled,
                     av_list *list, mpsl_error *err)
{
    char *data = NULL;
    size_t len = 0;
    char **lines = NULL;
    int64_t n = 0;
    int rc = convert_read_file(path, &data, &len, err);
    if (rc == MPSL_OK) {
        rc = convert_lines(data, &lines, &n, path, err);
    }
    for (int64_t i = 0; rc == MPSL_OK && i < n; i++) {
        char *l = lines[i];
        trim(l);
        if (!l[0]) {
            continue;
        }
        char *sp = l;
        while (*sp && !isspace((unsigned char)*sp)) {
            sp++;
        }
        long given = -1;
        if (*sp) {
            *sp++ = '\0';
            trim(sp);
            char *end;
            given = strtol(sp, &end, 10);
            if (end == sp || *end || given < 1 || given > c->n) {
                rc = mpsl_err(err, "%s:%lld: label '%s': expected a class index 1..%d", path,
                              (long long)i + 1, sp, c->n);
                break;
            }
        } else if (labelled) {
            rc = mpsl_err(err, "%s:%lld: expected \"Class/clip.avi INDEX\"", path,
                          (long long)i + 1);
            break;
        }
        char *slash = strchr(l, '/');
        if (!slash || slash == l || !slash[1]) {
            rc = mpsl_err(err, "%s:%lld: \"%s\": expected Class/clip.avi", path,
                          (long long)i + 1, l);
            break;
        }
        *slash = '\0';
        int label = class_of(c, l);
        *slash = '/';
        if (label < 0) {
            *slash = '\0';
            rc = mpsl_err(err, "%s:%lld: class '%s' is not in classInd.txt", path,
                          (long long)i + 1, l);
            break;
        }
        if (given > 0 && given - 1 != label) {
            rc = mpsl_err(err, "%s:%lld: label %ld is %s in classInd.txt, but the clip is in "
                               "%.*s/", path, (long long)i + 1, given, c->names[given - 1],
                          (int)(slash - l), l);
            break;
        }
        char *p = clip_path(root, l);
        if (!p || av_list_add(list, p, l, label, NULL) != MPSL_OK) {
            free(p);
            rc = mpsl_errs(err, MPSL_ERR_NOMEM, "convert ucf101: out of memory");
            break;
        }
        free(p);
    }
    free(lines);
    free(data);
    return rc;
}

int convert_ucf101(const convert_options *o, mpsl_error *err)
{
    av_job j;
    av_job_init(&j, "ucf101", o);
    j.image = 1;
    j.audio = 1;
    j.frames = 1024;
    j.require_audio = 0;
    const char *rq = convert_opt_str(o, "require_audio", NULL);
    j.drop_empty_classes = rq && strcmp(rq, "1") == 0;
    ucf_classes cls = {{0}, 0};
    int64_t split = 1;
    int rc = av_job_options(&j, err);
    if (rc == MPSL_OK) {
        rc = convert_opt_int(o, "split", 1, 1, 3, &split, err);
    }
    char *lists = NULL, *root = NULL;
    if (rc == MPSL_OK) {
        static const char *const cand[] = {
            "UCF101TrainTestSplits-RecognitionTask/ucfTrainTestlist", "ucfTrainTestlist",
            "UCF101TrainTestSplits-RecognitionTask"};
        lists = convert_locate(o, o->in_dir, cand, 3, 1, "the split lists (ucfTrainTestlist/)",
                               err);
        rc = lists ? MPSL_OK : MPSL_ERR_IO;
    }
    if (rc == MPSL_OK) {
        static const char *const cand[] = {"UCF101/UCF-101", "UCF-101", "UCF101"};
        root = convert_locate(o, o->in_dir, cand, 3, 1, "the videos (UCF-101/<Class>/)", err);
        rc = root ? MPSL_OK : MPSL_ERR_IO;
    }
    char names[3][32];
    snprintf(names[0], sizeof names[0], "classInd.txt");
    snprintf(names[1], sizeof names[1], "trainlist%02d.txt", (int)split);
    snprintf(names[2], sizeof names[2], "testlist%02d.txt", (int)split);
    char *files[3] = {NULL, NULL, NULL};
    for (int k = 0; k < 3 && rc == MPSL_OK; k++) {
        const char *cand[1] = {names[k]};
        files[k] = convert_locate(o, lists, cand, 1, 0, names[k], err);
        rc = files[k] ? MPSL_OK : MPSL_ERR_IO;
    }
    if (rc == MPSL_OK) {
        rc = read_classes(files[0], &cls, err);
    }
    if (rc == MPSL_OK) {
        rc = read_list(files[1], root, &cls, 1, &j.split[MPSL_SPLIT_TRAIN], err);
    }
    if (rc == MPSL_OK) {
        rc = read_list(files[2], root, &cls, 0, &j.split[MPSL_SPLIT_TEST], err);
    }
    if (rc == MPSL_OK) {
        j.n_classes = (uint32_t)cls.n;
        j.class_names = (const char *const *)cls.names;
        if (!o->quiet) {
            fprintf(stderr, "convert ucf101: split %d: %lld train, %lld test clips listed, %d "
                            "classes; clips without audio: %s\n", (int)split,
                    (long long)j.split[0].n, (long long)j.split[1].n, cls.n,
                    j.require_audio ? "left out (require_audio=1)"
                                    : "kept with a silent spectrogram (require_audio=0)");
        }
        rc = av_convert(&j, err);
    }
    for (int k = 0; k < 3; k++) {
        free(files[k]);
    }
    for (int k = 0; k < cls.n; k++) {
        free(cls.names[k]);
    }
    free(lists);
    free(root);
    av_job_free(&j);
    return rc;
}
