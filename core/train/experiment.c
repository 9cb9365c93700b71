/* experiment.c: the top-level schema of an experiment file. Each section is validated with
 * the same cfg_parse_params() that plugins' own keys go through, so every message carries
 * file:line:column; cross-section contradictions are checked here. */
#include "experiment.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/util.h"

/* ---- section structs and their key tables */

typedef struct top_keys {
    const char *name;
    int64_t seed;
} top_keys;
static const mpsl_param_spec top_spec[] = {
    MPSL_PARAM_STRING(top_keys, name, "name", 1, NULL, "experiment name, stored with each run"),
    MPSL_PARAM_INT(top_keys, seed, "seed", 0, 0, 9007199254740991.0, "0",
                   "seed for partitioning, initialisation and shuffling"),
};
static const char *const top_sections[] = {"data",   "model",     "strategy", "train",
                                           "output", "transport", "metrics",  "network",
                                           NULL};

/* metrics: what a run records beyond its per-epoch figures (docs/config.md). */
typedef struct metrics_keys {
    int64_t every_steps;
    int per_client_test;
    int leakage_audit;
    int64_t leakage_samples;
} metrics_keys;
static const mpsl_param_spec metrics_spec[] = {
    MPSL_PARAM_INT(metrics_keys, every_steps, "every_steps", 0, 0, 1000000000, "0",
                   "record training loss and accuracy every N steps of each role, per client "
                   "and for the run (step_metrics; 0: per epoch only)"),
    MPSL_PARAM_BOOL(metrics_keys, per_client_test, "per_client_test", "true",
                    "classification: each client's test accuracy and loss, the evaluated "
                    "model's on the test set weighted to the client's class mix"),
    MPSL_PARAM_BOOL(metrics_keys, leakage_audit, "leakage_audit", "false",
                    "classification: run label-leakage attacks on what the server receives "
                    "and record their success per epoch (audit_* metrics; docs/privacy.md)"),
    MPSL_PARAM_INT(metrics_keys, leakage_samples, "leakage_samples", 0, 0, 100000, "512",
                   "leakage audit: rows per epoch and message kind the clustering attack "
                   "runs on (the epoch's first ones)"),
};

/* transport: how the parties run (docs/distributed.md). `transport: local` is short for
 * `transport: {mode: local}`. */
typedef struct transport_keys {
    int mode;
    double timeout_s;
} transport_keys;
static const mpsl_param_spec transport_spec[] = {
    MPSL_PARAM_ENUM(transport_keys, mode, "mode", "auto|local|mpi", "auto",
                    "auto: over MPI when started by mpirun or srun, else in one process"),
    MPSL_PARAM_FLOAT(transport_keys, timeout_s, "timeout_s", 0, 1, 1e7, "600",
                     "longest wait for a message from another process before the run fails"),
};

typedef struct output_keys {
    const char *db;
    const char *save_weights;
} output_keys;
static const mpsl_param_spec output_spec[] = {
    MPSL_PARAM_STRING(output_keys, db, "db", 0, "results.db",
                      "SQLite results database (relative to the working directory)"),
    MPSL_PARAM_STRING(output_keys, save_weights, "save_weights", 0, NULL,
                      "write the final evaluated model here as safetensors"),
};
static const char *const output_ignore[] = {"tags", NULL};

typedef struct data_keys {
    int64_t clients;
} data_keys;
static const mpsl_param_spec data_spec[] = {
    MPSL_PARAM_INT(data_keys, clients, "clients", 1, 1, 100000, NULL, "number of clients"),
};
static const char *const data_ignore[] = {"dataset", "partition", NULL};

typedef struct partition_keys {
    int scheme;
    double alpha;
    int64_t min_per_client;
    int64_t max_redraws;
} partition_keys;
static const mpsl_param_spec partition_keys_spec[] = {
    MPSL_PARAM_ENUM(partition_keys, scheme, "scheme", "iid|dirichlet|shards", "iid",
                    "how the training set is split among clients"),
    MPSL_PARAM_FLOAT(partition_keys, alpha, "alpha", 0, 1e-6, 1e9, "0.5",
                     "Dirichlet concentration (dirichlet only)"),
    MPSL_PARAM_INT(partition_keys, min_per_client, "min_per_client", 0, 0, 1000000000, "10",
                   "Dirichlet: re-draw until every client has this many samples"),
    MPSL_PARAM_INT(partition_keys, max_redraws, "max_redraws", 0, 1, 1000000, "1000",
                   "Dirichlet: give up after this many draws"),
};

