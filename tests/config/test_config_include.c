/* test_config_include.c: `include:` fragments: relative lookup, the configs/ search
 * directories, deep merge order, nesting, cycles, missing fragments and the depth limit. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "config/config.h"
#include "util/util.h"

static const char *const search[] = {"fixtures/configs", NULL};

static const char *text_at(const cfg_node *root, const char *path)
{
    const char *s = cfg_scalar(cfg_path(root, path));
    return s ? s : "(missing)";
}

static void test_merge(void)
{
    mpsl_error err = {{0}};
    cfg_node *root = cfg_load_file("fixtures/inc/main.yaml", search, &err);
    CHECK(root != NULL);
    if (!root) {
        fprintf(stderr, "%s\n", err.msg);
        return;
    }
    char where[256];
    CHECK(cfg_get(root, "include") == NULL);
    CHECK(!strcmp(text_at(root, "name"), "main"));                 /* own keys win */
    CHECK(!strcmp(text_at(root, "model.encoder.depth"), "6"));     /* later fragment wins */
    CHECK(!strcmp(text_at(root, "model.encoder.width"), "128"));   /* own, merged deep */
    CHECK(!strcmp(text_at(root, "model.head.pool"), "mean"));      /* untouched from base */
    CHECK(!strcmp(text_at(root, "train.epochs"), "3"));
    const cfg_node *sched = cfg_path(root, "train.schedule");      /* sequences replaced */
    CHECK(cfg_len(sched) == 1 && !strcmp(cfg_scalar(cfg_at(sched, 0)), "9"));
    /* Values keep the position of the file that set them. */
    CHECK_CONTAINS(cfg_where(cfg_path(root, "model.encoder.depth"), where, sizeof where),
                   "fixtures/inc/extra.yaml:3:12");
    CHECK_CONTAINS(cfg_where(cfg_path(root, "model.encoder.width"), where, sizeof where),
                   "fixtures/inc/main.yaml:5:12");
    CHECK_CONTAINS(cfg_where(cfg_path(root, "model.head.pool"), where, sizeof where),
                   "fixtures/inc/base.yaml:7:11");
    cfg_free(root);

    /* Found in a search directory when not beside the file. */
    root = cfg_load_file("fixtures/inc/search.yaml", search, &err);
    CHECK(root && !strcmp(text_at(root, "from"), "configs") && !strcmp(text_at(root, "own"), "1"));
    cfg_free(root);
    /* Beside the including file comes first. */
    root = cfg_load_file("fixtures/inc/prefer.yaml", search, &err);
    CHECK(root && !strcmp(text_at(root, "from"), "beside"));
    cfg_free(root);
    /* Nested includes resolve relative to the fragment that names them. */
    root = cfg_load_file("fixtures/inc/nested.yaml", search, &err);
    CHECK(root && !strcmp(text_at(root, "level2"), "2") && !strcmp(text_at(root, "level1"), "1") &&
          !strcmp(text_at(root, "top"), "1"));
    cfg_free(root);
    /* cfg_parse_string leaves include alone. */
    root = cfg_parse_string("include: x.yaml\n", "s.yaml", &err);
    CHECK(root && !strcmp(text_at(root, "include"), "x.yaml"));
    cfg_free(root);
}

static const char *refused(const char *path, const char *const *dirs, mpsl_error *err)
{
    memset(err, 0, sizeof *err);
    cfg_node *n = cfg_load_file(path, dirs, err);
    CHECK(n == NULL);
    cfg_free(n);
    return err->msg;
}

static void test_refusals(void)
{
    mpsl_error err;
    const char *m;

    m = refused("fixtures/inc/cycle_a.yaml", search, &err);
    CHECK_CONTAINS(m, "fixtures/inc/cycle_b.yaml:2:11: include cycle: fixtures/inc/cycle_a.yaml "
                      "-> fixtures/inc/cycle_b.yaml -> fixtures/inc/cycle_a.yaml");

    m = refused("fixtures/inc/missing.yaml", search, &err);
    CHECK_CONTAINS(m, "fixtures/inc/missing.yaml:2:22: cannot find included file 'nothere.yaml'");
    CHECK_CONTAINS(m, "tried fixtures/inc/nothere.yaml, fixtures/configs/nothere.yaml");

    m = refused("fixtures/inc/badtype.yaml", search, &err);
    CHECK_CONTAINS(m, "fixtures/inc/badtype.yaml:2:3: include: expected a file name or a list");

    m = refused("fixtures/inc/broken_user.yaml", search, &err);
    CHECK_CONTAINS(m, "fixtures/inc/broken.yaml:2:1: duplicate key 'a'");
    CHECK_CONTAINS(m, "(included from fixtures/inc/broken_user.yaml:1:10)");
}

