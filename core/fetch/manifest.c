/* manifest.c: reading datasets/NAME.yaml strictly (every refusal with file:line:column) and
 * finding manifests on the search path: $MPSL_DATASETS_PATH, ./datasets, the source tree's
 * datasets/ and the installed one. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "fetch_internal.h"
#include "mpsl_build_config.h"
#include "util/util.h"

/* ---------------------------------------------------------------- keys */

typedef struct top_params {
    const char *name, *description, *license, *homepage, *task, *used_by;
    const char *manual_instructions, *checksum_note, *notes, *citation;
    int login_required;
    int64_t max_extracted_bytes, max_entries;
} top_params;

#define BIG 4.0e18 /* bounds for byte counts: anything a 64-bit integer holds comfortably */

static const mpsl_param_spec top_spec[] = {
    MPSL_PARAM_STRING(top_params, name, "name", 1, NULL, "the dataset's name, as its file name"),
    MPSL_PARAM_STRING(top_params, description, "description", 1, NULL, "one paragraph"),
    MPSL_PARAM_STRING(top_params, license, "license", 1, NULL, "the dataset's licence or terms"),
    MPSL_PARAM_STRING(top_params, homepage, "homepage", 1, NULL, "where the dataset is described"),
    MPSL_PARAM_STRING(top_params, task, "task", 1, NULL, "what it is used for"),
    MPSL_PARAM_STRING(top_params, used_by, "used_by", 1, NULL,
                      "which converter/experiment uses it (free text)"),
    MPSL_PARAM_STRING(top_params, manual_instructions, "manual_instructions", 0, NULL,
                      "how to get files that cannot be downloaded automatically"),
    MPSL_PARAM_STRING(top_params, checksum_note, "checksum_note", 0, NULL,
                      "why some sha256 are null"),
    MPSL_PARAM_STRING(top_params, notes, "notes", 0, NULL, "anything else worth knowing"),
    MPSL_PARAM_STRING(top_params, citation, "citation", 0, NULL, "how to cite the dataset"),
    MPSL_PARAM_BOOL(top_params, login_required, "login_required", "false",
                    "files need a registration or form: manual_instructions say how"),
    MPSL_PARAM_INT(top_params, max_extracted_bytes, "max_extracted_bytes", 0, 1, BIG, NULL,
                   "most bytes one archive may expand to"),
    MPSL_PARAM_INT(top_params, max_entries, "max_entries", 0, 1, BIG, NULL,
                   "most entries one archive may hold"),
};
/* Keys read by hand (lists). */
static const char *const top_lists[] = {"modalities", "classes", "files", NULL};

typedef struct file_params {
    const char *name, *sha256, *md5, *extract_to, *note;
    int extract;
    int format;
} file_params;

static const mpsl_param_spec file_spec[] = {
    MPSL_PARAM_STRING(file_params, name, "name", 1, NULL, "file name in the dataset directory"),
    MPSL_PARAM_STRING(file_params, sha256, "sha256", 0, NULL,
                      "64 hex digits, or null when not published"),
    MPSL_PARAM_STRING(file_params, md5, "md5", 0, NULL, "32 hex digits (optional)"),
    MPSL_PARAM_BOOL(file_params, extract, "extract", "false", "unpack the archive"),
    MPSL_PARAM_ENUM(file_params, format, "format", FETCH_FORMAT_CHOICES, "auto",
                    "archive format hint"),
    MPSL_PARAM_STRING(file_params, extract_to, "extract_to", 0, NULL,
                      "directory to unpack into (default: the name without its extension)"),
    MPSL_PARAM_STRING(file_params, note, "note", 0, NULL, "free text"),
};
static const char *const file_lists[] = {"urls", "size", "approx_size", NULL};

/* ---------------------------------------------------------------- helpers */

static int where_err(mpsl_error *err, const cfg_node *n, const char *fmt, const char *a,
                     const char *b)
{
    char w[512];
    cfg_where(n, w, sizeof w);
    char msg[768];
    snprintf(msg, sizeof msg, fmt, a ? a : "", b ? b : "");
    return mpsl_errs(err, MPSL_ERR_INVALID, "%s: %s", w, msg);
}

