#!/usr/bin/env bash
# The paper reproduction of docs/results.md, from the working directory it is started in
# (its paper.db and pretrained/ land there):
#   bash experiments/paper/run.sh            train (stages 1 and 2), then print the tables
#   bash experiments/paper/run.sh train      stage 1 (pretraining) and stage 2 (84 runs)
#   bash experiments/paper/run.sh tables     the tables from paper.db and from `mpsl estimate`
# MPSL names the binary (default: mpsl on PATH, else ./build/core/cli/mpsl); JOBS (default 2)
# how many runs go at once, each on MPSL_THREADS (default 1) threads. A run that already
# finished in paper.db is skipped, so the script can be started again after an interruption.
# About 70 minutes on 2 cores (docs/results.md says how long each part took).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
mpsl="${MPSL:-$(command -v mpsl || echo "$root/build/core/cli/mpsl")}"
jobs="${JOBS:-2}"
export MPSL_THREADS="${MPSL_THREADS:-1}"
what="${1:-all}"

elapsed() { echo "$(($(date +%s) - $1)) s"; }

train() {
    local t0
    t0=$(date +%s)
    if [ ! -f pretrained/vit_fmnist_images.safetensors ]; then
        MPSL_THREADS= "$mpsl" run "$here/pretrain_images.yaml" --quiet
    fi
    echo "stage 1 (pretraining): $(elapsed "$t0")"
    t0=$(date +%s)
    "$mpsl" run "$here/finetune_av.yaml" --jobs "$jobs" --quiet > /dev/null
    echo "stage 2 (MPSL, FedAvg, FedProx: 72 runs): $(elapsed "$t0")"
    t0=$(date +%s)
    "$mpsl" run "$here/finetune_av_centralized.yaml" --jobs "$jobs" --quiet > /dev/null
    echo "stage 2 (centralized: 6 runs): $(elapsed "$t0")"
}

# The last sweep of each experiment name in paper.db.
sweep_of() {
    "$mpsl" query --db paper.db --format csv \
        "select sweep_id from runs where name like '$1/%' and status = 'finished'
         order by id desc limit 1" | tail -n 1
}

# Markdown rows from SQL over run_summary and run_params of the sweeps of stage 2: `cell X`
# is X's mean ± sample standard deviation over the seeds of a group.
query() { "$mpsl" query --db paper.db --format csv "$1" | tail -n +2 | tr -d '"'; } # one column
runs_of() {
    echo "select s.method, s.n_clients as k, p.alpha, p.fusion, s.final_test_acc as acc,
                 s.wall_seconds as t, (s.bytes_up_per_client + s.bytes_down_per_client) / s.epochs
                 as bytes, s.client_flops_per_client / s.epochs as cflops,
                 s.server_flops / s.epochs as sflops
          from run_summary s join run_params p on p.run_id = s.id
          where s.sweep_id in ('$1', '$2') and s.status = 'finished'"
}
cell() { echo "printf('%.3f ± %.3f', avg($1), sqrt((sum($1 * $1) - count(*) * avg($1) * avg($1))
               / max(count(*) - 1, 1)))"; }

