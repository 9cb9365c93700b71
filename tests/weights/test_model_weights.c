/* test_model_weights.c: saving and loading a model's parameters by name, on hand-made
 * struct mpsl_model values (decls, flat buffer, tokenizer spans): round trips, modality
 * prefixes with several tokenizers, prefix rewrites, strict and non-strict loads, and the
 * refusals (shape, pos_embed token count, dtype, name collisions), each leaving the model
 * unchanged; saving the patch matrix as timm's convolution kernel. */
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "weights/model_weights.h"
#include "weights/safetensors.h"
#include "weights_test.h"

typedef struct decl_spec {
    const char *name;
    int ndim;
    int64_t shape[4];
    int tok;                /* tokenizer index, or -1 for encoder/head */
} decl_spec;

/* A tiny ViT-like layout: one tokenizer (D = 8, 1x28x28 images, P = 7: 16 patches + CLS),
 * one block, a head over 10 classes. */
static const decl_spec vit[] = {
    {"patch_embed.proj.weight", 2, {8, 49}, 0},
    {"patch_embed.proj.bias", 1, {8}, 0},
    {"cls_token", 3, {1, 1, 8}, 0},
    {"pos_embed", 3, {1, 17, 8}, 0},
    {"blocks.0.mlp.fc1.weight", 2, {16, 8}, -1},
    {"blocks.0.mlp.fc1.bias", 1, {16}, -1},
    {"norm.weight", 1, {8}, -1},
    {"head.weight", 2, {10, 8}, -1},
    {"head.bias", 1, {10}, -1},
};

/* The model the run would build: tokenizer decls first, grouped per tokenizer, each
 * tokenizer's span in tok[k].base/count; params filled with a pattern from seed. */
static mpsl_model *make_model(const decl_spec *spec, int n, int n_tok, float seed)
{
    mpsl_model *m = calloc(1, sizeof *m);
    m->decls = calloc((size_t)n, sizeof *m->decls);
    m->n_decls = m->cap_decls = n;
    m->n_tok = n_tok;
    for (int k = 0; k < n_tok; k++) {
        m->tok[k].base = -1;
    }
    for (int i = 0; i < n; i++) {
        param_decl *d = &m->decls[i];
        snprintf(d->name, sizeof d->name, "%s", spec[i].name);
        d->ndim = spec[i].ndim;
        d->count = 1;
        for (int j = 0; j < d->ndim; j++) {
            d->shape[j] = spec[i].shape[j];
            d->count *= d->shape[j];
        }
        d->offset = m->n;
        d->trainable = 1;
        if (spec[i].tok >= 0) {
            module_inst *t = &m->tok[spec[i].tok];
            if (t->base < 0) {
                t->base = m->n;
            }
            t->count += d->count;
        }
        m->n += d->count;
    }
    m->param = calloc((size_t)m->n, sizeof(float));
    for (int64_t j = 0; j < m->n; j++) {
        m->param[j] = seed + (float)j * 0.001f;
    }
    return m;
}

static void free_model(mpsl_model *m)
{
    free(m->decls);
    free(m->param);
    free(m);
}

static float *snapshot(const mpsl_model *m)
{
    float *s = malloc((size_t)m->n * sizeof *s);
    memcpy(s, m->param, (size_t)m->n * sizeof *s);
    return s;
}

static int same_params(const mpsl_model *a, const float *b)
{
    return memcmp(a->param, b, (size_t)a->n * sizeof *b) == 0;
}

/* Write a file with the given names and shapes (values from the pattern). */
static void write_file(const char *path, const decl_spec *spec, int n, const char *prefix)
{
    st_write_tensor *t = calloc((size_t)n, sizeof *t);
    char (*names)[128] = calloc((size_t)n, sizeof *names);
    float *data = calloc(4096, sizeof *data);
    for (int i = 0; i < 4096; i++) {
        data[i] = (float)i * 0.25f;
    }
    int64_t (*shapes)[4] = calloc((size_t)n, sizeof *shapes);
    for (int i = 0; i < n; i++) {
        snprintf(names[i], sizeof names[i], "%s%s", prefix, spec[i].name);
        memcpy(shapes[i], spec[i].shape, sizeof shapes[i]);
        t[i] = (st_write_tensor){names[i], spec[i].ndim, shapes[i], data};
    }
    mpsl_error err = {{0}};
    if (st_write(path, t, n, NULL, &err) != MPSL_OK) {
        fprintf(stderr, "write_file: %s\n", err.msg);
        exit(1);
    }
    free(t);
    free(names);
    free(data);
    free(shapes);
}