/* Unknown keys of a mapping, with a did-you-mean and the list of valid keys. */
static int check_keys(const cfg_node *map, const mpsl_param_spec *specs, size_t n_specs,
                      const char *const *lists, const char *context, mpsl_error *err)
{
    const char *cands[32];
    size_t nc = 0;
    for (size_t k = 0; k < n_specs; k++) {
        cands[nc++] = specs[k].key;
    }
    for (size_t k = 0; lists[k]; k++) {
        cands[nc++] = lists[k];
    }
    for (size_t i = 0; i < cfg_len(map); i++) {
        const char *key = cfg_key_at(map, i);
        size_t k = 0;
        while (k < nc && strcmp(cands[k], key)) {
            k++;
        }
        if (k < nc) {
            continue;
        }
        const char *best = cfg_did_you_mean(key, cands, nc);
        char w[512], hint[128] = "";
        if (best) {
            snprintf(hint, sizeof hint, "; did you mean '%s'?", best);
        }
        return mpsl_errs(err, MPSL_ERR_INVALID,
                         "%s: unknown key '%s' in %s%s (docs/fetch.md lists the keys)",
                         cfg_where_key(map, key, w, sizeof w), key, context, hint);
    }
    return MPSL_OK;
}

/* A byte count: a plain non-negative integer or (allow_null) null -> -1. */
static int get_bytes(const cfg_node *map, const char *key, int required, int allow_null,
                     int64_t *out, mpsl_error *err)
{
    const cfg_node *n = cfg_get(map, key);
    *out = -1;
    char w[512];
    if (!n) {
        if (required) {
            return mpsl_errs(err, MPSL_ERR_INVALID, "%s: missing required key '%s' (bytes, or "
                             "null when unknown)", cfg_where(map, w, sizeof w), key);
        }
        return MPSL_OK;
    }
    if (allow_null && cfg_is_null(n)) {
        return MPSL_OK;
    }
    const char *t = cfg_scalar(n);
    if (!t || cfg_scalar_quoted(n) || !t[0] || strspn(t, "0123456789") != strlen(t) ||
        strlen(t) > 18 || (t[0] == '0' && t[1])) {
        return mpsl_errs(err, MPSL_ERR_INVALID, "%s: expected a whole number of bytes%s for "
                         "'%s', got %s%s%s", cfg_where(n, w, sizeof w),
                         allow_null ? " or null" : "", key, t ? "\"" : "a list or mapping",
                         t ? t : "", t ? "\"" : "");
    }
    *out = strtoll(t, NULL, 10);
    if (*out == 0) {
        return mpsl_errs(err, MPSL_ERR_INVALID, "%s: '%s' must be at least 1 byte",
                         cfg_where(n, w, sizeof w), key);
    }
    return MPSL_OK;
}

/* A list of non-empty strings (a single string is not accepted: lists stay lists). */
static int get_strings(const cfg_node *map, const char *key, int required, const char ***out,
                       size_t *n_out, mpsl_error *err)
{
    const cfg_node *n = cfg_get(map, key);
    *out = NULL;
    *n_out = 0;
    char w[512];
    if (!n || cfg_is_null(n)) {
        if (required) {
            return mpsl_errs(err, MPSL_ERR_INVALID, "%s: missing required key '%s' (a list)",
                             cfg_where(n ? n : map, w, sizeof w), key);
        }
        return MPSL_OK;
    }
    if (cfg_node_type(n) != CFG_SEQ) {
        return mpsl_errs(err, MPSL_ERR_INVALID, "%s: expected a list for '%s' ([a, b] or "
                         "'- a' lines)", cfg_where(n, w, sizeof w), key);
    }
    size_t len = cfg_len(n);
    if (required && len == 0) {
        return mpsl_errs(err, MPSL_ERR_INVALID, "%s: '%s' must not be empty",
                         cfg_where(n, w, sizeof w), key);
    }
    const char **v = calloc(len ? len : 1, sizeof *v);
    if (!v) {
        return mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < len; i++) {
        const cfg_node *e = cfg_at(n, i);
        const char *t = cfg_scalar(e);
        if (!t || !t[0] || (cfg_is_null(e) && !cfg_scalar_quoted(e))) {
            free(v);
            return mpsl_errs(err, MPSL_ERR_INVALID, "%s: expected a non-empty string in '%s'",
                             cfg_where(e, w, sizeof w), key);
        }
        v[i] = t;
    }
    *out = v;
    *n_out = len;
    return MPSL_OK;
}

/* A file or directory name the dataset directory can hold: one component, not hidden, no
 * control characters, no suffix that mpsl uses for its own files. */
