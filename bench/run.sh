#!/usr/bin/env bash
# Benchmarks of the stub host + WaVoIP plugin, on loopback only. Installs what is missing
# (Debian packages), builds a Release tree of its own, runs every benchmark and prints one table.
# Not a test: nothing here fails on a slow figure; the table says which targets were met.
#
#   bench/run.sh            # everything, about 8 minutes on 2 cores (plus the build)
#   BENCH_SECONDS=5 bench/run.sh                     # shorter load phases
#   BENCH_ONLY="ingest parser" bench/run.sh          # some of: ingest loop download latency scale parser cluster
#   BENCH_KEEP=1 bench/run.sh                        # keep the work directory (logs, databases)
#   BENCH_NO_BUILD=1 bench/run.sh                    # use the tree as it is (no install, no build;
#                                                    # the Node peer's npm install still runs)
#   BENCH_NO_PEER=1 bench/run.sh                     # ingest without the Node peer (no npm install)
#   BENCH_PLUGIN_JSON='"downloads":"loop"' bench/run.sh   # the same with more plugin settings
#
# Every figure that depends on the machine is also measured against a reference in the same run
# (a minimal Beast server, curl), because the machine may be busy with other work. The ingest
# section also runs the Node peer (bench/peer-node-fastify, installed with npm into the work
# directory); without npm, or when its install fails, its row says why and its target is not met.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BENCH_BUILD_DIR:-$ROOT/build-bench}
SECONDS_PER_RUN=${BENCH_SECONDS:-10}
ONLY=${BENCH_ONLY:-"ingest loop download latency scale parser cluster"}
CLUSTER_DUE=${BENCH_CLUSTER_DUE:-5000}
JOBS=${BENCH_JOBS:-2}
SCALE_CALLS=${BENCH_SCALE_CALLS:-1000000}
SCALE_DUE=${BENCH_SCALE_DUE:-5000}
SCALE_DUE_IN_MS=${BENCH_SCALE_DUE_IN_MS:-3000}      # from the end of the fill to the polls' due time
SCALE_REF_SECONDS=${BENCH_SCALE_REF_SECONDS:-3}     # wrk on the storage's 404, the drain's reference
PLUGIN_JSON=${BENCH_PLUGIN_JSON:-}                  # more plugin settings for every host, e.g. "downloads":"loop"

