# Shared by scripts/demo.sh and scripts/demo_nodes.sh (sourced, not run): the options both take,
# the progress lines, the build step and the binaries the demos run.

# Takes one option that both demos have, setting its variable (build, ci, build_dir, scenario,
# time_scale, port, timeout, keep) and `consumed` (how many arguments it took); returns 1 for
# any other. --help runs the caller's usage.
demo_option() {
  consumed=1
  case "$1" in
    --no-build) build=0 ;;
    --ci) ci=1 ;;
    --build-dir) build_dir=${2:?--build-dir needs a directory}; consumed=2 ;;
    --build-dir=*) build_dir=${1#*=} ;;
    --scenario) scenario=${2:?--scenario needs a name}; consumed=2 ;;
    --scenario=*) scenario=${1#*=} ;;
    --time-scale) time_scale=${2:?--time-scale needs a number}; consumed=2 ;;
    --time-scale=*) time_scale=${1#*=} ;;
    --port) port=${2:?--port needs a number}; consumed=2 ;;
    --port=*) port=${1#*=} ;;
    --timeout) timeout=${2:?--timeout needs seconds}; consumed=2 ;;
    --timeout=*) timeout=${1#*=} ;;
    --keep-data) keep=1 ;;
    -h | --help) usage; exit 0 ;;
    *) return 1 ;;
  esac
}

if [[ -t 1 ]]; then
  say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
else
  say() { printf '==> %s\n' "$*"; }
fi

# Installs what is missing (scripts/setup.sh with SETUP_ARGS) and builds into $build_dir (the
# "default" preset unless another directory was named). Needs $root and $build_dir.
demo_build() {  # SETUP_ARGS...
  say "Installing what is missing (scripts/setup.sh${*:+ $*})"
  scripts/setup.sh "$@"
  if [[ -z "$build_dir" || "$(realpath -m "$build_dir")" == "$root/build/default" ]]; then
    say "Configuring and building (cmake --preset default)"
    cmake --preset default
    cmake --build --preset default
    build_dir="$root/build/default"
  else
    say "Configuring and building $build_dir"
    cmake -S "$root" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
    cmake --build "$build_dir" -j2
  fi
}

# Sets host_bin, plugin_so and sim_bin from $build_dir; exits when one is missing, with HINT (how
# to build them) in the message.
demo_binaries() {  # HINT
  build_dir=$(realpath -m "${build_dir:-$root/build/default}")
  host_bin="$build_dir/host_stub/hdp-stub-host"
  plugin_so="$build_dir/plugin/wavoip_recordings.so"
  sim_bin="$build_dir/host_stub/simulator/wavoip-sim"
  local f
  for f in "$host_bin" "$plugin_so" "$sim_bin"; do
    if [[ ! -f "$f" ]]; then
      echo "demo: $f is missing; build first ($1)" >&2
      exit 1
    fi
  done
}