static void test_save_load(void)
{
    const int n = (int)MPSL_COUNT(vit);
    mpsl_model *a = make_model(vit, n, 1, 1.0f), *b = make_model(vit, n, 1, -7.0f);
    a->param[0] = -0.0f;
    a->param[1] = 1e-42f; /* subnormal */
    char name[WEIGHTS_NAME_MAX];
    for (int i = 0; i < n; i++) {
        CHECK(weights_param_name(a, i, name, sizeof name) == 0 && strcmp(name, vit[i].name) == 0);
    }
    CHECK(weights_param_name(a, 0, name, 8) == -1 && strlen(name) == 7);

    const char *path = wt_path("vit.safetensors");
    const char *meta[] = {"mpsl_run", "12", NULL};
    mpsl_error err = {{0}};
    CHECK(weights_save_model(a, path, meta, &err) == MPSL_OK);
    st_file *f = NULL;
    CHECK(st_read(path, &f, &err) == MPSL_OK);
    if (f) {
        CHECK(st_count(f) == n);
        CHECK(st_metadata_get(f, "format") && strcmp(st_metadata_get(f, "format"), "pt") == 0);
        CHECK(st_metadata_get(f, "mpsl_run") && strcmp(st_metadata_get(f, "mpsl_run"), "12") == 0);
        const st_tensor_info *t = st_find(f, "pos_embed");
        CHECK(t && t->ndim == 3 && t->shape[1] == 17 && t->dtype == ST_F32);
        /* declaration order is data order */
        CHECK(strcmp(st_tensor_at(f, 0)->name, "patch_embed.proj.weight") == 0);
        CHECK(strcmp(st_tensor_at(f, n - 1)->name, "head.bias") == 0);
        st_close(f);
    }
    const char *own_format[] = {"format", "mpsl", NULL};
    CHECK(weights_save_model(a, wt_path("own_format.safetensors"), own_format, &err) == MPSL_OK);
    CHECK(st_read(wt_path("own_format.safetensors"), &f, &err) == MPSL_OK);
    if (f) {
        CHECK(st_metadata_count(f) == 1 && strcmp(st_metadata_get(f, "format"), "mpsl") == 0);
        st_close(f);
    }

    weights_report rep;
    CHECK(weights_load_into_model(b, path, NULL, 1, &rep, &err) == MPSL_OK);
    CHECK(memcmp(a->param, b->param, (size_t)a->n * sizeof(float)) == 0);
    CHECK(rep.n_params == n && rep.n_loaded == n && rep.n_missing == 0 && rep.n_unused == 0);
    CHECK(rep.n_file == n && rep.floats_loaded == a->n && rep.n_reshaped == 0);
    CHECK(rep.missing[0] == '\0' && rep.unused[0] == '\0');
    weights_report_log(&rep, path);
    /* rep may be NULL */
    CHECK(weights_load_into_model(b, path, "", 1, NULL, &err) == MPSL_OK);
    free_model(a);
    free_model(b);
}

