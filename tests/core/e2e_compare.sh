#!/usr/bin/env bash
# e2e_compare.sh: statistics over seeds in `mpsl compare` on real runs: a sweep of three seeds
# by two strategies on a slice of Fashion-MNIST falls into two groups of three, whose mean,
# sample sd and 95% interval agree with the same figures computed here from the database;
# --group-by, --target, --sweep, refusals of an unknown key and metric; `mpsl diff`.
source "$(dirname "$0")/lib.sh"

cat > sweep.yaml <<YAML
include: [$MPSL_SOURCE/experiments/fmnist_fedavg.yaml]
sweep:
  seed: [1, 2, 3]
  strategy: [{plugin: fedavg}, {plugin: centralized}]
YAML
expect_ok "sweep of 3 seeds x 2 strategies" "$MPSL" run sweep.yaml --db r.db \
  --set data.dataset.train_limit=600 --set data.dataset.test_limit=200 --set train.epochs=2
check "six finished runs" [ "$(sql r.db "select count(*) from runs where status='finished'")" = 6 ]

# stats_check JSON METRIC: every group's mean, sd and ci95 of final METRIC (and of bytes up
# per client) against Python's statistics over the runs' last epoch values read from r.db.
stats_check() {
  /usr/bin/python3 - "$1" "$2" <<'PY'
import json, math, sqlite3, statistics, sys
groups = json.load(open(sys.argv[1]))
metric = sys.argv[2]
db = sqlite3.connect("r.db")
# t(0.975, df) in closed form for the df of two and three runs: tan(pi (p - 1/2)) for df 1,
# (2p - 1) / sqrt(2p (1 - p)) for df 2 (12.706205 and 4.302653 in tables)
T975 = {1: math.tan(math.pi * 0.475), 2: 0.95 / math.sqrt(2 * 0.975 * 0.025)}
def close(a, b):  # within 1e-9 relative (exactly, for 0)
    return a is not None and abs(a - b) <= 1e-9 * abs(b)
def final(run):
    return db.execute("SELECT value FROM epoch_metrics WHERE run_id = ? AND name = ?"
                      " ORDER BY epoch DESC LIMIT 1", (run, metric)).fetchone()[0]
def up(run):
    n = db.execute("SELECT n_clients FROM runs WHERE id = ?", (run,)).fetchone()[0]
    b = db.execute("SELECT SUM(bytes) FROM comm WHERE run_id = ? AND direction = 'up'",
                   (run,)).fetchone()[0]
    return None if b is None else b / n
bad = 0
for g in groups:
    for field, values in (("final_" + metric, [final(r) for r in g["runs"]]),
                          ("bytes_up_per_client", [up(r) for r in g["runs"]])):
        values = [v for v in values if v is not None]
        if not values:
            bad += g[field + "_n"] != 0 or g[field + "_mean"] is not None
            continue
        mean, sd = statistics.mean(values), statistics.stdev(values)
        ci = T975[len(values) - 1] * sd / math.sqrt(len(values))
        got = (g[field + "_mean"], g[field + "_sd"], g[field + "_ci95"], g[field + "_n"])
        ok = close(got[0], mean) and close(got[1], sd) and got[3] == len(values) and \
             close(got[2], ci)
        if not ok:
            print(f"{g['group']} {field}: got {got}, expected {(mean, sd, ci, len(values))}",
                  file=sys.stderr)
            bad += 1
sys.exit(1 if bad else 0)
PY
}

