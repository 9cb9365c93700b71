/* model.c: composing tokenizer, encoder and head plugin instances into one party's model
 * with flat parameter/gradient buffers, and running its two halves (tokenize | encode+head)
 * forward and backward. The split between the halves is the MPSL cut layer. */
#include "model.h"

#include "kernels/kernels.h"
#include "train/init_cache.h"
#include "weights/model_weights.h"

#include <fnmatch.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- declaring parameters */

typedef struct declare_ctx {
    mpsl_model *m;
    module_inst *mod;
    int discard;            /* shape probe only: parameters are not kept */
    const module_inst *replay; /* late fusion: reuse these declarations in order */
    int replay_next;
} declare_ctx;

static int64_t declare_param(void *vctx, const char *name, int ndim, const int64_t *shape,
                             mpsl_init init, float scale, int trainable, mpsl_error *err)
{
    declare_ctx *c = vctx;
    mpsl_model *m = c->m;
    if (ndim < 1 || ndim > MPSL_MAX_DIMS || !name || strlen(name) >= sizeof m->decls[0].name) {
        mpsl_err(err, "%s: parameter '%s' has %d dimensions (1 to %d allowed) or a name longer "
                 "than %zu characters", c->mod->slot->section, name ? name : "?", ndim,
                 MPSL_MAX_DIMS, sizeof m->decls[0].name - 1);
        return -1;
    }
    int64_t count = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 1 || shape[i] > (int64_t)1 << 32) {
            mpsl_err(err, "%s: parameter '%s' has dimension %d of size %lld",
                     c->mod->slot->section, name, i, (long long)shape[i]);
            return -1;
        }
        count *= shape[i];
    }
    if (c->discard) {
        return 0;
    }
    if (c->replay) {
        /* The shared encoder of late fusion declares the same tensors again. */
        int idx = c->replay_next++;
        for (int i = 0; i < m->n_decls; i++) {
            const param_decl *d = &m->decls[i];
            if (d->offset >= c->replay->base && d->offset < c->replay->base + c->replay->count &&
                idx-- == 0) {
                if (strcmp(d->name, name) != 0 || d->count != count) {
                    mpsl_err(err, "%s: encoder declares different parameters per modality "
                             "('%s' vs '%s'); late fusion needs one shared encoder",
                             c->mod->slot->section, name, d->name);
                    return -1;
                }
                return d->offset - c->replay->base;
            }
        }
        mpsl_err(err, "%s: encoder declares more parameters for one modality than another",
                 c->mod->slot->section);
        return -1;
    }
    if (m->n_decls == m->cap_decls) {
        int cap = m->cap_decls ? 2 * m->cap_decls : 32;
        param_decl *grown = realloc(m->decls, (size_t)cap * sizeof *grown);
        if (!grown) {
            mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
            return -1;
        }
        m->decls = grown;
        m->cap_decls = cap;
    }
    param_decl *d = &m->decls[m->n_decls++];
    memset(d, 0, sizeof *d);
    strcpy(d->name, name);
    d->offset = m->n;
    d->count = count;
    d->ndim = ndim;
    memcpy(d->shape, shape, (size_t)ndim * sizeof *shape);
    d->init = init;
    d->scale = scale;
    d->trainable = trainable;
    m->n += count;
    c->mod->count += count;
    return d->offset - c->mod->base;
}

static int create_module(mpsl_model *m, module_inst *mod, const plugin_slot *slot,
                         const mpsl_modality_info *modality, int64_t T, int64_t D,
                         const mpsl_token_layout *layout, int discard,
                         const module_inst *replay, mpsl_error *err)
{
    memset(mod, 0, sizeof *mod);
    mod->api = slot->plugin.desc->api;
    mod->slot = slot;
    mod->base = m->n;
    declare_ctx ctx = {.m = m, .mod = mod, .discard = discard, .replay = replay};
    mpsl_module_init init = {
        .size = sizeof init,
        .params = slot->params,
        .n_classes = slot->kind == MPSL_KIND_HEAD ? m->s->info.n_classes : 0,
        .layout = layout,
        .declare = declare_param,
        .ctx = &ctx,
        .where = slot->where,
    };
    if (modality) {
        init.in_ndim = modality->ndim;
        memcpy(init.in_shape, modality->shape, sizeof init.in_shape);
        init.in_dtype = modality->dtype;
    } else {
        init.in_ndim = 2;
        init.in_shape[0] = T;
        init.in_shape[1] = D;
        init.in_dtype = MPSL_F32;
    }
    int rc = mod->api->create(m->s->host, &init, &mod->state, err);
    if (rc != MPSL_OK) {
        mod->state = NULL;
        if (!err->msg[0]) {
            mpsl_errs(err, rc, "create() failed with status %d without a message", rc);
        }
        mpsl_err_prefix(err, "%s (%s plugin '%s')", slot->section, plugin_kind_name(slot->kind),
                        slot->plugin.desc->name);
        return rc ? rc : MPSL_ERR_PLUGIN;
    }
    if (replay) {
        mod->base = replay->base;
        mod->count = replay->count;
    }
    rc = mod->api->output_shape(mod->state, &mod->out_ndim, mod->out_shape, &mod->cls);
    if (rc != MPSL_OK || mod->out_ndim < 1 || mod->out_ndim > MPSL_MAX_DIMS - 1) {
        return mpsl_errs(err, MPSL_ERR_PLUGIN, "%s: plugin '%s' reported no valid output shape",
                         slot->section, slot->plugin.desc->name);
    }
    return MPSL_OK;
}

