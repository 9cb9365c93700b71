/* test_prepared_names.c: the class names of the `prepared` dataset plugin (ABI 2.1). A prepared
 * file keeps one 64-byte name per class in its header; the plugin reports them as
 * info.class_names, and reports NULL for a file written without names (every older file),
 * for a retrieval file, and (with a warning, the data still opening) for a file holding a
 * name the host would refuse.
 * Usage: test_prepared_names /path/to/prepared.so */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "config/config.h"
#include "convert/writer.h"
#include "plugin/loader.h"

static loaded_plugin lp;
static char root[256];

/* Write a file of n_train + n_test one-float samples with the given task and names. */
static void write_file(const char *path, mpsl_prep_task task, uint32_t n_classes,
                       const char *const *names)
{
    enum { NTR = 4, NTE = 2 };
    prep_modality_spec mod = {"feat", MPSL_PREP_F32, 1, {1, 0, 0}, 1.0f, 0.0f};
    prep_writer *w = NULL;
    mpsl_error err = {{0}};
    int rc = prep_writer_open(path, task, n_classes, names, &mod, 1, NTR, NTE,
                              "test (class names)", &w, &err);
    CHECK(rc == MPSL_OK);
    for (int sp = 0; rc == MPSL_OK && sp < 2; sp++) {
        int n = sp == 0 ? NTR : NTE;
        int32_t labels[NTR];
        float x[NTR];
        for (int i = 0; i < n; i++) {
            labels[i] = task == MPSL_PREP_RETRIEVAL ? i : (int32_t)((uint32_t)i % n_classes);
            x[i] = (float)i;
        }
        CHECK(prep_writer_labels(w, (mpsl_split)sp, labels, n, &err) == MPSL_OK);
        CHECK(prep_writer_samples(w, (mpsl_split)sp, 0, x, n, &err) == MPSL_OK);
    }
    if (rc == MPSL_OK) {
        CHECK(prep_writer_close(w, &err) == MPSL_OK);
    }
    if (err.msg[0]) {
        fprintf(stderr, "%s\n", err.msg);
    }
}

/* Open path with the plugin as the host does (parameters parsed from YAML, info zeroed). */
static int open_file(const char *path, mpsl_dataset_info *info, void **state)
{
    const mpsl_plugin_desc *d = lp.desc;
    char yaml[1024];
    snprintf(yaml, sizeof yaml, "path: %s\n", path);
    mpsl_error err = {{0}};
    cfg_node *map = cfg_parse_string(yaml, "test.yaml", &err);
    void *params = calloc(1, d->params_size);
    CHECK(map && params);
    CHECK(cfg_parse_params(map, d->params, d->n_params, params, d->params_size,
                           "data.dataset", NULL, &err) == MPSL_OK);
    memset(info, 0, sizeof *info);
    *state = NULL;
    const mpsl_dataset_api *api = d->api;
    int rc = api->open(host_services(), params, "test.yaml:1:1", info, state, &err);
    if (rc != MPSL_OK) {
        fprintf(stderr, "open %s: %s\n", path, err.msg);
    }
    free(params);
    cfg_free(map);
    return rc;
}

static void close_file(void *state)
{
    ((const mpsl_dataset_api *)lp.desc->api)->close(state);
}

static void path_of(char *buf, size_t size, const char *name)
{
    snprintf(buf, size, "%s/%s.mpsl", root, name);
}

/* Names written by a converter come back, in class order. */
static void test_names(void)
{
    char path[512];
    path_of(path, sizeof path, "named");
    char longest[MPSL_PREP_CLASS_NAME];
    memset(longest, 'x', sizeof longest - 1); /* 63 bytes: the most a file holds */
    longest[sizeof longest - 1] = '\0';
    const char *names[3] = {"negative", "neutral \xc3\xa9t\xc3\xa9", longest};
    write_file(path, MPSL_PREP_CLASSIFICATION, 3, names);
    mpsl_dataset_info info;
    void *state;
    CHECK(open_file(path, &info, &state) == MPSL_OK);
    CHECK(info.n_classes == 3 && info.class_names != NULL);
    for (int c = 0; info.class_names && c < 3; c++) {
        CHECK(info.class_names[c] && strcmp(info.class_names[c], names[c]) == 0);
    }
    close_file(state);
}

/* A file written without names (as every converter could, and older files may be): NULL. */
static void test_no_names(void)
{
    char path[512];
    path_of(path, sizeof path, "unnamed");
    write_file(path, MPSL_PREP_CLASSIFICATION, 2, NULL);
    mpsl_dataset_info info;
    void *state;
    CHECK(open_file(path, &info, &state) == MPSL_OK);
    CHECK(info.n_classes == 2 && info.class_names == NULL);
    close_file(state);
}

/* Retrieval items are not classes: NULL. */
static void test_retrieval(void)
{
    char path[512];
    path_of(path, sizeof path, "retrieval");
    write_file(path, MPSL_PREP_RETRIEVAL, 0, NULL);
    mpsl_dataset_info info;
    void *state;
    CHECK(open_file(path, &info, &state) == MPSL_OK);
    CHECK(info.task == MPSL_TASK_RETRIEVAL && info.class_names == NULL);
    close_file(state);
}

/* A name the host would refuse (a tab; one name missing) leaves the classes unnamed rather
 * than refusing data that trains perfectly well. */
static void test_unusable_names(void)
{
    const char *tab[2] = {"left", "ri\tght"};
    const char *missing[2] = {"left", NULL};
    const char *const *sets[2] = {tab, missing};
    for (int k = 0; k < 2; k++) {
        char path[512];
        path_of(path, sizeof path, k ? "missing" : "tab");
        write_file(path, MPSL_PREP_CLASSIFICATION, 2, sets[k]);
        mpsl_dataset_info info;
        void *state;
        CHECK(open_file(path, &info, &state) == MPSL_OK);
        CHECK(info.n_classes == 2 && info.class_names == NULL);
        close_file(state);
    }
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: test_prepared_names /path/to/prepared.so\n");
        return 2;
    }
    mpsl_error err = {{0}};
    if (plugin_load(argv[1], MPSL_KIND_DATASET, &lp, &err) != MPSL_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    snprintf(root, sizeof root, "/tmp/mpsl-prepnames.XXXXXX");
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        return 1;
    }
    test_names();
    test_no_names();
    test_retrieval();
    test_unusable_names();
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    CHECK(system(cmd) == 0);
    plugin_unload(&lp);
    return check_exit();
}
