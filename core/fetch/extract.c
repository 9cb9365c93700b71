/* extract.c: unpacking downloaded archives with libarchive, refusing what could write outside
 * the target or exhaust the disk: absolute paths, '..' components, symlinks whose target leaves
 * the tree, hard links to unsafe paths, devices/fifos/sockets, and archives that expand beyond
 * the manifest's byte or entry limits (counted while writing, so zip bombs stop early).
 * libarchive's own SECURE_* flags stay on underneath these checks. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "fetch_internal.h"
#include "util/util.h"

int fetch_entry_path_safe(const char *path, char *why, size_t why_size)
{
    if (!path || !path[0]) {
        snprintf(why, why_size, "an entry without a name");
        return 0;
    }
    if (path[0] == '/') {
        snprintf(why, why_size, "an absolute path");
        return 0;
    }
    /* Every component: '..' is refused, '.' and empty ones (a//b, trailing '/') are harmless. */
    for (const char *p = path; *p;) {
        size_t n = strcspn(p, "/");
        if (n == 2 && p[0] == '.' && p[1] == '.') {
            snprintf(why, why_size, "a '..' component");
            return 0;
        }
        p += n;
        p += *p == '/';
    }
    return 1;
}

/* Number of directories above the entry inside the root: "a/b/c" -> 2, "a" -> 0 ('.' and
 * empty components do not count). */
static int parent_depth(const char *path)
{
    int depth = 0;
    for (const char *p = path; *p;) {
        size_t n = strcspn(p, "/");
        int real = n > 0 && !(n == 1 && p[0] == '.');
        p += n;
        while (*p == '/') {
            p++;
        }
        if (real && *p) {
            depth++; /* a component followed by more: a parent directory */
        }
    }
    return depth;
}

int fetch_symlink_safe(const char *path, const char *target, char *why, size_t why_size)
{
    if (!fetch_entry_path_safe(path, why, why_size)) {
        return 0;
    }
    if (!target || !target[0]) {
        snprintf(why, why_size, "a symlink with an empty target");
        return 0;
    }
    if (target[0] == '/') {
        snprintf(why, why_size, "a symlink to an absolute path (%s)", target);
        return 0;
    }
    /* '..' only at the start: the climb then goes through real directories (entries are never
     * written through symlinks), and everything after it descends. A '..' after a name could
     * climb out of a symlinked directory, which a lexical check cannot see. */
    int ups = 0, seen_name = 0;
    for (const char *p = target; *p;) {
        size_t n = strcspn(p, "/");
        if (n == 2 && p[0] == '.' && p[1] == '.') {
            if (seen_name) {
                snprintf(why, why_size, "a symlink whose target has '..' after a name (%s)",
                         target);
                return 0;
            }
            ups++;
        } else if (n > 0 && !(n == 1 && p[0] == '.')) {
            seen_name = 1;
        }
        p += n;
        p += *p == '/';
    }
    if (ups > parent_depth(path)) {
        snprintf(why, why_size, "a symlink that points outside the extraction directory (%s)",
                 target);
        return 0;
    }
    return 1;
}

static int enable_formats(struct archive *a, fetch_format f)
{
    int ok = ARCHIVE_OK;
    switch (f) {
    case FETCH_FMT_TAR:
        ok |= archive_read_support_format_tar(a) | archive_read_support_format_gnutar(a);
        break;
    case FETCH_FMT_TAR_GZ:
        ok |= archive_read_support_format_tar(a) | archive_read_support_format_gnutar(a) |
              archive_read_support_filter_gzip(a);
        break;
    case FETCH_FMT_TAR_BZ2:
        ok |= archive_read_support_format_tar(a) | archive_read_support_format_gnutar(a) |
              archive_read_support_filter_bzip2(a);
        break;
    case FETCH_FMT_TAR_XZ:
        ok |= archive_read_support_format_tar(a) | archive_read_support_format_gnutar(a) |
              archive_read_support_filter_xz(a);
        break;
    case FETCH_FMT_ZIP:
        ok |= archive_read_support_format_zip(a);
        break;
    case FETCH_FMT_RAR:
        ok |= archive_read_support_format_rar(a) | archive_read_support_format_rar5(a);
        break;
    case FETCH_FMT_7Z:
        ok |= archive_read_support_format_7zip(a);
        break;
    default:
        /* A short list on purpose (no iso9660, cab, mtree...): fewer parsers, less surface. */
        ok |= archive_read_support_format_tar(a) | archive_read_support_format_gnutar(a) |
              archive_read_support_format_zip(a) | archive_read_support_format_rar(a) |
              archive_read_support_format_rar5(a) | archive_read_support_format_7zip(a);
        archive_read_support_filter_all(a); /* WARN for filters that need an external program */
        break;
    }
    return ok;
}

/* The checks of one entry before it is written; 0 with why when refused. */
static int entry_allowed(struct archive_entry *e, char *why, size_t why_size)
{
    const char *path = archive_entry_pathname(e);
    if (!fetch_entry_path_safe(path, why, why_size)) {
        return 0;
    }
    const char *hard = archive_entry_hardlink(e);
    if (hard) {
        char inner[128];
        if (!fetch_entry_path_safe(hard, inner, sizeof inner)) {
            snprintf(why, why_size, "a hard link to %s (%.200s)", inner, hard);
            return 0;
        }
        return 1;
    }
    switch (archive_entry_filetype(e)) {
    case AE_IFREG:
    case AE_IFDIR:
        return 1;
    case AE_IFLNK:
        return fetch_symlink_safe(path, archive_entry_symlink(e), why, why_size);
    case AE_IFCHR:
    case AE_IFBLK:
        snprintf(why, why_size, "a device node");
        return 0;
    case AE_IFIFO:
        snprintf(why, why_size, "a fifo");
        return 0;
    case AE_IFSOCK:
        snprintf(why, why_size, "a socket");
        return 0;
    default:
        snprintf(why, why_size, "an entry of unknown type");
        return 0;
    }
}

