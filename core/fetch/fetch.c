/* fetch.c: bringing a dataset directory to its manifest's state: options (defaults and
 * MPSL_FETCH_* variables), the directory and its lock, each file downloaded to NAME.part,
 * verified and renamed into place, checksum locks, extraction into a temporary directory
 * renamed into place, and the per-file state a listing shows. */
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fetch_internal.h"
#include "util/util.h"

/* ---------------------------------------------------------------- options */

void fetch_options_init(fetch_options *o)
{
    memset(o, 0, sizeof *o);
    o->progress = isatty(STDERR_FILENO) ? FETCH_PROGRESS_BAR : FETCH_PROGRESS_LINES;
    o->progress_interval = 5.0;
    o->connect_timeout = 30;
    o->low_speed_limit = 1000;
    o->low_speed_time = 60;
    o->retries = 5;
    o->retry_delay = 1.0;
    o->retry_max_delay = 60.0;
    o->max_redirects = 10;
    o->max_bytes = INT64_C(1000000000000);
}

static int env_number(const char *var, double lo, double hi, double *out, mpsl_error *err)
{
    const char *v = getenv(var);
    if (!v || !*v) {
        return 0;
    }
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (end == v || *end || errno || !isfinite(x) || x < lo || x > hi) {
        return mpsl_errs(err, MPSL_ERR_INVALID, "%s=\"%s\": expected a number in [%g, %g]", var,
                         v, lo, hi);
    }
    *out = x;
    return 1;
}

int fetch_options_from_env(fetch_options *o, mpsl_error *err)
{
    double x = 0;
    int r;
#define ENV(var, lo, hi, assign)                                                        \
    if ((r = env_number(var, lo, hi, &x, err)) < 0) {                                   \
        return r;                                                                       \
    } else if (r) {                                                                     \
        assign;                                                                         \
    }
    ENV("MPSL_FETCH_CONNECT_TIMEOUT", 1, 3600, o->connect_timeout = (long)x)
    ENV("MPSL_FETCH_LOW_SPEED_LIMIT", 1, 1e9, o->low_speed_limit = (long)x)
    ENV("MPSL_FETCH_LOW_SPEED_TIME", 1, 86400, o->low_speed_time = (long)x)
    ENV("MPSL_FETCH_RETRIES", 0, 100, o->retries = (int)x)
    ENV("MPSL_FETCH_RETRY_DELAY", 0, 3600, o->retry_delay = x)
    ENV("MPSL_FETCH_RETRY_MAX_DELAY", 0, 86400, o->retry_max_delay = x)
    ENV("MPSL_FETCH_MAX_REDIRECTS", 0, 100, o->max_redirects = (long)x)
    ENV("MPSL_FETCH_MAX_BYTES", 1, 9e18, o->max_bytes = (int64_t)x)
    ENV("MPSL_FETCH_PROGRESS_INTERVAL", 0.1, 3600, o->progress_interval = x)
#undef ENV
    const char *p = getenv("MPSL_FETCH_PROGRESS");
    if (p && *p) {
        if (strcmp(p, "none") == 0) {
            o->progress = FETCH_PROGRESS_NONE;
        } else if (strcmp(p, "lines") == 0) {
            o->progress = FETCH_PROGRESS_LINES;
        } else if (strcmp(p, "bar") == 0) {
            o->progress = FETCH_PROGRESS_BAR;
        } else {
            return mpsl_errs(err, MPSL_ERR_INVALID, "MPSL_FETCH_PROGRESS=\"%s\": expected none, "
                             "lines or bar", p);
        }
    }
    return MPSL_OK;
}

