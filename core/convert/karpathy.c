/* karpathy.c: image-text retrieval files from Karpathy's caption splits (dataset_*.json in
 * caption_datasets.zip), shared by the flickr30k and mscoco converters.
 *
 * The JSON: {"images": [{"filename": "1000092795.jpg", "filepath": "val2014" (COCO only),
 * "split": "train|restval|val|test", "sentences": [{"raw": "Two young guys ..."}, ...]}, ...]}.
 * Each image becomes one sample: the image (3,S,S) u8 and its first 5 captions (5,L) i32;
 * label = the sample's index in its split. Splits: train and restval -> train, test -> test,
 * val -> dropped unless --set val=train|test. */
#include "convert/convert_internal.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/util.h"

#define KP_CAPTIONS 5

typedef struct kp_item {
    const char *filename, *filepath, *caption[KP_CAPTIONS];
} kp_item;

typedef struct kp_split {
    kp_item *item;
    int64_t n, cap;
    char **paths;
} kp_split;

static int kp_push(kp_split *s, const kp_item *it)
{
    if (s->n == s->cap) {
        int64_t cap = s->cap ? s->cap * 2 : 1024;
        kp_item *ni = realloc(s->item, (size_t)cap * sizeof *ni);
        if (!ni) {
            return MPSL_ERR_NOMEM;
        }
        s->item = ni;
        s->cap = cap;
    }
    s->item[s->n++] = *it;
    return MPSL_OK;
}

static const char *kp_text(void *ctx, int64_t i, int s)
{
    const kp_split *sp = ctx;
    return sp->item[i].caption[s];
}

/* pattern with every "%s" replaced by filepath (malloc'd). */
static char *kp_subst(const char *pattern, const char *filepath)
{
    size_t n = 1, lf = strlen(filepath);
    for (const char *p = pattern; *p; p++) {
        n += (p[0] == '%' && p[1] == 's') ? lf : 1;
    }
    char *out = malloc(n), *q = out;
    for (const char *p = pattern; out && *p; p++) {
        if (p[0] == '%' && p[1] == 's') {
            memcpy(q, filepath, lf);
            q += lf;
            p++;
        } else {
            *q++ = *p;
        }
    }
    if (out) {
        *q = '\0';
    }
    return out;
}

/* The image folder for entries with this filepath: the first candidate holding `probe`. */
static char *kp_image_dir(const convert_options *o, const karpathy_spec *k,
                          const char *filepath, const char *probe, mpsl_error *err)
{
    char tried[1024] = "";
    for (int i = 0; i < k->n_image_dirs; i++) {
        char *rel = kp_subst(k->image_dirs[i], filepath);
        char *dir = rel ? convert_join(o->in_dir, rel) : NULL;
        char *file = dir ? convert_join(dir, probe) : NULL;
        free(rel);
        if (!file) {
            free(dir);
            mpsl_errs(err, MPSL_ERR_NOMEM, "convert: out of memory");
            return NULL;
        }
        if (convert_is_file(file)) {
            free(file);
            return dir;
        }
        size_t len = strlen(tried);
        snprintf(tried + len, sizeof tried - len, "%s%s", i ? ", " : "", file);
        free(file);
        free(dir);
    }
    mpsl_errs(err, MPSL_ERR_IO,
              "convert %s: missing image %s: looked for %s (unpack the images with `mpsl "
              "fetch %s`)",
              o->name, probe, tried, o->name);
    return NULL;
}

