/* safetensors.c: the safetensors reader (map, parse the JSON header with jansson, check every
 * entry and that the entries tile the data buffer) and the atomic F32 writer. */
#include "weights/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/half.h"
#include "util/util.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.c copies F32 data as it is stored: it needs a little-endian host"
#endif

/* ---------------------------------------------------------------- dtypes */

static const struct {
    const char *name;
    int size;
} dtype_table[] = {
    [ST_BOOL] = {"BOOL", 1},      [ST_U8] = {"U8", 1},    [ST_I8] = {"I8", 1},
    [ST_F8_E5M2] = {"F8_E5M2", 1}, [ST_F8_E4M3] = {"F8_E4M3", 1},
    [ST_I16] = {"I16", 2},        [ST_U16] = {"U16", 2},  [ST_F16] = {"F16", 2},
    [ST_BF16] = {"BF16", 2},      [ST_I32] = {"I32", 4},  [ST_U32] = {"U32", 4},
    [ST_F32] = {"F32", 4},        [ST_F64] = {"F64", 8},  [ST_I64] = {"I64", 8},
    [ST_U64] = {"U64", 8},
};
_Static_assert(MPSL_COUNT(dtype_table) == ST_DTYPE_COUNT, "a dtype without its name");

const char *st_dtype_name(st_dtype dtype)
{
    return (unsigned)dtype < ST_DTYPE_COUNT ? dtype_table[dtype].name : "?";
}

int st_dtype_size(st_dtype dtype)
{
    return (unsigned)dtype < ST_DTYPE_COUNT ? dtype_table[dtype].size : 0;
}

static int dtype_from_name(const char *s, st_dtype *out)
{
    for (int i = 0; i < ST_DTYPE_COUNT; i++) {
        if (strcmp(s, dtype_table[i].name) == 0) {
            *out = (st_dtype)i;
            return 1;
        }
    }
    return 0;
}

/* ---------------------------------------------------------------- the file */

struct st_file {
    char *path;
    uint8_t *map;
    size_t map_size;
    const uint8_t *data;
    uint64_t data_size;
    st_tensor_info *t;          /* (n), by data offset */
    int n;
    int *by_name;               /* (n) indices into t, sorted by name */
    char **meta;                /* (2 * n_meta): key, value, ... */
    int n_meta;
};

void st_close(st_file *f)
{
    if (!f) {
        return;
    }
    if (f->map) {
        munmap(f->map, f->map_size);
    }
    for (int i = 0; i < f->n; i++) {
        free((char *)f->t[i].name);
    }
    for (int i = 0; i < 2 * f->n_meta; i++) {
        free(f->meta[i]);
    }
    free(f->meta);
    free(f->t);
    free(f->by_name);
    free(f->path);
    free(f);
}

const char *st_path(const st_file *f)
{
    return f->path;
}

int st_count(const st_file *f)
{
    return f->n;
}

const st_tensor_info *st_tensor_at(const st_file *f, int i)
{
    return i >= 0 && i < f->n ? &f->t[i] : NULL;
}

static int cmp_by_name(const void *a, const void *b, void *ctx)
{
    const st_tensor_info *t = ctx;
    return strcmp(t[*(const int *)a].name, t[*(const int *)b].name);
}

const st_tensor_info *st_find(const st_file *f, const char *name)
{
    int lo = 0, hi = f->n - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        const st_tensor_info *t = &f->t[f->by_name[mid]];
        int c = strcmp(name, t->name);
        if (c == 0) {
            return t;
        }
        if (c < 0) {
            hi = mid - 1;
        } else {
            lo = mid + 1;
        }
    }
    return NULL;
}

const void *st_tensor_data(const st_file *f, const st_tensor_info *t)
{
    return f->data + t->begin;
}

int st_metadata_count(const st_file *f)
{
    return f->n_meta;
}

void st_metadata_at(const st_file *f, int i, const char **key, const char **value)
{
    *key = f->meta[2 * i];
    *value = f->meta[2 * i + 1];
}

const char *st_metadata_get(const st_file *f, const char *key)
{
    for (int i = 0; i < f->n_meta; i++) {
        if (strcmp(f->meta[2 * i], key) == 0) {
            return f->meta[2 * i + 1];
        }
    }
    return NULL;
}

