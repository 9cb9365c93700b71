/* image.c: image decoding (libjpeg-turbo, libpng) and square resizing (libswscale) for the
 * converters; see writer.h. */
#include "convert/writer.h"

#include <errno.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>
#include <png.h>
#include <libswscale/swscale.h>
#include <libavutil/pixfmt.h>

#include "util/util.h"

#define PREP_MAX_SIDE 32768

/* ---------------------------------------------------------------- JPEG */

typedef struct jpeg_err {
    struct jpeg_error_mgr mgr;
    jmp_buf jump;
    int premature_end;
    char msg[JMSG_LENGTH_MAX];
} jpeg_err;

static void jpeg_fail(j_common_ptr cinfo)
{
    jpeg_err *e = (jpeg_err *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, e->msg);
    longjmp(e->jump, 1);
}

/* Warnings are not printed; a premature end of data is remembered and refused. */
static void jpeg_message(j_common_ptr cinfo, int level)
{
    jpeg_err *e = (jpeg_err *)cinfo->err;
    if (level < 0) {
        if (cinfo->err->msg_code == JWRN_JPEG_EOF) {
            e->premature_end = 1;
        }
        cinfo->err->num_warnings++;
    }
}

static int load_jpeg(FILE *f, const char *path, uint8_t **pixels, int *width, int *height,
                     mpsl_error *err)
{
    struct jpeg_decompress_struct cinfo;
    jpeg_err je;
    uint8_t *volatile out = NULL;
    uint8_t *volatile row = NULL;
    memset(&cinfo, 0, sizeof cinfo);
    cinfo.err = jpeg_std_error(&je.mgr);
    je.mgr.error_exit = jpeg_fail;
    je.mgr.emit_message = jpeg_message;
    je.premature_end = 0;
    if (setjmp(je.jump)) {
        jpeg_destroy_decompress(&cinfo);
        free(out);
        free(row);
        return mpsl_errs(err, MPSL_ERR_INVALID, "convert: %s: corrupt JPEG: %s", path, je.msg);
    }
    jpeg_create_decompress(&cinfo);
    jpeg_stdio_src(&cinfo, f);
    jpeg_read_header(&cinfo, TRUE);
    int cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
    cinfo.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
    jpeg_start_decompress(&cinfo);
    int w = (int)cinfo.output_width, h = (int)cinfo.output_height;
    if (w <= 0 || h <= 0 || w > PREP_MAX_SIDE || h > PREP_MAX_SIDE) {
        jpeg_destroy_decompress(&cinfo);
        return mpsl_errs(err, MPSL_ERR_INVALID,
                         "convert: %s: JPEG of %dx%d pixels, expected 1..%d on each side", path,
                         w, h, PREP_MAX_SIDE);
    }
    int comps = cinfo.output_components;
    out = malloc((size_t)w * (size_t)h * 3);
    row = malloc((size_t)w * (size_t)comps);
    if (!out || !row) {
        jpeg_destroy_decompress(&cinfo);
        free(out);
        free(row);
        return mpsl_errs(err, MPSL_ERR_NOMEM, "convert: %s: out of memory for %dx%d pixels",
                         path, w, h);
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW rp = row;
        size_t y = cinfo.output_scanline;
        jpeg_read_scanlines(&cinfo, &rp, 1);
        uint8_t *dst = out + y * (size_t)w * 3;
        if (cmyk) {
            /* libjpeg hands out Adobe's inverted CMYK: R = C * K / 255. */
            for (int x = 0; x < w; x++) {
                unsigned c = row[4 * x], m = row[4 * x + 1], yy = row[4 * x + 2],
                         k = row[4 * x + 3];
                dst[3 * x] = (uint8_t)((c * k + 127) / 255);
                dst[3 * x + 1] = (uint8_t)((m * k + 127) / 255);
                dst[3 * x + 2] = (uint8_t)((yy * k + 127) / 255);
            }
        } else {
            memcpy(dst, row, (size_t)w * 3);
        }
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    free(row);
    if (je.premature_end) {
        free(out);
        return mpsl_errs(err, MPSL_ERR_INVALID, "convert: %s: truncated JPEG (premature end "
                                                "of data)", path);
    }
    *pixels = out;
    *width = w;
    *height = h;
    return MPSL_OK;
}

/* ---------------------------------------------------------------- PNG */

static int load_png(const char *path, uint8_t **pixels, int *width, int *height,
                    mpsl_error *err)
{
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&img, path)) {
        int rc = mpsl_errs(err, MPSL_ERR_INVALID, "convert: %s: corrupt PNG: %s", path,
                           img.message);
        png_image_free(&img);
        return rc;
    }
    if (img.width == 0 || img.height == 0 || img.width > PREP_MAX_SIDE ||
        img.height > PREP_MAX_SIDE) {
        int rc = mpsl_errs(err, MPSL_ERR_INVALID,
                           "convert: %s: PNG of %ux%u pixels, expected 1..%d on each side",
                           path, img.width, img.height, PREP_MAX_SIDE);
        png_image_free(&img);
        return rc;
    }
    img.format = PNG_FORMAT_RGB;
    uint8_t *out = malloc(PNG_IMAGE_SIZE(img));
    if (!out) {
        png_image_free(&img);
        return mpsl_errs(err, MPSL_ERR_NOMEM, "convert: %s: out of memory", path);
    }
    png_color white = {255, 255, 255}; /* transparent pixels are composited onto white */
    if (!png_image_finish_read(&img, &white, out, 0, NULL)) {
        int rc = mpsl_errs(err, MPSL_ERR_INVALID, "convert: %s: corrupt PNG: %s", path,
                           img.message);
        png_image_free(&img);
        free(out);
        return rc;
    }
    *pixels = out;
    *width = (int)img.width;
    *height = (int)img.height;
    return MPSL_OK;
}