log() { printf '[bench] %s\n' "$*" >&2; }
# The password of the agent each benchmark host gets (only on loopback, only for this run).
BENCH_AGENT_PASSWORD=$(head -c 18 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')
want() { [[ " $ONLY " == *" $1 "* ]]; }

# ---------------------------------------------------------------- packages and build

install_missing() {
  "$ROOT/scripts/setup.sh" >&2
  local missing=()
  command -v wrk >/dev/null || missing+=(wrk)
  dpkg-query -W -f='${Status}' libbenchmark-dev 2>/dev/null | grep -q "install ok installed" || missing+=(libbenchmark-dev)
  local sudo=""
  [[ $(id -u) -ne 0 ]] && sudo="sudo"
  if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    $sudo apt-get update -q >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
  fi
  # Node and npm for the Node peer of the ingest section. Not fatal: without them the peer's row
  # says it was skipped.
  if want ingest && [[ -z "${BENCH_NO_PEER:-}" ]] && ! command -v npm >/dev/null; then
    local node_packages=(npm)
    command -v node >/dev/null || node_packages=(nodejs npm)
    log "installing ${node_packages[*]} (for the Node peer)"
    { $sudo apt-get update -q && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q \
        --no-install-recommends "${node_packages[@]}"; } >&2 ||
      log "could not install ${node_packages[*]}: the Node peer row will say it was skipped"
  fi
}

build() {
  HOST_BIN="$BUILD/host_stub/hdp-stub-host"
  # No build tree yet on a fresh clone: find fails, and that is fine here.
  PLUGIN_SO=$(find "$BUILD/plugin" -maxdepth 1 -name '*wavoip_recordings*.so' 2>/dev/null | head -n1 || true)
  [[ -n "${BENCH_NO_BUILD:-}" ]] && return 0
  log "building a Release tree in $BUILD"
  cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DHDP_BUILD_TESTS=OFF -DHDP_BUILD_BENCH=ON >&2
  cmake --build "$BUILD" -j"$JOBS" --target hdp_stub_host wavoip_recordings bench_reference_server \
    bench_storage_server bench_load bench_ready_latency bench_fill_store bench_parser >&2
  HOST_BIN="$BUILD/host_stub/hdp-stub-host"
  PLUGIN_SO=$(find "$BUILD/plugin" -maxdepth 1 -name '*wavoip_recordings*.so' | head -n1)
  [[ -x "$HOST_BIN" && -f "$PLUGIN_SO" ]] || { log "build products not found"; exit 1; }
}

# ---------------------------------------------------------------- processes

WORK=""
PIDS=()
EXTRA_DIRS=()
PG_STOP=()
cleanup() {
  local pid
  ((${#PG_STOP[@]} == 0)) || "${PG_STOP[@]}" >/dev/null 2>&1 || true
  for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for pid in "${EXTRA_DIRS[@]}"; do rm -rf "$pid"; done
  if [[ -n "$WORK" && -z "${BENCH_KEEP:-}" ]]; then rm -rf "$WORK"; fi
  [[ -n "${BENCH_KEEP:-}" && -n "$WORK" ]] && log "work directory kept: $WORK"
  return 0
}
trap cleanup EXIT

wait_port_file() {  # FILE -> port on stdout
  local i
  for ((i = 0; i < 2000; i++)); do
    if [[ -s "$1" ]]; then cat "$1"; return 0; fi
    sleep 0.01
  done
  log "no port file $1"
  return 1
}

stop_pid() {
  local pid=$1 i
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 300; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

now_ms() { date +%s%3N; }
kib_field() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; }  # PID FIELD -> kB

# The stub host with the plugin; sets HOST_PID, HOST_PORT, HOST_LOG. NAME CONFIG_JSON [host args...]
start_host() {
  local name=$1 config=$2
  shift 2
  local dir="${HOST_ROOT:-$WORK}/$name"
  mkdir -p "$dir"
  HOST_LOG="$dir/host.log"
  # The JSON API is for signed-in agents: one agent per host, signed in once it serves.
  mkdir -p "$dir/data"
  printf '%s\n' "$BENCH_AGENT_PASSWORD" | "$HOST_BIN" agent add bench --data-dir "$dir/data" >/dev/null 2>&1 || true  # kept from an earlier start
  HOST_SPAWNED_MS=$(now_ms)
  "$HOST_BIN" --listen 127.0.0.1:0 --port-file "$dir/port" --data-dir "$dir/data" \
    --plugin "$PLUGIN_SO" --plugin-config-json "$config" "$@" 2>"$HOST_LOG" &
  HOST_PID=$!
  PIDS+=("$HOST_PID")
  HOST_PORT=$(wait_port_file "$dir/port")
  local i
  for ((i = 0; i < 2000; i++)); do
    curl -sf "http://127.0.0.1:$HOST_PORT/healthz" >/dev/null && break
    sleep 0.005
  done
  HOST_READY_MS=$(now_ms)
  HOST_COOKIES="$dir/cookies"
  curl -s -o /dev/null -c "$HOST_COOKIES" -H 'Content-Type: application/json' \
    --data-binary "{\"name\":\"bench\",\"password\":\"$BENCH_AGENT_PASSWORD\"}" "http://127.0.0.1:$HOST_PORT/login"
  # "name=value" of the session cookie, for the benchmark tools (Netscape cookie-jar format).
  HOST_COOKIE=$(awk '(/^#HttpOnly_/ || !/^#/) && NF >= 7 { print $6 "=" $7 }' "$HOST_COOKIES" | head -n1)
}

start_storage() {
  rm -f "$WORK/storage.port"
  "$BUILD/bench/bench_storage_server" --port-file "$WORK/storage.port" &
  STORAGE_PID=$!
  PIDS+=("$STORAGE_PID")
  STORAGE_PORT=$(wait_port_file "$WORK/storage.port")
  STORAGE="http://127.0.0.1:$STORAGE_PORT"
}

storage_stat() { curl -s "$STORAGE/__stats" | sed -E "s/.*\"$1\":([0-9]+).*/\1/"; }

post_webhook() {  # BODY -> HTTP status
  curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' --data-binary "$1" \
    "http://127.0.0.1:$HOST_PORT/webhooks/wavoip"
}

# Milliseconds since the epoch of a host log line (text format starts with an ISO time).
log_line_ms() { date -d "$(cut -d' ' -f1 <<<"$1")" +%s%3N; }

# ---------------------------------------------------------------- results
# CPU time each thread of a process has used, threads of one name summed: PID -> "name ns" lines
# (the scheduler's run time from /proc/.../schedstat, in nanoseconds; utime + stime from stat,
# in clock ticks, where the kernel keeps no schedstat).
thread_cpu_ns() {
  local task comm run stat fields tick_ns=$((1000000000 / $(getconf CLK_TCK)))
  for task in /proc/"$1"/task/*; do
    comm=$(cat "$task/comm" 2>/dev/null) || continue
    if ! read -r run _ <"$task/schedstat" 2>/dev/null; then
      stat=$(cat "$task/stat" 2>/dev/null) || continue
      read -ra fields <<<"${stat##*) }"  # from the state on: utime and stime are the 12th and 13th
      run=$(((fields[11] + fields[12]) * tick_ns))
    fi
    printf '%s %s\n' "${comm// /_}" "$run"
  done | awk '{ t[$1] += $2 } END { for (n in t) print n, t[n] }'
}
# Microseconds of CPU per unit of work between two thread_cpu_ns snapshots, busiest thread first:
# BEFORE AFTER UNITS -> "name us" lines, then "total us". Threads that used nothing are left out.
cpu_per_unit() {
  awk -v units="$3" '
    NR == FNR { before[$1] = $2; next }
    { d = $2 - before[$1]; if (d > 0 && units > 0) { us[$1] = d / 1e3 / units; total += us[$1] } }
    END { for (n in us) printf "%s %.1f\n", n, us[n]; if (units > 0) printf "~total %.1f\n", total }' \
    <(printf '%s\n' "$1") <(printf '%s\n' "$2") | sort -k2,2nr | sed 's/^~total/total/'
}
# "name us, name us, ..." of the threads using at least 1 us per unit, from cpu_per_unit.
cpu_threads_cell() { awk '$1 != "total" && $2 >= 1 { printf "%s%s %s", (n++ ? ", " : ""), $1, $2 }' <<<"$1"; }
cpu_total() { awk '$1 == "total" { print $2 }' <<<"$1"; }
# The busiest thread's microseconds per unit (the first line that is not the total).
cpu_busiest() { awk '$1 != "total" { print $2; exit }' <<<"$1"; }
# Units per second one thread could do at most if it had a core to itself: US -> rate.
one_core_rate() { isnum "$1" && awk -v us="$1" 'BEGIN { if (us > 0) printf "%.0f", 1e6 / us }' || echo "-"; }


ROWS=()
row() { ROWS+=("$1|$2|$3|$4|$5|$6"); }  # what | measured | reference | ratio | target | met?
# The sum of every sample of a metric family in a Prometheus text page: TEXT NAME.
metric_sum() { awk -v n="$2" '$1 == n || index($1, n "{") == 1 { s += $NF } END { printf "%.0f", s }' <<<"$1"; }
kv() { sed -nE "s/.*(^| )$2=([^ ]+).*/\2/p" <<<"$1"; }  # LINE KEY -> the value, nothing when absent
median() { (($#)) || { echo 0; return; }; printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
isnum() { [[ $1 =~ ^-?[0-9]+([.][0-9]+)?([eE][-+]?[0-9]+)?$ ]]; }
ratio() { isnum "$1" && isnum "$2" && awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }' || echo "-"; }
# Target checks: a figure that is missing or not a number (not measured) never meets a target.
cmp_met() { isnum "$1" && isnum "$3" && awk -v a="$1" -v b="$3" -v op="$2" \
  'BEGIN { exit !(op == ">=" ? a >= b : op == "<=" ? a <= b : a < b) }' && echo yes || echo NO; }
ge() { cmp_met "$1" ">=" "$2"; }
le() { cmp_met "$1" "<=" "$2"; }
lt() { cmp_met "$1" "<" "$2"; }
mib() { isnum "$1" && echo $(($1 / 1024)); return 0; }  # kB -> MiB, nothing when unknown

# The buckets of a Prometheus histogram, summed over its other labels: TEXT NAME -> "le count"
# lines in ascending order of le, +Inf last.
hist_buckets() {
  awk -v n="$2_bucket" 'index($1, n "{") == 1 && match($0, /le="[^"]*"/) {
      c[substr($0, RSTART + 4, RLENGTH - 5)] += $NF }
    END { for (le in c) print le, c[le] }' <<<"$1" | sort -g
}

# A histogram over one run, from two scrapes of /metrics (it counts since the host started, so the
# run's own observations are the difference): BEFORE AFTER NAME -> "count p99 p99_bound max_bound
# last_bound" in the metric's unit. p99 is interpolated inside its bucket, as Prometheus'
# histogram_quantile does; p99_bound is that bucket's upper bound, and max_bound the upper bound of
# the highest bucket that gained an observation (a histogram keeps no exact maximum); "inf" past
# last_bound, the last finite bound. Prints nothing when the metric is absent, "0" alone when
# nothing was observed.
hist_run() {
  { hist_buckets "$1" "$3" | sed 's/^/before /'
    hist_buckets "$2" "$3" | sed 's/^/after /'; } |
    awk '$1 == "before" { b[$2] = $3; next }
      { le[++n] = $2; d[n] = $3 - b[$2] }
      END {
        if (n == 0) exit
        total = d[n]
        if (total <= 0) { print 0; exit }
        rank = 0.99 * total
        for (i = 1; i <= n && d[i] < rank; i++) {}
        if (le[i] ~ /Inf/) { p99 = "inf"; bound = "inf" }
        else {
          lo = i > 1 ? le[i - 1] : 0; lo_count = i > 1 ? d[i - 1] : 0
          p99 = lo + (le[i] - lo) * (rank - lo_count) / (d[i] - lo_count); bound = le[i]
        }
        for (j = 1; j <= n && d[j] < total; j++) {}
        max = le[j] ~ /Inf/ ? "inf" : le[j]
        last = le[n] ~ /Inf/ ? (n > 1 ? le[n - 1] : 0) : le[n]
        print total, p99, bound, max, last
      }'
}

print_table() {
  local line
  printf '\n| %-58s | %-24s | %-22s | %-6s | %-12s | %-4s |\n' "benchmark" "measured" "reference (same run)" "ratio" "target" "met"
  printf '|%s|%s|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..60})" "$(printf -- '-%.0s' {1..26})" \
    "$(printf -- '-%.0s' {1..24})" "$(printf -- '-%.0s' {1..8})" "$(printf -- '-%.0s' {1..14})" "$(printf -- '-%.0s' {1..6})"
  for line in "${ROWS[@]}"; do
    IFS='|' read -r a b c d e f <<<"$line"
    printf '| %-58s | %-24s | %-22s | %-6s | %-12s | %-4s |\n' "$a" "$b" "$c" "$d" "$e" "$f"
  done
}

# Common plugin settings: dev mode for loopback downloads, polls pointed at 404s and far away.
plugin_config() {  # EXTRA_JSON_MEMBERS
  printf '{"allow_insecure_loopback":true,"base_url":"%s/missing/","poll":{"first_delay_s":3600}%s%s}' \
    "$STORAGE" "${1:+,$1}" "${PLUGIN_JSON:+,$PLUGIN_JSON}"
}

wrk_run() {  # URL CONNECTIONS PREFIX -> the WRK line
  wrk -t2 -c"$2" -d"${SECONDS_PER_RUN}s" --latency -s "$ROOT/bench/webhook.lua" "$1" -- "$3" | grep '^WRK '
}

# "p99 (achieved rate)" of a bench_load line, and whether it met a p99 target in ms.
load_cell() {
  if ! isnum "$(kv "$1" sent)" || ! isnum "$(kv "$1" unsent)"; then
    printf 'no result'
  elif [[ $(kv "$1" unsent) == 0 && $(ge "$(kv "$1" achieved_rps)" 1) == NO ]]; then
    printf 'nothing measured after the warm-up'
  elif [[ $(kv "$1" unsent) == 0 ]]; then
    printf '%s ms (%s/s)' "$(kv "$1" p99_ms)" "$(kv "$1" achieved_rps)"
  else
    printf 'rate not sustained (%s of %s sent)' "$(kv "$1" sent)" "$(($(kv "$1" sent) + $(kv "$1" unsent)))"
  fi
}
load_met() {
  [[ $(kv "$1" unsent) == 0 && $(kv "$1" errors) == 0 && $(ge "$(kv "$1" achieved_rps)" 1) == yes ]] &&
    lt "$(kv "$1" p99_ms)" "$2" || echo NO
}

load_run() {  # PORT RATE CONNECTIONS PREFIX -> the bench_load line
  "$BUILD/bench/bench_load" --port "$1" --rate "$2" --connections "$3" --duration "$SECONDS_PER_RUN" \
    --warmup 1 --id-prefix "$4" || true
}

# ---------------------------------------------------------------- 1. webhook ingest

# The Node peer (bench/peer-node-fastify): what a small Node service does for the same intake,
# installed with npm into the work directory. Sets PEER_DIR, or PEER_SKIP to why it cannot run
# (one line in the table then).
install_peer() {
  PEER_DIR="" PEER_SKIP=""
  if [[ -n "${BENCH_NO_PEER:-}" ]]; then PEER_SKIP="BENCH_NO_PEER is set"; return 0; fi
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    PEER_SKIP="node/npm not available"
    return 0
  fi
  local major
  major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
  if ! isnum "$major" || ((major < 20)); then
    PEER_SKIP="node $(node --version 2>/dev/null) is older than 20 (Fastify 5)"
    return 0
  fi
  local dir="$WORK/peer-node-fastify" src="$ROOT/bench/peer-node-fastify"
  mkdir -p "$dir"
  cp "$src/package.json" "$src/package-lock.json" "$src/server.js" "$dir/"
  # better-sqlite3 is compiled here, against this node: its install would otherwise fetch a
  # prebuilt binary from outside the npm registry, which not every machine reaches. node-gyp
  # takes the headers of the installed node when they are there (else it downloads them).
  local npm_env=(npm_config_build_from_source=true)
  if [[ -z "${npm_config_nodedir:-}" && "$(npm config get nodedir 2>/dev/null)" =~ ^(undefined|null|)$ ]]; then
    local prefix
    prefix=$(cd "$(dirname "$(readlink -f "$(command -v node)")")/.." && pwd)
    [[ -f "$prefix/include/node/node_api.h" ]] && npm_env+=("npm_config_nodedir=$prefix")
  fi
  log "installing the Node peer with npm (compiles better-sqlite3: a few minutes on 2 cores)"
  if ! (cd "$dir" && env "${npm_env[@]}" npm install --no-audit --no-fund) >"$dir/npm.log" 2>&1; then
    tail -n 20 "$dir/npm.log" >&2
    PEER_SKIP="npm install failed"
    return 0
  fi
  # An npm that does not run install scripts leaves better-sqlite3 without its native module.
  if ! (cd "$dir" && node -e 'require("better-sqlite3")') >/dev/null 2>&1 &&
    ! { (cd "$dir" && env "${npm_env[@]}" npm rebuild better-sqlite3) >>"$dir/npm.log" 2>&1 &&
      (cd "$dir" && node -e 'require("better-sqlite3")') >/dev/null 2>&1; }; then
    tail -n 20 "$dir/npm.log" >&2
    PEER_SKIP="better-sqlite3 did not build"
    return 0
  fi
  PEER_DIR=$dir
}

# Starts the peer on a free loopback port, its database in the work directory (on disk, like the
# plugin's). Sets PEER_PID and PEER_PORT, or PEER_SKIP.
start_peer() {
  local dir=$PEER_DIR
  rm -f "$dir/port" "$dir/peer.sqlite"*
  node "$dir/server.js" 0 "$dir/peer.sqlite" "$dir/port" >"$dir/server.log" 2>&1 &
  PEER_PID=$!
  PIDS+=("$PEER_PID")
  local i
  for ((i = 0; i < 600; i++)); do  # node starts in a second or two; more on a busy machine
    [[ -s "$dir/port" ]] && break
    kill -0 "$PEER_PID" 2>/dev/null || break
    sleep 0.1
  done
  if [[ ! -s "$dir/port" ]]; then
    tail -n 20 "$dir/server.log" >&2
    PEER_SKIP="the peer did not start"
    stop_pid "$PEER_PID"
    return 0
  fi
  PEER_PORT=$(cat "$dir/port")
}

# hdp_loop_lag_seconds over one run: BEFORE_METRICS AFTER_METRICS -> sets LAG_CELL and LAG_MET.
# Target: p99 and max under 5 ms, judged on the histogram's bucket bounds (met when both fall in
# buckets no higher than 5 ms), or on an exact maximum when the host exports one
# (hdp_loop_lag_seconds_max) and it rose during the run.
loop_lag_cells() {
  local h total p99 bound max last
  LAG_MET=NO
  h=$(hist_run "$1" "$2" hdp_loop_lag_seconds)
  if [[ -z "$h" ]]; then
    # A histogram shows no bucket before its first observation.
    if grep -q '^# TYPE hdp_loop_lag_seconds ' <<<"$2"; then
      LAG_CELL="no probe ran during the run"
    else
      LAG_CELL="n/a (host has no hdp_loop_lag_seconds)"
    fi
    return 0
  fi
  read -r total p99 bound max last <<<"$h"
  if [[ "$total" == 0 ]]; then
    LAG_CELL="no probe ran during the run"
    return 0
  fi
  local max_cell max_met max_before max_after
  max_before=$(awk '$1 == "hdp_loop_lag_seconds_max" { print $NF }' <<<"$1")
  max_after=$(awk '$1 == "hdp_loop_lag_seconds_max" { print $NF }' <<<"$2")
  if isnum "$max_after" && { ! isnum "$max_before" || [[ $(lt "$max_before" "$max_after") == yes ]]; }; then
    max_cell="max $(to_ms "$max_after" %.2f)"
    max_met=$(lt "$(to_ms "$max_after")" 5)
  else
    max_cell="max <= $(to_ms "$max")"
    [[ "$max" == inf ]] && max_cell="max > $(to_ms "$last")"
    max_met=$(le "$(to_ms "$max")" 5)
  fi
  local p99_cell
  p99_cell="p99 $(to_ms "$p99" %.2f)"
  [[ "$p99" == inf ]] && p99_cell="p99 > $(to_ms "$last")"
  LAG_CELL="$p99_cell / $max_cell ms ($total probes)"
  [[ $(le "$(to_ms "$bound")" 5) == yes && "$max_met" == yes ]] && LAG_MET=yes
  return 0
}
to_ms() { isnum "$1" && awk -v s="$1" -v f="${2:-%g}" 'BEGIN { printf f, s * 1000 }' || echo "$1"; }  # SECONDS [FORMAT]

# What a webhook costs in CPU, measured in the 64-connection runs: machine-independent where the
# rates are not. Every thread of the host is a pipeline stage, so the busiest one bounds the rate
# even with a core for each (a bound, not a measurement). MODE HOST_CPU PEER_CPU; REF_CPU is set.
ingest_cpu_rows() {
  local mode=$1 host_cpu=$2 peer_cpu=$3
  local peer_total="-"
  [[ -n "$peer_cpu" ]] && peer_total=$(cpu_total "$peer_cpu")
  row "1 ingest CPU per webhook, wrk 64 conns ($mode)" "$(cpu_total "$host_cpu") us" \
    "$(cpu_total "$REF_CPU") us; peer $peer_total us" "$(ratio "$(cpu_total "$host_cpu")" "$(cpu_total "$REF_CPU")")" "" ""
  row "1 ingest CPU per webhook by host thread ($mode)" "$(cpu_threads_cell "$host_cpu") us" "" "" "" ""
  local bound
  bound=$(one_core_rate "$(cpu_busiest "$host_cpu")")
  row "1 ingest bound with a core per host thread ($mode)" "$bound req/s (not measured)" \
    "$(one_core_rate "$(cpu_total "$REF_CPU")") req/s (ref, 1 thread)" "$(ratio "$bound" "$(one_core_rate "$(cpu_total "$REF_CPU")")")" "" ""
}

# The same intake with the host's HTTP work (parsing, sockets) on an I/O thread of its own: the
# main loop keeps the dispatch and the plugin's callbacks. On two cores shared with wrk the rate
# moves little; the CPU by thread shows which thread then bounds the design with more cores. Run
# right after the normal phase, on the same state of the disk, so that the two compare. Uses
# bench_ingest's ref_wrk and peer_cpu.
ingest_http_threads_run() {
  start_host "ingest-io" "$(plugin_config '"database_synchronous":"normal"')" --http-threads 1
  local io_before io_wrk
  io_before=$(thread_cpu_ns "$HOST_PID")
  io_wrk=$(wrk_run "http://127.0.0.1:$HOST_PORT/webhooks/wavoip" 64 wio)
  local io_cpu
  io_cpu=$(cpu_per_unit "$io_before" "$(thread_cpu_ns "$HOST_PID")" "$(kv "$io_wrk" requests)")
  log "plugin (normal, --http-threads 1): $io_wrk"
  row "1 ingest rps, wrk 64 conns (normal, --http-threads 1)" "$(kv "$io_wrk" rps) req/s" "$(kv "$ref_wrk" rps) req/s" \
    "$(ratio "$(kv "$io_wrk" rps)" "$(kv "$ref_wrk" rps)")" "" ""
  ingest_cpu_rows "normal, --http-threads 1" "$io_cpu" "$peer_cpu"
  local io_bad
  io_bad=$(($(kv "$io_wrk" bad_status) + $(kv "$io_wrk" socket_errors)))
  ((io_bad == 0)) || row "1 ingest errors (normal, --http-threads 1)" "$io_bad non-2xx/socket" "" "" "0" "NO"
  stop_pid "$HOST_PID"
}

bench_ingest() {
  log "1. webhook ingest"
  install_peer
  "$BUILD/bench/bench_reference_server" --port-file "$WORK/ref.port" &
  local ref_pid=$!
  PIDS+=("$ref_pid")
  local ref_port
  ref_port=$(wait_port_file "$WORK/ref.port")
  local ref_url="http://127.0.0.1:$ref_port/webhooks/wavoip"
  local ref_wrk ref_wrk4 ref_load ref_cpu_before
  ref_cpu_before=$(thread_cpu_ns "$ref_pid")
  ref_wrk=$(wrk_run "$ref_url" 64 ref)
  REF_CPU=$(cpu_per_unit "$ref_cpu_before" "$(thread_cpu_ns "$ref_pid")" "$(kv "$ref_wrk" requests)")
  ref_wrk4=$(wrk_run "$ref_url" 4 ref4)
  ref_load=$(load_run "$ref_port" 5000 16 refl)
  stop_pid "$ref_pid"
  log "reference: $ref_wrk"

  # The Node peer under the same wrk load as the plugin's 64-connection run.
  local peer_wrk="" peer_cpu="" peer_cpu_before
  if [[ -n "$PEER_DIR" ]]; then
    start_peer
  fi
  if [[ -z "$PEER_SKIP" ]]; then
    peer_cpu_before=$(thread_cpu_ns "$PEER_PID")
    peer_wrk=$(wrk_run "http://127.0.0.1:$PEER_PORT/webhooks/wavoip" 64 peer) || true
    peer_cpu=$(cpu_per_unit "$peer_cpu_before" "$(thread_cpu_ns "$PEER_PID")" "$(kv "$peer_wrk" requests)")
    stop_pid "$PEER_PID"
    rm -f "$PEER_DIR/peer.sqlite"*
    log "Node peer: ${peer_wrk:-no result}"
    if ! isnum "$(kv "$peer_wrk" rps)"; then
      PEER_SKIP="wrk gave no result against the peer"
    else
      row "1 ingest rps, Node peer (Fastify + better-sqlite3), wrk 64 conns" "$(kv "$peer_wrk" rps) req/s" \
        "$(kv "$ref_wrk" rps) req/s" "$(ratio "$(kv "$peer_wrk" rps)" "$(kv "$ref_wrk" rps)")" "" ""
      row "1 ingest p50 / p99, Node peer, wrk 64 conns" "$(kv "$peer_wrk" p50_ms) / $(kv "$peer_wrk" p99_ms) ms" \
        "$(kv "$ref_wrk" p50_ms) / $(kv "$ref_wrk" p99_ms) ms" "" "" ""
      local peer_bad
      peer_bad=$(($(kv "$peer_wrk" bad_status) + $(kv "$peer_wrk" socket_errors)))
      ((peer_bad == 0)) || row "1 ingest errors (Node peer)" "$peer_bad non-2xx/socket" "" "" "0" "NO"
    fi
  fi

  # A loop-lag probe every 10 ms when the host lets us set it (100 probes a second: a stall of a
  # probe interval or more is always seen).
  local host_help lag_args=()
  host_help=$("$HOST_BIN" --help 2>&1 || true)
  [[ "$host_help" == *--loop-lag-interval-ms* ]] && lag_args=(--loop-lag-interval-ms 10)

  local mode
  for mode in normal full; do
    start_host "ingest-$mode" "$(plugin_config "\"database_synchronous\":\"$mode\"")" "${lag_args[@]}"
    local url="http://127.0.0.1:$HOST_PORT/webhooks/wavoip"
    local w w4 l lag_before lag_after host_cpu_before host_cpu
    host_cpu_before=$(thread_cpu_ns "$HOST_PID")
    w=$(wrk_run "$url" 64 "w$mode")
    host_cpu=$(cpu_per_unit "$host_cpu_before" "$(thread_cpu_ns "$HOST_PID")" "$(kv "$w" requests)")
    w4=$(wrk_run "$url" 4 "w4$mode")
    lag_before=$(curl -s "http://127.0.0.1:$HOST_PORT/metrics" || true)
    l=$(load_run "$HOST_PORT" 5000 16 "l$mode")
    lag_after=$(curl -s "http://127.0.0.1:$HOST_PORT/metrics" || true)
    log "plugin ($mode): $w | $w4 | $l"
    local bad
    bad=$(($(kv "$w" bad_status) + $(kv "$w" socket_errors)))
    # Targets of the asynchronous-writes work: 0.5x the reference with synchronous=normal, 0.3x
    # with full.
    local target=0.5
    [[ $mode == full ]] && target=0.3
    row "1 ingest rps, wrk 64 conns, synchronous=$mode" "$(kv "$w" rps) req/s" "$(kv "$ref_wrk" rps) req/s" \
      "$(ratio "$(kv "$w" rps)" "$(kv "$ref_wrk" rps)")" ">= $target ratio" "$(ge "$(ratio "$(kv "$w" rps)" "$(kv "$ref_wrk" rps)")" "$target")"
    if [[ $mode == normal ]]; then
      if [[ -n "$PEER_SKIP" ]]; then
        row "1 ingest plugin / Node peer, wrk 64 conns (normal)" "skipped: $PEER_SKIP" "" "" ">= 3x peer" "NO"
      else
        row "1 ingest plugin / Node peer, wrk 64 conns (normal)" "$(kv "$w" rps) req/s" "$(kv "$peer_wrk" rps) req/s (peer)" \
          "$(ratio "$(kv "$w" rps)" "$(kv "$peer_wrk" rps)")" ">= 3x peer" "$(ge "$(ratio "$(kv "$w" rps)" "$(kv "$peer_wrk" rps)")" 3)"
      fi
    fi
    ingest_cpu_rows "$mode" "$host_cpu" "$peer_cpu"
    row "1 ingest p50 / p99 at that rate ($mode)" "$(kv "$w" p50_ms) / $(kv "$w" p99_ms) ms" \
      "$(kv "$ref_wrk" p50_ms) / $(kv "$ref_wrk" p99_ms) ms" "" "" ""
    row "1 ingest rps, wrk 4 conns ($mode)" "$(kv "$w4" rps) req/s" "$(kv "$ref_wrk4" rps) req/s" \
      "$(ratio "$(kv "$w4" rps)" "$(kv "$ref_wrk4" rps)")" "" ""
    row "1 ingest p50 / p99, wrk 4 conns ($mode)" "$(kv "$w4" p50_ms) / $(kv "$w4" p99_ms) ms" \
      "$(kv "$ref_wrk4" p50_ms) / $(kv "$ref_wrk4" p99_ms) ms" "" "" ""
    row "1 ingest p99 at fixed 5,000 req/s, 16 conns ($mode)" "$(load_cell "$l")" \
      "$(load_cell "$ref_load")" "" "< 5 ms" "$(load_met "$l" 5)"
    loop_lag_cells "$lag_before" "$lag_after"
    row "1 loop lag in that fixed-rate run, p99 / max ($mode)" "$LAG_CELL" "" "" "< 5 ms" "$LAG_MET"
    ((bad == 0)) || row "1 ingest errors ($mode)" "$bad non-2xx/socket" "" "" "0" "NO"
    # How the work was shared: deliveries per commit (group commit) and host message writes.
    local metrics commits delivered writes
    metrics=$(curl -s "http://127.0.0.1:$HOST_PORT/metrics")
    delivered=$(metric_sum "$metrics" wavoip_webhook_commit_batch_size_sum)
    commits=$(metric_sum "$metrics" wavoip_webhook_commit_batch_size_count)
    writes=$(metric_sum "$metrics" hdp_host_message_writes_total)
    row "1 ingest deliveries per commit / host writes per delivery ($mode)" \
      "$(ratio "$delivered" "$commits") / $(ratio "$writes" "$delivered")" "" "" "" ""
    stop_pid "$HOST_PID"
    if [[ $mode == normal && "$host_help" == *--http-threads* ]]; then ingest_http_threads_run; fi
  done
}

# ---------------------------------------------------------------- 2. loop never blocked

bench_loop() {
  log "2. webhook latency while 200 downloads of 50 MB are in flight"
  # A webhook rate well inside what the host sustains on a busy machine: the question is whether
  # the downloads stall the loop, not how many webhooks fit next to them.
  # Each download is served at BENCH_LOOP_DL_RATE bytes/s (256 KiB/s: 50 MiB/s for all 200), so
  # that all 200 are in flight during the whole measurement.
  local rate=${BENCH_LOOP_RATE:-200} downloads=200 size=$((50 * 1000 * 1000)) per_conn=${BENCH_LOOP_DL_RATE:-262144}
  start_host loop "$(plugin_config '"max_concurrent_downloads":200')"
  local base
  base=$(load_run "$HOST_PORT" "$rate" 4 idle)
  log "without downloads: $base"
  local i
  for ((i = 0; i < downloads; i++)); do
    post_webhook "{\"type\":\"RECORD\",\"whatsapp_call_id\":\"dl-$i\",\"record_status\":\"READY\",\"record_url\":\"$STORAGE/bytes/$size/rate/$per_conn/dl-$i\"}" >/dev/null
  done
  for ((i = 0; i < 500; i++)); do
    [[ $(storage_stat active_bodies) -ge $downloads ]] && break
    sleep 0.02
  done
  local active_before bytes_before t0 busy t1 bytes_after active_after
  active_before=$(storage_stat active_bodies)
  bytes_before=$(storage_stat bytes_sent)
  t0=$(now_ms)
  busy=$(load_run "$HOST_PORT" "$rate" 4 busy)
  t1=$(now_ms)
  bytes_after=$(storage_stat bytes_sent)
  active_after=$(storage_stat active_bodies)
  log "with $active_before..$active_after downloads in flight: $busy"
  local mbps
  mbps=$(awk -v b=$((bytes_after - bytes_before)) -v ms=$((t1 - t0)) 'BEGIN { printf "%.0f", b / ms / 1000 }')
  row "2 webhook p99 at $rate req/s, $active_before..$active_after downloads in flight" "$(load_cell "$busy")" \
    "$(load_cell "$base") no dl" "" "< 10 ms" "$(load_met "$busy" 10)"
  row "2 webhook p50 / max, same run" "$(kv "$busy" p50_ms) / $(kv "$busy" max_ms) ms" \
    "$(kv "$base" p50_ms) / $(kv "$base" max_ms) ms" "" "" ""
  row "2 download traffic meanwhile (offered $((downloads * per_conn / 1048576)) MiB/s)" "$mbps MB/s" "" "" "" ""
  stop_pid "$HOST_PID"
  rm -rf "$WORK/loop"
}

# ---------------------------------------------------------------- 3. 1 GB download

bench_download() {
  log "3. 1 GiB download: plugin vs curl"
  # Both write into tmpfs when there is one: with a disk, page-cache write-back throttling (and
  # whatever else the machine writes) decides the figure, not the download path.
  local files="$WORK"
  if [[ -d /dev/shm && -w /dev/shm ]] && (($(df -k --output=avail /dev/shm | tail -n1) > 3 * 1024 * 1024)); then
    files=$(mktemp -d /dev/shm/hdp-bench-download.XXXXXX)
    EXTRA_DIRS+=("$files")
  fi
  # Five rounds each, interleaved, compared by their medians: one lucky or unlucky round (the
  # page cache, another process) does not decide the ratio.
  local size=$((1024 * 1024 * 1024)) growth=0 round curl_speeds=() plugin_speeds=()
  HOST_ROOT=$files start_host download "$(plugin_config '"max_recording_bytes":2147483648')"
  local hwm_before
  hwm_before=$(kib_field "$HOST_PID" VmHWM)
  for round in 1 2 3 4 5; do
    local out speed
    out=$(curl -s -o "$files/curl.bin" -w '%{size_download} %{time_total}' "$STORAGE/bytes/$size/curl-$round")
    rm -f "$files/curl.bin"
    speed=$(awk '{ printf "%.0f", $1 / $2 / 1e6 }' <<<"$out")
    log "curl round $round: $speed MB/s"
    curl_speeds+=("$speed")

    local call="big-$round"
    post_webhook "{\"type\":\"RECORD\",\"whatsapp_call_id\":\"$call\",\"record_status\":\"READY\",\"record_url\":\"$STORAGE/bytes/$size/$call\"}" >/dev/null
    local i done_line="" start_line
    for ((i = 0; i < 1200; i++)); do
      done_line=$(grep -m1 "Download of call $call:" "$HOST_LOG" || true)
      [[ -n "$done_line" ]] && break
      sleep 0.05
    done
    start_line=$(grep -m1 "Downloading the recording of call $call" "$HOST_LOG")
    if [[ "$done_line" != *": ready"* ]]; then
      log "plugin download failed: $done_line"
      continue
    fi
    local ms
    ms=$(($(log_line_ms "$done_line") - $(log_line_ms "$start_line")))
    speed=$(awk -v b="$size" -v ms="$ms" 'BEGIN { printf "%.0f", b / ms / 1000 }')
    log "plugin round $round: $speed MB/s ($ms ms)"
    plugin_speeds+=("$speed")
    # Wait for the attachment, then drop the file.
    for ((i = 0; i < 400; i++)); do
      curl -s -b "$HOST_COOKIES" "http://127.0.0.1:$HOST_PORT/api/messages?external_key=wavoip%3A$call" | grep -q '"recording_status":"attached"' && break
      sleep 0.05
    done
    find "$files/download/data/attachments" -type f -delete 2>/dev/null || true
  done
  local hwm_after
  hwm_after=$(kib_field "$HOST_PID" VmHWM)
  growth=""
  isnum "$hwm_before" && isnum "$hwm_after" &&
    growth=$(awk -v a="$hwm_after" -v b="$hwm_before" 'BEGIN { printf "%.1f", (a - b) / 1024 }')
  local curl_median plugin_median
  curl_median=$(median "${curl_speeds[@]}")
  plugin_median=$(median "${plugin_speeds[@]}")
  row "3 download 1 GiB, plugin vs curl -o (median of 5)" "$plugin_median MB/s" "$curl_median MB/s" \
    "$(ratio "$plugin_median" "$curl_median")" ">= 0.9 ratio" "$(ge "$(ratio "$plugin_median" "$curl_median")" 0.9)"
  row "3 host VmHWM growth over five 1 GiB downloads" "$growth MiB ($(mib "$hwm_before") -> $(mib "$hwm_after") MiB)" "" "" "< 32 MiB" \
    "$(lt "$growth" 32)"
  stop_pid "$HOST_PID"
  if [[ "$files" == "$WORK" ]]; then rm -rf "$WORK/download"; else rm -rf "$files"; fi
}

# ---------------------------------------------------------------- 4. READY -> attached

bench_latency() {
  log "4. READY -> attached latency, 1 MB recording"
  start_host latency "$(plugin_config)"
  local out
  out=$("$BUILD/bench/bench_ready_latency" --host-port "$HOST_PORT" --cookie "$HOST_COOKIE" --count 200 --poll-us 500 \
    --record-url-prefix "$STORAGE/bytes/1048576/" || true)
  log "$out"
  # Target: the p50 no worse than before the asynchronous-writes work (1.8 ms), every call attached.
  local p50_met
  p50_met=$(le "$(kv "$out" stamp_p50_ms)" 1.8)
  [[ $(kv "$out" failures) == 0 ]] || p50_met=NO
  row "4 READY -> attached, 1 MB, p50 / p99 (host stamp)" "$(kv "$out" stamp_p50_ms) / $(kv "$out" stamp_p99_ms) ms" "" "" \
    "p50 <= 1.8 ms" "$p50_met"
  row "4 READY -> attached, 1 MB, p50 / p99 (client saw)" "$(kv "$out" seen_p50_ms) / $(kv "$out" seen_p99_ms) ms" "" "" "" \
    "$([[ $(kv "$out" failures) == 0 ]] && echo "" || echo "NO: $(kv "$out" failures) failed")"
  stop_pid "$HOST_PID"
  rm -rf "$WORK/latency"
}

# ---------------------------------------------------------------- 5. a million pending polls

bench_scale() {
  log "5. $SCALE_CALLS pending calls"
  # The host runs on the real clock, as in production (under --virtual-clock the host writes on
  # its loop and flushes every log line at once, which is test mode). The fill makes
  # $SCALE_DUE calls due SCALE_DUE_IN_MS after it finished: the host has started by then.
  local t0_ms due_at later_at
  t0_ms=$(now_ms)
  due_at=$((t0_ms - 1000))
  later_at=$((t0_ms + 36000000))
  local db="$WORK/scale/wavoip.sqlite"
  mkdir -p "$WORK/scale"
  local fill
  fill=$("$BUILD/bench/bench_fill_store" --db "$db" --count "$SCALE_CALLS" --due-count "$SCALE_DUE" \
    --due-at "$due_at" --later-at "$later_at" --due-in "$SCALE_DUE_IN_MS")
  log "$(head -n1 <<<"$fill")"
  due_at=$(sed -n 's/^due_at_ms=//p' <<<"$fill")
  start_host scale "$(plugin_config "\"database\":\"$db\"")" --loop-lag-interval-ms 10
  local ready_ms=$((HOST_READY_MS - HOST_SPAWNED_MS))
  local rss hwm
  rss=$(kib_field "$HOST_PID" VmRSS)
  hwm=$(kib_field "$HOST_PID" VmHWM)
  log "ready after $ready_ms ms, RSS $(mib "$rss") MiB (peak $(mib "$hwm") MiB)"
  row "5 restart to ready, $SCALE_CALLS pending calls" "$ready_ms ms" "" "" "< 2000 ms" "$(lt "$ready_ms" 2000)"
  row "5 host memory after start (RSS / peak)" "$(mib "$rss") / $(mib "$hwm") MiB" "" "" "< 200 MiB" "$(lt "$(mib "$hwm")" 200)"

  # At due_at, $SCALE_DUE polls fall due at once; each is a real HTTP request answered 404 by the
  # storage. The drain is timed from the later of due_at and the host being ready.
  curl -s -X POST "$STORAGE/__stats/reset" >/dev/null
  local lag_before
  lag_before=$(curl -s "http://127.0.0.1:$HOST_PORT/metrics")
  local from_ms=$due_at
  ((HOST_READY_MS > from_ms)) && from_ms=$HOST_READY_MS
  local i done_count=0 last=-1 still=0 drain_cpu_before storage_cpu_before
  # The CPU of the drain from the moment the polls are due: not what the host does once ready
  # before that (its first scans of the store).
  while (($(now_ms) < from_ms)); do sleep 0.005; done
  drain_cpu_before=$(thread_cpu_ns "$HOST_PID")
  storage_cpu_before=$(thread_cpu_ns "$STORAGE_PID")
  for ((i = 0; i < 1800; i++)); do
    done_count=$(grep -c 'Download of call pend-[0-9]*: ' "$HOST_LOG" || true)
    ((done_count >= SCALE_DUE)) && break
    if ((done_count == last && $(now_ms) > due_at)); then ((++still > 100)) && break; else still=0; fi
    last=$done_count
    sleep 0.1
  done
  local last_line not_ready elapsed rate
  last_line=$(grep 'Download of call pend-[0-9]*: ' "$HOST_LOG" | tail -n1)
  not_ready=$(grep -c 'Download of call pend-[0-9]*: not_ready' "$HOST_LOG" || true)
  elapsed=$(($(log_line_ms "$last_line") - from_ms))
  rate=$(awk -v n="$done_count" -v ms="$elapsed" 'BEGIN { printf "%.0f", n / (ms > 0 ? ms : 1) * 1000 }')
  local drain_cpu storage_cpu
  drain_cpu=$(cpu_per_unit "$drain_cpu_before" "$(thread_cpu_ns "$HOST_PID")" "$done_count")
  storage_cpu=$(cpu_per_unit "$storage_cpu_before" "$(thread_cpu_ns "$STORAGE_PID")" "$done_count")
  local rss_after hwm_after lag_after
  rss_after=$(kib_field "$HOST_PID" VmRSS)
  hwm_after=$(kib_field "$HOST_PID" VmHWM)
  lag_after=$(curl -s "http://127.0.0.1:$HOST_PORT/metrics")
  log "drained $done_count polls ($not_ready answered 404) in $elapsed ms; storage saw $(storage_stat requests)"
  # The reference: the same exchange (a GET answered 404 by the same storage, kept-alive
  # connections, 64 at once) from wrk, after the host stopped: what this machine can do of the
  # HTTP part alone, the storage's side included.
  stop_pid "$HOST_PID"
  local ref ref_rate
  ref=$(wrk -t1 -c64 -d"$SCALE_REF_SECONDS"s "$STORAGE/missing/reference" | awk '/^Requests\/sec:/ { print $2 }')
  ref_rate=$(awk -v r="$ref" 'BEGIN { printf "%.0f", r }')
  row "5 due polls drained ($done_count of $SCALE_DUE, $not_ready got HTTP 404)" "$rate polls/s" \
    "$ref_rate req/s (wrk, same 404)" "$(ratio "$rate" "$ref_rate")" ">= 20000/s" "$(ge "$rate" 20000)"
  # As for ingest: what a poll costs, and the rate the busiest thread allows with a core of its own.
  row "5 drain CPU per poll (host / storage server)" "$(cpu_total "$drain_cpu") us / $(cpu_total "$storage_cpu") us" "" "" "" ""
  row "5 drain CPU per poll by host thread" "$(cpu_threads_cell "$drain_cpu") us" "" "" "" ""
  row "5 drain bound with a core per host thread" "$(one_core_rate "$(cpu_busiest "$drain_cpu")") polls/s (not measured)" "" "" "" ""
  loop_lag_cells "$lag_before" "$lag_after"
  row "5 loop lag during the drain" "$LAG_CELL" "" "" "" ""
  row "5 host memory after the drain (RSS / peak)" "$(mib "$rss_after") / $(mib "$hwm_after") MiB" "" "" "< 200 MiB" \
    "$(lt "$(mib "$hwm_after")" 200)"
  rm -rf "$WORK/scale"
}

# ---------------------------------------------------------------- 6. parser

bench_parser() {
  log "6. parser micro-benchmark"
  local out name
  out=$("$BUILD/bench/bench_parser" --benchmark_min_time=0.5 2>/dev/null)
  for name in Call CallDuplicateTypeKey Record Device Unknown; do
    local line
    line=$(grep -E "^BM_$name " <<<"$out" | head -n1)
    row "6 parse_event $name" "$(sed -E 's/.*items_per_second=([^ /]+).*/\1/' <<<"$line") events/s" "" "" "" ""
  done
}

# ---------------------------------------------------------------- 7. several nodes on PostgreSQL

# A throwaway PostgreSQL server (Debian's postgresql) in the work directory, on a free loopback
# port, with synchronous_commit on (the default, said anyway). PostgreSQL refuses to run as root:
# then it runs as `nobody`. Sets PG_URI, PG_PSQL (a psql command line) and PG_STOP.
start_postgres() {
  local bin
  bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
  [[ -x "$bin/initdb" ]] || { log "no PostgreSQL server binaries"; return 1; }
  # A directory of its own: the work directory is private to this user, and the server may run
  # as another one.
  local dir as=()
  dir=$(mktemp -d "${TMPDIR:-/tmp}/hdp-bench-pg.XXXXXX")
  EXTRA_DIRS+=("$dir")
  if [[ $(id -u) -eq 0 ]]; then
    chmod 755 "$dir"
    chown nobody "$dir"
    as=(runuser -u nobody --)
  fi
  "${as[@]}" "$bin/initdb" -D "$dir/data" -A trust -U bench --no-sync >"$WORK/pg-initdb.log" 2>&1 || return 1
  # A port nothing listens on, below the kernel's range for outgoing connections: a port in that
  # range may be the local end of a connection (the earlier rows make thousands), which no probe
  # sees and which the server then cannot bind. Tried again on another port if it still fails.
  local lowest_ephemeral attempt
  lowest_ephemeral=$(awk '{ print $1 }' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
  ((lowest_ephemeral > 12000)) || lowest_ephemeral=32768
  for attempt in 1 2 3; do
    PG_PORT=$((10000 + RANDOM % (lowest_ephemeral - 10000)))
    while (exec 3<>"/dev/tcp/127.0.0.1/$PG_PORT") 2>/dev/null; do
      PG_PORT=$((10000 + RANDOM % (lowest_ephemeral - 10000)))
    done
    "${as[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -o \
      "-p $PG_PORT -k $dir -c listen_addresses=127.0.0.1 -c synchronous_commit=on -c max_connections=50" start >&2 &&
      break
    tail -n 5 "$dir/server.log" >&2
    ((attempt < 3)) || return 1
  done
  PG_STOP=("${as[@]}" "$bin/pg_ctl" -D "$dir/data" -m fast -w stop)
  PG_PSQL=(psql -X -q -t -A -h 127.0.0.1 -p "$PG_PORT" -U bench)
  "${PG_PSQL[@]}" -d postgres -c "CREATE DATABASE wavoip" >/dev/null || return 1
  PG_URI="postgresql://bench@127.0.0.1:$PG_PORT/wavoip"
}

pg_value() { "${PG_PSQL[@]}" -d wavoip -c "$1"; }

# wrk against every node at once, CONNECTIONS each: the sum of their req/s (errors count too).
wrk_nodes() {  # CONNECTIONS PREFIX PORT...
  local conns=$1 prefix=$2 port out=() total=0 bad=0 line
  shift 2
  local files=()
  for port in "$@"; do
    local f="$WORK/wrk-$prefix-$port"
    files+=("$f")
    wrk -t1 -c"$conns" -d"${SECONDS_PER_RUN}s" -s "$ROOT/bench/webhook.lua" \
      "http://127.0.0.1:$port/webhooks/wavoip" -- "$prefix$port" >"$f" 2>&1 &
    out+=($!)
  done
  wait "${out[@]}" || true
  for f in "${files[@]}"; do
    line=$(grep '^WRK ' "$f" || true)
    total=$(awk -v a="$total" -v b="$(kv "$line" rps)" 'BEGIN { printf "%.0f", a + b }')
    bad=$((bad + $(kv "$line" bad_status) + $(kv "$line" socket_errors)))
  done
  echo "rps=$total bad=$bad"
}

# Makes COUNT calls due now in the shared database and measures how fast the running nodes poll
# them (each poll a claim, a real HTTP request answered 404, the call's next poll scheduled and
# the claim given back). Prints "rate elapsed_ms done".
drain_cluster() {  # COUNT
  local count=$1 now
  pg_value "TRUNCATE wavoip.calls" >/dev/null
  now=$(now_ms)
  pg_value "INSERT INTO wavoip.calls (call_id, recording, answered, call_status, ended_at, next_attempt_at,
      deadline_at, created_at, updated_at)
    SELECT 'due-' || lpad(i::text, 8, '0'), 'waiting', true, 'ENDED', $now - 60000, $now, $now + 86400000, $now, $now
    FROM generate_series(1, $count) AS i" >/dev/null
  # Idle nodes find the new due calls within 5 s (their rescan): the drain is timed from the
  # first poll on any node to the last due call consumed.
  local i left=$count first="" line
  for ((i = 0; i < 600; i++)); do
    left=$(pg_value "SELECT COUNT(*) FROM wavoip.calls WHERE next_attempt_at <= $now OR lease_until IS NOT NULL")
    ((left == 0)) && break
    sleep 0.2
  done
  local end
  end=$(now_ms)
  # Log lines start with an ISO time (UTC), which sorts as text.
  local since
  since=$(date -u -d "@$((now / 1000)).$(printf '%03d' $((now % 1000)))" +%Y-%m-%dT%H:%M:%S.%3NZ)
  line=$(awk -v since="$since" '$1 >= since && /Download of call due-/ { print $1; nextfile }' "${CLUSTER_LOGS[@]}" |
    sort | head -n1)
  [[ -n "$line" ]] && first=$(date -d "$line" +%s%3N)
  first=${first:-$now}
  local elapsed=$((end - first))
  echo "$(awk -v n="$((count - left))" -v ms="$elapsed" 'BEGIN { printf "%.0f", n / ms * 1000 }') $elapsed $((count - left))"
}

bench_cluster() {
  log "7. several nodes on PostgreSQL"
  if ! start_postgres; then
    row "7 cluster" "skipped: no PostgreSQL server" "" "" "" "NO"
    return 0
  fi
  # The reference: one node on SQLite (synchronous=normal), in this run.
  start_host cluster-sqlite "$(plugin_config)"
  local sqlite_w
  sqlite_w=$(wrk_nodes 64 s "$HOST_PORT")
  stop_pid "$HOST_PID"
  log "SQLite, 1 node: $sqlite_w"
  local config
  config=$(plugin_config "\"database\":\"$PG_URI\",\"claim_lease_ms\":30000")
  local ports=() pids=() n
  CLUSTER_LOGS=()
  for n in 1 2 3; do
    # The helpdesk's own store on PostgreSQL too, with one attachments directory: one helpdesk.
    start_host "cluster-pg$n" "$config" --database "$PG_URI" --attachments-dir "$WORK/cluster-attachments"
    ports+=("$HOST_PORT")
    pids+=("$HOST_PID")
    CLUSTER_LOGS+=("$HOST_LOG")
  done
  local pg1 pg3
  pg1=$(wrk_nodes 64 p1n "${ports[0]}")
  log "PostgreSQL, 1 node: $pg1"
  pg3=$(wrk_nodes 22 p3n "${ports[@]}")
  log "PostgreSQL, 3 nodes: $pg3"
  row "7 ingest rps, PostgreSQL (synchronous_commit on), 1 node, wrk 64 conns" "$(kv "$pg1" rps) req/s" \
    "$(kv "$sqlite_w" rps) req/s (SQLite, 1 node)" "$(ratio "$(kv "$pg1" rps)" "$(kv "$sqlite_w" rps)")" "" ""
  row "7 ingest rps, PostgreSQL, 3 nodes, wrk 3 x 22 conns" "$(kv "$pg3" rps) req/s" \
    "$(kv "$sqlite_w" rps) req/s (SQLite, 1 node)" "$(ratio "$(kv "$pg3" rps)" "$(kv "$sqlite_w" rps)")" "" ""
  local bad=$(($(kv "$pg1" bad) + $(kv "$pg3" bad)))
  ((bad == 0)) || row "7 ingest errors (PostgreSQL)" "$bad non-2xx/socket" "" "" "0" "NO"
  local d3 d1
  d3=$(drain_cluster "$CLUSTER_DUE")
  log "drain, 3 nodes: $d3 (rate/s elapsed_ms done)"
  stop_pid "${pids[1]}"
  stop_pid "${pids[2]}"
  CLUSTER_LOGS=("${CLUSTER_LOGS[0]}")  # one node alone
  d1=$(drain_cluster "$CLUSTER_DUE")
  log "drain, 1 node: $d1 (rate/s elapsed_ms done)"
  stop_pid "${pids[0]}"
  read -r r3 e3 n3 <<<"$d3"
  read -r r1 e1 n1 <<<"$d1"
  row "7 claims (polls) per second, 3 nodes ($n3 of $CLUSTER_DUE due calls)" "$r3 claims/s" "$r1 claims/s (1 node)" \
    "$(ratio "$r3" "$r1")" ">= 20000/s" "$(ge "$r3" 20000)"
  row "7 poll drain, 1 node on PostgreSQL ($n1 of $CLUSTER_DUE)" "$r1 polls/s" "" "" "" ""
  "${PG_STOP[@]}" >/dev/null 2>&1 || true
}

# ---------------------------------------------------------------- main

[[ -n "${BENCH_NO_BUILD:-}" ]] || install_missing
build
WORK=$(mktemp -d "${TMPDIR:-/tmp}/hdp-bench.XXXXXX")
log "work directory $WORK; ${SECONDS_PER_RUN}s per load phase; $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
start_storage
want ingest && bench_ingest
want loop && bench_loop
want download && bench_download
want latency && bench_latency
want scale && bench_scale
want parser && bench_parser
want cluster && bench_cluster
print_table