char *fetch_default_dir(const char *name, mpsl_error *err)
{
    const char *data = getenv("MPSL_DATA_DIR"), *xdg = getenv("XDG_CACHE_HOME"),
               *home = getenv("HOME");
    char *r = NULL;
    if (data && *data) {
        r = mpsl_strfmt("%s/%s", data, name);
    } else if (xdg && *xdg) {
        r = mpsl_strfmt("%s/mpsl/datasets/%s", xdg, name);
    } else if (home && *home) {
        r = mpsl_strfmt("%s/.cache/mpsl/datasets/%s", home, name);
    } else {
        mpsl_errs(err, MPSL_ERR_INVALID, "none of MPSL_DATA_DIR, XDG_CACHE_HOME and HOME is set: "
                  "give the dataset directory with --dir");
    }
    return r;
}

char *fetch_mirror_url(const char *mirror, const char *url)
{
    size_t end = strcspn(url, "?#");
    const char *slash = NULL;
    const char *after_scheme = strstr(url, "://");
    const char *path = after_scheme ? strchr(after_scheme + 3, '/') : NULL;
    for (const char *p = url; p < url + end; p++) {
        if (*p == '/') {
            slash = p;
        }
    }
    if (!path || !slash || slash < path || slash + 1 >= url + end) {
        return NULL; /* no file name after the last '/' */
    }
    size_t mlen = strlen(mirror);
    while (mlen > 0 && mirror[mlen - 1] == '/') {
        mlen--;
    }
    return mpsl_strfmt("%.*s/%.*s", (int)mlen, mirror, (int)(url + end - slash - 1), slash + 1);
}

/* ---------------------------------------------------------------- directories */


/* Remove leftovers of an interrupted extraction of `name` (.extract-NAME.XXXXXX). */
static void remove_stale_extractions(const char *dir, const char *name)
{
    DIR *d = opendir(dir);
    if (!d) {
        return;
    }
    char *prefix = mpsl_strfmt(".extract-%s.", name);
    struct dirent *e;
    while (prefix && (e = readdir(d))) {
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0 &&
            strlen(e->d_name) == strlen(prefix) + 6) {
            char *p = mpsl_strfmt("%s/%s", dir, e->d_name);
            if (p) {
                fx_remove_tree(p);
            }
            free(p);
        }
    }
    free(prefix);
    closedir(d);
}

/* ---------------------------------------------------------------- verification */

/* What a file must be. */
typedef struct expect {
    const char *sha256;   /* manifest or lock; NULL: record it */
    int from_lock;
    char lock_sha[65];
} expect;

static int load_expect(const char *dir, const fetch_file *f, expect *x, mpsl_error *err)
{
    memset(x, 0, sizeof *x);
    x->sha256 = f->sha256;
    if (f->sha256) {
        return MPSL_OK;
    }
    int r = fx_lock_read(dir, f->name, x->lock_sha, err);
    if (r < 0) {
        return r;
    }
    if (r == 1) {
        x->sha256 = x->lock_sha;
        x->from_lock = 1;
    }
    return MPSL_OK;
}

/* Check path against the manifest and the lock; sha_out receives the actual sha256. Returns
 * MPSL_OK, or MPSL_ERR_IO with "expected ..., actual ..." in err. */
static int verify_file(const char *path, const fetch_file *f, const expect *x, char sha_out[65],
                       mpsl_error *err)
{
    char md5[33];
    int64_t size;
    int rc = fx_hash_file(path, sha_out, f->md5 ? md5 : NULL, &size, err);
    if (rc != MPSL_OK) {
        return rc;
    }
    if (f->size >= 0 && size != f->size) {
        return mpsl_errs(err, MPSL_ERR_IO, "size mismatch for %s: expected %" PRId64
                         " bytes, actual %" PRId64, f->name, f->size, size);
    }
    if (x->sha256 && strcmp(sha_out, x->sha256) != 0) {
        return mpsl_errs(err, MPSL_ERR_IO, "sha256 mismatch for %s:\n  expected %s%s\n  actual   %s",
                         f->name, x->sha256, x->from_lock ? " (recorded in the .sha256.lock)" : "",
                         sha_out);
    }
    if (f->md5 && strcmp(md5, f->md5) != 0) {
        return mpsl_errs(err, MPSL_ERR_IO, "md5 mismatch for %s:\n  expected %s\n  actual   %s",
                         f->name, f->md5, md5);
    }
    return MPSL_OK;
}

