/* merge_input.h: the databases `mpsl merge` reads (merge_input.c), opened so that not a byte
 * of them changes: each source checked and read at the current schema (through an upgraded
 * temporary copy when it is older), and the output read for the plan before it is written. */
#ifndef MPSL_MERGE_INPUT_H
#define MPSL_MERGE_INPUT_H

#include <sqlite3.h>
#include <sys/types.h>

#include "store.h"

typedef struct merge_input {
    const char *path;   /* as given: every message names it */
    char *abs_path;     /* its absolute path (run_sources.source_db) */
    dev_t dev;          /* to tell the same file under two names */
    ino_t ino;
    int schema;         /* user_version as found, before any upgrade */
    int journal;        /* its DB.journal was applied in the copy */
    sqlite3 *file;      /* read-only connection to the file itself, or NULL */
    store *copy;        /* the upgraded temporary copy, or NULL */
    char *copy_path;
    sqlite3 *db;        /* what the merge reads: file, or the copy's connection */
} merge_input;

/* Check and open a source: it must exist, be a SQLite file and an mpsl results database of a
 * schema this mpsl knows, and pass quick_check. A source of an older schema, or with a
 * DB.journal beside it, is copied with sqlite3_backup into a new folder under $TMPDIR (made
 * on first use, its path kept in *tmpdir, malloc'd) and upgraded there by store_open, which
 * applies the copied journal too. A source read directly is held in one read transaction, so
 * both passes of the merge see the same runs while another process writes it. */
int merge_input_open(merge_input *in, const char *path, int index, char **tmpdir,
                     mpsl_error *err);
/* Close it; an upgraded copy stays in the temporary folder until merge_tmpdir_remove. */
void merge_input_close(merge_input *in);

/* Read the output before the merge, changing nothing: *db gets a read-only connection to it
 * (or to an empty in-memory database when it is absent, empty or has no tables yet), *exists
 * whether the file is there, *schema its version (0 when new). Refuses a file that is not an
 * mpsl results database or has a newer schema. */
int merge_output_peek(const char *path, sqlite3 **db, int *exists, int *schema,
                      mpsl_error *err);

/* Remove the temporary folder and what is left in it. */
void merge_tmpdir_remove(char *tmpdir);

#endif