typedef struct model_keys {
    int fusion;
} model_keys;
static const mpsl_param_spec model_spec[] = {
    MPSL_PARAM_ENUM(model_keys, fusion, "fusion", "early|late", "early",
                    "early: one encoder pass over all modalities' tokens; late: one per modality"),
};
static const char *const model_ignore[] = {"tokenizers", "encoder", "head", "weights", NULL};

typedef struct weights_keys {
    const char *path, *prefix_map;
    int strict;
} weights_keys;
static const mpsl_param_spec weights_spec[] = {
    MPSL_PARAM_STRING(weights_keys, path, "path", 1, NULL,
                      "safetensors file with pretrained parameters (timm names)"),
    MPSL_PARAM_STRING(weights_keys, prefix_map, "prefix_map", 0, "",
                      "comma-separated from=to rewrites of the file's names"),
    MPSL_PARAM_BOOL(weights_keys, strict, "strict", "true",
                    "every parameter the model declares must be in the file"),
};

typedef struct train_keys {
    int64_t epochs, batch_size, eval_every;
    int on_nonfinite;
    int precision;
} train_keys;
static const mpsl_param_spec train_spec[] = {
    MPSL_PARAM_INT(train_keys, epochs, "epochs", 1, 1, 1000000, NULL,
                   "epochs (MPSL, centralized) or rounds (federated strategies)"),
    MPSL_PARAM_INT(train_keys, batch_size, "batch_size", 0, 1, 1000000, "64",
                   "total mini-batch over all clients per step"),
    MPSL_PARAM_INT(train_keys, eval_every, "eval_every", 0, 1, 1000000, "1",
                   "evaluate on the test split every N epochs (and after the last)"),
    MPSL_PARAM_ENUM(train_keys, on_nonfinite, "on_nonfinite", "stop|warn", "stop",
                    "a NaN or infinite loss or gradient norm: stop the run as failed, or warn "
                    "once per party and go on"),
    MPSL_PARAM_ENUM(train_keys, precision, "precision", "fp32|bf16", "fp32",
                    "the matrix products of linear layers and attention: float32, or bfloat16 "
                    "inputs with float32 accumulation on CPUs with AVX512_BF16 (float32 "
                    "elsewhere, with a warning); weights, optimizer and reductions stay float32"),
};
static const char *const train_ignore[] = {"optimizer", "schedule", "checkpoint", NULL};

/* train.checkpoint: saved states to resume from (docs/cli.md, "mpsl resume"). */
typedef struct checkpoint_keys {
    int64_t every_epochs, every_steps, keep;
    const char *dir;
} checkpoint_keys;
static const mpsl_param_spec checkpoint_spec[] = {
    MPSL_PARAM_INT(checkpoint_keys, every_epochs, "every_epochs", 0, 0, 1000000, "0",
                   "write a checkpoint after every N epochs (0: none)"),
    MPSL_PARAM_INT(checkpoint_keys, every_steps, "every_steps", 0, 0, 1000000000, "0",
                   "also after every N steps inside an epoch (0: none; strategies whose "
                   "roles take steps together: mpsl, centralized)"),
    MPSL_PARAM_INT(checkpoint_keys, keep, "keep", 0, 1, 1000000, "2",
                   "the newest N checkpoints of a run are kept, older ones deleted"),
    MPSL_PARAM_STRING(checkpoint_keys, dir, "dir", 0, NULL,
                      "folder for checkpoints (default: beside the results database, "
                      "DB.checkpoints/run-ID/)"),
};

typedef struct optimizer_keys {
    int name;
    double lr, momentum, beta1, beta2, eps, weight_decay, clip_norm;
} optimizer_keys;
static const mpsl_param_spec optimizer_spec[] = {
    MPSL_PARAM_ENUM(optimizer_keys, name, "name", "sgd|adam|adamw", "adam", "optimizer"),
    MPSL_PARAM_FLOAT(optimizer_keys, lr, "lr", 0, 0, 10, "0.001", "learning rate"),
    MPSL_PARAM_FLOAT(optimizer_keys, momentum, "momentum", 0, 0, 1, "0", "SGD momentum"),
    MPSL_PARAM_FLOAT(optimizer_keys, beta1, "beta1", 0, 0, 0.999999, "0.9", "Adam beta1"),
    MPSL_PARAM_FLOAT(optimizer_keys, beta2, "beta2", 0, 0, 0.999999999, "0.999", "Adam beta2"),
    MPSL_PARAM_FLOAT(optimizer_keys, eps, "eps", 0, 0, 1, "1e-08", "Adam epsilon"),
    MPSL_PARAM_FLOAT(optimizer_keys, weight_decay, "weight_decay", 0, 0, 10, "0",
                     "L2 penalty (decoupled for adamw)"),
    MPSL_PARAM_FLOAT(optimizer_keys, clip_norm, "clip_norm", 0, 0, 1e9, "0",
                     "clip the global gradient norm to this (0: off)"),
};

