/* test_config_emit.c: cfg_to_yaml() writes canonical block YAML that reads back as an equal
 * tree, keeping quoted strings quoted so "5" stays a string. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "config/config.h"
#include "util/util.h"

static void round_trip(const char *text, const char *expect)
{
    mpsl_error err = {{0}};
    cfg_node *a = cfg_parse_string(text, "a.yaml", &err);
    CHECK(a != NULL);
    if (!a) {
        fprintf(stderr, "%s\n", err.msg);
        return;
    }
    char *y = cfg_to_yaml(a);
    CHECK(y != NULL);
    cfg_node *b = y ? cfg_parse_string(y, "b.yaml", &err) : NULL;
    CHECK(b != NULL);
    CHECK(cfg_equal(a, b));
    if (expect) {
        CHECK_CONTAINS(y, expect);
    }
    /* Canonical: emitting again gives the same text. */
    char *y2 = b ? cfg_to_yaml(b) : NULL;
    CHECK(y && y2 && !strcmp(y, y2));
    free(y);
    free(y2);
    cfg_free(a);
    cfg_free(b);
}

int main(void)
{
    round_trip("a: 1\nb: '5'\nc: \"true\"\nd: ~\ne: null\nf: ''\ng:\n", "b: '5'\nc: 'true'\n");
    round_trip("m: {x: [1, 2, {y: z}], w: []}\nn: {}\n", "m:\n  x:\n  - 1\n  - 2\n  - y: z\n");
    round_trip("s: \"line one\\nline two\\ttab\"\nq: 'it''s'\nu: \"caf\\u00e9 \\u2192\"\n",
               "\"line one\\nline two\\ttab\"");
    round_trip("k: 'a: b'\nl: '# not a comment'\nm: '- dash'\nn: ' lead'\no: '@x'\np: '*a'\n",
               NULL);
    round_trip("lr: 1e-4\nneg: -3\nhex: 0x1F\ninf: .inf\nlong: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
               "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa bb\n",
               "lr: 1e-4\n");
    round_trip("'quoted key': 1\n\"5\": five\n", NULL);
    round_trip("- 1\n- - 2\n  - 3\n", NULL);
    round_trip("scalar at the root\n", NULL);
    round_trip("", "{}");

    /* The experiment files themselves round-trip after includes and --set. */
    mpsl_error err = {{0}};
    const char *const dirs[] = {"fixtures/configs", NULL};
    cfg_node *root = cfg_load_file("fixtures/inc/main.yaml", dirs, &err);
    CHECK(root != NULL);
    CHECK(cfg_apply_override(root, "model.encoder.tags=[x, '7']", &err) == MPSL_OK);
    char *y = cfg_to_yaml(root);
    cfg_node *back = y ? cfg_parse_string(y, "emitted.yaml", &err) : NULL;
    CHECK(back && cfg_equal(root, back));
    CHECK_CONTAINS(y, "name: main\n");
    CHECK(y && !strstr(y, "include"));
    free(y);
    cfg_free(back);
    cfg_free(root);
    CHECK(cfg_to_yaml(NULL) == NULL);

    /* Keys made by --set are plain. Ones that would read back as null (refused as a key),
     * a bool or a number are quoted, so a run's stored config loads again (--from-run). */
    static const char *const odd_keys[] = {"null", "~",  "NULL", "true", "False", "yes",
                                           "off",  "5",  "-15",  "1e3",  "0x1F",  "<<"};
    root = cfg_parse_string("model: {tokenizers: {}}\n", "exp.yaml", &err);
    CHECK(root != NULL);
    for (size_t i = 0; root && i < MPSL_COUNT(odd_keys); i++) {
        char *set = mpsl_strfmt("model.tokenizers.%s.plugin=image_patch", odd_keys[i]);
        CHECK(set && cfg_apply_override(root, set, &err) == MPSL_OK);
        free(set);
    }
    CHECK(root && cfg_apply_override(root, "model.tokenizers.image.plugin=null", &err) == 0);
    y = cfg_to_yaml(root);
    memset(&err, 0, sizeof err);
    back = y ? cfg_parse_string(y, "stored.yaml", &err) : NULL;
    CHECK(back != NULL);
    if (!back) {
        fprintf(stderr, "%s\n%s\n", err.msg, y ? y : "(no yaml)");
    }
    CHECK(back && cfg_equal(root, back));
    CHECK(back && cfg_len(cfg_path(back, "model.tokenizers")) == MPSL_COUNT(odd_keys) + 1);
    CHECK_CONTAINS(y, "\n    'null':\n      plugin: image_patch\n");
    CHECK_CONTAINS(y, "\n    '~':\n");
    CHECK_CONTAINS(y, "\n    'yes':\n");
    CHECK_CONTAINS(y, "\n    '-15':\n");
    CHECK_CONTAINS(y, "\n    '<<':\n");
    /* Ordinary keys stay plain, and values are left as they were: null is still null. */
    CHECK_CONTAINS(y, "model:\n  tokenizers:\n");
    CHECK_CONTAINS(y, "\n    image:\n      plugin: null\n");
    CHECK(back && cfg_is_null(cfg_path(back, "model.tokenizers.image.plugin")));
    char *again = back ? cfg_to_yaml(back) : NULL;
    CHECK(y && again && !strcmp(y, again));
    free(again);
    free(y);
    cfg_free(back);
    cfg_free(root);
    return check_exit();
}
