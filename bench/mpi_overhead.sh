#!/bin/sh
# bench/mpi_overhead.sh: what the MPI transport costs on one machine. One point of the
# quickstart (experiments/quickstart.yaml: 20 000 audio-visual Fashion-MNIST samples, 10
# clients, Dirichlet 0.5, the small ViT, batch 64) runs for MPSL and FedAvg in one process
# and under `mpirun --oversubscribe -n 3` and `-n 11` (11: one client per rank), and the
# training time of each epoch (epoch_seconds: without evaluation and data loading) is put
# side by side, as a ratio to the in-process run measured in the same session. The extra
# time is also given per message and per megabyte that crossed, with each kind's count and
# size, from the run's own byte counters. See docs/benchmarks.md.
#
#   bench/mpi_overhead.sh [BUILD_DIR]   (default: build-bench, configured --buildtype=release)
# Environment: EPOCHS=2 (the best epoch of each run counts), RANKS="3 11",
#   STRATEGIES="mpsl fedavg", ROUNDS=1 (repeat each configuration, keep the best epoch).
set -eu

SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$SRC/build-bench}
EPOCHS=${EPOCHS:-2}
RANKS=${RANKS:-3 11}
STRATEGIES=${STRATEGIES:-mpsl fedavg}
ROUNDS=${ROUNDS:-1}

if [ ! -f "$BUILD/build.ninja" ]; then
    meson setup "$BUILD" "$SRC" --buildtype=release
fi
ninja -C "$BUILD" >/dev/null
command -v mpirun >/dev/null || { echo "mpirun not found (apt install openmpi-bin)"; exit 1; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_btl=self,vader OMPI_MCA_btl_vader_single_copy_mechanism=none

OUT=$(mktemp -d "${TMPDIR:-/tmp}/mpsl-mpi-bench.XXXXXX")
trap 'rm -rf "$OUT"' EXIT
# The quickstart without its sweep: one strategy at a time.
sed '/^sweep:/,$d' "$SRC/experiments/quickstart.yaml" > "$SRC/experiments/.mpi_bench_point.yaml"
POINT=$SRC/experiments/.mpi_bench_point.yaml
trap 'rm -rf "$OUT" "$POINT"' EXIT
DB=$OUT/bench.db
MPSL=$BUILD/core/cli/mpsl
load() { cut -d' ' -f1-3 /proc/loadavg; }
sql() { sqlite3 -batch -noheader "$DB" "$1"; }

echo "== machine: $(nproc) CPUs, $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -n 1)," \
     "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-(unset)}; $(mpirun --version | head -n 1)"
echo "== load average at start: $(load)"
# one run: LABEL RANKS(0 = one process) STRATEGY -> its run id
one() {
    if [ "$2" = 0 ]; then
        "$MPSL" run "$POINT" --db "$DB" --quiet --set strategy.plugin="$3" \
            --set train.epochs="$EPOCHS" --set train.eval_every=1000 >"$OUT/log" 2>&1
    else
        mpirun --oversubscribe --bind-to none -n "$2" "$MPSL" run "$POINT" --db "$DB" --quiet \
            --set strategy.plugin="$3" --set train.epochs="$EPOCHS" \
            --set train.eval_every=1000 >"$OUT/log" 2>&1
    fi || { cat "$OUT/log"; exit 1; }
    sql "select max(id) from runs"
}
best_epoch() { sql "select min(value) from epoch_metrics where run_id in ($1) and name='epoch_seconds'"; }

printf '\n%-8s %-10s %12s %8s %12s %14s %14s  load\n' strategy transport "epoch s" ratio \
    "messages" "extra ms/msg" "extra ms/MB"
for s in $STRATEGIES; do
    ids=""
    for r in $(seq "$ROUNDS"); do ids="$ids${ids:+,}$(one local 0 "$s")"; done
    base=$(best_epoch "$ids")
    printf '%-8s %-10s %12.3f %8s %12s %14s %14s  %s\n' "$s" "1 process" "$base" 1.00 - - - "$(load)"
    first=${ids%%,*}
    for n in $RANKS; do
        mids=""
        for r in $(seq "$ROUNDS"); do mids="$mids${mids:+,}$(one mpi "$n" "$s")"; done
        t=$(best_epoch "$mids")
        m1=${mids%%,*}
        msgs=$(sql "select sum(messages) from comm where run_id=$m1 and epoch=0")
        mb=$(sql "select sum(bytes) / 1e6 from comm where run_id=$m1 and epoch=0")
        awk -v s="$s" -v n="$n" -v t="$t" -v b="$base" -v m="$msgs" -v mb="$mb" -v l="$(load)" \
            'BEGIN { printf "%-8s %-10s %12.3f %8.2f %12d %14.4f %14.3f  %s\n", s, "mpi -n " n, t, t / b, m, 1000 * (t - b) / m, 1000 * (t - b) / mb, l }'
    done
    echo "   per epoch and kind (one process, epoch 0): kind, direction, messages, bytes per message"
    sql "select '     ' || kind || ' ' || direction || ' ' || sum(messages) || ' ' || cast(sum(bytes) / sum(messages) as int) from comm where run_id=$first and epoch=0 group by kind, direction order by kind, direction"
done
echo "== load average at end: $(load)"