/* Two tokenizers: their names get the modality key; the encoder's and head's do not. */
static void test_modality_prefix(void)
{
    static const decl_spec two[] = {
        {"patch_embed.proj.weight", 2, {8, 49}, 0},
        {"cls_token", 3, {1, 1, 8}, 0},
        {"patch_embed.proj.weight", 2, {8, 16}, 1},
        {"cls_token", 3, {1, 1, 8}, 1},
        {"blocks.0.mlp.fc1.weight", 2, {16, 8}, -1},
        {"head.weight", 2, {10, 8}, -1},
    };
    const int n = (int)MPSL_COUNT(two);
    mpsl_model *a = make_model(two, n, 2, 0.5f), *b = make_model(two, n, 2, 9.0f);
    char name[WEIGHTS_NAME_MAX];
    /* without a session: tokenizerK */
    weights_param_name(a, 2, name, sizeof name);
    CHECK(strcmp(name, "tokenizer1.patch_embed.proj.weight") == 0);

    /* with the experiment's keys under model.tokenizers */
    mpsl_session *s = calloc(1, sizeof *s);
    experiment *ex = calloc(1, sizeof *ex);
    ex->modality[0] = "image";
    ex->modality[1] = "audio";
    s->ex = ex;
    a->s = b->s = s;
    const char *expect[] = {"image.patch_embed.proj.weight", "image.cls_token",
                            "audio.patch_embed.proj.weight", "audio.cls_token",
                            "blocks.0.mlp.fc1.weight", "head.weight"};
    for (int i = 0; i < n; i++) {
        CHECK(weights_param_name(a, i, name, sizeof name) == 0);
        CHECK(strcmp(name, expect[i]) == 0);
    }
    /* falls back to the dataset's modality names */
    ex->modality[1] = NULL;
    s->modality_of_tokenizer[1] = 2;
    strcpy(s->info.modality[2].name, "spectrogram");
    weights_param_name(a, 3, name, sizeof name);
    CHECK(strcmp(name, "spectrogram.cls_token") == 0);
    ex->modality[1] = "audio";

    const char *path = wt_path("two.safetensors");
    mpsl_error err = {{0}};
    CHECK(weights_save_model(a, path, NULL, &err) == MPSL_OK);
    weights_report rep;
    CHECK(weights_load_into_model(b, path, NULL, 1, &rep, &err) == MPSL_OK);
    CHECK(memcmp(a->param, b->param, (size_t)a->n * sizeof(float)) == 0);
    CHECK(rep.n_loaded == n);

    /* A one-tokenizer checkpoint maps onto the image tokenizer with a rule adding the
     * prefix to the tokenizer's names. */
    static const decl_spec single[] = {
        {"patch_embed.proj.weight", 2, {8, 49}, 0},
        {"cls_token", 3, {1, 1, 8}, 0},
        {"blocks.0.mlp.fc1.weight", 2, {16, 8}, -1},
    };
    const char *p1 = wt_path("single.safetensors");
    write_file(p1, single, 3, "");
    CHECK(weights_load_into_model(b, p1,
                                  "patch_embed.=image.patch_embed.,cls_token=image.cls_token", 0,
                                  &rep, &err) == MPSL_OK);
    CHECK(rep.n_loaded == 3 && rep.n_missing == 3 && rep.n_unused == 0);
    CHECK_CONTAINS(rep.missing, "'audio.patch_embed.proj.weight'");
    CHECK(b->param[b->decls[1].offset] == 0.0f && b->param[b->decls[1].offset + 1] == 0.25f);
    /* an empty `from` matches every name: add the prefix to all but the encoder's */
    memset(b->param, 0, (size_t)b->n * sizeof(float));
    CHECK(weights_load_into_model(b, p1, "blocks.=blocks.,=image.", 1, &rep, &err) ==
          MPSL_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "3 of 6 model parameters are not in the file");
    CHECK(weights_load_into_model(b, p1, "blocks.=blocks.,=image.", 0, &rep, &err) == MPSL_OK);
    CHECK(rep.n_loaded == 3 && rep.n_unused == 0);
    CHECK(b->param[b->decls[1].offset + 1] == 0.25f);
    free(ex);
    free(s);
    free_model(a);
    free_model(b);
}

static void test_prefix_map(void)
{
    const int n = (int)MPSL_COUNT(vit);
    mpsl_model *m = make_model(vit, n, 1, 2.0f);
    float *before = snapshot(m);
    const char *path = wt_path("ddp.safetensors");
    write_file(path, vit, n, "module.");
    mpsl_error err = {{0}};
    weights_report rep;

    /* without the rule: nothing matches, and the message says why */
    CHECK(weights_load_into_model(m, path, NULL, 1, &rep, &err) == MPSL_ERR_INVALID);
    CHECK_CONTAINS(err.msg, path);
    CHECK_CONTAINS(err.msg, "9 of 9 model parameters are not in the file");
    CHECK_CONTAINS(err.msg, "'patch_embed.proj.weight', 'patch_embed.proj.bias'");
    CHECK_CONTAINS(err.msg, "no parameter takes: 'module.patch_embed.proj.weight'");
    CHECK_CONTAINS(err.msg, "prefix_map");
    CHECK(same_params(m, before));

    CHECK(weights_load_into_model(m, path, "module.=", 1, &rep, &err) == MPSL_OK);
    CHECK(rep.n_loaded == n && rep.n_unused == 0);
    CHECK(m->param[0] == 0.0f && m->param[5] == 1.25f);
    /* first matching rule wins; spaces around rules are ignored */
    memcpy(m->param, before, (size_t)m->n * sizeof(float));
    CHECK(weights_load_into_model(m, path, " visual.= , module.=,module.=x.", 1, &rep, &err) ==
          MPSL_OK);
    CHECK(m->param[5] == 1.25f);

    /* bad rules */
    CHECK(weights_load_into_model(m, path, "module.", 1, &rep, &err) == MPSL_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "prefix_map rule 'module.' has no '='");
    CHECK_CONTAINS(err.msg, path);

    /* two file tensors that become one name */
    static const decl_spec both[] = {
        {"head.bias", 1, {10}, -1},
        {"module.head.bias", 1, {10}, -1},
    };
    const char *p2 = wt_path("both.safetensors");
    write_file(p2, both, 2, "");
    CHECK(weights_load_into_model(m, p2, "module.=", 0, &rep, &err) == MPSL_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "tensors 'head.bias' and 'module.head.bias' both become 'head.bias'");
    free(before);
    free_model(m);
}

