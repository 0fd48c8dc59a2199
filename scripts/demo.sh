#!/usr/bin/env bash
# One-command demo: builds everything, starts the stub host with the WaVoIP plugin (dev mode) and
# the WaVoIP simulator on free ports, plays a scenario, and shows the inbox URL and the log lines
# to watch. Ctrl-C stops everything.
#
#   scripts/demo.sh                      set up, build, run the "all" scenario until Ctrl-C
#   scripts/demo.sh --scenario happy     one call only (see: wavoip-sim --help)
#   DEMO_SECONDS=60 scripts/demo.sh      stop by itself after 60 s, then check the result
#   scripts/demo.sh --no-build --ci --build-dir build/dev
#                                        non-interactive: run, check via the JSON API, exit 0/1
#   scripts/demo.sh --nodes 3 [--ci]     three stub hosts on PostgreSQL behind nginx
#                                        (scripts/demo_nodes.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
# shellcheck source=scripts/demo_common.sh
source "$root/scripts/demo_common.sh"

# Several nodes: another script (PostgreSQL, nginx); one node stays as it always was.
for arg in "$@"; do
  case "$arg" in
    --nodes | --nodes=*) exec scripts/demo_nodes.sh "$@" ;;
  esac
done

usage() {
  cat <<'EOF'
Usage: scripts/demo.sh [options]
  --no-build           do not run setup/configure/build; use the binaries in the build directory
  --build-dir DIR      where the binaries are (default build/default, the "default" preset)
  --scenario NAME      simulator scenario (default all; see wavoip-sim --help)
  --time-scale X       simulator speed (default 0.5; --ci: 0.2)
  --port N             port of the inbox (default: a free one)
  --ci                 non-interactive: run the scenario, check via the JSON API that the
                       recordings got attached (at least the happy path's), exit 0 or 1
  --timeout S          --ci: how long to wait for the expected result (default 120)
  --keep-data          keep the temporary data directory (database, logs) after stopping
  --nodes N            N stub hosts on one PostgreSQL database behind nginx (scripts/demo_nodes.sh)
  --help               this text
Environment: DEMO_SECONDS=N runs the demo for N seconds, then checks like --ci.
EOF
}

build=1
ci=0
build_dir=""
scenario="all"
time_scale=""
port=0
keep=0
timeout=120
while (($#)); do
  demo_option "$@" || { echo "demo: unknown option '$1'" >&2; usage >&2; exit 2; }
  shift "$consumed"
done
bounded=${DEMO_SECONDS:-}
if [[ -n "$bounded" && ! "$bounded" =~ ^[0-9]+$ ]]; then
  echo "demo: DEMO_SECONDS must be a whole number of seconds" >&2
  exit 2
fi
if [[ -z "$time_scale" ]]; then
  if ((ci)); then time_scale=0.2; else time_scale=0.5; fi
fi

# ---- build ----
if ((build)); then
  demo_build
fi
demo_binaries "scripts/demo.sh without --no-build"
for tool in curl python3; do
  command -v "$tool" >/dev/null || { echo "demo: $tool is needed (scripts/setup.sh installs it)" >&2; exit 1; }
done

# ---- run ----
data=$(mktemp -d "${TMPDIR:-/tmp}/wavoip-demo.XXXXXX")
sim_pid=""
host_pid=""
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  for pid in $sim_pid $host_pid; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in $sim_pid $host_pid; do
    wait "$pid" 2>/dev/null || true
  done
  if ((keep)); then
    echo "demo: data, database and logs kept in $data"
  else
    rm -rf "$data"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'echo; say "Stopping"; exit 130' INT TERM

wait_for_file() {  # FILE PID WHAT
  for _ in $(seq 1 200); do
    [[ -s "$1" ]] && return 0
    kill -0 "$2" 2>/dev/null || { echo "demo: the $3 exited; its output:" >&2; cat "$data/$3.log" >&2; exit 1; }
    sleep 0.05
  done
  echo "demo: the $3 did not start in time; its output:" >&2
  cat "$data/$3.log" >&2
  exit 1
}

# The simulator first (it waits for POST /__sim/start), so the plugin's base_url can name its port.
"$sim_bin" --scenario "$scenario" --time-scale "$time_scale" --port-file "$data/sim.port" \
  --serve-forever --download-timeout 0 --quiet >"$data/sim.log" 2>&1 &
sim_pid=$!
wait_for_file "$data/sim.port" "$sim_pid" sim
sim_url="http://127.0.0.1:$(cat "$data/sim.port")"

# Dev mode (http to loopback) and a fast poll schedule: first poll 3 s after the call, give up after 45 s.
plugin_config=$(cat <<EOF
{"base_url": "$sim_url/", "allow_insecure_loopback": true,
 "poll": {"first_delay_s": 3, "initial_backoff_s": 2, "max_backoff_s": 5, "deadline_s": 45, "jitter": 0.1}}
EOF
)
# An agent to sign in to the inbox with, its password random and only in this run's output.
agent_name=agent
agent_password=$(python3 -c 'import secrets; print(secrets.token_urlsafe(12))')
printf '%s\n' "$agent_password" | "$host_bin" agent add "$agent_name" --data-dir "$data/data" >/dev/null

"$host_bin" --listen "127.0.0.1:$port" --port-file "$data/host.port" --data-dir "$data/data" \
  --plugin "$plugin_so" --plugin-config-json "$plugin_config" >"$data/host.log" 2>&1 &
host_pid=$!
wait_for_file "$data/host.port" "$host_pid" host
host_url="http://127.0.0.1:$(cat "$data/host.port")"
for _ in $(seq 1 100); do
  curl -fsS "$host_url/healthz" >/dev/null 2>&1 && break
  sleep 0.05
done

echo
say "Inbox:      $host_url/"
say "Sign in:    name $agent_name, password $agent_password"
say "Webhook:    POST $host_url/webhooks/wavoip"
say "Simulator:  $sim_url/<call id>   (scenario $scenario, time scale $time_scale)"
say "Logs:       $data/host.log  $data/sim.log"
cat <<'EOF'
    Lines to watch in the host log (the same as the seed system's):
      [WaVoIP Webhook] Received event: RECORD
      [WaVoIP Webhook] Recording READY for call <id>
      [WaVoIP Recording Webhook] ✅ Recording attached successfully
EOF
if ((ci)); then
  echo "    Non-interactive run: waiting up to ${timeout} s for the expected result."
elif [[ -n "$bounded" ]]; then
  echo "    Stopping by itself after ${bounded} s (DEMO_SECONDS)."
else
  echo "    Open the inbox in a browser. Press Ctrl-C to stop."
fi
echo

# Live output: the simulator's webhooks and the plugin's log lines (tail ends with this script).
if ((!ci)); then
  tail -n +1 -F --pid=$$ "$data/sim.log" 2>/dev/null | sed -u 's/^/[sim]  /' &
  tail -n +1 -F --pid=$$ "$data/host.log" 2>/dev/null | grep --line-buffered 'WaVoIP' |
    grep --line-buffered -v 'Received event: CALL' | sed -u -E 's/^[^ ]+ ([A-Z]+) +\[[^]]*\] /[host] \1 /' &
fi

curl -fsS -X POST "$sim_url/__sim/start" -H 'Content-Type: application/json' \
  -d "{\"webhook_url\": \"$host_url/webhooks/wavoip\"}" >/dev/null

# Compares what the inbox shows (JSON API) with what each simulated call should end as. Exit 0
# when everything is as expected (with --happy: when the happy path's recording is attached);
# prints a table with --report.
check() {
  DEMO_AGENT_PASSWORD="$agent_password" python3 "$root/scripts/demo_check.py" "$host_url" "$sim_url" "$data/host.log" \
    "$agent_name" "$@"
}

if ((ci)); then
  deadline=$((SECONDS + timeout))
  until check 2>/dev/null; do
    if ((SECONDS >= deadline)) || ! kill -0 "$host_pid" 2>/dev/null; then
      say "FAILED: the inbox did not reach the expected state"
      check --report || true
      echo "---- simulator ----"; cat "$data/sim.log"
      echo "---- host ----"; cat "$data/host.log"
      exit 1
    fi
    sleep 0.5
  done
  check --report
  first_id=$(curl -fsS "$sim_url/__sim/calls" |
    python3 -c 'import json,sys; c=[x for x in json.load(sys.stdin)["calls"] if x["expect_download"]]; print(c[0]["call_id"] if c else "")')
  if [[ -n "$first_id" ]]; then
    say "The seed's log lines for call $first_id, as the host wrote them:"
    for line in "Received event: RECORD (call $first_id)" "Recording READY for call $first_id" \
      "Recording attached successfully (call $first_id)"; do
      grep -F -m1 "$line" "$data/host.log" | sed 's/^/    /' || true
    done
  fi
  kill -TERM "$host_pid"
  host_status=0
  wait "$host_pid" || host_status=$?
  host_pid=""
  if ((host_status != 0)); then
    say "FAILED: the host did not stop cleanly (exit status $host_status)"
    cat "$data/host.log"
    exit 1
  fi
  say "PASSED: every call shows what it should; the host stopped cleanly"
  exit 0
fi

if [[ -n "$bounded" ]]; then
  sleep "$bounded"
  echo
  if check --report --happy; then
    say "PASSED: the happy path's recording is attached (calls marked NOT YET needed more time)"
    exit 0
  fi
  say "FAILED: the happy path's recording is not attached (see above)"
  exit 1
fi

while kill -0 "$host_pid" 2>/dev/null; do sleep 1; done
say "The host exited; its log is $data/host.log"
exit 1
