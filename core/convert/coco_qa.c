/* coco_qa.c: COCO-QA -> a classification file: image (3,S,S) u8 + question (L,) i32, label =
 * the answer's class.
 *
 * Raw layout (`mpsl fetch coco_qa`, which unpacks cocoqa-2015-05-17.zip):
 *     DIR/cocoqa-2015-05-17/{train,test}/questions.txt   one question per line
 *                                       /answers.txt     one word per line
 *                                       /img_ids.txt     the COCO image id per line
 *                                       (/types.txt      0 object, 1 number, 2 color,
 *                                                        3 location: not used)
 * (DIR/{train,test}/ and a doubled cocoqa-2015-05-17/ folder are accepted too). The images are
 * MS-COCO 2014's, from the mscoco dataset directory (--set coco_dir=DIR; default: the
 * sibling folder DIR/../mscoco, where `mpsl fetch mscoco` puts them next to coco_qa): train
 * questions use train2014/COCO_train2014_%012d.jpg, test questions val2014/...
 *
 * Classes: every distinct answer of the TRAINING file, sorted bytewise (strcmp), so class ids
 * do not depend on --limit. A test answer that never occurs in training is refused (naming
 * the file, line and answer) unless --set unknown_answers=drop leaves those questions out. */
#include "convert/convert_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/util.h"

typedef struct qa_split {
    char *q_data, *a_data, *i_data;  /* file contents (own the lines) */
    char **q, **a, **ids;
    int64_t n_q, n_a, n_i;
    /* kept samples */
    int64_t n;
    const char **question;
    int32_t *label;
    char **path;
} qa_split;

static void qa_free(qa_split *s)
{
    for (int64_t i = 0; s->path && i < s->n; i++) {
        free(s->path[i]);
    }
    free(s->path);
    free(s->question);
    free(s->label);
    free(s->q);
    free(s->a);
    free(s->ids);
    free(s->q_data);
    free(s->a_data);
    free(s->i_data);
}

