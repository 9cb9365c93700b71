/* test_safetensors.c: the safetensors reader and writer: round trips (bit-exact values,
 * shapes, metadata, atomic replacement), F16/BF16/F64 conversion on known bit patterns, and
 * every refusal on crafted files, each message naming the file and the tensor. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "check.h"
#include "util/half.h"
#include "weights/safetensors.h"
#include "weights_test.h"

static uint32_t bits_of(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float float_of(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static int files_in_dir(void)
{
    DIR *d = opendir(wt_dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        n += e->d_name[0] != '.';
    }
    if (d) {
        closedir(d);
    }
    return n;
}

/* ---------------------------------------------------------------- conversions */

static void test_f16(void)
{
    static const struct {
        uint16_t h;
        uint32_t f;   /* expected float32 bits */
    } cases[] = {
        {0x3c00, 0x3f800000},  /* 1.0 */
        {0xc100, 0xc0200000},  /* -2.5 */
        {0x7bff, 0x477fe000},  /* 65504, the largest */
        {0x3555, 0x3eaaa000},  /* 0.333251953125 */
        {0x0400, 0x38800000},  /* 2^-14, the smallest normal */
        {0x0001, 0x33800000},  /* 2^-24, the smallest subnormal */
        {0x03ff, 0x387fc000},  /* 1023 * 2^-24, the largest subnormal */
        {0x8001, 0xb3800000},  /* -2^-24 */
        {0x0000, 0x00000000},  /* +0 */
        {0x8000, 0x80000000},  /* -0 */
        {0x7c00, 0x7f800000},  /* +inf */
        {0xfc00, 0xff800000},  /* -inf */
        {0x7e00, 0x7fc00000},  /* quiet NaN */
        {0x7d00, 0x7fa00000},  /* signalling NaN, payload kept */
        {0xfe01, 0xffc02000},  /* negative NaN with payload */
    };
    for (size_t i = 0; i < MPSL_COUNT(cases); i++) {
        uint32_t got = bits_of(mpsl_f16_to_f32(cases[i].h));
        if (got != cases[i].f) {
            fprintf(stderr, "f16 0x%04x -> 0x%08x, expected 0x%08x\n", cases[i].h, got,
                    cases[i].f);
        }
        CHECK(got == cases[i].f);
    }
    CHECK(mpsl_f16_to_f32(0x0001) == 0x1p-24f);
    CHECK(mpsl_f16_to_f32(0x7bff) == 65504.0f);
    /* every finite half converts to the value its fields say */
    int bad = 0;
    for (uint32_t h = 0; h < 0x10000; h++) {
        int e = (h >> 10) & 31, m = h & 1023;
        if (e == 31) {
            continue;
        }
        double v = e ? ldexp(1024 + m, e - 25) : ldexp(m, -24);
        if (h & 0x8000) {
            v = -v;
        }
        bad += mpsl_f16_to_f32((uint16_t)h) != (float)v;
    }
    CHECK(bad == 0);
}

static void test_bf16(void)
{
    static const struct {
        uint16_t b;
        uint32_t f;
    } cases[] = {
        {0x3f80, 0x3f800000}, /* 1.0 */
        {0xc020, 0xc0200000}, /* -2.5 */
        {0x7f7f, 0x7f7f0000}, /* the largest finite */
        {0x0080, 0x00800000}, /* the smallest normal */
        {0x0001, 0x00010000}, /* a subnormal */
        {0x8000, 0x80000000}, /* -0 */
        {0x7f80, 0x7f800000}, /* +inf */
        {0xff80, 0xff800000}, /* -inf */
        {0x7fc0, 0x7fc00000}, /* NaN */
        {0x7f81, 0x7f810000}, /* signalling NaN */
    };
    for (size_t i = 0; i < MPSL_COUNT(cases); i++) {
        CHECK(bits_of(mpsl_bf16_to_f32(cases[i].b)) == cases[i].f);
    }
    CHECK(mpsl_bf16_to_f32(0xc020) == -2.5f);
    /* and back: round to nearest even, overflow to inf, NaN kept; every bf16 round-trips */
    static const struct {
        uint32_t f;
        uint16_t b;
    } down[] = {
        {0x3f808000, 0x3f80}, /* a tie: stays even */
        {0x3f818000, 0x3f82}, /* a tie: up to even */
        {0x3f808001, 0x3f81}, /* above the tie */
        {0x7f7fffff, 0x7f80}, /* rounds up to inf */
        {0xff800000, 0xff80}, /* -inf */
        {0x7f800001, 0x7fc0}, /* a NaN whose payload sits in the dropped bits */
    };
    for (size_t i = 0; i < MPSL_COUNT(down); i++) {
        float x;
        memcpy(&x, &down[i].f, sizeof x);
        CHECK(mpsl_f32_to_bf16(x) == down[i].b);
    }
    int bad = 0;
    for (uint32_t b = 0; b < 0x10000; b++) {
        int nan = (b & 0x7f80) == 0x7f80 && (b & 0x7f);
        bad += !nan && mpsl_f32_to_bf16(mpsl_bf16_to_f32((uint16_t)b)) != b;
    }
    CHECK(bad == 0);
}