/* A chain of CFG_MAX_INCLUDE_DEPTH + 1 files: the last include is refused. */
static void test_depth(void)
{
    char dir[] = "/tmp/mpsl-cfg-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    for (int i = 0; i <= CFG_MAX_INCLUDE_DEPTH + 1; i++) {
        char *path = mpsl_strfmt("%s/d%d.yaml", dir, i);
        FILE *f = fopen(path, "w");
        CHECK(f != NULL);
        if (f) {
            fprintf(f, "level%d: %d\ninclude: d%d.yaml\n", i, i, i + 1);
            fclose(f);
        }
        free(path);
    }
    /* d(max) includes d(max+1), which is one too deep. Start lower to see success. */
    mpsl_error err = {{0}};
    char *ok = mpsl_strfmt("%s/d2.yaml", dir);
    char *last = mpsl_strfmt("%s/d%d.yaml", dir, CFG_MAX_INCLUDE_DEPTH + 2);
    FILE *f = fopen(last, "w");
    if (f) {
        fputs("end: 1\n", f);
        fclose(f);
    }
    cfg_node *root = cfg_load_file(ok, NULL, &err);
    CHECK(root != NULL && cfg_get(root, "end") && cfg_get(root, "level2"));
    cfg_free(root);
    char *deep = mpsl_strfmt("%s/d0.yaml", dir);
    root = cfg_load_file(deep, NULL, &err);
    CHECK(root == NULL);
    CHECK_CONTAINS(err.msg, "includes nested more than 8 deep");
    cfg_free(root);
    for (int i = 0; i <= CFG_MAX_INCLUDE_DEPTH + 2; i++) {
        char *path = mpsl_strfmt("%s/d%d.yaml", dir, i);
        unlink(path);
        free(path);
    }
    rmdir(dir);
    free(ok);
    free(last);
    free(deep);
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

/* A fragment of 99,000 keys (198,001 nodes, just under CFG_MAX_NODES) merges in well under a
 * second: merging used to look every key up with a linear scan, a minute for this file. The
 * node limit holds for all files of an experiment together: the same fragment included
 * twice is refused, though each file alone is under the limit and the merged tree would be
 * no larger than one copy. */
static void test_big_include(void)
{
    char dir[] = "/tmp/mpsl-cfg-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char *big = mpsl_strfmt("%s/big.yaml", dir);
    char *one = mpsl_strfmt("%s/one.yaml", dir);
    char *twice = mpsl_strfmt("%s/twice.yaml", dir);
    char *many = mpsl_strfmt("%s/many.yaml", dir);
    FILE *f = fopen(big, "w");
    CHECK(f != NULL);
    if (f) {
        for (int i = 0; i < 99000; i++) {
            fprintf(f, "key%d: %d\n", i, i);
        }
        fclose(f);
    }
    write_text(one, "include: big.yaml\nown: 1\nkey5: five\n");
    write_text(twice, "include: [big.yaml, big.yaml]\nown: 1\n");

    mpsl_error err = {{0}};
    double t0 = mpsl_now();
    cfg_node *root = cfg_load_file(one, NULL, &err);
    double seconds = mpsl_now() - t0;
    CHECK(root != NULL);
    CHECK(cfg_len(root) == 99001);
    CHECK(!strcmp(text_at(root, "key5"), "five") && !strcmp(text_at(root, "key98999"), "98999"));
    fprintf(stderr, "99,000-key include loaded in %.3f s\n", seconds);
    CHECK(seconds < 10);
    cfg_free(root);

    const char *m = refused(twice, NULL, &err);
    CHECK_CONTAINS(m, "big.yaml: more than 200000 nodes");
    CHECK_CONTAINS(m, "(included from ");
    CHECK_CONTAINS(m, "twice.yaml:1:21)");

    /* Many small fragments add up the same way. */
    f = fopen(many, "w");
    CHECK(f != NULL);
    if (f) {
        fputs("include:\n", f);
        for (int i = 0; i < 3; i++) {
            fputs("- one.yaml\n", f);
        }
        fclose(f);
    }
    m = refused(many, NULL, &err);
    CHECK_CONTAINS(m, "more than 200000 nodes");

    unlink(big);
    unlink(one);
    unlink(twice);
    unlink(many);
    rmdir(dir);
    free(big);
    free(one);
    free(twice);
    free(many);
}

int main(void)
{
    test_merge();
    test_refusals();
    test_depth();
    test_big_include();
    return check_exit();
}
