#!/usr/bin/env bash
# The demo with several stub hosts behind a load balancer (scripts/demo.sh --nodes N hands over to
# this script): a throwaway PostgreSQL server, N stub hosts with the WaVoIP plugin, all on one
# PostgreSQL database (the host's --database and the plugin's "database") and one shared
# --attachments-dir, each with its own --data-dir; nginx in front of them, round robin; the
# WaVoIP simulator sending its webhooks to nginx. Everything lives in one temporary directory and
# stops with Ctrl-C (or at the end of --ci).
#
#   scripts/demo.sh --nodes 3                 set up, build, run until Ctrl-C
#   scripts/demo.sh --nodes 3 --no-build --ci --build-dir build/default
#                                             non-interactive: check through the balancer's JSON
#                                             API that each recording was attached exactly once
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
# shellcheck source=scripts/demo_common.sh
source "$root/scripts/demo_common.sh"

usage() {
  cat <<'EOF2'
Usage: scripts/demo.sh --nodes N [options]
  --nodes N            stub hosts behind the balancer (2 to 9)
  --no-build           do not run setup/configure/build; use the binaries in the build directory
  --build-dir DIR      where the binaries are (default build/default)
  --scenario NAME      simulator scenario (default all; see wavoip-sim --help)
  --time-scale X       simulator speed (default 0.5; --ci: 0.2)
  --port N             port of the balancer (default: a free one)
  --ci                 non-interactive: check through the balancer that every call shows what it
                       should and each recording is attached exactly once, exit 0 or 1
  --timeout S          --ci: how long to wait for the expected result (default 150)
  --keep-data          keep the temporary directory (databases, logs) after stopping
EOF2
}

nodes=3
build=1
ci=0
build_dir=""
scenario="all"
time_scale=""
port=0
keep=0
timeout=150
while (($#)); do
  case "$1" in
    --nodes) nodes=${2:?--nodes needs a number}; shift 2; continue ;;
    --nodes=*) nodes=${1#*=}; shift; continue ;;
  esac
  demo_option "$@" || { echo "demo: unknown option '$1'" >&2; usage >&2; exit 2; }
  shift "$consumed"
done
if [[ ! "$nodes" =~ ^[2-9]$ ]]; then
  echo "demo: --nodes must be 2 to 9" >&2
  exit 2
fi
if [[ -z "$time_scale" ]]; then
  if ((ci)); then time_scale=0.2; else time_scale=0.5; fi
fi

# ---- build ----
if ((build)); then
  demo_build --nodes
fi
demo_binaries "scripts/demo.sh --nodes $nodes without --no-build"
pg_bin=${HDP_PG_BINDIR:-$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)}
for tool in curl python3 nginx "$pg_bin/initdb" "$pg_bin/pg_ctl"; do
  command -v "$tool" >/dev/null || [[ -x "$tool" ]] ||
    { echo "demo: $tool is needed (scripts/setup.sh --nodes installs it)" >&2; exit 1; }
done