/* A crafted file with one tensor of each float dtype plus an I32 one, read through
 * st_tensor_to_f32. */
static void test_convert_file(void)
{
    const char *path = wt_path("dtypes.safetensors");
    uint8_t data[2 * 4 + 2 * 4 + 4 * 2 + 8 * 2 + 4];
    size_t at = 0;
    uint16_t f16[4] = {0x3c00, 0xc100, 0x7bff, 0x0001};
    uint16_t b16[4] = {0x3f80, 0xc020, 0x7f80, 0x7fc0};
    float f32[2] = {0.1f, -0.0f};
    double f64[2] = {1.0 / 3.0, -1e300};
    int32_t i32 = 7;
    for (int i = 0; i < 4; i++, at += 2) {
        data[at] = (uint8_t)f16[i], data[at + 1] = (uint8_t)(f16[i] >> 8);
    }
    for (int i = 0; i < 4; i++, at += 2) {
        data[at] = (uint8_t)b16[i], data[at + 1] = (uint8_t)(b16[i] >> 8);
    }
    memcpy(data + at, f32, 8), at += 8;
    memcpy(data + at, f64, 16), at += 16;
    memcpy(data + at, &i32, 4), at += 4;
    CHECK(at == sizeof data);
    wt_write_json(path,
                  "{\"h\":{\"dtype\":\"F16\",\"shape\":[2,2],\"data_offsets\":[0,8]},"
                  "\"b\":{\"dtype\":\"BF16\",\"shape\":[4],\"data_offsets\":[8,16]},"
                  "\"f\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[16,24]},"
                  "\"d\":{\"dtype\":\"F64\",\"shape\":[2,1],\"data_offsets\":[24,40]},"
                  "\"i\":{\"dtype\":\"I32\",\"shape\":[],\"data_offsets\":[40,44]}}",
                  data, sizeof data);
    mpsl_error err = {{0}};
    st_file *f = NULL;
    CHECK(st_read(path, &f, &err) == MPSL_OK);
    if (!f) {
        fprintf(stderr, "%s\n", err.msg);
        return;
    }
    CHECK(st_count(f) == 5);
    /* ordered by offset */
    CHECK(strcmp(st_tensor_at(f, 0)->name, "h") == 0);
    CHECK(strcmp(st_tensor_at(f, 4)->name, "i") == 0);
    CHECK(st_tensor_at(f, 5) == NULL);
    const st_tensor_info *t = st_find(f, "i");
    CHECK(t && t->ndim == 0 && t->numel == 1 && t->dtype == ST_I32);
    CHECK(st_find(f, "nope") == NULL);
    float v[4];
    CHECK(st_tensor_to_f32(f, "h", v, 4, &err) == MPSL_OK);
    CHECK(v[0] == 1.0f && v[1] == -2.5f && v[2] == 65504.0f && v[3] == 0x1p-24f);
    CHECK(st_tensor_to_f32(f, "b", v, 4, &err) == MPSL_OK);
    CHECK(v[0] == 1.0f && v[1] == -2.5f && isinf(v[2]) && v[2] > 0 && isnan(v[3]));
    CHECK(st_tensor_to_f32(f, "f", v, 2, &err) == MPSL_OK);
    CHECK(bits_of(v[0]) == bits_of(0.1f) && bits_of(v[1]) == 0x80000000u);
    CHECK(st_tensor_to_f32(f, "d", v, 2, &err) == MPSL_OK);
    CHECK(v[0] == (float)(1.0 / 3.0) && isinf(v[1]) && v[1] < 0);
    CHECK(st_tensor_to_f32(f, "i", v, 1, &err) == MPSL_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "tensor 'i' is I32");
    CHECK_CONTAINS(err.msg, path);
    CHECK(st_tensor_to_f32(f, "h", v, 3, &err) == MPSL_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "tensor 'h' has 4 elements, the destination 3");
    CHECK(st_tensor_to_f32(f, "zz", v, 3, &err) == MPSL_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "no tensor 'zz'");
    CHECK(strcmp(st_dtype_name(ST_BF16), "BF16") == 0 && st_dtype_size(ST_F64) == 8);
    CHECK(st_metadata_count(f) == 0 && st_metadata_get(f, "format") == NULL);
    st_close(f);
}

