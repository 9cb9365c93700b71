/* test_datasets.c: `mpsl convert` on small fixtures laid out like each real download
 * (Flickr30K, MS-COCO, COCO-QA, B-T4SA), the results opened with the `prepared` plugin:
 * shapes, splits, labels, caption/question/tweet bytes, image colours; and refusals of
 * broken raw layouts (missing files, malformed JSON, bad lines), each naming the file.
 * Usage: test_datasets /path/to/prepared.so /path/to/mpsl */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "fixtures.h"

static char root[256];
static const char *mpsl;
static char out[16384];

#define S 8   /* image side used by the tests */
#define L 24  /* text bytes */

/* Expect every pixel of image i of the batch to be colour rgb (within tol / 255). */
static void check_colour(const mpsl_batch *b, int64_t i, const int rgb[3], int tol)
{
    const float *img = (const float *)b->modality[0].data + i * 3 * S * S;
    float worst = 0;
    for (int c = 0; c < 3; c++) {
        for (int k = 0; k < S * S; k++) {
            float d = img[c * S * S + k] * 255.0f - (float)rgb[c];
            d = d < 0 ? -d : d;
            worst = d > worst ? d : worst;
        }
    }
    CHECK(worst <= (float)tol + 1e-3f);
    if (worst > (float)tol + 1e-3f) {
        fprintf(stderr, "  sample %lld: off by %.1f from (%d,%d,%d)\n", (long long)i,
                (double)worst, rgb[0], rgb[1], rgb[2]);
    }
}

static void check_text(const mpsl_batch *b, int m, int64_t i, int s, int64_t nseq,
                       const char *want)
{
    char *got = fx_text(&b->modality[m], i, s, nseq, L);
    CHECK(strcmp(got, want) == 0);
    if (strcmp(got, want) != 0) {
        fprintf(stderr, "  text %lld/%d: got \"%s\", expected \"%s\"\n", (long long)i, s, got,
                want);
    }
    free(got);
}

/* Fill a whole split into a fresh batch. */
static mpsl_batch *fill_all(void *state, const mpsl_dataset_info *info, mpsl_split split)
{
    int64_t n = split == MPSL_SPLIT_TRAIN ? info->n_train : info->n_test;
    mpsl_batch *b = fx_batch(info, n);
    int64_t *idx = malloc((size_t)n * sizeof *idx);
    for (int64_t i = 0; i < n; i++) {
        idx[i] = i;
    }
    mpsl_error err = {{0}};
    CHECK(fx_api()->fill(state, split, idx, n, b, &err) == MPSL_OK);
    free(idx);
    return b;
}

/* ------------------------------------------------------------ Flickr30K */

static const int colours[8][3] = {{200, 30, 90}, {10, 250, 128}, {0, 0, 255}, {255, 255, 0},
                                  {40, 40, 40},  {128, 64, 32}, {90, 200, 10}, {250, 250, 250}};

static void karpathy_image(FILE *f, int first, const char *file, const char *filepath,
                           const char *split, int n_sent)
{
    fprintf(f, "%s{\"filename\": \"%s\", %s%s%s\"imgid\": 0, \"split\": \"%s\", "
               "\"sentences\": [", first ? "" : ", ", file,
            filepath ? "\"filepath\": \"" : "", filepath ? filepath : "",
            filepath ? "\", " : "", split);
    for (int k = 0; k < n_sent; k++) {
        fprintf(f, "%s{\"tokens\": [\"x\"], \"raw\": \"%s caption %d\", \"sentid\": %d}",
                k ? ", " : "", file, k, k);
    }
    fprintf(f, "]}");
}

