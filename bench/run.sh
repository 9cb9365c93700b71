#!/bin/sh
# bench/run.sh: the issue-3 benchmark in one run: OpenBLAS's sgemm peak, then for each shape
# the PyTorch step under each threading setup, then ours, and a table comparing ours with
# PyTorch's fastest setup. See docs/benchmarks.md.
#
#   bench/run.sh [BUILD_DIR]            (default: build-bench in the source tree; configured
#                                        --buildtype=release and built here when needed)
# Environment:
#   SHAPES="tiny small"   shapes to run (bench_vit.c --shape)
#   SETUPS="default passive openmp openmp+passive"   PyTorch threading setups to try:
#        default          Debian's default OpenBLAS (pthread build), nothing set
#        passive          OMP_WAIT_POLICY=PASSIVE (torch's OpenMP threads sleep at once
#                         instead of spinning against OpenBLAS's threads)
#        openmp           the OpenMP build of OpenBLAS (libopenblas0-openmp) for the torch
#                         process only, through LD_LIBRARY_PATH; needs the package installed
#                         (it does not change the system's alternatives, nor our side)
#        openmp+passive   both
#   SCREEN_STEPS=3        timed steps (after 1 warm-up) per PyTorch setup when choosing the
#                         fastest one; that setup is then run in full beside ours
#   ROUNDS=1              rounds of (ours, PyTorch's fastest setup), each a full run (2 warm-up
#                         steps, 10 timed for tiny, 20 for small); each side keeps its best
#                         median over the rounds (use 2-3 on a busy machine)
#   THREADS=2             threads for both sides
#   PYTHON=/usr/bin/python3
# OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are passed through unchanged to both sides.
set -eu

SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$SRC/build-bench}
SHAPES=${SHAPES:-tiny small}
SETUPS=${SETUPS:-default passive openmp openmp+passive}
ROUNDS=${ROUNDS:-1}
SCREEN_STEPS=${SCREEN_STEPS:-3}
THREADS=${THREADS:-2}
PYTHON=${PYTHON:-/usr/bin/python3}
OMP_LIB=/usr/lib/x86_64-linux-gnu/openblas-openmp

if [ ! -f "$BUILD/build.ninja" ]; then
    meson setup "$BUILD" "$SRC" --buildtype=release
fi
ninja -C "$BUILD" bench/bench_vit bench/sgemm_peak plugins/encoder/vit.so \
    plugins/head/classifier.so >/dev/null
buildtype=$(sed -n 's/.*"name": "buildtype", "value": "\([a-z]*\)".*/\1/p' \
    "$BUILD/meson-info/intro-buildoptions.json" 2>/dev/null | head -n 1)
[ "$buildtype" = release ] || echo "WARNING: $BUILD is buildtype '${buildtype:-?}', not release"

OUT=$(mktemp -d "${TMPDIR:-/tmp}/mpsl-bench.XXXXXX")
trap 'rm -rf "$OUT"' EXIT
get() { awk -v k="$1" '$1 == "RESULT" && $2 == k { $1 = ""; $2 = ""; sub(/^ +/, ""); print; exit }' "$2"; }
load() { cut -d' ' -f1-3 /proc/loadavg; }

echo "== machine: $(nproc) CPUs, $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -n 1)," \
     "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-(unset)} OPENBLAS_L2_SIZE=${OPENBLAS_L2_SIZE:-(unset)}"
echo "== build: $BUILD ($buildtype); load average at start: $(load)"
echo "== our OpenBLAS (ldd bench_vit): $(ldd "$BUILD/bench/bench_vit" | awk '/libopenblas/ { print $3 }')" \
     "-> $(readlink -f "$(ldd "$BUILD/bench/bench_vit" | awk '/libopenblas/ { print $3 }')")"
TORCH_SO=$("$PYTHON" -c 'import torch, os; print(os.path.join(os.path.dirname(torch.__file__), "lib", "libtorch_cpu.so"))' 2>/dev/null || true)
[ -n "$TORCH_SO" ] && echo "== torch's BLAS (ldd libtorch_cpu.so): $(ldd "$TORCH_SO" | awk '/blas|gomp/ { printf "%s => %s  ", $1, $3 }')"

echo
echo "== OpenBLAS sgemm peak ($THREADS threads)"
"$BUILD/bench/sgemm_peak" "$THREADS" 5 | tee "$OUT/peak" | grep -v '^RESULT'
PEAK=$(get peak_gflops "$OUT/peak")

# run_torch SHAPE SETUP FILE [bench_torch.py options]
run_torch() {
    case $2 in
        default) env_set="" ;;
        passive) env_set="OMP_WAIT_POLICY=PASSIVE" ;;
        openmp) env_set="LD_LIBRARY_PATH=$OMP_LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" ;;
        openmp+passive) env_set="LD_LIBRARY_PATH=$OMP_LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} OMP_WAIT_POLICY=PASSIVE" ;;
        *) echo "unknown setup $2" >&2; return 1 ;;
    esac
    rt_shape=$1 rt_setup=$2 rt_file=$3
    shift 3
    # shellcheck disable=SC2086  # env_set is a list of assignments
    env $env_set "$PYTHON" "$SRC/bench/bench_torch.py" --shape "$rt_shape" --threads "$THREADS" \
        --setup "$rt_setup" "$@" >"$rt_file" 2>&1 || { cat "$rt_file"; return 1; }
}