/* After a verified file is in place: record its checksum when nothing published one, and
 * stamp it. */
static int record_verified(const char *dir, const fetch_file *f, const expect *x,
                           const char *sha, mpsl_error *err)
{
    if (!x->sha256) {
        int rc = fx_lock_write(dir, f->name, sha, err);
        if (rc != MPSL_OK) {
            return rc;
        }
        printf("  %s: no published sha256; recorded %s in %s.sha256.lock\n", f->name, sha,
               f->name);
    }
    return fx_stamp_write(dir, f->name, sha, err);
}

/* ---------------------------------------------------------------- one file */

typedef enum file_result { FILE_READY = 0, FILE_MANUAL_MISSING } file_result;

static int place_present(const char *dir, const char *final, const struct stat *st,
                         const fetch_file *f, const expect *x, const fetch_options *o,
                         char sha[65], mpsl_error *err)
{
    if (!o->verify && fx_stamp_current(dir, f->name, st, x->sha256, sha)) {
        printf("  %s: present, verified\n", f->name);
        return MPSL_OK;
    }
    int rc = verify_file(final, f, x, sha, err);
    if (rc != MPSL_OK) {
        fx_stamp_remove(dir, f->name);
        mpsl_err_prefix(err, "%s is present but is not the manifest's file (remove it, or run "
                        "with --force to download it again%s)", final,
                        f->n_urls ? "" : "; for a file placed by hand: get it again");
        return MPSL_ERR_IO;
    }
    rc = record_verified(dir, f, x, sha, err);
    if (rc == MPSL_OK) {
        printf("  %s: present, sha256 %s\n", f->name, x->sha256 ? "ok" : "recorded");
    }
    return rc;
}