static void make_flickr(const char *dir)
{
    char p[512];
    snprintf(p, sizeof p, "%s/caption_datasets/dataset_flickr30k.json", dir);
    fx_write(p, "%s", "");
    FILE *f = fopen(p, "w");
    fprintf(f, "{\"images\": [");
    const char *files[6] = {"11.jpg", "12.jpg", "13.jpg", "14.jpg", "15.jpg", "16.jpg"};
    const char *splits[6] = {"train", "train", "val", "test", "train", "test"};
    for (int i = 0; i < 6; i++) {
        if (i == 4) { /* UTF-8 and a long caption */
            fprintf(f, ", {\"filename\": \"15.jpg\", \"split\": \"train\", \"sentences\": ["
                       "{\"raw\": \"Un caf\\u00e9 \\u00fcber alles\"}, {\"raw\": \"a very long "
                       "caption that will be cut short\"}, {\"raw\": \"c\"}, {\"raw\": \"d\"}, "
                       "{\"raw\": \"e\"}]}");
        } else {
            karpathy_image(f, i == 0, files[i], NULL, splits[i], 5);
        }
        char img[512];
        /* 16.jpg holds a PNG: the format is taken from the bytes, not the name. */
        snprintf(img, sizeof img, "%s/flickr30k-images/flickr30k-images/%s%s", dir, files[i],
                 i == 5 ? ".png" : "");
        fx_image(img, 30 + 7 * i, 20 + 3 * i, colours[i][0], colours[i][1], colours[i][2]);
        if (i == 5) {
            char real[512];
            snprintf(real, sizeof real, "%s/flickr30k-images/flickr30k-images/%s", dir,
                     files[i]);
            CHECK(rename(img, real) == 0);
        }
    }
    fprintf(f, "], \"dataset\": \"flickr30k\"}\n");
    fclose(f);
}

static void test_flickr30k(void)
{
    char dir[300], file[320];
    snprintf(dir, sizeof dir, "%s/flickr30k", root);
    snprintf(file, sizeof file, "%s/flickr.mpsl", root);
    make_flickr(dir);
    int rc = fx_mpsl(mpsl, out, sizeof out,
                     "convert flickr30k --in '%s' --out '%s' --image-size %d "
                     "--max-caption-bytes %d", dir, file, S, L);
    CHECK(rc == 0);
    if (rc != 0) {
        fprintf(stderr, "%s\n", out);
        return;
    }
    CHECK_CONTAINS(out, "3 train and 2 test images (1 val images left out)");
    mpsl_dataset_info info;
    void *state = NULL;
    mpsl_error err = {{0}};
    CHECK(fx_open(file, NULL, &info, &state, &err) == MPSL_OK);
    if (!state) {
        fprintf(stderr, "%s\n", err.msg);
        return;
    }
    CHECK(info.n_train == 3 && info.n_test == 2 && info.n_classes == 3);
    CHECK(info.n_modalities == 2);
    CHECK(strcmp(info.modality[0].name, "image") == 0 && info.modality[0].dtype == MPSL_F32);
    CHECK(info.modality[0].ndim == 3 && info.modality[0].shape[0] == 3 &&
          info.modality[0].shape[1] == S && info.modality[0].shape[2] == S);
    CHECK(strcmp(info.modality[1].name, "text") == 0 && info.modality[1].dtype == MPSL_I32);
    CHECK(info.modality[1].ndim == 2 && info.modality[1].shape[0] == 5 &&
          info.modality[1].shape[1] == L);
    mpsl_batch *b = fill_all(state, &info, MPSL_SPLIT_TRAIN);
    CHECK(b->labels[0] == 0 && b->labels[1] == 1 && b->labels[2] == 2);
    check_colour(b, 0, colours[0], 2);
    check_colour(b, 1, colours[1], 2);
    check_colour(b, 2, colours[4], 2);
    check_text(b, 1, 0, 0, 5, "11.jpg caption 0");
    check_text(b, 1, 1, 4, 5, "12.jpg caption 4");
    check_text(b, 1, 2, 0, 5, "Un caf\xc3\xa9 \xc3\xbc" "ber alles");
    check_text(b, 1, 2, 1, 5, "a very long caption that");
    fx_batch_free(b, &info);
    b = fill_all(state, &info, MPSL_SPLIT_TEST);
    CHECK(b->labels[0] == 0 && b->labels[1] == 1);
    check_colour(b, 0, colours[3], 2);
    check_colour(b, 1, colours[5], 0); /* the PNG: exact */
    check_text(b, 1, 1, 3, 5, "16.jpg caption 3");
    fx_batch_free(b, &info);
    fx_close(state);

    /* val -> train, and --limit. */
    CHECK(fx_mpsl(mpsl, out, sizeof out, "convert flickr30k --in '%s' --out '%s' "
                  "--image-size %d --set val=train --quiet", dir, file, S) == 0);
    CHECK(out[0] == '\0'); /* --quiet */
    CHECK(fx_open(file, NULL, &info, &state, &err) == MPSL_OK);
    CHECK(info.n_train == 4 && info.n_test == 2);
    CHECK(info.modality[1].shape[1] == 96); /* the default caption length */
    fx_close(state);
    CHECK(fx_mpsl(mpsl, out, sizeof out, "convert flickr30k --in '%s' --out '%s' "
                  "--image-size %d --limit 1 --threads 1 --quiet", dir, file, S) == 0);
    CHECK(fx_open(file, NULL, &info, &state, &err) == MPSL_OK);
    CHECK(info.n_train == 1 && info.n_test == 1);
    fx_close(state);

    /* Refusals: a missing image, a missing JSON, malformed JSON, a bad option. */
    char p[512];
    snprintf(p, sizeof p, "%s/flickr30k-images/flickr30k-images/14.jpg", dir);
    CHECK(unlink(p) == 0);
    CHECK(fx_mpsl(mpsl, out, sizeof out, "convert flickr30k --in '%s' --out '%s' --quiet", dir,
                  file) == 1);
    CHECK_CONTAINS(out, p);
    CHECK(fx_open(file, NULL, &info, &state, &err) == MPSL_OK); /* the old file is intact */
    fx_close(state);
    char tmpname[400];
    snprintf(tmpname, sizeof tmpname, "ls '%s' | grep -c tmp > /dev/null", root);
    CHECK(system(tmpname) != 0); /* no temporary file left behind */

    snprintf(p, sizeof p, "%s/empty", root);
    fx_mkdirs(p);
    CHECK(fx_mpsl(mpsl, out, sizeof out, "convert flickr30k --in '%s' --out '%s'", p, file) ==
          1);
    CHECK_CONTAINS(out, "missing dataset_flickr30k.json");
    CHECK_CONTAINS(out, "caption_datasets/dataset_flickr30k.json");
    CHECK_CONTAINS(out, "mpsl fetch flickr30k");

    snprintf(p, sizeof p, "%s/badjson/caption_datasets/dataset_flickr30k.json", root);
    fx_write(p, "{\"images\": [\n  {\"filename\": }\n]}\n");
    snprintf(dir, sizeof dir, "%s/badjson", root);
    CHECK(fx_mpsl(mpsl, out, sizeof out, "convert flickr30k --in '%s' --out '%s'", dir, file) ==
          1);
    CHECK_CONTAINS(out, p);
    CHECK_CONTAINS(out, ":2:");
    CHECK_CONTAINS(out, "malformed JSON");

    fx_write(p, "{\"images\": [{\"filename\": \"a.jpg\", \"split\": \"train\", "
                "\"sentences\": [{\"raw\": \"only one\"}]}]}");
    CHECK(fx_mpsl(mpsl, out, sizeof out, "convert flickr30k --in '%s' --out '%s'", dir, file) ==
          1);
    CHECK_CONTAINS(out, "has 1 captions, expected at least 5");

    CHECK(fx_mpsl(mpsl, out, sizeof out, "convert flickr30k --in '%s' --out '%s' --set val=x",
                  dir, file) == 1);
    CHECK_CONTAINS(out, "val=x");
    CHECK(fx_mpsl(mpsl, out, sizeof out, "convert nosuch --in '%s' --out '%s'", dir, file) ==
          1);
    CHECK_CONTAINS(out, "known: ");
    CHECK(fx_mpsl(mpsl, out, sizeof out, "convert --list") == 0);
    CHECK_CONTAINS(out, "flickr30k");
    CHECK_CONTAINS(out, "coco_qa");
}

