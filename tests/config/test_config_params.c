/* test_config_params.c: cfg_parse_params() for every parameter type (ranges, NaN/inf,
 * quoted numbers, nulls, enums), unknown and missing keys, defaults and bad specs, and
 * cfg_did_you_mean(). Each refusal is checked for its file:line:column and its words. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "config/config.h"
#include "util/util.h"

typedef struct enc_params {
    int64_t depth;
    double lr;
    int bias;
    const char *name;
    int pool;
    int64_t seed;
} enc_params;

static const mpsl_param_spec enc_spec[] = {
    MPSL_PARAM_INT(enc_params, depth, "depth", 1, 1, 64, NULL, "number of blocks"),
    MPSL_PARAM_FLOAT(enc_params, lr, "lr", 0, 0, 1, "1e-3", "learning rate"),
    MPSL_PARAM_BOOL(enc_params, bias, "bias", "true", "add a bias"),
    MPSL_PARAM_STRING(enc_params, name, "name", 0, "enc", "display name"),
    MPSL_PARAM_ENUM(enc_params, pool, "pool", "cls|mean|max", "mean", "pooling"),
    MPSL_PARAM_INT(enc_params, seed, "seed", 0, 0, 0, "-7", "unbounded when min == max == 0"),
};

static const char *const ignore[] = {"plugin", NULL};

/* Parse `yaml` (its root is the section) and return the status; message in err. */
static int parse(const char *yaml, enc_params *p, mpsl_error *err, cfg_node **keep)
{
    memset(err, 0, sizeof *err);
    cfg_node *root = cfg_parse_string(yaml, "p.yaml", err);
    CHECK(root != NULL);
    int rc = cfg_parse_params(root, enc_spec, MPSL_COUNT(enc_spec), p, sizeof *p,
                              "model.encoder", ignore, err);
    if (keep) {
        *keep = root;
    } else {
        cfg_free(root);
    }
    return rc;
}

static void refuse(const char *yaml, const char *needle1, const char *needle2)
{
    enc_params p;
    mpsl_error err;
    CHECK(parse(yaml, &p, &err, NULL) == MPSL_ERR_INVALID);
    CHECK_CONTAINS(err.msg, needle1);
    if (needle2) {
        CHECK_CONTAINS(err.msg, needle2);
    }
}

static void test_accept(void)
{
    enc_params p;
    mpsl_error err;
    cfg_node *root = NULL;
    CHECK(parse("plugin: vit\ndepth: 12\n", &p, &err, &root) == MPSL_OK);
    CHECK(p.depth == 12);
    CHECK_CLOSE(p.lr, 1e-3, 1e-12);
    CHECK(p.bias == 1);
    CHECK(p.name && !strcmp(p.name, "enc"));
    CHECK(p.pool == 1);
    CHECK(p.seed == -7);
    cfg_free(root);

    CHECK(parse("depth: +3\nlr: 1e-4\nbias: false\nname: 'x y'\npool: max\nseed: "
                "-9223372036854775808\n",
                &p, &err, &root) == MPSL_OK);
    CHECK(p.depth == 3);
    CHECK_CLOSE(p.lr, 1e-4, 1e-12);
    CHECK(p.bias == 0);
    CHECK(p.name && !strcmp(p.name, "x y"));
    CHECK(p.name == cfg_scalar(cfg_get(root, "name"))); /* points into the tree */
    CHECK(p.pool == 2);
    CHECK(p.seed == INT64_MIN);
    cfg_free(root);

    /* Integers are numbers; bounds are inclusive; FALSE/True are YAML 1.2 booleans. */
    CHECK(parse("depth: 64\nlr: 1\nbias: True\nname: 5\npool: 'cls'\n", &p, &err, NULL) ==
          MPSL_OK);
    CHECK(p.depth == 64 && p.lr == 1.0 && p.bias == 1 && p.pool == 0);
    CHECK(parse("depth: 1\nlr: .5\n", &p, &err, NULL) == MPSL_OK && p.lr == 0.5);
    CHECK(parse("depth: 1\nlr: 0.\n", &p, &err, NULL) == MPSL_OK && p.lr == 0.0);
    /* A null string is NULL; a null section means all defaults except required keys. */
    CHECK(parse("depth: 1\nname:\n", &p, &err, NULL) == MPSL_OK && p.name == NULL);

    /* map == NULL: defaults only. */
    static const mpsl_param_spec opt_spec[] = {
        MPSL_PARAM_FLOAT(enc_params, lr, "lr", 0, 0, 1, "0.25", "learning rate"),
    };
    CHECK(cfg_parse_params(NULL, opt_spec, 1, &p, sizeof p, "x", NULL, &err) == MPSL_OK);
    CHECK(p.lr == 0.25 && p.depth == 0); /* zeroed first */
}

