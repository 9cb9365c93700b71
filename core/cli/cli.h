/* cli.h: the `mpsl` command's verbs. Each takes the arguments after the verb name
 * (argv[0] is the verb) and returns the process exit status (0 ok, 1 error, 2 usage). */
#ifndef MPSL_CLI_H
#define MPSL_CLI_H

int cmd_run(int argc, char **argv);
int cmd_resume(int argc, char **argv);   /* continue a run from its newest checkpoint */
int cmd_plugins(int argc, char **argv);
int cmd_runs(int argc, char **argv);     /* list runs, with filters */
int cmd_show(int argc, char **argv);     /* one run in full */
int cmd_compare(int argc, char **argv);  /* runs side by side */
int cmd_diff(int argc, char **argv);     /* config keys that differ among runs */
int cmd_prepare(int argc, char **argv);  /* prepare an experiment's dataset */
int cmd_estimate(int argc, char **argv); /* an epoch's cost, before running it */
int cmd_report(int argc, char **argv);   /* HTML report of runs with SVG plots */
int cmd_plot(int argc, char **argv);     /* one per-epoch metric as an SVG */
int cmd_query(int argc, char **argv);    /* one read-only SQL statement */
int cmd_merge(int argc, char **argv);    /* several results databases into one */
int cmd_new_plugin(int argc, char **argv); /* scaffold a plugin from its template */
int cmd_fetch(int argc, char **argv);    /* download and verify a dataset */
int cmd_convert(int argc, char **argv);  /* raw dataset layout -> prepared file */

/* Load an experiment file with its includes resolved (see load.c for the search order);
 * *exp_dir receives the file's directory (malloc'd, also on failure). */
#include "config/config.h"
cfg_node *cli_load_experiment(const char *file, char **exp_dir, mpsl_error *err);
/* Directory part of a path (malloc'd). */
char *cli_dir_of(const char *path);
/* Transparent huge pages for the heap (huge_pages.c): may execute the command again with
 * glibc's malloc tunable set; returns when it does not. Call first thing in main(). */
void cli_heap_huge_pages(char **argv);

/* The results database a verb uses when no --db is given: $MPSL_DB when set and not empty,
 * else "results.db" (defaults.c). */
const char *cli_default_db(void);

/* A run id argument: a positive decimal number and nothing else -> *id. 0, or -1 when it is
 * not one. */
int cli_parse_run_id(const char *s, long long *id);

#endif