static int plain_name_ok(const char *s, char *why, size_t size)
{
    size_t len = strlen(s);
    if (!len || len > 200) {
        snprintf(why, size, "must be 1 to 200 characters");
        return 0;
    }
    if (s[0] == '.') {
        snprintf(why, size, "must not start with '.'");
        return 0;
    }
    for (const char *p = s; *p; p++) {
        if (*p == '/' || *p == '\\' || (unsigned char)*p < 0x20 || *p == 0x7f) {
            snprintf(why, size, "must be a plain file name (no '/', '\\' or control characters)");
            return 0;
        }
    }
    static const char *const reserved[] = {".part", ".sha256.lock", ".tmp"};
    for (size_t i = 0; i < MPSL_COUNT(reserved); i++) {
        size_t n = strlen(reserved[i]);
        if (len >= n && strcmp(s + len - n, reserved[i]) == 0) {
            snprintf(why, size, "must not end in '%s' (used by mpsl fetch)", reserved[i]);
            return 0;
        }
    }
    return 1;
}

static int url_ok(const char *u)
{
    if (strncasecmp(u, "http://", 7) != 0 && strncasecmp(u, "https://", 8) != 0) {
        return 0;
    }
    const char *host = strstr(u, "://") + 3;
    if (!*host || *host == '/') {
        return 0;
    }
    for (const char *p = u; *p; p++) {
        if ((unsigned char)*p <= 0x20 || *p == 0x7f) {
            return 0;
        }
    }
    return 1;
}

static void lower(char *s)
{
    for (; *s; s++) {
        *s = (char)tolower((unsigned char)*s);
    }
}

/* The default extract_to: the name without its archive extension. */
static char *strip_archive_ext(const char *name)
{
    static const char *const exts[] = {".tar.gz", ".tar.bz2", ".tar.xz", ".tgz", ".tbz2",
                                       ".txz",    ".tar",     ".zip",    ".rar", ".7z"};
    size_t len = strlen(name);
    for (size_t i = 0; i < MPSL_COUNT(exts); i++) {
        size_t n = strlen(exts[i]);
        if (len > n && strcasecmp(name + len - n, exts[i]) == 0) {
            char *r = mpsl_strdup(name);
            if (r) {
                r[len - n] = '\0';
            }
            return r;
        }
    }
    return mpsl_strfmt("%s.d", name);
}

/* ---------------------------------------------------------------- one file entry */

static int load_file(const cfg_node *node, fetch_file *f, mpsl_error *err)
{
    char w[512], why[160];
    if (cfg_node_type(node) != CFG_MAP) {
        return mpsl_errs(err, MPSL_ERR_INVALID, "%s: expected a mapping for a file (name:, "
                         "urls:, size:, sha256: ...)", cfg_where(node, w, sizeof w));
    }
    int rc = check_keys(node, file_spec, MPSL_COUNT(file_spec), file_lists, "a file entry", err);
    file_params p;
    if (rc == MPSL_OK) {
        rc = cfg_parse_params(node, file_spec, MPSL_COUNT(file_spec), &p, sizeof p, "a file entry",
                              file_lists, err);
    }
    if (rc != MPSL_OK) {
        return rc;
    }
    f->name = p.name;
    f->md5 = p.md5;
    f->extract = p.extract;
    f->format = (fetch_format)p.format;
    f->note = p.note;
    if (!plain_name_ok(p.name, why, sizeof why)) {
        return where_err(err, cfg_get(node, "name"), "file name '%s' %s", p.name, why);
    }
    /* sha256 is required but may be null: say so explicitly. */
    if (!cfg_get(node, "sha256")) {
        return mpsl_errs(err, MPSL_ERR_INVALID, "%s: file '%s' has no 'sha256' key (write "
                         "sha256: null when none is published, and explain in checksum_note)",
                         cfg_where(node, w, sizeof w), p.name);
    }
    if (p.sha256 && !fx_is_hex(p.sha256, 64)) {
        return where_err(err, cfg_get(node, "sha256"), "sha256 of '%s' must be 64 hex digits "
                         "or null, got \"%s\"", p.name, p.sha256);
    }
    if (p.md5 && !fx_is_hex(p.md5, 32)) {
        return where_err(err, cfg_get(node, "md5"), "md5 of '%s' must be 32 hex digits, got "
                         "\"%s\"", p.name, p.md5);
    }
    if ((rc = get_bytes(node, "size", 1, 1, &f->size, err)) ||
        (rc = get_bytes(node, "approx_size", 0, 0, &f->approx_size, err)) ||
        (rc = get_strings(node, "urls", 0, &f->urls, &f->n_urls, err))) {
        return rc;
    }
    for (size_t i = 0; i < f->n_urls; i++) {
        if (!url_ok(f->urls[i])) {
            return where_err(err, cfg_at(cfg_get(node, "urls"), i), "'%s': only http:// and "
                             "https:// URLs are allowed (got \"%s\")", p.name, f->urls[i]);
        }
    }
    /* Lowercase copies live in the tree's scalars; cast is safe: the tree is ours. */
    if (p.sha256) {
        lower((char *)p.sha256);
    }
    if (p.md5) {
        lower((char *)p.md5);
    }
    f->sha256 = p.sha256;
    f->md5 = p.md5;
    if (p.extract_to && !f->extract) {
        return where_err(err, cfg_get(node, "extract_to"), "'%s': extract_to without "
                         "extract: true%s", p.name, "");
    }
    if (f->extract) {
        f->extract_to = p.extract_to ? mpsl_strdup(p.extract_to) : strip_archive_ext(p.name);
        if (!f->extract_to) {
            return mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
        }
        if (!plain_name_ok(f->extract_to, why, sizeof why)) {
            return where_err(err, cfg_get(node, p.extract_to ? "extract_to" : "name"),
                             "extract_to '%s' %s", f->extract_to, why);
        }
    }
    return MPSL_OK;
}

