/* model_weights.c: matching a model's declared parameters with the tensors of a safetensors
 * file by name (with prefix rewrites), checking shapes, and saving a model's parameters. */
#include "weights/model_weights.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/util.h"
#include "weights/safetensors.h"

#define MAX_PREFIX_RULES 16
#define LIST_MAX 10 /* names listed in messages and reports */

/* ---------------------------------------------------------------- names */

/* The tokenizer whose span holds decl d, or -1 (encoder, head). */
static int tokenizer_of(const mpsl_model *m, const param_decl *d)
{
    for (int k = 0; k < m->n_tok && k < MPSL_MAX_MODALITIES; k++) {
        const module_inst *t = &m->tok[k];
        if (t->count > 0 && d->offset >= t->base && d->offset < t->base + t->count) {
            return k;
        }
    }
    return -1;
}

/* Tokenizer k's modality key: the key under model.tokenizers, else the dataset's modality
 * name, else "tokenizerK" (a model made without a session, as in tests). */
static const char *modality_key(const mpsl_model *m, int k, char *buf, size_t size)
{
    if (m->s && m->s->ex && m->s->ex->modality[k] && m->s->ex->modality[k][0]) {
        return m->s->ex->modality[k];
    }
    if (m->s) {
        int mi = m->s->modality_of_tokenizer[k];
        if (mi >= 0 && mi < MPSL_MAX_MODALITIES && m->s->info.modality[mi].name[0]) {
            return m->s->info.modality[mi].name;
        }
    }
    snprintf(buf, size, "tokenizer%d", k);
    return buf;
}

int weights_param_name(const mpsl_model *m, int decl_index, char *buf, size_t size)
{
    const param_decl *d = &m->decls[decl_index];
    int k = m->n_tok >= 2 ? tokenizer_of(m, d) : -1;
    int w;
    if (k >= 0) {
        char tmp[32];
        w = snprintf(buf, size, "%s.%s", modality_key(m, k, tmp, sizeof tmp), d->name);
    } else {
        w = snprintf(buf, size, "%s", d->name);
    }
    return w < 0 || (size_t)w >= size ? -1 : 0;
}

/* The input a tokenizer's decl reads: its modality's (C, H, W), or NULL when the model has no
 * session (hand-made models in tests) or the decl is not a tokenizer's. */
static const mpsl_modality_info *modality_of(const mpsl_model *m, const param_decl *d)
{
    int k = tokenizer_of(m, d);
    int mi = m->s && k >= 0 ? m->s->modality_of_tokenizer[k] : -1;
    return mi >= 0 && mi < MPSL_MAX_MODALITIES ? &m->s->info.modality[mi] : NULL;
}

/* The (D, C, P, P) kernel shape timm stores for a declared (D, C*P*P) patch matrix, when the
 * model knows the image's channel count C and C*P*P factors that way. 1 and kernel filled,
 * else 0. image_patch and audio_patch gather each patch channel by channel, row by row,
 * pixel by pixel, which is the kernel's row-major order: the bytes are the same. */
static int patch_kernel_shape(const mpsl_model *m, const param_decl *d, int64_t kernel[4])
{
    if (strcmp(d->name, "patch_embed.proj.weight") != 0 || d->ndim != 2) {
        return 0;
    }
    const mpsl_modality_info *mod = modality_of(m, d);
    if (!mod || mod->ndim != 3 || mod->shape[0] < 1 || d->shape[1] % mod->shape[0] != 0) {
        return 0;
    }
    int64_t area = d->shape[1] / mod->shape[0], P = (int64_t)llround(sqrt((double)area));
    if (P * P != area) {
        return 0; /* not a square patch: the 2-D shape cannot say Ph and Pw */
    }
    kernel[0] = d->shape[0], kernel[1] = mod->shape[0], kernel[2] = P, kernel[3] = P;
    return 1;
}

int weights_file_shape(const mpsl_model *m, int decl_index, int64_t shape[MPSL_MAX_DIMS])
{
    const param_decl *d = &m->decls[decl_index];
    if (patch_kernel_shape(m, d, shape)) {
        return 4;
    }
    memcpy(shape, d->shape, (size_t)d->ndim * sizeof *shape);
    return d->ndim;
}

/* ---------------------------------------------------------------- prefix rewrites */

typedef struct prefix_rule {
    char from[96], to[96];
} prefix_rule;

