/* cmd_fetch.c: `mpsl fetch NAME [--dir DIR] [--mirror URL] [--force] [--verify] [--quiet]`
 * downloads, verifies and unpacks a dataset from its manifest (datasets/NAME.yaml);
 * `mpsl fetch --list` shows every manifest with its size and what is already in place. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "fetch/fetch.h"
#include "fetch/fetch_internal.h"
#include "util/util.h"

static const char usage_text[] =
    "usage: mpsl fetch NAME|MANIFEST.yaml [--dir DIR] [--mirror URL] [--force] [--verify] "
    "[--quiet]\n"
    "       mpsl fetch --list\n";

static void help(void)
{
    printf("%s\n"
           "Downloads the files of dataset NAME (datasets/NAME.yaml), verifies their size and\n"
           "checksums, and unpacks the archives the manifest marks.\n\n"
           "  --dir DIR     the dataset directory (default $MPSL_DATA_DIR/NAME, else\n"
           "                ~/.cache/mpsl/datasets/NAME)\n"
           "  --mirror URL  fetch every file from URL/<file name in the original URL> instead\n"
           "  --force       download and extract again, replacing what is there\n"
           "  --verify      re-hash present files even when they were verified before\n"
           "  --quiet       no progress output\n"
           "  --list        every manifest, its size and its state in the data directory\n\n"
           "Manifests are searched in $MPSL_DATASETS_PATH, ./datasets and the source tree's\n"
           "datasets/. Network settings: MPSL_FETCH_* variables (see docs/fetch.md).\n",
           usage_text);
}

/* "30.9 MB", "~19.3 GB", "27.5 MB + unknown", "unknown". */
static void total_size(const fetch_manifest *m, char *buf, size_t size)
{
    double exact = 0, approx = 0;
    int n_unknown = 0, n_approx = 0;
    for (size_t i = 0; i < m->n_files; i++) {
        const fetch_file *f = &m->files[i];
        if (f->size >= 0) {
            exact += (double)f->size;
        } else if (f->approx_size >= 0) {
            approx += (double)f->approx_size;
            n_approx++;
        } else {
            n_unknown++;
        }
    }
    char a[32];
    if (exact + approx == 0) {
        snprintf(buf, size, "unknown");
        return;
    }
    dl_fmt_bytes(exact + approx, a, sizeof a);
    snprintf(buf, size, "%s%s%s", n_approx ? "~" : "", a, n_unknown ? " + ?" : "");
}

static int list_all(void)
{
    size_t n = 0;
    char **paths = fetch_manifest_all(&n);
    if (n == 0) {
        fprintf(stderr, "mpsl fetch: no manifests found (search path: $MPSL_DATASETS_PATH, "
                        "./datasets, the source tree's datasets/)\n");
        fetch_free_strings(paths, n);
        return 1;
    }
    int status = 0;
    printf("%-16s %5s  %-18s %-26s %s\n", "DATASET", "FILES", "SIZE", "STATE", "DIRECTORY");
    for (size_t i = 0; i < n; i++) {
        fetch_manifest m;
        mpsl_error err = {{0}};
        if (fetch_manifest_load(paths[i], &m, &err) != MPSL_OK) {
            fprintf(stderr, "mpsl fetch: %s\n", err.msg);
            status = 1;
            continue;
        }
        char *dir = fetch_default_dir(m.name, &err);
        size_t counts[4] = {0};
        for (size_t k = 0; dir && k < m.n_files; k++) {
            counts[fetch_file_status(&m, &m.files[k], dir)]++;
        }
        char size[48], state[64];
        total_size(&m, size, sizeof size);
        if (!dir) {
            snprintf(state, sizeof state, "?");
        } else if (counts[FETCH_STATE_VERIFIED] == m.n_files) {
            snprintf(state, sizeof state, "verified");
        } else if (counts[FETCH_STATE_MISSING] == m.n_files) {
            snprintf(state, sizeof state, "not fetched");
        } else {
            snprintf(state, sizeof state, "%zu/%zu verified", counts[FETCH_STATE_VERIFIED],
                     m.n_files);
            if (counts[FETCH_STATE_PRESENT]) {
                size_t used = strlen(state);
                snprintf(state + used, sizeof state - used, ", %zu unverified",
                         counts[FETCH_STATE_PRESENT]);
            }
            if (counts[FETCH_STATE_PARTIAL]) {
                size_t used = strlen(state);
                snprintf(state + used, sizeof state - used, ", %zu partial",
                         counts[FETCH_STATE_PARTIAL]);
            }
        }
        if (m.login_required && counts[FETCH_STATE_VERIFIED] != m.n_files) {
            size_t used = strlen(state);
            snprintf(state + used, sizeof state - used, " (login)");
        }
        printf("%-16s %5zu  %-18s %-26s %s\n", m.name, m.n_files, size, state, dir ? dir : "");
        free(dir);
        fetch_manifest_free(&m);
    }
    fetch_free_strings(paths, n);
    return status;
}

