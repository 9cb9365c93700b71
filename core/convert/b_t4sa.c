/* b_t4sa.c: B-T4SA -> a classification file: the tweet's image (3,S,S) u8 + the tweet's text
 * (L,) i32, 3 classes (0 negative, 1 neutral, 2 positive).
 *
 * Raw layout (`mpsl fetch b_t4sa`, which unpacks b-t4sa_imgs.tar into DIR/b-t4sa_imgs/):
 *     DIR/b-t4sa_imgs/b-t4sa_{train,val,test}.txt  one "data/75801/758014713804587008-1.jpg 2"
 *                                                   per line: image path (relative to the
 *                                                   folder of the split file) and label
 *     DIR/b-t4sa_imgs/data/...                      the images
 *     DIR/raw_tweets_text.csv                       "id,text" CSV (RFC 4180 quoting, texts
 *                                                   may hold commas, quotes and newlines)
 *     DIR/t4sa_text_sentiment.tsv                   not read (the labels come from the
 *                                                   split files)
 * The split files are also found one folder deeper (b-t4sa_imgs/b-t4sa/ or
 * b-t4sa_imgs/b-t4sa_imgs/). An image's tweet id is its file name up to the first '-'.
 * Val: left out unless --set val=train|test. A tweet id missing from the CSV is refused unless
 * --set missing_text=empty (then the text is empty). */
#include "convert/convert_internal.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/util.h"

#define BT_CLASSES 3

typedef struct bt_sample {
    char *path;
    int32_t label;
    uint64_t tweet;
    const char *text;
} bt_sample;

typedef struct bt_split {
    bt_sample *s;
    int64_t n, cap;
    char **paths;   /* view for convert_write_images */
    int32_t *labels;
} bt_split;

/* ---------------------------------------------------------------- tweet id -> text */

typedef struct bt_map {
    uint64_t *key;   /* 0 = empty (tweet ids are never 0) */
    char **text;
    size_t cap;
} bt_map;

static size_t bt_hash(uint64_t k, size_t cap)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    return (size_t)k & (cap - 1);
}

static char **bt_slot(bt_map *m, uint64_t k, int insert)
{
    size_t i = bt_hash(k, m->cap);
    while (m->key[i] != 0) {
        if (m->key[i] == k) {
            return &m->text[i];
        }
        i = (i + 1) & (m->cap - 1);
    }
    if (!insert) {
        return NULL;
    }
    m->key[i] = k;
    return &m->text[i];
}

static void bt_map_free(bt_map *m)
{
    for (size_t i = 0; m->text && i < m->cap; i++) {
        free(m->text[i]);
    }
    free(m->key);
    free(m->text);
}

/* Reads raw_tweets_text.csv, keeping the texts of the ids already in the map. A quoted field
 * may span lines; "" inside quotes is a quote. The first record is a header when its first
 * field is not a number. */