static int extract_entries(struct archive *a, struct archive *w, const char *archive,
                           int64_t max_bytes, int64_t max_entries, fx_extract_stats *st,
                           mpsl_error *err)
{
    char why[512];
    for (;;) {
        struct archive_entry *e;
        int r = archive_read_next_header(a, &e);
        if (r == ARCHIVE_EOF) {
            return MPSL_OK;
        }
        if (r < ARCHIVE_WARN) {
            return mpsl_errs(err, MPSL_ERR_IO, "%s: cannot read entry %lld: %s", archive,
                             (long long)st->entries + 1, archive_error_string(a));
        }
        const char *name = archive_entry_pathname(e);
        if (++st->entries > max_entries) {
            return mpsl_errs(err, MPSL_ERR_IO,
                             "%s: refused: more than max_entries = %lld entries", archive,
                             (long long)max_entries);
        }
        if (!entry_allowed(e, why, sizeof why)) {
            return mpsl_errs(err, MPSL_ERR_IO, "%s: refused entry '%s': %s", archive,
                             name ? name : "(no name)", why);
        }
        /* No setuid/setgid/sticky bits; the owner can always write (and so remove) the tree. */
        mode_t perm = archive_entry_perm(e) & 0777;
        archive_entry_set_perm(e, perm | (archive_entry_filetype(e) == AE_IFDIR ? 0700 : 0600));
        if (archive_entry_size_is_set(e) && archive_entry_size(e) > max_bytes - st->bytes) {
            return mpsl_errs(err, MPSL_ERR_IO,
                             "%s: refused: entry '%s' (%lld bytes) would expand the archive "
                             "beyond max_extracted_bytes = %lld",
                             archive, name, (long long)archive_entry_size(e),
                             (long long)max_bytes);
        }
        r = archive_write_header(w, e);
        if (r < ARCHIVE_WARN) {
            return mpsl_errs(err, MPSL_ERR_IO, "%s: cannot create '%s': %s", archive, name,
                             archive_error_string(w));
        }
        if (archive_entry_size(e) > 0 || !archive_entry_size_is_set(e)) {
            for (;;) {
                const void *buf;
                size_t size;
                la_int64_t offset;
                r = archive_read_data_block(a, &buf, &size, &offset);
                if (r == ARCHIVE_EOF) {
                    break;
                }
                if (r < ARCHIVE_WARN) {
                    return mpsl_errs(err, MPSL_ERR_IO, "%s: cannot read '%s': %s", archive,
                                     name, archive_error_string(a));
                }
                st->bytes += (int64_t)size;
                if (st->bytes > max_bytes) {
                    return mpsl_errs(err, MPSL_ERR_IO,
                                     "%s: refused: expands beyond max_extracted_bytes = %lld "
                                     "(at entry '%s')",
                                     archive, (long long)max_bytes, name);
                }
                if (archive_write_data_block(w, buf, size, offset) < ARCHIVE_WARN) {
                    return mpsl_errs(err, MPSL_ERR_IO, "%s: cannot write '%s': %s", archive,
                                     name, archive_error_string(w));
                }
            }
        }
        r = archive_write_finish_entry(w);
        if (r < ARCHIVE_WARN) {
            return mpsl_errs(err, MPSL_ERR_IO, "%s: cannot finish '%s': %s", archive, name,
                             archive_error_string(w));
        }
    }
}

int fx_extract(const char *archive, const char *dest, fetch_format format, int64_t max_bytes,
               int64_t max_entries, fx_extract_stats *st, mpsl_error *err)
{
    st->entries = 0;
    st->bytes = 0;
    struct archive *a = archive_read_new();
    struct archive *w = archive_write_disk_new();
    int saved_cwd = -1, rc = MPSL_OK;
    if (!a || !w) {
        rc = mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
        goto done;
    }
    enable_formats(a, format);
    archive_write_disk_set_options(w, ARCHIVE_EXTRACT_SECURE_NODOTDOT |
                                          ARCHIVE_EXTRACT_SECURE_SYMLINKS |
                                          ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS |
                                          ARCHIVE_EXTRACT_TIME);
    if (archive_read_open_filename(a, archive, 1 << 16) != ARCHIVE_OK) {
        rc = mpsl_errs(err, MPSL_ERR_IO, "%s: cannot open as an archive%s: %s", archive,
                       format == FETCH_FMT_AUTO ? "" : " of the manifest's format",
                       archive_error_string(a));
        goto done;
    }
    /* archive_write_disk works relative to the working directory; entries are relative. */
    saved_cwd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (saved_cwd < 0 || chdir(dest) != 0) {
        rc = mpsl_errs(err, MPSL_ERR_IO, "cannot enter %s: %s", dest, strerror(errno));
        goto done;
    }
    rc = extract_entries(a, w, archive, max_bytes, max_entries, st, err);
    if (rc == MPSL_OK && archive_write_close(w) != ARCHIVE_OK) {
        rc = mpsl_errs(err, MPSL_ERR_IO, "%s: cannot finish extraction: %s", archive,
                       archive_error_string(w));
    }
done:
    if (saved_cwd >= 0) {
        if (fchdir(saved_cwd) != 0 && rc == MPSL_OK) {
            rc = mpsl_errs(err, MPSL_ERR_IO, "cannot return to the working directory: %s",
                           strerror(errno));
        }
        close(saved_cwd);
    }
    if (w) {
        archive_write_free(w);
    }
    if (a) {
        archive_read_free(a);
    }
    return rc;
}
