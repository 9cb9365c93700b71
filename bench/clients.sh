#!/bin/sh
# bench/clients.sh: how MPSL and FedAvg scale with the number of clients K on the same data:
# the quickstart's model and data (10,000 training samples, 1,000 test), IID, total batch 500,
# one epoch, K = 10, 100, 1000 (KS), one process. Prints wall time, the epoch's training time,
# peak resident memory and the memory per additional client against the first K.
#   bench/clients.sh [BUILD_DIR]       (default: build-bench, configured --buildtype=release)
# Environment: KS ("10 100 1000"), STRATEGIES ("mpsl fedavg"), THREADS (2), CLIENT_BATCH.
# With CLIENT_BATCH=b each client's batch is b at every K (MPSL's strategy.client_batch,
# FedAvg's strategy.batch_size) instead of ceil(500 / K): the protocol's work (samples, client
# optimizer updates, local steps) is then the same at every K that divides 10,000 / b evenly,
# so the ratio between two K measures the framework's per-client cost alone.
set -eu
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$SRC/build-bench}
KS=${KS:-10 100 1000}
STRATEGIES=${STRATEGIES:-mpsl fedavg}
CLIENT_BATCH=${CLIENT_BATCH:-}
export MPSL_THREADS=${THREADS:-2}
if [ ! -f "$BUILD/build.ninja" ]; then
    meson setup "$BUILD" "$SRC" --buildtype=release
fi
ninja -C "$BUILD" >/dev/null
OUT=$(mktemp -d "${TMPDIR:-/tmp}/mpsl-clients.XXXXXX")
trap 'rm -rf "$OUT"' EXIT
echo "== machine: $(nproc) CPUs, $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -n 1);" \
     "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
if [ -n "$CLIENT_BATCH" ]; then
    echo "== per-client batch: $CLIENT_BATCH at every K"
else
    echo "== per-client batch: ceil(500 / K)"
fi
printf "%-8s %6s %10s %12s %14s %18s\n" strategy K wall_s epoch_s peak_MB "MB/extra client"
for s in $STRATEGIES; do
    base_k= base_mb=
    fixed=
    if [ -n "$CLIENT_BATCH" ]; then
        case $s in
            mpsl) fixed="strategy.client_batch=$CLIENT_BATCH" ;;
            *) fixed="strategy.batch_size=$CLIENT_BATCH" ;;
        esac
    fi
    for k in $KS; do
        "$BUILD/core/cli/mpsl" run "$SRC/experiments/quickstart.yaml" --no-sweep -q \
            --db "$OUT/c.db" --set "strategy.plugin=$s" --set "data.clients=$k" \
            --set 'data.partition={scheme: iid}' --set data.dataset.train_limit=10000 \
            --set data.dataset.test_limit=1000 --set train.batch_size=500 \
            --set train.epochs=1 ${fixed:+--set "$fixed"} >/dev/null 2>"$OUT/err" || { cat "$OUT/err" >&2; exit 1; }
        row=$("$BUILD/core/cli/mpsl" query --db "$OUT/c.db" --format csv \
            "select wall_seconds, (select value from epoch_metrics e where e.run_id = r.id
                    and e.name = 'epoch_seconds'), peak_rss_bytes / 1e6
             from run_summary r order by id desc limit 1" | tail -n 1)
        wall=${row%%,*} rest=${row#*,} epoch=${rest%%,*} mb=${rest#*,}
        if [ -z "$base_k" ]; then
            base_k=$k base_mb=$mb per=-
        else
            per=$(awk -v a="$mb" -v b="$base_mb" -v k="$k" -v k0="$base_k" \
                'BEGIN { printf "%.3f", (a - b) / (k - k0) }')
        fi
        printf "%-8s %6d %10.1f %12.1f %14.0f %18s\n" "$s" "$k" "$wall" "$epoch" "$mb" "$per"
    done
done
echo "== load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
