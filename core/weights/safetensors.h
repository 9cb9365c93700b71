/* safetensors.h: reading and writing tensors in Hugging Face's safetensors format, the format
 * timm and PyTorch checkpoints are shared in, validated as hostile input before any use.
 *
 * FORMAT
 *     [8 bytes]  N, little-endian u64: the size of the header
 *     [N bytes]  UTF-8 JSON object: tensor name -> {"dtype": "F32", "shape": [3, 4],
 *                "data_offsets": [begin, end]}, plus an optional "__metadata__" object of
 *                string -> string. Writers pad it with spaces to a multiple of 8 bytes.
 *     [rest]     the data buffer: each tensor's bytes, row-major, little-endian, at
 *                [begin, end) counted from the first byte after the header.
 *
 * WHAT st_read() REFUSES (every message names the file and, where there is one, the tensor):
 * a file under 8 bytes; N above 100 MB or above the file size - 8; a header that is not valid
 * UTF-8 JSON or not an object; duplicate keys; an entry that is not an object, has an unknown
 * or missing field, an unknown dtype, a shape that is not an array of non-negative integers
 * (at most ST_MAX_DIMS of them), data_offsets that are not two non-negative integers with
 * begin <= end, or whose span differs from numel * element size; "__metadata__" that is not an
 * object of strings; and data offsets that do not tile the data buffer exactly: a gap, an
 * overlap, an offset past the end, or bytes after the last tensor.
 *
 * EXAMPLE
 *     st_file *f;
 *     if (st_read("vit.safetensors", &f, err) != MPSL_OK) return -1;
 *     const st_tensor_info *t = st_find(f, "cls_token");
 *     float *v = malloc(t->numel * sizeof *v);
 *     rc = st_tensor_to_f32(f, "cls_token", v, t->numel, err);   // F32, F16, BF16 or F64
 *     st_close(f);
 *
 * Tensor data is mapped, not copied: a file truncated by another process while it is open
 * ends the process with SIGBUS, as with any mapped file. The host must be little-endian.
 */
#ifndef MPSL_SAFETENSORS_H
#define MPSL_SAFETENSORS_H

#include <stdint.h>

#include "mpsl/plugin.h"

#define ST_MAX_DIMS 8
#define ST_MAX_HEADER ((uint64_t)100000000) /* the reference implementation's limit */

/* Every dtype the format defines; st_tensor_to_f32 converts the floating ones it names. */
typedef enum st_dtype {
    ST_BOOL = 0,
    ST_U8,
    ST_I8,
    ST_F8_E5M2,
    ST_F8_E4M3,
    ST_I16,
    ST_U16,
    ST_F16,
    ST_BF16,
    ST_I32,
    ST_U32,
    ST_F32,
    ST_F64,
    ST_I64,
    ST_U64,
    ST_DTYPE_COUNT
} st_dtype;

/* "F32", "BF16", ... */
const char *st_dtype_name(st_dtype dtype);
/* Bytes per element. */
int st_dtype_size(st_dtype dtype);

typedef struct st_tensor_info {
    const char *name;           /* owned by the st_file */
    st_dtype dtype;
    int ndim;                   /* 0 for a scalar */
    int64_t shape[ST_MAX_DIMS];
    int64_t numel;              /* product of shape (1 for a scalar, 0 if a dimension is 0) */
    uint64_t begin, end;        /* byte range in the data buffer */
} st_tensor_info;

typedef struct st_file st_file;

/* Open and validate path (see the list above). On success *out holds the file (release it
 * with st_close); on failure *out is NULL and err names the file and the problem.
 * Returns MPSL_OK, MPSL_ERR_IO (cannot open, stat or map), MPSL_ERR_INVALID (bad contents)
 * or MPSL_ERR_NOMEM. */
int st_read(const char *path, st_file **out, mpsl_error *err);
void st_close(st_file *f);

const char *st_path(const st_file *f);
/* Tensors, ordered by their position in the data buffer. */
int st_count(const st_file *f);
const st_tensor_info *st_tensor_at(const st_file *f, int i);   /* NULL if out of range */
const st_tensor_info *st_find(const st_file *f, const char *name); /* NULL if absent */
/* The tensor's raw little-endian bytes (end - begin of them); not aligned in general. */
const void *st_tensor_data(const st_file *f, const st_tensor_info *t);

/* "__metadata__" entries, in file order. */
int st_metadata_count(const st_file *f);
void st_metadata_at(const st_file *f, int i, const char **key, const char **value);
const char *st_metadata_get(const st_file *f, const char *key); /* NULL if absent */

/* Convert tensor `name` to float32 into dst, which holds n floats; n must equal its numel.
 * F32 is copied bit-exactly; F16, BF16 and F64 are converted (F64 rounds to nearest).
 * Returns MPSL_OK, or MPSL_ERR_INVALID when the tensor is absent, n differs or the dtype is
 * not a floating type this reader converts. */
int st_tensor_to_f32(const st_file *f, const char *name, float *dst, int64_t n,
                     mpsl_error *err);

/* One tensor to write: float32, row-major. */
typedef struct st_write_tensor {
    const char *name;
    int ndim;                   /* 0 to ST_MAX_DIMS */
    const int64_t *shape;       /* (ndim); may be NULL when ndim is 0 */
    const float *data;          /* (numel) */
} st_write_tensor;

/* Write n tensors as F32 to path, in the given order, with metadata_kv (NULL, or a
 * NULL-terminated list "key1", "value1", "key2", "value2", ..., NULL) as "__metadata__".
 * The header is padded with spaces to a multiple of 8 bytes. The file is written to a
 * temporary file in the same directory, fsync'd and renamed over path, so readers see the
 * old file or the complete new one, never a partial one. Refuses empty, duplicate or
 * "__metadata__" names, negative dimensions and an odd metadata list.
 * Returns MPSL_OK, MPSL_ERR_INVALID, MPSL_ERR_IO or MPSL_ERR_NOMEM. */
int st_write(const char *path, const st_write_tensor *tensors, int n,
             const char *const *metadata_kv, mpsl_error *err);

#endif
