/* fetch_internal.h: the pieces fetch.c puts together: one URL to a .part file (download.c),
 * checksums, checksum locks and verification stamps (verify.c), and safe extraction
 * (extract.c). */
#ifndef MPSL_FETCH_INTERNAL_H
#define MPSL_FETCH_INTERNAL_H

#include <stdint.h>
#include <sys/stat.h>

#include "fetch.h"

/* ---------------------------------------------------------------- download.c */

/* How a download of one URL ended. */
typedef enum dl_outcome {
    DL_OK = 0,
    DL_FAILED,  /* this URL gave up (permanent error or retries used up): try the next mirror */
    DL_FATAL    /* stop everything (disk full, cannot write): no other mirror will help */
} dl_outcome;

typedef struct dl_result {
    int64_t bytes_received;   /* over all attempts */
    int64_t final_size;       /* bytes in the .part file at the end */
    int resumed;              /* 1 when the file was assembled from more than one transfer */
    double seconds;
} dl_result;

/* Download url into part_path, resuming from the bytes already there. expected_size (or -1)
 * is enforced while receiving, as is o->max_bytes when it is unknown. label names the file in
 * progress output and messages. err holds the reason for DL_FAILED and DL_FATAL. */
dl_outcome dl_fetch(const char *url, const char *part_path, const char *label,
                    int64_t expected_size, const fetch_options *o, dl_result *res,
                    mpsl_error *err);

/* Human-readable bytes ("26.4 MB") into buf; returns buf. */
const char *dl_fmt_bytes(double bytes, char *buf, size_t size);

/* ---------------------------------------------------------------- verify.c */

/* sha256 (and md5 when md5_hex is not NULL) of a file, as lowercase hex, and its size. */
int fx_hash_file(const char *path, char sha256_hex[65], char md5_hex[33], int64_t *size,
                 mpsl_error *err);
/* 1 when text is n lowercase-or-uppercase hex digits. */
int fx_is_hex(const char *text, size_t n);

/* DIR/NAME.sha256.lock (sha256sum format). read: 1 found (sha filled), 0 absent, <0 error. */
int fx_lock_read(const char *dir, const char *name, char sha256_hex[65], mpsl_error *err);
int fx_lock_write(const char *dir, const char *name, const char *sha256_hex, mpsl_error *err);

/* DIR/.NAME.verified: the sha256 a file was verified with and its size, mtime, inode and
 * device then. Current when all match st and sha256_hex (NULL: any sha). */
int fx_stamp_current(const char *dir, const char *name, const struct stat *st,
                     const char *sha256_hex, char out_sha[65]);
int fx_stamp_write(const char *dir, const char *name, const char *sha256_hex, mpsl_error *err);
void fx_stamp_remove(const char *dir, const char *name);

/* Write text to path atomically (tmp file, fsync, rename). */
int fx_write_atomic(const char *path, const char *text, mpsl_error *err);
/* fsync a directory so a rename in it is durable (errors ignored: not all filesystems can). */
void fx_sync_dir(const char *dir);
/* Remove a directory tree without following symlinks. 0 on success. */
int fx_remove_tree(const char *path);

/* ---------------------------------------------------------------- extract.c */

typedef struct fx_extract_stats {
    int64_t entries;
    int64_t bytes;
} fx_extract_stats;

/* Extract archive into the existing empty directory dest, refusing unsafe entries (see
 * fetch_entry_path_safe, fetch_symlink_safe; hard links must name safe paths; devices, fifos
 * and sockets are refused) and stopping beyond max_bytes written or max_entries entries. On
 * failure dest may hold a partial tree: the caller removes it. */
int fx_extract(const char *archive, const char *dest, fetch_format format, int64_t max_bytes,
               int64_t max_entries, fx_extract_stats *st, mpsl_error *err);

#endif