static void test_strict(void)
{
    const int n = (int)MPSL_COUNT(vit);
    mpsl_model *m = make_model(vit, n, 1, 3.0f);
    float *before = snapshot(m);
    /* the file lacks cls_token and pos_embed and has an extra tensor */
    decl_spec part[MPSL_COUNT(vit)];
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (strcmp(vit[i].name, "cls_token") != 0 && strcmp(vit[i].name, "pos_embed") != 0) {
            part[k++] = vit[i];
        }
    }
    part[k++] = (decl_spec){"head_dist.weight", 2, {10, 8}, -1};
    const char *path = wt_path("partial.safetensors");
    write_file(path, part, k, "");
    mpsl_error err = {{0}};
    weights_report rep;
    CHECK(weights_load_into_model(m, path, NULL, 1, &rep, &err) == MPSL_ERR_INVALID);
    CHECK_CONTAINS(err.msg,
                   "2 of 9 model parameters are not in the file: 'cls_token', 'pos_embed'");
    CHECK_CONTAINS(err.msg, "'head_dist.weight'");
    CHECK(same_params(m, before));

    CHECK(weights_load_into_model(m, path, NULL, 0, &rep, &err) == MPSL_OK);
    CHECK(rep.n_loaded == 7 && rep.n_missing == 2 && rep.n_unused == 1);
    CHECK(strcmp(rep.missing, "'cls_token', 'pos_embed'") == 0);
    CHECK(strcmp(rep.unused, "'head_dist.weight'") == 0);
    weights_report_log(&rep, path);
    /* missing ones keep their values, the others are the file's */
    const param_decl *cls = &m->decls[2], *pos = &m->decls[3], *hb = &m->decls[8];
    CHECK(memcmp(m->param + cls->offset, before + cls->offset, 8 * sizeof(float)) == 0);
    CHECK(memcmp(m->param + pos->offset, before + pos->offset, 17 * 8 * sizeof(float)) == 0);
    CHECK(m->param[hb->offset + 3] == 0.75f);

    /* more than 10 missing: the first 10 and how many more */
    decl_spec many[24];
    for (int i = 0; i < 24; i++) {
        static char names[24][32];
        snprintf(names[i], sizeof names[i], "blocks.%d.norm1.weight", i);
        many[i] = (decl_spec){names[i], 1, {8}, -1};
    }
    mpsl_model *big = make_model(many, 24, 0, 0.0f);
    CHECK(weights_load_into_model(big, path, NULL, 1, &rep, &err) == MPSL_ERR_INVALID);
    CHECK_CONTAINS(err.msg,
                   "24 of 24 model parameters are not in the file: 'blocks.0.norm1.weight'");
    CHECK_CONTAINS(err.msg, "'blocks.9.norm1.weight' and 14 more");
    CHECK(strstr(err.msg, "blocks.10.") == NULL);
    CHECK(rep.n_missing == 24);
    free_model(big);
    free(before);
    free_model(m);
}