/* ---------------------------------------------------------------- the manifest */

static int stem_of(const char *path, char *out, size_t size)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t len = strlen(base);
    if (len > 5 && strcmp(base + len - 5, ".yaml") == 0) {
        len -= 5;
    } else if (len > 4 && strcmp(base + len - 4, ".yml") == 0) {
        len -= 4;
    }
    if (len >= size) {
        return 0;
    }
    memcpy(out, base, len);
    out[len] = '\0';
    return 1;
}

static int name_chars_ok(const char *s)
{
    return s[0] && strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") ==
                       strlen(s);
}

void fetch_manifest_free(fetch_manifest *m)
{
    if (!m) {
        return;
    }
    for (size_t i = 0; m->files && i < m->n_files; i++) {
        free(m->files[i].urls);
        free(m->files[i].extract_to);
    }
    free(m->files);
    free(m->modalities);
    free(m->classes);
    free(m->path);
    cfg_free(m->root);
    memset(m, 0, sizeof *m);
}

static int validate(fetch_manifest *m, const cfg_node *root, mpsl_error *err)
{
    char w[512], stem[256];
    if (!stem_of(m->path, stem, sizeof stem) || strcmp(stem, m->name) != 0) {
        return where_err(err, cfg_get(root, "name"), "name '%s' must match the file name "
                         "('%s.yaml')", m->name, stem);
    }
    if (!name_chars_ok(m->name)) {
        return where_err(err, cfg_get(root, "name"), "name '%s' may only use letters, digits, "
                         "'_' and '-'%s", m->name, "");
    }
    int any_null_sha = 0, any_manual = 0, any_extract = 0;
    for (size_t i = 0; i < m->n_files; i++) {
        const fetch_file *f = &m->files[i];
        any_null_sha |= !f->sha256;
        any_manual |= f->n_urls == 0;
        any_extract |= f->extract;
        const cfg_node *fn = cfg_at(cfg_get(root, "files"), i);
        for (size_t j = 0; j < m->n_files; j++) {
            const fetch_file *g = &m->files[j];
            int clash = (j < i && strcmp(f->name, g->name) == 0) ||
                        (f->extract_to && (strcmp(f->extract_to, g->name) == 0 ||
                                           (j < i && g->extract_to &&
                                            strcmp(f->extract_to, g->extract_to) == 0)));
            if (clash) {
                return mpsl_errs(err, MPSL_ERR_INVALID, "%s: file '%s' clashes with file '%s' "
                                 "(names and extract_to directories must all differ)",
                                 cfg_where(fn, w, sizeof w), f->name, g->name);
            }
        }
    }
    if (any_null_sha && !m->checksum_note) {
        return mpsl_errs(err, MPSL_ERR_INVALID, "%s: some files have sha256: null; add a "
                         "checksum_note saying why (the first verified download records the "
                         "checksum in NAME.sha256.lock)", cfg_where(root, w, sizeof w));
    }
    if ((any_manual || m->login_required) && !m->manual_instructions) {
        return mpsl_errs(err, MPSL_ERR_INVALID, "%s: %s: add manual_instructions saying where to "
                         "get the files and where to put them", cfg_where(root, w, sizeof w),
                         m->login_required ? "login_required is true"
                                           : "some files have no urls");
    }
    if (any_extract && (m->max_extracted_bytes <= 0 || m->max_entries <= 0)) {
        return mpsl_errs(err, MPSL_ERR_INVALID, "%s: files with extract: true need both "
                         "max_extracted_bytes and max_entries (limits on each archive)",
                         cfg_where(root, w, sizeof w));
    }
    return MPSL_OK;
}

