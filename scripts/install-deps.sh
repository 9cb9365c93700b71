#!/usr/bin/env bash
# install-deps.sh: install what mpsl needs from Debian 12's archive, only what is missing.
# Idempotent; run as root (or with sudo available). MPSL_WITH_TESTS=1 adds what only the test
# suite and benchmarks use: PyTorch (reference tests), ffmpeg (test clips), chromium (report
# rendering). scripts/test.sh sets it; the quickstart does not need them.
set -euo pipefail

packages=(
  build-essential meson ninja-build pkg-config git
  libopenblas-dev libyaml-dev libsqlite3-dev libcurl4-openssl-dev zlib1g-dev libjansson-dev
  libarchive-dev libssl-dev python3
  dataset-fashion-mnist sqlite3
  libespeak-ng-dev espeak-ng-data libfftw3-dev
  # mpsl convert: image decoding (JPEG, PNG) and resizing (FFmpeg's libswscale)
  libjpeg62-turbo-dev libpng-dev libswscale-dev libavutil-dev
  # mpsl convert meld|ucf101|kinetics_sounds: audio/video decoding (FFmpeg)
  libavformat-dev libavcodec-dev libswresample-dev
  # parties as processes (transport: mpi): Open MPI's library and its mpirun
  libopenmpi-dev openmpi-bin
)
if [ "${MPSL_WITH_TESTS:-${MPSL_WITH_TORCH:-0}}" = 1 ]; then
  packages+=(
    # PyTorch, run as /usr/bin/python3: reference fixtures (tests/torch) and bench/
    python3-torch python3-numpy
    # the ffmpeg command makes the clips of tests/convert_av
    ffmpeg
    # the headless render of `mpsl report` (tests/report/render_chromium.sh)
    chromium
    # the installed man page is rendered and checked for warnings (tests/install)
    groff-base man-db
  )
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages already installed"
  exit 0
fi

sudo_cmd=()
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: run as root or install sudo" >&2; exit 1; }
  sudo_cmd=(sudo)
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