/* ---------------------------------------------------------------- load */

int prep_image_load(const char *path, uint8_t **pixels, int *width, int *height,
                    mpsl_error *err)
{
    *pixels = NULL;
    *width = *height = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        return mpsl_errs(err, MPSL_ERR_IO, "convert: cannot open image %s: %s", path,
                         strerror(errno));
    }
    unsigned char magic[8] = {0};
    size_t got = fread(magic, 1, sizeof magic, f);
    int rc;
    if (got >= 3 && magic[0] == 0xFF && magic[1] == 0xD8 && magic[2] == 0xFF) {
        rewind(f);
        rc = load_jpeg(f, path, pixels, width, height, err);
        fclose(f);
    } else if (got == 8 && memcmp(magic, "\x89PNG\r\n\x1a\n", 8) == 0) {
        fclose(f);
        rc = load_png(path, pixels, width, height, err);
    } else {
        fclose(f);
        rc = mpsl_errs(err, MPSL_ERR_INVALID,
                       "convert: %s: %s, expected a JPEG or PNG image", path,
                       got == 0 ? "empty file" : "unknown image format");
    }
    return rc;
}

/* ---------------------------------------------------------------- resize */

int prep_image_resize(const uint8_t *rgb, int width, int height, int size, uint8_t *out,
                      mpsl_error *err)
{
    if (width <= 0 || height <= 0 || size <= 0 || size > PREP_MAX_SIDE) {
        return mpsl_errs(err, MPSL_ERR_INVALID, "convert: cannot resize a %dx%d image to %d",
                         width, height, size);
    }
    int side = width < height ? width : height;
    int x0 = (width - side) / 2, y0 = (height - side) / 2;
    size_t plane = (size_t)side * (size_t)side;
    uint8_t *crop = malloc(plane * 3);
    if (!crop) {
        return mpsl_errs(err, MPSL_ERR_NOMEM, "convert: out of memory resizing an image");
    }
    /* Split the centred square into R, G, B planes; each is scaled as a grey image, so no
     * colour-space conversion can touch the values. */
    for (int y = 0; y < side; y++) {
        const uint8_t *src = rgb + ((size_t)(y0 + y) * (size_t)width + (size_t)x0) * 3;
        uint8_t *r = crop + (size_t)y * side, *g = r + plane, *b = g + plane;
        for (int x = 0; x < side; x++) {
            r[x] = src[3 * x];
            g[x] = src[3 * x + 1];
            b[x] = src[3 * x + 2];
        }
    }
    size_t oplane = (size_t)size * (size_t)size;
    if (side == size) {
        memcpy(out, crop, plane * 3);
        free(crop);
        return MPSL_OK;
    }
    int flags = (side > size ? SWS_AREA : SWS_BILINEAR) | SWS_ACCURATE_RND;
    struct SwsContext *sws = sws_getContext(side, side, AV_PIX_FMT_GRAY8, size, size,
                                            AV_PIX_FMT_GRAY8, flags, NULL, NULL, NULL);
    if (!sws) {
        free(crop);
        return mpsl_errs(err, MPSL_ERR_INTERNAL,
                         "convert: libswscale refused to scale %dx%d to %dx%d", side, side,
                         size, size);
    }
    for (int c = 0; c < 3; c++) {
        const uint8_t *sp[4] = {crop + (size_t)c * plane, NULL, NULL, NULL};
        int ss[4] = {side, 0, 0, 0};
        uint8_t *dp[4] = {out + (size_t)c * oplane, NULL, NULL, NULL};
        int ds[4] = {size, 0, 0, 0};
        int h = sws_scale(sws, sp, ss, 0, side, dp, ds);
        if (h != size) {
            sws_freeContext(sws);
            free(crop);
            return mpsl_errs(err, MPSL_ERR_INTERNAL,
                             "convert: libswscale produced %d rows, expected %d", h, size);
        }
    }
    sws_freeContext(sws);
    free(crop);
    return MPSL_OK;
}

int prep_image_load_square(const char *path, int size, uint8_t *out, mpsl_error *err)
{
    uint8_t *px = NULL;
    int w = 0, h = 0;
    int rc = prep_image_load(path, &px, &w, &h, err);
    if (rc != MPSL_OK) {
        return rc;
    }
    rc = prep_image_resize(px, w, h, size, out, err);
    if (rc != MPSL_OK) {
        mpsl_err_prefix(err, "%s", path);
    }
    free(px);
    return rc;
}