static void destroy_module(module_inst *mod)
{
    if (mod->state) {
        mod->api->destroy(mod->state);
        mod->state = NULL;
    }
}

/* Apply train.optimizer.groups: the first matching group freezes a tensor or gives it its own
 * learning rate and weight decay. Then list the trainable spans, merging neighbours that share
 * settings, so the optimizer is a few flat loops. */
static int build_spans(mpsl_model *m, const optim_settings *o, mpsl_error *err)
{
    m->spans = calloc((size_t)(m->n_decls ? m->n_decls : 1), sizeof *m->spans);
    if (!m->spans) {
        return mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < m->n_decls; i++) {
        param_decl *d = &m->decls[i];
        double lr = o->lr, wd = o->weight_decay;
        char name[160]; /* as in weight files: modality-prefixed with several tokenizers */
        weights_param_name(m, i, name, sizeof name);
        for (int g = 0; g < o->n_groups; g++) {
            const optim_group *grp = &o->groups[g];
            if (fnmatch(grp->match, name, 0) == 0) {
                if (grp->frozen) {
                    d->trainable = 0;
                }
                lr = grp->has_lr ? grp->lr : lr;
                wd = grp->has_weight_decay ? grp->weight_decay : wd;
                break;
            }
        }
        if (!d->trainable) {
            continue;
        }
        optim_span *last = m->n_spans ? &m->spans[m->n_spans - 1] : NULL;
        if (last && last->offset + last->count == d->offset && last->lr == lr &&
            last->weight_decay == wd) {
            last->count += d->count;
        } else {
            m->spans[m->n_spans++] = (optim_span){d->offset, d->count, lr, wd};
        }
    }
    return MPSL_OK;
}

/* Deterministic per-tensor initialisation: the same name and seed give the same values in
 * every model, so a client's tokenizer and the centralized model start identical.
 * The name hashed is the weight-file name: with two or more tokenizers their tensors carry
 * the modality prefix ("image.cls_token", "audio.cls_token"). Hashing the plugin's bare name
 * would give every modality the same CLS token, positions and projection whenever their
 * tokenizers are configured alike, and CLS pooling over several segments would then pool
 * one token twice. A single tokenizer's names have no prefix, so those models draw what
 * they always drew; encoder and head names never have one. */
/* The seed of declaration i's stream: its weight-file name hashed with the run's seed. */
static uint64_t decl_stream(const mpsl_model *m, int i, uint64_t seed)
{
    /* sized like build_spans' buffer; a name too long for it hashes truncated, which is
     * still the same in every model of the run */
    char name[160];
    weights_param_name(m, i, name, sizeof name);
    uint64_t h = seed ^ 0x6d70736c00000000ull; /* "mpsl" */
    for (const char *c = name; *c; c++) {
        h = (h ^ (uint8_t)*c) * 0x100000001b3ull;
    }
    return h;
}

static void draw_decl(mpsl_model *m, int i, uint64_t stream)
{
    const param_decl *d = &m->decls[i];
    mpsl_rng rng;
    mpsl_rng_seed(&rng, stream);
    float *p = m->param + d->offset;
    for (int64_t j = 0; j < d->count; j++) {
        switch (d->init) {
        case MPSL_INIT_ONES:
            p[j] = 1.0f;
            break;
        case MPSL_INIT_NORMAL:
            p[j] = d->scale * (float)mpsl_rng_normal(&rng);
            break;
        case MPSL_INIT_UNIFORM:
            p[j] = d->scale * (float)(2.0 * mpsl_rng_uniform(&rng) - 1.0);
            break;
        case MPSL_INIT_CONSTANT:
            p[j] = d->scale;
            break;
        case MPSL_INIT_ZEROS:
        default:
            p[j] = 0.0f;
            break;
        }
    }
    memset(m->trainable + d->offset, d->trainable ? 1 : 0, (size_t)d->count);
    if (d->trainable) {
        m->n_trainable += d->count;
    }
}

/* Initial values, drawn or, for a layout the session has made before, copied from the
 * session's init cache (init_cache.h): the same bytes either way. */
static void init_params(mpsl_model *m, uint64_t seed)
{
    init_decl *keys = calloc((size_t)(m->n_decls ? m->n_decls : 1), sizeof *keys);
    if (!keys) { /* no key, no cache: draw as always */
        for (int i = 0; i < m->n_decls; i++) {
            draw_decl(m, i, decl_stream(m, i, seed));
        }
        return;
    }
    for (int i = 0; i < m->n_decls; i++) {
        const param_decl *d = &m->decls[i];
        keys[i] = (init_decl){.offset = d->offset, .count = d->count,
                              .stream = decl_stream(m, i, seed), .init = (int32_t)d->init,
                              .trainable = d->trainable != 0, .scale = d->scale};
    }
    const uint8_t *shared = init_cache_copy(m->s->init_cache, keys, m->n_decls, m->n, m->param,
                                            &m->n_trainable);
    if (shared) { /* the layout's mask, read-only, instead of a copy of it */
        mpsl_free(m->trainable);
        m->trainable = (uint8_t *)shared;
        m->trainable_shared = 1;
    } else {
        for (int i = 0; i < m->n_decls; i++) {
            draw_decl(m, i, keys[i].stream);
        }
        init_cache_offer(&m->s->init_cache, keys, m->n_decls, m->n, m->param, m->trainable,
                         m->n_trainable);
    }
    free(keys);
}