static const char *const optimizer_ignore[] = {"groups", NULL};

typedef struct group_keys {
    const char *match;
    double lr, weight_decay;
    int frozen;
} group_keys;
static const mpsl_param_spec group_spec[] = {
    MPSL_PARAM_STRING(group_keys, match, "match", 1, NULL,
                      "glob over parameter names, e.g. 'blocks.1[01].*' or 'head.*'"),
    MPSL_PARAM_FLOAT(group_keys, lr, "lr", 0, 0, 10, NULL, "learning rate of this group"),
    MPSL_PARAM_FLOAT(group_keys, weight_decay, "weight_decay", 0, 0, 10, NULL,
                     "weight decay of this group"),
    MPSL_PARAM_BOOL(group_keys, frozen, "frozen", "false", "do not train this group"),
};

/* train.optimizer.groups: a list of {match, lr, weight_decay, frozen}; first match wins. */
static int parse_groups(const cfg_node *opt, optim_settings *o, mpsl_error *err)
{
    const cfg_node *groups = opt ? cfg_get(opt, "groups") : NULL;
    char w[256];
    if (!groups) {
        return MPSL_OK;
    }
    if (cfg_node_type(groups) != CFG_SEQ) {
        return mpsl_err(err, "%s: train.optimizer.groups must be a list of mappings "
                        "({match: GLOB, lr: X, weight_decay: X, frozen: BOOL})",
                        cfg_where(groups, w, sizeof w));
    }
    if (cfg_len(groups) > OPTIM_MAX_GROUPS) {
        return mpsl_err(err, "%s: at most %d optimizer groups", cfg_where(groups, w, sizeof w),
                        OPTIM_MAX_GROUPS);
    }
    for (size_t i = 0; i < cfg_len(groups); i++) {
        const cfg_node *g = cfg_at(groups, i);
        group_keys gk;
        char context[64];
        snprintf(context, sizeof context, "train.optimizer.groups[%zu]", i);
        int rc = cfg_parse_params(g, group_spec, MPSL_COUNT(group_spec), &gk, sizeof gk, context,
                                  NULL, err);
        if (rc != MPSL_OK) {
            return rc;
        }
        o->groups[i] = (optim_group){.match = gk.match,
                                     .has_lr = cfg_get(g, "lr") != NULL,
                                     .lr = gk.lr,
                                     .has_weight_decay = cfg_get(g, "weight_decay") != NULL,
                                     .weight_decay = gk.weight_decay,
                                     .frozen = gk.frozen};
        if (gk.frozen && (o->groups[i].has_lr || o->groups[i].has_weight_decay)) {
            return mpsl_err(err, "%s: a frozen group takes no lr or weight_decay",
                            cfg_where(g, w, sizeof w));
        }
        o->n_groups = (int)i + 1;
    }
    return MPSL_OK;
}

typedef struct schedule_keys {
    int name;
    int64_t step_epochs, warmup_epochs;
    double gamma, min_lr;
} schedule_keys;
static const mpsl_param_spec schedule_spec[] = {
    MPSL_PARAM_ENUM(schedule_keys, name, "name", "constant|step|cosine", "constant",
                    "learning-rate schedule, applied per epoch"),
    MPSL_PARAM_INT(schedule_keys, step_epochs, "step_epochs", 0, 1, 1000000, "5",
                   "step: epochs between decays"),
    MPSL_PARAM_FLOAT(schedule_keys, gamma, "gamma", 0, 0, 1, "0.1", "step: decay factor"),
    MPSL_PARAM_INT(schedule_keys, warmup_epochs, "warmup_epochs", 0, 0, 1000000, "0",
                   "cosine: linear warmup epochs"),
    MPSL_PARAM_FLOAT(schedule_keys, min_lr, "min_lr", 0, 0, 10, "0", "cosine: final lr"),
};

/* ---- helpers */

static const char *where(const cfg_node *n, char *buf, size_t size)
{
    return cfg_where(n, buf, size);
}

