/* test_init.c: the host's initial parameter values, on models built as `mpsl run` builds them
 * (experiment from YAML, dataset opened, model_create).
 *
 *   - With two or more tokenizers each tokenizer tensor is seeded from its modality-prefixed
 *     name, so two modalities start different even when their tokenizers are configured
 *     alike: image.cls_token != audio.cls_token, and likewise the position embeddings (over
 *     the positions both have), patch projections and text embeddings. Were they equal, the
 *     two CLS tokens would enter the encoder identical and early fusion would pool one token
 *     twice (the classifier's `segments: 0` and `segments: 1` gave the same run).
 *   - A single tokenizer's names carry no prefix, and its values are those the host has always
 *     drawn for them (constants recorded before the prefix was seeded), so single-modality
 *     runs reproduce.
 *   - Encoder and head tensors do not depend on the number of modalities.
 *   - Every model of one session agrees where they overlap: an MPSL client's tokenizers and
 *     the server's encoder and head equal the corresponding tensors of the full model.
 *
 * Plugins come from MPSL_PLUGIN_PATH (the build's plugins and tests/core's test datasets). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "config/config.h"
#include "plugin/loader.h"
#include "train/experiment.h"
#include "train/model.h"
#include "train/session.h"
#include "weights/model_weights.h"

/* One experiment with its open dataset; models made from it stay valid while it is open. */
typedef struct opened {
    experiment ex;
    mpsl_session s;
    int ok;
} opened;

static void open_experiment(opened *o, const char *yaml)
{
    memset(o, 0, sizeof *o);
    mpsl_error err = {{0}};
    cfg_node *root = cfg_parse_string(yaml, "test.yaml", &err);
    if (!root || experiment_build(root, "test.yaml", ".", &o->ex, &err) != MPSL_OK) {
        fprintf(stderr, "experiment: %s\n", err.msg);
        CHECK(0);
        return;
    }
    o->s = (mpsl_session){.ex = &o->ex, .host = host_services(), .n_ranks = 1,
                          .transport = "local"};
    if (session_open_data(&o->s, &err) != MPSL_OK) {
        fprintf(stderr, "dataset: %s\n", err.msg);
        CHECK(0);
        experiment_free(&o->ex);
        return;
    }
    o->ok = 1;
}

static void close_experiment(opened *o)
{
    if (o->ok) {
        session_close(&o->s);
        experiment_free(&o->ex);
    }
}

static mpsl_model *make(opened *o, int parts)
{
    mpsl_error err = {{0}};
    mpsl_model *m = NULL;
    if (!o->ok || model_create(&o->s, parts, &m, &err) != MPSL_OK) {
        fprintf(stderr, "model_create(%d): %s\n", parts, err.msg);
        CHECK(0);
        return NULL;
    }
    return m;
}

/* The values of the tensor named as in weight files (prefixed with several tokenizers), and
 * its element count; NULL when the model has no such tensor. */
static const float *find(const mpsl_model *m, const char *name, int64_t *count)
{
    char full[160];
    for (int i = 0; m && i < m->n_decls; i++) {
        if (weights_param_name(m, i, full, sizeof full) == 0 && strcmp(full, name) == 0) {
            *count = m->decls[i].count;
            return m->param + m->decls[i].offset;
        }
    }
    return NULL;
}

/* find(), saying which tensor is missing (the CHECK that follows only names the line). */
static const float *tensor(const mpsl_model *m, const char *name, int64_t *count)
{
    const float *p = find(m, name, count);
    if (!p) {
        fprintf(stderr, "no tensor '%s'\n", name);
    }
    return p;
}

/* How many of the first n entries of a and b are equal. Independent draws from a continuous
 * distribution are never equal; seeding from the same name makes every one equal. */
static int64_t n_equal(const float *a, const float *b, int64_t n)
{
    int64_t k = 0;
    for (int64_t i = 0; i < n; i++) {
        k += a[i] == b[i];
    }
    return k;
}

/* Tensors a and b of two modalities exist and share none of their first entries (over the
 * shorter one: position embeddings of different lengths are compared where both have
 * positions, the start). */