static int tokenizer_shapes(mpsl_model *m, mpsl_error *err)
{
    const experiment *ex = m->s->ex;
    int64_t T = 0;
    for (int i = 0; i < m->n_tok; i++) {
        const module_inst *t = &m->tok[i];
        if (t->out_ndim != 2) {
            return mpsl_err(err, "%s: a tokenizer must produce (T, D) tokens per sample, "
                            "plugin '%s' reports %d dimensions", t->slot->where,
                            t->slot->plugin.desc->name, t->out_ndim);
        }
        if (i > 0 && t->out_shape[1] != m->D) {
            return mpsl_err(err, "%s: tokenizer width D = %lld differs from %s's D = %lld; all "
                            "tokenizers must feed one encoder width", t->slot->where,
                            (long long)t->out_shape[1], ex->tokenizer[0].section,
                            (long long)m->D);
        }
        m->D = t->out_shape[1];
        m->tok_T[i] = t->out_shape[0];
        m->layout.segment[i].offset = T;
        m->layout.segment[i].length = t->out_shape[0];
        m->layout.segment[i].has_cls = t->cls;
        T += t->out_shape[0];
    }
    m->layout.n_segments = m->n_tok;
    m->T = T;
    return MPSL_OK;
}

/* The head's per-sample output: the model's flat output size C is the product of its shape,
 * which must suit the dataset's task (classification: {C}; retrieval: {1+K, E}). The session
 * keeps the shape for the loss and evaluation. */
static int head_output(mpsl_model *m, mpsl_error *err)
{
    const module_inst *hd = &m->head;
    mpsl_session *s = m->s;
    int64_t C = 1;
    for (int i = 0; i < hd->out_ndim; i++) {
        /* A size no batch could be allocated for is refused here, not found by a crash. */
        if (hd->out_shape[i] < 1 || hd->out_shape[i] > MODEL_MAX_OUTPUT / C) {
            return mpsl_errs(err, MPSL_ERR_PLUGIN, "%s: plugin '%s' reported an output of "
                             "size %lld in dimension %d (each sample's output must have 1 to "
                             "%lld floats)", hd->slot->section, hd->slot->plugin.desc->name,
                             (long long)hd->out_shape[i], i, (long long)MODEL_MAX_OUTPUT);
        }
        C *= hd->out_shape[i];
    }
    if (s->info.task == MPSL_TASK_CLASSIFICATION && hd->out_ndim == 1 &&
        C != s->info.n_classes) {
        return mpsl_err(err, "%s: head plugin '%s' outputs %lld scores per sample, but dataset "
                        "'%s' has %lld classes: they must be equal", hd->slot->where,
                        hd->slot->plugin.desc->name, (long long)C,
                        s->ex->dataset.plugin.desc->name, (long long)s->info.n_classes);
    }
    if (s->info.task == MPSL_TASK_RETRIEVAL && (hd->out_ndim != 2 || hd->out_shape[0] < 2)) {
        return mpsl_err(err, "%s: the dataset is a retrieval dataset, but head plugin '%s' "
                        "does not output (1+K, E) image and caption embeddings per sample; "
                        "use head: {plugin: retrieval}", hd->slot->where,
                        hd->slot->plugin.desc->name);
    }
    if (s->info.task != MPSL_TASK_RETRIEVAL && hd->out_ndim != 1) {
        return mpsl_err(err, "%s: head plugin '%s' outputs %d dimensions per sample, but the "
                        "dataset is a %s dataset, which needs one score per class", hd->slot->where,
                        hd->slot->plugin.desc->name, hd->out_ndim, mpsl_task_name(s->info.task));
    }
    m->C = C;
    s->out_ndim = hd->out_ndim;
    memcpy(s->out_shape, hd->out_shape, sizeof s->out_shape);
    s->out_size = C;
    return MPSL_OK;
}

