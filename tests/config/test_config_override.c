/* test_config_override.c: `--set a.b.c=value`: creating paths, replacing values, YAML flow
 * values, positions reported as "--set a.b.c", and the refusals. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "config/config.h"
#include "util/util.h"

static cfg_node *base(void)
{
    mpsl_error err = {{0}};
    cfg_node *root = cfg_parse_string("model:\n  encoder:\n    depth: 2\n  name: vit\n"
                                      "list: [1, 2]\n",
                                      "base.yaml", &err);
    CHECK(root != NULL);
    return root;
}

static void test_apply(void)
{
    cfg_node *root = base();
    mpsl_error err = {{0}};
    char where[256];

    CHECK(cfg_apply_override(root, "model.encoder.depth=4", &err) == MPSL_OK);
    const cfg_node *d = cfg_path(root, "model.encoder.depth");
    CHECK(d && !strcmp(cfg_scalar(d), "4") && !cfg_scalar_quoted(d));
    CHECK(!strcmp(cfg_where(d, where, sizeof where), "--set model.encoder.depth"));
    CHECK(!strcmp(cfg_where_key(cfg_path(root, "model.encoder"), "depth", where, sizeof where),
                  "--set model.encoder.depth"));
    CHECK(cfg_len(cfg_path(root, "model.encoder")) == 1); /* replaced, not added */

    /* Missing mappings are created along the path. */
    CHECK(cfg_apply_override(root, "train.optimizer.lr=1e-3", &err) == MPSL_OK);
    CHECK(!strcmp(cfg_scalar(cfg_path(root, "train.optimizer.lr")), "1e-3"));
    CHECK(!strcmp(cfg_where(cfg_path(root, "train"), where, sizeof where),
                  "--set train.optimizer.lr"));

    /* Flow values. */
    CHECK(cfg_apply_override(root, "list=[3, 4, 5]", &err) == MPSL_OK);
    CHECK(cfg_node_type(cfg_get(root, "list")) == CFG_SEQ && cfg_len(cfg_get(root, "list")) == 3);
    CHECK(cfg_apply_override(root, "model.head={pool: mean, dim: 8}", &err) == MPSL_OK);
    CHECK(!strcmp(cfg_scalar(cfg_path(root, "model.head.pool")), "mean"));
    CHECK(!strcmp(cfg_where(cfg_path(root, "model.head.dim"), where, sizeof where),
                  "--set model.head"));
    CHECK(cfg_apply_override(root, "model.name='5'", &err) == MPSL_OK);
    CHECK(cfg_scalar_quoted(cfg_path(root, "model.name")));
    CHECK(cfg_apply_override(root, " model.tag = hello world ", &err) == MPSL_OK);
    CHECK(!strcmp(cfg_scalar(cfg_path(root, "model.tag")), "hello world"));
    CHECK(cfg_apply_override(root, "model.empty=", &err) == MPSL_OK);
    CHECK(cfg_is_null(cfg_path(root, "model.empty")));
    CHECK(cfg_apply_override(root, "eq=a=b", &err) == MPSL_OK); /* first '=' splits */
    CHECK(!strcmp(cfg_scalar(cfg_get(root, "eq")), "a=b"));
    /* A mapping can be replaced by a scalar as a whole. */
    CHECK(cfg_apply_override(root, "model.encoder=none", &err) == MPSL_OK);
    CHECK(!strcmp(cfg_scalar(cfg_path(root, "model.encoder")), "none"));
    cfg_free(root);
}

static void test_refusals(void)
{
    cfg_node *root = base();
    mpsl_error err;

    memset(&err, 0, sizeof err);
    CHECK(cfg_apply_override(root, "model.encoder.depth", &err) != MPSL_OK);
    CHECK_CONTAINS(err.msg, "--set model.encoder.depth: missing '='");
    CHECK(cfg_apply_override(root, "=4", &err) != MPSL_OK);
    CHECK_CONTAINS(err.msg, "missing key before '='");
    CHECK(cfg_apply_override(root, " =4", &err) != MPSL_OK);
    CHECK_CONTAINS(err.msg, "missing key before '='");
    CHECK(cfg_apply_override(root, "model..depth=4", &err) != MPSL_OK);
    CHECK_CONTAINS(err.msg, "empty part in key 'model..depth'");
    CHECK(cfg_apply_override(root, "model.=4", &err) != MPSL_OK);
    CHECK_CONTAINS(err.msg, "empty part");
    CHECK(cfg_apply_override(root, "model.name.x=4", &err) != MPSL_OK);
    CHECK_CONTAINS(err.msg, "--set model.name.x: cannot set 'model.name.x': 'model.name' is a "
                            "scalar (at base.yaml:4:9), not a mapping");
    CHECK(cfg_apply_override(root, "list.0=4", &err) != MPSL_OK);
    CHECK_CONTAINS(err.msg, "'list' is a sequence (at base.yaml:5:7)");
    CHECK(cfg_apply_override(root, "model.depth=[1, 2", &err) != MPSL_OK);
    CHECK_CONTAINS(err.msg, "--set model.depth: cannot read the value '[1, 2':");
    CHECK_CONTAINS(err.msg, "YAML syntax error");
    CHECK(cfg_apply_override(root, "a={x: 1, x: 2}", &err) != MPSL_OK);
    CHECK_CONTAINS(err.msg, "duplicate key 'x'");
    /* Over-long keys are refused with a short echo, never read past the message buffer
     * (a 5000-character key with an unreadable value once did). */
    char *long_set = malloc(6000);
    CHECK(long_set != NULL);
    if (long_set) {
        memset(long_set, 'k', 5000);
        strcpy(long_set + 5000, "=[1, 2");
        memset(&err, 0, sizeof err);
        CHECK(cfg_apply_override(root, long_set, &err) != MPSL_OK);
        CHECK_CONTAINS(err.msg, "the key is 5000 characters long; a key is at most 255");
        CHECK(strlen(err.msg) < 200);
        strcpy(long_set + 5000, "=4");
        CHECK(cfg_apply_override(root, long_set, &err) != MPSL_OK);
        CHECK_CONTAINS(err.msg, "at most 255 characters");
        long_set[5000] = '\0';
        cfg_node *four = cfg_parse_string("4", "v.yaml", &err);
        CHECK(four && cfg_set(root, long_set, four, &err) != MPSL_OK);
        CHECK_CONTAINS(err.msg, "at most 255 characters");
        cfg_free(four);
        /* At the limit the key is accepted, and a value it cannot read is still quoted. */
        memset(long_set, 'k', 255);
        strcpy(long_set + 255, "=[1, 2");
        CHECK(cfg_apply_override(root, long_set, &err) != MPSL_OK);
        CHECK_CONTAINS(err.msg, "kkk: cannot read the value '[1, 2': YAML syntax error");
        strcpy(long_set + 255, "=4");
        CHECK(cfg_apply_override(root, long_set, &err) == MPSL_OK);
        long_set[255] = '\0';
        cfg_remove(root, long_set);
        free(long_set);
    }
    /* Nothing changed by the refused ones. */
    CHECK(!strcmp(cfg_scalar(cfg_path(root, "model.encoder.depth")), "2"));
    CHECK(cfg_get(root, "a") == NULL);
    cfg_free(root);
}

int main(void)
{
    test_apply();
    test_refusals();
    return check_exit();
}
