#!/usr/bin/env bash
# experiments/privacy/run.sh: what the server learns about the clients' labels, and what the
# defences cost (docs/privacy.md; the table in docs/results.md). On the quickstart's data,
# model and split (privacy.yaml) with the leakage audit on:
#   MPSL (head on the server) and U-shaped MPSL (head_on_client) without a defence, with
#   Gaussian noise on the returned gradients (defence_noise 1 and 4) and with Li et al.'s
#   max-norm heuristic; FedAvg without a defence; seeds 1 and 2.
# Reduced to fit well within 15 minutes on two cores (4 to 10 minutes here): ONE epoch (round)
# per run, not the quickstart's five, so accuracies are early-training figures; the attacks'
# figures are those of the same epoch. Writes privacy.db in the current directory and prints the table.
#   bash experiments/privacy/run.sh            (MPSL=path/to/mpsl to choose the binary)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
MPSL=${MPSL:-$here/../../build/core/cli/mpsl}
db=${DB:-privacy.db}
run() { nice -n 19 "$MPSL" run "$here/privacy.yaml" --db "$db" --quiet --set train.epochs=1 "$@"; }

for seed in 1 2; do
  for layout in false true; do
    run --set seed=$seed --set strategy.head_on_client=$layout
    for noise in 1 4; do
      run --set seed=$seed --set strategy.head_on_client=$layout --set strategy.defence=gaussian \
        --set strategy.defence_noise=$noise
    done
    run --set seed=$seed --set strategy.head_on_client=$layout --set strategy.defence=max_norm
  done
  run --set seed=$seed --set "strategy={plugin: fedavg}"
done

sqlite3 -header -column "$db" <<'SQL'
with r as (
  select id, method,
         case when method = 'mpsl' and json_extract(config_json, '$.strategy.head_on_client')
              then 'U-shaped MPSL' when method = 'mpsl' then 'MPSL' else method end as layout,
         coalesce(json_extract(config_json, '$.strategy.defence'), 'none') as defence,
         case when coalesce(json_extract(config_json, '$.strategy.defence'), 'none') = 'none'
              then '' else json_extract(config_json, '$.strategy.defence_noise') end as knob
  from runs where status = 'finished'),
m as (select run_id, name, value from epoch_metrics where epoch = 0),
f as (
  select r.layout, r.defence, r.knob, count(*) as seeds,
    avg((select value from m where run_id = r.id and name = 'test_acc')) as test_acc,
    avg((select value from m where run_id = r.id and name = 'audit_sign_acc')) as sign_acc,
    avg((select value from m where run_id = r.id and name like 'audit_direction_auc_%')) as dir_auc,
    avg((select value from m where run_id = r.id and name like 'audit_norm_auc_%')) as norm_auc,
    avg((select value from m where run_id = r.id and name in ('audit_cluster_acc_logit_grads', 'audit_cluster_acc_feature_grads'))) as clu_grads,
    avg((select value from m where run_id = r.id and name = 'audit_cluster_acc_activations')) as clu_act,
    avg((select value from m where run_id = r.id and name = 'audit_hist_error')) as hist_err,
    avg((select value from m where run_id = r.id and name = 'audit_hist_error_uniform')) as hist_unif,
    avg((select value from m where run_id = r.id and name = 'audit_majority_acc')) as majority,
    avg((select sum(bytes) from comm where run_id = r.id) / 10.0 / 1e6) as mb_per_client
  from r group by r.layout, r.defence, r.knob)
select layout, defence, knob, seeds, round(test_acc, 3) as test_acc, round(sign_acc, 3) as sign_acc,
       round(dir_auc, 3) as dir_auc, round(norm_auc, 3) as norm_auc, round(clu_grads, 3) as clu_grads,
       round(clu_act, 3) as clu_act, round(hist_err, 3) as hist_err, round(hist_unif, 3) as hist_unif,
       round(majority, 3) as majority, round(mb_per_client, 2) as mb_per_client
from f order by layout, defence, knob;
SQL
