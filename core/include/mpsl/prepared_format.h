/* mpsl/prepared_format.h: the on-disk layout of a prepared dataset file, written by the
 * converters (`mpsl convert`) and read by the `prepared` dataset plugin. Plain C structs, all
 * little-endian; every field is fixed-size so the layout is the same on every build.
 *
 *   [ mpsl_prep_header ]                          (header_bytes, a multiple of 64)
 *   [ mpsl_prep_modality x n_modalities ]         (inside the header)
 *   [ class names: n_classes x char[64] ]         (inside the header)
 *   payload, for split in (train, test):
 *       labels          int32[n]                  (class; for retrieval, the item index)
 *       for each modality m:
 *           samples     storage_dtype[n * numel(m)]
 *
 * header.crc32 is zlib's crc32 of the whole payload; header.payload_bytes its length; the
 * file is exactly header_bytes + payload_bytes long. A reader refuses anything else. */
#ifndef MPSL_PREPARED_FORMAT_H
#define MPSL_PREPARED_FORMAT_H

#include <stdint.h>

#define MPSL_PREP_MAGIC "MPSLDS01"       /* 8 bytes, no terminator in the file */
#define MPSL_PREP_VERSION 1u
#define MPSL_PREP_MAX_MODALITIES 4
#define MPSL_PREP_CLASS_NAME 64

typedef enum mpsl_prep_task { MPSL_PREP_CLASSIFICATION = 0, MPSL_PREP_RETRIEVAL = 1 } mpsl_prep_task;

/* How samples are stored; what the plugin hands out is float32 (U8, F16, F32) or int32 (I32). */
typedef enum mpsl_prep_storage {
    MPSL_PREP_U8 = 0,   /* value = u8 * scale + offset (images, quantised spectrograms) */
    MPSL_PREP_F16 = 1,  /* IEEE half; value = f16 * scale + offset */
    MPSL_PREP_F32 = 2,  /* value = f32 * scale + offset */
    MPSL_PREP_I32 = 3   /* token ids or UTF-8 bytes, 0 = padding; scale/offset unused */
} mpsl_prep_storage;

/* Bytes one stored element takes (0 for an unknown storage), for the reader and the writer. */
static inline size_t mpsl_prep_storage_bytes(uint32_t storage)
{
    switch (storage) {
    case MPSL_PREP_U8: return 1;
    case MPSL_PREP_F16: return 2;
    case MPSL_PREP_F32: return 4;
    case MPSL_PREP_I32: return 4;
    default: return 0;
    }
}

typedef struct mpsl_prep_modality {
    char name[32];          /* "image", "audio", "text", NUL-padded */
    uint32_t storage;       /* mpsl_prep_storage */
    uint32_t ndim;          /* 1..3, per sample */
    uint64_t shape[3];      /* per sample, e.g. {3, 224, 224}; {5, 64} for 5 captions */
    float scale, offset;    /* for U8/F16/F32 */
    uint32_t reserved[6];
} mpsl_prep_modality;       /* 96 bytes */

typedef struct mpsl_prep_header {
    char magic[8];          /* MPSL_PREP_MAGIC */
    uint32_t version;       /* MPSL_PREP_VERSION */
    uint32_t header_bytes;  /* where the payload starts */
    uint32_t task;          /* mpsl_prep_task */
    uint32_t n_modalities;
    uint32_t n_classes;
    uint32_t reserved0;
    uint64_t n_train, n_test;
    uint64_t payload_bytes;
    uint32_t crc32;         /* of the payload */
    uint32_t reserved1;
    char source[128];       /* dataset and converter, e.g. "flickr30k (convert 1.0)" */
    uint64_t reserved2[8];
} mpsl_prep_header;         /* 256 bytes; modalities follow at offset 256 */

#endif
