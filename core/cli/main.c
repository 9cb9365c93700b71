/* main.c: the `mpsl` command: dispatch to a verb. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "util/util.h"
#include "mpsl_build_config.h"
#include "mpsl_revision.h"

typedef struct verb {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
} verb;

static const verb verbs[] = {
    {"run", cmd_run, "run an experiment file (or repeat a stored run with --from-run)"},
    {"resume", cmd_resume, "continue a stopped run from its newest checkpoint"},
    {"prepare", cmd_prepare, "prepare the dataset an experiment names, once"},
    {"plugins", cmd_plugins, "list the plugins found on the search path"},
    {"runs", cmd_runs, "list runs in a results database"},
    {"show", cmd_show, "show one run in full"},
    {"compare", cmd_compare, "compare runs side by side"},
    {"diff", cmd_diff, "show the config keys that differ among runs"},
    {"report", cmd_report, "write an HTML report (table and SVG plots) of runs"},
    {"plot", cmd_plot, "draw one per-epoch metric of runs as an SVG"},
    {"query", cmd_query, "run one read-only SQL statement on a results database"},
    {"new-plugin", cmd_new_plugin, "start a plugin from the template of its kind"},
    {"fetch", cmd_fetch, "download and verify a dataset (manifests in datasets/)"},
    {"convert", cmd_convert, "convert a fetched dataset into a prepared file"},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: mpsl VERB [ARGS]   (mpsl VERB --help for a verb's options)\n\nverbs:\n");
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++) {
        fprintf(out, "  %-10s %s\n", verbs[i].name, verbs[i].summary);
    }
    fprintf(out, "  %-10s %s\n", "version", "print the version and revision");
    fprintf(out, "\nenvironment: MPSL_PLUGIN_PATH, MPSL_CONFIG_PATH, MPSL_DB_BUSY_MS, "
                 "MPSL_LOG=debug|warn, MPSL_THREADS,\n  MPSL_MESSAGE_TRACE, MPSL_TEMPLATE_PATH, "
                 "MPSL_DATASETS_PATH, MPSL_DATA_DIR, MPSL_FETCH_* (docs/cli.md lists them all)\n");
}

int main(int argc, char **argv)
{
    const char *level = getenv("MPSL_LOG");
    if (level && strcmp(level, "debug") == 0) {
        mpsl_log_set_level(MPSL_LOG_DEBUG);
    } else if (level && strcmp(level, "warn") == 0) {
        mpsl_log_set_level(MPSL_LOG_WARN);
    }
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0) {
        printf("mpsl %s (%s)\n", MPSL_VERSION, MPSL_REVISION);
        return 0;
    }
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++) {
        if (strcmp(argv[1], verbs[i].name) == 0) {
            return verbs[i].fn(argc - 1, argv + 1);
        }
    }
    fprintf(stderr, "mpsl: unknown verb '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