static int model_build(mpsl_session *s, int parts, int probe, mpsl_model **out,
                       mpsl_error *err)
{
    *out = NULL;
    if (parts <= 0 || parts > MPSL_PART_ALL || parts == (MPSL_PART_TOKENIZERS | MPSL_PART_HEAD)) {
        return mpsl_err(err, "model_create: parts %d is not a valid combination", parts);
    }
    mpsl_model *m = calloc(1, sizeof *m);
    if (!m) {
        return mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
    }
    m->s = s;
    m->parts = parts;
    const experiment *ex = s->ex;
    m->n_tok = ex->n_tokenizers;
    int rc = MPSL_OK;
    /* Tokenizers are always instantiated: their output shapes define the token layout. A
     * model without the tokenizer part only probes them and keeps no parameters. */
    int keep_tok = parts & MPSL_PART_TOKENIZERS;
    for (int i = 0; i < m->n_tok && rc == MPSL_OK; i++) {
        rc = create_module(m, &m->tok[i], &ex->tokenizer[i],
                           &s->info.modality[s->modality_of_tokenizer[i]], 0, 0, NULL,
                           !keep_tok, NULL, err);
    }
    if (rc == MPSL_OK) {
        rc = tokenizer_shapes(m, err);
    }
    if (rc == MPSL_OK && !keep_tok) {
        for (int i = 0; i < m->n_tok; i++) {
            destroy_module(&m->tok[i]);
        }
    }
    if (rc == MPSL_OK && (parts & MPSL_PART_ENCODER)) {
        m->n_enc = ex->fusion == FUSION_LATE ? m->n_tok : 1;
        for (int i = 0; i < m->n_enc && rc == MPSL_OK; i++) {
            mpsl_token_layout one = {.n_segments = 1};
            one.segment[0].length = m->tok_T[i];
            one.segment[0].has_cls = m->layout.segment[i].has_cls;
            int64_t T = m->n_enc == 1 ? m->T : m->tok_T[i];
            rc = create_module(m, &m->enc[i], &ex->encoder, NULL, T, m->D,
                               m->n_enc == 1 ? &m->layout : &one, 0, i > 0 ? &m->enc[0] : NULL,
                               err);
            if (rc == MPSL_OK &&
                (m->enc[i].out_ndim != 2 || m->enc[i].out_shape[0] != T)) {
                rc = mpsl_err(err, "%s: the encoder must keep the token count (%lld tokens in, "
                              "%lld out)", ex->encoder.where, (long long)T,
                              (long long)m->enc[i].out_shape[0]);
            }
        }
    }
    m->Dh = m->n_enc ? m->enc[0].out_shape[1] : m->D;
    if (rc == MPSL_OK && (parts & MPSL_PART_HEAD) && !(parts & MPSL_PART_ENCODER)) {
        /* a head without the encoder (U-shaped MPSL's client) sees the encoder's output:
         * probe the encoder for its width, keeping none of its parameters */
        module_inst probe_enc;
        int late = ex->fusion == FUSION_LATE;
        mpsl_token_layout one = {.n_segments = 1};
        one.segment[0].length = m->tok_T[0];
        one.segment[0].has_cls = m->layout.segment[0].has_cls;
        rc = create_module(m, &probe_enc, &ex->encoder, NULL, late ? m->tok_T[0] : m->T, m->D,
                           late ? &one : &m->layout, 1, NULL, err);
        if (rc == MPSL_OK) {
            m->Dh = probe_enc.out_shape[1];
        }
        destroy_module(&probe_enc);
    }
    if (rc == MPSL_OK && (parts & MPSL_PART_HEAD)) {
        int64_t Dh = m->Dh;
        rc = create_module(m, &m->head, &ex->head, NULL, m->T, Dh, &m->layout, 0, NULL, err);
        if (rc == MPSL_OK) {
            rc = head_output(m, err);
        }
    }
    if (rc == MPSL_OK) {
        m->param = mpsl_alloc((size_t)m->n * sizeof(float));
        m->trainable = mpsl_alloc((size_t)m->n);
        if (!m->param || !m->trainable) {
            rc = mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory for %lld parameters",
                           (long long)m->n);
        }
    }
    if (rc == MPSL_OK) {
        rc = build_spans(m, &s->ex->optim, err);
    }
    if (rc != MPSL_OK) {
        model_destroy(m);
        return rc;
    }
    if (!probe) { /* a probe only checks shapes and the checkpoint: no random draws */
        init_params(m, s->ex->train.seed);
    }
    if (s->ex->weights.path) {
        weights_report rep;
        rc = weights_load_into_model(m, s->ex->weights.path, s->ex->weights.prefix_map,
                                     s->ex->weights.strict, &rep, err);
        if (rc != MPSL_OK) {
            mpsl_err_prefix(err, "model.weights");
            model_destroy(m);
            return rc;
        }
        if (!s->weights_logged) { /* the first model is run.c's probe, before the database */
            weights_report_log(&rep, s->ex->weights.path);
            s->weights_logged = 1;
        }
    }
    *out = m;
    return MPSL_OK;
}

int model_create(mpsl_session *s, int parts, mpsl_model **out, mpsl_error *err)
{
    return model_build(s, parts, 0, out, err);
}

int model_probe(mpsl_session *s, mpsl_error *err)
{
    mpsl_model *m = NULL;
    int rc = model_build(s, MPSL_PART_ALL, 1, &m, err);
    model_destroy(m);
    return rc;
}

static void free_activations(mpsl_model *m)
{
    float **bufs[] = {&m->tokens, &m->dtokens, &m->hidden, &m->dhidden, &m->logits};
    for (size_t i = 0; i < MPSL_COUNT(bufs); i++) {
        mpsl_free(*bufs[i]);
        *bufs[i] = NULL;
    }
    for (int i = 0; i < MPSL_MAX_MODALITIES; i++) {
        mpsl_free(m->tok_out[i]);
        mpsl_free(m->dtok_out[i]);
        mpsl_free(m->seg_in[i]);
        mpsl_free(m->seg_out[i]);
        m->tok_out[i] = m->dtok_out[i] = m->seg_in[i] = m->seg_out[i] = NULL;
    }
    m->cap = 0;
}

void model_destroy(mpsl_model *m)
{
    if (!m) {
        return;
    }
    for (int i = 0; i < m->n_tok; i++) {
        destroy_module(&m->tok[i]);
    }
    for (int i = 0; i < m->n_enc; i++) {
        destroy_module(&m->enc[i]);
    }
    destroy_module(&m->head);
    free_activations(m);
    mpsl_free(m->param);
    mpsl_free(m->grad);
    if (!m->trainable_shared) {
        mpsl_free(m->trainable);
    }
    free(m->spans);
    free(m->decls);
    free(m);
}