static void test_refusals(void)
{
    const int n = (int)MPSL_COUNT(vit);
    mpsl_model *m = make_model(vit, n, 1, 4.0f);
    float *before = snapshot(m);
    mpsl_error err = {{0}};
    weights_report rep;

    /* transposed weight */
    decl_spec bad[MPSL_COUNT(vit)];
    memcpy(bad, vit, sizeof bad);
    bad[7].shape[0] = 8, bad[7].shape[1] = 10; /* head.weight (8, 10) instead of (10, 8) */
    const char *p = wt_path("transposed.safetensors");
    write_file(p, bad, n, "");
    CHECK(weights_load_into_model(m, p, NULL, 0, &rep, &err) == MPSL_ERR_INVALID);
    CHECK_CONTAINS(err.msg, p);
    CHECK_CONTAINS(err.msg, "tensor 'head.weight' has shape [8, 10], the model declares [10, 8]");
    CHECK(same_params(m, before));

    /* the same through a prefix rewrite names the file's name too */
    p = wt_path("transposed_ddp.safetensors");
    write_file(p, bad, n, "module.");
    CHECK(weights_load_into_model(m, p, "module.=", 0, &rep, &err) == MPSL_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "tensor 'head.weight' (file name 'module.head.weight') has shape");

    /* pos_embed for another resolution: 14x14 patches + CLS */
    memcpy(bad, vit, sizeof bad);
    bad[3].shape[1] = 197;
    p = wt_path("pos224.safetensors");
    write_file(p, bad, n, "");
    CHECK(weights_load_into_model(m, p, NULL, 1, &rep, &err) == MPSL_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "tensor 'pos_embed' has 197 position embeddings [1, 197, 8], the "
                            "model declares 17 [1, 17, 8]");
    CHECK_CONTAINS(err.msg, "interpolating position embeddings is not supported");
    CHECK(same_params(m, before));

    /* a different rank is a plain shape error */
    memcpy(bad, vit, sizeof bad);
    bad[2] = (decl_spec){"cls_token", 1, {8}, 0};
    p = wt_path("cls1d.safetensors");
    write_file(p, bad, n, "");
    CHECK(weights_load_into_model(m, p, NULL, 1, &rep, &err) == MPSL_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "tensor 'cls_token' has shape [8], the model declares [1, 1, 8]");

    /* a NaN or an infinity is refused, naming the tensor and the element */
    p = wt_path("nan.safetensors");
    float nans[8] = {1, 2, 3, NAN, 5, 6, 7, 8};
    wt_write_json(p, "{\"norm.weight\":{\"dtype\":\"F32\",\"shape\":[8],\"data_offsets\":[0,32]}}",
                  nans, sizeof nans);
    CHECK(weights_load_into_model(m, p, NULL, 0, &rep, &err) == MPSL_ERR_INVALID);
    CHECK_CONTAINS(err.msg, p);
    CHECK_CONTAINS(err.msg, "tensor 'norm.weight' holds nan at element 3");
    nans[3] = INFINITY;
    p = wt_path("inf.safetensors");
    wt_write_json(p, "{\"norm.weight\":{\"dtype\":\"F32\",\"shape\":[8],\"data_offsets\":[0,32]}}",
                  nans, sizeof nans);
    CHECK(weights_load_into_model(m, p, NULL, 0, &rep, &err) == MPSL_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "tensor 'norm.weight' holds inf at element 3");

    /* a non-float tensor */
    p = wt_path("int.safetensors");
    int32_t ints[8] = {0};
    wt_write_json(p, "{\"norm.weight\":{\"dtype\":\"I32\",\"shape\":[8],\"data_offsets\":[0,32]}}",
                  ints, sizeof ints);
    CHECK(weights_load_into_model(m, p, NULL, 0, &rep, &err) == MPSL_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "tensor 'norm.weight' is I32; only F32, F16, BF16 and F64 load");
    CHECK_CONTAINS(err.msg, p);

    /* F16 and BF16 load converted */
    p = wt_path("half.safetensors");
    uint8_t half[8 * 2 + 10 * 2];
    for (int i = 0; i < 8; i++) {
        half[2 * i] = 0x00, half[2 * i + 1] = 0xc1; /* F16 -2.5 */
    }
    for (int i = 0; i < 10; i++) {
        half[16 + 2 * i] = 0x80, half[16 + 2 * i + 1] = 0x3f; /* BF16 1.0 */
    }
    wt_write_json(p,
                  "{\"norm.weight\":{\"dtype\":\"F16\",\"shape\":[8],\"data_offsets\":[0,16]},"
                  "\"head.bias\":{\"dtype\":\"BF16\",\"shape\":[10],\"data_offsets\":[16,36]}}",
                  half, sizeof half);
    CHECK(weights_load_into_model(m, p, NULL, 0, &rep, &err) == MPSL_OK);
    CHECK(rep.n_loaded == 2 && rep.floats_loaded == 18);
    CHECK(m->param[m->decls[6].offset + 7] == -2.5f && m->param[m->decls[8].offset + 9] == 1.0f);

    /* a broken file is refused with st_read's message; a missing one is an I/O error */
    p = wt_path("garbage.safetensors");
    wt_write_raw(p, 3, "{\"a", 3, NULL, 0);
    CHECK(weights_load_into_model(m, p, NULL, 0, &rep, &err) == MPSL_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "header is not valid JSON");
    CHECK(weights_load_into_model(m, wt_path("nope.safetensors"), NULL, 0, &rep, &err) ==
          MPSL_ERR_IO);

    /* saving refuses two parameters with one name (which the naming scheme prevents) */
    static const decl_spec clash[] = {
        {"patch_embed.proj.weight", 2, {8, 49}, 0},
        {"patch_embed.proj.weight", 2, {8, 16}, 1},
    };
    mpsl_model *c = make_model(clash, 2, 1, 0.0f);
    CHECK(weights_save_model(c, wt_path("clash.safetensors"), NULL, &err) == MPSL_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "tensor 'patch_embed.proj.weight' given twice");
    free_model(c);
    free(before);
    free_model(m);
}

