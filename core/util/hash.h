/* hash.h: a checksum and a name hash for files (h->files): zlib's CRC-32 and 64-bit FNV-1a. */
#ifndef MPSL_UTIL_HASH_H
#define MPSL_UTIL_HASH_H

#include <stddef.h>
#include <stdint.h>

/* CRC-32 as zlib's crc32(): continue from crc (0 to start) over n bytes. */
uint32_t mpsl_crc32(uint32_t crc, const void *data, size_t n);
/* 64-bit FNV-1a of n bytes: stable short names for sets of settings (cache files). */
uint64_t mpsl_fnv1a64(const void *data, size_t n);

#endif