int fetch_manifest_load(const char *path, fetch_manifest *m, mpsl_error *err)
{
    memset(m, 0, sizeof *m);
    m->path = mpsl_strdup(path);
    m->root = cfg_load_file(path, NULL, err);
    if (!m->path || !m->root) {
        fetch_manifest_free(m);
        return MPSL_ERR_INVALID;
    }
    const cfg_node *root = m->root;
    char w[512];
    if (cfg_node_type(root) != CFG_MAP) {
        int rc = mpsl_errs(err, MPSL_ERR_INVALID, "%s: a manifest is a mapping (name:, files: "
                           "...)", cfg_where(root, w, sizeof w));
        fetch_manifest_free(m);
        return rc;
    }
    top_params p;
    int rc = check_keys(root, top_spec, MPSL_COUNT(top_spec), top_lists, "a manifest", err);
    if (rc == MPSL_OK) {
        rc = cfg_parse_params(root, top_spec, MPSL_COUNT(top_spec), &p, sizeof p, "the manifest",
                              top_lists, err);
    }
    if (rc == MPSL_OK) {
        m->name = p.name;
        m->description = p.description;
        m->license = p.license;
        m->homepage = p.homepage;
        m->task = p.task;
        m->used_by = p.used_by;
        m->manual_instructions = p.manual_instructions;
        m->checksum_note = p.checksum_note;
        m->notes = p.notes;
        m->citation = p.citation;
        m->login_required = p.login_required;
        m->max_extracted_bytes = p.max_extracted_bytes;
        m->max_entries = p.max_entries;
        rc = get_strings(root, "modalities", 1, &m->modalities, &m->n_modalities, err);
    }
    if (rc == MPSL_OK) {
        rc = get_strings(root, "classes", 0, &m->classes, &m->n_classes, err);
    }
    const cfg_node *files = cfg_get(root, "files");
    if (rc == MPSL_OK && (!files || cfg_node_type(files) != CFG_SEQ || cfg_len(files) == 0)) {
        rc = mpsl_errs(err, MPSL_ERR_INVALID, "%s: 'files' must be a non-empty list of file "
                       "entries", cfg_where(files ? files : root, w, sizeof w));
    }
    if (rc == MPSL_OK) {
        m->n_files = cfg_len(files);
        m->files = calloc(m->n_files, sizeof *m->files);
        if (!m->files) {
            rc = mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
        }
        for (size_t i = 0; rc == MPSL_OK && i < m->n_files; i++) {
            rc = load_file(cfg_at(files, i), &m->files[i], err);
        }
    }
    if (rc == MPSL_OK) {
        rc = validate(m, root, err);
    }
    if (rc != MPSL_OK) {
        fetch_manifest_free(m);
    }
    return rc;
}

/* ---------------------------------------------------------------- search path */

/* NULL-terminated list of malloc'd directories, in search order. */
static char **search_dirs(void)
{
    char **dirs = calloc(64, sizeof *dirs);
    if (!dirs) {
        return NULL;
    }
    size_t n = 0;
    const char *env = getenv("MPSL_DATASETS_PATH");
    if (env && *env) {
        char *copy = mpsl_strdup(env), *save = NULL;
        for (char *tok = copy ? strtok_r(copy, ":", &save) : NULL; tok && n < 59;
             tok = strtok_r(NULL, ":", &save)) {
            dirs[n++] = mpsl_strdup(tok);
        }
        free(copy);
    }
    dirs[n++] = mpsl_strdup("datasets");
    dirs[n++] = mpsl_strdup(MPSL_SOURCE_ROOT "/datasets");
    dirs[n++] = mpsl_strdup(MPSL_CONFIGS_INSTALL_DIR "/../datasets");
    return dirs;
}

