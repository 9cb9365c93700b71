/* export_epoch.c: writes the exact tensors one epoch of an experiment trains and evaluates on,
 * so that a PyTorch script (bench/epoch_torch.py) can run the same epoch on the same data in
 * the same batch order. Not a test: bench/epoch.sh runs it, then both sides.
 *
 * What it writes into OUT_DIR (raw little-endian arrays, shapes in meta.txt):
 *   train_<modality>.f32  the training samples in the order the centralized strategy draws
 *                         them in its first epoch (the data cursor over the union of the
 *                         clients' data, seeded by the run's seed: session_open_data)
 *   train_labels.i32
 *   test_<modality>.f32, test_labels.i32   the test split in index order (evaluation's order)
 *   meta.txt              one line per array: "<file> <dtype> <dim0> <dim1> ...", then
 *                         "batch_size N", "epochs N", "lr X", "seed N"
 * The samples come from the dataset plugin's fill(), the same call training makes, so the
 * files hold exactly what the model is given.
 *
 * Usage: export_epoch EXPERIMENT.yaml OUT_DIR [KEY=VALUE]...   (KEY=VALUE as mpsl run --set) */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config/config.h"
#include "mpsl_build_config.h"
#include "plugin/loader.h"
#include "train/experiment.h"
#include "train/session.h"
#include "util/util.h"

static int write_array(const char *dir, const char *name, const void *data, size_t bytes,
                       FILE *meta, const char *dtype, int ndim, const int64_t *shape)
{
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, bytes, f) != bytes || fclose(f) != 0) {
        fprintf(stderr, "export_epoch: cannot write %s: %s\n", path, strerror(errno));
        return 1;
    }
    fprintf(meta, "%s %s", name, dtype);
    for (int d = 0; d < ndim; d++) {
        fprintf(meta, " %lld", (long long)shape[d]);
    }
    fputc('\n', meta);
    return 0;
}

/* One split's samples, in the order idx gives, through the dataset's fill(). */
static int export_split(mpsl_session *s, mpsl_split split, const char *prefix,
                        const int64_t *idx, int64_t n, const char *dir, FILE *meta)
{
    mpsl_error err = {0};
    mpsl_batch *b = session_batch_create(s, n, &err);
    if (!b || s->dataset_api->fill(s->dataset, split, idx, n, b, &err) != MPSL_OK) {
        fprintf(stderr, "export_epoch: %s\n", err.msg[0] ? err.msg : "fill() failed");
        session_batch_destroy(s, b);
        return 1;
    }
    int fails = 0;
    for (int i = 0; i < s->info.n_modalities; i++) {
        const mpsl_modality_info *mi = &s->info.modality[i];
        if (mi->dtype != MPSL_F32) {
            fprintf(stderr, "export_epoch: modality %s is not float32; only float32 "
                    "modalities are exported\n", mi->name);
            fails++;
            continue;
        }
        int64_t shape[MPSL_MAX_DIMS] = {n};
        size_t per = 1;
        for (int d = 0; d < mi->ndim; d++) {
            shape[d + 1] = mi->shape[d];
            per *= (size_t)mi->shape[d];
        }
        char name[96];
        snprintf(name, sizeof name, "%s_%s.f32", prefix, mi->name);
        fails += write_array(dir, name, b->modality[i].data, per * (size_t)n * 4, meta, "f32",
                             mi->ndim + 1, shape);
    }
    char name[96];
    snprintf(name, sizeof name, "%s_labels.i32", prefix);
    fails += write_array(dir, name, b->labels, (size_t)n * 4, meta, "i32", 1, &n);
    session_batch_destroy(s, b);
    return fails;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: export_epoch EXPERIMENT.yaml OUT_DIR [KEY=VALUE]...\n");
        return 2;
    }
    mpsl_error err = {0};
    const char *dirs[] = {MPSL_SOURCE_ROOT "/configs", NULL};
    cfg_node *root = cfg_load_file(argv[1], dirs, &err);
    for (int i = 3; root && i < argc; i++) {
        if (cfg_apply_override(root, argv[i], &err) != MPSL_OK) {
            cfg_free(root);
            root = NULL;
        }
    }
    if (!root) {
        fprintf(stderr, "export_epoch: %s\n", err.msg);
        return 1;
    }
    cfg_remove(root, "sweep");
    experiment ex;
    if (experiment_build(root, argv[1], ".", &ex, &err) != MPSL_OK) {
        fprintf(stderr, "export_epoch: %s\n", err.msg);
        return 1;
    }
    if (mkdir(argv[2], 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "export_epoch: cannot create %s: %s\n", argv[2], strerror(errno));
        return 1;
    }
    mpsl_session s = {.ex = &ex, .host = host_services(), .n_ranks = 1, .transport = "local"};
    int fails = 1;
    if (session_open_data(&s, &err) != MPSL_OK) {
        fprintf(stderr, "export_epoch: %s\n", err.msg);
    } else {
        char path[2048];
        snprintf(path, sizeof path, "%s/meta.txt", argv[2]);
        FILE *meta = fopen(path, "w");
        int64_t *test_idx = malloc((size_t)(s.info.n_test ? s.info.n_test : 1) * sizeof *test_idx);
        if (!meta || !test_idx) {
            fprintf(stderr, "export_epoch: cannot write %s\n", path);
        } else {
            for (int64_t i = 0; i < s.info.n_test; i++) {
                test_idx[i] = i;
            }
            /* the union's cursor (the last one) holds the first epoch's order */
            const client_cursor *all = &s.cursor[ex.n_clients];
            fails = export_split(&s, MPSL_SPLIT_TRAIN, "train", all->order, all->n, argv[2],
                                 meta);
            fails += export_split(&s, MPSL_SPLIT_TEST, "test", test_idx, s.info.n_test,
                                  argv[2], meta);
            fprintf(meta, "batch_size %lld\nepochs %lld\nlr %.9g\nseed %llu\n",
                    (long long)ex.train.batch_size, (long long)ex.train.epochs,
                    ex.optim.lr, (unsigned long long)ex.train.seed);
        }
        free(test_idx);
        if (meta && fclose(meta) != 0) {
            fails++;
        }
    }
    session_close(&s);
    experiment_free(&ex);
    return fails ? 1 : 0;
}
