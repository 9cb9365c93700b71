/* cmd_merge.c: `mpsl merge SRC.db... -o OUT.db`: the runs of several results databases (from
 * several machines, several sweeps) copied into one; core/results/merge.c does the work, this
 * file reads the options and prints one line per source, the notes and a total. */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "results/merge.h"
#include "results/store.h"
#include "util/util.h"

static const char merge_usage[] =
    "usage: mpsl merge SRC.db... -o OUT.db [--skip-duplicates] [--dry-run]\n"
    "Copy every run of the sources, with all its rows, into OUT.db (created, or appended to\n"
    "and upgraded first) under new ids; run_sources records where each came from. Sources\n"
    "are never changed (an older schema is upgraded in a temporary copy under $TMPDIR). A run\n"
    "OUT.db already holds (same start, host, name and config, or the same origin) is refused\n"
    "with nothing written, or skipped with a note under --skip-duplicates. --dry-run says\n"
    "what would happen and writes nothing.\n";

/* Lists of notes are cut here, with a count of the rest. */
#define NOTES_SHOWN 10

static void print_notes(const char *prefix, char **lines, int n, const char *suffix)
{
    for (int i = 0; i < n && i < NOTES_SHOWN; i++) {
        fprintf(stderr, "%s%s%s\n", prefix, lines[i], suffix);
    }
    if (n > NOTES_SHOWN) {
        fprintf(stderr, "%s... and %d more\n", prefix, n - NOTES_SHOWN);
    }
}

/* "A.db: 9 runs copied, 2 duplicates skipped (schema 3, upgraded in the copy)" */
static void print_source(const merge_source_report *s, int dry_run)
{
    printf("%s: %" PRId64 " run%s %s", s->path, s->copied, s->copied == 1 ? "" : "s",
           dry_run ? "would be copied" : "copied");
    if (s->skipped) {
        printf(", %" PRId64 " duplicate%s skipped", s->skipped, s->skipped == 1 ? "" : "s");
    }
    printf(" (schema %d%s%s)\n", s->schema, s->upgraded_copy ? ", upgraded in the copy" : "",
           s->journal_applied ? ", its journal applied in the copy" : "");
}

static void print_total(const merge_report *rep, const char *out, int dry_run)
{
    printf("%s: %" PRId64 " run%s %s into %s", dry_run ? "dry run" : "total", rep->copied,
           rep->copied == 1 ? "" : "s", dry_run ? "would be copied" : "copied", out);
    if (!rep->out_existed || rep->out_schema == 0) {
        printf(" (%s)", dry_run ? "would be created" : "created");
    } else if (rep->out_schema < STORE_SCHEMA_VERSION) {
        printf(" (%s from schema %d first)", dry_run ? "would be upgraded" : "upgraded",
               rep->out_schema);
    }
    printf("%s\n", dry_run ? "; nothing written" : "");
    if (rep->n_tables > 0) {
        printf("  rows:");
        for (int i = 0; i < rep->n_tables; i++) {
            printf("%s %s %" PRId64, i ? "," : "", rep->tables[i].name, rep->tables[i].rows);
        }
        printf("\n");
    }
}

int cmd_merge(int argc, char **argv)
{
    static const struct option opts[] = {
        {"output", required_argument, NULL, 'o'},
        {"skip-duplicates", no_argument, NULL, 's'},
        {"dry-run", no_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *out = NULL;
    merge_options opt = {0};
    optind = 0;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":ho:", opts, NULL)) != -1) {
        switch (c) {
        case 'o': out = optarg; break;
        case 's': opt.skip_duplicates = 1; break;
        case 'n': opt.dry_run = 1; break;
        case 'h': fputs(merge_usage, stdout); return 0;
        case ':':
            fprintf(stderr, "mpsl merge: option '%s' needs a value\n%s", argv[optind - 1],
                    merge_usage);
            return 2;
        default:
            fprintf(stderr, "mpsl merge: unknown option '%s'%s\n%s", argv[optind - 1],
                    !strcmp(argv[optind - 1], "--allow-duplicates")
                        ? " (--skip-duplicates skips the runs OUT.db already holds)"
                        : "",
                    merge_usage);
            return 2;
        }
    }
    if (!out || !*out) {
        fprintf(stderr, "mpsl merge: which output? (-o OUT.db: a results database to append "
                        "to, or a new file)\n%s", merge_usage);
        return 2;
    }
    if (optind >= argc) {
        fprintf(stderr, "mpsl merge: which sources? (one or more results databases before or "
                        "after -o)\n%s", merge_usage);
        return 2;
    }
    /* The work prints its own lines; the library's notes on opening (an upgraded temporary
     * copy, a journal applied in it) would only name temporary files. */
    const char *level = getenv("MPSL_LOG");
    if (!level || strcmp(level, "debug") != 0) {
        mpsl_log_set_level(MPSL_LOG_WARN);
    }
    mpsl_error err = {{0}};
    merge_report rep;
    int rc = store_merge(out, (const char *const *)argv + optind, argc - optind, &opt, &rep,
                         &err);
    if (rc == MPSL_OK) {
        for (int i = 0; i < rep.n_sources; i++) {
            print_source(&rep.sources[i], opt.dry_run);
        }
        fflush(stdout); /* the notes on stderr follow these lines where both go to one file */
        print_notes("note: ", rep.duplicates, rep.n_duplicates,
                    opt.dry_run ? ": would be skipped" : ": skipped");
        print_notes("warning: ", rep.running, rep.n_running,
                    " is still 'running' (it may be live on another machine); copied as it is");
        print_notes("note: ", rep.ignored_tables, rep.n_ignored_tables,
                    " has no run_id column; not copied");
        print_total(&rep, out, opt.dry_run);
    } else {
        fprintf(stderr, "mpsl merge: %s\n", err.msg);
    }
    merge_report_free(&rep);
    return rc == MPSL_OK ? 0 : 1;
}
