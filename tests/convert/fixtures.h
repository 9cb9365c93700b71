/* fixtures.h: helpers for the convert tests: temporary trees, small files, solid-colour
 * JPEG and PNG images (written with libjpeg and libpng), running `mpsl convert`, and opening a
 * prepared file with the `prepared` plugin as the host does. */
#ifndef MPSL_TEST_CONVERT_FIXTURES_H
#define MPSL_TEST_CONVERT_FIXTURES_H

#include <stdint.h>
#include <stdio.h>

#include "mpsl/plugin.h"

/* mkdir -p; aborts the test on failure. */
void fx_mkdirs(const char *path);
/* Write text (printf-style) to path, creating its folders. */
void fx_write(const char *path, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A solid w x h image of colour (r,g,b); .jpg -> JPEG (quality 100, no chroma subsampling),
 * .png -> PNG. */
void fx_image(const char *path, int w, int h, int r, int g, int b);
/* Three vertical stripes of equal width: colours a | b | c (PNG or JPEG by name). */
void fx_stripes(const char *path, int w, int h, const int a[3], const int b[3], const int c[3]);

/* Run the mpsl binary with args (a shell command line tail); output (stdout + stderr) in out.
 * Returns the exit status. */
int fx_mpsl(const char *mpsl, char *out, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* The prepared plugin, loaded once by fx_plugin_load. */
int fx_plugin_load(const char *so_path);
void fx_plugin_unload(void);
/* Open path with extra YAML lines (may be NULL); status returned, message in err. */
int fx_open(const char *path, const char *extra_yaml, mpsl_dataset_info *info, void **state,
            mpsl_error *err);
void fx_close(void *state);
const mpsl_dataset_api *fx_api(void);

/* A batch for info (every modality), n samples. */
mpsl_batch *fx_batch(const mpsl_dataset_info *info, int64_t n);
void fx_batch_free(mpsl_batch *b, const mpsl_dataset_info *info);

/* Text of sequence s of sample i of an int32 text modality of shape (S, L) (or (L,) with
 * S = 1), bytes up to the first 0 (malloc'd). */
char *fx_text(const mpsl_tensor *t, int64_t i, int s, int64_t S, int64_t L);

#endif
