/* main.c: the `mpsl` command: global options, then dispatch to a verb. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "config/config.h"
#include "util/profile.h"
#include "util/util.h"
#include "mpsl_build_config.h"
#include "mpsl_revision.h"

/* What a global option may be passed on to: a verb gets --db or --quiet only if it has it. */
enum { TAKES_DB = 1, TAKES_QUIET = 2 };

typedef struct verb {
    const char *name;
    int (*fn)(int argc, char **argv);
    int takes;
    const char *summary;
} verb;

static const verb verbs[] = {
    {"run", cmd_run, TAKES_DB | TAKES_QUIET,
     "run an experiment file (or repeat a stored run with --from-run)"},
    {"resume", cmd_resume, TAKES_DB, "continue a stopped run from its newest checkpoint"},
    {"prepare", cmd_prepare, 0, "prepare the dataset an experiment names, once"},
    {"estimate", cmd_estimate, 0, "bytes, FLOPs and memory of an epoch, before running it"},
    {"plugins", cmd_plugins, 0, "list the plugins found on the search path"},
    {"runs", cmd_runs, TAKES_DB, "list runs in a results database"},
    {"show", cmd_show, TAKES_DB, "show one run in full"},
    {"compare", cmd_compare, TAKES_DB, "compare runs side by side"},
    {"diff", cmd_diff, TAKES_DB, "show the config keys that differ among runs"},
    {"report", cmd_report, TAKES_DB, "write an HTML report (table and SVG plots) of runs"},
    {"plot", cmd_plot, TAKES_DB, "draw one metric of runs against epoch, step, bytes or time (SVG)"},
    {"query", cmd_query, TAKES_DB, "run one read-only SQL statement on a results database"},
    {"merge", cmd_merge, 0, "copy the runs of several results databases into one"},
    {"new-plugin", cmd_new_plugin, 0, "start a plugin from the template of its kind"},
    {"fetch", cmd_fetch, TAKES_QUIET, "download and verify a dataset (manifests in datasets/)"},
    {"convert", cmd_convert, TAKES_QUIET, "convert a fetched dataset into a prepared file"},
};
#define N_VERBS (sizeof verbs / sizeof verbs[0])

/* The verbs that take a global option, "run, resume, ..." (for usage and refusals). With
 * indent >= 0 the list starts at column `col` and wraps before column 80 to `indent`. */
static void print_takers(FILE *out, int flag, const char *last_sep, int col, int indent)
{
    size_t n = 0, k = 0;
    for (size_t i = 0; i < N_VERBS; i++) {
        n += (verbs[i].takes & flag) != 0;
    }
    for (size_t i = 0; i < N_VERBS; i++) {
        if (!(verbs[i].takes & flag)) {
            continue;
        }
        const char *sep = ++k == 1 ? "" : k == n ? last_sep : ", ";
        int width = (int)(strlen(sep) + strlen(verbs[i].name)) + 1; /* + a closing bracket */
        if (indent >= 0 && k > 1 && col + width > 80) {
            fprintf(out, "%s\n%*s", k == n ? " and" : ",", indent, "");
            sep = "";
            col = indent;
        }
        col += fprintf(out, "%s%s", sep, verbs[i].name);
    }
}

static void usage(FILE *out)
{
    fprintf(out, "usage: mpsl [--db PATH] [-q] VERB [ARGS]   (mpsl help VERB: a verb's options)\n"
                 "       mpsl -h | --help | -V | --version\n\nverbs:\n");
    for (size_t i = 0; i < N_VERBS; i++) {
        fprintf(out, "  %-10s %s\n", verbs[i].name, verbs[i].summary);
    }
    fprintf(out, "  %-10s %s\n", "help", "this text, or a verb's usage (mpsl help VERB)");
    fprintf(out, "  %-10s %s\n", "version", "print the version and revision (also -V, --version)");
    fprintf(out, "\nglobal options (before the verb):\n"
                 "  --db PATH    results database, as VERB --db PATH, for ");
    print_takers(out, TAKES_DB, " and ", 59, 15);
    fprintf(out, "\n  -q, --quiet  as VERB --quiet, for ");
    print_takers(out, TAKES_QUIET, " and ", 35, 15);
    fprintf(out, "\n\nenvironment: MPSL_DB (the default --db), MPSL_PLUGIN_PATH, MPSL_CONFIG_PATH, "
                 "MPSL_DB_BUSY_MS,\n  MPSL_LOG=debug|warn, MPSL_THREADS, MPSL_MESSAGE_TRACE, "
                 "MPSL_TEMPLATE_PATH, MPSL_DATASETS_PATH,\n  MPSL_DATA_DIR, MPSL_FETCH_*, MPSL_PROFILE=1, "
                 "MPSL_HUGEPAGES=0 (docs/cli.md and mpsl(1)\n  list them all)\n");
}

static int print_version(void)
{
    printf("mpsl %s (%s)\n", MPSL_VERSION, MPSL_REVISION);
    return 0;
}

static const verb *find_verb(const char *name)
{
    for (size_t i = 0; i < N_VERBS; i++) {
        if (strcmp(name, verbs[i].name) == 0) {
            return &verbs[i];
        }
    }
    return NULL;
}