static void check_differ(const mpsl_model *m, const char *a, const char *b)
{
    int64_t na = 0, nb = 0;
    const float *pa = tensor(m, a, &na), *pb = tensor(m, b, &nb);
    CHECK(pa && pb);
    if (pa && pb) {
        int64_t n = na < nb ? na : nb, same = n_equal(pa, pb, n);
        if (same != 0) {
            fprintf(stderr, "%s and %s: %lld of %lld entries equal\n", a, b, (long long)same,
                    (long long)n);
        }
        CHECK(n > 0 && same == 0);
    }
}

/* Tensor `name` holds the same values in models a and b. */
static void check_same(const mpsl_model *a, const mpsl_model *b, const char *name)
{
    int64_t na = 0, nb = 0;
    const float *pa = tensor(a, name, &na), *pb = tensor(b, name, &nb);
    CHECK(pa && pb && na == nb);
    if (pa && pb && na == nb && memcmp(pa, pb, (size_t)na * sizeof *pa) != 0) {
        fprintf(stderr, "%s differs between two models of one session\n", name);
        CHECK(0);
    }
}

/* Every tensor of a partial model m (one party's) has the same values in the full model. */
static void check_part_matches(const mpsl_model *full, const mpsl_model *m)
{
    char name[160];
    int compared = 0;
    for (int i = 0; m && i < m->n_decls; i++) {
        CHECK(weights_param_name(m, i, name, sizeof name) == 0);
        check_same(full, m, name);
        compared++;
    }
    CHECK(compared > 0);
}

/* The image_patch tokenizer twice with the same settings (the case the issue found: nothing
 * but the prefix tells the two apart), early fusion, ViT, CLS pooling of both segments. */
static const char two_alike[] =
    "name: init\n"
    "seed: 3\n"
    "data:\n"
    "  dataset: {plugin: two_modalities, n_train: 40, n_test: 20}\n"
    "  clients: 2\n"
    "model:\n"
    "  tokenizers:\n"
    "    image: {plugin: image_patch, patch: 4, dim: 16}\n"
    "    audio: {plugin: image_patch, patch: 4, dim: 16}\n"
    "  encoder: {plugin: vit, depth: 1, heads: 2}\n"
    "  head: {plugin: classifier, pool: cls}\n"
    "  fusion: early\n"
    "strategy: {plugin: mpsl}\n"
    "train: {epochs: 1, batch_size: 8}\n";

/* The same experiment with the image tokenizer alone. */
static const char image_only[] =
    "name: init\n"
    "seed: 3\n"
    "data:\n"
    "  dataset: {plugin: two_modalities, n_train: 40, n_test: 20}\n"
    "  clients: 2\n"
    "model:\n"
    "  tokenizers:\n"
    "    image: {plugin: image_patch, patch: 4, dim: 16}\n"
    "  encoder: {plugin: vit, depth: 1, heads: 2}\n"
    "  head: {plugin: classifier, pool: cls}\n"
    "strategy: {plugin: mpsl}\n"
    "train: {epochs: 1, batch_size: 8}\n";

/* Image and text (the text tokenizer's CLS and positions: 1 + 5 pooled captions = 6 tokens,
 * the image's 4 patches + CLS = 5) on a retrieval dataset, late fusion. The retrieval head
 * refuses a text CLS token, so only the tokenizers are built (an MPSL client's model). */
static const char image_text[] =
    "name: init\n"
    "seed: 3\n"
    "data:\n"
    "  dataset: {plugin: two_views_retrieval, n_train: 40, n_test: 20}\n"
    "  clients: 2\n"
    "  partition: {scheme: iid}\n"
    "model:\n"
    "  tokenizers:\n"
    "    image: {plugin: image_patch, patch: 4, dim: 16}\n"
    "    text: {plugin: text, vocab: bytes, pool_to_one: true, max_tokens: 24, dim: 16}\n"
    "  encoder: {plugin: vit, depth: 1, heads: 2}\n"
    "  head: {plugin: retrieval}\n"
    "  fusion: late\n"
    "strategy: {plugin: mpsl}\n"
    "train: {epochs: 1, batch_size: 8}\n";