/* A section that must be a mapping when present (absent: all defaults). */
static int section(const cfg_node *root, const char *key, int required, const cfg_node **out,
                   mpsl_error *err)
{
    char w[256];
    *out = cfg_get(root, key);
    if (!*out) {
        if (required) {
            return mpsl_err(err, "%s: missing required section '%s'",
                            cfg_where(root, w, sizeof w), key);
        }
        return MPSL_OK;
    }
    if (cfg_node_type(*out) != CFG_MAP) {
        return mpsl_err(err, "%s: '%s' must be a mapping", cfg_where(*out, w, sizeof w), key);
    }
    return MPSL_OK;
}


/* Write every default the validation applied into the tree, so that the configuration stored
 * with a run is complete: repeating it later gives the same run even if defaults change.
 * Keys in `skip` (NULL-terminated) are left out where they would contradict other settings. */
static int record_defaults(cfg_node *root, const char *path, const mpsl_param_spec *specs,
                           size_t n, const char *const *skip, mpsl_error *err)
{
    const cfg_node *section = path[0] ? cfg_path(root, path) : root;
    for (size_t i = 0; i < n; i++) {
        const mpsl_param_spec *p = &specs[i];
        int skipped = 0;
        for (const char *const *k = skip; k && *k; k++) {
            skipped |= strcmp(*k, p->key) == 0;
        }
        if (skipped || !p->def || (section && cfg_get(section, p->key))) {
            continue;
        }
        char *assignment;
        if (p->type == MPSL_PARAM_T_STRING || p->type == MPSL_PARAM_T_ENUM) {
            /* Single-quoted YAML: the only escape is a doubled quote. */
            char quoted[512];
            size_t j = 0;
            for (const char *c = p->def; *c && j + 3 < sizeof quoted; c++) {
                if (*c == '\'') {
                    quoted[j++] = '\'';
                }
                quoted[j++] = *c;
            }
            quoted[j] = '\0';
            assignment = mpsl_strfmt("%s%s%s='%s'", path, path[0] ? "." : "", p->key, quoted);
        } else {
            assignment = mpsl_strfmt("%s%s%s=%s", path, path[0] ? "." : "", p->key, p->def);
        }
        if (!assignment) {
            return mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
        }
        int rc = cfg_apply_override(root, assignment, err);
        free(assignment);
        if (rc != MPSL_OK) {
            return rc;
        }
        section = path[0] ? cfg_path(root, path) : root;
    }
    return MPSL_OK;
}

static const char *const slot_ignore[] = {"plugin", NULL};

/* Load the plugin a slot names and validate its keys against the plugin's own table.
 * `parent` is the mapping that should hold the slot: when the slot is missing, the message
 * points at it, since the slot itself has no position. */
static int load_slot(plugin_slot *slot, const cfg_node *parent, const cfg_node *node,
                     const char *slot_name, const char *section_path, mpsl_plugin_kind kind,
                     const char *dir, mpsl_error *err)
{
    char w[256];
    snprintf(slot->slot, sizeof slot->slot, "%s", slot_name);
    snprintf(slot->section, sizeof slot->section, "%s", section_path);
    slot->kind = kind;
    slot->node = node;
    if (!node || cfg_node_type(node) != CFG_MAP) {
        return mpsl_err(err, "%s: '%s' must be a mapping with a 'plugin' key naming a %s plugin",
                        cfg_where(node ? node : parent, w, sizeof w), section_path,
                        plugin_kind_name(kind));
    }
    cfg_where(node, slot->where, sizeof slot->where);
    const cfg_node *name = cfg_get(node, "plugin");
    if (!name || cfg_node_type(name) != CFG_SCALAR || !cfg_scalar(name)[0]) {
        return mpsl_err(err, "%s: '%s' needs a 'plugin' key naming a %s plugin", slot->where,
                        section_path, plugin_kind_name(kind));
    }
    int rc = plugin_open(cfg_scalar(name), kind, dir, &slot->plugin, err);
    if (rc != MPSL_OK) {
        mpsl_err_prefix(err, "%s", cfg_where(name, w, sizeof w));
        return rc;
    }
    const mpsl_plugin_desc *d = slot->plugin.desc;
    slot->params = calloc(1, d->params_size ? d->params_size : 1);
    if (!slot->params) {
        return mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
    }
    return cfg_parse_params(node, d->params, d->n_params, slot->params, d->params_size,
                            section_path, slot_ignore, err);
}

static void free_slot(plugin_slot *slot)
{
    if (slot->plugin.handle) {
        plugin_unload(&slot->plugin);
    }
    free(slot->params);
    slot->params = NULL;
}