/* "[4, 4]" */
static const char *fmt_shape(char *buf, size_t size, int ndim, const int64_t *shape)
{
    size_t used = 0;
    buf[0] = '\0';
    used += (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < ndim && used < size; i++) {
        used += (size_t)snprintf(buf + used, size - used, "%s%lld", i ? ", " : "",
                                 (long long)shape[i]);
    }
    if (used < size) {
        snprintf(buf + used, size - used, "]");
    }
    return buf;
}

/* A JSON value as text for messages ("-1", "2.5", "\"a\""), or its type name. */
static const char *fmt_json(char *buf, size_t size, const json_t *v)
{
    char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
    snprintf(buf, size, "%s", s ? s : "?");
    if (strlen(buf) == size - 1 && size > 4) {
        strcpy(buf + size - 4, "...");
    }
    free(s);
    return buf;
}

static const char *json_type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "object";
    case JSON_ARRAY: return "array";
    case JSON_STRING: return "string";
    case JSON_INTEGER: return "integer";
    case JSON_REAL: return "number";
    case JSON_TRUE:
    case JSON_FALSE: return "boolean";
    case JSON_NULL: return "null";
    }
    return "value";
}

/* Fill t from one header entry, checking it on its own (not yet against the others). */
static int parse_entry(const char *path, const char *name, json_t *v, uint64_t data_size,
                       st_tensor_info *t, mpsl_error *err)
{
    char vb[64], sb[160];
    if (!json_is_object(v)) {
        return mpsl_err(err, "%s: tensor '%s': entry is a JSON %s, not an object with dtype, "
                        "shape and data_offsets", path, name, json_type_name(v));
    }
    const char *key;
    json_t *field;
    json_object_foreach(v, key, field) {
        if (strcmp(key, "dtype") != 0 && strcmp(key, "shape") != 0 &&
            strcmp(key, "data_offsets") != 0) {
            return mpsl_err(err, "%s: tensor '%s': unknown field '%s' (expected dtype, shape "
                            "and data_offsets)", path, name, key);
        }
    }
    json_t *dt = json_object_get(v, "dtype");
    json_t *sh = json_object_get(v, "shape");
    json_t *off = json_object_get(v, "data_offsets");
    if (!dt || !sh || !off) {
        return mpsl_err(err, "%s: tensor '%s': no %s", path, name,
                        !dt ? "dtype" : !sh ? "shape" : "data_offsets");
    }
    if (!json_is_string(dt)) {
        return mpsl_err(err, "%s: tensor '%s': dtype is %s, not a string", path, name,
                        fmt_json(vb, sizeof vb, dt));
    }
    if (!dtype_from_name(json_string_value(dt), &t->dtype)) {
        return mpsl_err(err, "%s: tensor '%s': unknown dtype '%s' (known: BOOL, U8, I8, "
                        "F8_E5M2, F8_E4M3, I16, U16, F16, BF16, I32, U32, F32, F64, I64, U64)",
                        path, name, json_string_value(dt));
    }
    if (!json_is_array(sh)) {
        return mpsl_err(err, "%s: tensor '%s': shape is %s, not an array", path, name,
                        fmt_json(vb, sizeof vb, sh));
    }
    if (json_array_size(sh) > ST_MAX_DIMS) {
        return mpsl_err(err, "%s: tensor '%s': shape has %zu dimensions, at most %d are "
                        "supported", path, name, json_array_size(sh), ST_MAX_DIMS);
    }
    t->ndim = (int)json_array_size(sh);
    uint64_t numel = 1;
    int overflow = 0;
    for (int i = 0; i < t->ndim; i++) {
        json_t *d = json_array_get(sh, (size_t)i);
        if (!json_is_integer(d) || json_integer_value(d) < 0) {
            return mpsl_err(err, "%s: tensor '%s': shape dimension %d is %s, not a "
                            "non-negative integer", path, name, i, fmt_json(vb, sizeof vb, d));
        }
        t->shape[i] = (int64_t)json_integer_value(d);
        overflow |= __builtin_mul_overflow(numel, (uint64_t)t->shape[i], &numel);
    }
    uint64_t bytes = 0;
    overflow |= numel > (uint64_t)INT64_MAX;
    overflow |= __builtin_mul_overflow(numel, (uint64_t)st_dtype_size(t->dtype), &bytes);
    fmt_shape(sb, sizeof sb, t->ndim, t->shape);
    if (overflow) {
        return mpsl_err(err, "%s: tensor '%s': shape %s of %s is too large", path, name, sb,
                        st_dtype_name(t->dtype));
    }
    t->numel = (int64_t)numel;
    if (!json_is_array(off) || json_array_size(off) != 2 ||
        !json_is_integer(json_array_get(off, 0)) || !json_is_integer(json_array_get(off, 1)) ||
        json_integer_value(json_array_get(off, 0)) < 0 ||
        json_integer_value(json_array_get(off, 1)) < 0) {
        return mpsl_err(err, "%s: tensor '%s': data_offsets is %s, not [begin, end] with "
                        "non-negative integers", path, name, fmt_json(vb, sizeof vb, off));
    }
    t->begin = (uint64_t)json_integer_value(json_array_get(off, 0));
    t->end = (uint64_t)json_integer_value(json_array_get(off, 1));
    if (t->end < t->begin) {
        return mpsl_err(err, "%s: tensor '%s': data_offsets [%llu, %llu] end before they "
                        "begin", path, name, (unsigned long long)t->begin,
                        (unsigned long long)t->end);
    }
    if (t->end - t->begin != bytes) {
        return mpsl_err(err, "%s: tensor '%s': data_offsets [%llu, %llu] span %llu bytes, but "
                        "shape %s of %s needs %llu", path, name, (unsigned long long)t->begin,
                        (unsigned long long)t->end, (unsigned long long)(t->end - t->begin),
                        sb, st_dtype_name(t->dtype), (unsigned long long)bytes);
    }
    if (t->end > data_size) {
        return mpsl_err(err, "%s: tensor '%s': data_offsets [%llu, %llu] extend past the end "
                        "of the data buffer (%llu bytes after the header; truncated file?)",
                        path, name, (unsigned long long)t->begin, (unsigned long long)t->end,
                        (unsigned long long)data_size);
    }
    return MPSL_OK;
}