/* ------------------------------------------------------------ MS-COCO */

static void coco_image(const char *coco, const char *folder, int id, const int rgb[3])
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s/%s/COCO_%s_%012d.jpg", coco, folder, folder, folder, id);
    fx_image(p, 64, 48, rgb[0], rgb[1], rgb[2]);
}

static void make_coco(const char *dir)
{
    coco_image(dir, "train2014", 1, colours[0]);
    coco_image(dir, "train2014", 2, colours[1]);
    coco_image(dir, "val2014", 3, colours[2]);
    coco_image(dir, "val2014", 4, colours[3]);
    coco_image(dir, "val2014", 5, colours[4]);
    char p[512];
    snprintf(p, sizeof p, "%s/caption_datasets/dataset_coco.json", dir);
    fx_write(p, "%s", "");
    FILE *f = fopen(p, "w");
    fprintf(f, "{\"images\": [");
    karpathy_image(f, 1, "COCO_train2014_000000000001.jpg", "train2014", "train", 5);
    karpathy_image(f, 0, "COCO_val2014_000000000003.jpg", "val2014", "restval", 6);
    karpathy_image(f, 0, "COCO_val2014_000000000004.jpg", "val2014", "test", 5);
    karpathy_image(f, 0, "COCO_val2014_000000000005.jpg", "val2014", "val", 5);
    fprintf(f, "], \"dataset\": \"coco\"}");
    fclose(f);
}

