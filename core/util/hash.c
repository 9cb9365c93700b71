/* hash.c: CRC-32 through zlib (which libmpsl links anyway, and whose crc32_z is vectorised),
 * so that plugins checking their files need not link zlib themselves; FNV-1a by hand. */
#include "util/hash.h"

#include <zlib.h>

uint32_t mpsl_crc32(uint32_t crc, const void *data, size_t n)
{
    return (uint32_t)crc32_z(crc, data, n);
}

uint64_t mpsl_fnv1a64(const void *data, size_t n)
{
    const unsigned char *p = data;
    uint64_t hash = 0xcbf29ce484222325ull; /* FNV's 64-bit offset basis */
    for (size_t i = 0; i < n; i++) {
        hash ^= p[i];
        hash *= 0x100000001b3ull;          /* FNV's 64-bit prime */
    }
    return hash;
}
