#!/usr/bin/env bash
# e2e_sweep_results.sh: what a sweep records for research use. Sweep ids and swept values,
# run names that show them, --only / --no-sweep / --name / --quiet / MPSL_DB, the resolved
# config as JSON and the run_params view, per-step metrics (metrics.every_steps) whose run row
# is the clients' sample-weighted mean, per-client test figures consistent with the run's
# test accuracy, an include whose block names another plugin, and `prepare` on a sweep file.
. "$(dirname "$0")/lib.sh"

cat > sweep.yaml <<'YAML'
name: tiny
seed: 1
include: [datasets/fashion_mnist.yaml, models/patch_mlp_tiny.yaml]
data:
  dataset: {train_limit: 1200, test_limit: 400}
  clients: 12
  partition: {scheme: dirichlet, alpha: 0.5, min_per_client: 20}
strategy: {plugin: mpsl}
train: {epochs: 2, batch_size: 48}
metrics: {every_steps: 3}
sweep:
  seed: [1, 2]
  strategy: [{plugin: mpsl}, {plugin: fedprox, mu: 0.1}, {plugin: centralized}]
YAML

# --only picks points by a swept key's value (whole key or its last part); --quiet is quiet.
expect_ok "sweep --only" "$MPSL" run sweep.yaml --db s.db --only strategy=fedprox --quiet
check "--quiet prints nothing on success" test ! -s "$WORK/err"
check "--only strategy=fedprox ran the two fedprox points" \
  test "$(sql s.db "SELECT COUNT(*) FROM runs WHERE method = 'fedprox'") $(sql s.db 'SELECT COUNT(*) FROM runs')" = "2 2"
expect_ok "the whole sweep" "$MPSL" run sweep.yaml --db s.db
check "the finished fedprox points were skipped, the other four ran" \
  test "$(sql s.db 'SELECT COUNT(*) FROM runs')" = 6
check "run names show the swept values" \
  test "$(sql s.db "SELECT name FROM runs WHERE method = 'fedprox' AND seed = 2")" = "tiny/seed=2,strategy=fedprox(mu=0.1)"
check "the points of one invocation share a sweep id, two invocations two ids" \
  test "$(sql s.db 'SELECT COUNT(DISTINCT sweep_id) FROM runs') $(sql s.db "SELECT COUNT(*) FROM runs WHERE sweep_id = (SELECT sweep_id FROM runs WHERE id = 3)")" = "2 4"
check "sweep_point holds the swept keys and values as JSON" \
  test "$(sql s.db "SELECT json_extract(sweep_point, '\$.strategy.mu') || ',' || json_extract(sweep_point, '\$.seed') FROM runs WHERE name = 'tiny/seed=2,strategy=fedprox(mu=0.1)'")" = "0.1,2"
check "config_json answers json_extract with typed values" \
  test "$(sql s.db "SELECT DISTINCT typeof(json_extract(config_json, '\$.train.optimizer.lr')) || json_extract(config_json, '\$.data.clients') FROM runs")" = "real12"
check "run_params exposes hyperparameters as columns" \
  test "$(sql s.db "SELECT strategy, mu, clients, partition, alpha, batch_size FROM run_params WHERE strategy = 'fedprox' LIMIT 1")" = "fedprox|0.1|12|dirichlet|0.5|48"
check "run_summary has the seed and sweep id" \
  test "$(sql s.db "SELECT COUNT(*) FROM run_summary WHERE seed IN (1, 2) AND sweep_id IS NOT NULL")" = 6
expect_refusal "--only with a key the sweep does not vary" "'lr' is not a swept key" "seed, strategy" -- \
  "$MPSL" run sweep.yaml --db s.db --only lr=0.1
expect_refusal "--only with a value no point has" "no point of the sweep has strategy=fedavg" "centralized" -- \
  "$MPSL" run sweep.yaml --db s.db --only strategy=fedavg

# --no-sweep runs the file as written; --name names it; MPSL_DB is the database when --db is
# not given (and --db wins over it).
expect_ok "--no-sweep --name with MPSL_DB" env MPSL_DB=env.db "$MPSL" run sweep.yaml --no-sweep --name base -q
check "MPSL_DB chose the database, --name the name, --no-sweep one run" \
  test "$(sql env.db 'SELECT name, method, sweep_id IS NULL FROM runs')" = "base|mpsl|1"
expect_ok "--db over MPSL_DB" env MPSL_DB=env.db "$MPSL" run sweep.yaml --no-sweep --db other.db -q
check "--db wins over MPSL_DB" test "$(sql other.db 'SELECT COUNT(*) FROM runs') $(sql env.db 'SELECT COUNT(*) FROM runs')" = "1 1"

# Per-step metrics: every role's rows, and the run's row the sample-weighted mean of its
# clients' rows of that step (MPSL); centralized records the server's own.
check "every MPSL client recorded steps 3, 6, ... and its last step" \
  test "$(sql s.db "SELECT COUNT(DISTINCT client) FROM step_metrics WHERE run_id = 3 AND client >= 0 AND name = 'train_loss' AND (step % 3 = 0 OR step = (SELECT MAX(step) FROM step_metrics m WHERE m.run_id = 3 AND m.epoch = step_metrics.epoch))")" = 12