/* Splits the JSON's images into train/test; *dropped counts val images left out. */
static int kp_parse(const convert_options *o, const char *path, json_t *root, int val_policy,
                    kp_split *train, kp_split *test, int64_t *dropped, mpsl_error *err)
{
    json_t *images = json_is_object(root) ? json_object_get(root, "images") : NULL;
    if (!json_is_array(images)) {
        return mpsl_err(err, "convert %s: %s: expected an object with an \"images\" array "
                             "(Karpathy's caption split format)", o->name, path);
    }
    size_t n = json_array_size(images);
    for (size_t i = 0; i < n; i++) {
        json_t *im = json_array_get(images, i);
        json_t *fn = json_is_object(im) ? json_object_get(im, "filename") : NULL;
        json_t *fp = json_is_object(im) ? json_object_get(im, "filepath") : NULL;
        json_t *sp = json_is_object(im) ? json_object_get(im, "split") : NULL;
        json_t *se = json_is_object(im) ? json_object_get(im, "sentences") : NULL;
        if (!json_is_string(fn) || !json_is_string(sp) || !json_is_array(se) ||
            (fp && !json_is_string(fp))) {
            return mpsl_err(err, "convert %s: %s: images[%zu]: expected an object with string "
                                 "\"filename\" and \"split\" and a \"sentences\" array",
                            o->name, path, i);
        }
        kp_item it = {json_string_value(fn), fp ? json_string_value(fp) : "", {NULL}};
        if (!it.filename[0] || strstr(it.filename, "..") || strstr(it.filepath, "..")) {
            return mpsl_err(err, "convert %s: %s: images[%zu]: unsafe or empty file name "
                                 "'%s/%s'", o->name, path, i, it.filepath, it.filename);
        }
        size_t ns = json_array_size(se);
        if (ns < KP_CAPTIONS) {
            return mpsl_err(err, "convert %s: %s: images[%zu] (%s) has %zu captions, expected "
                                 "at least %d", o->name, path, i, it.filename, ns, KP_CAPTIONS);
        }
        for (int c = 0; c < KP_CAPTIONS; c++) {
            json_t *s = json_array_get(se, (size_t)c);
            json_t *raw = json_is_object(s) ? json_object_get(s, "raw") : NULL;
            if (!json_is_string(raw)) {
                return mpsl_err(err, "convert %s: %s: images[%zu].sentences[%d]: expected an "
                                     "object with a string \"raw\"", o->name, path, i, c);
            }
            it.caption[c] = json_string_value(raw);
        }
        const char *split = json_string_value(sp);
        kp_split *dst;
        if (strcmp(split, "train") == 0 || strcmp(split, "restval") == 0) {
            dst = train;
        } else if (strcmp(split, "test") == 0) {
            dst = test;
        } else if (strcmp(split, "val") == 0) {
            dst = val_policy == 1 ? train : val_policy == 2 ? test : NULL;
        } else {
            return mpsl_err(err, "convert %s: %s: images[%zu] (%s): unknown split '%s', "
                                 "expected train, restval, val or test", o->name, path, i,
                            it.filename, split);
        }
        if (!dst) {
            (*dropped)++;
            continue;
        }
        if (o->limit > 0 && dst->n >= o->limit) {
            continue;
        }
        if (kp_push(dst, &it) != MPSL_OK) {
            return mpsl_errs(err, MPSL_ERR_NOMEM, "convert: out of memory");
        }
    }
    return MPSL_OK;
}

/* Full paths of every image of a split (the folder resolved once per filepath). */
static int kp_paths(const convert_options *o, const karpathy_spec *k, kp_split *s,
                    mpsl_error *err)
{
    s->paths = calloc((size_t)(s->n ? s->n : 1), sizeof *s->paths);
    if (!s->paths) {
        return mpsl_errs(err, MPSL_ERR_NOMEM, "convert: out of memory");
    }
    const char *known_fp[8];
    char *known_dir[8];
    int n_known = 0, rc = MPSL_OK;
    for (int64_t i = 0; i < s->n && rc == MPSL_OK; i++) {
        const kp_item *it = &s->item[i];
        char *dir = NULL;
        for (int j = 0; j < n_known; j++) {
            if (strcmp(known_fp[j], it->filepath) == 0) {
                dir = known_dir[j];
            }
        }
        if (!dir) {
            if (n_known == 8) {
                rc = mpsl_err(err, "convert %s: more than 8 different image folders "
                                   "(filepath) in the caption file", o->name);
                break;
            }
            dir = kp_image_dir(o, k, it->filepath, it->filename, err);
            if (!dir) {
                rc = MPSL_ERR_IO;
                break;
            }
            known_fp[n_known] = it->filepath;
            known_dir[n_known++] = dir;
        }
        s->paths[i] = convert_join(dir, it->filename);
        if (!s->paths[i]) {
            rc = mpsl_errs(err, MPSL_ERR_NOMEM, "convert: out of memory");
        }
    }
    for (int j = 0; j < n_known; j++) {
        free(known_dir[j]);
    }
    return rc;
}

