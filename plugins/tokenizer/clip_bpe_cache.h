/* clip_bpe_cache.h: one read-only copy of CLIP's BPE tables per merges file and process.
 * Every client of an MPSL or FedAvg run has its own text tokenizer; with private tables
 * 100 clients held 100 identical 3.3 MB copies. Here the tables are loaded once per file
 * and reference-counted; each tokenizer keeps only its clip_bpe_scratch.
 *
 * A file is known by what stat() says of it (device, inode, size, modification time), so
 * two paths to one file share, and a file rewritten between two acquisitions is read again
 * (the earlier users keep the tables they have). A mutex guards the cache, so instances may
 * be created and destroyed from any thread; a load happens under it, so a file is never
 * read twice at once.
 *
 *     const clip_bpe *bpe;
 *     if (clip_bpe_acquire(path, &bpe, msg, sizeof msg) != MPSL_OK) { report msg }
 *     clip_bpe_scratch s = {0};
 *     n = clip_bpe_encode(bpe, &s, text, len, ids, max_ids);
 *     clip_bpe_scratch_free(&s);
 *     clip_bpe_release(bpe);                  // the last release frees the tables */
#ifndef MPSL_CLIP_BPE_CACHE_H
#define MPSL_CLIP_BPE_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "clip_bpe.h"

/* The tables of the merges file at path, shared with every other holder of the same file.
 * Returns MPSL_OK with *out set, or clip_bpe_load's status and message (the same words a
 * private load gives) with *out NULL. Release each success once with clip_bpe_release. */
int clip_bpe_acquire(const char *path, const clip_bpe **out, char *msg, size_t msg_len);

/* Gives back one acquisition of b (NULL: nothing); the last one frees the tables. */
void clip_bpe_release(const clip_bpe *b);

/* Tables held now (distinct loaded files) and acquisitions outstanding: for tests. */
int64_t clip_bpe_cache_tables(void);
int64_t clip_bpe_cache_refs(void);

#endif