/* ---------------------------------------------------------------- activations */

/* One buffer of `bytes` when the model's parts use it (*ok stays 1), else NULL. */
static float *activation(int used, size_t bytes, int *ok)
{
    if (!used) {
        return NULL;
    }
    float *p = mpsl_alloc(bytes);
    *ok &= p != NULL;
    return p;
}

/* The activations between the parts this model holds, for batches up to B: a client's
 * tokenizers need their outputs and the concatenated tokens, not the encoder's or the head's
 * buffers (a third of what an MPSL client held at batch 1), and only late fusion runs the
 * encoder per segment. */
static int ensure_capacity(mpsl_model *m, int64_t B, mpsl_error *err)
{
    if (B <= m->cap) {
        return MPSL_OK;
    }
    free_activations(m);
    int tok = (m->parts & MPSL_PART_TOKENIZERS) != 0, enc = (m->parts & MPSL_PART_ENCODER) != 0;
    int head = (m->parts & MPSL_PART_HEAD) != 0, late = enc && m->n_enc > 1, ok = 1;
    size_t td = (size_t)B * (size_t)m->T * (size_t)m->D * sizeof(float);
    int64_t Dh = m->Dh;
    size_t th = (size_t)B * (size_t)m->T * (size_t)Dh * sizeof(float);
    m->tokens = activation(tok, td, &ok);           /* tokenize's output */
    m->dtokens = activation(enc, td, &ok);          /* the encoder's backward output */
    m->hidden = activation(enc || head, th, &ok);   /* encoder output, head input */
    m->dhidden = activation(enc || head, th, &ok);
    m->logits = activation(head, (size_t)B * (size_t)(m->C ? m->C : 1) * sizeof(float), &ok);
    for (int i = 0; i < m->n_tok && ok; i++) {
        size_t seg = (size_t)B * (size_t)m->tok_T[i] * (size_t)m->D * sizeof(float);
        size_t segh = (size_t)B * (size_t)m->tok_T[i] * (size_t)Dh * sizeof(float);
        m->tok_out[i] = activation(tok, seg, &ok);
        m->dtok_out[i] = activation(tok, seg, &ok);
        m->seg_in[i] = activation(late, seg > segh ? seg : segh, &ok);
        m->seg_out[i] = activation(late, seg > segh ? seg : segh, &ok);
    }
    if (!ok) {
        free_activations(m);
        return mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory for activations of batch %lld",
                         (long long)B);
    }
    m->cap = B;
    return MPSL_OK;
}

/* A module made again, empty: the same settings and the same parameters (its declarations
 * replayed onto the offsets it has), none of the activations it saved. */
static int remake_module(mpsl_model *m, module_inst *mod, const plugin_slot *slot,
                         const mpsl_modality_info *modality, int64_t T, int64_t D,
                         const mpsl_token_layout *layout, mpsl_error *err)
{
    module_inst old = *mod;
    destroy_module(mod);
    return create_module(m, mod, slot, modality, T, D, layout, 0, &old, err);
}

int model_release_activations(mpsl_model *m, mpsl_error *err)
{
    free_activations(m);
    const experiment *ex = m->s->ex;
    mpsl_session *s = m->s;
    int rc = MPSL_OK;
    for (int i = 0; i < m->n_tok && rc == MPSL_OK && (m->parts & MPSL_PART_TOKENIZERS); i++) {
        rc = remake_module(m, &m->tok[i], &ex->tokenizer[i],
                           &s->info.modality[s->modality_of_tokenizer[i]], 0, 0, NULL, err);
    }
    for (int i = 0; i < m->n_enc && rc == MPSL_OK; i++) { /* as model_build made them */
        mpsl_token_layout one = {.n_segments = 1};
        one.segment[0].length = m->tok_T[i];
        one.segment[0].has_cls = m->layout.segment[i].has_cls;
        rc = remake_module(m, &m->enc[i], &ex->encoder, NULL,
                           m->n_enc == 1 ? m->T : m->tok_T[i], m->D,
                           m->n_enc == 1 ? &m->layout : &one, err);
    }
    if (rc == MPSL_OK && (m->parts & MPSL_PART_HEAD)) {
        rc = remake_module(m, &m->head, &ex->head, NULL, m->T, m->Dh, &m->layout, err);
    }
    return rc;
}

int model_ensure_grad(mpsl_model *m, mpsl_error *err)
{
    if (!m->grad) {
        m->grad = mpsl_alloc((size_t)m->n * sizeof(float));
        if (!m->grad) {
            return mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory for %lld gradients",
                             (long long)m->n);
        }
    }
    return MPSL_OK;
}

/* Gradients are allocated on first use: a model that is only evaluated (e.g. MPSL's
 * averaged evaluation model) never pays for them. Forward passes see grad = NULL. */
static mpsl_weights weights_of(const mpsl_model *m, const module_inst *mod)
{
    return (mpsl_weights){m->param + mod->base, m->grad ? m->grad + mod->base : NULL, mod->count,
                          m->trainable + mod->base};
}

static mpsl_tensor f32_tensor(float *data, int64_t a, int64_t b, int64_t c)
{
    mpsl_tensor t = {.data = data, .dtype = MPSL_F32, .ndim = c ? 3 : 2};
    t.shape[0] = a;
    t.shape[1] = b;
    t.shape[2] = c;
    return t;
}