static void test_mscoco(void)
{
    char dir[300], file[320];
    snprintf(dir, sizeof dir, "%s/mscoco", root);
    snprintf(file, sizeof file, "%s/coco.mpsl", root);
    make_coco(dir);
    int rc = fx_mpsl(mpsl, out, sizeof out,
                     "convert mscoco --in '%s' --out '%s' --image-size %d "
                     "--max-caption-bytes %d", dir, file, S, L);
    CHECK(rc == 0);
    if (rc != 0) {
        fprintf(stderr, "%s\n", out);
        return;
    }
    mpsl_dataset_info info;
    void *state = NULL;
    mpsl_error err = {{0}};
    CHECK(fx_open(file, NULL, &info, &state, &err) == MPSL_OK);
    if (!state) {
        fprintf(stderr, "%s\n", err.msg);
        return;
    }
    CHECK(info.n_train == 2 && info.n_test == 1); /* train + restval; val left out */
    mpsl_batch *b = fill_all(state, &info, MPSL_SPLIT_TRAIN);
    check_colour(b, 0, colours[0], 2);
    check_colour(b, 1, colours[2], 2);
    check_text(b, 1, 1, 4, 5, "COCO_val2014_00000000000"); /* cut at L */
    fx_batch_free(b, &info);
    b = fill_all(state, &info, MPSL_SPLIT_TEST);
    check_colour(b, 0, colours[3], 2);
    fx_batch_free(b, &info);
    fx_close(state);
}

/* ------------------------------------------------------------ COCO-QA */

static void make_coco_qa(const char *dir, const char *test_answers)
{
    char p[512];
    snprintf(p, sizeof p, "%s/cocoqa-2015-05-17/train/questions.txt", dir);
    fx_write(p, "how many dogs are there\nwhat is the color of the bus\n"
                "what is on the sofa\nwhat color is the kite\n");
    snprintf(p, sizeof p, "%s/cocoqa-2015-05-17/train/answers.txt", dir);
    fx_write(p, "two\nred\ncat\nred\n");
    snprintf(p, sizeof p, "%s/cocoqa-2015-05-17/train/img_ids.txt", dir);
    fx_write(p, "1\n2\n1\n2\n");
    snprintf(p, sizeof p, "%s/cocoqa-2015-05-17/train/types.txt", dir);
    fx_write(p, "1\n2\n0\n2\n");
    snprintf(p, sizeof p, "%s/cocoqa-2015-05-17/test/questions.txt", dir);
    fx_write(p, "what is sleeping on the bed\r\nwhat is the color of the car\r\n");
    snprintf(p, sizeof p, "%s/cocoqa-2015-05-17/test/answers.txt", dir);
    fx_write(p, "%s", test_answers);
    snprintf(p, sizeof p, "%s/cocoqa-2015-05-17/test/img_ids.txt", dir);
    fx_write(p, "4\n3\n");
    snprintf(p, sizeof p, "%s/cocoqa-2015-05-17/test/types.txt", dir);
    fx_write(p, "0\n2\n");
}