# ---- run ----
data=$(mktemp -d "${TMPDIR:-/tmp}/wavoip-demo-nodes.XXXXXX")
chmod 711 "$data"  # PostgreSQL's unprivileged user must reach its directory inside
sim_pid=""
nginx_pid=""
host_pids=()
pg_started=0
# PostgreSQL refuses to run as root: then its files and processes belong to `nobody`.
as_pg_user=()
if [[ $(id -u) -eq 0 ]]; then as_pg_user=(setpriv --reuid=nobody --regid=nogroup --clear-groups --); fi

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  for pid in $sim_pid $nginx_pid "${host_pids[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in $sim_pid $nginx_pid "${host_pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  if ((pg_started)); then
    "${as_pg_user[@]}" "$pg_bin/pg_ctl" -D "$data/pg/data" -m fast -w stop >/dev/null 2>&1 || true
  fi
  if ((keep)); then
    echo "demo: databases, files and logs kept in $data"
  else
    rm -rf "$data"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'echo; say "Stopping"; exit 130' INT TERM

wait_for_file() {  # FILE PID WHAT LOG
  for _ in $(seq 1 300); do
    [[ -s "$1" ]] && return 0
    kill -0 "$2" 2>/dev/null || { echo "demo: the $3 exited; its output:" >&2; cat "$4" >&2; exit 1; }
    sleep 0.05
  done
  echo "demo: the $3 did not start in time; its output:" >&2
  cat "$4" >&2
  exit 1
}

# PostgreSQL: a cluster of its own in the temporary directory, password authentication, on a free
# loopback port (its Unix socket in the same directory).
say "Starting PostgreSQL ($pg_bin)"
mkdir -p "$data/pg"
pg_password=$(python3 -c 'import secrets; print(secrets.token_hex(12))')
printf '%s\n' "$pg_password" >"$data/pg/pwfile"
if ((${#as_pg_user[@]})); then chown -R nobody:nogroup "$data/pg"; fi
pg_port=$(free_port)
"${as_pg_user[@]}" env LC_ALL=C "$pg_bin/initdb" -D "$data/pg/data" -U helpdesk --pwfile="$data/pg/pwfile" \
  -A scram-sha-256 >"$data/pg/initdb.log" 2>&1 || { cat "$data/pg/initdb.log" >&2; exit 1; }
rm -f "$data/pg/pwfile"
"${as_pg_user[@]}" env LC_ALL=C "$pg_bin/pg_ctl" -D "$data/pg/data" -l "$data/pg/server.log" -w \
  -o "-p $pg_port -k $data/pg -c listen_addresses=127.0.0.1" start >/dev/null ||
  { cat "$data/pg/server.log" >&2; exit 1; }
pg_started=1
PGPASSWORD="$pg_password" "$pg_bin/createdb" -h 127.0.0.1 -p "$pg_port" -U helpdesk helpdesk
database="postgresql://helpdesk:$pg_password@127.0.0.1:$pg_port/helpdesk"

# The simulator first (it waits for POST /__sim/start), so the plugin's base_url can name its port.
"$sim_bin" --scenario "$scenario" --time-scale "$time_scale" --port-file "$data/sim.port" \
  --serve-forever --download-timeout 0 --quiet >"$data/sim.log" 2>&1 &
sim_pid=$!
wait_for_file "$data/sim.port" "$sim_pid" simulator "$data/sim.log"
sim_url="http://127.0.0.1:$(cat "$data/sim.port")"

# The plugin as in the one-node demo, its store in the same PostgreSQL database (schema wavoip).
plugin_config=$(cat <<EOF
{"base_url": "$sim_url/", "allow_insecure_loopback": true, "database": "$database",
 "poll": {"first_delay_s": 3, "initial_backoff_s": 2, "max_backoff_s": 5, "deadline_s": 45, "jitter": 0.1}}
EOF
)
agent_name=agent
agent_password=$(python3 -c 'import secrets; print(secrets.token_urlsafe(12))')
printf '%s\n' "$agent_password" | "$host_bin" agent add "$agent_name" --database "$database" >/dev/null

# The nodes, started together: the schema migrations wait for each other (advisory locks).
mkdir -p "$data/attachments"
node_ports=()
for i in $(seq 1 "$nodes"); do
  "$host_bin" --listen 127.0.0.1:0 --port-file "$data/node$i.port" --data-dir "$data/node$i" \
    --database "$database" --attachments-dir "$data/attachments" \
    --plugin "$plugin_so" --plugin-config-json "$plugin_config" >"$data/node$i.log" 2>&1 &
  host_pids+=($!)
done
for i in $(seq 1 "$nodes"); do
  wait_for_file "$data/node$i.port" "${host_pids[$((i - 1))]}" "node $i" "$data/node$i.log"
  node_ports+=("$(cat "$data/node$i.port")")
done

# nginx: in the foreground with its own configuration, pid, logs and temporary files here.
if ((port == 0)); then port=$(free_port); fi
mkdir -p "$data/nginx"
{
  echo "daemon off;"
  echo "worker_processes 1;"
  if [[ $(id -u) -eq 0 ]]; then echo "user nobody nogroup;"; fi
  echo "pid $data/nginx/nginx.pid;"
  echo "error_log $data/nginx/error.log notice;"
  echo "events { worker_connections 256; }"
  echo "http {"
  echo "  access_log $data/nginx/access.log;"
  for t in client_body proxy fastcgi uwsgi scgi; do echo "  ${t}_temp_path $data/nginx/${t}_temp;"; done
  echo "  upstream helpdesk {"
  for p in "${node_ports[@]}"; do echo "    server 127.0.0.1:$p;"; done
  echo "    keepalive 16;"
  echo "  }"
  echo "  server {"
  echo "    listen 127.0.0.1:$port;"
  echo "    client_max_body_size 2m;"
  echo "    location / {"
  echo "      proxy_pass http://helpdesk;"
  echo "      proxy_http_version 1.1;"
  echo "      proxy_set_header Connection \"\";"
  echo "      proxy_set_header Host \$host;"
  echo "      proxy_set_header X-Forwarded-For \$remote_addr;"
  echo "      proxy_buffering off;"
  echo "    }"
  echo "  }"
  echo "}"
} >"$data/nginx/nginx.conf"
nginx -p "$data/nginx" -e "$data/nginx/error.log" -c "$data/nginx/nginx.conf" >"$data/nginx/stdout.log" 2>&1 &
nginx_pid=$!
lb_url="http://127.0.0.1:$port"
for _ in $(seq 1 200); do
  curl -fsS "$lb_url/healthz" >/dev/null 2>&1 && break
  kill -0 "$nginx_pid" 2>/dev/null || { echo "demo: nginx exited:" >&2; cat "$data/nginx/error.log" >&2; exit 1; }
  sleep 0.05
done

echo
say "Inbox:      $lb_url/   (nginx, round robin over $nodes stub hosts: ports ${node_ports[*]})"
say "Sign in:    name $agent_name, password $agent_password"
say "Webhook:    POST $lb_url/webhooks/wavoip"
say "Database:   postgresql://helpdesk@127.0.0.1:$pg_port/helpdesk (schemas helpdesk and wavoip)"
say "Simulator:  $sim_url/<call id>   (scenario $scenario, time scale $time_scale)"
say "Logs:       $data/node*.log  $data/sim.log  $data/nginx/"
if ((ci)); then
  echo "    Non-interactive run: waiting up to ${timeout} s for the expected result."
else
  echo "    Open the inbox in a browser: every request may be served by another node. Ctrl-C stops."
  tail -n +1 -F --pid=$$ "$data/sim.log" 2>/dev/null | sed -u 's/^/[sim]    /' &
  for i in $(seq 1 "$nodes"); do
    tail -n +1 -F --pid=$$ "$data/node$i.log" 2>/dev/null | grep --line-buffered 'WaVoIP' |
      grep --line-buffered -v 'Received event: CALL' |
      sed -u -E "s/^[^ ]+ ([A-Z]+) +\[[^]]*\] /[node $i] \1 /" &
  done
fi
echo

curl -fsS -X POST "$sim_url/__sim/start" -H 'Content-Type: application/json' \
  -d "{\"webhook_url\": \"$lb_url/webhooks/wavoip\"}" >/dev/null

# The check of the one-node demo, through the balancer, against the logs of every node.
check() {
  cat "$data"/node*.log >"$data/all-nodes.log"
  DEMO_AGENT_PASSWORD="$agent_password" python3 "$root/scripts/demo_check.py" "$lb_url" "$sim_url" \
    "$data/all-nodes.log" "$agent_name" "$@"
}

if ((ci)); then
  deadline=$((SECONDS + timeout))
  until check 2>/dev/null; do
    if ((SECONDS >= deadline)); then
      say "FAILED: the inbox did not reach the expected state"
      check --report || true
      echo "---- simulator ----"; cat "$data/sim.log"
      for i in $(seq 1 "$nodes"); do echo "---- node $i ----"; cat "$data/node$i.log"; done
      exit 1
    fi
    sleep 1
  done
  check --report
  # Exactly once, whichever nodes downloaded: one row per key in the shared database, one file
  # per row in the shared directory.
  rows=$(PGPASSWORD="$pg_password" "$pg_bin/psql" -h 127.0.0.1 -p "$pg_port" -U helpdesk -d helpdesk -Atc \
    "SELECT count(*) || ' ' || count(DISTINCT idempotency_key) FROM helpdesk.attachments")
  files=$(find "$data/attachments" -type f | wc -l)
  read -r n_rows n_keys <<<"$rows"
  say "Attachments: $n_rows rows, $n_keys distinct keys; $files file(s) in the shared directory"
  if ((n_rows != n_keys || files != n_rows)); then
    say "FAILED: a recording was attached more than once"
    exit 1
  fi
  for i in $(seq 1 "$nodes"); do
    echo "    node $i received $(grep -c 'Received event' "$data/node$i.log" || true) webhook(s)"
  done
  status=0
  for i in $(seq 1 "$nodes"); do
    pid=${host_pids[$((i - 1))]}
    kill -TERM "$pid"
    node_status=0
    wait "$pid" || node_status=$?
    if ((node_status != 0)); then
      say "FAILED: node $i did not stop cleanly (exit status $node_status)"
      status=1
    fi
  done
  host_pids=()
  ((status == 0)) || exit 1
  say "PASSED: every call shows what it should through the balancer, each recording attached once"
  exit 0
fi

while kill -0 "$nginx_pid" 2>/dev/null; do sleep 1; done
say "nginx exited; see $data/nginx/error.log"
exit 1