/* ---------------------------------------------------------------- round trip */

static void test_round_trip(void)
{
    const char *path = wt_path("round.safetensors");
    float qkv[6 * 4], cls[4], scalar = 3.14159f;
    for (int i = 0; i < 24; i++) {
        qkv[i] = (float)i * 0.37f - 4.0f;
    }
    qkv[1] = -0.0f;
    qkv[2] = float_of(0x00000001);  /* the smallest subnormal */
    qkv[3] = float_of(0x7f800000);  /* inf */
    qkv[4] = float_of(0x7fa00001);  /* a signalling NaN with payload */
    qkv[5] = float_of(0xffc12345);  /* a negative quiet NaN */
    for (int i = 0; i < 4; i++) {
        cls[i] = 1.0f / (float)(i + 3);
    }
    int64_t s_qkv[2] = {6, 4}, s_cls[3] = {1, 1, 4}, s_empty[2] = {0, 3};
    st_write_tensor t[] = {
        {"blocks.0.attn.qkv.weight", 2, s_qkv, qkv},
        {"cls_token", 3, s_cls, cls},
        {"empty", 2, s_empty, NULL},
        {"scalar", 0, NULL, &scalar},
    };
    const char *meta[] = {"format", "pt", "note", "µ-unicode \"quoted\"", NULL};
    mpsl_error err = {{0}};
    int rc = st_write(path, t, 4, meta, &err);
    CHECK(rc == MPSL_OK);
    if (rc != MPSL_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return;
    }
    /* the header is padded with spaces to a multiple of 8 and starts with '{' */
    FILE *fp = fopen(path, "rb");
    uint8_t head[8];
    CHECK(fp && fread(head, 1, 8, fp) == 8);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) {
        n = n << 8 | head[i];
    }
    CHECK(n % 8 == 0);
    char *hdr = calloc(1, (size_t)n + 1);
    CHECK(fp && hdr && fread(hdr, 1, (size_t)n, fp) == n);
    CHECK(hdr[0] == '{');
    CHECK_CONTAINS(hdr, "\"__metadata__\":{\"format\":\"pt\"");
    size_t len = strlen(hdr);
    while (len > 0 && hdr[len - 1] == ' ') {
        len--;
    }
    CHECK(hdr[len - 1] == '}' && n - len < 8);
    free(hdr);
    if (fp) {
        fclose(fp);
    }
    struct stat sb;
    CHECK(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0644);

    st_file *f = NULL;
    CHECK(st_read(path, &f, &err) == MPSL_OK);
    if (!f) {
        fprintf(stderr, "%s\n", err.msg);
        return;
    }
    CHECK(st_count(f) == 4);
    for (int i = 0; i < 4; i++) {
        const st_tensor_info *ti = st_find(f, t[i].name);
        CHECK(ti != NULL);
        if (!ti) {
            continue;
        }
        CHECK(ti->dtype == ST_F32 && ti->ndim == t[i].ndim);
        CHECK(t[i].ndim == 0 || memcmp(ti->shape, t[i].shape, (size_t)t[i].ndim * 8) == 0);
    }
    CHECK(st_find(f, "empty")->numel == 0);
    float back[24];
    CHECK(st_tensor_to_f32(f, "blocks.0.attn.qkv.weight", back, 24, &err) == MPSL_OK);
    CHECK(memcmp(back, qkv, sizeof qkv) == 0);
    CHECK(st_tensor_to_f32(f, "cls_token", back, 4, &err) == MPSL_OK);
    CHECK(memcmp(back, cls, sizeof cls) == 0);
    CHECK(st_tensor_to_f32(f, "scalar", back, 1, &err) == MPSL_OK);
    CHECK(bits_of(back[0]) == bits_of(scalar));
    CHECK(st_tensor_to_f32(f, "empty", back, 0, &err) == MPSL_OK);
    CHECK(st_metadata_count(f) == 2);
    CHECK(st_metadata_get(f, "format") && strcmp(st_metadata_get(f, "format"), "pt") == 0);
    CHECK(st_metadata_get(f, "note") &&
          strcmp(st_metadata_get(f, "note"), "µ-unicode \"quoted\"") == 0);
    const char *k, *v;
    st_metadata_at(f, 1, &k, &v);
    CHECK(strcmp(k, "note") == 0);
    CHECK(strcmp(st_path(f), path) == 0);
    st_close(f);

    /* Replacing an existing file works, leaves no temporary file, and an empty file with
     * no tensors and no metadata is valid. */
    int before = files_in_dir();
    CHECK(st_write(path, NULL, 0, NULL, &err) == MPSL_OK);
    CHECK(files_in_dir() == before);
    CHECK(st_read(path, &f, &err) == MPSL_OK);
    if (f) {
        CHECK(st_count(f) == 0 && st_metadata_count(f) == 0);
        st_close(f);
    }
}

