/* weights_logits.c: mpsl's own logits for an experiment's first test samples, with the model
 * built as `mpsl run` builds it and its parameters loaded from a saved weights file through
 * model.weights (strict, no prefix_map). timm_vit_check.py feeds the same inputs to a
 * timm-shaped PyTorch model loaded from the same file and compares the logits.
 *
 * Usage: weights_logits EXPERIMENT.yaml WEIGHTS.safetensors N OUT.safetensors
 *
 * OUT holds, as F32: "input.<modality>" (n, ...) for every modality of the dataset, exactly
 * what the tokenizers saw; "labels" (n); "logits" (n, classes). n = min(N, test samples).
 * The experiment's includes are not resolved (a self-contained file is expected); plugins are
 * found through MPSL_PLUGIN_PATH, as for `mpsl run`. Exit 0, or 1 with the reason. */
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "plugin/loader.h"
#include "train/model.h"
#include "train/session.h"
#include "weights/safetensors.h"

static int fail(const char *what, const mpsl_error *err)
{
    fprintf(stderr, "weights_logits: %s: %s\n", what, err->msg);
    return 1;
}

int main(int argc, char **argv)
{
    if (argc != 5 || atoi(argv[3]) < 1) {
        fprintf(stderr, "usage: weights_logits EXPERIMENT.yaml WEIGHTS.safetensors N "
                        "OUT.safetensors (N >= 1 test samples)\n");
        return 2;
    }
    const char *exp_path = argv[1], *weights = argv[2], *out = argv[4];
    int64_t want = atoi(argv[3]);
    mpsl_error err = {{0}};

    cfg_node *root = cfg_load_file(exp_path, NULL, &err);
    if (!root) {
        return fail(exp_path, &err);
    }
    /* The model must come from the file alone: a strict load, so every parameter is the
     * file's and none keeps its random initial value. */
    char set[1200];
    snprintf(set, sizeof set, "model.weights={path: '%s', strict: true}", weights);
    if (strchr(weights, '\'') || cfg_apply_override(root, set, &err) != MPSL_OK) {
        cfg_free(root);
        return fail("model.weights (a path without quotes is expected)", &err);
    }
    char *copy = strdup(exp_path);
    experiment ex;
    int rc = experiment_build(root, exp_path, dirname(copy), &ex, &err); /* takes root */
    free(copy);
    if (rc != MPSL_OK) {
        return fail(exp_path, &err);
    }
    mpsl_session s = {.ex = &ex, .host = host_services(), .n_ranks = 1, .transport = "local"};
    mpsl_model *m = NULL;
    mpsl_batch *b = NULL;
    int64_t *idx = NULL;
    float *labels = NULL;
    rc = session_open_data(&s, &err);
    if (rc == MPSL_OK) {
        rc = model_create(&s, MPSL_PART_ALL, &m, &err);
    }
    int64_t n = want < s.info.n_test ? want : s.info.n_test;
    if (rc == MPSL_OK) {
        b = session_batch_create(&s, n, &err);
        idx = malloc((size_t)n * sizeof *idx);
        labels = malloc((size_t)n * sizeof *labels);
        rc = b && idx && labels ? MPSL_OK : mpsl_errs(&err, MPSL_ERR_NOMEM, "out of memory");
    }
    if (rc == MPSL_OK) {
        for (int64_t i = 0; i < n; i++) {
            idx[i] = i; /* the first test samples, as the run's evaluation takes them */
        }
        rc = s.dataset_api->fill(s.dataset, MPSL_SPLIT_TEST, idx, n, b, &err);
        b->n = n;
        for (int i = 0; i < s.info.n_modalities; i++) {
            b->modality[i].shape[0] = n;
        }
    }
    mpsl_tensor tokens, logits;
    if (rc == MPSL_OK) {
        rc = model_tokenize(m, b, &tokens, &err);
    }
    if (rc == MPSL_OK) {
        rc = model_encode(m, &tokens, &logits, &err);
    }
    if (rc == MPSL_OK) {
        st_write_tensor t[MPSL_MAX_MODALITIES + 2];
        char names[MPSL_MAX_MODALITIES][48];
        int64_t lshape[2] = {n, m->C}, nshape[1] = {n};
        int nt = 0;
        for (int i = 0; i < s.info.n_modalities && rc == MPSL_OK; i++) {
            if (b->modality[i].dtype != MPSL_F32) {
                rc = mpsl_err(&err, "modality '%s' is not float; this harness writes images "
                              "and spectrograms only", s.info.modality[i].name);
            }
            snprintf(names[i], sizeof names[i], "input.%s", s.info.modality[i].name);
            t[nt++] = (st_write_tensor){names[i], b->modality[i].ndim, b->modality[i].shape,
                                        b->modality[i].data};
        }
        for (int64_t i = 0; i < n; i++) {
            labels[i] = (float)b->labels[i];
        }
        t[nt++] = (st_write_tensor){"labels", 1, nshape, labels};
        t[nt++] = (st_write_tensor){"logits", 2, lshape, logits.data};
        if (rc == MPSL_OK) {
            rc = st_write(out, t, nt, NULL, &err);
        }
    }
    if (rc == MPSL_OK) {
        fprintf(stderr, "weights_logits: %lld samples, %lld logits each, written to %s\n",
                (long long)n, (long long)m->C, out);
    }
    free(idx);
    free(labels);
    if (b) {
        session_batch_destroy(&s, b);
    }
    model_destroy(m);
    session_close(&s);
    experiment_free(&ex);
    return rc == MPSL_OK ? 0 : fail(exp_path, &err);
}