static int parse_prefix_map(const char *path, const char *map, prefix_rule *rules, int *n,
                            mpsl_error *err)
{
    *n = 0;
    const char *p = map ? map : "";
    while (*p) {
        while (*p == ' ' || *p == ',') {
            p++;
        }
        if (!*p) {
            break;
        }
        size_t len = strcspn(p, ",");
        while (len > 0 && p[len - 1] == ' ') {
            len--;
        }
        const char *eq = memchr(p, '=', len);
        if (!eq) {
            return mpsl_err(err, "%s: prefix_map rule '%.*s' has no '=' (rules are from=to, "
                            "comma-separated, e.g. \"module.=\")", path, (int)len, p);
        }
        size_t lf = (size_t)(eq - p), lt = len - lf - 1;
        if (*n == MAX_PREFIX_RULES || lf >= sizeof rules->from || lt >= sizeof rules->to) {
            return mpsl_err(err, "%s: prefix_map \"%s\" has more than %d rules or a prefix of "
                            "more than %zu characters", path, map, MAX_PREFIX_RULES,
                            sizeof rules->from - 1);
        }
        memcpy(rules[*n].from, p, lf);
        rules[*n].from[lf] = '\0';
        memcpy(rules[*n].to, eq + 1, lt);
        rules[*n].to[lt] = '\0';
        (*n)++;
        p += len;
    }
    return MPSL_OK;
}

static char *apply_rules(const prefix_rule *rules, int n, const char *name)
{
    for (int i = 0; i < n; i++) {
        size_t lf = strlen(rules[i].from);
        if (strncmp(name, rules[i].from, lf) == 0) {
            return mpsl_strfmt("%s%s", rules[i].to, name + lf);
        }
    }
    return mpsl_strdup(name);
}

/* ---------------------------------------------------------------- loading */

static void list_add(char *buf, size_t size, int listed, const char *name)
{
    if (listed >= LIST_MAX) {
        return;
    }
    size_t used = strlen(buf);
    if (used + strlen(name) + 5 < size) {
        snprintf(buf + used, size - used, "%s'%s'", listed ? ", " : "", name);
    }
}

static const char *fmt_dims(char *buf, size_t size, int ndim, const int64_t *shape)
{
    size_t used = (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < ndim && used < size; i++) {
        used += (size_t)snprintf(buf + used, size - used, "%s%lld", i ? ", " : "",
                                 (long long)shape[i]);
    }
    if (used < size) {
        snprintf(buf + used, size - used, "]");
    }
    return buf;
}

/* 0: same shape; 1: timm's conv kernel for a declared patch matrix; else an error. */
static int check_shape(const mpsl_model *m, const char *path, const char *name,
                       const param_decl *d, const st_tensor_info *t, mpsl_error *err)
{
    if (t->ndim == d->ndim && memcmp(t->shape, d->shape, (size_t)d->ndim * sizeof *d->shape) == 0) {
        return 0;
    }
    char fs[160], ds[160], alias[200] = "";
    fmt_dims(fs, sizeof fs, t->ndim, t->shape);
    fmt_dims(ds, sizeof ds, d->ndim, d->shape);
    if (strcmp(name, t->name) != 0) {
        snprintf(alias, sizeof alias, " (file name '%s')", t->name);
    }
    if (strcmp(d->name, "patch_embed.proj.weight") == 0 && d->ndim == 2 && t->ndim == 4 &&
        t->shape[0] == d->shape[0] && t->shape[2] == t->shape[3] &&
        t->shape[1] * t->shape[2] * t->shape[3] == d->shape[1]) {
        /* The kernel's channel count must be the image's, else the bytes mean other pixels.
         * Without a session (hand-made models) the channel count is unknown and trusted. */
        const mpsl_modality_info *mod = modality_of(m, d);
        if (!mod || mod->ndim != 3 || mod->shape[0] == t->shape[1]) {
            return 1;
        }
        return mpsl_err(err, "%s: tensor '%s'%s is a convolution kernel %s over %lld channels, "
                        "the model's images have %lld channels", path, name, alias, fs,
                        (long long)t->shape[1], (long long)mod->shape[0]);
    }
    if (strcmp(d->name, "pos_embed") == 0 && d->ndim == 3 && t->ndim == 3 &&
        t->shape[0] == d->shape[0] && t->shape[2] == d->shape[2]) {
        return mpsl_err(err, "%s: tensor '%s'%s has %lld position embeddings %s, the model "
                        "declares %lld %s: the checkpoint was made for another image size, "
                        "patch size or CLS setting, and interpolating position embeddings is "
                        "not supported yet", path, name, alias, (long long)t->shape[1], fs,
                        (long long)d->shape[1], ds);
    }
    return mpsl_err(err, "%s: tensor '%s'%s has shape %s, the model declares %s", path, name,
                    alias, fs, ds);
}