static void test_refuse(void)
{
    refuse("depth: abc\n", "p.yaml:1:8: expected an integer in [1, 64] for 'depth', got \"abc\"",
           "got \"abc\"; depth: number of blocks");
    refuse("depth: 1.5\n", "p.yaml:1:8: expected an integer in [1, 64] for 'depth', got \"1.5\" "
                           "(not a whole number)",
           NULL);
    refuse("depth: 65\n", "p.yaml:1:8: expected an integer in [1, 64] for 'depth', got \"65\"", NULL);
    refuse("depth: 0\n", "expected an integer in [1, 64]", NULL);
    refuse("depth: 99999999999999999999\n", "p.yaml:1:8:", "too large for a 64-bit integer");
    refuse("depth: 1e3\n", "p.yaml:1:8: expected an integer", NULL);
    refuse("depth: '5'\n", "p.yaml:1:8: expected an integer in [1, 64] for 'depth', got the quoted "
                           "string \"5\"; remove the quotes",
           NULL);
    refuse("depth:\n", "p.yaml:1:7: expected an integer in [1, 64] for 'depth', got null", NULL);
    refuse("depth: ~\n", "got null", NULL);
    refuse("depth: [1]\n", "p.yaml:1:8: expected an integer in [1, 64] for 'depth', got a sequence",
           NULL);
    refuse("depth: {a: 1}\n", "got a mapping", NULL);

    const char *nonfinite[] = {".nan", ".NaN", "nan", "NAN", ".inf", "-.Inf", "+.INF", "inf",
                               "-inf", "Infinity", "1e999"};
    for (size_t i = 0; i < MPSL_COUNT(nonfinite); i++) {
        char yaml[64];
        snprintf(yaml, sizeof yaml, "depth: 1\nlr: %s\n", nonfinite[i]);
        refuse(yaml, "p.yaml:2:5: expected a number in [0, 1] for 'lr'", "not a finite number");
    }
    refuse("depth: 1\nseed: .inf\n", "p.yaml:2:7: expected an integer for 'seed'",
           "not a finite number");
    refuse("depth: 1\nlr: 1.5\n", "p.yaml:2:5: expected a number in [0, 1] for 'lr', got \"1.5\"",
           NULL);
    refuse("depth: 1\nlr: -1e-9\n", "expected a number in [0, 1]", NULL);
    refuse("depth: 1\nlr: 0x10\n", "expected a number", NULL);
    refuse("depth: 1\nlr: 1e\n", "expected a number", NULL);
    refuse("depth: 1\nlr: '0.5'\n", "got the quoted string \"0.5\"; remove the quotes", NULL);

    refuse("depth: 1\nbias: yes\n", "p.yaml:2:7: expected true or false for 'bias', got \"yes\"",
           "YAML 1.2 booleans are only true and false");
    refuse("depth: 1\nbias: 1\n", "expected true or false for 'bias', got \"1\"", NULL);
    refuse("depth: 1\nbias: 'true'\n", "remove the quotes", NULL);
    refuse("depth: 1\nname: [a]\n", "p.yaml:2:7: expected a string for 'name', got a sequence", NULL);

    refuse("depth: 1\npool: maen\n",
           "p.yaml:2:7: expected one of cls, mean, max for 'pool', got \"maen\"; did you mean "
           "'mean'?",
           NULL);
    refuse("depth: 1\npool: average\n", "expected one of cls, mean, max for 'pool', got \"average\"; pool: pooling",
           NULL);
    refuse("depth: 1\npool: Mean\n", "did you mean 'mean'?", NULL);
    refuse("depth: 1\npool:\n", "got null", NULL);

    refuse("dpeth: 4\n", "p.yaml:1:1: unknown key 'dpeth' in model.encoder; did you mean 'depth'?",
           "(valid keys: depth, lr, bias, name, pool, seed, plugin)");
    refuse("depth: 4\nzzzzzz: 1\n", "p.yaml:2:1: unknown key 'zzzzzz' in model.encoder (valid keys:",
           NULL);
    refuse("lr: 0.1\n", "p.yaml:1:1: missing required key 'depth' in model.encoder (number of blocks)",
           NULL);
    refuse("- depth\n", "p.yaml:1:1: expected a mapping (key: value lines) in model.encoder, got a "
                        "sequence",
           NULL);
    refuse("just text\n", "expected a mapping (key: value lines) in model.encoder, got \"just text\"",
           NULL);

    /* NULL map: a missing required key names the section. */
    enc_params p;
    mpsl_error err = {{0}};
    CHECK(cfg_parse_params(NULL, enc_spec, MPSL_COUNT(enc_spec), &p, sizeof p, "model.encoder",
                           NULL, &err) == MPSL_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "model.encoder: missing required key 'depth'");

    /* Positions from --set show up in messages too. */
    cfg_node *root = cfg_parse_string("encoder: {depth: 2}\n", "p.yaml", &err);
    CHECK(cfg_apply_override(root, "encoder.depth=x", &err) == MPSL_OK);
    CHECK(cfg_parse_params(cfg_get(root, "encoder"), enc_spec, MPSL_COUNT(enc_spec), &p, sizeof p,
                           "encoder", NULL, &err) == MPSL_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "--set encoder.depth: expected an integer in [1, 64] for 'depth', "
                            "got \"x\"");
    cfg_free(root);
}