static int parse_metadata(st_file *f, json_t *v, mpsl_error *err)
{
    if (!json_is_object(v)) {
        return mpsl_err(err, "%s: __metadata__ is a JSON %s, not an object of strings",
                        f->path, json_type_name(v));
    }
    size_t n = json_object_size(v);
    f->meta = calloc(2 * n + 1, sizeof *f->meta);
    if (!f->meta) {
        return mpsl_errs(err, MPSL_ERR_NOMEM, "%s: out of memory", f->path);
    }
    const char *key;
    json_t *val;
    json_object_foreach(v, key, val) {
        if (!json_is_string(val)) {
            char vb[64];
            return mpsl_err(err, "%s: __metadata__ '%s' is %s, not a string (safetensors "
                            "metadata maps strings to strings)", f->path, key,
                            fmt_json(vb, sizeof vb, val));
        }
        f->meta[2 * f->n_meta] = mpsl_strdup(key);
        f->meta[2 * f->n_meta + 1] = mpsl_strdup(json_string_value(val));
        f->n_meta++;
        if (!f->meta[2 * f->n_meta - 2] || !f->meta[2 * f->n_meta - 1]) {
            return mpsl_errs(err, MPSL_ERR_NOMEM, "%s: out of memory", f->path);
        }
    }
    return MPSL_OK;
}

static int cmp_by_offset(const void *a, const void *b)
{
    const st_tensor_info *x = a, *y = b;
    if (x->begin != y->begin) {
        return x->begin < y->begin ? -1 : 1;
    }
    if (x->end != y->end) {
        return x->end < y->end ? -1 : 1;
    }
    return strcmp(x->name, y->name);
}

