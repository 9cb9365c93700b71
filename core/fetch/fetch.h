/* fetch.h: `mpsl fetch`: dataset downloads driven by per-dataset manifests (datasets/NAME.yaml).
 *
 * A manifest names the dataset's files, their URLs (mirrors tried in order), sizes and
 * checksums, and which archives to unpack. fetch_dataset() brings a dataset directory to the
 * state the manifest describes:
 *   - each file is downloaded to NAME.part with libcurl (resume with HTTP Range, retries with
 *     backoff for transient failures, a size cap enforced while receiving, http/https only),
 *     verified (size, sha256, md5), then renamed to NAME: a final name only ever holds a
 *     verified file;
 *   - files the manifest publishes no sha256 for get one recorded in NAME.sha256.lock by their
 *     first verified download; later fetches verify against it;
 *   - archives are extracted with libarchive into a temporary directory that is renamed into
 *     place, refusing unsafe entries and archives that expand beyond the manifest's limits.
 *
 * Example:
 *     fetch_manifest m;
 *     char *path = fetch_manifest_find("fashion_mnist", &err);
 *     if (path && fetch_manifest_load(path, &m, &err) == MPSL_OK) {
 *         fetch_options o;
 *         fetch_options_init(&o);            // defaults, then MPSL_FETCH_* overrides
 *         if (fetch_options_from_env(&o, &err) == MPSL_OK &&
 *             fetch_dataset(&m, &o, &report, &err) == MPSL_OK) { ... }
 *         fetch_manifest_free(&m);
 *     }
 *
 * Every function returns MPSL_OK or a negative mpsl_status with err filled. Not thread-safe:
 * extraction changes the working directory while it runs. The format of manifests and every
 * environment variable are described in docs/fetch.md. */
#ifndef MPSL_FETCH_H
#define MPSL_FETCH_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "mpsl/plugin.h"

/* ---------------------------------------------------------------- manifests */

/* Archive format hints (manifest key `format`). AUTO accepts tar (any compression), zip, rar
 * and 7z; a hint enables only that reader. */
typedef enum fetch_format {
    FETCH_FMT_AUTO = 0,
    FETCH_FMT_TAR,
    FETCH_FMT_TAR_GZ,
    FETCH_FMT_TAR_BZ2,
    FETCH_FMT_TAR_XZ,
    FETCH_FMT_ZIP,
    FETCH_FMT_RAR,
    FETCH_FMT_7Z,
    FETCH_FMT_COUNT
} fetch_format;
#define FETCH_FORMAT_CHOICES "auto|tar|tar.gz|tar.bz2|tar.xz|zip|rar|7z"

typedef struct fetch_file {
    const char *name;         /* plain file name inside the dataset directory */
    const char **urls;        /* n_urls mirrors, in order; none: placed by hand */
    size_t n_urls;
    int64_t size;             /* exact bytes, or -1 when unknown */
    int64_t approx_size;      /* informational size for listings, or -1 */
    const char *sha256;       /* 64 lowercase hex digits, or NULL when not published */
    const char *md5;          /* 32 lowercase hex digits, or NULL */
    int extract;              /* 1: unpack after verification */
    fetch_format format;
    char *extract_to;         /* directory (in the dataset directory) the archive unpacks to */
    const char *note;         /* free text, or NULL */
} fetch_file;

typedef struct fetch_manifest {
    cfg_node *root;           /* owns every string below */
    char *path;
    const char *name, *description, *license, *homepage, *task, *used_by;
    const char *manual_instructions, *checksum_note, *notes, *citation;
    const char **modalities;
    size_t n_modalities;
    const char **classes;     /* optional class list (e.g. Kinetics-Sounds), n_classes of them */
    size_t n_classes;
    int login_required;
    int64_t max_extracted_bytes; /* per archive; 0 when no file is extracted */
    int64_t max_entries;
    fetch_file *files;
    size_t n_files;
} fetch_manifest;

/* Load and validate a manifest strictly: unknown keys (with a did-you-mean), wrong types,
 * malformed checksums, non-http(s) URLs, unsafe file names, a `name` that differs from the file
 * name, and missing notes or limits are refused with file:line:column. */
int fetch_manifest_load(const char *path, fetch_manifest *m, mpsl_error *err);
void fetch_manifest_free(fetch_manifest *m);

/* The manifest file for NAME (malloc'd path): an argument with a '/' or ending in .yaml is a
 * path; a name is searched in $MPSL_DATASETS_PATH (':'-separated), ./datasets, the source
 * tree's datasets/ and the installed datasets/. NULL with err set (listing what exists). */
char *fetch_manifest_find(const char *name, mpsl_error *err);

/* Every manifest on the search path, first one per name, sorted by name: malloc'd array of
 * malloc'd paths (*n of them). Free with fetch_free_strings(). */
char **fetch_manifest_all(size_t *n);
void fetch_free_strings(char **v, size_t n);

/* ---------------------------------------------------------------- options */