static int is_float(st_dtype dt)
{
    return dt == ST_F32 || dt == ST_F16 || dt == ST_BF16 || dt == ST_F64;
}

static int cmp_mapped(const void *a, const void *b, void *ctx)
{
    char **mapped = ctx;
    return strcmp(mapped[*(const int *)a], mapped[*(const int *)b]);
}

int weights_load_into_model(mpsl_model *m, const char *path, const char *prefix_map,
                            int strict, weights_report *rep, mpsl_error *err)
{
    weights_report local;
    if (!rep) {
        rep = &local;
    }
    memset(rep, 0, sizeof *rep);
    rep->n_params = m->n_decls;
    prefix_rule rules[MAX_PREFIX_RULES];
    int n_rules = 0;
    int rc = parse_prefix_map(path, prefix_map, rules, &n_rules, err);
    if (rc != MPSL_OK) {
        return rc;
    }
    st_file *f = NULL;
    rc = st_read(path, &f, err);
    if (rc != MPSL_OK) {
        return rc;
    }
    int nf = st_count(f);
    rep->n_file = nf;
    char **mapped = calloc((size_t)nf + 1, sizeof *mapped);
    int *order = calloc((size_t)nf + 1, sizeof *order);
    uint8_t *used = calloc((size_t)nf + 1, 1);
    const st_tensor_info **src = calloc((size_t)m->n_decls + 1, sizeof *src);
    if (!mapped || !order || !used || !src) {
        rc = mpsl_errs(err, MPSL_ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }
    for (int i = 0; i < nf; i++) {
        order[i] = i;
        if (!(mapped[i] = apply_rules(rules, n_rules, st_tensor_at(f, i)->name))) {
            rc = mpsl_errs(err, MPSL_ERR_NOMEM, "%s: out of memory", path);
            goto done;
        }
    }
    qsort_r(order, (size_t)nf, sizeof *order, cmp_mapped, mapped);
    for (int i = 1; i < nf; i++) {
        if (strcmp(mapped[order[i]], mapped[order[i - 1]]) == 0) {
            rc = mpsl_err(err, "%s: tensors '%s' and '%s' both become '%s' under prefix_map "
                          "\"%s\"", path, st_tensor_at(f, order[i - 1])->name,
                          st_tensor_at(f, order[i])->name, mapped[order[i]],
                          prefix_map ? prefix_map : "");
            goto done;
        }
    }

    /* Match and check everything before copying anything. */
    int64_t floats = 0;
    for (int i = 0; i < m->n_decls; i++) {
        const param_decl *d = &m->decls[i];
        char name[WEIGHTS_NAME_MAX];
        weights_param_name(m, i, name, sizeof name);
        int lo = 0, hi = nf - 1, found = -1;
        while (lo <= hi) {
            int mid = lo + (hi - lo) / 2;
            int c = strcmp(name, mapped[order[mid]]);
            if (c == 0) {
                found = order[mid];
                break;
            }
            if (c < 0) {
                hi = mid - 1;
            } else {
                lo = mid + 1;
            }
        }
        if (found < 0) {
            list_add(rep->missing, sizeof rep->missing, rep->n_missing, name);
            rep->n_missing++;
            continue;
        }
        const st_tensor_info *t = st_tensor_at(f, found);
        int shape_rc = check_shape(m, path, name, d, t, err);
        if (shape_rc < 0) {
            rc = shape_rc;
            goto done;
        }
        if (!is_float(t->dtype)) {
            rc = mpsl_err(err, "%s: tensor '%s' is %s; only F32, F16, BF16 and F64 load into "
                          "float32 parameters", path, t->name, st_dtype_name(t->dtype));
            goto done;
        }
        rep->n_reshaped += shape_rc;
        used[found] = 1;
        src[i] = t;
        rep->n_loaded++;
        floats += d->count;
    }
    for (int i = 0; i < nf; i++) {
        if (!used[i]) {
            list_add(rep->unused, sizeof rep->unused, rep->n_unused, st_tensor_at(f, i)->name);
            rep->n_unused++;
        }
    }
    if (strict && rep->n_missing > 0) {
        char more[48] = "";
        if (rep->n_missing > LIST_MAX) {
            snprintf(more, sizeof more, " and %d more", rep->n_missing - LIST_MAX);
        }
        if (rep->n_unused > 0) {
            rc = mpsl_err(err, "%s: %d of %d model parameters are not in the file: %s%s; the "
                          "file has %d tensors no parameter takes: %s%s (names differ? "
                          "prefix_map rewrites file names, e.g. \"module.=\"; or load with "
                          "strict: false)", path, rep->n_missing, rep->n_params, rep->missing,
                          more, rep->n_unused, rep->unused,
                          rep->n_unused > LIST_MAX ? ", ..." : "");
        } else {
            rc = mpsl_err(err, "%s: %d of %d model parameters are not in the file: %s%s (load "
                          "with strict: false to keep their initial values)", path,
                          rep->n_missing, rep->n_params, rep->missing, more);
        }
        goto done;
    }
    for (int i = 0; i < m->n_decls; i++) {
        if (src[i]) {
            const param_decl *d = &m->decls[i];
            rc = st_tensor_to_f32(f, src[i]->name, m->param + d->offset, d->count, err);
            if (rc != MPSL_OK) { /* cannot happen: checked above */
                goto done;
            }
            /* a NaN or infinite weight would only show up as a failed run much later */
            for (int64_t k = 0; k < d->count; k++) {
                float v = m->param[d->offset + k];
                if (!isfinite(v)) {
                    rc = mpsl_err(err, "%s: tensor '%s' holds %g at element %lld: weights "
                                  "must be finite", path, src[i]->name, v, (long long)k);
                    goto done;
                }
            }
        }
    }
    rep->floats_loaded = floats;
done:
    for (int i = 0; mapped && i < nf; i++) {
        free(mapped[i]);
    }
    free(mapped);
    free(order);
    free(used);
    free(src);
    st_close(f);
    return rc;
}

void weights_report_log(const weights_report *rep, const char *path)
{
    mpsl_log(MPSL_LOG_INFO, "weights: %d of %d parameter tensors (%lld floats) loaded from %s%s",
             rep->n_loaded, rep->n_params, (long long)rep->floats_loaded, path,
             rep->n_reshaped ? " (patch_embed.proj.weight from a convolution kernel)" : "");
    if (rep->n_missing) {
        mpsl_log(MPSL_LOG_WARN, "weights: %d parameter tensors not in %s keep their initial "
                 "values: %s%s", rep->n_missing, path, rep->missing,
                 rep->n_missing > LIST_MAX ? ", ..." : "");
    }
    if (rep->n_unused) {
        mpsl_log(MPSL_LOG_INFO, "weights: %d tensors of %s are not used by the model: %s%s",
                 rep->n_unused, path, rep->unused, rep->n_unused > LIST_MAX ? ", ..." : "");
    }
}

/* ---------------------------------------------------------------- saving */

/* Saving is loading's inverse: the names weights_load_into_model matches (no prefix_map: the
 * file has the model's own names) and timm's shapes (weights_file_shape), so the file loads
 * back into the same experiment unchanged and into timm's VisionTransformer strictly. */
int weights_save_model(const mpsl_model *m, const char *path, const char *const *metadata_kv,
                       mpsl_error *err)
{
    int n = m->n_decls;
    int n_kv = 0, has_format = 0;
    for (; metadata_kv && metadata_kv[n_kv]; n_kv++) {
        if (n_kv % 2 == 0 && strcmp(metadata_kv[n_kv], "format") == 0) {
            has_format = 1;
        }
    }
    st_write_tensor *t = calloc((size_t)n + 1, sizeof *t);
    char *names = calloc((size_t)n + 1, WEIGHTS_NAME_MAX);
    int64_t (*shapes)[MPSL_MAX_DIMS] = calloc((size_t)n + 1, sizeof *shapes);
    const char **kv = calloc((size_t)n_kv + 3, sizeof *kv);
    int rc = MPSL_OK;
    if (!t || !names || !shapes || !kv) {
        rc = mpsl_errs(err, MPSL_ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }
    int k = 0;
    if (!has_format) {
        kv[k++] = "format";
        kv[k++] = "pt";
    }
    for (int i = 0; i < n_kv; i++) {
        kv[k++] = metadata_kv[i];
    }
    kv[k] = NULL;
    for (int i = 0; i < n; i++) {
        const param_decl *d = &m->decls[i];
        char *name = names + (size_t)i * WEIGHTS_NAME_MAX;
        weights_param_name(m, i, name, WEIGHTS_NAME_MAX);
        t[i].name = name;
        t[i].ndim = weights_file_shape(m, i, shapes[i]);
        t[i].shape = shapes[i];
        t[i].data = m->param + d->offset;
    }
    rc = st_write(path, t, n, kv, err);
done:
    free(t);
    free(names);
    free(shapes);
    free(kv);
    return rc;
}