static int download_file(const fetch_manifest *m, const char *dir, const fetch_file *f,
                         const expect *x, const fetch_options *o, fetch_report *r, char sha[65],
                         mpsl_error *err)
{
    char *final = mpsl_strfmt("%s/%s", dir, f->name);
    char *part = mpsl_strfmt("%s/%s.part", dir, f->name);
    char **urls = calloc(f->n_urls, sizeof *urls);
    int rc = MPSL_OK;
    size_t n_urls = 0;
    if (!final || !part || !urls) {
        rc = mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < f->n_urls; i++) {
        char *u = o->mirror ? fetch_mirror_url(o->mirror, f->urls[i]) : mpsl_strdup(f->urls[i]);
        if (!u) {
            rc = mpsl_errs(err, MPSL_ERR_INVALID, "%s: cannot map %s onto the mirror (no file "
                           "name in the URL)", f->name, f->urls[i]);
            goto done;
        }
        int dup = 0;
        for (size_t j = 0; j < n_urls && !dup; j++) {
            dup = strcmp(urls[j], u) == 0;
        }
        if (dup) {
            free(u);
        } else {
            urls[n_urls++] = u;
        }
    }
    if (o->force) {
        unlink(part);
    }
    char sz[32];
    mpsl_error last = {{0}};
    int fresh_retry_used = 0;
    for (size_t i = 0; i < n_urls; i++) {
        printf("  %s: downloading %s from %s\n", f->name,
               f->size >= 0 ? dl_fmt_bytes((double)f->size, sz, sizeof sz) : "(size unknown)",
               urls[i]);
        fflush(stdout);
        dl_result res;
        dl_outcome out = dl_fetch(urls[i], part, f->name, f->size, o, &res, &last);
        r->bytes_downloaded += res.bytes_received;
        r->seconds_downloading += res.seconds;
        if (out == DL_FATAL) {
            rc = mpsl_errs(err, MPSL_ERR_IO, "%s: %s", f->name, last.msg);
            goto done;
        }
        if (out != DL_OK) {
            if (i + 1 < n_urls) {
                mpsl_log(MPSL_LOG_WARN, "%s: %s; trying the next URL", f->name, last.msg);
            }
            continue;
        }
        rc = verify_file(part, f, x, sha, &last);
        if (rc != MPSL_OK) {
            unlink(part);
            mpsl_log(MPSL_LOG_WARN, "%s (from %s; the partial file was deleted)", last.msg,
                     urls[i]);
            rc = MPSL_OK;
            if (res.resumed && !fresh_retry_used) {
                /* Pieces from several transfers may be what differs: once more, whole. */
                fresh_retry_used = 1;
                i--;
            }
            continue;
        }
        int fd = open(part, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            (void)fsync(fd);
            close(fd);
        }
        if (rename(part, final) != 0) {
            rc = mpsl_errs(err, MPSL_ERR_IO, "cannot rename %s to %s: %s", part, final,
                           strerror(errno));
            goto done;
        }
        fx_sync_dir(dir);
        char rate[32];
        printf("  %s: %s in %.2f s (%s/s)%s, sha256 %s\n", f->name,
               dl_fmt_bytes((double)res.final_size, sz, sizeof sz), res.seconds,
               dl_fmt_bytes(res.seconds > 0 ? (double)res.bytes_received / res.seconds : 0, rate,
                            sizeof rate),
               res.resumed ? " (resumed)" : "", x->sha256 ? "ok" : "recorded");
        r->files_downloaded++;
        rc = record_verified(dir, f, x, sha, err);
        goto done;
    }
    rc = mpsl_errs(err, MPSL_ERR_IO, "%s: could not be downloaded (%zu URL%s tried); last "
                   "error: %s", f->name, n_urls, n_urls == 1 ? "" : "s", last.msg);
    struct stat st;
    if (lstat(part, &st) == 0 && st.st_size == 0) {
        unlink(part); /* nothing to resume: leave no litter */
    }
    (void)m;
done:
    for (size_t i = 0; urls && i < n_urls; i++) {
        free(urls[i]);
    }
    free(urls);
    free(final);
    free(part);
    return rc;
}