/* The entries, sorted by offset, must cover [0, data_size) exactly once. */
static int check_tiling(const st_file *f, mpsl_error *err)
{
    uint64_t at = 0;
    const st_tensor_info *prev = NULL;
    for (int i = 0; i < f->n; i++) {
        const st_tensor_info *t = &f->t[i];
        if (t->begin > at) {
            if (prev) {
                return mpsl_err(err, "%s: gap of %llu bytes in the data buffer between tensor "
                                "'%s' (ends at %llu) and tensor '%s' (begins at %llu)", f->path,
                                (unsigned long long)(t->begin - at), prev->name,
                                (unsigned long long)at, t->name, (unsigned long long)t->begin);
            }
            return mpsl_err(err, "%s: gap of %llu bytes at the start of the data buffer, "
                            "before tensor '%s' (begins at %llu)", f->path,
                            (unsigned long long)t->begin, t->name,
                            (unsigned long long)t->begin);
        }
        if (t->begin < at) {
            return mpsl_err(err, "%s: tensor '%s': data_offsets [%llu, %llu] overlap tensor "
                            "'%s' [%llu, %llu]", f->path, t->name,
                            (unsigned long long)t->begin, (unsigned long long)t->end,
                            prev->name, (unsigned long long)prev->begin,
                            (unsigned long long)prev->end);
        }
        at = t->end;
        prev = t;
    }
    if (at != f->data_size) {
        if (!prev) {
            return mpsl_err(err, "%s: the header declares no tensors, but %llu bytes of data "
                            "follow it", f->path, (unsigned long long)f->data_size);
        }
        return mpsl_err(err, "%s: %llu bytes of data after the last tensor '%s' (it ends at "
                        "%llu, the data buffer has %llu bytes); the data buffer must be "
                        "covered exactly", f->path, (unsigned long long)(f->data_size - at),
                        prev->name, (unsigned long long)at,
                        (unsigned long long)f->data_size);
    }
    return MPSL_OK;
}

static int parse_header(st_file *f, const char *text, size_t len, mpsl_error *err)
{
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (!root) {
        if (json_error_code(&jerr) == json_error_duplicate_key) {
            return mpsl_err(err, "%s: header has a duplicate key (tensor names must be unique):"
                            " %s (line %d, column %d)", f->path, jerr.text, jerr.line,
                            jerr.column);
        }
        return mpsl_err(err, "%s: header is not valid JSON: %s (line %d, column %d)", f->path,
                        jerr.text, jerr.line, jerr.column);
    }
    int rc = MPSL_OK;
    if (!json_is_object(root)) {
        rc = mpsl_err(err, "%s: header is a JSON %s, not an object of tensors", f->path,
                      json_type_name(root));
        goto done;
    }
    size_t n = json_object_size(root);
    f->t = calloc(n + 1, sizeof *f->t);
    f->by_name = calloc(n + 1, sizeof *f->by_name);
    if (!f->t || !f->by_name) {
        rc = mpsl_errs(err, MPSL_ERR_NOMEM, "%s: out of memory", f->path);
        goto done;
    }
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val) {
        if (strcmp(key, "__metadata__") == 0) {
            rc = parse_metadata(f, val, err);
        } else {
            st_tensor_info *t = &f->t[f->n];
            rc = parse_entry(f->path, key, val, f->data_size, t, err);
            if (rc == MPSL_OK) {
                t->name = mpsl_strdup(key);
                if (!t->name) {
                    rc = mpsl_errs(err, MPSL_ERR_NOMEM, "%s: out of memory", f->path);
                } else {
                    f->n++;
                }
            }
        }
        if (rc != MPSL_OK) {
            goto done;
        }
    }
    qsort(f->t, (size_t)f->n, sizeof *f->t, cmp_by_offset);
    rc = check_tiling(f, err);
    if (rc != MPSL_OK) {
        goto done;
    }
    for (int i = 0; i < f->n; i++) {
        f->by_name[i] = i;
    }
    qsort_r(f->by_name, (size_t)f->n, sizeof *f->by_name, cmp_by_name, f->t);
    for (int i = 1; i < f->n; i++) {
        /* jansson already refused duplicate keys; this guards the lookup's assumption */
        if (strcmp(f->t[f->by_name[i]].name, f->t[f->by_name[i - 1]].name) == 0) {
            rc = mpsl_err(err, "%s: tensor '%s' appears twice", f->path,
                          f->t[f->by_name[i]].name);
            goto done;
        }
    }
