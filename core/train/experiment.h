/* experiment.h: an experiment file validated into the settings a run needs: which plugins
 * fill which slot (with their parameter blocks), partitioning, training and optimizer
 * settings, and where results go. See docs/config.md for every key. */
#ifndef MPSL_EXPERIMENT_H
#define MPSL_EXPERIMENT_H

#include "config/config.h"
#include "plugin/loader.h"
#include "train/netmodel.h"
#include "train/optim.h"
#include "train/partition.h"

/* One config slot that names a plugin, e.g. model.encoder: {plugin: token_mlp, depth: 2}. */
typedef struct plugin_slot {
    char slot[64];              /* "dataset", "tokenizer.image", "encoder", ... */
    char section[96];           /* config path, "model.tokenizers.image" */
    mpsl_plugin_kind kind;
    const cfg_node *node;       /* the slot's mapping */
    char where[256];            /* file:line:column of the mapping */
    loaded_plugin plugin;
    void *params;               /* the block cfg_parse_params filled (desc->params_size) */
} plugin_slot;

typedef enum fusion_mode { FUSION_EARLY = 0, FUSION_LATE = 1 } fusion_mode;
typedef enum transport_mode { TRANSPORT_AUTO = 0, TRANSPORT_LOCAL, TRANSPORT_MPI } transport_mode;

typedef struct experiment {
    cfg_node *root;             /* resolved tree (includes, overrides, defaults) */
    char *path;                 /* experiment file, or "run N" when taken from the database */
    char *dir;                  /* directory that relative plugin paths are taken from */

    const char *name;
    const char *db_path;        /* output.db */
    const char *tags[17];       /* output.tags, NULL-terminated */

    plugin_slot dataset;
    int n_clients;
    partition_spec partition;

    int n_tokenizers;
    const char *modality[MPSL_MAX_MODALITIES];      /* key under model.tokenizers */
    plugin_slot tokenizer[MPSL_MAX_MODALITIES];
    plugin_slot encoder;
    plugin_slot head;
    fusion_mode fusion;

    plugin_slot strategy;

    transport_mode transport;   /* transport.mode */
    double timeout_s;           /* transport.timeout_s */

    mpsl_train_settings train;
    int warn_nonfinite;         /* train.on_nonfinite: warn (1) or stop (0) */
    int precision_bf16;         /* train.precision: bf16 (1) or fp32 (0) */
    int64_t checkpoint_every;   /* train.checkpoint.every_epochs (0: none) */
    int64_t checkpoint_every_steps; /* train.checkpoint.every_steps (0: none) */
    int64_t checkpoint_keep;    /* train.checkpoint.keep */
    const char *checkpoint_dir; /* train.checkpoint.dir, or NULL: beside the database */
    optim_settings optim;
    int64_t metrics_every_steps;    /* metrics.every_steps (0: none) */
    int metrics_per_client_test;    /* metrics.per_client_test */
    netmodel network;               /* network: the clients' devices and links (off: on 0) */
    int metrics_leakage_audit;      /* metrics.leakage_audit */
    int64_t metrics_leakage_samples; /* metrics.leakage_samples */

    struct {
        const char *path;       /* model.weights.path: a safetensors file, NULL for none */
        const char *prefix_map; /* "from=to,..." rewrites of the file's names */
        int strict;             /* every declared parameter must be in the file */
    } weights;
    const char *save_weights;   /* output.save_weights: where the final model goes, or NULL */
    char *weights_path_owned;   /* weights.path resolved against the experiment's folder */
} experiment;

/* Validate root (taking ownership of it) and load every plugin it names, validating their
 * parameters. dir: where relative plugin paths are resolved. Plugin search happens here, so
 * every refusal comes before any training or database write. */
int experiment_build(cfg_node *root, const char *path, const char *dir, experiment *ex,
                     mpsl_error *err);
void experiment_free(experiment *ex);

/* Every plugin slot of ex, in a fixed order (dataset, tokenizers, encoder, head, strategy). */
int experiment_slots(experiment *ex, plugin_slot **slots, int max);

#endif
