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

tables() {
    echo "== Accuracy (test_acc at the last epoch, mean and 95% interval over seeds)"
    "$mpsl" compare --db paper.db --sweep "$(sweep_of paper_finetune_av)" \
        --group-by strategy,clients,alpha,fusion --format csv
    "$mpsl" compare --db paper.db --sweep "$(sweep_of paper_finetune_av_centralized)" \
        --group-by fusion --format csv
    echo "== Client FLOPs per epoch, FedAvg over MPSL, ViT-B/16 image-only (the paper's ~250x)"
    "$mpsl" estimate "$root/experiments/flops_vit_b16.yaml" --all-strategies --table compute \
        --format csv
    echo "== Bytes per client per epoch against the encoder's width"
    for dim in 64 128 256 512 768; do
        echo "-- width $dim"
        "$mpsl" estimate "$here/finetune_av.yaml" --all-strategies --table summary --format csv \
            --set data.clients=100 --set "model.tokenizers.image.dim=$dim" \
            --set "model.tokenizers.audio.dim=$dim" --set model.weights= 2> /dev/null
    done
}

case "$what" in
    all) train; tables ;;
    train) train ;;
    tables) tables ;;
    *) echo "usage: run.sh [all|train|tables]" >&2; exit 2 ;;
esac