done:
    json_decref(root);
    return rc;
}

int st_read(const char *path, st_file **out, mpsl_error *err)
{
    *out = NULL;
    st_file *f = calloc(1, sizeof *f);
    if (!f || !(f->path = mpsl_strdup(path))) {
        free(f);
        return mpsl_errs(err, MPSL_ERR_NOMEM, "%s: out of memory", path);
    }
    int rc = MPSL_OK;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0) {
        rc = mpsl_errs(err, MPSL_ERR_IO, "cannot open %s: %s", path, strerror(errno));
        goto fail;
    }
    if (fstat(fd, &st) != 0) {
        rc = mpsl_errs(err, MPSL_ERR_IO, "cannot stat %s: %s", path, strerror(errno));
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = mpsl_errs(err, MPSL_ERR_IO, "%s: not a regular file", path);
        goto fail;
    }
    if (st.st_size < 8) {
        rc = mpsl_err(err, "%s: file is %lld bytes, too short for a safetensors file (it "
                      "starts with an 8-byte header size)", path, (long long)st.st_size);
        goto fail;
    }
    f->map_size = (size_t)st.st_size;
    void *map = mmap(NULL, f->map_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) {
        rc = mpsl_errs(err, MPSL_ERR_IO, "cannot map %s: %s", path, strerror(errno));
        goto fail;
    }
    f->map = map;
    close(fd);
    fd = -1;

    uint64_t hsize = 0;
    for (int i = 7; i >= 0; i--) {
        hsize = hsize << 8 | f->map[i];
    }
    uint64_t rest = (uint64_t)st.st_size - 8;
    if (hsize > ST_MAX_HEADER) {
        rc = mpsl_err(err, "%s: header size %llu is over the limit of %llu bytes (not a "
                      "safetensors file?)", path, (unsigned long long)hsize,
                      (unsigned long long)ST_MAX_HEADER);
        goto fail;
    }
    if (hsize > rest) {
        rc = mpsl_err(err, "%s: header size %llu is more than the %llu bytes that follow it "
                      "(truncated file, or not a safetensors file?)", path,
                      (unsigned long long)hsize, (unsigned long long)rest);
        goto fail;
    }
    f->data = f->map + 8 + hsize;
    f->data_size = rest - hsize;
    rc = parse_header(f, (const char *)f->map + 8, (size_t)hsize, err);
    if (rc != MPSL_OK) {
        goto fail;
    }
    *out = f;
    return MPSL_OK;
fail:
    if (fd >= 0) {
        close(fd);
    }
    st_close(f);
    return rc;
}

int st_tensor_to_f32(const st_file *f, const char *name, float *dst, int64_t n,
                     mpsl_error *err)
{
    const st_tensor_info *t = st_find(f, name);
    if (!t) {
        return mpsl_err(err, "%s: no tensor '%s'", f->path, name);
    }
    if (n != t->numel) {
        return mpsl_err(err, "%s: tensor '%s' has %lld elements, the destination %lld",
                        f->path, name, (long long)t->numel, (long long)n);
    }
    if (n == 0) {
        return MPSL_OK;
    }
    const uint8_t *p = f->data + t->begin;
    switch (t->dtype) {
    case ST_F32:
        memcpy(dst, p, (size_t)n * sizeof *dst);
        break;
    case ST_F16:
        for (int64_t i = 0; i < n; i++) {
            dst[i] = mpsl_f16_to_f32((uint16_t)(p[2 * i] | p[2 * i + 1] << 8));
        }
        break;
    case ST_BF16:
        for (int64_t i = 0; i < n; i++) {
            dst[i] = mpsl_bf16_to_f32((uint16_t)(p[2 * i] | p[2 * i + 1] << 8));
        }
        break;
    case ST_F64:
        for (int64_t i = 0; i < n; i++) {
            double d;
            memcpy(&d, p + 8 * i, sizeof d);
            dst[i] = (float)d;
        }
        break;
    default:
        return mpsl_err(err, "%s: tensor '%s' is %s; only F32, F16, BF16 and F64 convert to "
                        "float32", f->path, name, st_dtype_name(t->dtype));
    }
    return MPSL_OK;
}