/* timm stores patch_embed.proj.weight as a (D, C, P, P) convolution kernel. */
static void test_conv_kernel(void)
{
    const int n = (int)MPSL_COUNT(vit);
    mpsl_model *m = make_model(vit, n, 1, 5.0f);
    decl_spec timm[MPSL_COUNT(vit)];
    memcpy(timm, vit, sizeof timm);
    timm[0] = (decl_spec){"patch_embed.proj.weight", 4, {8, 1, 7, 7}, 0};
    const char *p = wt_path("conv.safetensors");
    write_file(p, timm, n, "");
    mpsl_error err = {{0}};
    weights_report rep;
    CHECK(weights_load_into_model(m, p, NULL, 1, &rep, &err) == MPSL_OK);
    CHECK(rep.n_reshaped == 1 && rep.n_loaded == n);
    CHECK(m->param[48] == 12.0f && m->param[49] == 12.25f);

    /* the image's channel count must match the kernel's */
    mpsl_session *s = calloc(1, sizeof *s);
    s->info.modality[0].ndim = 3;
    s->info.modality[0].shape[0] = 1;
    s->info.modality[0].shape[1] = s->info.modality[0].shape[2] = 28;
    m->s = s;
    CHECK(weights_load_into_model(m, p, NULL, 1, &rep, &err) == MPSL_OK);
    timm[0] = (decl_spec){"patch_embed.proj.weight", 4, {8, 49, 1, 1}, 0};
    write_file(p, timm, n, "");
    CHECK(weights_load_into_model(m, p, NULL, 1, &rep, &err) == MPSL_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "tensor 'patch_embed.proj.weight' is a convolution kernel "
                            "[8, 49, 1, 1] over 49 channels, the model's images have 1 channels");
    /* non-square kernels and other names are plain shape errors */
    timm[0] = (decl_spec){"patch_embed.proj.weight", 4, {8, 1, 49, 1}, 0};
    write_file(p, timm, n, "");
    CHECK(weights_load_into_model(m, p, NULL, 1, &rep, &err) == MPSL_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "has shape [8, 1, 49, 1], the model declares [8, 49]");
    m->s = NULL;
    free(s);
    free_model(m);
}

/* A session that only describes the dataset's modalities (C, H, W), which is all saving
 * needs to know the patch kernel's shape. */
static mpsl_session *session_with(int n, const int64_t (*chw)[3])
{
    mpsl_session *s = calloc(1, sizeof *s);
    for (int i = 0; i < n; i++) {
        s->info.modality[i].ndim = 3;
        memcpy(s->info.modality[i].shape, chw[i], 3 * sizeof(int64_t));
        s->modality_of_tokenizer[i] = i;
    }
    s->info.n_modalities = n;
    return s;
}

static int file_shape_is(const char *path, const char *name, int ndim, const int64_t *shape)
{
    st_file *f = NULL;
    mpsl_error err = {{0}};
    if (st_read(path, &f, &err) != MPSL_OK) {
        return 0;
    }
    const st_tensor_info *t = st_find(f, name);
    int same = t && t->ndim == ndim && memcmp(t->shape, shape, (size_t)ndim * sizeof *shape) == 0;
    st_close(f);
    return same;
}