static int bt_read_csv(const char *path, bt_map *m, int64_t *records, mpsl_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        return mpsl_errs(err, MPSL_ERR_IO, "convert b_t4sa: cannot open %s: %s (run `mpsl "
                                           "fetch b_t4sa`)", path, strerror(errno));
    }
    size_t cap = 4096;
    char *field = malloc(cap);
    char id[32];
    int rc = MPSL_OK;
    int64_t line = 1, rec_line = 1;
    int col = 0, c;
    int quoted = 0, in_field = 0;
    size_t len = 0;
    *records = 0;
    id[0] = '\0';
    if (!field) {
        fclose(f);
        return mpsl_errs(err, MPSL_ERR_NOMEM, "convert: out of memory");
    }
    for (;;) {
        c = getc(f);
        if (c == EOF && !quoted) {
            c = '\n'; /* a last record without newline */
            if (!in_field && col == 0 && len == 0) {
                break;
            }
        } else if (c == EOF) {
            rc = mpsl_err(err, "convert b_t4sa: %s:%lld: a quoted field is never closed",
                          path, (long long)rec_line);
            break;
        }
        if (quoted) {
            if (c == '"') {
                int d = getc(f);
                if (d == '"') {
                    c = '"';
                } else {
                    quoted = 0;
                    if (d != EOF) {
                        ungetc(d, f);
                    }
                    continue;
                }
            } else if (c == '\n') {
                line++;
            }
        } else if (c == '"' && len == 0 && !in_field) {
            quoted = 1;
            in_field = 1;
            continue;
        } else if (c == ',' || c == '\n' || c == '\r') {
            if (c == '\r') {
                continue;
            }
            field[len] = '\0';
            if (col == 0) {
                snprintf(id, sizeof id, "%s", field);
            }
            if (c == ',') {
                if (col == 0) {
                    col = 1;
                    len = 0;
                    in_field = 0;
                    continue;
                }
                /* a comma in an unquoted text field: keep it */
            } else {
                /* end of record */
                char *endp = NULL;
                errno = 0;
                unsigned long long tid = strtoull(id, &endp, 10);
                int numeric = id[0] && !errno && endp && *endp == '\0' && tid > 0;
                if (numeric) {
                    (*records)++;
                    char **slot = bt_slot(m, tid, 0);
                    if (slot && !*slot) {
                        *slot = mpsl_strdup(col == 1 ? field : "");
                        if (!*slot) {
                            rc = mpsl_errs(err, MPSL_ERR_NOMEM, "convert: out of memory");
                            break;
                        }
                    }
                } else if (rec_line != 1) {
                    rc = mpsl_err(err, "convert b_t4sa: %s:%lld: '%s' is not a tweet id "
                                       "(expected \"id,text\" records)", path,
                                  (long long)rec_line, id);
                    break;
                }
                line++;
                rec_line = line;
                col = 0;
                len = 0;
                in_field = 0;
                id[0] = '\0';
                if (feof(f)) {
                    break;
                }
                continue;
            }
        }
        if (len + 2 >= cap) {
            char *nf = realloc(field, cap * 2);
            if (!nf) {
                rc = mpsl_errs(err, MPSL_ERR_NOMEM, "convert: out of memory");
                break;
            }
            field = nf;
            cap *= 2;
        }
        field[len++] = (char)c;
        in_field = 1;
    }
    if (rc == MPSL_OK && ferror(f)) {
        rc = mpsl_errs(err, MPSL_ERR_IO, "convert b_t4sa: cannot read %s", path);
    }
    free(field);
    fclose(f);
    return rc;
}

/* ---------------------------------------------------------------- split files */

static int bt_read_split(const convert_options *o, const char *dir, const char *file,
                         bt_split *dst, mpsl_error *err)
{
    char *path = convert_join(dir, file);
    if (!path) {
        return mpsl_errs(err, MPSL_ERR_NOMEM, "convert: out of memory");
    }
    if (!convert_is_file(path)) {
        int rc = mpsl_errs(err, MPSL_ERR_IO, "convert b_t4sa: missing %s (run `mpsl fetch "
                                             "b_t4sa`)", path);
        free(path);
        return rc;
    }
    char *data = NULL;
    char **lines = NULL;
    size_t len;
    int64_t n = 0;
    int rc = convert_read_file(path, &data, &len, err);
    if (rc == MPSL_OK) {
        rc = convert_lines(data, &lines, &n, path, err);
    }
    for (int64_t i = 0; i < n && rc == MPSL_OK; i++) {
        char *l = lines[i];
        while (*l == ' ' || *l == '\t') {
            l++;
        }
        if (!*l) {
            continue;
        }
        if (o->limit > 0 && dst->n >= o->limit) {
            break;
        }
        char *sep = l + strcspn(l, " \t");
        char *lab = sep;
        while (*lab == ' ' || *lab == '\t') {
            lab++;
        }
        *sep = '\0';
        char *end = NULL;
        long label = strtol(lab, &end, 10);
        while (end && (*end == ' ' || *end == '\t')) {
            end++;
        }
        if (!*lab || !end || *end || label < 0 || label >= BT_CLASSES) {
            rc = mpsl_err(err, "convert b_t4sa: %s:%lld: expected \"IMAGE_PATH LABEL\" with "
                               "LABEL 0 (negative), 1 (neutral) or 2 (positive)", path,
                          (long long)i + 1);
            break;
        }
        if (l[0] == '/' || strstr(l, "..")) {
            rc = mpsl_err(err, "convert b_t4sa: %s:%lld: unsafe image path '%s'", path,
                          (long long)i + 1, l);
            break;
        }
        const char *base = strrchr(l, '/');
        base = base ? base + 1 : l;
        char *idend = NULL;
        errno = 0;
        unsigned long long tid = strtoull(base, &idend, 10);
        if (errno || idend == base || (*idend != '-' && *idend != '.') || tid == 0) {
            rc = mpsl_err(err, "convert b_t4sa: %s:%lld: image name '%s' does not start with "
                               "a tweet id (TWEETID-N.jpg)", path, (long long)i + 1, base);
            break;
        }
        if (dst->n == dst->cap) {
            int64_t cap = dst->cap ? dst->cap * 2 : 1024;
            bt_sample *ns = realloc(dst->s, (size_t)cap * sizeof *ns);
            if (!ns) {
                rc = mpsl_errs(err, MPSL_ERR_NOMEM, "convert: out of memory");
                break;
            }
            dst->s = ns;
            dst->cap = cap;
        }
        bt_sample *s = &dst->s[dst->n];
        s->path = convert_join(dir, l);
        s->label = (int32_t)label;
        s->tweet = tid;
        s->text = NULL;
        if (!s->path) {
            rc = mpsl_errs(err, MPSL_ERR_NOMEM, "convert: out of memory");
            break;
        }
        dst->n++;
    }
    free(lines);
    free(data);
    free(path);
    return rc;
}