static void test_write_refusals(void)
{
    float x[4] = {1, 2, 3, 4};
    int64_t s4[1] = {4}, sneg[2] = {2, -2};
    const char *path = wt_path("refused.safetensors");
    const char *odd[] = {"format", NULL};
    const char *dup_meta[] = {"a", "1", "a", "2", NULL};
    static const char bad_utf8[] = "bad\xff";
    const struct {
        st_write_tensor t[2];
        int n;
        const char *const *meta;
        const char *expect;
    } cases[] = {
        {{{"w", 1, s4, x}, {"w", 1, s4, x}}, 2, NULL, "tensor 'w' given twice"},
        {{{"__metadata__", 1, s4, x}}, 1, NULL, "the name '__metadata__' is not allowed"},
        {{{"", 1, s4, x}}, 1, NULL, "the name '' is not allowed"},
        {{{"neg", 2, sneg, x}}, 1, NULL, "tensor 'neg' has a negative dimension in shape [2, -2]"},
        {{{"deep", 9, s4, x}}, 1, NULL, "tensor 'deep' has 9 dimensions"},
        {{{"nodata", 1, s4, NULL}}, 1, NULL, "tensor 'nodata' has no data"},
        {{{bad_utf8, 1, s4, x}}, 1, NULL, "is not valid UTF-8"},
        {{{"w", 1, s4, x}}, 1, odd, "metadata key 'format' has no value"},
        {{{"w", 1, s4, x}}, 1, dup_meta, "metadata key 'a' given twice"},
    };
    int before = files_in_dir();
    for (size_t i = 0; i < MPSL_COUNT(cases); i++) {
        mpsl_error err = {{0}};
        CHECK(st_write(path, cases[i].t, cases[i].n, cases[i].meta, &err) == MPSL_ERR_INVALID);
        CHECK_CONTAINS(err.msg, cases[i].expect);
        CHECK_CONTAINS(err.msg, path);
    }
    CHECK(files_in_dir() == before);
    mpsl_error err = {{0}};
    st_write_tensor ok = {"w", 1, s4, x};
    CHECK(st_write("/nonexistent-dir/x.safetensors", &ok, 1, NULL, &err) == MPSL_ERR_IO);
    CHECK_CONTAINS(err.msg, "/nonexistent-dir/x.safetensors");
}

/* ---------------------------------------------------------------- refusals */

#define E(name, dtype, shape, b, e) \
    "\"" name "\":{\"dtype\":\"" dtype "\",\"shape\":" shape ",\"data_offsets\":[" #b "," #e "]}"

