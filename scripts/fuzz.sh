#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, AddressSanitizer + UndefinedBehaviorSanitizer) and runs
# each one for a bounded time against its committed seed corpus. Any finding (crash, sanitizer
# report, broken invariant, leak, timeout) fails the script; the reproducer is left in
# build/fuzz/findings/<target>/.
# Usage: scripts/fuzz.sh [seconds per target, default 60] [target ...]
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-60}"
shift || true
targets=("$@")
if ((${#targets[@]} == 0)); then
  targets=(fuzz_parse_event fuzz_webhook_handler fuzz_recording_url fuzz_config)
fi
build="${HDP_FUZZ_BUILD_DIR:-build/fuzz}"
cc="${CC_FUZZ:-$(command -v clang-14 || command -v clang)}"
cxx="${CXX_FUZZ:-$(command -v clang++-14 || command -v clang++)}"
jobs="${HDP_BUILD_JOBS:-2}"

cmake -S . -B "$build" -G Ninja \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER="$cc" -DCMAKE_CXX_COMPILER="$cxx" \
  -DHDP_SANITIZE=ON -DHDP_FUZZ=ON >/dev/null
cmake --build "$build" -j "$jobs" --target "${targets[@]}"

export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:allocator_may_return_null=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
status=0
for target in "${targets[@]}"; do
  seeds="tests/fuzz/corpus/$target"
  work="$build/fuzz-work/$target"      # what this run found interesting (not committed)
  findings="$build/findings/$target"
  mkdir -p "$work" "$findings"
  echo "fuzz: $target for ${seconds}s"
  # -timeout: one input taking longer than 10 s is a hang; -rss_limit_mb: a leak or a blow-up.
  if ! "$build/tests/fuzz/$target" "$work" "$seeds" \
      -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
      -artifact_prefix="$findings/" -print_final_stats=1 >"$build/$target.log" 2>&1; then
    echo "fuzz: $target FAILED; last lines of $build/$target.log:"
    tail -n 40 "$build/$target.log"
    status=1
  else
    grep -E "^stat::number_of_executed_units|^stat::peak_rss_mb|cov:" "$build/$target.log" | tail -n 3 || true
  fi
done
exit "$status"