static int parse_tags(experiment *ex, const cfg_node *output, mpsl_error *err)
{
    const cfg_node *tags = output ? cfg_get(output, "tags") : NULL;
    if (!tags) {
        return MPSL_OK;
    }
    char w[256];
    if (cfg_node_type(tags) != CFG_SEQ) {
        return mpsl_err(err, "%s: output.tags must be a list of strings",
                        where(tags, w, sizeof w));
    }
    size_t n = cfg_len(tags);
    if (n > MPSL_COUNT(ex->tags) - 1) {
        return mpsl_err(err, "%s: at most %zu tags", where(tags, w, sizeof w),
                        MPSL_COUNT(ex->tags) - 1);
    }
    for (size_t i = 0; i < n; i++) {
        const cfg_node *t = cfg_at(tags, i);
        if (cfg_node_type(t) != CFG_SCALAR) {
            return mpsl_err(err, "%s: each tag must be a string", where(t, w, sizeof w));
        }
        ex->tags[i] = cfg_scalar(t);
    }
    return MPSL_OK;
}

static int parse_data(experiment *ex, const cfg_node *root, mpsl_error *err)
{
    const cfg_node *data, *part = NULL;
    char w[256];
    int rc = section(root, "data", 1, &data, err);
    if (rc != MPSL_OK) {
        return rc;
    }
    data_keys dk;
    rc = cfg_parse_params(data, data_spec, MPSL_COUNT(data_spec), &dk, sizeof dk, "data",
                          data_ignore, err);
    if (rc != MPSL_OK) {
        return rc;
    }
    ex->n_clients = (int)dk.clients;
    rc = section(data, "partition", 0, &part, err);
    if (rc != MPSL_OK) {
        return rc;
    }
    partition_keys pk;
    rc = cfg_parse_params(part, partition_keys_spec, MPSL_COUNT(partition_keys_spec), &pk,
                          sizeof pk, "data.partition", NULL, err);
    if (rc != MPSL_OK) {
        return rc;
    }
    if (pk.scheme != PARTITION_DIRICHLET && part) {
        static const char *const dirichlet_only[] = {"alpha", "min_per_client", "max_redraws"};
        for (size_t i = 0; i < MPSL_COUNT(dirichlet_only); i++) {
            if (cfg_get(part, dirichlet_only[i])) {
                return mpsl_err(err,
                                "%s: data.partition.%s only applies to scheme 'dirichlet', "
                                "but scheme is '%s'",
                                cfg_where_key(part, dirichlet_only[i], w, sizeof w),
                                dirichlet_only[i], pk.scheme == PARTITION_IID ? "iid" : "shards");
            }
        }
    }
    ex->partition = (partition_spec){.scheme = (partition_scheme)pk.scheme,
                                     .n_clients = ex->n_clients,
                                     .alpha = pk.alpha,
                                     .min_per_client = pk.min_per_client,
                                     .max_redraws = pk.max_redraws};
    return load_slot(&ex->dataset, data, cfg_get(data, "dataset"), "dataset", "data.dataset",
                     MPSL_KIND_DATASET, ex->dir, err);
}

static int parse_model(experiment *ex, const cfg_node *root, mpsl_error *err)
{
    const cfg_node *model;
    char w[256];
    int rc = section(root, "model", 1, &model, err);
    if (rc != MPSL_OK) {
        return rc;
    }
    model_keys mk;
    rc = cfg_parse_params(model, model_spec, MPSL_COUNT(model_spec), &mk, sizeof mk, "model",
                          model_ignore, err);
    if (rc != MPSL_OK) {
        return rc;
    }
    ex->fusion = (fusion_mode)mk.fusion;
    const cfg_node *weights;
    rc = section(model, "weights", 0, &weights, err);
    if (rc == MPSL_OK && weights) {
        weights_keys wk;
        rc = cfg_parse_params(weights, weights_spec, MPSL_COUNT(weights_spec), &wk, sizeof wk,
                              "model.weights", NULL, err);
        if (rc == MPSL_OK) {
            /* Relative to the working directory, like output.db and output.save_weights, so
             * one experiment's saved model is another's pretrained weights. */
            ex->weights_path_owned = mpsl_strdup(wk.path);
            ex->weights.path = ex->weights_path_owned;
            ex->weights.prefix_map = wk.prefix_map;
            ex->weights.strict = wk.strict;
        }
    }
    if (rc != MPSL_OK) {
        return rc;
    }
    const cfg_node *toks;
    rc = section(model, "tokenizers", 1, &toks, err);
    if (rc != MPSL_OK) {
        return rc;
    }
    size_t n = cfg_len(toks);
    if (n == 0 || n > MPSL_MAX_MODALITIES) {
        return mpsl_err(err, "%s: model.tokenizers needs 1 to %d entries (one per modality), got %zu",
                        where(toks, w, sizeof w), MPSL_MAX_MODALITIES, n);
    }
    ex->n_tokenizers = (int)n;
    for (size_t i = 0; i < n; i++) {
        ex->modality[i] = cfg_key_at(toks, i);
        char slot[64], sec[96];
        snprintf(slot, sizeof slot, "tokenizer.%s", ex->modality[i]);
        snprintf(sec, sizeof sec, "model.tokenizers.%s", ex->modality[i]);
        rc = load_slot(&ex->tokenizer[i], toks, cfg_at(toks, i), slot, sec,
                       MPSL_KIND_TOKENIZER, ex->dir, err);
        if (rc != MPSL_OK) {
            return rc;
        }
    }
    if (ex->fusion == FUSION_LATE && n < 2) {
        return mpsl_err(err, "%s: model.fusion 'late' needs at least two tokenizers, got %zu",
                        cfg_where_key(model, "fusion", w, sizeof w), n);
    }
    rc = load_slot(&ex->encoder, model, cfg_get(model, "encoder"), "encoder", "model.encoder",
                   MPSL_KIND_ENCODER, ex->dir, err);
    if (rc == MPSL_OK) {
        rc = load_slot(&ex->head, model, cfg_get(model, "head"), "head", "model.head",
                       MPSL_KIND_HEAD, ex->dir, err);
    }
    return rc;
}