static int qa_read(const char *dir, const char *name, char **data, char ***lines, int64_t *n,
                   char **path_out, mpsl_error *err)
{
    char *path = convert_join(dir, name);
    if (!path) {
        return mpsl_errs(err, MPSL_ERR_NOMEM, "convert: out of memory");
    }
    if (!convert_is_file(path)) {
        int rc = mpsl_errs(err, MPSL_ERR_IO, "convert coco_qa: missing %s (run `mpsl fetch "
                                             "coco_qa`)", path);
        free(path);
        return rc;
    }
    size_t len;
    int rc = convert_read_file(path, data, &len, err);
    if (rc == MPSL_OK) {
        rc = convert_lines(*data, lines, n, path, err);
    }
    if (rc == MPSL_OK && path_out) {
        *path_out = path;
    } else {
        free(path);
    }
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int32_t qa_class(char **vocab, int64_t n_vocab, const char *answer)
{
    char **hit = bsearch(&answer, vocab, (size_t)n_vocab, sizeof *vocab, cmp_str);
    return hit ? (int32_t)(hit - vocab) : -1;
}

static const char *qa_text(void *ctx, int64_t i, int s)
{
    (void)s;
    const qa_split *sp = ctx;
    return sp->question[i];
}

/* The COCO image folder for a split: the first candidate holding `probe`. */
static char *qa_image_dir(const convert_options *o, const char *coco_dir, const char *folder,
                          const char *probe, mpsl_error *err)
{
    char c1[64], c2[64];
    snprintf(c1, sizeof c1, "%s/%s", folder, folder);
    snprintf(c2, sizeof c2, "%s", folder);
    const char *cands[] = {c1, c2};
    char tried[1024] = "";
    for (int i = 0; i < 2; i++) {
        char *dir = convert_join(coco_dir, cands[i]);
        char *file = dir ? convert_join(dir, probe) : NULL;
        if (file && convert_is_file(file)) {
            free(file);
            return dir;
        }
        size_t len = strlen(tried);
        snprintf(tried + len, sizeof tried - len, "%s%s", i ? ", " : "", file ? file : "?");
        free(file);
        free(dir);
    }
    mpsl_errs(err, MPSL_ERR_IO,
              "convert %s: missing COCO image %s: looked for %s (COCO-QA uses MS-COCO 2014's "
              "images: run `mpsl fetch mscoco`, or give their folder with --set coco_dir=DIR)",
              o->name, probe, tried);
    return NULL;
}

int convert_coco_qa(const convert_options *o, mpsl_error *err)
{
    const char *unknown = convert_opt_str(o, "unknown_answers", "refuse");
    int drop_unknown = strcmp(unknown, "drop") == 0;
    if (!drop_unknown && strcmp(unknown, "refuse") != 0) {
        return mpsl_err(err, "convert coco_qa: --set unknown_answers=%s: expected refuse or "
                             "drop", unknown);
    }
    static const char *const cands[] = {
        "cocoqa-2015-05-17/train/questions.txt",
        "cocoqa-2015-05-17/cocoqa-2015-05-17/train/questions.txt",
        "train/questions.txt",
    };
    char *probe = convert_locate(o, o->in_dir, cands, 3, 0, "train/questions.txt", err);
    if (!probe) {
        return MPSL_ERR_IO;
    }
    probe[strlen(probe) - strlen("/train/questions.txt")] = '\0';
    char *base = probe;
    char *coco_dir = NULL;
    const char *cd = convert_opt_str(o, "coco_dir", NULL);
    if (cd) {
        coco_dir = mpsl_strdup(cd);
    } else {
        char *in = convert_join(o->in_dir, "..");
        coco_dir = in ? convert_join(in, "mscoco") : NULL;
        free(in);
    }
    qa_split sp[2];
    memset(sp, 0, sizeof sp);
    char **vocab = NULL;
    int64_t n_vocab = 0, truncated = 0, dropped = 0;
    prep_writer *w = NULL;
    int rc = coco_dir ? MPSL_OK : mpsl_errs(err, MPSL_ERR_NOMEM, "convert: out of memory");
    const char *names[2] = {"train", "test"};
    char *apath[2] = {NULL, NULL}, *ipath[2] = {NULL, NULL}, *qpath[2] = {NULL, NULL};
    for (int s = 0; s < 2 && rc == MPSL_OK; s++) {
        char *dir = convert_join(base, names[s]);
        rc = qa_read(dir, "questions.txt", &sp[s].q_data, &sp[s].q, &sp[s].n_q, &qpath[s], err);
        if (rc == MPSL_OK) {
            rc = qa_read(dir, "answers.txt", &sp[s].a_data, &sp[s].a, &sp[s].n_a, &apath[s],
                         err);
        }
        if (rc == MPSL_OK) {
            rc = qa_read(dir, "img_ids.txt", &sp[s].i_data, &sp[s].ids, &sp[s].n_i, &ipath[s],
                         err);
        }
        if (rc == MPSL_OK && (sp[s].n_q != sp[s].n_a || sp[s].n_q != sp[s].n_i)) {
            rc = mpsl_err(err, "convert coco_qa: %s has %lld questions but %s %lld answers "
                               "and %s %lld image ids: the three files must have a line each "
                               "per question", qpath[s], (long long)sp[s].n_q, apath[s],
                          (long long)sp[s].n_a, ipath[s], (long long)sp[s].n_i);
        }
        if (rc == MPSL_OK && sp[s].n_q == 0) {
            rc = mpsl_err(err, "convert coco_qa: %s holds no questions", qpath[s]);
        }
        free(dir);
    }
    /* The answer vocabulary: distinct training answers, sorted. */
    if (rc == MPSL_OK) {
        vocab = malloc((size_t)sp[0].n_a * sizeof *vocab);
        if (!vocab) {
            rc = mpsl_errs(err, MPSL_ERR_NOMEM, "convert: out of memory");
        }
    }
    if (rc == MPSL_OK) {
        for (int64_t i = 0; i < sp[0].n_a; i++) {
            if (!sp[0].a[i][0] || strlen(sp[0].a[i]) >= MPSL_PREP_CLASS_NAME) {
                rc = mpsl_err(err, "convert coco_qa: %s:%lld: answer '%s' is empty or longer "
                                   "than %d bytes", apath[0], (long long)i + 1, sp[0].a[i],
                              MPSL_PREP_CLASS_NAME - 1);
                break;
            }
            vocab[i] = sp[0].a[i];
        }
    }
    if (rc == MPSL_OK) {
        qsort(vocab, (size_t)sp[0].n_a, sizeof *vocab, cmp_str);
        for (int64_t i = 0; i < sp[0].n_a; i++) {
            if (n_vocab == 0 || strcmp(vocab[n_vocab - 1], vocab[i]) != 0) {
                vocab[n_vocab++] = vocab[i];
            }
        }
    }
    /* Samples: label, question, image path. */
    for (int s = 0; s < 2 && rc == MPSL_OK; s++) {
        qa_split *S = &sp[s];
        S->question = malloc((size_t)S->n_q * sizeof *S->question);
        S->label = malloc((size_t)S->n_q * sizeof *S->label);
        S->path = calloc((size_t)S->n_q, sizeof *S->path);
        if (!S->question || !S->label || !S->path) {
            rc = mpsl_errs(err, MPSL_ERR_NOMEM, "convert: out of memory");
            break;
        }
        const char *folder = s == 0 ? "train2014" : "val2014";
        char *img_dir = NULL;
        for (int64_t i = 0; i < S->n_q && rc == MPSL_OK; i++) {
            if (o->limit > 0 && S->n >= o->limit) {
                break;
            }
            int32_t c = qa_class(vocab, n_vocab, S->a[i]);
            if (c < 0) {
                if (drop_unknown) {
                    dropped++;
                    continue;
                }
                rc = mpsl_err(err, "convert coco_qa: %s:%lld: answer '%s' never occurs in the "
                                   "training answers (%s), so it has no class; --set "
                                   "unknown_answers=drop leaves such questions out", apath[s],
                              (long long)i + 1, S->a[i], apath[0]);
                break;
            }
            char *end = NULL;
            errno = 0;
            long long id = strtoll(S->ids[i], &end, 10);
            if (errno || end == S->ids[i] || *end || id < 0) {
                rc = mpsl_err(err, "convert coco_qa: %s:%lld: '%s' is not a COCO image id",
                              ipath[s], (long long)i + 1, S->ids[i]);
                break;
            }
            char file[96];
            snprintf(file, sizeof file, "COCO_%s_%012lld.jpg", folder, id);
            if (!img_dir && !(img_dir = qa_image_dir(o, coco_dir, folder, file, err))) {
                rc = MPSL_ERR_IO;
                break;
            }
            S->path[S->n] = convert_join(img_dir, file);
            if (!S->path[S->n]) {
                rc = mpsl_errs(err, MPSL_ERR_NOMEM, "convert: out of memory");
                break;
            }
            S->question[S->n] = S->q[i];
            S->label[S->n] = c;
            S->n++;
        }
        free(img_dir);
    }
    int L = convert_text_len(o, 64);
    int Sz = o->image_size;
    if (rc == MPSL_OK) {
        prep_modality_spec mods[2] = {
            {"image", MPSL_PREP_U8, 3, {3, Sz, Sz}, 1.0f / 255.0f, 0.0f},
            {"text", MPSL_PREP_I32, 1, {L, 0, 0}, 1.0f, 0.0f},
        };
        char source[128];
        snprintf(source, sizeof source, "coco_qa (convert %s, %dpx, %d bytes)",
                 CONVERT_VERSION, Sz, L);
        if (!o->quiet) {
            fprintf(stderr, "convert coco_qa: %lld train and %lld test questions, %lld answer "
                            "classes%s from %s\n", (long long)sp[0].n, (long long)sp[1].n,
                    (long long)n_vocab, dropped ? " (test questions with unseen answers left "
                                                  "out)" : "", base);
        }
        rc = prep_writer_open(o->out_path, MPSL_PREP_CLASSIFICATION, (uint32_t)n_vocab,
                              (const char *const *)vocab, mods, 2, sp[0].n, sp[1].n, source, &w,
                              err);
    }
    for (int s = 0; s < 2 && rc == MPSL_OK; s++) {
        mpsl_split split = s == 0 ? MPSL_SPLIT_TRAIN : MPSL_SPLIT_TEST;
        rc = prep_writer_labels(w, split, sp[s].label, sp[s].n, err);
        if (rc == MPSL_OK) {
            rc = convert_write_images(w, split, 0, sp[s].path, sp[s].n, o,
                                      s == 0 ? "train images" : "test images", err);
        }
        if (rc == MPSL_OK) {
            rc = convert_write_text(w, split, 1, sp[s].n, 1, L, qa_text, &sp[s], &truncated,
                                    err);
        }
    }
    if (rc == MPSL_OK) {
        rc = prep_writer_close(w, err);
        w = NULL;
        if (rc == MPSL_OK && !o->quiet) {
            fprintf(stderr, "convert coco_qa: %lld test questions with unseen answers left "
                            "out; %lld questions cut at %d bytes\n", (long long)dropped,
                    (long long)truncated, L);
        }
    }
    prep_writer_abort(w);
    for (int s = 0; s < 2; s++) {
        qa_free(&sp[s]);
        free(apath[s]);
        free(ipath[s]);
        free(qpath[s]);
    }
    free(vocab);
    free(coco_dir);
    free(base);
    return rc;
}
