/* fixtures.c: see fixtures.h. */
#include "fixtures.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <jpeglib.h>
#include <png.h>

#include "check.h"
#include "config/config.h"
#include "plugin/loader.h"

void fx_mkdirs(const char *path)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            mkdir(buf, 0755);
            *p = '/';
        }
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "cannot create %s: %s\n", buf, strerror(errno));
        exit(1);
    }
}

static void mkparent(const char *path)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    char *slash = strrchr(buf, '/');
    if (slash && slash != buf) {
        *slash = '\0';
        fx_mkdirs(buf);
    }
}

void fx_write(const char *path, const char *fmt, ...)
{
    mkparent(path);
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "cannot write %s: %s\n", path, strerror(errno));
        exit(1);
    }
    va_list ap;
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    fclose(f);
}

static void write_rgb(const char *path, int w, int h, const uint8_t *rgb)
{
    mkparent(path);
    size_t len = strlen(path);
    if (len > 4 && strcmp(path + len - 4, ".png") == 0) {
        png_image img;
        memset(&img, 0, sizeof img);
        img.version = PNG_IMAGE_VERSION;
        img.width = (png_uint_32)w;
        img.height = (png_uint_32)h;
        img.format = PNG_FORMAT_RGB;
        if (!png_image_write_to_file(&img, path, 0, rgb, 0, NULL)) {
            fprintf(stderr, "cannot write %s: %s\n", path, img.message);
            exit(1);
        }
        return;
    }
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr jerr;
    c.err = jpeg_std_error(&jerr);
    jpeg_create_compress(&c);
    jpeg_stdio_dest(&c, f);
    c.image_width = (JDIMENSION)w;
    c.image_height = (JDIMENSION)h;
    c.input_components = 3;
    c.in_color_space = JCS_RGB;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, 100, TRUE);
    for (int i = 0; i < c.num_components; i++) { /* no chroma subsampling */
        c.comp_info[i].h_samp_factor = 1;
        c.comp_info[i].v_samp_factor = 1;
    }
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = (JSAMPROW)(rgb + (size_t)c.next_scanline * (size_t)w * 3);
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    fclose(f);
}

void fx_image(const char *path, int w, int h, int r, int g, int b)
{
    uint8_t *rgb = malloc((size_t)w * (size_t)h * 3);
    for (int i = 0; i < w * h; i++) {
        rgb[3 * i] = (uint8_t)r;
        rgb[3 * i + 1] = (uint8_t)g;
        rgb[3 * i + 2] = (uint8_t)b;
    }
    write_rgb(path, w, h, rgb);
    free(rgb);
}

void fx_stripes(const char *path, int w, int h, const int a[3], const int b[3], const int c[3])
{
    uint8_t *rgb = malloc((size_t)w * (size_t)h * 3);
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++) {
            const int *col = x < w / 3 ? a : x < 2 * w / 3 ? b : c;
            uint8_t *p = rgb + ((size_t)y * w + x) * 3;
            p[0] = (uint8_t)col[0];
            p[1] = (uint8_t)col[1];
            p[2] = (uint8_t)col[2];
        }
    }
    write_rgb(path, w, h, rgb);
    free(rgb);
}

int fx_mpsl(const char *mpsl, char *out, size_t cap, const char *fmt, ...)
{
    char args[8192], cmd[9000];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "'%s' %s 2>&1", mpsl, args);
    FILE *p = popen(cmd, "r");
    if (!p) {
        snprintf(out, cap, "popen failed");
        return -1;
    }
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* ------------------------------------------------------------ the plugin */

static loaded_plugin lp;

int fx_plugin_load(const char *so_path)
{
    mpsl_error err = {{0}};
    int rc = plugin_load(so_path, MPSL_KIND_DATASET, &lp, &err);
    if (rc != MPSL_OK) {
        fprintf(stderr, "%s\n", err.msg);
    }
    return rc;
}

void fx_plugin_unload(void)
{
    plugin_unload(&lp);
}

const mpsl_dataset_api *fx_api(void)
{
    return lp.desc->api;
}

int fx_open(const char *path, const char *extra_yaml, mpsl_dataset_info *info, void **state,
            mpsl_error *err)
{
    const mpsl_plugin_desc *d = lp.desc;
    char yaml[4096];
    snprintf(yaml, sizeof yaml, "path: %s\n%s", path, extra_yaml ? extra_yaml : "");
    void *buf = calloc(1, d->params_size);
    cfg_node *map = cfg_parse_string(yaml, "test.yaml", err);
    CHECK(map != NULL);
    int rc = cfg_parse_params(map, d->params, d->n_params, buf, d->params_size, "data.dataset",
                              NULL, err);
    CHECK(rc == MPSL_OK);
    memset(info, 0, sizeof *info);
    err->msg[0] = '\0';
    *state = NULL;
    rc = fx_api()->open(host_services(), buf, "test.yaml:1:1", info, state, err);
    free(buf);
    cfg_free(map);
    return rc;
}

void fx_close(void *state)
{
    fx_api()->close(state);
}

mpsl_batch *fx_batch(const mpsl_dataset_info *info, int64_t n)
{
    mpsl_batch *b = calloc(1, sizeof *b);
    for (int m = 0; m < info->n_modalities; m++) {
        int64_t e = 1;
        for (int d = 0; d < info->modality[m].ndim; d++) {
            e *= info->modality[m].shape[d];
        }
        b->modality[m].data = calloc((size_t)(n * e), 4);
        b->modality[m].dtype = info->modality[m].dtype;
    }
    b->labels = calloc((size_t)n, sizeof *b->labels);
    return b;
}

void fx_batch_free(mpsl_batch *b, const mpsl_dataset_info *info)
{
    for (int m = 0; m < info->n_modalities; m++) {
        free(b->modality[m].data);
    }
    free(b->labels);
    free(b);
}

char *fx_text(const mpsl_tensor *t, int64_t i, int s, int64_t S, int64_t L)
{
    const int32_t *p = (const int32_t *)t->data + (i * S + s) * L;
    char *out = calloc((size_t)L + 1, 1);
    for (int64_t k = 0; k < L && p[k]; k++) {
        out[k] = (char)p[k];
    }
    return out;
}