tables() {
    local ft ct
    ft=$(sweep_of paper_finetune_av)
    ct=$(sweep_of paper_finetune_av_centralized)
    echo "Accuracy: test accuracy after the last epoch, mean ± std over seeds (n runs each)"
    echo
    echo "| clients | split | fusion | MPSL | FedAvg | FedProx | n |"
    echo "|---|---|---|---|---|---|---|"
    query "with r as ($(runs_of "$ft" "$ct")), g as (
             select k, alpha, fusion, method, $(cell acc) as c, count(*) as n from r
             where method != 'centralized' group by k, alpha, fusion, method)
           select '| ' || k || ' | ' || (case when alpha > 1000 then 'IID' else 'Dir(0.5)' end)
                  || ' | ' || fusion
                  || ' | ' || coalesce(max(case when method = 'mpsl' then c end), '-')
                  || ' | ' || coalesce(max(case when method = 'fedavg' then c end), '-')
                  || ' | ' || coalesce(max(case when method = 'fedprox' then c end), '-')
                  || ' | ' || min(n) || ' |' as row
           from g group by k, alpha, fusion order by k, alpha desc, fusion"
    echo
    echo "| centralized (upper reference) | fusion | test accuracy | n |"
    echo "|---|---|---|---|"
    query "with r as ($(runs_of "$ft" "$ct"))
           select '| all data | ' || fusion || ' | ' || $(cell acc) || ' | ' || count(*) || ' |'
                  as row
           from r where method = 'centralized' group by fusion order by fusion"
    echo
    echo "Cost per client per epoch (recorded; mean over seeds and fusions: FedAvg's FLOPs differ by fusion)"
    echo
    echo "| clients | split | method | bytes/client/epoch | client GFLOP/epoch | FedAvg/MPSL client FLOPs | wall s/run |"
    echo "|---|---|---|---|---|---|---|"
    query "with r as ($(runs_of "$ft" "$ct")), g as (
             select k, alpha, method, avg(bytes) as b, avg(cflops) as f, avg(t) as t from r
             where method != 'centralized' group by k, alpha, method)
           select '| ' || g.k || ' | ' || (case when g.alpha > 1000 then 'IID' else 'Dir(0.5)' end)
                  || ' | ' || g.method || ' | ' || printf('%.2f MB', g.b / 1e6) || ' | '
                  || printf('%.3f', g.f / 1e9) || ' | ' || printf('%.1fx', g.f / m.f) || ' | '
                  || printf('%.0f', g.t) || ' |' as row
           from g join g as m on m.k = g.k and m.alpha = g.alpha and m.method = 'mpsl'
           order by g.k, g.alpha desc, g.method"
    echo
    echo "Client FLOPs, ViT-B/16 image-only (experiments/flops_vit_b16.yaml, mpsl estimate)"
    echo
    "$mpsl" estimate "$root/experiments/flops_vit_b16.yaml" --no-sweep --all-strategies \
        --table summary --format csv 2> /dev/null |
        awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
                 { f[$(col["strategy"])] = $(col["client_flops"])
                   fwd[$(col["strategy"])] = $(col["client_forward_flops"]) }
                 END { printf "| pass | MPSL client | FedAvg client | ratio |\n|---|---|---|---|\n"
                       printf "| forward + backward | %.3g | %.3g | %.1fx |\n", f["mpsl"], f["fedavg"], f["fedavg"] / f["mpsl"]
                       printf "| forward only | %.3g | %.3g | %.1fx |\n", fwd["mpsl"], fwd["fedavg"], fwd["fedavg"] / fwd["mpsl"] }'
    echo
    echo "Bytes per client per epoch against the token width (stage 2's model at 100 clients, Dir(0.5), mpsl estimate)"
    echo
    echo "| width | MPSL | FedAvg | FedAvg / MPSL |"
    echo "|---|---|---|---|"
    for dim in 64 128 256 512 768; do
        "$mpsl" estimate "$here/finetune_av.yaml" --no-sweep --all-strategies --table summary \
            --format csv --set data.clients=100 --set "model.tokenizers.image.dim=$dim" \
            --set "model.tokenizers.audio.dim=$dim" 2> /dev/null |
            awk -F, -v dim="$dim" '
                NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
                { b[$(col["strategy"])] = $(col["client_bytes_up"]) + $(col["client_bytes_down"]) }
                END { printf "| %d | %.2f MB | %.2f MB | %.2f |\n", dim, b["mpsl"] / 1e6,
                      b["fedavg"] / 1e6, b["fedavg"] / b["mpsl"] }'
    done
}

case "$what" in
    all) train; tables ;;
    train) train ;;
    tables) tables ;;
    *) echo "usage: run.sh [all|train|tables]" >&2; exit 2 ;;
esac