static int parse_train(experiment *ex, const cfg_node *root, mpsl_error *err)
{
    const cfg_node *train, *opt, *sched;
    int rc = section(root, "train", 1, &train, err);
    if (rc != MPSL_OK) {
        return rc;
    }
    train_keys tk;
    rc = cfg_parse_params(train, train_spec, MPSL_COUNT(train_spec), &tk, sizeof tk, "train",
                          train_ignore, err);
    if (rc == MPSL_OK) {
        rc = section(train, "optimizer", 0, &opt, err);
    }
    if (rc == MPSL_OK) {
        rc = section(train, "schedule", 0, &sched, err);
    }
    if (rc != MPSL_OK) {
        return rc;
    }
    const cfg_node *ckpt;
    rc = section(train, "checkpoint", 0, &ckpt, err);
    checkpoint_keys ck;
    if (rc == MPSL_OK) {
        rc = cfg_parse_params(ckpt, checkpoint_spec, MPSL_COUNT(checkpoint_spec), &ck, sizeof ck,
                              "train.checkpoint", NULL, err);
    }
    if (rc != MPSL_OK) {
        return rc;
    }
    ex->checkpoint_every = ck.every_epochs;
    ex->checkpoint_every_steps = ck.every_steps;
    ex->checkpoint_keep = ck.keep;
    ex->checkpoint_dir = ck.dir;
    optimizer_keys ok;
    schedule_keys sk;
    rc = cfg_parse_params(opt, optimizer_spec, MPSL_COUNT(optimizer_spec), &ok, sizeof ok,
                          "train.optimizer", optimizer_ignore, err);
    if (rc == MPSL_OK) {
        rc = cfg_parse_params(sched, schedule_spec, MPSL_COUNT(schedule_spec), &sk, sizeof sk,
                              "train.schedule", NULL, err);
    }
    if (rc != MPSL_OK) {
        return rc;
    }
    char w[256];
    if (sk.name == SCHEDULE_COSINE && sk.warmup_epochs >= tk.epochs) {
        return mpsl_err(err, "%s: train.schedule.warmup_epochs (%lld) must be less than "
                        "train.epochs (%lld)",
                        cfg_where_key(sched, "warmup_epochs", w, sizeof w),
                        (long long)sk.warmup_epochs, (long long)tk.epochs);
    }
    if (ok.name != OPTIM_SGD && opt && cfg_get(opt, "momentum")) {
        return mpsl_err(err, "%s: train.optimizer.momentum only applies to 'sgd'",
                        cfg_where_key(opt, "momentum", w, sizeof w));
    }
    if (tk.batch_size < ex->n_clients) {
        mpsl_log(MPSL_LOG_DEBUG, "batch_size %lld is below the client count %d: each client "
                 "still draws at least one sample per step", (long long)tk.batch_size,
                 ex->n_clients);
    }
    ex->train.epochs = tk.epochs;
    ex->train.batch_size = tk.batch_size;
    ex->train.eval_every = tk.eval_every;
    ex->warn_nonfinite = tk.on_nonfinite == 1;
    ex->precision_bf16 = tk.precision == 1;
    ex->optim = (optim_settings){.kind = (optim_kind)ok.name,
                                 .lr = ok.lr,
                                 .momentum = ok.momentum,
                                 .beta1 = ok.beta1,
                                 .beta2 = ok.beta2,
                                 .eps = ok.eps,
                                 .weight_decay = ok.weight_decay,
                                 .clip_norm = ok.clip_norm,
                                 .schedule = (schedule_kind)sk.name,
                                 .step_epochs = sk.step_epochs,
                                 .gamma = sk.gamma,
                                 .warmup_epochs = sk.warmup_epochs,
                                 .min_lr = sk.min_lr,
                                 .total_epochs = tk.epochs};
    return parse_groups(opt, &ex->optim, err);
}