static void free_dirs(char **dirs)
{
    for (char **d = dirs; d && *d; d++) {
        free(*d);
    }
    free(dirs);
}

void fetch_free_strings(char **v, size_t n)
{
    for (size_t i = 0; v && i < n; i++) {
        free(v[i]);
    }
    free(v);
}

static int cmp_base(const void *a, const void *b)
{
    const char *x = *(const char *const *)a, *y = *(const char *const *)b;
    const char *bx = strrchr(x, '/'), *by = strrchr(y, '/');
    return strcmp(bx ? bx + 1 : x, by ? by + 1 : y);
}

char **fetch_manifest_all(size_t *n_out)
{
    char **dirs = search_dirs();
    char **out = NULL;
    size_t n = 0, cap = 0;
    for (char **d = dirs; d && *d; d++) {
        DIR *dh = opendir(*d);
        if (!dh) {
            continue;
        }
        struct dirent *e;
        while ((e = readdir(dh))) {
            size_t len = strlen(e->d_name);
            if (e->d_name[0] == '.' || len <= 5 || strcmp(e->d_name + len - 5, ".yaml") != 0) {
                continue;
            }
            int seen = 0;
            for (size_t i = 0; i < n && !seen; i++) {
                const char *b = strrchr(out[i], '/');
                seen = strcmp(b ? b + 1 : out[i], e->d_name) == 0;
            }
            if (seen) {
                continue;
            }
            if (n == cap) {
                cap = cap ? 2 * cap : 16;
                char **grown = realloc(out, cap * sizeof *out);
                if (!grown) {
                    break;
                }
                out = grown;
            }
            char *p = mpsl_strfmt("%s/%s", *d, e->d_name);
            if (p) {
                out[n++] = p;
            }
        }
        closedir(dh);
    }
    free_dirs(dirs);
    if (n > 1) {
        qsort(out, n, sizeof *out, cmp_base);
    }
    *n_out = n;
    return out;
}

char *fetch_manifest_find(const char *name, mpsl_error *err)
{
    size_t len = strlen(name);
    struct stat st;
    if (strchr(name, '/') || (len > 5 && strcmp(name + len - 5, ".yaml") == 0)) {
        if (stat(name, &st) != 0) {
            mpsl_errs(err, MPSL_ERR_IO, "cannot read manifest %s: %s", name, strerror(errno));
            return NULL;
        }
        return mpsl_strdup(name);
    }
    if (!name_chars_ok(name)) {
        mpsl_errs(err, MPSL_ERR_INVALID, "'%s' is not a dataset name (letters, digits, '_' and "
                  "'-'; or give a path to a .yaml manifest)", name);
        return NULL;
    }
    char **dirs = search_dirs();
    char *found = NULL;
    for (char **d = dirs; d && *d && !found; d++) {
        char *p = mpsl_strfmt("%s/%s.yaml", *d, name);
        if (p && stat(p, &st) == 0) {
            found = p;
        } else {
            free(p);
        }
    }
    free_dirs(dirs);
    if (found) {
        return found;
    }
    size_t n = 0;
    char **all = fetch_manifest_all(&n);
    char names[640] = "";
    size_t used = 0;
    const char *cands[128];
    size_t nc = 0;
    char stems[128][64];
    for (size_t i = 0; i < n && nc < 128; i++) {
        if (stem_of(all[i], stems[nc], sizeof stems[nc])) {
            cands[nc] = stems[nc];
            if (used + strlen(stems[nc]) + 3 < sizeof names) {
                used += (size_t)snprintf(names + used, sizeof names - used, "%s%s",
                                         nc ? ", " : "", stems[nc]);
            }
            nc++;
        }
    }
    const char *best = cfg_did_you_mean(name, cands, nc);
    mpsl_errs(err, MPSL_ERR_INVALID, "no manifest for dataset '%s'%s%s%s (known: %s; search "
              "path: $MPSL_DATASETS_PATH, ./datasets, %s/datasets)", name,
              best ? "; did you mean '" : "", best ? best : "", best ? "'?" : "",
              nc ? names : "none", MPSL_SOURCE_ROOT);
    fetch_free_strings(all, n);
    return NULL;
}