/* Saving writes timm's shapes: the patch matrix (D, C*P*P) as the kernel (D, C, P, P), the
 * same bytes; it loads back exactly, and files from before (the matrix) still load. */
static void test_save_kernel(void)
{
    const int n = (int)MPSL_COUNT(vit);
    mpsl_model *a = make_model(vit, n, 1, 1.5f), *b = make_model(vit, n, 1, -3.0f);
    const int64_t grey[1][3] = {{1, 28, 28}};
    mpsl_session *s = session_with(1, grey);
    a->s = b->s = s;
    int64_t shape[MPSL_MAX_DIMS];
    CHECK(weights_file_shape(a, 0, shape) == 4);
    CHECK(shape[0] == 8 && shape[1] == 1 && shape[2] == 7 && shape[3] == 7);
    CHECK(weights_file_shape(a, 3, shape) == 3 && shape[1] == 17); /* pos_embed as declared */
    CHECK(weights_file_shape(a, 7, shape) == 2 && shape[0] == 10 && shape[1] == 8);

    const char *path = wt_path("kernel.safetensors");
    mpsl_error err = {{0}};
    CHECK(weights_save_model(a, path, NULL, &err) == MPSL_OK);
    CHECK(file_shape_is(path, "patch_embed.proj.weight", 4, (int64_t[]){8, 1, 7, 7}));
    CHECK(file_shape_is(path, "cls_token", 3, (int64_t[]){1, 1, 8}));
    CHECK(file_shape_is(path, "head.weight", 2, (int64_t[]){10, 8}));
    weights_report rep;
    CHECK(weights_load_into_model(b, path, NULL, 1, &rep, &err) == MPSL_OK);
    CHECK(rep.n_loaded == n && rep.n_reshaped == 1);
    CHECK(memcmp(a->param, b->param, (size_t)a->n * sizeof(float)) == 0);

    /* a file mpsl saved before it wrote kernels: the matrix loads as it is */
    a->s = NULL;
    CHECK(weights_save_model(a, path, NULL, &err) == MPSL_OK);
    CHECK(file_shape_is(path, "patch_embed.proj.weight", 2, (int64_t[]){8, 49}));
    memset(b->param, 0, (size_t)b->n * sizeof(float));
    CHECK(weights_load_into_model(b, path, NULL, 1, &rep, &err) == MPSL_OK);
    CHECK(rep.n_loaded == n && rep.n_reshaped == 0);
    CHECK(memcmp(a->param, b->param, (size_t)a->n * sizeof(float)) == 0);
    free(s);
    free_model(a);
    free_model(b);

    /* three channels, and two tokenizers: each kernel has its own modality's C and P; a
     * feature count that is not C times a square stays a matrix */
    static const decl_spec two[] = {
        {"patch_embed.proj.weight", 2, {8, 48}, 0},  /* RGB 4x4 patches */
        {"cls_token", 3, {1, 1, 8}, 0},
        {"patch_embed.proj.weight", 2, {8, 24}, 1},  /* 3 channels x 8: not square */
        {"head.weight", 2, {10, 8}, -1},
    };
    a = make_model(two, 4, 2, 0.25f);
    b = make_model(two, 4, 2, 7.0f);
    const int64_t chw[2][3] = {{3, 16, 16}, {3, 4, 8}};
    s = session_with(2, chw);
    experiment *ex = calloc(1, sizeof *ex);
    ex->modality[0] = "image";
    ex->modality[1] = "depth";
    s->ex = ex;
    a->s = b->s = s;
    path = wt_path("two_kernels.safetensors");
    CHECK(weights_save_model(a, path, NULL, &err) == MPSL_OK);
    CHECK(file_shape_is(path, "image.patch_embed.proj.weight", 4, (int64_t[]){8, 3, 4, 4}));
    CHECK(file_shape_is(path, "depth.patch_embed.proj.weight", 2, (int64_t[]){8, 24}));
    CHECK(weights_load_into_model(b, path, NULL, 1, &rep, &err) == MPSL_OK);
    CHECK(rep.n_loaded == 4 && rep.n_reshaped == 1);
    CHECK(memcmp(a->param, b->param, (size_t)a->n * sizeof(float)) == 0);
    free(ex);
    free(s);
    free_model(a);
    free_model(b);
}

int main(void)
{
    wt_setup();
    test_save_load();
    test_modality_prefix();
    test_prefix_map();
    test_strict();
    test_refusals();
    test_conv_kernel();
    test_save_kernel();
    return check_exit();
}