# The default grouping: equal configs but for the seed.
expect_ok "compare json" "$MPSL" compare 1 2 3 4 5 6 --db r.db --format json
cp "$WORK/out" groups.json
check "two groups of three" [ "$(/usr/bin/python3 -c 'import json,sys
g = json.load(open("groups.json"))
print(len(g), *[x["n"] for x in g], *[x["runs"] for x in g], *[x["seeds"] for x in g])')" \
  = "2 3 3 [1, 3, 5] [2, 4, 6] [1, 2, 3] [1, 2, 3]" ]
check "groups labelled by strategy" [ "$(/usr/bin/python3 -c 'import json
print(*[x["group"] for x in json.load(open("groups.json"))], sep=";")')" \
  = "strategy.plugin=fedavg;strategy.plugin=centralized" ]
check "mean, sd and 95% interval of test_acc as computed from the database" \
  stats_check groups.json test_acc
expect_ok "compare json, test_loss" "$MPSL" compare 1 2 3 4 5 6 --db r.db --format json \
  --metric test_loss
cp "$WORK/out" loss.json
check "the same for test_loss" stats_check loss.json test_loss

expect_ok "compare table" "$MPSL" compare 1 2 3 4 5 6 --db r.db
check "table has the interval row" grep -q "^final_test_acc 95% CI" "$WORK/out"
check "table shows mean ± sd" grep -q "^final_test_acc  *[0-9.]* ± [0-9.]*  " "$WORK/out"
expect_ok "compare csv" "$MPSL" compare 1 2 3 4 5 6 --db r.db --format csv
check "csv: a header and a row per group" [ "$(wc -l < "$WORK/out")" = 3 ]
check "csv has separate mean, sd, ci95, n" \
  grep -q "final_test_acc_mean,final_test_acc_sd,final_test_acc_ci95,final_test_acc_n" "$WORK/out"

# --sweep last picks the same six runs; --group-by strategy the same two groups.
expect_ok "compare --sweep last" "$MPSL" compare --sweep last --db r.db --format json
check "--sweep last: the same groups" cmp -s "$WORK/out" groups.json
expect_ok "group by strategy" "$MPSL" compare 1 2 3 4 5 6 --db r.db --format json \
  --group-by strategy
check "--group-by strategy: 2 groups of 3" [ "$(/usr/bin/python3 -c 'import json,sys
print(*[(x["group"], x["n"]) for x in json.load(sys.stdin)])' < "$WORK/out")" \
  = "('strategy=fedavg', 3) ('strategy=centralized', 3)" ]
expect_ok "group by a dotted key" "$MPSL" compare 1 2 3 4 5 6 --db r.db --format json \
  --group-by data.partition.alpha
check "one group of six" [ "$(/usr/bin/python3 -c 'import json,sys
print(*[(x["group"], x["n"]) for x in json.load(sys.stdin)])' < "$WORK/out")" \
  = "('data.partition.alpha=0.5', 6)" ]
# runs of one seed only: one column per run, as before, with seed and sweep rows
expect_ok "compare two runs" "$MPSL" compare 1 2 --db r.db
check "per-run columns name the runs" grep -q "^name .*seed=1,strategy=fedavg" "$WORK/out"
check "seed row" grep -q "^seed  *1  *1$" "$WORK/out"
check "sweep row" grep -q "^sweep  *[0-9T]*Z-" "$WORK/out"

expect_refusal "unknown --group-by key" "unknown key 'stratgy'" "did you mean 'strategy'" \
  "run_params" "dotted config key" -- "$MPSL" compare 1 2 --db r.db --group-by stratgy
expect_refusal "absent dotted key" "no selected run's config has the key 'data.partition.alfa'" \
  -- "$MPSL" compare 1 2 --db r.db --group-by data.partition.alfa
expect_refusal "unknown metric" "no selected run recorded a metric 'bogus'" "test_acc" -- \
  "$MPSL" compare 1 2 --db r.db --metric bogus
"$MPSL" compare 1 2 --db r.db --metric bogus >/dev/null 2>&1
check "an unknown metric is a usage error (exit 2)" [ $? = 2 ]

# --target: reached by every run at the first epoch, or by none.
expect_ok "target reached" "$MPSL" compare 1 2 3 4 5 6 --db r.db --format json --target 0
check "every run reaches 0 at epoch 1" [ "$(/usr/bin/python3 -c 'import json,sys
print(*[(x["target_reached"], x["epochs_to_target_mean"], x["epochs_to_target_sd"])
        for x in json.load(sys.stdin)])' < "$WORK/out")" = "(3, 1, 0) (3, 1, 0)" ]
fedavg_up=$(sql r.db "select sum(bytes) * 1.0 / 10 from comm where run_id = 1 and epoch = 0 and direction = 'up'")
fedavg_down=$(sql r.db "select sum(bytes) * 1.0 / 10 from comm where run_id = 1 and epoch = 0 and direction = 'down'")
secs=$(sql r.db "select value from epoch_metrics where run_id = 1 and epoch = 0 and name = 'epoch_seconds'")
expect_ok "target, one run" "$MPSL" compare 1 --db r.db --format json --target 0 --link-mbps 8,80
got=$(/usr/bin/python3 -c 'import json,sys
r = json.load(sys.stdin)[0]
print(r["seconds_to_target"], r["bytes_per_client_to_target"], r["est_comm_seconds_to_target"])' \
  < "$WORK/out")
want=$(awk -v s="$secs" -v u="$fedavg_up" -v d="$fedavg_down" \
  'BEGIN { printf "%.17g %.17g %.17g", s, u + d, u * 8 / 8e6 + d * 8 / 80e6 }')
check "seconds, bytes and link time to target ($got vs $want)" same_numbers "$got" "$want" 1e-9
expect_ok "target not reached" "$MPSL" compare 1 2 3 4 5 6 --db r.db --format json --target 2
check "no run reaches accuracy 2" [ "$(/usr/bin/python3 -c 'import json,sys
print(*[(x["target_reached"], x["epochs_to_target_mean"], x["seconds_to_target_n"])
        for x in json.load(sys.stdin)])' < "$WORK/out")" = "(0, None, 0) (0, None, 0)" ]
expect_ok "target not reached, table" "$MPSL" compare 1 2 --db r.db --target 2
check "table says not reached" grep -q "^epochs_to_target  *not reached  *not reached$" "$WORK/out"

# diff: two seeds of one strategy differ in seed and name only; two strategies in the
# strategy block (and the name).
expect_ok "diff of two seeds" "$MPSL" diff 1 3 --db r.db --format csv
check "only name and seed differ" [ "$(cut -d, -f1 "$WORK/out" | tr '\n' ' ')" = "key name seed " ]
expect_ok "diff of two strategies" "$MPSL" diff 1 2 --db r.db --format json
check "diff of strategies: strategy.plugin, fedavg against centralized" \
  [ "$(/usr/bin/python3 -c 'import json,sys
rows = json.load(sys.stdin)
print(*[(r["run 1"], r["run 2"]) for r in rows if r["key"] == "strategy.plugin"],
      all(r["key"] == "name" or r["key"].startswith("strategy.") for r in rows))' \
  < "$WORK/out")" = "('fedavg', 'centralized') True" ]
expect_ok "diff --all" "$MPSL" diff 1 --all --db r.db
check "--all lists every key" grep -q "^train.epochs  *2$" "$WORK/out"
expect_refusal "diff of one run" "two or more run ids" -- "$MPSL" diff 1 --db r.db
expect_refusal "diff of a missing run" "no run 99" -- "$MPSL" diff 1 99 --db r.db

finish
