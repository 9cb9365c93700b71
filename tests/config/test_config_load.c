/* test_config_load.c: parsing experiment files: positions, quoted-ness, aliases, and every
 * refusal of the loader (syntax, duplicates, non-scalar keys, self-referencing anchors,
 * alias bombs, deep nesting, several documents, unreadable files), each with file:line:col. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "config/config.h"
#include "util/util.h"

/* Load a fixture that must be refused; returns the message. */
static const char *refused(const char *path, mpsl_error *err)
{
    memset(err, 0, sizeof *err);
    cfg_node *n = cfg_load_file(path, NULL, err);
    CHECK(n == NULL);
    cfg_free(n);
    return err->msg;
}

static const char *refused_text(const char *text, mpsl_error *err)
{
    memset(err, 0, sizeof *err);
    cfg_node *n = cfg_parse_string(text, "t.yaml", err);
    CHECK(n == NULL);
    cfg_free(n);
    return err->msg;
}

static void test_basic(void)
{
    mpsl_error err = {{0}};
    cfg_node *root = cfg_load_file("fixtures/basic.yaml", NULL, &err);
    CHECK(root != NULL);
    if (!root) {
        fprintf(stderr, "%s\n", err.msg);
        return;
    }
    char where[256];
    CHECK(cfg_node_type(root) == CFG_MAP);
    CHECK(cfg_len(root) == 5);
    CHECK(!strcmp(cfg_key_at(root, 0), "name"));
    CHECK(!strcmp(cfg_scalar(cfg_get(root, "name")), "demo"));
    const cfg_node *depth = cfg_path(root, "model.encoder.depth");
    CHECK(depth && !strcmp(cfg_scalar(depth), "4") && !cfg_scalar_quoted(depth));
    CHECK_CONTAINS(cfg_where(depth, where, sizeof where), "fixtures/basic.yaml:5:12");
    const cfg_node *width = cfg_path(root, "model.encoder.width");
    CHECK(width && !strcmp(cfg_scalar(width), "5") && cfg_scalar_quoted(width));
    CHECK_CONTAINS(cfg_where_key(cfg_path(root, "model.encoder"), "width", where, sizeof where),
                   "fixtures/basic.yaml:6:5");
    /* A missing key points at its mapping. */
    CHECK_CONTAINS(cfg_where_key(cfg_path(root, "model.encoder"), "heads", where, sizeof where),
                   "fixtures/basic.yaml:5:5");
    const cfg_node *tags = cfg_path(root, "model.tags");
    CHECK(cfg_node_type(tags) == CFG_SEQ && cfg_len(tags) == 3);
    CHECK(!strcmp(cfg_scalar(cfg_at(tags, 1)), "b") && cfg_scalar_quoted(cfg_at(tags, 1)));
    CHECK(cfg_at(tags, 3) == NULL);
    CHECK(cfg_path(root, "model.nothing.here") == NULL);
    CHECK(cfg_path(root, "name.deeper") == NULL);
    /* The alias is a copy: same contents, root positioned at the alias. */
    const cfg_node *copy = cfg_get(root, "copy");
    CHECK(cfg_equal(copy, cfg_get(root, "defaults")));
    CHECK_CONTAINS(cfg_where(copy, where, sizeof where), "fixtures/basic.yaml:11:7");
    CHECK_CONTAINS(cfg_where(cfg_get(copy, "dropout"), where, sizeof where),
                   "fixtures/basic.yaml:10:12");

    cfg_node *clone = cfg_clone(root);
    CHECK(cfg_equal(clone, root));
    cfg_remove(clone, "model");
    cfg_remove(clone, "absent");
    CHECK(cfg_len(clone) == 4 && cfg_get(clone, "model") == NULL);
    CHECK(!cfg_equal(clone, root));
    cfg_free(clone);
    cfg_free(root);

    /* Nulls and empty inputs. */
    cfg_node *e = cfg_load_file("fixtures/empty.yaml", NULL, &err);
    CHECK(e && cfg_node_type(e) == CFG_MAP && cfg_len(e) == 0);
    cfg_free(e);
    cfg_node *nulls = cfg_parse_string("a:\nb: ~\nc: null\nd: 'null'\n", "n.yaml", &err);
    CHECK(nulls && cfg_is_null(cfg_get(nulls, "a")) && cfg_is_null(cfg_get(nulls, "b")) &&
          cfg_is_null(cfg_get(nulls, "c")) && !cfg_is_null(cfg_get(nulls, "d")));
    cfg_free(nulls);
    cfg_node *tagged = cfg_parse_string("a: !!str 5\n", "n.yaml", &err);
    CHECK(tagged && cfg_scalar_quoted(cfg_get(tagged, "a")));
    cfg_free(tagged);
}

