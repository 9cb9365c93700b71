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
    return check_exit();
}
