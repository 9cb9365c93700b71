/* test_groups.c: runs grouped into configurations (core/results/groups.c) and configs
 * flattened to dotted pairs (flatten.c): repeats over seeds fall into one group whatever the
 * order of their keys, labels name what differs, --group-by keys (run_params columns and dotted
 * config keys) and their refusals, runs that stored only YAML. */
#include "results/flatten.h"
#include "results/groups.h"
#include "results_test.h"

static char *db;

/* A run with a config as JSON (or, with yaml set, only as YAML, as before schema 4). */
static int64_t add_run(store *s, const char *name, const char *method, const char *json,
                       const char *yaml)
{
    mpsl_error err = {{0}};
    store_run_info info = {.name = name, .method = method, .dataset = "fashion_mnist",
                           .n_clients = 2, .config_json = json, .config_yaml = yaml};
    int64_t id = 0;
    CHECK(store_run_begin(s, &info, &id, &err) == MPSL_OK);
    return id;
}

static void populate(void)
{
    mpsl_error err = {{0}};
    store *s = NULL;
    CHECK(store_open(db, STORE_READ_WRITE, &s, &err) == MPSL_OK);
    if (!s) {
        fprintf(stderr, "%s\n", err.msg);
        return;
    }
    /* 1, 2: fedavg over two seeds (2 lists its keys in another order); 3, 4: fedprox mu 0.01;
     * 5: fedprox mu 0.1; 6: fedavg as YAML only, the same config as 1 and 2; 7: a config
     * that is not JSON (never written so). */
    add_run(s, "exp/strategy=fedavg,seed=1", "fedavg",
            "{\"name\":\"exp/strategy=fedavg,seed=1\",\"seed\":1,\"data\":{\"clients\":2,"
            "\"partition\":{\"scheme\":\"dirichlet\",\"alpha\":0.5}},\"strategy\":{\"plugin\":"
            "\"fedavg\"},\"train\":{\"optimizer\":{\"name\":\"adam\",\"lr\":0.001}},"
            "\"output\":{\"db\":\"a.db\"}}", NULL);
    add_run(s, "exp/strategy=fedavg,seed=2", "fedavg",
            "{\"seed\":2,\"strategy\":{\"plugin\":\"fedavg\"},\"name\":\"exp/strategy=fedavg,"
            "seed=2\",\"train\":{\"optimizer\":{\"lr\":0.001,\"name\":\"adam\"}},\"data\":"
            "{\"partition\":{\"alpha\":0.5,\"scheme\":\"dirichlet\"},\"clients\":2},"
            "\"output\":{\"db\":\"b.db\"}}", NULL);
    for (int i = 0; i < 3; i++) {
        char json[400], name[64];
        snprintf(name, sizeof name, "exp/strategy=fedprox(mu=%s),seed=%d", i < 2 ? "0.01" : "0.1",
                 i + 1);
        snprintf(json, sizeof json,
                 "{\"name\":\"%s\",\"seed\":%d,\"data\":{\"clients\":2,\"partition\":{\"scheme\":"
                 "\"dirichlet\",\"alpha\":0.5}},\"strategy\":{\"plugin\":\"fedprox\",\"mu\":%s},"
                 "\"train\":{\"optimizer\":{\"name\":\"adam\",\"lr\":0.001}}}",
                 name, i + 1, i < 2 ? "0.01" : "1e-1");
        add_run(s, name, "fedprox", json, NULL);
    }
    add_run(s, "exp/strategy=fedavg,seed=3", "fedavg", NULL,
            "name: exp/strategy=fedavg,seed=3\nseed: 3\ndata:\n  clients: 2\n  partition:\n"
            "    scheme: dirichlet\n    alpha: 0.5\nstrategy:\n  plugin: fedavg\n"
            "train:\n  optimizer:\n    name: adam\n    lr: 0.001\n");
    add_run(s, "broken", "fedavg", "{\"seed\":", NULL);
    store_close(s);
}

static int has_id(const run_group *g, int64_t id)
{
    for (size_t i = 0; i < g->n; i++) {
        if (g->ids[i] == id) {
            return 1;
        }
    }
    return 0;
}

static sqlite3 *open_db(void)
{
    sqlite3 *h = NULL;
    CHECK(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK);
    return h;
}

static void test_default_grouping(sqlite3 *h)
{
    const int64_t ids[] = {1, 3, 2, 4, 5, 6, 1};
    run_group *g = NULL;
    size_t n = 0;
    mpsl_error err = {{0}};
    CHECK(groups_make(h, ids, 7, NULL, &g, &n, &err) == MPSL_OK);
    CHECK(n == 3);
    if (n != 3) {
        fprintf(stderr, "%s\n", err.msg);
        groups_free(g, n);
        return;
    }
    /* in the order of first appearance; run 1 given twice counts once; 6 (YAML) joins 1, 2 */
    CHECK(g[0].n == 3 && g[0].ids[0] == 1 && g[0].ids[1] == 2 && g[0].ids[2] == 6);
    CHECK(g[1].n == 2 && has_id(&g[1], 3) && has_id(&g[1], 4));
    CHECK(g[2].n == 1 && g[2].ids[0] == 5);
    /* only the keys that tell the groups apart; one a group lacks is left out of its label */
    CHECK(strcmp(g[0].label, "strategy.plugin=fedavg") == 0);
    CHECK(strcmp(g[1].label, "strategy.plugin=fedprox, strategy.mu=0.01") == 0);
    CHECK(strcmp(g[2].label, "strategy.plugin=fedprox, strategy.mu=0.1") == 0);
    CHECK(strcmp(g[0].key, g[1].key) != 0);
    groups_free(g, n);

    /* a config that does not parse: a group of its own, labelled by its name */
    const int64_t with_broken[] = {1, 7, 2};
    CHECK(groups_make(h, with_broken, 3, NULL, &g, &n, &err) == MPSL_OK);
    CHECK(n == 2 && g[0].n == 2 && g[1].n == 1 && g[1].ids[0] == 7);
    CHECK(n == 2 && strcmp(g[1].label, "broken") == 0);
    groups_free(g, n);

    /* one configuration only: the label is the run name without its seed */
    const int64_t same[] = {2, 1};
    CHECK(groups_make(h, same, 2, "", &g, &n, &err) == MPSL_OK);
    CHECK(n == 1 && g[0].n == 2);
    CHECK(n == 1 && strcmp(g[0].label, "exp/strategy=fedavg") == 0);
    groups_free(g, n);
}