static void kp_free(kp_split *s)
{
    for (int64_t i = 0; s->paths && i < s->n; i++) {
        free(s->paths[i]);
    }
    free(s->paths);
    free(s->item);
}

int convert_karpathy(const convert_options *o, const karpathy_spec *k, mpsl_error *err)
{
    int val_policy = convert_val_policy(o, err);
    if (val_policy < 0) {
        return MPSL_ERR_INVALID;
    }
    char rel1[128], rel2[128], rel3[128];
    snprintf(rel1, sizeof rel1, "caption_datasets/%s", k->json_name);
    snprintf(rel2, sizeof rel2, "caption_datasets/caption_datasets/%s", k->json_name);
    snprintf(rel3, sizeof rel3, "%s", k->json_name);
    const char *cands[] = {rel1, rel2, rel3};
    char *json_path = convert_locate(o, o->in_dir, cands, 3, 0, k->json_name, err);
    if (!json_path) {
        return MPSL_ERR_IO;
    }
    json_error_t je;
    json_t *root = json_load_file(json_path, 0, &je);
    if (!root) {
        int rc = mpsl_err(err, "convert %s: %s:%d:%d (byte %d): malformed JSON: %s", o->name,
                          json_path, je.line, je.column, je.position, je.text);
        free(json_path);
        return rc;
    }
    kp_split split[2];
    memset(split, 0, sizeof split);
    int64_t dropped = 0, truncated = 0;
    int L = convert_text_len(o, k->default_text_len);
    int S = o->image_size;
    prep_writer *w = NULL;
    int rc = kp_parse(o, json_path, root, val_policy, &split[0], &split[1], &dropped, err);
    if (rc == MPSL_OK && split[0].n + split[1].n == 0) {
        rc = mpsl_err(err, "convert %s: %s lists no train or test images", o->name, json_path);
    }
    for (int s = 0; s < 2 && rc == MPSL_OK; s++) {
        rc = kp_paths(o, k, &split[s], err);
    }
    if (rc == MPSL_OK) {
        prep_modality_spec mods[2] = {
            {"image", MPSL_PREP_U8, 3, {3, S, S}, 1.0f / 255.0f, 0.0f},
            {"text", MPSL_PREP_I32, 2, {KP_CAPTIONS, L, 0}, 1.0f, 0.0f},
        };
        char source[128];
        snprintf(source, sizeof source, "%s (convert %s, Karpathy split, %dpx, %d bytes)",
                 k->dataset, CONVERT_VERSION, S, L);
        if (!o->quiet) {
            fprintf(stderr, "convert %s: %lld train and %lld test images (%lld val images %s) "
                            "from %s\n", o->name, (long long)split[0].n, (long long)split[1].n,
                    (long long)(val_policy ? 0 : dropped),
                    val_policy == 1 ? "added to train" : val_policy == 2 ? "added to test"
                                                                         : "left out",
                    json_path);
        }
        rc = prep_writer_open(o->out_path, MPSL_PREP_RETRIEVAL, 0, NULL, mods, 2, split[0].n,
                              split[1].n, source, &w, err);
    }
    for (int s = 0; s < 2 && rc == MPSL_OK; s++) {
        mpsl_split sp = s == 0 ? MPSL_SPLIT_TRAIN : MPSL_SPLIT_TEST;
        rc = convert_write_index_labels(w, sp, split[s].n, err);
        if (rc == MPSL_OK) {
            rc = convert_write_images(w, sp, 0, split[s].paths, split[s].n, o,
                                      s == 0 ? "train images" : "test images", err);
        }
        if (rc == MPSL_OK) {
            rc = convert_write_text(w, sp, 1, split[s].n, KP_CAPTIONS, L, kp_text, &split[s],
                                    &truncated, err);
        }
    }
    if (rc == MPSL_OK) {
        rc = prep_writer_close(w, err);
        w = NULL;
        if (rc == MPSL_OK && !o->quiet) {
            fprintf(stderr, "convert %s: %lld of %lld captions cut at %d bytes\n", o->name,
                    (long long)truncated, (long long)(split[0].n + split[1].n) * KP_CAPTIONS,
                    L);
        }
    }
    prep_writer_abort(w);
    kp_free(&split[0]);
    kp_free(&split[1]);
    json_decref(root);
    free(json_path);
    return rc;
}