static void test_refusals(void)
{
    mpsl_error err;
    const char *m;

    m = refused("fixtures/syntax.yaml", &err);
    CHECK_CONTAINS(m, "fixtures/syntax.yaml:3:2: YAML syntax error");
    CHECK_CONTAINS(m, "did not find expected key");

    m = refused("fixtures/duplicate.yaml", &err);
    CHECK_CONTAINS(m, "fixtures/duplicate.yaml:4:3: duplicate key 'depth'");
    CHECK_CONTAINS(m, "first defined at fixtures/duplicate.yaml:2:3");

    m = refused("fixtures/complexkey.yaml", &err);
    CHECK_CONTAINS(m, "fixtures/complexkey.yaml:2:3: a key must be a plain string, not a sequence");

    m = refused("fixtures/selfref.yaml", &err);
    CHECK_CONTAINS(m, "fixtures/selfref.yaml:3:14: alias *me refers to its own anchor &me");
    CHECK_CONTAINS(m, "still being defined");

    m = refused("fixtures/twodocs.yaml", &err);
    CHECK_CONTAINS(m, "fixtures/twodocs.yaml:2:1: a second YAML document");

    m = refused("fixtures/notmap.yaml", &err);
    CHECK_CONTAINS(m, "fixtures/notmap.yaml:1:1: expected a mapping");

    m = refused("fixtures/tab.yaml", &err);
    CHECK_CONTAINS(m, "fixtures/tab.yaml:2:1:");
    CHECK_CONTAINS(m, "tabs");

    m = refused("fixtures/does-not-exist.yaml", &err);
    CHECK_CONTAINS(m, "fixtures/does-not-exist.yaml: cannot open: No such file or directory");
    m = refused("fixtures", &err); /* a directory */
    CHECK_CONTAINS(m, "fixtures: cannot read: Is a directory");

    m = refused_text("a: *nowhere\n", &err);
    CHECK_CONTAINS(m, "t.yaml:1:4: alias *nowhere refers to an anchor &nowhere that is not defined");
    m = refused_text("a: [1, 2\n", &err);
    CHECK_CONTAINS(m, "t.yaml:2:1: YAML syntax error: did not find expected ',' or ']'");
    m = refused_text("a: 1\nb: \xff\n", &err);
    CHECK_CONTAINS(m, "t.yaml:2:4:");
    CHECK_CONTAINS(m, "UTF-8");
    m = refused_text("a: !python/object x\n", &err);
    CHECK_CONTAINS(m, "t.yaml:1:4: unsupported tag");
    m = refused_text("a: 1\n...\n---\nb: 2\n", &err);
    CHECK_CONTAINS(m, "t.yaml:3:1: a second YAML document");
    m = refused_text("a: 1\n~: 2\n", &err);
    CHECK_CONTAINS(m, "t.yaml:2:1: missing key");
    m = refused_text("a: 1\n{x: 1}: 2\n", &err);
    CHECK_CONTAINS(m, "t.yaml:2:1: a key must be a plain string, not a mapping");
    m = refused_text("m: &m {k: v}\n*m : 2\n", &err);
    CHECK_CONTAINS(m, "t.yaml:2:1: a key must be a plain string, not a mapping");
    /* Duplicates are found in big mappings too, naming the first repeat in the file. */
    size_t big = 5000;
    char *text = malloc(big * 16 + 64);
    size_t used = 0;
    for (size_t i = 0; i < big; i++) {
        used += (size_t)sprintf(text + used, "k%zu: %zu\n", i % 4000 == 3999 ? 7u : i, i);
    }
    m = refused_text(text, &err);
    CHECK_CONTAINS(m, "t.yaml:4000:1: duplicate key 'k7' (first defined at t.yaml:8:1)");
    free(text);
}

