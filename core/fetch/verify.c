/* verify.c: checksums with OpenSSL's EVP (sha256, md5), the NAME.sha256.lock files that record
 * a checksum the manifest does not publish, and the .NAME.verified stamps that let a second
 * fetch or a listing skip re-hashing a file that has not changed since it was verified. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "fetch_internal.h"
#include "util/util.h"

int fx_is_hex(const char *text, size_t n)
{
    if (!text || strlen(text) != n) {
        return 0;
    }
    return strspn(text, "0123456789abcdefABCDEF") == n;
}

static void to_hex(const unsigned char *d, unsigned n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (unsigned i = 0; i < n; i++) {
        out[2 * i] = digits[d[i] >> 4];
        out[2 * i + 1] = digits[d[i] & 15];
    }
    out[2 * n] = '\0';
}

int fx_hash_file(const char *path, char sha256_hex[65], char md5_hex[33], int64_t *size,
                 mpsl_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return mpsl_errs(err, MPSL_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    }
    EVP_MD_CTX *sha = EVP_MD_CTX_new(), *md5 = md5_hex ? EVP_MD_CTX_new() : NULL;
    size_t buf_size = 1 << 20;
    unsigned char *buf = malloc(buf_size);
    int rc = MPSL_OK;
    if (!sha || (md5_hex && !md5) || !buf || !EVP_DigestInit_ex(sha, EVP_sha256(), NULL) ||
        (md5 && !EVP_DigestInit_ex(md5, EVP_md5(), NULL))) {
        rc = mpsl_errs(err, MPSL_ERR_NOMEM, "cannot set up hashing for %s", path);
        goto done;
    }
    int64_t total = 0;
    for (;;) {
        ssize_t n = read(fd, buf, buf_size);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            rc = mpsl_errs(err, MPSL_ERR_IO, "cannot read %s: %s", path, strerror(errno));
            goto done;
        }
        if (n == 0) {
            break;
        }
        EVP_DigestUpdate(sha, buf, (size_t)n);
        if (md5) {
            EVP_DigestUpdate(md5, buf, (size_t)n);
        }
        total += n;
    }
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned dn = 0;
    EVP_DigestFinal_ex(sha, d, &dn);
    to_hex(d, dn, sha256_hex);
    if (md5) {
        EVP_DigestFinal_ex(md5, d, &dn);
        to_hex(d, dn, md5_hex);
    }
    if (size) {
        *size = total;
    }
done:
    free(buf);
    EVP_MD_CTX_free(sha);
    EVP_MD_CTX_free(md5);
    close(fd);
    return rc;
}

void fx_sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

int fx_write_atomic(const char *path, const char *text, mpsl_error *err)
{
    char *tmp = mpsl_strfmt("%s.tmp.%ld", path, (long)getpid());
    if (!tmp) {
        return mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    int rc = MPSL_OK;
    if (fd < 0) {
        rc = mpsl_errs(err, MPSL_ERR_IO, "cannot create %s: %s", tmp, strerror(errno));
        free(tmp);
        return rc;
    }
    size_t len = strlen(text), done = 0;
    while (done < len) {
        ssize_t w = write(fd, text + done, len - done);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            rc = mpsl_errs(err, MPSL_ERR_IO, "cannot write %s: %s", tmp,
                           strerror(w < 0 ? errno : EIO));
            break;
        }
        done += (size_t)w;
    }
    if (rc == MPSL_OK && fsync(fd) != 0) {
        rc = mpsl_errs(err, MPSL_ERR_IO, "cannot sync %s: %s", tmp, strerror(errno));
    }
    close(fd);
    if (rc == MPSL_OK && rename(tmp, path) != 0) {
        rc = mpsl_errs(err, MPSL_ERR_IO, "cannot rename %s to %s: %s", tmp, path,
                       strerror(errno));
    }
    if (rc != MPSL_OK) {
        unlink(tmp);
    }
    free(tmp);
    return rc;
}

/* The first line of a small file, or NULL. */
static char *read_small(const char *path)
{
    FILE *f = fopen(path, "re");
    if (!f) {
        return NULL;
    }
    char line[512];
    char *r = fgets(line, sizeof line, f) ? mpsl_strdup(line) : NULL;
    fclose(f);
    return r;
}