static void test_two_modalities_differ(void)
{
    opened two, one;
    open_experiment(&two, two_alike);
    open_experiment(&one, image_only);
    mpsl_model *full = make(&two, MPSL_PART_ALL);
    mpsl_model *single = make(&one, MPSL_PART_ALL);
    if (full && single) {
        check_differ(full, "image.cls_token", "audio.cls_token");
        check_differ(full, "image.pos_embed", "audio.pos_embed");
        check_differ(full, "image.patch_embed.proj.weight", "audio.patch_embed.proj.weight");
        check_differ(full, "image.patch_embed.proj.bias", "audio.patch_embed.proj.bias");
        /* the encoder and head are the single-modality model's */
        check_same(full, single, "blocks.0.attn.qkv.weight");
        check_same(full, single, "blocks.0.mlp.fc2.weight");
        check_same(full, single, "head.weight");
    }
    /* MPSL's parties: a client's tokenizers, the server's encoder and head */
    mpsl_model *client = make(&two, MPSL_PART_TOKENIZERS);
    mpsl_model *server = make(&two, MPSL_PART_ENCODER | MPSL_PART_HEAD);
    if (full && client && server) {
        check_part_matches(full, client);
        check_part_matches(full, server);
        int64_t n = 0;
        CHECK(tensor(client, "audio.cls_token", &n) != NULL && n == 16);
    }
    model_destroy(server);
    model_destroy(client);
    model_destroy(single);
    model_destroy(full);
    close_experiment(&one);
    close_experiment(&two);
}

static void test_image_text_differ(void)
{
    opened o;
    open_experiment(&o, image_text);
    mpsl_model *m = make(&o, MPSL_PART_TOKENIZERS);
    if (m) {
        check_differ(m, "image.cls_token", "text.cls_token");
        /* 5 and 6 positions: the first 5 of each differ */
        int64_t ni = 0, nt = 0;
        CHECK(tensor(m, "image.pos_embed", &ni) && ni == 5 * 16);
        CHECK(tensor(m, "text.pos_embed", &nt) && nt == 6 * 16);
        check_differ(m, "image.pos_embed", "text.pos_embed");
        check_differ(m, "image.patch_embed.proj.weight", "text.token_embedding.weight");
        /* the prefix changes which values are drawn, not how: still N(0, 0.02^2), so within six
         * standard deviations */
        int64_t n = 0;
        const float *c = tensor(m, "text.cls_token", &n);
        for (int64_t i = 0; c && i < n; i++) {
            CHECK(fabsf(c[i]) < 0.02f * 6);
        }
    }
    model_destroy(m);
    close_experiment(&o);
}

/* A single tokenizer: unprefixed names, and the values seed 3 always gave them (recorded
 * from the build before the modality prefix entered the seed). */
static void test_single_modality_unchanged(void)
{
    static const struct {
        const char *name;
        float first[3];
    } want[] = {
        {"cls_token", {0.0129710874f, 0.00673510646f, -0.0420730449f}},
        {"pos_embed", {0.00279662805f, -0.0221361164f, 0.0184983574f}},
        {"patch_embed.proj.weight", {-0.175070181f, 0.0217035618f, 0.141763777f}},
    };
    opened o;
    open_experiment(&o, image_only);
    mpsl_model *m = make(&o, MPSL_PART_ALL);
    for (size_t k = 0; m && k < sizeof want / sizeof want[0]; k++) {
        int64_t n = 0;
        const float *p = tensor(m, want[k].name, &n);
        CHECK(p && n >= 3);
        for (int i = 0; p && i < 3; i++) {
            CHECK_CLOSE(p[i], want[k].first[i], 1e-7);
        }
    }
    int64_t n = 0;
    CHECK(m && find(m, "image.cls_token", &n) == NULL);
    model_destroy(m);
    close_experiment(&o);
}

int main(void)
{
    test_two_modalities_differ();
    test_image_text_differ();
    test_single_modality_unchanged();
    return check_exit();
}
