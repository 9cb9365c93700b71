#!/bin/sh
# bench/epoch.sh: whole training epochs, not single steps. The quickstart's model
# (configs/models/vit_tiny_av.yaml) on its data (20,000 training and 5,000 test samples of
# av_fashion_mnist, batch 64, Adam), epochs including the data, the optimizer and the
# evaluation:
#   1. bench/export_epoch writes the exact tensors mpsl trains on, in the order mpsl's
#      centralized strategy draws them, and the test split;
#   2. the PyTorch threading setups (SETUPS) are screened on SCREEN_STEPS training steps and
#      the fastest is kept;
#   3. ROUNDS rounds of: mpsl centralized, PyTorch (bench/epoch_torch.py, the same model on
#      the exported tensors in the same batch order), mpsl's MPSL and FedAvg on the same
#      data split among the quickstart's 10 clients (Dirichlet 0.5); EPOCHS epochs each.
# Prints per-epoch seconds (median of the epochs after the first, and the first), the ratio
# PyTorch / mpsl centralized, and MPSL's and FedAvg's epochs against centralized's.
#   bench/epoch.sh [BUILD_DIR]       (default: build-bench, configured --buildtype=release)
# Environment: EPOCHS (3), ROUNDS (1), THREADS (2), SETUPS ("default passive openmp"),
#              SCREEN_STEPS (40), STRATEGIES ("mpsl fedavg").
set -eu
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$SRC/build-bench}
EPOCHS=${EPOCHS:-3}
ROUNDS=${ROUNDS:-1}
THREADS=${THREADS:-2}
SETUPS=${SETUPS:-default passive openmp}
SCREEN_STEPS=${SCREEN_STEPS:-40}
STRATEGIES=${STRATEGIES:-mpsl fedavg}
OMP_LIB=/usr/lib/x86_64-linux-gnu/openblas-openmp
export MPSL_THREADS=$THREADS
if [ ! -f "$BUILD/build.ninja" ]; then
    meson setup "$BUILD" "$SRC" --buildtype=release
fi
ninja -C "$BUILD" >/dev/null
MPSL=$BUILD/core/cli/mpsl
OUT=$(mktemp -d "${TMPDIR:-/tmp}/mpsl-epoch.XXXXXX")
trap 'rm -rf "$OUT"' EXIT
load() { cut -d' ' -f1-3 /proc/loadavg; }
get() { sed -n "s/^RESULT $1 //p" "$2"; }
median() { sort -g | awk '{ v[NR] = $1 } END { print NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo "== machine: $(nproc) CPUs, $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -n 1);" \
     "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}; load average at start: $(load)"
"$BUILD/bench/export_epoch" "$SRC/experiments/quickstart.yaml" "$OUT/data" \
    strategy.plugin=centralized >/dev/null

# run_torch SETUP FILE [epoch_torch.py options]
run_torch() {
    rt_setup=$1 rt_file=$2
    shift 2
    case $rt_setup in
        default) set -- env "$@" ;;
        passive) set -- env OMP_WAIT_POLICY=PASSIVE "$@" ;;
        openmp) set -- env "LD_LIBRARY_PATH=$OMP_LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$@" ;;
        *) echo "unknown setup $rt_setup" >&2; return 1 ;;
    esac
    "$@" >"$rt_file" 2>&1 || { cat "$rt_file"; return 1; }
}

echo "== PyTorch threading setups, $SCREEN_STEPS training steps each (load $(load))"
best_setup="" best_s=""
for setup in $SETUPS; do
    if [ "$setup" = openmp ] && [ ! -e "$OMP_LIB/libopenblas.so.0" ]; then
        echo "   openmp: skipped ($OMP_LIB missing: apt-get install libopenblas0-openmp)"
        continue
    fi
    run_torch "$setup" "$OUT/screen.$setup" /usr/bin/python3 "$SRC/bench/epoch_torch.py" \
        "$OUT/data" --epochs 2 --steps "$SCREEN_STEPS" --threads "$THREADS" --setup "$setup"
    s=$(get train_s "$OUT/screen.$setup")
    printf '   %-10s %8.3f s\n' "$setup" "$s"
    if [ -z "$best_s" ] || awk -v a="$s" -v b="$best_s" 'BEGIN { exit !(a < b) }'; then
        best_setup=$setup best_s=$s
    fi
