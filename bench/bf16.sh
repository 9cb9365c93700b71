#!/bin/sh
# bench/bf16.sh: the ViT training step in bf16 mixed precision against float32, ours and
# PyTorch's, in one run on the same threads (docs/benchmarks.md, "bf16"):
#   ours fp32   bench_vit                        (float32 GEMMs)
#   ours bf16   bench_vit --bf16                 (train.precision: bf16)
#   torch fp32  bench_torch.py                   (Debian's python3-torch, default setup)
#   torch bf16  bench_torch.py --bf16            (torch.autocast('cpu', dtype=bfloat16))
# Needs a CPU with AVX512_BF16 (ours refuses --bf16 elsewhere; PyTorch would fall back to
# slow emulation). ROUNDS rounds alternate the four; each keeps its best median.
#   bench/bf16.sh [BUILD_DIR]        (default: build-bench, configured --buildtype=release)
# Environment: SHAPES ("tiny small"), ROUNDS (2), THREADS (2), PYTHON (/usr/bin/python3).
# OPENBLAS_CORETYPE is passed through unchanged to both sides.
set -eu
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$SRC/build-bench}
SHAPES=${SHAPES:-tiny small}
ROUNDS=${ROUNDS:-2}
THREADS=${THREADS:-2}
PYTHON=${PYTHON:-/usr/bin/python3}

if ! grep -qw avx512_bf16 /proc/cpuinfo; then
    echo "bench/bf16.sh: this CPU lacks AVX512_BF16; nothing to compare" >&2
    exit 3
fi
if [ ! -f "$BUILD/build.ninja" ]; then
    meson setup "$BUILD" "$SRC" --buildtype=release
fi
ninja -C "$BUILD" bench/bench_vit plugins/encoder/vit.so plugins/head/classifier.so >/dev/null
OUT=$(mktemp -d "${TMPDIR:-/tmp}/mpsl-bf16.XXXXXX")
trap 'rm -rf "$OUT"' EXIT
get() { awk -v k="$1" '$1 == "RESULT" && $2 == k { print $3; exit }' "$2"; }
best() { sort -g "$1" | head -n 1; }

echo "== machine: $(nproc) CPUs, $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -n 1)," \
     "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-(unset)}; load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
for shape in $SHAPES; do
    for r in $(seq "$ROUNDS"); do
        "$BUILD/bench/bench_vit" --shape "$shape" --threads "$THREADS" >"$OUT/o" 2>&1
        get ms_median "$OUT/o" >>"$OUT/ours_fp32.$shape"
        "$BUILD/bench/bench_vit" --shape "$shape" --threads "$THREADS" --bf16 >"$OUT/o" 2>&1
        get ms_median "$OUT/o" >>"$OUT/ours_bf16.$shape"
        "$PYTHON" "$SRC/bench/bench_torch.py" --shape "$shape" --threads "$THREADS" >"$OUT/o" 2>&1
        get ms_median "$OUT/o" >>"$OUT/torch_fp32.$shape"
        "$PYTHON" "$SRC/bench/bench_torch.py" --shape "$shape" --threads "$THREADS" --bf16 \
            >"$OUT/o" 2>&1
        get ms_median "$OUT/o" >>"$OUT/torch_bf16.$shape"
    done
done
echo "== load average at end: $(cut -d' ' -f1-3 /proc/loadavg); best median step of $ROUNDS round(s), ms"
printf "%-6s %10s %10s %10s %10s %14s %16s\n" shape ours_fp32 ours_bf16 torch_fp32 torch_bf16 \
    "ours bf16/fp32" "torch_bf16/ours"
for shape in $SHAPES; do
    of=$(best "$OUT/ours_fp32.$shape") ob=$(best "$OUT/ours_bf16.$shape")
    tf=$(best "$OUT/torch_fp32.$shape") tb=$(best "$OUT/torch_bf16.$shape")
    printf "%-6s %10.1f %10.1f %10.1f %10.1f %13.2fx %15.2fx\n" "$shape" "$of" "$ob" "$tf" "$tb" \
        "$(awk -v a="$of" -v b="$ob" 'BEGIN { print a / b }')" \
        "$(awk -v a="$tb" -v b="$ob" 'BEGIN { print a / b }')"
done