/* (B, head output shape...) over data: the head sees its own per-sample shape. */
static mpsl_tensor head_tensor(const mpsl_model *m, void *data, int64_t B)
{
    mpsl_tensor t = {.data = data, .dtype = MPSL_F32, .ndim = 1 + m->head.out_ndim};
    t.shape[0] = B;
    for (int i = 0; i < m->head.out_ndim; i++) {
        t.shape[1 + i] = m->head.out_shape[i];
    }
    return t;
}

/* Copy segment i of each sample between the concatenated (B,T,W) and the per-modality
 * (B,T_i,W) layouts; to_segment chooses the direction. */
static void move_segment(float *concat, float *seg, const mpsl_model *m, int i, int64_t B,
                         int64_t W, int to_segment)
{
    int64_t off = m->layout.segment[i].offset, len = m->tok_T[i];
    for (int64_t b = 0; b < B; b++) {
        float *c = concat + ((size_t)b * (size_t)m->T + (size_t)off) * (size_t)W;
        float *s = seg + (size_t)b * (size_t)len * (size_t)W;
        if (to_segment) {
            memcpy(s, c, (size_t)(len * W) * sizeof(float));
        } else {
            memcpy(c, s, (size_t)(len * W) * sizeof(float));
        }
    }
}

/* What a module call returned or, when it succeeded, the error a kernel it ran recorded:
 * kernels return nothing, so one that could not do its work says so there
 * (kernels/kernels.h, KERNEL ERRORS), and the call fails with it. */
static int module_status(int rc, mpsl_error *err)
{
    char msg[256];
    int krc = kern_error_take(msg, sizeof msg);
    return rc == MPSL_OK && krc != MPSL_OK ? mpsl_errs(err, krc, "%s", msg) : rc;
}

static int call_failed(int rc, const module_inst *mod, const char *what, mpsl_error *err)
{
    if (!err->msg[0]) {
        mpsl_errs(err, rc, "failed with status %d without a message", rc);
    }
    mpsl_err_prefix(err, "%s plugin '%s' %s", plugin_kind_name(mod->slot->kind),
                    mod->slot->plugin.desc->name, what);
    return rc ? rc : MPSL_ERR_PLUGIN;
}

/* ---------------------------------------------------------------- the two halves */

int model_tokenize(mpsl_model *m, const mpsl_batch *b, mpsl_tensor *tokens, mpsl_error *err)
{
    if (!(m->parts & MPSL_PART_TOKENIZERS)) {
        return mpsl_errs(err, MPSL_ERR_INTERNAL, "model_tokenize: this model holds no tokenizers");
    }
    int64_t B = b->n;
    int rc = ensure_capacity(m, B, err);
    if (rc != MPSL_OK) {
        return rc;
    }
    for (int i = 0; i < m->n_tok; i++) {
        mpsl_tensor inp = b->modality[m->s->modality_of_tokenizer[i]];
        inp.shape[0] = B;
        mpsl_tensor out = f32_tensor(m->tok_out[i], B, m->tok_T[i], m->D);
        mpsl_weights w = weights_of(m, &m->tok[i]);
        rc = m->tok[i].api->forward(m->tok[i].state, &w, &inp, &out, err);
        if ((rc = module_status(rc, err)) != MPSL_OK) {
            return call_failed(rc, &m->tok[i], "forward", err);
        }
        move_segment(m->tokens, m->tok_out[i], m, i, B, m->D, 0);
    }
    m->B = B;
    *tokens = f32_tensor(m->tokens, B, m->T, m->D);
    return MPSL_OK;
}

int model_tokenize_backward(mpsl_model *m, const mpsl_tensor *dtokens, mpsl_error *err)
{
    int grc = model_ensure_grad(m, err);
    if (grc != MPSL_OK) {
        return grc;
    }
    int64_t B = dtokens->shape[0];
    if (B != m->B || dtokens->shape[1] != m->T || dtokens->shape[2] != m->D) {
        return mpsl_errs(err, MPSL_ERR_INTERNAL,
                         "model_tokenize_backward: gradient shape (%lld,%lld,%lld) does not "
                         "match the last forward (%lld,%lld,%lld)",
                         (long long)B, (long long)dtokens->shape[1], (long long)dtokens->shape[2],
                         (long long)m->B, (long long)m->T, (long long)m->D);
    }
    for (int i = 0; i < m->n_tok; i++) {
        move_segment((float *)dtokens->data, m->dtok_out[i], m, i, B, m->D, 1);
        mpsl_tensor dout = f32_tensor(m->dtok_out[i], B, m->tok_T[i], m->D);
        mpsl_weights w = weights_of(m, &m->tok[i]);
        int rc = m->tok[i].api->backward(m->tok[i].state, &w, &dout, NULL, err);
        if ((rc = module_status(rc, err)) != MPSL_OK) {
            return call_failed(rc, &m->tok[i], "backward", err);
        }
    }
    return MPSL_OK;
}

