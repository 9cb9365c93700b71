/* test_fmnist.c: the fashion_mnist dataset plugin, loaded as the host loads it. Checks the
 * real Debian files (sizes, class counts and names, the known pixel mean and std) and refusals on
 * crafted broken files, each of which must name the offending file.
 * Usage: test_fmnist /path/to/fashion_mnist.so */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "check.h"
#include "config/config.h"
#include "plugin/loader.h"

#define PIX 784
#define REAL_DIR "/usr/share/datasets/fashion-mnist"

static loaded_plugin lp;
static const mpsl_dataset_api *api;
static char tmp_root[256];

/* ------------------------------------------------------------ params and open */

/* Fill the plugin's params block from YAML text the way the host does (NULL: defaults). */
static void *make_params(const char *yaml)
{
    const mpsl_plugin_desc *d = lp.desc;
    void *buf = calloc(1, d->params_size);
    mpsl_error err = {{0}};
    cfg_node *map = NULL;
    if (yaml) {
        map = cfg_parse_string(yaml, "test.yaml", &err);
        CHECK(map != NULL);
        if (!map) {
            fprintf(stderr, "%s\n", err.msg);
        }
    }
    int rc = cfg_parse_params(map, d->params, d->n_params, buf, d->params_size, "data.dataset",
                              NULL, &err);
    CHECK(rc == MPSL_OK);
    if (rc != MPSL_OK) {
        fprintf(stderr, "%s\n", err.msg);
    }
    /* Strings in buf point into the tree: keep it alive with the block (freed in pair). */
    void **pair = malloc(2 * sizeof *pair);
    pair[0] = buf;
    pair[1] = map;
    return pair;
}

static void free_params(void *pair)
{
    void **p = pair;
    free(p[0]);
    cfg_free(p[1]);
    free(p);
}

/* Open with the given YAML; returns the status, state in *state, message in err. */
static int open_with(const char *yaml, mpsl_dataset_info *info, void **state, mpsl_error *err)
{
    void *pair = make_params(yaml);
    memset(info, 0, sizeof *info);
    err->msg[0] = '\0';
    int rc = api->open(host_services(), ((void **)pair)[0], "test.yaml:1:1", info, state, err);
    free_params(pair);
    return rc;
}

/* Open a crafted dir; expect a refusal whose message holds every needle (NULL-terminated). */
static void expect_refusal(const char *dir, const char *extra_yaml, const char *const *needles)
{
    char yaml[2048];
    snprintf(yaml, sizeof yaml, "dir: %s\n%s", dir, extra_yaml ? extra_yaml : "");
    mpsl_dataset_info info;
    void *state = (void *)1;
    mpsl_error err;
    int rc = open_with(yaml, &info, &state, &err);
    CHECK(rc != MPSL_OK);
    CHECK(state == NULL);
    fprintf(stderr, "refused as expected: %s\n", err.msg);
    for (const char *const *n = needles; *n; n++) {
        CHECK_CONTAINS(err.msg, *n);
    }
    if (rc == MPSL_OK) {
        api->close(state);
    }
}

/* The ten class names the plugin reports (ABI 2.1), in label order, spelled as Zalando's
 * dataset description prints them. */