static int parse_transport(experiment *ex, cfg_node *root, mpsl_error *err)
{
    const cfg_node *node = cfg_get(root, "transport");
    const char *mode = node ? cfg_scalar(node) : NULL;
    if (mode && !cfg_is_null(node)) {
        /* the scalar shorthand becomes the mapping, so the stored config has one shape */
        char w[256];
        if (strcmp(mode, "auto") != 0 && strcmp(mode, "local") != 0 &&
            strcmp(mode, "mpi") != 0) {
            return mpsl_err(err, "%s: transport must be auto, local or mpi (or a mapping with "
                            "mode and timeout_s), not '%s'", cfg_where(node, w, sizeof w), mode);
        }
        char *set = mpsl_strfmt("transport.mode=%s", mode);
        cfg_remove(root, "transport");
        int rc = set ? cfg_apply_override(root, set, err) : MPSL_ERR_NOMEM;
        free(set);
        if (rc != MPSL_OK) {
            return rc;
        }
    }
    const cfg_node *section_node;
    int rc = section(root, "transport", 0, &section_node, err);
    if (rc != MPSL_OK) {
        return rc;
    }
    transport_keys tk;
    rc = cfg_parse_params(section_node, transport_spec, MPSL_COUNT(transport_spec), &tk,
                          sizeof tk, "transport", NULL, err);
    ex->transport = (transport_mode)tk.mode;
    ex->timeout_s = tk.timeout_s;
    return rc;
}

static int record_all_defaults(experiment *ex, mpsl_error *err)
{
    static const char *const dirichlet_only[] = {"alpha", "min_per_client", "max_redraws", NULL};
    static const char *const sgd_only[] = {"momentum", NULL};
    struct {
        const char *path;
        const mpsl_param_spec *specs;
        size_t n;
        const char *const *skip;
    } sections[] = {
        {"", top_spec, MPSL_COUNT(top_spec), NULL},
        {"output", output_spec, MPSL_COUNT(output_spec), NULL},
        {"transport", transport_spec, MPSL_COUNT(transport_spec), NULL},
        {"data.partition", partition_keys_spec, MPSL_COUNT(partition_keys_spec),
         ex->partition.scheme == PARTITION_DIRICHLET ? NULL : dirichlet_only},
        {"model", model_spec, MPSL_COUNT(model_spec), NULL},
        {"train", train_spec, MPSL_COUNT(train_spec), NULL},
        {"train.optimizer", optimizer_spec, MPSL_COUNT(optimizer_spec),
         ex->optim.kind == OPTIM_SGD ? NULL : sgd_only},
        {"train.schedule", schedule_spec, MPSL_COUNT(schedule_spec), NULL},
        {"train.checkpoint", checkpoint_spec, MPSL_COUNT(checkpoint_spec), NULL},
        {"metrics", metrics_spec, MPSL_COUNT(metrics_spec), NULL},
    };
    int rc = ex->weights.path ? record_defaults(ex->root, "model.weights", weights_spec,
                                                MPSL_COUNT(weights_spec), NULL, err)
                              : MPSL_OK;
    if (rc == MPSL_OK && ex->network.on) { /* only when given: the model is off without it */
        size_t n_net;
        const mpsl_param_spec *net = netmodel_spec(&n_net);
        static const char *const not_table[] = {"table", NULL};
        rc = record_defaults(ex->root, "network", net, n_net,
                             ex->network.kind == NET_TABLE ? NULL : not_table, err);
    }
    for (size_t i = 0; i < MPSL_COUNT(sections) && rc == MPSL_OK; i++) {
        rc = record_defaults(ex->root, sections[i].path, sections[i].specs, sections[i].n,
                             sections[i].skip, err);
    }
    plugin_slot *slots[MPSL_MAX_MODALITIES + 4];
    int n = experiment_slots(ex, slots, (int)MPSL_COUNT(slots));
    for (int i = 0; i < n && rc == MPSL_OK; i++) {
        const mpsl_plugin_desc *d = slots[i]->plugin.desc;
        rc = record_defaults(ex->root, slots[i]->section, d->params, d->n_params, NULL, err);
    }
    return rc;
}

