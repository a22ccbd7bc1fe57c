#!/usr/bin/env bash
# The README's run command: installs what is missing, builds, and tells the
# whole story (scripts/story.sh): train on 4 ranks until a SIGTERM preempts
# the job (it saves and exits 0), resume on 4 ranks from that step, kill the
# job hard in the middle of training, resume on 2 ranks, then on 3 with a
# different mesh saving asynchronously, reshard the last checkpoint offline
# to 1 rank and inspect it, and compare the loss curve with an uninterrupted
# run.
#
#   scripts/run.sh [WORK_DIR]     (default: /tmp/meshckpt_story)
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
BUILD_DIR=${BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD_DIR" -j"$(nproc)" --target train meshckpt_cli
exec bash scripts/story.sh "$BUILD_DIR" "${1:-/tmp/meshckpt_story}"