static void check_class_names(const mpsl_dataset_info *info)
{
    static const char *const expected[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress",
                                             "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                                             "Ankle boot"};
    CHECK(info->class_names != NULL);
    for (int c = 0; info->class_names && c < 10; c++) {
        CHECK(info->class_names[c] && strcmp(info->class_names[c], expected[c]) == 0);
    }
}

/* ------------------------------------------------------------ crafted files */

static void put_be32(unsigned char *b, uint32_t v)
{
    b[0] = (unsigned char)(v >> 24);
    b[1] = (unsigned char)(v >> 16);
    b[2] = (unsigned char)(v >> 8);
    b[3] = (unsigned char)v;
}

/* Write an IDX file gzip-compressed: magic, then dims (n_dims of them), then payload. */
static void write_idx(const char *path, uint32_t magic, const uint32_t *dims, int n_dims,
                      const unsigned char *payload, size_t len)
{
    gzFile gz = gzopen(path, "wb");
    CHECK(gz != NULL);
    unsigned char hdr[16];
    put_be32(hdr, magic);
    for (int i = 0; i < n_dims; i++) {
        put_be32(hdr + 4 + 4 * i, dims[i]);
    }
    CHECK(gzwrite(gz, hdr, (unsigned)(4 + 4 * n_dims)) == 4 + 4 * n_dims);
    if (len) {
        CHECK(gzwrite(gz, payload, (unsigned)len) == (int)len);
    }
    CHECK(gzclose(gz) == Z_OK);
}

typedef struct craft {
    uint32_t img_magic, lab_magic;
    uint32_t n_img, n_lab, rows, cols;
    size_t img_bytes;      /* pixel bytes actually written */
    int bad_label_at;      /* -1: none */
} craft;

/* A valid small split: n samples, pixel j of sample i = (i * 31 + j) % 256, label i % 10. */
static craft craft_ok(uint32_t n)
{
    craft c = {2051, 2049, n, n, 28, 28, (size_t)n * PIX, -1};
    return c;
}

static void write_split(const char *dir, const char *prefix, const craft *c)
{
    char path[512];
    size_t full = (size_t)c->n_img * c->rows * c->cols;
    size_t bytes = c->img_bytes > full ? c->img_bytes : full;
    unsigned char *pix = malloc(bytes ? bytes : 1);
    for (size_t k = 0; k < bytes; k++) {
        pix[k] = (unsigned char)(((k / PIX) * 31 + k % PIX) % 256);
    }
    uint32_t idim[3] = {c->n_img, c->rows, c->cols};
    snprintf(path, sizeof path, "%s/%s-images-idx3-ubyte.gz", dir, prefix);
    write_idx(path, c->img_magic, idim, 3, pix, c->img_bytes);
    unsigned char *lab = malloc(c->n_lab ? c->n_lab : 1);
    for (uint32_t i = 0; i < c->n_lab; i++) {
        lab[i] = (unsigned char)(i % 10);
    }
    if (c->bad_label_at >= 0) {
        lab[c->bad_label_at] = 10;
    }
    snprintf(path, sizeof path, "%s/%s-labels-idx1-ubyte.gz", dir, prefix);
    write_idx(path, c->lab_magic, &c->n_lab, 1, lab, c->n_lab);
    free(pix);
    free(lab);
}

/* A fresh dir under tmp_root holding a valid train (20) and test (5) split; returns it. */
static const char *craft_dir(const char *name)
{
    static char dir[512];
    snprintf(dir, sizeof dir, "%s/%s", tmp_root, name);
    CHECK(mkdir(dir, 0700) == 0);
    craft tr = craft_ok(20), te = craft_ok(5);
    write_split(dir, "train", &tr);
    write_split(dir, "t10k", &te);
    return dir;
}

static void path_of(char *buf, size_t size, const char *dir, const char *file)
{
    snprintf(buf, size, "%s/%s", dir, file);
}

/* ------------------------------------------------------------ tests */

static void test_crafted_ok(void)
{
    const char *dir = craft_dir("ok");
    char yaml[1200];
    snprintf(yaml, sizeof yaml, "dir: %s\n", dir);
    mpsl_dataset_info info;
    void *state = NULL;
    mpsl_error err;
    CHECK(open_with(yaml, &info, &state, &err) == MPSL_OK);
    CHECK(info.n_train == 20 && info.n_test == 5 && info.n_classes == 10);
    check_class_names(&info);
    CHECK(info.n_modalities == 1);
    CHECK(strcmp(info.modality[0].name, "image") == 0);
    CHECK(info.modality[0].dtype == MPSL_F32 && info.modality[0].ndim == 3);
    CHECK(info.modality[0].shape[0] == 1 && info.modality[0].shape[1] == 28 &&
          info.modality[0].shape[2] == 28);
    const int32_t *lab = api->labels(state, MPSL_SPLIT_TRAIN);
    CHECK(lab && lab[0] == 0 && lab[13] == 3 && lab[19] == 9);
    CHECK(api->labels(state, MPSL_SPLIT_TEST)[4] == 4);

    float data[3 * PIX];
    int32_t labels[3] = {-1, -1, -1};
    mpsl_batch b;
    memset(&b, 0, sizeof b);
    b.modality[0].data = data;
    b.modality[0].dtype = MPSL_F32;
    b.labels = labels;
    const int64_t idx[3] = {7, 0, 19};
    /* fill() writes samples and labels only: the host sets b.n and the shapes. */
    CHECK(api->fill(state, MPSL_SPLIT_TRAIN, idx, 3, &b, &err) == MPSL_OK);
    CHECK(b.n == 0 && b.modality[0].ndim == 0);
    CHECK(labels[0] == 7 && labels[1] == 0 && labels[2] == 9);
    int exact = 1;
    for (int i = 0; i < 3; i++) {
        for (int j = 0; j < PIX; j++) {
            float want = (float)((idx[i] * 31 + j) % 256) / 255.0f;
            exact &= data[i * PIX + j] == want;
        }
    }
    CHECK(exact);

    /* Out-of-range and negative indices are refused, leaving the batch as it was. */
    const int64_t bad[2] = {1, 20};
    b.n = 99;
    CHECK(api->fill(state, MPSL_SPLIT_TRAIN, bad, 2, &b, &err) == MPSL_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "sample index 20 (batch position 1) is out of range for the train "
                            "split (20 samples)");
    CHECK(b.n == 99);
    const int64_t neg[1] = {-1};
    CHECK(api->fill(state, MPSL_SPLIT_TEST, neg, 1, &b, &err) == MPSL_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "sample index -1");
    CHECK_CONTAINS(err.msg, "test split (5 samples)");
    api->close(state);

    /* standard normalisation and limits */
    snprintf(yaml, sizeof yaml, "dir: %s\nnormalize: standard\ntrain_limit: 4\ntest_limit: 2\n",
             dir);
    CHECK(open_with(yaml, &info, &state, &err) == MPSL_OK);
    CHECK(info.n_train == 4 && info.n_test == 2);
    const int64_t one[1] = {3};
    CHECK(api->fill(state, MPSL_SPLIT_TRAIN, one, 1, &b, &err) == MPSL_OK);
    CHECK_CLOSE(data[5], ((float)((3 * 31 + 5) % 256) / 255.0f - 0.2860f) / 0.3530f, 1e-6);
    const int64_t four[1] = {4};
    CHECK(api->fill(state, MPSL_SPLIT_TRAIN, four, 1, &b, &err) == MPSL_ERR_INVALID);
    api->close(state);

    /* A limit above what the file holds */
    const char *const needles[] = {"train_limit = 30", "train-images-idx3-ubyte.gz holds only 20",
                                   "test.yaml:1:1", NULL};
    expect_refusal(dir, "train_limit: 30\n", needles);

    /* train_skip: the split starts after the first N training samples (test untouched). */
    snprintf(yaml, sizeof yaml, "dir: %s\ntrain_skip: 5\ntrain_limit: 10\n", dir);
    CHECK(open_with(yaml, &info, &state, &err) == MPSL_OK);
    CHECK(info.n_train == 10 && info.n_test == 5);
    const int64_t ends[2] = {0, 9};
    CHECK(api->fill(state, MPSL_SPLIT_TRAIN, ends, 2, &b, &err) == MPSL_OK);
    CHECK(labels[0] == 5 && labels[1] == 4); /* samples 5 and 14 */
    int skipped_exact = 1;
    for (int j = 0; j < PIX; j++) {
        skipped_exact &= data[j] == (float)((5 * 31 + j) % 256) / 255.0f;
        skipped_exact &= data[PIX + j] == (float)((14 * 31 + j) % 256) / 255.0f;
    }
    CHECK(skipped_exact);
    api->close(state);
    snprintf(yaml, sizeof yaml, "dir: %s\ntrain_skip: 15\n", dir);
    CHECK(open_with(yaml, &info, &state, &err) == MPSL_OK);
    CHECK(info.n_train == 5);
    api->close(state);
    const char *const beyond[] = {"train_skip = 15", "train_limit = 6", "beyond the 20",
                                  "train-images-idx3-ubyte.gz", NULL};
    expect_refusal(dir, "train_skip: 15\ntrain_limit: 6\n", beyond);
    const char *const all_skipped[] = {"train_skip = 20", "beyond the 20", NULL};
    expect_refusal(dir, "train_skip: 20\n", all_skipped);
}

static void test_crafted_broken(void)
{
    char path[1024];
    const char *dir;

    /* missing dir */
    char missing[512];
    snprintf(missing, sizeof missing, "%s/nowhere", tmp_root);
    path_of(path, sizeof path, missing, "train-images-idx3-ubyte.gz");
    {
        const char *const n[] = {path, "No such file or directory",
                                 "apt-get install dataset-fashion-mnist", NULL};
        expect_refusal(missing, NULL, n);
    }

    /* missing labels file only */
    dir = craft_dir("nolabels");
    path_of(path, sizeof path, dir, "t10k-labels-idx1-ubyte.gz");
    CHECK(unlink(path) == 0);
    {
        const char *const n[] = {"cannot open", path, "No such file", NULL};
        expect_refusal(dir, NULL, n);
    }

    /* not gzip */
    dir = craft_dir("garbage");
    path_of(path, sizeof path, dir, "train-images-idx3-ubyte.gz");
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    for (int i = 0; i < 5000; i++) {
        fputc((i * 7919) & 0xff, f);
    }
    fclose(f);
    {
        const char *const n[] = {path, "is neither a gzip-compressed nor a plain IDX file", NULL};
        expect_refusal(dir, NULL, n);
    }

    /* empty file */
    f = fopen(path, "wb");
    fclose(f);
    {
        const char *const n[] = {path, NULL};
        expect_refusal(dir, NULL, n);
    }

    /* wrong magic (labels magic in the images file, and the reverse) */
    dir = craft_dir("magic");
    craft c = craft_ok(20);
    c.img_magic = 2049;
    write_split(dir, "train", &c);
    path_of(path, sizeof path, dir, "train-images-idx3-ubyte.gz");
    {
        const char *const n[] = {path, "magic number 2049, expected 2051", NULL};
        expect_refusal(dir, NULL, n);
    }
    c = craft_ok(5);
    c.lab_magic = 2051;
    write_split(dir, "train", &(craft){2051, 2049, 20, 20, 28, 28, 20 * PIX, -1});
    write_split(dir, "t10k", &c);
    path_of(path, sizeof path, dir, "t10k-labels-idx1-ubyte.gz");
    {
        const char *const n[] = {path, "magic number 2051, expected 2049", NULL};
        expect_refusal(dir, NULL, n);
    }

    /* wrong dimensions */
    dir = craft_dir("dims");
    c = craft_ok(4);
    c.rows = c.cols = 32;
    c.img_bytes = 4 * 32 * 32;
    write_split(dir, "train", &c);
    path_of(path, sizeof path, dir, "train-images-idx3-ubyte.gz");
    {
        const char *const n[] = {path, "holds 32x32 images, expected 28x28", NULL};
        expect_refusal(dir, NULL, n);
    }

    /* count mismatch between images and labels */
    dir = craft_dir("mismatch");
    c = craft_ok(20);
    c.n_lab = 19;
    write_split(dir, "train", &c);
    char lpath[1024];
    path_of(path, sizeof path, dir, "train-images-idx3-ubyte.gz");
    path_of(lpath, sizeof lpath, dir, "train-labels-idx1-ubyte.gz");
    {
        const char *const n[] = {path, "holds 20 images but", lpath, "holds 19 labels", NULL};
        expect_refusal(dir, NULL, n);
    }

    /* truncated images: header says 20, 19.5 images of pixels */
    dir = craft_dir("truncated");
    c = craft_ok(20);
    c.img_bytes = 19 * PIX + PIX / 2;
    write_split(dir, "train", &c);
    path_of(path, sizeof path, dir, "train-images-idx3-ubyte.gz");
    {
        char want[128];
        snprintf(want, sizeof want, "expected %d bytes of items 0..19, got %d", 20 * PIX,
                 19 * PIX + PIX / 2);
        const char *const n[] = {path, "is truncated", want, NULL};
        expect_refusal(dir, NULL, n);
        /* ... but the first 19 samples are there: a limit that stays inside them loads. */
        char yaml[1200];
        snprintf(yaml, sizeof yaml, "dir: %s\ntrain_limit: 19\n", dir);
        mpsl_dataset_info info;
        void *state = NULL;
        mpsl_error err;
        CHECK(open_with(yaml, &info, &state, &err) == MPSL_OK);
        CHECK(info.n_train == 19);
        if (state) {
            api->close(state);
        }
    }

    /* the gzip stream itself cut short */
    dir = craft_dir("cutgz");
    path_of(path, sizeof path, dir, "t10k-images-idx3-ubyte.gz");
    {
        struct stat st;
        CHECK(stat(path, &st) == 0);
        CHECK(truncate(path, st.st_size / 2) == 0);
        const char *const n[] = {path, NULL};
        expect_refusal(dir, NULL, n);
    }

    /* a damaged CRC in the gzip trailer */
    dir = craft_dir("crc");
    path_of(path, sizeof path, dir, "train-labels-idx1-ubyte.gz");
    {
        f = fopen(path, "r+b");
        CHECK(f != NULL);
        CHECK(fseek(f, -8, SEEK_END) == 0);
        int ch = fgetc(f);
        CHECK(fseek(f, -8, SEEK_END) == 0);
        fputc(ch ^ 0xff, f);
        fclose(f);
        const char *const n[] = {path, "is corrupt", NULL};
        expect_refusal(dir, NULL, n);
    }

    /* a label outside 0..9 */
    dir = craft_dir("label");
    c = craft_ok(5);
    c.bad_label_at = 3;
    write_split(dir, "t10k", &c);
    path_of(path, sizeof path, dir, "t10k-labels-idx1-ubyte.gz");
    {
        const char *const n[] = {path, "label 10 of sample 3 is outside 0..9", NULL};
        expect_refusal(dir, NULL, n);
    }
}

static void test_real(void)
{
    if (access(REAL_DIR "/train-images-idx3-ubyte.gz", R_OK) != 0) {
        fprintf(stderr, "SKIP real data: %s missing (apt-get install dataset-fashion-mnist)\n",
                REAL_DIR);
        return;
    }
    mpsl_dataset_info info;
    void *state = NULL;
    mpsl_error err;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = open_with(NULL, &info, &state, &err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    CHECK(rc == MPSL_OK);
    if (rc != MPSL_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return;
    }
    fprintf(stderr, "fashion_mnist open (train + test, defaults): %.3f s\n",
            (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec));
    CHECK(info.n_train == 60000 && info.n_test == 10000 && info.n_classes == 10);
    check_class_names(&info);

    const int32_t *tr = api->labels(state, MPSL_SPLIT_TRAIN);
    const int32_t *te = api->labels(state, MPSL_SPLIT_TEST);
    int64_t hist_tr[10] = {0}, hist_te[10] = {0};
    int in_range = 1;
    for (int64_t i = 0; i < 60000; i++) {
        in_range &= tr[i] >= 0 && tr[i] < 10;
        hist_tr[tr[i] >= 0 && tr[i] < 10 ? tr[i] : 0]++;
    }
    for (int64_t i = 0; i < 10000; i++) {
        in_range &= te[i] >= 0 && te[i] < 10;
        hist_te[te[i] >= 0 && te[i] < 10 ? te[i] : 0]++;
    }
    CHECK(in_range);
    for (int c = 0; c < 10; c++) {
        CHECK(hist_tr[c] == 6000 && hist_te[c] == 1000);
    }
    CHECK(tr[0] == 9 && te[0] == 9); /* both files start with an ankle boot */

    /* The mean and std of all training pixels in [0,1]: the normalisation constants. */
    enum { CHUNK = 1000 };
    float *data = malloc((size_t)CHUNK * PIX * sizeof *data);
    int32_t labels[CHUNK];
    int64_t idx[CHUNK];
    mpsl_batch b;
    memset(&b, 0, sizeof b);
    b.modality[0].data = data;
    b.modality[0].dtype = MPSL_F32;
    b.labels = labels;
    double sum = 0.0, sum2 = 0.0;
    int labels_match = 1;
    for (int64_t start = 0; start < 60000; start += CHUNK) {
        for (int i = 0; i < CHUNK; i++) {
            idx[i] = start + i;
        }
        CHECK(api->fill(state, MPSL_SPLIT_TRAIN, idx, CHUNK, &b, &err) == MPSL_OK);
        for (int64_t k = 0; k < (int64_t)CHUNK * PIX; k++) {
            sum += data[k];
            sum2 += (double)data[k] * data[k];
        }
        for (int i = 0; i < CHUNK; i++) {
            labels_match &= labels[i] == tr[start + i];
        }
    }
    double cnt = 60000.0 * PIX, mean = sum / cnt, std = sqrt(sum2 / cnt - mean * mean);
    fprintf(stderr, "train pixel mean %.5f std %.5f\n", mean, std);
    CHECK_CLOSE(mean, 0.2860, 5e-4);
    CHECK_CLOSE(std, 0.3530, 5e-4);
    CHECK(labels_match);

    const int64_t bad[1] = {10000};
    CHECK(api->fill(state, MPSL_SPLIT_TEST, bad, 1, &b, &err) == MPSL_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "sample index 10000");
    CHECK_CONTAINS(err.msg, "test split (10000 samples)");

    /* train_limit keeps the first N, identical to the full load's first N. */
    void *small = NULL;
    mpsl_dataset_info sinfo;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CHECK(open_with("train_limit: 1000\ntest_limit: 200\nnormalize: standard\n", &sinfo, &small,
                    &err) == MPSL_OK);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    fprintf(stderr, "fashion_mnist open (train_limit 1000, test_limit 200): %.3f s\n",
            (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec));
    CHECK(sinfo.n_train == 1000 && sinfo.n_test == 200);
    if (small) {
        CHECK(memcmp(api->labels(small, MPSL_SPLIT_TRAIN), tr, 1000 * sizeof *tr) == 0);
        CHECK(memcmp(api->labels(small, MPSL_SPLIT_TEST), te, 200 * sizeof *te) == 0);
        float unit[PIX];
        const int64_t i0[1] = {0};
        b.modality[0].data = unit;
        CHECK(api->fill(state, MPSL_SPLIT_TRAIN, i0, 1, &b, &err) == MPSL_OK);
        b.modality[0].data = data;
        CHECK(api->fill(small, MPSL_SPLIT_TRAIN, i0, 1, &b, &err) == MPSL_OK);
        double worst = 0.0;
        for (int j = 0; j < PIX; j++) {
            double d = fabs(data[j] - (unit[j] - 0.2860) / 0.3530);
            worst = d > worst ? d : worst;
        }
        CHECK(worst < 1e-5);
        const int64_t over[1] = {1000};
        CHECK(api->fill(small, MPSL_SPLIT_TRAIN, over, 1, &b, &err) == MPSL_ERR_INVALID);
        CHECK_CONTAINS(err.msg, "train split (1000 samples)");
        api->close(small);
    }
    free(data);
    api->close(state);
}

static void test_descriptor(void)
{
    const mpsl_plugin_desc *d = lp.desc;
    CHECK(strcmp(d->name, "fashion_mnist") == 0);
    CHECK(d->kind == MPSL_KIND_DATASET);
    CHECK(d->n_params == 5);
    const char *keys[] = {"dir", "train_limit", "test_limit", "train_skip", "normalize"};
    for (size_t i = 0; i < d->n_params && i < 5; i++) {
        CHECK(strcmp(d->params[i].key, keys[i]) == 0);
    }
    /* The host's validation applies to our spec table: a bad enum value is refused. */
    void *buf = calloc(1, d->params_size);
    mpsl_error err = {{0}};
    cfg_node *map = cfg_parse_string("normalize: zscore\n", "test.yaml", &err);
    CHECK(map != NULL);
    CHECK(cfg_parse_params(map, d->params, d->n_params, buf, d->params_size, "data.dataset",
                           NULL, &err) != MPSL_OK);
    CHECK_CONTAINS(err.msg, "zscore");
    cfg_free(map);
    map = cfg_parse_string("train_limit: -5\n", "test.yaml", &err);
    CHECK(cfg_parse_params(map, d->params, d->n_params, buf, d->params_size, "data.dataset",
                           NULL, &err) != MPSL_OK);
    cfg_free(map);
    free(buf);
}

static void rm_tree(const char *root)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd) != 0) {
        fprintf(stderr, "could not remove %s\n", root);
    }
}

int main(int argc, char **argv)
{
    const char *so = argc > 1 ? argv[1] : getenv("FMNIST_SO");
    if (!so) {
        fprintf(stderr, "usage: %s /path/to/fashion_mnist.so\n", argv[0]);
        return 1;
    }
    mpsl_error err = {{0}};
    if (plugin_load(so, MPSL_KIND_DATASET, &lp, &err) != MPSL_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    api = lp.desc->api;
    const char *tmp = getenv("TMPDIR");
    snprintf(tmp_root, sizeof tmp_root, "%s/mpsl-fmnist-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(tmp_root)) {
        fprintf(stderr, "mkdtemp %s: %s\n", tmp_root, strerror(errno));
        return 1;
    }
    test_descriptor();
    test_crafted_ok();
    test_crafted_broken();
    test_real();
    rm_tree(tmp_root);
    plugin_unload(&lp);
    return check_exit();
}