/* The encoder over tokens (B,T,D) into m->hidden (B,T,Dh). */
static int encoder_forward(mpsl_model *m, const mpsl_tensor *tokens, mpsl_error *err)
{
    int64_t B = tokens->shape[0];
    if (tokens->ndim != 3 || tokens->shape[1] != m->T || tokens->shape[2] != m->D) {
        return mpsl_err(err, "model_encode: tokens of shape (%lld,%lld,%lld), expected (B,%lld,%lld)",
                        (long long)B, (long long)tokens->shape[1], (long long)tokens->shape[2],
                        (long long)m->T, (long long)m->D);
    }
    int rc = ensure_capacity(m, B, err);
    if (rc != MPSL_OK) {
        return rc;
    }
    int64_t Dh = m->Dh;
    for (int i = 0; i < m->n_enc; i++) {
        mpsl_weights w = weights_of(m, &m->enc[i]);
        if (m->n_enc == 1) {
            mpsl_tensor out = f32_tensor(m->hidden, B, m->T, Dh);
            rc = m->enc[0].api->forward(m->enc[0].state, &w, tokens, &out, err);
        } else {
            move_segment((float *)tokens->data, m->seg_in[i], m, i, B, m->D, 1);
            mpsl_tensor inp = f32_tensor(m->seg_in[i], B, m->tok_T[i], m->D);
            mpsl_tensor out = f32_tensor(m->seg_out[i], B, m->tok_T[i], Dh);
            rc = m->enc[i].api->forward(m->enc[i].state, &w, &inp, &out, err);
            move_segment(m->hidden, m->seg_out[i], m, i, B, Dh, 0);
        }
        if ((rc = module_status(rc, err)) != MPSL_OK) {
            return call_failed(rc, &m->enc[i], "forward", err);
        }
    }
    m->B = B;
    return MPSL_OK;
}

/* The head over m->hidden (m->B rows) into the flat outputs (B,C). */
static int head_forward(mpsl_model *m, mpsl_tensor *logits, mpsl_error *err)
{
    int64_t B = m->B;
    mpsl_tensor hidden = f32_tensor(m->hidden, B, m->T, m->Dh);
    mpsl_tensor out = head_tensor(m, m->logits, B);
    mpsl_weights w = weights_of(m, &m->head);
    int rc = m->head.api->forward(m->head.state, &w, &hidden, &out, err);
    if ((rc = module_status(rc, err)) != MPSL_OK) {
        return call_failed(rc, &m->head, "forward", err);
    }
    *logits = f32_tensor(m->logits, B, m->C, 0); /* flat (B, C) whatever the head's shape */
    return MPSL_OK;
}

/* The head's backward from dlogits (B,C) into m->dhidden (B,T,Dh). */
static int head_backward(mpsl_model *m, const mpsl_tensor *dlogits, mpsl_error *err)
{
    int64_t B = dlogits->shape[0], per = 1;
    for (int i = 1; i < dlogits->ndim && i < MPSL_MAX_DIMS; i++) {
        per *= dlogits->shape[i];
    }
    if (B != m->B || dlogits->ndim < 2 || per != m->C) {
        return mpsl_errs(err, MPSL_ERR_INTERNAL,
                         "model_encode_backward: gradient of %lld x %lld floats does not match "
                         "the last forward (%lld,%lld)", (long long)B, (long long)per,
                         (long long)m->B, (long long)m->C);
    }
    mpsl_tensor dhidden = f32_tensor(m->dhidden, B, m->T, m->Dh);
    mpsl_weights w = weights_of(m, &m->head);
    mpsl_tensor dhead = head_tensor(m, dlogits->data, B); /* the head's own shape */
    int rc = m->head.api->backward(m->head.state, &w, &dhead, &dhidden, err);
    if ((rc = module_status(rc, err)) != MPSL_OK) {
        return call_failed(rc, &m->head, "backward", err);
    }
    return MPSL_OK;
}

/* The encoder's backward from dhidden (m->B,T,Dh) into dtokens (B,T,D). */
static int encoder_backward(mpsl_model *m, const float *dhidden_data, mpsl_tensor *dtokens,
                            mpsl_error *err)
{
    int64_t B = m->B, Dh = m->Dh;
    mpsl_tensor dhidden = f32_tensor((float *)dhidden_data, B, m->T, Dh);
    int rc = MPSL_OK;
    for (int i = 0; i < m->n_enc; i++) {
        mpsl_weights we = weights_of(m, &m->enc[i]);
        if (m->n_enc == 1) {
            mpsl_tensor din = f32_tensor(m->dtokens, B, m->T, m->D);
            rc = m->enc[0].api->backward(m->enc[0].state, &we, &dhidden, &din, err);
        } else {
            move_segment((float *)dhidden_data, m->seg_out[i], m, i, B, Dh, 1);
            mpsl_tensor dout = f32_tensor(m->seg_out[i], B, m->tok_T[i], Dh);
            mpsl_tensor din = f32_tensor(m->seg_in[i], B, m->tok_T[i], m->D);
            rc = m->enc[i].api->backward(m->enc[i].state, &we, &dout, &din, err);
            move_segment(m->dtokens, m->seg_in[i], m, i, B, m->D, 0);
        }
        if ((rc = module_status(rc, err)) != MPSL_OK) {
            return call_failed(rc, &m->enc[i], "backward", err);
        }
    }
    *dtokens = f32_tensor(m->dtokens, B, m->T, m->D);
    return MPSL_OK;
}

int model_encode(mpsl_model *m, const mpsl_tensor *tokens, mpsl_tensor *logits,
                 mpsl_error *err)
{
    if ((m->parts & (MPSL_PART_ENCODER | MPSL_PART_HEAD)) != (MPSL_PART_ENCODER | MPSL_PART_HEAD)) {
        return mpsl_errs(err, MPSL_ERR_INTERNAL, "model_encode: this model lacks encoder or head");
    }
    int rc = encoder_forward(m, tokens, err);
    return rc == MPSL_OK ? head_forward(m, logits, err) : rc;
}