static void test_group_by(sqlite3 *h)
{
    const int64_t ids[] = {1, 2, 3, 4, 5, 6};
    run_group *g = NULL;
    size_t n = 0;
    mpsl_error err = {{0}};
    CHECK(groups_make(h, ids, 6, "strategy", &g, &n, &err) == MPSL_OK);
    CHECK(n == 2 && g[0].n == 3 && g[1].n == 3);
    CHECK(n == 2 && strcmp(g[0].label, "strategy=fedavg") == 0 &&
          strcmp(g[1].label, "strategy=fedprox") == 0);
    groups_free(g, n);

    CHECK(groups_make(h, ids, 6, " strategy.plugin , strategy.mu", &g, &n, &err) == MPSL_OK);
    CHECK(n == 3 && g[0].n == 3 && g[1].n == 2 && g[2].n == 1);
    CHECK(n == 3 && strcmp(g[0].label, "strategy.plugin=fedavg, strategy.mu=(unset)") == 0);
    CHECK(n == 3 && strcmp(g[2].label, "strategy.plugin=fedprox, strategy.mu=0.1") == 0);
    groups_free(g, n);

    /* a run_params column read from the config; run 6 stored only YAML */
    CHECK(groups_make(h, ids, 6, "lr,alpha", &g, &n, &err) == MPSL_OK);
    CHECK(n == 1 && g[0].n == 6);
    CHECK(n == 1 && strcmp(g[0].label, "lr=0.001, alpha=0.5") == 0);
    groups_free(g, n);

    /* an object key: its leaves, sorted */
    CHECK(groups_make(h, ids, 6, "data.partition", &g, &n, &err) == MPSL_OK);
    CHECK(n == 1 && strcmp(g[0].label, "data.partition={alpha=0.5, scheme=dirichlet}") == 0);
    groups_free(g, n);
}

static void test_refusals(sqlite3 *h)
{
    const int64_t ids[] = {1, 3};
    run_group *g = NULL;
    size_t n = 0;
    mpsl_error err = {{0}};
    CHECK(groups_make(h, ids, 2, "stratgy", &g, &n, &err) == MPSL_ERR_INVALID);
    CHECK(g == NULL && n == 0);
    CHECK_CONTAINS(err.msg, "unknown key 'stratgy'");
    CHECK_CONTAINS(err.msg, "did you mean 'strategy'");
    CHECK_CONTAINS(err.msg, "run_params (run_id, name, seed");
    CHECK_CONTAINS(err.msg, "dotted config key");
    CHECK(groups_make(h, ids, 2, "data.partition.alfa", &g, &n, &err) == MPSL_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "no selected run's config has the key 'data.partition.alfa'");
    CHECK_CONTAINS(err.msg, "did you mean 'data.partition.alpha'");
    CHECK(groups_make(h, ids, 2, "strategy,,lr", &g, &n, &err) == MPSL_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "empty key");
    const int64_t missing[] = {1, 99};
    CHECK(groups_make(h, missing, 2, NULL, &g, &n, &err) == MPSL_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "no run 99");
    CHECK(groups_make(h, ids, 0, NULL, &g, &n, &err) == MPSL_OK && n == 0);
    groups_free(g, n);
}

static void test_flatten(void)
{
    config_pair *p = NULL;
    size_t n = 0;
    mpsl_error err = {{0}};
    CHECK(config_flatten("{\"a\":{\"b\":0.1,\"c\":[1,{\"d\":\"x y\"}],\"e\":{},\"f\":[]},"
                         "\"g\":true,\"h\":null,\"seed\":18446744073709551615,\"i\":1e-3}",
                         &p, &n, &err) == MPSL_OK);
    CHECK(n == 9);
    const char *want[][2] = {{"a.b", "0.1"}, {"a.c[0]", "1"}, {"a.c[1].d", "x y"}, {"a.e", "{}"},
                             {"a.f", "[]"}, {"g", "true"}, {"h", "null"},
                             {"seed", "1.8446744073709552e+19"}, {"i", "0.001"}};
    for (size_t i = 0; i < n && i < 9; i++) {
        CHECK(strcmp(p[i].key, want[i][0]) == 0);
        CHECK(strcmp(p[i].value, want[i][1]) == 0);
    }
    CHECK(strcmp(config_pairs_get(p, n, "a.c[1].d"), "x y") == 0);
    CHECK(config_pairs_get(p, n, "a.c") == NULL);
    config_pairs_free(p, n);
    CHECK(config_flatten("[1,2]", &p, &n, &err) == MPSL_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "not a JSON object");
    CHECK(config_flatten("{\"a\":", &p, &n, &err) == MPSL_ERR_INVALID && p == NULL);
}

int main(void)
{
    char *dir = rt_tmpdir();
    db = rt_path(dir, "groups.db");
    populate();
    sqlite3 *h = open_db();
    test_default_grouping(h);
    test_group_by(h);
    test_refusals(h);
    test_flatten();
    sqlite3_close(h);
    rt_rmtree(dir);
    free(db);
    free(dir);
    return check_exit();
}
