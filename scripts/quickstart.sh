#!/usr/bin/env bash
# quickstart.sh: the README's first command. Installs what is missing, builds, and runs the
# quickstart experiment through the real `mpsl run` path, then shows the run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
[ -f build/build.ninja ] || meson setup build --buildtype=release
ninja -C build
# Four runs (MPSL, FedAvg, FedProx, centralized), then their comparison table.
./build/core/cli/mpsl run experiments/quickstart.yaml --db results.db
