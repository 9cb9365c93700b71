/* weights_test.h: helpers the weights tests share: a scratch directory removed at exit and
 * crafted safetensors files (size field, header text and data written as given). */
#ifndef MPSL_WEIGHTS_TEST_H
#define MPSL_WEIGHTS_TEST_H

#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char wt_dir[64];

static inline int wt_rm(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static inline void wt_cleanup(void)
{
    if (wt_dir[0] && !getenv("MPSL_KEEP_TEST_FILES")) {
        nftw(wt_dir, wt_rm, 16, FTW_DEPTH | FTW_PHYS);
    }
}

/* Make the scratch directory (removed at exit unless MPSL_KEEP_TEST_FILES is set). */
static inline void wt_setup(void)
{
    strcpy(wt_dir, "/tmp/mpsl-weights-XXXXXX");
    if (!mkdtemp(wt_dir)) {
        perror("mkdtemp");
        exit(1);
    }
    atexit(wt_cleanup);
}

/* A path in the scratch directory; rotates among 8 static buffers. */
static inline const char *wt_path(const char *name)
{
    static char bufs[8][256];
    static int next;
    char *b = bufs[next++ % 8];
    snprintf(b, sizeof bufs[0], "%s/%s", wt_dir, name);
    return b;
}

/* Write [u64 hsize][header bytes][data_len bytes of data (or a counting pattern if NULL)]. */
static inline void wt_write_raw(const char *path, uint64_t hsize, const void *header,
                                size_t hlen, const void *data, size_t data_len)
{
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        exit(1);
    }
    uint8_t size[8];
    for (int i = 0; i < 8; i++) {
        size[i] = (uint8_t)(hsize >> (8 * i));
    }
    fwrite(size, 1, 8, f);
    fwrite(header, 1, hlen, f);
    for (size_t i = 0; i < data_len; i++) {
        fputc(data ? ((const uint8_t *)data)[i] : (int)(i & 0xff), f);
    }
    fclose(f);
}

/* A well-formed crafted file: the size field matches the header. */
static inline void wt_write_json(const char *path, const char *json, const void *data,
                                 size_t data_len)
{
    wt_write_raw(path, strlen(json), json, strlen(json), data, data_len);
}

#endif