static void test_read_refusals(void)
{
    const struct {
        const char *label;
        const char *json;
        size_t data_len;
        const char *expect[2];
    } cases[] = {
        {"not_json", "{\"a\": ", 0, {"header is not valid JSON", NULL}},
        {"empty_header", "", 0, {"header is not valid JSON", NULL}},
        {"bad_utf8", "{\"a\xff\":1}", 0, {"header is not valid JSON", "0xff"}},
        {"array", "[1, 2]", 0, {"header is a JSON array, not an object", NULL}},
        {"string", "\"x\"", 0, {"header is a JSON string, not an object", NULL}},
        {"duplicate",
         "{" E("blocks.0.w", "F32", "[1]", 0, 4) "," E("blocks.0.w", "F32", "[1]", 4, 8) "}",
         8, {"duplicate key", "blocks.0.w"}},
        {"unknown_dtype", "{" E("w", "F17", "[1]", 0, 4) "}", 4,
         {"tensor 'w': unknown dtype 'F17'", NULL}},
        {"dtype_number", "{\"w\":{\"dtype\":32,\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
         {"tensor 'w': dtype is 32, not a string", NULL}},
        {"shape_negative", "{" E("w", "F32", "[-1,2]", 0, 8) "}", 8,
         {"tensor 'w': shape dimension 0 is -1, not a non-negative integer", NULL}},
        {"shape_real", "{" E("w", "F32", "[2,2.5]", 0, 8) "}", 8,
         {"tensor 'w': shape dimension 1 is 2.5", NULL}},
        {"shape_string", "{" E("w", "F32", "[\"2\"]", 0, 8) "}", 8,
         {"tensor 'w': shape dimension 0 is \"2\"", NULL}},
        {"shape_not_array", "{" E("w", "F32", "4", 0, 16) "}", 16,
         {"tensor 'w': shape is 4, not an array", NULL}},
        {"shape_too_deep", "{" E("w", "F32", "[1,1,1,1,1,1,1,1,1]", 0, 4) "}", 4,
         {"tensor 'w': shape has 9 dimensions", NULL}},
        {"shape_overflow",
         "{" E("w", "F32", "[4611686018427387904,4611686018427387904]", 0, 4) "}", 4,
         {"tensor 'w': shape [4611686018427387904, 4611686018427387904] of F32 is too large",
          NULL}},
        {"span", "{" E("blocks.0.attn.qkv.weight", "F32", "[4,4]", 0, 60) "}", 60,
         {"tensor 'blocks.0.attn.qkv.weight': data_offsets [0, 60] span 60 bytes, but shape "
          "[4, 4] of F32 needs 64", NULL}},
        {"span_f16", "{" E("h", "F16", "[3]", 0, 8) "}", 8,
         {"tensor 'h': data_offsets [0, 8] span 8 bytes, but shape [3] of F16 needs 6", NULL}},
        {"offsets_reversed", "{" E("w", "F32", "[1]", 8, 4) "}", 8,
         {"tensor 'w': data_offsets [8, 4] end before they begin", NULL}},
        {"offsets_one", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4]}}", 4,
         {"tensor 'w': data_offsets is [4], not [begin, end]", NULL}},
        {"offsets_negative", "{" E("w", "F32", "[1]", -4, 0) "}", 4,
         {"tensor 'w': data_offsets is [-4,0]", NULL}},
        {"gap", "{" E("a", "F32", "[2]", 0, 8) "," E("b", "F32", "[2]", 12, 20) "}", 20,
         {"gap of 4 bytes in the data buffer between tensor 'a' (ends at 8) and tensor 'b' "
          "(begins at 12)", NULL}},
        {"gap_start", "{" E("b", "F32", "[2]", 4, 12) "}", 12,
         {"gap of 4 bytes at the start of the data buffer, before tensor 'b'", NULL}},
        {"overlap", "{" E("a", "F32", "[2]", 0, 8) "," E("b", "F32", "[2]", 4, 12) "}", 12,
         {"tensor 'b': data_offsets [4, 12] overlap tensor 'a' [0, 8]", NULL}},
        {"overlap_same", "{" E("a", "F32", "[2]", 0, 8) "," E("b", "F32", "[2]", 0, 8) "}", 8,
         {"overlap tensor", NULL}},
        {"out_of_range", "{" E("a", "F32", "[2]", 0, 8) "}", 4,
         {"tensor 'a': data_offsets [0, 8] extend past the end of the data buffer (4 bytes", NULL}},
        {"trailing", "{" E("a", "F32", "[2]", 0, 8) "}", 12,
         {"4 bytes of data after the last tensor 'a'", NULL}},
        {"no_tensors_data", "{}", 4, {"declares no tensors, but 4 bytes of data follow it", NULL}},
        {"entry_not_object", "{\"w\":[0,4]}", 4, {"tensor 'w': entry is a JSON array", NULL}},
        {"missing_offsets", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4,
         {"tensor 'w': no data_offsets", NULL}},
        {"missing_dtype", "{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
         {"tensor 'w': no dtype", NULL}},
        {"unknown_field",
         "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":1}}", 4,
         {"tensor 'w': unknown field 'x'", NULL}},
        {"metadata_number", "{\"__metadata__\":{\"format\":\"pt\",\"epochs\":3}}", 0,
         {"__metadata__ 'epochs' is 3, not a string", NULL}},
        {"metadata_not_object", "{\"__metadata__\":\"pt\"}", 0,
         {"__metadata__ is a JSON string, not an object", NULL}},
        {"nul_key", "{\"a\\u0000b\":{}}", 0, {"header is not valid JSON", NULL}},
    };
    for (size_t i = 0; i < MPSL_COUNT(cases); i++) {
        char name[64];
        snprintf(name, sizeof name, "%s.safetensors", cases[i].label);
        const char *path = wt_path(name);
        wt_write_json(path, cases[i].json, NULL, cases[i].data_len);
        mpsl_error err = {{0}};
        st_file *f = (st_file *)&err; /* must be reset to NULL */
        int rc = st_read(path, &f, &err);
        CHECK(rc == MPSL_ERR_INVALID);
        CHECK(f == NULL);
        if (rc != MPSL_ERR_INVALID) {
            fprintf(stderr, "case %s was accepted\n", cases[i].label);
            st_close(f);
            continue;
        }
        CHECK_CONTAINS(err.msg, path);
        for (int j = 0; j < 2; j++) {
            if (cases[i].expect[j]) {
                CHECK_CONTAINS(err.msg, cases[i].expect[j]);
            }
        }
    }

    /* The size field itself. */
    mpsl_error err = {{0}};
    st_file *f = NULL;
    const char *p = wt_path("short.safetensors");
    FILE *fp = fopen(p, "wb");
    fwrite("\x02\0\0\0\0", 1, 5, fp);
    fclose(fp);
    CHECK(st_read(p, &f, &err) == MPSL_ERR_INVALID && !f);
    CHECK_CONTAINS(err.msg, p);
    CHECK_CONTAINS(err.msg, "file is 5 bytes, too short");

    p = wt_path("empty.safetensors");
    fclose(fopen(p, "wb"));
    CHECK(st_read(p, &f, &err) == MPSL_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "file is 0 bytes");

    p = wt_path("huge_header.safetensors");
    wt_write_raw(p, 200000000, "{}", 2, NULL, 0);
    CHECK(st_read(p, &f, &err) == MPSL_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "header size 200000000 is over the limit of 100000000 bytes");
    CHECK_CONTAINS(err.msg, p);

    p = wt_path("header_past_end.safetensors");
    wt_write_raw(p, 100, "{}", 2, NULL, 10);
    CHECK(st_read(p, &f, &err) == MPSL_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "header size 100 is more than the 12 bytes that follow it");

    p = wt_path("all_ones.safetensors");
    wt_write_raw(p, UINT64_MAX, "{}", 2, NULL, 0);
    CHECK(st_read(p, &f, &err) == MPSL_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "is over the limit");

    /* Accepted edge cases: header padded with spaces, a zero-size tensor between two others,
     * a scalar, metadata alone, the size field counting only part of the JSON's padding. */
    p = wt_path("edges.safetensors");
    const char *json = "{" E("a", "F32", "[1]", 0, 4) "," E("z", "F32", "[0,5]", 4, 4) ","
                       E("s", "BF16", "[]", 4, 6) ",\"__metadata__\":{}}      ";
    wt_write_json(p, json, NULL, 6);
    CHECK(st_read(p, &f, &err) == MPSL_OK);
    if (f) {
        CHECK(st_count(f) == 3 && st_find(f, "z")->numel == 0 && st_find(f, "s")->numel == 1);
        CHECK(strcmp(st_tensor_at(f, 1)->name, "z") == 0);
        st_close(f);
    } else {
        fprintf(stderr, "%s\n", err.msg);
    }

    /* Not a file at all. */
    CHECK(st_read(wt_path("missing.safetensors"), &f, &err) == MPSL_ERR_IO);
    CHECK_CONTAINS(err.msg, "cannot open");
    CHECK_CONTAINS(err.msg, "missing.safetensors");
    CHECK(st_read(wt_dir, &f, &err) == MPSL_ERR_IO);
    CHECK_CONTAINS(err.msg, "not a regular file");
}

int main(void)
{
    wt_setup();
    test_f16();
    test_bf16();
    test_convert_file();
    test_round_trip();
    test_write_refusals();
    test_read_refusals();
    return check_exit();
}