typedef enum fetch_progress_mode {
    FETCH_PROGRESS_NONE = 0,
    FETCH_PROGRESS_LINES, /* a line every progress_interval seconds (not a terminal) */
    FETCH_PROGRESS_BAR    /* a redrawn bar with bytes, rate and ETA (a terminal) */
} fetch_progress_mode;

typedef struct fetch_options {
    const char *dir;          /* the dataset directory; NULL: fetch_default_dir() */
    const char *mirror;       /* replace every URL's scheme+host+path prefix; NULL: none */
    int force;                /* download and extract again, replacing what is there */
    int verify;               /* re-hash present files even when their stamp is current */
    fetch_progress_mode progress;
    double progress_interval; /* seconds between progress lines (LINES mode) */
    /* Network (all can be set with MPSL_FETCH_* variables, see fetch_options_from_env). */
    long connect_timeout;     /* seconds */
    long low_speed_limit;     /* bytes/s below which ...                              */
    long low_speed_time;      /* ... for this many seconds a transfer counts as stalled */
    int retries;              /* retries per URL after the first attempt (transient failures) */
    double retry_delay;       /* first backoff delay, seconds; doubles per retry, +-jitter */
    double retry_max_delay;   /* cap on one backoff delay (and on Retry-After) */
    long max_redirects;
    int64_t max_bytes;        /* cap on any file whose manifest size is unknown */
} fetch_options;

/* Defaults: progress BAR on a terminal (stderr), LINES otherwise, every 5 s; connect timeout
 * 30 s; stalled below 1000 B/s for 60 s; 5 retries from 1 s up to 60 s; 10 redirects; 1 TB
 * cap for files of unknown size. */
void fetch_options_init(fetch_options *o);
/* Overrides from MPSL_FETCH_CONNECT_TIMEOUT, MPSL_FETCH_LOW_SPEED_LIMIT,
 * MPSL_FETCH_LOW_SPEED_TIME, MPSL_FETCH_RETRIES, MPSL_FETCH_RETRY_DELAY,
 * MPSL_FETCH_RETRY_MAX_DELAY, MPSL_FETCH_MAX_REDIRECTS, MPSL_FETCH_MAX_BYTES,
 * MPSL_FETCH_PROGRESS (none|lines|bar) and MPSL_FETCH_PROGRESS_INTERVAL; a malformed or
 * out-of-range value is refused, naming the variable. */
int fetch_options_from_env(fetch_options *o, mpsl_error *err);

/* The default dataset directory (malloc'd): $MPSL_DATA_DIR/NAME, else
 * $XDG_CACHE_HOME/mpsl/datasets/NAME, else $HOME/.cache/mpsl/datasets/NAME. */
char *fetch_default_dir(const char *name, mpsl_error *err);

/* The URL a mirror gives for url: everything up to the URL's last '/' (scheme, host and
 * directory path) is replaced by the mirror, whose trailing '/'s are dropped; a query or
 * fragment is removed. "http://m/data" + "https://h/a/b/f.gz?x" -> "http://m/data/f.gz".
 * NULL when url has no file name. */
char *fetch_mirror_url(const char *mirror, const char *url);

/* ---------------------------------------------------------------- fetching */

typedef struct fetch_report {
    size_t files_downloaded;
    size_t files_present;     /* already there and verified */
    size_t files_missing_manual; /* must be placed by hand and are not there */
    size_t archives_extracted;
    int64_t bytes_downloaded;
    double seconds_downloading;
} fetch_report;

/* Bring the dataset directory to the manifest's state (see the top of this file). Files that
 * must be placed by hand and are missing make it fail with the manual instructions in the
 * message (MPSL_ERR_IO). Other failures: MPSL_ERR_IO (network, disk, verification, unsafe
 * archive), MPSL_ERR_INVALID (bad option). Nothing unverified is ever left under a final name. */
int fetch_dataset(const fetch_manifest *m, const fetch_options *o, fetch_report *r,
                  mpsl_error *err);

/* What a listing shows for one file. */
typedef enum fetch_file_state {
    FETCH_STATE_MISSING = 0,
    FETCH_STATE_PARTIAL,      /* only NAME.part exists */
    FETCH_STATE_PRESENT,      /* NAME exists, not verified since it last changed */
    FETCH_STATE_VERIFIED      /* NAME exists and its verification stamp is current */
} fetch_file_state;
fetch_file_state fetch_file_status(const fetch_manifest *m, const fetch_file *f, const char *dir);

/* ---------------------------------------------------------------- pieces (tested directly) */

/* 1 when an archive entry path is safe to create under the extraction root: relative, no
 * '..' component, not empty. Otherwise 0 with the reason in why. */
int fetch_entry_path_safe(const char *path, char *why, size_t why_size);
/* 1 when a symlink at entry path `path` with target `target` stays inside the root: relative,
 * '..' components only at its start and no more of them than path has parent directories. */
int fetch_symlink_safe(const char *path, const char *target, char *why, size_t why_size);

#endif