static const char *bt_text(void *ctx, int64_t i, int s)
{
    (void)s;
    const bt_split *sp = ctx;
    return sp->s[i].text;
}

static void bt_free(bt_split *s)
{
    for (int64_t i = 0; s->s && i < s->n; i++) {
        free(s->s[i].path);
    }
    free(s->s);
    free(s->paths);
    free(s->labels);
}

int convert_b_t4sa(const convert_options *o, mpsl_error *err)
{
    int val_policy = convert_val_policy(o, err);
    if (val_policy < 0) {
        return MPSL_ERR_INVALID;
    }
    const char *missing = convert_opt_str(o, "missing_text", "refuse");
    int missing_empty = strcmp(missing, "empty") == 0;
    if (!missing_empty && strcmp(missing, "refuse") != 0) {
        return mpsl_err(err, "convert b_t4sa: --set missing_text=%s: expected refuse or empty",
                        missing);
    }
    static const char *const cands[] = {
        "b-t4sa_imgs/b-t4sa_train.txt",
        "b-t4sa_imgs/b-t4sa/b-t4sa_train.txt",
        "b-t4sa_imgs/b-t4sa_imgs/b-t4sa_train.txt",
        "b-t4sa_train.txt",
    };
    char *dir = convert_locate(o, o->in_dir, cands, 4, 0, "b-t4sa_train.txt", err);
    if (!dir) {
        return MPSL_ERR_IO;
    }
    *strrchr(dir, '/') = '\0';
    bt_split sp[2];
    memset(sp, 0, sizeof sp);
    bt_map map = {NULL, NULL, 0};
    prep_writer *w = NULL;
    char *csv = NULL;
    int64_t truncated = 0, no_text = 0, records = 0;
    int rc = bt_read_split(o, dir, "b-t4sa_train.txt", &sp[0], err);
    if (rc == MPSL_OK && val_policy != 0) {
        rc = bt_read_split(o, dir, "b-t4sa_val.txt", &sp[val_policy == 1 ? 0 : 1], err);
    }
    if (rc == MPSL_OK) {
        rc = bt_read_split(o, dir, "b-t4sa_test.txt", &sp[1], err);
    }
    /* Texts: collect the needed ids, then read the CSV once. */
    if (rc == MPSL_OK) {
        static const char *const ccands[] = {"raw_tweets_text.csv",
                                             "b-t4sa_imgs/raw_tweets_text.csv"};
        csv = convert_locate(o, o->in_dir, ccands, 2, 0, "raw_tweets_text.csv", err);
        if (!csv) {
            rc = MPSL_ERR_IO;
        }
    }
    if (rc == MPSL_OK) {
        size_t want = (size_t)(sp[0].n + sp[1].n) * 2 + 16, cap = 16;
        while (cap < want) {
            cap *= 2;
        }
        map.cap = cap;
        map.key = calloc(cap, sizeof *map.key);
        map.text = calloc(cap, sizeof *map.text);
        if (!map.key || !map.text) {
            rc = mpsl_errs(err, MPSL_ERR_NOMEM, "convert: out of memory");
        }
        for (int s = 0; s < 2 && rc == MPSL_OK; s++) {
            for (int64_t i = 0; i < sp[s].n; i++) {
                bt_slot(&map, sp[s].s[i].tweet, 1);
            }
        }
    }
    if (rc == MPSL_OK) {
        rc = bt_read_csv(csv, &map, &records, err);
    }
    for (int s = 0; s < 2 && rc == MPSL_OK; s++) {
        sp[s].paths = malloc((size_t)(sp[s].n ? sp[s].n : 1) * sizeof *sp[s].paths);
        sp[s].labels = malloc((size_t)(sp[s].n ? sp[s].n : 1) * sizeof *sp[s].labels);
        if (!sp[s].paths || !sp[s].labels) {
            rc = mpsl_errs(err, MPSL_ERR_NOMEM, "convert: out of memory");
            break;
        }
        for (int64_t i = 0; i < sp[s].n; i++) {
            bt_sample *x = &sp[s].s[i];
            char **slot = bt_slot(&map, x->tweet, 0);
            x->text = slot ? *slot : NULL;
            if (!x->text) {
                if (!missing_empty) {
                    rc = mpsl_err(err, "convert b_t4sa: tweet %llu (image %s) has no text in "
                                       "%s; --set missing_text=empty converts it with an empty "
                                       "text", (unsigned long long)x->tweet, x->path, csv);
                    break;
                }
                no_text++;
                x->text = "";
            }
            sp[s].paths[i] = x->path;
            sp[s].labels[i] = x->label;
        }
    }
    int L = convert_text_len(o, 256);
    int Sz = o->image_size;
    if (rc == MPSL_OK) {
        prep_modality_spec mods[2] = {
            {"image", MPSL_PREP_U8, 3, {3, Sz, Sz}, 1.0f / 255.0f, 0.0f},
            {"text", MPSL_PREP_I32, 1, {L, 0, 0}, 1.0f, 0.0f},
        };
        static const char *const classes[BT_CLASSES] = {"negative", "neutral", "positive"};
        char source[128];
        snprintf(source, sizeof source, "b_t4sa (convert %s, %dpx, %d bytes)", CONVERT_VERSION,
                 Sz, L);
        if (!o->quiet) {
            fprintf(stderr, "convert b_t4sa: %lld train and %lld test images (val %s), texts "
                            "from %lld tweets in %s\n", (long long)sp[0].n, (long long)sp[1].n,
                    val_policy == 1 ? "added to train" : val_policy == 2 ? "added to test"
                                                                         : "left out",
                    (long long)records, csv);
        }
        rc = prep_writer_open(o->out_path, MPSL_PREP_CLASSIFICATION, BT_CLASSES, classes, mods,
                              2, sp[0].n, sp[1].n, source, &w, err);
    }
    for (int s = 0; s < 2 && rc == MPSL_OK; s++) {
        mpsl_split split = s == 0 ? MPSL_SPLIT_TRAIN : MPSL_SPLIT_TEST;
        rc = prep_writer_labels(w, split, sp[s].labels, sp[s].n, err);
        if (rc == MPSL_OK) {
            rc = convert_write_images(w, split, 0, sp[s].paths, sp[s].n, o,
                                      s == 0 ? "train images" : "test images", err);
        }
        if (rc == MPSL_OK) {
            rc = convert_write_text(w, split, 1, sp[s].n, 1, L, bt_text, &sp[s], &truncated,
                                    err);
        }
    }
    if (rc == MPSL_OK) {
        rc = prep_writer_close(w, err);
        w = NULL;
        if (rc == MPSL_OK && !o->quiet) {
            fprintf(stderr, "convert b_t4sa: %lld texts cut at %d bytes, %lld tweets without "
                            "text\n", (long long)truncated, L, (long long)no_text);
        }
    }
    prep_writer_abort(w);
    bt_free(&sp[0]);
    bt_free(&sp[1]);
    bt_map_free(&map);
    free(csv);
    free(dir);
    return rc;
}