/* The archive's extraction: DIR/extract_to with a marker naming the archive's sha256. */
static int extract_file(const fetch_manifest *m, const char *dir, const fetch_file *f,
                        const char *sha, const fetch_options *o, fetch_report *r,
                        mpsl_error *err)
{
    char *archive = mpsl_strfmt("%s/%s", dir, f->name);
    char *target = mpsl_strfmt("%s/%s", dir, f->extract_to);
    char *marker = mpsl_strfmt("%s/%s/.mpsl-extracted", dir, f->extract_to);
    char *tmp = mpsl_strfmt("%s/.extract-%s.XXXXXX", dir, f->name);
    char *want = mpsl_strfmt("archive %s sha256 %s\n", f->name, sha);
    int rc = MPSL_OK;
    if (!archive || !target || !marker || !tmp || !want) {
        rc = mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
        goto done;
    }
    struct stat st;
    if (lstat(target, &st) == 0) {
        FILE *mf = fopen(marker, "re");
        char line[256] = "";
        if (mf) {
            if (!fgets(line, sizeof line, mf)) {
                line[0] = '\0';
            }
            fclose(mf);
        }
        if (S_ISDIR(st.st_mode) && strcmp(line, want) == 0 && !o->force) {
            printf("  %s: already extracted in %s/\n", f->name, f->extract_to);
            goto done;
        }
        if (!o->force) {
            rc = mpsl_errs(err, MPSL_ERR_IO, "%s exists but was not extracted from this %s "
                           "(remove it, or run with --force)", target, f->name);
            goto done;
        }
        if (fx_remove_tree(target) != 0) {
            rc = mpsl_errs(err, MPSL_ERR_IO, "cannot remove %s: %s", target, strerror(errno));
            goto done;
        }
    }
    remove_stale_extractions(dir, f->name);
    if (!mkdtemp(tmp)) {
        rc = mpsl_errs(err, MPSL_ERR_IO, "cannot create %s: %s", tmp, strerror(errno));
        goto done;
    }
    printf("  %s: extracting into %s/\n", f->name, f->extract_to);
    fflush(stdout);
    fx_extract_stats es;
    double t0 = mpsl_now();
    rc = fx_extract(archive, tmp, f->format, m->max_extracted_bytes, m->max_entries, &es, err);
    if (rc == MPSL_OK) {
        char *tmp_marker = mpsl_strfmt("%s/.mpsl-extracted", tmp);
        rc = tmp_marker ? fx_write_atomic(tmp_marker, want, err)
                        : mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
        free(tmp_marker);
    }
    if (rc == MPSL_OK && rename(tmp, target) != 0) {
        rc = mpsl_errs(err, MPSL_ERR_IO, "cannot rename %s to %s: %s", tmp, target,
                       strerror(errno));
    }
    if (rc != MPSL_OK) {
        fx_remove_tree(tmp);
        goto done;
    }
    fx_sync_dir(dir);
    char sz[32];
    printf("  %s: extracted %" PRId64 " entries, %s, in %.2f s\n", f->name, es.entries,
           dl_fmt_bytes((double)es.bytes, sz, sizeof sz), mpsl_now() - t0);
    r->archives_extracted++;
done:
    free(archive);
    free(target);
    free(marker);
    free(tmp);
    free(want);
    return rc;
}

static int fetch_one(const fetch_manifest *m, const char *dir, const fetch_file *f,
                     const fetch_options *o, fetch_report *r, file_result *res, mpsl_error *err)
{
    *res = FILE_READY;
    expect x;
    int rc = load_expect(dir, f, &x, err);
    char *final = mpsl_strfmt("%s/%s", dir, f->name);
    char sha[65] = "";
    if (rc != MPSL_OK || !final) {
        free(final);
        return rc != MPSL_OK ? rc : mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
    }
    struct stat st;
    int present = lstat(final, &st) == 0;
    if (present && !S_ISREG(st.st_mode)) {
        rc = mpsl_errs(err, MPSL_ERR_IO, "%s exists and is not a regular file", final);
    } else if (present && (!o->force || f->n_urls == 0)) {
        rc = place_present(dir, final, &st, f, &x, o, sha, err);
        r->files_present += rc == MPSL_OK;
    } else if (f->n_urls == 0) {
        char sz[48] = "";
        if (f->size >= 0 || f->approx_size >= 0) {
            char b[32];
            snprintf(sz, sizeof sz, " (%s%s)", f->size >= 0 ? "" : "about ",
                     dl_fmt_bytes((double)(f->size >= 0 ? f->size : f->approx_size), b,
                                  sizeof b));
        }
        printf("  %s: missing; place it by hand at %s%s\n", f->name, final, sz);
        *res = FILE_MANUAL_MISSING;
        r->files_missing_manual++;
    } else {
        if (present) { /* --force: the lock, if any, stays: it is what the new copy must match */
            fx_stamp_remove(dir, f->name);
            if (unlink(final) != 0) {
                rc = mpsl_errs(err, MPSL_ERR_IO, "cannot remove %s: %s", final, strerror(errno));
            }
        }
        if (rc == MPSL_OK) {
            rc = download_file(m, dir, f, &x, o, r, sha, err);
        }
    }
    free(final);
    if (rc == MPSL_OK && *res == FILE_READY && f->extract) {
        rc = extract_file(m, dir, f, sha, o, r, err);
    }
    return rc;
}

/* ---------------------------------------------------------------- the dataset */

