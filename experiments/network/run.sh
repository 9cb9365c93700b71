#!/usr/bin/env bash
# MPSL vs FedAvg vs FedProx with client dropout under two link models (network.yaml), from
# the working directory it is started in (its network.db lands there):
#   bash experiments/network/run.sh           run the 18 points, then print the tables
#   bash experiments/network/run.sh train     the runs only
#   bash experiments/network/run.sh tables    the tables from network.db
# MPSL names the binary (default: mpsl on PATH, else ./build/core/cli/mpsl); JOBS (default 2)
# how many runs go at once, each on MPSL_THREADS (default 1) threads; TARGET (default 0.35)
# the test accuracy whose time to reach is tabled. Runs that already finished are skipped.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
mpsl="${MPSL:-$(command -v mpsl || echo "$root/build/core/cli/mpsl")}"
jobs="${JOBS:-2}"
target="${TARGET:-0.35}"
export MPSL_THREADS="${MPSL_THREADS:-1}"
what="${1:-all}"

train() {
    local t0
    t0=$(date +%s)
    nice -n 19 "$mpsl" run "$here/network.yaml" --jobs "$jobs" --quiet > /dev/null
    echo "18 runs: $(($(date +%s) - t0)) s"
}

q() { "$mpsl" query --db network.db --format csv "$1" | tail -n +2 | tr -d '"'; }

tables() {
    # per run: the link model, strategy, dropout; final test accuracy; measured and simulated
    # seconds for the whole run; bytes per client; epochs and simulated seconds to the target
    echo "| link | strategy | dropout | final test_acc | measured s | simulated s | MB per client | missed (share of client slots) | epochs to $target | simulated s to $target |"
    echo "|---|---|---|---|---|---|---|---|---|---|"
    q "with r as (
         select s.id, case when json_extract(r.sweep_point, '\$.network.uplink_mbps') = 40
                      then 'broadband' else 'mobile' end as link,
                s.method, json_extract(r.sweep_point, '\$.\"strategy.dropout\"') as dropout,
                s.final_test_acc as acc, s.wall_seconds as wall,
                (s.bytes_up_per_client + s.bytes_down_per_client) / 1e6 as mb
         from run_summary s join runs r on r.id = s.id
         where r.name like 'network/%' and r.status = 'finished'),
       t as (select e.run_id, min(e.epoch) as first from epoch_metrics e
             where e.name = 'test_acc' and e.value >= $target group by e.run_id),
       m as (select run_id, sum(case when name = 'missed_dropout' then value end) as missed,
                    sum(value) as slots from client_metrics
             where name in ('participated', 'missed_dropout', 'missed_too_few')
             group by run_id)
       select r.link as link, r.method as method, r.dropout as dropout,
              printf('%.3f', r.acc) as acc, printf('%.0f', r.wall) as wall,
              printf('%.0f', (select sum(value) from epoch_metrics where run_id = r.id
                              and name = 'sim_epoch_seconds')) as sim,
              printf('%.2f', r.mb) as mb,
              printf('%.3f', coalesce(m.missed / nullif(m.slots, 0), 0)) as missed,
              coalesce(t.first + 1, 'not reached') as epochs,
              case when t.first is null then '-' else
                printf('%.0f', (select sum(value) from epoch_metrics where run_id = r.id
                                and name = 'sim_epoch_seconds' and epoch <= t.first)) end
                as sim_to_target
       from r left join t on t.run_id = r.id left join m on m.run_id = r.id
       order by r.link, r.method, r.dropout" | sed 's/,/ | /g; s/^/| /; s/$/ |/'
}

case "$what" in
    train) train ;;
    tables) tables ;;
    all) train; tables ;;
    *) echo "usage: run.sh [train|tables|all]" >&2; exit 2 ;;
esac
