/* writer.h: writing prepared dataset files (core/include/mpsl/prepared_format.h), plus the
 * helpers every converter needs: UTF-8 text to int32 bytes, image decoding (JPEG, PNG) and
 * resizing, and progress lines. (Float to half: mpsl_f32_to_f16 in util/half.h.)
 *
 * A prepared file is written in ONE streaming pass, in the file's own order:
 *
 *     train labels            prep_writer_labels(w, MPSL_SPLIT_TRAIN, ...)   (n_train in all)
 *     train modality 0        prep_writer_samples(w, MPSL_SPLIT_TRAIN, 0, ...) (n_train)
 *     ...
 *     train modality m-1
 *     test labels             prep_writer_labels(w, MPSL_SPLIT_TEST, ...)    (n_test in all)
 *     test modality 0 .. m-1
 *
 * Each of these sections may be written in any number of calls (chunks), but a section must
 * be complete before the next one starts; a call out of order is refused with a message that
 * says which section was expected. prep_writer_close() refuses an incomplete file.
 *
 * The data goes to "PATH.tmp.PID"; close() patches the header (payload length, CRC32 of the
 * payload computed with zlib while streaming), fsync()s the file and renames it to PATH
 * (then fsyncs the directory): PATH only ever holds a complete file. On any failure (and with
 * prep_writer_abort()) the temporary file is removed and PATH is left untouched.
 *
 * Example (two modalities, 10 training and 2 test samples):
 *
 *     prep_modality_spec mods[2] = {
 *         { "image", MPSL_PREP_U8, 3, {3, 224, 224}, 1.0f / 255.0f, 0.0f },
 *         { "text",  MPSL_PREP_I32, 2, {5, 64, 0},   1.0f, 0.0f },
 *     };
 *     prep_writer *w;
 *     if (prep_writer_open("out.mpsl", MPSL_PREP_RETRIEVAL, 0, NULL, mods, 2, 10, 2,
 *                          "flickr30k (convert 1.0)", &w, &err) != MPSL_OK) return ...;
 *     rc = prep_writer_labels(w, MPSL_SPLIT_TRAIN, labels, 10, &err);
 *     rc = prep_writer_samples(w, MPSL_SPLIT_TRAIN, 0, pixels, 10, &err);  // u8, 10*3*224*224
 *     ...
 *     rc = prep_writer_close(w, &err);   // frees w whatever happens
 *
 * Labels are checked as they arrive: classification labels must lie in [0, n_classes);
 * retrieval labels must be the sample's index within its split (label i == i), which is what
 * the retrieval task pairs images and captions by.
 *
 * All functions return MPSL_OK or a negative mpsl_status with err filled; messages start with
 * "convert: " and name the output file. Not thread-safe per writer (one writer per thread). */
#ifndef MPSL_CONVERT_WRITER_H
#define MPSL_CONVERT_WRITER_H

#include <stddef.h>
#include <stdint.h>

#include "mpsl/plugin.h"
#include "mpsl/prepared_format.h"

/* ---------------------------------------------------------------- the writer */

/* One modality of the file: how a sample is stored and its per-sample shape. */
typedef struct prep_modality_spec {
    const char *name;          /* "image", "audio", "text", "video": < 32 bytes, [a-z0-9_] */
    mpsl_prep_storage storage; /* MPSL_PREP_U8, F16, F32 or I32 */
    int ndim;                  /* 1..3 */
    int64_t shape[3];          /* per sample; entries past ndim are ignored */
    float scale, offset;       /* value = stored * scale + offset (U8/F16/F32); I32: 1, 0 */
} prep_modality_spec;

typedef struct prep_writer prep_writer;

/* Start writing PATH. n_classes: the number of classes (classification, >= 1; class_names is
 * NULL or n_classes names, each < 64 bytes, stored in the header) or 0 for retrieval
 * (class_names must be NULL). n_modalities in 1..MPSL_PREP_MAX_MODALITIES. n_train,
 * n_test >= 0. source: free text < 128 bytes, e.g. "flickr30k (convert 1.0)". */
int prep_writer_open(const char *path, mpsl_prep_task task, uint32_t n_classes,
                     const char *const *class_names, const prep_modality_spec *modalities,
                     int n_modalities, int64_t n_train, int64_t n_test, const char *source,
                     prep_writer **w, mpsl_error *err);

/* The next n labels of a split (int32). */
int prep_writer_labels(prep_writer *w, mpsl_split split, const int32_t *labels, int64_t n,
                       mpsl_error *err);

/* The next n samples of modality `modality` of a split, already in the storage dtype:
 * n * numel(shape) elements of 1 (U8), 2 (F16, as uint16_t bits), 4 (F32, I32) bytes. */
int prep_writer_samples(prep_writer *w, mpsl_split split, int modality, const void *data,
                        int64_t n, mpsl_error *err);

/* Finish: refuses a file with sections still short; patches the header, fsyncs, renames.
 * Always frees w (on failure the temporary file is removed). */
int prep_writer_close(prep_writer *w, mpsl_error *err);

/* Give up: remove the temporary file and free w. NULL is fine. */
void prep_writer_abort(prep_writer *w);

/* The byte size of a file with these modalities and counts (header included): what the
 * converter will write, for messages and disk-space checks. -1 on overflow. */
int64_t prep_file_bytes(const prep_modality_spec *modalities, int n_modalities,
                        uint32_t n_classes, int64_t n_train, int64_t n_test);

/* ---------------------------------------------------------------- text */

/* UTF-8 bytes of a NUL-terminated string as int32 values 1..255, zero-padded to len; a longer
 * string is truncated at len bytes, backing up to the start of a multi-byte character so no
 * partial character is kept. Returns the number of bytes kept. */
int64_t prep_text_bytes(const char *utf8, int32_t *out, int64_t len);

/* ---------------------------------------------------------------- images */

/* Decode a JPEG (libjpeg-turbo) or PNG (libpng) file, chosen by its first bytes (not by its
 * name), to 8-bit RGB: *pixels (malloc'd, h*w*3, row-major HWC), *width, *height.
 * Greyscale, palette, alpha (dropped; not composited), 16-bit and CMYK/YCCK inputs are
 * converted to RGB. Refuses (naming the file) a missing file, an unknown format, a corrupt
 * or truncated image, and images larger than 32768 pixels on a side. */
int prep_image_load(const char *path, uint8_t **pixels, int *width, int *height,
                    mpsl_error *err);

/* Center-crop an RGB image (HWC u8) to the largest centred square, then resize it to
 * size x size with libswscale's area filter (SWS_AREA, which averages when shrinking) or
 * bilinear (SWS_BILINEAR) when growing, writing planar CHW u8 to out (3*size*size). */
int prep_image_resize(const uint8_t *rgb, int width, int height, int size, uint8_t *out,
                      mpsl_error *err);

/* load + resize in one call, for converters: out (3*size*size, CHW). */
int prep_image_load_square(const char *path, int size, uint8_t *out, mpsl_error *err);

/* ---------------------------------------------------------------- progress */

/* Progress lines on stderr for long conversions: "convert NAME: what done/total (pct%),
 * rate/s, ETA" at most every `interval` seconds, and always the last one. */
typedef struct prep_progress {
    const char *name;          /* dataset name */
    const char *what;          /* "train images" */
    int64_t total;
    double start, last, interval;
    int quiet;                 /* 1: print nothing */
} prep_progress;

void prep_progress_start(prep_progress *p, const char *name, const char *what, int64_t total,
                         int quiet);
void prep_progress_step(prep_progress *p, int64_t done);

#endif