int cmd_fetch(int argc, char **argv)
{
    const char *name = NULL, *dir = NULL, *mirror = NULL;
    int force = 0, verify = 0, quiet = 0, list = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            help();
            return 0;
        } else if (strcmp(a, "--list") == 0) {
            list = 1;
        } else if (strcmp(a, "--force") == 0) {
            force = 1;
        } else if (strcmp(a, "--verify") == 0) {
            verify = 1;
        } else if (strcmp(a, "--quiet") == 0) {
            quiet = 1;
        } else if ((strcmp(a, "--dir") == 0 || strcmp(a, "--mirror") == 0) && i + 1 < argc) {
            *(a[2] == 'd' ? &dir : &mirror) = argv[++i];
        } else if (strncmp(a, "--dir=", 6) == 0) {
            dir = a + 6;
        } else if (strncmp(a, "--mirror=", 9) == 0) {
            mirror = a + 9;
        } else if (a[0] == '-' || name) {
            fprintf(stderr, "mpsl fetch: unexpected argument '%s'\n%s", a, usage_text);
            return 2;
        } else {
            name = a;
        }
    }
    if (list) {
        if (name || dir || mirror || force || verify) {
            fprintf(stderr, "mpsl fetch: --list takes no other arguments\n%s", usage_text);
            return 2;
        }
        return list_all();
    }
    if (!name || (dir && !*dir) || (mirror && !*mirror)) {
        fprintf(stderr, "%s", usage_text);
        return 2;
    }
    mpsl_error err = {{0}};
    fetch_options o;
    fetch_options_init(&o);
    if (fetch_options_from_env(&o, &err) != MPSL_OK) {
        fprintf(stderr, "mpsl fetch: %s\n", err.msg);
        return 2;
    }
    o.dir = dir;
    o.mirror = mirror;
    o.force = force;
    o.verify = verify;
    if (quiet) {
        o.progress = FETCH_PROGRESS_NONE;
    }
    char *path = fetch_manifest_find(name, &err);
    if (!path) {
        fprintf(stderr, "mpsl fetch: %s\n", err.msg);
        return 1;
    }
    fetch_manifest m;
    int status = 1;
    if (fetch_manifest_load(path, &m, &err) == MPSL_OK) {
        fetch_report r;
        if (fetch_dataset(&m, &o, &r, &err) == MPSL_OK) {
            char sz[32];
            if (r.files_downloaded == 0 && r.archives_extracted == 0) {
                printf("%s: all %zu file%s present and verified; nothing downloaded\n", m.name,
                       m.n_files, m.n_files == 1 ? "" : "s");
            } else {
                printf("%s: done: %zu downloaded (%s in %.2f s), %zu already present, %zu "
                       "extracted\n", m.name, r.files_downloaded,
                       dl_fmt_bytes((double)r.bytes_downloaded, sz, sizeof sz),
                       r.seconds_downloading, r.files_present, r.archives_extracted);
            }
            status = 0;
        }
        fetch_manifest_free(&m);
    }
    if (status != 0) {
        fflush(stdout);
        fprintf(stderr, "mpsl fetch: %s\n", err.msg);
    }
    free(path);
    return status;
}