int fetch_dataset(const fetch_manifest *m, const fetch_options *o, fetch_report *r,
                  mpsl_error *err)
{
    memset(r, 0, sizeof *r);
    char *dir = o->dir ? mpsl_strdup(o->dir) : fetch_default_dir(m->name, err);
    if (!dir) {
        return MPSL_ERR_INVALID;
    }
    if (o->mirror && strncasecmp(o->mirror, "http://", 7) != 0 &&
        strncasecmp(o->mirror, "https://", 8) != 0) {
        free(dir);
        return mpsl_errs(err, MPSL_ERR_INVALID, "--mirror %s: only http:// and https:// mirrors "
                         "are allowed", o->mirror);
    }
    int rc = mpsl_mkdir_p(dir, err);
    char *lock_path = mpsl_strfmt("%s/.mpsl-fetch.lock", dir);
    int lock_fd = -1;
    if (rc == MPSL_OK) {
        lock_fd = lock_path ? open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644) : -1;
        if (lock_fd < 0) {
            rc = mpsl_errs(err, MPSL_ERR_IO, "cannot open %s: %s", lock_path ? lock_path : dir,
                           strerror(errno));
        } else if (flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
            rc = mpsl_errs(err, MPSL_ERR_IO, "another mpsl fetch is working in %s; wait for it "
                           "to finish", dir);
        }
    }
    if (rc == MPSL_OK && curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        rc = mpsl_errs(err, MPSL_ERR_INTERNAL, "cannot initialise libcurl");
    } else if (rc == MPSL_OK) {
        printf("%s: %zu file%s into %s\n", m->name, m->n_files, m->n_files == 1 ? "" : "s", dir);
        fflush(stdout);
        for (size_t i = 0; rc == MPSL_OK && i < m->n_files; i++) {
            file_result fr;
            rc = fetch_one(m, dir, &m->files[i], o, r, &fr, err);
            fflush(stdout);
        }
        curl_global_cleanup();
    }
    if (rc == MPSL_OK && r->files_missing_manual) {
        /* The instructions go to stdout in full: they can be longer than an error message. */
        printf("\n%s: %zu file%s must be downloaded by hand%s. How:\n\n%s\n", m->name,
               r->files_missing_manual, r->files_missing_manual == 1 ? "" : "s",
               m->login_required ? " (login required)" : "",
               m->manual_instructions ? m->manual_instructions : "");
        fflush(stdout);
        rc = mpsl_errs(err, MPSL_ERR_IO, "%s: %zu file%s must be downloaded by hand%s (see the "
                       "instructions above); put %s in %s and run the same command again to "
                       "verify", m->name, r->files_missing_manual,
                       r->files_missing_manual == 1 ? "" : "s",
                       m->login_required ? " (login required)" : "",
                       r->files_missing_manual == 1 ? "it" : "them", dir);
    }
    if (lock_fd >= 0) {
        close(lock_fd);
    }
    free(lock_path);
    free(dir);
    return rc;
}

fetch_file_state fetch_file_status(const fetch_manifest *m, const fetch_file *f, const char *dir)
{
    (void)m;
    char *final = mpsl_strfmt("%s/%s", dir, f->name);
    char *part = mpsl_strfmt("%s/%s.part", dir, f->name);
    fetch_file_state s = FETCH_STATE_MISSING;
    struct stat st;
    if (final && lstat(final, &st) == 0 && S_ISREG(st.st_mode)) {
        expect x;
        mpsl_error ignored;
        s = FETCH_STATE_PRESENT;
        if (load_expect(dir, f, &x, &ignored) == MPSL_OK && x.sha256 &&
            fx_stamp_current(dir, f->name, &st, x.sha256, NULL)) {
            s = FETCH_STATE_VERIFIED;
        }
    } else if (part && lstat(part, &st) == 0) {
        s = FETCH_STATE_PARTIAL;
    }
    free(final);
    free(part);
    return s;
}