/* A UTF-8 byte-order mark at the start is skipped; positions count from after it. */
static void test_bom(void)
{
    mpsl_error err = {{0}};
    char where[256];
    cfg_node *root = cfg_parse_string("\xEF\xBB\xBFname: bom\nmodel:\n  depth: 2\n", "b.yaml",
                                      &err);
    CHECK(root != NULL);
    if (!root) {
        fprintf(stderr, "%s\n", err.msg);
        return;
    }
    CHECK(cfg_len(root) == 2 && !strcmp(cfg_key_at(root, 0), "name"));
    CHECK(!strcmp(cfg_scalar(cfg_get(root, "name")), "bom"));
    CHECK_CONTAINS(cfg_where(cfg_get(root, "name"), where, sizeof where), "b.yaml:1:7");
    CHECK_CONTAINS(cfg_where(cfg_path(root, "model.depth"), where, sizeof where), "b.yaml:3:10");
    cfg_free(root);
    /* Only at the start: anywhere else it is text, and a mark alone is an empty file. */
    root = cfg_parse_string("a: x\xEF\xBB\xBF\n", "b.yaml", &err);
    CHECK(root && !strcmp(cfg_scalar(cfg_get(root, "a")), "x\xEF\xBB\xBF"));
    cfg_free(root);
    root = cfg_parse_string("\xEF\xBB\xBF", "b.yaml", &err);
    CHECK(root && cfg_node_type(root) == CFG_MAP && cfg_len(root) == 0);
    cfg_free(root);
    /* Byte offsets in messages still count the mark. */
    const char *m = refused_text("\xEF\xBB\xBF" "a: 1\nb: \xff\n", &err);
    CHECK_CONTAINS(m, "t.yaml:2:4:");
    CHECK_CONTAINS(m, "(byte 11)"); /* 3 + "a: 1\n" + "b: " */

    /* Files and their includes, as Windows editors save them. */
    char dir[] = "/tmp/mpsl-cfg-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char *main_path = mpsl_strfmt("%s/main.yaml", dir);
    char *frag_path = mpsl_strfmt("%s/frag.yaml", dir);
    FILE *f = fopen(main_path, "w");
    if (f) {
        fputs("\xEF\xBB\xBFinclude: frag.yaml\nname: main\n", f);
        fclose(f);
    }
    f = fopen(frag_path, "w");
    if (f) {
        fputs("\xEF\xBB\xBFtrain:\n  epochs: 3\nname: frag\n", f);
        fclose(f);
    }
    root = cfg_load_file(main_path, NULL, &err);
    CHECK(root != NULL);
    if (!root) {
        fprintf(stderr, "%s\n", err.msg);
    }
    CHECK(root && !strcmp(cfg_scalar(cfg_get(root, "name")), "main"));
    CHECK(root && !strcmp(cfg_scalar(cfg_path(root, "train.epochs")), "3"));
    cfg_free(root);
    unlink(main_path);
    unlink(frag_path);
    rmdir(dir);
    free(main_path);
    free(frag_path);
}

/* Nine levels of ten aliases each: a billion nodes if expanded. */
static void test_alias_bomb(void)
{
    char text[4096];
    size_t used = (size_t)sprintf(text, "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for (char c = 'b'; c <= 'i'; c++) {
        used += (size_t)sprintf(text + used, "%c: &%c [", c, c);
        for (int k = 0; k < 10; k++) {
            used += (size_t)sprintf(text + used, "%s*%c", k ? ", " : "", c - 1);
        }
        used += (size_t)sprintf(text + used, "]\n");
    }
    mpsl_error err;
    double t0 = mpsl_now();
    const char *m = refused_text(text, &err);
    double dt = mpsl_now() - t0;
    CHECK(dt < 1.0);
    CHECK_CONTAINS(m, "t.yaml:");
    CHECK_CONTAINS(m, "more than 200000 nodes after expanding aliases");
    CHECK_CONTAINS(m, "alias bomb");

    /* One long string repeated by many aliases is bounded by bytes, not nodes. */
    size_t len = 1 << 20, n_alias = 100;
    char *big = malloc(len + n_alias * 8 + 64);
    used = (size_t)sprintf(big, "s: &s ");
    memset(big + used, 'x', len);
    used += len;
    used += (size_t)sprintf(big + used, "\nl: [");
    for (size_t k = 0; k < n_alias; k++) {
        used += (size_t)sprintf(big + used, "%s*s", k ? ", " : "");
    }
    sprintf(big + used, "]\n");
    t0 = mpsl_now();
    m = refused_text(big, &err);
    CHECK(mpsl_now() - t0 < 1.0);
    CHECK_CONTAINS(m, "t.yaml:2:");
    CHECK_CONTAINS(m, "MiB of text");
    free(big);

    /* Honest aliases below the limits load. */
    mpsl_error e2 = {{0}};
    cfg_node *ok = cfg_parse_string("a: &a [1, 2]\nb: [*a, *a, *a]\n", "t.yaml", &e2);
    CHECK(ok && cfg_len(cfg_get(ok, "b")) == 3);
    cfg_free(ok);
}