int model_encode_backward(mpsl_model *m, const mpsl_tensor *dlogits, mpsl_tensor *dtokens,
                          mpsl_error *err)
{
    int rc = model_ensure_grad(m, err);
    if (rc == MPSL_OK) {
        rc = head_backward(m, dlogits, err);
    }
    return rc == MPSL_OK ? encoder_backward(m, m->dhidden, dtokens, err) : rc;
}

int model_features(mpsl_model *m, const mpsl_tensor *tokens, mpsl_tensor *features,
                   mpsl_error *err)
{
    if (!(m->parts & MPSL_PART_ENCODER)) {
        return mpsl_errs(err, MPSL_ERR_INTERNAL, "model_features: this model holds no encoder");
    }
    int rc = encoder_forward(m, tokens, err);
    if (rc == MPSL_OK) {
        *features = f32_tensor(m->hidden, m->B, m->T, m->Dh);
    }
    return rc;
}

int model_features_backward(mpsl_model *m, const mpsl_tensor *dfeatures, mpsl_tensor *dtokens,
                            mpsl_error *err)
{
    if (!(m->parts & MPSL_PART_ENCODER)) {
        return mpsl_errs(err, MPSL_ERR_INTERNAL,
                         "model_features_backward: this model holds no encoder");
    }
    if (dfeatures->ndim != 3 || dfeatures->shape[0] != m->B || dfeatures->shape[1] != m->T ||
        dfeatures->shape[2] != m->Dh) {
        return mpsl_errs(err, MPSL_ERR_INTERNAL,
                         "model_features_backward: gradient shape (%lld,%lld,%lld) does not "
                         "match the last forward (%lld,%lld,%lld)",
                         (long long)dfeatures->shape[0], (long long)dfeatures->shape[1],
                         (long long)dfeatures->shape[2], (long long)m->B, (long long)m->T,
                         (long long)m->Dh);
    }
    int rc = model_ensure_grad(m, err);
    return rc == MPSL_OK ? encoder_backward(m, dfeatures->data, dtokens, err) : rc;
}

int model_head(mpsl_model *m, const mpsl_tensor *features, mpsl_tensor *logits, mpsl_error *err)
{
    if (!(m->parts & MPSL_PART_HEAD) || (m->parts & MPSL_PART_ENCODER)) {
        return mpsl_errs(err, MPSL_ERR_INTERNAL,
                         "model_head: needs a model with the head and without the encoder");
    }
    int64_t B = features->shape[0];
    if (features->ndim != 3 || features->shape[1] != m->T || features->shape[2] != m->Dh) {
        return mpsl_err(err, "model_head: features of shape (%lld,%lld,%lld), expected "
                        "(B,%lld,%lld)", (long long)B, (long long)features->shape[1],
                        (long long)features->shape[2], (long long)m->T, (long long)m->Dh);
    }
    int rc = ensure_capacity(m, B, err);
    if (rc != MPSL_OK) {
        return rc;
    }
    /* the head may keep its input for backward: it gets the model's own copy */
    memcpy(m->hidden, features->data, (size_t)(B * m->T * m->Dh) * sizeof(float));
    m->B = B;
    return head_forward(m, logits, err);
}

int model_head_backward(mpsl_model *m, const mpsl_tensor *dlogits, mpsl_tensor *dfeatures,
                        mpsl_error *err)
{
    if (!(m->parts & MPSL_PART_HEAD) || (m->parts & MPSL_PART_ENCODER)) {
        return mpsl_errs(err, MPSL_ERR_INTERNAL,
                         "model_head_backward: needs a model with the head and without the "
                         "encoder");
    }
    int rc = model_ensure_grad(m, err);
    if (rc == MPSL_OK) {
        rc = head_backward(m, dlogits, err);
    }
    if (rc == MPSL_OK) {
        *dfeatures = f32_tensor(m->dhidden, m->B, m->T, m->Dh);
    }
    return rc;
}

int model_copy(mpsl_model *dst, const mpsl_model *src, mpsl_error *err)
{
    if (dst->parts != src->parts || dst->n != src->n) {
        return mpsl_errs(err, MPSL_ERR_INTERNAL,
                         "model_copy: models hold different parts (%d vs %d) or sizes", dst->parts,
                         src->parts);
    }
    memcpy(dst->param, src->param, (size_t)src->n * sizeof(float));
    return MPSL_OK;
}

int model_part_span(const mpsl_model *m, int part, int64_t *base, int64_t *count)
{
    *base = *count = 0;
    if (!(m->parts & part)) {
        return MPSL_ERR_INVALID;
    }
    switch (part) {
    case MPSL_PART_TOKENIZERS: /* declared one after another, first in the buffer */
        *base = m->tok[0].base;
        *count = m->tok[m->n_tok - 1].base + m->tok[m->n_tok - 1].count - *base;
        return MPSL_OK;
    case MPSL_PART_ENCODER:    /* late fusion's encoders share the first one's weights */
        *base = m->enc[0].base;
        *count = m->enc[0].count;
        return MPSL_OK;
    case MPSL_PART_HEAD:
        *base = m->head.base;
        *count = m->head.count;
        return MPSL_OK;
    default:
        return MPSL_ERR_INVALID;
    }
}