static void test_coco_qa(void)
{
    char dir[300], file[320];
    snprintf(dir, sizeof dir, "%s/coco_qa", root);
    snprintf(file, sizeof file, "%s/cocoqa.mpsl", root);
    make_coco_qa(dir, "cat\nred\n");
    /* The images come from the sibling mscoco folder (the default coco_dir). */
    int rc = fx_mpsl(mpsl, out, sizeof out,
                     "convert coco_qa --in '%s' --out '%s' --image-size %d "
                     "--max-caption-bytes %d", dir, file, S, L);
    CHECK(rc == 0);
    if (rc != 0) {
        fprintf(stderr, "%s\n", out);
        return;
    }
    CHECK_CONTAINS(out, "4 train and 2 test questions, 3 answer classes");
    mpsl_dataset_info info;
    void *state = NULL;
    mpsl_error err = {{0}};
    CHECK(fx_open(file, NULL, &info, &state, &err) == MPSL_OK);
    if (!state) {
        fprintf(stderr, "%s\n", err.msg);
        return;
    }
    CHECK(info.n_train == 4 && info.n_test == 2 && info.n_classes == 3);
    CHECK(info.modality[1].ndim == 1 && info.modality[1].shape[0] == L);
    mpsl_batch *b = fill_all(state, &info, MPSL_SPLIT_TRAIN);
    /* classes sorted: cat 0, red 1, two 2 */
    CHECK(b->labels[0] == 2 && b->labels[1] == 1 && b->labels[2] == 0 && b->labels[3] == 1);
    check_colour(b, 0, colours[0], 2);
    check_colour(b, 3, colours[1], 2);
    check_text(b, 1, 0, 0, 1, "how many dogs are there");
    check_text(b, 1, 1, 0, 1, "what is the color of the");
    fx_batch_free(b, &info);
    b = fill_all(state, &info, MPSL_SPLIT_TEST);
    CHECK(b->labels[0] == 0 && b->labels[1] == 1);
    check_colour(b, 0, colours[3], 2);
    check_colour(b, 1, colours[2], 2);
    check_text(b, 1, 0, 0, 1, "what is sleeping on the "); /* \r\n line ends */
    fx_batch_free(b, &info);
    fx_close(state);

    /* An answer never seen in training: refused, or dropped on request. */
    make_coco_qa(dir, "dog\nred\n");
    CHECK(fx_mpsl(mpsl, out, sizeof out, "convert coco_qa --in '%s' --out '%s' --image-size %d",
                  dir, file, S) == 1);
    CHECK_CONTAINS(out, "test/answers.txt:1: answer 'dog' never occurs");
    CHECK(fx_mpsl(mpsl, out, sizeof out, "convert coco_qa --in '%s' --out '%s' --image-size %d "
                  "--set unknown_answers=drop --quiet", dir, file, S) == 0);
    CHECK(fx_open(file, NULL, &info, &state, &err) == MPSL_OK);
    CHECK(info.n_test == 1);
    fx_close(state);

    /* Line counts that differ; a missing file; images not found. */
    char p[512];
    snprintf(p, sizeof p, "%s/cocoqa-2015-05-17/test/img_ids.txt", dir);
    fx_write(p, "4\n");
    CHECK(fx_mpsl(mpsl, out, sizeof out, "convert coco_qa --in '%s' --out '%s'", dir, file) ==
          1);
    CHECK_CONTAINS(out, p);
    CHECK_CONTAINS(out, "1 image ids");
    CHECK(unlink(p) == 0);
    CHECK(fx_mpsl(mpsl, out, sizeof out, "convert coco_qa --in '%s' --out '%s'", dir, file) ==
          1);
    CHECK_CONTAINS(out, "missing");
    CHECK_CONTAINS(out, p);
    make_coco_qa(dir, "cat\nred\n");
    CHECK(fx_mpsl(mpsl, out, sizeof out, "convert coco_qa --in '%s' --out '%s' --set "
                  "coco_dir=/nonexistent", dir, file) == 1);
    CHECK_CONTAINS(out, "/nonexistent/train2014/train2014/COCO_train2014_000000000001.jpg");
    CHECK_CONTAINS(out, "mpsl fetch mscoco");
}

/* ------------------------------------------------------------ B-T4SA */