/* "mpsl: unknown verb 'rnu'; did you mean 'run'?" on stderr; `who` is "mpsl" or "mpsl help". */
static int unknown_verb(const char *who, const char *name)
{
    const char *names[N_VERBS + 2];
    for (size_t i = 0; i < N_VERBS; i++) {
        names[i] = verbs[i].name;
    }
    names[N_VERBS] = "help";
    names[N_VERBS + 1] = "version";
    const char *best = cfg_did_you_mean(name, names, N_VERBS + 2);
    if (best) {
        fprintf(stderr, "%s: unknown verb '%s'; did you mean '%s'?\n", who, name, best);
    } else {
        fprintf(stderr, "%s: unknown verb '%s'\n", who, name);
    }
    fprintf(stderr, "%s: expected one of:", who);
    for (size_t i = 0; i < N_VERBS + 2; i++) {
        fprintf(stderr, " %s", names[i]);
    }
    fprintf(stderr, " (mpsl help lists them with what they do)\n");
    return 2;
}

/* `mpsl help [VERB]`: the overview, or the verb's own --help. */
static int help(int argc, char **argv)
{
    if (argc < 2) {
        usage(stdout);
        return 0;
    }
    if (argc > 2) {
        fprintf(stderr, "mpsl help: one verb at a time (got '%s' and '%s')\n", argv[1], argv[2]);
        return 2;
    }
    if (strcmp(argv[1], "help") == 0) {
        printf("usage: mpsl help [VERB]\nPrints the list of verbs, or VERB's usage "
               "(the same as mpsl VERB --help).\n");
        return 0;
    }
    if (strcmp(argv[1], "version") == 0) {
        printf("usage: mpsl version   (also mpsl -V, mpsl --version)\nPrints the version and "
               "the git revision of the source tree it was built from.\n");
        return 0;
    }
    const verb *v = find_verb(argv[1]);
    if (!v) {
        return unknown_verb("mpsl help", argv[1]);
    }
    char *verb_argv[] = {argv[1], "--help", NULL};
    return v->fn(2, verb_argv);
}

int main(int argc, char **argv)
{
    const char *level = getenv("MPSL_LOG");
    if (level && strcmp(level, "debug") == 0) {
        mpsl_log_set_level(MPSL_LOG_DEBUG);
    } else if (level && strcmp(level, "warn") == 0) {
        mpsl_log_set_level(MPSL_LOG_WARN);
    }
    cli_heap_huge_pages(argv); /* before any allocation worth the name */
    profile_configure(); /* MPSL_PROFILE, before the kernel table is first handed out */

    /* Global options come before the verb; they are handed to the verb as its own options
     * (so a verb has one way of reading them and one place that documents them). */
    const char *db = NULL;
    int quiet = 0, i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--version") == 0 || strcmp(a, "-V") == 0) {
            return print_version();
        } else if (strcmp(a, "--db") == 0 || strncmp(a, "--db=", 5) == 0) {
            db = a[4] == '=' ? a + 5 : i + 1 < argc ? argv[++i] : NULL;
            if (!db || !*db) {
                fprintf(stderr, "mpsl: --db wants a database path (mpsl --db PATH VERB ...)\n");
                return 2;
            }
        } else if (strcmp(a, "--quiet") == 0 || strcmp(a, "-q") == 0) {
            quiet = 1;
        } else {
            fprintf(stderr, "mpsl: unknown global option '%s' (before the verb: --db PATH, "
                    "-q/--quiet, -h/--help, -V/--version; a verb's own options go after it)\n", a);
            return 2;
        }
    }
    if (i == argc) {
        if (db || quiet) {
            fprintf(stderr, "mpsl: which verb? (mpsl [--db PATH] [-q] VERB [ARGS]; mpsl help "
                    "lists the verbs)\n");
        } else {
            usage(stderr);
        }
        return 2;
    }
    const char *name = argv[i];
    if (strcmp(name, "help") == 0) {
        return help(argc - i, argv + i);
    }
    const verb *v = find_verb(name);
    if (!v && strcmp(name, "version") != 0) {
        return unknown_verb("mpsl", name);
    }
    int takes = v ? v->takes : 0; /* `version` takes neither */
    if ((db && !(takes & TAKES_DB)) || (quiet && !(takes & TAKES_QUIET))) {
        int flag = db && !(takes & TAKES_DB) ? TAKES_DB : TAKES_QUIET;
        fprintf(stderr, "mpsl: %s does not apply to '%s' (it does to ",
                flag == TAKES_DB ? "--db" : "--quiet", name);
        print_takers(stderr, flag, " and ", 0, -1);
        fprintf(stderr, ")\n");
        return 2;
    }
    if (!v) {
        return print_version();
    }
    if (!db && !quiet) {
        return v->fn(argc - i, argv + i);
    }

    /* Right after the verb name, so that the verb reads them before a `--` or any argument
     * of its own, and a --db given after the verb still wins (verbs keep the last one). */
    int rest = argc - i - 1, n = 0;
    char **vargv = calloc((size_t)rest + 5, sizeof *vargv);
    if (!vargv) {
        fprintf(stderr, "mpsl: out of memory\n");
        return 1;
    }
    vargv[n++] = argv[i];
    if (db) {
        vargv[n++] = "--db";
        vargv[n++] = (char *)db;
    }
    if (quiet) {
        vargv[n++] = "--quiet";
    }
    memcpy(vargv + n, argv + i + 1, (size_t)rest * sizeof *vargv);
    int rc = v->fn(n + rest, vargv);
    free(vargv);
    return rc;
}
