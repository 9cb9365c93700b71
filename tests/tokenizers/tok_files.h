/* tok_files.h: temporary files for the text tokenizer tests: a private folder, plain and
 * gzip-compressed writes, reading a fixture. */
#ifndef MPSL_TOK_FILES_H
#define MPSL_TOK_FILES_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

static char g_tmpdir[64];

/* A fresh folder under $TMPDIR (or /tmp) for this test run; aborts if it cannot be made. */
static void tmp_init(void)
{
    const char *base = getenv("TMPDIR");
    snprintf(g_tmpdir, sizeof g_tmpdir, "%s/mpsl-tok-XXXXXX",
             base && *base && strlen(base) < 40 ? base : "/tmp");
    if (!mkdtemp(g_tmpdir)) {
        perror("mkdtemp");
        abort();
    }
}

/* path = folder/name (static buffer per call site is the caller's). */
static void tmp_path(char *path, size_t n, const char *name)
{
    snprintf(path, n, "%s/%s", g_tmpdir, name);
}

static void write_plain(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, n, f) != n || fclose(f) != 0) {
        perror(path);
        abort();
    }
}

static void write_gz(const char *path, const void *data, size_t n)
{
    gzFile g = gzopen(path, "wb9");
    if (!g || (n && gzwrite(g, data, (unsigned)n) != (int)n) || gzclose(g) != Z_OK) {
        fprintf(stderr, "cannot write %s\n", path);
        abort();
    }
}

/* The whole file as a NUL-terminated buffer (malloc'd); aborts on failure. */
static char *read_all(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        abort();
    }
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += got;
        if (len + 1 == cap) {
            buf = realloc(buf, cap *= 2);
        }
    }
    fclose(f);
    if (!buf) {
        abort();
    }
    buf[len] = '\0';
    *n = len;
    return buf;
}

/* Remove the files the test made (names listed by the caller) and the folder. */
static void tmp_cleanup(const char *const *names, size_t n)
{
    char path[128];
    for (size_t i = 0; i < n; i++) {
        tmp_path(path, sizeof path, names[i]);
        unlink(path);
    }
    rmdir(g_tmpdir);
}

#endif