done
echo "   fastest: $best_setup"

# mpsl_epochs STRATEGY ROUND: one run; prints "later first eval wall" (seconds)
mpsl_epochs() {
    db="$OUT/mpsl.db"
    "$MPSL" run "$SRC/experiments/quickstart.yaml" --no-sweep -q --db "$db" \
        --set "strategy.plugin=$1" --set "train.epochs=$EPOCHS" --name "$1-$2" >/dev/null
    id=$("$MPSL" query --db "$db" --format csv "select max(id) from runs" | tail -n 1)
    q() { "$MPSL" query --db "$db" --format csv "$1" | tail -n +2; }
    # an epoch = its training + its evaluation (every epoch evaluates here)
    q "select e.value + coalesce(v.value, 0) from epoch_metrics e left join epoch_metrics v
         on v.run_id = e.run_id and v.epoch = e.epoch and v.name = 'eval_seconds'
       where e.run_id = $id and e.name = 'epoch_seconds' and e.epoch > 0" | median >"$OUT/later"
    q "select e.value + coalesce(v.value, 0) from epoch_metrics e left join epoch_metrics v
         on v.run_id = e.run_id and v.epoch = e.epoch and v.name = 'eval_seconds'
       where e.run_id = $id and e.name = 'epoch_seconds' and e.epoch = 0" >"$OUT/first"
    q "select value from epoch_metrics where run_id = $id and name = 'eval_seconds'
       and epoch > 0" | median >"$OUT/eval"
    acc=$(q "select value from epoch_metrics where run_id = $id and name = 'test_acc'
             order by epoch desc limit 1")
    wall=$(q "select wall_seconds from runs where id = $id")
    echo "$(cat "$OUT/later") $(cat "$OUT/first") $(cat "$OUT/eval") $wall $acc"
}

printf '%-24s %5s %12s %12s %10s %10s %9s\n' side round "epoch_s" "first_s" "eval_s" "wall_s" \
    test_acc
for round in $(seq 1 "$ROUNDS"); do
    set -- $(mpsl_epochs centralized "$round")
    c_later=$1
    printf '%-24s %5d %12.3f %12.3f %10.3f %10.2f %9.4f\n' "mpsl centralized" "$round" "$@"
    echo "$1" >>"$OUT/c.all"
    run_torch "$best_setup" "$OUT/torch.$round" /usr/bin/python3 "$SRC/bench/epoch_torch.py" \
        "$OUT/data" --epochs "$EPOCHS" --threads "$THREADS" --setup "$best_setup"
    t="$OUT/torch.$round"
    printf '%-24s %5d %12.3f %12.3f %10.3f %10.2f %9.4f\n' "pytorch ($best_setup)" "$round" \
        "$(get epoch_s "$t")" "$(get epoch_s_first "$t")" "$(get eval_s "$t")" \
        "$(get wall_s "$t")" "$(get test_acc "$t")"
    get epoch_s "$t" >>"$OUT/t.all"
    for s in $STRATEGIES; do
        set -- $(mpsl_epochs "$s" "$round")
        printf '%-24s %5d %12.3f %12.3f %10.3f %10.2f %9.4f\n' "mpsl $s" "$round" "$@"
        echo "$1" >>"$OUT/$s.all"
    done
    echo "   (load $(load))"
done
c=$(median <"$OUT/c.all")
t=$(median <"$OUT/t.all")
echo "== per epoch (median over rounds of each run's median epoch after the first):"
awk -v c="$c" -v t="$t" 'BEGIN { printf "   PyTorch / mpsl centralized: %.2fx (%.3f s against %.3f s)\n", t / c, t, c }'
for s in $STRATEGIES; do
    x=$(median <"$OUT/$s.all")
    awk -v c="$c" -v x="$x" -v s="$s" \
        'BEGIN { printf "   mpsl %s / mpsl centralized: %.2fx (%.3f s)\n", s, x / c, x }'
done
echo "== load average at end: $(load)"