static void test_bad_specs(void)
{
    enc_params p;
    mpsl_error err = {{0}};
    static const mpsl_param_spec bad_def[] = {
        MPSL_PARAM_INT(enc_params, depth, "depth", 0, 1, 8, "9", "out of its own range"),
    };
    CHECK(cfg_parse_params(NULL, bad_def, 1, &p, sizeof p, "m", NULL, &err) == MPSL_ERR_INTERNAL);
    CHECK_CONTAINS(err.msg, "parameter spec 'depth' in m has a bad default \"9\"");
    static const mpsl_param_spec bad_enum[] = {
        MPSL_PARAM_ENUM(enc_params, pool, "pool", "a|b", "c", "default not a choice"),
    };
    CHECK(cfg_parse_params(NULL, bad_enum, 1, &p, sizeof p, "m", NULL, &err) == MPSL_ERR_INTERNAL);
    CHECK_CONTAINS(err.msg, "'pool'");
    static const mpsl_param_spec bad_float[] = {
        MPSL_PARAM_FLOAT(enc_params, lr, "lr", 0, 0, 1, ".nan", "nan default"),
    };
    CHECK(cfg_parse_params(NULL, bad_float, 1, &p, sizeof p, "m", NULL, &err) == MPSL_ERR_INTERNAL);
    CHECK_CONTAINS(err.msg, "not a finite number");
    CHECK(cfg_parse_params(NULL, enc_spec, MPSL_COUNT(enc_spec), &p, 8, "m", NULL, &err) ==
          MPSL_ERR_INTERNAL);
    CHECK_CONTAINS(err.msg, "does not fit params_size 8");
    /* Required keys ignore their default. */
    static const mpsl_param_spec req[] = {
        MPSL_PARAM_STRING(enc_params, name, "name", 1, "unused", "the name"),
    };
    CHECK(cfg_parse_params(NULL, req, 1, &p, sizeof p, "m", NULL, &err) == MPSL_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "missing required key 'name'");
}

static void test_did_you_mean(void)
{
    const char *const keys[] = {"depth", "width", "heads", "dropout", "learning_rate"};
    size_t n = MPSL_COUNT(keys);
    CHECK(!strcmp(cfg_did_you_mean("dpeth", keys, n), "depth"));   /* swap */
    CHECK(!strcmp(cfg_did_you_mean("depht", keys, n), "depth"));   /* swap */
    CHECK(!strcmp(cfg_did_you_mean("dept", keys, n), "depth"));    /* deletion */
    CHECK(!strcmp(cfg_did_you_mean("deptth", keys, n), "depth"));  /* insertion */
    CHECK(!strcmp(cfg_did_you_mean("DEPTH", keys, n), "depth"));   /* case */
    CHECK(!strcmp(cfg_did_you_mean("widht", keys, n), "width"));
    CHECK(!strcmp(cfg_did_you_mean("drop_out", keys, n), "dropout"));
    CHECK(!strcmp(cfg_did_you_mean("learningrate", keys, n), "learning_rate"));
    CHECK(!strcmp(cfg_did_you_mean("lerning_rat", keys, n), "learning_rate"));
    CHECK(cfg_did_you_mean("lr", keys, n) == NULL);
    CHECK(cfg_did_you_mean("colour", keys, n) == NULL);
    CHECK(cfg_did_you_mean("xyz", keys, n) == NULL);
    CHECK(cfg_did_you_mean("", keys, n) == NULL);
    CHECK(cfg_did_you_mean("depth", NULL, 0) == NULL);
    char longword[200];
    memset(longword, 'd', sizeof longword - 1);
    longword[sizeof longword - 1] = '\0';
    CHECK(cfg_did_you_mean(longword, keys, n) == NULL);
}

int main(void)
{
    test_accept();
    test_refuse();
    test_bad_specs();
    test_did_you_mean();
    return check_exit();
}