static void test_b_t4sa(void)
{
    char dir[300], file[320], p[512];
    snprintf(dir, sizeof dir, "%s/b_t4sa", root);
    snprintf(file, sizeof file, "%s/bt4sa.mpsl", root);
    const char *imgs[5] = {"data/75801/758014713804587008-1.jpg",
                           "data/75801/758014713804587009-1.jpg",
                           "data/75801/758014713804587009-2.jpg",
                           "data/76000/760000000000000001-1.jpg",
                           "data/76000/760000000000000002-1.jpg"};
    for (int i = 0; i < 5; i++) {
        snprintf(p, sizeof p, "%s/b-t4sa_imgs/%s", dir, imgs[i]);
        fx_image(p, 50, 70, colours[i][0], colours[i][1], colours[i][2]);
    }
    snprintf(p, sizeof p, "%s/b-t4sa_imgs/b-t4sa_train.txt", dir);
    fx_write(p, "%s 2\n%s 0\n%s 0\n", imgs[0], imgs[1], imgs[2]);
    snprintf(p, sizeof p, "%s/b-t4sa_imgs/b-t4sa_val.txt", dir);
    fx_write(p, "%s 1\n", imgs[3]);
    snprintf(p, sizeof p, "%s/b-t4sa_imgs/b-t4sa_test.txt", dir);
    fx_write(p, "%s 1\n", imgs[4]);
    snprintf(p, sizeof p, "%s/raw_tweets_text.csv", dir);
    fx_write(p, "id,text\n"
                "758014713804587008,\"Happy, \"\"sunny\"\" day\"\n"
                "111,not needed\n"
                "758014713804587009,\"two\nlines\"\n"
                "760000000000000001,plain, with comma\n"
                "760000000000000002,last one");
    snprintf(p, sizeof p, "%s/t4sa_text_sentiment.tsv", dir);
    fx_write(p, "TWID\tNEG\tNEU\tPOS\n");
    int rc = fx_mpsl(mpsl, out, sizeof out,
                     "convert b_t4sa --in '%s' --out '%s' --image-size %d "
                     "--max-caption-bytes %d", dir, file, S, L);
    CHECK(rc == 0);
    if (rc != 0) {
        fprintf(stderr, "%s\n", out);
        return;
    }
    mpsl_dataset_info info;
    void *state = NULL;
    mpsl_error err = {{0}};
    CHECK(fx_open(file, NULL, &info, &state, &err) == MPSL_OK);
    if (!state) {
        fprintf(stderr, "%s\n", err.msg);
        return;
    }
    CHECK(info.n_train == 3 && info.n_test == 1 && info.n_classes == 3);
    mpsl_batch *b = fill_all(state, &info, MPSL_SPLIT_TRAIN);
    CHECK(b->labels[0] == 2 && b->labels[1] == 0 && b->labels[2] == 0);
    check_colour(b, 0, colours[0], 2);
    check_colour(b, 2, colours[2], 2);
    check_text(b, 1, 0, 0, 1, "Happy, \"sunny\" day");
    check_text(b, 1, 1, 0, 1, "two\nlines");
    check_text(b, 1, 2, 0, 1, "two\nlines"); /* the same tweet's second image */
    fx_batch_free(b, &info);
    b = fill_all(state, &info, MPSL_SPLIT_TEST);
    CHECK(b->labels[0] == 1);
    check_text(b, 1, 0, 0, 1, "last one");
    check_colour(b, 0, colours[4], 2);
    fx_batch_free(b, &info);
    fx_close(state);

    CHECK(fx_mpsl(mpsl, out, sizeof out, "convert b_t4sa --in '%s' --out '%s' --image-size %d "
                  "--max-caption-bytes %d --set val=test --quiet", dir, file, S, L) == 0);
    CHECK(fx_open(file, NULL, &info, &state, &err) == MPSL_OK);
    CHECK(info.n_test == 2);
    b = fill_all(state, &info, MPSL_SPLIT_TEST);
    check_text(b, 1, 0, 0, 1, "plain, with comma");
    fx_batch_free(b, &info);
    fx_close(state);

    /* A tweet without text; a bad label; a missing CSV. */
    snprintf(p, sizeof p, "%s/raw_tweets_text.csv", dir);
    fx_write(p, "id,text\n758014713804587008,x\n");
    CHECK(fx_mpsl(mpsl, out, sizeof out, "convert b_t4sa --in '%s' --out '%s'", dir, file) ==
          1);
    CHECK_CONTAINS(out, "tweet 758014713804587009");
    CHECK_CONTAINS(out, p);
    CHECK(fx_mpsl(mpsl, out, sizeof out, "convert b_t4sa --in '%s' --out '%s' --image-size %d "
                  "--set missing_text=empty --quiet", dir, file, S) == 0);
    CHECK(unlink(p) == 0);
    CHECK(fx_mpsl(mpsl, out, sizeof out, "convert b_t4sa --in '%s' --out '%s'", dir, file) ==
          1);
    CHECK_CONTAINS(out, "missing raw_tweets_text.csv");
    snprintf(p, sizeof p, "%s/b-t4sa_imgs/b-t4sa_test.txt", dir);
    fx_write(p, "%s 3\n", imgs[4]);
    CHECK(fx_mpsl(mpsl, out, sizeof out, "convert b_t4sa --in '%s' --out '%s'", dir, file) ==
          1);
    CHECK_CONTAINS(out, "b-t4sa_test.txt:1: expected");
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: test_datasets prepared.so mpsl\n");
        return 2;
    }
    mpsl = argv[2];
    snprintf(root, sizeof root, "/tmp/mpsl-test-convert-XXXXXX");
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        return 1;
    }
    if (fx_plugin_load(argv[1]) != MPSL_OK) {
        return 1;
    }
    test_flickr30k();
    test_mscoco();
    test_coco_qa();
    test_b_t4sa();
    fx_plugin_unload();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd) != 0) {
        fprintf(stderr, "could not remove %s\n", root);
    }
    return check_exit();
}