int experiment_build(cfg_node *root, const char *path, const char *dir, experiment *ex,
                     mpsl_error *err)
{
    memset(ex, 0, sizeof *ex);
    ex->root = root;
    ex->path = mpsl_strdup(path);
    ex->dir = mpsl_strdup(dir ? dir : ".");
    char w[256];
    if (cfg_node_type(root) != CFG_MAP) {
        return mpsl_err(err, "%s: an experiment file must be a mapping",
                        cfg_where(root, w, sizeof w));
    }
    top_keys tk;
    int rc = cfg_parse_params(root, top_spec, MPSL_COUNT(top_spec), &tk, sizeof tk,
                              "experiment", top_sections, err);
    if (rc != MPSL_OK) {
        return rc;
    }
    ex->name = tk.name;
    ex->train.seed = (uint64_t)tk.seed;
    const cfg_node *output;
    rc = section(root, "output", 0, &output, err);
    if (rc != MPSL_OK) {
        return rc;
    }
    output_keys outk;
    rc = cfg_parse_params(output, output_spec, MPSL_COUNT(output_spec), &outk, sizeof outk,
                          "output", output_ignore, err);
    if (rc == MPSL_OK) {
        rc = parse_tags(ex, output, err);
    }
    if (rc != MPSL_OK) {
        return rc;
    }
    ex->db_path = outk.db;
    ex->save_weights = outk.save_weights;
    const cfg_node *metrics;
    rc = section(root, "metrics", 0, &metrics, err);
    metrics_keys mk;
    if (rc == MPSL_OK) {
        rc = cfg_parse_params(metrics, metrics_spec, MPSL_COUNT(metrics_spec), &mk, sizeof mk,
                              "metrics", NULL, err);
    }
    if (rc != MPSL_OK) {
        return rc;
    }
    ex->metrics_every_steps = mk.every_steps;
    ex->metrics_per_client_test = mk.per_client_test;
    ex->metrics_leakage_audit = mk.leakage_audit;
    ex->metrics_leakage_samples = mk.leakage_samples;
    /* Cheap checks first, so a typo in train: is reported before plugins are loaded. */
    rc = parse_transport(ex, root, err);
    if (rc == MPSL_OK) {
        rc = parse_train(ex, root, err);
    }
    if (rc == MPSL_OK) {
        rc = parse_data(ex, root, err);
    }
    if (rc == MPSL_OK) {
        const cfg_node *network;
        rc = section(root, "network", 0, &network, err);
        if (rc == MPSL_OK) {
            rc = netmodel_parse(&ex->network, network, ex->n_clients, ex->train.seed, err);
        }
    }
    if (rc == MPSL_OK) {
        ex->partition.seed = ex->train.seed;
        rc = parse_model(ex, root, err);
    }
    if (rc == MPSL_OK) {
        rc = load_slot(&ex->strategy, root, cfg_get(root, "strategy"), "aggregation",
                       "strategy", MPSL_KIND_AGGREGATION, ex->dir, err);
    }
    if (rc == MPSL_OK) {
        rc = record_all_defaults(ex, err);
    }
    return rc;
}

int experiment_slots(experiment *ex, plugin_slot **slots, int max)
{
    int n = 0;
    if (n < max) {
        slots[n++] = &ex->dataset;
    }
    for (int i = 0; i < ex->n_tokenizers && n < max; i++) {
        slots[n++] = &ex->tokenizer[i];
    }
    plugin_slot *rest[] = {&ex->encoder, &ex->head, &ex->strategy};
    for (size_t i = 0; i < MPSL_COUNT(rest) && n < max; i++) {
        slots[n++] = rest[i];
    }
    return n;
}

void experiment_free(experiment *ex)
{
    plugin_slot *slots[MPSL_MAX_MODALITIES + 4];
    int n = experiment_slots(ex, slots, (int)MPSL_COUNT(slots));
    for (int i = 0; i < n; i++) {
        free_slot(slots[i]);
    }
    cfg_free(ex->root);
    netmodel_free(&ex->network);
    free(ex->weights_path_owned);
    free(ex->path);
    free(ex->dir);
    memset(ex, 0, sizeof *ex);
}