/* ---------------------------------------------------------------- writing */

static int write_all(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len > 0) {
        size_t chunk = len < ((size_t)1 << 30) ? len : (size_t)1 << 30;
        ssize_t w = write(fd, p, chunk);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* The header: __metadata__ first, then the tensors in the given order, offsets contiguous. */
static int build_header(const char *path, const st_write_tensor *tensors, int n,
                        const char *const *kv, json_t **out, uint64_t *data_size,
                        mpsl_error *err)
{
    json_t *root = json_object();
    if (!root) {
        return mpsl_errs(err, MPSL_ERR_NOMEM, "%s: out of memory", path);
    }
    int rc = MPSL_OK;
    if (kv && kv[0]) {
        json_t *meta = json_object();
        if (!meta || json_object_set_new(root, "__metadata__", meta) != 0) {
            rc = mpsl_errs(err, MPSL_ERR_NOMEM, "%s: out of memory", path);
            goto fail;
        }
        for (int i = 0; kv[i]; i += 2) {
            if (!kv[i + 1]) {
                rc = mpsl_err(err, "%s: metadata key '%s' has no value (the list is key, "
                              "value, ..., NULL)", path, kv[i]);
                goto fail;
            }
            if (json_object_get(meta, kv[i])) {
                rc = mpsl_err(err, "%s: metadata key '%s' given twice", path, kv[i]);
                goto fail;
            }
            if (json_object_set_new(meta, kv[i], json_string(kv[i + 1])) != 0) {
                rc = mpsl_err(err, "%s: metadata '%s' is not valid UTF-8 text", path, kv[i]);
                goto fail;
            }
        }
    }
    uint64_t at = 0;
    for (int i = 0; i < n; i++) {
        const st_write_tensor *t = &tensors[i];
        const char *name = t->name ? t->name : "";
        if (!*name || strcmp(name, "__metadata__") == 0) {
            rc = mpsl_err(err, "%s: tensor %d: the name '%s' is not allowed", path, i, name);
            goto fail;
        }
        if (json_object_get(root, name)) {
            rc = mpsl_err(err, "%s: tensor '%s' given twice", path, name);
            goto fail;
        }
        if (t->ndim < 0 || t->ndim > ST_MAX_DIMS || (t->ndim > 0 && !t->shape)) {
            rc = mpsl_err(err, "%s: tensor '%s' has %d dimensions (0 to %d allowed)", path,
                          name, t->ndim, ST_MAX_DIMS);
            goto fail;
        }
        uint64_t numel = 1;
        int overflow = 0;
        /* json_object_set_new takes the value's reference even when it fails */
        json_t *entry = json_object();
        if (!entry) {
            rc = mpsl_errs(err, MPSL_ERR_NOMEM, "%s: out of memory", path);
            goto fail;
        }
        if (json_object_set_new(root, name, entry) != 0) {
            rc = mpsl_err(err, "%s: tensor name '%s' is not valid UTF-8 text", path, name);
            goto fail;
        }
        if (json_object_set_new(entry, "dtype", json_string("F32")) != 0 ||
            json_object_set_new(entry, "shape", json_array()) != 0) {
            rc = mpsl_errs(err, MPSL_ERR_NOMEM, "%s: out of memory", path);
            goto fail;
        }
        json_t *shape = json_object_get(entry, "shape");
        for (int d = 0; d < t->ndim; d++) {
            if (t->shape[d] < 0) {
                char sb[160];
                rc = mpsl_err(err, "%s: tensor '%s' has a negative dimension in shape %s",
                              path, name, fmt_shape(sb, sizeof sb, t->ndim, t->shape));
                goto fail;
            }
            overflow |= __builtin_mul_overflow(numel, (uint64_t)t->shape[d], &numel);
            if (json_array_append_new(shape, json_integer(t->shape[d])) != 0) {
                rc = mpsl_errs(err, MPSL_ERR_NOMEM, "%s: out of memory", path);
                goto fail;
            }
        }
        uint64_t bytes = 0;
        overflow |= numel > (uint64_t)INT64_MAX / 4;
        overflow |= __builtin_mul_overflow(numel, (uint64_t)4, &bytes);
        overflow |= __builtin_add_overflow(at, bytes, &at) || at > (uint64_t)INT64_MAX;
        if (overflow) {
            rc = mpsl_err(err, "%s: tensor '%s' is too large", path, name);
            goto fail;
        }
        if (numel > 0 && !t->data) {
            rc = mpsl_err(err, "%s: tensor '%s' has no data", path, name);
            goto fail;
        }
        json_t *off = json_pack("[II]", (json_int_t)(at - bytes), (json_int_t)at);
        if (!off || json_object_set_new(entry, "data_offsets", off) != 0) {
            rc = mpsl_errs(err, MPSL_ERR_NOMEM, "%s: out of memory", path);
            goto fail;
        }
    }
    *out = root;
    *data_size = at;
    return MPSL_OK;
fail:
    json_decref(root);
    return rc;
}

/* Make the rename durable: fsync the directory that holds path (best effort). */
static void sync_parent_dir(const char *path)
{
    char *dir = mpsl_strdup(path);
    if (!dir) {
        return;
    }
    char *slash = strrchr(dir, '/');
    const char *d = ".";
    if (slash == dir) {
        d = "/";
    } else if (slash) {
        *slash = '\0';
        d = dir;
    }
    int fd = open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    free(dir);
}

int st_write(const char *path, const st_write_tensor *tensors, int n,
             const char *const *metadata_kv, mpsl_error *err)
{
    if (n < 0 || (n > 0 && !tensors)) {
        return mpsl_errs(err, MPSL_ERR_INTERNAL, "%s: st_write got %d tensors", path, n);
    }
    json_t *root = NULL;
    uint64_t data_size = 0;
    int rc = build_header(path, tensors, n, metadata_kv, &root, &data_size, err);
    if (rc != MPSL_OK) {
        return rc;
    }
    char *text = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(root);
    char *tmp = mpsl_strfmt("%s.tmp-XXXXXX", path);
    if (!text || !tmp) {
        free(text);
        free(tmp);
        return mpsl_errs(err, MPSL_ERR_NOMEM, "%s: out of memory", path);
    }
    size_t len = strlen(text);
    size_t padded = (len + 7) / 8 * 8;
    char *header = malloc(8 + padded);
    if (!header) {
        free(text);
        free(tmp);
        return mpsl_errs(err, MPSL_ERR_NOMEM, "%s: out of memory", path);
    }
    for (int i = 0; i < 8; i++) {
        header[i] = (char)(uint8_t)((uint64_t)padded >> (8 * i));
    }
    memcpy(header + 8, text, len);
    memset(header + 8 + len, ' ', padded - len);
    free(text);

    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        rc = mpsl_errs(err, MPSL_ERR_IO, "cannot create a temporary file next to %s: %s",
                       path, strerror(errno));
        free(header);
        free(tmp);
        return rc;
    }
    int ok = write_all(fd, header, 8 + padded) == 0;
    for (int i = 0; ok && i < n; i++) {
        int64_t numel = 1;
        for (int d = 0; d < tensors[i].ndim; d++) {
            numel *= tensors[i].shape[d];
        }
        ok = numel == 0 || write_all(fd, tensors[i].data, (size_t)numel * sizeof(float)) == 0;
    }
    ok = ok && fchmod(fd, 0644) == 0 && fsync(fd) == 0;
    if (!ok) {
        rc = mpsl_errs(err, MPSL_ERR_IO, "cannot write %s: %s", tmp, strerror(errno));
    }
    if (close(fd) != 0 && ok) {
        ok = 0;
        rc = mpsl_errs(err, MPSL_ERR_IO, "cannot write %s: %s", tmp, strerror(errno));
    }
    if (ok && rename(tmp, path) != 0) {
        ok = 0;
        rc = mpsl_errs(err, MPSL_ERR_IO, "cannot rename %s to %s: %s", tmp, path,
                       strerror(errno));
    }
    if (!ok) {
        unlink(tmp);
    } else {
        sync_parent_dir(path);
    }
    free(header);
    free(tmp);
    (void)data_size;
    return ok ? MPSL_OK : rc;
}