static void test_deep_nesting(void)
{
    size_t n = 100000;
    char *text = malloc(4 * n + 1);
    mpsl_error err;
    const char *m;

    memset(text, '[', n);
    text[n] = '\0';
    double t0 = mpsl_now();
    m = refused_text(text, &err);
    CHECK(mpsl_now() - t0 < 1.0);
    CHECK_CONTAINS(m, "t.yaml:1:65: nesting deeper than 64 levels");

    text[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        memcpy(text + 4 * i, "{a: ", 4);
    }
    text[4 * n] = '\0';
    t0 = mpsl_now();
    m = refused_text(text, &err);
    CHECK(mpsl_now() - t0 < 1.0);
    CHECK_CONTAINS(m, "nesting deeper than 64 levels");

    /* Block style: 64 levels load, 65 do not. */
    for (int levels = 64; levels <= 65; levels++) {
        size_t used = 0;
        char *block = malloc((size_t)levels * (size_t)levels * 2 + 64);
        for (int i = 0; i < levels - 1; i++) {
            used += (size_t)sprintf(block + used, "%*sk:\n", 2 * i, "");
        }
        sprintf(block + used, "%*sk: 1\n", 2 * (levels - 1), "");
        mpsl_error e = {{0}};
        cfg_node *root = cfg_parse_string(block, "t.yaml", &e);
        CHECK((root != NULL) == (levels == 64));
        if (levels == 65) {
            CHECK_CONTAINS(e.msg, "t.yaml:65:129: nesting deeper than 64 levels");
        }
        cfg_free(root);
        free(block);
    }
    free(text);
}

/* Garbage must be refused or accepted, never crash: a cheap fuzz over mutated fixtures. */
static void test_no_crash(void)
{
    const char *seed = "a: &x {b: [1, 'two', \"three\"], c: *x}\nd: - e\n  f: |\n   g\n"
                       "? h\n: [*x, {i: j}]\n---\nk";
    size_t len = strlen(seed);
    char buf[128];
    mpsl_rng rng;
    mpsl_rng_seed(&rng, 42);
    const char alphabet[] = "[]{}:,-?&*!|>'\"#\n \t.~a1";
    for (int iter = 0; iter < 3000; iter++) {
        memcpy(buf, seed, len + 1);
        int edits = 1 + (int)(mpsl_rng_u64(&rng) % 4);
        for (int k = 0; k < edits; k++) {
            size_t pos = (size_t)(mpsl_rng_u64(&rng) % len);
            buf[pos] = alphabet[mpsl_rng_u64(&rng) % (sizeof alphabet - 1)];
        }
        mpsl_error err = {{0}};
        cfg_node *n = cfg_parse_string(buf, "fuzz.yaml", &err);
        if (n) {
            char *y = cfg_to_yaml(n);
            CHECK(y != NULL);
            free(y);
        } else {
            CHECK_CONTAINS(err.msg, "fuzz.yaml:");
        }
        cfg_free(n);
    }
}

int main(void)
{
    test_basic();
    test_refusals();
    test_bom();
    test_alias_bomb();
    test_deep_nesting();
    test_no_crash();
    return check_exit();
}