check "centralized records its own steps (client -1 only)" \
  test "$(sql s.db "SELECT COUNT(DISTINCT client), MIN(client) FROM step_metrics s JOIN runs r ON r.id = s.run_id WHERE r.method = 'centralized'")" = "1|-1"
/usr/bin/python3 - s.db <<'PY' || fail "step rows: the run's row is the clients' weighted mean"
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
run = db.execute("SELECT id FROM runs WHERE method = 'mpsl' LIMIT 1").fetchone()[0]
rows = db.execute("SELECT epoch, step, client, name, value FROM step_metrics WHERE run_id = ?", (run,)).fetchall()
vals = {(e, s, c, n): v for e, s, c, n, v in rows}
bad = checked = 0
for (e, s, c, n), v in vals.items():
    if c != -1 or n not in ("train_loss", "train_acc"):
        continue
    parts = [(vals[k], vals[(k[0], k[1], k[2], "samples")]) for k in vals
             if k[0] == e and k[1] == s and k[3] == n and k[2] >= 0]
    mean = sum(x * w for x, w in parts) / sum(w for _, w in parts)
    checked += 1
    if abs(mean - v) > 1e-9 * max(1.0, abs(v)):
        bad += 1
        print("step", e, s, n, v, "clients' weighted mean", mean, file=sys.stderr)
if checked == 0:
    bad = 1
sys.exit(1 if bad else 0)
PY
ok

# Per-client test figures: each client's accuracy is the run's per-class accuracy weighted by
# its training class mix. Recover the per-class accuracies from the 12 clients by least
# squares and check they reproduce the run's own test accuracy on the test split's mix.
/usr/bin/python3 - s.db "$MPSL_SOURCE" <<'PY' || fail "per-client test_acc is consistent with test_acc"
import json, sqlite3, sys, gzip, struct
import torch
db = sqlite3.connect(sys.argv[1])
run, = db.execute("SELECT id FROM runs WHERE method = 'fedprox' LIMIT 1").fetchone()
last, = db.execute("SELECT MAX(epoch) FROM epoch_metrics WHERE run_id = ?", (run,)).fetchone()
hist = {k: json.loads(h) for k, h in db.execute("SELECT client, class_histogram FROM client_data WHERE run_id = ?", (run,))}
acc = dict(db.execute("SELECT client, value FROM client_metrics WHERE run_id = ? AND epoch = ? AND name = 'test_acc'", (run, last)))
assert len(acc) == 12, acc
test_acc, = db.execute("SELECT value FROM epoch_metrics WHERE run_id = ? AND epoch = ? AND name = 'test_acc'", (run, last)).fetchone()
H = torch.tensor([[h / sum(hist[k]) for h in hist[k]] for k in sorted(acc)], dtype=torch.float64)
y = torch.tensor([acc[k] for k in sorted(acc)], dtype=torch.float64)
# classes some client holds carry weight; solve H a = y (rank permitting)
a = torch.linalg.lstsq(H, y.unsqueeze(1)).solution.squeeze(1)
resid = (H @ a - y).abs().max().item()
assert resid < 1e-9, f"per-client accuracies are not one set of per-class accuracies: {resid}"
assert ((a > -1e-6) & (a < 1 + 1e-6)).all(), a
# the test split's class counts: the first 400 labels of Fashion-MNIST's test set
path = "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz"
raw = gzip.open(path).read()
labels = torch.tensor(list(raw[8:8 + 400]))
t = torch.bincount(labels, minlength=10).double()
assert torch.linalg.matrix_rank(H) == 10, "the 12 clients' class mixes must determine 10 classes"
est = float((t * a).sum() / t.sum())
assert abs(est - test_acc) < 1e-6, (est, test_acc)
PY
ok

# An included block that names another plugin is replaced, not merged.
cat > base.yaml <<'YAML'
name: base
include: [datasets/fashion_mnist.yaml, models/patch_mlp_tiny.yaml]
data: {dataset: {train_limit: 300, test_limit: 100}, clients: 2}
strategy: {plugin: fedprox, mu: 0.1}
train: {epochs: 1, batch_size: 32}
YAML
printf 'name: child\ninclude: [base.yaml]\nstrategy: {plugin: fedavg}\n' > child.yaml
expect_ok "including a fedprox experiment and naming fedavg" env MPSL_CONFIG_PATH="$WORK" "$MPSL" run child.yaml --db inc.db -q
check "the run is FedAvg with its defaults (no mu)" \
  test "$(sql inc.db "SELECT method, json_extract(config_json, '\$.strategy.mu') IS NULL FROM runs")" = "fedavg|1"

# prepare accepts a sweep file.
expect_ok "prepare on a sweep file" "$MPSL" prepare sweep.yaml
check "prepare went through the sweep's dataset" grep -q "fashion_mnist" "$WORK/out"
finish