# keep the smaller of two numbers
minf() { awk -v a="$1" -v b="$2" 'BEGIN { print (b == "" || a + 0 < b + 0) ? a : b }'; }

ROWS=""
for shape in $SHAPES; do
    echo
    echo "== shape $shape: PyTorch threading setups, 1 warm-up + $SCREEN_STEPS steps each (load $(load))"
    best_setup="" best_ms=""
    for setup in $SETUPS; do
        case $setup in openmp*) if [ ! -e "$OMP_LIB/libopenblas.so.0" ]; then
            echo "   $setup: skipped ($OMP_LIB missing: apt-get install libopenblas0-openmp)"
            continue; fi ;; esac
        f="$OUT/torch.$shape.$setup"
        run_torch "$shape" "$setup" "$f" --warmup 1 --steps "$SCREEN_STEPS"
        ms=$(get ms_median "$f")
        printf '   %-16s median %9.2f ms  min %9.2f ms  OpenBLAS %s (%s threads)\n' "$setup" "$ms" \
            "$(get ms_min "$f")" "$(get blas "$f")" "$(get blas_threads "$f")"
        if [ -z "$best_ms" ] || [ "$(minf "$ms" "$best_ms")" = "$ms" ]; then
            best_setup=$setup best_ms=$ms
        fi
    done
    echo "   fastest: $best_setup"
    ours_ms="" torch_ms="" torch_min="" ours_min=""
    r=1
    while [ "$r" -le "$ROUNDS" ]; do
        f="$OUT/ours.$shape.$r"
        "$BUILD/bench/bench_vit" --shape "$shape" --threads "$THREADS" >"$f" 2>&1 || { cat "$f"; exit 1; }
        ms=$(get ms_median "$f")
        if [ -z "$ours_ms" ] || [ "$(minf "$ms" "$ours_ms")" = "$ms" ]; then
            ours_ms=$ms ours=$f
        fi
        ours_min=$(minf "$(get ms_min "$f")" "$ours_min")
        t="$OUT/torch.$shape.round$r"
        run_torch "$shape" "$best_setup" "$t"
        ms=$(get ms_median "$t")
        if [ -z "$torch_ms" ] || [ "$(minf "$ms" "$torch_ms")" = "$ms" ]; then
            torch_ms=$ms torch=$t
        fi
        torch_min=$(minf "$(get ms_min "$t")" "$torch_min")
        echo "   round $r: ours median $(get ms_median "$f") ms (min $(get ms_min "$f")), PyTorch" \
             "($best_setup) median $ms ms (min $(get ms_min "$t")); load $(load)"
        r=$((r + 1))
    done
    torch_mem=$(get mem_grown_mb "$torch")
    echo "== shape $shape: ours (load $(load))"
    grep -v '^RESULT' "$ours" | sed 's/^/   /'
    gf=$(get gflop_counted "$ours")
    ROWS="$ROWS$shape $ours_ms $torch_ms $gf $(get mem_grown_mb "$ours") $(get mem_analytical_mb "$ours") $torch_mem $ours_min $torch_min $best_setup
"
done

echo
echo "== summary ($THREADS threads; medians; load average at end: $(load))"
echo "ratio = PyTorch ms / our ms (our throughput relative to PyTorch's; target >= 1.3);" \
     "GFLOP/s from the FLOPs our kernels count; peak = OpenBLAS sgemm 2048^3 at $THREADS threads = $PEAK GFLOP/s"
printf '%-6s | %9s | %9s | %6s | %9s | %8s | %8s | %7s | %8s | %7s | %9s | %s\n' shape \
    "mpsl ms" "torch ms" ratio "ratio@min" "GFLOP/s" "torch GF" "of peak" "mem MB" "analyt." \
    "mem ratio" "torch setup (torch mem MB)"
printf '%s' "$ROWS" | while read -r shape ms tms gf mem amem tmem omin tmin setup; do
    [ -n "$shape" ] || continue
    awk -v s="$shape" -v ms="$ms" -v tms="$tms" -v gf="$gf" -v peak="$PEAK" -v mem="$mem" \
        -v amem="$amem" -v tmem="$tmem" -v omin="$omin" -v tmin="$tmin" -v setup="$setup" 'BEGIN {
        printf "%-6s | %9.2f | %9.2f | %6.2f | %9.2f | %8.1f | %8.1f | %7.3f | %8.1f | %7.1f | %9.3f | %s (%.1f)\n",
            s, ms, tms, tms / ms, tmin / omin, gf / ms * 1e3, gf / tms * 1e3, gf / ms * 1e3 / peak,
            mem, amem, mem / amem, setup, tmem }'
done
echo "(ms: medians of the timed steps, best over $ROUNDS round(s); ratio@min: the same from each side's fastest step;"
echo " GFLOP/s and torch GF: FLOPs our kernels count per step / median time; of peak: our GFLOP/s / OpenBLAS's 2048^3 sgemm;"
echo " mem: our peak resident growth over the pre-model baseline vs params + grads + AdamW moments + saved activations)"