int fx_lock_read(const char *dir, const char *name, char sha256_hex[65], mpsl_error *err)
{
    char *path = mpsl_strfmt("%s/%s.sha256.lock", dir, name);
    if (!path) {
        return mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
    }
    struct stat st;
    if (lstat(path, &st) != 0) {
        free(path);
        return 0;
    }
    char *line = read_small(path);
    /* "<64 hex>  NAME" as sha256sum writes it. */
    int ok = line && strlen(line) >= 64 && strspn(line, "0123456789abcdef") == 64 &&
             (line[64] == ' ' || line[64] == '\n' || line[64] == '\0');
    int rc = 1;
    if (ok) {
        memcpy(sha256_hex, line, 64);
        sha256_hex[64] = '\0';
    } else {
        rc = mpsl_errs(err, MPSL_ERR_IO,
                       "%s is not a checksum lock (expected '<sha256>  %s'); delete it to record "
                       "the checksum again on the next verified download", path, name);
    }
    free(line);
    free(path);
    return rc;
}

int fx_lock_write(const char *dir, const char *name, const char *sha256_hex, mpsl_error *err)
{
    char *path = mpsl_strfmt("%s/%s.sha256.lock", dir, name);
    char *text = mpsl_strfmt("%s  %s\n", sha256_hex, name);
    int rc = path && text ? fx_write_atomic(path, text, err)
                          : mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
    free(path);
    free(text);
    return rc;
}

static char *stamp_path(const char *dir, const char *name)
{
    return mpsl_strfmt("%s/.%s.verified", dir, name);
}

int fx_stamp_current(const char *dir, const char *name, const struct stat *st,
                     const char *sha256_hex, char out_sha[65])
{
    char *path = stamp_path(dir, name);
    char *line = path ? read_small(path) : NULL;
    free(path);
    if (!line) {
        return 0;
    }
    char sha[65];
    long long size, sec, nsec;
    unsigned long long ino, dev;
    int n = sscanf(line, "mpsl-verified-v1 %64s %lld %lld %lld %llu %llu", sha, &size, &sec,
                   &nsec, &ino, &dev);
    free(line);
    if (n != 6 || !fx_is_hex(sha, 64)) {
        return 0;
    }
    int current = size == (long long)st->st_size && sec == (long long)st->st_mtim.tv_sec &&
                  nsec == (long long)st->st_mtim.tv_nsec && ino == (unsigned long long)st->st_ino &&
                  dev == (unsigned long long)st->st_dev &&
                  (!sha256_hex || strcmp(sha, sha256_hex) == 0);
    if (current && out_sha) {
        memcpy(out_sha, sha, 65);
    }
    return current;
}

int fx_stamp_write(const char *dir, const char *name, const char *sha256_hex, mpsl_error *err)
{
    char *file = mpsl_strfmt("%s/%s", dir, name);
    char *path = stamp_path(dir, name);
    struct stat st;
    int rc;
    if (!file || !path) {
        rc = mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
    } else if (stat(file, &st) != 0) {
        rc = mpsl_errs(err, MPSL_ERR_IO, "cannot stat %s: %s", file, strerror(errno));
    } else {
        char text[256];
        snprintf(text, sizeof text, "mpsl-verified-v1 %s %lld %lld %lld %llu %llu\n", sha256_hex,
                 (long long)st.st_size, (long long)st.st_mtim.tv_sec,
                 (long long)st.st_mtim.tv_nsec, (unsigned long long)st.st_ino,
                 (unsigned long long)st.st_dev);
        rc = fx_write_atomic(path, text, err);
    }
    free(file);
    free(path);
    return rc;
}

void fx_stamp_remove(const char *dir, const char *name)
{
    char *path = stamp_path(dir, name);
    if (path) {
        unlink(path);
    }
    free(path);
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    return (flag == FTW_DP ? rmdir(path) : unlink(path)) != 0 && errno != ENOENT;
}

int fx_remove_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0) {
        return errno == ENOENT ? 0 : -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        return unlink(path);
    }
    return nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS) == 0 ? 0 : -1;
}
