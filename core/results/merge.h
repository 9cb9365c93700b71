/* merge.h: copying every run of several results databases into one (`mpsl merge`). Each run
 * keeps all its rows in every table that references runs, under a new id, with where it came
 * from in run_sources. Sources are never modified: one of an older schema is read through a
 * temporary copy upgraded to this mpsl's schema. The whole merge is one transaction, planned
 * first without writing: a refusal (a source that is missing, not an mpsl database, of a newer
 * schema or corrupt; the output among the sources; runs the output already holds) leaves the
 * output as it was. docs/cli.md (mpsl merge) and docs/results-schema.md describe it. */
#ifndef MPSL_MERGE_H
#define MPSL_MERGE_H

#include <stdint.h>

#include "mpsl/plugin.h"

typedef struct merge_options {
    int skip_duplicates; /* skip runs the output already holds (noted) instead of refusing */
    int dry_run;         /* plan and report what would happen, write nothing */
} merge_options;

typedef struct merge_source_report {
    const char *path;      /* as given */
    int schema;            /* its schema version (user_version) as found */
    int upgraded_copy;     /* read through a temporary copy upgraded to the current schema */
    int journal_applied;   /* its DB.journal (final statuses) was applied in that copy */
    int64_t runs;          /* runs it holds */
    int64_t copied;        /* runs copied (in a dry run: that would be) */
    int64_t skipped;       /* duplicates skipped (skip_duplicates) */
} merge_source_report;

typedef struct merge_table_rows {
    char *name;            /* a table with a run_id column */
    int64_t rows;          /* rows copied into it (would be, in a dry run) */
} merge_table_rows;

typedef struct merge_report {
    merge_source_report *sources; /* one per source, in the order given */
    int n_sources;
    merge_table_rows *tables;     /* sorted by name */
    int n_tables;
    int64_t copied, skipped;      /* runs, over all sources */
    int out_existed;              /* the output was there (else it is, or would be, created) */
    int out_schema;               /* its schema version before the merge (0 when new) */
    char **running;               /* "A.db run 4" for each run copied with status 'running' */
    int n_running;
    char **duplicates;            /* "B.db run 2 = ALL.db run 7 (why)" for each duplicate */
    int n_duplicates;
    char **ignored_tables;        /* "A.db: table 'x'" for tables without run_id (not copied) */
    int n_ignored_tables;
} merge_report;

/* Merge the runs of sources[0..n_sources) into out_path (created at the current schema when
 * absent, upgraded first when older). Fills *rep (also on a refusal, as far as it got; free it
 * with merge_report_free). MPSL_ERR_INVALID for a refusal, MPSL_ERR_IO and others for
 * failures, with err naming the file; nothing is written to out_path in either case. */
int store_merge(const char *out_path, const char *const *sources, int n_sources,
                const merge_options *opt, merge_report *rep, mpsl_error *err);
void merge_report_free(merge_report *rep);

#endif
