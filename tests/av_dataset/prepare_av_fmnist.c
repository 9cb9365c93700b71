/* prepare_av_fmnist.c: prepare (and open) the av_fashion_mnist dataset from YAML parameters
 * given on the command line, and print how long each step took: the measurement behind the
 * preparation times in docs/datasets.md, and a handy case for valgrind. Not a test.
 * Usage: prepare_av_fmnist /path/to/av_fashion_mnist.so ['yaml params', e.g. 'train_limit: 2000'] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config/config.h"
#include "plugin/loader.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s av_fashion_mnist.so ['yaml params']\n", argv[0]);
        return 2;
    }
    loaded_plugin lp;
    mpsl_error err = {{0}};
    if (plugin_load(argv[1], MPSL_KIND_DATASET, &lp, &err) != MPSL_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    const mpsl_plugin_desc *d = lp.desc;
    const mpsl_dataset_api *api = d->api;
    cfg_node *map = NULL;
    if (argc > 2 && argv[2][0]) {
        map = cfg_parse_string(argv[2], "argv", &err);
        if (!map) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
    }
    void *params = calloc(1, d->params_size);
    int rc = cfg_parse_params(map, d->params, d->n_params, params, d->params_size, "argv", NULL,
                              &err);
    double t0 = now();
    if (rc == MPSL_OK) {
        rc = api->prepare(host_services(), params, "argv", &err);
    }
    double t1 = now();
    mpsl_dataset_info info;
    void *state = NULL;
    if (rc == MPSL_OK) {
        rc = api->open(host_services(), params, "argv", &info, &state, &err);
    }
    double t2 = now();
    if (rc != MPSL_OK) {
        fprintf(stderr, "%s\n", err.msg);
    } else {
        printf("prepare %.2f s, open %.2f s: %lld train, %lld test, %d modalities\n", t1 - t0,
               t2 - t1, (long long)info.n_train, (long long)info.n_test, info.n_modalities);
        api->close(state);
    }
    free(params);
    cfg_free(map);
    plugin_unload(&lp);
    return rc == MPSL_OK ? 0 : 1;
}
