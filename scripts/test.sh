#!/usr/bin/env bash
# Sets up the machine, builds, and runs every test. Usage: scripts/test.sh [preset]
# preset: default (RelWithDebInfo) or asan (ASan+UBSan). Exit status is ctest's.
set -euo pipefail
cd "$(dirname "$0")/.."
preset="${1:-default}"

scripts/setup.sh --tests
cmake --preset "$preset"
cmake --build --preset "$preset"
ctest --preset "$preset"
