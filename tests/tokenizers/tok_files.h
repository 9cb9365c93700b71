/* tok_files.h: temporary files for the text tokenizer tests: a private folder, plain and
 * gzip-compressed writes, reading a fixture, a CLIP-sized merges file. */
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

/* A CLIP-sized merges file: 48894 distinct merges (as many as CLIP reads, so the tables are
 * as large as CLIP's, 3.3 MB), each joining an earlier token (or a letter) with a letter or
 * a letter + "</w>", breadth first: "a a", "a a</w>", "a b", ..., "aa a", ... */
static inline void write_clip_sized(const char *path)
{
    enum { MERGES = 48894, MAX_TOK = 8 };   // MERGES: CLIP_BPE_MAX_MERGES in clip_bpe.h
    char (*tok)[MAX_TOK] = calloc(MERGES + 26, MAX_TOK);
    char *text = malloc((size_t)MERGES * 24 + 64);
    if (!tok || !text) {
        abort();
    }
    size_t len = (size_t)sprintf(text, "#version: 0.2\n");
    int64_t n_tok = 0, merges = 0;
    for (char c = 'a'; c <= 'z'; c++) {
        tok[n_tok++][0] = c;
    }
    for (int64_t base = 0; merges < MERGES; base++) {
        for (char c = 'a'; c <= 'z' && merges < MERGES; c++) {
            for (int end = 0; end < 2 && merges < MERGES; end++, merges++) {
                len += (size_t)sprintf(text + len, "%s %c%s\n", tok[base], c, end ? "</w>" : "");
                size_t l = strlen(tok[base]);
                if (!end && l + 1 < MAX_TOK) {   // a new token: tok[base] + c
                    memcpy(tok[n_tok], tok[base], l);
                    tok[n_tok++][l] = c;         // calloc'd: still NUL-terminated
                }
            }
        }
    }
    write_gz(path, text, len);
    free(text);
    free(tok);
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
